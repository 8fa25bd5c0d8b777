// The retraining job's configuration, `train.yaml` (train/FORMAT.md section 1).
#ifndef OUTPOST_TRAIN_TRAIN_CONFIG_H_
#define OUTPOST_TRAIN_TRAIN_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "train/evaluate.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost::train {

struct TrainConfig {
  std::vector<std::string> features{};
  std::map<std::string, float> labels{};
  // Exactly one of the two: a CSV file (absolute, resolved against the YAML file's folder),
  // or the pump simulator.
  std::string original_csv{};
  std::optional<PumpDataOptions> original_synthetic{};
  TrainOptions xgboost{};
  double holdout_fraction = 0.3;
  std::string holdout_salt{};
  Metric metric = Metric::kAuc;
  double margin = 0.01;
  std::string tenant = "default";
  int64_t max_records = 1'000'000;
  int workers = 1;
};

// Parses `yaml` (at most 1 MiB); `base_dir` resolves a relative `original.csv`.
// InvalidArgument naming the key for anything FORMAT.md does not allow.
Result<TrainConfig> ParseTrainConfig(std::string_view yaml, const std::string& base_dir);

// Reads and parses the file at `path`.
Result<TrainConfig> LoadTrainConfig(const std::string& path);

// The original training set the configuration names, and a one-line description of where it
// came from ("csv:/path", "synthetic:rows=5000,seed=1,fault_rate=0.05").
struct OriginalSet {
  Dataset data{};
  std::string source{};
};
Result<OriginalSet> LoadOriginalSet(const TrainConfig& config);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_TRAIN_CONFIG_H_
