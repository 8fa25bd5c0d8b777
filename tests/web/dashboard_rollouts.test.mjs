// The rollouts page (#/rollouts) in a real browser (Debian's chromium, headless, driven by
// playwright-core), served by `outpost hub serve` over a seeded store (seed_hub --installs: six
// acme sites whose nodes report what they serve and shadow, one known only from its bundle
// event) with a `retrain:` entry for pump whose release goes to those six sites in waves
// (`rollout: {canary: [plant-north], percent: [50], soak_s: 3600}`). Checks that
//   - the model-version map shows, for each site and model, the versions /api/v1/installs
//     says serve there and run in shadow, one colour per model version as its legend says;
//   - approving pump v5 on the registry page makes its rollout, which the registry links to;
//     the rollouts list and the map show its progress as /api/v1/rollouts says;
//   - the rollout's page shows the API's state, plan, waves with their gates, sites and
//     history; Pause, Resume, Promote now and Abort (which asks first) act through the API,
//     each is in the hub's audit log with the operator's name, and an action the hub refuses
//     (another operator aborted the rollout meanwhile) shows the refusal's reason;
//   - nothing is loaded from outside the hub and no script error happens.
// Screenshots go to --out.
//
//   node dashboard_rollouts.test.mjs --seed BIN --hub OUTPOST --web WEB_DIR --out DIR
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  getApi, number, openOtherPage, openPage, reader, readArgs, runTest, session, signIn, step,
} from './browser.mjs';
import { serveRegistryHub } from './registry_hub.mjs';

const args = readArgs(['seed', 'hub', 'web', 'out']);
const TOKENS = { acme: 'tok-acme-7f3a-5c1d9e0b2a64f873' };
const out = args.out;
mkdirSync(out, { recursive: true });
const s = session('outpost-web-rollouts-');
const SITES = ['plant-north', 'plant-south', 'mine-andes', 'ship-atlantic', 'rig-9', 'farm-2'];
const CANARY = 'plant-north';

// What the map should show: per site and model, the versions serving on any of the site's
// nodes and those in shadow, from /api/v1/installs.
function expectedCells(installs) {
  const cells = new Map();
  for (const site of installs.sites) {
    for (const node of site.nodes) {
      for (const [role, list] of [['serving', node.serving], ['shadow', node.shadow]]) {
        for (const m of list) {
          const key = `${site.site_id}/${m.model}`;
          if (!cells.has(key)) cells.set(key, { serving: new Set(), shadow: new Set() });
          cells.get(key)[role].add(m.version);
        }
      }
    }
  }
  const sorted = (set) => [...set].sort((a, b) => a - b).join(',');
  return new Map([...cells].map(([k, c]) => [k, { serving: sorted(c.serving), shadow: sorted(c.shadow) }]));
}

// The map against /api/v1/installs: a row per site, a column per model, each cell's serving
// and shadow versions, each chip coloured as the legend colours its version.
async function checkVersionMap(page, installs) {
  const cells = expectedCells(installs);
  const models = [...new Set([...cells.keys()].map((k) => k.split('/')[1]))].sort();
  assert.deepEqual(await page.locator('#version-map thead th[data-model]').evaluateAll((ths) => ths.map((t) => t.dataset.model)),
    models, 'a column per model the sites serve');
  const rows = await page.locator('#version-map tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.site));
  assert.deepEqual(rows, installs.sites.map((x) => x.site_id), 'a row per site of the tenant');
  for (const site of installs.sites) {
    for (const model of models) {
      const want = cells.get(`${site.site_id}/${model}`) ?? { serving: '', shadow: '' };
      const td = page.locator(`#version-map tr[data-site="${site.site_id}"] td[data-model="${model}"]`);
      assert.equal(await td.getAttribute('data-serving'), want.serving, `${site.site_id} ${model} serving`);
      assert.equal(await td.getAttribute('data-shadow'), want.shadow, `${site.site_id} ${model} shadow`);
      const chips = await td.locator('.version-chip').evaluateAll((cs) => cs.map((c) => c.textContent));
      assert.deepEqual(chips, [
        ...want.serving.split(',').filter(Boolean).map((v) => `v${v}`),
        ...want.shadow.split(',').filter(Boolean).map((v) => `shadow v${v}`),
      ]);
    }
  }
  // One colour per model version, the legend's: a serving chip is filled with it, a shadow
  // chip outlined in it.
  const legend = await page.locator('#version-legend .legend-item[data-version-key]').evaluateAll((items) =>
    items.map((i) => [i.dataset.versionKey, getComputedStyle(i.querySelector('.swatch')).backgroundColor]));
  const wantKeys = [...new Set([...cells].flatMap(([k, c]) => `${c.serving},${c.shadow}`.split(',').filter(Boolean)
    .map((v) => `${k.split('/')[1]} v${v}`)))].sort();
  assert.deepEqual(legend.map(([k]) => k).sort(), wantKeys, 'the legend names every version on the map');
  const colour = new Map(legend);
  assert.equal(new Set(colour.values()).size, colour.size, 'each version has its own colour');
  const chips = await page.locator('#version-map .version-chip').evaluateAll((cs) => cs.map((c) => ({
    key: c.dataset.versionKey, role: c.dataset.role, background: getComputedStyle(c).backgroundColor,
    border: getComputedStyle(c).borderTopColor,
  })));
  for (const c of chips) {
    assert.equal(c.border, colour.get(c.key), `${c.key} chip outlined in its colour`);
    if (c.role === 'serving') assert.equal(c.background, colour.get(c.key), `${c.key} chip filled with its colour`);
  }
  return cells;
}

// How the rollout page writes times, rates and a rate beside its baseline.
const minute = (ms) => (ms === null ? '—' : `${new Date(ms).toISOString().slice(0, 10)} ${new Date(ms).toISOString().slice(11, 16)} UTC`);
const rate = (r) => (r === null ? '—' : `${(r * 100).toFixed(2)} %`);
const versus = (v, b) => (v === null && b === null ? '—' : `${rate(v)} vs ${rate(b)}`);

// The rollout page against GET /api/v1/rollouts/{model}/{v}: its state, plan, every wave,
// every site and the history.
async function checkRolloutPage(page, r) {
  const { text } = reader(page);
  assert.equal(await page.locator('#rollout-title').getAttribute('data-state'), r.state);
  assert.equal(await text('#rollout-facts [data-k="state"]'), r.state);
  assert.equal(await text('#rollout-facts [data-k="reason"]'), r.reason ?? '—');
  assert.equal(await text('#rollout-facts [data-k="bundle_version"]'), String(r.bundle_version));
  const installed = r.sites.filter((x) => x.status === 'installed').length;
  assert.equal(await text('#rollout-facts [data-k="sites"]'), `${installed} of ${r.sites.length} installed`);
  assert.equal(await text('#rollout-facts [data-k="current_wave"]'),
    `wave ${r.current_wave} (${r.waves[r.current_wave].name}) of ${r.waves.length}`);
  assert.equal(await text('#rollout-plan [data-k="canary"]'), r.plan.canary.join(', '));
  assert.equal(await text('#rollout-plan [data-k="percent"]'), [...r.plan.percent.map((x) => `${x}%`), 'all'].join(', '));
  assert.equal(number(await text('#rollout-plan [data-k="soak_s"]').then((t) => t.replace(/ s$/, ''))), r.plan.soak_s);
  assert.equal(await text('#rollout-plan [data-k="max_error_rate_increase"]'), rate(r.plan.max_error_rate_increase));
  assert.equal(await text('#rollout-plan [data-k="max_accuracy_drop"]'), rate(r.plan.max_accuracy_drop));
  assert.equal(number(await text('#rollout-plan [data-k="min_requests"]')), r.plan.min_requests);
  assert.equal(number(await text('#rollout-plan [data-k="min_labels"]')), r.plan.min_labels);
  assert.equal(await page.locator('#waves-table tbody tr').count(), r.waves.length);
  for (const w of r.waves) {
    const row = `#waves-table tr[data-wave="${w.index}"]`;
    assert.equal(await text(`${row} [data-k="name"]`), w.name);
    assert.equal(await text(`${row} [data-k="sites"]`), w.sites.join(', ') || '—', `wave ${w.name} sites`);
    assert.equal(await text(`${row} [data-k="gate"]`), w.gate, `wave ${w.name} gate`);
    assert.notEqual(await page.locator(`${row} [data-k="gate"]`).evaluate((b) => getComputedStyle(b).backgroundColor),
      'rgba(0, 0, 0, 0)', `wave ${w.name}: its gate (${w.gate}) shows`);
    assert.equal(await text(`${row} [data-k="detail"]`), w.detail ?? '—');
    for (const k of ['opened_ms', 'installed_ms', 'passed_ms']) {
      assert.equal(await page.locator(`${row} [data-k="${k}"]`).getAttribute('data-ms'), String(w[k] ?? ''), `wave ${w.name} ${k}`);
      assert.equal(await text(`${row} [data-k="${k}"]`), minute(w[k]));
    }
  }
  assert.deepEqual(await page.locator('#rollout-sites tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.site)),
    r.sites.map((x) => x.site_id));
  for (const x of r.sites) {
    const row = `#rollout-sites tr[data-site="${x.site_id}"]`;
    assert.equal(await text(`${row} [data-k="wave"]`), r.waves[x.wave].name, `${x.site_id} wave`);
    assert.equal(await text(`${row} [data-k="status"]`), x.status, `${x.site_id} status`);
    assert.equal(await text(`${row} [data-k="reason"]`), x.reason ?? '—');
    assert.equal(await text(`${row} [data-k="requests"]`), x.requests === null ? '—' : x.requests.toLocaleString('en-US'));
    assert.equal(await text(`${row} [data-k="error_rate"]`), versus(x.error_rate, x.baseline_error_rate));
    assert.equal(await text(`${row} [data-k="accuracy"]`), versus(x.accuracy, x.baseline_accuracy));
  }
  const history = await page.locator('#rollout-history tbody tr').evaluateAll((trs) => trs.map((t) =>
    [t.dataset.action, t.querySelector('[data-k="operator"]').textContent, Number(t.querySelector('[data-k="time_ms"]').dataset.ms)]));
  assert.deepEqual(history, r.history.map((h) => [h.action, h.operator ?? '—', h.time_ms]), 'the history as the API keeps it');
  // The buttons the state allows (hub/QUERY_API.md): the others are disabled.
  const allowed = { pause: ['rolling'], resume: ['paused'], promote: ['rolling', 'paused'], abort: ['rolling', 'paused', 'complete'] };
  for (const [action, from] of Object.entries(allowed)) {
    assert.equal(await page.locator(`#rollout-actions button[data-action="${action}"]`).isEnabled(), from.includes(r.state),
      `${action} ${from.includes(r.state) ? 'enabled' : 'disabled'} when ${r.state}`);
  }
}

// The hub's rollout controller moves a rollout on by itself (every 2 s): a page is read against
// the API only once it was drawn from the answer the API still gives after it. Draws `route`
// again until the answers of `read()` before and after it are the same, and resolves with that.
async function settled(page, route, read) {
  for (let tries = 1; ; tries += 1) {
    const before = await read();
    await page.reload();
    await reader(page).ready(route);
    const after = await read();
    if (JSON.stringify(before) === JSON.stringify(after)) return after;
    assert.ok(tries < 30, `${route}: the rollout keeps changing`);
  }
}

// Presses `action` on the rollout page and resolves with the message it shows once drawn again.
async function press(page, action) {
  await page.click(`#rollout-actions button[data-action="${action}"]`);
  await page.waitForSelector(`#rollout-result[data-action="${action}"]`, { timeout: 30000 });
  await page.waitForSelector('body[data-ready="1"]');
  return page.locator('#rollout-result');
}

// The hub's audit log lines of rollout actions.
function rolloutAudit(dataDir) {
  return readFileSync(join(dataDir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((l) => l.event.startsWith('rollout_'));
}

async function main() {
  const { base, dataDir } = await serveRegistryHub(s, args, {
    tokens: TOKENS,
    sites: SITES,
    release: [`rollout: {canary: [${CANARY}], percent: [50], soak_s: 3600}`],
    seedArgs: ['--installs'],
  });
  const api = (path) => getApi(base, path, TOKENS.acme);
  const { page, outside, pageErrors } = await openPage(s, args.web, base);
  const { ready, text } = reader(page);
  await signIn(page, base, TOKENS.acme);
  await ready('/');

  // ---- the model-version map -------------------------------------------------------------------
  await page.click('nav a[data-nav="rollouts"]');
  await ready('/rollouts');
  const installs = await api('installs');
  assert.deepEqual(installs.sites.map((x) => x.site_id).sort(), [...SITES].sort(), 'the six sites of acme');
  const cells = await checkVersionMap(page, installs);
  // What the seeded fleet runs: plant-north mid-upgrade (its nodes on v3 and v4, v4 shadowing
  // v3), rig-9 loading v5 (not serving yet), farm-2 known from its bundle event alone.
  assert.deepEqual(cells.get('plant-north/pump'), { serving: '3,4', shadow: '4' });
  assert.deepEqual(cells.get('plant-south/pump'), { serving: '3', shadow: '4' });
  assert.deepEqual(cells.get('rig-9/pump'), { serving: '4', shadow: '' });
  assert.deepEqual(cells.get('farm-2/pump'), { serving: '3', shadow: '' });
  assert.equal(installs.sites.find((x) => x.site_id === 'farm-2').nodes[0].source, 'events');
  assert.deepEqual(cells.get('plant-north/fan'), { serving: '3', shadow: '' });
  assert.equal(await page.locator('#version-map td[data-model="fan"] .version-chip').count(), 1, 'fan runs only at plant-north');
  await page.locator('#version-map-box').screenshot({ path: join(out, 'version-map.png') });
  step(s, 'the version map shows what /api/v1/installs says each site serves and shadows, coloured by version as its legend says');

  // ---- approving v5 makes its rollout ---------------------------------------------------------------
  await page.goto(`${base}/#/models/pump`);
  await ready('/models/pump');
  assert.equal(await page.locator('#versions-table a.rollout-link').count(), 0, 'no rollout before the approval');
  await page.click('#versions-table tr[data-version="5"] button[data-action="approve"]');
  await page.waitForSelector('#action-result.ok');
  const list = await api('rollouts');
  assert.deepEqual(list.rollouts.map((r) => [r.model, r.model_version, r.state]), [['pump', 5, 'rolling']]);
  let r = await api('rollouts/pump/5');
  assert.equal(r.state, 'rolling');
  assert.deepEqual(r.plan.canary, [CANARY]);
  assert.deepEqual(r.plan.percent, [50]);
  assert.equal(r.plan.soak_s, 3600);
  assert.deepEqual(r.waves.map((w) => w.name), ['canary', '50%', 'all']);
  assert.deepEqual(r.waves[0].sites, [CANARY]);
  assert.deepEqual(r.waves.flatMap((w) => w.sites).sort(), [...SITES].sort(), 'every site in one wave');
  assert.deepEqual(r.waves.map((w) => w.gate), ['installing', 'pending', 'pending'], 'the canary waits for its site');
  assert.deepEqual(r.sites.filter((x) => x.status === 'offered').map((x) => x.site_id), [CANARY]);
  assert.equal(r.history[0].action, 'created');
  // The registry links the bundled v5 to its rollout (v3 and v4 were released before rollouts).
  const link = '#versions-table tr[data-version="5"] a.rollout-link';
  assert.equal(await page.locator(link).getAttribute('href'), '#/rollouts/pump/5');
  assert.equal(await page.locator('#versions-table a.rollout-link').count(), 1);
  step(s, 'approving v5 on the registry page makes its rollout in 3 waves over the 6 sites, linked from the registry');

  // ---- the list and the map show its progress ---------------------------------------------------------
  await page.click('nav a[data-nav="rollouts"]');
  await ready('/rollouts');
  const [now, detail] = await settled(page, '/rollouts', () => Promise.all([api('rollouts'), api('rollouts/pump/5')]));
  const summary = now.rollouts[0];
  const listRow = '#rollouts-table tr[data-rollout="pump/5"]';
  assert.equal(await text(`${listRow} [data-k="state"]`), summary.state);
  assert.equal(await text(`${listRow} [data-k="wave"]`), `wave ${summary.current_wave} of ${summary.waves}`);
  for (const k of ['total', 'offered', 'installed', 'failed', 'rolled_back']) {
    assert.equal(number(await text(`${listRow} [data-k="${k}"]`)), summary.sites[k], `list ${k}`);
  }
  assert.equal(await text('#version-map th[data-model="pump"] [data-k="rollout-progress"]'),
    `rollout v5 rolling: ${summary.sites.installed} of ${summary.sites.total} installed, ` +
    `wave ${summary.current_wave} (${detail.waves[summary.current_wave].name}) of ${summary.waves}`);
  for (const x of detail.sites) {
    assert.equal(await page.locator(`#version-map tr[data-site="${x.site_id}"] td[data-model="pump"]`).getAttribute('data-rollout-status'),
      x.status, `${x.site_id} on the map`);
  }
  await checkVersionMap(page, await api('installs'));
  await page.screenshot({ path: join(out, 'rollouts-active.png'), fullPage: true });
  step(s, 'the rollouts list and the version map show the rollout\'s progress as the API says');

  // ---- the rollout's page ------------------------------------------------------------------------------
  await page.click(`${listRow} [data-k="rollout"] a`);
  await ready('/rollouts/pump/5');
  const one = () => api('rollouts/pump/5');
  await checkRolloutPage(page, await settled(page, '/rollouts/pump/5', one));
  await page.screenshot({ path: join(out, 'rollout.png'), fullPage: true });
  step(s, 'the rollout page shows the API\'s state, plan, waves and gates, sites and history');

  // Pause, then resume: each changes the state in the API and on the page, and is audited.
  let result = await press(page, 'pause');
  assert.equal(await result.getAttribute('class'), 'ok');
  assert.equal(await result.innerText(), 'Pause: the rollout is paused.');
  r = await settled(page, '/rollouts/pump/5', one);
  assert.equal(r.state, 'paused');
  await checkRolloutPage(page, r);
  assert.deepEqual(r.history.at(-1).action, 'pause');
  assert.equal(r.history.at(-1).operator, 'acme-operator');
  result = await press(page, 'resume');
  assert.equal(await result.innerText(), 'Resume: the rollout is rolling.');
  r = await settled(page, '/rollouts/pump/5', one);
  assert.equal(r.state, 'rolling');
  await checkRolloutPage(page, r);
  step(s, 'Pause and Resume change the rollout\'s state in the API and on the page');

  // A second operator's view of the rollout, drawn now (rolling) and not again until used.
  const { context: other, page: page2 } = await openOtherPage(s, base, TOKENS.acme, pageErrors);
  await page2.goto(`${base}/#/rollouts/pump/5`);
  await page2.waitForSelector('body[data-ready="1"][data-route="/rollouts/pump/5"]');

  // Promote now: every wave opens, gates skipped.
  result = await press(page, 'promote');
  assert.equal(await result.innerText(), 'Promote now: the rollout is rolling.');
  r = await settled(page, '/rollouts/pump/5', one);
  assert.ok(r.waves.every((w) => w.opened_ms !== null), 'every wave opened');
  assert.ok(r.sites.every((x) => x.status !== 'pending'), 'every site offered');
  await checkRolloutPage(page, r);
  step(s, 'Promote now opens every wave, in the API and on the page');

  // Abort asks first: dismissed, nothing happens; accepted, the rollout is aborted.
  const before = rolloutAudit(dataDir).length;
  page.once('dialog', (dialog) => void dialog.dismiss());
  await page.click('#rollout-actions button[data-action="abort"]');
  assert.equal((await api('rollouts/pump/5')).state, 'rolling', 'a dismissed abort does nothing');
  assert.equal(rolloutAudit(dataDir).length, before, 'and sends nothing');
  let asked = '';
  page.once('dialog', (dialog) => {
    asked = dialog.message();
    void dialog.accept();
  });
  result = await press(page, 'abort');
  assert.match(asked, /^Abort the rollout of pump v5\?/);
  assert.equal(await result.innerText(), 'Abort: the rollout is aborted.');
  r = await settled(page, '/rollouts/pump/5', one);
  assert.equal(r.state, 'aborted');
  await checkRolloutPage(page, r);
  await page.screenshot({ path: join(out, 'rollout-aborted.png'), fullPage: true });
  step(s, 'Abort asks first, and aborts the rollout only when the operator confirms');

  // The second operator's page still shows it rolling: Pause is refused, with the reason, and
  // the page is drawn again as the rollout is now.
  assert.equal(await page2.locator('#rollout-facts [data-k="state"]').innerText(), 'rolling');
  const refused = await press(page2, 'pause');
  assert.equal(await refused.getAttribute('class'), 'error');
  assert.equal(await refused.getAttribute('data-reason'), 'rollout_finished');
  assert.match(await refused.innerText(), /^Pause refused: .*rollout_finished/);
  assert.equal(await page2.locator('#rollout-facts [data-k="state"]').innerText(), 'aborted');
  await page2.screenshot({ path: join(out, 'rollout-refused.png'), fullPage: true });
  await other.close();
  step(s, 'an action the hub refuses shows the refusal\'s reason (409 rollout_finished)');

  // Every action, the refusal included, is in the hub's audit log with the operator's name.
  assert.deepEqual(rolloutAudit(dataDir).map((l) => [l.event, l.operator, l.tenant, l.model, l.version, l.outcome]), [
    ['rollout_pause', 'acme-operator', 'acme', 'pump', 5, 'paused'],
    ['rollout_resume', 'acme-operator', 'acme', 'pump', 5, 'rolling'],
    ['rollout_promote', 'acme-operator', 'acme', 'pump', 5, 'rolling'],
    ['rollout_abort', 'acme-operator', 'acme', 'pump', 5, 'aborted'],
    ['rollout_pause', 'acme-operator', 'acme', 'pump', 5, 'rollout_finished'],
  ]);
  assert.deepEqual(r.history.filter((h) => h.operator !== null).map((h) => [h.action, h.operator]), [
    ['pause', 'acme-operator'], ['resume', 'acme-operator'], ['promote', 'acme-operator'], ['abort', 'acme-operator'],
  ]);
  // Aborted, the rollout no longer shows on the map.
  await page.click('nav a[data-nav="rollouts"]');
  await ready('/rollouts');
  assert.equal(await text('#rollouts-table tr[data-rollout="pump/5"] [data-k="state"]'), 'aborted');
  assert.equal(await page.locator('#version-map [data-k="rollout-progress"]').count(), 0);
  step(s, 'each action, the refusal too, is in the hub\'s audit log with the operator\'s name');

  assert.deepEqual(outside, [], 'the pages load nothing from outside the hub');
  assert.deepEqual(pageErrors, [], 'no script errors');
  step(s, 'no request left the hub and no script error happened');
  await page.screenshot({ path: join(out, 'rollouts.png'), fullPage: true });
  writeFileSync(join(out, 'README.txt'),
    'Screenshots from tests/web/dashboard_rollouts.test.mjs: version-map.png (the fleet\'s model-version map), ' +
    'rollouts-active.png (the list and the map with a rollout under way), rollout.png (one rollout), ' +
    'rollout-aborted.png, rollout-refused.png (an action the hub refused), rollouts.png (the page at the end)\n');
  console.log(`# screenshots in ${out}`);
}

await runTest(s, main);
