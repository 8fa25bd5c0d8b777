// Scheduler: the bounded queue in front of one model version's instances, with optional
// dynamic batching (model config.yaml: max_batch_size and the `batching:` section, see
// serve/model_config.h and serve/FORMAT.md).
//
// Every inference request of the version (REST and gRPC alike, through RunInference in
// serve/handler.h) calls Run() on the thread that received it and waits there. There are no
// scheduler threads: a waiting request that reaches the head of the queue while an instance
// is free becomes the batch's leader. It takes the instance, waits at most
// max_queue_delay for more requests to join when batching is on, takes as many requests from
// the head of the queue as fit the batch (each with its own rows, in arrival order), runs the
// model once on their rows stacked along dimension 0, gives each request exactly its own rows
// of every output back, and wakes them. `instances` leaders run at once, each on one batch.
//
// Refusals, each answered without running the model:
//   - Unavailable at once when max_queue_size requests already wait (load is shed, memory
//     stays bounded);
//   - DeadlineExceeded when a request is still queued at its deadline (the request's own
//     timeout, else the config's default);
//   - Cancelled when the request's client is gone (its `cancelled` function says so) while it
//     waits, checked while waiting and again just before its batch is formed.
//
// Statistics: the ModelStats given count batches in execution_count and keep queue_depth
// (requests waiting, at most max_queue_size) current.
#ifndef OUTPOST_SERVE_SCHEDULER_H_
#define OUTPOST_SERVE_SCHEDULER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/status.h"
#include "engine/model.h"
#include "serve/metrics.h"

namespace outpost::serve {

struct SchedulerOptions {
  // Most rows one batch holds; 0 or 1 = no dynamic batching (each request runs alone).
  int64_t max_batch_size = 0;
  // Batch sizes the leader prefers (ascending, each <= max_batch_size): it waits for the
  // largest, then takes the largest that the queue's head can fill exactly, else as many
  // rows as fit max_batch_size.
  std::vector<int64_t> preferred_batch_sizes{};
  // How long a leader waits for more requests before running a batch smaller than the
  // largest preferred size (or max_batch_size). 0 = runs what is queued at once.
  std::chrono::microseconds max_queue_delay{0};
  // Batches that run at once (model instances share the loaded model, which is
  // thread-safe). >= 1.
  int instances = 1;
  // Requests that may wait for an instance; one more is refused with Unavailable. >= 1.
  size_t max_queue_size = 256;
  // How long a request may wait in the queue when it gives no timeout; 0 = no limit.
  std::chrono::microseconds default_timeout{0};
};

// One request handed to Scheduler::Run. Borrowed for the call.
struct ScheduledRequest {
  // The inputs in signature order, validated against the signature.
  std::span<const engine::Tensor> inputs;
  // Receives the request's outputs in signature order.
  std::vector<engine::Tensor>* outputs = nullptr;
  // How long the request may wait in the queue; 0 = the scheduler's default_timeout.
  std::chrono::microseconds timeout{0};
  // True once the client has gone; empty = never. Called with the scheduler's lock held, so
  // it must be cheap and must not call back into the scheduler.
  std::function<bool()> cancelled{};
  // Filled by Run: how long the request waited for an instance, and the rows of the batch it
  // ran in (0 when it did not run).
  uint64_t queue_ns = 0;
  int64_t batch_rows = 0;
};

class Scheduler {
 public:
  // `stats` may be null (nothing recorded); otherwise it outlives the scheduler. Options out
  // of range are clamped (instances and max_queue_size to at least 1). Batching stays off
  // when some input or output of `model` has no variable dimension 0.
  Scheduler(std::shared_ptr<const engine::Model> model, SchedulerOptions options,
            ModelStats* stats);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runs `request` on the model, alone or batched with others, and returns when its outputs
  // are in request.outputs or it was refused (see above). A model's own error is returned
  // to every request of the batch. InvalidArgument for a request with more rows than
  // max_batch_size. Thread-safe; blocks.
  Status Run(ScheduledRequest& request);

  // Whether requests may be batched together.
  bool batching() const { return max_batch_ > 1; }
  const SchedulerOptions& options() const { return options_; }
  // Requests waiting now.
  size_t queue_depth() const;

 private:
  struct Pending;

  // The rows of a request: dimension 0 of its first input when batching is on, else 1.
  int64_t RowsOf(const ScheduledRequest& request) const;
  // Whether `b` can share a batch with `a` (same types and shapes after dimension 0).
  static bool Compatible(const ScheduledRequest& a, const ScheduledRequest& b);
  // The caller holds `lock`, is at the head of the queue and has taken an instance: forms
  // one batch, runs it with the lock released, answers its requests and gives the instance
  // back.
  void Lead(std::unique_lock<std::mutex>& lock, Pending& self);
  // Removes `p` from the queue (caller holds mu_) and wakes the new head when it can lead.
  void RemoveLocked(Pending& p);
  void WakeHeadLocked();
  // Runs one batch (no lock held). Each request's outputs, or the batch's error.
  Status Execute(std::span<Pending* const> batch);

  const std::shared_ptr<const engine::Model> model_;
  const SchedulerOptions options_;
  ModelStats* const stats_;
  int64_t max_batch_ = 1;  // rows per batch; 1 = no batching
  int64_t target_rows_ = 1;  // what a leader waits for

  mutable std::mutex mu_;  // guards everything below
  std::deque<Pending*> queue_;
  int free_instances_ = 1;
  std::condition_variable arrivals_;  // a leader waiting for its batch to fill
  int leaders_waiting_ = 0;
};

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_SCHEDULER_H_
