// Global insights across the tenant's sites (#/insights?range=&model=): the anomaly rate of
// every site over time on one chart with the fleet's where enough sites contribute, the
// site × feature drift map, and what each site's policy withheld, counted by rule. Reads
// /api/v1/insights/* (hub/QUERY_API.md "Global insights"); a fleet-wide aggregate that the
// hub withholds (fewer than min_sites sites contribute) is shown as withheld, never guessed.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { get } from './api';
import { lonePoints } from './charts';
import { el, int, rate, time } from './format';
import { psiColor, psiLegend } from './plots';

interface RateBucket {
  start_ms: number;
  rows: number | null;
  anomalies: number | null;
  anomaly_rate: number | null;
}

export interface AnomalyInsight {
  since_ms: number;
  until_ms: number;
  bucket_ms: number;
  min_sites: number;
  truncated: boolean;
  sites: { site_id: string; rows: number; anomalies: number; anomaly_rate: number | null; buckets: RateBucket[] }[];
  fleet: {
    sites: number; rows: number | null; anomalies: number | null; anomaly_rate: number | null; withheld: boolean;
    buckets: (RateBucket & { sites: number; withheld: boolean })[];
  };
}

export interface DriftInsight {
  min_sites: number;
  truncated: boolean;
  sites: string[];
  features: { model: string; feature: string }[];
  cells: { site_id: string; model: string; feature: string; max_psi: number; records: number; last_ms: number; level: number | null }[];
  fleet: { model: string; feature: string; sites: number; mean_max_psi: number | null; withheld: boolean }[];
}

export interface WithheldInsight {
  min_sites: number;
  truncated: boolean;
  sites: {
    site_id: string; lines: number; truncated: boolean; decisions: Record<string, number>;
    rules: { decision: string; reason: string; kind: string; count: number }[];
  }[];
  fleet: { decision: string; reason: string; sites: number; count: number | null; withheld: boolean }[];
}

const DAY = 86_400_000;
const RANGES: Record<string, { span: number; bucket: number; label: string }> = {
  '1d': { span: DAY, bucket: 3_600_000, label: 'last 24 hours, hourly' },
  '7d': { span: 7 * DAY, bucket: 3_600_000, label: 'last 7 days, hourly' },
  '30d': { span: 30 * DAY, bucket: 6 * 3_600_000, label: 'last 30 days, 6-hourly' },
};
const COLORS = ['#1c7ed6', '#2b8a3e', '#862e9c', '#e67700', '#0b7285', '#c2255c', '#5c940d', '#364fc7'];
const FLEET_COLOR = '#212529';
const featureKey = (f: { model: string; feature: string }) => `${f.model}/${f.feature}`;

function cell(key: string, text: string, attrs: Record<string, string> = {}): HTMLTableCellElement {
  return el('td', { 'data-k': key, ...attrs }, text);
}

function table(id: string, headings: string[], body: HTMLElement): HTMLTableElement {
  return el('table', { class: 'grid', id }, el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', {}, h)))), body);
}

function withheldText(sites: number, k: number): string {
  return `withheld: ${sites} of the ${k} sites needed`;
}

// One line per site and, where at least k sites contribute, the fleet's (dashed, black).
function anomalyChart(container: HTMLElement, a: AnomalyInsight): void {
  if (a.sites.length === 0) return;
  const xs = a.fleet.buckets.map((b) => b.start_ms / 1000);
  const pct = (r: number | null) => (r === null ? null : r * 100);
  const data: uPlot.AlignedData = [xs, ...a.sites.map((s) => s.buckets.map((b) => pct(b.anomaly_rate))),
    a.fleet.buckets.map((b) => (b.withheld ? null : pct(b.anomaly_rate)))];
  const opts: uPlot.Options = {
    title: 'Anomaly rate per site (% of rows scored)',
    width: Math.max(320, Math.min(1100, container.clientWidth || 800)),
    height: 300,
    tzDate: (ts: number) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 0) * 1.1)] } },
    series: [
      {},
      ...a.sites.map((s, i) => ({
        label: s.site_id, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false,
        points: { size: 7, fill: COLORS[i % COLORS.length], filter: lonePoints },
        value: (_u: uPlot, v: number | null) => (v === null ? '—' : `${v.toFixed(2)} %`),
      })),
      {
        label: `fleet (≥ ${a.min_sites} sites)`, stroke: FLEET_COLOR, width: 2, dash: [8, 4], spanGaps: false,
        points: { size: 7, fill: FLEET_COLOR, filter: lonePoints },
        value: (_u: uPlot, v: number | null) => (v === null ? 'withheld' : `${v.toFixed(2)} %`),
      },
    ],
    axes: [{}, { label: '%', size: 60 }],
  };
  new uPlot(opts, data, container);
}

function anomalySection(a: AnomalyInsight): HTMLElement {
  const box = el('div', { class: 'chart', id: 'chart-fleet-anomaly' });
  const rows = el('tbody');
  for (const s of a.sites) {
    rows.append(el('tr', { 'data-site': s.site_id },
      el('td', { 'data-k': 'site_id' }, el('a', { href: `#/site/${encodeURIComponent(s.site_id)}`, class: 'site-link' }, s.site_id)),
      cell('rows', int(s.rows)), cell('anomalies', int(s.anomalies)), cell('anomaly_rate', rate(s.anomaly_rate))));
  }
  const f = a.fleet;
  rows.append(el('tr', { 'data-site': '', class: 'fleet-row' },
    cell('site_id', `Fleet (${f.sites} sites)`),
    cell('rows', f.withheld ? withheldText(f.sites, a.min_sites) : int(f.rows ?? 0)),
    cell('anomalies', f.withheld ? '—' : int(f.anomalies ?? 0)),
    cell('anomaly_rate', f.withheld ? 'withheld' : rate(f.anomaly_rate))));
  const withheldBuckets = f.buckets.filter((b) => b.withheld && b.sites > 0).length;
  const shownBuckets = f.buckets.filter((b) => !b.withheld).length;
  return el('section', { id: 'insight-anomaly' },
    el('h2', {}, 'Anomaly rate per site'),
    a.truncated ? el('p', { class: 'error' }, 'More records than one request reads: counts are partial.') : '',
    a.sites.length === 0 ? el('p', { class: 'hint', id: 'no-anomaly' }, 'No site sent aggregates in this range.') : '',
    box,
    el('p', { class: 'hint', id: 'fleet-note', 'data-shown': String(shownBuckets), 'data-withheld': String(withheldBuckets) },
      `The fleet line is drawn only where at least ${a.min_sites} sites contribute (the hub's insights.min_sites): ` +
      `shown in ${shownBuckets} buckets, withheld in ${withheldBuckets} where fewer sites sent data.`),
    table('anomaly-table', ['Site', 'Rows', 'Anomalies', 'Rate'], rows));
}

function driftSection(d: DriftInsight): HTMLElement {
  const cells = new Map(d.cells.map((c) => [`${c.site_id}\u0000${featureKey(c)}`, c]));
  const rows = el('tbody');
  for (const site of d.sites) {
    const tr = el('tr', { 'data-site': site }, cell('site_id', site));
    for (const f of d.features) {
      const c = cells.get(`${site}\u0000${featureKey(f)}`);
      const td = cell('psi', c ? c.max_psi.toFixed(3) : '', { 'data-feature': featureKey(f) });
      if (c) {
        td.style.background = psiColor(c.max_psi);
        td.style.color = c.max_psi >= 0.35 ? '#fff' : '#212529';
        td.title = `${c.records} drift records, last ${time(c.last_ms)}${c.level === null ? '' : `, level ${c.level}`}`;
      }
      tr.append(td);
    }
    rows.append(tr);
  }
  const fleet = el('tr', { class: 'fleet-row', 'data-site': '' }, cell('site_id', 'Fleet (mean of sites\' largest)'));
  for (const f of d.features) {
    const row = d.fleet.find((r) => featureKey(r) === featureKey(f));
    const td = cell('fleet_psi', row && !row.withheld && row.mean_max_psi !== null ? row.mean_max_psi.toFixed(3)
      : `withheld (${row?.sites ?? 0} of ${d.min_sites})`, { 'data-feature': featureKey(f) });
    if (row && !row.withheld && row.mean_max_psi !== null) td.style.background = psiColor(row.mean_max_psi);
    fleet.append(td);
  }
  rows.append(fleet);
  return el('section', { id: 'insight-drift' },
    el('h2', {}, 'Drift map: largest PSI per site and feature'),
    d.truncated ? el('p', { class: 'error' }, 'More records, sites or features than one request reads: the map is partial.') : '',
    d.features.length === 0 ? el('p', { class: 'hint', id: 'no-drift' }, 'No site sent drift records in this range.') : '',
    el('div', { class: 'legend' }, el('span', {}, 'PSI '), psiLegend()),
    table('drift-map', ['Site', ...d.features.map(featureKey)], rows),
    el('p', { class: 'hint' }, `An empty cell: the site sent no drift record of that feature. The fleet row needs ${d.min_sites} sites per feature.`));
}

function withheldSection(w: WithheldInsight): HTMLElement {
  const rows = el('tbody');
  for (const s of w.sites) {
    const rules = s.rules.map((r) => `${r.reason || '(no reason)'} (${r.kind}, ${r.decision}): ${int(r.count)}`).join('; ');
    rows.append(el('tr', { 'data-site': s.site_id },
      cell('site_id', s.site_id), cell('allowed', int(s.decisions.allowed ?? 0)),
      cell('withheld', int(s.decisions.withheld ?? 0)), cell('rejected', int(s.decisions.rejected ?? 0)),
      cell('rules', (rules || '—') + (s.truncated ? ' (newest lines not read)' : ''))));
  }
  const fleetRows = el('tbody');
  for (const f of w.fleet) {
    fleetRows.append(el('tr', { 'data-rule': `${f.decision}:${f.reason}` },
      cell('decision', f.decision), cell('reason', f.reason || '(no reason)'), cell('sites', int(f.sites)),
      cell('count', f.withheld || f.count === null ? withheldText(f.sites, w.min_sites) : int(f.count))));
  }
  return el('section', { id: 'insight-withheld' },
    el('h2', {}, 'What each site\'s policy withheld'),
    el('p', { class: 'hint' }, 'Counts of the sites\' policy audit decisions, by rule; the records themselves never left the sites.'),
    w.truncated ? el('p', { class: 'error' }, 'More audit lines than one request reads: counts are partial.') : '',
    table('withheld-table', ['Site', 'Allowed', 'Withheld', 'Rejected', 'By rule'], rows),
    el('h3', {}, 'Across the fleet'),
    table('withheld-fleet', ['Decision', 'Rule', 'Sites', 'Records'], fleetRows));
}

export async function insightsPage(app: HTMLElement, params: URLSearchParams, now: number): Promise<void> {
  const rangeKey = RANGES[params.get('range') ?? ''] ? (params.get('range') as string) : '7d';
  const range = RANGES[rangeKey];
  const model = params.get('model') ?? undefined;
  const query = { since: now + 1 - range.span, until: now + 1, model };
  const [anomaly, drift, withheld] = await Promise.all([
    get<AnomalyInsight>('insights/anomaly', { ...query, bucket: range.bucket }),
    get<DriftInsight>('insights/drift', query),
    get<WithheldInsight>('insights/withheld', { since: query.since, until: query.until }),
  ]);
  const links = el('div', { class: 'ranges' });
  for (const [key, r] of Object.entries(RANGES)) {
    links.append(el('a', { href: `#/insights?range=${key}${model ? `&model=${encodeURIComponent(model)}` : ''}`,
      class: key === rangeKey ? 'active' : '', 'data-range': key }, r.label));
  }
  app.replaceChildren(
    el('h1', {}, 'Insights across sites'),
    links,
    el('div', { id: 'insights', 'data-since': String(query.since), 'data-until': String(query.until),
      'data-bucket': String(range.bucket), 'data-min-sites': String(anomaly.min_sites) },
    anomalySection(anomaly), driftSection(drift), withheldSection(withheld)));
  anomalyChart(document.getElementById('chart-fleet-anomaly') as HTMLElement, anomaly);
}
