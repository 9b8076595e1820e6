// MapLibre maps with no external style, glyphs, sprites or tiles: an inline style with a background only.
// Pages add their own GeoJSON sources and the server's raster tiles (same origin) on top.

import maplibregl from "maplibre-gl";
import type { LngLatBoundsLike, MapOptions, StyleSpecification } from "maplibre-gl";
import "maplibre-gl/dist/maplibre-gl.css";
import type { GeoJSON } from "./types";

declare global {
  interface Window {
    /** The maps on the page by name (the browser tests read their sources and rendered features). */
    eoengineMaps?: Record<string, maplibregl.Map>;
  }
}

/** The style every map starts from: one background layer, no network requests. */
export function blankStyle(background = "#eef1f4"): StyleSpecification {
  return {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": background } }],
  };
}

/** Create a map in `container` (which needs a size) on the blank style; `options` override the defaults. */
export function createMap(container: HTMLElement, options: Partial<MapOptions> = {}): maplibregl.Map {
  const map = new maplibregl.Map({
    container,
    style: blankStyle(),
    center: [0, 0],
    zoom: 1,
    attributionControl: false,
    ...options,
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  return map;
}

/** Make `map` reachable as `window.eoengineMaps[name]`; the returned function removes the map and its entry. */
export function registerMap(name: string, map: maplibregl.Map): () => void {
  window.eoengineMaps = { ...(window.eoengineMaps ?? {}), [name]: map };
  return () => {
    if (window.eoengineMaps?.[name] === map) delete window.eoengineMaps[name];
    map.remove();
  };
}

/** Resolves once the map's style has loaded (sources and layers can be added). */
export function loaded(map: maplibregl.Map): Promise<void> {
  return new Promise((resolve) => (map.loaded() ? resolve() : map.once("load", () => resolve())));
}

function visit(coords: unknown, out: number[]): void {
  if (Array.isArray(coords) && typeof coords[0] === "number" && typeof coords[1] === "number") {
    const [x, y] = coords as number[];
    out[0] = Math.min(out[0], x);
    out[1] = Math.min(out[1], y);
    out[2] = Math.max(out[2], x);
    out[3] = Math.max(out[3], y);
  } else if (Array.isArray(coords)) {
    for (const c of coords) visit(c, out);
  }
}

/** West, south, east, north of every geometry in `data`, or null when it has none. */
export function bounds(data: GeoJSON): [number, number, number, number] | null {
  const out = [Infinity, Infinity, -Infinity, -Infinity];
  for (const feature of data.features) if (feature.geometry) visit(feature.geometry.coordinates, out);
  return Number.isFinite(out[0]) ? (out as [number, number, number, number]) : null;
}

/** Zoom `map` to the geometries of `data` (no change when there are none). */
export function fitTo(map: maplibregl.Map, data: GeoJSON, padding = 30): void {
  const box = bounds(data);
  if (box) map.fitBounds(box as LngLatBoundsLike, { padding, animate: false, maxZoom: 16 });
}

/** Add `data` as a GeoJSON source `id` drawn as filled polygons with outlines; colours from a property or one. */
export function addPolygons(map: maplibregl.Map, id: string, data: GeoJSON,
  color: string | { property: string; fallback: string }, opacity = 0.35): void {
  const paint = typeof color === "string" ? color : ["coalesce", ["get", color.property], color.fallback];
  map.addSource(id, { type: "geojson", data: data as never });
  map.addLayer({ id: `${id}-fill`, type: "fill", source: id, paint: { "fill-color": paint as never, "fill-opacity": opacity } });
  map.addLayer({ id: `${id}-line`, type: "line", source: id, paint: { "line-color": paint as never, "line-width": 1.2 } });
}

/** Add XYZ raster tiles (same origin, `{z}/{x}/{y}` in the template) as source and layer `id`, below `before`. */
export function addTiles(map: maplibregl.Map, id: string, template: string, box?: number[] | null, before?: string): void {
  map.addSource(id, {
    type: "raster", tiles: [template], tileSize: 256,
    ...(box && box.length === 4 ? { bounds: box as [number, number, number, number] } : {}),
  });
  map.addLayer({ id, type: "raster", source: id, paint: { "raster-opacity": 0.9 } }, before);
}

/** An absolute tile URL template from one relative to the API root (MapLibre's workers need absolute URLs). */
export function tileUrl(apiPath: string, query = ""): string {
  return `${location.origin}/api/v1${apiPath}${query ? `?${query}` : ""}`;
}
