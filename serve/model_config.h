// ModelConfig: what `<repo>/<model>/config.yaml` says about a model.
//
//   name: sensor              # optional; defaults to the folder's name, must match it
//   backend: xgboost          # xgboost | onnx
//   version_policy:           # as Triton's: exactly one of
//     latest: 1               #   the N highest versions (default: latest 1)
//     # all: true             #   every version folder
//     # specific: [1, 3]      #   just these
//   max_batch_size: 0         # rows per batch with dynamic batching; 0 or 1 = off
//   batching:                 # the scheduler in front of the model (serve/scheduler.h)
//     preferred_batch_sizes: [8, 16]       # ascending, each <= max_batch_size
//     max_queue_delay_microseconds: 100    # how long a batch waits to fill (<= 1 s)
//     instance_count: 2                    # batches run at once; 0 = one per core
//     max_queue_size: 256                  # requests that may wait; more get 503/UNAVAILABLE
//     default_timeout_microseconds: 0      # a request still queued after this fails; 0 = none
//   inputs:                   # optional for xgboost: default one FP32 input [-1, features]
//     - {name: features, datatype: FP32, shape: [-1, 8]}
//   outputs:
//     - {name: probability, datatype: FP32, shape: [-1]}
//   parameters:               # backend-specific strings, e.g. xgboost's predict: margin
//     predict: value
//
// Keys Outpost does not know are rejected (a typo must not silently change behaviour), except
// under `insight:`, which insight/rules.h reads.
#ifndef OUTPOST_SERVE_MODEL_CONFIG_H_
#define OUTPOST_SERVE_MODEL_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/tensor.h"

namespace outpost::serve {

struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific };
  Kind kind = Kind::kLatest;
  int latest = 1;                  // for kLatest, >= 1
  std::vector<int64_t> versions;  // for kSpecific, ascending, unique

  // The versions to serve out of those present on disk (ascending).
  std::vector<int64_t> Select(std::vector<int64_t> available) const;
};

// The `batching:` section. Limits: preferred sizes at most 32 entries; delay and timeout at
// most kMaxBatchingMicroseconds; instance_count 0..1024; max_queue_size 1..1,000,000.
inline constexpr int64_t kMaxBatchingMicroseconds = 1'000'000;
inline constexpr int64_t kMaxTimeoutMicroseconds = 3'600'000'000;
struct BatchingConfig {
  std::vector<int64_t> preferred_batch_sizes;
  int64_t max_queue_delay_microseconds = 0;
  int instance_count = 0;  // 0 = one per core
  int64_t max_queue_size = 256;
  int64_t default_timeout_microseconds = 0;
};

struct ModelConfig {
  std::string name;
  std::string backend;
  VersionPolicy version_policy;
  int64_t max_batch_size = 0;
  BatchingConfig batching;
  // Empty when the config does not declare them (the backend then decides).
  std::vector<engine::TensorSpec> inputs;
  std::vector<engine::TensorSpec> outputs;
  std::map<std::string, std::string> parameters;
  // The config has an `insight:` section (insight/rules.h parses it): its rules must fit
  // every version's signature.
  bool has_insight_section = false;
};

// Parses config.yaml text. `folder_name` is the model's folder; the config's `name`, when
// given, must equal it. InvalidArgument with the offending key otherwise.
Result<ModelConfig> ParseModelConfig(std::string_view yaml_text, std::string_view folder_name);

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_MODEL_CONFIG_H_
