// The hub's dashboard: fleet table, site page (charts of anomaly rate and drift, aggregates,
// records, audit trail), records browser, training data. Hash routes:
//   #/                 fleet
//   #/site/<id>        one site
//   #/records?site=..  records browser with filters (site, kind, model, since, until)
//   #/training         training data per model
//   #/models[/<name>]  the model registry (registry.ts)
//   #/insights         insights across sites (insights.ts)
//   #/rollouts[/<model>/<v>]  rollouts and the fleet's model-version map (rollouts.ts)
import './style.css';
import {
  ApiError,
  get,
  setToken,
  type Aggregates,
  type Audit,
  type Fleet,
  type Records,
  type Series,
  type SiteRow,
  type Training,
} from './api';
import { anomalyChart, driftChart } from './charts';
import { insightsPage } from './insights';
import { modelPage, modelsPage } from './registry';
import { rolloutPage, rolloutsPage } from './rollouts';
import { bytes, days, el, int, rate, time } from './format';

const app = document.getElementById('app') as HTMLElement;
const asof = document.getElementById('asof') as HTMLElement;
const KINDS = ['anomaly', 'drift', 'feedback', 'hard_example', 'aggregate', 'sample', 'event'];
const DAY = 86_400_000;
// The newest audit decisions listed on a site page (the counts above cover them all).
const AUDIT_ROWS = 50;

function cell(key: string, text: string, extra: Record<string, string> = {}): HTMLTableCellElement {
  return el('td', { 'data-k': key, ...extra }, text);
}

function healthBadge(site: SiteRow): HTMLElement {
  return el('span', { class: `badge health-${site.health}`, 'data-k': 'health' }, site.health);
}

function modelsText(site: SiteRow): string {
  const seen = new Set<string>();
  for (const m of site.models) seen.add(`${m.name} v${m.version}`);
  return [...seen].sort().join(', ') || '—';
}

// Days of autonomy left, or why there is no estimate ("not enough history", "draining").
function autonomyText(left: number | null, basis: string | null | undefined): string {
  if (left !== null && left !== undefined) return days(left);
  return basis && basis !== 'estimated' ? basis.replaceAll('_', ' ') : days(null);
}

// "anomaly storm: 15.4 M raised, 1,008 kept, 06:10–08:40; ...", or "—".
function stormsText(site: SiteRow): string {
  return (site.storms ?? []).map((s) => s.text).join('; ') || '—';
}

function showError(error: unknown): void {
  app.replaceChildren();
  if (error instanceof ApiError && error.status === 401) {
    const input = el('input', { type: 'password', id: 'token', placeholder: 'operator token' });
    const form = el('form', { class: 'login' }, el('p', {}, 'An operator token is needed.'), input,
      el('button', { type: 'submit' }, 'Sign in'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      setToken(input.value);
      void route();
    });
    app.append(form);
    return;
  }
  const text = error instanceof ApiError ? `${error.message} (${error.reason})` : String(error);
  app.append(el('p', { class: 'error', 'data-k': 'error' }, text));
}

// ----- fleet -----------------------------------------------------------------------------

// Sites per page of the fleet table (the API answers at most 1,000).
const FLEET_PAGE = 100;
const HEALTHS = ['ok', 'warning', 'silent', 'never', 'revoked'] as const;

// The fleet route's hash for these filters and cursor (#/?health=..&prefix=..&after=..).
function fleetHash(filters: Record<string, string>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
  return `#/${q.toString() ? `?${q}` : ''}`;
}

// The fleet table, a page at a time (GET /api/v1/sites?limit=&after=&health=&prefix=): the
// counts are the whole fleet's and filter the table when clicked; "Next" follows the cursor.
async function fleetPage(params: URLSearchParams): Promise<void> {
  const limit = Math.min(1000, Math.max(1, Number(params.get('limit')) || FLEET_PAGE));
  const filters: Record<string, string> = {
    health: params.get('health') ?? '',
    prefix: params.get('prefix') ?? '',
    limit: params.has('limit') ? String(limit) : '',
  };
  const after = params.get('after') ?? '';
  const fleet = await get<Fleet>('sites', { ...filters, limit: String(limit), after: after || undefined });
  asof.textContent = `as of ${time(fleet.now_ms)}`;
  const counts = el('div', { class: 'counts' });
  for (const h of HEALTHS) {
    const selected = filters.health === h;
    counts.append(el('a', {
      class: `count health-${h}${selected ? ' selected' : ''}`, 'data-filter': h,
      href: fleetHash({ ...filters, health: selected ? '' : h }),
    }, el('b', { 'data-count': h }, String(fleet.counts[h])), ` ${h}`));
  }
  const search = el('input', { type: 'search', id: 'fleet-prefix', name: 'prefix', placeholder: 'site id starts with',
    value: filters.prefix });
  const form = el('form', { class: 'filters', id: 'fleet-filters' }, search, el('button', { type: 'submit' }, 'Find'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    window.location.hash = fleetHash({ ...filters, prefix: search.value.trim() });
  });
  const head = el('tr', {}, ...['Site', 'Region', 'Health', 'Status', 'Last contact', 'Newest record',
    'Backlog', 'Backlog size', 'Autonomy left', 'Models', 'Records', 'Storms'].map((h) => el('th', {}, h)));
  const body = el('tbody');
  for (const site of fleet.sites) {
    const link = el('a', { href: `#/site/${encodeURIComponent(site.site_id)}`, class: 'site-link' }, site.site_id);
    body.append(el('tr', { 'data-site': site.site_id, class: `row-${site.health}` },
      el('td', { 'data-k': 'site_id' }, link),
      cell('region', site.region),
      el('td', {}, healthBadge(site)),
      cell('health_text', site.health_text),
      cell('last_contact_ms', time(site.last_contact_ms), { 'data-ms': String(site.last_contact_ms ?? '') }),
      cell('newest_record_ms', time(site.newest_record_ms), { 'data-ms': String(site.newest_record_ms ?? '') }),
      cell('backlog_records', int(site.backlog_records)),
      cell('backlog_bytes', bytes(site.backlog_bytes)),
      cell('autonomy_days_left', autonomyText(site.autonomy_days_left, site.autonomy_basis)),
      cell('models', modelsText(site)),
      cell('records', int(site.records)),
      cell('storms', stormsText(site)),
    ));
  }
  const filtered = filters.health || filters.prefix;
  // data-hash: the route this page was drawn for (the browser tests wait for it).
  const pager = el('p', { class: 'pager', id: 'fleet-pager', 'data-matched': String(fleet.matched),
    'data-hash': window.location.hash },
    `${int(fleet.sites.length)} of ${int(fleet.matched)} ${filtered ? 'matching ' : ''}sites shown` +
      (after ? ` (after ${after})` : ''));
  if (after) pager.append(' ', el('a', { id: 'fleet-first', href: fleetHash(filters) }, 'First page'));
  if (fleet.next_after !== null) {
    pager.append(' ', el('a', { id: 'fleet-next', href: fleetHash({ ...filters, after: fleet.next_after }) }, 'Next page'));
  }
  app.replaceChildren(
    el('h1', {}, 'Fleet'),
    el('p', { class: 'hint' }, `A site not heard from for ${Math.round(fleet.silent_after_ms / 3_600_000)} h is silent.`),
    counts,
    form,
    pager,
    el('table', { id: 'fleet-table', class: 'grid' }, el('thead', {}, head), body),
  );
}

// ----- site --------------------------------------------------------------------------------

const RANGES: Record<string, { span: number; bucket: number; label: string }> = {
  '1d': { span: DAY, bucket: 3_600_000, label: 'last 24 hours, hourly' },
  '7d': { span: 7 * DAY, bucket: 3_600_000, label: 'last 7 days, hourly' },
  '30d': { span: 30 * DAY, bucket: 6 * 3_600_000, label: 'last 30 days, 6-hourly' },
};

async function sitePage(siteId: string, params: URLSearchParams): Promise<void> {
  const site = await get<SiteRow>(`sites/${encodeURIComponent(siteId)}`);
  const now = site.now_ms ?? Date.now();
  asof.textContent = `as of ${time(now)}`;
  const rangeKey = RANGES[params.get('range') ?? ''] ? (params.get('range') as string) : '7d';
  const range = RANGES[rangeKey];
  const seriesQuery = { since: now + 1 - range.span, until: now + 1, bucket: range.bucket };
  const [series, aggregates, audit] = await Promise.all([
    get<Series>(`sites/${encodeURIComponent(siteId)}/series`, seriesQuery),
    get<Aggregates>('aggregates', { site: siteId }),
    get<Audit>(`sites/${encodeURIComponent(siteId)}/audit`, { limit: 1000 }),
  ]);

  const facts = el('dl', { class: 'facts', id: 'site-facts' });
  const fact = (label: string, key: string, text: string) =>
    facts.append(el('dt', {}, label), el('dd', { 'data-k': key }, text));
  fact('Region', 'region', site.region);
  fact('Status', 'health_text', site.health_text);
  fact('Last contact', 'last_contact_ms', time(site.last_contact_ms));
  fact('Newest record', 'newest_record_ms', time(site.newest_record_ms));
  fact('Backlog', 'backlog_records', int(site.backlog_records));
  fact('Backlog size', 'backlog_bytes', bytes(site.backlog_bytes));
  fact('Autonomy left', 'autonomy_days_left', autonomyText(site.autonomy_days_left, site.autonomy_basis));
  fact('Records received', 'records', int(site.records));
  fact('Models', 'models', modelsText(site));
  fact('Storms', 'storms', stormsText(site));

  const nodes = el('tbody');
  for (const n of site.nodes) {
    nodes.append(el('tr', { 'data-node': n.node_id },
      cell('node_id', n.node_id), cell('received_ms', time(n.received_ms)),
      cell('backlog_records', int(n.backlog_records)), cell('backlog_bytes', bytes(n.backlog_bytes)),
      cell('autonomy_days', autonomyText(n.autonomy_days, n.autonomy_basis)),
      cell('models', n.models.map((m) => `${m.name} v${m.version} (${m.state})`).join(', ') || '—')));
  }

  const rangeLinks = el('div', { class: 'ranges' });
  for (const [key, r] of Object.entries(RANGES)) {
    rangeLinks.append(el('a', {
      href: `#/site/${encodeURIComponent(siteId)}?range=${key}`,
      class: key === rangeKey ? 'active' : '', 'data-range': key,
    }, r.label));
  }

  // Totals of the charted range, per model: what the charts add up to.
  const totals = el('tbody');
  for (const m of series.models) {
    const sum = (f: (b: (typeof m.buckets)[number]) => number) => m.buckets.reduce((a, b) => a + f(b), 0);
    const rows = sum((b) => b.rows);
    const anomalies = sum((b) => b.anomalies);
    const psis = m.drift.map((d) => d.psi);
    totals.append(el('tr', { 'data-model': m.model },
      cell('model', m.model), cell('rows', int(rows)), cell('anomalies', int(anomalies)),
      cell('anomaly_rate', rate(rows > 0 ? anomalies / rows : null)),
      cell('anomaly_records', int(sum((b) => b.anomaly_records))),
      cell('hard_examples', int(sum((b) => b.hard_examples))),
      cell('drift_records', int(sum((b) => b.drift_records))),
      cell('max_psi', psis.length ? Math.max(...psis).toFixed(3) : '—')));
  }

  const driftRows = el('tbody');
  for (const m of series.models) {
    for (const d of m.drift) {
      driftRows.append(el('tr', {}, cell('time_ms', time(d.time_ms)), cell('model', `${m.model} v${d.version}`),
        cell('feature', d.feature), cell('psi', d.psi.toFixed(3)), cell('level', d.level === null ? '—' : String(d.level))));
    }
  }

  const aggRows = el('tbody');
  for (const a of aggregates.aggregates) {
    aggRows.append(el('tr', { 'data-agg': `${a.model}:${a.version}` },
      cell('model', a.model), cell('version', String(a.version)), cell('minutes', int(a.minutes)),
      cell('batches', int(a.batches)), cell('rows', int(a.rows)), cell('anomalies', int(a.anomalies)),
      cell('hard_examples', int(a.hard_examples)), cell('drifts', int(a.drifts)),
      cell('nan_scores', int(a.nan_scores))));
  }

  const anomalyBox = el('div', { class: 'chart', id: 'chart-anomaly' });
  const driftBox = el('div', { class: 'chart', id: 'chart-drift' });
  const recordsBox = el('div', { id: 'site-records' });

  app.replaceChildren(
    el('p', { class: 'crumbs' }, el('a', { href: '#/' }, 'Fleet'), ` / ${siteId}`),
    el('h1', {}, siteId, ' ', healthBadge(site)),
    facts,
    el('h2', {}, 'Nodes'),
    el('table', { class: 'grid', id: 'nodes-table' }, el('thead', {}, el('tr', {},
      ...['Node', 'Reported', 'Backlog', 'Backlog size', 'Autonomy', 'Models'].map((h) => el('th', {}, h)))), nodes),
    el('h2', {}, 'Anomalies and drift'),
    rangeLinks,
    series.truncated ? el('p', { class: 'error' }, 'More records than one request reads: counts are partial.') : '',
    series.models.length === 0 ? el('p', { class: 'hint', id: 'no-series' }, 'No records in this range.') : '',
    anomalyBox,
    driftBox,
    el('table', {
      class: 'grid', id: 'series-totals', 'data-since': String(seriesQuery.since),
      'data-until': String(seriesQuery.until), 'data-bucket': String(seriesQuery.bucket),
    }, el('thead', {}, el('tr', {},
      ...['Model', 'Rows', 'Anomalies', 'Rate', 'Anomaly records', 'Hard examples', 'Drift records', 'Max PSI']
        .map((h) => el('th', {}, h)))), totals),
    el('h3', {}, 'Drift records'),
    el('table', { class: 'grid', id: 'drift-table' }, el('thead', {}, el('tr', {},
      ...['Time', 'Model', 'Feature', 'PSI', 'Level'].map((h) => el('th', {}, h)))), driftRows),
    el('h2', {}, 'Aggregates (all time)'),
    el('table', { class: 'grid', id: 'aggregates-table' }, el('thead', {}, el('tr', {},
      ...['Model', 'Version', 'Minutes', 'Batches', 'Rows', 'Anomalies', 'Hard examples', 'Drifts', 'NaN scores']
        .map((h) => el('th', {}, h)))), aggRows),
    el('h2', {}, 'Records'),
    recordsBox,
    el('h2', {}, 'Audit trail'),
    auditView(audit),
  );
  anomalyChart(anomalyBox, series);
  driftChart(driftBox, series);
  await recordsBrowser(recordsBox, { site: siteId }, true, series.models.map((m) => m.model));
}

function auditView(audit: Audit): HTMLElement {
  const decisions = el('div', { class: 'counts', id: 'audit-decisions' });
  for (const [d, n] of Object.entries(audit.decisions)) {
    decisions.append(el('span', { class: `count decision-${d}` }, el('b', { 'data-decision': d }, String(n)), ` ${d}`));
  }
  const policies = el('ul', { id: 'audit-policies' });
  for (const p of audit.policies) {
    policies.append(el('li', {}, el('code', {}, p.policy || '(none)'), ` — ${int(p.entries)} decisions`));
  }
  const rows = el('tbody');
  // Newest first for reading; the API gives the chain oldest first.
  for (const e of [...audit.entries].reverse().slice(0, AUDIT_ROWS)) {
    if (e.unparsed !== undefined) {
      rows.append(el('tr', {}, el('td', { colspan: '8' }, e.unparsed)));
      continue;
    }
    rows.append(el('tr', { class: `decision-${e.decision}` },
      cell('seq', String(e.seq)), cell('time_ms', time(e.time_ms)), cell('decision', e.decision),
      cell('reason', e.reason || '—'), cell('kind', e.kind), cell('record', `${e.node}/${e.stream}#${e.rseq}`),
      cell('policy', e.policy.slice(0, 19))));
  }
  return el('div', { id: 'audit' },
    decisions,
    el('p', {}, `${int(audit.entries.length)} decisions, under these policies (newest ${AUDIT_ROWS} below):`),
    policies,
    el('table', { class: 'grid', id: 'audit-table' }, el('thead', {}, el('tr', {},
      ...['Seq', 'Time', 'Decision', 'Reason', 'Kind', 'Record', 'Policy'].map((h) => el('th', {}, h)))), rows));
}

// ----- records -------------------------------------------------------------------------------

function summary(r: Records['records'][number]): string {
  const p = r.payload as Record<string, unknown> | undefined;
  if (!p || typeof p !== 'object') return r.payload_text ?? '';
  const num = (k: string) => (typeof p[k] === 'number' ? String(p[k]) : '—');
  switch (r.kind) {
    case 'anomaly':
    case 'hard_example':
    case 'sample':
      return `${p.rule ?? ''} ${p.score ?? ''}=${num('score_value')}`;
    case 'drift':
      return `${p.feature ?? ''} PSI ${num('psi')} (level ${num('level')})`;
    case 'aggregate':
      return `${num('rows')} rows, ${num('anomalies')} anomalies`;
    case 'feedback':
      return `label ${JSON.stringify(p.label)} for ${p.request_id ?? ''}`;
    default:
      return JSON.stringify(p).slice(0, 120);
  }
}

function dateInput(id: string, ms: string | null): HTMLInputElement {
  const input = el('input', { type: 'datetime-local', id, name: id });
  if (ms) input.value = new Date(Number(ms)).toISOString().slice(0, 16);
  return input;
}

function inputMs(input: HTMLInputElement): string {
  if (!input.value) return '';
  const ms = Date.parse(`${input.value}:00Z`);
  return Number.isFinite(ms) ? String(ms) : '';
}

// A records table with filters. `fixed` keeps the site filter fixed (the site page).
async function recordsBrowser(box: HTMLElement, filters: Record<string, string>, fixed: boolean,
  models: string[], siteIds: string[] = []): Promise<void> {
  const form = el('form', { class: 'filters', id: 'records-filters' });
  const select = (name: string, options: string[], value: string) => {
    const s = el('select', { name, id: `filter-${name}` }, el('option', { value: '' }, `any ${name}`));
    for (const o of options) s.append(el('option', { value: o }, o));
    s.value = value;
    return s;
  };
  // The site: any id may be typed (a fleet has thousands); the first page's ids are suggested.
  const siteSelect = fixed ? null : el('input', { name: 'site', id: 'filter-site', list: 'filter-site-ids',
    placeholder: 'any site', value: filters.site ?? '' });
  const siteIdList = el('datalist', { id: 'filter-site-ids' }, ...siteIds.map((id) => el('option', { value: id })));
  const kindSelect = select('kind', KINDS, filters.kind ?? '');
  const modelSelect = select('model', [...new Set([...models, ...(filters.model ? [filters.model] : [])])], filters.model ?? '');
  const since = dateInput('filter-since', filters.since ?? null);
  const until = dateInput('filter-until', filters.until ?? null);
  const limit = select('limit', ['25', '50', '100', '500'], filters.limit ?? (fixed ? '25' : '50'));
  form.append(...(siteSelect ? [siteSelect, siteIdList] : []), kindSelect, modelSelect,
    el('label', {}, 'since (UTC) ', since), el('label', {}, 'until (UTC) ', until), limit,
    el('button', { type: 'submit', id: 'filter-apply' }, 'Apply'));

  const table = el('table', { class: 'grid', id: 'records-table' }, el('thead', {}, el('tr', {},
    ...['Id', 'Site', 'Node', 'Model', 'Seq', 'Kind', 'Created', 'Summary'].map((h) => el('th', {}, h)))));
  const body = el('tbody');
  table.append(body);
  const status = el('p', { class: 'hint', id: 'records-status' });
  const more = el('button', { type: 'button', id: 'records-more' }, 'More');
  box.replaceChildren(form, status, table, more);

  let after = 0;
  let shown = 0;
  let current: Record<string, string> = {};
  const load = async (reset: boolean) => {
    if (reset) {
      after = 0;
      shown = 0;
      body.replaceChildren();
    }
    const page = await get<Records>('records', { ...current, after: after || undefined });
    for (const r of page.records) {
      body.append(el('tr', { 'data-id': String(r.id), 'data-kind': r.kind },
        cell('id', String(r.id)), cell('site_id', r.site_id), cell('node_id', r.node_id),
        cell('stream', r.stream), cell('seq', String(r.seq)), cell('kind', r.kind),
        cell('created_ms', time(r.created_ms), { 'data-ms': String(r.created_ms) }),
        cell('summary', summary(r))));
    }
    shown += page.records.length;
    after = page.next_after ?? 0;
    more.hidden = page.next_after === null;
    status.textContent = `${int(shown)} records shown${page.next_after === null ? '' : ' (more available)'}`;
    status.setAttribute('data-shown', String(shown));
  };
  const apply = async () => {
    current = {
      site: fixed ? filters.site : siteSelect?.value ?? '',
      kind: kindSelect.value,
      model: modelSelect.value,
      since: inputMs(since),
      until: inputMs(until),
      limit: limit.value,
    };
    box.setAttribute('data-loading', '1');
    try {
      await load(true);
    } catch (e) {
      status.textContent = e instanceof ApiError ? `${e.message} (${e.reason})` : String(e);
    }
    box.removeAttribute('data-loading');
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!fixed) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries({ site: siteSelect?.value ?? '', kind: kindSelect.value,
        model: modelSelect.value, since: inputMs(since), until: inputMs(until) })) if (v) q.set(k, v);
      history.replaceState(null, '', `#/records${q.toString() ? `?${q}` : ''}`);
    }
    void apply();
  });
  more.addEventListener('click', () => void load(false));
  await apply();
}

// Site ids the records page suggests: the first page of the fleet (a site further on is typed).
const SITE_SUGGESTIONS = 200;

async function recordsPage(params: URLSearchParams): Promise<void> {
  const [fleet, training] = await Promise.all([get<Fleet>('sites', { limit: SITE_SUGGESTIONS }),
    get<Training>('training')]);
  asof.textContent = `as of ${time(fleet.now_ms)}`;
  const models = new Set<string>(training.models.map((m) => m.model));
  for (const s of fleet.sites) for (const m of s.models) models.add(m.name);
  const box = el('div', { id: 'records-browser' });
  app.replaceChildren(el('h1', {}, 'Records'), box);
  const filters: Record<string, string> = {};
  for (const k of ['site', 'kind', 'model', 'since', 'until']) {
    const v = params.get(k);
    if (v) filters[k] = v;
  }
  await recordsBrowser(box, filters, false, [...models].sort(), fleet.sites.map((s) => s.site_id));
}

// ----- training --------------------------------------------------------------------------------

async function trainingPage(): Promise<void> {
  const training = await get<Training>('training');
  const rows = el('tbody');
  for (const m of training.models) {
    rows.append(el('tr', { 'data-model': m.model, class: 'model-row' },
      cell('model', m.model), cell('feedback', int(m.feedback)), cell('labelled', int(m.labelled)),
      cell('hard_examples', int(m.hard_examples)), cell('sites', int(m.sites)),
      el('td', { 'data-k': 'registry' }, m.registry.length === 0 ? '—' : el('a', { href: `#/models/${encodeURIComponent(m.model)}` },
        m.registry.map((r) => `v${r.version} ${r.state}`).join(', ')))));
    for (const s of m.by_site) {
      rows.append(el('tr', { 'data-model': m.model, 'data-site': s.site_id, class: 'site-row' },
        cell('site_id', `  ${s.site_id}`), cell('feedback', int(s.feedback)), cell('labelled', int(s.labelled)),
        cell('hard_examples', int(s.hard_examples)), el('td'), el('td')));
    }
  }
  app.replaceChildren(
    el('h1', {}, 'Training data'),
    el('p', { class: 'hint' }, 'Labelled feedback and hard examples the sites sent, per model: what a retraining run can use.'),
    training.truncated ? el('p', { class: 'error' }, 'Counts are partial (more records than one request reads).') : '',
    el('table', { class: 'grid', id: 'training-table' }, el('thead', {}, el('tr', {},
      ...['Model / site', 'Feedback', 'Labelled', 'Hard examples', 'Sites', 'Registry'].map((h) => el('th', {}, h)))), rows));
}

// ----- router ------------------------------------------------------------------------------------

async function route(): Promise<void> {
  const hash = window.location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?', 2);
  const params = new URLSearchParams(query);
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    const nav = a.dataset.nav;
    a.classList.toggle('active', (nav === 'fleet' && (path === '/' || path.startsWith('/site/'))) ||
      (nav !== undefined && (path === `/${nav}` || path.startsWith(`/${nav}/`))));
  }
  document.body.setAttribute('data-ready', '0');
  try {
    if (path.startsWith('/site/')) {
      await sitePage(decodeURIComponent(path.slice(6)), params);
    } else if (path === '/records') {
      await recordsPage(params);
    } else if (path === '/training') {
      await trainingPage();
    } else if (path === '/models') {
      await modelsPage(app);
    } else if (path.startsWith('/models/')) {
      await modelPage(app, decodeURIComponent(path.slice(8)), params, route);
    } else if (path === '/rollouts') {
      await rolloutsPage(app, params);
    } else if (path.startsWith('/rollouts/')) {
      const [model = '', version = ''] = path.slice(10).split('/');
      await rolloutPage(app, decodeURIComponent(model), decodeURIComponent(version), route);
    } else if (path === '/insights') {
      const now = Date.now();
      asof.textContent = `as of ${time(now)}`;
      await insightsPage(app, params, now);
    } else {
      await fleetPage(params);
    }
  } catch (e) {
    showError(e);
  }
  // The browser tests wait for this: the page and its charts are drawn.
  document.body.setAttribute('data-ready', '1');
  document.body.setAttribute('data-route', path);
}

window.addEventListener('hashchange', () => void route());
void route();
