import { h } from "../dom";
import { createMap } from "../map";
import type { Cleanup, Params } from "../router";
import { placeholder } from "./placeholder";

/** The project overview (scaffold): its heading and an empty map where footprints will go. */
export function projectPage(root: HTMLElement, params: Params): Cleanup {
  placeholder(root, `Project ${params.slug}`, params);
  const container = h("div", { class: "map", id: "project-map", role: "region", "aria-label": "Map of the project" });
  root.append(container);
  const map = createMap(container);
  return () => map.remove();
}
