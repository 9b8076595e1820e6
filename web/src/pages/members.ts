// A project's members (its admins add people, change roles, remove them) and the user's own API tokens.

import { api, reportError } from "../api";
import { clearErrors, h, mount } from "../dom";
import { ROLES, may } from "../roles";
import type { Params } from "../router";
import { currentUser } from "../session";
import type { Member, Overview, Token } from "../types";
import { button, field, link, section, select, table, when } from "../ui";

const roleOptions = (): [string, string][] => ROLES.map((r) => [r, r]);

function memberRows(slug: string, members: Member[], manage: boolean, reload: () => void): HTMLElement[][] {
  const path = (name: string): string => `/projects/${encodeURIComponent(slug)}/members/${encodeURIComponent(name)}`;
  return members.map((m) => {
    if (!manage) return [h("span", {}, m.username), h("span", {}, m.role)];
    const role = select("role", roleOptions(), m.role);
    role.setAttribute("aria-label", `Role of ${m.username}`);
    const save = button("Change role", () => {
      clearErrors();
      api(path(m.username), { method: "PATCH", json: { role: role.value } }).then(reload, reportError);
    }, { "data-user": m.username, class: "change-role" });
    const remove = button("Remove", () => {
      clearErrors();
      api(path(m.username), { method: "DELETE" }).then(reload, reportError);
    }, { class: "danger remove-member", "data-user": m.username });
    return [h("span", {}, m.username), h("span", { class: "inline" }, role, save), remove];
  });
}

function addForm(slug: string, reload: () => void): HTMLFormElement {
  const username = h("input", { name: "username", id: "member-username", required: "" });
  const role = select("role", roleOptions(), "viewer");
  role.id = "member-role";
  const form = h("form", { class: "inline-form", id: "add-member" }, field("User name", username), field("Role", role),
    h("button", { type: "submit" }, "Add member"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    api(`/projects/${encodeURIComponent(slug)}/members`, { json: { username: username.value, role: role.value } })
      .then(reload, reportError);
  });
  return form;
}

/** The members page of a project. */
export async function membersPage(root: HTMLElement, params: Params): Promise<void> {
  const slug = params.slug;
  const [user, project, members] = await Promise.all([currentUser(), api<Overview>(`/projects/${encodeURIComponent(slug)}`),
    api<Member[]>(`/projects/${encodeURIComponent(slug)}/members`)]);
  const manage = may(project.role, "manage", user.is_admin);
  const reload = (): void => void membersPage(root, params).catch(reportError);
  mount(root,
    h("div", { class: "title-row" }, h("h1", {}, `Members of ${project.name}`),
      link(`#/projects/${encodeURIComponent(slug)}`, "Back to the project")),
    section("Members", "member-list", table(manage ? ["User", "Role", ""] : ["User", "Role"],
      memberRows(slug, members, manage, reload), "No members.")),
    manage ? section("Add a member", "new-member", addForm(slug, reload)) : null);
}

function copyButton(secret: HTMLInputElement): HTMLButtonElement {
  const copy = button("Copy", () => {
    secret.select();
    const done = (): void => {
      copy.textContent = "Copied";
    };
    if (navigator.clipboard) navigator.clipboard.writeText(secret.value).then(done, () => document.execCommand("copy") && done());
    else if (document.execCommand("copy")) done();
  }, { id: "copy-token" });
  return copy;
}

function tokenForm(shown: HTMLElement, reload: () => void): HTMLFormElement {
  const name = h("input", { name: "name", id: "token-name", required: "", maxlength: "100" });
  const days = h("input", { name: "expires_days", id: "token-days", type: "number", min: "1", max: "3650", value: "90" });
  const form = h("form", { class: "inline-form", id: "new-token" }, field("Name", name), field("Days valid", days),
    h("button", { type: "submit" }, "Make token"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    api<Token>("/tokens", { json: { name: name.value, expires_days: days.value ? Number(days.value) : null } }).then((made) => {
      form.reset();
      reload();
      const secret = h("input", { id: "token-secret", readonly: "", value: made.token ?? "", size: "60",
        "aria-label": "The new token" });
      shown.replaceChildren(h("div", { class: "card token-once" },
        h("p", {}, `Your token "${made.name}" — copy it now: it is not shown again.`), h("div", { class: "inline" }, secret,
          copyButton(secret))));
      secret.select();
    }, reportError);
  });
  return form;
}

/** The user's API tokens: list, make one (shown once), revoke. */
export async function tokensPage(root: HTMLElement): Promise<void> {
  const list = h("div", { id: "token-list" });
  const shown = h("div", { id: "token-made" });
  const reload = (): void => {
    api<Token[]>("/tokens").then((tokens) => {
      const rows = tokens.map((t) => [t.name, h("code", {}, `${t.prefix}…`), when(t.created_at), when(t.expires_at) || "never",
        when(t.last_used_at) || "never", t.revoked_at ? `revoked ${when(t.revoked_at)}`
          : button("Revoke", () => {
            clearErrors();
            api(`/tokens/${t.id}`, { method: "DELETE" }).then(reload, reportError);
          }, { class: "danger revoke-token", "data-token": t.name })]);
      list.replaceChildren(table(["Name", "Prefix", "Made", "Expires", "Last used", ""], rows, "You have no API token."));
    }, reportError);
  };
  mount(root, h("h1", {}, "API tokens"),
    h("p", { class: "muted" }, "Use a token as 'Authorization: Bearer TOKEN' from scripts and the eoengine client."),
    section("Your tokens", "tokens", list), section("Make a token", "make-token", tokenForm(shown, reload), shown));
  reload();
}
