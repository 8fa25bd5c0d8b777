// Server: Outpost's one HTTP/1.1 server core, plain or TLS, with keep-alive, answering each
// request with a handler function (or a Router of them). Every listener runs on it: the
// scoring server's REST front end (serve/), the edge's own routes, and the hub's site and
// operator listeners (hub/server.h). This header and server.cc are the only files of Outpost
// that see Boost.Beast, Asio and, for the TLS sessions, OpenSSL's TLS layer.
//
//   auto server = http::Server::Start({.port = 8000, .threads = 2},
//                                     [&](const http::Request& rq, http::Response& rs) {
//                                       handler.Handle(rq, rs);
//                                     });
//   ...                 // SIGTERM arrives
//   (*server)->Stop();  // drains, then returns
//
// Threads: `threads` event loops, each with its own connections; a new connection goes to
// the next loop in turn (round-robin from the first), and every request of a connection is
// answered on that loop's thread, one at a time and in order (pipelined requests included).
// The handler therefore runs on several threads at once and must be thread-safe; a handler
// that blocks delays the other connections of its loop. A handler that waits for something
// (a model's queue) defers instead, and never blocks its loop: it calls request.defer(),
// returns, and sends the returned DeferredResponse from whichever thread finishes the work
// (message.h). Until then the connection reads nothing more (pipelined requests wait and are
// answered in order after it), its request and response stay valid, its body still counts
// against max_buffered_bytes, and the loop serves its other connections. A DeferredResponse
// destroyed unsent answers 500 (reason internal); one sent after its connection has closed
// is dropped.
//
// Limits and time-outs (client-controlled sizes are all bounded):
//   - a request whose header (request line included) passes max_header_bytes gets 431
//     (reason headers_too_large), a body longer than max_body_bytes gets 413
//     (body_too_large) as soon as its length is known (from Content-Length, before the body
//     is read; or when a chunked body passes the limit), malformed HTTP gets 400
//     (malformed_request); each of these closes the connection, lingering (below).
//   - a connection with no request in progress is closed after idle_timeout; a request must
//     arrive completely within read_timeout of its first byte; a response must be written
//     within write_timeout. A new connection has one deadline for everything before its first
//     request is complete: the TLS handshake, the wait for the first byte, that request's
//     header and its body must all be done within first_request_timeout of the accept
//     (read_timeout when 0), so that a client that sends nothing useful holds a connection
//     that long at most. Absolute deadlines: a client sending a byte at a time cannot extend
//     them. A connection past a deadline is closed without an answer.
//   - beyond max_connections open connections, new ones are closed at once; so is a
//     connection from a peer address that already has max_connections_per_address open.
//   - the bodies being read and handled count against max_buffered_bytes, across every
//     connection: a body's Content-Length is counted once its header is read, before any
//     byte of it (a chunked body as it grows), and given back when its handler returns. A
//     request that would pass the cap gets 503 (reason server_busy, "Retry-After: 1")
//     without its body being read (a chunked one as soon as it passes) and the connection
//     closes, lingering; its handler never runs.
//   - before_body, when set, sees every request's line and headers before any byte of its
//     body is read (and before "100 Continue"); when it refuses, its refusal is sent, the
//     body is never read and the connection closes, lingering.
//   - "Expect: 100-continue" is answered before the body is read, once the checks above
//     have passed.
// Every error the server answers by itself has the body {"error": ..., "reason": ...}.
//
// Lingering close: a connection closed by the server (after "Connection: close", an error
// above, or during a drain) first shuts its sending side, then reads and discards what the
// client still sends for up to 2 s, so that a client still uploading reads the answer
// instead of a reset. A TLS connection sends its close_notify first.
//
// TLS (options.tls set): TLS 1.2 or newer with the given certificate chain and key. With a
// client CA, a client certificate is asked for; it is required only with
// require_client_cert, otherwise the handshake succeeds without one or with one that does
// not verify, and the handler reads the outcome in Request::peer. Sessions can be resumed
// for 5 minutes after their full handshake (the server's session cache and tickets, with or
// without a client certificate), so that a client reconnecting skips the full handshake; a
// resumed session keeps the client certificate and its verification result from that
// handshake. ReloadTls() swaps in new certificate, key and client CA files for the
// connections accepted after it (no session from before is resumed under them); open
// connections keep the ones they started with, and are not dropped.
//
// Shutdown: Stop() stops accepting (new connections are refused), lets requests in flight
// (deferred ones included, and a request whose header had been read and whose body was still
// arriving when Stop() began: an upload in progress) finish and be answered, answers
// requests that arrive meanwhile on
// open connections with 503 (reason draining) and "Connection: close", then closes every
// connection and returns. Requests still running after drain_timeout are abandoned (their
// connections are closed); a deferred response sent after that is dropped, and its request
// and response stay valid for whoever holds it, even once the Server is destroyed.
#ifndef OUTPOST_BASE_HTTP_SERVER_H_
#define OUTPOST_BASE_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/http/message.h"
#include "base/status.h"

namespace outpost::http {

struct TlsServerOptions {
  // PEM files of the server's certificate chain and its private key.
  std::string cert_chain_path{};
  std::string key_path{};
  // PEM file of the CA that client certificates are verified against; empty = no client
  // certificate is asked for.
  std::string client_ca_path{};
  // With a client CA: whether a handshake without a certificate that verifies fails. When
  // false, the certificate is asked for, never required, and Request::peer tells the outcome.
  bool require_client_cert = false;
};

struct ServerOptions {
  // Numeric IPv4 or IPv6 address to listen on ("0.0.0.0", "::", "127.0.0.1", "[::1]"), or
  // "localhost" (127.0.0.1).
  std::string address = "0.0.0.0";
  // 0 picks a free port; Server::port() tells which.
  uint16_t port = 8000;
  // Event-loop threads; 0 = one per CPU core.
  int threads = 0;
  // Largest request body (413 beyond it).
  size_t max_body_bytes = 64 << 20;
  // Largest request line plus headers (431 beyond it).
  size_t max_header_bytes = 16 << 10;
  // How long a connection may wait for the first byte of its next request.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  // How long a request may take to arrive, from its first byte.
  std::chrono::milliseconds read_timeout = std::chrono::seconds(30);
  // How long writing one response may take.
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
  // Deadline of everything before a connection's first request is complete (TLS handshake,
  // the wait for its first byte, its header and body), counted from the accept; 0 = the
  // read_timeout.
  std::chrono::milliseconds first_request_timeout = std::chrono::milliseconds(0);
  // Most open connections; more are closed as soon as they are accepted.
  size_t max_connections = 16384;
  // Most open connections from one peer IP address; more are closed as soon as they are
  // accepted. 0 = no limit per address. The default leaves room for the load benchmarks'
  // 64 connections, all from loopback.
  size_t max_connections_per_address = 128;
  // Most bytes of request bodies buffered at once across every connection (503 server_busy
  // beyond it); 0 = no cap. Keep it at or above max_body_bytes, or a body between the two
  // is always refused.
  size_t max_buffered_bytes = size_t{512} << 20;
  // How long Stop() waits for requests in flight before closing their connections.
  std::chrono::milliseconds drain_timeout = std::chrono::seconds(30);
  // The Server header of every response; empty = none.
  std::string server_header{};
  // TLS; absent = plain HTTP.
  std::optional<TlsServerOptions> tls{};
  // Called on the event loop's thread once a request's line and headers are read, before
  // any byte of its body (and before "100 Continue"): `head` has the method, target, headers
  // and peer, and an empty body. True lets the request go on; false sends what it wrote into
  // `refusal` (which arrives cleared) and closes the connection without reading the body
  // (one that throws: 500, reason internal, likewise). Must be thread-safe, as the handler.
  // Absent = every request goes on.
  std::function<bool(const Request& head, Response& refusal)> before_body{};
};

// Answers one request; called on an event-loop thread. `response` arrives cleared (as by
// Response::Clear()) and is sent as the handler leaves it, or, when the handler called
// request.defer(), as it is when the DeferredResponse is sent. A DeferredResponse sent (or
// destroyed) on the loop's thread before the handler returns answers as a handler that did
// not defer (no hand-over to the loop; the handler must not touch `response` after it), and
// request.defer() then returns an empty one.
using HandlerFn = std::function<void(const Request& request, Response& response)>;

// Routes requests to the handlers that subsystems register, by the target's path (the
// target up to its '?'; the query string is the handler's) and method. A path no route
// matches gets 404 (reason not_found); a path matched only for other methods gets 405
// (reason method_not_allowed) with an Allow header naming the registered methods in the
// order they were registered. An exact route wins over a prefix route, and a longer prefix
// over a shorter one. A HEAD request that no HEAD (or "*") route of its path takes goes to
// the path's GET route; the server sends a HEAD answer without its body.
// Register every route before the server starts; Handle() is then thread-safe, and routing
// a request that a route takes allocates nothing (views of the target, no strings built).
//
// Access: each route names the access it needs, an application's bit (base/auth's roles on
// the edge; 0 = open to anyone). With an authorizer set, the router hands it every request a
// route takes, with that route's access, before the route's handler: the authorizer either
// sets request.caller and lets the handler run, or writes its refusal (401, 403, ...) and
// the handler never runs. Without one, access is not checked (listeners that authenticate in
// their handlers, as the hub's do).
//
//   http::Router router;
//   router.Exact("POST", "/v1/feedback", [&](const http::Request& rq, http::Response& rs) {...},
//                auth::RoleBit(auth::Role::kLabel));
//   router.Prefix("*", "/v2", [&](const http::Request& rq, http::Response& rs) {...});
//   router.SetAuthorizer(gate.AsAuthorizer());
//   auto server = http::Server::Start(options, router.AsHandler());
class Router {
 public:
  // Decides whether `request` may run a route that needs `access`: true after setting
  // request.caller; false after writing the refusal into `refusal`.
  using AuthorizeFn =
      std::function<bool(const Request& request, uint32_t access, Response& refusal)>;

  // `method` is matched exactly ("GET"); "*" matches any method.
  void Exact(std::string method, std::string path, HandlerFn handler, uint32_t access = 0);
  void Prefix(std::string method, std::string prefix, HandlerFn handler, uint32_t access = 0);
  // Before the server starts.
  void SetAuthorizer(AuthorizeFn authorizer);

  // The path part of a request target: everything before its '?'.
  static std::string_view PathOf(std::string_view target);

  void Handle(const Request& request, Response& response) const;

  // Runs the authorizer on a request's head (ServerOptions::before_body) for the route that
  // will take it: true when the router has no authorizer, no route takes the request (its
  // 404 or 405 comes later), or the authorizer lets it through; false with its refusal.
  // A listener that authorizes before the body is read passes this as before_body.
  bool AuthorizeHead(const Request& head, Response& refusal) const;

  // A handler function for Server::Start that routes with this router, which must outlive
  // the server.
  HandlerFn AsHandler() const;

 private:
  struct Route {
    std::string method;
    std::string path;
    bool prefix = false;
    uint32_t access = 0;
    HandlerFn handler;
  };
  // The route of `path` that routing prefers (exact, then the longest prefix), or nullptr.
  const Route* BestPath(std::string_view path) const;
  // Among the routes registered for best's path, the one that takes `method`, or nullptr.
  const Route* ForMethod(const Route& best, std::string_view method) const;

  std::vector<Route> routes_;
  AuthorizeFn authorizer_;
};

class Server {
 public:
  // Listens and starts the threads. InvalidArgument for a bad address or option;
  // FailedPrecondition (reason listen_failed) when the address cannot be bound (e.g. the
  // port is in use), and FailedPrecondition when the TLS certificate, key or client CA
  // cannot be loaded.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options, HandlerFn handler);

  // Stops (see Stop()) if that has not been done.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The port the server listens on (the chosen one when options.port was 0).
  uint16_t port() const;

  // Loads `tls`'s certificate chain, key and client CA into a new TLS context and uses it for
  // every connection accepted afterwards; connections already open keep theirs. Thread-safe.
  // FailedPrecondition when the server runs plain HTTP, or when a file does not load (the
  // context in use stays).
  Status ReloadTls(TlsServerOptions tls);

  // Graceful shutdown as described above; returns when every thread has finished. Safe to
  // call from any thread except the server's own, and more than once (later calls wait for
  // the first to finish).
  void Stop();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::http

#endif  // OUTPOST_BASE_HTTP_SERVER_H_
