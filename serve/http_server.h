// HttpServer: HTTP/1.1 with keep-alive, answering each request with a handler function.
// It is the scoring server's REST front end (serve/handler.h answers the requests); this
// header and http_server.cc are the only files of serve/ that see Boost.Beast and Asio.
//
//   auto server = HttpServer::Start({.port = 8000, .threads = 2},
//                                   [&](const HttpRequest& rq, HttpResponse& rs) {
//                                     handler.Handle(rq, rs);
//                                   });
//   ...                 // SIGTERM arrives
//   (*server)->Stop();  // drains, then returns
//
// Threads: `threads` event loops, each with its own connections; a new connection goes to
// the next loop in turn (round-robin from the first), and every request of a connection is
// answered on that loop's thread, one at a time and in order (pipelined requests included).
// The handler therefore runs on several threads at once and must be thread-safe; a handler
// that blocks delays the other connections of its loop.
//
// Limits and time-outs (client-controlled sizes are all bounded):
//   - a request whose header (request line included) passes max_header_bytes gets 431,
//     a body longer than max_body_bytes gets 413 as soon as its length is known (from
//     Content-Length, before the body is read; or when a chunked body passes the limit),
//     malformed HTTP gets 400; each of these closes the connection.
//   - a connection with no request in progress is closed after idle_timeout; a request must
//     arrive completely within read_timeout of its first byte; a response must be written
//     within write_timeout. Absolute deadlines: a client sending a byte at a time cannot
//     extend them.
//   - beyond max_connections open connections, new ones are closed at once.
//   - "Expect: 100-continue" is answered before the body is read.
//
// Shutdown: Stop() stops accepting (new connections are refused), lets requests in flight
// finish and be answered, answers requests that arrive meanwhile on open connections with
// 503 and "Connection: close", then closes every connection and returns. Requests still
// running after drain_timeout are abandoned (their connections are closed).
#ifndef OUTPOST_SERVE_HTTP_SERVER_H_
#define OUTPOST_SERVE_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "serve/handler.h"

namespace outpost::serve {

struct HttpServerOptions {
  // Numeric IPv4 or IPv6 address to listen on ("0.0.0.0", "::", "127.0.0.1").
  std::string address = "0.0.0.0";
  // 0 picks a free port; HttpServer::port() tells which.
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
  // Most open connections; more are closed as soon as they are accepted.
  size_t max_connections = 10000;
  // How long Stop() waits for requests in flight before closing their connections.
  std::chrono::milliseconds drain_timeout = std::chrono::seconds(30);
};

// Answers one request; called on an event-loop thread. `response` arrives cleared (as by
// HttpResponse::Clear()) and is sent as the handler leaves it.
using HttpHandlerFn = std::function<void(const HttpRequest& request, HttpResponse& response)>;

class HttpServer {
 public:
  // Listens and starts the threads. InvalidArgument for a bad address or option;
  // FailedPrecondition when the address cannot be bound (e.g. the port is in use).
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                   HttpHandlerFn handler);

  // Stops (see Stop()) if that has not been done.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port the server listens on (the chosen one when options.port was 0).
  uint16_t port() const;

  // Graceful shutdown as described above; returns when every thread has finished. Safe to
  // call from any thread except the server's own, and more than once (later calls wait for
  // the first to finish).
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_HTTP_SERVER_H_
