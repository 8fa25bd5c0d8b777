// LabelTally: how often each model version was right, by the feedback labels that arrive for
// the requests it answered (serve/FORMAT.md, POST /v1/feedback). The first output's first
// row of every answered request with an id is remembered (a bounded map per model, the
// oldest forgotten first) with the version that answered it; a trusted numeric label for
// that request id later counts once against that version: `labelled`, and `correct` when
// the version's decision (score >= the decision threshold: the model's shadow rule's
// `decision_threshold` where it has one, else 0.5) equals the label's (label >= the same
// threshold). The counts live in the version's ModelStats, which the node reports to the
// hub (sync/FORMAT.md section 2) for the rollout gates (hub/FORMAT.md section 11).
//
// Thread-safe; Remember is on the response path: one lock and one map insert.
#ifndef OUTPOST_SERVE_LABEL_TALLY_H_
#define OUTPOST_SERVE_LABEL_TALLY_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tensor.h"
#include "serve/metrics.h"
#include "serve/repository.h"

namespace outpost::serve {

// The first `limit` elements of a numeric tensor as doubles; empty for BYTES and
// half-precision types.
std::vector<double> TensorScores(const engine::Tensor& t, size_t limit = SIZE_MAX);

class LabelTally {
 public:
  struct Options {
    size_t max_tracked_requests = 10000;  // per model
    size_t max_request_id_bytes = 256;    // longer ids are not remembered
  };
  LabelTally() : LabelTally(Options{}) {}
  explicit LabelTally(Options options) : options_(options) {}
  LabelTally(const LabelTally&) = delete;
  LabelTally& operator=(const LabelTally&) = delete;

  // `handle`'s version answered request `request_id` with `outputs` (signature order).
  // Nothing is remembered without an id, stats, or a numeric first output.
  void Remember(const ModelHandle& handle, std::string_view request_id,
                std::span<const engine::Tensor> outputs);

  // A label for request `request_id` of `model`: counted once, when it is finite and
  // `trusted` and the request is still remembered.
  void OnFeedback(std::string_view model, std::string_view request_id, double label, bool trusted);

 private:
  struct Tracked {
    ModelStats* stats = nullptr;  // the repository keeps it for its whole life
    double score = 0;
    double threshold = 0.5;
    uint64_t seq = 0;  // which entry of `order` is this one's
  };
  struct PerModel {
    std::unordered_map<std::string, Tracked> tracked;
    std::deque<std::pair<std::string, uint64_t>> order;  // (id, seq), oldest first
    uint64_t next_seq = 0;
  };
  const Options options_;
  std::mutex mu_;
  std::map<std::string, PerModel, std::less<>> models_;
};

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_LABEL_TALLY_H_
