// The hub's release step of the retraining loop: a model version of the registry becomes a
// signed offline bundle, on an operator's approval through the hub's API or at once when
// the model's retraining is configured with auto_approve. A retraining job runs on a schedule
// or when enough new feedback labels have reached the hub (RetrainScheduler).
//
// A release bundle carries the model's config.yaml (the configured template, with
// `version_policy` and `shadow` set by the hub) and its versions:
//   - without a shadow rule, or before any version was bundled: the approved version alone,
//     `version_policy: {specific: [v]}`;
//   - with a shadow rule: the champion (the newest "bundled" version) and the approved
//     version as its shadow, `version_policy: {specific: [champion]}` and
//     `shadow: {version: v, <the rule>}` (serve/FORMAT.md "Shadow mode"); the site promotes
//     or drops the shadow by the rule, and reports the outcome as an event record.
// Bundle versions are the creation time in Unix milliseconds, so that they only grow.
// Files, triggers and the hub config: hub/FORMAT.md sections 7 and 8; the operator API:
// hub/QUERY_API.md "Model registry and retraining".
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
#include "base/http/server.h"
#include "base/status.h"
#include "hub/http.h"
#include "hub/lease.h"
#include "hub/rollout.h"
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
  // How the release reaches its sites (hub/FORMAT.md section 11): waves and their gates. The
  // default is one wave of every site, opened at once.
  RolloutPlan rollout{};
  // The members of `groups` as the hub config's site_groups gives them: with `sites`, the
  // sites the rollout draws its waves from.
  std::map<std::string, std::vector<std::string>> group_sites{};
};

// One model's retraining (the hub config's `retrain:` list).
struct RetrainConfig {
  std::string model{};         // the model's name (its records' stream)
  std::string tenant{};        // whose operators may see and approve its versions
  std::string train_config{};  // train.yaml (train/FORMAT.md)
  int workers = 0;             // 0: train.yaml's
  // Triggers; either, both or neither (then only POST .../retrain starts a job).
  std::chrono::seconds every{0};    // a job when this long has passed since the last
  int64_t min_new_labels = 0;       // a job when this many trusted labels arrived since
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

// One version of a release folder: its model file (XGBoost JSON, written as model.json), the
// SHA-256 (hex) of its lineage record, and the holdout metrics its descriptor carries.
struct ReleaseVersion {
  std::string model_bytes{};
  std::string lineage_sha256{};
  std::map<std::string, double> metrics{};  // e.g. {"auc": 0.91}; finite values only
};

// As above, with each version's metrics. `out` is removed first when it exists, so the
// folder holds exactly these versions. InvalidArgument for a model name bundle/FORMAT.md
// refuses, a config.yaml that is not a YAML map or whose inputs/outputs are malformed, a
// version < 1 or a lineage digest that is not 64 hex digits; I/O errors otherwise.
Status WriteReleaseFolder(const std::string& out, const std::string& name,
                          const std::string& config_yaml,
                          const std::map<int64_t, ReleaseVersion>& versions);

// The config.yaml of a release: `template_yaml` (the model's config as configured) with
// `version_policy: {specific: [serving]}` and, when `shadow_version` > 0, `shadow:` =
// {version: shadow_version} plus the rule of `shadow_yaml`. InvalidArgument (message naming
// the key) when the template is not a YAML map, sets `version_policy` or `shadow`, or when
// the rule is not a YAML map or names `version`. Comments of the template are not kept.
Result<std::string> ReleaseConfigYaml(const std::string& template_yaml, int64_t serving,
                                      int64_t shadow_version, const std::string& shadow_yaml);

// Checks one `retrain:` entry as the scheduler will use it: a valid model name, a tenant, a
// train config, workers 0..64, check_every >= 1 s, non-negative triggers, expires_days
// 1..36500, a release model config that is readable and acceptable as a template
// (ReleaseConfigYaml), a keys folder and a parseable shadow rule. InvalidArgument naming the
// model and the key otherwise.
Status ValidateRetrainConfig(const RetrainConfig& config);

// Approves `version` of `config.model` (state "candidate" -> "approved"), builds and signs
// its release bundle into <data_dir>/bundles/<model>-<version>.bundle, and marks it
// "bundled". The release folder the bundle is made from stays in
// <data_dir>/releases/<model>-<version>/. A version already "approved" (an earlier release
// failed) is released again. FailedPrecondition whose message starts "not_candidate: " for a
// version in another state ("bundled", "rejected"); NotFound whose message starts
// "version_not_found: " for an unknown version; any other error (template, keys, model file,
// bundle creation, store) leaves the version "approved", with the message saying why.
// Callers serialize releases of one model (RetrainScheduler does).
Result<ReleaseResult> ApproveAndRelease(Store& store, const RetrainConfig& config,
                                        int64_t version, const std::string& data_dir,
                                        Clock& clock);

// What the scheduler knows of one model's retraining (GET /api/v1/models/{model}/retrain).
// Times are Unix milliseconds; 0 = never.
struct RetrainStatus {
  std::string model{};
  bool running = false;
  int64_t runs = 0;                // jobs finished, across restarts (the state file)
  int64_t checks = 0;              // label counts made since the scheduler started
  int64_t last_started_ms = 0;
  int64_t last_finished_ms = 0;
  std::string last_outcome{};      // "candidate", "rejected", "failed"; empty = no job yet
  int64_t last_version = 0;        // the version the last job registered; 0 = none
  std::string last_state{};        // its registry state after the job ("bundled" once released)
  std::string last_bundle{};       // the bundle auto_approve made; empty = none
  std::string last_error{};        // why the last job (or its release) failed; empty = it did not
  int64_t last_run_ms = 0;         // when the last finished job started (the state file)
  int64_t labels_at_last_run = 0;  // feedback records counted when it started (the state file)
  int64_t labels_now = -1;         // at the last check; -1 = not counted yet
  std::string last_check_error{};  // why the last label count failed; empty = it did not
  int64_t next_due_ms = 0;         // when `every` makes a job due; 0 = no schedule
};

// Runs the configured retraining jobs: a thread checks each model every check_every (real
// time), counting the trusted labels (feedback records whose payload says "trusted": true,
// serve/FORMAT.md) of the model's stream in its tenant, and starts a job
// when min_new_labels have arrived since the last job, when `every` has passed since it
// (measured on options.clock), or when an operator asks (POST .../retrain). A job runs
// `outpost train` (this program, `self`) as a child process into
// <data_dir>/training/<model>-<ms>/ (its stderr in train.log there), then reads the registry
// for the version it registered; with auto_approve a "candidate" is released at once
// (ApproveAndRelease). One job at a time per model; jobs of different models run side by
// side. State (last job time, label count at the last job, jobs run) survives restarts in
// <data_dir>/retrain-<model>.json (hub/FORMAT.md section 8); a hub without that file counts
// from zero labels and no job, so it trains once when enough labels are already there, and
// at once when `every` is set. A failed job counts as a job (it is not retried until a
// trigger fires again), so a broken config does not spin. Where several hubs share one
// store, Options::lease keeps job starts in the one hub that holds the scheduler lease
// (STORE.md section 7), and the schedule's state passes through the store to the next holder.
//
// Thread-safe. `store` must outlive the scheduler.
class RetrainScheduler {
 public:
  struct Options {
    std::string self{};       // the outpost executable
    std::string store_url{};  // what `outpost train` gets, in its OUTPOST_STORE_URL
    std::string data_dir{};
    std::vector<RetrainConfig> models{};
    Clock* clock = nullptr;   // null = SystemClock()
    // Called after each label check and after each job (from the scheduler's threads, with
    // no lock held; it may call RunStatus). Null: none.
    std::function<void(const RetrainStatus&)> on_update{};
    // Where several hub processes share the store: the scheduler lease (hub/lease.h). A job
    // starts, by a trigger or an operator, only while lease->Held(); a hub that does not hold
    // it still counts labels and answers status. Null: this hub schedules alone. It must
    // outlive the scheduler.
    const SchedulerLease* lease = nullptr;
    // Records each operator action on the registry (approve, reject, retrain of a model
    // configured for the caller's tenant, refusals included): called with the audit line of
    // hub/FORMAT.md section 1, "Registry actions" (no trailing newline), on the request's
    // thread, before the answer is sent. An error is logged and the answer still sent (the
    // action has happened). Null: not recorded.
    std::function<Status(std::string_view line)> audit{};
  };
  // Validates every entry (ValidateRetrainConfig, model names unique), reads the state
  // files (DataLoss naming a damaged one) and starts the thread.
  static Result<std::unique_ptr<RetrainScheduler>> Start(Store& store, Options options);
  ~RetrainScheduler();
  RetrainScheduler(const RetrainScheduler&) = delete;
  RetrainScheduler& operator=(const RetrainScheduler&) = delete;

  // Stops checking, sends SIGTERM to every running `outpost train` child and waits for the
  // jobs' threads to end (a release under way finishes first). An interrupted job is not
  // recorded in the state file, so it runs again after a restart. Idempotent; the
  // destructor calls it.
  void Stop();

  // The model's status; NotFound for a model that is not configured.
  Result<RetrainStatus> RunStatus(const std::string& model) const;

  // The operator API of the registry (QUERY_API.md "Model registry and retraining"), for the
  // operator listener: GET /api/v1/models, GET /api/v1/models/{model}/versions, POST
  // /api/v1/models/{model}/versions/{v}/approve|reject, POST and GET
  // /api/v1/models/{model}/retrain. Handles() is true for every target under
  // /api/v1/models (the caller hands the others on); Handle answers every such target,
  // with 404 "not_found" for one that names no route.
  bool Handles(const HubRequest& request) const;
  HubResponse Handle(const HubRequest& request);
  // Registers those targets on the operator listener's router (base/http/server.h):
  // /api/v1/models exactly and every path under /api/v1/models/, for any method, into
  // Handle, which reads the model, version and action itself and answers its own 401, 404
  // and 405. The scheduler must outlive the router's server.
  void RegisterRoutes(http::Router& router);

 private:
  struct Impl;
  explicit RetrainScheduler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_RELEASE_H_
