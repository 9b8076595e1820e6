import type { Params } from "../router";
import { placeholder } from "./placeholder";

/** The job page (scaffold). */
export function jobPage(root: HTMLElement, params: Params): void {
  placeholder(root, "Job", params);
}
