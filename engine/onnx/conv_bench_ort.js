// onnxruntime-node's p50 (one thread, all graph optimisations) on the models that
// `onnx_conv_bench --models DIR` writes, to set beside the engine's figures of the same run.
//
//   node engine/onnx/conv_bench_ort.js DIR [seconds [threads]]
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, '../../bench/engine/node_modules/onnxruntime-node'));

const [dir, secondsArg, threadsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || '1');
const threads = Number(threadsArg || '1');

async function main() {
  for (const t of threads > 1 ? [1, threads] : [1]) {
  const options = { executionProviders: ['cpu'], intraOpNumThreads: t, interOpNumThreads: 1,
                    executionMode: 'sequential', graphOptimizationLevel: 'all',
                    logSeverityLevel: 3 };
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort()) {
    const session = await ort.InferenceSession.create(path.join(dir, file), options);
    const n = Number(file.match(/_b(\d+)\.onnx$/)[1]);
    const data = new Float32Array(n * 3 * 224 * 224);
    for (let i = 0; i < data.length; i++) data[i] = ((i % 17) - 8) * 0.01;
    const feeds = { x: new ort.Tensor('float32', data, [n, 3, 224, 224]) };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const lat = [];
    const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
    while (process.hrtime.bigint() < end || lat.length < 3) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    // The fastest run, as onnx_conv_bench reports ours: on a shared machine the others
    // measure the neighbours.
    console.log(`ort ${file.replace('.onnx', '')}_t${t} ${Math.min(...lat).toFixed(0)} us`);
  }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
