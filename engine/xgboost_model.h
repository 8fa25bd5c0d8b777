// The XGBoost backend: tree ensembles (gbtree, dart) and linear boosters (gblinear) saved by
// XGBoost as JSON (model.json) or UBJSON (model.ubj), scored through XGBoost's C API.
//
// Signature by default: one input "input" FP32 [-1, F] (F = the booster's feature count;
// NaN marks a missing value) and one output "output" FP32 [-1] (or [-1, K] when the model
// gives K values per row: K-class soft probabilities, multi-target regression, margins of a
// multi-class model). The config may rename them, fix the batch size and declare FP64 input.
//
// Model files are untrusted (they cross the air gap on removable media): every file is
// parsed and checked by Outpost before XGBoost sees it (engine/xgboost_model_check.h), so a
// hostile or damaged file is refused with InvalidArgument instead of crashing the process.
// XGBoost's legacy binary format and categorical splits are refused.
//
// Thread-safety: the returned model's Run() may be called from many threads at once.
#ifndef OUTPOST_ENGINE_XGBOOST_MODEL_H_
#define OUTPOST_ENGINE_XGBOOST_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/model.h"

namespace outpost::engine {

struct XGBoostOptions {
  // Overrides of the default signature. When given, must have exactly one input and one
  // output, and their shapes must agree with the booster (feature count, class count).
  std::vector<TensorSpec> inputs = {};
  std::vector<TensorSpec> outputs = {};
  // "value" (default): transformed prediction (probability for logistic objectives).
  // "margin": untransformed margin.
  std::string predict = "value";
  // Threads XGBoost may use inside one Run() call. The scoring server already runs many
  // requests at once, so one thread per call (the default) keeps the cores for requests.
  int threads = 1;
  // Largest model file accepted, in bytes. Loading needs a few times this much memory.
  uint64_t max_file_bytes = uint64_t{256} << 20;
};

// Loads a model file. NotFound when missing; InvalidArgument when the file is not a model
// Outpost accepts (see above), is larger than options.max_file_bytes, or the options disagree
// with it; other I/O errors as ReadFile() reports them.
Result<std::unique_ptr<Model>> LoadXGBoostModel(const std::string& path,
                                                const XGBoostOptions& options = {});

// Loads a model from the bytes of a model file. Same errors as LoadXGBoostModel, less the
// file's. Used for bundles being verified in memory and by the fuzz target.
Result<std::unique_ptr<Model>> LoadXGBoostModelFromBytes(std::string_view bytes,
                                                         const XGBoostOptions& options = {});

}  // namespace outpost::engine

#endif  // OUTPOST_ENGINE_XGBOOST_MODEL_H_
