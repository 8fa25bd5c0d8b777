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

std::string_view StatusCodeReason(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kCancelled: return "cancelled";
    case StatusCode::kUnknown: return "unknown";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kDeadlineExceeded: return "deadline_exceeded";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kAlreadyExists: return "already_exists";
    case StatusCode::kPermissionDenied: return "permission_denied";
    case StatusCode::kResourceExhausted: return "resource_exhausted";
    case StatusCode::kFailedPrecondition: return "failed_precondition";
    case StatusCode::kAborted: return "aborted";
    case StatusCode::kOutOfRange: return "out_of_range";
    case StatusCode::kUnimplemented: return "unimplemented";
    case StatusCode::kInternal: return "internal";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kDataLoss: return "data_loss";
    case StatusCode::kUnauthenticated: return "unauthenticated";
  }
  return "unknown";
}

Status::Status(StatusCode code, std::string_view message) {
  if (code != StatusCode::kOk) {
    rep_ = std::make_shared<const Rep>(Rep{code, std::string(message), std::string()});
  }
}

std::string_view Status::reason() const {
  if (rep_ == nullptr) return "";
  if (!rep_->reason.empty()) return rep_->reason;
  return StatusCodeReason(rep_->code);
}

Status Status::WithReason(std::string_view reason) const {
  if (ok()) return *this;
  std::string token(reason);
  for (char& c : token) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-';
    if (!keep) c = '_';
  }
  Status out;
  out.rep_ = std::make_shared<const Rep>(Rep{rep_->code, rep_->message, std::move(token)});
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string message(context);
  message += ": ";
  message += rep_->message;
  Status out;
  out.rep_ = std::make_shared<const Rep>(Rep{rep_->code, std::move(message), rep_->reason});
  return out;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code()));
  out += ": ";
  out += message();
  return out;
}

Status ErrorWithReason(StatusCode code, std::string_view reason, std::string_view detail) {
  std::string message(reason);
  message += ": ";
  message += detail;
  return Status(code, message).WithReason(reason);
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
