// Evaluator: runs a model's insight rules (rules.h) on every scored batch and appends the
// records they produce to the outbox (insight/FORMAT.md section 2).
//
// The scoring path only copies the batch's rule input and output into a bounded queue
// (InsightSink::OnScored never waits for the outbox or for rule evaluation); one background
// thread evaluates queued batches in arrival order and hands the records to a few appender
// threads, which pass them to Outbox::AppendAsync: many records are in flight at once and
// share the outbox's group commits, and each is counted when the outbox answers it. When the
// queue is full the batch is dropped, counted, and reported by an `event` record on the
// model's stream ("insight_dropped"): scoring is never slowed down to evaluate rules.
//
// How the scoring server calls it, after Model::Run succeeded:
//
//   sink->OnScored({.rules = loaded->insight_rules,        // shared_ptr<const RuleSet>
//                   .model = name, .version = version, .request_id = id,
//                   .signature = &loaded->model->signature(),
//                   .inputs = inputs, .outputs = outputs});
//
// and, every few seconds, FlushDueAggregates() so that a quiet minute's aggregate is written
// without waiting for the next request.
//
// State kept per (model, version): drift windows and the current minute's aggregate. A batch
// whose RuleSet differs from the one the state was built from (a reload) flushes that
// aggregate and starts the state afresh.
#ifndef OUTPOST_INSIGHT_EVALUATOR_H_
#define OUTPOST_INSIGHT_EVALUATOR_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "engine/tensor.h"
#include "insight/rules.h"
#include "outbox/outbox.h"

namespace outpost::insight {

// One scored batch as the scoring server sees it. Everything is borrowed for the duration of
// OnScored only; the sink copies what its rules need.
struct ScoredBatch {
  // The model's rules (ParseInsightConfig of its config.yaml). Null = nothing to do.
  std::shared_ptr<const RuleSet> rules{};
  std::string_view model{};
  int64_t version = 0;
  std::string_view request_id{};  // empty when the client sent none
  // Names the tensors: inputs and outputs are in signature order.
  const engine::Signature* signature = nullptr;
  std::span<const engine::Tensor> inputs{};
  std::span<const engine::Tensor> outputs{};
};

// What the scoring server calls after each successful Model::Run.
class InsightSink {
 public:
  virtual ~InsightSink() = default;
  // Takes note of one scored batch. Must not block on I/O; thread-safe.
  virtual void OnScored(const ScoredBatch& batch) = 0;
};

struct EvaluatorOptions {
  // Where records go. Not owned; must outlive the Evaluator.
  outbox::Outbox* outbox = nullptr;
  // Stamps batches and decides minute boundaries. Null = SystemClock(). Not owned; must
  // outlive the Evaluator.
  Clock* clock = nullptr;
  // Batches waiting for evaluation; a batch arriving when this many wait is dropped (>= 1).
  size_t queue_capacity = 1024;
  // Records waiting for the outbox; the evaluating thread waits when this many do (>= 1),
  // so a slow disk fills the batch queue and sheds batches rather than memory.
  size_t max_pending_records = 4096;
  // Threads appending records; several share one group commit (1 .. 64).
  int appenders = 4;
  // Seeds the sampling generator; the same seed and the same batches in the same order
  // give the same samples.
  uint64_t seed = 0x5eed;
};

// Counters since the Evaluator was created.
struct EvaluatorStats {
  uint64_t batches_evaluated = 0;
  uint64_t rows_evaluated = 0;
  uint64_t batches_dropped = 0;  // the queue was full
  uint64_t rows_dropped = 0;
  // Batches that did not fit their rules (missing tensor, wrong shape or type); counted
  // and skipped, reported in the log.
  uint64_t batches_invalid = 0;
  uint64_t records_appended = 0;
  // Records the outbox refused (full: ResourceExhausted; failed store; bad stream name).
  uint64_t records_failed = 0;
  // Records a storm left out of its sample: counted by the outbox, not failures
  // (outbox/FORMAT.md section 12).
  uint64_t records_sampled_out = 0;
};

class Evaluator final : public InsightSink {
 public:
  // Starts the evaluating and appending threads. InvalidArgument for options out of range
  // or a null outbox.
  static Result<std::unique_ptr<Evaluator>> Create(EvaluatorOptions options);

  // Evaluates every queued batch, writes every open aggregate and pending drop event, waits
  // for the outbox to take every record, and stops the threads. Precondition: no thread is
  // in or will call OnScored (the scoring server stops before its sink is destroyed).
  ~Evaluator() override;
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  // Copies the rule input and output of `batch` into the queue, or counts a drop when the
  // queue is full. Never waits for evaluation or the outbox. Thread-safe.
  void OnScored(const ScoredBatch& batch) override;

  // Asks the evaluating thread to write the aggregates of minutes that have ended by the
  // clock. Does not wait. Thread-safe.
  void FlushDueAggregates();

  // Waits until every batch queued before the call is evaluated, drops are reported and
  // every record produced so far has been answered by the outbox. Thread-safe.
  void Drain();

  EvaluatorStats stats() const;

 private:
  struct Task;
  struct ModelState;
  struct Batch;  // one valid batch as the rules read it (evaluator.cc)
  using ModelKey = std::pair<std::string, int64_t>;
  struct Drops {
    uint64_t batches = 0;
    uint64_t rows = 0;
  };

  explicit Evaluator(EvaluatorOptions options);

  void WorkerLoop();
  void AppenderLoop();
  // Worker thread only.
  void Evaluate(Task& task);
  // The state of `key`, made afresh when the task brings other rules (the old aggregate is
  // written first).
  ModelState& StateFor(const ModelKey& key, const Task& task);
  // Counts a batch at `time_ms` into its minute's aggregate, writing the previous minute's.
  void CountBatch(const ModelKey& key, ModelState& state, int64_t time_ms, int64_t cols);
  // Counts row `r` and runs every rule on it; each rule that matches emits its record.
  void EvaluateRow(const Batch& b, ModelState& state, int64_t r);
  void ApplyAnomalyRules(const Batch& b, ModelState& state, int64_t r);
  void ApplyHardExampleRules(const Batch& b, ModelState& state, int64_t r);
  void ApplySampleRules(const Batch& b, ModelState& state, int64_t r);
  // Moves each drift window on by row `r`; a record when a feature's PSI reaches the level.
  void ApplyDriftRules(const Batch& b, ModelState& state, int64_t r);
  void FlushDue(int64_t now_ms);
  void FlushAggregate(const ModelKey& key, ModelState& state);
  void ReportDrops();
  // Hands one record to the appenders; waits while max_pending_records wait. `rule` names the
  // rule that raised it, for the outbox's per-rule account (outbox/FORMAT.md section 11).
  void Emit(outbox::Kind kind, const std::string& stream, std::string payload,
            const std::string& rule = std::string());
  // The outbox's answer to one record (AppendAsync's completion): counts it, logs refusals.
  void Answered(outbox::Kind kind, const std::string& stream, const Result<outbox::RecordKey>& key);

  EvaluatorOptions options_;
  Clock* clock_;  // not owned

  mutable std::mutex mu_;              // guards everything down to the threads
  std::condition_variable work_cv_;    // the worker: a task, drops, or stopping
  std::condition_variable append_cv_;  // the appenders: a record, or stopping
  std::condition_variable space_cv_;   // the worker: room among pending records
  std::condition_variable done_cv_;    // Drain: progress
  std::deque<std::unique_ptr<Task>> tasks_;
  size_t queued_batches_ = 0;  // batch tasks in tasks_ (flush requests are not bounded)
  uint64_t tasks_enqueued_ = 0;
  uint64_t tasks_done_ = 0;
  std::map<ModelKey, Drops> drops_;  // not yet reported
  std::deque<outbox::NewRecord> records_;
  size_t records_in_flight_ = 0;  // taken by an appender, not yet answered by the outbox
  bool worker_busy_ = false;      // the worker is evaluating or reporting drops
  // The worker waits kWorkerNap at most and needs no wake-up (see WorkerLoop).
  bool worker_napping_ = false;
  bool stopping_ = false;         // the worker finishes what is queued and exits
  bool appenders_stopping_ = false;
  EvaluatorStats stats_;

  // Worker thread only: per-model state and the sampling generator.
  std::map<ModelKey, std::unique_ptr<ModelState>> states_;
  uint64_t rng_state_;

  std::thread worker_;
  std::vector<std::thread> appenders_;
};

}  // namespace outpost::insight

#endif  // OUTPOST_INSIGHT_EVALUATOR_H_
