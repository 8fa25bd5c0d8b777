// The stable reason codes of every bundle refusal (FORMAT.md section 6). A refusal is a
// Status whose reason() is the reason's name ("TARGET_HASH") and whose message, for people,
// starts with the same name and a colon; the status code follows from the reason
// (ReasonError). Names never change: they are recorded in events sent to the hub.
#ifndef OUTPOST_BUNDLE_REASON_H_
#define OUTPOST_BUNDLE_REASON_H_

#include <optional>
#include <string_view>

#include "base/status.h"

namespace outpost::bundle {

enum class Reason {
  kIo,
  kTarMalformed,
  kTarTruncated,
  kTrailingData,
  kUnsafeEntryType,
  kUnsafePath,
  kDuplicateEntry,
  kSizeLimit,
  kBadLayout,
  kMetadataMissing,
  kMetadataMalformed,
  kRootChain,
  kRootSignature,
  kRootExpired,
  kSignatureThreshold,
  kExpired,
  kVersionRollback,
  kWrongSite,
  kTargetUnlisted,
  kTargetLength,
  kTargetHash,
  kTargetMissing,
  // Not a verification failure: the installed model failed its health check and the
  // install was undone (FailedPrecondition).
  kHealthCheck,
};

// "TARGET_HASH" etc.
std::string_view ReasonName(Reason reason);

// An error whose message is "<NAME>: <message>" and whose code suits the caller's next step:
// Unavailable for kIo, ResourceExhausted for kSizeLimit, FailedPrecondition for expiry,
// rollback and site binding (a different bundle or site state is needed), PermissionDenied
// for signature failures, DataLoss for everything else (the bundle is damaged or forged).
Status ReasonError(Reason reason, std::string_view message);

// The reason of a status made by ReasonError, read from Status::reason() (never from the
// message; WithContext keeps it); nullopt for OK and for other statuses.
std::optional<Reason> ReasonOf(const Status& status);

}  // namespace outpost::bundle

#endif  // OUTPOST_BUNDLE_REASON_H_
