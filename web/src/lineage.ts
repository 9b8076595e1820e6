// The lineage of an artefact: what it came from (upstream) and what was made from it (downstream),
// laid out in the order scenes and labels → dataset → run → model → map, each node a link to its page.

import { ApiError, api, reportError } from "./api";
import { h } from "./dom";
import type { Lineage, LineageNode } from "./types";
import { link } from "./ui";

const ORDER = ["scene", "labels", "upload", "dataset", "run", "model", "map"];
const TITLES: Record<string, string> = { scene: "Scenes", labels: "Labels", upload: "Uploads", dataset: "Dataset",
  run: "Run", model: "Model version", map: "Maps" };

/** The page of a lineage node, if it has one (scenes and label files have none of their own). */
export function nodeHref(slug: string, node: LineageNode): string | null {
  const base = `#/projects/${encodeURIComponent(slug)}`;
  if (node.type === "dataset") return `${base}/datasets/${encodeURIComponent(node.id)}`;
  if (node.type === "run") return `${base}/runs/${encodeURIComponent(node.id)}`;
  const version = /^([\w\-.]+)\/(\d+)$/.exec(node.id);
  if (node.type === "model" && version) return `${base}/models/${encodeURIComponent(version[1])}?version=${version[2]}`;
  if (node.type === "map") return base;
  return null;
}

function label(node: LineageNode): string {
  if (node.type === "dataset") return node.id.replace(/@(.{12}).*/, "@$1");
  if (node.type === "run") return node.id.slice(0, 12);
  if (node.type === "model") return node.id.replace(/\/(\d+)$/, " v$1");
  if (node.type === "labels" || node.type === "map") return node.id.split("/").pop() || node.id; // the whole path: its title
  return node.id;
}

/** Keys reachable from `start` along `links` (not `start` itself). */
function reach(start: string, links: Map<string, string[]>): Set<string> {
  const seen = new Set<string>();
  const todo = [start];
  while (todo.length) {
    for (const next of links.get(todo.pop() as string) ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return seen;
}

/** The lineage as columns by type; the object itself is marked, upstream and downstream nodes tagged. */
export function lineageView(slug: string, lineage: Lineage): HTMLElement {
  const up = new Map<string, string[]>();
  const down = new Map<string, string[]>();
  for (const { source, target } of lineage.edges) {
    up.set(target, [...(up.get(target) ?? []), source]);
    down.set(source, [...(down.get(source) ?? []), target]);
  }
  const upstream = reach(lineage.object, up);
  const downstream = reach(lineage.object, down);
  const key = (n: LineageNode): string => `${n.type}:${n.id}`;
  const types = [...new Set(lineage.nodes.map((n) => n.type))]
    .sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));
  const columns = types.map((type) => h("li", { class: "lineage-step", "data-type": type },
    h("h3", {}, TITLES[type] ?? type),
    h("ul", { class: "plain" }, ...lineage.nodes.filter((n) => n.type === type).map((node) => {
      const self = key(node) === lineage.object;
      const side = self ? "self" : upstream.has(key(node)) ? "upstream" : downstream.has(key(node)) ? "downstream" : "related";
      const href = nodeHref(slug, node);
      const text = label(node);
      const attrs: Record<string, string> = { "data-node": key(node), "data-side": side, title: key(node) };
      if (self) attrs["aria-current"] = "true";
      return h("li", { class: `lineage-node ${side}` }, href && !self ? link(href, text, attrs) : h("span", attrs, text));
    }))));
  const counts = `${upstream.size} upstream, ${downstream.size} downstream`;
  return h("div", { class: "lineage", "data-object": lineage.object },
    h("p", { class: "muted" }, counts), h("ol", { class: "lineage-chain", "aria-label": "Lineage" }, ...columns));
}

/** A panel that loads the lineage of `object` (TYPE:ID) into itself; an object in no lineage says so. */
export function lineagePanel(slug: string, object: string): HTMLElement {
  const panel = h("div", { class: "lineage-panel", "data-lineage": object }, h("p", { class: "muted" }, "Loading the lineage…"));
  api<Lineage>(`/projects/${encodeURIComponent(slug)}/lineage`, { query: { object } }).then((lineage) => {
    panel.replaceChildren(lineageView(slug, lineage));
  }, (err: unknown) => {
    if (err instanceof ApiError && err.status === 404) {
      panel.replaceChildren(h("p", { class: "muted" }, "Not in any lineage yet: no job or registration of this project made it."));
    } else {
      panel.replaceChildren();
      reportError(err);
    }
  });
  return panel;
}

/** A disclosure ("Lineage") that loads the panel the first time it is opened. */
export function lineageDisclosure(slug: string, object: string, title = "Lineage"): HTMLDetailsElement {
  const details = h("details", { class: "lineage-details" }, h("summary", {}, title));
  details.addEventListener("toggle", () => {
    if (details.open && details.childElementCount === 1) details.append(lineagePanel(slug, object));
  });
  return details;
}
