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
// target-specific functions below) would be passed in different registers, so these helpers
// must never be called out of line.
__attribute__((always_inline)) inline V16 Load(const float* p) {
  V16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
__attribute__((always_inline)) inline void Store(float* p, V16 v) {
  std::memcpy(p, &v, sizeof(v));
}
// Outside inner loops only: `V16{} + x` costs a scalar add and a register broadcast. Inner
// loops multiply a vector by the scalar, which compiles to a broadcast load.
__attribute__((always_inline)) inline V16 Splat(float x) { return V16{} + x; }

// kRows x (16 * kPanels) tile of C from kRows rows of A and kPanels adjacent packed panels
// (each `panel_stride` floats after the previous). The accumulators stay in registers for
// the whole K loop; A's elements are multiplied in as scalars (broadcast loads).
template <int kRows, int kPanels>
__attribute__((always_inline)) inline void Tile(int64_t k, const float* a, int64_t a_row,
                                                int64_t a_col, const float* panel,
                                                int64_t panel_stride, float* c, int64_t ldc,
                                                int64_t n_left, float alpha, bool accumulate,
                                                const float* bias) {
  V16 acc[kRows][kPanels];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int q = 0; q < kPanels; ++q) acc[r][q] = Splat(0.0f);
  }
  for (int64_t p = 0; p < k; ++p) {
    V16 b[kPanels];
#pragma GCC unroll 4
    for (int q = 0; q < kPanels; ++q) b[q] = Load(panel + q * panel_stride + p * kPanel);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const float av = a[r * a_row + p * a_col];
#pragma GCC unroll 4
      for (int q = 0; q < kPanels; ++q) acc[r][q] += b[q] * av;
    }
  }
  float tmp[kPanel];
  for (int q = 0; q < kPanels; ++q) {
    const int64_t cols = std::min<int64_t>(kPanel, n_left - q * kPanel);
    const float* bq = bias != nullptr ? bias + q * kPanel : nullptr;
    for (int r = 0; r < kRows; ++r) {
      float* crow = c + r * ldc + q * kPanel;
      V16 v = acc[r][q] * Splat(alpha);
      if (cols == kPanel) {
        if (accumulate) v += Load(crow);
        if (bq != nullptr) v += Load(bq);
        Store(crow, v);
      } else {
        Store(tmp, v);
        for (int64_t j = 0; j < cols; ++j) {
          float x = tmp[j];
          if (accumulate) x += crow[j];
          if (bq != nullptr) x += bq[j];
          crow[j] = x;
        }
      }
    }
  }
}

// Rows of C for the kP panels from panel p, in tiles of 6 rows. (A function, not a lambda:
// a lambda would not take the target attribute of the function it is written in.)
template <int kP>
__attribute__((always_inline)) inline void PanelColumns(int64_t p, int64_t m, int64_t n, int64_t k,
                                                        const float* a, int64_t a_row,
                                                        int64_t a_col, const float* packed_b,
                                                        float* c, int64_t ldc, float alpha,
                                                        bool accumulate, const float* bias) {
  const int64_t stride = k * kPanel;
  const float* panel = packed_b + p * stride;
  const int64_t j0 = p * kPanel;
  const int64_t left = n - j0;
  const float* bias_p = bias != nullptr ? bias + j0 : nullptr;
  int64_t i = 0;
  for (; i + 6 <= m; i += 6) {
    Tile<6, kP>(k, a + i * a_row, a_row, a_col, panel, stride, c + i * ldc + j0, ldc, left, alpha,
                accumulate, bias_p);
  }
  const float* ai = a + i * a_row;
  float* ci = c + i * ldc + j0;
  switch (m - i) {
    case 5:
      Tile<5, kP>(k, ai, a_row, a_col, panel, stride, ci, ldc, left, alpha, accumulate, bias_p);
      break;
    case 4:
      Tile<4, kP>(k, ai, a_row, a_col, panel, stride, ci, ldc, left, alpha, accumulate, bias_p);
      break;
    case 3:
      Tile<3, kP>(k, ai, a_row, a_col, panel, stride, ci, ldc, left, alpha, accumulate, bias_p);
      break;
    case 2:
      Tile<2, kP>(k, ai, a_row, a_col, panel, stride, ci, ldc, left, alpha, accumulate, bias_p);
      break;
    case 1:
      Tile<1, kP>(k, ai, a_row, a_col, panel, stride, ci, ldc, left, alpha, accumulate, bias_p);
      break;
    default:
      break;
  }
}

// Tiles of kWide panels, then single panels for the panels left over.
template <int kWide>
__attribute__((always_inline)) inline void GemmPackedImpl(int64_t m, int64_t n, int64_t k,
                                                          const float* a, int64_t a_row,
                                                          int64_t a_col, const float* packed_b,
                                                          float* c, int64_t ldc, float alpha,
                                                          bool accumulate, const float* bias) {
  const int64_t panels = (n + kPanel - 1) / kPanel;
  int64_t p = 0;
  for (; p + kWide <= panels; p += kWide) {
    PanelColumns<kWide>(p, m, n, k, a, a_row, a_col, packed_b, c, ldc, alpha, accumulate, bias);
  }
  for (; p < panels; ++p) {
    PanelColumns<1>(p, m, n, k, a, a_row, a_col, packed_b, c, ldc, alpha, accumulate, bias);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
// 6 rows x 4 panels: 24 zmm accumulators, 4 per broadcast.
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))) void GemmPackedAvx512(
    int64_t m, int64_t n, int64_t k, const float* a, int64_t a_row, int64_t a_col,
    const float* packed_b, float* c, int64_t ldc, float alpha, bool accumulate, const float* bias) {
  GemmPackedImpl<4>(m, n, k, a, a_row, a_col, packed_b, c, ldc, alpha, accumulate, bias);
}
// 6 rows x 1 panel: 12 ymm accumulators.
__attribute__((target("avx2,fma"))) void GemmPackedAvx2(int64_t m, int64_t n, int64_t k,
                                                        const float* a, int64_t a_row,
                                                        int64_t a_col, const float* packed_b,
                                                        float* c, int64_t ldc, float alpha,
                                                        bool accumulate, const float* bias) {
  GemmPackedImpl<1>(m, n, k, a, a_row, a_col, packed_b, c, ldc, alpha, accumulate, bias);
}
#endif
void GemmPackedPortable(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_row,
                        int64_t a_col, const float* packed_b, float* c, int64_t ldc, float alpha,
                        bool accumulate, const float* bias) {
  GemmPackedImpl<1>(m, n, k, a, a_row, a_col, packed_b, c, ldc, alpha, accumulate, bias);
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

// AVX-512, AVX2 + FMA or the portable code, chosen once from the CPU's features (the
// weight-packed GEMM's choice).
void GemmPacked(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_row, int64_t a_col,
                const float* packed_b, float* c, int64_t ldc, float alpha, bool accumulate,
                const float* bias) {
  using Fn = void (*)(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*,
                      float*, int64_t, float, bool, const float*);
  static const Fn fn = [] {
#if defined(__x86_64__) && defined(__GNUC__)
    if (BestGemmArch().isa == Isa::kAvx512) return Fn{&GemmPackedAvx512};
    if (BestGemmArch().isa == Isa::kAvx2) return Fn{&GemmPackedAvx2};
#endif
    return Fn{&GemmPackedPortable};
  }();
  fn(m, n, k, a, a_row, a_col, packed_b, c, ldc, alpha, accumulate, bias);
}

// ---- Weight-packed GEMM ----

namespace {

typedef float V8 __attribute__((vector_size(32)));
typedef float V4 __attribute__((vector_size(16)));

template <typename V>
__attribute__((always_inline)) inline V LoadV(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename V>
__attribute__((always_inline)) inline void StoreV(float* p, V v) {
  std::memcpy(p, &v, sizeof(v));
}

// An mr x nr tile of C (rows x cols of it stored) over kc steps: per step, kNv vectors of the
// B panel and kMr broadcasts of the A strip; the kMr * kNv accumulators stay in registers.
template <typename V, int kMr, int kNv>
__attribute__((always_inline)) inline void MicroTile(int64_t kc, const float* a, const float* b,
                                                     float* c, int64_t ldc, int64_t rows,
                                                     int64_t cols, const float* bias,
                                                     bool accumulate) {
  constexpr int kW = sizeof(V) / sizeof(float);
  constexpr int kNr = kW * kNv;
  V acc[kMr][kNv];
#pragma GCC unroll 16
  for (int r = 0; r < kMr; ++r) {
    const float init = (!accumulate && bias != nullptr && r < rows) ? bias[r] : 0.0f;
#pragma GCC unroll 4
    for (int v = 0; v < kNv; ++v) acc[r][v] = V{} + init;
  }
  for (int64_t p = 0; p < kc; ++p) {
    V bv[kNv];
#pragma GCC unroll 4
    for (int v = 0; v < kNv; ++v) bv[v] = LoadV<V>(b + p * kNr + v * kW);
#pragma GCC unroll 16
    for (int r = 0; r < kMr; ++r) {
      const float av = a[p * kMr + r];
#pragma GCC unroll 4
      for (int v = 0; v < kNv; ++v) acc[r][v] += bv[v] * av;
    }
  }
  for (int r = 0; r < kMr; ++r) {
    if (r >= rows) break;
    float* crow = c + r * ldc;
    if (cols == kNr) {
#pragma GCC unroll 4
      for (int v = 0; v < kNv; ++v) {
        V x = acc[r][v];
        if (accumulate) x += LoadV<V>(crow + v * kW);
        StoreV<V>(crow + v * kW, x);
      }
    } else {
      float tmp[kNr];
#pragma GCC unroll 4
      for (int v = 0; v < kNv; ++v) StoreV<V>(tmp + v * kW, acc[r][v]);
      for (int64_t j = 0; j < cols; ++j) crow[j] = accumulate ? crow[j] + tmp[j] : tmp[j];
    }
  }
}

// Panels outside, strips inside: one B panel (kc x nr) stays in L1 while every strip of A
// passes over it.
template <typename V, int kMr, int kNv>
__attribute__((always_inline)) inline void BlockImpl(const GemmBlockArgs& g) {
  constexpr int64_t kNr = static_cast<int64_t>(sizeof(V) / sizeof(float)) * kNv;
  const int64_t panels = (g.n + kNr - 1) / kNr;
  for (int64_t p = 0; p < panels; ++p) {
    const float* bp = g.b + p * g.kc * kNr;
    const int64_t cols = std::min<int64_t>(kNr, g.n - p * kNr);
    for (int64_t i = 0, s = 0; i < g.m; i += kMr, ++s) {
      MicroTile<V, kMr, kNv>(g.kc, g.a + s * g.a_strip, bp, g.c + i * g.ldc + p * kNr, g.ldc,
                             std::min<int64_t>(kMr, g.m - i), cols,
                             g.bias != nullptr ? g.bias + i : nullptr, g.accumulate);
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define OUTPOST_GEMM_X86 1

// 12 x 32 tile: 24 zmm accumulators, 2 for the B panel.
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))) void BlockAvx512(
    const GemmBlockArgs& g) {
  BlockImpl<V16, 12, 2>(g);
}
// 6 x 64 tile: 24 zmm accumulators, 4 for the B panel; fewer broadcasts per FMA.
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))) void BlockAvx512Wide(
    const GemmBlockArgs& g) {
  BlockImpl<V16, 6, 4>(g);
}
// 6 x 16 tile: 12 ymm accumulators, 2 for the B panel, 1 broadcast.
__attribute__((target("avx2,fma"))) void BlockAvx2(const GemmBlockArgs& g) {
  BlockImpl<V8, 6, 2>(g);
}
#endif
// 4 x 8 tile in 128-bit vectors (SSE2, NEON): 8 accumulators.
void BlockPortable(const GemmBlockArgs& g) { BlockImpl<V4, 4, 2>(g); }

#if defined(OUTPOST_GEMM_X86)
// 6 x 64 measured faster than 12 x 32 on resnet18's and mobilenet_v2's layers
// (onnx_conv_bench); both stay available for the tests and the benchmark.
const GemmArch kAvx512{"avx512", Isa::kAvx512, 6, 64, &BlockAvx512Wide};
const GemmArch kAvx512Tall{"avx512-12x32", Isa::kAvx512, 12, 32, &BlockAvx512};
const GemmArch kAvx2{"avx2", Isa::kAvx2, 6, 16, &BlockAvx2};
#endif
const GemmArch kPortable{"portable", Isa::kPortable, 4, 8, &BlockPortable};

}  // namespace

std::vector<const GemmArch*> AvailableGemmArchs() {
  std::vector<const GemmArch*> archs;
#if defined(OUTPOST_GEMM_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) {
    archs.push_back(&kAvx512);
    archs.push_back(&kAvx512Tall);
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) archs.push_back(&kAvx2);
#endif
  archs.push_back(&kPortable);
  return archs;
}

const GemmArch& BestGemmArch() {
  static const GemmArch* const best = AvailableGemmArchs().front();
  return *best;
}

size_t PackedASize(const GemmArch& arch, int64_t m, int64_t k) {
  return static_cast<size_t>((m + arch.mr - 1) / arch.mr * arch.mr) * static_cast<size_t>(k);
}

void PackA(const GemmArch& arch, const float* a, int64_t lda, int64_t m, int64_t k,
           const float* row_scale, float* packed) {
  const int64_t mr = arch.mr;
  const int64_t strips = (m + mr - 1) / mr;
  for (int64_t s = 0; s < strips; ++s) {
    float* dst = packed + s * mr * k;
    for (int64_t kk = 0; kk < k; ++kk) {
      for (int64_t r = 0; r < mr; ++r) {
        const int64_t row = s * mr + r;
        dst[kk * mr + r] =
            row < m ? a[row * lda + kk] * (row_scale != nullptr ? row_scale[row] : 1.0f) : 0.0f;
      }
    }
  }
}

}  // namespace outpost::engine::onnx
