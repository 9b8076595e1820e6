import type { Params } from "../router";
import { placeholder } from "./placeholder";

/** The sign in page (scaffold). */
export function signinPage(root: HTMLElement, params: Params): void {
  placeholder(root, "Sign in", params);
}
