// `outpost hub import`: an export file carried across the air gap (sync/FORMAT.md section 4),
// first opened with the hub's export key when it is sealed to it (section 6), is verified —
// its signature, its certificate against the hub CA and the site's current credential, as
// mTLS would — and each batch is ingested exactly as an upload would be (the
// same policy check, audit chain and idempotency, so a replayed export stores nothing
// twice). The hub then writes a receipt (sync/FORMAT.md section 5) signed with its receipt
// key, listing the keys of the batches it holds.
#ifndef OUTPOST_HUB_IMPORT_H_
#define OUTPOST_HUB_IMPORT_H_

#include <cstdint>
#include <string>

#include "base/status.h"
#include "hub/ca.h"
#include "hub/ingest.h"

namespace outpost::hub {

struct ImportSummary {
  size_t batches = 0;            // in the file
  size_t batches_stored = 0;     // new
  size_t batches_duplicate = 0;  // held before (a replayed export)
  uint64_t records_stored = 0;
  std::string site_id{};
  bool sealed = false;           // the file was sealed to this hub's export key
};

// Imports `export_path` and writes the receipt to `receipt_path` (atomically). Errors, each
// message beginning with its reason code: a sealed file's (sealed_wrong_key when it is
// sealed to another hub's key or this hub has none, sealed_corrupt, sealed_truncated, ...),
// the export's own (export_signature, export_cert, export_site_mismatch, ...): for both,
// nothing is stored and no receipt written; the credential's (site_revoked,
// credential_superseded, site_unknown), and a refused batch's (policy reasons,
// batch_conflict, audit_*): the batches before it stay stored and the receipt lists them,
// then the error is returned.
Result<ImportSummary> ImportExport(HubService& service, const HubCa& ca,
                                   const std::string& export_path,
                                   const std::string& receipt_path);

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_IMPORT_H_
