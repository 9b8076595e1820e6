// A hash router: `#/projects/:slug` style patterns, one page rendered into the main element at a time.

import { reportError } from "./api";
import { clearErrors } from "./dom";

export type Params = Record<string, string>;
/** What a page may return: a function undoing what it started (maps, streams, timers) when the user leaves. */
export type Cleanup = () => void;
export type Page = (root: HTMLElement, params: Params, query: URLSearchParams) => void | Cleanup | Promise<void | Cleanup>;

export interface Route {
  pattern: string;
  title: string;
  page: Page;
}

export interface Match {
  route: Route;
  params: Params;
  query: URLSearchParams;
}

/** The route matching a location hash (`#/projects/a?x=1`) and its decoded parameters, or null. */
export function matchRoute(routes: Route[], hash: string): Match | null {
  const [path = "", search = ""] = hash.replace(/^#/, "").split("?", 2);
  const parts = path.split("/").filter(Boolean);
  for (const route of routes) {
    const pattern = route.pattern.split("/").filter(Boolean);
    if (pattern.length !== parts.length) continue;
    const params: Params = {};
    const ok = pattern.every((seg, i) => {
      if (seg.startsWith(":")) {
        params[seg.slice(1)] = decodeURIComponent(parts[i]);
        return true;
      }
      return seg === parts[i];
    });
    if (ok) return { route, params, query: new URLSearchParams(search) };
  }
  return null;
}

/** Render the page for the current hash on every change; unknown hashes go to `fallback`. */
export function startRouter(root: HTMLElement, routes: Route[], fallback: string): void {
  let cleanup: Cleanup | undefined;
  let generation = 0;
  const render = async (): Promise<void> => {
    const match = matchRoute(routes, location.hash);
    if (!match) {
      location.replace(fallback);
      return;
    }
    cleanup?.();
    cleanup = undefined;
    const mine = ++generation;
    clearErrors();
    root.replaceChildren();
    document.title = `${match.route.title} · eoengine`;
    try {
      const done = await match.route.page(root, match.params, match.query);
      if (mine === generation) cleanup = done ?? undefined;
      else done?.(); // the user left before the page finished loading
    } catch (err) {
      reportError(err);
    }
    if (mine === generation) root.focus({ preventScroll: true });
  };
  window.addEventListener("hashchange", () => void render());
  void render();
}
