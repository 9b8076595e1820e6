// The project page's annotation sets: a list (name, kind, task counts by state, a link to each set's page) and,
// for reviewers, the "New annotation set" form that POSTs /annotation/sets and opens the set it made.

import { api, reportError } from "../api";
import { clearErrors, h } from "../dom";
import type { ImageryItem } from "../types";
import { field, link, section, select, table, when } from "../ui";
import { type AnnotationSet, AnnotationApi, type SetIn } from "./api";

/** A set's task counts as people read them: "open 9 · in progress 2" (states with no task left out). */
export function countsText(counts: Record<string, number>): string {
  return Object.entries(counts).filter(([, n]) => n > 0).map(([state, n]) => `${state.replace("_", " ")} ${n}`).join(" · ")
    || "no task";
}

function setRows(slug: string, sets: AnnotationSet[]): HTMLElement {
  const base = `#/projects/${encodeURIComponent(slug)}/annotate`;
  const rows = sets.map((s) => [link(`${base}/${s.id}`, s.name, { "data-set": String(s.id) }), s.kind,
    String(s.items.length), h("span", { class: "set-counts" }, countsText(s.counts)), when(s.created_at)]);
  return table(["Set", "Kind", "Dates", "Tasks", "Made"], rows, "No annotation set yet.");
}

/** The form: name, the catalog's items (several = dates), kind and block size; opens the set made. */
function newSetForm(calls: AnnotationApi, slug: string, items: ImageryItem[]): HTMLFormElement {
  const name = h("input", { name: "name", id: "set-name", required: "", maxlength: "100" });
  const boxes = items.map((item, i) => {
    const box = h("input", { type: "checkbox", name: "items", value: item.id, id: `set-item-${i}` });
    if (i === 0) box.checked = true;
    return h("label", { class: "check" }, box, `${item.id}${item.datetime ? ` (${item.datetime.slice(0, 10)})` : ""}`);
  });
  const kind = select("kind", [["classes", "classes: one class per pixel"], ["change", "change: from → to (two or more dates)"]]);
  kind.id = "set-kind";
  const block = h("input", { type: "number", name: "block_size", id: "set-block-size", min: "1", placeholder: "the config's" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create set");
  const form = h("form", { class: "card", id: "new-set" }, field("Name", name),
    h("fieldset", { id: "set-items" }, h("legend", {}, "Imagery (several = dates of one place)"), ...boxes),
    field("Kind", kind), field("Block size (pixels)", block, "A task is one cell of this block grid; empty: the dataset's split blocks."),
    submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    const chosen = [...form.querySelectorAll<HTMLInputElement>("input[name=items]:checked")].map((b) => b.value);
    const body: SetIn = { name: name.value, items: chosen, kind: kind.value as SetIn["kind"],
      ...(block.value ? { block_size: Number(block.value) } : {}) };
    submit.disabled = true;
    calls.createSet(body).then((made) => {
      location.hash = `#/projects/${encodeURIComponent(slug)}/annotate/${made.id}`;
    }, reportError).finally(() => { submit.disabled = false; });
  });
  return form;
}

/** The "Annotation" section of the project page: the sets, and the new-set form for reviewers. */
export function annotationSets(slug: string, reviewer: boolean): HTMLElement {
  const calls = new AnnotationApi(slug);
  const list = h("div", { id: "annotation-sets" }, h("p", { class: "muted" }, "Reading the annotation sets…"));
  const form = h("div", { id: "new-set-slot" });
  Promise.all([calls.sets(), reviewer ? api<ImageryItem[]>(`/projects/${encodeURIComponent(slug)}/imagery`) : []])
    .then(([sets, items]) => {
      list.replaceChildren(setRows(slug, sets));
      if (reviewer) form.replaceChildren(h("h3", {}, "New annotation set"), newSetForm(calls, slug, items));
    }, (err: unknown) => {
      list.replaceChildren();
      reportError(err);
    });
  return section("Annotation", "annotation", list, form);
}
