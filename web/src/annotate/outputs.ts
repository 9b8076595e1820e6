// The annotation page's "Labels out" panel: download the set's export (GeoJSON, GeoPackage, label COG, STAC zip),
// and for reviewers take a snapshot, list the snapshots, and build a dataset from one, following the build job.

import { api, reportError } from "../api";
import { clearErrors, h } from "../dom";
import { every, jobsTable, outputs } from "../jobs";
import type { Job, Overview } from "../types";
import { button, field, isActive, section, select, table, when } from "../ui";
import { type AnnotationApi, EXPORT_FORMATS, type ExportFormat, type Snapshot } from "./api";

const FORMAT_NAMES: Record<ExportFormat, string> = {
  geojson: "GeoJSON", gpkg: "GeoPackage", raster: "label COG (GeoTIFF)", stac: "STAC Collection (zip)",
};

/** Download a response's body under the name its Content-Disposition gives. */
async function download(response: Response, fallback: string): Promise<void> {
  const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") ?? "")?.[1] ?? fallback;
  const url = URL.createObjectURL(await response.blob());
  const a = h("a", { href: url, download: name, hidden: "" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function exportForm(calls: AnnotationApi, setId: number): HTMLElement {
  const format = select("format", EXPORT_FORMATS.map((f) => [f, FORMAT_NAMES[f]]), "geojson");
  format.id = "export-format";
  const state = select("state", [["accepted", "accepted tasks"], ["all", "every task"]], "accepted");
  state.id = "export-state";
  const go = button("Download", () => {
    clearErrors();
    calls.exportFile(setId, format.value as ExportFormat, state.value as "accepted" | "all")
      .then((r) => download(r, `labels.${format.value}`)).catch(reportError);
  }, { id: "export-download" });
  return h("div", { class: "export" }, field("Format", format), field("Labels of", state), go);
}

/** Follow a build job in `slot`: its row with live progress, then links to the job and what it made. */
function follow(slot: HTMLElement, first: Job): () => void {
  const show = async (job: Job): Promise<void> => {
    const made = job.state === "succeeded"
      ? outputs(job, await api<Overview>(`/projects/${encodeURIComponent(job.project)}`)) : null;
    slot.replaceChildren(jobsTable([job]), made ?? "",
      job.error ? h("p", { class: "job-error" }, h("strong", {}, job.error.error ?? "The build failed"), ` ${job.error.fix ?? ""}`) : "");
    slot.dataset.state = job.state;
  };
  void show(first).catch(reportError);
  return every(1000, async () => {
    const job = await api<Job>(`/jobs/${first.id}`);
    await show(job);
    return isActive(job);
  });
}

/** The snapshots table with a "Build dataset" button on each row (reviewers). */
function snapshotRows(calls: AnnotationApi, setId: number, snapshots: Snapshot[], jobSlot: HTMLElement,
  stops: (() => void)[]): HTMLElement {
  const rows = snapshots.map((s) => [h("code", { title: s.hash, "data-hash": s.hash }, s.hash.slice(0, 12)), String(s.features),
    String(s.tasks), when(s.created), button("Build dataset", () => {
      clearErrors();
      calls.build(setId, s.hash).then((job) => { stops.push(follow(jobSlot, job)); }, reportError);
    }, { class: "build-snapshot", "data-hash": s.hash })]);
  return table(["Snapshot", "Features", "Tasks", "Taken", ""], rows, "No snapshot yet: take one of the accepted labels.");
}

/** The panel: export for everyone, snapshots and builds for reviewers; the returned cleanup stops the job polls. */
export function labelsOut(calls: AnnotationApi, setId: number, reviewer: boolean): { panel: HTMLElement; stop: () => void } {
  const stops: (() => void)[] = [];
  if (!reviewer) return { panel: section("Labels out", "labels-out", exportForm(calls, setId)), stop: () => undefined };
  const list = h("div", { id: "snapshots" });
  const jobSlot = h("div", { id: "build-job" });
  const refresh = (): Promise<void> => calls.snapshots(setId).then((snaps) => {
    list.replaceChildren(snapshotRows(calls, setId, snaps, jobSlot, stops));
  });
  const take = button("Take snapshot", () => {
    clearErrors();
    calls.snapshot(setId).then(refresh).catch(reportError);
  }, { id: "take-snapshot" });
  refresh().catch(reportError);
  const panel = section("Labels out", "labels-out", exportForm(calls, setId), h("h3", {}, "Snapshots"), take, list, jobSlot);
  return { panel, stop: () => stops.forEach((s) => s()) };
}
