// Partitions and retention of the PostgreSQL store (hub/STORE.md section 8) on a private
// cluster that this binary starts once: partitions made ahead and concurrently, ingest across
// days, exactly-once across partitions and after a drop, retention that exports exactly the
// records it removes, a crash between export and removal, the migration from version 4, and
// refusals that change nothing (a bad policy; the SQLite store).
#include "hub/retention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/file.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "hub/store.h"
#include "hub/testing/postgres_environment.h"

namespace outpost::hub {
namespace {

using ::outpost::testing::TempDir;
using testing::PostgresEnvironment;

const ::testing::Environment* const kPostgresEnv =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment());

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay0 = 20'463 * kDay;  // 2026-01-10 00:00 UTC

// (site, seq): a record's identity in these tests (one node, one stream).
using Key = std::pair<std::string, uint64_t>;

HubRecord Rec(const std::string& site, uint64_t seq, const std::string& kind,
              const std::string& payload = "") {
  return HubRecord{.site_id = site,
                   .node_id = "n1",
                   .stream = "pump",
                   .seq = seq,
                   .kind = kind,
                   .created_ms = 1000 + static_cast<int64_t>(seq),
                   .payload = payload.empty() ? R"({"seq":)" + std::to_string(seq) + "}" : payload};
}

BatchKey KeyOf(const std::vector<HubRecord>& records, char sha = 'a') {
  return BatchKey{.site_id = records.front().site_id,
                  .node_id = "n1",
                  .stream = "pump",
                  .first_seq = records.front().seq,
                  .last_seq = records.back().seq,
                  .content_sha256 = std::string(64, sha)};
}

std::string Psql(const std::string& url, const std::string& sql) {
  RunResult r = RunProgram({"/usr/bin/psql", "-v", "ON_ERROR_STOP=1", "-qtA", url, "-c", sql});
  EXPECT_EQ(r.exit_code, 0) << sql << ": " << r.err;
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

class Retention : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(PostgresEnvironment::cluster(), nullptr) << PostgresEnvironment::status().ToString();
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        url_, PostgresEnvironment::FreshDatabaseUrl("postgresql", "", "retention"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(store_, OpenStore(url_));
    OUTPOST_ASSERT_OK(store_->CreateSite(Site{.site_id = "s1", .tenant = "acme"}));
    OUTPOST_ASSERT_OK(store_->CreateSite(Site{.site_id = "s2", .tenant = "acme"}));
    OUTPOST_ASSERT_OK(store_->MaintainPartitions(kDay0));
    exports_ = dir_.File("retention");
  }

  // Stores `records` (one batch) at `received_ms`, expecting every record new.
  void Put(const std::vector<HubRecord>& records, int64_t received_ms, char sha = 'a') {
    OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult r,
                                 store_->Ingest(KeyOf(records, sha), records, {}, received_ms));
    ASSERT_EQ(r.outcome, IngestOutcome::kStored);
    ASSERT_EQ(r.records_stored, records.size());
    for (const HubRecord& rec : records) {
      stored_[{rec.site_id, rec.seq}] = std::make_pair(rec.kind, received_ms);
    }
  }

  // Every record, paging the cursor `page` records at a time.
  std::vector<HubRecord> All(size_t page = 10'000) {
    std::vector<HubRecord> out;
    RecordQuery q{.tenant = "acme", .limit = page};
    while (true) {
      Result<std::vector<HubRecord>> got = store_->QueryRecords(q);
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      if (!got.ok() || got->empty()) break;
      q.after_id = got->back().id;
      out.insert(out.end(), got->begin(), got->end());
    }
    return out;
  }

  std::set<Key> Keys(const std::vector<HubRecord>& records) {
    std::set<Key> out;
    for (const HubRecord& r : records) out.insert({r.site_id, r.seq});
    return out;
  }

  // The records of every published export file, each checked against its digest file; and
  // the names of the folder's files.
  std::multiset<Key> Exported(std::vector<std::string>* names = nullptr) {
    std::multiset<Key> out;
    if (!PathExists(exports_)) return out;
    Result<std::vector<std::string>> files = ListDirectory(exports_);
    EXPECT_TRUE(files.ok());
    if (names != nullptr) *names = *files;
    json::Parser parser;
    for (const std::string& f : *files) {
      if (!f.ends_with(".jsonl.zst")) continue;
      std::string path = JoinPath(exports_, f);
      RunResult sum =
          RunProgram({"/bin/sh", "-c", "cd '" + exports_ + "' && sha256sum -c '" + f + ".sha256'"});
      EXPECT_EQ(sum.exit_code, 0) << f << ": " << sum.out << sum.err;
      RunResult text = RunProgram({"/usr/bin/zstd", "-dcq", path});
      EXPECT_EQ(text.exit_code, 0) << text.err;
      size_t start = 0;
      while (start < text.out.size()) {
        size_t end = text.out.find('\n', start);
        std::string line = text.out.substr(start, end - start);
        start = end + 1;
        Result<json::Value> v = parser.Parse(line);
        EXPECT_TRUE(v.ok()) << line;
        if (!v.ok()) continue;
        std::string site(*(*v)["site_id"].GetString());
        uint64_t seq = *(*v)["seq"].GetUint64();
        EXPECT_EQ(std::string(*(*v)["payload"].GetString()),
                  R"({"seq":)" + std::to_string(seq) + "}");
        EXPECT_EQ((*v)["content_hash"].GetString()->size(), 64u);
        out.insert({site, seq});
      }
    }
    return out;
  }

  // The records of stored_ that `policy` expires at now_ms: received_ms < now - retention.
  std::set<Key> ExpiredBy(const RetentionPolicy& policy, int64_t now_ms) {
    std::set<Key> out;
    for (const auto& [key, v] : stored_) {
      auto it = policy.kinds.find(v.first);
      std::optional<int64_t> keep =
          it != policy.kinds.end() ? std::optional(it->second) : policy.default_ms;
      if (keep && *keep != INT64_MAX && v.second < now_ms - *keep) out.insert(key);
    }
    return out;
  }

  int64_t Count(const std::string& table) {
    return std::stoll(Psql(url_, "SELECT count(*) FROM " + table));
  }

  TempDir dir_;
  std::string url_;
  std::string exports_;
  std::unique_ptr<Store> store_;
  std::map<Key, std::pair<std::string, int64_t>> stored_;  // kind, received_ms
};

TEST_F(Retention, PartitionsAreMadeAheadAndConcurrentlyWithoutFailing) {
  // OpenStore made yesterday .. in two days by the wall clock; SetUp the days around kDay0.
  for (const char* p : {"records_p20260109", "records_p20260110", "records_p20260111",
                        "records_p20260112", "records_default"}) {
    EXPECT_EQ(Psql(url_, std::string("SELECT to_regclass('") + p + "') IS NOT NULL"), "t") << p;
  }
  EXPECT_EQ(Psql(url_, "SELECT to_regclass('records_p20260113') IS NULL"), "t");
  // Eight stores (eight hubs) make the same partitions at once: none fails.
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < 8; ++i) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto s, OpenStore(url_));
    stores.push_back(std::move(s));
  }
  std::vector<Status> results(stores.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < stores.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = stores[i]->MaintainPartitions(kDay0 + 10 * kDay); });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) OUTPOST_EXPECT_OK(s);
  for (const char* p :
       {"records_p20260119", "records_p20260120", "records_p20260121", "records_p20260122"}) {
    EXPECT_EQ(Psql(url_, std::string("SELECT to_regclass('") + p + "') IS NOT NULL"), "t") << p;
  }
}

TEST_F(Retention, IngestAcrossDaysIsExactlyOnceAcrossPartitions) {
  Put({Rec("s1", 1, "anomaly"), Rec("s1", 2, "anomaly"), Rec("s1", 3, "sample")}, kDay0 + kHour);
  Put({Rec("s1", 4, "anomaly"), Rec("s1", 5, "sample")}, kDay0 + kDay + kHour);
  // A day without a partition yet: Ingest makes it (and the next) first.
  Put({Rec("s1", 6, "anomaly")}, kDay0 + 5 * kDay);
  EXPECT_EQ(Count("records_p20260110"), 3);
  EXPECT_EQ(Count("records_p20260111"), 2);
  EXPECT_EQ(Count("records_p20260115"), 1);
  EXPECT_EQ(Count("records_default"), 0);

  // An overlapping batch under another key, days later: every record a duplicate, whatever
  // partition its first copy is in.
  std::vector<HubRecord> overlap = {Rec("s1", 2, "anomaly"), Rec("s1", 3, "sample"),
                                    Rec("s1", 4, "anomaly"), Rec("s1", 5, "sample")};
  OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult r,
                               store_->Ingest(KeyOf(overlap, 'b'), overlap, {}, kDay0 + 6 * kDay));
  EXPECT_EQ(r.outcome, IngestOutcome::kStored);
  EXPECT_EQ(r.records_stored, 0u);
  EXPECT_EQ(r.records_duplicate, 4u);
  // A record key of another day's partition with other content: the whole batch refused.
  std::vector<HubRecord> conflict = {Rec("s1", 3, "sample", R"({"other":1})"),
                                     Rec("s1", 7, "anomaly")};
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      r, store_->Ingest(KeyOf(conflict, 'c'), conflict, {}, kDay0 + 6 * kDay));
  EXPECT_EQ(r.outcome, IngestOutcome::kConflict);
  EXPECT_EQ(All().size(), 6u);
  EXPECT_EQ(Count("record_keys"), 6);

  // Records received where no partition exists go to the default partition, and move into
  // the partition of their day when it is made.
  // (The store made the partitions up to 2026-01-17 at the ingest of 2026-01-15 and does
  // not look again for them until a record of 2026-01-17 comes.)
  Psql(url_, "DROP TABLE records_p20260116");
  Put({Rec("s2", 1, "anomaly")}, kDay0 + 6 * kDay + kHour);
  EXPECT_EQ(Count("records_default"), 1);
  OUTPOST_ASSERT_OK(store_->MaintainPartitions(kDay0 + 6 * kDay));
  EXPECT_EQ(Count("records_default"), 0);
  EXPECT_EQ(Count("records_p20260116"), 1);
  // A clock outside 2000..2100 has no partition at all.
  Put({Rec("s2", 2, "anomaly")}, 5);
  EXPECT_EQ(Count("records_default"), 1);
  std::vector<HubRecord> all = All(2);
  EXPECT_EQ(all.size(), 8u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end(),
                             [](const HubRecord& a, const HubRecord& b) { return a.id < b.id; }));
}

// Two passes of {sample: 1 day, anomaly: 3 days, others forever}: the first deletes expired
// samples inside partitions that keep anomalies, the second drops a whole partition. Each
// time the files hold exactly the records removed, the store holds exactly the others, the
// cursor pages through them, and the sites' counts follow.
TEST_F(Retention, ExportsExactlyTheExpiredRecordsThenRemovesThem) {
  Put({Rec("s1", 1, "anomaly"), Rec("s1", 2, "sample"), Rec("s1", 3, "sample")}, kDay0 + kHour);
  Put({Rec("s2", 1, "anomaly"), Rec("s2", 2, "feedback")}, kDay0 + 2 * kHour);
  Put({Rec("s1", 4, "anomaly"), Rec("s1", 5, "sample")}, kDay0 + kDay + kHour);
  Put({Rec("s1", 6, "sample")}, kDay0 + 2 * kDay + kHour);
  RetentionPolicy policy{.kinds = {{"sample", kDay}, {"anomaly", 3 * kDay}}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto exporter, FileExporter::Open(exports_));

  int64_t now = kDay0 + 2 * kDay + 12 * kHour;
  OUTPOST_ASSERT_OK_AND_ASSIGN(RetentionResult r, store_->ApplyRetention(policy, now, *exporter));
  std::set<Key> expired = ExpiredBy(policy, now);
  EXPECT_EQ(expired, (std::set<Key>{{"s1", 2}, {"s1", 3}, {"s1", 5}}));
  EXPECT_EQ(r.records_removed, 3u);
  EXPECT_EQ(r.partitions_dropped, 1u);  // 2026-01-09's, made ahead by SetUp, empty: no file
  EXPECT_EQ(r.units, 2u);
  std::multiset<Key> files = Exported();
  EXPECT_EQ(std::set<Key>(files.begin(), files.end()), expired);
  EXPECT_EQ(files.size(), expired.size());
  std::set<Key> left;
  for (const auto& [k, v] : stored_) {
    if (!expired.contains(k)) left.insert(k);
  }
  EXPECT_EQ(Keys(All(1)), left);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sites, store_->ListSites("acme"));
  EXPECT_EQ(sites[0].records, 3u);  // s1: 1, 4, 6
  EXPECT_EQ(sites[1].records, 2u);

  // Nothing more expired: a pass at the same time does nothing and writes nothing.
  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->ApplyRetention(policy, now, *exporter));
  EXPECT_EQ(r.records_removed, 0u);
  EXPECT_EQ(Exported().size(), 3u);

  // Two days later, with a default of 2 days for the other kinds (s2's feedback): every
  // record of 2026-01-10 and 2026-01-12 has expired, and their partitions are dropped; of
  // 2026-01-11, the anomaly received at 01:00 has, but an anomaly received later that day
  // would not have: its expired rows are deleted.
  now = kDay0 + 4 * kDay + 12 * kHour;
  policy.default_ms = 2 * kDay;
  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->ApplyRetention(policy, now, *exporter));
  expired = ExpiredBy(policy, now);
  EXPECT_EQ(r.partitions_dropped, 2u);
  EXPECT_EQ(Psql(url_, "SELECT to_regclass('records_p20260112') IS NULL"), "t");
  EXPECT_EQ(Psql(url_, "SELECT to_regclass('records_p20260111') IS NOT NULL"), "t");
  EXPECT_EQ(Psql(url_, "SELECT to_regclass('records_p20260110') IS NULL"), "t");
  files = Exported();
  EXPECT_EQ(std::set<Key>(files.begin(), files.end()), expired);
  EXPECT_EQ(files.size(), expired.size());  // none exported twice
  left.clear();
  for (const auto& [k, v] : stored_) {
    if (!expired.contains(k)) left.insert(k);
  }
  EXPECT_EQ(Keys(All(1)), left);
  OUTPOST_ASSERT_OK_AND_ASSIGN(sites, store_->ListSites("acme"));
  EXPECT_EQ(sites[0].records + sites[1].records, left.size());

  // A record exported and dropped, uploaded again: the same content is a duplicate, other
  // content a conflict (its key stays in record_keys).
  std::vector<HubRecord> again = {Rec("s1", 1, "anomaly")};
  OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult i, store_->Ingest(KeyOf(again, 'd'), again, {}, now));
  EXPECT_EQ(i.records_duplicate, 1u);
  EXPECT_EQ(i.records_stored, 0u);
  again[0].payload = R"({"other":2})";
  OUTPOST_ASSERT_OK_AND_ASSIGN(i, store_->Ingest(KeyOf(again, 'e'), again, {}, now));
  EXPECT_EQ(i.outcome, IngestOutcome::kConflict);
  EXPECT_EQ(Keys(All()), left);
}

// The record keys' window (STORE.md section 8): keys of removed records stay for
// keys_after_expiry, so a resend is still a duplicate; then later passes delete them, and
// never a key whose record is kept.
TEST_F(Retention, KeysOfExpiredRecordsArePrunedAfterTheirWindowAndNoKeptKeyIsLost) {
  std::vector<HubRecord> day0, day1;
  for (uint64_t seq = 1; seq <= 30; ++seq) day0.push_back(Rec("s1", seq, "sample"));
  for (uint64_t seq = 31; seq <= 60; ++seq) {
    day1.push_back(Rec("s1", seq, seq % 2 == 0 ? "sample" : "anomaly"));
  }
  Put(day0, kDay0 + kHour);         // only samples: its partition is dropped whole
  Put(day1, kDay0 + kDay + kHour);  // its samples deleted, its anomalies kept
  RetentionPolicy policy{.kinds = {{"sample", kDay}}, .keys_after_expiry_ms = 2 * kDay};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto exporter, FileExporter::Open(exports_));
  // Every key of a record in the store is in record_keys with no expired_ms.
  auto no_kept_key_lost = [&] {
    EXPECT_EQ(Psql(url_,
                   "SELECT count(*) FROM records r WHERE NOT EXISTS (SELECT 1 FROM record_keys "
                   "k WHERE k.site_id = r.site_id AND k.node_id = r.node_id AND k.stream = "
                   "r.stream AND k.seq = r.seq AND k.expired_ms IS NULL)"),
              "0");
  };

  const int64_t now1 = kDay0 + 3 * kDay;
  OUTPOST_ASSERT_OK_AND_ASSIGN(RetentionResult r, store_->ApplyRetention(policy, now1, *exporter));
  EXPECT_EQ(r.records_removed, 45u);
  EXPECT_EQ(r.keys_removed, 0u);
  EXPECT_EQ(Count("record_keys"), 60);
  EXPECT_EQ(
      Psql(url_, "SELECT count(*) FROM record_keys WHERE expired_ms = " + std::to_string(now1)),
      "45");
  no_kept_key_lost();
  // Samples received now; they expire at the last pass.
  std::vector<HubRecord> day3;
  for (uint64_t seq = 61; seq <= 70; ++seq) day3.push_back(Rec("s1", seq, "sample"));
  Put(day3, now1);

  // Within the window, a batch of removed records sent again is a duplicate, and a pass
  // deletes no key.
  const std::vector<HubRecord> resend(day0.begin(), day0.begin() + 10);
  OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult i,
                               store_->Ingest(KeyOf(resend, 'r'), resend, {}, now1 + kDay));
  EXPECT_EQ(i.outcome, IngestOutcome::kStored);
  EXPECT_EQ(i.records_duplicate, 10u);
  EXPECT_EQ(i.records_stored, 0u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->ApplyRetention(policy, now1 + kDay, *exporter));
  EXPECT_EQ(r.keys_removed, 0u);
  EXPECT_EQ(Count("record_keys"), 70);

  // Past the window of the first pass's keys (and with day3's samples expiring now): those
  // 45 keys are deleted, the anomalies' and day3's stay.
  const int64_t now2 = now1 + 2 * kDay + 1;
  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->ApplyRetention(policy, now2, *exporter));
  EXPECT_EQ(r.records_removed, 10u);
  EXPECT_EQ(r.keys_removed, 45u);
  EXPECT_EQ(Count("record_keys"), 25);
  EXPECT_EQ(Psql(url_, "SELECT count(*) FROM record_keys WHERE expired_ms IS NULL"), "15");
  no_kept_key_lost();
  std::set<Key> anomalies;
  for (uint64_t seq = 31; seq <= 60; seq += 2) anomalies.insert({"s1", seq});
  EXPECT_EQ(Keys(All(7)), anomalies);

  // A kept record and one still in its window sent again: duplicates. A record whose key
  // was pruned: stored again, as new.
  const std::vector<HubRecord> kept = {Rec("s1", 31, "anomaly")};
  OUTPOST_ASSERT_OK_AND_ASSIGN(i, store_->Ingest(KeyOf(kept, 's'), kept, {}, now2));
  EXPECT_EQ(i.records_duplicate, 1u);
  const std::vector<HubRecord> windowed = {Rec("s1", 61, "sample")};
  OUTPOST_ASSERT_OK_AND_ASSIGN(i, store_->Ingest(KeyOf(windowed, 't'), windowed, {}, now2));
  EXPECT_EQ(i.records_duplicate, 1u);
  const std::vector<HubRecord> pruned = {Rec("s1", 1, "sample")};
  OUTPOST_ASSERT_OK_AND_ASSIGN(i, store_->Ingest(KeyOf(pruned, 'u'), pruned, {}, now2));
  EXPECT_EQ(i.records_stored, 1u);
  no_kept_key_lost();

  // `forever` keeps every key.
  policy.keys_after_expiry_ms = INT64_MAX;
  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->ApplyRetention(policy, now2 + 30 * kDay, *exporter));
  EXPECT_EQ(r.keys_removed, 0u);
  EXPECT_EQ(Count("record_keys"), 26);
}

// A pass that drops a partition and deletes rows of another while four hubs ingest and a
// reader pages with the cursor: nothing acknowledged is lost, the files hold exactly the
// expired records, and the reader meets every record that stays exactly once.
TEST_F(Retention, APassWhileHubsIngestLosesNothingAndTheCursorSkipsNothing) {
  std::vector<HubRecord> old_samples, kept;
  for (uint64_t seq = 1; seq <= 50; ++seq) old_samples.push_back(Rec("s2", seq, "sample"));
  Put(old_samples, kDay0 - kDay + kHour);  // 2026-01-09: only samples, dropped whole
  std::vector<HubRecord> mixed;
  for (uint64_t seq = 51; seq <= 100; ++seq) {
    mixed.push_back(Rec("s2", seq, seq % 2 == 0 ? "sample" : "anomaly"));
  }
  Put(mixed, kDay0 + kHour);  // 2026-01-10: its samples deleted, its anomalies kept
  const int64_t now = kDay0 + 3 * kDay;
  RetentionPolicy policy{.kinds = {{"sample", kHour}}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto exporter, FileExporter::Open(exports_));

  constexpr int kWriters = 4;
  constexpr uint64_t kBatches = 20, kPerBatch = 10;
  std::vector<std::unique_ptr<Store>> hubs;
  for (int i = 0; i < kWriters + 1; ++i) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto s, OpenStore(url_));
    OUTPOST_ASSERT_OK(s->CreateSite(Site{.site_id = "w" + std::to_string(i), .tenant = "acme"}));
    hubs.push_back(std::move(s));
  }
  std::atomic<int> writing{kWriters};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (uint64_t b = 0; b < kBatches; ++b) {
        std::vector<HubRecord> batch;
        for (uint64_t i = 1; i <= kPerBatch; ++i) {
          batch.push_back(Rec("w" + std::to_string(w), b * kPerBatch + i, "anomaly"));
        }
        Result<IngestResult> r = hubs[w]->Ingest(KeyOf(batch), batch, {}, now);
        if (!r.ok() || r->records_stored != kPerBatch) {
          ADD_FAILURE() << r.status().ToString();
          ++failures;
        }
      }
      --writing;
    });
  }
  std::multiset<Key> met;
  threads.emplace_back([&] {
    RecordQuery q{.tenant = "acme", .limit = 7};
    bool last_sweep = false;
    while (true) {
      Result<std::vector<HubRecord>> page = hubs[kWriters]->QueryRecords(q);
      if (!page.ok()) {
        ++failures;
        return;
      }
      for (const HubRecord& r : *page) met.insert({r.site_id, r.seq});
      if (!page->empty()) {
        q.after_id = page->back().id;
        continue;
      }
      if (last_sweep) return;
      last_sweep = writing.load() == 0;  // one more sweep once every writer has finished
    }
  });
  OUTPOST_ASSERT_OK_AND_ASSIGN(RetentionResult r, store_->ApplyRetention(policy, now, *exporter));
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(r.records_removed, 75u);
  EXPECT_GE(r.partitions_dropped, 1u);
  EXPECT_EQ(Psql(url_, "SELECT to_regclass('records_p20260109') IS NULL"), "t");

  std::set<Key> expired, live;
  for (const HubRecord& h : old_samples) expired.insert({h.site_id, h.seq});
  for (const HubRecord& h : mixed) (h.kind == "sample" ? expired : live).insert({h.site_id, h.seq});
  for (int w = 0; w < kWriters; ++w) {
    for (uint64_t seq = 1; seq <= kBatches * kPerBatch; ++seq) {
      live.insert({"w" + std::to_string(w), seq});
    }
  }
  std::multiset<Key> files = Exported();
  EXPECT_EQ(files, std::multiset<Key>(expired.begin(), expired.end()));
  EXPECT_EQ(Keys(All()), live);
  for (const Key& k : live) EXPECT_EQ(met.count(k), 1u) << k.first << "/" << k.second;
  for (const Key& k : expired) EXPECT_LE(met.count(k), 1u);
}

// An exporter that fails on purpose: Seal after writing the file (the transaction then rolls
// back) without removing it, as if the process died there; or Publish (after the commit).
class CrashingExporter final : public RecordExporter {
 public:
  explicit CrashingExporter(FileExporter& inner) : inner_(inner) {}
  Result<std::vector<int64_t>> Pending() override { return inner_.Pending(); }
  Status Begin(int64_t id) override { return inner_.Begin(id); }
  Status Add(const HubRecord& r, std::string_view h) override { return inner_.Add(r, h); }
  Result<std::pair<std::string, std::string>> Seal() override {
    auto sealed = inner_.Seal();
    if (!crash_in_seal) return sealed;
    crashed_ = sealed.ok() ? PendingOf(sealed->first) : 0;
    return UnavailableError("the process dies after writing the file");
  }
  Status Publish(int64_t id, std::string_view sha) override {
    if (crash_in_publish) return UnavailableError("the process dies after the commit");
    return inner_.Publish(id, sha);
  }
  Status Discard(int64_t id) override {
    if (id == crashed_ && crash_in_seal) return Status::Ok();  // died: nothing cleans up
    return inner_.Discard(id);
  }
  bool crash_in_seal = false;
  bool crash_in_publish = false;

 private:
  static int64_t PendingOf(const std::string& file) {
    return std::stoll(file.substr(8));  // "records-<id>.jsonl.zst"
  }
  FileExporter& inner_;
  int64_t crashed_ = 0;
};

TEST_F(Retention, ACrashBetweenExportAndRemovalRepeatsTheExportOnce) {
  Put({Rec("s1", 1, "sample"), Rec("s1", 2, "anomaly")}, kDay0 + kHour);
  Put({Rec("s1", 3, "sample")}, kDay0 + kDay + kHour);
  RetentionPolicy policy{.kinds = {{"sample", kHour}}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto files, FileExporter::Open(exports_));
  CrashingExporter crashing(*files);
  int64_t now = kDay0 + 3 * kDay;

  // Dies after writing the first unit's file, before the commit: the records stay.
  crashing.crash_in_seal = true;
  EXPECT_FALSE(store_->ApplyRetention(policy, now, crashing).ok());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<int64_t> pending, files->Pending());
  EXPECT_EQ(pending.size(), 1u);
  EXPECT_EQ(All().size(), 3u);
  // Dies after the commit of the first unit, before its file is renamed.
  crashing.crash_in_seal = false;
  crashing.crash_in_publish = true;
  EXPECT_FALSE(store_->ApplyRetention(policy, now, crashing).ok());
  OUTPOST_ASSERT_OK_AND_ASSIGN(pending, files->Pending());
  EXPECT_EQ(pending.size(), 1u);  // the stale one was discarded, the committed one waits
  EXPECT_EQ(All().size(), 2u);
  EXPECT_TRUE(Exported().empty());

  // A pass that runs to its end publishes the committed unit and does the rest.
  OUTPOST_ASSERT_OK_AND_ASSIGN(RetentionResult r, store_->ApplyRetention(policy, now, *files));
  EXPECT_EQ(r.units_recovered, 1u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(pending, files->Pending());
  EXPECT_TRUE(pending.empty());
  std::multiset<Key> exported = Exported();
  EXPECT_EQ(exported, (std::multiset<Key>{{"s1", 1}, {"s1", 3}}));
  EXPECT_EQ(Keys(All()), (std::set<Key>{{"s1", 2}}));
  EXPECT_EQ(Count("retention_exports"), 2);
}

// What a version 4 database held (the records table of versions 3 and 4, no version 5
// tables) is migrated when opened: every row moves into the partition of its day (or the
// default one), keeps its id, and its key still decides duplicates and conflicts.
TEST_F(Retention, VersionFourIsMigratedIntoPartitionsKeepingEveryRecord) {
  Put({Rec("s1", 1, "anomaly"), Rec("s1", 2, "sample")}, kDay0 + kHour);
  Put({Rec("s1", 3, "anomaly")}, kDay0 + 3 * kDay);
  Put({Rec("s2", 1, "anomaly")}, 5);  // 1970: no partition
  std::vector<HubRecord> before = All();
  store_.reset();
  Psql(url_,
       "CREATE TABLE records_saved AS SELECT * FROM records; DROP TABLE records; DROP TABLE "
       "record_keys; DROP TABLE retention_exports; DROP TABLE retention_settled; DROP SEQUENCE "
       "retention_export_ids; CREATE TABLE records(id BIGINT PRIMARY KEY, tenant TEXT NOT "
       "NULL, site_id TEXT NOT NULL, node_id TEXT NOT NULL, stream TEXT NOT NULL, seq BIGINT "
       "NOT NULL, kind TEXT NOT NULL, created_ms BIGINT NOT NULL, received_ms BIGINT NOT NULL, "
       "payload TEXT NOT NULL, content_hash BYTEA NOT NULL, UNIQUE(site_id, node_id, stream, "
       "seq)); CREATE INDEX records_tenant_created ON records(tenant, created_ms); INSERT INTO "
       "records SELECT * FROM records_saved; DROP TABLE records_saved; UPDATE outpost_meta SET "
       "value = '4' WHERE name = 'schema_version'");
  OUTPOST_ASSERT_OK_AND_ASSIGN(store_, OpenStore(url_));
  EXPECT_EQ(Psql(url_, "SELECT value FROM outpost_meta WHERE name = 'schema_version'"), "9");
  EXPECT_EQ(Psql(url_, "SELECT count(*) FROM record_keys WHERE expired_ms IS NULL"), "4");
  EXPECT_EQ(Count("records_p20260110"), 2);
  EXPECT_EQ(Count("records_p20260113"), 1);
  EXPECT_EQ(Count("records_default"), 1);
  EXPECT_EQ(Count("record_keys"), 4);
  EXPECT_EQ(Psql(url_, "SELECT to_regclass('records_v4') IS NULL"), "t");
  std::vector<HubRecord> after = All(1);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].id, before[i].id);
    EXPECT_EQ(after[i].payload, before[i].payload);
  }
  std::vector<HubRecord> dup = {Rec("s1", 2, "sample"), Rec("s1", 3, "anomaly")};
  OUTPOST_ASSERT_OK_AND_ASSIGN(IngestResult r,
                               store_->Ingest(KeyOf(dup, 'f'), dup, {}, kDay0 + 4 * kDay));
  EXPECT_EQ(r.records_duplicate, 2u);
  dup[0].payload = R"({"other":3})";
  OUTPOST_ASSERT_OK_AND_ASSIGN(r, store_->Ingest(KeyOf(dup, 'g'), dup, {}, kDay0 + 4 * kDay));
  EXPECT_EQ(r.outcome, IngestOutcome::kConflict);
  EXPECT_EQ(All().size(), 4u);
}

TEST(RetentionPolicyParse, ReadsDurationsAndRefusesTheRest) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      RetentionPolicy p,
      ParseRetentionPolicy(
          {{"sample", "30d"}, {"anomaly", "36500d"}, {"drift", "12h"}, {"default", "forever"}}));
  EXPECT_EQ(p.kinds.at("sample"), 30 * kDay);
  EXPECT_EQ(p.kinds.at("anomaly"), 36'500 * kDay);
  EXPECT_EQ(p.kinds.at("drift"), 12 * kHour);
  EXPECT_EQ(p.default_ms, INT64_MAX);
  EXPECT_EQ(p.keys_after_expiry_ms, 90 * kDay);  // the default
  EXPECT_FALSE(p.empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      p, ParseRetentionPolicy({{"sample", "30d"}, {"keys_after_expiry", "14d"}}));
  EXPECT_EQ(p.keys_after_expiry_ms, 14 * kDay);
  EXPECT_FALSE(p.kinds.contains("keys_after_expiry"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(p, ParseRetentionPolicy({{"keys_after_expiry", "forever"}}));
  EXPECT_EQ(p.keys_after_expiry_ms, INT64_MAX);
  OUTPOST_ASSERT_OK_AND_ASSIGN(p, ParseRetentionPolicy({{"default", "forever"}}));
  EXPECT_TRUE(p.empty());
  for (const auto& bad : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {},
           {{"sample", "30"}},
           {{"sample", "0d"}},
           {{"sample", "-1d"}},
           {{"sample", "36501d"}},
           {{"sample", "1.5d"}},
           {{"sample", "30 d"}},
           {{"sample", "1w"}},
           {{"sample", ""}},
           {{"", "1d"}},
           {{"sample", "1d"}, {"sample", "2d"}},
           {{"keys_after_expiry", "0d"}},
           {{"keys_after_expiry", "1d"}, {"keys_after_expiry", "2d"}}}) {
    Result<RetentionPolicy> r = ParseRetentionPolicy(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().reason(), "bad_retention") << r.status().ToString();
  }
}

TEST_F(Retention, ABadPolicyOrTheSqliteStoreIsRefusedWithNothingChanged) {
  Put({Rec("s1", 1, "sample")}, kDay0 + kHour);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto exporter, FileExporter::Open(exports_));
  for (const RetentionPolicy& bad :
       {RetentionPolicy{.kinds = {{"sample", 0}}}, RetentionPolicy{.default_ms = -kDay},
        RetentionPolicy{.kinds = {{"", kDay}}}}) {
    EXPECT_EQ(store_->ApplyRetention(bad, kDay0 + 10 * kDay, *exporter).status().code(),
              StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(All().size(), 1u);
  EXPECT_EQ(Count("retention_exports"), 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<std::string> files, ListDirectory(exports_));
  EXPECT_TRUE(files.empty());

  // SQLite keeps every record: retention is refused there, and the runner does not start.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sqlite, OpenStore("sqlite:" + dir_.File("hub.db")));
  OUTPOST_ASSERT_OK(sqlite->CreateSite(Site{.site_id = "s1", .tenant = "acme"}));
  std::vector<HubRecord> recs = {Rec("s1", 1, "sample")};
  OUTPOST_ASSERT_OK(sqlite->Ingest(KeyOf(recs), recs, {}, 1));
  RetentionPolicy policy{.kinds = {{"sample", kHour}}};
  Result<RetentionResult> r = sqlite->ApplyRetention(policy, kDay0, *exporter);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().reason(), "retention_unsupported");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto left, sqlite->QueryRecords({.tenant = "acme"}));
  EXPECT_EQ(left.size(), 1u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto lease, SchedulerLease::Start(*sqlite, {.holder = "a"}));
  std::string other = dir_.File("other-retention");
  Result<std::unique_ptr<RetentionRunner>> runner =
      RetentionRunner::Start(*sqlite, *lease, {.policy = policy, .export_dir = other});
  EXPECT_EQ(runner.status().reason(), "retention_unsupported");
  EXPECT_FALSE(PathExists(other));
}

// Of two hubs on one database, only the lease holder's runner runs passes.
TEST_F(Retention, OnlyTheLeaseHolderRunsPasses) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto other_store, OpenStore(url_));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto lease_a, SchedulerLease::Start(*store_, {.holder = "a"}));
  ASSERT_TRUE(lease_a->Held());
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto lease_b, SchedulerLease::Start(*other_store, {.holder = "b"}));
  ASSERT_FALSE(lease_b->Held());
  RetentionPolicy policy{.kinds = {{"sample", kHour}}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto runner_b, RetentionRunner::Start(*other_store, *lease_b,
                                            {.policy = policy, .export_dir = exports_ + "-b"}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto runner_a,
      RetentionRunner::Start(*store_, *lease_a, {.policy = policy, .export_dir = exports_}));
  for (int i = 0; i < 3000 && runner_a->passes() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(runner_a->passes(), 1);
  runner_a->Stop();
  runner_b->Stop();
  EXPECT_EQ(runner_b->passes(), 0);
}

// The holder runs a pass every `every` (the config's scheduler.retention_every_s), not only
// when it takes the lease.
TEST_F(Retention, TheHolderRunsAPassEveryInterval) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto lease, SchedulerLease::Start(*store_, {.holder = "a"}));
  ASSERT_TRUE(lease->Held());
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto runner, RetentionRunner::Start(*store_, *lease,
                                          {.policy = RetentionPolicy{.kinds = {{"sample", kHour}}},
                                           .export_dir = exports_,
                                           .every = std::chrono::milliseconds(20)}));
  for (int i = 0; i < 3000 && runner->passes() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(runner->passes(), 3);
  runner->Stop();
}

}  // namespace
}  // namespace outpost::hub
