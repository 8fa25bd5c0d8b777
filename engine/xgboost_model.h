// The XGBoost backend: tree ensembles and linear boosters saved by XGBoost as JSON
// (model.json) or UBJSON (model.ubj), scored through XGBoost's C API.
//
// Signature by default: one input "input" FP32 [-1, F] (F = the booster's feature count;
// NaN marks a missing value) and one output "output" FP32 [-1] (or [-1, K] for K-class
// soft-probability objectives). The config may rename them and may declare FP64 input.
#ifndef OUTPOST_ENGINE_XGBOOST_MODEL_H_
#define OUTPOST_ENGINE_XGBOOST_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/model.h"

namespace outpost::engine {

struct XGBoostOptions {
  // Overrides of the default signature. When given, must have exactly one input and one
  // output, and their shapes must agree with the booster (feature count, class count).
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  // "value" (default): transformed prediction (probability for logistic objectives).
  // "margin": untransformed margin.
  std::string predict = "value";
};

// Loads a model file. InvalidArgument when the file is not a model XGBoost can read or the
// options disagree with it; NotFound when missing.
Result<std::unique_ptr<Model>> LoadXGBoostModel(const std::string& path,
                                                const XGBoostOptions& options = {});

}  // namespace outpost::engine

#endif  // OUTPOST_ENGINE_XGBOOST_MODEL_H_
