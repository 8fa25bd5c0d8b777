// The inside of RetrainScheduler (hub/release.h), shared by its two files and by nothing
// else: retrain_scheduler.cc (the checking thread, the jobs and their state files) and
// registry_api.cc (the operator's routes under /api/v1/models). Code outside
// outpost_hub_release includes hub/release.h, never this header.
#ifndef OUTPOST_HUB_RETRAIN_SCHEDULER_H_
#define OUTPOST_HUB_RETRAIN_SCHEDULER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "hub/http.h"
#include "hub/release.h"
#include "hub/store.h"

namespace outpost::hub {
namespace retrain_internal {

// The trusted labels of one model's feedback counted so far: the records read (up to and
// including id after_id) and the trusted labels among them.
struct LabelTally {
  int64_t after_id = 0;
  int64_t seen = 0;
  int64_t trusted = 0;
};

// Reads the records after `after_id`, a page at a time (fewer than a full page ends the read).
using FeedbackPageAfter = std::function<Result<std::vector<HubRecord>>(int64_t after_id)>;
// How many feedback records the model has now.
using FeedbackTotal = std::function<Result<int64_t>()>;

// Brings `tally` up to date and returns its trusted labels. Reads only the records after the
// last one read, then checks the total: records are never deleted, so a total that equals
// the records read means none was missed. One that does not (a record committed after one
// of a higher id, which PostgreSQL allows; new records meanwhile) reads the new records again,
// a few times, then counts from zero as a full scan. Errors of `page_after` are returned (the
// tally then holds what was read); an error of `total` counts from zero.
Result<int64_t> UpdateLabelTally(LabelTally& tally, size_t page_size,
                                 const FeedbackPageAfter& page_after, const FeedbackTotal& total);

// A job as the lease's holder records it in the store before it runs `outpost train`
// (hub/FORMAT.md section 8, the state's "job"), so that the next holder finishes it if this
// one dies: the version it registers, the labels counted when it was due, and why it ran.
struct JobClaim {
  int64_t version = 0;
  int64_t labels = -1;  // -1: not counted
  std::string trigger;
};

// One configured model: its configuration and what the scheduler knows of it.
struct ModelSlot {
  RetrainConfig config;
  RetrainStatus status;
  std::string state_path;
  std::chrono::steady_clock::time_point next_check{};
  std::thread job;              // the current or last job's thread
  Subprocess* child = nullptr;  // the running `outpost train`; owned by the job's thread
  std::mutex release_mu;        // serializes approve, reject and auto-approve of this model
  std::mutex labels_mu;         // serializes CountLabels of this model; guards labels
  LabelTally labels;            // CountLabels' running count
  // A job the store says was started and not finished, which no job of this hub is running:
  // a previous holder's (or this hub's before a restart). Guarded by mu.
  std::optional<JobClaim> unfinished;
};

// What one retraining job did, as the model's status reports it.
struct JobResult {
  std::string outcome = "failed";  // the registered version's state, or "failed"
  std::string error;
  std::string state;  // the version's state after auto-approval
  std::string bundle_path;
  int64_t version = 0;
  bool interrupted = false;  // Stop() was under way when `outpost train` ended
};

}  // namespace retrain_internal

struct RetrainScheduler::Impl {
  using ModelSlot = retrain_internal::ModelSlot;
  using JobResult = retrain_internal::JobResult;

  Store& store;
  Options options;
  Clock& clock;
  // The slots never move once made (the vector is filled before any thread starts).
  std::vector<std::unique_ptr<ModelSlot>> models;

  mutable std::mutex mu;  // guards every slot's status, next_check, job and child; stopping
  std::condition_variable wake;
  bool stopping = false;
  std::thread loop;

  Impl(Store& s, Options o)
      : store(s), options(std::move(o)), clock(options.clock ? *options.clock : SystemClock()) {}

  // --- the schedule and the jobs (retrain_scheduler.cc) ---

  // The slot of `model`; null when it is not configured.
  ModelSlot* Find(std::string_view model) const;
  // Whether this hub may start a job now: it schedules alone, or holds the lease.
  bool HoldsLease() const { return options.lease == nullptr || options.lease->Held(); }
  // The model's trusted labels now (UpdateLabelTally over the store, on m.labels).
  Result<int64_t> CountLabels(ModelSlot& m);
  void UpdateDue(ModelSlot& m);
  void Notify(const RetrainStatus& status);
  // `resume`: the unfinished job to finish (its version and labels) instead of a new one.
  std::thread StartJobLocked(ModelSlot& m, std::optional<int64_t> labels, std::string why,
                             std::optional<retrain_internal::JobClaim> resume = std::nullopt);
  // With a lease (the caller holds it): takes the model's schedule state from the store,
  // where the lease's holders write it (STORE.md section 7), unless a job of this hub runs.
  void LoadSharedState(ModelSlot& m);
  // Counts the model's labels and starts a job when a trigger fires.
  void Check(ModelSlot& m);
  // The checking thread: checks each model every check_every until Stop().
  void Loop();
  // One job's thread: trains, registers, maybe releases, and records the outcome.
  void RunJob(ModelSlot& m, std::optional<int64_t> labels_at_start, const std::string& why,
              std::optional<retrain_internal::JobClaim> resume);
  // Claims the job in the store (with a lease) and runs it: trains and registers its version
  // unless an earlier attempt registered it already.
  Status TrainAndRegister(ModelSlot& m, const retrain_internal::JobClaim& claim,
                          const std::string& out, JobResult& job);
  // With a lease: records `claim` in the store's schedule state, fenced by the lease.
  Status ClaimJob(ModelSlot& m, const retrain_internal::JobClaim& claim);
  // Takes `entry`, the job's registered version, as its outcome (releasing a candidate with
  // auto_approve).
  void Adopt(ModelSlot& m, const ModelEntry& entry, JobResult& job);
  Status RunTrainer(ModelSlot& m, const std::vector<std::string>& argv, const std::string& log_path,
                    bool& interrupted);
  void AutoRelease(ModelSlot& m, JobResult& job);
  void FinishJob(ModelSlot& m, const JobResult& job, const Status& s, int64_t started_ms,
                 std::optional<int64_t> labels);

  // --- the operator API (registry_api.cc) ---

  // GET /api/v1/models: the caller's tenant's configured models.
  HubResponse ListConfigured(const Caller& caller);
  // GET .../{model}/versions: the registry's versions of the model.
  HubResponse Versions(ModelSlot& m);
  Result<ModelEntry> Entry(ModelSlot& m, int64_t version, HubResponse* refusal);
  // POST .../versions/{v}/approve: approves and releases the version.
  HubResponse Approve(ModelSlot& m, int64_t version);
  // POST .../versions/{v}/reject.
  HubResponse Reject(ModelSlot& m, int64_t version);
  // POST .../{model}/retrain: starts a job now.
  HubResponse StartRetrain(ModelSlot& m);
  // GET .../{model}/retrain: the model's RetrainStatus.
  HubResponse RetrainStatusResponse(ModelSlot& m);
  // Every target under /api/v1/models (RetrainScheduler::Handle).
  HubResponse Handle(const HubRequest& request);
  // Hands the audit line of an operator's `action` ("model_approve", "model_reject",
  // "model_retrain") on `m`, answered with `response`, to options.audit. version 0: none.
  void AuditAction(const HubRequest& request, std::string_view action, const ModelSlot& m,
                   int64_t version, const HubResponse& response);
};

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_RETRAIN_SCHEDULER_H_
