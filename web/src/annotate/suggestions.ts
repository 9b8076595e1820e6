// A model's suggestions in a task: the "Pre-label" button in the side panel (a registered model, queued as a job),
// pending suggestions drawn dashed in their own layer, listed in the side panel; a click (or the list) selects
// one, `a` (or "Accept") accepts it — it becomes an editable feature like a drawn one — and Delete removes it.

import type maplibregl from "maplibre-gl";
import type { GeoJSONSource } from "maplibre-gl";
import { api, reportError } from "../api";
import { clearErrors, h } from "../dom";
import type { Feature } from "../types";
import { button } from "../ui";
import type { AnnotationSet, Task } from "./api";
import type { Drawing } from "./draw";
import { shapeOf } from "./edits";

const SOURCE = "suggestions";
const POLL_MS = 500;

interface Registered { name: string; aliases: Record<string, string>; versions: { version: string }[] }
interface JobState { id: number; state: string; error: { error: string; fix: string } | null }

declare global {
  interface Window {
    /** The task's pending suggestions (ids) and the selected one (tests). */
    eoengineSuggestions?: { ids: () => number[]; selected: () => number | null };
  }
}

/** The pending suggestions of one task and their controls. */
export class Suggestions {
  private pending = new Map<number, Feature>();
  private selected: number | null = null;
  private readonly list = h("ul", { class: "suggestion-list", id: "suggestion-list" });
  private readonly status = h("span", { class: "muted", id: "prelabel-status" });
  private readonly keys = (event: KeyboardEvent): void => this.onKey(event);

  constructor(private readonly map: maplibregl.Map, private readonly slug: string, private readonly set: AnnotationSet,
    private readonly task: Task, private readonly drawing: Drawing, side: HTMLElement) {
    const colour = ["coalesce", ["get", "colour"], "#d81b60"] as never;
    map.addSource(SOURCE, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addLayer({ id: `${SOURCE}-fill`, type: "fill", source: SOURCE, paint: { "fill-color": colour, "fill-opacity": 0.15 } });
    map.addLayer({ id: `${SOURCE}-line`, type: "line", source: SOURCE, paint: { "line-color": colour,
      "line-width": ["case", ["get", "selected"], 4, 2] as never, "line-dasharray": [2, 2] } });
    map.on("click", `${SOURCE}-fill`, (e) => this.select(Number(e.features?.[0]?.properties?.fid)));
    document.addEventListener("keydown", this.keys, true); // before the page's keys: Delete of a suggestion is ours
    window.eoengineSuggestions = { ids: () => [...this.pending.keys()], selected: () => this.selected };
    const controls = h("p", { class: "prelabel" });
    void this.prelabelControls(controls);
    side.append(h("section", { class: "suggestions", id: "suggestions" }, h("h2", {}, "Model suggestions"), controls,
      this.status, this.list));
  }

  /** Keep `feature` here when it is a pending suggestion (true); else the page shows it as a drawn one. */
  take(feature: Feature): boolean {
    if (!feature.properties?.suggestion) return false;
    this.pending.set(Number(feature.id), feature);
    this.refresh();
    return true;
  }

  /** Stop listening to the keys. */
  close(): void {
    document.removeEventListener("keydown", this.keys, true);
    delete window.eoengineSuggestions;
  }

  private base(): string { return `/projects/${encodeURIComponent(this.slug)}`; }

  private async prelabelControls(into: HTMLElement): Promise<void> {
    const models = await api<Registered[]>(`${this.base()}/models`).catch(() => [] as Registered[]);
    const refs = models.flatMap((m) => [...Object.keys(m.aliases).map((a) => `${m.name}@${a}`),
      ...m.versions.map((v) => `${m.name}/${v.version}`)]);
    const choice = h("select", { id: "prelabel-model", "aria-label": "Model" }, ...refs.map((r) => h("option", { value: r }, r)));
    const run = button("Pre-label", () => { clearErrors(); this.prelabel(choice.value).catch(reportError); },
      { id: "prelabel", title: refs.length ? "Suggest labels with the chosen model" : "No registered model" });
    if (!refs.length) run.setAttribute("disabled", "");
    into.append(choice, " ", run);
  }

  private async prelabel(model: string): Promise<void> {
    const path = `${this.base()}/annotation/tasks/${this.task.id}/prelabel`;
    let job = await api<JobState>(path, { json: { model } });
    this.status.textContent = `Pre-labelling with ${model} (job ${job.id})…`;
    while (!["succeeded", "failed", "cancelled"].includes(job.state)) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      job = await api<JobState>(`/jobs/${job.id}`);
    }
    if (job.state !== "succeeded") {
      this.status.textContent = `Pre-labelling ${job.state}: ${job.error?.error ?? ""}`;
      return;
    }
    const all = await api<{ features: Feature[] }>(`${this.base()}/annotation/tasks/${this.task.id}/features`);
    this.pending.clear();
    this.selected = null;
    all.features.forEach((f) => this.take(f));
    this.refresh();
  }

  private select(fid: number | null): void {
    this.selected = fid !== null && this.pending.has(fid) ? fid : null;
    this.refresh();
  }

  private async accept(fid: number): Promise<void> {
    const f = this.pending.get(fid);
    if (!f) return;
    const done = await api<Feature>(`${this.base()}/annotation/features/${fid}/accept`,
      { json: { version: Number(f.properties?.version) } });
    this.pending.delete(fid);
    if (this.selected === fid) this.selected = null;
    this.drawing.show(shapeOf(done));
    this.refresh();
  }

  private async remove(fid: number): Promise<void> {
    const f = this.pending.get(fid);
    if (!f) return;
    await api(`${this.base()}/annotation/features/${fid}`, { method: "DELETE", query: { version: Number(f.properties?.version) } });
    this.pending.delete(fid);
    if (this.selected === fid) this.selected = null;
    this.refresh();
  }

  private onKey(event: KeyboardEvent): void {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement || this.selected === null) return;
    const key = event.key.toLowerCase();
    const fid = this.selected;
    if (key === "a" && !event.ctrlKey && !event.metaKey) this.accept(fid).catch(reportError);
    else if (key === "delete" || key === "backspace") this.remove(fid).catch(reportError);
    else return;
    event.preventDefault();
    event.stopImmediatePropagation();
  }

  private refresh(): void {
    const colours = new Map(this.set.classes.map((c) => [String(c.value), c.color]));
    const names = new Map(this.set.classes.map((c) => [String(c.value), c.name]));
    const features = [...this.pending.values()].map((f) => ({ type: "Feature", geometry: f.geometry,
      properties: { fid: Number(f.id), colour: colours.get(String(f.properties?.label)), selected: Number(f.id) === this.selected } }));
    (this.map.getSource(SOURCE) as GeoJSONSource | undefined)?.setData({ type: "FeatureCollection", features } as never);
    this.list.replaceChildren(...[...this.pending.values()].map((f) => {
      const fid = Number(f.id);
      const p = f.properties ?? {};
      return h("li", { "data-fid": String(fid), class: fid === this.selected ? "selected" : "" },
        button(`${names.get(String(p.label)) ?? p.label} · score ${Number(p.score).toFixed(2)}`, () => this.select(fid),
          { class: "suggestion", "aria-pressed": String(fid === this.selected) }),
        button("Accept", () => { this.accept(fid).catch(reportError); }, { class: "accept" }),
        button("Delete", () => { this.remove(fid).catch(reportError); }, { class: "delete" }));
    }));
    this.status.textContent = `${this.pending.size} pending (select one, then a: accept, Delete: remove)`;
  }
}
