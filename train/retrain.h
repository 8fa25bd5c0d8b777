// One retraining job: the training set (the model's original set plus the edge-labelled rows
// of the training side, train/FORMAT.md section 4), the challenger trained on it, the
// champion and the challenger evaluated on the edge holdout, the decision, and the three
// output files (section 3). Where the records and the champion come from, and where the
// result is registered, is the caller's business (apps/train_command.cc: the hub's store).
#ifndef OUTPOST_TRAIN_RETRAIN_H_
#define OUTPOST_TRAIN_RETRAIN_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "train/dataset.h"
#include "train/edge_records.h"
#include "train/evaluate.h"
#include "train/train_config.h"
#include "train/training_set.h"
#include "train/xgboost_trainer.h"

namespace outpost::train {

struct Champion {
  int64_t version = 0;
  std::string model_bytes{};  // an XGBoost model file (JSON or UBJSON) from the registry
};

struct RetrainInputs {
  std::string model{};  // the model's name
  int64_t version = 1;  // the version the challenger would get
  OriginalSet original{};
  std::span<const EdgeRecord> records{};
  std::optional<Champion> champion{};
};

// Trains a model on a data set and returns its JSON model file: TrainXGBoost in this process
// (LocalTrainer), or TrainDistributed across worker processes.
using TrainFn = std::function<Result<std::string>(const Dataset&, const TrainOptions&)>;
TrainFn LocalTrainer();

struct RetrainResult {
  bool candidate = false;  // the decision: beats the champion by the margin (or no champion)
  std::string reason{};
  BinaryMetrics challenger{};
  std::optional<BinaryMetrics> champion{};
  EdgeExamples edge{};  // the edge rows, their ranges and the join counts
  std::string training_set_sha256{};
  int64_t training_rows = 0;
  std::string model_json{};
  std::string metrics_json{};  // metrics.json
  std::string lineage_json{};  // lineage.json
};

// Runs the job. `workers` is only reported in metrics.json. InvalidArgument when the edge
// records give no holdout rows (nothing to judge the challenger on), when the champion cannot
// score the holdout, or for a bad configuration; the trainer's errors as it returns them.
Result<RetrainResult> Retrain(const RetrainInputs& inputs, const TrainConfig& config,
                              const TrainFn& train, int workers = 1);

// Writes model.json, metrics.json and lineage.json into `dir` (created if absent), each
// atomically, lineage.json last.
Status WriteRetrainOutput(const RetrainResult& result, const std::string& dir);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_RETRAIN_H_
