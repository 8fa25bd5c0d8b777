#!/usr/bin/python3
"""Writes the seed corpus of onnx_import_fuzz: small ONNX models that reach the importer's
and compiler's main paths. Run with Debian's /usr/bin/python3 (python3-onnx):

    /usr/bin/python3 engine/onnx/testdata/make_fuzz_seeds.py engine/onnx/testdata/fuzz_seeds
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def save(model, folder, name):
    with open(os.path.join(folder, name), "wb") as f:
        f.write(model.SerializeToString())


def mlp():
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(np.zeros(8, np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 3)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["o"]),
        helper.make_node("Softmax", ["o"], ["y"], axis=1),
    ]
    g = helper.make_graph(nodes, "mlp",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                          [w1, b1, w2])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def shapes():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
        helper.make_node("Concat", ["n1", "rest"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
        helper.make_node("ReduceSum", ["t", "axes"], ["y"], keepdims=0),
        helper.make_node("Cast", ["y"], ["z"], to=TensorProto.DOUBLE),
    ]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "zero1"),
             numpy_helper.from_array(np.array([2, 2], np.int64), "rest"),
             numpy_helper.from_array(np.array([1], np.int64), "axes")]
    g = helper.make_graph(nodes, "shapes",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("z", TensorProto.DOUBLE, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def trees():
    node = helper.make_node(
        "TreeEnsembleClassifier", ["x"], ["label", "prob"], domain="ai.onnx.ml",
        nodes_treeids=[0, 0, 0, 1, 1, 1], nodes_nodeids=[0, 1, 2, 0, 1, 2],
        nodes_featureids=[0, 0, 0, 1, 0, 0],
        nodes_modes=["BRANCH_LT", "LEAF", "LEAF", "BRANCH_LT", "LEAF", "LEAF"],
        nodes_values=[0.5, 0, 0, -1, 0, 0], nodes_truenodeids=[1, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[2, 0, 0, 2, 0, 0], nodes_missing_value_tracks_true=[1, 0, 0, 0, 0, 0],
        class_treeids=[0, 0, 1, 1], class_nodeids=[1, 2, 1, 2], class_ids=[0, 0, 0, 0],
        class_weights=[0.5, -0.5, 0.25, -0.25], classlabels_int64s=[0, 1], base_values=[0.1],
        post_transform="LOGISTIC")
    zip_node = helper.make_node("ZipMap", ["prob"], ["zipped"], domain="ai.onnx.ml",
                                classlabels_int64s=[0, 1])
    g = helper.make_graph([node, zip_node], "trees",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                          [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
                           helper.make_tensor_value_info("zipped", TensorProto.FLOAT, ["N", 2])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                               helper.make_opsetid("ai.onnx.ml", 3)])


def linear():
    nodes = [
        helper.make_node("Scaler", ["x"], ["s"], domain="ai.onnx.ml", offset=[1.0], scale=[2.0]),
        helper.make_node("LinearClassifier", ["s"], ["label", "scores"], domain="ai.onnx.ml",
                         coefficients=[1.0, -1.0, 0.5, 0.5], intercepts=[0.0, 1.0],
                         classlabels_strings=["no", "yes"], post_transform="SOFTMAX"),
        helper.make_node("Normalizer", ["scores"], ["n"], domain="ai.onnx.ml", norm="L2"),
    ]
    g = helper.make_graph(nodes, "linear",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                          [helper.make_tensor_value_info("label", TensorProto.STRING, ["N"]),
                           helper.make_tensor_value_info("n", TensorProto.FLOAT, ["N", 2])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                               helper.make_opsetid("ai.onnx.ml", 1)])


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    save(mlp(), out, "mlp.onnx")
    save(shapes(), out, "shapes.onnx")
    save(trees(), out, "trees.onnx")
    save(linear(), out, "linear.onnx")
