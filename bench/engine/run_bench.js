// bench/engine: Outpost's ONNX engine against onnxruntime-node, same models, same inputs,
// same machine, one thread each, back to back in one run.
//
//   node bench/engine/run_bench.js <onnx_bench binary> <golden dir> [seconds-per-case]
//
// For each golden model and batch size (1, 1000) it prints the p50 latency of a run of both
// engines and the ratio ours / (ORT - floor), where the floor is onnxruntime-node's own p50
// on an Identity model (identity.onnx, [1, 4]): the cost of calling ORT from Node that a
// native caller would not pay. Ours is measured natively through engine::Model::Run.
// A ratio below 1.0 means Outpost is faster.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const [bench, dir, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || '0.3');

function loadInput(dtype, dims, file, rows, isIndex) {
  const buf = fs.readFileSync(path.join(dir, file));
  const shape = dims.split(',').map(Number);
  if (!isIndex) shape[0] = Math.min(rows, shape[0]);
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  switch (dtype) {
    case 'float32': return new ort.Tensor('float32', new Float32Array(bytes, 0, count), shape);
    case 'float64': return new ort.Tensor('float64', new Float64Array(bytes, 0, count), shape);
    case 'int64': return new ort.Tensor('int64', new BigInt64Array(bytes, 0, count), shape);
    case 'int32': return new ort.Tensor('int32', new Int32Array(bytes, 0, count), shape);
    default: {
      const out = [];
      for (let off = 0; off < buf.length && out.length < count;) {
        const n = buf.readUInt32LE(off);
        out.push(buf.toString('utf8', off + 4, off + 4 + n));
        off += 4 + n;
      }
      return new ort.Tensor('string', out, shape);
    }
  }
}

async function p50(session, feeds) {
  for (let i = 0; i < 20; i++) await session.run(feeds);
  const lat = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() < end || lat.length < 20) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    lat.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  lat.sort((a, b) => a - b);
  return lat[lat.length >> 1];
}

const options = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1,
                  executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3 };

async function main() {
  // Ours first (native), then ORT, so the two never compete for the CPU.
  const ours = new Map();
  const out = execFileSync(bench, [dir, String(seconds)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  for (const line of out.split('\n')) {
    const f = line.split(' ');
    if (f[0] === 'ours') ours.set(`${f[1]} ${f[2]}`, Number(f[3]));
  }
  const identity = await ort.InferenceSession.create(path.join(__dirname, 'identity.onnx'), options);
  const floor = await p50(identity, { x: new ort.Tensor('float32', new Float32Array(4), [1, 4]) });
  const lines = fs.readFileSync(path.join(dir, 'inputs.txt'), 'utf8').split('\n').filter(Boolean);
  const models = new Map();
  for (const line of lines) {
    const f = line.split(' ');
    if (f[0] === 'model') models.set(f[1], { file: f[2], inputs: [] });
    else if (f[0] === 'input') models.get(f[1]).inputs.push(f.slice(2));
  }
  console.log(`onnxruntime-node floor (Identity [1,4]): ${floor.toFixed(2)} us`);
  console.log('model                             batch   ours_us    ort_us  ort-floor    ratio');
  const ratios = [];
  for (const [name, m] of models) {
    const session = await ort.InferenceSession.create(path.join(dir, m.file), options);
    for (const batch of [1, 1000]) {
      const feeds = {};
      for (const [iname, dtype, dims, file] of m.inputs) {
        feeds[iname] = loadInput(dtype, dims, file, batch, iname === 'idx');
      }
      const theirs = await p50(session, feeds);
      const mine = ours.get(`${name} ${batch}`);
      const net = Math.max(theirs - floor, 0.01);
      const ratio = mine / net;
      ratios.push(ratio);
      console.log(`${name.padEnd(32)} ${String(batch).padStart(6)} ${mine.toFixed(2).padStart(9)} ` +
                  `${theirs.toFixed(2).padStart(9)} ${net.toFixed(2).padStart(10)} ${ratio.toFixed(2).padStart(8)}`);
    }
    await session.release();
  }
  const geo = Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length);
  console.log(`geometric mean ratio (ours / (ORT - floor)): ${geo.toFixed(2)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
