// The release step (release.h): a registry version becomes a release folder, with its
// config.yaml made from the model's template, and then a signed bundle (ApproveAndRelease);
// ValidateRetrainConfig checks a `retrain:` entry against the same template rules. This file
// reads the model config template and writes the release's config.yaml through the YAML
// adapter (base/yaml/yaml.h). The retraining schedule is in retrain_scheduler.cc, its
// operator API in registry_api.cc.
#include "hub/release.h"

#include <cmath>
#include <optional>
#include <string_view>
#include <utility>

#include "base/coding.h"
#include "base/file.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "base/names.h"
#include "base/yaml/yaml.h"
#include "bundle/bundle.h"
#include "bundle/crypto.h"
#include "bundle/keys.h"
#include "bundle/metadata.h"
#include "hub/model_artifact.h"

namespace outpost::hub {
namespace {

constexpr uint64_t kMaxTemplateBytes = 1 << 20;  // a model's config.yaml template

// --- YAML ---

// A YAML document as a map, or InvalidArgument naming `what`.
Result<yaml::Node> LoadYamlMap(const std::string& text, const std::string& what) {
  Result<yaml::Node> node = yaml::Parse(text);
  if (!node.ok()) return yaml::WithYamlContext(node.status(), what);
  if (!node->IsMap()) return InvalidArgumentError(what + " is not a YAML map");
  return node;
}

// The tensors of config.yaml's `inputs` or `outputs` as descriptor JSON.
Result<std::string> TensorsJson(const yaml::Node& root, const char* key) {
  std::string out;
  JsonWriter w(out);
  w.BeginArray();
  const yaml::Node list = root[key];
  if (list) {
    if (!list.IsSequence()) {
      return InvalidArgumentError(std::string("config.yaml: ") + key + " is not a list");
    }
    for (const yaml::Node& t : list.items()) {
      if (!t.IsMap() || !t["name"] || !t["datatype"] || !t["shape"] || !t["shape"].IsSequence()) {
        return InvalidArgumentError(std::string("config.yaml: each of ") + key +
                                    " needs a name, a datatype and a shape list");
      }
      OUTPOST_ASSIGN_OR_RETURN(const std::string name, t["name"].As<std::string>());
      OUTPOST_ASSIGN_OR_RETURN(const std::string datatype, t["datatype"].As<std::string>());
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
      for (const yaml::Node& d : t["shape"].items()) {
        OUTPOST_ASSIGN_OR_RETURN(const int64_t dim, d.As<int64_t>());
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
  OUTPOST_ASSIGN_OR_RETURN(yaml::Node root, LoadYamlMap(config_yaml, "config.yaml"));
  Result<std::string> inputs = TensorsJson(root, "inputs");
  if (!inputs.ok()) return yaml::WithYamlContext(inputs.status(), "config.yaml");
  Result<std::string> outputs = TensorsJson(root, "outputs");
  if (!outputs.ok()) return yaml::WithYamlContext(outputs.status(), "config.yaml");
  return std::make_pair(std::move(*inputs), std::move(*outputs));
}

// --- JSON read with the bundle library's strict parser ---

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

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

// --- the release folder and config.yaml ---

Status WriteReleaseFolder(const std::string& out, const std::string& name,
                          const std::string& config_yaml,
                          const std::map<int64_t, ReleaseVersion>& versions) {
  if (!ModelName::IsValid(name)) {
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
  OUTPOST_ASSIGN_OR_RETURN(yaml::Node root, LoadYamlMap(template_yaml, "the model config"));
  for (const char* key : {"version_policy", "shadow"}) {
    if (root[key]) {
      return InvalidArgumentError(std::string("the model config sets `") + key +
                                  "`; the hub sets it in each release");
    }
  }
  yaml::Node list = yaml::Node::Sequence();
  list.Push(yaml::Node::Int(serving));
  yaml::Node policy = yaml::Node::Map();
  policy.Set("specific", list);
  policy.SetStyle(yaml::Style::kFlow);
  root.Set("version_policy", policy);
  if (shadow_version > 0) {
    yaml::Node shadow = yaml::Node::Map();
    shadow.Set("version", yaml::Node::Int(shadow_version));
    if (!shadow_yaml.empty()) {
      Result<yaml::Node> rule = yaml::Parse(shadow_yaml);
      if (!rule.ok()) return yaml::WithYamlContext(rule.status(), "the model config");
      if (!rule->IsNull()) {
        if (!rule->IsMap()) return InvalidArgumentError("the shadow rule is not a YAML map");
        if ((*rule)["version"]) {
          return InvalidArgumentError("the shadow rule names `version`; the hub sets it");
        }
        for (const auto& kv : rule->entries()) {
          Result<std::string> key = kv.first.As<std::string>();
          if (!key.ok()) return yaml::WithYamlContext(key.status(), "the model config");
          shadow.Set(*key, kv.second);
        }
      }
    }
    root.Set("shadow", shadow);
  }
  Result<std::string> emitted = yaml::Emit(root);
  if (!emitted.ok()) return emitted.status().WithContext("config.yaml");
  return *emitted + "\n";
}

Status ValidateRetrainConfig(const RetrainConfig& c) {
  auto bad = [&](const std::string& what) {
    return InvalidArgumentError("retrain " + c.model + ": " + what);
  };
  if (!ModelName::IsValid(c.model)) {
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
  OUTPOST_RETURN_IF_ERROR(ValidateRolloutPlan(r.rollout).WithContext("retrain " + c.model));
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
  if (entry == nullptr)
    return ErrorWithReason(StatusCode::kNotFound, "version_not_found",
                           "the registry has no " + what);
  if (entry->state != "candidate" && entry->state != "approved") {
    return ErrorWithReason(StatusCode::kFailedPrecondition, "not_candidate",
                           what + " is " + entry->state);
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
      OUTPOST_ASSIGN_OR_RETURN(std::string bytes, ReadModelArtifact(store, e));
      versions[e.version] =
          ReleaseVersion{.model_bytes = std::move(bytes),
                         .lineage_sha256 = HexEncode(bundle::Sha256Of(e.lineage_json)),
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
    // Its rollout first: the sites get the bundle wave by wave (hub/FORMAT.md section 11),
    // and a hub listing the bundle must find the rollout the moment the file is there.
    std::vector<std::string> sites = config.release.sites;
    for (const std::string& group : config.release.groups) {
      auto members = config.release.group_sites.find(group);
      if (members == config.release.group_sites.end()) continue;
      sites.insert(sites.end(), members->second.begin(), members->second.end());
    }
    OUTPOST_RETURN_IF_ERROR(StartRollout(store, config.tenant, model, version, options.version,
                                         config.release.rollout, sites, now_ms));
    const std::string bundles = JoinPath(data_dir, "bundles");
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(bundles));
    result.bundle_path = JoinPath(bundles, stem + ".bundle");
    result.bundle_version = options.version;
    OUTPOST_RETURN_IF_ERROR(bundle::CreateBundle(folder, keys, options, result.bundle_path));
    // The store keeps the bundle too: every hub sharing it serves the bundle to the sites
    // it is meant for (hub/FORMAT.md section 10), whichever hub made it.
    OUTPOST_ASSIGN_OR_RETURN(std::string bundle_bytes,
                             ReadFile(result.bundle_path, kMaxReleaseBundleBytes));
    OUTPOST_RETURN_IF_ERROR(store.PutReleaseBundle(stem + ".bundle", bundle_bytes, now_ms));
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

}  // namespace outpost::hub
