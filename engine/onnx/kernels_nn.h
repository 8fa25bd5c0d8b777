// The fused Dense kernel that the optimiser creates (optimizer.h): Y = act(X · W + bias) over
// the last dimension of X, with W pre-packed. Internal to engine/onnx/.
#ifndef OUTPOST_ENGINE_ONNX_KERNELS_NN_H_
#define OUTPOST_ENGINE_ONNX_KERNELS_NN_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/onnx/kernel.h"

namespace outpost::engine::onnx {

enum class Activation : uint8_t { kNone, kRelu, kLeakyRelu, kSigmoid, kTanh, kClip };

struct DenseActivation {
  Activation kind = Activation::kNone;
  float alpha = 0;  // LeakyRelu
  float lo = 0;     // Clip
  float hi = 0;
};

// `weights` is K x N row-major (already scaled), `bias` has N entries or is empty.
std::unique_ptr<Kernel> MakeDenseKernel(const std::vector<float>& weights, int64_t k, int64_t n,
                                        std::vector<float> bias, DenseActivation activation);

// Adds an activation to an existing Dense kernel; false when `kernel` is not a Dense kernel
// or already has one.
bool AddDenseActivation(Kernel& kernel, DenseActivation activation);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_KERNELS_NN_H_
