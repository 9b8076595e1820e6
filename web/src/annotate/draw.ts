// Terra Draw on the annotate map: the drawing tools, class colours, and a read-only layer for what Terra Draw
// cannot edit (polygons with holes, multi-part geometries). Implements the edits' View.

import type maplibregl from "maplibre-gl";
import type { GeoJSONSource } from "maplibre-gl";
import {
  type GeoJSONStoreFeatures, TerraDraw, TerraDrawFreehandMode, TerraDrawLineStringMode, TerraDrawPointMode,
  TerraDrawPolygonMode, TerraDrawRectangleMode, TerraDrawSelectMode,
} from "terra-draw";
import { TerraDrawMapLibreGLAdapter } from "terra-draw-maplibre-gl-adapter";
import { addPolygons } from "../map";
import type { GeoJSON } from "../types";
import type { Geometry, Shape, View } from "./edits";

export const TOOLS = ["polygon", "rectangle", "freehand", "point", "linestring", "select", "hole"] as const;
export type Tool = (typeof TOOLS)[number];
const MODE_OF: Record<string, Tool> = { Polygon: "polygon", Point: "point", LineString: "linestring" };
const STATIC = "annotation-static";
type Colour = `#${string}`;

const PRECISION = 1e9; // Terra Draw refuses coordinates with more than 9 decimals (a Python client's may have 15)

/** `geometry` with coordinates rounded to Terra Draw's 9 decimals (0.1 mm): its copy of a stored shape. */
export function rounded(geometry: Geometry): Geometry {
  const round = (c: unknown): unknown => (typeof c === "number" ? Math.round(c * PRECISION) / PRECISION
    : Array.isArray(c) ? c.map(round) : c);
  return { ...geometry, coordinates: round(geometry.coordinates) };
}

/** Whether Terra Draw can edit `shape` (one of its modes' geometries, a polygon without holes). */
function editable(shape: Shape): boolean {
  const holed = shape.geometry.type === "Polygon" && (shape.geometry.coordinates as unknown[]).length > 1;
  return !!MODE_OF[shape.geometry.type] && !holed;
}

/** The map's drawing: Terra Draw for editable shapes, a GeoJSON layer for the rest. */
export class Drawing implements View {
  readonly draw: TerraDraw;
  readonly shapes = new Map<string, Shape>();
  private readonly fixed = new Map<Shape, Geometry>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly map: maplibregl.Map, private readonly colour: (label: unknown) => string) {
    const fill = (f: GeoJSONStoreFeatures): Colour => this.colour(f.properties.label) as Colour;
    const polygon = { fillColor: fill, outlineColor: fill, fillOpacity: 0.35, outlineWidth: 2 };
    const snapping = { toCoordinate: true, toLine: true };
    const editable = { feature: { draggable: true, coordinates: { draggable: true, deletable: true, midpoints: true, snappable: true } } };
    this.draw = new TerraDraw({
      adapter: new TerraDrawMapLibreGLAdapter({ map }),
      modes: [
        new TerraDrawPolygonMode({ snapping, styles: polygon }),
        new TerraDrawPolygonMode({ modeName: "hole", snapping, styles: { fillOpacity: 0.1 } }),
        new TerraDrawRectangleMode({ styles: polygon }),
        new TerraDrawFreehandMode({ styles: polygon }),
        new TerraDrawPointMode({ styles: { pointColor: fill, pointWidth: 6 } }),
        new TerraDrawLineStringMode({ snapping, styles: { lineStringColor: fill, lineStringWidth: 3 } }),
        new TerraDrawSelectMode({
          keyEvents: null, // Delete is the page's (a delete is a write)
          flags: { polygon: editable, rectangle: editable, freehand: editable, point: { feature: { draggable: true } },
            linestring: editable },
        }),
      ],
    });
    this.draw.start();
    addPolygons(map, STATIC, { type: "FeatureCollection", features: [] }, { property: "colour", fallback: "#555" });
  }

  /** The shape drawn with Terra Draw id `id` (undefined for one being drawn or a hole outline). */
  shapeOf(id: string | number): Shape | undefined { return this.shapes.get(String(id)); }

  /** The geometry Terra Draw holds for `id`. */
  geometryOf(id: string | number): Geometry {
    return this.draw.getSnapshotFeature(id)?.geometry as Geometry;
  }

  /** Show `shape`: in Terra Draw when it can edit it, else in the read-only layer. */
  show(shape: Shape): void {
    if (shape.drawId && this.draw.hasFeature(shape.drawId)) {
      if (editable(shape)) {
        this.draw.updateFeatureGeometry(shape.drawId, rounded(shape.geometry) as never);
        this.draw.updateFeatureProperties(shape.drawId, { label: shape.label as never });
        return;
      }
      this.hide(shape);
    }
    this.showAll([shape]);
  }

  /** Show new shapes: the editable ones added to Terra Draw in one batch, the others (and any it refuses) read-only. */
  showAll(shapes: Shape[]): void {
    const ids = new Map<string, Shape>();
    let changed = false;
    const features = shapes.filter(editable).map((shape) => {
      if (shape.drawId) this.shapes.delete(shape.drawId);
      const id = crypto.randomUUID();
      ids.set(id, shape);
      return { id, type: "Feature" as const, geometry: rounded(shape.geometry) as never,
        properties: { mode: MODE_OF[shape.geometry.type], label: shape.label as never } };
    });
    const added = new Set<Shape>();
    for (const result of features.length ? this.draw.addFeatures(features) : []) {
      const shape = ids.get(String(result.id));
      if (!shape || !result.valid) continue;
      shape.drawId = String(result.id);
      this.shapes.set(shape.drawId, shape);
      changed = this.fixed.delete(shape) || changed;
      added.add(shape);
    }
    const rest = shapes.filter((s) => !added.has(s));
    for (const shape of rest) {
      shape.drawId = null;
      this.fixed.set(shape, shape.geometry);
    }
    if (changed || rest.length) this.refreshFixed();
  }

  /** Every label as GeoJSON with its colour (editable ones as Terra Draw holds them now: mid-drag too). */
  labels(): GeoJSON {
    const features = this.all().map((s) => ({ type: "Feature" as const, properties: { colour: this.colour(s.label), label: s.label },
      geometry: (s.drawId && this.draw.hasFeature(s.drawId) ? this.geometryOf(s.drawId) : s.geometry) as Geometry }));
    return { type: "FeatureCollection", features };
  }

  /** Call `listener` (once per frame at most) after the labels changed: drawn, edited, shown, hidden or recoloured. */
  onChange(listener: () => void): () => void {
    let frame = 0;
    const later = (): void => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; listener(); }); };
    this.draw.on("change", later);
    this.listeners.add(later);
    return () => { this.draw.off("change", later); this.listeners.delete(later); cancelAnimationFrame(frame); };
  }

  /** Take `shape` off the map. */
  hide(shape: Shape): void {
    if (shape.drawId && this.draw.hasFeature(shape.drawId)) this.draw.removeFeatures([shape.drawId]);
    if (shape.drawId) this.shapes.delete(shape.drawId);
    shape.drawId = null;
    if (this.fixed.delete(shape)) this.refreshFixed();
  }

  /** Every shape on the map (editable and read-only). */
  all(): Shape[] { return [...this.shapes.values(), ...this.fixed.keys()]; }

  /** Recolour the read-only layer (after a class change) and let Terra Draw restyle. */
  refreshFixed(): void {
    this.listeners.forEach((l) => l());
    const features = [...this.fixed.keys()].map((s) => ({ type: "Feature", geometry: s.geometry,
      properties: { colour: this.colour(s.label), fid: s.fid } }));
    (this.map.getSource(STATIC) as GeoJSONSource | undefined)?.setData({ type: "FeatureCollection", features } as never);
  }
}

/** Whether [x, y] is inside the ring (even-odd rule). */
export function inRing([x, y]: number[], ring: number[][]): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** The polygon shape whose outer ring holds every vertex of `ring` (the one a hole cuts), or undefined. */
export function around(shapes: Shape[], ring: number[][]): Shape | undefined {
  return shapes.find((s) => s.geometry.type === "Polygon"
    && ring.every((p) => inRing(p, (s.geometry.coordinates as number[][][])[0])));
}
