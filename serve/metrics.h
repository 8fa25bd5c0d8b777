// Per model version statistics of the scoring server, and their two published forms:
// Prometheus text (GET /metrics) and the protocol's statistics extension
// (GET /v2/models/{m}[/versions/{v}]/stats). Formats: serve/FORMAT.md.
//
// The hot path is a handful of relaxed atomic increments on the ModelStats that a request's
// ModelHandle points to: no lock, no lookup by name. Readers (a scrape) see each counter
// exactly but not a consistent cut across counters.
#ifndef OUTPOST_SERVE_METRICS_H_
#define OUTPOST_SERVE_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace outpost::serve {

class ModelRepository;
struct ModelHandle;

// Upper bounds, in microseconds, of the buckets of every duration histogram; a last bucket
// (+Inf) holds the rest.
inline constexpr std::array<uint64_t, 16> kDurationBucketsUs = {
    25,    50,    100,   250,    500,    1000,   2500,    5000,
    10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000};

// A duration histogram with kDurationBucketsUs. Thread-safe.
class DurationHistogram {
 public:
  void Record(uint64_t ns) {
    const uint64_t us = ns / 1000;
    size_t i = 0;
    while (i < kDurationBucketsUs.size() && us > kDurationBucketsUs[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    if (ns != 0) sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  }
  // Non-cumulative count of bucket `i` (kDurationBucketsUs.size() = +Inf).
  uint64_t bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  uint64_t sum_ns() const { return sum_ns_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<uint64_t>, kDurationBucketsUs.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

// Triton's {count, ns} pair. Thread-safe.
struct DurationStat {
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> ns{0};
  void Add(uint64_t duration_ns) {
    count.fetch_add(1, std::memory_order_relaxed);
    if (duration_ns != 0) ns.fetch_add(duration_ns, std::memory_order_relaxed);
  }
};

// The statistics of one model version, from its first load to the process's end (a reload
// of the same version keeps counting on the same object). Thread-safe.
struct ModelStats {
  // Requests that reached the model version: answered (success) or not (fail), with their
  // whole duration, parsing and response writing included.
  DurationStat success;
  DurationStat fail;
  // The phases of successful requests: waiting in the model's queue for an instance (the
  // scheduler, serve/scheduler.h), input preparation (parsing, matching, validation), the
  // model's run (of the whole batch the request ran in), and output writing.
  DurationStat queue;
  DurationStat compute_input;
  DurationStat compute_infer;
  DurationStat compute_output;
  std::atomic<uint64_t> inference_count{0};  // rows (batch size summed) of successful runs
  // Answered requests that got a trusted numeric feedback label, and those the version's
  // decision got right (serve/label_tally.h).
  std::atomic<uint64_t> labelled{0};
  std::atomic<uint64_t> correct{0};
  std::atomic<uint64_t> execution_count{0};  // model runs (a batch of requests is one)
  std::atomic<uint64_t> last_inference_ms{0};  // Unix time of the last success, 0 = never
  // Requests waiting in the model's queue now (never more than its max_queue_size).
  std::atomic<int64_t> queue_depth{0};
  DurationHistogram request_duration;  // successful requests
  DurationHistogram queue_duration;
  DurationHistogram compute_duration;  // input + infer + output
};

// Times one inference request and records it into a ModelStats when it finishes. A front
// end creates it when the request's model version is known, marks the phases, and calls
// Finish(); a recorder destroyed unfinished records a failure. With stats == nullptr it
// records nothing. Not thread-safe (one per request).
class InferenceRecorder {
 public:
  using Clock = std::chrono::steady_clock;
  explicit InferenceRecorder(ModelStats* stats)
      : stats_(stats), start_(stats ? Clock::now() : Clock::time_point()) {}
  ~InferenceRecorder() {
    if (stats_ != nullptr) Finish(false);
  }
  InferenceRecorder(const InferenceRecorder&) = delete;
  InferenceRecorder& operator=(const InferenceRecorder&) = delete;

  // The inputs are ready; the model runs next.
  void InputsReady() {
    if (stats_ != nullptr) inputs_ready_ = Clock::now();
  }
  // The request waited `ns` in the model's queue before its batch ran (between
  // InputsReady and RunDone).
  void Queued(uint64_t ns) { queue_ns_ = ns; }
  // The model ran on the request's `rows` rows (alone or in a batch). The scheduler counts
  // the run in execution_count.
  void RunDone(uint64_t rows) {
    if (stats_ == nullptr) return;
    run_done_ = Clock::now();
    rows_ = rows;
    ran_ = true;
  }
  // Records the request as answered (ok) or failed. Later calls do nothing.
  void Finish(bool ok);

 private:
  ModelStats* stats_;
  Clock::time_point start_;
  Clock::time_point inputs_ready_{};
  Clock::time_point run_done_{};
  uint64_t rows_ = 0;
  uint64_t queue_ns_ = 0;
  bool ran_ = false;
};

// Appends the Prometheus text exposition (format 0.0.4) of every ready model version in
// `repository` to `out`.
void WriteMetrics(const ModelRepository& repository, std::string& out);

// Appends Triton's statistics JSON for `handle`'s model: every ready version when
// `all_versions`, else only handle.version.
void WriteModelStats(const ModelHandle& handle, bool all_versions, std::string& out);

// The statistics JSON of every ready version of every model.
void WriteAllModelStats(const ModelRepository& repository, std::string& out);

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_METRICS_H_
