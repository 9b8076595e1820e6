import type { Params } from "../router";
import { placeholder } from "./placeholder";

/** The dataset page (scaffold). */
export function datasetPage(root: HTMLElement, params: Params): void {
  placeholder(root, "Dataset", params);
}
