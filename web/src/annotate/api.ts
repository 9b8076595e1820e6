// The annotation API as the annotate page calls it (the shared design of issue 13: /projects/{slug}/annotation/…).

import { ApiError, api, request } from "../api";
import type { Feature, GeoJSON, Job } from "../types";

export interface AnnotationClass { value: number; name: string; color: string }
export interface SetItem { id: string; datetime: string | null }
export interface AnnotationSet {
  id: number;
  name: string;
  kind: "classes" | "change";
  classes: AnnotationClass[];
  items: SetItem[];
  block_size: number;
  counts: Record<string, number>;
  created_at: string;
}
export interface Comment {
  id: number; author: string; text: string; lon: number | null; lat: number | null; resolved: boolean; created_at: string;
}
export interface Task {
  id: number; set_id: number; row: number; col: number; state: string; assignee: string | null;
  reviewer: string | null; version: number; geometry: Feature["geometry"]; complete_area: Feature["geometry"];
  items: SetItem[]; comments: Comment[];
}
export interface Pin { lon: number; lat: number; text: string }
/** A new set as POST /sets takes it (the server fills in classes, area, block size and background). */
export interface SetIn { name: string; items: string[]; kind: "classes" | "change"; block_size?: number }
/** A label snapshot: the accepted labels frozen under the hash of their content. */
export interface Snapshot { hash: string; path: string; features: number; tasks: number; created: string }
export const EXPORT_FORMATS = ["geojson", "gpkg", "raster", "stac"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** A stale write: the server's 409 with the feature as it is stored now. */
export class Stale extends Error {
  readonly current: Feature;

  constructor(problem: string, current: Feature) {
    super(problem);
    this.current = current;
  }
}

/** The calls of one project's annotation API. */
export class AnnotationApi {
  private readonly base: string;

  constructor(slug: string) {
    this.base = `/projects/${encodeURIComponent(slug)}/annotation`;
  }

  sets(): Promise<AnnotationSet[]> { return api(`${this.base}/sets`); }
  createSet(body: SetIn): Promise<AnnotationSet> { return api(`${this.base}/sets`, { json: body }); }
  set(id: number): Promise<AnnotationSet> { return api(`${this.base}/sets/${id}`); }
  /** The set's export as the server answered it (a file to download). */
  exportFile(setId: number, format: ExportFormat, state: "accepted" | "all"): Promise<Response> {
    return request(`${this.base}/sets/${setId}/export`, { query: { format, state } });
  }
  snapshots(setId: number): Promise<Snapshot[]> { return api(`${this.base}/sets/${setId}/snapshots`); }
  snapshot(setId: number): Promise<Snapshot> { return api(`${this.base}/sets/${setId}/snapshots`, { method: "POST" }); }
  build(setId: number, digest: string): Promise<Job> {
    return api(`${this.base}/sets/${setId}/snapshots/${encodeURIComponent(digest)}/build`, { method: "POST" });
  }
  tasks(setId: number): Promise<GeoJSON> { return api(`${this.base}/sets/${setId}/tasks`); }
  task(id: number): Promise<Task> { return api(`${this.base}/tasks/${id}`); }
  features(taskId: number): Promise<GeoJSON> { return api(`${this.base}/tasks/${taskId}/features`); }
  next(setId: number): Promise<Task> { return api(`${this.base}/sets/${setId}/next`, { method: "POST" }); }
  submit(taskId: number): Promise<Task> { return api(`${this.base}/tasks/${taskId}/submit`, { method: "POST" }); }
  review(taskId: number, decision: "accept" | "reject", comment: string, pins: Pin[]): Promise<Task> {
    return api(`${this.base}/tasks/${taskId}/review`, { json: { decision, comment: comment || undefined, pins } });
  }
  comment(taskId: number, text: string): Promise<Comment> {
    return api(`${this.base}/tasks/${taskId}/comments`, { json: { text } });
  }
  create(taskId: number, geometry: Feature["geometry"], properties: Record<string, unknown>): Promise<Feature> {
    return api(`${this.base}/tasks/${taskId}/features`, { json: { type: "Feature", geometry, properties } });
  }
  update(fid: number, version: number, geometry: Feature["geometry"], label: unknown): Promise<Feature> {
    return this.stale(() => api(`${this.base}/features/${fid}`, {
      method: "PUT", json: { type: "Feature", geometry, properties: { label, version } } }));
  }
  async remove(fid: number, version: number): Promise<void> {
    await this.stale(() => request(`${this.base}/features/${fid}`, { method: "DELETE", query: { version } }));
  }

  /** Run a write; a 409 carrying `current` becomes Stale (the page asks which version to keep). */
  private async stale<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && err.body && typeof err.body === "object" && "current" in err.body) {
        throw new Stale(err.message, (err.body as { current: Feature }).current);
      }
      throw err;
    }
  }
}
