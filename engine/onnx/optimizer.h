// Graph rewrites applied while a model is compiled (CompiledModel::Compile), after constant
// folding. Each keeps the model's outputs bit-for-bit equal up to floating-point
// reassociation inside a fused kernel.
#ifndef OUTPOST_ENGINE_ONNX_OPTIMIZER_H_
#define OUTPOST_ENGINE_ONNX_OPTIMIZER_H_

#include "base/status.h"
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

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_OPTIMIZER_H_
