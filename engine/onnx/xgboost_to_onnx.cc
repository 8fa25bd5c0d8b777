// XGBoost's JSON model as an ONNX tree ensemble. The model is read through the JSON adapter
// (base/json/json.h).
#include "engine/onnx/xgboost_to_onnx.h"

#include <cmath>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "base/json/json.h"
#include "engine/onnx/graph.h"
#include "engine/onnx/onnx_import.h"
#include "engine/xgboost_model_check.h"

namespace outpost::engine::onnx {
namespace {


Status Bad(const std::string& path, const std::string& what) {
  return InvalidArgumentError(path + ": " + what);
}

Result<json::Value> At(json::Value e, std::string_view key, const std::string& path) {
  std::optional<json::Value> out = e.Find(key);
  if (!out) return Bad(path, "missing \"" + std::string(key) + "\"");
  return *out;
}

Result<std::string> StringAt(json::Value e, std::string_view key, const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(json::Value v, At(e, key, path));
  Result<std::string_view> s = v.GetString();
  if (!s.ok()) return Bad(path + "." + std::string(key), "not a string");
  return std::string(*s);
}

// XGBoost writes its parameters as strings of numbers ("num_feature": "4").
Result<double> NumberInString(json::Value e, std::string_view key, const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(std::string s, StringAt(e, key, path));
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) {
    return Bad(path + "." + std::string(key), "\"" + s + "\" is not a number");
  }
  return v;
}

Result<std::vector<double>> Numbers(json::Value e, std::string_view key, const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(json::Value v, At(e, key, path));
  if (!v.is_array()) return Bad(path + "." + std::string(key), "not an array");
  std::vector<double> out;
  out.reserve(v.size());
  for (json::Value x : v.Items()) {
    if (Result<double> d = x.GetDouble(); d.ok()) {
      out.push_back(*d);
    } else if (Result<bool> b = x.GetBool(); b.ok()) {
      out.push_back(*b ? 1 : 0);
    } else {
      return Bad(path + "." + std::string(key), "holds a value that is not a number");
    }
  }
  return out;
}

Attribute Ints(const std::string& name, std::vector<int64_t> v) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kInts;
  a.ints = std::move(v);
  return a;
}
Attribute Floats(const std::string& name, std::vector<float> v) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kFloats;
  a.floats = std::move(v);
  return a;
}
Attribute Strings(const std::string& name, std::vector<std::string> v) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kStrings;
  a.strings = std::move(v);
  return a;
}
Attribute Int(const std::string& name, int64_t v) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kInt;
  a.i = v;
  return a;
}
Attribute Str(const std::string& name, std::string v) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kString;
  a.s = std::move(v);
  return a;
}

enum class Link { kIdentity, kLogit, kLog, kSoftprob, kSoftmax, kHinge };

Result<Link> LinkOf(const std::string& objective) {
  if (objective == "reg:squarederror" || objective == "reg:linear" ||
      objective == "reg:squaredlogerror" || objective == "reg:pseudohubererror" ||
      objective == "reg:absoluteerror" || objective.starts_with("rank:")) {
    return Link::kIdentity;
  }
  if (objective == "binary:logistic" || objective == "reg:logistic") return Link::kLogit;
  if (objective == "binary:logitraw") return Link::kIdentity;  // XGBoost keeps base_score as is
  if (objective == "count:poisson" || objective == "reg:gamma" || objective == "reg:tweedie") {
    return Link::kLog;
  }
  if (objective == "multi:softprob") return Link::kSoftprob;
  if (objective == "multi:softmax") return Link::kSoftmax;
  if (objective == "binary:hinge") return Link::kHinge;
  return UnimplementedError("objective \"" + objective + "\" has no ONNX form");
}

// Appends a node producing a fresh value; returns the value.
ValueId AddNode(Graph& g, const std::string& op, const std::string& domain,
                std::vector<ValueId> inputs, const std::string& output,
                std::vector<Attribute> attributes) {
  const ValueId out = g.AddValue(output, Value::Kind::kNodeOutput);
  Node n;
  n.name = output;
  n.op_type = op;
  n.domain = domain;
  n.opset = g.opsets[domain];
  n.inputs = std::move(inputs);
  n.outputs = {out};
  n.attributes = std::move(attributes);
  g.values[static_cast<size_t>(out)].producer = static_cast<int32_t>(g.nodes.size());
  g.nodes.push_back(std::move(n));
  return out;
}

constexpr char kModelPath[] = "learner.gradient_booster.model";

// The parts of an XGBoost JSON model the conversion reads. `trees` points into the parser
// that produced it, which must outlive it.
struct XGBoostTrees {
  double base_score = 0;
  std::vector<double> tree_weights;  // dart boosters only: one weight per tree
  std::vector<double> tree_info;     // each tree's output group
  json::Value trees;
};

// Reads base_score, the dart weights, tree_info and the trees array from the parsed model.
Result<XGBoostTrees> ReadTrees(json::Value doc, const XGBoostModelSummary& summary) {
  XGBoostTrees out;
  OUTPOST_ASSIGN_OR_RETURN(json::Value learner, At(doc, "learner", ""));
  OUTPOST_ASSIGN_OR_RETURN(json::Value lmp, At(learner, "learner_model_param", "learner"));
  OUTPOST_ASSIGN_OR_RETURN(out.base_score,
                           NumberInString(lmp, "base_score", "learner.learner_model_param"));
  OUTPOST_ASSIGN_OR_RETURN(json::Value booster, At(learner, "gradient_booster", "learner"));
  json::Value model = booster;
  if (summary.booster == "dart") {
    OUTPOST_ASSIGN_OR_RETURN(out.tree_weights,
                             Numbers(booster, "weight_drop", "learner.gradient_booster"));
    OUTPOST_ASSIGN_OR_RETURN(model, At(booster, "gbtree", "learner.gradient_booster"));
  }
  OUTPOST_ASSIGN_OR_RETURN(model, At(model, "model", "learner.gradient_booster"));
  const std::string mpath = kModelPath;
  OUTPOST_ASSIGN_OR_RETURN(out.tree_info, Numbers(model, "tree_info", mpath));
  OUTPOST_ASSIGN_OR_RETURN(json::Value trees_el, At(model, "trees", mpath));
  if (!trees_el.is_array()) return Bad(mpath + ".trees", "not an array");
  out.trees = trees_el;
  return out;
}

// XGBoost's base margin: base_score through the objective's inverse link, in float as
// XGBoost computes it.
Result<float> BaseMargin(Link link, double base_score) {
  const auto bs = static_cast<float>(base_score);
  float margin = bs;
  if (link == Link::kLogit) margin = -std::log(1.0f / bs - 1.0f);
  if (link == Link::kLog) margin = std::log(bs);
  if (!std::isfinite(margin)) {
    return InvalidArgumentError("base_score " + std::to_string(base_score) +
                                " has no finite margin under the objective");
  }
  return margin;
}

// TreeEnsembleRegressor's node attributes (one entry per node) and target attributes (one
// entry per leaf), in XGBoost's tree and node order.
struct EnsembleAttributes {
  std::vector<int64_t> treeids, nodeids, featureids, trueids, falseids, missing;
  std::vector<std::string> modes;
  std::vector<float> values;
  std::vector<int64_t> t_treeids, t_nodeids, t_ids;
  std::vector<float> t_weights;
};

// Appends tree number `t` of the model to `e`.
Status AppendTree(json::Value tree, size_t t, const XGBoostTrees& model, EnsembleAttributes& e) {
  const std::string mpath = kModelPath;
  const std::string tpath = mpath + ".trees[" + std::to_string(t) + "]";
  OUTPOST_ASSIGN_OR_RETURN(std::vector<double> left, Numbers(tree, "left_children", tpath));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<double> right, Numbers(tree, "right_children", tpath));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<double> cond, Numbers(tree, "split_conditions", tpath));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<double> index, Numbers(tree, "split_indices", tpath));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<double> dleft, Numbers(tree, "default_left", tpath));
  const size_t n = left.size();
  if (right.size() != n || cond.size() != n || index.size() != n || dleft.size() != n || n == 0) {
    return Bad(tpath, "node arrays differ in length");
  }
  if (t >= model.tree_info.size()) return Bad(mpath + ".tree_info", "shorter than the trees");
  if (!model.tree_weights.empty() && t >= model.tree_weights.size()) {
    return Bad("learner.gradient_booster.weight_drop", "shorter than the trees");
  }
  const float weight =
      model.tree_weights.empty() ? 1.0f : static_cast<float>(model.tree_weights[t]);
  for (size_t i = 0; i < n; ++i) {
    e.treeids.push_back(static_cast<int64_t>(t));
    e.nodeids.push_back(static_cast<int64_t>(i));
    if (left[i] < 0) {
      e.modes.push_back("LEAF");
      e.featureids.push_back(0);
      e.values.push_back(0);
      e.trueids.push_back(0);
      e.falseids.push_back(0);
      e.missing.push_back(0);
      e.t_treeids.push_back(static_cast<int64_t>(t));
      e.t_nodeids.push_back(static_cast<int64_t>(i));
      e.t_ids.push_back(static_cast<int64_t>(model.tree_info[t]));
      e.t_weights.push_back(static_cast<float>(cond[i]) * weight);
    } else {
      e.modes.push_back("BRANCH_LT");
      e.featureids.push_back(static_cast<int64_t>(index[i]));
      e.values.push_back(static_cast<float>(cond[i]));
      e.trueids.push_back(static_cast<int64_t>(left[i]));
      e.falseids.push_back(static_cast<int64_t>(right[i]));
      e.missing.push_back(dleft[i] != 0 ? 1 : 0);
    }
  }
  return Status::Ok();
}

// Flattens every tree of the model into one ensemble; a model without trees is refused.
Result<EnsembleAttributes> FlattenTrees(const XGBoostTrees& model) {
  EnsembleAttributes ensemble;
  size_t t = 0;
  for (json::Value tree : model.trees.Items()) {
    OUTPOST_RETURN_IF_ERROR(AppendTree(tree, t, model, ensemble));
    ++t;
  }
  if (t == 0) return Bad(std::string(kModelPath) + ".trees", "the model has no trees");
  return ensemble;
}

// Adds the graph input "input": float, [N, num_feature].
ValueId AddInput(Graph& g, int64_t num_feature) {
  const ValueId input = g.AddValue("input", Value::Kind::kGraphInput);
  ValueInfo& info = g.values[static_cast<size_t>(input)].info;
  info.has_type = true;
  info.type = DataType::kFp32;
  info.has_shape = true;
  info.dims = {Dim{-1, "N"}, Dim{num_feature, ""}};
  g.inputs.push_back(input);
  return input;
}

// Adds the TreeEnsembleRegressor that sums the trees into `groups` margins, each starting
// at `margin`; returns its output "margin".
ValueId AddEnsemble(Graph& g, ValueId input, EnsembleAttributes e, int64_t groups, float margin) {
  return AddNode(
      g, "TreeEnsembleRegressor", "ai.onnx.ml", {input}, "margin",
      {Ints("nodes_treeids", std::move(e.treeids)), Ints("nodes_nodeids", std::move(e.nodeids)),
       Ints("nodes_featureids", std::move(e.featureids)),
       Strings("nodes_modes", std::move(e.modes)), Floats("nodes_values", std::move(e.values)),
       Ints("nodes_truenodeids", std::move(e.trueids)),
       Ints("nodes_falsenodeids", std::move(e.falseids)),
       Ints("nodes_missing_value_tracks_true", std::move(e.missing)),
       Ints("target_treeids", std::move(e.t_treeids)),
       Ints("target_nodeids", std::move(e.t_nodeids)), Ints("target_ids", std::move(e.t_ids)),
       Floats("target_weights", std::move(e.t_weights)), Int("n_targets", groups),
       Floats("base_values", std::vector<float>(static_cast<size_t>(groups), margin)),
       Str("aggregate_function", "SUM"), Str("post_transform", "NONE")});
}

// Adds a constant value holding `tensor`; returns it.
ValueId AddConstant(Graph& g, const std::string& name, Tensor tensor) {
  const ValueId id = g.AddValue(name, Value::Kind::kConstant);
  g.values[static_cast<size_t>(id)].constant = std::make_shared<const Tensor>(std::move(tensor));
  return id;
}

// Adds the objective's link after the margins `v` and the graph output "output": float,
// [N] when the model has one output group or predicts a class, else [N, groups].
void AddLinkAndOutput(Graph& g, ValueId v, Link link, int64_t groups) {
  bool squeeze = groups == 1;
  switch (link) {
    case Link::kIdentity:
      break;
    case Link::kLogit:
      v = AddNode(g, "Sigmoid", "", {v}, "link", {});
      break;
    case Link::kLog:
      v = AddNode(g, "Exp", "", {v}, "link", {});
      break;
    case Link::kSoftprob:
      v = AddNode(g, "Softmax", "", {v}, "link", {Int("axis", 1)});
      break;
    case Link::kSoftmax:
      v = AddNode(g, "ArgMax", "", {v}, "class", {Int("axis", 1), Int("keepdims", 0)});
      v = AddNode(g, "Cast", "", {v}, "link", {Int("to", 1)});
      squeeze = false;
      break;
    case Link::kHinge: {
      Tensor zero(DataType::kFp32, Shape{});
      const ValueId z = AddConstant(g, "zero", std::move(zero));
      v = AddNode(g, "Greater", "", {v, z}, "positive", {});
      v = AddNode(g, "Cast", "", {v}, "link", {Int("to", 1)});
      break;
    }
  }
  if (squeeze) {
    Tensor axes(DataType::kInt64, Shape{1});
    axes.values<int64_t>()[0] = 1;
    v = AddNode(g, "Squeeze", "", {v, AddConstant(g, "squeeze_axes", std::move(axes))}, "output",
                {});
  } else {
    v = AddNode(g, "Identity", "", {v}, "output", {});
  }
  {
    ValueInfo& info = g.values[static_cast<size_t>(v)].info;
    info.has_type = true;
    info.type = DataType::kFp32;
    info.has_shape = true;
    info.dims = {Dim{-1, "N"}};
    if (!squeeze && link != Link::kSoftmax) info.dims.push_back(Dim{groups, ""});
  }
  g.outputs.push_back(v);
}

}  // namespace

Result<std::string> ConvertXGBoostToOnnx(std::string_view json) {
  OUTPOST_ASSIGN_OR_RETURN(XGBoostModelSummary summary, CheckXGBoostModel(json));
  if (summary.encoding != XGBoostEncoding::kJson) {
    return UnimplementedError("only XGBoost's JSON models can be converted, not UBJSON");
  }
  if (summary.booster == "gblinear") {
    return UnimplementedError("gblinear boosters have no tree-ensemble form");
  }
  OUTPOST_ASSIGN_OR_RETURN(Link link, LinkOf(summary.objective));

  outpost::json::Parser parser;  // `json` is the text here
  Result<outpost::json::Value> doc = parser.Parse(json);
  if (!doc.ok()) return InvalidArgumentError("the model is not valid JSON");
  OUTPOST_ASSIGN_OR_RETURN(XGBoostTrees model, ReadTrees(*doc, summary));
  OUTPOST_ASSIGN_OR_RETURN(float margin, BaseMargin(link, model.base_score));
  OUTPOST_ASSIGN_OR_RETURN(EnsembleAttributes ensemble, FlattenTrees(model));

  const int64_t groups = summary.output_groups;
  Graph g;
  g.ir_version = 8;
  g.producer_name = "outpost";
  g.opsets[""] = 17;
  g.opsets["ai.onnx.ml"] = 3;
  const ValueId input = AddInput(g, summary.num_feature);
  const ValueId v = AddEnsemble(g, input, std::move(ensemble), groups, margin);
  AddLinkAndOutput(g, v, link, groups);
  return ExportModel(g);
}

}  // namespace outpost::engine::onnx
