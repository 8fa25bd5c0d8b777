#include "engine/onnx/optimizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/onnx/float16.h"
#include "engine/onnx/kernels_conv.h"
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

namespace {

// Whether node `n` is live, in the default domain, of type `op`, and reads `id` as input 0
// (or, for Add and Mul, as either input).
bool Reads(const FusionGraph& fg, int32_t n, std::string_view op, ValueId id) {
  if (n < 0 || !fg.kernels[static_cast<size_t>(n)]) return false;
  const Node& node = fg.g.nodes[static_cast<size_t>(n)];
  if (!node.domain.empty() || node.op_type != op || node.inputs.empty()) return false;
  if (op == "Add" || op == "Mul") {
    return node.inputs.size() == 2 && (node.inputs[0] == id || node.inputs[1] == id) &&
           node.inputs[0] != node.inputs[1];
  }
  return node.inputs[0] == id;
}

// The first output of `node` is its only live one.
bool OnlyFirstOutput(const FusionGraph& fg, const Node& node) {
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    if (node.outputs[i] != kNoValue && fg.uses[static_cast<size_t>(node.outputs[i])] > 0) {
      return false;
    }
  }
  return !node.outputs.empty() && node.outputs[0] != kNoValue;
}

// Conv + BatchNormalization (inference, constant parameters): BN's scale and shift go into
// the convolution's weights and bias.
bool FoldBatchNorm(FusionGraph& fg, int32_t n, int32_t bn) {
  Node& conv = fg.g.nodes[static_cast<size_t>(n)];
  const Node& node = fg.g.nodes[static_cast<size_t>(bn)];
  if (node.inputs.size() != 5 || !OnlyFirstOutput(fg, node) ||
      IntAttrOr(node, "training_mode", 0) != 0) {
    return false;
  }
  const Tensor* p[4];
  for (size_t i = 0; i < 4; ++i) {
    p[i] = FloatConstant(fg.model, node, i + 1);
    if (p[i] == nullptr || p[i]->shape().size() != 1) return false;
  }
  const int64_t m = p[0]->element_count();
  for (const Tensor* t : p) {
    if (t->element_count() != m) return false;
  }
  const float eps = FloatAttrOr(node, "epsilon", 1e-5f);
  std::vector<float> scale(static_cast<size_t>(m)), shift(static_cast<size_t>(m));
  for (size_t c = 0; c < static_cast<size_t>(m); ++c) {
    const float s = p[0]->values<float>()[c] / std::sqrt(p[3]->values<float>()[c] + eps);
    scale[c] = s;
    shift[c] = p[1]->values<float>()[c] - p[2]->values<float>()[c] * s;
  }
  // The weights' output channels must match; Infer checks them against W's first dimension.
  const Tensor* w = fg.model.constant(conv.inputs[1]);
  if (w == nullptr || w->shape().empty() || w->shape()[0] != m) return false;
  if (!FoldConvScaleShift(*fg.kernels[static_cast<size_t>(n)], scale, shift)) {
    return false;
  }
  conv.outputs = {node.outputs[0]};
  fg.kernels[static_cast<size_t>(bn)].reset();
  return true;
}

// Conv + Add: the other operand becomes the convolution's input 3 when it is computed before
// the convolution runs (a graph input, a constant is a bias and stays an Add, or the output
// of an earlier step).
bool FuseResidual(FusionGraph& fg, int32_t n, const std::vector<int64_t>& position, int32_t add) {
  Node& conv = fg.g.nodes[static_cast<size_t>(n)];
  const Node& node = fg.g.nodes[static_cast<size_t>(add)];
  const ValueId other = node.inputs[0] == conv.outputs[0] ? node.inputs[1] : node.inputs[0];
  if (other == kNoValue || fg.model.constant(other) != nullptr || node.outputs.size() != 1) {
    return false;
  }
  const Value& v = fg.g.values[static_cast<size_t>(other)];
  if (v.kind == Value::Kind::kNodeOutput &&
      (v.producer < 0 || position[static_cast<size_t>(v.producer)] < 0 ||
       position[static_cast<size_t>(v.producer)] >= position[static_cast<size_t>(n)])) {
    return false;
  }
  if (!SetConvResidual(*fg.kernels[static_cast<size_t>(n)])) return false;
  conv.inputs.resize(3, kNoValue);
  conv.inputs.push_back(other);
  conv.outputs = node.outputs;
  fg.kernels[static_cast<size_t>(add)].reset();
  return true;
}

// The activation `act` as a convolution epilogue; false when it is none.
bool ConvActivationOf(const CompiledModel& model, const Node& act, ActParams& a) {
  if (act.op_type == "HardSigmoid") {
    a.kind = ActKind::kHardSigmoid;
    a.alpha = FloatAttrOr(act, "alpha", 0.2f);
    a.beta = FloatAttrOr(act, "beta", 0.5f);
    return true;
  }
  if (act.op_type == "HardSwish") {
    a.kind = ActKind::kHardSwish;
    return true;
  }
  DenseActivation da;
  if (!ActivationOf(model, act, da)) return false;
  switch (da.kind) {
    case Activation::kRelu:
      a.kind = ActKind::kRelu;
      break;
    case Activation::kLeakyRelu:
      a.kind = ActKind::kLeakyRelu;
      a.alpha = da.alpha;
      break;
    case Activation::kSigmoid:
      a.kind = ActKind::kSigmoid;
      break;
    case Activation::kTanh:
      a.kind = ActKind::kTanh;
      break;
    case Activation::kClip:
      a.kind = ActKind::kClip;
      a.lo = da.lo;
      a.hi = da.hi;
      break;
    case Activation::kNone:
      return false;
  }
  return true;
}

// Conv + activation, and Conv + Sigmoid + Mul(conv, sigmoid) as SiLU.
bool FuseConvActivation(FusionGraph& fg, int32_t n) {
  Node& conv = fg.g.nodes[static_cast<size_t>(n)];
  const ValueId out = conv.outputs[0];
  const auto& readers = fg.consumers[static_cast<size_t>(out)];
  // SiLU: the output feeds exactly a Sigmoid and the Mul that multiplies by it.
  if (fg.uses[static_cast<size_t>(out)] == 2) {
    int32_t sig = -1, mul = -1;
    for (int32_t r : readers) {
      if (Reads(fg, r, "Sigmoid", out)) sig = r;
    }
    if (sig >= 0) {
      const ValueId s = fg.g.nodes[static_cast<size_t>(sig)].outputs[0];
      const int32_t m = fg.SoleConsumer(s);
      if (m >= 0 && Reads(fg, m, "Mul", out) &&
          fg.g.nodes[static_cast<size_t>(m)].outputs.size() == 1) {
        const Node& mn = fg.g.nodes[static_cast<size_t>(m)];
        if ((mn.inputs[0] == s || mn.inputs[1] == s)) mul = m;
      }
    }
    if (mul < 0) return false;
    ActParams a;
    a.kind = ActKind::kSilu;
    if (!SetConvActivation(*fg.kernels[static_cast<size_t>(n)], a)) return false;
    conv.outputs = fg.g.nodes[static_cast<size_t>(mul)].outputs;
    fg.kernels[static_cast<size_t>(sig)].reset();
    fg.kernels[static_cast<size_t>(mul)].reset();
    return true;
  }
  const int32_t next = fg.SoleConsumer(out);
  if (next < 0) return false;
  const Node& act = fg.g.nodes[static_cast<size_t>(next)];
  if (!act.domain.empty() || act.outputs.size() != 1 || act.inputs.empty() ||
      act.inputs[0] != out) {
    return false;
  }
  ActParams a;
  if (!ConvActivationOf(fg.model, act, a)) return false;
  if (!SetConvActivation(*fg.kernels[static_cast<size_t>(n)], a)) return false;
  conv.outputs = act.outputs;
  fg.kernels[static_cast<size_t>(next)].reset();
  return true;
}

}  // namespace

namespace {

// A Conv whose weights became constant by folding (a Cast or DequantizeLinear of an
// initializer) is bound again, so that it takes the fast path.
Status RebindConv(CompiledModel& model, const KernelRegistry& registry, int32_t n,
                  std::unique_ptr<Kernel>& kernel) {
  const Node& node = model.graph().nodes[static_cast<size_t>(n)];
  if (node.inputs.size() < 2 || node.inputs[1] == kNoValue ||
      model.constant(node.inputs[1]) == nullptr) {
    return Status();
  }
  const KernelDef* def = registry.Find(node.domain, node.op_type, node.opset);
  if (def == nullptr) return Status();
  std::vector<const Tensor*> constants;
  for (ValueId id : node.inputs) constants.push_back(id == kNoValue ? nullptr : model.constant(id));
  KernelBuildContext ctx(node, std::move(constants), &model.options());
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> rebuilt, def->create(ctx));
  if (IsFastConv(*rebuilt)) kernel = std::move(rebuilt);
  return Status();
}

}  // namespace

Status FuseConv(CompiledModel& model, const KernelRegistry& registry) {
  Graph& g = model.graph_;
  auto& kernels = model.kernels_;
  std::vector<int64_t> position(g.nodes.size(), -1);
  for (size_t i = 0; i < model.order_.size(); ++i) {
    position[static_cast<size_t>(model.order_[i])] = static_cast<int64_t>(i);
  }
  for (int32_t n : model.order_) {
    if (kernels[static_cast<size_t>(n)] && g.nodes[static_cast<size_t>(n)].op_type == "Conv" &&
        g.nodes[static_cast<size_t>(n)].domain.empty() &&
        !IsFastConv(*kernels[static_cast<size_t>(n)])) {
      OUTPOST_RETURN_IF_ERROR(RebindConv(model, registry, n, kernels[static_cast<size_t>(n)]));
    }
    if (!kernels[static_cast<size_t>(n)] || !IsFastConv(*kernels[static_cast<size_t>(n)])) continue;
    Node& conv = g.nodes[static_cast<size_t>(n)];
    if (!conv.domain.empty() || conv.op_type != "Conv" || conv.outputs.size() != 1) continue;
    // Use counts change as nodes fuse: recount per convolution (compile time only).
    FusionGraph fg{model, g, kernels, CountUses(model, g, kernels),
                   Consumers(g, kernels, model.order_)};
    int32_t next = fg.SoleConsumer(conv.outputs[0]);
    if (Reads(fg, next, "BatchNormalization", conv.outputs[0])) {
      FoldBatchNorm(fg, n, next);
      fg.uses = CountUses(model, g, kernels);
      fg.consumers = Consumers(g, kernels, model.order_);
    }
    next = fg.SoleConsumer(conv.outputs[0]);
    if (Reads(fg, next, "Add", conv.outputs[0]) && FuseResidual(fg, n, position, next)) {
      fg.uses = CountUses(model, g, kernels);
      fg.consumers = Consumers(g, kernels, model.order_);
    }
    FuseConvActivation(fg, n);
  }
  return Status();
}

// ---- FLOAT16 and BFLOAT16 models computed in FLOAT ----

namespace {

constexpr int64_t kOnnxFloat = 1;
constexpr int64_t kOnnxFloat16 = 10;
constexpr int64_t kOnnxBFloat16 = 16;

bool IsHalf(DataType t) { return t == DataType::kFp16 || t == DataType::kBf16; }
bool IsHalfCode(int64_t onnx_type) {
  return onnx_type == kOnnxFloat16 || onnx_type == kOnnxBFloat16;
}

std::shared_ptr<const Tensor> HalfToFloat(const Tensor& t) {
  auto f = std::make_shared<Tensor>(DataType::kFp32, t.shape());
  std::span<const uint16_t> in = t.values<uint16_t>();
  std::span<float> out = f->values<float>();
  const bool bf16 = t.type() == DataType::kBf16;
  for (size_t i = 0; i < in.size(); ++i) {
    out[i] = bf16 ? BFloat16BitsToFloat(in[i]) : HalfBitsToFloat(in[i]);
  }
  return f;
}

// The Cast node's target when it is a 16-bit float, else 0.
int64_t HalfCastTarget(const Node& node) {
  if (!node.domain.empty() || node.op_type != "Cast") return 0;
  const Attribute* to = node.FindAttribute("to");
  return to != nullptr && to->type == AttrType::kInt && IsHalfCode(to->i) ? to->i : 0;
}

// Appends Cast(from) -> to, `to` already a value of the graph.
void AppendCast(Graph& g, ValueId from, ValueId to, int64_t onnx_type, int opset) {
  Node n;
  n.name = g.values[static_cast<size_t>(to)].name + "/cast";
  n.op_type = "Cast";
  n.opset = opset;
  n.inputs = {from};
  n.outputs = {to};
  Attribute a;
  a.name = "to";
  a.type = AttrType::kInt;
  a.i = onnx_type;
  n.attributes.push_back(std::move(a));
  g.values[static_cast<size_t>(to)].producer = static_cast<int32_t>(g.nodes.size());
  g.nodes.push_back(std::move(n));
}

// Node inputs reading `from` read `to` instead (graph outputs keep naming `from`).
void ReplaceReads(Graph& g, ValueId from, ValueId to) {
  for (Node& node : g.nodes) {
    for (ValueId& id : node.inputs) {
      if (id == from) id = to;
    }
  }
}

ValueId AddFloatValue(Graph& g, ValueId like, const char* suffix) {
  std::string name = g.values[static_cast<size_t>(like)].name + suffix;
  return g.AddValue(std::move(name), Value::Kind::kNodeOutput);
}

// Constants, and the tensors and dtypes of attributes; the Casts to 16-bit floats are
// returned for the caller to follow with a Cast back.
std::vector<int32_t> PromoteConstantsAndAttributes(Graph& g, const std::vector<bool>& is_output) {
  for (size_t v = 0; v < is_output.size(); ++v) {
    Value& val = g.values[v];
    if (val.kind != Value::Kind::kConstant || !val.constant || !IsHalf(val.constant->type())) {
      continue;
    }
    std::shared_ptr<const Tensor> f = HalfToFloat(*val.constant);
    if (!is_output[v]) {
      val.constant = std::move(f);
      continue;
    }
    // A constant the model also returns keeps its type there; its readers get a FLOAT copy.
    const ValueId copy = g.AddValue(g.values[v].name + "/float", Value::Kind::kConstant);
    g.values[static_cast<size_t>(copy)].constant = std::move(f);
    ReplaceReads(g, static_cast<ValueId>(v), copy);
  }
  std::vector<int32_t> half_casts;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    Node& node = g.nodes[n];
    if (!node.domain.empty()) continue;
    for (Attribute& a : node.attributes) {
      if (a.type == AttrType::kTensor && a.tensor && IsHalf(a.tensor->type()) &&
          (node.op_type == "Constant" || node.op_type == "ConstantOfShape")) {
        a.tensor = HalfToFloat(*a.tensor);
      }
      if (a.type == AttrType::kInt && a.name == "dtype" && IsHalfCode(a.i)) a.i = kOnnxFloat;
    }
    if (HalfCastTarget(node) != 0 && !node.outputs.empty() && node.outputs[0] != kNoValue) {
      half_casts.push_back(static_cast<int32_t>(n));
    }
  }
  return half_casts;
}

}  // namespace

bool HasHalfFloats(const Graph& graph) {
  for (const Value& v : graph.values) {
    if (v.kind == Value::Kind::kConstant && v.constant && IsHalf(v.constant->type())) return true;
    if (v.info.has_type && IsHalf(v.info.type)) return true;
  }
  for (const Node& node : graph.nodes) {
    if (HalfCastTarget(node) != 0) return true;
    for (const Attribute& a : node.attributes) {
      if (a.type == AttrType::kTensor && a.tensor && IsHalf(a.tensor->type())) return true;
      if (a.type == AttrType::kInt && a.name == "dtype" && IsHalfCode(a.i)) return true;
    }
  }
  return false;
}

std::optional<Graph> PromoteHalfFloats(const Graph& graph) {
  auto onnx = graph.opsets.find(kOnnxDomain);
  if (onnx == graph.opsets.end() || !HasHalfFloats(graph)) return std::nullopt;
  for (const Node& node : graph.nodes) {
    for (const Attribute& a : node.attributes) {
      if (a.type == AttrType::kGraph) return std::nullopt;
    }
  }
  const int opset = std::max(onnx->second, 6);
  Graph g = graph;
  std::vector<bool> is_output(g.values.size(), false);
  for (ValueId id : g.outputs) is_output[static_cast<size_t>(id)] = true;

  // A Cast to a 16-bit float keeps its rounding: it writes a 16-bit value that a Cast back
  // to FLOAT turns into the value its readers had.
  for (int32_t n : PromoteConstantsAndAttributes(g, is_output)) {
    const ValueId out = g.nodes[static_cast<size_t>(n)].outputs[0];
    const ValueId rounded = AddFloatValue(g, out, "/rounded");
    g.nodes[static_cast<size_t>(n)].outputs[0] = rounded;
    g.values[static_cast<size_t>(rounded)].producer = n;
    AppendCast(g, rounded, out, kOnnxFloat, opset);
  }
  for (ValueId id : graph.inputs) {
    const ValueInfo& info = g.values[static_cast<size_t>(id)].info;
    if (!info.has_type || !IsHalf(info.type)) continue;
    const ValueId f = AddFloatValue(g, id, "/float");
    ReplaceReads(g, id, f);
    AppendCast(g, id, f, kOnnxFloat, opset);
  }
  std::vector<bool> done(g.values.size(), false);
  for (ValueId id : graph.outputs) {
    const Value& v = g.values[static_cast<size_t>(id)];
    if (done[static_cast<size_t>(id)] || v.kind != Value::Kind::kNodeOutput || v.producer < 0 ||
        !v.info.has_type || !IsHalf(v.info.type)) {
      continue;
    }
    done[static_cast<size_t>(id)] = true;
    const int64_t code = v.info.type == DataType::kBf16 ? kOnnxBFloat16 : kOnnxFloat16;
    const int32_t producer = v.producer;
    const ValueId f = AddFloatValue(g, id, "/float");
    for (ValueId& o : g.nodes[static_cast<size_t>(producer)].outputs) {
      if (o == id) o = f;
    }
    g.values[static_cast<size_t>(f)].producer = producer;
    ReplaceReads(g, id, f);
    AppendCast(g, f, id, code, opset);
  }
  return g;
}

}  // namespace outpost::engine::onnx
