#include "engine/onnx/optimizer.h"

#include <vector>

namespace outpost::engine::onnx {

namespace {

// How many live nodes read each value, plus one per graph output naming it.
std::vector<int> CountUses(const CompiledModel& model, const Graph& g,
                           const std::vector<std::unique_ptr<Kernel>>& kernels) {
  std::vector<int> uses(g.values.size(), 0);
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (!kernels[n]) continue;
    for (ValueId id : g.nodes[n].inputs) {
      if (id != kNoValue) ++uses[static_cast<size_t>(id)];
    }
  }
  for (ValueId id : g.outputs) ++uses[static_cast<size_t>(id)];
  (void)model;
  return uses;
}

void Replace(Graph& g, const std::vector<std::unique_ptr<Kernel>>& kernels, ValueId from,
             ValueId to) {
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (!kernels[n]) continue;
    for (ValueId& id : g.nodes[n].inputs) {
      if (id == from) id = to;
    }
  }
  for (ValueId& id : g.outputs) {
    if (id == from) id = to;
  }
}

}  // namespace

void RemoveIdentities(CompiledModel& model) {
  Graph& g = model.graph_;
  std::vector<int> uses = CountUses(model, g, model.kernels_);
  for (int32_t n : model.order_) {
    if (!model.kernels_[static_cast<size_t>(n)]) continue;
    const Node& node = g.nodes[static_cast<size_t>(n)];
    if (!node.domain.empty() || node.inputs.empty() || node.inputs[0] == kNoValue ||
        node.outputs.empty() || node.outputs[0] == kNoValue) {
      continue;
    }
    bool bypass = false;
    if (node.op_type == "Identity") {
      bypass = true;
    } else if (node.op_type == "Dropout") {
      const bool mask_unused = node.outputs.size() < 2 || node.outputs[1] == kNoValue ||
                               uses[static_cast<size_t>(node.outputs[1])] == 0;
      bool inference = true;
      if (node.inputs.size() >= 3 && node.inputs[2] != kNoValue) {
        const Tensor* mode = model.constant(node.inputs[2]);
        inference = mode != nullptr && mode->type() == DataType::kBool &&
                    mode->element_count() == 1 && mode->values<uint8_t>()[0] == 0;
      }
      bypass = mask_unused && inference;
    }
    if (!bypass) continue;
    const ValueId from = node.outputs[0];
    const ValueId to = node.inputs[0];
    Replace(g, model.kernels_, from, to);
    uses[static_cast<size_t>(to)] += uses[static_cast<size_t>(from)];
    uses[static_cast<size_t>(from)] = 0;
    model.kernels_[static_cast<size_t>(n)].reset();
  }
}

Status FuseDense(CompiledModel& model, const KernelRegistry& registry) {
  (void)model;
  (void)registry;
  return Status();
}

}  // namespace outpost::engine::onnx
