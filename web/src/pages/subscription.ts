// One subscription: its per-class area time series, a map with a time slider over its runs' maps and change polygons,
// the status and drift of each run, and the webhook deliveries.

import type maplibregl from "maplibre-gl";
import { api, apiUrl } from "../api";
import { type Series, lineChart } from "../charts";
import { h, mount } from "../dom";
import { addPolygons, addTiles, createMap, fitTo, loaded, registerMap, tileUrl } from "../map";
import type { Cleanup, Params } from "../router";
import type { GeoJSON } from "../types";
import { keyValues, link, num, section, stateBadge, table, when } from "../ui";
import type { Subscription } from "./subscriptions";

interface MapClass { code: number; name: string; color: string }
interface MapInfo { id: number; classes: MapClass[]; bbox: number[]; tiles: string }
interface Result { run_id: number; key: string; period_start: string; period_end: string; map_id: number | null; scene_ids: string[] }
interface StatRow { run: string; datetime: string; class: string; code: number; pixels: number; hectares: number }
interface Change { previous_key: string; changed_hectares: number; polygon_count: number }
interface RunRecord {
  period_start: string; period_end: string; status: string; scene_ids: string[]; model_version: string | null;
  newest_scene: string | null;
  change: Change | null; drift: { status: string; reasons: string[] } | null; error: { error: string; fix?: string } | null;
}
interface Run { id: number; key: string; status: string; job_id: number | null; record: RunRecord }
interface Delivery { run_key: string; delivery: { topic: string; url: string; attempts: number; status_code: number | null; outcome: string } }

const PALETTE = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
const day = (iso: string): string => iso.slice(0, 10);

/** The hectares of each class over the runs, one line per class (x: the end of each run's period). */
function areaChart(rows: StatRow[], colours: Map<string, string>): HTMLElement {
  const names = [...new Set(rows.map((r) => r.class))];
  const series: Series[] = names.map((name, i) => ({ name, color: colours.get(name) ?? PALETTE[i % PALETTE.length],
    points: rows.filter((r) => r.class === name).map((r) => ({ x: Date.parse(r.datetime), y: r.hectares })) }));
  const legend = h("ul", { class: "class-list" }, ...series.map((s) =>
    h("li", {}, h("span", { class: "swatch", style: `background:${s.color}` }), s.name)));
  return h("div", { id: "subscription-chart" }, rows.length
    ? lineChart(series, "Hectares per class", 640, 240, (x) => day(new Date(x).toISOString())) : h("p", {}, "No run yet."),
  legend);
}

/** The runs table: period, status, scenes, change and drift of each. */
function runsTable(runs: Run[]): HTMLElement {
  const rows = runs.map((r) => [day(r.record.period_start) + " – " + day(r.record.period_end),
    h("span", { "data-run": r.key }, stateBadge(r.status)), r.record.scene_ids.join(", "),
    r.record.change ? `${r.record.change.changed_hectares.toFixed(2)} ha` : "—",
    r.record.drift ? r.record.drift.status : "—", r.record.error ? r.record.error.error : ""]);
  return h("div", { id: "subscription-runs" },
    table(["Period", "Status", "Scenes", "Changed", "Drift", "Error"], rows, "No run yet."));
}

/** Show the run `index` of `results` on `map`: its map tiles, and its change polygons when it has some. */
async function showRun(slug: string, subId: number, map: maplibregl.Map, result: Result, runs: Run[],
  out: HTMLElement, rows: StatRow[]): Promise<void> {
  for (const id of ["run-map", "run-change-fill", "run-change-line"]) if (map.getLayer(id)) map.removeLayer(id);
  for (const id of ["run-map", "run-change"]) if (map.getSource(id)) map.removeSource(id);
  if (result.map_id !== null) {
    const info = await api<MapInfo>(`/projects/${encodeURIComponent(slug)}/maps/${result.map_id}`);
    addTiles(map, "run-map", tileUrl(info.tiles), info.bbox, "area-fill");
  }
  const run = runs.find((r) => r.key === result.key);
  if (run?.record.change) {
    const change = await api<GeoJSON>(`/projects/${encodeURIComponent(slug)}/subscriptions/${subId}/runs/${result.key}/change`);
    addPolygons(map, "run-change", change, "#e6194b", 0.5);
  }
  const mine = rows.filter((r) => r.run === result.key);
  out.replaceChildren(h("p", { id: "run-shown", "data-run": result.key }, `Run of ${day(result.period_start)} – `
    + `${day(result.period_end)}: ${result.scene_ids.join(", ")}${run?.record.change
      ? `; ${run.record.change.polygon_count} change polygon(s), ${run.record.change.changed_hectares.toFixed(2)} ha` : ""}`),
  h("div", { id: "run-hectares" }, table(["Class", "Pixels", "Hectares"],
    mine.map((r) => [r.class, num(r.pixels), h("span", { "data-hectares": String(r.hectares) }, r.hectares.toFixed(2))]))));
}

/** The map with the area, and a slider over the runs with a map (newest selected). */
async function runMap(slug: string, sub: Subscription, results: Result[], runs: Run[], rows: StatRow[],
  container: HTMLElement, slot: HTMLElement): Promise<maplibregl.Map> {
  const map = createMap(container, { preserveDrawingBuffer: true } as never);
  await loaded(map);
  const area: GeoJSON = { type: "FeatureCollection", features: [{ type: "Feature", geometry: sub.spec.area as never, properties: {} }] };
  addPolygons(map, "area", area, "#f57c00", 0.08);
  fitTo(map, area);
  const label = h("span", { id: "run-date" });
  const slider = h("input", { type: "range", id: "run-slider", min: "0", max: String(Math.max(0, results.length - 1)),
    value: String(Math.max(0, results.length - 1)), step: "1", "aria-label": "Run" }) as HTMLInputElement;
  const details = h("div", {});
  const pick = (): void => {
    const chosen = results[Number(slider.value)];
    const scene = runs.find((r) => r.key === chosen?.key)?.record.newest_scene;
    label.textContent = chosen ? `imagery of ${day(scene ?? chosen.period_end)}` : "";
    if (chosen) void showRun(slug, sub.id, map, chosen, runs, details, rows);
  };
  slider.addEventListener("input", pick);
  slot.replaceChildren(results.length ? h("label", {}, "Run ", slider, " ", label) : h("p", {}, "No map yet."), details);
  pick();
  return map;
}

/** The subscription page (`#/projects/:slug/subscriptions/:id`). */
export async function subscriptionPage(root: HTMLElement, params: Params): Promise<Cleanup> {
  const slug = params.slug;
  const base = `/projects/${encodeURIComponent(slug)}/subscriptions/${Number(params.id)}`;
  const [sub, runs, results, stats, deliveries] = await Promise.all([api<Subscription>(base), api<Run[]>(`${base}/runs`),
    api<Result[]>(`${base}/results`), api<{ series: StatRow[] }>(`${base}/stats`), api<Delivery[]>(`${base}/deliveries`)]);
  const colours = new Map<string, string>();
  if (results[0]?.map_id != null) {
    const info = await api<MapInfo>(`/projects/${encodeURIComponent(slug)}/maps/${results[0].map_id}`);
    for (const c of info.classes) colours.set(c.name, c.color);
  }
  const container = h("div", { class: "map", id: "subscription-map" });
  const slot = h("div", { id: "subscription-slider" });
  const sent = deliveries.map((d) => [d.run_key, d.delivery.topic, d.delivery.url, String(d.delivery.attempts),
    d.delivery.status_code === null ? "—" : String(d.delivery.status_code), d.delivery.outcome]);
  mount(root, h("div", { class: "title-row" }, h("h1", {}, sub.name),
    link(`#/projects/${encodeURIComponent(slug)}/subscriptions`, "All subscriptions", { class: "button-link" })),
  keyValues([["State", stateBadge(sub.state)], ["Cadence", String(sub.spec.cadence)], ["Model", String(sub.spec.model)],
    ["Composite", String(sub.spec.composite)], ["Last due", when(sub.last_due)], ["Next due", when(sub.next_due)]]),
  section("Area per class", "subscription-areas", areaChart(stats.series, colours),
    h("p", { class: "actions" }, link(apiUrl(`${base}/stats`, { format: "csv" }), "Download CSV", { class: "button-link", download: "" }),
      link(apiUrl(`${base}/stats`, { format: "parquet" }), "Download GeoParquet", { class: "button-link", download: "" }))),
  section("Maps", "subscription-maps", container, slot),
  section("Runs", "subscription-run-list", runsTable(runs)),
  section("Webhook deliveries", "subscription-deliveries",
    table(["Run", "Topic", "URL", "Attempts", "Answer", "Outcome"], sent, "No delivery yet.")));
  const map = await runMap(slug, sub, results, runs, stats.series, container, slot);
  return registerMap("subscription", map);
}
