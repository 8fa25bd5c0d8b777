// The scheduler lease (STORE.md section 7): Store::AcquireLease and ReleaseLease on both
// engines, with two stores on one database standing for two hub processes, and
// SchedulerLease holders, one of them in a child process killed with SIGKILL, on a private
// PostgreSQL cluster that this binary starts once. Every wait is for a state, with a
// generous guard; nothing asserts how long a step took.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "hub/lease.h"
#include "hub/store.h"
#include "hub/testing/postgres_cluster.h"
#include "hub/testing/postgres_environment.h"

namespace outpost::hub {
namespace {

using ::outpost::testing::TempDir;
using testing::PostgresEnvironment;

// Set in the child process of the SIGKILL test: the database it holds the lease on.
constexpr const char* kChildUrlEnv = "OUTPOST_TEST_LEASE_CHILD_URL";

// The cluster shared by every PostgreSQL test of this binary.
const ::testing::Environment* const kPostgresEnv =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment(kChildUrlEnv));

// Asks `done` again every 20 ms until it is true; false after about two minutes.
bool WaitFor(const std::function<bool()>& done) {
  for (int i = 0; i < 6000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

class LeaseContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        url_, PostgresEnvironment::FreshDatabaseUrl(GetParam(), dir_.File("hub.db"), "lease"));
    // Two stores on one database: two hub processes, as far as the database can tell.
    OUTPOST_ASSERT_OK_AND_ASSIGN(a_, OpenStore(url_));
    OUTPOST_ASSERT_OK_AND_ASSIGN(b_, OpenStore(url_));
  }

  TempDir dir_;
  std::string url_;
  std::unique_ptr<Store> a_;
  std::unique_ptr<Store> b_;
};

TEST_P(LeaseContract, OneHolderUntilItLetsGoOrItsLeaseExpires) {
  // Refusals change nothing: the first lease taken afterwards is generation 1.
  EXPECT_EQ(a_->AcquireLease("scheduler", "a", 999).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a_->AcquireLease("scheduler", "a", 86'400'001).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(a_->AcquireLease("", "a", 60'000).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a_->AcquireLease("scheduler", "", 60'000).status().code(),
            StatusCode::kInvalidArgument);

  OUTPOST_ASSERT_OK_AND_ASSIGN(Lease taken, a_->AcquireLease("scheduler", "a", 60'000));
  EXPECT_EQ(taken.name, "scheduler");
  EXPECT_EQ(taken.holder, "a");
  EXPECT_EQ(taken.generation, 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Lease refused, b_->AcquireLease("scheduler", "b", 60'000));
  EXPECT_EQ(refused.holder, "a");
  EXPECT_EQ(refused.generation, 1);
  EXPECT_EQ(refused.expires_ms, taken.expires_ms);
  // Another name is another lease.
  OUTPOST_ASSERT_OK_AND_ASSIGN(Lease other, b_->AcquireLease("retention", "b", 60'000));
  EXPECT_EQ(other.holder, "b");
  // Renewing keeps the generation and moves the expiry on.
  OUTPOST_ASSERT_OK_AND_ASSIGN(Lease renewed, a_->AcquireLease("scheduler", "a", 60'000));
  EXPECT_EQ(renewed.holder, "a");
  EXPECT_EQ(renewed.generation, 1);
  EXPECT_GE(renewed.expires_ms, taken.expires_ms);

  // Letting go: only the holder can; then the other takes it at once.
  OUTPOST_ASSERT_OK(b_->ReleaseLease("scheduler", "b"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(refused, b_->AcquireLease("scheduler", "b", 60'000));
  EXPECT_EQ(refused.holder, "a");
  OUTPOST_ASSERT_OK(a_->ReleaseLease("scheduler", "a"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Lease moved, b_->AcquireLease("scheduler", "b", 60'000));
  EXPECT_EQ(moved.holder, "b");
  EXPECT_EQ(moved.generation, 2);
  OUTPOST_ASSERT_OK_AND_ASSIGN(refused, a_->AcquireLease("scheduler", "a", 60'000));
  EXPECT_EQ(refused.holder, "b");

  // Expiry: b renews for the shortest ttl and stops renewing; a takes it once it expired
  // on the database's clock (and not before: every answer until then names b).
  OUTPOST_ASSERT_OK(b_->AcquireLease("scheduler", "b", 1000));
  Lease last;
  ASSERT_TRUE(WaitFor([&] {
    Result<Lease> l = a_->AcquireLease("scheduler", "a", 60'000);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    if (!l.ok()) return true;
    last = *l;
    return l->holder != "b";
  }));
  EXPECT_EQ(last.holder, "a");
  EXPECT_EQ(last.generation, 3);
  OUTPOST_ASSERT_OK_AND_ASSIGN(refused, b_->AcquireLease("scheduler", "b", 60'000));
  EXPECT_EQ(refused.holder, "a");
  EXPECT_EQ(refused.generation, 3);
}

// Many askers on two stores race for a free lease, then for an expired one: each time every
// answer names the same holder, and only that asker sees itself holding it.
TEST_P(LeaseContract, RacingAskersAgreeOnOneHolder) {
  std::string winner;
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      // The winner renews for the shortest ttl and stops asking; the next race starts once
      // that expired on the database's clock (read from another lease's expiry).
      OUTPOST_ASSERT_OK_AND_ASSIGN(Lease short_lease, a_->AcquireLease("race", winner, 1000));
      ASSERT_EQ(short_lease.holder, winner);
      ASSERT_TRUE(WaitFor([&] {
        Result<Lease> clock = b_->AcquireLease("clock", "x", 1000);
        return clock.ok() && clock->expires_ms - 1000 >= short_lease.expires_ms;
      }));
    }
    constexpr int kAskers = 16;
    std::vector<std::string> answers(kAskers);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kAskers; ++t) {
      threads.emplace_back([&, t] {
        Store& store = t % 2 == 0 ? *a_ : *b_;
        ++ready;
        while (ready.load() < kAskers) std::this_thread::yield();
        Result<Lease> l = store.AcquireLease("race", "asker" + std::to_string(t), 60'000);
        answers[t] = l.ok() ? l->holder : "error: " + l.status().ToString();
      });
    }
    for (auto& th : threads) th.join();
    int winners = 0;
    for (int t = 0; t < kAskers; ++t) {
      EXPECT_EQ(answers[t], answers[0]) << "asker " << t << " round " << round;
      if (answers[t] == "asker" + std::to_string(t)) ++winners;
    }
    EXPECT_EQ(winners, 1) << "round " << round << ": " << answers[0];
    winner = answers[0];
  }
}

// The schedule's state is written only by the lease's holder at its generation; a refused
// write changes nothing.
TEST_P(LeaseContract, ScheduleStateIsWrittenOnlyUnderTheLease) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto none, b_->GetScheduleState("retrain/pump"));
  EXPECT_FALSE(none.has_value());
  OUTPOST_ASSERT_OK_AND_ASSIGN(Lease held_a, a_->AcquireLease("scheduler", "a", 60'000));
  OUTPOST_ASSERT_OK(a_->PutScheduleState("retrain/pump", R"({"runs":1})", held_a));
  // Not the holder; a generation that is not the lease's; bad values.
  Status not_holder = b_->PutScheduleState(
      "retrain/pump", R"({"runs":9})", Lease{.name = "scheduler", .holder = "b", .generation = 1});
  EXPECT_EQ(not_holder.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(not_holder.reason(), "lease_lost");
  Lease stale = held_a;
  stale.generation = 7;
  EXPECT_EQ(a_->PutScheduleState("retrain/pump", R"({"runs":9})", stale).reason(), "lease_lost");
  EXPECT_EQ(a_->PutScheduleState("retrain/pump", std::string("a\0b", 3), held_a).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(a_->PutScheduleState("retrain/pump", std::string(65 << 10, 'x'), held_a).code(),
            StatusCode::kInvalidArgument);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto got, b_->GetScheduleState("retrain/pump"));
  EXPECT_EQ(got, std::optional<std::string>(R"({"runs":1})"));

  // Taken over: the old holder's writes are refused, the new holder's land.
  OUTPOST_ASSERT_OK(a_->ReleaseLease("scheduler", "a"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Lease held_b, b_->AcquireLease("scheduler", "b", 60'000));
  ASSERT_EQ(held_b.generation, 2);
  EXPECT_EQ(a_->PutScheduleState("retrain/pump", R"({"runs":9})", held_a).reason(), "lease_lost");
  OUTPOST_ASSERT_OK_AND_ASSIGN(got, a_->GetScheduleState("retrain/pump"));
  EXPECT_EQ(got, std::optional<std::string>(R"({"runs":1})"));
  OUTPOST_ASSERT_OK(b_->PutScheduleState("retrain/pump", R"({"runs":2})", held_b));
  OUTPOST_ASSERT_OK_AND_ASSIGN(got, a_->GetScheduleState("retrain/pump"));
  EXPECT_EQ(got, std::optional<std::string>(R"({"runs":2})"));
}

INSTANTIATE_TEST_SUITE_P(Engines, LeaseContract, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

// Two SchedulerLease holders on one database: exactly one holds it; when it stops, the
// other takes over; both never hold it at once, as each sees it.
TEST(SchedulerLease, OneOfTwoHoldsAndTheOtherTakesOverWhenItStops) {
  ASSERT_NE(PostgresEnvironment::cluster(), nullptr) << PostgresEnvironment::status().ToString();
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::string url, PostgresEnvironment::FreshDatabaseUrl("postgres", "", "two_holders"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto store_a, OpenStore(url));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto store_b, OpenStore(url));
  std::atomic<int> holding{0}, overlaps{0};
  auto counting = [&](bool held, int64_t) {
    if (held && ++holding > 1) ++overlaps;
    if (!held) --holding;
  };
  SchedulerLease::Options options{
      .holder = "a", .ttl = std::chrono::milliseconds(3000), .on_change = counting};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto a, SchedulerLease::Start(*store_a, options));
  ASSERT_TRUE(WaitFor([&] { return a->Held(); }));
  options.holder = "b";
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto b, SchedulerLease::Start(*store_b, options));
  ASSERT_TRUE(WaitFor([&] { return b->answers() >= 3; }));  // renewals of a came between
  EXPECT_TRUE(a->Held());
  EXPECT_FALSE(b->Held());
  EXPECT_EQ(a->generation(), 1);

  a->Stop();  // lets go
  EXPECT_FALSE(a->Held());
  ASSERT_TRUE(WaitFor([&] { return b->Held(); }));
  EXPECT_EQ(b->generation(), 2);
  EXPECT_EQ(overlaps.load(), 0);
  b->Stop();
  EXPECT_EQ(holding.load(), 0);
}

TEST(SchedulerLease, RefusesABadTtlAndMakesOneHolderIdPerProcess) {
  TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto store, OpenStore("sqlite:" + dir.File("hub.db")));
  EXPECT_EQ(SchedulerLease::Start(*store, {.ttl = std::chrono::milliseconds(999)}).status().code(),
            StatusCode::kInvalidArgument);
  // Nothing was asked for.
  OUTPOST_ASSERT_OK_AND_ASSIGN(Lease l, store->AcquireLease("scheduler", "probe", 60'000));
  EXPECT_EQ(l.holder, "probe");
  EXPECT_EQ(l.generation, 1);
  EXPECT_EQ(HubProcessId(), HubProcessId());
  EXPECT_NE(HubProcessId().find(":" + std::to_string(::getpid()) + ":"), std::string::npos);
}

// Run only as the child of the test below (it sets kChildUrlEnv): holds the lease as
// "child", says so on stdout, and waits to be killed.
TEST(LeaseChild, DISABLED_HoldsTheLeaseUntilKilled) {
  const char* url = std::getenv(kChildUrlEnv);
  if (url == nullptr) GTEST_SKIP() << "run by SchedulerLease.MovesWhenItsHolderIsKilled";
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto store, OpenStore(url));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto lease,
      SchedulerLease::Start(*store, {.holder = "child", .ttl = std::chrono::milliseconds(3000)}));
  ASSERT_TRUE(WaitFor([&] { return lease->Held(); }));
  std::printf("held %lld\n", static_cast<long long>(lease->generation()));
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::minutes(10));  // killed long before
}

// A hub process holding the lease dies by SIGKILL (no release, its connections cut by the
// kernel): another holder takes the lease over once it expires, and not while the dead one
// held it.
TEST(SchedulerLease, MovesWhenItsHolderIsKilled) {
  ASSERT_NE(PostgresEnvironment::cluster(), nullptr) << PostgresEnvironment::status().ToString();
  TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::string url, PostgresEnvironment::FreshDatabaseUrl("postgres", "", "killed_holder"));
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto child, Subprocess::Start({self, "--gtest_also_run_disabled_tests",
                                     "--gtest_filter=LeaseChild.DISABLED_HoldsTheLeaseUntilKilled"},
                                    dir.File("child.log"), {{kChildUrlEnv, url}}));
  bool child_holds = false;
  while (true) {
    Result<std::string> line = child->ReadLine();
    if (!line.ok()) break;
    if (line->starts_with("held ")) {
      child_holds = true;
      EXPECT_EQ(*line, "held 1");
      break;
    }
  }
  ASSERT_TRUE(child_holds) << "the child never held the lease; its log: " << dir.File("child.log");

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto store, OpenStore(url));
  std::atomic<bool> killed{false}, held_before_kill{false};
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto lease, SchedulerLease::Start(*store, {.holder = "parent",
                                                 .ttl = std::chrono::milliseconds(3000),
                                                 .on_change = [&](bool held, int64_t) {
                                                   if (held && !killed.load())
                                                     held_before_kill = true;
                                                 }}));
  // Several asks, across the child's renewals: each finds the child holding it.
  ASSERT_TRUE(WaitFor([&] { return lease->answers() >= 3; }));
  EXPECT_FALSE(lease->Held());
  killed = true;
  OUTPOST_ASSERT_OK(child->Signal(SIGKILL));
  EXPECT_EQ(child->Wait(), 128 + SIGKILL);
  EXPECT_FALSE(held_before_kill.load());

  ASSERT_TRUE(WaitFor([&] { return lease->Held(); })) << "the lease never moved";
  EXPECT_EQ(lease->generation(), 2);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Lease now, store->AcquireLease("scheduler", "someone", 60'000));
  EXPECT_EQ(now.holder, "parent");
}

}  // namespace
}  // namespace outpost::hub
