#include "engine/onnx/session.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "engine/onnx/kernel_util.h"
#include "engine/onnx/thread_pool.h"

namespace outpost::engine::onnx {

namespace {

constexpr size_t kAlign = 64;
// Values at most this large whose inputs are all known are computed while planning.
constexpr uint64_t kMaxPlanTimeBytes = 64 * 1024;

size_t AlignUp(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

Result<uint64_t> ValueBytes(const ValueSlot& s) {
  OUTPOST_ASSIGN_OR_RETURN(int64_t count, CheckedElements(s.shape));
  const uint64_t elem = s.type == DataType::kBytes ? sizeof(std::string) : ElementSize(s.type);
  if (elem != 0 && static_cast<uint64_t>(count) > UINT64_MAX / elem) {
    return ResourceExhaustedError("value of shape " + ShapeToString(s.shape) + " is too large");
  }
  return static_cast<uint64_t>(count) * elem;
}

// A 64-byte aligned buffer for evaluating nodes while planning or compiling.
struct AlignedBuffer {
  std::byte* data = nullptr;
  size_t size = 0;
  explicit AlignedBuffer(size_t n) : size(n) {
    if (n > 0) data = static_cast<std::byte*>(::operator new (n, std::align_val_t{kAlign}));
  }
  ~AlignedBuffer() {
    if (data != nullptr) ::operator delete (data, std::align_val_t{kAlign});
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
};

}  // namespace

Status EvaluateStep(const Kernel& kernel, std::span<ValueSlot> slots,
                    std::span<const ValueId> inputs, std::span<const ValueId> outputs,
                    size_t scratch_bytes, std::vector<std::unique_ptr<Tensor>>& owned) {
  // Refs indexed by value id would need one entry per value; a local table indexed by
  // position keeps this O(node size): ids are remapped to 0..k-1.
  std::vector<TensorRef> refs;
  std::vector<ValueId> in_ids;
  std::vector<ValueId> out_ids;
  for (ValueId id : inputs) {
    if (id == kNoValue) {
      in_ids.push_back(kNoValue);
      continue;
    }
    in_ids.push_back(static_cast<ValueId>(refs.size()));
    const ValueSlot& s = slots[static_cast<size_t>(id)];
    if (s.has_value) {
      refs.push_back(s.value);
    } else {
      // Shape-only kernels see the shape and no contents.
      TensorRef r;
      r.type = s.type;
      r.shape = s.shape;
      r.count = NumElements(s.shape);
      refs.push_back(r);
    }
  }
  std::vector<Tensor*> made;
  for (ValueId id : outputs) {
    if (id == kNoValue) {
      out_ids.push_back(kNoValue);
      made.push_back(nullptr);
      continue;
    }
    ValueSlot& s = slots[static_cast<size_t>(id)];
    auto t = std::make_unique<Tensor>(s.type, s.shape);
    out_ids.push_back(static_cast<ValueId>(refs.size()));
    refs.push_back(RefOf(*t));
    made.push_back(t.get());
    owned.push_back(std::move(t));
  }
  AlignedBuffer scratch(scratch_bytes);
  ComputeContext ctx(refs, in_ids, out_ids, std::span<std::byte>(scratch.data, scratch.size));
  OUTPOST_RETURN_IF_ERROR(kernel.Compute(ctx));
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i] == kNoValue) continue;
    ValueSlot& s = slots[static_cast<size_t>(outputs[i])];
    s.has_value = true;
    s.value = RefOf(*made[i]);
  }
  return Status();
}

namespace {

// Gives constants their types, shapes and contents, and graph inputs their types and shapes.
void SeedSlots(const CompiledModel& model, std::span<const DataType> input_types,
               std::span<const Shape> input_shapes, ShapePlan& plan) {
  for (size_t v = 0; v < plan.slots.size(); ++v) {
    if (const Tensor* c = model.constant(static_cast<ValueId>(v))) {
      ValueSlot& s = plan.slots[v];
      s.defined = true;
      s.type = c->type();
      s.shape = c->shape();
      s.has_value = true;
      s.value = RefOf(*c);
    }
  }
  for (size_t i = 0; i < model.inputs().size(); ++i) {
    ValueSlot& s = plan.slots[static_cast<size_t>(model.inputs()[i])];
    s.defined = true;
    s.type = input_types[i];
    s.shape = input_shapes[i];
  }
}

// The storage an inferred step's outputs need.
struct OutputSize {
  uint64_t bytes = 0;
  bool has_strings = false;
};

// Sums the bytes of step `si`'s outputs. Every output must have been inferred and each must
// fit the model's max_value_bytes.
Result<OutputSize> MeasureOutputs(const CompiledModel& model, size_t si, const ShapePlan& plan) {
  const CompiledModel::Step& step = model.steps()[si];
  const uint64_t max_value = model.options().max_value_bytes;
  OutputSize out;
  for (size_t o = 0; o < step.outputs.size(); ++o) {
    const ValueId id = step.outputs[o];
    if (id == kNoValue) continue;
    const ValueSlot& s = plan.slots[static_cast<size_t>(id)];
    if (!s.defined) {
      return InternalError(model.DescribeStep(si) + ": output " + std::to_string(o) +
                           " was not inferred");
    }
    auto bytes = ValueBytes(s);
    if (!bytes.ok()) return bytes.status().WithContext(model.DescribeStep(si));
    if (*bytes > max_value) {
      return ResourceExhaustedError(model.DescribeStep(si) + ": output of shape " +
                                    ShapeToString(s.shape) + " needs " + std::to_string(*bytes) +
                                    " bytes, more than the limit of " + std::to_string(max_value));
    }
    out.bytes += *bytes;
    out.has_strings = out.has_strings || s.type == DataType::kBytes;
  }
  return out;
}

// Infers step `si`'s outputs and files the step: dynamic when its shapes are known only
// while running, evaluated now when it is small and its inputs are known, else static.
Status PlanStep(const CompiledModel& model, size_t si, ShapePlan& plan) {
  const CompiledModel::Step& step = model.steps()[si];
  bool inputs_defined = true;
  bool inputs_known = true;
  size_t present = 0;
  for (ValueId id : step.inputs) {
    if (id == kNoValue) continue;
    ++present;
    const ValueSlot& s = plan.slots[static_cast<size_t>(id)];
    inputs_defined = inputs_defined && s.defined;
    inputs_known = inputs_known && s.has_value;
  }
  if (!inputs_defined) {
    plan.dynamic_steps.push_back(static_cast<uint32_t>(si));
    return Status();
  }
  InferContext ctx(plan.slots, step.inputs, step.outputs);
  Status st = step.kernel->Infer(ctx);
  if (!st.ok()) return st.WithContext(model.DescribeStep(si));
  if (ctx.deferred()) {
    plan.dynamic_steps.push_back(static_cast<uint32_t>(si));
    return Status();
  }
  OUTPOST_ASSIGN_OR_RETURN(OutputSize size, MeasureOutputs(model, si, plan));
  if (step.kernel->ReadsOnlyShapes()) inputs_known = true;
  if (present > 0 && inputs_known && size.bytes <= kMaxPlanTimeBytes && !size.has_strings) {
    Status e = EvaluateStep(*step.kernel, plan.slots, step.inputs, step.outputs,
                            ctx.scratch_bytes(), plan.evaluated);
    if (!e.ok()) return e.WithContext(model.DescribeStep(si));
    return Status();
  }
  plan.scratch_bytes = std::max(plan.scratch_bytes, ctx.scratch_bytes());
  plan.static_steps.push_back(static_cast<uint32_t>(si));
  return Status();
}

constexpr int64_t kForever = INT64_MAX;

// Per value, when it is alive, in static-step positions: the step that writes it and the
// last that reads it (kForever when a dynamic step reads it or it is a graph output); -1
// where no static step writes it.
struct Lifetimes {
  std::vector<int64_t> first;
  std::vector<int64_t> last;
};

// The lifetimes of the plan's values, once its steps are filed.
Lifetimes ValueLifetimes(const CompiledModel& model, const ShapePlan& plan) {
  const auto& steps = model.steps();
  const size_t nv = plan.slots.size();
  Lifetimes l{std::vector<int64_t>(nv, -1), std::vector<int64_t>(nv, -1)};
  std::vector<int64_t>& first = l.first;
  std::vector<int64_t>& last = l.last;
  for (size_t k = 0; k < plan.static_steps.size(); ++k) {
    const auto& step = steps[plan.static_steps[k]];
    for (ValueId id : step.inputs) {
      if (id != kNoValue) last[static_cast<size_t>(id)] = static_cast<int64_t>(k);
    }
    for (ValueId id : step.outputs) {
      if (id == kNoValue) continue;
      first[static_cast<size_t>(id)] = static_cast<int64_t>(k);
      last[static_cast<size_t>(id)] =
          std::max(last[static_cast<size_t>(id)], static_cast<int64_t>(k));
    }
  }
  for (uint32_t si : plan.dynamic_steps) {
    for (ValueId id : steps[si].inputs) {
      if (id != kNoValue) last[static_cast<size_t>(id)] = kForever;
    }
  }
  for (ValueId id : model.outputs()) last[static_cast<size_t>(id)] = kForever;
  return l;
}

// A value to place in the arena.
struct ArenaItem {
  ValueId id;
  size_t bytes;
  int64_t first;
  int64_t last;
  size_t offset;
};

// The values static steps write, except BYTES values, which get their element storage in
// plan.strings instead.
std::vector<ArenaItem> ArenaItems(const Lifetimes& lifetimes, ShapePlan& plan) {
  std::vector<ArenaItem> items;
  for (size_t v = 0; v < plan.slots.size(); ++v) {
    if (lifetimes.first[v] < 0) continue;
    const ValueSlot& s = plan.slots[v];
    if (s.type == DataType::kBytes) {
      plan.strings[v].resize(static_cast<size_t>(NumElements(s.shape)));
      continue;
    }
    const size_t bytes = static_cast<size_t>(NumElements(s.shape)) * ElementSize(s.type);
    items.push_back(
        {static_cast<ValueId>(v), AlignUp(bytes), lifetimes.first[v], lifetimes.last[v], 0});
  }
  return items;
}

// Places the items, largest first, each at the lowest offset that no item alive at the same
// time holds; sets plan.offsets and returns the arena's size.
size_t PlaceItems(std::vector<ArenaItem>& items, ShapePlan& plan) {
  std::stable_sort(items.begin(), items.end(),
                   [](const ArenaItem& a, const ArenaItem& b) { return a.bytes > b.bytes; });
  std::vector<const ArenaItem*> placed;
  std::vector<std::pair<size_t, size_t>> busy;  // [offset, end) of overlapping placed items
  size_t arena = 0;
  for (ArenaItem& item : items) {
    busy.clear();
    for (const ArenaItem* p : placed) {
      if (p->first <= item.last && item.first <= p->last) {
        busy.emplace_back(p->offset, p->offset + p->bytes);
      }
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [b, e] : busy) {
      if (offset + item.bytes <= b) break;
      offset = std::max(offset, e);
    }
    item.offset = offset;
    plan.offsets[static_cast<size_t>(item.id)] = static_cast<int64_t>(offset);
    arena = std::max(arena, offset + item.bytes);
    placed.push_back(&item);
  }
  return arena;
}

// Memory plan: every value produced by a static step gets an arena range that no value
// alive at the same time shares; the kernels' scratch follows them.
void PlanArena(const CompiledModel& model, ShapePlan& plan) {
  const size_t nv = plan.slots.size();
  plan.offsets.assign(nv, -1);
  plan.strings.resize(nv);
  const Lifetimes lifetimes = ValueLifetimes(model, plan);
  std::vector<ArenaItem> items = ArenaItems(lifetimes, plan);
  const size_t arena = PlaceItems(items, plan);
  plan.scratch_offset = arena;
  plan.arena_bytes = arena + AlignUp(plan.scratch_bytes);
}

}  // namespace

Result<std::unique_ptr<ShapePlan>> BuildShapePlan(const CompiledModel& model,
                                                  std::span<const DataType> input_types,
                                                  std::span<const Shape> input_shapes) {
  auto plan = std::make_unique<ShapePlan>();
  plan->input_types.assign(input_types.begin(), input_types.end());
  plan->input_shapes.assign(input_shapes.begin(), input_shapes.end());
  plan->slots.resize(model.graph().values.size());
  SeedSlots(model, input_types, input_shapes, *plan);
  for (size_t si = 0; si < model.steps().size(); ++si) {
    OUTPOST_RETURN_IF_ERROR(PlanStep(model, si, *plan));
  }
  PlanArena(model, *plan);
  if (plan->arena_bytes > model.options().max_plan_bytes) {
    return ResourceExhaustedError("running the model on inputs of these shapes needs " +
                                  std::to_string(plan->arena_bytes) +
                                  " bytes of memory, more than the limit of " +
                                  std::to_string(model.options().max_plan_bytes));
  }
  return plan;
}

bool PlannedValue(const ShapePlan& plan, ValueId id, DataType* type, Shape* shape) {
  const ValueSlot& s = plan.slots[static_cast<size_t>(id)];
  if (!s.defined) return false;
  *type = s.type;
  *shape = s.shape;
  return true;
}

Session::Session(std::shared_ptr<const CompiledModel> model) : model_(std::move(model)) {
  refs_.resize(model_->graph().values.size());
}

Session::~Session() {
  if (arena_ != nullptr) ::operator delete (arena_, std::align_val_t{kAlign});
}

Result<ShapePlan*> Session::FindOrBuildPlan(std::span<const Tensor> inputs) {
  for (size_t p = 0; p < plans_.size(); ++p) {
    ShapePlan& plan = *plans_[p];
    bool match = true;
    for (size_t i = 0; match && i < inputs.size(); ++i) {
      match = inputs[i].type() == plan.input_types[i] && inputs[i].shape() == plan.input_shapes[i];
    }
    if (match) {
      if (p != 0)
        std::rotate(plans_.begin(), plans_.begin() + static_cast<ptrdiff_t>(p),
                    plans_.begin() + static_cast<ptrdiff_t>(p) + 1);
      return plans_.front().get();
    }
  }
  // A new set of shapes: check it against the declared inputs, then plan.
  const Graph& g = model_->graph();
  std::vector<DataType> types;
  std::vector<Shape> shapes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& v = g.values[static_cast<size_t>(model_->inputs()[i])];
    const Tensor& t = inputs[i];
    if (v.info.has_type && v.info.type != t.type()) {
      return InvalidArgumentError("input \"" + v.name + "\" has element type " +
                                  std::string(DataTypeName(t.type())) + " but the model expects " +
                                  std::string(DataTypeName(v.info.type)));
    }
    if (v.info.has_shape) {
      bool fits = v.info.dims.size() == t.shape().size();
      for (size_t d = 0; fits && d < t.shape().size(); ++d) {
        fits = v.info.dims[d].value < 0 || v.info.dims[d].value == t.shape()[d];
      }
      if (!fits) {
        Shape declared;
        for (const Dim& d : v.info.dims) declared.push_back(d.value);
        return InvalidArgumentError("input \"" + v.name + "\" has shape " +
                                    ShapeToString(t.shape()) + " but the model expects " +
                                    ShapeToString(declared));
      }
    }
    types.push_back(t.type());
    shapes.push_back(t.shape());
  }
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<ShapePlan> plan, BuildShapePlan(*model_, types, shapes));
  plans_.insert(plans_.begin(), std::move(plan));
  const size_t keep = std::max<size_t>(1, model_->options().plan_cache_size);
  while (plans_.size() > keep) {
    if (bound_ == plans_.back().get()) bound_ = nullptr;
    plans_.pop_back();
  }
  return plans_.front().get();
}

void Session::Bind(ShapePlan& plan) {
  if (plan.arena_bytes > arena_bytes_) {
    if (arena_ != nullptr) ::operator delete (arena_, std::align_val_t{kAlign});
    arena_ = static_cast<std::byte*>(::operator new (plan.arena_bytes, std::align_val_t{kAlign}));
    arena_bytes_ = plan.arena_bytes;
  }
  const size_t nv = refs_.size();
  for (size_t v = 0; v < nv; ++v) {
    const ValueSlot& s = plan.slots[v];
    TensorRef& r = refs_[v];
    if (s.has_value) {
      r = s.value;
    } else if (plan.offsets[v] >= 0) {
      r.type = s.type;
      r.shape = s.shape;
      r.count = NumElements(s.shape);
      r.data = arena_ + plan.offsets[v];
      r.strings = nullptr;
    } else if (s.defined && s.type == DataType::kBytes && !plan.strings[v].empty()) {
      r.type = s.type;
      r.shape = s.shape;
      r.count = NumElements(s.shape);
      r.data = nullptr;
      r.strings = plan.strings[v].data();
    } else if (s.defined && s.type == DataType::kBytes) {
      // An empty BYTES value.
      r.type = s.type;
      r.shape = s.shape;
      r.count = 0;
      r.data = nullptr;
      r.strings = plan.strings[v].data();
    }
  }
  bound_ = &plan;
}

Status Session::RunDynamicStep(size_t step_index) {
  const CompiledModel::Step& step = model_->steps()[step_index];
  const size_t nv = refs_.size();
  if (dyn_slots_.size() != nv) {
    dyn_slots_.resize(nv);
    dyn_buffers_.resize(nv);
    dyn_strings_.resize(nv);
  }
  for (ValueId id : step.inputs) {
    if (id == kNoValue) continue;
    ValueSlot& s = dyn_slots_[static_cast<size_t>(id)];
    const TensorRef& r = refs_[static_cast<size_t>(id)];
    s.defined = true;
    s.type = r.type;
    if (s.shape.data() != r.shape.data()) s.shape.assign(r.shape.begin(), r.shape.end());
    s.has_value = true;
    s.value = r;
    s.value.shape = s.shape;
  }
  InferContext ictx(dyn_slots_, step.inputs, step.outputs);
  OUTPOST_RETURN_IF_ERROR(step.kernel->Infer(ictx));
  if (ictx.deferred()) return InternalError("shape still unknown with every input known");
  for (ValueId id : step.outputs) {
    if (id == kNoValue) continue;
    ValueSlot& s = dyn_slots_[static_cast<size_t>(id)];
    if (!s.defined) return InternalError("an output was not inferred");
    OUTPOST_ASSIGN_OR_RETURN(uint64_t bytes, ValueBytes(s));
    if (bytes > model_->options().max_value_bytes) {
      return ResourceExhaustedError("output of shape " + ShapeToString(s.shape) + " needs " +
                                    std::to_string(bytes) + " bytes, more than the limit");
    }
    TensorRef& r = refs_[static_cast<size_t>(id)];
    r.type = s.type;
    r.shape = s.shape;
    r.count = NumElements(s.shape);
    if (s.type == DataType::kBytes) {
      auto& strs = dyn_strings_[static_cast<size_t>(id)];
      strs.resize(static_cast<size_t>(r.count));
      r.strings = strs.data();
      r.data = nullptr;
    } else {
      auto& buf = dyn_buffers_[static_cast<size_t>(id)];
      buf.resize(static_cast<size_t>(bytes) + 1);
      r.data = buf.data();
      r.strings = nullptr;
    }
    s.has_value = false;
  }
  const size_t scratch = ictx.scratch_bytes();
  if (dyn_scratch_.size() < scratch + kAlign) dyn_scratch_.resize(scratch + kAlign);
  auto addr = reinterpret_cast<uintptr_t>(dyn_scratch_.data());
  std::byte* aligned = dyn_scratch_.data() + ((kAlign - addr % kAlign) % kAlign);
  ComputeContext cctx(refs_, step.inputs, step.outputs, std::span<std::byte>(aligned, scratch));
  return step.kernel->Compute(cctx);
}

Status Session::Run(std::span<const Tensor> inputs, std::vector<Tensor>& outputs) {
  const auto& model_inputs = model_->inputs();
  if (inputs.size() != model_inputs.size()) {
    return InvalidArgumentError("the model takes " + std::to_string(model_inputs.size()) +
                                " inputs, got " + std::to_string(inputs.size()));
  }
  OUTPOST_ASSIGN_OR_RETURN(ShapePlan * plan, FindOrBuildPlan(inputs));
  if (bound_ != plan) Bind(*plan);
  for (size_t i = 0; i < inputs.size(); ++i) {
    refs_[static_cast<size_t>(model_inputs[i])] = RefOf(inputs[i]);
  }
  const auto& steps = model_->steps();
  std::span<std::byte> scratch(arena_ + plan->scratch_offset, plan->scratch_bytes);
  IntraOpScope intra_op(model_->intra_op_pool());
  for (uint32_t si : plan->static_steps) {
    const CompiledModel::Step& step = steps[si];
    ComputeContext ctx(refs_, step.inputs, step.outputs, scratch);
    Status st = step.kernel->Compute(ctx);
    if (!st.ok()) return st.WithContext(model_->DescribeStep(si));
  }
  for (uint32_t si : plan->dynamic_steps) {
    Status st = RunDynamicStep(si);
    if (!st.ok()) return st.WithContext(model_->DescribeStep(si));
  }
  const auto& model_outputs = model_->outputs();
  outputs.resize(model_outputs.size());
  for (size_t o = 0; o < model_outputs.size(); ++o) {
    const TensorRef& r = refs_[static_cast<size_t>(model_outputs[o])];
    Tensor& out = outputs[o];
    if (out.type() != r.type || out.element_count() != r.count ||
        !std::equal(out.shape().begin(), out.shape().end(), r.shape.begin(), r.shape.end())) {
      out = Tensor(r.type, Shape(r.shape.begin(), r.shape.end()));
    }
    CopyTensor(r, RefOf(out));
  }
  return Status();
}

}  // namespace outpost::engine::onnx
