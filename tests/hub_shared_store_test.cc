// Three `outpost hub serve` processes on one private PostgreSQL, as a fleet's hub runs behind a
// TCP load balancer (hub/STORE.md section 7, hub/FORMAT.md section 7): they share the store
// and one CA folder (`ca_dir:`), each with its own data folder. Six sites enrol, two through
// each hub; each uploads through its own hub and, when that hub answers nothing, through the
// next. The test kills the scheduler lease's holder with SIGKILL while its sites upload, and
// then kills the next holder with SIGKILL while its retraining job's `outpost train` runs.
// It proves that every acknowledged record is stored exactly once, that an enrolment token
// enrols once across hubs, that the lease moves to another hub within its bound after each
// kill, that the killed hub's trainer dies with it, and that the job it started registers
// exactly one version, finished by the hub that took over.
//
// Determinism: the second kill must find `outpost train` running. The test holds an
// EXCLUSIVE lock on the store's `models` table (a psql session it owns): reads go on, but the
// trainer's registration of its version waits, so the trainer has trained and written its
// model when its hub dies, and is killed just before it would register. (An ACCESS EXCLUSIVE
// lock would give the session a transaction id and hold back every hub's record cursor,
// hub/STORE.md section 3.) The lock goes with the psql process once the hub is dead.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/clock.h"
#include "base/coding.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "bundle/crypto.h"
#include "hub/store.h"
#include "hub/testing/postgres_cluster.h"
#include "sync/batch.h"
#include "sync/hub_client.h"
#include "tests/sync_test_support.h"
#include "train/synthetic.h"
#include "train/testing/edge_payloads.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

constexpr int kHubs = 3;
constexpr int kSitesPerHub = 2;
constexpr int kBatchesPerSite = 40;
constexpr uint64_t kRecordsPerBatch = 20;
constexpr int64_t kLeaseTtlMs = 3000;
// How far past the lease's bound (the next ask after the row expires) a takeover may land:
// room for a hub's thread to be scheduled late on a busy machine, not part of the bound.
constexpr int64_t kSchedulingSlackMs = 2000;

// Polls `done` every 50 ms; the guard (three minutes) only keeps a broken build from hanging.
bool WaitUntil(const std::function<bool()>& done) {
  for (int i = 0; i < 3600; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// One `outpost hub serve`, its site port and its data folder.
struct Hub {
  std::unique_ptr<Subprocess> process;
  uint16_t port = 0;
  std::string data_dir;
  bool alive = false;
};

// The scheduler lease's row: holder, generation, expires_ms.
struct LeaseRow {
  std::string holder;
  int64_t generation = 0;
  int64_t expires_ms = 0;
};

class HubSharedStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<hub::testing::PostgresCluster>> pg =
        hub::testing::PostgresCluster::Start();
    ASSERT_TRUE(pg.ok()) << pg.status().ToString();
    pg_ = std::move(*pg);
    OUTPOST_ASSERT_OK_AND_ASSIGN(url_, pg_->CreateDatabase("hubs"));
  }

  // One row of psql's unaligned, tuples-only output for `sql` ("" when none).
  std::string Psql(const std::string& sql) {
    RunResult r = RunProgram(
        {JoinPath(pg_->bindir(), "psql"), "-X", "-q", "-A", "-t", "-d", url_, "-c", sql});
    EXPECT_EQ(r.exit_code, 0) << sql << ": " << r.err;
    std::string out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }

  LeaseRow Lease() {
    std::string row = Psql(
        "SELECT holder || '|' || generation || '|' || expires_ms FROM leases "
        "WHERE name = 'scheduler'");
    LeaseRow lease;
    size_t a = row.find('|');
    size_t b = row.find('|', a == std::string::npos ? 0 : a + 1);
    if (a == std::string::npos || b == std::string::npos) return lease;
    lease.holder = row.substr(0, a);
    lease.generation = std::atoll(row.c_str() + a + 1);
    lease.expires_ms = std::atoll(row.c_str() + b + 1);
    return lease;
  }

  // The hub whose process holds the lease (its holder id is "<host>:<pid>:<random>"); -1 when
  // none of the live hubs does.
  int Holder() {
    const std::string holder = Lease().holder;
    for (int i = 0; i < kHubs; ++i) {
      if (hubs_[i].alive &&
          holder.find(":" + std::to_string(hubs_[i].process->pid()) + ":") != std::string::npos) {
        return i;
      }
    }
    return -1;
  }

  void StartHub(int i) {
    Hub& h = hubs_[i];
    h.data_dir = dir_.File("hub-" + std::to_string(i));
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        h.process, Subprocess::Start({Outpost(), "hub", "serve", "--config", dir_.File("hub.yaml"),
                                      "--data-dir", h.data_dir, "--listen", "127.0.0.1:0"},
                                     dir_.File("hub-" + std::to_string(i) + ".log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, h.process->ReadLine());
    const std::string prefix = "listening on https://127.0.0.1:";
    ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
    h.port = static_cast<uint16_t>(std::atoi(line.c_str() + prefix.size()));
    h.alive = true;
  }

  // Kills hub `i` with SIGKILL and returns the lease row as the dead hub left it.
  LeaseRow Kill(int i) {
    EXPECT_TRUE(hubs_[i].process->Signal(SIGKILL).ok());
    EXPECT_EQ(hubs_[i].process->Wait(), 128 + SIGKILL);
    hubs_[i].alive = false;
    return Lease();
  }

  // Waits for a live hub to take the lease from a dead holder whose row was `left`, and
  // checks the bound (hub/STORE.md section 7): the row expired at left.expires_ms (the
  // database's clock, which is this machine's), and the other hubs ask every ttl / 3, so a new
  // holder has it no later than one ask period after that. The test sees the takeover up to
  // one poll late, which only makes the check stricter.
  void ExpectTakeoverWithinBound(const LeaseRow& left) {
    LeaseRow taken;
    ASSERT_TRUE(WaitUntil([&] {
      taken = Lease();
      return taken.generation == left.generation + 1;
    })) << "no hub took the lease";
    const int64_t seen_ms = UnixMillis(SystemClock().Now());
    EXPECT_GE(Holder(), 0) << taken.holder;
    EXPECT_NE(taken.holder, left.holder);
    EXPECT_GE(taken.expires_ms - kLeaseTtlMs, left.expires_ms)
        << "taken before the dead holder's lease expired";
    EXPECT_LE(seen_ms - left.expires_ms, kLeaseTtlMs / 3 + kSchedulingSlackMs);
  }

  void WriteConfig();
  void EnrolSites();
  // Uploads kBatchesPerSite batches for site `s`, failing over to the next hub while its
  // own answers nothing; counts each acknowledgement in acked_[s].
  void EachHubRefusesABatchIntoOneAuditTrail();
  void UploadAll(int s);
  void IngestTrainingData(hub::Store& store);

  TempDir dir_;
  std::unique_ptr<hub::testing::PostgresCluster> pg_;
  std::string url_;
  Hub hubs_[kHubs];
  std::vector<std::string> sites_;
  std::atomic<int> acked_[kHubs * kSitesPerHub] = {};
};

void HubSharedStoreTest::WriteConfig() {
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("policy.yaml"), testing::kAnomalyPolicy));
  RunResult keys = RunProgram({Outpost(), "keys", "generate", "--dir", dir_.File("keys")});
  ASSERT_EQ(keys.exit_code, 0) << keys.err;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("pump.yaml"),
                                        "backend: xgboost\n"
                                        "inputs:\n"
                                        "  - {name: features, datatype: FP32, shape: [-1, 8]}\n"
                                        "outputs:\n"
                                        "  - {name: fault_probability, datatype: FP32, "
                                        "shape: [-1]}\n"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      dir_.File("train.yaml"),
      "features: [bearing_temp_c, vibration_mm_s, discharge_pressure_bar, motor_current_a,\n"
      "           speed_rpm, ambient_temp_c, flow_m3h, hours_since_service]\n"
      "labels: {ok: 0, fault: 1}\n"
      "original:\n"
      "  synthetic: {rows: 1000, seed: 1, fault_rate: 0.1}\n"
      "xgboost: {rounds: 10}\n"
      "holdout: {fraction: 0.4}\n"
      "decision: {metric: auc, margin: 0.0}\n"
      "tenant: acme\n"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      dir_.File("hub.yaml"),
      "store: " + url_ + "\nca_dir: " + dir_.File("ca") +
          "\npolicies:\n  - {tenant: \"*\", file: " + dir_.File("policy.yaml") +
          "}\nscheduler: {lease_ttl_s: " + std::to_string(kLeaseTtlMs / 1000) +
          "}\nretrain:\n  - model: pump\n    tenant: acme\n    train_config: " +
          dir_.File("train.yaml") +
          "\n    min_new_labels: 200\n    check_every_s: 1\n    release:\n      model_config: " +
          dir_.File("pump.yaml") + "\n      keys: " + dir_.File("keys") +
          "\n      sites: [site-0]\n"));
}

// Creates the sites (`outpost hub site add` on the shared CA folder) and enrols two through
// each hub; a token used at one hub is refused at another.
void HubSharedStoreTest::EnrolSites() {
  for (int s = 0; s < kHubs * kSitesPerHub; ++s) {
    const std::string site = "site-" + std::to_string(s);
    RunResult add = RunProgram({Outpost(), "hub", "site", "add", "--data-dir", dir_.File("admin"),
                                "--ca-dir", dir_.File("ca"), "--store", url_, "--site", site,
                                "--tenant", "acme", "--region", "us"});
    ASSERT_EQ(add.exit_code, 0) << add.err;
    const std::string token = add.out.substr(0, add.out.find('\n'));
    const Hub& home = hubs_[s / kSitesPerHub];
    OUTPOST_ASSERT_OK(testing::EnrolSite(home.port, token, site, dir_.File("creds-" + site)));
    if (s == 0) {
      const Hub& other = hubs_[1];
      Status again = testing::EnrolSite(other.port, token, site, dir_.File("again"));
      EXPECT_FALSE(again.ok());
      EXPECT_NE(again.ToString().find("token_unknown"), std::string::npos) << again.ToString();
      EXPECT_FALSE(PathExists(JoinPath(dir_.File("again"), "site.crt")));
    }
    sites_.push_back(site);
  }
}

// A batch the policy refuses (a field it does not name), sent to each hub by the first site:
// each hub audits its refusal in its own audit.log and in the store's hub_audit, where the
// three lines are in one place whichever hub wrote them.
void HubSharedStoreTest::EachHubRefusesABatchIntoOneAuditTrail() {
  const std::string creds = dir_.File("creds-" + sites_[0]);
  for (int h = 0; h < kHubs; ++h) {
    auto client =
        sync::HubClient::Create({.base_url = "https://127.0.0.1:" + std::to_string(hubs_[h].port),
                                 .cert_file = JoinPath(creds, "site.crt"),
                                 .key_file = JoinPath(creds, "site.key"),
                                 .ca_file = JoinPath(creds, "hub_ca.crt")});
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    sync::Batch batch{.site_id = sites_[0], .node_id = "refused", .stream = "pump"};
    batch.records.push_back({.seq = 1,
                             .kind = 1,
                             .created_ms = 1'700'000'000'000,
                             .payload = "{\"v\":1,\"score\":0.5,\"operator_name\":\"ann\"}"});
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, sync::EncodeBatch(batch));
    Result<http::ClientResponse> r =
        (*client)->Post("/sync/v1/batches", "application/octet-stream", bytes);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 422) << r->body;
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string own,
                                 ReadFile(JoinPath(hubs_[h].data_dir, "audit.log")));
    EXPECT_NE(own.find("\"node\":\"refused\""), std::string::npos) << own;
  }
  EXPECT_EQ(Psql("SELECT count(*) FROM hub_audit WHERE event = 'batch_refused' AND tenant = "
                 "'acme' AND line LIKE '%\"node\":\"refused\"%'"),
            std::to_string(kHubs));
}

void HubSharedStoreTest::UploadAll(int s) {
  const std::string& site = sites_[s];
  const std::string creds = dir_.File("creds-" + site);
  std::vector<std::unique_ptr<sync::HubClient>> clients;
  for (const Hub& h : hubs_) {
    auto client =
        sync::HubClient::Create({.base_url = "https://127.0.0.1:" + std::to_string(h.port),
                                 .cert_file = JoinPath(creds, "site.crt"),
                                 .key_file = JoinPath(creds, "site.key"),
                                 .ca_file = JoinPath(creds, "hub_ca.crt")});
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    clients.push_back(std::move(*client));
  }
  int hub = s / kSitesPerHub;
  for (int b = 0; b < kBatchesPerSite; ++b) {
    sync::Batch batch{.site_id = site, .node_id = "n1", .stream = "pump"};
    for (uint64_t i = 1; i <= kRecordsPerBatch; ++i) {
      batch.records.push_back({.seq = static_cast<uint64_t>(b) * kRecordsPerBatch + i,
                               .kind = 1,
                               .created_ms = 1'700'000'000'000 + b,
                               .payload = "{\"v\":1,\"score\":0.5}"});
    }
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, sync::EncodeBatch(batch));
    bool acked = false;
    for (int attempt = 0; attempt < 30 && !acked; ++attempt) {
      Result<http::ClientResponse> r =
          clients[hub]->Post("/sync/v1/batches", "application/octet-stream", bytes);
      if (r.ok() && r->status == 200) {
        EXPECT_TRUE(r->body.find("\"outcome\":\"stored\"") != std::string::npos ||
                    r->body.find("\"outcome\":\"duplicate\"") != std::string::npos)
            << r->body;
        acked = true;
      } else {
        hub = (hub + 1) % kHubs;  // the load balancer's next backend
      }
    }
    ASSERT_TRUE(acked) << site << " batch " << b << " was never acknowledged";
    acked_[s].fetch_add(1);
  }
}

// Hard examples and trusted labels for the retraining job, written straight into the store
// (the test's own connection), under nodes the uploads do not use.
void HubSharedStoreTest::IngestTrainingData(hub::Store& store) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset edge,
                               train::MakePumpReadings({.rows = 400,
                                                        .seed = 77,
                                                        .fault_rate = 0.1,
                                                        .shift_feature = "bearing_temp_c",
                                                        .shift_sigmas = 2.5}));
  std::vector<hub::HubRecord> rows, labels;
  for (int64_t r = 0; r < 400; ++r) {
    const std::string id = "site-0-r" + std::to_string(r);
    const uint64_t seq = static_cast<uint64_t>(r + 1);
    rows.push_back({.site_id = "site-0",
                    .node_id = "t1",
                    .stream = "pump",
                    .seq = seq,
                    .kind = "hard_example",
                    .created_ms = 1000 + r,
                    .payload = train::fixtures::HardExamplePayload(edge, r, id, 1000 + r)});
    const char* label = edge.labels[static_cast<size_t>(r)] == 1.0f ? "\"fault\"" : "0";
    labels.push_back({.site_id = "site-0",
                      .node_id = "t2",
                      .stream = "pump",
                      .seq = seq,
                      .kind = "feedback",
                      .created_ms = 9000 + r,
                      .payload = train::fixtures::FeedbackPayload(id, label)});
  }
  for (auto* batch : {&rows, &labels}) {
    hub::BatchKey key{.site_id = "site-0",
                      .node_id = batch->front().node_id,
                      .stream = "pump",
                      .first_seq = 1,
                      .last_seq = 400,
                      .content_sha256 = HexEncode(bundle::Sha256Of(batch->front().node_id))};
    auto result = store.Ingest(key, *batch, std::nullopt, 1);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->records_stored, 400u);
  }
}

// The pid of `parent`'s child whose command line holds " train " (an `outpost train`); 0 when
// there is none.
pid_t TrainerOf(pid_t parent) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFile(JoinPath(entry.path().string(), "stat")).value_or("");
    size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 4 >= stat.size()) continue;
    const pid_t ppid = static_cast<pid_t>(std::atoi(stat.c_str() + close + 4));
    std::string cmdline = ReadFile(JoinPath(entry.path().string(), "cmdline")).value_or("");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (ppid == parent && cmdline.find(" train ") != std::string::npos) {
      return static_cast<pid_t>(std::atoi(name.c_str()));
    }
  }
  return 0;
}

// Whether `pid` has ended (gone, or a zombie nobody reaped yet).
bool Ended(pid_t pid) {
  Result<std::string> stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return true;
  size_t close = stat->rfind(')');
  return close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] == 'Z';
}

// The model.json files of finished training runs in a hub's data folder.
int FinishedTrainingRuns(const std::string& data_dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(JoinPath(data_dir, "training"), ec)) {
    if (PathExists(JoinPath(entry.path().string(), "model.json"))) ++n;
  }
  return n;
}

TEST_F(HubSharedStoreTest, KillsMidUploadAndMidRetrainLoseNothingAndRunTheJobOnce) {
  ASSERT_NO_FATAL_FAILURE(WriteConfig());
  // The first hub makes the CA folder's material, so it starts before the others; it takes
  // the lease before it listens.
  ASSERT_NO_FATAL_FAILURE(StartHub(0));
  for (int i = 1; i < kHubs; ++i) ASSERT_NO_FATAL_FAILURE(StartHub(i));
  ASSERT_EQ(Holder(), 0);
  for (const char* name : {"ca.key", "ca.crt", "server.key", "receipt.key", "export.key"}) {
    EXPECT_TRUE(PathExists(JoinPath(dir_.File("ca"), name))) << name;
    EXPECT_FALSE(PathExists(JoinPath(hubs_[1].data_dir, name))) << name;
  }
  ASSERT_NO_FATAL_FAILURE(EnrolSites());
  ASSERT_NO_FATAL_FAILURE(EachHubRefusesABatchIntoOneAuditTrail());

  // Every site uploads through its own hub; the lease's holder dies with SIGKILL once its
  // sites have a few batches acknowledged, while they keep sending.
  std::vector<std::thread> uploaders;
  for (int s = 0; s < kHubs * kSitesPerHub; ++s)
    uploaders.emplace_back([this, s] { UploadAll(s); });
  ASSERT_TRUE(WaitUntil([&] { return acked_[0] >= 5 && acked_[1] >= 5; }));
  const LeaseRow left_by_first = Kill(0);
  EXPECT_NE(left_by_first.holder.find(":" + std::to_string(hubs_[0].process->pid()) + ":"),
            std::string::npos);
  ExpectTakeoverWithinBound(left_by_first);
  for (std::thread& t : uploaders) t.join();

  // Every acknowledged record is stored exactly once.
  for (int s = 0; s < kHubs * kSitesPerHub; ++s) {
    ASSERT_EQ(acked_[s].load(), kBatchesPerSite) << sites_[s];
    OUTPOST_ASSERT_OK_AND_ASSIGN(testing::HubContents contents,
                                 testing::ReadHubStore(url_, "acme", sites_[s], {"n1"}));
    ASSERT_EQ(contents.records.size(), kBatchesPerSite * kRecordsPerBatch) << sites_[s];
    for (uint64_t seq = 1; seq <= kBatchesPerSite * kRecordsPerBatch; ++seq) {
      auto it = contents.records.find({"n1", "pump", seq});
      ASSERT_TRUE(it != contents.records.end()) << sites_[s] << " seq " << seq << " lost";
      EXPECT_EQ(it->second, 1) << sites_[s] << " seq " << seq;
    }
  }

  // Retraining: the trainer waits on the lock to register its version, so it is running
  // when its hub, the new holder, dies.
  const int second = Holder();
  ASSERT_GE(second, 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto store, hub::OpenStore(url_));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Subprocess> lock,
      Subprocess::Start({JoinPath(pg_->bindir(), "psql"), "-X", "-q", "-d", url_, "-c",
                         "BEGIN; LOCK TABLE models IN EXCLUSIVE MODE; SELECT pg_sleep(3600);"},
                        dir_.File("lock.log")));
  ASSERT_TRUE(WaitUntil([&] {
    return Psql(
               "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
               "WHERE c.relname = 'models' AND l.mode = 'ExclusiveLock' AND l.granted") == "1";
  }));
  ASSERT_NO_FATAL_FAILURE(IngestTrainingData(*store));
  pid_t trainer = 0;
  ASSERT_TRUE(WaitUntil([&] {
    trainer = TrainerOf(hubs_[second].process->pid());
    return trainer != 0 && Psql(
                               "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                               "'Lock' AND query LIKE 'INSERT INTO models%'") == "1";
  })) << "the holder's `outpost train` never came to register its version";
  const std::string claimed = Psql("SELECT value FROM schedule_state WHERE name = 'retrain/pump'");
  EXPECT_NE(claimed.find(R"("job":{"version":1,"labels":400,"trigger":"labels"})"),
            std::string::npos)
      << claimed;
  const LeaseRow left_by_second = Kill(second);
  ASSERT_TRUE(WaitUntil([&] { return Ended(trainer); })) << "the trainer outlived its hub";
  EXPECT_EQ(Psql("SELECT count(*) FROM models"), "0");
  // The server notices a vanished client only when it next talks to it, which pg_sleep does
  // not: the session is ended on the server, and psql exits.
  EXPECT_EQ(Psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE query LIKE 'BEGIN; LOCK TABLE models%'"),
            "t");
  EXPECT_NE(lock->Wait(), 0);

  // The last hub takes the lease over and finishes the job it finds in the store.
  ASSERT_NO_FATAL_FAILURE(ExpectTakeoverWithinBound(left_by_second));
  const int third = Holder();
  ASSERT_TRUE(WaitUntil([&] {
    return Psql("SELECT value FROM schedule_state WHERE name = 'retrain/pump'").find("\"job\"") ==
           std::string::npos;
  })) << "the job was never finished";
  const std::string state = Psql("SELECT value FROM schedule_state WHERE name = 'retrain/pump'");
  EXPECT_NE(state.find(R"("labels_at_last_run":400,"runs":1})"), std::string::npos) << state;
  EXPECT_EQ(Psql("SELECT count(*) || ' ' || min(version) FROM models WHERE name = 'pump'"), "1 1");
  // The killed attempt had trained. Its registration, sent before it died, waited on the lock
  // in its server session, which may still commit once the lock goes (a statement a dead
  // client sent is not taken back): the version is then that attempt's, the new holder's run
  // is refused at registration and takes it as the job's outcome. Either way one version,
  // whose model file is there.
  EXPECT_EQ(FinishedTrainingRuns(hubs_[second].data_dir), 1);
  const std::string artifact =
      Psql("SELECT artifact_path FROM models WHERE name = 'pump' AND version = 1");
  EXPECT_TRUE(artifact.starts_with(hubs_[second].data_dir + "/training/pump-") ||
              artifact.starts_with(hubs_[third].data_dir + "/training/pump-"))
      << artifact;
  EXPECT_TRUE(PathExists(artifact)) << artifact;
  // The registry keeps the file's bytes too, so a hub on another machine releases it.
  Result<std::string> file = ReadFile(artifact);
  OUTPOST_ASSERT_OK(file.status());
  EXPECT_EQ(Psql("SELECT encode(sha256(artifact), 'hex') FROM models WHERE name = 'pump' AND "
                 "version = 1"),
            HexEncode(bundle::Sha256Of(*file)));

  OUTPOST_ASSERT_OK(hubs_[third].process->Signal(SIGTERM));
  EXPECT_EQ(hubs_[third].process->Wait(), 0);
}

}  // namespace
}  // namespace outpost
