// `outpost hub import`: verify an export file, ingest its batches, write a signed receipt.
#include "hub/import.h"

#include "base/clock.h"
#include "base/file.h"
#include "base/logging.h"
#include "sync/export.h"
#include "sync/receipt.h"

namespace outpost::hub {
namespace {

Status WithCode(StatusCode code, std::string_view reason, std::string_view detail) {
  return ErrorWithReason(code, reason, detail);
}

}  // namespace

Result<ImportSummary> ImportExport(HubService& service, const HubCa& ca,
                                   const std::string& export_path,
                                   const std::string& receipt_path) {
  const sync::ExportLimits limits;
  OUTPOST_ASSIGN_OR_RETURN(
      std::string bytes,
      ReadFile(export_path, limits.max_file_bytes + sync::kSealedOverheadBytes + 1));
  // A sealed file is opened with this hub's export key first; a file sealed to another key,
  // or altered, stops here with its reason and nothing is stored.
  const bool sealed = sync::IsSealedExport(bytes);
  if (sealed) {
    Result<std::string> key_pem = ReadFile(ca.export_key_path(), 1 << 16);
    if (!key_pem.ok()) {
      return ErrorWithReason(
          StatusCode::kPermissionDenied, "sealed_wrong_key",
          "this hub has no export key: " + std::string(key_pem.status().message()));
    }
    OUTPOST_ASSIGN_OR_RETURN(bytes, sync::OpenSealedExport(bytes, *key_pem, limits));
  }
  OUTPOST_ASSIGN_OR_RETURN(sync::ExportFile file, sync::ReadExport(bytes, limits));
  OUTPOST_RETURN_IF_ERROR(sync::VerifyExportSite(file, ca.ca_pem()));
  // The certificate chains to our CA (checked above); the rest as for mTLS.
  OUTPOST_ASSIGN_OR_RETURN(CertInfo cert, ParseCertificatePem(file.cert_pem));
  HubResponse refusal;
  Result<Caller> caller = service.Authenticate(
      PeerCredential{.presented = true, .verified = true, .certificate = cert}, &refusal);
  if (!caller.ok()) {
    return PermissionDeniedError(std::string(caller.status().message()) +
                                 ": the export's credential is refused");
  }
  ImportSummary summary;
  summary.site_id = caller->site_id;
  summary.sealed = sealed;
  summary.batches = file.batches.size();
  sync::Receipt receipt{.site_id = file.site_id,
                        .export_id = file.export_id,
                        .created_ms = UnixMillis(SystemClock().Now())};
  Status failed;
  const sync::DecodeLimits decode_limits;
  for (size_t i = 0; i < file.batches.size(); ++i) {
    Result<sync::DecodedBatch> decoded = sync::DecodeBatch(file.batches[i], decode_limits);
    if (!decoded.ok()) {
      failed = decoded.status().WithContext("batch " + std::to_string(i));
      break;
    }
    BatchOutcome outcome = service.IngestDecoded(*caller, *decoded, "import_refused");
    if (!outcome.accepted()) {
      failed = WithCode(outcome.http_status == 503 ? StatusCode::kUnavailable
                                                   : StatusCode::kFailedPrecondition,
                        outcome.reason,
                        "batch " + std::to_string(i) + " refused: " + outcome.error);
      break;
    }
    if (outcome.result.outcome == IngestOutcome::kDuplicate) {
      ++summary.batches_duplicate;
    } else {
      ++summary.batches_stored;
      summary.records_stored += outcome.result.records_stored;
    }
    receipt.keys.push_back(decoded->key);
  }
  OUTPOST_ASSIGN_OR_RETURN(receipt.cert_pem, ReadFile(ca.receipt_cert_path(), 1 << 20));
  OUTPOST_ASSIGN_OR_RETURN(std::string key_pem, ReadFile(ca.receipt_key_path(), 1 << 20));
  // An export with no batches still gets its receipt: the site is waiting for one, and it
  // acknowledges the export file itself (and deletes nothing).
  if (!receipt.keys.empty() || failed.ok()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string receipt_bytes, sync::WriteReceipt(receipt, key_pem));
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(receipt_path, receipt_bytes));
  }
  OUTPOST_LOG(kInfo) << "export imported" << Field("file", export_path)
                     << Field("site", summary.site_id) << Field("sealed", sealed)
                     << Field("batches", summary.batches)
                     << Field("stored", summary.batches_stored)
                     << Field("duplicate", summary.batches_duplicate)
                     << Field("receipt_keys", receipt.keys.size());
  if (!failed.ok()) return failed;
  return summary;
}

}  // namespace outpost::hub
