// Tensors and signatures: the data that flows through every model backend.
//
// A Tensor is a dense row-major array that owns its bytes. Numeric and BOOL elements are
// stored at their natural size in little-endian order (the only order Outpost builds for);
// BYTES elements are stored as separate strings. Names and datatype strings are those of
// the Open Inference Protocol ("FP32", "INT64", "BYTES", ...).
#ifndef OUTPOST_ENGINE_TENSOR_H_
#define OUTPOST_ENGINE_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace outpost::engine {

enum class DataType : uint8_t {
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kBf16,
  kFp32,
  kFp64,
  kBytes,
};

// The protocol's name: "BOOL", "UINT8", ..., "FP32", "BYTES".
std::string_view DataTypeName(DataType type);
// Parses a protocol name. InvalidArgument for anything else (names are case-sensitive).
Result<DataType> ParseDataType(std::string_view name);
// Bytes per element; 0 for BYTES (variable).
size_t ElementSize(DataType type);

// Shapes: dimensions >= 0 in tensors; -1 in signatures means "any size".
using Shape = std::vector<int64_t>;

// Number of elements of a concrete shape; InvalidArgument when a dimension is negative or
// the product overflows int64.
Result<int64_t> ElementCount(std::span<const int64_t> shape);
// "[-1, 4]".
std::string ShapeToString(std::span<const int64_t> shape);

class Tensor {
 public:
  Tensor() = default;
  // A zero-filled tensor (empty strings for BYTES). Preconditions: shape is concrete and its
  // element count was checked (ElementCount) by the caller.
  Tensor(DataType type, Shape shape);

  DataType type() const { return type_; }
  const Shape& shape() const { return shape_; }
  int64_t element_count() const { return count_; }
  // Size of the numeric payload in bytes (0 for BYTES).
  size_t byte_size() const { return bytes_.size(); }

  // Raw element bytes. Preconditions: type() != kBytes.
  std::byte* data() { return bytes_.data(); }
  const std::byte* data() const { return bytes_.data(); }
  // Typed views. Preconditions: sizeof(T) == ElementSize(type()) and type() != kBytes.
  template <typename T>
  std::span<T> values() {
    return {reinterpret_cast<T*>(bytes_.data()), static_cast<size_t>(count_)};
  }
  template <typename T>
  std::span<const T> values() const {
    return {reinterpret_cast<const T*>(bytes_.data()), static_cast<size_t>(count_)};
  }
  // BYTES elements. Preconditions: type() == kBytes.
  std::vector<std::string>& strings() { return strings_; }
  const std::vector<std::string>& strings() const { return strings_; }

  // Reshapes without touching data. Preconditions: same element count.
  void Reshape(Shape shape) { shape_ = std::move(shape); }

 private:
  DataType type_ = DataType::kFp32;
  Shape shape_;
  int64_t count_ = 0;
  // 8-byte aligned storage for numeric elements.
  std::vector<std::byte, std::allocator<std::byte>> bytes_;
  std::vector<std::string> strings_;
};

// A tensor's declared name, datatype and shape (-1 = variable dimension).
struct TensorSpec {
  std::string name;
  DataType type = DataType::kFp32;
  Shape shape;
};

// A model's inputs and outputs, in the order Model::Run takes and returns them.
struct Signature {
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

// Whether a concrete shape fits a declared one (same rank; equal dimensions where declared
// is not -1). Returns InvalidArgument naming the tensor and both shapes otherwise.
Status CheckShape(const TensorSpec& spec, std::span<const int64_t> shape);

}  // namespace outpost::engine

#endif  // OUTPOST_ENGINE_TENSOR_H_
