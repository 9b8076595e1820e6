// The project overview: a map of its scenes and maps, its datasets, runs, models and maps, and its jobs live.

import type maplibregl from "maplibre-gl";
import { API_BASE, api, reportError } from "../api";
import { clearErrors, h, mount, showError } from "../dom";
import { JOB_EXAMPLES, every, jobsTable, specFrom, submitJob } from "../jobs";
import { addPolygons, addTiles, bounds, createMap, fitTo, loaded, registerMap } from "../map";
import { may } from "../roles";
import type { Cleanup, Params } from "../router";
import { currentUser } from "../session";
import type { Artifact, GeoJSON, Overview } from "../types";
import { button, field, link, section, select, shortRef, table, when } from "../ui";

const SCENE_COLOR = "#0b5cad";
const MAP_COLOR = "#c2185b";

function byKind(data: GeoJSON, kind: string): GeoJSON {
  return { type: "FeatureCollection", features: data.features.filter((f) => f.properties?.kind === kind) };
}

function artefactLists(o: Overview): HTMLElement {
  const base = `#/projects/${encodeURIComponent(o.slug)}`;
  const datasets = o.datasets.map((d) => [
    link(`${base}/datasets/${encodeURIComponent(`${d.name}@${d.version}`)}`, shortRef(d.name, d.version)),
    h("code", {}, d.path), d.job_id ? link(`#/jobs/${d.job_id}`, `#${d.job_id}`) : "", when(d.created_at)]);
  const runs = o.runs.map((r) => [link(`${base}/runs/${encodeURIComponent(r.ref || r.name)}`, r.name || r.ref),
    h("code", {}, r.ref), r.job_id ? link(`#/jobs/${r.job_id}`, `#${r.job_id}`) : "", when(r.created_at)]);
  const models = o.models.map((m: Artifact) => [`${m.name} v${m.version}`, h("code", {}, m.ref), when(m.created_at)]);
  const maps = o.maps.map((m) => [m.name, h("code", {}, m.path),
    m.job_id ? link(`#/jobs/${m.job_id}`, `#${m.job_id}`) : "", when(m.created_at)]);
  return h("div", { class: "grid-2" },
    section("Datasets", "datasets", table(["Dataset", "Folder", "Job", "Built"], datasets, "No dataset yet: build one.")),
    section("Runs", "runs", table(["Run", "Id", "Job", "Started"], runs, "No training run yet.")),
    section("Models", "models", table(["Model", "Reference", "Registered"], models, "No registered model yet.")),
    section("Maps", "maps", table(["Map", "File", "Job", "Made"], maps, "No prediction map yet.")));
}

function jobForm(slug: string): HTMLElement {
  const build = button("Build dataset", () => {
    clearErrors();
    submitJob(slug, { kind: "build" }).then((job) => {
      location.hash = `#/jobs/${job.id}`;
    }, reportError);
  }, { class: "primary", id: "build-dataset" });
  const kind = select("kind", Object.keys(JOB_EXAMPLES).map((k) => [k, k]), "train");
  kind.id = "job-kind";
  const options = h("textarea", { name: "options", id: "job-options", rows: "3", spellcheck: "false" });
  options.value = JOB_EXAMPLES.train;
  kind.addEventListener("change", () => {
    options.value = JOB_EXAMPLES[kind.value] ?? "{}";
  });
  const form = h("form", { class: "job-form", id: "submit-job" }, field("Kind", kind),
    field("Options (JSON; paths relative to the project folder)", options),
    h("button", { type: "submit" }, "Submit job"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    let spec: Record<string, unknown>;
    try {
      spec = specFrom(kind.value, options.value);
    } catch (err) {
      showError(`The options are not a JSON object: ${(err as Error).message}`, 'Write them as {"name": value, …}.');
      return;
    }
    submitJob(slug, spec).then((job) => {
      location.hash = `#/jobs/${job.id}`;
    }, reportError);
  });
  return h("div", { class: "job-actions" }, build, form);
}

function showFootprints(map: maplibregl.Map, o: Overview): void {
  addPolygons(map, "scenes", byKind(o.footprints, "scene"), SCENE_COLOR, 0.15);
  for (const m of o.maps) {
    const box = m.meta.footprint ? bounds({ type: "FeatureCollection", features: [
      { type: "Feature", geometry: m.meta.footprint as never, properties: {} }] }) : null;
    const template = `${location.origin}${API_BASE}/projects/${encodeURIComponent(o.slug)}/maps/${m.id}/tiles/{z}/{x}/{y}.png`;
    addTiles(map, `map-${m.id}`, template, box);
  }
  addPolygons(map, "maps", byKind(o.footprints, "map"), MAP_COLOR, 0.05);
  fitTo(map, o.footprints);
}

/** The project overview page. */
export async function projectPage(root: HTMLElement, params: Params): Promise<Cleanup> {
  const slug = params.slug;
  const [user, first] = await Promise.all([currentUser(), api<Overview>(`/projects/${encodeURIComponent(slug)}`)]);
  const base = `#/projects/${encodeURIComponent(slug)}`;
  const manage = may(first.role, "manage", user.is_admin);
  const container = h("div", { class: "map", id: "project-map", role: "region", "aria-label": "Map of the project's scenes and maps" });
  const legend = h("p", { class: "legend" }, h("span", { class: "swatch", style: `background:${SCENE_COLOR}` }), "scenes ",
    h("span", { class: "swatch", style: `background:${MAP_COLOR}` }), "prediction maps");
  const lists = h("div", {}, artefactLists(first));
  const jobs = h("div", { id: "job-table" }, jobsTable(first.jobs));
  mount(root,
    h("div", { class: "title-row" }, h("h1", {}, first.name),
      h("span", { class: "muted" }, `your role: ${first.role ?? "site admin"}`),
      manage ? link(`${base}/members`, "Members", { class: "button-link" }) : null),
    h("div", { class: "map-block" }, container, legend),
    section("Jobs", "jobs", may(first.role, "run", user.is_admin) ? jobForm(slug) : null, jobs),
    lists);
  const map = createMap(container);
  const remove = registerMap("project", map);
  void loaded(map).then(() => showFootprints(map, first));
  let shown = first;
  // jobs (anyone's) may start or finish at any time: the overview polls while it is open
  const stop = every(2000, async () => {
    const now = await api<Overview>(`/projects/${encodeURIComponent(slug)}`);
    jobs.replaceChildren(jobsTable(now.jobs));
    if (now.datasets.length !== shown.datasets.length || now.runs.length !== shown.runs.length
      || now.models.length !== shown.models.length || now.maps.length !== shown.maps.length) {
      lists.replaceChildren(artefactLists(now));
    }
    shown = now;
    return true;
  });
  return () => {
    stop();
    remove();
  };
}
