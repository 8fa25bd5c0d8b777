// The receipt: the hub's signed list of the batch keys of one export file that it holds
// durably (FORMAT.md section 5). The hub writes it after `outpost hub import`, signed with its
// receipt key; the site's `outpost import-receipt` accepts it only when its certificate is the
// receipt certificate the site pinned at enrolment (hub_receipt.crt), and then deletes exactly
// the records it recorded for those keys. Chaining to the hub CA is not enough: every site
// certificate chains there too.
//
// Pure functions except LoadReceiptTrust, which reads files; thread-safe.
#ifndef OUTPOST_SYNC_RECEIPT_H_
#define OUTPOST_SYNC_RECEIPT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "sync/batch.h"

namespace outpost::sync {

// id-kp-outpostReceiptSigning (FORMAT.md section 5): the one key purpose of the hub's receipt
// certificate, under Outpost's private arc 2.25.<UUID 25698257-d9d5-441e-82e8-3d7a8b67f967>.
inline constexpr char kReceiptSigningOid[] = "2.25.49729270687702727671154857416644360551.1.1";

// The pinned receipt certificate in a site's credentials folder (hub/FORMAT.md section 4).
inline constexpr char kPinnedReceiptCertificateFile[] = "hub_receipt.crt";

struct Receipt {
  std::string cert_pem{};  // the signer's certificate (the hub's receipt certificate)
  std::string site_id{};
  std::string export_id{};  // 16 raw bytes, the export this receipt answers
  int64_t created_ms = 0;
  // Keys of the batches held; site_id of each is the receipt's.
  std::vector<BatchKeyFields> keys{};
};

struct ReceiptLimits {
  uint64_t max_file_bytes = uint64_t{64} << 20;
  uint64_t max_cert_bytes = 16 * 1024;
  uint64_t max_keys = 1'000'000;
};

// Encodes and signs `receipt` with the signer's PEM Ed25519 private key. InvalidArgument for
// bad names or hashes, an export id that is not 16 bytes, or over the limits.
Result<std::string> WriteReceipt(const Receipt& receipt, std::string_view signer_key_pem);

// Parses a receipt and checks its signature against the certificate it carries. Errors
// begin with a FORMAT.md reason code (receipt_truncated, receipt_bad_magic, receipt_version,
// receipt_flags, receipt_too_large, receipt_cert, receipt_signature, receipt_trailing_bytes).
Result<Receipt> ReadReceipt(std::string_view bytes, const ReceiptLimits& limits = {});

// OK when `cert_pem` is a receipt certificate of the hub whose CA is `hub_ca_pem`: it chains
// to that CA and is valid now, its key is Ed25519, and its extendedKeyUsage holds exactly
// kReceiptSigningOid (no TLS purpose, nothing else). PermissionDenied otherwise, and
// InvalidArgument for what does not parse, with a message saying which check failed and no
// reason of its own: callers give theirs (enrolment: bad_receipt_certificate; a site's pin:
// receipt_certificate_invalid).
Status CheckReceiptCertificate(std::string_view cert_pem, std::string_view hub_ca_pem);

// What a site trusts a receipt by: its hub's CA and the receipt certificate it pinned at
// enrolment, both from its credentials folder, and what the message telling it to re-enrol
// needs.
struct ReceiptTrust {
  std::string hub_ca_pem{};
  // hub_receipt.crt, as enrolment wrote it; empty when the site has none (enrolled before
  // hubs sent their receipt certificate, or by a hub that sends none).
  std::string pinned_cert_pem{};
  std::string credentials_dir{};
  std::string hub_url{};  // hub.url; "" when absent
  std::string tenant{};   // site.crt's O; "" when unreadable
};

// Reads hub_ca.crt (required: NotFound or I/O errors as base/file.h's ReadFile),
// hub_receipt.crt, hub.url and site.crt (each optional) from `credentials_dir`.
Result<ReceiptTrust> LoadReceiptTrust(const std::string& credentials_dir);

// Checks, in FORMAT.md section 5's order, before anything is deleted: a pinned receipt
// certificate exists (FailedPrecondition receipt_certificate_missing, whose message says how
// to re-enrol this site); it is a receipt certificate of the hub CA (FailedPrecondition
// receipt_certificate_invalid, likewise); the receipt's certificate is the pinned one, by the
// SHA-256 of its DER (PermissionDenied receipt_cert: another hub's receipt, or one signed with
// a site's key); the receipt is for `site_id` (PermissionDenied receipt_site_mismatch).
// `receipt` must come from ReadReceipt, which verified its signature with the key of the
// certificate it carries, so that an OK here means the pinned key signed it.
Status VerifyReceiptFor(const Receipt& receipt, const ReceiptTrust& trust,
                        std::string_view site_id);

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_RECEIPT_H_
