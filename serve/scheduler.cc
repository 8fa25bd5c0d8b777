#include "serve/scheduler.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

namespace outpost::serve {
namespace {

using Clock = std::chrono::steady_clock;

// How often the watcher looks at the clients of queued requests that may go away.
constexpr std::chrono::milliseconds kCancelPoll(5);

// The inline fast path (see scheduler.h): a version runs a request on its submitting thread
// only while the running average of its recent runs is below kInlineRunBound and it has run
// at least kInlineMinRuns times. The average weighs each new run by 1/kInlineRunWeight.
constexpr std::chrono::microseconds kInlineRunBound(250);
constexpr uint64_t kInlineMinRuns = 4;
constexpr uint64_t kInlineRunWeight = 8;

Status Unloading() {
  return UnavailableError("the model version is being unloaded; the request did not run")
      .WithReason("model_unloading");
}

uint64_t Nanos(Clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

// Whether every tensor of `specs` has a variable dimension 0.
bool BatchDimension(const std::vector<engine::TensorSpec>& specs) {
  for (const engine::TensorSpec& spec : specs) {
    if (spec.shape.empty() || spec.shape[0] >= 0) return false;
  }
  return !specs.empty();
}

}  // namespace

struct Scheduler::Core : std::enable_shared_from_this<Scheduler::Core> {
  // One queued request with its completion.
  struct Pending {
    ScheduledRequest* request;
    ScheduledDone done;
    int64_t rows;
    Clock::time_point enqueued;
    std::chrono::microseconds timeout;  // 0 = none
    Clock::time_point deadline;         // max() = none
    bool waited = false;                // waited for an instance or for its batch to fill
  };
  using PendingPtr = std::unique_ptr<Pending>;
  // A request out of the queue with its outcome, for its completion.
  struct Answer {
    PendingPtr pending;
    Status status;
  };

  Core(std::shared_ptr<const engine::Model> m, SchedulerOptions o, ModelStats* s);

  // A worker: forms batches from the head of the queue and runs them until stopping.
  void Work();
  // The watcher: answers queued requests past their deadline or whose client has gone.
  void Watch();

  // Whether the batch at the head may be formed now; otherwise waits (the caller's worker
  // leads: it waits for the batch to fill) and returns false so that the caller looks again.
  bool ReadyToForm(std::unique_lock<std::mutex>& lock);
  // Takes the batch from the head of the queue (mu held). Requests past their deadline or
  // whose client has gone go to `refused` on the way.
  std::vector<PendingPtr> TakeBatch(Clock::time_point now, std::vector<Answer>& refused);
  // Removes every queued request past its deadline or whose client has gone into `refused`
  // (mu held); returns when the watcher should look again.
  Clock::time_point Sweep(Clock::time_point now, std::vector<Answer>& refused);
  // Why `p` may not wait any longer at `now`, or OK.
  Status Expired(const Pending& p, Clock::time_point now) const;
  // Runs one batch (no lock held). Each request's outputs, or the batch's error.
  Status Execute(std::span<const PendingPtr> batch) const;
  // Execute, timed into the running average of runs (no lock held).
  Status TimedExecute(std::span<const PendingPtr> batch);
  // Whether `p`, just submitted (mu held), may run on the submitting thread at once: it would
  // not wait, and the version's recent runs are fast (kInlineRunBound).
  bool MayRunInline(const Pending& p, Clock::time_point now) const;
  // Runs `p` on the calling thread as a worker runs a batch of one and calls its completion;
  // `lock` (on mu) is released. The completion may destroy the scheduler.
  void RunInline(PendingPtr p, std::unique_lock<std::mutex>& lock);
  // A worker for the queue's next batch (mu held): an idle one is woken, else one more is
  // started while there are fewer than `instances`, else a busy one takes it when done.
  void WakeWorker();
  // The rows of a request: dimension 0 of its first input when batching is on, else 1.
  int64_t RowsOf(const ScheduledRequest& request) const;
  // Whether `b` can share a batch with `a` (same types and shapes after dimension 0).
  static bool Compatible(const ScheduledRequest& a, const ScheduledRequest& b);
  // Calls the completion of each request of `answers` with its status (no lock held), and
  // empties it. A completion may destroy the scheduler.
  static void AnswerAll(std::vector<Answer>& answers);

  const std::shared_ptr<const engine::Model> model;
  const SchedulerOptions options;
  // Touched only while the scheduler exists: a thread that called completions looks at
  // `stopping` before touching it again.
  ModelStats* const stats;
  int64_t max_batch = 1;    // rows per batch; 1 = no batching
  int64_t target_rows = 1;  // what a leader waits for
  size_t bound = 1;         // max_queue_size
  int instances = 1;        // most worker threads

  std::mutex mu;  // guards everything below but `running`
  std::deque<PendingPtr> queue;
  std::condition_variable work_cv;   // idle workers: a request arrived, or stop
  std::condition_variable fill_cv;   // the leader waiting for its batch to fill
  std::condition_variable watch_cv;  // the watcher: an earlier deadline, or stop
  int idle_workers = 0;
  // Batches running now, at most `instances`, each started with mu held (by a worker or by
  // a submitting thread that runs its request inline).
  std::atomic<int> running{0};
  // The running average of the version's recent runs, in ns, and how many runs it has seen
  // (written without mu after each run).
  std::atomic<uint64_t> run_ns_average{0};
  std::atomic<uint64_t> runs_timed{0};
  bool leader_filling = false;
  // When the watcher looks next while it sleeps; min() while it is awake.
  Clock::time_point watch_at = Clock::time_point::min();
  bool stopping = false;
  int workers = 0;                   // worker threads started, at most `instances`
  std::vector<std::thread> threads;  // the watcher, then the workers
};

void Scheduler::Core::AnswerAll(std::vector<Answer>& answers) {
  for (Answer& r : answers) {
    ScheduledDone done = std::move(r.pending->done);
    r.pending.reset();
    done(std::move(r.status));
  }
  answers.clear();
}

Scheduler::Core::Core(std::shared_ptr<const engine::Model> m, SchedulerOptions o,
                      ModelStats* s)
    : model(std::move(m)), options(std::move(o)), stats(s) {
  const engine::Signature& signature = model->signature();
  if (options.max_batch_size > 1 && BatchDimension(signature.inputs) &&
      BatchDimension(signature.outputs)) {
    max_batch = options.max_batch_size;
    target_rows = max_batch;
    for (int64_t size : options.preferred_batch_sizes) {
      if (size >= 1 && size <= max_batch) target_rows = size;  // ascending: the largest
    }
  }
  bound = std::max<size_t>(1, options.max_queue_size);
  instances = std::max(1, options.instances);
}

Scheduler::Scheduler(std::shared_ptr<const engine::Model> model, SchedulerOptions options,
                     ModelStats* stats)
    : core_(std::make_shared<Core>(std::move(model), std::move(options), stats)) {
  std::lock_guard<std::mutex> lock(core_->mu);
  core_->threads.emplace_back([core = core_] { core->Watch(); });
}

Scheduler::~Scheduler() {
  std::vector<Core::Answer> left;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->stopping = true;
    for (Core::PendingPtr& p : core_->queue) left.push_back({std::move(p), Unloading()});
    core_->queue.clear();
    if (core_->stats != nullptr) {
      core_->stats->queue_depth.fetch_sub(static_cast<int64_t>(left.size()),
                                          std::memory_order_relaxed);
    }
    threads.swap(core_->threads);
  }
  core_->work_cv.notify_all();
  core_->fill_cv.notify_all();
  core_->watch_cv.notify_all();
  Core::AnswerAll(left);
  // A completion that released the scheduler's owner runs on one of its threads: that
  // thread holds the core and leaves on its own.
  const std::thread::id self = std::this_thread::get_id();
  for (std::thread& t : threads) {
    if (t.get_id() == self) {
      t.detach();
    } else {
      t.join();
    }
  }
}

bool Scheduler::batching() const { return core_->max_batch > 1; }

const SchedulerOptions& Scheduler::options() const { return core_->options; }

size_t Scheduler::queue_depth() const {
  std::lock_guard<std::mutex> lock(core_->mu);
  return core_->queue.size();
}

int64_t Scheduler::Core::RowsOf(const ScheduledRequest& request) const {
  if (max_batch <= 1 || request.inputs.empty() || request.inputs[0].shape().empty()) return 1;
  return request.inputs[0].shape()[0];
}

bool Scheduler::Core::Compatible(const ScheduledRequest& a, const ScheduledRequest& b) {
  if (a.inputs.size() != b.inputs.size()) return false;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const engine::Tensor& x = a.inputs[i];
    const engine::Tensor& y = b.inputs[i];
    if (x.type() != y.type() || x.shape().size() != y.shape().size() || x.shape().empty()) {
      return false;
    }
    if (!std::equal(x.shape().begin() + 1, x.shape().end(), y.shape().begin() + 1)) return false;
  }
  return true;
}

void Scheduler::Submit(ScheduledRequest& request, ScheduledDone done) {
  Core& core = *core_;
  request.queue_ns = 0;
  request.batch_rows = 0;
  const Clock::time_point now = Clock::now();
  const std::chrono::microseconds timeout =
      request.timeout.count() > 0 ? request.timeout : core.options.default_timeout;
  auto pending = std::make_unique<Core::Pending>(Core::Pending{
      .request = &request,
      .done = std::move(done),
      .rows = core.RowsOf(request),
      .enqueued = now,
      .timeout = timeout,
      .deadline = timeout.count() > 0 ? now + timeout : Clock::time_point::max()});
  if (pending->rows > core.max_batch && core.max_batch > 1) {
    pending->done(InvalidArgumentError(
        "the request has " + std::to_string(pending->rows) + " rows; the model takes at most " +
        std::to_string(core.max_batch) + " (max_batch_size)"));
    return;
  }
  std::unique_lock<std::mutex> lock(core.mu);
  if (core.stopping || core.queue.size() >= core.bound) {
    const bool stopping = core.stopping;
    lock.unlock();
    pending->done(stopping ? Unloading()
                           : UnavailableError("the queue of the model is full (" +
                                              std::to_string(core.bound) +
                                              " requests wait); try again later"));
    return;
  }
  // A request that finds an instance free and nothing ahead of it did not wait (the hand-over
  // to a worker is not queueing).
  pending->waited = !core.queue.empty() || core.leader_filling ||
                    core.running.load(std::memory_order_relaxed) >= core.instances;
  if (core.MayRunInline(*pending, now)) {
    // Keeps the core alive: the completion may destroy the scheduler.
    const std::shared_ptr<Core> keep = core_;
    keep->RunInline(std::move(pending), lock);
    return;
  }
  const bool watch = pending->deadline < core.watch_at ||
                     (request.cancelled && now + kCancelPoll < core.watch_at);
  core.queue.push_back(std::move(pending));
  if (core.stats != nullptr) core.stats->queue_depth.fetch_add(1, std::memory_order_relaxed);
  if (core.leader_filling) {
    core.fill_cv.notify_one();
  } else {
    core.WakeWorker();
  }
  if (watch) core.watch_cv.notify_one();
}

Status WaitForCompletion(const std::function<void(ScheduledDone)>& submit) {
  struct Outcome {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status status;
  } outcome;
  submit([&outcome](Status status) {
    std::lock_guard<std::mutex> lock(outcome.mu);
    outcome.status = std::move(status);
    outcome.done = true;
    outcome.cv.notify_one();  // under the lock: `outcome` lives until it is released
  });
  std::unique_lock<std::mutex> lock(outcome.mu);
  outcome.cv.wait(lock, [&outcome] { return outcome.done; });
  return std::move(outcome.status);
}

Status Scheduler::Run(ScheduledRequest& request) {
  return WaitForCompletion([&](ScheduledDone done) { Submit(request, std::move(done)); });
}

Status Scheduler::Core::Expired(const Pending& p, Clock::time_point now) const {
  if (now >= p.deadline) {
    return DeadlineExceededError("the request waited " + std::to_string(p.timeout.count()) +
                                 " us in the model's queue without running (its timeout)");
  }
  if (p.request->cancelled && p.request->cancelled()) {
    return CancelledError("the client went away while the request waited in the queue");
  }
  return Status();
}

Clock::time_point Scheduler::Core::Sweep(Clock::time_point now, std::vector<Answer>& refused) {
  Clock::time_point next = Clock::time_point::max();
  for (auto it = queue.begin(); it != queue.end();) {
    Status why = Expired(**it, now);
    if (!why.ok()) {
      refused.push_back({std::move(*it), std::move(why)});
      it = queue.erase(it);
      continue;
    }
    next = std::min(next, (*it)->deadline);
    if ((*it)->request->cancelled) next = std::min(next, now + kCancelPoll);
    ++it;
  }
  if (stats != nullptr && !refused.empty()) {
    stats->queue_depth.fetch_sub(static_cast<int64_t>(refused.size()), std::memory_order_relaxed);
  }
  return next;
}

void Scheduler::Core::Watch() {
  std::unique_lock<std::mutex> lock(mu);
  std::vector<Answer> refused;
  while (!stopping) {
    const Clock::time_point next = Sweep(Clock::now(), refused);
    if (!refused.empty()) {
      // The head may have changed: a leader recounts its batch.
      if (leader_filling) fill_cv.notify_one();
      lock.unlock();
      AnswerAll(refused);  // may destroy the scheduler: `stopping` says so
      lock.lock();
      continue;
    }
    watch_at = next;
    if (next == Clock::time_point::max()) {
      watch_cv.wait(lock);
    } else {
      watch_cv.wait_until(lock, next);
    }
    watch_at = Clock::time_point::min();
  }
}

bool Scheduler::Core::ReadyToForm(std::unique_lock<std::mutex>& lock) {
  if (max_batch <= 1 || options.max_queue_delay.count() <= 0) return true;
  const Clock::time_point until = queue.front()->enqueued + options.max_queue_delay;
  int64_t rows = 0;
  for (const PendingPtr& p : queue) {
    rows += p->rows;
    if (rows >= target_rows) return true;
  }
  if (Clock::now() >= until) return true;
  for (const PendingPtr& p : queue) p->waited = true;
  leader_filling = true;
  fill_cv.wait_until(lock, until);
  leader_filling = false;
  return false;
}

void Scheduler::Core::Work() {
  std::unique_lock<std::mutex> lock(mu);
  std::vector<Answer> answers;
  while (!stopping) {
    if (queue.empty() || leader_filling ||
        running.load(std::memory_order_relaxed) >= instances) {
      // Every instance is taken (by requests running inline): RunInline wakes a worker.
      ++idle_workers;
      work_cv.wait(lock);
      --idle_workers;
      continue;
    }
    if (!ReadyToForm(lock)) continue;
    std::vector<PendingPtr> batch = TakeBatch(Clock::now(), answers);
    if (!queue.empty() && idle_workers > 0) work_cv.notify_one();  // the next batch
    if (!answers.empty()) {
      lock.unlock();
      AnswerAll(answers);  // may destroy the scheduler: then the batch does not run
      lock.lock();
      if (stopping) {
        for (PendingPtr& p : batch) answers.push_back({std::move(p), Unloading()});
        lock.unlock();
        AnswerAll(answers);
        return;
      }
    }
    if (batch.empty()) continue;
    running.fetch_add(1, std::memory_order_relaxed);
    lock.unlock();
    const Status status = TimedExecute(batch);
    if (stats != nullptr && status.ok()) {
      stats->execution_count.fetch_add(1, std::memory_order_relaxed);
    }
    running.fetch_sub(1, std::memory_order_relaxed);
    // The last completion may destroy the scheduler; nothing of it is touched after.
    for (PendingPtr& p : batch) answers.push_back({std::move(p), status});
    AnswerAll(answers);
    lock.lock();
  }
}

std::vector<Scheduler::Core::PendingPtr> Scheduler::Core::TakeBatch(
    Clock::time_point now, std::vector<Answer>& refused) {
  // The head first, then each compatible request that fits; requests that may not wait any
  // longer are answered on the way.
  std::vector<PendingPtr> batch;
  int64_t rows = 0;
  const size_t refused_before = refused.size();
  for (auto it = queue.begin(); it != queue.end();) {
    Pending& p = **it;
    Status why = Expired(p, now);
    if (!why.ok()) {
      refused.push_back({std::move(*it), std::move(why)});
      it = queue.erase(it);
      continue;
    }
    if (!batch.empty() &&
        (rows + p.rows > max_batch || !Compatible(*batch[0]->request, *p.request))) {
      break;
    }
    rows += p.rows;
    batch.push_back(std::move(*it));
    ++it;
    if (max_batch <= 1) break;
  }
  // With preferred sizes, the longest prefix that is one of them, if any; the rest stay.
  size_t keep = batch.size();
  if (batch.size() > 1 && !options.preferred_batch_sizes.empty()) {
    const auto& preferred = options.preferred_batch_sizes;
    if (std::find(preferred.begin(), preferred.end(), rows) == preferred.end()) {
      int64_t prefix = 0;
      size_t fit = 0;
      for (size_t k = 0; k < batch.size(); ++k) {
        prefix += batch[k]->rows;
        if (std::find(preferred.begin(), preferred.end(), prefix) != preferred.end()) {
          fit = k + 1;
        }
      }
      if (fit > 0) keep = fit;
    }
  }
  // The queue's first batch.size() slots are the batch's, moved out (refused ones were
  // erased): those not kept go back.
  for (size_t k = keep; k < batch.size(); ++k) queue[k] = std::move(batch[k]);
  batch.resize(keep);
  queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(keep));
  rows = 0;
  for (const PendingPtr& p : batch) rows += p->rows;
  for (const PendingPtr& p : batch) {
    p->request->queue_ns = p->waited ? Nanos(now - p->enqueued) : 0;
    p->request->batch_rows = rows;
  }
  if (stats != nullptr) {
    const size_t gone = keep + (refused.size() - refused_before);
    stats->queue_depth.fetch_sub(static_cast<int64_t>(gone), std::memory_order_relaxed);
  }
  return batch;
}

bool Scheduler::Core::MayRunInline(const Pending& p, Clock::time_point now) const {
  if (p.waited || stopping || (max_batch > 1 && options.max_queue_delay.count() > 0)) {
    return false;
  }
  if (runs_timed.load(std::memory_order_relaxed) < kInlineMinRuns ||
      run_ns_average.load(std::memory_order_relaxed) >=
          Nanos(std::chrono::duration_cast<Clock::duration>(kInlineRunBound))) {
    return false;
  }
  // Its client is not asked whether it has gone (a poll() per request): the request was
  // read just now and waits for nothing, as a request that leads its batch at once is not
  // asked. One already past its deadline is refused by a worker.
  return now < p.deadline;
}

void Scheduler::Core::RunInline(PendingPtr p, std::unique_lock<std::mutex>& lock) {
  running.fetch_add(1, std::memory_order_relaxed);
  lock.unlock();
  p->request->queue_ns = 0;
  p->request->batch_rows = p->rows;
  const Status status = TimedExecute(std::span<const PendingPtr>(&p, 1));
  if (stats != nullptr && status.ok()) {
    stats->execution_count.fetch_add(1, std::memory_order_relaxed);
  }
  lock.lock();
  running.fetch_sub(1, std::memory_order_relaxed);
  // Requests queued meanwhile found no free instance: a worker takes them now.
  if (!queue.empty() && !leader_filling && !stopping) WakeWorker();
  lock.unlock();
  ScheduledDone done = std::move(p->done);
  p.reset();
  done(status);  // may destroy the scheduler; nothing of it is touched after
}

void Scheduler::Core::WakeWorker() {
  if (idle_workers > 0) {
    work_cv.notify_one();
  } else if (workers < instances) {
    // It waits for the lock, then takes the batch.
    ++workers;
    threads.emplace_back([core = shared_from_this()] { core->Work(); });
  }
}

Status Scheduler::Core::TimedExecute(std::span<const PendingPtr> batch) {
  const Clock::time_point start = Clock::now();
  Status status = Execute(batch);
  const uint64_t took = Nanos(Clock::now() - start);
  const uint64_t seen = runs_timed.fetch_add(1, std::memory_order_relaxed);
  const uint64_t average = run_ns_average.load(std::memory_order_relaxed);
  // Concurrent runs may each miss the other's update: an estimate is all the path needs.
  run_ns_average.store(seen == 0 ? took
                                 : average - average / kInlineRunWeight + took / kInlineRunWeight,
                       std::memory_order_relaxed);
  return status;
}

Status Scheduler::Core::Execute(std::span<const PendingPtr> batch) const {
  if (batch.size() == 1) {
    ScheduledRequest& r = *batch[0]->request;
    r.outputs->clear();
    return model->Run(r.inputs, *r.outputs);
  }
  // Stack every input along dimension 0, in batch order.
  int64_t total_rows = 0;
  for (const PendingPtr& p : batch) total_rows += p->rows;
  const ScheduledRequest& first = *batch[0]->request;
  std::vector<engine::Tensor> inputs;
  inputs.reserve(first.inputs.size());
  for (size_t i = 0; i < first.inputs.size(); ++i) {
    engine::Shape shape = first.inputs[i].shape();
    shape[0] = total_rows;
    engine::Tensor& stacked = inputs.emplace_back(first.inputs[i].type(), std::move(shape));
    if (stacked.type() == engine::DataType::kBytes) {
      size_t at = 0;
      for (const PendingPtr& p : batch) {
        for (const std::string& s : p->request->inputs[i].strings()) stacked.strings()[at++] = s;
      }
    } else {
      std::byte* out = stacked.data();
      for (const PendingPtr& p : batch) {
        const engine::Tensor& part = p->request->inputs[i];
        if (part.byte_size() != 0) std::memcpy(out, part.data(), part.byte_size());
        out += part.byte_size();
      }
    }
  }
  std::vector<engine::Tensor> outputs;
  OUTPOST_RETURN_IF_ERROR(model->Run(inputs, outputs));

  // Give each request its own rows of every output.
  for (const engine::Tensor& out : outputs) {
    if (out.shape().empty() || out.shape()[0] != total_rows) {
      return InternalError("the model returned an output whose dimension 0 is not the batch's " +
                           std::to_string(total_rows) + " rows; it cannot be split among the "
                           "batched requests");
    }
  }
  int64_t row = 0;
  for (const PendingPtr& p : batch) {
    std::vector<engine::Tensor>& mine = *p->request->outputs;
    mine.clear();
    mine.reserve(outputs.size());
    for (const engine::Tensor& out : outputs) {
      engine::Shape shape = out.shape();
      shape[0] = p->rows;
      engine::Tensor& part = mine.emplace_back(out.type(), std::move(shape));
      const int64_t per_row = total_rows == 0 ? 0 : out.element_count() / total_rows;
      if (out.type() == engine::DataType::kBytes) {
        const auto& all = out.strings();
        std::copy(all.begin() + row * per_row, all.begin() + (row + p->rows) * per_row,
                  part.strings().begin());
      } else {
        const size_t row_bytes = total_rows == 0 ? 0 : out.byte_size() / static_cast<size_t>(total_rows);
        if (part.byte_size() != 0) {
          std::memcpy(part.data(), out.data() + static_cast<size_t>(row) * row_bytes,
                      part.byte_size());
        }
      }
    }
    row += p->rows;
  }
  return Status();
}

}  // namespace outpost::serve
