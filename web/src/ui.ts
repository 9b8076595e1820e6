// Building blocks the pages share: sections, tables, fields, formatted values, job state and progress.

import { h } from "./dom";
import type { Job, Progress } from "./types";

type Child = Node | string | null | undefined | false;

/** A link inside the app (`#/…`) or to the API. */
export function link(href: string, text: string, attrs: Record<string, string> = {}): HTMLAnchorElement {
  return h("a", { href, ...attrs }, text);
}

/** A titled section; `id` names it for tests and the skip links. */
export function section(title: string, id: string, ...children: Child[]): HTMLElement {
  const heading = h("h2", { id: `${id}-title` }, title);
  return h("section", { class: "panel", id, "aria-labelledby": `${id}-title` }, heading, ...children);
}

/** A table with a header row; a cell may be text or an element. Empty rows show `empty` instead. */
export function table(headers: string[], rows: Child[][], empty = "Nothing yet.", caption = ""): HTMLElement {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  const head = h("tr", {}, ...headers.map((name) => h("th", { scope: "col" }, name)));
  const body = rows.map((cells) => h("tr", {}, ...cells.map((cell) => h("td", {}, cell))));
  return h("table", {}, caption ? h("caption", {}, caption) : null, h("thead", {}, head), h("tbody", {}, ...body));
}

let fields = 0;

/** A control with its label (`for` its id, made when it has none) and an optional hint it is described by. */
export function field(label: string, control: HTMLElement, hint = ""): HTMLElement {
  if (!control.id) control.id = `field-${++fields}`;
  if (hint) control.setAttribute("aria-describedby", `${control.id}-hint`);
  return h("div", { class: "field" }, h("label", { for: control.id, class: "field-label" }, label), control,
    hint ? h("span", { class: "hint", id: `${control.id}-hint` }, hint) : null);
}

/** A select with `options` (value, text); `value` selected. */
export function select(name: string, options: [string, string][], value = ""): HTMLSelectElement {
  const node = h("select", { name });
  for (const [key, text] of options) {
    const option = h("option", { value: key }, text);
    if (key === value) option.selected = true;
    node.append(option);
  }
  return node;
}

/** A date and time as the user's locale writes it (empty for none). */
export function when(iso: string | null | undefined): string {
  if (!iso) return "";
  const date = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** A number with at most `digits` significant digits (integers in full); `—` for none. */
export function num(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return Number(value.toPrecision(digits)).toString();
}

/** A dataset as people read it: its name and the first 12 characters of its version (the folder's name). */
export function shortRef(name: string, version: string): string {
  return `${name}@${version.slice(0, 12)}`;
}

/** Keys and values as a definition list (values: text or elements). */
export function keyValues(entries: [string, Child][]): HTMLElement {
  const list = h("dl", { class: "kv" });
  for (const [key, value] of entries) list.append(h("dt", {}, key), h("dd", {}, value));
  return list;
}

/** A job's state as a coloured badge. */
export function stateBadge(state: string): HTMLElement {
  return h("span", { class: `badge state-${state}`, "data-state": state }, state);
}

/** Whether a job may still change (queued or running). */
export function isActive(job: Job): boolean {
  return job.state === "queued" || job.state === "running";
}

/** A progress bar with its description and `completed/total` (an indeterminate bar when the total is unknown). */
export function progressBar(progress: Progress | null, state: string): HTMLElement {
  const done = state === "succeeded";
  const total = progress?.total ?? null;
  const completed = progress?.completed ?? 0;
  const bar = h("progress", { max: String(total && total > 0 ? total : 1), "aria-label": "Progress" });
  if (total && total > 0) bar.value = Math.min(completed, total);
  else if (done) bar.value = 1;
  const count = total ? `${num(completed)}/${num(total)}` : completed ? num(completed) : "";
  const text = [progress?.description ?? (done ? "done" : state), count].filter(Boolean).join(" · ");
  return h("div", { class: "progress" }, bar, h("span", { class: "progress-text" }, text));
}

/** Pretty JSON in a <pre>. */
export function jsonBlock(value: unknown): HTMLElement {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** A button; `onClick` runs on click (Enter and Space included, as for every button). */
export function button(text: string, onClick: () => void, attrs: Record<string, string> = {}): HTMLButtonElement {
  const node = h("button", { type: "button", ...attrs }, text);
  node.addEventListener("click", onClick);
  return node;
}
