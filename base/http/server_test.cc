// The server core on 127.0.0.1, port 0, driven by the wire client: the errors it answers by
// itself carry the common body {"error", "reason"} (body_too_large, headers_too_large,
// malformed_request, draining), the Server header, "localhost" as a listen address, and the
// Router's matching (exact over prefix, longest prefix, the path without its query string,
// HEAD on GET routes, 404 and 405 with Allow). The scoring server's suite
// (serve/http_server_test.cc) covers keep-alive, pipelining, deadlines and drain over the
// same core; base/http/client_test.cc covers TLS and client certificates.
#include "base/http/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <latch>
#include <memory>
#include <string>
#include <thread>

#include "base/http/testing/wire_client.h"

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
  WireResponse r;
  for (int i = 0; i < 1000; ++i) {
    r = other.Call("GET", "/fast");
    if (r.status == 503) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body(), R"({"error":"the server is shutting down","reason":"draining"})");
  EXPECT_EQ(r["Connection"], "close");
  release.count_down();
  EXPECT_EQ(slow.Read().body(), "done");
  stopper.join();
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
