#!/usr/bin/python3
"""Builds the golden models of Outpost's ONNX engine and the inputs they are scored on.

    /usr/bin/python3 tests/onnx_golden/generate.py OUT_DIR CONVERTER

writes OUT_DIR/<model>.onnx, OUT_DIR/<model>.<input>.bin and OUT_DIR/inputs.txt; then
reference.js (onnxruntime-node) scores them into OUT_DIR/<model>.<output>.bin and
OUT_DIR/outputs.txt. The C++ test onnx_golden_test compares the engine with those outputs.

Models: trees from XGBoost (through Outpost's own C++ converter, CONVERTER =
onnx_xgboost_convert) and from scikit-learn (through the small converter below), linear
models, scalers and other ONNX-ML operators, MLPs and a 1-D CNN exported by torch. Every
model is scored on 1000 rows that include missing values (NaN) and values exactly at split
thresholds. Seeds are fixed: the output is reproducible.

Runs with Debian's interpreter and packages: python3-onnx, python3-sklearn, python3-xgboost,
python3-torch, python3-numpy.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROWS = 1000
OPSET = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]

# ---- bookkeeping -------------------------------------------------------------------------

MANIFEST = []  # lines of inputs.txt


def write_tensor(out_dir, model, name, array):
    """Writes one input as raw little-endian bytes (strings: u32 length + bytes each)."""
    path = f"{model}.{name}.bin"
    if array.dtype.kind in "UO":
        with open(os.path.join(out_dir, path), "wb") as f:
            for s in array.ravel():
                b = str(s).encode()
                f.write(len(b).to_bytes(4, "little"))
                f.write(b)
        dtype = "string"
    else:
        dtype = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64",
                 np.dtype(np.int64): "int64", np.dtype(np.int32): "int32"}[array.dtype]
        with open(os.path.join(out_dir, path), "wb") as f:
            f.write(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
    dims = ",".join(str(d) for d in array.shape)
    MANIFEST.append(f"input {model} {name} {dtype} {dims} {path}")


def save(out_dir, name, model, inputs):
    """model: ModelProto; inputs: {name: array}."""
    onnx.checker.check_model(model)
    with open(os.path.join(out_dir, f"{name}.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    MANIFEST.append(f"model {name} {name}.onnx")
    for k, v in inputs.items():
        write_tensor(out_dir, name, k, v)


def rows_with_edges(rng, n_features, thresholds=None, nan_rate=0.05, ints=False):
    """ROWS rows of features; some entries NaN, some exactly at model thresholds."""
    if ints:
        x = rng.integers(0, 10, size=(ROWS, n_features)).astype(np.float32)
    else:
        x = rng.standard_normal((ROWS, n_features)).astype(np.float32)
    if thresholds:
        for _ in range(ROWS // 4):
            f = int(rng.integers(0, n_features))
            cands = thresholds.get(f)
            if cands:
                x[int(rng.integers(0, ROWS)), f] = np.float32(cands[int(rng.integers(0, len(cands)))])
    if nan_rate:
        mask = rng.random(x.shape) < nan_rate
        x[mask] = np.nan
    return x


def tree_thresholds(nodes_featureids, nodes_values, nodes_modes):
    out = {}
    for f, v, m in zip(nodes_featureids, nodes_values, nodes_modes):
        if m != "LEAF":
            out.setdefault(int(f), []).append(float(np.float32(v)))
    return out


def tensor_info(name, elem, dims):
    return helper.make_tensor_value_info(name, elem, dims)


# ---- scikit-learn trees -> TreeEnsemble ---------------------------------------------------

def sk_tree_nodes(tree, tree_id, attrs, leaf_fn):
    t = tree.tree_
    for i in range(t.node_count):
        attrs["nodes_treeids"].append(tree_id)
        attrs["nodes_nodeids"].append(i)
        if t.children_left[i] == -1:
            attrs["nodes_modes"].append("LEAF")
            attrs["nodes_featureids"].append(0)
            attrs["nodes_values"].append(0.0)
            attrs["nodes_truenodeids"].append(0)
            attrs["nodes_falsenodeids"].append(0)
            leaf_fn(tree_id, i, t.value[i])
        else:
            attrs["nodes_modes"].append("BRANCH_LEQ")
            attrs["nodes_featureids"].append(int(t.feature[i]))
            attrs["nodes_values"].append(float(np.float32(t.threshold[i])))
            attrs["nodes_truenodeids"].append(int(t.children_left[i]))
            attrs["nodes_falsenodeids"].append(int(t.children_right[i]))


def empty_tree_attrs():
    return {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_modes", "nodes_featureids",
                            "nodes_values", "nodes_truenodeids", "nodes_falsenodeids"]}


def sk_regressor(estimators, n_features, scale=1.0, base=0.0, aggregate="SUM"):
    attrs = empty_tree_attrs()
    targets = {"target_treeids": [], "target_nodeids": [], "target_ids": [], "target_weights": []}

    def leaf(tid, nid, value):
        targets["target_treeids"].append(tid)
        targets["target_nodeids"].append(nid)
        targets["target_ids"].append(0)
        targets["target_weights"].append(float(value.ravel()[0]) * scale)

    for i, est in enumerate(estimators):
        sk_tree_nodes(est, i, attrs, leaf)
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml",
                            n_targets=1, aggregate_function=aggregate, base_values=[base],
                            **attrs, **targets)
    g = helper.make_graph([node], "sk_regressor",
                          [tensor_info("X", TensorProto.FLOAT, ["N", n_features])],
                          [tensor_info("Y", TensorProto.FLOAT, ["N", 1])])
    return helper.make_model(g, opset_imports=OPSET), attrs


def sk_forest_classifier(estimators, n_features, classes, labels_str=False):
    attrs = empty_tree_attrs()
    cls = {"class_treeids": [], "class_nodeids": [], "class_ids": [], "class_weights": []}
    n = len(estimators)

    def leaf(tid, nid, value):
        probs = value.ravel() / value.ravel().sum()
        for c, p in enumerate(probs):
            cls["class_treeids"].append(tid)
            cls["class_nodeids"].append(nid)
            cls["class_ids"].append(c)
            cls["class_weights"].append(float(p) / n)

    for i, est in enumerate(estimators):
        sk_tree_nodes(est, i, attrs, leaf)
    labels = ({"classlabels_strings": [f"class_{c}" for c in classes]} if labels_str
              else {"classlabels_int64s": [int(c) for c in classes]})
    node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"],
                            domain="ai.onnx.ml", **attrs, **cls, **labels)
    g = helper.make_graph([node], "sk_forest",
                          [tensor_info("X", TensorProto.FLOAT, ["N", n_features])],
                          [tensor_info("label", TensorProto.STRING if labels_str else TensorProto.INT64, ["N"]),
                           tensor_info("probabilities", TensorProto.FLOAT, ["N", len(classes)])])
    return helper.make_model(g, opset_imports=OPSET), attrs


def sk_gbt_classifier(model, n_features):
    """GradientBoostingClassifier: binary (one score, LOGISTIC) or multiclass (SOFTMAX)."""
    attrs = empty_tree_attrs()
    cls = {"class_treeids": [], "class_nodeids": [], "class_ids": [], "class_weights": []}
    k = model.estimators_.shape[1]
    lr = model.learning_rate
    tree_id = 0
    for stage in model.estimators_:
        for c, est in enumerate(stage):
            def leaf(tid, nid, value, c=c):
                cls["class_treeids"].append(tid)
                cls["class_nodeids"].append(nid)
                cls["class_ids"].append(c)
                cls["class_weights"].append(float(value.ravel()[0]) * lr)
            sk_tree_nodes(est, tree_id, attrs, leaf)
            tree_id += 1
    x0 = np.zeros((1, n_features))
    init = model._raw_predict_init(x0).ravel()
    if k == 1:
        extra = {"base_values": [float(init[0])], "post_transform": "LOGISTIC"}
    else:
        extra = {"base_values": [float(v) for v in init], "post_transform": "SOFTMAX"}
    node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"],
                            domain="ai.onnx.ml", classlabels_int64s=[int(c) for c in model.classes_],
                            **attrs, **cls, **extra)
    g = helper.make_graph([node], "sk_gbt",
                          [tensor_info("X", TensorProto.FLOAT, ["N", n_features])],
                          [tensor_info("label", TensorProto.INT64, ["N"]),
                           tensor_info("probabilities", TensorProto.FLOAT, ["N", len(model.classes_)])])
    return helper.make_model(g, opset_imports=OPSET), attrs


# ---- linear models and preprocessing ------------------------------------------------------

def linear_classifier_model(coef, intercepts, labels, post, n_features, normalizer=None,
                            scaler=None):
    nodes = []
    inp = "X"
    if scaler is not None:
        nodes.append(helper.make_node("Scaler", ["X"], ["Xs"], domain="ai.onnx.ml",
                                      offset=[float(v) for v in scaler[0]],
                                      scale=[float(v) for v in scaler[1]]))
        inp = "Xs"
    nodes.append(helper.make_node("LinearClassifier", [inp], ["label", "scores"], domain="ai.onnx.ml",
                                  coefficients=[float(v) for v in np.ravel(coef)],
                                  intercepts=[float(v) for v in np.ravel(intercepts)],
                                  classlabels_ints=[int(c) for c in labels], post_transform=post))
    out = "scores"
    if normalizer:
        nodes.append(helper.make_node("Normalizer", ["scores"], ["probabilities"],
                                      domain="ai.onnx.ml", norm=normalizer))
        out = "probabilities"
    width = len(labels) if len(np.ravel(intercepts)) > 1 or len(labels) == 2 else 1
    g = helper.make_graph(nodes, "linear",
                          [tensor_info("X", TensorProto.FLOAT, ["N", n_features])],
                          [tensor_info("label", TensorProto.INT64, ["N"]),
                           tensor_info(out, TensorProto.FLOAT, ["N", width])])
    return helper.make_model(g, opset_imports=OPSET)


def single_op_model(name, op, inputs, outputs, **attrs):
    node = helper.make_node(op, [i.name for i in inputs], [o.name for o in outputs],
                            domain="ai.onnx.ml", **attrs)
    g = helper.make_graph([node], name, inputs, outputs)
    return helper.make_model(g, opset_imports=OPSET)


# ---- torch ----------------------------------------------------------------------------------

def torch_export(module, example, path, dynamic=True):
    import torch
    module.eval()
    torch.onnx.export(module, example, path, input_names=["X"], output_names=["Y"],
                      dynamic_axes={"X": {0: "N"}, "Y": {0: "N"}} if dynamic else None,
                      opset_version=13, do_constant_folding=True)
    return onnx.load(path)


def main():
    out_dir, converter = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(2026)
    import sklearn.datasets as skd
    from sklearn import ensemble, linear_model, preprocessing, tree
    import torch
    import xgboost as xgb
    torch.manual_seed(0)

    # --- XGBoost through Outpost's converter ---
    tmp = tempfile.mkdtemp()

    def xgb_case(name, params, x, y, rounds, ints=False):
        dtrain = xgb.DMatrix(x, label=y, missing=np.nan)
        params = dict(params, seed=0, nthread=1, tree_method="hist")
        booster = xgb.train(params, dtrain, num_boost_round=rounds)
        js = os.path.join(tmp, name + ".json")
        booster.save_model(js)
        onnx_path = os.path.join(out_dir, name + ".onnx")
        subprocess.run([converter, js, onnx_path], check=True)
        model = onnx.load(onnx_path)
        attrs = {a.name: helper.get_attribute_value(a) for a in model.graph.node[0].attribute}
        th = tree_thresholds(attrs["nodes_featureids"], attrs["nodes_values"],
                             [m.decode() for m in attrs["nodes_modes"]])
        xt = rows_with_edges(rng, x.shape[1], th, ints=ints)
        MANIFEST.append(f"model {name} {name}.onnx")
        write_tensor(out_dir, name, "input", xt)

    x, y = skd.make_classification(n_samples=2000, n_features=10, n_informative=6, random_state=1)
    x = x.astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    xgb_case("xgb_binary_d3", {"objective": "binary:logistic", "max_depth": 3}, x, y, 20)
    xgb_case("xgb_binary_d6_100", {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1}, x, y, 100)
    xgb_case("xgb_logitraw", {"objective": "binary:logitraw", "max_depth": 4}, x, y, 30)
    xr, yr = skd.make_regression(n_samples=2000, n_features=8, noise=0.5, random_state=2)
    xr = xr.astype(np.float32)
    yr = yr / 100  # targets of order 1, as a scaled regression target is in practice
    xgb_case("xgb_regression_d4", {"objective": "reg:squarederror", "max_depth": 4}, xr, yr, 50)
    xgb_case("xgb_regression_d6_100", {"objective": "reg:squarederror", "max_depth": 6}, xr, yr, 100)
    xgb_case("xgb_poisson", {"objective": "count:poisson", "max_depth": 3}, xr, np.abs(yr) / 10, 30)
    xm, ym = skd.make_classification(n_samples=2000, n_features=12, n_informative=8, n_classes=4,
                                     random_state=3)
    xm = xm.astype(np.float32)
    xgb_case("xgb_multiclass_softprob", {"objective": "multi:softprob", "num_class": 4, "max_depth": 4}, xm, ym, 25)
    xgb_case("xgb_multiclass_softmax", {"objective": "multi:softmax", "num_class": 4, "max_depth": 3}, xm, ym, 15)
    xi = rng.integers(0, 10, size=(2000, 6)).astype(np.float32)
    yi = (xi[:, 0] + xi[:, 1] > 9).astype(np.float32)
    xgb_case("xgb_integer_features", {"objective": "binary:logistic", "max_depth": 5}, xi, yi, 30, ints=True)
    xgb_case("xgb_dart", {"objective": "binary:logistic", "booster": "dart", "max_depth": 3,
                          "rate_drop": 0.2}, x, y, 20)

    # --- scikit-learn trees through the converter above ---
    xc, yc = skd.make_classification(n_samples=1500, n_features=8, n_informative=5, random_state=4)
    xc = xc.astype(np.float32)
    for depth in (3, 6):
        m = tree.DecisionTreeRegressor(max_depth=depth, random_state=0).fit(xr, yr)
        model, attrs = sk_regressor([m], 8)
        save(out_dir, f"sk_tree_regressor_d{depth}", model,
             {"X": rows_with_edges(rng, 8, tree_thresholds(attrs["nodes_featureids"], attrs["nodes_values"], attrs["nodes_modes"]))})
    m = ensemble.RandomForestRegressor(n_estimators=20, max_depth=5, random_state=0).fit(xr, yr)
    model, attrs = sk_regressor(m.estimators_, 8, aggregate="AVERAGE")
    save(out_dir, "sk_forest_regressor", model,
         {"X": rows_with_edges(rng, 8, tree_thresholds(attrs["nodes_featureids"], attrs["nodes_values"], attrs["nodes_modes"]))})
    m = ensemble.GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=0).fit(xr, yr)
    model, attrs = sk_regressor([e[0] for e in m.estimators_], 8, scale=m.learning_rate,
                                base=float(m.init_.constant_.ravel()[0]))
    save(out_dir, "sk_gbt_regressor", model,
         {"X": rows_with_edges(rng, 8, tree_thresholds(attrs["nodes_featureids"], attrs["nodes_values"], attrs["nodes_modes"]))})
    for name, n_est, labels_str in (("sk_forest_binary", 10, False), ("sk_forest_binary_strings", 10, True)):
        m = ensemble.RandomForestClassifier(n_estimators=n_est, max_depth=6, random_state=0).fit(xc, yc)
        model, attrs = sk_forest_classifier(m.estimators_, 8, m.classes_, labels_str)
        save(out_dir, name, model,
             {"X": rows_with_edges(rng, 8, tree_thresholds(attrs["nodes_featureids"], attrs["nodes_values"], attrs["nodes_modes"]))})
    m = ensemble.RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0).fit(xm, ym)
    model, attrs = sk_forest_classifier(m.estimators_, 12, m.classes_)
    save(out_dir, "sk_forest_multiclass", model,
         {"X": rows_with_edges(rng, 12, tree_thresholds(attrs["nodes_featureids"], attrs["nodes_values"], attrs["nodes_modes"]))})
    m = ensemble.ExtraTreesClassifier(n_estimators=10, max_depth=6, random_state=0).fit(xm, ym)
    model, attrs = sk_forest_classifier(m.estimators_, 12, m.classes_)
    save(out_dir, "sk_extra_trees_multiclass", model,
         {"X": rows_with_edges(rng, 12, tree_thresholds(attrs["nodes_featureids"], attrs["nodes_values"], attrs["nodes_modes"]))})
    m = ensemble.GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(xc, yc)
    model, attrs = sk_gbt_classifier(m, 8)
    save(out_dir, "sk_gbt_binary", model,
         {"X": rows_with_edges(rng, 8, tree_thresholds(attrs["nodes_featureids"], attrs["nodes_values"], attrs["nodes_modes"]))})
    m = ensemble.GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0).fit(xm, ym)
    model, attrs = sk_gbt_classifier(m, 12)
    save(out_dir, "sk_gbt_multiclass", model,
         {"X": rows_with_edges(rng, 12, tree_thresholds(attrs["nodes_featureids"], attrs["nodes_values"], attrs["nodes_modes"]))})

    # --- linear models, scalers and the other ONNX-ML operators ---
    lin = linear_model.LinearRegression().fit(xr, yr)
    node = helper.make_node("LinearRegressor", ["X"], ["Y"], domain="ai.onnx.ml",
                            coefficients=[float(v) for v in lin.coef_], intercepts=[float(lin.intercept_)])
    g = helper.make_graph([node], "linreg", [tensor_info("X", TensorProto.FLOAT, ["N", 8])],
                          [tensor_info("Y", TensorProto.FLOAT, ["N", 1])])
    save(out_dir, "linear_regressor", helper.make_model(g, opset_imports=OPSET), {"X": rows_with_edges(rng, 8)})
    ridge = linear_model.Ridge().fit(xr, np.stack([yr, -2 * yr], axis=1))
    node = helper.make_node("LinearRegressor", ["X"], ["Y"], domain="ai.onnx.ml", targets=2,
                            coefficients=[float(v) for v in ridge.coef_.ravel()],
                            intercepts=[float(v) for v in ridge.intercept_])
    g = helper.make_graph([node], "ridge2", [tensor_info("X", TensorProto.FLOAT, ["N", 8])],
                          [tensor_info("Y", TensorProto.FLOAT, ["N", 2])])
    save(out_dir, "linear_regressor_two_targets", helper.make_model(g, opset_imports=OPSET), {"X": rows_with_edges(rng, 8)})
    scaler = preprocessing.StandardScaler().fit(xc)
    lr = linear_model.LogisticRegression(max_iter=500).fit(scaler.transform(xc), yc)
    coef2 = np.concatenate([-lr.coef_, lr.coef_])
    int2 = np.concatenate([-lr.intercept_, lr.intercept_])
    save(out_dir, "logistic_binary_pipeline",
         linear_classifier_model(coef2, int2, lr.classes_, "LOGISTIC", 8, normalizer="L1",
                                 scaler=(scaler.mean_, 1 / scaler.scale_)),
         {"X": rows_with_edges(rng, 8)})
    save(out_dir, "logistic_binary_one_score",
         linear_classifier_model(lr.coef_, lr.intercept_, lr.classes_, "NONE", 8),
         {"X": rows_with_edges(rng, 8)})
    lrm = linear_model.LogisticRegression(max_iter=500).fit(xm, ym)
    save(out_dir, "logistic_multiclass_softmax",
         linear_classifier_model(lrm.coef_, lrm.intercept_, lrm.classes_, "SOFTMAX", 12),
         {"X": rows_with_edges(rng, 12)})
    svm = __import__("sklearn.svm", fromlist=["LinearSVC"]).LinearSVC(max_iter=5000).fit(xm, ym)
    save(out_dir, "linear_svc_multiclass",
         linear_classifier_model(svm.coef_, svm.intercept_, svm.classes_, "NONE", 12),
         {"X": rows_with_edges(rng, 12)})
    mm = preprocessing.MinMaxScaler().fit(xr)
    save(out_dir, "minmax_scaler",
         single_op_model("mm", "Scaler", [tensor_info("X", TensorProto.FLOAT, ["N", 8])],
                         [tensor_info("Y", TensorProto.FLOAT, ["N", 8])],
                         offset=[float(v) for v in mm.data_min_], scale=[float(v) for v in mm.scale_]),
         {"X": rows_with_edges(rng, 8)})
    for norm in ("MAX", "L1", "L2"):
        save(out_dir, f"normalizer_{norm.lower()}",
             single_op_model("norm", "Normalizer", [tensor_info("X", TensorProto.FLOAT, ["N", 6])],
                             [tensor_info("Y", TensorProto.FLOAT, ["N", 6])], norm=norm),
             {"X": rows_with_edges(rng, 6, nan_rate=0)})
    save(out_dir, "binarizer",
         single_op_model("bin", "Binarizer", [tensor_info("X", TensorProto.FLOAT, ["N", 5])],
                         [tensor_info("Y", TensorProto.FLOAT, ["N", 5])], threshold=0.25),
         {"X": np.round(rows_with_edges(rng, 5, nan_rate=0) * 4) / 4})
    save(out_dir, "imputer",
         single_op_model("imp", "Imputer", [tensor_info("X", TensorProto.FLOAT, ["N", 4])],
                         [tensor_info("Y", TensorProto.FLOAT, ["N", 4])],
                         imputed_value_floats=[1.5, -2.0, 0.0, 7.0], replaced_value_float=float("nan")),
         {"X": rows_with_edges(rng, 4, nan_rate=0.2)})
    save(out_dir, "array_feature_extractor",
         single_op_model("afe", "ArrayFeatureExtractor",
                         [tensor_info("X", TensorProto.FLOAT, ["N", 6]), tensor_info("idx", TensorProto.INT64, [3])],
                         [tensor_info("Y", TensorProto.FLOAT, ["N", 3])]),
         {"X": rows_with_edges(rng, 6), "idx": np.array([5, 0, 2], np.int64)})
    cats = np.array([f"c{i}" for i in range(7)])
    save(out_dir, "one_hot_encoder_strings",
         single_op_model("ohe", "OneHotEncoder", [tensor_info("X", TensorProto.STRING, ["N", 1])],
                         [tensor_info("Y", TensorProto.FLOAT, ["N", 1, 5])],
                         cats_strings=[f"c{i}" for i in range(5)], zeros=1),
         {"X": cats[rng.integers(0, 7, size=(ROWS, 1))].astype(object)})
    save(out_dir, "label_encoder_string_to_int",
         single_op_model("le", "LabelEncoder", [tensor_info("X", TensorProto.STRING, ["N"])],
                         [tensor_info("Y", TensorProto.INT64, ["N"])],
                         keys_strings=[f"c{i}" for i in range(5)], values_int64s=[10, 20, 30, 40, 50],
                         default_int64=-1),
         {"X": cats[rng.integers(0, 7, size=ROWS)].astype(object)})
    save(out_dir, "label_encoder_int_to_string",
         single_op_model("le2", "LabelEncoder", [tensor_info("X", TensorProto.INT64, ["N"])],
                         [tensor_info("Y", TensorProto.STRING, ["N"])],
                         keys_int64s=[1, 2, 3], values_strings=["one", "two", "three"], default_string="many"),
         {"X": rng.integers(0, 6, size=ROWS).astype(np.int64)})
    fv = helper.make_node("FeatureVectorizer", ["A", "B"], ["Y"], domain="ai.onnx.ml", inputdimensions=[3, 1])
    g = helper.make_graph([fv], "fv", [tensor_info("A", TensorProto.INT64, ["N", 3]),
                                       tensor_info("B", TensorProto.INT64, ["N", 2])],
                          [tensor_info("Y", TensorProto.FLOAT, ["N", 4])])
    save(out_dir, "feature_vectorizer", helper.make_model(g, opset_imports=OPSET),
         {"A": rng.integers(-50, 50, size=(ROWS, 3)).astype(np.int64),
          "B": rng.integers(-5, 5, size=(ROWS, 2)).astype(np.int64)})

    # --- torch: MLPs and a 1-D CNN ---
    nn = torch.nn
    mlps = {
        "mlp_tiny_relu": nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3), nn.Softmax(dim=1)),
        "mlp_32_64_64_3_tanh": nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                                            nn.Linear(64, 3)),
        "mlp_batchnorm_dropout": nn.Sequential(nn.Linear(12, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                               nn.Dropout(0.2), nn.Linear(32, 1), nn.Sigmoid()),
        "mlp_leaky_elu": nn.Sequential(nn.Linear(10, 24), nn.LeakyReLU(0.1), nn.Linear(24, 24), nn.ELU(),
                                       nn.Linear(24, 4), nn.LogSoftmax(dim=1)),
        "mlp_gelu_regression": nn.Sequential(nn.Linear(6, 20), nn.GELU(), nn.Linear(20, 1)),
        "mlp_hardtanh_softplus": nn.Sequential(nn.Linear(5, 16), nn.Hardtanh(), nn.Linear(16, 8),
                                               nn.Softplus(), nn.Linear(8, 2)),
    }
    for name, module in mlps.items():
        n_in = module[0].in_features
        for p in module.modules():
            if isinstance(p, nn.BatchNorm1d):
                p.running_mean.uniform_(-0.5, 0.5)
                p.running_var.uniform_(0.5, 2.0)
        path = os.path.join(out_dir, name + ".onnx")
        torch_export(module, torch.randn(2, n_in), path)
        MANIFEST.append(f"model {name} {name}.onnx")
        write_tensor(out_dir, name, "X", rows_with_edges(rng, n_in, nan_rate=0.002))

    class Cnn1d(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv1d(4, 8, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                                      nn.Conv1d(8, 16, 3, stride=2), nn.ReLU(),
                                      nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(16, 3))

        def forward(self, x):
            return self.body(x)

    path = os.path.join(out_dir, "cnn1d.onnx")
    torch_export(Cnn1d(), torch.randn(2, 4, 32), path)
    MANIFEST.append("model cnn1d cnn1d.onnx")
    write_tensor(out_dir, "cnn1d", "X", rng.standard_normal((ROWS, 4, 32)).astype(np.float32))

    with open(os.path.join(out_dir, "inputs.txt"), "w") as f:
        f.write("\n".join(MANIFEST) + "\n")


if __name__ == "__main__":
    main()
