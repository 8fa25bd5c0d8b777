// The ONNX protobuf adapter (see onnx_import.h). Protobuf reports malformed input by return
// value, never by exception, so no try/catch is needed here; every count and size read
// from the file is checked before it is used.
#include "engine/onnx/onnx_import.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <unordered_map>
#include <utility>

#include "base/file.h"
#include "engine/onnx/float16.h"

namespace outpost::engine::onnx {
namespace {

using ::onnx::AttributeProto;
using ::onnx::GraphProto;
using ::onnx::ModelProto;
using ::onnx::NodeProto;
using ::onnx::TensorProto;
using ::onnx::TensorShapeProto;
using ::onnx::TypeProto;
using ::onnx::ValueInfoProto;

Result<DataType> FromOnnxType(int32_t t) {
  switch (t) {
    case TensorProto::FLOAT:
      return DataType::kFp32;
    case TensorProto::UINT8:
      return DataType::kUint8;
    case TensorProto::INT8:
      return DataType::kInt8;
    case TensorProto::UINT16:
      return DataType::kUint16;
    case TensorProto::INT16:
      return DataType::kInt16;
    case TensorProto::INT32:
      return DataType::kInt32;
    case TensorProto::INT64:
      return DataType::kInt64;
    case TensorProto::STRING:
      return DataType::kBytes;
    case TensorProto::BOOL:
      return DataType::kBool;
    case TensorProto::FLOAT16:
      return DataType::kFp16;
    case TensorProto::DOUBLE:
      return DataType::kFp64;
    case TensorProto::UINT32:
      return DataType::kUint32;
    case TensorProto::UINT64:
      return DataType::kUint64;
    case TensorProto::BFLOAT16:
      return DataType::kBf16;
    case TensorProto::COMPLEX64:
    case TensorProto::COMPLEX128:
      return UnimplementedError("complex tensors are not supported");
    default:
      return InvalidArgumentError("unknown tensor element type " + std::to_string(t));
  }
}

int32_t ToOnnxType(DataType t) {
  switch (t) {
    case DataType::kFp32:
      return TensorProto::FLOAT;
    case DataType::kUint8:
      return TensorProto::UINT8;
    case DataType::kInt8:
      return TensorProto::INT8;
    case DataType::kUint16:
      return TensorProto::UINT16;
    case DataType::kInt16:
      return TensorProto::INT16;
    case DataType::kInt32:
      return TensorProto::INT32;
    case DataType::kInt64:
      return TensorProto::INT64;
    case DataType::kBytes:
      return TensorProto::STRING;
    case DataType::kBool:
      return TensorProto::BOOL;
    case DataType::kFp16:
      return TensorProto::FLOAT16;
    case DataType::kFp64:
      return TensorProto::DOUBLE;
    case DataType::kUint32:
      return TensorProto::UINT32;
    case DataType::kUint64:
      return TensorProto::UINT64;
    case DataType::kBf16:
      return TensorProto::BFLOAT16;
  }
  return TensorProto::UNDEFINED;
}

// Reading context: options plus the folder external data lives in.
struct Reader {
  const ImportOptions& options;
  std::string model_dir;
};

// Reads `length` bytes at `offset` of `location` (relative to the model folder).
Result<std::string> ReadExternal(const Reader& r, const std::string& location, uint64_t offset,
                                 uint64_t length) {
  if (r.model_dir.empty()) {
    return InvalidArgumentError("external data \"" + location +
                                "\" cannot be used when the model is not read from a file");
  }
  if (location.empty() || location.front() == '/' || location.find('\0') != std::string::npos) {
    return InvalidArgumentError("external data location \"" + location +
                                "\" must be a relative path");
  }
  // Refuse any ".." component: external data stays inside the model's folder.
  size_t start = 0;
  while (start <= location.size()) {
    size_t end = location.find('/', start);
    if (end == std::string::npos) end = location.size();
    if (location.compare(start, end - start, "..") == 0) {
      return InvalidArgumentError("external data location \"" + location +
                                  "\" leaves the model's folder");
    }
    start = end + 1;
  }
  const std::string path = JoinPath(r.model_dir, location);
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("external data file \"" + location + "\" cannot be opened");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return InvalidArgumentError("external data file \"" + location + "\" unreadable");
  const uint64_t file_size = static_cast<uint64_t>(size);
  if (offset > file_size) {
    return InvalidArgumentError("external data offset lies beyond the end of \"" + location + "\"");
  }
  if (length == std::numeric_limits<uint64_t>::max()) length = file_size - offset;
  if (length > file_size - offset) {
    return InvalidArgumentError("external data segment lies beyond the end of \"" + location +
                                "\"");
  }
  if (length > r.options.max_tensor_bytes) {
    return ResourceExhaustedError("external data segment of " + std::to_string(length) +
                                  " bytes exceeds the tensor limit");
  }
  std::string data(static_cast<size_t>(length), '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(data.data(), static_cast<std::streamsize>(length));
  if (!in) return InvalidArgumentError("external data file \"" + location + "\" read failed");
  return data;
}

Result<uint64_t> ParseUint(const std::string& text, const char* what) {
  if (text.empty() || text.size() > 19) return InvalidArgumentError(std::string("bad ") + what);
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return InvalidArgumentError(std::string("bad ") + what);
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

template <typename Src, typename Dst>
void CopyConverted(const Src& src, Dst* dst) {
  for (int i = 0; i < src.size(); ++i) dst[i] = static_cast<Dst>(src.Get(i));
}

// A tensor's element type and shape, with its element count and byte size.
struct TensorHeader {
  DataType type;
  Shape shape;
  size_t n = 0;        // elements
  uint64_t bytes = 0;  // n times the element size; 0 for STRING tensors
};

// Reads the element type and shape, refusing those over the rank and tensor size limits.
Result<TensorHeader> ReadTensorHeader(const Reader& r, const TensorProto& p) {
  if (!p.has_data_type() || p.data_type() == TensorProto::UNDEFINED) {
    return InvalidArgumentError("tensor has no element type");
  }
  OUTPOST_ASSIGN_OR_RETURN(DataType type, FromOnnxType(p.data_type()));
  if (static_cast<size_t>(p.dims_size()) > r.options.max_rank) {
    return InvalidArgumentError("tensor has " + std::to_string(p.dims_size()) +
                                " dimensions, more than the limit");
  }
  Shape shape(p.dims().begin(), p.dims().end());
  OUTPOST_ASSIGN_OR_RETURN(int64_t count, ElementCount(shape));
  const uint64_t elem = ElementSize(type);
  const uint64_t limit_elems =
      elem == 0 ? r.options.max_tensor_bytes / 16 : r.options.max_tensor_bytes / elem;
  if (static_cast<uint64_t>(count) > limit_elems) {
    return ResourceExhaustedError("tensor of shape " + ShapeToString(shape) +
                                  " exceeds the tensor size limit");
  }
  const uint64_t bytes = static_cast<uint64_t>(count) * elem;
  return TensorHeader{type, std::move(shape), static_cast<size_t>(count), bytes};
}

// Reads the segment of an external file that the tensor's external_data names.
Result<std::string> ReadExternalData(const Reader& r, const TensorProto& p, DataType type) {
  std::string location;
  uint64_t offset = 0;
  uint64_t length = std::numeric_limits<uint64_t>::max();
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset") {
      OUTPOST_ASSIGN_OR_RETURN(offset, ParseUint(kv.value(), "external data offset"));
    } else if (kv.key() == "length") {
      OUTPOST_ASSIGN_OR_RETURN(length, ParseUint(kv.value(), "external data length"));
    }
  }
  if (type == DataType::kBytes) {
    return InvalidArgumentError("STRING tensors cannot use external data");
  }
  return ReadExternal(r, location, offset, length);
}

// The tensor's contents as raw bytes: its external data (read into `external`), its
// raw_data, or null when the contents are in the typed fields.
Result<const std::string*> RawData(const Reader& r, const TensorProto& p, DataType type,
                                   std::string& external) {
  if (p.data_location() == TensorProto::EXTERNAL) {
    OUTPOST_ASSIGN_OR_RETURN(external, ReadExternalData(r, p, type));
    return &external;
  }
  if (p.has_raw_data()) return &p.raw_data();
  return nullptr;
}

// Sizes are checked against the elements present before anything is allocated, so a small
// file cannot make the engine allocate a large tensor.
Status CheckTypedCount(int size, size_t n) {
  if (static_cast<size_t>(size) != n) {
    return InvalidArgumentError("tensor has " + std::to_string(size) + " typed elements for " +
                                std::to_string(n) + " expected");
  }
  return Status();
}

// A STRING tensor from string_data.
Result<Tensor> StringTensor(const TensorProto& p, TensorHeader h) {
  OUTPOST_RETURN_IF_ERROR(CheckTypedCount(p.string_data_size(), h.n));
  Tensor t(h.type, std::move(h.shape));
  for (size_t i = 0; i < h.n; ++i) t.strings()[i] = p.string_data(static_cast<int>(i));
  return t;
}

// A tensor from its raw bytes; BOOL elements are normalised to 0/1.
Result<Tensor> TensorFromRaw(const std::string& raw, TensorHeader h) {
  if (raw.size() != h.bytes) {
    return InvalidArgumentError("tensor data has " + std::to_string(raw.size()) +
                                " bytes but its shape needs " + std::to_string(h.bytes));
  }
  Tensor t(h.type, std::move(h.shape));
  if (h.bytes > 0) std::memcpy(t.data(), raw.data(), h.bytes);
  if (h.type == DataType::kBool) {
    // Normalise to 0/1 so that kernels may rely on it.
    for (auto& b : t.values<uint8_t>()) b = b != 0;
  }
  return t;
}

// How many elements the typed field that holds `type` has.
int TypedFieldSize(const TensorProto& p, DataType type) {
  switch (type) {
    case DataType::kFp32:
      return p.float_data_size();
    case DataType::kFp64:
      return p.double_data_size();
    case DataType::kInt64:
      return p.int64_data_size();
    case DataType::kUint64:
    case DataType::kUint32:
      return p.uint64_data_size();
    default:
      return p.int32_data_size();
  }
}

// Copies the `n` elements of the typed field that holds t's type into `t`.
void CopyTypedField(const TensorProto& p, size_t n, Tensor& t) {
  switch (t.type()) {
    case DataType::kFp32:
      CopyConverted(p.float_data(), t.values<float>().data());
      break;
    case DataType::kFp64:
      CopyConverted(p.double_data(), t.values<double>().data());
      break;
    case DataType::kInt64:
      CopyConverted(p.int64_data(), t.values<int64_t>().data());
      break;
    case DataType::kUint64:
      CopyConverted(p.uint64_data(), t.values<uint64_t>().data());
      break;
    case DataType::kUint32:
      CopyConverted(p.uint64_data(), t.values<uint32_t>().data());
      break;
    case DataType::kInt32:
      CopyConverted(p.int32_data(), t.values<int32_t>().data());
      break;
    case DataType::kInt16:
      CopyConverted(p.int32_data(), t.values<int16_t>().data());
      break;
    case DataType::kInt8:
      CopyConverted(p.int32_data(), t.values<int8_t>().data());
      break;
    case DataType::kUint16:
    case DataType::kFp16:
    case DataType::kBf16:
      // 16-bit floats travel as their bit patterns in int32_data.
      CopyConverted(p.int32_data(), t.values<uint16_t>().data());
      break;
    case DataType::kUint8:
      CopyConverted(p.int32_data(), t.values<uint8_t>().data());
      break;
    case DataType::kBool: {
      uint8_t* d = t.values<uint8_t>().data();
      for (size_t i = 0; i < n; ++i) d[i] = p.int32_data(static_cast<int>(i)) != 0;
      break;
    }
    case DataType::kBytes:
      break;
  }
}

// A numeric tensor from the typed field (float_data, int32_data, ...) that holds its type.
Result<Tensor> TensorFromTypedField(const TensorProto& p, TensorHeader h) {
  OUTPOST_RETURN_IF_ERROR(CheckTypedCount(TypedFieldSize(p, h.type), h.n));
  Tensor t(h.type, std::move(h.shape));
  CopyTypedField(p, h.n, t);
  return t;
}

Result<Tensor> ReadTensor(const Reader& r, const TensorProto& p) {
  OUTPOST_ASSIGN_OR_RETURN(TensorHeader h, ReadTensorHeader(r, p));
  std::string external;
  OUTPOST_ASSIGN_OR_RETURN(const std::string* raw, RawData(r, p, h.type, external));
  if (h.type == DataType::kBytes) {
    if (raw != nullptr) return InvalidArgumentError("STRING tensor uses raw_data");
    return StringTensor(p, std::move(h));
  }
  if (raw != nullptr) return TensorFromRaw(*raw, std::move(h));
  return TensorFromTypedField(p, std::move(h));
}

Result<ValueInfo> ReadValueInfo(const Reader& r, const ValueInfoProto& vi) {
  ValueInfo info;
  if (!vi.has_type()) return info;  // nothing declared
  const TypeProto& tp = vi.type();
  if (tp.value_case() != TypeProto::kTensorType) {
    info.is_tensor = false;
    return info;
  }
  const TypeProto::Tensor& tt = tp.tensor_type();
  if (tt.has_elem_type() && tt.elem_type() != TensorProto::UNDEFINED) {
    OUTPOST_ASSIGN_OR_RETURN(info.type, FromOnnxType(tt.elem_type()));
    info.has_type = true;
  }
  if (tt.has_shape()) {
    const TensorShapeProto& sp = tt.shape();
    if (static_cast<size_t>(sp.dim_size()) > r.options.max_rank) {
      return InvalidArgumentError("declared shape has more dimensions than the limit");
    }
    info.has_shape = true;
    for (const auto& d : sp.dim()) {
      Dim dim;
      if (d.has_dim_value()) {
        if (d.dim_value() < 0) return InvalidArgumentError("declared shape has a negative size");
        dim.value = d.dim_value();
      } else if (d.has_dim_param()) {
        dim.symbol = d.dim_param();
      }
      info.dims.push_back(std::move(dim));
    }
  }
  return info;
}

// Files from IR version 1 may omit an attribute's type; takes it from the field that is set.
Result<AttributeProto::AttributeType> TypeFromValue(const AttributeProto& a) {
  if (a.has_f()) return AttributeProto::FLOAT;
  if (a.has_i()) return AttributeProto::INT;
  if (a.has_s()) return AttributeProto::STRING;
  if (a.has_t()) return AttributeProto::TENSOR;
  if (a.has_g()) return AttributeProto::GRAPH;
  if (a.floats_size() > 0) return AttributeProto::FLOATS;
  if (a.ints_size() > 0) return AttributeProto::INTS;
  if (a.strings_size() > 0) return AttributeProto::STRINGS;
  if (a.tensors_size() > 0) return AttributeProto::TENSORS;
  return InvalidArgumentError("attribute \"" + a.name() + "\" has no type and no value");
}

struct GraphReader;
Result<std::shared_ptr<const Graph>> ReadSubgraph(const GraphReader& outer, const GraphProto& gp);

// Reads one attribute; `gr` is the graph being read, which a subgraph attribute extends.
Result<Attribute> ReadAttribute(const GraphReader& gr, const Reader& r, const AttributeProto& a) {
  Attribute out;
  out.name = a.name();
  if (!a.ref_attr_name().empty()) {
    return UnimplementedError("attribute \"" + a.name() + "\" refers to a function attribute");
  }
  AttributeProto::AttributeType type = a.type();
  if (type == AttributeProto::UNDEFINED) {
    OUTPOST_ASSIGN_OR_RETURN(type, TypeFromValue(a));
  }
  switch (type) {
    case AttributeProto::FLOAT:
      out.type = AttrType::kFloat;
      out.f = a.f();
      break;
    case AttributeProto::INT:
      out.type = AttrType::kInt;
      out.i = a.i();
      break;
    case AttributeProto::STRING:
      out.type = AttrType::kString;
      out.s = a.s();
      break;
    case AttributeProto::TENSOR: {
      out.type = AttrType::kTensor;
      auto t = ReadTensor(r, a.t());
      if (!t.ok()) return t.status().WithContext("attribute \"" + a.name() + "\"");
      out.tensor = std::make_shared<const Tensor>(std::move(t).value());
      break;
    }
    case AttributeProto::FLOATS:
      out.type = AttrType::kFloats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case AttributeProto::INTS:
      out.type = AttrType::kInts;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case AttributeProto::STRINGS:
      out.type = AttrType::kStrings;
      out.strings.assign(a.strings().begin(), a.strings().end());
      break;
    case AttributeProto::TENSORS:
      out.type = AttrType::kTensors;
      for (const TensorProto& tp : a.tensors()) {
        auto t = ReadTensor(r, tp);
        if (!t.ok()) return t.status().WithContext("attribute \"" + a.name() + "\"");
        out.tensors.push_back(std::make_shared<const Tensor>(std::move(t).value()));
      }
      break;
    case AttributeProto::GRAPH: {
      out.type = AttrType::kGraph;
      auto sub = ReadSubgraph(gr, a.g());
      if (!sub.ok()) return sub.status().WithContext("attribute \"" + a.name() + "\"");
      out.graph = std::move(sub).value();
      break;
    }
    default:
      out.type = AttrType::kOther;
      break;
  }
  return out;
}

std::string NormalizeDomain(const std::string& domain) {
  return domain == "ai.onnx" ? std::string() : domain;
}

// Reads the IR version, the producer and the opset imports.
Status ReadModelHeader(const ModelProto& model, Graph& g) {
  g.ir_version = model.ir_version();
  g.producer_name = model.producer_name();
  if (g.ir_version < 3) {
    return UnimplementedError("IR version " + std::to_string(g.ir_version) +
                              " is older than the engine reads (3)");
  }
  for (const auto& op : model.opset_import()) {
    if (op.version() < 1 || op.version() > 1000) {
      return InvalidArgumentError("opset import of domain \"" + op.domain() + "\" has version " +
                                  std::to_string(op.version()));
    }
    g.opsets[NormalizeDomain(op.domain())] = static_cast<int>(op.version());
  }
  return Status();
}

// Refuses graphs over the node and value limits, and sparse initializers.
Status CheckGraphLimits(const Reader& r, const GraphProto& gp) {
  if (static_cast<size_t>(gp.node_size()) > r.options.max_nodes) {
    return ResourceExhaustedError("the graph has " + std::to_string(gp.node_size()) +
                                  " nodes, more than the limit");
  }
  const size_t declared_values =
      static_cast<size_t>(gp.input_size()) + static_cast<size_t>(gp.initializer_size());
  if (declared_values > r.options.max_values) {
    return ResourceExhaustedError("the graph declares more values than the limit");
  }
  if (gp.sparse_initializer_size() > 0) {
    return UnimplementedError("sparse initializers are not supported");
  }
  return Status();
}

// The state of reading one graph: the graph so far and its values by name.
struct GraphReader {
  const Reader& r;
  const ModelProto& model;
  const GraphProto& gp;
  Graph& g;
  std::unordered_map<std::string, ValueId> by_name;
  // Subgraphs: names not defined inside are read from the enclosing graphs (captured).
  bool subgraph = false;
  int depth = 0;

  // Adds a value under a new, non-empty name.
  Result<ValueId> Define(const std::string& name, Value::Kind kind) {
    if (name.empty()) return InvalidArgumentError("a value has an empty name");
    auto [it, inserted] = by_name.emplace(name, static_cast<ValueId>(g.values.size()));
    if (!inserted) return InvalidArgumentError("value \"" + name + "\" is defined twice");
    g.AddValue(name, kind);
    return it->second;
  }
};

// Defines the initializers as constants, then the graph inputs that are not initializers.
Status ReadInitializersAndInputs(GraphReader& gr) {
  // Initializers first: a graph input with an initializer (IR < 4 style) is a constant.
  for (const TensorProto& tp : gr.gp.initializer()) {
    auto t = ReadTensor(gr.r, tp);
    if (!t.ok()) return t.status().WithContext("initializer \"" + tp.name() + "\"");
    OUTPOST_ASSIGN_OR_RETURN(ValueId id, gr.Define(tp.name(), Value::Kind::kConstant));
    gr.g.values[static_cast<size_t>(id)].constant =
        std::make_shared<const Tensor>(std::move(t).value());
  }
  for (const ValueInfoProto& vi : gr.gp.input()) {
    auto info = ReadValueInfo(gr.r, vi);
    if (!info.ok()) return info.status().WithContext("graph input \"" + vi.name() + "\"");
    auto it = gr.by_name.find(vi.name());
    if (it != gr.by_name.end()) {
      gr.g.values[static_cast<size_t>(it->second)].info = std::move(info).value();
      continue;  // an initializer's declaration
    }
    OUTPOST_ASSIGN_OR_RETURN(ValueId id, gr.Define(vi.name(), Value::Kind::kGraphInput));
    gr.g.values[static_cast<size_t>(id)].info = std::move(info).value();
    gr.g.inputs.push_back(id);
  }
  return Status();
}

// The model's opset version for the node's domain. `context` names the node in errors.
Result<int> NodeOpset(const GraphReader& gr, const NodeProto& np, const Node& node,
                      const std::string& context) {
  auto opset = gr.g.opsets.find(node.domain);
  if (opset == gr.g.opsets.end()) {
    bool is_function = false;
    for (const auto& f : gr.model.functions()) {
      if (f.domain() == np.domain() && f.name() == np.op_type()) is_function = true;
    }
    if (is_function) {
      return UnimplementedError(context + ": model-local functions are not supported");
    }
    return InvalidArgumentError(context + ": domain \"" + node.domain +
                                "\" is not in the model's opset imports");
  }
  return opset->second;
}

// Reads node `n` and defines its outputs; its inputs are resolved later.
Status ReadNode(GraphReader& gr, int n) {
  const NodeProto& np = gr.gp.node(n);
  Node node;
  node.name = np.name();
  node.op_type = np.op_type();
  node.domain = NormalizeDomain(np.domain());
  const std::string context = node.Describe(static_cast<size_t>(n));
  if (node.op_type.empty()) return InvalidArgumentError(context + ": empty op_type");
  if (node.domain == kOutpostDomain) {
    return InvalidArgumentError(context + ": the domain is reserved for the engine");
  }
  OUTPOST_ASSIGN_OR_RETURN(node.opset, NodeOpset(gr, np, node, context));
  if (gr.g.values.size() + static_cast<size_t>(np.output_size()) > gr.r.options.max_values) {
    return ResourceExhaustedError(context + ": the graph has more values than the limit");
  }
  for (const std::string& out : np.output()) {
    if (out.empty()) {
      node.outputs.push_back(kNoValue);
      continue;
    }
    auto id = gr.Define(out, Value::Kind::kNodeOutput);
    if (!id.ok()) return id.status().WithContext(context);
    gr.g.values[static_cast<size_t>(*id)].producer = n;
    node.outputs.push_back(*id);
  }
  for (const AttributeProto& ap : np.attribute()) {
    auto a = ReadAttribute(gr, gr.r, ap);
    if (!a.ok()) return a.status().WithContext(context);
    node.attributes.push_back(std::move(a).value());
  }
  gr.g.nodes.push_back(std::move(node));
  return Status();
}

// The value named `name`; in a subgraph, a name defined only in an enclosing graph becomes
// a captured input (appended to the subgraph's inputs). kNoValue when undefined.
ValueId Lookup(GraphReader& gr, const std::string& name) {
  auto it = gr.by_name.find(name);
  if (it != gr.by_name.end()) return it->second;
  if (!gr.subgraph) return kNoValue;
  auto id = gr.Define(name, Value::Kind::kGraphInput);
  if (!id.ok()) return kNoValue;
  gr.g.inputs.push_back(*id);
  ++gr.g.captured;
  return *id;
}

// Points each node's inputs at the values defined by then, then appends the values its
// subgraphs capture from this graph.
Status ResolveNodeInputs(GraphReader& gr) {
  for (int n = 0; n < gr.gp.node_size(); ++n) {
    const NodeProto& np = gr.gp.node(n);
    Node& node = gr.g.nodes[static_cast<size_t>(n)];
    std::vector<std::string> names(np.input().begin(), np.input().end());
    for (const Attribute& a : node.attributes) {
      if (a.type != AttrType::kGraph || !a.graph) continue;
      const Graph& sub = *a.graph;
      for (size_t i = sub.inputs.size() - sub.captured; i < sub.inputs.size(); ++i) {
        names.push_back(sub.values[static_cast<size_t>(sub.inputs[i])].name);
      }
    }
    for (const std::string& in : names) {
      if (in.empty()) {
        node.inputs.push_back(kNoValue);
        continue;
      }
      const ValueId id = Lookup(gr, in);
      if (id == kNoValue) {
        return InvalidArgumentError(node.Describe(static_cast<size_t>(n)) + ": input \"" + in +
                                    "\" is not defined in the graph");
      }
      node.inputs.push_back(id);
    }
  }
  return Status();
}

// Reads the graph outputs; the declared type and shape is kept for node outputs only.
Status ReadGraphOutputs(GraphReader& gr) {
  for (const ValueInfoProto& vi : gr.gp.output()) {
    const ValueId id = Lookup(gr, vi.name());
    if (id == kNoValue) {
      return InvalidArgumentError("graph output \"" + vi.name() + "\" is not defined");
    }
    auto info = ReadValueInfo(gr.r, vi);
    if (!info.ok()) return info.status().WithContext("graph output \"" + vi.name() + "\"");
    Value& v = gr.g.values[static_cast<size_t>(id)];
    if (v.kind == Value::Kind::kNodeOutput) v.info = std::move(info).value();
    gr.g.outputs.push_back(id);
  }
  if (gr.g.outputs.empty()) return InvalidArgumentError("the graph has no outputs");
  return Status();
}

// Deepest nesting of subgraphs the engine reads.
inline constexpr int kMaxSubgraphDepth = 8;

Result<std::shared_ptr<const Graph>> ReadSubgraph(const GraphReader& outer, const GraphProto& gp) {
  if (outer.depth + 1 > kMaxSubgraphDepth) {
    return ResourceExhaustedError("subgraphs are nested more than " +
                                  std::to_string(kMaxSubgraphDepth) + " deep");
  }
  OUTPOST_RETURN_IF_ERROR(CheckGraphLimits(outer.r, gp));
  auto g = std::make_shared<Graph>();
  g->ir_version = outer.g.ir_version;
  g->producer_name = outer.g.producer_name;
  g->opsets = outer.g.opsets;
  GraphReader gr{outer.r, outer.model, gp, *g, {}, true, outer.depth + 1};
  OUTPOST_RETURN_IF_ERROR(ReadInitializersAndInputs(gr));
  g->nodes.reserve(static_cast<size_t>(gp.node_size()));
  for (int n = 0; n < gp.node_size(); ++n) OUTPOST_RETURN_IF_ERROR(ReadNode(gr, n));
  OUTPOST_RETURN_IF_ERROR(ResolveNodeInputs(gr));
  OUTPOST_RETURN_IF_ERROR(ReadGraphOutputs(gr));
  return std::shared_ptr<const Graph>(std::move(g));
}

Result<Graph> ReadModel(const Reader& r, const ModelProto& model) {
  Graph g;
  OUTPOST_RETURN_IF_ERROR(ReadModelHeader(model, g));
  if (model.functions_size() > 0) {
    // Functions matter only when a node calls one; the check is per node (NodeOpset).
  }
  if (!model.has_graph()) return InvalidArgumentError("the model has no graph");
  const GraphProto& gp = model.graph();
  OUTPOST_RETURN_IF_ERROR(CheckGraphLimits(r, gp));

  GraphReader gr{r, model, gp, g, {}};
  OUTPOST_RETURN_IF_ERROR(ReadInitializersAndInputs(gr));
  g.nodes.reserve(static_cast<size_t>(gp.node_size()));
  // Node outputs are defined before inputs are resolved, so that nodes may appear in any
  // order in the file (the compiler sorts them).
  for (int n = 0; n < gp.node_size(); ++n) OUTPOST_RETURN_IF_ERROR(ReadNode(gr, n));
  OUTPOST_RETURN_IF_ERROR(ResolveNodeInputs(gr));
  OUTPOST_RETURN_IF_ERROR(ReadGraphOutputs(gr));
  return g;
}

// ---- export ----

void WriteTensor(const Tensor& t, TensorProto* p) {
  p->set_data_type(ToOnnxType(t.type()));
  for (int64_t d : t.shape()) p->add_dims(d);
  if (t.type() == DataType::kBytes) {
    for (const std::string& s : t.strings()) p->add_string_data(s);
  } else {
    p->set_raw_data(reinterpret_cast<const char*>(t.data()), t.byte_size());
  }
}

Status WriteGraph(const Graph& graph, GraphProto* gp);

Status WriteAttribute(const Attribute& a, AttributeProto* p) {
  p->set_name(a.name);
  switch (a.type) {
    case AttrType::kFloat:
      p->set_type(AttributeProto::FLOAT);
      p->set_f(a.f);
      break;
    case AttrType::kInt:
      p->set_type(AttributeProto::INT);
      p->set_i(a.i);
      break;
    case AttrType::kString:
      p->set_type(AttributeProto::STRING);
      p->set_s(a.s);
      break;
    case AttrType::kTensor:
      p->set_type(AttributeProto::TENSOR);
      if (a.tensor) WriteTensor(*a.tensor, p->mutable_t());
      break;
    case AttrType::kFloats:
      p->set_type(AttributeProto::FLOATS);
      for (float f : a.floats) p->add_floats(f);
      break;
    case AttrType::kInts:
      p->set_type(AttributeProto::INTS);
      for (int64_t i : a.ints) p->add_ints(i);
      break;
    case AttrType::kStrings:
      p->set_type(AttributeProto::STRINGS);
      for (const std::string& s : a.strings) p->add_strings(s);
      break;
    case AttrType::kTensors:
      p->set_type(AttributeProto::TENSORS);
      for (const auto& t : a.tensors) WriteTensor(*t, p->add_tensors());
      break;
    case AttrType::kGraph:
      if (!a.graph) return InvalidArgumentError("attribute \"" + a.name + "\" has no graph");
      p->set_type(AttributeProto::GRAPH);
      return WriteGraph(*a.graph, p->mutable_g());
    case AttrType::kOther:
      return InvalidArgumentError("attribute \"" + a.name + "\" cannot be exported");
  }
  return Status();
}

void WriteValueInfo(const Value& v, ValueInfoProto* p) {
  p->set_name(v.name);
  if (!v.info.is_tensor) return;
  TypeProto::Tensor* tt = p->mutable_type()->mutable_tensor_type();
  if (v.info.has_type) tt->set_elem_type(ToOnnxType(v.info.type));
  if (v.info.has_shape) {
    TensorShapeProto* sp = tt->mutable_shape();
    for (const Dim& d : v.info.dims) {
      auto* dp = sp->add_dim();
      if (d.value >= 0) {
        dp->set_dim_value(d.value);
      } else if (!d.symbol.empty()) {
        dp->set_dim_param(d.symbol);
      }
    }
  }
}

}  // namespace

Result<Graph> ImportModel(std::span<const std::byte> bytes, const std::string& model_dir,
                          const ImportOptions& options) {
  if (bytes.size() > options.max_model_bytes ||
      bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return ResourceExhaustedError("the model file is larger than the limit");
  }
  ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("not an ONNX model: the protobuf message is malformed");
  }
  Reader r{options, model_dir};
  return ReadModel(r, model);
}

Result<Graph> ImportModelFile(const std::string& path, const ImportOptions& options) {
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, options.max_model_bytes));
  std::string dir = ".";
  if (size_t slash = path.rfind('/'); slash != std::string::npos) {
    dir = slash == 0 ? "/" : path.substr(0, slash);
  }
  return ImportModel(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())), dir,
                     options);
}

Result<Tensor> ImportTensor(std::span<const std::byte> bytes, const ImportOptions& options) {
  if (bytes.size() > options.max_model_bytes ||
      bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return ResourceExhaustedError("the tensor file is larger than the limit");
  }
  TensorProto p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("not an ONNX tensor: the protobuf message is malformed");
  }
  Reader r{options, ""};
  return ReadTensor(r, p);
}

namespace {

// Writes a graph; captured values (read from enclosing graphs) are referred to by name only.
Status WriteGraph(const Graph& graph, GraphProto* gp) {
  gp->set_name("outpost");
  for (const Value& v : graph.values) {
    if (v.kind == Value::Kind::kConstant && v.constant) {
      TensorProto* tp = gp->add_initializer();
      tp->set_name(v.name);
      WriteTensor(*v.constant, tp);
    }
  }
  for (size_t i = 0; i + graph.captured < graph.inputs.size(); ++i) {
    WriteValueInfo(graph.values[static_cast<size_t>(graph.inputs[i])], gp->add_input());
  }
  for (ValueId id : graph.outputs) {
    WriteValueInfo(graph.values[static_cast<size_t>(id)], gp->add_output());
  }
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& node = graph.nodes[n];
    NodeProto* np = gp->add_node();
    np->set_name(node.name);
    np->set_op_type(node.op_type);
    np->set_domain(node.domain);
    const size_t own = node.inputs.size() - node.CapturedInputs();
    for (size_t i = 0; i < own; ++i) {
      const ValueId in = node.inputs[i];
      np->add_input(in == kNoValue ? std::string() : graph.values[static_cast<size_t>(in)].name);
    }
    for (ValueId out : node.outputs) {
      np->add_output(out == kNoValue ? std::string() : graph.values[static_cast<size_t>(out)].name);
    }
    for (const Attribute& a : node.attributes) {
      Status s = WriteAttribute(a, np->add_attribute());
      if (!s.ok()) return s.WithContext(node.Describe(n));
    }
  }
  return Status();
}

}  // namespace

Result<std::string> ExportModel(const Graph& graph) {
  ModelProto model;
  model.set_ir_version(graph.ir_version > 0 ? graph.ir_version : 8);
  model.set_producer_name(graph.producer_name.empty() ? "outpost" : graph.producer_name);
  for (const auto& [domain, version] : graph.opsets) {
    auto* op = model.add_opset_import();
    op->set_domain(domain);
    op->set_version(version);
  }
  OUTPOST_RETURN_IF_ERROR(WriteGraph(graph, model.mutable_graph()));
  std::string out;
  if (!model.SerializeToString(&out)) return InternalError("serializing the model failed");
  return out;
}

}  // namespace outpost::engine::onnx
