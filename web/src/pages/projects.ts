import type { Params } from "../router";
import { placeholder } from "./placeholder";

/** The projects page (scaffold). */
export function projectsPage(root: HTMLElement, params: Params): void {
  placeholder(root, "Projects", params);
}
