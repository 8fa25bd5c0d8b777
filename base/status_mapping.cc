#include "base/status_mapping.h"

#include "base/json_writer.h"

namespace outpost {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists:
    case StatusCode::kCancelled:
    case StatusCode::kUnknown:
    case StatusCode::kAborted:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kResourceExhausted:
      return 413;
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
      return 503;
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return 500;
  }
  return 500;
}

namespace {

void AppendBody(std::string_view reason, std::string_view message, std::string& out) {
  JsonWriter w(out);
  w.BeginObject();
  w.Key("error");
  w.String(message);
  w.Key("reason");
  w.String(reason);
  w.EndObject();
}

}  // namespace

void AppendErrorBody(const Status& status, std::string& out) {
  if (status.ok()) {
    AppendBody("internal", "internal error", out);
    return;
  }
  AppendBody(status.reason(), status.message(), out);
}

std::string ErrorBody(const Status& status) {
  std::string out;
  AppendErrorBody(status, out);
  return out;
}

std::string ErrorBody(std::string_view reason, std::string_view message) {
  std::string out;
  AppendBody(reason, message, out);
  return out;
}

int GrpcCodeFor(StatusCode code) {
  // The wire numbers of grpc::StatusCode; StatusCode uses the same numbering.
  switch (code) {
    case StatusCode::kOk:
    case StatusCode::kCancelled:
    case StatusCode::kInvalidArgument:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kNotFound:
    case StatusCode::kPermissionDenied:
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnimplemented:
    case StatusCode::kUnavailable:
    case StatusCode::kUnauthenticated:
      return static_cast<int>(code);
    default:
      return static_cast<int>(StatusCode::kInternal);
  }
}

}  // namespace outpost
