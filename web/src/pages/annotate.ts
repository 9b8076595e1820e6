// The annotate page: a set's tasks on the map coloured by state, "Next task", and a task's view with its imagery
// (recipes, dates, a swipe divider), the drawing tools, every edit saved at once, submit and review.

import type maplibregl from "maplibre-gl";
import { api, reportError } from "../api";
import { type AnnotationSet, AnnotationApi, type Task } from "../annotate/api";
import { around, Drawing, TOOLS, type Tool } from "../annotate/draw";
import { type Choice, Edits, type Geometry, shapeOf } from "../annotate/edits";
import { compare } from "../annotate/compare";
import { type Dates, imagery } from "../annotate/imagery";
import { labelsOut } from "../annotate/outputs";
import { reviewPanel, swipe, taskPanel } from "../annotate/panels";
import { Suggestions } from "../annotate/suggestions";
import { clearErrors, h, mount } from "../dom";
import { addPolygons, createMap, fitTo, loaded, registerMap } from "../map";
import { may } from "../roles";
import type { Cleanup, Params } from "../router";
import { currentUser } from "../session";
import type { Feature, GeoJSON, ImageryItem, Overview } from "../types";
import { button } from "../ui";

export const STATE_COLOURS: Record<string, string> = {
  open: "#9e9e9e", in_progress: "#1e88e5", submitted: "#fb8c00", accepted: "#43a047", rejected: "#e53935",
};
const KEY_TOOLS: Record<string, Tool> = { p: "polygon", b: "rectangle", f: "freehand", s: "select", h: "hole" };

declare global {
  interface Window {
    /** The open task once its features are shown: writes pending, all answered, shapes on the map (tests, benchmark). */
    eoengineAnnotate?: { pending: () => number; settled: () => Promise<void>; shapes: () => number; labels: () => GeoJSON };
  }
}

/** Whether keys pressed in `target` are text (a text field, a text area, a select): not the page's shortcuts. */
function typing(target: EventTarget | null): boolean {
  return target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement
    || (target instanceof HTMLInputElement && !["checkbox", "radio", "button"].includes(target.type));
}

function colouredTasks(tasks: GeoJSON): GeoJSON {
  return { type: "FeatureCollection", features: tasks.features.map((f) => ({ ...f,
    properties: { ...f.properties, colour: STATE_COLOURS[String(f.properties?.state)] ?? "#555" } })) };
}

function legend(): HTMLElement {
  return h("p", { class: "legend", id: "state-legend" }, ...Object.entries(STATE_COLOURS).flatMap(([state, colour]) => [
    h("span", { class: "swatch", style: `background:${colour}` }), state.replace("_", " ")]));
}

/** The set page (`#/projects/:slug/annotate/:set`) and, with `:task`, the task's drawing view. */
export async function annotatePage(root: HTMLElement, params: Params): Promise<Cleanup> {
  const slug = params.slug;
  const setId = Number(params.set);
  const calls = new AnnotationApi(slug);
  const base = `#/projects/${encodeURIComponent(slug)}/annotate/${setId}`;
  const [user, overview, set, tasks, items] = await Promise.all([currentUser(),
    api<Overview>(`/projects/${encodeURIComponent(slug)}`), calls.set(setId), calls.tasks(setId),
    api<ImageryItem[]>(`/projects/${encodeURIComponent(slug)}/imagery`)]);
  const task = params.task ? await calls.task(Number(params.task)) : null;
  const reviewer = may(overview.role, "review", user.is_admin);
  const container = h("div", { class: "map annotate-map", id: "annotate-map", role: "region", "aria-label": "Annotation map" });
  const recipe = h("select", { id: "annotate-recipe", "aria-label": "Recipe" });
  const date = h("span", { id: "annotate-date", class: "muted" });
  const note = h("p", { id: "recipe-note", class: "note", role: "status", hidden: "" });
  const next = button("Next task", () => {
    clearErrors();
    calls.next(setId).then((t) => { location.hash = `${base}/tasks/${t.id}`; }, reportError);
  }, { id: "next-task", class: "primary" });
  const side = h("aside", { class: "annotate-side", id: "annotate-side" });
  const toolbar = h("div", { class: "map-bar annotate-toolbar", id: "annotate-toolbar" });
  mount(root, h("div", { class: "title-row" }, h("h1", {}, task ? `${set.name} · task ${task.row},${task.col}` : set.name),
    h("a", { href: base }, "All tasks"), reviewer ? h("a", { href: `${base}/stats`, id: "stats-link" }, "Quality") : null,
    next), toolbar, note,
  h("div", { class: "map-bar" }, h("label", {}, "Imagery ", recipe), button("◀ date", () => dates?.step(-1)), date,
    button("date ▶", () => dates?.step(1)), legend()),
  h("div", { class: "annotate-body" }, h("div", { class: "map-block annotate-stack" }, container), side));
  const map = createMap(container, { preserveDrawingBuffer: true } as never);
  const remove = registerMap("annotate", map);
  let dates: Dates | null = null;
  const cleanups: (() => void)[] = [remove];
  await loaded(map);
  addPolygons(map, "tasks", colouredTasks(tasks), { property: "colour", fallback: "#555" }, task ? 0 : 0.3);
  dates = imagery(map, set, items, recipe, date, note);
  if (!task) {
    fitTo(map, tasks);
    map.on("click", "tasks-fill", (e) => { location.hash = `${base}/tasks/${e.features?.[0]?.properties?.id}`; });
    side.append(h("p", {}, `${tasks.features.length} tasks: `, Object.entries(set.counts).map(([s, n]) => `${s} ${n}`).join(", ")));
    const out = labelsOut(calls, setId, reviewer);
    side.append(out.panel);
    cleanups.push(out.stop);
    return () => cleanups.forEach((c) => c());
  }
  fitTo(map, { type: "FeatureCollection", features: [{ type: "Feature", geometry: task.geometry, properties: {} }] }, 10);
  cleanups.push(await taskView({ map, slug, calls, set, task, reviewer, user: user.username, toolbar, side, dates, container }));
  return () => cleanups.reverse().forEach((c) => c());
}

interface TaskContext {
  map: maplibregl.Map; slug: string; calls: AnnotationApi; set: AnnotationSet; task: Task; reviewer: boolean; user: string;
  toolbar: HTMLElement; side: HTMLElement; dates: Dates; container: HTMLElement;
}

/** The drawing view of one task: tools, palette, saving, keys, comments, submit and review. */
async function taskView(ctx: TaskContext): Promise<Cleanup> {
  const { map, calls, set, task } = ctx;
  const colours = new Map(set.classes.map((c) => [c.value, c.color]));
  let label: unknown = set.kind === "change" ? "change" : set.classes[0]?.value;
  const drawing = new Drawing(map, (l) => colours.get(Number(l)) ?? (l === "no-change" ? "#9e9e9e" : "#d81b60"));
  const edits = new Edits(ctx.calls, task.id, drawing, (theirs) => askConflict(ctx.side, theirs),
    () => ({ item: set.items[ctx.dates.shown()]?.id }));
  const suggestions = new Suggestions(map, ctx.slug, set, task, drawing, ctx.side);
  // one batch: 10,000 features load at once (a model's pending suggestions go to their own layer)
  drawing.showAll((await calls.features(task.id)).features.filter((f) => !suggestions.take(f)).map(shapeOf));
  window.eoengineAnnotate = { pending: () => edits.pending, settled: () => edits.settled(), shapes: () => drawing.all().length,
    labels: () => drawing.labels() };
  const palette = set.classes.map((c, i) => button(`${i + 1} ${c.name}`, () => choose(c.value),
    { class: "class-button", "data-class": String(c.value), style: `border-left: 10px solid ${c.color}` }));
  const choose = (value: unknown): void => {
    label = value;
    palette.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.class === String(value))));
    const selected = drawing.draw.getSnapshot().find((f) => f.properties.selected);
    const shape = selected && drawing.shapeOf(selected.id as string);
    if (shape && shape.label !== value) edits.updated(shape, shape.geometry, value);
  };
  const tools = TOOLS.map((t) => button(t, () => use(t), { class: "tool-button", "data-tool": t }));
  const use = (t: Tool): void => {
    drawing.draw.setMode(t);
    tools.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === t)));
  };
  ctx.toolbar.append(h("span", { class: "tools" }, ...tools), h("span", { class: "palette", id: "palette" }, ...palette),
    button("Undo", () => edits.undo(), { id: "undo" }), button("Redo", () => edits.redo(), { id: "redo" }));
  choose(label);
  use("polygon");
  let fresh = task.state === "open" || task.state === "rejected"; // the first write starts the task
  const started = (): void => {
    if (!fresh) return;
    fresh = false;
    edits.settled().then(() => calls.task(task.id)).then((t) => {
      panel.refresh(t);
    }, reportError);
  };
  drawing.draw.on("finish", (id, context) => {
    const shape = drawing.shapeOf(id);
    if (context.mode === "hole") {
      cutHole(String(id));
    } else if (!shape) {
      const made = { drawId: String(id), fid: null, version: 0, label, geometry: drawing.geometryOf(id) };
      drawing.shapes.set(String(id), made);
      drawing.draw.updateFeatureProperties(id, { label: label as never });
      edits.created(made);
    } else {
      edits.updated(shape, drawing.geometryOf(id), shape.label);
    }
    started(); // after the write is queued: the task is read once it is answered
  });
  const cutHole = (id: string): void => {
    const ring = (drawing.geometryOf(id).coordinates as number[][][])[0];
    drawing.draw.removeFeatures([id]);
    const outer = around(drawing.all(), ring);
    if (!outer) return void reportError(new Error("The hole is not inside a polygon: draw it inside one"));
    const geometry: Geometry = { type: "Polygon", coordinates: [...(outer.geometry.coordinates as number[][][]), ring] };
    edits.updated(outer, geometry, outer.label);
    drawing.show(outer);
  };
  const keys = (event: KeyboardEvent): void => {
    if (typing(event.target)) return;
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") {
      if (event.shiftKey) edits.redo(); else edits.undo();
    } else if (/^[1-9]$/.test(key) && set.classes[Number(key) - 1]) {
      choose(set.classes[Number(key) - 1].value);
    } else if (KEY_TOOLS[key]) {
      use(KEY_TOOLS[key]);
    } else if (key === "c") {
      compared.toggle();
    } else if (key === "r") {
      ctx.dates.cycle();
    } else if (key === "[" || key === "]") {
      ctx.dates.step(key === "[" ? -1 : 1);
    } else if (key === "delete" || key === "backspace") {
      const selected = drawing.draw.getSnapshot().find((f) => f.properties.selected);
      const shape = selected && drawing.shapeOf(selected.id as string);
      if (shape) edits.deleted(shape);
    } else return;
    event.preventDefault();
  };
  document.addEventListener("keydown", keys);
  const panel = taskPanel(ctx, edits);
  if (ctx.reviewer) ctx.side.append(reviewPanel(ctx, panel));
  const unswipe = swipe(ctx.map, ctx.container, ctx.dates);
  const compared = compare(ctx.map, ctx.container.parentElement as HTMLElement,
    ctx.container.parentElement?.parentElement?.previousElementSibling as HTMLElement, ctx.dates, drawing);
  return () => {
    document.removeEventListener("keydown", keys);
    suggestions.close();
    drawing.draw.stop();
    unswipe();
    compared.close();
    panel.stop();
    delete window.eoengineAnnotate;
  };
}

/** Show the other person's version and ask whether to keep it or overwrite it with mine. */
function askConflict(side: HTMLElement, theirs: Feature): Promise<Choice> {
  return new Promise((resolve) => {
    const p = theirs.properties ?? {};
    const box = h("div", { class: "alert conflict", id: "conflict", role: "alertdialog" },
      h("strong", {}, `Someone else changed this feature (version ${p.version}, by ${p.updated_by ?? "another user"}).`));
    const answer = (choice: Choice): void => { box.remove(); resolve(choice); };
    box.append(button("Keep theirs", () => answer("theirs")), button("Overwrite with mine", () => answer("mine")));
    side.prepend(box);
  });
}

export type { TaskContext };
