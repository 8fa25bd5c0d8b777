// The hub's release step of the retraining loop: a model version of the registry becomes a
// signed offline bundle, on an operator's approval through the hub's API or at once when
// the model's retraining is configured with auto_approve. A retraining job runs on a schedule
// or when enough new feedback labels have reached the hub (RetrainScheduler).
//
// A release bundle carries the model's config.yaml (the configured template, with
// `version_policy` and `shadow` set by the hub) and its versions:
//   - without a shadow rule: the approved version alone, `version_policy: {specific: [v]}`;
//   - with a shadow rule: the champion (the newest "bundled" version) and the approved
//     version as its shadow, `version_policy: {specific: [champion]}` and
//     `shadow: {version: v, <the rule>}` (serve/FORMAT.md "Shadow mode"); the site promotes
//     or drops the shadow by the rule, and reports the outcome as an event record.
// Bundle versions are the creation time in Unix milliseconds, so that they only grow.
#ifndef OUTPOST_HUB_RELEASE_H_
#define OUTPOST_HUB_RELEASE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "hub/http.h"
#include "hub/store.h"

namespace outpost::hub {

// How bundles of one model are made (the hub config's `retrain: [{release: ...}]`).
struct ReleaseConfig {
  // The model's config.yaml as shipped (tensors, insight rules, batching). It must not set
  // `version_policy` or `shadow`: the hub sets them.
  std::string model_config_path{};
  std::string keys_dir{};              // `outpost keys generate`'s folder; its targets keys sign
  std::vector<std::string> sites{};    // sites the bundles are for
  std::vector<std::string> groups{};   // site groups the bundles are for
  int expires_days = 30;
  // The `shadow:` section without `version` (e.g. "promote: {min_requests: 200}"), as YAML;
  // empty = no shadow period, the approved version replaces the champion directly.
  std::string shadow_yaml{};
};

// One model's retraining (the hub config's `retrain:` list).
struct RetrainConfig {
  std::string model{};         // the model's name (its records' stream)
  std::string tenant{};        // whose operators may see and approve its versions
  std::string train_config{};  // train.yaml (train/FORMAT.md)
  int workers = 0;             // 0: train.yaml's
  // Triggers; either, both or neither (then only POST .../retrain starts a job).
  std::chrono::seconds every{0};    // a job when this long has passed since the last
  int64_t min_new_labels = 0;       // a job when this many feedback records arrived since
  std::chrono::seconds check_every{30};
  bool auto_approve = false;  // a candidate is released at once, without an operator
  ReleaseConfig release{};
};

struct ReleaseResult {
  std::string bundle_path{};
  uint64_t bundle_version = 0;
  int64_t champion_version = 0;  // the version shipped beside it as champion; 0 = none
  bool shadow = false;
};

// Writes <out>/<name>/config.yaml and, per version, <out>/<name>/<v>/{model.json,
// descriptor.json} — the model folder `outpost bundle create` and bundle::CreateBundle read
// (bundle/FORMAT.md section 5). `versions` maps each version to its model file's bytes;
// the descriptor's tensors come from config.yaml's inputs/outputs.
Status WriteReleaseFolder(const std::string& out, const std::string& name,
                          const std::string& config_yaml,
                          const std::map<int64_t, std::string>& versions,
                          const std::map<int64_t, std::string>& lineage_sha256);

// Approves `version` of `config.model` (state "candidate" -> "approved"), builds and signs
// its release bundle into <data_dir>/bundles/<model>-<version>.bundle, and marks it
// "bundled". FailedPrecondition "not_candidate" for a version in another state; NotFound for
// an unknown version.
Result<ReleaseResult> ApproveAndRelease(Store& store, const RetrainConfig& config,
                                        int64_t version, const std::string& data_dir,
                                        Clock& clock);

// Runs the configured retraining jobs: a thread checks each model every check_every, and a
// job runs `outpost train` (this program, `self`) as a child process into
// <data_dir>/training/<model>-<ms>/. State (last job time, label count at the last job)
// survives restarts in <data_dir>/retrain-<model>.json.
class RetrainScheduler {
 public:
  struct Options {
    std::string self{};       // the outpost executable
    std::string store_url{};  // what `outpost train --store` gets
    std::string data_dir{};
    std::vector<RetrainConfig> models{};
    Clock* clock = nullptr;   // null = SystemClock()
  };
  static Result<std::unique_ptr<RetrainScheduler>> Start(Store& store, Options options);
  ~RetrainScheduler();
  void Stop();

  // The operator API of the registry (QUERY_API.md "Model registry"), for the operator
  // listener: GET /api/v1/models/{model}/versions, POST
  // /api/v1/models/{model}/versions/{v}/approve|reject, POST /api/v1/models/{model}/retrain,
  // GET /api/v1/models/{model}/retrain. Returns nullopt-like 404 "not_found" for other
  // targets so that the caller can hand them on.
  bool Handles(const HubRequest& request) const;
  HubResponse Handle(const HubRequest& request);
};

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_RELEASE_H_
