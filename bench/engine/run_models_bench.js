// bench/engine: Outpost's ONNX engine against onnxruntime-node on the large golden models
// (tests/onnx_golden/models.py: vision, sequence, quantized), batch 1 and 8, one thread and
// all cores, back to back in one run; then resnet18's convolutions one by one, with the
// GFLOP/s each engine achieves beside the machine's FMA peak.
//
//   node bench/engine/run_models_bench.js <onnx_bench binary> <build>/tests/onnx_models [seconds] [onednn]
//
// With `onednn`, ours also runs with its convolutions through oneDNN (CompileOptions::onednn)
// in the same run: the columns dnn1_us / dratio1 and dnnN_us / dratioN.
//
// Ratios are ours / ORT, p50 against p50; below 1.0 Outpost is faster. ORT's figure includes
// the cost of calling it from Node (the floor printed first: its p50 on an Identity model),
// which a native caller would not pay: against the milliseconds of a vision model it is
// noise, and for the smallest models (tens of microseconds) the ratio flatters Outpost by it. ORT runs with full graph optimisations and intraOpNumThreads 1, then the
// number of cores; Outpost's engine likewise with CompileOptions::threads 1, then the cores.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const ort = require('onnxruntime-node');

const [bench, dir, secondsArg, mode] = process.argv.slice(2);
const withOnednn = mode === 'onednn';
const seconds = Number(secondsArg || '0.5');
const cores = os.cpus().length;

function readManifest(folder) {
  const cases = new Map();
  for (const line of fs.readFileSync(path.join(folder, 'inputs.txt'), 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[0] === 'model') cases.set(f[1], { file: f[2], inputs: [] });
    else if (f[0] === 'input') cases.get(f[1]).inputs.push(f.slice(2));
    else if (f[0] === 'conv') cases.get(f[1]).conv = f.slice(2).map(Number);
  }
  return cases;
}

function loadInput(folder, dtype, dims, file, rows) {
  const buf = fs.readFileSync(path.join(folder, file));
  const shape = dims.split(',').map(Number);
  if (rows) shape[0] = rows;
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  if (dtype === 'int64') return new ort.Tensor('int64', new BigInt64Array(bytes, 0, count), shape);
  if (dtype === 'int32') return new ort.Tensor('int32', new Int32Array(bytes, 0, count), shape);
  if (dtype === 'uint8') return new ort.Tensor('uint8', new Uint8Array(bytes, 0, count), shape);
  return new ort.Tensor('float32', new Float32Array(bytes, 0, count), shape);
}

async function p50(session, feeds) {
  for (let i = 0; i < 3; i++) await session.run(feeds);
  const lat = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() < end || lat.length < 5) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    lat.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  lat.sort((a, b) => a - b);
  return lat[lat.length >> 1];
}

function options(threads) {
  return { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
           executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3 };
}

// Ours, natively: "ours <case> <batch> <p50 us> <runs>" lines of onnx_bench.
function runOurs(folder, batchOption, threads = 1, extra = []) {
  const out = execFileSync(bench, [folder, String(seconds), batchOption, '--warmup=3', '--min-runs=5',
                                   `--threads=${threads}`, ...extra],
                           { encoding: 'utf8', maxBuffer: 1 << 24 });
  const ours = new Map();
  for (const line of out.split('\n')) {
    const f = line.split(' ');
    if (f[0] === 'ours') ours.set(`${f[1]} ${f[2]}`, Number(f[3]));
    if (f[0] === 'unsupported' && threads === 1) console.log(`not run by ours: ${f.slice(1).join(' ')}`);
  }
  return ours;
}

// The machine's FP32 FMA peak in GFLOP/s per core: FMA units x lanes x 2 x clock (times the
// cores for the machine). The clock is measured (onnx_bench --clock), since /proc/cpuinfo's
// "cpu MHz" on a virtual machine is the base clock it was told, not the boost clock it runs.
function peak() {
  const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const flags = (info.match(/^flags\s*:(.*)$/m) || ['', ''])[1].split(' ');
  const mhz = Math.max(...[...info.matchAll(/^cpu MHz\s*:\s*([\d.]+)/gm)].map((m) => Number(m[1])));
  const family = Number((info.match(/^cpu family\s*:\s*(\d+)/m) || ['', '0'])[1]);
  const vendor = (info.match(/^vendor_id\s*:\s*(\S+)/m) || ['', ''])[1];
  const measured = Number(execFileSync(bench, ['--clock'], { encoding: 'utf8' }).split(' ')[1]);
  const ghz = Math.max(measured, mhz / 1000);
  const lanes = flags.includes('avx512f') ? 16 : flags.includes('avx2') ? 8 : 4;
  // Two FMA pipes per core (Intel since Haswell, AMD since Zen 2; Zen 5 has two full 512-bit
  // ones); Zen 4 (family 25) runs a 512-bit FMA as two 256-bit halves: one 16-lane FMA a cycle.
  const units = vendor === 'AuthenticAMD' && family === 25 && lanes === 16 ? 1 : 2;
  const perCore = units * lanes * 2 * ghz;
  console.log(`cpu: ${vendor} family ${family}, ${flags.includes('avx512f') ? 'AVX-512' : 'no AVX-512'}` +
              `${flags.includes('avx512_vnni') ? ' (VNNI)' : ''}, ${cores} cores, ` +
              `/proc/cpuinfo ${(mhz / 1000).toFixed(3)} GHz, measured ${measured.toFixed(3)} GHz`);
  console.log(`peak (assumed ${units} FMA units x ${lanes} fp32 lanes x 2 flops x ${ghz.toFixed(3)} GHz): ` +
              `${perCore.toFixed(1)} GFLOP/s per core, ${(perCore * cores).toFixed(1)} on ${cores} cores`);
  return perCore;
}

async function floor() {
  const identity = await ort.InferenceSession.create(path.join(__dirname, 'identity.onnx'), options(1));
  const f = await p50(identity, { x: new ort.Tensor('float32', new Float32Array(4), [1, 4]) });
  await identity.release();
  return f;
}

async function models(floorUs) {
  const ours = { 1: runOurs(dir, '--as-written', 1), [cores]: runOurs(dir, '--as-written', cores) };
  const dnn = withOnednn ? { 1: runOurs(dir, '--as-written', 1, ['--onednn']),
                             [cores]: runOurs(dir, '--as-written', cores, ['--onednn']) } : null;
  const cases = readManifest(dir);
  console.log(`\nmodels (both engines on 1 intra-op thread, then on ${cores})`);
  console.log('case                         batch  ours1_us   ort1_us  ratio1  oursN_us   ortN_us  ratioN' +
              (withOnednn ? '   dnn1_us dratio1   dnnN_us dratioN' : ''));
  const ratios = { 1: [], [cores]: [] };
  const dnnRatios = { 1: [], [cores]: [] };
  const dnnCols = [];
  const sessions = new Map();
  for (const [name, m] of cases) {
    const feeds = {};
    for (const [iname, dtype, dims, file] of m.inputs) feeds[iname] = loadInput(dir, dtype, dims, file);
    const batch = Number(m.inputs[0][2].split(',')[0]);
    if (ours[1].get(`${name} ${batch}`) === undefined) continue;
    const cols = [];
    for (const threads of [1, cores]) {
      const key = `${m.file} ${threads}`;
      if (!sessions.has(key)) {
        sessions.set(key, await ort.InferenceSession.create(path.join(dir, m.file), options(threads)));
      }
      const theirs = await p50(sessions.get(key), feeds);
      const mine = ours[threads].get(`${name} ${batch}`);
      const ratio = mine / theirs;
      ratios[threads].push(ratio);
      cols.push(mine.toFixed(0).padStart(9), theirs.toFixed(0).padStart(9), ratio.toFixed(2).padStart(7));
      if (withOnednn) {
        const viaDnn = dnn[threads].get(`${name} ${batch}`);
        dnnRatios[threads].push(viaDnn / theirs);
        dnnCols.push(viaDnn.toFixed(0).padStart(9), (viaDnn / theirs).toFixed(2).padStart(7));
      }
    }
    console.log(`${name.padEnd(28)} ${String(batch).padStart(5)} ${cols.join(' ')} ${dnnCols.splice(0).join(' ')}`);
  }
  for (const s of sessions.values()) await s.release();
  for (const threads of [1, cores]) {
    const r = ratios[threads];
    const geo = Math.exp(r.reduce((a, x) => a + Math.log(x), 0) / r.length);
    console.log(`geometric mean ratio, ${threads} thread(s) each: ${geo.toFixed(2)}`);
    if (withOnednn) {
      const d = dnnRatios[threads];
      const dgeo = Math.exp(d.reduce((a, x) => a + Math.log(x), 0) / d.length);
      console.log(`geometric mean ratio with oneDNN, ${threads} thread(s) each: ${dgeo.toFixed(2)}`);
    }
  }
}

async function layers(perCore, rows) {
  const folder = path.join(dir, 'layers');
  const cases = readManifest(folder);
  const ours = runOurs(folder, `--rows=${rows}`);
  console.log(`\nresnet18's convolutions, batch ${rows}, one thread (peak ${perCore.toFixed(1)} GFLOP/s)`);
  console.log('layer                         count  GFLOP  ours_GF/s  %peak  ort_GF/s  %peak  ratio');
  let oursTotal = 0, ortTotal = 0, flopTotal = 0;
  for (const [name, m] of cases) {
    const [cin, cout, k, stride, hw, count] = m.conv;
    const ho = Math.floor((hw + 2 * Math.floor((k - 1) / 2) - k) / stride) + 1;
    const flops = 2 * cout * cin * k * k * ho * ho * rows;
    const session = await ort.InferenceSession.create(path.join(folder, m.file), options(1));
    const [iname, dtype, dims, file] = m.inputs[0];
    const theirs = await p50(session, { [iname]: loadInput(folder, dtype, dims, file, rows) });
    await session.release();
    const mine = ours.get(`${name} ${rows}`);
    const g = (us) => flops / us / 1e3;
    oursTotal += mine * count;
    ortTotal += theirs * count;
    flopTotal += flops * count;
    console.log(`${name.padEnd(29)} ${String(count).padStart(5)} ${(flops / 1e9).toFixed(2).padStart(6)} ` +
                `${g(mine).toFixed(1).padStart(10)} ${(100 * g(mine) / perCore).toFixed(0).padStart(5)}% ` +
                `${g(theirs).toFixed(1).padStart(9)} ${(100 * g(theirs) / perCore).toFixed(0).padStart(5)}% ` +
                `${(mine / theirs).toFixed(2).padStart(6)}`);
  }
  const g = (us) => flopTotal / us / 1e3;
  console.log(`all of resnet18's convolutions: ours ${g(oursTotal).toFixed(1)} GFLOP/s ` +
              `(${(100 * g(oursTotal) / perCore).toFixed(0)}% of peak), ORT ${g(ortTotal).toFixed(1)} ` +
              `(${(100 * g(ortTotal) / perCore).toFixed(0)}%), ratio ${(oursTotal / ortTotal).toFixed(2)}`);
}

async function main() {
  const perCore = peak();
  const floorUs = await floor();
  console.log(`onnxruntime-node ${require('onnxruntime-node/package.json').version}, ` +
              `floor (Identity [1,4]): ${floorUs.toFixed(2)} us`);
  await models(floorUs);
  await layers(perCore, 1);
  await layers(perCore, 8);
}

main().catch((e) => { console.error(e); process.exit(1); });
