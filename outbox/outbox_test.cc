// Behaviour of the outbox on real SQLite files: keys, priorities, bounds, leases, queries,
// stats, encryption and format checks.
#include "outbox/outbox.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "base/clock.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/sqlite/sqlite.h"
#include "base/testing/test_util.h"
#include "outbox/crypto.h"
#include "outbox/schema.h"

namespace outpost::outbox {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

OutboxOptions Options(const testing::TempDir& dir, Clock* clock) {
  return OutboxOptions{
      .path = dir.File("outbox.db"), .site_id = "site-1", .node_id = "node-1", .clock = clock};
}

NewRecord Rec(Kind kind, std::string stream, std::string payload) {
  return NewRecord{.kind = kind, .stream = std::move(stream), .payload = std::move(payload)};
}

// Every record, leased in one go and released again.
std::vector<Record> All(Outbox& box) {
  auto batch = box.Lease({.max_records = 1000000, .max_bytes = uint64_t{1} << 40});
  EXPECT_TRUE(batch.ok()) << batch.status().ToString();
  if (!batch.ok()) return {};
  if (batch->lease_id != 0) box.Release(batch->lease_id).IgnoreError();
  return batch->records;
}

TEST(Outbox, AppendAssignsGaplessSeqPerStreamStartingAtOne) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  for (uint64_t i = 1; i <= 5; ++i) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(RecordKey a, box->Append(Rec(Kind::kSample, "iris", "a")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(RecordKey b, box->Append(Rec(Kind::kAnomaly, "wine", "b")));
    EXPECT_EQ(a, (RecordKey{"iris", i}));
    EXPECT_EQ(b, (RecordKey{"wine", i}));
  }
}

TEST(Outbox, AcknowledgedRecordsSurviveReopenWithTheirKeysAndPayloads) {
  testing::TempDir dir;
  FakeClock clock;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kFeedback, "iris", "label=setosa")));
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kFeedback, "iris", std::string("\0\1\2", 3))));
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  std::vector<Record> all = All(*box);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].seq, 1u);
  EXPECT_EQ(all[0].payload, "label=setosa");
  EXPECT_EQ(all[0].kind, Kind::kFeedback);
  EXPECT_EQ(all[0].created_ms, UnixMillis(clock.Now()));
  EXPECT_EQ(all[1].payload, std::string("\0\1\2", 3));
}

TEST(Outbox, SeqIsNeverReusedAfterRecordsAreAcknowledgedAndTheStoreReopens) {
  testing::TempDir dir;
  FakeClock clock;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
    for (int i = 0; i < 3; ++i) OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", "x")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({}));
    ASSERT_EQ(b.records.size(), 3u);
    OUTPOST_ASSERT_OK(box->Ack(b.lease_id));
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  EXPECT_TRUE(All(*box).empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(RecordKey k, box->Append(Rec(Kind::kSample, "s", "y")));
  EXPECT_EQ(k.seq, 4u);
}

TEST(Outbox, ConcurrentProducersShareCommitsAndGetDistinctGaplessSeqs) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  constexpr int kThreads = 8, kPerThread = 100;
  std::vector<std::vector<uint64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto key = box->Append(Rec(Kind::kSample, "shared", std::to_string(t * 1000 + i)));
        ASSERT_TRUE(key.ok()) << key.status().ToString();
        seqs[t].push_back(key->seq);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint64_t> all;
  for (const auto& s : seqs) all.insert(all.end(), s.begin(), s.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(st.committed_records, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LE(st.commits, st.committed_records);
  // Each record's payload is stored with the seq it was given.
  std::set<std::string> payloads;
  for (const Record& r : All(*box)) payloads.insert(r.payload);
  EXPECT_EQ(payloads.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(Outbox, RejectsBadStreamsOutboxStreamsAndOversizedPayloads) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_payload_bytes = 100;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  EXPECT_EQ(box->Append(Rec(Kind::kSample, "", "x")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(box->Append(Rec(Kind::kSample, "a b", "x")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(box->Append(Rec(Kind::kEvent, "_outbox", "x")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(box->Append(Rec(Kind::kSample, "s", std::string(101, 'x'))).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(box->Append(Rec(static_cast<Kind>(9), "s", "x")).status().code(),
            StatusCode::kInvalidArgument);
  OUTPOST_EXPECT_OK(box->Append(Rec(Kind::kSample, "model-1.v2:a_b", std::string(100, 'x'))));
}

TEST(Outbox, SiteAndNodeIdsFollowTheRulesOfBaseNames) {
  // SiteId and NodeId (base/names.h): what enrolment and batches take, a leading '_' too.
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.site_id = "_Ship:9";
  o.node_id = "_edge-0";
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  OUTPOST_EXPECT_OK(box->Append(Rec(Kind::kSample, "pump", "x")));
  box.reset();
  for (std::string bad : {"../x", "-x", "a/b", ""}) {
    o = Options(dir, &clock);
    o.path = dir.File("other.db");
    o.site_id = bad;
    Result<std::unique_ptr<Outbox>> opened = Outbox::Open(o);
    EXPECT_EQ(opened.status().reason(), "invalid_site_id") << bad;
    o.site_id = "site-1";
    o.node_id = bad;
    opened = Outbox::Open(o);
    EXPECT_EQ(opened.status().reason(), "invalid_node_id") << bad;
  }
}

TEST(Outbox, RejectsBadOptions) {
  testing::TempDir dir;
  OutboxOptions o = Options(dir, nullptr);
  o.site_id = "bad site";
  EXPECT_EQ(Outbox::Open(o).status().code(), StatusCode::kInvalidArgument);
  o = Options(dir, nullptr);
  o.priority = {Kind::kAnomaly, Kind::kAnomaly};
  EXPECT_EQ(Outbox::Open(o).status().code(), StatusCode::kInvalidArgument);
  o = Options(dir, nullptr);
  o.classes[static_cast<int>(Kind::kEvent) - 1].evictable = true;
  EXPECT_EQ(Outbox::Open(o).status().code(), StatusCode::kInvalidArgument);
}

TEST(Outbox, LeaseHandsOutHighestPriorityFirstAndOldestFirstWithinAClass) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", "sample-1")));
  clock.Advance(milliseconds(5));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAggregate, "s", "aggregate-1")));
  clock.Advance(milliseconds(5));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", "anomaly-1")));
  clock.Advance(milliseconds(5));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", "anomaly-2")));
  clock.Advance(milliseconds(5));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kDrift, "s", "drift-1")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({.max_records = 4}));
  std::vector<std::string> got;
  for (const Record& r : b.records) got.push_back(r.payload);
  EXPECT_EQ(got, (std::vector<std::string>{"anomaly-1", "anomaly-2", "drift-1", "aggregate-1"}));
}

TEST(Outbox, PriorityOrderIsConfigurable) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.priority = {Kind::kSample,      Kind::kEvent,     Kind::kAnomaly, Kind::kDrift,
                Kind::kHardExample, Kind::kAggregate, Kind::kFeedback};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", "anomaly")));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", "sample")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({.max_records = 1}));
  ASSERT_EQ(b.records.size(), 1u);
  EXPECT_EQ(b.records[0].payload, "sample");
}

TEST(Outbox, LeaseRespectsByteLimitButAlwaysHandsOutOneRecord) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  for (int i = 0; i < 5; ++i)
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", std::string(100, 'x'))));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch one, box->Lease({.max_bytes = 10}));
  EXPECT_EQ(one.records.size(), 1u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch three, box->Lease({.max_bytes = 300}));
  EXPECT_EQ(three.records.size(), 3u);
}

TEST(Outbox, LeasedRecordsAreNotLeasedAgainUntilAckedOrReleased) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  for (int i = 0; i < 4; ++i) OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", "x")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch a, box->Lease({.max_records = 3}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({.max_records = 3}));
  ASSERT_EQ(a.records.size(), 3u);
  ASSERT_EQ(b.records.size(), 1u);
  EXPECT_EQ(b.records[0].seq, 4u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch c, box->Lease({}));
  EXPECT_TRUE(c.records.empty());
  EXPECT_EQ(c.lease_id, 0u);
  OUTPOST_ASSERT_OK(box->Release(b.lease_id));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch d, box->Lease({}));
  ASSERT_EQ(d.records.size(), 1u);
  EXPECT_EQ(d.records[0].seq, 4u);
}

TEST(Outbox, AckDeletesOnlyTheLeasedRecords) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  for (int i = 0; i < 4; ++i) OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", "x")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch a, box->Lease({.max_records = 3}));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", "x")));
  OUTPOST_ASSERT_OK(box->Ack(a.lease_id));
  EXPECT_EQ(box->Ack(a.lease_id).code(), StatusCode::kNotFound);
  std::vector<Record> left = All(*box);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].seq, 4u);
  EXPECT_EQ(left[1].seq, 5u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(st.records, 2u);
}

TEST(Outbox, LeasedRecordReturnsAfterLeaseExpires) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", "x")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch a, box->Lease({.duration = seconds(30)}));
  ASSERT_EQ(a.records.size(), 1u);
  clock.Advance(seconds(29));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch early, box->Lease({}));
  EXPECT_TRUE(early.records.empty());
  clock.Advance(seconds(1));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch again, box->Lease({}));
  ASSERT_EQ(again.records.size(), 1u);
  EXPECT_EQ(again.records[0].seq, 1u);
  EXPECT_NE(again.lease_id, a.lease_id);
}

TEST(Outbox, LateAckOfAnExpiredLeaseStillDeletesItsRecords) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", "x")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch a, box->Lease({.duration = seconds(1)}));
  clock.Advance(seconds(2));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({}));
  ASSERT_EQ(b.records.size(), 1u);
  OUTPOST_ASSERT_OK(box->Ack(a.lease_id));
  OUTPOST_ASSERT_OK(box->Ack(b.lease_id));  // nothing left to delete; not an error
  EXPECT_TRUE(All(*box).empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(st.records, 0u);
  EXPECT_EQ(st.bytes, 0u);
}

TEST(Outbox, DeleteByKeyRemovesStoredRecordsAndIgnoresUnknownKeys) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  for (int i = 0; i < 3; ++i) OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", "x")));
  std::vector<RecordKey> keys = {{"s", 1}, {"s", 3}, {"t", 1}, {"s", 99}};
  OUTPOST_ASSERT_OK(box->Delete(keys));
  std::vector<Record> left = All(*box);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].seq, 2u);
}

// 80 bytes charged per record on stream "s" with a 31-byte payload (1 + 31 + 48).
constexpr uint64_t kCharge = 80;
std::string Payload31(int i) {
  std::string p = "payload-" + std::to_string(i);
  p.resize(31, '.');
  return p;
}

// Appends `count` records of `kind` on stream "s", with the payloads Payload31(first) onwards;
// with a clock, it moves on by 1 ms after each, so that the records' ages differ.
Status AppendPayloads(Outbox& box, FakeClock* clock, Kind kind, int first, int count) {
  for (int i = 0; i < count; ++i) {
    Result<RecordKey> key = box.Append(Rec(kind, "s", Payload31(first + i)));
    if (!key.ok()) return key.status();
    if (clock != nullptr) clock->Advance(milliseconds(1));
  }
  return Status();
}

// Tests of eviction order and quotas count records on tiny bounds: without reserved shares
// or storm sampling (FORMAT.md sections 3, 12), which have tests of their own.
void NoShares(OutboxOptions& o) {
  for (ClassPolicy& c : o.classes) {
    c.reserved_percent = 0;
    c.storm_first = 0;
  }
}

const ClassStats& ClassOf(const OutboxStats& st, Kind kind) {
  for (const ClassStats& c : st.classes) {
    if (c.kind == kind) return c;
  }
  static const ClassStats kNone;
  return kNone;
}

// raised = held + delivered + withheld + evicted + refused + sampled_out + quarantined, for
// every class (FORMAT.md section 11).
void ExpectAccountBalances(const OutboxStats& st) {
  for (const ClassStats& c : st.classes) {
    EXPECT_EQ(c.raised_records, c.records + c.delivered_records + c.withheld_records +
                                    c.evicted_records + c.refused_records +
                                    c.sampled_out_records + c.quarantined_records)
        << KindName(c.kind);
  }
}

TEST(Outbox, FullStoreEvictsTheLowestClassOldestFirstAndCountsItWithoutAnEventPerCommit) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 10 * kCharge;
  NoShares(o);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  OUTPOST_ASSERT_OK(AppendPayloads(*box, &clock, Kind::kSample, 0, 6));
  OUTPOST_ASSERT_OK(AppendPayloads(*box, &clock, Kind::kAggregate, 100, 4));
  // Full. Each anomaly evicts the oldest sample, not an aggregate; no eviction event is
  // written (evictions are counted, and reported by the hourly summary).
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", Payload31(200))));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", Payload31(201))));
  std::vector<Record> all = All(*box);
  std::vector<std::string> samples, events;
  int aggregates = 0, anomalies = 0;
  for (const Record& r : all) {
    if (r.kind == Kind::kSample) samples.push_back(r.payload);
    if (r.kind == Kind::kEvent) events.push_back(r.payload);
    if (r.kind == Kind::kAggregate) ++aggregates;
    if (r.kind == Kind::kAnomaly) ++anomalies;
  }
  EXPECT_EQ(samples, (std::vector<std::string>{Payload31(2), Payload31(3), Payload31(4),
                                               Payload31(5)}));
  EXPECT_EQ(aggregates, 4);
  EXPECT_EQ(anomalies, 2);
  EXPECT_TRUE(events.empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_LE(st.bytes, st.max_bytes);
  ExpectAccountBalances(st);
  for (const ClassStats& c : st.classes) {
    if (c.kind == Kind::kSample) {
      EXPECT_EQ(c.evicted_records, 2u);
      EXPECT_EQ(c.evicted_bytes, 2 * kCharge);
      EXPECT_EQ(c.records, 4u);
      EXPECT_EQ(c.raised_records, 6u);
    }
    if (c.kind == Kind::kAggregate) {
      EXPECT_EQ(c.evicted_records, 0u);
    }
  }
}

TEST(Outbox, FullStoreRefusesWithResourceExhaustedWhenNothingMayBeEvicted) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 5 * kCharge;
  NoShares(o);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  for (int i = 0; i < 5; ++i)
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", Payload31(i))));
  Result<RecordKey> anomaly = box->Append(Rec(Kind::kAnomaly, "s", Payload31(5)));
  EXPECT_EQ(anomaly.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(anomaly.status().message().find("outbox full"), std::string_view::npos);
  // A sample may not evict anomalies either.
  EXPECT_EQ(box->Append(Rec(Kind::kSample, "s", Payload31(6))).status().code(),
            StatusCode::kResourceExhausted);
  // Nothing was stored or evicted, and the store goes on.
  std::vector<Record> all = All(*box);
  EXPECT_EQ(all.size(), 5u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(st.rejected_records, 2u);
  EXPECT_FALSE(st.failed);
  EXPECT_EQ(ClassOf(st, Kind::kAnomaly).refused_records, 1u);
  EXPECT_EQ(ClassOf(st, Kind::kSample).refused_records, 1u);
  ExpectAccountBalances(st);
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({.max_records = 1}));
  OUTPOST_ASSERT_OK(box->Ack(b.lease_id));
  OUTPOST_ASSERT_OK_AND_ASSIGN(RecordKey k, box->Append(Rec(Kind::kAnomaly, "s", Payload31(7))));
  EXPECT_EQ(k.seq, 6u);  // the refused appends took no seq
}

TEST(Outbox, RecordLargerThanWhatEvictionCouldFreeEvictsNothing) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 4 * kCharge;
  NoShares(o);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", Payload31(0))));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", Payload31(1))));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", Payload31(2))));
  // Needs 3 records' room; only one sample could be evicted.
  EXPECT_EQ(
      box->Append(Rec(Kind::kAnomaly, "s", std::string(3 * kCharge - 49, 'x'))).status().code(),
      StatusCode::kResourceExhausted);
  EXPECT_EQ(All(*box).size(), 3u);
}

TEST(Outbox, LeasedRecordsAreNotEvicted) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 3 * kCharge;
  NoShares(o);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  for (int i = 0; i < 3; ++i) OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", Payload31(i))));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch a, box->Lease({.max_records = 2}));  // samples 0, 1
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", Payload31(10))));      // evicts 2
  EXPECT_EQ(box->Append(Rec(Kind::kAnomaly, "s", Payload31(11))).status().code(),
            StatusCode::kResourceExhausted);
  OUTPOST_ASSERT_OK(box->Release(a.lease_id));
  std::vector<std::string> samples;
  for (const Record& r : All(*box)) {
    if (r.kind == Kind::kSample) samples.push_back(r.payload);
  }
  EXPECT_EQ(samples, (std::vector<std::string>{Payload31(0), Payload31(1)}));
}

TEST(Outbox, ClassQuotaEvictsItsOwnOldestRecordsOrRefusesWhenNotEvictable) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.classes[static_cast<int>(Kind::kSample) - 1].max_bytes = 2 * kCharge;
  o.classes[static_cast<int>(Kind::kDrift) - 1].max_bytes = 1 * kCharge;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  OUTPOST_ASSERT_OK(AppendPayloads(*box, &clock, Kind::kSample, 0, 4));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kDrift, "s", Payload31(10))));
  EXPECT_EQ(box->Append(Rec(Kind::kDrift, "s", Payload31(11))).status().code(),
            StatusCode::kResourceExhausted);
  std::vector<std::string> samples;
  int events = 0;
  for (const Record& r : All(*box)) {
    if (r.kind == Kind::kSample) samples.push_back(r.payload);
    if (r.kind == Kind::kEvent) ++events;
  }
  EXPECT_EQ(samples, (std::vector<std::string>{Payload31(2), Payload31(3)}));
  EXPECT_EQ(events, 0);  // evictions are counted, not reported one event per commit
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(ClassOf(st, Kind::kSample).evicted_records, 2u);
  EXPECT_EQ(ClassOf(st, Kind::kDrift).refused_records, 1u);
  ExpectAccountBalances(st);
}

// The default feedback quota (10% of the total bound) under a flood of labels: older
// feedback makes way for newer, and every anomaly and event stays where it was.
TEST(Outbox, FeedbackFloodAtItsDefaultQuotaEvictsOnlyOlderFeedback) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 1000 * kCharge;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  OUTPOST_ASSERT_OK(AppendPayloads(*box, &clock, Kind::kAnomaly, 0, 5));
  OUTPOST_ASSERT_OK(AppendPayloads(*box, &clock, Kind::kFeedback, 1000, 300));
  std::vector<std::string> anomalies, feedback;
  int events = 0;
  for (const Record& r : All(*box)) {
    if (r.kind == Kind::kAnomaly) anomalies.push_back(r.payload);
    if (r.kind == Kind::kFeedback) feedback.push_back(r.payload);
    if (r.kind == Kind::kEvent) ++events;
  }
  EXPECT_EQ(anomalies, (std::vector<std::string>{Payload31(0), Payload31(1), Payload31(2),
                                                 Payload31(3), Payload31(4)}));
  ASSERT_EQ(feedback.size(), 100u);  // 100 x 80 bytes = 10% of 80,000
  EXPECT_EQ(feedback.front(), Payload31(1200));
  EXPECT_EQ(feedback.back(), Payload31(1299));
  EXPECT_EQ(events, 0);  // evictions are counted, not one event per commit
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  for (const ClassStats& c : st.classes) {
    if (c.kind == Kind::kFeedback) {
      EXPECT_EQ(c.quota_bytes, 100 * kCharge);
      EXPECT_EQ(c.evicted_records, 200u);
    } else {
      EXPECT_EQ(c.evicted_records, 0u) << KindName(c.kind);
    }
  }
  // Anomalies still have the rest of the bound.
  OUTPOST_ASSERT_OK(AppendPayloads(*box, nullptr, Kind::kAnomaly, 10, 100));
}

TEST(Outbox, FeedbackIsNeverEvictedForAnotherClassByDefault) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 20 * kCharge;  // feedback quota: 2 records
  NoShares(o);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kFeedback, "s", Payload31(0))));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kFeedback, "s", Payload31(1))));
  OUTPOST_ASSERT_OK(AppendPayloads(*box, nullptr, Kind::kAnomaly, 10, 18));
  Result<RecordKey> refused = box->Append(Rec(Kind::kAnomaly, "s", Payload31(99)));
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  int feedback = 0, anomalies = 0;
  for (const Record& r : All(*box)) {
    if (r.kind == Kind::kFeedback) ++feedback;
    if (r.kind == Kind::kAnomaly) ++anomalies;
  }
  EXPECT_EQ(feedback, 2);
  EXPECT_EQ(anomalies, 18);
}

TEST(Outbox, NewStreamBeyondMaxStreamsIsRefusedAndStoresNothing) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_streams = 2;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kFeedback, "a", "1")));
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kFeedback, "b", "2")));
    Result<RecordKey> third = box->Append(Rec(Kind::kFeedback, "c", "3"));
    EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(third.status().reason(), "too_many_streams");
    EXPECT_EQ(All(*box).size(), 2u);
    // The streams that exist go on, and the store is healthy.
    OUTPOST_ASSERT_OK_AND_ASSIGN(RecordKey k, box->Append(Rec(Kind::kAnomaly, "a", "4")));
    EXPECT_EQ(k.seq, 2u);
    OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
    EXPECT_FALSE(st.failed);
  }
  // The count survives a reopen, even once the records are gone.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({}));
  OUTPOST_ASSERT_OK(box->Ack(b.lease_id));
  EXPECT_EQ(box->Append(Rec(Kind::kSample, "d", "5")).status().reason(), "too_many_streams");
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "b", "6")));
  EXPECT_EQ(All(*box).size(), 1u);
}

TEST(Outbox, QueryFiltersByKindAndCreationTimeOldestFirst) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
  int64_t t0 = UnixMillis(clock.Now());
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", "a1")));
  clock.Advance(seconds(1));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", "s1")));
  clock.Advance(seconds(1));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", "a2")));
  clock.Advance(seconds(1));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", "a3")));
  auto payloads = [](const std::vector<Record>& rs) {
    std::vector<std::string> out;
    for (const Record& r : rs) out.push_back(r.payload);
    return out;
  };
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto anomalies, box->Query({.kind = Kind::kAnomaly}));
  EXPECT_EQ(payloads(anomalies), (std::vector<std::string>{"a1", "a2", "a3"}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto recent, box->Query({.since_ms = t0 + 1000, .limit = 2}));
  EXPECT_EQ(payloads(recent), (std::vector<std::string>{"s1", "a2"}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto none, box->Query({.kind = Kind::kDrift}));
  EXPECT_TRUE(none.empty());
  // Query does not lease: a lease still gets everything.
  EXPECT_EQ(All(*box).size(), 4u);
}

TEST(Outbox, StatsReportDepthBytesAgeIngestRateAndDaysOfAutonomy) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 1'000'000;
  o.rate_window = std::chrono::minutes(10);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  // 100 records of 100 charged bytes over 100 s: 100 bytes/s.
  for (int i = 0; i < 100; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", std::string(51, 'x'))));
    clock.Advance(seconds(1));
  }
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", std::string(51, 'y'))));
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(st.site_id, "site-1");
  EXPECT_EQ(st.records, 101u);
  EXPECT_EQ(st.bytes, 10100u);
  EXPECT_EQ(st.max_bytes, 1'000'000u);
  ASSERT_TRUE(st.oldest_record_age.has_value());
  EXPECT_EQ(*st.oldest_record_age, milliseconds(100'000));
  EXPECT_EQ(st.rate_window, seconds(100));
  EXPECT_DOUBLE_EQ(st.ingest_records_per_s, 1.01);
  EXPECT_DOUBLE_EQ(st.ingest_bytes_per_s, 101.0);
  // 100 s of a 10-minute window: a burst is not extrapolated.
  EXPECT_FALSE(st.autonomy_days.has_value());
  EXPECT_EQ(st.autonomy_basis, AutonomyBasis::kNotEnoughHistory);
  ASSERT_EQ(st.classes.size(), 7u);
  EXPECT_EQ(st.classes[0].kind, Kind::kEvent);
  EXPECT_EQ(st.classes[1].kind, Kind::kAnomaly);
  EXPECT_EQ(st.classes[1].records, 1u);
  EXPECT_EQ(st.classes[6].kind, Kind::kSample);
  EXPECT_EQ(st.classes[6].records, 100u);
  EXPECT_EQ(st.classes[6].bytes, 10000u);
  // After the window has passed with no traffic, nothing is arriving: no estimate.
  clock.Advance(std::chrono::minutes(11));
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats later, box->Stats());
  EXPECT_EQ(later.ingest_bytes_per_s, 0);
  EXPECT_FALSE(later.autonomy_days.has_value());
  EXPECT_EQ(later.autonomy_basis, AutonomyBasis::kIdle);
}

TEST(Outbox, AutonomyIsEstimatedFromNetGrowthOverAWholeWindowAndNeverForADrainingSite) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 1'000'000;
  o.rate_window = std::chrono::minutes(1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  clock.Advance(seconds(30));
  // 10 records of 100 charged bytes, acknowledged as they come: the site drains.
  for (int i = 0; i < 10; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", std::string(51, 'x'))));
    OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({}));
    OUTPOST_ASSERT_OK(box->Ack(b.lease_id));
    clock.Advance(seconds(1));
  }
  clock.Advance(seconds(20));  // one whole minute observed
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats draining, box->Stats());
  EXPECT_GT(draining.ingest_bytes_per_s, 0);
  EXPECT_DOUBLE_EQ(draining.drain_bytes_per_s, draining.ingest_bytes_per_s);
  EXPECT_FALSE(draining.autonomy_days.has_value());
  EXPECT_EQ(draining.autonomy_basis, AutonomyBasis::kDraining);
  // Offline: the same traffic now stays, and the estimate is the room left at that growth.
  for (int i = 0; i < 10; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", std::string(51, 'x'))));
    clock.Advance(seconds(1));
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats offline, box->Stats());
  EXPECT_EQ(offline.autonomy_basis, AutonomyBasis::kEstimated);
  ASSERT_TRUE(offline.autonomy_days.has_value());
  EXPECT_GT(*offline.autonomy_days, 0);
  EXPECT_EQ(AutonomyBasisName(offline.autonomy_basis), "estimated");
}

TEST(Outbox, ClassQuotaShortensTheAutonomyEstimate) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 1'000'000;
  o.rate_window = std::chrono::minutes(1);
  o.classes[static_cast<int>(Kind::kSample) - 1].max_bytes = 10'000;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  clock.Advance(seconds(30));
  for (int i = 0; i < 10; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", std::string(51, 'x'))));
    clock.Advance(seconds(1));
  }
  clock.Advance(seconds(20));  // the whole minute: 1000 bytes in 60 s
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  ASSERT_TRUE(st.autonomy_days.has_value());
  EXPECT_NEAR(*st.autonomy_days, (10'000.0 - 1000.0) / (1000.0 / 60.0) / 86400.0, 1e-9);
}

TEST(Outbox, EncryptedStoreRoundTripsAndKeepsPayloadsOutOfTheFile) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("key"), std::string(64, 'a') + "\n", 0600));
  OutboxOptions o = Options(dir, &clock);
  o.key_file = dir.File("key");
  const std::string secret = "patient-name=JOHN-DOE-SECRET";
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kHardExample, "s", secret)));
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string file, ReadFile(o.path));
  EXPECT_EQ(file.find("JOHN-DOE"), std::string::npos);
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    std::vector<Record> all = All(*box);
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].payload, secret);
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto q, box->Query({}));
    ASSERT_EQ(q.size(), 1u);
    EXPECT_EQ(q[0].payload, secret);
  }
  // The wrong key, no key, and a key for a clear file are all refused.
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("other"), std::string(32, 'k'), 0600));
  OutboxOptions wrong = o;
  wrong.key_file = dir.File("other");
  EXPECT_EQ(Outbox::Open(wrong).status().code(), StatusCode::kPermissionDenied);
  OutboxOptions none = o;
  none.key_file = "";
  EXPECT_EQ(Outbox::Open(none).status().code(), StatusCode::kFailedPrecondition);
  OutboxOptions clear = Options(dir, &clock);
  clear.path = dir.File("clear.db");
  { OUTPOST_ASSERT_OK(Outbox::Open(clear).status()); }
  clear.key_file = dir.File("key");
  EXPECT_EQ(Outbox::Open(clear).status().code(), StatusCode::kFailedPrecondition);
}

using Key = std::pair<std::string, int64_t>;

// The 12-byte nonce in front of every stored payload, by (stream, seq).
std::map<Key, std::string> StoredNonces(const std::string& path) {
  std::map<Key, std::string> out;
  auto db = sqlite::Db::Open(path, {});
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  if (!db.ok()) return out;
  auto s = (*db)->Prepare("SELECT stream, seq, payload FROM records");
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return out;
  for (;;) {
    Result<bool> row = (*s)->Step();
    EXPECT_TRUE(row.ok()) << row.status().ToString();
    if (!row.ok() || !*row) break;
    out[{std::string((*s)->ColumnText(0)), (*s)->ColumnInt(1)}] =
        std::string((*s)->ColumnBlob(2).substr(0, kNonceBytes));
  }
  (*db)->Close(/*checkpoint=*/true).IgnoreError();
  return out;
}

// Copies the outbox file and its WAL (when there is one) from `from` to `to`.
void CopyOutboxFile(const std::string& from, const std::string& to) {
  for (const std::string suffix : {"", "-wal"}) {
    std::filesystem::remove(to + suffix);
    if (PathExists(from + suffix)) std::filesystem::copy_file(from + suffix, to + suffix);
  }
  std::filesystem::remove(to + "-shm");
}

TEST(Outbox, RestoringAnOlderCopyOfAnEncryptedFileNeverRepeatsANonce) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("key"), std::string(64, 'a') + "\n", 0600));
  OutboxOptions o = Options(dir, &clock);
  o.key_file = dir.File("key");
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    for (int i = 0; i < 3; ++i) OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", "before")));
  }
  CopyOutboxFile(o.path, dir.File("backup.db"));
  auto writes = [&](const std::string& payload) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    for (int i = 0; i < 5; ++i) OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "s", payload)));
  };
  writes("first life");
  auto first = StoredNonces(o.path);
  ASSERT_EQ(first.size(), 8u);
  // The older copy comes back (a backup restored), and the node writes again: the same seqs
  // 4..8, sealed again, must not reuse the nonces of the first life.
  CopyOutboxFile(dir.File("backup.db"), o.path);
  writes("second life");
  auto second = StoredNonces(o.path);
  ASSERT_EQ(second.size(), 8u);
  std::set<std::string> all;
  for (const auto& [key, nonce] : first) all.insert(nonce);
  for (const auto& [key, nonce] : second) all.insert(nonce);
  // 3 records kept from before the copy, 5 of each life: 13 distinct nonces.
  EXPECT_EQ(all.size(), 13u);
  for (int64_t seq = 1; seq <= 3; ++seq) EXPECT_EQ(first[Key("s", seq)], second[Key("s", seq)]);
  for (int64_t seq = 4; seq <= 8; ++seq) EXPECT_NE(first[Key("s", seq)], second[Key("s", seq)]);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  std::vector<Record> records = All(*box);
  ASSERT_EQ(records.size(), 8u);
  EXPECT_EQ(records[7].payload, "second life");
}

// A record sealed the way files were written before random nonces (a big-endian counter as
// the nonce) still opens: the nonce is read from the stored payload (FORMAT.md section 7).
TEST(Outbox, RecordsSealedWithCounterNoncesStillOpen) {
  testing::TempDir dir;
  FakeClock clock;
  const std::string key(32, 'k');
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("key"), key, 0600));
  OutboxOptions o = Options(dir, &clock);
  o.key_file = dir.File("key");
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", "placeholder")));
  }
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto db, sqlite::Db::Open(o.path, {}));
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto q, db->Prepare("SELECT value FROM meta WHERE key = 'key_salt'"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(bool found, q->Step());
    ASSERT_TRUE(found);
    std::string salt(q->ColumnBlob(0));
    q.reset();
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string data_key,
                                 crypto::HkdfSha256(key, salt, "outpost outbox v1 data key", 32));
    std::string header = EnvelopeHeader("site-1", "node-1", "s", 1,
                                        static_cast<uint8_t>(Kind::kAnomaly), UnixMillis(clock.Now()));
    std::string nonce(kNonceBytes, '\0');
    nonce[kNonceBytes - 1] = 7;  // counter 7, big-endian
    std::string stored = nonce;
    OUTPOST_ASSERT_OK(
        crypto::AesGcmSealAppend(data_key, nonce, RecordAad(header), "written by counter", &stored));
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        auto u, db->Prepare("UPDATE records SET payload = ?1, checksum = ?2 WHERE seq = 1"));
    u->BindBlob(1, stored);
    u->BindInt(2, RecordChecksum(header, stored));
    OUTPOST_ASSERT_OK(u->Run());
    u.reset();
    OUTPOST_ASSERT_OK(db->Close(/*checkpoint=*/true));
  }
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", "written at random")));
    std::vector<Record> records = All(*box);
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[0].payload, "written by counter");
    EXPECT_EQ(records[1].payload, "written at random");
  }
  auto nonces = StoredNonces(o.path);
  EXPECT_EQ(nonces[Key("s", 1)], std::string(kNonceBytes - 1, '\0') + '\x07');
  EXPECT_NE(nonces[Key("s", 2)], std::string(kNonceBytes - 1, '\0') + '\x08');
}

TEST(Outbox, AFileWhoseDataKeySealedItsBoundRefusesToSealMore) {
  testing::TempDir dir;
  FakeClock clock;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("key"), std::string(32, 'k'), 0600));
  OutboxOptions o = Options(dir, &clock);
  o.key_file = dir.File("key");
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "s", "kept")));
  }
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto db, sqlite::Db::Open(o.path, {}));
    // Through the schema's own writer, so that the value's checksum matches.
    OUTPOST_ASSERT_OK(SetMetaInt(*db, "nonce_reserved", static_cast<int64_t>(kMaxSealsPerDataKey)));
    OUTPOST_ASSERT_OK(db->Close(/*checkpoint=*/true));
  }
  auto before = StoredNonces(o.path);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  Result<RecordKey> refused = box->Append(Rec(Kind::kAnomaly, "s", "one too many"));
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.status().reason(), "outbox_key_exhausted");
  std::vector<Record> records = All(*box);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].payload, "kept");
  box.reset();
  EXPECT_EQ(StoredNonces(o.path), before);
}

TEST(Outbox, MalformedKeyFileIsRefusedWithItsReason) {
  testing::TempDir dir;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("key"), "not a key", 0600));
  OutboxOptions o = Options(dir, nullptr);
  o.key_file = dir.File("key");
  Result<std::unique_ptr<Outbox>> r = Outbox::Open(o);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("64 hex"), std::string_view::npos);
}

TEST(Outbox, RefusesAFileOfANewerFormatWithoutTouchingIt) {
  testing::TempDir dir;
  OutboxOptions o = Options(dir, nullptr);
  { OUTPOST_ASSERT_OK(Outbox::Open(o).status()); }
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto db, sqlite::Db::Open(o.path, {}));
    OUTPOST_ASSERT_OK(db->Exec("PRAGMA user_version=3"));
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string before, ReadFile(o.path));
  Result<std::unique_ptr<Outbox>> r = Outbox::Open(o);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("newer"), std::string_view::npos);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string after, ReadFile(o.path));
  EXPECT_EQ(before, after);
}

TEST(Outbox, RefusesAnotherApplicationsDatabaseAndAnotherNodesOutbox) {
  testing::TempDir dir;
  OutboxOptions o = Options(dir, nullptr);
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto db, sqlite::Db::Open(o.path, {}));
    OUTPOST_ASSERT_OK(db->Exec("CREATE TABLE t(x)"));
  }
  EXPECT_EQ(Outbox::Open(o).status().code(), StatusCode::kFailedPrecondition);
  o.path = dir.File("b.db");
  { OUTPOST_ASSERT_OK(Outbox::Open(o).status()); }
  o.node_id = "node-2";
  Result<std::unique_ptr<Outbox>> r = Outbox::Open(o);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("node-1"), std::string_view::npos);
}

int ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// The outbox holds what the site scored: its file, WAL and shared-memory file are the
// owner's alone whatever the umask, and one an older Outpost left looser is tightened.
TEST(Outbox, FilesAreTheOwnersAloneAndLooserOnesAreTightened) {
  testing::TempDir dir;
  FakeClock clock;
  const mode_t umask_was = ::umask(022);
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "pump", "x")));
    const std::string path = dir.File("outbox.db");
    EXPECT_EQ(ModeOf(path), 0600);
    EXPECT_EQ(ModeOf(path + "-wal"), 0600);
    EXPECT_EQ(ModeOf(path + "-shm"), 0600);
  }
  ASSERT_EQ(::chmod(dir.File("outbox.db").c_str(), 0644), 0);
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &clock)));
    EXPECT_EQ(ModeOf(dir.File("outbox.db")), 0600);
    EXPECT_EQ(ModeOf(dir.File("outbox.db-wal")), 0600);
    EXPECT_EQ(All(*box).size(), 1u);
  }
  ::umask(umask_was);
}

TEST(Outbox, KindNamesRoundTrip) {
  for (Kind k : kAllKinds) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(Kind back, ParseKind(KindName(k)));
    EXPECT_EQ(back, k);
  }
  EXPECT_EQ(ParseKind("anomalies").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace outpost::outbox
