// A training run: params, final metrics, per-epoch curves of every metric, confusion matrices.

import { api, reportError } from "../api";
import { type Series, lineChart } from "../charts";
import { clearErrors, h, mount } from "../dom";
import { lineagePanel } from "../lineage";
import { may } from "../roles";
import type { Params } from "../router";
import { currentUser } from "../session";
import type { ConfusionMatrix, MetricPoint, ModelVersion, Overview, RunDetail } from "../types";
import { field, keyValues, link, num, section, table, when } from "../ui";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
const SPLIT_PREFIX = /^(train|val|valid|validation|test)[_./]/;

/** Per-epoch histories grouped by metric (train_loss and val_loss share a chart), each series with its colour. */
export function curveGroups(history: Record<string, MetricPoint[]>): Map<string, Series[]> {
  const groups = new Map<string, Series[]>();
  for (const [name, points] of Object.entries(history).sort(([a], [b]) => a.localeCompare(b))) {
    const valid = points.filter((p): p is { step: number; value: number } => p.value !== null);
    if (!valid.length) continue;
    const key = name.replace(SPLIT_PREFIX, "");
    const list = groups.get(key) ?? [];
    list.push({ name, color: PALETTE[list.length % PALETTE.length], points: valid.map((p) => ({ x: p.step, y: p.value })) });
    groups.set(key, list);
  }
  return groups;
}

function curves(history: Record<string, MetricPoint[]>): HTMLElement {
  const figures = [...curveGroups(history)].map(([metric, series]) => h("figure", { class: "curve", "data-metric": metric },
    lineChart(series, `${metric} per epoch`),
    h("figcaption", {}, h("strong", {}, metric), " ", ...series.map((one) => h("span", { class: "series" },
      h("span", { class: "swatch", style: `background:${one.color}` }), one.name)))));
  return figures.length ? h("div", { class: "curves", id: "curves" }, ...figures)
    : h("p", { class: "muted" }, "This run logged no per-epoch metric.");
}

function confusion(cm: ConfusionMatrix): HTMLElement {
  const most = Math.max(1, ...cm.matrix.flat());
  const head = h("tr", {}, h("th", { scope: "col" }, "truth \\ predicted"), ...cm.classes.map((c) => h("th", { scope: "col" }, c)));
  const rows = cm.matrix.map((row, i) => h("tr", {}, h("th", { scope: "row" }, cm.classes[i] ?? String(i)),
    ...row.map((count) => {
      const share = count / most;
      const style = `background: rgba(11, 92, 173, ${share.toFixed(3)}); color: ${share > 0.5 ? "#fff" : "inherit"}`;
      return h("td", { style, class: "cm-cell", "data-count": String(count) }, num(count));
    })));
  const title = `${cm.split}${cm.head ? ` · ${cm.head}` : ""} (${cm.source})`;
  return h("figure", { class: "confusion" }, h("table", { class: "matrix" }, h("caption", {}, title),
    h("thead", {}, head), h("tbody", {}, ...rows)));
}

/** Links to the model pages of a run's registered versions (`models:/NAME/VERSION`). */
function registered(project: string, refs: string[]): Node | string {
  if (!refs.length) return "—";
  return h("span", { id: "registered" }, ...refs.flatMap((ref, i) => {
    const [, name = ref, version = ""] = /^models:\/(.+)\/(\d+)$/.exec(ref) ?? [];
    const target = `#${project}/models/${encodeURIComponent(name)}${version ? `?version=${version}` : ""}`;
    return [i ? ", " : "", link(target, `${name} v${version}`, { "data-ref": ref })];
  }));
}

/** The form that registers the run's model package as a new version of a registered model. */
function registerForm(project: string, run: RunDetail): HTMLFormElement {
  const name = h("input", { name: "name", id: "register-name", required: "", autocomplete: "off",
    value: run.dataset_name ?? "model" });
  const alias = h("input", { name: "alias", id: "register-alias", autocomplete: "off", placeholder: "champion" });
  const submit = h("button", { type: "submit", class: "primary", id: "register-model" }, "Register this run's model");
  const form = h("form", { class: "inline-form", id: "register-form" }, field("Model name", name),
    field("Alias (optional)", alias), submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    submit.disabled = true;
    const body = { run_id: run.run_id, name: name.value.trim(), ...(alias.value.trim() ? { alias: alias.value.trim() } : {}) };
    api<ModelVersion>(`${project}/models`, { json: body }).then((made) => {
      location.hash = `#${project}/models/${encodeURIComponent(made.name)}?version=${made.version}`;
    }, (err: unknown) => {
      submit.disabled = false;
      reportError(err);
    });
  });
  return form;
}

/** The run page. */
export async function runPage(root: HTMLElement, params: Params): Promise<void> {
  const project = `/projects/${encodeURIComponent(params.slug)}`;
  const [user, overview, run] = await Promise.all([currentUser(), api<Overview>(project),
    api<RunDetail>(`${project}/runs/${encodeURIComponent(params.id)}`)]);
  const review = may(overview.role, "review", user.is_admin);
  const dataset = run.dataset_name ? `${run.dataset_name}@${run.dataset_version ?? ""}` : "";
  const metrics = Object.entries(run.metrics).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, num(v)]);
  const paramRows = Object.entries(run.params).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [h("code", {}, k), v]);
  mount(root,
    h("div", { class: "title-row" }, h("h1", {}, `Run ${run.name || run.run_id}`), link(`#${project}`, "Back to the project")),
    keyValues([["Id", h("code", {}, run.run_id)], ["Status", run.status], ["Started", when(run.started_at)],
      ["Ended", when(run.ended_at)], ["Model", run.model ?? ""], ["Task", run.task ?? ""],
      ["Dataset", dataset ? link(`#${project}/datasets/${encodeURIComponent(dataset)}`, dataset) : "—"],
      ["Best epoch", run.best_epoch === null || run.best_epoch === undefined ? "—" : String(run.best_epoch)],
      ["Registered", registered(project, run.registered)]]),
    review && run.model_ref ? section("Register", "register", registerForm(project, run)) : null,
    h("div", { class: "grid-2" },
      section("Final metrics", "metrics", table(["Metric", "Value"], metrics, "No final metric.")),
      section("Params", "params", table(["Param", "Value"], paramRows, "No params."))),
    section("Per-epoch curves", "history", curves(run.history ?? {})),
    section("Confusion matrices", "confusion", ...(run.confusion_matrices ?? []).map(confusion),
      (run.confusion_matrices ?? []).length ? null : h("p", { class: "muted" }, "No confusion matrix recorded.")),
    section("Lineage", "lineage", lineagePanel(params.slug, `run:${run.run_id}`)));
}
