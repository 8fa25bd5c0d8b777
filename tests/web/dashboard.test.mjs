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
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkAggregatesAndAudit, checkFleetRow, checkSeriesTotals, checkSiteFacts, checkTrainingTable,
  chartPixels, filterSiteRecords, getApi, number, openPage, reader, readArgs, runTest, session,
  signIn, startServer, step, writeTokensFile,
} from './browser.mjs';

const args = readArgs(['seed', 'web', 'out']);
if (!args.server && !args.hub) throw new Error('missing --server or --hub');

// Bearer tokens of 128 bits or more (22 characters at least), as the hub requires.
const TOKENS = { acme: 'tok-acme-7f3a-5c1d9e0b2a64f873', globex: 'tok-globex-91c2-e4b07a3d65f1c298' };
const out = args.out;
mkdirSync(out, { recursive: true });
const s = session('outpost-web-');
const work = s.work;

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
  const base = await startServer(s, command, commandArgs, listening);
  console.log(`# serving on ${base}`);

  const api = (path, tenant = 'acme') => getApi(base, path, TOKENS[tenant]);
  const { page, outside, pageErrors } = await openPage(s, args.web, base);
  const { ready, text } = reader(page);

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
    await checkFleetRow(page, site);
    assert.equal(await text(`#fleet-table tr[data-site="${site.site_id}"] [data-k="health_text"]`),
      site.health_text, `${site.site_id} status`);
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
  step(s, 'fleet page shows the API\'s numbers; the silent site says "last heard 4 days ago"');

  // ---- the fleet a page at a time, and filtered ------------------------------------------
  // The fleet page drawn for the address the browser shows now.
  const fleetShown = () => page.waitForFunction(() => document.body.dataset.ready === '1' &&
    document.querySelector('#fleet-pager')?.dataset.hash === window.location.hash);
  const fleetIds = () => page.locator('#fleet-table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.site));
  // Pages of 2: "Next page" follows the API's cursor until every site was shown once.
  await page.goto(`${base}/#/?limit=2`);
  await fleetShown();
  const paged = [];
  for (let i = 0; i < 20; i++) {
    const ids = await fleetIds();
    assert.ok(ids.length <= 2, 'a page holds at most its limit');
    const after = paged.length ? `&after=${paged[paged.length - 1]}` : '';
    assert.deepEqual(ids, (await api(`sites?limit=2${after}`)).sites.map((x) => x.site_id), 'a page is the API\'s page');
    paged.push(...ids);
    if (await page.locator('#fleet-next').count() === 0) break;
    await page.click('#fleet-next');
    await fleetShown();
  }
  assert.deepEqual(paged, fleet.sites.map((x) => x.site_id), 'the pages together are the fleet, once each');
  // A count filters the table by health; the counts stay the fleet's.
  await page.goto(`${base}/#/`);
  await fleetShown();
  await page.click('a.count[data-filter="silent"]');
  await fleetShown();
  assert.equal(await page.locator('a.count.selected[data-filter="silent"]').count(), 1);
  assert.deepEqual(await fleetIds(), fleet.sites.filter((x) => x.health === 'silent').map((x) => x.site_id));
  assert.equal(number(await text('[data-count="ok"]')), fleet.counts.ok);
  // A prefix finds sites by id.
  await page.goto(`${base}/#/`);
  await fleetShown();
  await page.fill('#fleet-prefix', 'mine-');
  await page.press('#fleet-prefix', 'Enter');
  await page.waitForFunction(() => window.location.hash.includes('prefix=mine-'));
  await fleetShown();
  const mines = await fleetIds();
  assert.deepEqual(mines, fleet.sites.filter((x) => x.site_id.startsWith('mine-')).map((x) => x.site_id));
  assert.ok(mines.length > 0, 'the seeded fleet has a mine');
  await page.goto(`${base}/#/`);
  await fleetShown();
  step(s, 'the fleet pages with the API\'s cursor, and filters by health and by site id');

  // ---- the silent site's own page is as honest -----------------------------------------------
  await page.goto(`${base}/#/site/ship-atlantic`);
  await ready('/site/ship-atlantic');
  assert.equal(await text('h1 [data-k="health"]'), 'silent');
  assert.equal(await text('#site-facts [data-k="health_text"]'), 'last heard 4 days ago');
  await page.goto(`${base}/#/`);
  await ready('/');
  step(s, 'the silent site\'s page says "last heard 4 days ago" too');

  // ---- follow a site -----------------------------------------------------------------------
  await page.click('#fleet-table tr[data-site="mine-andes"] a.site-link');
  await ready('/site/mine-andes');
  const site = await api('sites/mine-andes');
  await checkSiteFacts(page, site, ['region', 'health_text']);

  const totals = page.locator('#series-totals');
  const q = await totals.evaluate((t) => ({ since: t.dataset.since, until: t.dataset.until, bucket: t.dataset.bucket }));
  const series = await api(`sites/mine-andes/series?since=${q.since}&until=${q.until}&bucket=${q.bucket}`);
  assert.ok(series.models.length >= 1, 'the site has series');
  for (const m of series.models) {
    assert.ok(m.drift.length > 0, 'the drifting site has drift records');
    await checkSeriesTotals(page, m);
  }
  const driftRows = await page.locator('#drift-table tbody tr').count();
  assert.equal(driftRows, series.models.reduce((a, m) => a + m.drift.length, 0));

  const aggregates = await api('aggregates?site=mine-andes');
  const audit = await api('sites/mine-andes/audit?limit=1000');
  await checkAggregatesAndAudit(page, aggregates, audit);
  assert.ok(audit.decisions.withheld > 0, 'the audit trail shows withheld records');

  // The charts render: their regions hold the series' coloured strokes and points.
  for (const id of ['chart-anomaly', 'chart-drift']) {
    const { width, height, coloured } = await chartPixels(page, id, join(out, `${id}.png`));
    console.log(`# ${id}: ${width}x${height}, ${coloured} coloured pixels`);
    assert.ok(coloured > 400, `${id} drew its series (${coloured} coloured pixels)`);
  }
  // The top of the page: facts, nodes, both charts and the totals under them.
  await page.screenshot({ path: join(out, 'site.png'), fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1500 } });
  step(s, 'a site page shows the API\'s numbers and its anomaly-rate and drift charts render');

  // ---- filter records on the site page ------------------------------------------------------
  const shownDrift = await filterSiteRecords(page, 'drift');
  const drift = await api('records?site=mine-andes&kind=drift&limit=25');
  assert.deepEqual(shownDrift.map((r) => r[0]), drift.records.map((r) => r.id));
  assert.ok(shownDrift.length > 0 && shownDrift.every((r) => r[1] === 'drift'));
  step(s, 'filtering a site\'s records by kind shows exactly the API\'s records');

  // ---- the records browser with several filters --------------------------------------------
  await page.click('nav a[data-nav="records"]');
  await ready('/records');
  await page.fill('#filter-site', 'plant-north');
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
  step(s, 'the records browser filters by site, kind, model and time range, and pages with the cursor');

  // ---- training data ----------------------------------------------------------------------------
  await page.click('nav a[data-nav="training"]');
  await ready('/training');
  const training = await api('training');
  assert.ok(training.models.length >= 2);
  await checkTrainingTable(page, training);
  await page.screenshot({ path: join(out, 'training.png'), fullPage: true });
  step(s, 'the training data page shows the API\'s counts');

  // ---- another tenant -----------------------------------------------------------------------------
  const other = await s.browser.newContext({ viewport: { width: 1280, height: 900 } });
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
  step(s, 'another tenant sees only its sites; a site of acme is not found for it');

  assert.deepEqual(outside, [], 'the pages load nothing from outside the hub');
  assert.deepEqual(pageErrors, [], 'no script errors');
  step(s, 'no request left the hub and no script error happened');
  writeFileSync(join(out, 'README.txt'),
    'Screenshots of the dashboard from tests/web/dashboard.test.mjs: fleet.png, site.png, ' +
    'chart-anomaly.png, chart-drift.png, records.png, training.png\n');
  console.log(`# screenshots in ${out}`);
}

await runTest(s, main);
