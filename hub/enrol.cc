// Enrolment, hub and site sides (hub/FORMAT.md sections 2 to 4).
#include "hub/enrol.h"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstdio>

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "base/names.h"
#include "hub/server.h"
#include "sync/crypto.h"
#include "sync/receipt.h"

namespace outpost::hub {
namespace {

constexpr std::string_view kTokenPrefix = "op1.";

HubResponse Json(int status, std::string body) {
  return HubResponse{.status = status, .body = std::move(body)};
}

// Writes `text` to `path` (0644) when the hub sent it (`sent`); otherwise removes a file an
// earlier enrolment left there, so that a site never keeps a key or a pin of another hub.
Status WriteOrRemove(const std::string& path, bool sent, std::string_view text) {
  if (sent) return WriteFileAtomically(path, text, 0644);
  if (PathExists(path) && std::remove(path.c_str()) != 0) {
    return ErrnoToStatus(errno, "remove", path);
  }
  return Status::Ok();
}

// The receipt certificate of an enrolment answer must be one of the CA the site pinned
// (sync/FORMAT.md section 5): DataLoss bad_receipt_certificate otherwise.
Status CheckReceiptPin(std::string_view receipt_pem, std::string_view ca_pem) {
  Status checked = sync::CheckReceiptCertificate(receipt_pem, ca_pem);
  if (checked.ok()) return checked;
  const std::string detail(checked.message());
  const std::string why =
      "the hub's receipt_certificate_pem is not a receipt certificate of its CA (" + detail + ")";
  return ErrorWithReason(StatusCode::kDataLoss, "bad_receipt_certificate",
                         why + "; nothing was written");
}

// The reason a status carries (ErrorWithReason), else `fallback`.
std::string ReasonIn(const Status& status, std::string_view fallback) {
  return std::string(status.has_reason() ? status.reason() : fallback);
}

}  // namespace

Status ValidateEnrolledSiteId(std::string_view site_id) {
  // RFC 5280's ub-common-name: the site id is the certificate's CN.
  constexpr size_t kMaxCommonNameBytes = 64;
  OUTPOST_RETURN_IF_ERROR(CheckName(kSiteIdRule, site_id));
  if (site_id.size() > kMaxCommonNameBytes) {
    return InvalidArgumentError("site id is " + std::to_string(site_id.size()) +
                                " bytes; an enrolled site's id is its certificate's common name, "
                                "at most 64 bytes")
        .WithReason(kSiteIdRule.reason);
  }
  return Status::Ok();
}

Result<TokenParts> ParseToken(std::string_view token) {
  if (token.size() != kTokenPrefix.size() + 64 + 1 + 64 ||
      token.substr(0, kTokenPrefix.size()) != kTokenPrefix ||
      token[kTokenPrefix.size() + 64] != '.') {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_token",
                           "not an enrolment token of the form op1.<64 hex>.<64 hex>");
  }
  TokenParts parts{.secret = std::string(token.substr(kTokenPrefix.size(), 64)),
                   .ca_fingerprint = std::string(token.substr(kTokenPrefix.size() + 65))};
  if (!IsHex64(parts.secret) || !IsHex64(parts.ca_fingerprint)) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_token", "not lowercase hex");
  }
  return parts;
}

Result<std::string> Enrolment::AddSite(std::string_view site_id, std::string_view tenant,
                                       std::string_view region, std::chrono::seconds ttl,
                                       bool reissue) {
  OUTPOST_RETURN_IF_ERROR(ValidateEnrolledSiteId(site_id));
  OUTPOST_RETURN_IF_ERROR(Tenant::Parse(tenant));
  OUTPOST_RETURN_IF_ERROR(Region::Parse(region));
  if (ttl.count() <= 0 || ttl > kMaxTokenTtl) {
    return InvalidArgumentError("token lifetime must be between 1 s and 30 days");
  }
  const int64_t now_ms = UnixMillis(clock_.Now());
  Result<Site> existing = store_.GetSite(site_id);
  if (existing.ok()) {
    if (existing->tenant != tenant || existing->region != region) {
      return AlreadyExistsError("site \"" + std::string(site_id) +
                                "\" exists with tenant \"" + existing->tenant +
                                "\" and region \"" + existing->region + "\"");
    }
    if (existing->revoked) {
      return ErrorWithReason(StatusCode::kPermissionDenied, "site_revoked",
                             "site \"" + std::string(site_id) + "\" is revoked");
    }
    if (!existing->credential_serial.empty() && !reissue) {
      return ErrorWithReason(
          StatusCode::kFailedPrecondition, "site_enrolled",
          "site \"" + std::string(site_id) + "\" is enrolled; --reissue issues a new token");
    }
  } else if (existing.status().code() == StatusCode::kNotFound) {
    OUTPOST_RETURN_IF_ERROR(store_.CreateSite(Site{.site_id = std::string(site_id),
                                                   .tenant = std::string(tenant),
                                                   .region = std::string(region),
                                                   .created_ms = now_ms}));
  } else {
    return existing.status();
  }
  std::string token = std::string(kTokenPrefix) + RandomHex(32) + "." + ca_.fingerprint();
  OUTPOST_RETURN_IF_ERROR(store_.PutEnrolmentToken(EnrolmentToken{
      .token_sha256 = crypto::Sha256Hex(token),
      .site_id = std::string(site_id),
      .expires_ms = now_ms + std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count()}));
  return token;
}

bool Enrolment::Owns(std::string_view target) {
  return target == "/enrol/v1" || target == "/enrol/v1/ca";
}

void Enrolment::RegisterRoutes(http::Router& router) {
  router.Exact("GET", "/enrol/v1/ca",
               [this](const HubRequest&, HubResponse& response) { response = CaCertificate(); });
  router.Exact("POST", "/enrol/v1", [this](const HubRequest& request, HubResponse& response) {
    response = Enrol(request);
  });
}

HubResponse Enrolment::Handle(const HubRequest& request) {
  if (request.target == "/enrol/v1/ca") {
    if (request.method != "GET") return ErrorResponse(405, "method_not_allowed", "use GET");
    return CaCertificate();
  }
  if (request.target != "/enrol/v1") return ErrorResponse(404, "not_found", "no such endpoint");
  if (request.method != "POST") return ErrorResponse(405, "method_not_allowed", "use POST");
  return Enrol(request);
}

HubResponse Enrolment::CaCertificate() const {
  return HubResponse{.status = 200, .content_type = "application/x-pem-file",
                     .body = ca_.ca_pem()};
}

HubResponse Enrolment::Enrol(const HubRequest& request) {
  if (request.body.size() > kMaxEnrolBodyBytes) {
    return ErrorResponse(413, "body_too_large", "enrolment body over 16 KiB");
  }
  json::Parser parser;
  Result<json::Value> root = parser.Parse(std::string_view(request.body));
  if (!root.ok() || !root->is_object()) {
    return ErrorResponse(400, "malformed_json", "the body is not a JSON object");
  }
  const json::Value token_value = (*root)["token"], site_value = (*root)["site_id"],
                    key_value = (*root)["public_key_pem"];
  if (!token_value.is_string() || !site_value.is_string() || !key_value.is_string()) {
    return ErrorResponse(400, "missing_field",
                         "token, site_id and public_key_pem are required strings");
  }
  const std::string_view token = *token_value.GetString(), site_id = *site_value.GetString(),
                         public_key_pem = *key_value.GetString();
  if (!ValidateEnrolledSiteId(site_id).ok()) {
    return ErrorResponse(400, "bad_site_id", "site_id is not a valid site id");
  }
  Result<TokenParts> parts = ParseToken(token);
  if (!parts.ok()) return ErrorResponse(400, "bad_token", parts.status().message());
  if (parts->ca_fingerprint != ca_.fingerprint()) {
    return ErrorResponse(400, "bad_token", "the token was made by another hub");
  }
  const int64_t now_ms = UnixMillis(clock_.Now());
  // The site must exist and be usable before the token is spent.
  Result<Site> site = store_.GetSite(site_id);
  if (!site.ok() && site.status().code() != StatusCode::kNotFound) {
    return ErrorResponse(503, "store_unavailable", site.status().message());
  }
  if (site.ok() && site->revoked) {
    return ErrorResponse(403, "site_revoked", "the site is revoked");
  }
  Result<EnrolmentToken> consumed =
      store_.ConsumeEnrolmentToken(crypto::Sha256Hex(token), now_ms);
  if (!consumed.ok()) {
    switch (consumed.status().code()) {
      case StatusCode::kNotFound:
        return ErrorResponse(403, "token_unknown", "unknown or already used enrolment token");
      case StatusCode::kDeadlineExceeded:
        return ErrorResponse(403, "token_expired", "the enrolment token has expired");
      default:
        return ErrorResponse(503, "store_unavailable", consumed.status().message());
    }
  }
  if (consumed->site_id != site_id || !site.ok()) {
    OUTPOST_LOG(kWarning) << "enrolment token used for another site"
                          << Field("token_site", consumed->site_id) << Field("asked", site_id);
    return ErrorResponse(403, "token_site_mismatch", "the token was made for another site");
  }
  Result<IssuedCertificate> issued =
      ca_.IssueSiteCertificate(public_key_pem, site_id, site->tenant);
  if (!issued.ok()) {
    return ErrorResponse(400, ReasonIn(issued.status(), "bad_public_key"),
                         issued.status().message());
  }
  Status set = store_.SetCredential(site_id, issued->serial);
  if (!set.ok()) return ErrorResponse(503, "store_unavailable", set.message());
  OUTPOST_LOG(kInfo) << "site enrolled" << Field("site", site_id) << Field("tenant", site->tenant)
                     << Field("serial", issued->serial);
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("certificate_pem");
  w.String(issued->certificate_pem);
  w.Key("ca_pem");
  w.String(ca_.ca_pem());
  w.Key("serial");
  w.String(issued->serial);
  w.Key("site_id");
  w.String(site_id);
  w.Key("tenant");
  w.String(site->tenant);
  w.Key("export_public_key_pem");
  w.String(ca_.export_public_pem());
  w.Key("receipt_certificate_pem");
  w.String(ca_.receipt_pem());
  w.EndObject();
  return Json(200, std::move(out));
}

Status EnrolSite(const EnrolSiteOptions& options) {
  OUTPOST_RETURN_IF_ERROR(ValidateEnrolledSiteId(options.site_id));
  OUTPOST_ASSIGN_OR_RETURN(TokenParts parts, ParseToken(options.token));
  std::string hub_url = options.hub_url;
  while (!hub_url.empty() && hub_url.back() == '/') hub_url.pop_back();
  const std::string dir = options.credentials_dir;
  if (!options.force && (PathExists(JoinPath(dir, "site.key")) ||
                         PathExists(JoinPath(dir, "site.crt")))) {
    return ErrorWithReason(StatusCode::kAlreadyExists, "credentials_exist",
                           dir + " already holds a site credential (--force replaces it)");
  }
  // 1. The CA, from an unverified connection, checked against the token's pin.
  OUTPOST_ASSIGN_OR_RETURN(
      http::ClientResponse ca_answer,
      http::Fetch({.base_url = hub_url, .skip_verification = true}, {.target = "/enrol/v1/ca"}));
  if (ca_answer.status != 200) {
    return UnavailableError("hub answered " + std::to_string(ca_answer.status) +
                            " for its CA certificate");
  }
  Result<CertInfo> ca_info = ParseCertificatePem(ca_answer.body);
  if (!ca_info.ok() || ca_info->fingerprint != parts.ca_fingerprint) {
    return ErrorWithReason(
        StatusCode::kPermissionDenied, "ca_mismatch",
        "the server at " + hub_url + " does not hold the CA this token pins; nothing was sent");
  }
  // 2. The key, then the enrolment over a connection verified against that CA.
  OUTPOST_ASSIGN_OR_RETURN(KeyPairPem key, GenerateEd25519Key());
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("token");
  w.String(options.token);
  w.Key("site_id");
  w.String(options.site_id);
  w.Key("public_key_pem");
  w.String(key.public_pem);
  w.EndObject();
  OUTPOST_ASSIGN_OR_RETURN(
      http::ClientResponse answer,
      http::Fetch({.base_url = hub_url, .ca_pem = ca_answer.body},
                  {.method = "POST", .target = "/enrol/v1", .content_type = "application/json",
                   .body = body}));
  json::Parser parser;
  Result<json::Value> parsed = parser.Parse(std::string_view(answer.body));
  if (!parsed.ok()) {
    return UnavailableError("hub answered " + std::to_string(answer.status) +
                            " with a body that is not JSON");
  }
  const json::Value root = *parsed;
  if (answer.status != 200) {
    const std::string_view reason = root["reason"].GetString().value_or("unknown");
    const std::string_view error = root["error"].GetString().value_or("");
    // The hub's reason becomes this side's: `outpost enrol` reports it as the hub said it.
    switch (answer.status) {
      case 403:
        return ErrorWithReason(StatusCode::kPermissionDenied, reason, error);
      case 400:
      case 413:
        return ErrorWithReason(StatusCode::kInvalidArgument, reason, error);
      default:
        return ErrorWithReason(StatusCode::kUnavailable, reason, error);
    }
  }
  if (!root["certificate_pem"].is_string() || !root["ca_pem"].is_string()) {
    return UnavailableError("enrolment answer lacks certificate_pem or ca_pem");
  }
  const std::string_view cert_pem = *root["certificate_pem"].GetString(),
                         ca_pem = *root["ca_pem"].GetString();
  OUTPOST_ASSIGN_OR_RETURN(CertInfo cert, ParseCertificatePem(cert_pem));
  if (cert.common_name != options.site_id) {
    return DataLossError("the hub issued a certificate for \"" + cert.common_name + "\"");
  }
  if (ca_pem != ca_answer.body)
    return ErrorWithReason(StatusCode::kPermissionDenied, "ca_mismatch", "the hub changed CA");
  // The key export files are sealed to; an older hub sends none.
  const std::string_view export_pub = root["export_public_key_pem"].GetString().value_or("");
  bool has_export_key = root["export_public_key_pem"].is_string();
  if (has_export_key && !sync::X25519RawPublicKey(export_pub).ok()) {
    return ErrorWithReason(StatusCode::kDataLoss, "bad_export_key",
                           "the hub's export_public_key_pem is not an X25519 "
                           "public key; nothing was written");
  }
  // The receipt certificate the site pins (sync/FORMAT.md section 5); an older hub sends none.
  const std::string_view receipt_pem = root["receipt_certificate_pem"].GetString().value_or("");
  const bool has_receipt_cert = root["receipt_certificate_pem"].is_string();
  if (has_receipt_cert) OUTPOST_RETURN_IF_ERROR(CheckReceiptPin(receipt_pem, ca_pem));
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(dir));
  ::chmod(dir.c_str(), 0700);
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, "hub_ca.crt"), ca_pem, 0644));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, "site.crt"), cert_pem, 0644));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, "hub.url"), hub_url + "\n", 0644));
  OUTPOST_RETURN_IF_ERROR(
      WriteOrRemove(JoinPath(dir, "hub_export.pub"), has_export_key, export_pub));
  OUTPOST_RETURN_IF_ERROR(WriteOrRemove(JoinPath(dir, sync::kPinnedReceiptCertificateFile),
                                        has_receipt_cert, receipt_pem));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, "site.key"), key.private_pem, 0600));
  return SyncDirectory(dir);
}

}  // namespace outpost::hub
