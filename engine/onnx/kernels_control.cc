// Control flow: If, Loop and Scan (opset 8's batched form without sequence_lens, and 9 on). Their subgraphs are compiled once,
// with the model, into CompiledModels of their own; values a subgraph reads from the
// enclosing graph arrive as the node's extra inputs (graph.h, Node::CapturedInputs()).
//
// Which branch runs and how often a body runs depend on the data, so these nodes are planned
// as dynamic (Infer() defers until every input is known): at run time Infer() executes the
// subgraphs to learn the output shapes, and the Compute() that follows copies those results
// (it executes again only when its inputs differ from what Infer() saw on this thread).
// Each execution uses a fresh Session (one per loop, its plan reused by every iteration), so
// these nodes allocate; the rest of the model keeps its static plan.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

#include "engine/onnx/kernel_util.h"
#include "engine/onnx/plan.h"
#include "engine/onnx/session.h"

namespace outpost::engine::onnx {
namespace {

// Most iterations a Loop or Scan may run, so that a hostile model cannot run forever.
inline constexpr int64_t kMaxIterations = int64_t{1} << 20;

Tensor ToTensor(const TensorRef& r) {
  Tensor t(r.type, Shape(r.shape.begin(), r.shape.end()));
  if (r.type == DataType::kBytes) {
    std::copy_n(r.strings, r.count, t.strings().begin());
  } else if (r.count > 0) {
    std::memcpy(t.data(), r.data, t.byte_size());
  }
  return t;
}

// The subgraph of attribute `name`, compiled; InvalidArgument when absent.
Result<std::shared_ptr<const CompiledModel>> CompileSubgraph(const KernelBuildContext& ctx,
                                                             std::string_view name) {
  const Attribute* a = ctx.node().FindAttribute(name);
  if (a == nullptr || a->type != AttrType::kGraph || !a->graph) {
    return InvalidArgumentError("attribute \"" + std::string(name) + "\" (a graph) is required");
  }
  // Subgraphs live under the model's limits.
  CompileOptions options = ctx.compile_options() != nullptr ? *ctx.compile_options()
                                                            : CompileOptions();
  options.infer_signature = false;
  auto compiled = CompiledModel::Compile(*a->graph, options);
  if (!compiled.ok()) {
    return compiled.status().WithContext("attribute \"" + std::string(name) + "\"");
  }
  return std::move(compiled).value();
}

size_t CapturedOf(const KernelBuildContext& ctx, std::string_view name) {
  const Attribute* a = ctx.node().FindAttribute(name);
  return (a != nullptr && a->graph) ? a->graph->captured : 0;
}

// Runs a subgraph once. A loop keeps one Session for all its iterations, so that the plan
// for the body's input shapes is built once.
Status RunSubgraph(Session& session, std::vector<Tensor>& in, std::vector<Tensor>& out) {
  out.clear();  // tensors moved out of an earlier run must not be written in place
  return session.Run(in, out);
}

// The results of the last Infer() on this thread, with copies of the inputs they came
// from: the Compute() that follows on the same inputs (a dynamic step runs Infer() then
// Compute()) takes them instead of executing the subgraphs a second time.
struct LastExecution {
  uint64_t kernel = 0;  // ControlKernel::id_; 0: none
  std::vector<Tensor> inputs;  // BOOL-typed placeholders stand for omitted inputs
  std::vector<bool> present;
  std::vector<Tensor> results;
};

LastExecution& ThreadLastExecution() {
  thread_local LastExecution last;
  return last;
}

bool SameInputs(const LastExecution& last, const std::vector<TensorRef>& in,
                const std::vector<bool>& present) {
  if (last.present != present) return false;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!present[i]) continue;
    const Tensor& t = last.inputs[i];
    const TensorRef& r = in[i];
    if (t.type() != r.type || !std::equal(t.shape().begin(), t.shape().end(), r.shape.begin(),
                                          r.shape.end())) {
      return false;
    }
    if (r.type == DataType::kBytes) {
      if (!std::equal(t.strings().begin(), t.strings().end(), r.strings)) return false;
    } else if (r.count > 0 && std::memcmp(t.data(), r.data, t.byte_size()) != 0) {
      return false;
    }
  }
  return true;
}

// Base of the control-flow kernels: collects the inputs (or defers), runs Execute(), and
// reports or copies the results.
class ControlKernel : public Kernel {
 public:
  ControlKernel() : id_(NextId()) {}

  Status Infer(InferContext& ctx) const override {
    std::vector<TensorRef> in(ctx.num_inputs());
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i)) continue;
      const TensorRef* v = ctx.input_value(i);
      if (v == nullptr) return ctx.Defer();
      in[i] = *v;
    }
    std::vector<Tensor> results;
    OUTPOST_RETURN_IF_ERROR(Execute(in, ctx.num_outputs(), results));
    for (size_t i = 0; i < results.size(); ++i) {
      ctx.SetOutput(i, results[i].type(), results[i].shape());
    }
    LastExecution& last = ThreadLastExecution();
    last.kernel = id_;
    last.inputs.clear();
    last.present.clear();
    for (size_t i = 0; i < in.size(); ++i) {
      last.present.push_back(ctx.has_input(i));
      last.inputs.push_back(ctx.has_input(i) ? ToTensor(in[i]) : Tensor(DataType::kBool, Shape{}));
    }
    last.results = std::move(results);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    std::vector<TensorRef> in(ctx.num_inputs());
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      if (ctx.has_input(i)) in[i] = ctx.input(i);
    }
    std::vector<bool> present(ctx.num_inputs());
    for (size_t i = 0; i < ctx.num_inputs(); ++i) present[i] = ctx.has_input(i);
    std::vector<Tensor> results;
    LastExecution& last = ThreadLastExecution();
    if (last.kernel == id_ && SameInputs(last, in, present)) {
      results = std::move(last.results);
      last.kernel = 0;
    } else {
      OUTPOST_RETURN_IF_ERROR(Execute(in, ctx.num_outputs(), results));
    }
    for (size_t i = 0; i < results.size() && i < ctx.num_outputs(); ++i) {
      if (!ctx.has_output(i)) continue;
      const TensorRef& o = ctx.output(i);
      if (o.type != results[i].type() || o.count != results[i].element_count()) {
        return InternalError("a subgraph gave a different result on its second run");
      }
      CopyTensor(RefOf(results[i]), o);
    }
    return Status();
  }

 protected:
  // Computes every output of the node from its inputs (absent ones have no data).
  virtual Status Execute(const std::vector<TensorRef>& in, size_t outputs,
                         std::vector<Tensor>& results) const = 0;

 private:
  // Ids unique for the process's life (an address could be reused by another model's node).
  static uint64_t NextId() {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
  }

  uint64_t id_;
};

// ---- If ----

class IfKernel : public ControlKernel {
 public:
  IfKernel(std::shared_ptr<const CompiledModel> then_branch, size_t then_captured,
           std::shared_ptr<const CompiledModel> else_branch, size_t else_captured)
      : then_(std::move(then_branch)), then_captured_(then_captured),
        else_(std::move(else_branch)), else_captured_(else_captured) {}

 protected:
  Status Execute(const std::vector<TensorRef>& in, size_t outputs,
                 std::vector<Tensor>& results) const override {
    if (in[0].count != 1) return InvalidArgumentError("cond must hold one value");
    const bool cond = ReadDouble(in[0], 0) != 0;
    std::vector<Tensor> args;
    const size_t first = cond ? 1 : 1 + then_captured_;
    const size_t count = cond ? then_captured_ : else_captured_;
    for (size_t i = first; i < first + count; ++i) args.push_back(ToTensor(in[i]));
    Session session(cond ? then_ : else_);
    OUTPOST_RETURN_IF_ERROR(RunSubgraph(session, args, results));
    if (results.size() != outputs) {
      return InvalidArgumentError(std::string(cond ? "then_branch" : "else_branch") + " has " +
                                  std::to_string(results.size()) + " outputs, the node " +
                                  std::to_string(outputs));
    }
    return Status();
  }

 private:
  std::shared_ptr<const CompiledModel> then_;
  size_t then_captured_;
  std::shared_ptr<const CompiledModel> else_;
  size_t else_captured_;
};

Result<std::unique_ptr<Kernel>> MakeIf(const KernelBuildContext& ctx) {
  OUTPOST_ASSIGN_OR_RETURN(auto then_branch, CompileSubgraph(ctx, "then_branch"));
  OUTPOST_ASSIGN_OR_RETURN(auto else_branch, CompileSubgraph(ctx, "else_branch"));
  const size_t tc = CapturedOf(ctx, "then_branch"), ec = CapturedOf(ctx, "else_branch");
  if (ctx.num_inputs() != 1 + tc + ec || !ctx.has_input(0)) {
    return InvalidArgumentError("expects 1 input (cond)");
  }
  return std::unique_ptr<Kernel>(new IfKernel(std::move(then_branch), tc, std::move(else_branch), ec));
}

// Stacks equally shaped slices along a new `axis` (reversed when `reverse`).
Result<Tensor> Stack(const std::vector<Tensor>& slices, int64_t axis, bool reverse) {
  if (slices.empty()) return Tensor(DataType::kFp32, Shape{0});
  const Tensor& first = slices[0];
  const int64_t rank = static_cast<int64_t>(first.shape().size());
  if (axis < 0) axis += rank + 1;
  if (axis < 0 || axis > rank) return InvalidArgumentError("scan output axis out of range");
  for (const Tensor& s : slices) {
    if (s.shape() != first.shape() || s.type() != first.type()) {
      return InvalidArgumentError("scan output slices differ in shape or type");
    }
  }
  Shape shape = first.shape();
  const int64_t n = static_cast<int64_t>(slices.size());
  shape.insert(shape.begin() + axis, n);
  Tensor out(first.type(), shape);
  const int64_t outer = DimProduct(first.shape(), 0, static_cast<size_t>(axis));
  const int64_t inner = DimProduct(first.shape(), static_cast<size_t>(axis), first.shape().size());
  const TensorRef dst = RefOf(out);
  for (int64_t t = 0; t < n; ++t) {
    const TensorRef src = RefOf(slices[static_cast<size_t>(reverse ? n - 1 - t : t)]);
    for (int64_t o = 0; o < outer; ++o) {
      const int64_t from = o * inner, to = (o * n + t) * inner;
      if (src.type == DataType::kBytes) {
        std::copy_n(src.strings + from, inner, dst.strings + to);
      } else {
        const size_t es = ElementSize(src.type);
        std::memcpy(static_cast<std::byte*>(dst.data) + to * static_cast<int64_t>(es),
                    static_cast<const std::byte*>(src.data) + from * static_cast<int64_t>(es),
                    static_cast<size_t>(inner) * es);
      }
    }
  }
  return out;
}

// ---- Loop ----

class LoopKernel : public ControlKernel {
 public:
  LoopKernel(std::shared_ptr<const CompiledModel> body, size_t captured)
      : body_(std::move(body)), captured_(captured) {}

 protected:
  Status Execute(const std::vector<TensorRef>& in, size_t outputs,
                 std::vector<Tensor>& results) const override {
    const size_t carried = in.size() - 2 - captured_;
    if (outputs < carried) return InvalidArgumentError("fewer outputs than loop-carried values");
    const size_t scans = outputs - carried;
    int64_t trips = std::numeric_limits<int64_t>::max();
    if (in[0].count > 0 && in[0].data != nullptr) trips = ReadInt64(in[0], 0);
    bool cond = true;
    if (in[1].count > 0 && in[1].data != nullptr) cond = ReadDouble(in[1], 0) != 0;
    std::vector<Tensor> state;
    for (size_t i = 0; i < carried; ++i) state.push_back(ToTensor(in[2 + i]));
    std::vector<std::vector<Tensor>> scan_slices(scans);
    std::vector<Tensor> args, out;
    Session session(body_);
    int64_t it = 0;
    for (; it < trips && cond; ++it) {
      if (it >= kMaxIterations) return ResourceExhaustedError("the loop runs too many iterations");
      args.clear();
      Tensor iter(DataType::kInt64, Shape{});
      iter.values<int64_t>()[0] = it;
      args.push_back(std::move(iter));
      Tensor c(DataType::kBool, Shape{});
      c.values<bool>()[0] = cond;
      args.push_back(std::move(c));
      for (Tensor& s : state) args.push_back(std::move(s));
      for (size_t i = 0; i < captured_; ++i) args.push_back(ToTensor(in[2 + carried + i]));
      OUTPOST_RETURN_IF_ERROR(RunSubgraph(session, args, out));
      if (out.size() != 1 + carried + scans) {
        return InvalidArgumentError("the body has " + std::to_string(out.size()) +
                                    " outputs, expected " + std::to_string(1 + carried + scans));
      }
      cond = ReadDouble(RefOf(out[0]), 0) != 0;
      state.clear();
      for (size_t i = 0; i < carried; ++i) state.push_back(std::move(out[1 + i]));
      for (size_t k = 0; k < scans; ++k) scan_slices[k].push_back(std::move(out[1 + carried + k]));
    }
    results = std::move(state);
    for (size_t k = 0; k < scans; ++k) {
      OUTPOST_ASSIGN_OR_RETURN(Tensor stacked, Stack(scan_slices[k], 0, false));
      results.push_back(std::move(stacked));
    }
    return Status();
  }

 private:
  std::shared_ptr<const CompiledModel> body_;
  size_t captured_;
};

Result<std::unique_ptr<Kernel>> MakeLoop(const KernelBuildContext& ctx) {
  OUTPOST_ASSIGN_OR_RETURN(auto body, CompileSubgraph(ctx, "body"));
  const size_t captured = CapturedOf(ctx, "body");
  if (ctx.num_inputs() < 2 + captured) return InvalidArgumentError("expects at least 2 inputs");
  return std::unique_ptr<Kernel>(new LoopKernel(std::move(body), captured));
}

// ---- Scan ----

struct ScanAttrs {
  int64_t scan_inputs = 0;
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

// Slice `index` of `t` along `axis` (the axis removed).
Tensor SliceAlong(const TensorRef& t, size_t axis, int64_t index) {
  Shape shape(t.shape.begin(), t.shape.end());
  const int64_t n = shape[axis];
  shape.erase(shape.begin() + static_cast<int64_t>(axis));
  Tensor out(t.type, shape);
  const int64_t outer = DimProduct(t.shape, 0, axis);
  const int64_t inner = DimProduct(t.shape, axis + 1, t.rank());
  const TensorRef dst = RefOf(out);
  for (int64_t o = 0; o < outer; ++o) {
    const int64_t from = (o * n + index) * inner, to = o * inner;
    if (t.type == DataType::kBytes) {
      std::copy_n(t.strings + from, inner, dst.strings + to);
    } else {
      const size_t es = ElementSize(t.type);
      std::memcpy(static_cast<std::byte*>(dst.data) + to * static_cast<int64_t>(es),
                  static_cast<const std::byte*>(t.data) + from * static_cast<int64_t>(es),
                  static_cast<size_t>(inner) * es);
    }
  }
  return out;
}

class ScanKernel : public ControlKernel {
 public:
  // `batched`: opset 8's form, with sequence_lens first and a batch axis on every state and
  // scan input (each batch entry is scanned on its own).
  ScanKernel(std::shared_ptr<const CompiledModel> body, size_t captured, ScanAttrs a,
             bool batched)
      : body_(std::move(body)), captured_(captured), a_(std::move(a)), batched_(batched) {}

 protected:
  Status Execute(const std::vector<TensorRef>& in, size_t outputs,
                 std::vector<Tensor>& results) const override {
    if (!batched_) return ExecuteOne(in, outputs, results);
    if (in[0].data != nullptr || in[0].count > 0) {
      return UnimplementedError("Scan-8's sequence_lens input is not supported");
    }
    const size_t scanned = in.size() - captured_;  // states and scan inputs, after input 0
    const int64_t batch = scanned > 1 ? in[1].shape.empty() ? 0 : in[1].shape[0] : 0;
    std::vector<std::vector<Tensor>> per_output(outputs);
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<Tensor> sliced;
      for (size_t i = 1; i < scanned; ++i) {
        if (in[i].shape.empty() || in[i].shape[0] != batch) {
          return InvalidArgumentError("Scan-8's inputs must share the batch axis");
        }
        sliced.push_back(SliceAlong(in[i], 0, b));
      }
      std::vector<TensorRef> refs;
      for (const Tensor& t : sliced) refs.push_back(RefOf(t));
      for (size_t i = scanned; i < in.size(); ++i) refs.push_back(in[i]);
      std::vector<Tensor> one;
      OUTPOST_RETURN_IF_ERROR(ExecuteOne(refs, outputs, one));
      for (size_t o = 0; o < outputs; ++o) per_output[o].push_back(std::move(one[o]));
    }
    results.clear();
    for (size_t o = 0; o < outputs; ++o) {
      OUTPOST_ASSIGN_OR_RETURN(Tensor stacked, Stack(per_output[o], 0, false));
      results.push_back(std::move(stacked));
    }
    return Status();
  }

 private:
  Status ExecuteOne(const std::vector<TensorRef>& in, size_t outputs,
                    std::vector<Tensor>& results) const {
    const size_t m = static_cast<size_t>(a_.scan_inputs);
    const size_t states = in.size() - captured_ - m;
    if (outputs < states) return InvalidArgumentError("fewer outputs than state variables");
    const size_t k = outputs - states;
    int64_t length = -1;
    std::vector<size_t> axes(m);
    for (size_t j = 0; j < m; ++j) {
      const TensorRef& s = in[states + j];
      const int64_t axis = j < a_.in_axes.size() ? a_.in_axes[j] : 0;
      OUTPOST_ASSIGN_OR_RETURN(int64_t ax, NormalizeAxis(axis, static_cast<int64_t>(s.rank())));
      axes[j] = static_cast<size_t>(ax);
      const int64_t n = s.shape[axes[j]];
      if (length >= 0 && n != length) return InvalidArgumentError("scan inputs differ in length");
      length = n;
    }
    if (length < 0) length = 0;
    if (length > kMaxIterations) return ResourceExhaustedError("the scan is too long");
    std::vector<Tensor> state;
    for (size_t i = 0; i < states; ++i) state.push_back(ToTensor(in[i]));
    std::vector<std::vector<Tensor>> slices(k);
    std::vector<Tensor> args, out;
    Session session(body_);
    for (int64_t t = 0; t < length; ++t) {
      args.clear();
      for (Tensor& s : state) args.push_back(std::move(s));
      for (size_t j = 0; j < m; ++j) {
        const bool reverse = j < a_.in_dirs.size() && a_.in_dirs[j] != 0;
        args.push_back(SliceAlong(in[states + j], axes[j], reverse ? length - 1 - t : t));
      }
      for (size_t i = 0; i < captured_; ++i) args.push_back(ToTensor(in[states + m + i]));
      OUTPOST_RETURN_IF_ERROR(RunSubgraph(session, args, out));
      if (out.size() != states + k) {
        return InvalidArgumentError("the body has " + std::to_string(out.size()) +
                                    " outputs, expected " + std::to_string(states + k));
      }
      state.clear();
      for (size_t i = 0; i < states; ++i) state.push_back(std::move(out[i]));
      for (size_t o = 0; o < k; ++o) slices[o].push_back(std::move(out[states + o]));
    }
    results = std::move(state);
    for (size_t o = 0; o < k; ++o) {
      const int64_t axis = o < a_.out_axes.size() ? a_.out_axes[o] : 0;
      const bool reverse = o < a_.out_dirs.size() && a_.out_dirs[o] != 0;
      OUTPOST_ASSIGN_OR_RETURN(Tensor stacked, Stack(slices[o], axis, reverse));
      results.push_back(std::move(stacked));
    }
    return Status();
  }

 private:
  std::shared_ptr<const CompiledModel> body_;
  size_t captured_;
  ScanAttrs a_;
  bool batched_;
};

Result<std::unique_ptr<Kernel>> MakeScan(const KernelBuildContext& ctx) {
  OUTPOST_ASSIGN_OR_RETURN(auto body, CompileSubgraph(ctx, "body"));
  const size_t captured = CapturedOf(ctx, "body");
  ScanAttrs a;
  OUTPOST_ASSIGN_OR_RETURN(a.scan_inputs, ctx.Int("num_scan_inputs", 0));
  OUTPOST_ASSIGN_OR_RETURN(a.in_axes, ctx.Ints("scan_input_axes"));
  const bool batched = ctx.opset() < 9;
  OUTPOST_ASSIGN_OR_RETURN(a.in_dirs, ctx.Ints(batched ? "directions" : "scan_input_directions"));
  OUTPOST_ASSIGN_OR_RETURN(a.out_axes, ctx.Ints("scan_output_axes"));
  OUTPOST_ASSIGN_OR_RETURN(a.out_dirs, ctx.Ints("scan_output_directions"));
  const size_t lead = batched ? 1 : 0;  // Scan-8's sequence_lens
  if (a.scan_inputs < 1 ||
      lead + static_cast<size_t>(a.scan_inputs) + captured > ctx.num_inputs()) {
    return InvalidArgumentError("attribute \"num_scan_inputs\" does not match the inputs");
  }
  for (size_t i = lead; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return InvalidArgumentError("Scan takes no omitted inputs");
  }
  if (batched && ctx.has_input(0)) {
    return UnimplementedError("input sequence_lens of Scan-8 is not supported");
  }
  return std::unique_ptr<Kernel>(new ScanKernel(std::move(body), captured, std::move(a), batched));
}

}  // namespace

void RegisterControlKernels(KernelRegistry& r) {
  r.Add({"", "If", 1, 1000, &MakeIf});
  r.Add({"", "Loop", 1, 1000, &MakeLoop});
  r.Add({"", "Scan", 8, 1000, &MakeScan});
}

}  // namespace outpost::engine::onnx
