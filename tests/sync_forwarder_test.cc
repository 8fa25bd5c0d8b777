// The forwarder in `outpost edge` against the real `outpost hub serve`, on the paths the
// fault test does not reach: a hub whose TLS certificate comes from another CA is refused
// (the edge deletes nothing, the hub stores nothing), and a site whose policy region allows
// aggregates only never sends a raw record (the edge withholds and audits each one, and the
// hub's store holds none of them after the backlog drained). And the forwarder itself, in
// this process against the real hub: its uploads stay under the bandwidth cap, it backs off
// while the hub is unreachable, and it reports the node's status.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "outbox/outbox.h"
#include "policy/audit.h"
#include "policy/policy.h"
#include "sync/forwarder.h"
#include "tests/sync_fault_proxy.h"
#include "tests/sync_test_support.h"

namespace outpost {
namespace {

using testing::FaultProxy;
using testing::TempDir;

constexpr char kAggregatesOnlyPolicy[] =
    "format: 1\nversion: 1\ndefault: keep\nregions:\n  r1:\n    raw: false\n"
    "default_region: r1\nkinds:\n  feedback:\n    default: keep\n    fields:\n"
    "      request_id: hash\n";

std::string EdgeConfig(const TempDir& dir, uint16_t hub_port) {
  return "listen: 127.0.0.1:0\ngrpc_listen: \"\"\nthreads: 2\nsite_id: plant-7\n"
         "node_id: edge-1\nlog_level: debug\nmodel_repository: " + dir.File("models") + "\n"
         "data_dir: " + dir.File("data") + "\n"
         "sync:\n"
         "  hub_url: https://127.0.0.1:" + std::to_string(hub_port) + "\n"
         "  credentials_dir: " + dir.File("credentials") + "\n"
         "  policy_file: " + dir.File("policy.yaml") + "\n"
         "  batch_max_records: 10\n"
         "  backoff_initial_ms: 20\n"
         "  backoff_max_ms: 200\n"
         "  request_timeout_ms: 2000\n";
}

// Posts `n` feedback records; returns the seqs the edge acknowledged.
std::set<uint64_t> Produce(http::Client& client, int n) {
  std::set<uint64_t> seqs;
  json::Parser parser;
  for (int i = 0; i < n; ++i) {
    std::string body = "{\"request_id\":\"r-" + std::to_string(i) +
                       "\",\"model\":\"pump\",\"label\":" + std::to_string(i % 3) + "}";
    auto r = client.Request("POST", "/v1/feedback", body);
    if (!r.ok() || r->status != 200) continue;
    Result<json::Value> root = parser.Parse(r->body);
    if (!root.ok()) continue;
    if (Result<uint64_t> seq = (*root)["seq"].GetUint64(); seq.ok()) seqs.insert(*seq);
  }
  return seqs;
}

// A hub (its data folder, the site added, serving) and the site enrolled with it.
struct EnrolledHub {
  std::unique_ptr<Subprocess> process;
  uint16_t port = 0;
};

Result<EnrolledHub> StartEnrolledHub(const TempDir& dir, const std::string& data_dir,
                                     const std::string& credentials_dir) {
  OUTPOST_ASSIGN_OR_RETURN(std::string token,
                           testing::AddHubSite(data_dir, "plant-7", "acme", "r1"));
  OUTPOST_ASSIGN_OR_RETURN(auto started, testing::StartHub(data_dir, dir.File("policy.yaml"),
                                                           data_dir + ".log"));
  OUTPOST_RETURN_IF_ERROR(
      testing::EnrolSite(started.second, token, "plant-7", credentials_dir));
  return EnrolledHub{std::move(started.first), started.second};
}

TEST(SyncForwarder, RefusesAHubWhoseCertificateComesFromAnotherCa) {
  TempDir dir;
  // Feedback is taken only for a model the repository holds: a folder for pump (nothing in
  // it loads; the labels need only its name).
  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("models/pump")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("policy.yaml"), testing::kFeedbackPolicy));
  // The site enrols with hub A; hub B (its own CA, the same site added) is what it dials.
  Result<EnrolledHub> hub_a =
      StartEnrolledHub(dir, dir.File("hub-a"), dir.File("credentials"));
  OUTPOST_ASSERT_OK(hub_a);
  Result<EnrolledHub> hub_b = StartEnrolledHub(dir, dir.File("hub-b"), dir.File("creds-b"));
  OUTPOST_ASSERT_OK(hub_b);
  FaultProxy proxy(hub_b->port);  // counts the forwarder's attempts
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("edge.yaml"), EdgeConfig(dir, proxy.port())));
  auto edge = testing::StartEdge(dir.File("edge.yaml"), dir.File("edge.log"));
  OUTPOST_ASSERT_OK(edge);
  auto client = http::Client::Connect("127.0.0.1", edge->second);
  OUTPOST_ASSERT_OK(client);
  const std::set<uint64_t> acked = Produce(**client, 30);
  ASSERT_EQ(acked.size(), 30u);

  // The forwarder tries again and again (it backs off) and never gets through.
  for (int i = 0; i < 300 && proxy.Accepted()[FaultProxy::Mode::kPass] < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(proxy.Accepted()[FaultProxy::Mode::kPass], 5u);
  Result<uint64_t> backlog = testing::EdgeBacklog(**client);
  OUTPOST_ASSERT_OK(backlog);
  EXPECT_EQ(*backlog, 30u) << "the edge deleted records a hub it cannot trust never stored";
  client->reset();
  OUTPOST_ASSERT_OK(edge->first->Signal(SIGTERM));
  EXPECT_EQ(edge->first->Wait(), 0);
  // The edge is the one that refused: its TLS client did not verify hub B's certificate
  // (hub B never saw a request it could refuse).
  Result<std::string> edge_log = ReadFile(dir.File("edge.log"));
  OUTPOST_ASSERT_OK(edge_log);
  EXPECT_NE(edge_log->find("(certificate: "), std::string::npos) << *edge_log;
  EXPECT_EQ(edge_log->find("credential_untrusted"), std::string::npos) << *edge_log;
  for (EnrolledHub* h : {&*hub_a, &*hub_b}) {
    OUTPOST_ASSERT_OK(h->process->Signal(SIGTERM));
    EXPECT_EQ(h->process->Wait(), 0);
  }
  for (const char* d : {"hub-a", "hub-b"}) {
    Result<testing::HubContents> held = testing::ReadHubStore(
        "sqlite:" + JoinPath(dir.File(d), "hub.db"), "acme", "plant-7", {"edge-1"});
    OUTPOST_ASSERT_OK(held);
    EXPECT_TRUE(held->records.empty()) << d;
    EXPECT_EQ(held->heads["edge-1"].first, 0u) << d;
  }
}

TEST(SyncForwarder, AnAggregatesOnlyRegionNeverSendsARawRecord) {
  TempDir dir;
  // Feedback is taken only for a model the repository holds: a folder for pump (nothing in
  // it loads; the labels need only its name).
  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("models/pump")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("policy.yaml"), kAggregatesOnlyPolicy));
  Result<EnrolledHub> hub = StartEnrolledHub(dir, dir.File("hub"), dir.File("credentials"));
  OUTPOST_ASSERT_OK(hub);
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("edge.yaml"), EdgeConfig(dir, hub->port)));
  auto edge = testing::StartEdge(dir.File("edge.yaml"), dir.File("edge.log"));
  OUTPOST_ASSERT_OK(edge);
  auto client = http::Client::Connect("127.0.0.1", edge->second);
  OUTPOST_ASSERT_OK(client);
  const std::set<uint64_t> acked = Produce(**client, 50);
  ASSERT_EQ(acked.size(), 50u);

  // The backlog drains: every record is decided on and leaves the outbox.
  uint64_t backlog = 1;
  for (int i = 0; i < 600 && backlog != 0; ++i) {
    Result<uint64_t> b = testing::EdgeBacklog(**client);
    OUTPOST_ASSERT_OK(b);
    backlog = *b;
    if (backlog != 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(backlog, 0u);
  client->reset();
  OUTPOST_ASSERT_OK(edge->first->Signal(SIGTERM));
  EXPECT_EQ(edge->first->Wait(), 0);
  OUTPOST_ASSERT_OK(hub->process->Signal(SIGTERM));
  EXPECT_EQ(hub->process->Wait(), 0);

  // The edge withheld each record, in its audit chain.
  Result<std::string> log = ReadFile(dir.File("data/audit.log"));
  OUTPOST_ASSERT_OK(log);
  OUTPOST_ASSERT_OK(policy::VerifyAuditChain(*log).status());
  std::set<uint64_t> withheld;
  uint64_t allowed = 0;
  json::Parser parser;
  size_t start = 0;
  while (start < log->size()) {
    size_t end = log->find('\n', start);
    if (end == std::string::npos) end = log->size();
    OUTPOST_ASSERT_OK_AND_ASSIGN(json::Value e, parser.Parse(log->substr(start, end - start)));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string_view decision, e["decision"].GetString());
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string_view reason, e["reason"].GetString());
    OUTPOST_ASSERT_OK_AND_ASSIGN(uint64_t rseq, e["rseq"].GetUint64());
    if (decision == "withheld" && reason == "raw_not_allowed_in_region") withheld.insert(rseq);
    if (decision == "allowed") ++allowed;
    start = end + 1;
  }
  EXPECT_EQ(withheld, acked);
  EXPECT_EQ(allowed, 0u);

  // The hub holds no record of the site.
  Result<testing::HubContents> held = testing::ReadHubStore(
      "sqlite:" + JoinPath(dir.File("hub"), "hub.db"), "acme", "plant-7", {"edge-1"});
  OUTPOST_ASSERT_OK(held);
  EXPECT_TRUE(held->records.empty());
}

}  // namespace
}  // namespace outpost

namespace outpost {
namespace {

// A forwarder in this process on its own outbox, enrolled with a real hub.
struct LocalSite {
  std::unique_ptr<outbox::Outbox> outbox;
  sync::ForwarderOptions options;
};

Result<LocalSite> MakeLocalSite(const TempDir& dir, uint16_t hub_port) {
  LocalSite site;
  OUTPOST_ASSIGN_OR_RETURN(site.outbox,
                           outbox::Outbox::Open({.path = dir.File("outbox.db"),
                                                 .site_id = "plant-7",
                                                 .node_id = "edge-1"}));
  OUTPOST_ASSIGN_OR_RETURN(site.options.policy, policy::ParsePolicy(testing::kFeedbackPolicy));
  site.options.outbox = site.outbox.get();
  site.options.https = {.base_url = "https://127.0.0.1:" + std::to_string(hub_port),
                        .cert_file = dir.File("credentials/site.crt"),
                        .key_file = dir.File("credentials/site.key"),
                        .ca_file = dir.File("credentials/hub_ca.crt"),
                        .timeout = std::chrono::seconds(5)};
  site.options.hash_key_secret = std::string(32, 'k');
  site.options.state_dir = dir.File("state");
  site.options.idle_poll = std::chrono::milliseconds(20);
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(site.options.state_dir));
  return site;
}

// `n` feedback records whose notes do not compress (random hex), about 200 bytes each.
void AppendFeedback(outbox::Outbox& outbox, int n) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < n; ++i) {
    char note[129];
    for (int j = 0; j < 128; j += 16) std::snprintf(note + j, 17, "%016llx",
                                                    static_cast<unsigned long long>(rng()));
    std::string payload = "{\"request_id\":\"r-" + std::to_string(i) +
                          "\",\"model\":\"pump\",\"label\":1,\"note\":\"" + note + "\"}";
    ASSERT_TRUE(outbox.Append({.kind = outbox::Kind::kFeedback, .stream = "pump",
                               .payload = payload}).ok());
  }
}

TEST(SyncForwarderLocal, UploadsStayUnderTheBandwidthCap) {
  TempDir dir;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("policy.yaml"), testing::kFeedbackPolicy));
  Result<EnrolledHub> hub = StartEnrolledHub(dir, dir.File("hub"), dir.File("credentials"));
  OUTPOST_ASSERT_OK(hub);
  Result<LocalSite> site = MakeLocalSite(dir, hub->port);
  OUTPOST_ASSERT_OK(site);
  constexpr int kRecords = 1200;
  AppendFeedback(*site->outbox, kRecords);
  // About 250 KB of compressed bodies at 60 KB/s: four seconds or so.
  constexpr uint64_t kRate = 60'000;
  site->options.bandwidth_bytes_per_s = kRate;
  site->options.lease.max_records = 50;
  site->options.status_interval = std::chrono::seconds(0);
  const auto started = std::chrono::steady_clock::now();
  auto forwarder = sync::Forwarder::Start(site->options);
  OUTPOST_ASSERT_OK(forwarder);
  // The bucket starts full (one second of traffic); after that the bytes sent by any moment
  // never exceed the rate times the time since the start. A slow machine only sends less.
  sync::ForwarderStats stats;
  uint64_t max_batch = 0, last_sent = 0;
  for (int i = 0; i < 1200 && stats.records_acked < kRecords; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    stats = (*forwarder)->Stats();
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    max_batch = std::max(max_batch, stats.bytes_sent - last_sent);
    last_sent = stats.bytes_sent;
    ASSERT_LE(static_cast<double>(stats.bytes_sent), kRate * (elapsed + 1.0))
        << "after " << elapsed << " s";
  }
  (*forwarder)->Stop();
  stats = (*forwarder)->Stats();
  EXPECT_EQ(stats.records_acked, static_cast<uint64_t>(kRecords));
  EXPECT_EQ(stats.failures, 0u) << stats.last_error;
  // The cap was exercised: the bodies were several seconds' worth at the rate.
  EXPECT_GT(stats.bytes_sent, 3 * kRate);
  OUTPOST_ASSERT_OK(hub->process->Signal(SIGTERM));
  EXPECT_EQ(hub->process->Wait(), 0);
  Result<testing::HubContents> held = testing::ReadHubStore(
      "sqlite:" + JoinPath(dir.File("hub"), "hub.db"), "acme", "plant-7", {"edge-1"});
  OUTPOST_ASSERT_OK(held);
  EXPECT_EQ(held->records.size(), static_cast<size_t>(kRecords));
}

TEST(SyncForwarderLocal, BacksOffWhileTheHubIsDownAndReportsStatusOnceItIsBack) {
  TempDir dir;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("policy.yaml"), testing::kFeedbackPolicy));
  Result<EnrolledHub> hub = StartEnrolledHub(dir, dir.File("hub"), dir.File("credentials"));
  OUTPOST_ASSERT_OK(hub);
  FaultProxy proxy(hub->port);
  proxy.SetMode(FaultProxy::Mode::kDrop);
  Result<LocalSite> site = MakeLocalSite(dir, proxy.port());
  OUTPOST_ASSERT_OK(site);
  AppendFeedback(*site->outbox, 20);
  site->options.backoff_initial = std::chrono::milliseconds(40);
  site->options.backoff_max = std::chrono::milliseconds(320);
  site->options.status_interval = std::chrono::seconds(1);
  site->options.models_json = [] { return std::string(R"([{"name":"pump","version":3,"state":"READY"}])"); };
  auto forwarder = sync::Forwarder::Start(site->options);
  OUTPOST_ASSERT_OK(forwarder);
  // While the hub cannot be reached, attempts come ever more slowly: waits of 20-40, 40-80,
  // 80-160 ms, then 160-320 ms each. Over two seconds that is at most 4 + 2000/160 attempts
  // (plus the status reports, one a second); without backoff it would be hundreds.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  sync::ForwarderStats down = (*forwarder)->Stats();
  EXPECT_GE(down.failures, 3u);
  EXPECT_LE(down.failures, 4u + 13u + 3u);
  EXPECT_EQ(down.records_acked, 0u);
  EXPECT_EQ(site->outbox->Stats()->records, 20u) << "nothing is deleted without the hub";
  // The hub is back: the backlog drains and a status report arrives.
  proxy.SetMode(FaultProxy::Mode::kPass);
  sync::ForwarderStats up;
  for (int i = 0; i < 400 && (up.records_acked < 20 || up.status_reports == 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    up = (*forwarder)->Stats();
  }
  (*forwarder)->Stop();
  EXPECT_EQ(up.records_acked, 20u);
  EXPECT_GE(up.status_reports, 1u);
  EXPECT_EQ(site->outbox->Stats()->records, 0u);
  OUTPOST_ASSERT_OK(hub->process->Signal(SIGTERM));
  EXPECT_EQ(hub->process->Wait(), 0);
  Result<testing::HubContents> held = testing::ReadHubStore(
      "sqlite:" + JoinPath(dir.File("hub"), "hub.db"), "acme", "plant-7", {"edge-1"});
  OUTPOST_ASSERT_OK(held);
  EXPECT_EQ(held->records.size(), 20u);
}

}  // namespace
}  // namespace outpost
