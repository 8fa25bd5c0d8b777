// FoldQdq (optimizer.h): QDQ node groups as the integer kernels of kernels_quant.cc.
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/onnx/optimizer.h"

namespace outpost::engine::onnx {

namespace {

// A QuantizeLinear or DequantizeLinear node's operands: the value it converts, its scale
// and zero point (constants), and the axis of per-axis parameters.
struct QParams {
  int32_t node = -1;
  ValueId x = kNoValue, scale = kNoValue, zp = kNoValue;
  const Tensor* scale_t = nullptr;
  const Tensor* zp_t = nullptr;
  int64_t axis = 1;
};

// The node that writes `id`, live or folded (a folded node keeps its inputs), else -1.
int32_t WriterOf(const Graph& g, ValueId id) {
  if (id == kNoValue) return -1;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    for (ValueId out : g.nodes[n].outputs) {
      if (out == id) return static_cast<int32_t>(n);
    }
  }
  return -1;
}

bool IsOp(const Graph& g, int32_t n, std::string_view op) {
  return n >= 0 && g.nodes[static_cast<size_t>(n)].domain.empty() &&
         g.nodes[static_cast<size_t>(n)].op_type == op;
}

// Node n as a QuantizeLinear/DequantizeLinear with a constant FLOAT scale and a constant zero
// point (the parameters the integer kernels take); false for any other form (no zero point,
// block quantisation, an output_dtype).
bool ReadQParams(const CompiledModel& model, int32_t n, std::string_view op, QParams& q) {
  const Graph& g = model.graph();
  if (!IsOp(g, n, op)) return false;
  const Node& node = g.nodes[static_cast<size_t>(n)];
  if (node.inputs.size() != 3 || node.inputs[2] == kNoValue) return false;
  if (node.FindAttribute("block_size") != nullptr ||
      node.FindAttribute("output_dtype") != nullptr) {
    return false;
  }
  const Attribute* saturate = node.FindAttribute("saturate");
  if (saturate != nullptr && saturate->i != 1) return false;
  q.node = n;
  q.x = node.inputs[0];
  q.scale = node.inputs[1];
  q.zp = node.inputs[2];
  q.scale_t = model.constant(q.scale);
  q.zp_t = model.constant(q.zp);
  const Attribute* axis = node.FindAttribute("axis");
  q.axis = axis != nullptr ? axis->i : 1;
  if (q.scale_t == nullptr || q.zp_t == nullptr || q.scale_t->type() != DataType::kFp32)
    return false;
  if (q.zp_t->element_count() != q.scale_t->element_count()) return false;
  for (float s : q.scale_t->values<float>()) {
    if (!(s > 0) || !std::isfinite(s)) return false;
  }
  return true;
}

bool Is8Bit(DataType t) { return t == DataType::kUint8 || t == DataType::kInt8; }

// A per-tensor 8-bit activation: one scale, one zero point.
bool PerTensor8(const QParams& q) {
  return q.scale_t->element_count() == 1 && q.scale_t->shape().size() <= 1 &&
         Is8Bit(q.zp_t->type());
}

int64_t ZeroPoint(const Tensor& zp, int64_t i) {
  return zp.type() == DataType::kUint8  ? zp.values<uint8_t>()[static_cast<size_t>(i)]
         : zp.type() == DataType::kInt8 ? zp.values<int8_t>()[static_cast<size_t>(i)]
                                        : zp.values<int32_t>()[static_cast<size_t>(i)];
}

bool SameParams(const QParams& a, const QParams& b) {
  if (a.zp_t->type() != b.zp_t->type() || !PerTensor8(a) || !PerTensor8(b)) return false;
  return a.scale_t->values<float>()[0] == b.scale_t->values<float>()[0] &&
         ZeroPoint(*a.zp_t, 0) == ZeroPoint(*b.zp_t, 0);
}

// The graph's live nodes and their readers, for FoldQdq.
struct FoldContext {
  const CompiledModel& model;
  Graph& g;
  std::vector<std::unique_ptr<Kernel>>& kernels;
  std::function<Status(int32_t)> rebind;  // CompiledModel::RebindKernel
  std::vector<int> uses;

  bool Live(int32_t n) const { return n >= 0 && kernels[static_cast<size_t>(n)] != nullptr; }
  // The single live node reading `id` when it has exactly one use, else -1.
  int32_t SoleReader(ValueId id) const {
    if (uses[static_cast<size_t>(id)] != 1) return -1;
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      if (!Live(static_cast<int32_t>(n))) continue;
      for (ValueId in : g.nodes[n].inputs) {
        if (in == id) return static_cast<int32_t>(n);
      }
    }
    return -1;
  }
  void Recount() {
    uses.assign(g.values.size(), 0);
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      if (!Live(static_cast<int32_t>(n))) continue;
      for (ValueId id : g.nodes[n].inputs) {
        if (id != kNoValue) ++uses[static_cast<size_t>(id)];
      }
    }
    for (ValueId id : g.outputs) ++uses[static_cast<size_t>(id)];
  }
};

// The value's live DequantizeLinear of a per-tensor 8-bit activation.
bool ActivationDq(const FoldContext& c, ValueId id, QParams& q) {
  const int32_t n = WriterOf(c.g, id);
  return n >= 0 && c.Live(n) && ReadQParams(c.model, n, "DequantizeLinear", q) && PerTensor8(q) &&
         c.model.constant(q.x) == nullptr;
}

// The value as the DequantizeLinear (folded or not) of constant 8-bit weights: per tensor,
// or with `per_axis` one scale per index of dimension 0.
bool WeightDq(const FoldContext& c, ValueId id, bool per_axis, QParams& q) {
  const int32_t n = WriterOf(c.g, id);
  if (!ReadQParams(c.model, n, "DequantizeLinear", q)) return false;
  const Tensor* w = c.model.constant(q.x);
  if (w == nullptr || !Is8Bit(w->type()) || w->type() != q.zp_t->type() || w->shape().empty())
    return false;
  const int64_t count = q.scale_t->element_count();
  if (count == 1 && q.scale_t->shape().size() <= 1) return true;
  const int64_t rank = static_cast<int64_t>(w->shape().size());
  return per_axis && (q.axis == 0 || q.axis == -rank) && q.scale_t->shape().size() == 1 &&
         count == w->shape()[0];
}

// The value as the DequantizeLinear of a constant INT32 bias with zero points of 0 and, per
// output channel, the scale x_scale * w_scale that QLinearConv gives its bias (equal to a
// relative 1e-6, the rounding of the product as a quantiser may have computed it).
bool BiasDq(const FoldContext& c, ValueId id, float x_scale, const Tensor& w_scale, int64_t m,
            ValueId& bias) {
  QParams q;
  const int32_t n = WriterOf(c.g, id);
  if (!ReadQParams(c.model, n, "DequantizeLinear", q)) return false;
  const Tensor* b = c.model.constant(q.x);
  if (b == nullptr || b->type() != DataType::kInt32 || b->shape().size() != 1 ||
      b->shape()[0] != m) {
    return false;
  }
  const int64_t count = q.scale_t->element_count();
  if (count != 1 && count != m) return false;
  for (int64_t i = 0; i < m; ++i) {
    if (ZeroPoint(*q.zp_t, count == 1 ? 0 : i) != 0) return false;
    const double ws =
        w_scale.values<float>()[w_scale.element_count() == 1 ? 0 : static_cast<size_t>(i)];
    const double want = static_cast<double>(static_cast<float>(x_scale * ws));
    const double have = q.scale_t->values<float>()[count == 1 ? 0 : static_cast<size_t>(i)];
    if (std::abs(have - want) > 1e-6 * want) return false;
  }
  bias = q.x;
  return true;
}

}  // namespace

namespace {

// The live QuantizeLinear (per tensor, 8-bit) that is the sole reader of `id`, through one
// Relu when `relu` is non-null and the Relu is exact as saturation: its zero point is the
// type's lowest value, so that saturating the requantised value clips at real 0.
bool OutputQ(const FoldContext& c, ValueId id, int32_t* relu, QParams& q) {
  const Graph& g = c.g;
  int32_t next = c.SoleReader(id);
  if (relu != nullptr) *relu = -1;
  if (relu != nullptr && IsOp(g, next, "Relu")) {
    const Node& r = g.nodes[static_cast<size_t>(next)];
    if (r.outputs.size() != 1) return false;
    *relu = next;
    next = c.SoleReader(r.outputs[0]);
  }
  if (!ReadQParams(c.model, next, "QuantizeLinear", q) || !PerTensor8(q)) return false;
  if (relu != nullptr && *relu >= 0) {
    const int64_t lowest = q.zp_t->type() == DataType::kUint8 ? 0 : -128;
    if (ZeroPoint(*q.zp_t, 0) != lowest) return false;
  }
  return true;
}

// Rewrites node n as `op` over `inputs`, writing `out` (the output of the QuantizeLinear
// `q`), and drops `q` and `relu`. Restores node n when the kernel does not bind.
Status Rewrite(FoldContext& c, int32_t n, const char* op, std::vector<ValueId> inputs,
               const QParams& q, int32_t relu) {
  Graph& g = c.g;
  Node& node = g.nodes[static_cast<size_t>(n)];
  const Node saved = node;
  const ValueId out = g.nodes[static_cast<size_t>(q.node)].outputs[0];
  node.op_type = op;
  node.inputs = std::move(inputs);
  node.outputs = {out};
  if (!c.rebind(n).ok()) {
    node = saved;
    return c.rebind(n);
  }
  // Order stays valid: node n precedes the QuantizeLinear it replaces, and its new inputs
  // (the quantised activation, constants) precede the DequantizeLinear it read.
  c.kernels[static_cast<size_t>(q.node)].reset();
  if (relu >= 0) c.kernels[static_cast<size_t>(relu)].reset();
  g.values[static_cast<size_t>(out)].producer = n;
  c.Recount();
  return Status();
}

Status FoldConvQdq(FoldContext& c, int32_t n) {
  const Node& conv = c.g.nodes[static_cast<size_t>(n)];
  if (conv.inputs.size() < 2 || conv.outputs.size() != 1) return Status();
  QParams x, w, y;
  if (!ActivationDq(c, conv.inputs[0], x) || !WeightDq(c, conv.inputs[1], true, w)) return Status();
  const Tensor& wq = *c.model.constant(w.x);
  // Only the form QLinearConv's integer GEMM runs (2-D, INT8 weights); the reference loop
  // it has for the others is slower than the float Conv.
  if (wq.type() != DataType::kInt8 || wq.shape().size() != 4) return Status();
  ValueId bias = kNoValue;
  if (conv.inputs.size() > 2 && conv.inputs[2] != kNoValue &&
      !BiasDq(c, conv.inputs[2], x.scale_t->values<float>()[0], *w.scale_t, wq.shape()[0], bias)) {
    return Status();
  }
  int32_t relu = -1;
  if (!OutputQ(c, conv.outputs[0], &relu, y)) return Status();
  std::vector<ValueId> in{x.x, x.scale, x.zp, w.x, w.scale, w.zp, y.scale, y.zp};
  if (bias != kNoValue) in.push_back(bias);
  return Rewrite(c, n, "QLinearConv", std::move(in), y, relu);
}

Status FoldMatMulQdq(FoldContext& c, int32_t n) {
  const Node& mm = c.g.nodes[static_cast<size_t>(n)];
  if (mm.inputs.size() != 2 || mm.outputs.size() != 1) return Status();
  QParams a, b, y;
  if (!ActivationDq(c, mm.inputs[0], a) || !WeightDq(c, mm.inputs[1], false, b)) return Status();
  // Only the form QLinearMatMul's integer GEMM runs: UINT8 x INT8.
  if (a.zp_t->type() != DataType::kUint8 || c.model.constant(b.x)->type() != DataType::kInt8) {
    return Status();
  }
  if (c.model.constant(b.x)->shape().size() != 2 || !OutputQ(c, mm.outputs[0], nullptr, y)) {
    return Status();
  }
  return Rewrite(c, n, "QLinearMatMul", {a.x, a.scale, a.zp, b.x, b.scale, b.zp, y.scale, y.zp}, y,
                 -1);
}

// A QuantizeLinear of a DequantizeLinear with the same per-tensor parameters gives back the
// DequantizeLinear's input: |q - z| <= 255, so (q - z) * s / s is within an ulp of q - z and
// rounds to it. Readers of the QuantizeLinear read that input instead.
void CancelDqQ(FoldContext& c, int32_t n) {
  QParams q, dq;
  const Graph& g = c.g;
  if (!ReadQParams(c.model, n, "QuantizeLinear", q) || !PerTensor8(q)) return;
  const int32_t d = WriterOf(g, q.x);
  if (!c.Live(d) || !ReadQParams(c.model, d, "DequantizeLinear", dq) || !SameParams(q, dq)) return;
  const ValueId out = g.nodes[static_cast<size_t>(n)].outputs[0];
  for (ValueId id : g.outputs) {
    if (id == out) return;  // a graph output keeps its own value
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!c.Live(static_cast<int32_t>(i))) continue;
    for (ValueId& id : c.g.nodes[i].inputs) {
      if (id == out) id = dq.x;
    }
  }
  c.kernels[static_cast<size_t>(n)].reset();
  c.Recount();
}

}  // namespace

Status FoldQdq(CompiledModel& model, const KernelRegistry& registry) {
  FoldContext c{model,
                model.graph_,
                model.kernels_,
                [&model, &registry](int32_t n) { return model.RebindKernel(n, registry); },
                {}};
  c.Recount();
  const std::vector<int32_t> order = model.order_;
  for (int32_t n : order) {
    if (!c.Live(n)) continue;
    if (IsOp(c.g, n, "Conv")) {
      OUTPOST_RETURN_IF_ERROR(FoldConvQdq(c, n));
    } else if (IsOp(c.g, n, "MatMul")) {
      OUTPOST_RETURN_IF_ERROR(FoldMatMulQdq(c, n));
    }
  }
  for (int32_t n : order) {
    if (c.Live(n)) CancelDqQ(c, n);
  }
  return Status();
}

}  // namespace outpost::engine::onnx
