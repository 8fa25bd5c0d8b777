#include "engine/onnx/plan.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "engine/onnx/optimizer.h"
#include "engine/onnx/session.h"
#include "engine/onnx/thread_pool.h"

namespace outpost::engine::onnx {

namespace {

std::string OpName(const Node& node) {
  return node.domain.empty() ? node.op_type : node.domain + "." + node.op_type;
}

}  // namespace

std::vector<std::string> UnsupportedOperators(const Graph& graph,
                                              const KernelRegistry& registry) {
  std::set<std::string> missing;
  for (const Node& node : graph.nodes) {
    if (registry.Find(node.domain, node.op_type, node.opset) == nullptr) {
      missing.insert(OpName(node) + " (opset " + std::to_string(node.opset) + ")");
    }
  }
  return {missing.begin(), missing.end()};
}

std::string CompiledModel::DescribeStep(size_t i) const {
  const int32_t n = steps_[i].node;
  return graph_.nodes[static_cast<size_t>(n)].Describe(static_cast<size_t>(n));
}

Status CompiledModel::BindKernels(const KernelRegistry& registry) {
  kernels_.resize(graph_.nodes.size());
  for (size_t n = 0; n < graph_.nodes.size(); ++n) {
    OUTPOST_RETURN_IF_ERROR(RebindKernel(static_cast<int32_t>(n), registry));
  }
  return Status();
}

Status CompiledModel::RebindKernel(int32_t index, const KernelRegistry& registry) {
  const Node& node = graph_.nodes[static_cast<size_t>(index)];
  const KernelDef* def = registry.Find(node.domain, node.op_type, node.opset);
  if (def == nullptr) {
    const std::string where = node.Describe(static_cast<size_t>(index));
    if (registry.HasOperator(node.domain, node.op_type)) {
      return UnimplementedError(where + ": operator " + OpName(node) +
                                " is not supported at opset " + std::to_string(node.opset));
    }
    return UnimplementedError(where + ": operator " + OpName(node) + " is not supported");
  }
  std::vector<const Tensor*> constant_inputs;
  for (ValueId id : node.inputs) {
    constant_inputs.push_back(id == kNoValue ? nullptr : constants_[static_cast<size_t>(id)].get());
  }
  KernelBuildContext ctx(node, std::move(constant_inputs), &options_);
  auto kernel = def->create(ctx);
  if (!kernel.ok()) return kernel.status().WithContext(node.Describe(static_cast<size_t>(index)));
  kernels_[static_cast<size_t>(index)] = std::move(kernel).value();
  return Status();
}

Status CompiledModel::FoldConstants() {
  const size_t nv = graph_.values.size();
  std::vector<ValueSlot> slots(nv);
  for (size_t v = 0; v < nv; ++v) {
    if (const Tensor* c = constants_[v].get()) {
      slots[v].defined = true;
      slots[v].type = c->type();
      slots[v].shape = c->shape();
      slots[v].has_value = true;
      slots[v].value = RefOf(*c);
    }
  }
  for (int32_t n : order_) {
    if (!kernels_[static_cast<size_t>(n)]) continue;
    Node& node = graph_.nodes[static_cast<size_t>(n)];
    bool all_constant = true;
    for (ValueId id : node.inputs) {
      if (id != kNoValue && !slots[static_cast<size_t>(id)].has_value) all_constant = false;
    }
    if (!all_constant) continue;
    InferContext ctx(slots, node.inputs, node.outputs);
    Status st = kernels_[static_cast<size_t>(n)]->Infer(ctx);
    if (!st.ok()) return st.WithContext(node.Describe(static_cast<size_t>(n)));
    if (ctx.deferred()) continue;
    bool small = true;
    for (ValueId id : node.outputs) {
      if (id == kNoValue) continue;
      const ValueSlot& s = slots[static_cast<size_t>(id)];
      auto count = ElementCount(s.shape);
      if (!count.ok()) return count.status().WithContext(node.Describe(static_cast<size_t>(n)));
      const uint64_t elem = s.type == DataType::kBytes ? 32 : ElementSize(s.type);
      if (static_cast<uint64_t>(*count) > options_.max_folded_bytes / std::max<uint64_t>(elem, 1)) {
        small = false;
      }
    }
    if (!small) continue;
    std::vector<std::unique_ptr<Tensor>> made;
    st = EvaluateStep(*kernels_[static_cast<size_t>(n)], slots, node.inputs, node.outputs,
                      ctx.scratch_bytes(), made);
    if (!st.ok()) return st.WithContext(node.Describe(static_cast<size_t>(n)));
    size_t k = 0;
    for (ValueId id : node.outputs) {
      if (id == kNoValue) continue;
      std::shared_ptr<const Tensor> t(std::move(made[k++]));
      Value& v = graph_.values[static_cast<size_t>(id)];
      v.kind = Value::Kind::kConstant;
      v.producer = -1;
      v.constant = t;
      constants_[static_cast<size_t>(id)] = t;
      slots[static_cast<size_t>(id)].value = RefOf(*t);
    }
    kernels_[static_cast<size_t>(n)].reset();
  }
  return Status();
}

void CompiledModel::RemoveDeadNodes() {
  std::vector<bool> used(graph_.values.size(), false);
  for (ValueId id : graph_.outputs) used[static_cast<size_t>(id)] = true;
  for (size_t i = order_.size(); i-- > 0;) {
    const int32_t n = order_[i];
    if (!kernels_[static_cast<size_t>(n)]) continue;
    const Node& node = graph_.nodes[static_cast<size_t>(n)];
    bool live = false;
    for (ValueId id : node.outputs) {
      if (id != kNoValue && used[static_cast<size_t>(id)]) live = true;
    }
    if (!live) {
      kernels_[static_cast<size_t>(n)].reset();
      continue;
    }
    for (ValueId id : node.inputs) {
      if (id != kNoValue) used[static_cast<size_t>(id)] = true;
    }
  }
}

Status CompiledModel::InferSignature() {
  signature_ = Signature();
  bool all_shaped = true;
  bool any_symbolic = false;
  std::vector<DataType> types;
  for (ValueId id : graph_.inputs) {
    const Value& v = graph_.values[static_cast<size_t>(id)];
    TensorSpec spec;
    spec.name = v.name;
    if (!v.info.has_type) {
      return InvalidArgumentError("graph input \"" + v.name + "\" declares no element type");
    }
    spec.type = v.info.type;
    if (v.info.has_shape) {
      for (const Dim& d : v.info.dims) {
        spec.shape.push_back(d.value);
        if (d.value < 0) any_symbolic = true;
      }
    } else {
      all_shaped = false;
    }
    types.push_back(spec.type);
    signature_.inputs.push_back(std::move(spec));
  }

  // Probe the graph with the symbolic dimensions at several sizes: first two sets of distinct
  // sizes (output dimensions that agree between them are fixed, the others vary with the
  // input, typically the batch), then all ones. A model fails to load only when every probe
  // fails: with fixed inputs that is the one probe; with symbolic ones the probe sizes may be
  // sizes the model does not accept (a Reshape that needs a multiple of 4) while others work.
  std::unique_ptr<ShapePlan> probes[2];
  if (all_shaped) {
    Status first_error;
    int succeeded = 0;
    const int attempts = any_symbolic ? 3 : 1;
    for (int p = 0; p < attempts && succeeded < 2; ++p) {
      std::map<std::string, int64_t> symbols;
      int64_t next = 0;
      std::vector<Shape> shapes;
      for (ValueId id : graph_.inputs) {
        const Value& v = graph_.values[static_cast<size_t>(id)];
        Shape s;
        for (const Dim& d : v.info.dims) {
          if (d.value >= 0) {
            s.push_back(d.value);
            continue;
          }
          int64_t k;
          if (!d.symbol.empty()) {
            auto [it, inserted] = symbols.emplace(d.symbol, next);
            if (inserted) ++next;
            k = it->second;
          } else {
            k = next++;
          }
          s.push_back(p == 0 ? 2 + k : (p == 1 ? 9 + 2 * k : 1));
        }
        shapes.push_back(std::move(s));
      }
      auto plan = BuildShapePlan(*this, types, shapes);
      if (!plan.ok()) {
        if (first_error.ok()) first_error = plan.status();
        continue;
      }
      // The all-ones probe gives types but cannot tell fixed dimensions from varying ones.
      if (p == 2) {
        if (succeeded == 0) probes[0] = std::move(plan).value();
        succeeded = 1;
        break;
      }
      probes[succeeded++] = std::move(plan).value();
    }
    if (succeeded == 0) return first_error;
  }
  for (size_t o = 0; o < graph_.outputs.size(); ++o) {
    const OutputDecl& decl = output_decls_[o];
    TensorSpec spec;
    spec.name = decl.name;
    spec.type = decl.info.has_type ? decl.info.type : DataType::kFp32;
    for (const Dim& d : decl.info.dims) spec.shape.push_back(d.value);
    DataType ta, tb;
    Shape sa, sb;
    if (probes[0] && probes[1] && PlannedValue(*probes[0], graph_.outputs[o], &ta, &sa) &&
        PlannedValue(*probes[1], graph_.outputs[o], &tb, &sb)) {
      spec.type = ta;
      if (sa.size() == sb.size()) {
        spec.shape.clear();
        for (size_t d = 0; d < sa.size(); ++d) spec.shape.push_back(sa[d] == sb[d] ? sa[d] : -1);
      }
    } else if (probes[0] && PlannedValue(*probes[0], graph_.outputs[o], &ta, &sa)) {
      spec.type = ta;
      if (!any_symbolic) spec.shape = sa;  // the probe had the real, fixed input shapes
    }
    signature_.outputs.push_back(std::move(spec));
  }
  return Status();
}

Result<std::shared_ptr<const CompiledModel>> CompiledModel::Compile(
    Graph graph, const CompileOptions& options, const KernelRegistry& registry) {
  // A model with FLOAT16 or BFLOAT16 values runs as written when every kernel it reaches
  // accepts them; otherwise it runs in FLOAT (PromoteHalfFloats, optimizer.h), its signature
  // unchanged. When neither compiles, the error is the one of the model as written.
  std::optional<Graph> original;
  if (HasHalfFloats(graph)) original = graph;
  auto native = CompileGraph(std::move(graph), options, registry);
  if (native.ok() || !original) return native;
  std::optional<Graph> promoted = PromoteHalfFloats(*original);
  original.reset();
  if (!promoted) return native;
  auto in_float = CompileGraph(std::move(*promoted), options, registry);
  return in_float.ok() ? in_float : native;
}

Result<std::shared_ptr<const CompiledModel>> CompiledModel::CompileGraph(
    Graph graph, const CompileOptions& options, const KernelRegistry& registry) {
  std::shared_ptr<CompiledModel> m(new CompiledModel());
  m->graph_ = std::move(graph);
  m->options_ = options;
  Graph& g = m->graph_;
  for (ValueId id : g.inputs) {
    const Value& v = g.values[static_cast<size_t>(id)];
    if (!v.info.is_tensor) {
      return UnimplementedError("graph input \"" + v.name +
                                "\" is a sequence, map or optional; only tensors are supported");
    }
  }
  for (ValueId id : g.outputs) {
    const Value& v = g.values[static_cast<size_t>(id)];
    // ZipMap's sequence of maps is returned as its [N, C] tensor of probabilities.
    const bool zipmap = v.kind == Value::Kind::kNodeOutput && v.producer >= 0 &&
                        g.nodes[static_cast<size_t>(v.producer)].op_type == "ZipMap" &&
                        g.nodes[static_cast<size_t>(v.producer)].domain == kMlDomain;
    if (!v.info.is_tensor && !zipmap) {
      return UnimplementedError("graph output \"" + v.name +
                                "\" is a sequence, map or optional; only tensors are supported");
    }
    ValueInfo info = v.info;
    if (zipmap) info = ValueInfo();
    m->output_decls_.push_back({v.name, std::move(info)});
  }
  // Subgraphs (compiled without a signature) run on their owner's thread: no pool of their own.
  if (options.threads > 1 && options.infer_signature) {
    m->pool_ = std::make_shared<IntraOpPool>(options.threads);
  }
  OUTPOST_ASSIGN_OR_RETURN(m->order_, TopologicalOrder(g));
  m->constants_.resize(g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (g.values[v].kind == Value::Kind::kConstant) m->constants_[v] = g.values[v].constant;
  }
  OUTPOST_RETURN_IF_ERROR(m->BindKernels(registry));
  if (options.optimize) {
    OUTPOST_RETURN_IF_ERROR(m->FoldConstants());
    RemoveIdentities(*m);
    OUTPOST_RETURN_IF_ERROR(FoldQdq(*m, registry));
    OUTPOST_RETURN_IF_ERROR(FuseDense(*m, registry));
    OUTPOST_RETURN_IF_ERROR(FuseConv(*m, registry));
  }
  m->RemoveDeadNodes();
  for (int32_t n : m->order_) {
    const Kernel* k = m->kernels_[static_cast<size_t>(n)].get();
    if (k == nullptr) continue;
    const Node& node = g.nodes[static_cast<size_t>(n)];
    m->steps_.push_back({n, k, node.inputs, node.outputs});
  }
  if (options.infer_signature) OUTPOST_RETURN_IF_ERROR(m->InferSignature());
  return std::shared_ptr<const CompiledModel>(std::move(m));
}

}  // namespace outpost::engine::onnx
