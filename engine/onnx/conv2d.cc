#include "engine/onnx/conv2d.h"

#include "engine/onnx/thread_pool.h"

#include <algorithm>
#include <cstring>
#include <limits>

// The vector type below is internal to this file and only passed between force-inlined
// helpers, so the ABI note about passing wide vectors without AVX does not apply.
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace outpost::engine::onnx {
namespace {

typedef float V16 __attribute__((vector_size(64)));

// Columns (output positions) per packed block, and K rows per block: one B panel of
// kKc x nr floats stays in L1 while every strip of the weights passes over it.
constexpr int64_t kBlockColumns = 128;
constexpr int64_t kKcMax = 256;

// K rows per block: a B panel of at most 32 KB.
int64_t KcOf(int64_t nr) { return std::min<int64_t>(kKcMax, 8192 / nr); }

int64_t BlockColumns(int64_t nr) { return std::max<int64_t>(nr, kBlockColumns / nr * nr); }

// dst[t] = src[ix0 + t * sw] for t < len, zero where the index falls outside [0, w).
__attribute__((always_inline)) inline void CopyRow(float* dst, const float* src, int64_t ix0,
                                                   int64_t sw, int64_t len, int64_t w,
                                                   float fill = 0.0f) {
  int64_t lo = ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw;
  int64_t hi = ix0 >= w ? 0 : (w - 1 - ix0) / sw + 1;
  lo = std::min(lo, len);
  hi = std::clamp(hi, lo, len);
  for (int64_t t = 0; t < lo; ++t) dst[t] = fill;
  if (sw == 1) {
    std::memcpy(dst + lo, src + ix0 + lo, static_cast<size_t>(hi - lo) * sizeof(float));
  } else if (sw == 2) {
    const float* s2 = src + ix0;  // a constant stride, so the loop vectorises
    for (int64_t t = lo; t < hi; ++t) dst[t] = s2[2 * t];
  } else {
    for (int64_t t = lo; t < hi; ++t) dst[t] = src[ix0 + t * sw];
  }
  for (int64_t t = hi; t < len; ++t) dst[t] = fill;
}

// Pointwise convolutions with stride 1 and no padding read their input as one row of
// H * W positions.
Conv2dGeom Flattened(const Conv2dGeom& g) {
  if (g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.oh == g.h &&
      g.ow == g.w) {
    Conv2dGeom f = g;
    f.w = f.ow = g.h * g.w;
    f.h = f.oh = 1;
    return f;
  }
  return g;
}

// Depthwise convolutions run on the polyphase form of the padded input plane: for stride s,
// s x s phase planes P[a][b][r][c] = padded[r * s + a][c * s + b], each `pw` wide. Every tap
// (ky, kx) then reads one phase plane at a fixed offset from the output position, so with the
// output computed `pw` wide (the extra columns dropped afterwards) the whole plane is one
// contiguous loop, whatever the plane's width.
struct Polyphase {
  int64_t pw = 0;     // phase plane width (and wide output row length)
  int64_t ph = 0;     // phase plane height
  int64_t plane = 0;  // floats per phase plane, with slack for the last row's overreach
};

Polyphase PolyphaseOf(const Conv2dGeom& g) {
  Polyphase p;
  const int64_t width = std::max(g.pl + g.w, (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1);
  const int64_t height = std::max(g.pt + g.h, (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1);
  p.pw = (width + g.sw - 1) / g.sw;
  p.ph = (height + g.sh - 1) / g.sh + 1;
  p.plane = (p.ph * p.pw + p.pw + 80 + 15) / 16 * 16;
  return p;
}

// Fills the sh * sw phase planes from plane `in`. The columns each phase takes from the
// input are the same for every row, so they are worked out once.
__attribute__((always_inline)) inline void FillPhases(const Conv2dGeom& g, const Polyphase& p,
                                                      const float* in, float* phases,
                                                      float fill = 0.0f) {
  // Phase b's column c reads input column c * sw + b - pl; inside for c in [lo[b], hi[b]).
  int64_t lo[16], hi[16];
  for (int64_t b = 0; b < g.sw; ++b) {
    const int64_t ix0 = b - g.pl;
    lo[b] = std::min(p.pw, ix0 >= 0 ? 0 : (-ix0 + g.sw - 1) / g.sw);
    hi[b] = std::clamp(ix0 >= g.w ? 0 : (g.w - 1 - ix0) / g.sw + 1, lo[b], p.pw);
  }
  for (int64_t r = 0; r < p.ph * g.sh; ++r) {
    const int64_t iy = r - g.pt;
    const float* src = iy >= 0 && iy < g.h ? in + iy * g.w : nullptr;
    for (int64_t b = 0; b < g.sw; ++b) {
      float* dst = phases + ((r % g.sh) * g.sw + b) * p.plane + (r / g.sh) * p.pw;
      if (src == nullptr) {
        std::fill_n(dst, p.pw, fill);
        continue;
      }
      const float* s = src + b - g.pl;
      for (int64_t c = 0; c < lo[b]; ++c) dst[c] = fill;
      if (g.sw == 1) {
        std::memcpy(dst + lo[b], s + lo[b], static_cast<size_t>(hi[b] - lo[b]) * sizeof(float));
      } else if (g.sw == 2) {
        for (int64_t c = lo[b]; c < hi[b]; ++c) dst[c] = s[2 * c];
      } else {
        for (int64_t c = lo[b]; c < hi[b]; ++c) dst[c] = s[c * g.sw];
      }
      for (int64_t c = hi[b]; c < p.pw; ++c) dst[c] = fill;
    }
  }
  // The slack past the last row is read by dropped columns only; keep it finite.
  for (int64_t ph = 0; ph < g.sh * g.sw; ++ph) {
    std::fill_n(phases + ph * p.plane + p.ph * p.pw, p.plane - p.ph * p.pw, fill);
  }
}

// One output plane, `pw` wide, from the phase planes: kT taps unrolled (0: any number, one
// pass per tap).
template <int kT>
__attribute__((always_inline)) inline void DepthwiseWide(int64_t taps, const float* const* src,
                                                         const float* wk, float bias, int64_t n,
                                                         float* wide) {
  if constexpr (kT > 0) {
    // 16 outputs at a time, every tap's weight in a register.
    V16 w[kT];
    const float* sp[kT];
#pragma GCC unroll 25
    for (int t = 0; t < kT; ++t) {
      w[t] = V16{} + wk[t];
      sp[t] = src[t];
    }
    int64_t i = 0;
    // Four independent sums per step: one sum's taps form a chain of dependent FMAs.
    for (; i + 64 <= n; i += 64) {
      V16 s[4];
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) s[u] = V16{} + bias;
#pragma GCC unroll 25
      for (int t = 0; t < kT; ++t) {
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) {
          V16 x;
          std::memcpy(&x, sp[t] + i + 16 * u, sizeof(x));
          s[u] += w[t] * x;
        }
      }
      std::memcpy(wide + i, s, sizeof(s));
    }
    for (; i + 16 <= n; i += 16) {
      V16 s = V16{} + bias;
#pragma GCC unroll 25
      for (int t = 0; t < kT; ++t) {
        V16 x;
        std::memcpy(&x, sp[t] + i, sizeof(x));
        s += w[t] * x;
      }
      std::memcpy(wide + i, &s, sizeof(s));
    }
    if (i < n) {
      // The last vector reads into the phase planes' slack and writes into the wide
      // buffer's (DepthwisePlane gives both room for it).
      V16 s = V16{} + bias;
#pragma GCC unroll 25
      for (int t = 0; t < kT; ++t) {
        V16 x;
        std::memcpy(&x, sp[t] + i, sizeof(x));
        s += w[t] * x;
      }
      std::memcpy(wide + i, &s, sizeof(s));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) wide[i] = bias;
    for (int64_t t = 0; t < taps; ++t) {
      const float wv = wk[t];
      const float* sp = src[t];
      for (int64_t i = 0; i < n; ++i) wide[i] += wv * sp[i];
    }
  }
}

template <int kT>
__attribute__((always_inline)) inline void DepthwisePlane(const Conv2dGeom& g, const float* in,
                                                          const float* wk, float bias,
                                                          float* scratch, float* out) {
  const Polyphase p = PolyphaseOf(g);
  FillPhases(g, p, in, scratch);
  const int64_t taps = g.kh * g.kw;
  const float* src[64];
  for (int64_t ky = 0; ky < g.kh; ++ky) {
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const int64_t y = ky * g.dh, x = kx * g.dw;
      src[ky * g.kw + kx] =
          scratch + ((y % g.sh) * g.sw + x % g.sw) * p.plane + (y / g.sh) * p.pw + x / g.sw;
    }
  }
  const bool direct = p.pw == g.ow && (kT == 0 || g.oh * p.pw % 16 == 0);
  float* wide = direct ? out : scratch + g.sh * g.sw * p.plane;
  DepthwiseWide<kT>(taps, src, wk, bias, g.oh * p.pw, wide);
  if (!direct) {
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      std::memcpy(out + oy * g.ow, wide + oy * p.pw, static_cast<size_t>(g.ow) * sizeof(float));
    }
  }
}

// Max pooling of one plane on the polyphase form (padding reads -inf; a NaN in a window
// gives NaN). A macro rather than an inlined helper: GCC lowers a vector comparison for the
// target of the function it is written in, before inlining, so the comparison must be
// written inside each target's function.
#define OUTPOST_MAXPOOL(name, attr)                                                              \
  attr void name(const Conv2dGeom& g, const float* in, float* scratch, float* out) {             \
    const Polyphase p = PolyphaseOf(g);                                                          \
    const float lowest = -std::numeric_limits<float>::infinity();                                \
    FillPhases(g, p, in, scratch, lowest);                                                       \
    const int64_t taps = g.kh * g.kw;                                                            \
    const float* src[64];                                                                        \
    for (int64_t ky = 0; ky < g.kh; ++ky) {                                                      \
      for (int64_t kx = 0; kx < g.kw; ++kx) {                                                    \
        const int64_t y = ky * g.dh, x = kx * g.dw;                                              \
        src[ky * g.kw + kx] =                                                                    \
            scratch + ((y % g.sh) * g.sw + x % g.sw) * p.plane + (y / g.sh) * p.pw + x / g.sw;   \
      }                                                                                          \
    }                                                                                            \
    float* wide = scratch + g.sh * g.sw * p.plane;                                               \
    const int64_t n = g.oh * p.pw;                                                               \
    /* Four independent maxima per step (n is rounded up into the buffers' slack). */            \
    for (int64_t i = 0; i < n; i += 64) {                                                        \
      V16 m[4];                                                                                  \
      for (int u = 0; u < 4; ++u) m[u] = V16{} + lowest;                                         \
      for (int64_t t = 0; t < taps; ++t) {                                                       \
        for (int u = 0; u < 4; ++u) {                                                            \
          V16 x;                                                                                 \
          std::memcpy(&x, src[t] + i + 16 * u, sizeof(x));                                       \
          m[u] = ((x > m[u]) | (x != x)) ? x : m[u];                                             \
        }                                                                                        \
      }                                                                                          \
      std::memcpy(wide + i, m, sizeof(m));                                                       \
    }                                                                                            \
    for (int64_t oy = 0; oy < g.oh; ++oy) {                                                      \
      std::memcpy(out + oy * g.ow, wide + oy * p.pw, static_cast<size_t>(g.ow) * sizeof(float)); \
    }                                                                                            \
  }
#if defined(__x86_64__) && defined(__GNUC__)
OUTPOST_MAXPOOL(MaxPoolAvx512,
                __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))))
OUTPOST_MAXPOOL(MaxPoolAvx2, __attribute__((target("avx2,fma"))))
#endif
OUTPOST_MAXPOOL(MaxPoolPortable, )
#undef OUTPOST_MAXPOOL

using DepthwiseFn = void (*)(const Conv2dGeom&, const float*, const float*, float, float*, float*);

// Each loop compiled for AVX-512, AVX2 + FMA and the baseline, chosen with the GEMM's
// micro-kernel.
#define OUTPOST_DEPTHWISE(name, attr)                                               \
  template <int kT>                                                                 \
  attr void name(const Conv2dGeom& g, const float* in, const float* wk, float bias, \
                 float* scratch, float* out) {                                      \
    DepthwisePlane<kT>(g, in, wk, bias, scratch, out);                              \
  }
#if defined(__x86_64__) && defined(__GNUC__)
OUTPOST_DEPTHWISE(DepthwiseAvx512,
                  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))))
OUTPOST_DEPTHWISE(DepthwiseAvx2, __attribute__((target("avx2,fma"))))
#endif
OUTPOST_DEPTHWISE(DepthwisePortable, )
#undef OUTPOST_DEPTHWISE

DepthwiseFn PickDepthwise(const GemmArch& arch, const Conv2dGeom& g) {
  const int64_t taps = g.kh * g.kw;
#if defined(__x86_64__) && defined(__GNUC__)
  if (arch.isa == Isa::kAvx512) {
    return taps == 9    ? &DepthwiseAvx512<9>
           : taps == 25 ? &DepthwiseAvx512<25>
                        : &DepthwiseAvx512<0>;
  }
  if (arch.isa == Isa::kAvx2) {
    return taps == 9 ? &DepthwiseAvx2<9> : taps == 25 ? &DepthwiseAvx2<25> : &DepthwiseAvx2<0>;
  }
#endif
  (void)arch;
  return taps == 9    ? &DepthwisePortable<9>
         : taps == 25 ? &DepthwisePortable<25>
                      : &DepthwisePortable<0>;
}

}  // namespace

size_t MaxPool2dScratchFloats(const Conv2dGeom& g) {
  if (g.kh * g.kw > 64 || g.sw > 16) return 0;
  const Polyphase p = PolyphaseOf(g);
  return static_cast<size_t>(g.sh * g.sw * p.plane + g.oh * p.pw) + 80;
}

void MaxPool2d(const Conv2dGeom& g, int64_t planes, const float* x, float* scratch, float* y) {
  auto fn = &MaxPoolPortable;
#if defined(__x86_64__) && defined(__GNUC__)
  const GemmArch& arch = BestGemmArch();
  if (arch.isa == Isa::kAvx512) fn = &MaxPoolAvx512;
  if (arch.isa == Isa::kAvx2) fn = &MaxPoolAvx2;
#endif
  for (int64_t pl = 0; pl < planes; ++pl) {
    fn(g, x + pl * g.h * g.w, scratch, y + pl * g.oh * g.ow);
  }
}

void PackConvPanels(const Conv2dGeom& g, const float* x, int64_t k0, int64_t kc, int64_t j0,
                    int64_t nb, int64_t nr, float* dst) {
  const int64_t ksz = g.kh * g.kw;
  const int64_t plane = g.h * g.w;
  const int64_t tail = nb % nr;
  const int64_t last_panel = nb / nr;
  for (int64_t kk = 0; kk < kc; ++kk) {
    const int64_t k = k0 + kk;
    const int64_t ch = k / ksz, r = k % ksz;
    const int64_t ky = r / g.kw, kx = r % g.kw;
    const float* src = x + ch * plane;
    int64_t oy = j0 / g.ow, ox = j0 % g.ow;
    int64_t pos = 0;
    while (pos < nb) {
      const int64_t iy = oy * g.sh - g.pt + ky * g.dh;
      const bool row_inside = iy >= 0 && iy < g.h;
      int64_t run = std::min(nb - pos, g.ow - ox);
      while (run > 0) {
        const int64_t lane = pos % nr;
        const int64_t len = std::min(run, nr - lane);
        float* d = dst + (pos / nr) * kc * nr + kk * nr + lane;
        if (row_inside) {
          CopyRow(d, src + iy * g.w, ox * g.sw - g.pl + kx * g.dw, g.sw, len, g.w);
        } else {
          std::memset(d, 0, static_cast<size_t>(len) * sizeof(float));
        }
        ox += len;
        pos += len;
        run -= len;
      }
      if (ox == g.ow) {
        ox = 0;
        ++oy;
      }
    }
    if (tail != 0) {
      float* d = dst + last_panel * kc * nr + kk * nr;
      std::memset(d + tail, 0, static_cast<size_t>(nr - tail) * sizeof(float));
    }
  }
}

Conv2dWeights::Conv2dWeights(const GemmArch& arch, const Conv2dGeom& g, const float* w,
                             const float* bias)
    : arch_(&arch), geom_(g) {
  const int64_t cg = g.c / g.group;
  const int64_t k = cg * g.kh * g.kw;
  // Depthwise: one input channel per group, a window of at most 64 taps.
  depthwise_ = cg == 1 && g.group == g.c && g.kh * g.kw <= 64;
  raw_.assign(w, w + g.m * k);
  has_bias_ = bias != nullptr;
  bias_.assign(static_cast<size_t>(g.m), 0.0f);
  if (bias != nullptr) bias_.assign(bias, bias + g.m);
  PackWeights();
}

void Conv2dWeights::PackWeights() {
  if (depthwise_) return;
  const Conv2dGeom& g = geom_;
  const int64_t mg = g.m / g.group;
  const int64_t k = (g.c / g.group) * g.kh * g.kw;
  const size_t per_group = PackedASize(*arch_, mg, k);
  packed_.assign(per_group * static_cast<size_t>(g.group), 0.0f);
  for (int64_t gi = 0; gi < g.group; ++gi) {
    PackA(*arch_, raw_.data() + gi * mg * k, k, mg, k, nullptr,
          packed_.data() + static_cast<size_t>(gi) * per_group);
  }
  // Pointwise convolutions also keep W^T in GemmPacked's panels, for planes of a few
  // positions (squeeze-and-excitation blocks run on 1 x 1): there vectors run along the
  // output channels instead of the positions.
  if (g.kh == 1 && g.kw == 1 && g.group == 1 && g.m * k <= (1 << 22)) {
    transposed_.resize(PackedSize(k, g.m));
    PackB(raw_.data(), k, true, k, g.m, transposed_.data());
  }
}

// Planes of at most kFewPositions positions take the transposed path.
constexpr int64_t kFewPositions = 8;

void Conv2dWeights::ScaleShift(const std::vector<float>& scale, const std::vector<float>& shift) {
  const Conv2dGeom& g = geom_;
  const int64_t k = (g.c / g.group) * g.kh * g.kw;
  for (int64_t oc = 0; oc < g.m; ++oc) {
    const float s = scale[static_cast<size_t>(oc)];
    for (int64_t i = 0; i < k; ++i) raw_[static_cast<size_t>(oc * k + i)] *= s;
    bias_[static_cast<size_t>(oc)] =
        bias_[static_cast<size_t>(oc)] * s + shift[static_cast<size_t>(oc)];
  }
  has_bias_ = true;
  PackWeights();
}

// Whether geometry g (not depthwise) packs straight from the input's rows: pointwise
// convolutions (with stride 1 and no padding, the plane is one row). Others run on the
// polyphase planes.
bool RunsFlat(const Conv2dGeom& g) { return g.kh == 1 && g.kw == 1; }

size_t Conv2dWeights::ScratchFloats(const Conv2dGeom& g, int threads) const {
  const int64_t t = std::max(threads, 1);
  if (depthwise_) {
    const Polyphase p = PolyphaseOf(g);
    return static_cast<size_t>(t * ((g.sh * g.sw * p.plane + g.oh * p.pw + 32 + 15) / 16 * 16));
  }
  const int64_t blocks = KcOf(arch_->nr) * BlockColumns(arch_->nr);
  if (RunsFlat(g)) return static_cast<size_t>(t * blocks + kFewPositions * g.m) + 16;
  const Polyphase p = PolyphaseOf(g);
  const int64_t mg = g.m / g.group, cg = g.c / g.group;
  return static_cast<size_t>(cg * g.sh * g.sw * p.plane +
                             t * (blocks + (mg + 16) * BlockColumns(arch_->nr))) +
         64;
}

void Conv2dWeights::Forward(const Conv2dGeom& geom, const float* x, const float* residual,
                            const ActParams& act, float* y, float* scratch,
                            IntraOpPool* pool) const {
  if (depthwise_) {
    const int64_t p = geom.oh * geom.ow;
    const DepthwiseFn fn = PickDepthwise(*arch_, geom);
    const int64_t mult = geom.m / geom.c;
    const int64_t ksz = geom.kh * geom.kw;
    const bool epilogue = residual != nullptr || act.kind != ActKind::kNone;
    const Polyphase ph = PolyphaseOf(geom);
    const int64_t per_thread = (geom.sh * geom.sw * ph.plane + geom.oh * ph.pw + 32 + 15) / 16 * 16;
    auto channel = [&](int64_t oc, int thread) {
      float* out = y + oc * p;
      fn(geom, x + (oc / mult) * geom.h * geom.w, raw_.data() + oc * ksz,
         bias_[static_cast<size_t>(oc)], scratch + thread * per_thread, out);
      if (epilogue) AddActivate(act, residual != nullptr ? residual + oc * p : nullptr, out, p);
    };
    ParallelFor(pool, geom.m, channel);
    return;
  }
  if (RunsFlat(geom)) {
    ForwardFlat(Flattened(geom), x, residual, act, y, scratch, pool);
  } else {
    ForwardPhases(geom, x, residual, act, y, scratch, pool);
  }
}

// Pointwise: the input's rows are packed as they are (one row when the plane can be
// flattened); C is the output. Threads take blocks of output positions.
void Conv2dWeights::ForwardFlat(const Conv2dGeom& g, const float* x, const float* residual,
                                const ActParams& act, float* y, float* scratch,
                                IntraOpPool* pool) const {
  const int64_t p = g.oh * g.ow;
  const bool epilogue = residual != nullptr || act.kind != ActKind::kNone;
  const int64_t mg = g.m / g.group, cg = g.c / g.group;
  const int64_t k = cg;
  if (p <= kFewPositions && !transposed_.empty() && g.h * g.w == p) {
    // C^T[p x M] = X^T · W^T: row j of X^T is input position j (stride p through x).
    GemmPacked(p, g.m, k, x, 1, p, transposed_.data(), scratch, g.m, 1.0f, false, bias_.data());
    for (int64_t oc = 0; oc < g.m; ++oc) {
      for (int64_t j = 0; j < p; ++j) y[oc * p + j] = scratch[j * g.m + oc];
      if (epilogue) {
        AddActivate(act, residual != nullptr ? residual + oc * p : nullptr, y + oc * p, p);
      }
    }
    return;
  }
  const int64_t nb_max = BlockColumns(arch_->nr), kc_max = KcOf(arch_->nr);
  const int64_t blocks = (p + nb_max - 1) / nb_max;
  const size_t per_group = PackedASize(*arch_, mg, k);
  auto block = [&](int64_t task, int thread) {
    const int64_t gi = task / blocks, j0 = task % blocks * nb_max;
    const int64_t nb = std::min(nb_max, p - j0);
    float* bbuf = scratch + thread * kc_max * nb_max;
    GemmBlockArgs args;
    args.m = mg;
    args.n = nb;
    args.a_strip = arch_->mr * k;
    args.b = bbuf;
    args.c = y + gi * mg * p + j0;
    args.ldc = p;
    args.bias = bias_.data() + gi * mg;
    const float* ag = packed_.data() + static_cast<size_t>(gi) * per_group;
    for (int64_t k0 = 0; k0 < k; k0 += kc_max) {
      const int64_t kc = std::min(kc_max, k - k0);
      PackConvPanels(g, x + gi * cg * g.h * g.w, k0, kc, j0, nb, arch_->nr, bbuf);
      args.kc = kc;
      args.a = ag + k0 * arch_->mr;
      args.accumulate = k0 > 0;
      arch_->block(args);
    }
    if (!epilogue) return;
    for (int64_t r = 0; r < mg; ++r) {
      const int64_t off = (gi * mg + r) * p + j0;
      AddActivate(act, residual != nullptr ? residual + off : nullptr, y + off, nb);
    }
  };
  ParallelFor(pool, g.group * blocks, block);
}

// Any other geometry: each input channel is split once into its polyphase planes (see
// PolyphaseOf), where every row of the im2col matrix is one contiguous run over the output
// positions laid out `pw` wide. Packing a block is then a copy per row; the GEMM writes the
// wide block into scratch, and the epilogue moves its valid columns into the output.
// Threads split the channels, then the blocks of output positions.
void Conv2dWeights::ForwardPhases(const Conv2dGeom& g, const float* x, const float* residual,
                                  const ActParams& act, float* y, float* scratch,
                                  IntraOpPool* pool) const {
  const Polyphase ph = PolyphaseOf(g);
  const int64_t n_wide = g.oh * ph.pw;
  const int64_t mg = g.m / g.group, cg = g.c / g.group;
  const int64_t nr = arch_->nr, nb_max = BlockColumns(nr), kc_max = KcOf(nr);
  const int64_t chan = g.sh * g.sw * ph.plane;
  const int64_t blocks = (n_wide + nb_max - 1) / nb_max;
  float* planes = scratch;
  float* per_thread = planes + cg * chan;
  const int64_t thread_floats = kc_max * nb_max + (mg + 16) * nb_max;
  for (int64_t gi = 0; gi < g.group; ++gi) {
    auto fill = [&](int64_t ch, int) {
      FillPhases(g, ph, x + (gi * cg + ch) * g.h * g.w, planes + ch * chan);
    };
    ParallelFor(pool, cg, fill);
    auto block = [&](int64_t b, int thread) {
      float* bbuf = per_thread + thread * thread_floats;
      PhasesBlock(g, gi, b * nb_max, std::min(nb_max, n_wide - b * nb_max), planes, residual, act,
                  y, bbuf, bbuf + kc_max * nb_max);
    };
    ParallelFor(pool, blocks, block);
  }
}

// One block of `nb` wide output positions from j0, all output channels of group gi.
void Conv2dWeights::PhasesBlock(const Conv2dGeom& g, int64_t gi, int64_t j0, int64_t nb,
                                const float* planes, const float* residual, const ActParams& act,
                                float* y, float* bbuf, float* cbuf) const {
  const Polyphase ph = PolyphaseOf(g);
  const int64_t p = g.oh * g.ow;
  const int64_t mg = g.m / g.group, cg = g.c / g.group;
  const int64_t ksz = g.kh * g.kw, k = cg * ksz;
  const int64_t nr = arch_->nr, nb_max = BlockColumns(nr), kc_max = KcOf(nr);
  const int64_t chan = g.sh * g.sw * ph.plane;
  GemmBlockArgs args;
  args.m = mg;
  args.n = nb;
  args.a_strip = arch_->mr * k;
  args.b = bbuf;
  args.c = cbuf;
  args.ldc = nb_max;
  args.bias = bias_.data() + gi * mg;
  const float* ag = packed_.data() + static_cast<size_t>(gi) * PackedASize(*arch_, mg, k);
  for (int64_t k0 = 0; k0 < k; k0 += kc_max) {
    const int64_t kc = std::min(kc_max, k - k0);
    for (int64_t kk = 0; kk < kc; ++kk) {
      const int64_t row = k0 + kk, ch = row / ksz, ky = row % ksz / g.kw, kx = row % g.kw;
      const int64_t dy = ky * g.dh, dx = kx * g.dw;
      const float* src = planes + ch * chan + ((dy % g.sh) * g.sw + dx % g.sw) * ph.plane +
                         (dy / g.sh) * ph.pw + dx / g.sw + j0;
      for (int64_t q = 0; q * nr < nb; ++q) {
        float* dst = bbuf + q * kc * nr + kk * nr;
        const int64_t cnt = std::min(nr, nb - q * nr);
        for (int64_t i = 0; i < cnt; ++i) dst[i] = src[q * nr + i];
        for (int64_t i = cnt; i < nr; ++i) dst[i] = 0.0f;
      }
    }
    args.kc = kc;
    args.a = ag + k0 * arch_->mr;
    args.accumulate = k0 > 0;
    arch_->block(args);
  }
  // Wide column j is output (j / pw, j % pw) when j % pw < ow.
  for (int64_t r = 0; r < mg; ++r) {
    const int64_t out_row = (gi * mg + r) * p;
    for (int64_t oy = j0 / ph.pw; oy * ph.pw < j0 + nb; ++oy) {
      const int64_t a = std::max(j0, oy * ph.pw), e = std::min(j0 + nb, oy * ph.pw + g.ow);
      if (e <= a) continue;
      const int64_t off = out_row + oy * g.ow + (a - oy * ph.pw);
      std::memcpy(y + off, cbuf + r * nb_max + (a - j0),
                  static_cast<size_t>(e - a) * sizeof(float));
      if (residual != nullptr || act.kind != ActKind::kNone) {
        AddActivate(act, residual != nullptr ? residual + off : nullptr, y + off, e - a);
      }
    }
  }
}

}  // namespace outpost::engine::onnx
