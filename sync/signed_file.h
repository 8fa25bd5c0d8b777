// The frame that export files and receipts share (FORMAT.md sections 3 and 5): a head of
// magic, version 1, flags 0, reserved 0 and the signer's certificate; the format's own fields;
// then the signer's Ed25519 signature over everything before it, behind its u16 length.
// Reason codes are the format's prefix ("export", "receipt") + "_truncated", "_bad_magic",
// "_version", "_flags", "_too_large", "_cert", "_signature", "_trailing_bytes".
#ifndef OUTPOST_SYNC_SIGNED_FILE_H_
#define OUTPOST_SYNC_SIGNED_FILE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"
#include "sync/wire.h"

namespace outpost::sync {

struct SignedFileKind {
  std::string_view magic;   // 4 bytes
  std::string_view prefix;  // of the reason codes: "export" or "receipt"
  std::string_view noun;    // for messages: "an export file", "a receipt"
};

// InvalidArgument "<prefix>_<reason>: <detail>".
Status SignedFileError(const SignedFileKind& kind, std::string_view reason,
                       std::string_view detail);
// InvalidArgument "<prefix>_truncated: the file ends inside a field".
Status SignedFileTruncated(const SignedFileKind& kind);

// The head of a new file, to which the caller appends its fields.
std::string BeginSignedFile(const SignedFileKind& kind, std::string_view cert_pem);
// Signs `out` with `key_pem` (PKCS#8 PEM of an Ed25519 key) and appends the signature.
Status FinishSignedFile(std::string& out, std::string_view key_pem);

// Reads the head of `bytes` (at most `max_file_bytes`, a certificate of at most
// `max_cert_bytes`): `reader` then stands on the first of the format's fields and `cert`
// holds the certificate.
Status ReadSignedFileHead(std::string_view bytes, const SignedFileKind& kind,
                          size_t max_file_bytes, size_t max_cert_bytes, wire::Reader& reader,
                          std::string_view& cert);
// Reads the signature where `reader` stands (nothing may follow it) and verifies it against
// `cert` over every byte before it.
Status VerifySignedFileTail(std::string_view bytes, const SignedFileKind& kind,
                            wire::Reader& reader, std::string_view cert);

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_SIGNED_FILE_H_
