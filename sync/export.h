// The export file: many encoded batches of one site and node in one file signed with the
// site's key and carrying the site's certificate, for removable media (FORMAT.md section 4).
// The site writes it with `outpost export`; the hub reads it with `outpost hub import` and
// ingests each batch as if it had been uploaded.
//
//   OUTPOST_ASSIGN_OR_RETURN(std::string bytes, sync::WriteExport(file, site_key_pem));
//   OUTPOST_ASSIGN_OR_RETURN(sync::ExportFile got, sync::ReadExport(bytes));  // signature
//   OUTPOST_RETURN_IF_ERROR(sync::VerifyExportSite(got, site_ca_pem));           // who
//
// On removable media the signed file may be sealed to the hub's X25519 key (FORMAT.md
// section 6), so that a lost stick reveals nothing but its size:
//
//   OUTPOST_ASSIGN_OR_RETURN(std::string sealed, sync::SealExport(bytes, hub_export_pub));
//   if (sync::IsSealedExport(got_bytes)) {
//     OUTPOST_ASSIGN_OR_RETURN(got_bytes, sync::OpenSealedExport(got_bytes, export_key, {}));
//   }
//
// Pure functions; thread-safe.
#ifndef OUTPOST_SYNC_EXPORT_H_
#define OUTPOST_SYNC_EXPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "sync/batch.h"

namespace outpost::sync {

struct ExportFile {
  std::string cert_pem{};   // the site's certificate (site.crt)
  std::string site_id{};
  std::string node_id{};
  int64_t created_ms = 0;
  std::string export_id{};  // 16 raw bytes
  std::vector<std::string> batches{};  // encoded batches (batch.h)
};

struct ExportLimits {
  uint64_t max_file_bytes = uint64_t{4} << 30;
  uint64_t max_cert_bytes = 16 * 1024;
  uint64_t max_batches = 100'000;
  // Each batch is also held to DecodeLimits::max_encoded_bytes when the caller decodes it.
  uint64_t max_batch_bytes = uint64_t{16} << 20;
};

// Encodes and signs `file` with the site's PEM Ed25519 private key. InvalidArgument for bad
// names, an export id that is not 16 bytes, or over the limits.
Result<std::string> WriteExport(const ExportFile& file, std::string_view key_pem);

// Parses an export file and checks its signature against the certificate it carries. It does
// not decode the batches (DecodeBatch does, each under its limits) nor trust the certificate
// (VerifyExportSite). Errors: InvalidArgument / ResourceExhausted / PermissionDenied whose
// message begins with a FORMAT.md reason code (export_truncated, export_bad_magic,
// export_version, export_flags, export_too_large, export_cert, export_signature,
// export_trailing_bytes).
Result<ExportFile> ReadExport(std::string_view bytes, const ExportLimits& limits = {});

// Checks that the export's certificate chains to `site_ca_pem` and names the export's site
// (CN = site_id): PermissionDenied "export_cert: ..." or "export_site_mismatch: ...".
Status VerifyExportSite(const ExportFile& file, std::string_view site_ca_pem);

// Bytes a sealed file adds to the signed file inside it: the 92-byte header and the tag.
inline constexpr size_t kSealedOverheadBytes = 92 + 16;

// The id a sealed file names its recipient by (FORMAT.md section 6), as lowercase hex: the
// SHA-256 of the raw X25519 public key in `public_pem` (a public or a private key PEM).
// InvalidArgument for a PEM that holds no X25519 key.
Result<std::string> ExportKeyIdHex(std::string_view public_pem);

// Seals `signed_export` (the bytes WriteExport returned) to the hub whose X25519 public key
// is `hub_public_pem` (SubjectPublicKeyInfo PEM, the hub's export.pub): a fresh ephemeral
// key and nonce each call. InvalidArgument "sealed_bad_key: ..." for a PEM that is not an
// X25519 key; ResourceExhausted "sealed_too_large: ..." over ExportLimits::max_file_bytes.
Result<std::string> SealExport(std::string_view signed_export, std::string_view hub_public_pem);

// Whether `bytes` begin as a sealed export file does (magic "OPSE"); a plain export begins
// "OPSX". Says nothing of whether the rest is sound.
bool IsSealedExport(std::string_view bytes);

// Checks and decrypts a sealed export file with the hub's X25519 private key (PKCS#8 PEM,
// the hub's export.key) and returns the signed export file inside, for ReadExport (which
// this does not call). Errors, each message beginning with its reason code (FORMAT.md
// section 6): InvalidArgument sealed_truncated, sealed_bad_magic, sealed_version,
// sealed_flags, sealed_trailing_bytes; ResourceExhausted sealed_too_large (ciphertext over
// `limits.max_file_bytes`); PermissionDenied sealed_wrong_key (sealed to another key, or
// `hub_private_pem` is no X25519 key) and sealed_corrupt (authentication failed).
Result<std::string> OpenSealedExport(std::string_view bytes, std::string_view hub_private_pem,
                                     const ExportLimits& limits = {});

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_EXPORT_H_
