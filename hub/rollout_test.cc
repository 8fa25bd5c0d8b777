// The rollout's rules without sites (hub/rollout.h): how waves are drawn, how a wave's gate
// decides from what sites report (installs, soak, error rate, accuracy, traffic), the
// operator's actions and the offers, the document's round trip, the site's reading of
// rollbacks, and a controller that starts again on the same store carrying on where the
// last one stopped.
#include "hub/rollout.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/testing/test_util.h"
#include "hub/store.h"
#include "sync/release_list.h"

namespace outpost::hub {
namespace {

std::vector<std::string> Sites(int n) {
  std::vector<std::string> out;
  for (int i = 1; i <= n; ++i) out.push_back("s" + std::to_string(i));
  return out;
}

RolloutPlan Plan() {
  return RolloutPlan{.canary = {"s3"},
                     .percent = {25, 50},
                     .soak_s = 60,
                     .max_error_rate_increase = 0.01,
                     .max_accuracy_drop = 0.05,
                     .min_requests = 10,
                     .min_labels = 5};
}

// Every site of wave `w` installed, having answered `ok` and `failed` requests.
void InstallWave(const Rollout& r, size_t w, std::map<std::string, SiteObservation>& seen,
                 int64_t ok = 100, int64_t failed = 0) {
  for (const std::string& s : r.waves[w].sites) {
    seen[s].installed = true;
    seen[s].released = VersionCounters{.ok = ok, .failed = failed};
  }
}

TEST(RolloutPlanTest, WavesAreTheCanaryThenSharesOfTheRestThenAll) {
  Rollout r = NewRollout("acme", "pump", 4, 1700, Plan(), Sites(13), 1000);
  ASSERT_EQ(r.waves.size(), 4u);
  EXPECT_EQ(r.waves[0].sites, std::vector<std::string>{"s3"});
  EXPECT_EQ(r.waves[1].sites.size(), 3u);  // 25% of 12, rounded up
  EXPECT_EQ(r.waves[2].sites.size(), 3u);  // up to 50%
  EXPECT_EQ(r.waves[3].sites.size(), 6u);
  std::set<std::string> all;
  for (const RolloutWave& w : r.waves) all.insert(w.sites.begin(), w.sites.end());
  EXPECT_EQ(all.size(), 13u);
  EXPECT_EQ(r.sites.size(), 13u);
  EXPECT_NE(r.waves[0].opened_ms, 0);  // the first wave opens at once
  EXPECT_EQ(r.waves[1].opened_ms, 0);
  // The same release draws the same waves; another version draws another order.
  Rollout again = NewRollout("acme", "pump", 4, 1700, Plan(), Sites(13), 5);
  EXPECT_EQ(again.waves[1].sites, r.waves[1].sites);
  Rollout other = NewRollout("acme", "pump", 5, 1800, Plan(), Sites(13), 5);
  EXPECT_NE(other.waves[3].sites, r.waves[3].sites);
  // No plan: one wave of every site, open at once.
  Rollout plain = NewRollout("acme", "pump", 4, 1700, RolloutPlan{}, Sites(3), 5);
  ASSERT_EQ(plain.waves.size(), 1u);
  EXPECT_EQ(plain.waves[0].name, "all");
  EXPECT_EQ(OfferFor(plain, "s2"), RolloutOffer::kOffer);
}

TEST(RolloutPlanTest, APlanOutOfBoundsIsRefusedNamingTheKey) {
  RolloutPlan p = Plan();
  p.percent = {50, 25};
  EXPECT_NE(ValidateRolloutPlan(p).message().find("percent"), std::string_view::npos);
  p = Plan();
  p.canary = {"Not A Site"};
  EXPECT_NE(ValidateRolloutPlan(p).message().find("canary"), std::string_view::npos);
  p = Plan();
  p.max_error_rate_increase = 2;
  EXPECT_EQ(ValidateRolloutPlan(p).code(), StatusCode::kInvalidArgument);
  p = Plan();
  p.soak_s = -1;
  EXPECT_EQ(ValidateRolloutPlan(p).code(), StatusCode::kInvalidArgument);
  OUTPOST_EXPECT_OK(ValidateRolloutPlan(Plan()));
}

TEST(RolloutGateTest, AWaveOpensTheNextOnlyWhenEverySiteInstalledSoakedAndIsHealthy) {
  Rollout r = NewRollout("acme", "pump", 4, 1700, Plan(), Sites(9), 0);
  std::map<std::string, SiteObservation> seen;
  // Nothing installed: the canary wave waits; the next wave's sites are not offered.
  AdvanceRollout(r, seen, 1000);
  EXPECT_EQ(r.waves[0].gate, "installing");
  EXPECT_EQ(OfferFor(r, r.waves[1].sites[0]), RolloutOffer::kWithhold);
  EXPECT_EQ(OfferFor(r, "s3"), RolloutOffer::kOffer);
  // Installed: it soaks for soak_s.
  InstallWave(r, 0, seen, 5, 0);
  AdvanceRollout(r, seen, 2000);
  EXPECT_EQ(r.waves[0].gate, "soaking");
  // Soaked, but with fewer than min_requests answered: it waits for traffic.
  AdvanceRollout(r, seen, 2000 + 60'000);
  EXPECT_EQ(r.waves[0].gate, "waiting_for_traffic");
  EXPECT_EQ(r.current_wave, 0u);
  // With traffic it passes, and the next wave opens.
  InstallWave(r, 0, seen, 100, 0);
  AdvanceRollout(r, seen, 70'000);
  EXPECT_EQ(r.waves[0].gate, "passed");
  EXPECT_EQ(r.current_wave, 1u);
  EXPECT_EQ(OfferFor(r, r.waves[1].sites[0]), RolloutOffer::kOffer);
  // Every wave in turn, and the rollout completes.
  for (size_t w = 1; w < r.waves.size(); ++w) {
    InstallWave(r, w, seen);
    AdvanceRollout(r, seen, 100'000 * static_cast<int64_t>(w));
    AdvanceRollout(r, seen, 100'000 * static_cast<int64_t>(w) + 60'000);
  }
  EXPECT_EQ(r.state, "complete");
  for (const RolloutSite& s : r.sites) EXPECT_EQ(s.status, "installed") << s.site_id;
}

TEST(RolloutGateTest, AnErrorRateAboveTheBaselineByMoreThanTheMarginHalts) {
  Rollout r = NewRollout("acme", "pump", 4, 1700, Plan(), Sites(5), 0);
  std::map<std::string, SiteObservation> seen;
  // Before: 1% errors at the canary.
  seen["s3"].serving = VersionCounters{.ok = 990, .failed = 10};
  r.waves[0].opened_ms = 0;  // opened again with the baseline in view
  AdvanceRollout(r, seen, 10);
  const RolloutSite* canary = nullptr;
  for (const RolloutSite& s : r.sites) {
    if (s.site_id == "s3") canary = &s;
  }
  ASSERT_NE(canary, nullptr);
  ASSERT_TRUE(canary->baseline_error_rate.has_value());
  EXPECT_DOUBLE_EQ(*canary->baseline_error_rate, 0.01);
  // After: 3% with the new version: over 1% + 1%.
  InstallWave(r, 0, seen, 97, 3);
  AdvanceRollout(r, seen, 100);
  AdvanceRollout(r, seen, 100 + 60'000);
  EXPECT_EQ(r.state, "halted");
  EXPECT_NE(r.reason.find("s3: error rate"), std::string::npos) << r.reason;
  // Halted: every site the bundle is meant for is told to roll back.
  for (const std::string& s : Sites(5)) EXPECT_EQ(OfferFor(r, s), RolloutOffer::kRollBack);
  EXPECT_EQ(OfferFor(r, "a-site-added-later"), RolloutOffer::kRollBack);
}

TEST(RolloutGateTest, AnAccuracyDropBeyondTheMarginHaltsWhereLabelsArrive) {
  Rollout r = NewRollout("acme", "pump", 4, 1700, Plan(), Sites(5), 0);
  std::map<std::string, SiteObservation> seen;
  seen["s3"].serving = VersionCounters{.ok = 1000, .labelled = 50, .correct = 45};  // 90%
  r.waves[0].opened_ms = 0;
  AdvanceRollout(r, seen, 10);
  InstallWave(r, 0, seen);
  seen["s3"].released->labelled = 50;
  seen["s3"].released->correct = 40;  // 80%: over 5 points worse
  AdvanceRollout(r, seen, 100);
  AdvanceRollout(r, seen, 100 + 60'000);
  EXPECT_EQ(r.state, "halted");
  EXPECT_NE(r.reason.find("accuracy"), std::string::npos) << r.reason;
}

TEST(RolloutGateTest, AFailedInstallHaltsEvenWhilePaused) {
  Rollout r = NewRollout("acme", "pump", 4, 1700, Plan(), Sites(5), 0);
  OUTPOST_ASSERT_OK(ApplyRolloutAction(r, "pause", "ops", 5));
  std::map<std::string, SiteObservation> seen;
  seen["s3"].failed = true;
  seen["s3"].reason = "HEALTH_CHECK";
  EXPECT_TRUE(AdvanceRollout(r, seen, 10));
  EXPECT_EQ(r.state, "halted");
  EXPECT_NE(r.reason.find("HEALTH_CHECK"), std::string::npos);
  // The halted wave's gate failed; the waves after it will never open.
  EXPECT_EQ(r.waves[0].gate, "failed");
  for (size_t w = 1; w < r.waves.size(); ++w) {
    EXPECT_EQ(r.waves[w].gate, "withdrawn") << w;
    EXPECT_EQ(r.waves[w].detail, "not opened") << w;
  }
  for (const RolloutSite& s : r.sites) {
    EXPECT_EQ(s.status, s.site_id == "s3" ? "failed" : "not_offered") << s.site_id;
  }
}

TEST(RolloutActionTest, AnAbortWithdrawsTheBundleFromTheSitesThatHadNotInstalledIt) {
  Rollout r = NewRollout("acme", "pump", 4, 1700, Plan(), Sites(9), 0);
  std::map<std::string, SiteObservation> seen;
  InstallWave(r, 0, seen);
  AdvanceRollout(r, seen, 10);
  AdvanceRollout(r, seen, 100'000);  // soaked and healthy: the 25% wave opens
  ASSERT_EQ(r.current_wave, 1u);
  const std::string installed_in_wave_1 = r.waves[1].sites.front();
  seen[installed_in_wave_1].installed = true;
  AdvanceRollout(r, seen, 100'010);
  OUTPOST_ASSERT_OK(ApplyRolloutAction(r, "abort", "ops", 100'020));
  EXPECT_EQ(r.waves[0].gate, "passed");
  EXPECT_EQ(r.waves[1].gate, "withdrawn");
  EXPECT_EQ(r.waves[1].detail, "aborted by ops");
  EXPECT_EQ(r.waves[2].gate, "withdrawn");
  EXPECT_EQ(r.waves[2].detail, "not opened");
  for (const RolloutSite& s : r.sites) {
    const char* expected = s.wave == 0 || s.site_id == installed_in_wave_1 ? "installed"
                           : s.wave == 1                                   ? "withdrawn"
                                                                           : "not_offered";
    EXPECT_EQ(s.status, expected) << s.site_id;
    EXPECT_EQ(OfferFor(r, s.site_id), RolloutOffer::kRollBack) << s.site_id;
  }
  // The sites that had installed roll back; the others keep their new status.
  for (const RolloutSite& s : r.sites) {
    if (s.status == "installed") seen[s.site_id].rolled_back = true;
  }
  AdvanceRollout(r, seen, 100'030);
  for (const RolloutSite& s : r.sites) {
    EXPECT_NE(s.status, "installed") << s.site_id;
    EXPECT_NE(s.status, "offered") << s.site_id;
  }
}

TEST(RolloutActionTest, PauseResumeAbortAndPromoteFollowTheTable) {
  Rollout r = NewRollout("acme", "pump", 4, 1700, Plan(), Sites(9), 0);
  std::map<std::string, SiteObservation> seen;
  OUTPOST_ASSERT_OK(ApplyRolloutAction(r, "pause", "ops", 1));
  EXPECT_EQ(r.state, "paused");
  OUTPOST_ASSERT_OK(ApplyRolloutAction(r, "pause", "ops", 2));  // as is
  // Paused: a wave that passes does not open the next.
  InstallWave(r, 0, seen);
  AdvanceRollout(r, seen, 100'000);
  AdvanceRollout(r, seen, 200'000);
  EXPECT_EQ(r.current_wave, 0u);
  OUTPOST_ASSERT_OK(ApplyRolloutAction(r, "resume", "ops", 3));
  EXPECT_EQ(r.state, "rolling");
  // Promote: every wave open now, its gates skipped.
  OUTPOST_ASSERT_OK(ApplyRolloutAction(r, "promote", "ops", 4));
  EXPECT_EQ(r.current_wave, r.waves.size() - 1);
  for (const std::string& s : Sites(9)) EXPECT_EQ(OfferFor(r, s), RolloutOffer::kOffer);
  EXPECT_EQ(r.waves[1].gate, "skipped");
  OUTPOST_ASSERT_OK(ApplyRolloutAction(r, "abort", "ops", 5));
  EXPECT_EQ(r.state, "aborted");
  // Finished: nothing more is taken.
  for (const char* action : {"pause", "resume", "promote", "abort"}) {
    Status s = ApplyRolloutAction(r, action, "ops", 6);
    EXPECT_EQ(s.reason(), "rollout_finished") << action;
  }
  EXPECT_EQ(ApplyRolloutAction(r, "explode", "ops", 6).reason(), "unknown_action");
  std::vector<std::string> actions;
  for (const RolloutEvent& e : r.history) {
    if (!e.operator_name.empty()) actions.push_back(e.action);
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"pause", "resume", "promote", "abort"}));
}

TEST(RolloutDocumentTest, EncodeDecodeRoundTripsAndABadDocumentIsRefused) {
  Rollout r = NewRollout("acme", "pump", 4, 1700, Plan(), Sites(7), 10);
  std::map<std::string, SiteObservation> seen;
  seen["s3"].serving = VersionCounters{.ok = 10, .failed = 1};
  InstallWave(r, 0, seen);
  AdvanceRollout(r, seen, 20);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Rollout back, DecodeRollout(EncodeRollout(r)));
  EXPECT_EQ(EncodeRollout(back), EncodeRollout(r));
  EXPECT_EQ(DecodeRollout("{}").status().code(), StatusCode::kDataLoss);
  EXPECT_FALSE(DecodeRollout("[1,2]").ok());
  EXPECT_FALSE(DecodeRollout(R"({"v":1,"model":"pump","model_version":1,"bundle_version":1,
      "state":"sideways","waves":[{"name":"all"}]})")
                   .ok());
}

TEST(RolloutListTest, ASiteReadsTheRollbacksOfTheHubsListAndAnOlderHubsListHasNone) {
  const std::string hex(64, 'a');
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto rollbacks, sync::ParseReleaseRollbacks(R"({"releases":[],"rollbacks":[{"model":"pump",)"
                                                  R"("model_version":2,"version":17,"sha256":")" +
                                                  hex + R"("}]})"));
  ASSERT_EQ(rollbacks.size(), 1u);
  EXPECT_EQ(rollbacks[0].version, 17u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(rollbacks, sync::ParseReleaseRollbacks(R"({"releases":[]})"));
  EXPECT_TRUE(rollbacks.empty());
  EXPECT_EQ(sync::ParseReleaseRollbacks(R"({"releases":[],"rollbacks":[{"model":"../x"}]})")
                .status()
                .reason(),
            "bad_release_list");
}

// The controller's state is the store's: a controller started again (a hub restarted
// mid-wave) carries on from the wave the last one left, and an operator's action on one is
// seen by the other.
TEST(RolloutControllerTest, ARestartedControllerCarriesOnFromTheStore) {
  testing::TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto store, OpenStore("sqlite:" + dir.File("hub.db")));
  OUTPOST_ASSERT_OK(StartRollout(*store, "acme", "pump", 4, 1700, Plan(), Sites(5), 0));
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto first,
                                 RolloutController::Start(*store, {.start_thread = false}));
    OUTPOST_ASSERT_OK(first->Tick());
    EXPECT_EQ(first->Offer("pump", 4, 1700, "s3"), RolloutOffer::kOffer);
    HubRequest pause{.method = "POST", .target = "/api/v1/rollouts/pump/4/pause"};
    pause.caller.kind = Caller::Kind::kOperator;
    pause.caller.tenant = "acme";
    pause.caller.credential = "ops";
    EXPECT_EQ(first->Handle(pause).status, 200);
    // Another tenant's operator sees nothing of it.
    pause.caller.tenant = "globex";
    EXPECT_EQ(first->Handle(pause).status, 404);
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto second,
                               RolloutController::Start(*store, {.start_thread = false}));
  OUTPOST_ASSERT_OK(second->Tick());
  HubRequest get{.method = "GET", .target = "/api/v1/rollouts/pump/4"};
  get.caller.kind = Caller::Kind::kOperator;
  get.caller.tenant = "acme";
  HubResponse r = second->Handle(get);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("state":"paused")"), std::string::npos) << r.body;
  // A bundle without a rollout is offered; the rollout's other sites wait for their wave.
  EXPECT_EQ(second->Offer("pump", 9, 99, "s1"), RolloutOffer::kOffer);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto row, store->GetRollout("pump", 4));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Rollout doc, DecodeRollout(row->doc));
  EXPECT_EQ(second->Offer("pump", 4, 1700, doc.waves[1].sites[0]), RolloutOffer::kWithhold);
}

}  // namespace
}  // namespace outpost::hub
