// A model's config.yaml (model_config.h), read and rewritten through the YAML adapter
// (base/yaml/yaml.h).
#include "serve/model_config.h"

#include <algorithm>
#include <set>

#include "base/yaml/yaml.h"

namespace outpost::serve {
namespace {

constexpr size_t kMaxTensors = 256;
constexpr size_t kMaxRank = 16;
constexpr size_t kMaxNameLength = 256;

Status CheckKeys(const yaml::Node& node, const std::set<std::string>& allowed,
                 std::string_view where) {
  for (const auto& kv : node.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string key, kv.first.As<std::string>());
    if (!allowed.count(key)) {
      return InvalidArgumentError("unknown key \"" + key + "\" in " + std::string(where));
    }
  }
  return Status();
}

Result<std::string> ParseName(const yaml::Node& node, std::string_view what) {
  if (!node || !node.IsScalar()) return InvalidArgumentError(std::string(what) + " needs a name");
  OUTPOST_ASSIGN_OR_RETURN(std::string name, node.As<std::string>());
  if (name.empty() || name.size() > kMaxNameLength) {
    return InvalidArgumentError(std::string(what) + " name must have 1 to 256 characters");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '/') {
      return InvalidArgumentError(std::string(what) + " name \"" + name +
                                  "\" has a control character or '/'");
    }
  }
  return name;
}

Result<std::vector<engine::TensorSpec>> ParseTensors(const yaml::Node& node, std::string_view key) {
  std::vector<engine::TensorSpec> out;
  if (!node) return out;
  if (!node.IsSequence()) return InvalidArgumentError(std::string(key) + " must be a list");
  if (node.size() > kMaxTensors) return InvalidArgumentError(std::string(key) + " has too many entries");
  std::set<std::string> seen;
  for (const yaml::Node& t : node.items()) {
    if (!t.IsMap()) return InvalidArgumentError("each entry of " + std::string(key) + " must be a map");
    OUTPOST_RETURN_IF_ERROR(CheckKeys(t, {"name", "datatype", "shape"}, key));
    engine::TensorSpec spec;
    OUTPOST_ASSIGN_OR_RETURN(spec.name, ParseName(t["name"], key));
    if (!seen.insert(spec.name).second) {
      return InvalidArgumentError(std::string(key) + " names \"" + spec.name + "\" twice");
    }
    if (!t["datatype"]) return InvalidArgumentError(std::string(key) + " \"" + spec.name + "\" needs a datatype");
    OUTPOST_ASSIGN_OR_RETURN(std::string datatype, t["datatype"].As<std::string>());
    OUTPOST_ASSIGN_OR_RETURN(spec.type, engine::ParseDataType(datatype));
    const yaml::Node shape = t["shape"];
    if (!shape || !shape.IsSequence() || shape.size() > kMaxRank) {
      return InvalidArgumentError(std::string(key) + " \"" + spec.name +
                                  "\" needs a shape: a list of at most 16 dimensions");
    }
    for (const yaml::Node& d : shape.items()) {
      OUTPOST_ASSIGN_OR_RETURN(int64_t dim, d.As<int64_t>());
      if (dim < -1) {
        return InvalidArgumentError(std::string(key) + " \"" + spec.name +
                                    "\": a dimension is -1 (variable) or >= 0");
      }
      spec.shape.push_back(dim);
    }
    out.push_back(std::move(spec));
  }
  return out;
}

Result<VersionPolicy> ParseVersionPolicy(const yaml::Node& node) {
  VersionPolicy policy;
  if (!node) return policy;
  if (!node.IsMap() || node.size() != 1) {
    return InvalidArgumentError("version_policy must have exactly one of latest, all, specific");
  }
  OUTPOST_RETURN_IF_ERROR(CheckKeys(node, {"latest", "all", "specific"}, "version_policy"));
  if (node["latest"]) {
    OUTPOST_ASSIGN_OR_RETURN(int n, node["latest"].As<int>());
    if (n < 1) return InvalidArgumentError("version_policy.latest must be at least 1");
    policy.latest = n;
  } else if (node["all"]) {
    OUTPOST_ASSIGN_OR_RETURN(bool all, node["all"].As<bool>());
    if (!all) return InvalidArgumentError("version_policy.all must be true");
    policy.kind = VersionPolicy::Kind::kAll;
  } else {
    policy.kind = VersionPolicy::Kind::kSpecific;
    const yaml::Node list = node["specific"];
    if (!list.IsSequence() || list.size() == 0) {
      return InvalidArgumentError("version_policy.specific must be a non-empty list of versions");
    }
    for (const yaml::Node& v : list.items()) {
      OUTPOST_ASSIGN_OR_RETURN(int64_t version, v.As<int64_t>());
      if (version < 1) return InvalidArgumentError("versions are positive integers");
      policy.versions.push_back(version);
    }
    std::sort(policy.versions.begin(), policy.versions.end());
    policy.versions.erase(std::unique(policy.versions.begin(), policy.versions.end()),
                          policy.versions.end());
  }
  return policy;
}

Result<BatchingConfig> ParseBatching(const yaml::Node& node, int64_t max_batch_size) {
  BatchingConfig batching;
  if (!node) return batching;
  if (!node.IsMap()) return InvalidArgumentError("batching must be a map");
  OUTPOST_RETURN_IF_ERROR(CheckKeys(node,
                                    {"preferred_batch_sizes", "max_queue_delay_microseconds",
                                     "instance_count", "max_queue_size",
                                     "default_timeout_microseconds"},
                                    "batching"));
  if (const yaml::Node sizes = node["preferred_batch_sizes"]) {
    if (!sizes.IsSequence() || sizes.size() > 32) {
      return InvalidArgumentError("batching.preferred_batch_sizes must be a list of at most 32 sizes");
    }
    for (const yaml::Node& size : sizes.items()) {
      OUTPOST_ASSIGN_OR_RETURN(const int64_t n, size.As<int64_t>());
      if (n < 1 || n > max_batch_size) {
        return InvalidArgumentError("batching.preferred_batch_sizes: " + std::to_string(n) +
                                    " is not within 1..max_batch_size (" +
                                    std::to_string(max_batch_size) + ")");
      }
      batching.preferred_batch_sizes.push_back(n);
    }
    std::sort(batching.preferred_batch_sizes.begin(), batching.preferred_batch_sizes.end());
    batching.preferred_batch_sizes.erase(std::unique(batching.preferred_batch_sizes.begin(),
                                                     batching.preferred_batch_sizes.end()),
                                         batching.preferred_batch_sizes.end());
  }
  auto integer = [&node](const char* key, int64_t low, int64_t high,
                         int64_t& out) -> Status {
    if (!node[key]) return Status();
    OUTPOST_ASSIGN_OR_RETURN(const int64_t v, node[key].As<int64_t>());
    if (v < low || v > high) {
      return InvalidArgumentError("batching." + std::string(key) + " must be within " +
                                  std::to_string(low) + ".." + std::to_string(high));
    }
    out = v;
    return Status();
  };
  OUTPOST_RETURN_IF_ERROR(integer("max_queue_delay_microseconds", 0, kMaxBatchingMicroseconds,
                                  batching.max_queue_delay_microseconds));
  OUTPOST_RETURN_IF_ERROR(integer("default_timeout_microseconds", 0, kMaxTimeoutMicroseconds,
                                  batching.default_timeout_microseconds));
  OUTPOST_RETURN_IF_ERROR(
      integer("max_queue_size", 1, 1'000'000, batching.max_queue_size));
  int64_t instances = batching.instance_count;
  OUTPOST_RETURN_IF_ERROR(integer("instance_count", 0, 1024, instances));
  batching.instance_count = static_cast<int>(instances);
  return batching;
}

Result<ShadowConfig> ParseShadow(const yaml::Node& node) {
  ShadowConfig shadow;
  if (!node) return shadow;
  if (!node.IsMap()) return InvalidArgumentError("shadow must be a map");
  OUTPOST_RETURN_IF_ERROR(
      CheckKeys(node, {"version", "decision_threshold", "tolerance", "promote"}, "shadow"));
  if (!node["version"]) return InvalidArgumentError("shadow needs a version");
  OUTPOST_ASSIGN_OR_RETURN(shadow.version, node["version"].As<int64_t>());
  if (shadow.version < 1) return InvalidArgumentError("shadow.version must be a positive integer");
  auto number = [](const yaml::Node& n, const char* key, double low, double high,
                   double& out) -> Status {
    if (!n[key]) return Status();
    OUTPOST_ASSIGN_OR_RETURN(const double v, n[key].As<double>());
    if (!(v >= low && v <= high)) {
      return InvalidArgumentError("shadow: " + std::string(key) + " must be within " +
                                  std::to_string(low) + ".." + std::to_string(high));
    }
    out = v;
    return Status();
  };
  OUTPOST_RETURN_IF_ERROR(number(node, "decision_threshold", -1e9, 1e9,
                                 shadow.decision_threshold));
  OUTPOST_RETURN_IF_ERROR(number(node, "tolerance", 0, 1e9, shadow.tolerance));
  if (const yaml::Node rule = node["promote"]) {
    if (!rule.IsMap()) return InvalidArgumentError("shadow.promote must be a map");
    OUTPOST_RETURN_IF_ERROR(CheckKeys(
        rule, {"min_requests", "min_agreement", "min_labelled", "min_accuracy_gain"},
        "shadow.promote"));
    double requests = static_cast<double>(shadow.promote.min_requests);
    double labelled = static_cast<double>(shadow.promote.min_labelled);
    OUTPOST_RETURN_IF_ERROR(number(rule, "min_requests", 1, 1e9, requests));
    OUTPOST_RETURN_IF_ERROR(number(rule, "min_labelled", 0, 1e9, labelled));
    OUTPOST_RETURN_IF_ERROR(number(rule, "min_agreement", 0, 1, shadow.promote.min_agreement));
    OUTPOST_RETURN_IF_ERROR(
        number(rule, "min_accuracy_gain", -1, 1, shadow.promote.min_accuracy_gain));
    shadow.promote.min_requests = static_cast<int64_t>(requests);
    shadow.promote.min_labelled = static_cast<int64_t>(labelled);
  }
  return shadow;
}

// The `threads:` key (serve/FORMAT.md, section "Intra-op threads"): 1..kMaxModelThreads, for
// the onnx backend only; 0 when absent.
Result<int> ParseThreads(const yaml::Node& node, const std::string& backend) {
  if (!node) return 0;
  if (backend != "onnx") {
    return ErrorWithReason(
        StatusCode::kInvalidArgument, "model_threads_backend",
        "threads is for the onnx backend; " + backend + " scores each run on one thread");
  }
  Result<int64_t> threads =
      node.IsScalar() ? node.As<int64_t>() : Result<int64_t>(InvalidArgumentError("not a number"));
  if (!threads.ok() || *threads < 1 || *threads > kMaxModelThreads) {
    return ErrorWithReason(
        StatusCode::kInvalidArgument, "model_threads_range",
        "threads must be an integer within 1.." + std::to_string(kMaxModelThreads));
  }
  return static_cast<int>(*threads);
}

Result<ModelConfig> ParseNode(const yaml::Node& root, std::string_view folder_name) {
  ModelConfig config;
  config.name = std::string(folder_name);
  if (!root || root.IsNull()) return InvalidArgumentError("config.yaml is empty; it needs at least a backend");
  if (!root.IsMap()) return InvalidArgumentError("config.yaml must be a map of keys");
  OUTPOST_RETURN_IF_ERROR(
      CheckKeys(root,
                {"name", "backend", "version_policy", "max_batch_size", "inputs", "outputs",
                 "parameters", "insight", "batching", "shadow", "threads"},
                "config.yaml"));
  if (root["name"]) {
    OUTPOST_ASSIGN_OR_RETURN(std::string name, ParseName(root["name"], "model"));
    if (name != folder_name) {
      return InvalidArgumentError("name \"" + name + "\" differs from its folder \"" +
                                  std::string(folder_name) + "\"");
    }
  }
  if (!root["backend"]) return InvalidArgumentError("config.yaml needs a backend (xgboost or onnx)");
  OUTPOST_ASSIGN_OR_RETURN(config.backend, root["backend"].As<std::string>());
  if (config.backend != "xgboost" && config.backend != "onnx") {
    return InvalidArgumentError("backend \"" + config.backend + "\" is not one of xgboost, onnx");
  }
  OUTPOST_ASSIGN_OR_RETURN(config.version_policy, ParseVersionPolicy(root["version_policy"]));
  config.has_insight_section = static_cast<bool>(root["insight"]);
  if (root["max_batch_size"]) {
    OUTPOST_ASSIGN_OR_RETURN(config.max_batch_size, root["max_batch_size"].As<int64_t>());
    if (config.max_batch_size < 0 || config.max_batch_size > (int64_t{1} << 20)) {
      return InvalidArgumentError("max_batch_size must be within 0..1048576");
    }
  }
  OUTPOST_ASSIGN_OR_RETURN(config.batching,
                           ParseBatching(root["batching"], config.max_batch_size));
  OUTPOST_ASSIGN_OR_RETURN(config.threads, ParseThreads(root["threads"], config.backend));
  OUTPOST_ASSIGN_OR_RETURN(config.shadow, ParseShadow(root["shadow"]));
  OUTPOST_ASSIGN_OR_RETURN(config.inputs, ParseTensors(root["inputs"], "inputs"));
  OUTPOST_ASSIGN_OR_RETURN(config.outputs, ParseTensors(root["outputs"], "outputs"));
  if (const yaml::Node params = root["parameters"]) {
    if (!params.IsMap()) return InvalidArgumentError("parameters must be a map of strings");
    for (const auto& kv : params.entries()) {
      OUTPOST_ASSIGN_OR_RETURN(std::string key, kv.first.As<std::string>());
      if (!kv.second.IsScalar()) {
        return InvalidArgumentError("parameter \"" + key + "\" must be a scalar");
      }
      OUTPOST_ASSIGN_OR_RETURN(config.parameters[key], kv.second.As<std::string>());
    }
  }
  return config;
}

}  // namespace

std::vector<int64_t> VersionPolicy::Select(std::vector<int64_t> available) const {
  std::sort(available.begin(), available.end());
  switch (kind) {
    case Kind::kAll:
      return available;
    case Kind::kLatest: {
      size_t n = std::min(available.size(), static_cast<size_t>(latest));
      return std::vector<int64_t>(available.end() - static_cast<std::ptrdiff_t>(n), available.end());
    }
    case Kind::kSpecific:
      // Every named version is selected, present or not, so that a missing one is reported.
      return versions;
  }
  return {};
}

int IntraOpThreadsFor(const ModelConfig& config, int instances, int thread_budget) {
  if (config.threads > 0) return std::min(config.threads, kMaxModelThreads);
  const int share = std::max(1, thread_budget) / std::max(1, instances);
  return std::clamp(share, 1, kMaxModelThreads);
}

Result<ModelConfig> ParseModelConfig(std::string_view yaml_text, std::string_view folder_name) {
  Result<yaml::Node> root = yaml::Parse(yaml_text);
  if (!root.ok()) return yaml::WithYamlContext(root.status(), "config.yaml");
  Result<ModelConfig> config = ParseNode(*root, folder_name);
  if (!config.ok()) return yaml::WithYamlContext(config.status(), "config.yaml");
  return config;
}

Result<std::string> ConfigAfterShadow(std::string_view yaml_text, std::string_view folder_name,
                                      const std::vector<int64_t>& versions) {
  OUTPOST_RETURN_IF_ERROR(ParseModelConfig(yaml_text, folder_name).status());
  if (versions.empty()) return InvalidArgumentError("a version policy needs a version");
  Result<yaml::Node> root = yaml::Parse(yaml_text);
  if (!root.ok()) return yaml::WithYamlContext(root.status(), "config.yaml");
  root->Remove("shadow");
  yaml::Node policy = yaml::Node::Map();
  yaml::Node list = yaml::Node::Sequence();
  for (int64_t v : versions) list.Push(yaml::Node::Int(v));
  policy.Set("specific", list);
  root->Set("version_policy", policy);
  Result<std::string> emitted = yaml::Emit(*root);
  if (!emitted.ok()) return emitted.status().WithContext("config.yaml");
  std::string text = *emitted + "\n";
  OUTPOST_RETURN_IF_ERROR(ParseModelConfig(text, folder_name).status());
  return text;
}

}  // namespace outpost::serve
