// Elementwise operators of one input: math, activations, predicates; plus Clip, Identity
// and Dropout (inference mode).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "engine/onnx/kernel_util.h"
#include "engine/onnx/vecmath.h"

namespace outpost::engine::onnx {
namespace {

enum class UnaryOp {
  kAbs,
  kNeg,
  kSqrt,
  kExp,
  kLog,
  kRelu,
  kLeakyRelu,
  kSigmoid,
  kTanh,
  kErf,
  kReciprocal,
  kFloor,
  kCeil,
  kRound,
  kSign,
  kElu,
  kSelu,
  kCelu,
  kHardSigmoid,
  kHardSwish,
  kSoftplus,
  kSoftsign,
  kThresholdedRelu,
  kShrink,
  kIsNaN,
  kIsInf,
  kNot,
  kSin,
  kCos,
  kTan,
  kAsin,
  kAcos,
  kAtan,
  kSinh,
  kCosh,
  kAsinh,
  kAcosh,
  kAtanh,
};

struct UnaryParams {
  float alpha = 0;
  float beta = 0;
  float gamma = 0;
  bool detect_negative = true;
  bool detect_positive = true;
};

// Negation without signed-overflow UB (two's complement wrap for the most negative value).
template <typename T>
T WrapNeg(T v) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(0) - static_cast<U>(v));
  } else if constexpr (std::is_unsigned_v<T>) {
    return static_cast<T>(0 - v);
  } else {
    return -v;
  }
}

template <typename T, typename F>
void Map(const TensorRef& in, const TensorRef& out, F f) {
  using C = MathT<T>;
  const T* x = in.get<T>();
  T* y = out.mut<T>();
  const int64_t n = in.count;
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(f(static_cast<C>(x[i])));
}

// Operators defined for every numeric type (and Shrink, computed in double); false when `op`
// is not one of them.
template <typename T>
bool MapAnyType(UnaryOp op, const UnaryParams& p, const TensorRef& in, const TensorRef& out) {
  using C = MathT<T>;
  switch (op) {
    case UnaryOp::kAbs:
      if constexpr (std::is_unsigned_v<T> || std::is_same_v<T, bool>) {
        Map<T>(in, out, [](C v) { return v; });
      } else {
        Map<T>(in, out, [](C v) { return IsNeg(v) ? WrapNeg(v) : v; });
      }
      return true;
    case UnaryOp::kNeg:
      Map<T>(in, out, [](C v) { return WrapNeg(v); });
      return true;
    case UnaryOp::kSign:
      Map<T>(in, out, [](C v) { return v > C(0) ? C(1) : (IsNeg(v) ? WrapNeg(C(1)) : C(0)); });
      return true;
    case UnaryOp::kRelu:
      // NaN stays NaN, as in ONNX Runtime.
      Map<T>(in, out, [](C v) { return IsNeg(v) ? C(0) : v; });
      return true;
    case UnaryOp::kShrink: {
      const double lambd = p.alpha, bias = p.beta;
      Map<T>(in, out, [=](C v) {
        const double d = static_cast<double>(v);
        return static_cast<C>(d < -lambd ? d + bias : (d > lambd ? d - bias : 0.0));
      });
      return true;
    }
    default:
      return false;
  }
}

// y = f(x) four lanes at a time (the width every x86-64 CPU has: wider vectors without AVX
// enabled go through memory), then the tail one by one; f takes a float or a vector of four.
// For the piecewise activations: written as a scalar select, GCC at -O2 keeps a branch per
// element, which the signs of real activations mispredict about half the time (Relu took
// 4 ms for a 64x111x111 tensor, LeakyRelu and Abs 8 ms; now 0.2).
template <typename F>
void Lanes4(const float* x, float* y, int64_t n, F f) {
  using V4 = float __attribute__((vector_size(16)));
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    V4 v;
    std::memcpy(&v, x + i, sizeof v);
    v = f(v);
    std::memcpy(y + i, &v, sizeof v);
  }
  for (; i < n; ++i) y[i] = f(x[i]);
}

// The vectorised forms of the common activations, for float tensors; false when `op` has
// none.
bool MapVectorised(UnaryOp op, const UnaryParams& p, const TensorRef& in, const TensorRef& out) {
  const float* x = in.get<float>();
  float* y = out.mut<float>();
  // NaN compares false in each: Relu and Abs keep it, LeakyRelu scales it (still NaN).
  switch (op) {
    case UnaryOp::kRelu:
      Lanes4(x, y, in.count, [](auto v) {
        const decltype(v) zero{};
        return v < zero ? zero : v;
      });
      return true;
    case UnaryOp::kLeakyRelu:
      Lanes4(x, y, in.count, [alpha = p.alpha](auto v) {
        const decltype(v) zero{};
        return v >= zero ? v : v * alpha;
      });
      return true;
    case UnaryOp::kAbs:
      Lanes4(x, y, in.count, [](auto v) {
        const decltype(v) zero{};
        return v < zero ? -v : v;
      });
      return true;
    case UnaryOp::kExp:
      ExpF(in.get<float>(), out.mut<float>(), in.count);
      return true;
    case UnaryOp::kSigmoid:
      SigmoidF(in.get<float>(), out.mut<float>(), in.count);
      return true;
    case UnaryOp::kTanh:
      TanhF(in.get<float>(), out.mut<float>(), in.count);
      return true;
    case UnaryOp::kErf:
      ErfF(in.get<float>(), out.mut<float>(), in.count);
      return true;
    default:
      return false;
  }
}

// IsNaN and IsInf: a BOOL output per element of a floating-point input.
template <typename T>
void ComputePredicate(UnaryOp op, const UnaryParams& p, const TensorRef& in, const TensorRef& out) {
  using C = MathT<T>;
  const T* x = in.get<T>();
  bool* y = out.mut<bool>();
  if (op == UnaryOp::kIsNaN) {
    for (int64_t i = 0; i < in.count; ++i) y[i] = std::isnan(static_cast<C>(x[i]));
    return;
  }
  for (int64_t i = 0; i < in.count; ++i) {
    const C v = static_cast<C>(x[i]);
    y[i] = std::isinf(v) && ((v > 0 && p.detect_positive) || (v < 0 && p.detect_negative));
  }
}

// The operators defined for floating-point types only, computed in MathT<T>.
template <typename T>
Status MapFloat(UnaryOp op, const UnaryParams& p, const TensorRef& in, const TensorRef& out) {
  using C = MathT<T>;
  const C alpha = static_cast<C>(p.alpha);
  const C beta = static_cast<C>(p.beta);
  const C gamma = static_cast<C>(p.gamma);
  switch (op) {
    case UnaryOp::kSqrt:
      Map<T>(in, out, [](C v) { return std::sqrt(v); });
      break;
    case UnaryOp::kExp:
      Map<T>(in, out, [](C v) { return std::exp(v); });
      break;
    case UnaryOp::kLog:
      Map<T>(in, out, [](C v) { return std::log(v); });
      break;
    case UnaryOp::kLeakyRelu:
      Map<T>(in, out, [=](C v) { return v >= C(0) ? v : alpha * v; });
      break;
    case UnaryOp::kSigmoid:
      Map<T>(in, out, [](C v) {
        // Split by sign so that exp never overflows.
        if (v >= C(0)) return C(1) / (C(1) + std::exp(-v));
        const C e = std::exp(v);
        return e / (C(1) + e);
      });
      break;
    case UnaryOp::kTanh:
      Map<T>(in, out, [](C v) { return std::tanh(v); });
      break;
    case UnaryOp::kErf:
      Map<T>(in, out, [](C v) { return std::erf(v); });
      break;
    case UnaryOp::kReciprocal:
      Map<T>(in, out, [](C v) { return C(1) / v; });
      break;
    case UnaryOp::kFloor:
      Map<T>(in, out, [](C v) { return std::floor(v); });
      break;
    case UnaryOp::kCeil:
      Map<T>(in, out, [](C v) { return std::ceil(v); });
      break;
    case UnaryOp::kRound:
      Map<T>(in, out, [](C v) { return std::nearbyint(v); });
      break;
    case UnaryOp::kElu:
      Map<T>(in, out, [=](C v) { return v >= C(0) ? v : alpha * (std::exp(v) - C(1)); });
      break;
    case UnaryOp::kSelu:
      Map<T>(in, out,
             [=](C v) { return v > C(0) ? gamma * v : gamma * (alpha * std::exp(v) - alpha); });
      break;
    case UnaryOp::kCelu:
      Map<T>(in, out, [=](C v) {
        return std::max(C(0), v) + std::min(C(0), alpha * (std::exp(v / alpha) - C(1)));
      });
      break;
    case UnaryOp::kHardSigmoid:
      Map<T>(in, out, [=](C v) { return std::max(C(0), std::min(C(1), alpha * v + beta)); });
      break;
    case UnaryOp::kHardSwish:
      Map<T>(in, out, [](C v) { return v * std::max(C(0), std::min(C(1), v / C(6) + C(0.5))); });
      break;
    case UnaryOp::kSoftplus:
      Map<T>(in, out,
             [](C v) { return v > C(0) ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v)); });
      break;
    case UnaryOp::kSoftsign:
      Map<T>(in, out, [](C v) { return v / (C(1) + std::abs(v)); });
      break;
    case UnaryOp::kThresholdedRelu:
      Map<T>(in, out, [=](C v) { return v > alpha ? v : C(0); });
      break;
    case UnaryOp::kSin:
      Map<T>(in, out, [](C v) { return std::sin(v); });
      break;
    case UnaryOp::kCos:
      Map<T>(in, out, [](C v) { return std::cos(v); });
      break;
    case UnaryOp::kTan:
      Map<T>(in, out, [](C v) { return std::tan(v); });
      break;
    case UnaryOp::kAsin:
      Map<T>(in, out, [](C v) { return std::asin(v); });
      break;
    case UnaryOp::kAcos:
      Map<T>(in, out, [](C v) { return std::acos(v); });
      break;
    case UnaryOp::kAtan:
      Map<T>(in, out, [](C v) { return std::atan(v); });
      break;
    case UnaryOp::kSinh:
      Map<T>(in, out, [](C v) { return std::sinh(v); });
      break;
    case UnaryOp::kCosh:
      Map<T>(in, out, [](C v) { return std::cosh(v); });
      break;
    case UnaryOp::kAsinh:
      Map<T>(in, out, [](C v) { return std::asinh(v); });
      break;
    case UnaryOp::kAcosh:
      Map<T>(in, out, [](C v) { return std::acosh(v); });
      break;
    case UnaryOp::kAtanh:
      Map<T>(in, out, [](C v) { return std::atanh(v); });
      break;
    case UnaryOp::kIsNaN:
    case UnaryOp::kIsInf:
      ComputePredicate<T>(op, p, in, out);
      break;
    default:
      return InternalError("unary operator without a float implementation");
  }
  return Status();
}

template <typename T>
Status ComputeUnary(UnaryOp op, const UnaryParams& p, const TensorRef& in, const TensorRef& out) {
  if constexpr (std::is_same_v<T, float>) {
    if (MapVectorised(op, p, in, out)) return Status();
  }
  if (MapAnyType<T>(op, p, in, out)) return Status();
  if constexpr (kIsFloat<T>) return MapFloat<T>(op, p, in, out);
  return UnsupportedType(in.type);
}

class UnaryKernel : public Kernel {
 public:
  UnaryKernel(UnaryOp op, uint32_t types, bool bool_output, UnaryParams params)
      : op_(op), types_(types), bool_output_(bool_output), params_(params) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), types_, "input 0"));
    ctx.SetOutput(0, bool_output_ ? DataType::kBool : ctx.input_type(0), ctx.input_shape(0));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    const TensorRef& out = ctx.output(0);
    if (op_ == UnaryOp::kNot) {
      const bool* x = in.get<bool>();
      bool* y = out.mut<bool>();
      for (int64_t i = 0; i < in.count; ++i) y[i] = !x[i];
      return Status();
    }
    return Dispatch<kNumericTypes>(
        in.type, [&](auto tag) { return ComputeUnary<decltype(tag)>(op_, params_, in, out); });
  }

 private:
  UnaryOp op_;
  uint32_t types_;
  bool bool_output_;
  UnaryParams params_;
};

template <UnaryOp kOp>
Result<std::unique_ptr<Kernel>> MakeUnary(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(1, 1));
  UnaryParams p;
  uint32_t types = kFloatTypes;
  bool bool_output = false;
  switch (kOp) {
    case UnaryOp::kAbs:
    case UnaryOp::kSign:
      types = kNumericTypes;
      break;
    case UnaryOp::kNeg:
    case UnaryOp::kRelu:
      types = kSignedNumericTypes;
      break;
    case UnaryOp::kNot:
      types = TypeBit(DataType::kBool);
      break;
    case UnaryOp::kIsNaN:
      bool_output = true;
      break;
    case UnaryOp::kIsInf: {
      bool_output = true;
      OUTPOST_ASSIGN_OR_RETURN(int64_t neg, ctx.Int("detect_negative", 1));
      OUTPOST_ASSIGN_OR_RETURN(int64_t pos, ctx.Int("detect_positive", 1));
      p.detect_negative = neg != 0;
      p.detect_positive = pos != 0;
      break;
    }
    case UnaryOp::kLeakyRelu: {
      OUTPOST_ASSIGN_OR_RETURN(p.alpha, ctx.Float("alpha", 0.01f));
      break;
    }
    case UnaryOp::kElu:
    case UnaryOp::kCelu:
    case UnaryOp::kThresholdedRelu: {
      OUTPOST_ASSIGN_OR_RETURN(p.alpha, ctx.Float("alpha", 1.0f));
      if (kOp == UnaryOp::kCelu && p.alpha == 0) {
        return InvalidArgumentError("alpha must not be 0");
      }
      break;
    }
    case UnaryOp::kSelu: {
      OUTPOST_ASSIGN_OR_RETURN(p.alpha, ctx.Float("alpha", 1.67326319217681884765625f));
      OUTPOST_ASSIGN_OR_RETURN(p.gamma, ctx.Float("gamma", 1.05070102214813232421875f));
      break;
    }
    case UnaryOp::kHardSigmoid: {
      OUTPOST_ASSIGN_OR_RETURN(p.alpha, ctx.Float("alpha", 0.2f));
      OUTPOST_ASSIGN_OR_RETURN(p.beta, ctx.Float("beta", 0.5f));
      break;
    }
    case UnaryOp::kShrink: {
      types = kNumericTypes;
      OUTPOST_ASSIGN_OR_RETURN(p.alpha, ctx.Float("lambd", 0.5f));
      OUTPOST_ASSIGN_OR_RETURN(p.beta, ctx.Float("bias", 0.0f));
      break;
    }
    default:
      break;
  }
  return std::unique_ptr<Kernel>(new UnaryKernel(kOp, types, bool_output, p));
}

// ---- Clip ----

class ClipKernel : public Kernel {
 public:
  // Opset < 11: bounds are attributes. Later: optional inputs 1 and 2.
  ClipKernel(bool from_attributes, float min, float max)
      : from_attributes_(from_attributes), min_(min), max_(max) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kNumericTypes, "input 0"));
    for (size_t i = 1; i < 3; ++i) {
      if (!ctx.has_input(i)) continue;
      if (ctx.input_type(i) != ctx.input_type(0)) {
        return InvalidArgumentError("bound " + std::to_string(i) + " has another element type");
      }
      if (NumElements(ctx.input_shape(i)) != 1) {
        return InvalidArgumentError("bound " + std::to_string(i) + " is not a scalar");
      }
    }
    ctx.SetOutput(0, ctx.input_type(0), ctx.input_shape(0));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    const TensorRef& out = ctx.output(0);
    return Dispatch<kNumericTypes>(in.type, [&](auto tag) {
      using T = decltype(tag);
      using C = MathT<T>;
      C lo = std::numeric_limits<C>::lowest();
      C hi = std::numeric_limits<C>::max();
      if constexpr (kIsFloat<T>) {
        lo = -std::numeric_limits<C>::infinity();
        hi = std::numeric_limits<C>::infinity();
      }
      if (from_attributes_) {
        lo = static_cast<C>(min_);
        hi = static_cast<C>(max_);
      } else {
        if (ctx.has_input(1)) lo = static_cast<C>(ctx.input(1).get<T>()[0]);
        if (ctx.has_input(2)) hi = static_cast<C>(ctx.input(2).get<T>()[0]);
      }
      Map<T>(in, out, [=](C v) {
        // NaN stays NaN: comparisons with NaN are false.
        if (v < lo) v = lo;
        if (v > hi) v = hi;
        return v;
      });
      return Status();
    });
  }

 private:
  bool from_attributes_;
  float min_;
  float max_;
};

Result<std::unique_ptr<Kernel>> MakeClip6(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(float lo, ctx.Float("min", -std::numeric_limits<float>::infinity()));
  OUTPOST_ASSIGN_OR_RETURN(float hi, ctx.Float("max", std::numeric_limits<float>::infinity()));
  return std::unique_ptr<Kernel>(new ClipKernel(true, lo, hi));
}

Result<std::unique_ptr<Kernel>> MakeClip11(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 3));
  return std::unique_ptr<Kernel>(new ClipKernel(false, 0, 0));
}

// ---- Identity, Dropout ----

Status InferSame(InferContext& ctx) {
  ctx.SetOutput(0, ctx.input_type(0), ctx.input_shape(0));
  return Status();
}

Status ComputeCopy(ComputeContext& ctx) {
  CopyTensor(ctx.input(0), ctx.output(0));
  return Status();
}

Result<std::unique_ptr<Kernel>> MakeIdentity(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(1, 1));
  return std::unique_ptr<Kernel>(new FunctionKernel(&InferSame, &ComputeCopy));
}

// Dropout: the output is the input and the mask is all true in inference mode, and in
// training mode with a ratio of 0. Training mode with another ratio (random) is refused.
class DropoutKernel : public Kernel {
 public:
  explicit DropoutKernel(bool bool_mask) : bool_mask_(bool_mask) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.has_input(2)) {
      const TensorRef* mode = ctx.input_value(2);
      if (mode == nullptr) return ctx.Defer();
      if (mode->count != 1 || mode->type != DataType::kBool) {
        return InvalidArgumentError("training_mode must be a BOOL scalar");
      }
      if (mode->get<bool>()[0]) {
        double ratio = 0.5;
        if (ctx.has_input(1)) {
          const TensorRef* r = ctx.input_value(1);
          if (r == nullptr) return ctx.Defer();
          if (r->count != 1) return InvalidArgumentError("ratio must be a scalar");
          ratio = ReadDouble(*r, 0);
        }
        if (ratio != 0) {
          return UnimplementedError("training-mode Dropout (random) is not supported");
        }
      }
    }
    ctx.SetOutput(0, ctx.input_type(0), ctx.input_shape(0));
    ctx.SetOutput(1, bool_mask_ ? DataType::kBool : ctx.input_type(0), ctx.input_shape(0));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    CopyTensor(ctx.input(0), ctx.output(0));
    if (ctx.has_output(1)) {
      const TensorRef& mask = ctx.output(1);
      if (bool_mask_) {
        std::fill_n(mask.mut<bool>(), mask.count, true);
      } else {
        return Dispatch<kFloatTypes>(mask.type, [&](auto tag) {
          using T = decltype(tag);
          std::fill_n(mask.mut<T>(), mask.count, T(1.0f));
          return Status();
        });
      }
    }
    return Status();
  }

 private:
  bool bool_mask_;
};

Result<std::unique_ptr<Kernel>> MakeDropout(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 3));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(1, 2));
  return std::unique_ptr<Kernel>(new DropoutKernel(ctx.opset() >= 10));
}

}  // namespace

void RegisterUnaryKernels(KernelRegistry& r) {
  r.Add({"", "Abs", 6, 1000, &MakeUnary<UnaryOp::kAbs>});
  r.Add({"", "Neg", 6, 1000, &MakeUnary<UnaryOp::kNeg>});
  r.Add({"", "Sqrt", 6, 1000, &MakeUnary<UnaryOp::kSqrt>});
  r.Add({"", "Exp", 6, 1000, &MakeUnary<UnaryOp::kExp>});
  r.Add({"", "Log", 6, 1000, &MakeUnary<UnaryOp::kLog>});
  r.Add({"", "Relu", 6, 1000, &MakeUnary<UnaryOp::kRelu>});
  r.Add({"", "LeakyRelu", 6, 1000, &MakeUnary<UnaryOp::kLeakyRelu>});
  r.Add({"", "Sigmoid", 6, 1000, &MakeUnary<UnaryOp::kSigmoid>});
  r.Add({"", "Tanh", 6, 1000, &MakeUnary<UnaryOp::kTanh>});
  r.Add({"", "Erf", 9, 1000, &MakeUnary<UnaryOp::kErf>});
  r.Add({"", "Reciprocal", 6, 1000, &MakeUnary<UnaryOp::kReciprocal>});
  r.Add({"", "Floor", 6, 1000, &MakeUnary<UnaryOp::kFloor>});
  r.Add({"", "Ceil", 6, 1000, &MakeUnary<UnaryOp::kCeil>});
  r.Add({"", "Round", 11, 1000, &MakeUnary<UnaryOp::kRound>});
  r.Add({"", "Sign", 9, 1000, &MakeUnary<UnaryOp::kSign>});
  r.Add({"", "Elu", 6, 1000, &MakeUnary<UnaryOp::kElu>});
  r.Add({"", "Selu", 6, 1000, &MakeUnary<UnaryOp::kSelu>});
  r.Add({"", "Celu", 12, 1000, &MakeUnary<UnaryOp::kCelu>});
  r.Add({"", "HardSigmoid", 6, 1000, &MakeUnary<UnaryOp::kHardSigmoid>});
  r.Add({"", "HardSwish", 14, 1000, &MakeUnary<UnaryOp::kHardSwish>});
  r.Add({"", "Softplus", 1, 1000, &MakeUnary<UnaryOp::kSoftplus>});
  r.Add({"", "Softsign", 1, 1000, &MakeUnary<UnaryOp::kSoftsign>});
  r.Add({"", "ThresholdedRelu", 10, 1000, &MakeUnary<UnaryOp::kThresholdedRelu>});
  r.Add({"", "Shrink", 9, 1000, &MakeUnary<UnaryOp::kShrink>});
  r.Add({"", "IsNaN", 9, 1000, &MakeUnary<UnaryOp::kIsNaN>});
  r.Add({"", "IsInf", 10, 1000, &MakeUnary<UnaryOp::kIsInf>});
  r.Add({"", "Not", 1, 1000, &MakeUnary<UnaryOp::kNot>});
  r.Add({"", "Sin", 7, 1000, &MakeUnary<UnaryOp::kSin>});
  r.Add({"", "Cos", 7, 1000, &MakeUnary<UnaryOp::kCos>});
  r.Add({"", "Tan", 7, 1000, &MakeUnary<UnaryOp::kTan>});
  r.Add({"", "Asin", 7, 1000, &MakeUnary<UnaryOp::kAsin>});
  r.Add({"", "Acos", 7, 1000, &MakeUnary<UnaryOp::kAcos>});
  r.Add({"", "Atan", 7, 1000, &MakeUnary<UnaryOp::kAtan>});
  r.Add({"", "Sinh", 9, 1000, &MakeUnary<UnaryOp::kSinh>});
  r.Add({"", "Cosh", 9, 1000, &MakeUnary<UnaryOp::kCosh>});
  r.Add({"", "Asinh", 9, 1000, &MakeUnary<UnaryOp::kAsinh>});
  r.Add({"", "Acosh", 9, 1000, &MakeUnary<UnaryOp::kAcosh>});
  r.Add({"", "Atanh", 9, 1000, &MakeUnary<UnaryOp::kAtanh>});
  r.Add({"", "Clip", 6, 10, &MakeClip6});
  r.Add({"", "Clip", 11, 1000, &MakeClip11});
  r.Add({"", "Identity", 1, 1000, &MakeIdentity});
  r.Add({"", "Dropout", 7, 1000, &MakeDropout});
}

}  // namespace outpost::engine::onnx
