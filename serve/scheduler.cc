#include "serve/scheduler.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace outpost::serve {
namespace {

using Clock = std::chrono::steady_clock;

// How often a waiting request whose client may go away looks at it.
constexpr std::chrono::milliseconds kCancelPoll(5);

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

struct Scheduler::Pending {
  ScheduledRequest* request;
  int64_t rows;
  Clock::time_point enqueued;
  std::condition_variable cv;  // waited on with the scheduler's mu_
  bool queued = true;          // in queue_
  bool done = false;           // answered
  bool waited = false;         // waited for an instance or for its batch to fill
  Status status;
};

Scheduler::Scheduler(std::shared_ptr<const engine::Model> model, SchedulerOptions options,
                     ModelStats* stats)
    : model_(std::move(model)), options_(std::move(options)), stats_(stats) {
  const engine::Signature& signature = model_->signature();
  if (options_.max_batch_size > 1 && BatchDimension(signature.inputs) &&
      BatchDimension(signature.outputs)) {
    max_batch_ = options_.max_batch_size;
    target_rows_ = max_batch_;
    for (int64_t size : options_.preferred_batch_sizes) {
      if (size >= 1 && size <= max_batch_) target_rows_ = size;  // ascending: the largest
    }
  }
  free_instances_ = std::max(1, options_.instances);
}

size_t Scheduler::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

int64_t Scheduler::RowsOf(const ScheduledRequest& request) const {
  if (max_batch_ <= 1 || request.inputs.empty() || request.inputs[0].shape().empty()) return 1;
  return request.inputs[0].shape()[0];
}

bool Scheduler::Compatible(const ScheduledRequest& a, const ScheduledRequest& b) {
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

Status Scheduler::Run(ScheduledRequest& request) {
  request.queue_ns = 0;
  request.batch_rows = 0;
  Pending self{.request = &request, .rows = RowsOf(request), .enqueued = Clock::now()};
  if (self.rows > max_batch_ && max_batch_ > 1) {
    return InvalidArgumentError("the request has " + std::to_string(self.rows) +
                                " rows; the model takes at most " + std::to_string(max_batch_) +
                                " (max_batch_size)");
  }
  const std::chrono::microseconds timeout =
      request.timeout.count() > 0 ? request.timeout : options_.default_timeout;
  const bool has_deadline = timeout.count() > 0;
  const Clock::time_point deadline =
      has_deadline ? self.enqueued + timeout : Clock::time_point::max();

  std::unique_lock<std::mutex> lock(mu_);
  const size_t bound = std::max<size_t>(1, options_.max_queue_size);
  if (queue_.size() >= bound) {
    return UnavailableError("the queue of the model is full (" + std::to_string(bound) +
                            " requests wait); try again later");
  }
  queue_.push_back(&self);
  if (stats_ != nullptr) stats_->queue_depth.fetch_add(1, std::memory_order_relaxed);
  if (leaders_waiting_ > 0) arrivals_.notify_all();

  for (;;) {
    if (self.done) return self.status;
    if (self.queued) {
      if (queue_.front() == &self && free_instances_ > 0) {
        Lead(lock, self);
        return self.status;
      }
      const Clock::time_point now = Clock::now();
      if (has_deadline && now >= deadline) {
        RemoveLocked(self);
        return DeadlineExceededError("the request waited " +
                                     std::to_string(timeout.count()) +
                                     " us in the model's queue without running (its timeout)");
      }
      if (request.cancelled && request.cancelled()) {
        RemoveLocked(self);
        return CancelledError("the client went away while the request waited in the queue");
      }
      Clock::time_point until = deadline;
      if (request.cancelled) until = std::min(until, now + kCancelPoll);
      self.waited = true;
      if (until == Clock::time_point::max()) {
        self.cv.wait(lock);
      } else {
        self.cv.wait_until(lock, until);
      }
    } else {
      // Taken into a batch that runs now: wait for its answer.
      self.cv.wait(lock);
    }
  }
}

void Scheduler::RemoveLocked(Pending& p) {
  const bool was_head = !queue_.empty() && queue_.front() == &p;
  auto it = std::find(queue_.begin(), queue_.end(), &p);
  if (it != queue_.end()) {
    queue_.erase(it);
    if (stats_ != nullptr) stats_->queue_depth.fetch_sub(1, std::memory_order_relaxed);
  }
  p.queued = false;
  if (was_head) WakeHeadLocked();
}

void Scheduler::WakeHeadLocked() {
  if (!queue_.empty() && free_instances_ > 0) queue_.front()->cv.notify_one();
}

void Scheduler::Lead(std::unique_lock<std::mutex>& lock, Pending& self) {
  --free_instances_;
  // Wait for the batch to fill, at most max_queue_delay after the leader arrived.
  if (max_batch_ > 1 && options_.max_queue_delay.count() > 0) {
    const Clock::time_point until = self.enqueued + options_.max_queue_delay;
    ++leaders_waiting_;
    for (;;) {
      int64_t rows = 0;
      for (const Pending* p : queue_) {
        rows += p->rows;
        if (rows >= target_rows_) break;
      }
      if (rows >= target_rows_ || Clock::now() >= until) break;
      self.waited = true;
      arrivals_.wait_until(lock, until);
    }
    --leaders_waiting_;
  }

  // Take the batch from the head: the leader first, then each compatible request that fits.
  // Requests past their deadline or whose client has gone are answered on the way.
  const Clock::time_point now = Clock::now();
  std::vector<Pending*> batch;
  int64_t rows = 0;
  auto refuse = [this](Pending* p, Status status) {
    RemoveLocked(*p);
    p->status = std::move(status);
    p->done = true;
    p->cv.notify_one();
  };
  size_t i = 0;
  while (i < queue_.size()) {
    Pending* p = queue_[i];
    if (p != &self) {
      const ScheduledRequest& r = *p->request;
      const std::chrono::microseconds timeout =
          r.timeout.count() > 0 ? r.timeout : options_.default_timeout;
      if (timeout.count() > 0 && now >= p->enqueued + timeout) {
        refuse(p, DeadlineExceededError("the request waited " + std::to_string(timeout.count()) +
                                        " us in the model's queue without running (its "
                                        "timeout)"));
        continue;
      }
      if (r.cancelled && r.cancelled()) {
        refuse(p, CancelledError("the client went away while the request waited in the queue"));
        continue;
      }
    }
    if (!batch.empty() &&
        (rows + p->rows > max_batch_ || !Compatible(*batch[0]->request, *p->request))) {
      break;
    }
    batch.push_back(p);
    rows += p->rows;
    ++i;
    if (max_batch_ <= 1) break;
  }
  // With preferred sizes, the longest prefix that is one of them, if any.
  if (batch.size() > 1 && !options_.preferred_batch_sizes.empty()) {
    const auto& preferred = options_.preferred_batch_sizes;
    if (std::find(preferred.begin(), preferred.end(), rows) == preferred.end()) {
      int64_t prefix = 0;
      size_t keep = 0;
      for (size_t k = 0; k < batch.size(); ++k) {
        prefix += batch[k]->rows;
        if (std::find(preferred.begin(), preferred.end(), prefix) != preferred.end()) {
          keep = k + 1;
        }
      }
      if (keep > 0) {
        batch.resize(keep);
        rows = 0;
        for (const Pending* p : batch) rows += p->rows;
      }
    }
  }
  // The batch leaves the queue; i >= batch.size() entries were looked at, and the refused
  // ones are gone already, so the batch is the queue's first batch.size() entries.
  for (Pending* p : batch) {
    p->queued = false;
    // A request that found an instance free and no batch to wait for did not queue.
    p->request->queue_ns = p->waited ? Nanos(now - p->enqueued) : 0;
    p->request->batch_rows = rows;
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(batch.size()));
  if (stats_ != nullptr) {
    stats_->queue_depth.fetch_sub(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
  }
  WakeHeadLocked();  // another instance may be free for the next batch

  lock.unlock();
  Status status = Execute(batch);
  if (stats_ != nullptr && status.ok()) {
    stats_->execution_count.fetch_add(1, std::memory_order_relaxed);
  }
  lock.lock();
  for (Pending* p : batch) {
    p->status = status;
    p->done = true;
    if (p != &self) p->cv.notify_one();
  }
  ++free_instances_;
  WakeHeadLocked();
}

Status Scheduler::Execute(std::span<Pending* const> batch) {
  if (batch.size() == 1) {
    ScheduledRequest& r = *batch[0]->request;
    r.outputs->clear();
    return model_->Run(r.inputs, *r.outputs);
  }
  // Stack every input along dimension 0, in batch order.
  int64_t total_rows = 0;
  for (const Pending* p : batch) total_rows += p->rows;
  const ScheduledRequest& first = *batch[0]->request;
  std::vector<engine::Tensor> inputs;
  inputs.reserve(first.inputs.size());
  for (size_t i = 0; i < first.inputs.size(); ++i) {
    engine::Shape shape = first.inputs[i].shape();
    shape[0] = total_rows;
    engine::Tensor& stacked = inputs.emplace_back(first.inputs[i].type(), std::move(shape));
    if (stacked.type() == engine::DataType::kBytes) {
      size_t at = 0;
      for (const Pending* p : batch) {
        for (const std::string& s : p->request->inputs[i].strings()) stacked.strings()[at++] = s;
      }
    } else {
      std::byte* out = stacked.data();
      for (const Pending* p : batch) {
        const engine::Tensor& part = p->request->inputs[i];
        if (part.byte_size() != 0) std::memcpy(out, part.data(), part.byte_size());
        out += part.byte_size();
      }
    }
  }
  std::vector<engine::Tensor> outputs;
  OUTPOST_RETURN_IF_ERROR(model_->Run(inputs, outputs));

  // Give each request its own rows of every output.
  for (const engine::Tensor& out : outputs) {
    if (out.shape().empty() || out.shape()[0] != total_rows) {
      return InternalError("the model returned an output whose dimension 0 is not the batch's " +
                           std::to_string(total_rows) + " rows; it cannot be split among the "
                           "batched requests");
    }
  }
  int64_t row = 0;
  for (const Pending* p : batch) {
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
