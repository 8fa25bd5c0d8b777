// Operators of phase 2 outside the big families: LRN, MeanVarianceNormalization,
// GroupNormalization, Mish, Gelu, Det, MaxUnpool, TfIdfVectorizer, and Unique and StringNormalizer
// (whose output lengths depend on the data, so their shapes are computed during each run
// when the input is not a constant, like NonZero's), and the optimiser steps of the
// ai.onnx.preview.training domain (Adagrad, Momentum, Adam).
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <numbers>
#include <numeric>

#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

// ---- LRN ----

class LrnKernel : public Kernel {
 public:
  LrnKernel(float alpha, float beta, float bias, int64_t size)
      : alpha_(alpha), beta_(beta), bias_(bias), size_(size) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kFp32) return UnimplementedError("LRN supports FLOAT only");
    if (ctx.input_shape(0).size() < 3) return InvalidArgumentError("X must have rank >= 3");
    ctx.SetOutput(0, DataType::kFp32, ctx.input_shape(0));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const int64_t n = x.shape[0], c = x.shape[1];
    const int64_t plane = DimProduct(x.shape, 2, x.rank());
    const int64_t before = (size_ - 1) / 2, after = size_ - 1 - before;
    const float* xv = x.get<float>();
    float* y = ctx.output(0).mut<float>();
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t lo = std::max<int64_t>(0, ch - before);
        const int64_t hi = std::min<int64_t>(c - 1, ch + after);
        for (int64_t p = 0; p < plane; ++p) {
          float sum = 0;
          for (int64_t k = lo; k <= hi; ++k) {
            const float v = xv[(b * c + k) * plane + p];
            sum += v * v;
          }
          const int64_t at = (b * c + ch) * plane + p;
          y[at] = xv[at] / std::pow(bias_ + alpha_ / static_cast<float>(size_) * sum, beta_);
        }
      }
    }
    return Status();
  }

 private:
  float alpha_, beta_, bias_;
  int64_t size_;
};

Result<std::unique_ptr<Kernel>> MakeLrn(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(float alpha, ctx.Float("alpha", 0.0001f));
  OUTPOST_ASSIGN_OR_RETURN(float beta, ctx.Float("beta", 0.75f));
  OUTPOST_ASSIGN_OR_RETURN(float bias, ctx.Float("bias", 1.0f));
  OUTPOST_ASSIGN_OR_RETURN(int64_t size, ctx.Int("size", 0));
  if (size < 1 || size > (1 << 20)) return InvalidArgumentError("attribute \"size\" must be positive");
  return std::unique_ptr<Kernel>(new LrnKernel(alpha, beta, bias, size));
}

// ---- MeanVarianceNormalization, GroupNormalization ----

// Normalises x over the elements of each group: y = (x - mean) / (sqrt(var) + eps) when
// `eps_outside`, (x - mean) / sqrt(var + eps) otherwise; returns nothing, writes y.
void NormalizeRun(const float* x, float* y, int64_t count, int64_t stride, float eps,
                  bool eps_outside) {
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double v = x[i * stride];
    sum += v;
    sq += v * v;
  }
  const double mean = count > 0 ? sum / static_cast<double>(count) : 0.0;
  const double var = std::max(0.0, count > 0 ? sq / static_cast<double>(count) - mean * mean : 0.0);
  const double denom = eps_outside ? std::sqrt(var) + eps : std::sqrt(var + eps);
  for (int64_t i = 0; i < count; ++i) {
    y[i * stride] = static_cast<float>((x[i * stride] - mean) / denom);
  }
}

class MvnKernel : public Kernel {
 public:
  explicit MvnKernel(std::vector<int64_t> axes) : axes_(std::move(axes)) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kFp32) {
      return UnimplementedError("MeanVarianceNormalization supports FLOAT only");
    }
    const int64_t rank = static_cast<int64_t>(ctx.input_shape(0).size());
    for (int64_t a : axes_) OUTPOST_RETURN_IF_ERROR(NormalizeAxis(a, rank).status());
    ctx.SetOutput(0, DataType::kFp32, ctx.input_shape(0));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const size_t rank = x.rank();
    std::array<bool, kMaxRank> reduced{};
    for (int64_t a : axes_) reduced[static_cast<size_t>(a < 0 ? a + static_cast<int64_t>(rank) : a)] = true;
    // Walk the kept coordinates outside, the reduced ones inside; reduced elements of one
    // group are visited through an index list in the order of their offsets.
    std::array<int64_t, kMaxRank> stride{};
    int64_t acc = 1;
    for (size_t d = rank; d-- > 0;) {
      stride[d] = acc;
      acc *= x.shape[d];
    }
    int64_t group = 1, groups = 1;
    for (size_t d = 0; d < rank; ++d) (reduced[d] ? group : groups) *= x.shape[d];
    const float* xv = x.get<float>();
    float* y = ctx.output(0).mut<float>();
    std::array<int64_t, kMaxRank> kpos{}, rpos{};
    for (int64_t g = 0; g < groups; ++g) {
      int64_t base = 0;
      for (size_t d = 0; d < rank; ++d) {
        if (!reduced[d]) base += kpos[d] * stride[d];
      }
      double sum = 0, sq = 0;
      auto visit = [&](auto&& fn) {
        std::fill(rpos.begin(), rpos.end(), 0);
        for (int64_t i = 0; i < group; ++i) {
          int64_t off = base;
          for (size_t d = 0; d < rank; ++d) {
            if (reduced[d]) off += rpos[d] * stride[d];
          }
          fn(off);
          for (size_t d = rank; d-- > 0;) {
            if (!reduced[d]) continue;
            if (++rpos[d] < x.shape[d]) break;
            rpos[d] = 0;
          }
        }
      };
      visit([&](int64_t off) {
        sum += xv[off];
        sq += static_cast<double>(xv[off]) * xv[off];
      });
      const double mean = group > 0 ? sum / static_cast<double>(group) : 0.0;
      const double var = std::max(0.0, group > 0 ? sq / static_cast<double>(group) - mean * mean : 0.0);
      const double denom = std::sqrt(var) + 1e-9;
      visit([&](int64_t off) { y[off] = static_cast<float>((xv[off] - mean) / denom); });
      for (size_t d = rank; d-- > 0;) {
        if (reduced[d]) continue;
        if (++kpos[d] < x.shape[d]) break;
        kpos[d] = 0;
      }
    }
    return Status();
  }

 private:
  std::vector<int64_t> axes_;
};

Result<std::unique_ptr<Kernel>> MakeMvn(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ctx.Ints("axes"));
  if (!ctx.Has("axes")) axes = {0, 2, 3};
  return std::unique_ptr<Kernel>(new MvnKernel(std::move(axes)));
}

class GroupNormKernel : public Kernel {
 public:
  GroupNormKernel(int64_t groups, float epsilon, bool per_channel)
      : groups_(groups), epsilon_(epsilon), per_channel_(per_channel) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kFp32 || ctx.input_type(1) != DataType::kFp32 ||
        ctx.input_type(2) != DataType::kFp32) {
      return UnimplementedError("GroupNormalization supports FLOAT only");
    }
    const Shape& x = ctx.input_shape(0);
    if (x.size() < 2 || x[1] % groups_ != 0) {
      return InvalidArgumentError("X must be [N, C, ...] with C a multiple of num_groups");
    }
    const Shape want{per_channel_ ? x[1] : groups_};
    if (ctx.input_shape(1) != want || ctx.input_shape(2) != want) {
      return InvalidArgumentError("scale and bias must be " + ShapeToString(want));
    }
    ctx.SetOutput(0, DataType::kFp32, x);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const int64_t n = x.shape[0], c = x.shape[1];
    const int64_t plane = DimProduct(x.shape, 2, x.rank());
    const int64_t per_group = c / groups_;
    const float* scale = ctx.input(1).get<float>();
    const float* bias = ctx.input(2).get<float>();
    float* y = ctx.output(0).mut<float>();
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t g = 0; g < groups_; ++g) {
        const int64_t at = (b * c + g * per_group) * plane;
        NormalizeRun(x.get<float>() + at, y + at, per_group * plane, 1, epsilon_, false);
        for (int64_t ch = 0; ch < per_group; ++ch) {
          const int64_t k = per_channel_ ? g * per_group + ch : g;
          float* row = y + at + ch * plane;
          for (int64_t p = 0; p < plane; ++p) row[p] = row[p] * scale[k] + bias[k];
        }
      }
    }
    return Status();
  }

 private:
  int64_t groups_;
  float epsilon_;
  bool per_channel_;
};

Result<std::unique_ptr<Kernel>> MakeGroupNorm(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(3, 3));
  OUTPOST_ASSIGN_OR_RETURN(int64_t groups, ctx.Int("num_groups", 0));
  OUTPOST_ASSIGN_OR_RETURN(float epsilon, ctx.Float("epsilon", 1e-5f));
  if (groups < 1) return InvalidArgumentError("attribute \"num_groups\" must be positive");
  // Opset 21 made scale and bias per channel; 18 to 20 have them per group.
  return std::unique_ptr<Kernel>(new GroupNormKernel(groups, epsilon, ctx.opset() >= 21));
}

// ---- Mish ----

Status InferSameFloat(InferContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kFloatTypes, "X"));
  ctx.SetOutput(0, ctx.input_type(0), ctx.input_shape(0));
  return Status();
}

Status ComputeMish(ComputeContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.output(0);
  return Dispatch<kFloatTypes>(x.type, [&](auto tag) {
    using T = decltype(tag);
    const T* xv = x.get<T>();
    T* yv = y.mut<T>();
    for (int64_t i = 0; i < x.count; ++i) {
      const double v = static_cast<double>(static_cast<MathT<T>>(xv[i]));
      const double sp = v > 30 ? v : std::log1p(std::exp(v));
      yv[i] = T(static_cast<MathT<T>>(v * std::tanh(sp)));
    }
    return Status();
  });
}

Result<std::unique_ptr<Kernel>> MakeMish(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  return std::unique_ptr<Kernel>(new FunctionKernel(&InferSameFloat, &ComputeMish));
}

// ---- Gelu (opset 20) ----

template <bool kTanh>
Status ComputeGelu(ComputeContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.output(0);
  return Dispatch<kFloatTypes>(x.type, [&](auto tag) {
    using T = decltype(tag);
    const T* xv = x.get<T>();
    T* yv = y.mut<T>();
    for (int64_t i = 0; i < x.count; ++i) {
      const double v = static_cast<double>(static_cast<MathT<T>>(xv[i]));
      const double g =
          kTanh ? 0.5 * v * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (v + 0.044715 * v * v * v)))
                : 0.5 * v * (1 + std::erf(v / std::numbers::sqrt2));
      yv[i] = T(static_cast<MathT<T>>(g));
    }
    return Status();
  });
}

Result<std::unique_ptr<Kernel>> MakeGelu(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::string approximate, ctx.String("approximate", "none"));
  if (approximate == "none") {
    return std::unique_ptr<Kernel>(new FunctionKernel(&InferSameFloat, &ComputeGelu<false>));
  }
  if (approximate == "tanh") {
    return std::unique_ptr<Kernel>(new FunctionKernel(&InferSameFloat, &ComputeGelu<true>));
  }
  return InvalidArgumentError("attribute \"approximate\" has unknown value \"" + approximate + "\"");
}

// ---- Det ----

Status InferDet(InferContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kFloatTypes, "X"));
  const Shape& x = ctx.input_shape(0);
  if (x.size() < 2 || x[x.size() - 1] != x[x.size() - 2]) {
    return InvalidArgumentError("X must be [*, M, M]");
  }
  if (x.back() > 4096) return InvalidArgumentError("the matrices are too large");
  ctx.RequestScratch(static_cast<size_t>(x.back() * x.back()) * sizeof(double));
  ctx.SetOutput(0, ctx.input_type(0), Shape(x.begin(), x.end() - 2));
  return Status();
}

Status ComputeDet(ComputeContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t m = x.shape.back();
  const int64_t count = ctx.output(0).count;
  auto* a = reinterpret_cast<double*>(ctx.scratch().data());
  return Dispatch<kFloatTypes>(x.type, [&](auto tag) {
    using T = decltype(tag);
    const T* xv = x.get<T>();
    T* y = ctx.output(0).mut<T>();
    for (int64_t k = 0; k < count; ++k) {
      for (int64_t i = 0; i < m * m; ++i) {
        a[i] = static_cast<double>(static_cast<MathT<T>>(xv[k * m * m + i]));
      }
      // LU decomposition with partial pivoting.
      double det = 1;
      for (int64_t col = 0; col < m && det != 0; ++col) {
        int64_t pivot = col;
        for (int64_t r = col + 1; r < m; ++r) {
          if (std::fabs(a[r * m + col]) > std::fabs(a[pivot * m + col])) pivot = r;
        }
        if (a[pivot * m + col] == 0) {
          det = 0;
          break;
        }
        if (pivot != col) {
          for (int64_t j = 0; j < m; ++j) std::swap(a[pivot * m + j], a[col * m + j]);
          det = -det;
        }
        det *= a[col * m + col];
        for (int64_t r = col + 1; r < m; ++r) {
          const double f = a[r * m + col] / a[col * m + col];
          for (int64_t j = col; j < m; ++j) a[r * m + j] -= f * a[col * m + j];
        }
      }
      y[k] = T(static_cast<MathT<T>>(det));
    }
    return Status();
  });
}

Result<std::unique_ptr<Kernel>> MakeDet(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  return std::unique_ptr<Kernel>(new FunctionKernel(&InferDet, &ComputeDet));
}

// ---- MaxUnpool ----

class MaxUnpoolKernel : public Kernel {
 public:
  MaxUnpoolKernel(std::vector<int64_t> kernel, std::vector<int64_t> strides,
                  std::vector<int64_t> pads)
      : kernel_(std::move(kernel)), strides_(std::move(strides)), pads_(std::move(pads)) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kFp32) {
      return UnimplementedError("MaxUnpool supports FLOAT only");
    }
    if (ctx.input_type(1) != DataType::kInt64 || ctx.input_shape(1) != ctx.input_shape(0)) {
      return InvalidArgumentError("I must be INT64 with the shape of X");
    }
    const Shape& x = ctx.input_shape(0);
    const size_t k = kernel_.size();
    if (x.size() != k + 2) return InvalidArgumentError("kernel_shape does not match X's rank");
    Shape out{x[0], x[1]};
    if (ctx.has_input(2)) {
      const TensorRef* shape = ctx.input_value(2);
      if (shape == nullptr) return ctx.Defer();
      OUTPOST_ASSIGN_OR_RETURN(out, ReadInts(*shape));
      if (out.size() != x.size() || out[0] != x[0] || out[1] != x[1]) {
        return InvalidArgumentError("output_shape does not match X");
      }
    } else {
      for (size_t i = 0; i < k; ++i) {
        const int64_t s = strides_.empty() ? 1 : strides_[i];
        const int64_t pb = pads_.empty() ? 0 : pads_[i], pe = pads_.empty() ? 0 : pads_[k + i];
        out.push_back((x[2 + i] - 1) * s + kernel_[i] - pb - pe);
      }
    }
    OUTPOST_ASSIGN_OR_RETURN(int64_t count, CheckedElements(out));
    if (count > (int64_t{1} << 32)) return ResourceExhaustedError("the output is too large");
    ctx.SetOutput(0, DataType::kFp32, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    const int64_t* idx = ctx.input(1).get<int64_t>();
    float* out = y.mut<float>();
    std::fill_n(out, y.count, 0.0f);
    // Indices are offsets into one (n, c) plane of the output, as MaxPool's are (ONNX Runtime
    // accepts offsets into the whole tensor too).
    const int64_t in_plane = DimProduct(x.shape, 2, x.rank());
    const int64_t out_plane = DimProduct(y.shape, 2, y.rank());
    for (int64_t i = 0; i < x.count; ++i) {
      int64_t at = idx[i];
      if (at < out_plane) at += (i / in_plane) * out_plane;
      if (at < 0 || at >= y.count) {
        return InvalidArgumentError("index " + std::to_string(idx[i]) + " is out of range");
      }
      out[at] = x.get<float>()[i];
    }
    return Status();
  }

 private:
  std::vector<int64_t> kernel_, strides_, pads_;
};

Result<std::unique_ptr<Kernel>> MakeMaxUnpool(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 3));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> kernel, ctx.Ints("kernel_shape"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> strides, ctx.Ints("strides"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> pads, ctx.Ints("pads"));
  const size_t k = kernel.size();
  if (k == 0) return InvalidArgumentError("attribute \"kernel_shape\" is required");
  if ((!strides.empty() && strides.size() != k) || (!pads.empty() && pads.size() != 2 * k)) {
    return InvalidArgumentError("attributes \"strides\" and \"pads\" do not match kernel_shape");
  }
  for (int64_t v : kernel) {
    if (v < 1 || v > (1 << 20)) return InvalidArgumentError("attribute \"kernel_shape\" is out of range");
  }
  for (int64_t v : strides) {
    if (v < 1 || v > (1 << 20)) return InvalidArgumentError("attribute \"strides\" is out of range");
  }
  for (int64_t v : pads) {
    if (v < 0 || v > (1 << 20)) return InvalidArgumentError("attribute \"pads\" is out of range");
  }
  return std::unique_ptr<Kernel>(
      new MaxUnpoolKernel(std::move(kernel), std::move(strides), std::move(pads)));
}

// ---- Unique ----

// The unique slices of x along `axis` (or its elements when there is none).
struct UniqueResult {
  std::vector<int64_t> first;    // per unique slice, in output order: its first index in x
  std::vector<int64_t> inverse;  // per slice of x: its unique slice
  std::vector<int64_t> counts;   // per unique slice
};

template <typename T>
UniqueResult FindUnique(const TensorRef& x, int64_t axis, bool sorted) {
  const bool flat = axis < 0;
  const size_t ax = static_cast<size_t>(flat ? 0 : axis);
  const int64_t slices = flat ? x.count : x.shape[ax];
  const int64_t pre = flat ? 1 : DimProduct(x.shape, 0, ax);
  const int64_t post = flat ? 1 : DimProduct(x.shape, ax + 1, x.rank());
  const T* v = x.get<T>();
  auto at = [&](int64_t s, int64_t j) { return v[((j / post) * slices + s) * post + j % post]; };
  const int64_t len = pre * post;
  auto less = [&](int64_t a, int64_t b) {
    for (int64_t j = 0; j < len; ++j) {
      const T va = at(a, j), vb = at(b, j);
      if (va < vb) return true;
      if (vb < va) return false;
    }
    return false;
  };
  std::vector<int64_t> order(static_cast<size_t>(slices));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), less);
  // Runs of equal slices, in sorted order; a run's first element is its first occurrence.
  std::vector<int64_t> run_of(static_cast<size_t>(slices));
  std::vector<int64_t> run_first, run_count;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i == 0 || less(order[i - 1], order[i])) {
      run_first.push_back(order[i]);
      run_count.push_back(0);
    }
    run_of[static_cast<size_t>(order[i])] = static_cast<int64_t>(run_first.size()) - 1;
    ++run_count.back();
  }
  std::vector<int64_t> rank(run_first.size());
  std::iota(rank.begin(), rank.end(), 0);
  if (!sorted) {
    std::sort(rank.begin(), rank.end(), [&](int64_t a, int64_t b) {
      return run_first[static_cast<size_t>(a)] < run_first[static_cast<size_t>(b)];
    });
  }
  UniqueResult r;
  std::vector<int64_t> position(run_first.size());
  for (size_t i = 0; i < rank.size(); ++i) {
    const size_t run = static_cast<size_t>(rank[i]);
    position[run] = static_cast<int64_t>(i);
    r.first.push_back(run_first[run]);
    r.counts.push_back(run_count[run]);
  }
  for (int64_t s = 0; s < slices; ++s) {
    r.inverse.push_back(position[static_cast<size_t>(run_of[static_cast<size_t>(s)])]);
  }
  return r;
}

inline constexpr uint32_t kUniqueTypes = kNumericTypes & ~(TypeBit(DataType::kFp16) |
                                                           TypeBit(DataType::kBf16));

class UniqueKernel : public Kernel {
 public:
  UniqueKernel(bool has_axis, int64_t axis, bool sorted)
      : has_axis_(has_axis), axis_(axis), sorted_(sorted) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kUniqueTypes, "X"));
    const Shape& x = ctx.input_shape(0);
    int64_t axis = -1;
    if (has_axis_) {
      OUTPOST_ASSIGN_OR_RETURN(axis, NormalizeAxis(axis_, static_cast<int64_t>(x.size())));
    }
    const TensorRef* v = ctx.input_value(0);
    if (v == nullptr) return ctx.Defer();
    UniqueResult r;
    OUTPOST_RETURN_IF_ERROR(Dispatch<kUniqueTypes>(v->type, [&](auto tag) {
      r = FindUnique<decltype(tag)>(*v, axis, sorted_);
      return Status();
    }));
    const int64_t u = static_cast<int64_t>(r.first.size());
    Shape y = has_axis_ ? x : Shape{u};
    if (has_axis_) y[static_cast<size_t>(axis)] = u;
    ctx.SetOutput(0, ctx.input_type(0), std::move(y));
    ctx.SetOutput(1, DataType::kInt64, {u});
    ctx.SetOutput(2, DataType::kInt64, {static_cast<int64_t>(r.inverse.size())});
    ctx.SetOutput(3, DataType::kInt64, {u});
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const int64_t axis = has_axis_ ? (axis_ < 0 ? axis_ + static_cast<int64_t>(x.rank()) : axis_) : -1;
    return Dispatch<kUniqueTypes>(x.type, [&](auto tag) {
      using T = decltype(tag);
      const UniqueResult r = FindUnique<T>(x, axis, sorted_);
      const T* v = x.get<T>();
      T* y = ctx.output(0).mut<T>();
      const int64_t u = static_cast<int64_t>(r.first.size());
      if (axis < 0) {
        for (int64_t i = 0; i < u; ++i) y[i] = v[r.first[static_cast<size_t>(i)]];
      } else {
        const size_t ax = static_cast<size_t>(axis);
        const int64_t slices = x.shape[ax];
        const int64_t pre = DimProduct(x.shape, 0, ax), post = DimProduct(x.shape, ax + 1, x.rank());
        for (int64_t o = 0; o < pre; ++o) {
          for (int64_t i = 0; i < u; ++i) {
            std::copy_n(v + (o * slices + r.first[static_cast<size_t>(i)]) * post, post,
                        y + (o * u + i) * post);
          }
        }
      }
      auto put = [&](size_t out, const std::vector<int64_t>& values) {
        if (ctx.has_output(out)) std::copy(values.begin(), values.end(), ctx.output(out).mut<int64_t>());
      };
      put(1, r.first);
      put(2, r.inverse);
      put(3, r.counts);
      return Status();
    });
  }

 private:
  bool has_axis_;
  int64_t axis_;
  bool sorted_;
};

Result<std::unique_ptr<Kernel>> MakeUnique(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(1, 4));
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 0));
  OUTPOST_ASSIGN_OR_RETURN(int64_t sorted, ctx.Int("sorted", 1));
  return std::unique_ptr<Kernel>(new UniqueKernel(ctx.Has("axis"), axis, sorted != 0));
}

// ---- TfIdfVectorizer ----

// The n-grams of one length, sorted, each with its output column.
struct GramTable {
  int64_t n = 0;
  std::vector<int64_t> grams;    // sorted, n tokens each
  std::vector<int64_t> columns;  // one per n-gram
};

enum class TfIdfMode : uint8_t { kTf, kIdf, kTfIdf };

class TfIdfKernel : public Kernel {
 public:
  TfIdfKernel(std::vector<GramTable> tables, int64_t min_n, int64_t max_n, int64_t max_skip,
              TfIdfMode mode, std::vector<float> weights, int64_t width)
      : tables_(std::move(tables)), min_n_(min_n), max_n_(max_n), max_skip_(max_skip),
        mode_(mode), weights_(std::move(weights)), width_(width) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kIndexTypes, "X"));
    const Shape& x = ctx.input_shape(0);
    if (x.size() != 1 && x.size() != 2) return InvalidArgumentError("X must be [C] or [N, C]");
    ctx.SetOutput(0, DataType::kFp32, x.size() == 1 ? Shape{width_} : Shape{x[0], width_});
    ctx.RequestScratch(static_cast<size_t>(max_n_) * sizeof(int64_t));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const int64_t rows = x.rank() == 1 ? 1 : x.shape[0];
    const int64_t len = x.shape.back();
    float* y = ctx.output(0).mut<float>();
    std::fill_n(y, ctx.output(0).count, 0.0f);
    auto* key = reinterpret_cast<int64_t*>(ctx.scratch().data());
    for (int64_t r = 0; r < rows; ++r) {
      float* out = y + r * width_;
      for (int64_t skip = 0; skip <= max_skip_; ++skip) {
        // Beyond the row's length only unigrams fit, and they are counted at skip 0.
        if (skip > 0 && skip + 1 >= len) break;
        for (int64_t start = 0; start < len; ++start) {
          for (int64_t n = 1; n <= max_n_; ++n) {
            const int64_t pos = start + (n - 1) * (skip + 1);
            if (pos >= len) break;
            key[n - 1] = ReadInt64(x, r * len + pos);
            // Unigrams do not depend on the skip: count them once.
            if (n < min_n_ || (n == 1 && skip > 0)) continue;
            const int64_t column = Find(n, key);
            if (column >= 0) out[column] += 1;
          }
        }
      }
      for (int64_t c = 0; c < width_; ++c) {
        const float w = weights_.empty() ? 1.0f : weights_[static_cast<size_t>(c)];
        if (mode_ == TfIdfMode::kIdf) {
          out[c] = out[c] > 0 ? w : 0.0f;
        } else if (mode_ == TfIdfMode::kTfIdf) {
          out[c] *= w;
        }
      }
    }
    return Status();
  }

 private:
  // The output column of the n-gram `key`, or -1.
  int64_t Find(int64_t n, const int64_t* key) const {
    for (const GramTable& t : tables_) {
      if (t.n != n) continue;
      int64_t lo = 0, hi = static_cast<int64_t>(t.columns.size());
      while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        const int64_t* g = t.grams.data() + mid * n;
        const int cmp = std::lexicographical_compare(g, g + n, key, key + n)
                            ? -1
                            : (std::equal(g, g + n, key) ? 0 : 1);
        if (cmp == 0) return t.columns[static_cast<size_t>(mid)];
        if (cmp < 0) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
    }
    return -1;
  }

  std::vector<GramTable> tables_;
  int64_t min_n_, max_n_, max_skip_;
  TfIdfMode mode_;
  std::vector<float> weights_;
  int64_t width_;
};

Result<std::unique_ptr<Kernel>> MakeTfIdf(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  if (ctx.Has("pool_strings")) {
    return UnimplementedError("attribute \"pool_strings\": string n-grams are not supported");
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string mode_name, ctx.String("mode", ""));
  TfIdfMode mode;
  if (mode_name == "TF") {
    mode = TfIdfMode::kTf;
  } else if (mode_name == "IDF") {
    mode = TfIdfMode::kIdf;
  } else if (mode_name == "TFIDF") {
    mode = TfIdfMode::kTfIdf;
  } else {
    return InvalidArgumentError("attribute \"mode\" has unknown value \"" + mode_name + "\"");
  }
  OUTPOST_ASSIGN_OR_RETURN(int64_t min_n, ctx.Int("min_gram_length", 0));
  OUTPOST_ASSIGN_OR_RETURN(int64_t max_n, ctx.Int("max_gram_length", 0));
  OUTPOST_ASSIGN_OR_RETURN(int64_t max_skip, ctx.Int("max_skip_count", 0));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> counts, ctx.Ints("ngram_counts"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> indexes, ctx.Ints("ngram_indexes"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> pool, ctx.Ints("pool_int64s"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> weights, ctx.Floats("weights"));
  if (min_n < 1 || max_n < min_n || max_n > 64 || max_skip < 0 || max_skip > (1 << 20)) {
    return InvalidArgumentError(
        "attributes \"min_gram_length\", \"max_gram_length\" or \"max_skip_count\" are out of range");
  }
  // ngram_counts[i] is where the (i+1)-grams start in the pool.
  std::vector<GramTable> tables;
  size_t k = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const int64_t n = static_cast<int64_t>(i) + 1;
    const int64_t begin = counts[i];
    const int64_t end = i + 1 < counts.size() ? counts[i + 1] : static_cast<int64_t>(pool.size());
    if (begin < 0 || end < begin || end > static_cast<int64_t>(pool.size()) || (end - begin) % n != 0) {
      return InvalidArgumentError("attribute \"ngram_counts\" does not split the pool");
    }
    GramTable t;
    t.n = n;
    const int64_t grams = (end - begin) / n;
    std::vector<int64_t> order(static_cast<size_t>(grams));
    std::iota(order.begin(), order.end(), 0);
    const int64_t* base = pool.data() + begin;
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return std::lexicographical_compare(base + a * n, base + (a + 1) * n, base + b * n,
                                          base + (b + 1) * n);
    });
    std::vector<int64_t> columns(static_cast<size_t>(grams));
    for (int64_t g = 0; g < grams; ++g, ++k) {
      if (k >= indexes.size() || indexes[k] < 0 || indexes[k] > (1 << 24)) {
        return InvalidArgumentError("attribute \"ngram_indexes\" does not cover the pool");
      }
      columns[static_cast<size_t>(g)] = indexes[k];
    }
    for (int64_t g : order) {
      t.grams.insert(t.grams.end(), base + g * n, base + (g + 1) * n);
      t.columns.push_back(columns[static_cast<size_t>(g)]);
    }
    tables.push_back(std::move(t));
  }
  int64_t width = 0;
  for (int64_t v : indexes) width = std::max(width, v + 1);
  if (!weights.empty() && static_cast<int64_t>(weights.size()) < width) {
    return InvalidArgumentError("attribute \"weights\" has fewer entries than output columns");
  }
  return std::unique_ptr<Kernel>(
      new TfIdfKernel(std::move(tables), min_n, max_n, max_skip, mode, std::move(weights), width));
}

// ---- StringNormalizer ----

enum class CaseChange : uint8_t { kNone, kLower, kUpper };

std::string ChangeCase(std::string v, CaseChange c) {
  if (c == CaseChange::kNone) return v;
  for (char& ch : v) {
    const auto u = static_cast<unsigned char>(ch);
    ch = static_cast<char>(c == CaseChange::kLower ? std::tolower(u) : std::toupper(u));
  }
  return v;
}

// Removes stopwords (compared as they are, or ASCII-lower-cased when not case sensitive),
// then changes the case of what is left (ASCII letters; other bytes pass through). When
// every string is removed the output is one empty string. The output length depends on the
// data, so it is computed during the run when the input is not a constant.
class StringNormalizerKernel : public Kernel {
 public:
  StringNormalizerKernel(CaseChange change, bool case_sensitive, std::vector<std::string> stops)
      : change_(change), case_sensitive_(case_sensitive), stops_(std::move(stops)) {
    if (!case_sensitive_) {
      for (std::string& w : stops_) w = ChangeCase(w, CaseChange::kLower);
    }
  }

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kBytes) {
      return InvalidArgumentError("X must be a tensor of strings");
    }
    const Shape& x = ctx.input_shape(0);
    if (!(x.size() == 1 || (x.size() == 2 && x[0] == 1))) {
      return InvalidArgumentError("X must be [C] or [1, C]");
    }
    const TensorRef* v = ctx.input_value(0);
    if (v == nullptr) return ctx.Defer();
    int64_t kept = 0;
    for (int64_t i = 0; i < v->count; ++i) kept += Keep(v->strings[i]) ? 1 : 0;
    const int64_t n = std::max<int64_t>(kept, 1);
    ctx.SetOutput(0, DataType::kBytes, x.size() == 1 ? Shape{n} : Shape{1, n});
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    int64_t k = 0;
    for (int64_t i = 0; i < x.count; ++i) {
      if (Keep(x.strings[i])) y.strings[k++] = ChangeCase(x.strings[i], change_);
    }
    if (k == 0 && y.count == 1) y.strings[0].clear();
    return Status();
  }

 private:
  bool Keep(const std::string& v) const {
    const std::string key = case_sensitive_ ? v : ChangeCase(v, CaseChange::kLower);
    return std::find(stops_.begin(), stops_.end(), key) == stops_.end();
  }

  CaseChange change_;
  bool case_sensitive_;
  std::vector<std::string> stops_;
};

Result<std::unique_ptr<Kernel>> MakeStringNormalizer(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::string action, ctx.String("case_change_action", "NONE"));
  CaseChange change;
  if (action == "NONE") {
    change = CaseChange::kNone;
  } else if (action == "LOWER") {
    change = CaseChange::kLower;
  } else if (action == "UPPER") {
    change = CaseChange::kUpper;
  } else {
    return InvalidArgumentError("attribute \"case_change_action\" has unknown value \"" + action +
                                "\"");
  }
  OUTPOST_ASSIGN_OR_RETURN(int64_t sensitive, ctx.Int("is_case_sensitive", 0));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> stops, ctx.Strings("stopwords"));
  return std::unique_ptr<Kernel>(new StringNormalizerKernel(change, sensitive != 0, std::move(stops)));
}

// ---- ai.onnx.preview.training: Adagrad, Adam, Momentum ----

// One optimiser step over n tensors: inputs R, T, then groups of n tensors (X, G, and the
// optimiser's state: H; V; or V and H), outputs X_new and the new state, group by group.
enum class Optimizer : uint8_t { kAdagrad, kMomentum, kNesterov, kAdam };

struct OptimizerAttrs {
  Optimizer kind = Optimizer::kAdagrad;
  double norm = 0, norm_post = 0, epsilon = 0, decay = 0, alpha = 0, beta = 0;
};

class OptimizerKernel : public Kernel {
 public:
  explicit OptimizerKernel(OptimizerAttrs a) : a_(a) {}

  Status Infer(InferContext& ctx) const override {
    const size_t groups = Groups();
    if (ctx.num_inputs() < 2 || (ctx.num_inputs() - 2) % groups != 0 ||
        ctx.num_outputs() != (ctx.num_inputs() - 2) / groups * (groups - 1)) {
      return InvalidArgumentError("inputs and outputs do not form whole groups of tensors");
    }
    const size_t n = (ctx.num_inputs() - 2) / groups;
    for (size_t i = 0; i < n; ++i) {
      const Shape& x = ctx.input_shape(2 + i);
      OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(2 + i), kFloatTypes, "X"));
      for (size_t g = 1; g < groups; ++g) {
        if (ctx.input_shape(2 + g * n + i) != x || ctx.input_type(2 + g * n + i) != ctx.input_type(2 + i)) {
          return InvalidArgumentError("tensor " + std::to_string(i) +
                                      " differs in shape or type across its group");
        }
      }
      for (size_t g = 0; g + 1 < groups; ++g) ctx.SetOutput(g * n + i, ctx.input_type(2 + i), x);
    }
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const size_t n = (ctx.num_inputs() - 2) / Groups();
    const double r = ReadDouble(ctx.input(0), 0);
    const double t = static_cast<double>(ReadInt64(ctx.input(1), 0));
    for (size_t i = 0; i < n; ++i) {
      const TensorRef& x = ctx.input(2 + i);
      const TensorRef& g = ctx.input(2 + n + i);
      const TensorRef& s1 = ctx.input(2 + 2 * n + i);
      for (int64_t e = 0; e < x.count; ++e) {
        const double xv = ReadDouble(x, e);
        const double gr = a_.norm * xv + ReadDouble(g, e);
        double x_new = 0, s1_new = 0, s2_new = 0;
        if (a_.kind == Optimizer::kAdagrad) {
          s1_new = ReadDouble(s1, e) + gr * gr;
          x_new = xv - r / (1 + t * a_.decay) * gr / (std::sqrt(s1_new) + a_.epsilon);
        } else if (a_.kind == Optimizer::kAdam) {
          s1_new = a_.alpha * ReadDouble(s1, e) + (1 - a_.alpha) * gr;
          s2_new = a_.beta * ReadDouble(ctx.input(2 + 3 * n + i), e) + (1 - a_.beta) * gr * gr;
          const double ra = t > 0 ? r * std::sqrt(1 - std::pow(a_.beta, t)) / (1 - std::pow(a_.alpha, t)) : r;
          x_new = (1 - a_.norm_post) * (xv - ra * (s1_new / (std::sqrt(s2_new) + a_.epsilon)));
        } else {
          s1_new = a_.alpha * ReadDouble(s1, e) + (t > 0 ? a_.beta : 1.0) * gr;
          x_new = a_.kind == Optimizer::kNesterov ? xv - r * (gr + a_.alpha * s1_new) : xv - r * s1_new;
        }
        Write(ctx, i, e, x_new);
        Write(ctx, n + i, e, s1_new);
        if (a_.kind == Optimizer::kAdam) Write(ctx, 2 * n + i, e, s2_new);
      }
    }
    return Status();
  }

 private:
  // Input groups: X, G and the state tensors.
  size_t Groups() const { return a_.kind == Optimizer::kAdam ? 4 : 3; }
  static void Write(ComputeContext& ctx, size_t out, int64_t e, double v) {
    if (!ctx.has_output(out)) return;
    const TensorRef& o = ctx.output(out);
    (void)Dispatch<kFloatTypes>(o.type, [&](auto tag) {
      using T = decltype(tag);
      o.mut<T>()[e] = T(static_cast<MathT<T>>(v));
      return Status();
    });
  }

  OptimizerAttrs a_;
};

template <Optimizer kKind>
Result<std::unique_ptr<Kernel>> MakeOptimizer(const KernelBuildContext& ctx) {
  OptimizerAttrs a;
  a.kind = kKind;
  OUTPOST_ASSIGN_OR_RETURN(float norm, ctx.Float("norm_coefficient", 0));
  a.norm = norm;
  if (kKind == Optimizer::kAdagrad) {
    OUTPOST_ASSIGN_OR_RETURN(float eps, ctx.Float("epsilon", 0));
    OUTPOST_ASSIGN_OR_RETURN(float decay, ctx.Float("decay_factor", 0));
    a.epsilon = eps;
    a.decay = decay;
  } else if (kKind == Optimizer::kAdam) {
    OUTPOST_ASSIGN_OR_RETURN(float alpha, ctx.Float("alpha", 0.9f));
    OUTPOST_ASSIGN_OR_RETURN(float beta, ctx.Float("beta", 0.999f));
    OUTPOST_ASSIGN_OR_RETURN(float eps, ctx.Float("epsilon", 0));
    OUTPOST_ASSIGN_OR_RETURN(float post, ctx.Float("norm_coefficient_post", 0));
    a.alpha = alpha;
    a.beta = beta;
    a.epsilon = eps;
    a.norm_post = post;
  } else {
    for (const char* required : {"alpha", "beta", "mode", "norm_coefficient"}) {
      if (!ctx.Has(required)) {
        return InvalidArgumentError(std::string("attribute \"") + required + "\" is required");
      }
    }
    OUTPOST_ASSIGN_OR_RETURN(float alpha, ctx.Float("alpha", 0));
    OUTPOST_ASSIGN_OR_RETURN(float beta, ctx.Float("beta", 0));
    OUTPOST_ASSIGN_OR_RETURN(std::string mode, ctx.String("mode", ""));
    if (mode != "standard" && mode != "nesterov") {
      return InvalidArgumentError("attribute \"mode\" has unknown value \"" + mode + "\"");
    }
    a.kind = mode == "nesterov" ? Optimizer::kNesterov : Optimizer::kMomentum;
    a.alpha = alpha;
    a.beta = beta;
  }
  return std::unique_ptr<Kernel>(new OptimizerKernel(a));
}

}  // namespace

void RegisterExtraKernels(KernelRegistry& r) {
  r.Add({"", "LRN", 1, 1000, &MakeLrn});
  r.Add({"", "MeanVarianceNormalization", 9, 1000, &MakeMvn});
  r.Add({"", "GroupNormalization", 18, 1000, &MakeGroupNorm});
  r.Add({"", "Mish", 18, 1000, &MakeMish});
  r.Add({"", "Gelu", 20, 1000, &MakeGelu});
  r.Add({"", "Det", 11, 1000, &MakeDet});
  r.Add({"", "MaxUnpool", 9, 1000, &MakeMaxUnpool});
  r.Add({"", "Unique", 11, 1000, &MakeUnique});
  r.Add({"", "TfIdfVectorizer", 9, 1000, &MakeTfIdf});
  r.Add({"", "StringNormalizer", 10, 1000, &MakeStringNormalizer});
  r.Add({"ai.onnx.preview.training", "Adagrad", 1, 1000, &MakeOptimizer<Optimizer::kAdagrad>});
  r.Add({"ai.onnx.preview.training", "Momentum", 1, 1000, &MakeOptimizer<Optimizer::kMomentum>});
  r.Add({"ai.onnx.preview.training", "Adam", 1, 1000, &MakeOptimizer<Optimizer::kAdam>});
}

}  // namespace outpost::engine::onnx
