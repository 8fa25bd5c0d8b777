// The intra-op thread pool: a model compiled with CompileOptions::threads > 1 owns one, made
// when the model is compiled, and kernels split their work over it (the convolutions, by
// blocks of output positions and by channels).
//
// Session::Run makes the model's pool current on the calling thread for the duration of the
// run (IntraOpScope); kernels read it with CurrentIntraOpPool() and call ParallelFor. A
// ParallelFor allocates nothing. The pool serves one ParallelFor at a time: a caller that
// finds it busy (another Session of the same model running in parallel) runs its loop on
// its own thread, so concurrent runs never wait on each other and never oversubscribe the
// cores beyond the pool's threads plus the callers.
#ifndef OUTPOST_ENGINE_ONNX_THREAD_POOL_H_
#define OUTPOST_ENGINE_ONNX_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace outpost::engine::onnx {

class IntraOpPool {
 public:
  // `threads` counts the caller: threads - 1 workers are started.
  explicit IntraOpPool(int threads);
  ~IntraOpPool();
  IntraOpPool(const IntraOpPool&) = delete;
  IntraOpPool& operator=(const IntraOpPool&) = delete;

  int threads() const { return threads_; }

  // Calls fn(ctx, i, thread) for every i in [0, n), thread in [0, threads()) naming the
  // thread that runs it (the caller is 0), and returns when all calls have returned.
  void ParallelFor(int64_t n, void (*fn)(void*, int64_t, int), void* ctx);

 private:
  void Worker(int id);
  void RunShare(int id);

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the caller of the ParallelFor in progress
  std::mutex mu_;
  std::condition_variable start_, done_;
  uint64_t generation_ = 0;  // guarded by mu_
  int active_ = 0;           // workers still in the current loop; guarded by mu_
  bool stop_ = false;        // guarded by mu_
  // The current loop (written under mu_ before generation_ moves).
  void (*fn_)(void*, int64_t, int) = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
};

// The pool of the run in progress on this thread, or null (one thread).
IntraOpPool* CurrentIntraOpPool();

// Makes `pool` current on this thread while alive.
class IntraOpScope {
 public:
  explicit IntraOpScope(IntraOpPool* pool);
  ~IntraOpScope();
  IntraOpScope(const IntraOpScope&) = delete;
  IntraOpScope& operator=(const IntraOpScope&) = delete;

 private:
  IntraOpPool* saved_;
};

// f(i, thread) for i in [0, n) over `pool` (inline when null).
template <typename F>
void ParallelFor(IntraOpPool* pool, int64_t n, F& f) {
  if (pool == nullptr || pool->threads() < 2 || n < 2) {
    for (int64_t i = 0; i < n; ++i) f(i, 0);
    return;
  }
  pool->ParallelFor(
      n, [](void* ctx, int64_t i, int thread) { (*static_cast<F*>(ctx))(i, thread); }, &f);
}

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_THREAD_POOL_H_
