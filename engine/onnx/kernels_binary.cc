// Elementwise operators of two or more inputs with numpy broadcasting: arithmetic,
// comparisons, logic, Where, and the variadic Min/Max/Sum/Mean.
#include <cmath>
#include <type_traits>

#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

inline constexpr uint32_t kPowBaseTypes =
    kFloatTypes | TypeBit(DataType::kInt32) | TypeBit(DataType::kInt64);

enum class BinaryOp {
  kAdd, kSub, kMul, kDiv, kPow, kMod, kFmod, kEqual, kLess, kGreater, kLessOrEqual,
  kGreaterOrEqual, kAnd, kOr, kXor, kShiftLeft, kShiftRight, kPRelu, kMin, kMax,
};

bool IsComparison(BinaryOp op) {
  return op == BinaryOp::kEqual || op == BinaryOp::kLess || op == BinaryOp::kGreater ||
         op == BinaryOp::kLessOrEqual || op == BinaryOp::kGreaterOrEqual;
}

// Runs f(a_i, b_i) -> Out over the broadcast of a and b into out.
template <typename A, typename B, typename Out, typename F>
void Broadcast2(const TensorRef& a, const TensorRef& b, const TensorRef& out, F f) {
  const A* x = a.get<A>();
  const B* y = b.get<B>();
  Out* z = out.mut<Out>();
  ForEachBroadcast<2>(out.shape, {a.shape, b.shape},
                      [&](int64_t o, const std::array<int64_t, 2>& off, int64_t n,
                          const std::array<int64_t, 2>& st) {
                        const A* xa = x + off[0];
                        const B* yb = y + off[1];
                        Out* zo = z + o;
                        if (st[0] != 0 && st[1] != 0) {
                          for (int64_t i = 0; i < n; ++i) zo[i] = f(xa[i], yb[i]);
                        } else if (st[0] != 0) {
                          const B yv = yb[0];
                          for (int64_t i = 0; i < n; ++i) zo[i] = f(xa[i], yv);
                        } else if (st[1] != 0) {
                          const A xv = xa[0];
                          for (int64_t i = 0; i < n; ++i) zo[i] = f(xv, yb[i]);
                        } else {
                          const Out v = f(xa[0], yb[0]);
                          for (int64_t i = 0; i < n; ++i) zo[i] = v;
                        }
                      });
}

// Arithmetic on same-typed inputs. `zero_divisor` is set when an integer division or
// modulo by zero was asked for (the result is then 0 there).
template <typename T>
Status Arithmetic(BinaryOp op, const TensorRef& a, const TensorRef& b, const TensorRef& out) {
  using C = MathT<T>;
  bool zero_divisor = false;
  switch (op) {
    case BinaryOp::kAdd:
      Broadcast2<T, T, T>(a, b, out, [](T x, T y) { return T(WrapAdd(C(x), C(y))); });
      break;
    case BinaryOp::kSub:
      Broadcast2<T, T, T>(a, b, out, [](T x, T y) { return T(WrapSub(C(x), C(y))); });
      break;
    case BinaryOp::kMul:
      Broadcast2<T, T, T>(a, b, out, [](T x, T y) { return T(WrapMul(C(x), C(y))); });
      break;
    case BinaryOp::kDiv:
      if constexpr (std::is_integral_v<T>) {
        Broadcast2<T, T, T>(a, b, out, [&](T x, T y) -> T {
          if (y == 0) {
            zero_divisor = true;
            return 0;
          }
          if constexpr (std::is_signed_v<T>) {
            if (y == -1) return static_cast<T>(0 - static_cast<uint64_t>(x));  // no INT_MIN/-1 trap
          }
          return static_cast<T>(x / y);
        });
      } else {
        Broadcast2<T, T, T>(a, b, out, [](T x, T y) { return T(C(x) / C(y)); });
      }
      break;
    case BinaryOp::kMod:  // Python semantics: the result takes the divisor's sign.
      if constexpr (std::is_integral_v<T>) {
        Broadcast2<T, T, T>(a, b, out, [&](T x, T y) -> T {
          if (y == 0) {
            zero_divisor = true;
            return 0;
          }
          if constexpr (std::is_signed_v<T>) {
            if (y == -1) return 0;
            T r = static_cast<T>(x % y);
            if (r != 0 && ((r < 0) != (y < 0))) r = static_cast<T>(r + y);
            return r;
          } else {
            return static_cast<T>(x % y);
          }
        });
      } else {
        Broadcast2<T, T, T>(a, b, out, [](T x, T y) {
          C r = std::fmod(C(x), C(y));
          if (r != C(0) && ((r < C(0)) != (C(y) < C(0)))) r += C(y);
          return T(r);
        });
      }
      break;
    case BinaryOp::kFmod:  // C semantics: the result takes the dividend's sign.
      if constexpr (std::is_integral_v<T>) {
        Broadcast2<T, T, T>(a, b, out, [&](T x, T y) -> T {
          if (y == 0) {
            zero_divisor = true;
            return 0;
          }
          if constexpr (std::is_signed_v<T>) {
            if (y == -1) return 0;
          }
          return static_cast<T>(x % y);
        });
      } else {
        Broadcast2<T, T, T>(a, b, out, [](T x, T y) { return T(std::fmod(C(x), C(y))); });
      }
      break;
    case BinaryOp::kPRelu:
      Broadcast2<T, T, T>(a, b, out, [](T x, T y) {
        return IsNeg(C(x)) ? T(WrapMul(C(x), C(y))) : x;
      });
      break;
    case BinaryOp::kMin:
      Broadcast2<T, T, T>(a, b, out, [](T x, T y) {
        if constexpr (kIsFloat<T>) {
          if (std::isnan(C(x)) || std::isnan(C(y))) return T(C(x) + C(y));
        }
        return C(y) < C(x) ? y : x;
      });
      break;
    case BinaryOp::kMax:
      Broadcast2<T, T, T>(a, b, out, [](T x, T y) {
        if constexpr (kIsFloat<T>) {
          if (std::isnan(C(x)) || std::isnan(C(y))) return T(C(x) + C(y));
        }
        return C(x) < C(y) ? y : x;
      });
      break;
    case BinaryOp::kShiftLeft:
    case BinaryOp::kShiftRight:
      if constexpr (std::is_unsigned_v<T>) {
        const bool left = op == BinaryOp::kShiftLeft;
        Broadcast2<T, T, T>(a, b, out, [left](T x, T y) -> T {
          if (y >= sizeof(T) * 8) return 0;
          return left ? static_cast<T>(x << y) : static_cast<T>(x >> y);
        });
        break;
      }
      return UnsupportedType(a.type);
    default:
      return InternalError("not an arithmetic operator");
  }
  if (zero_divisor) return InvalidArgumentError("integer division by zero");
  return Status();
}

template <typename T>
Status Compare(BinaryOp op, const TensorRef& a, const TensorRef& b, const TensorRef& out) {
  using C = MathT<T>;
  switch (op) {
    case BinaryOp::kEqual:
      Broadcast2<T, T, bool>(a, b, out, [](T x, T y) { return C(x) == C(y); });
      break;
    case BinaryOp::kLess:
      Broadcast2<T, T, bool>(a, b, out, [](T x, T y) { return C(x) < C(y); });
      break;
    case BinaryOp::kGreater:
      Broadcast2<T, T, bool>(a, b, out, [](T x, T y) { return C(x) > C(y); });
      break;
    case BinaryOp::kLessOrEqual:
      Broadcast2<T, T, bool>(a, b, out, [](T x, T y) { return C(x) <= C(y); });
      break;
    case BinaryOp::kGreaterOrEqual:
      Broadcast2<T, T, bool>(a, b, out, [](T x, T y) { return C(x) >= C(y); });
      break;
    default:
      return InternalError("not a comparison");
  }
  return Status();
}

class BinaryKernel : public Kernel {
 public:
  BinaryKernel(BinaryOp op, uint32_t types) : op_(op), types_(types) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    OUTPOST_RETURN_IF_ERROR(CheckType(t, types_, "input 0"));
    if (op_ == BinaryOp::kPow) {
      OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(1), kNumericTypes, "input 1"));
    } else if (ctx.input_type(1) != t) {
      return InvalidArgumentError("inputs have different element types (" +
                                  std::string(DataTypeName(t)) + " and " +
                                  std::string(DataTypeName(ctx.input_type(1))) + ")");
    }
    OUTPOST_ASSIGN_OR_RETURN(Shape shape, BroadcastShapes(ctx.input_shape(0), ctx.input_shape(1)));
    if (op_ == BinaryOp::kPRelu && shape != ctx.input_shape(0)) {
      return InvalidArgumentError("slope does not broadcast to the input's shape");
    }
    const bool to_bool = IsComparison(op_) || op_ == BinaryOp::kAnd || op_ == BinaryOp::kOr ||
                         op_ == BinaryOp::kXor;
    ctx.SetOutput(0, to_bool ? DataType::kBool : t, std::move(shape));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& a = ctx.input(0);
    const TensorRef& b = ctx.input(1);
    const TensorRef& out = ctx.output(0);
    switch (op_) {
      case BinaryOp::kAnd:
        Broadcast2<bool, bool, bool>(a, b, out, [](bool x, bool y) { return x && y; });
        return Status();
      case BinaryOp::kOr:
        Broadcast2<bool, bool, bool>(a, b, out, [](bool x, bool y) { return x || y; });
        return Status();
      case BinaryOp::kXor:
        Broadcast2<bool, bool, bool>(a, b, out, [](bool x, bool y) { return x != y; });
        return Status();
      case BinaryOp::kPow:
        return Dispatch<kPowBaseTypes>(a.type, [&](auto base_tag) {
          using T = decltype(base_tag);
          return Dispatch<kNumericTypes>(b.type, [&](auto exp_tag) {
            using E = decltype(exp_tag);
            if constexpr (std::is_same_v<T, float> && std::is_same_v<E, float>) {
              if (b.count == 1 && b.get<float>()[0] == 2.0f) {
                // A square (LayerNormalization's variance as exported before opset 17): x * x
                // is the correctly rounded square, as powf's is, at a fraction of its cost.
                Broadcast2<T, E, T>(a, b, out, [](float x, float) { return x * x; });
                return Status();
              }
              Broadcast2<T, E, T>(a, b, out, [](float x, float y) { return std::pow(x, y); });
            } else {
              Broadcast2<T, E, T>(a, b, out, [](T x, E y) {
                return CastFromDouble<T>(std::pow(static_cast<double>(MathT<T>(x)),
                                                  static_cast<double>(MathT<E>(y))));
              });
            }
            return Status();
          });
        });
      default:
        break;
    }
    if (IsComparison(op_)) {
      return Dispatch<kNumericTypes | TypeBit(DataType::kBool)>(a.type, [&](auto tag) {
        return Compare<decltype(tag)>(op_, a, b, out);
      });
    }
    return Dispatch<kNumericTypes>(a.type, [&](auto tag) {
      return Arithmetic<decltype(tag)>(op_, a, b, out);
    });
  }

 private:
  BinaryOp op_;
  uint32_t types_;
};

template <BinaryOp kOp>
Result<std::unique_ptr<Kernel>> MakeBinary(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(1, 1));
  uint32_t types = kNumericTypes;
  BinaryOp op = kOp;
  switch (kOp) {
    case BinaryOp::kEqual:
      types = kNumericTypes | TypeBit(DataType::kBool);
      break;
    case BinaryOp::kAnd:
    case BinaryOp::kOr:
    case BinaryOp::kXor:
      types = TypeBit(DataType::kBool);
      break;
    case BinaryOp::kPow:
      types = kPowBaseTypes;
      break;
    case BinaryOp::kPRelu:
      types = kSignedNumericTypes;
      break;
    case BinaryOp::kMod: {
      OUTPOST_ASSIGN_OR_RETURN(int64_t fmod, ctx.Int("fmod", 0));
      if (fmod != 0) op = BinaryOp::kFmod;
      break;
    }
    case BinaryOp::kShiftLeft: {
      types = kUnsignedIntTypes;
      OUTPOST_ASSIGN_OR_RETURN(std::string direction, ctx.String("direction", ""));
      if (direction == "RIGHT") {
        op = BinaryOp::kShiftRight;
      } else if (direction != "LEFT") {
        return InvalidArgumentError("direction must be LEFT or RIGHT");
      }
      break;
    }
    default:
      break;
  }
  if (op == BinaryOp::kMod) {
    // fmod = 0 is defined for integers only.
    types = kIntTypes;
  }
  return std::unique_ptr<Kernel>(new BinaryKernel(op, types));
}

// ---- Where ----

class WhereKernel : public Kernel {
 public:
  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kBool) {
      return InvalidArgumentError("condition must be BOOL");
    }
    if (ctx.input_type(1) != ctx.input_type(2)) {
      return InvalidArgumentError("X and Y have different element types");
    }
    OUTPOST_ASSIGN_OR_RETURN(Shape s, BroadcastShapes(ctx.input_shape(0), ctx.input_shape(1)));
    OUTPOST_ASSIGN_OR_RETURN(s, BroadcastShapes(s, ctx.input_shape(2)));
    ctx.SetOutput(0, ctx.input_type(1), std::move(s));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& c = ctx.input(0);
    const TensorRef& x = ctx.input(1);
    const TensorRef& y = ctx.input(2);
    const TensorRef& out = ctx.output(0);
    const bool* cond = c.get<bool>();
    if (x.type == DataType::kBytes) {
      ForEachBroadcast<3>(out.shape, {c.shape, x.shape, y.shape},
                          [&](int64_t o, const std::array<int64_t, 3>& off, int64_t n,
                              const std::array<int64_t, 3>& st) {
                            for (int64_t i = 0; i < n; ++i) {
                              out.strings[o + i] = cond[off[0] + i * st[0]]
                                                       ? x.strings[off[1] + i * st[1]]
                                                       : y.strings[off[2] + i * st[2]];
                            }
                          });
      return Status();
    }
    return Dispatch<kNumericTypes | TypeBit(DataType::kBool)>(x.type, [&](auto tag) {
      using T = decltype(tag);
      const T* xv = x.get<T>();
      const T* yv = y.get<T>();
      T* z = out.mut<T>();
      ForEachBroadcast<3>(out.shape, {c.shape, x.shape, y.shape},
                          [&](int64_t o, const std::array<int64_t, 3>& off, int64_t n,
                              const std::array<int64_t, 3>& st) {
                            for (int64_t i = 0; i < n; ++i) {
                              z[o + i] = cond[off[0] + i * st[0]] ? xv[off[1] + i * st[1]]
                                                                  : yv[off[2] + i * st[2]];
                            }
                          });
      return Status();
    });
  }
};

Result<std::unique_ptr<Kernel>> MakeWhere(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(3, 3));
  return std::unique_ptr<Kernel>(new WhereKernel());
}

// ---- Min, Max, Sum, Mean ----

enum class Variadic { kMin, kMax, kSum, kMean };

class VariadicKernel : public Kernel {
 public:
  explicit VariadicKernel(Variadic op) : op_(op) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    OUTPOST_RETURN_IF_ERROR(CheckType(t, kNumericTypes, "input 0"));
    Shape shape = ctx.input_shape(0);
    for (size_t i = 1; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i)) return InvalidArgumentError("an input is missing");
      if (ctx.input_type(i) != t) {
        return InvalidArgumentError("inputs have different element types");
      }
      OUTPOST_ASSIGN_OR_RETURN(shape, BroadcastShapes(shape, ctx.input_shape(i)));
    }
    ctx.SetOutput(0, t, std::move(shape));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& out = ctx.output(0);
    return Dispatch<kNumericTypes>(out.type, [&](auto tag) {
      using T = decltype(tag);
      using C = MathT<T>;
      // out = broadcast(input 0); then out = op(out, input i).
      const TensorRef& first = ctx.input(0);
      const T* x0 = first.get<T>();
      T* z = out.mut<T>();
      ForEachBroadcast<1>(out.shape, {first.shape},
                          [&](int64_t o, const std::array<int64_t, 1>& off, int64_t n,
                              const std::array<int64_t, 1>& st) {
                            for (int64_t i = 0; i < n; ++i) z[o + i] = x0[off[0] + i * st[0]];
                          });
      for (size_t k = 1; k < ctx.num_inputs(); ++k) {
        const TensorRef& in = ctx.input(k);
        switch (op_) {
          case Variadic::kMin:
            Broadcast2<T, T, T>(out, in, out, [](T x, T y) {
              if constexpr (kIsFloat<T>) {
                if (std::isnan(C(x)) || std::isnan(C(y))) return T(C(x) + C(y));
              }
              return C(y) < C(x) ? y : x;
            });
            break;
          case Variadic::kMax:
            Broadcast2<T, T, T>(out, in, out, [](T x, T y) {
              if constexpr (kIsFloat<T>) {
                if (std::isnan(C(x)) || std::isnan(C(y))) return T(C(x) + C(y));
              }
              return C(x) < C(y) ? y : x;
            });
            break;
          case Variadic::kSum:
          case Variadic::kMean:
            Broadcast2<T, T, T>(out, in, out, [](T x, T y) { return T(WrapAdd(C(x), C(y))); });
            break;
        }
      }
      if (op_ == Variadic::kMean) {
        const C n = static_cast<C>(ctx.num_inputs());
        for (int64_t i = 0; i < out.count; ++i) z[i] = T(C(z[i]) / n);
      }
      return Status();
    });
  }

 private:
  Variadic op_;
};

template <Variadic kOp>
Result<std::unique_ptr<Kernel>> MakeVariadic(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1 << 16));
  return std::unique_ptr<Kernel>(new VariadicKernel(kOp));
}

}  // namespace

void RegisterBinaryKernels(KernelRegistry& r) {
  r.Add({"", "Add", 7, 1000, &MakeBinary<BinaryOp::kAdd>});
  r.Add({"", "Sub", 7, 1000, &MakeBinary<BinaryOp::kSub>});
  r.Add({"", "Mul", 7, 1000, &MakeBinary<BinaryOp::kMul>});
  r.Add({"", "Div", 7, 1000, &MakeBinary<BinaryOp::kDiv>});
  r.Add({"", "Pow", 7, 1000, &MakeBinary<BinaryOp::kPow>});
  r.Add({"", "Mod", 10, 1000, &MakeBinary<BinaryOp::kMod>});
  r.Add({"", "Equal", 7, 1000, &MakeBinary<BinaryOp::kEqual>});
  r.Add({"", "Less", 7, 1000, &MakeBinary<BinaryOp::kLess>});
  r.Add({"", "Greater", 7, 1000, &MakeBinary<BinaryOp::kGreater>});
  r.Add({"", "LessOrEqual", 12, 1000, &MakeBinary<BinaryOp::kLessOrEqual>});
  r.Add({"", "GreaterOrEqual", 12, 1000, &MakeBinary<BinaryOp::kGreaterOrEqual>});
  r.Add({"", "And", 7, 1000, &MakeBinary<BinaryOp::kAnd>});
  r.Add({"", "Or", 7, 1000, &MakeBinary<BinaryOp::kOr>});
  r.Add({"", "Xor", 7, 1000, &MakeBinary<BinaryOp::kXor>});
  r.Add({"", "BitShift", 11, 1000, &MakeBinary<BinaryOp::kShiftLeft>});
  r.Add({"", "PRelu", 7, 1000, &MakeBinary<BinaryOp::kPRelu>});
  r.Add({"", "Where", 9, 1000, &MakeWhere});
  r.Add({"", "Min", 6, 1000, &MakeVariadic<Variadic::kMin>});
  r.Add({"", "Max", 6, 1000, &MakeVariadic<Variadic::kMax>});
  r.Add({"", "Sum", 6, 1000, &MakeVariadic<Variadic::kSum>});
  r.Add({"", "Mean", 6, 1000, &MakeVariadic<Variadic::kMean>});
}

}  // namespace outpost::engine::onnx
