// The `onnx` backend: ONNX models (model.onnx) run by Outpost's own engine.
//
//   OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<engine::Model> model,
//                            engine::LoadOnnxModel("/repo/iris/1/model.onnx"));
//
// The model file is imported, compiled (kernels bound, constants folded, layers fused,
// weights pre-packed) and its signature inferred once, here; the result is immutable.
// Run() is thread-safe: each call borrows a Session (per-run state with cached memory plans)
// from a pool, so concurrent calls never share mutable state, and a call with input shapes
// seen before allocates nothing inside the engine.
//
// Signature: the graph's inputs and outputs in file order with their declared names and
// element types; dimensions that vary (a symbolic batch) are -1. Options may narrow it with
// the model config's declarations. A ZipMap output (a sequence of maps in ONNX) is returned
// as the [N, C] FLOAT tensor of its values, column j for the j-th class label.
#ifndef OUTPOST_ENGINE_ONNX_ONNX_MODEL_H_
#define OUTPOST_ENGINE_ONNX_ONNX_MODEL_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/model.h"
#include "engine/onnx/onnx_import.h"
#include "engine/onnx/plan.h"
#include "engine/tensor.h"

namespace outpost::engine {

struct OnnxOptions {
  // Declarations from the model config (may be empty). When given they must list the
  // model's inputs (outputs) in order with the same names and element types; their shapes
  // may fix dimensions the model leaves variable, and must not contradict fixed ones.
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  // Limits on the model file and on memory per run.
  onnx::ImportOptions import;
  onnx::CompileOptions compile;
  // Idle sessions kept for reuse between calls (each holds its memory plans and arena).
  size_t max_idle_sessions = 16;
};

// Loads and compiles `path`. Errors: NotFound when the file is missing; InvalidArgument for
// a malformed or inconsistent model, naming the node or value; Unimplemented naming the
// node whose operator (or operator version) the engine lacks; ResourceExhausted when a size
// passes the options' limits.
Result<std::unique_ptr<Model>> LoadOnnxModel(const std::string& path,
                                             const OnnxOptions& options = {});

// As LoadOnnxModel, from the bytes of a model file (external data is refused).
Result<std::unique_ptr<Model>> LoadOnnxModelFromBytes(std::span<const std::byte> bytes,
                                                      const OnnxOptions& options = {});

}  // namespace outpost::engine

#endif  // OUTPOST_ENGINE_ONNX_ONNX_MODEL_H_
