// The quality of an annotation set (`#/projects/:slug/annotate/:set/stats`): a table per annotator (tasks, acceptance,
// time, agreement on gold and double-labelled copies) and each one's confusion matrix as a heat table; with `:user`,
// one annotator's comparisons, task by task.

import { api } from "../api";
import type { AnnotationSet } from "../annotate/api";
import { h, mount } from "../dom";
import type { Params } from "../router";
import { link, num, section, table } from "../ui";

interface Agreement { n: number; iou: number | null; iou_per_class: Record<string, number>; boundary_m: number | null;
  boundary_p95_m: number | null; boundary_px: number | null }
interface AnnotatorStats { user: string; tasks: { submitted: number; accepted: number; rejected: number };
  acceptance_rate: number | null; time_spent_s: number; median_task_s: number | null; gold: Agreement | null;
  double: Agreement | null; confusion: number[][] }
interface Comparison { task: number; reference: number; kind: string; iou: number | null; boundary_m: number | null;
  state: string }
interface SetStats { set_id: number; counts: Record<string, number>; copies: Record<string, number>;
  annotators: AnnotatorStats[]; classes: (number | string)[] }

const pct = (v: number | null): string => (v === null ? "—" : `${(100 * v).toFixed(1)} %`);
const minutes = (s: number | null): string => (s === null ? "—" : `${(s / 60).toFixed(1)} min`);

function agreementCells(a: Agreement | null): string[] {
  return a ? [`${num(a.iou, 3)} (${a.n})`, a.boundary_m === null ? "—" : `${num(a.boundary_m, 3)} m`] : ["—", "—"];
}

function statsRow(base: string, s: AnnotatorStats): (HTMLElement | string)[] {
  return [link(`${base}/stats/${encodeURIComponent(s.user)}`, s.user, { class: "annotator-link" }),
    String(s.tasks.submitted), String(s.tasks.accepted), String(s.tasks.rejected), pct(s.acceptance_rate),
    minutes(s.time_spent_s), minutes(s.median_task_s), ...agreementCells(s.gold), ...agreementCells(s.double)];
}

const HEADERS = ["Annotator", "Submitted", "Accepted", "Rejected", "Acceptance", "Time", "Median task",
  "Gold IoU (n)", "Gold boundary", "Double IoU (n)", "Double boundary"];

/** A confusion matrix as a heat table: each cell shaded by its share of its row (the reference's class). */
function heatTable(user: string, confusion: number[][], names: string[]): HTMLElement {
  const head = h("tr", {}, h("th", { scope: "col" }, "reference ↓ / annotator →"),
    ...names.map((n) => h("th", { scope: "col" }, n)));
  const rows = confusion.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    return h("tr", {}, h("th", { scope: "row" }, names[i]), ...row.map((v, j) => h("td", {
      class: i === j ? "heat diagonal" : "heat", "data-count": String(v),
      style: `background: rgba(${i === j ? "46,125,50" : "198,40,40"}, ${(v / total).toFixed(3)})`,
    }, v.toLocaleString("en-US"))));
  });
  return h("table", { class: "confusion", id: `confusion-${user}` },
    h("caption", {}, `${user}: pixels by class (rows: reference, columns: ${user})`), h("thead", {}, head),
    h("tbody", {}, ...rows));
}

function classNames(set: AnnotationSet, values: (number | string)[]): string[] {
  return values.map((v) => set.classes.find((c) => String(c.value) === String(v))?.name ?? String(v));
}

/** The stats page of a set, or (with `:user`) of one annotator in it. */
export async function annotationStatsPage(root: HTMLElement, params: Params): Promise<void> {
  const slug = encodeURIComponent(params.slug);
  const base = `#/projects/${slug}/annotate/${Number(params.set)}`;
  const path = `/projects/${slug}/annotation/sets/${Number(params.set)}`;
  const set = await api<AnnotationSet>(path);
  if (params.user) {
    const mine = await api<AnnotatorStats & { comparisons: Comparison[] }>(`${path}/stats/${encodeURIComponent(params.user)}`);
    const rows = mine.comparisons.map((c) => [String(c.task), String(c.reference), c.kind, num(c.iou, 3),
      c.boundary_m === null ? "—" : `${num(c.boundary_m, 3)} m`, c.state]);
    mount(root, h("div", { class: "title-row" }, h("h1", {}, `${mine.user} in ${set.name}`),
      link(`${base}/stats`, "All annotators"), link(base, "Tasks")),
    section("Summary", "annotator-summary", table(HEADERS, [statsRow(base, mine)])),
    section("Comparisons", "comparisons", table(["Task", "Reference", "Kind", "IoU", "Boundary", "State"], rows,
      "No copy of theirs is compared yet.")),
    section("Confusion", "confusion", heatTable(mine.user, mine.confusion, classNames(set, set.classes.map((c) => c.value)))));
    return;
  }
  const stats = await api<SetStats>(`${path}/stats`);
  const names = classNames(set, stats.classes);
  const counted = stats.annotators.filter((s) => s.confusion.some((row) => row.some((v) => v > 0)));
  mount(root, h("div", { class: "title-row" }, h("h1", {}, `Quality of ${set.name}`), link(base, "Tasks")),
    h("p", { id: "stats-counts" }, `Tasks: ${Object.entries(stats.counts).map(([k, v]) => `${v} ${k.replace("_", " ")}`)
      .join(", ")}. Copies: ${stats.copies.gold ?? 0} gold, ${stats.copies.double ?? 0} double.`),
    section("Annotators", "annotator-stats", table(HEADERS, stats.annotators.map((s) => statsRow(base, s)),
      "Nobody has worked on this set yet.")),
    section("Confusion", "confusion", ...(counted.length ? counted.map((s) => heatTable(s.user, s.confusion, names))
      : [h("p", { class: "muted" }, "No copy is compared yet.")])));
}
