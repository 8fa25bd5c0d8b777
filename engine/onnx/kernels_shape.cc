// Operators that change or produce shapes: Reshape, Flatten, Squeeze, Unsqueeze, Shape,
// Size, Expand, ConstantOfShape, Constant, Range, Transpose.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

Status ComputeCopy(ComputeContext& ctx) {
  CopyTensor(ctx.input(0), ctx.output(0));
  return Status();
}

// Product of dims with overflow detection.
Result<int64_t> SafeProduct(std::span<const int64_t> dims) { return CheckedElements(dims); }

// ---- Reshape ----

class ReshapeKernel : public Kernel {
 public:
  explicit ReshapeKernel(bool allowzero) : allowzero_(allowzero) {}

  Status Infer(InferContext& ctx) const override {
    const TensorRef* target = ctx.input_value(1);
    if (target == nullptr) return ctx.Defer();
    OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> dims, ReadInts(*target));
    const Shape& in = ctx.input_shape(0);
    if (dims.size() > kMaxRank) return InvalidArgumentError("target shape has too many dims");
    int64_t infer_at = -1;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] == 0 && !allowzero_) {
        if (i >= in.size()) {
          return InvalidArgumentError("target dimension " + std::to_string(i) +
                                      " is 0 (copy) but the input has no such dimension");
        }
        dims[i] = in[i];
      } else if (dims[i] == -1) {
        if (infer_at >= 0) return InvalidArgumentError("target shape has more than one -1");
        infer_at = static_cast<int64_t>(i);
      } else if (dims[i] < 0) {
        return InvalidArgumentError("target shape has a negative dimension");
      }
    }
    const int64_t count = NumElements(in);
    if (infer_at >= 0) {
      int64_t known = 1;
      for (size_t i = 0; i < dims.size(); ++i) {
        if (static_cast<int64_t>(i) == infer_at) continue;
        if (dims[i] != 0 && known > std::numeric_limits<int64_t>::max() / dims[i]) {
          return InvalidArgumentError("target shape is too large");
        }
        known *= dims[i];
      }
      if (known == 0 || count % known != 0) {
        return InvalidArgumentError("cannot reshape " + ShapeToString(in) + " to " +
                                    ShapeToString(dims));
      }
      dims[static_cast<size_t>(infer_at)] = count / known;
    }
    OUTPOST_ASSIGN_OR_RETURN(int64_t n, SafeProduct(dims));
    if (n != count) {
      return InvalidArgumentError("cannot reshape " + ShapeToString(in) + " to " +
                                  ShapeToString(dims));
    }
    ctx.SetOutput(0, ctx.input_type(0), std::move(dims));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override { return ComputeCopy(ctx); }

 private:
  bool allowzero_;
};

Result<std::unique_ptr<Kernel>> MakeReshape(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  OUTPOST_ASSIGN_OR_RETURN(int64_t allowzero, ctx.Int("allowzero", 0));
  return std::unique_ptr<Kernel>(new ReshapeKernel(allowzero != 0));
}

// ---- Flatten ----

class FlattenKernel : public Kernel {
 public:
  explicit FlattenKernel(int64_t axis) : axis_(axis) {}
  Status Infer(InferContext& ctx) const override {
    const Shape& in = ctx.input_shape(0);
    const auto rank = static_cast<int64_t>(in.size());
    int64_t axis = axis_;
    if (axis < -rank || axis > rank) {
      return InvalidArgumentError("axis " + std::to_string(axis) + " is out of range");
    }
    if (axis < 0) axis += rank;
    ctx.SetOutput(0, ctx.input_type(0),
                  {DimProduct(in, 0, static_cast<size_t>(axis)),
                   DimProduct(in, static_cast<size_t>(axis), in.size())});
    return Status();
  }
  Status Compute(ComputeContext& ctx) const override { return ComputeCopy(ctx); }

 private:
  int64_t axis_;
};

Result<std::unique_ptr<Kernel>> MakeFlatten(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 1));
  return std::unique_ptr<Kernel>(new FlattenKernel(axis));
}

// ---- Squeeze, Unsqueeze ----

class SqueezeKernel : public Kernel {
 public:
  SqueezeKernel(bool unsqueeze, bool axes_input, std::vector<int64_t> axes)
      : unsqueeze_(unsqueeze), axes_input_(axes_input), axes_(std::move(axes)) {}

  Status Infer(InferContext& ctx) const override {
    std::vector<int64_t> axes = axes_;
    bool have_axes = !axes_input_ || ctx.has_input(1);
    if (axes_input_ && ctx.has_input(1)) {
      const TensorRef* v = ctx.input_value(1);
      if (v == nullptr) return ctx.Defer();
      OUTPOST_ASSIGN_OR_RETURN(axes, ReadInts(*v));
    }
    if (!axes_input_) have_axes = !axes_.empty();
    const Shape& in = ctx.input_shape(0);
    Shape out;
    if (unsqueeze_) {
      const auto rank = static_cast<int64_t>(in.size() + axes.size());
      if (rank > static_cast<int64_t>(kMaxRank)) return InvalidArgumentError("rank too large");
      std::vector<bool> inserted(static_cast<size_t>(rank), false);
      for (int64_t a : axes) {
        OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(a, rank));
        if (inserted[static_cast<size_t>(axis)]) {
          return InvalidArgumentError("axis " + std::to_string(a) + " is repeated");
        }
        inserted[static_cast<size_t>(axis)] = true;
      }
      size_t next = 0;
      for (int64_t d = 0; d < rank; ++d) {
        out.push_back(inserted[static_cast<size_t>(d)] ? 1 : in[next++]);
      }
    } else {
      const auto rank = static_cast<int64_t>(in.size());
      std::vector<bool> removed(in.size(), false);
      if (!have_axes) {
        for (size_t d = 0; d < in.size(); ++d) removed[d] = in[d] == 1;
      }
      for (int64_t a : axes) {
        OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(a, rank));
        if (in[static_cast<size_t>(axis)] != 1) {
          return InvalidArgumentError("cannot squeeze axis " + std::to_string(a) + " of size " +
                                      std::to_string(in[static_cast<size_t>(axis)]));
        }
        removed[static_cast<size_t>(axis)] = true;
      }
      for (size_t d = 0; d < in.size(); ++d) {
        if (!removed[d]) out.push_back(in[d]);
      }
    }
    ctx.SetOutput(0, ctx.input_type(0), std::move(out));
    return Status();
  }
  Status Compute(ComputeContext& ctx) const override { return ComputeCopy(ctx); }

 private:
  bool unsqueeze_;
  bool axes_input_;
  std::vector<int64_t> axes_;
};

template <bool kUnsqueeze>
Result<std::unique_ptr<Kernel>> MakeSqueeze(const KernelBuildContext& ctx) {
  const bool axes_input = ctx.opset() >= 13;
  if (axes_input) {
    OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(kUnsqueeze ? 2 : 1, 2));
  } else {
    OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  }
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ctx.Ints("axes"));
  if (kUnsqueeze && !axes_input && axes.empty()) {
    return InvalidArgumentError("attribute axes is required");
  }
  return std::unique_ptr<Kernel>(new SqueezeKernel(kUnsqueeze, axes_input, std::move(axes)));
}

// ---- Shape, Size ----

class ShapeKernel : public Kernel {
 public:
  ShapeKernel(int64_t start, int64_t end, bool has_end)
      : start_(start), end_(end), has_end_(has_end) {}
  Status Infer(InferContext& ctx) const override {
    const auto rank = static_cast<int64_t>(ctx.input_shape(0).size());
    const auto [b, e] = Range(rank);
    ctx.SetOutput(0, DataType::kInt64, {e - b});
    return Status();
  }
  bool ReadsOnlyShapes() const override { return true; }
  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    const auto [b, e] = Range(static_cast<int64_t>(in.rank()));
    int64_t* y = ctx.output(0).mut<int64_t>();
    for (int64_t i = b; i < e; ++i) y[i - b] = in.shape[static_cast<size_t>(i)];
    return Status();
  }

 private:
  std::pair<int64_t, int64_t> Range(int64_t rank) const {
    auto clamp = [rank](int64_t v) {
      if (v < 0) v += rank;
      return std::clamp<int64_t>(v, 0, rank);
    };
    const int64_t b = clamp(start_);
    const int64_t e = has_end_ ? clamp(end_) : rank;
    return {b, std::max(b, e)};
  }
  int64_t start_;
  int64_t end_;
  bool has_end_;
};

Result<std::unique_ptr<Kernel>> MakeShape(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(int64_t start, ctx.Int("start", 0));
  OUTPOST_ASSIGN_OR_RETURN(int64_t end, ctx.Int("end", 0));
  return std::unique_ptr<Kernel>(new ShapeKernel(start, end, ctx.Has("end")));
}

class SizeKernel : public Kernel {
 public:
  Status Infer(InferContext& ctx) const override {
    ctx.SetOutput(0, DataType::kInt64, {});
    return Status();
  }
  bool ReadsOnlyShapes() const override { return true; }
  Status Compute(ComputeContext& ctx) const override {
    *ctx.output(0).mut<int64_t>() = NumElements(ctx.input(0).shape);
    return Status();
  }
};

Result<std::unique_ptr<Kernel>> MakeSize(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  return std::unique_ptr<Kernel>(new SizeKernel());
}

// ---- Expand ----

Status InferExpand(InferContext& ctx) {
  const TensorRef* target = ctx.input_value(1);
  if (target == nullptr) return ctx.Defer();
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> dims, ReadInts(*target));
  if (dims.size() > kMaxRank) return InvalidArgumentError("shape has too many dimensions");
  for (int64_t d : dims) {
    if (d < 0) return InvalidArgumentError("shape has a negative dimension");
  }
  OUTPOST_ASSIGN_OR_RETURN(Shape out, BroadcastShapes(ctx.input_shape(0), dims));
  OUTPOST_RETURN_IF_ERROR(CheckedElements(out).status());
  ctx.SetOutput(0, ctx.input_type(0), std::move(out));
  return Status();
}

// Copies `in` broadcast into `out` (any element type).
void BroadcastCopy(const TensorRef& in, const TensorRef& out) {
  if (in.type == DataType::kBytes) {
    ForEachBroadcast<1>(out.shape, {in.shape},
                        [&](int64_t o, const std::array<int64_t, 1>& off, int64_t n,
                            const std::array<int64_t, 1>& st) {
                          for (int64_t i = 0; i < n; ++i) {
                            out.strings[o + i] = in.strings[off[0] + i * st[0]];
                          }
                        });
    return;
  }
  const size_t es = ElementSize(in.type);
  const auto* x = static_cast<const std::byte*>(in.data);
  auto* y = static_cast<std::byte*>(out.data);
  ForEachBroadcast<1>(out.shape, {in.shape},
                      [&](int64_t o, const std::array<int64_t, 1>& off, int64_t n,
                          const std::array<int64_t, 1>& st) {
                        if (st[0] != 0) {
                          std::memcpy(y + o * es, x + off[0] * es, static_cast<size_t>(n) * es);
                        } else {
                          for (int64_t i = 0; i < n; ++i) {
                            std::memcpy(y + (o + i) * es, x + off[0] * es, es);
                          }
                        }
                      });
}

Status ComputeExpand(ComputeContext& ctx) {
  BroadcastCopy(ctx.input(0), ctx.output(0));
  return Status();
}

Result<std::unique_ptr<Kernel>> MakeExpand(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  return std::unique_ptr<Kernel>(new FunctionKernel(&InferExpand, &ComputeExpand));
}

// ---- ConstantOfShape, Constant ----

class ConstantOfShapeKernel : public Kernel {
 public:
  explicit ConstantOfShapeKernel(std::shared_ptr<const Tensor> value) : value_(std::move(value)) {}
  Status Infer(InferContext& ctx) const override {
    const TensorRef* target = ctx.input_value(0);
    if (target == nullptr) return ctx.Defer();
    OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> dims, ReadInts(*target));
    if (dims.size() > kMaxRank) return InvalidArgumentError("shape has too many dimensions");
    OUTPOST_RETURN_IF_ERROR(CheckedElements(dims).status());
    ctx.SetOutput(0, value_->type(), std::move(dims));
    return Status();
  }
  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& out = ctx.output(0);
    const size_t es = ElementSize(out.type);
    auto* y = static_cast<std::byte*>(out.data);
    for (int64_t i = 0; i < out.count; ++i) std::memcpy(y + i * es, value_->data(), es);
    return Status();
  }

 private:
  std::shared_ptr<const Tensor> value_;
};

Result<std::unique_ptr<Kernel>> MakeConstantOfShape(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::shared_ptr<const Tensor> value, ctx.TensorAttr("value"));
  if (!value) {
    auto zero = std::make_shared<Tensor>(DataType::kFp32, Shape{1});
    value = zero;
  }
  if (value->element_count() != 1 || value->type() == DataType::kBytes) {
    return InvalidArgumentError("attribute value must hold one numeric element");
  }
  return std::unique_ptr<Kernel>(new ConstantOfShapeKernel(std::move(value)));
}

class ConstantKernel : public Kernel {
 public:
  explicit ConstantKernel(std::shared_ptr<const Tensor> value) : value_(std::move(value)) {}
  Status Infer(InferContext& ctx) const override {
    ctx.SetOutput(0, value_->type(), value_->shape());
    return Status();
  }
  Status Compute(ComputeContext& ctx) const override {
    CopyTensor(RefOf(*value_), ctx.output(0));
    return Status();
  }

 private:
  std::shared_ptr<const Tensor> value_;
};

Result<std::unique_ptr<Kernel>> MakeConstant(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(0, 0));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(1, 1));
  if (ctx.node().attributes.size() != 1) {
    return InvalidArgumentError("expects exactly one value attribute");
  }
  const Attribute& a = ctx.node().attributes[0];
  std::shared_ptr<Tensor> t;
  if (a.name == "value" && a.type == AttrType::kTensor && a.tensor) {
    return std::unique_ptr<Kernel>(new ConstantKernel(a.tensor));
  } else if (a.name == "value_float" && a.type == AttrType::kFloat) {
    t = std::make_shared<Tensor>(DataType::kFp32, Shape{});
    t->values<float>()[0] = a.f;
  } else if (a.name == "value_floats" && a.type == AttrType::kFloats) {
    t = std::make_shared<Tensor>(DataType::kFp32, Shape{static_cast<int64_t>(a.floats.size())});
    std::copy(a.floats.begin(), a.floats.end(), t->values<float>().begin());
  } else if (a.name == "value_int" && a.type == AttrType::kInt) {
    t = std::make_shared<Tensor>(DataType::kInt64, Shape{});
    t->values<int64_t>()[0] = a.i;
  } else if (a.name == "value_ints" && a.type == AttrType::kInts) {
    t = std::make_shared<Tensor>(DataType::kInt64, Shape{static_cast<int64_t>(a.ints.size())});
    std::copy(a.ints.begin(), a.ints.end(), t->values<int64_t>().begin());
  } else if (a.name == "value_string" && a.type == AttrType::kString) {
    t = std::make_shared<Tensor>(DataType::kBytes, Shape{});
    t->strings()[0] = a.s;
  } else if (a.name == "value_strings" && a.type == AttrType::kStrings) {
    t = std::make_shared<Tensor>(DataType::kBytes,
                                 Shape{static_cast<int64_t>(a.strings.size())});
    t->strings() = a.strings;
  } else if (a.name == "sparse_value") {
    return UnimplementedError("sparse constants are not supported");
  } else {
    return InvalidArgumentError("attribute \"" + a.name + "\" is not a Constant value");
  }
  return std::unique_ptr<Kernel>(new ConstantKernel(std::move(t)));
}

// ---- Range ----

inline constexpr uint32_t kRangeTypes = TypeBit(DataType::kFp32) | TypeBit(DataType::kFp64) |
                                        TypeBit(DataType::kInt16) | TypeBit(DataType::kInt32) |
                                        TypeBit(DataType::kInt64);

Status InferRange(InferContext& ctx) {
  const DataType t = ctx.input_type(0);
  OUTPOST_RETURN_IF_ERROR(CheckType(t, kRangeTypes, "start"));
  for (size_t i = 0; i < 3; ++i) {
    if (ctx.input_type(i) != t) return InvalidArgumentError("inputs differ in element type");
    if (NumElements(ctx.input_shape(i)) != 1) return InvalidArgumentError("inputs must be scalars");
  }
  const TensorRef* s = ctx.input_value(0);
  const TensorRef* l = ctx.input_value(1);
  const TensorRef* d = ctx.input_value(2);
  if (s == nullptr || l == nullptr || d == nullptr) return ctx.Defer();
  int64_t n = 0;
  if (t == DataType::kFp32 || t == DataType::kFp64) {
    const double start = ReadDouble(*s, 0), limit = ReadDouble(*l, 0), delta = ReadDouble(*d, 0);
    if (delta == 0) return InvalidArgumentError("delta is 0");
    const double count = std::ceil((limit - start) / delta);
    if (!(count < 9e15)) return InvalidArgumentError("the range has too many elements");
    n = count > 0 ? static_cast<int64_t>(count) : 0;
  } else {
    const int64_t start = ReadInt64(*s, 0), limit = ReadInt64(*l, 0), delta = ReadInt64(*d, 0);
    if (delta == 0) return InvalidArgumentError("delta is 0");
    // Computed in long double to avoid overflow of limit - start.
    const long double span = static_cast<long double>(limit) - static_cast<long double>(start);
    const long double count = std::ceil(span / static_cast<long double>(delta));
    if (!(count < 9e15L)) return InvalidArgumentError("the range has too many elements");
    n = count > 0 ? static_cast<int64_t>(count) : 0;
  }
  ctx.SetOutput(0, t, {n});
  return Status();
}

Status ComputeRange(ComputeContext& ctx) {
  const TensorRef& out = ctx.output(0);
  return Dispatch<kRangeTypes>(out.type, [&](auto tag) {
    using T = decltype(tag);
    const T start = ctx.input(0).get<T>()[0];
    const T delta = ctx.input(2).get<T>()[0];
    T* y = out.mut<T>();
    for (int64_t i = 0; i < out.count; ++i) {
      if constexpr (std::is_integral_v<T>) {
        y[i] = static_cast<T>(static_cast<uint64_t>(start) +
                              static_cast<uint64_t>(i) * static_cast<uint64_t>(delta));
      } else {
        y[i] = static_cast<T>(start + static_cast<T>(i) * delta);
      }
    }
    return Status();
  });
}

Result<std::unique_ptr<Kernel>> MakeRange(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(3, 3));
  return std::unique_ptr<Kernel>(new FunctionKernel(&InferRange, &ComputeRange));
}

// ---- Transpose ----

class TransposeKernel : public Kernel {
 public:
  explicit TransposeKernel(std::vector<int64_t> perm) : perm_(std::move(perm)) {}

  Status Infer(InferContext& ctx) const override {
    const Shape& in = ctx.input_shape(0);
    OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> perm, Perm(in.size()));
    Shape out(in.size());
    for (size_t d = 0; d < in.size(); ++d) out[d] = in[static_cast<size_t>(perm[d])];
    ctx.SetOutput(0, ctx.input_type(0), std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    const TensorRef& out = ctx.output(0);
    const size_t rank = in.rank();
    if (out.count == 0) return Status();
    std::array<int64_t, kMaxRank> in_stride{};
    int64_t s = 1;
    for (size_t d = rank; d-- > 0;) {
      in_stride[d] = s;
      s *= in.shape[d];
    }
    // Output dim d walks input dim perm[d].
    std::array<int64_t, kMaxRank> stride{};
    std::array<int64_t, kMaxRank> size{};
    for (size_t d = 0; d < rank; ++d) {
      const auto p = static_cast<size_t>(perm_.empty() ? static_cast<int64_t>(rank - 1 - d)
                                                       : perm_[d]);
      stride[d] = in_stride[p];
      size[d] = out.shape[d];
    }
    auto walk = [&](auto&& copy_one) {
      if (rank == 0) {
        copy_one(0, 0);
        return;
      }
      std::array<int64_t, kMaxRank> counter{};
      int64_t in_off = 0;
      const size_t last = rank - 1;
      const int64_t inner = size[last];
      const int64_t inner_stride = stride[last];
      for (int64_t o = 0; o < out.count; o += inner) {
        for (int64_t i = 0; i < inner; ++i) copy_one(o + i, in_off + i * inner_stride);
        for (size_t d = last; d-- > 0;) {
          if (++counter[d] < size[d]) {
            in_off += stride[d];
            break;
          }
          counter[d] = 0;
          in_off -= stride[d] * (size[d] - 1);
        }
      }
    };
    if (in.type == DataType::kBytes) {
      walk([&](int64_t o, int64_t i) { out.strings[o] = in.strings[i]; });
      return Status();
    }
    switch (ElementSize(in.type)) {
      case 1: {
        const auto* x = in.get<uint8_t>();
        auto* y = out.mut<uint8_t>();
        walk([&](int64_t o, int64_t i) { y[o] = x[i]; });
        break;
      }
      case 2: {
        const auto* x = in.get<uint16_t>();
        auto* y = out.mut<uint16_t>();
        walk([&](int64_t o, int64_t i) { y[o] = x[i]; });
        break;
      }
      case 4: {
        const auto* x = in.get<uint32_t>();
        auto* y = out.mut<uint32_t>();
        walk([&](int64_t o, int64_t i) { y[o] = x[i]; });
        break;
      }
      default: {
        const auto* x = in.get<uint64_t>();
        auto* y = out.mut<uint64_t>();
        walk([&](int64_t o, int64_t i) { y[o] = x[i]; });
        break;
      }
    }
    return Status();
  }

 private:
  Result<std::vector<int64_t>> Perm(size_t rank) const {
    if (rank > kMaxRank) return InvalidArgumentError("rank too large");
    std::vector<int64_t> perm = perm_;
    if (perm.empty()) {
      for (size_t d = 0; d < rank; ++d) perm.push_back(static_cast<int64_t>(rank - 1 - d));
      return perm;
    }
    if (perm.size() != rank) {
      return InvalidArgumentError("perm has " + std::to_string(perm.size()) +
                                  " entries for rank " + std::to_string(rank));
    }
    std::vector<bool> seen(rank, false);
    for (int64_t p : perm) {
      if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)]) {
        return InvalidArgumentError("perm is not a permutation");
      }
      seen[static_cast<size_t>(p)] = true;
    }
    return perm;
  }

  std::vector<int64_t> perm_;
};

Result<std::unique_ptr<Kernel>> MakeTranspose(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> perm, ctx.Ints("perm"));
  return std::unique_ptr<Kernel>(new TransposeKernel(std::move(perm)));
}

}  // namespace

void RegisterShapeKernels(KernelRegistry& r) {
  r.Add({"", "Reshape", 5, 1000, &MakeReshape});
  r.Add({"", "Flatten", 1, 1000, &MakeFlatten});
  r.Add({"", "Squeeze", 1, 1000, &MakeSqueeze<false>});
  r.Add({"", "Unsqueeze", 1, 1000, &MakeSqueeze<true>});
  r.Add({"", "Shape", 1, 1000, &MakeShape});
  r.Add({"", "Size", 1, 1000, &MakeSize});
  r.Add({"", "Expand", 8, 1000, &MakeExpand});
  r.Add({"", "ConstantOfShape", 9, 1000, &MakeConstantOfShape});
  r.Add({"", "Constant", 1, 1000, &MakeConstant});
  r.Add({"", "Range", 11, 1000, &MakeRange});
  r.Add({"", "Transpose", 1, 1000, &MakeTranspose});
}

}  // namespace outpost::engine::onnx
