// The edge's REST authorizer (see http_gate.h): Host, Content-Type, then the route's access.
#include "base/auth/http_gate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cctype>
#include <string_view>
#include <utility>

namespace outpost::auth {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool AllDigits(std::string_view text) {
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// A host as the gate compares it: lower case, an IPv6 address in brackets, without one final
// dot ("localhost." is "localhost").
std::string CanonicalHost(std::string_view host) {
  std::string out = Lower(host);
  if (out.find(':') != std::string::npos && out.front() != '[') out = "[" + out + "]";
  if (out.size() > 1 && out.back() == '.') out.pop_back();
  return out;
}

// The host of a Host header value ("name", "name:port", "[v6]", "[v6]:port"), canonical; ""
// when the value is not one of those forms.
std::string HostOf(std::string_view value) {
  value = Trim(value);
  std::string_view host = value, port;
  if (value.starts_with('[')) {
    const size_t close = value.find(']');
    if (close == std::string_view::npos) return "";
    host = value.substr(0, close + 1);
    std::string_view rest = value.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return "";
      port = rest.substr(1);
      if (port.empty()) return "";
    }
  } else if (const size_t colon = value.find(':'); colon != std::string_view::npos) {
    host = value.substr(0, colon);
    port = value.substr(colon + 1);
    if (port.empty()) return "";
  }
  if (host.empty() || !AllDigits(port) || port.size() > 5) return "";
  if (!host.starts_with('[') && host.find_first_of(" \t,/@") != std::string_view::npos) return "";
  return CanonicalHost(host);
}

// Whether a canonical host is an IPv4 or IPv6 address rather than a name. DNS rebinding works
// through a name the attacker controls, so a Host that is an address is answered: that is how
// probes and clients reach a node by its pod or LAN address.
bool IsAddressLiteral(const std::string& host) {
  unsigned char buffer[sizeof(struct in6_addr)];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buffer) == 1;
  }
  return ::inet_pton(AF_INET, host.c_str(), buffer) == 1;
}

// Whether `value` (a Content-Type header) names one of the body types the edge reads.
bool AcceptedContentType(std::string_view value) {
  const std::string type = Lower(Trim(value.substr(0, value.find(';'))));
  return type == "application/json" || type == "application/octet-stream";
}

// Whether the request carries a body: bytes read, or a Content-Length above zero.
bool HasBody(const http::Request& request) {
  if (!request.body.empty()) return true;
  const std::string_view length = Trim(request.Header("content-length"));
  if (length.empty()) return false;
  return !AllDigits(length) || length.find_first_not_of('0') != std::string_view::npos;
}

void Refuse(int status, const Status& error, http::Response& refusal) {
  if (status == 401) refusal.headers.emplace_back("WWW-Authenticate", "Bearer");
  http::SetErrorBody(status, error.reason(), error.message(), refusal);
}

}  // namespace

HttpGate::HttpGate(HttpGateOptions options) : options_(std::move(options)) {
  hosts_ = {"localhost", "127.0.0.1", "[::1]"};
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0') {
    const std::string host = CanonicalHost(name);
    hosts_.push_back(host);
    // The machine's short name too, when its name is a qualified one.
    const size_t dot = host.find('.');
    if (dot != std::string::npos && dot > 0) hosts_.push_back(host.substr(0, dot));
  }
  for (const std::string& host : options_.allowed_hosts) {
    if (host == "*") {
      any_host_ = true;
    } else if (!host.empty()) {
      hosts_.push_back(CanonicalHost(host));
    }
  }
}

void HttpGate::SetAuthenticator(std::shared_ptr<const Authenticator> authenticator) {
  authenticator_.store(std::move(authenticator));
}

std::shared_ptr<const Authenticator> HttpGate::authenticator() const {
  return authenticator_.load();
}

bool HttpGate::Authorize(const http::Request& request, uint32_t access,
                         http::Response& refusal) const {
  if (!any_host_) {
    const std::string_view header = request.Header("host");
    const std::string host = HostOf(header);
    bool allowed = !host.empty() && IsAddressLiteral(host);
    for (const std::string& name : hosts_) allowed = allowed || (!host.empty() && host == name);
    if (!allowed) {
      const std::string detail = header.empty() ? "the request names no Host"
                                                : "this listener does not answer for the Host " +
                                                      std::string(header.substr(0, 255)) +
                                                      "; add it to the listener's allowed hosts";
      Refuse(421, ErrorWithReason(StatusCode::kPermissionDenied, "host_not_allowed", detail),
             refusal);
      return false;
    }
  }
  if (HasBody(request) && !AcceptedContentType(request.Header("content-type"))) {
    Refuse(415,
           ErrorWithReason(StatusCode::kInvalidArgument, "unsupported_content_type",
                           "a request body must be application/json (or "
                           "application/octet-stream for binary tensors)"),
           refusal);
    return false;
  }
  const std::shared_ptr<const Authenticator> authenticator = authenticator_.load();
  if (access == 0) {
    request.caller = http::Caller{.kind = http::Caller::Kind::kAnonymous,
                                  .roles = authenticator ? 0 : options_.anonymous_roles};
    return true;
  }
  // Authenticated already on this request's head (the listener's before_body check, which
  // the server resets for every request): the token is not hashed twice.
  if (request.caller.kind == http::Caller::Kind::kClient &&
      (request.caller.roles & access) == access) {
    return true;
  }
  Principal principal{.name = "anonymous", .roles = options_.anonymous_roles};
  if (authenticator) {
    Result<Principal> who = authenticator->Authenticate(Presented{
        .authorization = request.Header("authorization"), .cert_der = request.peer.cert_der});
    if (!who.ok()) {
      Refuse(401, who.status(), refusal);
      return false;
    }
    principal = std::move(*who);
  }
  // Every role bit the route names must be held.
  for (uint32_t bit = 1; bit != 0; bit <<= 1) {
    if ((access & bit) == 0) continue;
    Status allowed = auth::Authorize(principal, static_cast<Role>(bit));
    if (!allowed.ok()) {
      Refuse(403, allowed, refusal);
      return false;
    }
  }
  if (authenticator) {
    request.caller = http::Caller{.kind = http::Caller::Kind::kClient,
                                  .credential = principal.name,
                                  .roles = principal.roles};
  } else {
    request.caller =
        http::Caller{.kind = http::Caller::Kind::kAnonymous, .roles = options_.anonymous_roles};
  }
  return true;
}

http::Router::AuthorizeFn HttpGate::AsAuthorizer() const {
  return [this](const http::Request& request, uint32_t access, http::Response& refusal) {
    return Authorize(request, access, refusal);
  };
}

}  // namespace outpost::auth
