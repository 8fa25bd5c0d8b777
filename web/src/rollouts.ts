// The rollouts pages: #/rollouts[?model=] (the tenant's rollouts, newest first, and the fleet's
// model-version map: sites × models, each cell the version serving there and the one in
// shadow, coloured by version, with the progress of each model's active rollout) and
// #/rollouts/<model>/<v> (one rollout: its state, plan, waves with their gates, every site with
// its health against the version it replaced, its history, and the operator's pause / resume /
// abort / promote). Reads /api/v1/rollouts and /api/v1/installs (hub/QUERY_API.md); every
// action is a POST of that API, which the hub records in its audit log.
import {
  ApiError,
  get,
  post,
  type Installs,
  type Rollout,
  type RolloutSite,
  type RolloutSummary,
} from './api';
import { el, int, rate, time } from './format';

// States in which waves still open or sites still install: their progress shows on the map.
const ACTIVE = new Set(['rolling', 'paused']);

// The actions of a rollout and the states the hub takes each from (hub/QUERY_API.md); a button is
// enabled only from those, and the hub decides anyway (another operator may have acted since
// this page was drawn: its refusal is shown).
const ACTIONS: { action: string; label: string; from: string[] }[] = [
  { action: 'pause', label: 'Pause', from: ['rolling'] },
  { action: 'resume', label: 'Resume', from: ['paused'] },
  { action: 'promote', label: 'Promote now', from: ['rolling', 'paused'] },
  { action: 'abort', label: 'Abort', from: ['rolling', 'paused', 'complete'] },
];

// Version colours of the map, given in the order of the versions' keys.
const COLORS = ['#1c7ed6', '#2b8a3e', '#e67700', '#862e9c', '#0b7285', '#c2255c', '#5c940d', '#364fc7',
  '#d9480f', '#495057'];

function cell(key: string, text: string, extra: Record<string, string> = {}): HTMLTableCellElement {
  return el('td', { 'data-k': key, ...extra }, text);
}

function table(id: string, headings: string[], body: HTMLElement): HTMLTableElement {
  return el('table', { class: 'grid', id }, el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', {}, h)))), body);
}

function stateBadge(state: string, key = 'state'): HTMLElement {
  return el('span', { class: `badge rollout-${state}`, 'data-k': key }, state);
}

const rolloutHash = (model: string, version: number) => `#/rollouts/${encodeURIComponent(model)}/${version}`;

// A rollout's current wave as the hub numbers waves (from 0, as its history does): "wave 1
// (50%) of 3".
function waveText(index: number, name: string | undefined, waves: number): string {
  return `wave ${index}${name ? ` (${name})` : ''} of ${waves}`;
}

// "2 of 6 installed, wave 1 (50%) of 3": how far a rollout is.
function progressText(r: RolloutSummary, waveName: string | undefined): string {
  return `${r.sites.installed} of ${r.sites.total} installed, ${waveText(r.current_wave, waveName, r.waves)}`;
}

// A rate of the new version beside the baseline's: "0.40 % vs 0.20 %".
function versus(value: number | null, baseline: number | null): string {
  if (value === null && baseline === null) return '—';
  return `${rate(value)} vs ${rate(baseline)}`;
}

// The rollouts API is absent from a hub that predates it (404 not_found): no rollouts then.
async function listRollouts(model?: string): Promise<RolloutSummary[]> {
  try {
    return (await get<{ rollouts: RolloutSummary[] }>('rollouts', { model })).rollouts;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && e.reason === 'not_found') return [];
    throw e;
  }
}

// ----- the list and the version map ---------------------------------------------------------

function rolloutsTable(rollouts: RolloutSummary[]): HTMLElement {
  const rows = el('tbody');
  for (const r of rollouts) {
    rows.append(el('tr', { 'data-rollout': `${r.model}/${r.model_version}`, class: `rollout-row-${r.state}` },
      el('td', { 'data-k': 'rollout' }, el('a', { href: rolloutHash(r.model, r.model_version), class: 'site-link' },
        `${r.model} v${r.model_version}`)),
      el('td', {}, stateBadge(r.state)),
      cell('reason', r.reason ?? '—'),
      cell('wave', waveText(r.current_wave, undefined, r.waves)),
      cell('total', int(r.sites.total)), cell('offered', int(r.sites.offered)),
      cell('installed', int(r.sites.installed)), cell('failed', int(r.sites.failed)),
      cell('rolled_back', int(r.sites.rolled_back)),
      cell('bundle_version', String(r.bundle_version)),
      cell('created_ms', time(r.created_ms)), cell('updated_ms', time(r.updated_ms))));
  }
  if (rollouts.length === 0) {
    return el('p', { class: 'hint', id: 'no-rollouts' }, 'No rollout yet: approving a model version makes one.');
  }
  return table('rollouts-table', ['Rollout', 'State', 'Reason', 'Wave', 'Sites', 'Offered', 'Installed', 'Failed',
    'Rolled back', 'Bundle', 'Created', 'Updated'], rows);
}

// The versions of one (site, model) cell, over the site's nodes (they may differ mid-rollout).
interface MapCell {
  serving: Set<number>;
  shadow: Set<number>;
}

const versionKey = (model: string, version: number) => `${model} v${version}`;

// Colours are set through the element's style object: the hub's Content-Security-Policy
// refuses style attributes written into markup.
function chip(model: string, version: number, color: string, shadow: boolean): HTMLElement {
  const key = versionKey(model, version);
  const span = el('span', {
    class: `version-chip${shadow ? ' shadow' : ''}`, 'data-version-key': key, 'data-role': shadow ? 'shadow' : 'serving',
  }, shadow ? `shadow v${version}` : `v${version}`);
  span.style.borderColor = color;
  if (shadow) span.style.color = color;
  else span.style.background = color;
  return span;
}

// Sites × models from /installs, each cell the serving versions (filled chips) and shadow
// versions (outlined), one colour per model version with a legend; a model with an active
// rollout shows its progress in its column's head, and each site of that rollout its status.
function versionMap(installs: Installs, active: Rollout[], summaries: Map<string, RolloutSummary>): HTMLElement {
  const cells = new Map<string, MapCell>();  // "site\u0000model"
  const models = new Set<string>(active.map((r) => r.model));
  const keys = new Map<string, { model: string; version: number }>();
  const at = (site: string, model: string) => {
    const k = `${site}\u0000${model}`;
    let c = cells.get(k);
    if (!c) cells.set(k, (c = { serving: new Set(), shadow: new Set() }));
    return c;
  };
  for (const site of installs.sites) {
    for (const node of site.nodes) {
      for (const m of node.serving) {
        models.add(m.model);
        at(site.site_id, m.model).serving.add(m.version);
        keys.set(versionKey(m.model, m.version), m);
      }
      for (const m of node.shadow) {
        models.add(m.model);
        at(site.site_id, m.model).shadow.add(m.version);
        keys.set(versionKey(m.model, m.version), m);
      }
    }
  }
  const sortedKeys = [...keys.values()].sort((a, b) => a.model.localeCompare(b.model) || a.version - b.version);
  const colorOf = new Map<string, string>();
  sortedKeys.forEach((k, i) => colorOf.set(versionKey(k.model, k.version), COLORS[i % COLORS.length]));
  const modelList = [...models].sort();

  const head = el('tr', {}, el('th', {}, 'Site'));
  for (const model of modelList) {
    const th = el('th', { 'data-model': model }, model);
    for (const r of active.filter((x) => x.model === model)) {
      const summary = summaries.get(`${r.model}/${r.model_version}`);
      th.append(el('div', { class: 'rollout-progress', 'data-k': 'rollout-progress', 'data-rollout': `${r.model}/${r.model_version}` },
        el('a', { href: rolloutHash(r.model, r.model_version) }, `rollout v${r.model_version}`), ` ${r.state}: `,
        summary ? progressText(summary, r.waves[r.current_wave]?.name) : ''));
    }
    head.append(th);
  }
  const rows = el('tbody');
  const siteIds = installs.sites.map((s) => s.site_id);
  for (const r of active) for (const s of r.sites) if (!siteIds.includes(s.site_id)) siteIds.push(s.site_id);
  for (const siteId of siteIds) {
    const tr = el('tr', { 'data-site': siteId },
      el('td', { 'data-k': 'site_id' }, el('a', { href: `#/site/${encodeURIComponent(siteId)}`, class: 'site-link' }, siteId)));
    for (const model of modelList) {
      const c = cells.get(`${siteId}\u0000${model}`);
      const serving = c ? [...c.serving].sort((a, b) => a - b) : [];
      const shadow = c ? [...c.shadow].sort((a, b) => a - b) : [];
      const td = el('td', { 'data-model': model, 'data-serving': serving.join(','), 'data-shadow': shadow.join(','),
        class: 'map-cell' });
      for (const v of serving) td.append(chip(model, v, colorOf.get(versionKey(model, v)) as string, false), ' ');
      for (const v of shadow) td.append(chip(model, v, colorOf.get(versionKey(model, v)) as string, true), ' ');
      if (serving.length === 0 && shadow.length === 0) td.append(el('span', { class: 'hint' }, '—'));
      for (const r of active.filter((x) => x.model === model)) {
        const site = r.sites.find((s) => s.site_id === siteId);
        if (!site) continue;
        td.setAttribute('data-rollout-status', site.status);
        td.append(el('div', { class: `rollout-site rollout-site-${site.status}`, 'data-k': 'rollout-site' },
          `→ v${r.model_version} ${site.status} (${r.waves[site.wave]?.name ?? `wave ${site.wave}`})`));
      }
      tr.append(td);
    }
    rows.append(tr);
  }
  const legend = el('div', { class: 'legend', id: 'version-legend' });
  for (const k of sortedKeys) {
    const key = versionKey(k.model, k.version);
    const swatch = el('span', { class: 'swatch' });
    swatch.style.background = colorOf.get(key) as string;
    legend.append(el('span', { class: 'legend-item', 'data-version-key': key }, swatch, key));
  }
  legend.append(el('span', { class: 'legend-item' }, el('span', { class: 'swatch shadow' }), 'outlined: in shadow'));
  return el('div', { id: 'version-map-box' },
    installs.truncated ? el('p', { class: 'error' }, 'More install events than one request reads: the newest may be missing.') : '',
    legend,
    modelList.length === 0 ? el('p', { class: 'hint', id: 'no-installs' }, 'No site has reported a model it serves.') : '',
    el('table', { class: 'grid', id: 'version-map' }, el('thead', {}, head), rows));
}

export async function rolloutsPage(app: HTMLElement, params: URLSearchParams): Promise<void> {
  const model = params.get('model') ?? undefined;
  const [rollouts, installs] = await Promise.all([listRollouts(model), get<Installs>('installs')]);
  const summaries = new Map(rollouts.map((r) => [`${r.model}/${r.model_version}`, r]));
  const active = await Promise.all(rollouts.filter((r) => ACTIVE.has(r.state))
    .map((r) => get<Rollout>(`rollouts/${encodeURIComponent(r.model)}/${r.model_version}`)));
  app.replaceChildren(
    el('h1', {}, model ? `Rollouts of ${model}` : 'Rollouts'),
    el('p', { class: 'hint' }, 'Each release goes to its sites in waves, each wave opened once the previous one is healthy.'),
    rolloutsTable(rollouts),
    el('h2', {}, 'Model versions across the fleet'),
    el('p', { class: 'hint' }, 'What each site\'s nodes last reported serving, and in shadow; a model being rolled out shows the rollout\'s progress.'),
    versionMap(installs, active, summaries),
  );
}

// ----- one rollout ----------------------------------------------------------------------------

function planView(r: Rollout): HTMLElement {
  const facts = el('dl', { class: 'facts', id: 'rollout-plan' });
  const fact = (label: string, key: string, text: string) => facts.append(el('dt', {}, label), el('dd', { 'data-k': key }, text));
  const p = r.plan;
  fact('Canary sites', 'canary', p.canary.join(', ') || '—');
  fact('Waves after the canary', 'percent', [...p.percent.map((x) => `${x}%`), 'all'].join(', '));
  fact('Soak time', 'soak_s', `${int(p.soak_s)} s`);
  fact('Error rate may rise by at most', 'max_error_rate_increase', rate(p.max_error_rate_increase));
  fact('Accuracy may drop by at most', 'max_accuracy_drop', rate(p.max_accuracy_drop));
  fact('Requests a site answers first', 'min_requests', int(p.min_requests));
  fact('Labels before accuracy counts', 'min_labels', int(p.min_labels));
  return facts;
}

function wavesView(r: Rollout): HTMLElement {
  const rows = el('tbody');
  for (const w of r.waves) {
    rows.append(el('tr', { 'data-wave': String(w.index), class: `gate-${w.gate}${w.index === r.current_wave ? ' current' : ''}` },
      cell('index', String(w.index)), cell('name', w.name), cell('sites', w.sites.join(', ') || '—'),
      el('td', {}, el('span', { class: `badge gate-${w.gate}`, 'data-k': 'gate' }, w.gate)),
      cell('detail', w.detail ?? '—'),
      cell('opened_ms', time(w.opened_ms), { 'data-ms': String(w.opened_ms ?? '') }),
      cell('installed_ms', time(w.installed_ms), { 'data-ms': String(w.installed_ms ?? '') }),
      cell('passed_ms', time(w.passed_ms), { 'data-ms': String(w.passed_ms ?? '') })));
  }
  return table('waves-table', ['#', 'Wave', 'Sites', 'Gate', 'Detail', 'Opened', 'Installed', 'Passed'], rows);
}

function sitesView(r: Rollout): HTMLElement {
  const rows = el('tbody');
  const n = (v: number | null) => (v === null ? '—' : int(v));
  for (const s of r.sites as RolloutSite[]) {
    rows.append(el('tr', { 'data-site': s.site_id, class: `site-${s.status}` },
      el('td', { 'data-k': 'site_id' }, el('a', { href: `#/site/${encodeURIComponent(s.site_id)}`, class: 'site-link' }, s.site_id)),
      cell('wave', r.waves[s.wave]?.name ?? String(s.wave), { 'data-wave': String(s.wave) }),
      cell('status', s.status), cell('reason', s.reason ?? '—'), cell('requests', n(s.requests)),
      cell('error_rate', versus(s.error_rate, s.baseline_error_rate)),
      cell('accuracy', versus(s.accuracy, s.baseline_accuracy)),
      cell('updated_ms', time(s.updated_ms))));
  }
  return table('rollout-sites', ['Site', 'Wave', 'Status', 'Reason', 'Requests', 'Error rate vs baseline',
    'Accuracy vs baseline', 'Updated'], rows);
}

function historyView(r: Rollout): HTMLElement {
  const rows = el('tbody');
  for (const h of r.history) {
    rows.append(el('tr', { 'data-action': h.action },
      cell('time_ms', time(h.time_ms), { 'data-ms': String(h.time_ms) }), cell('action', h.action),
      cell('operator', h.operator ?? '—'), cell('detail', h.detail ?? '—')));
  }
  return table('rollout-history', ['Time', 'Change', 'Operator', 'Detail'], rows);
}

export async function rolloutPage(app: HTMLElement, model: string, version: string,
  rerender: () => Promise<void>): Promise<void> {
  const path = `rollouts/${encodeURIComponent(model)}/${encodeURIComponent(version)}`;
  const r = await get<Rollout>(path);
  const facts = el('dl', { class: 'facts', id: 'rollout-facts' });
  const fact = (label: string, key: string, value: string | Node) => facts.append(el('dt', {}, label), el('dd', { 'data-k': key }, value));
  fact('State', 'state', r.state);
  fact('Reason', 'reason', r.reason ?? '—');
  fact('Current wave', 'current_wave', waveText(r.current_wave, r.waves[r.current_wave]?.name, r.waves.length));
  fact('Sites', 'sites', `${r.sites.filter((s) => s.status === 'installed').length} of ${r.sites.length} installed`);
  fact('Bundle version', 'bundle_version', String(r.bundle_version));
  fact('Created', 'created_ms', time(r.created_ms));
  fact('Updated', 'updated_ms', time(r.updated_ms));

  const result = el('p', { id: 'rollout-result', 'aria-live': 'polite' });
  const buttons = el('div', { id: 'rollout-actions', class: 'filters' });
  for (const a of ACTIONS) {
    const button = el('button', { type: 'button', class: `action rollout-action ${a.action}`, 'data-action': a.action },
      a.label);
    button.disabled = !a.from.includes(r.state);
    buttons.append(button);
  }
  app.replaceChildren(
    el('p', { class: 'crumbs' }, el('a', { href: '#/rollouts' }, 'Rollouts'), ' / ',
      el('a', { href: `#/models/${encodeURIComponent(r.model)}?v=${r.model_version}` }, `${r.model} v${r.model_version}`)),
    el('h1', { id: 'rollout-title', 'data-state': r.state }, `Rollout of ${r.model} v${r.model_version} `, stateBadge(r.state, 'state-badge')),
    facts,
    buttons,
    result,
    el('h2', {}, 'Plan'),
    planView(r),
    el('h2', {}, 'Waves'),
    wavesView(r),
    el('h2', {}, 'Sites'),
    el('p', { class: 'hint' }, 'Requests, error rate and accuracy are the new version\'s as the site\'s nodes last reported them, beside the version it served when its wave opened.'),
    sitesView(r),
    el('h2', {}, 'History'),
    historyView(r),
  );

  const act = async (button: HTMLButtonElement) => {
    const action = button.dataset.action as string;
    if (action === 'abort' && !window.confirm(
      `Abort the rollout of ${r.model} v${r.model_version}? Every site that installed it rolls back.`)) {
      return;
    }
    for (const b of buttons.querySelectorAll<HTMLButtonElement>('button')) b.disabled = true;
    result.className = '';
    result.textContent = 'Working…';
    // The page is drawn again either way: a refusal means the rollout changed since (another
    // operator, a gate), and the page then shows it as it is now, with the reason.
    let message: string;
    let outcome: string;
    let reason = '';
    try {
      const after = await post<Rollout>(`${path}/${action}`);
      message = `${button.textContent}: the rollout is ${after.state}.`;
      outcome = 'ok';
    } catch (e) {
      reason = e instanceof ApiError ? e.reason : '';
      // The hub's message usually names its reason already.
      message = !(e instanceof ApiError) ? String(e)
        : `${button.textContent} refused: ${e.message}${e.message.includes(e.reason) ? '' : ` (${e.reason})`}`;
      outcome = 'error';
    }
    await rerender();
    const shown = document.getElementById('rollout-result');
    if (shown) {
      shown.textContent = message;
      shown.className = outcome;
      shown.setAttribute('data-action', action);
      shown.setAttribute('data-reason', reason);
    }
  };
  for (const button of buttons.querySelectorAll<HTMLButtonElement>('button')) {
    button.addEventListener('click', () => void act(button));
  }
}
