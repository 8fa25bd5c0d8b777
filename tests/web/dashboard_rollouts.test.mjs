// The rollouts page (#/rollouts) in a real browser (Debian's chromium, headless, driven by
// playwright-core), served by `outpost hub serve` over a seeded store (seed_hub --installs: six
// acme sites whose nodes report what they serve and shadow, one known only from its bundle
// event). Checks that
//   - the model-version map shows, for each site and model, the versions /api/v1/installs
//     says serve there and run in shadow, one colour per model version as its legend says;
//   - nothing is loaded from outside the hub and no script error happens.
// Screenshots go to --out.
//
//   node dashboard_rollouts.test.mjs --seed BIN --hub OUTPOST --web WEB_DIR --out DIR
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  getApi, openPage, reader, readArgs, runTest, session, signIn, startServer, step, writeTokensFile,
} from './browser.mjs';

const args = readArgs(['seed', 'hub', 'web', 'out']);
const TOKENS = { acme: 'tok-acme-7f3a-5c1d9e0b2a64f873' };
const out = args.out;
mkdirSync(out, { recursive: true });
const s = session('outpost-web-rollouts-');
const work = s.work;
const SITES = ['plant-north', 'plant-south', 'mine-andes', 'ship-atlantic', 'rig-9', 'farm-2'];

// The model config template of the releases (hub/FORMAT.md section 8).
const TEMPLATE = `backend: xgboost
inputs:
  - {name: features, datatype: FP32, shape: [-1, 8]}
outputs:
  - {name: fault_probability, datatype: FP32, shape: [-1]}
`;

function hubConfig() {
  const keys = join(work, 'keys');
  const made = spawnSync(args.hub, ['keys', 'generate', '--dir', keys], { encoding: 'utf8' });
  assert.equal(made.status, 0, `keys generate: ${made.stderr}`);
  writeFileSync(join(work, 'pump.yaml'), TEMPLATE);
  writeFileSync(join(work, 'train.yaml'), 'features: [a]\n');
  const config = join(work, 'hub.yaml');
  writeFileSync(config, [
    'retrain:',
    '  - model: pump',
    '    tenant: acme',
    `    train_config: ${join(work, 'train.yaml')}`,
    '    min_new_labels: 0',
    '    every_s: 0',
    '    release:',
    `      model_config: ${join(work, 'pump.yaml')}`,
    `      keys: ${keys}`,
    `      sites: [${SITES.join(', ')}]`,
    '',
  ].join('\n'));
  return config;
}

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

async function main() {
  assert.ok(existsSync(join(args.web, 'dist', 'index.html')),
    'web/dist is not built: run scripts/setup.sh (npm run build in web/)');
  const modelFile = join(work, 'pump-model.json');
  copyFileSync(join(args.web, '..', 'engine', 'testdata', 'xgboost_fuzz_seeds', 'binary_logistic.json'), modelFile);
  const storeUrl = `sqlite:${join(work, 'hub.db')}`;
  const seeded = spawnSync(args.seed, ['--store', storeUrl, '--model-file', modelFile, '--installs'], { encoding: 'utf8' });
  assert.equal(seeded.status, 0, `seed_hub failed: ${seeded.stderr}`);
  console.log(`# ${seeded.stdout.trim()}`);
  const tokensFile = join(work, 'operators.yaml');
  writeTokensFile(tokensFile, TOKENS);
  const dataDir = join(work, 'hub');
  const base = await startServer(s, args.hub, ['hub', 'serve', '--config', hubConfig(), '--data-dir', dataDir,
    '--store', storeUrl, '--listen', '127.0.0.1:0', '--operator-listen', '127.0.0.1:0',
    '--web-dir', join(args.web, 'dist'), '--operator-tokens-file', tokensFile, '--log-level', 'warning'],
  /operator listening on (http:\/\/\S+)/);
  console.log(`# serving on ${base}`);
  const api = (path) => getApi(base, path, TOKENS.acme);
  const { page, outside, pageErrors } = await openPage(s, args.web, base);
  const { ready } = reader(page);
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

  assert.deepEqual(outside, [], 'the pages load nothing from outside the hub');
  assert.deepEqual(pageErrors, [], 'no script errors');
  step(s, 'no request left the hub and no script error happened');
  await page.screenshot({ path: join(out, 'rollouts.png'), fullPage: true });
  writeFileSync(join(out, 'README.txt'),
    'Screenshots from tests/web/dashboard_rollouts.test.mjs: rollouts.png (the rollouts page), ' +
    'version-map.png (the fleet\'s model-version map)\n');
  console.log(`# screenshots in ${out}`);
}

await runTest(s, main);
