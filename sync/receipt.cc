#include "sync/receipt.h"

#include "sync/crypto.h"
#include "sync/wire.h"

namespace outpost::sync {
namespace {

constexpr char kMagic[4] = {'O', 'P', 'S', 'R'};
constexpr uint8_t kVersion = 1;

Status Bad(std::string_view reason, std::string_view detail) {
  return InvalidArgumentError(std::string(reason) + ": " + std::string(detail));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// 64 lowercase hex digits -> 32 bytes; false otherwise.
bool HexToRaw(std::string_view hex, std::string* raw) {
  if (hex.size() != 64) return false;
  raw->clear();
  for (size_t i = 0; i < 64; i += 2) {
    int hi = HexValue(hex[i]), lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    raw->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

std::string RawToHex(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : raw) {
    out.push_back(kHex[(static_cast<unsigned char>(c) >> 4) & 0xf]);
    out.push_back(kHex[static_cast<unsigned char>(c) & 0xf]);
  }
  return out;
}

}  // namespace

Result<std::string> WriteReceipt(const Receipt& receipt, std::string_view signer_key_pem) {
  ReceiptLimits limits;
  if (!IsValidName(receipt.site_id)) return Bad("receipt_malformed", "bad site name");
  if (receipt.export_id.size() != 16) return Bad("receipt_malformed", "export id must be 16 bytes");
  if (receipt.cert_pem.empty() || receipt.cert_pem.size() > limits.max_cert_bytes) {
    return Bad("receipt_cert", "certificate missing or too large");
  }
  if (receipt.keys.size() > limits.max_keys) return Bad("receipt_too_large", "too many keys");
  std::string out(kMagic, 4);
  wire::PutU8(out, kVersion);
  wire::PutU8(out, 0);
  wire::PutU16(out, 0);
  wire::PutU32(out, static_cast<uint32_t>(receipt.cert_pem.size()));
  out += receipt.cert_pem;
  wire::PutStr8(out, receipt.site_id);
  out += receipt.export_id;
  wire::PutU64(out, static_cast<uint64_t>(receipt.created_ms));
  wire::PutU32(out, static_cast<uint32_t>(receipt.keys.size()));
  std::string raw;
  for (const BatchKeyFields& k : receipt.keys) {
    if (!IsValidName(k.node_id) || !IsValidName(k.stream) || k.first_seq > k.last_seq ||
        !HexToRaw(k.content_sha256, &raw)) {
      return Bad("receipt_malformed", "bad batch key");
    }
    wire::PutStr8(out, k.node_id);
    wire::PutStr8(out, k.stream);
    wire::PutU64(out, k.first_seq);
    wire::PutU64(out, k.last_seq);
    out += raw;
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string sig, SignEd25519(signer_key_pem, out));
  wire::PutU16(out, static_cast<uint16_t>(sig.size()));
  out += sig;
  return out;
}

Result<Receipt> ReadReceipt(std::string_view bytes, const ReceiptLimits& limits) {
  if (bytes.size() > limits.max_file_bytes) {
    return ResourceExhaustedError("receipt_too_large: " + std::to_string(bytes.size()) + " bytes");
  }
  auto truncated = [] { return Bad("receipt_truncated", "the file ends inside a field"); };
  if (bytes.size() < 8) return truncated();
  if (bytes.substr(0, 4) != std::string_view(kMagic, 4)) {
    return Bad("receipt_bad_magic", "not a receipt");
  }
  wire::Reader r(bytes.substr(4));
  uint8_t version = 0, flags = 0;
  uint16_t reserved = 0;
  r.U8(version);
  r.U8(flags);
  r.U16(reserved);
  if (version != kVersion) {
    return Bad("receipt_version", "version " + std::to_string(version) + ", this reader knows 1");
  }
  if (flags != 0 || reserved != 0) return Bad("receipt_flags", "unknown flags");
  Receipt out;
  uint32_t cert_len = 0;
  std::string_view cert, site, id;
  if (!r.U32(cert_len)) return truncated();
  if (cert_len > limits.max_cert_bytes) {
    return ResourceExhaustedError("receipt_too_large: certificate of " +
                                  std::to_string(cert_len) + " bytes");
  }
  uint64_t created = 0;
  uint32_t count = 0;
  if (!r.Bytes(cert_len, cert) || !r.Str8(site) || !r.Bytes(16, id) || !r.U64(created) ||
      !r.U32(count)) {
    return truncated();
  }
  if (!IsValidName(site)) return Bad("receipt_malformed", "bad site name");
  if (count > limits.max_keys) {
    return ResourceExhaustedError("receipt_too_large: " + std::to_string(count) + " keys");
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
    if (!IsValidName(node) || !IsValidName(stream) || k.first_seq > k.last_seq) {
      return Bad("receipt_malformed", "bad batch key");
    }
    k.site_id = site;
    k.node_id = node;
    k.stream = stream;
    k.content_sha256 = RawToHex(sha);
    out.keys.push_back(std::move(k));
  }
  size_t signed_len = 4 + r.pos();
  uint16_t sig_len = 0;
  std::string_view sig;
  if (!r.U16(sig_len) || !r.Bytes(sig_len, sig)) return truncated();
  if (r.left() != 0) return Bad("receipt_trailing_bytes", "bytes after the signature");
  out.cert_pem = cert;
  out.site_id = site;
  out.export_id = id;
  out.created_ms = static_cast<int64_t>(created);
  Status verified = VerifyWithCertificate(cert, bytes.substr(0, signed_len), sig);
  if (!verified.ok()) {
    if (verified.code() == StatusCode::kInvalidArgument) {
      return Bad("receipt_cert", verified.message());
    }
    return PermissionDeniedError("receipt_signature: " + std::string(verified.message()));
  }
  return out;
}

Status VerifyReceiptFor(const Receipt& receipt, std::string_view hub_ca_pem,
                        std::string_view site_id) {
  Status chain = VerifyCertificateChain(receipt.cert_pem, hub_ca_pem);
  if (!chain.ok()) return PermissionDeniedError("receipt_cert: " + std::string(chain.message()));
  if (receipt.site_id != site_id) {
    return PermissionDeniedError("receipt_site_mismatch: the receipt is for \"" +
                                 receipt.site_id + "\", this site is \"" +
                                 std::string(site_id) + "\"");
  }
  return Status();
}

}  // namespace outpost::sync
