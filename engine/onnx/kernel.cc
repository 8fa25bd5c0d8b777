#include "engine/onnx/kernel.h"

#include <algorithm>

namespace outpost::engine::onnx {

TensorRef RefOf(const Tensor& t) { return RefOf(const_cast<Tensor&>(t)); }

TensorRef RefOf(Tensor& t) {
  TensorRef r;
  r.type = t.type();
  r.shape = t.shape();
  r.count = t.element_count();
  if (t.type() == DataType::kBytes) {
    r.strings = t.strings().data();
  } else {
    r.data = t.data();
  }
  return r;
}

void InferContext::SetOutput(size_t i, DataType type, Shape shape) {
  if (!has_output(i)) return;
  ValueSlot& s = slots_[static_cast<size_t>(outputs_[i])];
  s.defined = true;
  s.type = type;
  s.shape = std::move(shape);
}

namespace {

Status WrongType(const Attribute& a, AttrType want) {
  return InvalidArgumentError("attribute \"" + a.name + "\" is " +
                              std::string(AttrTypeName(a.type)) + ", expected " +
                              std::string(AttrTypeName(want)));
}

}  // namespace

Result<int64_t> KernelBuildContext::Int(std::string_view name, int64_t fallback) const {
  const Attribute* a = node_.FindAttribute(name);
  if (a == nullptr) return fallback;
  if (a->type != AttrType::kInt) return WrongType(*a, AttrType::kInt);
  return a->i;
}

Result<float> KernelBuildContext::Float(std::string_view name, float fallback) const {
  const Attribute* a = node_.FindAttribute(name);
  if (a == nullptr) return fallback;
  if (a->type != AttrType::kFloat) return WrongType(*a, AttrType::kFloat);
  return a->f;
}

Result<std::string> KernelBuildContext::String(std::string_view name,
                                               std::string fallback) const {
  const Attribute* a = node_.FindAttribute(name);
  if (a == nullptr) return fallback;
  if (a->type != AttrType::kString) return WrongType(*a, AttrType::kString);
  return a->s;
}

Result<std::vector<int64_t>> KernelBuildContext::Ints(std::string_view name) const {
  const Attribute* a = node_.FindAttribute(name);
  if (a == nullptr) return std::vector<int64_t>();
  if (a->type != AttrType::kInts) return WrongType(*a, AttrType::kInts);
  return a->ints;
}

Result<std::vector<float>> KernelBuildContext::Floats(std::string_view name) const {
  const Attribute* a = node_.FindAttribute(name);
  if (a == nullptr) return std::vector<float>();
  if (a->type != AttrType::kFloats) return WrongType(*a, AttrType::kFloats);
  return a->floats;
}

Result<std::vector<std::string>> KernelBuildContext::Strings(std::string_view name) const {
  const Attribute* a = node_.FindAttribute(name);
  if (a == nullptr) return std::vector<std::string>();
  if (a->type != AttrType::kStrings) return WrongType(*a, AttrType::kStrings);
  return a->strings;
}

Result<std::shared_ptr<const Tensor>> KernelBuildContext::TensorAttr(std::string_view name) const {
  const Attribute* a = node_.FindAttribute(name);
  if (a == nullptr) return std::shared_ptr<const Tensor>();
  if (a->type != AttrType::kTensor || !a->tensor) return WrongType(*a, AttrType::kTensor);
  return a->tensor;
}

Status KernelBuildContext::ExpectInputs(size_t min, size_t max) const {
  const size_t n = node_.inputs.size();
  if (n < min || n > max) {
    return InvalidArgumentError("expects " + std::to_string(min) +
                                (max == min ? "" : " to " + std::to_string(max)) +
                                " inputs, got " + std::to_string(n));
  }
  for (size_t i = 0; i < min; ++i) {
    if (node_.inputs[i] == kNoValue) {
      return InvalidArgumentError("required input " + std::to_string(i) + " is missing");
    }
  }
  return Status();
}

Status KernelBuildContext::ExpectOutputs(size_t min, size_t max) const {
  const size_t n = node_.outputs.size();
  if (n < min || n > max) {
    return InvalidArgumentError("expects " + std::to_string(min) +
                                (max == min ? "" : " to " + std::to_string(max)) +
                                " outputs, got " + std::to_string(n));
  }
  for (size_t i = 0; i < min; ++i) {
    if (node_.outputs[i] == kNoValue) {
      return InvalidArgumentError("required output " + std::to_string(i) + " is missing");
    }
  }
  return Status();
}

void KernelRegistry::Add(const KernelDef& def) {
  defs_[{std::string(def.domain), std::string(def.op_type)}].push_back(def);
}

const KernelDef* KernelRegistry::Find(std::string_view domain, std::string_view op_type,
                                      int opset) const {
  auto it = defs_.find(std::make_pair(std::string(domain), std::string(op_type)));
  if (it == defs_.end()) return nullptr;
  for (const KernelDef& d : it->second) {
    if (opset >= d.since && opset <= d.until) return &d;
  }
  return nullptr;
}

bool KernelRegistry::HasOperator(std::string_view domain, std::string_view op_type) const {
  return defs_.count(std::make_pair(std::string(domain), std::string(op_type))) > 0;
}

std::vector<std::string> KernelRegistry::OperatorNames() const {
  std::vector<std::string> names;
  for (const auto& [key, defs] : defs_) {
    if (key.first == kOutpostDomain) continue;
    names.push_back(key.first.empty() ? key.second : key.first + "." + key.second);
  }
  std::sort(names.begin(), names.end());
  return names;
}

const KernelRegistry& KernelRegistry::Builtin() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry();
    RegisterUnaryKernels(*r);
    RegisterBinaryKernels(*r);
    RegisterReduceKernels(*r);
    RegisterShapeKernels(*r);
    RegisterTensorKernels(*r);
    RegisterNnKernels(*r);
    RegisterConvKernels(*r);
    RegisterNormKernels(*r);
    RegisterIndexKernels(*r);
    RegisterRnnKernels(*r);
    RegisterConvTransposeKernels(*r);
    RegisterResizeKernels(*r);
    RegisterDetectKernels(*r);
    RegisterEinsumKernels(*r);
    RegisterSampleKernels(*r);
    RegisterSignalKernels(*r);
    RegisterExtraKernels(*r);
    RegisterQuantKernels(*r);
    RegisterControlKernels(*r);
    RegisterMlKernels(*r);
    return r;
  }();
  return *registry;
}

}  // namespace outpost::engine::onnx
