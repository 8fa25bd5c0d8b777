// Graph rewrites applied while a model is compiled (CompiledModel::Compile), after constant
// folding. Each keeps the model's outputs bit-for-bit equal up to floating-point
// reassociation inside a fused kernel.
#ifndef OUTPOST_ENGINE_ONNX_OPTIMIZER_H_
#define OUTPOST_ENGINE_ONNX_OPTIMIZER_H_

#include <optional>

#include "base/status.h"
#include "engine/onnx/graph.h"
#include "engine/onnx/kernel.h"
#include "engine/onnx/plan.h"

namespace outpost::engine::onnx {

// Bypasses Identity nodes and inference-mode Dropout nodes whose mask is unused: consumers
// (and graph outputs) read the node's input directly; the dead node is dropped later.
void RemoveIdentities(CompiledModel& model);

// Replaces Gemm with constant weights, and MatMul with a constant 2-D right operand followed
// by an Add of a constant bias, by one fused Dense kernel with pre-packed weights, and folds
// a following Relu, LeakyRelu, Sigmoid, Tanh or Clip into it when the intermediate value has
// no other use.
Status FuseDense(CompiledModel& model, const KernelRegistry& registry);

// Folds into each Conv on the fast path (constant weights; kernels_conv.h) a following
// inference BatchNormalization with constant parameters, then an Add of a residual computed
// before the Conv (not a constant), then one activation (Relu, LeakyRelu, Clip with constant
// bounds, HardSigmoid, HardSwish, Sigmoid, Tanh, or Sigmoid + Mul as SiLU), each only when
// the intermediate value has no other reader.
Status FuseConv(CompiledModel& model, const KernelRegistry& registry);

// Folds QDQ node groups (as ONNX Runtime's static quantiser writes them) into the integer
// kernels, each only in the exact form the kernel computes and only where it runs on the
// integer GEMM (INT8 weights; 2-D convolutions; UINT8 activations for MatMul): DequantizeLinear
// (per-tensor 8-bit activation) and DequantizeLinear (constant INT8 weights, per tensor or per
// output channel), an optional DequantizeLinear of a constant INT32 bias at x_scale * w_scale with
// zero points of 0, Conv, an optional Relu (only where the output zero point is the type's
// lowest value, so that saturation clips at 0), then QuantizeLinear (per tensor) become one
// QLinearConv; the same around a MatMul with per-tensor 2-D weights becomes QLinearMatMul; and
// a QuantizeLinear of a DequantizeLinear with the same per-tensor parameters is dropped (its
// readers read the 8-bit value). Runs after constant folding (a folded weight
// DequantizeLinear keeps its inputs) and before FuseDense and FuseConv.
Status FoldQdq(CompiledModel& model, const KernelRegistry& registry);

// Whether the graph computes in FLOAT16 or BFLOAT16 anywhere: a 16-bit constant, graph input
// or output, a Cast to a 16-bit float, or a Constant, ConstantOfShape or dtype attribute of one.
bool HasHalfFloats(const Graph& graph);

// The graph with its FLOAT16 and BFLOAT16 arithmetic moved to FLOAT, for a model whose kernels
// do not all accept 16-bit floats (most convolution, pooling and GEMM kernels are FLOAT only;
// CompiledModel::Compile tries the model as written first). 16-bit constants, and the tensors
// of Constant and ConstantOfShape, become FLOAT once, here; each 16-bit graph input is read
// through a Cast to FLOAT and each 16-bit graph output is written by a Cast from FLOAT, so the
// signature is unchanged; values in between are FLOAT. A Cast to a 16-bit float inside the
// graph keeps its rounding (a Cast back to FLOAT follows it), and a dtype attribute that asks
// for a 16-bit float asks for FLOAT. Nullopt when the graph has no 16-bit floats, imports no
// ai.onnx opset, or has subgraphs (If, Loop, Scan), which are not rewritten.
std::optional<Graph> PromoteHalfFloats(const Graph& graph);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_OPTIMIZER_H_
