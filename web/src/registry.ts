// The model registry pages: #/models (the models whose retraining the hub runs) and
// #/models/<name>[?v=N] (every version with its state, its holdout metrics beside the
// champion's with the ROC curve and the reliability diagram, its lineage, the shadow results
// the sites reported, and the operator's approve / reject / retrain actions). Reads
// /api/v1/models (hub/QUERY_API.md "Model registry and retraining") and
// /api/v1/insights/shadow; every action is a POST of that API, which the hub records in its
// audit log.
import { ApiError, get, post, type RolloutSummary } from './api';
import { el, int, time } from './format';
import { unitPlot } from './plots';

interface ModelMetrics {
  version?: number;
  auc: number | null;
  accuracy: number | null;
  logloss: number | null;
  roc?: [number, number][] | null;
  calibration?: { p: number; rate: number; rows: number }[];
}

interface MetricsJson {
  decision?: string;
  metric?: string;
  margin?: number;
  reason?: string;
  holdout?: { rows: number; positives: number };
  challenger?: ModelMetrics;
  champion?: ModelMetrics | null;
}

interface LineageJson {
  parent_version?: number | null;
  training_set?: { sha256: string; rows: number; original_rows: number; edge_rows: number };
  holdout?: { sha256: string; rows: number };
  original?: { source: string; sha256: string; rows: number };
  records?: { site_id: string; node_id: string; stream: string; kind: string; first_seq: number; last_seq: number; count: number }[];
  join?: Record<string, number>;
}

export interface ModelVersion {
  version: number;
  state: string;
  created_ms: number;
  metrics: MetricsJson | null;
  lineage: LineageJson | null;
}

interface Versions {
  model: string;
  versions: ModelVersion[];
}

interface Configured {
  models: { model: string; auto_approve: boolean; shadow: boolean; min_new_labels: number; every_s: number }[];
}

interface RetrainStatus {
  running: boolean;
  runs: number;
  last_outcome: string | null;
  last_version: number | null;
  labels_now: number | null;
  labels_at_last_run: number;
  min_new_labels: number;
}

export interface ShadowResult {
  site_id: string;
  node_id: string;
  model: string;
  created_ms: number;
  event: string;
  version: number | null;
  shadow_version: number | null;
  champion_version: number | null;
  compared: number | null;
  agreed: number | null;
  agreement: number | null;
  labelled: number | null;
  champion_accuracy: number | null;
  shadow_accuracy: number | null;
  persisted: boolean | null;
}

interface Shadow {
  truncated: boolean;
  results: ShadowResult[];
}

const fixed = (v: number | null | undefined, digits = 4) =>
  v === null || v === undefined ? '—' : v.toFixed(digits);

function cell(key: string, text: string): HTMLTableCellElement {
  return el('td', { 'data-k': key }, text);
}

function table(id: string, headings: string[], body: HTMLElement): HTMLTableElement {
  return el('table', { class: 'grid', id }, el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', {}, h)))), body);
}

// ----- the list of models --------------------------------------------------------------------

export async function modelsPage(app: HTMLElement): Promise<void> {
  let configured: Configured;
  try {
    configured = await get<Configured>('models');
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    app.replaceChildren(el('h1', {}, 'Models'), el('p', { class: 'hint', id: 'no-registry' },
      'This hub runs no retraining (its config has no retrain: list), so it keeps no registry to act on.'));
    return;
  }
  const rows = el('tbody');
  for (const m of configured.models) {
    rows.append(el('tr', { 'data-model': m.model },
      el('td', { 'data-k': 'model' }, el('a', { href: `#/models/${encodeURIComponent(m.model)}`, class: 'site-link' }, m.model)),
      cell('auto_approve', m.auto_approve ? 'yes' : 'no'), cell('shadow', m.shadow ? 'yes' : 'no'),
      cell('min_new_labels', int(m.min_new_labels)), cell('every_s', m.every_s ? `${Math.round(m.every_s / 3600)} h` : '—')));
  }
  app.replaceChildren(el('h1', {}, 'Models'),
    el('p', { class: 'hint' }, 'The models whose retraining this hub runs; follow one for its registry.'),
    table('models-table', ['Model', 'Auto-approve', 'Ships as shadow', 'Labels to retrain', 'Schedule'], rows));
}

// ----- one model -----------------------------------------------------------------------------

// The champion a version was compared with on its holdout, from its metrics.json.
// A bundled version with a rollout links to its page (#/rollouts/<model>/<v>).
function metricsRow(v: ModelVersion, enc: string, selected: boolean, rollout: RolloutSummary | undefined): HTMLTableRowElement {
  const m = v.metrics;
  const ch = m?.challenger;
  const champ = m?.champion ?? null;
  const actions = el('td', { 'data-k': 'actions' });
  if (v.state === 'candidate' || v.state === 'approved') {
    actions.append(
      el('button', { type: 'button', class: 'action approve', 'data-action': 'approve', 'data-version': String(v.version) },
        'Approve and release'),
      ' ',
      el('button', { type: 'button', class: 'action reject', 'data-action': 'reject', 'data-version': String(v.version) }, 'Reject'));
  }
  if (rollout) {
    actions.append(el('a', { href: `#/rollouts/${enc}/${v.version}`, class: 'rollout-link', 'data-rollout': rollout.state },
      `rollout: ${rollout.state}`));
  }
  return el('tr', { 'data-version': String(v.version), class: `state-${v.state}${selected ? ' selected' : ''}` },
    el('td', { 'data-k': 'version' }, el('a', { href: `#/models/${enc}?v=${v.version}` }, `v${v.version}`)),
    cell('state', v.state), cell('created_ms', time(v.created_ms)), cell('decision', m?.decision ?? '—'),
    cell('auc', fixed(ch?.auc)), cell('accuracy', fixed(ch?.accuracy)), cell('logloss', fixed(ch?.logloss)),
    cell('champion_version', champ?.version !== undefined ? `v${champ.version}` : '—'),
    cell('champion_auc', fixed(champ?.auc)), cell('champion_accuracy', fixed(champ?.accuracy)),
    cell('champion_logloss', fixed(champ?.logloss)),
    cell('holdout_rows', m?.holdout ? int(m.holdout.rows) : '—'),
    actions);
}

function comparison(v: ModelVersion): HTMLElement {
  const m = v.metrics;
  if (!m || !m.challenger) return el('p', { class: 'hint', id: 'no-metrics' }, `v${v.version} has no holdout metrics in the registry.`);
  const ch = m.challenger;
  const champ = m.champion ?? null;
  const rows = el('tbody');
  const better = (key: 'auc' | 'accuracy' | 'logloss') => {
    const a = ch[key];
    const b = champ?.[key];
    if (a === null || b === null || b === undefined) return '';
    const diff = a - b;
    return key === 'logloss' ? (diff < 0 ? 'better' : diff > 0 ? 'worse' : 'same') : (diff > 0 ? 'better' : diff < 0 ? 'worse' : 'same');
  };
  for (const [key, label] of [['auc', 'AUC'], ['accuracy', 'Accuracy'], ['logloss', 'Log loss']] as const) {
    rows.append(el('tr', { 'data-metric': key },
      el('td', {}, label + (m.metric === key ? ' (decides)' : '')),
      cell('challenger', fixed(ch[key])), cell('champion', fixed(champ?.[key])),
      cell('delta', ch[key] !== null && champ && champ[key] !== null ? (ch[key]! - champ[key]!).toFixed(4) : '—'),
      cell('verdict', better(key))));
  }
  const curves = (pick: (x: ModelMetrics) => [number, number][]) => [
    { label: `v${v.version}`, color: '#1c7ed6', points: pick(ch) },
    ...(champ ? [{ label: `v${champ.version} (champion)`, color: '#d9480f', points: pick(champ), dash: true }] : []),
  ];
  const roc = curves((x) => x.roc ?? []);
  const calibration = curves((x) => (x.calibration ?? []).map((b) => [b.p, b.rate] as [number, number]));
  const plots = el('div', { class: 'plots' });
  if (roc.some((c) => c.points.length > 0)) {
    plots.append(unitPlot('roc-plot', 'ROC curve (holdout)', 'false positive rate', 'true positive rate', roc));
  }
  if (calibration.some((c) => c.points.length > 0)) {
    plots.append(unitPlot('calibration-plot', 'Calibration (holdout)', 'predicted probability', 'observed positive rate', calibration, true));
  }
  return el('div', { id: 'comparison' },
    el('p', { 'data-k': 'reason' }, `Decision: ${m.decision ?? '—'} — ${m.reason ?? ''}`),
    el('p', { class: 'hint', 'data-k': 'holdout' },
      m.holdout ? `Both scored on the same holdout: ${int(m.holdout.rows)} labelled rows, ${int(m.holdout.positives)} positives.` : ''),
    table('metrics-table', ['Metric', `v${v.version}`, champ ? `champion v${champ.version}` : 'champion (none)', 'Δ', ''], rows),
    plots.childElementCount > 0 ? plots
      : el('p', { class: 'hint', id: 'no-curves' }, 'This version\'s metrics.json records no ROC or calibration points (trained before they were written).'));
}

function lineageView(v: ModelVersion): HTMLElement {
  const l = v.lineage;
  if (!l || !l.training_set) return el('p', { class: 'hint', id: 'no-lineage' }, `v${v.version} has no lineage in the registry.`);
  const facts = el('dl', { class: 'facts', id: 'lineage-facts' });
  const fact = (label: string, key: string, text: string) => facts.append(el('dt', {}, label), el('dd', { 'data-k': key }, text));
  fact('Parent version', 'parent_version', l.parent_version ? `v${l.parent_version}` : '—');
  fact('Training set digest', 'training_set_sha256', l.training_set.sha256);
  fact('Training rows', 'training_rows', `${int(l.training_set.rows)} (${int(l.training_set.original_rows)} original, ${int(l.training_set.edge_rows)} from sites)`);
  fact('Holdout digest', 'holdout_sha256', l.holdout ? `${l.holdout.sha256} (${int(l.holdout.rows)} rows)` : '—');
  fact('Original set', 'original', l.original ? `${l.original.source} (${int(l.original.rows)} rows)` : '—');
  fact('Labels', 'labelled', l.join ? `${int(l.join.labelled ?? 0)} labelled of ${int(l.join.feedback ?? 0)} feedback records` : '—');
  const sites = new Set((l.records ?? []).map((r) => r.site_id));
  fact('Sites', 'sites', sites.size ? [...sites].sort().join(', ') : '—');
  const rows = el('tbody');
  for (const r of l.records ?? []) {
    rows.append(el('tr', { 'data-site': r.site_id },
      cell('site_id', r.site_id), cell('node_id', r.node_id), cell('kind', r.kind),
      cell('seqs', `${r.first_seq}–${r.last_seq}`), cell('count', int(r.count))));
  }
  return el('div', { id: 'lineage' }, facts,
    table('lineage-records', ['Site', 'Node', 'Kind', 'Seqs', 'Records'], rows));
}

function shadowView(results: ShadowResult[], truncated: boolean): HTMLElement {
  const rows = el('tbody');
  for (const r of results) {
    rows.append(el('tr', { 'data-site': r.site_id, class: `shadow-${r.event}` },
      cell('site_id', r.site_id), cell('node_id', r.node_id), cell('created_ms', time(r.created_ms)),
      cell('event', r.event === 'shadow_promoted' ? 'promoted' : 'dropped'),
      cell('shadow_version', r.shadow_version === null ? '—' : `v${r.shadow_version}`),
      cell('champion_version', r.champion_version === null ? '—' : `v${r.champion_version}`),
      cell('compared', r.compared === null ? '—' : int(r.compared)),
      cell('agreement', r.agreement === null ? '—' : `${(r.agreement * 100).toFixed(1)} %`),
      cell('labelled', r.labelled === null ? '—' : int(r.labelled)),
      cell('champion_accuracy', fixed(r.champion_accuracy, 3)), cell('shadow_accuracy', fixed(r.shadow_accuracy, 3))));
  }
  return el('div', { id: 'shadow' },
    truncated ? el('p', { class: 'error' }, 'More shadow results than one request reads: the newest are shown.') : '',
    results.length === 0 ? el('p', { class: 'hint', id: 'no-shadow' }, 'No site has reported a shadow result for this model.') : '',
    table('shadow-table', ['Site', 'Node', 'Reported', 'Outcome', 'Shadow', 'Champion', 'Compared', 'Agreement', 'Labelled',
      'Champion acc.', 'Shadow acc.'], rows));
}

// The model's rollouts, newest first; none from a hub without the rollouts API (404).
async function modelRollouts(name: string): Promise<RolloutSummary[]> {
  try {
    return (await get<{ rollouts: RolloutSummary[] }>('rollouts', { model: name })).rollouts;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return [];
    throw e;
  }
}

export async function modelPage(app: HTMLElement, name: string, params: URLSearchParams,
  rerender: () => Promise<void>): Promise<void> {
  const enc = encodeURIComponent(name);
  const [versions, status, shadow, rollouts] = await Promise.all([
    get<Versions>(`models/${enc}/versions`),
    get<RetrainStatus>(`models/${enc}/retrain`),
    get<Shadow>('insights/shadow', { model: name }),
    modelRollouts(name),
  ]);
  const wanted = Number(params.get('v'));
  const selected = versions.versions.find((v) => v.version === wanted) ??
    versions.versions.find((v) => v.state === 'candidate') ?? versions.versions[0];

  const rows = el('tbody');
  for (const v of versions.versions) {
    rows.append(metricsRow(v, enc, v.version === selected?.version,
      v.state === 'bundled' ? rollouts.find((r) => r.model_version === v.version) : undefined));
  }
  const result = el('p', { id: 'action-result', 'aria-live': 'polite' });
  const retrain = el('button', { type: 'button', id: 'retrain', class: 'action' }, 'Retrain now');
  const labels = status.labels_now === null ? '—' : int(status.labels_now - status.labels_at_last_run);
  const trigger = status.min_new_labels > 0 ? `${int(status.min_new_labels)} start one` : 'no label trigger';

  app.replaceChildren(
    el('p', { class: 'crumbs' }, el('a', { href: '#/models' }, 'Models'), ` / ${name}`),
    el('h1', {}, `Model ${name}`),
    el('p', { id: 'retrain-status' },
      status.running ? 'A retraining job runs now. ' : '',
      `${int(status.runs)} jobs so far; ${labels} new labels since the last (${trigger}). `,
      retrain),
    result,
    el('h2', {}, 'Versions'),
    el('p', { class: 'hint' }, 'Each version\'s holdout metrics beside those of the champion it was compared with, on the same holdout. Approving builds and signs the release bundle for the configured sites; both actions go to the hub\'s audit log.'),
    table('versions-table', ['Version', 'State', 'Created', 'Decision', 'AUC', 'Accuracy', 'Log loss',
      'Champion', 'Champion AUC', 'Champion acc.', 'Champion log loss', 'Holdout rows', ''], rows),
    ...(selected ? [
      el('h2', { id: 'selected-version', 'data-version': String(selected.version) }, `v${selected.version} (${selected.state}) against its champion`),
      comparison(selected),
      el('h2', {}, `Lineage of v${selected.version}`),
      lineageView(selected),
    ] : [el('p', { class: 'hint' }, 'No version registered yet.')]),
    el('h2', {}, 'Shadow results reported by sites'),
    shadowView(shadow.results, shadow.truncated),
  );

  const act = async (button: HTMLButtonElement, path: string, done: (body: Record<string, unknown>) => string) => {
    for (const b of app.querySelectorAll<HTMLButtonElement>('button.action')) b.disabled = true;
    result.className = '';
    result.textContent = 'Working…';
    try {
      const body = await post<Record<string, unknown>>(path);
      await rerender();
      const again = document.getElementById('action-result');
      if (again) {
        again.textContent = done(body);
        again.className = 'ok';
      }
    } catch (e) {
      result.className = 'error';
      result.textContent = e instanceof ApiError ? `${e.message} (${e.reason})` : String(e);
      for (const b of app.querySelectorAll<HTMLButtonElement>('button.action')) b.disabled = false;
    }
    button.blur();
  };
  for (const button of app.querySelectorAll<HTMLButtonElement>('button[data-action]')) {
    button.addEventListener('click', () => {
      const v = button.dataset.version;
      if (button.dataset.action === 'approve') {
        void act(button, `models/${enc}/versions/${v}/approve`,
          (b) => `v${v} approved and released: bundle ${String(b.bundle)}${b.champion_version ? `, beside champion v${b.champion_version}${b.shadow ? ' as its shadow' : ''}` : ''}.`);
      } else {
        void act(button, `models/${enc}/versions/${v}/reject`, () => `v${v} rejected.`);
      }
    });
  }
  retrain.addEventListener('click', () => void act(retrain, `models/${enc}/retrain`, () => 'Retraining started.'));
}
