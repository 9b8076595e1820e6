// MapLibre maps with no external style, glyphs, sprites or tiles: an inline style with a background only.
// Pages add their own GeoJSON sources and the server's raster tiles (same origin) on top.

import maplibregl from "maplibre-gl";
import type { MapOptions, StyleSpecification } from "maplibre-gl";
import "maplibre-gl/dist/maplibre-gl.css";

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
  return new maplibregl.Map({
    container,
    style: blankStyle(),
    center: [0, 0],
    zoom: 1,
    attributionControl: false,
    ...options,
  });
}
