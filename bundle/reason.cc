#include "bundle/reason.h"

#include <string>

namespace outpost::bundle {
namespace {

constexpr std::string_view kNames[] = {
    "IO",                 "TAR_MALFORMED",    "TAR_TRUNCATED",    "TRAILING_DATA",
    "UNSAFE_ENTRY_TYPE",  "UNSAFE_PATH",      "DUPLICATE_ENTRY",  "SIZE_LIMIT",
    "BAD_LAYOUT",         "METADATA_MISSING", "METADATA_MALFORMED", "ROOT_CHAIN",
    "ROOT_SIGNATURE",     "ROOT_EXPIRED",     "SIGNATURE_THRESHOLD", "EXPIRED",
    "VERSION_ROLLBACK",   "WRONG_SITE",       "TARGET_UNLISTED",  "TARGET_LENGTH",
    "TARGET_HASH",        "TARGET_MISSING",   "HEALTH_CHECK",
};
constexpr size_t kCount = sizeof(kNames) / sizeof(kNames[0]);
static_assert(kCount == static_cast<size_t>(Reason::kHealthCheck) + 1);


}  // namespace

std::string_view ReasonName(Reason reason) { return kNames[static_cast<size_t>(reason)]; }

namespace {

StatusCode CodeFor(Reason reason) {
  switch (reason) {
    case Reason::kIo:
      return StatusCode::kUnavailable;
    case Reason::kSizeLimit:
      return StatusCode::kResourceExhausted;
    case Reason::kRootExpired:
    case Reason::kExpired:
    case Reason::kVersionRollback:
    case Reason::kWrongSite:
    case Reason::kHealthCheck:
      return StatusCode::kFailedPrecondition;
    case Reason::kRootSignature:
    case Reason::kSignatureThreshold:
      return StatusCode::kPermissionDenied;
    default:
      return StatusCode::kDataLoss;
  }
}

}  // namespace

Status ReasonError(Reason reason, std::string_view message) {
  std::string text = std::string(ReasonName(reason)) + ": " + std::string(message);
  return Status(CodeFor(reason), text).WithReason(ReasonName(reason));
}

std::optional<Reason> ReasonOf(const Status& status) {
  if (status.ok() || !status.has_reason()) return std::nullopt;
  for (size_t r = 0; r < kCount; ++r) {
    if (kNames[r] == status.reason()) return static_cast<Reason>(r);
  }
  return std::nullopt;
}

}  // namespace outpost::bundle
