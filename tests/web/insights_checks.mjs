// The insights page (#/insights) read against the query API (hub/QUERY_API.md "Global
// insights"), shared by the browser tests over seeded data (dashboard_registry.test.mjs) and
// over the demo's (dashboard_demo.test.mjs). Each check takes the page, showing #/insights
// for the range `q` ({since, until, bucket}, read from the page), and `api(path)`, the
// caller's GET; it asserts and resolves with the API's answer. A fleet aggregate must read
// "withheld" exactly where the API withholds it (fewer than min_sites sites).
import assert from 'node:assert/strict';
import { number, reader } from './browser.mjs';

export const fixed = (v, d = 4) => (v === null || v === undefined ? '—' : v.toFixed(d));
const rate = (r) => (r === null ? '—' : `${(r * 100).toFixed(2)} %`);

export async function checkAnomaly(page, api, q) {
  const { text } = reader(page);
  const a = await api(`insights/anomaly?since=${q.since}&until=${q.until}&bucket=${q.bucket}`);
  const k = Number(await page.locator('#insights').getAttribute('data-min-sites'));
  assert.equal(a.min_sites, k, 'the page says the API\'s k');
  assert.equal(await page.locator('#anomaly-table tbody tr[data-site]:not([data-site=""])').count(), a.sites.length);
  for (const site of a.sites) {
    const row = `#anomaly-table tr[data-site="${site.site_id}"]`;
    assert.equal(number(await text(`${row} [data-k="rows"]`)), site.rows, `${site.site_id} rows`);
    assert.equal(number(await text(`${row} [data-k="anomalies"]`)), site.anomalies);
    assert.equal(await text(`${row} [data-k="anomaly_rate"]`), rate(site.anomaly_rate));
  }
  const fleet = '#anomaly-table tr.fleet-row';
  if (a.fleet.withheld) {
    assert.equal(await text(`${fleet} [data-k="anomaly_rate"]`), 'withheld');
    assert.equal(await text(`${fleet} [data-k="rows"]`), `withheld: ${a.fleet.sites} of the ${k} sites needed`);
  } else {
    assert.equal(number(await text(`${fleet} [data-k="rows"]`)), a.fleet.rows);
    assert.equal(await text(`${fleet} [data-k="anomaly_rate"]`), rate(a.fleet.anomaly_rate));
  }
  const note = page.locator('#fleet-note');
  const shown = a.fleet.buckets.filter((b) => !b.withheld).length;
  const withheld = a.fleet.buckets.filter((b) => b.withheld && b.sites > 0).length;
  assert.equal(Number(await note.getAttribute('data-shown')), shown);
  assert.equal(Number(await note.getAttribute('data-withheld')), withheld);
  // Every bucket the API shows has k sites or more, every other fewer.
  for (const b of a.fleet.buckets) {
    assert.equal(b.withheld, b.sites < k);
    if (b.withheld) assert.equal(b.anomaly_rate, null);
  }
  return a;
}

export async function checkDrift(page, api, q) {
  const { text } = reader(page);
  const d = await api(`insights/drift?since=${q.since}&until=${q.until}`);
  const key = (f) => `${f.model}/${f.feature}`;
  assert.equal(await page.locator('#drift-map tbody tr:not(.fleet-row)').count(), d.sites.length);
  const filled = await page.locator('#drift-map td[data-k="psi"]').evaluateAll(
    (tds) => tds.filter((td) => td.textContent !== '').length);
  assert.equal(filled, d.cells.length, 'one coloured cell per (site, feature) with drift');
  for (const c of d.cells) {
    const td = page.locator(`#drift-map tr[data-site="${c.site_id}"] td[data-feature="${key(c)}"]`);
    assert.equal((await td.innerText()).trim(), c.max_psi.toFixed(3));
    assert.notEqual(await td.evaluate((e) => e.style.backgroundColor), '', 'the cell is coloured');
  }
  for (const f of d.fleet) {
    const td = `#drift-map tr.fleet-row td[data-feature="${key(f)}"]`;
    assert.equal(await text(td), f.withheld ? `withheld (${f.sites} of ${d.min_sites})` : f.mean_max_psi.toFixed(3));
  }
  assert.equal(await page.locator('#drift-legend rect').count() > 10, true, 'the colour scale has a legend');
  return d;
}

export async function checkWithheld(page, api, q) {
  const { text } = reader(page);
  const w = await api(`insights/withheld?since=${q.since}&until=${q.until}`);
  for (const site of w.sites) {
    const row = `#withheld-table tr[data-site="${site.site_id}"]`;
    for (const k of ['allowed', 'withheld', 'rejected']) {
      assert.equal(number(await text(`${row} [data-k="${k}"]`)), site.decisions[k], `${site.site_id} ${k}`);
    }
  }
  assert.equal(await page.locator('#withheld-fleet tbody tr').count(), w.fleet.length);
  for (const f of w.fleet) {
    const cell = await text(`#withheld-fleet tr[data-rule="${f.decision}:${f.reason}"] [data-k="count"]`);
    assert.equal(cell, f.withheld ? `withheld: ${f.sites} of the ${w.min_sites} sites needed` : f.count.toLocaleString('en-US'));
  }
  return w;
}
