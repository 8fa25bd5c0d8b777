// The hub's listeners on base/http's server core (each request handed on with what TLS
// established about its peer).
#include "hub/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "base/http/server.h"

namespace outpost::hub {
namespace {

// What the site listener's TLS layer established about a peer, as the hub judges it: a
// certificate that hub/ca.h cannot read does not count as verified.
PeerCredential CredentialOf(const outpost::http::PeerInfo& peer) {
  PeerCredential credential;
  if (!peer.cert_presented) return credential;
  credential.presented = true;
  credential.verified = peer.cert_verified;
  credential.verify_error = peer.verify_error;
  Result<CertInfo> info = ParseCertificateDer(peer.cert_der);
  if (info.ok()) {
    credential.certificate = std::move(*info);
  } else {
    credential.verified = false;
    credential.verify_error = "unreadable certificate";
  }
  return credential;
}

// One listener's settings on the server core: the hub's limits and time-outs; TLS with the
// hub's server certificate when `tls`, asking for a client certificate (never requiring it:
// enrolment comes without one) against the hub CA when `client_cert`, whose requests'
// heads CheckSiteHead sees before their bodies are read.
outpost::http::ServerOptions ListenerOptions(const HubServerOptions& options,
                                             const std::string& address, uint16_t port, bool tls,
                                             bool client_cert) {
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(4u, std::thread::hardware_concurrency()));
  outpost::http::ServerOptions out{
      .address = address,
      .port = port,
      .threads = threads,
      .max_body_bytes = options.max_body_bytes,
      .max_header_bytes = options.max_header_bytes,
      .idle_timeout = options.idle_timeout,
      .read_timeout = options.read_timeout,
      .write_timeout = options.write_timeout,
      .first_request_timeout = options.first_request_timeout,
      .max_connections = options.max_connections,
      .max_connections_per_address = options.max_connections_per_address,
      .max_buffered_bytes = std::max(options.max_buffered_bytes, options.max_body_bytes),
      .server_header = "outpost-hub"};
  if (client_cert) out.before_body = CheckSiteHead;
  if (tls) {
    out.tls = outpost::http::TlsServerOptions{
        .cert_chain_path = options.server_cert_path,
        .key_path = options.server_key_path,
        .client_ca_path = client_cert ? options.ca_cert_path : std::string()};
  }
  return out;
}

// Starts one listener; a port that cannot be bound is Unavailable (hub/server.h).
Result<std::unique_ptr<outpost::http::Server>> StartListener(outpost::http::ServerOptions options,
                                                             outpost::http::HandlerFn handler) {
  Result<std::unique_ptr<outpost::http::Server>> started =
      outpost::http::Server::Start(std::move(options), std::move(handler));
  if (!started.ok() && started.status().reason() == "listen_failed") {
    return UnavailableError(std::string(started.status().message())).WithReason("listen_failed");
  }
  return started;
}

class HubServerImpl final : public HubServer {
 public:
  uint16_t site_port() const override { return site_->port(); }
  uint16_t operator_port() const override { return operator_ ? operator_->port() : 0; }
  bool operator_tls() const override { return operator_tls_; }
  void Stop() override {
    site_->Stop();
    if (operator_) operator_->Stop();
  }
  ~HubServerImpl() override {
    if (site_) Stop();
  }

  std::unique_ptr<outpost::http::Server> site_;
  std::unique_ptr<outpost::http::Server> operator_;
  bool operator_tls_ = false;
};

}  // namespace

bool CheckSiteHead(const HubRequest& head, HubResponse& refusal) {
  if (!outpost::http::Router::PathOf(head.target).starts_with("/sync/")) return true;
  if (!head.peer.cert_presented) {
    refusal = ErrorResponse(401, "credential_missing", "a site client certificate is required");
    return false;
  }
  if (!head.peer.cert_verified) {
    refusal = ErrorResponse(
        401, "credential_untrusted",
        "the client certificate does not verify against this hub's CA: " + head.peer.verify_error);
    return false;
  }
  return true;
}

bool IsLoopback(std::string_view address) {
  if (address == "localhost") return true;
  std::string host(address);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

Result<std::unique_ptr<HubServer>> HubServer::Start(const HubServerOptions& options,
                                                    SiteHandlerFn site_handler,
                                                    OperatorHandlerFn operator_handler) {
  auto server = std::make_unique<HubServerImpl>();
  OUTPOST_ASSIGN_OR_RETURN(
      server->site_, StartListener(ListenerOptions(options, options.site_address, options.site_port,
                                                   /*tls=*/true, /*client_cert=*/true),
                                   [handler = std::move(site_handler)](const HubRequest& request,
                                                                       HubResponse& response) {
                                     response = handler(request, CredentialOf(request.peer));
                                   }));
  if (!options.operator_address.empty()) {
    server->operator_tls_ = !IsLoopback(options.operator_address);
    OUTPOST_ASSIGN_OR_RETURN(
        server->operator_,
        StartListener(ListenerOptions(options, options.operator_address, options.operator_port,
                                      server->operator_tls_, /*client_cert=*/false),
                      [handler = std::move(operator_handler)](const HubRequest& request,
                                                              HubResponse& response) {
                        response = handler(request);
                      }));
  }
  return std::unique_ptr<HubServer>(std::move(server));
}

}  // namespace outpost::hub
