#include "engine/onnx/qgemm.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define OUTPOST_QGEMM_X86 1
#endif

namespace outpost::engine::onnx {
namespace {

// B is packed into panels of 16 columns; within a panel, for each group of 4 rows (k), each
// column's 4 bytes are adjacent: one 512-bit register per group holds 16 columns x 4 rows,
// vpdpbusd's layout. A is packed into rows of K rounded up to 4 (zero padded).
constexpr int64_t kCols = 16;

int64_t K4(int64_t k) { return (k + 3) / 4 * 4; }

void PackBImpl(int64_t n, int64_t k, const int8_t* b, int8_t* packed) {
  const int64_t k4 = K4(k), panels = (n + kCols - 1) / kCols;
  std::memset(packed, 0, static_cast<size_t>(panels * k4 * kCols));
  for (int64_t row = 0; row < k; ++row) {
    const int64_t g = row / 4 * 4, r = row % 4;
    for (int64_t col = 0; col < n; ++col) {
      packed[(col / kCols) * k4 * kCols + g * kCols + (col % kCols) * 4 + r] = b[row * n + col];
    }
  }
}

void PackA(int64_t m, int64_t k, const uint8_t* a, uint8_t* packed) {
  const int64_t k4 = K4(k);
  for (int64_t i = 0; i < m; ++i) {
    std::memcpy(packed + i * k4, a + i * k, static_cast<size_t>(k));
    std::memset(packed + i * k4 + k, 0, static_cast<size_t>(k4 - k));
  }
}

// Portable: the same packed operands, one lane at a time.
void KernelPortable(int64_t m, int64_t n, int64_t k4, const uint8_t* a, const int8_t* b, int32_t* c,
                    int64_t ldc) {
  const int64_t panels = (n + kCols - 1) / kCols;
  for (int64_t p = 0; p < panels; ++p) {
    const int8_t* bp = b + p * k4 * kCols;
    const int64_t cols = std::min(kCols, n - p * kCols);
    for (int64_t i = 0; i < m; ++i) {
      int32_t acc[kCols] = {};
      for (int64_t g = 0; g < k4; g += 4) {
        for (int64_t j = 0; j < kCols; ++j) {
          for (int64_t r = 0; r < 4; ++r) {
            acc[j] += static_cast<int32_t>(a[i * k4 + g + r]) * bp[g * kCols + j * 4 + r];
          }
        }
      }
      for (int64_t j = 0; j < cols; ++j) c[i * ldc + p * kCols + j] = acc[j];
    }
  }
}

#if defined(OUTPOST_QGEMM_X86)
// kRows rows x kPanels panels (16 columns each) of C in kRows * kPanels accumulators; each
// vpdpbusd adds 4 products per lane.
template <int kRows, int kPanels>
__attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline)) inline void TileVnni(
    int64_t k4, const uint8_t* a, const int8_t* b, int32_t* c, int64_t ldc, int64_t n0, int64_t n) {
  __m512i acc[kRows][kPanels];
  for (int r = 0; r < kRows; ++r) {
    for (int q = 0; q < kPanels; ++q) acc[r][q] = _mm512_setzero_si512();
  }
  for (int64_t g = 0; g < k4; g += 4) {
    __m512i bv[kPanels];
    for (int q = 0; q < kPanels; ++q) bv[q] = _mm512_loadu_si512(b + q * k4 * kCols + g * kCols);
    for (int r = 0; r < kRows; ++r) {
      int32_t w;
      std::memcpy(&w, a + r * k4 + g, 4);
      const __m512i av = _mm512_set1_epi32(w);
      for (int q = 0; q < kPanels; ++q) acc[r][q] = _mm512_dpbusd_epi32(acc[r][q], av, bv[q]);
    }
  }
  for (int q = 0; q < kPanels; ++q) {
    const int64_t col = n0 + q * kCols;
    if (col >= n) break;
    const int64_t cols = std::min(kCols, n - col);
    const __mmask16 mask = static_cast<__mmask16>((1u << cols) - 1);
    for (int r = 0; r < kRows; ++r) _mm512_mask_storeu_epi32(c + r * ldc + col, mask, acc[r][q]);
  }
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void KernelVnni(int64_t m, int64_t n,
                                                                       int64_t k4, const uint8_t* a,
                                                                       const int8_t* b, int32_t* c,
                                                                       int64_t ldc) {
  const int64_t panels = (n + kCols - 1) / kCols;
  // Four panels at a time (16 accumulators); panels past n are zero-padded in B.
  for (int64_t p = 0; p < panels; p += 4) {
    const int8_t* bp = b + p * k4 * kCols;
    const int64_t left = panels - p;
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
      if (left >= 4) {
        TileVnni<4, 4>(k4, a + i * k4, bp, c + i * ldc, ldc, p * kCols, n);
      } else {
        for (int64_t q = 0; q < left; ++q) {
          TileVnni<4, 1>(k4, a + i * k4, bp + q * k4 * kCols, c + i * ldc, ldc, (p + q) * kCols, n);
        }
      }
    }
    for (; i < m; ++i) {
      for (int64_t q = 0; q < std::min<int64_t>(4, left); ++q) {
        TileVnni<1, 1>(k4, a + i * k4, bp + q * k4 * kCols, c + i * ldc, ldc, (p + q) * kCols, n);
      }
    }
  }
}
#endif

}  // namespace

bool QGemmHasVnni() {
#if defined(OUTPOST_QGEMM_X86)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
  }();
  return has;
#else
  return false;
#endif
}

size_t QGemmScratchBytes(int64_t m, int64_t n, int64_t k) {
  const int64_t panels = (n + kCols - 1) / kCols;
  return static_cast<size_t>(panels * K4(k) * kCols + (m * K4(k) + 63) / 64 * 64) + 64;
}

size_t QGemmPackedBBytes(int64_t n, int64_t k) {
  return static_cast<size_t>((n + kCols - 1) / kCols * K4(k) * kCols);
}

void QGemmPackB(int64_t n, int64_t k, const int8_t* b, int8_t* packed) {
  PackBImpl(n, k, b, packed);
}

void QGemmU8S8Packed(int64_t m, int64_t n, int64_t k, const uint8_t* a, const int8_t* packed_b,
                     int32_t* c, int64_t ldc, void* scratch, bool vnni) {
  const int64_t k4 = K4(k), panels = (n + kCols - 1) / kCols;
  auto* ap = static_cast<uint8_t*>(scratch) + (panels * k4 * kCols + 63) / 64 * 64;
  PackA(m, k, a, ap);
#if defined(OUTPOST_QGEMM_X86)
  if (vnni && QGemmHasVnni()) {
    KernelVnni(m, n, k4, ap, packed_b, c, ldc);
    return;
  }
#endif
  (void)vnni;
  KernelPortable(m, n, k4, ap, packed_b, c, ldc);
}

void QGemmU8S8(int64_t m, int64_t n, int64_t k, const uint8_t* a, const int8_t* b, int32_t* c,
               int64_t ldc, void* scratch, bool vnni) {
  auto* bp = static_cast<int8_t*>(scratch);
  PackBImpl(n, k, b, bp);
  QGemmU8S8Packed(m, n, k, a, bp, c, ldc, scratch, vnni);
}

namespace {

// One quantised value as a float in [lo, hi]: the quotient clamped well inside 2^22, where
// adding and subtracting 1.5 * 2^23 rounds to an integer half to even (the default rounding
// mode), then offset and saturated. Branch-free, so that the loops vectorise.
inline float QuantizeOne(float x, float scale, float zp, float lo, float hi) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  float v = x / scale;
  const bool nan = v != v;
  v = std::min(std::max(v, -4.0e6f), 4.0e6f);
  const float r = std::min(std::max(((v + kRound) - kRound) + zp, lo), hi);
  return nan ? 0.0f : r;
}

template <typename T>
void QuantizeRowT(const float* x, int64_t n, float scale, float zp, T* y) {
  constexpr float lo = std::is_signed_v<T> ? -128.0f : 0.0f, hi = std::is_signed_v<T> ? 127.0f : 255.0f;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = static_cast<T>(static_cast<int32_t>(QuantizeOne(x[i], scale, zp, lo, hi)));
  }
}

template <typename T>
void DequantizeRowT(const T* x, int64_t n, float scale, int32_t zp, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int32_t>(x[i]) - zp) * scale;
}

}  // namespace

void QuantizeRow(const float* x, int64_t n, float scale, int32_t zero_point, bool to_signed,
                 void* y) {
  const float zp = static_cast<float>(zero_point);
  if (to_signed) {
    QuantizeRowT(x, n, scale, zp, static_cast<int8_t*>(y));
  } else {
    QuantizeRowT(x, n, scale, zp, static_cast<uint8_t*>(y));
  }
}

void DequantizeRow(const void* x, int64_t n, float scale, int32_t zero_point, bool from_signed,
                   float* y) {
  if (from_signed) {
    DequantizeRowT(static_cast<const int8_t*>(x), n, scale, zero_point, y);
  } else {
    DequantizeRowT(static_cast<const uint8_t*>(x), n, scale, zero_point, y);
  }
}

}  // namespace outpost::engine::onnx
