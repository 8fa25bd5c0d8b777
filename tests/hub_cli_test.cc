// `outpost hub` end to end: `hub site add` prints a token, `hub serve` prints its listeners,
// `outpost enrol` writes the credential files, curl uploads a batch over mutual TLS with
// them (stored, then a duplicate), refusals carry their reasons (no certificate, reused
// token, revoked site), operators need a bearer token, and SIGTERM drains and exits 0.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/crypto/x509.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "sync/batch.h"
#include "tests/sync_test_support.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

constexpr const char* kPolicy = testing::kAnomalyPolicy;

// curl's status code and body ("%{http_code}" written after the body on its own line).
struct CurlResult {
  int status = 0;
  std::string body;
  int exit_code = -1;
};

CurlResult Curl(std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = RunProgram(argv);
  CurlResult out;
  out.exit_code = r.exit_code;
  size_t nl = r.out.rfind('\n');
  if (nl != std::string::npos) {
    out.body = r.out.substr(0, nl);
    out.status = std::atoi(r.out.c_str() + nl + 1);
  }
  return out;
}

// Curl(args) until `done` holds of its result (a state the hub reaches on its own thread),
// or the last result after 6000 tries.
template <typename Pred>
CurlResult CurlUntil(const std::vector<std::string>& args, Pred done) {
  CurlResult r;
  for (int i = 0; i < 6000; ++i) {
    r = Curl(args);
    if (done(r)) break;
    ::usleep(10'000);
  }
  return r;
}

TEST(HubCli, EnrolUploadRevokeAndDrain) {
  TempDir dir;
  const std::string data = dir.File("hub");
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("policy.yaml"), kPolicy));

  RunResult add = RunProgram({Outpost(), "hub", "site", "add", "--data-dir", data, "--site",
                              "plant-7", "--tenant", "acme", "--region", "us"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  ASSERT_FALSE(add.out.empty());
  const std::string token = add.out.substr(0, add.out.find('\n'));
  EXPECT_EQ(token.rfind("op1.", 0), 0u) << token;

  RunResult op = RunProgram({Outpost(), "hub", "operator", "add", "--tokens-file",
                             dir.File("operators.yaml"), "--name", "ops", "--tenant", "acme"});
  ASSERT_EQ(op.exit_code, 0) << op.err;
  const std::string op_token = op.out.substr(0, op.out.find('\n'));

  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto hub,
      Subprocess::Start({Outpost(), "hub", "serve", "--data-dir", data, "--listen", "127.0.0.1:0",
                         "--operator-listen", "127.0.0.1:0", "--policy", dir.File("policy.yaml"),
                         "--operator-tokens-file", dir.File("operators.yaml")},
                        dir.File("hub.log")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, hub->ReadLine());
  ASSERT_EQ(line.rfind("listening on https://127.0.0.1:", 0), 0u) << line;
  const std::string url = line.substr(std::string("listening on ").size());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string op_line, hub->ReadLine());
  ASSERT_EQ(op_line.rfind("operator listening on http://127.0.0.1:", 0), 0u) << op_line;
  const std::string op_url = op_line.substr(std::string("operator listening on ").size());

  const std::string creds = dir.File("creds");
  RunResult enrol = RunProgram({Outpost(), "enrol", "--hub", url, "--token", token, "--site",
                                "plant-7", "--credentials", creds});
  ASSERT_EQ(enrol.exit_code, 0) << enrol.err;
  for (const char* f : {"site.key", "site.crt", "hub_ca.crt", "hub.url"}) {
    EXPECT_TRUE(PathExists(JoinPath(creds, f))) << f;
  }
  RunResult reused = RunProgram({Outpost(), "enrol", "--hub", url, "--token", token, "--site",
                                 "plant-7", "--credentials", dir.File("creds2")});
  EXPECT_EQ(reused.exit_code, 1);
  EXPECT_NE(reused.err.find("token_unknown"), std::string::npos) << reused.err;

  sync::Batch batch{.site_id = "plant-7", .node_id = "n1", .stream = "pump"};
  for (uint64_t seq = 1; seq <= 20; ++seq) {
    batch.records.push_back({.seq = seq,
                             .kind = 1,
                             .created_ms = 1'700'000'000'000,
                             .payload = "{\"v\":1,\"score\":0.5}"});
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, sync::EncodeBatch(batch));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("batch.bin"), bytes));
  const std::vector<std::string> mtls = {"--cacert",
                                         JoinPath(creds, "hub_ca.crt"),
                                         "--cert",
                                         JoinPath(creds, "site.crt"),
                                         "--key",
                                         JoinPath(creds, "site.key"),
                                         "-H",
                                         "Content-Type: application/octet-stream",
                                         "--data-binary",
                                         "@" + dir.File("batch.bin"),
                                         url + "/sync/v1/batches"};
  CurlResult stored = Curl(mtls);
  EXPECT_EQ(stored.status, 200) << stored.body;
  EXPECT_NE(stored.body.find("\"outcome\":\"stored\""), std::string::npos) << stored.body;
  EXPECT_NE(stored.body.find("\"records\":20"), std::string::npos) << stored.body;
  CurlResult duplicate = Curl(mtls);
  EXPECT_EQ(duplicate.status, 200);
  EXPECT_NE(duplicate.body.find("\"outcome\":\"duplicate\""), std::string::npos) << duplicate.body;

  // Without a certificate, and without trusting the hub CA at all.
  CurlResult anonymous = Curl({"--cacert", JoinPath(creds, "hub_ca.crt"), "--data-binary",
                               "@" + dir.File("batch.bin"), url + "/sync/v1/batches"});
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_NE(anonymous.body.find("credential_missing"), std::string::npos) << anonymous.body;
  CurlResult untrusting =
      Curl({"--data-binary", "@" + dir.File("batch.bin"), url + "/sync/v1/batches"});
  EXPECT_NE(untrusting.exit_code, 0);  // curl refuses a server it cannot verify

  // Operators.
  CurlResult no_token = Curl({op_url + "/api/v1/sites"});
  EXPECT_EQ(no_token.status, 401) << no_token.body;
  CurlResult bad_token = Curl({"-H", "Authorization: Bearer nope", op_url + "/api/v1/sites"});
  EXPECT_EQ(bad_token.status, 401) << bad_token.body;
  CurlResult good_token =
      Curl({"-H", "Authorization: Bearer " + op_token, op_url + "/api/v1/sites"});
  EXPECT_NE(good_token.status, 401) << good_token.body;
  CurlResult in_url = Curl({op_url + "/api/v1/sites?token=" + op_token});
  EXPECT_EQ(in_url.status, 400) << in_url.body;
  EXPECT_NE(in_url.body.find("token_in_url"), std::string::npos) << in_url.body;

  // Revoked while serving: the next upload is refused.
  RunResult revoke =
      RunProgram({Outpost(), "hub", "site", "revoke", "--data-dir", data, "--site", "plant-7"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  CurlResult revoked = Curl(mtls);
  EXPECT_EQ(revoked.status, 403);
  EXPECT_NE(revoked.body.find("site_revoked"), std::string::npos) << revoked.body;

  OUTPOST_ASSERT_OK(hub->Signal(SIGTERM));
  EXPECT_EQ(hub->Wait(), 0);
}

// SIGTERM with limits.drain_delay_s (hub/FORMAT.md section 6, "Shutting down"): /readyz turns
// 503 draining while the hub still serves; a second SIGTERM ends the delay and the hub stops
// accepting, and a request whose body was still arriving completes with its answer: exit 0.
TEST(HubCli, SigtermTurnsReadyzOffAndFinishesTheRequestInProgress) {
  TempDir dir;
  RunResult op = RunProgram({Outpost(), "hub", "operator", "add", "--tokens-file",
                             dir.File("operators.yaml"), "--name", "ops", "--tenant", "acme"});
  ASSERT_EQ(op.exit_code, 0) << op.err;
  const std::string op_token = op.out.substr(0, op.out.find('\n'));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("hub.yaml"), "limits: {drain_delay_s: 300}\n"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto hub,
      Subprocess::Start({Outpost(), "hub", "serve", "--config", dir.File("hub.yaml"), "--data-dir",
                         dir.File("hub"), "--listen", "127.0.0.1:0", "--operator-listen",
                         "127.0.0.1:0", "--operator-tokens-file", dir.File("operators.yaml")},
                        dir.File("hub.log")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, hub->ReadLine());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string op_line, hub->ReadLine());
  const std::string prefix = "operator listening on http://127.0.0.1:";
  ASSERT_EQ(op_line.rfind(prefix, 0), 0u) << op_line;
  const std::string op_url = op_line.substr(std::string("operator listening on ").size());
  const int port = std::stoi(op_line.substr(prefix.size()));
  EXPECT_EQ(Curl({op_url + "/readyz"}).status, 200);

  // A request whose header and half its body are sent.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  auto send_all = [fd](const std::string& bytes) {
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  };
  send_all("GET /api/v1/sites HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer " + op_token +
           "\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab");

  OUTPOST_ASSERT_OK(hub->Signal(SIGTERM));
  // Not ready from the signal on (polled: the hub takes the signal when its thread runs).
  CurlResult ready =
      CurlUntil({op_url + "/readyz"}, [](const CurlResult& r) { return r.status != 200; });
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_NE(ready.body.find("\"reason\":\"draining\""), std::string::npos) << ready.body;
  // Still serving: another operator request is answered.
  EXPECT_EQ(Curl({"-H", "Authorization: Bearer " + op_token, op_url + "/api/v1/sites"}).status,
            200);

  // A second SIGTERM ends the delay: the listeners stop accepting (a new connection is
  // refused), and the request in progress still completes with its answer.
  OUTPOST_ASSERT_OK(hub->Signal(SIGTERM));
  CurlResult refused =
      CurlUntil({op_url + "/healthz"}, [](const CurlResult& r) { return r.exit_code != 0; });
  EXPECT_EQ(refused.exit_code, 7) << refused.body;  // curl: could not connect
  send_all("cd");
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, n);
  ::close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_EQ(hub->Wait(), 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string log, ReadFile(dir.File("hub.log")));
  EXPECT_NE(log.find("draining"), std::string::npos) << log;
}

// `hub site add --ca-dir D --server-name N` makes a CA folder for hubs elsewhere (a
// Kubernetes Secret, deploy/k8s-hub) whose server certificate names N; a name given once the
// certificate exists changes nothing in the folder.
TEST(HubCli, SiteAddMakesACaFolderWithTheServerNames) {
  TempDir dir;
  const std::string ca = dir.File("ca");
  RunResult add =
      RunProgram({Outpost(), "hub", "site", "add", "--data-dir", dir.File("hub"), "--ca-dir", ca,
                  "--server-name", "hub.example.org", "--server-name", "10.0.0.5", "--site",
                  "plant-7", "--tenant", "acme", "--region", "us"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string server_pem, ReadFile(JoinPath(ca, "server.crt")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(crypto::CertificateInfo server,
                               crypto::ParseCertificatePem(server_pem));
  for (const std::string name : {"hub.example.org", "10.0.0.5", "localhost", "127.0.0.1"}) {
    EXPECT_NE(std::find(server.subject_alt_names.begin(), server.subject_alt_names.end(), name),
              server.subject_alt_names.end())
        << name;
  }
  std::vector<std::string> files;
  for (const char* name : {"ca.key", "ca.crt", "server.key", "server.crt", "receipt.key",
                           "receipt.crt", "export.key", "export.pub"}) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(JoinPath(ca, name)));
    files.push_back(text);
  }
  RunResult again = RunProgram({Outpost(), "hub", "site", "add", "--data-dir", dir.File("hub"),
                                "--ca-dir", ca, "--server-name", "other.example.org", "--site",
                                "plant-8", "--tenant", "acme", "--region", "us"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  size_t i = 0;
  for (const char* name : {"ca.key", "ca.crt", "server.key", "server.crt", "receipt.key",
                           "receipt.crt", "export.key", "export.pub"}) {
    EXPECT_EQ(ReadFile(JoinPath(ca, name)).value_or(""), files[i++]) << name;
  }
}

TEST(HubCli, BadInvocationsFailWithOneLine) {
  TempDir dir;
  RunResult no_dir = RunProgram({Outpost(), "hub", "serve", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(no_dir.exit_code, 1);
  EXPECT_NE(no_dir.err.find("--data-dir"), std::string::npos) << no_dir.err;
  RunResult bad_site = RunProgram({Outpost(), "hub", "site", "add", "--data-dir", dir.path(),
                                   "--site", "bad site", "--tenant", "t", "--region", "r"});
  EXPECT_EQ(bad_site.exit_code, 1);
  RunResult public_plain =
      RunProgram({Outpost(), "hub", "serve", "--data-dir", dir.path(), "--listen", "127.0.0.1:0",
                  "--operator-listen", "nonsense:1"});
  EXPECT_EQ(public_plain.exit_code, 1);
  RunResult bad_token = RunProgram({Outpost(), "enrol", "--hub", "https://127.0.0.1:1", "--token",
                                    "nope", "--site", "s", "--credentials", dir.File("c")});
  EXPECT_EQ(bad_token.exit_code, 1);
  EXPECT_NE(bad_token.err.find("bad_token"), std::string::npos) << bad_token.err;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("hub.yaml"), "listen: 127.0.0.1:0\nlistne: x\n"));
  RunResult bad_config = RunProgram(
      {Outpost(), "hub", "serve", "--config", dir.File("hub.yaml"), "--data-dir", dir.path()});
  EXPECT_EQ(bad_config.exit_code, 1);
  EXPECT_NE(bad_config.err.find("unknown key \"listne\""), std::string::npos) << bad_config.err;
  // A config that `hub serve` refuses before anything is created: its error names `what`.
  auto refused = [&](const std::string& config, const std::string& what) {
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("bad.yaml"), config));
    RunResult bad = RunProgram({Outpost(), "hub", "serve", "--config", dir.File("bad.yaml"),
                                "--data-dir", dir.File("never")});
    EXPECT_EQ(bad.exit_code, 1) << config;
    EXPECT_NE(bad.err.find(what), std::string::npos) << bad.err;
    EXPECT_FALSE(PathExists(dir.File("never"))) << config;
  };
  // The scheduler lease's ttl is checked before anything is created.
  for (const char* scheduler : {"scheduler: {lease_ttl_s: 0}\n", "scheduler: {lease_tll_s: 5}\n",
                                "scheduler: {lease_ttl_s: 86401}\n"}) {
    refused(scheduler, "scheduler.lease_t");
  }
  // So is the time between retention passes (60 .. 86400 s), with a stable reason.
  for (const char* scheduler :
       {"scheduler: {retention_every_s: 59}\n", "scheduler: {retention_every_s: 86401}\n",
        "scheduler: {retention_every_s: -1}\n", "scheduler: {retention_every_s: 10m}\n",
        "scheduler: {lease_ttl_s: 0}\n"}) {
    refused(scheduler, "bad_scheduler");
    refused(scheduler, " .. 86400 seconds");
  }
  // So are the listeners' event-loop threads.
  for (const char* threads : {"limits: {threads: -1}\n", "limits: {threads: 257}\n"}) {
    refused(threads, "limits.threads must be 0 .. 256");
  }
  // So is the drain delay after SIGTERM.
  for (const char* drain : {"limits: {drain_delay_s: -1}\n", "limits: {drain_delay_s: 301}\n"}) {
    refused(drain, "limits.drain_delay_s must be 0 .. 300");
  }
  // So is the insights' k-threshold (hub/FORMAT.md section 7).
  for (const char* insights : {"insights: {min_sites: 0}\n", "insights: {min_site: 3}\n",
                               "insights: {min_sites: 1000001}\n", "insights: {min_sites: x}\n"}) {
    refused(insights, "insights.min_site");
  }
}

// A bad `retention:` map is refused before the hub creates anything; `retention:` with the
// SQLite store, which keeps every record, is refused at start-up (retention_unsupported)
// before the hub serves, and no export folder is made (hub/STORE.md section 8).
TEST(HubCli, RetentionIsRefusedWhenBadOrWithTheSqliteStore) {
  TempDir dir;
  const std::string data = dir.File("data");
  for (const char* bad :
       {"retention: {sample: 30}\n", "retention: {sample: 0d}\n", "retention: {sample: 1w}\n",
        "retention: [30d]\n", "retention: {}\n", "retention: {sample: 30d, default: never}\n",
        "retention: {sample: 30d, keys_after_expiry: 0d}\n"}) {
    OUTPOST_ASSERT_OK(
        WriteFileAtomically(dir.File("hub.yaml"), std::string("listen: 127.0.0.1:0\n") + bad));
    RunResult r = RunProgram(
        {Outpost(), "hub", "serve", "--config", dir.File("hub.yaml"), "--data-dir", data});
    EXPECT_EQ(r.exit_code, 1) << bad;
    EXPECT_NE(r.err.find("retention"), std::string::npos) << r.err;
    EXPECT_FALSE(PathExists(data)) << bad;
  }
  OUTPOST_ASSERT_OK(
      WriteFileAtomically(dir.File("hub.yaml"), "listen: 127.0.0.1:0\nretention: {sample: 30d}\n"));
  RunResult r =
      RunProgram({Outpost(), "hub", "serve", "--config", dir.File("hub.yaml"), "--data-dir", data});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("retention_unsupported"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("listening"), std::string::npos) << r.out;
  EXPECT_FALSE(PathExists(JoinPath(data, "retention")));
}

// A store URL with a password is refused wherever others could read it (a command line, the
// config), without echoing it and before anything is created; from a file it is taken.
TEST(HubCli, AStorePasswordNeverComesOnACommandLine) {
  TempDir dir;
  const std::string secret_url = "postgresql://hub:s3cret-pw@127.0.0.1:1/outpost";
  const std::string data = dir.File("hub");
  auto expect_refused = [&](const RunResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 1) << what << ": " << r.err;
    EXPECT_NE(r.err.find("store_url_password"), std::string::npos) << what << ": " << r.err;
    EXPECT_EQ(r.err.find("s3cret-pw"), std::string::npos) << what << ": " << r.err;
  };
  expect_refused(RunProgram({Outpost(), "hub", "serve", "--data-dir", data, "--store", secret_url,
                             "--listen", "127.0.0.1:0"}),
                 "hub serve --store");
  expect_refused(RunProgram({Outpost(), "hub", "site", "add", "--data-dir", data, "--store",
                             secret_url, "--site", "s", "--tenant", "t", "--region", "r"}),
                 "hub site add --store");
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("train.yaml"), "features: [a]\n"));
  expect_refused(RunProgram({Outpost(), "train", "--store", secret_url, "--model", "pump",
                             "--config", dir.File("train.yaml"), "--out", dir.File("out")}),
                 "train --store");
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("hub.yaml"), "store: " + secret_url + "\n"));
  expect_refused(RunProgram({Outpost(), "hub", "serve", "--config", dir.File("hub.yaml"),
                             "--data-dir", data, "--listen", "127.0.0.1:0"}),
                 "the config's store:");
  EXPECT_FALSE(PathExists(data)) << "nothing is created before the refusal";

  // From a file (or OUTPOST_STORE_URL) the URL is taken: this one names no server, so the
  // store fails to open, which proves it got that far.
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("store-url"), secret_url + "\n", 0600));
  RunResult from_file = RunProgram({Outpost(), "hub", "site", "revoke", "--data-dir", data,
                                    "--store-url-file", dir.File("store-url"), "--site", "s"});
  EXPECT_EQ(from_file.exit_code, 1);
  EXPECT_EQ(from_file.err.find("store_url_password"), std::string::npos) << from_file.err;
  EXPECT_NE(from_file.err.find("store"), std::string::npos) << from_file.err;
}

}  // namespace
}  // namespace outpost
