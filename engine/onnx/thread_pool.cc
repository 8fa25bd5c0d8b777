#include "engine/onnx/thread_pool.h"

namespace outpost::engine::onnx {
namespace {

thread_local IntraOpPool* current_pool = nullptr;

}  // namespace

IntraOpPool::IntraOpPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  workers_.reserve(static_cast<size_t>(threads_ - 1));
  for (int id = 1; id < threads_; ++id) workers_.emplace_back([this, id] { Worker(id); });
}

IntraOpPool::~IntraOpPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void IntraOpPool::RunShare(int id) {
  for (int64_t i = next_.fetch_add(1); i < n_; i = next_.fetch_add(1)) fn_(ctx_, i, id);
}

void IntraOpPool::Worker(int id) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    RunShare(id);
    std::lock_guard<std::mutex> lock(mu_);
    if (--active_ == 0) done_.notify_one();
  }
}

void IntraOpPool::ParallelFor(int64_t n, void (*fn)(void*, int64_t, int), void* ctx) {
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
  if (!busy.owns_lock() || workers_.empty()) {
    for (int64_t i = 0; i < n; ++i) fn(ctx, i, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = fn;
    ctx_ = ctx;
    n_ = n;
    next_.store(0);
    active_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  start_.notify_all();
  RunShare(0);
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return active_ == 0; });
}

IntraOpPool* CurrentIntraOpPool() { return current_pool; }

IntraOpScope::IntraOpScope(IntraOpPool* pool) : saved_(current_pool) { current_pool = pool; }
IntraOpScope::~IntraOpScope() { current_pool = saved_; }

}  // namespace outpost::engine::onnx
