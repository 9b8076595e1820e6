// Jobs as the pages show them: a table with live progress, and submitting a spec.

import { api } from "./api";
import { h } from "./dom";
import type { Artifact, Job, Overview } from "./types";
import { link, progressBar, shortRef, stateBadge, table, when } from "./ui";

/** Submit a job `{spec}` to a project; returns the job made. */
export function submitJob(slug: string, spec: Record<string, unknown>): Promise<Job> {
  return api<Job>(`/projects/${encodeURIComponent(slug)}/jobs`, { json: { spec } });
}

/** Links to what the job made: the artefacts indexed with its id. */
export function outputs(job: Job, overview: Overview | null): HTMLElement | null {
  if (!overview) return null;
  const base = `#/projects/${encodeURIComponent(job.project)}`;
  const mine = (list: Artifact[]): Artifact[] => list.filter((a) => a.job_id === job.id);
  const items = [
    ...mine(overview.datasets).map((d) => link(`${base}/datasets/${encodeURIComponent(`${d.name}@${d.version}`)}`,
      `Dataset ${shortRef(d.name, d.version)}`, { class: "output-dataset" })),
    ...mine(overview.runs).map((r) => link(`${base}/runs/${encodeURIComponent(r.ref || r.name)}`, `Run ${r.name || r.ref}`,
      { class: "output-run" })),
    ...mine(overview.models).map((m) => h("span", {}, `Model ${m.name} v${m.version} (${m.ref})`)),
    ...mine(overview.maps).map((m) => link(base, `Map ${m.name} (on the project's map)`, { class: "output-map" })),
  ];
  return items.length ? h("ul", { class: "outputs" }, ...items.map((item) => h("li", {}, item))) : null;
}

/** A table of jobs: id (a link to its page), kind, state, progress, who and when. */
export function jobsTable(jobs: Job[]): HTMLElement {
  const rows = jobs.map((job) => [
    link(`#/jobs/${job.id}`, `#${job.id}`, { "data-job": String(job.id) }), job.kind, stateBadge(job.state),
    progressBar(job.progress, job.state), job.created_by ?? "", when(job.created_at),
  ]);
  return table(["Job", "Kind", "State", "Progress", "By", "Submitted"], rows, "No jobs yet.");
}

/** Call `tick` every `ms` milliseconds (after each previous call settles) until the returned stop is called. */
export function every(ms: number, tick: () => Promise<boolean>): () => void {
  let stopped = false;
  let timer: number | undefined;
  const loop = (): void => {
    timer = window.setTimeout(() => {
      tick().then((again) => {
        if (again && !stopped) loop();
      }, () => {
        if (!stopped) loop();
      });
    }, ms);
  };
  loop();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}

/** Example options of each job kind (shown in the form's text area). */
export const JOB_EXAMPLES: Record<string, string> = {
  train: "{}",
  evaluate: '{"model": "RUN_ID", "split": "test"}',
  predict: '{"model": "RUN_ID", "scene": ["data/scene.tif"], "output": "out/maps/map.tif"}',
  export: '{"model": "RUN_ID"}',
  sweep: '{"trials": 4}',
  quantize: '{"model": "RUN_ID"}',
  grade: '{"models": ["RUN_ID"]}',
};

/** A spec from a kind and the JSON text of its other options. Throws SyntaxError/TypeError for bad text. */
export function specFrom(kind: string, options: string): Record<string, unknown> {
  const parsed: unknown = options.trim() ? JSON.parse(options) : {};
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new TypeError("the options must be a JSON object, e.g. {\"model\": \"RUN_ID\"}");
  }
  return { ...(parsed as Record<string, unknown>), kind };
}
