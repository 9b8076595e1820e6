// Explore imagery (`#/projects/:slug/explore`): the project's scenes on a map, a date slider over the scenes that
// intersect the view (the project's STAC API search, again whenever the view moves), a render recipe, a swipe
// between the slider's date and another, and a click on the map → the pixel's band values and an index over time.

import maplibregl from "maplibre-gl";
import type { LngLatBoundsLike } from "maplibre-gl";
import { api, reportError } from "../api";
import { recipeFor } from "../annotate/imagery";
import { swipe } from "../annotate/panels";
import { clearErrors, h, mount } from "../dom";
import { day, seriesPanel } from "../explore/series";
import { addTiles, createMap, loaded, registerMap, tileUrl } from "../map";
import type { Cleanup, Params } from "../router";
import type { ImageryItem, PixelSeries, StacSearch } from "../types";
import { field, link } from "../ui";

const LAYER = "explore-scene";

/** The box around every item's bbox, or null for none. */
function extent(items: ImageryItem[]): LngLatBoundsLike | null {
  const boxes = items.filter((i) => i.bbox.length === 4);
  if (!boxes.length) return null;
  return [Math.min(...boxes.map((b) => b.bbox[0])), Math.min(...boxes.map((b) => b.bbox[1])),
    Math.max(...boxes.map((b) => b.bbox[2])), Math.max(...boxes.map((b) => b.bbox[3]))];
}

/** The map's view as a STAC bbox (clamped to the globe). */
function viewBox(map: maplibregl.Map): string {
  const b = map.getBounds();
  const clamp = (v: number, lim: number): number => Math.max(-lim, Math.min(lim, v));
  return [clamp(b.getWest(), 180), clamp(b.getSouth(), 90), clamp(b.getEast(), 180), clamp(b.getNorth(), 90)]
    .map((v) => v.toFixed(6)).join(",");
}

function indices(items: ImageryItem[]): string[] {
  const found = new Set(items.flatMap((i) => i.recipes).filter((r) => r.startsWith("index:")).map((r) => r.slice(6)));
  return found.size ? [...found] : ["NDVI"];
}

interface Controls {
  recipe: HTMLSelectElement; index: HTMLSelectElement; slider: HTMLInputElement; date: HTMLOutputElement;
  other: HTMLSelectElement; container: HTMLElement; side: HTMLElement;
}

/** The page's title, controls bar, map and series panel in `root` (the bar above the map, where swipe adds its toggle). */
function layout(root: HTMLElement, slug: string, all: ImageryItem[]): Controls {
  const c: Controls = {
    recipe: h("select", { id: "explore-recipe" },
      ...[...new Set(all.flatMap((i) => i.recipes))].map((r) => h("option", { value: r }, r))),
    index: h("select", { id: "explore-index" }, ...indices(all).map((i) => h("option", { value: i }, i))),
    slider: h("input", { type: "range", id: "explore-slider", min: "0", max: "0", step: "1", "aria-label": "Date" }),
    date: h("output", { id: "explore-date", for: "explore-slider" }),
    other: h("select", { id: "explore-other", "aria-label": "Date right of the swipe divider" }),
    container: h("div", { class: "map explore-map", id: "explore-map", role: "region", "aria-label": "Imagery map" }),
    side: h("aside", { class: "explore-side", id: "explore-series" },
      h("p", { class: "muted" }, "Click the map: the pixel's band values and index over time.")),
  };
  mount(root, h("div", { class: "title-row" }, h("h1", {}, "Explore imagery"), link(`#/projects/${slug}`, "Project")),
    h("div", { class: "map-bar explore-bar" }, field("Recipe", c.recipe), h("label", { class: "slider" }, "Date ", c.slider),
      c.date, field("Index", c.index), field("Right of the divider", c.other)),
    h("div", { class: "explore-body" }, h("div", { class: "map-block explore-stack" }, c.container), c.side));
  return c;
}

/** The explore page. */
export async function explorePage(root: HTMLElement, params: Params): Promise<Cleanup> {
  const slug = encodeURIComponent(params.slug);
  const all = await api<ImageryItem[]>(`/projects/${slug}/imagery`);
  const { recipe, index, slider, date, other, container, side } = layout(root, slug, all);
  const map = createMap(container, { preserveDrawingBuffer: true } as never);
  const cleanups: (() => void)[] = [registerMap("explore", map)];
  let inView: ImageryItem[] = all;
  let shownId = all.at(-1)?.id ?? "";
  const listeners: (() => void)[] = [];
  const url = (item: ImageryItem): string =>
    tileUrl(item.tiles, `recipe=${encodeURIComponent(recipeFor(item, recipe.value) ?? recipe.value)}`);
  const shown = (): number => Math.max(0, inView.findIndex((i) => i.id === shownId));
  const draw = (): void => {
    const item = inView[shown()];
    if (map.getLayer(LAYER)) { map.removeLayer(LAYER); map.removeSource(LAYER); }
    if (item) addTiles(map, LAYER, url(item), item.bbox);
    slider.max = String(Math.max(0, inView.length - 1));
    slider.value = String(shown());
    slider.disabled = inView.length < 2;
    date.textContent = item ? `${day(item.datetime)} · ${item.id} (${shown() + 1}/${inView.length} in view)` : "no scene in view";
    date.dataset.item = item?.id ?? "";
    const keep = other.value;
    other.replaceChildren(...inView.map((i) => h("option", { value: i.id }, `${day(i.datetime)} · ${i.id}`)));
    other.value = inView.some((i) => i.id === keep) && keep !== item?.id ? keep
      : inView[(shown() + inView.length - 1) % Math.max(inView.length, 1)]?.id ?? "";
    listeners.forEach((l) => l());
  };
  let asked = 0;
  const search = async (): Promise<void> => {
    const mine = ++asked;
    const found = await api<StacSearch>(`/projects/${slug}/stac/search`, { query: { bbox: viewBox(map), limit: 1000 } });
    if (mine !== asked) return; // the view moved again meanwhile
    inView = found.features.map((f) => all.find((i) => i.id === f.id)).filter((i): i is ImageryItem => !!i);
    if (!inView.some((i) => i.id === shownId)) shownId = inView.at(-1)?.id ?? "";
    draw();
  };
  await loaded(map);
  const box = extent(all);
  if (box) map.fitBounds(box, { padding: 20, animate: false });
  draw();
  slider.addEventListener("input", () => { shownId = inView[Number(slider.value)]?.id ?? shownId; draw(); });
  recipe.addEventListener("change", draw);
  other.addEventListener("change", () => listeners.forEach((l) => l()));
  map.on("moveend", () => { search().catch(reportError); });
  await search();
  cleanups.push(swipe(map, container, { get items() { return inView; }, url, shown,
    other: () => inView.find((i) => i.id === other.value), changed: (l) => listeners.push(l) }));
  cleanups.push(pixelSeries(map, slug, index, side));
  return () => cleanups.reverse().forEach((c) => c());
}

/** A click on the map asks for the pixel's series (again when the index changes) and shows it with a marker. */
function pixelSeries(map: maplibregl.Map, slug: string, index: HTMLSelectElement, side: HTMLElement): () => void {
  const marker = new maplibregl.Marker({ color: "#e53935" });
  marker.getElement().id = "series-marker";
  let at: maplibregl.LngLat | null = null;
  let asked = 0;
  const ask = (): void => {
    if (!at) return;
    const mine = ++asked;
    clearErrors();
    side.dataset.state = "loading";
    api<PixelSeries>(`/projects/${slug}/imagery/series`, { query: { lon: at.lng, lat: at.lat, index: index.value } })
      .then((series) => {
        if (mine !== asked) return;
        side.replaceChildren(...seriesPanel(series));
        side.dataset.state = "ready";
      }, reportError);
  };
  map.on("click", (e) => {
    at = e.lngLat;
    marker.setLngLat(at).addTo(map);
    ask();
  });
  index.addEventListener("change", ask);
  return () => marker.remove();
}
