#include "apps/bundle_signature.h"

#include <memory>

#include "base/file.h"
#include "engine/model.h"
#include "engine/tensor.h"
#include "serve/model_config.h"
#include "serve/repository.h"

#ifndef OUTPOST_VERSION
#define OUTPOST_VERSION "unknown"
#endif

namespace outpost::apps {
namespace {

std::vector<bundle::TensorSpec> Specs(const std::vector<engine::TensorSpec>& specs) {
  std::vector<bundle::TensorSpec> out;
  for (const engine::TensorSpec& spec : specs) {
    out.push_back({.name = spec.name,
                   .datatype = std::string(engine::DataTypeName(spec.type)),
                   .shape = spec.shape});
  }
  return out;
}

}  // namespace

Result<bundle::ModelSignature> ReadModelSignature(const std::string& model_dir,
                                                  const std::string& name, uint64_t version) {
  const std::string config_path = JoinPath(model_dir, "config.yaml");
  if (!PathExists(config_path)) {
    return InvalidArgumentError(config_path +
                                " is missing; it names the backend (xgboost or onnx) that "
                                "serves the model");
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string config_text, ReadFile(config_path, 1 << 20));
  Result<serve::ModelConfig> config = serve::ParseModelConfig(config_text, name);
  if (!config.ok()) return config.status().WithContext(config_path);
  const std::string version_dir = JoinPath(model_dir, std::to_string(version));
  Result<std::unique_ptr<engine::Model>> model = serve::LoadModelVersion(*config, version_dir);
  if (!model.ok()) return model.status().WithContext("loading " + version_dir);
  const engine::Signature& signature = (*model)->signature();
  return bundle::ModelSignature{.engine = config->backend,
                                .engine_version = OUTPOST_VERSION,
                                .inputs = Specs(signature.inputs),
                                .outputs = Specs(signature.outputs)};
}

}  // namespace outpost::apps
