#include "engine/onnx/gemm.h"

#include <algorithm>
#include <cstring>

// The vector helpers below are internal to this file, so the ABI note about passing
// 32-byte vectors without AVX does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace outpost::engine::onnx {
namespace {

// 8 floats: one AVX register, two SSE registers; GCC and clang lower it for any target.
typedef float V8 __attribute__((vector_size(32)));

inline V8 Load(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store(float* p, V8 v) { std::memcpy(p, &v, sizeof(v)); }
inline V8 Splat(float x) { return V8{x, x, x, x, x, x, x, x}; }

// kRows x 16 tile of C from kRows rows of A and one packed panel.
template <int kRows>
inline void Tile(int64_t k, const float* a, int64_t a_row, int64_t a_col, const float* panel,
                 float* c, int64_t ldc, int64_t cols, float alpha, bool accumulate,
                 const float* bias) {
  V8 acc[kRows][2];
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = Splat(0.0f);
  for (int64_t p = 0; p < k; ++p) {
    const V8 b0 = Load(panel + p * kPanel);
    const V8 b1 = Load(panel + p * kPanel + 8);
    for (int r = 0; r < kRows; ++r) {
      const V8 av = Splat(a[r * a_row + p * a_col]);
      acc[r][0] += av * b0;
      acc[r][1] += av * b1;
    }
  }
  float tmp[kPanel];
  for (int r = 0; r < kRows; ++r) {
    float* crow = c + r * ldc;
    const V8 va = Splat(alpha);
    V8 v0 = acc[r][0] * va;
    V8 v1 = acc[r][1] * va;
    if (cols == kPanel) {
      if (accumulate) {
        v0 += Load(crow);
        v1 += Load(crow + 8);
      }
      if (bias != nullptr) {
        v0 += Load(bias);
        v1 += Load(bias + 8);
      }
      Store(crow, v0);
      Store(crow + 8, v1);
    } else {
      Store(tmp, v0);
      Store(tmp + 8, v1);
      for (int64_t j = 0; j < cols; ++j) {
        float v = tmp[j];
        if (accumulate) v += crow[j];
        if (bias != nullptr) v += bias[j];
        crow[j] = v;
      }
    }
  }
}

}  // namespace

void PackB(const float* b, int64_t ldb, bool trans, int64_t k, int64_t n, float* packed) {
  const int64_t panels = (n + kPanel - 1) / kPanel;
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = packed + p * k * kPanel;
    const int64_t j0 = p * kPanel;
    const int64_t cols = std::min<int64_t>(kPanel, n - j0);
    for (int64_t kk = 0; kk < k; ++kk) {
      float* row = dst + kk * kPanel;
      for (int64_t j = 0; j < cols; ++j) {
        row[j] = trans ? b[(j0 + j) * ldb + kk] : b[kk * ldb + j0 + j];
      }
      for (int64_t j = cols; j < kPanel; ++j) row[j] = 0.0f;
    }
  }
}

void GemmPacked(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_row, int64_t a_col,
                const float* packed_b, float* c, int64_t ldc, float alpha, bool accumulate,
                const float* bias) {
  const int64_t panels = (n + kPanel - 1) / kPanel;
  for (int64_t p = 0; p < panels; ++p) {
    const float* panel = packed_b + p * k * kPanel;
    const int64_t j0 = p * kPanel;
    const int64_t cols = std::min<int64_t>(kPanel, n - j0);
    const float* bias_p = bias != nullptr ? bias + j0 : nullptr;
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
      Tile<4>(k, a + i * a_row, a_row, a_col, panel, c + i * ldc + j0, ldc, cols, alpha,
              accumulate, bias_p);
    }
    const int64_t rest = m - i;
    const float* ai = a + i * a_row;
    float* ci = c + i * ldc + j0;
    if (rest == 3) Tile<3>(k, ai, a_row, a_col, panel, ci, ldc, cols, alpha, accumulate, bias_p);
    if (rest == 2) Tile<2>(k, ai, a_row, a_col, panel, ci, ldc, cols, alpha, accumulate, bias_p);
    if (rest == 1) Tile<1>(k, ai, a_row, a_col, panel, ci, ldc, cols, alpha, accumulate, bias_p);
  }
}

}  // namespace outpost::engine::onnx
