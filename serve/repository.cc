#include "serve/repository.h"

#include <algorithm>
#include <charconv>

#include "base/file.h"
#include "base/logging.h"
#include "engine/xgboost_model.h"

namespace outpost::serve {
namespace {

constexpr uint64_t kMaxConfigBytes = 1 << 20;

// A version folder's name is 1 to 18 digits and not zero.
std::optional<int64_t> ParseVersionFolder(std::string_view name) {
  if (name.empty() || name.size() > 18) return std::nullopt;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
  if (ec != std::errc() || ptr != name.data() + name.size() || v <= 0) return std::nullopt;
  return v;
}

std::shared_ptr<const ServableModel> LoadModel(const std::string& root, const std::string& name) {
  auto servable = std::make_shared<ServableModel>();
  servable->name = name;
  std::string dir = JoinPath(root, name);
  Result<std::string> text = ReadFile(JoinPath(dir, "config.yaml"), kMaxConfigBytes);
  Result<ModelConfig> config = text.ok() ? ParseModelConfig(*text, name) : Result<ModelConfig>(text.status());
  if (!config.ok()) {
    servable->error = config.status().WithContext("model \"" + name + "\"").ToString();
    OUTPOST_LOG(kError) << "model failed to load" << Field("model", name)
                        << Field("reason", servable->error);
    return servable;
  }
  servable->config = std::make_shared<const ModelConfig>(std::move(*config));

  std::vector<int64_t> available;
  Result<std::vector<std::string>> entries = ListDirectory(dir);
  if (entries.ok()) {
    for (const std::string& entry : *entries) {
      std::optional<int64_t> v = ParseVersionFolder(entry);
      if (v && IsDirectory(JoinPath(dir, entry))) available.push_back(*v);
    }
  }
  std::vector<int64_t> wanted = servable->config->version_policy.Select(available);
  if (wanted.empty()) {
    servable->error = "model \"" + name + "\" has no version folder (e.g. " + dir + "/1/)";
    OUTPOST_LOG(kError) << "model has no versions" << Field("model", name);
  }
  for (int64_t v : wanted) {
    VersionStatus status{.version = v};
    if (std::find(available.begin(), available.end(), v) == available.end()) {
      status.reason = "version " + std::to_string(v) + " named by the version policy is not in " + dir;
    } else {
      Result<std::unique_ptr<engine::Model>> model =
          LoadModelVersion(*servable->config, JoinPath(dir, std::to_string(v)));
      if (model.ok()) {
        status.state = VersionState::kReady;
        servable->ready.emplace_back(v, std::shared_ptr<const engine::Model>(std::move(*model)));
      } else {
        status.reason = model.status().ToString();
      }
    }
    if (status.state == VersionState::kReady) {
      OUTPOST_LOG(kInfo) << "model version loaded" << Field("model", name) << Field("version", v);
    } else {
      OUTPOST_LOG(kError) << "model version failed to load" << Field("model", name)
                          << Field("version", v) << Field("reason", status.reason);
    }
    servable->versions.push_back(std::move(status));
  }
  return servable;
}

}  // namespace

std::string_view VersionStateName(VersionState state) {
  return state == VersionState::kReady ? "READY" : "UNAVAILABLE";
}

Result<std::unique_ptr<engine::Model>> LoadModelVersion(const ModelConfig& config,
                                                        const std::string& version_dir) {
  if (config.backend == "xgboost") {
    engine::XGBoostOptions options{.inputs = config.inputs, .outputs = config.outputs};
    for (const auto& [key, value] : config.parameters) {
      if (key == "predict") {
        options.predict = value;
      } else {
        return InvalidArgumentError("unknown xgboost parameter \"" + key + "\"");
      }
    }
    for (const char* file : {"model.json", "model.ubj"}) {
      std::string path = JoinPath(version_dir, file);
      if (PathExists(path)) return engine::LoadXGBoostModel(path, options);
    }
    return NotFoundError("no model.json or model.ubj in " + version_dir);
  }
  if (config.backend == "onnx") {
    return UnimplementedError("the onnx backend is not part of this build yet");
  }
  return InvalidArgumentError("unknown backend \"" + config.backend + "\"");
}

Result<std::unique_ptr<ModelRepository>> ModelRepository::Open(RepositoryOptions options) {
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(options.root));
  auto snapshot = std::make_shared<Snapshot>();
  for (const std::string& name : names) {
    if (name.empty() || name[0] == '.' || !IsDirectory(JoinPath(options.root, name))) continue;
    snapshot->models.push_back(LoadModel(options.root, name));
  }
  std::unique_ptr<ModelRepository> repo(new ModelRepository(std::move(options)));
  repo->snapshot_ = std::move(snapshot);
  return repo;
}

std::unique_ptr<ModelRepository> ModelRepository::FromModels(
    std::vector<std::shared_ptr<const ServableModel>> models, RepositoryOptions options) {
  std::sort(models.begin(), models.end(),
            [](const auto& a, const auto& b) { return a->name < b->name; });
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->models = std::move(models);
  std::unique_ptr<ModelRepository> repo(new ModelRepository(std::move(options)));
  repo->snapshot_ = std::move(snapshot);
  return repo;
}

std::shared_ptr<const ModelRepository::Snapshot> ModelRepository::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

Result<ModelHandle> ModelRepository::Find(std::string_view name,
                                          std::optional<int64_t> version) const {
  std::shared_ptr<const Snapshot> snap = snapshot();
  auto it = std::lower_bound(snap->models.begin(), snap->models.end(), name,
                             [](const auto& m, std::string_view n) { return m->name < n; });
  if (it == snap->models.end() || (*it)->name != name) {
    return NotFoundError("unknown model \"" + std::string(name) + "\"");
  }
  const std::shared_ptr<const ServableModel>& servable = *it;
  if (!version) {
    if (servable->ready.empty()) {
      std::string reason = servable->error;
      if (reason.empty() && !servable->versions.empty()) reason = servable->versions.back().reason;
      return UnavailableError("model \"" + std::string(name) + "\" is not ready: " + reason);
    }
    const auto& [v, model] = servable->ready.back();
    return ModelHandle{.servable = servable, .version = v, .model = model.get()};
  }
  for (const auto& [v, model] : servable->ready) {
    if (v == *version) return ModelHandle{.servable = servable, .version = v, .model = model.get()};
  }
  for (const VersionStatus& s : servable->versions) {
    if (s.version == *version) {
      return UnavailableError("model \"" + std::string(name) + "\" version " +
                              std::to_string(*version) + " is not ready: " + s.reason);
    }
  }
  return NotFoundError("model \"" + std::string(name) + "\" has no version " +
                       std::to_string(*version));
}

std::vector<std::shared_ptr<const ServableModel>> ModelRepository::Models() const {
  return snapshot()->models;
}

bool ModelRepository::IsReady() const {
  if (!options_.strict_readiness) return true;
  std::shared_ptr<const Snapshot> snap = snapshot();
  for (const auto& m : snap->models) {
    if (!m->error.empty()) return false;
    for (const VersionStatus& s : m->versions) {
      if (s.state != VersionState::kReady) return false;
    }
  }
  return true;
}

}  // namespace outpost::serve
