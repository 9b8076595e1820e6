// The annotate page's side panels (the task, its comments pinned on the map, submit, review) and the swipe
// divider that shows a second date on the right of the divider.

import maplibregl from "maplibre-gl";
import { reportError } from "../api";
import { clearErrors, h } from "../dom";
import { addTiles, blankStyle } from "../map";
import type { TaskContext } from "../pages/annotate";
import type { ImageryItem } from "../types";
import { button, keyValues, stateBadge, when } from "../ui";
import type { Pin, Task } from "./api";
import type { Edits } from "./edits";

/** What the panels show of a task, redrawn from the task as the server answers it. */
export interface TaskPanel {
  /** Show `task` (state, people, comments and their pins) as it is now. */
  refresh(task: Task): void;
  stop(): void;
}

/** The task's state, its people, its comments (pinned ones as map markers) and, for its assignee, Submit. */
export function taskPanel(ctx: TaskContext, edits: Edits): TaskPanel {
  const box = h("div", { id: "task-panel" });
  let markers: maplibregl.Marker[] = [];
  const refresh = (task: Task): void => {
    markers.forEach((m) => m.remove());
    markers = task.comments.filter((c) => c.lon !== null && c.lat !== null).map((c) =>
      new maplibregl.Marker({ color: "#e53935" }).setLngLat([c.lon as number, c.lat as number])
        .setPopup(new maplibregl.Popup().setText(`${c.author}: ${c.text}`)).addTo(ctx.map));
    markers.forEach((m) => m.getElement().classList.add("comment-pin"));
    const comments = h("ul", { id: "comments" }, ...task.comments.map((c) => h("li", { class: "comment", "data-id": String(c.id) },
      h("strong", {}, c.author), ` ${c.text}`, c.lon !== null ? " 📍" : "", h("span", { class: "muted" }, ` ${when(c.created_at)}`))));
    const submit = button("Submit task", () => {
      clearErrors();
      edits.settled().then(() => ctx.calls.submit(task.id)).then(refresh, reportError);
    }, { id: "submit-task", class: "primary" });
    box.replaceChildren(keyValues([["State", h("span", { id: "task-state" }, stateBadge(task.state))],
      ["Assignee", h("span", { id: "task-assignee" }, task.assignee ?? "—")],
      ["Reviewer", h("span", { id: "task-reviewer" }, task.reviewer ?? "—")]]),
    task.assignee === ctx.user ? submit : "", h("h2", {}, "Comments"),
    task.comments.length ? comments : h("p", { class: "muted", id: "comments" }, "No comments."));
    box.dataset.state = task.state;
  };
  refresh(ctx.task);
  ctx.side.append(box);
  return { refresh, stop: () => markers.forEach((m) => m.remove()) };
}

/** Accept, or reject with a comment and pins placed by clicking the map (reviewers); then the whole task is shown again. */
export function reviewPanel(ctx: TaskContext, panel: TaskPanel): HTMLElement {
  const pins: Pin[] = [];
  let placed: maplibregl.Marker[] = [];
  const text = h("textarea", { id: "review-comment", rows: "3", "aria-label": "Review comment" });
  const pinning = h("input", { type: "checkbox", id: "place-pins" });
  const count = h("span", { id: "pin-count", class: "muted" }, "0 pins");
  const counted = (): void => { count.textContent = `${pins.length} pin${pins.length === 1 ? "" : "s"}`; };
  ctx.map.on("click", (e) => {
    if (!pinning.checked) return;
    pins.push({ lon: e.lngLat.lng, lat: e.lngLat.lat, text: text.value || "see here" });
    const marker = new maplibregl.Marker({ color: "#8e24aa" }).setLngLat(e.lngLat).addTo(ctx.map);
    marker.getElement().classList.add("review-pin");
    placed.push(marker);
    counted();
  });
  const decide = (decision: "accept" | "reject"): void => {
    clearErrors();
    if (decision === "reject") pins.forEach((p) => { p.text = text.value || p.text; });
    ctx.calls.review(ctx.task.id, decision, text.value, decision === "reject" ? pins : [])
      .then(() => ctx.calls.task(ctx.task.id)).then((t) => {
        placed.forEach((m) => m.remove());
        placed = [];
        pins.length = 0;
        text.value = "";
        pinning.checked = false;
        counted();
        panel.refresh(t);
      }, reportError);
  };
  return h("section", { class: "panel", id: "review" }, h("h2", {}, "Review"), text,
    h("label", { class: "check" }, pinning, "Click the map to pin the comment"), count,
    h("div", {}, button("Accept", () => decide("accept"), { id: "accept-task", class: "primary" }),
      button("Reject", () => decide("reject"), { id: "reject-task" })));
}

/** The dates a swipe shows: the first map's (`shown`), and the other (`other`; default the next), redrawn on `changed`. */
export interface SwipeDates {
  items: ImageryItem[];
  url: (item: ImageryItem) => string;
  shown: () => number;
  other?: () => ImageryItem | undefined;
  changed?: (listener: () => void) => void;
}

/** A "Swipe" toggle: a second map of another date over the first, shown right of a draggable divider. */
export function swipe(map: maplibregl.Map, container: HTMLElement, dates: SwipeDates): () => void {
  if (dates.items.length < 2) return () => undefined;
  const toggle = h("input", { type: "checkbox", id: "swipe" });
  const over = h("div", { class: "swipe-map", id: "swipe-map" });
  const divider = h("div", { class: "swipe-divider", id: "swipe-divider", role: "separator", "aria-label": "Swipe divider" });
  container.parentElement?.append(over, divider);
  container.parentElement?.parentElement?.previousElementSibling?.append(h("label", { class: "check" }, toggle, "Swipe"));
  let second: maplibregl.Map | null = null;
  let ready = false;
  const sync = (): void => { second?.jumpTo({ center: map.getCenter(), zoom: map.getZoom() }); };
  const at = (x: number): void => {
    over.style.clipPath = `inset(0 0 0 ${x}px)`;
    divider.style.left = `${x}px`;
  };
  const draw = (): void => {
    const item = dates.other?.() ?? dates.items[(dates.shown() + 1) % dates.items.length];
    if (!second || !ready) return;
    if (second.getLayer("other-date")) { second.removeLayer("other-date"); second.removeSource("other-date"); }
    if (item) addTiles(second, "other-date", dates.url(item), item.bbox);
    over.dataset.item = item?.id ?? "";
  };
  const show = (): void => {
    over.hidden = divider.hidden = !toggle.checked;
    if (!toggle.checked) { second?.remove(); second = null; ready = false; return; }
    second = new maplibregl.Map({ container: over, style: blankStyle(), interactive: false, attributionControl: false,
      center: map.getCenter(), zoom: map.getZoom(), preserveDrawingBuffer: true } as never); // screenshots show it
    second.on("load", () => { ready = true; draw(); });
    (window.eoengineMaps ??= {}).swipe = second;
    at(container.clientWidth / 2);
  };
  over.hidden = divider.hidden = true;
  toggle.addEventListener("change", show);
  dates.changed?.(draw);
  map.on("move", sync);
  divider.addEventListener("pointerdown", (down) => {
    divider.setPointerCapture(down.pointerId);
    const move = (e: PointerEvent): void => at(Math.max(0, Math.min(container.clientWidth, e.clientX - container.getBoundingClientRect().left)));
    divider.addEventListener("pointermove", move);
    divider.addEventListener("pointerup", () => divider.removeEventListener("pointermove", move), { once: true });
  });
  return () => { second?.remove(); map.off("move", sync); };
}
