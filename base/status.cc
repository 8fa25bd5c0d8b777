#include "base/status.h"

namespace outpost {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kCancelled: return "CANCELLED";
    case StatusCode::kUnknown: return "UNKNOWN";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
    case StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case StatusCode::kAborted: return "ABORTED";
    case StatusCode::kOutOfRange: return "OUT_OF_RANGE";
    case StatusCode::kUnimplemented: return "UNIMPLEMENTED";
    case StatusCode::kInternal: return "INTERNAL";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
    case StatusCode::kDataLoss: return "DATA_LOSS";
    case StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

Status::Status(StatusCode code, std::string_view message) {
  if (code != StatusCode::kOk) {
    rep_ = std::make_shared<const Rep>(Rep{code, std::string(message)});
  }
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string message(context);
  message += ": ";
  message += rep_->message;
  return Status(rep_->code, message);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code()));
  out += ": ";
  out += message();
  return out;
}

#define OUTPOST_DEFINE_ERROR_(Name, Code) \
  Status Name(std::string_view message) { return Status(StatusCode::Code, message); }
OUTPOST_DEFINE_ERROR_(CancelledError, kCancelled)
OUTPOST_DEFINE_ERROR_(UnknownError, kUnknown)
OUTPOST_DEFINE_ERROR_(InvalidArgumentError, kInvalidArgument)
OUTPOST_DEFINE_ERROR_(DeadlineExceededError, kDeadlineExceeded)
OUTPOST_DEFINE_ERROR_(NotFoundError, kNotFound)
OUTPOST_DEFINE_ERROR_(AlreadyExistsError, kAlreadyExists)
OUTPOST_DEFINE_ERROR_(PermissionDeniedError, kPermissionDenied)
OUTPOST_DEFINE_ERROR_(ResourceExhaustedError, kResourceExhausted)
OUTPOST_DEFINE_ERROR_(FailedPreconditionError, kFailedPrecondition)
OUTPOST_DEFINE_ERROR_(AbortedError, kAborted)
OUTPOST_DEFINE_ERROR_(OutOfRangeError, kOutOfRange)
OUTPOST_DEFINE_ERROR_(UnimplementedError, kUnimplemented)
OUTPOST_DEFINE_ERROR_(InternalError, kInternal)
OUTPOST_DEFINE_ERROR_(UnavailableError, kUnavailable)
OUTPOST_DEFINE_ERROR_(DataLossError, kDataLoss)
OUTPOST_DEFINE_ERROR_(UnauthenticatedError, kUnauthenticated)
#undef OUTPOST_DEFINE_ERROR_

}  // namespace outpost
