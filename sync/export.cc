#include "sync/export.h"

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/names.h"
#include "sync/crypto.h"
#include "sync/signed_file.h"
#include "sync/wire.h"

namespace outpost::sync {
namespace {

constexpr SignedFileKind kExport{.magic = "OPSX", .prefix = "export", .noun = "an export file"};

// The sealed envelope (FORMAT.md section 6).
constexpr std::string_view kSealedMagic = "OPSE";
constexpr uint8_t kSealedVersion = 1;
constexpr size_t kKeyIdBytes = 32;
constexpr size_t kX25519Bytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr size_t kSealedHeaderBytes = 4 + 1 + 1 + 2 + kKeyIdBytes + kX25519Bytes + kNonceBytes + 8;
static_assert(kSealedHeaderBytes + kTagBytes == kSealedOverheadBytes);
constexpr std::string_view kSealedInfo = "outpost export v1";

// The AES-256 key of one sealed file: HKDF-SHA256 over the X25519 shared secret.
Result<std::string> SealedFileKey(std::string_view shared_secret, std::string_view ephemeral_pub,
                                  std::string_view recipient_pub) {
  std::string info(kSealedInfo);
  info.append(ephemeral_pub);
  info.append(recipient_pub);
  return HkdfSha256(shared_secret, "", info, 32);
}

Status Bad(std::string_view reason, std::string_view detail) {
  return ErrorWithReason(StatusCode::kInvalidArgument, reason, detail);
}

}  // namespace

Result<std::string> WriteExport(const ExportFile& file, std::string_view key_pem) {
  ExportLimits limits;
  if (!SiteId::IsValid(file.site_id) || !NodeId::IsValid(file.node_id)) {
    return Bad("export_malformed", "bad site or node name");
  }
  if (file.export_id.size() != 16) return Bad("export_malformed", "export id must be 16 bytes");
  if (file.cert_pem.empty() || file.cert_pem.size() > limits.max_cert_bytes) {
    return Bad("export_cert", "certificate missing or too large");
  }
  if (file.batches.size() > limits.max_batches) return Bad("export_too_large", "too many batches");
  std::string out = BeginSignedFile(kExport, file.cert_pem);
  wire::PutStr8(out, file.site_id);
  wire::PutStr8(out, file.node_id);
  PutU64LE(out, static_cast<uint64_t>(file.created_ms));
  out += file.export_id;
  PutU32LE(out, static_cast<uint32_t>(file.batches.size()));
  for (const std::string& b : file.batches) {
    if (b.size() > limits.max_batch_bytes) return Bad("export_too_large", "a batch is too large");
    PutU32LE(out, static_cast<uint32_t>(b.size()));
    out += b;
  }
  if (out.size() + 66 > limits.max_file_bytes) return Bad("export_too_large", "file too large");
  OUTPOST_RETURN_IF_ERROR(FinishSignedFile(out, key_pem));
  return out;
}

Result<ExportFile> ReadExport(std::string_view bytes, const ExportLimits& limits) {
  auto truncated = [] { return SignedFileTruncated(kExport); };
  wire::Reader r({});
  std::string_view cert, site, node, id;
  OUTPOST_RETURN_IF_ERROR(
      ReadSignedFileHead(bytes, kExport, limits.max_file_bytes, limits.max_cert_bytes, r, cert));
  ExportFile f;
  uint64_t created = 0;
  uint32_t count = 0;
  if (!r.Str8(site) || !r.Str8(node) || !r.U64(created) || !r.Bytes(16, id) || !r.U32(count)) {
    return truncated();
  }
  if (!SiteId::IsValid(site) || !NodeId::IsValid(node)) return Bad("export_malformed", "bad name");
  if (count > limits.max_batches) {
    return ErrorWithReason(StatusCode::kResourceExhausted, "export_too_large",
                           std::to_string(count) + " batches");
  }
  if (r.left() / 4 < count) return truncated();
  f.batches.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len = 0;
    std::string_view b;
    if (!r.U32(len)) return truncated();
    if (len > limits.max_batch_bytes) {
      return ErrorWithReason(StatusCode::kResourceExhausted, "export_too_large",
                             "a batch of " + std::to_string(len) + " bytes");
    }
    if (!r.Bytes(len, b)) return truncated();
    f.batches.emplace_back(b);
  }
  OUTPOST_RETURN_IF_ERROR(VerifySignedFileTail(bytes, kExport, r, cert));
  f.cert_pem = cert;
  f.site_id = site;
  f.node_id = node;
  f.created_ms = static_cast<int64_t>(created);
  f.export_id = id;
  return f;
}

Result<std::string> ExportKeyIdHex(std::string_view public_pem) {
  OUTPOST_ASSIGN_OR_RETURN(std::string raw, X25519RawPublicKey(public_pem));
  return crypto::Sha256Hex(raw);
}

Result<std::string> SealExport(std::string_view signed_export, std::string_view hub_public_pem) {
  Result<std::string> recipient = X25519RawPublicKey(hub_public_pem);
  if (!recipient.ok()) return Bad("sealed_bad_key", recipient.status().message());
  if (signed_export.size() > ExportLimits{}.max_file_bytes) {
    return ErrorWithReason(StatusCode::kResourceExhausted, "sealed_too_large",
                           std::to_string(signed_export.size()) + " bytes");
  }
  OUTPOST_ASSIGN_OR_RETURN(X25519KeyPem ephemeral, GenerateX25519Key());
  OUTPOST_ASSIGN_OR_RETURN(std::string ephemeral_pub, X25519RawPublicKey(ephemeral.public_pem));
  OUTPOST_ASSIGN_OR_RETURN(std::string shared,
                           X25519SharedSecret(ephemeral.private_pem, *recipient));
  OUTPOST_ASSIGN_OR_RETURN(std::string key, SealedFileKey(shared, ephemeral_pub, *recipient));
  OUTPOST_ASSIGN_OR_RETURN(std::string nonce, crypto::RandomBytes(kNonceBytes));
  std::string out;
  out.reserve(kSealedHeaderBytes + signed_export.size() + kTagBytes);
  out += kSealedMagic;
  wire::PutU8(out, kSealedVersion);
  wire::PutU8(out, 0);   // flags
  PutU16LE(out, 0);      // reserved
  out += crypto::Sha256(*recipient);
  out += ephemeral_pub;
  out += nonce;
  PutU64LE(out, signed_export.size());
  OUTPOST_ASSIGN_OR_RETURN(std::string sealed, AesGcmSeal(key, nonce, out, signed_export));
  out += sealed;
  return out;
}

bool IsSealedExport(std::string_view bytes) { return bytes.substr(0, 4) == kSealedMagic; }

Result<std::string> OpenSealedExport(std::string_view bytes, std::string_view hub_private_pem,
                                     const ExportLimits& limits) {
  auto truncated = [] { return Bad("sealed_truncated", "the file ends inside a field"); };
  wire::Reader r(bytes);
  std::string_view magic, key_id, ephemeral_pub, nonce;
  uint8_t version = 0, flags = 0;
  uint16_t reserved = 0;
  uint64_t length = 0;
  if (!r.Bytes(4, magic)) return truncated();
  if (magic != kSealedMagic) return Bad("sealed_bad_magic", "not a sealed export file");
  if (!r.U8(version) || !r.U8(flags) || !r.U16(reserved)) return truncated();
  if (version != kSealedVersion) {
    return Bad("sealed_version", "version " + std::to_string(version) + " is not known");
  }
  if (flags != 0 || reserved != 0) return Bad("sealed_flags", "unknown flags or reserved bits");
  if (!r.Bytes(kKeyIdBytes, key_id) || !r.Bytes(kX25519Bytes, ephemeral_pub) ||
      !r.Bytes(kNonceBytes, nonce) || !r.U64(length)) {
    return truncated();
  }
  if (length > limits.max_file_bytes) {
    return ErrorWithReason(StatusCode::kResourceExhausted, "sealed_too_large",
                           "a ciphertext of " + std::to_string(length) + " bytes");
  }
  if (r.left() < kTagBytes || r.left() - kTagBytes < length) return truncated();
  if (r.left() - kTagBytes > length) {
    return Bad("sealed_trailing_bytes", std::to_string(r.left() - kTagBytes - length) +
                                            " bytes after the tag");
  }
  Result<std::string> own = X25519RawPublicKey(hub_private_pem);
  if (!own.ok()) {
    return ErrorWithReason(
        StatusCode::kPermissionDenied, "sealed_wrong_key",
        "the hub's export key is unusable: " + std::string(own.status().message()));
  }
  if (crypto::Sha256(*own) != key_id) {
    return ErrorWithReason(StatusCode::kPermissionDenied, "sealed_wrong_key",
                           "the file is sealed to key " + HexEncode(key_id) + ", this hub's is " +
                               HexEncode(crypto::Sha256(*own)));
  }
  Result<std::string> shared = X25519SharedSecret(hub_private_pem, ephemeral_pub);
  if (shared.status().code() == StatusCode::kInvalidArgument) {
    return ErrorWithReason(
        StatusCode::kPermissionDenied, "sealed_wrong_key",
        "the hub's export key is unusable: " + std::string(shared.status().message()));
  }
  if (!shared.ok()) {
    return ErrorWithReason(StatusCode::kPermissionDenied, "sealed_corrupt",
                           std::string(shared.status().message()));
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string key, SealedFileKey(*shared, ephemeral_pub, *own));
  Result<std::string> plain = AesGcmOpen(key, nonce, bytes.substr(0, kSealedHeaderBytes),
                                         bytes.substr(kSealedHeaderBytes));
  if (!plain.ok()) {
    if (plain.status().code() == StatusCode::kPermissionDenied) {
      return ErrorWithReason(StatusCode::kPermissionDenied, "sealed_corrupt",
                             "authentication failed (the file was "
                             "altered or damaged)");
    }
    return plain.status();
  }
  return plain;
}

Status VerifyExportSite(const ExportFile& file, std::string_view site_ca_pem) {
  Status chain = VerifyCertificateChain(file.cert_pem, site_ca_pem);
  if (!chain.ok())
    return ErrorWithReason(StatusCode::kPermissionDenied, "export_cert",
                           std::string(chain.message()));
  OUTPOST_ASSIGN_OR_RETURN(CertificateNames names, ReadCertificateNames(file.cert_pem));
  if (names.common_name != file.site_id) {
    return ErrorWithReason(StatusCode::kPermissionDenied, "export_site_mismatch",
                           "the certificate is for \"" + names.common_name +
                               "\", the file names \"" + file.site_id + "\"");
  }
  return Status();
}

}  // namespace outpost::sync
