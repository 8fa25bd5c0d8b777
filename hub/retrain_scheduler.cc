// RetrainScheduler's schedule and jobs (hub/release.h): the thread that counts each model's
// labels, the jobs that run `outpost train` as a child process and read back the version it
// registered, and the state files that carry the schedule across restarts (hub/FORMAT.md
// section 8). The operator's routes are in registry_api.cc.
#include "hub/retrain_scheduler.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "base/file.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "bundle/metadata.h"
#include "hub/secrets.h"

namespace outpost::hub {
namespace {

using retrain_internal::FeedbackPageAfter;
using retrain_internal::JobClaim;
using retrain_internal::JobResult;
using retrain_internal::LabelTally;
using retrain_internal::ModelSlot;

constexpr uint64_t kMaxStateBytes = 64 << 10;  // retrain-<model>.json
constexpr size_t kMaxErrorTail = 2000;         // bytes of train.log kept as the error

// `path` made absolute and normal; `path` itself when that fails.
std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) return path;
  return p.lexically_normal().string();
}

// The newest registered version of `model`; 0 when there is none.
Result<int64_t> NewestVersion(Store& store, const std::string& model) {
  OUTPOST_ASSIGN_OR_RETURN(std::vector<ModelEntry> entries, store.ListModels(model));
  int64_t newest = 0;
  for (const ModelEntry& e : entries) newest = std::max(newest, e.version);
  return newest;
}

// The registry's entry of `version`; null when there is none.
const ModelEntry* FindVersion(const std::vector<ModelEntry>& entries, int64_t version) {
  for (const ModelEntry& e : entries) {
    if (e.version == version) return &e;
  }
  return nullptr;
}

// The last `max` bytes of a file, from a line start where one is near; empty when unreadable.
std::string FileTail(const std::string& path, size_t max) {
  Result<std::string> text = ReadFile(path, uint64_t{64} << 20);
  if (!text.ok()) return "";
  std::string s = std::move(*text);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.size() > max) {
    s = s.substr(s.size() - max);
    size_t nl = s.find('\n');
    if (nl != std::string::npos && nl + 1 < s.size()) s = s.substr(nl + 1);
  }
  return s;
}

// Reads the schedule's state (hub/FORMAT.md section 8) from `text` into `status`; DataLoss
// naming `where` for text that is not the format. `hint` ends the message.
Status ParseState(const std::string& text, const std::string& where, const std::string& hint,
                  RetrainStatus& status, std::optional<JobClaim>* claim = nullptr) {
  auto damaged = [&](const std::string& why) {
    return DataLossError(where + " is damaged (" + why + ")" + hint);
  };
  Result<bundle::Json> doc = bundle::ParseJson(text, false);
  if (!doc.ok()) return damaged(std::string(doc.status().message()));
  const auto* top = std::get_if<bundle::JsonObject>(&doc->v);
  if (top == nullptr) return damaged("not a JSON object");
  auto integer = [&](const char* key, bool required, int64_t& out) -> Status {
    auto it = top->find(key);
    if (it == top->end()) {
      return required ? damaged(std::string("no ") + key) : Status::Ok();
    }
    if (const uint64_t* u = std::get_if<uint64_t>(&it->second.v);
        u != nullptr && *u <= static_cast<uint64_t>(INT64_MAX)) {
      out = static_cast<int64_t>(*u);
      return Status::Ok();
    }
    return damaged(std::string(key) + " is not a non-negative integer");
  };
  int64_t v = 0;
  OUTPOST_RETURN_IF_ERROR(integer("v", true, v));
  if (v != 1) return damaged("format version " + std::to_string(v) + " is not 1");
  OUTPOST_RETURN_IF_ERROR(integer("last_run_ms", true, status.last_run_ms));
  OUTPOST_RETURN_IF_ERROR(integer("labels_at_last_run", true, status.labels_at_last_run));
  OUTPOST_RETURN_IF_ERROR(integer("runs", false, status.runs));
  if (claim == nullptr) return Status::Ok();
  claim->reset();
  auto job = top->find("job");
  if (job == top->end()) return Status::Ok();
  const auto* members = std::get_if<bundle::JsonObject>(&job->second.v);
  if (members == nullptr) return damaged("job is not an object");
  JobClaim c;
  auto version = members->find("version");
  const uint64_t* v_number =
      version == members->end() ? nullptr : std::get_if<uint64_t>(&version->second.v);
  if (v_number == nullptr || *v_number == 0 || *v_number > (uint64_t{1} << 53)) {
    return damaged("job.version is not a version");
  }
  c.version = static_cast<int64_t>(*v_number);
  if (auto labels = members->find("labels"); labels != members->end()) {
    const uint64_t* n = std::get_if<uint64_t>(&labels->second.v);
    if (n == nullptr || *n > static_cast<uint64_t>(INT64_MAX)) {
      return damaged("job.labels is not a non-negative integer");
    }
    c.labels = static_cast<int64_t>(*n);
  }
  if (auto trigger = members->find("trigger"); trigger != members->end()) {
    const std::string* t = std::get_if<std::string>(&trigger->second.v);
    if (t == nullptr) return damaged("job.trigger is not a string");
    c.trigger = *t;
  }
  *claim = std::move(c);
  return Status::Ok();
}

// Reads retrain-<model>.json into `status` (hub/FORMAT.md section 8). A missing file leaves
// it as it is; DataLoss for a file that is not the format.
Status LoadState(const std::string& path, RetrainStatus& status) {
  if (!PathExists(path)) return Status::Ok();
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxStateBytes));
  return ParseState(text, path, "; remove it to count labels from zero again", status);
}

// The name of a model's schedule state in the store (STORE.md section 7).
std::string SharedStateName(const std::string& model) { return "retrain/" + model; }

std::string StateJson(const RetrainStatus& s, const JobClaim* claim = nullptr) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("v");
  w.Int(1);
  w.Key("model");
  w.String(s.model);
  w.Key("last_run_ms");
  w.Int(s.last_run_ms);
  w.Key("labels_at_last_run");
  w.Int(s.labels_at_last_run);
  w.Key("runs");
  w.Int(s.runs);
  if (claim != nullptr) {
    w.Key("job");
    w.BeginObject();
    w.Key("version");
    w.Int(claim->version);
    if (claim->labels >= 0) {
      w.Key("labels");
      w.Int(claim->labels);
    }
    w.Key("trigger");
    w.String(claim->trigger);
    w.EndObject();
  }
  w.EndObject();
  out.push_back('\n');
  return out;
}

}  // namespace

ModelSlot* RetrainScheduler::Impl::Find(std::string_view model) const {
  for (const auto& m : models) {
    if (m->config.model == model) return m.get();
  }
  return nullptr;
}

namespace {

// Whether a stored feedback payload is a trusted label (serve/FORMAT.md, POST /v1/feedback):
// its "trusted" member is true. Anything else (false, absent, not JSON) is not.
bool TrustedLabel(json::Parser& parser, std::string_view payload) {
  Result<json::Value> root = parser.Parse(payload);
  if (!root.ok() || !root->is_object()) return false;
  Result<bool> trusted = (*root)["trusted"].GetBool();
  return trusted.ok() && *trusted;
}

// Reads every record after tally.after_id into `tally`.
Status ReadAfter(LabelTally& tally, size_t page_size, const FeedbackPageAfter& page_after) {
  json::Parser parser;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(std::vector<HubRecord> page, page_after(tally.after_id));
    for (const HubRecord& r : page) {
      tally.after_id = std::max(tally.after_id, r.id);
      ++tally.seen;
      if (TrustedLabel(parser, r.payload)) ++tally.trusted;
    }
    if (page.size() < page_size) return Status::Ok();
  }
}

}  // namespace

namespace retrain_internal {

Result<int64_t> UpdateLabelTally(LabelTally& tally, size_t page_size,
                                 const FeedbackPageAfter& page_after, const FeedbackTotal& total) {
  constexpr int kIncrementalTries = 3;
  for (int attempt = 0; attempt < kIncrementalTries; ++attempt) {
    OUTPOST_RETURN_IF_ERROR(ReadAfter(tally, page_size, page_after));
    Result<int64_t> now = total();
    if (!now.ok()) break;
    if (*now == tally.seen) return tally.trusted;
  }
  tally = LabelTally{};
  OUTPOST_RETURN_IF_ERROR(ReadAfter(tally, page_size, page_after));
  return tally.trusted;
}

}  // namespace retrain_internal

Result<int64_t> RetrainScheduler::Impl::CountLabels(ModelSlot& m) {
  // Only labels sent by an authenticated credential with the label role count, so each
  // payload is read (Store::CountRecords cannot tell them apart) — once: the tally keeps what
  // was read, and the store's count of the feedback records (one per site and 2^40 ms bucket,
  // summed; no payload read) says whether anything was missed.
  const RetrainConfig& c = m.config;
  constexpr size_t kPage = 10000;
  auto page_after = [&](int64_t after_id) {
    return store.QueryRecords(RecordQuery{.tenant = c.tenant,
                                          .kind = "feedback",
                                          .stream = c.model,
                                          .after_id = after_id,
                                          .limit = kPage});
  };
  auto total = [&]() -> Result<int64_t> {
    OUTPOST_ASSIGN_OR_RETURN(std::vector<CountBucket> buckets,
                             store.CountRecords(CountQuery{.tenant = c.tenant,
                                                           .kind = "feedback",
                                                           .stream = c.model,
                                                           .bucket_ms = int64_t{1} << 40}));
    int64_t n = 0;
    for (const CountBucket& b : buckets) n += static_cast<int64_t>(b.count);
    return n;
  };
  std::lock_guard<std::mutex> lock(m.labels_mu);
  return retrain_internal::UpdateLabelTally(m.labels, kPage, page_after, total);
}

void RetrainScheduler::Impl::UpdateDue(ModelSlot& m) {
  m.status.next_due_ms =
      m.config.every.count() > 0
          ? m.status.last_run_ms +
                std::chrono::duration_cast<std::chrono::milliseconds>(m.config.every).count()
          : 0;
}

void RetrainScheduler::Impl::Notify(const RetrainStatus& status) {
  if (options.on_update) options.on_update(status);
}

// Starts a job of `m` (not running; mu held). Returns the thread of the previous job, which
// the caller joins once mu is released.
std::thread RetrainScheduler::Impl::StartJobLocked(ModelSlot& m, std::optional<int64_t> labels,
                                                   std::string why,
                                                   std::optional<JobClaim> resume) {
  m.status.running = true;
  m.status.last_started_ms = UnixMillis(clock.Now());
  m.unfinished.reset();
  std::thread previous = std::move(m.job);
  m.job = std::thread([this, &m, labels, why = std::move(why), resume = std::move(resume)] {
    RunJob(m, labels, why, resume);
  });
  return previous;
}

void RetrainScheduler::Impl::LoadSharedState(ModelSlot& m) {
  if (options.lease == nullptr) return;
  Result<std::optional<std::string>> text = store.GetScheduleState(SharedStateName(m.config.model));
  RetrainStatus shared;
  std::optional<JobClaim> claim;
  Status s = text.ok() ? Status::Ok() : text.status();
  if (s.ok() && text->has_value()) {
    s = ParseState(**text, "the store's schedule state " + SharedStateName(m.config.model), "",
                   shared, &claim);
  }
  if (!s.ok()) {
    OUTPOST_LOG(kWarning) << "retraining: the store's schedule state could not be read"
                          << Field("model", m.config.model) << Field("error", s);
    return;
  }
  if (!text->has_value()) return;  // no holder has finished a job yet: the file's state
  std::lock_guard<std::mutex> lock(mu);
  if (m.status.running) return;  // this hub's own job is under way; its end writes both
  m.status.last_run_ms = shared.last_run_ms;
  m.status.labels_at_last_run = shared.labels_at_last_run;
  m.status.runs = shared.runs;
  m.unfinished = std::move(claim);
  UpdateDue(m);
}

void RetrainScheduler::Impl::Check(ModelSlot& m) {
  // Held before the state is read: a job starts only on the state the holder reads.
  const bool holds = HoldsLease();
  if (holds) LoadSharedState(m);
  Result<int64_t> labels = CountLabels(m);
  std::thread previous;
  RetrainStatus snapshot;
  {
    std::lock_guard<std::mutex> lock(mu);
    ++m.status.checks;
    if (!labels.ok()) {
      m.status.last_check_error = labels.status().ToString();
      OUTPOST_LOG(kWarning) << "retraining: counting labels failed"
                            << Field("model", m.config.model) << Field("error", labels.status());
    } else {
      m.status.last_check_error.clear();
      m.status.labels_now = *labels;
      const int64_t now_ms = UnixMillis(clock.Now());
      const int64_t every_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(m.config.every).count();
      std::string why;
      if (m.config.min_new_labels > 0 &&
          *labels - m.status.labels_at_last_run >= m.config.min_new_labels) {
        why = "labels";
      } else if (every_ms > 0 && now_ms - m.status.last_run_ms >= every_ms) {
        why = "schedule";
      }
      const bool may_start = !m.status.running && !stopping && holds && HoldsLease();
      if (may_start && m.unfinished.has_value()) {
        // Started by a holder that did not finish it (it died, or stopped): finished here,
        // under the version it claimed, so the job registers one version however many
        // holders start it.
        JobClaim resume = *m.unfinished;
        OUTPOST_LOG(kInfo) << "retraining: finishing a job another holder started"
                           << Field("model", m.config.model) << Field("version", resume.version)
                           << Field("trigger", resume.trigger);
        std::optional<int64_t> at = resume.labels >= 0 ? resume.labels : *labels;
        previous = StartJobLocked(m, at, resume.trigger, std::move(resume));
      } else if (!why.empty() && may_start) {
        OUTPOST_LOG(kInfo) << "retraining due" << Field("model", m.config.model)
                           << Field("trigger", why) << Field("labels_now", *labels)
                           << Field("labels_at_last_run", m.status.labels_at_last_run);
        previous = StartJobLocked(m, *labels, why);
      }
    }
    snapshot = m.status;
  }
  if (previous.joinable()) previous.join();
  Notify(snapshot);
}

void RetrainScheduler::Impl::Loop() {
  std::unique_lock<std::mutex> lock(mu);
  while (!stopping) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<ModelSlot*> due;
    auto next = now + std::chrono::hours(24);
    for (auto& m : models) {
      if (m->next_check <= now) {
        due.push_back(m.get());
        m->next_check = now + m->config.check_every;
      }
      next = std::min(next, m->next_check);
    }
    if (!due.empty()) {
      lock.unlock();
      for (ModelSlot* m : due) Check(*m);
      lock.lock();
      continue;
    }
    wake.wait_until(lock, next, [&] { return stopping; });
  }
}

void RetrainScheduler::Impl::RunJob(ModelSlot& m, std::optional<int64_t> labels_at_start,
                                    const std::string& why, std::optional<JobClaim> resume) {
  const RetrainConfig& c = m.config;
  int64_t started_ms = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    started_ms = m.status.last_started_ms;
  }
  std::optional<int64_t> labels = labels_at_start;
  if (!labels) {
    Result<int64_t> counted = CountLabels(m);
    if (counted.ok()) labels = *counted;
  }
  JobResult job;
  const std::string out = AbsolutePath(
      JoinPath(JoinPath(options.data_dir, "training"), c.model + "-" + std::to_string(started_ms)));
  Status s = Status::Ok();
  JobClaim claim;
  if (resume.has_value()) {
    claim = *resume;
  } else {
    // A new job registers one above the newest version.
    Result<int64_t> newest = NewestVersion(store, c.model);
    s = newest.status();
    if (s.ok()) claim = {.version = *newest + 1, .labels = labels.value_or(-1), .trigger = why};
  }
  if (s.ok()) s = TrainAndRegister(m, claim, out, job);
  if (!s.ok()) {
    job.outcome = "failed";
    job.error = s.ToString();
    OUTPOST_LOG(kWarning) << "retraining failed" << Field("model", c.model) << Field("error", s);
  }
  FinishJob(m, job, s, started_ms, labels);
}

// Claims the job, then runs `outpost train` into `out` for the claimed version, unless an
// earlier attempt of the job registered it already; with auto_approve, releases a candidate.
// Fills `job` as it goes.
Status RetrainScheduler::Impl::TrainAndRegister(ModelSlot& m, const JobClaim& claim,
                                                const std::string& out, JobResult& job) {
  const RetrainConfig& c = m.config;
  Status claimed = ClaimJob(m, claim);
  if (!claimed.ok()) {
    // Another hub holds the lease now: the job is its to run, so this attempt is not
    // recorded as a run (as when Stop() interrupts one).
    job.interrupted = true;
    return claimed;
  }
  OUTPOST_ASSIGN_OR_RETURN(std::vector<ModelEntry> before, store.ListModels(c.model));
  if (const ModelEntry* done = FindVersion(before, claim.version); done != nullptr) {
    OUTPOST_LOG(kInfo) << "retraining: an earlier attempt registered the job's version"
                       << Field("model", c.model) << Field("version", claim.version);
    Adopt(m, *done, job);
    return Status::Ok();
  }
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(out));
  // The store URL (it may hold a password) goes in the child's environment, never in its
  // argv, which every user of the machine reads in /proc/<pid>/cmdline.
  std::vector<std::string> argv = {options.self, "train", "--model", c.model, "--config",
                                   c.train_config, "--out", out, "--version",
                                   std::to_string(claim.version)};
  if (c.workers > 0) {
    argv.push_back("--workers");
    argv.push_back(std::to_string(c.workers));
  }
  OUTPOST_LOG(kInfo) << "retraining started" << Field("model", c.model)
                     << Field("trigger", claim.trigger) << Field("version", claim.version)
                     << Field("out", out) << Field("labels", claim.labels);
  Status trained = RunTrainer(m, argv, JoinPath(out, "train.log"), job.interrupted);
  OUTPOST_ASSIGN_OR_RETURN(std::vector<ModelEntry> after, store.ListModels(c.model));
  const ModelEntry* registered = FindVersion(after, claim.version);
  if (registered == nullptr) {
    OUTPOST_RETURN_IF_ERROR(trained);
    return InternalError("outpost train exited 0 but registered no version " +
                         std::to_string(claim.version) + " of " + c.model);
  }
  if (!trained.ok()) {
    // Registered meanwhile by another attempt of this job (a holder that lost the lease while
    // its `outpost train` ran): the job's outcome is that version.
    OUTPOST_LOG(kWarning) << "retraining: the job's version was registered by another attempt"
                          << Field("model", c.model) << Field("version", claim.version)
                          << Field("error", trained);
  }
  Adopt(m, *registered, job);
  return Status::Ok();
}

Status RetrainScheduler::Impl::ClaimJob(ModelSlot& m, const JobClaim& claim) {
  if (options.lease == nullptr) return Status::Ok();
  std::string text;
  {
    std::lock_guard<std::mutex> lock(mu);
    text = StateJson(m.status, &claim);
  }
  return store.PutScheduleState(SharedStateName(m.config.model), text, options.lease->current());
}

void RetrainScheduler::Impl::Adopt(ModelSlot& m, const ModelEntry& entry, JobResult& job) {
  job.version = entry.version;
  job.outcome = entry.state;
  job.state = entry.state;
  OUTPOST_LOG(kInfo) << "retraining finished" << Field("model", m.config.model)
                     << Field("version", job.version) << Field("outcome", job.outcome);
  if (m.config.auto_approve && job.state == "candidate") AutoRelease(m, job);
}

// Runs `outpost train` with `argv`, its output in `log_path` and its lines in our log, as
// m.child so that Stop() can signal it. Sets `interrupted` when Stop() was under way as it
// ended; an error with the log's tail when it exits non-zero.
Status RetrainScheduler::Impl::RunTrainer(ModelSlot& m, const std::vector<std::string>& argv,
                                          const std::string& log_path, bool& interrupted) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Subprocess> child,
                           Subprocess::Start(argv, log_path, {{kStoreUrlEnv, options.store_url}},
                                             // A hub killed mid-job takes its child with it:
                                             // the next holder of the lease finishes the job.
                                             Subprocess::Lifetime::kDiesWithParent));
  {
    std::lock_guard<std::mutex> lock(mu);
    m.child = child.get();
    if (stopping) child->Signal(SIGTERM).IgnoreError();
  }
  for (size_t lines = 0;; ++lines) {
    Result<std::string> line = child->ReadLine();
    if (!line.ok()) break;
    if (lines < 1000) {
      OUTPOST_LOG(kInfo) << "outpost train: " << *line << Field("model", m.config.model);
    }
  }
  {
    // The child is not reaped before this, so a signal sent under mu reaches it alone.
    std::lock_guard<std::mutex> lock(mu);
    m.child = nullptr;
    interrupted = stopping;
  }
  const int code = child->Wait();
  if (code != 0) {
    std::string tail = FileTail(log_path, kMaxErrorTail);
    return InternalError("outpost train exited with " + std::to_string(code) +
                         (tail.empty() ? "" : ": " + tail));
  }
  return Status::Ok();
}

// Approves and releases the candidate `job.version`: "bundled" with its bundle, or
// "approved" with the release's error.
void RetrainScheduler::Impl::AutoRelease(ModelSlot& m, JobResult& job) {
  std::lock_guard<std::mutex> release_lock(m.release_mu);
  Result<ReleaseResult> released =
      ApproveAndRelease(store, m.config, job.version, options.data_dir, clock);
  if (released.ok()) {
    job.state = "bundled";
    job.bundle_path = released->bundle_path;
  } else {
    job.state = "approved";
    job.error = "release failed: " + released.status().ToString();
  }
}

// Records the finished job (status `s`) in m.status and, unless Stop() interrupted it, in
// the model's state file; then tells on_update.
void RetrainScheduler::Impl::FinishJob(ModelSlot& m, const JobResult& job, const Status& s,
                                       int64_t started_ms, std::optional<int64_t> labels) {
  // A job that Stop() interrupted is not recorded: it runs again after a restart.
  const bool record = !(job.interrupted && !s.ok());
  RetrainStatus snapshot;
  std::string state_text;
  {
    std::lock_guard<std::mutex> lock(mu);
    RetrainStatus& st = m.status;
    st.running = false;
    st.last_finished_ms = UnixMillis(clock.Now());
    st.last_outcome = job.outcome;
    st.last_version = job.version;
    st.last_state = job.state;
    st.last_bundle = job.bundle_path;
    st.last_error = job.interrupted && !s.ok() ? "stopped: " + job.error : job.error;
    if (record) {
      ++st.runs;
      st.last_run_ms = started_ms;
      if (labels) st.labels_at_last_run = *labels;
      UpdateDue(m);
      state_text = StateJson(st);
    }
    snapshot = st;
  }
  if (record) {
    Status saved = WriteFileAtomically(m.state_path, state_text, 0600);
    if (!saved.ok()) {
      OUTPOST_LOG(kError) << "retraining: the state file could not be written"
                          << Field("path", m.state_path) << Field("error", saved);
    }
  }
  if (record && options.lease != nullptr) {
    // For the next holder of the lease; refused once another took it over (it judges what
    // is due from what the holders before it wrote).
    Status shared = store.PutScheduleState(SharedStateName(m.config.model), state_text,
                                           options.lease->current());
    if (!shared.ok()) {
      OUTPOST_LOG(kWarning) << "retraining: the store's schedule state was not written"
                            << Field("model", m.config.model) << Field("error", shared);
    }
  }
  Notify(snapshot);
}

Result<std::unique_ptr<RetrainScheduler>> RetrainScheduler::Start(Store& store, Options options) {
  if (options.data_dir.empty()) return InvalidArgumentError("the retraining needs a data folder");
  if (options.self.empty()) return InvalidArgumentError("the retraining needs the outpost program");
  std::set<std::string> names;
  for (const RetrainConfig& c : options.models) {
    OUTPOST_RETURN_IF_ERROR(ValidateRetrainConfig(c));
    if (!names.insert(c.model).second) {
      return InvalidArgumentError("retrain: model " + c.model + " is configured twice");
    }
  }
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(options.data_dir));
  auto impl = std::make_unique<Impl>(store, std::move(options));
  for (const RetrainConfig& c : impl->options.models) {
    auto slot = std::make_unique<ModelSlot>();
    slot->config = c;
    slot->status.model = c.model;
    slot->state_path = JoinPath(impl->options.data_dir, "retrain-" + c.model + ".json");
    OUTPOST_RETURN_IF_ERROR(LoadState(slot->state_path, slot->status));
    impl->UpdateDue(*slot);
    OUTPOST_LOG(kInfo) << "retraining configured" << Field("model", c.model)
                       << Field("tenant", c.tenant) << Field("min_new_labels", c.min_new_labels)
                       << Field("every_s", c.every.count())
                       << Field("labels_at_last_run", slot->status.labels_at_last_run)
                       << Field("auto_approve", c.auto_approve);
    impl->models.push_back(std::move(slot));
  }
  Impl* raw = impl.get();
  raw->loop = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<RetrainScheduler>(new RetrainScheduler(std::move(impl)));
}

RetrainScheduler::RetrainScheduler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RetrainScheduler::~RetrainScheduler() { Stop(); }

void RetrainScheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    for (auto& m : impl_->models) {
      if (m->child != nullptr) {
        OUTPOST_LOG(kInfo) << "stopping a running retraining job"
                           << Field("model", m->config.model);
        m->child->Signal(SIGTERM).IgnoreError();
      }
    }
  }
  impl_->wake.notify_all();
  if (impl_->loop.joinable()) impl_->loop.join();
  // No job starts once stopping is set and the loop has ended; the API refuses new ones.
  for (auto& m : impl_->models) {
    std::thread job;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      job = std::move(m->job);
    }
    if (job.joinable()) job.join();
  }
}

Result<RetrainStatus> RetrainScheduler::RunStatus(const std::string& model) const {
  ModelSlot* m = impl_->Find(model);
  if (m == nullptr) return NotFoundError("no retraining is configured for " + model);
  std::lock_guard<std::mutex> lock(impl_->mu);
  return m->status;
}

}  // namespace outpost::hub
