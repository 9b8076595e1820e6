// The imagery of an annotation set on the annotate map: one raster layer per date (the shown one visible), the
// recipe chosen for all, and per item a fallback when the recipe cannot render it (bands it lacks: its tiles would
// answer 422), said in the page instead of requested.

import type maplibregl from "maplibre-gl";
import type { RasterTileSource } from "maplibre-gl";
import { h } from "../dom";
import { addTiles, tileUrl } from "../map";
import type { ImageryItem } from "../types";
import type { AnnotationSet } from "./api";

/** The recipe `item` is drawn with when `wanted` is chosen: `wanted` if it can, else true colour, else its first. */
export function recipeFor(item: ImageryItem, wanted: string, refused: ReadonlySet<string> = new Set()): string | null {
  const usable = item.recipes.filter((r) => !refused.has(r));
  if (usable.includes(wanted)) return wanted;
  return usable.includes("true-color") ? "true-color" : usable[0] ?? null;
}

/** The dates of a set on a map: step through them, cycle the recipe, the tile URL of each (with its fallback). */
export interface Dates {
  items: ImageryItem[];
  url: (item: ImageryItem) => string;
  step(by: number): void;
  cycle(): void;
  shown: () => number;
  /** Call `listener` whenever the recipe or the shown date changes. */
  changed(listener: () => void): void;
}

/** The imagery of the set's items on `map` and its controls (`recipe`, the `date` label, the `note` of fallbacks). */
export function imagery(map: maplibregl.Map, set: AnnotationSet, items: ImageryItem[], recipe: HTMLSelectElement,
  date: HTMLElement, note: HTMLElement): Dates {
  const mine = set.items.map((i) => items.find((x) => x.id === i.id)).filter((x): x is ImageryItem => !!x);
  const recipes = [...new Set(mine.flatMap((i) => i.recipes))];
  recipe.replaceChildren(...recipes.map((r) => h("option", { value: r }, r)));
  const refused = new Map(mine.map((item) => [item.id, new Set<string>()]));
  const listeners: (() => void)[] = [];
  let shown = 0;
  const used = (item: ImageryItem): string | null => recipeFor(item, recipe.value, refused.get(item.id));
  const url = (item: ImageryItem): string => tileUrl(item.tiles, `recipe=${encodeURIComponent(used(item) ?? recipe.value)}`);
  mine.forEach((item, i) => addTiles(map, `date-${i}`, url(item), item.bbox, map.getLayer("tasks-fill") ? "tasks-fill" : undefined));
  const refresh = (): void => {
    mine.forEach((item, i) => {
      (map.getSource(`date-${i}`) as RasterTileSource).setTiles([url(item)]);
      map.setLayoutProperty(`date-${i}`, "visibility", i === shown && used(item) ? "visible" : "none");
    });
    const item = set.items[shown];
    date.textContent = item ? `${item.datetime ?? item.id} (${shown + 1}/${set.items.length})` : "no imagery";
    date.dataset.item = item?.id ?? "";
    const fallbacks = mine.filter((i) => used(i) !== recipe.value);
    note.replaceChildren(...fallbacks.map((i) => h("span", { class: "fallback", "data-item": i.id, "data-recipe": used(i) ?? "" },
      used(i) ? `${i.id} cannot be drawn as ${recipe.value}: shown as ${used(i)}.` : `${i.id} has no recipe it can be drawn with.`)));
    note.hidden = !fallbacks.length;
    listeners.forEach((l) => l());
  };
  // a recipe the list offered but whose tiles the server refuses (422): never asked of that item again
  map.on("error", (event) => {
    const e = event as { sourceId?: string; error?: { status?: number } };
    const i = /^date-(\d+)$/.exec(e.sourceId ?? "")?.[1];
    const item = i === undefined ? undefined : mine[Number(i)];
    const wanted = item && used(item);
    if (!item || !wanted || e.error?.status !== 422 || refused.get(item.id)?.has(wanted)) return;
    refused.get(item.id)?.add(wanted);
    refresh();
  });
  refresh();
  recipe.addEventListener("change", refresh);
  return {
    items: mine,
    url,
    step(by: number): void { shown = (shown + by + mine.length) % Math.max(mine.length, 1); refresh(); },
    cycle(): void { recipe.selectedIndex = (recipe.selectedIndex + 1) % Math.max(recipes.length, 1); refresh(); },
    shown: () => shown,
    changed(listener: () => void): void { listeners.push(listener); },
  };
}
