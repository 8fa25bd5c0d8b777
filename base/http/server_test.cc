// The server core on 127.0.0.1, port 0, driven by the wire client: the errors it answers by
// itself carry the common body {"error", "reason"} (body_too_large, headers_too_large,
// malformed_request, draining), the Server header, "localhost" as a listen address, and the
// Router's matching (exact over prefix, longest prefix, the path without its query string,
// HEAD on GET routes, 404 and 405 with Allow); its limits (connections per address, the cap
// on buffered bodies, the first request's deadline, the before_body check); and TLS: reload
// of the certificate files with open connections kept, session resumption with a client
// certificate asked for, the handshake's deadline. The scoring server's suite
// (serve/http_server_test.cc) covers keep-alive, pipelining, deadlines and drain over the
// same core; base/http/client_test.cc covers TLS and client certificates.
#include "base/http/server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/crypto/x509.h"
#include "base/file.h"
#include "base/http/client.h"
#include "base/http/testing/wire_client.h"
#include "base/testing/test_util.h"

namespace outpost::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::WireClient;
using testing::WireResponse;

std::unique_ptr<Server> StartOrDie(ServerOptions options, HandlerFn handler) {
  options.address = options.address == "0.0.0.0" ? "127.0.0.1" : options.address;
  options.port = 0;
  Result<std::unique_ptr<Server>> server = Server::Start(std::move(options), std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(server).value() : nullptr;
}

// GET /fast on `client` until the answer is 503 (the server has begun to stop), or the last
// answer after 1000 tries.
WireResponse CallUntilDraining(WireClient& client) {
  WireResponse r;
  for (int i = 0; i < 1000; ++i) {
    r = client.Call("GET", "/fast");
    if (r.status == 503) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return r;
}

void Echo(const Request& request, Response& response) {
  response.content_type = "text/plain";
  response.body = request.method + " " + request.target;
}

TEST(HttpServer, OwnErrorsCarryTheCommonBodyAndReason) {
  auto server = StartOrDie({.threads = 1, .max_body_bytes = 16, .max_header_bytes = 256}, Echo);
  ASSERT_NE(server, nullptr);
  {
    WireClient client(server->port());
    WireResponse r = client.Call("POST", "/x", std::string(64, 'b'));
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r["Content-Type"], "application/json");
    EXPECT_EQ(r.body(), R"({"error":"the request body is larger than the limit of 16 bytes",)"
                        R"("reason":"body_too_large"})");
    EXPECT_TRUE(client.ClosedByServer());
  }
  {
    WireClient client(server->port());
    client.Send("GET /x HTTP/1.1\r\nX-Pad: " + std::string(512, 'a') + "\r\n\r\n");
    WireResponse r = client.Read();
    EXPECT_EQ(r.status, 431);
    EXPECT_THAT(r.body(), HasSubstr(R"("reason":"headers_too_large")"));
  }
  {
    WireClient client(server->port());
    client.Send("NOT HTTP AT ALL\r\n\r\n");
    WireResponse r = client.Read();
    EXPECT_EQ(r.status, 400);
    EXPECT_THAT(r.body(), HasSubstr(R"({"error":"malformed HTTP request: )"));
    EXPECT_THAT(r.body(), HasSubstr(R"("reason":"malformed_request")"));
  }
}

TEST(HttpServer, RequestsArrivingDuringTheDrainGet503Draining) {
  std::latch entered(1), release(1);
  auto server = StartOrDie({.threads = 2}, [&](const Request& request, Response& response) {
    if (request.target == "/slow") {
      entered.count_down();
      release.wait();
    }
    response.body = "done";
  });
  ASSERT_NE(server, nullptr);
  WireClient slow(server->port());
  WireClient other(server->port());
  ASSERT_EQ(other.Call("GET", "/fast").status, 200);
  slow.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  entered.wait();
  std::thread stopper([&] { server->Stop(); });
  WireResponse r = CallUntilDraining(other);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body(), R"({"error":"the server is shutting down","reason":"draining"})");
  EXPECT_EQ(r["Connection"], "close");
  release.count_down();
  EXPECT_EQ(slow.Read().body(), "done");
  stopper.join();
}

// A request whose header was read and whose body is still arriving when Stop() begins is an
// upload in progress: it is served and answered, not refused with 503 or cut off. One
// worker thread, so that an answer on another connection shows the header was handled.
TEST(HttpServer, AnUploadInProgressWhenStopBeginsIsServed) {
  std::latch header_read(1);
  ServerOptions options{.threads = 1};
  options.before_body = [&](const Request&, Response&) {
    header_read.count_down();
    return true;
  };
  auto server = StartOrDie(std::move(options), [](const Request& request, Response& response) {
    response.body = request.target + ":" + request.body;
  });
  ASSERT_NE(server, nullptr);
  WireClient uploading(server->port());
  WireClient other(server->port());
  uploading.Send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab");
  header_read.wait();
  ASSERT_EQ(other.Call("GET", "/fast").status, 200);  // the worker is past that header
  std::thread stopper([&] { server->Stop(); });
  WireResponse r = CallUntilDraining(other);
  EXPECT_EQ(r.status, 503);  // draining: a request that began after Stop()
  uploading.Send("cd");
  r = uploading.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body(), "/upload:abcd");
  stopper.join();
}

// A client that goes away in the middle of its body does not hold Stop() up: its request
// stops counting as in flight when its connection closes (the drain time-out here is far
// longer than any test).
TEST(HttpServer, AnUploadAbandonedMidBodyDoesNotHoldTheDrain) {
  std::latch header_read(1);
  ServerOptions options{.threads = 1, .drain_timeout = std::chrono::hours(1)};
  options.before_body = [&](const Request&, Response&) {
    header_read.count_down();
    return true;
  };
  auto server = StartOrDie(std::move(options), Echo);
  ASSERT_NE(server, nullptr);
  {
    WireClient uploading(server->port());
    uploading.Send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab");
    header_read.wait();
  }  // closed mid-body
  server->Stop();  // returns once the closed connection is released
}

TEST(HttpServer, ServerHeaderAndLocalhostAddress) {
  auto server =
      StartOrDie({.address = "localhost", .threads = 1, .server_header = "outpost-x"}, Echo);
  ASSERT_NE(server, nullptr);
  WireClient client(server->port());
  WireResponse r = client.Call("GET", "/a?b=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r["Server"], "outpost-x");
  EXPECT_EQ(r["Content-Type"], "text/plain");
  EXPECT_EQ(r.body(), "GET /a?b=1");
}

// Who called is settled per request: what an authorizer set on one request of a kept
// connection never reaches the next.
TEST(HttpServer, EveryRequestOfAConnectionStartsWithNoCaller) {
  auto server = StartOrDie({.threads = 1}, [](const Request& request, Response& response) {
    response.content_type = "text/plain";
    response.body = request.caller.credential.empty() ? "none" : request.caller.credential;
    request.caller.credential = "set-by-" + std::string(request.target);
  });
  ASSERT_NE(server, nullptr);
  WireClient client(server->port());
  EXPECT_EQ(client.Call("GET", "/first").body(), "none");
  EXPECT_EQ(client.Call("GET", "/second").body(), "none");
}

TEST(HttpServer, BadListenAddressIsInvalidArgumentAndBusyPortIsListenFailed) {
  Result<std::unique_ptr<Server>> bad = Server::Start({.address = "not-an-address"}, Echo);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto server = StartOrDie({.threads = 1}, Echo);
  ASSERT_NE(server, nullptr);
  Result<std::unique_ptr<Server>> busy =
      Server::Start({.address = "127.0.0.1", .port = server->port(), .threads = 1}, Echo);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(busy.status().reason(), "listen_failed");
}

// ---- Limits

// Whether a new connection is served: a request on it is answered (false when the server
// closes it unanswered).
bool ServedOnANewConnection(uint16_t port) {
  WireClient probe(port);
  if (probe.connect_error() != 0) return false;
  probe.Send("GET /probe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  if (probe.ClosedByServer()) return false;
  return probe.Read().status == 200;
}

TEST(HttpServer, ConnectionsBeyondThePerAddressLimitAreClosedAndGoneOnesFreeTheirPlace) {
  // Four loops: the address's count holds across them.
  auto server = StartOrDie({.threads = 4, .max_connections_per_address = 2}, Echo);
  ASSERT_NE(server, nullptr);
  WireClient first(server->port());
  auto second = std::make_unique<WireClient>(server->port());
  EXPECT_EQ(first.Call("GET", "/1").status, 200);
  EXPECT_EQ(second->Call("GET", "/2").status, 200);
  {
    WireClient third(server->port());
    ASSERT_EQ(third.connect_error(), 0);  // the kernel accepts; the server then closes it
    EXPECT_TRUE(third.ClosedByServer());
  }
  // The open ones are untouched, and a refused connection took no place.
  EXPECT_EQ(first.Call("GET", "/1").status, 200);
  EXPECT_EQ(second->Call("GET", "/2").status, 200);
  EXPECT_FALSE(ServedOnANewConnection(server->port()));

  // A connection that goes gives its place back once the server has seen it close.
  second.reset();
  bool served = false;
  for (int i = 0; i < 500 && !served; ++i) {
    served = ServedOnANewConnection(server->port());
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
  EXPECT_EQ(first.Call("GET", "/1").status, 200);
}

TEST(HttpServer, ABodyPastTheBufferedCapGets503ServerBusyUnreadAndUnhandled) {
  std::atomic<int> handled{0};
  std::latch entered(1), release(1);
  // Four loops, so that each connection below has a loop of its own.
  auto server = StartOrDie({.threads = 4, .max_body_bytes = 1 << 20, .max_buffered_bytes = 1000},
                           [&](const Request& request, Response& response) {
                             handled.fetch_add(1);
                             if (request.target == "/hold") {
                               entered.count_down();
                               release.wait();
                             }
                             response.body = std::to_string(request.body.size());
                           });
  ASSERT_NE(server, nullptr);
  {
    // Larger than the cap alone: refused on its header, before "100 Continue".
    WireClient client(server->port());
    client.Send(
        "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n");
    WireResponse r = client.Read();
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r["Retry-After"], "1");
    EXPECT_EQ(r["Connection"], "close");
    EXPECT_THAT(r.body(), HasSubstr(R"("reason":"server_busy")"));
    EXPECT_TRUE(client.ClosedByServer());
  }
  EXPECT_EQ(handled.load(), 0);

  // 600 bytes held by a running handler; 600 more would pass the cap.
  WireClient holder(server->port());
  holder.Send("POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 600\r\n\r\n" +
              std::string(600, 'h'));
  entered.wait();
  {
    WireClient client(server->port());
    WireResponse r = client.Call("POST", "/other", std::string(600, 'o'));
    EXPECT_EQ(r.status, 503);
    EXPECT_THAT(r.body(), HasSubstr(R"("reason":"server_busy")"));
  }
  {
    // A chunked body is counted as it grows: refused once it passes the cap.
    WireClient client(server->port());
    client.Send("POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                std::string("12c\r\n") + std::string(300, 'c') + "\r\n" + "12c\r\n" +
                std::string(300, 'c') + "\r\n0\r\n\r\n");
    WireResponse r = client.Read();
    EXPECT_EQ(r.status, 503);
    EXPECT_THAT(r.body(), HasSubstr(R"("reason":"server_busy")"));
  }
  EXPECT_EQ(handled.load(), 1);  // the holder only

  // The holder's bytes are given back when its handler returns.
  release.count_down();
  EXPECT_EQ(holder.Read().body(), "600");
  WireClient after(server->port());
  WireResponse r = after.Call("POST", "/other", std::string(600, 'o'));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body(), "600");
  EXPECT_EQ(after.Call("POST", "/again", std::string(900, 'o')).body(), "900");
  EXPECT_EQ(handled.load(), 3);
}

TEST(HttpServer, BeforeBodyRefusesOnTheHeaderWithoutReadingTheBody) {
  std::atomic<int> handled{0};
  std::mutex mu;
  std::vector<std::string> seen;  // guarded by mu: "<method> <target> <X-Site> <body bytes>"
  ServerOptions options{.threads = 1, .max_body_bytes = 32 << 20};
  options.before_body = [&](const Request& head, Response& refusal) {
    {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(head.method + " " + head.target + " " + std::string(head.Header("X-Site")) +
                     " " + std::to_string(head.body.size()));
    }
    if (head.target.starts_with("/site") && head.Header("X-Site").empty()) {
      SetErrorBody(401, "client_certificate_required", "site routes need a certificate", refusal);
      return false;
    }
    return true;
  };
  auto server = StartOrDie(std::move(options), [&](const Request& request, Response& response) {
    handled.fetch_add(1);
    response.body = std::to_string(request.body.size());
  });
  ASSERT_NE(server, nullptr);
  {
    // 16 MiB announced, none sent: the refusal comes instead of "100 Continue".
    WireClient client(server->port());
    client.Send(
        "POST /site/batches HTTP/1.1\r\nHost: x\r\nContent-Length: 16777216\r\n"
        "Expect: 100-continue\r\n\r\n");
    WireResponse r = client.Read();
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r["Connection"], "close");
    EXPECT_EQ(r.body(), R"({"error":"site routes need a certificate",)"
                        R"("reason":"client_certificate_required"})");
    EXPECT_TRUE(client.ClosedByServer());
  }
  {
    // The body's first bytes arrived with the header: still refused unread.
    WireClient client(server->port());
    client.Send("POST /site/batches HTTP/1.1\r\nHost: x\r\nContent-Length: 16777216\r\n\r\n" +
                std::string(1000, 'b'));
    EXPECT_EQ(client.Read().status, 401);
    EXPECT_TRUE(client.ClosedByServer());
  }
  EXPECT_EQ(handled.load(), 0);
  WireClient client(server->port());
  EXPECT_EQ(client.Call("POST", "/site/batches", "12345", {{"X-Site", "s1"}}).body(), "5");
  EXPECT_EQ(client.Call("GET", "/open").status, 200);
  EXPECT_EQ(handled.load(), 2);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_THAT(seen, ::testing::ElementsAre("POST /site/batches  0", "POST /site/batches  0",
                                           "POST /site/batches s1 0", "GET /open  0"));
}

TEST(HttpServer, TheFirstRequestHasOneDeadlineFromTheAccept) {
  // Idle and read time-outs of a minute each; the first request must be in within 1 s.
  auto server = StartOrDie({.threads = 1,
                            .idle_timeout = std::chrono::seconds(60),
                            .read_timeout = std::chrono::seconds(60),
                            .first_request_timeout = std::chrono::seconds(1)},
                           Echo);
  ASSERT_NE(server, nullptr);
  const auto start = std::chrono::steady_clock::now();
  {
    WireClient silent(server->port());
    EXPECT_TRUE(silent.ClosedByServer());
  }
  {
    WireClient trickle(server->port());
    trickle.Send("GET /x HTTP/1.1\r\nHost: x\r\n");  // the header never ends
    EXPECT_TRUE(trickle.ClosedByServer());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  // Once the first request is in, the idle time-out applies between requests.
  WireClient kept(server->port());
  EXPECT_EQ(kept.Call("GET", "/1").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(kept.Call("GET", "/2").status, 200);
}

// ---- Deferred answers

// Answers a handler has deferred, kept by a test until it sends (or drops) them, with the
// request and response each one will send. Thread-safe.
class Deferrals {
 public:
  // A handler: defers every request's answer and keeps it.
  HandlerFn Handler() {
    return [this](const Request& request, Response& response) { Keep(request, response); };
  }

  void Keep(const Request& request, Response& response) {
    DeferredResponse deferred = request.defer();
    ASSERT_TRUE(deferred);
    std::lock_guard<std::mutex> lock(mu_);
    held_.push_back(Held{std::move(deferred), &request, &response});
    changed_.notify_all();
  }

  // Waits until `n` answers are held.
  void WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return held_.size() >= n; });
  }

  // The request of the oldest answer held.
  const Request& OldestRequest() {
    std::lock_guard<std::mutex> lock(mu_);
    return *held_.front().request;
  }

  // Sends the oldest answer held with `body`.
  void SendOldest(std::string body) {
    Held held = Pop();
    held.response->content_type = "text/plain";
    held.response->body = std::move(body);
    held.deferred.Send();
    EXPECT_FALSE(held.deferred);
  }

  // Destroys the oldest answer held unsent.
  void DropOldest() { Pop(); }

 private:
  struct Held {
    DeferredResponse deferred;
    const Request* request;
    Response* response;
  };

  Held Pop() {
    std::lock_guard<std::mutex> lock(mu_);
    Held held = std::move(held_.front());
    held_.erase(held_.begin());
    return held;
  }

  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Held> held_;  // guarded by mu_; oldest first
};

// Threads that send deferred answers after a pause; joined when it goes.
class LateSenders {
 public:
  ~LateSenders() {
    for (std::thread& t : threads_) t.join();
  }

  // Sends `deferred` with `body` after `pause`, on a thread of its own; `log` (when set)
  // gets "send <body>" just before.
  void Send(DeferredResponse deferred, Response& response, std::string body,
            std::chrono::milliseconds pause, std::function<void(std::string)> log = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([deferred = std::move(deferred), &response, body = std::move(body),
                           pause, log = std::move(log)]() mutable {
      std::this_thread::sleep_for(pause);
      if (log) log("send " + body);
      response.content_type = "text/plain";
      response.body = body;
      deferred.Send();
    });
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;  // guarded by mu_
};

TEST(HttpDeferred, AnAnswerSentLaterFromAnotherThreadArrivesAndTheConnectionGoesOn) {
  LateSenders senders;
  Router router;  // the router hands its handlers the same request, defer included
  router.Prefix("GET", "/", [&](const Request& request, Response& response) {
    senders.Send(request.defer(), response, "later " + request.target,
                 std::chrono::milliseconds(50));
  });
  auto server = StartOrDie({.threads = 1}, router.AsHandler());
  ASSERT_NE(server, nullptr);
  WireClient client(server->port());
  WireResponse first = client.Call("GET", "/a");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first["Content-Type"], "text/plain");
  EXPECT_EQ(first.body(), "later /a");
  EXPECT_TRUE(first.keep_alive());
  EXPECT_EQ(client.Call("GET", "/b").body(), "later /b");
}

TEST(HttpDeferred, WhileARequestIsDeferredItsLoopServesOtherConnections) {
  Deferrals held;
  // One loop: every connection below is served by the same thread.
  auto server = StartOrDie({.threads = 1}, [&](const Request& request, Response& response) {
    if (request.target == "/wait") {
      held.Keep(request, response);
      return;
    }
    Echo(request, response);
  });
  ASSERT_NE(server, nullptr);
  WireClient waiting(server->port());
  waiting.Send("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
  held.WaitFor(1);
  for (int i = 0; i < 3; ++i) {
    WireClient other(server->port());
    EXPECT_EQ(other.Call("GET", "/other").body(), "GET /other");
  }
  held.SendOldest("waited");
  EXPECT_EQ(waiting.Read().body(), "waited");
  EXPECT_EQ(waiting.Call("GET", "/after").body(), "GET /after");
}

TEST(HttpDeferred, PipelinedRequestsBehindADeferredOneAreAnsweredInOrder) {
  std::mutex mu;
  std::vector<std::string> log;  // guarded by mu
  auto append = [&](std::string line) {
    std::lock_guard<std::mutex> lock(mu);
    log.push_back(std::move(line));
  };
  LateSenders senders;
  auto server = StartOrDie({.threads = 1}, [&](const Request& request, Response& response) {
    append("handle " + request.target);
    if (request.target.starts_with("/deferred")) {
      senders.Send(request.defer(), response, request.target, std::chrono::milliseconds(30),
                   append);
      return;
    }
    response.content_type = "text/plain";
    response.body = request.target;
  });
  ASSERT_NE(server, nullptr);
  WireClient client(server->port());
  std::string requests;
  for (const char* target : {"/deferred/1", "/sync/2", "/deferred/3", "/sync/4"}) {
    requests += std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  client.Send(requests);  // in one write
  for (const char* target : {"/deferred/1", "/sync/2", "/deferred/3", "/sync/4"}) {
    EXPECT_EQ(client.Read().body(), target);
  }
  std::lock_guard<std::mutex> lock(mu);
  // No request behind a deferred one is read before its answer is sent.
  EXPECT_THAT(log, ::testing::ElementsAre("handle /deferred/1", "send /deferred/1",
                                          "handle /sync/2", "handle /deferred/3",
                                          "send /deferred/3", "handle /sync/4"));
}

TEST(HttpDeferred, AnAnswerDroppedUnsentIs500AndDeferIsOncePerRequest) {
  LateSenders senders;
  auto server = StartOrDie({.threads = 2}, [&](const Request& request, Response& response) {
    response.content_type = "text/plain";
    if (request.target == "/drop-now") {
      response.body = "never sent";
      request.defer();  // the DeferredResponse goes at once
    } else if (request.target == "/drop-later") {
      std::thread([deferred = request.defer()]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        DeferredResponse gone = std::move(deferred);
      }).detach();
    } else if (request.target == "/twice") {
      DeferredResponse first = request.defer();
      DeferredResponse second = request.defer();
      EXPECT_TRUE(first);
      EXPECT_FALSE(second);
      second.Send();  // does nothing
      senders.Send(std::move(first), response, "once", std::chrono::milliseconds(0));
    } else {
      Echo(request, response);
    }
  });
  ASSERT_NE(server, nullptr);
  WireClient client(server->port());
  for (const char* target : {"/drop-now", "/drop-later"}) {
    WireResponse r = client.Call("GET", target);
    EXPECT_EQ(r.status, 500) << target;
    EXPECT_EQ(r["Content-Type"], "application/json");
    EXPECT_EQ(r.body(), R"({"error":"the request was abandoned","reason":"internal"})");
    EXPECT_TRUE(r.keep_alive());
  }
  EXPECT_EQ(client.Call("GET", "/twice").body(), "once");
  EXPECT_EQ(client.Call("GET", "/sync").body(), "GET /sync");

  // Outside a listener (a test calling a handler directly) there is nothing to defer to.
  Request direct;
  EXPECT_FALSE(direct.defer);
  DeferredResponse empty;
  EXPECT_FALSE(empty);
  empty.Send();
}

TEST(HttpDeferred, AnAnswerSentInsideItsHandlerIsAnsweredAsASynchronousOne) {
  auto server = StartOrDie({.threads = 1}, [&](const Request& request, Response& response) {
    response.content_type = "text/plain";
    if (request.target == "/send-now") {
      DeferredResponse deferred = request.defer();
      EXPECT_TRUE(deferred);
      response.body = "sent inside";
      deferred.Send();
      // Settled: the request's answer may not be deferred again.
      EXPECT_FALSE(request.defer());
    } else {
      Echo(request, response);
    }
  });
  ASSERT_NE(server, nullptr);
  WireClient client(server->port());
  for (int i = 0; i < 3; ++i) {
    WireResponse r = client.Call("GET", "/send-now");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body(), "sent inside");
    EXPECT_TRUE(r.keep_alive());
  }
  EXPECT_EQ(client.Call("GET", "/sync").body(), "GET /sync");
}

TEST(HttpDeferred, AClientThatClosesBeforeTheAnswerIsSeenAndTheAnswerDropped) {
  Deferrals held;
  auto server = StartOrDie({.threads = 1}, [&](const Request& request, Response& response) {
    if (request.target == "/gone") {
      held.Keep(request, response);
      return;
    }
    Echo(request, response);
  });
  ASSERT_NE(server, nullptr);
  {
    WireClient gone(server->port());
    gone.Send("GET /gone HTTP/1.1\r\nHost: x\r\n\r\n");
    held.WaitFor(1);
    EXPECT_FALSE(held.OldestRequest().client_gone());
  }
  // client_gone keeps working while the answer is deferred.
  bool seen = false;
  for (int i = 0; i < 1000 && !seen; ++i) {
    seen = held.OldestRequest().client_gone();
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(seen);
  held.SendOldest("nobody reads this");
  WireClient next(server->port());
  EXPECT_EQ(next.Call("GET", "/next").body(), "GET /next");
}

TEST(HttpDeferred, StopWaitsForADeferredAnswerAndNewRequestsGet503) {
  Deferrals held;
  auto server = StartOrDie({.threads = 2}, [&](const Request& request, Response& response) {
    if (request.target == "/wait") {
      held.Keep(request, response);
      return;
    }
    Echo(request, response);
  });
  ASSERT_NE(server, nullptr);
  WireClient waiting(server->port());
  WireClient other(server->port());
  ASSERT_EQ(other.Call("GET", "/fast").status, 200);
  waiting.Send("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
  held.WaitFor(1);
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    server->Stop();
    stopped.store(true);
  });
  WireResponse r = CallUntilDraining(other);
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body(), HasSubstr(R"("reason":"draining")"));
  EXPECT_FALSE(stopped.load());  // still draining: the deferred answer is in flight
  held.SendOldest("answered while draining");
  EXPECT_EQ(waiting.Read().body(), "answered while draining");
  stopper.join();
  EXPECT_TRUE(stopped.load());
}

TEST(HttpDeferred, AnAnswerHeldPastTheDrainIsDroppedAndOutlivesTheServer) {
  Deferrals held;
  auto server = StartOrDie({.threads = 1, .drain_timeout = std::chrono::milliseconds(50)},
                           held.Handler());
  ASSERT_NE(server, nullptr);
  WireClient client(server->port());
  client.Send("GET /kept HTTP/1.1\r\nHost: x\r\n\r\n");
  held.WaitFor(1);
  server->Stop();  // gives up on it after the drain time-out and closes the connection
  EXPECT_TRUE(client.ClosedByServer());
  server.reset();
  // The request and response are still the holder's; sending is dropped.
  EXPECT_EQ(held.OldestRequest().target, "/kept");
  EXPECT_TRUE(held.OldestRequest().client_gone());
  held.SendOldest("too late");
}

TEST(HttpDeferred, ADeferredBodyCountsAgainstTheBufferedCapUntilSent) {
  Deferrals held;
  auto server = StartOrDie({.threads = 2, .max_body_bytes = 1 << 20, .max_buffered_bytes = 1000},
                           [&](const Request& request, Response& response) {
                             if (request.target == "/hold") {
                               held.Keep(request, response);
                               return;
                             }
                             response.body = std::to_string(request.body.size());
                           });
  ASSERT_NE(server, nullptr);
  WireClient holder(server->port());
  holder.Send("POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 600\r\n\r\n" +
              std::string(600, 'h'));
  held.WaitFor(1);
  {
    // The handler has returned, its answer is not sent: its 600 bytes still count.
    WireClient client(server->port());
    WireResponse r = client.Call("POST", "/other", std::string(600, 'o'));
    EXPECT_EQ(r.status, 503);
    EXPECT_THAT(r.body(), HasSubstr(R"("reason":"server_busy")"));
  }
  EXPECT_EQ(held.OldestRequest().body.size(), 600u);
  held.SendOldest("sent");
  EXPECT_EQ(holder.Read().body(), "sent");
  WireClient after(server->port());
  EXPECT_EQ(after.Call("POST", "/other", std::string(600, 'o')).body(), "600");
}

// ---- TLS

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A CA of its own with a server certificate for 127.0.0.1 and a client certificate it
// issued, as PEM files.
struct TestPki {
  std::string ca_pem;
  TlsServerOptions server;  // the server's files, with this CA as the client CA
  std::string client_cert_path;
  std::string client_key_path;
};

Result<TestPki> MakePki(const ::outpost::testing::TempDir& dir, const std::string& name) {
  const int64_t now = UnixNow();
  const crypto::Validity validity{.not_before_s = now - 3600, .not_after_s = now + 24 * 3600};
  OUTPOST_ASSIGN_OR_RETURN(crypto::KeyPairPem ca_key,
                           crypto::GenerateKeyPairPem(crypto::KeyAlgorithm::kEcdsaP256));
  OUTPOST_ASSIGN_OR_RETURN(
      std::string ca_pem,
      crypto::SelfSignCertificate({.common_name = name + " CA",
                                   .validity = validity,
                                   .is_ca = true,
                                   .key_usage = crypto::kKeyCertSign | crypto::kCrlSign},
                                  ca_key.private_pem));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<crypto::CertificateIssuer> issuer,
                           crypto::CertificateIssuer::Open(ca_pem, ca_key.private_pem));
  const std::string prefix = dir.File(name);
  for (const bool server : {true, false}) {
    OUTPOST_ASSIGN_OR_RETURN(crypto::KeyPairPem key,
                             crypto::GenerateKeyPairPem(crypto::KeyAlgorithm::kEcdsaP256));
    crypto::CertificateSpec spec{.common_name = name + (server ? " server" : " client"),
                                 .validity = validity,
                                 .key_usage = crypto::kDigitalSignature};
    if (server) {
      spec.extended_key_usage = {crypto::ExtendedKeyUsage::kServerAuth};
      spec.subject_alt_names = {"127.0.0.1"};
    } else {
      spec.extended_key_usage = {crypto::ExtendedKeyUsage::kClientAuth};
    }
    OUTPOST_ASSIGN_OR_RETURN(std::string cert, issuer->Issue(spec, key.public_pem));
    const std::string base = prefix + (server ? "-server" : "-client");
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(base + ".crt", cert, 0600));
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(base + ".key", key.private_pem, 0600));
  }
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(prefix + "-ca.crt", ca_pem, 0600));
  TestPki pki;
  pki.ca_pem = ca_pem;
  pki.server = {.cert_chain_path = prefix + "-server.crt",
                .key_path = prefix + "-server.key",
                .client_ca_path = prefix + "-ca.crt"};
  pki.client_cert_path = prefix + "-client.crt";
  pki.client_key_path = prefix + "-client.key";
  return pki;
}

// Answers "<target> <tls|plain>[ presented][ verified]" from what TLS established.
void PeerEcho(const Request& request, Response& response) {
  response.content_type = "text/plain";
  response.body = request.target + (request.peer.tls ? " tls" : " plain") +
                  (request.peer.cert_presented ? " presented" : "") +
                  (request.peer.cert_verified ? " verified" : "");
}

std::string HttpsUrl(const Server& server) {
  return "https://127.0.0.1:" + std::to_string(server.port());
}

// One request on a connection of its own, trusting `ca_pem` only.
Result<ClientResponse> FetchTrusting(const Server& server, const std::string& ca_pem,
                                     std::string_view target) {
  return Fetch({.base_url = HttpsUrl(server),
                .ca_pem = ca_pem,
                .connect_timeout = std::chrono::seconds(10),
                .io_timeout = std::chrono::seconds(10)},
               {.target = target});
}

TEST(HttpServerTls, ReloadServesNewConnectionsWithTheNewFilesAndKeepsOpenOnes) {
  ::outpost::testing::TempDir dir;
  Result<TestPki> a = MakePki(dir, "a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  Result<TestPki> b = MakePki(dir, "b");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto server = StartOrDie({.threads = 2, .tls = a->server}, PeerEcho);
  ASSERT_NE(server, nullptr);

  // A kept connection, opened under a's certificate. Its client trusts a's CA only: were the
  // connection dropped, its next request would go out on a new one and fail to verify b's.
  Result<std::unique_ptr<Client>> kept =
      Client::Create({.base_url = HttpsUrl(*server), .ca_pem = a->ca_pem, .keep_alive = true});
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  Result<ClientResponse> before = (*kept)->Request("GET", "/before");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(before->body, "/before tls");

  Status reloaded = server->ReloadTls(b->server);
  ASSERT_TRUE(reloaded.ok()) << reloaded.ToString();
  Result<ClientResponse> after = (*kept)->Request("GET", "/after");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->body, "/after tls");
  // New connections get b's certificate.
  Result<ClientResponse> old_ca = FetchTrusting(*server, a->ca_pem, "/new");
  ASSERT_FALSE(old_ca.ok());
  EXPECT_EQ(old_ca.status().code(), StatusCode::kUnavailable);
  Result<ClientResponse> new_ca = FetchTrusting(*server, b->ca_pem, "/new");
  ASSERT_TRUE(new_ca.ok()) << new_ca.status().ToString();
  EXPECT_EQ(new_ca->body, "/new tls");

  // Files that do not load are refused, and b's stay in use.
  TlsServerOptions mismatched = b->server;
  mismatched.key_path = a->server.key_path;
  TlsServerOptions missing_cert = b->server;
  missing_cert.cert_chain_path = dir.File("missing.crt");
  TlsServerOptions missing_ca = b->server;
  missing_ca.client_ca_path = dir.File("missing-ca.crt");
  for (const TlsServerOptions& bad : {mismatched, missing_cert, missing_ca}) {
    Status refused = server->ReloadTls(bad);
    EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition)
        << bad.cert_chain_path << " " << bad.key_path << " " << bad.client_ca_path;
  }
  new_ca = FetchTrusting(*server, b->ca_pem, "/still");
  ASSERT_TRUE(new_ca.ok()) << new_ca.status().ToString();
  EXPECT_EQ(new_ca->body, "/still tls");
  EXPECT_FALSE(FetchTrusting(*server, a->ca_pem, "/still").ok());
  after = (*kept)->Request("GET", "/kept");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->body, "/kept tls");

  // A plain server has no TLS to reload.
  auto plain = StartOrDie({.threads = 1}, PeerEcho);
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->ReloadTls(b->server).code(), StatusCode::kFailedPrecondition);
}

// A bare OpenSSL client of one TLS version that presents a client certificate and offers
// the session of its last connection on the next one. It does not verify the server: the
// test is about sessions.
class ResumingTlsClient {
 public:
  ResumingTlsClient(int version, const TestPki& pki) : ctx_(SSL_CTX_new(TLS_client_method())) {
    SSL_CTX_set_min_proto_version(ctx_, version);
    SSL_CTX_set_max_proto_version(ctx_, version);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    EXPECT_EQ(SSL_CTX_use_certificate_file(ctx_, pki.client_cert_path.c_str(), SSL_FILETYPE_PEM),
              1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx_, pki.client_key_path.c_str(), SSL_FILETYPE_PEM), 1);
  }
  ~ResumingTlsClient() {
    if (session_ != nullptr) SSL_SESSION_free(session_);
    SSL_CTX_free(ctx_);
  }
  ResumingTlsClient(const ResumingTlsClient&) = delete;
  ResumingTlsClient& operator=(const ResumingTlsClient&) = delete;

  // "GET target" with "Connection: close" on a new connection; the whole answer ("" when the
  // handshake failed), and in `resumed` whether the session was resumed.
  std::string Get(uint16_t port, std::string_view target, bool& resumed) {
    resumed = false;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address))) {
      ADD_FAILURE() << "connect failed";
      if (fd >= 0) ::close(fd);
      return "";
    }
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd);
    if (session_ != nullptr) SSL_set_session(ssl, session_);
    std::string answer;
    if (SSL_connect(ssl) == 1) {
      const std::string request = "GET " + std::string(target) +
                                  " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
      if (SSL_write(ssl, request.data(), static_cast<int>(request.size())) > 0) {
        char chunk[4096];
        for (int n; (n = SSL_read(ssl, chunk, sizeof(chunk))) > 0;) {
          answer.append(chunk, static_cast<size_t>(n));
        }
      }
      resumed = SSL_session_reused(ssl) == 1;
      // A connection ended without our close_notify would spoil its session for resumption.
      SSL_shutdown(ssl);
      if (SSL_SESSION* session = SSL_get1_session(ssl)) {
        if (session_ != nullptr) SSL_SESSION_free(session_);
        session_ = session;
      }
    }
    SSL_free(ssl);
    ::close(fd);
    return answer;
  }

 private:
  SSL_CTX* ctx_;
  SSL_SESSION* session_ = nullptr;
};

TEST(HttpServerTls, SessionsAreResumedWithAClientCertificateAskedFor) {
  ::outpost::testing::TempDir dir;
  Result<TestPki> pki = MakePki(dir, "r");
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  auto server = StartOrDie({.threads = 2, .tls = pki->server}, PeerEcho);
  ASSERT_NE(server, nullptr);
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3");
    ResumingTlsClient client(version, *pki);
    bool resumed = true;
    EXPECT_THAT(client.Get(server->port(), "/full", resumed),
                HasSubstr("/full tls presented verified"));
    EXPECT_FALSE(resumed);
    // The resumed session still tells the handler about the client's certificate.
    EXPECT_THAT(client.Get(server->port(), "/resumed", resumed),
                HasSubstr("/resumed tls presented verified"));
    EXPECT_TRUE(resumed);
  }
}

TEST(HttpServerTls, TheHandshakeIsWithinTheFirstRequestDeadline) {
  ::outpost::testing::TempDir dir;
  Result<TestPki> pki = MakePki(dir, "h");
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  auto server = StartOrDie({.threads = 1,
                            .idle_timeout = std::chrono::seconds(60),
                            .read_timeout = std::chrono::seconds(60),
                            .first_request_timeout = std::chrono::seconds(1),
                            .tls = pki->server},
                           PeerEcho);
  ASSERT_NE(server, nullptr);
  const auto start = std::chrono::steady_clock::now();
  WireClient silent(server->port());  // connects and never says hello
  EXPECT_TRUE(silent.ClosedByServer());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

TEST(HttpServerTls, ADeferredAnswerIsSentOverTls) {
  ::outpost::testing::TempDir dir;
  Result<TestPki> pki = MakePki(dir, "d");
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  LateSenders senders;
  auto server = StartOrDie({.threads = 1, .tls = pki->server},
                           [&](const Request& request, Response& response) {
                             senders.Send(request.defer(), response, "deferred " + request.target,
                                          std::chrono::milliseconds(20));
                           });
  ASSERT_NE(server, nullptr);
  for (const char* target : {"/1", "/2"}) {
    Result<ClientResponse> r = FetchTrusting(*server, pki->ca_pem, target);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, std::string("deferred ") + target);
  }
}

TEST(Router, MatchesExactBeforePrefixAndTheLongestPrefix) {
  Router router;
  auto answer = [](std::string text) {
    return [text](const Request&, Response& response) { response.body = text; };
  };
  router.Exact("GET", "/api/v1/sites", answer("exact"));
  router.Prefix("GET", "/api/", answer("api"));
  router.Prefix("GET", "/api/v1/", answer("v1"));
  router.Prefix("*", "/any/", answer("any"));
  auto call = [&](std::string method, std::string target) {
    Response response;
    router.Handle(Request{.method = method, .target = target}, response);
    return response;
  };
  EXPECT_EQ(call("GET", "/api/v1/sites?tenant=a").body, "exact");
  EXPECT_EQ(call("GET", "/api/v1/sites/s1").body, "v1");
  EXPECT_EQ(call("GET", "/api/v2").body, "api");
  EXPECT_EQ(call("DELETE", "/any/thing").body, "any");

  Response missing = call("GET", "/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, R"({"error":"no such path \"/nothing\"","reason":"not_found"})");

  Response wrong = call("POST", "/api/v1/sites");
  EXPECT_EQ(wrong.status, 405);
  ASSERT_EQ(wrong.headers.size(), 1u);
  EXPECT_EQ(wrong.headers[0].first, "Allow");
  EXPECT_EQ(wrong.headers[0].second, "GET");
  EXPECT_THAT(wrong.body, HasSubstr(R"("reason":"method_not_allowed")"));
}

// The authorizer sees each routed request with its route's access, before the handler; a
// refusal is the answer and the handler never runs. AuthorizeHead asks the same of a head.
TEST(Router, AsksTheAuthorizerWithTheRoutesAccessBeforeTheHandler) {
  Router router;
  int handled = 0;
  auto handler = [&](const Request& request, Response& response) {
    ++handled;
    response.body = request.caller.credential;
  };
  router.Exact("GET", "/open", handler);
  router.Exact("POST", "/label", handler, 2);
  std::vector<uint32_t> asked;
  router.SetAuthorizer([&](const Request& request, uint32_t access, Response& refusal) {
    asked.push_back(access);
    if (request.Header("authorization") != "ok") {
      SetErrorBody(401, "credential_missing", "no", refusal);
      return false;
    }
    request.caller.kind = Caller::Kind::kClient;
    request.caller.credential = "alice";
    return true;
  });
  Request refused{.method = "POST", .target = "/label"};
  Response response;
  router.Handle(refused, response);
  EXPECT_EQ(response.status, 401);
  EXPECT_EQ(handled, 0);
  EXPECT_FALSE(router.AuthorizeHead(refused, response));

  Request allowed{.method = "POST", .target = "/label", .headers = {{"Authorization", "ok"}}};
  Response served;
  router.Handle(allowed, served);
  EXPECT_EQ(served.status, 200);
  EXPECT_EQ(served.body, "alice");
  EXPECT_EQ(handled, 1);
  EXPECT_TRUE(router.AuthorizeHead(allowed, served));
  EXPECT_EQ(asked, (std::vector<uint32_t>{2, 2, 2, 2}));

  // No route, or no route for the method: the head passes, and the 404/405 come later.
  Response ignored;
  EXPECT_TRUE(router.AuthorizeHead(Request{.method = "GET", .target = "/none"}, ignored));
  EXPECT_TRUE(router.AuthorizeHead(Request{.method = "GET", .target = "/label"}, ignored));
  EXPECT_EQ(asked.size(), 4u);
}

TEST(Router, MatchesThePathWithoutTheQueryString) {
  Router router;
  std::string seen;
  router.Exact("GET", "/v1/records", [&](const Request& request, Response& response) {
    seen = request.target;
    response.body = "records";
  });
  router.Prefix("GET", "/assets/", [](const Request&, Response& response) {
    response.body = "asset";
  });
  auto call = [&](std::string method, std::string target) {
    Response response;
    router.Handle(Request{.method = method, .target = target}, response);
    return response;
  };
  // The handler sees the whole target and reads the query itself.
  EXPECT_EQ(call("GET", "/v1/records?kind=feedback&limit=2").body, "records");
  EXPECT_EQ(seen, "/v1/records?kind=feedback&limit=2");
  EXPECT_EQ(call("GET", "/v1/records?").body, "records");
  EXPECT_EQ(call("GET", "/assets/app.js?v=3").body, "asset");
  // A '?' ends the path: the query never makes a prefix or an exact path match.
  EXPECT_EQ(call("GET", "/v1?/records").status, 404);
  EXPECT_EQ(call("GET", "/assets?/app.js").status, 404);
  Response missing = call("GET", "/v1/recordsx?kind=feedback");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, R"({"error":"no such path \"/v1/recordsx\"","reason":"not_found"})");
  // A long unknown path is quoted up to 200 bytes.
  Response long_path = call("GET", "/" + std::string(300, 'x'));
  EXPECT_EQ(long_path.status, 404);
  EXPECT_THAT(long_path.body, HasSubstr(std::string(199, 'x') + R"(...\")"));
  EXPECT_THAT(long_path.body, Not(HasSubstr(std::string(200, 'x'))));
}

TEST(Router, HeadGoesToTheGetRouteUnlessAHeadRouteTakesIt) {
  Router router;
  auto answer = [](std::string text) {
    return [text](const Request& request, Response& response) {
      response.body = text + " " + request.method;
    };
  };
  router.Exact("GET", "/page", answer("page"));
  router.Exact("GET", "/own", answer("get"));
  router.Exact("HEAD", "/own", answer("head"));
  router.Exact("POST", "/post-only", answer("post"));
  router.Prefix("*", "/any/", answer("any"));
  auto call = [&](std::string method, std::string target) {
    Response response;
    router.Handle(Request{.method = method, .target = target}, response);
    return response;
  };
  EXPECT_EQ(call("HEAD", "/page?x=1").body, "page HEAD");
  EXPECT_EQ(call("HEAD", "/own").body, "head HEAD");
  EXPECT_EQ(call("GET", "/own").body, "get GET");
  EXPECT_EQ(call("HEAD", "/any/thing").body, "any HEAD");
  // No GET route: HEAD is a method like any other.
  Response head_on_post = call("HEAD", "/post-only");
  EXPECT_EQ(head_on_post.status, 405);
  ASSERT_EQ(head_on_post.headers.size(), 1u);
  EXPECT_EQ(head_on_post.headers[0].second, "POST");
  // Allow names the registered methods in registration order.
  Response wrong = call("DELETE", "/own");
  EXPECT_EQ(wrong.status, 405);
  ASSERT_EQ(wrong.headers.size(), 1u);
  EXPECT_EQ(wrong.headers[0].first, "Allow");
  EXPECT_EQ(wrong.headers[0].second, "GET, HEAD");
  EXPECT_EQ(wrong.body, R"({"error":"method DELETE is not allowed on \"/own\"",)"
                        R"("reason":"method_not_allowed"})");
}

TEST(Router, HeadOverARunningServerSendsTheHeadersOnly) {
  Router router;
  router.Exact("GET", "/hello", [](const Request&, Response& response) { response.body = "hi"; });
  auto server = StartOrDie({.threads = 1}, router.AsHandler());
  ASSERT_NE(server, nullptr);
  WireClient client(server->port());
  auto head = client.Call("HEAD", "/hello");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body(), "");
  EXPECT_EQ(head["Content-Length"], "2");  // the GET answer's length, no body
  EXPECT_EQ(client.Call("GET", "/hello").body(), "hi");
}

TEST(Router, RoutesRequestsOfARunningServer) {
  Router router;
  router.Exact("GET", "/hello", [](const Request&, Response& response) { response.body = "hi"; });
  auto server = StartOrDie({.threads = 1}, router.AsHandler());
  ASSERT_NE(server, nullptr);
  WireClient client(server->port());
  EXPECT_EQ(client.Call("GET", "/hello").body(), "hi");
  EXPECT_EQ(client.Call("GET", "/other").status, 404);
}

}  // namespace
}  // namespace outpost::http
