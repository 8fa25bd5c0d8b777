// HttpGate: the edge's REST listener's authorizer (http::Router::SetAuthorizer). For every
// request a route takes it checks, in this order:
//   1. Host: the request names a host the listener answers for (an IPv4 or IPv6 address, the
//      loopback names, the machine's names, and those the config adds); any other name is
//      421 (reason host_not_allowed). This stops DNS rebinding: a page on another origin that
//      resolves its own name to the edge's address still sends its own name.
//   2. Content-Type: a request with a body says application/json (parameters allowed) or,
//      for the binary tensor extension, application/octet-stream; anything else is 415
//      (reason unsupported_content_type). A browser's drive-by form POST (text/plain,
//      application/x-www-form-urlencoded, multipart/form-data) never reaches a handler.
//   3. The route's access: 0 = open (health probes); otherwise a role bit (base/auth/auth.h).
//      With an authenticator, the credential is authenticated (401 with auth.h's reasons) and
//      must hold the role (403 role_required). Without one (no credentials configured: the
//      edge listens on loopback only, or the operator opted into an open listener), the
//      caller is kAnonymous and holds `anonymous_roles`.
// On success request.caller is set (kClient with the entry's name and roles, or kAnonymous).
// Every refusal has the body {"error", "reason"} and, for a 401, a WWW-Authenticate header.
//
// Thread-safe. SetAuthenticator swaps the authenticator atomically (a reload of the
// credentials file or the client CA): requests in flight finish with the one they started
// with.
#ifndef OUTPOST_BASE_AUTH_HTTP_GATE_H_
#define OUTPOST_BASE_AUTH_HTTP_GATE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/auth/auth.h"
#include "base/http/message.h"
#include "base/http/server.h"

namespace outpost::auth {

struct HttpGateOptions {
  // Host names and addresses (without port) the listener answers for, beside "localhost",
  // "127.0.0.1", "::1" (as "[::1]" in a Host header) and the machine's host name. Compared
  // without case. A "*" entry accepts any Host (logged at start by the caller).
  std::vector<std::string> allowed_hosts;
  // Roles of a caller when no authenticator is set.
  RoleSet anonymous_roles = RoleBit(Role::kInfer) | RoleBit(Role::kLabel) | RoleBit(Role::kRead);
};

class HttpGate {
 public:
  explicit HttpGate(HttpGateOptions options);

  // Null = no credentials (callers are anonymous). Safe while requests are served.
  void SetAuthenticator(std::shared_ptr<const Authenticator> authenticator);
  std::shared_ptr<const Authenticator> authenticator() const;

  // The checks above for a route that needs `access`. True when the handler may run.
  bool Authorize(const http::Request& request, uint32_t access, http::Response& refusal) const;

  // Authorize as a Router's authorizer; the gate must outlive the router's use.
  http::Router::AuthorizeFn AsAuthorizer() const;

 private:
  HttpGateOptions options_;
  std::vector<std::string> hosts_;  // lower case, every name accepted
  bool any_host_ = false;
  std::atomic<std::shared_ptr<const Authenticator>> authenticator_;
};

}  // namespace outpost::auth

#endif  // OUTPOST_BASE_AUTH_HTTP_GATE_H_
