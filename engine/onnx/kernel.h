// Kernels: the code that computes one operator, and the contexts it sees.
//
// A Kernel is created once per node when a model is compiled, with the node's attributes
// already parsed and validated and its constant inputs available for pre-packing. It is then
// immutable and shared by every thread: Infer() and Compute() are const and keep no state.
//
//   Infer()    output types and shapes from input types and shapes (and, where an output's
//              shape depends on an input's contents, from those contents when they are known).
//              Called when a plan is built for new input shapes, never on the hot path of a
//              planned run. Errors: InvalidArgument for inputs the operator rejects.
//   Compute()  writes the outputs, whose buffers are already sized as Infer() said. Inputs
//              are read-only. Errors only for data-dependent faults (an index out of range).
//
// Registration is explicit: KernelRegistry::Builtin() (kernel.cc) calls the Register*Kernels
// function of each kernels_*.cc file, which lists its operators with their opset ranges; there
// is no static-initialiser or macro registration.
#ifndef OUTPOST_ENGINE_ONNX_KERNEL_H_
#define OUTPOST_ENGINE_ONNX_KERNEL_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/onnx/graph.h"
#include "engine/tensor.h"

namespace outpost::engine::onnx {

// A view of one value's data. Does not own anything: the data lives in a Session's arena,
// in a constant of the compiled model, or in the caller's input tensor.
struct TensorRef {
  DataType type = DataType::kFp32;
  std::span<const int64_t> shape;
  int64_t count = 0;
  void* data = nullptr;            // numeric and BOOL elements (BOOL: one byte, 0 or 1)
  std::string* strings = nullptr;  // BYTES elements

  size_t rank() const { return shape.size(); }
  template <typename T>
  T* mut() const {
    return static_cast<T*>(data);
  }
  template <typename T>
  const T* get() const {
    return static_cast<const T*>(data);
  }
};

// A TensorRef over a Tensor.
TensorRef RefOf(const Tensor& t);
TensorRef RefOf(Tensor& t);

// The planner's knowledge of one value while output shapes are inferred.
struct ValueSlot {
  bool defined = false;  // type and shape are known
  DataType type = DataType::kFp32;
  Shape shape;
  // Contents, when known while planning (constants, results of shape arithmetic) and always
  // at run time for nodes whose shapes are computed during the run.
  bool has_value = false;
  TensorRef value;
};

class InferContext {
 public:
  InferContext(std::span<ValueSlot> slots, std::span<const ValueId> inputs,
               std::span<const ValueId> outputs)
      : slots_(slots), inputs_(inputs), outputs_(outputs) {}

  // Number of inputs including omitted optional ones; has_input() is false for those.
  size_t num_inputs() const { return inputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != kNoValue; }
  DataType input_type(size_t i) const { return slot(inputs_[i]).type; }
  const Shape& input_shape(size_t i) const { return slot(inputs_[i]).shape; }
  // The input's contents, or null when they are not known yet (see Defer()).
  const TensorRef* input_value(size_t i) const {
    const ValueSlot& s = slot(inputs_[i]);
    return s.has_value ? &s.value : nullptr;
  }

  size_t num_outputs() const { return outputs_.size(); }
  bool has_output(size_t i) const { return i < outputs_.size() && outputs_[i] != kNoValue; }
  // Declares output i. Omitted optional outputs are ignored.
  void SetOutput(size_t i, DataType type, Shape shape);

  // Asks for a scratch buffer of `bytes` (64-byte aligned) during Compute().
  void RequestScratch(size_t bytes) {
    if (bytes > scratch_bytes_) scratch_bytes_ = bytes;
  }
  size_t scratch_bytes() const { return scratch_bytes_; }

  // A kernel whose output shape depends on an input's contents that are not known yet
  // returns Defer(): its shapes are then computed during each run, when all contents are
  // known.
  Status Defer() {
    deferred_ = true;
    return Status();
  }
  bool deferred() const { return deferred_; }

 private:
  const ValueSlot& slot(ValueId id) const { return slots_[static_cast<size_t>(id)]; }

  std::span<ValueSlot> slots_;
  std::span<const ValueId> inputs_;
  std::span<const ValueId> outputs_;
  size_t scratch_bytes_ = 0;
  bool deferred_ = false;
};

class ComputeContext {
 public:
  ComputeContext(std::span<TensorRef> values, std::span<const ValueId> inputs,
                 std::span<const ValueId> outputs, std::span<std::byte> scratch)
      : values_(values), inputs_(inputs), outputs_(outputs), scratch_(scratch) {}

  size_t num_inputs() const { return inputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != kNoValue; }
  const TensorRef& input(size_t i) const { return values_[static_cast<size_t>(inputs_[i])]; }
  size_t num_outputs() const { return outputs_.size(); }
  bool has_output(size_t i) const { return i < outputs_.size() && outputs_[i] != kNoValue; }
  const TensorRef& output(size_t i) const { return values_[static_cast<size_t>(outputs_[i])]; }
  // At least the bytes asked for with RequestScratch(), 64-byte aligned.
  std::span<std::byte> scratch() const { return scratch_; }

 private:
  std::span<TensorRef> values_;
  std::span<const ValueId> inputs_;
  std::span<const ValueId> outputs_;
  std::span<std::byte> scratch_;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual Status Infer(InferContext& ctx) const = 0;
  virtual Status Compute(ComputeContext& ctx) const = 0;
  // True for kernels whose outputs depend only on input shapes (Shape, Size): the planner
  // computes them ahead of the run even when the input contents are unknown.
  virtual bool ReadsOnlyShapes() const { return false; }
};

struct CompileOptions;  // plan.h

// What a kernel factory sees of its node: attributes (type-checked accessors), the opset,
// the inputs that are constants of the model, and the model's compile options (which the
// control-flow kernels pass on to their subgraphs).
class KernelBuildContext {
 public:
  KernelBuildContext(const Node& node, std::vector<const Tensor*> constant_inputs,
                     const CompileOptions* options = nullptr)
      : node_(node), constants_(std::move(constant_inputs)), options_(options) {}

  // Null when the caller gave none.
  const CompileOptions* compile_options() const { return options_; }

  const Node& node() const { return node_; }
  int opset() const { return node_.opset; }
  size_t num_inputs() const { return node_.inputs.size(); }
  bool has_input(size_t i) const { return i < node_.inputs.size() && node_.inputs[i] != kNoValue; }
  size_t num_outputs() const { return node_.outputs.size(); }
  bool has_output(size_t i) const {
    return i < node_.outputs.size() && node_.outputs[i] != kNoValue;
  }
  // Non-null when input i is a constant of the model (initializer or folded value).
  const Tensor* constant_input(size_t i) const {
    return i < constants_.size() ? constants_[i] : nullptr;
  }

  bool Has(std::string_view name) const { return node_.FindAttribute(name) != nullptr; }
  // Each accessor returns the default when the attribute is absent and InvalidArgument when
  // it has another type.
  Result<int64_t> Int(std::string_view name, int64_t fallback) const;
  Result<float> Float(std::string_view name, float fallback) const;
  Result<std::string> String(std::string_view name, std::string fallback) const;
  Result<std::vector<int64_t>> Ints(std::string_view name) const;
  Result<std::vector<float>> Floats(std::string_view name) const;
  Result<std::vector<std::string>> Strings(std::string_view name) const;
  // Null when absent.
  Result<std::shared_ptr<const Tensor>> TensorAttr(std::string_view name) const;

  // Input count checks: InvalidArgument "expects 2 to 3 inputs, got 1".
  Status ExpectInputs(size_t min, size_t max) const;
  Status ExpectOutputs(size_t min, size_t max) const;

 private:
  const Node& node_;
  std::vector<const Tensor*> constants_;
  const CompileOptions* options_;
};

using KernelFactory = Result<std::unique_ptr<Kernel>> (*)(const KernelBuildContext& ctx);

// One operator implementation: valid for models importing `domain` at versions
// [since, until] (inclusive).
struct KernelDef {
  std::string_view domain;
  std::string_view op_type;
  int since = 1;
  int until = 1000;
  KernelFactory create = nullptr;
};

class KernelRegistry {
 public:
  // Adds a definition. Definitions of one operator must not overlap in version.
  void Add(const KernelDef& def);
  // The definition for a model whose opset for `domain` is `opset`, or null.
  const KernelDef* Find(std::string_view domain, std::string_view op_type, int opset) const;
  // Whether any version of the operator is implemented.
  bool HasOperator(std::string_view domain, std::string_view op_type) const;
  // Every operator, as "domain.Op" (or "Op" for ai.onnx), sorted.
  std::vector<std::string> OperatorNames() const;

  // The engine's operators. Built on first use; immutable afterwards (thread-safe).
  static const KernelRegistry& Builtin();

 private:
  std::map<std::pair<std::string, std::string>, std::vector<KernelDef>, std::less<>> defs_;
};

// The registration functions of each kernel file (called by KernelRegistry::Builtin()).
void RegisterUnaryKernels(KernelRegistry& registry);
void RegisterBinaryKernels(KernelRegistry& registry);
void RegisterReduceKernels(KernelRegistry& registry);
void RegisterShapeKernels(KernelRegistry& registry);
void RegisterTensorKernels(KernelRegistry& registry);
void RegisterNnKernels(KernelRegistry& registry);
void RegisterMlKernels(KernelRegistry& registry);
void RegisterTreeKernels(KernelRegistry& registry);
void RegisterConvKernels(KernelRegistry& registry);
void RegisterNormKernels(KernelRegistry& registry);
void RegisterIndexKernels(KernelRegistry& registry);
void RegisterRnnKernels(KernelRegistry& registry);
void RegisterConvTransposeKernels(KernelRegistry& registry);
void RegisterResizeKernels(KernelRegistry& registry);
void RegisterDetectKernels(KernelRegistry& registry);
void RegisterEinsumKernels(KernelRegistry& registry);
void RegisterSampleKernels(KernelRegistry& registry);
void RegisterSignalKernels(KernelRegistry& registry);
void RegisterExtraKernels(KernelRegistry& registry);
void RegisterQuantKernels(KernelRegistry& registry);
void RegisterControlKernels(KernelRegistry& registry);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_KERNEL_H_
