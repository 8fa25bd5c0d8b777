// ModelConfig: what `<repo>/<model>/config.yaml` says about a model.
//
//   name: sensor              # optional; defaults to the folder's name, must match it
//   backend: xgboost          # xgboost | onnx
//   version_policy:           # as Triton's: exactly one of
//     latest: 1               #   the N highest versions (default: latest 1)
//     # all: true             #   every version folder
//     # specific: [1, 3]      #   just these
//   max_batch_size: 0         # rows per batch with dynamic batching; 0 or 1 = off
//   threads: 4                # onnx only: intra-op threads per run, 1..64; default from the
//                             #   edge's thread budget (IntraOpThreadsFor below)
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
//   shadow:                   # one version scored beside the champion, never answering
//     version: 3              #   (serve/shadow.h; serve/FORMAT.md, section "Shadow mode")
//     decision_threshold: 0.5 #   a score >= this is a positive decision
//     tolerance: 0.0          #   |champion - shadow| <= this also counts as agreement
//     promote: {min_requests: 200, min_agreement: 0.9, min_labelled: 20,
//               min_accuracy_gain: 0.0}
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

// The `shadow:` section: a version scored beside the champion on every request, whose
// answers are compared and never returned, promoted or dropped by `promote`'s rule once
// min_requests rows were compared and min_labelled of them got feedback.
struct ShadowRule {
  int64_t min_requests = 200;      // 1..1e9
  double min_agreement = 0.9;      // 0..1
  int64_t min_labelled = 20;       // 0..1e9
  double min_accuracy_gain = 0.0;  // -1..1: shadow accuracy - champion accuracy
};
struct ShadowConfig {
  int64_t version = 0;  // 0 = no shadow
  double decision_threshold = 0.5;
  double tolerance = 0.0;  // >= 0
  ShadowRule promote;
};

// The `threads:` key: intra-op threads per run of an onnx model (serve/FORMAT.md, section
// "Intra-op threads").
inline constexpr int kMaxModelThreads = 64;

struct ModelConfig {
  std::string name;
  std::string backend;
  VersionPolicy version_policy;
  int64_t max_batch_size = 0;
  // 1..kMaxModelThreads; 0 = not given (IntraOpThreadsFor derives it). Refused for xgboost.
  int threads = 0;
  BatchingConfig batching;
  // Empty when the config does not declare them (the backend then decides).
  std::vector<engine::TensorSpec> inputs;
  std::vector<engine::TensorSpec> outputs;
  std::map<std::string, std::string> parameters;
  // The config has an `insight:` section (insight/rules.h parses it): its rules must fit
  // every version's signature.
  bool has_insight_section = false;
  ShadowConfig shadow;
};

// Parses config.yaml text. `folder_name` is the model's folder; the config's `name`, when
// given, must equal it. InvalidArgument with the offending key otherwise.
Result<ModelConfig> ParseModelConfig(std::string_view yaml_text, std::string_view folder_name);

// Intra-op threads per run of a model whose scheduler runs `instances` batches at once on an
// edge whose thread budget (edge.yaml `threads`) is `thread_budget`: the config's `threads`
// when given, else max(1, thread_budget / instances) capped at kMaxModelThreads, so that
// instances x threads stays within the budget. Values below 1 count as 1.
int IntraOpThreadsFor(const ModelConfig& config, int instances, int thread_budget);

// config.yaml text after a shadow's outcome: the `shadow:` section removed and the version
// policy set to `specific: versions` (the promoted shadow, or the champion it lost to), the
// rest kept (comments are not). InvalidArgument when the text is not a valid config.
Result<std::string> ConfigAfterShadow(std::string_view yaml_text, std::string_view folder_name,
                                      const std::vector<int64_t>& versions);

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_MODEL_CONFIG_H_
