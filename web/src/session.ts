// Who is signed in: asked of the server once per page load, kept after sign-in, cleared on sign-out.
// The header's navigation shows the user's links and a sign-out button.

import { api, reportError } from "./api";
import { h } from "./dom";
import type { Page } from "./router";
import type { User } from "./types";

let current: User | null = null;

/** Remember the user the sign-in answered with. */
export function setUser(user: User | null): void {
  current = user;
  renderNav();
}

/** The signed-in user (asks /auth/me the first time; a 401 there sends the browser to sign-in). */
export async function currentUser(): Promise<User> {
  if (!current) setUser(await api<User>("/auth/me"));
  return current as unknown as User;
}

async function signOut(): Promise<void> {
  try {
    await api("/auth/logout", { method: "POST" });
  } catch (err) {
    reportError(err);
  }
  setUser(null);
  location.hash = "#/signin";
}

/** Fill the header's navigation for the current user (nothing when signed out). */
export function renderNav(): void {
  const nav = document.getElementById("nav");
  if (!nav) return;
  if (!current) {
    nav.replaceChildren();
    return;
  }
  const out = h("button", { type: "button", class: "link-button", id: "sign-out" }, "Sign out");
  out.addEventListener("click", () => void signOut());
  nav.replaceChildren(
    h("a", { href: "#/projects" }, "Projects"),
    h("a", { href: "#/tokens" }, "API tokens"),
    h("span", { class: "whoami", id: "whoami" }, current.username + (current.is_admin ? " (site admin)" : "")),
    out,
  );
}

/** A page that needs a signed-in user: it runs once the user is known. */
export function signedIn(page: Page): Page {
  return async (root, params, query) => {
    await currentUser();
    return page(root, params, query);
  };
}
