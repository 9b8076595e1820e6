// A project's subscriptions: state, schedule and last run of each, with pause/resume/cancel/run-now for the roles allowed.

import { api, reportError } from "../api";
import { clearErrors, h, mount } from "../dom";
import { may } from "../roles";
import type { Params } from "../router";
import { currentUser } from "../session";
import type { Overview, User } from "../types";
import { button, link, section, stateBadge, table, when } from "../ui";

/** A subscription as the server's `SubscriptionOut` answers it. */
export interface Subscription {
  id: number;
  name: string;
  spec: Record<string, unknown>;
  state: string;
  next_due: string | null;
  last_due: string | null;
  failures: number;
  runs: number;
  active_job: number | null;
  created_by: string | null;
}

/** Which state changes a subscription in `state` accepts (the server's transitions; others answer 409). */
const ACTIONS: Record<string, string[]> = {
  pending: ["pause", "cancel"], active: ["pause", "cancel"], suspended: ["resume", "cancel"], failed: ["resume", "cancel"],
};

function actions(slug: string, sub: Subscription, user: User, role: string | null, refresh: () => void): HTMLElement {
  const path = `/projects/${encodeURIComponent(slug)}/subscriptions/${sub.id}`;
  const post = (action: string) => (): void => {
    clearErrors();
    api(`${path}/${action}`, { method: "POST" }).then(refresh, reportError);
  };
  const run = may(role, "run", user.is_admin);
  const cancel = may(role, "manage", user.is_admin) || (run && sub.created_by === user.username);
  const allowed = (ACTIONS[sub.state] ?? []).filter((a) => (a === "cancel" ? cancel : run));
  const buttons = allowed.map((a) => button(a === "pause" ? "Pause" : a === "resume" ? "Resume" : "Cancel", post(a),
    { "data-action": a, "data-sub": String(sub.id) }));
  if (run && ["pending", "active"].includes(sub.state)) {
    buttons.push(button("Run now", post("run"), { "data-action": "run", "data-sub": String(sub.id) }));
  }
  return h("div", { class: "actions" }, ...buttons);
}

/** The subscriptions list page of a project (`#/projects/:slug/subscriptions`). */
export async function subscriptionsPage(root: HTMLElement, params: Params): Promise<void> {
  const slug = params.slug;
  const base = `#/projects/${encodeURIComponent(slug)}`;
  const [user, project] = await Promise.all([currentUser(), api<Overview>(`/projects/${encodeURIComponent(slug)}`)]);
  const list = h("div", { id: "subscription-table" });
  const refresh = (): void => {
    api<Subscription[]>(`/projects/${encodeURIComponent(slug)}/subscriptions`).then((subs) => {
      const rows = subs.map((s) => [h("span", { "data-sub": String(s.id) }, link(`${base}/subscriptions/${s.id}`, s.name)),
        stateBadge(s.state), String(s.spec.cadence ?? ""), String(s.runs), when(s.last_due), when(s.next_due),
        actions(slug, s, user, project.role, refresh)]);
      list.replaceChildren(table(["Subscription", "State", "Cadence", "Runs", "Last run", "Next due", ""], rows,
        "No subscription yet."));
    }, reportError);
  };
  mount(root, h("div", { class: "title-row" }, h("h1", {}, `${project.name}: subscriptions`),
    h("span", { class: "actions" }, may(project.role, "run", user.is_admin)
      ? link(`${base}/subscriptions/new`, "New subscription", { class: "button-link", id: "new-subscription" }) : "",
    link(base, "Back to the project", { class: "button-link" }))), section("Subscriptions", "subscriptions", list));
  refresh();
}
