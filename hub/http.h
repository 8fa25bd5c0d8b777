// The request and response that the hub's listeners hand to its handlers (ingestion,
// enrolment, the dashboard's query API and assets). Plain structs with no sockets, so that
// every handler is tested and fuzzed without a network.
#ifndef OUTPOST_HUB_HTTP_H_
#define OUTPOST_HUB_HTTP_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "base/status_mapping.h"

namespace outpost::hub {

// Who sent a request, as the listener established it from the credential alone (never from
// the payload): a site's client certificate, or an operator's bearer token.
struct Caller {
  enum class Kind { kNone, kSite, kOperator };
  Kind kind = Kind::kNone;
  std::string tenant{};
  std::string site_id{};  // kSite only
};

struct HubRequest {
  std::string method{};  // "GET", "POST", ...
  std::string target{};  // "/api/v1/sites?x=1", as sent
  std::vector<std::pair<std::string, std::string>> headers{};  // names in lower case
  std::string body{};
  Caller caller{};

  // The first header named `name` (lower case), or empty.
  std::string_view Header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return {};
  }
};

struct HubResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body{};
  std::vector<std::pair<std::string, std::string>> headers{};  // extra headers
};

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
