// The explore page's pixel time series: the clicked point, a chart of the index and one of the bands over time,
// and a table of the numbers (what GET /imagery/series answered).

import { type Series, lineChart } from "../charts";
import { h } from "../dom";
import type { PixelSeries } from "../types";
import { num, table } from "../ui";

const BAND_COLOURS: Record<string, string> = { blue: "#1e88e5", green: "#43a047", red: "#e53935", nir: "#8e24aa" };
const OTHER_COLOURS = ["#fb8c00", "#6d4c41", "#00897b", "#546e7a", "#c0ca33", "#d81b60"];
const INDEX_COLOUR = "#0b5cad";

/** The day of an ISO date-time (`2021-06-01`), or the text as it is. */
export function day(iso: string | null | undefined): string {
  return iso ? iso.slice(0, 10) : "undated";
}

/** The names of the bands across the points, in the order they first appear (each band by its first name). */
function bandNames(series: PixelSeries): string[] {
  return [...new Set(series.points.flatMap((p) => p.bands.map((b) => b.names[0])))];
}

function valueOf(point: PixelSeries["points"][number], band: string): number | null {
  return point.bands.find((b) => b.names[0] === band)?.value ?? null;
}

/** One line per name: its points where it has a value, over the scenes' times. */
function lines(series: PixelSeries, names: string[], pick: (p: PixelSeries["points"][number], name: string) => number | null,
  colour: (name: string, i: number) => string): Series[] {
  return names.map((name, i) => ({ name, color: colour(name, i), points: series.points.flatMap((p) => {
    const y = pick(p, name);
    return y === null || !p.datetime ? [] : [{ x: Date.parse(p.datetime), y }];
  }) })).filter((one) => one.points.length);
}

function chart(series: Series[], title: string, id: string): HTMLElement {
  if (!series.length) return h("p", { class: "muted", id }, `No values for ${title}.`);
  const svg = lineChart(series, title, 360, 180, (x) => day(new Date(x).toISOString()));
  svg.id = id;
  const legend = h("p", { class: "legend" }, ...series.flatMap((one) => [
    h("span", { class: "swatch", style: `background:${one.color}` }), one.name]));
  return h("figure", {}, svg, h("figcaption", {}, title), legend);
}

/** The panel of a point's series: its lon/lat, the index and band charts, and the table. */
export function seriesPanel(series: PixelSeries): HTMLElement[] {
  const bands = bandNames(series);
  const indexLine = lines(series, [series.index], (p) => p.index, () => INDEX_COLOUR);
  const bandLines = lines(series, bands, valueOf, (name, i) => BAND_COLOURS[name] ?? OTHER_COLOURS[i % OTHER_COLOURS.length]);
  const rows = series.points.map((p) => [day(p.datetime), p.item, ...bands.map((b) => num(valueOf(p, b), 6)), num(p.index, 4)]);
  return [
    h("p", { id: "series-point" }, `lon ${series.lon.toFixed(6)}, lat ${series.lat.toFixed(6)}: `,
      `${series.points.length} scene${series.points.length === 1 ? "" : "s"}`),
    chart(indexLine, `${series.index} over time`, "series-index-chart"),
    chart(bandLines, "Band values over time", "series-band-chart"),
    h("div", { id: "series-table" }, table(["Date", "Scene", ...bands, series.index], rows,
      "No scene holds this point: click inside a scene.")),
  ];
}
