// Scaffold only: the page every route shows until its real page is written.

import { h, mount } from "../dom";
import type { Params } from "../router";

/** A heading and the route's parameters. */
export function placeholder(root: HTMLElement, title: string, params: Params): void {
  const items = Object.entries(params).map(([key, value]) => h("li", {}, h("code", {}, key), ` = ${value}`));
  mount(root, h("h1", {}, title), items.length ? h("ul", { class: "params" }, ...items) : null);
}
