// The hub's query API (hub/QUERY_API.md): typed fetches with the operator's bearer token.

export interface ModelRef {
  name: string;
  version: number;
  state: string;
  node_id?: string;
}

export interface NodeReport {
  node_id: string;
  reported_ms: number;
  received_ms: number;
  backlog_records: number;
  backlog_bytes: number;
  autonomy_days: number | null;
  autonomy_basis?: string | null;
  models: ModelRef[];
}

export type Health = 'ok' | 'warning' | 'silent' | 'never' | 'revoked';

// A storm a site's outbox summaries report (outbox/FORMAT.md section 12).
export interface Storm {
  kind: string;
  stream: string;
  rule: string;
  raised: number;
  kept: number;
  evicted: number;
  from_ms: number;
  to_ms: number;
  text: string;
}

export interface SiteRow {
  site_id: string;
  region: string;
  created_ms: number;
  revoked: boolean;
  last_contact_ms: number | null;
  newest_record_ms: number | null;
  records: number;
  backlog_records: number;
  backlog_bytes: number;
  autonomy_days_reported: number | null;
  autonomy_days_left: number | null;
  autonomy_basis?: string | null;
  models: ModelRef[];
  nodes: NodeReport[];
  health: Health;
  health_text: string;
  silent_for_ms: number | null;
  storms?: Storm[];
  outbox_account?: { as_of_ms: number; classes: Record<string, Record<string, number>> } | null;
  now_ms?: number;
}

export interface Fleet {
  now_ms: number;
  silent_after_ms: number;
  counts: Record<Health, number>;
  matched: number;
  next_after: string | null;
  sites: SiteRow[];
}

export interface SeriesBucket {
  start_ms: number;
  rows: number;
  anomalies: number;
  anomaly_rate: number | null;
  anomaly_records: number;
  hard_examples: number;
  drift_records: number;
  max_psi: number | null;
}

export interface DriftPoint {
  time_ms: number;
  version: number;
  feature: string;
  psi: number;
  level: number | null;
}

export interface Series {
  site_id: string;
  since_ms: number;
  until_ms: number;
  bucket_ms: number;
  truncated: boolean;
  models: { model: string; buckets: SeriesBucket[]; drift: DriftPoint[] }[];
}

export interface AggregateRow {
  site_id: string;
  model: string;
  version: number;
  minutes: number;
  batches: number;
  rows: number;
  anomalies: number;
  hard_examples: number;
  samples: number;
  drifts: number;
  nan_scores: number;
  first_ms: number;
  last_ms: number;
}

export interface Aggregates {
  since_ms: number;
  until_ms: number;
  truncated: boolean;
  aggregates: AggregateRow[];
}

export interface RecordRow {
  id: number;
  site_id: string;
  node_id: string;
  stream: string;
  seq: number;
  kind: string;
  created_ms: number;
  received_ms: number;
  payload?: unknown;
  payload_text?: string;
}

export interface Records {
  records: RecordRow[];
  next_after: number | null;
}

export interface AuditEntry {
  seq: number | null;
  time_ms: number | null;
  rseq: number | null;
  decision: string;
  reason: string;
  kind: string;
  site: string;
  node: string;
  stream: string;
  policy: string;
  unparsed?: string;
}

export interface Audit {
  site_id: string;
  entries: AuditEntry[];
  decisions: Record<string, number>;
  policies: { policy: string; entries: number }[];
}

export interface TrainingModel {
  model: string;
  feedback: number;
  labelled: number;
  hard_examples: number;
  sites: number;
  by_site: { site_id: string; feedback: number; labelled: number; hard_examples: number }[];
  registry: { version: number; state: string; created_ms: number }[];
}

export interface Training {
  truncated: boolean;
  models: TrainingModel[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'outpost.token';

// The operator's token, as typed into the sign-in form, from this tab's session storage. It
// travels only in the Authorization header: never in a URL, which the hub refuses (400
// token_in_url) because proxies, logs and browser history keep URLs.
export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string): void {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export async function get<T>(path: string, params: Record<string, string | number | undefined> = {}): Promise<T> {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '') query.set(k, String(v));
  }
  const q = query.toString();
  const headers: Record<string, string> = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const response = await fetch(`/api/v1/${path}${q ? `?${q}` : ''}`, { headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, body.reason ?? 'http_error', body.error ?? response.statusText);
  }
  return body as T;
}

// A POST of the API (the registry's and the rollouts' actions) with the operator's token; the
// answer's body, or ApiError with the refusal's reason.
export async function post<T>(path: string): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const response = await fetch(`/api/v1/${path}`, { method: 'POST', headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, body.reason ?? 'http_error', body.error ?? response.statusText);
  }
  return body as T;
}

// GET /api/v1/installs: what runs where, per site and node.
export interface InstalledModel {
  model: string;
  version: number;
}

export interface InstallsNode {
  node_id: string;
  source: string;
  reported_ms: number | null;
  bundle_version: number | null;
  serving: InstalledModel[];
  shadow: InstalledModel[];
  last_install: { event: string; bundle_version: number; reason: string | null; created_ms: number } | null;
}

export interface Installs {
  truncated: boolean;
  sites: { site_id: string; nodes: InstallsNode[] }[];
}

// GET /api/v1/rollouts and /api/v1/rollouts/{model}/{v} (hub/QUERY_API.md "Rollouts").
export interface RolloutSummary {
  model: string;
  model_version: number;
  bundle_version: number;
  state: string;
  reason: string | null;
  current_wave: number;
  waves: number;
  created_ms: number;
  updated_ms: number;
  sites: { total: number; offered: number; installed: number; failed: number; rolled_back: number };
}

export interface RolloutWave {
  index: number;
  name: string;
  sites: string[];
  opened_ms: number | null;
  installed_ms: number | null;
  passed_ms: number | null;
  gate: string;
  detail: string | null;
}

export interface RolloutSite {
  site_id: string;
  wave: number;
  status: string;
  reason: string | null;
  updated_ms: number | null;
  requests: number | null;
  error_rate: number | null;
  baseline_error_rate: number | null;
  accuracy: number | null;
  baseline_accuracy: number | null;
}

export interface Rollout {
  model: string;
  model_version: number;
  bundle_version: number;
  tenant: string;
  state: string;
  reason: string | null;
  current_wave: number;
  created_ms: number;
  updated_ms: number;
  plan: {
    canary: string[];
    percent: number[];
    soak_s: number;
    max_error_rate_increase: number;
    max_accuracy_drop: number;
    min_requests: number;
    min_labels: number;
  };
  waves: RolloutWave[];
  sites: RolloutSite[];
  history: { time_ms: number; action: string; operator: string | null; detail: string | null }[];
}
