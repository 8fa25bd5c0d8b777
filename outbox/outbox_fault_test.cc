// Fault tests of the outbox: I/O errors injected under SQLite (FileFaults), simulated power
// cuts, a full disk, a small bound, and damaged files. The invariant checked after every
// fault: each acknowledged record is present exactly once with its payload, seqs have no
// gaps, nothing damaged is handed out, and the store opens again.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "base/clock.h"
#include "base/file.h"
#include "base/sqlite/file_faults.h"
#include "base/testing/test_util.h"
#include "outbox/outbox.h"

namespace outpost::outbox {
namespace {

using sqlite::FileFaults;
using Op = FileFaults::Op;

OutboxOptions Options(const testing::TempDir& dir, FileFaults* faults = nullptr) {
  return OutboxOptions{
      .path = dir.File("outbox.db"), .site_id = "site-1", .node_id = "node-1", .faults = faults};
}

std::string PayloadFor(const std::string& stream, uint64_t n) {
  std::string p = stream + "-record-" + std::to_string(n) + "-";
  while (p.size() < 200) p += static_cast<char>('a' + (p.size() * 7 + n) % 26);
  return p;
}

// Whether `payload` is PayloadFor(stream, n) for some n.
bool IsTestPayload(const std::string& stream, const std::string& payload) {
  const std::string prefix = stream + "-record-";
  if (!payload.starts_with(prefix)) return false;
  const uint64_t n = std::strtoull(payload.c_str() + prefix.size(), nullptr, 10);
  return payload == PayloadFor(stream, n);
}

// What producers were told: key -> payload.
using Acked = std::map<std::pair<std::string, uint64_t>, std::string>;

// Opens the store without faults and checks the invariant. Returns the stored records.
std::vector<Record> CheckAfterReopen(const testing::TempDir& dir, const Acked& acked) {
  Result<std::unique_ptr<Outbox>> box = Outbox::Open(Options(dir));
  EXPECT_TRUE(box.ok()) << "the store must open after every fault: " << box.status().ToString();
  if (!box.ok()) return {};
  auto batch = (*box)->Lease({.max_records = 1000000, .max_bytes = uint64_t{1} << 40});
  EXPECT_TRUE(batch.ok()) << batch.status().ToString();
  if (!batch.ok()) return {};
  std::map<std::string, std::vector<uint64_t>> seqs;
  std::set<std::pair<std::string, uint64_t>> seen;
  for (const Record& r : batch->records) {
    EXPECT_TRUE(seen.insert({r.stream, r.seq}).second) << "duplicate " << r.stream << "/" << r.seq;
    if (r.stream == "_outbox") continue;
    seqs[r.stream].push_back(r.seq);
    // An acknowledged record holds the payload its producer was told was stored. Another
    // (its call failed after the commit, or was never answered) holds one the test made: a
    // failed asynchronous append takes no seq, so the appends after it in flight are stored
    // under seqs other than the ones their payloads name.
    auto told = acked.find({r.stream, r.seq});
    if (told != acked.end()) {
      EXPECT_EQ(r.payload, told->second) << "wrong payload for " << r.seq;
    } else {
      EXPECT_TRUE(IsTestPayload(r.stream, r.payload)) << "unknown payload at " << r.seq;
    }
  }
  for (const auto& [key, payload] : acked) {
    EXPECT_TRUE(seen.count(key)) << "acknowledged record " << key.first << "/" << key.second
                                 << " is missing";
  }
  for (auto& [stream, s] : seqs) {
    std::sort(s.begin(), s.end());
    for (size_t i = 0; i < s.size(); ++i) {
      EXPECT_EQ(s[i], i + 1) << "gap in stream " << stream;
      if (s[i] != i + 1) break;
    }
  }
  auto st = (*box)->Stats();
  EXPECT_TRUE(st.ok());
  if (st.ok()) {
    EXPECT_EQ(st->quarantined_records, 0u);
  }
  return batch->records;
}

// Appends to stream "s" until `n` records are acknowledged or an Append fails (for a reason
// other than a full store, unless `stop_when_full`). Records what was acknowledged.
Status AppendSome(Outbox& box, int n, Acked* acked, uint64_t* next) {
  for (int i = 0; i < n; ++i) {
    std::string payload = PayloadFor("s", *next);
    Result<RecordKey> key = box.Append({.kind = Kind::kAnomaly, .stream = "s", .payload = payload});
    if (!key.ok()) return key.status();
    EXPECT_EQ(key->seq, *next);
    (*acked)[{key->stream, key->seq}] = payload;
    ++*next;
  }
  return Status::Ok();
}

// AppendSome through AppendAsync: `n` records in flight at once on stream "s", each counted
// as acknowledged only when its completion says it is stored. Returns the first error.
Status AppendSomeAsync(Outbox& box, int n, Acked* acked, uint64_t* next) {
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0;
  Status first_error;
  const uint64_t first = *next;
  for (int i = 0; i < n; ++i) {
    std::string payload = PayloadFor("s", first + static_cast<uint64_t>(i));
    box.AppendAsync({.kind = Kind::kAnomaly, .stream = "s", .payload = payload},
                    [&, payload](Result<RecordKey> key) {
                      std::lock_guard<std::mutex> l(mu);
                      if (key.ok()) {
                        EXPECT_EQ(key->seq, *next);  // one producer's records keep its order
                        (*acked)[{key->stream, key->seq}] = payload;
                        ++*next;
                      } else if (first_error.ok()) {
                        first_error = key.status();
                      }
                      ++answered;
                      cv.notify_all();
                    });
  }
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return answered == n; });
  return first_error;
}

class SyncFailure : public ::testing::TestWithParam<int> {};

TEST_P(SyncFailure, FailsTheStoreIsNeverRetriedAndTheStoreRecoversOnReopen) {
  testing::TempDir dir;
  FileFaults faults;
  Acked acked;
  uint64_t next = 1;
  int64_t syncs_at_failure = 0;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &faults)));
    OUTPOST_ASSERT_OK(AppendSome(*box, 5, &acked, &next));
    faults.Inject({.op = Op::kSync, .error = GetParam(), .sticky = false});
    Result<RecordKey> lost =
        box->Append({.kind = Kind::kAnomaly, .stream = "s", .payload = PayloadFor("s", next)});
    ASSERT_FALSE(lost.ok());
    EXPECT_EQ(lost.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(lost.status().message().find("fsync"), std::string_view::npos)
        << lost.status().ToString();
    EXPECT_TRUE(faults.fired());
    syncs_at_failure = faults.calls(Op::kSync);
    // The store is failed although the disk would now work: every call is refused.
    Result<RecordKey> after =
        box->Append({.kind = Kind::kAnomaly, .stream = "s", .payload = PayloadFor("s", next + 1)});
    EXPECT_EQ(after.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(box->Lease({}).status().code(), StatusCode::kFailedPrecondition);
    OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
    EXPECT_TRUE(st.failed);
    EXPECT_NE(st.failure.find("reopened"), std::string::npos);
  }
  // Not even closing syncs again.
  EXPECT_EQ(faults.calls(Op::kSync), syncs_at_failure);
  std::vector<Record> stored = CheckAfterReopen(dir, acked);
  // The unacknowledged record may or may not be there; what follows continues without a gap.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      RecordKey k, box->Append({.kind = Kind::kAnomaly, .stream = "s", .payload = "x"}));
  EXPECT_EQ(k.seq, stored.size() + 1);
}

INSTANTIATE_TEST_SUITE_P(Errno, SyncFailure, ::testing::Values(EIO, ENOSPC),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return p.param == EIO ? "EIO" : "ENOSPC";
                         });

TEST(OutboxFaults, WriteErrorEioFailsTheStoreWithoutAcknowledging) {
  testing::TempDir dir;
  FileFaults faults;
  Acked acked;
  uint64_t next = 1;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &faults)));
    OUTPOST_ASSERT_OK(AppendSome(*box, 3, &acked, &next));
    faults.Inject({.op = Op::kWrite, .error = EIO, .sticky = false});
    Status s = AppendSome(*box, 1, &acked, &next);
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
    EXPECT_EQ(AppendSome(*box, 1, &acked, &next).code(), StatusCode::kFailedPrecondition);
  }
  CheckAfterReopen(dir, acked);
}

TEST(OutboxFaults, WriteErrorEnospcIsResourceExhaustedAndTheStoreGoesOn) {
  testing::TempDir dir;
  FileFaults faults;
  Acked acked;
  uint64_t next = 1;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &faults)));
    OUTPOST_ASSERT_OK(AppendSome(*box, 3, &acked, &next));
    faults.Inject({.op = Op::kWrite, .error = ENOSPC, .sticky = true});
    Status s = AppendSome(*box, 1, &acked, &next);
    EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
    EXPECT_EQ(AppendSome(*box, 1, &acked, &next).code(), StatusCode::kResourceExhausted);
    // Space comes back: no reopen needed, and the refused records took no seq.
    faults.Clear();
    OUTPOST_ASSERT_OK(AppendSome(*box, 3, &acked, &next));
    OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
    EXPECT_FALSE(st.failed);
    EXPECT_EQ(st.rejected_records, 2u);
  }
  EXPECT_EQ(CheckAfterReopen(dir, acked).size(), 6u);
}

// SQLite's I/O-error loop: fail the Nth write or sync (N = 0, 1, 2, ... until the workload
// runs without reaching it), with and without the failure persisting, then check.
struct SweepCase {
  Op op;
  int error;
  bool sticky;
};

const auto kSweepCases = ::testing::Values(
    SweepCase{Op::kSync, EIO, true}, SweepCase{Op::kSync, EIO, false},
    SweepCase{Op::kWrite, EIO, true}, SweepCase{Op::kWrite, ENOSPC, false},
    SweepCase{Op::kWrite, ENOSPC, true}, SweepCase{Op::kTruncate, EIO, true});

std::string SweepCaseName(const ::testing::TestParamInfo<SweepCase>& p) {
  const SweepCase& c = p.param;
  std::string name = c.op == Op::kSync ? "Sync" : c.op == Op::kWrite ? "Write" : "Truncate";
  name += c.error == EIO ? "Eio" : "Enospc";
  name += c.sticky ? "Persistent" : "Once";
  return name;
}

// Appends `n` records to stream "s", recording the acknowledged ones; returns the first error.
using Appender = Status (*)(Outbox&, int n, Acked* acked, uint64_t* next);

// The loop for one SweepCase: each store takes `rounds` calls of `append` for `batch` records.
// After a fatal error nothing is acknowledged any more, even if the disk is fine.
void SweepFailingCalls(const SweepCase& c, Appender append, int rounds, int batch) {
  for (int64_t n = 0;; ++n) {
    SCOPED_TRACE("failing call #" + std::to_string(n));
    testing::TempDir dir;
    FileFaults faults;
    faults.Inject({.op = c.op, .skip = n, .error = c.error, .sticky = c.sticky});
    Acked acked;
    uint64_t next = 1;
    bool refused_after_fatal = true;
    {
      Result<std::unique_ptr<Outbox>> box = Outbox::Open(Options(dir, &faults));
      if (box.ok()) {
        Status first_error;
        for (int i = 0; i < rounds; ++i) {
          const size_t before = acked.size();
          Status s = append(**box, batch, &acked, &next);
          if (!s.ok() && first_error.ok()) {
            first_error = s;
          } else if (!first_error.ok() && first_error.code() != StatusCode::kResourceExhausted &&
                     acked.size() > before) {
            refused_after_fatal = false;  // acknowledged after a fatal error
          }
        }
      }
    }
    EXPECT_TRUE(refused_after_fatal);
    bool fired = faults.fired();
    CheckAfterReopen(dir, acked);
    if (::testing::Test::HasFailure() || !fired) break;
  }
}

class ErrorSweep : public ::testing::TestWithParam<SweepCase> {};

TEST_P(ErrorSweep, NoFailedCallLosesAnAcknowledgedRecordOrBreaksTheStore) {
  SweepFailingCalls(GetParam(), AppendSome, /*rounds=*/8, /*batch=*/1);
}

INSTANTIATE_TEST_SUITE_P(Calls, ErrorSweep, kSweepCases, SweepCaseName);

// The same sweep with AppendAsync in use: four records in flight at a time.
class AsyncErrorSweep : public ::testing::TestWithParam<SweepCase> {};

TEST_P(AsyncErrorSweep, NoFailedCallLosesAnAcknowledgedRecordOrBreaksTheStore) {
  SweepFailingCalls(GetParam(), AppendSomeAsync, /*rounds=*/3, /*batch=*/4);
}

INSTANTIATE_TEST_SUITE_P(Calls, AsyncErrorSweep, kSweepCases, SweepCaseName);

// A power cut loses whatever the disk had not synced. Every acknowledged record survives it.
TEST(OutboxFaults, PowerCutKeepsEveryAcknowledgedRecord) {
  testing::TempDir dir;
  FileFaults faults;
  faults.SetTrackUnsynced(true);
  std::mutex mu;  // guards acked
  Acked acked;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &faults)));
    std::vector<std::thread> producers;
    for (int t = 0; t < 4; ++t) {
      producers.emplace_back([&, t] {
        std::string stream = "p" + std::to_string(t);
        for (uint64_t i = 1; i <= 40; ++i) {
          Result<RecordKey> k = box->Append(
              {.kind = Kind::kSample, .stream = stream, .payload = PayloadFor(stream, i)});
          ASSERT_TRUE(k.ok()) << k.status().ToString();
          std::lock_guard<std::mutex> l(mu);
          acked[{k->stream, k->seq}] = PayloadFor(stream, i);
        }
      });
    }
    for (auto& p : producers) p.join();
    OUTPOST_ASSERT_OK(faults.PowerLoss());
  }
  EXPECT_EQ(acked.size(), 160u);
  CheckAfterReopen(dir, acked);
}

TEST(OutboxFaults, AsyncSyncFailureIsAnsweredUnavailableAndTheStoreRefusesAfterwards) {
  testing::TempDir dir;
  FileFaults faults;
  Acked acked;
  uint64_t next = 1;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &faults)));
    OUTPOST_ASSERT_OK(AppendSomeAsync(*box, 5, &acked, &next));
    faults.Inject({.op = Op::kSync, .error = EIO, .sticky = false});
    Status lost = AppendSomeAsync(*box, 3, &acked, &next);
    EXPECT_EQ(lost.code(), StatusCode::kUnavailable) << lost.ToString();
    EXPECT_NE(lost.message().find("fsync"), std::string_view::npos) << lost.ToString();
    EXPECT_EQ(acked.size(), 5u);
    // Failed: refused before queuing, on the caller's thread.
    EXPECT_EQ(AppendSomeAsync(*box, 1, &acked, &next).code(), StatusCode::kFailedPrecondition);
  }
  CheckAfterReopen(dir, acked);
}

// The power cut with producers that keep several appends in flight.
TEST(OutboxFaults, PowerCutKeepsEveryRecordAcknowledgedToAnAsyncProducer) {
  testing::TempDir dir;
  FileFaults faults;
  faults.SetTrackUnsynced(true);
  std::mutex mu;  // guards acked
  Acked acked;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &faults)));
    std::vector<std::thread> producers;
    for (int t = 0; t < 4; ++t) {
      producers.emplace_back([&, t] {
        std::string stream = "p" + std::to_string(t);
        std::condition_variable cv;
        int answered = 0;
        for (uint64_t i = 1; i <= 40; ++i) {
          box->AppendAsync(
              {.kind = Kind::kSample, .stream = stream, .payload = PayloadFor(stream, i)},
              [&, i](Result<RecordKey> k) {
                std::lock_guard<std::mutex> l(mu);
                EXPECT_TRUE(k.ok()) << k.status().ToString();
                if (k.ok()) acked[{k->stream, k->seq}] = PayloadFor(stream, i);
                ++answered;
                cv.notify_all();
              });
        }
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [&] { return answered == 40; });
      });
    }
    for (auto& p : producers) p.join();
    OUTPOST_ASSERT_OK(faults.PowerLoss());
  }
  EXPECT_EQ(acked.size(), 160u);
  CheckAfterReopen(dir, acked);
}

// The negative control: on a disk whose sync does nothing, the same power cut loses
// acknowledged records, and the check above sees it.
TEST(OutboxFaults, PowerCutOnADiskThatIgnoresSyncLosesRecordsAndIsDetected) {
  testing::TempDir dir;
  FileFaults faults;
  faults.SetTrackUnsynced(true);
  faults.SetSyncIsNoop(true);
  Acked acked;
  uint64_t next = 1;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &faults)));
    OUTPOST_ASSERT_OK(AppendSome(*box, 20, &acked, &next));
    OUTPOST_ASSERT_OK(faults.PowerLoss());
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({.max_records = 1000}));
  EXPECT_LT(b.records.size(), acked.size());
}

TEST(OutboxFaults, FullDiskRefusesAppendsUntilSpaceReturnsWithoutAReopen) {
  testing::TempDir dir;
  FileFaults faults;
  Acked acked;
  uint64_t next = 1;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir, &faults)));
    OUTPOST_ASSERT_OK(AppendSome(*box, 1, &acked, &next));
    // A small disk, with 1 MiB left: far below the store's bound.
    uint64_t used = 0;
    for (const char* f : {"outbox.db", "outbox.db-wal"}) {
      Result<std::string> bytes = ReadFile(dir.File(f));
      if (bytes.ok()) used += bytes->size();
    }
    faults.SetDiskCapacity(used + (1 << 20));
    Status s;
    for (int i = 0; i < 5000 && s.ok(); ++i) s = AppendSome(*box, 1, &acked, &next);
    ASSERT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
    EXPECT_GT(acked.size(), 20u);
    // Reading goes on while the disk is full.
    OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
    EXPECT_FALSE(st.failed);
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto q, box->Query({.limit = 10}));
    EXPECT_EQ(q.size(), 10u);
    faults.SetDiskCapacity(0);
    OUTPOST_ASSERT_OK(AppendSome(*box, 5, &acked, &next));
  }
  CheckAfterReopen(dir, acked);
}

TEST(OutboxFaults, SmallBoundRefusesEveryProducerCleanlyWhenNothingMayBeEvicted) {
  testing::TempDir dir;
  OutboxOptions o = Options(dir);
  o.max_bytes = 32 * 1024;
  std::mutex mu;  // guards acked
  Acked acked;
  std::atomic<int> refused{0};
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    std::vector<std::thread> producers;
    for (int t = 0; t < 8; ++t) {
      producers.emplace_back([&, t] {
        std::string stream = "p" + std::to_string(t);
        for (uint64_t i = 1;; ++i) {
          Result<RecordKey> k = box->Append(
              {.kind = Kind::kAnomaly, .stream = stream, .payload = PayloadFor(stream, i)});
          if (!k.ok()) {
            EXPECT_EQ(k.status().code(), StatusCode::kResourceExhausted);
            ++refused;
            return;
          }
          std::lock_guard<std::mutex> l(mu);
          acked[{k->stream, k->seq}] = PayloadFor(stream, i);
        }
      });
    }
    for (auto& p : producers) p.join();
    OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
    EXPECT_LE(st.bytes, o.max_bytes);
    EXPECT_FALSE(st.failed);
  }
  EXPECT_EQ(refused.load(), 8);
  EXPECT_EQ(CheckAfterReopen(dir, acked).size(), acked.size());
}

// --- Damaged files. ---

constexpr int kRecords = 200;

// A closed store with kRecords records on stream "s" (checkpointed: no WAL).
void BuildStore(const testing::TempDir& dir, Acked* acked) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir)));
  uint64_t next = 1;
  OUTPOST_ASSERT_OK(AppendSome(*box, kRecords, acked, &next));
}

void FlipBit(const std::string& path, uint64_t offset, int bit) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char c;
  ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(offset)), 1);
  c ^= static_cast<unsigned char>(1u << bit);
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

bool HasDamagedCopy(const testing::TempDir& dir) {
  auto names = ListDirectory(dir.path());
  if (!names.ok()) return false;
  for (const std::string& n : *names) {
    if (n.find(".damaged-") != std::string::npos) return true;
  }
  return false;
}

TEST(OutboxCorruption, FlippedBitInARecordIsQuarantinedCountedAndNeverHandedOut) {
  testing::TempDir dir;
  Acked acked;
  BuildStore(dir, &acked);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string file, ReadFile(dir.File("outbox.db")));
  size_t at = file.find(PayloadFor("s", 42));
  ASSERT_NE(at, std::string::npos);
  FlipBit(dir.File("outbox.db"), at + 30, 3);

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto q, box->Query({.kind = Kind::kAnomaly, .limit = 1000}));
  EXPECT_EQ(q.size(), static_cast<size_t>(kRecords - 1));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({.max_records = 1000}));
  int events = 0;
  for (const Record& r : b.records) {
    if (r.kind == Kind::kEvent) {
      ++events;
      EXPECT_EQ(r.payload,
                "{\"type\":\"quarantine\",\"records\":1,\"reasons\":{\"checksum mismatch\":1}}");
      continue;
    }
    EXPECT_NE(r.seq, 42u);
    EXPECT_EQ(r.payload, PayloadFor("s", r.seq));
  }
  EXPECT_EQ(events, 1);
  EXPECT_EQ(b.records.size(), static_cast<size_t>(kRecords));  // 199 records and the event
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(st.quarantined_records, 1u);
}

TEST(OutboxCorruption, ScrubFindsDamageBeforeAnyoneReadsIt) {
  testing::TempDir dir;
  Acked acked;
  BuildStore(dir, &acked);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string file, ReadFile(dir.File("outbox.db")));
  for (int seq : {7, 150}) {
    size_t at = file.find(PayloadFor("s", static_cast<uint64_t>(seq)));
    ASSERT_NE(at, std::string::npos);
    FlipBit(dir.File("outbox.db"), at + 100, 0);
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ScrubReport report, box->Scrub());
  // Every record, and the quarantine event written on the way.
  EXPECT_EQ(report.records_checked, static_cast<uint64_t>(kRecords) + 1);
  EXPECT_EQ(report.quarantined, 2u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(ScrubReport again, box->Scrub());
  EXPECT_EQ(again.quarantined, 0u);
}

TEST(OutboxCorruption, TruncatedFileIsSalvagedKeepingWhatCanBeRead) {
  testing::TempDir dir;
  Acked acked;
  BuildStore(dir, &acked);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string file, ReadFile(dir.File("outbox.db")));
  ASSERT_EQ(::truncate(dir.File("outbox.db").c_str(), static_cast<off_t>(file.size() / 2)), 0);

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir)));
  EXPECT_TRUE(HasDamagedCopy(dir));
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({.max_records = 1000}));
  size_t kept = 0;
  bool salvage_event = false;
  for (const Record& r : b.records) {
    if (r.kind == Kind::kEvent) {
      salvage_event = r.payload.find("\"type\":\"salvage\"") != std::string::npos;
      continue;
    }
    ++kept;
    EXPECT_EQ(r.payload, PayloadFor("s", r.seq));
  }
  EXPECT_TRUE(salvage_event);
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, static_cast<size_t>(kRecords));
  // A seq handed out before the damage is never handed out again.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      RecordKey k, box->Append({.kind = Kind::kAnomaly, .stream = "s", .payload = "x"}));
  EXPECT_GT(k.seq, static_cast<uint64_t>(kRecords));
}

TEST(OutboxCorruption, DestroyedHeaderIsSetAsideAndTheStoreStartsAgain) {
  testing::TempDir dir;
  Acked acked;
  BuildStore(dir, &acked);
  int fd = ::open(dir.File("outbox.db").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  std::string garbage(100, 'Z');
  ASSERT_EQ(::pwrite(fd, garbage.data(), garbage.size(), 0), 100);
  ::close(fd);

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir)));
  EXPECT_TRUE(HasDamagedCopy(dir));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      RecordKey k, box->Append({.kind = Kind::kAnomaly, .stream = "s", .payload = "x"}));
  EXPECT_GT(k.seq, static_cast<uint64_t>(kRecords));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto events, box->Query({.kind = Kind::kEvent}));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].payload.find("\"streams_recovered\":false"), std::string::npos);
}

TEST(OutboxCorruption, InterruptedSalvageIsFinishedByTheNextOpen) {
  testing::TempDir dir;
  Acked acked;
  BuildStore(dir, &acked);
  // As if a salvage had written its marker and set the file aside, then the power failed.
  std::string damaged = dir.File("outbox.db.damaged-123");
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("outbox.db.salvage"), damaged + "\n"));
  ASSERT_EQ(::rename(dir.File("outbox.db").c_str(), damaged.c_str()), 0);

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(Options(dir)));
  EXPECT_FALSE(PathExists(dir.File("outbox.db.salvage")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto records, box->Query({.kind = Kind::kAnomaly, .limit = 1000}));
  EXPECT_EQ(records.size(), static_cast<size_t>(kRecords));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      RecordKey k, box->Append({.kind = Kind::kAnomaly, .stream = "s", .payload = "x"}));
  EXPECT_EQ(k.seq, static_cast<uint64_t>(kRecords) + 1);
}

TEST(OutboxCorruption, RandomDamageNeverHandsOutAWrongRecordOrReusesASeq) {
  testing::TempDir pristine;
  Acked acked;
  BuildStore(pristine, &acked);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string image, ReadFile(pristine.File("outbox.db")));
  for (uint32_t seed = 1; seed <= 100; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    std::string damaged = image;
    auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
    std::string what;
    switch (seed % 4) {
      case 0:  // flipped bits anywhere
        for (int i = 0; i < 1 + static_cast<int>(seed % 16); ++i) {
          damaged[pick(damaged.size())] ^= static_cast<char>(1 << pick(8));
        }
        break;
      case 1: {  // a zeroed 4 KiB page
        size_t page = pick(damaged.size() / 4096);
        std::fill(damaged.begin() + static_cast<long>(page * 4096),
                  damaged.begin() + static_cast<long>(page * 4096 + 4096), '\0');
        break;
      }
      case 2:  // truncated at a random offset
        damaged.resize(pick(damaged.size()));
        break;
      case 3: {  // a random 512-byte block of garbage
        size_t at = pick(damaged.size() - 512);
        for (size_t i = 0; i < 512; ++i) damaged[at + i] = static_cast<char>(pick(256));
        break;
      }
    }
    testing::TempDir dir;
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("outbox.db"), damaged));
    Result<std::unique_ptr<Outbox>> box = Outbox::Open(Options(dir));
    ASSERT_TRUE(box.ok()) << box.status().ToString();
    Result<LeasedBatch> leased = (*box)->Lease({.max_records = 1000});
    if (!leased.ok()) {
      // Damage the open-time check cannot see (an index that disagrees with its table) is
      // found on use: the store fails with DataLoss, and the next open salvages.
      ASSERT_EQ(leased.status().code(), StatusCode::kDataLoss) << leased.status().ToString();
      box = InternalError("closed");
      box = Outbox::Open(Options(dir));
      ASSERT_TRUE(box.ok()) << box.status().ToString();
      EXPECT_TRUE(HasDamagedCopy(dir));
      leased = (*box)->Lease({.max_records = 1000});
    }
    OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, std::move(leased));
    std::set<uint64_t> seen;
    for (const Record& r : b.records) {
      if (r.kind == Kind::kEvent) continue;
      ASSERT_EQ(r.stream, "s");
      ASSERT_TRUE(seen.insert(r.seq).second);
      ASSERT_GE(r.seq, 1u);
      ASSERT_LE(r.seq, static_cast<uint64_t>(kRecords));
      ASSERT_EQ(r.payload, PayloadFor("s", r.seq));
    }
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        RecordKey k, (*box)->Append({.kind = Kind::kAnomaly, .stream = "s", .payload = "x"}));
    EXPECT_GT(k.seq, static_cast<uint64_t>(kRecords));
  }
}

}  // namespace
}  // namespace outpost::outbox
