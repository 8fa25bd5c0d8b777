#include "engine/onnx/qgemm.h"

#include <algorithm>
#include <cmath>
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
  constexpr float lo = std::is_signed_v<T> ? -128.0f : 0.0f,
                  hi = std::is_signed_v<T> ? 127.0f : 255.0f;
  int64_t i = 0;
#ifdef OUTPOST_QGEMM_X86
  // Eight at a time in SSE2, as QuantizeOne: NaN lanes masked to 0 at the end.
  const __m128 s = _mm_set1_ps(scale), z = _mm_set1_ps(zp), round = _mm_set1_ps(12582912.0f);
  const __m128 vlo = _mm_set1_ps(-4.0e6f), vhi = _mm_set1_ps(4.0e6f);
  const __m128 qlo = _mm_set1_ps(lo), qhi = _mm_set1_ps(hi);
  auto four = [&](const float* p) {
    const __m128 v = _mm_div_ps(_mm_loadu_ps(p), s);
    const __m128 nan = _mm_cmpunord_ps(v, v);
    __m128 r = _mm_min_ps(_mm_max_ps(v, vlo), vhi);
    r = _mm_add_ps(_mm_sub_ps(_mm_add_ps(r, round), round), z);
    r = _mm_andnot_ps(nan, _mm_min_ps(_mm_max_ps(r, qlo), qhi));
    return _mm_cvttps_epi32(r);
  };
  for (; i + 8 <= n; i += 8) {
    const __m128i words = _mm_packs_epi32(four(x + i), four(x + i + 4));
    const __m128i bytes =
        std::is_signed_v<T> ? _mm_packs_epi16(words, words) : _mm_packus_epi16(words, words);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), bytes);
  }
#endif
  for (; i < n; ++i) {
    y[i] = static_cast<T>(static_cast<int32_t>(QuantizeOne(x[i], scale, zp, lo, hi)));
  }
}

template <typename T>
void DequantizeRowT(const T* x, int64_t n, float scale, int32_t zp, float* y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<float>(static_cast<int32_t>(x[i]) - zp) * scale;
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

namespace {

// cols[pos][(ky, kx, ch)] for one image and group from x in channels-last order (xt[iy][ix][ch]):
// per kernel row one copy of the window's run inside the image, the zero point xz where the
// window leaves it; and each row's sum.
void Im2ColImpl(const uint8_t* xt, const QIm2ColShape& shape, uint8_t xz, uint8_t* cols,
                int64_t* rowsum) {
  const QIm2ColShape s = shape;  // a copy: stores through cols may alias the caller's
  const int64_t c = s.c, h = s.h, wd = s.w, kh = s.kh, kw = s.kw;
  const int64_t kk = c * kh * kw;
  for (int64_t oy = 0; oy < s.oh; ++oy) {
    const int64_t iy0 = oy * s.sh - s.pt;
    for (int64_t ox = 0; ox < s.ow; ++ox) {
      const int64_t ix0 = ox * s.sw - s.pl;
      uint8_t* row = cols + (oy * s.ow + ox) * kk;
      const bool cols_inside = ix0 >= 0 && ix0 + (kw - 1) * s.dw < wd;
      for (int64_t ky = 0; ky < kh; ++ky) {
        const int64_t iy = iy0 + ky * s.dh;
        uint8_t* out = row + ky * kw * c;
        if (iy < 0 || iy >= h) {
          std::memset(out, xz, static_cast<size_t>(kw * c));
        } else if (cols_inside && s.dw == 1) {
          std::memcpy(out, xt + (iy * wd + ix0) * c, static_cast<size_t>(kw * c));
        } else {
          for (int64_t kx = 0; kx < kw; ++kx) {
            const int64_t ix = ix0 + kx * s.dw;
            if (ix < 0 || ix >= wd) {
              std::memset(out + kx * c, xz, static_cast<size_t>(c));
            } else {
              std::memcpy(out + kx * c, xt + (iy * wd + ix) * c, static_cast<size_t>(c));
            }
          }
        }
      }
      uint32_t sum = 0;
      for (int64_t i = 0; i < kk; ++i) sum += row[i];
      rowsum[oy * s.ow + ox] = sum;
    }
  }
}

#ifdef OUTPOST_QGEMM_X86
// RequantizeImpl's arithmetic for len (a multiple of 8) channels of one position, eight at a
// time in AVX-512 (the same operations; wz * rs is an exact integer, fused or not).
__attribute__((target("avx512f"))) void RequantizeAvx512(const int32_t* r,
                                                         const QRequantizeParams& q, double rs,
                                                         double lo, double hi, int64_t len,
                                                         int32_t* out) {
  const __m512d rsv = _mm512_set1_pd(rs), round = _mm512_set1_pd(6755399441055744.0);
  const __m512d yzp = _mm512_set1_pd(q.yzp);
  const __m512d vlo = _mm512_set1_pd(-1.0e15), vhi = _mm512_set1_pd(1.0e15);
  const __m512d qlo = _mm512_set1_pd(lo), qhi = _mm512_set1_pd(hi);
  // Zero-masked forms with every lane set: the unmasked ones start from an undefined register,
  // which GCC 12 reports as uninitialised.
  constexpr __mmask8 kAll = 0xff;
  for (int64_t i = 0; i < len; i += 8) {
    const __m256i r8 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + i));
    const __m512d raw = _mm512_maskz_cvtepi32_pd(kAll, r8);
    const __m512d acc = _mm512_sub_pd(_mm512_add_pd(_mm512_loadu_pd(q.base + i), raw),
                                      _mm512_mul_pd(_mm512_loadu_pd(q.wz + i), rsv));
    __m512d v = _mm512_mul_pd(acc, _mm512_loadu_pd(q.scale + i));
    v = _mm512_maskz_min_pd(kAll, _mm512_maskz_max_pd(kAll, v, vlo), vhi);
    v = _mm512_add_pd(_mm512_sub_pd(_mm512_add_pd(v, round), round), yzp);
    v = _mm512_maskz_min_pd(kAll, _mm512_maskz_max_pd(kAll, v, qlo), qhi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_maskz_cvttpd_epi32(kAll, v));
  }
}

bool HasAvx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
  }();
  return has;
}
#endif

// All mg output channels' p values from the GEMM's rows (raw[pos][oc]): per position the
// channels in chunks, the arithmetic over contiguous channels (two at a time in SSE2 on x86;
// every value up to the product is an exact integer in double, and finite scales
// (QRequantize checks) keep the product from NaN), then stored channel-major.
template <typename T>
void RequantizeImpl(const int32_t* raw, int64_t mg, int64_t p, const int64_t* rowsum,
                    const QRequantizeParams& q, T* y) {
  constexpr double kRound = 6755399441055744.0;  // 1.5 * 2^52
  constexpr double lo = std::is_signed_v<T> ? -128.0 : 0.0,
                   hi = std::is_signed_v<T> ? 127.0 : 255.0;
  constexpr int64_t kChunk = 64;
  alignas(64) int32_t out[kChunk];
#ifdef OUTPOST_QGEMM_X86
  const bool avx512 = HasAvx512();
#endif
  for (int64_t pos = 0; pos < p; ++pos) {
    const int32_t* r = raw + pos * mg;
    const double rs = static_cast<double>(rowsum[pos]);
    for (int64_t o0 = 0; o0 < mg; o0 += kChunk) {
      const int64_t len = std::min(kChunk, mg - o0);
      int64_t i = 0;
#ifdef OUTPOST_QGEMM_X86
      if (avx512 && len >= 8) {
        const QRequantizeParams at{q.base + o0, q.wz + o0, q.scale + o0, q.yzp};
        i = len / 8 * 8;
        RequantizeAvx512(r + o0, at, rs, lo, hi, i, out);
      }
      const __m128d rsv = _mm_set1_pd(rs), round = _mm_set1_pd(kRound), yzp = _mm_set1_pd(q.yzp);
      const __m128d vlo = _mm_set1_pd(-1.0e15), vhi = _mm_set1_pd(1.0e15);
      const __m128d qlo = _mm_set1_pd(lo), qhi = _mm_set1_pd(hi);
      for (; i + 2 <= len; i += 2) {
        const int64_t oc = o0 + i;
        const __m128d raw2 =
            _mm_cvtepi32_pd(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(r + oc)));
        const __m128d acc = _mm_sub_pd(_mm_add_pd(_mm_loadu_pd(q.base + oc), raw2),
                                       _mm_mul_pd(_mm_loadu_pd(q.wz + oc), rsv));
        __m128d v = _mm_mul_pd(acc, _mm_loadu_pd(q.scale + oc));
        v = _mm_min_pd(_mm_max_pd(v, vlo), vhi);
        v = _mm_add_pd(_mm_sub_pd(_mm_add_pd(v, round), round), yzp);
        v = _mm_min_pd(_mm_max_pd(v, qlo), qhi);
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm_cvttpd_epi32(v));
      }
#endif
      for (; i < len; ++i) {
        const int64_t oc = o0 + i;
        double v = (q.base[oc] + static_cast<double>(r[oc]) - q.wz[oc] * rs) * q.scale[oc];
        v = std::min(std::max(v, -1.0e15), 1.0e15);
        const double rounded = std::min(std::max(((v + kRound) - kRound) + q.yzp, lo), hi);
        out[i] = static_cast<int32_t>(rounded);
      }
      for (int64_t j = 0; j < len; ++j) y[(o0 + j) * p + pos] = static_cast<T>(out[j]);
    }
  }
}

bool FiniteScales(const QRequantizeParams& q, int64_t mg) {
  for (int64_t oc = 0; oc < mg; ++oc) {
    if (!std::isfinite(q.scale[oc])) return false;
  }
  return std::isfinite(q.yzp);
}

// A scale of infinity or NaN (a y_scale of 0, say): value by value, NaN giving 0.
template <typename T>
void RequantizeNonFinite(const int32_t* raw, int64_t mg, int64_t p, const int64_t* rowsum,
                         const QRequantizeParams& q, T* y) {
  const double lo = std::is_signed_v<T> ? -128.0 : 0.0, hi = std::is_signed_v<T> ? 127.0 : 255.0;
  for (int64_t pos = 0; pos < p; ++pos) {
    for (int64_t oc = 0; oc < mg; ++oc) {
      const double acc =
          q.base[oc] + raw[pos * mg + oc] - q.wz[oc] * static_cast<double>(rowsum[pos]);
      const double r = std::nearbyint(acc * q.scale[oc]) + q.yzp;
      y[oc * p + pos] = static_cast<T>(r != r ? 0 : static_cast<int32_t>(std::clamp(r, lo, hi)));
    }
  }
}

}  // namespace

void QIm2Col(const uint8_t* x, const QIm2ColShape& s, uint8_t xz, bool flip, uint8_t* xt,
             uint8_t* cols, int64_t* rowsum) {
  const uint8_t bias = flip ? 0x80 : 0;
  // Locals, not s's fields: a byte store may alias them, so the loop would reload them.
  const int64_t plane = s.h * s.w, c = s.c;
  for (int64_t ch = 0; ch < c; ++ch) {
    const uint8_t* src = x + ch * plane;
    uint8_t* dst = xt + ch;
    for (int64_t i = 0; i < plane; ++i) dst[i * c] = static_cast<uint8_t>(src[i] ^ bias);
  }
  Im2ColImpl(xt, s, xz, cols, rowsum);
}

void QRequantize(const int32_t* raw, int64_t mg, int64_t p, const int64_t* rowsum,
                 const QRequantizeParams& q, int8_t* y) {
  if (!FiniteScales(q, mg)) return RequantizeNonFinite(raw, mg, p, rowsum, q, y);
  RequantizeImpl(raw, mg, p, rowsum, q, y);
}

void QRequantize(const int32_t* raw, int64_t mg, int64_t p, const int64_t* rowsum,
                 const QRequantizeParams& q, uint8_t* y) {
  if (!FiniteScales(q, mg)) return RequantizeNonFinite(raw, mg, p, rowsum, q, y);
  RequantizeImpl(raw, mg, p, rowsum, q, y);
}

}  // namespace outpost::engine::onnx
