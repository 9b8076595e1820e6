// A dataset version: chip footprints by split, class balance per split, band statistics, chip previews, leakage.

import { apiUrl, api, reportError, request } from "../api";
import { groupedBars } from "../charts";
import { clearErrors, h, mount } from "../dom";
import { lineagePanel } from "../lineage";
import { addPolygons, createMap, fitTo, loaded, registerMap } from "../map";
import type { Cleanup, Params } from "../router";
import type { DatasetDetail, GeoJSON, Leakage, SplitBalance } from "../types";
import { field, keyValues, link, num, section, select, shortRef, table } from "../ui";

const PREVIEWS_PER_SPLIT = 2;

function splitLegend(data: GeoJSON): HTMLElement {
  const colours = new Map<string, { color: string; chips: number }>();
  for (const f of data.features) {
    const split = String(f.properties?.split ?? "?");
    const entry = colours.get(split) ?? { color: String(f.properties?.color ?? "#7f7f7f"), chips: 0 };
    entry.chips += 1;
    colours.set(split, entry);
  }
  return h("ul", { class: "legend", id: "split-legend", "aria-label": "Splits" }, ...[...colours].map(([split, e]) =>
    h("li", { "data-split": split }, h("span", { class: "swatch", style: `background:${e.color}` }),
      `${split} (${num(e.chips)} chips)`)));
}

function balance(splits: SplitBalance[]): HTMLElement {
  const groups = splits.map((s) => {
    const labelled = Math.max(1, s.pixels - s.unlabelled);
    return { label: s.split, bars: s.classes.map((c) => ({ name: c.name, value: (100 * c.pixels) / labelled, color: c.color })) };
  });
  const classes = splits[0]?.classes ?? [];
  const legend = h("ul", { class: "legend", id: "class-legend", "aria-label": "Classes" }, ...classes.map((c) =>
    h("li", { "data-class": c.name }, h("span", { class: "swatch", style: `background:${c.color}` }), c.name)));
  const rows = splits.map((s) => [s.split, num(s.chips), num(s.unlabelled), ...s.classes.map((c) => num(c.pixels))]);
  const figure = h("figure", { id: "class-balance-chart" }, groupedBars(groups, "Share of labelled pixels per class and split"),
    h("figcaption", {}, "Share of each split's labelled pixels per class"));
  return h("div", {}, legend, figure, h("details", {}, h("summary", {}, "Pixel counts"),
    table(["Split", "Chips", "Unlabelled", ...classes.map((c) => c.name)], rows)));
}

function bandTable(detail: DatasetDetail): HTMLElement {
  const stats = detail.band_stats;
  const rows = (stats.channels ?? []).map((c) => [c.name, num(c.mean), num(c.std), num(c.min), num(c.max), num(c.p2),
    num(c.p98), `${num(100 * c.nodata_share, 3)}%`]);
  return h("div", {}, h("p", { class: "muted" }, `Over ${num(stats.sampled ?? 0)} of ${num(stats.chips ?? 0)} ${stats.split ?? "train"} chips.`),
    table(["Channel", "Mean", "Std", "Min", "Max", "P2", "P98", "Nodata"], rows));
}

async function pngInto(img: HTMLImageElement, path: string, query: Record<string, string>): Promise<void> {
  const blob = await (await request(path, { query })).blob();
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
}

function previews(base: string, channels: string[], data: GeoJSON): HTMLElement {
  const all = new Map<string, number[]>();
  for (const f of data.features) {
    const split = String(f.properties?.split ?? "?");
    all.set(split, [...(all.get(split) ?? []), Number(f.properties?.chip ?? f.id)]);
  }
  // chips spread over each split (its first ones are often at the scene's edge, mostly nodata)
  const bySplit = new Map([...all].map(([split, ids]) => [split, Array.from({ length: Math.min(PREVIEWS_PER_SPLIT, ids.length) },
    (_, i) => ids[Math.floor(((i + 1) * ids.length) / (PREVIEWS_PER_SPLIT + 1))])]));
  const options = channels.map((c): [string, string] => [c, c]);
  const pick = (i: number, fallback: string): HTMLSelectElement => {
    const chosen = channels.includes(fallback) ? fallback : channels[Math.min(i, channels.length - 1)] ?? "";
    return select(`band${i}`, options, chosen);
  };
  const bands = [pick(0, "red"), pick(1, "green"), pick(2, "blue")];
  bands.forEach((b, i) => (b.id = `preview-band-${i}`));
  const stretch = h("input", { name: "stretch", id: "preview-stretch", value: "p2,p98", size: "12" });
  const grid = h("div", { class: "chips", id: "chip-previews" });
  const images: [HTMLImageElement, number][] = [];
  for (const [split, chips] of bySplit) for (const chip of chips) {
    const img = h("img", { alt: `chip ${chip} (${split})`, width: "128", height: "128", class: "chip-image" });
    const labels = h("img", { alt: `labels of chip ${chip}`, width: "128", height: "128", class: "chip-labels" });
    grid.append(h("figure", { class: "chip" }, img, labels, h("figcaption", {}, `chip ${chip} · ${split}`)));
    images.push([img, chip]);
    void pngInto(labels, `${base}/chips/${chip}/labels.png`, {}).catch(reportError);
  }
  const form = h("form", { class: "recipe", id: "preview-recipe" }, field("Red", bands[0]), field("Green", bands[1]),
    field("Blue", bands[2]), field("Stretch", stretch, "p2,p98 (percentiles) or 0,0.3 (values)"),
    h("button", { type: "submit" }, "Show"));
  const draw = (): void => {
    clearErrors();
    const query = { bands: bands.map((b) => b.value).join(","), stretch: stretch.value };
    Promise.all(images.map(([img, chip]) => pngInto(img, `${base}/chips/${chip}/preview.png`, query))).catch(reportError);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    draw();
  });
  draw();
  return h("div", {}, form, grid);
}

function leakageView(l: Leakage): HTMLElement {
  const rows = l.splits.map((s) => [s.split, num(s.chips), s.min_distance_m === null ? "—" : `${num(s.min_distance_m, 4)} m`,
    num(s.within), num(s.overlapping)]);
  return h("div", { id: "leakage-result" },
    h("p", {}, h("span", { class: `badge verdict-${l.verdict}` }, l.verdict), " ", l.summary),
    table(["Split", "Chips", "Closest to train", `Train chips within ${num(l.threshold_m)} m`, "Overlapping"], rows));
}

/** The dataset page (`ref` is name@version). */
export async function datasetPage(root: HTMLElement, params: Params): Promise<Cleanup> {
  const project = `/projects/${encodeURIComponent(params.slug)}`;
  const base = `${project}/datasets/${encodeURIComponent(params.ref)}`;
  const [detail, chips] = await Promise.all([api<DatasetDetail>(base), api<GeoJSON>(`${base}/footprints`)]);
  const container = h("div", { class: "map", id: "dataset-map", role: "region", "aria-label": "Map of the chips by split" });
  const leak = h("div", {}, h("p", { class: "muted" }, "Measuring distances between splits…"));
  mount(root,
    h("div", { class: "title-row" }, h("h1", {}, `Dataset ${shortRef(detail.name, detail.version)}`),
      link(`#${project}`, "Back to the project"),
      link(apiUrl(`${base}/archive`), "Download (tar)", { class: "button-link", download: "" }),
      link(apiUrl(`${base}/stac`), "STAC description", { class: "button-link", target: "_blank", rel: "noopener" })),
    keyValues([["Version", h("code", {}, detail.version)], ["Folder", h("code", {}, detail.path)], ["Chips", num(chips.features.length)],
      ["Channels", (detail.manifest.channels ?? []).join(", ")], ["Patch size", num(detail.manifest.patch_size)]]),
    h("div", { class: "grid-2" }, h("div", { class: "map-block" }, container, splitLegend(chips)),
      section("Class balance", "class-balance", balance(detail.class_balance.splits ?? []))),
    section("Band statistics", "band-stats", bandTable(detail)),
    section("Chips", "chip-section", previews(base, detail.manifest.channels ?? [], chips)),
    section("Leakage between splits", "leakage", leak),
    section("Lineage", "lineage", lineagePanel(params.slug, `dataset:${detail.name}@${detail.version}`)));
  const map = createMap(container);
  const remove = registerMap("dataset", map);
  void loaded(map).then(() => {
    addPolygons(map, "chips", chips, { property: "color", fallback: "#7f7f7f" }, 0.3);
    fitTo(map, chips);
  });
  api<Leakage>(`${base}/leakage`).then((l) => leak.replaceChildren(leakageView(l)), (err: unknown) => {
    leak.replaceChildren(h("p", { class: "muted" }, "No leakage result."));
    reportError(err);
  });
  return remove;
}
