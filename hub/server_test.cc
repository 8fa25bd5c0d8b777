// The hub's site listener over real TLS sockets on port 0, with a real store: enrolment
// (tokens single-use, expiring, bound to their site, pinning the CA), authentication (no
// credential, another CA, revoked, superseded, another site's identity), and ingestion
// (stored, duplicate, conflict, policy rejection audited, audit chain cut/edited, limits).
// The store engines run from one parameterised suite: SQLite always, PostgreSQL on a
// private cluster when this build has the fixture.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "base/clock.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "hub/ca.h"
#include "hub/enrol.h"
#include "hub/ingest.h"
#include "hub/server.h"
#include "hub/store.h"
#include "policy/audit.h"
#include "policy/policy.h"
#include "sync/batch.h"
#if __has_include("hub/testing/postgres_cluster.h")
#include "hub/testing/postgres_cluster.h"
#define OUTPOST_HUB_TEST_POSTGRES 1
#endif

namespace outpost::hub {
namespace {

using ::outpost::testing::TempDir;
using HttpsResponse = http::ClientResponse;

constexpr char kPolicy[] = R"(format: 1
version: 1
regions:
  us: {raw: true}
  eu: {raw: false}
sites: {site-eu: eu}
default_region: us
kinds:
  anomaly:
    fields:
      v: keep
      score: keep
)";

// An operator's token: 26 characters of the bearer alphabet (over the 22 = 128 bits minimum).
constexpr char kOperatorToken[] = "op-secret-0123456789abcdef";

struct Credential {
  std::string cert_pem;
  std::string key_pem;
};

std::string Json(std::string_view body, std::string_view member) {
  json::Parser parser;
  Result<json::Value> root = parser.Parse(body);
  if (!root.ok()) return "<not json>";
  std::optional<json::Value> value = root->Find(member);
  if (!value) return "<absent>";
  if (Result<std::string_view> s = value->GetString(); s.ok()) return std::string(*s);
  return value->ToJson();
}

#ifdef OUTPOST_HUB_TEST_POSTGRES
// One private cluster for the whole binary, stopped when the binary exits.
testing::PostgresCluster* Cluster() {
  static std::unique_ptr<testing::PostgresCluster> cluster = [] {
    auto started = testing::PostgresCluster::Start();
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    return started.ok() ? std::move(started).value() : nullptr;
  }();
  return cluster.get();
}
#endif

class HubServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    OUTPOST_ASSERT_OK_AND_ASSIGN(ca_, HubCa::OpenOrCreate(dir_.path(), {}));
    std::string url = "sqlite:" + dir_.File("hub.db");
#ifdef OUTPOST_HUB_TEST_POSTGRES
    if (GetParam() == "postgresql") {
      ASSERT_NE(Cluster(), nullptr);
      static int databases = 0;
      database_ = "hub_server_" + std::to_string(++databases);
      OUTPOST_ASSERT_OK_AND_ASSIGN(url, Cluster()->CreateDatabase(database_));
    }
#endif
    if (GetParam() != "sqlite" && url.rfind("sqlite:", 0) == 0) GTEST_SKIP() << "no PostgreSQL";
    OUTPOST_ASSERT_OK_AND_ASSIGN(store_, OpenStore(url));
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto parsed, policy::ParsePolicy(kPolicy));
    policies_.Add("*", parsed);
    OUTPOST_ASSERT_OK_AND_ASSIGN(audit_log_,
                                 HubAuditLog::Open(dir_.File("audit.log"), store_.get()));
    enrolment_ = std::make_unique<Enrolment>(*store_, *ca_, clock_);
    HubServiceOptions options;
    options.limits.max_records = 100;
    options.operator_tokens.entries.push_back(OperatorEntry{
        .name = "ops", .tenant = "acme", .token_sha256 = crypto::Sha256(kOperatorToken)});
    options.operator_routes = [this](http::Router& router) {
      // A route that changes something, as the registry's approve does, for operators only.
      router.Exact("POST", "/api/v1/touch", [this](const HubRequest& r, HubResponse& rs) {
        if (r.caller.kind != Caller::Kind::kOperator) {
          rs = ErrorResponse(401, "unauthenticated", "an operator bearer token is required");
          return;
        }
        ++touched_;
        rs.body = "{\"tenant\":\"" + r.caller.tenant + "\"}";
      });
      router.Prefix("*", "/", [](const HubRequest& r, HubResponse& rs) {
        rs = r.caller.kind == Caller::Kind::kOperator
                 ? ErrorResponse(404, "not_found", "no such page")
                 : ErrorResponse(401, "operator_token", "an operator bearer token is required");
      });
    };
    service_ = std::make_unique<HubService>(*store_, *enrolment_, policies_, audit_log_.get(),
                                            options, clock_);
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        server_, HubServer::Start(
                     HubServerOptions{.site_address = "127.0.0.1",
                                      .operator_address = "127.0.0.1",
                                      .ca_cert_path = ca_->ca_path(),
                                      .server_cert_path = ca_->server_cert_path(),
                                      .server_key_path = ca_->server_key_path(),
                                      .max_body_bytes = 256 * 1024},
                     [this](const HubRequest& r, const PeerCredential& p) {
                       return service_->HandleSite(r, p);
                     },
                     [this](const HubRequest& r) { return service_->HandleOperator(r); }));
    url_ = "https://127.0.0.1:" + std::to_string(server_->site_port());
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  // Enrols `site` through `outpost enrol`'s code path and returns its credential.
  Credential Enrol(const std::string& site, const std::string& tenant = "acme") {
    Result<std::string> token = enrolment_->AddSite(site, tenant, "us", std::chrono::hours(1));
    EXPECT_TRUE(token.ok()) << token.status().ToString();
    std::string creds = dir_.File("creds-" + site);
    Status s =
        EnrolSite({.hub_url = url_, .token = *token, .site_id = site, .credentials_dir = creds});
    EXPECT_TRUE(s.ok()) << s.ToString();
    return Credential{.cert_pem = ReadFile(creds + "/site.crt").value_or(""),
                      .key_pem = ReadFile(creds + "/site.key").value_or("")};
  }

  HttpsResponse Post(const Credential& cred, std::string_view target, std::string_view body,
                     std::string_view content_type = "application/octet-stream") {
    Result<HttpsResponse> r = http::Fetch(
        {.base_url = url_,
         .ca_pem = ca_->ca_pem(),
         .cert_pem = cred.cert_pem,
         .key_pem = cred.key_pem},
        {.method = "POST", .target = target, .content_type = content_type, .body = body});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpsResponse{};
  }

  static sync::Batch MakeBatch(const std::string& site, uint64_t first, uint64_t count,
                               const std::string& extra = "") {
    sync::Batch batch{.site_id = site, .node_id = "n1", .stream = "pump"};
    for (uint64_t seq = first; seq < first + count; ++seq) {
      batch.records.push_back(
          {.seq = seq,
           .kind = 1,  // anomaly
           .created_ms = 1'700'000'000'000 + static_cast<int64_t>(seq),
           .payload = "{\"v\":1,\"score\":0." + std::to_string(seq % 10) + extra + "}"});
    }
    return batch;
  }

  std::string Encode(const sync::Batch& batch) {
    Result<std::string> bytes = sync::EncodeBatch(batch);
    EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
    return bytes.value_or("");
  }

  // An audit segment of `n` entries after `from` (whose line hashes to from.hash).
  static sync::BatchAudit AuditLines(const std::string& site, const policy::ChainHead& from,
                                     int n) {
    sync::BatchAudit audit{.from_seq = from.seq, .from_hash = from.hash};
    std::string prev = from.hash;
    for (int i = 1; i <= n; ++i) {
      policy::AuditEntry entry{.time_ms = 1000 + i,
                               .decision = policy::Outcome::kAllowed,
                               .kind = "anomaly",
                               .site = site,
                               .node = "n1",
                               .stream = "pump",
                               .rseq = from.seq + static_cast<uint64_t>(i),
                               .policy_digest = "sha256:00"};
      std::string line = policy::FormatAuditLine(from.seq + static_cast<uint64_t>(i), entry, prev);
      prev = crypto::Sha256Hex(line);
      audit.lines += line + "\n";
    }
    Result<policy::ChainHead> head = policy::VerifyAuditChain(audit.lines, from);
    EXPECT_TRUE(head.ok()) << head.status().ToString();
    audit.to_seq = head->seq;
    audit.to_hash = head->hash;
    return audit;
  }

  TempDir dir_;
  FakeClock clock_{Clock::WallTime(std::chrono::seconds(1'800'000'000))};
  std::unique_ptr<HubCa> ca_;
  std::unique_ptr<Store> store_;
  PolicySet policies_;
  std::unique_ptr<HubAuditLog> audit_log_;
  std::unique_ptr<Enrolment> enrolment_;
  std::unique_ptr<HubService> service_;
  std::unique_ptr<HubServer> server_;
  std::string url_;
  std::string database_;         // the PostgreSQL database of the test; empty for SQLite
  std::atomic<int> touched_{0};  // calls of the operator route POST /api/v1/touch
};

TEST_P(HubServerTest, EnrolmentWritesTheCredentialContract) {
  Credential cred = Enrol("plant-7");
  std::string creds = dir_.File("creds-plant-7");
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertInfo cert, ParseCertificatePem(cred.cert_pem));
  EXPECT_EQ(cert.common_name, "plant-7");
  EXPECT_EQ(cert.organization, "acme");
  OUTPOST_ASSERT_OK_AND_ASSIGN(Site site, store_->GetSite("plant-7"));
  EXPECT_EQ(site.credential_serial, cert.serial);
  EXPECT_NE(cred.key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ca_pem, ReadFile(creds + "/hub_ca.crt"));
  EXPECT_EQ(ca_pem, ca_->ca_pem());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string hub_url, ReadFile(creds + "/hub.url"));
  EXPECT_EQ(hub_url, url_ + "\n");
  // The key the site seals export files to is the hub's export.pub.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string export_pub, ReadFile(creds + "/hub_export.pub"));
  EXPECT_EQ(export_pub, ca_->export_public_pem());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string hub_export_pub, ReadFile(ca_->export_public_key_path()));
  EXPECT_EQ(export_pub, hub_export_pub);
  // The pin every receipt is checked against is the hub's receipt.crt, byte for byte; the
  // site's own certificate is for TLS, both ways, under its site id.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string receipt_pin, ReadFile(creds + "/hub_receipt.crt"));
  EXPECT_EQ(receipt_pin, ca_->receipt_pem());
  EXPECT_EQ(cert.extended_key_usages,
            (std::vector<std::string>{crypto::kClientAuthOid, crypto::kServerAuthOid}));
  EXPECT_EQ(cert.subject_alt_names, std::vector<std::string>{"plant-7"});
  // Enrolling into a folder that holds a credential needs --force.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string token,
                               enrolment_->AddSite("plant-7", "acme", "us", std::chrono::hours(1),
                                                   /*reissue=*/true));
  Status again =
      EnrolSite({.hub_url = url_, .token = token, .site_id = "plant-7", .credentials_dir = creds});
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();
}

TEST_P(HubServerTest, ReusedTokenIsRefused) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string token,
                               enrolment_->AddSite("plant-7", "acme", "us", std::chrono::hours(1)));
  OUTPOST_ASSERT_OK(EnrolSite(
      {.hub_url = url_, .token = token, .site_id = "plant-7", .credentials_dir = dir_.File("a")}));
  Status reused = EnrolSite(
      {.hub_url = url_, .token = token, .site_id = "plant-7", .credentials_dir = dir_.File("b")});
  EXPECT_EQ(reused.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(reused.message().rfind("token_unknown", 0), 0u) << reused.ToString();
  EXPECT_FALSE(PathExists(dir_.File("b/site.key")));
}

TEST_P(HubServerTest, ExpiredTokenIsRefused) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::string token, enrolment_->AddSite("plant-7", "acme", "us", std::chrono::minutes(10)));
  clock_.Advance(std::chrono::minutes(11));
  Status expired = EnrolSite(
      {.hub_url = url_, .token = token, .site_id = "plant-7", .credentials_dir = dir_.File("a")});
  EXPECT_EQ(expired.message().rfind("token_expired", 0), 0u) << expired.ToString();
  OUTPOST_ASSERT_OK_AND_ASSIGN(Site site, store_->GetSite("plant-7"));
  EXPECT_TRUE(site.credential_serial.empty());
}

TEST_P(HubServerTest, TokenEnrolsOnlyItsOwnSite) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string token,
                               enrolment_->AddSite("plant-7", "acme", "us", std::chrono::hours(1)));
  OUTPOST_ASSERT_OK(enrolment_->AddSite("plant-8", "acme", "us", std::chrono::hours(1)).status());
  Status other = EnrolSite(
      {.hub_url = url_, .token = token, .site_id = "plant-8", .credentials_dir = dir_.File("a")});
  EXPECT_EQ(other.message().rfind("token_site_mismatch", 0), 0u) << other.ToString();
}

TEST_P(HubServerTest, TokenPinsTheHubCa) {
  // A token from another hub: the site refuses this server before sending the secret.
  TempDir other_dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto other_ca, HubCa::OpenOrCreate(other_dir.path(), {}));
  std::string token = "op1." + RandomHex(32) + "." + other_ca->fingerprint();
  Status pinned = EnrolSite(
      {.hub_url = url_, .token = token, .site_id = "plant-7", .credentials_dir = dir_.File("a")});
  EXPECT_EQ(pinned.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(pinned.message().rfind("ca_mismatch", 0), 0u) << pinned.ToString();
  // Sent directly, a token naming another CA is refused by the hub too.
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateEd25519Key());
  HubRequest request{
      .method = "POST",
      .target = "/enrol/v1",
      .body = "{\"token\":\"" + token + "\",\"site_id\":\"plant-7\",\"public_key_pem\":\"x\"}"};
  HubResponse r = enrolment_->Handle(request);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Json(r.body, "reason"), "bad_token");
}

TEST_P(HubServerTest, MalformedEnrolmentBodiesAreRefusedWithReasons) {
  auto post = [&](std::string body) {
    return enrolment_->Handle(
        HubRequest{.method = "POST", .target = "/enrol/v1", .body = std::move(body)});
  };
  EXPECT_EQ(Json(post("{").body, "reason"), "malformed_json");
  EXPECT_EQ(Json(post("{}").body, "reason"), "missing_field");
  EXPECT_EQ(Json(post(std::string(20000, ' ')).body, "reason"), "body_too_large");
  EXPECT_EQ(
      Json(post("{\"token\":\"x\",\"site_id\":\"a b\",\"public_key_pem\":\"\"}").body, "reason"),
      "bad_site_id");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string token,
                               enrolment_->AddSite("plant-7", "acme", "us", std::chrono::hours(1)));
  HubResponse bad_key =
      post("{\"token\":\"" + token + "\",\"site_id\":\"plant-7\",\"public_key_pem\":\"junk\"}");
  EXPECT_EQ(bad_key.status, 400);
  EXPECT_EQ(Json(bad_key.body, "reason"), "bad_public_key");
}

TEST_P(HubServerTest, BatchWithoutCredentialIsRefused) {
  std::string bytes = Encode(MakeBatch("plant-7", 1, 3));
  HttpsResponse r = Post(Credential{}, "/sync/v1/batches", bytes);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Json(r.body, "reason"), "credential_missing");
}

TEST_P(HubServerTest, CertificateFromAnotherCaIsRefused) {
  Enrol("plant-7");
  TempDir other_dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto other_ca, HubCa::OpenOrCreate(other_dir.path(), {}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateEd25519Key());
  // Same site name, same tenant: only the issuer differs.
  OUTPOST_ASSERT_OK_AND_ASSIGN(IssuedCertificate forged,
                               other_ca->IssueSiteCertificate(key.public_pem, "plant-7", "acme"));
  HttpsResponse r = Post({forged.certificate_pem, key.private_pem}, "/sync/v1/batches",
                         Encode(MakeBatch("plant-7", 1, 3)));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Json(r.body, "reason"), "credential_untrusted");
  EXPECT_EQ(store_->QueryRecords({.tenant = "acme"})->size(), 0u);
}

TEST_P(HubServerTest, RevokedSiteIsRefused) {
  Credential cred = Enrol("plant-7");
  HttpsResponse ok = Post(cred, "/sync/v1/batches", Encode(MakeBatch("plant-7", 1, 3)));
  EXPECT_EQ(ok.status, 200) << ok.body;
  OUTPOST_ASSERT_OK(store_->RevokeSite("plant-7"));
  HttpsResponse r = Post(cred, "/sync/v1/batches", Encode(MakeBatch("plant-7", 4, 3)));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Json(r.body, "reason"), "site_revoked");
  EXPECT_EQ(store_->QueryRecords({.tenant = "acme"})->size(), 3u);
}

TEST_P(HubServerTest, SupersededCredentialIsRefused) {
  Credential old_cred = Enrol("plant-7");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string token,
                               enrolment_->AddSite("plant-7", "acme", "us", std::chrono::hours(1),
                                                   /*reissue=*/true));
  OUTPOST_ASSERT_OK(EnrolSite({.hub_url = url_,
                               .token = token,
                               .site_id = "plant-7",
                               .credentials_dir = dir_.File("new")}));
  HttpsResponse r = Post(old_cred, "/sync/v1/batches", Encode(MakeBatch("plant-7", 1, 3)));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Json(r.body, "reason"), "credential_superseded");
}

TEST_P(HubServerTest, AnotherSitesBatchIsRefused) {
  Credential a = Enrol("site-a");
  Enrol("site-b");
  HttpsResponse r = Post(a, "/sync/v1/batches", Encode(MakeBatch("site-b", 1, 3)));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Json(r.body, "reason"), "site_mismatch");
  EXPECT_EQ(store_->QueryRecords({.tenant = "acme"})->size(), 0u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string audit, ReadFile(dir_.File("audit.log")));
  EXPECT_NE(audit.find("\"reason\":\"site_mismatch\""), std::string::npos) << audit;
}

TEST_P(HubServerTest, StoredThenDuplicateThenConflict) {
  Credential cred = Enrol("plant-7");
  std::string bytes = Encode(MakeBatch("plant-7", 1, 5));
  HttpsResponse first = Post(cred, "/sync/v1/batches", bytes);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(Json(first.body, "outcome"), "stored");
  EXPECT_EQ(Json(first.body, "records"), "5");
  HttpsResponse again = Post(cred, "/sync/v1/batches", bytes);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Json(again.body, "outcome"), "duplicate");
  // The same seqs with other content.
  HttpsResponse conflict = Post(cred, "/sync/v1/batches", Encode(MakeBatch("plant-7", 1, 5, "1")));
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(Json(conflict.body, "reason"), "batch_conflict");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto records, store_->QueryRecords({.tenant = "acme"}));
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[0].payload, "{\"v\":1,\"score\":0.1}");
  EXPECT_EQ(records[0].kind, "anomaly");
  EXPECT_EQ(records[0].tenant, "acme");
}

TEST_P(HubServerTest, PolicyViolationIsRefusedAndAudited) {
  Credential cred = Enrol("plant-7");
  sync::Batch batch = MakeBatch("plant-7", 1, 3);
  batch.records[1].payload = "{\"v\":1,\"score\":0.5,\"operator_name\":\"ann\"}";
  HttpsResponse r = Post(cred, "/sync/v1/batches", Encode(batch));
  EXPECT_EQ(r.status, 422) << r.body;
  std::string reason = Json(r.body, "reason");
  EXPECT_FALSE(reason.empty());
  EXPECT_EQ(store_->QueryRecords({.tenant = "acme"})->size(), 0u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string audit, ReadFile(dir_.File("audit.log")));
  EXPECT_NE(audit.find("\"reason\":\"" + reason + "\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"site\":\"plant-7\""), std::string::npos);
  // The same line in the store, where every hub sharing it reads it.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto stored, store_->ListHubAudit("acme", 0, "", 10));
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].event, "batch_refused");
  EXPECT_EQ(stored[0].line + "\n", audit);
}

TEST_P(HubServerTest, AggregatesOnlySiteMayNotSendRawRecords) {
  Credential cred = Enrol("site-eu");
  HttpsResponse r = Post(cred, "/sync/v1/batches", Encode(MakeBatch("site-eu", 1, 2)));
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(Json(r.body, "reason"), "raw_not_allowed_in_region");
}

TEST_P(HubServerTest, AuditChainContinuesAndTamperingIsDetected) {
  Credential cred = Enrol("plant-7");
  sync::Batch batch = MakeBatch("plant-7", 1, 2);
  batch.audit = AuditLines("plant-7", policy::ChainHead{}, 3);
  HttpsResponse ok = Post(cred, "/sync/v1/batches", Encode(batch));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Json(ok.body, "audit_head"), "{\"seq\":3,\"hash\":\"" + batch.audit->to_hash + "\"}");
  const policy::ChainHead head{.seq = 3, .hash = batch.audit->to_hash};

  // An entry cut from the middle of the next segment.
  sync::Batch cut = MakeBatch("plant-7", 3, 2);
  cut.audit = AuditLines("plant-7", head, 3);
  std::string lines = cut.audit->lines;
  size_t first_end = lines.find('\n');
  size_t second_end = lines.find('\n', first_end + 1);
  cut.audit->lines = lines.substr(0, first_end + 1) + lines.substr(second_end + 1);
  HttpsResponse r_cut = Post(cred, "/sync/v1/batches", Encode(cut));
  EXPECT_EQ(r_cut.status, 422) << r_cut.body;
  EXPECT_EQ(Json(r_cut.body, "reason"), "audit_cut");

  // An entry edited (a rejection turned into an allowance, its hash left as it was).
  sync::Batch edited = MakeBatch("plant-7", 3, 2);
  edited.audit = AuditLines("plant-7", head, 2);
  size_t pos = edited.audit->lines.find("\"rseq\":4");
  ASSERT_NE(pos, std::string::npos);
  edited.audit->lines.replace(pos, 8, "\"rseq\":9");
  HttpsResponse r_edit = Post(cred, "/sync/v1/batches", Encode(edited));
  EXPECT_EQ(r_edit.status, 422) << r_edit.body;
  EXPECT_EQ(Json(r_edit.body, "reason"), "audit_edited");

  // A segment that rewrites history: it continues entry 3 with another hash.
  sync::Batch rewritten = MakeBatch("plant-7", 3, 2);
  rewritten.audit =
      AuditLines("plant-7", policy::ChainHead{.seq = 3, .hash = std::string(64, 'e')}, 1);
  HttpsResponse r_rewrite = Post(cred, "/sync/v1/batches", Encode(rewritten));
  EXPECT_EQ(r_rewrite.status, 422) << r_rewrite.body;
  EXPECT_EQ(Json(r_rewrite.body, "reason"), "audit_edited");

  // A segment that skips entries the hub never saw: audit_gap with the hub's head.
  sync::Batch gap = MakeBatch("plant-7", 3, 2);
  gap.audit = AuditLines("plant-7", policy::ChainHead{.seq = 5, .hash = std::string(64, 'a')}, 1);
  HttpsResponse r_gap = Post(cred, "/sync/v1/batches", Encode(gap));
  EXPECT_EQ(r_gap.status, 409) << r_gap.body;
  EXPECT_EQ(Json(r_gap.body, "reason"), "audit_gap");
  EXPECT_EQ(Json(r_gap.body, "audit_head"), "{\"seq\":3,\"hash\":\"" + head.hash + "\"}");

  EXPECT_EQ(store_->QueryRecords({.tenant = "acme"})->size(), 2u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto stored_head, store_->AuditHead("plant-7", "n1"));
  EXPECT_EQ(stored_head.first, 3u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string audit, ReadFile(dir_.File("audit.log")));
  EXPECT_NE(audit.find("audit_cut"), std::string::npos);
  EXPECT_NE(audit.find("audit_edited"), std::string::npos);
}

TEST_P(HubServerTest, RetriedBatchWithItsAuditSegmentIsADuplicate) {
  // The acknowledgement was lost: the site sends the same batch, audit segment and all, after
  // the hub has moved its audit head past it.
  Credential cred = Enrol("plant-7");
  sync::Batch batch = MakeBatch("plant-7", 1, 2);
  batch.audit = AuditLines("plant-7", policy::ChainHead{}, 2);
  std::string bytes = Encode(batch);
  HttpsResponse first = Post(cred, "/sync/v1/batches", bytes);
  ASSERT_EQ(first.status, 200) << first.body;
  HttpsResponse retry = Post(cred, "/sync/v1/batches", bytes);
  EXPECT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(Json(retry.body, "outcome"), "duplicate");
  EXPECT_EQ(store_->QueryRecords({.tenant = "acme"})->size(), 2u);
}

TEST_P(HubServerTest, LimitsAreEnforcedWithReasons) {
  Credential cred = Enrol("plant-7");
  // Over the listener's body limit.
  HttpsResponse big = Post(cred, "/sync/v1/batches", std::string(300 * 1024, 'x'));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(Json(big.body, "reason"), "body_too_large");
  // Over the service's records per batch (100 here).
  HttpsResponse many = Post(cred, "/sync/v1/batches", Encode(MakeBatch("plant-7", 1, 101)));
  EXPECT_EQ(many.status, 413) << many.body;
  EXPECT_EQ(Json(many.body, "reason"), "batch_too_many_records");
  // Not a batch.
  HttpsResponse junk = Post(cred, "/sync/v1/batches", "hello");
  EXPECT_EQ(junk.status, 400);
  EXPECT_FALSE(Json(junk.body, "reason").empty());
  EXPECT_EQ(store_->QueryRecords({.tenant = "acme"})->size(), 0u);
}

TEST_P(HubServerTest, StatusReportIsStoredForTheCredentialsSite) {
  Credential cred = Enrol("plant-7");
  HttpsResponse ok = Post(cred, "/sync/v1/status",
                          R"({"site_id":"plant-7","node_id":"n1","reported_ms":5,
                              "backlog_records":12,"backlog_bytes":345,"autonomy_days":2.5,
                              "models":[{"name":"pump","version":3,"state":"READY"}]})",
                          "application/json");
  EXPECT_EQ(ok.status, 200) << ok.body;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto sites, store_->ListSites("acme"));
  ASSERT_EQ(sites.size(), 1u);
  ASSERT_EQ(sites[0].nodes.size(), 1u);
  EXPECT_EQ(sites[0].nodes[0].backlog_records, 12u);
  HttpsResponse other =
      Post(cred, "/sync/v1/status", R"({"site_id":"x","node_id":"n1"})", "application/json");
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(Json(other.body, "reason"), "site_mismatch");
}

TEST_P(HubServerTest, OperatorListenerNeedsABearerToken) {
  EXPECT_FALSE(server_->operator_tls());
  auto call = [&](std::string target, std::string authorization) {
    HubRequest request{.method = "POST", .target = std::move(target)};
    if (!authorization.empty()) request.headers = {{"authorization", authorization}};
    return service_->HandleOperator(request);
  };
  const std::string bearer = std::string("Bearer ") + kOperatorToken;
  HubResponse none = call("/api/v1/touch", "");
  EXPECT_EQ(none.status, 401);
  // Unknown, short (under 128 bits), not Bearer, and a known token's prefix: each 401.
  for (const std::string& header :
       {std::string("Bearer nope-nope-nope-nope-nope"), std::string("Bearer op-secret"),
        std::string("Basic b3A6c2VjcmV0"), bearer.substr(0, bearer.size() - 1), bearer + "x"}) {
    HubResponse wrong = call("/api/v1/touch", header);
    EXPECT_EQ(wrong.status, 401) << header;
    EXPECT_EQ(Json(wrong.body, "reason"), "operator_token") << header;
  }
  EXPECT_EQ(touched_, 0);
  HubResponse served = call("/api/v1/touch", bearer);
  EXPECT_EQ(served.status, 200) << served.body;
  EXPECT_EQ(Json(served.body, "tenant"), "acme");
  EXPECT_EQ(touched_, 1);
  HubResponse sync_path = call("/sync/v1/batches", bearer);
  EXPECT_EQ(sync_path.status, 404);
}

TEST_P(HubServerTest, OperatorListenerRefusesATokenInTheUrlAndDoesNothing) {
  const std::string bearer = std::string("Bearer ") + kOperatorToken;
  // With the right token in the URL, and even with it in the header as well: refused before
  // routing, whatever the path.
  for (const std::string& target :
       {"/api/v1/touch?token=" + std::string(kOperatorToken),
        "/api/v1/touch?a=1&TOKEN=" + std::string(kOperatorToken),
        "/api/v1/touch?access_token=" + std::string(kOperatorToken), std::string("/?token="),
        std::string("/sync/v1/batches?token=x")}) {
    for (bool header : {false, true}) {
      HubRequest request{.method = "POST", .target = target};
      if (header) request.headers = {{"authorization", bearer}};
      HubResponse refused = service_->HandleOperator(request);
      EXPECT_EQ(refused.status, 400) << target;
      EXPECT_EQ(Json(refused.body, "reason"), "token_in_url") << target;
    }
  }
  EXPECT_EQ(touched_, 0);
  // A parameter that only contains the word is not a token.
  HubResponse fine =
      service_->HandleOperator(HubRequest{.method = "POST",
                                          .target = "/api/v1/touch?tokens=1&my_token=2",
                                          .headers = {{"authorization", bearer}}});
  EXPECT_EQ(fine.status, 200) << fine.body;
  EXPECT_EQ(touched_, 1);
}

// GET /healthz and /readyz answer without a token over the real listener, never read an
// Authorization header, and say nothing about the hub; /readyz is 503 while the store does
// not answer (PostgreSQL: the test's database refuses connections), and ready again after.
TEST_P(HubServerTest, ProbesAnswerWithoutATokenAndReadinessFollowsTheStore) {
  const std::string base = "http://127.0.0.1:" + std::to_string(server_->operator_port());
  for (const std::string path : {"/healthz", "/readyz"}) {
    Result<HttpsResponse> r = http::Fetch({.base_url = base}, {.method = "GET", .target = path});
    OUTPOST_ASSERT_OK(r.status());
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    EXPECT_EQ(r->body, "ok") << path;
    EXPECT_EQ(r->Header("content-type"), "text/plain") << path;
  }
  auto call = [&](std::string method, std::string target, std::string authorization = "") {
    HubRequest request{.method = std::move(method), .target = std::move(target)};
    if (!authorization.empty()) request.headers = {{"authorization", authorization}};
    return service_->HandleOperator(request);
  };
  // An unknown token, or a header that is not Bearer, is not read on a probe's path.
  EXPECT_EQ(call("GET", "/readyz", "Bearer nope-nope-nope-nope-nope").status, 200);
  EXPECT_EQ(call("GET", "/healthz", "Basic b3A6c2VjcmV0").status, 200);
  // Another method; a token in the URL; a path beside the probes: refused as everywhere.
  HubResponse post = call("POST", "/healthz");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(Json(post.body, "reason"), "method_not_allowed");
  EXPECT_EQ(Json(call("GET", "/readyz?token=x").body, "reason"), "token_in_url");
  EXPECT_EQ(call("GET", "/readyzz").status, 401);
  EXPECT_EQ(touched_, 0);
  if (database_.empty()) GTEST_SKIP() << "the store that stops answering is PostgreSQL's";
#ifdef OUTPOST_HUB_TEST_POSTGRES
  auto sql = [&](const std::string& statement) {
    RunResult r = RunProgram(
        {"/usr/bin/psql", "-v", "ON_ERROR_STOP=1", "-q", Cluster()->url(), "-c", statement});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  Credential site = Enrol("site-a");
  sql("ALTER DATABASE " + database_ + " ALLOW_CONNECTIONS false");
  sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + database_ + "'");
  HubResponse down = call("GET", "/readyz");
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(Json(down.body, "reason"), "store_unavailable");
  EXPECT_EQ(Json(down.body, "error"), "the store does not answer");
  EXPECT_EQ(down.body.find(database_), std::string::npos) << down.body;
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  sql("ALTER DATABASE " + database_ + " ALLOW_CONNECTIONS true");
  EXPECT_EQ(call("GET", "/readyz").status, 200);
  // Nothing was lost meanwhile: the enrolled site still uploads.
  HttpsResponse stored = Post(site, "/sync/v1/batches", Encode(MakeBatch("site-a", 1, 2)));
  EXPECT_EQ(stored.status, 200) << stored.body;
  EXPECT_EQ(Json(stored.body, "outcome"), "stored") << stored.body;
#endif
}

// The site listener's head check, as the server core calls it before reading a body.
TEST(CheckSiteHead, SyncPathsNeedAVerifiedCertificateBeforeTheBodyOthersDoNot) {
  auto check = [](std::string target, http::PeerInfo peer) {
    HubRequest head{.method = "POST", .target = std::move(target)};
    head.peer = std::move(peer);
    HubResponse refusal;
    const bool passed = CheckSiteHead(head, refusal);
    return std::make_pair(passed, passed ? std::string() : Json(refusal.body, "reason"));
  };
  const http::PeerInfo none{.tls = true};
  const http::PeerInfo untrusted{.tls = true, .cert_presented = true, .verify_error = "bad"};
  const http::PeerInfo verified{.tls = true, .cert_presented = true, .cert_verified = true};
  for (const std::string target :
       {"/sync/v1/batches", "/sync/v1/status?x=1", "/sync/", "/sync/v2/anything"}) {
    EXPECT_EQ(check(target, none), std::make_pair(false, std::string("credential_missing")))
        << target;
    EXPECT_EQ(check(target, untrusted), std::make_pair(false, std::string("credential_untrusted")))
        << target;
    EXPECT_EQ(check(target, verified), std::make_pair(true, std::string())) << target;
  }
  HubResponse refusal;
  HubRequest head{.method = "POST", .target = "/sync/v1/batches"};
  EXPECT_FALSE(CheckSiteHead(head, refusal));
  EXPECT_EQ(refusal.status, 401);
  // Enrolment comes without a certificate; other paths are the router's 404 for anyone.
  for (const std::string target : {"/enrol/v1", "/enrol/v1/ca", "/", "/other", "/syncx"}) {
    EXPECT_EQ(check(target, none), std::make_pair(true, std::string())) << target;
  }
}

std::vector<std::string> Engines() {
#ifdef OUTPOST_HUB_TEST_POSTGRES
  return {"sqlite", "postgresql"};
#else
  return {"sqlite"};
#endif
}

INSTANTIATE_TEST_SUITE_P(Engines, HubServerTest, ::testing::ValuesIn(Engines()),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace outpost::hub
