#include "sync/receipt.h"

#include "base/coding.h"
#include "base/file.h"
#include "base/names.h"
#include "sync/crypto.h"
#include "sync/signed_file.h"
#include "sync/wire.h"

namespace outpost::sync {
namespace {

constexpr SignedFileKind kReceipt{.magic = "OPSR", .prefix = "receipt", .noun = "a receipt"};

Status Bad(std::string_view reason, std::string_view detail) {
  return ErrorWithReason(StatusCode::kInvalidArgument, reason, detail);
}

// The commands that re-enrol this site (hub/FORMAT.md sections 2 and 4), with what the site
// knows of their arguments filled in.
std::string ReEnrolInstruction(const ReceiptTrust& trust, std::string_view site_id) {
  const std::string site(site_id);
  const std::string tenant = trust.tenant.empty() ? "TENANT" : trust.tenant;
  const std::string hub = trust.hub_url.empty() ? "https://HUB:PORT" : trust.hub_url;
  const std::string dir = trust.credentials_dir.empty() ? "DIR" : trust.credentials_dir;
  const std::string add =
      "outpost hub site add --site " + site + " --tenant " + tenant + " --region REGION --reissue";
  const std::string enrol = "outpost enrol --hub " + hub + " --token TOKEN --site " + site +
                            " --credentials " + dir + " --force";
  return "re-enrol this site: at the hub run `" + add + "` (it prints a one-time token), then " +
         "here `" + enrol + "`, and import the receipt again. Nothing was deleted";
}

// SHA-256 of the DER of the first certificate in `pem`; "" when it does not parse.
std::string FingerprintOf(std::string_view pem) {
  Result<crypto::CertificateInfo> info = crypto::ParseCertificatePem(pem);
  return info.ok() ? info->fingerprint : std::string();
}

// The file in `dir`, or "" when it is absent; other read errors are returned.
Result<std::string> ReadOptional(const std::string& dir, std::string_view name) {
  const std::string path = JoinPath(dir, std::string(name));
  if (!PathExists(path)) return std::string();
  Result<std::string> text = ReadFile(path, 1 << 20);
  if (!text.ok()) return text.status().WithContext(path);
  return text;
}

}  // namespace

Result<std::string> WriteReceipt(const Receipt& receipt, std::string_view signer_key_pem) {
  ReceiptLimits limits;
  if (!SiteId::IsValid(receipt.site_id)) return Bad("receipt_malformed", "bad site name");
  if (receipt.export_id.size() != 16) return Bad("receipt_malformed", "export id must be 16 bytes");
  if (receipt.cert_pem.empty() || receipt.cert_pem.size() > limits.max_cert_bytes) {
    return Bad("receipt_cert", "certificate missing or too large");
  }
  if (receipt.keys.size() > limits.max_keys) return Bad("receipt_too_large", "too many keys");
  std::string out = BeginSignedFile(kReceipt, receipt.cert_pem);
  wire::PutStr8(out, receipt.site_id);
  out += receipt.export_id;
  PutU64LE(out, static_cast<uint64_t>(receipt.created_ms));
  PutU32LE(out, static_cast<uint32_t>(receipt.keys.size()));
  for (const BatchKeyFields& k : receipt.keys) {
    if (!NodeId::IsValid(k.node_id) || !StreamName::IsValid(k.stream) || k.first_seq > k.last_seq ||
        !IsHex64(k.content_sha256)) {
      return Bad("receipt_malformed", "bad batch key");
    }
    wire::PutStr8(out, k.node_id);
    wire::PutStr8(out, k.stream);
    PutU64LE(out, k.first_seq);
    PutU64LE(out, k.last_seq);
    out += *HexDecode(k.content_sha256);  // 32 bytes: IsHex64 held
  }
  OUTPOST_RETURN_IF_ERROR(FinishSignedFile(out, signer_key_pem));
  return out;
}

Result<Receipt> ReadReceipt(std::string_view bytes, const ReceiptLimits& limits) {
  auto truncated = [] { return SignedFileTruncated(kReceipt); };
  wire::Reader r({});
  std::string_view cert, site, id;
  OUTPOST_RETURN_IF_ERROR(
      ReadSignedFileHead(bytes, kReceipt, limits.max_file_bytes, limits.max_cert_bytes, r, cert));
  Receipt out;
  uint64_t created = 0;
  uint32_t count = 0;
  if (!r.Str8(site) || !r.Bytes(16, id) || !r.U64(created) || !r.U32(count)) {
    return truncated();
  }
  if (!SiteId::IsValid(site)) return Bad("receipt_malformed", "bad site name");
  if (count > limits.max_keys) {
    return ErrorWithReason(StatusCode::kResourceExhausted, "receipt_too_large",
                           std::to_string(count) + " keys");
  }
  // Each key takes at least 52 bytes.
  if (r.left() / 52 < count) return truncated();
  out.keys.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    std::string_view node, stream, sha;
    BatchKeyFields k;
    if (!r.Str8(node) || !r.Str8(stream) || !r.U64(k.first_seq) || !r.U64(k.last_seq) ||
        !r.Bytes(32, sha)) {
      return truncated();
    }
    if (!NodeId::IsValid(node) || !StreamName::IsValid(stream) || k.first_seq > k.last_seq) {
      return Bad("receipt_malformed", "bad batch key");
    }
    k.site_id = site;
    k.node_id = node;
    k.stream = stream;
    k.content_sha256 = HexEncode(sha);
    out.keys.push_back(std::move(k));
  }
  OUTPOST_RETURN_IF_ERROR(VerifySignedFileTail(bytes, kReceipt, r, cert));
  out.cert_pem = cert;
  out.site_id = site;
  out.export_id = id;
  out.created_ms = static_cast<int64_t>(created);
  return out;
}

Status CheckReceiptCertificate(std::string_view cert_pem, std::string_view hub_ca_pem) {
  Status chain = VerifyCertificateChain(cert_pem, hub_ca_pem);
  if (!chain.ok()) {
    return Status(chain.code(),
                  "not issued by the hub CA, or not valid now: " + std::string(chain.message()));
  }
  OUTPOST_ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::ParseCertificatePem(cert_pem));
  OUTPOST_RETURN_IF_ERROR(
      crypto::CertificatePublicKey(cert_pem, crypto::KeyType::kEd25519).status());
  const std::vector<std::string>& purposes = info.extended_key_usages;
  if (purposes.size() != 1 || purposes[0] != kReceiptSigningOid) {
    std::string held;
    for (const std::string& oid : purposes) held += (held.empty() ? "" : ", ") + oid;
    if (held.empty()) held = "nothing";
    const std::string must = std::string("its extendedKeyUsage must hold exactly ") +
                             kReceiptSigningOid + ", and holds " + held;
    return PermissionDeniedError("certificate \"" + info.common_name +
                                 "\" is not a receipt certificate: " + must);
  }
  return Status::Ok();
}

Result<ReceiptTrust> LoadReceiptTrust(const std::string& credentials_dir) {
  ReceiptTrust trust{.credentials_dir = credentials_dir};
  const std::string ca_path = JoinPath(credentials_dir, "hub_ca.crt");
  Result<std::string> ca = ReadFile(ca_path, 1 << 20);
  if (!ca.ok()) return ca.status().WithContext(ca_path);
  trust.hub_ca_pem = std::move(*ca);
  OUTPOST_ASSIGN_OR_RETURN(trust.pinned_cert_pem,
                           ReadOptional(credentials_dir, kPinnedReceiptCertificateFile));
  OUTPOST_ASSIGN_OR_RETURN(std::string url, ReadOptional(credentials_dir, "hub.url"));
  while (!url.empty() && (url.back() == '\n' || url.back() == '\r')) url.pop_back();
  trust.hub_url = std::move(url);
  // The tenant only fills in the instruction to re-enrol: unreadable is merely unknown.
  Result<std::string> site_cert = ReadOptional(credentials_dir, "site.crt");
  if (site_cert.ok() && !site_cert->empty()) {
    Result<crypto::CertificateInfo> info = crypto::ParseCertificatePem(*site_cert);
    if (info.ok()) trust.tenant = info->organization;
  }
  return trust;
}

Status VerifyReceiptFor(const Receipt& receipt, const ReceiptTrust& trust,
                        std::string_view site_id) {
  const std::string pin_path = JoinPath(trust.credentials_dir, kPinnedReceiptCertificateFile);
  if (trust.pinned_cert_pem.empty()) {
    const std::string why = "this site has no pinned receipt certificate (" + pin_path +
                            "): it was enrolled before its hub sent one, so no receipt can be "
                            "trusted; ";
    return ErrorWithReason(StatusCode::kFailedPrecondition, "receipt_certificate_missing",
                           why + ReEnrolInstruction(trust, site_id));
  }
  Status pinned = CheckReceiptCertificate(trust.pinned_cert_pem, trust.hub_ca_pem);
  if (!pinned.ok()) {
    return ErrorWithReason(StatusCode::kFailedPrecondition, "receipt_certificate_invalid",
                           pin_path + ": " + std::string(pinned.message()) + "; " +
                               ReEnrolInstruction(trust, site_id));
  }
  const std::string pinned_fingerprint = FingerprintOf(trust.pinned_cert_pem);
  const std::string signer_fingerprint = FingerprintOf(receipt.cert_pem);
  if (signer_fingerprint.empty() || signer_fingerprint != pinned_fingerprint) {
    Result<crypto::CertificateInfo> signer = crypto::ParseCertificatePem(receipt.cert_pem);
    const std::string who = signer.ok() ? "\"" + signer->common_name + "\"" : "an unreadable one";
    const std::string signed_by = "the receipt is signed by certificate " + who + " (sha256 " +
                                  signer_fingerprint.substr(0, 16) + ")";
    const std::string pinned_one = "the hub's receipt certificate this site pinned at enrolment (" +
                                   pin_path + ", sha256 " + pinned_fingerprint.substr(0, 16) + ")";
    return ErrorWithReason(
        StatusCode::kPermissionDenied, "receipt_cert",
        signed_by + ", not by " + pinned_one +
            ": a receipt from another hub, or signed with a site's key; nothing was deleted (a "
            "receipt written before the hub replaced its receipt certificate: re-enrol, or "
            "import the export at the hub again)");
  }
  if (receipt.site_id != site_id) {
    return ErrorWithReason(StatusCode::kPermissionDenied, "receipt_site_mismatch",
                           "the receipt is for \"" + receipt.site_id + "\", this site is \"" +
                               std::string(site_id) + "\"");
  }
  return Status();
}

}  // namespace outpost::sync
