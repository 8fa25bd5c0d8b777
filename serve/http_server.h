// The scoring server's REST front end is Outpost's one HTTP server core (base/http/server.h):
// HTTP/1.1 with keep-alive, event-loop threads, bounded headers and bodies, absolute
// deadlines, lingering close and a graceful drain. serve/handler.h answers its requests:
//
//   auto server = HttpServer::Start({.port = 8000, .threads = 2},
//                                   [&](const HttpRequest& rq, HttpResponse& rs) {
//                                     handler.Handle(rq, rs);
//                                   });
//   ...                 // SIGTERM arrives
//   (*server)->Stop();  // drains, then returns
//
// These names are serve's for the server core's types; base/http/server.h states the
// contract (threads, limits, time-outs, shutdown).
#ifndef OUTPOST_SERVE_HTTP_SERVER_H_
#define OUTPOST_SERVE_HTTP_SERVER_H_

#include "base/http/server.h"
#include "serve/handler.h"

namespace outpost::serve {

using HttpServerOptions = http::ServerOptions;
// Answers one request; called on an event-loop thread. `response` arrives cleared (as by
// HttpResponse::Clear()) and is sent as the handler leaves it.
using HttpHandlerFn = http::HandlerFn;
using HttpServer = http::Server;

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_HTTP_SERVER_H_
