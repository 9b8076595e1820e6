// A job: its state and progress, the log as it grows (streamed as server-sent events; polling /log?offset= if the
// stream fails), its outputs, and Cancel.

import { api, apiUrl, reportError, request } from "../api";
import { clearErrors, h, mount } from "../dom";
import { every, outputs } from "../jobs";
import { may } from "../roles";
import type { Cleanup, Params } from "../router";
import { currentUser } from "../session";
import type { Job, Overview, User } from "../types";
import { button, isActive, jsonBlock, keyValues, link, num, progressBar, section, stateBadge, when } from "../ui";

/** A value of a job's result, readably: text as code, numbers rounded, lists and objects nested. */
function value(v: unknown): Node {
  if (v === null || v === undefined) return document.createTextNode("—");
  if (typeof v === "number") return document.createTextNode(num(v));
  if (typeof v === "string" || typeof v === "boolean") return h("code", {}, String(v));
  if (Array.isArray(v)) return h("ul", { class: "plain" }, ...v.map((item) => h("li", {}, value(item))));
  return keyValues(Object.entries(v as Record<string, unknown>).map(([k, inner]) => [k, value(inner)]));
}

function mayCancel(job: Job, role: string | null, user: User): boolean {
  return may(role, "manage", user.is_admin) || (may(role, "run") && job.created_by === user.username);
}

function summary(job: Job): HTMLElement {
  return keyValues([
    ["State", stateBadge(job.state)], ["Submitted", `${when(job.created_at)} by ${job.created_by ?? "?"}`],
    ["Started", when(job.started_at) || "not yet"], ["Finished", when(job.finished_at) || "not yet"],
    ["Attempts", String(job.attempts)], ["Spec", jsonBlock(job.spec)],
  ]);
}

/** The job page. */
export async function jobPage(root: HTMLElement, params: Params): Promise<Cleanup> {
  const id = params.id;
  const [user, first] = await Promise.all([currentUser(), api<Job>(`/jobs/${encodeURIComponent(id)}`)]);
  const project = await api<Overview>(`/projects/${encodeURIComponent(first.project)}`);
  const state = h("div", { id: "job-summary" });
  const progress = h("div", { id: "job-progress" });
  const result = h("div", { id: "job-result" });
  const log = h("pre", { class: "log", id: "job-log", tabindex: "0", "aria-label": "Job log" });
  const actions = h("div", { class: "actions" });
  mount(root,
    h("div", { class: "title-row" }, h("h1", {}, `Job #${first.id} · ${first.kind}`),
      link(`#/projects/${encodeURIComponent(first.project)}`, `Project ${project.name}`)),
    section("Progress", "progress", progress, actions), section("Outputs", "outputs", result),
    section("Log", "log", log), section("Details", "details", state));
  let offset = 0;
  const append = (text: string): void => {
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(text);
    if (atEnd) log.scrollTop = log.scrollHeight;
  };
  const readLog = async (): Promise<void> => {
    for (;;) {
      const response = await request(`/jobs/${encodeURIComponent(id)}/log`, { query: { offset } });
      const text = await response.text();
      const next = Number(response.headers.get("X-Log-Offset") ?? offset + new TextEncoder().encode(text).length);
      if (text) append(text);
      if (next <= offset || !text) return;
      offset = next;
    }
  };
  const show = async (job: Job): Promise<void> => {
    progress.replaceChildren(progressBar(job.progress, job.state));
    state.replaceChildren(summary(job));
    actions.replaceChildren();
    if (isActive(job) && mayCancel(job, project.role, user)) {
      const cancel = button(job.cancel_requested ? "Cancelling…" : "Cancel job", () => {
        clearErrors();
        cancel.disabled = true;
        api<Job>(`/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" }).then(show, reportError);
      }, { class: "danger", id: "cancel-job" });
      cancel.disabled = Boolean(job.cancel_requested);
      actions.append(cancel);
    }
    if (isActive(job)) {
      result.replaceChildren(h("p", { class: "muted" }, "The outputs appear when the job is done."));
      return;
    }
    const made = job.state === "succeeded" ? outputs(job, await api<Overview>(`/projects/${encodeURIComponent(job.project)}`)) : null;
    result.replaceChildren(
      job.error ? h("div", { class: "job-error", role: "status" }, h("strong", {}, job.error.error ?? "The job failed"),
        job.error.fix ? h("span", { class: "alert-fix" }, job.error.fix) : null) : h("span", {}),
      made ?? h("span", {}), job.result ? value(job.result) : h("p", { class: "muted" }, "No result."));
  };
  await show(first);
  let current = first;
  let stopPolling: (() => void) | undefined;
  const poll = (): void => {
    stopPolling = every(1000, async () => {
      const job = await api<Job>(`/jobs/${encodeURIComponent(id)}`);
      await readLog();
      await show(job);
      if (isActive(job)) return true;
      await readLog();
      return false;
    });
  };
  // the log and state stream in as server-sent events; polling takes over only if the stream fails
  const stream = new EventSource(apiUrl(`/jobs/${encodeURIComponent(id)}/log/stream`, { offset }), { withCredentials: true });
  log.dataset.follow = "stream";
  stream.addEventListener("log", (event) => {
    const message = event as MessageEvent<string>;
    append(`${message.data}\n`);
    offset = Number(message.lastEventId) || offset;
  });
  stream.addEventListener("state", (event) => {
    current = { ...current, ...(JSON.parse((event as MessageEvent<string>).data) as Partial<Job>) };
    void show(current).catch(reportError);
  });
  stream.addEventListener("end", () => {
    stream.close();
    log.dataset.follow = "ended";
    api<Job>(`/jobs/${encodeURIComponent(id)}`).then(show, reportError);
  });
  stream.addEventListener("error", () => {
    if (stream.readyState === EventSource.CLOSED && log.dataset.follow === "ended") return;
    stream.close();
    log.dataset.follow = "poll";
    void readLog().then(() => (isActive(current) ? poll() : undefined), reportError);
  });
  return () => {
    stream.close();
    stopPolling?.();
  };
}
