// Builders of small ONNX graphs for the engine's tests, written through ExportModel so that
// the tests exercise the same import path as real files.
#ifndef OUTPOST_ENGINE_ONNX_TEST_MODELS_H_
#define OUTPOST_ENGINE_ONNX_TEST_MODELS_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/onnx/graph.h"
#include "engine/tensor.h"

namespace outpost::engine::onnx::testing {

// Builds a Graph value by value. Value names must be unique.
class GraphBuilder {
 public:
  explicit GraphBuilder(int opset = 17, int ml_opset = 0) {
    graph_.ir_version = 8;
    graph_.opsets[""] = opset;
    if (ml_opset > 0) graph_.opsets["ai.onnx.ml"] = ml_opset;
  }

  // A graph input; dims of -1 become a symbolic "N".
  ValueId Input(const std::string& name, DataType type, std::vector<int64_t> dims) {
    ValueId id = graph_.AddValue(name, Value::Kind::kGraphInput);
    ValueInfo& info = graph_.values[static_cast<size_t>(id)].info;
    info.has_type = true;
    info.type = type;
    info.has_shape = true;
    for (int64_t d : dims) {
      Dim dim;
      dim.value = d;
      if (d < 0) dim.symbol = "N";
      info.dims.push_back(dim);
    }
    graph_.inputs.push_back(id);
    return id;
  }

  ValueId Constant(const std::string& name, Tensor t) {
    ValueId id = graph_.AddValue(name, Value::Kind::kConstant);
    graph_.values[static_cast<size_t>(id)].constant = std::make_shared<const Tensor>(std::move(t));
    return id;
  }

  ValueId Floats(const std::string& name, std::vector<int64_t> shape, std::vector<float> v) {
    Tensor t(DataType::kFp32, std::move(shape));
    for (size_t i = 0; i < v.size(); ++i) t.values<float>()[i] = v[i];
    return Constant(name, std::move(t));
  }

  ValueId Ints(const std::string& name, std::vector<int64_t> shape, std::vector<int64_t> v) {
    Tensor t(DataType::kInt64, std::move(shape));
    for (size_t i = 0; i < v.size(); ++i) t.values<int64_t>()[i] = v[i];
    return Constant(name, std::move(t));
  }

  // Adds a node with fresh output values named `outputs`; returns the first output's id.
  ValueId Op(const std::string& op_type, std::vector<ValueId> inputs,
             std::vector<std::string> outputs, std::vector<Attribute> attributes = {},
             const std::string& domain = "") {
    Node n;
    n.name = outputs.empty() ? op_type : outputs[0] + "_node";
    n.op_type = op_type;
    n.domain = domain;
    n.opset = graph_.opsets[domain];
    n.inputs = std::move(inputs);
    n.attributes = std::move(attributes);
    ValueId first = kNoValue;
    for (const std::string& o : outputs) {
      ValueId id = graph_.AddValue(o, Value::Kind::kNodeOutput);
      graph_.values[static_cast<size_t>(id)].producer = static_cast<int32_t>(graph_.nodes.size());
      n.outputs.push_back(id);
      if (first == kNoValue) first = id;
    }
    graph_.nodes.push_back(std::move(n));
    return first;
  }

  void Output(ValueId id) { graph_.outputs.push_back(id); }

  Graph& graph() { return graph_; }

 private:
  Graph graph_;
};

// n floats in [-1, 1] in steps of 1e-3, the same for the same seed.
inline std::vector<float> RandomFloats(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(static_cast<int32_t>(s >> 8) % 2001 - 1000) / 1000.0f;
  }
  return v;
}

inline Attribute IntAttr(const std::string& name, int64_t v) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kInt;
  a.i = v;
  return a;
}
inline Attribute FloatAttr(const std::string& name, float v) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kFloat;
  a.f = v;
  return a;
}
inline Attribute StringAttr(const std::string& name, std::string v) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kString;
  a.s = std::move(v);
  return a;
}
inline Attribute IntsAttr(const std::string& name, std::vector<int64_t> v) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kInts;
  a.ints = std::move(v);
  return a;
}
inline Attribute FloatsAttr(const std::string& name, std::vector<float> v) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kFloats;
  a.floats = std::move(v);
  return a;
}
inline Attribute StringsAttr(const std::string& name, std::vector<std::string> v) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kStrings;
  a.strings = std::move(v);
  return a;
}

inline Tensor FloatTensor(std::vector<int64_t> shape, std::vector<float> v) {
  Tensor t(DataType::kFp32, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.values<float>()[i] = v[i];
  return t;
}

}  // namespace outpost::engine::onnx::testing

#endif  // OUTPOST_ENGINE_ONNX_TEST_MODELS_H_
