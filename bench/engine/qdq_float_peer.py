"""The float peer of the golden QDQ CNN, for bench/engine: a folder holding qdq_cnn and the
same network with its QuantizeLinear/DequantizeLinear pairs removed (weights and biases
dequantised once into FLOAT initializers), at batch 1 and 8, with an inputs.txt that
onnx_bench and run_models_bench.js read.

    /usr/bin/python3 bench/engine/qdq_float_peer.py <build>/tests/onnx_models <out folder>
    node bench/engine/run_models_bench.js <build>/bench/engine/onnx_bench <out folder>
"""
import os
import shutil
import sys

import onnx
from onnx import numpy_helper


def float_peer(model):
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    rename = {}  # a Q or DQ output -> the value it stands for
    keep, new_inits = [], []
    for node in g.node:
        ins = [rename.get(i, i) for i in node.input]
        if node.op_type == "DequantizeLinear" and ins[0] in inits:
            x, s = inits[ins[0]].astype("float32"), inits[ins[1]]
            z = inits[ins[2]].astype("float32") if len(ins) > 2 else 0
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if s.ndim == 1 and s.size > 1:
                shape = [1] * x.ndim
                shape[axis] = -1
                s, z = s.reshape(shape), (z.reshape(shape) if not isinstance(z, int) else z)
            new_inits.append(numpy_helper.from_array(((x - z) * s).astype("float32"), node.output[0]))
            continue
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            rename[node.output[0]] = ins[0]
            continue
        del node.input[:]
        node.input.extend(ins)
        keep.append(node)
    for out in g.output:
        src = rename.get(out.name)
        if src is not None:
            keep.append(onnx.helper.make_node("Identity", [src], [out.name]))
    del g.node[:]
    g.node.extend(keep)
    g.initializer.extend(new_inits)
    used = {i for n in g.node for i in n.input}
    live = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    return model


def main(src, out):
    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(src, "qdq_cnn.onnx"), out)
    onnx.save(float_peer(onnx.load(os.path.join(src, "qdq_cnn.onnx"))), os.path.join(out, "qdq_cnn_float.onnx"))
    lines = []
    for batch in (1, 8):
        data = f"qdq_cnn_b{batch}.input.bin"
        shutil.copy(os.path.join(src, data), out)
        for name in ("qdq_cnn", "qdq_cnn_float"):
            lines += [f"model {name}_b{batch} {name}.onnx",
                      f"input {name}_b{batch} input float32 {batch},3,32,32 {data}"]
    with open(os.path.join(out, "inputs.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
