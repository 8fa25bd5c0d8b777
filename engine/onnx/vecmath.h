// Vectorised float math for the kernels' hot loops: exp, tanh, logistic sigmoid, erf over
// arrays. Polynomial approximations evaluated 8 lanes at a time (GCC/clang vector extensions,
// so they compile for any target and use AVX2 + FMA where the CPU has them):
//   ExpF      relative error < 2e-7 over the float range (overflow -> inf, underflow -> 0)
//   SigmoidF  absolute error < 2e-7
//   TanhF     absolute error < 3e-7 (odd Taylor series near 0, so tiny inputs stay exact)
//   ErfF      absolute error < 3e-7 (Abramowitz & Stegun 7.1.26 with the fast exp)
// NaN in gives NaN out. `in` and `out` may be the same array. Thread-safe: no state.
#ifndef OUTPOST_ENGINE_ONNX_VECMATH_H_
#define OUTPOST_ENGINE_ONNX_VECMATH_H_

#include <cstdint>

namespace outpost::engine::onnx {

void ExpF(const float* in, float* out, int64_t n);
void SigmoidF(const float* in, float* out, int64_t n);
void TanhF(const float* in, float* out, int64_t n);
void ErfF(const float* in, float* out, int64_t n);

// The activations a convolution's epilogue applies (fused by the optimiser).
enum class ActKind : uint8_t {
  kNone,
  kRelu,
  kLeakyRelu,
  kClip,
  kHardSigmoid,
  kHardSwish,
  kSigmoid,
  kSilu,
  kTanh
};
struct ActParams {
  ActKind kind = ActKind::kNone;
  float alpha = 0;  // LeakyRelu's slope; HardSigmoid's alpha
  float beta = 0;   // HardSigmoid's beta
  float lo = 0;     // Clip's bounds
  float hi = 0;
};

// x[i] = act(x[i] + add[i]) (add may be null: x[i] = act(x[i])).
void AddActivate(const ActParams& act, const float* add, float* x, int64_t n);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_VECMATH_H_
