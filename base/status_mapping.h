// How a Status leaves Outpost: the one mapping to an HTTP status and error body, used by
// every HTTP listener (the edge's REST server, the hub's site and operator listeners), and
// the one mapping to a gRPC status code, used by the edge's gRPC server.
//
// The error body of every listener is one JSON object with two members:
//   {"error": "<the message, for people>", "reason": "<Status::reason(), for code>"}
// Clients branch on "reason" (and the HTTP status), never on the message's text.
#ifndef OUTPOST_BASE_STATUS_MAPPING_H_
#define OUTPOST_BASE_STATUS_MAPPING_H_

#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost {

// The HTTP status for a Status code, as Triton's HTTP front end answers:
//   OK 200
//   InvalidArgument, OutOfRange, FailedPrecondition, AlreadyExists, Cancelled, Unknown,
//   Aborted -> 400
//   Unauthenticated 401, PermissionDenied 403, NotFound 404,
//   ResourceExhausted 413 (a bound on the request's own size; a full queue is reported as
//   Unavailable), Unimplemented 501, Unavailable and DeadlineExceeded 503,
//   Internal, DataLoss and anything else 500.
int HttpStatusFor(StatusCode code);

// Appends {"error": status.message(), "reason": status.reason()} to `out`. For an OK status
// (a bug of the caller) the error is "internal error" and the reason "internal".
void AppendErrorBody(const Status& status, std::string& out);
std::string ErrorBody(const Status& status);
// The same body for an error that is about HTTP itself, not an Outpost operation (405, 414,
// 431): the listener picks the reason.
std::string ErrorBody(std::string_view reason, std::string_view message);

// The numeric gRPC status code (as on the wire) for a Status code: OK 0, Cancelled 1,
// InvalidArgument 3, DeadlineExceeded 4, NotFound 5, PermissionDenied 7,
// ResourceExhausted 8, Unimplemented 12, Unavailable 14, Unauthenticated 16, anything else
// INTERNAL 13 (as Triton's gRPC front end does for failed preconditions and data loss).
// The reason travels in the trailing metadata entry kGrpcReasonKey.
int GrpcCodeFor(StatusCode code);
inline constexpr std::string_view kGrpcReasonKey = "outpost-reason";

}  // namespace outpost

#endif  // OUTPOST_BASE_STATUS_MAPPING_H_
