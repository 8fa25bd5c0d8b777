// Indexing and rearranging operators beyond phase 1: Pad, GatherND, ScatterElements (and the
// older Scatter), ScatterND, Compress, EyeLike, DepthToSpace, SpaceToDepth, ReverseSequence,
// NonZero, InstanceNormalization. Element moves are type-generic (numeric bytes or strings).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

// Copies element `from` of `src` to element `to` of `dst` (same type).
inline void CopyOne(const TensorRef& src, int64_t from, const TensorRef& dst, int64_t to) {
  if (src.type == DataType::kBytes) {
    dst.strings[to] = src.strings[from];
    return;
  }
  const size_t es = ElementSize(src.type);
  std::memcpy(static_cast<std::byte*>(dst.data) + to * static_cast<int64_t>(es),
              static_cast<const std::byte*>(src.data) + from * static_cast<int64_t>(es), es);
}

std::vector<int64_t> Strides(std::span<const int64_t> shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

// Calls fn(flat_index, coordinates) for every element of `shape` in row-major order.
template <typename Fn>
void ForEachIndex(std::span<const int64_t> shape, Fn&& fn) {
  const int64_t total = NumElements(shape);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t i = 0; i < total; ++i) {
    fn(i, idx);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// ---- Pad ----

enum class PadMode { kConstant, kReflect, kEdge };

class PadKernel : public Kernel {
 public:
  PadKernel(PadMode mode, std::vector<int64_t> attr_pads, float attr_value, bool from_attrs)
      : mode_(mode), attr_pads_(std::move(attr_pads)), attr_value_(attr_value),
        from_attrs_(from_attrs) {}

  Status Infer(InferContext& ctx) const override {
    std::vector<int64_t> pads = attr_pads_;
    if (!from_attrs_) {
      const TensorRef* p = ctx.input_value(1);
      if (p == nullptr) return ctx.Defer();
      OUTPOST_ASSIGN_OR_RETURN(pads, ReadInts(*p));
    }
    const Shape& x = ctx.input_shape(0);
    if (pads.size() != 2 * x.size()) return InvalidArgumentError("pads must have 2 x rank values");
    Shape out(x.size());
    for (size_t d = 0; d < x.size(); ++d) {
      if (std::abs(pads[d]) > (int64_t{1} << 40) || std::abs(pads[x.size() + d]) > (int64_t{1} << 40)) {
        return InvalidArgumentError("a pad is out of range");
      }
      out[d] = x[d] + pads[d] + pads[x.size() + d];
      if (out[d] < 0) return InvalidArgumentError("pads remove more than the dimension");
      if (mode_ != PadMode::kConstant && x[d] == 0 && out[d] > 0) {
        return InvalidArgumentError("cannot reflect or extend an empty dimension");
      }
    }
    OUTPOST_RETURN_IF_ERROR(CheckedElements(out).status());
    ctx.SetOutput(0, ctx.input_type(0), std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    std::vector<int64_t> pads = attr_pads_;
    if (!from_attrs_) {
      OUTPOST_ASSIGN_OR_RETURN(pads, ReadInts(ctx.input(1)));
    }
    const size_t rank = x.rank();
    const std::vector<int64_t> stride = Strides(x.shape);
    // The constant, as one element of X's type.
    Tensor constant(x.type == DataType::kBytes ? DataType::kBytes : x.type, Shape{});
    if (!from_attrs_ && ctx.has_input(2)) {
      CopyOne(ctx.input(2), 0, RefOf(constant), 0);
    } else if (x.type != DataType::kBytes) {
      OUTPOST_RETURN_IF_ERROR(Dispatch<kNumericTypes | TypeBit(DataType::kBool)>(
          x.type, [&](auto tag) {
            using T = decltype(tag);
            constant.values<T>()[0] = CastFromDouble<T>(attr_value_);
            return Status();
          }));
    }
    const TensorRef cref = RefOf(constant);
    ForEachIndex(y.shape, [&](int64_t o, const std::vector<int64_t>& idx) {
      int64_t off = 0;
      bool inside = true;
      for (size_t d = 0; d < rank; ++d) {
        int64_t i = idx[d] - pads[d];
        const int64_t n = x.shape[d];
        if (i < 0 || i >= n) {
          if (mode_ == PadMode::kConstant) {
            inside = false;
            break;
          }
          if (mode_ == PadMode::kEdge) {
            i = i < 0 ? 0 : n - 1;
          } else if (n == 1) {
            i = 0;
          } else {
            const int64_t period = 2 * (n - 1);
            i = ((i % period) + period) % period;
            if (i >= n) i = period - i;
          }
        }
        off += i * stride[d];
      }
      if (inside) {
        CopyOne(x, off, y, o);
      } else {
        CopyOne(cref, 0, y, o);
      }
    });
    return Status();
  }

 private:
  PadMode mode_;
  std::vector<int64_t> attr_pads_;
  float attr_value_;
  bool from_attrs_;
};

Result<std::unique_ptr<Kernel>> MakePad(const KernelBuildContext& ctx) {
  const bool from_attrs = ctx.opset() < 11;
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, from_attrs ? 1 : 4));
  if (!from_attrs && ctx.has_input(3)) return UnimplementedError("Pad's axes input is not supported");
  OUTPOST_ASSIGN_OR_RETURN(std::string mode, ctx.String("mode", "constant"));
  PadMode m;
  if (mode == "constant") {
    m = PadMode::kConstant;
  } else if (mode == "reflect") {
    m = PadMode::kReflect;
  } else if (mode == "edge") {
    m = PadMode::kEdge;
  } else {
    return InvalidArgumentError("unknown pad mode \"" + mode + "\"");
  }
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> pads, ctx.Ints("pads"));
  OUTPOST_ASSIGN_OR_RETURN(float value, ctx.Float("value", 0.0f));
  if (!from_attrs && !ctx.has_input(1)) return InvalidArgumentError("pads input is required");
  return std::unique_ptr<Kernel>(new PadKernel(m, std::move(pads), value, from_attrs));
}

// ---- GatherND ----

class GatherNDKernel : public Kernel {
 public:
  explicit GatherNDKernel(int64_t batch_dims) : batch_dims_(batch_dims) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(1) != DataType::kInt64) return InvalidArgumentError("indices must be INT64");
    const Shape& data = ctx.input_shape(0);
    const Shape& ind = ctx.input_shape(1);
    const auto b = static_cast<size_t>(batch_dims_);
    if (ind.empty() || batch_dims_ < 0 || b >= ind.size() || b >= data.size()) {
      return InvalidArgumentError("bad ranks or batch_dims");
    }
    const int64_t k = ind.back();
    if (k < 1 || static_cast<size_t>(k) + b > data.size()) {
      return InvalidArgumentError("the index tuples are longer than the data's rank");
    }
    for (size_t d = 0; d < b; ++d) {
      if (data[d] != ind[d]) return InvalidArgumentError("batch dimensions differ");
    }
    Shape out(ind.begin(), ind.end() - 1);
    out.insert(out.end(), data.begin() + static_cast<int64_t>(b) + k, data.end());
    ctx.SetOutput(0, ctx.input_type(0), std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& data = ctx.input(0);
    const TensorRef& ind = ctx.input(1);
    const TensorRef& out = ctx.output(0);
    const auto b = static_cast<size_t>(batch_dims_);
    const int64_t k = ind.shape.back();
    const std::vector<int64_t> stride = Strides(data.shape);
    const int64_t slice = DimProduct(data.shape, b + static_cast<size_t>(k), data.rank());
    const int64_t batches = DimProduct(data.shape, 0, b);
    const int64_t tuples = (ind.count / k) / std::max<int64_t>(batches, 1);
    const int64_t* iv = ind.get<int64_t>();
    for (int64_t bt = 0; bt < batches; ++bt) {
      for (int64_t t = 0; t < tuples; ++t) {
        const int64_t* tuple = iv + (bt * tuples + t) * k;
        int64_t off = bt * (b == 0 ? 0 : stride[b - 1]);
        for (int64_t j = 0; j < k; ++j) {
          const int64_t dim = data.shape[b + static_cast<size_t>(j)];
          int64_t v = tuple[j];
          if (v < -dim || v >= dim) return InvalidArgumentError("an index is out of range");
          if (v < 0) v += dim;
          off += v * stride[b + static_cast<size_t>(j)];
        }
        for (int64_t e = 0; e < slice; ++e) {
          CopyOne(data, off + e, out, (bt * tuples + t) * slice + e);
        }
      }
    }
    return Status();
  }

 private:
  int64_t batch_dims_;
};

Result<std::unique_ptr<Kernel>> MakeGatherND(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  OUTPOST_ASSIGN_OR_RETURN(int64_t batch_dims, ctx.Int("batch_dims", 0));
  return std::unique_ptr<Kernel>(new GatherNDKernel(batch_dims));
}

// ---- ScatterElements, Scatter, ScatterND ----

enum class ScatterReduce { kNone, kAdd, kMul };

Result<ScatterReduce> ReadReduction(const KernelBuildContext& ctx) {
  OUTPOST_ASSIGN_OR_RETURN(std::string r, ctx.String("reduction", "none"));
  if (r == "none") return ScatterReduce::kNone;
  if (r == "add") return ScatterReduce::kAdd;
  if (r == "mul") return ScatterReduce::kMul;
  return UnimplementedError("reduction \"" + r + "\" is not supported");
}

// out[to] = update (or += / *=).
Status ApplyUpdate(ScatterReduce r, const TensorRef& upd, int64_t from, const TensorRef& out,
                   int64_t to) {
  if (r == ScatterReduce::kNone || out.type == DataType::kBytes) {
    CopyOne(upd, from, out, to);
    return Status();
  }
  return Dispatch<kNumericTypes>(out.type, [&](auto tag) {
    using T = decltype(tag);
    using C = MathT<T>;
    T* o = out.mut<T>();
    const C u = C(upd.get<T>()[from]);
    o[to] = T(r == ScatterReduce::kAdd ? WrapAdd(C(o[to]), u) : WrapMul(C(o[to]), u));
    return Status();
  });
}

class ScatterElementsKernel : public Kernel {
 public:
  ScatterElementsKernel(int64_t axis, ScatterReduce r) : axis_(axis), reduce_(r) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(1), kIndexTypes, "indices"));
    if (ctx.input_type(2) != ctx.input_type(0)) return InvalidArgumentError("updates differ in type");
    const Shape& data = ctx.input_shape(0);
    if (ctx.input_shape(1) != ctx.input_shape(2) || ctx.input_shape(1).size() != data.size()) {
      return InvalidArgumentError("indices and updates must have the data's rank and one shape");
    }
    OUTPOST_RETURN_IF_ERROR(NormalizeAxis(axis_, static_cast<int64_t>(data.size())).status());
    ctx.SetOutput(0, ctx.input_type(0), data);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& data = ctx.input(0);
    const TensorRef& ind = ctx.input(1);
    const TensorRef& upd = ctx.input(2);
    const TensorRef& out = ctx.output(0);
    CopyTensor(data, out);
    const auto axis = static_cast<size_t>(axis_ < 0 ? axis_ + static_cast<int64_t>(data.rank())
                                                    : axis_);
    const std::vector<int64_t> stride = Strides(data.shape);
    Status st;
    ForEachIndex(ind.shape, [&](int64_t i, const std::vector<int64_t>& idx) {
      if (!st.ok()) return;
      int64_t v = ReadInt64(ind, i);
      const int64_t dim = data.shape[axis];
      if (v < -dim || v >= dim) {
        st = InvalidArgumentError("an index is out of range");
        return;
      }
      if (v < 0) v += dim;
      int64_t off = 0;
      for (size_t d = 0; d < idx.size(); ++d) {
        if (d != axis && idx[d] >= data.shape[d]) {
          st = InvalidArgumentError("indices are larger than data outside the axis");
          return;
        }
        off += (d == axis ? v : idx[d]) * stride[d];
      }
      st = ApplyUpdate(reduce_, upd, i, out, off);
    });
    return st;
  }

 private:
  int64_t axis_;
  ScatterReduce reduce_;
};

Result<std::unique_ptr<Kernel>> MakeScatterElements(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(3, 3));
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 0));
  OUTPOST_ASSIGN_OR_RETURN(ScatterReduce r, ReadReduction(ctx));
  return std::unique_ptr<Kernel>(new ScatterElementsKernel(axis, r));
}

class ScatterNDKernel : public Kernel {
 public:
  explicit ScatterNDKernel(ScatterReduce r) : reduce_(r) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(1) != DataType::kInt64) return InvalidArgumentError("indices must be INT64");
    if (ctx.input_type(2) != ctx.input_type(0)) return InvalidArgumentError("updates differ in type");
    const Shape& data = ctx.input_shape(0);
    const Shape& ind = ctx.input_shape(1);
    if (ind.empty() || ind.back() < 1 || static_cast<size_t>(ind.back()) > data.size()) {
      return InvalidArgumentError("bad index tuples");
    }
    Shape want(ind.begin(), ind.end() - 1);
    want.insert(want.end(), data.begin() + ind.back(), data.end());
    if (ctx.input_shape(2) != want) return InvalidArgumentError("updates have the wrong shape");
    ctx.SetOutput(0, ctx.input_type(0), data);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& data = ctx.input(0);
    const TensorRef& ind = ctx.input(1);
    const TensorRef& upd = ctx.input(2);
    const TensorRef& out = ctx.output(0);
    CopyTensor(data, out);
    const int64_t k = ind.shape.back();
    const std::vector<int64_t> stride = Strides(data.shape);
    const int64_t slice = DimProduct(data.shape, static_cast<size_t>(k), data.rank());
    const int64_t* iv = ind.get<int64_t>();
    for (int64_t t = 0; t < ind.count / k; ++t) {
      int64_t off = 0;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t dim = data.shape[static_cast<size_t>(j)];
        int64_t v = iv[t * k + j];
        if (v < -dim || v >= dim) return InvalidArgumentError("an index is out of range");
        if (v < 0) v += dim;
        off += v * stride[static_cast<size_t>(j)];
      }
      for (int64_t e = 0; e < slice; ++e) {
        OUTPOST_RETURN_IF_ERROR(ApplyUpdate(reduce_, upd, t * slice + e, out, off + e));
      }
    }
    return Status();
  }

 private:
  ScatterReduce reduce_;
};

Result<std::unique_ptr<Kernel>> MakeScatterND(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(3, 3));
  OUTPOST_ASSIGN_OR_RETURN(ScatterReduce r, ReadReduction(ctx));
  return std::unique_ptr<Kernel>(new ScatterNDKernel(r));
}

// ---- Compress ----

class CompressKernel : public Kernel {
 public:
  CompressKernel(bool has_axis, int64_t axis) : has_axis_(has_axis), axis_(axis) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(1) != DataType::kBool) return InvalidArgumentError("condition must be BOOL");
    const TensorRef* cond = ctx.input_value(1);
    if (cond == nullptr) return ctx.Defer();
    if (ctx.input_shape(1).size() != 1) return InvalidArgumentError("condition must be 1-D");
    const Shape& x = ctx.input_shape(0);
    const int64_t dim = has_axis_ ? 0 : NumElements(x);
    int64_t axis = 0;
    int64_t limit = dim;
    if (has_axis_) {
      OUTPOST_ASSIGN_OR_RETURN(axis, NormalizeAxis(axis_, static_cast<int64_t>(x.size())));
      limit = x[static_cast<size_t>(axis)];
    }
    int64_t kept = 0;
    for (int64_t i = 0; i < std::min(limit, cond->count); ++i) kept += cond->get<bool>()[i];
    Shape out;
    if (has_axis_) {
      out = x;
      out[static_cast<size_t>(axis)] = kept;
    } else {
      out = {kept};
    }
    ctx.SetOutput(0, ctx.input_type(0), std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& cond = ctx.input(1);
    const TensorRef& y = ctx.output(0);
    const bool* c = cond.get<bool>();
    if (!has_axis_) {
      int64_t o = 0;
      for (int64_t i = 0; i < std::min(x.count, cond.count); ++i) {
        if (c[i]) CopyOne(x, i, y, o++);
      }
      return Status();
    }
    const auto axis = static_cast<size_t>(axis_ < 0 ? axis_ + static_cast<int64_t>(x.rank())
                                                    : axis_);
    const int64_t outer = DimProduct(x.shape, 0, axis);
    const int64_t n = x.shape[axis];
    const int64_t inner = DimProduct(x.shape, axis + 1, x.rank());
    const int64_t kept = y.shape[axis];
    for (int64_t o = 0; o < outer; ++o) {
      int64_t j = 0;
      for (int64_t i = 0; i < std::min(n, cond.count); ++i) {
        if (!c[i]) continue;
        for (int64_t e = 0; e < inner; ++e) {
          CopyOne(x, (o * n + i) * inner + e, y, (o * kept + j) * inner + e);
        }
        ++j;
      }
    }
    return Status();
  }

 private:
  bool has_axis_;
  int64_t axis_;
};

Result<std::unique_ptr<Kernel>> MakeCompress(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 0));
  return std::unique_ptr<Kernel>(new CompressKernel(ctx.Has("axis"), axis));
}

// ---- EyeLike ----

class EyeLikeKernel : public Kernel {
 public:
  EyeLikeKernel(bool has_dtype, DataType dtype, int64_t k) : has_dtype_(has_dtype), dtype_(dtype), k_(k) {}
  Status Infer(InferContext& ctx) const override {
    if (ctx.input_shape(0).size() != 2) return InvalidArgumentError("input must be 2-D");
    const DataType t = has_dtype_ ? dtype_ : ctx.input_type(0);
    OUTPOST_RETURN_IF_ERROR(CheckType(t, kNumericTypes | TypeBit(DataType::kBool), "output"));
    ctx.SetOutput(0, t, ctx.input_shape(0));
    return Status();
  }
  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& y = ctx.output(0);
    const int64_t rows = y.shape[0], cols = y.shape[1];
    return Dispatch<kNumericTypes | TypeBit(DataType::kBool)>(y.type, [&](auto tag) {
      using T = decltype(tag);
      T* v = y.mut<T>();
      std::fill_n(v, y.count, T{});
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t c = r + k_;
        if (c >= 0 && c < cols) v[r * cols + c] = static_cast<T>(1.0f);
      }
      return Status();
    });
  }

 private:
  bool has_dtype_;
  DataType dtype_;
  int64_t k_;
};

Result<std::unique_ptr<Kernel>> MakeEyeLike(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(int64_t k, ctx.Int("k", 0));
  DataType t = DataType::kFp32;
  if (ctx.Has("dtype")) {
    OUTPOST_ASSIGN_OR_RETURN(int64_t dtype, ctx.Int("dtype", 1));
    OUTPOST_ASSIGN_OR_RETURN(t, DataTypeFromOnnx(dtype));
  }
  return std::unique_ptr<Kernel>(new EyeLikeKernel(ctx.Has("dtype"), t, k));
}

// ---- DepthToSpace, SpaceToDepth ----

class DepthSpaceKernel : public Kernel {
 public:
  DepthSpaceKernel(bool to_space, int64_t block, bool crd)
      : to_space_(to_space), b_(block), crd_(crd) {}

  Status Infer(InferContext& ctx) const override {
    const Shape& x = ctx.input_shape(0);
    if (x.size() != 4 || b_ < 1) return InvalidArgumentError("input must be 4-D, blocksize >= 1");
    Shape out = x;
    if (to_space_) {
      if (x[1] % (b_ * b_) != 0) return InvalidArgumentError("channels not divisible by blocksize^2");
      out = {x[0], x[1] / (b_ * b_), x[2] * b_, x[3] * b_};
    } else {
      if (x[2] % b_ != 0 || x[3] % b_ != 0) return InvalidArgumentError("H, W not divisible");
      out = {x[0], x[1] * b_ * b_, x[2] / b_, x[3] / b_};
    }
    ctx.SetOutput(0, ctx.input_type(0), std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    // Iterate over the depth-side tensor [N, C*b*b, H, W] and map to the space side.
    const TensorRef& deep = to_space_ ? x : y;
    const TensorRef& wide = to_space_ ? y : x;
    const int64_t n = deep.shape[0], cd = deep.shape[1], h = deep.shape[2], w = deep.shape[3];
    const int64_t c = cd / (b_ * b_);
    const int64_t wh = wide.shape[2], ww = wide.shape[3];
    for (int64_t bn = 0; bn < n; ++bn) {
      for (int64_t ch = 0; ch < cd; ++ch) {
        int64_t oc, i, j;
        if (crd_) {
          oc = ch / (b_ * b_);
          i = (ch / b_) % b_;
          j = ch % b_;
        } else {
          i = ch / (b_ * c);
          j = (ch / c) % b_;
          oc = ch % c;
        }
        for (int64_t r = 0; r < h; ++r) {
          for (int64_t col = 0; col < w; ++col) {
            const int64_t d_off = ((bn * cd + ch) * h + r) * w + col;
            const int64_t s_off = ((bn * c + oc) * wh + r * b_ + i) * ww + col * b_ + j;
            if (to_space_) {
              CopyOne(x, d_off, y, s_off);
            } else {
              CopyOne(x, s_off, y, d_off);
            }
          }
        }
      }
    }
    return Status();
  }

 private:
  bool to_space_;
  int64_t b_;
  bool crd_;
};

template <bool kToSpace>
Result<std::unique_ptr<Kernel>> MakeDepthSpace(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_ASSIGN_OR_RETURN(int64_t block, ctx.Int("blocksize", 0));
  OUTPOST_ASSIGN_OR_RETURN(std::string mode, ctx.String("mode", "DCR"));
  if (mode != "DCR" && mode != "CRD") return InvalidArgumentError("mode must be DCR or CRD");
  return std::unique_ptr<Kernel>(new DepthSpaceKernel(kToSpace, block, mode == "CRD"));
}

// ---- ReverseSequence ----

class ReverseSequenceKernel : public Kernel {
 public:
  ReverseSequenceKernel(int64_t batch_axis, int64_t time_axis)
      : batch_axis_(batch_axis), time_axis_(time_axis) {}

  Status Infer(InferContext& ctx) const override {
    const Shape& x = ctx.input_shape(0);
    if (x.size() < 2 || (batch_axis_ != 0 && batch_axis_ != 1) ||
        (time_axis_ != 0 && time_axis_ != 1) || batch_axis_ == time_axis_) {
      return InvalidArgumentError("bad axes");
    }
    if (ctx.input_type(1) != DataType::kInt64 ||
        ctx.input_shape(1) != Shape{x[static_cast<size_t>(batch_axis_)]}) {
      return InvalidArgumentError("sequence_lens must be INT64 [batch]");
    }
    ctx.SetOutput(0, ctx.input_type(0), x);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    const int64_t* lens = ctx.input(1).get<int64_t>();
    const std::vector<int64_t> stride = Strides(x.shape);
    const auto ta = static_cast<size_t>(time_axis_), ba = static_cast<size_t>(batch_axis_);
    Status st;
    ForEachIndex(x.shape, [&](int64_t i, const std::vector<int64_t>& idx) {
      const int64_t len = lens[idx[ba]];
      if (len < 0 || len > x.shape[ta]) {
        st = InvalidArgumentError("a sequence length is out of range");
        return;
      }
      const int64_t t = idx[ta];
      const int64_t src = t < len ? i + (len - 1 - 2 * t) * stride[ta] : i;
      CopyOne(x, src, y, i);
    });
    return st;
  }

 private:
  int64_t batch_axis_;
  int64_t time_axis_;
};

Result<std::unique_ptr<Kernel>> MakeReverseSequence(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  OUTPOST_ASSIGN_OR_RETURN(int64_t batch_axis, ctx.Int("batch_axis", 1));
  OUTPOST_ASSIGN_OR_RETURN(int64_t time_axis, ctx.Int("time_axis", 0));
  return std::unique_ptr<Kernel>(new ReverseSequenceKernel(batch_axis, time_axis));
}

// ---- NonZero ----

Status InferNonZero(InferContext& ctx) {
  const TensorRef* x = ctx.input_value(0);
  if (x == nullptr) return ctx.Defer();
  if (x->type == DataType::kBytes) return UnsupportedType(x->type);
  int64_t count = 0;
  for (int64_t i = 0; i < x->count; ++i) count += ReadDouble(*x, i) != 0;
  ctx.SetOutput(0, DataType::kInt64, {static_cast<int64_t>(ctx.input_shape(0).size()), count});
  return Status();
}

Status ComputeNonZero(ComputeContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.output(0);
  const int64_t count = y.shape[1];
  int64_t* out = y.mut<int64_t>();
  int64_t k = 0;
  ForEachIndex(x.shape, [&](int64_t i, const std::vector<int64_t>& idx) {
    if (ReadDouble(x, i) == 0) return;
    for (size_t d = 0; d < idx.size(); ++d) out[static_cast<int64_t>(d) * count + k] = idx[d];
    ++k;
  });
  return Status();
}

Result<std::unique_ptr<Kernel>> MakeNonZero(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  return std::unique_ptr<Kernel>(new FunctionKernel(&InferNonZero, &ComputeNonZero));
}

// ---- InstanceNormalization ----

class InstanceNormKernel : public Kernel {
 public:
  explicit InstanceNormKernel(float epsilon) : epsilon_(epsilon) {}
  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kFloatTypes, "X"));
    const Shape& x = ctx.input_shape(0);
    if (x.size() < 3) return InvalidArgumentError("X must have rank >= 3");
    if (ctx.input_shape(1) != Shape{x[1]} || ctx.input_shape(2) != Shape{x[1]}) {
      return InvalidArgumentError("scale and B must have one value per channel");
    }
    ctx.SetOutput(0, ctx.input_type(0), x);
    return Status();
  }
  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const int64_t c = x.shape[1];
    const int64_t planes = x.shape[0] * c;
    const int64_t size = DimProduct(x.shape, 2, x.rank());
    return Dispatch<kFloatTypes>(x.type, [&](auto tag) {
      using T = decltype(tag);
      using C = MathT<T>;
      const T* xv = x.get<T>();
      T* y = ctx.output(0).mut<T>();
      for (int64_t p = 0; p < planes; ++p) {
        const T* v = xv + p * size;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < size; ++i) sum += static_cast<double>(C(v[i]));
        const double mean = size > 0 ? sum / static_cast<double>(size) : 0;
        for (int64_t i = 0; i < size; ++i) {
          const double d = static_cast<double>(C(v[i])) - mean;
          sq += d * d;
        }
        const double inv = 1.0 / std::sqrt((size > 0 ? sq / static_cast<double>(size) : 0) +
                                           static_cast<double>(epsilon_));
        const double s = ReadDouble(ctx.input(1), p % c);
        const double b = ReadDouble(ctx.input(2), p % c);
        for (int64_t i = 0; i < size; ++i) {
          y[p * size + i] = T(static_cast<C>((static_cast<double>(C(v[i])) - mean) * inv * s + b));
        }
      }
      return Status();
    });
  }

 private:
  float epsilon_;
};

Result<std::unique_ptr<Kernel>> MakeInstanceNorm(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(3, 3));
  OUTPOST_ASSIGN_OR_RETURN(float epsilon, ctx.Float("epsilon", 1e-5f));
  return std::unique_ptr<Kernel>(new InstanceNormKernel(epsilon));
}

}  // namespace

void RegisterIndexKernels(KernelRegistry& r) {
  r.Add({"", "Pad", 2, 1000, &MakePad});
  r.Add({"", "GatherND", 11, 1000, &MakeGatherND});
  r.Add({"", "ScatterElements", 11, 1000, &MakeScatterElements});
  r.Add({"", "Scatter", 9, 10, &MakeScatterElements});
  r.Add({"", "ScatterND", 11, 1000, &MakeScatterND});
  r.Add({"", "Compress", 9, 1000, &MakeCompress});
  r.Add({"", "EyeLike", 9, 1000, &MakeEyeLike});
  r.Add({"", "DepthToSpace", 1, 1000, &MakeDepthSpace<true>});
  r.Add({"", "SpaceToDepth", 1, 1000, &MakeDepthSpace<false>});
  r.Add({"", "ReverseSequence", 10, 1000, &MakeReverseSequence});
  r.Add({"", "NonZero", 9, 1000, &MakeNonZero});
  r.Add({"", "InstanceNormalization", 6, 1000, &MakeInstanceNorm});
}

}  // namespace outpost::engine::onnx
