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

bool IsNameChar(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }

}  // namespace

std::string_view ReasonName(Reason reason) { return kNames[static_cast<size_t>(reason)]; }

Status ReasonError(Reason reason, std::string_view message) {
  std::string text = std::string(ReasonName(reason)) + ": " + std::string(message);
  switch (reason) {
    case Reason::kIo:
      return UnavailableError(text);
    case Reason::kSizeLimit:
      return ResourceExhaustedError(text);
    case Reason::kRootExpired:
    case Reason::kExpired:
    case Reason::kVersionRollback:
    case Reason::kWrongSite:
    case Reason::kHealthCheck:
      return FailedPreconditionError(text);
    case Reason::kRootSignature:
    case Reason::kSignatureThreshold:
      return PermissionDeniedError(text);
    default:
      return DataLossError(text);
  }
}

std::optional<Reason> ReasonOf(const Status& status) {
  if (status.ok()) return std::nullopt;
  std::string_view m = status.message();
  // The first known "NAME:" that starts the message or follows a space, so context
  // prepended with WithContext ("verifying x: NAME: ...") is skipped.
  for (size_t i = 0; i < m.size();) {
    size_t j = i;
    while (j < m.size() && IsNameChar(m[j])) ++j;
    if (j > i && j < m.size() && m[j] == ':' &&
        (i == 0 || m[i - 1] == ' ')) {
      std::string_view word = m.substr(i, j - i);
      for (size_t r = 0; r < kCount; ++r) {
        if (kNames[r] == word) return static_cast<Reason>(r);
      }
    }
    i = j > i ? j : i + 1;
  }
  return std::nullopt;
}

}  // namespace outpost::bundle
