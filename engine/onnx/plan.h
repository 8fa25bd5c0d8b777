// CompiledModel: the immutable result of compiling a Graph, shared by every thread.
//
// Compile() binds a kernel to every node (by domain, operator and the model's opset), folds
// constant subgraphs, removes Identity and inference-mode Dropout, fuses MatMul/Gemm with
// bias and activation (pre-packing the weights), drops dead nodes, fixes the execution order
// and infers the signature (see engine/PIPELINE.md). After Compile() nothing in it changes, so one
// std::shared_ptr<const CompiledModel> serves any number of Sessions on any threads.
#ifndef OUTPOST_ENGINE_ONNX_PLAN_H_
#define OUTPOST_ENGINE_ONNX_PLAN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/onnx/graph.h"
#include "engine/onnx/kernel.h"
#include "engine/tensor.h"

namespace outpost::engine::onnx {

struct CompileOptions {
  // Constant folding, Identity/Dropout removal and fusion. Off only to test kernels alone.
  bool optimize = true;
  // A constant subgraph is folded only when each result is at most this large.
  uint64_t max_folded_bytes = uint64_t{64} << 20;
  // Largest single intermediate value, and largest total memory of one run's plan.
  uint64_t max_value_bytes = uint64_t{1} << 31;
  uint64_t max_plan_bytes = uint64_t{4} << 30;
  // Input-shape plans each Session keeps (most recently used first).
  size_t plan_cache_size = 4;
  // Probe the graph for its signature. Off for subgraphs (If, Loop, Scan), whose inputs
  // read from the enclosing graph declare no type; their owner plans them per run.
  bool infer_signature = true;
  // Threads per run (intra-op parallelism; thread_pool.h): above 1 the model owns a pool of
  // threads - 1 workers, made here, that the convolutions split their work over. Subgraphs
  // (infer_signature off) make no pool of their own and run on their owner's thread.
  int threads = 1;
  // FLOAT 2-D convolutions with constant weights run through oneDNN (onednn_conv.h) where it
  // takes the geometry and epilogue with an optimised implementation; off: the engine's own
  // kernels (conv2d.h) everywhere. oneDNN runs on OpenMP with a team of `threads`. Off by
  // default: oneDNN 2.6's execute() allocates on every call (engine/PIPELINE.md, "oneDNN
  // adapter"), which breaks the engine's no-allocation-per-run guarantee.
  bool onednn = false;
};

class IntraOpPool;  // thread_pool.h

class CompiledModel {
 public:
  // One node to execute, in order.
  struct Step {
    int32_t node = 0;  // index into graph().nodes, for error messages
    const Kernel* kernel = nullptr;
    std::vector<ValueId> inputs;
    std::vector<ValueId> outputs;
  };

  // Compiles `graph`. Errors name the node: Unimplemented for an operator (or operator
  // version) the engine lacks, InvalidArgument for a malformed node or an ill-typed graph,
  // ResourceExhausted for a value beyond the limits.
  static Result<std::shared_ptr<const CompiledModel>> Compile(
      Graph graph, const CompileOptions& options = {},
      const KernelRegistry& registry = KernelRegistry::Builtin());

  const Graph& graph() const { return graph_; }
  const CompileOptions& options() const { return options_; }
  const std::vector<Step>& steps() const { return steps_; }
  // Graph inputs the caller feeds, and the outputs, as value ids.
  const std::vector<ValueId>& inputs() const { return graph_.inputs; }
  const std::vector<ValueId>& outputs() const { return graph_.outputs; }
  // The model's inputs and outputs with names, element types and shapes (-1 for a dimension
  // that varies: a symbolic batch, or one that depends on data). An input whose rank the file
  // does not declare has an empty shape.
  const Signature& signature() const { return signature_; }
  // Non-null for values that are constants (initializers and folded results).
  const Tensor* constant(ValueId id) const {
    return constants_[static_cast<size_t>(id)].get();
  }
  // The intra-op pool, or null when the model runs on one thread.
  IntraOpPool* intra_op_pool() const { return pool_.get(); }
  // "node \"fc1\" (Gemm)" for step i.
  std::string DescribeStep(size_t i) const;

 private:
  friend void RemoveIdentities(CompiledModel& model);
  friend Status FuseDense(CompiledModel& model, const KernelRegistry& registry);
  friend Status FuseConv(CompiledModel& model, const KernelRegistry& registry);
  friend Status FoldQdq(CompiledModel& model, const KernelRegistry& registry);

  // A graph output as the file declares it (optimisation may rewire the value it names).
  struct OutputDecl {
    std::string name;
    ValueInfo info;
  };

  CompiledModel() = default;
  // Compile() for the graph as given (Compile adds the FLOAT fallback of 16-bit models).
  static Result<std::shared_ptr<const CompiledModel>> CompileGraph(
      Graph graph, const CompileOptions& options, const KernelRegistry& registry);
  Status BindKernels(const KernelRegistry& registry);
  // (Re)creates the kernel of node `index` from its current inputs and attributes.
  Status RebindKernel(int32_t index, const KernelRegistry& registry);
  Status FoldConstants();
  void RemoveDeadNodes();
  Status InferSignature();

  Graph graph_;
  CompileOptions options_;
  std::shared_ptr<IntraOpPool> pool_;  // threads > 1 only
  std::vector<OutputDecl> output_decls_;
  std::vector<int32_t> order_;  // node indices, producers first
  std::vector<std::unique_ptr<Kernel>> kernels_;  // per node; null for removed nodes
  std::vector<std::shared_ptr<const Tensor>> constants_;  // per value
  std::vector<Step> steps_;
  Signature signature_;
};

// The operators of `graph` that `registry` lacks, as "Op (opset N)", one entry per distinct
// operator and version. Empty when every node has a kernel.
std::vector<std::string> UnsupportedOperators(
    const Graph& graph, const KernelRegistry& registry = KernelRegistry::Builtin());

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_PLAN_H_
