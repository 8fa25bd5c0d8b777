// What the dashboard's browser tests share (dashboard.test.mjs, dashboard_demo.test.mjs): their
// command line, the operator tokens file, the hub or test server they start, Debian's chromium
// driven headless by playwright-core, signing in, the checks that read a page against the
// query API, and the "ok N - ..." report with its cleanup.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { countColoured, decodePng } from './png.mjs';

const CHROMIUM = process.env.OUTPOST_CHROMIUM || '/usr/bin/chromium';

// "--name value" pairs of the command line; throws when one of `required` is missing.
export function readArgs(required) {
  const args = {};
  for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
  for (const k of required) {
    if (!args[k]) throw new Error(`missing --${k}`);
  }
  return args;
}

// One test run: a fresh work folder, and the server and browser it starts, all stopped or
// removed by runTest().
export function session(prefix) {
  return { work: mkdtempSync(join(tmpdir(), prefix)), server: null, browser: null, passed: 0 };
}

// Reports one passed step as "ok N - name".
export function step(s, name) {
  s.passed += 1;
  console.log(`ok ${s.passed} - ${name}`);
}

// Runs `main`, prints "N passed, 0 failed" (or 1 failed, with the error, and exit code 1),
// then closes the browser, stops the server and removes the work folder.
export async function runTest(s, main) {
  try {
    await main();
    console.log(`${s.passed} passed, 0 failed`);
  } catch (error) {
    console.error(error);
    console.log(`${s.passed} passed, 1 failed`);
    process.exitCode = 1;
  } finally {
    if (s.browser) await s.browser.close().catch(() => {});
    await stopServer(s.server);
    // A hub can still be finishing a file (a retraining run's output) as it stops; retry
    // the removal rather than fail a passed test on ENOTEMPTY.
    rmSync(s.work, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
}

// Stops `server` with SIGTERM and resolves once it has exited, so that nothing writes into
// the work folder while it is removed; SIGKILL if it is still running after 30 s.
function stopServer(server) {
  if (!server || server.exitCode !== null || server.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const kill = setTimeout(() => server.kill('SIGKILL'), 30000);
    server.once('exit', () => {
      clearTimeout(kill);
      done();
    });
    server.kill('SIGTERM');
  });
}

// The operator tokens file the hub reads (hub/FORMAT.md section 6): only each token's SHA-256,
// with a name and a tenant, mode 0600.
export function writeTokensFile(path, tokens) {
  const lines = ['operators:'];
  for (const [tenant, token] of Object.entries(tokens)) {
    lines.push(`  - name: ${tenant}-operator`, `    tenant: ${tenant}`,
      `    token_sha256: ${createHash('sha256').update(token).digest('hex')}`);
  }
  writeFileSync(path, `${lines.join('\n')}\n`, { mode: 0o600 });
}

// Starts `command` as s.server and resolves with its base URL, read from the first line of its
// output that matches `listening` (the address in group 1, with or without "http://").
export function startServer(s, command, commandArgs, listening) {
  s.server = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolveBase, reject) => {
    let text = '';
    s.server.stdout.on('data', (chunk) => {
      text += chunk;
      const m = text.match(listening);
      if (m) resolveBase(m[1].startsWith('http') ? m[1] : `http://${m[1]}`);
    });
    s.server.on('exit', (code) => reject(new Error(`${command} exited with ${code}`)));
  });
}

// GET /api/v1/<path> with `token`; asserts 200 and resolves with the JSON body.
export async function getApi(base, path, token) {
  const response = await fetch(`${base}/api/v1/${path}`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200, `GET ${path}: ${response.status}`);
  return response.json();
}

// Debian's chromium, headless, with everything that would reach outside the machine turned
// off, as s.browser; resolves with a page of a new context and what it saw: requests to
// anything but `base` (outside) and script errors (pageErrors).
export async function openPage(s, web, base) {
  const require = createRequire(resolve(web, 'package.json'));
  const { chromium } = require('playwright-core');
  s.browser = await chromium.launch({
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
  const context = await s.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const outside = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith('data:')) outside.push(request.url());
  });
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  return { page, outside, pageErrors };
}

// Another operator's page beside s.browser's first, in a context of its own, signed in with
// `token` and showing the fleet; its script errors go to `pageErrors`.
export async function openOtherPage(s, base, token, pageErrors) {
  const context = await s.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  await signIn(page, base, token);
  await page.waitForSelector('body[data-ready="1"][data-route="/"]', { timeout: 30000 });
  return { context, page };
}

// Signs in as the dashboard's users do: the page's 401 shows a form, the token is typed in
// (never put in a URL, which the hub refuses).
export async function signIn(page, base, token) {
  await page.goto(`${base}/#/`);
  await page.waitForSelector('form.login #token', { timeout: 30000 });
  await page.fill('form.login #token', token);
  await page.click('form.login button[type="submit"]');
}

// How the pages write numbers, days and a site's models.
export const number = (s) => Number(s.replace(/,/g, ''));
export const days = (d) => (d === null ? '—' : `${d.toFixed(1)} d`);
// The autonomy cell: days left, or why a site has no estimate ("not enough history").
export const autonomy = (site) =>
  site.autonomy_days_left === null && site.autonomy_basis && site.autonomy_basis !== 'estimated'
    ? site.autonomy_basis.replaceAll('_', ' ')
    : days(site.autonomy_days_left);
export const modelsText = (site) => [...new Set(site.models.map((m) => `${m.name} v${m.version}`))].sort().join(', ') || '—';

// Reading `page`: ready(route) waits until the page has rendered `route`; text(selector) is
// the first match's trimmed text.
export function reader(page) {
  return {
    ready: (route) => page.waitForSelector(`body[data-ready="1"][data-route="${route}"]`, { timeout: 30000 }),
    text: async (selector) => (await page.locator(selector).first().innerText()).trim(),
  };
}

// The site page's facts other than `keys` (read as text): backlog, records, autonomy, models.
export async function checkSiteFacts(page, site, keys) {
  const { text } = reader(page);
  for (const k of keys) assert.equal(await text(`#site-facts [data-k="${k}"]`), site[k]);
  assert.equal(number(await text('#site-facts [data-k="backlog_records"]')), site.backlog_records);
  assert.equal(number(await text('#site-facts [data-k="records"]')), site.records);
  assert.equal(await text('#site-facts [data-k="autonomy_days_left"]'), autonomy(site));
  assert.equal(await text('#site-facts [data-k="models"]'), modelsText(site));
}

// One model's row of the site page's series totals against the API's buckets; returns the
// sum of `field` over the buckets, for the caller's own checks.
export async function checkSeriesTotals(page, m) {
  const { text } = reader(page);
  const row = `#series-totals tr[data-model="${m.model}"]`;
  const sum = (f) => m.buckets.reduce((a, b) => a + b[f], 0);
  assert.equal(number(await text(`${row} [data-k="rows"]`)), sum('rows'), `${m.model} rows`);
  assert.equal(number(await text(`${row} [data-k="anomalies"]`)), sum('anomalies'));
  assert.equal(number(await text(`${row} [data-k="anomaly_records"]`)), sum('anomaly_records'));
  assert.equal(number(await text(`${row} [data-k="drift_records"]`)), sum('drift_records'));
  assert.equal(number(await text(`${row} [data-k="hard_examples"]`)), sum('hard_examples'));
  const psis = m.drift.map((d) => d.psi);
  if (psis.length > 0) assert.equal(await text(`${row} [data-k="max_psi"]`), Math.max(...psis).toFixed(3));
  return sum;
}

// The site page's aggregates table and audit decisions against the API's.
export async function checkAggregatesAndAudit(page, aggregates, audit) {
  const { text } = reader(page);
  for (const a of aggregates.aggregates) {
    const row = `#aggregates-table tr[data-agg="${a.model}:${a.version}"]`;
    for (const k of ['minutes', 'rows', 'anomalies', 'hard_examples']) {
      assert.equal(number(await text(`${row} [data-k="${k}"]`)), a[k], `aggregate ${k}`);
    }
  }
  for (const [d, n] of Object.entries(audit.decisions)) {
    assert.equal(number(await text(`[data-decision="${d}"]`)), n, `audit ${d}`);
  }
  assert.equal(await page.locator('#audit-table tbody tr').count(), Math.min(50, audit.entries.length));
}

// Screenshots the canvas of chart `id` to `shot` and resolves with its size and the count of
// its coloured pixels (the series' strokes and points).
export async function chartPixels(page, id, shot) {
  const canvas = page.locator(`#${id} canvas`);
  assert.equal(await canvas.count(), 1, `${id} has a canvas`);
  await canvas.screenshot({ path: shot });
  const image = decodePng(readFileSync(shot));
  return { width: image.width, height: image.height, coloured: countColoured(image) };
}

// Filters the site page's records by `kind` and resolves with the rows shown, [id, kind] each.
export async function filterSiteRecords(page, kind) {
  await page.selectOption('#site-records #filter-kind', kind);
  await page.click('#site-records #filter-apply');
  await page.waitForFunction(() => !document.querySelector('#site-records')?.hasAttribute('data-loading'));
  await page.waitForSelector('#site-records #records-status[data-shown]');
  return page.locator('#site-records #records-table tbody tr').evaluateAll(
    (trs) => trs.map((tr) => [Number(tr.dataset.id), tr.dataset.kind]));
}

// The training data page's table against the API's /training.
export async function checkTrainingTable(page, training) {
  const { text } = reader(page);
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
}

// The fleet page's row of `site` against the API's numbers.
export async function checkFleetRow(page, site) {
  const { text } = reader(page);
  const row = `#fleet-table tr[data-site="${site.site_id}"]`;
  assert.equal(await text(`${row} [data-k="region"]`), site.region);
  assert.equal(await text(`${row} [data-k="health"]`), site.health, `${site.site_id} health`);
  assert.equal(number(await text(`${row} [data-k="backlog_records"]`)), site.backlog_records);
  assert.equal(number(await text(`${row} [data-k="records"]`)), site.records);
  assert.equal(await text(`${row} [data-k="autonomy_days_left"]`), autonomy(site));
  assert.equal(await text(`${row} [data-k="models"]`), modelsText(site));
  assert.equal(await page.locator(`${row} [data-k="last_contact_ms"]`).getAttribute('data-ms'),
    String(site.last_contact_ms ?? ''));
  assert.equal(await page.locator(`${row} [data-k="newest_record_ms"]`).getAttribute('data-ms'),
    String(site.newest_record_ms ?? ''));
}
