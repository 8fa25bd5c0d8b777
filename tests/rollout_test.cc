// Rollouts in waves (hub/FORMAT.md section 11), with real processes: the real `outpost hub
// serve` with a `retrain:` entry whose release has a rollout plan (a canary, 50%, then all),
// releases made by an operator's approval through the API from registry versions holding
// real XGBoost models, and six real `outpost edge` sites with `sync.releases:`, each with a
// site health command that fails while a file `fail` is in the site's folder.
//
//   - a three-wave rollout across 6 sites reaches all of them, wave by wave, a site that is
//     offline while its wave is open installing the release when it comes back (the rollout
//     waits for it);
//   - a site whose health check fails halts the rollout at its wave, and every site that
//     had installed the release rolls back by itself and serves the version before; the
//     sites of the waves after it never get the release;
//   - an operator's abort of a complete rollout rolls back every site, and is in the hub's
//     audit log; the aborted release is not offered again;
//   - with min_requests, a wave waits until its sites answered that many requests with the
//     new version (the counters their nodes report), and a hub restarted mid-wave carries
//     on from the store.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "hub/store.h"
#include "tests/sync_test_support.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost {
namespace {

using testing::TempDir;

using testing::kEventPolicy;
using testing::RunOutpost;

constexpr int kSites = 6;

std::string Outpost() { return testing::OutpostBinary(); }

std::string SiteName(int i) { return "site-" + std::to_string(i); }

bool WaitUntil(const std::function<bool()>& done) {
  return testing::WaitUntil(done, std::chrono::seconds(120));
}

class RolloutTest : public ::testing::Test {
 protected:
  void SetUp() override { SetUpHub(); }

  void SetUpHub() {
    ASSERT_EQ(RunOutpost({"keys", "generate", "--dir", dir_.File("keys")}).exit_code, 0);
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("policy.yaml"), kEventPolicy));
    OUTPOST_ASSERT_OK(
        WriteFileAtomically(dir_.File("pump.yaml"),
                            "backend: xgboost\n"
                            "inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\n"
                            "outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]\n"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("train.yaml"), "features: [a]\n"));
    // The site's own check: fails while <site folder>/fail exists.
    OUTPOST_ASSERT_OK(
        WriteFileAtomically(dir_.File("check.sh"), "#!/bin/sh\ntest ! -e \"$SITE_DIR/fail\"\n"));
    hub_dir_ = dir_.File("hub");
    OUTPOST_ASSERT_OK(MakeDirectories(hub_dir_, 0700));
    RunResult op = RunOutpost({"hub", "operator", "add", "--tokens-file",
                               dir_.File("operators.yaml"), "--name", "ops", "--tenant", "acme"});
    ASSERT_EQ(op.exit_code, 0) << op.err;
    token_ = op.out.substr(0, op.out.find('\n'));
    std::string sites;
    for (int i = 1; i <= kSites; ++i) sites += (i > 1 ? ", " : "") + SiteName(i);
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        dir_.File("hub.yaml"),
        "data_dir: " + hub_dir_ + "\nlisten: 127.0.0.1:" + std::to_string(site_port_) +
            "\noperator_listen: 127.0.0.1:0\n"
            "operator_tokens_file: " +
            dir_.File("operators.yaml") +
            "\npolicies:\n  - {tenant: \"*\", file: " + dir_.File("policy.yaml") +
            "}\n"
            "retrain:\n  - model: pump\n    tenant: acme\n    train_config: " +
            dir_.File("train.yaml") + "\n    release:\n      model_config: " +
            dir_.File("pump.yaml") + "\n      keys: " + dir_.File("keys") + "\n      sites: [" +
            sites + "]\n      rollout: " + rollout_yaml_ + "\n"));
    // Three registry versions of real models, each of more rounds.
    OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data,
                                 train::MakePumpReadings({.rows = 300, .seed = 3}));
    {
      OUTPOST_ASSERT_OK_AND_ASSIGN(auto store,
                                   hub::OpenStore("sqlite:" + JoinPath(hub_dir_, "hub.db")));
      for (int v = 1; v <= 3; ++v) {
        OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, train::TrainXGBoost(data, {.rounds = 2 + v}));
        OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes,
                                     model->Serialize(train::ModelFormat::kJson));
        OUTPOST_ASSERT_OK(store->RegisterModel({.name = "pump",
                                                .version = v,
                                                .state = "candidate",
                                                .metrics_json = "{}",
                                                .lineage_json = "{}",
                                                .artifact_path = "",
                                                .created_ms = 1000 + v,
                                                .artifact = bytes}));
      }
    }
    std::vector<std::string> tokens;
    for (int i = 1; i <= kSites; ++i) {
      OUTPOST_ASSERT_OK_AND_ASSIGN(std::string t,
                                   testing::AddHubSite(hub_dir_, SiteName(i), "acme", "r1"));
      tokens.push_back(t);
    }
    StartHub();
    for (int i = 1; i <= kSites; ++i) {
      OUTPOST_ASSERT_OK(
          testing::EnrolSite(hub_port_, tokens[i - 1], SiteName(i), SiteDir(i) + "/cred"));
      OUTPOST_ASSERT_OK(MakeDirectories(SiteDir(i) + "/models"));
    }
  }

  void TearDown() override {
    for (auto& [i, edge] : edges_) {
      edge.first->Signal(SIGTERM).IgnoreError();
      edge.first->Wait();
    }
    if (hub_) {
      hub_->Signal(SIGTERM).IgnoreError();
      hub_->Wait();
    }
  }

  std::string SiteDir(int i) { return dir_.File(SiteName(i)); }

  void StartHub() {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        hub_, Subprocess::Start({Outpost(), "hub", "serve", "--config", dir_.File("hub.yaml"),
                                 "--log-format", "json"},
                                dir_.File("hub.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, hub_->ReadLine());
    ASSERT_EQ(line.rfind("listening on https://127.0.0.1:", 0), 0u) << line;
    hub_port_ = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string op_line, hub_->ReadLine());
    operator_port_ = static_cast<uint16_t>(std::atoi(op_line.c_str() + op_line.rfind(':') + 1));
  }

  void StartEdge(int i) {
    const std::string d = SiteDir(i);
    const std::string yaml =
        "listen: 127.0.0.1:0\ngrpc_listen: \"\"\nthreads: 1\nsite_id: " + SiteName(i) +
        "\nnode_id: n1\nlog_level: info\nmodel_repository: " + d + "/models\ndata_dir: " + d +
        "/data\nsync:\n  hub_url: https://127.0.0.1:" + std::to_string(hub_port_) +
        "\n  credentials_dir: " + d + "/cred\n  policy_file: " + dir_.File("policy.yaml") +
        "\n  backoff_initial_ms: 20\n  backoff_max_ms: 200\n  request_timeout_ms: 3000\n"
        "  status_interval_s: 1\n  releases:\n    state_dir: " +
        d + "/state\n    trusted_root: " + dir_.File("keys/root.json") +
        "\n    check_interval_s: 1\n    health_command: [/bin/sh, " + dir_.File("check.sh") + "]\n";
    OUTPOST_ASSERT_OK(WriteFileAtomically(d + "/edge.yaml", yaml));
    // The health command learns its site's folder from the edge's environment.
    ::setenv("SITE_DIR", d.c_str(), 1);
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto started,
                                 testing::StartEdge(d + "/edge.yaml", d + "/edge.log"));
    ::unsetenv("SITE_DIR");
    edges_[i] = std::move(started);
  }

  void StopEdge(int i) {
    auto it = edges_.find(i);
    if (it == edges_.end()) return;
    it->second.first->Signal(SIGTERM).IgnoreError();
    it->second.first->Wait();
    edges_.erase(it);
  }

  // The pump versions site i's edge serves (ready), as "1", "1,2", ...
  std::string Serves(int i) {
    std::string out;
    auto it = edges_.find(i);
    if (it == edges_.end()) return "offline";
    for (int v = 1; v <= 3; ++v) {
      auto client = http::Client::Connect("127.0.0.1", it->second.second);
      if (!client.ok()) return "unreachable";
      auto r =
          (*client)->Request("GET", "/v2/models/pump/versions/" + std::to_string(v) + "/ready");
      if (r.ok() && r->status == 200) out += (out.empty() ? "" : ",") + std::to_string(v);
    }
    return out;
  }

  // POST or GET on the operator listener; the status and body.
  std::pair<int, std::string> Api(const std::string& method, const std::string& path) {
    auto client = http::Client::Connect("127.0.0.1", operator_port_, token_);
    if (!client.ok()) return {0, client.status().ToString()};
    auto r = (*client)->Request(method, path);
    if (!r.ok()) return {0, r.status().ToString()};
    return {r->status, r->body};
  }

  // The rollout of pump version v: its state, each site's status, each wave's sites.
  struct Seen {
    std::string state;
    std::string reason;
    std::map<std::string, std::string> sites;  // site -> status
    std::vector<std::vector<std::string>> waves;
    std::vector<std::string> history;  // actions
  };
  std::optional<Seen> Rollout(int v) {
    auto [status, body] = Api("GET", "/api/v1/rollouts/pump/" + std::to_string(v));
    if (status != 200) return std::nullopt;
    json::Parser parser;
    auto root = parser.Parse(body);
    if (!root.ok()) return std::nullopt;
    Seen s;
    s.state = std::string((*root)["state"].GetString().value_or(""));
    s.reason = std::string((*root)["reason"].GetString().value_or(""));
    for (json::Value site : (*root)["sites"].Items()) {
      s.sites[std::string(site["site_id"].GetString().value_or(""))] =
          std::string(site["status"].GetString().value_or(""));
    }
    for (json::Value wave : (*root)["waves"].Items()) {
      std::vector<std::string> ids;
      for (json::Value id : wave["sites"].Items()) ids.emplace_back(id.GetString().value_or(""));
      s.waves.push_back(std::move(ids));
    }
    for (json::Value e : (*root)["history"].Items()) {
      s.history.emplace_back(e["action"].GetString().value_or(""));
    }
    return s;
  }

  std::string StateOf(int v) {
    std::optional<Seen> s = Rollout(v);
    return s ? s->state : "none";
  }

  void Approve(int v) {
    auto [status, body] =
        Api("POST", "/api/v1/models/pump/versions/" + std::to_string(v) + "/approve");
    ASSERT_EQ(status, 200) << body;
  }

  // Releases v and waits until every site installed it and serves it.
  void RollOutCompletely(int v) {
    Approve(v);
    ASSERT_TRUE(WaitUntil([&] { return StateOf(v) == "complete"; }))
        << StateOf(v) << ReadFile(dir_.File("hub.log")).value_or("");
    for (int i = 1; i <= kSites; ++i) {
      EXPECT_TRUE(WaitUntil([&] { return Serves(i) == std::to_string(v); }))
          << SiteName(i) << " serves " << Serves(i);
    }
  }

  // Sends `n` scoring requests to site i's edge; true when each was answered 200.
  bool Score(int i, int n) {
    auto it = edges_.find(i);
    if (it == edges_.end()) return false;
    auto client = http::Client::Connect("127.0.0.1", it->second.second);
    if (!client.ok()) return false;
    const std::string body = R"({"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],)"
                             R"("data":[1,2,3,4,5,6,7,8]}]})";
    for (int k = 0; k < n; ++k) {
      auto r = (*client)->Request("POST", "/v2/models/pump/infer", body);
      if (!r.ok() || r->status != 200) return false;
    }
    return true;
  }

  void StopHub() {
    hub_->Signal(SIGTERM).IgnoreError();
    hub_->Wait();
    hub_.reset();
  }

  // Set before SetUp by a test that needs another plan, or a site port that survives a
  // restart of the hub.
  std::string rollout_yaml_ = "{canary: [site-1], percent: [50], soak_s: 1}";
  uint16_t site_port_ = 0;

  TempDir dir_;
  std::string hub_dir_;
  std::string token_;
  std::unique_ptr<Subprocess> hub_;
  uint16_t hub_port_ = 0;
  uint16_t operator_port_ = 0;
  std::map<int, std::pair<std::unique_ptr<Subprocess>, uint16_t>> edges_;
};

TEST_F(RolloutTest, AThreeWaveRolloutReachesEverySiteAndWaitsForAnOfflineOne) {
  for (int i = 1; i <= kSites; ++i) StartEdge(i);
  Approve(1);
  std::optional<Seen> created = Rollout(1);
  ASSERT_TRUE(created.has_value());
  ASSERT_EQ(created->waves.size(), 3u);  // canary, 50% of the other five, the rest
  EXPECT_EQ(created->waves[0], std::vector<std::string>{"site-1"});
  EXPECT_EQ(created->waves[1].size(), 3u);
  EXPECT_EQ(created->waves[2].size(), 2u);
  // A site of the last wave goes offline before its wave opens.
  const int offline = std::stoi(created->waves[2][0].substr(5));
  StopEdge(offline);
  // The rollout gets as far as the last wave and waits there for the offline site.
  ASSERT_TRUE(WaitUntil([&] {
    std::optional<Seen> s = Rollout(1);
    if (!s) return false;
    int installed = 0;
    for (const auto& [site, status] : s->sites) installed += status == "installed";
    return installed == kSites - 1;
  })) << ReadFile(dir_.File("hub.log")).value_or("");
  EXPECT_EQ(StateOf(1), "rolling");
  EXPECT_EQ(Rollout(1)->sites[SiteName(offline)], "offered");
  // Back online: it installs the release, and the rollout completes.
  StartEdge(offline);
  ASSERT_TRUE(WaitUntil([&] { return StateOf(1) == "complete"; }));
  for (int i = 1; i <= kSites; ++i) {
    EXPECT_TRUE(WaitUntil([&] { return Serves(i) == "1"; })) << SiteName(i) << Serves(i);
  }
  std::optional<Seen> done = Rollout(1);
  int opened = 0;
  for (const std::string& a : done->history) opened += a == "wave_opened";
  EXPECT_EQ(opened, 3);
  EXPECT_EQ(done->history.back(), "completed");
}

TEST_F(RolloutTest, AFailedHealthCheckHaltsTheRolloutAndTheSitesThatInstalledRollBack) {
  for (int i = 1; i <= kSites; ++i) StartEdge(i);
  RollOutCompletely(1);
  // Version 2: a site of the 50% wave fails its health check.
  Approve(2);
  std::optional<Seen> created = Rollout(2);
  ASSERT_TRUE(created.has_value());
  ASSERT_EQ(created->waves.size(), 3u);
  const std::string failing = created->waves[1][0];
  OUTPOST_ASSERT_OK(WriteFileAtomically(SiteDir(std::stoi(failing.substr(5))) + "/fail", "x"));
  ASSERT_TRUE(WaitUntil([&] { return StateOf(2) == "halted"; }))
      << StateOf(2) << ReadFile(dir_.File("hub.log")).value_or("");
  std::optional<Seen> halted = Rollout(2);
  EXPECT_NE(halted->reason.find(failing), std::string::npos) << halted->reason;
  EXPECT_EQ(halted->sites[failing], "failed");
  // Every site serves version 1 again: the failing one never switched, the canary and the
  // rest of its wave that installed 2 rolled back by themselves.
  for (int i = 1; i <= kSites; ++i) {
    EXPECT_TRUE(WaitUntil([&] { return Serves(i) == "1"; })) << SiteName(i) << Serves(i);
  }
  ASSERT_TRUE(WaitUntil([&] { return Rollout(2)->sites["site-1"] == "rolled_back"; }))
      << Rollout(2)->sites["site-1"];
  for (const std::string& site : created->waves[1]) {
    if (site == failing) continue;
    EXPECT_TRUE(WaitUntil([&] { return Rollout(2)->sites[site] == "rolled_back"; })) << site;
  }
  // The last wave never got it, and never will.
  for (const std::string& site : created->waves[2]) {
    EXPECT_EQ(Rollout(2)->sites[site], "not_offered")
        << site << Api("GET", "/api/v1/rollouts/pump/2").second;
  }
  // Halted is final: an operator cannot resume it.
  EXPECT_EQ(Api("POST", "/api/v1/rollouts/pump/2/resume").first, 409);
}

TEST_F(RolloutTest, AnAbortRollsBackEverySiteAndIsAudited) {
  for (int i = 1; i <= kSites; ++i) StartEdge(i);
  RollOutCompletely(1);
  RollOutCompletely(2);
  auto [status, body] = Api("POST", "/api/v1/rollouts/pump/2/abort");
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(StateOf(2), "aborted");
  for (int i = 1; i <= kSites; ++i) {
    EXPECT_TRUE(WaitUntil([&] { return Serves(i) == "1"; })) << SiteName(i) << Serves(i);
  }
  for (int i = 1; i <= kSites; ++i) {
    EXPECT_TRUE(WaitUntil([&] { return Rollout(2)->sites[SiteName(i)] == "rolled_back"; }))
        << SiteName(i);
  }
  // Audited with the operator, and not taken twice.
  const std::string audit = ReadFile(JoinPath(hub_dir_, "audit.log")).value_or("");
  EXPECT_NE(audit.find(R"("event":"rollout_abort","tenant":"acme","operator":"ops")"),
            std::string::npos)
      << audit;
  EXPECT_EQ(Api("POST", "/api/v1/rollouts/pump/2/abort").first, 409);
  // The aborted release is not offered again: the sites keep serving 1 over a few rounds.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  for (int i = 1; i <= kSites; ++i) EXPECT_EQ(Serves(i), "1") << SiteName(i);
}

// A free TCP port on the loopback (bound, read, closed): the hub's site listener keeps it
// across a restart, so the sites' configs stay right.
uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A gate that waits for traffic: each site must answer min_requests with the new version
// (the counters its node reports) before its wave passes; and the hub restarted mid-wave
// carries on from the store.
class RolloutTrafficTest : public RolloutTest {
 protected:
  void SetUp() override {
    rollout_yaml_ = "{canary: [site-1], percent: [50], soak_s: 0, min_requests: 3}";
    site_port_ = FreePort();
    SetUpHub();
  }
};

TEST_F(RolloutTrafficTest, AWaveWaitsForTrafficAndARestartedHubCarriesOn) {
  for (int i = 1; i <= kSites; ++i) StartEdge(i);
  Approve(1);
  auto gate = [&](size_t wave) -> std::string {
    auto [status, body] = Api("GET", "/api/v1/rollouts/pump/1");
    if (status != 200) return "";
    json::Parser parser;
    auto root = parser.Parse(body);
    if (!root.ok()) return "";
    return std::string((*root)["waves"].At(wave)["gate"].GetString().value_or(""));
  };
  ASSERT_TRUE(WaitUntil([&] { return gate(0) == "waiting_for_traffic"; }))
      << Api("GET", "/api/v1/rollouts/pump/1").second;
  // The hub stops mid-wave and starts again: the rollout is where it was.
  StopHub();
  StartHub();
  ASSERT_TRUE(WaitUntil([&] { return gate(0) == "waiting_for_traffic"; })) << gate(0);
  EXPECT_EQ(StateOf(1), "rolling");
  // Traffic at each site that serves the release lets its wave pass, wave by wave.
  std::set<int> scored;
  ASSERT_TRUE(WaitUntil([&] {
    for (int i = 1; i <= kSites; ++i) {
      if (!scored.contains(i) && Serves(i) == "1" && Score(i, 3)) scored.insert(i);
    }
    return StateOf(1) == "complete";
  })) << StateOf(1)
      << ReadFile(dir_.File("hub.log")).value_or("");
  auto [status, body] = Api("GET", "/api/v1/rollouts/pump/1");
  EXPECT_NE(body.find(R"("requests":3,"error_rate":0)"), std::string::npos) << body;
}

}  // namespace
}  // namespace outpost
