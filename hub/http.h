// The request and response that the hub's listeners hand to its handlers (ingestion,
// enrolment, the dashboard's query API and assets): base/http's, plain structs with no
// sockets, so that every handler is tested and fuzzed without a network.
#ifndef OUTPOST_HUB_HTTP_H_
#define OUTPOST_HUB_HTTP_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/http/message.h"
#include "base/status.h"
#include "base/status_mapping.h"

namespace outpost::hub {

// Who sent a request, as the hub established it from the credential alone (never from the
// payload): a site's client certificate, or an operator's bearer token.
using Caller = http::Caller;

// The request and response of every Outpost listener (base/http/message.h). A request's
// header names are compared without case (Header()); its views stay valid until the handler
// returns. A response's content_type points to static storage (a string literal).
using HubRequest = http::Request;
using HubResponse = http::Response;

// An error answer of every hub listener and API, in the body every Outpost listener uses
// (base/status_mapping.h): {"error": <message for people>, "reason": <stable code>}. For an
// error about HTTP itself (405, 413, 414, 431) or one whose status the API fixes.
inline HubResponse ErrorResponse(int status, std::string_view reason, std::string_view message) {
  HubResponse response{.status = status};
  response.body = ErrorBody(reason, message);
  return response;
}

// The answer for a failed operation: the one Status -> HTTP mapping, with its reason.
inline HubResponse ErrorResponse(const Status& status) {
  HubResponse response{.status = HttpStatusFor(status.code())};
  AppendErrorBody(status, response.body);
  return response;
}

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_HTTP_H_
