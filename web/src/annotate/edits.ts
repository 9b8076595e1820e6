// Every finished edit saved at once, in order, with the feature's version; undo/redo replays edits as writes;
// a stale write (409) asks the user whether to keep the other person's version or overwrite it with theirs.

import { reportError } from "../api";
import type { Feature } from "../types";
import { type AnnotationApi, Stale } from "./api";

export type Geometry = NonNullable<Feature["geometry"]>;

/** One drawn feature: its id in the drawing (null while not shown), on the server (null while deleted), version. */
export interface Shape {
  drawId: string | null;
  fid: number | null;
  version: number;
  label: unknown;
  geometry: Geometry;
}

/** What the edits need of the map: show a shape (added or changed) or hide it. */
export interface View {
  show(shape: Shape): void;
  hide(shape: Shape): void;
}

/** The user's answer to a stale write. */
export type Choice = "theirs" | "mine";

type Op =
  | { kind: "create"; shape: Shape }
  | { kind: "delete"; shape: Shape }
  | { kind: "update"; shape: Shape; before: [Geometry, unknown]; after: [Geometry, unknown] };

/** The shape of a stored Feature (version and label from its properties). */
export function shapeOf(feature: Feature): Shape {
  const p = feature.properties ?? {};
  return { drawId: null, fid: Number(feature.id), version: Number(p.version), label: p.label, geometry: feature.geometry as Geometry };
}

/** The edits of one task: saved in order, undone and redone as writes. */
export class Edits {
  private queue: Promise<void> = Promise.resolve();
  private pendingWrites = 0;
  private readonly done: Op[] = [];
  private readonly undone: Op[] = [];

  constructor(private readonly api: AnnotationApi, private readonly taskId: number, private readonly view: View,
    private readonly ask: (theirs: Feature) => Promise<Choice>, private readonly extra: () => Record<string, unknown>) {}

  /** Writes sent or waiting (the tests wait for 0). */
  get pending(): number { return this.pendingWrites; }

  /** A shape drawn: POST it. */
  created(shape: Shape): void {
    this.record({ kind: "create", shape });
    this.run(() => this.post(shape));
  }

  /** A shape's geometry or label changed: PUT it with the version last seen. */
  updated(shape: Shape, geometry: Geometry, label: unknown): void {
    const op: Op = { kind: "update", shape, before: [shape.geometry, shape.label], after: [geometry, label] };
    this.record(op);
    shape.geometry = geometry;
    shape.label = label;
    this.run(() => this.put(shape));
  }

  /** A shape deleted: DELETE it with its version. */
  deleted(shape: Shape): void {
    this.record({ kind: "delete", shape });
    this.view.hide(shape);
    this.run(() => this.del(shape));
  }

  /** Undo the last edit (its inverse is written); false when there is none. */
  undo(): boolean {
    const op = this.done.pop();
    if (!op) return false;
    this.undone.push(op);
    this.apply(op, true);
    return true;
  }

  /** Redo the last undone edit; false when there is none. */
  redo(): boolean {
    const op = this.undone.pop();
    if (!op) return false;
    this.done.push(op);
    this.apply(op, false);
    return true;
  }

  /** Resolves once every write so far has been answered. */
  settled(): Promise<void> { return this.queue; }

  private record(op: Op): void {
    this.done.push(op);
    this.undone.length = 0;
  }

  private apply(op: Op, inverse: boolean): void {
    const { shape } = op;
    const remove = op.kind === "create" ? inverse : op.kind === "delete" ? !inverse : false;
    if (op.kind === "update") {
      [shape.geometry, shape.label] = inverse ? op.before : op.after;
      this.view.show(shape);
      this.run(() => this.put(shape));
    } else if (remove) {
      this.view.hide(shape);
      this.run(() => this.del(shape));
    } else {
      this.view.show(shape);
      this.run(() => this.post(shape));
    }
  }

  private run(write: () => Promise<void>): void {
    this.pendingWrites++;
    this.queue = this.queue.then(write).catch(reportError).finally(() => { this.pendingWrites--; });
  }

  private async post(shape: Shape): Promise<void> {
    const saved = await this.api.create(this.taskId, shape.geometry, { ...this.extra(), label: shape.label });
    shape.fid = Number(saved.id);
    shape.version = Number(saved.properties?.version);
  }

  private async put(shape: Shape, version = shape.version): Promise<void> {
    if (shape.fid === null) return;
    try {
      const saved = await this.api.update(shape.fid, version, shape.geometry, shape.label);
      shape.version = Number(saved.properties?.version);
    } catch (err) {
      if (!(err instanceof Stale)) throw err;
      await this.conflict(shape, err.current, () => this.put(shape, Number(err.current.properties?.version)));
    }
  }

  private async del(shape: Shape, version = shape.version): Promise<void> {
    if (shape.fid === null) return;
    try {
      await this.api.remove(shape.fid, version);
      shape.fid = null;
    } catch (err) {
      if (!(err instanceof Stale)) throw err;
      await this.conflict(shape, err.current, () => this.del(shape, Number(err.current.properties?.version)));
    }
  }

  /** Ask which version wins: theirs is shown (and kept), mine is written again over the current version. */
  private async conflict(shape: Shape, theirs: Feature, overwrite: () => Promise<void>): Promise<void> {
    if ((await this.ask(theirs)) === "mine") return overwrite();
    Object.assign(shape, { ...shapeOf(theirs), drawId: shape.drawId });
    this.view.show(shape);
    return undefined;
  }
}
