// The ONNX-ML operators (domain ai.onnx.ml).
#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {

void RegisterMlKernels(KernelRegistry& registry) { (void)registry; }

}  // namespace outpost::engine::onnx
