// Behaviour of Outbox::AppendAsync: answered after the commit that holds the record, with
// Append's refusals passed to the completion, many records of one producer in one commit,
// the bound on appends in flight, and a close that answers everything queued.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/testing/test_util.h"
#include "outbox/outbox.h"

namespace outpost::outbox {
namespace {

OutboxOptions Options(const testing::TempDir& dir, Clock* clock) {
  return OutboxOptions{
      .path = dir.File("outbox.db"), .site_id = "site-1", .node_id = "node-1", .clock = clock};
}

NewRecord Rec(std::string stream, std::string payload, Kind kind = Kind::kSample) {
  return NewRecord{.kind = kind, .stream = std::move(stream), .payload = std::move(payload)};
}

// The answers of AppendAsync calls, in the order they came, and a wait for a number of them.
class Answers {
 public:
  std::function<void(Result<RecordKey>)> Done() {
    return [this](Result<RecordKey> r) {
      std::lock_guard<std::mutex> l(mu_);
      results_.push_back(std::move(r));
      cv_.notify_all();
    };
  }
  std::vector<Result<RecordKey>> WaitFor(size_t n) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return results_.size() >= n; });
    return results_;
  }
  size_t count() {
    std::lock_guard<std::mutex> l(mu_);
    return results_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Result<RecordKey>> results_;
};

// A gate a completion waits at, so that the commit thread is held while the test queues.
class Gate {
 public:
  void Arrive() {
    std::unique_lock<std::mutex> l(mu_);
    arrived_ = true;
    cv_.notify_all();
    cv_.wait(l, [&] { return open_; });
  }
  void WaitArrived() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return arrived_; });
  }
  void Open() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool arrived_ = false;
  bool open_ = false;
};

TEST(OutboxAsync, AppendAsyncIsAnsweredAfterTheCommitThatHoldsTheRecord) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<RecordKey>> answer;
  uint64_t committed_when_answered = 0;
  box->AppendAsync(Rec("iris", "a"), [&](Result<RecordKey> r) {
    // The completion sees the commit already counted: it ran after the commit returned.
    Result<OutboxStats> st = box->Stats();
    std::lock_guard<std::mutex> l(mu);
    committed_when_answered = st.ok() ? st->committed_records : 0;
    answer = std::move(r);
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return answer.has_value(); });
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(RecordKey key, *answer);
  EXPECT_EQ(key, (RecordKey{"iris", 1}));
  EXPECT_EQ(committed_when_answered, 1u);
  box.reset();
  // Stored durably: it is there after a reopen.
  OUTPOST_ASSERT_OK_AND_ASSIGN(box, Outbox::Open(Options(dir, &clock)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto all, box->Query({}));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].payload, "a");
  EXPECT_EQ(all[0].seq, 1u);
}

TEST(OutboxAsync, RefusalsReachTheCompletionWithAppendsReasonsAndStoreNothing) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_streams = 1;
  o.max_payload_bytes = 10;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  Answers answers;
  // Refused before queuing: answered on the caller's thread, before AppendAsync returns.
  box->AppendAsync(Rec("a b", "x"), answers.Done());
  ASSERT_EQ(answers.count(), 1u);
  box->AppendAsync(Rec("_outbox", "x", Kind::kEvent), answers.Done());
  ASSERT_EQ(answers.count(), 2u);
  box->AppendAsync(Rec("s", std::string(11, 'x')), answers.Done());
  ASSERT_EQ(answers.count(), 3u);
  // Refused by the commit: a stream beyond max_streams.
  box->AppendAsync(Rec("s", "1"), answers.Done());
  box->AppendAsync(Rec("t", "2"), answers.Done());
  std::vector<Result<RecordKey>> r = answers.WaitFor(5);
  EXPECT_EQ(r[0].status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r[1].status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r[2].status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(r[3].ok()) << r[3].status().ToString();
  EXPECT_EQ(r[4].status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r[4].status().reason(), "too_many_streams");
  // Nothing of the refused records was stored, and the store goes on.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto all, box->Query({}));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].stream, "s");
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_FALSE(st.failed);
  EXPECT_EQ(st.committed_records, 1u);
  EXPECT_EQ(st.rejected_records, 1u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(RecordKey k, box->Append(Rec("s", "3")));
  EXPECT_EQ(k.seq, 2u);
}

TEST(OutboxAsync, ManyRecordsInFlightFromOneProducerShareOneCommit) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  Gate gate;
  Answers answers;
  // The first record's completion holds the commit thread while 100 more are queued.
  box->AppendAsync(Rec("iris", "0"), [&](Result<RecordKey> r) {
    gate.Arrive();
    answers.Done()(std::move(r));
  });
  gate.WaitArrived();
  for (int i = 1; i <= 100; ++i) box->AppendAsync(Rec("iris", std::to_string(i)), answers.Done());
  gate.Open();
  std::vector<Result<RecordKey>> r = answers.WaitFor(101);
  for (size_t i = 0; i < r.size(); ++i) {
    ASSERT_TRUE(r[i].ok()) << r[i].status().ToString();
    EXPECT_EQ(r[i]->seq, i + 1);  // one producer's records keep its order
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(st.committed_records, 101u);
  EXPECT_EQ(st.commits, 2u);  // the first record, then the 100 in one commit
}

TEST(OutboxAsync, AppendsInFlightAreBoundedAndAProducerPastTheBoundWaits) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_appends_in_flight = 0;
  EXPECT_EQ(Outbox::Open(o).status().code(), StatusCode::kInvalidArgument);
  // With one in flight, each AppendAsync waits until the one before is answered: every
  // commit holds one record.
  o.max_appends_in_flight = 1;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  Answers answers;
  for (int i = 0; i < 20; ++i) box->AppendAsync(Rec("iris", std::to_string(i)), answers.Done());
  std::vector<Result<RecordKey>> r = answers.WaitFor(20);
  for (const auto& k : r) ASSERT_TRUE(k.ok()) << k.status().ToString();
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(st.committed_records, 20u);
  EXPECT_EQ(st.commits, 20u);
}

TEST(OutboxAsync, AppendFromACompletionIsRefusedAndStoresNothing) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  Answers answers;
  Status nested_sync, nested_async;
  box->AppendAsync(Rec("iris", "a"), [&](Result<RecordKey> r) {
    nested_sync = box->Append(Rec("iris", "b")).status();
    box->AppendAsync(Rec("iris", "c"), [&](Result<RecordKey> n) { nested_async = n.status(); });
    answers.Done()(std::move(r));
  });
  ASSERT_TRUE(answers.WaitFor(1)[0].ok());
  EXPECT_EQ(nested_sync.reason(), "append_in_completion");
  EXPECT_EQ(nested_async.reason(), "append_in_completion");
  EXPECT_EQ(nested_async.code(), StatusCode::kFailedPrecondition);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto all, box->Query({}));
  EXPECT_EQ(all.size(), 1u);
}

TEST(OutboxAsync, SyncAndAsyncProducersShareCommitsAndGetDistinctGaplessSeqs) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  constexpr int kPerThread = 200;
  Answers answers;
  std::vector<uint64_t> sync_seqs;
  std::thread sync_producer([&] {
    for (int i = 0; i < kPerThread; ++i) {
      auto k = box->Append(Rec("shared", "s" + std::to_string(i)));
      ASSERT_TRUE(k.ok()) << k.status().ToString();
      sync_seqs.push_back(k->seq);
    }
  });
  for (int i = 0; i < kPerThread; ++i) {
    box->AppendAsync(Rec("shared", "a" + std::to_string(i)), answers.Done());
  }
  sync_producer.join();
  std::vector<Result<RecordKey>> r = answers.WaitFor(kPerThread);
  std::vector<uint64_t> all = sync_seqs;
  for (const auto& k : r) {
    ASSERT_TRUE(k.ok()) << k.status().ToString();
    all.push_back(k->seq);
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), 2u * kPerThread);
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1);
}

TEST(OutboxAsync, ClosingCommitsAndAnswersEveryQueuedRecord) {
  testing::TempDir dir;
  FakeClock clock;
  Answers answers;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
    for (int i = 0; i < 50; ++i) box->AppendAsync(Rec("iris", std::to_string(i)), answers.Done());
  }
  std::vector<Result<RecordKey>> r = answers.WaitFor(50);
  for (const auto& k : r) ASSERT_TRUE(k.ok()) << k.status().ToString();
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto all, box->Query({.limit = 1000}));
  EXPECT_EQ(all.size(), 50u);
}

}  // namespace
}  // namespace outpost::outbox
