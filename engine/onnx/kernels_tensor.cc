// Operators that move or convert elements: Concat, Split, Slice, Gather, GatherElements,
// Tile, OneHot, Trilu, Cast, CastLike.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

// Copies `n` elements between tensors of one type (numeric bytes or strings).
inline void CopyElements(const TensorRef& from, int64_t from_off, const TensorRef& to,
                         int64_t to_off, int64_t n) {
  if (n <= 0) return;
  if (from.type == DataType::kBytes) {
    for (int64_t i = 0; i < n; ++i) to.strings[to_off + i] = from.strings[from_off + i];
    return;
  }
  const size_t es = ElementSize(from.type);
  std::memcpy(static_cast<std::byte*>(to.data) + to_off * static_cast<int64_t>(es),
              static_cast<const std::byte*>(from.data) + from_off * static_cast<int64_t>(es),
              static_cast<size_t>(n) * es);
}

// ---- Concat ----

class ConcatKernel : public Kernel {
 public:
  explicit ConcatKernel(int64_t axis) : axis_(axis) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    Shape out = ctx.input_shape(0);
    OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(axis_, static_cast<int64_t>(out.size())));
    for (size_t i = 1; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i)) return InvalidArgumentError("an input is missing");
      if (ctx.input_type(i) != t) return InvalidArgumentError("inputs differ in element type");
      const Shape& s = ctx.input_shape(i);
      if (s.size() != out.size()) return InvalidArgumentError("inputs differ in rank");
      for (size_t d = 0; d < s.size(); ++d) {
        if (static_cast<int64_t>(d) == axis) continue;
        if (s[d] != out[d]) {
          return InvalidArgumentError("input " + std::to_string(i) + " has shape " +
                                      ShapeToString(s) + ", which does not match " +
                                      ShapeToString(ctx.input_shape(0)));
        }
      }
      out[static_cast<size_t>(axis)] += s[static_cast<size_t>(axis)];
    }
    ctx.SetOutput(0, t, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& out = ctx.output(0);
    const auto axis = static_cast<size_t>(axis_ < 0 ? axis_ + static_cast<int64_t>(out.rank())
                                                    : axis_);
    const int64_t outer = DimProduct(out.shape, 0, axis);
    const int64_t inner = DimProduct(out.shape, axis + 1, out.rank());
    const int64_t out_chunk = out.shape[axis] * inner;
    int64_t offset = 0;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const TensorRef& in = ctx.input(i);
      const int64_t chunk = in.shape[axis] * inner;
      for (int64_t o = 0; o < outer; ++o) {
        CopyElements(in, o * chunk, out, o * out_chunk + offset, chunk);
      }
      offset += chunk;
    }
    return Status();
  }

 private:
  int64_t axis_;
};

Result<std::unique_ptr<Kernel>> MakeConcat(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1 << 16));
  if (!ctx.Has("axis")) return InvalidArgumentError("attribute axis is required");
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 0));
  return std::unique_ptr<Kernel>(new ConcatKernel(axis));
}

// ---- Split ----

class SplitKernel : public Kernel {
 public:
  SplitKernel(int64_t axis, std::vector<int64_t> split, bool split_input)
      : axis_(axis), split_(std::move(split)), split_input_(split_input) {}

  Status Infer(InferContext& ctx) const override {
    const Shape& in = ctx.input_shape(0);
    OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(axis_, static_cast<int64_t>(in.size())));
    std::vector<int64_t> split = split_;
    if (split_input_ && ctx.has_input(1)) {
      const TensorRef* v = ctx.input_value(1);
      if (v == nullptr) return ctx.Defer();
      OUTPOST_ASSIGN_OR_RETURN(split, ReadInts(*v));
    }
    const int64_t dim = in[static_cast<size_t>(axis)];
    const auto n = static_cast<int64_t>(ctx.num_outputs());
    if (split.empty()) {
      if (dim % n != 0) {
        return InvalidArgumentError("axis of size " + std::to_string(dim) +
                                    " does not split evenly into " + std::to_string(n));
      }
      split.assign(static_cast<size_t>(n), dim / n);
    }
    if (static_cast<int64_t>(split.size()) != n) {
      return InvalidArgumentError("split has " + std::to_string(split.size()) + " entries for " +
                                  std::to_string(n) + " outputs");
    }
    int64_t total = 0;
    for (int64_t s : split) {
      if (s < 0 || s > dim) return InvalidArgumentError("split has an invalid size");
      total += s;
    }
    if (total != dim) {
      return InvalidArgumentError("split sizes add up to " + std::to_string(total) +
                                  ", not the axis size " + std::to_string(dim));
    }
    for (size_t i = 0; i < split.size(); ++i) {
      Shape out = in;
      out[static_cast<size_t>(axis)] = split[i];
      ctx.SetOutput(i, ctx.input_type(0), std::move(out));
    }
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    const auto axis = static_cast<size_t>(axis_ < 0 ? axis_ + static_cast<int64_t>(in.rank())
                                                    : axis_);
    const int64_t outer = DimProduct(in.shape, 0, axis);
    const int64_t inner = DimProduct(in.shape, axis + 1, in.rank());
    const int64_t in_chunk = in.shape[axis] * inner;
    int64_t offset = 0;
    for (size_t i = 0; i < ctx.num_outputs(); ++i) {
      if (!ctx.has_output(i)) {
        // An omitted output still consumes its part; its size is unknown here, so outputs
        // must all be present (checked when the kernel was built).
        continue;
      }
      const TensorRef& out = ctx.output(i);
      const int64_t chunk = out.shape[axis] * inner;
      for (int64_t o = 0; o < outer; ++o) {
        CopyElements(in, o * in_chunk + offset, out, o * chunk, chunk);
      }
      offset += chunk;
    }
    return Status();
  }

 private:
  int64_t axis_;
  std::vector<int64_t> split_;
  bool split_input_;
};

Result<std::unique_ptr<Kernel>> MakeSplit(const KernelBuildContext& ctx) {
  const bool split_input = ctx.opset() >= 13;
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, split_input ? 2 : 1));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(1, 1 << 16));
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    if (!ctx.has_output(i)) return InvalidArgumentError("every output of Split must be named");
  }
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 0));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> split, ctx.Ints("split"));
  return std::unique_ptr<Kernel>(new SplitKernel(axis, std::move(split), split_input));
}

// ---- Slice ----

struct SliceSpec {
  std::array<int64_t, kMaxRank> start{};
  std::array<int64_t, kMaxRank> step{};
  Shape out;
};

Result<SliceSpec> ResolveSlice(std::span<const int64_t> shape, const std::vector<int64_t>& starts,
                               const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                               std::vector<int64_t> steps) {
  const auto rank = static_cast<int64_t>(shape.size());
  if (shape.size() > kMaxRank) return InvalidArgumentError("rank too large");
  if (starts.size() != ends.size()) return InvalidArgumentError("starts and ends differ in length");
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size()) {
    return InvalidArgumentError("starts, ends, axes and steps differ in length");
  }
  SliceSpec spec;
  spec.out.assign(shape.begin(), shape.end());
  for (size_t d = 0; d < shape.size(); ++d) spec.step[d] = 1;
  std::vector<bool> seen(shape.size(), false);
  for (size_t i = 0; i < axes.size(); ++i) {
    OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(axes[i], rank));
    if (seen[static_cast<size_t>(axis)]) return InvalidArgumentError("an axis is repeated");
    seen[static_cast<size_t>(axis)] = true;
    const int64_t dim = shape[static_cast<size_t>(axis)];
    const int64_t step = steps[i];
    if (step == 0) return InvalidArgumentError("a step is 0");
    int64_t start = starts[i];
    int64_t end = ends[i];
    if (start < 0) start = start < -dim ? -1 : start + dim;
    if (end < 0) end = end < -dim ? -1 : end + dim;
    int64_t count;
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
      count = end > start ? (end - start + step - 1) / step : 0;
    } else {
      start = std::clamp<int64_t>(start, -1, dim - 1);
      end = std::clamp<int64_t>(end, -1, dim - 1);
      // step is at least INT64_MIN + 1 apart from the clamp, so -step does not overflow.
      const int64_t neg = step == std::numeric_limits<int64_t>::min() ? dim + 1 : -step;
      count = start > end ? (start - end + neg - 1) / neg : 0;
    }
    spec.start[static_cast<size_t>(axis)] = count > 0 ? start : 0;
    // With at most one element the step is never applied; 1 keeps offset arithmetic small.
    spec.step[static_cast<size_t>(axis)] = count > 1 ? step : 1;
    spec.out[static_cast<size_t>(axis)] = count;
  }
  return spec;
}

class SliceKernel : public Kernel {
 public:
  // Opset < 10: starts/ends/axes are attributes.
  SliceKernel(bool from_attributes, std::vector<int64_t> starts, std::vector<int64_t> ends,
              std::vector<int64_t> axes)
      : from_attributes_(from_attributes),
        starts_(std::move(starts)),
        ends_(std::move(ends)),
        axes_(std::move(axes)) {}

  Status Infer(InferContext& ctx) const override {
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    if (!from_attributes_) {
      for (size_t i = 1; i < ctx.num_inputs(); ++i) {
        if (ctx.has_input(i) && ctx.input_value(i) == nullptr) return ctx.Defer();
      }
      OUTPOST_ASSIGN_OR_RETURN(starts, ReadInts(*ctx.input_value(1)));
      OUTPOST_ASSIGN_OR_RETURN(ends, ReadInts(*ctx.input_value(2)));
      if (ctx.has_input(3)) {
        OUTPOST_ASSIGN_OR_RETURN(axes, ReadInts(*ctx.input_value(3)));
      }
      if (ctx.has_input(4)) {
        OUTPOST_ASSIGN_OR_RETURN(steps, ReadInts(*ctx.input_value(4)));
      }
    }
    OUTPOST_ASSIGN_OR_RETURN(SliceSpec spec, ResolveSlice(ctx.input_shape(0), starts, ends,
                                                          std::move(axes), std::move(steps)));
    ctx.SetOutput(0, ctx.input_type(0), std::move(spec.out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    const TensorRef& out = ctx.output(0);
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    if (!from_attributes_) {
      OUTPOST_ASSIGN_OR_RETURN(starts, ReadInts(ctx.input(1)));
      OUTPOST_ASSIGN_OR_RETURN(ends, ReadInts(ctx.input(2)));
      if (ctx.has_input(3)) {
        OUTPOST_ASSIGN_OR_RETURN(axes, ReadInts(ctx.input(3)));
      }
      if (ctx.has_input(4)) {
        OUTPOST_ASSIGN_OR_RETURN(steps, ReadInts(ctx.input(4)));
      }
    }
    OUTPOST_ASSIGN_OR_RETURN(SliceSpec spec, ResolveSlice(in.shape, starts, ends,
                                                          std::move(axes), std::move(steps)));
    if (out.count == 0) return Status();
    const size_t rank = in.rank();
    std::array<int64_t, kMaxRank> stride{};
    int64_t s = 1;
    for (size_t d = rank; d-- > 0;) {
      stride[d] = s;
      s *= in.shape[d];
    }
    int64_t base = 0;
    for (size_t d = 0; d < rank; ++d) base += spec.start[d] * stride[d];
    if (rank == 0) {
      CopyElements(in, 0, out, 0, 1);
      return Status();
    }
    std::array<int64_t, kMaxRank> counter{};
    const size_t last = rank - 1;
    const int64_t inner = out.shape[last];
    const int64_t inner_step = spec.step[last] * stride[last];
    int64_t off = base;
    for (int64_t o = 0; o < out.count; o += inner) {
      if (inner_step == 1) {
        CopyElements(in, off, out, o, inner);
      } else {
        for (int64_t i = 0; i < inner; ++i) CopyElements(in, off + i * inner_step, out, o + i, 1);
      }
      for (size_t d = last; d-- > 0;) {
        if (++counter[d] < out.shape[d]) {
          off += spec.step[d] * stride[d];
          break;
        }
        counter[d] = 0;
        off -= spec.step[d] * stride[d] * (out.shape[d] - 1);
      }
    }
    return Status();
  }

 private:
  bool from_attributes_;
  std::vector<int64_t> starts_;
  std::vector<int64_t> ends_;
  std::vector<int64_t> axes_;
};

Result<std::unique_ptr<Kernel>> MakeSlice(const KernelBuildContext& ctx) {
  if (ctx.opset() < 10) {
    OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
    OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> starts, ctx.Ints("starts"));
    OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> ends, ctx.Ints("ends"));
    OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ctx.Ints("axes"));
    return std::unique_ptr<Kernel>(
        new SliceKernel(true, std::move(starts), std::move(ends), std::move(axes)));
  }
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(3, 5));
  return std::unique_ptr<Kernel>(new SliceKernel(false, {}, {}, {}));
}

// ---- Gather, GatherElements ----

class GatherKernel : public Kernel {
 public:
  explicit GatherKernel(int64_t axis) : axis_(axis) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(1), kIndexTypes, "indices"));
    const Shape& data = ctx.input_shape(0);
    OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(axis_, static_cast<int64_t>(data.size())));
    Shape out(data.begin(), data.begin() + axis);
    const Shape& ind = ctx.input_shape(1);
    out.insert(out.end(), ind.begin(), ind.end());
    out.insert(out.end(), data.begin() + axis + 1, data.end());
    if (out.size() > kMaxRank) return InvalidArgumentError("rank too large");
    ctx.SetOutput(0, ctx.input_type(0), std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& data = ctx.input(0);
    const TensorRef& ind = ctx.input(1);
    const TensorRef& out = ctx.output(0);
    const auto axis = static_cast<size_t>(axis_ < 0 ? axis_ + static_cast<int64_t>(data.rank())
                                                    : axis_);
    const int64_t outer = DimProduct(data.shape, 0, axis);
    const int64_t n = data.shape[axis];
    const int64_t inner = DimProduct(data.shape, axis + 1, data.rank());
    const int64_t k = ind.count;
    for (int64_t j = 0; j < k; ++j) {
      int64_t idx = ReadInt64(ind, j);
      if (idx < -n || idx >= n) {
        return InvalidArgumentError("index " + std::to_string(idx) +
                                    " is out of range for an axis of size " + std::to_string(n));
      }
    }
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < k; ++j) {
        int64_t idx = ReadInt64(ind, j);
        if (idx < 0) idx += n;
        CopyElements(data, (o * n + idx) * inner, out, (o * k + j) * inner, inner);
      }
    }
    return Status();
  }

 private:
  int64_t axis_;
};

Result<std::unique_ptr<Kernel>> MakeGather(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 0));
  return std::unique_ptr<Kernel>(new GatherKernel(axis));
}

class GatherElementsKernel : public Kernel {
 public:
  explicit GatherElementsKernel(int64_t axis) : axis_(axis) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(1), kIndexTypes, "indices"));
    const Shape& data = ctx.input_shape(0);
    const Shape& ind = ctx.input_shape(1);
    if (data.size() != ind.size() || data.empty()) {
      return InvalidArgumentError("data and indices must have the same rank (at least 1)");
    }
    if (data.size() > kMaxRank) return InvalidArgumentError("rank too large");
    OUTPOST_RETURN_IF_ERROR(NormalizeAxis(axis_, static_cast<int64_t>(data.size())).status());
    ctx.SetOutput(0, ctx.input_type(0), ind);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& data = ctx.input(0);
    const TensorRef& ind = ctx.input(1);
    const TensorRef& out = ctx.output(0);
    const size_t rank = data.rank();
    const auto axis = static_cast<size_t>(axis_ < 0 ? axis_ + static_cast<int64_t>(rank) : axis_);
    std::array<int64_t, kMaxRank> stride{};
    int64_t s = 1;
    for (size_t d = rank; d-- > 0;) {
      stride[d] = s;
      s *= data.shape[d];
    }
    std::array<int64_t, kMaxRank> counter{};
    const int64_t n = data.shape[axis];
    for (int64_t i = 0; i < ind.count; ++i) {
      int64_t idx = ReadInt64(ind, i);
      if (idx < -n || idx >= n) {
        return InvalidArgumentError("index " + std::to_string(idx) + " is out of range");
      }
      if (idx < 0) idx += n;
      int64_t off = 0;
      for (size_t d = 0; d < rank; ++d) {
        if (d != axis && counter[d] >= data.shape[d]) {
          return InvalidArgumentError("indices are larger than data outside the axis");
        }
        off += (d == axis ? idx : counter[d]) * stride[d];
      }
      CopyElements(data, off, out, i, 1);
      for (size_t d = rank; d-- > 0;) {
        if (++counter[d] < ind.shape[d]) break;
        counter[d] = 0;
      }
    }
    return Status();
  }

 private:
  int64_t axis_;
};

Result<std::unique_ptr<Kernel>> MakeGatherElements(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 0));
  return std::unique_ptr<Kernel>(new GatherElementsKernel(axis));
}

// ---- Tile ----

Status InferTile(InferContext& ctx) {
  const TensorRef* reps = ctx.input_value(1);
  if (reps == nullptr) return ctx.Defer();
  OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> r, ReadInts(*reps));
  const Shape& in = ctx.input_shape(0);
  if (r.size() != in.size()) {
    return InvalidArgumentError("repeats has " + std::to_string(r.size()) + " entries for rank " +
                                std::to_string(in.size()));
  }
  Shape out(in.size());
  for (size_t d = 0; d < in.size(); ++d) {
    if (r[d] < 0) return InvalidArgumentError("a repeat is negative");
    if (r[d] != 0 && in[d] > std::numeric_limits<int64_t>::max() / r[d]) {
      return InvalidArgumentError("the tiled shape is too large");
    }
    out[d] = in[d] * r[d];
  }
  OUTPOST_RETURN_IF_ERROR(CheckedElements(out).status());
  ctx.SetOutput(0, ctx.input_type(0), std::move(out));
  return Status();
}

Status ComputeTile(ComputeContext& ctx) {
  const TensorRef& in = ctx.input(0);
  const TensorRef& out = ctx.output(0);
  const size_t rank = in.rank();
  if (out.count == 0) return Status();
  if (rank == 0) {
    CopyElements(in, 0, out, 0, 1);
    return Status();
  }
  std::array<int64_t, kMaxRank> stride{};
  int64_t s = 1;
  for (size_t d = rank; d-- > 0;) {
    stride[d] = s;
    s *= in.shape[d];
  }
  std::array<int64_t, kMaxRank> counter{};
  for (int64_t o = 0; o < out.count; ++o) {
    int64_t off = 0;
    for (size_t d = 0; d < rank; ++d) off += (counter[d] % in.shape[d]) * stride[d];
    CopyElements(in, off, out, o, 1);
    for (size_t d = rank; d-- > 0;) {
      if (++counter[d] < out.shape[d]) break;
      counter[d] = 0;
    }
  }
  return Status();
}

Result<std::unique_ptr<Kernel>> MakeTile(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  return std::unique_ptr<Kernel>(new FunctionKernel(&InferTile, &ComputeTile));
}

// ---- OneHot ----

class OneHotKernel : public Kernel {
 public:
  explicit OneHotKernel(int64_t axis) : axis_(axis) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(0), kNumericTypes, "indices"));
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(1), kNumericTypes, "depth"));
    if (NumElements(ctx.input_shape(1)) != 1) return InvalidArgumentError("depth must be a scalar");
    if (NumElements(ctx.input_shape(2)) != 2) {
      return InvalidArgumentError("values must have two elements");
    }
    const TensorRef* dv = ctx.input_value(1);
    if (dv == nullptr) return ctx.Defer();
    const double depth_d = ReadDouble(*dv, 0);
    if (!(depth_d >= 1 && depth_d < 1e12)) return InvalidArgumentError("depth is out of range");
    const auto depth = static_cast<int64_t>(depth_d);
    const Shape& in = ctx.input_shape(0);
    const auto rank = static_cast<int64_t>(in.size()) + 1;
    OUTPOST_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(axis_, rank));
    Shape out(in.begin(), in.end());
    out.insert(out.begin() + axis, depth);
    OUTPOST_RETURN_IF_ERROR(CheckedElements(out).status());
    ctx.SetOutput(0, ctx.input_type(2), std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& ind = ctx.input(0);
    const TensorRef& values = ctx.input(2);
    const TensorRef& out = ctx.output(0);
    const auto rank = static_cast<int64_t>(out.rank());
    const auto axis = static_cast<size_t>(axis_ < 0 ? axis_ + rank : axis_);
    const int64_t depth = out.shape[axis];
    const int64_t outer = DimProduct(out.shape, 0, axis);
    const int64_t inner = DimProduct(out.shape, axis + 1, out.rank());
    return Dispatch<kNumericTypes | TypeBit(DataType::kBool)>(out.type, [&](auto tag) {
      using T = decltype(tag);
      const T off = values.get<T>()[0];
      const T on = values.get<T>()[1];
      T* y = out.mut<T>();
      std::fill_n(y, out.count, off);
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          const double v = ReadDouble(ind, o * inner + i);
          if (!(v >= static_cast<double>(-depth) && v < static_cast<double>(depth))) continue;
          auto k = static_cast<int64_t>(v);
          if (k < 0) k += depth;
          y[(o * depth + k) * inner + i] = on;
        }
      }
      return Status();
    });
  }

 private:
  int64_t axis_;
};

Result<std::unique_ptr<Kernel>> MakeOneHot(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(3, 3));
  OUTPOST_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", -1));
  return std::unique_ptr<Kernel>(new OneHotKernel(axis));
}

// ---- Trilu ----

class TriluKernel : public Kernel {
 public:
  explicit TriluKernel(bool upper) : upper_(upper) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_shape(0).size() < 2) return InvalidArgumentError("input rank must be >= 2");
    if (ctx.has_input(1)) {
      OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(1), kIndexTypes, "k"));
      if (NumElements(ctx.input_shape(1)) != 1) return InvalidArgumentError("k must be a scalar");
    }
    ctx.SetOutput(0, ctx.input_type(0), ctx.input_shape(0));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& in = ctx.input(0);
    const TensorRef& out = ctx.output(0);
    const int64_t k = ctx.has_input(1) ? ReadInt64(ctx.input(1), 0) : 0;
    const int64_t rows = in.shape[in.rank() - 2];
    const int64_t cols = in.shape[in.rank() - 1];
    const int64_t mats = rows * cols == 0 ? 0 : in.count / (rows * cols);
    return Dispatch<kNumericTypes | TypeBit(DataType::kBool)>(in.type, [&](auto tag) {
      using T = decltype(tag);
      const T* x = in.get<T>();
      T* y = out.mut<T>();
      for (int64_t m = 0; m < mats; ++m) {
        for (int64_t i = 0; i < rows; ++i) {
          for (int64_t j = 0; j < cols; ++j) {
            const int64_t idx = (m * rows + i) * cols + j;
            // j - i compared with k, written to avoid overflow for extreme k.
            const bool keep = upper_ ? (j - i >= k) : (j - i <= k);
            y[idx] = keep ? x[idx] : T{};
          }
        }
      }
      return Status();
    });
  }

 private:
  bool upper_;
};

Result<std::unique_ptr<Kernel>> MakeTrilu(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 2));
  OUTPOST_ASSIGN_OR_RETURN(int64_t upper, ctx.Int("upper", 1));
  return std::unique_ptr<Kernel>(new TriluKernel(upper != 0));
}

// ---- Cast, CastLike ----

template <typename T>
std::string FormatNumber(T v) {
  char buf[64];
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "1" : "0";
  } else if constexpr (kIsFloat<T>) {
    using C = MathT<T>;
    const C c = static_cast<C>(v);
    if (std::isnan(c)) return "NaN";
    if (std::isinf(c)) return c > 0 ? "INF" : "-INF";
    auto r = std::to_chars(buf, buf + sizeof(buf), c);
    return std::string(buf, r.ptr);
  } else {
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    return std::string(buf, r.ptr);
  }
}

template <typename T>
T ParseNumber(const std::string& s) {
  if constexpr (std::is_same_v<T, bool>) {
    return std::strtod(s.c_str(), nullptr) != 0;
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    return static_cast<T>(std::strtoll(s.c_str(), nullptr, 10));
  } else if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(std::strtoull(s.c_str(), nullptr, 10));
  } else {
    // strtod reads "NaN", "INF", "-INF" and "inf" as well.
    return static_cast<T>(static_cast<MathT<T>>(std::strtod(s.c_str(), nullptr)));
  }
}

template <typename From, typename To>
To ConvertOne(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return static_cast<MathT<From>>(v) != 0;
  } else if constexpr (std::is_integral_v<To> && kIsFloat<From>) {
    return CastFromDouble<To>(static_cast<double>(static_cast<MathT<From>>(v)));
  } else if constexpr (std::is_integral_v<To>) {
    return static_cast<To>(v);
  } else {
    return static_cast<To>(static_cast<MathT<To>>(static_cast<MathT<From>>(v)));
  }
}

inline constexpr uint32_t kCastTypes = kNumericTypes | TypeBit(DataType::kBool);

Status CastTensor(const TensorRef& in, const TensorRef& out) {
  if (in.type == out.type) {
    CopyTensor(in, out);
    return Status();
  }
  if (in.type == DataType::kBytes) {
    return Dispatch<kCastTypes>(out.type, [&](auto tag) {
      using To = decltype(tag);
      To* y = out.mut<To>();
      for (int64_t i = 0; i < in.count; ++i) y[i] = ParseNumber<To>(in.strings[i]);
      return Status();
    });
  }
  if (out.type == DataType::kBytes) {
    return Dispatch<kCastTypes>(in.type, [&](auto tag) {
      using From = decltype(tag);
      const From* x = in.get<From>();
      for (int64_t i = 0; i < in.count; ++i) out.strings[i] = FormatNumber(x[i]);
      return Status();
    });
  }
  return Dispatch<kCastTypes>(in.type, [&](auto from_tag) {
    using From = decltype(from_tag);
    return Dispatch<kCastTypes>(out.type, [&](auto to_tag) {
      using To = decltype(to_tag);
      const From* x = in.get<From>();
      To* y = out.mut<To>();
      for (int64_t i = 0; i < in.count; ++i) y[i] = ConvertOne<From, To>(x[i]);
      return Status();
    });
  });
}

class CastKernel : public Kernel {
 public:
  // like: CastLike (the target type is input 1's).
  CastKernel(DataType to, bool like) : to_(to), like_(like) {}

  Status Infer(InferContext& ctx) const override {
    ctx.SetOutput(0, like_ ? ctx.input_type(1) : to_, ctx.input_shape(0));
    return Status();
  }
  Status Compute(ComputeContext& ctx) const override {
    return CastTensor(ctx.input(0), ctx.output(0));
  }

 private:
  DataType to_;
  bool like_;
};

Result<DataType> OnnxTypeToDataType(int64_t t) {
  switch (t) {
    case 1: return DataType::kFp32;
    case 2: return DataType::kUint8;
    case 3: return DataType::kInt8;
    case 4: return DataType::kUint16;
    case 5: return DataType::kInt16;
    case 6: return DataType::kInt32;
    case 7: return DataType::kInt64;
    case 8: return DataType::kBytes;
    case 9: return DataType::kBool;
    case 10: return DataType::kFp16;
    case 11: return DataType::kFp64;
    case 12: return DataType::kUint32;
    case 13: return DataType::kUint64;
    case 16: return DataType::kBf16;
    default: return InvalidArgumentError("unsupported target type " + std::to_string(t));
  }
}

Result<std::unique_ptr<Kernel>> MakeCast(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  if (!ctx.Has("to")) return InvalidArgumentError("attribute to is required");
  OUTPOST_ASSIGN_OR_RETURN(int64_t to, ctx.Int("to", 0));
  OUTPOST_ASSIGN_OR_RETURN(DataType type, OnnxTypeToDataType(to));
  return std::unique_ptr<Kernel>(new CastKernel(type, false));
}

Result<std::unique_ptr<Kernel>> MakeCastLike(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  return std::unique_ptr<Kernel>(new CastKernel(DataType::kFp32, true));
}

}  // namespace

Result<DataType> DataTypeFromOnnx(int64_t onnx_type) { return OnnxTypeToDataType(onnx_type); }

void RegisterTensorKernels(KernelRegistry& r) {
  r.Add({"", "Concat", 4, 1000, &MakeConcat});
  r.Add({"", "Split", 2, 1000, &MakeSplit});
  r.Add({"", "Slice", 1, 1000, &MakeSlice});
  r.Add({"", "Gather", 1, 1000, &MakeGather});
  r.Add({"", "GatherElements", 11, 1000, &MakeGatherElements});
  r.Add({"", "Tile", 6, 1000, &MakeTile});
  r.Add({"", "OneHot", 9, 1000, &MakeOneHot});
  r.Add({"", "Trilu", 14, 1000, &MakeTrilu});
  r.Add({"", "Cast", 6, 1000, &MakeCast});
  r.Add({"", "CastLike", 15, 1000, &MakeCastLike});
}

}  // namespace outpost::engine::onnx
