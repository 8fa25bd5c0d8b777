// The ONNX-ML operators other than the tree ensembles (kernels_ml_tree.cc): LinearRegressor,
// LinearClassifier, Scaler, Normalizer, Binarizer, ArrayFeatureExtractor, Imputer,
// OneHotEncoder, LabelEncoder, FeatureVectorizer and ZipMap. Arithmetic is float, as in ONNX
// Runtime, whose rules (label choice, binary score columns) these kernels follow.
//
// ZipMap's output is a sequence of maps in ONNX; the engine's API carries tensors only, so
// ZipMap yields its input unchanged: an [N, C] FLOAT tensor whose column j holds the
// probability of the j-th class label.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>

#include "engine/onnx/kernel_util.h"
#include "engine/onnx/ml_common.h"

namespace outpost::engine::onnx {
namespace {

inline constexpr uint32_t kMlNumeric = TypeBit(DataType::kFp32) | TypeBit(DataType::kFp64) |
                                       TypeBit(DataType::kInt64) | TypeBit(DataType::kInt32);

// Rows and columns of a 1-D ([C] = one row) or 2-D input.
Status RowsCols(const Shape& s, int64_t* rows, int64_t* cols) {
  if (s.empty() || s.size() > 2) return InvalidArgumentError("X must be 1-D or 2-D");
  *rows = s.size() == 1 ? 1 : s[0];
  *cols = s.back();
  return Status();
}

inline float ReadFloat(const TensorRef& t, int64_t i) {
  switch (t.type) {
    case DataType::kFp32: return t.get<float>()[i];
    case DataType::kFp64: return static_cast<float>(t.get<double>()[i]);
    case DataType::kInt64: return static_cast<float>(t.get<int64_t>()[i]);
    case DataType::kInt32: return static_cast<float>(t.get<int32_t>()[i]);
    default: return static_cast<float>(ReadDouble(t, i));
  }
}

// ---- LinearRegressor, LinearClassifier ----

// scores[r, t] = intercept[t] + sum_k x[r, k] * coef[t, k]
void LinearScores(const TensorRef& x, int64_t rows, int64_t features, int64_t targets,
                  const std::vector<float>& coef, const std::vector<float>& intercepts,
                  float* out, int64_t out_stride) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < targets; ++t) {
      // Accumulated in double: the float result is then the correctly rounded one.
      double s = 0;
      const float* w = coef.data() + t * features;
      for (int64_t k = 0; k < features; ++k) {
        s += static_cast<double>(ReadFloat(x, r * features + k)) * static_cast<double>(w[k]);
      }
      out[r * out_stride + t] = static_cast<float>(
          s + (intercepts.empty() ? 0.0 : static_cast<double>(intercepts[static_cast<size_t>(t)])));
    }
  }
}

class LinearRegressorKernel : public Kernel {
 public:
  LinearRegressorKernel(std::vector<float> coef, std::vector<float> intercepts, int64_t targets,
                        PostTransform post)
      : coef_(std::move(coef)), intercepts_(std::move(intercepts)), targets_(targets), post_(post) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kMlNumeric, "X"));
    int64_t rows = 0, cols = 0;
    OUTPOST_RETURN_IF_ERROR(RowsCols(ctx.input_shape(0), &rows, &cols));
    if (cols * targets_ != static_cast<int64_t>(coef_.size())) {
      return InvalidArgumentError("X has " + std::to_string(cols) + " features but there are " +
                                  std::to_string(coef_.size()) + " coefficients for " +
                                  std::to_string(targets_) + " targets");
    }
    ctx.SetOutput(0, DataType::kFp32, {rows, targets_});
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    const int64_t rows = y.shape[0];
    const int64_t cols = x.shape.back();
    float* out = y.mut<float>();
    LinearScores(x, rows, cols, targets_, coef_, intercepts_, out, targets_);
    for (int64_t r = 0; r < rows; ++r) {
      float* s = out + r * targets_;
      if (targets_ > 1) {
        TransformScores(post_, s, targets_);
      } else if (post_ == PostTransform::kProbit) {
        s[0] = Probit(s[0]);
      }
    }
    return Status();
  }

 private:
  std::vector<float> coef_;
  std::vector<float> intercepts_;
  int64_t targets_;
  PostTransform post_;
};

Result<std::unique_ptr<Kernel>> MakeLinearRegressor(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> coef, ctx.Floats("coefficients"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> intercepts, ctx.Floats("intercepts"));
  OUTPOST_ASSIGN_OR_RETURN(int64_t targets, ctx.Int("targets", 1));
  OUTPOST_ASSIGN_OR_RETURN(std::string post, ctx.String("post_transform", "NONE"));
  OUTPOST_ASSIGN_OR_RETURN(PostTransform pt, ParsePostTransform(post));
  if (targets < 1 || coef.empty() || coef.size() % static_cast<size_t>(targets) != 0) {
    return InvalidArgumentError("coefficients must hold targets x features values");
  }
  if (!intercepts.empty() && static_cast<int64_t>(intercepts.size()) != targets) {
    return InvalidArgumentError("intercepts must hold one value per target");
  }
  return std::unique_ptr<Kernel>(
      new LinearRegressorKernel(std::move(coef), std::move(intercepts), targets, pt));
}

class LinearClassifierKernel : public Kernel {
 public:
  LinearClassifierKernel(std::vector<float> coef, std::vector<float> intercepts,
                         std::vector<int64_t> labels_int, std::vector<std::string> labels_str,
                         PostTransform post)
      : coef_(std::move(coef)),
        intercepts_(std::move(intercepts)),
        labels_int_(std::move(labels_int)),
        labels_str_(std::move(labels_str)),
        post_(post) {
    classes_ = static_cast<int64_t>(intercepts_.size());
    const size_t labels = labels_str_.empty() ? labels_int_.size() : labels_str_.size();
    add_second_class_ = classes_ == 1 && labels == 2;
  }

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kMlNumeric, "X"));
    int64_t rows = 0, cols = 0;
    OUTPOST_RETURN_IF_ERROR(RowsCols(ctx.input_shape(0), &rows, &cols));
    if (cols * classes_ != static_cast<int64_t>(coef_.size())) {
      return InvalidArgumentError("X has " + std::to_string(cols) + " features but there are " +
                                  std::to_string(coef_.size()) + " coefficients for " +
                                  std::to_string(classes_) + " classes");
    }
    ctx.SetOutput(0, labels_str_.empty() ? DataType::kInt64 : DataType::kBytes, {rows});
    ctx.SetOutput(1, DataType::kFp32, {rows, add_second_class_ ? 2 : classes_});
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& labels = ctx.output(0);
    const TensorRef& z = ctx.output(1);
    const int64_t rows = z.shape[0];
    const int64_t width = z.shape[1];
    const int64_t cols = x.shape.back();
    float* out = z.mut<float>();
    LinearScores(x, rows, cols, classes_, coef_, intercepts_, out, width);
    for (int64_t r = 0; r < rows; ++r) {
      float* s = out + r * width;
      size_t label;
      if (classes_ == 1) {
        label = s[0] > 0 ? 1 : 0;
      } else {
        label = 0;
        for (int64_t k = 1; k < classes_; ++k) {
          if (s[k] > s[label]) label = static_cast<size_t>(k);
        }
      }
      // Binary models with one score: labels[1] / labels[0] when two labels are given,
      // otherwise 1 / 0 ("1" / "0").
      if (labels_str_.empty()) {
        const bool direct = classes_ > 1 || labels_int_.size() == 2;
        labels.mut<int64_t>()[r] =
            direct ? labels_int_[label] : static_cast<int64_t>(label);
      } else {
        const bool direct = classes_ > 1 || labels_str_.size() == 2;
        labels.strings[r] = direct ? labels_str_[label] : (label == 1 ? "1" : "0");
      }
      if (classes_ > 1) {
        TransformScores(post_, s, classes_);
      } else if (post_ == PostTransform::kProbit) {
        s[0] = Probit(s[0]);
        if (add_second_class_) s[1] = 0;
      } else if (add_second_class_) {
        // [1 - s, s] from the raw score, as ONNX Runtime writes it.
        const float v = s[0];
        s[0] = 1.0f - v;
        s[1] = v;
      }
    }
    return Status();
  }

 private:
  std::vector<float> coef_;
  std::vector<float> intercepts_;
  std::vector<int64_t> labels_int_;
  std::vector<std::string> labels_str_;
  PostTransform post_;
  int64_t classes_ = 0;
  bool add_second_class_ = false;
};

Result<std::unique_ptr<Kernel>> MakeLinearClassifier(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(2, 2));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> coef, ctx.Floats("coefficients"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> intercepts, ctx.Floats("intercepts"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> labels_int, ctx.Ints("classlabels_ints"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> labels_str, ctx.Strings("classlabels_strings"));
  OUTPOST_ASSIGN_OR_RETURN(std::string post, ctx.String("post_transform", "NONE"));
  OUTPOST_ASSIGN_OR_RETURN(PostTransform pt, ParsePostTransform(post));
  if (intercepts.empty()) return InvalidArgumentError("intercepts are required");
  if (coef.empty() || coef.size() % intercepts.size() != 0) {
    return InvalidArgumentError("coefficients must hold classes x features values");
  }
  if (labels_int.empty() == labels_str.empty()) {
    return InvalidArgumentError("exactly one of classlabels_ints and classlabels_strings is needed");
  }
  const size_t labels = labels_str.empty() ? labels_int.size() : labels_str.size();
  if (intercepts.size() > 1 && labels < intercepts.size()) {
    return InvalidArgumentError("fewer class labels than classes");
  }
  return std::unique_ptr<Kernel>(new LinearClassifierKernel(
      std::move(coef), std::move(intercepts), std::move(labels_int), std::move(labels_str), pt));
}

// ---- Scaler, Normalizer, Binarizer ----

class ScalerKernel : public Kernel {
 public:
  ScalerKernel(std::vector<float> offset, std::vector<float> scale)
      : offset_(std::move(offset)), scale_(std::move(scale)) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kMlNumeric, "X"));
    const Shape& s = ctx.input_shape(0);
    if (s.empty()) return InvalidArgumentError("X must have at least one dimension");
    const int64_t cols = s.size() == 1 ? s[0] : s[1];
    for (const auto* v : {&offset_, &scale_}) {
      if (v->size() > 1 && static_cast<int64_t>(v->size()) != cols) {
        return InvalidArgumentError("offset and scale must have 1 or " + std::to_string(cols) +
                                    " values");
      }
    }
    ctx.SetOutput(0, DataType::kFp32, s);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    float* y = ctx.output(0).mut<float>();
    const int64_t cols = x.rank() == 1 ? x.shape[0] : x.shape[1];
    const int64_t inner = x.rank() <= 2 ? 1 : DimProduct(x.shape, 2, x.rank());
    for (int64_t i = 0; i < x.count; ++i) {
      const auto c = static_cast<size_t>(cols == 0 ? 0 : (i / inner) % cols);
      const float off = offset_.empty() ? 0.0f : offset_[offset_.size() == 1 ? 0 : c];
      const float sc = scale_.empty() ? 1.0f : scale_[scale_.size() == 1 ? 0 : c];
      y[i] = (ReadFloat(x, i) - off) * sc;
    }
    return Status();
  }

 private:
  std::vector<float> offset_;
  std::vector<float> scale_;
};

Result<std::unique_ptr<Kernel>> MakeScaler(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> offset, ctx.Floats("offset"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> scale, ctx.Floats("scale"));
  return std::unique_ptr<Kernel>(new ScalerKernel(std::move(offset), std::move(scale)));
}

enum class Norm { kMax, kL1, kL2 };

class NormalizerKernel : public Kernel {
 public:
  explicit NormalizerKernel(Norm norm) : norm_(norm) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kMlNumeric, "X"));
    if (ctx.input_shape(0).empty()) return InvalidArgumentError("X must not be a scalar");
    ctx.SetOutput(0, DataType::kFp32, ctx.input_shape(0));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    float* y = ctx.output(0).mut<float>();
    // Normalised along dimension 1 (dimension 0 for 1-D input).
    const int64_t stride = x.rank() == 1 ? x.shape[0] : x.shape[1];
    const int64_t inc = x.rank() > 1 ? DimProduct(x.shape, 2, x.rank()) : 1;
    if (stride == 0 || inc == 0) return Status();
    const int64_t loops = x.count / stride;
    for (int64_t n = 0; n < loops; ++n) {
      const int64_t offset = (n % inc) + (n / inc) * (stride * inc);
      auto at = [&](int64_t s) { return offset + s * inc; };
      switch (norm_) {
        case Norm::kMax: {
          float m = std::numeric_limits<float>::lowest();
          for (int64_t s = 0; s < stride; ++s) m = std::max(m, ReadFloat(x, at(s)));
          for (int64_t s = 0; s < stride; ++s) {
            y[at(s)] = m != 0.0f ? ReadFloat(x, at(s)) / m : ReadFloat(x, at(s));
          }
          break;
        }
        case Norm::kL1: {
          float sum = 0;
          for (int64_t s = 0; s < stride; ++s) sum += std::abs(ReadFloat(x, at(s)));
          for (int64_t s = 0; s < stride; ++s) {
            y[at(s)] = sum != 0.0f ? ReadFloat(x, at(s)) / sum : ReadFloat(x, at(s));
          }
          break;
        }
        case Norm::kL2: {
          float sum = 0;
          for (int64_t s = 0; s < stride; ++s) {
            const float v = ReadFloat(x, at(s));
            sum += v * v;
          }
          for (int64_t s = 0; s < stride; ++s) {
            const float v = ReadFloat(x, at(s));
            if (sum != 0.0f) {
              const float r = std::sqrt(v * v / sum);
              y[at(s)] = v < 0 ? -r : r;
            } else {
              y[at(s)] = v;
            }
          }
          break;
        }
      }
    }
    return Status();
  }

 private:
  Norm norm_;
};

Result<std::unique_ptr<Kernel>> MakeNormalizer(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::string norm, ctx.String("norm", "MAX"));
  Norm n;
  if (norm == "MAX") {
    n = Norm::kMax;
  } else if (norm == "L1") {
    n = Norm::kL1;
  } else if (norm == "L2") {
    n = Norm::kL2;
  } else {
    return InvalidArgumentError("unknown norm \"" + norm + "\"");
  }
  return std::unique_ptr<Kernel>(new NormalizerKernel(n));
}

class BinarizerKernel : public Kernel {
 public:
  explicit BinarizerKernel(float threshold) : threshold_(threshold) {}
  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kMlNumeric, "X"));
    ctx.SetOutput(0, ctx.input_type(0), ctx.input_shape(0));
    return Status();
  }
  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    return Dispatch<kMlNumeric>(x.type, [&](auto tag) {
      using T = decltype(tag);
      const T* xv = x.get<T>();
      T* y = ctx.output(0).mut<T>();
      for (int64_t i = 0; i < x.count; ++i) {
        y[i] = static_cast<double>(xv[i]) > static_cast<double>(threshold_) ? T(1) : T(0);
      }
      return Status();
    });
  }

 private:
  float threshold_;
};

Result<std::unique_ptr<Kernel>> MakeBinarizer(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(float threshold, ctx.Float("threshold", 0.0f));
  return std::unique_ptr<Kernel>(new BinarizerKernel(threshold));
}

// ---- ArrayFeatureExtractor ----

Status InferArrayFeatureExtractor(InferContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(
      CheckType(ctx.input_type(0), kMlNumeric | TypeBit(DataType::kBytes), "X"));
  if (ctx.input_type(1) != DataType::kInt64) return InvalidArgumentError("Y must be INT64");
  const Shape& x = ctx.input_shape(0);
  if (x.empty()) return InvalidArgumentError("X must not be a scalar");
  const int64_t k = NumElements(ctx.input_shape(1));
  if (k == 0) return InvalidArgumentError("Y must hold at least one index");
  Shape out = x;
  if (out.size() == 1) out.insert(out.begin(), 1);
  out.back() = k;
  ctx.SetOutput(0, ctx.input_type(0), std::move(out));
  return Status();
}

Status ComputeArrayFeatureExtractor(ComputeContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& idx = ctx.input(1);
  const TensorRef& out = ctx.output(0);
  const int64_t stride = x.shape.back();
  const int64_t rows = stride == 0 ? 0 : x.count / stride;
  const int64_t* ind = idx.get<int64_t>();
  for (int64_t j = 0; j < idx.count; ++j) {
    if (ind[j] < 0 || ind[j] >= stride) {
      return InvalidArgumentError("index " + std::to_string(ind[j]) +
                                  " is out of range for " + std::to_string(stride) + " columns");
    }
  }
  const size_t es = x.type == DataType::kBytes ? 0 : ElementSize(x.type);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < idx.count; ++j) {
      const int64_t from = r * stride + ind[j];
      const int64_t to = r * idx.count + j;
      if (x.type == DataType::kBytes) {
        out.strings[to] = x.strings[from];
      } else {
        std::memcpy(static_cast<std::byte*>(out.data) + to * static_cast<int64_t>(es),
                    static_cast<const std::byte*>(x.data) + from * static_cast<int64_t>(es), es);
      }
    }
  }
  return Status();
}

Result<std::unique_ptr<Kernel>> MakeArrayFeatureExtractor(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  return std::unique_ptr<Kernel>(
      new FunctionKernel(&InferArrayFeatureExtractor, &ComputeArrayFeatureExtractor));
}

// ---- Imputer ----

class ImputerKernel : public Kernel {
 public:
  ImputerKernel(std::vector<float> floats, std::vector<int64_t> ints, float replaced_float,
                int64_t replaced_int)
      : floats_(std::move(floats)),
        ints_(std::move(ints)),
        replaced_float_(replaced_float),
        replaced_int_(replaced_int) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    const bool is_float = t == DataType::kFp32 || t == DataType::kFp64;
    const bool is_int = t == DataType::kInt64 || t == DataType::kInt32;
    if (!is_float && !is_int) return InvalidArgumentError("X must be FLOAT, DOUBLE or INT64");
    const auto& values = is_float ? floats_.size() : ints_.size();
    if (values == 0) {
      return InvalidArgumentError(is_float ? "imputed_value_floats is needed for a float input"
                                           : "imputed_value_int64s is needed for an int input");
    }
    const Shape& s = ctx.input_shape(0);
    if (s.empty()) return InvalidArgumentError("X must not be a scalar");
    if (values > 1 && static_cast<int64_t>(values) != s.back()) {
      return InvalidArgumentError("imputed values must be 1 or one per column");
    }
    ctx.SetOutput(0, t, s);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const int64_t cols = x.shape.back();
    return Dispatch<kMlNumeric>(x.type, [&](auto tag) {
      using T = decltype(tag);
      const T* xv = x.get<T>();
      T* y = ctx.output(0).mut<T>();
      for (int64_t i = 0; i < x.count; ++i) {
        const auto c = static_cast<size_t>(cols == 0 ? 0 : i % cols);
        if constexpr (std::is_floating_point_v<T>) {
          const bool hit = std::isnan(replaced_float_)
                               ? std::isnan(xv[i])
                               : xv[i] == static_cast<T>(replaced_float_);
          y[i] = hit ? static_cast<T>(floats_[floats_.size() == 1 ? 0 : c]) : xv[i];
        } else {
          const bool hit = static_cast<int64_t>(xv[i]) == replaced_int_;
          y[i] = hit ? static_cast<T>(ints_[ints_.size() == 1 ? 0 : c]) : xv[i];
        }
      }
      return Status();
    });
  }

 private:
  std::vector<float> floats_;
  std::vector<int64_t> ints_;
  float replaced_float_;
  int64_t replaced_int_;
};

Result<std::unique_ptr<Kernel>> MakeImputer(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> floats, ctx.Floats("imputed_value_floats"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> ints, ctx.Ints("imputed_value_int64s"));
  OUTPOST_ASSIGN_OR_RETURN(float rf, ctx.Float("replaced_value_float", 0.0f));
  OUTPOST_ASSIGN_OR_RETURN(int64_t ri, ctx.Int("replaced_value_int64", 0));
  return std::unique_ptr<Kernel>(new ImputerKernel(std::move(floats), std::move(ints), rf, ri));
}

// ---- OneHotEncoder ----

class OneHotEncoderKernel : public Kernel {
 public:
  OneHotEncoderKernel(std::vector<int64_t> ints, std::vector<std::string> strings, bool zeros)
      : zeros_(zeros) {
    size_ = static_cast<int64_t>(ints.empty() ? strings.size() : ints.size());
    for (size_t i = 0; i < ints.size(); ++i) ints_.emplace(ints[i], static_cast<int64_t>(i));
    for (size_t i = 0; i < strings.size(); ++i) {
      strings_.emplace(strings[i], static_cast<int64_t>(i));
    }
    by_string_ = !strings.empty();
  }

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    if (by_string_ ? t != DataType::kBytes : (kMlNumeric & TypeBit(t)) == 0) {
      return InvalidArgumentError(by_string_ ? "X must be STRING for string categories"
                                             : "X must be numeric for integer categories");
    }
    Shape out = ctx.input_shape(0);
    out.push_back(size_);
    OUTPOST_RETURN_IF_ERROR(CheckedElements(out).status());
    ctx.SetOutput(0, DataType::kFp32, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    float* y = ctx.output(0).mut<float>();
    std::fill_n(y, ctx.output(0).count, 0.0f);
    for (int64_t i = 0; i < x.count; ++i) {
      int64_t hit = -1;
      if (by_string_) {
        auto it = strings_.find(x.strings[i]);
        if (it != strings_.end()) hit = it->second;
      } else {
        auto it = ints_.find(static_cast<int64_t>(ReadDouble(x, i)));
        if (it != ints_.end()) hit = it->second;
      }
      if (hit < 0) {
        if (!zeros_) return InvalidArgumentError("a value is not one of the categories");
        continue;
      }
      y[i * size_ + hit] = 1.0f;
    }
    return Status();
  }

 private:
  std::unordered_map<int64_t, int64_t> ints_;
  std::unordered_map<std::string, int64_t> strings_;
  int64_t size_ = 0;
  bool by_string_ = false;
  bool zeros_;
};

Result<std::unique_ptr<Kernel>> MakeOneHotEncoder(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> ints, ctx.Ints("cats_int64s"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> strings, ctx.Strings("cats_strings"));
  OUTPOST_ASSIGN_OR_RETURN(int64_t zeros, ctx.Int("zeros", 1));
  if (ints.empty() == strings.empty()) {
    return InvalidArgumentError("exactly one of cats_int64s and cats_strings is needed");
  }
  return std::unique_ptr<Kernel>(
      new OneHotEncoderKernel(std::move(ints), std::move(strings), zeros != 0));
}

// ---- LabelEncoder ----

// Keys and values of one element type each: INT64, FLOAT or BYTES.
class LabelEncoderKernel : public Kernel {
 public:
  struct Table {
    DataType key_type = DataType::kBytes;
    DataType value_type = DataType::kInt64;
    std::unordered_map<std::string, size_t> string_keys;
    std::unordered_map<int64_t, size_t> int_keys;
    std::map<float, size_t> float_keys;  // NaN is never a key
    std::vector<std::string> string_values;
    std::vector<int64_t> int_values;
    std::vector<float> float_values;
    std::string default_string;
    int64_t default_int = -1;
    float default_float = -0.0f;
  };

  explicit LabelEncoderKernel(Table t) : t_(std::move(t)) {}

  Status Infer(InferContext& ctx) const override {
    DataType in = ctx.input_type(0);
    const bool ok = in == t_.key_type || (t_.key_type == DataType::kInt64 && in == DataType::kInt32) ||
                    (t_.key_type == DataType::kFp32 && in == DataType::kFp64);
    if (!ok) {
      return InvalidArgumentError("X has element type " + std::string(DataTypeName(in)) +
                                  " but the keys are " + std::string(DataTypeName(t_.key_type)));
    }
    ctx.SetOutput(0, t_.value_type, ctx.input_shape(0));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    for (int64_t i = 0; i < x.count; ++i) {
      size_t hit = SIZE_MAX;
      if (t_.key_type == DataType::kBytes) {
        auto it = t_.string_keys.find(x.strings[i]);
        if (it != t_.string_keys.end()) hit = it->second;
      } else if (t_.key_type == DataType::kInt64) {
        auto it = t_.int_keys.find(ReadInt64(x, i));
        if (it != t_.int_keys.end()) hit = it->second;
      } else {
        const auto v = static_cast<float>(ReadDouble(x, i));
        auto it = t_.float_keys.find(v);
        if (it != t_.float_keys.end()) hit = it->second;
      }
      switch (t_.value_type) {
        case DataType::kBytes:
          y.strings[i] = hit == SIZE_MAX ? t_.default_string : t_.string_values[hit];
          break;
        case DataType::kInt64:
          y.mut<int64_t>()[i] = hit == SIZE_MAX ? t_.default_int : t_.int_values[hit];
          break;
        default:
          y.mut<float>()[i] = hit == SIZE_MAX ? t_.default_float : t_.float_values[hit];
          break;
      }
    }
    return Status();
  }

 private:
  Table t_;
};

Result<std::unique_ptr<Kernel>> MakeLabelEncoder(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  LabelEncoderKernel::Table t;
  OUTPOST_ASSIGN_OR_RETURN(t.default_string, ctx.String("default_string", "_Unused"));
  OUTPOST_ASSIGN_OR_RETURN(t.default_int, ctx.Int("default_int64", -1));
  OUTPOST_ASSIGN_OR_RETURN(t.default_float, ctx.Float("default_float", -0.0f));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> ks, ctx.Strings("keys_strings"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> ki, ctx.Ints("keys_int64s"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> kf, ctx.Floats("keys_floats"));
  OUTPOST_ASSIGN_OR_RETURN(t.string_values, ctx.Strings("values_strings"));
  OUTPOST_ASSIGN_OR_RETURN(t.int_values, ctx.Ints("values_int64s"));
  OUTPOST_ASSIGN_OR_RETURN(t.float_values, ctx.Floats("values_floats"));
  const int key_kinds = !ks.empty() + !ki.empty() + !kf.empty();
  const int value_kinds = !t.string_values.empty() + !t.int_values.empty() +
                          !t.float_values.empty();
  if (key_kinds != 1 || value_kinds != 1) {
    return InvalidArgumentError("exactly one kind of keys and one kind of values is needed");
  }
  const size_t keys = ks.size() + ki.size() + kf.size();
  const size_t values = t.string_values.size() + t.int_values.size() + t.float_values.size();
  if (keys != values) return InvalidArgumentError("keys and values differ in number");
  t.key_type = !ks.empty() ? DataType::kBytes : (!ki.empty() ? DataType::kInt64 : DataType::kFp32);
  t.value_type = !t.string_values.empty()
                     ? DataType::kBytes
                     : (!t.int_values.empty() ? DataType::kInt64 : DataType::kFp32);
  for (size_t i = 0; i < ks.size(); ++i) t.string_keys.emplace(ks[i], i);
  for (size_t i = 0; i < ki.size(); ++i) t.int_keys.emplace(ki[i], i);
  for (size_t i = 0; i < kf.size(); ++i) {
    if (!std::isnan(kf[i])) t.float_keys.emplace(kf[i], i);
  }
  return std::unique_ptr<Kernel>(new LabelEncoderKernel(std::move(t)));
}

// Version 1 with integer input: the index's class string.
class LabelEncoderV1Kernel : public Kernel {
 public:
  LabelEncoderV1Kernel(std::vector<std::string> classes, std::string default_string,
                       int64_t default_int)
      : classes_(std::move(classes)),
        default_string_(std::move(default_string)),
        default_int_(default_int) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    if (t == DataType::kBytes) {
      ctx.SetOutput(0, DataType::kInt64, ctx.input_shape(0));
    } else if (t == DataType::kInt64) {
      ctx.SetOutput(0, DataType::kBytes, ctx.input_shape(0));
    } else {
      return InvalidArgumentError("X must be STRING or INT64");
    }
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    if (x.type == DataType::kBytes) {
      for (int64_t i = 0; i < x.count; ++i) {
        auto it = std::find(classes_.begin(), classes_.end(), x.strings[i]);
        y.mut<int64_t>()[i] = it == classes_.end() ? default_int_ : it - classes_.begin();
      }
    } else {
      for (int64_t i = 0; i < x.count; ++i) {
        const int64_t k = x.get<int64_t>()[i];
        y.strings[i] = k >= 0 && k < static_cast<int64_t>(classes_.size())
                           ? classes_[static_cast<size_t>(k)]
                           : default_string_;
      }
    }
    return Status();
  }

 private:
  std::vector<std::string> classes_;
  std::string default_string_;
  int64_t default_int_;
};

Result<std::unique_ptr<Kernel>> MakeLabelEncoderV1(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> classes, ctx.Strings("classes_strings"));
  OUTPOST_ASSIGN_OR_RETURN(std::string ds, ctx.String("default_string", "_Unused"));
  OUTPOST_ASSIGN_OR_RETURN(int64_t di, ctx.Int("default_int64", -1));
  return std::unique_ptr<Kernel>(new LabelEncoderV1Kernel(std::move(classes), std::move(ds), di));
}

// ---- FeatureVectorizer ----

class FeatureVectorizerKernel : public Kernel {
 public:
  explicit FeatureVectorizerKernel(std::vector<int64_t> dims) : dims_(std::move(dims)) {
    for (int64_t d : dims_) total_ += d;
  }

  Status Infer(InferContext& ctx) const override {
    if (ctx.num_inputs() != dims_.size()) {
      return InvalidArgumentError("inputdimensions has " + std::to_string(dims_.size()) +
                                  " entries for " + std::to_string(ctx.num_inputs()) + " inputs");
    }
    int64_t rows = -1;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(i), kMlNumeric, "an input"));
      const Shape& s = ctx.input_shape(i);
      if (s.empty()) return InvalidArgumentError("inputs must not be scalars");
      const int64_t r = s.size() == 1 ? 1 : s[0];
      if (rows >= 0 && r != rows) return InvalidArgumentError("inputs differ in row count");
      rows = r;
    }
    ctx.SetOutput(0, DataType::kFp32, {rows, total_});
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    float* y = ctx.output(0).mut<float>();
    const int64_t rows = ctx.output(0).shape[0];
    std::fill_n(y, ctx.output(0).count, 0.0f);
    int64_t offset = 0;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const TensorRef& x = ctx.input(i);
      const int64_t width = rows == 0 ? 0 : x.count / rows;
      const int64_t take = std::min(width, dims_[i]);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < take; ++c) {
          y[r * total_ + offset + c] = ReadFloat(x, r * width + c);
        }
      }
      offset += dims_[i];
    }
    return Status();
  }

 private:
  std::vector<int64_t> dims_;
  int64_t total_ = 0;
};

Result<std::unique_ptr<Kernel>> MakeFeatureVectorizer(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1 << 16));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> dims, ctx.Ints("inputdimensions"));
  for (int64_t d : dims) {
    if (d < 0 || d > (int64_t{1} << 31)) return InvalidArgumentError("bad input dimension");
  }
  return std::unique_ptr<Kernel>(new FeatureVectorizerKernel(std::move(dims)));
}

// ---- ZipMap ----

class ZipMapKernel : public Kernel {
 public:
  explicit ZipMapKernel(int64_t classes) : classes_(classes) {}
  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kFp32) return InvalidArgumentError("X must be FLOAT");
    const Shape& s = ctx.input_shape(0);
    if (s.empty() || s.size() > 2 || s.back() != classes_) {
      return InvalidArgumentError("X " + ShapeToString(s) + " does not have one column per " +
                                  "class label (" + std::to_string(classes_) + ")");
    }
    ctx.SetOutput(0, DataType::kFp32, s.size() == 1 ? Shape{1, s[0]} : s);
    return Status();
  }
  Status Compute(ComputeContext& ctx) const override {
    CopyTensor(ctx.input(0), ctx.output(0));
    return Status();
  }

 private:
  int64_t classes_;
};

Result<std::unique_ptr<Kernel>> MakeZipMap(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> ints, ctx.Ints("classlabels_int64s"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> strings, ctx.Strings("classlabels_strings"));
  if (ints.empty() == strings.empty()) {
    return InvalidArgumentError("exactly one of classlabels_int64s and classlabels_strings");
  }
  return std::unique_ptr<Kernel>(
      new ZipMapKernel(static_cast<int64_t>(ints.empty() ? strings.size() : ints.size())));
}

}  // namespace

void RegisterMlKernels(KernelRegistry& r) {
  RegisterTreeKernels(r);
  r.Add({"ai.onnx.ml", "LinearRegressor", 1, 1000, &MakeLinearRegressor});
  r.Add({"ai.onnx.ml", "LinearClassifier", 1, 1000, &MakeLinearClassifier});
  r.Add({"ai.onnx.ml", "Scaler", 1, 1000, &MakeScaler});
  r.Add({"ai.onnx.ml", "Normalizer", 1, 1000, &MakeNormalizer});
  r.Add({"ai.onnx.ml", "Binarizer", 1, 1000, &MakeBinarizer});
  r.Add({"ai.onnx.ml", "ArrayFeatureExtractor", 1, 1000, &MakeArrayFeatureExtractor});
  r.Add({"ai.onnx.ml", "Imputer", 1, 1000, &MakeImputer});
  r.Add({"ai.onnx.ml", "OneHotEncoder", 1, 1000, &MakeOneHotEncoder});
  r.Add({"ai.onnx.ml", "LabelEncoder", 1, 1, &MakeLabelEncoderV1});
  r.Add({"ai.onnx.ml", "LabelEncoder", 2, 1000, &MakeLabelEncoder});
  r.Add({"ai.onnx.ml", "FeatureVectorizer", 1, 1000, &MakeFeatureVectorizer});
  r.Add({"ai.onnx.ml", "ZipMap", 1, 1000, &MakeZipMap});
}

}  // namespace outpost::engine::onnx
