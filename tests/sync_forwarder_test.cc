// The forwarder in `outpost edge` against the real `outpost hub serve`, on the paths the
// fault test does not reach: a hub whose TLS certificate comes from another CA is refused
// (the edge deletes nothing, the hub stores nothing), and a site whose policy region allows
// aggregates only never sends a raw record (the edge withholds and audits each one, and the
// hub's store holds none of them after the backlog drained).
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "apps/http_client.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "policy/audit.h"
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

Result<uint64_t> Backlog(apps::HttpClient& client) {
  OUTPOST_ASSIGN_OR_RETURN(apps::HttpResult r, client.Request("GET", "/v1/outbox", ""));
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  uint64_t records = 0;
  if (r.status != 200 || parser.parse(r.body).get(root) != simdjson::SUCCESS ||
      root["records"].get_uint64().get(records) != simdjson::SUCCESS) {
    return InternalError("bad /v1/outbox answer: " + r.body);
  }
  return records;
}

// Posts `n` feedback records; returns the seqs the edge acknowledged.
std::set<uint64_t> Produce(apps::HttpClient& client, int n) {
  std::set<uint64_t> seqs;
  simdjson::dom::parser parser;
  for (int i = 0; i < n; ++i) {
    std::string body = "{\"request_id\":\"r-" + std::to_string(i) +
                       "\",\"model\":\"pump\",\"label\":" + std::to_string(i % 3) + "}";
    auto r = client.Request("POST", "/v1/feedback", body);
    simdjson::dom::element root;
    uint64_t seq = 0;
    if (r.ok() && r->status == 200 && parser.parse(r->body).get(root) == simdjson::SUCCESS &&
        root["seq"].get_uint64().get(seq) == simdjson::SUCCESS) {
      seqs.insert(seq);
    }
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
  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("models")));
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
  auto client = apps::HttpClient::Connect("127.0.0.1", edge->second);
  OUTPOST_ASSERT_OK(client);
  const std::set<uint64_t> acked = Produce(**client, 30);
  ASSERT_EQ(acked.size(), 30u);

  // The forwarder tries again and again (it backs off) and never gets through.
  for (int i = 0; i < 300 && proxy.Accepted()[FaultProxy::Mode::kPass] < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(proxy.Accepted()[FaultProxy::Mode::kPass], 5u);
  Result<uint64_t> backlog = Backlog(**client);
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
  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("models")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("policy.yaml"), kAggregatesOnlyPolicy));
  Result<EnrolledHub> hub = StartEnrolledHub(dir, dir.File("hub"), dir.File("credentials"));
  OUTPOST_ASSERT_OK(hub);
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("edge.yaml"), EdgeConfig(dir, hub->port)));
  auto edge = testing::StartEdge(dir.File("edge.yaml"), dir.File("edge.log"));
  OUTPOST_ASSERT_OK(edge);
  auto client = apps::HttpClient::Connect("127.0.0.1", edge->second);
  OUTPOST_ASSERT_OK(client);
  const std::set<uint64_t> acked = Produce(**client, 50);
  ASSERT_EQ(acked.size(), 50u);

  // The backlog drains: every record is decided on and leaves the outbox.
  uint64_t backlog = 1;
  for (int i = 0; i < 600 && backlog != 0; ++i) {
    Result<uint64_t> b = Backlog(**client);
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
  simdjson::dom::parser parser;
  size_t start = 0;
  while (start < log->size()) {
    size_t end = log->find('\n', start);
    if (end == std::string::npos) end = log->size();
    simdjson::dom::element e;
    ASSERT_EQ(parser.parse(log->substr(start, end - start)).get(e), simdjson::SUCCESS);
    std::string_view decision, reason;
    uint64_t rseq = 0;
    ASSERT_EQ(e["decision"].get_string().get(decision), simdjson::SUCCESS);
    ASSERT_EQ(e["reason"].get_string().get(reason), simdjson::SUCCESS);
    ASSERT_EQ(e["rseq"].get_uint64().get(rseq), simdjson::SUCCESS);
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
