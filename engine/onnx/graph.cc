#include "engine/onnx/graph.h"

#include <utility>

namespace outpost::engine::onnx {

std::string_view AttrTypeName(AttrType type) {
  switch (type) {
    case AttrType::kFloat: return "float";
    case AttrType::kInt: return "int";
    case AttrType::kString: return "string";
    case AttrType::kTensor: return "tensor";
    case AttrType::kFloats: return "floats";
    case AttrType::kInts: return "ints";
    case AttrType::kStrings: return "strings";
    case AttrType::kTensors: return "tensors";
    case AttrType::kGraph: return "graph";
    case AttrType::kOther: return "other";
  }
  return "?";
}

const Attribute* Node::FindAttribute(std::string_view attr_name) const {
  for (const Attribute& a : attributes) {
    if (a.name == attr_name) return &a;
  }
  return nullptr;
}

std::string Node::Describe(size_t index) const {
  std::string op = domain.empty() ? op_type : domain + "." + op_type;
  if (name.empty()) return "node #" + std::to_string(index) + " (" + op + ")";
  return "node \"" + name + "\" (" + op + ")";
}

size_t Node::CapturedInputs() const {
  size_t n = 0;
  for (const Attribute& a : attributes) {
    if (a.type == AttrType::kGraph && a.graph) n += a.graph->captured;
  }
  return n;
}

ValueId Graph::AddValue(std::string name, Value::Kind kind) {
  Value v;
  v.name = std::move(name);
  v.kind = kind;
  values.push_back(std::move(v));
  return static_cast<ValueId>(values.size() - 1);
}

Result<std::vector<int32_t>> TopologicalOrder(const Graph& graph) {
  const size_t num_values = graph.values.size();
  const size_t num_nodes = graph.nodes.size();
  std::vector<int32_t> producer(num_values, -1);
  for (size_t n = 0; n < num_nodes; ++n) {
    const Node& node = graph.nodes[n];
    for (ValueId out : node.outputs) {
      if (out == kNoValue) continue;
      if (out < 0 || static_cast<size_t>(out) >= num_values) {
        return InvalidArgumentError(node.Describe(n) + ": output id out of range");
      }
      const Value& v = graph.values[static_cast<size_t>(out)];
      if (v.kind != Value::Kind::kNodeOutput) {
        return InvalidArgumentError(node.Describe(n) + ": output \"" + v.name +
                                    "\" is also a graph input or initializer");
      }
      if (producer[static_cast<size_t>(out)] != -1) {
        return InvalidArgumentError(node.Describe(n) + ": output \"" + v.name +
                                    "\" is already produced by another node");
      }
      producer[static_cast<size_t>(out)] = static_cast<int32_t>(n);
    }
  }
  // Kahn's algorithm over node->node edges. Stable: ties keep file order.
  std::vector<int32_t> pending(num_nodes, 0);
  std::vector<std::vector<int32_t>> consumers(num_nodes);
  for (size_t n = 0; n < num_nodes; ++n) {
    const Node& node = graph.nodes[n];
    for (ValueId in : node.inputs) {
      if (in == kNoValue) continue;
      if (in < 0 || static_cast<size_t>(in) >= num_values) {
        return InvalidArgumentError(node.Describe(n) + ": input id out of range");
      }
      const Value& v = graph.values[static_cast<size_t>(in)];
      if (v.kind == Value::Kind::kNodeOutput) {
        const int32_t p = producer[static_cast<size_t>(in)];
        if (p < 0) {
          return InvalidArgumentError(node.Describe(n) + ": input \"" + v.name +
                                      "\" is not produced by any node, input or initializer");
        }
        ++pending[n];
        consumers[static_cast<size_t>(p)].push_back(static_cast<int32_t>(n));
      }
    }
  }
  std::vector<int32_t> order;
  order.reserve(num_nodes);
  std::vector<int32_t> ready;
  for (size_t n = num_nodes; n-- > 0;) {
    if (pending[n] == 0) ready.push_back(static_cast<int32_t>(n));
  }
  while (!ready.empty()) {
    const int32_t n = ready.back();
    ready.pop_back();
    order.push_back(n);
    // Push in reverse so that lower indices pop first.
    const auto& cs = consumers[static_cast<size_t>(n)];
    for (size_t i = cs.size(); i-- > 0;) {
      if (--pending[static_cast<size_t>(cs[i])] == 0) ready.push_back(cs[i]);
    }
  }
  if (order.size() != num_nodes) {
    // Every node left waits on another node left; walking to a waiting producer must revisit
    // a node, and that node lies on a cycle.
    size_t n = 0;
    while (pending[n] == 0) ++n;
    std::vector<bool> seen(num_nodes, false);
    while (!seen[n]) {
      seen[n] = true;
      for (ValueId in : graph.nodes[n].inputs) {
        if (in == kNoValue) continue;
        const int32_t p = producer[static_cast<size_t>(in)];
        if (p >= 0 && pending[static_cast<size_t>(p)] > 0) {
          n = static_cast<size_t>(p);
          break;
        }
      }
    }
    return InvalidArgumentError(graph.nodes[n].Describe(n) +
                                ": the graph has a cycle through this node");
  }
  for (ValueId out : graph.outputs) {
    if (out < 0 || static_cast<size_t>(out) >= num_values) {
      return InvalidArgumentError("graph output id out of range");
    }
    const Value& v = graph.values[static_cast<size_t>(out)];
    if (v.kind == Value::Kind::kNodeOutput && producer[static_cast<size_t>(out)] < 0) {
      return InvalidArgumentError("graph output \"" + v.name + "\" is not produced by any node");
    }
  }
  return order;
}

}  // namespace outpost::engine::onnx
