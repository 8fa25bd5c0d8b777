// The oneDNN adapter for FLOAT 2-D convolutions with constant weights (Debian 12's
// libdnnl-dev 2.6). Internal to engine/onnx/ and the only file pair that sees dnnl.hpp;
// kernels_conv.cc's Conv uses it when CompileOptions::onednn is set and oneDNN takes the
// geometry, and runs the engine's own kernels (conv2d.h) otherwise.
//
// Everything is prepared when a plan is made for an input shape: the convolution primitive
// (source and destination layouts chosen by oneDNN, weights reordered once into its blocked
// layout, the fused epilogue as post-ops), the reorders between the engine's NCHW tensors and
// the primitive's layouts, and every execute() argument list. A run only points the
// argument memories at the run's tensors and scratch and executes; the scratch (reordered
// source, destination, oneDNN's scratchpad) comes from the plan's arena.
#ifndef OUTPOST_ENGINE_ONNX_ONEDNN_CONV_H_
#define OUTPOST_ENGINE_ONNX_ONEDNN_CONV_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/onnx/conv2d.h"
#include "engine/onnx/vecmath.h"

namespace outpost::engine::onnx {

struct OnednnConvSpec {
  Conv2dGeom g;            // per image
  int64_t batch = 1;       // N
  const float* weights;    // M x (C / group) x kh x kw, any folded BatchNormalization applied
  const float* bias;       // M floats
  ActParams act;           // applied after the residual
  bool residual = false;   // an N x M x OH x OW tensor is added before the activation
  int threads = 1;         // the OpenMP team oneDNN runs with (CompileOptions::threads)
};

class OnednnConv {
 public:
  // Null when oneDNN refuses the geometry or epilogue, or would run one of its reference
  // (unoptimised) implementations.
  static std::unique_ptr<OnednnConv> Create(const OnednnConvSpec& spec);
  ~OnednnConv();
  OnednnConv(const OnednnConv&) = delete;
  OnednnConv& operator=(const OnednnConv&) = delete;

  // Bytes of scratch Run() needs.
  size_t ScratchBytes() const;
  // oneDNN's name of the implementation it chose (impl_info_str()).
  const std::string& impl() const;

  // y = act(conv(x) + residual), all NCHW; scratch is ScratchBytes() bytes, 64-aligned.
  // False (nothing written) while another run is using this primitive: the caller then runs
  // the engine's own kernels.
  bool Run(const float* x, const float* residual, float* y, void* scratch) const;

 private:
  struct State;
  explicit OnednnConv(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_ONEDNN_CONV_H_
