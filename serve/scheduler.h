// Scheduler: the bounded queue in front of one model version's instances, with optional
// dynamic batching (model config.yaml: max_batch_size and the `batching:` section, see
// serve/model_config.h and serve/FORMAT.md).
//
// Every inference request of the version (REST and gRPC alike, through RunInference or
// RunInferenceAsync in serve/handler.h) is submitted with a completion and queued; the
// submitting thread goes on with other work (an event loop serves its other connections).
// The scheduler owns up to `instances` worker threads, started as the load needs them (a
// request that finds no idle worker starts one while fewer than `instances` run; they stay
// until the scheduler is destroyed). A free worker takes the head of the queue,
// waits at most max_queue_delay for more requests to join when batching is on, takes as many
// requests from the head as fit the batch (each with its own rows, in arrival order), runs
// the model once on their rows stacked along dimension 0, gives each request exactly its own
// rows of every output back, and calls each request's completion. `instances` batches run at
// once, each on its own worker. One more thread of the scheduler watches the queue: it
// answers requests whose deadline passes or whose client goes away while every worker is
// busy.
//
// Fast path: a request that would not wait (nothing queued, no batch filling, an instance
// free, and batching would not hold it: max_batch_size <= 1 or max_queue_delay 0) runs on the
// submitting thread, inside Submit, when the version is known to be fast: it has run at least
// kInlineMinRuns (4) times and the running average of its runs (each new run weighs 1/8) is
// below kInlineRunBound (250 us, scheduler.cc). It takes an instance as a worker does, and
// counts in the statistics as a batch of one that did not queue. A version with no history,
// or a slow one, always runs on the workers, so that no front-end thread waits long for a
// model; a request that arrives while an inline run holds the last instance queues, and a
// worker takes it when the instance is given back.
//
// Refusals, each answered without running the model:
//   - Unavailable at once, on the submitting thread, when max_queue_size requests already
//     wait (load is shed, memory stays bounded);
//   - DeadlineExceeded when a request is still queued at its deadline (the request's own
//     timeout, else the config's default);
//   - Cancelled when the request's client is gone (its `cancelled` function says so) while it
//     waits, checked every few milliseconds while it waits and again just before its batch
//     is formed;
//   - Unavailable (reason model_unloading) for requests still queued when the scheduler is
//     destroyed.
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
  // Batches that run at once, each on a worker thread of the scheduler (model instances
  // share the loaded model, which is thread-safe). >= 1.
  int instances = 1;
  // Requests that may wait for an instance; one more is refused with Unavailable. >= 1.
  size_t max_queue_size = 256;
  // How long a request may wait in the queue when it gives no timeout; 0 = no limit.
  std::chrono::microseconds default_timeout{0};
};

// One request handed to Scheduler::Submit or Run. Borrowed until its completion is called
// (Run: until it returns).
struct ScheduledRequest {
  // The inputs in signature order, validated against the signature.
  std::span<const engine::Tensor> inputs;
  // Receives the request's outputs in signature order.
  std::vector<engine::Tensor>* outputs = nullptr;
  // How long the request may wait in the queue; 0 = the scheduler's default_timeout.
  std::chrono::microseconds timeout{0};
  // True once the client has gone; empty = never. Called on a scheduler thread with the
  // scheduler's lock held (never for a request the fast path runs), so it must be cheap,
  // thread-safe and must not call back into the scheduler.
  std::function<bool()> cancelled{};
  // Filled before the completion is called: how long the request waited for an instance, and
  // the rows of the batch it ran in (0 when it did not run).
  uint64_t queue_ns = 0;
  int64_t batch_rows = 0;
};

// Called exactly once with the request's outcome (the same statuses Run returns), on a
// scheduler thread, or on the submitting thread before Submit returns: when the request is
// refused before it is queued (queue full, too many rows), and when it ran inline (the fast
// path above), successfully or not. The request (and what it points to) stays borrowed
// until then. It may release the last reference to whatever owns the scheduler: the
// scheduler's thread then leaves without touching the scheduler again.
using ScheduledDone = std::function<void(Status)>;

// Calls `submit` with a completion and blocks until that completion has been called; returns
// the status it was given. How a blocking call is made of an asynchronous one (Scheduler::Run,
// RunInference in serve/handler.h).
Status WaitForCompletion(const std::function<void(ScheduledDone)>& submit);

class Scheduler {
 public:
  // `stats` may be null (nothing recorded); otherwise it outlives the scheduler. Options out
  // of range are clamped (instances and max_queue_size to at least 1). Batching stays off
  // when some input or output of `model` has no variable dimension 0. Starts the queue's
  // watcher thread; workers start with the first requests.
  Scheduler(std::shared_ptr<const engine::Model> model, SchedulerOptions options,
            ModelStats* stats);
  // Answers the requests still queued with Unavailable (reason model_unloading), waits for
  // the batches that run to finish and their completions to return, and joins the threads,
  // except the one it is called on (from a completion): that one is detached and leaves
  // without touching the scheduler. Nothing may submit concurrently.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues `request` to run on the model, alone or batched with others, and returns at once;
  // `done` is called exactly once (see ScheduledDone) when its outputs are in
  // request.outputs or it was refused (see above). A model's own error goes to every request
  // of the batch. InvalidArgument (on the submitting thread) for a request with more rows
  // than max_batch_size. Thread-safe.
  void Submit(ScheduledRequest& request, ScheduledDone done);

  // Submit, then waits for the outcome: for callers that may block. Thread-safe.
  Status Run(ScheduledRequest& request);

  // Whether requests may be batched together.
  bool batching() const;
  const SchedulerOptions& options() const;
  // Requests waiting now.
  size_t queue_depth() const;

 private:
  // The queue and everything the threads share. The threads hold it too, so that a thread
  // whose completion destroyed the scheduler can still leave cleanly.
  struct Core;

  std::shared_ptr<Core> core_;
};

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_SCHEDULER_H_
