// The dashboard's query API and assets over a real SQLite store: tenancy, honest health,
// series, aggregates, records with cursors, audit trail, training data, what runs where
// (installs, from reports and from bundle events), and every bad
// parameter answered with its reason.
#include "hub/dashboard.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/file.h"
#include "base/json/json.h"
#include "base/json/json_testing.h"
#include "base/testing/test_util.h"
#include "hub/store.h"

namespace outpost::hub {
namespace {

using json::AsDouble;
using json::AsInt;
using json::AsString;
using json::AsUint;
using outpost::testing::TempDir;

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;
// A whole day, so bucket arithmetic is easy to follow.
constexpr int64_t kNow = 1'700'006'400'000;  // 2023-11-15 00:00:00 UTC

std::string Hex64(uint64_t n) {
  std::string s = std::to_string(n);
  return std::string(64 - s.size(), '0') + s;
}

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenStore("sqlite:" + dir_.File("hub.db"));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    clock_.SetWall(Clock::WallTime(std::chrono::milliseconds(kNow)));
    OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("dist/assets")));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("dist/index.html"), "<!doctype html>hub"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("dist/assets/app-1.js"), "console.log(1)"));
    dashboard_ = std::make_unique<Dashboard>(store_.get(), dir_.File("dist"),
                                             DashboardOptions{.clock = &clock_});

    // Tenant "acme": plant-1 heard from an hour ago, plant-2 silent for 5 days, plant-3 never.
    // Tenant "other": ship-9.
    for (auto [site, tenant] : {std::pair{"plant-1", "acme"}, std::pair{"plant-2", "acme"},
                                std::pair{"plant-3", "acme"}, std::pair{"ship-9", "other"}}) {
      OUTPOST_ASSERT_OK(store_->CreateSite(
          Site{.site_id = site, .tenant = tenant, .region = "eu", .created_ms = kNow - 30 * kDay}));
    }
    NodeStatus n1{.site_id = "plant-1",
                  .node_id = "n1",
                  .reported_ms = kNow - kHour,
                  .backlog_records = 10,
                  .backlog_bytes = 1000,
                  .autonomy_days = 4.0,
                  .models_json = R"([{"name":"pump","version":3,"state":"AVAILABLE"}])"};
    OUTPOST_ASSERT_OK(store_->PutNodeStatus(n1, kNow - kHour));
    NodeStatus n2 = n1;
    n2.node_id = "n2";
    n2.backlog_records = 5;
    n2.backlog_bytes = 500;
    n2.autonomy_days = 3.0;
    n2.models_json = R"([{"name":"pump","version":4,"state":"AVAILABLE"}])";
    OUTPOST_ASSERT_OK(store_->PutNodeStatus(n2, kNow - 2 * kHour));
    NodeStatus silent{.site_id = "plant-2",
                      .node_id = "n1",
                      .reported_ms = kNow - 5 * kDay,
                      .backlog_records = 99,
                      .autonomy_days = 2.0};
    OUTPOST_ASSERT_OK(store_->PutNodeStatus(silent, kNow - 5 * kDay));

    // plant-1, stream pump: two aggregates and anomalies in the hour before now, one drift.
    std::vector<HubRecord> records;
    uint64_t seq = 0;
    auto add = [&](std::string kind, int64_t at, std::string payload) {
      records.push_back(HubRecord{.site_id = "plant-1",
                                  .node_id = "n1",
                                  .stream = "pump",
                                  .seq = ++seq,
                                  .kind = std::move(kind),
                                  .created_ms = at,
                                  .payload = std::move(payload)});
    };
    int64_t h = kNow - kHour;  // the start of the last hour bucket
    add("aggregate", h + 60'000,
        R"({"v":1,"kind":"aggregate","model":"pump","version":3,"rows":100,"anomalies":4,)"
        R"("hard_examples":2,"batches":5,"samples":1,"drifts":1,"nan_scores":0})");
    add("aggregate", h + 120'000,
        R"({"v":1,"kind":"aggregate","model":"pump","version":3,"rows":300,"anomalies":6,)"
        R"("hard_examples":1,"batches":7,"samples":0,"drifts":0,"nan_scores":2})");
    add("anomaly", h + 61'000, R"({"v":1,"kind":"anomaly","model":"pump","version":3})");
    add("anomaly", h + 62'000, R"({"v":1,"kind":"anomaly","model":"pump","version":3})");
    add("anomaly", h - 2 * kHour, R"({"v":1,"kind":"anomaly","model":"pump","version":3})");
    add("drift", h + 90'000,
        R"({"v":1,"kind":"drift","model":"pump","version":3,"feature":"temp","psi":0.41,)"
        R"("level":0.2})");
    add("feedback", h + 1000, R"({"v":1,"kind":"feedback","model":"pump","label":1})");
    add("feedback", h + 2000, R"({"v":1,"kind":"feedback","model":"pump","label":"ok"})");
    add("hard_example", h + 3000, R"({"v":1,"kind":"hard_example","model":"pump"})");
    add("event", h + 4000, "not json {");
    OUTPOST_ASSERT_OK(Ingest("plant-1", "n1", "pump", records, kNow - kHour, true));

    // plant-2 sent one anomaly before going silent; ship-9 (other tenant) has its own.
    OUTPOST_ASSERT_OK(Ingest("plant-2", "n1", "pump",
                             {HubRecord{.site_id = "plant-2",
                                        .node_id = "n1",
                                        .stream = "pump",
                                        .seq = 1,
                                        .kind = "anomaly",
                                        .created_ms = kNow - 5 * kDay - kHour,
                                        .payload = R"({"v":1})"}},
                             kNow - 5 * kDay, false));
    OUTPOST_ASSERT_OK(Ingest("ship-9", "n1", "pump",
                             {HubRecord{.site_id = "ship-9",
                                        .node_id = "n1",
                                        .stream = "pump",
                                        .seq = 1,
                                        .kind = "feedback",
                                        .created_ms = kNow - kHour,
                                        .payload = R"({"v":1,"label":0})"}},
                             kNow - kHour, false));
  }

  Status Ingest(const std::string& site, const std::string& node, const std::string& stream,
                std::vector<HubRecord> records, int64_t now_ms, bool with_audit) {
    BatchKey key{.site_id = site,
                 .node_id = node,
                 .stream = stream,
                 .first_seq = records.front().seq,
                 .last_seq = records.back().seq,
                 .content_sha256 = Hex64(++batches_)};
    std::optional<AuditSegment> audit;
    if (with_audit) {
      std::string lines;
      lines += R"({"seq":1,"time_ms":1,"decision":"allowed","reason":"","kind":"anomaly",)"
               R"("site":"plant-1","node":"n1","stream":"pump","rseq":3,"policy":"sha256:aa",)"
               R"("prev":"0000000000000000000000000000000000000000000000000000000000000000"})"
               "\n";
      lines += R"({"seq":2,"time_ms":2,"decision":"withheld","reason":"aggregates_only",)"
               R"("kind":"sample","site":"plant-1","node":"n1","stream":"pump","rseq":4,)"
               R"("policy":"sha256:aa","prev":"11"})"
               "\n";
      audit = AuditSegment{.node_id = node,
                           .from_seq = 0,
                           .from_hash = std::string(64, '0'),
                           .to_seq = 2,
                           .to_hash = Hex64(77),
                           .lines = lines};
    }
    auto result = store_->Ingest(key, records, audit, now_ms);
    return result.ok() ? Status() : result.status();
  }

  HubResponse Get(const std::string& target, const std::string& tenant = "acme") {
    HubRequest request{.method = "GET", .target = target};
    if (!tenant.empty()) {
      request.caller = Caller{.kind = Caller::Kind::kOperator, .tenant = tenant};
    }
    return dashboard_->Handle(request);
  }

  // The response's body parsed; fails the test on a status other than `status`.
  json::Value GetJson(const std::string& target, int status = 200,
                      const std::string& tenant = "acme") {
    HubResponse response = Get(target, tenant);
    EXPECT_EQ(response.status, status) << target << " -> " << response.body;
    body_ = response.body;
    Result<json::Value> e = parser_.Parse(body_);
    EXPECT_TRUE(e.ok()) << response.body;
    return e.ok() ? *e : json::Value();
  }

  std::string Reason(const std::string& target, int status) {
    json::Value e = GetJson(target, status);
    Result<std::string_view> reason = e["reason"].GetString();
    if (!reason.ok()) return "(none)";
    return std::string(*reason);
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Dashboard> dashboard_;
  uint64_t batches_ = 0;
  json::Parser parser_;
  std::string body_;
};

json::Value SiteById(json::Value fleet, std::string_view id) {
  for (json::Value site : fleet["sites"].Items()) {
    if (AsString(site["site_id"]) == id) return site;
  }
  ADD_FAILURE() << "no site " << id;
  return fleet;
}

TEST_F(DashboardTest, FleetShowsOnlyTheCallersSitesWithHonestHealth) {
  json::Value fleet = GetJson("/api/v1/sites");
  EXPECT_EQ(AsInt(fleet["now_ms"]), kNow);
  EXPECT_EQ(fleet["sites"].size(), 3u);
  EXPECT_EQ(AsInt(fleet["counts"]["ok"]), 1);
  EXPECT_EQ(AsInt(fleet["counts"]["silent"]), 1);
  EXPECT_EQ(AsInt(fleet["counts"]["never"]), 1);
  for (json::Value site : fleet["sites"].Items()) {
    EXPECT_NE(AsString(site["site_id"]), "ship-9");
  }

  json::Value ok = SiteById(fleet, "plant-1");
  EXPECT_EQ(AsString(ok["health"]), "ok");
  EXPECT_EQ(AsString(ok["health_text"]), "last heard 1 hour ago");
  EXPECT_EQ(AsInt(ok["last_contact_ms"]), kNow - kHour);
  EXPECT_EQ(AsInt(ok["newest_record_ms"]), kNow - kHour + 120'000);
  EXPECT_EQ(AsUint(ok["records"]), 10u);
  EXPECT_EQ(AsUint(ok["backlog_records"]), 15u);
  EXPECT_EQ(AsUint(ok["backlog_bytes"]), 1500u);
  EXPECT_DOUBLE_EQ(AsDouble(ok["autonomy_days_reported"]), 3.0);
  // n2 reported 3 days two hours ago: 3 - 2/24 days are left.
  EXPECT_NEAR(AsDouble(ok["autonomy_days_left"]), 3.0 - 2.0 / 24, 0.001);
  EXPECT_EQ(ok["models"].size(), 2u);
  EXPECT_EQ(ok["nodes"].size(), 2u);
  EXPECT_EQ(AsString(ok["autonomy_basis"]), "estimated");
  EXPECT_TRUE(ok["nodes"].At(0)["autonomy_basis"].is_null());  // not reported

  json::Value silent = SiteById(fleet, "plant-2");
  EXPECT_EQ(AsString(silent["health"]), "silent");
  EXPECT_EQ(AsString(silent["health_text"]), "last heard 5 days ago");
  EXPECT_EQ(AsInt(silent["silent_for_ms"]), 5 * kDay);
  // Reported 2 days of autonomy 5 days ago: none is left.
  EXPECT_DOUBLE_EQ(AsDouble(silent["autonomy_days_left"]), 0.0);

  json::Value never = SiteById(fleet, "plant-3");
  EXPECT_EQ(AsString(never["health"]), "never");
  EXPECT_TRUE(never["last_contact_ms"].is_null());
  EXPECT_TRUE(never["newest_record_ms"].is_null());
}

// A large fleet is read a page at a time: the cursor meets every matching site once, in id
// order; the counts stay the whole fleet's; only the page's sites are written.
TEST_F(DashboardTest, TheFleetIsPagedWithACursorAndFilteredByHealthAndPrefix) {
  for (int i = 0; i < 23; ++i) {
    std::string id = "rig-" + std::string(i < 10 ? "0" : "") + std::to_string(i);
    OUTPOST_ASSERT_OK(store_->CreateSite(
        Site{.site_id = id, .tenant = "acme", .region = "north", .created_ms = kNow}));
    if (i % 4 == 0) OUTPOST_ASSERT_OK(store_->TouchSite(id, kNow - kHour));
  }
  // 26 sites of acme: plant-1 and 6 rigs ok, plant-2 silent, plant-3 and 17 rigs never.
  std::vector<std::string> met;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    json::Value fleet = GetJson("/api/v1/sites?limit=5" + (after.empty() ? "" : "&after=" + after));
    EXPECT_EQ(AsInt(fleet["matched"]), 26);
    EXPECT_EQ(AsInt(fleet["counts"]["ok"]), 7);
    EXPECT_EQ(AsInt(fleet["counts"]["never"]), 18);
    EXPECT_LE(fleet["sites"].size(), 5u);
    for (json::Value site : fleet["sites"].Items())
      met.push_back(std::string(AsString(site["site_id"])));
    if (fleet["next_after"].is_null()) break;
    EXPECT_EQ(AsString(fleet["next_after"]), met.back());
    after = met.back();
  }
  ASSERT_EQ(met.size(), 26u);
  EXPECT_TRUE(std::is_sorted(met.begin(), met.end()));
  EXPECT_EQ(std::set<std::string>(met.begin(), met.end()).size(), 26u);
  EXPECT_EQ(met.front(), "plant-1");
  EXPECT_EQ(met.back(), "rig-22");

  // A last page that is exactly full says there is no more.
  json::Value last = GetJson("/api/v1/sites?limit=6&after=rig-16");
  EXPECT_EQ(last["sites"].size(), 6u);
  EXPECT_TRUE(last["next_after"].is_null());

  // Filters: by health, by prefix, both; the counts are still the fleet's.
  json::Value ok = GetJson("/api/v1/sites?health=ok&limit=4");
  EXPECT_EQ(AsInt(ok["matched"]), 7);
  EXPECT_EQ(ok["sites"].size(), 4u);
  for (json::Value site : ok["sites"].Items()) EXPECT_EQ(AsString(site["health"]), "ok");
  EXPECT_EQ(AsString(ok["next_after"]), "rig-08");
  json::Value rest = GetJson("/api/v1/sites?health=ok&limit=4&after=rig-08");
  EXPECT_EQ(rest["sites"].size(), 3u);
  EXPECT_TRUE(rest["next_after"].is_null());
  json::Value plants = GetJson("/api/v1/sites?prefix=plant-");
  EXPECT_EQ(AsInt(plants["matched"]), 3);
  EXPECT_EQ(plants["sites"].size(), 3u);
  EXPECT_EQ(AsInt(plants["counts"]["never"]), 18);
  json::Value silent_rigs = GetJson("/api/v1/sites?prefix=rig-&health=silent");
  EXPECT_EQ(AsInt(silent_rigs["matched"]), 0);
  EXPECT_EQ(silent_rigs["sites"].size(), 0u);
  // Another tenant's sites are neither counted nor listed.
  json::Value other = GetJson("/api/v1/sites?limit=1000", 200, "other");
  EXPECT_EQ(AsInt(other["matched"]), 1);
  EXPECT_EQ(AsString(other["sites"].At(0)["site_id"]), "ship-9");

  EXPECT_EQ(Reason("/api/v1/sites?limit=0", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/sites?limit=1001", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/sites?after=..%2Fx", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/sites?health=fine", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/sites?prefix=a%2Fb", 400), "bad_parameter");
}

TEST_F(DashboardTest, ASiteTurnsSilentAsTimePassesWithoutContact) {
  EXPECT_EQ(AsString(GetJson("/api/v1/sites/plant-1")["health"]), "ok");
  clock_.Advance(std::chrono::hours(24 * 3));
  json::Value site = GetJson("/api/v1/sites/plant-1");
  EXPECT_EQ(AsString(site["health"]), "silent");
  EXPECT_EQ(AsString(site["health_text"]), "last heard 3 days ago");
}

// Storms reach the hub in the outbox's summary records (outbox/FORMAT.md sections 9, 12):
// one rule's windows an hour apart are one storm, shown on the site page and the fleet view.
TEST_F(DashboardTest, AStormFromTheOutboxSummariesIsShownWithItsCountsAndSpan) {
  const int64_t day = kNow - kDay;  // 2023-11-14 00:00 UTC
  auto summary = [&](int64_t from, int64_t to, int64_t storm_from, int64_t storm_to) {
    return R"({"type":"outbox_summary","from_ms":)" + std::to_string(from) + R"(,"to_ms":)" +
           std::to_string(to) +
           R"(,"classes":{"anomaly":{"raised":15400000,"held":1008,"delivered":0,"withheld":0,)"
           R"("evicted":0,"refused":0,"sampled_out":15398992,"quarantined":0}},)"
           R"("window":{"anomaly":{"evicted":0,"refused":0,"sampled_out":7699496}},)"
           R"("rules":[{"kind":"anomaly","stream":"pump","rule":"hot","raised":7700000,)"
           R"("kept":600,"refused":0,"sampled_out":7699496,"storm_from_ms":)" +
           std::to_string(storm_from) + R"(,"storm_to_ms":)" + std::to_string(storm_to) + "}]}";
  };
  const int64_t minute = 60'000;
  std::vector<HubRecord> records = {
      HubRecord{.site_id = "plant-1",
                .node_id = "n1",
                .stream = "_outbox",
                .seq = 1,
                .kind = "event",
                .created_ms = day + 7 * kHour,
                .payload = summary(day + 6 * kHour, day + 7 * kHour, day + 6 * kHour + 10 * minute,
                                   day + 7 * kHour - minute)},
      HubRecord{.site_id = "plant-1",
                .node_id = "n1",
                .stream = "_outbox",
                .seq = 2,
                .kind = "event",
                .created_ms = day + 9 * kHour,
                .payload = summary(day + 7 * kHour, day + 9 * kHour, day + 7 * kHour,
                                   day + 8 * kHour + 40 * minute)}};
  OUTPOST_ASSERT_OK(Ingest("plant-1", "n1", "_outbox", records, kNow - kHour, false));
  json::Value site = GetJson("/api/v1/sites/plant-1");
  ASSERT_EQ(site["storms"].size(), 1u);
  json::Value storm = site["storms"].At(0);
  EXPECT_EQ(AsString(storm["text"]), "anomaly storm: 15.4 M raised, 1,008 kept, 06:10\u201308:40");
  EXPECT_EQ(AsUint(storm["raised"]), 15'400'000u);
  EXPECT_EQ(AsUint(storm["kept"]), 1008u);
  EXPECT_EQ(AsString(storm["rule"]), "hot");
  EXPECT_EQ(AsInt(storm["from_ms"]), day + 6 * kHour + 10 * minute);
  EXPECT_EQ(AsInt(site["outbox_account"]["as_of_ms"]), day + 9 * kHour);
  EXPECT_EQ(AsUint(site["outbox_account"]["classes"]["anomaly"]["raised"]), 15'400'000u);
  json::Value fleet = GetJson("/api/v1/sites");
  EXPECT_EQ(SiteById(fleet, "plant-1")["storms"].size(), 1u);
  EXPECT_EQ(SiteById(fleet, "plant-2")["storms"].size(), 0u);
  EXPECT_TRUE(SiteById(fleet, "plant-2")["outbox_account"].is_null());
}

// A rule's evictions (outbox/FORMAT.md section 11) reach the storm that lost them and the
// per-rule lines of the newest summary, shown beside its classes.
TEST_F(DashboardTest, ARulesEvictionsAreShownWithItsStormAndBesideTheClassCounts) {
  const int64_t day = kNow - kDay;
  const std::string payload =
      R"({"type":"outbox_summary","from_ms":)" + std::to_string(day + 6 * kHour) + R"(,"to_ms":)" +
      std::to_string(day + 7 * kHour) +
      R"(,"classes":{"hard_example":{"raised":5000,"held":80,"delivered":0,"withheld":0,)"
      R"("evicted":20,"refused":0,"sampled_out":4900,"quarantined":0}},)"
      R"("window":{"hard_example":{"evicted":20,"refused":0,"sampled_out":4900}},)"
      R"("rules":[{"kind":"hard_example","stream":"pump","rule":"unsure","raised":5000,)"
      R"("kept":100,"refused":0,"sampled_out":4900,"evicted":20,"storm_from_ms":)" +
      std::to_string(day + 6 * kHour + 60'000) + R"(,"storm_to_ms":)" +
      std::to_string(day + 6 * kHour + 50 * 60'000) + "}]}";
  std::vector<HubRecord> records = {HubRecord{.site_id = "plant-1",
                                              .node_id = "n1",
                                              .stream = "_outbox",
                                              .seq = 1,
                                              .kind = "event",
                                              .created_ms = day + 7 * kHour,
                                              .payload = payload}};
  OUTPOST_ASSERT_OK(Ingest("plant-1", "n1", "_outbox", records, kNow - kHour, false));
  json::Value site = GetJson("/api/v1/sites/plant-1");
  ASSERT_EQ(site["storms"].size(), 1u);
  json::Value storm = site["storms"].At(0);
  EXPECT_EQ(AsUint(storm["evicted"]), 20u);
  EXPECT_EQ(AsUint(storm["kept"]), 80u) << "raised less sampled out and evicted";
  EXPECT_EQ(AsString(storm["text"]),
            "hard_example storm: 5,000 raised, 80 kept, 20 evicted, 06:01\u201306:50");
  json::Value rule = site["outbox_account"]["rules"].At(0);
  EXPECT_EQ(AsString(rule["rule"]), "unsure");
  EXPECT_EQ(AsUint(rule["evicted"]), 20u);
  EXPECT_EQ(AsUint(site["outbox_account"]["classes"]["hard_example"]["evicted"]), 20u);
}

// A node that cannot estimate its autonomy yet says so, and a draining one is never a
// warning (outbox/FORMAT.md section 11).
TEST_F(DashboardTest, ANodeWithoutAnEstimateSaysWhyAndIsNoWarning) {
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(NodeStatus{.site_id = "plant-3",
                                                     .node_id = "n1",
                                                     .reported_ms = kNow - 60'000,
                                                     .autonomy_basis = "draining"},
                                          kNow - 60'000));
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(NodeStatus{.site_id = "plant-3",
                                                     .node_id = "n2",
                                                     .reported_ms = kNow - 60'000,
                                                     .autonomy_basis = "not_enough_history"},
                                          kNow - 60'000));
  OUTPOST_ASSERT_OK(store_->TouchSite("plant-3", kNow - 60'000));
  json::Value site = GetJson("/api/v1/sites/plant-3");
  EXPECT_EQ(AsString(site["health"]), "ok");
  EXPECT_TRUE(site["autonomy_days_left"].is_null());
  EXPECT_EQ(AsString(site["autonomy_basis"]), "not_enough_history");
  EXPECT_EQ(AsString(site["nodes"].At(0)["autonomy_basis"]), "draining");
}

TEST_F(DashboardTest, AnotherTenantsSiteIsNotFound) {
  for (const std::string target :
       {"/api/v1/sites/ship-9", "/api/v1/sites/ship-9/series", "/api/v1/sites/ship-9/audit",
        "/api/v1/records?site=ship-9", "/api/v1/aggregates?site=ship-9", "/api/v1/sites/nowhere"}) {
    EXPECT_EQ(Reason(target, 404), "site_not_found") << target;
  }
  // The other tenant sees its own site and none of acme's.
  json::Value fleet = GetJson("/api/v1/sites", 200, "other");
  ASSERT_EQ(fleet["sites"].size(), 1u);
  EXPECT_EQ(AsString(fleet["sites"].At(0)["site_id"]), "ship-9");
  EXPECT_EQ(Get("/api/v1/sites/plant-1", "other").status, 404);
}

TEST_F(DashboardTest, SeriesCountsAnomaliesRowsAndDriftPerBucket) {
  json::Value series =
      GetJson("/api/v1/sites/plant-1/series?since=" + std::to_string(kNow - 4 * kHour) +
              "&until=" + std::to_string(kNow) + "&bucket=3600000");
  EXPECT_FALSE(AsBool(series["truncated"]));
  ASSERT_EQ(series["models"].size(), 1u);
  json::Value pump = series["models"].At(0);
  EXPECT_EQ(AsString(pump["model"]), "pump");
  json::Value buckets = pump["buckets"];
  ASSERT_EQ(buckets.size(), 4u);
  json::Value last = buckets.At(3);
  EXPECT_EQ(AsInt(last["start_ms"]), kNow - kHour);
  EXPECT_EQ(AsUint(last["rows"]), 400u);
  EXPECT_EQ(AsUint(last["anomalies"]), 10u);
  EXPECT_DOUBLE_EQ(AsDouble(last["anomaly_rate"]), 10.0 / 400);
  EXPECT_EQ(AsUint(last["anomaly_records"]), 2u);
  EXPECT_EQ(AsUint(last["hard_examples"]), 3u);
  EXPECT_EQ(AsUint(last["drift_records"]), 1u);
  EXPECT_DOUBLE_EQ(AsDouble(last["max_psi"]), 0.41);
  EXPECT_EQ(AsUint(buckets.At(0)["anomaly_records"]), 0u);
  json::Value earlier = buckets.At(1);  // kNow - 3h .. -2h holds one anomaly
  EXPECT_EQ(AsUint(earlier["anomaly_records"]), 1u);
  EXPECT_TRUE(earlier["anomaly_rate"].is_null());  // no aggregate: no rows, no rate
  EXPECT_TRUE(earlier["max_psi"].is_null());
  ASSERT_EQ(pump["drift"].size(), 1u);
  EXPECT_EQ(AsString(pump["drift"].At(0)["feature"]), "temp");
  EXPECT_DOUBLE_EQ(AsDouble(pump["drift"].At(0)["psi"]), 0.41);

  // Another model has nothing.
  EXPECT_EQ(GetJson("/api/v1/sites/plant-1/series?model=fan")["models"].size(), 0u);
}

TEST_F(DashboardTest, SeriesAnswerAtMost64ModelsAndSaySoWhenCut) {
  // A site names its streams: 70 of them must not make the answer unbounded.
  for (int m = 0; m < 70; ++m) {
    std::string stream = "m" + std::to_string(m);
    OUTPOST_ASSERT_OK(Ingest("plant-1", "n1", stream,
                             {HubRecord{.site_id = "plant-1",
                                        .node_id = "n1",
                                        .stream = stream,
                                        .seq = 1,
                                        .kind = "anomaly",
                                        .created_ms = kNow - kHour,
                                        .payload = "{}"}},
                             kNow - kHour, false));
  }
  json::Value series = GetJson("/api/v1/sites/plant-1/series");
  EXPECT_EQ(series["models"].size(), 64u);
  EXPECT_TRUE(AsBool(series["truncated"]));
}

TEST_F(DashboardTest, AggregatesSumPerSiteModelAndVersion) {
  json::Value agg = GetJson("/api/v1/aggregates");
  ASSERT_EQ(agg["aggregates"].size(), 1u);
  json::Value row = agg["aggregates"].At(0);
  EXPECT_EQ(AsString(row["site_id"]), "plant-1");
  EXPECT_EQ(AsInt(row["version"]), 3);
  EXPECT_EQ(AsUint(row["minutes"]), 2u);
  EXPECT_EQ(AsUint(row["rows"]), 400u);
  EXPECT_EQ(AsUint(row["batches"]), 12u);
  EXPECT_EQ(AsUint(row["nan_scores"]), 2u);
}

TEST_F(DashboardTest, RecordsFilterAndPageWithACursor) {
  json::Value all = GetJson("/api/v1/records?site=plant-1&limit=1000");
  EXPECT_EQ(all["records"].size(), 10u);
  EXPECT_TRUE(all["next_after"].is_null());

  json::Value anomalies = GetJson("/api/v1/records?kind=anomaly");
  EXPECT_EQ(anomalies["records"].size(), 4u);  // 3 of plant-1, 1 of plant-2
  for (json::Value r : anomalies["records"].Items()) {
    EXPECT_EQ(AsString(r["kind"]), "anomaly");
  }

  // Pages of 3 cover the 10 records exactly once.
  std::vector<int64_t> ids;
  int64_t after = 0;
  for (int page = 0; page < 10; ++page) {
    json::Value p = GetJson("/api/v1/records?site=plant-1&limit=3&after=" + std::to_string(after));
    for (json::Value r : p["records"].Items()) ids.push_back(AsInt(r["id"]));
    if (p["next_after"].is_null()) break;
    after = AsInt(p["next_after"]);
  }
  EXPECT_EQ(ids.size(), 10u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());

  // A time range, and a payload that is not JSON comes as text.
  json::Value range = GetJson("/api/v1/records?since=" + std::to_string(kNow - kHour + 61'000) +
                              "&until=" + std::to_string(kNow - kHour + 62'001) + "&kind=anomaly");
  EXPECT_EQ(range["records"].size(), 2u);
  json::Value event = GetJson("/api/v1/records?kind=event");
  ASSERT_EQ(event["records"].size(), 1u);
  EXPECT_EQ(AsString(event["records"].At(0)["payload_text"]), "not json {");

  // The other tenant's records never appear.
  json::Value feedback = GetJson("/api/v1/records?kind=feedback");
  for (json::Value r : feedback["records"].Items()) {
    EXPECT_EQ(AsString(r["site_id"]), "plant-1");
  }
}

TEST_F(DashboardTest, AuditTrailListsDecisionsAndPolicies) {
  json::Value audit = GetJson("/api/v1/sites/plant-1/audit");
  ASSERT_EQ(audit["entries"].size(), 2u);
  EXPECT_EQ(AsString(audit["entries"].At(1)["decision"]), "withheld");
  EXPECT_EQ(AsString(audit["entries"].At(1)["reason"]), "aggregates_only");
  EXPECT_EQ(AsUint(audit["decisions"]["allowed"]), 1u);
  EXPECT_EQ(AsUint(audit["decisions"]["withheld"]), 1u);
  ASSERT_EQ(audit["policies"].size(), 1u);
  EXPECT_EQ(AsUint(audit["policies"].At(0)["entries"]), 2u);
  EXPECT_EQ(GetJson("/api/v1/sites/plant-1/audit?limit=1")["entries"].size(), 1u);
}

TEST_F(DashboardTest, TheHubsAuditLinesAreListedPerTenantAndPaged) {
  // As every hub sharing the store appends them (HubAuditLog).
  for (int i = 1; i <= 5; ++i) {
    std::string tenant = i == 3 ? "globex" : "acme";
    std::string event = i % 2 == 0 ? "rollout_abort" : "batch_refused";
    std::string line = R"({"time_ms":)" + std::to_string(kNow + i) + R"(,"event":")" + event +
                       R"(","tenant":")" + tenant + R"(","n":)" + std::to_string(i) + "}";
    OUTPOST_ASSERT_OK(store_->AppendHubAudit(
        HubAuditEntry{.time_ms = kNow + i, .tenant = tenant, .event = event, .line = line}));
  }
  OUTPOST_ASSERT_OK(store_->AppendHubAudit(HubAuditEntry{
      .time_ms = kNow + 6, .tenant = "acme", .event = "batch_refused", .line = "not json {"}));
  json::Value all = GetJson("/api/v1/audit");
  ASSERT_EQ(all["entries"].size(), 5u);  // globex's line is not acme's
  std::vector<int64_t> ns;
  for (json::Value e : all["entries"].Items()) {
    if (!e["line"].is_missing()) {
      ns.push_back(AsInt(e["line"]["n"]));
      EXPECT_EQ(AsString(e["line"]["tenant"]), "acme");
      EXPECT_EQ(AsString(e["event"]), AsString(e["line"]["event"]));
      EXPECT_EQ(AsInt(e["time_ms"]), AsInt(e["line"]["time_ms"]));
    }
  }
  EXPECT_EQ(ns, (std::vector<int64_t>{1, 2, 4, 5}));
  EXPECT_EQ(AsString(all["entries"].At(4)["line_text"]), "not json {");
  EXPECT_TRUE(all["next_after"].is_null());
  // By event, and in pages of 2 that meet every line once.
  EXPECT_EQ(GetJson("/api/v1/audit?event=rollout_abort")["entries"].size(), 2u);
  std::vector<int64_t> ids;
  int64_t after = 0;
  for (int page = 0; page < 10; ++page) {
    json::Value p = GetJson("/api/v1/audit?limit=2&after=" + std::to_string(after));
    for (json::Value e : p["entries"].Items()) ids.push_back(AsInt(e["id"]));
    if (p["next_after"].is_null()) break;
    after = AsInt(p["next_after"]);
  }
  EXPECT_EQ(ids.size(), 5u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  EXPECT_EQ(GetJson("/api/v1/audit", 200, "globex")["entries"].size(), 1u);
  for (const char* bad :
       {"/api/v1/audit?event=Bad", "/api/v1/audit?event=", "/api/v1/audit?limit=1001",
        "/api/v1/audit?after=-1", "/api/v1/audit?site=plant-1"}) {
    HubResponse r = Get(bad);
    EXPECT_EQ(r.status, 400) << bad;
  }
  EXPECT_EQ(Get("/api/v1/audit", "").status, 401);
}

TEST_F(DashboardTest, TrainingDataCountsLabelledFeedbackAndHardExamples) {
  OUTPOST_ASSERT_OK(store_->RegisterModel(ModelEntry{.name = "pump", .version = 4}));
  json::Value training = GetJson("/api/v1/training");
  ASSERT_EQ(training["models"].size(), 1u);
  json::Value pump = training["models"].At(0);
  EXPECT_EQ(AsUint(pump["feedback"]), 2u);  // ship-9's is another tenant's
  EXPECT_EQ(AsUint(pump["labelled"]), 2u);
  EXPECT_EQ(AsUint(pump["hard_examples"]), 1u);
  EXPECT_EQ(AsUint(pump["sites"]), 1u);
  ASSERT_EQ(pump["registry"].size(), 1u);
  EXPECT_EQ(AsInt(pump["registry"].At(0)["version"]), 4);
}

TEST_F(DashboardTest, SiteAndModelParametersFollowTheRulesOfBaseNames) {
  // ModelName is the bundle rule: no registry model is called "Pump" or "a:b".
  EXPECT_EQ(Reason("/api/v1/records?model=Pump", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?model=a:b", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?model=" + std::string(65, 'm'), 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?site=.hidden", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?site=-x", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/sites/.x", 404), "site_not_found");
}

TEST_F(DashboardTest, BadParametersAreRefusedWithAReason) {
  EXPECT_EQ(Reason("/api/v1/records?limit=0", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?limit=1001", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?limit=ten", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?kind=secret", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?site=../etc", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?since=5&until=5", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?since=-1", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?after=99999999999999999999", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/records?color=red", 400), "unknown_parameter");
  EXPECT_EQ(Reason("/api/v1/records?kind=anomaly&kind=drift", 400), "repeated_parameter");
  EXPECT_EQ(Reason("/api/v1/records?kind=%zz", 400), "bad_escape");
  EXPECT_EQ(Reason("/api/v1/records?kind=%00", 400), "bad_escape");
  EXPECT_EQ(Reason("/api/v1/records?=1", 400), "empty_name");
  EXPECT_EQ(Reason("/api/v1/records?model=" + std::string(300, 'a'), 400), "parameter_too_long");
  std::string many = "/api/v1/records?";
  for (int i = 0; i < 17; ++i) many += "p" + std::to_string(i) + "=1&";
  EXPECT_EQ(Reason(many, 400), "too_many_parameters");
  EXPECT_EQ(Reason("/api/v1/sites/plant-1/series?bucket=1000", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/sites/plant-1/series?since=0&until=1700000000000", 400),
            "bad_parameter");  // too many buckets
  EXPECT_EQ(Reason("/api/v1/sites/plant-1/audit?limit=10001", 400), "bad_parameter");
  EXPECT_EQ(Reason("/api/v1/sites?x=1", 400), "unknown_parameter");
  EXPECT_EQ(Reason("/api/v1/nothing", 404), "not_found");
  EXPECT_EQ(Reason("/api/v1/sites/plant-1/nothing", 404), "not_found");
  EXPECT_EQ(Reason("/api/v1/records?" + std::string(5000, 'a'), 414), "target_too_long");
}

TEST_F(DashboardTest, TheApiNeedsAnOperator) {
  HubResponse response = Get("/api/v1/sites", "");
  EXPECT_EQ(response.status, 401);
  EXPECT_NE(response.body.find("unauthenticated"), std::string::npos);
  HubRequest site_caller{.method = "GET", .target = "/api/v1/sites"};
  site_caller.caller = Caller{.kind = Caller::Kind::kSite, .tenant = "acme", .site_id = "plant-1"};
  EXPECT_EQ(dashboard_->Handle(site_caller).status, 401);
  HubRequest post{.method = "POST", .target = "/api/v1/sites"};
  post.caller = Caller{.kind = Caller::Kind::kOperator, .tenant = "acme"};
  EXPECT_EQ(dashboard_->Handle(post).status, 405);
}

TEST_F(DashboardTest, ServesBuiltAssetsAndNothingOutsideThem) {
  HubResponse index = Get("/", "");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<!doctype html>hub");
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  HubResponse js = Get("/assets/app-1.js", "");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  HubResponse head = dashboard_->Handle(HubRequest{.method = "HEAD", .target = "/"});
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  for (const std::string target : {"/../hub.db", "/assets/../../hub.db", "/hub.db", "/.hidden",
                                   "/assets/", "/assets", "//etc/passwd", "/a%2e%2e/x"}) {
    EXPECT_EQ(Get(target, "").status, 404) << target;
  }
  Dashboard unbuilt(store_.get(), dir_.File("missing"), DashboardOptions{.clock = &clock_});
  EXPECT_EQ(unbuilt.Handle(HubRequest{.method = "GET", .target = "/"}).status, 503);
}

// The value of header `name` (names compared without case); "(absent)" when missing,
// "(twice)" when it is there more than once.
std::string HeaderOf(const HubResponse& response, std::string_view name) {
  std::string found = "(absent)";
  int count = 0;
  for (const auto& [key, value] : response.headers) {
    if (http::EqualsIgnoreCase(key, name)) {
      found = value;
      ++count;
    }
  }
  return count > 1 ? "(twice)" : found;
}

// Every answer, page, asset, API or error, carries the policy for the bundled front end
// (nothing from elsewhere, no inline script or style, no framing) and the other headers.
TEST_F(DashboardTest, EveryAnswerCarriesTheSecurityHeaders) {
  HubRequest head{.method = "HEAD", .target = "/assets/app-1.js"};
  HubRequest post_api{.method = "POST", .target = "/api/v1/sites"};
  post_api.caller = Caller{.kind = Caller::Kind::kOperator, .tenant = "acme"};
  HubRequest delete_asset{.method = "DELETE", .target = "/assets/app-1.js"};
  HubRequest no_path{.method = "OPTIONS", .target = "*"};
  const std::vector<std::pair<std::string, HubResponse>> answers = {
      {"page", Get("/", "")},
      {"asset", Get("/assets/app-1.js", "")},
      {"head", dashboard_->Handle(head)},
      {"api", Get("/api/v1/sites")},
      {"unauthenticated", Get("/api/v1/sites", "")},
      {"bad parameter", Get("/api/v1/sites?x=1")},
      {"no route", Get("/api/v1/nothing")},
      {"no asset", Get("/../hub.db", "")},
      {"target too long", Get("/api/v1/records?" + std::string(5000, 'a'))},
      {"method not allowed (api)", dashboard_->Handle(post_api)},
      {"method not allowed (asset)", dashboard_->Handle(delete_asset)},
      {"no path", dashboard_->Handle(no_path)},
  };
  for (const auto& [what, response] : answers) {
    SCOPED_TRACE(what);
    const std::string csp = HeaderOf(response, "Content-Security-Policy");
    EXPECT_EQ(csp,
              "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'");
    EXPECT_EQ(csp.find("unsafe"), std::string::npos);
    EXPECT_EQ(HeaderOf(response, "X-Frame-Options"), "DENY");
    EXPECT_EQ(HeaderOf(response, "X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(HeaderOf(response, "Referrer-Policy"), "no-referrer");
  }
  EXPECT_EQ(answers[0].second.status, 200);
  EXPECT_EQ(answers[1].second.status, 200);
  EXPECT_EQ(answers[3].second.status, 200);
  EXPECT_EQ(answers[4].second.status, 401);
  EXPECT_EQ(answers[7].second.status, 404);
  for (size_t i : {9, 10}) {
    EXPECT_EQ(answers[i].second.status, 405) << answers[i].first;
    EXPECT_EQ(HeaderOf(answers[i].second, "Allow"), "GET, HEAD") << answers[i].first;
    EXPECT_NE(answers[i].second.body.find("method_not_allowed"), std::string::npos);
  }
  EXPECT_EQ(answers[11].second.status, 404);
  EXPECT_NE(answers[11].second.body.find("not_found"), std::string::npos);
  Dashboard unbuilt(store_.get(), dir_.File("missing"), DashboardOptions{.clock = &clock_});
  EXPECT_EQ(HeaderOf(unbuilt.Handle(HubRequest{.method = "GET", .target = "/"}), "X-Frame-Options"),
            "DENY");
}

TEST_F(DashboardTest, InstallsShowWhatRunsWhereFromReportsAndFromEvents) {
  // plant-2's node n9 reports its serving and shadow versions and the installed bundle.
  NodeStatus n9{.site_id = "plant-2",
                .node_id = "n9",
                .reported_ms = kNow - kHour,
                .models_json = R"([{"name":"pump","version":4,"state":"READY","role":"serving",)"
                               R"("bundle_version":200},{"name":"pump","version":5,)"
                               R"("state":"READY","role":"shadow","bundle_version":200}])"};
  OUTPOST_ASSERT_OK(store_->PutNodeStatus(n9, kNow - kHour));
  // plant-3 never reports (it only exports): its bundle events say what it runs.
  std::vector<HubRecord> events;
  auto event = [&](uint64_t seq, int64_t at, std::string payload) {
    events.push_back(HubRecord{.site_id = "plant-3",
                               .node_id = "n1",
                               .stream = "bundle",
                               .seq = seq,
                               .kind = "event",
                               .created_ms = at,
                               .payload = std::move(payload)});
  };
  event(1, kNow - 3 * kHour,
        R"({"bundle_version":100,"event":"bundle_installed","message":"","models":["pump/3"],)"
        R"("reason":null,"site_id":"plant-3","time":1})");
  event(2, kNow - 2 * kHour,
        R"({"bundle_version":0,"event":"bundle_refused","message":"bad","models":[],)"
        R"("reason":"SIGNATURE","site_id":"plant-3","time":2})");
  OUTPOST_ASSERT_OK(Ingest("plant-3", "n1", "bundle", events, kNow - kHour, false));

  json::Value exported = GetJson("/api/v1/installs?site=plant-3");
  ASSERT_EQ(exported["sites"].size(), 1u);
  json::Value node = exported["sites"].At(0)["nodes"].At(0);
  EXPECT_EQ(AsString(node["node_id"]), "n1");
  EXPECT_EQ(AsString(node["source"]), "events");
  EXPECT_EQ(AsUint(node["bundle_version"]), 100u);
  ASSERT_EQ(node["serving"].size(), 1u);
  EXPECT_EQ(AsString(node["serving"].At(0)["model"]), "pump");
  EXPECT_EQ(AsInt(node["serving"].At(0)["version"]), 3);
  EXPECT_EQ(AsString(node["last_install"]["event"]), "bundle_refused");
  EXPECT_EQ(AsString(node["last_install"]["reason"]), "SIGNATURE");

  json::Value reported = GetJson("/api/v1/installs?site=plant-2");
  bool found = false;
  for (json::Value n : reported["sites"].At(0)["nodes"].Items()) {
    if (AsString(n["node_id"]) != "n9") continue;
    found = true;
    EXPECT_EQ(AsString(n["source"]), "status");
    EXPECT_EQ(AsUint(n["bundle_version"]), 200u);
    ASSERT_EQ(n["serving"].size(), 1u);
    EXPECT_EQ(AsInt(n["serving"].At(0)["version"]), 4);
    ASSERT_EQ(n["shadow"].size(), 1u);
    EXPECT_EQ(AsInt(n["shadow"].At(0)["version"]), 5);
    EXPECT_TRUE(n["last_install"].is_null());
  }
  EXPECT_TRUE(found);
  // The whole fleet of the tenant; another tenant's site is not found; unknown parameters.
  json::Value fleet = GetJson("/api/v1/installs");
  EXPECT_EQ(fleet["sites"].size(), 3u);
  GetJson("/api/v1/installs?site=ship-9", 404);
  GetJson("/api/v1/installs?model=pump", 400);
}

TEST(QueryString, DecodesAndKeepsOrder) {
  auto params = ParseQueryString("a=1&b=x+y&&c=%41%2f&d");
  ASSERT_TRUE(params.ok()) << params.status().ToString();
  ASSERT_EQ(params->items.size(), 4u);
  EXPECT_EQ(params->items[1].second, "x y");
  EXPECT_EQ(*params->Find("c"), "A/");
  EXPECT_EQ(*params->Find("d"), "");
  EXPECT_EQ(params->Find("e"), nullptr);
  EXPECT_TRUE(ParseQueryString("").ok());
  EXPECT_FALSE(ParseQueryString("a=%4").ok());
  EXPECT_FALSE(ParseQueryString("a=%").ok());
}

}  // namespace
}  // namespace outpost::hub
