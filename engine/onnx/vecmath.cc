#include "engine/onnx/vecmath.h"

#include <cstring>

// The vector helpers are internal to this file, so the ABI note about passing 32-byte
// vectors without AVX does not apply.
#if defined(__GNUC__)  // GCC and clang
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

// Each array function is also compiled for x86-64-v3 (AVX2, FMA) and picked at load time
// where the CPU has it (GCC function multi-versioning); other targets get the portable code.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define OUTPOST_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define OUTPOST_VECTOR_CLONES
#endif

namespace outpost::engine::onnx {
namespace {

// Every helper is force-inlined: a clone must never call a helper compiled for another
// target, because vectors cross such calls in a different ABI.
#define OUTPOST_VM_INLINE __attribute__((always_inline)) inline

typedef float V8 __attribute__((vector_size(32)));
typedef int32_t I8 __attribute__((vector_size(32)));

OUTPOST_VM_INLINE V8 Splat(float x) { return V8{x, x, x, x, x, x, x, x}; }
OUTPOST_VM_INLINE V8 Load(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
OUTPOST_VM_INLINE void Store(float* p, V8 v) { std::memcpy(p, &v, sizeof(v)); }
OUTPOST_VM_INLINE V8 AsFloat(I8 i) {
  V8 v;
  std::memcpy(&v, &i, sizeof(v));
  return v;
}
OUTPOST_VM_INLINE I8 AsInt(V8 v) {
  I8 i;
  std::memcpy(&i, &v, sizeof(i));
  return i;
}
OUTPOST_VM_INLINE V8 Select(I8 mask, V8 a, V8 b) {
  return AsFloat((mask & AsInt(a)) | (~mask & AsInt(b)));
}
OUTPOST_VM_INLINE V8 Abs(V8 x) { return AsFloat(AsInt(x) & (I8{} + 0x7fffffff)); }

// e^x, cephes' expf polynomial with a two-part ln 2 reduction.
OUTPOST_VM_INLINE V8 Exp(V8 x) {
  const I8 nan = x != x;
  const I8 big = x > Splat(88.3762626647949f);
  const I8 small = x < Splat(-87.3365447504f);
  V8 c = Select(nan | big | small, Splat(0.0f), x);
  const V8 t = c * Splat(1.44269504088896341f);
  const V8 n = (t + Splat(12582912.0f)) - Splat(12582912.0f);  // round to nearest
  V8 r = c - n * Splat(0.693359375f);
  r = r - n * Splat(-2.12194440e-4f);
  V8 p = Splat(1.9875691500e-4f);
  p = p * r + Splat(1.3981999507e-3f);
  p = p * r + Splat(8.3334519073e-3f);
  p = p * r + Splat(4.1665795894e-2f);
  p = p * r + Splat(1.6666665459e-1f);
  p = p * r + Splat(5.0000001201e-1f);
  p = p * (r * r) + r + Splat(1.0f);
  const I8 bits = (__builtin_convertvector(n, I8) + 127) << 23;
  V8 y = p * AsFloat(bits);
  y = Select(big, Splat(__builtin_inff()), y);
  y = Select(small, Splat(0.0f), y);
  return Select(nan, x, y);
}

OUTPOST_VM_INLINE V8 Sigmoid(V8 x) { return Splat(1.0f) / (Splat(1.0f) + Exp(-x)); }

OUTPOST_VM_INLINE V8 Tanh(V8 x) {
  const V8 a = Abs(x);
  const V8 clamped = Select(a > Splat(9.0f), Splat(9.0f), a);
  const V8 e = Exp(clamped + clamped);
  V8 big = (e - Splat(1.0f)) / (e + Splat(1.0f));
  // Odd series near 0: x - x^3/3 + 2x^5/15 - 17x^7/315.
  const V8 x2 = x * x;
  V8 s = Splat(-17.0f / 315.0f);
  s = s * x2 + Splat(2.0f / 15.0f);
  s = s * x2 + Splat(-1.0f / 3.0f);
  const V8 series = x + x * x2 * s;
  big = AsFloat(AsInt(big) | (AsInt(x) & (I8{} + static_cast<int32_t>(0x80000000u))));
  const V8 y = Select(a < Splat(0.0625f), series, big);
  return Select(x != x, x, y);
}

OUTPOST_VM_INLINE V8 Erf(V8 x) {
  const V8 a = Abs(x);
  const V8 t = Splat(1.0f) / (Splat(1.0f) + Splat(0.3275911f) * a);
  V8 p = Splat(1.061405429f);
  p = p * t + Splat(-1.453152027f);
  p = p * t + Splat(1.421413741f);
  p = p * t + Splat(-0.284496736f);
  p = p * t + Splat(0.254829592f);
  p = p * t;
  V8 big = Splat(1.0f) - p * Exp(-(a * a));
  big = AsFloat(AsInt(big) | (AsInt(x) & (I8{} + static_cast<int32_t>(0x80000000u))));
  // Series near 0: 2/sqrt(pi) (x - x^3/3 + x^5/10 - x^7/42).
  const V8 x2 = x * x;
  V8 s = Splat(-1.0f / 42.0f);
  s = s * x2 + Splat(1.0f / 10.0f);
  s = s * x2 + Splat(-1.0f / 3.0f);
  const V8 series = (x + x * x2 * s) * Splat(1.12837916709551257f);
  const V8 y = Select(a < Splat(0.125f), series, big);
  return Select(x != x, x, y);
}

template <V8 (*F)(V8)>
OUTPOST_VM_INLINE void Apply(const float* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) Store(out + i, F(Load(in + i)));
  if (i < n) {
    float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(tmp, in + i, static_cast<size_t>(n - i) * sizeof(float));
    Store(tmp, F(Load(tmp)));
    std::memcpy(out + i, tmp, static_cast<size_t>(n - i) * sizeof(float));
  }
}

}  // namespace

OUTPOST_VECTOR_CLONES void ExpF(const float* in, float* out, int64_t n) {
  Apply<Exp>(in, out, n);
}
OUTPOST_VECTOR_CLONES void SigmoidF(const float* in, float* out, int64_t n) {
  Apply<Sigmoid>(in, out, n);
}
OUTPOST_VECTOR_CLONES void TanhF(const float* in, float* out, int64_t n) {
  Apply<Tanh>(in, out, n);
}
OUTPOST_VECTOR_CLONES void ErfF(const float* in, float* out, int64_t n) {
  Apply<Erf>(in, out, n);
}

OUTPOST_VECTOR_CLONES void AddActivate(const ActParams& act, const float* add, float* x,
                                       int64_t n) {
  if (add != nullptr) {
    for (int64_t i = 0; i < n; ++i) x[i] += add[i];
  }
  switch (act.kind) {
    case ActKind::kNone:
      break;
    case ActKind::kRelu:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
      break;
    case ActKind::kLeakyRelu:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] >= 0.0f ? x[i] : x[i] * act.alpha;
      break;
    case ActKind::kClip:
      for (int64_t i = 0; i < n; ++i) {
        x[i] = x[i] < act.lo ? act.lo : (x[i] > act.hi ? act.hi : x[i]);
      }
      break;
    case ActKind::kHardSigmoid:
      for (int64_t i = 0; i < n; ++i) {
        const float y = act.alpha * x[i] + act.beta;
        x[i] = y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
      }
      break;
    case ActKind::kHardSwish:
      for (int64_t i = 0; i < n; ++i) {
        const float y = x[i] * (1.0f / 6.0f) + 0.5f;
        x[i] *= y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
      }
      break;
    case ActKind::kSigmoid:
      Apply<Sigmoid>(x, x, n);
      break;
    case ActKind::kTanh:
      Apply<Tanh>(x, x, n);
      break;
    case ActKind::kSilu:
      for (int64_t i = 0; i < n; i += 64) {
        float s[64];
        const int64_t len = n - i < 64 ? n - i : 64;
        Apply<Sigmoid>(x + i, s, len);
        for (int64_t j = 0; j < len; ++j) x[i + j] *= s[j];
      }
      break;
  }
}

}  // namespace outpost::engine::onnx
