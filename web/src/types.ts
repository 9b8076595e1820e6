// The API's bodies as the pages read them (see src/eoengine/platform/schemas.py and the contract).

export type GeoJSON = { type: "FeatureCollection"; features: Feature[] };
export interface Feature {
  type: "Feature";
  id?: number | string;
  geometry: { type: string; coordinates: unknown } | null;
  properties: Record<string, unknown> | null;
}

export interface User {
  id: number;
  username: string;
  is_admin: boolean;
  disabled?: boolean;
}

export interface ProjectSummary {
  id: number;
  slug: string;
  name: string;
  role: string | null;
  created_at: string;
}

export interface Artifact {
  id: number;
  kind: string;
  name: string;
  version: string;
  path: string;
  ref: string;
  meta: Record<string, unknown>;
  job_id: number | null;
  created_at: string;
}

export interface Progress {
  description?: string;
  completed?: number;
  total?: number | null;
}

export interface Job {
  id: number;
  project: string;
  kind: string;
  spec: Record<string, unknown>;
  state: "queued" | "running" | "succeeded" | "failed" | "cancelled" | string;
  cancel_requested?: boolean;
  progress: Progress | null;
  result: Record<string, unknown> | null;
  error: { error?: string; fix?: string } | null;
  created_by: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  attempts: number;
}

export interface Overview extends ProjectSummary {
  config: string;
  datasets: Artifact[];
  runs: Artifact[];
  models: Artifact[];
  maps: Artifact[];
  uploads?: Artifact[];
  jobs: Job[];
  footprints: GeoJSON;
}

export interface Member {
  username: string;
  role: string;
}

export interface Token {
  id: number;
  name: string;
  prefix: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  token?: string;
}

export interface ClassPixels {
  index: number;
  value: number | string | null;
  name: string;
  color: string;
  pixels: number;
}

export interface SplitBalance {
  split: string;
  chips: number;
  pixels: number;
  unlabelled: number;
  classes: ClassPixels[];
}

export interface ChannelSummary {
  name: string;
  mean: number | null;
  std: number | null;
  min: number | null;
  max: number | null;
  p2: number | null;
  p98: number | null;
  nodata_share: number;
}

export interface ManifestClass {
  index?: number;
  value?: number | string | null;
  name: string;
  color: string;
}

export interface DatasetDetail {
  name: string;
  version: string;
  path: string;
  manifest: { classes?: ManifestClass[]; channels?: string[]; patch_size?: number; [key: string]: unknown };
  class_balance: { dataset?: string; splits?: SplitBalance[] };
  band_stats: { split?: string; chips?: number; sampled?: number; channels?: ChannelSummary[] };
}

export interface SplitDistance {
  split: string;
  chips: number;
  min_distance_m: number | null;
  nearest: [number, number] | null;
  within: number;
  overlapping: number;
}

export interface Leakage {
  dataset: string;
  crs: string;
  threshold_m: number;
  train_chips: number;
  splits: SplitDistance[];
  verdict: string;
  summary: string;
}

export interface MetricPoint {
  step: number;
  value: number | null;
}

export interface ConfusionMatrix {
  source: string;
  split: string;
  head: string | null;
  classes: string[];
  matrix: number[][];
}

export interface RunDetail {
  run_id: string;
  name: string;
  status: string;
  started_at: string | null;
  ended_at: string | null;
  model: string | null;
  task: string | null;
  params: Record<string, string>;
  metrics: Record<string, number | null>;
  dataset_name: string | null;
  dataset_version: string | null;
  model_ref: string | null;
  registered: string[];
  tags?: Record<string, string>;
  history?: Record<string, MetricPoint[]>;
  best_epoch?: number | null;
  confusion_matrices?: ConfusionMatrix[];
}

export interface ImageryItem {
  id: string;
  collection: string;
  datetime: string | null;
  bbox: number[];
  bands: string[];
  recipes: string[];
  /** XYZ template relative to the API root (add ?recipe=…). */
  tiles: string;
}

export interface PackageSummary {
  model: string;
  task: string;
  bands: string[];
  channels: string[];
  classes: ManifestClass[];
  patch_size: number;
  timesteps: number;
  resolution: number | null;
  dataset: { name?: string; version?: string; path?: string };
  run_id: string | null;
  best_epoch: number | null;
  created: string | null;
  onnx: boolean;
}

export interface ModelVersion {
  name: string;
  version: string;
  ref: string;
  run_id: string | null;
  created_at: string | null;
  status: string;
  aliases: string[];
  tags: Record<string, string>;
  description: string | null;
  package: PackageSummary | null;
}

export interface RegisteredModel {
  name: string;
  description: string | null;
  created_at: string | null;
  updated_at: string | null;
  aliases: Record<string, string>;
  tags: Record<string, string>;
  versions: ModelVersion[];
}

export interface ModelDetail extends RegisteredModel {
  runs: Record<string, RunDetail>;
}

export interface LineageNode {
  type: string;
  id: string;
  event: number | null;
  at: string | null;
}

export interface Lineage {
  object: string;
  nodes: LineageNode[];
  edges: { source: string; target: string }[];
}

/** One band's value at a point (the pixel inspector's and the series'). */
export interface BandValue {
  /** Its common name first, then its name and position names (b1…). */
  names: string[];
  row: number | null;
  col: number | null;
  value: number | null;
}

/** `GET /projects/:slug/imagery/series`: every scene holding a point, oldest first. */
export interface PixelSeries {
  lon: number;
  lat: number;
  index: string;
  points: { item: string; collection: string; datetime: string | null; bands: BandValue[]; index: number | null }[];
}

/** The part of a STAC API search answer the pages read. */
export interface StacSearch {
  features: { id: string; collection?: string; properties: { datetime?: string | null } }[];
}
