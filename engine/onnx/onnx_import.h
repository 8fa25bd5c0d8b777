// The ONNX file adapter: the only part of Outpost that sees the ONNX protobuf types.
//
// Import turns a serialized ModelProto into a Graph (graph.h): opset imports, graph inputs
// and outputs with their declared types, initializers (raw_data, typed fields, or external
// data files beside the model), and the nodes with their attributes. Export does the
// reverse for the graphs Outpost writes itself (the XGBoost converter).
//
// Model files are untrusted: every size is bounded by ImportOptions, every count is checked
// against the bytes present, and every failure is a Status (InvalidArgument for a malformed
// or inconsistent file, naming the node, value or initializer; ResourceExhausted for a size
// beyond a limit; Unimplemented for valid ONNX that the engine does not read, such as sparse
// initializers or model-local functions; NotFound for a missing file). Nothing here aborts
// or throws. Thread-safe: no shared state.
#ifndef OUTPOST_ENGINE_ONNX_ONNX_IMPORT_H_
#define OUTPOST_ENGINE_ONNX_ONNX_IMPORT_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "engine/onnx/graph.h"
#include "engine/tensor.h"

namespace outpost::engine::onnx {

struct ImportOptions {
  // Largest model file read.
  uint64_t max_model_bytes = uint64_t{1} << 31;
  // Largest single tensor (initializer, tensor attribute, external data segment).
  uint64_t max_tensor_bytes = uint64_t{1} << 31;
  // Most nodes and most values (node outputs + inputs + initializers) in a graph.
  size_t max_nodes = 1'000'000;
  size_t max_values = 4'000'000;
  // Most dimensions of any tensor or declared shape.
  size_t max_rank = 32;
};

// Parses a model. `model_dir` is the folder that external data locations are relative to
// (empty: external data is refused). External data must stay inside that folder.
Result<Graph> ImportModel(std::span<const std::byte> bytes, const std::string& model_dir,
                          const ImportOptions& options = {});

// Reads and parses a model file; external data is resolved beside it.
Result<Graph> ImportModelFile(const std::string& path, const ImportOptions& options = {});

// Parses one serialized TensorProto (the .pb files of the ONNX test suite) into a Tensor.
// STRING elements become BYTES. Unimplemented for complex types.
Result<Tensor> ImportTensor(std::span<const std::byte> bytes, const ImportOptions& options = {});

// Serializes a graph as a ModelProto (initializers as raw_data; subgraphs nested, their
// captured values referred to by name). The inverse of ImportModel for graphs the engine
// builds itself.
Result<std::string> ExportModel(const Graph& graph);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_ONNX_IMPORT_H_
