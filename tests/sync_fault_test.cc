// The network fault test of the site↔hub link: `outpost edge` uploads feedback records
// through a fault-injecting TCP proxy to the hub while faults come and go in episodes —
// connections dropped, traffic delayed, requests reset part-way, acknowledgements lost after
// the hub stored the batch, a blackhole, and the hub process killed (SIGKILL) and restarted.
// Producers keep writing throughout. Then the faults end, the backlog drains, and the hub
// must hold every record the edge acknowledged to its producers exactly once: none lost, none
// twice, none extra. The hub is the real `outpost hub serve` on an SQLite store, read back
// through hub/store.h after it stopped; the audit chain the hub verified must reach the
// edge's own audit head.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "policy/audit.h"
#include "tests/sync_fault_proxy.h"
#include "tests/sync_test_support.h"

namespace outpost {
namespace {

using testing::FaultProxy;
using testing::TempDir;
using Key = std::tuple<std::string, std::string, uint64_t>;

constexpr int kEpisodes = 56;
constexpr auto kEpisodeLength = std::chrono::milliseconds(700);

// The producers send about 500 labels a second between them, above the default feedback
// rate of an anonymous caller: the rate is raised so that every write is the outbox's to take
// or refuse.
std::string EdgeConfig(const TempDir& dir, uint16_t proxy_port) {
  return "listen: 127.0.0.1:0\ngrpc_listen: \"\"\nthreads: 2\nsite_id: plant-7\n"
         "node_id: edge-1\nmodel_repository: " + dir.File("models") + "\n"
         "data_dir: " + dir.File("data") + "\n"
         "auth:\n  feedback_per_second: 10000\n  feedback_burst: 10000\n"
         "sync:\n"
         "  hub_url: https://127.0.0.1:" + std::to_string(proxy_port) + "\n"
         "  credentials_dir: " + dir.File("credentials") + "\n"
         "  policy_file: " + dir.File("policy.yaml") + "\n"
         "  batch_max_records: 40\n"
         "  lease_seconds: 3\n"
         "  backoff_initial_ms: 20\n"
         "  backoff_max_ms: 400\n"
         "  status_interval_s: 1\n"
         "  request_timeout_ms: 800\n";
}

TEST(SyncFault, EveryAcknowledgedRecordReachesTheHubExactlyOnceThroughFaultEpisodes) {
  TempDir dir;
  // Feedback is taken only for models the repository holds: a folder each for pump and fan
  // (nothing in them loads; the labels need only their names).
  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("models/pump")));
  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("models/fan")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("policy.yaml"), testing::kFeedbackPolicy));
  // The real hub on an SQLite store in its data folder; the site enrols directly (no
  // proxy), then the edge talks to it only through the proxy. The hub's server certificate
  // names 127.0.0.1, the host the edge dials.
  const std::string hub_dir = dir.File("hub");
  Result<std::string> token = testing::AddHubSite(hub_dir, "plant-7", "acme", "r1");
  OUTPOST_ASSERT_OK(token);
  auto started = testing::StartHub(hub_dir, dir.File("policy.yaml"), dir.File("hub.log"));
  OUTPOST_ASSERT_OK(started);
  std::unique_ptr<Subprocess> hub = std::move(started->first);
  OUTPOST_ASSERT_OK(
      testing::EnrolSite(started->second, *token, "plant-7", dir.File("credentials")));
  FaultProxy proxy(started->second);
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("edge.yaml"), EdgeConfig(dir, proxy.port())));
  auto edge_started = testing::StartEdge(dir.File("edge.yaml"), dir.File("edge.log"));
  OUTPOST_ASSERT_OK(edge_started);
  std::unique_ptr<Subprocess> edge = std::move(edge_started->first);
  const uint16_t edge_port = edge_started->second;

  // Producers: feedback on two streams, each acknowledged key remembered.
  std::atomic<bool> producing{true};
  std::mutex acked_mu;
  std::set<Key> acked;  // guarded by acked_mu
  std::atomic<uint64_t> refused{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      auto client = http::Client::Connect("127.0.0.1", edge_port);
      if (!client.ok()) return;
      json::Parser parser;
      for (int i = 0; producing; ++i) {
        std::string body = "{\"request_id\":\"r-" + std::to_string(p) + "-" + std::to_string(i) +
                           "\",\"model\":\"" + (p == 0 ? "pump" : "fan") + "\",\"label\":" +
                           std::to_string(i % 3) + "}";
        auto r = (*client)->Request("POST", "/v1/feedback", body);
        Result<json::Value> root =
            r.ok() && r->status == 200 ? parser.Parse(r->body) : Result<json::Value>(r.status());
        Result<std::string_view> stream =
            root.ok() ? (*root)["stream"].GetString() : Result<std::string_view>(root.status());
        Result<uint64_t> seq = root.ok() ? (*root)["seq"].GetUint64() : root.status();
        if (r.ok() && r->status == 200 && root.ok() && stream.ok() && seq.ok()) {
          std::lock_guard<std::mutex> lock(acked_mu);
          acked.insert({"edge-1", std::string(*stream), *seq});
        } else {
          ++refused;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(4));
      }
    });
  }

  // The episodes: every fault mode in turn, a hub restart among them.
  const FaultProxy::Mode kModes[] = {
      FaultProxy::Mode::kDrop,          FaultProxy::Mode::kDelay,
      FaultProxy::Mode::kResetMidRequest, FaultProxy::Mode::kLoseResponse,
      FaultProxy::Mode::kBlackhole,     FaultProxy::Mode::kPass};
  int restarts = 0;
  for (int e = 0; e < kEpisodes; ++e) {
    if (e % 7 == 6) {
      // Restart the hub: SIGKILL, then a new process on the same data folder and store (a
      // new port).
      OUTPOST_ASSERT_OK(hub->Signal(SIGKILL));
      hub->Wait();
      auto again = testing::StartHub(hub_dir, dir.File("policy.yaml"), dir.File("hub.log"));
      OUTPOST_ASSERT_OK(again);
      hub = std::move(again->first);
      proxy.SetUpstreamPort(again->second);
      proxy.SetMode(FaultProxy::Mode::kPass);
      ++restarts;
    } else {
      proxy.SetMode(kModes[e % 6]);
    }
    std::this_thread::sleep_for(kEpisodeLength);
  }
  producing = false;
  for (auto& t : producers) t.join();
  proxy.SetMode(FaultProxy::Mode::kPass);

  // The faults have ended: the backlog drains (bounded by leases set aside, 3 s each).
  auto client = http::Client::Connect("127.0.0.1", edge_port);
  OUTPOST_ASSERT_OK(client);
  uint64_t backlog = 1;
  for (int i = 0; i < 600 && backlog != 0; ++i) {
    Result<uint64_t> b = testing::EdgeBacklog(**client);
    OUTPOST_ASSERT_OK(b);
    backlog = *b;
    if (backlog != 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(backlog, 0u) << "the backlog did not drain after the faults ended";
  client->reset();
  OUTPOST_ASSERT_OK(edge->Signal(SIGTERM));
  EXPECT_EQ(edge->Wait(), 0);
  // The hub drains and stops; then its store is read through hub/store.h.
  OUTPOST_ASSERT_OK(hub->Signal(SIGTERM));
  EXPECT_EQ(hub->Wait(), 0);

  Result<testing::HubContents> held = testing::ReadHubStore(
      "sqlite:" + JoinPath(hub_dir, "hub.db"), "acme", "plant-7", {"edge-1"});
  OUTPOST_ASSERT_OK(held);
  uint64_t lost = 0, duplicated = 0;
  for (const Key& k : acked) {
    auto it = held->records.find(k);
    if (it == held->records.end()) ++lost;
  }
  uint64_t extra = 0;
  for (const auto& [k, n] : held->records) {
    if (n != 1) ++duplicated;
    if (!acked.count(k)) ++extra;
  }
  std::map<FaultProxy::Mode, uint64_t> accepted = proxy.Accepted();
  std::printf("sync fault test: %d episodes (%d hub restarts), %zu records acknowledged to "
              "producers (%llu refused), %zu held by the hub, %llu lost, %llu duplicated, "
              "%llu never acknowledged; "
              "connections per mode:",
              kEpisodes, restarts, acked.size(), static_cast<unsigned long long>(refused.load()),
              held->records.size(), static_cast<unsigned long long>(lost),
              static_cast<unsigned long long>(duplicated),
              static_cast<unsigned long long>(extra));
  for (const auto& [mode, n] : accepted) {
    std::printf(" %s=%llu", FaultProxy::ModeName(mode), static_cast<unsigned long long>(n));
  }
  std::printf("\n");
  EXPECT_GE(kEpisodes, 50);
  EXPECT_GT(acked.size(), 500u);
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(duplicated, 0u);
  // A record the hub holds that no producer saw acknowledged would be one the edge invented
  // (a refused write's record is never in the outbox).
  EXPECT_EQ(extra, 0u);
  EXPECT_EQ(held->kinds["feedback"], held->records.size());
  // Every fault mode met real connections.
  for (FaultProxy::Mode m : kModes) EXPECT_GT(accepted[m], 0u) << FaultProxy::ModeName(m);

  // The audit chain: the edge's log verifies from genesis, and the hub's verified head is
  // the edge's head (the last batch carried the rest of it).
  Result<std::string> log = ReadFile(dir.File("data/audit.log"));
  OUTPOST_ASSERT_OK(log);
  Result<policy::ChainHead> head = policy::VerifyAuditChain(*log);
  OUTPOST_ASSERT_OK(head);
  EXPECT_GE(head->seq, acked.size());
  ASSERT_TRUE(held->heads.count("edge-1"));
  EXPECT_EQ(held->heads["edge-1"].first, head->seq);
  EXPECT_EQ(held->heads["edge-1"].second, head->hash);
}

}  // namespace
}  // namespace outpost
