#include "engine/tensor.h"

#include <array>
#include <utility>

namespace outpost::engine {
namespace {

struct TypeInfo {
  DataType type;
  std::string_view name;
  size_t size;
};

constexpr std::array<TypeInfo, 14> kTypes = {{
    {DataType::kBool, "BOOL", 1},
    {DataType::kUint8, "UINT8", 1},
    {DataType::kUint16, "UINT16", 2},
    {DataType::kUint32, "UINT32", 4},
    {DataType::kUint64, "UINT64", 8},
    {DataType::kInt8, "INT8", 1},
    {DataType::kInt16, "INT16", 2},
    {DataType::kInt32, "INT32", 4},
    {DataType::kInt64, "INT64", 8},
    {DataType::kFp16, "FP16", 2},
    {DataType::kBf16, "BF16", 2},
    {DataType::kFp32, "FP32", 4},
    {DataType::kFp64, "FP64", 8},
    {DataType::kBytes, "BYTES", 0},
}};

}  // namespace

std::string_view DataTypeName(DataType type) { return kTypes[static_cast<size_t>(type)].name; }

Result<DataType> ParseDataType(std::string_view name) {
  for (const TypeInfo& t : kTypes) {
    if (t.name == name) return t.type;
  }
  return InvalidArgumentError("unknown datatype \"" + std::string(name) + "\"");
}

size_t ElementSize(DataType type) { return kTypes[static_cast<size_t>(type)].size; }

Result<int64_t> ElementCount(std::span<const int64_t> shape) {
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgumentError("shape " + ShapeToString(shape) + " has a negative dimension");
    if (d != 0 && count > INT64_MAX / d) {
      return InvalidArgumentError("shape " + ShapeToString(shape) + " has too many elements");
    }
    count *= d;
  }
  return count;
}

std::string ShapeToString(std::span<const int64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  out += "]";
  return out;
}

Tensor::Tensor(DataType type, Shape shape) : type_(type), shape_(std::move(shape)) {
  count_ = 1;
  for (int64_t d : shape_) count_ *= d;
  if (type_ == DataType::kBytes) {
    strings_.resize(static_cast<size_t>(count_));
  } else {
    bytes_.resize(static_cast<size_t>(count_) * ElementSize(type_));
  }
}

Status CheckShape(const TensorSpec& spec, std::span<const int64_t> shape) {
  bool fits = shape.size() == spec.shape.size();
  for (size_t i = 0; fits && i < shape.size(); ++i) {
    fits = spec.shape[i] == -1 || spec.shape[i] == shape[i];
  }
  if (fits) return Status();
  return InvalidArgumentError("input \"" + spec.name + "\" has shape " + ShapeToString(shape) +
                              " but the model expects " + ShapeToString(spec.shape));
}

}  // namespace outpost::engine
