// The scheduler on its own: batches give each request exactly its rows, the queue bound,
// timeouts, clients that go away, instances, preferred batch sizes. The model is a fake that
// records every batch it runs and can be held inside Run, so that each test decides what
// waits in the queue.
#include "serve/scheduler.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include "base/testing/test_util.h"
#include "serve/handler.h"
#include "serve/http_server.h"
#include "serve/repository.h"

namespace outpost::serve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// y[i] = x[i][0] * 10 + x[i][1] for x FP32 [-1, 2]; a second output z[i] = -y[i]. A batch
// whose first value is 999 waits in Run until Release(); a batch holding the value -1 fails.
class RowModel final : public engine::Model {
 public:
  explicit RowModel(engine::Shape input_shape = {-1, 2}) {
    signature_.inputs.push_back(
        {.name = "x", .type = engine::DataType::kFp32, .shape = std::move(input_shape)});
    signature_.outputs.push_back({.name = "y", .type = engine::DataType::kFp32, .shape = {-1}});
    signature_.outputs.push_back({.name = "z", .type = engine::DataType::kFp32, .shape = {-1}});
  }
  const engine::Signature& signature() const override { return signature_; }
  std::string_view platform() const override { return "fake_rows"; }
  Status Run(std::span<const engine::Tensor> inputs,
             std::vector<engine::Tensor>& outputs) const override {
    const engine::Tensor& x = inputs[0];
    const int64_t rows = x.shape()[0];
    const int64_t cols = x.shape().size() > 1 ? x.shape()[1] : 1;
    auto v = x.values<float>();
    {
      std::unique_lock<std::mutex> lock(mu_);
      batches_.push_back(rows);
      ++running_;
      max_running_ = std::max(max_running_, running_);
      entered_cv_.notify_all();
      if (!v.empty() && v[0] == 999) held_cv_.wait(lock, [this] { return released_; });
      --running_;
    }
    for (float f : v) {
      if (f == -1) return InternalError("the model refuses -1");
    }
    outputs.clear();
    outputs.emplace_back(engine::DataType::kFp32, engine::Shape{rows});
    outputs.emplace_back(engine::DataType::kFp32, engine::Shape{rows});
    auto y = outputs[0].values<float>();
    auto z = outputs[1].values<float>();
    for (int64_t i = 0; i < rows; ++i) {
      y[i] = v[i * cols] * 10 + (cols > 1 ? v[i * cols + 1] : 0);
      z[i] = -y[i];
    }
    return Status();
  }

  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    held_cv_.notify_all();
  }
  // Waits until `n` runs are inside Run at once.
  void WaitRunning(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    entered_cv_.wait(lock, [&] { return running_ >= n; });
  }
  std::vector<int64_t> batches() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  int max_running() const {
    std::lock_guard<std::mutex> lock(mu_);
    return max_running_;
  }

 private:
  engine::Signature signature_;
  mutable std::mutex mu_;
  mutable std::condition_variable entered_cv_;
  mutable std::condition_variable held_cv_;
  mutable std::vector<int64_t> batches_;
  mutable int running_ = 0;
  mutable int max_running_ = 0;
  bool released_ = false;
};

// x with `rows` rows: row i is (first + i, i).
engine::Tensor Rows(int64_t rows, float first, int64_t cols = 2) {
  engine::Tensor x(engine::DataType::kFp32, {rows, cols});
  auto v = x.values<float>();
  for (int64_t i = 0; i < rows; ++i) {
    v[i * cols] = first + static_cast<float>(i);
    if (cols > 1) v[i * cols + 1] = static_cast<float>(i);
  }
  return x;
}

// One request on its own thread.
struct Call {
  std::vector<engine::Tensor> inputs;
  std::vector<engine::Tensor> outputs;
  ScheduledRequest request;
  Status status;
  std::thread thread;

  Call(engine::Tensor x) {
    inputs.push_back(std::move(x));
    request.inputs = inputs;
    request.outputs = &outputs;
  }
  void Start(Scheduler& scheduler) {
    thread = std::thread([this, &scheduler] { status = scheduler.Run(request); });
  }
  void Join() { thread.join(); }
};

void WaitForDepth(const Scheduler& scheduler, size_t depth) {
  while (scheduler.queue_depth() != depth) std::this_thread::yield();
}

class SchedulerTest : public ::testing::Test {
 protected:
  std::shared_ptr<RowModel> model_ = std::make_shared<RowModel>();
  ModelStats stats_;
};

TEST_F(SchedulerTest, BatchGivesEachRequestExactlyItsOwnRows) {
  Scheduler scheduler(model_, {.max_batch_size = 32, .instances = 1}, &stats_);
  ASSERT_TRUE(scheduler.batching());
  // The first request holds the only instance; the others queue behind it.
  Call gate(Rows(1, 999));
  gate.Start(scheduler);
  model_->WaitRunning(1);
  const int64_t sizes[] = {1, 3, 2, 5, 1, 4};
  std::vector<std::unique_ptr<Call>> calls;
  for (size_t i = 0; i < std::size(sizes); ++i) {
    calls.push_back(std::make_unique<Call>(Rows(sizes[i], 100.0f * static_cast<float>(i + 1))));
    calls.back()->Start(scheduler);
    WaitForDepth(scheduler, i + 1);  // in this order
  }
  EXPECT_EQ(stats_.queue_depth.load(), 6);
  model_->Release();
  gate.Join();
  for (auto& c : calls) c->Join();

  // One run for the gate, one for the 16 rows of the six queued requests.
  EXPECT_THAT(model_->batches(), ElementsAre(1, 16));
  EXPECT_EQ(stats_.execution_count.load(), 2u);
  EXPECT_EQ(stats_.queue_depth.load(), 0);
  for (size_t i = 0; i < calls.size(); ++i) {
    const Call& c = *calls[i];
    OUTPOST_ASSERT_OK(c.status);
    ASSERT_EQ(c.outputs.size(), 2u);
    ASSERT_EQ(c.outputs[0].shape(), (engine::Shape{sizes[i]}));
    ASSERT_EQ(c.outputs[1].shape(), (engine::Shape{sizes[i]}));
    auto y = c.outputs[0].values<float>();
    auto z = c.outputs[1].values<float>();
    for (int64_t r = 0; r < sizes[i]; ++r) {
      const float want = (100.0f * static_cast<float>(i + 1) + static_cast<float>(r)) * 10 +
                         static_cast<float>(r);
      EXPECT_EQ(y[r], want) << "request " << i << " row " << r;
      EXPECT_EQ(z[r], -want) << "request " << i << " row " << r;
    }
    EXPECT_EQ(c.request.batch_rows, 16);
    EXPECT_GT(c.request.queue_ns, 0u);
  }
}

TEST_F(SchedulerTest, BatchStopsAtMaxBatchSizeAndAtARequestOfAnotherShape) {
  auto model = std::make_shared<RowModel>(engine::Shape{-1, -1});
  Scheduler scheduler(model, {.max_batch_size = 4, .instances = 1}, &stats_);
  Call gate(Rows(1, 999));
  gate.Start(scheduler);
  model->WaitRunning(1);
  // 2 + 2 rows fill a batch; 1 more waits. Then a request of 3 columns cannot join the rows
  // of 2 columns before it.
  std::vector<std::unique_ptr<Call>> calls;
  calls.push_back(std::make_unique<Call>(Rows(2, 10)));
  calls.push_back(std::make_unique<Call>(Rows(2, 20)));
  calls.push_back(std::make_unique<Call>(Rows(1, 30)));
  calls.push_back(std::make_unique<Call>(Rows(1, 40, 3)));
  calls.push_back(std::make_unique<Call>(Rows(5, 50)));  // more than max_batch_size
  for (size_t i = 0; i < calls.size(); ++i) {
    calls[i]->Start(scheduler);
    if (i < 4) WaitForDepth(scheduler, i + 1);
  }
  calls[4]->Join();
  EXPECT_EQ(calls[4]->status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(calls[4]->status.message(), HasSubstr("max_batch_size"));
  model->Release();
  gate.Join();
  for (size_t i = 0; i < 4; ++i) {
    calls[i]->Join();
    OUTPOST_EXPECT_OK(calls[i]->status);
  }
  EXPECT_THAT(model->batches(), ElementsAre(1, 4, 1, 1));
  EXPECT_EQ(calls[2]->outputs[0].values<float>()[0], 300);
  EXPECT_EQ(calls[3]->outputs[0].values<float>()[0], 400);
}

TEST_F(SchedulerTest, PreferredBatchSizeIsTakenWhenTheQueueCanFillIt) {
  Scheduler scheduler(model_,
                      {.max_batch_size = 8, .preferred_batch_sizes = {4}, .instances = 1},
                      &stats_);
  Call gate(Rows(1, 999));
  gate.Start(scheduler);
  model_->WaitRunning(1);
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < 6; ++i) {
    calls.push_back(std::make_unique<Call>(Rows(1, static_cast<float>(i))));
    calls.back()->Start(scheduler);
    WaitForDepth(scheduler, static_cast<size_t>(i) + 1);
  }
  model_->Release();
  gate.Join();
  for (auto& c : calls) {
    c->Join();
    OUTPOST_EXPECT_OK(c->status);
  }
  // Six rows wait: a batch of the preferred 4, then the 2 left.
  EXPECT_THAT(model_->batches(), ElementsAre(1, 4, 2));
}

TEST_F(SchedulerTest, LeaderWaitsUpToTheQueueDelayForItsBatchToFill) {
  // Each request arrives alone; with a long delay the first waits for the others.
  Scheduler scheduler(model_,
                      {.max_batch_size = 3,
                       .max_queue_delay = std::chrono::seconds(30),
                       .instances = 1},
                      &stats_);
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < 3; ++i) {
    calls.push_back(std::make_unique<Call>(Rows(1, static_cast<float>(i))));
    calls.back()->Start(scheduler);
  }
  for (auto& c : calls) {
    c->Join();
    OUTPOST_EXPECT_OK(c->status);
  }
  // The batch ran once it held max_batch_size rows, long before the delay.
  EXPECT_THAT(model_->batches(), ElementsAre(3));
  EXPECT_EQ(stats_.execution_count.load(), 1u);
}

TEST_F(SchedulerTest, FullQueueIsRefusedAtOnceAndTheDepthNeverPassesTheBound) {
  Scheduler scheduler(model_, {.instances = 1, .max_queue_size = 3}, &stats_);
  ASSERT_FALSE(scheduler.batching());
  Call gate(Rows(1, 999));
  gate.Start(scheduler);
  model_->WaitRunning(1);
  std::vector<std::unique_ptr<Call>> queued;
  for (int i = 0; i < 3; ++i) {
    queued.push_back(std::make_unique<Call>(Rows(1, static_cast<float>(i))));
    queued.back()->Start(scheduler);
  }
  WaitForDepth(scheduler, 3);
  // The queue is full: refused on the caller's thread without waiting.
  for (int i = 0; i < 5; ++i) {
    Call extra(Rows(1, 7));
    Status status = scheduler.Run(extra.request);
    EXPECT_EQ(status.code(), StatusCode::kUnavailable);
    EXPECT_THAT(status.message(), HasSubstr("queue"));
    EXPECT_EQ(stats_.queue_depth.load(), 3);
  }
  model_->Release();
  gate.Join();
  for (auto& c : queued) {
    c->Join();
    OUTPOST_EXPECT_OK(c->status);
  }
  // Without batching, one run per request, and none for the refused ones.
  EXPECT_THAT(model_->batches(), ElementsAre(1, 1, 1, 1));
  // Room again: accepted.
  Call after(Rows(2, 1));
  OUTPOST_EXPECT_OK(scheduler.Run(after.request));
}

TEST_F(SchedulerTest, RequestQueuedPastItsTimeoutFailsAndIsNotRun) {
  Scheduler scheduler(model_,
                      {.max_batch_size = 8,
                       .instances = 1,
                       .default_timeout = std::chrono::seconds(60)},
                      &stats_);
  Call gate(Rows(1, 999));
  gate.Start(scheduler);
  model_->WaitRunning(1);
  Call late(Rows(1, 5));
  late.request.timeout = std::chrono::milliseconds(20);  // the request's own timeout
  late.Start(scheduler);
  late.Join();  // returns while the gate still holds the instance
  EXPECT_EQ(late.status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(late.status.message(), HasSubstr("20000 us"));
  EXPECT_EQ(scheduler.queue_depth(), 0u);
  model_->Release();
  gate.Join();
  EXPECT_THAT(model_->batches(), ElementsAre(1));
}

TEST_F(SchedulerTest, RequestWhoseClientWentAwayIsNotRun) {
  Scheduler scheduler(model_, {.max_batch_size = 8, .instances = 1}, &stats_);
  Call gate(Rows(1, 999));
  gate.Start(scheduler);
  model_->WaitRunning(1);
  std::atomic<bool> gone{false};
  Call abandoned(Rows(1, 5));
  abandoned.request.cancelled = [&gone] { return gone.load(); };
  Call kept(Rows(1, 6));
  abandoned.Start(scheduler);
  WaitForDepth(scheduler, 1);
  kept.Start(scheduler);
  WaitForDepth(scheduler, 2);
  gone = true;
  abandoned.Join();  // noticed while it waits
  EXPECT_EQ(abandoned.status.code(), StatusCode::kCancelled);
  model_->Release();
  gate.Join();
  kept.Join();
  OUTPOST_EXPECT_OK(kept.status);
  EXPECT_THAT(model_->batches(), ElementsAre(1, 1));
  EXPECT_EQ(kept.outputs[0].values<float>()[0], 60);
}

TEST_F(SchedulerTest, InstancesRunBatchesAtOnce) {
  Scheduler scheduler(model_, {.instances = 2}, &stats_);
  Call a(Rows(1, 999));
  Call b(Rows(1, 999));
  Call c(Rows(1, 3));
  a.Start(scheduler);
  b.Start(scheduler);
  model_->WaitRunning(2);  // both instances busy at once
  c.Start(scheduler);
  WaitForDepth(scheduler, 1);  // the third waits for an instance
  model_->Release();
  a.Join();
  b.Join();
  c.Join();
  OUTPOST_EXPECT_OK(a.status);
  OUTPOST_EXPECT_OK(b.status);
  OUTPOST_EXPECT_OK(c.status);
  EXPECT_EQ(model_->max_running(), 2);
  EXPECT_EQ(stats_.execution_count.load(), 3u);
}

TEST_F(SchedulerTest, ModelErrorReachesEveryRequestOfItsBatch) {
  Scheduler scheduler(model_, {.max_batch_size = 8, .instances = 1}, &stats_);
  Call gate(Rows(1, 999));
  gate.Start(scheduler);
  model_->WaitRunning(1);
  Call good(Rows(1, 3));
  Call bad(Rows(1, -1));
  good.Start(scheduler);
  WaitForDepth(scheduler, 1);
  bad.Start(scheduler);
  WaitForDepth(scheduler, 2);
  model_->Release();
  gate.Join();
  good.Join();
  bad.Join();
  EXPECT_EQ(good.status.code(), StatusCode::kInternal);
  EXPECT_EQ(bad.status.code(), StatusCode::kInternal);
  EXPECT_EQ(stats_.execution_count.load(), 1u);  // the failed batch is not counted
}

TEST_F(SchedulerTest, ManyThreadsOfMixedSizesEachGetTheirOwnRows) {
  Scheduler scheduler(model_,
                      {.max_batch_size = 16,
                       .max_queue_delay = std::chrono::microseconds(500),
                       .instances = 2,
                       .max_queue_size = 64},
                      &stats_);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::atomic<int> wrong{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int64_t rows = 1 + (t + i) % 4;
        const float first = static_cast<float>(t * 1000 + i);
        std::vector<engine::Tensor> inputs;
        inputs.push_back(Rows(rows, first));
        std::vector<engine::Tensor> outputs;
        ScheduledRequest request{.inputs = inputs, .outputs = &outputs};
        if (!scheduler.Run(request).ok()) {
          failed.fetch_add(1);
          continue;
        }
        auto y = outputs[0].values<float>();
        if (static_cast<int64_t>(y.size()) != rows) {
          wrong.fetch_add(1);
          continue;
        }
        for (int64_t r = 0; r < rows; ++r) {
          const float want = (first + static_cast<float>(r)) * 10 + static_cast<float>(r);
          if (y[r] != want) wrong.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  int64_t rows_run = 0;
  for (int64_t b : model_->batches()) {
    EXPECT_LE(b, 16);
    rows_run += b;
  }
  int64_t rows_sent = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) rows_sent += 1 + (t + i) % 4;
  }
  EXPECT_EQ(rows_run, rows_sent);
  EXPECT_EQ(stats_.execution_count.load(), model_->batches().size());
  EXPECT_EQ(stats_.queue_depth.load(), 0);
}

TEST_F(SchedulerTest, BatchingStaysOffForAModelWithoutABatchDimension) {
  auto fixed = std::make_shared<RowModel>(engine::Shape{2, 2});
  Scheduler scheduler(fixed, {.max_batch_size = 8}, &stats_);
  EXPECT_FALSE(scheduler.batching());
  Call one(Rows(2, 1));
  OUTPOST_EXPECT_OK(scheduler.Run(one.request));
  EXPECT_EQ(one.outputs[0].values<float>()[1], 21);
}

// The completion of one Submit: its status and the thread it was called on.
class Completion {
 public:
  ScheduledDone Callback() {
    return [this](Status status) {
      std::lock_guard<std::mutex> lock(mu_);
      EXPECT_FALSE(status_.has_value()) << "called twice";
      status_ = std::move(status);
      thread_ = std::this_thread::get_id();
      cv_.notify_all();
    };
  }
  Status Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return status_.has_value(); });
    return *status_;
  }
  bool called() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_.has_value();
  }
  std::thread::id thread() {
    std::lock_guard<std::mutex> lock(mu_);
    return thread_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Status> status_;
  std::thread::id thread_;
};

// One request given to Submit.
struct Submitted {
  std::vector<engine::Tensor> inputs;
  std::vector<engine::Tensor> outputs;
  ScheduledRequest request;
  Completion completion;

  explicit Submitted(engine::Tensor x) {
    inputs.push_back(std::move(x));
    request.inputs = inputs;
    request.outputs = &outputs;
  }
  void To(Scheduler& scheduler) { scheduler.Submit(request, completion.Callback()); }
};

TEST_F(SchedulerTest, SubmitReturnsAtOnceAndCompletesOnAWorkerThread) {
  Scheduler scheduler(model_, {.max_batch_size = 8, .instances = 1}, &stats_);
  Submitted gate(Rows(1, 999));
  gate.To(scheduler);  // returns while the model holds the request
  model_->WaitRunning(1);
  EXPECT_FALSE(gate.completion.called());
  Submitted next(Rows(2, 3));
  next.To(scheduler);
  WaitForDepth(scheduler, 1);
  EXPECT_FALSE(next.completion.called());
  model_->Release();
  OUTPOST_EXPECT_OK(gate.completion.Wait());
  OUTPOST_ASSERT_OK(next.completion.Wait());
  EXPECT_NE(gate.completion.thread(), std::this_thread::get_id());
  EXPECT_NE(next.completion.thread(), std::this_thread::get_id());
  ASSERT_EQ(next.outputs.size(), 2u);
  EXPECT_THAT(next.outputs[0].values<float>(), ElementsAre(30, 41));
  EXPECT_EQ(next.request.batch_rows, 2);
  EXPECT_GT(next.request.queue_ns, 0u);
  EXPECT_THAT(model_->batches(), ElementsAre(1, 2));
  EXPECT_EQ(stats_.execution_count.load(), 2u);
  EXPECT_EQ(stats_.queue_depth.load(), 0);
}

TEST_F(SchedulerTest, SubmitRefusedBeforeQueueingIsAnsweredOnTheCallersThread) {
  Scheduler scheduler(model_, {.max_batch_size = 4, .instances = 1, .max_queue_size = 1},
                      &stats_);
  Submitted gate(Rows(1, 999));
  gate.To(scheduler);
  model_->WaitRunning(1);
  Submitted queued(Rows(1, 2));
  queued.To(scheduler);
  WaitForDepth(scheduler, 1);

  Submitted full(Rows(1, 7));
  full.To(scheduler);
  ASSERT_TRUE(full.completion.called());  // before Submit returned
  EXPECT_EQ(full.completion.thread(), std::this_thread::get_id());
  EXPECT_EQ(full.completion.Wait().code(), StatusCode::kUnavailable);
  Submitted too_big(Rows(5, 7));
  too_big.To(scheduler);
  ASSERT_TRUE(too_big.completion.called());
  EXPECT_EQ(too_big.completion.thread(), std::this_thread::get_id());
  EXPECT_EQ(too_big.completion.Wait().code(), StatusCode::kInvalidArgument);
  // Nothing changed: one request waits, neither refused one ran.
  EXPECT_EQ(scheduler.queue_depth(), 1u);
  EXPECT_EQ(stats_.queue_depth.load(), 1);
  EXPECT_TRUE(full.outputs.empty());
  model_->Release();
  OUTPOST_EXPECT_OK(gate.completion.Wait());
  OUTPOST_EXPECT_OK(queued.completion.Wait());
  EXPECT_THAT(model_->batches(), ElementsAre(1, 1));
}

// Submits one-row requests one after another until one runs inline (on this thread, inside
// Submit); returns how many ran before it, or -1 when none did within `most`.
int SubmitUntilInline(Scheduler& scheduler, int most) {
  for (int i = 0; i < most; ++i) {
    Submitted one(Rows(1, 1));
    one.To(scheduler);
    const bool called = one.completion.called();  // a worker may have been as quick
    OUTPOST_EXPECT_OK(one.completion.Wait());
    if (one.completion.thread() == std::this_thread::get_id()) {
      EXPECT_TRUE(called);  // before Submit returned
      return i;
    }
  }
  return -1;
}

// A model that takes `delay` per run (slower than the fast path's bound).
class SlowModel final : public engine::Model {
 public:
  explicit SlowModel(std::chrono::microseconds delay) : delay_(delay) {
    signature_.inputs.push_back({.name = "x", .type = engine::DataType::kFp32, .shape = {-1, 2}});
    signature_.outputs.push_back({.name = "y", .type = engine::DataType::kFp32, .shape = {-1}});
  }
  const engine::Signature& signature() const override { return signature_; }
  std::string_view platform() const override { return "fake_slow"; }
  Status Run(std::span<const engine::Tensor> inputs,
             std::vector<engine::Tensor>& outputs) const override {
    std::this_thread::sleep_for(delay_);
    outputs.clear();
    outputs.emplace_back(engine::DataType::kFp32, engine::Shape{inputs[0].shape()[0]});
    return Status();
  }

 private:
  engine::Signature signature_;
  std::chrono::microseconds delay_;
};

TEST_F(SchedulerTest, FastModelRunsInlineOnTheSubmittingThreadAfterItsWarmUp) {
  Scheduler scheduler(model_, {.max_batch_size = 8, .instances = 1}, &stats_);
  // Its first runs (no history yet) go to the workers; then one runs inline.
  const int before = SubmitUntilInline(scheduler, 200);
  ASSERT_GE(before, 4);
  Submitted fast(Rows(2, 3));
  fast.To(scheduler);
  ASSERT_TRUE(fast.completion.called());  // before Submit returned
  EXPECT_EQ(fast.completion.thread(), std::this_thread::get_id());
  OUTPOST_ASSERT_OK(fast.completion.Wait());
  ASSERT_EQ(fast.outputs.size(), 2u);
  EXPECT_THAT(fast.outputs[0].values<float>(), ElementsAre(30, 41));
  EXPECT_THAT(fast.outputs[1].values<float>(), ElementsAre(-30, -41));
  EXPECT_EQ(fast.request.batch_rows, 2);
  EXPECT_EQ(fast.request.queue_ns, 0u);
  // Counted as every batch: one run each, nothing left queued.
  EXPECT_EQ(stats_.execution_count.load(), static_cast<uint64_t>(before + 2));
  EXPECT_EQ(stats_.queue_depth.load(), 0);
  EXPECT_EQ(model_->batches().size(), static_cast<size_t>(before + 2));
  EXPECT_EQ(model_->batches().back(), 2);

  // A model error reaches the inline request as it reaches a batch's, uncounted.
  Submitted failing(Rows(1, -1));
  failing.To(scheduler);
  ASSERT_TRUE(failing.completion.called());
  EXPECT_EQ(failing.completion.Wait().code(), StatusCode::kInternal);
  EXPECT_EQ(stats_.execution_count.load(), static_cast<uint64_t>(before + 2));
}

TEST_F(SchedulerTest, RequestArrivingWhileAnInlineRunHoldsTheInstanceQueuesForAWorker) {
  Scheduler scheduler(model_, {.max_batch_size = 8, .instances = 1}, &stats_);
  ASSERT_GE(SubmitUntilInline(scheduler, 200), 4);
  const size_t ran_before = model_->batches().size();
  Submitted held(Rows(1, 999));
  std::thread::id submitter_id;
  std::thread submitter([&] {
    submitter_id = std::this_thread::get_id();
    held.To(scheduler);  // runs inline, held in the model
  });
  model_->WaitRunning(1);
  Submitted next(Rows(1, 5));
  next.To(scheduler);
  WaitForDepth(scheduler, 1);  // queued: the one instance is taken
  EXPECT_FALSE(next.completion.called());
  EXPECT_EQ(stats_.queue_depth.load(), 1);
  model_->Release();
  submitter.join();
  OUTPOST_EXPECT_OK(held.completion.Wait());
  OUTPOST_ASSERT_OK(next.completion.Wait());
  EXPECT_EQ(held.completion.thread(), submitter_id);
  EXPECT_NE(next.completion.thread(), std::this_thread::get_id());
  EXPECT_GT(next.request.queue_ns, 0u);
  EXPECT_EQ(next.outputs[0].values<float>()[0], 50);
  EXPECT_EQ(model_->max_running(), 1);  // never more than `instances` at once
  EXPECT_EQ(model_->batches().size(), ran_before + 2);
  EXPECT_EQ(stats_.queue_depth.load(), 0);
}

TEST_F(SchedulerTest, ModelWithoutHistoryOrWithASlowOneNeverRunsInline) {
  // No history: the first request of a version goes to a worker.
  {
    Scheduler scheduler(model_, {.instances = 1}, &stats_);
    Submitted first(Rows(1, 1));
    first.To(scheduler);
    OUTPOST_EXPECT_OK(first.completion.Wait());
    EXPECT_NE(first.completion.thread(), std::this_thread::get_id());
  }
  // A slow history (each run over the bound) keeps every run on the workers.
  ModelStats slow_stats;
  Scheduler slow(std::make_shared<SlowModel>(std::chrono::microseconds(1000)), {.instances = 1},
                 &slow_stats);
  EXPECT_EQ(SubmitUntilInline(slow, 12), -1);
  EXPECT_EQ(slow_stats.execution_count.load(), 12u);
  // A leader that waits for its batch to fill keeps a fast model on the workers too.
  Scheduler batching(model_, {.max_batch_size = 8, .max_queue_delay = std::chrono::microseconds(1),
                              .instances = 1},
                     nullptr);
  EXPECT_EQ(SubmitUntilInline(batching, 12), -1);
}

TEST_F(SchedulerTest, SubmittedRequestPastItsDeadlineIsAnsweredWithoutOtherTraffic) {
  Scheduler scheduler(model_, {.instances = 1}, &stats_);
  Submitted gate(Rows(1, 999));
  gate.To(scheduler);
  model_->WaitRunning(1);
  // The only worker is held and nothing else arrives: the deadline alone wakes the scheduler.
  Submitted late(Rows(1, 5));
  late.request.timeout = std::chrono::milliseconds(20);
  late.To(scheduler);
  const Status status = late.completion.Wait();
  EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status.message(), HasSubstr("20000 us"));
  EXPECT_NE(late.completion.thread(), std::this_thread::get_id());
  EXPECT_FALSE(gate.completion.called());  // the model still holds the gate
  EXPECT_EQ(scheduler.queue_depth(), 0u);
  EXPECT_EQ(stats_.queue_depth.load(), 0);
  model_->Release();
  OUTPOST_EXPECT_OK(gate.completion.Wait());
  EXPECT_THAT(model_->batches(), ElementsAre(1));
}

TEST_F(SchedulerTest, SubmittedRequestWhoseClientWentAwayIsAnsweredWhileItWaits) {
  Scheduler scheduler(model_, {.max_batch_size = 8, .instances = 1}, &stats_);
  Submitted gate(Rows(1, 999));
  gate.To(scheduler);
  model_->WaitRunning(1);
  std::atomic<bool> gone{false};
  Submitted abandoned(Rows(1, 5));
  abandoned.request.cancelled = [&gone] { return gone.load(); };
  abandoned.To(scheduler);
  Submitted kept(Rows(1, 6));
  kept.To(scheduler);
  WaitForDepth(scheduler, 2);
  gone = true;
  EXPECT_EQ(abandoned.completion.Wait().code(), StatusCode::kCancelled);
  EXPECT_FALSE(gate.completion.called());
  EXPECT_EQ(scheduler.queue_depth(), 1u);
  model_->Release();
  OUTPOST_EXPECT_OK(gate.completion.Wait());
  OUTPOST_EXPECT_OK(kept.completion.Wait());
  EXPECT_THAT(model_->batches(), ElementsAre(1, 1));
  EXPECT_EQ(kept.outputs[0].values<float>()[0], 60);
}

TEST_F(SchedulerTest, DestroyingTheSchedulerAnswersItsQueuedRequestsAndFinishesItsBatch) {
  auto scheduler = std::make_unique<Scheduler>(
      model_, SchedulerOptions{.max_batch_size = 8, .instances = 1}, &stats_);
  Submitted gate(Rows(1, 999));
  gate.To(*scheduler);
  model_->WaitRunning(1);
  Submitted a(Rows(1, 1));
  Submitted b(Rows(1, 2));
  a.To(*scheduler);
  b.To(*scheduler);
  WaitForDepth(*scheduler, 2);
  // The destructor waits for the running batch; the queued requests are answered first.
  std::thread destroy([&scheduler] { scheduler.reset(); });
  for (Submitted* queued : {&a, &b}) {
    const Status status = queued->completion.Wait();
    EXPECT_EQ(status.code(), StatusCode::kUnavailable);
    EXPECT_EQ(status.reason(), "model_unloading");
  }
  EXPECT_FALSE(gate.completion.called());
  EXPECT_EQ(stats_.queue_depth.load(), 0);
  model_->Release();
  destroy.join();
  OUTPOST_EXPECT_OK(gate.completion.Wait());
  EXPECT_THAT(model_->batches(), ElementsAre(1));
}

TEST_F(SchedulerTest, ACompletionMayDestroyTheScheduler) {
  // The owner of the scheduler goes away in the completion, on the scheduler's own thread:
  // on a worker after a run, and on the watcher after a deadline.
  for (const bool run : {true, false}) {
    auto owner = std::make_shared<Scheduler>(model_, SchedulerOptions{.instances = 1}, &stats_);
    std::mutex mu;
    std::condition_variable cv;
    bool destroyed = false;
    Submitted gate(Rows(1, 999));
    if (!run) {
      gate.To(*owner);
      model_->WaitRunning(1);
    }
    Submitted last(Rows(1, 4));
    last.request.timeout = std::chrono::milliseconds(run ? 0 : 10);
    Scheduler& scheduler = *owner;
    scheduler.Submit(last.request, [&, owner = std::move(owner)](Status status) mutable {
      EXPECT_EQ(status.ok(), run);
      if (!run) model_->Release();  // the gate's batch ends; the destructor waits for it
      owner.reset();
      std::lock_guard<std::mutex> lock(mu);
      destroyed = true;
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return destroyed; });
    if (!run) OUTPOST_EXPECT_OK(gate.completion.Wait());
  }
}

// A raw HTTP/1.1 connection to 127.0.0.1:port.
int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void SendInfer(int fd, float first) {
  const std::string body = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[)" +
                           std::to_string(first) + ",0]}]}";
  const std::string request = "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
}

TEST(SchedulerOverRest, RequestOfAClientThatClosedItsConnectionWhileQueuedIsNotRun) {
  auto model = std::make_shared<RowModel>();
  auto servable = std::make_shared<ServableModel>();
  servable->name = "m";
  auto config = std::make_shared<ModelConfig>();
  config->name = "m";
  config->max_batch_size = 8;
  config->batching.instance_count = 1;
  servable->config = config;
  servable->versions.push_back({.version = 1, .state = VersionState::kReady});
  servable->ready.emplace_back(1, model);
  auto repository = ModelRepository::FromModels({servable});
  Handler handler(*repository, {});
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto server, HttpServer::Start({.address = "127.0.0.1", .port = 0, .threads = 4},
                                     [&handler](const HttpRequest& rq, HttpResponse& rs) {
                                       handler.Handle(rq, rs);
                                     }));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle handle, repository->Find("m", std::nullopt));
  ASSERT_NE(handle.scheduler, nullptr);

  // A holds the only instance.
  const int a = Connect(server->port());
  ASSERT_GE(a, 0);
  SendInfer(a, 999);
  model->WaitRunning(1);
  // B waits in the queue, then its client goes away.
  const int b = Connect(server->port());
  ASSERT_GE(b, 0);
  SendInfer(b, 5);
  while (handle.stats->queue_depth.load() != 1) std::this_thread::yield();
  ::close(b);
  while (handle.stats->queue_depth.load() != 0) std::this_thread::yield();
  // C arrives after; it runs once A is done.
  const int c = Connect(server->port());
  ASSERT_GE(c, 0);
  SendInfer(c, 7);
  while (handle.stats->queue_depth.load() != 1) std::this_thread::yield();
  model->Release();
  EXPECT_THAT(outpost::testing::ReadHttpResponse(a), HasSubstr("200 OK"));
  const std::string answer_c = outpost::testing::ReadHttpResponse(c);
  EXPECT_THAT(answer_c, HasSubstr("200 OK"));
  EXPECT_THAT(answer_c, HasSubstr(R"("data":[70])"));
  ::close(a);
  ::close(c);
  server->Stop();
  // B never ran: only A's and C's rows reached the model.
  EXPECT_THAT(model->batches(), ElementsAre(1, 1));
  EXPECT_EQ(handle.stats->success.count.load(), 2u);
  EXPECT_EQ(handle.stats->fail.count.load(), 1u);
  EXPECT_EQ(handle.stats->execution_count.load(), 2u);
}

}  // namespace
}  // namespace outpost::serve
