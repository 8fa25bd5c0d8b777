// The optimiser's hooks into Conv kernels (optimizer.cc). Internal to engine/onnx/.
//
// Each applies only to a Conv on the fast path (constant weights, one or two spatial
// dimensions; conv2d.h) and is called while the model is compiled, before the kernel is
// shared. Each returns false, changing nothing, when it does not apply.
#ifndef OUTPOST_ENGINE_ONNX_KERNELS_CONV_H_
#define OUTPOST_ENGINE_ONNX_KERNELS_CONV_H_

#include <vector>

#include "engine/onnx/kernel.h"
#include "engine/onnx/vecmath.h"

namespace outpost::engine::onnx {

// Whether `kernel` is a Conv on the fast path.
bool IsFastConv(const Kernel& kernel);

// Folds a following per-channel affine map (BatchNormalization) into the weights and bias:
// y[m] = conv(x)[m] * scale[m] + shift[m]. Not after a fused residual or activation.
bool FoldConvScaleShift(Kernel& kernel, const std::vector<float>& scale,
                        const std::vector<float>& shift);

// Applies `act` to the output (after the residual, if any). Only one activation.
bool SetConvActivation(Kernel& kernel, const ActParams& act);

// The node's input 3 (same shape as the output) is added to the output before the
// activation. Not after an activation.
bool SetConvResidual(Kernel& kernel);

// How many input shapes `kernel` (a Conv) runs through oneDNN (onednn_conv.h): those its
// plans were made for where oneDNN took the convolution. 0 for any other kernel.
int OnednnConvShapes(const Kernel& kernel);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_KERNELS_CONV_H_
