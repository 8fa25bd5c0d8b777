#include "serve/repository.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <thread>

#include <sys/stat.h>

#include "base/file.h"
#include "base/logging.h"
#include "engine/onnx/onnx_model.h"
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

// What a version folder holds, to tell whether it changed: the folder's and each entry's
// modification time and size. Empty when it cannot be read.
std::string Fingerprint(const std::string& dir) {
  auto stamp = [](const std::string& path, std::string& out) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;
    out += std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ino) + ";";
  };
  std::string out;
  stamp(dir, out);
  Result<std::vector<std::string>> entries = ListDirectory(dir);
  if (!entries.ok()) return std::string();
  std::vector<std::string> names = std::move(*entries);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    out += name + "=";
    stamp(JoinPath(dir, name), out);
  }
  return out;
}

// One run on a zero input: variable dimensions are 1, so the batch is one row.
Status WarmUp(const engine::Model& model) {
  constexpr int64_t kMaxWarmUpElements = 1 << 22;
  const engine::Signature& signature = model.signature();
  std::vector<engine::Tensor> inputs;
  inputs.reserve(signature.inputs.size());
  for (const engine::TensorSpec& spec : signature.inputs) {
    engine::Shape shape = spec.shape;
    int64_t count = 1;
    for (int64_t& d : shape) {
      if (d < 0) d = 1;
      if (d != 0 && count > kMaxWarmUpElements / d) return Status();  // too large to bother
      count *= d;
    }
    inputs.emplace_back(spec.type, std::move(shape));
  }
  std::vector<engine::Tensor> outputs;
  Status run = model.Run(inputs, outputs);
  if (!run.ok()) return run.WithContext("warm-up run on a zero input");
  return Status();
}

// The insight rules a loaded version serves with. A config with an `insight:` section whose
// rules do not fit the version's signature fails the version (InvalidArgument); without the
// section the default rules (per-minute aggregates) are used where they fit and none where
// they do not (e.g. an image model), which is not an error.
Result<std::shared_ptr<const insight::RuleSet>> RulesFor(
    const ModelConfig& config, const engine::Model& model,
    const std::shared_ptr<const insight::RuleSet>& rules) {
  Status fits = insight::CheckSignature(*rules, model.signature());
  if (fits.ok()) return rules;
  if (!config.has_insight_section) return std::shared_ptr<const insight::RuleSet>();
  return fits.WithContext("insight rules do not fit the model");
}

}  // namespace

SchedulerOptions SchedulerOptionsFor(const ModelConfig& config) {
  const BatchingConfig& b = config.batching;
  SchedulerOptions options;
  options.max_batch_size = config.max_batch_size;
  options.preferred_batch_sizes = b.preferred_batch_sizes;
  options.max_queue_delay = std::chrono::microseconds(b.max_queue_delay_microseconds);
  options.instances = b.instance_count > 0
                          ? b.instance_count
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.max_queue_size = static_cast<size_t>(b.max_queue_size);
  options.default_timeout = std::chrono::microseconds(b.default_timeout_microseconds);
  return options;
}

std::string_view VersionStateName(VersionState state) {
  return state == VersionState::kReady ? "READY" : "UNAVAILABLE";
}

Result<std::unique_ptr<engine::Model>> LoadModelVersion(const ModelConfig& config,
                                                        const std::string& version_dir,
                                                        int threads) {
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
    if (!config.parameters.empty()) {
      return InvalidArgumentError("unknown onnx parameter \"" + config.parameters.begin()->first +
                                  "\"");
    }
    std::string path = JoinPath(version_dir, "model.onnx");
    if (!PathExists(path)) return NotFoundError("no model.onnx in " + version_dir);
    engine::OnnxOptions options{.inputs = config.inputs, .outputs = config.outputs};
    options.compile.threads = threads > 0 ? threads : std::max(1, config.threads);
    return engine::LoadOnnxModel(path, options);
  }
  return InvalidArgumentError("unknown backend \"" + config.backend + "\"");
}

Result<std::unique_ptr<ModelRepository>> ModelRepository::Open(RepositoryOptions options) {
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(options.root));
  std::sort(names.begin(), names.end());
  std::unique_ptr<ModelRepository> repo(new ModelRepository(std::move(options)));
  auto snapshot = std::make_shared<Snapshot>();
  {
    std::lock_guard<std::mutex> reload_lock(repo->reload_mu_);
    for (const std::string& name : names) {
      if (name.empty() || name[0] == '.' || !IsDirectory(JoinPath(repo->options_.root, name))) {
        continue;
      }
      snapshot->models.push_back(repo->LoadFromDisk(name, nullptr));
    }
  }
  repo->snapshot_ = std::move(snapshot);
  return repo;
}

std::unique_ptr<ModelRepository> ModelRepository::FromModels(
    std::vector<std::shared_ptr<const ServableModel>> models, RepositoryOptions options) {
  std::sort(models.begin(), models.end(),
            [](const auto& a, const auto& b) { return a->name < b->name; });
  std::unique_ptr<ModelRepository> repo(new ModelRepository(std::move(options)));
  std::lock_guard<std::mutex> reload_lock(repo->reload_mu_);
  for (auto& model : models) {
    if (model->stats.size() == model->ready.size() &&
        model->insight_rules.size() == model->ready.size() &&
        model->schedulers.size() == model->ready.size()) {
      continue;
    }
    auto copy = std::make_shared<ServableModel>(*model);
    if (copy->stats.size() != copy->ready.size()) {
      copy->stats.clear();
      for (const auto& [version, m] : copy->ready) {
        copy->stats.push_back(repo->StatsFor(copy->name, version));
      }
    }
    copy->insight_rules.resize(copy->ready.size());
    if (copy->schedulers.size() != copy->ready.size()) {
      copy->schedulers.clear();
      const SchedulerOptions scheduler_options = copy->config != nullptr
                                                     ? SchedulerOptionsFor(*copy->config)
                                                     : SchedulerOptionsFor(ModelConfig());
      for (size_t i = 0; i < copy->ready.size(); ++i) {
        copy->schedulers.push_back(std::make_shared<Scheduler>(
            copy->ready[i].second, scheduler_options, copy->stats[i].get()));
      }
    }
    model = std::move(copy);
  }
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->models = std::move(models);
  repo->snapshot_ = std::move(snapshot);
  return repo;
}

std::shared_ptr<ModelStats> ModelRepository::StatsFor(const std::string& name, int64_t version) {
  std::shared_ptr<ModelStats>& stats = stats_[{name, version}];
  if (stats == nullptr) stats = std::make_shared<ModelStats>();
  return stats;
}

namespace {

using RulesResult = Result<std::shared_ptr<const insight::RuleSet>>;

// The intra-op threads model `name`'s versions run with under the edge's `thread_budget`
// (0 = the machine's cores); logs a warning when the config's own `threads` times its
// instances passes the budget (it is used as written: serve/FORMAT.md, "Intra-op threads").
int IntraOpThreadsUnder(const std::string& name, const ModelConfig& config, int thread_budget) {
  const int budget = thread_budget > 0
                         ? thread_budget
                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int instances = SchedulerOptionsFor(config).instances;
  const int threads = IntraOpThreadsFor(config, instances, budget);
  if (config.backend == "onnx" && config.threads > 0 &&
      static_cast<int64_t>(instances) * threads > budget) {
    OUTPOST_LOG(kWarning) << "model threads times instances pass the edge's thread budget"
                          << Field("model", name) << Field("threads", threads)
                          << Field("instances", instances) << Field("budget", budget);
  }
  return threads;
}

// The load of model `name` whose config.yaml does not read or parse (`reason`): the versions
// that served before keep serving when there were any, else `servable` carries the error.
std::shared_ptr<const ServableModel> ConfigFailed(
    const std::string& name, const std::shared_ptr<const ServableModel>& previous, bool had_ready,
    std::shared_ptr<ServableModel> servable, std::string reason) {
  if (had_ready) {
    // The versions serving now keep serving; the failure is reported.
    auto kept = std::make_shared<ServableModel>(*previous);
    kept->unloaded = false;
    kept->reload_error = reason;
    OUTPOST_LOG(kError) << "model reload failed; earlier versions keep serving"
                        << Field("model", name) << Field("reason", reason);
    return kept;
  }
  servable->error = std::move(reason);
  OUTPOST_LOG(kError) << "model failed to load" << Field("model", name)
                      << Field("reason", servable->error);
  return servable;
}

// The version folders in `dir`, ascending.
std::vector<int64_t> AvailableVersions(const std::string& dir) {
  std::vector<int64_t> available;
  Result<std::vector<std::string>> entries = ListDirectory(dir);
  if (entries.ok()) {
    for (const std::string& entry : *entries) {
      std::optional<int64_t> v = ParseVersionFolder(entry);
      if (v && IsDirectory(JoinPath(dir, entry))) available.push_back(*v);
    }
  }
  std::sort(available.begin(), available.end());
  return available;
}

// The versions to load, ascending: the policy's choice among the available ones, and the
// shadow version, which is loaded beside them.
std::vector<int64_t> WantedVersions(const ModelConfig& config,
                                    const std::vector<int64_t>& available) {
  const int64_t shadow_version = config.shadow.version;
  std::vector<int64_t> others = available;
  std::erase(others, shadow_version);
  std::vector<int64_t> wanted = config.version_policy.Select(others);
  if (shadow_version > 0) wanted.push_back(shadow_version);
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  return wanted;
}

// Appends the i-th ready version of `previous` (model, stats, rules, scheduler) to `servable`
// with `fingerprint`.
void AppendPreviousVersion(ServableModel& servable, const ServableModel& previous, size_t i,
                           std::string fingerprint) {
  servable.ready.push_back(previous.ready[i]);
  servable.stats.push_back(previous.stats[i]);
  servable.insight_rules.push_back(i < previous.insight_rules.size() ? previous.insight_rules[i]
                                                                     : nullptr);
  servable.schedulers.push_back(i < previous.schedulers.size() ? previous.schedulers[i] : nullptr);
  servable.fingerprints.push_back(std::move(fingerprint));
}

// Keeps version `v` from `previous` when it was loaded from a folder with the same
// fingerprint; false when it was not.
bool KeepUnchanged(ServableModel& servable, const ServableModel& previous, int64_t v,
                   const std::string& fingerprint) {
  for (size_t i = 0; i < previous.ready.size(); ++i) {
    if (previous.ready[i].first == v && i < previous.fingerprints.size() &&
        previous.fingerprints[i] == fingerprint) {
      AppendPreviousVersion(servable, previous, i, fingerprint);
      return true;
    }
  }
  return false;
}

// A failed update leaves the versions that served before it in service.
void KeepServingAfterFailure(const std::string& name, const ServableModel& previous,
                             ServableModel& servable) {
  for (size_t i = 0; i < previous.ready.size(); ++i) {
    const int64_t v = previous.ready[i].first;
    bool present = false;
    for (const auto& [r, m] : servable.ready) present = present || r == v;
    if (present) continue;
    AppendPreviousVersion(
        servable, previous, i,
        i < previous.fingerprints.size() ? previous.fingerprints[i] : std::string());
    servable.versions.push_back({.version = v, .state = VersionState::kReady});
    OUTPOST_LOG(kWarning) << "model version keeps serving after a failed update"
                          << Field("model", name) << Field("version", v);
  }
  if (!servable.error.empty()) {
    servable.reload_error = std::move(servable.error);
    servable.error.clear();
  }
}

// A copy of `servable` with `ready` and `versions` ascending by version, `stats`,
// `insight_rules`, `schedulers` and `fingerprints` alongside.
std::shared_ptr<const ServableModel> SortedByVersion(const ServableModel& servable) {
  std::vector<size_t> order(servable.ready.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return servable.ready[a].first < servable.ready[b].first; });
  auto sorted = std::make_shared<ServableModel>(servable);
  for (size_t i = 0; i < order.size(); ++i) {
    sorted->ready[i] = servable.ready[order[i]];
    sorted->stats[i] = servable.stats[order[i]];
    sorted->insight_rules[i] = servable.insight_rules[order[i]];
    sorted->schedulers[i] = servable.schedulers[order[i]];
    sorted->fingerprints[i] = servable.fingerprints[order[i]];
  }
  std::sort(sorted->versions.begin(), sorted->versions.end(),
            [](const VersionStatus& a, const VersionStatus& b) { return a.version < b.version; });
  return sorted;
}

}  // namespace

void ModelRepository::LoadVersion(const std::string& name, int64_t v, const std::string& vdir,
                                  const ServableModel* same_config_previous,
                                  const RulesResult& rules, ServableModel& servable,
                                  VersionStatus& status) {
  std::string fingerprint = Fingerprint(vdir);
  // Unchanged since it was loaded: keep the model object as it is.
  if (same_config_previous != nullptr && !fingerprint.empty() &&
      KeepUnchanged(servable, *same_config_previous, v, fingerprint)) {
    status.state = VersionState::kReady;
    return;
  }
  if (!rules.ok()) {
    status.reason = rules.status().WithContext("insight rules").ToString();
    return;
  }
  const ModelLoader& loader = options_.loader;
  const int threads = IntraOpThreadsUnder(name, *servable.config, options_.thread_budget);
  Result<std::unique_ptr<engine::Model>> model =
      loader ? loader(*servable.config, vdir) : LoadModelVersion(*servable.config, vdir, threads);
  RulesResult version_rules = model.ok() ? RulesFor(*servable.config, **model, *rules)
                                         : RulesResult(std::shared_ptr<const insight::RuleSet>());
  Status checked = version_rules.ok() ? Status() : version_rules.status();
  Status warm = model.ok() && checked.ok() && options_.warm_up ? WarmUp(**model) : Status();
  if (!(model.ok() && checked.ok() && warm.ok())) {
    status.reason = !model.ok()     ? model.status().ToString()
                    : !checked.ok() ? checked.ToString()
                                    : warm.ToString();
    return;
  }
  status.state = VersionState::kReady;
  std::shared_ptr<const engine::Model> loaded(std::move(*model));
  std::shared_ptr<ModelStats> stats = StatsFor(name, v);
  servable.schedulers.push_back(
      std::make_shared<Scheduler>(loaded, SchedulerOptionsFor(*servable.config), stats.get()));
  servable.ready.emplace_back(v, std::move(loaded));
  servable.stats.push_back(std::move(stats));
  servable.insight_rules.push_back(std::move(*version_rules));
  servable.fingerprints.push_back(std::move(fingerprint));
  OUTPOST_LOG(kInfo) << "model version loaded" << Field("model", name) << Field("version", v);
}

std::shared_ptr<const ServableModel> ModelRepository::LoadFromDisk(
    const std::string& name, const std::shared_ptr<const ServableModel>& previous) {
  const std::string& root = options_.root;
  const bool had_ready = previous != nullptr && previous->IsReady();
  auto servable = std::make_shared<ServableModel>();
  servable->name = name;
  std::string dir = JoinPath(root, name);
  Result<std::string> text = ReadFile(JoinPath(dir, "config.yaml"), kMaxConfigBytes);
  Result<ModelConfig> config =
      text.ok() ? ParseModelConfig(*text, name) : Result<ModelConfig>(text.status());
  if (!config.ok()) {
    return ConfigFailed(name, previous, had_ready, std::move(servable),
                        config.status().WithContext("model \"" + name + "\"").ToString());
  }
  servable->config = std::make_shared<const ModelConfig>(std::move(*config));
  servable->config_text = *text;
  // The insight rules every version loaded with this config uses, each checked against its
  // version's signature below.
  RulesResult rules = insight::ParseInsightConfig(*text);
  const bool same_config = previous != nullptr && previous->config != nullptr &&
                           previous->config_text == servable->config_text;

  const std::vector<int64_t> available = AvailableVersions(dir);
  const std::vector<int64_t> wanted = WantedVersions(*servable->config, available);
  if (wanted.empty()) {
    servable->error = "model \"" + name + "\" has no version folder (e.g. " + dir + "/1/)";
    OUTPOST_LOG(kError) << "model has no versions" << Field("model", name);
  }
  bool any_failed = !servable->error.empty();
  for (int64_t v : wanted) {
    VersionStatus status{.version = v};
    if (std::find(available.begin(), available.end(), v) == available.end()) {
      status.reason =
          "version " + std::to_string(v) + " named by the version policy is not in " + dir;
    } else {
      LoadVersion(name, v, JoinPath(dir, std::to_string(v)), same_config ? previous.get() : nullptr,
                  rules, *servable, status);
    }
    if (status.state != VersionState::kReady) {
      any_failed = true;
      status.failed_update = had_ready;
      OUTPOST_LOG(kError) << "model version failed to load" << Field("model", name)
                          << Field("version", v) << Field("reason", status.reason);
    }
    servable->versions.push_back(std::move(status));
  }
  if (any_failed && had_ready) {
    KeepServingAfterFailure(name, *previous, *servable);
    return SortedByVersion(*servable);
  }
  return servable;
}

std::shared_ptr<const ModelRepository::Snapshot> ModelRepository::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

std::shared_ptr<const ServableModel> ModelRepository::Current(std::string_view name) const {
  std::shared_ptr<const Snapshot> snap = snapshot();
  auto it = std::lower_bound(snap->models.begin(), snap->models.end(), name,
                             [](const auto& m, std::string_view n) { return m->name < n; });
  if (it == snap->models.end() || (*it)->name != name) return nullptr;
  return *it;
}

void ModelRepository::Publish(std::string_view name,
                              std::shared_ptr<const ServableModel> servable) {
  std::lock_guard<std::mutex> lock(mu_);
  auto next = std::make_shared<Snapshot>(*snapshot_);
  auto it = std::lower_bound(next->models.begin(), next->models.end(), name,
                             [](const auto& m, std::string_view n) { return m->name < n; });
  const bool present = it != next->models.end() && (*it)->name == name;
  if (servable == nullptr) {
    if (present) {
      removed_.emplace(name);
      next->models.erase(it);
    }
  } else if (present) {
    *it = std::move(servable);
  } else {
    next->models.insert(it, std::move(servable));
  }
  snapshot_ = std::move(next);
}

Status ModelRepository::LoadOutcome(const ServableModel& servable) {
  std::string reasons;
  if (!servable.error.empty()) reasons = servable.error;
  if (!servable.reload_error.empty()) reasons = servable.reload_error;
  for (const VersionStatus& v : servable.versions) {
    if (v.state == VersionState::kReady) continue;
    if (!reasons.empty()) reasons += "; ";
    reasons += "version " + std::to_string(v.version) + ": " + v.reason;
  }
  if (reasons.empty()) return Status();
  if (servable.IsReady()) {
    std::string serving;
    for (const auto& [v, m] : servable.ready) {
      serving += (serving.empty() ? "" : ", ") + std::to_string(v);
    }
    reasons += " (still serving version " + serving + ")";
  }
  return UnavailableError("model \"" + servable.name + "\" did not load completely: " + reasons);
}

Status ModelRepository::Load(std::string_view name) {
  std::string model(name);
  if (model.empty() || model[0] == '.' || model.find('/') != std::string::npos ||
      options_.root.empty() || !IsDirectory(JoinPath(options_.root, model))) {
    return NotFoundError("no model folder \"" + model.substr(0, 200) + "\" in the repository");
  }
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  std::shared_ptr<const ServableModel> previous = Current(name);
  if (previous != nullptr && previous->unloaded) previous = nullptr;
  std::shared_ptr<const ServableModel> next = LoadFromDisk(model, previous);
  Publish(name, next);
  return LoadOutcome(*next);
}

Status ModelRepository::Unload(std::string_view name) {
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  std::shared_ptr<const ServableModel> previous = Current(name);
  if (previous == nullptr) {
    return NotFoundError("unknown model \"" + std::string(name.substr(0, 200)) + "\"");
  }
  auto unloaded = std::make_shared<ServableModel>();
  unloaded->name = previous->name;
  unloaded->config = previous->config;
  unloaded->unloaded = true;
  Publish(name, std::move(unloaded));
  OUTPOST_LOG(kInfo) << "model unloaded" << Field("model", std::string(name));
  return Status();
}

Status ModelRepository::Refresh(std::string_view name) {
  std::string model(name);
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  std::shared_ptr<const ServableModel> previous = Current(name);
  if (previous != nullptr && previous->unloaded) return Status();
  if (model.empty() || model[0] == '.' || model.find('/') != std::string::npos ||
      options_.root.empty() || !IsDirectory(JoinPath(options_.root, model))) {
    if (previous != nullptr) {
      Publish(name, nullptr);
      OUTPOST_LOG(kInfo) << "model folder removed; model no longer served" << Field("model", model);
    }
    return Status();
  }
  std::shared_ptr<const ServableModel> next = LoadFromDisk(model, previous);
  Publish(name, next);
  return LoadOutcome(*next);
}

Status ModelRepository::Rescan() {
  if (options_.root.empty()) return FailedPreconditionError("the repository has no root folder");
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(options_.root));
  for (const auto& model : Models()) names.push_back(model->name);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  for (const std::string& name : names) {
    if (name.empty() || name[0] == '.') continue;
    if (Current(name) == nullptr && !IsDirectory(JoinPath(options_.root, name))) continue;
    (void)Refresh(name);  // failures are recorded in the model's entry
  }
  return Status();
}

std::vector<IndexEntry> ModelRepository::Index() const {
  std::vector<IndexEntry> index;
  const std::shared_ptr<const Snapshot> snap = snapshot();  // alive for the loop
  for (const auto& model : snap->models) {
    if (model->unloaded) {
      index.push_back({.name = model->name, .reason = "unloaded"});
      continue;
    }
    if (model->versions.empty()) {
      index.push_back({.name = model->name,
                       .reason = !model->error.empty() ? model->error : model->reload_error});
      continue;
    }
    for (const VersionStatus& v : model->versions) {
      IndexEntry entry{
          .name = model->name, .version = v.version, .state = v.state, .reason = v.reason};
      if (v.state == VersionState::kReady && !model->reload_error.empty()) {
        entry.reason = "serving; the last reload failed: " + model->reload_error;
      }
      index.push_back(std::move(entry));
    }
  }
  return index;
}

bool ModelRepository::Knows(std::string_view name) const {
  if (Current(name) != nullptr) return true;
  std::lock_guard<std::mutex> lock(mu_);
  return removed_.find(name) != removed_.end();
}

Result<ModelHandle> ModelRepository::Find(std::string_view name,
                                          std::optional<int64_t> version) const {
  std::shared_ptr<const ServableModel> servable = Current(name);
  if (servable == nullptr) {
    return NotFoundError("unknown model \"" + std::string(name) + "\"");
  }
  if (servable->unloaded) {
    return UnavailableError("model \"" + std::string(name) + "\" is unloaded");
  }
  auto stats_at = [&servable](size_t i) {
    return i < servable->stats.size() ? servable->stats[i].get() : nullptr;
  };
  auto rules_at = [&servable](size_t i) {
    return i < servable->insight_rules.size() ? &servable->insight_rules[i] : nullptr;
  };
  auto scheduler_at = [&servable](size_t i) {
    return i < servable->schedulers.size() ? servable->schedulers[i].get() : nullptr;
  };
  if (!version) {
    if (servable->ready.empty()) {
      std::string reason = servable->error;
      if (reason.empty() && !servable->versions.empty()) reason = servable->versions.back().reason;
      return UnavailableError("model \"" + std::string(name) + "\" is not ready: " + reason);
    }
    size_t i = servable->ready.size() - 1;
    const int64_t shadow_version = servable->config ? servable->config->shadow.version : 0;
    while (i > 0 && servable->ready[i].first == shadow_version) --i;
    if (servable->ready[i].first == shadow_version) {
      return UnavailableError("model \"" + std::string(name) +
                              "\" is not ready: only its shadow version is loaded");
    }
    const auto& [v, model] = servable->ready[i];
    return ModelHandle{.servable = servable,
                       .version = v,
                       .model = model.get(),
                       .stats = stats_at(i),
                       .insight_rules = rules_at(i),
                       .scheduler = scheduler_at(i),
                       .shadow = shadow_version > 0 ? shadow_runner_.load() : nullptr,
                       .labels = label_tally_.load()};
  }
  for (size_t i = 0; i < servable->ready.size(); ++i) {
    const auto& [v, model] = servable->ready[i];
    if (v == *version) {
      return ModelHandle{.servable = servable,
                         .version = v,
                         .model = model.get(),
                         .stats = stats_at(i),
                         .insight_rules = rules_at(i),
                         .scheduler = scheduler_at(i),
                         .labels = label_tally_.load()};
    }
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
    if (m->unloaded) continue;
    if (!m->error.empty()) return false;
    for (const VersionStatus& s : m->versions) {
      if (s.state != VersionState::kReady && !(s.failed_update && m->IsReady())) return false;
    }
  }
  return true;
}

}  // namespace outpost::serve
