// Quantized operators: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
// MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv. 8-bit integers (INT8, UINT8) with
// per-tensor or per-axis scales and zero points; products are accumulated exactly (64-bit in
// the reference kernels; UINT8 x INT8 matrix products run on the integer GEMM of qgemm.h,
// VNNI where the CPU has it, exact up to its K limit) and requantised with
// round-half-to-even and saturation, as the operator definitions specify.
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include "engine/onnx/kernel_util.h"
#include "engine/onnx/qgemm.h"

namespace outpost::engine::onnx {
namespace {

inline constexpr uint32_t k8BitTypes = TypeBit(DataType::kInt8) | TypeBit(DataType::kUint8);

// Saturating round-half-to-even of v to the 8-bit type t (as int).
int64_t Saturate(double v, DataType t) {
  const double r = std::nearbyint(v);
  const double lo = t == DataType::kInt8 ? -128 : 0, hi = t == DataType::kInt8 ? 127 : 255;
  if (!(r == r)) return 0;
  return static_cast<int64_t>(std::clamp(r, lo, hi));
}

void Write8(const TensorRef& t, int64_t i, int64_t v) {
  if (t.type == DataType::kInt8) {
    t.mut<int8_t>()[i] = static_cast<int8_t>(v);
  } else {
    t.mut<uint8_t>()[i] = static_cast<uint8_t>(v);
  }
}

// Element i's parameter index for a per-tensor (count 1) or per-axis parameter.
int64_t ParamIndex(const TensorRef& param, int64_t i, int64_t axis_dim, int64_t inner) {
  return param.count == 1 ? 0 : (i / inner) % axis_dim;
}

// Checks a scale or zero point against x: scalar/one element, or 1-D along `axis`.
Status CheckParam(const Shape& x, const Shape& p, int64_t axis, const char* what) {
  const int64_t n = NumElements(p);
  if (n == 1 && p.size() <= 1) return Status();
  if (p.size() == 1 && axis >= 0 && axis < static_cast<int64_t>(x.size()) &&
      p[0] == x[static_cast<size_t>(axis)]) {
    return Status();
  }
  return InvalidArgumentError(std::string(what) + " " + ShapeToString(p) +
                              " is neither a scalar nor one value per element of the axis");
}

// ---- QuantizeLinear, DequantizeLinear ----

class QuantizeKernel : public Kernel {
 public:
  QuantizeKernel(bool dequantize, int64_t axis) : dequantize_(dequantize), axis_(axis) {}

  Status Infer(InferContext& ctx) const override {
    const Shape& x = ctx.input_shape(0);
    // The axis matters only for per-axis parameters; out of range it admits scalars only.
    auto normalized = NormalizeAxis(axis_, static_cast<int64_t>(x.size()));
    const int64_t axis = normalized.ok() ? *normalized : -1;
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(1), kFloatTypes, "scale"));
    OUTPOST_RETURN_IF_ERROR(CheckParam(x, ctx.input_shape(1), axis, "scale"));
    if (ctx.has_input(2))
      OUTPOST_RETURN_IF_ERROR(CheckParam(x, ctx.input_shape(2), axis, "zero point"));
    if (dequantize_) {
      OUTPOST_RETURN_IF_ERROR(
          CheckType(ctx.input_type(0), k8BitTypes | TypeBit(DataType::kInt32), "x"));
      if (ctx.has_input(2) && ctx.input_type(2) != ctx.input_type(0)) {
        return InvalidArgumentError("x_zero_point differs from x in element type");
      }
      ctx.SetOutput(0, ctx.input_type(1), x);
    } else {
      OUTPOST_RETURN_IF_ERROR(
          CheckType(ctx.input_type(0), kFloatTypes | TypeBit(DataType::kInt32), "x"));
      const DataType out = ctx.has_input(2) ? ctx.input_type(2) : DataType::kUint8;
      OUTPOST_RETURN_IF_ERROR(CheckType(out, k8BitTypes, "y_zero_point"));
      ctx.SetOutput(0, out, x);
    }
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& scale = ctx.input(1);
    const TensorRef* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    const TensorRef& y = ctx.output(0);
    const int64_t rank = static_cast<int64_t>(x.rank());
    const int64_t a = axis_ < 0 ? axis_ + rank : axis_;
    const bool per_axis = a >= 0 && a < rank;
    const size_t axis = per_axis ? static_cast<size_t>(a) : 0;
    const int64_t axis_dim = per_axis ? x.shape[axis] : 1;
    const int64_t inner = per_axis ? DimProduct(x.shape, axis + 1, x.rank()) : 1;
    if (ComputeRows(x, scale, zp, y, axis_dim, inner)) return Status();
    for (int64_t i = 0; i < x.count; ++i) {
      const double s = ReadDouble(scale, ParamIndex(scale, i, axis_dim, inner));
      const double z = zp != nullptr ? ReadDouble(*zp, ParamIndex(*zp, i, axis_dim, inner)) : 0.0;
      if (dequantize_) {
        const double v = (ReadDouble(x, i) - z) * s;
        OUTPOST_RETURN_IF_ERROR(Dispatch<kFloatTypes>(y.type, [&](auto tag) {
          using T = decltype(tag);
          y.mut<T>()[i] = T(static_cast<MathT<T>>(v));
          return Status();
        }));
      } else {
        // FLOAT inputs divide in float, as the definition's reference does: the rounding
        // of ties depends on it.
        const double q =
            x.type == DataType::kFp64
                ? ReadDouble(x, i) / s
                : static_cast<double>(static_cast<float>(ReadDouble(x, i)) / static_cast<float>(s));
        Write8(y, i, Saturate(std::nearbyint(q) + z, y.type));
      }
    }
    return Status();
  }

 private:
  // FLOAT to 8 bits or back with FLOAT scales, run by run (one scale and zero point each) on
  // the vectorised loops of qgemm.h; false for other types (the loop above then runs).
  bool ComputeRows(const TensorRef& x, const TensorRef& scale, const TensorRef* zp,
                   const TensorRef& y, int64_t axis_dim, int64_t inner) const {
    auto is8 = [](DataType t) { return t == DataType::kInt8 || t == DataType::kUint8; };
    const bool quantize = !dequantize_ && x.type == DataType::kFp32 && is8(y.type);
    const bool dequant = dequantize_ && is8(x.type) && y.type == DataType::kFp32;
    if ((!quantize && !dequant) || scale.type != DataType::kFp32) return false;
    const bool per_axis = scale.count != 1 || (zp != nullptr && zp->count != 1);
    const int64_t params = per_axis ? axis_dim : 1, run = per_axis ? inner : x.count;
    for (int64_t start = 0, r = 0; start < x.count; start += run, ++r) {
      const int64_t p = r % params;
      const float s = scale.get<float>()[scale.count == 1 ? 0 : p];
      const auto z =
          static_cast<int32_t>(zp == nullptr ? 0 : ReadInt64(*zp, zp->count == 1 ? 0 : p));
      if (quantize) {
        QuantizeRow(x.get<float>() + start, run, s, z, y.type == DataType::kInt8,
                    y.mut<uint8_t>() + start);
      } else {
        DequantizeRow(x.get<uint8_t>() + start, run, s, z, x.type == DataType::kInt8,
                      y.mut<float>() + start);
      }
    }
    return true;
  }

  bool dequantize_;
  int64_t axis_;
};

template <bool kDequantize>
Result<std::unique_ptr<Kernel>> MakeQuantize(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 3));
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 1));
  OUTPOST_ASSIGN_OR_RETURN(int64_t saturate, ctx.Int("saturate", 1));
  if (saturate != 1) return UnimplementedError("attribute \"saturate\" 0 is not supported");
  OUTPOST_ASSIGN_OR_RETURN(int64_t block, ctx.Int("block_size", 0));
  if (block != 0) return UnimplementedError("attribute \"block_size\" is not supported");
  if (ctx.Has("output_dtype"))
    return UnimplementedError("attribute \"output_dtype\" is not supported");
  return std::unique_ptr<Kernel>(new QuantizeKernel(kDequantize, axis));
}

// ---- DynamicQuantizeLinear ----

Status InferDynamicQuantize(InferContext& ctx) {
  if (ctx.input_type(0) != DataType::kFp32) {
    return UnimplementedError("DynamicQuantizeLinear supports FLOAT only");
  }
  ctx.SetOutput(0, DataType::kUint8, ctx.input_shape(0));
  ctx.SetOutput(1, DataType::kFp32, {});
  ctx.SetOutput(2, DataType::kUint8, {});
  return Status();
}

Status ComputeDynamicQuantize(ComputeContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const float* xv = x.get<float>();
  float lo = 0, hi = 0;
  for (int64_t i = 0; i < x.count; ++i) {
    lo = std::min(lo, xv[i]);
    hi = std::max(hi, xv[i]);
  }
  const float scale = (hi - lo) / 255.0f;
  const int64_t zp = scale == 0 ? 0 : Saturate(std::nearbyint(0.0 - lo / scale), DataType::kUint8);
  uint8_t* y = ctx.output(0).mut<uint8_t>();
  for (int64_t i = 0; i < x.count; ++i) {
    y[i] = static_cast<uint8_t>(
        scale == 0
            ? 0
            : Saturate(std::nearbyint(xv[i] / scale) + static_cast<double>(zp), DataType::kUint8));
  }
  if (ctx.has_output(1)) ctx.output(1).mut<float>()[0] = scale;
  if (ctx.has_output(2)) ctx.output(2).mut<uint8_t>()[0] = static_cast<uint8_t>(zp);
  return Status();
}

Result<std::unique_ptr<Kernel>> MakeDynamicQuantize(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  return std::unique_ptr<Kernel>(
      new FunctionKernel(&InferDynamicQuantize, &ComputeDynamicQuantize));
}

// ---- MatMulInteger, QLinearMatMul ----

// Input positions of a quantized product's operands and parameters.
struct QuantInputs {
  size_t a = 0, a_scale = 0, a_zp = 0, b = 0, b_scale = 0, b_zp = 0, y_scale = 0, y_zp = 0;
  bool requantize = false;  // QLinear*: scales and an 8-bit output
};

inline constexpr QuantInputs kMatMulInteger{0, 99, 2, 1, 99, 3, 99, 99, false};
inline constexpr QuantInputs kQLinear{0, 1, 2, 3, 4, 5, 6, 7, true};

class QMatMulKernel : public Kernel {
 public:
  explicit QMatMulKernel(QuantInputs in) : in_(in) {}

  // A constant 2-D INT8 B: packed once for the integer GEMM, with its column sums.
  void PackConstantB(const Tensor& b) {
    if (b.type() != DataType::kInt8 || b.shape().size() != 2) return;
    const int64_t k = b.shape()[0], n = b.shape()[1];
    if (k > kQGemmMaxK) return;
    const int8_t* bv = b.values<int8_t>().data();
    packed_b_.resize(QGemmPackedBBytes(n, k));
    QGemmPackB(n, k, bv, packed_b_.data());
    colsum_.assign(static_cast<size_t>(n), 0);
    for (int64_t p = 0; p < k; ++p) {
      for (int64_t j = 0; j < n; ++j) colsum_[static_cast<size_t>(j)] += bv[p * n + j];
    }
  }

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(in_.a), k8BitTypes, "A"));
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(in_.b), k8BitTypes, "B"));
    const Shape& a = ctx.input_shape(in_.a);
    const Shape& b = ctx.input_shape(in_.b);
    if (a.size() < 2 || b.size() < 2 || a.back() != b[b.size() - 2]) {
      return InvalidArgumentError("A " + ShapeToString(a) + " and B " + ShapeToString(b) +
                                  " cannot be multiplied");
    }
    OUTPOST_ASSIGN_OR_RETURN(Shape batch, BroadcastShapes(std::span(a).first(a.size() - 2),
                                                          std::span(b).first(b.size() - 2)));
    batch.push_back(a[a.size() - 2]);
    batch.push_back(b.back());
    if (in_.requantize) {
      const DataType out = ctx.has_input(in_.y_zp) ? ctx.input_type(in_.y_zp) : DataType::kUint8;
      OUTPOST_RETURN_IF_ERROR(CheckType(out, k8BitTypes, "y_zero_point"));
      ctx.SetOutput(0, out, std::move(batch));
    } else {
      ctx.SetOutput(0, DataType::kInt32, std::move(batch));
    }
    if (Fast(ctx.input_type(in_.a), ctx.input_type(in_.b), a.back())) {
      const int64_t m = a[a.size() - 2], k = a.back(), n = b.back();
      ctx.RequestScratch(QGemmScratchBytes(m, n, k) + static_cast<size_t>(m * n) * 4 +
                         static_cast<size_t>(m + n) * 8 + 256);
    }
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& a = ctx.input(in_.a);
    const TensorRef& b = ctx.input(in_.b);
    if (Fast(a.type, b.type, a.shape.back())) return ComputeFast(ctx);
    const TensorRef& y = ctx.output(0);
    const int64_t m = a.shape[a.rank() - 2], k = a.shape.back(), n = b.shape.back();
    const TensorRef* azp = ctx.has_input(in_.a_zp) ? &ctx.input(in_.a_zp) : nullptr;
    const TensorRef* bzp = ctx.has_input(in_.b_zp) ? &ctx.input(in_.b_zp) : nullptr;
    double scale = 1, yzp = 0;
    if (in_.requantize) {
      scale = ReadDouble(ctx.input(in_.a_scale), 0) * ReadDouble(ctx.input(in_.b_scale), 0) /
              ReadDouble(ctx.input(in_.y_scale), 0);
      yzp = ctx.has_input(in_.y_zp) ? ReadDouble(ctx.input(in_.y_zp), 0) : 0.0;
    }
    const std::span<const int64_t> a_batch = a.shape.first(a.rank() - 2);
    const std::span<const int64_t> b_batch = b.shape.first(b.rank() - 2);
    const std::span<const int64_t> y_batch = y.shape.first(y.rank() - 2);
    int64_t index = 0;
    ForEachBroadcast<2>(
        y_batch, {a_batch, b_batch},
        [&](int64_t, const std::array<int64_t, 2>& offs, int64_t count,
            const std::array<int64_t, 2>& steps) {
          for (int64_t r = 0; r < count; ++r, ++index) {
            const int64_t ao = (offs[0] + r * steps[0]) * m * k;
            const int64_t bo = (offs[1] + r * steps[1]) * k * n;
            for (int64_t i = 0; i < m; ++i) {
              const int64_t za = azp == nullptr ? 0 : ReadInt64(*azp, azp->count == 1 ? 0 : i);
              for (int64_t j = 0; j < n; ++j) {
                const int64_t zb = bzp == nullptr ? 0 : ReadInt64(*bzp, bzp->count == 1 ? 0 : j);
                int64_t acc = 0;
                for (int64_t p = 0; p < k; ++p) {
                  acc += (ReadInt64(a, ao + i * k + p) - za) * (ReadInt64(b, bo + p * n + j) - zb);
                }
                const int64_t at = (index * m + i) * n + j;
                if (in_.requantize) {
                  Write8(y, at,
                         Saturate(std::nearbyint(static_cast<double>(acc) * scale) + yzp, y.type));
                } else {
                  y.mut<int32_t>()[at] = static_cast<int32_t>(acc);
                }
              }
            }
          }
        });
    return Status();
  }

 private:
  // UINT8 x INT8 runs on the integer GEMM (qgemm.h; VNNI where the CPU has it).
  static bool Fast(DataType a, DataType b, int64_t k) {
    return a == DataType::kUint8 && b == DataType::kInt8 && k <= kQGemmMaxK;
  }

  // sum (a - za)(b - zb) = sum ab - zb * rowsum(a) - za * colsum(b) + k * za * zb, with the
  // raw sum from the integer GEMM and the corrections in 64 bits.
  Status ComputeFast(ComputeContext& ctx) const {
    const TensorRef& a = ctx.input(in_.a);
    const TensorRef& b = ctx.input(in_.b);
    const TensorRef& y = ctx.output(0);
    const int64_t m = a.shape[a.rank() - 2], k = a.shape.back(), n = b.shape.back();
    const TensorRef* azp = ctx.has_input(in_.a_zp) ? &ctx.input(in_.a_zp) : nullptr;
    const TensorRef* bzp = ctx.has_input(in_.b_zp) ? &ctx.input(in_.b_zp) : nullptr;
    double scale = 1, yzp = 0;
    if (in_.requantize) {
      scale = ReadDouble(ctx.input(in_.a_scale), 0) * ReadDouble(ctx.input(in_.b_scale), 0) /
              ReadDouble(ctx.input(in_.y_scale), 0);
      yzp = ctx.has_input(in_.y_zp) ? ReadDouble(ctx.input(in_.y_zp), 0) : 0.0;
    }
    std::byte* base = ctx.scratch().data();
    auto* raw = reinterpret_cast<int32_t*>(base);
    auto* colsum = reinterpret_cast<int64_t*>(base + (m * n * 4 + 63) / 64 * 64);
    auto* rowsum = colsum + n;
    void* gemm_scratch = base + (m * n * 4 + 63) / 64 * 64 + ((m + n) * 8 + 63) / 64 * 64;
    const auto* av = a.get<uint8_t>();
    const auto* bv = b.get<int8_t>();
    int64_t index = 0;
    ForEachBroadcast<2>(
        y.shape.first(y.rank() - 2), {a.shape.first(a.rank() - 2), b.shape.first(b.rank() - 2)},
        [&](int64_t, const std::array<int64_t, 2>& offs, int64_t count,
            const std::array<int64_t, 2>& steps) {
          for (int64_t r = 0; r < count; ++r, ++index) {
            const uint8_t* ab = av + (offs[0] + r * steps[0]) * m * k;
            const int8_t* bb = bv + (offs[1] + r * steps[1]) * k * n;
            if (!packed_b_.empty()) {
              QGemmU8S8Packed(m, n, k, ab, packed_b_.data(), raw, n, gemm_scratch);
              std::copy(colsum_.begin(), colsum_.end(), colsum);
            } else {
              QGemmU8S8(m, n, k, ab, bb, raw, n, gemm_scratch);
              std::fill_n(colsum, n, int64_t{0});
              for (int64_t p = 0; p < k; ++p) {
                for (int64_t j = 0; j < n; ++j) colsum[j] += bb[p * n + j];
              }
            }
            for (int64_t i = 0; i < m; ++i) {
              int64_t s = 0;
              for (int64_t p = 0; p < k; ++p) s += ab[i * k + p];
              rowsum[i] = s;
            }
            for (int64_t i = 0; i < m; ++i) {
              const int64_t za = azp == nullptr ? 0 : ReadInt64(*azp, azp->count == 1 ? 0 : i);
              for (int64_t j = 0; j < n; ++j) {
                const int64_t zb = bzp == nullptr ? 0 : ReadInt64(*bzp, bzp->count == 1 ? 0 : j);
                const int64_t acc = raw[i * n + j] - zb * rowsum[i] - za * colsum[j] + k * za * zb;
                const int64_t at = (index * m + i) * n + j;
                if (in_.requantize) {
                  Write8(y, at,
                         Saturate(std::nearbyint(static_cast<double>(acc) * scale) + yzp, y.type));
                } else {
                  y.mut<int32_t>()[at] = static_cast<int32_t>(acc);
                }
              }
            }
          }
        });
    return Status();
  }

  QuantInputs in_;
  std::vector<int8_t> packed_b_;  // constant B only
  std::vector<int64_t> colsum_;
};

Result<std::unique_ptr<Kernel>> MakeMatMulInteger(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 4));
  auto kernel = std::make_unique<QMatMulKernel>(kMatMulInteger);
  if (const Tensor* b = ctx.constant_input(kMatMulInteger.b)) kernel->PackConstantB(*b);
  return std::unique_ptr<Kernel>(std::move(kernel));
}

Result<std::unique_ptr<Kernel>> MakeQLinearMatMul(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(8, 8));
  auto kernel = std::make_unique<QMatMulKernel>(kQLinear);
  if (const Tensor* b = ctx.constant_input(kQLinear.b)) kernel->PackConstantB(*b);
  return std::unique_ptr<Kernel>(std::move(kernel));
}

// ---- ConvInteger, QLinearConv ----

struct QConvAttrs {
  std::vector<int64_t> kernel, strides, dilations, pads;
  std::string auto_pad = "NOTSET";
  int64_t group = 1;
};

inline constexpr QuantInputs kConvInteger{0, 99, 2, 1, 99, 3, 99, 99, false};
inline constexpr size_t kQLinearConvBias = 8;

// A convolution's resolved kernel size, strides, dilations, leading pads and output size.
struct QConvGeometry {
  std::array<int64_t, kMaxRank> kernel{}, strides{}, dilations{}, pad_begin{}, out{};
};

class QConvKernel : public Kernel {
 public:
  QConvKernel(QuantInputs in, QConvAttrs a) : in_(in), a_(std::move(a)) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(in_.a), k8BitTypes, "x"));
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(in_.b), k8BitTypes, "w"));
    const Shape& x = ctx.input_shape(in_.a);
    const Shape& w = ctx.input_shape(in_.b);
    if (x.size() < 3 || w.size() != x.size() || x.size() - 2 > kMaxRank) {
      return InvalidArgumentError("x and w must have the same rank, at least 3");
    }
    if (a_.group < 1 || x[1] % a_.group != 0 || w[0] % a_.group != 0 || w[1] != x[1] / a_.group) {
      return InvalidArgumentError("channels do not match the weights and group");
    }
    Geometry g;
    OUTPOST_RETURN_IF_ERROR(Resolve(x, w, g));
    Shape out{x[0], w[0]};
    out.insert(out.end(), g.out.begin(), g.out.begin() + static_cast<int64_t>(x.size() - 2));
    OUTPOST_RETURN_IF_ERROR(CheckedElements(out).status());
    if (in_.requantize) {
      const DataType t = ctx.has_input(in_.y_zp) ? ctx.input_type(in_.y_zp) : DataType::kUint8;
      OUTPOST_RETURN_IF_ERROR(CheckType(t, k8BitTypes, "y_zero_point"));
      ctx.SetOutput(0, t, std::move(out));
    } else {
      ctx.SetOutput(0, DataType::kInt32, std::move(out));
    }
    if (Fast(ctx.input_type(in_.a), ctx.input_type(in_.b), x, w)) {
      const int64_t p = g.out[0] * g.out[1], kk = w[1] * w[2] * w[3], mg = w[0] / a_.group;
      ctx.RequestScratch(static_cast<size_t>(p * kk + kk * mg + p * mg * 4 + (p + mg) * 8) +
                         QGemmScratchBytes(p, mg, kk) + static_cast<size_t>(mg * 24) +
                         static_cast<size_t>(w[1] * x[2] * x[3]) + 640);
    }
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override;

 private:
  using Geometry = QConvGeometry;

  // UINT8 x and INT8 w over two spatial dimensions run as an integer GEMM (qgemm.h).
  static bool Fast(DataType xt, DataType wt, std::span<const int64_t> x,
                   std::span<const int64_t> w) {
    return (xt == DataType::kUint8 || xt == DataType::kInt8) && wt == DataType::kInt8 &&
           x.size() == 4 && w[1] * w[2] * w[3] <= kQGemmMaxK;
  }
  Status ComputeFast(ComputeContext& ctx, const Geometry& g) const;

  Status Resolve(std::span<const int64_t> x, std::span<const int64_t> w, Geometry& g) const {
    const size_t k = x.size() - 2;
    auto fits = [k](const std::vector<int64_t>& v, size_t n) {
      return v.empty() || v.size() == n * k;
    };
    if (!fits(a_.kernel, 1) || !fits(a_.strides, 1) || !fits(a_.dilations, 1) ||
        !fits(a_.pads, 2)) {
      return InvalidArgumentError("kernel_shape, strides, dilations or pads do not match the rank");
    }
    for (size_t i = 0; i < k; ++i) {
      g.kernel[i] = w[2 + i];
      g.strides[i] = a_.strides.empty() ? 1 : a_.strides[i];
      g.dilations[i] = a_.dilations.empty() ? 1 : a_.dilations[i];
      int64_t pb = a_.pads.empty() ? 0 : a_.pads[i], pe = a_.pads.empty() ? 0 : a_.pads[k + i];
      if (g.strides[i] < 1 || g.dilations[i] < 1 || pb < 0 || pe < 0 || g.strides[i] > (1 << 20) ||
          g.dilations[i] > (1 << 20) || pb > (1 << 20) || pe > (1 << 20)) {
        return InvalidArgumentError("stride, dilation or pad out of range");
      }
      const int64_t span = g.dilations[i] * (g.kernel[i] - 1) + 1;
      if (a_.auto_pad == "SAME_UPPER" || a_.auto_pad == "SAME_LOWER") {
        const int64_t out = (x[2 + i] + g.strides[i] - 1) / g.strides[i];
        const int64_t total = std::max<int64_t>(0, (out - 1) * g.strides[i] + span - x[2 + i]);
        pb = a_.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
        pe = total - pb;
      } else if (a_.auto_pad == "VALID") {
        pb = pe = 0;
      }
      const int64_t room = x[2 + i] + pb + pe - span;
      if (room < 0) return InvalidArgumentError("the kernel is larger than the padded input");
      g.pad_begin[i] = pb;
      g.out[i] = room / g.strides[i] + 1;
    }
    return Status();
  }

  QuantInputs in_;
  QConvAttrs a_;
};

Status QConvKernel::Compute(ComputeContext& ctx) const {
  const TensorRef& x = ctx.input(in_.a);
  const TensorRef& w = ctx.input(in_.b);
  const TensorRef& y = ctx.output(0);
  Geometry g;
  OUTPOST_RETURN_IF_ERROR(Resolve(x.shape, w.shape, g));
  const size_t k = x.rank() - 2;
  const int64_t n = x.shape[0], c = x.shape[1], m = w.shape[0];
  const int64_t cg = c / a_.group, mg = m / a_.group;
  const int64_t in_size = DimProduct(x.shape, 2, x.rank());
  const int64_t out_size = DimProduct(y.shape, 2, y.rank());
  const int64_t kernel_size = DimProduct(w.shape, 2, w.rank());
  if (Fast(x.type, w.type, x.shape, w.shape)) return ComputeFast(ctx, g);
  const int64_t xz = ctx.has_input(in_.a_zp) ? ReadInt64(ctx.input(in_.a_zp), 0) : 0;
  const TensorRef* wzp = ctx.has_input(in_.b_zp) ? &ctx.input(in_.b_zp) : nullptr;
  const TensorRef* bias =
      in_.requantize && ctx.has_input(kQLinearConvBias) ? &ctx.input(kQLinearConvBias) : nullptr;
  std::array<int64_t, kMaxRank> opos{}, kpos{};
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t oc = 0; oc < m; ++oc) {
      const int64_t grp = oc / mg;
      const int64_t wz = wzp == nullptr ? 0 : ReadInt64(*wzp, wzp->count == 1 ? 0 : oc);
      double scale = 1, yzp = 0;
      if (in_.requantize) {
        const TensorRef& ws = ctx.input(in_.b_scale);
        scale = ReadDouble(ctx.input(in_.a_scale), 0) * ReadDouble(ws, ws.count == 1 ? 0 : oc) /
                ReadDouble(ctx.input(in_.y_scale), 0);
        yzp = ctx.has_input(in_.y_zp) ? ReadDouble(ctx.input(in_.y_zp), 0) : 0.0;
      }
      std::fill_n(opos.begin(), k, 0);
      for (int64_t o = 0; o < out_size; ++o) {
        int64_t acc = bias != nullptr ? ReadInt64(*bias, oc) : 0;
        for (int64_t ch = 0; ch < cg; ++ch) {
          const int64_t plane = (b * c + grp * cg + ch) * in_size;
          const int64_t wbase = (oc * cg + ch) * kernel_size;
          std::fill_n(kpos.begin(), k, 0);
          for (int64_t ki = 0; ki < kernel_size; ++ki) {
            int64_t off = 0;
            bool inside = true;
            for (size_t d = 0; d < k; ++d) {
              const int64_t pos =
                  opos[d] * g.strides[d] - g.pad_begin[d] + kpos[d] * g.dilations[d];
              inside = inside && pos >= 0 && pos < x.shape[2 + d];
              off = off * x.shape[2 + d] + pos;
            }
            // Padding holds the zero point, so it contributes nothing.
            if (inside) acc += (ReadInt64(x, plane + off) - xz) * (ReadInt64(w, wbase + ki) - wz);
            for (size_t d = k; d-- > 0;) {
              if (++kpos[d] < g.kernel[d]) break;
              kpos[d] = 0;
            }
          }
        }
        const int64_t at = (b * m + oc) * out_size + o;
        if (in_.requantize) {
          Write8(y, at, Saturate(std::nearbyint(static_cast<double>(acc) * scale) + yzp, y.type));
        } else {
          y.mut<int32_t>()[at] = static_cast<int32_t>(acc);
        }
        for (size_t d = k; d-- > 0;) {
          if (++opos[d] < y.shape[2 + d]) break;
          opos[d] = 0;
        }
      }
    }
  }
  return Status();
}

// Per image and group: the transposed im2col of x (positions x K, padding holding x's zero
// point) times the transposed weights (K x M) on the integer GEMM; zero points are corrections
// in 64 bits (as in QMatMulKernel), then bias and requantisation.
Status QConvKernel::ComputeFast(ComputeContext& ctx, const Geometry& g) const {
  const TensorRef& x = ctx.input(in_.a);
  const TensorRef& w = ctx.input(in_.b);
  const TensorRef& y = ctx.output(0);
  const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3];
  const int64_t m = w.shape[0], kh = w.shape[2], kw = w.shape[3];
  const int64_t cg = c / a_.group, mg = m / a_.group, kk = cg * kh * kw;
  const int64_t oh = g.out[0], ow = g.out[1], p = oh * ow;
  // INT8 x runs as UINT8 x + 128 with its zero point + 128: x - x_zero_point is unchanged.
  const bool flip = x.type == DataType::kInt8;
  const int64_t xz =
      (ctx.has_input(in_.a_zp) ? ReadInt64(ctx.input(in_.a_zp), 0) : 0) + (flip ? 128 : 0);
  const TensorRef* wzp = ctx.has_input(in_.b_zp) ? &ctx.input(in_.b_zp) : nullptr;
  const TensorRef* bias =
      in_.requantize && ctx.has_input(kQLinearConvBias) ? &ctx.input(kQLinearConvBias) : nullptr;
  std::byte* base = ctx.scratch().data();
  auto align = [](int64_t bytes) { return (bytes + 63) / 64 * 64; };
  auto* cols = reinterpret_cast<uint8_t*>(base);
  auto* wt = reinterpret_cast<int8_t*>(base + align(p * kk));
  auto* raw = reinterpret_cast<int32_t*>(base + align(p * kk) + align(kk * mg));
  auto* rowsum =
      reinterpret_cast<int64_t*>(base + align(p * kk) + align(kk * mg) + align(p * mg * 4));
  int64_t* colsum = rowsum + p;
  void* gemm = base + align(p * kk) + align(kk * mg) + align(p * mg * 4) + align((p + mg) * 8);
  auto* params = reinterpret_cast<double*>(
      static_cast<std::byte*>(gemm) + align(static_cast<int64_t>(QGemmScratchBytes(p, mg, kk))));
  auto* xt = reinterpret_cast<uint8_t*>(params) + align(mg * 24);
  const auto* xv = x.get<uint8_t>();
  const auto* wv = w.get<int8_t>();
  const QIm2ColShape shape{cg,
                           h,
                           wd,
                           kh,
                           kw,
                           oh,
                           ow,
                           g.strides[0],
                           g.strides[1],
                           g.dilations[0],
                           g.dilations[1],
                           g.pad_begin[0],
                           g.pad_begin[1]};
  for (int64_t grp = 0; grp < a_.group; ++grp) {
    // wt[(ky, kx, ch)][oc], im2col's order, and its column sums: once per group.
    for (int64_t oc = 0; oc < mg; ++oc) {
      const int8_t* src = wv + (grp * mg + oc) * kk;
      int64_t sum = 0;
      for (int64_t ch = 0; ch < cg; ++ch) {
        for (int64_t kyx = 0; kyx < kh * kw; ++kyx) {
          const int8_t v = src[ch * kh * kw + kyx];
          wt[(kyx * cg + ch) * mg + oc] = v;
          sum += v;
        }
      }
      colsum[oc] = sum;
    }
    for (int64_t b = 0; b < n; ++b) {
      QIm2Col(xv + (b * c + grp * cg) * h * wd, shape, static_cast<uint8_t>(xz), flip, xt, cols,
              rowsum);
      QGemmU8S8(p, mg, kk, cols, wt, raw, mg, gemm);
      for (int64_t oc = 0; oc < mg; ++oc) {
        const int64_t o = grp * mg + oc;
        const int64_t wz = wzp == nullptr ? 0 : ReadInt64(*wzp, wzp->count == 1 ? 0 : o);
        const int64_t b0 = bias != nullptr ? ReadInt64(*bias, o) : 0;
        const int64_t acc0 = b0 - xz * colsum[oc] + kk * xz * wz;
        if (!in_.requantize) {
          const int64_t at = (b * m + o) * p;
          for (int64_t pos = 0; pos < p; ++pos) {
            y.mut<int32_t>()[at + pos] =
                static_cast<int32_t>(acc0 + raw[pos * mg + oc] - wz * rowsum[pos]);
          }
          continue;
        }
        const TensorRef& ws = ctx.input(in_.b_scale);
        params[oc] = static_cast<double>(acc0);
        params[mg + oc] = static_cast<double>(wz);
        params[2 * mg + oc] = ReadDouble(ctx.input(in_.a_scale), 0) *
                              ReadDouble(ws, ws.count == 1 ? 0 : o) /
                              ReadDouble(ctx.input(in_.y_scale), 0);
      }
      if (!in_.requantize) continue;
      const QRequantizeParams q{params, params + mg, params + 2 * mg,
                                ctx.has_input(in_.y_zp) ? ReadDouble(ctx.input(in_.y_zp), 0) : 0.0};
      if (y.type == DataType::kInt8) {
        QRequantize(raw, mg, p, rowsum, q, y.mut<int8_t>() + (b * m + grp * mg) * p);
      } else {
        QRequantize(raw, mg, p, rowsum, q, y.mut<uint8_t>() + (b * m + grp * mg) * p);
      }
    }
  }
  return Status();
}

Result<QConvAttrs> ReadQConv(const KernelBuildContext& ctx) {
  QConvAttrs a;
  OUTPOST_ASSIGN_OR_RETURN(a.kernel, ctx.Ints("kernel_shape"));
  OUTPOST_ASSIGN_OR_RETURN(a.strides, ctx.Ints("strides"));
  OUTPOST_ASSIGN_OR_RETURN(a.dilations, ctx.Ints("dilations"));
  OUTPOST_ASSIGN_OR_RETURN(a.pads, ctx.Ints("pads"));
  OUTPOST_ASSIGN_OR_RETURN(a.auto_pad, ctx.String("auto_pad", "NOTSET"));
  OUTPOST_ASSIGN_OR_RETURN(a.group, ctx.Int("group", 1));
  if (a.auto_pad != "NOTSET" && a.auto_pad != "VALID" && a.auto_pad != "SAME_UPPER" &&
      a.auto_pad != "SAME_LOWER") {
    return InvalidArgumentError("attribute \"auto_pad\" has unknown value \"" + a.auto_pad + "\"");
  }
  return a;
}

Result<std::unique_ptr<Kernel>> MakeConvInteger(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 4));
  OUTPOST_ASSIGN_OR_RETURN(QConvAttrs a, ReadQConv(ctx));
  return std::unique_ptr<Kernel>(new QConvKernel(kConvInteger, std::move(a)));
}

Result<std::unique_ptr<Kernel>> MakeQLinearConv(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(8, 9));
  OUTPOST_ASSIGN_OR_RETURN(QConvAttrs a, ReadQConv(ctx));
  return std::unique_ptr<Kernel>(new QConvKernel(kQLinear, std::move(a)));
}

}  // namespace

void RegisterQuantKernels(KernelRegistry& r) {
  r.Add({"", "QuantizeLinear", 10, 1000, &MakeQuantize<false>});
  r.Add({"", "DequantizeLinear", 10, 1000, &MakeQuantize<true>});
  r.Add({"", "DynamicQuantizeLinear", 11, 1000, &MakeDynamicQuantize});
  r.Add({"", "MatMulInteger", 10, 1000, &MakeMatMulInteger});
  r.Add({"", "QLinearMatMul", 10, 1000, &MakeQLinearMatMul});
  r.Add({"", "ConvInteger", 10, 1000, &MakeConvInteger});
  r.Add({"", "QLinearConv", 10, 1000, &MakeQLinearConv});
}

}  // namespace outpost::engine::onnx
