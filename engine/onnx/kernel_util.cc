#include "engine/onnx/kernel_util.h"

#include <algorithm>
#include <cstring>

namespace outpost::engine::onnx {

Status UnsupportedType(DataType t) {
  return UnimplementedError("element type " + std::string(DataTypeName(t)) +
                            " is not supported by this operator");
}

Status CheckType(DataType t, uint32_t set, const char* what) {
  if ((set & TypeBit(t)) != 0) return Status();
  return InvalidArgumentError(std::string(what) + " has element type " +
                              std::string(DataTypeName(t)) +
                              ", which this operator does not take");
}

double ReadDouble(const TensorRef& t, int64_t i) {
  double out = 0;
  Dispatch<kNumericTypes | TypeBit(DataType::kBool)>(t.type, [&](auto tag) {
    using T = decltype(tag);
    out = static_cast<double>(static_cast<MathT<T>>(t.get<T>()[i]));
    return Status();
  }).IgnoreError();
  return out;
}

int64_t ReadInt64(const TensorRef& t, int64_t i) {
  switch (t.type) {
    case DataType::kInt64: return t.get<int64_t>()[i];
    case DataType::kInt32: return t.get<int32_t>()[i];
    default: {
      const double d = ReadDouble(t, i);
      if (!(d >= -9.2e18 && d <= 9.2e18)) return 0;
      return static_cast<int64_t>(d);
    }
  }
}

Result<std::vector<int64_t>> ReadInts(const TensorRef& t) {
  if (t.type != DataType::kInt64 && t.type != DataType::kInt32) {
    return InvalidArgumentError("expected an INT64 tensor, got " +
                                std::string(DataTypeName(t.type)));
  }
  std::vector<int64_t> out(static_cast<size_t>(t.count));
  for (int64_t i = 0; i < t.count; ++i) out[static_cast<size_t>(i)] = ReadInt64(t, i);
  return out;
}

Result<Shape> BroadcastShapes(std::span<const int64_t> a, std::span<const int64_t> b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da == db || db == 1) {
      out[i] = da;
    } else if (da == 1) {
      out[i] = db;
    } else {
      return InvalidArgumentError("shapes " + ShapeToString(a) + " and " + ShapeToString(b) +
                                  " cannot be broadcast");
    }
  }
  return out;
}

int64_t NumElements(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Result<int64_t> CheckedElements(std::span<const int64_t> shape) { return ElementCount(shape); }

Result<int64_t> NormalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) {
    return InvalidArgumentError("axis " + std::to_string(axis) + " is out of range for rank " +
                                std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

int64_t DimProduct(std::span<const int64_t> shape, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end && i < shape.size(); ++i) n *= shape[i];
  return n;
}

void CopyTensor(const TensorRef& from, const TensorRef& to) {
  if (from.type == DataType::kBytes) {
    for (int64_t i = 0; i < from.count; ++i) to.strings[i] = from.strings[i];
    return;
  }
  if (from.data == to.data) return;
  const size_t bytes = static_cast<size_t>(from.count) * ElementSize(from.type);
  if (bytes > 0) std::memmove(to.data, from.data, bytes);
}

}  // namespace outpost::engine::onnx
