// LayerNormalization, and the losses NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
// (models exported with their loss still attached run unchanged).
#include <cmath>
#include <limits>

#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

// ---- LayerNormalization ----

class LayerNormKernel : public Kernel {
 public:
  LayerNormKernel(int64_t axis, float epsilon) : axis_(axis), epsilon_(epsilon) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    OUTPOST_RETURN_IF_ERROR(CheckType(t, kFloatTypes, "X"));
    const Shape& x = ctx.input_shape(0);
    OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(axis_, static_cast<int64_t>(x.size())));
    const int64_t block = DimProduct(x, static_cast<size_t>(axis), x.size());
    for (size_t i = 1; i < 3; ++i) {
      if (!ctx.has_input(i)) continue;
      if (ctx.input_type(i) != t) return InvalidArgumentError("Scale and B must match X's type");
      const int64_t n = NumElements(ctx.input_shape(i));
      if (n != block && n != 1) {
        return InvalidArgumentError("Scale and B must have the normalised block's size");
      }
    }
    ctx.SetOutput(0, t, x);
    Shape stats(x.begin(), x.begin() + axis);
    stats.resize(x.size(), 1);
    ctx.SetOutput(1, DataType::kFp32, stats);
    ctx.SetOutput(2, DataType::kFp32, stats);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const auto axis = static_cast<size_t>(axis_ < 0 ? axis_ + static_cast<int64_t>(x.rank())
                                                    : axis_);
    const int64_t rows = DimProduct(x.shape, 0, axis);
    const int64_t block = DimProduct(x.shape, axis, x.rank());
    return Dispatch<kFloatTypes>(x.type, [&](auto tag) {
      using T = decltype(tag);
      using C = MathT<T>;
      const T* xv = x.get<T>();
      T* y = ctx.output(0).mut<T>();
      const TensorRef* scale = &ctx.input(1);
      const TensorRef* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
      float* mean_out = ctx.has_output(1) ? ctx.output(1).mut<float>() : nullptr;
      float* inv_out = ctx.has_output(2) ? ctx.output(2).mut<float>() : nullptr;
      for (int64_t r = 0; r < rows; ++r) {
        const T* row = xv + r * block;
        double sum = 0, sq = 0;
        for (int64_t j = 0; j < block; ++j) sum += static_cast<double>(C(row[j]));
        const double mean = block > 0 ? sum / static_cast<double>(block) : 0;
        for (int64_t j = 0; j < block; ++j) {
          const double d = static_cast<double>(C(row[j])) - mean;
          sq += d * d;
        }
        const double var = block > 0 ? sq / static_cast<double>(block) : 0;
        const double inv = 1.0 / std::sqrt(var + static_cast<double>(epsilon_));
        for (int64_t j = 0; j < block; ++j) {
          const double s = ReadDouble(*scale, scale->count == 1 ? 0 : j);
          const double b = bias == nullptr ? 0.0 : ReadDouble(*bias, bias->count == 1 ? 0 : j);
          const double v = (static_cast<double>(C(row[j])) - mean) * inv * s + b;
          y[r * block + j] = T(static_cast<C>(v));
        }
        if (mean_out != nullptr) mean_out[r] = static_cast<float>(mean);
        if (inv_out != nullptr) inv_out[r] = static_cast<float>(inv);
      }
      return Status();
    });
  }

 private:
  int64_t axis_;
  float epsilon_;
};

Result<std::unique_ptr<Kernel>> MakeLayerNorm(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 3));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(1, 3));
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", -1));
  OUTPOST_ASSIGN_OR_RETURN(float epsilon, ctx.Float("epsilon", 1e-5f));
  return std::unique_ptr<Kernel>(new LayerNormKernel(axis, epsilon));
}

// ---- NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss ----

enum class Reduction { kNone, kSum, kMean };

class LossKernel : public Kernel {
 public:
  // softmax: SoftmaxCrossEntropyLoss (log-softmax of the scores first).
  LossKernel(bool softmax, Reduction reduction, bool has_ignore, int64_t ignore_index)
      : softmax_(softmax),
        reduction_(reduction),
        has_ignore_(has_ignore),
        ignore_index_(ignore_index) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    OUTPOST_RETURN_IF_ERROR(CheckType(t, kFloatTypes, "input"));
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(1), kIndexTypes, "target"));
    const Shape& x = ctx.input_shape(0);
    const Shape& target = ctx.input_shape(1);
    if (x.size() < 2) return InvalidArgumentError("input must have rank >= 2");
    Shape want{x[0]};
    want.insert(want.end(), x.begin() + 2, x.end());
    if (target != want) {
      return InvalidArgumentError("target has shape " + ShapeToString(target) + ", expected " +
                                  ShapeToString(want));
    }
    if (ctx.has_input(2) && ctx.input_shape(2) != Shape{x[1]}) {
      return InvalidArgumentError("weight must have one value per class");
    }
    ctx.SetOutput(0, t, reduction_ == Reduction::kNone ? target : Shape{});
    if (softmax_) ctx.SetOutput(1, t, x);
    if (softmax_) {
      ctx.RequestScratch(static_cast<size_t>(NumElements(x)) * sizeof(double));
    }
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& target = ctx.input(1);
    const int64_t n = x.shape[0];
    const int64_t c = x.shape[1];
    const int64_t d = DimProduct(x.shape, 2, x.rank());
    return Dispatch<kFloatTypes>(x.type, [&](auto tag) -> Status {
      using T = decltype(tag);
      using C = MathT<T>;
      const T* xv = x.get<T>();
      // Log-probabilities in double: scratch for SoftmaxCrossEntropyLoss, else the input.
      auto* logp = reinterpret_cast<double*>(ctx.scratch().data());
      if (softmax_) {
        for (int64_t b = 0; b < n; ++b) {
          for (int64_t k = 0; k < d; ++k) {
            double m = -std::numeric_limits<double>::infinity();
            for (int64_t j = 0; j < c; ++j) {
              m = std::max(m, static_cast<double>(C(xv[(b * c + j) * d + k])));
            }
            double sum = 0;
            for (int64_t j = 0; j < c; ++j) {
              sum += std::exp(static_cast<double>(C(xv[(b * c + j) * d + k])) - m);
            }
            const double log_sum = std::log(sum);
            for (int64_t j = 0; j < c; ++j) {
              const int64_t i = (b * c + j) * d + k;
              logp[i] = static_cast<double>(C(xv[i])) - m - log_sum;
            }
          }
        }
        if (ctx.has_output(1)) {
          T* lp = ctx.output(1).mut<T>();
          for (int64_t i = 0; i < x.count; ++i) lp[i] = T(static_cast<C>(logp[i]));
        }
      }
      auto input_at = [&](int64_t i) {
        return softmax_ ? logp[i] : static_cast<double>(C(xv[i]));
      };
      const TensorRef* weight = ctx.has_input(2) ? &ctx.input(2) : nullptr;
      T* out = ctx.output(0).mut<T>();
      double total = 0, weight_sum = 0;
      for (int64_t b = 0; b < n; ++b) {
        for (int64_t k = 0; k < d; ++k) {
          const int64_t t = ReadInt64(target, b * d + k);
          double loss = 0, w = 0;
          if (!(has_ignore_ && t == ignore_index_)) {
            if (t < 0 || t >= c) {
              return InvalidArgumentError("target " + std::to_string(t) +
                                          " is out of range for " + std::to_string(c) +
                                          " classes");
            }
            w = weight == nullptr ? 1.0 : ReadDouble(*weight, t);
            loss = -input_at((b * c + t) * d + k) * w;
          }
          if (reduction_ == Reduction::kNone) out[b * d + k] = T(static_cast<C>(loss));
          total += loss;
          weight_sum += w;
        }
      }
      if (reduction_ == Reduction::kSum) {
        out[0] = T(static_cast<C>(total));
      } else if (reduction_ == Reduction::kMean) {
        // With weights or an ignore index the mean is over the weights; otherwise over all
        // elements (the same number when every weight is 1).
        const double denom = (weight != nullptr || has_ignore_)
                                 ? weight_sum
                                 : static_cast<double>(n * d);
        out[0] = T(static_cast<C>(total / denom));
      }
      return Status();
    });
  }

 private:
  bool softmax_;
  Reduction reduction_;
  bool has_ignore_;
  int64_t ignore_index_;
};

template <bool kSoftmax>
Result<std::unique_ptr<Kernel>> MakeLoss(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 3));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(1, kSoftmax ? 2 : 1));
  OUTPOST_ASSIGN_OR_RETURN(std::string reduction, ctx.String("reduction", "mean"));
  OUTPOST_ASSIGN_OR_RETURN(int64_t ignore, ctx.Int("ignore_index", 0));
  Reduction r;
  if (reduction == "none") {
    r = Reduction::kNone;
  } else if (reduction == "sum") {
    r = Reduction::kSum;
  } else if (reduction == "mean") {
    r = Reduction::kMean;
  } else {
    return InvalidArgumentError("unknown reduction \"" + reduction + "\"");
  }
  return std::unique_ptr<Kernel>(new LossKernel(kSoftmax, r, ctx.Has("ignore_index"), ignore));
}

}  // namespace

void RegisterNormKernels(KernelRegistry& r) {
  r.Add({"", "LayerNormalization", 17, 1000, &MakeLayerNorm});
  r.Add({"", "NegativeLogLikelihoodLoss", 12, 1000, &MakeLoss<false>});
  r.Add({"", "SoftmaxCrossEntropyLoss", 12, 1000, &MakeLoss<true>});
}

}  // namespace outpost::engine::onnx
