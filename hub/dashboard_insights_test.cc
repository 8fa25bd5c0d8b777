// The global insights of the query API (hub/QUERY_API.md, "Global insights") over a real
// SQLite store: the numbers of each view, the k-threshold on fleet-wide aggregates (shown
// at k contributing sites, withheld below), tenancy, bounds and refusals.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/json/json.h"
#include "base/json/json_testing.h"
#include "base/testing/test_util.h"
#include "hub/dashboard.h"
#include "hub/store.h"

namespace outpost::hub {
namespace {

using json::AsDouble;
using json::AsInt;
using json::AsString;
using outpost::testing::TempDir;

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kNow = 1'700'006'400'000;  // 2023-11-15 00:00:00 UTC, a whole hour

std::string Aggregate(uint64_t rows, uint64_t anomalies) {
  return R"({"v":1,"kind":"aggregate","model":"pump","version":3,"rows":)" + std::to_string(rows) +
         R"(,"anomalies":)" + std::to_string(anomalies) + "}";
}

std::string Drift(const std::string& feature, double psi) {
  return R"({"v":1,"kind":"drift","model":"pump","version":3,"feature":")" + feature +
         R"(","psi":)" + std::to_string(psi) + R"(,"level":0.2})";
}

std::string AuditLine(uint64_t seq, int64_t time_ms, const std::string& decision,
                      const std::string& reason, const std::string& kind) {
  return R"({"seq":)" + std::to_string(seq) + R"(,"time_ms":)" + std::to_string(time_ms) +
         R"(,"decision":")" + decision + R"(","reason":")" + reason + R"(","kind":")" + kind +
         R"(","site":"x","node":"n1","stream":"pump","rseq":)" + std::to_string(seq) +
         R"(,"policy":"sha256:aa","prev":"00"})"
         "\n";
}

struct AuditRow {
  int64_t time_ms;
  std::string decision, reason, kind;
};

class InsightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OUTPOST_ASSERT_OK_AND_ASSIGN(store_, OpenStore("sqlite:" + dir_.File("hub.db")));
    clock_.SetWall(Clock::WallTime(std::chrono::milliseconds(kNow)));
    for (auto [site, tenant] :
         {std::pair{"s1", "acme"}, std::pair{"s2", "acme"}, std::pair{"s3", "acme"},
          std::pair{"s4", "acme"}, std::pair{"o1", "other"}}) {
      OUTPOST_ASSERT_OK(store_->CreateSite(
          Site{.site_id = site, .tenant = tenant, .region = "eu", .created_ms = 1}));
    }
    const int64_t a = kNow - 3 * kHour;  // bucket A: s1, s2, s3 contribute
    const int64_t b = kNow - 2 * kHour;  // bucket B: s1, s2 (s4's aggregate counts no row)
    Add("s1", "aggregate", a + 1000, Aggregate(100, 4));
    Add("s2", "aggregate", a + 1000, Aggregate(200, 2));
    Add("s3", "aggregate", a + 1000, Aggregate(300, 30));
    Add("s1", "aggregate", b + 1000, Aggregate(100, 1));
    Add("s2", "aggregate", b + 1000, Aggregate(100, 3));
    Add("s4", "aggregate", b + 1000, Aggregate(0, 0));
    Add("o1", "aggregate", a + 1000, Aggregate(5000, 5000));
    // Before the range: not counted.
    Add("s1", "aggregate", kNow - 9 * 24 * kHour, Aggregate(999, 999));

    Add("s1", "drift", a + 2000, Drift("temp", 0.3));
    Add("s1", "drift", b + 2000, Drift("temp", 0.5));
    Add("s1", "drift", b + 3000, Drift("vibration", 0.4));
    Add("s2", "drift", a + 2000, Drift("temp", 0.1));
    Add("s3", "drift", a + 2000, Drift("temp", 0.2));
    Add("o1", "drift", a + 2000, Drift("temp", 0.9));

    Add("s1", "event", a + 4000,
        R"({"v":1,"kind":"event","model":"pump","version":5,"event":"shadow_promoted",)"
        R"("shadow_version":5,"champion_version":4,"compared":1200,"agreed":1100,)"
        R"("agreement":0.9167,"labelled":80,"champion_accuracy":0.85,"shadow_accuracy":0.9,)"
        R"("persisted":true})");
    Add("s2", "event", b + 4000,
        R"({"v":1,"kind":"event","model":"pump","version":4,"event":"shadow_dropped",)"
        R"("shadow_version":5,"champion_version":4,"compared":300,"persisted":false})");
    Add("s3", "event", b + 5000, R"({"v":1,"kind":"event","event":"installed"})");
    Add("o1", "event", b + 4000,
        R"({"v":1,"kind":"event","event":"shadow_promoted","shadow_version":2})");

    audit_["s1"] = {{a, "allowed", "", "anomaly"},
                    {a + 1, "withheld", "aggregates_only", "sample"},
                    {b, "withheld", "raw_not_allowed_in_region", "anomaly"},
                    {b + 1, "rejected", "count_missing", "aggregate"}};
    audit_["s2"] = {{a, "withheld", "aggregates_only", "sample"},
                    {b, "withheld", "aggregates_only", "sample"}};
    audit_["s3"] = {{b, "withheld", "aggregates_only", "sample"}};
    audit_["o1"] = {{b, "withheld", "aggregates_only", "sample"}};
    for (const auto& [site, records] : records_) {
      OUTPOST_ASSERT_OK(Ingest(site, records));
    }
  }

  void Add(const std::string& site, std::string kind, int64_t at, std::string payload) {
    std::vector<HubRecord>& records = records_[site];
    records.push_back(HubRecord{.site_id = site,
                                .node_id = "n1",
                                .stream = "pump",
                                .seq = records.size() + 1,
                                .kind = std::move(kind),
                                .created_ms = at,
                                .payload = std::move(payload)});
  }

  // Stores a site's records in one batch, with its audit lines.
  Status Ingest(const std::string& site, const std::vector<HubRecord>& records) {
    BatchKey key{.site_id = site,
                 .node_id = "n1",
                 .stream = "pump",
                 .first_seq = 1,
                 .last_seq = records.size(),
                 .content_sha256 = std::string(63, '0') + std::to_string(++batches_ % 10)};
    std::optional<AuditSegment> audit;
    if (!audit_[site].empty()) {
      std::string lines;
      uint64_t seq = 0;
      for (const AuditRow& row : audit_[site]) {
        lines += AuditLine(++seq, row.time_ms, row.decision, row.reason, row.kind);
      }
      audit = AuditSegment{.node_id = "n1",
                           .from_seq = 0,
                           .from_hash = std::string(64, '0'),
                           .to_seq = seq,
                           .to_hash = std::string(64, 'a'),
                           .lines = lines};
    }
    auto result = store_->Ingest(key, records, audit, kNow - kHour);
    return result.ok() ? Status() : result.status();
  }

  // The answer of `target` for `tenant` from a dashboard with these options.
  HubResponse Get(const std::string& target, DashboardOptions options = {},
                  const std::string& tenant = "acme") {
    options.clock = &clock_;
    Dashboard dashboard(store_.get(), dir_.File("dist"), options);
    HubRequest request{.method = "GET", .target = target};
    if (!tenant.empty()) request.caller = Caller{.kind = Caller::Kind::kOperator, .tenant = tenant};
    return dashboard.Handle(request);
  }

  json::Value GetJson(const std::string& target, DashboardOptions options = {},
                      const std::string& tenant = "acme") {
    HubResponse response = Get(target, options, tenant);
    EXPECT_EQ(response.status, 200) << target << " -> " << response.body;
    bodies_.push_back(std::make_unique<std::string>(response.body));
    parsers_.push_back(std::make_unique<json::Parser>());
    Result<json::Value> e = parsers_.back()->Parse(*bodies_.back());
    EXPECT_TRUE(e.ok()) << response.body;
    return e.ok() ? *e : json::Value();
  }

  std::string Reason(const std::string& target, int status, const std::string& tenant = "acme") {
    HubResponse response = Get(target, {}, tenant);
    EXPECT_EQ(response.status, status) << target << " -> " << response.body;
    json::Parser parser;
    Result<json::Value> e = parser.Parse(response.body);
    if (!e.ok()) return "(not json)";
    return std::string(AsString((*e)["reason"]));
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::map<std::string, std::vector<HubRecord>> records_;
  std::map<std::string, std::vector<AuditRow>> audit_;
  uint64_t batches_ = 0;
  std::vector<std::unique_ptr<std::string>> bodies_;
  std::vector<std::unique_ptr<json::Parser>> parsers_;
};

std::string AnomalyTarget() {
  return "/api/v1/insights/anomaly?since=" + std::to_string(kNow - 3 * kHour) +
         "&until=" + std::to_string(kNow) + "&bucket=" + std::to_string(kHour);
}

TEST_F(InsightsTest, AnomalyRatePerSiteAndTheFleetWhereEnoughSitesContribute) {
  json::Value e = GetJson(AnomalyTarget());
  EXPECT_EQ(AsInt(e["min_sites"]), 3);
  EXPECT_FALSE(*e["truncated"].GetBool());
  // Sites with aggregates in the range, by id; the other tenant's is not there.
  std::vector<std::string> ids;
  for (json::Value site : e["sites"].Items()) ids.emplace_back(AsString(site["site_id"]));
  EXPECT_EQ(ids, (std::vector<std::string>{"s1", "s2", "s3", "s4"}));
  json::Value s1 = e["sites"].At(0);
  EXPECT_EQ(AsInt(s1["rows"]), 200);
  EXPECT_EQ(AsInt(s1["anomalies"]), 5);
  EXPECT_DOUBLE_EQ(AsDouble(s1["anomaly_rate"]), 0.025);
  ASSERT_EQ(s1["buckets"].size(), 3u);
  EXPECT_EQ(AsInt(s1["buckets"].At(0)["start_ms"]), kNow - 3 * kHour);
  EXPECT_EQ(AsInt(s1["buckets"].At(1)["anomalies"]), 1);
  EXPECT_TRUE(s1["buckets"].At(2)["anomaly_rate"].is_null());
  EXPECT_TRUE(e["sites"].At(3)["anomaly_rate"].is_null());  // s4 counted no row

  // The fleet: bucket A has 3 contributing sites (shown), bucket B 2 (withheld).
  json::Value fleet = e["fleet"];
  EXPECT_EQ(AsInt(fleet["sites"]), 3);
  EXPECT_EQ(AsInt(fleet["rows"]), 800);
  EXPECT_EQ(AsInt(fleet["anomalies"]), 40);
  EXPECT_DOUBLE_EQ(AsDouble(fleet["anomaly_rate"]), 0.05);
  EXPECT_FALSE(*fleet["withheld"].GetBool());
  json::Value a = fleet["buckets"].At(0);
  EXPECT_EQ(AsInt(a["sites"]), 3);
  EXPECT_EQ(AsInt(a["rows"]), 600);
  EXPECT_EQ(AsInt(a["anomalies"]), 36);
  EXPECT_DOUBLE_EQ(AsDouble(a["anomaly_rate"]), 0.06);
  EXPECT_FALSE(*a["withheld"].GetBool());
  json::Value b = fleet["buckets"].At(1);
  EXPECT_EQ(AsInt(b["sites"]), 2);
  EXPECT_TRUE(b["rows"].is_null());
  EXPECT_TRUE(b["anomalies"].is_null());
  EXPECT_TRUE(b["anomaly_rate"].is_null());
  EXPECT_TRUE(*b["withheld"].GetBool());
  EXPECT_EQ(AsInt(fleet["buckets"].At(2)["sites"]), 0);
}

TEST_F(InsightsTest, TheThresholdComesFromTheOptionsAndWithholdsEveryFleetAggregateBelowIt) {
  json::Value e = GetJson(AnomalyTarget(), {.min_fleet_sites = 4});
  EXPECT_EQ(AsInt(e["min_sites"]), 4);
  EXPECT_TRUE(*e["fleet"]["withheld"].GetBool());
  EXPECT_TRUE(e["fleet"]["rows"].is_null());
  EXPECT_TRUE(e["fleet"]["anomaly_rate"].is_null());
  EXPECT_EQ(AsInt(e["fleet"]["sites"]), 3);
  EXPECT_TRUE(*e["fleet"]["buckets"].At(0)["withheld"].GetBool());
  // Per-site numbers are never withheld.
  EXPECT_EQ(AsInt(e["sites"].At(0)["rows"]), 200);

  json::Value low = GetJson(AnomalyTarget(), {.min_fleet_sites = 2});
  EXPECT_FALSE(*low["fleet"]["buckets"].At(1)["withheld"].GetBool());
  EXPECT_EQ(AsInt(low["fleet"]["buckets"].At(1)["rows"]), 200);

  // The other tenant has one site: its fleet is withheld, and acme's numbers are not in it.
  json::Value other = GetJson(AnomalyTarget(), {}, "other");
  ASSERT_EQ(other["sites"].size(), 1u);
  EXPECT_EQ(AsInt(other["sites"].At(0)["rows"]), 5000);
  EXPECT_TRUE(*other["fleet"]["withheld"].GetBool());
  EXPECT_EQ(AsInt(other["fleet"]["sites"]), 1);
}

TEST_F(InsightsTest, DriftMapHasTheLargestPsiPerSiteAndFeature) {
  json::Value e = GetJson("/api/v1/insights/drift?since=" + std::to_string(kNow - 3 * kHour));
  std::vector<std::string> sites;
  for (json::Value s : e["sites"].Items()) sites.emplace_back(AsString(s));
  EXPECT_EQ(sites, (std::vector<std::string>{"s1", "s2", "s3", "s4"}));
  ASSERT_EQ(e["features"].size(), 2u);
  EXPECT_EQ(AsString(e["features"].At(0)["feature"]), "temp");
  EXPECT_EQ(AsString(e["features"].At(1)["feature"]), "vibration");
  ASSERT_EQ(e["cells"].size(), 4u);
  json::Value s1_temp = e["cells"].At(0);
  EXPECT_EQ(AsString(s1_temp["site_id"]), "s1");
  EXPECT_EQ(AsString(s1_temp["feature"]), "temp");
  EXPECT_DOUBLE_EQ(AsDouble(s1_temp["max_psi"]), 0.5);
  EXPECT_EQ(AsInt(s1_temp["records"]), 2);
  EXPECT_EQ(AsInt(s1_temp["last_ms"]), kNow - 2 * kHour + 2000);
  EXPECT_DOUBLE_EQ(AsDouble(s1_temp["level"]), 0.2);
  // The fleet: temp drifts at 3 sites (mean of their largest PSI), vibration at 1.
  json::Value temp = e["fleet"].At(0);
  EXPECT_EQ(AsInt(temp["sites"]), 3);
  EXPECT_NEAR(AsDouble(temp["mean_max_psi"]), (0.5 + 0.1 + 0.2) / 3, 1e-9);
  EXPECT_FALSE(*temp["withheld"].GetBool());
  json::Value vibration = e["fleet"].At(1);
  EXPECT_EQ(AsInt(vibration["sites"]), 1);
  EXPECT_TRUE(vibration["mean_max_psi"].is_null());
  EXPECT_TRUE(*vibration["withheld"].GetBool());
  // k = 4: temp is withheld too.
  json::Value k4 = GetJson("/api/v1/insights/drift?since=" + std::to_string(kNow - 3 * kHour),
                           {.min_fleet_sites = 4});
  EXPECT_TRUE(*k4["fleet"].At(0)["withheld"].GetBool());
}

TEST_F(InsightsTest, WithheldCountsTheAuditLinesByRuleAndNeverAnswersALine) {
  HubResponse raw = Get("/api/v1/insights/withheld");
  EXPECT_EQ(raw.body.find("rseq"), std::string::npos) << raw.body;
  EXPECT_EQ(raw.body.find("sha256:aa"), std::string::npos);
  json::Value e = GetJson("/api/v1/insights/withheld");
  ASSERT_EQ(e["sites"].size(), 4u);
  json::Value s1 = e["sites"].At(0);
  EXPECT_EQ(AsString(s1["site_id"]), "s1");
  EXPECT_EQ(AsInt(s1["lines"]), 4);
  EXPECT_EQ(AsInt(s1["decisions"]["allowed"]), 1);
  EXPECT_EQ(AsInt(s1["decisions"]["withheld"]), 2);
  EXPECT_EQ(AsInt(s1["decisions"]["rejected"]), 1);
  ASSERT_EQ(s1["rules"].size(), 3u);
  EXPECT_EQ(AsString(s1["rules"].At(0)["decision"]), "rejected");
  EXPECT_EQ(AsString(s1["rules"].At(0)["reason"]), "count_missing");
  EXPECT_EQ(AsString(s1["rules"].At(1)["reason"]), "aggregates_only");
  EXPECT_EQ(AsString(s1["rules"].At(1)["kind"]), "sample");
  EXPECT_EQ(AsInt(s1["rules"].At(1)["count"]), 1);
  EXPECT_EQ(AsInt(e["sites"].At(1)["rules"].At(0)["count"]), 2);  // s2
  EXPECT_EQ(AsInt(e["sites"].At(3)["lines"]), 0);                 // s4: none
  // The fleet: aggregates_only at 3 sites (4 lines) is shown; the others at one site are not.
  ASSERT_EQ(e["fleet"].size(), 3u);
  json::Value rejected = e["fleet"].At(0);
  EXPECT_EQ(AsString(rejected["reason"]), "count_missing");
  EXPECT_TRUE(rejected["count"].is_null());
  EXPECT_TRUE(*rejected["withheld"].GetBool());
  json::Value only = e["fleet"].At(1);
  EXPECT_EQ(AsString(only["reason"]), "aggregates_only");
  EXPECT_EQ(AsInt(only["sites"]), 3);
  EXPECT_EQ(AsInt(only["count"]), 4);
  EXPECT_FALSE(*only["withheld"].GetBool());

  // since/until filter on the lines' time: from bucket B on, s2 has one line left.
  json::Value later =
      GetJson("/api/v1/insights/withheld?since=" + std::to_string(kNow - 2 * kHour));
  EXPECT_EQ(AsInt(later["sites"].At(1)["decisions"]["withheld"]), 1);
  EXPECT_EQ(AsInt(later["sites"].At(0)["decisions"]["allowed"]), 0);
}

TEST_F(InsightsTest, ShadowResultsAreTheSitesShadowEventsNewestFirst) {
  json::Value e = GetJson("/api/v1/insights/shadow?model=pump");
  EXPECT_FALSE(*e["truncated"].GetBool());
  ASSERT_EQ(e["results"].size(), 2u);
  json::Value dropped = e["results"].At(0);
  EXPECT_EQ(AsString(dropped["site_id"]), "s2");
  EXPECT_EQ(AsString(dropped["event"]), "shadow_dropped");
  EXPECT_EQ(AsInt(dropped["compared"]), 300);
  EXPECT_TRUE(dropped["agreement"].is_null());
  EXPECT_FALSE(*dropped["persisted"].GetBool());
  json::Value promoted = e["results"].At(1);
  EXPECT_EQ(AsString(promoted["site_id"]), "s1");
  EXPECT_EQ(AsInt(promoted["shadow_version"]), 5);
  EXPECT_EQ(AsInt(promoted["champion_version"]), 4);
  EXPECT_EQ(AsInt(promoted["agreed"]), 1100);
  EXPECT_DOUBLE_EQ(AsDouble(promoted["shadow_accuracy"]), 0.9);
  EXPECT_EQ(GetJson("/api/v1/insights/shadow?model=fan")["results"].size(), 0u);
}

TEST_F(InsightsTest, ScansAreBoundedAndSayTruncated) {
  json::Value e = GetJson(AnomalyTarget(), {.max_scan_records = 2});
  EXPECT_TRUE(*e["truncated"].GetBool());
  EXPECT_TRUE(
      *GetJson("/api/v1/insights/withheld", {.max_scan_records = 3})["truncated"].GetBool());
  EXPECT_TRUE(*GetJson("/api/v1/insights/shadow", {.max_scan_records = 1})["truncated"].GetBool());
  EXPECT_TRUE(
      *GetJson("/api/v1/insights/drift?since=0", {.max_scan_records = 1})["truncated"].GetBool());
}

TEST_F(InsightsTest, RefusalsCarryTheirReasons) {
  EXPECT_EQ(Reason("/api/v1/insights/anomaly", 401, ""), "unauthenticated");
  EXPECT_EQ(Reason("/api/v1/insights/nope", 404), "not_found");
  EXPECT_EQ(Reason("/api/v1/insights/anomaly?site=s1", 400), "unknown_parameter");
  EXPECT_EQ(Reason("/api/v1/insights/withheld?model=pump", 400), "unknown_parameter");
  EXPECT_EQ(Reason("/api/v1/insights/anomaly?bucket=10", 400), "bad_parameter");
  EXPECT_EQ(
      Reason("/api/v1/insights/anomaly?since=0&until=" + std::to_string(kNow) + "&bucket=60000",
             400),
      "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/insights/drift?since=5&until=4", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/insights/shadow?model=Bad!", 400), "bad_parameter");
}

}  // namespace
}  // namespace outpost::hub
