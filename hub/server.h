// The hub's listeners (hub/FORMAT.md sections 5 and 6), both on base/http's server core
// (base/http/server.h: limits, deadlines, lingering close, graceful drain): a TLS listener for
// sites that asks for a client certificate and checks it against the hub CA, and an operator
// listener (TLS, or plain HTTP on a loopback address only). Both hand each request, with what
// the TLS layer established about the peer, to a handler with no sockets
// (HubRequest → HubResponse).
#ifndef OUTPOST_HUB_SERVER_H_
#define OUTPOST_HUB_SERVER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "hub/ca.h"
#include "hub/http.h"

namespace outpost::hub {

// What the TLS layer established about a site listener's peer.
struct PeerCredential {
  bool presented = false;  // the client sent a certificate
  bool verified = false;   // ... and it verified against the hub CA
  std::string verify_error{};  // OpenSSL's reason when presented && !verified
  CertInfo certificate{};      // when presented
};

using SiteHandlerFn = std::function<HubResponse(const HubRequest&, const PeerCredential&)>;
using OperatorHandlerFn = std::function<HubResponse(const HubRequest&)>;

struct HubServerOptions {
  std::string site_address = "127.0.0.1";
  uint16_t site_port = 0;  // 0: the system picks
  // Empty: no operator listener.
  std::string operator_address{};
  uint16_t operator_port = 0;
  std::string ca_cert_path{};
  std::string server_cert_path{};
  std::string server_key_path{};
  size_t max_body_bytes = (uint64_t{16} << 20) + 4096;  // one encoded batch and some
  size_t max_header_bytes = 16 * 1024;
  // Connections open at once per listener; more are closed at accept. Connections cost
  // no thread (event loops) and bodies are bounded by max_buffered_bytes, so this is high.
  size_t max_connections = 1024;
  // Connections open at once from one peer address, per listener; more are closed at accept,
  // so that one host cannot take every connection of a listener. Sites behind one NAT
  // address share it.
  size_t max_connections_per_address = 32;
  // Bytes of request bodies held at once across a listener's connections (at least
  // max_body_bytes is used); a request that would pass it gets 503 server_busy before its
  // body is read.
  size_t max_buffered_bytes = size_t{256} << 20;
  // One deadline for everything before a connection's first request is complete: the TLS
  // handshake, the wait for its first byte, its header and its body, counted from the
  // accept. A peer that sends nothing useful holds a connection this long at most. The
  // forwarder's batches (1 MiB by default) arrive well within it over a link of 300 kbit/s;
  // raise it for slower links or larger batches.
  std::chrono::seconds first_request_timeout{30};
  // A connection that sends nothing for this long is closed.
  std::chrono::seconds idle_timeout{30};
  // How long one request may take to arrive from its first byte, and one answer to be
  // written: absolute deadlines, long enough for a full batch over a slow site link.
  std::chrono::seconds read_timeout{300};
  std::chrono::seconds write_timeout{300};
  // Event-loop threads per listener; 0 = one per CPU core, at least 4. A handler runs on a
  // loop's thread, so a slow one delays the other connections of its loop.
  int threads = 0;
};

// Event-loop listeners (HubServerOptions::threads). Thread-safe: Stop may be called from any
// thread but a handler's.
class HubServer {
 public:
  // Binds both listeners and starts accepting. InvalidArgument for an operator listener on
  // a non-loopback address without TLS material; Unavailable when a bind fails. Handlers
  // are called concurrently and must outlive the server.
  static Result<std::unique_ptr<HubServer>> Start(const HubServerOptions& options,
                                                  SiteHandlerFn site_handler,
                                                  OperatorHandlerFn operator_handler);
  virtual ~HubServer() = default;

  virtual uint16_t site_port() const = 0;
  virtual uint16_t operator_port() const = 0;
  // Whether the operator listener speaks TLS.
  virtual bool operator_tls() const = 0;
  // Stops accepting, lets requests in progress finish (answers written; requests arriving
  // meanwhile get 503, reason draining), closes every connection, and returns when every
  // listener thread has ended.
  virtual void Stop() = 0;
};

// The site listener's check of a request's line and headers, before any byte of its body is
// read (base/http/server.h's before_body): a request for a site route (/sync/...) needs a
// client certificate that verified against the hub CA, else `refusal` is 401
// credential_missing or credential_untrusted (hub/FORMAT.md section 5) and the body is never
// read, so a peer without a credential cannot make the hub buffer a batch. Enrolment
// (/enrol/) comes without a certificate, and other paths are 404 whoever asks.
// HubService::Authenticate still checks the site, its serial and its revocation once the
// request is whole. False when refused.
bool CheckSiteHead(const HubRequest& head, HubResponse& refusal);

// Whether `address` is a loopback address (127.0.0.0/8, ::1, "localhost").
bool IsLoopback(std::string_view address);

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_SERVER_H_
