#include "engine/onnx/gemm.h"

#include <algorithm>
#include <cstring>

// The vector helpers below are internal to this file, so the ABI note about passing
// 32-byte vectors without AVX does not apply.
#if defined(__GNUC__)  // GCC and clang
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace outpost::engine::onnx {
namespace {

// 16 floats (one panel row): one AVX-512 register, two AVX2 registers, four SSE registers;
// GCC and clang lower the vector extension for whichever target a clone is compiled for.
typedef float V16 __attribute__((vector_size(64)));

// Always inlined: a V16 passed between functions compiled for different targets (the
// target_clones below) would be passed in different registers, so these helpers must never
// be called out of line.
__attribute__((always_inline)) inline V16 Load(const float* p) {
  V16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
__attribute__((always_inline)) inline void Store(float* p, V16 v) {
  std::memcpy(p, &v, sizeof(v));
}
__attribute__((always_inline)) inline V16 Splat(float x) { return V16{} + x; }

// kRows x 16 tile of C from kRows rows of A and one packed panel. The accumulators stay in
// registers for the whole K loop.
template <int kRows>
__attribute__((always_inline)) inline void Tile(int64_t k, const float* a, int64_t a_row,
                                                int64_t a_col, const float* panel, float* c,
                                                int64_t ldc, int64_t cols, float alpha,
                                                bool accumulate, const float* bias) {
  // Fully unrolled over the rows, so that the accumulators live in registers.
  V16 acc[kRows];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) acc[r] = Splat(0.0f);
  for (int64_t p = 0; p < k; ++p) {
    const V16 b = Load(panel + p * kPanel);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) acc[r] += Splat(a[r * a_row + p * a_col]) * b;
  }
  float tmp[kPanel];
  for (int r = 0; r < kRows; ++r) {
    float* crow = c + r * ldc;
    V16 v = acc[r] * Splat(alpha);
    if (cols == kPanel) {
      if (accumulate) v += Load(crow);
      if (bias != nullptr) v += Load(bias);
      Store(crow, v);
    } else {
      Store(tmp, v);
      for (int64_t j = 0; j < cols; ++j) {
        float x = tmp[j];
        if (accumulate) x += crow[j];
        if (bias != nullptr) x += bias[j];
        crow[j] = x;
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

// Compiled also for x86-64-v4 (AVX-512) and x86-64-v3 (AVX2, FMA), chosen at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
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
    for (; i + 6 <= m; i += 6) {
      Tile<6>(k, a + i * a_row, a_row, a_col, panel, c + i * ldc + j0, ldc, cols, alpha,
              accumulate, bias_p);
    }
    const int64_t rest = m - i;
    const float* ai = a + i * a_row;
    float* ci = c + i * ldc + j0;
    switch (rest) {
      case 5: Tile<5>(k, ai, a_row, a_col, panel, ci, ldc, cols, alpha, accumulate, bias_p); break;
      case 4: Tile<4>(k, ai, a_row, a_col, panel, ci, ldc, cols, alpha, accumulate, bias_p); break;
      case 3: Tile<3>(k, ai, a_row, a_col, panel, ci, ldc, cols, alpha, accumulate, bias_p); break;
      case 2: Tile<2>(k, ai, a_row, a_col, panel, ci, ldc, cols, alpha, accumulate, bias_p); break;
      case 1: Tile<1>(k, ai, a_row, a_col, panel, ci, ldc, cols, alpha, accumulate, bias_p); break;
      default: break;
    }
  }
}

}  // namespace outpost::engine::onnx
