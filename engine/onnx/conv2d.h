// Fast 2-D convolution (1-D runs as a 2-D convolution of height 1), NCHW, FLOAT. Internal
// to engine/onnx/; kernels_conv.cc's Conv uses it when the weights are constant.
//
//   Conv2dWeights  the weights prepared once, when the model is compiled: packed into the
//                  weight-packed GEMM's strips (gemm.h), or kept per channel for depthwise
//                  convolutions (one input channel per group); the bias, and a per output
//                  channel scale and shift that a folded BatchNormalization contributes.
//   Conv2dForward  one image: per group and per block of output positions, the input window
//                  is packed straight into the GEMM's panels (implicit im2col; a pointwise
//                  convolution with stride 1 and no padding copies rows), then the micro-kernel
//                  runs over K blocks; the epilogue adds a residual and applies an activation
//                  while the block is still in cache. Depthwise convolutions run directly.
// No allocation: the caller gives Conv2dScratchFloats() floats of scratch.
#ifndef OUTPOST_ENGINE_ONNX_CONV2D_H_
#define OUTPOST_ENGINE_ONNX_CONV2D_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/onnx/gemm.h"
#include "engine/onnx/vecmath.h"

namespace outpost::engine::onnx {

class IntraOpPool;  // thread_pool.h

// Geometry of one 2-D convolution (per image).
struct Conv2dGeom {
  int64_t c = 0, h = 0, w = 0;    // input channels and plane
  int64_t m = 0, oh = 0, ow = 0;  // output channels and plane
  int64_t kh = 1, kw = 1;         // kernel
  int64_t sh = 1, sw = 1;         // strides
  int64_t dh = 1, dw = 1;         // dilations
  int64_t pt = 0, pl = 0;         // top and left padding
  int64_t pb = 0, pr = 0;         // bottom and right padding (the pools' counts)
  int64_t group = 1;
};

class Conv2dWeights {
 public:
  // `w` is M x (C / group) x kh x kw; `bias` M floats or null. Strides are at most 16.
  Conv2dWeights(const GemmArch& arch, const Conv2dGeom& g, const float* w, const float* bias);

  // Scales output channel m by scale[m] and then adds shift[m] (BatchNormalization folded
  // into the convolution).
  void ScaleShift(const std::vector<float>& scale, const std::vector<float>& shift);

  bool depthwise() const { return depthwise_; }
  // M x (C / group) x kh x kw, with any folded scale applied; M floats (zeros when none).
  const std::vector<float>& weights() const { return raw_; }
  const std::vector<float>& bias() const { return bias_; }
  const GemmArch& arch() const { return *arch_; }

  // One image: x is C x H x W, y is M x OH x OW; residual (null or like y) is added before
  // the activation. The work is split over `pool` when it is not null, with at most
  // `threads` of ScratchFloats(g, threads).
  void Forward(const Conv2dGeom& g, const float* x, const float* residual, const ActParams& act,
               float* y, float* scratch, IntraOpPool* pool = nullptr) const;

  // Scratch floats Forward() needs for geometry g on up to `threads` threads.
  size_t ScratchFloats(const Conv2dGeom& g, int threads = 1) const;

 private:
  void PackWeights();
  void ForwardFlat(const Conv2dGeom& g, const float* x, const float* residual, const ActParams& act,
                   float* y, float* scratch, IntraOpPool* pool) const;
  void ForwardPhases(const Conv2dGeom& g, const float* x, const float* residual,
                     const ActParams& act, float* y, float* scratch, IntraOpPool* pool) const;
  void PhasesBlock(const Conv2dGeom& g, int64_t gi, int64_t j0, int64_t nb, const float* planes,
                   const float* residual, const ActParams& act, float* y, float* bbuf,
                   float* cbuf) const;

  const GemmArch* arch_;
  Conv2dGeom geom_;  // the weights' geometry (channels, kernel, group)
  bool depthwise_ = false;
  std::vector<float> raw_;     // M x K, scaled; depthwise: M x kh x kw
  std::vector<float> packed_;  // per group, PackedASize(arch, M / group, K) floats
  std::vector<float> transposed_;  // pointwise, one group: W^T in GemmPacked's panels
  std::vector<float> bias_;    // M floats (zeros when the model has none)
  bool has_bias_ = false;
};

// Max pooling over `planes` planes of geometry g (m, c, group unused), on the polyphase form
// of each plane; windows of at most 64 taps and strides of at most 16
// (MaxPool2dScratchFloats is 0 otherwise).
size_t MaxPool2dScratchFloats(const Conv2dGeom& g);
void MaxPool2d(const Conv2dGeom& g, int64_t planes, const float* x, float* scratch, float* y);

// Packs rows [k0, k0 + kc) and output positions [j0, j0 + nb) of the im2col matrix of
// image x (one group's channels) into panels of nr floats (exposed for tests).
void PackConvPanels(const Conv2dGeom& g, const float* x, int64_t k0, int64_t kc, int64_t j0,
                    int64_t nb, int64_t nr, float* dst);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_CONV2D_H_
