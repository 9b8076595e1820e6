// Map an area now: draw (polygon or rectangle) or upload a GeoJSON area, pick a model and a date range, and submit a
// predict-area job; follow it, then see its map over the imagery with the legend, hectares per class and downloads.

import type maplibregl from "maplibre-gl";
import type { GeoJSONSource } from "maplibre-gl";
import { TerraDraw, TerraDrawPolygonMode, TerraDrawRectangleMode } from "terra-draw";
import { TerraDrawMapLibreGLAdapter } from "terra-draw-maplibre-gl-adapter";
import { api, apiUrl, reportError } from "../api";
import { clearErrors, h, mount, showError } from "../dom";
import { every, jobsTable, submitJob } from "../jobs";
import { addPolygons, addTiles, createMap, fitTo, loaded, registerMap, tileUrl } from "../map";
import type { Cleanup, Params } from "../router";
import type { Feature, GeoJSON, ImageryItem, Job, Overview, RegisteredModel } from "../types";
import { button, field, isActive, link, num, section, table } from "../ui";
import { showImagery } from "./project";

export type Geometry = { type: string; coordinates: unknown };
interface MapClass { code: number; name: string; color: string }
interface MapInfo { id: number; name: string; job_id: number | null; kind: string; classes: MapClass[]; bbox: number[]; tiles: string }
interface ClassArea extends MapClass { pixels: number; hectares: number }

const AREA = "area";
const AREA_COLOR = "#f57c00";

/** The Polygon or MultiPolygon of uploaded GeoJSON (a geometry, a Feature, or a collection's only feature), or null. */
export function areaOf(data: unknown): Geometry | null {
  const value = data as { type?: string; geometry?: Geometry; features?: Feature[] } | null;
  const geometry = value?.type === "FeatureCollection" ? (value.features?.length === 1 ? value.features[0].geometry : null)
    : value?.type === "Feature" ? value.geometry : (value as Geometry | null);
  return geometry && (geometry.type === "Polygon" || geometry.type === "MultiPolygon") ? geometry : null;
}

export function collection(area: Geometry | null): GeoJSON {
  return { type: "FeatureCollection", features: area ? [{ type: "Feature", geometry: area, properties: {} }] : [] };
}

/** West, south, east, north and the vertex count of an area, in degrees as the page reports them. */
export function describe(area: Geometry): HTMLElement {
  const points = (JSON.stringify(area.coordinates).match(/-?\d+(\.\d+)?(e-?\d+)?,-?\d+(\.\d+)?(e-?\d+)?/g) ?? [])
    .map((pair) => pair.split(",").map(Number));
  const lons = points.map((p) => p[0]);
  const lats = points.map((p) => p[1]);
  const box = [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)].map((v) => v.toFixed(5));
  return h("p", { id: "area-coords", "data-geometry": JSON.stringify(area) },
    `${area.type}, ${points.length} vertices; lon ${box[0]} to ${box[2]}, lat ${box[1]} to ${box[3]}`);
}

/** The models to map with: registry aliases and versions, then the packages of the project's runs. */
export async function modelOptions(slug: string, o: Overview, id = "map-area-model"): Promise<HTMLSelectElement> {
  const registered = await api<RegisteredModel[]>(`/projects/${encodeURIComponent(slug)}/models`);
  const options: [string, string][] = registered.flatMap((m) => [
    ...Object.entries(m.aliases).map(([alias, v]): [string, string] => [`models:/${m.name}@${alias}`, `${m.name} @${alias} (v${v})`]),
    ...m.versions.map((v): [string, string] => [`models:/${m.name}/${v.version}`, `${m.name} v${v.version}`])]);
  for (const run of o.runs) if (run.meta.package) options.push([run.ref || run.name, `run ${(run.ref || run.name).slice(0, 12)} package (${String(run.meta.model ?? "")})`]);
  const node = h("select", { id, name: "model" });
  for (const [value, text] of options) node.append(h("option", { value }, text));
  if (!options.length) node.append(h("option", { value: "" }, "no model yet: train and register one"));
  return node;
}

/** Date inputs spanning the project's imagery (the last year without any). */
function dateRange(items: ImageryItem[]): [HTMLInputElement, HTMLInputElement] {
  const days = items.map((i) => i.datetime?.slice(0, 10)).filter((d): d is string => !!d).sort();
  const today = new Date().toISOString().slice(0, 10);
  const from = h("input", { type: "date", id: "map-area-from", value: days[0] ?? `${Number(today.slice(0, 4)) - 1}${today.slice(4)}` });
  const to = h("input", { type: "date", id: "map-area-to", value: days[days.length - 1] ?? today });
  return [from, to];
}

/** Legend, hectares table and downloads of a finished map within the area. */
async function results(slug: string, info: MapInfo, area: Geometry): Promise<HTMLElement> {
  const base = `/projects/${encodeURIComponent(slug)}/maps/${info.id}`;
  const areas = await api<ClassArea[]>(`${base}/areas`, { query: { area: JSON.stringify(area) } });
  const swatch = (c: MapClass): HTMLElement => h("span", { class: "swatch", style: `background:${c.color}` });
  const legend = h("ul", { class: "class-list", id: "map-area-legend", "aria-label": "Legend" },
    ...info.classes.map((c) => h("li", { "data-code": String(c.code) }, swatch(c), c.name)));
  const rows = areas.map((a) => [h("span", { "data-code": String(a.code) }, swatch(a), a.name), String(a.code), num(a.pixels),
    h("span", { class: "hectares", "data-hectares": String(a.hectares) }, a.hectares.toFixed(2))]);
  const total = areas.reduce((sum, a) => sum + a.hectares, 0);
  rows.push([h("strong", {}, "Total"), "", num(areas.reduce((sum, a) => sum + a.pixels, 0)), h("strong", {}, total.toFixed(2))]);
  const query = `?area=${encodeURIComponent(JSON.stringify(area))}`;
  return h("div", { id: "map-area-results" }, h("h3", {}, "Legend"), legend,
    h("h3", {}, "Hectares per class within the area"), h("div", { id: "map-area-hectares" },
      table(["Class", "Code", "Pixels", "Hectares"], rows)),
    h("p", { class: "actions" },
      link(apiUrl(`${base}/download`), "Download map (COG)", { class: "button-link", id: "download-cog", download: "" }),
      link(`${apiUrl(`${base}/polygons`)}${query}`, "Download polygons (GeoPackage)",
        { class: "button-link", id: "download-gpkg", download: "" })));
}

/** Follow the job in `slot`; when it succeeded, show its map on `map` and its results in `out`. */
function follow(slug: string, first: Job, area: Geometry, map: maplibregl.Map, slot: HTMLElement, out: HTMLElement): () => void {
  const show = async (job: Job): Promise<boolean> => {
    slot.replaceChildren(jobsTable([job]), job.error ? h("div", { class: "job-error", role: "status" },
      h("strong", {}, job.error.error ?? "The job failed"), job.error.fix ? h("span", { class: "alert-fix" }, job.error.fix) : null) : "");
    slot.dataset.state = job.state;
    if (isActive(job) || job.state !== "succeeded") return isActive(job);
    const info = (await api<MapInfo[]>(`/projects/${encodeURIComponent(slug)}/maps`)).find((m) => m.job_id === job.id);
    if (!info) throw new Error(`job ${job.id} succeeded but its map is not indexed`);
    addTiles(map, `result-${info.id}`, tileUrl(info.tiles), info.bbox, `${AREA}-fill`);
    out.replaceChildren(await results(slug, info, area));
    return false;
  };
  void show(first).catch(reportError);
  return every(1000, async () => show(await api<Job>(`/jobs/${first.id}`)));
}

/** The drawing tools: Terra Draw's polygon and rectangle; the last finished shape becomes the area. */
export function drawTools(map: maplibregl.Map, setArea: (area: Geometry) => void): { tools: HTMLElement; stop: () => void } {
  const draw = new TerraDraw({ adapter: new TerraDrawMapLibreGLAdapter({ map }),
    modes: [new TerraDrawPolygonMode(), new TerraDrawRectangleMode()] });
  draw.start();
  draw.on("finish", (id) => {
    const drawn = draw.getSnapshotFeature(id)?.geometry as Geometry | undefined;
    draw.clear();
    draw.setMode("static");
    if (drawn) setArea(drawn);
  });
  const mode = (name: string) => () => { clearErrors(); draw.setMode(name); };
  const tools = h("div", { class: "actions" }, button("Draw polygon", mode("polygon"), { id: "draw-polygon" }),
    button("Draw rectangle", mode("rectangle"), { id: "draw-rectangle" }));
  return { tools, stop: () => draw.stop() };
}

/** A file input whose GeoJSON area (a Polygon or MultiPolygon, a Feature, or a collection of one) becomes the area. */
export function uploader(setArea: (area: Geometry) => void): HTMLElement {
  const input = h("input", { type: "file", id: "area-file", accept: ".geojson,.json,application/geo+json" });
  input.addEventListener("change", () => {
    const file = input.files?.[0];
    if (!file) return;
    clearErrors();
    file.text().then((text) => {
      const area = areaOf(JSON.parse(text));
      if (!area) throw new SyntaxError("it holds no single Polygon or MultiPolygon");
      setArea(area);
    }).catch((err: unknown) => showError(`${file.name} is not a GeoJSON area: ${(err as Error).message}`,
      "Upload a GeoJSON Polygon or MultiPolygon in lon/lat (a geometry, a Feature, or a collection of one feature)."));
  });
  return field("Or upload a GeoJSON area", input);
}

/** The "Map an area now" page. */
export async function mapAreaPage(root: HTMLElement, params: Params): Promise<Cleanup> {
  const slug = params.slug;
  const overview = await api<Overview>(`/projects/${encodeURIComponent(slug)}`);
  const [models, items] = await Promise.all([modelOptions(slug, overview),
    api<ImageryItem[]>(`/projects/${encodeURIComponent(slug)}/imagery`)]);
  const [from, to] = dateRange(items);
  const container = h("div", { class: "map", id: "map-area-map", role: "region", "aria-label": "Map: draw the area here" });
  const recipes = h("select", { id: "map-area-recipe", disabled: "" });
  const report = h("div", { id: "area-report" }, h("p", { class: "muted" }, "No area yet: draw one on the map or upload one."));
  const jobSlot = h("div", { id: "map-area-job" });
  const out = h("div", {});
  const submit = h("button", { type: "submit", id: "map-area-submit", class: "primary" }, "Map this area");
  const form = h("form", { class: "job-form", id: "map-area-form" }, field("Model", models), field("From", from),
    field("To", to), submit);
  const map = createMap(container);
  const remove = registerMap("map-area", map);
  let area: Geometry | null = null;
  let closed = false;
  const stops: (() => void)[] = [];
  const setArea = (next: Geometry): void => {
    area = next;
    (map.getSource(AREA) as GeoJSONSource | undefined)?.setData(collection(area) as never);
    fitTo(map, collection(area), 60);
    report.replaceChildren(describe(area));
  };
  await loaded(map);
  addPolygons(map, AREA, collection(null), AREA_COLOR, 0.15);
  const { tools, stop } = drawTools(map, setArea);
  stops.push(stop);
  mount(root,
    h("div", { class: "title-row" }, h("h1", {}, "Map an area now"), link(`#/projects/${encodeURIComponent(slug)}`, `Project ${overview.name}`)),
    h("div", { class: "map-block" }, container, h("div", { class: "map-bar" }, tools, field("Imagery", recipes))),
    section("Area, model and dates", "map-area-input", report, uploader(setArea), form),
    section("Job", "map-area-follow", jobSlot), section("Result", "map-area-result", out));
  map.resize();
  const bbox = items.flatMap((i) => i.bbox.length === 4 ? [i.bbox] : []);
  if (bbox.length) map.fitBounds([Math.min(...bbox.map((b) => b[0])), Math.min(...bbox.map((b) => b[1])),
    Math.max(...bbox.map((b) => b[2])), Math.max(...bbox.map((b) => b[3]))], { padding: 30, animate: false });
  void showImagery(map, slug, recipes, () => !closed, `${AREA}-fill`).catch(reportError);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    if (!area) return showError("No area to map yet", "Draw a polygon or rectangle on the map, or upload a GeoJSON area.");
    if (!models.value) return showError("No model to map with", "Train a model and register it (or use a run's package).");
    if (!from.value || !to.value || from.value > to.value) return showError("The date range is empty", "Choose From on or before To.");
    const spec = { kind: "predict-area", model: models.value, aoi: JSON.stringify(area), cache: "cache",
      datetime: `${from.value}T00:00:00Z/${to.value}T23:59:59Z`, output: `maps/map-area-${Date.now()}.tif` };
    const chosen = area;
    submitJob(slug, spec).then((job) => { stops.push(follow(slug, job, chosen, map, jobSlot, out)); }, reportError);
  });
  return () => {
    closed = true;
    stops.forEach((s) => s());
    remove();
  };
}
