// Session: the per-run state of the ONNX engine.
//
// A Session runs one CompiledModel. For each distinct set of input shapes it builds a
// ShapePlan once: every value's type and shape, shape arithmetic evaluated ahead of time,
// and a static memory plan (one arena, offsets chosen by liveness). Later runs with the same
// input shapes execute the precomputed steps with no allocation at all, provided the caller
// passes back the same output tensors (they are reused when type and shape still match).
//
// A node whose output shape depends on data only known during the run (for example Reshape
// to a shape fed as a graph input) makes the rest of its plan dynamic: those shapes are
// computed during each run and their buffers grow as needed and are kept.
//
// Thread-compatible: one thread at a time per Session. Many Sessions may share one
// CompiledModel.
#ifndef OUTPOST_ENGINE_ONNX_SESSION_H_
#define OUTPOST_ENGINE_ONNX_SESSION_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/onnx/kernel.h"
#include "engine/onnx/plan.h"
#include "engine/tensor.h"

namespace outpost::engine::onnx {

// The shapes of every value for one set of input shapes, with the memory plan. Internal to
// the engine; built and owned by a Session.
struct ShapePlan {
  // The key: input types and shapes this plan is for.
  std::vector<DataType> input_types;
  std::vector<Shape> input_shapes;
  // Per value: planned type and shape (defined = false for values of dynamic steps), and
  // contents for constants and values evaluated while planning.
  std::vector<ValueSlot> slots;
  // Owners of the values evaluated while planning (slots point into them).
  std::vector<std::unique_ptr<Tensor>> evaluated;
  // Steps (indices into CompiledModel::steps()) run with planned shapes, then those whose
  // shapes are computed during the run.
  std::vector<uint32_t> static_steps;
  std::vector<uint32_t> dynamic_steps;
  // Per value: offset in the arena, or -1.
  std::vector<int64_t> offsets;
  // Per value: element storage of planned BYTES values (empty otherwise).
  std::vector<std::vector<std::string>> strings;
  size_t arena_bytes = 0;
  size_t scratch_offset = 0;
  size_t scratch_bytes = 0;
};


// Infers every value's type and shape for the given inputs, evaluating shape arithmetic
// whose inputs are known. Used by Session and by the compiler's signature probing.
// Errors name the node.
Result<std::unique_ptr<ShapePlan>> BuildShapePlan(const CompiledModel& model,
                                                  std::span<const DataType> input_types,
                                                  std::span<const Shape> input_shapes);

// Computes one kernel whose inputs all have values in `slots` (their types and shapes and
// the outputs' were inferred already); the outputs are allocated as tensors appended to
// `owned` and their slots get values. Used to evaluate shape arithmetic while planning and
// to fold constants while compiling.
Status EvaluateStep(const Kernel& kernel, std::span<ValueSlot> slots,
                    std::span<const ValueId> inputs, std::span<const ValueId> outputs,
                    size_t scratch_bytes, std::vector<std::unique_ptr<Tensor>>& owned);

// The type and shape a plan gives a value; false when only known during the run.
bool PlannedValue(const ShapePlan& plan, ValueId id, DataType* type, Shape* shape);

class Session {
 public:
  explicit Session(std::shared_ptr<const CompiledModel> model);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const CompiledModel& model() const { return *model_; }

  // Runs the model. `inputs` are in graph-input order. `outputs` is resized to the number of
  // graph outputs; an existing tensor is overwritten in place when its type and shape match,
  // otherwise replaced. Errors: InvalidArgument for a wrong input count, type or shape
  // (naming the input) and for data a kernel rejects (naming the node); ResourceExhausted
  // when a value or the plan exceeds the compile options' limits.
  Status Run(std::span<const Tensor> inputs, std::vector<Tensor>& outputs);

 private:
  Result<ShapePlan*> FindOrBuildPlan(std::span<const Tensor> inputs);
  void Bind(ShapePlan& plan);
  Status RunDynamicStep(size_t step_index);

  std::shared_ptr<const CompiledModel> model_;
  std::vector<std::unique_ptr<ShapePlan>> plans_;  // most recently used first
  ShapePlan* bound_ = nullptr;                     // the plan refs_ are bound to
  // The arena: 64-byte aligned, at least the largest bound plan's size.
  std::byte* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  std::vector<TensorRef> refs_;  // per value
  // Dynamic part of a plan: slots and buffers of values whose shapes are computed per run.
  std::vector<ValueSlot> dyn_slots_;
  std::vector<std::vector<std::byte>> dyn_buffers_;
  std::vector<std::vector<std::string>> dyn_strings_;
  std::vector<std::byte> dyn_scratch_;
};

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_SESSION_H_
