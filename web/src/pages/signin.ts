// Sign-in: user name and password; the server's {error, fix} shown; then the page asked for, or Projects.

import { ApiError, api } from "../api";
import { h, mount, showError, clearErrors } from "../dom";
import type { Params } from "../router";
import { setUser } from "../session";
import type { User } from "../types";
import { field } from "../ui";

/** Where to go after signing in: the `next` hash when it is a page of the app, else Projects. */
function nextPage(query: URLSearchParams): string {
  const next = query.get("next") ?? "";
  return next.startsWith("#/") && !next.startsWith("#/signin") ? next : "#/projects";
}

/** The sign-in page. */
export function signinPage(root: HTMLElement, _params: Params, query: URLSearchParams): void {
  setUser(null);
  const username = h("input", { name: "username", id: "username", autocomplete: "username", required: "" });
  const password = h("input", { name: "password", id: "password", type: "password", autocomplete: "current-password",
    required: "" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "card signin", id: "signin-form" },
    h("h1", {}, "Sign in"), field("User name", username), field("Password", password), submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    submit.disabled = true;
    api<{ user: User; csrf_token: string }>("/auth/login", { json: { username: username.value, password: password.value } })
      .then((answer) => {
        setUser(answer.user);
        location.hash = nextPage(query);
      })
      .catch((err: unknown) => {
        if (err instanceof ApiError) showError(err.message, err.fix);
        else throw err;
        password.select();
      })
      .finally(() => {
        submit.disabled = false;
      });
  });
  mount(root, form);
  username.focus();
}
