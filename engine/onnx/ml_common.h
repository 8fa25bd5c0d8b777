// Score transforms shared by the ONNX-ML kernels. They follow ONNX Runtime's arithmetic (float,
// the same approximations and order), because ONNX Runtime is the reference that exported
// models were validated against. Internal to engine/onnx/.
#ifndef OUTPOST_ENGINE_ONNX_ML_COMMON_H_
#define OUTPOST_ENGINE_ONNX_ML_COMMON_H_

#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

#include "base/status.h"

namespace outpost::engine::onnx {

enum class PostTransform : uint8_t { kNone, kLogistic, kSoftmax, kSoftmaxZero, kProbit };

inline Result<PostTransform> ParsePostTransform(std::string_view s) {
  if (s == "NONE") return PostTransform::kNone;
  if (s == "LOGISTIC") return PostTransform::kLogistic;
  if (s == "SOFTMAX") return PostTransform::kSoftmax;
  if (s == "SOFTMAX_ZERO") return PostTransform::kSoftmaxZero;
  if (s == "PROBIT") return PostTransform::kProbit;
  return InvalidArgumentError("unknown post_transform \"" + std::string(s) + "\"");
}

inline float Logistic(float v) {
  const float e = 1.0f / (1.0f + std::exp(-std::abs(v)));
  return v < 0 ? 1.0f - e : e;
}

// Winitzki's approximation of erf^-1, as ONNX Runtime computes it.
inline float ErfInv(float x) {
  const float sgn = x < 0 ? -1.0f : 1.0f;
  x = (1 - x) * (1 + x);
  const float log = std::log(x);
  const float v = 2 / (3.14159265358979323846f * 0.147f) + 0.5f * log;
  const float v2 = 1 / 0.147f * log;
  const float v3 = -v + std::sqrt(v * v - v2);
  return sgn * std::sqrt(v3);
}

inline float Probit(float v) { return 1.41421356237309504880f * ErfInv(2 * v - 1); }

inline void Softmax(float* v, int64_t n) {
  float m = -std::numeric_limits<float>::max();
  for (int64_t i = 0; i < n; ++i) m = v[i] > m ? v[i] : m;
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    v[i] = std::exp(v[i] - m);
    sum += v[i];
  }
  for (int64_t i = 0; i < n; ++i) v[i] /= sum;
}

// Softmax in which exact zeros stay (almost) zero.
inline void SoftmaxZero(float* v, int64_t n) {
  float m = -std::numeric_limits<float>::max();
  for (int64_t i = 0; i < n; ++i) m = v[i] > m ? v[i] : m;
  const float exp_neg_max = std::exp(-m);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (v[i] > 0.0000001f || v[i] < -0.0000001f) {
      v[i] = std::exp(v[i] - m);
      sum += v[i];
    } else {
      v[i] *= exp_neg_max;
    }
  }
  for (int64_t i = 0; i < n; ++i) v[i] /= sum;
}

// Applies `t` to n >= 2 scores in place.
inline void TransformScores(PostTransform t, float* v, int64_t n) {
  switch (t) {
    case PostTransform::kNone:
      break;
    case PostTransform::kLogistic:
      for (int64_t i = 0; i < n; ++i) v[i] = Logistic(v[i]);
      break;
    case PostTransform::kSoftmax:
      Softmax(v, n);
      break;
    case PostTransform::kSoftmaxZero:
      SoftmaxZero(v, n);
      break;
    case PostTransform::kProbit:
      for (int64_t i = 0; i < n; ++i) v[i] = Probit(v[i]);
      break;
  }
}

// How a single binary score becomes two columns (ONNX Runtime's add_second_class):
// kComplement = [1 - s, s]; kMirror = [-s, s], or [logistic(-s), logistic(s)] under LOGISTIC;
// kNone = only the score is written.
enum class SecondClass : uint8_t { kNone, kComplement, kMirror };

// Writes one binary score as ONNX Runtime does into out[0..1] (out[1] untouched for kNone and
// for PROBIT).
inline void WriteBinaryScore(PostTransform t, SecondClass second, float s, float* out) {
  if (t == PostTransform::kProbit) {
    out[0] = Probit(s);
    return;
  }
  switch (second) {
    case SecondClass::kComplement:
      out[0] = 1.0f - s;
      out[1] = s;
      break;
    case SecondClass::kMirror:
      if (t == PostTransform::kLogistic) {
        out[0] = Logistic(-s);
        out[1] = Logistic(s);
      } else {
        out[0] = -s;
        out[1] = s;
      }
      break;
    case SecondClass::kNone:
      out[0] = s;
      break;
  }
}

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_ML_COMMON_H_
