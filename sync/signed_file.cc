#include "sync/signed_file.h"

#include <cstdint>

#include "base/coding.h"
#include "sync/crypto.h"

namespace outpost::sync {
namespace {

constexpr uint8_t kVersion = 1;

std::string Reason(const SignedFileKind& kind, std::string_view reason) {
  return std::string(kind.prefix) + "_" + std::string(reason);
}

}  // namespace

Status SignedFileError(const SignedFileKind& kind, std::string_view reason,
                       std::string_view detail) {
  return ErrorWithReason(StatusCode::kInvalidArgument, Reason(kind, reason), detail);
}

Status SignedFileTruncated(const SignedFileKind& kind) {
  return SignedFileError(kind, "truncated", "the file ends inside a field");
}

std::string BeginSignedFile(const SignedFileKind& kind, std::string_view cert_pem) {
  std::string out(kind.magic);
  wire::PutU8(out, kVersion);
  wire::PutU8(out, 0);
  PutU16LE(out, 0);
  PutU32LE(out, static_cast<uint32_t>(cert_pem.size()));
  out += cert_pem;
  return out;
}

Status FinishSignedFile(std::string& out, std::string_view key_pem) {
  OUTPOST_ASSIGN_OR_RETURN(std::string sig, SignEd25519(key_pem, out));
  PutU16LE(out, static_cast<uint16_t>(sig.size()));
  out += sig;
  return Status();
}

Status ReadSignedFileHead(std::string_view bytes, const SignedFileKind& kind,
                          size_t max_file_bytes, size_t max_cert_bytes, wire::Reader& reader,
                          std::string_view& cert) {
  if (bytes.size() > max_file_bytes) {
    return ErrorWithReason(StatusCode::kResourceExhausted, Reason(kind, "too_large"),
                           std::to_string(bytes.size()) + " bytes");
  }
  if (bytes.size() < 8) return SignedFileTruncated(kind);
  if (bytes.substr(0, 4) != kind.magic) {
    return SignedFileError(kind, "bad_magic", "not " + std::string(kind.noun));
  }
  reader = wire::Reader(bytes);
  std::string_view magic;
  uint8_t version = 0, flags = 0;
  uint16_t reserved = 0;
  reader.Bytes(4, magic);
  reader.U8(version);
  reader.U8(flags);
  reader.U16(reserved);
  if (version != kVersion) {
    return SignedFileError(kind, "version",
                           "version " + std::to_string(version) + ", this reader knows 1");
  }
  if (flags != 0 || reserved != 0) return SignedFileError(kind, "flags", "unknown flags");
  uint32_t cert_len = 0;
  if (!reader.U32(cert_len)) return SignedFileTruncated(kind);
  if (cert_len > max_cert_bytes) {
    return ErrorWithReason(StatusCode::kResourceExhausted, Reason(kind, "too_large"),
                           "certificate of " + std::to_string(cert_len) + " bytes");
  }
  if (!reader.Bytes(cert_len, cert)) return SignedFileTruncated(kind);
  return Status();
}

Status VerifySignedFileTail(std::string_view bytes, const SignedFileKind& kind,
                            wire::Reader& reader, std::string_view cert) {
  const size_t signed_len = reader.pos();
  uint16_t sig_len = 0;
  std::string_view sig;
  if (!reader.U16(sig_len) || !reader.Bytes(sig_len, sig)) return SignedFileTruncated(kind);
  if (reader.left() != 0) {
    return SignedFileError(kind, "trailing_bytes", "bytes after the signature");
  }
  Status verified = VerifyWithCertificate(cert, bytes.substr(0, signed_len), sig);
  if (!verified.ok()) {
    if (verified.code() == StatusCode::kInvalidArgument) {
      return SignedFileError(kind, "cert", verified.message());
    }
    return ErrorWithReason(StatusCode::kPermissionDenied, Reason(kind, "signature"),
                           verified.message());
  }
  return Status();
}

}  // namespace outpost::sync
