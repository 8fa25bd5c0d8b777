// train.yaml (train_config.h), read through the YAML adapter (base/yaml/yaml.h).
#include "train/train_config.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "base/file.h"
#include "base/yaml/yaml.h"

namespace outpost::train {
namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;

Status CheckKeys(const yaml::Node& node, std::string_view where,
                 const std::set<std::string, std::less<>>& allowed) {
  if (!node.IsMap()) return InvalidArgumentError(std::string(where) + " must be a map");
  for (const auto& entry : node.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(const std::string key, entry.first.As<std::string>());
    if (!allowed.contains(key)) {
      return InvalidArgumentError("unknown key \"" + key.substr(0, 64) + "\" in " +
                                  std::string(where));
    }
  }
  return Status();
}

template <typename T>
Status Read(const yaml::Node& node, std::string_view key, T& out) {
  Result<T> value = node.As<T>();
  if (!value.ok()) {
    return InvalidArgumentError("\"" + std::string(key) + "\" has the wrong type");
  }
  out = std::move(*value);
  return Status();
}

std::string Scalar(const yaml::Node& node) {
  return node.IsScalar() ? node.scalar() : std::string();
}

// The `original:` section: a CSV file (relative to train.yaml's folder) or synthetic readings.
Status ParseOriginal(const yaml::Node& original, const std::string& base_dir,
                     TrainConfig& config) {
  if (!original) return InvalidArgumentError("\"original\" is required");
  OUTPOST_RETURN_IF_ERROR(CheckKeys(original, "original", {"csv", "synthetic"}));
  if (original["csv"].IsDefined() == original["synthetic"].IsDefined()) {
    return InvalidArgumentError("\"original\" needs exactly one of \"csv\" and \"synthetic\"");
  }
  if (const yaml::Node csv = original["csv"]) {
    std::string path = Scalar(csv);
    if (path.empty()) return InvalidArgumentError("\"original.csv\" must be a path");
    config.original_csv = std::filesystem::path(path).is_absolute()
                              ? path
                              : (std::filesystem::path(base_dir) / path).lexically_normal().string();
  } else {
    const yaml::Node synthetic = original["synthetic"];
    OUTPOST_RETURN_IF_ERROR(CheckKeys(
        synthetic, "original.synthetic",
        {"rows", "seed", "fault_rate", "shift_feature", "shift_sigmas", "missing_rate"}));
    PumpDataOptions pump;
    if (synthetic["rows"]) OUTPOST_RETURN_IF_ERROR(Read(synthetic["rows"], "rows", pump.rows));
    if (synthetic["seed"]) OUTPOST_RETURN_IF_ERROR(Read(synthetic["seed"], "seed", pump.seed));
    if (synthetic["fault_rate"]) {
      OUTPOST_RETURN_IF_ERROR(Read(synthetic["fault_rate"], "fault_rate", pump.fault_rate));
    }
    if (synthetic["shift_feature"]) {
      OUTPOST_RETURN_IF_ERROR(
          Read(synthetic["shift_feature"], "shift_feature", pump.shift_feature));
    }
    if (synthetic["shift_sigmas"]) {
      OUTPOST_RETURN_IF_ERROR(Read(synthetic["shift_sigmas"], "shift_sigmas", pump.shift_sigmas));
    }
    if (synthetic["missing_rate"]) {
      OUTPOST_RETURN_IF_ERROR(Read(synthetic["missing_rate"], "missing_rate", pump.missing_rate));
    }
    config.original_synthetic = pump;
  }
  return Status();
}

Result<TrainConfig> Parse(const yaml::Node& root, const std::string& base_dir) {
  TrainConfig config;
  OUTPOST_RETURN_IF_ERROR(CheckKeys(root, "train.yaml",
                                    {"features", "labels", "original", "xgboost", "holdout",
                                     "decision", "tenant", "max_records", "workers"}));
  const yaml::Node features = root["features"];
  if (!features || !features.IsSequence()) {
    return InvalidArgumentError("\"features\" must be a list of feature names");
  }
  std::set<std::string> seen;
  for (const yaml::Node& f : features.items()) {
    std::string name = Scalar(f);
    if (name.empty() || name.size() > kMaxFeatureNameBytes) {
      return InvalidArgumentError("\"features\": a name must have 1 to 256 bytes");
    }
    if (!seen.insert(name).second) {
      return InvalidArgumentError("\"features\": \"" + name + "\" repeats");
    }
    config.features.push_back(std::move(name));
  }
  if (config.features.empty() || config.features.size() > kMaxDatasetCols) {
    return InvalidArgumentError("\"features\" must name 1 to 4096 features");
  }
  if (const yaml::Node labels = root["labels"]) {
    if (!labels.IsMap()) return InvalidArgumentError("\"labels\" must be a map");
    for (const auto& entry : labels.entries()) {
      double v = -1;
      OUTPOST_RETURN_IF_ERROR(Read(entry.second, "labels", v));
      if (v != 0.0 && v != 1.0) return InvalidArgumentError("\"labels\" values must be 0 or 1");
      OUTPOST_ASSIGN_OR_RETURN(const std::string label, entry.first.As<std::string>());
      config.labels[label] = static_cast<float>(v);
    }
  }
  OUTPOST_RETURN_IF_ERROR(ParseOriginal(root["original"], base_dir, config));
  if (const yaml::Node xgb = root["xgboost"]) {
    OUTPOST_RETURN_IF_ERROR(CheckKeys(xgb, "xgboost", {"rounds", "params"}));
    if (xgb["rounds"]) OUTPOST_RETURN_IF_ERROR(Read(xgb["rounds"], "rounds", config.xgboost.rounds));
    if (config.xgboost.rounds < 1 || config.xgboost.rounds > 100000) {
      return InvalidArgumentError("\"xgboost.rounds\" must be between 1 and 100000");
    }
    if (const yaml::Node params = xgb["params"]) {
      if (!params.IsMap()) return InvalidArgumentError("\"xgboost.params\" must be a map");
      for (const auto& entry : params.entries()) {
        std::string value = Scalar(entry.second);
        if (value.empty()) {
          return InvalidArgumentError("\"xgboost.params\" values must be scalars");
        }
        OUTPOST_ASSIGN_OR_RETURN(const std::string param, entry.first.As<std::string>());
        config.xgboost.params[param] = value;
      }
    }
  }
  if (const yaml::Node holdout = root["holdout"]) {
    OUTPOST_RETURN_IF_ERROR(CheckKeys(holdout, "holdout", {"fraction", "salt"}));
    if (holdout["fraction"]) {
      OUTPOST_RETURN_IF_ERROR(Read(holdout["fraction"], "fraction", config.holdout_fraction));
    }
    if (holdout["salt"]) OUTPOST_RETURN_IF_ERROR(Read(holdout["salt"], "salt", config.holdout_salt));
  }
  if (!(config.holdout_fraction > 0.0 && config.holdout_fraction < 1.0)) {
    return InvalidArgumentError("\"holdout.fraction\" must be in (0, 1)");
  }
  if (const yaml::Node decision = root["decision"]) {
    OUTPOST_RETURN_IF_ERROR(CheckKeys(decision, "decision", {"metric", "margin"}));
    if (decision["metric"]) {
      OUTPOST_ASSIGN_OR_RETURN(config.metric, ParseMetric(Scalar(decision["metric"])));
    }
    if (decision["margin"]) OUTPOST_RETURN_IF_ERROR(Read(decision["margin"], "margin", config.margin));
  }
  if (!std::isfinite(config.margin) || config.margin < 0.0 || config.margin > 1.0) {
    return InvalidArgumentError("\"decision.margin\" must be in [0, 1]");
  }
  if (root["tenant"]) OUTPOST_RETURN_IF_ERROR(Read(root["tenant"], "tenant", config.tenant));
  if (config.tenant.empty()) return InvalidArgumentError("\"tenant\" must not be empty");
  if (root["max_records"]) {
    OUTPOST_RETURN_IF_ERROR(Read(root["max_records"], "max_records", config.max_records));
  }
  if (config.max_records < 1 || config.max_records > 10'000'000) {
    return InvalidArgumentError("\"max_records\" must be between 1 and 10000000");
  }
  if (root["workers"]) OUTPOST_RETURN_IF_ERROR(Read(root["workers"], "workers", config.workers));
  if (config.workers < 1 || config.workers > 64) {
    return InvalidArgumentError("\"workers\" must be between 1 and 64");
  }
  return config;
}

}  // namespace

Result<TrainConfig> ParseTrainConfig(std::string_view yaml, const std::string& base_dir) {
  if (yaml.size() > kMaxConfigBytes) return InvalidArgumentError("train.yaml is over 1 MiB");
  Result<yaml::Node> root = yaml::Parse(yaml);
  if (!root.ok()) return yaml::WithYamlContext(root.status(), "train.yaml");
  Result<TrainConfig> config = Parse(*root, base_dir);
  if (!config.ok()) return yaml::WithYamlContext(config.status(), "train.yaml");
  return config;
}

Result<TrainConfig> LoadTrainConfig(const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxConfigBytes + 1));
  std::string dir = std::filesystem::path(path).parent_path().string();
  Result<TrainConfig> config = ParseTrainConfig(text, dir.empty() ? "." : dir);
  if (!config.ok()) return config.status().WithContext(path);
  return config;
}

Result<OriginalSet> LoadOriginalSet(const TrainConfig& config) {
  OriginalSet out;
  if (config.original_synthetic.has_value()) {
    const PumpDataOptions& pump = *config.original_synthetic;
    OUTPOST_ASSIGN_OR_RETURN(out.data, MakePumpReadings(pump));
    if (out.data.feature_names != config.features) {
      return InvalidArgumentError(
          "\"features\" must list the pump simulator's features in its order for "
          "original.synthetic");
    }
    out.source = "synthetic:rows=" + std::to_string(pump.rows) +
                 ",seed=" + std::to_string(pump.seed) +
                 ",fault_rate=" + std::to_string(pump.fault_rate);
    return out;
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(config.original_csv));
  Result<Dataset> data = ParseCsvDataset(text, config.features);
  if (!data.ok()) return data.status().WithContext(config.original_csv);
  out.data = std::move(data).value();
  out.source = "csv:" + config.original_csv;
  return out;
}

}  // namespace outpost::train
