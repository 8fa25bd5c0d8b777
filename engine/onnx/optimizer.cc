#include "engine/onnx/optimizer.h"

#include <limits>
#include <vector>

#include "engine/onnx/kernels_nn.h"

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

namespace {

const Tensor* FloatConstant(const CompiledModel& model, const Node& node, size_t i) {
  if (i >= node.inputs.size() || node.inputs[i] == kNoValue) return nullptr;
  const Tensor* t = model.constant(node.inputs[i]);
  return t != nullptr && t->type() == DataType::kFp32 ? t : nullptr;
}

float FloatAttrOr(const Node& node, std::string_view name, float fallback) {
  const Attribute* a = node.FindAttribute(name);
  return a != nullptr && a->type == AttrType::kFloat ? a->f : fallback;
}

int64_t IntAttrOr(const Node& node, std::string_view name, int64_t fallback) {
  const Attribute* a = node.FindAttribute(name);
  return a != nullptr && a->type == AttrType::kInt ? a->i : fallback;
}

// A bias of N floats from a constant of shape [N], [1, N], [1] or [] (broadcast), or false.
bool BiasFrom(const Tensor& c, int64_t n, float scale, std::vector<float>& bias) {
  const Shape& s = c.shape();
  const int64_t count = c.element_count();
  const bool row = (s.size() == 1 && s[0] == n) || (s.size() == 2 && s[0] == 1 && s[1] == n);
  const bool scalar = count == 1 && s.size() <= 2;
  if (!row && !scalar) return false;
  bias.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    bias[static_cast<size_t>(j)] = scale * c.values<float>()[static_cast<size_t>(row ? j : 0)];
  }
  return true;
}

using Kernels = std::vector<std::unique_ptr<Kernel>>;

// What fusing reads and rewrites: the graph, its kernels (null for removed nodes), and per
// value its use count and the nodes that read it.
struct FusionGraph {
  const CompiledModel& model;
  Graph& g;
  Kernels& kernels;
  std::vector<int> uses;
  std::vector<std::vector<int32_t>> consumers;

  // The single live consumer of `id` when it has exactly one use, else -1.
  int32_t SoleConsumer(ValueId id) const {
    if (uses[static_cast<size_t>(id)] != 1) return -1;
    for (int32_t c : consumers[static_cast<size_t>(id)]) {
      if (kernels[static_cast<size_t>(c)]) return c;
    }
    return -1;
  }
};

// Per value, the live nodes that read it, in `order`.
std::vector<std::vector<int32_t>> Consumers(const Graph& g, const Kernels& kernels,
                                            const std::vector<int32_t>& order) {
  std::vector<std::vector<int32_t>> consumers(g.values.size());
  for (int32_t n : order) {
    if (!kernels[static_cast<size_t>(n)]) continue;
    for (ValueId id : g.nodes[static_cast<size_t>(n)].inputs) {
      if (id != kNoValue) consumers[static_cast<size_t>(id)].push_back(n);
    }
  }
  return consumers;
}

// A Dense kernel's parameters: weights [k, nn] and an optional bias of nn.
struct DenseParams {
  std::vector<float> weights;
  std::vector<float> bias;
  int64_t k = 0;
  int64_t nn = 0;
};

// A Gemm with a constant 2-D B, no transA and a constant (or no) C as a Dense; false when
// the Gemm has no Dense form. alpha is folded into the weights and beta into the bias.
bool GemmAsDense(const CompiledModel& model, const Node& node, DenseParams& d) {
  const Tensor* b = FloatConstant(model, node, 1);
  if (b == nullptr || b->shape().size() != 2 || IntAttrOr(node, "transA", 0) != 0) return false;
  const bool trans_b = IntAttrOr(node, "transB", 0) != 0;
  const float alpha = FloatAttrOr(node, "alpha", 1.0f);
  const float beta = FloatAttrOr(node, "beta", 1.0f);
  d.k = trans_b ? b->shape()[1] : b->shape()[0];
  d.nn = trans_b ? b->shape()[0] : b->shape()[1];
  if (node.inputs.size() > 2 && node.inputs[2] != kNoValue) {
    const Tensor* c = FloatConstant(model, node, 2);
    if (c == nullptr || !BiasFrom(*c, d.nn, beta, d.bias)) return false;
  }
  const int64_t k = d.k, nn = d.nn;
  d.weights.resize(static_cast<size_t>(k * nn));
  const float* bv = b->values<float>().data();
  for (int64_t kk = 0; kk < k; ++kk) {
    for (int64_t j = 0; j < nn; ++j) {
      d.weights[static_cast<size_t>(kk * nn + j)] =
          alpha * (trans_b ? bv[j * k + kk] : bv[kk * nn + j]);
    }
  }
  return true;
}

// A MatMul by a constant 2-D B as a Dense, taking in the Add of a constant bias that is the
// sole reader of its output (that Add's kernel is removed); false when it has no Dense form.
bool MatMulAsDense(FusionGraph& fg, Node& node, DenseParams& d) {
  const Tensor* b = FloatConstant(fg.model, node, 1);
  if (b == nullptr || b->shape().size() != 2) return false;
  d.k = b->shape()[0];
  d.nn = b->shape()[1];
  d.weights.assign(b->values<float>().begin(), b->values<float>().end());
  // MatMul + Add(constant bias) -> one Dense.
  const int32_t add = fg.SoleConsumer(node.outputs[0]);
  if (add >= 0) {
    Node& add_node = fg.g.nodes[static_cast<size_t>(add)];
    if (add_node.domain.empty() && add_node.op_type == "Add" && add_node.inputs.size() == 2) {
      const size_t other = add_node.inputs[0] == node.outputs[0] ? 1 : 0;
      const Tensor* c = FloatConstant(fg.model, add_node, other);
      if (c != nullptr && add_node.inputs[1 - other] == node.outputs[0] &&
          BiasFrom(*c, d.nn, 1.0f, d.bias) && c->shape().size() >= 1) {
        node.outputs = add_node.outputs;
        fg.kernels[static_cast<size_t>(add)].reset();
      } else {
        d.bias.clear();
      }
    }
  }
  return true;
}

// The Dense activation that `act` computes; false when it is none the Dense kernel has
// (Clip only with constant bounds).
bool ActivationOf(const CompiledModel& model, const Node& act, DenseActivation& da) {
  if (act.op_type == "Relu") {
    da.kind = Activation::kRelu;
  } else if (act.op_type == "LeakyRelu") {
    da.kind = Activation::kLeakyRelu;
    da.alpha = FloatAttrOr(act, "alpha", 0.01f);
  } else if (act.op_type == "Sigmoid") {
    da.kind = Activation::kSigmoid;
  } else if (act.op_type == "Tanh") {
    da.kind = Activation::kTanh;
  } else if (act.op_type == "Clip") {
    da.kind = Activation::kClip;
    da.lo = -std::numeric_limits<float>::infinity();
    da.hi = std::numeric_limits<float>::infinity();
    if (act.opset < 11) {
      da.lo = FloatAttrOr(act, "min", da.lo);
      da.hi = FloatAttrOr(act, "max", da.hi);
    } else {
      bool ok = true;
      for (size_t i = 1; i < act.inputs.size() && ok; ++i) {
        if (act.inputs[i] == kNoValue) continue;
        const Tensor* t = FloatConstant(model, act, i);
        ok = t != nullptr && t->element_count() == 1;
        if (ok) (i == 1 ? da.lo : da.hi) = t->values<float>()[0];
      }
      if (!ok) return false;
    }
  } else {
    return false;
  }
  return true;
}

// Dense + activation: moves the activation that is the sole reader of Dense node `n`'s
// output into its kernel and removes the activation's kernel.
void FuseActivation(FusionGraph& fg, int32_t n) {
  Node& node = fg.g.nodes[static_cast<size_t>(n)];
  const int32_t next = fg.SoleConsumer(node.outputs[0]);
  if (next < 0) return;
  const Node& act = fg.g.nodes[static_cast<size_t>(next)];
  if (!act.domain.empty() || act.outputs.size() != 1 || act.inputs.empty() ||
      act.inputs[0] != node.outputs[0]) {
    return;
  }
  DenseActivation da;
  if (!ActivationOf(fg.model, act, da)) return;
  if (AddDenseActivation(*fg.kernels[static_cast<size_t>(n)], da)) {
    node.outputs = act.outputs;
    fg.kernels[static_cast<size_t>(next)].reset();
  }
}

}  // namespace

Status FuseDense(CompiledModel& model, const KernelRegistry& registry) {
  (void)registry;
  Graph& g = model.graph_;
  auto& kernels = model.kernels_;
  FusionGraph fg{model, g, kernels, CountUses(model, g, kernels),
                 Consumers(g, kernels, model.order_)};
  for (int32_t n : model.order_) {
    if (!kernels[static_cast<size_t>(n)]) continue;
    Node& node = g.nodes[static_cast<size_t>(n)];
    if (!node.domain.empty() || node.outputs.size() != 1 || node.outputs[0] == kNoValue ||
        node.inputs.empty() || node.inputs[0] == kNoValue) {
      continue;
    }
    DenseParams d;
    if (node.op_type == "Gemm") {
      if (!GemmAsDense(model, node, d)) continue;
    } else if (node.op_type == "MatMul") {
      if (!MatMulAsDense(fg, node, d)) continue;
    } else {
      continue;
    }
    node.inputs.resize(1);
    kernels[static_cast<size_t>(n)] =
        MakeDenseKernel(d.weights, d.k, d.nn, std::move(d.bias), DenseActivation());
    FuseActivation(fg, n);
  }
  return Status();
}

}  // namespace outpost::engine::onnx
