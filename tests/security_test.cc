// The secure site end to end (issue 15's acceptance): real `outpost` processes on real sockets.
// A test PKI (a CA for the edge's TLS certificate, a client CA with a good, an expired and a
// revoked client certificate and its CRL, and a foreign CA that issues a certificate with the
// good client's name) and credentials made with `outpost edge credential add`; then every
// REST route and gRPC method of a TLS edge is called with no credential, a malformed header,
// an unknown token, the three bad certificates and the wrong role, each refused with its code
// and stable reason, and with the right role (a token, and a certificate), served. Every case
// also checks that nothing changed: the outbox's record count, the pump model's inference
// count and readiness, the repository index and the credentials file.
//
// Beside the table: the Host and Content-Type checks, least privilege by default (loopback
// only without credentials, the loud opt-in, no admin for anonymous callers, model control
// off), file modes, the BYTES bomb (peak RSS bounded), feedback (unknown model, the rate
// limit, a flood under the feedback quota leaves every anomaly in place), records filtered
// for callers without a raw-read role, the hub (a receipt forged with a site key deletes
// nothing, no token in a URL, operator tokens only from a file, 256 slow clients do not stop
// a site's upload) and `outpost bundle install --kubernetes` refusing a rollback.
//
// Each TEST runs in a process of its own (gtest_discover_tests), which builds what it needs.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "base/coding.h"
#include "base/crypto/x509.h"
#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "outbox/outbox.h"
#include "serve/inference.grpc.pb.h"
#include "sync/receipt.h"
#include "tests/edge_test_support.h"
#include "tests/sync_test_support.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

int64_t NowS() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------------------
// The test PKI, made with the crypto adapter.

struct Pem {
  std::string cert;
  std::string key;
};

Result<Pem> MakeCa(const std::string& common_name) {
  OUTPOST_ASSIGN_OR_RETURN(crypto::KeyPairPem key,
                           crypto::GenerateKeyPairPem(crypto::KeyAlgorithm::kEcdsaP256));
  crypto::CertificateSpec spec;
  spec.common_name = common_name;
  spec.validity = {.not_before_s = NowS() - 3600, .not_after_s = NowS() + 86400};
  spec.is_ca = true;
  spec.key_usage = crypto::kKeyCertSign | crypto::kCrlSign;
  OUTPOST_ASSIGN_OR_RETURN(std::string cert, crypto::SelfSignCertificate(spec, key.private_pem));
  return Pem{cert, key.private_pem};
}

// A certificate from `ca`: a TLS client's (server = false) or the edge's (for 127.0.0.1 and
// localhost), valid from `not_before_s` to `not_after_s`.
Result<Pem> IssueFrom(const Pem& ca, const std::string& common_name, bool server,
                      int64_t not_before_s, int64_t not_after_s) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<crypto::CertificateIssuer> issuer,
                           crypto::CertificateIssuer::Open(ca.cert, ca.key));
  OUTPOST_ASSIGN_OR_RETURN(crypto::KeyPairPem key,
                           crypto::GenerateKeyPairPem(crypto::KeyAlgorithm::kEcdsaP256));
  crypto::CertificateSpec spec;
  spec.common_name = common_name;
  spec.validity = {.not_before_s = not_before_s, .not_after_s = not_after_s};
  spec.key_usage = crypto::kDigitalSignature;
  spec.extended_key_usage = {server ? crypto::ExtendedKeyUsage::kServerAuth
                                    : crypto::ExtendedKeyUsage::kClientAuth};
  if (server) spec.subject_alt_names = {"127.0.0.1", "localhost"};
  OUTPOST_ASSIGN_OR_RETURN(std::string cert, issuer->Issue(spec, key.public_pem));
  return Pem{cert, key.private_pem};
}

struct TestPki {
  Pem server_ca;  // issued the edge's TLS certificate; the clients pin it
  Pem server;
  Pem client_ca;  // the edge trusts client certificates from it
  Pem good;       // CN good-client, from client_ca
  Pem foreign;    // CN good-client too, from a CA the edge does not trust
  Pem expired;    // CN expired-client, from client_ca, expired an hour ago
  Pem revoked;    // CN revoked-client, from client_ca, listed in crl
  std::string crl;
};

Result<TestPki> MakePki() {
  TestPki pki;
  const int64_t now = NowS();
  OUTPOST_ASSIGN_OR_RETURN(pki.server_ca, MakeCa("edge server ca"));
  OUTPOST_ASSIGN_OR_RETURN(pki.server,
                           IssueFrom(pki.server_ca, "edge-1", true, now - 3600, now + 86400));
  OUTPOST_ASSIGN_OR_RETURN(pki.client_ca, MakeCa("edge client ca"));
  OUTPOST_ASSIGN_OR_RETURN(pki.good,
                           IssueFrom(pki.client_ca, "good-client", false, now - 3600, now + 86400));
  OUTPOST_ASSIGN_OR_RETURN(Pem other_ca, MakeCa("another ca"));
  OUTPOST_ASSIGN_OR_RETURN(pki.foreign,
                           IssueFrom(other_ca, "good-client", false, now - 3600, now + 86400));
  OUTPOST_ASSIGN_OR_RETURN(
      pki.expired, IssueFrom(pki.client_ca, "expired-client", false, now - 7 * 86400, now - 3600));
  OUTPOST_ASSIGN_OR_RETURN(
      pki.revoked, IssueFrom(pki.client_ca, "revoked-client", false, now - 3600, now + 86400));
  OUTPOST_ASSIGN_OR_RETURN(crypto::CertificateInfo revoked_info,
                           crypto::ParseCertificatePem(pki.revoked.cert));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<crypto::CertificateIssuer> issuer,
                           crypto::CertificateIssuer::Open(pki.client_ca.cert, pki.client_ca.key));
  OUTPOST_ASSIGN_OR_RETURN(
      pki.crl, issuer->IssueCrl({revoked_info.serial},
                                {.not_before_s = now - 60, .not_after_s = now + 86400}));
  return pki;
}

// ---------------------------------------------------------------------------------------
// Processes and files.

// `outpost edge credential add --cert-cn`: nothing on stdout.
Status AddCertCredential(const std::string& data_dir, const std::string& name,
                         const std::string& common_name, const std::vector<std::string>& roles) {
  std::vector<std::string> argv = {Outpost(), "edge",   "credential", "add",       "--data-dir",
                                   data_dir,  "--name", name,         "--cert-cn", common_name};
  for (const std::string& role : roles) {
    argv.push_back("--role");
    argv.push_back(role);
  }
  RunResult r = RunProgram(argv);
  if (r.exit_code != 0) return InternalError("credential add " + name + ": " + r.err);
  if (!r.out.empty()) return InternalError("a certificate entry printed: " + r.out);
  return Status();
}

// A running `outpost edge` and the ports it printed.
struct EdgeProcess {
  std::unique_ptr<Subprocess> process;
  std::string scheme;  // "http" or "https"
  uint16_t port = 0;
  uint16_t grpc_port = 0;
};

Result<EdgeProcess> StartEdgeProcess(const std::string& config, const std::string& log,
                                     const std::vector<std::string>& extra = {}, bool grpc = true) {
  std::vector<std::string> argv = {Outpost(), "edge", "--config", config, "--log-format", "json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  EdgeProcess edge;
  OUTPOST_ASSIGN_OR_RETURN(edge.process, Subprocess::Start(argv, log));
  Result<std::string> line = edge.process->ReadLine();
  if (!line.ok() || line->rfind("listening on ", 0) != 0) {
    return InternalError("the edge did not start: " + ReadFile(log).value_or("(no log)"));
  }
  edge.scheme = line->substr(13, line->find("://") - 13);
  edge.port = static_cast<uint16_t>(std::atoi(line->c_str() + line->rfind(':') + 1));
  if (grpc) {
    OUTPOST_ASSIGN_OR_RETURN(std::string grpc_line, edge.process->ReadLine());
    if (grpc_line.rfind("grpc listening on ", 0) != 0) {
      return InternalError("no gRPC line: " + grpc_line);
    }
    edge.grpc_port = static_cast<uint16_t>(std::atoi(grpc_line.c_str() + grpc_line.rfind(':') + 1));
  }
  return edge;
}

// A pump model (small: only its being served matters here), with `insight` appended to its
// config.yaml, as <repo>/pump/3.
Status WritePumpModel(const std::string& repo, const std::string& insight = "") {
  OUTPOST_ASSIGN_OR_RETURN(train::Dataset data, train::MakePumpReadings({.rows = 300, .seed = 3}));
  train::TrainOptions options;
  options.rounds = 3;
  OUTPOST_ASSIGN_OR_RETURN(auto model, train::TrainXGBoost(data, options));
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, model->Serialize(train::ModelFormat::kUbjson));
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(repo + "/pump/3"));
  OUTPOST_RETURN_IF_ERROR(
      WriteFileAtomically(repo + "/pump/config.yaml",
                          "backend: xgboost\n"
                          "inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\n"
                          "outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]\n" +
                              insight));
  return WriteFileAtomically(repo + "/pump/3/model.ubj", bytes);
}

std::string InferBody(int rows = 1) {
  std::string data;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < 8; ++c) data += (data.empty() ? "" : ",") + std::to_string(r + c);
  }
  return R"({"id":"s1","inputs":[{"name":"features","datatype":"FP32","shape":[)" +
         std::to_string(rows) + R"(,8],"data":[)" + data + "]}]}";
}

constexpr char kFeedbackBody[] = R"({"request_id":"s1","model":"pump","label":1})";

// The "reason" of an error body {"error", "reason"}; a marker when the body has none.
std::string ReasonOf(const std::string& body) {
  json::Parser parser;
  Result<json::Value> root = parser.Parse(body);
  if (!root.ok()) return "<not JSON: " + body.substr(0, 200) + ">";
  if (!(*root)["error"].GetString().ok()) return "<no error: " + body.substr(0, 200) + ">";
  Result<std::string_view> reason = (*root)["reason"].GetString();
  return reason.ok() ? std::string(*reason) : "<no reason: " + body.substr(0, 200) + ">";
}

// A number after "key": in a JSON body (the first occurrence); -1 when absent.
int64_t NumberAfter(const std::string& body, const std::string& key) {
  size_t at = body.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  return std::atoll(body.c_str() + at + key.size() + 3);
}

// The records of one kind in GET /v1/outbox's "classes"; -1 when absent.
int64_t ClassRecords(const std::string& outbox_body, const std::string& kind) {
  // In the "classes" list (the account before it names the classes too).
  size_t classes = outbox_body.find("\"classes\":[");
  if (classes == std::string::npos) return -1;
  size_t at = outbox_body.find("\"kind\":\"" + kind + "\"", classes);
  if (at == std::string::npos) return -1;
  return NumberAfter(outbox_body.substr(at), "records");
}

// The peak resident set of a process, in KiB (VmHWM); -1 when unreadable.
int64_t PeakRssKiB(pid_t pid) {
  Result<std::string> status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  if (!status.ok()) return -1;
  size_t at = status->find("VmHWM:");
  if (at == std::string::npos) return -1;
  return std::atoll(status->c_str() + at + 6);
}

int ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// ---------------------------------------------------------------------------------------
// The secure edge: TLS on both listeners, a client CA and CRL, credentials for each role.

struct SecureEdge {
  TempDir dir;
  TestPki pki;
  std::map<std::string, std::string> tokens;  // credential name -> token
  std::string data_dir;
  std::string credentials_file;
  EdgeProcess edge;
};

Status BuildSecureEdge(SecureEdge& s) {
  OUTPOST_ASSIGN_OR_RETURN(s.pki, MakePki());
  const std::string pki_dir = s.dir.File("pki");
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(pki_dir, 0700));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(pki_dir + "/edge.crt", s.pki.server.cert));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(pki_dir + "/edge.key", s.pki.server.key, 0600));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(pki_dir + "/clients-ca.crt", s.pki.client_ca.cert));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(pki_dir + "/clients.crl", s.pki.crl));
  OUTPOST_RETURN_IF_ERROR(WritePumpModel(s.dir.File("models")));

  s.data_dir = s.dir.File("data");
  s.credentials_file = JoinPath(s.data_dir, "credentials.yaml");
  // One token per role, each holding that role alone; "operator" holds everything but
  // admin; "probe" holds every role and reads the state before and after each case;
  // "flood" labels for the rate-limit test.
  const std::vector<std::pair<std::string, std::vector<std::string>>> token_entries = {
      {"infer", {"infer"}},
      {"label", {"label"}},
      {"read", {"read"}},
      {"admin", {"admin"}},
      {"operator", {"infer", "label", "read"}},
      {"probe", {"infer", "label", "read", "admin"}},
      {"flood", {"label"}}};
  for (const auto& [name, roles] : token_entries) {
    OUTPOST_ASSIGN_OR_RETURN(s.tokens[name], testing::AddEdgeCredential(s.data_dir, name, roles));
  }
  // The good client by its CN; the expired and revoked ones are named too, so that their
  // refusal comes from the certificate and not from a missing entry.
  const std::vector<std::string> all = {"infer", "label", "read", "admin"};
  OUTPOST_RETURN_IF_ERROR(AddCertCredential(s.data_dir, "good-client", "good-client", all));
  OUTPOST_RETURN_IF_ERROR(AddCertCredential(s.data_dir, "expired-client", "expired-client", all));
  OUTPOST_RETURN_IF_ERROR(AddCertCredential(s.data_dir, "revoked-client", "revoked-client", all));

  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(
      s.dir.File("edge.yaml"),
      "site_id: test-site\nnode_id: n1\nlisten: 127.0.0.1:0\ngrpc_listen: 127.0.0.1:0\n"
      "threads: 2\nmodel_repository: " +
          s.dir.File("models") + "\ndata_dir: " + s.data_dir + "\ntls:\n  cert_file: " + pki_dir +
          "/edge.crt\n  key_file: " + pki_dir + "/edge.key\n  client_ca_file: " + pki_dir +
          "/clients-ca.crt\n  client_crl_file: " + pki_dir +
          "/clients.crl\n"
          "auth:\n  raw_read_roles: [admin]\n  model_control: true\n"
          "  feedback_per_second: 1\n  feedback_burst: 20\n"));
  OUTPOST_ASSIGN_OR_RETURN(s.edge,
                           StartEdgeProcess(s.dir.File("edge.yaml"), s.dir.File("edge.log")));
  if (s.edge.scheme != "https") return InternalError("the edge is not on TLS: " + s.edge.scheme);
  return Status();
}

// The secure edge of this process, built on first use (each TEST runs in a process of its
// own, so every case starts from the same state); at exit the edge is killed and its folder
// removed. Null when it could not be built (the failure is reported once).
SecureEdge* Secure() {
  static std::unique_ptr<SecureEdge> edge = [] {
    auto s = std::make_unique<SecureEdge>();
    Status built = BuildSecureEdge(*s);
    if (!built.ok()) {
      ADD_FAILURE() << "building the secure edge: " << built.ToString();
      s.reset();
    }
    return s;
  }();
  return edge.get();
}

// Who calls, as a REST or gRPC client presents it.
struct Presented {
  std::string authorization;  // the Authorization header; "" = none
  const Pem* cert = nullptr;  // a client certificate; null = none
};

Result<http::ClientResponse> Call(const SecureEdge& s, const Presented& who,
                                  std::string_view method, std::string_view target,
                                  std::string_view body = {},
                                  std::string_view content_type = "application/json",
                                  std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::ClientOptions options;
  options.base_url = "https://127.0.0.1:" + std::to_string(s.edge.port);
  options.ca_pem = s.pki.server_ca.cert;
  if (who.cert != nullptr) {
    options.cert_pem = who.cert->cert;
    options.key_pem = who.cert->key;
  }
  if (!who.authorization.empty()) options.headers.emplace_back("Authorization", who.authorization);
  options.io_timeout = std::chrono::seconds(20);
  http::ClientRequest request;
  request.method = method;
  request.target = target;
  if (!body.empty() || method == "POST") {
    request.body = body;
    request.content_type = content_type;
  }
  request.headers = std::move(headers);
  return http::Fetch(options, request);
}

Presented Bearer(const std::string& token) { return {.authorization = "Bearer " + token}; }

// What a refused call must leave as it was.
struct Snapshot {
  int64_t outbox_records = -1;  // every record but aggregates
  int64_t feedback_records = -1;
  int64_t pump_inferences = -1;
  int pump_ready = 0;
  std::string index;
  std::string credentials;
  bool operator==(const Snapshot&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Snapshot& s) {
  return os << "{outbox " << s.outbox_records << ", feedback " << s.feedback_records
            << ", pump inferences " << s.pump_inferences << ", pump ready " << s.pump_ready
            << ", index " << s.index << ", credentials " << s.credentials.size() << " bytes}";
}

Result<Snapshot> Take(const SecureEdge& s) {
  Presented probe = Bearer(s.tokens.at("probe"));
  Snapshot snap;
  OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse outbox, Call(s, probe, "GET", "/v1/outbox"));
  // Aggregates are written when a minute ends, whenever that falls: they are not counted.
  snap.outbox_records =
      NumberAfter(outbox.body, "records") - ClassRecords(outbox.body, "aggregate");
  snap.feedback_records = ClassRecords(outbox.body, "feedback");
  OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse stats,
                           Call(s, probe, "GET", "/v2/models/pump/stats"));
  snap.pump_inferences = NumberAfter(stats.body, "inference_count");
  OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse ready,
                           Call(s, probe, "GET", "/v2/models/pump/ready"));
  snap.pump_ready = ready.status;
  OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse index,
                           Call(s, probe, "POST", "/v2/repository/index", "{}"));
  snap.index = std::to_string(index.status) + " " + index.body;
  OUTPOST_ASSIGN_OR_RETURN(snap.credentials, ReadFile(s.credentials_file));
  // The stats of an unloaded model are an error; the count is then -1.
  if (outbox.status != 200 || index.status != 200) {
    return InternalError("the probe was refused: " + outbox.body + " " + stats.body + " " +
                         index.body);
  }
  return snap;
}

// ---------------------------------------------------------------------------------------
// The REST table: every route × every kind of caller.

// What a served call changes (everything else must stay as it was).
enum class Effect { kNone, kInference, kFeedback, kUnload, kReload };

struct Route {
  const char* name;
  const char* method;
  const char* target;
  const char* body;
  const char* wrong_role;  // a credential without the role the route needs
  Effect effect;
};

const Route kRoutes[] = {
    {"ServerMetadata", "GET", "/v2", "", "label", Effect::kNone},
    {"ModelMetadata", "GET", "/v2/models/pump", "", "read", Effect::kNone},
    {"ModelReady", "GET", "/v2/models/pump/ready", "", "label", Effect::kNone},
    {"VersionMetadata", "GET", "/v2/models/pump/versions/3", "", "admin", Effect::kNone},
    {"Infer", "POST", "/v2/models/pump/infer", "", "label", Effect::kInference},
    {"RepositoryIndex", "POST", "/v2/repository/index", "{}", "operator", Effect::kNone},
    {"RepositoryUnload", "POST", "/v2/repository/models/pump/unload", "{}", "operator",
     Effect::kUnload},
    {"RepositoryLoad", "POST", "/v2/repository/models/pump/load", "{}", "operator",
     Effect::kReload},
    {"Metrics", "GET", "/metrics", "", "infer", Effect::kNone},
    {"Records", "GET", "/v1/records", "", "label", Effect::kNone},
    {"Outbox", "GET", "/v1/outbox", "", "admin", Effect::kNone},
    {"Feedback", "POST", "/v1/feedback", "", "infer", Effect::kFeedback},
};

enum class Who {
  kNone,
  kMalformed,
  kShortToken,
  kUnknownToken,
  kForeignCert,
  kExpiredCert,
  kRevokedCert,
  kWrongRole,
  kRightToken,
  kRightCert,
};

// Every caller above: each REST route and each gRPC method but the probes is tried with all.
constexpr Who kEveryCaller[] = {
    Who::kNone,        Who::kMalformed,   Who::kShortToken, Who::kUnknownToken, Who::kForeignCert,
    Who::kExpiredCert, Who::kRevokedCert, Who::kWrongRole,  Who::kRightToken,   Who::kRightCert};

struct Expected {
  int status;
  const char* reason;  // "" for a served call
};

Expected ExpectedFor(Who who) {
  switch (who) {
    case Who::kNone:
      return {401, "credential_missing"};
    case Who::kMalformed:
    case Who::kShortToken:
      return {401, "credential_malformed"};
    case Who::kUnknownToken:
      return {401, "credential_invalid"};
    case Who::kForeignCert:
      return {401, "certificate_untrusted"};
    case Who::kExpiredCert:
      return {401, "certificate_expired"};
    case Who::kRevokedCert:
      return {401, "certificate_revoked"};
    case Who::kWrongRole:
      return {403, "role_required"};
    case Who::kRightToken:
    case Who::kRightCert:
      return {200, ""};
  }
  return {0, ""};
}

const char* WhoName(Who who) {
  switch (who) {
    case Who::kNone:
      return "NoCredential";
    case Who::kMalformed:
      return "MalformedHeader";
    case Who::kShortToken:
      return "ShortToken";
    case Who::kUnknownToken:
      return "UnknownToken";
    case Who::kForeignCert:
      return "ForeignCaCert";
    case Who::kExpiredCert:
      return "ExpiredCert";
    case Who::kRevokedCert:
      return "RevokedCert";
    case Who::kWrongRole:
      return "WrongRole";
    case Who::kRightToken:
      return "RightRoleToken";
    case Who::kRightCert:
      return "RightRoleCert";
  }
  return "?";
}

// The credential that holds exactly the role a route needs.
std::string RightRoleOf(const Route& route) {
  std::string_view target = route.target;
  if (target.starts_with("/v2/repository")) return "admin";
  if (target.starts_with("/v2")) return "infer";
  if (target == "/v1/feedback") return "label";
  return "read";  // /metrics, /v1/records, /v1/outbox
}

Presented PresentedFor(const SecureEdge& s, const Route& route, Who who) {
  switch (who) {
    case Who::kNone:
      return {};
    case Who::kMalformed:
      return {.authorization = "Basic b3V0cG9zdDpzZWNyZXQ="};
    case Who::kShortToken:
      return {.authorization = "Bearer abc"};
    case Who::kUnknownToken:
      return Bearer("opt_" + std::string(43, 'Q'));
    case Who::kForeignCert:
      return {.cert = &s.pki.foreign};
    case Who::kExpiredCert:
      return {.cert = &s.pki.expired};
    case Who::kRevokedCert:
      return {.cert = &s.pki.revoked};
    case Who::kWrongRole:
      return Bearer(s.tokens.at(route.wrong_role));
    case Who::kRightToken:
      return Bearer(s.tokens.at(RightRoleOf(route)));
    case Who::kRightCert:
      return {.cert = &s.pki.good};
  }
  return {};
}

struct RestCase {
  const Route* route;
  Who who;
};

std::vector<RestCase> AllRestCases() {
  std::vector<RestCase> cases;
  for (const Route& route : kRoutes) {
    for (Who who : kEveryCaller) {
      cases.push_back({&route, who});
    }
  }
  return cases;
}

class RestAccessTest : public ::testing::TestWithParam<RestCase> {};

TEST_P(RestAccessTest, RefusedWithItsReasonOrServedAndNothingElseChanges) {
  SecureEdge* s = Secure();
  ASSERT_NE(s, nullptr);
  const Route& route = *GetParam().route;
  const Who who = GetParam().who;
  const Expected want = ExpectedFor(who);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot before, Take(*s));
  ASSERT_EQ(before.pump_ready, 200);

  const std::string body = route.effect == Effect::kInference  ? InferBody()
                           : route.effect == Effect::kFeedback ? std::string(kFeedbackBody)
                                                               : std::string(route.body);
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse res, Call(*s, PresentedFor(*s, route, who),
                                                              route.method, route.target, body));
  ASSERT_EQ(res.status, want.status) << res.body;
  if (want.status != 200) {
    EXPECT_EQ(ReasonOf(res.body), want.reason) << res.body;
    if (want.status == 401) {
      EXPECT_EQ(res.Header("WWW-Authenticate").rfind("Bearer", 0), 0u)
          << "a 401 names the scheme: " << res.Header("WWW-Authenticate");
    }
  }

  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot after, Take(*s));
  Snapshot expected = before;
  if (want.status == 200) {
    switch (route.effect) {
      case Effect::kNone:
        break;
      case Effect::kInference:
        expected.pump_inferences += 1;
        break;
      case Effect::kFeedback:
        expected.outbox_records += 1;
        expected.feedback_records += 1;
        break;
      case Effect::kReload:
        // The same version, loaded again: served, and its statistics may start afresh.
        expected.pump_inferences = after.pump_inferences;
        break;
      case Effect::kUnload: {
        // Served: the model is down; loading it again (admin) restores the rest.
        EXPECT_NE(after.pump_ready, 200);
        Presented admin = Bearer(s->tokens.at("admin"));
        OUTPOST_ASSERT_OK_AND_ASSIGN(
            http::ClientResponse load,
            Call(*s, admin, "POST", "/v2/repository/models/pump/load", "{}"));
        ASSERT_EQ(load.status, 200) << load.body;
        OUTPOST_ASSERT_OK_AND_ASSIGN(after, Take(*s));
        // A reload starts the model's statistics afresh.
        expected.pump_inferences = after.pump_inferences;
        break;
      }
    }
  }
  EXPECT_EQ(after, expected);
}

std::string RestCaseName(const ::testing::TestParamInfo<RestCase>& info) {
  return std::string(info.param.route->name) + "_" + WhoName(info.param.who);
}

INSTANTIATE_TEST_SUITE_P(EveryRouteAndCaller, RestAccessTest, ::testing::ValuesIn(AllRestCases()),
                         RestCaseName);

// The probes stay open to anyone: a credential that would be refused elsewhere is not looked
// at.
struct OpenCase {
  const char* target;
  Who who;
};

class OpenRouteTest : public ::testing::TestWithParam<OpenCase> {};

TEST_P(OpenRouteTest, HealthProbesAreServedToAnyone) {
  SecureEdge* s = Secure();
  ASSERT_NE(s, nullptr);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot before, Take(*s));
  // Any route serves as the "route" of PresentedFor: only its credential matters here.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      http::ClientResponse res,
      Call(*s, PresentedFor(*s, kRoutes[0], GetParam().who), "GET", GetParam().target));
  EXPECT_EQ(res.status, 200) << res.body;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot after, Take(*s));
  EXPECT_EQ(after, before);
}

INSTANTIATE_TEST_SUITE_P(Probes, OpenRouteTest,
                         ::testing::Values(OpenCase{"/v2/health/live", Who::kNone},
                                           OpenCase{"/v2/health/live", Who::kUnknownToken},
                                           OpenCase{"/v2/health/live", Who::kForeignCert},
                                           OpenCase{"/v2/health/ready", Who::kNone},
                                           OpenCase{"/v2/health/ready", Who::kUnknownToken},
                                           OpenCase{"/v2/health/ready", Who::kRevokedCert}),
                         [](const ::testing::TestParamInfo<OpenCase>& p) {
                           return std::string(std::string_view(p.param.target).ends_with("live")
                                                  ? "Live"
                                                  : "Ready") +
                                  "_" + WhoName(p.param.who);
                         });

// ---------------------------------------------------------------------------------------
// The HTTP gate: Host (DNS rebinding) and Content-Type (drive-by POSTs), with a credential
// that holds the route's role, so that only the gate's own check can refuse.

struct GateCase {
  const char* name;
  const char* method;
  const char* target;
  const char* host;          // "" = the client's own (127.0.0.1:port)
  const char* content_type;  // for a POST
  int status;
  const char* reason;
};

const GateCase kGateCases[] = {
    {"ForeignHostGet", "GET", "/v2", "evil.example", "", 421, "host_not_allowed"},
    {"ForeignHostWithPortInfer", "POST", "/v2/models/pump/infer", "evil.example:8000",
     "application/json", 421, "host_not_allowed"},
    {"ForeignHostInfer", "POST", "/v2/models/pump/infer", "evil.example", "application/json", 421,
     "host_not_allowed"},
    {"ForeignHostFeedback", "POST", "/v1/feedback", "evil.example", "application/json", 421,
     "host_not_allowed"},
    {"ForeignHostUnload", "POST", "/v2/repository/models/pump/unload", "rebind.evil.example",
     "application/json", 421, "host_not_allowed"},
    {"ForeignHostRecords", "GET", "/v1/records", "evil.example", "", 421, "host_not_allowed"},
    {"TextPlainInfer", "POST", "/v2/models/pump/infer", "", "text/plain", 415,
     "unsupported_content_type"},
    {"FormInfer", "POST", "/v2/models/pump/infer", "", "application/x-www-form-urlencoded", 415,
     "unsupported_content_type"},
    {"MultipartInfer", "POST", "/v2/models/pump/infer", "", "multipart/form-data; boundary=x", 415,
     "unsupported_content_type"},
    {"TextPlainFeedback", "POST", "/v1/feedback", "", "text/plain", 415,
     "unsupported_content_type"},
    {"FormUnload", "POST", "/v2/repository/models/pump/unload", "",
     "application/x-www-form-urlencoded", 415, "unsupported_content_type"},
    {"LocalhostServed", "GET", "/v2", "localhost", "", 200, ""},
    {"JsonWithCharsetServed", "POST", "/v2/models/pump/infer", "",
     "application/json; charset=utf-8", 200, ""},
};

class GateTest : public ::testing::TestWithParam<GateCase> {};

TEST_P(GateTest, HostAndContentTypeAreCheckedBeforeAnyHandler) {
  SecureEdge* s = Secure();
  ASSERT_NE(s, nullptr);
  const GateCase& c = GetParam();
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot before, Take(*s));
  Route route{c.name, c.method, c.target, "", "", Effect::kNone};
  std::string body;
  if (std::string_view(c.target).ends_with("/infer")) body = InferBody();
  if (std::string_view(c.target) == "/v1/feedback") body = kFeedbackBody;
  if (std::string_view(c.target).ends_with("/unload")) body = "{}";
  std::vector<std::pair<std::string, std::string>> headers;
  if (c.host[0] != '\0') {
    std::string host = c.host;
    if (host == "localhost") host += ":" + std::to_string(s->edge.port);
    headers.emplace_back("Host", host);
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse res,
                               Call(*s, Bearer(s->tokens.at(RightRoleOf(route))), c.method,
                                    c.target, body, c.content_type, headers));
  ASSERT_EQ(res.status, c.status) << res.body;
  if (c.status != 200) {
    EXPECT_EQ(ReasonOf(res.body), c.reason) << res.body;
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot after, Take(*s));
  Snapshot expected = before;
  if (c.status == 200 && std::string_view(c.target).ends_with("/infer")) {
    expected.pump_inferences += 1;
  }
  EXPECT_EQ(after, expected);
}

INSTANTIATE_TEST_SUITE_P(HostAndContentType, GateTest, ::testing::ValuesIn(kGateCases),
                         [](const ::testing::TestParamInfo<GateCase>& p) {
                           return std::string(p.param.name);
                         });

// ---------------------------------------------------------------------------------------
// gRPC: the same credentials and reasons over TLS, the token in "authorization" metadata.

enum class GrpcMethod { kLive, kReady, kServerMetadata, kModelMetadata, kModelReady, kInfer };

struct GrpcCase {
  GrpcMethod method;
  Who who;
};

const char* GrpcMethodName(GrpcMethod m) {
  switch (m) {
    case GrpcMethod::kLive:
      return "ServerLive";
    case GrpcMethod::kReady:
      return "ServerReady";
    case GrpcMethod::kServerMetadata:
      return "ServerMetadata";
    case GrpcMethod::kModelMetadata:
      return "ModelMetadata";
    case GrpcMethod::kModelReady:
      return "ModelReady";
    case GrpcMethod::kInfer:
      return "ModelInfer";
  }
  return "?";
}

// One unary call, `rpc` of `stub` with `request`; its response is dropped.
template <typename Request, typename Response>
grpc::Status CallUnary(inference::GRPCInferenceService::Stub& stub,
                       grpc::Status (inference::GRPCInferenceService::Stub::*rpc)(
                           grpc::ClientContext*, const Request&, Response*),
                       grpc::ClientContext* context, const Request& request) {
  Response response;
  return (stub.*rpc)(context, request, &response);
}

// ModelInfer of one row of the pump model, as raw FP32 contents.
inference::ModelInferRequest PumpInferRequest() {
  inference::ModelInferRequest request;
  request.set_model_name("pump");
  request.set_id("g1");
  auto* input = request.add_inputs();
  input->set_name("features");
  input->set_datatype("FP32");
  input->add_shape(1);
  input->add_shape(8);
  const float row[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  request.add_raw_input_contents()->assign(reinterpret_cast<const char*>(row), sizeof(row));
  return request;
}

// Calls `method` once; the status and the "outpost-reason" trailer ("" when absent).
std::pair<grpc::Status, std::string> CallGrpc(const SecureEdge& s, GrpcMethod method,
                                              const Presented& who) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = s.pki.server_ca.cert;
  if (who.cert != nullptr) {
    ssl.pem_private_key = who.cert->key;
    ssl.pem_cert_chain = who.cert->cert;
  }
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(s.edge.grpc_port),
                                           grpc::SslCredentials(ssl), args);
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!who.authorization.empty()) context.AddMetadata("authorization", who.authorization);
  grpc::Status status;
  using Stub = inference::GRPCInferenceService::Stub;
  inference::ModelMetadataRequest model_metadata;
  model_metadata.set_name("pump");
  inference::ModelReadyRequest model_ready;
  model_ready.set_name("pump");
  switch (method) {
    case GrpcMethod::kLive:
      status = CallUnary(*stub, &Stub::ServerLive, &context, inference::ServerLiveRequest());
      break;
    case GrpcMethod::kReady:
      status = CallUnary(*stub, &Stub::ServerReady, &context, inference::ServerReadyRequest());
      break;
    case GrpcMethod::kServerMetadata:
      status =
          CallUnary(*stub, &Stub::ServerMetadata, &context, inference::ServerMetadataRequest());
      break;
    case GrpcMethod::kModelMetadata:
      status = CallUnary(*stub, &Stub::ModelMetadata, &context, model_metadata);
      break;
    case GrpcMethod::kModelReady:
      status = CallUnary(*stub, &Stub::ModelReady, &context, model_ready);
      break;
    case GrpcMethod::kInfer:
      status = CallUnary(*stub, &Stub::ModelInfer, &context, PumpInferRequest());
      break;
  }
  std::string reason;
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find("outpost-reason");
  if (it != trailers.end()) reason.assign(it->second.data(), it->second.size());
  return {status, reason};
}

std::vector<GrpcCase> AllGrpcCases() {
  std::vector<GrpcCase> cases;
  for (GrpcMethod m : {GrpcMethod::kLive, GrpcMethod::kReady}) {
    cases.push_back({m, Who::kNone});
    cases.push_back({m, Who::kUnknownToken});
  }
  for (GrpcMethod m : {GrpcMethod::kServerMetadata, GrpcMethod::kModelMetadata,
                       GrpcMethod::kModelReady, GrpcMethod::kInfer}) {
    for (Who who : kEveryCaller) {
      cases.push_back({m, who});
    }
  }
  return cases;
}

class GrpcAccessTest : public ::testing::TestWithParam<GrpcCase> {};

TEST_P(GrpcAccessTest, RefusedWithItsCodeAndReasonOrServedAndNothingElseChanges) {
  SecureEdge* s = Secure();
  ASSERT_NE(s, nullptr);
  const GrpcMethod method = GetParam().method;
  const Who who = GetParam().who;
  const bool open = method == GrpcMethod::kLive || method == GrpcMethod::kReady;
  // Every gRPC method but the two probes needs infer, as the /v2 routes do: the REST table's
  // first route (GET /v2) stands for them in PresentedFor (wrong role: "label").
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot before, Take(*s));
  auto [status, reason] = CallGrpc(*s, method, PresentedFor(*s, kRoutes[0], who));
  const Expected want = open ? Expected{200, ""} : ExpectedFor(who);
  if (want.status == 200) {
    EXPECT_TRUE(status.ok()) << status.error_message();
  } else {
    EXPECT_EQ(status.error_code(), want.status == 401 ? grpc::StatusCode::UNAUTHENTICATED
                                                      : grpc::StatusCode::PERMISSION_DENIED)
        << status.error_message();
    EXPECT_EQ(reason, want.reason) << status.error_message();
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot after, Take(*s));
  Snapshot expected = before;
  if (want.status == 200 && method == GrpcMethod::kInfer) expected.pump_inferences += 1;
  EXPECT_EQ(after, expected);
}

INSTANTIATE_TEST_SUITE_P(EveryMethodAndCaller, GrpcAccessTest, ::testing::ValuesIn(AllGrpcCases()),
                         [](const ::testing::TestParamInfo<GrpcCase>& p) {
                           return std::string(GrpcMethodName(p.param.method)) + "_" +
                                  WhoName(p.param.who);
                         });

// ---------------------------------------------------------------------------------------
// Records, feedback, the BYTES bomb and file modes on the secure edge.

TEST(SecureEdgeRecords, ReadersWithoutARawReadRoleGetOnlyWhatThePolicyLetsLeave) {
  SecureEdge* s = Secure();
  ASSERT_NE(s, nullptr);
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      http::ClientResponse stored,
      Call(*s, Bearer(s->tokens.at("label")), "POST", "/v1/feedback", kFeedbackBody));
  ASSERT_EQ(stored.status, 200) << stored.body;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot before, Take(*s));
  // "read" alone: this edge has no policy, so nothing may leave and nothing is listed.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      http::ClientResponse filtered,
      Call(*s, Bearer(s->tokens.at("read")), "GET", "/v1/records?kind=feedback"));
  ASSERT_EQ(filtered.status, 200) << filtered.body;
  EXPECT_EQ(filtered.body.find("\"request_id\""), std::string::npos) << filtered.body;
  EXPECT_EQ(filtered.body.find("\"seq\""), std::string::npos) << filtered.body;
  // read and admin (auth.raw_read_roles: [admin]): the record as it was stored.
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse raw, Call(*s, Bearer(s->tokens.at("probe")),
                                                              "GET", "/v1/records?kind=feedback"));
  ASSERT_EQ(raw.status, 200) << raw.body;
  EXPECT_NE(raw.body.find("\"request_id\":\"s1\""), std::string::npos) << raw.body;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot after, Take(*s));
  EXPECT_EQ(after, before);
  // The choice is in the log, with the credential that read.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string log, ReadFile(s->dir.File("edge.log")));
  EXPECT_NE(log.find("\"access\":\"filtered\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"access\":\"raw\""), std::string::npos) << log;
}

TEST(SecureEdgeFeedback, UnknownModelIsRefusedAndNothingIsStored) {
  SecureEdge* s = Secure();
  ASSERT_NE(s, nullptr);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot before, Take(*s));
  for (const char* model : {"valve", "pump-2", "a123"}) {
    SCOPED_TRACE(model);
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        http::ClientResponse res,
        Call(*s, Bearer(s->tokens.at("label")), "POST", "/v1/feedback",
             std::string(R"({"request_id":"s1","model":")") + model + R"(","label":1})"));
    EXPECT_EQ(res.status, 404) << res.body;
    EXPECT_EQ(ReasonOf(res.body), "model_unknown") << res.body;
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot after, Take(*s));
  EXPECT_EQ(after, before) << "no record and no stream for a model the edge never served";
}

TEST(SecureEdgeFeedback, EachCredentialIsRateLimited) {
  SecureEdge* s = Secure();
  ASSERT_NE(s, nullptr);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot before, Take(*s));
  // feedback_burst: 20 at 1 per second: 60 at once leave most refused.
  int stored = 0, limited = 0;
  for (int i = 0; i < 60; ++i) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        http::ClientResponse res,
        Call(*s, Bearer(s->tokens.at("flood")), "POST", "/v1/feedback", kFeedbackBody));
    if (res.status == 200) {
      ++stored;
    } else {
      ASSERT_EQ(res.status, 429) << res.body;
      EXPECT_EQ(ReasonOf(res.body), "rate_limited") << res.body;
      ++limited;
    }
  }
  EXPECT_GE(stored, 20);
  EXPECT_LE(stored, 30);
  EXPECT_GE(limited, 30);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot after, Take(*s));
  Snapshot expected = before;
  expected.outbox_records += stored;
  expected.feedback_records += stored;
  EXPECT_EQ(after, expected) << "a refused label stores nothing";
  // Another credential's bucket is its own.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      http::ClientResponse other,
      Call(*s, Bearer(s->tokens.at("label")), "POST", "/v1/feedback", kFeedbackBody));
  EXPECT_EQ(other.status, 200) << other.body;
}

TEST(SecureEdgeBounds, BytesBombIsRefusedWithoutTheAllocation) {
  SecureEdge* s = Secure();
  ASSERT_NE(s, nullptr);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot before, Take(*s));
  const int64_t start_kib = PeakRssKiB(s->edge.process->pid());
  ASSERT_GT(start_kib, 0);
  // Shapes that claim billions of strings in bodies of a few bytes, and one padded out.
  const std::vector<std::string> shapes = {"[1000000000]", "[100000,100000]", "[16777216]",
                                           "[4000000000,4]"};
  std::vector<std::string> bodies;
  for (const std::string& shape : shapes) {
    bodies.push_back(R"({"inputs":[{"name":"features","datatype":"BYTES","shape":)" + shape +
                     R"(,"data":["a","b"]}]})");
  }
  bodies.push_back(R"({"inputs":[{"name":"features","datatype":"BYTES","shape":[500000000],)"
                   R"("data":[)" +
                   std::string(4 << 20, ' ') + R"("x"]}]})");
  for (const std::string& body : bodies) {
    SCOPED_TRACE(body.substr(0, 120));
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        http::ClientResponse res,
        Call(*s, Bearer(s->tokens.at("infer")), "POST", "/v2/models/pump/infer", body));
    // Beyond the element limit: 413 resource_exhausted; within it, data that does not fill
    // the shape: 400. Either way before any per-element allocation.
    EXPECT_TRUE(res.status == 400 || res.status == 413) << res.body.substr(0, 300);
    EXPECT_EQ(ReasonOf(res.body).find('<'), std::string::npos) << res.body.substr(0, 300);
  }
  const int64_t end_kib = PeakRssKiB(s->edge.process->pid());
  EXPECT_LT(end_kib - start_kib, 200 * 1024)
      << "peak RSS grew from " << start_kib << " KiB to " << end_kib << " KiB";
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot after, Take(*s));
  EXPECT_EQ(after, before);
}

TEST(SecureEdgeFiles, DataDirOutboxLockAndCredentialsAreTheOwnersAlone) {
  SecureEdge* s = Secure();
  ASSERT_NE(s, nullptr);
  // A record, so that the outbox has written through its WAL.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      http::ClientResponse stored,
      Call(*s, Bearer(s->tokens.at("label")), "POST", "/v1/feedback", kFeedbackBody));
  ASSERT_EQ(stored.status, 200) << stored.body;
  EXPECT_EQ(ModeOf(s->data_dir), 0700);
  EXPECT_EQ(ModeOf(JoinPath(s->data_dir, "outbox.db")), 0600);
  EXPECT_EQ(ModeOf(JoinPath(s->data_dir, "LOCK")), 0600);
  EXPECT_EQ(ModeOf(s->credentials_file), 0600);
  const std::string wal = JoinPath(s->data_dir, "outbox.db-wal");
  if (PathExists(wal)) {
    EXPECT_EQ(ModeOf(wal), 0600);
  }
  // Only hashes are at rest: no token is in the file.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string file, ReadFile(s->credentials_file));
  for (const auto& [name, token] : s->tokens) {
    EXPECT_EQ(file.find(token), std::string::npos) << name << "'s token is in the file";
  }
}

// Both listeners speak TLS only: plain text gets no answer, and a client that pins another
// CA refuses the edge's certificate.
TEST(SecureEdgeTls, NeitherListenerServesPlainText) {
  SecureEdge* s = Secure();
  ASSERT_NE(s, nullptr);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot before, Take(*s));
  http::ClientOptions plain;
  plain.base_url = "http://127.0.0.1:" + std::to_string(s->edge.port);
  plain.headers.emplace_back("Authorization", "Bearer " + s->tokens.at("infer"));
  plain.io_timeout = std::chrono::seconds(5);
  const std::string body = InferBody();
  Result<http::ClientResponse> over_http = http::Fetch(plain, {.method = "POST",
                                                               .target = "/v2/models/pump/infer",
                                                               .content_type = "application/json",
                                                               .body = body});
  EXPECT_FALSE(over_http.ok() && over_http->status == 200) << "plain HTTP was served";

  http::ClientOptions wrong_ca;
  wrong_ca.base_url = "https://127.0.0.1:" + std::to_string(s->edge.port);
  wrong_ca.ca_pem = s->pki.client_ca.cert;  // a CA that did not issue the edge's certificate
  wrong_ca.headers = plain.headers;
  Result<http::ClientResponse> untrusted =
      http::Fetch(wrong_ca, {.method = "POST",
                             .target = "/v2/models/pump/infer",
                             .content_type = "application/json",
                             .body = body});
  EXPECT_FALSE(untrusted.ok()) << "a client pinning another CA reached the edge";

  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(s->edge.grpc_port),
                                     grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  context.AddMetadata("authorization", "Bearer " + s->tokens.at("infer"));
  inference::ServerLiveRequest request;
  inference::ServerLiveResponse response;
  EXPECT_FALSE(stub->ServerLive(&context, request, &response).ok())
      << "gRPC answered in plain text";
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot after, Take(*s));
  EXPECT_EQ(after, before);
}

// SIGHUP reloads the credentials file: a removed credential is refused from then on, with
// nothing else changed, and a new one is served.
TEST(SecureEdgeReload, ARemovedCredentialIsRefusedAfterSighup) {
  SecureEdge* s = Secure();
  ASSERT_NE(s, nullptr);
  Presented reader = Bearer(s->tokens.at("read"));
  ASSERT_EQ(Call(*s, reader, "GET", "/v1/outbox")->status, 200);
  RunResult removed = RunProgram(
      {Outpost(), "edge", "credential", "remove", "--data-dir", s->data_dir, "--name", "read"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string fresh,
                               testing::AddEdgeCredential(s->data_dir, "reader-2", {"read"}));
  EXPECT_EQ(ModeOf(s->credentials_file), 0600);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot before, Take(*s));
  OUTPOST_ASSERT_OK(s->edge.process->Signal(SIGHUP));
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse res, Call(*s, reader, "GET", "/v1/outbox"));
    status = res.status;
    if (status == 401) {
      EXPECT_EQ(ReasonOf(res.body), "credential_invalid") << res.body;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 401) << "the removed credential is still served after SIGHUP";
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse served,
                               Call(*s, Bearer(fresh), "GET", "/v1/outbox"));
  EXPECT_EQ(served.status, 200) << served.body;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Snapshot after, Take(*s));
  EXPECT_EQ(after, before);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string log, ReadFile(s->dir.File("edge.log")));
  EXPECT_NE(log.find("credentials reloaded"), std::string::npos) << log;
}

// ---------------------------------------------------------------------------------------
// Least privilege by default: plain edges without TLS.

class EdgeDefaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OUTPOST_ASSERT_OK(WritePumpModel(dir_.File("models")));
    data_dir_ = dir_.File("data");
  }

  // An edge config on `listen` (no auth: section unless given).
  std::string Config(const std::string& listen, const std::string& extra = "") {
    std::string path = dir_.File("edge-" + std::to_string(++configs_) + ".yaml");
    EXPECT_TRUE(
        WriteFileAtomically(path, "site_id: test-site\nnode_id: n1\nlisten: " + listen +
                                      "\nthreads: 2\nmodel_repository: " + dir_.File("models") +
                                      "\ndata_dir: " + data_dir_ + "\n" + extra)
            .ok());
    return path;
  }

  TempDir dir_;
  std::string data_dir_;
  int configs_ = 0;
};

TEST_F(EdgeDefaultsTest, BeyondLoopbackWithoutCredentialsRefusesToStart) {
  struct Refusal {
    const char* what;
    std::vector<std::string> args;
  };
  const std::vector<Refusal> refusals = {
      {"rest on 0.0.0.0", {"--listen", "0.0.0.0:0", "--grpc-listen", "127.0.0.1:0"}},
      {"grpc on 0.0.0.0", {"--listen", "127.0.0.1:0", "--grpc-listen", "0.0.0.0:0"}},
      {"config's listen on 0.0.0.0",
       {"--config", Config("0.0.0.0:0", "grpc_listen: 127.0.0.1:0\n")}},
  };
  for (const Refusal& r : refusals) {
    SCOPED_TRACE(r.what);
    std::vector<std::string> argv = {Outpost(),           "edge",       "--model-repository",
                                     dir_.File("models"), "--data-dir", data_dir_};
    argv.insert(argv.end(), r.args.begin(), r.args.end());
    RunResult run = RunProgram(argv);
    EXPECT_NE(run.exit_code, 0);
    EXPECT_NE(run.err.find("listen_requires_credentials"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("--insecure-listen-without-credentials"), std::string::npos)
        << "the message names the opt-in: " << run.err;
    EXPECT_FALSE(PathExists(data_dir_)) << "nothing was created before the refusal";
  }
}

TEST_F(EdgeDefaultsTest, TheInsecureOptInIsLoudAndAnonymousCallersNeverHoldAdmin) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      EdgeProcess edge,
      StartEdgeProcess(Config("0.0.0.0:0", "grpc_listen: \"\"\nauth:\n  model_control: true\n"),
                       dir_.File("edge.log"), {"--insecure-listen-without-credentials"}, false));
  EXPECT_EQ(edge.scheme, "http");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string log, ReadFile(dir_.File("edge.log")));
  EXPECT_NE(log.find("INSECURE"), std::string::npos) << log;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto client, http::Client::Connect("127.0.0.1", edge.port));
  auto count = [&] {
    auto stats = client->Request("GET", "/v2/models/pump/stats");
    return stats.ok() ? NumberAfter(stats->body, "inference_count") : -2;
  };
  const int64_t inferences = count();
  for (const char* target : {"/v2/repository/index", "/v2/repository/models/pump/unload",
                             "/v2/repository/models/pump/load"}) {
    SCOPED_TRACE(target);
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse res, client->Request("POST", target, "{}"));
    EXPECT_EQ(res.status, 403) << res.body;
    EXPECT_EQ(ReasonOf(res.body), "role_required") << res.body;
    EXPECT_EQ(client->Request("GET", "/v2/models/pump/ready")->status, 200);
  }
  // Anonymous callers still score, on loopback.
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse scored,
                               client->Request("POST", "/v2/models/pump/infer", InferBody()));
  EXPECT_EQ(scored.status, 200) << scored.body;
  EXPECT_EQ(count(), inferences + 1);
}

TEST_F(EdgeDefaultsTest, ModelControlIsOffUnlessTheConfigTurnsItOn) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string admin,
                               testing::AddEdgeCredential(data_dir_, "admin", {"admin", "infer"}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeProcess edge,
                               StartEdgeProcess(Config("127.0.0.1:0", "grpc_listen: \"\"\n"),
                                                dir_.File("edge.log"), {}, false));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto client, http::Client::Connect("127.0.0.1", edge.port, admin));
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse index_before,
                               client->Request("POST", "/v2/repository/index", "{}"));
  ASSERT_EQ(index_before.status, 200) << index_before.body;
  for (const char* target :
       {"/v2/repository/models/pump/unload", "/v2/repository/models/pump/load"}) {
    SCOPED_TRACE(target);
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse res, client->Request("POST", target, "{}"));
    EXPECT_EQ(res.status, 403) << res.body;
    EXPECT_EQ(ReasonOf(res.body), "model_control_disabled") << res.body;
    EXPECT_EQ(client->Request("GET", "/v2/models/pump/ready")->status, 200);
    EXPECT_EQ(client->Request("POST", "/v2/repository/index", "{}")->body, index_before.body);
  }
}

TEST_F(EdgeDefaultsTest, ALooseDataDirIsTightenedAtStartWithAWarning) {
  OUTPOST_ASSERT_OK(MakeDirectories(data_dir_, 0755));
  ASSERT_EQ(::chmod(data_dir_.c_str(), 0755), 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeProcess edge,
                               StartEdgeProcess(Config("127.0.0.1:0", "grpc_listen: \"\"\n"),
                                                dir_.File("edge.log"), {}, false));
  EXPECT_EQ(ModeOf(data_dir_), 0700);
  EXPECT_EQ(ModeOf(JoinPath(data_dir_, "outbox.db")), 0600);
  EXPECT_EQ(ModeOf(JoinPath(data_dir_, "LOCK")), 0600);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string log, ReadFile(dir_.File("edge.log")));
  EXPECT_NE(log.find("\"mode_was\":\"0755\""), std::string::npos)
      << "the warning names the old mode: " << log;
  EXPECT_NE(log.find("\"path\":\"" + data_dir_ + "\""), std::string::npos)
      << "the warning names the folder: " << log;
}

// A flood of labels under the feedback quota: every anomaly stays, and new ones still fit.
TEST_F(EdgeDefaultsTest, AFeedbackFloodLeavesEveryAnomalyInPlace) {
  // Every scored row is an anomaly (a score above -1).
  std::string features;
  for (std::string_view f : train::kPumpFeatureNames) {
    features += (features.empty() ? "" : ", ") + std::string(f);
  }
  OUTPOST_ASSERT_OK(RemoveTree(dir_.File("models")));
  OUTPOST_ASSERT_OK(WritePumpModel(dir_.File("models"),
                                   "insight:\n  features: [" + features + "]\n  rules:\n" +
                                       "    - {name: any, kind: anomaly, score: value, above: -1,"
                                       " fields: [" +
                                       std::string(train::kPumpFeatureNames[0]) + "]}\n"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      EdgeProcess edge,
      StartEdgeProcess(Config("127.0.0.1:0",
                              "grpc_listen: \"\"\n"
                              "auth:\n  feedback_per_second: 100000\n  feedback_burst: 100000\n"
                              "outbox:\n  max_bytes: 4194304\n  classes:\n"
                              "    feedback: {max_bytes: 16384}\n"),
                       dir_.File("edge.log"), {}, false));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto client, http::Client::Connect("127.0.0.1", edge.port));
  auto anomalies = [&] {
    auto outbox = client->Request("GET", "/v1/outbox");
    return outbox.ok() ? ClassRecords(outbox->body, "anomaly") : -2;
  };
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse scored,
                               client->Request("POST", "/v2/models/pump/infer", InferBody(20)));
  ASSERT_EQ(scored.status, 200) << scored.body;
  // The evaluator hands its records to the outbox's group commit: wait for them to land.
  // Every one of the 20 scored rows is an anomaly.
  int64_t before = anomalies();
  for (int i = 0; i < 100 && before < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    before = anomalies();
  }
  ASSERT_GT(before, 0) << "the rule should have raised anomalies";

  int stored = 0, refused = 0;
  for (int i = 0; i < 400; ++i) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse res,
                                 client->Request("POST", "/v1/feedback",
                                                 R"({"request_id":"flood-)" + std::to_string(i) +
                                                     R"(","model":"pump","label":1,"note":")" +
                                                     std::string(100, 'n') + R"("})"));
    if (res.status == 200) {
      ++stored;
    } else {
      EXPECT_TRUE(res.status == 503 || res.status == 429) << res.status << " " << res.body;
      EXPECT_EQ(ReasonOf(res.body).find('<'), std::string::npos) << res.body;
      ++refused;
    }
  }
  EXPECT_EQ(anomalies(), before) << "no anomaly was evicted by the flood";
  // The flood stayed inside its quota: newer labels pushed out older ones, nothing else.
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse outbox, client->Request("GET", "/v1/outbox"));
  const int64_t feedback_held = ClassRecords(outbox.body, "feedback");
  EXPECT_GT(feedback_held, 0) << outbox.body;
  EXPECT_LT(feedback_held, stored) << "the quota should have been reached: " << outbox.body;
  EXPECT_LT(feedback_held * 150, 16384 + 4096) << outbox.body;
  EXPECT_EQ(stored + refused, 400);
  // New anomalies still have room.
  OUTPOST_ASSERT_OK_AND_ASSIGN(scored,
                               client->Request("POST", "/v2/models/pump/infer", InferBody(20)));
  ASSERT_EQ(scored.status, 200) << scored.body;
  // As above, the new records land with the outbox's next group commit.
  int64_t after = anomalies();
  for (int i = 0; i < 100 && after <= before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = anomalies();
  }
  EXPECT_GT(after, before);
}

// ---------------------------------------------------------------------------------------
// The hub.

class HubSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_dir_ = dir_.File("hub");
    edge_dir_ = dir_.File("edge");
    OUTPOST_ASSERT_OK(MakeDirectories(edge_dir_, 0700));
    OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("models")));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("policy.yaml"), testing::kAnomalyPolicy));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string token,
                                 testing::AddHubSite(hub_dir_, "plant-7", "acme", "us"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        auto hub, testing::StartHub(hub_dir_, dir_.File("policy.yaml"), dir_.File("hub.log")));
    hub_ = std::move(hub.first);
    hub_port_ = hub.second;
    OUTPOST_ASSERT_OK(
        testing::EnrolSite(hub_port_, token, "plant-7", JoinPath(edge_dir_, "credentials")));
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        dir_.File("edge.yaml"),
        "site_id: plant-7\nnode_id: n1\nlisten: 127.0.0.1:0\ngrpc_listen: \"\"\ndata_dir: " +
            edge_dir_ + "\nmodel_repository: " + dir_.File("models") + "\nsync:\n  policy_file: " +
            dir_.File("policy.yaml") + "\n  backoff_initial_ms: 100\n  backoff_max_ms: 500\n"));
  }

  void StopHub() {
    if (hub_ == nullptr) return;
    EXPECT_TRUE(hub_->Signal(SIGTERM).ok());
    EXPECT_EQ(hub_->Wait(), 0);
    hub_.reset();
  }

  // Anomaly records waiting in the site's outbox.
  void FillOutbox(int records) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        auto outbox,
        outbox::Outbox::Open(
            {.path = JoinPath(edge_dir_, "outbox.db"), .site_id = "plant-7", .node_id = "n1"}));
    for (int i = 0; i < records; ++i) {
      OUTPOST_ASSERT_OK(
          outbox
              ->Append({.kind = outbox::Kind::kAnomaly,
                        .stream = "pump",
                        .payload = "{\"v\":1,\"score\":0." + std::to_string(i % 10) + "}"})
              .status());
    }
  }

  TempDir dir_;
  std::string hub_dir_;
  std::string edge_dir_;
  std::unique_ptr<Subprocess> hub_;
  uint16_t hub_port_ = 0;
};

TEST_F(HubSecurityTest, AReceiptForgedWithASiteKeyDeletesNothing) {
  StopHub();
  constexpr int kRecords = 12;
  FillOutbox(kRecords);
  const std::string export_file = dir_.File("records.opsx");
  RunResult exported =
      RunProgram({Outpost(), "export", "--config", dir_.File("edge.yaml"), "--to", export_file});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  RunResult imported = RunProgram({Outpost(), "hub", "import", export_file, "--data-dir", hub_dir_,
                                   "--policy", dir_.File("policy.yaml")});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string receipt_bytes, ReadFile(export_file + ".receipt"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(sync::Receipt receipt, sync::ReadReceipt(receipt_bytes));

  // The same keys, signed with the site's own key under the site's certificate (which chains
  // to the hub CA): whoever holds any site's key could otherwise delete this site's records.
  const std::string credentials = JoinPath(edge_dir_, "credentials");
  OUTPOST_ASSERT_OK_AND_ASSIGN(receipt.cert_pem, ReadFile(JoinPath(credentials, "site.crt")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string site_key, ReadFile(JoinPath(credentials, "site.key")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string forged, sync::WriteReceipt(receipt, site_key));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("forged.receipt"), forged));
  const std::string exports_json = JoinPath(edge_dir_, "exports.json");
  const std::string exports_before = ReadFile(exports_json).value_or("");
  RunResult refused = RunProgram({Outpost(), "import-receipt", dir_.File("forged.receipt"),
                                  "--config", dir_.File("edge.yaml")});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("receipt_cert"), std::string::npos) << refused.err;
  EXPECT_EQ(testing::OutboxRecordCount(edge_dir_), static_cast<size_t>(kRecords));
  EXPECT_EQ(ReadFile(exports_json).value_or(""), exports_before);

  // The hub's own receipt still works: the refusal was about the signer alone.
  RunResult accepted = RunProgram(
      {Outpost(), "import-receipt", export_file + ".receipt", "--config", dir_.File("edge.yaml")});
  ASSERT_EQ(accepted.exit_code, 0) << accepted.err;
  EXPECT_EQ(testing::OutboxRecordCount(edge_dir_), 0u);
}

TEST_F(HubSecurityTest, OperatorTokensComeFromAFileAndNeverFromAUrl) {
  StopHub();
  const std::string tokens_file = dir_.File("operators.yaml");
  RunResult added = RunProgram({Outpost(), "hub", "operator", "add", "--tokens-file", tokens_file,
                                "--name", "alice", "--tenant", "acme"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  const std::string token = added.out.substr(0, added.out.find('\n'));
  ASSERT_GE(token.size(), 22u) << added.out;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string file, ReadFile(tokens_file));
  EXPECT_EQ(file.find(token), std::string::npos) << "only the token's hash is stored";
  EXPECT_EQ(ModeOf(tokens_file), 0600);

  // A token on the command line is a usage error, and tokens in the clear in the config are
  // refused pointing at the file: the hub does not start either way.
  RunResult on_command_line =
      RunProgram({Outpost(), "hub", "serve", "--data-dir", hub_dir_, "--listen", "127.0.0.1:0",
                  "--operator-listen", "127.0.0.1:0", "--policy", dir_.File("policy.yaml"),
                  "--operator-token", token + "=acme"});
  EXPECT_EQ(on_command_line.exit_code, 2) << on_command_line.err;
  EXPECT_NE(on_command_line.err.find("--operator-token"), std::string::npos) << on_command_line.err;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("hub.yaml"),
                                        "data_dir: " + hub_dir_ +
                                            "\nlisten: 127.0.0.1:0\noperator_listen: 127.0.0.1:0\n"
                                            "operators:\n  - {token: " +
                                            token + ", tenant: acme}\n"));
  RunResult in_config = RunProgram({Outpost(), "hub", "serve", "--config", dir_.File("hub.yaml"),
                                    "--policy", dir_.File("policy.yaml")});
  EXPECT_NE(in_config.exit_code, 0);
  EXPECT_NE(in_config.err.find("operator_tokens_file"), std::string::npos) << in_config.err;

  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto hub, Subprocess::Start(
                    {Outpost(), "hub", "serve", "--data-dir", hub_dir_, "--listen", "127.0.0.1:0",
                     "--operator-listen", "127.0.0.1:0", "--operator-tokens-file", tokens_file,
                     "--policy", dir_.File("policy.yaml")},
                    dir_.File("hub2.log")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string site_line, hub->ReadLine());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string operator_line, hub->ReadLine());
  ASSERT_EQ(operator_line.rfind("operator listening on http://127.0.0.1:", 0), 0u) << operator_line;
  const uint16_t port =
      static_cast<uint16_t>(std::atoi(operator_line.c_str() + operator_line.rfind(':') + 1));
  const size_t records_before = testing::HubRecordCount(hub_dir_);
  auto get = [&](const std::string& target, const std::string& bearer) {
    http::ClientOptions options;
    options.base_url = "http://127.0.0.1:" + std::to_string(port);
    if (!bearer.empty()) options.headers.emplace_back("Authorization", "Bearer " + bearer);
    http::ClientRequest request;
    request.target = target;
    return http::Fetch(options, request);
  };
  struct OperatorCase {
    std::string target;
    std::string bearer;
    int status;  // 0 = served
    const char* reason;
  };
  const std::vector<OperatorCase> cases = {
      {"/api/v1/sites?token=" + token, "", 400, "token_in_url"},
      {"/api/v1/sites?access_token=" + token, "", 400, "token_in_url"},
      {"/api/v1/sites?token=" + token, token, 400, "token_in_url"},
      // No token at all: the dashboard's own refusal of a caller it does not know.
      {"/api/v1/sites", "", 401, "unauthenticated"},
      {"/api/v1/sites", "opt_" + std::string(43, 'Q'), 401, "operator_token"},
      {"/api/v1/sites", "short", 401, "operator_token"},
      // Served (404 not_found where this build has no dashboard, never a refusal).
      {"/api/v1/sites", token, 0, ""},
  };
  for (const OperatorCase& c : cases) {
    SCOPED_TRACE(c.target + " bearer " + c.bearer.substr(0, 8));
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse res, get(c.target, c.bearer));
    if (c.status == 0) {
      EXPECT_NE(res.status, 400) << res.body;
      EXPECT_NE(res.status, 401) << res.body;
    } else {
      EXPECT_EQ(res.status, c.status) << res.body;
      EXPECT_EQ(ReasonOf(res.body), c.reason) << res.body;
    }
    EXPECT_EQ(testing::HubRecordCount(hub_dir_), records_before);
    EXPECT_EQ(ReadFile(tokens_file).value_or(""), file);
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string log, ReadFile(dir_.File("hub2.log")));
  EXPECT_EQ(log.find(token), std::string::npos) << "no token reaches the log";
}

// Opens a TCP connection to 127.0.0.1:port from `source` (another loopback address), sends
// the first bytes of a TLS ClientHello and nothing more. -1 when it cannot connect.
int SlowClient(const char* source, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source, &local.sin_addr);
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof(peer)) != 0) {
    ::close(fd);
    return -1;
  }
  const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02};
  (void)!::send(fd, hello, sizeof(hello), MSG_NOSIGNAL);
  return fd;
}

TEST_F(HubSecurityTest, SlowClientsDoNotStopAnEnrolledSitesUpload) {
  constexpr int kRecords = 25;
  // 256 connections that never finish a handshake, from 8 loopback addresses (32 each, under
  // the per-address limit, so that only the deadlines and the event loop can keep the site's
  // upload going).
  std::vector<int> slow;
  for (int i = 0; i < 256; ++i) {
    std::string source = "127.0.0." + std::to_string(2 + i % 8);
    int fd = SlowClient(source.c_str(), hub_port_);
    ASSERT_GE(fd, 0) << "connection " << i << " from " << source;
    slow.push_back(fd);
  }
  FillOutbox(kRecords);
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      EdgeProcess edge, StartEdgeProcess(dir_.File("edge.yaml"), dir_.File("edge.log"), {}, false));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (testing::HubRecordCount(hub_dir_) < static_cast<size_t>(kRecords) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(testing::HubRecordCount(hub_dir_), static_cast<size_t>(kRecords))
      << "the site's upload did not complete with 256 slow clients at the hub";
  for (int fd : slow) ::close(fd);
  // The slow clients stored nothing: every record is the site's, once.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      testing::HubContents contents,
      testing::ReadHubStore("sqlite:" + JoinPath(hub_dir_, "hub.db"), "acme", "plant-7", {"n1"}));
  EXPECT_EQ(contents.records.size(), static_cast<size_t>(kRecords));
  for (const auto& [key, times] : contents.records) {
    EXPECT_EQ(times, 1);
  }
}

// ---------------------------------------------------------------------------------------
// Bundles: the Kubernetes path keeps the site state as the plain install does.

TEST(BundleKubernetesSecurity, ARollbackIsRefusedOnTheKubernetesPath) {
  TempDir dir;
  auto outpost_run = [](std::vector<std::string> args) {
    args.insert(args.begin(), Outpost());
    args.insert(args.begin(), "KUBECONFIG=/nonexistent/kubeconfig");
    args.insert(args.begin(), "/usr/bin/env");
    return RunProgram(args);
  };
  ASSERT_EQ(outpost_run({"keys", "generate", "--dir", dir.File("keys"), "--targets-keys", "1",
                         "--targets-threshold", "1"})
                .exit_code,
            0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data,
                               train::MakePumpReadings({.rows = 200, .seed = 5}));
  std::vector<std::string> bundles;
  for (int version : {1, 2}) {
    train::TrainOptions options;
    options.rounds = 2 + version;
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, train::TrainXGBoost(data, options));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, model->Serialize(train::ModelFormat::kJson));
    const std::string models = dir.File("v" + std::to_string(version));
    const std::string v = models + "/pump/" + std::to_string(version);
    OUTPOST_ASSERT_OK(MakeDirectories(v));
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        models + "/pump/config.yaml",
        "backend: xgboost\ninputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\n"
        "outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]\n"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(v + "/model.json", bytes));
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        v + "/descriptor.json",
        R"({"name":"pump","version":)" + std::to_string(version) +
            R"(,"engine":"xgboost","engine_version":"0.1.0",)"
            R"("inputs":[{"name":"features","datatype":"FP32","shape":[-1,8]}],)"
            R"("outputs":[{"name":"fault_probability","datatype":"FP32","shape":[-1]}],)"
            R"("metrics":{"auc":0.9},"lineage_sha256":")" +
            std::string(64, 'c') + R"("})"));
    const std::string out = dir.File("v" + std::to_string(version) + ".bundle");
    RunResult created =
        outpost_run({"bundle", "create", "--models", models, "--keys", dir.File("keys"),
                     "--version", std::to_string(version), "--site", "site-a", "-o", out});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    bundles.push_back(out);
  }
  const std::string base = JoinPath(testing::SourceDir(), "deploy/k8s");
  const std::string state = dir.File("state");
  auto install = [&](const std::string& bundle, const std::string& out) {
    return outpost_run({"bundle", "install", bundle, "--kubernetes", base, "-o", out, "--state-dir",
                        state, "--trusted-root", dir.File("keys/root.json"), "--site", "site-a",
                        "--image", "registry.local:5000/outpost:0.1.0", "--registry",
                        "registry.local:5000"});
  };
  RunResult newer = install(bundles[1], dir.File("overlay2"));
  ASSERT_EQ(newer.exit_code, 0) << newer.err;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string state_after_v2, ReadFile(JoinPath(state, "state.json")));

  RunResult older = install(bundles[0], dir.File("overlay1"));
  EXPECT_EQ(older.exit_code, 1);
  EXPECT_NE(older.err.find("VERSION_ROLLBACK"), std::string::npos) << older.err;
  EXPECT_FALSE(PathExists(dir.File("overlay1"))) << "nothing is rendered for a rollback";
  EXPECT_EQ(ReadFile(JoinPath(state, "state.json")).value_or(""), state_after_v2);
}

}  // namespace
}  // namespace outpost
