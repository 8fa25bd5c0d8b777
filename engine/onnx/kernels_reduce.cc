// Operators that reduce or normalise along axes: Reduce*, ArgMax/ArgMin, Softmax,
// LogSoftmax, Hardmax, CumSum, TopK.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "engine/onnx/kernel_util.h"
#include "engine/onnx/vecmath.h"

namespace outpost::engine::onnx {
namespace {

// ---- Reduce* ----

enum class ReduceOp { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kSumSquare, kLogSum, kLogSumExp };

class ReduceKernel : public Kernel {
 public:
  // axes_from_input: opset-13 ReduceSum takes axes as optional input 1.
  ReduceKernel(ReduceOp op, std::vector<int64_t> axes, bool keepdims, bool axes_from_input,
               bool noop_with_empty_axes)
      : op_(op),
        axes_(std::move(axes)),
        keepdims_(keepdims),
        axes_from_input_(axes_from_input),
        noop_(noop_with_empty_axes) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kNumericTypes, "input 0"));
    std::vector<int64_t> axes = axes_;
    if (axes_from_input_ && ctx.has_input(1)) {
      const TensorRef* v = ctx.input_value(1);
      if (v == nullptr) return ctx.Defer();
      OUTPOST_ASSIGN_OR_RETURN(axes, ReadInts(*v));
    }
    const Shape& in = ctx.input_shape(0);
    OUTPOST_ASSIGN_OR_RETURN(std::vector<bool> reduced, ReducedDims(in, axes));
    Shape out;
    for (size_t d = 0; d < in.size(); ++d) {
      if (!reduced[d]) {
        out.push_back(in[d]);
      } else if (keepdims_) {
        out.push_back(1);
      }
    }
    const int64_t n_out = NumElements(out);
    const int64_t n_in = NumElements(in);
    if (n_in == 0 && n_out > 0 && (op_ == ReduceOp::kMax || op_ == ReduceOp::kMin)) {
      return InvalidArgumentError("cannot take the maximum or minimum over an empty set");
    }
    ctx.RequestScratch(static_cast<size_t>(n_out) * 2 * sizeof(double));
    ctx.SetOutput(0, ctx.input_type(0), std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    const TensorRef& out = ctx.output(0);
    std::vector<int64_t> axes_storage;
    const std::vector<int64_t>* axes = &axes_;
    if (axes_from_input_ && ctx.has_input(1)) {
      OUTPOST_ASSIGN_OR_RETURN(axes_storage, ReadInts(ctx.input(1)));
      axes = &axes_storage;
    }
    auto reduced_or = ReducedDims(in.shape, *axes);
    if (!reduced_or.ok()) return reduced_or.status();
    const std::vector<bool>& reduced = *reduced_or;
    // The output as a broadcastable shape of the input's rank (1 where reduced).
    std::array<int64_t, kMaxRank> keep{};
    for (size_t d = 0; d < in.rank(); ++d) keep[d] = reduced[d] ? 1 : in.shape[d];
    std::span<const int64_t> keep_shape(keep.data(), in.rank());
    const int64_t n_out = out.count;
    const int64_t group = n_out == 0 ? 0 : in.count / n_out;
    return Dispatch<kNumericTypes>(in.type, [&](auto tag) {
      using T = decltype(tag);
      using C = MathT<T>;
      const T* x = in.get<T>();
      T* y = out.mut<T>();
      constexpr bool kIntAcc = std::is_integral_v<T>;
      using Acc = std::conditional_t<kIntAcc,
                                     std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>,
                                     double>;
      Acc* acc = reinterpret_cast<Acc*>(ctx.scratch().data());
      Acc* acc2 = acc + n_out;
      auto pass = [&](auto&& f) {
        ForEachBroadcast<1>(in.shape, {keep_shape},
                            [&](int64_t o, const std::array<int64_t, 1>& off, int64_t n,
                                const std::array<int64_t, 1>& st) {
                              for (int64_t i = 0; i < n; ++i) {
                                f(acc[off[0] + i * st[0]], static_cast<Acc>(C(x[o + i])),
                                  off[0] + i * st[0]);
                              }
                            });
      };
      Acc init = 0;
      if (op_ == ReduceOp::kProd) init = 1;
      if (op_ == ReduceOp::kMax || op_ == ReduceOp::kLogSumExp) {
        init = kIntAcc ? std::numeric_limits<Acc>::lowest()
                       : -std::numeric_limits<Acc>::infinity();
      }
      if (op_ == ReduceOp::kMin) {
        init = kIntAcc ? std::numeric_limits<Acc>::max() : std::numeric_limits<Acc>::infinity();
      }
      std::fill_n(acc, n_out, init);
      switch (op_) {
        case ReduceOp::kSum:
        case ReduceOp::kMean:
        case ReduceOp::kLogSum:
          pass([](Acc& a, Acc v, int64_t) { a = WrapAdd(a, v); });
          break;
        case ReduceOp::kMax:
          pass([](Acc& a, Acc v, int64_t) {
            if (v > a || IsNaNValue(v)) a = v;
          });
          break;
        case ReduceOp::kMin:
          pass([](Acc& a, Acc v, int64_t) {
            if (v < a || IsNaNValue(v)) a = v;
          });
          break;
        case ReduceOp::kProd:
          pass([](Acc& a, Acc v, int64_t) { a = WrapMul(a, v); });
          break;
        case ReduceOp::kL1:
          pass([](Acc& a, Acc v, int64_t) { a = WrapAdd(a, IsNeg(v) ? WrapSub(Acc(0), v) : v); });
          break;
        case ReduceOp::kL2:
        case ReduceOp::kSumSquare:
          pass([](Acc& a, Acc v, int64_t) { a = WrapAdd(a, WrapMul(v, v)); });
          break;
        case ReduceOp::kLogSumExp: {
          pass([](Acc& a, Acc v, int64_t) {
            if (v > a) a = v;
          });
          std::fill_n(acc2, n_out, Acc(0));
          pass([&](Acc& a, Acc v, int64_t k) {
            const double m = static_cast<double>(a);
            acc2[k] += static_cast<Acc>(std::isinf(m) ? std::exp(static_cast<double>(v))
                                                      : std::exp(static_cast<double>(v) - m));
          });
          for (int64_t k = 0; k < n_out; ++k) {
            const double m = static_cast<double>(acc[k]);
            acc[k] = static_cast<Acc>((std::isinf(m) ? 0.0 : m) +
                                      std::log(static_cast<double>(acc2[k])));
          }
          break;
        }
      }
      for (int64_t k = 0; k < n_out; ++k) {
        Acc v = acc[k];
        switch (op_) {
          case ReduceOp::kMean:
            if (group > 0) v = static_cast<Acc>(v / static_cast<Acc>(group));
            break;
          case ReduceOp::kL2:
            v = static_cast<Acc>(std::sqrt(static_cast<double>(v)));
            break;
          case ReduceOp::kLogSum:
            v = static_cast<Acc>(std::log(static_cast<double>(v)));
            break;
          default:
            break;
        }
        if constexpr (kIntAcc) {
          y[k] = static_cast<T>(v);
        } else {
          y[k] = static_cast<T>(static_cast<C>(v));
        }
      }
      return Status();
    });
  }

 private:
  Result<std::vector<bool>> ReducedDims(std::span<const int64_t> shape,
                                        const std::vector<int64_t>& axes) const {
    const auto rank = static_cast<int64_t>(shape.size());
    if (shape.size() > kMaxRank) return InvalidArgumentError("rank too large");
    std::vector<bool> reduced(shape.size(), false);
    if (axes.empty()) {
      if (!noop_) reduced.assign(shape.size(), true);
      return reduced;
    }
    for (int64_t a : axes) {
      OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(a, rank));
      reduced[static_cast<size_t>(axis)] = true;
    }
    return reduced;
  }

  ReduceOp op_;
  std::vector<int64_t> axes_;
  bool keepdims_;
  bool axes_from_input_;
  bool noop_;
};

template <ReduceOp kOp, bool kAxesInput>
Result<std::unique_ptr<Kernel>> MakeReduce(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, kAxesInput ? 2 : 1));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ctx.Ints("axes"));
  OUTPOST_ASSIGN_OR_RETURN(int64_t keepdims, ctx.Int("keepdims", 1));
  OUTPOST_ASSIGN_OR_RETURN(int64_t noop, ctx.Int("noop_with_empty_axes", 0));
  return std::unique_ptr<Kernel>(
      new ReduceKernel(kOp, std::move(axes), keepdims != 0, kAxesInput, noop != 0));
}

// ---- ArgMax, ArgMin ----

class ArgKernel : public Kernel {
 public:
  ArgKernel(bool is_max, int64_t axis, bool keepdims, bool last)
      : is_max_(is_max), axis_(axis), keepdims_(keepdims), last_(last) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kNumericTypes, "input 0"));
    const Shape& in = ctx.input_shape(0);
    OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(axis_, static_cast<int64_t>(in.size())));
    if (in[static_cast<size_t>(axis)] == 0) {
      return InvalidArgumentError("cannot take the arg-max/min over an empty axis");
    }
    Shape out;
    for (size_t d = 0; d < in.size(); ++d) {
      if (static_cast<int64_t>(d) != axis) {
        out.push_back(in[d]);
      } else if (keepdims_) {
        out.push_back(1);
      }
    }
    ctx.SetOutput(0, DataType::kInt64, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    int64_t* y = ctx.output(0).mut<int64_t>();
    const int64_t axis = axis_ < 0 ? axis_ + static_cast<int64_t>(in.rank()) : axis_;
    const int64_t outer = DimProduct(in.shape, 0, static_cast<size_t>(axis));
    const int64_t n = in.shape[static_cast<size_t>(axis)];
    const int64_t inner = DimProduct(in.shape, static_cast<size_t>(axis) + 1, in.rank());
    return Dispatch<kNumericTypes>(in.type, [&](auto tag) {
      using T = decltype(tag);
      using C = MathT<T>;
      const T* x = in.get<T>();
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          const T* base = x + o * n * inner + i;
          int64_t best = 0;
          C bv = C(base[0]);
          for (int64_t k = 1; k < n; ++k) {
            const C v = C(base[k * inner]);
            const bool better = is_max_ ? (last_ ? v >= bv : v > bv) : (last_ ? v <= bv : v < bv);
            if (better) {
              best = k;
              bv = v;
            }
          }
          y[o * inner + i] = best;
        }
      }
      return Status();
    });
  }

 private:
  bool is_max_;
  int64_t axis_;
  bool keepdims_;
  bool last_;
};

template <bool kMax>
Result<std::unique_ptr<Kernel>> MakeArg(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 0));
  OUTPOST_ASSIGN_OR_RETURN(int64_t keepdims, ctx.Int("keepdims", 1));
  OUTPOST_ASSIGN_OR_RETURN(int64_t last, ctx.Int("select_last_index", 0));
  return std::unique_ptr<Kernel>(new ArgKernel(kMax, axis, keepdims != 0, last != 0));
}

// ---- Softmax, LogSoftmax, Hardmax ----

enum class SoftmaxOp { kSoftmax, kLogSoftmax, kHardmax };

class SoftmaxKernel : public Kernel {
 public:
  // coerce_2d: opsets before 13 flatten the input to 2-D at `axis` and normalise each row.
  SoftmaxKernel(SoftmaxOp op, int64_t axis, bool coerce_2d)
      : op_(op), axis_(axis), coerce_2d_(coerce_2d) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kFloatTypes, "input 0"));
    const Shape& in = ctx.input_shape(0);
    OUTPOST_RETURN_IF_ERROR(NormalizeAxis(axis_, static_cast<int64_t>(in.size())).status());
    ctx.SetOutput(0, ctx.input_type(0), in);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    const TensorRef& out = ctx.output(0);
    const auto rank = static_cast<int64_t>(in.rank());
    const auto axis = static_cast<size_t>(axis_ < 0 ? axis_ + rank : axis_);
    const int64_t outer = DimProduct(in.shape, 0, axis);
    int64_t n;
    int64_t inner;
    if (coerce_2d_) {
      n = DimProduct(in.shape, axis, in.rank());
      inner = 1;
    } else {
      n = in.shape[axis];
      inner = DimProduct(in.shape, axis + 1, in.rank());
    }
    return Dispatch<kFloatTypes>(in.type, [&](auto tag) {
      using T = decltype(tag);
      using C = MathT<T>;
      const T* x = in.get<T>();
      T* y = out.mut<T>();
      if constexpr (std::is_same_v<T, float>) {
        if (inner == 1 && op_ != SoftmaxOp::kHardmax && n > 0) {
          // Contiguous rows: subtract each row's maximum, one vectorised exp over all rows,
          // then normalise each row.
          for (int64_t o = 0; o < outer; ++o) {
            const float* xs = x + o * n;
            float* ys = y + o * n;
            float m = xs[0];
            for (int64_t k = 1; k < n; ++k) m = xs[k] > m ? xs[k] : m;
            for (int64_t k = 0; k < n; ++k) ys[k] = xs[k] - m;
          }
          ExpF(y, y, outer * n);
          for (int64_t o = 0; o < outer; ++o) {
            const float* xs = x + o * n;
            float* ys = y + o * n;
            float sum = 0;
            for (int64_t k = 0; k < n; ++k) sum += ys[k];
            if (op_ == SoftmaxOp::kSoftmax) {
              const float inv = 1.0f / sum;
              for (int64_t k = 0; k < n; ++k) ys[k] *= inv;
            } else {
              float m = xs[0];
              for (int64_t k = 1; k < n; ++k) m = xs[k] > m ? xs[k] : m;
              const float log_sum = std::log(sum);
              for (int64_t k = 0; k < n; ++k) ys[k] = xs[k] - m - log_sum;
            }
          }
          return Status();
        }
      }
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          const T* xs = x + o * n * inner + i;
          T* ys = y + o * n * inner + i;
          if (n == 0) continue;
          C m = C(xs[0]);
          int64_t arg = 0;
          for (int64_t k = 1; k < n; ++k) {
            const C v = C(xs[k * inner]);
            if (v > m) {
              m = v;
              arg = k;
            }
          }
          if (op_ == SoftmaxOp::kHardmax) {
            for (int64_t k = 0; k < n; ++k) ys[k * inner] = T(k == arg ? C(1) : C(0));
            continue;
          }
          C sum = 0;
          for (int64_t k = 0; k < n; ++k) {
            const C e = std::exp(C(xs[k * inner]) - m);
            if (op_ == SoftmaxOp::kSoftmax) ys[k * inner] = T(e);
            sum += e;
          }
          if (op_ == SoftmaxOp::kSoftmax) {
            const C inv = C(1) / sum;
            for (int64_t k = 0; k < n; ++k) ys[k * inner] = T(C(ys[k * inner]) * inv);
          } else {
            const C log_sum = std::log(sum);
            for (int64_t k = 0; k < n; ++k) ys[k * inner] = T(C(xs[k * inner]) - m - log_sum);
          }
        }
      }
      return Status();
    });
  }

 private:
  SoftmaxOp op_;
  int64_t axis_;
  bool coerce_2d_;
};

template <SoftmaxOp kOp>
Result<std::unique_ptr<Kernel>> MakeSoftmax(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  const bool coerce = ctx.opset() < 13;
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", coerce ? 1 : -1));
  return std::unique_ptr<Kernel>(new SoftmaxKernel(kOp, axis, coerce));
}

// ---- CumSum ----

class CumSumKernel : public Kernel {
 public:
  CumSumKernel(bool exclusive, bool reverse) : exclusive_(exclusive), reverse_(reverse) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kNumericTypes, "input 0"));
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(1), kIndexTypes, "axis"));
    if (NumElements(ctx.input_shape(1)) != 1) return InvalidArgumentError("axis must be a scalar");
    ctx.SetOutput(0, ctx.input_type(0), ctx.input_shape(0));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    const TensorRef& out = ctx.output(0);
    OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(ReadInt64(ctx.input(1), 0),
                                                         static_cast<int64_t>(in.rank())));
    const int64_t outer = DimProduct(in.shape, 0, static_cast<size_t>(axis));
    const int64_t n = in.shape[static_cast<size_t>(axis)];
    const int64_t inner = DimProduct(in.shape, static_cast<size_t>(axis) + 1, in.rank());
    return Dispatch<kNumericTypes>(in.type, [&](auto tag) {
      using T = decltype(tag);
      using C = MathT<T>;
      const T* x = in.get<T>();
      T* y = out.mut<T>();
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          C sum = 0;
          for (int64_t j = 0; j < n; ++j) {
            const int64_t k = reverse_ ? n - 1 - j : j;
            const int64_t idx = (o * n + k) * inner + i;
            const C v = C(x[idx]);
            if (exclusive_) {
              y[idx] = T(sum);
              sum = WrapAdd(sum, v);
            } else {
              sum = WrapAdd(sum, v);
              y[idx] = T(sum);
            }
          }
        }
      }
      return Status();
    });
  }

 private:
  bool exclusive_;
  bool reverse_;
};

Result<std::unique_ptr<Kernel>> MakeCumSum(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  OUTPOST_ASSIGN_OR_RETURN(int64_t exclusive, ctx.Int("exclusive", 0));
  OUTPOST_ASSIGN_OR_RETURN(int64_t reverse, ctx.Int("reverse", 0));
  return std::unique_ptr<Kernel>(new CumSumKernel(exclusive != 0, reverse != 0));
}

// ---- TopK ----

class TopKKernel : public Kernel {
 public:
  // k_attr >= 0: opset-1 attribute; otherwise K is input 1.
  // Results are always sorted (valid for sorted = 0 too, whose order is unspecified).
  TopKKernel(int64_t k_attr, int64_t axis, bool largest)
      : k_attr_(k_attr), axis_(axis), largest_(largest) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kNumericTypes, "input 0"));
    const Shape& in = ctx.input_shape(0);
    OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(axis_, static_cast<int64_t>(in.size())));
    int64_t k = k_attr_;
    if (k < 0) {
      const TensorRef* kv = ctx.input_value(1);
      if (kv == nullptr) return ctx.Defer();
      if (kv->count != 1 || kv->type != DataType::kInt64) {
        return InvalidArgumentError("K must be one INT64");
      }
      k = kv->get<int64_t>()[0];
    }
    if (k < 0 || k > in[static_cast<size_t>(axis)]) {
      return InvalidArgumentError("K = " + std::to_string(k) + " is out of range for axis size " +
                                  std::to_string(in[static_cast<size_t>(axis)]));
    }
    Shape out = in;
    out[static_cast<size_t>(axis)] = k;
    ctx.RequestScratch(static_cast<size_t>(in[static_cast<size_t>(axis)]) *
                       sizeof(std::pair<double, int64_t>));
    ctx.SetOutput(0, ctx.input_type(0), out);
    ctx.SetOutput(1, DataType::kInt64, out);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    const TensorRef& values = ctx.output(0);
    const auto axis = static_cast<size_t>(axis_ < 0 ? axis_ + static_cast<int64_t>(in.rank())
                                                    : axis_);
    const int64_t outer = DimProduct(in.shape, 0, axis);
    const int64_t n = in.shape[axis];
    const int64_t inner = DimProduct(in.shape, axis + 1, in.rank());
    const int64_t k = values.shape[axis];
    int64_t* indices = ctx.has_output(1) ? ctx.output(1).mut<int64_t>() : nullptr;
    auto* pairs = reinterpret_cast<std::pair<double, int64_t>*>(ctx.scratch().data());
    const bool largest = largest_;
    return Dispatch<kNumericTypes>(in.type, [&](auto tag) {
      using T = decltype(tag);
      const T* x = in.get<T>();
      T* y = values.mut<T>();
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            pairs[j] = {static_cast<double>(MathT<T>(x[(o * n + j) * inner + i])), j};
          }
          auto better = [largest](const std::pair<double, int64_t>& a,
                                  const std::pair<double, int64_t>& b) {
            if (a.first != b.first) return largest ? a.first > b.first : a.first < b.first;
            return a.second < b.second;
          };
          std::partial_sort(pairs, pairs + k, pairs + n, better);
          for (int64_t j = 0; j < k; ++j) {
            const int64_t idx = (o * k + j) * inner + i;
            y[idx] = x[(o * n + pairs[j].second) * inner + i];
            if (indices != nullptr) indices[idx] = pairs[j].second;
          }
        }
      }
      return Status();
    });
  }

 private:
  int64_t k_attr_;
  int64_t axis_;
  bool largest_;
};

Result<std::unique_ptr<Kernel>> MakeTopK(const KernelBuildContext& ctx) {
  const bool k_attr = ctx.opset() < 10;
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(k_attr ? 1 : 2, k_attr ? 1 : 2));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(2, 2));
  int64_t k = -1;
  if (k_attr) {
    OUTPOST_ASSIGN_OR_RETURN(k, ctx.Int("k", -1));
    if (k < 0) return InvalidArgumentError("attribute k is missing or negative");
  }
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", -1));
  OUTPOST_ASSIGN_OR_RETURN(int64_t largest, ctx.Int("largest", 1));
  return std::unique_ptr<Kernel>(new TopKKernel(k, axis, largest != 0));
}

}  // namespace

void RegisterReduceKernels(KernelRegistry& r) {
  r.Add({"", "ReduceSum", 1, 12, &MakeReduce<ReduceOp::kSum, false>});
  r.Add({"", "ReduceSum", 13, 1000, &MakeReduce<ReduceOp::kSum, true>});
  r.Add({"", "ReduceMean", 1, 1000, &MakeReduce<ReduceOp::kMean, false>});
  r.Add({"", "ReduceMax", 1, 1000, &MakeReduce<ReduceOp::kMax, false>});
  r.Add({"", "ReduceMin", 1, 1000, &MakeReduce<ReduceOp::kMin, false>});
  r.Add({"", "ReduceProd", 1, 1000, &MakeReduce<ReduceOp::kProd, false>});
  r.Add({"", "ReduceL1", 1, 1000, &MakeReduce<ReduceOp::kL1, false>});
  r.Add({"", "ReduceL2", 1, 1000, &MakeReduce<ReduceOp::kL2, false>});
  r.Add({"", "ReduceSumSquare", 1, 1000, &MakeReduce<ReduceOp::kSumSquare, false>});
  r.Add({"", "ReduceLogSum", 1, 1000, &MakeReduce<ReduceOp::kLogSum, false>});
  r.Add({"", "ReduceLogSumExp", 1, 1000, &MakeReduce<ReduceOp::kLogSumExp, false>});
  r.Add({"", "ArgMax", 1, 1000, &MakeArg<true>});
  r.Add({"", "ArgMin", 1, 1000, &MakeArg<false>});
  r.Add({"", "Softmax", 1, 1000, &MakeSoftmax<SoftmaxOp::kSoftmax>});
  r.Add({"", "LogSoftmax", 1, 1000, &MakeSoftmax<SoftmaxOp::kLogSoftmax>});
  r.Add({"", "Hardmax", 1, 1000, &MakeSoftmax<SoftmaxOp::kHardmax>});
  r.Add({"", "CumSum", 11, 1000, &MakeCumSum});
  r.Add({"", "TopK", 1, 1000, &MakeTopK});
}

}  // namespace outpost::engine::onnx
