// Jobs as the pages show them: a table with live progress, and submitting a spec.

import { api } from "./api";
import type { Job } from "./types";
import { link, progressBar, stateBadge, table, when } from "./ui";

/** Submit a job `{spec}` to a project; returns the job made. */
export function submitJob(slug: string, spec: Record<string, unknown>): Promise<Job> {
  return api<Job>(`/projects/${encodeURIComponent(slug)}/jobs`, { json: { spec } });
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
};

/** A spec from a kind and the JSON text of its other options. Throws SyntaxError/TypeError for bad text. */
export function specFrom(kind: string, options: string): Record<string, unknown> {
  const parsed: unknown = options.trim() ? JSON.parse(options) : {};
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new TypeError("the options must be a JSON object, e.g. {\"model\": \"RUN_ID\"}");
  }
  return { ...(parsed as Record<string, unknown>), kind };
}
