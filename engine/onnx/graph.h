// The typed graph: the ONNX engine's own form of a model, free of protobuf types.
//
// The importer (onnx_import.h) builds a Graph from a model file; the optimiser rewrites it;
// the compiler (plan.h) turns it into an immutable plan. Values are numbered densely
// (ValueId) and nodes live in one arena (Graph::nodes), so passes work on indices, not names.
// Names are kept only for signatures and error messages.
//
// A Graph is a plain value type: copyable, not thread-safe to mutate, safe to read from many
// threads once built.
#ifndef OUTPOST_ENGINE_ONNX_GRAPH_H_
#define OUTPOST_ENGINE_ONNX_GRAPH_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/tensor.h"

namespace outpost::engine::onnx {

using ValueId = int32_t;
// An omitted optional input or output of a node.
inline constexpr ValueId kNoValue = -1;

// The operator-set domains the engine knows. The importer maps "ai.onnx" to "".
inline constexpr std::string_view kOnnxDomain = "";
inline constexpr std::string_view kMlDomain = "ai.onnx.ml";
// Nodes the optimiser creates (fused kernels). Never accepted from a model file.
inline constexpr std::string_view kOutpostDomain = "outpost.internal";

enum class AttrType : uint8_t {
  kFloat,
  kInt,
  kString,
  kTensor,
  kFloats,
  kInts,
  kStrings,
  kTensors,
  kGraph,  // a subgraph (If's branches, Loop's and Scan's bodies)
  kOther,  // sparse tensors, type protos, lists of graphs: not interpreted
};

std::string_view AttrTypeName(AttrType type);

struct Graph;

struct Attribute {
  std::string name;
  AttrType type = AttrType::kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::shared_ptr<const Tensor> tensor;  // kTensor
  std::vector<std::shared_ptr<const Tensor>> tensors;  // kTensors
  std::shared_ptr<const Graph> graph;                  // kGraph
};

struct Node {
  std::string name;     // as in the file; may be empty
  std::string op_type;  // "Gemm"
  std::string domain;   // "" (ai.onnx), "ai.onnx.ml", ...
  int opset = 0;        // the model's opset version for `domain`
  std::vector<ValueId> inputs;   // kNoValue where an optional input is omitted
  std::vector<ValueId> outputs;  // kNoValue where an optional output is omitted
  std::vector<Attribute> attributes;

  // Null when absent.
  const Attribute* FindAttribute(std::string_view attr_name) const;
  // `node "fc1" (Gemm)`, or `node #3 (Gemm)` when unnamed; used as error context.
  std::string Describe(size_t index) const;
  // How many of `inputs` are values its subgraphs read from the enclosing graph (appended
  // after the node's own inputs, subgraph by subgraph in attribute order).
  size_t CapturedInputs() const;
};

// One dimension of a declared shape: a size, or a symbol ("batch"), or unknown.
struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string symbol;  // dim_param when value is -1; may be empty
};

// What the file declares about a value's type (graph inputs and outputs).
struct ValueInfo {
  bool is_tensor = true;     // false: sequence, map, optional or unknown kind
  bool has_type = false;     // elem_type was given
  DataType type = DataType::kFp32;
  bool has_shape = false;
  std::vector<Dim> dims;
};

struct Value {
  enum class Kind : uint8_t { kGraphInput, kConstant, kNodeOutput };
  std::string name;
  Kind kind = Kind::kNodeOutput;
  std::shared_ptr<const Tensor> constant;  // kConstant
  ValueInfo info;                          // declared type, for graph inputs and outputs
  int32_t producer = -1;                   // node index, for kNodeOutput
};

struct Graph {
  int64_t ir_version = 0;
  std::string producer_name;
  std::map<std::string, int, std::less<>> opsets;  // domain -> version
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<ValueId> inputs;   // graph inputs fed by the caller, in order
  std::vector<ValueId> outputs;  // in order; may repeat or name inputs and constants
  // Subgraphs only: the last `captured` entries of `inputs` are values of the enclosing
  // graphs that the subgraph reads by name; the owning node takes them as extra inputs.
  size_t captured = 0;

  // Adds a value and returns its id.
  ValueId AddValue(std::string name, Value::Kind kind);
};

// Checks structure: every node input and output id in range, each value produced by at most
// one node and not also a graph input or constant, graph outputs defined. Returns the nodes in
// an execution order (producers before consumers). InvalidArgument names the offending node;
// a cycle is reported naming a node on it.
Result<std::vector<int32_t>> TopologicalOrder(const Graph& graph);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_GRAPH_H_
