// Resize (opsets 10 on) and Upsample (7 to 9): nearest with every nearest_mode, N-linear
// and N-cubic interpolation over any axes, every coordinate_transformation_mode (opset 19's
// half_pixel_symmetric included), scales or sizes, opset 18's axes and
// keep_aspect_ratio_policy. Antialiasing is refused.
//
// Each output coordinate of each axis is mapped once per run to at most four input taps
// (index, weight) held in scratch memory; an output element is then the weighted sum over the
// product of its axes' taps, so nearest costs one read and bilinear four.
#include <algorithm>
#include <array>
#include <cmath>

#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

enum class ResizeMode : uint8_t { kNearest, kLinear, kCubic };
enum class Transform : uint8_t {
  kHalfPixel, kPytorchHalfPixel, kAlignCorners, kAsymmetric, kTfHalfPixelForNn, kTfCropAndResize,
  kHalfPixelSymmetric
};
enum class Rounding : uint8_t { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };
// Opset 18's keep_aspect_ratio_policy for sizes: stretch each axis, or one scale for every
// resized axis, the smallest (not_larger) or the largest (not_smaller) of sizes / input.
enum class AspectPolicy : uint8_t { kStretch, kNotLarger, kNotSmaller };

struct ResizeAttrs {
  ResizeMode mode = ResizeMode::kNearest;
  Transform transform = Transform::kHalfPixel;
  Rounding rounding = Rounding::kRoundPreferFloor;
  float cubic_a = -0.75f;
  bool exclude_outside = false;
  float extrapolation = 0;
  // Input positions of roi, scales and sizes (-1: absent).
  int roi_input = -1, scales_input = -1, sizes_input = -1;
  std::vector<float> attr_scales;  // Upsample-7
  std::vector<int64_t> axes;       // opset 18: the axes scales, sizes and roi describe
  AspectPolicy policy = AspectPolicy::kStretch;
};

// One axis's taps for one output coordinate.
struct Taps {
  int32_t count = 0;  // 0: outside the input (tf_crop_and_resize): the extrapolation value
  std::array<int64_t, 4> index{};
  std::array<float, 4> weight{};
};

class ResizeKernel : public Kernel {
 public:
  explicit ResizeKernel(ResizeAttrs a) : a_(std::move(a)) {}

  Status Infer(InferContext& ctx) const override;
  Status Compute(ComputeContext& ctx) const override;

 private:
  // The scales (one per axis) and output shape for input shape `in`; false in `known` when the
  // scales or sizes input is not known yet.
  template <typename GetInput>
  Status Plan(std::span<const int64_t> in, GetInput&& get, std::vector<float>& scales,
              Shape& out, bool& known) const;
  Taps MapCoordinate(int64_t x, int64_t in, int64_t out, float scale, double roi_start,
                     double roi_end) const;
  // The entry of scales, sizes and roi that describes axis d of a rank-`rank` input, or -1
  // when `axes` leaves the axis alone.
  int64_t AxisSlot(size_t d, size_t rank) const {
    if (a_.axes.empty()) return static_cast<int64_t>(d);
    for (size_t k = 0; k < a_.axes.size(); ++k) {
      const int64_t ax = a_.axes[k] < 0 ? a_.axes[k] + static_cast<int64_t>(rank) : a_.axes[k];
      if (ax == static_cast<int64_t>(d)) return static_cast<int64_t>(k);
    }
    return -1;
  }
  // The one scale of every resized axis under a keep_aspect_ratio_policy other than stretch.
  float AspectScale(const TensorRef& sizes, std::span<const int64_t> in) const {
    float best = 0;
    bool first = true;
    for (size_t i = 0; i < in.size(); ++i) {
      const int64_t k = AxisSlot(i, in.size());
      if (k < 0 || in[i] == 0) continue;
      const float s = static_cast<float>(ReadInt64(sizes, k)) / static_cast<float>(in[i]);
      if (first || (a_.policy == AspectPolicy::kNotLarger ? s < best : s > best)) best = s;
      first = false;
    }
    return first ? 1.0f : best;
  }
  // Entries scales, sizes and roi (per half) have.
  int64_t Described(size_t rank) const {
    return a_.axes.empty() ? static_cast<int64_t>(rank) : static_cast<int64_t>(a_.axes.size());
  }
  template <typename T>
  void ResizePlanes(const T* x, T* y, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w,
                    int64_t planes, const Taps* th, const Taps* tw) const;

  ResizeAttrs a_;
};

template <typename GetInput>
Status ResizeKernel::Plan(std::span<const int64_t> in, GetInput&& get,
                          std::vector<float>& scales, Shape& out, bool& known) const {
  const size_t rank = in.size();
  known = true;
  scales.assign(rank, 1.0f);
  out.assign(in.begin(), in.end());
  const TensorRef* sizes = a_.sizes_input >= 0 ? get(a_.sizes_input) : nullptr;
  const TensorRef* sc = a_.scales_input >= 0 ? get(a_.scales_input) : nullptr;
  if ((a_.sizes_input >= 0 && sizes == nullptr) || (a_.scales_input >= 0 && sc == nullptr)) {
    known = false;
    return Status();
  }
  if (sizes != nullptr && sizes->count > 0) {
    if (sc != nullptr && sc->count > 0) {
      return InvalidArgumentError("only one of scales and sizes may be given");
    }
    if (sizes->count != Described(rank)) {
      return InvalidArgumentError("sizes must have one entry per resized axis of X");
    }
    for (size_t i = 0; i < rank; ++i) {
      const int64_t k = AxisSlot(i, rank);
      if (k < 0) continue;
      out[i] = ReadInt64(*sizes, k);
      if (out[i] < 0 || out[i] > (int64_t{1} << 32)) {
        return InvalidArgumentError("sizes must be in [0, 2^32]");
      }
      scales[i] = in[i] == 0 ? 1.0f
                             : static_cast<float>(out[i]) / static_cast<float>(in[i]);
    }
    if (a_.policy != AspectPolicy::kStretch) {
      const float scale = AspectScale(*sizes, in);
      for (size_t i = 0; i < rank; ++i) {
        if (AxisSlot(i, rank) < 0) continue;
        scales[i] = scale;
        out[i] = static_cast<int64_t>(std::floor(scale * static_cast<float>(in[i]) + 0.5f));
      }
    }
    return Status();
  }
  if (sc != nullptr && sc->count > 0) {
    if (sc->count != Described(rank)) {
      return InvalidArgumentError("scales must have one entry per resized axis of X");
    }
    for (size_t i = 0; i < rank; ++i) {
      const int64_t k = AxisSlot(i, rank);
      if (k >= 0) scales[i] = static_cast<float>(ReadDouble(*sc, k));
    }
  } else if (!a_.attr_scales.empty()) {
    if (a_.attr_scales.size() != rank) {
      return InvalidArgumentError("attribute \"scales\" must have one entry per dimension of X");
    }
    scales = a_.attr_scales;
  } else {
    return InvalidArgumentError("one of scales and sizes must be given");
  }
  for (size_t i = 0; i < rank; ++i) {
    if (!(scales[i] > 0) || scales[i] > 1e6f) {
      return InvalidArgumentError("scales must be positive");
    }
    out[i] = static_cast<int64_t>(std::floor(scales[i] * static_cast<float>(in[i])));
  }
  return Status();
}

Status ResizeKernel::Infer(InferContext& ctx) const {
  const DataType t = ctx.input_type(0);
  OUTPOST_RETURN_IF_ERROR(CheckType(t, kNumericTypes, "X"));
  if (a_.mode != ResizeMode::kNearest && (kFloatTypes & TypeBit(t)) == 0) {
    return UnimplementedError("linear and cubic Resize support floating-point X only");
  }
  const Shape& x = ctx.input_shape(0);
  if (x.empty() || x.size() > kMaxRank) return InvalidArgumentError("X must have rank 1 to 32");
  std::array<bool, kMaxRank> named{};
  for (int64_t axis : a_.axes) {
    OUTPOST_ASSIGN_OR_RETURN(int64_t ax, NormalizeAxis(axis, static_cast<int64_t>(x.size())));
    if (named[static_cast<size_t>(ax)]) return InvalidArgumentError("attribute \"axes\" repeats an axis");
    named[static_cast<size_t>(ax)] = true;
  }
  auto get = [&ctx](int i) -> const TensorRef* {
    if (!ctx.has_input(static_cast<size_t>(i))) {
      static const TensorRef kEmpty;
      return &kEmpty;
    }
    return ctx.input_value(static_cast<size_t>(i));
  };
  std::vector<float> scales;
  Shape out;
  bool known = false;
  OUTPOST_RETURN_IF_ERROR(Plan(x, get, scales, out, known));
  if (!known) return ctx.Defer();
  OUTPOST_ASSIGN_OR_RETURN(int64_t count, CheckedElements(out));
  if (count > (int64_t{1} << 32)) return ResourceExhaustedError("the resized output is too large");
  if (a_.transform == Transform::kTfCropAndResize) {
    if (a_.roi_input < 0 || !ctx.has_input(static_cast<size_t>(a_.roi_input))) {
      return InvalidArgumentError("tf_crop_and_resize needs roi");
    }
    if (NumElements(ctx.input_shape(static_cast<size_t>(a_.roi_input))) != 2 * Described(x.size())) {
      return InvalidArgumentError("roi must have 2 entries per resized axis of X");
    }
  }
  size_t taps = 0;
  for (int64_t d : out) taps += static_cast<size_t>(d);
  ctx.RequestScratch(taps * sizeof(Taps) + 64);
  ctx.SetOutput(0, t, std::move(out));
  return Status();
}

Taps ResizeKernel::MapCoordinate(int64_t xo, int64_t in, int64_t out, float scale,
                                 double roi_start, double roi_end) const {
  const double x = static_cast<double>(xo);
  const double s = scale;
  double orig = 0;
  switch (a_.transform) {
    case Transform::kHalfPixel:
      orig = (x + 0.5) / s - 0.5;
      break;
    case Transform::kHalfPixelSymmetric: {
      // Centred: the rounding of the output length is spread over both ends.
      const double adjustment = static_cast<double>(out) / (s * static_cast<double>(in));
      const double center = static_cast<double>(in) / 2;
      orig = center * (1 - adjustment) + (x + 0.5) / s - 0.5;
      break;
    }
    case Transform::kPytorchHalfPixel:
      orig = out > 1 ? (x + 0.5) / s - 0.5 : 0.0;
      break;
    case Transform::kAlignCorners:
      orig = out == 1 ? 0.0 : x * static_cast<double>(in - 1) / static_cast<double>(out - 1);
      break;
    case Transform::kAsymmetric:
      orig = x / s;
      break;
    case Transform::kTfHalfPixelForNn:
      orig = (x + 0.5) / s;
      break;
    case Transform::kTfCropAndResize:
      orig = out > 1 ? roi_start * static_cast<double>(in - 1) +
                           x * (roi_end - roi_start) * static_cast<double>(in - 1) /
                               static_cast<double>(out - 1)
                     : 0.5 * (roi_start + roi_end) * static_cast<double>(in - 1);
      break;
  }
  Taps t;
  if (a_.transform == Transform::kTfCropAndResize &&
      (orig < 0 || orig > static_cast<double>(in - 1))) {
    return t;  // count 0: extrapolated
  }
  // Bounded (and NaN mapped to 0) before any conversion to an index: hostile scales or roi
  // values cannot make the conversion overflow.
  orig = orig == orig ? std::clamp(orig, -4.0, static_cast<double>(in) + 4.0) : 0.0;
  auto clamp_index = [in](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
  if (a_.mode == ResizeMode::kNearest) {
    double r = 0;
    switch (a_.rounding) {
      case Rounding::kRoundPreferFloor:
        r = (orig - std::floor(orig)) == 0.5 ? std::floor(orig) : std::round(orig);
        break;
      case Rounding::kRoundPreferCeil:
        r = (orig - std::floor(orig)) == 0.5 ? std::ceil(orig) : std::round(orig);
        break;
      case Rounding::kFloor:
        r = std::floor(orig);
        break;
      case Rounding::kCeil:
        r = std::ceil(orig);
        break;
    }
    t.count = 1;
    t.index[0] = clamp_index(static_cast<int64_t>(r));
    t.weight[0] = 1.0f;
    return t;
  }
  if (a_.mode == ResizeMode::kLinear) {
    const double c = std::clamp(orig, 0.0, static_cast<double>(in - 1));
    const int64_t i0 = static_cast<int64_t>(std::floor(c));
    const double f = c - static_cast<double>(i0);
    t.count = f == 0 ? 1 : 2;
    t.index[0] = clamp_index(i0);
    t.index[1] = clamp_index(i0 + 1);
    t.weight[0] = static_cast<float>(1.0 - f);
    t.weight[1] = static_cast<float>(f);
    return t;
  }
  // Cubic: Keys' kernel with coefficient A over the four neighbours.
  const double fl = std::floor(orig);
  const double f = orig - fl;
  const int64_t base = static_cast<int64_t>(fl) - 1;
  if (f == 0 && fl >= 0 && fl <= static_cast<double>(in - 1)) {
    // On a sample: the kernel is 1 there and 0 at the other three. One tap, so that an axis
    // the resize keeps (scale 1) maps each position to itself and images take the plane path.
    t.count = 1;
    t.index[0] = base + 1;
    t.weight[0] = 1.0f;
    return t;
  }
  const double a = a_.cubic_a;
  double w[4];
  w[0] = ((a * (f + 1) - 5 * a) * (f + 1) + 8 * a) * (f + 1) - 4 * a;
  w[1] = ((a + 2) * f - (a + 3)) * f * f + 1;
  w[2] = ((a + 2) * (1 - f) - (a + 3)) * (1 - f) * (1 - f) + 1;
  w[3] = ((a * (2 - f) - 5 * a) * (2 - f) + 8 * a) * (2 - f) - 4 * a;
  double sum = 0;
  for (int k = 0; k < 4; ++k) {
    const int64_t i = base + k;
    if (a_.exclude_outside && (i < 0 || i >= in)) w[k] = 0;
    sum += w[k];
  }
  t.count = 4;
  for (int k = 0; k < 4; ++k) {
    t.index[static_cast<size_t>(k)] = clamp_index(base + k);
    t.weight[static_cast<size_t>(k)] =
        static_cast<float>(a_.exclude_outside && sum != 0 ? w[k] / sum : w[k]);
  }
  return t;
}

template <typename T>
void ResizeKernel::ResizePlanes(const T* x, T* y, int64_t in_h, int64_t in_w, int64_t out_h,
                                int64_t out_w, int64_t planes, const Taps* th,
                                const Taps* tw) const {
  using C = MathT<T>;
  const T extrapolated = CastFromDouble<T>(a_.extrapolation);
  for (int64_t p = 0; p < planes; ++p) {
    const T* src = x + p * in_h * in_w;
    T* dst = y + p * out_h * out_w;
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const Taps& h = th[oh];
      T* row = dst + oh * out_w;
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Taps& w = tw[ow];
        if (h.count == 0 || w.count == 0) {
          row[ow] = extrapolated;
        } else if (a_.mode == ResizeMode::kNearest) {
          row[ow] = src[h.index[0] * in_w + w.index[0]];
        } else {
          double acc = 0;
          for (int32_t i = 0; i < h.count; ++i) {
            const T* line = src + h.index[static_cast<size_t>(i)] * in_w;
            double part = 0;
            for (int32_t j = 0; j < w.count; ++j) {
              part += static_cast<double>(w.weight[static_cast<size_t>(j)]) *
                      static_cast<double>(static_cast<C>(line[w.index[static_cast<size_t>(j)]]));
            }
            acc += static_cast<double>(h.weight[static_cast<size_t>(i)]) * part;
          }
          row[ow] = T(static_cast<C>(acc));
        }
      }
    }
  }
}

Status ResizeKernel::Compute(ComputeContext& ctx) const {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.output(0);
  const size_t rank = x.rank();
  // Scales (not sizes) drive the coordinate mapping; with sizes they are out / in.
  std::array<float, kMaxRank> scales{};
  const TensorRef* sizes = a_.sizes_input >= 0 && ctx.has_input(static_cast<size_t>(a_.sizes_input))
                               ? &ctx.input(static_cast<size_t>(a_.sizes_input))
                               : nullptr;
  const TensorRef* sc = a_.scales_input >= 0 && ctx.has_input(static_cast<size_t>(a_.scales_input))
                            ? &ctx.input(static_cast<size_t>(a_.scales_input))
                            : nullptr;
  for (size_t d = 0; d < rank; ++d) {
    const int64_t k = AxisSlot(d, rank);
    if (k < 0) {
      scales[d] = 1.0f;
    } else if (sizes != nullptr && sizes->count > 0) {
      scales[d] = a_.policy != AspectPolicy::kStretch ? AspectScale(*sizes, x.shape)
                  : x.shape[d] == 0
                      ? 1.0f
                      : static_cast<float>(y.shape[d]) / static_cast<float>(x.shape[d]);
    } else if (sc != nullptr && sc->count > 0) {
      scales[d] = static_cast<float>(ReadDouble(*sc, k));
    } else {
      scales[d] = a_.attr_scales[d];
    }
  }
  if (y.count == 0) return Status();
  if (x.count == 0) return InvalidArgumentError("cannot resize an empty input to a non-empty output");
  const TensorRef* roi = a_.transform == Transform::kTfCropAndResize
                             ? &ctx.input(static_cast<size_t>(a_.roi_input))
                             : nullptr;
  auto* taps = reinterpret_cast<Taps*>(
      (reinterpret_cast<uintptr_t>(ctx.scratch().data()) + 63) / 64 * 64);
  std::array<Taps*, kMaxRank> axis_taps{};
  std::array<int64_t, kMaxRank> in_stride{};
  Taps* next = taps;
  int64_t stride = 1;
  for (size_t d = rank; d-- > 0;) {
    in_stride[d] = stride;
    stride *= x.shape[d];
  }
  for (size_t d = 0; d < rank; ++d) {
    axis_taps[d] = next;
    const int64_t k = AxisSlot(d, rank);
    const double rs = roi != nullptr && k >= 0 ? ReadDouble(*roi, k) : 0.0;
    const double re = roi != nullptr && k >= 0 ? ReadDouble(*roi, Described(rank) + k) : 1.0;
    for (int64_t o = 0; o < y.shape[d]; ++o) {
      next[o] = MapCoordinate(o, x.shape[d], y.shape[d], scales[d], rs, re);
    }
    next += y.shape[d];
  }
  // Images: when every axis but the last two maps each position to itself, resize plane by
  // plane with the two axes' taps, without the per-element walk over every axis.
  bool planes = rank >= 2;
  for (size_t d = 0; planes && d + 2 < rank; ++d) {
    planes = x.shape[d] == y.shape[d];
    for (int64_t o = 0; planes && o < y.shape[d]; ++o) {
      const Taps& t = axis_taps[d][o];
      planes = t.count == 1 && t.index[0] == o && t.weight[0] == 1.0f;
    }
  }
  return Dispatch<kNumericTypes>(x.type, [&](auto tag) {
    using T = decltype(tag);
    const T* xv = x.get<T>();
    T* yv = y.mut<T>();
    if (planes) {
      ResizePlanes(xv, yv, x.shape[rank - 2], x.shape[rank - 1], y.shape[rank - 2],
                   y.shape[rank - 1], y.count / (y.shape[rank - 2] * y.shape[rank - 1]),
                   axis_taps[rank - 2], axis_taps[rank - 1]);
      return Status();
    }
    std::array<int64_t, kMaxRank> opos{};
    std::array<int32_t, kMaxRank> tap{};
    for (int64_t o = 0; o < y.count; ++o) {
      bool outside = false;
      for (size_t d = 0; d < rank; ++d) outside = outside || axis_taps[d][opos[d]].count == 0;
      if (outside) {
        yv[o] = CastFromDouble<T>(a_.extrapolation);
      } else if (a_.mode == ResizeMode::kNearest) {
        int64_t off = 0;
        for (size_t d = 0; d < rank; ++d) off += axis_taps[d][opos[d]].index[0] * in_stride[d];
        yv[o] = xv[off];
      } else {
        double acc = 0;
        std::fill_n(tap.begin(), rank, 0);
        while (true) {
          double w = 1;
          int64_t off = 0;
          for (size_t d = 0; d < rank; ++d) {
            const Taps& tp = axis_taps[d][opos[d]];
            w *= tp.weight[static_cast<size_t>(tap[d])];
            off += tp.index[static_cast<size_t>(tap[d])] * in_stride[d];
          }
          acc += w * static_cast<double>(static_cast<MathT<T>>(xv[off]));
          size_t d = rank;
          while (d-- > 0) {
            if (++tap[d] < axis_taps[d][opos[d]].count) break;
            tap[d] = 0;
          }
          if (d == static_cast<size_t>(-1)) break;
        }
        yv[o] = T(static_cast<MathT<T>>(acc));
      }
      for (size_t d = rank; d-- > 0;) {
        if (++opos[d] < y.shape[d]) break;
        opos[d] = 0;
      }
    }
    return Status();
  });
}

Result<ResizeMode> ParseMode(const std::string& m) {
  if (m == "nearest") return ResizeMode::kNearest;
  if (m == "linear" || m == "bilinear") return ResizeMode::kLinear;
  if (m == "cubic") return ResizeMode::kCubic;
  return InvalidArgumentError("attribute \"mode\" has unknown value \"" + m + "\"");
}

Result<std::unique_ptr<Kernel>> MakeResize(const KernelBuildContext& ctx) {
  ResizeAttrs a;
  if (ctx.opset() < 11) {
    OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
    a.scales_input = 1;
    a.transform = Transform::kAsymmetric;
    a.rounding = Rounding::kFloor;
  } else {
    OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 4));
    a.roi_input = 1;
    a.scales_input = 2;
    a.sizes_input = 3;
    OUTPOST_ASSIGN_OR_RETURN(std::string tr,
                             ctx.String("coordinate_transformation_mode", "half_pixel"));
    if (tr == "half_pixel") {
      a.transform = Transform::kHalfPixel;
    } else if (tr == "pytorch_half_pixel") {
      a.transform = Transform::kPytorchHalfPixel;
    } else if (tr == "align_corners") {
      a.transform = Transform::kAlignCorners;
    } else if (tr == "asymmetric") {
      a.transform = Transform::kAsymmetric;
    } else if (tr == "tf_half_pixel_for_nn") {
      a.transform = Transform::kTfHalfPixelForNn;
    } else if (tr == "tf_crop_and_resize") {
      a.transform = Transform::kTfCropAndResize;
    } else if (tr == "half_pixel_symmetric") {
      a.transform = Transform::kHalfPixelSymmetric;
    } else {
      return UnimplementedError("attribute \"coordinate_transformation_mode\": \"" + tr +
                                "\" is not supported");
    }
    OUTPOST_ASSIGN_OR_RETURN(std::string nm, ctx.String("nearest_mode", "round_prefer_floor"));
    if (nm == "round_prefer_floor") {
      a.rounding = Rounding::kRoundPreferFloor;
    } else if (nm == "round_prefer_ceil") {
      a.rounding = Rounding::kRoundPreferCeil;
    } else if (nm == "floor") {
      a.rounding = Rounding::kFloor;
    } else if (nm == "ceil") {
      a.rounding = Rounding::kCeil;
    } else {
      return InvalidArgumentError("attribute \"nearest_mode\" has unknown value \"" + nm + "\"");
    }
    OUTPOST_ASSIGN_OR_RETURN(a.cubic_a, ctx.Float("cubic_coeff_a", -0.75f));
    OUTPOST_ASSIGN_OR_RETURN(int64_t exclude, ctx.Int("exclude_outside", 0));
    a.exclude_outside = exclude != 0;
    OUTPOST_ASSIGN_OR_RETURN(a.extrapolation, ctx.Float("extrapolation_value", 0.0f));
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string mode, ctx.String("mode", "nearest"));
  OUTPOST_ASSIGN_OR_RETURN(a.mode, ParseMode(mode));
  if (a.mode == ResizeMode::kCubic && ctx.opset() < 11) {
    return InvalidArgumentError("attribute \"mode\": cubic needs opset 11 or later");
  }
  OUTPOST_ASSIGN_OR_RETURN(int64_t antialias, ctx.Int("antialias", 0));
  if (antialias != 0) {
    return UnimplementedError("attribute \"antialias\": antialiased Resize is not supported");
  }
  OUTPOST_ASSIGN_OR_RETURN(a.axes, ctx.Ints("axes"));
  if (ctx.Has("axes") && a.axes.empty()) return InvalidArgumentError("attribute \"axes\" is empty");
  OUTPOST_ASSIGN_OR_RETURN(std::string policy, ctx.String("keep_aspect_ratio_policy", "stretch"));
  if (policy == "not_larger") {
    a.policy = AspectPolicy::kNotLarger;
  } else if (policy == "not_smaller") {
    a.policy = AspectPolicy::kNotSmaller;
  } else if (policy != "stretch") {
    return InvalidArgumentError("attribute \"keep_aspect_ratio_policy\" has unknown value \"" +
                                policy + "\"");
  }
  return std::unique_ptr<Kernel>(new ResizeKernel(std::move(a)));
}

Result<std::unique_ptr<Kernel>> MakeUpsample(const KernelBuildContext& ctx) {
  ResizeAttrs a;
  a.transform = Transform::kAsymmetric;
  a.rounding = Rounding::kFloor;
  if (ctx.opset() >= 9) {
    OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
    a.scales_input = 1;
  } else {
    OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
    OUTPOST_ASSIGN_OR_RETURN(a.attr_scales, ctx.Floats("scales"));
    if (a.attr_scales.empty()) return InvalidArgumentError("attribute \"scales\" is required");
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string mode, ctx.String("mode", "nearest"));
  OUTPOST_ASSIGN_OR_RETURN(a.mode, ParseMode(mode));
  if (a.mode == ResizeMode::kCubic) {
    return InvalidArgumentError("attribute \"mode\": Upsample takes nearest or linear");
  }
  return std::unique_ptr<Kernel>(new ResizeKernel(std::move(a)));
}

}  // namespace

void RegisterResizeKernels(KernelRegistry& r) {
  r.Add({"", "Resize", 10, 1000, &MakeResize});
  r.Add({"", "Upsample", 7, 9, &MakeUpsample});
}

}  // namespace outpost::engine::onnx
