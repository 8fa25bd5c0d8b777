// HttpClient: a small blocking HTTP/1.1 client with keep-alive, used by the demo and by
// tools that talk to a running `outpost edge`. Not thread-safe: one client per thread.
#ifndef OUTPOST_APPS_HTTP_CLIENT_H_
#define OUTPOST_APPS_HTTP_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::apps {

struct HttpResult {
  int status = 0;
  std::string body;
};

class HttpClient {
 public:
  // Connects to host:port. Unavailable when nothing listens there. A non-empty
  // `bearer_token` is sent as `Authorization: Bearer <token>` (the hub's operator listener).
  static Result<std::unique_ptr<HttpClient>> Connect(const std::string& host, uint16_t port,
                                                     const std::string& bearer_token = "");
  virtual ~HttpClient() = default;

  // Sends one request on the open connection (reconnecting once if the server closed it)
  // and reads the whole response. Unavailable on network errors.
  virtual Result<HttpResult> Request(std::string_view method, std::string_view target,
                                     std::string_view body = {},
                                     std::string_view content_type = "application/json") = 0;
};

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_HTTP_CLIENT_H_
