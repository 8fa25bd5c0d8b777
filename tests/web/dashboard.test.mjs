// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core.
// Seeds a hub store with demo-like data (seed_hub), serves the built dashboard and its query
// API on a loopback port (dashboard_server), then checks that
//   - the fleet page lists exactly the operator's tenant's sites with the API's numbers, and
//     the silent site says "last heard N days ago", never "ok";
//   - following a site shows the API's numbers, and its charts render (coloured pixels of
//     the series counted in screenshots of the chart regions);
//   - filtering records shows exactly the records the API returns for the same filters;
//   - the audit trail and training data pages match the API;
//   - another tenant's site is not found, and the page loads nothing from outside the hub.
// Screenshots go to --out (the test's build folder).
//
//   node dashboard.test.mjs --seed BIN --server BIN --web WEB_DIR --out DIR [--hub OUTPOST]
//
// With --hub, the pages are served by `outpost hub serve` (its operator listener) instead of
// the test server.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { countColoured, decodePng } from './png.mjs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['seed', 'web', 'out']) {
  if (!args[k]) throw new Error(`missing --${k}`);
}
if (!args.server && !args.hub) throw new Error('missing --server or --hub');
const require = createRequire(resolve(args.web, 'package.json'));
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.OUTPOST_CHROMIUM || '/usr/bin/chromium';
// Bearer tokens of 128 bits or more (22 characters at least), as the hub requires.
const TOKENS = { acme: 'tok-acme-7f3a-5c1d9e0b2a64f873', globex: 'tok-globex-91c2-e4b07a3d65f1c298' };
const out = args.out;
mkdirSync(out, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'outpost-web-'));
let server = null;
let browser = null;
let passed = 0;

// The operator tokens file the hub reads (hub/FORMAT.md section 6): only each token's SHA-256,
// with a name and a tenant, mode 0600.
function writeTokensFile(path, tokens) {
  const lines = ['operators:'];
  for (const [tenant, token] of Object.entries(tokens)) {
    lines.push(`  - name: ${tenant}-operator`, `    tenant: ${tenant}`,
      `    token_sha256: ${createHash('sha256').update(token).digest('hex')}`);
  }
  writeFileSync(path, `${lines.join('\n')}\n`, { mode: 0o600 });
}

// Signs in as the dashboard's users do: the page's 401 shows a form, the token is typed in
// (never put in a URL, which the hub refuses).
async function signIn(page, base, token) {
  await page.goto(`${base}/#/`);
  await page.waitForSelector('form.login #token', { timeout: 30000 });
  await page.fill('form.login #token', token);
  await page.click('form.login button[type="submit"]');
}

function step(name) {
  passed += 1;
  console.log(`ok ${passed} - ${name}`);
}

function cleanup() {
  if (server && server.exitCode === null) server.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}

async function main() {
  assert.ok(existsSync(join(args.web, 'dist', 'index.html')),
    'web/dist is not built: run scripts/setup.sh (npm run build in web/)');
  const storeUrl = `sqlite:${join(work, 'hub.db')}`;
  const seeded = spawnSync(args.seed, ['--store', storeUrl], { encoding: 'utf8' });
  assert.equal(seeded.status, 0, `seed_hub failed: ${seeded.stderr}`);
  console.log(`# ${seeded.stdout.trim()}`);

  const tokensFile = join(work, 'operators.yaml');
  writeTokensFile(tokensFile, TOKENS);
  const tokens = ['--operator-tokens-file', tokensFile];
  // `outpost hub serve` itself when given (--hub), else the test server around the dashboard.
  const [command, commandArgs, listening] = args.hub
    ? [args.hub, ['hub', 'serve', '--data-dir', join(work, 'hub'), '--store', storeUrl,
      '--listen', '127.0.0.1:0', '--operator-listen', '127.0.0.1:0', '--web-dir', join(args.web, 'dist'),
      ...tokens], /operator listening on (http:\/\/\S+)/]
    : [args.server, ['--store', storeUrl, '--assets', join(args.web, 'dist'), ...tokens],
      /listening on (http:\/\/\S+|\S+)/];
  server = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
  const base = await new Promise((resolve, reject) => {
    let text = '';
    server.stdout.on('data', (chunk) => {
      text += chunk;
      const m = text.match(listening);
      if (m) resolve(m[1].startsWith('http') ? m[1] : `http://${m[1]}`);
    });
    server.on('exit', (code) => reject(new Error(`${command} exited with ${code}`)));
  });
  console.log(`# serving on ${base}`);

  const api = async (path, tenant = 'acme') => {
    const response = await fetch(`${base}/api/v1/${path}`, {
      headers: { Authorization: `Bearer ${TOKENS[tenant]}` },
    });
    assert.equal(response.status, 200, `GET ${path}: ${response.status}`);
    return response.json();
  };

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', // CI runs as root
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--disable-extensions',
      '--disable-domain-reliability',
      '--disable-client-side-phishing-detection',
      '--metrics-recording-only',
      '--no-first-run',
      '--no-default-browser-check',
      '--no-pings',
      '--safebrowsing-disable-auto-update',
      '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication',
      '--disable-gpu',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const outside = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith('data:')) outside.push(request.url());
  });
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));

  const ready = async (route) => {
    await page.waitForSelector(`body[data-ready="1"][data-route="${route}"]`, { timeout: 30000 });
  };
  const text = async (selector) => (await page.locator(selector).first().innerText()).trim();
  const number = (s) => Number(s.replace(/,/g, ''));
  const days = (d) => (d === null ? '—' : `${d.toFixed(1)} d`);
  const modelsText = (site) => [...new Set(site.models.map((m) => `${m.name} v${m.version}`))].sort().join(', ') || '—';

  // ---- the fleet page --------------------------------------------------------------------
  // A token in the URL is refused before anything is served, even the right one.
  const inUrl = await fetch(`${base}/?token=${TOKENS.acme}`);
  assert.equal(inUrl.status, 400, 'a token in the URL is refused');
  assert.equal((await inUrl.json()).reason, 'token_in_url');
  await signIn(page, base, TOKENS.acme);
  await ready('/');
  const fleet = await api('sites');
  assert.ok(fleet.sites.length >= 4, 'the seeded tenant has its sites');
  const rows = await page.locator('#fleet-table tbody tr').count();
  assert.equal(rows, fleet.sites.length, 'one row per site of the tenant');
  for (const site of fleet.sites) {
    const row = `#fleet-table tr[data-site="${site.site_id}"]`;
    assert.equal(await text(`${row} [data-k="region"]`), site.region);
    assert.equal(await text(`${row} [data-k="health"]`), site.health, `${site.site_id} health`);
    assert.equal(await text(`${row} [data-k="health_text"]`), site.health_text, `${site.site_id} status`);
    assert.equal(number(await text(`${row} [data-k="backlog_records"]`)), site.backlog_records);
    assert.equal(number(await text(`${row} [data-k="records"]`)), site.records);
    assert.equal(await text(`${row} [data-k="autonomy_days_left"]`), days(site.autonomy_days_left));
    assert.equal(await text(`${row} [data-k="models"]`), modelsText(site));
    assert.equal(await page.locator(`${row} [data-k="last_contact_ms"]`).getAttribute('data-ms'),
      String(site.last_contact_ms ?? ''));
    assert.equal(await page.locator(`${row} [data-k="newest_record_ms"]`).getAttribute('data-ms'),
      String(site.newest_record_ms ?? ''));
  }
  for (const h of Object.keys(fleet.counts)) {
    assert.equal(number(await text(`[data-count="${h}"]`)), fleet.counts[h], `count of ${h}`);
  }
  const silent = fleet.sites.find((s) => s.site_id === 'ship-atlantic');
  assert.equal(silent.health, 'silent');
  assert.match(silent.health_text, /^last heard 4 days ago$/);
  assert.equal(await text('#fleet-table tr[data-site="ship-atlantic"] [data-k="health"]'), 'silent');
  assert.doesNotMatch(await text('#fleet-table tr[data-site="ship-atlantic"]'), /\bok\b/);
  assert.equal(await page.locator('#fleet-table tr[data-site="depot-1"]').count(), 0,
    'another tenant\'s sites are not listed');
  await page.screenshot({ path: join(out, 'fleet.png'), fullPage: true });
  step('fleet page shows the API\'s numbers; the silent site says "last heard 4 days ago"');

  // ---- the silent site's own page is as honest -----------------------------------------------
  await page.goto(`${base}/#/site/ship-atlantic`);
  await ready('/site/ship-atlantic');
  assert.equal(await text('h1 [data-k="health"]'), 'silent');
  assert.equal(await text('#site-facts [data-k="health_text"]'), 'last heard 4 days ago');
  await page.goto(`${base}/#/`);
  await ready('/');
  step('the silent site\'s page says "last heard 4 days ago" too');

  // ---- follow a site -----------------------------------------------------------------------
  await page.click('#fleet-table tr[data-site="mine-andes"] a.site-link');
  await ready('/site/mine-andes');
  const site = await api('sites/mine-andes');
  for (const k of ['region', 'health_text']) assert.equal(await text(`#site-facts [data-k="${k}"]`), site[k]);
  assert.equal(number(await text('#site-facts [data-k="backlog_records"]')), site.backlog_records);
  assert.equal(number(await text('#site-facts [data-k="records"]')), site.records);
  assert.equal(await text('#site-facts [data-k="autonomy_days_left"]'), days(site.autonomy_days_left));
  assert.equal(await text('#site-facts [data-k="models"]'), modelsText(site));

  const totals = page.locator('#series-totals');
  const q = await totals.evaluate((t) => ({ since: t.dataset.since, until: t.dataset.until, bucket: t.dataset.bucket }));
  const series = await api(`sites/mine-andes/series?since=${q.since}&until=${q.until}&bucket=${q.bucket}`);
  assert.ok(series.models.length >= 1, 'the site has series');
  for (const m of series.models) {
    const row = `#series-totals tr[data-model="${m.model}"]`;
    const sum = (f) => m.buckets.reduce((a, b) => a + b[f], 0);
    assert.equal(number(await text(`${row} [data-k="rows"]`)), sum('rows'), `${m.model} rows`);
    assert.equal(number(await text(`${row} [data-k="anomalies"]`)), sum('anomalies'));
    assert.equal(number(await text(`${row} [data-k="anomaly_records"]`)), sum('anomaly_records'));
    assert.equal(number(await text(`${row} [data-k="drift_records"]`)), sum('drift_records'));
    assert.equal(number(await text(`${row} [data-k="hard_examples"]`)), sum('hard_examples'));
    const psis = m.drift.map((d) => d.psi);
    assert.ok(psis.length > 0, 'the drifting site has drift records');
    assert.equal(await text(`${row} [data-k="max_psi"]`), Math.max(...psis).toFixed(3));
  }
  const driftRows = await page.locator('#drift-table tbody tr').count();
  assert.equal(driftRows, series.models.reduce((a, m) => a + m.drift.length, 0));

  const aggregates = await api('aggregates?site=mine-andes');
  for (const a of aggregates.aggregates) {
    const row = `#aggregates-table tr[data-agg="${a.model}:${a.version}"]`;
    for (const k of ['minutes', 'rows', 'anomalies', 'hard_examples']) {
      assert.equal(number(await text(`${row} [data-k="${k}"]`)), a[k], `aggregate ${k}`);
    }
  }

  const audit = await api('sites/mine-andes/audit?limit=1000');
  for (const [d, n] of Object.entries(audit.decisions)) {
    assert.equal(number(await text(`[data-decision="${d}"]`)), n, `audit ${d}`);
  }
  assert.ok(audit.decisions.withheld > 0, 'the audit trail shows withheld records');
  assert.equal(await page.locator('#audit-table tbody tr').count(), Math.min(50, audit.entries.length));

  // The charts render: their regions hold the series' coloured strokes and points.
  for (const id of ['chart-anomaly', 'chart-drift']) {
    const canvas = page.locator(`#${id} canvas`);
    assert.equal(await canvas.count(), 1, `${id} has a canvas`);
    const shot = join(out, `${id}.png`);
    await canvas.screenshot({ path: shot });
    const image = decodePng(readFileSync(shot));
    const coloured = countColoured(image);
    console.log(`# ${id}: ${image.width}x${image.height}, ${coloured} coloured pixels`);
    assert.ok(coloured > 400, `${id} drew its series (${coloured} coloured pixels)`);
  }
  // The top of the page: facts, nodes, both charts and the totals under them.
  await page.screenshot({ path: join(out, 'site.png'), fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1500 } });
  step('a site page shows the API\'s numbers and its anomaly-rate and drift charts render');

  // ---- filter records on the site page ------------------------------------------------------
  await page.selectOption('#site-records #filter-kind', 'drift');
  await page.click('#site-records #filter-apply');
  await page.waitForFunction(() => !document.querySelector('#site-records')?.hasAttribute('data-loading'));
  await page.waitForSelector('#site-records #records-status[data-shown]');
  const drift = await api('records?site=mine-andes&kind=drift&limit=25');
  const shownDrift = await page.locator('#site-records #records-table tbody tr').evaluateAll(
    (trs) => trs.map((tr) => [Number(tr.dataset.id), tr.dataset.kind]));
  assert.deepEqual(shownDrift.map((r) => r[0]), drift.records.map((r) => r.id));
  assert.ok(shownDrift.length > 0 && shownDrift.every((r) => r[1] === 'drift'));
  step('filtering a site\'s records by kind shows exactly the API\'s records');

  // ---- the records browser with several filters --------------------------------------------
  await page.click('nav a[data-nav="records"]');
  await ready('/records');
  await page.selectOption('#filter-site', 'plant-north');
  await page.selectOption('#filter-kind', 'anomaly');
  await page.selectOption('#filter-model', 'fan');
  await page.selectOption('#filter-limit', '25');
  await page.click('#filter-apply');
  await page.waitForFunction(() => document.querySelector('#records-status')?.textContent?.startsWith('25 '));
  let expected = await api('records?site=plant-north&kind=anomaly&model=fan&limit=25');
  let shown = await page.locator('#records-table tbody tr').evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.id)));
  assert.deepEqual(shown, expected.records.map((r) => r.id));
  for (const cell of await page.locator('#records-table tbody [data-k="stream"]').allInnerTexts()) assert.equal(cell, 'fan');
  // The cursor: "More" appends the next page, as the API's next_after gives it.
  assert.notEqual(expected.next_after, null);
  await page.click('#records-more');
  await page.waitForFunction(() => document.querySelector('#records-status')?.textContent?.startsWith('50 '));
  const next = await api(`records?site=plant-north&kind=anomaly&model=fan&limit=25&after=${expected.next_after}`);
  shown = await page.locator('#records-table tbody tr').evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.id)));
  assert.deepEqual(shown, [...expected.records, ...next.records].map((r) => r.id));
  const firstUnfiltered = shown[0];
  // A time range (the inputs are UTC minutes): since the 30th record's minute, until a day later.
  const pivot = next.records[4].created_ms;
  const sinceMs = Math.floor(pivot / 60000) * 60000;
  const untilMs = sinceMs + 86400000;
  const minute = (ms) => new Date(ms).toISOString().slice(0, 16);
  await page.fill('#filter-since', minute(sinceMs));
  await page.fill('#filter-until', minute(untilMs));
  await page.click('#filter-apply');
  await page.waitForFunction(() => !document.querySelector('#records-browser')?.hasAttribute('data-loading'));
  expected = await api(`records?site=plant-north&kind=anomaly&model=fan&limit=25&since=${sinceMs}&until=${untilMs}`);
  shown = await page.locator('#records-table tbody tr').evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.id)));
  assert.deepEqual(shown, expected.records.map((r) => r.id));
  assert.ok(shown.length > 0, 'the range holds records');
  assert.ok(!shown.includes(firstUnfiltered), 'records before the range are gone');
  for (const ms of await page.locator('#records-table tbody [data-k="created_ms"]').evaluateAll(
    (tds) => tds.map((td) => Number(td.dataset.ms)))) {
    assert.ok(ms >= sinceMs && ms < untilMs, 'records lie within the range');
  }
  await page.screenshot({ path: join(out, 'records.png'), fullPage: true });
  step('the records browser filters by site, kind, model and time range, and pages with the cursor');

  // ---- training data ----------------------------------------------------------------------------
  await page.click('nav a[data-nav="training"]');
  await ready('/training');
  const training = await api('training');
  assert.ok(training.models.length >= 2);
  for (const m of training.models) {
    const row = `#training-table tr.model-row[data-model="${m.model}"]`;
    for (const k of ['feedback', 'labelled', 'hard_examples', 'sites']) {
      assert.equal(number(await text(`${row} [data-k="${k}"]`)), m[k], `${m.model} ${k}`);
    }
    assert.equal(await text(`${row} [data-k="registry"]`),
      m.registry.map((r) => `v${r.version} ${r.state}`).join(', ') || '—');
    for (const bySite of m.by_site) {
      const siteRow = `#training-table tr.site-row[data-model="${m.model}"][data-site="${bySite.site_id}"]`;
      assert.equal(number(await text(`${siteRow} [data-k="labelled"]`)), bySite.labelled);
      assert.equal(number(await text(`${siteRow} [data-k="hard_examples"]`)), bySite.hard_examples);
    }
  }
  await page.screenshot({ path: join(out, 'training.png'), fullPage: true });
  step('the training data page shows the API\'s counts');

  // ---- another tenant -----------------------------------------------------------------------------
  const other = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page2 = await other.newPage();
  await signIn(page2, base, TOKENS.globex);
  await page2.waitForSelector('body[data-ready="1"][data-route="/"]');
  const globexSites = await page2.locator('#fleet-table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.site));
  assert.deepEqual(globexSites, (await api('sites', 'globex')).sites.map((s) => s.site_id));
  assert.ok(!globexSites.includes('mine-andes'));
  await page2.goto(`${base}/#/site/mine-andes`);
  await page2.waitForSelector('body[data-ready="1"][data-route="/site/mine-andes"]');
  assert.match(await page2.locator('[data-k="error"]').innerText(), /site_not_found/);
  const noToken = await fetch(`${base}/api/v1/sites`);
  assert.equal(noToken.status, 401);
  await other.close();
  step('another tenant sees only its sites; a site of acme is not found for it');

  assert.deepEqual(outside, [], 'the pages load nothing from outside the hub');
  assert.deepEqual(pageErrors, [], 'no script errors');
  step('no request left the hub and no script error happened');
  writeFileSync(join(out, 'README.txt'),
    'Screenshots of the dashboard from tests/web/dashboard.test.mjs: fleet.png, site.png, ' +
    'chart-anomaly.png, chart-drift.png, records.png, training.png\n');
  console.log(`# screenshots in ${out}`);
}

try {
  await main();
  console.log(`${passed} passed, 0 failed`);
} catch (error) {
  console.error(error);
  console.log(`${passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  cleanup();
}
