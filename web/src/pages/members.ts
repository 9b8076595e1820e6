import type { Params } from "../router";
import { placeholder } from "./placeholder";

/** The members and tokens page (scaffold). */
export function membersPage(root: HTMLElement, params: Params): void {
  placeholder(root, "Members and tokens", params);
}
