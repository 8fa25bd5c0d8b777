// Dense linear algebra and normalisation: Gemm, MatMul, BatchNormalization, and the fused
// Dense kernel of the optimiser.
#include "engine/onnx/kernels_nn.h"

#include <algorithm>
#include <cmath>

#include "engine/onnx/gemm.h"
#include "engine/onnx/kernel_util.h"
#include "engine/onnx/vecmath.h"

namespace outpost::engine::onnx {
namespace {

inline constexpr uint32_t kGemmTypes = kFloatTypes | TypeBit(DataType::kInt32) |
                                       TypeBit(DataType::kInt64) | TypeBit(DataType::kUint32) |
                                       TypeBit(DataType::kUint64);

// Reference product for types other than float: C = alpha * A·B (+ C when accumulate).
template <typename T>
void NaiveGemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_row, int64_t a_col,
               const T* b, int64_t b_row, int64_t b_col, T* c, double alpha, bool accumulate) {
  using C = MathT<T>;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      C sum = 0;
      for (int64_t p = 0; p < k; ++p) {
        sum = WrapAdd(sum, WrapMul(C(a[i * a_row + p * a_col]), C(b[p * b_row + j * b_col])));
      }
      C v = alpha == 1.0 ? sum : static_cast<C>(static_cast<double>(sum) * alpha);
      if (accumulate) v = WrapAdd(v, C(c[i * n + j]));
      c[i * n + j] = T(v);
    }
  }
}

// ---- Gemm ----

class GemmKernel : public Kernel {
 public:
  GemmKernel(float alpha, float beta, bool trans_a, bool trans_b, std::vector<float> packed_b)
      : alpha_(alpha),
        beta_(beta),
        trans_a_(trans_a),
        trans_b_(trans_b),
        packed_b_(std::move(packed_b)) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    OUTPOST_RETURN_IF_ERROR(CheckType(t, kGemmTypes, "A"));
    if (ctx.input_type(1) != t) return InvalidArgumentError("A and B differ in element type");
    const Shape& a = ctx.input_shape(0);
    const Shape& b = ctx.input_shape(1);
    if (a.size() != 2 || b.size() != 2) return InvalidArgumentError("A and B must be 2-D");
    const int64_t m = trans_a_ ? a[1] : a[0];
    const int64_t k = trans_a_ ? a[0] : a[1];
    const int64_t k2 = trans_b_ ? b[1] : b[0];
    const int64_t n = trans_b_ ? b[0] : b[1];
    if (k != k2) {
      return InvalidArgumentError("A " + ShapeToString(a) + " and B " + ShapeToString(b) +
                                  " have different inner dimensions");
    }
    Shape out{m, n};
    if (ctx.has_input(2)) {
      if (ctx.input_type(2) != t) return InvalidArgumentError("C differs in element type");
      OUTPOST_ASSIGN_OR_RETURN(Shape bc, BroadcastShapes(out, ctx.input_shape(2)));
      if (bc != out) return InvalidArgumentError("C does not broadcast to (M, N)");
    }
    if (t == DataType::kFp32 && packed_b_.empty()) {
      ctx.RequestScratch(PackedSize(k, n) * sizeof(float));
    }
    ctx.SetOutput(0, t, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& a = ctx.input(0);
    const TensorRef& b = ctx.input(1);
    const TensorRef& y = ctx.output(0);
    const int64_t m = y.shape[0];
    const int64_t n = y.shape[1];
    const int64_t k = trans_a_ ? a.shape[0] : a.shape[1];
    const bool with_c = ctx.has_input(2) && beta_ != 0.0f;
    return Dispatch<kGemmTypes>(a.type, [&](auto tag) {
      using T = decltype(tag);
      using C = MathT<T>;
      T* yv = y.mut<T>();
      if (with_c) {
        const TensorRef& c = ctx.input(2);
        const T* cv = c.get<T>();
        ForEachBroadcast<1>(y.shape, {c.shape},
                            [&](int64_t o, const std::array<int64_t, 1>& off, int64_t cnt,
                                const std::array<int64_t, 1>& st) {
                              for (int64_t i = 0; i < cnt; ++i) {
                                const C v = C(cv[off[0] + i * st[0]]);
                                yv[o + i] = beta_ == 1.0f
                                                ? T(v)
                                                : T(static_cast<C>(static_cast<double>(v) * beta_));
                              }
                            });
      }
      const int64_t a_row = trans_a_ ? 1 : k;
      const int64_t a_col = trans_a_ ? m : 1;
      if constexpr (std::is_same_v<T, float>) {
        const float* packed = packed_b_.data();
        if (packed_b_.empty()) {
          auto* scratch = reinterpret_cast<float*>(ctx.scratch().data());
          PackB(b.get<float>(), b.shape[1], trans_b_, k, n, scratch);
          packed = scratch;
        }
        GemmPacked(m, n, k, a.get<float>(), a_row, a_col, packed, yv, n, alpha_, with_c,
                   nullptr);
      } else {
        const int64_t b_row = trans_b_ ? 1 : n;
        const int64_t b_col = trans_b_ ? k : 1;
        NaiveGemm<T>(m, n, k, a.get<T>(), a_row, a_col, b.get<T>(), b_row, b_col, yv, alpha_,
                     with_c);
      }
      return Status();
    });
  }

 private:
  float alpha_;
  float beta_;
  bool trans_a_;
  bool trans_b_;
  std::vector<float> packed_b_;  // B pre-packed when it is a constant FLOAT matrix
};

Result<std::unique_ptr<Kernel>> MakeGemm(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 3));
  OUTPOST_ASSIGN_OR_RETURN(float alpha, ctx.Float("alpha", 1.0f));
  OUTPOST_ASSIGN_OR_RETURN(float beta, ctx.Float("beta", 1.0f));
  OUTPOST_ASSIGN_OR_RETURN(int64_t trans_a, ctx.Int("transA", 0));
  OUTPOST_ASSIGN_OR_RETURN(int64_t trans_b, ctx.Int("transB", 0));
  std::vector<float> packed;
  const Tensor* b = ctx.constant_input(1);
  if (b != nullptr && b->type() == DataType::kFp32 && b->shape().size() == 2) {
    const int64_t k = trans_b ? b->shape()[1] : b->shape()[0];
    const int64_t n = trans_b ? b->shape()[0] : b->shape()[1];
    packed.resize(PackedSize(k, n));
    PackB(b->values<float>().data(), b->shape()[1], trans_b != 0, k, n, packed.data());
  }
  return std::unique_ptr<Kernel>(
      new GemmKernel(alpha, beta, trans_a != 0, trans_b != 0, std::move(packed)));
}

// ---- MatMul ----

struct MatMulDims {
  Shape a_batch, b_batch, out_batch, out;
  int64_t m = 1, k = 1, n = 1;
};

Result<MatMulDims> ResolveMatMul(std::span<const int64_t> a, std::span<const int64_t> b) {
  if (a.empty() || b.empty()) return InvalidArgumentError("MatMul inputs must not be scalars");
  MatMulDims d;
  const bool a_vec = a.size() == 1;
  const bool b_vec = b.size() == 1;
  d.m = a_vec ? 1 : a[a.size() - 2];
  d.k = a.back();
  const int64_t kb = b_vec ? b[0] : b[b.size() - 2];
  d.n = b_vec ? 1 : b.back();
  if (d.k != kb) {
    return InvalidArgumentError("shapes " + ShapeToString(a) + " and " + ShapeToString(b) +
                                " cannot be multiplied");
  }
  if (!a_vec) d.a_batch.assign(a.begin(), a.end() - 2);
  if (!b_vec) d.b_batch.assign(b.begin(), b.end() - 2);
  OUTPOST_ASSIGN_OR_RETURN(d.out_batch, BroadcastShapes(d.a_batch, d.b_batch));
  d.out = d.out_batch;
  if (!a_vec) d.out.push_back(d.m);
  if (!b_vec) d.out.push_back(d.n);
  if (d.out.size() > kMaxRank) return InvalidArgumentError("rank too large");
  return d;
}

class MatMulKernel : public Kernel {
 public:
  explicit MatMulKernel(std::vector<float> packed_b) : packed_b_(std::move(packed_b)) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    OUTPOST_RETURN_IF_ERROR(CheckType(t, kGemmTypes, "A"));
    if (ctx.input_type(1) != t) return InvalidArgumentError("inputs differ in element type");
    OUTPOST_ASSIGN_OR_RETURN(MatMulDims d, ResolveMatMul(ctx.input_shape(0), ctx.input_shape(1)));
    if (t == DataType::kFp32 && packed_b_.empty()) {
      ctx.RequestScratch(PackedSize(d.k, d.n) * sizeof(float));
    }
    ctx.SetOutput(0, t, std::move(d.out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& a = ctx.input(0);
    const TensorRef& b = ctx.input(1);
    const TensorRef& y = ctx.output(0);
    OUTPOST_ASSIGN_OR_RETURN(MatMulDims d, ResolveMatMul(a.shape, b.shape));
    const int64_t m = d.m, k = d.k, n = d.n;
    return Dispatch<kGemmTypes>(a.type, [&](auto tag) {
      using T = decltype(tag);
      const T* av = a.get<T>();
      const T* bv = b.get<T>();
      T* yv = y.mut<T>();
      if (y.count == 0) return Status();
      if (k == 0) {
        std::fill_n(yv, y.count, T{});
        return Status();
      }
      ForEachBroadcast<2>(d.out_batch, {d.a_batch, d.b_batch},
                          [&](int64_t o, const std::array<int64_t, 2>& off, int64_t cnt,
                              const std::array<int64_t, 2>& st) {
                            for (int64_t i = 0; i < cnt; ++i) {
                              const T* ai = av + (off[0] + i * st[0]) * m * k;
                              const T* bi = bv + (off[1] + i * st[1]) * k * n;
                              T* yi = yv + (o + i) * m * n;
                              if constexpr (std::is_same_v<T, float>) {
                                const float* packed = packed_b_.data();
                                if (packed_b_.empty()) {
                                  auto* s = reinterpret_cast<float*>(ctx.scratch().data());
                                  PackB(bi, n, false, k, n, s);
                                  packed = s;
                                }
                                GemmPacked(m, n, k, ai, k, 1, packed, yi, n, 1.0f, false,
                                           nullptr);
                              } else {
                                NaiveGemm<T>(m, n, k, ai, k, 1, bi, n, 1, yi, 1.0, false);
                              }
                            }
                          });
      return Status();
    });
  }

 private:
  std::vector<float> packed_b_;  // when B is a constant 2-D FLOAT matrix
};

Result<std::unique_ptr<Kernel>> MakeMatMul(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  std::vector<float> packed;
  const Tensor* b = ctx.constant_input(1);
  if (b != nullptr && b->type() == DataType::kFp32 && b->shape().size() == 2) {
    const int64_t k = b->shape()[0];
    const int64_t n = b->shape()[1];
    packed.resize(PackedSize(k, n));
    PackB(b->values<float>().data(), n, false, k, n, packed.data());
  }
  return std::unique_ptr<Kernel>(new MatMulKernel(std::move(packed)));
}

// ---- BatchNormalization ----

class BatchNormKernel : public Kernel {
 public:
  BatchNormKernel(float epsilon, float momentum, bool training)
      : epsilon_(epsilon), momentum_(momentum), training_(training) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    OUTPOST_RETURN_IF_ERROR(CheckType(t, kFloatTypes, "X"));
    const Shape& x = ctx.input_shape(0);
    if (x.size() < 2) return InvalidArgumentError("X must have rank >= 2");
    const int64_t c = x[1];
    for (size_t i = 1; i < 5; ++i) {
      if (!CheckType(ctx.input_type(i), kFloatTypes, "parameter").ok()) {
        return InvalidArgumentError("parameter " + std::to_string(i) + " is not a float tensor");
      }
      if (ctx.input_shape(i) != Shape{c}) {
        return InvalidArgumentError("parameter " + std::to_string(i) + " has shape " +
                                    ShapeToString(ctx.input_shape(i)) + ", expected [" +
                                    std::to_string(c) + "]");
      }
    }
    ctx.SetOutput(0, t, x);
    if (training_) {
      ctx.SetOutput(1, ctx.input_type(3), {c});
      ctx.SetOutput(2, ctx.input_type(4), {c});
    }
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    const int64_t n = x.shape[0];
    const int64_t c = x.shape[1];
    const int64_t spatial = DimProduct(x.shape, 2, x.rank());
    return Dispatch<kFloatTypes>(x.type, [&](auto tag) {
      using T = decltype(tag);
      const T* xv = x.get<T>();
      T* yv = y.mut<T>();
      for (int64_t ch = 0; ch < c; ++ch) {
        const double scale = ReadDouble(ctx.input(1), ch);
        const double bias = ReadDouble(ctx.input(2), ch);
        double mean = ReadDouble(ctx.input(3), ch);
        double var = ReadDouble(ctx.input(4), ch);
        if (training_) {
          // Batch statistics (population variance), and running averages as outputs.
          double sum = 0, sq = 0;
          const double count = static_cast<double>(n * spatial);
          for (int64_t b = 0; b < n; ++b) {
            const T* p = xv + (b * c + ch) * spatial;
            for (int64_t s = 0; s < spatial; ++s) sum += static_cast<double>(MathT<T>(p[s]));
          }
          const double bmean = count > 0 ? sum / count : 0;
          for (int64_t b = 0; b < n; ++b) {
            const T* p = xv + (b * c + ch) * spatial;
            for (int64_t s = 0; s < spatial; ++s) {
              const double dv = static_cast<double>(MathT<T>(p[s])) - bmean;
              sq += dv * dv;
            }
          }
          const double bvar = count > 0 ? sq / count : 0;
          if (ctx.has_output(1)) {
            WriteParam(ctx.output(1), ch, mean * momentum_ + bmean * (1 - momentum_));
          }
          if (ctx.has_output(2)) {
            WriteParam(ctx.output(2), ch, var * momentum_ + bvar * (1 - momentum_));
          }
          mean = bmean;
          var = bvar;
        }
        const double inv = scale / std::sqrt(var + static_cast<double>(epsilon_));
        const double shift = bias - mean * inv;
        using C = MathT<T>;
        const C ci = static_cast<C>(inv), cs = static_cast<C>(shift);
        for (int64_t b = 0; b < n; ++b) {
          const T* p = xv + (b * c + ch) * spatial;
          T* q = yv + (b * c + ch) * spatial;
          for (int64_t s = 0; s < spatial; ++s) q[s] = T(C(p[s]) * ci + cs);
        }
      }
      return Status();
    });
  }

 private:
  static void WriteParam(const TensorRef& t, int64_t i, double v) {
    Dispatch<kFloatTypes>(t.type, [&](auto tag) {
      using T = decltype(tag);
      t.mut<T>()[i] = T(static_cast<MathT<T>>(v));
      return Status();
    }).IgnoreError();
  }

  float epsilon_;
  float momentum_;
  bool training_;
};

Result<std::unique_ptr<Kernel>> MakeBatchNorm(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(5, 5));
  OUTPOST_ASSIGN_OR_RETURN(float epsilon, ctx.Float("epsilon", 1e-5f));
  OUTPOST_ASSIGN_OR_RETURN(float momentum, ctx.Float("momentum", 0.9f));
  OUTPOST_ASSIGN_OR_RETURN(int64_t training, ctx.Int("training_mode", 0));
  if (ctx.opset() < 14 && ctx.num_outputs() > 1) {
    return UnimplementedError("training outputs of BatchNormalization before opset 14");
  }
  return std::unique_ptr<Kernel>(new BatchNormKernel(epsilon, momentum, training != 0));
}

// ---- Dense (fused) ----

class DenseKernel : public Kernel {
 public:
  DenseKernel(std::vector<float> packed, int64_t k, int64_t n, std::vector<float> bias,
              DenseActivation act)
      : packed_(std::move(packed)), k_(k), n_(n), bias_(std::move(bias)), act_(act) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kFp32) return InvalidArgumentError("X must be FLOAT");
    const Shape& x = ctx.input_shape(0);
    if (x.empty() || x.back() != k_) {
      return InvalidArgumentError("X " + ShapeToString(x) + " does not end in " +
                                  std::to_string(k_));
    }
    Shape out = x;
    out.back() = n_;
    ctx.SetOutput(0, DataType::kFp32, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    const int64_t m = k_ == 0 ? 0 : x.count / k_;
    float* yv = y.mut<float>();
    if (k_ == 0) {
      for (int64_t i = 0; i < y.count; ++i) yv[i] = bias_.empty() ? 0.0f : bias_[i % n_];
    } else {
      GemmPacked(m, n_, k_, x.get<float>(), k_, 1, packed_.data(), yv, n_, 1.0f, false,
                 bias_.empty() ? nullptr : bias_.data());
    }
    const int64_t total = y.count;
    switch (act_.kind) {
      case Activation::kNone:
        break;
      case Activation::kRelu:
        for (int64_t i = 0; i < total; ++i) yv[i] = yv[i] < 0.0f ? 0.0f : yv[i];  // NaN stays
        break;
      case Activation::kLeakyRelu:
        for (int64_t i = 0; i < total; ++i) yv[i] = yv[i] >= 0.0f ? yv[i] : act_.alpha * yv[i];
        break;
      case Activation::kSigmoid:
        SigmoidF(yv, yv, total);
        break;
      case Activation::kTanh:
        TanhF(yv, yv, total);
        break;
      case Activation::kClip:
        for (int64_t i = 0; i < total; ++i) {
          float v = yv[i];
          if (v < act_.lo) v = act_.lo;
          if (v > act_.hi) v = act_.hi;
          yv[i] = v;
        }
        break;
    }
    return Status();
  }

  bool SetActivation(DenseActivation act) {
    if (act_.kind != Activation::kNone) return false;
    act_ = act;
    return true;
  }

 private:
  std::vector<float> packed_;
  int64_t k_;
  int64_t n_;
  std::vector<float> bias_;  // N entries padded to a whole panel, or empty
  DenseActivation act_;
};

}  // namespace

std::unique_ptr<Kernel> MakeDenseKernel(const std::vector<float>& weights, int64_t k, int64_t n,
                                        std::vector<float> bias, DenseActivation activation) {
  std::vector<float> packed(PackedSize(k, n));
  PackB(weights.data(), n, false, k, n, packed.data());
  if (!bias.empty()) bias.resize(static_cast<size_t>((n + kPanel - 1) / kPanel * kPanel), 0.0f);
  return std::make_unique<DenseKernel>(std::move(packed), k, n, std::move(bias), activation);
}

bool AddDenseActivation(Kernel& kernel, DenseActivation activation) {
  auto* dense = dynamic_cast<DenseKernel*>(&kernel);
  return dense != nullptr && dense->SetActivation(activation);
}

void RegisterNnKernels(KernelRegistry& r) {
  r.Add({"", "Gemm", 7, 1000, &MakeGemm});
  r.Add({"", "MatMul", 1, 1000, &MakeMatMul});
  r.Add({"", "BatchNormalization", 7, 1000, &MakeBatchNorm});
}

}  // namespace outpost::engine::onnx
