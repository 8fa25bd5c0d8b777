// Signal processing (opset 17 on; DFT-20's axis input too): HannWindow, HammingWindow, BlackmanWindow, MelWeightMatrix,
// DFT and STFT. Transforms are direct sums in double precision with exact twiddle angles
// ((k·n mod N) / N), which matches a float64 FFT well within the node tests' tolerance.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

// ---- windows ----

enum class WindowKind : uint8_t { kHann, kHamming, kBlackman };

class WindowKernel : public Kernel {
 public:
  WindowKernel(WindowKind kind, DataType type, bool periodic)
      : kind_(kind), type_(type), periodic_(periodic) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kIndexTypes, "size"));
    const TensorRef* size = ctx.input_value(0);
    if (size == nullptr) return ctx.Defer();
    if (size->count != 1) return InvalidArgumentError("size must be a scalar");
    const int64_t n = ReadInt64(*size, 0);
    if (n < 0 || n > (int64_t{1} << 28)) return InvalidArgumentError("size is out of range");
    ctx.SetOutput(0, type_, {n});
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& y = ctx.output(0);
    const int64_t size = y.count;
    const double n = static_cast<double>(periodic_ ? size : size - 1);
    return Dispatch<kNumericTypes>(y.type, [&](auto tag) {
      using T = decltype(tag);
      T* out = y.mut<T>();
      for (int64_t i = 0; i < size; ++i) {
        const double x = n == 0 ? 0.0 : 2 * std::numbers::pi * static_cast<double>(i) / n;
        double v = 0;
        switch (kind_) {
          case WindowKind::kHann: v = 0.5 - 0.5 * std::cos(x); break;
          case WindowKind::kHamming: v = 25.0 / 46.0 - 21.0 / 46.0 * std::cos(x); break;
          case WindowKind::kBlackman: v = 0.42 - 0.5 * std::cos(x) + 0.08 * std::cos(2 * x); break;
        }
        out[i] = CastFromDouble<T>(v);
      }
      return Status();
    });
  }

 private:
  WindowKind kind_;
  DataType type_;
  bool periodic_;
};

Result<DataType> OutputDatatype(const KernelBuildContext& ctx) {
  OUTPOST_ASSIGN_OR_RETURN(int64_t t, ctx.Int("output_datatype", 1));
  auto type = DataTypeFromOnnx(t);
  if (!type.ok() || (kNumericTypes & TypeBit(*type)) == 0) {
    return InvalidArgumentError("attribute \"output_datatype\" " + std::to_string(t) +
                                " is not a numeric type");
  }
  return *type;
}

template <WindowKind kKind>
Result<std::unique_ptr<Kernel>> MakeWindow(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(DataType type, OutputDatatype(ctx));
  OUTPOST_ASSIGN_OR_RETURN(int64_t periodic, ctx.Int("periodic", 1));
  return std::unique_ptr<Kernel>(new WindowKernel(kKind, type, periodic != 0));
}

// ---- MelWeightMatrix ----

class MelKernel : public Kernel {
 public:
  explicit MelKernel(DataType type) : type_(type) {}

  Status Infer(InferContext& ctx) const override {
    for (size_t i = 0; i < 5; ++i) {
      if (ctx.input_value(i) == nullptr) return ctx.Defer();
      if (ctx.input_value(i)->count != 1) return InvalidArgumentError("inputs must be scalars");
    }
    const int64_t bins = ReadInt64(*ctx.input_value(0), 0);
    const int64_t dft = ReadInt64(*ctx.input_value(1), 0);
    if (bins < 0 || dft < 0 || bins > (1 << 16) || dft > (1 << 24)) {
      return InvalidArgumentError("num_mel_bins or dft_length is out of range");
    }
    ctx.SetOutput(0, type_, {dft / 2 + 1, bins});
    ctx.RequestScratch(static_cast<size_t>(bins + 2) * sizeof(int64_t));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const int64_t bins = ReadInt64(ctx.input(0), 0);
    const int64_t dft = ReadInt64(ctx.input(1), 0);
    const double rate = ReadDouble(ctx.input(2), 0);
    const double lo = ReadDouble(ctx.input(3), 0), hi = ReadDouble(ctx.input(4), 0);
    if (!(rate > 0)) return InvalidArgumentError("sample_rate must be positive");
    const int64_t spectrum = dft / 2 + 1;
    // Band edges: bins + 2 points evenly spaced on the mel scale, mapped to DFT bins.
    auto* edge = reinterpret_cast<int64_t*>(ctx.scratch().data());
    const double mel_lo = 2595 * std::log10(1 + lo / 700);
    const double mel_hi = 2595 * std::log10(1 + hi / 700);
    const double step = (mel_hi - mel_lo) / static_cast<double>(bins + 2);
    for (int64_t i = 0; i < bins + 2; ++i) {
      const double hz = 700 * (std::pow(10.0, (static_cast<double>(i) * step + mel_lo) / 2595) - 1);
      edge[i] = static_cast<int64_t>(std::floor(static_cast<double>(dft + 1) * hz / rate));
      if (edge[i] < 0 || edge[i] >= spectrum) {
        return InvalidArgumentError("a mel band edge falls outside the spectrum");
      }
    }
    const TensorRef& y = ctx.output(0);
    return Dispatch<kNumericTypes>(y.type, [&](auto tag) {
      using T = decltype(tag);
      T* out = y.mut<T>();
      std::fill_n(out, y.count, T{});
      for (int64_t i = 0; i < bins; ++i) {
        const int64_t left = edge[i], center = edge[i + 1], right = edge[i + 2];
        if (center == left) {
          out[center * bins + i] = CastFromDouble<T>(1.0);
        } else {
          for (int64_t j = left; j <= center; ++j) {
            out[j * bins + i] = CastFromDouble<T>(static_cast<double>(j - left) /
                                                  static_cast<double>(center - left));
          }
        }
        for (int64_t j = center; j < right; ++j) {
          out[j * bins + i] = CastFromDouble<T>(static_cast<double>(right - j) /
                                                static_cast<double>(right - center));
        }
      }
      return Status();
    });
  }

 private:
  DataType type_;
};

Result<std::unique_ptr<Kernel>> MakeMel(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(5, 5));
  OUTPOST_ASSIGN_OR_RETURN(DataType type, OutputDatatype(ctx));
  return std::unique_ptr<Kernel>(new MelKernel(type));
}

// ---- DFT, STFT ----

// One complex transform of `n_in` input points (stride `in_step` complex-or-real elements,
// `complex_in`) to `n_out` output bins of a length-`length` DFT; input points beyond the
// signal are zeros. `window` (optional) multiplies the input.
template <typename T>
void Transform(const T* in, int64_t in_step, bool complex_in, int64_t n_in, const T* window,
               int64_t length, int64_t n_out, bool inverse, T* out, int64_t out_step) {
  const int64_t used = std::min(n_in, length);
  for (int64_t k = 0; k < n_out; ++k) {
    double re = 0, im = 0;
    for (int64_t j = 0; j < used; ++j) {
      const T* p = in + j * in_step;
      double xr = static_cast<double>(p[0]);
      double xi = complex_in ? static_cast<double>(p[1]) : 0.0;
      if (window != nullptr) {
        xr *= static_cast<double>(window[j]);
        xi *= static_cast<double>(window[j]);
      }
      const double angle = 2 * std::numbers::pi * static_cast<double>((k * j) % length) /
                           static_cast<double>(length) * (inverse ? 1.0 : -1.0);
      const double c = std::cos(angle), s = std::sin(angle);
      re += xr * c - xi * s;
      im += xr * s + xi * c;
    }
    if (inverse) {
      re /= static_cast<double>(length);
      im /= static_cast<double>(length);
    }
    out[k * out_step] = static_cast<T>(re);
    out[k * out_step + 1] = static_cast<T>(im);
  }
}

class DftKernel : public Kernel {
 public:
  // `axis_input`: opset 20 on, where the axis is input 2 (default -2), not an attribute.
  DftKernel(int64_t axis, bool axis_input, bool inverse, bool onesided)
      : axis_(axis), axis_input_(axis_input), inverse_(inverse), onesided_(onesided) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    if (t != DataType::kFp32 && t != DataType::kFp64) {
      return UnimplementedError("DFT supports FLOAT and DOUBLE only");
    }
    const Shape& x = ctx.input_shape(0);
    if (x.size() < 3 || (x.back() != 1 && x.back() != 2)) {
      return InvalidArgumentError("input must be [batch, signal..., 1 or 2]");
    }
    int64_t raw_axis = axis_;
    if (axis_input_ && ctx.has_input(2)) {
      const TensorRef* a = ctx.input_value(2);
      if (a == nullptr) return ctx.Defer();
      raw_axis = ReadInt64(*a, 0);
    }
    OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(raw_axis, static_cast<int64_t>(x.size())));
    if (axis == 0 || axis == static_cast<int64_t>(x.size()) - 1) {
      return InvalidArgumentError("the axis must name a signal dimension");
    }
    int64_t length = x[static_cast<size_t>(axis)];
    if (ctx.has_input(1)) {
      const TensorRef* len = ctx.input_value(1);
      if (len == nullptr) return ctx.Defer();
      length = ReadInt64(*len, 0);
      if (length < 1 || length > (int64_t{1} << 24)) {
        return InvalidArgumentError("dft_length is out of range");
      }
    }
    if (inverse_ && onesided_) {
      return UnimplementedError("attribute \"onesided\" with inverse is not supported");
    }
    Shape out = x;
    out[static_cast<size_t>(axis)] = onesided_ ? length / 2 + 1 : length;
    // Direct sums: bounded so that a small model cannot ask for an endless transform.
    const double work = static_cast<double>(NumElements(x)) * static_cast<double>(length);
    if (work > static_cast<double>(int64_t{1} << 36)) {
      return ResourceExhaustedError("the transform is too long for the direct DFT");
    }
    out.back() = 2;
    ctx.SetOutput(0, t, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    const int64_t raw_axis =
        axis_input_ && ctx.has_input(2) ? ReadInt64(ctx.input(2), 0) : axis_;
    const size_t axis = static_cast<size_t>(
        raw_axis < 0 ? raw_axis + static_cast<int64_t>(x.rank()) : raw_axis);
    const int64_t length = ctx.has_input(1) ? ReadInt64(ctx.input(1), 0) : x.shape[axis];
    const int64_t comps = x.shape.back();
    const int64_t outer = DimProduct(x.shape, 0, axis);
    const int64_t inner = DimProduct(x.shape, axis + 1, x.rank() - 1);
    const int64_t n_in = x.shape[axis], n_out = y.shape[axis];
    return Dispatch<TypeBit(DataType::kFp32) | TypeBit(DataType::kFp64)>(x.type, [&](auto tag) {
      using T = decltype(tag);
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          const T* in = x.get<T>() + (o * n_in * inner + i) * comps;
          T* out = y.mut<T>() + (o * n_out * inner + i) * 2;
          Transform(in, inner * comps, comps == 2, n_in, static_cast<const T*>(nullptr), length,
                    n_out, inverse_, out, inner * 2);
        }
      }
      return Status();
    });
  }

 private:
  int64_t axis_;
  bool axis_input_, inverse_, onesided_;
};

Result<std::unique_ptr<Kernel>> MakeDft(const KernelBuildContext& ctx) {
  const bool axis_input = ctx.opset() >= 20;
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, axis_input ? 3 : 2));
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 1));
  if (axis_input) axis = -2;
  OUTPOST_ASSIGN_OR_RETURN(int64_t inverse, ctx.Int("inverse", 0));
  OUTPOST_ASSIGN_OR_RETURN(int64_t onesided, ctx.Int("onesided", 0));
  return std::unique_ptr<Kernel>(new DftKernel(axis, axis_input, inverse != 0, onesided != 0));
}

class StftKernel : public Kernel {
 public:
  explicit StftKernel(bool onesided) : onesided_(onesided) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    if (t != DataType::kFp32 && t != DataType::kFp64) {
      return UnimplementedError("STFT supports FLOAT and DOUBLE only");
    }
    const Shape& x = ctx.input_shape(0);
    if (x.size() != 3 || (x[2] != 1 && x[2] != 2)) {
      return InvalidArgumentError("signal must be [batch, length, 1 or 2]");
    }
    const TensorRef* step = ctx.input_value(1);
    if (step == nullptr) return ctx.Defer();
    int64_t length = -1;
    if (ctx.has_input(2)) {
      if (ctx.input_type(2) != t || ctx.input_shape(2).size() != 1) {
        return InvalidArgumentError("window must be 1-D, of the signal's type");
      }
      length = ctx.input_shape(2)[0];
    }
    if (ctx.has_input(3)) {
      const TensorRef* fl = ctx.input_value(3);
      if (fl == nullptr) return ctx.Defer();
      const int64_t v = ReadInt64(*fl, 0);
      if (length >= 0 && v != length) {
        return InvalidArgumentError("frame_length differs from the window's length");
      }
      length = v;
    }
    if (length < 1) return InvalidArgumentError("STFT needs a window or a frame_length");
    const int64_t hop = ReadInt64(*step, 0);
    if (hop < 1) return InvalidArgumentError("frame_step must be positive");
    if (length > x[1]) return InvalidArgumentError("the frame is longer than the signal");
    const int64_t frames = (x[1] - length) / hop + 1;
    const double work = static_cast<double>(x[0]) * static_cast<double>(frames) *
                        static_cast<double>(length) * static_cast<double>(length);
    if (work > static_cast<double>(int64_t{1} << 36)) {
      return ResourceExhaustedError("the transform is too long for the direct DFT");
    }
    ctx.SetOutput(0, t, {x[0], frames, onesided_ ? length / 2 + 1 : length, 2});
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    const int64_t hop = ReadInt64(ctx.input(1), 0);
    const int64_t length = ctx.has_input(2) ? ctx.input(2).shape[0] : ReadInt64(ctx.input(3), 0);
    const int64_t comps = x.shape[2];
    const int64_t frames = y.shape[1], bins = y.shape[2];
    return Dispatch<TypeBit(DataType::kFp32) | TypeBit(DataType::kFp64)>(x.type, [&](auto tag) {
      using T = decltype(tag);
      const T* window = ctx.has_input(2) ? ctx.input(2).get<T>() : nullptr;
      for (int64_t b = 0; b < x.shape[0]; ++b) {
        for (int64_t f = 0; f < frames; ++f) {
          const T* in = x.get<T>() + (b * x.shape[1] + f * hop) * comps;
          T* out = y.mut<T>() + ((b * frames + f) * bins) * 2;
          Transform(in, comps, comps == 2, length, window, length, bins, false, out, 2);
        }
      }
      return Status();
    });
  }

 private:
  bool onesided_;
};

Result<std::unique_ptr<Kernel>> MakeStft(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 4));
  OUTPOST_ASSIGN_OR_RETURN(int64_t onesided, ctx.Int("onesided", 1));
  return std::unique_ptr<Kernel>(new StftKernel(onesided != 0));
}

}  // namespace

void RegisterSignalKernels(KernelRegistry& r) {
  r.Add({"", "HannWindow", 17, 1000, &MakeWindow<WindowKind::kHann>});
  r.Add({"", "HammingWindow", 17, 1000, &MakeWindow<WindowKind::kHamming>});
  r.Add({"", "BlackmanWindow", 17, 1000, &MakeWindow<WindowKind::kBlackman>});
  r.Add({"", "MelWeightMatrix", 17, 1000, &MakeMel});
  r.Add({"", "DFT", 17, 1000, &MakeDft});
  r.Add({"", "STFT", 17, 1000, &MakeStft});
}

}  // namespace outpost::engine::onnx
