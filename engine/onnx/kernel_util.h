// Helpers shared by the kernel files: element-type dispatch, broadcasting, axes.
// Internal to engine/onnx/.
#ifndef OUTPOST_ENGINE_ONNX_KERNEL_UTIL_H_
#define OUTPOST_ENGINE_ONNX_KERNEL_UTIL_H_

#include <array>
#include <limits>
#include <type_traits>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/onnx/float16.h"
#include "engine/onnx/kernel.h"
#include "engine/tensor.h"

namespace outpost::engine::onnx {

// Most dimensions a kernel handles (the importer limits ranks as well).
inline constexpr size_t kMaxRank = 32;

// ---- element-type sets and dispatch ----

constexpr uint32_t TypeBit(DataType t) { return uint32_t{1} << static_cast<uint32_t>(t); }

inline constexpr uint32_t kFloatTypes = TypeBit(DataType::kFp32) | TypeBit(DataType::kFp64) |
                                        TypeBit(DataType::kFp16) | TypeBit(DataType::kBf16);
inline constexpr uint32_t kSignedIntTypes = TypeBit(DataType::kInt8) |
                                            TypeBit(DataType::kInt16) |
                                            TypeBit(DataType::kInt32) | TypeBit(DataType::kInt64);
inline constexpr uint32_t kUnsignedIntTypes =
    TypeBit(DataType::kUint8) | TypeBit(DataType::kUint16) | TypeBit(DataType::kUint32) |
    TypeBit(DataType::kUint64);
inline constexpr uint32_t kIntTypes = kSignedIntTypes | kUnsignedIntTypes;
inline constexpr uint32_t kNumericTypes = kFloatTypes | kIntTypes;
inline constexpr uint32_t kSignedNumericTypes = kFloatTypes | kSignedIntTypes;
inline constexpr uint32_t kAllTypes =
    kNumericTypes | TypeBit(DataType::kBool) | TypeBit(DataType::kBytes);
inline constexpr uint32_t kIndexTypes = TypeBit(DataType::kInt32) | TypeBit(DataType::kInt64);

Status UnsupportedType(DataType t);
// InvalidArgument unless `t` is in `set`: "input 0 has element type INT8, which Foo does not
// take".
Status CheckType(DataType t, uint32_t set, const char* what);

// Calls fn(T{}) with T the C++ element type of `t` (bool for BOOL, Half, BFloat16), for the
// types in kSet; UnsupportedType otherwise. fn returns Status.
template <uint32_t kSet, typename Fn>
Status Dispatch(DataType t, Fn&& fn) {
  switch (t) {
#define OUTPOST_ONNX_CASE_(dt, T)                                     \
  case DataType::dt:                                                  \
    if constexpr ((kSet & TypeBit(DataType::dt)) != 0) return fn(T{}); \
    break;
    OUTPOST_ONNX_CASE_(kFp32, float)
    OUTPOST_ONNX_CASE_(kFp64, double)
    OUTPOST_ONNX_CASE_(kFp16, Half)
    OUTPOST_ONNX_CASE_(kBf16, BFloat16)
    OUTPOST_ONNX_CASE_(kInt8, int8_t)
    OUTPOST_ONNX_CASE_(kInt16, int16_t)
    OUTPOST_ONNX_CASE_(kInt32, int32_t)
    OUTPOST_ONNX_CASE_(kInt64, int64_t)
    OUTPOST_ONNX_CASE_(kUint8, uint8_t)
    OUTPOST_ONNX_CASE_(kUint16, uint16_t)
    OUTPOST_ONNX_CASE_(kUint32, uint32_t)
    OUTPOST_ONNX_CASE_(kUint64, uint64_t)
    OUTPOST_ONNX_CASE_(kBool, bool)
#undef OUTPOST_ONNX_CASE_
    case DataType::kBytes:
      break;
  }
  return UnsupportedType(t);
}

template <typename T>
inline constexpr bool kIsFloat = std::is_floating_point_v<T> || std::is_same_v<T, Half> ||
                                 std::is_same_v<T, BFloat16>;

// The arithmetic type used for T: float for the 16-bit floats, T otherwise.
template <typename T>
using MathT = std::conditional_t<std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>,
                                   float, T>;

// ---- arithmetic without undefined behaviour ----

// Integer +, -, * wrap modulo 2^bits (as ONNX Runtime's do in practice); floats are plain.
template <typename T>
T WrapAdd(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  } else {
    return a + b;
  }
}
template <typename T>
T WrapSub(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
  } else {
    return a - b;
  }
}
template <typename T>
T WrapMul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  } else {
    return a * b;
  }
}

// v < 0, without a "comparison is always false" warning for unsigned types.
template <typename C>
bool IsNeg(C v) {
  if constexpr (std::is_unsigned_v<C> || std::is_same_v<C, bool>) {
    return false;
  } else {
    return v < C(0);
  }
}

// NaN test that compiles (to false) for integer types.
template <typename C>
bool IsNaNValue(C v) {
  if constexpr (std::is_floating_point_v<C>) {
    return v != v;
  } else {
    return false;
  }
}

// double -> T with saturation for integers (NaN becomes 0) and plain rounding for floats.
template <typename T>
T CastFromDouble(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_integral_v<T>) {
    if (!(v == v)) return 0;
    if (v <= static_cast<double>(std::numeric_limits<T>::min())) {
      return std::numeric_limits<T>::min();
    }
    // 2^bits as a double is exact; anything at or above it saturates.
    constexpr double kLimit =
        static_cast<double>(std::numeric_limits<T>::max() / 2 + 1) * 2.0;
    if (v >= kLimit) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return static_cast<T>(static_cast<MathT<T>>(v));
  }
}

// ---- numeric reading ----

// Element i of a numeric tensor as double / as int64 (truncating).
double ReadDouble(const TensorRef& t, int64_t i);
int64_t ReadInt64(const TensorRef& t, int64_t i);
// All elements of an INT32/INT64 tensor.
Result<std::vector<int64_t>> ReadInts(const TensorRef& t);

// ---- shapes and axes ----

// Multidirectional (numpy) broadcasting. InvalidArgument when incompatible.
Result<Shape> BroadcastShapes(std::span<const int64_t> a, std::span<const int64_t> b);
// Element count of a shape known to be valid (no overflow check).
int64_t NumElements(std::span<const int64_t> shape);
// Checked element count: InvalidArgument on a negative dimension or overflow.
Result<int64_t> CheckedElements(std::span<const int64_t> shape);
// Maps axis in [-rank, rank) to [0, rank). InvalidArgument otherwise.
Result<int64_t> NormalizeAxis(int64_t axis, int64_t rank);
// Product of dims [begin, end).
int64_t DimProduct(std::span<const int64_t> shape, size_t begin, size_t end);

// Iterates over every element of `out_shape`, with N input shapes broadcast to it, calling
// fn(out_offset, in_offsets, n, in_steps) for runs of n contiguous output elements; within a
// run input k advances by in_steps[k] (0 or 1). Preconditions: the shapes broadcast to
// out_shape; rank <= kMaxRank.
template <size_t N, typename Fn>
void ForEachBroadcast(std::span<const int64_t> out_shape,
                      const std::array<std::span<const int64_t>, N>& in_shapes, Fn&& fn) {
  const size_t rank = out_shape.size();
  std::array<int64_t, kMaxRank> size{};
  std::array<std::array<int64_t, kMaxRank>, N> stride{};
  size_t dims = 0;
  int64_t total = 1;
  for (int64_t d : out_shape) total *= d;
  if (total == 0) return;
  // Collapse from the innermost dimension outwards.
  std::array<int64_t, N> running;
  running.fill(1);
  for (size_t i = rank; i-- > 0;) {
    const int64_t od = out_shape[i];
    std::array<int64_t, N> st;
    for (size_t k = 0; k < N; ++k) {
      const auto& s = in_shapes[k];
      const size_t off = rank - s.size();
      const int64_t id = i >= off ? s[i - off] : 1;
      st[k] = id == 1 ? 0 : running[k];
      running[k] *= id;
    }
    if (od == 1) continue;
    bool merge = dims > 0;
    for (size_t k = 0; merge && k < N; ++k) {
      merge = st[k] == stride[k][dims - 1] * size[dims - 1];
    }
    if (merge) {
      size[dims - 1] *= od;
    } else {
      size[dims] = od;
      for (size_t k = 0; k < N; ++k) stride[k][dims] = st[k];
      ++dims;
    }
  }
  // dims are stored innermost first.
  std::array<int64_t, N> zero{};
  if (dims == 0) {
    fn(int64_t{0}, zero, int64_t{1}, zero);
    return;
  }
  const int64_t inner = size[0];
  std::array<int64_t, N> steps;
  for (size_t k = 0; k < N; ++k) steps[k] = stride[k][0];
  std::array<int64_t, kMaxRank> counter{};
  std::array<int64_t, N> offs{};
  int64_t out_off = 0;
  const int64_t outer = total / inner;
  for (int64_t o = 0; o < outer; ++o) {
    fn(out_off, offs, inner, steps);
    out_off += inner;
    for (size_t d = 1; d < dims; ++d) {
      if (++counter[d] < size[d]) {
        for (size_t k = 0; k < N; ++k) offs[k] += stride[k][d];
        break;
      }
      counter[d] = 0;
      for (size_t k = 0; k < N; ++k) offs[k] -= stride[k][d] * (size[d] - 1);
    }
  }
}

// A kernel built from two functions, for operators with no attributes worth a class.
class FunctionKernel : public Kernel {
 public:
  using InferFn = Status (*)(InferContext&);
  using ComputeFn = Status (*)(ComputeContext&);
  FunctionKernel(InferFn infer, ComputeFn compute) : infer_(infer), compute_(compute) {}
  Status Infer(InferContext& ctx) const override { return infer_(ctx); }
  Status Compute(ComputeContext& ctx) const override { return compute_(ctx); }

 private:
  InferFn infer_;
  ComputeFn compute_;
};

// The element type of an ONNX TensorProto.DataType number (Cast's `to`).
Result<DataType> DataTypeFromOnnx(int64_t onnx_type);

// Copies a whole tensor (numeric bytes or strings) into an output of the same type and size.
void CopyTensor(const TensorRef& from, const TensorRef& to);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_KERNEL_UTIL_H_
