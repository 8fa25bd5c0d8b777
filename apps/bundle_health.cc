#include "apps/bundle_health.h"

#include <cmath>
#include <memory>
#include <vector>

#include "base/file.h"
#include "bundle/metadata.h"
#include "engine/model.h"
#include "engine/tensor.h"
#include "serve/model_config.h"
#include "serve/repository.h"

namespace outpost::apps {
namespace {

constexpr int64_t kMaxCheckElements = 1 << 20;

using bundle::Json;
using bundle::JsonArray;
using bundle::JsonObject;

const Json* Member(const Json& j, const std::string& key) {
  const JsonObject* o = std::get_if<JsonObject>(&j.v);
  if (o == nullptr) return nullptr;
  auto it = o->find(key);
  return it == o->end() ? nullptr : &it->second;
}

std::optional<double> Number(const Json& j) {
  if (const uint64_t* u = std::get_if<uint64_t>(&j.v)) return static_cast<double>(*u);
  if (const int64_t* i = std::get_if<int64_t>(&j.v)) return static_cast<double>(*i);
  if (const double* d = std::get_if<double>(&j.v)) return *d;
  return std::nullopt;
}

// Element `i` of a numeric tensor as a double.
double ElementAt(const engine::Tensor& t, int64_t i) {
  size_t k = static_cast<size_t>(i);
  switch (t.type()) {
    case engine::DataType::kFp32: return t.values<float>()[k];
    case engine::DataType::kFp64: return t.values<double>()[k];
    case engine::DataType::kInt32: return t.values<int32_t>()[k];
    case engine::DataType::kInt64: return static_cast<double>(t.values<int64_t>()[k]);
    case engine::DataType::kUint8: return t.values<uint8_t>()[k];
    case engine::DataType::kInt8: return t.values<int8_t>()[k];
    case engine::DataType::kBool: return t.values<uint8_t>()[k];
    default: return std::nan("");
  }
}

Status SetElement(engine::Tensor& t, int64_t i, double v) {
  size_t k = static_cast<size_t>(i);
  switch (t.type()) {
    case engine::DataType::kFp32: t.values<float>()[k] = static_cast<float>(v); break;
    case engine::DataType::kFp64: t.values<double>()[k] = v; break;
    case engine::DataType::kInt32: t.values<int32_t>()[k] = static_cast<int32_t>(v); break;
    case engine::DataType::kInt64: t.values<int64_t>()[k] = static_cast<int64_t>(v); break;
    default:
      return FailedPreconditionError("expected.json: datatype " +
                                     std::string(engine::DataTypeName(t.type())) +
                                     " is not supported");
  }
  return Status::Ok();
}

Status WarmUp(const engine::Model& model) {
  std::vector<engine::Tensor> inputs;
  for (const engine::TensorSpec& spec : model.signature().inputs) {
    engine::Shape shape = spec.shape;
    int64_t count = 1;
    for (int64_t& d : shape) {
      if (d < 0) d = 1;
      if (d != 0 && count > kMaxCheckElements / d) return Status::Ok();  // too large to bother
      count *= d;
    }
    inputs.emplace_back(spec.type, std::move(shape));
  }
  std::vector<engine::Tensor> outputs;
  return model.Run(inputs, outputs);
}

Status CheckExpected(const engine::Model& model, const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 16 << 20));
  auto parsed = bundle::ParseJson(text, /*canonical_numbers_only=*/false);
  if (!parsed.ok()) return FailedPreconditionError("expected.json: " + parsed.status().ToString());
  const Json* in = Member(*parsed, "inputs");
  const Json* out = Member(*parsed, "outputs");
  const Json* tol = Member(*parsed, "tolerance");
  const JsonArray* ins = in == nullptr ? nullptr : std::get_if<JsonArray>(&in->v);
  const JsonArray* outs = out == nullptr ? nullptr : std::get_if<JsonArray>(&out->v);
  double tolerance = tol == nullptr ? 1e-5 : Number(*tol).value_or(-1);
  if (ins == nullptr || outs == nullptr || !(tolerance >= 0)) {
    return FailedPreconditionError("expected.json needs inputs, outputs and a tolerance >= 0");
  }
  const engine::Signature& sig = model.signature();
  if (ins->size() != sig.inputs.size()) {
    return FailedPreconditionError("expected.json: the model takes " +
                                   std::to_string(sig.inputs.size()) + " inputs");
  }
  std::vector<engine::Tensor> inputs;
  for (size_t i = 0; i < ins->size(); ++i) {
    const Json* shape_j = Member((*ins)[i], "shape");
    const Json* data_j = Member((*ins)[i], "data");
    const JsonArray* shape_a = shape_j == nullptr ? nullptr : std::get_if<JsonArray>(&shape_j->v);
    const JsonArray* data_a = data_j == nullptr ? nullptr : std::get_if<JsonArray>(&data_j->v);
    if (shape_a == nullptr || data_a == nullptr) {
      return FailedPreconditionError("expected.json: input " + std::to_string(i) +
                                     " needs shape and data");
    }
    engine::Shape shape;
    for (const Json& d : *shape_a) {
      const uint64_t* u = std::get_if<uint64_t>(&d.v);
      if (u == nullptr || *u > static_cast<uint64_t>(kMaxCheckElements)) {
        return FailedPreconditionError("expected.json: bad shape");
      }
      shape.push_back(static_cast<int64_t>(*u));
    }
    auto count = engine::ElementCount(shape);
    if (!count.ok() || *count > kMaxCheckElements ||
        static_cast<size_t>(*count) != data_a->size()) {
      return FailedPreconditionError("expected.json: input " + std::to_string(i) +
                                     " has data that does not fill its shape");
    }
    engine::Tensor t(sig.inputs[i].type, shape);
    for (size_t k = 0; k < data_a->size(); ++k) {
      std::optional<double> v = Number((*data_a)[k]);
      if (!v) return FailedPreconditionError("expected.json: input data must be numbers");
      OUTPOST_RETURN_IF_ERROR(SetElement(t, static_cast<int64_t>(k), *v));
    }
    inputs.push_back(std::move(t));
  }
  OUTPOST_RETURN_IF_ERROR(engine::ValidateInputs(sig, inputs));
  std::vector<engine::Tensor> outputs;
  Status run = model.Run(inputs, outputs);
  if (!run.ok()) return FailedPreconditionError("expected inputs: " + run.ToString());
  for (const Json& o : *outs) {
    const Json* name_j = Member(o, "name");
    const Json* data_j = Member(o, "data");
    const std::string* name = name_j == nullptr ? nullptr : std::get_if<std::string>(&name_j->v);
    const JsonArray* data_a = data_j == nullptr ? nullptr : std::get_if<JsonArray>(&data_j->v);
    if (name == nullptr || data_a == nullptr) {
      return FailedPreconditionError("expected.json: an output needs name and data");
    }
    size_t idx = sig.outputs.size();
    for (size_t k = 0; k < sig.outputs.size(); ++k) {
      if (sig.outputs[k].name == *name) idx = k;
    }
    if (idx == sig.outputs.size() || idx >= outputs.size()) {
      return FailedPreconditionError("expected.json: the model has no output \"" + *name + "\"");
    }
    const engine::Tensor& got = outputs[idx];
    if (static_cast<size_t>(got.element_count()) != data_a->size()) {
      return FailedPreconditionError("output \"" + *name + "\" has " +
                                     std::to_string(got.element_count()) + " values, " +
                                     std::to_string(data_a->size()) + " expected");
    }
    for (size_t k = 0; k < data_a->size(); ++k) {
      std::optional<double> want = Number((*data_a)[k]);
      double have = ElementAt(got, static_cast<int64_t>(k));
      if (!want || !(std::fabs(have - *want) <= tolerance)) {
        return FailedPreconditionError("output \"" + *name + "\"[" + std::to_string(k) +
                                       "] is " + std::to_string(have) + ", expected " +
                                       (want ? std::to_string(*want) : "a number"));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckModelHealth(const std::string& model_dir, const std::string& name, uint64_t version) {
  std::string version_dir = JoinPath(model_dir, std::to_string(version));
  std::string config_text;
  if (PathExists(JoinPath(model_dir, "config.yaml"))) {
    OUTPOST_ASSIGN_OR_RETURN(config_text, ReadFile(JoinPath(model_dir, "config.yaml"), 1 << 20));
  }
  Result<serve::ModelConfig> config = serve::ParseModelConfig(config_text, name);
  if (!config.ok()) return FailedPreconditionError("config.yaml: " + config.status().ToString());
  Result<std::unique_ptr<engine::Model>> model = serve::LoadModelVersion(*config, version_dir);
  if (!model.ok()) return FailedPreconditionError("load: " + model.status().ToString());
  if (Status s = WarmUp(**model); !s.ok()) {
    return FailedPreconditionError("warm-up on a zero input: " + s.ToString());
  }
  std::string expected = JoinPath(version_dir, "expected.json");
  if (PathExists(expected)) OUTPOST_RETURN_IF_ERROR(CheckExpected(**model, expected));
  return Status::Ok();
}

}  // namespace outpost::apps
