import type { Params } from "../router";
import { placeholder } from "./placeholder";

/** The run page (scaffold). */
export function runPage(root: HTMLElement, params: Params): void {
  placeholder(root, "Run", params);
}
