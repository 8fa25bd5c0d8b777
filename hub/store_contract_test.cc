// The contract of hub/store.h, run against both engines: SQLite in a temporary folder and
// PostgreSQL on a private cluster that this binary starts once (a gtest Environment). Each
// test gets a fresh database.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "hub/store.h"
#include "hub/testing/postgres_cluster.h"
#include "hub/testing/postgres_environment.h"

namespace outpost::hub {
namespace {

using ::outpost::testing::TempDir;
using testing::PostgresEnvironment;

// The cluster shared by every PostgreSQL test of this binary.
const ::testing::Environment* const kPostgresEnv =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment());

std::string Hex64(char c) { return std::string(64, c); }

HubRecord Rec(const std::string& site, const std::string& node, const std::string& stream,
              uint64_t seq, const std::string& kind = "anomaly", int64_t created_ms = 1000,
              std::string payload = "") {
  if (payload.empty()) payload = R"({"score":)" + std::to_string(seq) + "}";
  return HubRecord{.site_id = site,
                   .node_id = node,
                   .stream = stream,
                   .seq = seq,
                   .kind = kind,
                   .created_ms = created_ms,
                   .payload = payload};
}

std::vector<HubRecord> Recs(const std::string& site, const std::string& node,
                            const std::string& stream, uint64_t first, uint64_t count,
                            int64_t created_ms = 1000) {
  std::vector<HubRecord> out;
  for (uint64_t s = first; s < first + count; ++s) {
    out.push_back(Rec(site, node, stream, s, "anomaly", created_ms));
  }
  return out;
}

BatchKey KeyOf(const std::vector<HubRecord>& records, std::string sha = "") {
  BatchKey k{.site_id = records.front().site_id,
             .node_id = records.front().node_id,
             .stream = records.front().stream,
             .first_seq = records.front().seq,
             .last_seq = records.back().seq,
             .content_sha256 = sha.empty() ? Hex64('a') : sha};
  return k;
}

Site MakeSite(const std::string& id, const std::string& tenant = "acme") {
  return Site{.site_id = id, .tenant = tenant, .region = "eu", .created_ms = 5};
}

class StoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        url_, PostgresEnvironment::FreshDatabaseUrl(GetParam(), dir_.File("hub.db"), "contract"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(store_, OpenStore(url_));
    ASSERT_EQ(store_->engine(), GetParam());
  }

  void Reopen() {
    store_.reset();
    OUTPOST_ASSERT_OK_AND_ASSIGN(store_, OpenStore(url_));
  }

  // Runs SQL on the test's database with the engine's own command-line client.
  void RawSql(const std::string& sql) {
    RunResult r =
        GetParam() == "sqlite"
            ? RunProgram({"/usr/bin/sqlite3", url_.substr(7), sql})
            : RunProgram({"/usr/bin/psql", "-v", "ON_ERROR_STOP=1", "-q", url_, "-c", sql});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // PostgreSQL: puts back the records table of versions 3 and 4, rows kept, and drops the
  // tables of version 5 (STORE.md section 8), so that a test can pretend the database is
  // older than version 5. SQLite's records table did not change.
  void RecordsAsInVersionFour() {
    if (GetParam() != "postgresql") return;
    RawSql(
        "CREATE TABLE records_saved AS SELECT * FROM records; DROP TABLE records; DROP TABLE "
        "record_keys; DROP TABLE retention_exports; DROP TABLE retention_settled; DROP "
        "SEQUENCE retention_export_ids; CREATE TABLE records(id BIGINT PRIMARY KEY, tenant "
        "TEXT NOT NULL, site_id TEXT NOT NULL, node_id TEXT NOT NULL, stream TEXT NOT NULL, "
        "seq BIGINT NOT NULL, kind TEXT NOT NULL, created_ms BIGINT NOT NULL, received_ms "
        "BIGINT NOT NULL, payload TEXT NOT NULL, content_hash BYTEA NOT NULL, UNIQUE(site_id, "
        "node_id, stream, seq)); CREATE INDEX records_tenant_created ON records(tenant, "
        "created_ms); INSERT INTO records SELECT * FROM records_saved; DROP TABLE "
        "records_saved");
  }

  std::vector<HubRecord> All(const std::string& tenant = "acme") {
    std::vector<HubRecord> out;
    RecordQuery q{.tenant = tenant, .limit = 10'000};
    while (true) {
      Result<std::vector<HubRecord>> page = store_->QueryRecords(q);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok() || page->empty()) break;
      q.after_id = page->back().id;
      out.insert(out.end(), page->begin(), page->end());
    }
    return out;
  }

  TempDir dir_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContract, SitesAreCreatedReadUpdatedAndRevoked) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  EXPECT_EQ(store_->CreateSite(MakeSite("s1")).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetSite("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->CreateSite(MakeSite("")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateSite(MakeSite(std::string(300, 'x'))).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateSite(MakeSite("bad\xff")).code(), StatusCode::kInvalidArgument);

  OUTPOST_ASSERT_OK_AND_ASSIGN(Site s, store_->GetSite("s1"));
  EXPECT_EQ(s.tenant, "acme");
  EXPECT_EQ(s.region, "eu");
  EXPECT_EQ(s.created_ms, 5);
  EXPECT_EQ(s.credential_serial, "");
  EXPECT_FALSE(s.revoked);
  EXPECT_EQ(s.last_contact_ms, 0);

  OUTPOST_ASSERT_OK(store_->SetCredential("s1", "0a1b2c"));
  OUTPOST_ASSERT_OK(store_->TouchSite("s1", 777));
  OUTPOST_ASSERT_OK_AND_ASSIGN(s, store_->GetSite("s1"));
  EXPECT_EQ(s.credential_serial, "0a1b2c");
  EXPECT_EQ(s.last_contact_ms, 777);
  EXPECT_FALSE(s.revoked);
  OUTPOST_ASSERT_OK(store_->RevokeSite("s1"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(s, store_->GetSite("s1"));
  EXPECT_TRUE(s.revoked);

  // Names that could never be stored read as unknown on both engines.
  EXPECT_EQ(store_->GetSite("bad\xff").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetSite("").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->TouchSite("bad\xff", 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->AuditLines("acme", "bad\xff", 1).status().code(), StatusCode::kNotFound);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto head, store_->AuditHead("bad\xff", "n"));
  EXPECT_EQ(head.first, 0u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(bool has, store_->HasBatch(BatchKey{.site_id = "bad\xff"}));
  EXPECT_FALSE(has);
  EXPECT_EQ(store_->SetCredential("s1", "bad\xff").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->SetCredential("nope", "x").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->RevokeSite("nope").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->TouchSite("nope", 1).code(), StatusCode::kNotFound);
}

TEST_P(StoreContract, EnrolmentTokenIsUsedOnceAndExpires) {
  OUTPOST_ASSERT_OK(store_->PutEnrolmentToken(
      EnrolmentToken{.token_sha256 = Hex64('1'), .site_id = "s1", .expires_ms = 1000}));
  EXPECT_EQ(store_
                ->PutEnrolmentToken(
                    EnrolmentToken{.token_sha256 = Hex64('1'), .site_id = "s2", .expires_ms = 5000})
                .code(),
            StatusCode::kAlreadyExists);
  OUTPOST_ASSERT_OK(store_->PutEnrolmentToken(
      EnrolmentToken{.token_sha256 = Hex64('2'), .site_id = "s2", .expires_ms = 1000}));

  OUTPOST_ASSERT_OK_AND_ASSIGN(EnrolmentToken t, store_->ConsumeEnrolmentToken(Hex64('1'), 999));
  EXPECT_EQ(t.site_id, "s1");
  EXPECT_EQ(t.expires_ms, 1000);
  EXPECT_EQ(store_->ConsumeEnrolmentToken(Hex64('1'), 999).status().code(), StatusCode::kNotFound);
  // Expired at its expiry instant, and every time after.
  EXPECT_EQ(store_->ConsumeEnrolmentToken(Hex64('2'), 1000).status().code(),
            StatusCode::kDeadlineExceeded);
  EXPECT_EQ(store_->ConsumeEnrolmentToken(Hex64('2'), 2000).status().code(),
            StatusCode::kDeadlineExceeded);
  EXPECT_EQ(store_->ConsumeEnrolmentToken(Hex64('3'), 0).status().code(), StatusCode::kNotFound);
}

TEST_P(StoreContract, EnrolmentTokenRaceHasOneWinner) {
  OUTPOST_ASSERT_OK(store_->PutEnrolmentToken(
      EnrolmentToken{.token_sha256 = Hex64('7'), .site_id = "s1", .expires_ms = 1000}));
  std::atomic<int> won{0}, not_found{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      Result<EnrolmentToken> r = store_->ConsumeEnrolmentToken(Hex64('7'), 1);
      if (r.ok()) {
        ++won;
      } else if (r.status().code() == StatusCode::kNotFound) {
        ++not_found;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(not_found.load(), 7);
}

// Two stores on one database stand for two hub processes: each token of a batch is
// presented through both at once, by several requests each; it enrols exactly once.
TEST_P(StoreContract, EnrolmentTokenRaceAcrossTwoStoresHasOneWinner) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto other, OpenStore(url_));
  constexpr int kTokens = 20;
  constexpr int kRequests = 8;  // per token, half through each store
  for (int i = 0; i < kTokens; ++i) {
    OUTPOST_ASSERT_OK(store_->PutEnrolmentToken(EnrolmentToken{
        .token_sha256 = Hex64('a') + std::to_string(i), .site_id = "s1", .expires_ms = 1000}));
  }
  std::vector<std::atomic<int>> won(kTokens), not_found(kTokens);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < kRequests; ++r) {
    threads.emplace_back([&, r] {
      Store& store = r % 2 == 0 ? *store_ : *other;
      ++ready;
      while (ready.load() < kRequests) std::this_thread::yield();
      for (int i = 0; i < kTokens; ++i) {
        Result<EnrolmentToken> t = store.ConsumeEnrolmentToken(Hex64('a') + std::to_string(i), 1);
        if (t.ok()) {
          ++won[i];
        } else if (t.status().code() == StatusCode::kNotFound) {
          ++not_found[i];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kTokens; ++i) {
    EXPECT_EQ(won[i].load(), 1) << "token " << i;
    EXPECT_EQ(not_found[i].load(), kRequests - 1) << "token " << i;
    EXPECT_EQ(other->ConsumeEnrolmentToken(Hex64('a') + std::to_string(i), 1).status().code(),
              StatusCode::kNotFound);
  }
}

TEST_P(StoreContract, IngestStoresThenDuplicateIsNoOpThenConflictIsRefused) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  std::vector<HubRecord> recs = Recs("s1", "n1", "m", 1, 5);
  OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult r, store_->Ingest(KeyOf(recs), recs, {}, 4242));
  EXPECT_EQ(r.outcome, IngestOutcome::kStored);
  EXPECT_EQ(r.records_stored, 5u);
  EXPECT_EQ(r.records_duplicate, 0u);
  std::vector<HubRecord> got = All();
  ASSERT_EQ(got.size(), 5u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, i + 1);
    EXPECT_EQ(got[i].tenant, "acme");
    EXPECT_EQ(got[i].site_id, "s1");
    EXPECT_EQ(got[i].node_id, "n1");
    EXPECT_EQ(got[i].stream, "m");
    EXPECT_EQ(got[i].kind, "anomaly");
    EXPECT_EQ(got[i].created_ms, 1000);
    EXPECT_EQ(got[i].received_ms, 4242);
    EXPECT_EQ(got[i].payload, recs[i].payload);
    if (i > 0) {
      EXPECT_GT(got[i].id, got[i - 1].id);
    }
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(Site s, store_->GetSite("s1"));
  EXPECT_EQ(s.last_contact_ms, 4242);
  OUTPOST_ASSERT_OK_AND_ASSIGN(bool has, store_->HasBatch(KeyOf(recs)));
  EXPECT_TRUE(has);

  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->Ingest(KeyOf(recs), recs, {}, 5000));
  EXPECT_EQ(r.outcome, IngestOutcome::kDuplicate);
  EXPECT_EQ(r.records_stored, 0u);
  EXPECT_EQ(All().size(), 5u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(s, store_->GetSite("s1"));
  EXPECT_EQ(s.last_contact_ms, 5000);

  // Same key, other content: refused, nothing changes.
  std::vector<HubRecord> other = recs;
  other[2].payload = R"({"score":-1})";
  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->Ingest(KeyOf(other, Hex64('b')), other, {}, 6000));
  EXPECT_EQ(r.outcome, IngestOutcome::kConflict);
  EXPECT_EQ(r.records_stored, 0u);
  got = All();
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[2].payload, recs[2].payload);
  OUTPOST_ASSERT_OK_AND_ASSIGN(has, store_->HasBatch(KeyOf(other, Hex64('b'))));
  EXPECT_FALSE(has);
}

TEST_P(StoreContract, RecordLevelConflictStoresNothingAndOverlapCountsDuplicates) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  std::vector<HubRecord> first = Recs("s1", "n1", "m", 1, 10);
  OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult r, store_->Ingest(KeyOf(first), first, {}, 1));
  ASSERT_EQ(r.outcome, IngestOutcome::kStored);

  // A re-batched range 5..15 whose record 7 differs: nothing of it is stored.
  std::vector<HubRecord> overlap = Recs("s1", "n1", "m", 5, 11);
  overlap[2].payload = R"({"score":"changed"})";
  ASSERT_EQ(overlap[2].seq, 7u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->Ingest(KeyOf(overlap, Hex64('c')), overlap, {}, 2));
  EXPECT_EQ(r.outcome, IngestOutcome::kConflict);
  EXPECT_EQ(All().size(), 10u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(bool has, store_->HasBatch(KeyOf(overlap, Hex64('c'))));
  EXPECT_FALSE(has);
  // Also a record whose kind or created_ms differs is another record.
  std::vector<HubRecord> kind_differs = Recs("s1", "n1", "m", 10, 2);
  kind_differs[0].kind = "drift";
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      r, store_->Ingest(KeyOf(kind_differs, Hex64('e')), kind_differs, {}, 2));
  EXPECT_EQ(r.outcome, IngestOutcome::kConflict);
  std::vector<HubRecord> time_differs = Recs("s1", "n1", "m", 10, 2, /*created_ms=*/1001);
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      r, store_->Ingest(KeyOf(time_differs, Hex64('f')), time_differs, {}, 2));
  EXPECT_EQ(r.outcome, IngestOutcome::kConflict);
  EXPECT_EQ(All().size(), 10u);

  // The same range with the same content: the new records are stored, the old ones counted.
  std::vector<HubRecord> same = Recs("s1", "n1", "m", 5, 11);
  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->Ingest(KeyOf(same, Hex64('d')), same, {}, 3));
  EXPECT_EQ(r.outcome, IngestOutcome::kStored);
  EXPECT_EQ(r.records_stored, 5u);
  EXPECT_EQ(r.records_duplicate, 6u);
  std::vector<HubRecord> got = All();
  ASSERT_EQ(got.size(), 15u);
  std::set<uint64_t> seqs;
  for (const HubRecord& h : got) seqs.insert(h.seq);
  EXPECT_EQ(seqs.size(), 15u);
  EXPECT_EQ(*seqs.rbegin(), 15u);

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sites, store_->ListSites("acme"));
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].records, 15u);
}

TEST_P(StoreContract, InvalidBatchesAreRefusedWithNothingStored) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  std::vector<HubRecord> good = Recs("s1", "n1", "m", 1, 3);
  auto expect_invalid = [&](std::vector<HubRecord> recs, BatchKey key, StatusCode code) {
    Result<IngestResult> r = store_->Ingest(key, recs, {}, 1);
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  };
  {
    auto recs = good;
    recs[1].site_id = "s2";  // a record of another site
    expect_invalid(recs, KeyOf(good), StatusCode::kInvalidArgument);
  }
  {
    auto recs = good;
    recs[1].node_id = "n2";
    expect_invalid(recs, KeyOf(good), StatusCode::kInvalidArgument);
  }
  {
    auto key = KeyOf(good);
    key.last_seq = 2;  // seq 3 is outside the range
    expect_invalid(good, key, StatusCode::kInvalidArgument);
  }
  {
    auto recs = good;
    recs[2].seq = 2;  // a seq twice
    expect_invalid(recs, KeyOf(good), StatusCode::kInvalidArgument);
  }
  {
    auto key = KeyOf(good);
    key.first_seq = 9;
    key.last_seq = 3;
    expect_invalid(good, key, StatusCode::kInvalidArgument);
  }
  {
    auto recs = good;
    recs[0].payload = std::string((1 << 20) + 1, 'x');
    expect_invalid(recs, KeyOf(recs), StatusCode::kInvalidArgument);
  }
  {
    auto recs = good;
    recs[0].payload = "{\"bad\":\"\xc3\x28\"}";  // not UTF-8
    expect_invalid(recs, KeyOf(recs), StatusCode::kInvalidArgument);
  }
  {
    auto recs = good;
    recs[0].kind = "";
    expect_invalid(recs, KeyOf(recs), StatusCode::kInvalidArgument);
  }
  {
    std::vector<HubRecord> recs = {Rec("s1", "n1", "m", uint64_t{1} << 63)};
    expect_invalid(recs, KeyOf(recs), StatusCode::kInvalidArgument);
  }
  {
    auto recs = Recs("unknown", "n1", "m", 1, 3);
    expect_invalid(recs, KeyOf(recs), StatusCode::kNotFound);
  }
  EXPECT_TRUE(All().empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(bool has, store_->HasBatch(KeyOf(good)));
  EXPECT_FALSE(has);
  // And the good batch still goes in afterwards.
  OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult r, store_->Ingest(KeyOf(good), good, {}, 1));
  EXPECT_EQ(r.outcome, IngestOutcome::kStored);
}

TEST_P(StoreContract, AuditSegmentsMustContinueTheHead) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto head, store_->AuditHead("s1", "n1"));
  EXPECT_EQ(head.first, 0u);
  EXPECT_EQ(head.second, Hex64('0'));

  AuditSegment seg1{.node_id = "n1",
                    .from_seq = 0,
                    .from_hash = Hex64('0'),
                    .to_seq = 2,
                    .to_hash = Hex64('2'),
                    .lines = "{\"seq\":1}\n{\"seq\":2}\n"};
  std::vector<HubRecord> b1 = Recs("s1", "n1", "m", 1, 2);
  OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult r, store_->Ingest(KeyOf(b1), b1, seg1, 10));
  EXPECT_EQ(r.outcome, IngestOutcome::kStored);
  OUTPOST_ASSERT_OK_AND_ASSIGN(head, store_->AuditHead("s1", "n1"));
  EXPECT_EQ(head.first, 2u);
  EXPECT_EQ(head.second, Hex64('2'));

  // The duplicate of that batch is a no-op, its (now stale) segment included.
  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->Ingest(KeyOf(b1), b1, seg1, 11));
  EXPECT_EQ(r.outcome, IngestOutcome::kDuplicate);

  // A gap (or a replay of the first segment under a new batch): refused, nothing stored.
  std::vector<HubRecord> b2 = Recs("s1", "n1", "m", 3, 2);
  AuditSegment gap{.node_id = "n1",
                   .from_seq = 3,
                   .from_hash = Hex64('3'),
                   .to_seq = 4,
                   .to_hash = Hex64('4'),
                   .lines = "{\"seq\":4}\n"};
  Result<IngestResult> bad = store_->Ingest(KeyOf(b2), b2, gap, 12);
  EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(bad.status().message().find("audit_gap"), std::string_view::npos);
  bad = store_->Ingest(KeyOf(b2), b2, seg1, 12);
  EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
  AuditSegment wrong_hash = gap;
  wrong_hash.from_seq = 2;  // right seq, wrong hash
  bad = store_->Ingest(KeyOf(b2), b2, wrong_hash, 12);
  EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(All().size(), 2u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(bool has, store_->HasBatch(KeyOf(b2)));
  EXPECT_FALSE(has);
  OUTPOST_ASSERT_OK_AND_ASSIGN(head, store_->AuditHead("s1", "n1"));
  EXPECT_EQ(head.first, 2u);

  AuditSegment seg2{.node_id = "n1",
                    .from_seq = 2,
                    .from_hash = Hex64('2'),
                    .to_seq = 3,
                    .to_hash = Hex64('3'),
                    .lines = "{\"seq\":3}\n"};
  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->Ingest(KeyOf(b2), b2, seg2, 13));
  EXPECT_EQ(r.outcome, IngestOutcome::kStored);
  OUTPOST_ASSERT_OK_AND_ASSIGN(head, store_->AuditHead("s1", "n1"));
  EXPECT_EQ(head.first, 3u);
  // Heads are per node.
  OUTPOST_ASSERT_OK_AND_ASSIGN(head, store_->AuditHead("s1", "n2"));
  EXPECT_EQ(head.first, 0u);

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto lines, store_->AuditLines("acme", "s1", 100));
  EXPECT_EQ(lines, (std::vector<std::string>{"{\"seq\":1}", "{\"seq\":2}", "{\"seq\":3}"}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(lines, store_->AuditLines("acme", "s1", 2));
  EXPECT_EQ(lines.size(), 2u);
  EXPECT_EQ(store_->AuditLines("acme", "unknown", 10).status().code(), StatusCode::kNotFound);
}

TEST_P(StoreContract, AnotherTenantsDataIsInvisible) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("a1", "acme")));
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("b1", "globex")));
  AuditSegment seg{.node_id = "n1",
                   .from_seq = 0,
                   .from_hash = Hex64('0'),
                   .to_seq = 1,
                   .to_hash = Hex64('1'),
                   .lines = "{\"globex\":1}\n"};
  std::vector<HubRecord> ra = Recs("a1", "n1", "m", 1, 3);
  std::vector<HubRecord> rb = Recs("b1", "n1", "m", 1, 4);
  OUTPOST_ASSERT_OK(store_->Ingest(KeyOf(ra), ra, {}, 1));
  OUTPOST_ASSERT_OK(store_->Ingest(KeyOf(rb), rb, seg, 1));
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(NodeStatus{.site_id = "b1", .node_id = "n1"}, 1));

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sites, store_->ListSites("acme"));
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].site.site_id, "a1");
  EXPECT_TRUE(sites[0].nodes.empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(sites, store_->ListSites("nobody"));
  EXPECT_TRUE(sites.empty());
  // One site by name: another tenant's is answered as an unknown one.
  OUTPOST_ASSERT_OK_AND_ASSIGN(SiteSummary one, store_->GetSiteSummary("globex", "b1"));
  EXPECT_EQ(one.site.site_id, "b1");
  EXPECT_EQ(one.records, 4u);
  ASSERT_EQ(one.nodes.size(), 1u);
  EXPECT_EQ(one.nodes[0].node_id, "n1");
  for (const std::string& unknown : {std::string("b1"), std::string("zz"), std::string(300, 'x')}) {
    Status refused = store_->GetSiteSummary("acme", unknown).status();
    EXPECT_EQ(refused.code(), StatusCode::kNotFound) << unknown;
    EXPECT_NE(refused.message().find("site_not_found"), std::string_view::npos)
        << refused.ToString();
  }

  std::vector<HubRecord> got = All("acme");
  ASSERT_EQ(got.size(), 3u);
  for (const HubRecord& h : got) EXPECT_EQ(h.site_id, "a1");
  // Naming the other tenant's site does not help, alone or in a list.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      got, store_->QueryRecords(RecordQuery{.tenant = "acme", .site_id = "b1"}));
  EXPECT_TRUE(got.empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      got, store_->QueryRecords(RecordQuery{.tenant = "acme", .site_ids = {"b1", "a1", "zz"}}));
  ASSERT_EQ(got.size(), 3u);
  for (const HubRecord& h : got) EXPECT_EQ(h.site_id, "a1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      got, store_->QueryRecords(RecordQuery{.tenant = "globex", .site_ids = {"b1", "a1"}}));
  EXPECT_EQ(got.size(), 4u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto buckets,
                               store_->CountRecords(CountQuery{.tenant = "acme", .site_id = "b1"}));
  EXPECT_TRUE(buckets.empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(buckets, store_->CountRecords(CountQuery{.tenant = "acme"}));
  ASSERT_EQ(buckets.size(), 1u);
  EXPECT_EQ(buckets[0].count, 3u);
  EXPECT_EQ(store_->AuditLines("acme", "b1", 10).status().code(), StatusCode::kNotFound);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto lines, store_->AuditLines("globex", "b1", 10));
  EXPECT_EQ(lines.size(), 1u);
  EXPECT_EQ(store_->QueryRecords(RecordQuery{}).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreContract, QueriesFilterAndPageWithCursors) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s2")));
  // 12 records: kinds alternate, streams by thirds, created 1000..12000.
  for (const std::string site : {"s1", "s2"}) {
    for (const std::string stream : {"m1", "m2"}) {
      std::vector<HubRecord> recs;
      for (uint64_t s = 1; s <= 3; ++s) {
        recs.push_back(Rec(site, "n1", stream, s, s % 2 == 1 ? "anomaly" : "drift",
                           static_cast<int64_t>(s) * 1000 + (stream == "m2" ? 500 : 0)));
      }
      OUTPOST_ASSERT_OK(store_->Ingest(KeyOf(recs), recs, {}, 1));
    }
  }
  auto count = [&](RecordQuery q) {
    q.tenant = "acme";
    Result<std::vector<HubRecord>> r = store_->QueryRecords(q);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->size() : size_t{999};
  };
  EXPECT_EQ(count({}), 12u);
  EXPECT_EQ(count({.site_id = "s1"}), 6u);
  EXPECT_EQ(count({.kind = "drift"}), 4u);
  EXPECT_EQ(count({.stream = "m2"}), 6u);
  EXPECT_EQ(count({.site_id = "s2", .kind = "anomaly", .stream = "m1"}), 2u);
  EXPECT_EQ(count({.since_ms = 2000}), 8u);  // 2000, 2500, 3000, 3500 x2 sites
  EXPECT_EQ(count({.since_ms = 2000, .until_ms = 3000}), 4u);
  EXPECT_EQ(count({.limit = 5}), 5u);
  EXPECT_EQ(count({.limit = 0}), 0u);

  // Pages of 5 cover every record once, in id order.
  std::vector<int64_t> ids;
  RecordQuery q{.tenant = "acme", .limit = 5};
  for (int page = 0; page < 10; ++page) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto rows, store_->QueryRecords(q));
    if (rows.empty()) break;
    EXPECT_LE(rows.size(), 5u);
    for (const HubRecord& h : rows) ids.push_back(h.id);
    q.after_id = rows.back().id;
  }
  ASSERT_EQ(ids.size(), 12u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), 12u);
}

TEST_P(StoreContract, CountsRecordsPerBucketSiteAndKind) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s2")));
  std::vector<HubRecord> a = {
      Rec("s1", "n", "m", 1, "anomaly", 0), Rec("s1", "n", "m", 2, "anomaly", 999),
      Rec("s1", "n", "m", 3, "drift", 1000), Rec("s1", "n", "m", 4, "anomaly", 2500),
      Rec("s1", "n", "m", 5, "anomaly", -1500)};
  std::vector<HubRecord> b = {Rec("s2", "n", "m", 1, "anomaly", 100)};
  OUTPOST_ASSERT_OK(store_->Ingest(KeyOf(a), a, {}, 1));
  OUTPOST_ASSERT_OK(store_->Ingest(KeyOf(b), b, {}, 1));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto buckets,
      store_->CountRecords(CountQuery{.tenant = "acme", .since_ms = -10'000, .bucket_ms = 1000}));
  std::vector<std::tuple<int64_t, std::string, std::string, uint64_t>> got;
  for (const CountBucket& c : buckets) got.emplace_back(c.start_ms, c.site_id, c.kind, c.count);
  EXPECT_EQ(got, (decltype(got){{-2000, "s1", "anomaly", 1},
                                {0, "s1", "anomaly", 2},
                                {0, "s2", "anomaly", 1},
                                {1000, "s1", "drift", 1},
                                {2000, "s1", "anomaly", 1}}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      buckets, store_->CountRecords(
                   CountQuery{.tenant = "acme", .kind = "anomaly", .bucket_ms = 3'600'000}));
  ASSERT_EQ(buckets.size(), 2u);  // since_ms 0 drops the negative one
  EXPECT_EQ(buckets[0].count, 3u);
  EXPECT_EQ(buckets[1].count, 1u);
  EXPECT_EQ(store_->CountRecords(CountQuery{.tenant = "acme", .bucket_ms = 999}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(StoreContract, ModelRegistry) {
  ModelEntry v1{.name = "pump",
                .version = 1,
                .metrics_json = R"({"auc":0.9})",
                .lineage_json = R"({"parent":0})",
                .artifact_path = "/m/1",
                .created_ms = 10};
  ModelEntry v2 = v1;
  v2.version = 2;
  v2.created_ms = 20;
  OUTPOST_ASSERT_OK(store_->RegisterModel(v1));
  OUTPOST_ASSERT_OK(store_->RegisterModel(v2));
  OUTPOST_ASSERT_OK(store_->RegisterModel(ModelEntry{.name = "fan", .version = 7}));
  EXPECT_EQ(store_->RegisterModel(v1).code(), StatusCode::kAlreadyExists);
  ModelEntry bad = v1;
  bad.version = 3;
  bad.state = "shipped";
  EXPECT_EQ(store_->RegisterModel(bad).code(), StatusCode::kInvalidArgument);

  OUTPOST_ASSERT_OK(store_->SetModelState("pump", 2, "approved"));
  EXPECT_EQ(store_->SetModelState("pump", 9, "approved").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->SetModelState("pump", 2, "nonsense").code(), StatusCode::kInvalidArgument);

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto models, store_->ListModels("pump"));
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].version, 2);
  EXPECT_EQ(models[0].state, "approved");
  EXPECT_EQ(models[1].version, 1);
  EXPECT_EQ(models[1].state, "candidate");
  EXPECT_EQ(models[1].metrics_json, v1.metrics_json);
  EXPECT_EQ(models[1].lineage_json, v1.lineage_json);
  EXPECT_EQ(models[1].artifact_path, "/m/1");
  EXPECT_EQ(models[1].created_ms, 10);
  OUTPOST_ASSERT_OK_AND_ASSIGN(models, store_->ListModels(""));
  ASSERT_EQ(models.size(), 3u);
  EXPECT_EQ(models[0].name, "fan");
  OUTPOST_ASSERT_OK_AND_ASSIGN(models, store_->ListModels("none"));
  EXPECT_TRUE(models.empty());
}

// The registry keeps a version's model file with its entry, byte for byte (any hub sharing
// the store releases it); an entry registered without one answers empty.
TEST_P(StoreContract, ModelFilesAreKeptWithTheirEntries) {
  std::string model = "{\"learner\":{}}";
  for (int i = 0; i < 256; ++i) model.push_back(static_cast<char>(i));  // any byte, NUL too
  model += std::string(3 << 20, 'x');
  ModelEntry v1{
      .name = "pump", .version = 1, .artifact_path = "/gone/model.json", .artifact = model};
  OUTPOST_ASSERT_OK(store_->RegisterModel(v1));
  OUTPOST_ASSERT_OK(store_->RegisterModel(ModelEntry{.name = "pump", .version = 2}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string got, store_->GetModelArtifact("pump", 1));
  EXPECT_TRUE(got == model) << got.size();
  OUTPOST_ASSERT_OK_AND_ASSIGN(got, store_->GetModelArtifact("pump", 2));
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(store_->GetModelArtifact("pump", 3).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetModelArtifact("../x", 1).status().code(), StatusCode::kNotFound);
  // The list does not carry the bytes.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto models, store_->ListModels("pump"));
  ASSERT_EQ(models.size(), 2u);
  EXPECT_TRUE(models[1].artifact.empty());
  // Over 256 MiB is refused and nothing is registered.
  ModelEntry huge{.name = "pump", .version = 3, .artifact = std::string((256 << 20) + 1, 'y')};
  EXPECT_EQ(store_->RegisterModel(huge).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetModelArtifact("pump", 3).status().code(), StatusCode::kNotFound);
}

// A rollout's document is written only at the revision its writer read: a second writer
// that read the same revision is refused and changes nothing.
TEST_P(StoreContract, HubAuditLinesAreKeptInArrivalOrderAndReadPerTenant) {
  auto entry = [](std::string tenant, std::string event, int n) {
    return HubAuditEntry{.time_ms = 1000 + n,
                         .tenant = std::move(tenant),
                         .event = std::move(event),
                         .line = R"({"n":)" + std::to_string(n) + "}"};
  };
  OUTPOST_ASSERT_OK(store_->AppendHubAudit(entry("acme", "batch_refused", 1)));
  OUTPOST_ASSERT_OK(store_->AppendHubAudit(entry("other", "rollout_abort", 2)));
  OUTPOST_ASSERT_OK(store_->AppendHubAudit(entry("acme", "rollout_abort", 3)));
  OUTPOST_ASSERT_OK(store_->AppendHubAudit(entry("acme", "batch_refused", 4)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto all, store_->ListHubAudit("acme", 0, "", 100));
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].line, R"({"n":1})");
  EXPECT_EQ(all[1].line, R"({"n":3})");
  EXPECT_EQ(all[2].line, R"({"n":4})");
  EXPECT_LT(all[0].id, all[1].id);
  EXPECT_LT(all[1].id, all[2].id);
  EXPECT_EQ(all[1].time_ms, 1003);
  EXPECT_EQ(all[1].event, "rollout_abort");
  EXPECT_EQ(all[1].tenant, "acme");
  // Paged after an id, and by event.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto page, store_->ListHubAudit("acme", all[0].id, "", 1));
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].id, all[1].id);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto refused, store_->ListHubAudit("acme", 0, "batch_refused", 100));
  ASSERT_EQ(refused.size(), 2u);
  EXPECT_EQ(refused[1].line, R"({"n":4})");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto none, store_->ListHubAudit("nobody", 0, "", 100));
  EXPECT_TRUE(none.empty());
  // Bad entries are refused and change nothing.
  for (const HubAuditEntry& bad :
       {entry("acme", "", 5), entry("acme", "Bad-Event", 6), entry(std::string(129, 't'), "x", 7),
        HubAuditEntry{.tenant = "acme", .event = "x", .line = ""},
        HubAuditEntry{.tenant = "acme", .event = "x", .line = "a\nb"},
        HubAuditEntry{
            .tenant = "acme", .event = "x", .line = std::string(kMaxHubAuditLineBytes + 1, 'a')}}) {
    EXPECT_EQ(store_->AppendHubAudit(bad).code(), StatusCode::kInvalidArgument) << bad.event;
  }
  EXPECT_EQ(store_->ListHubAudit("acme", 0, "Bad", 10).status().code(),
            StatusCode::kInvalidArgument);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto after, store_->ListHubAudit("acme", 0, "", 100));
  EXPECT_EQ(after.size(), 3u);
}

TEST_P(StoreContract, RolloutsAreWrittenOnlyAtTheRevisionTheWriterRead) {
  RolloutRow row{.model = "pump",
                 .model_version = 4,
                 .tenant = "acme",
                 .doc = R"({"state":"rolling"})",
                 .created_ms = 100,
                 .updated_ms = 100};
  OUTPOST_ASSERT_OK_AND_ASSIGN(int64_t revision, store_->PutRollout(row, 0));
  EXPECT_EQ(revision, 1);
  // A second creation finds the row.
  Result<int64_t> again = store_->PutRollout(row, 0);
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("rollout_changed"), std::string_view::npos);
  row.doc = R"({"state":"paused"})";
  row.updated_ms = 200;
  OUTPOST_ASSERT_OK_AND_ASSIGN(revision, store_->PutRollout(row, 1));
  EXPECT_EQ(revision, 2);
  // A writer that read revision 1 is refused; the row stays as the first writer left it.
  row.doc = R"({"state":"aborted"})";
  EXPECT_EQ(store_->PutRollout(row, 1).status().code(), StatusCode::kFailedPrecondition);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto got, store_->GetRollout("pump", 4));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->doc, R"({"state":"paused"})");
  EXPECT_EQ(got->revision, 2);
  EXPECT_EQ(got->created_ms, 100);
  EXPECT_EQ(got->updated_ms, 200);
  EXPECT_EQ(got->tenant, "acme");
  // Any revision: replaced whatever it was.
  OUTPOST_ASSERT_OK_AND_ASSIGN(revision, store_->PutRollout(row, kAnyRolloutRevision));
  EXPECT_EQ(revision, 3);
  OUTPOST_ASSERT_OK(store_
                        ->PutRollout({.model = "pump",
                                      .model_version = 5,
                                      .tenant = "acme",
                                      .doc = "{}",
                                      .created_ms = 300,
                                      .updated_ms = 300},
                                     kAnyRolloutRevision)
                        .status());
  OUTPOST_ASSERT_OK(store_
                        ->PutRollout({.model = "fan",
                                      .model_version = 1,
                                      .tenant = "globex",
                                      .doc = "{}",
                                      .created_ms = 200,
                                      .updated_ms = 200},
                                     0)
                        .status());
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto acme, store_->ListRollouts("acme", 10));
  ASSERT_EQ(acme.size(), 2u);
  EXPECT_EQ(acme[0].model_version, 5);  // newest first
  EXPECT_EQ(acme[1].model_version, 4);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto all, store_->ListRollouts(std::nullopt, 2));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].model, "fan");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto none, store_->GetRollout("pump", 9));
  EXPECT_FALSE(none.has_value());
  // Bad input is refused before anything is written.
  row.model = "../pump";
  EXPECT_EQ(store_->PutRollout(row, kAnyRolloutRevision).status().code(),
            StatusCode::kInvalidArgument);
  row.model = "pump";
  row.doc = std::string(kMaxRolloutDocBytes + 1, ' ');
  EXPECT_EQ(store_->PutRollout(row, kAnyRolloutRevision).status().code(),
            StatusCode::kInvalidArgument);
  OUTPOST_ASSERT_OK_AND_ASSIGN(got, store_->GetRollout("pump", 4));
  EXPECT_EQ(got->revision, 3);
}

// The release bundles every hub of the store serves: kept whole, replaced when a version is
// released again, listed without their bytes.
TEST_P(StoreContract, ReleaseBundlesAreKeptWholeAndReplaced) {
  std::string bundle((33 << 20) + 7, '\0');  // read back in three pieces
  for (size_t i = 0; i < bundle.size(); i += 4096) bundle[i] = static_cast<char>(i / 4096);
  OUTPOST_ASSERT_OK(store_->PutReleaseBundle("pump-3.bundle", bundle, 10));
  OUTPOST_ASSERT_OK(store_->PutReleaseBundle("fan-1.bundle", "small", 11));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto listed, store_->ListReleaseBundles());
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "fan-1.bundle");
  EXPECT_EQ(listed[1].name, "pump-3.bundle");
  EXPECT_EQ(listed[1].bytes, bundle.size());
  EXPECT_EQ(listed[1].sha256.size(), 64u);
  EXPECT_EQ(listed[1].created_ms, 10);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string got, store_->GetReleaseBundle("pump-3.bundle"));
  EXPECT_TRUE(got == bundle) << got.size();
  // Released again: the new bytes replace the old.
  OUTPOST_ASSERT_OK(store_->PutReleaseBundle("pump-3.bundle", "again", 12));
  OUTPOST_ASSERT_OK_AND_ASSIGN(got, store_->GetReleaseBundle("pump-3.bundle"));
  EXPECT_EQ(got, "again");
  OUTPOST_ASSERT_OK_AND_ASSIGN(listed, store_->ListReleaseBundles());
  EXPECT_NE(listed[1].sha256, std::string(64, '0'));
  EXPECT_EQ(listed[1].bytes, 5u);
  EXPECT_EQ(store_->GetReleaseBundle("pump-4.bundle").status().code(), StatusCode::kNotFound);
  for (const char* bad : {"pump.bundle", "../pump-3.bundle", "Pump-3.bundle", "pump-3.tar",
                          "pump-x.bundle", "-3.bundle"}) {
    EXPECT_EQ(store_->PutReleaseBundle(bad, "x", 1).code(), StatusCode::kInvalidArgument) << bad;
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(listed, store_->ListReleaseBundles());
  EXPECT_EQ(listed.size(), 2u);
}

TEST_P(StoreContract, NodeStatusKeepsTheLatestReportPerNode) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  NodeStatus a{.site_id = "s1",
               .node_id = "a",
               .reported_ms = 100,
               .backlog_records = 5,
               .backlog_bytes = 500,
               .autonomy_days = 1.0 / 3.0,
               .models_json = R"([{"name":"pump","version":"2","state":"AVAILABLE"}])"};
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(a, 1000));
  NodeStatus newer = a;
  newer.reported_ms = 200;
  newer.backlog_records = 7;
  newer.autonomy_days.reset();
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(newer, 2000));
  NodeStatus late = a;  // arrives after, but was reported before
  late.reported_ms = 150;
  late.backlog_records = 99;
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(late, 3000));
  NodeStatus b{.site_id = "s1", .node_id = "b", .reported_ms = 50, .autonomy_days = 2.5};
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(b, 4000));

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sites, store_->ListSites("acme"));
  ASSERT_EQ(sites.size(), 1u);
  ASSERT_EQ(sites[0].nodes.size(), 2u);
  // The site read alone has the same nodes.
  OUTPOST_ASSERT_OK_AND_ASSIGN(SiteSummary alone, store_->GetSiteSummary("acme", "s1"));
  ASSERT_EQ(alone.nodes.size(), 2u);
  EXPECT_EQ(alone.nodes[0].backlog_records, 7u);
  EXPECT_EQ(alone.nodes[1].node_id, "b");
  const NodeStatus& na = sites[0].nodes[0];
  EXPECT_EQ(na.node_id, "a");
  EXPECT_EQ(na.reported_ms, 200);
  EXPECT_EQ(na.received_ms, 2000);
  EXPECT_EQ(na.backlog_records, 7u);
  EXPECT_EQ(na.backlog_bytes, 500u);
  EXPECT_FALSE(na.autonomy_days.has_value());
  EXPECT_EQ(na.models_json, a.models_json);
  const NodeStatus& nb = sites[0].nodes[1];
  EXPECT_EQ(nb.node_id, "b");
  ASSERT_TRUE(nb.autonomy_days.has_value());
  EXPECT_EQ(*nb.autonomy_days, 2.5);
  EXPECT_EQ(nb.received_ms, 4000);

  NodeStatus nan = a;
  nan.autonomy_days = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(store_->PutNodeStatus(nan, 1).code(), StatusCode::kInvalidArgument);
  NodeStatus bad_basis = a;
  bad_basis.autonomy_basis = "Not Enough";
  EXPECT_EQ(store_->PutNodeStatus(bad_basis, 1).code(), StatusCode::kInvalidArgument);
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(a, 5000));  // reported 100 < 200: ignored
  newer.reported_ms = 300;
  newer.autonomy_days = 1.0 / 3.0;
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(newer, 6000));
  OUTPOST_ASSERT_OK_AND_ASSIGN(sites, store_->ListSites("acme"));
  ASSERT_TRUE(sites[0].nodes[0].autonomy_days.has_value());
  EXPECT_EQ(*sites[0].nodes[0].autonomy_days, 1.0 / 3.0);  // exact round trip
  EXPECT_EQ(sites[0].nodes[0].reported_ms, 300);
}

TEST_P(StoreContract, FleetSummaryCountsRecordsOnce) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s2")));
  std::vector<HubRecord> r1 = Recs("s1", "n", "m", 1, 4, 7000);
  r1[2].created_ms = 9000;
  OUTPOST_ASSERT_OK(store_->Ingest(KeyOf(r1), r1, {}, 100));
  OUTPOST_ASSERT_OK(store_->Ingest(KeyOf(r1), r1, {}, 200));  // duplicate
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sites, store_->ListSites("acme"));
  ASSERT_EQ(sites.size(), 2u);
  EXPECT_EQ(sites[0].site.site_id, "s1");
  EXPECT_EQ(sites[0].records, 4u);
  EXPECT_EQ(sites[0].newest_record_ms, 9000);
  EXPECT_EQ(sites[0].site.last_contact_ms, 200);
  EXPECT_EQ(sites[1].records, 0u);
  EXPECT_FALSE(sites[1].newest_record_ms.has_value());
}

TEST_P(StoreContract, EverythingSurvivesCloseAndReopen) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  OUTPOST_ASSERT_OK(store_->PutEnrolmentToken(
      EnrolmentToken{.token_sha256 = Hex64('9'), .site_id = "s1", .expires_ms = 100}));
  AuditSegment seg{.node_id = "n1",
                   .from_seq = 0,
                   .from_hash = Hex64('0'),
                   .to_seq = 1,
                   .to_hash = Hex64('1'),
                   .lines = "{}\n"};
  std::vector<HubRecord> recs = Recs("s1", "n1", "m", 1, 3);
  OUTPOST_ASSERT_OK(store_->Ingest(KeyOf(recs), recs, seg, 50));
  OUTPOST_ASSERT_OK(
      store_->PutNodeStatus(NodeStatus{.site_id = "s1", .node_id = "n1", .reported_ms = 9}, 60));
  OUTPOST_ASSERT_OK(store_->RegisterModel(ModelEntry{.name = "pump", .version = 1}));

  Reopen();
  OUTPOST_ASSERT_OK_AND_ASSIGN(Site s, store_->GetSite("s1"));
  EXPECT_EQ(s.last_contact_ms, 50);
  EXPECT_EQ(All().size(), 3u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto head, store_->AuditHead("s1", "n1"));
  EXPECT_EQ(head.first, 1u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sites, store_->ListSites("acme"));
  ASSERT_EQ(sites[0].nodes.size(), 1u);
  EXPECT_EQ(sites[0].records, 3u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto models, store_->ListModels("pump"));
  EXPECT_EQ(models.size(), 1u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult r, store_->Ingest(KeyOf(recs), recs, seg, 70));
  EXPECT_EQ(r.outcome, IngestOutcome::kDuplicate);
  OUTPOST_ASSERT_OK(store_->ConsumeEnrolmentToken(Hex64('9'), 1));
}

// Ping answers while the database does; PostgreSQL's is Unavailable while the database
// refuses connections (every open one cut), reads and writes nothing, and answers again after.
TEST_P(StoreContract, PingFollowsTheDatabase) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  OUTPOST_ASSERT_OK(store_->Ping());
  OUTPOST_ASSERT_OK(store_->Ping());
  if (GetParam() != "postgresql") GTEST_SKIP() << "an SQLite file has no server to lose";
  const std::string database = url_.substr(url_.rfind('/') + 1);
  auto admin = [&](const std::string& sql) {
    RunResult r = RunProgram({"/usr/bin/psql", "-v", "ON_ERROR_STOP=1", "-q",
                              PostgresEnvironment::cluster()->url(), "-c", sql});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  admin("ALTER DATABASE " + database + " ALLOW_CONNECTIONS false");
  admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + database +
        "'");
  Status refused = store_->Ping();
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable) << refused.ToString();
  admin("ALTER DATABASE " + database + " ALLOW_CONNECTIONS true");
  OUTPOST_ASSERT_OK(store_->Ping());
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sites, store_->ListSites("acme"));
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].site.site_id, "s1");
  EXPECT_EQ(All().size(), 0u);
}

TEST_P(StoreContract, NewerSchemaIsRefusedAndLeftAlone) {
  store_.reset();
  RawSql("UPDATE outpost_meta SET value = '99' WHERE name = 'schema_version'");
  Result<std::unique_ptr<Store>> r = OpenStore(url_);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("schema_too_new"), std::string_view::npos)
      << r.status().ToString();
  RawSql("UPDATE outpost_meta SET value = 'x' WHERE name = 'schema_version'");
  EXPECT_EQ(OpenStore(url_).status().code(), StatusCode::kDataLoss);
  RawSql("UPDATE outpost_meta SET value = '9' WHERE name = 'schema_version'");
  Reopen();
}

// A version 7 database (no hub_audit) gets the table, empty, when opened.
TEST_P(StoreContract, SchemaVersionSevenIsMigratedToKeepTheHubsAuditLines) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  store_.reset();
  RawSql("DROP TABLE hub_audit");
  RawSql("UPDATE outpost_meta SET value = '7' WHERE name = 'schema_version'");
  Reopen();
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto none, store_->ListHubAudit("acme", 0, "", 10));
  EXPECT_TRUE(none.empty());
  OUTPOST_ASSERT_OK(store_->AppendHubAudit(
      HubAuditEntry{.time_ms = 1, .tenant = "acme", .event = "batch_refused", .line = "{}"}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto one, store_->ListHubAudit("acme", 0, "", 10));
  EXPECT_EQ(one.size(), 1u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Site site, store_->GetSite("s1"));
  EXPECT_EQ(site.tenant, MakeSite("s1").tenant);
}

// A version 1 database (no outbox columns in node_status) is migrated to 2 when opened, and
// keeps what it held.
TEST_P(StoreContract, SchemaVersionOneIsMigratedKeepingItsRows) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(
      NodeStatus{.site_id = "s1", .node_id = "n1", .reported_ms = 9, .backlog_records = 3}, 60));
  store_.reset();
  RawSql("ALTER TABLE node_status DROP COLUMN autonomy_basis");
  RawSql("ALTER TABLE node_status DROP COLUMN outbox_account_json");
  RawSql("DROP TABLE leases");
  RawSql("DROP TABLE schedule_state");
  RecordsAsInVersionFour();
  RawSql("UPDATE outpost_meta SET value = '1' WHERE name = 'schema_version'");
  Reopen();
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sites, store_->ListSites("acme"));
  ASSERT_EQ(sites.size(), 1u);
  ASSERT_EQ(sites[0].nodes.size(), 1u);
  EXPECT_EQ(sites[0].nodes[0].backlog_records, 3u);
  EXPECT_EQ(sites[0].nodes[0].autonomy_basis, "");
  NodeStatus now{.site_id = "s1",
                 .node_id = "n1",
                 .reported_ms = 10,
                 .autonomy_basis = "not_enough_history",
                 .outbox_account_json = R"({"classes":{}})"};
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(now, 70));
  OUTPOST_ASSERT_OK_AND_ASSIGN(sites, store_->ListSites("acme"));
  EXPECT_EQ(sites[0].nodes[0].autonomy_basis, "not_enough_history");
  EXPECT_EQ(sites[0].nodes[0].outbox_account_json, now.outbox_account_json);
}

// A version 3 database (no leases or schedule_state tables) is migrated to 4 when opened:
// the tables are made, empty, and the rows the database held stay.
TEST_P(StoreContract, SchemaVersionThreeIsMigratedWithNoLeaseTaken) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  OUTPOST_ASSERT_OK(store_->AcquireLease("scheduler", "a", 60'000));
  store_.reset();
  RawSql("DROP TABLE leases");
  RawSql("DROP TABLE schedule_state");
  RecordsAsInVersionFour();
  RawSql("UPDATE outpost_meta SET value = '3' WHERE name = 'schema_version'");
  Reopen();
  OUTPOST_ASSERT_OK(store_->GetSite("s1"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Lease l, store_->AcquireLease("scheduler", "b", 60'000));
  EXPECT_EQ(l.holder, "b");
  EXPECT_EQ(l.generation, 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto state, store_->GetScheduleState("retrain/pump"));
  EXPECT_FALSE(state.has_value());
  Reopen();  // the current version opens as it is
  OUTPOST_ASSERT_OK_AND_ASSIGN(l, store_->AcquireLease("scheduler", "a", 60'000));
  EXPECT_EQ(l.holder, "b");
}

// A version 2 database (PostgreSQL: record ids from an identity) is migrated to 3 when
// opened: its records keep their ids, records stored afterwards get ids above them, and a
// cursor meets each once.
TEST_P(StoreContract, SchemaVersionTwoIsMigratedKeepingItsRecords) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  auto before = Recs("s1", "n1", "m", 1, 3);
  OUTPOST_ASSERT_OK(store_->Ingest(KeyOf(before), before, {}, 1));
  store_.reset();
  RecordsAsInVersionFour();
  if (GetParam() == "postgresql") {
    // What version 2 held: ids 1, 2, 3 from an identity that goes on from 4.
    RawSql("UPDATE records SET id = seq");
    RawSql("ALTER TABLE records ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (START WITH 4)");
  }
  RawSql("DROP TABLE leases");
  RawSql("DROP TABLE schedule_state");
  RawSql("UPDATE outpost_meta SET value = '2' WHERE name = 'schema_version'");
  Reopen();
  // (With the identity left in place, PostgreSQL would refuse the ids Ingest gives.)
  auto after = Recs("s1", "n1", "m", 4, 3);
  OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult r, store_->Ingest(KeyOf(after), after, {}, 2));
  EXPECT_EQ(r.outcome, IngestOutcome::kStored);
  Reopen();  // the current version opens as it is
  std::vector<HubRecord> all = All();
  ASSERT_EQ(all.size(), 6u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].seq, i + 1);
  if (GetParam() == "postgresql") {
    EXPECT_EQ(all[0].id, 1);
    EXPECT_EQ(all[2].id, 3);
  }
}

TEST_P(StoreContract, ConcurrentIngestLosesAndDuplicatesNothing) {
  constexpr int kThreads = 8;
  constexpr int kBatchesPerStream = 12;
  constexpr int kRecordsPerBatch = 25;
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s2")));
  // Four streams (2 sites x 2 nodes); each batch is sent by two threads at once, and every
  // thread also re-sends its previous batch (a retry after a lost acknowledgement).
  struct Batch {
    BatchKey key;
    std::vector<HubRecord> records;
  };
  std::vector<Batch> batches;
  for (const std::string site : {"s1", "s2"}) {
    for (const std::string node : {"n1", "n2"}) {
      for (int b = 0; b < kBatchesPerStream; ++b) {
        auto recs = Recs(site, node, "m", 1 + static_cast<uint64_t>(b) * kRecordsPerBatch,
                         kRecordsPerBatch, 1000 + b);
        batches.push_back(Batch{KeyOf(recs), std::move(recs)});
      }
    }
  }
  std::atomic<int> stored{0}, duplicate{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t / 2); i < batches.size(); i += kThreads / 2) {
        for (size_t j : {i, i >= kThreads / 2 ? i - kThreads / 2 : i}) {
          Result<IngestResult> r = store_->Ingest(batches[j].key, batches[j].records, {}, 1);
          if (!r.ok()) {
            ADD_FAILURE() << r.status().ToString();
            ++failed;
          } else if (r->outcome == IngestOutcome::kStored) {
            ++stored;
          } else if (r->outcome == IngestOutcome::kDuplicate) {
            ++duplicate;
          } else {
            ADD_FAILURE() << "conflict";
            ++failed;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(stored.load(), static_cast<int>(batches.size()));
  EXPECT_EQ(stored.load() + duplicate.load(), static_cast<int>(4 * batches.size()));
  std::vector<HubRecord> got = All();
  ASSERT_EQ(got.size(), batches.size() * kRecordsPerBatch);
  std::set<std::tuple<std::string, std::string, uint64_t>> keys;
  for (const HubRecord& h : got) keys.emplace(h.site_id, h.node_id, h.seq);
  EXPECT_EQ(keys.size(), got.size());
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sites, store_->ListSites("acme"));
  ASSERT_EQ(sites.size(), 2u);
  EXPECT_EQ(sites[0].records + sites[1].records, got.size());
  for (const Batch& b : batches) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(bool has, store_->HasBatch(b.key));
    EXPECT_TRUE(has);
  }
}

TEST_P(StoreContract, OverlappingBatchesRacingForTheSameRecordsResolveOnce) {
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  // Two batches with different keys (so they do not meet on the batch row) and the same
  // record keys, sent at the same moment: the records are stored once; when the contents
  // differ, exactly one batch wins and the other is a conflict that stored nothing.
  for (int round = 0; round < 10; ++round) {
    bool differ = round % 2 == 1;
    std::string stream = "m" + std::to_string(round);
    std::vector<HubRecord> a = Recs("s1", "n1", stream, 1, 50);
    std::vector<HubRecord> b = a;
    if (differ) b[25].payload = R"({"other":true})";
    BatchKey key_a = KeyOf(a, Hex64('a'));
    BatchKey key_b = KeyOf(b, Hex64('b'));
    key_b.last_seq = 60;  // another range, so another key
    std::atomic<int> ready{0};
    Result<IngestResult> ra = InternalError("not run"), rb = InternalError("not run");
    std::thread ta([&] {
      ++ready;
      while (ready.load() < 2) {
      }
      ra = store_->Ingest(key_a, a, {}, 1);
    });
    std::thread tb([&] {
      ++ready;
      while (ready.load() < 2) {
      }
      rb = store_->Ingest(key_b, b, {}, 1);
    });
    ta.join();
    tb.join();
    OUTPOST_ASSERT_OK(ra);
    OUTPOST_ASSERT_OK(rb);
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        auto rows, store_->QueryRecords(RecordQuery{.tenant = "acme", .stream = stream}));
    ASSERT_EQ(rows.size(), 50u) << "round " << round;
    if (!differ) {
      EXPECT_EQ(ra->outcome, IngestOutcome::kStored);
      EXPECT_EQ(rb->outcome, IngestOutcome::kStored);
      EXPECT_EQ(ra->records_stored + rb->records_stored, 50u);
      EXPECT_EQ(ra->records_duplicate + rb->records_duplicate, 50u);
    } else {
      bool a_won = ra->outcome == IngestOutcome::kStored;
      const IngestResult& winner = a_won ? *ra : *rb;
      const IngestResult& loser = a_won ? *rb : *ra;
      EXPECT_EQ(winner.outcome, IngestOutcome::kStored);
      EXPECT_EQ(winner.records_stored, 50u);
      EXPECT_EQ(loser.outcome, IngestOutcome::kConflict);
      EXPECT_EQ(rows[25].payload, a_won ? a[25].payload : b[25].payload);
      OUTPOST_ASSERT_OK_AND_ASSIGN(bool has_loser, store_->HasBatch(a_won ? key_b : key_a));
      EXPECT_FALSE(has_loser);
    }
  }
}

// Writers race while a reader pages with the after_id cursor the whole time, as the
// dashboard's scans and the retraining tally do: the reader meets every committed record
// exactly once, each page above its cursor, whatever order the writers' transactions took
// their ids and committed in (STORE.md section 3, the record cursor).
TEST_P(StoreContract, CursorReaderSeesEveryCommittedRecordOnceWhileWritersRace) {
  constexpr int kWriters = 4;
  constexpr int kBatches = 30;
  constexpr uint64_t kPerBatch = 20;
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s1")));
  OUTPOST_ASSERT_OK(store_->CreateSite(MakeSite("s2")));
  std::atomic<int> finished{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::string site = w % 2 == 0 ? "s1" : "s2";
      std::string node = "n" + std::to_string(w);
      for (int b = 0; b < kBatches; ++b) {
        auto recs = Recs(site, node, "m", 1 + static_cast<uint64_t>(b) * kPerBatch, kPerBatch);
        Result<IngestResult> r = store_->Ingest(KeyOf(recs), recs, {}, 1);
        EXPECT_TRUE(r.ok() && r->outcome == IngestOutcome::kStored)
            << (r.ok() ? "not stored" : r.status().ToString());
      }
      ++finished;
    });
  }
  std::map<std::tuple<std::string, std::string, uint64_t>, int> seen;
  RecordQuery q{.tenant = "acme", .limit = 7};
  int pages = 0;
  while (true) {
    // Read after the writers ended, the page that follows sees everything they stored.
    bool writers_done = finished.load() == kWriters;
    Result<std::vector<HubRecord>> read = store_->QueryRecords(q);
    if (!read.ok()) {
      ADD_FAILURE() << read.status().ToString();
      break;
    }
    std::vector<HubRecord> page = std::move(*read);
    ++pages;
    for (const HubRecord& h : page) {
      EXPECT_GT(h.id, q.after_id) << "a page went back below its cursor";
      ++seen[{h.site_id, h.node_id, h.seq}];
      q.after_id = std::max(q.after_id, h.id);
    }
    if (writers_done && page.size() < q.limit) break;
  }
  for (auto& th : writers) th.join();
  EXPECT_GT(pages, 1);
  EXPECT_EQ(seen.size(), kWriters * kBatches * kPerBatch);
  for (const auto& [key, times] : seen) {
    EXPECT_EQ(times, 1) << std::get<0>(key) << "/" << std::get<1>(key) << "/" << std::get<2>(key);
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, StoreContract, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

// PostgreSQL only: a server restart cuts every pooled connection; the store notices on the
// next call and reconnects, and nothing committed before is lost.
TEST(PostgresStore, ReconnectsAfterServerRestart) {
  ASSERT_NE(PostgresEnvironment::cluster(), nullptr) << PostgresEnvironment::status().ToString();
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string url,
                               PostgresEnvironment::cluster()->CreateDatabase("restart"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto store, OpenStore(url));
  OUTPOST_ASSERT_OK(store->CreateSite(MakeSite("s1")));
  // Several pooled connections, all idle when the server goes away.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto recs = Recs("s1", "n" + std::to_string(t), "m", 1, 10);
      EXPECT_TRUE(store->Ingest(KeyOf(recs), recs, {}, 1).ok());
    });
  }
  for (auto& th : threads) th.join();
  OUTPOST_ASSERT_OK(PostgresEnvironment::cluster()->Restart());
  // A plain read first (no transaction to retry): the pool must not hand out a dead one.
  for (int i = 0; i < 4; ++i) OUTPOST_ASSERT_OK(store->GetSite("s1"));
  for (int t = 0; t < 4; ++t) {
    auto recs = Recs("s1", "n" + std::to_string(t), "m", 1, 10);
    OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult r, store->Ingest(KeyOf(recs), recs, {}, 2));
    EXPECT_EQ(r.outcome, IngestOutcome::kDuplicate);
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sites, store->ListSites("acme"));
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].records, 40u);
}

// psql's one-line answer to `sql` on `url` (unaligned, tuples only), without the newline.
std::string PsqlValue(const std::string& url, const std::string& sql) {
  RunResult r = RunProgram({"/usr/bin/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

// Asks `sql` again until psql answers `want`: the interleaving below waits for the server
// to reach a state, never for a time. False after about a minute of asking.
bool WaitForValue(const std::string& url, const std::string& sql, const std::string& want) {
  for (int i = 0; i < 3000; ++i) {
    if (PsqlValue(url, sql) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// A psql session that runs what the test writes to it, statement by statement, holding its
// transaction open between writes: psql reads a FIFO that this object keeps open.
class PsqlSession {
 public:
  PsqlSession(const std::string& url, const TempDir& dir) : fifo_(dir.File("session.sql")) {
    EXPECT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
    // Read and write: the open does not wait for psql, and psql meets the end of its input
    // only when Close() lets go of it.
    fd_ = ::open(fifo_.c_str(), O_RDWR | O_CLOEXEC);
    EXPECT_GE(fd_, 0);
    Result<std::unique_ptr<Subprocess>> p = Subprocess::Start(
        {"/usr/bin/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-f", fifo_},
        dir.File("session.err"));
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (p.ok()) psql_ = std::move(*p);
  }
  ~PsqlSession() { Close(); }

  void Send(const std::string& sql) {
    std::string line = sql + "\n";
    EXPECT_EQ(::write(fd_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
  // Ends psql's input and returns its exit code.
  int Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (psql_ == nullptr) return -1;
    int code = psql_->Wait();
    psql_.reset();
    return code;
  }

 private:
  std::string fifo_;
  int fd_ = -1;
  std::unique_ptr<Subprocess> psql_;
};

// PostgreSQL only (SQLite has one writer at a time): two hubs' ingests interleaved by hand.
// Writer A takes its record ids and is held before its commit; writer B stores its records
// and commits; a reader pages with the cursor; then A commits. Continuing from its cursor,
// the reader must still meet A's records: the cursor never passed an id whose transaction
// had not ended (STORE.md section 3, the record cursor).
TEST(PostgresStore, CursorDoesNotPassARecordWhoseTransactionCommitsLate) {
  ASSERT_NE(PostgresEnvironment::cluster(), nullptr) << PostgresEnvironment::status().ToString();
  TempDir dir;
  static std::atomic<int> counter{0};  // a fresh database each run (--gtest_repeat)
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string url, PostgresEnvironment::cluster()->CreateDatabase(
                                                    "late_commit_" + std::to_string(counter++)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto hub_a, OpenStore(url));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto hub_b, OpenStore(url));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto reader, OpenStore(url));
  OUTPOST_ASSERT_OK(hub_a->CreateSite(MakeSite("s1")));
  OUTPOST_ASSERT_OK(hub_a->CreateSite(MakeSite("s2")));
  const std::string in_this_db = "datname = current_database() AND pid <> pg_backend_pid()";

  // A session locks site s1's row: A's ingest inserts its records (taking their ids) and
  // then waits at the update of s1's counters, in the same statement, until it lets go.
  PsqlSession holder(url, dir);
  holder.Send("BEGIN;");
  holder.Send("SELECT 1 FROM sites WHERE site_id = 's1' FOR UPDATE;");
  ASSERT_TRUE(WaitForValue(url,
                           "SELECT count(*) FROM pg_stat_activity WHERE " + in_this_db +
                               " AND state = 'idle in transaction'",
                           "1"));
  auto a_recs = Recs("s1", "n1", "m", 1, 3);
  Result<IngestResult> a_result = InternalError("not run");
  std::thread writer_a([&] { a_result = hub_a->Ingest(KeyOf(a_recs), a_recs, {}, 1); });
  bool a_waits = WaitForValue(
      url,
      "SELECT count(*) FROM pg_stat_activity WHERE " + in_this_db + " AND wait_event_type = 'Lock'",
      "1");
  EXPECT_TRUE(a_waits) << "writer A never reached the lock";

  // B stores and commits while A is open.
  auto b_recs = Recs("s2", "n1", "m", 1, 3);
  Result<IngestResult> b_result = hub_b->Ingest(KeyOf(b_recs), b_recs, {}, 1);
  EXPECT_TRUE(b_result.ok() && b_result->outcome == IngestOutcome::kStored)
      << (b_result.ok() ? "not stored" : b_result.status().ToString());

  // The reader pages now, as far as it can, and keeps its cursor.
  std::map<std::string, int> seen;  // "site/seq"
  RecordQuery q{.tenant = "acme", .limit = 2};
  auto read_all = [&] {
    while (true) {
      Result<std::vector<HubRecord>> page = reader->QueryRecords(q);
      if (!page.ok()) {
        ADD_FAILURE() << page.status().ToString();
        return;
      }
      for (const HubRecord& h : *page) {
        ++seen[h.site_id + "/" + std::to_string(h.seq)];
        q.after_id = std::max(q.after_id, h.id);
      }
      if (page->size() < q.limit) return;
    }
  };
  read_all();
  const int64_t cursor_while_a_open = q.after_id;

  // A commits; the reader continues from its cursor.
  holder.Send("COMMIT;");
  EXPECT_EQ(holder.Close(), 0);
  writer_a.join();
  EXPECT_TRUE(a_result.ok() && a_result->outcome == IngestOutcome::kStored)
      << (a_result.ok() ? "not stored" : a_result.status().ToString());
  read_all();

  std::map<std::string, int> want = {{"s1/1", 1}, {"s1/2", 1}, {"s1/3", 1},
                                     {"s2/1", 1}, {"s2/2", 1}, {"s2/3", 1}};
  EXPECT_EQ(seen, want) << "the cursor stood at " << cursor_while_a_open << " while A was open";
  // And the reason: the cursor had not passed any of A's ids while A was open.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto a_rows, reader->QueryRecords(RecordQuery{.tenant = "acme", .site_id = "s1"}));
  ASSERT_EQ(a_rows.size(), 3u);
  for (const HubRecord& h : a_rows) EXPECT_GT(h.id, cursor_while_a_open);
}

TEST(OpenStore, RefusesUnknownSchemesAndUnreachableServers) {
  EXPECT_EQ(OpenStore("mysql://x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenStore("sqlite:").status().code(), StatusCode::kInvalidArgument);
  // Port 1 on loopback: nothing listens there.
  EXPECT_EQ(OpenStore("postgresql://outpost@127.0.0.1:1/x?connect_timeout=2").status().code(),
            StatusCode::kUnavailable);
  EXPECT_FALSE(OpenStore("sqlite:/nonexistent-dir/sub/hub.db").ok());
}

}  // namespace
}  // namespace outpost::hub
