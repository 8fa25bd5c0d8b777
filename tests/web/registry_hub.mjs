// A hub that retrains and releases pump for tenant acme, over a store seeded by seed_hub, as the
// registry and rollouts browser tests (dashboard_registry.test.mjs, dashboard_rollouts.test.mjs)
// serve it: `outpost hub serve` with a `retrain:` entry whose release signs bundles with keys
// made here, the operator tokens file, and the dashboard on the operator listener.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, writeTokensFile } from './browser.mjs';

// The model config template of the releases (hub/FORMAT.md section 8).
const TEMPLATE = `backend: xgboost
inputs:
  - {name: features, datatype: FP32, shape: [-1, 8]}
outputs:
  - {name: fault_probability, datatype: FP32, shape: [-1]}
`;

// Writes the hub config into the work folder: the retrain entry of pump whose release goes to
// `sites`, `release` more lines of that release (indented under it) and `extra` top-level lines.
function writeConfig(s, hub, sites, release, extra) {
  const keys = join(s.work, 'keys');
  const made = spawnSync(hub, ['keys', 'generate', '--dir', keys], { encoding: 'utf8' });
  assert.equal(made.status, 0, `keys generate: ${made.stderr}`);
  writeFileSync(join(s.work, 'pump.yaml'), TEMPLATE);
  writeFileSync(join(s.work, 'train.yaml'), 'features: [a]\n');
  const config = join(s.work, 'hub.yaml');
  writeFileSync(config, [
    'retrain:',
    '  - model: pump',
    '    tenant: acme',
    `    train_config: ${join(s.work, 'train.yaml')}`,
    '    min_new_labels: 0',
    '    every_s: 0',
    '    release:',
    `      model_config: ${join(s.work, 'pump.yaml')}`,
    `      keys: ${keys}`,
    `      sites: [${sites.join(', ')}]`,
    ...release.map((line) => `      ${line}`),
    ...extra,
    '',
  ].join('\n'));
  return config;
}

// Seeds the store (seed_hub with `seedArgs`), writes the config and tokens, and starts the hub
// as s.server; resolves with its operator listener's base URL and its data folder.
export async function serveRegistryHub(s, args, { tokens, sites, release = [], extra = [], seedArgs = [] }) {
  assert.ok(existsSync(join(args.web, 'dist', 'index.html')),
    'web/dist is not built: run scripts/setup.sh (npm run build in web/)');
  const modelFile = join(s.work, 'pump-model.json');
  copyFileSync(join(args.web, '..', 'engine', 'testdata', 'xgboost_fuzz_seeds', 'binary_logistic.json'), modelFile);
  const storeUrl = `sqlite:${join(s.work, 'hub.db')}`;
  const seeded = spawnSync(args.seed, ['--store', storeUrl, '--model-file', modelFile, ...seedArgs], { encoding: 'utf8' });
  assert.equal(seeded.status, 0, `seed_hub failed: ${seeded.stderr}`);
  console.log(`# ${seeded.stdout.trim()}`);
  const tokensFile = join(s.work, 'operators.yaml');
  writeTokensFile(tokensFile, tokens);
  const dataDir = join(s.work, 'hub');
  const base = await startServer(s, args.hub, ['hub', 'serve', '--config', writeConfig(s, args.hub, sites, release, extra),
    '--data-dir', dataDir, '--store', storeUrl, '--listen', '127.0.0.1:0', '--operator-listen', '127.0.0.1:0',
    '--web-dir', join(args.web, 'dist'), '--operator-tokens-file', tokensFile, '--log-level', 'warning'],
  /operator listening on (http:\/\/\S+)/);
  console.log(`# serving on ${base}`);
  return { base, dataDir };
}
