// Training XGBoost models from a Dataset, saving them as model files the edge serves, and
// the reference scorer that acceptance tests compare Outpost's scoring with.
//
// The reference scorer shares no code with the engine's XGBoost backend
// (engine/xgboost_model.cc): it loads the model bytes into a fresh booster and predicts
// through a DMatrix, XGBoost's ordinary batch path, where the engine predicts in place.
#ifndef OUTPOST_TRAIN_XGBOOST_TRAINER_H_
#define OUTPOST_TRAIN_XGBOOST_TRAINER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "train/dataset.h"

namespace outpost::train {

// The two model file encodings XGBoost writes and the edge serves.
enum class ModelFormat { kJson, kUbjson };
// "model.json" / "model.ubj": the file name the model repository expects.
std::string_view ModelFileName(ModelFormat format);

struct TrainOptions {
  // XGBoost's training parameters, as XGBoost spells them ("objective", "max_depth", "eta",
  // "num_class", ...). The defaults suit the pump-fault demo; "nthread" 1 and "seed" 0 make
  // training reproducible on a shared machine.
  std::map<std::string, std::string> params = {
      {"objective", "binary:logistic"}, {"max_depth", "4"}, {"eta", "0.3"},
      {"tree_method", "hist"},          {"nthread", "1"},   {"seed", "0"},
  };
  // Boosting rounds, 1 .. 100,000.
  int rounds = 50;
};

// Where a worker of XGBoost's distributed training finds the others: the Rabit tracker
// (xgboost.tracker.RabitTracker) on host:port, this worker's task id (0 .. world_size-1; the
// tracker started with sortby="task" gives it that rank) and the number of workers.
struct CollectiveOptions {
  std::string tracker_host = "127.0.0.1";
  int tracker_port = 0;
  int task_id = 0;
  int world_size = 1;
};

// A trained booster. Thread-compatible: do not use one from two threads at once.
class TrainedModel {
 public:
  ~TrainedModel();
  TrainedModel(const TrainedModel&) = delete;
  TrainedModel& operator=(const TrainedModel&) = delete;

  // The bytes of a model file in `format`. Internal on an XGBoost failure.
  Result<std::string> Serialize(ModelFormat format) const;
  // Writes the model file to `path` atomically (base/file.h's WriteFileAtomically).
  Status Save(const std::string& path, ModelFormat format) const;

  int64_t num_features() const { return num_features_; }

 private:
  friend Result<std::unique_ptr<TrainedModel>> TrainXGBoost(const Dataset&, const TrainOptions&);
  friend Result<std::unique_ptr<TrainedModel>> TrainXGBoostInCollective(
      const Dataset&, const TrainOptions&, const CollectiveOptions&);
  TrainedModel(void* booster, int64_t num_features)
      : booster_(booster), num_features_(num_features) {}

  void* booster_;  // XGBoost's BoosterHandle; owned
  int64_t num_features_;
};

// Trains a booster on `data` (labels required; NaN features are missing values).
// InvalidArgument for an inconsistent data set, a bad round count, or parameters or labels
// XGBoost rejects (for example a binary label of 2), with XGBoost's reason.
Result<std::unique_ptr<TrainedModel>> TrainXGBoost(const Dataset& data,
                                                   const TrainOptions& options);

// Trains as one worker of XGBoost's distributed training: joins the collective
// (XGCommunicatorInit), trains on this worker's shard with the same options as every other
// worker (XGBoost allreduces the quantile sketches and gradient histograms, so every worker
// ends with the same model), and leaves it (XGCommunicatorFinalize). Call it at most once per
// process: the collective is process-wide. Unavailable when the tracker cannot be reached
// or the collective fails; otherwise as TrainXGBoost.
Result<std::unique_ptr<TrainedModel>> TrainXGBoostInCollective(const Dataset& shard,
                                                               const TrainOptions& options,
                                                               const CollectiveOptions& collective);

enum class PredictKind { kValue, kMargin };

struct Predictions {
  std::vector<int64_t> shape;  // [rows] or [rows, K]
  std::vector<float> values;   // row-major
};

// Scores `rows` × `cols` row-major features (NaN = missing) with the model in `model_bytes`
// (a JSON or UBJSON model file). For tests and tools on trusted models only: the bytes go to
// XGBoost unchecked. InvalidArgument when XGBoost cannot read the model or the column count
// does not match it.
Result<Predictions> ReferencePredict(std::string_view model_bytes, std::span<const float> features,
                                     int64_t rows, int64_t cols,
                                     PredictKind kind = PredictKind::kValue);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_XGBOOST_TRAINER_H_
