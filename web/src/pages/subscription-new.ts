// A new subscription: draw or upload the area, choose the model, imagery, cadence and rules, see the server's dry run,
// and create it (then its page).

import type { GeoJSONSource } from "maplibre-gl";
import { api, reportError } from "../api";
import { clearErrors, h, mount, showError } from "../dom";
import { addPolygons, createMap, fitTo, loaded, registerMap } from "../map";
import type { Cleanup, Params } from "../router";
import type { ImageryItem, Overview } from "../types";
import { field, link, num, section, select, table } from "../ui";
import { type Geometry, collection, describe, drawTools, modelOptions, uploader } from "./map-area";
import { showImagery } from "./project";

interface Period { start: string; end: string; scene_ids: string[]; chosen: string[]; tiles: number; pixels: number }
interface DryRun { periods: Period[]; tiles: number; pixels: number; compute_seconds: number; storage_bytes: number; basis: string }

const input = (id: string, attrs: Record<string, string> = {}): HTMLInputElement =>
  h("input", { id, name: id, ...attrs }) as HTMLInputElement;

/** The form's fields, and a function reading them as a subscription spec (with the area). */
function specForm(models: HTMLSelectElement, items: ImageryItem[]): { fields: HTMLElement[]; spec: (area: Geometry) => Record<string, unknown> } {
  const first = items.map((i) => i.datetime?.slice(0, 10)).filter((d): d is string => !!d).sort()[0] ?? "2020-01-01";
  const name = input("sub-name", { required: "", placeholder: "e.g. field watch" });
  const source = input("sub-source", { value: "project" });
  const cadence = select("cadence", [["each-new-scene", "each new scene"], ["daily", "daily"], ["weekly", "weekly"],
    ["monthly", "monthly"], ["cron", "cron expression…"]], "each-new-scene");
  cadence.id = "sub-cadence";
  const cron = input("sub-cron", { placeholder: "0 6 * * 1 (minute hour day month weekday, UTC)" });
  const composite = select("composite", [["newest", "newest scene"], ["least-cloudy", "least cloudy scene"],
    ["median", "per-pixel median of the period"]], "newest");
  composite.id = "sub-composite";
  const start = input("sub-start", { type: "date", value: first });
  const end = input("sub-end", { type: "date" });
  const cloud = input("sub-cloud", { type: "number", min: "0", max: "100", step: "1" });
  const threshold = input("sub-threshold", { type: "number", min: "0", step: "0.1", value: "0" });
  const backfill = input("sub-backfill", { type: "checkbox" });
  const hook = input("sub-webhook", { type: "url", placeholder: "https://… (optional)" });
  const secret = input("sub-secret", { type: "password", placeholder: "at least 16 characters" });
  const fields = [field("Name", name), field("Model", models, "a registry alias is resolved again at each run"),
    field("Imagery", source, "project (its catalog), a STAC API URL, or a catalog folder in the project"),
    field("Cadence", cadence), field("Cron", cron), field("Compositing", composite), field("Start", start),
    field("End (optional)", end), field("Largest cloud cover, % (optional)", cloud),
    field("Change alert above, hectares", threshold), field("Process the history from the start", backfill),
    field("Webhook URL", hook), field("Webhook secret", secret)];
  const spec = (area: Geometry): Record<string, unknown> => ({
    name: name.value.trim(), area, model: models.value, source: source.value.trim() || "project",
    cadence: cadence.value === "cron" ? cron.value.trim() : cadence.value, composite: composite.value,
    start: `${start.value}T00:00:00Z`, ...(end.value ? { end: `${end.value}T00:00:00Z` } : {}),
    ...(cloud.value ? { max_cloud: Number(cloud.value) } : {}), change_threshold_ha: Number(threshold.value || 0),
    backfill: backfill.checked, webhooks: hook.value ? [{ url: hook.value.trim(), secret: secret.value }] : [],
  });
  return { fields, spec };
}

/** What the server's dry run answers: each period's scenes and tiles, and the estimates. */
function dryRunReport(plan: DryRun): HTMLElement {
  const rows = plan.periods.map((p) => [`${p.start.slice(0, 10)} – ${p.end.slice(0, 10)}`, p.scene_ids.join(", ") || "none",
    p.chosen.join(", "), num(p.tiles), num(p.pixels)]);
  return h("div", { id: "dry-run", "data-tiles": String(plan.tiles) },
    table(["Period", "Scenes found", "Mapped", "Tiles", "Pixels"], rows, "Nothing due yet."),
    h("p", {}, `${plan.periods.length} period(s), ${num(plan.tiles)} tile(s): about ${num(plan.compute_seconds, 2)} s of `
      + `compute and ${num(plan.storage_bytes / 1e6, 2)} MB of storage (${plan.basis}).`));
}

/** The new-subscription page (`#/projects/:slug/subscriptions/new`). */
export async function newSubscriptionPage(root: HTMLElement, params: Params): Promise<Cleanup> {
  const slug = params.slug;
  const base = `/projects/${encodeURIComponent(slug)}/subscriptions`;
  const overview = await api<Overview>(`/projects/${encodeURIComponent(slug)}`);
  const [models, items] = await Promise.all([modelOptions(slug, overview, "sub-model"),
    api<ImageryItem[]>(`/projects/${encodeURIComponent(slug)}/imagery`)]);
  const { fields, spec } = specForm(models, items);
  const container = h("div", { class: "map", id: "sub-map", role: "region", "aria-label": "Map: draw the area here" });
  const report = h("div", { id: "area-report" }, h("p", { class: "muted" }, "No area yet: draw one on the map or upload one."));
  const planned = h("div", { id: "dry-run-slot" });
  const recipes = h("select", { id: "sub-recipe", disabled: "" });
  const map = createMap(container);
  const remove = registerMap("subscription-new", map);
  let area: Geometry | null = null;
  let closed = false;
  const setArea = (next: Geometry): void => {
    area = next;
    (map.getSource("area") as GeoJSONSource | undefined)?.setData(collection(area) as never);
    fitTo(map, collection(area), 60);
    report.replaceChildren(describe(area));
  };
  await loaded(map);
  addPolygons(map, "area", collection(null), "#f57c00", 0.15);
  const { tools, stop } = drawTools(map, setArea);
  const checked = (): Record<string, unknown> | null => {
    clearErrors();
    if (!area) { showError("No area yet", "Draw a polygon or rectangle on the map, or upload a GeoJSON area."); return null; }
    return spec(area);
  };
  const dry = h("button", { type: "button", id: "sub-dry-run" }, "Dry run");
  dry.addEventListener("click", () => {
    const made = checked();
    if (made) api<DryRun>(`${base}/dry-run`, { json: { spec: made } })
      .then((plan) => planned.replaceChildren(dryRunReport(plan)), reportError);
  });
  const form = h("form", { class: "sub-form", id: "sub-form" }, ...fields,
    h("p", { class: "actions" }, dry, h("button", { type: "submit", id: "sub-create", class: "primary" }, "Create subscription")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const made = checked();
    if (made) api<{ id: number }>(base, { json: { spec: made } })
      .then((sub) => { location.hash = `#${base}/${sub.id}`; }, reportError);
  });
  mount(root, h("div", { class: "title-row" }, h("h1", {}, "New subscription"), link(`#${base}`, "All subscriptions")),
    h("div", { class: "map-block" }, container, h("div", { class: "map-bar" }, tools, field("Imagery", recipes))),
    section("Area", "sub-area", report, uploader(setArea)), section("Subscription", "sub-spec", form),
    section("Dry run", "sub-dry", planned));
  map.resize();
  const boxes = items.flatMap((i) => i.bbox.length === 4 ? [i.bbox] : []);
  if (boxes.length) map.fitBounds([Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1])),
    Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))], { padding: 30, animate: false });
  void showImagery(map, slug, recipes, () => !closed, "area-fill").catch(reportError);
  return () => { closed = true; stop(); remove(); };
}
