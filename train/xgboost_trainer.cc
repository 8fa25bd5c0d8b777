// The XGBoost adapter of train/: the only file of train/ that calls XGBoost's C API (through
// engine/xgboost_handles.h, which it shares with the engine's backend).
#include "train/xgboost_trainer.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <new>
#include <utility>

#include "base/file.h"
#include "base/logging.h"
#include "engine/xgboost_handles.h"

namespace outpost::train {
namespace {

using engine::xgb::Booster;
using engine::xgb::DMatrix;

// A DMatrix over row-major floats with NaN as the missing value.
Status MakeDMatrix(std::span<const float> features, int64_t rows, int64_t cols, DMatrix& out) {
  if (rows < 0 || cols < 1 ||
      static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols) != features.size()) {
    return InvalidArgumentError("features hold " + std::to_string(features.size()) +
                                " values, not " + std::to_string(rows) + " rows of " +
                                std::to_string(cols));
  }
  if (XGDMatrixCreateFromMat(features.data(), static_cast<bst_ulong>(rows),
                             static_cast<bst_ulong>(cols), std::numeric_limits<float>::quiet_NaN(),
                             out.out()) != 0) {
    return InvalidArgumentError("XGBoost cannot take the features: " + engine::xgb::LastError());
  }
  return Status();
}

}  // namespace

std::string_view ModelFileName(ModelFormat format) {
  return format == ModelFormat::kJson ? "model.json" : "model.ubj";
}

TrainedModel::~TrainedModel() {
  if (booster_ != nullptr) XGBoosterFree(static_cast<BoosterHandle>(booster_));
}

Result<std::string> TrainedModel::Serialize(ModelFormat format) const {
  const char* config =
      format == ModelFormat::kJson ? "{\"format\":\"json\"}" : "{\"format\":\"ubj\"}";
  bst_ulong length = 0;
  const char* bytes = nullptr;
  if (XGBoosterSaveModelToBuffer(static_cast<BoosterHandle>(booster_), config, &length, &bytes) !=
      0) {
    return InternalError("XGBoost cannot save the model: " + engine::xgb::LastError());
  }
  try {
    return std::string(bytes, static_cast<size_t>(length));
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory while saving a model");
  }
}

Status TrainedModel::Save(const std::string& path, ModelFormat format) const {
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, Serialize(format));
  return WriteFileAtomically(path, bytes);
}

namespace {

// The training loop both TrainXGBoost and TrainXGBoostInCollective run.
Result<void*> TrainBooster(const Dataset& data, const TrainOptions& options) {
  OUTPOST_RETURN_IF_ERROR(CheckDataset(data, /*need_labels=*/true));
  if (data.rows < 1) return InvalidArgumentError("the data set has no rows");
  if (options.rounds < 1 || options.rounds > 100000) {
    return InvalidArgumentError("rounds must be between 1 and 100000");
  }
  engine::xgb::ForwardLogOnThisThread();
  DMatrix matrix;
  OUTPOST_RETURN_IF_ERROR(MakeDMatrix(data.features, data.rows, data.cols(), matrix));
  if (XGDMatrixSetFloatInfo(matrix.get(), "label", data.labels.data(),
                            static_cast<bst_ulong>(data.rows)) != 0) {
    return InvalidArgumentError("XGBoost refused the labels: " + engine::xgb::LastError());
  }
  Booster booster;
  DMatrixHandle train_set[] = {matrix.get()};
  if (XGBoosterCreate(train_set, 1, booster.out()) != 0) {
    return InternalError("XGBoost cannot create a booster: " + engine::xgb::LastError());
  }
  for (const auto& [key, value] : options.params) {
    if (XGBoosterSetParam(booster.get(), key.c_str(), value.c_str()) != 0) {
      return InvalidArgumentError("XGBoost refused parameter " + key + "=" + value + ": " +
                                  engine::xgb::LastError());
    }
  }
  for (int round = 0; round < options.rounds; ++round) {
    if (XGBoosterUpdateOneIter(booster.get(), round, matrix.get()) != 0) {
      return InvalidArgumentError("XGBoost training failed in round " + std::to_string(round) +
                                  ": " + engine::xgb::LastError());
    }
  }
  return static_cast<void*>(booster.release());
}

}  // namespace

Result<std::unique_ptr<TrainedModel>> TrainXGBoost(const Dataset& data,
                                                   const TrainOptions& options) {
  OUTPOST_ASSIGN_OR_RETURN(void* booster, TrainBooster(data, options));
  return std::unique_ptr<TrainedModel>(new TrainedModel(booster, data.cols()));
}

Result<std::unique_ptr<TrainedModel>> TrainXGBoostInCollective(const Dataset& shard,
                                                               const TrainOptions& options,
                                                               const CollectiveOptions& collective) {
  if (collective.world_size < 1 || collective.task_id < 0 ||
      collective.task_id >= collective.world_size || collective.tracker_port < 1 ||
      collective.tracker_port > 65535) {
    return InvalidArgumentError("bad collective options (task id, world size, tracker port)");
  }
  for (char c : collective.tracker_host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':')) {
      return InvalidArgumentError("bad tracker host");
    }
  }
  // XGBoost 1.7 hands every key of this object to Rabit as "key=value" (c_api.h,
  // XGCommunicatorInit); these are the names Rabit and the Python tracker use.
  // Task ids are compared as strings by the tracker; two digits keep their order numeric.
  char task_id[16];
  std::snprintf(task_id, sizeof(task_id), "%02d", collective.task_id);
  const std::string config =
      "{\"xgboost_communicator\":\"rabit\",\"DMLC_TRACKER_URI\":\"" + collective.tracker_host +
      "\",\"DMLC_TRACKER_PORT\":\"" + std::to_string(collective.tracker_port) +
      "\",\"DMLC_TASK_ID\":\"" + task_id +
      "\",\"DMLC_NUM_WORKER\":\"" + std::to_string(collective.world_size) +
      "\",\"rabit_world_size\":\"" + std::to_string(collective.world_size) + "\"}";
  engine::xgb::ForwardLogOnThisThread();
  if (XGCommunicatorInit(config.c_str()) != 0) {
    return UnavailableError("cannot join XGBoost's collective: " + engine::xgb::LastError());
  }
  Result<void*> booster = TrainBooster(shard, options);
  // Leaving tells the tracker this worker is done, success or not.
  if (XGCommunicatorFinalize() != 0 && booster.ok()) {
    XGBoosterFree(static_cast<BoosterHandle>(*booster));
    return UnavailableError("cannot leave XGBoost's collective: " + engine::xgb::LastError());
  }
  if (!booster.ok()) return booster.status();
  return std::unique_ptr<TrainedModel>(new TrainedModel(*booster, shard.cols()));
}

Result<Predictions> ReferencePredict(std::string_view model_bytes, std::span<const float> features,
                                     int64_t rows, int64_t cols, PredictKind kind) {
  Booster booster;
  if (XGBoosterCreate(nullptr, 0, booster.out()) != 0) {
    return InternalError("XGBoost cannot create a booster: " + engine::xgb::LastError());
  }
  if (XGBoosterLoadModelFromBuffer(booster.get(), model_bytes.data(), model_bytes.size()) != 0) {
    return InvalidArgumentError("XGBoost cannot read the model: " + engine::xgb::LastError());
  }
  bst_ulong model_features = 0;
  if (XGBoosterGetNumFeature(booster.get(), &model_features) != 0) {
    return InvalidArgumentError("XGBoost cannot tell the feature count: " + engine::xgb::LastError());
  }
  if (static_cast<int64_t>(model_features) != cols) {
    return InvalidArgumentError("the model has " + std::to_string(model_features) +
                                " features, the data " + std::to_string(cols));
  }
  DMatrix matrix;
  OUTPOST_RETURN_IF_ERROR(MakeDMatrix(features, rows, cols, matrix));
  const char* config = kind == PredictKind::kMargin
                           ? "{\"type\":1,\"training\":false,\"iteration_begin\":0,"
                             "\"iteration_end\":0,\"strict_shape\":false}"
                           : "{\"type\":0,\"training\":false,\"iteration_begin\":0,"
                             "\"iteration_end\":0,\"strict_shape\":false}";
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  const float* result = nullptr;
  if (XGBoosterPredictFromDMatrix(booster.get(), matrix.get(), config, &shape, &dims, &result) !=
      0) {
    return InvalidArgumentError("XGBoost prediction failed: " + engine::xgb::LastError());
  }
  Predictions out;
  size_t count = 1;
  for (bst_ulong i = 0; i < dims; ++i) {
    out.shape.push_back(static_cast<int64_t>(shape[i]));
    count *= static_cast<size_t>(shape[i]);
  }
  out.values.assign(result, result + count);
  return out;
}

}  // namespace outpost::train
