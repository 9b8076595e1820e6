// The project overview: a map of its scenes and maps, its datasets, runs, models and maps, and its jobs live.

import type maplibregl from "maplibre-gl";
import type { RasterTileSource } from "maplibre-gl";
import { api, reportError } from "../api";
import { annotationSets } from "../annotate/sets";
import { clearErrors, h, mount, showError } from "../dom";
import { JOB_EXAMPLES, every, jobsTable, specFrom, submitJob } from "../jobs";
import { lineageDisclosure } from "../lineage";
import { addPolygons, addTiles, bounds, createMap, fitTo, loaded, registerMap, tileUrl } from "../map";
import { may } from "../roles";
import type { Cleanup, Params } from "../router";
import { currentUser } from "../session";
import type { Artifact, GeoJSON, ImageryItem, Overview, RegisteredModel } from "../types";
import { button, field, link, num, section, select, shortRef, table, when } from "../ui";

const SCENE_COLOR = "#0b5cad";
const MAP_COLOR = "#c2185b";

function byKind(data: GeoJSON, kind: string): GeoJSON {
  return { type: "FeatureCollection", features: data.features.filter((f) => f.properties?.kind === kind) };
}

function splits(meta: Record<string, unknown>): string {
  const chips = meta.chips as Record<string, number> | undefined;
  return chips ? Object.entries(chips).map(([split, n]) => `${split} ${num(n)}`).join(" · ") : "";
}

function artefactLists(o: Overview): HTMLElement {
  const base = `#/projects/${encodeURIComponent(o.slug)}`;
  const job = (a: Artifact): Node | string => (a.job_id ? link(`#/jobs/${a.job_id}`, `#${a.job_id}`) : "");
  const datasets = o.datasets.map((d) => [
    link(`${base}/datasets/${encodeURIComponent(`${d.name}@${d.version}`)}`, shortRef(d.name, d.version)),
    splits(d.meta), job(d), when(d.created_at)]);
  const runs = o.runs.map((r) => [link(`${base}/runs/${encodeURIComponent(r.ref || r.name)}`, (r.ref || r.name).slice(0, 12)),
    String(r.meta.model ?? ""), String(r.meta.dataset ?? "").replace(/@(.{12}).*/, "@$1"), job(r), when(r.created_at)]);
  const models = o.models.map((m) => [m.ref.startsWith("models:/")
    ? link(`${base}/models/${encodeURIComponent(m.name)}?version=${encodeURIComponent(m.version)}`, `${m.name} v${m.version}`)
    : `${m.name} ${m.version}`, h("code", {}, m.ref), job(m), when(m.created_at)]);
  const maps = o.maps.map((m) => [m.name, h("code", {}, m.path), job(m), when(m.created_at),
    lineageDisclosure(o.slug, `map:${m.path}`)]);
  return h("div", { class: "grid-2" },
    section("Datasets", "datasets", table(["Dataset", "Chips per split", "Job", "Built"], datasets, "No dataset yet: build one.")),
    section("Runs", "runs", table(["Run", "Model", "Dataset", "Job", "Finished"], runs, "No training run yet.")),
    section("Models", "models", table(["Model", "From", "Job", "Made"], models, "No model version or variant yet.")),
    section("Maps", "maps", table(["Map", "File", "Job", "Made", "Lineage"], maps, "No prediction map yet.")));
}

/** The project's registered models (read from its MLflow registry), each a link to its page. */
function registeredModels(slug: string): HTMLElement {
  const base = `#/projects/${encodeURIComponent(slug)}`;
  const list = h("div", { id: "registered-models" }, h("p", { class: "muted" }, "Reading the model registry…"));
  api<RegisteredModel[]>(`/projects/${encodeURIComponent(slug)}/models`).then((models) => {
    const rows = models.map((m) => [link(`${base}/models/${encodeURIComponent(m.name)}`, m.name, { "data-model": m.name }),
      String(m.versions.length), Object.entries(m.aliases).map(([a, v]) => `${a} → v${v}`).join(", ") || "—", when(m.updated_at)]);
    list.replaceChildren(table(["Model", "Versions", "Aliases", "Updated"], rows,
      "No registered model yet: register a run's model on its page."));
  }, (err: unknown) => {
    list.replaceChildren();
    reportError(err);
  });
  return section("Registered models", "registered", list);
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
    field("Options (JSON; paths relative to the project folder)", options, "Ctrl+Enter submits."),
    h("button", { type: "submit" }, "Submit job"));
  options.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
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

/** The project's scenes as tiles on `map` (below the layer `before`), rendered with the recipe `recipes` selects. */
export async function showImagery(map: maplibregl.Map, slug: string, recipes: HTMLSelectElement, open: () => boolean,
  before = "scenes-fill"): Promise<void> {
  const items = await api<ImageryItem[]>(`/projects/${encodeURIComponent(slug)}/imagery`);
  if (!open()) return; // the user left while the list was on its way: the map is gone
  const offered = [...new Set(items.flatMap((item) => item.recipes))];
  recipes.replaceChildren(...offered.map((r) => h("option", { value: r }, r)));
  recipes.disabled = !offered.length;
  const query = (): string => `recipe=${encodeURIComponent(recipes.value)}`;
  for (const item of items) addTiles(map, `imagery-${item.id}`, tileUrl(item.tiles, query()), item.bbox, before);
  recipes.addEventListener("change", () => {
    for (const item of items) (map.getSource(`imagery-${item.id}`) as RasterTileSource).setTiles([tileUrl(item.tiles, query())]);
  });
}

function showFootprints(map: maplibregl.Map, o: Overview): void {
  addPolygons(map, "scenes", byKind(o.footprints, "scene"), SCENE_COLOR, 0.08);
  for (const m of o.maps) {
    const box = m.meta.footprint ? bounds({ type: "FeatureCollection", features: [
      { type: "Feature", geometry: m.meta.footprint as never, properties: {} }] }) : null;
    addTiles(map, `map-${m.id}`, tileUrl(`/projects/${encodeURIComponent(o.slug)}/maps/${m.id}/tiles/{z}/{x}/{y}.png`), box);
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
  const recipes = h("select", { id: "imagery-recipe", disabled: "" });
  const showMaps = h("input", { type: "checkbox", id: "show-maps", checked: "" });
  const legend = h("div", { class: "map-bar" }, h("p", { class: "legend" },
    h("span", { class: "swatch", style: `background:${SCENE_COLOR}` }), "scene footprints",
    h("span", { class: "swatch", style: `background:${MAP_COLOR}` }), "prediction maps"), h("div", { class: "map-bar" },
      h("label", { class: "check" }, showMaps, "Prediction maps"), field("Imagery", recipes)));
  const lists = h("div", {}, artefactLists(first));
  const jobs = h("div", { id: "job-table" }, jobsTable(first.jobs));
  mount(root,
    h("div", { class: "title-row" }, h("h1", {}, first.name),
      h("span", { class: "muted" }, `your role: ${first.role ?? "site admin"}`),
      link(`${base}/explore`, "Explore imagery", { class: "button-link", id: "explore-link" }),
      link(`${base}/subscriptions`, "Subscriptions", { class: "button-link", id: "subscriptions-link" }),
      link(`${base}/map-area`, "Map an area now", { class: "button-link", id: "map-area-link" }),
      manage ? link(`${base}/members`, "Members", { class: "button-link" }) : null),
    h("div", { class: "map-block" }, container, legend),
    section("Jobs", "jobs", may(first.role, "run", user.is_admin) ? jobForm(slug) : null, jobs),
    lists, annotationSets(slug, may(first.role, "review", user.is_admin)), registeredModels(slug));
  const map = createMap(container);
  const remove = registerMap("project", map);
  showMaps.addEventListener("change", () => {
    const visibility = showMaps.checked ? "visible" : "none";
    for (const layer of map.getStyle().layers) if (/^map-|^maps-/.test(layer.id)) map.setLayoutProperty(layer.id, "visibility", visibility);
  });
  void loaded(map).then(() => {
    showFootprints(map, first);
    return showImagery(map, slug, recipes, () => open);
  }).catch(reportError);
  let shown = first;
  let open = true;
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
    open = false;
    stop();
    remove();
  };
}
