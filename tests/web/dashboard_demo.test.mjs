// The dashboard in a real browser on the demo's own data. Runs `outpost demo` into a fresh
// folder, serves the demo's hub store with `outpost hub serve` (the demo's hub data folder, the
// built web/dist, an operator token for the demo's tenant), drives Debian's chromium headless
// with playwright-core and checks that
//   - the fleet page lists exactly the demo's sites with the API's numbers (records, backlog,
//     health, models serving, autonomy), and these agree with the demo's --summary JSON where
//     it states them (records at the hub, their balance with what each site produced and still
//     holds, the version serving);
//   - each site page shows the API's numbers (facts, anomaly and drift totals of its series,
//     aggregates, audit decisions, its anomaly records filtered by kind) and its anomaly-rate and drift charts render (coloured
//     pixels of the series counted in screenshots of the chart regions);
//   - the training data page shows the API's counts, and each site's labelled readings are the
//     feedback the demo's operators gave;
//   - the insights page shows the API's numbers per site and, with fewer sites than the default
//     k = 3, withholds every fleet aggregate; the registry page (the hub served with the demo's
//     hub.yaml) shows the demo's versions with their metrics, ROC and calibration plots and
//     lineage, and the demo's approval is in the hub's audit log;
//   - the pages load nothing from outside the hub and raise no script error, and the hub
//     shuts down cleanly (exit 0 on SIGTERM).
// Screenshots go to --out (the test's build folder).
//
//   node dashboard_demo.test.mjs --outpost OUTPOST --web WEB_DIR --out DIR
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkAggregatesAndAudit, checkFleetRow, checkSeriesTotals, checkSiteFacts, checkTrainingTable,
  chartPixels, filterSiteRecords, getApi, modelsText, number, openPage, reader, readArgs, runTest,
  session, signIn, startServer, step, writeTokensFile,
} from './browser.mjs';
import { checkAnomaly, checkDrift, checkWithheld, fixed } from './insights_checks.mjs';

const args = readArgs(['outpost', 'web', 'out']);

// A bearer token of 128 bits or more (22 characters at least), as the hub requires.
const TOKEN = 'tok-webdemo-5d1e-8a27c4f90b3e61d2';
const out = args.out;
mkdirSync(out, { recursive: true });
const s = session('outpost-webdemo-');
const work = s.work;

// Runs a command to its end; resolves with its exit code and output.
function run(command, commandArgs, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function main() {
  assert.ok(existsSync(join(args.web, 'dist', 'index.html')),
    'web/dist is not built: run scripts/setup.sh (npm run build in web/)');

  // ---- the demo, into a folder that does not exist yet ------------------------------------
  const workdir = join(work, 'demo');
  const summaryPath = join(work, 'summary.json');
  const demo = await run(args.outpost, ['demo', '--workdir', workdir, '--summary', summaryPath], 240000);
  assert.equal(demo.code, 0, `outpost demo failed (${demo.code} ${demo.signal}):\n${demo.stdout}\n${demo.stderr}`);
  const summary = JSON.parse(readFileSync(summaryPath, 'utf8'));
  assert.equal(summary.v, 1, 'the summary format this test reads');
  assert.ok(summary.store.startsWith('sqlite:'), summary.store);
  assert.ok(summary.sites.length >= 2, 'the demo has its sites');
  console.log(`# demo: ${summary.sites.length} sites, tenant ${summary.tenant}, ${summary.seconds.toFixed(1)} s`);

  // ---- the demo's hub store served again, with the dashboard -------------------------------
  const hubDir = join(workdir, 'hub');
  // With the demo's hub config: its `retrain:` entry serves the registry's routes.
  const serveArgs = ['hub', 'serve', '--config', join(workdir, 'hub.yaml'), '--data-dir', hubDir, '--store', summary.store,
    '--listen', '127.0.0.1:0', '--operator-listen', '127.0.0.1:0',
    '--web-dir', join(args.web, 'dist'), '--operator-tokens-file', join(work, 'operators.yaml')];
  writeTokensFile(join(work, 'operators.yaml'), { [summary.tenant]: TOKEN });
  if (existsSync(join(workdir, 'policy.yaml'))) serveArgs.push('--policy', join(workdir, 'policy.yaml'));
  const base = await startServer(s, args.outpost, serveArgs, /operator listening on (http:\/\/\S+)/);
  console.log(`# serving the demo's hub store on ${base}`);

  const api = (path) => getApi(base, path, TOKEN);
  const { page, outside, pageErrors } = await openPage(s, args.web, base);
  const { ready, text } = reader(page);
  const demoSite = (id) => summary.sites.find((s) => s.site_id === id);

  // ---- the fleet page --------------------------------------------------------------------
  await signIn(page, base, TOKEN);
  await ready('/');
  const fleet = await api('sites');
  assert.deepEqual(fleet.sites.map((s) => s.site_id).sort(), summary.sites.map((s) => s.site_id).sort(),
    'the hub knows exactly the demo\'s sites');
  const rows = await page.locator('#fleet-table tbody tr').count();
  assert.equal(rows, fleet.sites.length, 'one row per site of the tenant');
  for (const site of fleet.sites) {
    const d = demoSite(site.site_id);
    // The page shows the API's numbers ...
    await checkFleetRow(page, site);
    // ... and the API's numbers are the demo's.
    assert.equal(site.records, d.at_hub, `${site.site_id}: records at the hub, as the demo counted them`);
    assert.ok(site.records > 0, `${site.site_id} delivered records`);
    // Every record a site produced is at the hub or accounted for at the site.
    assert.equal(site.records + d.held + d.evicted + d.quarantined + d.withheld, d.produced,
      `${site.site_id}: records at the hub + held + evicted + quarantined + withheld = produced`);
    // The backlog is what the site last reported; it cannot exceed what the site produced.
    assert.ok(site.backlog_records <= d.produced, `${site.site_id} backlog ${site.backlog_records}`);
    assert.notEqual(site.health, 'silent', `${site.site_id} was heard from seconds ago`);
    // The hub shows the versions the site last reported: the demo's version before or after its
    // install (the demo ends without waiting for the status that follows the install).
    for (const m of site.models) {
      assert.ok([d.serving_before, d.serving_after].includes(String(m.version)),
        `${site.site_id} reports a version the demo served (${d.serving_before} or ${d.serving_after}): ${modelsText(site)}`);
    }
    console.log(`# ${site.site_id}: ${site.records} records, backlog ${site.backlog_records}, ` +
      `health ${site.health} (${site.health_text}), models ${modelsText(site)}`);
  }
  for (const h of Object.keys(fleet.counts)) {
    assert.equal(number(await text(`[data-count="${h}"]`)), fleet.counts[h], `count of ${h}`);
  }
  const live = summary.sites.find((s) => s.live);
  assert.ok(live, 'the demo has a connected site');
  assert.ok(fleet.sites.find((s) => s.site_id === live.site_id).models.length > 0,
    'the connected site reported the models it serves');
  await page.screenshot({ path: join(out, 'fleet.png'), fullPage: true });
  step(s, 'the fleet page shows the API\'s numbers, which are the demo\'s');

  // ---- follow each site --------------------------------------------------------------------
  let aggregateRows = 0;
  const charted = { 'chart-anomaly': 0, 'chart-drift': 0 };
  for (const { site_id: id } of summary.sites) {
    await page.goto(`${base}/#/`);
    await ready('/');
    await page.click(`#fleet-table tr[data-site="${id}"] a.site-link`);
    await ready(`/site/${id}`);
    // The demo's records are minutes old: they fill one hourly bucket, which the 7-day chart
    // (the default) draws as a lone point. The charts are read over the last 24 hours, where
    // that bucket is wide enough to measure, picked with the page's own range link.
    await page.click('.ranges a[data-range="1d"]');
    await ready(`/site/${id}`);
    await page.waitForFunction(() => document.querySelector('.ranges a.active')?.dataset.range === '1d');
    const site = await api(`sites/${id}`);
    await checkSiteFacts(page, site, ['region']);

    const totals = page.locator('#series-totals');
    const q = await totals.evaluate((t) => ({ since: t.dataset.since, until: t.dataset.until, bucket: t.dataset.bucket }));
    const series = await api(`sites/${id}/series?since=${q.since}&until=${q.until}&bucket=${q.bucket}`);
    assert.ok(series.models.length >= 1, `${id} has series`);
    let anomalies = 0;
    for (const m of series.models) {
      const sum = await checkSeriesTotals(page, m);
      anomalies += sum('anomalies') + sum('anomaly_records');
      console.log(`# ${id} ${m.model}: ${sum('rows')} rows, ${sum('anomalies')} anomalies, ` +
        `${sum('anomaly_records')} anomaly records, ${m.drift.length} drift records`);
    }
    assert.ok(anomalies > 0, `${id}: the demo's injected faults show as anomalies`);
    const driftRows = await page.locator('#drift-table tbody tr').count();
    assert.equal(driftRows, series.models.reduce((a, m) => a + m.drift.length, 0));

    const aggregates = await api(`aggregates?site=${id}`);
    aggregateRows += aggregates.aggregates.length;
    const audit = await api(`sites/${id}/audit?limit=1000`);
    await checkAggregatesAndAudit(page, aggregates, audit);

    // A chart is checked where the API has its series: the anomaly rate needs aggregates (rows)
    // and the drift chart drift records. A live site's last aggregate may still be in its
    // outbox when the demo ends (its backlog), so not every site has both.
    const points = {
      'chart-anomaly': series.models.reduce((a, m) => a + m.buckets.filter((b) => b.anomaly_rate !== null).length, 0),
      'chart-drift': series.models.reduce((a, m) => a + m.buckets.filter((b) => b.max_psi !== null).length, 0),
    };
    const has = { 'chart-anomaly': points['chart-anomaly'] > 0, 'chart-drift': points['chart-drift'] > 0 };
    for (const chart of ['chart-anomaly', 'chart-drift']) {
      if (!has[chart]) {
        console.log(`# ${id} ${chart}: the API has no points for it in this range`);
        continue;
      }
      charted[chart] += 1;
      const { width, height, coloured } = await chartPixels(page, chart, join(out, `${id}-${chart}.png`));
      console.log(`# ${id} ${chart}: ${width}x${height}, ${points[chart]} points, ${coloured} coloured pixels`);
      // A lone point is a dot of some 40 pixels; joined points draw lines through their buckets.
      const least = 20 * Math.min(points[chart], 24);
      assert.ok(coloured >= least, `${id} ${chart} drew its ${points[chart]} points (${coloured} coloured pixels, ${least} expected at least)`);
    }
    // The site's anomaly records, filtered on its page, are the API's.
    const shown = await filterSiteRecords(page, 'anomaly');
    const anomalyRecords = await api(`records?site=${id}&kind=anomaly&limit=25`);
    assert.deepEqual(shown.map((r) => r[0]), anomalyRecords.records.map((r) => r.id), `${id} anomaly records`);
    assert.ok(shown.length > 0 && shown.every((r) => r[1] === 'anomaly'), `${id} shows its anomaly records`);

    await page.screenshot({ path: join(out, `site-${id}.png`), fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1500 } });
  }
  assert.ok(aggregateRows > 0, 'the demo\'s sites sent aggregates');
  assert.ok(charted['chart-anomaly'] > 0 && charted['chart-drift'] > 0,
    `both charts were seen rendering on a site page: ${JSON.stringify(charted)}`);
  step(s, 'each site page shows the API\'s numbers and its anomaly-rate and drift charts render');

  // ---- training data ----------------------------------------------------------------------------
  await page.click('nav a[data-nav="training"]');
  await ready('/training');
  const training = await api('training');
  assert.ok(training.models.length >= 1);
  await checkTrainingTable(page, training);
  // The demo's operators labelled every reading, and the challenger it trained is registered.
  const pump = training.models.find((m) => m.model === 'pump');
  assert.ok(pump, 'the demo\'s pump model has training data');
  for (const d of summary.sites) {
    const bySite = pump.by_site.find((b) => b.site_id === d.site_id);
    assert.ok(bySite, `${d.site_id} contributed training data`);
    assert.equal(bySite.feedback, d.feedback, `${d.site_id}: feedback at the hub = labels given`);
  }
  assert.ok(pump.registry.some((r) => r.version === summary.challenger.version),
    `the registry holds pump ${summary.challenger.version}`);
  await page.screenshot({ path: join(out, 'training.png'), fullPage: true });
  step(s, 'the training data page shows the API\'s counts, which are the demo\'s labels');

  // ---- insights across the demo's sites: fewer than the default k = 3, so no fleet figure ----
  await page.click('nav a[data-nav="insights"]');
  await ready('/insights');
  const q = await page.locator('#insights').evaluate((e) => ({ since: e.dataset.since, until: e.dataset.until, bucket: e.dataset.bucket }));
  const anomaly = await checkAnomaly(page, api, q);
  assert.equal(anomaly.min_sites, 3, 'the default k');
  assert.deepEqual(anomaly.sites.map((x) => x.site_id).sort(), summary.sites.map((d) => d.site_id).sort(),
    'every demo site sent aggregates');
  assert.ok(anomaly.fleet.withheld && anomaly.fleet.buckets.every((b) => b.withheld),
    `${summary.sites.length} sites are fewer than 3: every fleet aggregate is withheld`);
  // As on the site pages: a lone point is a dot of some 40 pixels, joined points draw lines.
  const ratePoints = anomaly.sites.reduce((a, x) => a + x.buckets.filter((b) => b.anomaly_rate !== null).length, 0);
  const { coloured } = await chartPixels(page, 'chart-fleet-anomaly', join(out, 'chart-fleet-anomaly.png'));
  console.log(`# chart-fleet-anomaly: ${ratePoints} points, ${coloured} coloured pixels`);
  assert.ok(ratePoints > 0 && coloured >= 20 * Math.min(ratePoints, 24),
    `the anomaly chart drew its ${ratePoints} points (${coloured} coloured pixels)`);
  await checkDrift(page, api, q);
  const withheld = await checkWithheld(page, api, q);
  assert.ok(withheld.fleet.every((f) => f.withheld && f.count === null));
  await page.screenshot({ path: join(out, 'insights.png'), fullPage: true });
  step(s, 'the insights page shows the API\'s numbers per site and withholds every fleet aggregate below k');

  // ---- the registry of pump: the demo's own training runs ------------------------------------
  await page.click('nav a[data-nav="models"]');
  await ready('/models');
  await page.click('#models-table tr[data-model="pump"] a');
  await ready('/models/pump');
  const versions = await api('models/pump/versions');
  const challenger = versions.versions.find((v) => v.version === summary.challenger.version);
  assert.ok(challenger, `the registry holds pump ${summary.challenger.version}`);
  assert.equal(challenger.state, 'bundled', 'the demo\'s operator approved the challenger');
  for (const v of versions.versions) {
    const row = `#versions-table tr[data-version="${v.version}"]`;
    assert.equal(await text(`${row} [data-k="state"]`), v.state);
    assert.equal(await text(`${row} [data-k="auc"]`), fixed(v.metrics?.challenger?.auc));
  }
  await page.click(`#versions-table tr[data-version="${challenger.version}"] [data-k="version"] a`);
  await page.waitForSelector(`#selected-version[data-version="${challenger.version}"]`);
  for (const k of ['auc', 'accuracy', 'logloss']) {
    assert.equal(await text(`#metrics-table tr[data-metric="${k}"] [data-k="challenger"]`), fixed(challenger.metrics.challenger[k]));
    assert.equal(await text(`#metrics-table tr[data-metric="${k}"] [data-k="champion"]`), fixed(challenger.metrics.champion?.[k]));
  }
  // `outpost train` recorded the holdout's ROC and calibration points: both plots are drawn.
  assert.ok(challenger.metrics.challenger.roc.length >= 2, 'metrics.json has the ROC curve');
  for (const plot of ['roc-plot', 'calibration-plot']) {
    assert.ok(await page.locator(`#${plot} path[data-curve="v${challenger.version}"]`).count() === 1, `${plot} drawn`);
  }
  assert.equal(await text('#lineage-facts [data-k="training_set_sha256"]'), challenger.lineage.training_set.sha256);
  const shadow = await api('insights/shadow?model=pump');
  assert.equal(await page.locator('#shadow-table tbody tr').count(), shadow.results.length);
  // The demo's approval is in the hub's audit log, with its operator.
  const approvals = readFileSync(join(hubDir, 'audit.log'), 'utf8').split('\n').filter((l) => l.includes('"model_approve"'))
    .map((l) => JSON.parse(l));
  assert.deepEqual(approvals.map((l) => [l.operator, l.version, l.outcome]),
    [['demo-operator', summary.challenger.version, 'bundled']]);
  await page.screenshot({ path: join(out, 'registry.png'), fullPage: true });
  step(s, 'the registry page shows the demo\'s versions with the API\'s metrics, plots and lineage; the approval is audited');

  assert.deepEqual(outside, [], 'the pages load nothing from outside the hub');
  assert.deepEqual(pageErrors, [], 'no script errors');
  step(s, 'no request left the hub and no script error happened');
  // The hub shuts down cleanly on SIGTERM (under the sanitizers: with no error or leak report).
  const exited = new Promise((resolve) => s.server.on('exit', (code, signal) => resolve({ code, signal })));
  s.server.kill('SIGTERM');
  const { code, signal } = await exited;
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, 'outpost hub serve exits 0 on SIGTERM');
  step(s, 'outpost hub serve on the demo\'s store shuts down cleanly');
  writeFileSync(join(out, 'README.txt'),
    'Screenshots of the dashboard on `outpost demo`\'s data from tests/web/dashboard_demo.test.mjs: ' +
    'fleet.png, site-SITE.png, SITE-chart-anomaly.png, SITE-chart-drift.png, training.png, insights.png, ' +
    'chart-fleet-anomaly.png, registry.png\n');
  console.log(`# screenshots in ${out}`);
}

await runTest(s, main);
