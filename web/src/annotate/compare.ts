// "Compare": two maps side by side, the left one (where drawing happens) showing the chosen date and the right one
// another date; their cameras follow each other both ways and the drawn labels are overlaid on both.

import maplibregl from "maplibre-gl";
import type { GeoJSONSource } from "maplibre-gl";
import { h } from "../dom";
import { addPolygons, addTiles, blankStyle, registerMap } from "../map";
import { button } from "../ui";
import type { Drawing } from "./draw";
import type { Dates } from "./imagery";

const LABELS = "compare-labels";

/** Keep `to`'s camera on `from`'s while `from` moves; `busy` stops the echo of the other direction. */
function follow(from: maplibregl.Map, to: maplibregl.Map, busy: { now: boolean }): () => void {
  const move = (): void => {
    if (busy.now) return;
    busy.now = true;
    to.jumpTo({ center: from.getCenter(), zoom: from.getZoom(), bearing: from.getBearing(), pitch: from.getPitch() });
    busy.now = false;
  };
  from.on("move", move);
  return () => { from.off("move", move); };
}

/** The labels of `drawing` as layers of `map` (fill and outline for polygons, lines, circles for points). */
function overlay(map: maplibregl.Map, drawing: Drawing): () => void {
  addPolygons(map, LABELS, drawing.labels(), { property: "colour", fallback: "#d81b60" });
  map.setFilter(`${LABELS}-fill`, ["==", ["geometry-type"], "Polygon"]);
  map.addLayer({ id: `${LABELS}-point`, type: "circle", source: LABELS, filter: ["==", ["geometry-type"], "Point"],
    paint: { "circle-color": ["coalesce", ["get", "colour"], "#d81b60"], "circle-radius": 5 } });
  return drawing.onChange(() => (map.getSource(LABELS) as GeoJSONSource | undefined)?.setData(drawing.labels() as never));
}

/** The "Compare" button and its date choice in `bar`; `toggle()` (the `c` key) opens or closes the right map. */
export function compare(left: maplibregl.Map, stack: HTMLElement, bar: HTMLElement, dates: Dates, drawing: Drawing) {
  const other = h("select", { id: "compare-date", "aria-label": "Date on the right" },
    ...dates.items.map((item, i) => h("option", { value: String(i) }, item.datetime ?? item.id)));
  other.value = String((dates.shown() + 1) % Math.max(dates.items.length, 1));
  const pane = h("div", { class: "map annotate-map compare-map", id: "compare-map", role: "region", "aria-label": "Compared date" });
  const busy = { now: false };
  let right: { map: maplibregl.Map; stop: (() => void)[] } | null = null;
  const tiles = (): void => {
    const item = dates.items[Number(other.value)];
    if (right && item && right.map.getSource("compare-date")) {
      (right.map.getSource("compare-date") as maplibregl.RasterTileSource).setTiles([dates.url(item)]);
    }
  };
  const open = (): void => {
    stack.classList.add("compare");
    stack.append(pane);
    left.resize();
    const map = new maplibregl.Map({ container: pane, style: blankStyle(), attributionControl: false,
      center: left.getCenter(), zoom: left.getZoom(), bearing: left.getBearing(), pitch: left.getPitch() });
    const stop = [registerMap("compare", map), follow(left, map, busy), follow(map, left, busy)];
    right = { map, stop };
    map.on("load", () => {
      const item = dates.items[Number(other.value)];
      if (item) addTiles(map, "compare-date", dates.url(item), item.bbox);
      stop.unshift(overlay(map, drawing));
      pane.dataset.ready = "true";
    });
  };
  const close = (): void => {
    right?.stop.forEach((s) => s());
    right = null;
    pane.remove();
    delete pane.dataset.ready;
    stack.classList.remove("compare");
    left.resize();
  };
  const toggle = (): void => {
    if (right) close(); else open();
    toggleButton.setAttribute("aria-pressed", String(!!right));
  };
  const toggleButton = button("Compare", toggle, { id: "compare", "aria-pressed": "false", title: "Two dates side by side (c)" });
  other.addEventListener("change", tiles);
  dates.changed(tiles);
  if (dates.items.length > 1) bar.append(toggleButton, other);
  return { toggle: () => { if (dates.items.length > 1) toggle(); }, close };
}
