// Releases that reach connected sites over their link (hub/FORMAT.md section 10, sync/FORMAT.md
// section 7), with real processes and real TLS: the real `outpost hub serve` with its site
// listener, real `outpost keys` and `outpost bundle create` bundles of real XGBoost models,
// the real `outpost edge` with `sync.releases:`, and the release puller in this process
// against the same hub where a test needs each round's outcome.
//
//   - a connected site receives a release meant for it by itself and serves its version, then
//     a newer one bound to its group; each is installed once, its event reaches the hub, and
//     the release made for another site is never served to it;
//   - the hub serves a site only its own releases (404 as for an unknown one), in ranges
//     (206, 416, 412 with If-Match, 400 bad_range);
//   - a tampered release on the hub is refused with nothing installed, reported as an event,
//     and not fetched again;
//   - a download cut at random points (a proxy resets the connection after a drawn number of
//     bytes, several draws) resumes from its part file and installs exactly once;
//   - a site that is offline when the release is made installs it when its link comes back;
//   - an edge killed (SIGKILL) mid-download, under the link's bandwidth cap, continues its
//     part file after a restart and installs once;
//   - the hub's installs view (GET /api/v1/installs) shows the bundle and version a node runs;
//   - the same version offered again is a no-op (nothing fetched, nothing installed), also
//     when the site installed it from disk (`outpost bundle install`) before its link came back.
#include <gtest/gtest.h>
#include <signal.h>

#include <charconv>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "apps/edge_releases.h"
#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "hub/store.h"
#include "tests/sync_fault_proxy.h"
#include "tests/sync_test_support.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost {
namespace {

using testing::FaultProxy;
using testing::TempDir;

using testing::kEventPolicy;
using testing::RunOutpost;
using testing::WaitUntil;

std::string Outpost() { return testing::OutpostBinary(); }

class ReleasePullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OUTPOST_ASSERT_OK_AND_ASSIGN(data_, train::MakePumpReadings({.rows = 400, .seed = 5}));
    ASSERT_EQ(RunOutpost({"keys", "generate", "--dir", dir_.File("keys")}).exit_code, 0);
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("policy.yaml"), kEventPolicy));
    hub_dir_ = dir_.File("hub");
    OUTPOST_ASSERT_OK(MakeDirectories(hub_dir_, 0700));
    RunResult op = RunOutpost({"hub", "operator", "add", "--tokens-file",
                               dir_.File("operators.yaml"), "--name", "ops", "--tenant", "acme"});
    ASSERT_EQ(op.exit_code, 0) << op.err;
    operator_token_ = op.out.substr(0, op.out.find('\n'));
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        dir_.File("hub.yaml"), "data_dir: " + hub_dir_ +
                                   "\nlisten: 127.0.0.1:0\noperator_listen: 127.0.0.1:0\n"
                                   "operator_tokens_file: " +
                                   dir_.File("operators.yaml") +
                                   "\n"
                                   "policies:\n  - {tenant: \"*\", file: " +
                                   dir_.File("policy.yaml") +
                                   "}\n"
                                   "site_groups:\n  north: [plant-7]\n  south: [plant-9]\n"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string token7,
                                 testing::AddHubSite(hub_dir_, "plant-7", "acme", "r1"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string token9,
                                 testing::AddHubSite(hub_dir_, "plant-9", "acme", "r1"));
    StartHub();
    OUTPOST_ASSERT_OK(testing::EnrolSite(hub_port_, token7, "plant-7", dir_.File("cred7")));
    OUTPOST_ASSERT_OK(testing::EnrolSite(hub_port_, token9, "plant-9", dir_.File("cred9")));
    OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("models")));
  }

  void TearDown() override {
    if (edge_) {
      edge_->Signal(SIGTERM).IgnoreError();
      edge_->Wait();
    }
    if (hub_) {
      hub_->Signal(SIGTERM).IgnoreError();
      hub_->Wait();
    }
  }

  void StartHub() {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        hub_, Subprocess::Start({Outpost(), "hub", "serve", "--config", dir_.File("hub.yaml"),
                                 "--log-format", "json"},
                                dir_.File("hub.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, hub_->ReadLine());
    ASSERT_EQ(line.rfind("listening on https://127.0.0.1:", 0), 0u) << line;
    hub_port_ = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string op_line, hub_->ReadLine());
    ASSERT_EQ(op_line.rfind("operator listening on http://127.0.0.1:", 0), 0u) << op_line;
    operator_port_ = static_cast<uint16_t>(std::atoi(op_line.c_str() + op_line.rfind(':') + 1));
  }

  // GET /api/v1/installs?site=plant-7 on the hub's operator listener, parsed; its node n1.
  std::optional<json::Value> InstallsOfN1(json::Parser& parser, std::string& body) {
    auto client = http::Client::Connect("127.0.0.1", operator_port_, operator_token_);
    if (!client.ok()) return std::nullopt;
    auto r = (*client)->Request("GET", "/api/v1/installs?site=plant-7");
    if (!r.ok() || r->status != 200) return std::nullopt;
    body = r->body;
    Result<json::Value> root = parser.Parse(body);
    if (!root.ok()) return std::nullopt;
    for (json::Value site : (*root)["sites"].Items()) {
      for (json::Value node : site["nodes"].Items()) {
        if (node["node_id"].GetString().value_or("") == "n1") return node;
      }
    }
    return std::nullopt;
  }

  // A models folder <folder>/pump/<version> with a model of `rounds` rounds, its descriptor
  // and the expected outputs the health check compares.
  void MakeModel(const std::string& folder, int version, int rounds) {
    train::TrainOptions options;
    options.rounds = rounds;
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, train::TrainXGBoost(data_, options));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, model->Serialize(train::ModelFormat::kJson));
    const std::string v = dir_.File(folder + "/pump/" + std::to_string(version));
    OUTPOST_ASSERT_OK(MakeDirectories(v));
    OUTPOST_ASSERT_OK(
        WriteFileAtomically(dir_.File(folder + "/pump/config.yaml"),
                            "backend: xgboost\n"
                            "inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\n"
                            "outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]\n"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(v + "/model.json", bytes));
  }

  // `outpost bundle create` of `folder` as bundle `version`, bound by `binding` ("--site X" or
  // "--group G"), placed where the hub keeps its releases, as bundles/pump-<model_version>.
  std::string Release(const std::string& folder, uint64_t version, const std::string& flag,
                      const std::string& value, int model_version) {
    const std::string out = dir_.File(folder + "-" + std::to_string(version) + ".bundle");
    RunResult r =
        RunOutpost({"bundle", "create", "--models", dir_.File(folder), "--keys", dir_.File("keys"),
                    "--version", std::to_string(version), flag, value, "-o", out});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string placed =
        JoinPath(hub_dir_, "bundles/pump-" + std::to_string(model_version) + ".bundle");
    EXPECT_TRUE(MakeDirectories(JoinPath(hub_dir_, "bundles"), 0700).ok());
    EXPECT_TRUE(WriteFileAtomically(placed + ".tmp", ReadFile(out).value_or("")).ok());
    std::filesystem::rename(placed + ".tmp", placed);
    return placed;
  }

  std::string EdgeYaml(uint16_t hub_port, uint64_t bandwidth = 0) {
    return "listen: 127.0.0.1:0\ngrpc_listen: \"\"\nthreads: 2\nsite_id: plant-7\n"
           "node_id: n1\nlog_level: debug\nmodel_repository: " +
           dir_.File("models") +
           "\n"
           "data_dir: " +
           dir_.File("data") +
           "\n"
           "sync:\n"
           "  hub_url: https://127.0.0.1:" +
           std::to_string(hub_port) +
           "\n"
           "  credentials_dir: " +
           dir_.File("cred7") +
           "\n"
           "  policy_file: " +
           dir_.File("policy.yaml") +
           "\n"
           "  backoff_initial_ms: 20\n  backoff_max_ms: 200\n  request_timeout_ms: 3000\n"
           "  status_interval_s: 1\n"
           "  bandwidth_bytes_per_s: " +
           std::to_string(bandwidth) +
           "\n"
           "  releases:\n"
           "    state_dir: " +
           dir_.File("state") +
           "\n"
           "    trusted_root: " +
           dir_.File("keys/root.json") +
           "\n"
           "    groups: [north]\n"
           "    check_interval_s: 1\n";
  }

  void StartEdge(uint16_t hub_port, uint64_t bandwidth = 0) {
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("edge.yaml"), EdgeYaml(hub_port, bandwidth)));
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto started,
                                 testing::StartEdge(dir_.File("edge.yaml"), dir_.File("edge.log")));
    edge_ = std::move(started.first);
    edge_port_ = started.second;
  }

  // Whether the running edge serves pump version `version`.
  bool Serves(int version) {
    Result<std::unique_ptr<http::Client>> client = http::Client::Connect("127.0.0.1", edge_port_);
    if (!client.ok()) return false;
    Result<http::ClientResponse> r =
        (*client)->Request("GET", "/v2/models/pump/versions/" + std::to_string(version) + "/ready");
    return r.ok() && r->status == 200;
  }

  // The bundle events of plant-7 in the hub's store: (event, bundle_version, reason).
  std::vector<std::tuple<std::string, uint64_t, std::string>> HubEvents() {
    std::vector<std::tuple<std::string, uint64_t, std::string>> out;
    Result<std::unique_ptr<hub::Store>> store =
        hub::OpenStore("sqlite:" + JoinPath(hub_dir_, "hub.db"));
    if (!store.ok()) return out;
    Result<std::vector<hub::HubRecord>> records =
        (*store)->QueryRecords({.tenant = "acme",
                                .site_id = std::string("plant-7"),
                                .stream = std::string("bundle"),
                                .limit = 1000});
    if (!records.ok()) return out;
    json::Parser parser;
    for (const hub::HubRecord& r : *records) {
      Result<json::Value> v = parser.Parse(r.payload);
      if (!v.ok()) continue;
      out.emplace_back(std::string((*v)["event"].GetString().value_or("")),
                       (*v)["bundle_version"].GetUint64().value_or(0),
                       std::string((*v)["reason"].GetString().value_or("")));
    }
    return out;
  }

  size_t CountEvents(const std::string& event, uint64_t version) {
    size_t n = 0;
    for (const auto& [e, v, reason] : HubEvents()) n += (e == event && v == version) ? 1 : 0;
    return n;
  }

  // A client of the hub's site listener with `site`'s credentials (cred7 or cred9).
  std::unique_ptr<http::Client> SiteClient(const std::string& creds, uint16_t port = 0) {
    auto client = http::Client::Create(
        {.base_url = "https://127.0.0.1:" + std::to_string(port == 0 ? hub_port_ : port),
         .ca_pem = ReadFile(dir_.File(creds + "/hub_ca.crt")).value_or(""),
         .cert_pem = ReadFile(dir_.File(creds + "/site.crt")).value_or(""),
         .key_pem = ReadFile(dir_.File(creds + "/site.key")).value_or("")});
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(*client) : nullptr;
  }

  // The release puller of plant-7 in this process (no thread: the test runs its rounds).
  std::unique_ptr<apps::ReleasePuller> Puller(uint16_t port, uint64_t chunk_bytes) {
    auto puller = apps::ReleasePuller::Create(
        {.https = {.base_url = "https://127.0.0.1:" + std::to_string(port),
                   .cert_file = dir_.File("cred7/site.crt"),
                   .key_file = dir_.File("cred7/site.key"),
                   .ca_file = dir_.File("cred7/hub_ca.crt"),
                   .timeout = std::chrono::seconds(5)},
         .site = {.repository = dir_.File("models"),
                  .state_dir = dir_.File("state"),
                  .data_dir = dir_.File("data"),
                  .site_id = "plant-7",
                  .site_groups = {"north"},
                  .trusted_root = dir_.File("keys/root.json")},
         .releases_dir = dir_.File("data/releases"),
         .chunk_bytes = chunk_bytes});
    EXPECT_TRUE(puller.ok()) << puller.status().ToString();
    return puller.ok() ? std::move(*puller) : nullptr;
  }

  // The spooled events of the in-process puller's installs: (event, reason).
  std::vector<std::pair<std::string, std::string>> SpooledEvents() {
    std::vector<std::pair<std::string, std::string>> out;
    const std::string spool = dir_.File("data/spool");
    if (!IsDirectory(spool)) return out;
    json::Parser parser;
    for (const std::string& name : ListDirectory(spool).value_or(std::vector<std::string>{})) {
      if (!name.ends_with(".json")) continue;
      Result<std::string> text = ReadFile(JoinPath(spool, name));
      if (!text.ok()) continue;
      Result<json::Value> v = parser.Parse(*text);
      if (!v.ok()) continue;
      out.emplace_back(std::string((*v)["event"].GetString().value_or("")),
                       std::string((*v)["reason"].GetString().value_or("")));
    }
    return out;
  }

  TempDir dir_;
  train::Dataset data_;
  std::string hub_dir_;
  std::unique_ptr<Subprocess> hub_;
  uint16_t hub_port_ = 0;
  uint16_t operator_port_ = 0;
  std::string operator_token_;
  std::unique_ptr<Subprocess> edge_;
  uint16_t edge_port_ = 0;
};

TEST_F(ReleasePullTest, AConnectedSiteInstallsItsReleasesByItselfAndServesThem) {
  MakeModel("v1", 1, 3);
  MakeModel("v2", 2, 6);
  MakeModel("other", 3, 4);
  // Another site's release, newer than any of plant-7's: never served to plant-7.
  Release("other", 500, "--site", "plant-9", 3);
  Release("v1", 100, "--site", "plant-7", 1);
  StartEdge(hub_port_);
  ASSERT_TRUE(WaitUntil([&] { return Serves(1); })) << ReadFile(dir_.File("edge.log")).value_or("");
  ASSERT_TRUE(WaitUntil([&] { return CountEvents("bundle_installed", 100) == 1; }));
  // A newer release bound to the site's group.
  Release("v2", 200, "--group", "north", 2);
  ASSERT_TRUE(WaitUntil([&] { return Serves(2) && !Serves(1); }));
  ASSERT_TRUE(WaitUntil([&] { return CountEvents("bundle_installed", 200) == 1; }));
  EXPECT_FALSE(Serves(3));
  // Each installed once; the other site's release never reached this one.
  for (const auto& [event, version, reason] : HubEvents()) {
    EXPECT_NE(version, 500u) << event;
  }
  EXPECT_EQ(CountEvents("bundle_installed", 100), 1u);
  EXPECT_FALSE(PathExists(dir_.File("data/releases/refused.json")));
  // The hub knows what runs where: the node's report names the installed bundle and the
  // version it serves; the last install outcome comes from its events.
  json::Parser parser;
  std::string body;
  ASSERT_TRUE(WaitUntil([&] {
    std::optional<json::Value> n1 = InstallsOfN1(parser, body);
    return n1 && (*n1)["bundle_version"].GetUint64().value_or(0) == 200 &&
           (*n1)["serving"].size() == 1 &&
           (*n1)["serving"].At(0)["version"].GetInt64().value_or(0) == 2;
  })) << body;
  std::optional<json::Value> n1 = InstallsOfN1(parser, body);
  ASSERT_TRUE(n1.has_value()) << body;
  EXPECT_EQ((*n1)["source"].GetString().value_or(""), "status") << body;
  EXPECT_EQ((*n1)["last_install"]["event"].GetString().value_or(""), "bundle_installed") << body;
  EXPECT_EQ((*n1)["last_install"]["bundle_version"].GetUint64().value_or(0), 200u) << body;
  EXPECT_EQ((*n1)["shadow"].size(), 0u) << body;
}

TEST_F(ReleasePullTest, TheHubServesASiteOnlyItsOwnReleasesInRanges) {
  MakeModel("v1", 1, 3);
  const std::string seven = Release("v1", 100, "--site", "plant-7", 1);
  Release("v1", 101, "--group", "south", 2);  // plant-9's, by its group
  const std::string bytes = ReadFile(seven).value_or("");
  ASSERT_GT(bytes.size(), 1000u);

  std::unique_ptr<http::Client> nine = SiteClient("cred9");
  ASSERT_NE(nine, nullptr);
  auto list9 = nine->Request("GET", "/sync/v1/releases");
  ASSERT_TRUE(list9.ok());
  EXPECT_EQ(list9->status, 200);
  EXPECT_NE(list9->body.find("\"model_version\":2"), std::string::npos) << list9->body;
  EXPECT_EQ(list9->body.find("\"model_version\":1"), std::string::npos) << list9->body;
  // plant-7's release is answered to plant-9 as one that does not exist.
  auto other = nine->Request("GET", "/sync/v1/releases/pump/1");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->status, 404);
  EXPECT_NE(other->body.find("release_not_found"), std::string::npos);
  auto unknown = nine->Request("GET", "/sync/v1/releases/pump/77");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(unknown->body, other->body);

  std::unique_ptr<http::Client> seven_client = SiteClient("cred7");
  ASSERT_NE(seven_client, nullptr);
  auto list7 = seven_client->Request("GET", "/sync/v1/releases");
  ASSERT_TRUE(list7.ok());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<apps::OfferedRelease> offered,
                               apps::ParseReleaseList(list7->body));
  ASSERT_EQ(offered.size(), 1u) << list7->body;
  EXPECT_EQ(offered[0].version, 100u);
  EXPECT_EQ(offered[0].bytes, bytes.size());
  const std::string tag = "\"" + offered[0].sha256 + "\"";
  auto part = seven_client->Send({.target = "/sync/v1/releases/pump/1",
                                  .headers = {{"Range", "bytes=10-99"}, {"If-Match", tag}}});
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, bytes.substr(10, 90));
  EXPECT_EQ(part->Header("Content-Range"), "bytes 10-99/" + std::to_string(bytes.size()));
  EXPECT_EQ(part->Header("ETag"), tag);
  auto whole = seven_client->Request("GET", "/sync/v1/releases/pump/1");
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->status, 200);
  EXPECT_EQ(whole->body, bytes);
  auto past =
      seven_client->Send({.target = "/sync/v1/releases/pump/1",
                          .headers = {{"Range", "bytes=" + std::to_string(bytes.size()) + "-"}}});
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(past->status, 416);
  EXPECT_EQ(past->Header("Content-Range"), "bytes */" + std::to_string(bytes.size()));
  auto changed =
      seven_client->Send({.target = "/sync/v1/releases/pump/1",
                          .headers = {{"If-Match", "\"" + std::string(64, 'a') + "\""}}});
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->status, 412);
  EXPECT_NE(changed->body.find("release_changed"), std::string::npos);
  auto suffix = seven_client->Send(
      {.target = "/sync/v1/releases/pump/1", .headers = {{"Range", "bytes=-10"}}});
  ASSERT_TRUE(suffix.ok());
  EXPECT_EQ(suffix->status, 400);
  EXPECT_NE(suffix->body.find("bad_range"), std::string::npos);
  auto post = seven_client->Request("POST", "/sync/v1/releases", "{}");
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->status, 405);

  // Without a site certificate: refused before anything is read.
  auto anonymous =
      http::Client::Create({.base_url = "https://127.0.0.1:" + std::to_string(hub_port_),
                            .ca_pem = ReadFile(dir_.File("cred7/hub_ca.crt")).value_or("")});
  ASSERT_TRUE(anonymous.ok());
  auto refused = (*anonymous)->Request("GET", "/sync/v1/releases");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 401);
}

TEST_F(ReleasePullTest, ATamperedReleaseIsRefusedWithNothingInstalledAndNotFetchedAgain) {
  MakeModel("v1", 1, 3);
  const std::string placed = Release("v1", 100, "--site", "plant-7", 1);
  // One byte of the bundle changed on the hub (inside a model blob or the metadata).
  std::string bytes = ReadFile(placed).value_or("");
  ASSERT_GT(bytes.size(), 4096u);
  bytes[bytes.size() / 2] ^= 0x01;
  OUTPOST_ASSERT_OK(WriteFileAtomically(placed, bytes));

  std::unique_ptr<apps::ReleasePuller> puller = Puller(hub_port_, 64 * 1024);
  ASSERT_NE(puller, nullptr);
  EXPECT_EQ(puller->RunOnce(), apps::PullOutcome::kRefused);
  // Nothing installed: the repository holds no model, the site state no bundle.
  EXPECT_FALSE(PathExists(dir_.File("models/pump")));
  EXPECT_FALSE(PathExists(dir_.File("state/installed.json")) &&
               ReadFile(dir_.File("state/installed.json")).value_or("").find("100") !=
                   std::string::npos);
  auto events = SpooledEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].first, "bundle_refused");
  EXPECT_FALSE(events[0].second.empty());
  EXPECT_TRUE(PathExists(dir_.File("data/releases/refused.json")));
  // Not fetched again, and no part file is left.
  EXPECT_EQ(puller->RunOnce(), apps::PullOutcome::kNothing);
  EXPECT_EQ(SpooledEvents().size(), 1u);
  for (const std::string& name :
       ListDirectory(dir_.File("data/releases")).value_or(std::vector<std::string>{})) {
    EXPECT_EQ(name, "refused.json");
  }
  // The hub replaces it with a good file: a new digest, fetched and installed.
  Release("v1", 100, "--site", "plant-7", 1);
  EXPECT_EQ(puller->RunOnce(), apps::PullOutcome::kInstalled);
  EXPECT_TRUE(PathExists(dir_.File("models/pump/1/model.json")));
}

TEST_F(ReleasePullTest, ADownloadCutAtRandomPointsResumesAndInstallsExactlyOnce) {
  MakeModel("v1", 1, 300);
  const std::string placed = Release("v1", 100, "--site", "plant-7", 1);
  const uint64_t size = ReadFile(placed).value_or("").size();
  // Chunks of 16 KiB; a connection carries between 6 and 60 KiB of the hub's bytes (the TLS
  // handshake included) before the proxy resets it.
  constexpr uint64_t kChunk = 16 * 1024;
  ASSERT_GT(size, 4 * kChunk) << "the bundle must span several chunks";
  for (uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    FaultProxy proxy(hub_port_);
    proxy.SetCutRange(6 * 1024, 60 * 1024, seed);
    proxy.SetMode(FaultProxy::Mode::kCutDownstream);
    std::unique_ptr<apps::ReleasePuller> puller = Puller(proxy.port(), kChunk);
    ASSERT_NE(puller, nullptr);
    int failed = 0, installed = 0;
    bool part_kept = false;  // a cut round left bytes that a later round continued
    for (int round = 0; round < 400 && installed == 0; ++round) {
      apps::PullOutcome outcome = puller->RunOnce();
      if (outcome == apps::PullOutcome::kInstalled) ++installed;
      if (outcome == apps::PullOutcome::kFailed) {
        ++failed;
        // The part file keeps what came, and the next round continues it.
        for (const std::string& name :
             ListDirectory(dir_.File("data/releases")).value_or(std::vector<std::string>{})) {
          if (!name.ends_with(".part")) continue;
          uint64_t now = ReadFile(dir_.File("data/releases/" + name)).value_or("").size();
          EXPECT_EQ(now % kChunk, 0u) << "only whole answers are appended";
          if (now > 0) part_kept = true;
        }
      }
      ASSERT_NE(outcome, apps::PullOutcome::kRefused);
    }
    EXPECT_EQ(installed, 1);
    EXPECT_GT(failed, 0) << "the proxy cut no download";
    EXPECT_TRUE(part_kept) << "no cut round left a part file to continue";
    EXPECT_GT(proxy.Cuts(), 0u);
    // Installed exactly once: one install event; a further round does nothing.
    size_t installs = 0;
    for (const auto& [event, reason] : SpooledEvents()) installs += event == "bundle_installed";
    EXPECT_EQ(installs, 1u);
    proxy.SetMode(FaultProxy::Mode::kPass);
    EXPECT_EQ(puller->RunOnce(), apps::PullOutcome::kNothing);
    EXPECT_TRUE(PathExists(dir_.File("models/pump/1/model.json")));
    // The next seed starts from a site with nothing installed.
    puller.reset();
    std::filesystem::remove_all(dir_.File("models"));
    std::filesystem::remove_all(dir_.File("state"));
    std::filesystem::remove_all(dir_.File("data"));
    OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("models")));
  }
}

TEST_F(ReleasePullTest, ASiteOfflineWhenTheReleaseIsMadeInstallsItWhenItReconnects) {
  MakeModel("v1", 1, 3);
  FaultProxy proxy(hub_port_);
  proxy.SetMode(FaultProxy::Mode::kDrop);
  StartEdge(proxy.port());
  Release("v1", 100, "--site", "plant-7", 1);
  // While the link is down, connections are refused; the edge keeps serving nothing new.
  ASSERT_TRUE(WaitUntil([&] {
    auto accepted = proxy.Accepted();
    return accepted[FaultProxy::Mode::kDrop] >= 3;
  }));
  EXPECT_FALSE(Serves(1));
  EXPECT_FALSE(PathExists(dir_.File("state/installed.json")));
  proxy.SetMode(FaultProxy::Mode::kPass);
  ASSERT_TRUE(WaitUntil([&] { return Serves(1); })) << ReadFile(dir_.File("edge.log")).value_or("");
  ASSERT_TRUE(WaitUntil([&] { return CountEvents("bundle_installed", 100) == 1; }));
}

TEST_F(ReleasePullTest, AnEdgeKilledMidDownloadContinuesItsPartFileAfterARestart) {
  MakeModel("v1", 1, 300);
  const std::string placed = Release("v1", 100, "--site", "plant-7", 1);
  const uint64_t size = ReadFile(placed).value_or("").size();
  constexpr uint64_t kCap = 32 * 1024;  // bytes per second: chunks of 32 KiB, one a second
  ASSERT_GT(size, 4 * kCap);
  // The link's cap keeps the download going for seconds; the edge is killed (SIGKILL) once
  // two chunks are in its part file.
  StartEdge(hub_port_, kCap);
  uint64_t kept = 0;
  ASSERT_TRUE(WaitUntil([&] {
    for (const std::string& name :
         ListDirectory(dir_.File("data/releases")).value_or(std::vector<std::string>{})) {
      if (!name.ends_with(".part")) continue;
      kept = ReadFile(dir_.File("data/releases/" + name)).value_or("").size();
      if (kept >= 2 * kCap) return true;
    }
    return false;
  }));
  OUTPOST_ASSERT_OK(edge_->Signal(SIGKILL));
  edge_->Wait();
  edge_.reset();
  EXPECT_FALSE(PathExists(dir_.File("state/installed.json")));
  // The restarted edge continues the part file where it was (at least what was there when it
  // was killed), and installs once.
  StartEdge(hub_port_, kCap);
  ASSERT_TRUE(WaitUntil([&] { return Serves(1); })) << ReadFile(dir_.File("edge.log")).value_or("");
  ASSERT_TRUE(WaitUntil([&] { return CountEvents("bundle_installed", 100) == 1; }));
  const std::string log = ReadFile(dir_.File("edge.log")).value_or("");
  const size_t at = log.find("continuing a part file");
  ASSERT_NE(at, std::string::npos) << log;
  const size_t have_at = log.find("\"have\":", at);
  ASSERT_NE(have_at, std::string::npos) << log.substr(at, 300);
  // The log's fields are JSON strings: "have":"65536".
  const char* digits = log.c_str() + have_at + 7;
  if (*digits == '"') ++digits;
  EXPECT_GE(std::strtoull(digits, nullptr, 10), kept) << log.substr(at, 300);
  EXPECT_EQ(CountEvents("bundle_installed", 100), 1u);
}

TEST_F(ReleasePullTest, AReleaseInstalledFromDiskFirstIsNeitherFetchedNorInstalledAgain) {
  MakeModel("v1", 1, 3);
  const std::string placed = Release("v1", 100, "--site", "plant-7", 1);
  // The same file carried to the site: `outpost bundle install`, the offline path.
  RunResult disk = RunOutpost({"bundle", "install", placed, "--repository", dir_.File("models"),
                               "--state-dir", dir_.File("state"), "--data-dir", dir_.File("data"),
                               "--trusted-root", dir_.File("keys/root.json"), "--site", "plant-7"});
  ASSERT_EQ(disk.exit_code, 0) << disk.err;
  EXPECT_TRUE(PathExists(dir_.File("state/install.lock")));
  std::unique_ptr<apps::ReleasePuller> puller = Puller(hub_port_, 64 * 1024);
  ASSERT_NE(puller, nullptr);
  // The link comes back: the hub offers the version the site runs; nothing is fetched.
  EXPECT_EQ(puller->RunOnce(), apps::PullOutcome::kNothing);
  EXPECT_EQ(puller->RunOnce(), apps::PullOutcome::kNothing);
  EXPECT_TRUE(
      ListDirectory(dir_.File("data/releases")).value_or(std::vector<std::string>{"?"}).empty());
  size_t installs = 0;
  for (const auto& [event, reason] : SpooledEvents()) installs += event == "bundle_installed";
  EXPECT_EQ(installs, 1u);
}

// Hubs that share one store serve every release, whichever made it (hub/FORMAT.md section
// 10): the store keeps the bundle as the release step leaves it, and a second hub with its
// own, empty data folder copies it from the store when a site asks. The site connected to
// the second hub installs it; the other site is not offered it.
TEST_F(ReleasePullTest, AReleaseKeptInTheSharedStoreIsServedByEveryHub) {
  MakeModel("v1", 1, 3);
  const std::string made = Release("v1", 300, "--site", "plant-7", 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(made));
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::unique_ptr<hub::Store> store,
                                 hub::OpenStore("sqlite:" + JoinPath(hub_dir_, "hub.db")));
    OUTPOST_ASSERT_OK(store->PutReleaseBundle("pump-1.bundle", bytes, 1));
  }
  const std::string hub2_dir = dir_.File("hub2");
  OUTPOST_ASSERT_OK(MakeDirectories(hub2_dir, 0700));
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      dir_.File("hub2.yaml"),
      "data_dir: " + hub2_dir + "\nca_dir: " + hub_dir_ +
          "\nstore: sqlite:" + JoinPath(hub_dir_, "hub.db") +
          "\nlisten: 127.0.0.1:0\noperator_listen: 127.0.0.1:0\noperator_tokens_file: " +
          dir_.File("operators.yaml") +
          "\npolicies:\n  - {tenant: \"*\", file: " + dir_.File("policy.yaml") + "}\n"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Subprocess> hub2,
      Subprocess::Start({Outpost(), "hub", "serve", "--config", dir_.File("hub2.yaml")},
                        dir_.File("hub2.log")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, hub2->ReadLine());
  ASSERT_EQ(line.rfind("listening on https://127.0.0.1:", 0), 0u) << line;
  const uint16_t hub2_port = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
  EXPECT_FALSE(PathExists(JoinPath(hub2_dir, "bundles/pump-1.bundle")));

  // The other site asks first: nothing for it, though the bundle is now copied here.
  auto other = SiteClient("cred9", hub2_port);
  ASSERT_NE(other, nullptr);
  Result<http::ClientResponse> listed = other->Request("GET", "/sync/v1/releases");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(listed->status, 200) << listed->body;
  EXPECT_EQ(listed->body.find("pump"), std::string::npos) << listed->body;
  EXPECT_EQ(ReadFile(JoinPath(hub2_dir, "bundles/pump-1.bundle")).value_or(""), bytes);

  StartEdge(hub2_port);
  ASSERT_TRUE(WaitUntil([&] { return Serves(1); })) << ReadFile(dir_.File("edge.log")).value_or("")
                                                    << ReadFile(dir_.File("hub2.log")).value_or("");
  ASSERT_TRUE(WaitUntil([&] { return CountEvents("bundle_installed", 300) == 1; }));
  hub2->Signal(SIGTERM).IgnoreError();
  EXPECT_EQ(hub2->Wait(), 0);
}

}  // namespace
}  // namespace outpost
