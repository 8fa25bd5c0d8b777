// ShadowRunner: scores a model's shadow version beside its champion, off the response path,
// and promotes or drops the shadow by the rule in the model's config (serve/model_config.h,
// `shadow:`; serve/FORMAT.md, section "Shadow mode").
//
// Every batch the champion scores (RunInference, REST and gRPC alike) is offered to the
// runner, which copies its inputs and the champion's first output onto a bounded queue and
// returns: a full queue skips the batch and counts it, so a response is never delayed by
// more than that copy. One thread takes the queue, runs the shadow version on the same
// inputs and compares the first outputs row by row: a row agrees when both scores fall on
// the same side of `decision_threshold` or differ by at most `tolerance`. The rows of
// requests with an id are remembered (a bounded map, the oldest forgotten first) so that a
// numeric label arriving later through POST /v1/feedback scores both versions: a version is
// right when its decision equals the label's (label >= decision_threshold).
//
// Only trusted labels count (LabelSource: sent by an authenticated credential with the label
// role); untrusted ones are counted as ignored and never move a decision.
//
// Once `promote.min_requests` rows were compared and `promote.min_labelled` labels arrived,
// the rule decides: the shadow is promoted when agreement >= min_agreement and (shadow
// accuracy - champion accuracy) >= min_accuracy_gain, else dropped. Either way config.yaml
// is rewritten atomically without its `shadow:` section and with `version_policy:
// {specific: [the winner]}`, so that a restart keeps the decision, the model is reloaded,
// and the outcome with its numbers goes to ShadowOptions::on_event (the edge node appends it
// to the outbox as an `event` record on the model's stream).
//
// The counters of every model are in /metrics (WriteMetrics). Thread-safe.
#ifndef OUTPOST_SERVE_SHADOW_H_
#define OUTPOST_SERVE_SHADOW_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "engine/tensor.h"
#include "serve/repository.h"

namespace outpost::serve {

// Who sent a label, as its feedback record says (serve/FORMAT.md, POST /v1/feedback).
struct LabelSource {
  // The credential's name; empty when the caller had none (anonymous).
  std::string credential{};
  // Sent by an authenticated credential that holds the label role.
  bool trusted = false;
};

struct ShadowOptions {
  // Where shadow versions are found and reloaded after a decision. Not owned; required.
  ModelRepository* repository = nullptr;
  // Receives each outcome: the model (the outbox stream) and the event's JSON payload.
  // Called on the runner's thread. Null = the outcome is only logged and counted.
  std::function<Status(const std::string& model, std::string payload)> on_event;
  // Batches waiting for the shadow; a batch offered while it is full is skipped (counted).
  size_t max_queue = 256;
  // Request ids remembered per model for feedback; the oldest is forgotten first.
  size_t max_tracked_requests = 10000;
  // Longer request ids are not remembered.
  size_t max_request_id_bytes = 256;
  // Stamps the events' time_ms. Null = SystemClock(). Not owned.
  Clock* clock = nullptr;
};

enum class ShadowOutcome { kPending, kPromoted, kDropped };
std::string_view ShadowOutcomeName(ShadowOutcome outcome);  // "pending", "promoted", "dropped"

// What the runner has seen of one model's shadow.
struct ShadowCounters {
  int64_t shadow_version = 0;
  int64_t champion_version = 0;  // of the last batch compared
  uint64_t compared = 0;          // rows scored by both versions
  uint64_t agreed = 0;
  uint64_t skipped = 0;  // batches not scored by the shadow: its queue was full
  uint64_t failed = 0;   // batches the shadow could not score (error, other output shape)
  uint64_t labelled = 0;           // remembered requests that got a trusted numeric label
  uint64_t label_credentials = 0;  // distinct credentials among those labels
  uint64_t untrusted_labels = 0;   // numeric labels ignored: not trusted
  uint64_t champion_correct = 0;
  uint64_t shadow_correct = 0;
  ShadowOutcome outcome = ShadowOutcome::kPending;
};

class ShadowRunner {
 public:
  // Starts the runner's thread.
  explicit ShadowRunner(ShadowOptions options);
  ~ShadowRunner();  // Stop()
  ShadowRunner(const ShadowRunner&) = delete;
  ShadowRunner& operator=(const ShadowRunner&) = delete;

  // Offers one batch the champion scored (`champion.version`, its `inputs` and `outputs` in
  // signature order). Copies what it needs; never blocks on the shadow.
  void Offer(const ModelHandle& champion, std::string_view request_id,
             std::span<const engine::Tensor> inputs, std::span<const engine::Tensor> outputs);

  // A numeric label for request `request_id` of `model` from `source`; ignored unless that
  // request was compared and is still remembered, and (counted as untrusted_labels) unless
  // `source` is trusted. Each request is counted once.
  void OnFeedback(std::string_view model, std::string_view request_id, double label,
                  const LabelSource& source);

  // Appends the Prometheus text of every model's shadow counters.
  void WriteMetrics(std::string& out) const;

  // The counters of `model`'s shadow; empty when none was offered.
  std::optional<ShadowCounters> Counters(std::string_view model) const;

  // Waits until every offered batch was compared and every due decision was taken.
  void WaitIdle();

  // Finishes the batch in progress and stops; what is queued is dropped.
  void Stop();

 private:
  struct Item {
    std::shared_ptr<const ServableModel> servable;
    int64_t champion_version = 0;
    std::string request_id;
    std::vector<engine::Tensor> inputs;
    std::vector<double> champion_scores;
  };
  struct Tracked {
    double champion = 0;
    double shadow = 0;
  };
  struct State {
    ShadowCounters counters;
    ShadowConfig config;
    std::unordered_map<std::string, Tracked> tracked;
    std::deque<std::string> order;  // tracked ids, oldest first
    std::set<std::string> label_credentials;  // who gave the counted labels
    bool deciding = false;
  };

  void Loop();
  void Compare(Item& item);
  // The state of `model` for shadow `config`, reset when the shadow version changed.
  // Caller holds mu_.
  State& StateFor(const std::string& model, const ShadowConfig& config);
  // True when `state`'s rule has enough evidence to decide. Caller holds mu_.
  static bool Due(const State& state);
  // Takes the decision for `model` (caller does not hold mu_).
  void Decide(const std::string& model);

  ShadowOptions options_;
  Clock* clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // work arrived or stop
  std::condition_variable idle_cv_;  // the queue emptied
  std::deque<Item> queue_;
  std::vector<std::string> due_;  // models with a decision to take
  bool busy_ = false;
  bool stop_ = false;
  std::map<std::string, State, std::less<>> states_;
  std::thread thread_;
};

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_SHADOW_H_
