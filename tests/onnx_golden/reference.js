// Scores the golden models with onnxruntime-node (the reference peer) and writes the outputs
// next to them:   node tests/onnx_golden/reference.js DIR
// Reads DIR/inputs.txt (written by generate.py); writes DIR/<model>.<output>.bin and
// DIR/outputs.txt with lines "output <model> <name> <dtype> <dims> <file>". Other lines of
// inputs.txt (models.py's "compare" rules) are the C++ tests' business.
// onnxruntime-node comes from bench/engine/node_modules (npm install --ignore-scripts).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, '../../bench/engine/node_modules/onnxruntime-node'));

function readTensor(dir, dtype, dims, file) {
  const buf = fs.readFileSync(path.join(dir, file));
  const shape = dims === '' ? [] : dims.split(',').map(Number);
  const bytes = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  switch (dtype) {
    case 'float32': return new ort.Tensor('float32', new Float32Array(bytes), shape);
    case 'float64': return new ort.Tensor('float64', new Float64Array(bytes), shape);
    case 'int64': return new ort.Tensor('int64', new BigInt64Array(bytes), shape);
    case 'int32': return new ort.Tensor('int32', new Int32Array(bytes), shape);
    case 'uint8': return new ort.Tensor('uint8', new Uint8Array(bytes), shape);
    case 'string': {
      const out = [];
      for (let off = 0; off < buf.length;) {
        const n = buf.readUInt32LE(off);
        out.push(buf.toString('utf8', off + 4, off + 4 + n));
        off += 4 + n;
      }
      return new ort.Tensor('string', out, shape);
    }
    default: throw new Error('unknown dtype ' + dtype);
  }
}

function writeTensor(dir, file, t) {
  let buf;
  if (t.type === 'string') {
    const parts = [];
    for (const s of t.data) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    }
    buf = Buffer.concat(parts);
  } else {
    buf = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }
  fs.writeFileSync(path.join(dir, file), buf);
}

async function main() {
  const dir = process.argv[2];
  const lines = fs.readFileSync(path.join(dir, 'inputs.txt'), 'utf8').split('\n').filter(Boolean);
  const models = new Map();
  for (const line of lines) {
    const f = line.split(' ');
    if (f[0] === 'model') models.set(f[1], { file: f[2], feeds: {} });
    else if (f[0] === 'input') models.get(f[1]).feeds[f[2]] = readTensor(dir, f[3], f[4], f[5]);
  }
  const out = [];
  // Cases that share a model file (batch 1 and batch 8) share its session.
  const sessions = new Map();
  for (const [name, m] of models) {
    if (!sessions.has(m.file)) {
      sessions.set(m.file, await ort.InferenceSession.create(path.join(dir, m.file), {
        executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3,
      }));
    }
    const session = sessions.get(m.file);
    const result = await session.run(m.feeds);
    for (const oname of session.outputNames) {
      const t = result[oname];
      const file = `${name}.${oname}.bin`;
      writeTensor(dir, file, t);
      const dtype = t.type === 'float32' ? 'float32' : t.type === 'float64' ? 'float64'
                  : t.type === 'int64' ? 'int64' : t.type === 'int32' ? 'int32' : 'string';
      out.push(`output ${name} ${oname} ${dtype} ${t.dims.join(',')} ${file}`);
    }
  }
  for (const session of sessions.values()) await session.release();
  fs.writeFileSync(path.join(dir, 'outputs.txt'), out.join('\n') + '\n');
  console.log(`${models.size} models scored by onnxruntime-node ${require(path.join(__dirname, '../../bench/engine/node_modules/onnxruntime-node/package.json')).version}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
