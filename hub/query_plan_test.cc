// The dashboard's heavy reads answer from indexes (hub/STORE.md section 6, reads at scale),
// on both engines: a fleet of 400 sites with about a hundred records each is stored through
// Ingest, the planner is shown it (PostgreSQL: ANALYZE, as autovacuum does; SQLite: as the
// hub runs it, without statistics), and the plan of each read is checked for the index it
// must use and for no scan of the whole records table (or of the busy partition).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "hub/store.h"
#include "hub/testing/postgres_cluster.h"
#include "hub/testing/postgres_environment.h"

namespace outpost::hub {
namespace {

using ::outpost::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::PostgresEnvironment;

const ::testing::Environment* const kPostgresEnv =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment());

constexpr int kSites = 400;
constexpr int64_t kDayMs = 86'400'000;
// 2026-12-07 12:00 UTC: every record is received on this day, so PostgreSQL stores them all
// in one partition, records_p20261207.
constexpr int64_t kNow = 1'796'644'800'000;
constexpr const char* kBusyPartition = "records_p20261207";

std::string SiteName(int i) {
  std::string digits = std::to_string(i);
  return "site-" + std::string(4 - digits.size(), '0') + digits;
}

// A site's model records: mostly anomalies and hard examples, few aggregates, drift and
// feedback records, created over the last 30 days, as a site's outbox sends them.
std::vector<HubRecord> ModelRecords(const std::string& site) {
  std::vector<HubRecord> out;
  for (uint64_t seq = 1; seq <= 96; ++seq) {
    const char* kind = seq % 24 == 0   ? "aggregate"
                       : seq % 32 == 1 ? "drift"
                       : seq % 16 == 5 ? "feedback"
                       : seq % 3 == 0  ? "hard_example"
                                       : "anomaly";
    out.push_back(HubRecord{.site_id = site,
                            .node_id = "n1",
                            .stream = "pump",
                            .seq = seq,
                            .kind = kind,
                            .created_ms = kNow - static_cast<int64_t>(seq) * 30 * kDayMs / 96,
                            .payload = R"({"score":)" + std::to_string(seq) + "}"});
  }
  return out;
}

// The site's outbox summaries (kind event, stream _outbox), one a day for the last 4 days.
std::vector<HubRecord> SummaryRecords(const std::string& site) {
  std::vector<HubRecord> out;
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    out.push_back(HubRecord{.site_id = site,
                            .node_id = "n1",
                            .stream = "_outbox",
                            .seq = seq,
                            .kind = "event",
                            .created_ms = kNow - static_cast<int64_t>(seq) * kDayMs,
                            .payload = R"({"type":"outbox_summary"})"});
  }
  return out;
}

BatchKey KeyOf(const std::vector<HubRecord>& records) {
  return BatchKey{.site_id = records.front().site_id,
                  .node_id = records.front().node_id,
                  .stream = records.front().stream,
                  .first_seq = records.front().seq,
                  .last_seq = records.back().seq,
                  .content_sha256 = std::string(64, 'b')};
}

// Stores the fleet in a fresh database of `engine` and returns its URL.
Result<std::string> SeedFleet(const std::string& engine, const std::string& sqlite_file) {
  OUTPOST_ASSIGN_OR_RETURN(std::string url,
                           PostgresEnvironment::FreshDatabaseUrl(engine, sqlite_file, "plan"));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenStore(url));
  OUTPOST_RETURN_IF_ERROR(store->MaintainPartitions(kNow));
  for (int i = 0; i < kSites; ++i) {
    const std::string site = SiteName(i);
    OUTPOST_RETURN_IF_ERROR(store->CreateSite(
        Site{.site_id = site, .tenant = "acme", .region = "eu", .created_ms = 5}));
    for (const std::vector<HubRecord>& batch : {ModelRecords(site), SummaryRecords(site)}) {
      OUTPOST_ASSIGN_OR_RETURN(IngestResult r, store->Ingest(KeyOf(batch), batch, {}, kNow));
      if (r.outcome != IngestOutcome::kStored) return InternalError("a batch was not stored");
    }
  }
  if (engine == "postgresql") {
    RunResult r =
        RunProgram({"/usr/bin/psql", "-v", "ON_ERROR_STOP=1", "-q", url, "-c", "ANALYZE records"});
    if (r.exit_code != 0) return InternalError("ANALYZE: " + r.err);
  }
  return url;
}

class QueryPlan : public ::testing::TestWithParam<std::string> {
 protected:
  // One fleet per engine for every test of this binary: storing it is the slow part. Tests
  // only read it, but for the last, which puts back what it drops.
  void SetUp() override {
    static TempDir* const dir = new TempDir();
    static std::map<std::string, std::string>* const urls =
        new std::map<std::string, std::string>();
    auto it = urls->find(GetParam());
    if (it == urls->end()) {
      OUTPOST_ASSERT_OK_AND_ASSIGN(std::string url, SeedFleet(GetParam(), dir->File("hub.db")));
      it = urls->emplace(GetParam(), url).first;
    }
    url_ = it->second;
    OUTPOST_ASSERT_OK_AND_ASSIGN(store_, OpenStore(url_));
  }

  // Runs SQL on the fleet's database with the engine's own command-line client.
  void RawSql(const std::string& sql) {
    RunResult r =
        GetParam() == "sqlite"
            ? RunProgram({"/usr/bin/sqlite3", url_.substr(7), sql})
            : RunProgram({"/usr/bin/psql", "-v", "ON_ERROR_STOP=1", "-q", url_, "-c", sql});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::string Plan(const RecordQuery& query) {
    Result<std::string> plan = store_->ExplainRecordQuery(query);
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    return plan.ok() ? *plan : "";
  }

  // The name the engine's plan gives index `name` of records (PostgreSQL: the busy
  // partition's copy of it, named after its columns).
  std::string IndexName(const std::string& sqlite_name, const std::string& columns) {
    return GetParam() == "sqlite" ? sqlite_name : std::string(kBusyPartition) + "_" + columns;
  }

  // Checks that the plan reads no busy table whole.
  void ExpectNoFullScan(const std::string& plan) {
    if (GetParam() == "sqlite") {
      EXPECT_THAT(plan, Not(::testing::ContainsRegex("SCAN records($|\n| )"))) << plan;
    } else {
      EXPECT_THAT(plan, Not(HasSubstr(std::string("Seq Scan on ") + kBusyPartition))) << plan;
    }
  }

  // Checks that the plan of `query` uses the index `sqlite_name` (PostgreSQL: the busy
  // partition's copy of it, named after `columns`) and reads no busy table whole.
  void ExpectIndex(const RecordQuery& query, const std::string& sqlite_name,
                   const std::string& columns) {
    const std::string plan = Plan(query);
    EXPECT_THAT(plan, HasSubstr(IndexName(sqlite_name, columns))) << plan;
    ExpectNoFullScan(plan);
  }

  TempDir dir_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

// A site's storms: its outbox summaries of the last week (hub/dashboard_storms.cc).
TEST_P(QueryPlan, ASitesSummariesAreReadFromTheSiteIndex) {
  ExpectIndex(RecordQuery{.tenant = "acme",
                          .site_id = SiteName(123),
                          .kind = "event",
                          .stream = "_outbox",
                          .since_ms = kNow - 7 * kDayMs,
                          .limit = 1000},
              "records_site_kind_created", "site_id_kind_created_ms_idx");
}

// A page of the fleet table: the summaries of a hundred sites in one read.
TEST_P(QueryPlan, APageOfSitesSummariesIsReadFromTheSiteIndex) {
  std::vector<std::string> page;
  for (int i = 100; i < 200; ++i) page.push_back(SiteName(i));
  ExpectIndex(RecordQuery{.tenant = "acme",
                          .site_ids = page,
                          .kind = "event",
                          .stream = "_outbox",
                          .since_ms = kNow - 7 * kDayMs,
                          .limit = 1000},
              "records_site_kind_created", "site_id_kind_created_ms_idx");
}

// A site's series: its aggregate records of a week, every model (hub/dashboard_series.cc).
TEST_P(QueryPlan, ASitesSeriesIsReadFromTheSiteIndex) {
  ExpectIndex(RecordQuery{.tenant = "acme",
                          .site_id = SiteName(7),
                          .kind = "aggregate",
                          .since_ms = kNow - 7 * kDayMs,
                          .until_ms = kNow,
                          .limit = 10'000},
              "records_site_kind_created", "site_id_kind_created_ms_idx");
}

// The fleet's aggregates of one model over a day (hub/dashboard_aggregates.cc).
TEST_P(QueryPlan, TheFleetsAggregatesAreReadFromTheKindIndex) {
  ExpectIndex(RecordQuery{.tenant = "acme",
                          .kind = "aggregate",
                          .stream = "pump",
                          .since_ms = kNow - kDayMs,
                          .until_ms = kNow,
                          .limit = 10'000},
              "records_tenant_kind_created", "tenant_kind_created_ms_idx");
}

// The retraining scheduler's count of a model's feedback (hub/retrain_scheduler.cc).
TEST_P(QueryPlan, AModelsFeedbackIsCountedFromTheKindIndex) {
  Result<std::string> plan = store_->ExplainCountQuery(CountQuery{
      .tenant = "acme", .kind = "feedback", .stream = "pump", .bucket_ms = int64_t{1} << 40});
  OUTPOST_ASSERT_OK(plan.status());
  EXPECT_THAT(*plan,
              HasSubstr(IndexName("records_tenant_kind_created", "tenant_kind_created_ms_idx")))
      << *plan;
  ExpectNoFullScan(*plan);
}

// The records browser filtered by a site, first page and a later one: in id order, from
// whichever index the planner costs lower, never the whole table.
TEST_P(QueryPlan, TheRecordsBrowserOfOneSiteReadsNoTableWhole) {
  for (int64_t after : {int64_t{0}, int64_t{1} << 40}) {
    const std::string plan =
        Plan(RecordQuery{.tenant = "acme", .site_id = SiteName(399), .after_id = after});
    ExpectNoFullScan(plan);
    const std::string kind_plan = Plan(RecordQuery{
        .tenant = "acme", .site_id = SiteName(0), .kind = "feedback", .after_id = after});
    ExpectNoFullScan(kind_plan);
  }
}

// The checks bite: without the site index, a site's summaries are read another way. The
// index is put back for the other tests.
TEST_P(QueryPlan, WithoutTheSiteIndexThePlanChanges) {
  store_.reset();
  RawSql("DROP INDEX records_site_kind_created");
  OUTPOST_ASSERT_OK_AND_ASSIGN(store_, OpenStore(url_));
  const std::string plan = Plan(RecordQuery{.tenant = "acme",
                                            .site_id = SiteName(123),
                                            .kind = "event",
                                            .stream = "_outbox",
                                            .since_ms = kNow - 7 * kDayMs});
  EXPECT_THAT(plan, Not(HasSubstr("site_id_kind_created"))) << plan;
  EXPECT_THAT(plan, Not(HasSubstr("site_kind_created"))) << plan;
  RawSql("CREATE INDEX records_site_kind_created ON records(site_id, kind, created_ms)");
}

TEST_P(QueryPlan, AnExplainOfABadQueryIsRefused) {
  EXPECT_EQ(
      store_->ExplainRecordQuery(RecordQuery{.tenant = "acme", .site_id = "a", .site_ids = {"b"}})
          .status()
          .code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(store_
                ->ExplainRecordQuery(
                    RecordQuery{.tenant = "acme", .site_ids = std::vector<std::string>(1001, "s")})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ExplainRecordQuery(RecordQuery{.tenant = ""}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ExplainCountQuery(CountQuery{.tenant = "acme", .bucket_ms = 0}).status().code(),
            StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Engines, QueryPlan, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

}  // namespace
}  // namespace outpost::hub
