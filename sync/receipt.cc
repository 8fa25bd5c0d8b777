#include "sync/receipt.h"

#include "base/coding.h"
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

Status VerifyReceiptFor(const Receipt& receipt, std::string_view hub_ca_pem,
                        std::string_view site_id) {
  Status chain = VerifyCertificateChain(receipt.cert_pem, hub_ca_pem);
  if (!chain.ok())
    return ErrorWithReason(StatusCode::kPermissionDenied, "receipt_cert",
                           std::string(chain.message()));
  if (receipt.site_id != site_id) {
    return ErrorWithReason(StatusCode::kPermissionDenied, "receipt_site_mismatch",
                           "the receipt is for \"" + receipt.site_id + "\", this site is \"" +
                               std::string(site_id) + "\"");
  }
  return Status();
}

}  // namespace outpost::sync
