// The receipt: the hub's signed list of the batch keys of one export file that it holds
// durably (FORMAT.md section 5). The hub writes it after `outpost hub import`; the site's
// `outpost import-receipt` verifies it against hub_ca.crt and its own site id and deletes
// exactly the records it recorded for those keys.
//
// Pure functions; thread-safe.
#ifndef OUTPOST_SYNC_RECEIPT_H_
#define OUTPOST_SYNC_RECEIPT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "sync/batch.h"

namespace outpost::sync {

struct Receipt {
  std::string cert_pem{};  // the signer's certificate (chains to hub_ca.crt)
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

// Checks that the signer's certificate chains to `hub_ca_pem` (receipt_cert: a receipt from
// another hub) and that the receipt is for `site_id` (receipt_site_mismatch).
// PermissionDenied.
Status VerifyReceiptFor(const Receipt& receipt, std::string_view hub_ca_pem,
                        std::string_view site_id);

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_RECEIPT_H_
