// The release step and the retraining schedule (release.h). This file is the yaml-cpp
// adapter of hub/: the model config template is read and the release's config.yaml written
// here, and nowhere else in hub/.
#include "hub/release.h"

#include <signal.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

#include "base/file.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "base/subprocess.h"
#include "bundle/bundle.h"
#include "bundle/crypto.h"
#include "bundle/keys.h"
#include "bundle/metadata.h"

namespace outpost::hub {
namespace {

constexpr uint64_t kMaxTemplateBytes = 1 << 20;         // a model's config.yaml template
constexpr uint64_t kMaxModelBytes = uint64_t{1} << 30;  // one model file of the registry
constexpr uint64_t kMaxStateBytes = 64 << 10;           // retrain-<model>.json
constexpr size_t kMaxApiTargetBytes = 4096;
constexpr size_t kMaxApiBodyBytes = 64 << 10;  // bodies are ignored, but bounded
constexpr size_t kMaxErrorTail = 2000;         // bytes of train.log kept as the error

// --- YAML (the adapter) ---

// A YAML document as a map, or InvalidArgument naming `what`.
Result<YAML::Node> LoadYamlMap(const std::string& text, const std::string& what) {
  try {
    YAML::Node node = YAML::Load(text);
    if (!node.IsMap()) return InvalidArgumentError(what + " is not a YAML map");
    return node;
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(what + ": " + e.what());
  }
}

// The tensors of config.yaml's `inputs` or `outputs` as descriptor JSON.
Result<std::string> TensorsJson(const YAML::Node& root, const char* key) {
  std::string out;
  JsonWriter w(out);
  w.BeginArray();
  const YAML::Node& list = root[key];
  if (list) {
    if (!list.IsSequence()) {
      return InvalidArgumentError(std::string("config.yaml: ") + key + " is not a list");
    }
    for (const YAML::Node& t : list) {
      if (!t.IsMap() || !t["name"] || !t["datatype"] || !t["shape"] || !t["shape"].IsSequence()) {
        return InvalidArgumentError(std::string("config.yaml: each of ") + key +
                                    " needs a name, a datatype and a shape list");
      }
      const std::string name = t["name"].as<std::string>();
      const std::string datatype = t["datatype"].as<std::string>();
      if (name.empty() || name.size() > 64 || datatype.empty() || datatype.size() > 16) {
        return InvalidArgumentError(std::string("config.yaml: a tensor of ") + key +
                                    " has a bad name or datatype");
      }
      w.BeginObject();
      w.Key("name");
      w.String(name);
      w.Key("datatype");
      w.String(datatype);
      w.Key("shape");
      w.BeginArray();
      for (const YAML::Node& d : t["shape"]) {
        const int64_t dim = d.as<int64_t>();
        if (dim < -1) {
          return InvalidArgumentError(std::string("config.yaml: a shape of ") + key +
                                      " has a dimension below -1");
        }
        w.Int(dim);
      }
      w.EndArray();
      w.EndObject();
    }
  }
  w.EndArray();
  return out;
}

Result<std::pair<std::string, std::string>> DescriptorTensors(const std::string& config_yaml) {
  OUTPOST_ASSIGN_OR_RETURN(YAML::Node root, LoadYamlMap(config_yaml, "config.yaml"));
  try {
    const YAML::Node& croot = root;
    OUTPOST_ASSIGN_OR_RETURN(std::string inputs, TensorsJson(croot, "inputs"));
    OUTPOST_ASSIGN_OR_RETURN(std::string outputs, TensorsJson(croot, "outputs"));
    return std::make_pair(std::move(inputs), std::move(outputs));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string("config.yaml: ") + e.what());
  }
}

// --- JSON read with the bundle library's strict parser ---

bool IsJsonText(const std::string& text) {
  return bundle::ParseJson(text, /*canonical_numbers_only=*/false).ok();
}

std::optional<double> JsonNumber(const bundle::Json& j) {
  if (const double* d = std::get_if<double>(&j.v)) return *d;
  if (const uint64_t* u = std::get_if<uint64_t>(&j.v)) return static_cast<double>(*u);
  if (const int64_t* i = std::get_if<int64_t>(&j.v)) return static_cast<double>(*i);
  return std::nullopt;
}

// The challenger's holdout metrics of a registry entry's metrics.json (train/FORMAT.md
// section 3): the finite numbers of its "challenger" object. None when absent.
std::map<std::string, double> ChallengerMetrics(const std::string& metrics_json) {
  std::map<std::string, double> out;
  Result<bundle::Json> doc = bundle::ParseJson(metrics_json, false);
  if (!doc.ok()) return out;
  const auto* top = std::get_if<bundle::JsonObject>(&doc->v);
  if (top == nullptr) return out;
  auto it = top->find("challenger");
  if (it == top->end()) return out;
  const auto* challenger = std::get_if<bundle::JsonObject>(&it->second.v);
  if (challenger == nullptr) return out;
  for (const auto& [k, v] : *challenger) {
    std::optional<double> x = JsonNumber(v);
    if (x && std::isfinite(*x) && k != "version") out[k] = *x;
  }
  return out;
}

// The model file of a registry entry: artifact_path is the file, or a folder holding
// model.json (what `outpost train` registers).
Result<std::string> ReadModelArtifact(const ModelEntry& entry) {
  std::string path = entry.artifact_path;
  if (path.empty()) {
    return FailedPreconditionError(entry.name + " version " + std::to_string(entry.version) +
                                   " has no artifact_path in the registry");
  }
  if (IsDirectory(path)) path = JoinPath(path, "model.json");
  Result<std::string> bytes = ReadFile(path, kMaxModelBytes);
  if (!bytes.ok()) {
    return FailedPreconditionError(entry.name + " version " + std::to_string(entry.version) +
                                   " has no readable model file (" + bytes.status().ToString() +
                                   ")");
  }
  return bytes;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return UnavailableError("removing " + path + ": " + ec.message());
  return Status::Ok();
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) return path;
  return p.lexically_normal().string();
}

}  // namespace

// --- the release folder and config.yaml ---

Status WriteReleaseFolder(const std::string& out, const std::string& name,
                          const std::string& config_yaml,
                          const std::map<int64_t, ReleaseVersion>& versions) {
  if (!bundle::IsValidModelName(name)) {
    return InvalidArgumentError("\"" + name + "\" is not a model name bundles allow");
  }
  if (versions.empty()) return InvalidArgumentError("a release folder needs a version");
  OUTPOST_ASSIGN_OR_RETURN(auto tensors, DescriptorTensors(config_yaml));
  for (const auto& [v, rv] : versions) {
    if (v < 1) return InvalidArgumentError("model versions start at 1");
    if (!IsHex64(rv.lineage_sha256)) {
      return InvalidArgumentError("the lineage digest of version " + std::to_string(v) +
                                  " is not 64 lowercase hex digits");
    }
  }
  OUTPOST_RETURN_IF_ERROR(RemoveTree(out));
  const std::string model_dir = JoinPath(out, name);
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(model_dir));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(model_dir, "config.yaml"), config_yaml));
  for (const auto& [v, rv] : versions) {
    const std::string dir = JoinPath(model_dir, std::to_string(v));
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(dir));
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, "model.json"), rv.model_bytes));
    std::string d;
    JsonWriter w(d);
    w.BeginObject();
    w.Key("name");
    w.String(name);
    w.Key("version");
    w.Int(v);
    w.Key("engine");
    w.String("xgboost");
    w.Key("engine_version");
    w.String("0.1.0");
    w.Key("inputs");
    w.Raw(tensors.first);
    w.Key("outputs");
    w.Raw(tensors.second);
    w.Key("metrics");
    w.BeginObject();
    for (const auto& [k, x] : rv.metrics) {
      if (!std::isfinite(x)) continue;
      w.Key(k);
      w.Double(x);
    }
    w.EndObject();
    w.Key("lineage_sha256");
    w.String(rv.lineage_sha256);
    w.EndObject();
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, "descriptor.json"), d));
  }
  return Status::Ok();
}

Status WriteReleaseFolder(const std::string& out, const std::string& name,
                          const std::string& config_yaml,
                          const std::map<int64_t, std::string>& versions,
                          const std::map<int64_t, std::string>& lineage_sha256) {
  std::map<int64_t, ReleaseVersion> full;
  for (const auto& [v, bytes] : versions) {
    auto it = lineage_sha256.find(v);
    if (it == lineage_sha256.end()) {
      return InvalidArgumentError("version " + std::to_string(v) + " has no lineage digest");
    }
    full[v] = ReleaseVersion{.model_bytes = bytes, .lineage_sha256 = Lower(it->second)};
  }
  return WriteReleaseFolder(out, name, config_yaml, full);
}

Result<std::string> ReleaseConfigYaml(const std::string& template_yaml, int64_t serving,
                                      int64_t shadow_version, const std::string& shadow_yaml) {
  if (serving < 1) return InvalidArgumentError("the serving version must be >= 1");
  OUTPOST_ASSIGN_OR_RETURN(YAML::Node root, LoadYamlMap(template_yaml, "the model config"));
  try {
    const YAML::Node& croot = root;
    for (const char* key : {"version_policy", "shadow"}) {
      if (croot[key]) {
        return InvalidArgumentError(std::string("the model config sets `") + key +
                                    "`; the hub sets it in each release");
      }
    }
    YAML::Node list(YAML::NodeType::Sequence);
    list.push_back(serving);
    YAML::Node policy(YAML::NodeType::Map);
    policy["specific"] = list;
    policy.SetStyle(YAML::EmitterStyle::Flow);
    root["version_policy"] = policy;
    if (shadow_version > 0) {
      YAML::Node shadow(YAML::NodeType::Map);
      shadow["version"] = shadow_version;
      if (!shadow_yaml.empty()) {
        YAML::Node rule = YAML::Load(shadow_yaml);
        if (!rule.IsNull()) {
          if (!rule.IsMap()) return InvalidArgumentError("the shadow rule is not a YAML map");
          const YAML::Node& crule = rule;
          if (crule["version"]) {
            return InvalidArgumentError("the shadow rule names `version`; the hub sets it");
          }
          for (const auto& kv : crule) shadow[kv.first.as<std::string>()] = kv.second;
        }
      }
      root["shadow"] = shadow;
    }
    YAML::Emitter emitter;
    emitter << root;
    if (!emitter.good()) return InternalError("config.yaml: " + emitter.GetLastError());
    return std::string(emitter.c_str()) + "\n";
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string("the model config: ") + e.what());
  }
}

Status ValidateRetrainConfig(const RetrainConfig& c) {
  auto bad = [&](const std::string& what) {
    return InvalidArgumentError("retrain " + c.model + ": " + what);
  };
  if (!bundle::IsValidModelName(c.model)) {
    return InvalidArgumentError("retrain: \"" + c.model +
                                "\" is not a model name ([a-z0-9][a-z0-9_.-]{0,63})");
  }
  if (c.tenant.empty()) return bad("tenant is required");
  if (c.train_config.empty()) return bad("train_config is required");
  if (c.workers < 0 || c.workers > 64) return bad("workers must be 0..64");
  if (c.every.count() < 0) return bad("every_s must be >= 0");
  if (c.min_new_labels < 0) return bad("min_new_labels must be >= 0");
  if (c.check_every < std::chrono::seconds(1)) return bad("check_every_s must be >= 1");
  const ReleaseConfig& r = c.release;
  if (r.expires_days < 1 || r.expires_days > 36500) {
    return bad("release.expires_days must be 1..36500");
  }
  if (r.keys_dir.empty()) return bad("release.keys is required");
  if (r.model_config_path.empty()) return bad("release.model_config is required");
  Result<std::string> text = ReadFile(r.model_config_path, kMaxTemplateBytes);
  if (!text.ok()) return text.status().WithContext("retrain " + c.model + ": release.model_config");
  Result<std::string> yaml =
      ReleaseConfigYaml(*text, 1, r.shadow_yaml.empty() ? 0 : 2, r.shadow_yaml);
  if (!yaml.ok()) return yaml.status().WithContext("retrain " + c.model);
  OUTPOST_RETURN_IF_ERROR(DescriptorTensors(*yaml).status().WithContext("retrain " + c.model));
  return Status::Ok();
}

// --- approval and release ---

Result<ReleaseResult> ApproveAndRelease(Store& store, const RetrainConfig& config, int64_t version,
                                        const std::string& data_dir, Clock& clock) {
  const std::string& model = config.model;
  const std::string what = model + " version " + std::to_string(version);
  OUTPOST_ASSIGN_OR_RETURN(std::vector<ModelEntry> entries, store.ListModels(model));
  const ModelEntry* entry = nullptr;
  for (const ModelEntry& e : entries) {
    if (e.version == version) entry = &e;
  }
  if (entry == nullptr) return NotFoundError("version_not_found: the registry has no " + what);
  if (entry->state != "candidate" && entry->state != "approved") {
    return FailedPreconditionError("not_candidate: " + what + " is " + entry->state);
  }
  if (entry->state == "candidate") {
    OUTPOST_RETURN_IF_ERROR(store.SetModelState(model, version, "approved"));
    OUTPOST_LOG(kInfo) << "model version approved" << Field("model", model)
                       << Field("version", version);
  }

  auto build = [&]() -> Result<ReleaseResult> {
    ReleaseResult result;
    // The champion: the newest version already shipped in a bundle.
    const ModelEntry* champion = nullptr;
    if (!config.release.shadow_yaml.empty()) {
      for (const ModelEntry& e : entries) {
        if (e.state == "bundled" && e.version != version &&
            (champion == nullptr || e.version > champion->version)) {
          champion = &e;
        }
      }
    }
    OUTPOST_ASSIGN_OR_RETURN(std::string template_yaml,
                             ReadFile(config.release.model_config_path, kMaxTemplateBytes));
    std::map<int64_t, ReleaseVersion> versions;
    auto add = [&](const ModelEntry& e) -> Status {
      OUTPOST_ASSIGN_OR_RETURN(std::string bytes, ReadModelArtifact(e));
      versions[e.version] =
          ReleaseVersion{.model_bytes = std::move(bytes),
                         .lineage_sha256 = bundle::ToHex(bundle::Sha256Of(e.lineage_json)),
                         .metrics = ChallengerMetrics(e.metrics_json)};
      return Status::Ok();
    };
    OUTPOST_RETURN_IF_ERROR(add(*entry));
    std::string config_yaml;
    if (champion != nullptr) {
      OUTPOST_RETURN_IF_ERROR(add(*champion));
      OUTPOST_ASSIGN_OR_RETURN(config_yaml, ReleaseConfigYaml(template_yaml, champion->version,
                                                              version, config.release.shadow_yaml));
      result.champion_version = champion->version;
      result.shadow = true;
    } else {
      OUTPOST_ASSIGN_OR_RETURN(config_yaml, ReleaseConfigYaml(template_yaml, version, 0, ""));
    }
    const std::string stem = model + "-" + std::to_string(version);
    const std::string folder = JoinPath(JoinPath(data_dir, "releases"), stem);
    OUTPOST_RETURN_IF_ERROR(WriteReleaseFolder(folder, model, config_yaml, versions));

    OUTPOST_ASSIGN_OR_RETURN(std::vector<bundle::KeyPair> keys,
                             bundle::LoadKeys(config.release.keys_dir, "targets"));
    OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> chain,
                             bundle::LoadRootChain(config.release.keys_dir));
    const Clock::WallTime now = clock.Now();
    const int64_t now_ms = UnixMillis(now);
    const int64_t now_s = now_ms / 1000;
    if (now_ms <= 0) return FailedPreconditionError("the hub's clock is before 1970");
    bundle::CreateOptions options{.version = static_cast<uint64_t>(now_ms),
                                  .created = now_s,
                                  .expires = now_s + int64_t{config.release.expires_days} * 86400,
                                  .sites = config.release.sites,
                                  .site_groups = config.release.groups,
                                  .root_chain = std::move(chain)};
    const std::string bundles = JoinPath(data_dir, "bundles");
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(bundles));
    result.bundle_path = JoinPath(bundles, stem + ".bundle");
    result.bundle_version = options.version;
    OUTPOST_RETURN_IF_ERROR(bundle::CreateBundle(folder, keys, options, result.bundle_path));
    return result;
  };
  Result<ReleaseResult> result = build();
  if (!result.ok()) {
    OUTPOST_LOG(kWarning) << "release failed; the version stays approved" << Field("model", model)
                          << Field("version", version) << Field("error", result.status());
    return result.status().WithContext("releasing " + what);
  }
  OUTPOST_RETURN_IF_ERROR(
      store.SetModelState(model, version, "bundled").WithContext("releasing " + what));
  OUTPOST_LOG(kInfo) << "model version released" << Field("model", model)
                     << Field("version", version) << Field("bundle", result->bundle_path)
                     << Field("bundle_version", result->bundle_version)
                     << Field("champion_version", result->champion_version)
                     << Field("shadow", result->shadow);
  return result;
}

// --- the scheduler ---

namespace {

// One configured model: its configuration and what the scheduler knows of it.
struct ModelSlot {
  RetrainConfig config;
  RetrainStatus status;
  std::string state_path;
  std::chrono::steady_clock::time_point next_check{};
  std::thread job;              // the current or last job's thread
  Subprocess* child = nullptr;  // the running `outpost train`; owned by the job's thread
  std::mutex release_mu;        // serializes approve, reject and auto-approve of this model
};

// What one retraining job did, as the model's status reports it.
struct JobResult {
  std::string outcome = "failed";  // the registered version's state, or "failed"
  std::string error;
  std::string state;  // the version's state after auto-approval
  std::string bundle_path;
  int64_t version = 0;
  bool interrupted = false;  // Stop() was under way when `outpost train` ended
};

// The version `outpost train` registered: newer than `newest_before`, and the one whose
// artifact is `artifact` where several are; null when there is none.
const ModelEntry* RegisteredVersion(const std::vector<ModelEntry>& after, int64_t newest_before,
                                    const std::string& artifact) {
  const ModelEntry* registered = nullptr;
  for (const ModelEntry& e : after) {
    if (e.version > newest_before && (registered == nullptr || e.artifact_path == artifact)) {
      registered = &e;
    }
  }
  return registered;
}

HubResponse JsonResponse(int status, std::string body) {
  HubResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HubResponse MethodNotAllowed(std::string_view allow) {
  HubResponse r =
      ErrorResponse(405, "method_not_allowed", "this route takes " + std::string(allow) + " only");
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

void OptionalInt(JsonWriter& w, int64_t v, int64_t none) {
  if (v == none) {
    w.Null();
  } else {
    w.Int(v);
  }
}

void OptionalString(JsonWriter& w, const std::string& s) {
  if (s.empty()) {
    w.Null();
  } else {
    w.String(s);
  }
}

// The last `max` bytes of a file, from a line start where one is near; empty when unreadable.
std::string FileTail(const std::string& path, size_t max) {
  Result<std::string> text = ReadFile(path, uint64_t{64} << 20);
  if (!text.ok()) return "";
  std::string s = std::move(*text);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.size() > max) {
    s = s.substr(s.size() - max);
    size_t nl = s.find('\n');
    if (nl != std::string::npos && nl + 1 < s.size()) s = s.substr(nl + 1);
  }
  return s;
}

// Reads retrain-<model>.json into `status` (hub/FORMAT.md section 8). A missing file leaves
// it as it is; DataLoss for a file that is not the format.
Status LoadState(const std::string& path, RetrainStatus& status) {
  if (!PathExists(path)) return Status::Ok();
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxStateBytes));
  auto damaged = [&](const std::string& why) {
    return DataLossError(path + " is damaged (" + why +
                         "); remove it to count labels from zero again");
  };
  Result<bundle::Json> doc = bundle::ParseJson(text, false);
  if (!doc.ok()) return damaged(std::string(doc.status().message()));
  const auto* top = std::get_if<bundle::JsonObject>(&doc->v);
  if (top == nullptr) return damaged("not a JSON object");
  auto integer = [&](const char* key, bool required, int64_t& out) -> Status {
    auto it = top->find(key);
    if (it == top->end()) {
      return required ? damaged(std::string("no ") + key) : Status::Ok();
    }
    if (const uint64_t* u = std::get_if<uint64_t>(&it->second.v);
        u != nullptr && *u <= static_cast<uint64_t>(INT64_MAX)) {
      out = static_cast<int64_t>(*u);
      return Status::Ok();
    }
    return damaged(std::string(key) + " is not a non-negative integer");
  };
  int64_t v = 0;
  OUTPOST_RETURN_IF_ERROR(integer("v", true, v));
  if (v != 1) return damaged("format version " + std::to_string(v) + " is not 1");
  OUTPOST_RETURN_IF_ERROR(integer("last_run_ms", true, status.last_run_ms));
  OUTPOST_RETURN_IF_ERROR(integer("labels_at_last_run", true, status.labels_at_last_run));
  OUTPOST_RETURN_IF_ERROR(integer("runs", false, status.runs));
  return Status::Ok();
}

std::string StateJson(const RetrainStatus& s) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("v");
  w.Int(1);
  w.Key("model");
  w.String(s.model);
  w.Key("last_run_ms");
  w.Int(s.last_run_ms);
  w.Key("labels_at_last_run");
  w.Int(s.labels_at_last_run);
  w.Key("runs");
  w.Int(s.runs);
  w.EndObject();
  out.push_back('\n');
  return out;
}

// The path of a target without its query string.
std::string_view TargetPath(std::string_view target) {
  size_t q = target.find_first_of("?#");
  return q == std::string_view::npos ? target : target.substr(0, q);
}

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  while (true) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (out.size() > 8) break;  // no route has more segments
  }
  return out;
}

// A version as a path segment: 1 to 15 decimal digits, > 0.
std::optional<int64_t> ParseVersion(std::string_view s) {
  if (s.empty() || s.size() > 15) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < 1) return std::nullopt;
  return v;
}

constexpr std::string_view kModelsPrefix = "/api/v1/models";

}  // namespace

struct RetrainScheduler::Impl {
  Store& store;
  Options options;
  Clock& clock;
  // The slots never move once made (the vector is filled before any thread starts).
  std::vector<std::unique_ptr<ModelSlot>> models;

  mutable std::mutex mu;  // guards every slot's status, next_check, job and child; stopping
  std::condition_variable wake;
  bool stopping = false;
  std::thread loop;

  Impl(Store& s, Options o)
      : store(s), options(std::move(o)), clock(options.clock ? *options.clock : SystemClock()) {}

  ModelSlot* Find(std::string_view model) const {
    for (const auto& m : models) {
      if (m->config.model == model) return m.get();
    }
    return nullptr;
  }

  // Feedback records of the model's stream in its tenant: one count per (site, bucket), a
  // bucket of 2^40 ms, summed — no payload is read. A store that refuses the count (more
  // buckets than it answers) is read page by page instead.
  Result<int64_t> CountLabels(const RetrainConfig& c) {
    CountQuery q{
        .tenant = c.tenant, .kind = "feedback", .stream = c.model, .bucket_ms = int64_t{1} << 40};
    Result<std::vector<CountBucket>> buckets = store.CountRecords(q);
    if (buckets.ok()) {
      int64_t n = 0;
      for (const CountBucket& b : *buckets) n += static_cast<int64_t>(b.count);
      return n;
    }
    if (buckets.status().code() != StatusCode::kInvalidArgument) return buckets.status();
    RecordQuery rq{.tenant = c.tenant, .kind = "feedback", .stream = c.model, .limit = 10000};
    int64_t n = 0;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(std::vector<HubRecord> page, store.QueryRecords(rq));
      for (const HubRecord& r : page) rq.after_id = std::max(rq.after_id, r.id);
      n += static_cast<int64_t>(page.size());
      if (page.size() < rq.limit) break;
    }
    return n;
  }

  void UpdateDue(ModelSlot& m) {
    m.status.next_due_ms =
        m.config.every.count() > 0
            ? m.status.last_run_ms +
                  std::chrono::duration_cast<std::chrono::milliseconds>(m.config.every).count()
            : 0;
  }

  void Notify(const RetrainStatus& status) {
    if (options.on_update) options.on_update(status);
  }

  // Starts a job of `m` (not running; mu held). Returns the thread of the previous job, which
  // the caller joins once mu is released.
  std::thread StartJobLocked(ModelSlot& m, std::optional<int64_t> labels, std::string why) {
    m.status.running = true;
    m.status.last_started_ms = UnixMillis(clock.Now());
    std::thread previous = std::move(m.job);
    m.job = std::thread([this, &m, labels, why = std::move(why)] { RunJob(m, labels, why); });
    return previous;
  }

  void Check(ModelSlot& m) {
    Result<int64_t> labels = CountLabels(m.config);
    std::thread previous;
    RetrainStatus snapshot;
    {
      std::lock_guard<std::mutex> lock(mu);
      ++m.status.checks;
      if (!labels.ok()) {
        m.status.last_check_error = labels.status().ToString();
        OUTPOST_LOG(kWarning) << "retraining: counting labels failed"
                              << Field("model", m.config.model) << Field("error", labels.status());
      } else {
        m.status.last_check_error.clear();
        m.status.labels_now = *labels;
        const int64_t now_ms = UnixMillis(clock.Now());
        const int64_t every_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(m.config.every).count();
        std::string why;
        if (m.config.min_new_labels > 0 &&
            *labels - m.status.labels_at_last_run >= m.config.min_new_labels) {
          why = "labels";
        } else if (every_ms > 0 && now_ms - m.status.last_run_ms >= every_ms) {
          why = "schedule";
        }
        if (!why.empty() && !m.status.running && !stopping) {
          OUTPOST_LOG(kInfo) << "retraining due" << Field("model", m.config.model)
                             << Field("trigger", why) << Field("labels_now", *labels)
                             << Field("labels_at_last_run", m.status.labels_at_last_run);
          previous = StartJobLocked(m, *labels, why);
        }
      }
      snapshot = m.status;
    }
    if (previous.joinable()) previous.join();
    Notify(snapshot);
  }

  void Loop() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      const auto now = std::chrono::steady_clock::now();
      std::vector<ModelSlot*> due;
      auto next = now + std::chrono::hours(24);
      for (auto& m : models) {
        if (m->next_check <= now) {
          due.push_back(m.get());
          m->next_check = now + m->config.check_every;
        }
        next = std::min(next, m->next_check);
      }
      if (!due.empty()) {
        lock.unlock();
        for (ModelSlot* m : due) Check(*m);
        lock.lock();
        continue;
      }
      wake.wait_until(lock, next, [&] { return stopping; });
    }
  }

  void RunJob(ModelSlot& m, std::optional<int64_t> labels_at_start, const std::string& why) {
    const RetrainConfig& c = m.config;
    int64_t started_ms = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      started_ms = m.status.last_started_ms;
    }
    std::optional<int64_t> labels = labels_at_start;
    if (!labels) {
      Result<int64_t> counted = CountLabels(c);
      if (counted.ok()) labels = *counted;
    }
    JobResult job;
    const std::string out = AbsolutePath(JoinPath(JoinPath(options.data_dir, "training"),
                                                  c.model + "-" + std::to_string(started_ms)));
    Status s = TrainAndRegister(m, why, labels, out, job);
    if (!s.ok()) {
      job.outcome = "failed";
      job.error = s.ToString();
      OUTPOST_LOG(kWarning) << "retraining failed" << Field("model", c.model) << Field("error", s);
    }
    FinishJob(m, job, s, started_ms, labels);
  }

  // Runs `outpost train` into `out`, finds the version it registered and, with auto_approve,
  // releases a candidate. Fills `job` as it goes.
  Status TrainAndRegister(ModelSlot& m, const std::string& why, std::optional<int64_t> labels,
                          const std::string& out, JobResult& job) {
    const RetrainConfig& c = m.config;
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(out));
    OUTPOST_ASSIGN_OR_RETURN(std::vector<ModelEntry> before, store.ListModels(c.model));
    int64_t newest_before = 0;
    for (const ModelEntry& e : before) newest_before = std::max(newest_before, e.version);
    std::vector<std::string> argv = {options.self, "train", "--store",  options.store_url,
                                     "--model",    c.model, "--config", c.train_config,
                                     "--out",      out};
    if (c.workers > 0) {
      argv.push_back("--workers");
      argv.push_back(std::to_string(c.workers));
    }
    OUTPOST_LOG(kInfo) << "retraining started" << Field("model", c.model) << Field("trigger", why)
                       << Field("out", out) << Field("labels", labels.value_or(-1));
    OUTPOST_RETURN_IF_ERROR(RunTrainer(m, argv, JoinPath(out, "train.log"), job.interrupted));
    OUTPOST_ASSIGN_OR_RETURN(std::vector<ModelEntry> after, store.ListModels(c.model));
    const ModelEntry* registered =
        RegisteredVersion(after, newest_before, JoinPath(out, "model.json"));
    if (registered == nullptr) {
      return InternalError("outpost train exited 0 but registered no version of " + c.model);
    }
    job.version = registered->version;
    job.outcome = registered->state;
    job.state = registered->state;
    OUTPOST_LOG(kInfo) << "retraining finished" << Field("model", c.model)
                       << Field("version", job.version) << Field("outcome", job.outcome);
    if (c.auto_approve && job.state == "candidate") AutoRelease(m, job);
    return Status::Ok();
  }

  // Runs `outpost train` with `argv`, its output in `log_path` and its lines in our log, as
  // m.child so that Stop() can signal it. Sets `interrupted` when Stop() was under way as it
  // ended; an error with the log's tail when it exits non-zero.
  Status RunTrainer(ModelSlot& m, const std::vector<std::string>& argv, const std::string& log_path,
                    bool& interrupted) {
    OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Subprocess> child, Subprocess::Start(argv, log_path));
    {
      std::lock_guard<std::mutex> lock(mu);
      m.child = child.get();
      if (stopping) child->Signal(SIGTERM).IgnoreError();
    }
    for (size_t lines = 0;; ++lines) {
      Result<std::string> line = child->ReadLine();
      if (!line.ok()) break;
      if (lines < 1000) {
        OUTPOST_LOG(kInfo) << "outpost train: " << *line << Field("model", m.config.model);
      }
    }
    {
      // The child is not reaped before this, so a signal sent under mu reaches it alone.
      std::lock_guard<std::mutex> lock(mu);
      m.child = nullptr;
      interrupted = stopping;
    }
    const int code = child->Wait();
    if (code != 0) {
      std::string tail = FileTail(log_path, kMaxErrorTail);
      return InternalError("outpost train exited with " + std::to_string(code) +
                           (tail.empty() ? "" : ": " + tail));
    }
    return Status::Ok();
  }

  // Approves and releases the candidate `job.version`: "bundled" with its bundle, or
  // "approved" with the release's error.
  void AutoRelease(ModelSlot& m, JobResult& job) {
    std::lock_guard<std::mutex> release_lock(m.release_mu);
    Result<ReleaseResult> released =
        ApproveAndRelease(store, m.config, job.version, options.data_dir, clock);
    if (released.ok()) {
      job.state = "bundled";
      job.bundle_path = released->bundle_path;
    } else {
      job.state = "approved";
      job.error = "release failed: " + released.status().ToString();
    }
  }

  // Records the finished job (status `s`) in m.status and, unless Stop() interrupted it, in
  // the model's state file; then tells on_update.
  void FinishJob(ModelSlot& m, const JobResult& job, const Status& s, int64_t started_ms,
                 std::optional<int64_t> labels) {
    // A job that Stop() interrupted is not recorded: it runs again after a restart.
    const bool record = !(job.interrupted && !s.ok());
    RetrainStatus snapshot;
    std::string state_text;
    {
      std::lock_guard<std::mutex> lock(mu);
      RetrainStatus& st = m.status;
      st.running = false;
      st.last_finished_ms = UnixMillis(clock.Now());
      st.last_outcome = job.outcome;
      st.last_version = job.version;
      st.last_state = job.state;
      st.last_bundle = job.bundle_path;
      st.last_error = job.interrupted && !s.ok() ? "stopped: " + job.error : job.error;
      if (record) {
        ++st.runs;
        st.last_run_ms = started_ms;
        if (labels) st.labels_at_last_run = *labels;
        UpdateDue(m);
        state_text = StateJson(st);
      }
      snapshot = st;
    }
    if (record) {
      Status saved = WriteFileAtomically(m.state_path, state_text, 0600);
      if (!saved.ok()) {
        OUTPOST_LOG(kError) << "retraining: the state file could not be written"
                            << Field("path", m.state_path) << Field("error", saved);
      }
    }
    Notify(snapshot);
  }

  // --- the operator API ---

  HubResponse ListConfigured(const Caller& caller) {
    std::string body;
    JsonWriter w(body);
    w.BeginObject();
    w.Key("models");
    w.BeginArray();
    for (const auto& m : models) {
      if (m->config.tenant != caller.tenant) continue;
      w.BeginObject();
      w.Key("model");
      w.String(m->config.model);
      w.Key("auto_approve");
      w.Bool(m->config.auto_approve);
      w.Key("shadow");
      w.Bool(!m->config.release.shadow_yaml.empty());
      w.Key("min_new_labels");
      w.Int(m->config.min_new_labels);
      w.Key("every_s");
      w.Int(m->config.every.count());
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return JsonResponse(200, std::move(body));
  }

  HubResponse Versions(ModelSlot& m) {
    Result<std::vector<ModelEntry>> entries = store.ListModels(m.config.model);
    if (!entries.ok()) {
      return ErrorResponse(503, "store_unavailable", entries.status().ToString());
    }
    std::string body;
    JsonWriter w(body);
    w.BeginObject();
    w.Key("model");
    w.String(m.config.model);
    w.Key("versions");
    w.BeginArray();
    for (const ModelEntry& e : *entries) {
      w.BeginObject();
      w.Key("version");
      w.Int(e.version);
      w.Key("state");
      w.String(e.state);
      w.Key("created_ms");
      w.Int(e.created_ms);
      w.Key("metrics");
      if (IsJsonText(e.metrics_json)) {
        w.Raw(e.metrics_json);
      } else {
        w.Null();
      }
      w.Key("lineage");
      if (IsJsonText(e.lineage_json)) {
        w.Raw(e.lineage_json);
      } else {
        w.Null();
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return JsonResponse(200, std::move(body));
  }

  // The version's registry entry, or the refusal.
  Result<ModelEntry> Entry(ModelSlot& m, int64_t version, HubResponse* refusal) {
    Result<std::vector<ModelEntry>> entries = store.ListModels(m.config.model);
    if (!entries.ok()) {
      *refusal = ErrorResponse(503, "store_unavailable", entries.status().ToString());
      return entries.status();
    }
    for (ModelEntry& e : *entries) {
      if (e.version == version) return std::move(e);
    }
    *refusal = ErrorResponse(404, "version_not_found",
                             m.config.model + " has no version " + std::to_string(version));
    return NotFoundError("version_not_found");
  }

  HubResponse Approve(ModelSlot& m, int64_t version) {
    std::lock_guard<std::mutex> release_lock(m.release_mu);
    HubResponse refusal;
    Result<ModelEntry> entry = Entry(m, version, &refusal);
    if (!entry.ok()) return refusal;
    if (entry->state != "candidate" && entry->state != "approved") {
      return ErrorResponse(409, "not_candidate",
                           m.config.model + " version " + std::to_string(version) + " is " +
                               entry->state + "; only a candidate is approved");
    }
    Result<ReleaseResult> released =
        ApproveAndRelease(store, m.config, version, options.data_dir, clock);
    if (!released.ok()) {
      const std::string_view msg = released.status().message();
      if (released.status().code() == StatusCode::kFailedPrecondition &&
          msg.starts_with("not_candidate")) {
        return ErrorResponse(409, "not_candidate", msg);
      }
      if (released.status().code() == StatusCode::kNotFound &&
          msg.starts_with("version_not_found")) {
        return ErrorResponse(404, "version_not_found", msg);
      }
      return ErrorResponse(500, "release_failed", released.status().ToString());
    }
    std::string body;
    JsonWriter w(body);
    w.BeginObject();
    w.Key("model");
    w.String(m.config.model);
    w.Key("version");
    w.Int(version);
    w.Key("state");
    w.String("bundled");
    w.Key("bundle");
    w.String(released->bundle_path);
    w.Key("bundle_version");
    w.Uint(released->bundle_version);
    w.Key("champion_version");
    OptionalInt(w, released->champion_version, 0);
    w.Key("shadow");
    w.Bool(released->shadow);
    w.EndObject();
    return JsonResponse(200, std::move(body));
  }

  HubResponse Reject(ModelSlot& m, int64_t version) {
    std::lock_guard<std::mutex> release_lock(m.release_mu);
    HubResponse refusal;
    Result<ModelEntry> entry = Entry(m, version, &refusal);
    if (!entry.ok()) return refusal;
    if (entry->state == "bundled") {
      return ErrorResponse(409, "not_candidate",
                           m.config.model + " version " + std::to_string(version) +
                               " is bundled; a shipped version is not rejected");
    }
    if (entry->state != "rejected") {
      Status s = store.SetModelState(m.config.model, version, "rejected");
      if (!s.ok()) return ErrorResponse(503, "store_unavailable", s.ToString());
      OUTPOST_LOG(kInfo) << "model version rejected" << Field("model", m.config.model)
                         << Field("version", version);
    }
    std::string body;
    JsonWriter w(body);
    w.BeginObject();
    w.Key("model");
    w.String(m.config.model);
    w.Key("version");
    w.Int(version);
    w.Key("state");
    w.String("rejected");
    w.EndObject();
    return JsonResponse(200, std::move(body));
  }

  HubResponse StartRetrain(ModelSlot& m) {
    std::thread previous;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return ErrorResponse(503, "stopping", "the hub is shutting down");
      if (m.status.running) {
        return ErrorResponse(409, "already_running",
                             "a retraining job of " + m.config.model + " is running");
      }
      OUTPOST_LOG(kInfo) << "retraining requested by an operator" << Field("model", m.config.model);
      previous = StartJobLocked(m, std::nullopt, "operator");
    }
    if (previous.joinable()) previous.join();
    std::string body;
    JsonWriter w(body);
    w.BeginObject();
    w.Key("model");
    w.String(m.config.model);
    w.Key("started");
    w.Bool(true);
    w.EndObject();
    return JsonResponse(202, std::move(body));
  }

  HubResponse RetrainStatusResponse(ModelSlot& m) {
    RetrainStatus s;
    {
      std::lock_guard<std::mutex> lock(mu);
      s = m.status;
    }
    std::string body;
    JsonWriter w(body);
    w.BeginObject();
    w.Key("model");
    w.String(s.model);
    w.Key("running");
    w.Bool(s.running);
    w.Key("runs");
    w.Int(s.runs);
    w.Key("last_started_ms");
    OptionalInt(w, s.last_started_ms, 0);
    w.Key("last_finished_ms");
    OptionalInt(w, s.last_finished_ms, 0);
    w.Key("last_outcome");
    OptionalString(w, s.last_outcome);
    w.Key("last_version");
    OptionalInt(w, s.last_version, 0);
    w.Key("last_state");
    OptionalString(w, s.last_state);
    w.Key("last_bundle");
    OptionalString(w, s.last_bundle);
    w.Key("last_error");
    OptionalString(w, s.last_error);
    w.Key("last_run_ms");
    OptionalInt(w, s.last_run_ms, 0);
    w.Key("labels_at_last_run");
    w.Int(s.labels_at_last_run);
    w.Key("labels_now");
    OptionalInt(w, s.labels_now, -1);
    w.Key("checks");
    w.Int(s.checks);
    w.Key("last_check_error");
    OptionalString(w, s.last_check_error);
    w.Key("next_due_ms");
    OptionalInt(w, s.next_due_ms, 0);
    w.Key("min_new_labels");
    w.Int(m.config.min_new_labels);
    w.Key("every_s");
    w.Int(m.config.every.count());
    w.Key("auto_approve");
    w.Bool(m.config.auto_approve);
    w.EndObject();
    return JsonResponse(200, std::move(body));
  }

  HubResponse Handle(const HubRequest& request) {
    if (request.target.size() > kMaxApiTargetBytes) {
      return ErrorResponse(414, "target_too_long", "the request target is over 4096 bytes");
    }
    if (request.body.size() > kMaxApiBodyBytes) {
      return ErrorResponse(413, "body_too_large", "these routes take no body (64 KiB at most)");
    }
    if (request.caller.kind != Caller::Kind::kOperator) {
      return ErrorResponse(401, "unauthenticated", "an operator bearer token is required");
    }
    std::string_view path = TargetPath(request.target);
    if (!path.starts_with(kModelsPrefix)) {
      return ErrorResponse(404, "not_found", "no such route");
    }
    path.remove_prefix(kModelsPrefix.size());
    const std::string& method = request.method;
    if (path.empty() || path == "/") {
      if (method != "GET") return MethodNotAllowed("GET");
      return ListConfigured(request.caller);
    }
    if (path.front() != '/') return ErrorResponse(404, "not_found", "no such route");
    path.remove_prefix(1);
    const std::vector<std::string_view> seg = Split(path);
    ModelSlot* m = Find(seg[0]);
    if (m == nullptr || m->config.tenant != request.caller.tenant) {
      return ErrorResponse(404, "model_not_found",
                           "no retraining is configured for this model in your tenant");
    }
    if (seg.size() == 2 && seg[1] == "versions") {
      if (method != "GET") return MethodNotAllowed("GET");
      return Versions(*m);
    }
    if (seg.size() == 4 && seg[1] == "versions" && (seg[3] == "approve" || seg[3] == "reject")) {
      if (method != "POST") return MethodNotAllowed("POST");
      std::optional<int64_t> version = ParseVersion(seg[2]);
      if (!version) {
        return ErrorResponse(404, "version_not_found", "a version is a positive integer");
      }
      return seg[3] == "approve" ? Approve(*m, *version) : Reject(*m, *version);
    }
    if (seg.size() == 2 && seg[1] == "retrain") {
      if (method == "POST") return StartRetrain(*m);
      if (method == "GET") return RetrainStatusResponse(*m);
      return MethodNotAllowed("GET, POST");
    }
    return ErrorResponse(404, "not_found", "no such route");
  }
};

Result<std::unique_ptr<RetrainScheduler>> RetrainScheduler::Start(Store& store, Options options) {
  if (options.data_dir.empty()) return InvalidArgumentError("the retraining needs a data folder");
  if (options.self.empty()) return InvalidArgumentError("the retraining needs the outpost program");
  std::set<std::string> names;
  for (const RetrainConfig& c : options.models) {
    OUTPOST_RETURN_IF_ERROR(ValidateRetrainConfig(c));
    if (!names.insert(c.model).second) {
      return InvalidArgumentError("retrain: model " + c.model + " is configured twice");
    }
  }
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(options.data_dir));
  auto impl = std::make_unique<Impl>(store, std::move(options));
  for (const RetrainConfig& c : impl->options.models) {
    auto slot = std::make_unique<ModelSlot>();
    slot->config = c;
    slot->status.model = c.model;
    slot->state_path = JoinPath(impl->options.data_dir, "retrain-" + c.model + ".json");
    OUTPOST_RETURN_IF_ERROR(LoadState(slot->state_path, slot->status));
    impl->UpdateDue(*slot);
    OUTPOST_LOG(kInfo) << "retraining configured" << Field("model", c.model)
                       << Field("tenant", c.tenant) << Field("min_new_labels", c.min_new_labels)
                       << Field("every_s", c.every.count())
                       << Field("labels_at_last_run", slot->status.labels_at_last_run)
                       << Field("auto_approve", c.auto_approve);
    impl->models.push_back(std::move(slot));
  }
  Impl* raw = impl.get();
  raw->loop = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<RetrainScheduler>(new RetrainScheduler(std::move(impl)));
}

RetrainScheduler::RetrainScheduler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RetrainScheduler::~RetrainScheduler() { Stop(); }

void RetrainScheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    for (auto& m : impl_->models) {
      if (m->child != nullptr) {
        OUTPOST_LOG(kInfo) << "stopping a running retraining job"
                           << Field("model", m->config.model);
        m->child->Signal(SIGTERM).IgnoreError();
      }
    }
  }
  impl_->wake.notify_all();
  if (impl_->loop.joinable()) impl_->loop.join();
  // No job starts once stopping is set and the loop has ended; the API refuses new ones.
  for (auto& m : impl_->models) {
    std::thread job;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      job = std::move(m->job);
    }
    if (job.joinable()) job.join();
  }
}

Result<RetrainStatus> RetrainScheduler::RunStatus(const std::string& model) const {
  ModelSlot* m = impl_->Find(model);
  if (m == nullptr) return NotFoundError("no retraining is configured for " + model);
  std::lock_guard<std::mutex> lock(impl_->mu);
  return m->status;
}

bool RetrainScheduler::Handles(const HubRequest& request) const {
  std::string_view path = TargetPath(request.target);
  if (!path.starts_with(kModelsPrefix)) return false;
  path.remove_prefix(kModelsPrefix.size());
  return path.empty() || path.front() == '/';
}

HubResponse RetrainScheduler::Handle(const HubRequest& request) { return impl_->Handle(request); }

}  // namespace outpost::hub
