// The infer call's JSON bodies, read through the JSON adapter (base/json/json.h) and written
// with base/json_writer.h. Tensor data is read with the adapter's bulk leaf readers, so an
// element costs no call of its own.
#include "serve/infer_json.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>

#include "base/coding.h"
#include "base/json/json.h"
#include "base/json_writer.h"

namespace outpost::serve {
namespace {

using engine::DataType;
using engine::Tensor;

static_assert(kJsonPadding >= json::kPadding);

// A parser keeps its buffers between requests; one that grew past this for a large body is
// dropped afterwards so that an idle thread does not keep the memory.
constexpr size_t kKeepParserCapacity = 1 << 20;
constexpr size_t kInitialParserCapacity = 64 << 10;
// Names quoted in error messages are cut to this many bytes.
constexpr size_t kMaxQuotedName = 128;

// The calling thread's parser and the depth limit it was made for.
struct ThreadParserSlot {
  std::unique_ptr<json::Parser> parser;
  size_t max_depth = 0;
};
ThreadParserSlot& ThreadSlot() {
  thread_local ThreadParserSlot slot;
  return slot;
}

// The calling thread's parser, made for documents nesting at most `max_depth` deep; null with
// `status` set when it cannot be allocated.
json::Parser* ThreadParser(size_t max_depth, Status& status) {
  ThreadParserSlot& slot = ThreadSlot();
  if (slot.parser == nullptr || slot.max_depth != max_depth) {
    slot.parser = std::make_unique<json::Parser>(json::ParserLimits{.max_depth = max_depth});
    if (!slot.parser->Reserve(kInitialParserCapacity).ok()) {
      slot.parser.reset();
      status = ResourceExhaustedError("cannot allocate the JSON parser");
      return nullptr;
    }
    slot.max_depth = max_depth;
  }
  return slot.parser.get();
}

std::string Quote(std::string_view s) {
  std::string out;
  out.reserve(std::min(s.size(), kMaxQuotedName) + 5);
  out.push_back('"');
  if (s.size() > kMaxQuotedName) {
    out.append(s.substr(0, kMaxQuotedName));
    out.append("...");
  } else {
    out.append(s);
  }
  out.push_back('"');
  return out;
}

std::string_view JsonTypeName(json::Type type) { return json::TypeName(type); }

std::string_view ExpectedKind(DataType type) {
  switch (type) {
    case DataType::kBool:
      return "a boolean";
    case DataType::kFp32:
    case DataType::kFp64:
      return "a number";
    case DataType::kBytes:
      return "a string";
    default:
      return "an integer";
  }
}

Status CountMismatch(std::string_view input, const engine::Shape& shape, int64_t expected,
                     json::Value data) {
  return InvalidArgumentError("input " + Quote(input) +
                              ": shape does not match true shape of \"data\": shape " +
                              engine::ShapeToString(shape) + " has " + std::to_string(expected) +
                              " elements but \"data\" has " + std::to_string(json::CountLeaves(data)));
}

// Reads the leaves of `data` into `values` (typed for the tensor's datatype).
template <typename T>
json::LeafRead ReadInto(json::Value data, std::span<T> values) {
  return json::ReadLeaves<T>(data, values);
}

// Fills `tensor` (allocated for its shape) from the leaves of `data`.
Status FillTensor(std::string_view input, json::Value data, Tensor& tensor) {
  const int64_t count = tensor.element_count();
  const DataType type = tensor.type();
  json::LeafRead read;
  switch (type) {
    case DataType::kBool:
      read = json::ReadBoolLeaves(data, tensor.values<uint8_t>());
      break;
    case DataType::kUint8:
      read = ReadInto(data, tensor.values<uint8_t>());
      break;
    case DataType::kUint16:
      read = ReadInto(data, tensor.values<uint16_t>());
      break;
    case DataType::kUint32:
      read = ReadInto(data, tensor.values<uint32_t>());
      break;
    case DataType::kUint64:
      read = ReadInto(data, tensor.values<uint64_t>());
      break;
    case DataType::kInt8:
      read = ReadInto(data, tensor.values<int8_t>());
      break;
    case DataType::kInt16:
      read = ReadInto(data, tensor.values<int16_t>());
      break;
    case DataType::kInt32:
      read = ReadInto(data, tensor.values<int32_t>());
      break;
    case DataType::kInt64:
      read = ReadInto(data, tensor.values<int64_t>());
      break;
    case DataType::kFp32:
      read = ReadInto(data, tensor.values<float>());
      break;
    case DataType::kFp64:
      read = ReadInto(data, tensor.values<double>());
      break;
    case DataType::kBytes:
      read = ReadInto(data, std::span<std::string>(tensor.strings()));
      break;
    case DataType::kFp16:
    case DataType::kBf16:
      return InternalError("FP16/BF16 reached the JSON tensor filler");
  }

  const std::string type_name(engine::DataTypeName(type));
  auto where = [&] {
    return "input " + Quote(input) + ": element " + std::to_string(read.count) + " of \"data\" ";
  };
  switch (read.error) {
    case json::LeafError::kType:
      return InvalidArgumentError(where() + "is " + std::string(JsonTypeName(read.bad.type())) +
                                  " but " + type_name + " needs " +
                                  std::string(ExpectedKind(type)));
    case json::LeafError::kNotInteger:
      return InvalidArgumentError(where() + "(" + read.bad.ToJson() + ") is not an integer; " +
                                  type_name + " needs an integer without fraction or exponent");
    case json::LeafError::kRange:
      return InvalidArgumentError(where() + "(" + read.bad.ToJson() + ") is out of range for " +
                                  type_name);
    case json::LeafError::kTooMany:
    case json::LeafError::kNone:
      break;
  }
  if (read.error == json::LeafError::kTooMany || read.count != static_cast<size_t>(count)) {
    return CountMismatch(input, tensor.shape(), count, data);
  }
  return Status();
}

Status ParseParameters(json::Value value, std::string_view where, Parameters& out) {
  if (!value.is_object()) {
    return InvalidArgumentError(std::string(where) + ": \"parameters\" must be an object");
  }
  out.clear();
  for (json::Member field : value.Members()) {
    Parameter p;
    p.name.assign(field.key);
    json::Value v = field.value;
    switch (v.type()) {
      case json::Type::kString:
        p.value = std::string(*v.GetString());
        break;
      case json::Type::kInt64:
        p.value = *v.GetInt64();
        break;
      case json::Type::kUint64:
        p.value = *v.GetUint64();
        break;
      case json::Type::kDouble:
        p.value = *v.GetDouble();
        break;
      case json::Type::kBool:
        p.value = *v.GetBool();
        break;
      default:
        return InvalidArgumentError(std::string(where) + ": parameter " + Quote(field.key) +
                                    " is " + std::string(JsonTypeName(v.type())) +
                                    "; parameters must be strings, numbers or booleans");
    }
    out.push_back(std::move(p));
  }
  return Status();
}

// Rejects parameters that ask for an extension Outpost does not offer, so that the client is
// told instead of getting a wrong answer.
Status RejectUnsupportedParameters(const Parameters& parameters, std::string_view where) {
  for (const Parameter& p : parameters) {
    if (p.name.starts_with("shared_memory_")) {
      return InvalidArgumentError(std::string(where) + ": shared memory is not supported");
    }
    if (p.name == "classification") {
      return InvalidArgumentError(std::string(where) + ": classification is not supported");
    }
  }
  return Status();
}

// Each field of an object may appear once; `seen` holds one bit per known key.
Status CheckOnce(unsigned& seen, unsigned bit, std::string_view key, std::string_view where) {
  if (seen & bit) {
    return InvalidArgumentError(std::string(where) + ": key " + Quote(key) + " appears twice");
  }
  seen |= bit;
  return Status();
}

Status ParseShape(json::Value value, std::string_view input, engine::Shape& shape) {
  if (!value.is_array()) {
    return InvalidArgumentError("input " + Quote(input) + ": \"shape\" must be an array");
  }
  shape.clear();
  shape.reserve(std::min(value.size(), kMaxShapeRank + 1));
  for (json::Value d : value.Items()) {
    if (shape.size() == kMaxShapeRank) {
      return InvalidArgumentError("input " + Quote(input) + ": \"shape\" has more than " +
                                  std::to_string(kMaxShapeRank) + " dimensions");
    }
    int64_t dim = 0;
    if (d.type() != json::Type::kInt64 || (dim = *d.GetInt64()) < 0) {
      return InvalidArgumentError("input " + Quote(input) +
                                  ": \"shape\" must hold non-negative integers");
    }
    shape.push_back(dim);
  }
  return Status();
}

struct ParseState {
  const InferJsonLimits& limits;
  size_t body_size;
  int64_t total_elements = 0;
  // The binary tensor data after the JSON, and how much of it inputs have taken so far.
  std::string_view binary{};
  size_t binary_used = 0;
};

const Parameter* FindParameter(const Parameters& parameters, std::string_view name) {
  for (const Parameter& p : parameters) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

// A boolean parameter's value; nullopt when absent.
Result<std::optional<bool>> BoolParameter(const Parameters& parameters, std::string_view name,
                                          std::string_view where) {
  const Parameter* p = FindParameter(parameters, name);
  if (p == nullptr) return std::optional<bool>();
  if (const bool* b = std::get_if<bool>(&p->value)) return std::optional<bool>(*b);
  return InvalidArgumentError(std::string(where) + ": parameter " + Quote(name) +
                              " must be true or false");
}

// Takes `size` bytes of binary tensor data for `input` (its shape and datatype already known)
// and fills `tensor` from them. Checks the size against the shape before allocating.
Status FillFromBinary(std::string_view input, DataType type, engine::Shape shape, int64_t count,
                      uint64_t size, ParseState& state, Tensor& tensor) {
  const auto where = [input] { return "input " + Quote(input); };
  const std::string_view rest = state.binary.substr(state.binary_used);
  if (size > rest.size()) {
    return InvalidArgumentError(where() + ": binary_data_size " + std::to_string(size) +
                                " runs past the end of the body (" + std::to_string(rest.size()) +
                                " bytes of binary data left)");
  }
  const std::string_view bytes = rest.substr(0, size);
  state.binary_used += size;
  if (type == DataType::kBytes) {
    // Each element is a 4-byte little-endian length and that many bytes.
    if (static_cast<uint64_t>(count) > size / 4) {
      return InvalidArgumentError(where() + ": " + std::to_string(size) +
                                  " bytes of binary data cannot hold the " + std::to_string(count) +
                                  " BYTES elements of shape " + engine::ShapeToString(shape));
    }
    tensor = Tensor(type, std::move(shape));
    size_t pos = 0;
    for (std::string& element : tensor.strings()) {
      if (bytes.size() - pos < 4) {
        return InvalidArgumentError(where() + ": binary data ends inside a BYTES element's length");
      }
      const uint32_t length = GetU32LE(bytes.data() + pos);
      pos += 4;
      if (length > bytes.size() - pos) {
        return InvalidArgumentError(where() + ": a BYTES element of " + std::to_string(length) +
                                    " bytes runs past its binary_data_size");
      }
      element.assign(bytes.data() + pos, length);
      pos += length;
    }
    if (pos != bytes.size()) {
      return InvalidArgumentError(where() + ": binary_data_size " + std::to_string(size) +
                                  " holds more than the " + std::to_string(count) +
                                  " BYTES elements of shape " + engine::ShapeToString(shape));
    }
    return Status();
  }
  const uint64_t expected = static_cast<uint64_t>(count) * engine::ElementSize(type);
  if (size != expected) {
    return InvalidArgumentError(where() + ": binary_data_size " + std::to_string(size) +
                                " does not match shape " + engine::ShapeToString(shape) + " of " +
                                std::string(engine::DataTypeName(type)) + ", which takes " +
                                std::to_string(expected) + " bytes");
  }
  tensor = Tensor(type, std::move(shape));
  if (size > 0) std::memcpy(tensor.data(), bytes.data(), size);
  if (type == DataType::kBool) {
    const auto values = tensor.values<uint8_t>();
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i] > 1) {
        return InvalidArgumentError(where() + ": BOOL element " + std::to_string(i) + " is byte " +
                                    std::to_string(values[i]) + "; it must be 0 or 1");
      }
    }
  }
  return Status();
}

Status ParseInput(json::Value value, size_t position, ParseState& state, InferInput& input) {
  const std::string where = "input " + std::to_string(position);
  if (!value.is_object()) {
    return InvalidArgumentError(where + " must be an object");
  }
  enum : unsigned { kName = 1, kShape = 2, kDatatype = 4, kParameters = 8, kData = 16 };
  unsigned seen = 0;
  json::Value shape_value, datatype_value, data_value;
  bool has_name = false;
  for (json::Member field : value.Members()) {
    std::string_view key = field.key;
    if (key == "name") {
      OUTPOST_RETURN_IF_ERROR(CheckOnce(seen, kName, key, where));
      Result<std::string_view> name = field.value.GetString();
      if (!name.ok()) return InvalidArgumentError(where + ": \"name\" must be a string");
      input.name.assign(*name);
      has_name = true;
    } else if (key == "shape") {
      OUTPOST_RETURN_IF_ERROR(CheckOnce(seen, kShape, key, where));
      shape_value = field.value;
    } else if (key == "datatype") {
      OUTPOST_RETURN_IF_ERROR(CheckOnce(seen, kDatatype, key, where));
      datatype_value = field.value;
    } else if (key == "parameters") {
      OUTPOST_RETURN_IF_ERROR(CheckOnce(seen, kParameters, key, where));
      OUTPOST_RETURN_IF_ERROR(ParseParameters(field.value, where, input.parameters));
    } else if (key == "data") {
      OUTPOST_RETURN_IF_ERROR(CheckOnce(seen, kData, key, where));
      data_value = field.value;
    }
  }
  if (!has_name) return InvalidArgumentError(where + " has no \"name\"");
  // From here on messages name the input; the text is made only for a refusal, so that an
  // accepted input costs no allocation for it.
  const auto named = [&input] { return "input " + Quote(input.name); };
  if (!input.parameters.empty()) {
    OUTPOST_RETURN_IF_ERROR(RejectUnsupportedParameters(input.parameters, named()));
  }
  if (!(seen & kDatatype)) return InvalidArgumentError(named() + " has no \"datatype\"");
  if (!(seen & kShape)) return InvalidArgumentError(named() + " has no \"shape\"");
  // Binary tensor data extension: the bytes follow the JSON instead of "data".
  std::optional<uint64_t> binary_size;
  if (const Parameter* p = FindParameter(input.parameters, "binary_data_size")) {
    const int64_t* size = std::get_if<int64_t>(&p->value);
    if (size == nullptr || *size < 0) {
      return InvalidArgumentError(named() + ": binary_data_size must be a non-negative integer");
    }
    if (seen & kData) {
      return InvalidArgumentError(named() + " has both \"data\" and binary_data_size");
    }
    binary_size = static_cast<uint64_t>(*size);
  } else if (!(seen & kData)) {
    return InvalidArgumentError(named() + " has no \"data\"");
  }

  if (!datatype_value.is_string()) {
    return InvalidArgumentError(named() + ": \"datatype\" must be a string");
  }
  const std::string_view datatype_name = *datatype_value.GetString();
  Result<DataType> type = engine::ParseDataType(datatype_name);
  if (!type.ok()) return type.status().WithContext(named());
  if (!binary_size && (*type == DataType::kFp16 || *type == DataType::kBf16)) {
    return InvalidArgumentError(named() + ": " + std::string(datatype_name) +
                                " cannot be carried in JSON; use binary tensor data");
  }

  engine::Shape shape;
  OUTPOST_RETURN_IF_ERROR(ParseShape(shape_value, input.name, shape));
  Result<int64_t> count = engine::ElementCount(shape);
  if (!count.ok()) return count.status().WithContext(named());

  state.total_elements += *count;
  if (state.total_elements > state.limits.max_total_elements) {
    return ResourceExhaustedError(
        named() + ": the request's inputs have " + std::to_string(state.total_elements) +
        " elements or more; the limit is " + std::to_string(state.limits.max_total_elements));
  }
  if (binary_size) {
    return FillFromBinary(input.name, *type, std::move(shape), *count, *binary_size, state,
                          input.tensor);
  }

  const json::Value data = data_value;
  if (!data.is_array()) return InvalidArgumentError(named() + ": \"data\" must be an array");
  // Every element takes at least one byte of the body, so a shape with more elements than
  // the body has bytes cannot match; say so before allocating for it.
  if (static_cast<uint64_t>(*count) > state.body_size) {
    return CountMismatch(input.name, shape, *count, data);
  }
  // A BYTES element costs a std::string (32 bytes) however short its JSON string is, so the
  // body bound above still lets a small body claim ~10x its size; count the strings that are
  // there first (a walk, no allocation) and allocate only for a shape they fill.
  if (*type == DataType::kBytes && static_cast<uint64_t>(*count) > json::CountLeaves(data)) {
    return CountMismatch(input.name, shape, *count, data);
  }
  input.tensor = Tensor(*type, std::move(shape));
  return FillTensor(input.name, data, input.tensor);
}

Status ParseRequestedOutput(json::Value value, size_t position, InferRequestedOutput& output) {
  std::string where = "requested output " + std::to_string(position);
  if (!value.is_object()) {
    return InvalidArgumentError(where + " must be an object");
  }
  enum : unsigned { kName = 1, kParameters = 2 };
  unsigned seen = 0;
  for (json::Member field : value.Members()) {
    if (field.key == "name") {
      OUTPOST_RETURN_IF_ERROR(CheckOnce(seen, kName, field.key, where));
      Result<std::string_view> name = field.value.GetString();
      if (!name.ok()) return InvalidArgumentError(where + ": \"name\" must be a string");
      output.name.assign(*name);
    } else if (field.key == "parameters") {
      OUTPOST_RETURN_IF_ERROR(CheckOnce(seen, kParameters, field.key, where));
      OUTPOST_RETURN_IF_ERROR(ParseParameters(field.value, where, output.parameters));
    }
  }
  if (!(seen & kName)) return InvalidArgumentError(where + " has no \"name\"");
  where = "requested output " + Quote(output.name);
  OUTPOST_RETURN_IF_ERROR(RejectUnsupportedParameters(output.parameters, where));
  OUTPOST_ASSIGN_OR_RETURN(output.binary_data,
                           BoolParameter(output.parameters, "binary_data", where));
  return Status();
}

Status ParseDocument(json::Value root, ParseState& state, InferRequest& request) {
  if (!root.is_object()) {
    return InvalidArgumentError("the request body must be a JSON object");
  }
  enum : unsigned { kId = 1, kParameters = 2, kInputs = 4, kOutputs = 8 };
  unsigned seen = 0;
  constexpr std::string_view kWhere = "request";
  for (json::Member field : root.Members()) {
    std::string_view key = field.key;
    if (key == "id") {
      OUTPOST_RETURN_IF_ERROR(CheckOnce(seen, kId, key, kWhere));
      Result<std::string_view> id = field.value.GetString();
      if (!id.ok()) return InvalidArgumentError("\"id\" must be a string");
      request.id.emplace(*id);
    } else if (key == "parameters") {
      OUTPOST_RETURN_IF_ERROR(CheckOnce(seen, kParameters, key, kWhere));
      OUTPOST_RETURN_IF_ERROR(ParseParameters(field.value, kWhere, request.parameters));
    } else if (key == "inputs") {
      OUTPOST_RETURN_IF_ERROR(CheckOnce(seen, kInputs, key, kWhere));
      const json::Value inputs = field.value;
      if (!inputs.is_array()) return InvalidArgumentError("\"inputs\" must be an array");
      request.inputs.resize(inputs.size());
      size_t i = 0;
      for (json::Value input : inputs.Items()) {
        OUTPOST_RETURN_IF_ERROR(ParseInput(input, i, state, request.inputs[i]));
        ++i;
      }
    } else if (key == "outputs") {
      OUTPOST_RETURN_IF_ERROR(CheckOnce(seen, kOutputs, key, kWhere));
      const json::Value outputs = field.value;
      if (!outputs.is_array()) return InvalidArgumentError("\"outputs\" must be an array");
      request.outputs.resize(outputs.size());
      size_t i = 0;
      for (json::Value output : outputs.Items()) {
        OUTPOST_RETURN_IF_ERROR(ParseRequestedOutput(output, i, request.outputs[i]));
        ++i;
      }
    }
  }
  if (!(seen & kInputs)) return InvalidArgumentError("the request has no \"inputs\"");
  OUTPOST_ASSIGN_OR_RETURN(std::optional<bool> binary_output,
                           BoolParameter(request.parameters, "binary_data_output", kWhere));
  request.binary_data_output = binary_output.value_or(false);
  if (const Parameter* timeout = FindParameter(request.parameters, "timeout")) {
    // Microseconds, as Triton takes it.
    const int64_t* signed_value = std::get_if<int64_t>(&timeout->value);
    if (signed_value == nullptr || *signed_value < 0 || *signed_value > kMaxRequestTimeoutUs) {
      return InvalidArgumentError(std::string(kWhere) +
                                  ": parameter \"timeout\" must be an integer number of "
                                  "microseconds within 0.." +
                                  std::to_string(kMaxRequestTimeoutUs));
    }
    request.timeout_us = static_cast<uint64_t>(*signed_value);
  }
  if (state.binary_used != state.binary.size()) {
    return InvalidArgumentError("the body has " +
                                std::to_string(state.binary.size() - state.binary_used) +
                                " bytes of binary data after the JSON that no input claims");
  }
  return Status();
}

// Parses `size` bytes at `data`, of which the first `json_size` are JSON; `readable` bytes from
// `data` on may be read (>= size), which decides whether the JSON must be copied for padding.
Status ParseImpl(const char* data, size_t size, size_t json_size, size_t readable,
                 const InferJsonLimits& limits, InferRequest& request) {
  request.id.reset();
  request.parameters.clear();
  request.inputs.clear();
  request.outputs.clear();
  request.binary_data_output = false;
  request.timeout_us = 0;
  if (size > limits.max_body_bytes) {
    return ResourceExhaustedError("the request body has " + std::to_string(size) +
                                  " bytes; the limit is " + std::to_string(limits.max_body_bytes));
  }
  if (json_size > size) {
    return InvalidArgumentError("the JSON header is said to have " + std::to_string(json_size) +
                                " bytes but the body has only " + std::to_string(size));
  }
  if (json_size == 0) {
    // Never handed to the parser, which would call it malformed.
    return InvalidArgumentError("the request has no JSON: its body is empty");
  }
  // The parser needs a depth of at least 1; a limit of 0 would reject every document anyway.
  const size_t max_depth = std::max<size_t>(limits.max_depth, 1);
  Status status;
  json::Parser* parser = ThreadParser(max_depth, status);
  if (parser == nullptr) return status;

  Result<json::Value> root = parser->Parse(std::string_view(data, json_size), readable);
  if (root.ok()) {
    ParseState state{.limits = limits,
                     .body_size = size,
                     .binary = std::string_view(data + json_size, size - json_size)};
    status = ParseDocument(*root, state, request);
  } else if (root.status().reason() == "json_too_deep") {
    status = InvalidArgumentError("the request's JSON nests deeper than " +
                                  std::to_string(max_depth) + " levels");
  } else if (root.status().reason() == "json_out_of_memory") {
    status = ResourceExhaustedError("cannot allocate memory to parse the request");
  } else {
    status = InvalidArgumentError("malformed JSON: " + std::string(root.status().message()));
  }
  if (parser->capacity() > kKeepParserCapacity) {
    // Free the large buffers; the next request on this thread starts small again.
    ThreadSlot().parser.reset();
  }
  return status;
}

// Writes `values` comma-separated, each with std::to_chars straight into `out`.
// `kMaxChars` bounds one value's text.
template <size_t kMaxChars, typename T>
void AppendNumbers(std::string& out, std::span<const T> values) {
  const size_t start = out.size();
  out.resize(start + values.size() * (kMaxChars + 1));
  char* p = out.data() + start;
  char* const end = out.data() + out.size();
  for (size_t i = 0; i < values.size(); ++i) {
    if (i != 0) *p++ = ',';
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(values[i])) {
        std::memcpy(p, "null", 4);
        p += 4;
        continue;
      }
    }
    if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t> ||
                  std::is_same_v<T, int16_t> || std::is_same_v<T, uint16_t>) {
      p = std::to_chars(p, end, static_cast<int32_t>(values[i])).ptr;
    } else {
      p = std::to_chars(p, end, values[i]).ptr;
    }
  }
  out.resize(static_cast<size_t>(p - out.data()));
}

// Bytes of a tensor in the binary tensor data layout.
size_t BinarySize(const Tensor& t) {
  if (t.type() != DataType::kBytes) return t.byte_size();
  size_t size = 0;
  for (const std::string& s : t.strings()) size += 4 + s.size();
  return size;
}

// The most characters AppendData writes for one element and its comma; for BYTES the
// unescaped length is used, so the bound holds only for plain ASCII strings.
size_t MaxElementChars(DataType type) {
  switch (type) {
    case DataType::kBool:
      return 6;
    case DataType::kUint8:
      return 5;
    case DataType::kUint16:
      return 7;
    case DataType::kUint32:
      return 12;
    case DataType::kInt8:
      return 6;
    case DataType::kInt16:
      return 8;
    case DataType::kInt32:
      return 13;
    case DataType::kUint64:
    case DataType::kInt64:
      return 22;
    case DataType::kFp32:
      return 17;
    case DataType::kFp64:
      return 27;
    case DataType::kBytes:
      return 3;
    case DataType::kFp16:
    case DataType::kBf16:
      return 0;
  }
  return 0;
}

// About the bytes WriteInferResponse appends (exact or above for numbers, binary data and
// ASCII strings), so that the body is allocated once rather than doubled as it grows.
size_t ResponseSizeHint(std::string_view model_name, const std::optional<std::string>& id,
                        std::span<const OutputRef> outputs) {
  constexpr size_t kFixed = 96;      // the keys, quotes and brackets of the document
  constexpr size_t kPerOutput = 96;  // the same for one output, its datatype and parameters
  size_t size = kFixed + model_name.size() + (id ? id->size() : 0);
  for (const OutputRef& output : outputs) {
    const Tensor& t = *output.tensor;
    size += kPerOutput + output.name.size() + 21 * t.shape().size();
    if (output.binary) {
      size += BinarySize(t);
    } else if (t.type() == DataType::kBytes) {
      for (const std::string& s : t.strings()) size += s.size() + 3;
    } else {
      size += static_cast<size_t>(t.element_count()) * MaxElementChars(t.type());
    }
  }
  return size;
}

// Appends a tensor in the binary tensor data layout: its little-endian elements, or for BYTES
// each element as a 4-byte little-endian length and its bytes.
void AppendBinary(const Tensor& t, std::string& out) {
  if (t.type() != DataType::kBytes) {
    out.append(reinterpret_cast<const char*>(t.data()), t.byte_size());
    return;
  }
  for (const std::string& s : t.strings()) {
    PutU32LE(out, static_cast<uint32_t>(s.size()));
    out.append(s);
  }
}

Status AppendData(std::string_view name, const Tensor& t, std::string& out) {
  out.push_back('[');
  switch (t.type()) {
    case DataType::kBool: {
      bool first = true;
      for (uint8_t v : t.values<uint8_t>()) {
        if (!first) out.push_back(',');
        first = false;
        out.append(v ? "true" : "false");
      }
      break;
    }
    case DataType::kUint8:
      AppendNumbers<4>(out, t.values<uint8_t>());
      break;
    case DataType::kUint16:
      AppendNumbers<6>(out, t.values<uint16_t>());
      break;
    case DataType::kUint32:
      AppendNumbers<11>(out, t.values<uint32_t>());
      break;
    case DataType::kUint64:
      AppendNumbers<21>(out, t.values<uint64_t>());
      break;
    case DataType::kInt8:
      AppendNumbers<5>(out, t.values<int8_t>());
      break;
    case DataType::kInt16:
      AppendNumbers<7>(out, t.values<int16_t>());
      break;
    case DataType::kInt32:
      AppendNumbers<12>(out, t.values<int32_t>());
      break;
    case DataType::kInt64:
      AppendNumbers<21>(out, t.values<int64_t>());
      break;
    case DataType::kFp32:
      AppendNumbers<16>(out, t.values<float>());
      break;
    case DataType::kFp64:
      AppendNumbers<26>(out, t.values<double>());
      break;
    case DataType::kBytes: {
      bool first = true;
      for (const std::string& s : t.strings()) {
        if (!first) out.push_back(',');
        first = false;
        AppendJsonString(out, s);
      }
      break;
    }
    case DataType::kFp16:
    case DataType::kBf16:
      return InvalidArgumentError("output " + Quote(name) + " is " +
                                  std::string(engine::DataTypeName(t.type())) +
                                  ", which JSON cannot carry; request it with binary_data");
  }
  out.push_back(']');
  return Status();
}

}  // namespace

Result<RepositoryRequest> ParseRepositoryRequest(std::string_view body, RepositoryCall call) {
  RepositoryRequest parsed;
  if (body.empty()) return parsed;
  // Repository calls are rare and their bodies small: a parser of their own, not the
  // thread's infer parser (whose depth limit they would reset).
  constexpr size_t kMaxRepositoryDepth = 15;
  json::Parser parser({.max_depth = kMaxRepositoryDepth});
  if (!parser.Reserve(std::max<size_t>(body.size(), 64)).ok()) {
    return ResourceExhaustedError("cannot allocate memory to parse the request");
  }
  Result<json::Value> parsed_root = parser.Parse(body);
  if (!parsed_root.ok()) {
    return InvalidArgumentError("malformed JSON: " + std::string(parsed_root.status().message()));
  }
  const json::Value root = *parsed_root;
  if (!root.is_object()) {
    return InvalidArgumentError("the request body must be a JSON object, not " +
                                std::string(JsonTypeName(root.type())));
  }
  bool seen_ready = false, seen_parameters = false;
  for (json::Member field : root.Members()) {
    if (field.key == "ready" && call == RepositoryCall::kIndex) {
      if (seen_ready) return InvalidArgumentError("\"ready\" is given twice");
      seen_ready = true;
      Result<bool> ready = field.value.GetBool();
      if (!ready.ok()) {
        return InvalidArgumentError("\"ready\" must be a boolean, not " +
                                    std::string(JsonTypeName(field.value.type())));
      }
      parsed.ready_only = *ready;
    } else if (field.key == "parameters" && call != RepositoryCall::kIndex) {
      if (seen_parameters) return InvalidArgumentError("\"parameters\" is given twice");
      seen_parameters = true;
      if (!field.value.is_object()) {
        return InvalidArgumentError("\"parameters\" must be an object, not " +
                                    std::string(JsonTypeName(field.value.type())));
      }
      const json::ObjectRange parameters = field.value.Members();
      if (auto first = parameters.begin(); first != parameters.end()) {
        return InvalidArgumentError("parameter " + Quote((*first).key) +
                                    " is not supported: Outpost loads and unloads models only "
                                    "as their repository folder defines them");
      }
    }
  }
  return parsed;
}

Status ParseInferRequest(const std::string& body, const InferJsonLimits& limits,
                         InferRequest& request) {
  return ParseImpl(body.data(), body.size(), body.size(), body.capacity(), limits, request);
}

Status ParseInferRequest(const std::string& body, size_t json_size, const InferJsonLimits& limits,
                         InferRequest& request) {
  return ParseImpl(body.data(), body.size(), json_size, body.capacity(), limits, request);
}

Status ParseInferRequest(std::string_view body, const InferJsonLimits& limits,
                         InferRequest& request) {
  return ParseImpl(body.data(), body.size(), body.size(), body.size(), limits, request);
}

Status ParseInferRequest(std::string_view body, size_t json_size, const InferJsonLimits& limits,
                         InferRequest& request) {
  return ParseImpl(body.data(), body.size(), json_size, body.size(), limits, request);
}

Status WriteInferResponse(std::string_view model_name, int64_t model_version,
                          const std::optional<std::string>& id, std::span<const OutputRef> outputs,
                          std::string& out, size_t& json_size) {
  const size_t start = out.size();
  out.reserve(start + ResponseSizeHint(model_name, id, outputs));
  out.append("{\"model_name\":");
  AppendJsonString(out, model_name);
  out.append(",\"model_version\":\"");
  AppendJsonNumber(out, model_version);
  out.push_back('"');
  if (id.has_value()) {
    out.append(",\"id\":");
    AppendJsonString(out, *id);
  }
  out.append(",\"outputs\":[");
  bool any_binary = false;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& t = *outputs[i].tensor;
    if (i != 0) out.push_back(',');
    out.append("{\"name\":");
    AppendJsonString(out, outputs[i].name);
    out.append(",\"datatype\":\"");
    out.append(engine::DataTypeName(t.type()));
    out.append("\",\"shape\":[");
    for (size_t d = 0; d < t.shape().size(); ++d) {
      if (d != 0) out.push_back(',');
      AppendJsonNumber(out, t.shape()[d]);
    }
    if (outputs[i].binary) {
      any_binary = true;
      out.append("],\"parameters\":{\"binary_data_size\":");
      AppendJsonNumber(out, static_cast<uint64_t>(BinarySize(t)));
      out.append("}}");
    } else {
      out.append("],\"data\":");
      OUTPOST_RETURN_IF_ERROR(AppendData(outputs[i].name, t, out));
      out.push_back('}');
    }
  }
  out.append("]}");
  json_size = out.size() - start;
  if (any_binary) {
    for (const OutputRef& output : outputs) {
      if (output.binary) AppendBinary(*output.tensor, out);
    }
  }
  return Status();
}

}  // namespace outpost::serve
