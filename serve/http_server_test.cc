// The scoring server over real sockets: a real HttpServer on a loopback port chosen by the
// kernel, driven by a small synchronous client that shows what is on the wire
// (base/http/testing/wire_client.h).
#include "serve/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <latch>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/file.h"
#include "base/http/testing/wire_client.h"
#include "base/testing/test_util.h"
#include "serve/handler.h"
#include "serve/testing/fake_models.h"

namespace outpost::serve {
namespace {

using engine::DataType;
using ::testing::HasSubstr;

// A blocking HTTP/1.1 client on one connection, and the responses it reads.
using Client = http::testing::WireClient;
using Response = http::testing::WireResponse;

constexpr std::string_view kSimpleRequest =
    R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]},)"
    R"({"name":"INPUT1","datatype":"INT32","shape":[1,4],"data":[1,1,1,1]}]})";
constexpr std::string_view kSimpleResponse =
    R"({"model_name":"simple","model_version":"1","outputs":[)"
    R"({"name":"OUTPUT0","datatype":"INT32","shape":[1,4],"data":[2,3,4,5]},)"
    R"({"name":"OUTPUT1","datatype":"INT32","shape":[1,4],"data":[0,1,2,3]}]})";
constexpr std::string_view kEchoRequest =
    R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1.5,-2]}]})";

// A repository, a handler and a server on it.
class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options,
                   std::vector<std::shared_ptr<const ServableModel>> extra = {}) {
    std::vector<std::shared_ptr<const ServableModel>> models = {
        testing::ReadyServable("simple",
                               {{1, std::make_shared<testing::AddSubModel>(DataType::kInt32)}}),
        testing::ReadyServable("failing", {{1, std::make_shared<testing::FailingModel>(
                                                   InternalError("backend exploded"))}}),
    };
    for (auto& m : extra) models.push_back(std::move(m));
    repository_ = ModelRepository::FromModels(std::move(models));
    handler_ = std::make_unique<Handler>(*repository_, HandlerOptions{});
    options.address = "127.0.0.1";
    options.port = 0;
    Result<std::unique_ptr<HttpServer>> server = HttpServer::Start(
        options, [this](const HttpRequest& rq, HttpResponse& rs) { handler_->Handle(rq, rs); });
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    ASSERT_NE(server_->port(), 0);
  }

  // Serves `repository` instead of the fixed models, with model control (load, unload) on.
  void StartOn(std::unique_ptr<ModelRepository> repository) {
    repository_ = std::move(repository);
    handler_ = std::make_unique<Handler>(*repository_, HandlerOptions{.allow_model_control = true});
    Result<std::unique_ptr<HttpServer>> server = HttpServer::Start(
        {.address = "127.0.0.1", .port = 0},
        [this](const HttpRequest& rq, HttpResponse& rs) { handler_->Handle(rq, rs); });
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }

  uint16_t port() const { return server_->port(); }

  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<Handler> handler_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, EveryEndpointAnswersOverTheWire) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 2}));
  Client client(port());
  ASSERT_FALSE(client.connect_error());

  Response meta = client.Call("GET", "/v2");
  EXPECT_EQ(meta.result_int(), 200);
  EXPECT_EQ(meta["Content-Type"], "application/json");
  EXPECT_EQ(meta.body(), R"({"name":"outpost","version":"0.1.0","extensions":["binary_tensor_data","model_repository","statistics"]})");

  Response live = client.Call("GET", "/v2/health/live");
  EXPECT_EQ(live.result_int(), 200);
  EXPECT_EQ(live.body(), R"({"live":true})");

  Response ready = client.Call("GET", "/v2/health/ready");
  EXPECT_EQ(ready.result_int(), 200);
  EXPECT_EQ(ready.body(), R"({"ready":true})");

  Response model = client.Call("GET", "/v2/models/simple/versions/1");
  EXPECT_EQ(model.result_int(), 200);
  EXPECT_THAT(model.body(), HasSubstr(R"("name":"simple","versions":["1"])"));

  Response model_ready = client.Call("GET", "/v2/models/simple/ready");
  EXPECT_EQ(model_ready.result_int(), 200);
  EXPECT_EQ(model_ready.body(), R"({"name":"simple","ready":true})");

  Response infer =
      client.Call("POST", "/v2/models/simple/infer", std::string(kSimpleRequest),
                  {{"Content-Type", "application/json"}});
  EXPECT_EQ(infer.result_int(), 200);
  EXPECT_EQ(infer.body(), kSimpleResponse);
  EXPECT_TRUE(infer.keep_alive());
}

TEST_F(HttpServerTest, BinaryTensorDataTravelsBothWays) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1}));
  Client client(port());
  std::string json =
      R"({"parameters":{"binary_data_output":true},"inputs":[)"
      R"({"name":"INPUT0","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}},)"
      R"({"name":"INPUT1","datatype":"INT32","shape":[1,4],"data":[1,1,1,1]}]})";
  const int32_t input0[4] = {1, 2, 3, 4};
  std::string body = json + std::string(reinterpret_cast<const char*>(input0), sizeof(input0));
  Response r = client.Call("POST", "/v2/models/simple/infer", body,
                           {{"Content-Type", "application/octet-stream"},
                            {"Inference-Header-Content-Length", std::to_string(json.size())}});
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(r["Content-Type"], "application/octet-stream");
  const size_t json_size = std::stoul(std::string(r["Inference-Header-Content-Length"]));
  EXPECT_EQ(r.body().substr(0, json_size),
            R"({"model_name":"simple","model_version":"1","outputs":[)"
            R"({"name":"OUTPUT0","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}},)"
            R"({"name":"OUTPUT1","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}}]})");
  const int32_t expected[8] = {2, 3, 4, 5, 0, 1, 2, 3};
  EXPECT_EQ(r.body().substr(json_size),
            std::string(reinterpret_cast<const char*>(expected), sizeof(expected)));
}

TEST_F(HttpServerTest, ErrorStatusesArriveWithJsonBodies) {
  ASSERT_NO_FATAL_FAILURE(StartServer(
      {.threads = 1, .max_body_bytes = 1024},
      {testing::BrokenServable("broken", 1, "model.json is missing")}));
  Client client(port());

  Response bad = client.Call("POST", "/v2/models/simple/infer", "{not json");
  EXPECT_EQ(bad.result_int(), 400);
  EXPECT_EQ(bad["Content-Type"], "application/json");
  EXPECT_THAT(bad.body(), HasSubstr(R"({"error":"malformed JSON)"));

  Response missing = client.Call("GET", "/v2/models/nope");
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_EQ(missing.body(), R"({"error":"unknown model \"nope\"","reason":"not_found"})");

  Response no_path = client.Call("GET", "/v3/nothing");
  EXPECT_EQ(no_path.result_int(), 404);

  Response method = client.Call("GET", "/v2/models/simple/infer");
  EXPECT_EQ(method.result_int(), 405);
  EXPECT_EQ(method["Allow"], "POST");

  Response unavailable = client.Call("GET", "/v2/models/broken/ready");
  EXPECT_EQ(unavailable.result_int(), 503);
  EXPECT_THAT(unavailable.body(), HasSubstr("model.json is missing"));

  Response not_ready = client.Call("GET", "/v2/health/ready");
  EXPECT_EQ(not_ready.result_int(), 503);
  EXPECT_THAT(not_ready.body(), HasSubstr(R"({"error":)"));

  Response internal = client.Call("POST", "/v2/models/failing/infer",
                                  R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]})");
  EXPECT_EQ(internal.result_int(), 500);
  EXPECT_EQ(internal.body(), R"({"error":"model \"failing\" version 1: backend exploded","reason":"internal"})");

  // Every error above left the connection open.
  EXPECT_EQ(client.Call("GET", "/v2/health/live").result_int(), 200);

  Response too_large =
      client.Call("POST", "/v2/models/simple/infer", std::string(2048, ' '));
  EXPECT_EQ(too_large.result_int(), 413);
  EXPECT_THAT(too_large.body(), HasSubstr("larger than the limit of 1024 bytes"));
  EXPECT_FALSE(too_large.keep_alive());
  EXPECT_TRUE(client.ClosedByServer());
}

TEST_F(HttpServerTest, OversizedBodyIsRefusedFromItsLengthBeforeItIsSent) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1, .max_body_bytes = 1024}));
  Client client(port());
  // Only the header is sent; the 413 must come without waiting for the 1 MB body.
  client.Send(
      "POST /v2/models/simple/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n");
  Response r = client.Read();
  EXPECT_EQ(r.result_int(), 413);
  EXPECT_EQ(r["Connection"], "close");
  EXPECT_TRUE(client.ClosedByServer());
}

TEST_F(HttpServerTest, OversizedChunkedBodyIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1, .max_body_bytes = 16}));
  Client client(port());
  client.Send("POST /v2/models/simple/infer HTTP/1.1\r\nHost: x\r\n"
              "Transfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n10\r\n");
  EXPECT_EQ(client.Read().result_int(), 413);
}

TEST_F(HttpServerTest, OversizedHeaderIs431) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1, .max_header_bytes = 512}));
  Client client(port());
  client.Send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(1000, 'a') +
              "\r\n\r\n");
  Response r = client.Read();
  EXPECT_EQ(r.result_int(), 431);
  EXPECT_THAT(r.body(), HasSubstr("the request header is larger than the limit of 512 bytes"));
  EXPECT_TRUE(client.ClosedByServer());
}

TEST_F(HttpServerTest, MalformedHttpIs400AndCloses) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1}));
  Client client(port());
  client.Send("THIS IS NOT HTTP\r\n\r\n");
  Response r = client.Read();
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_THAT(r.body(), HasSubstr("malformed HTTP request"));
  EXPECT_TRUE(client.ClosedByServer());
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 2}));
  Client client(port());
  for (int i = 0; i < 20; ++i) {
    Response r = client.Call("POST", "/v2/models/simple/infer",
                             std::string(kSimpleRequest));
    ASSERT_EQ(r.result_int(), 200) << i;
    EXPECT_EQ(r.body(), kSimpleResponse);
    EXPECT_TRUE(r.keep_alive());
  }
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1}));
  Client client(port());
  std::string body(kSimpleRequest);
  client.Send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
              "POST /v2/models/simple/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body +
              "GET /v2/models/nope HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(client.Read().body(), R"({"live":true})");
  EXPECT_EQ(client.Read().body(), kSimpleResponse);
  EXPECT_EQ(client.Read().result_int(), 404);
}

TEST_F(HttpServerTest, ChunkedRequestBodyIsAssembled) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1}));
  Client client(port());
  std::string body(kSimpleRequest);
  std::string first = body.substr(0, 10), rest = body.substr(10);
  char hex1[16], hex2[16];
  std::snprintf(hex1, sizeof(hex1), "%zx", first.size());
  std::snprintf(hex2, sizeof(hex2), "%zx", rest.size());
  client.Send("POST /v2/models/simple/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
              std::string(hex1) + "\r\n" + first + "\r\n" + std::string(hex2) + "\r\n" + rest +
              "\r\n0\r\n\r\n");
  Response r = client.Read();
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), kSimpleResponse);
}

TEST_F(HttpServerTest, ExpectContinueIsAnsweredBeforeTheBodyIsSent) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1}));
  Client client(port());
  std::string body(kSimpleRequest);
  client.Send("POST /v2/models/simple/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  Response cont = client.Read(/*head=*/true);
  EXPECT_EQ(cont.result_int(), 100);
  client.Send(body);
  Response r = client.Read();
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), kSimpleResponse);
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveIsClosedAfterTheResponse) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1}));
  Client client(port());
  client.Send("GET /v2/health/live HTTP/1.0\r\n\r\n");
  Response r = client.Read();
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), R"({"live":true})");
  EXPECT_TRUE(client.ClosedByServer());
}

TEST_F(HttpServerTest, Http10KeepAliveIsHonoured) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1}));
  Client client(port());
  for (int i = 0; i < 3; ++i) {
    client.Send("GET /v2/health/live HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    Response r = client.Read();
    EXPECT_EQ(r.result_int(), 200);
    EXPECT_EQ(r["Connection"], "keep-alive");
  }
}

TEST_F(HttpServerTest, ConnectionCloseFromTheClientIsHonoured) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1}));
  Client client(port());
  Response r = client.Call("GET", "/v2/health/live", "", {{"Connection", "close"}});
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r["Connection"], "close");
  EXPECT_TRUE(client.ClosedByServer());
}

TEST_F(HttpServerTest, HeadGetsHeadersWithoutABody) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1}));
  Client client(port());
  Response head = client.Call("HEAD", "/v2/health/live");
  EXPECT_EQ(head.result_int(), 405);
  EXPECT_TRUE(head.body().empty());
  // Nothing but the header was sent: the next response on the connection parses cleanly.
  EXPECT_EQ(client.Call("GET", "/v2/health/live").body(), R"({"live":true})");
}

TEST_F(HttpServerTest, IdleConnectionIsClosedAfterTheIdleTimeout) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer({.threads = 1, .idle_timeout = std::chrono::milliseconds(50)}));
  Client client(port());
  EXPECT_EQ(client.Call("GET", "/v2/health/live").result_int(), 200);
  EXPECT_TRUE(client.ClosedByServer());
}

TEST_F(HttpServerTest, RequestTrickledSlowerThanTheReadTimeoutIsCutOff) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer({.threads = 1, .read_timeout = std::chrono::milliseconds(50)}));
  Client client(port());
  client.Send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n");  // the header never ends
  EXPECT_TRUE(client.ClosedByServer());
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitAreClosed) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1, .max_connections = 1}));
  Client first(port());
  EXPECT_EQ(first.Call("GET", "/v2/health/live").result_int(), 200);
  Client second(port());
  ASSERT_FALSE(second.connect_error());  // the kernel accepts; the server then closes it
  EXPECT_TRUE(second.ClosedByServer());
  EXPECT_EQ(first.Call("GET", "/v2/health/live").result_int(), 200);
}

TEST_F(HttpServerTest, BusyPortIsReported) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 1}));
  Result<std::unique_ptr<HttpServer>> second = HttpServer::Start(
      {.address = "127.0.0.1", .port = port(), .threads = 1},
      [](const HttpRequest&, HttpResponse&) {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
}

TEST(HttpServer, BadAddressIsRejected) {
  Result<std::unique_ptr<HttpServer>> server =
      HttpServer::Start({.address = "not-an-address", .port = 0, .threads = 1},
                        [](const HttpRequest&, HttpResponse&) {});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(HttpServerTest, StopDrainsInFlightRequestsAndRefusesNewWork) {
  std::latch entered(1), release(1);
  // Two loops: connection `slow` is the first accepted and goes to loop 0, `other` to
  // loop 1, so `other` is served while `slow` blocks its loop.
  ASSERT_NO_FATAL_FAILURE(StartServer(
      {.threads = 2},
      {testing::ReadyServable("blocking",
                              {{1, std::make_shared<testing::BlockingModel>(entered, release)}})}));
  Client slow(port());
  std::string body(kEchoRequest);
  slow.Send("POST /v2/models/blocking/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body);
  entered.wait();  // the request is in the model

  Client other(port());
  ASSERT_EQ(other.Call("GET", "/v2/health/live").result_int(), 200);

  std::thread stopper([this] { server_->Stop(); });

  // Until Stop() has closed the listener, `other` is still answered normally; from then on,
  // new requests on open connections get 503 and the connection is closed.
  Response r;
  for (int i = 0; i < 1'000'000; ++i) {
    r = other.Call("GET", "/v2/health/live");
    if (r.result_int() != 200) break;
  }
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(r.body(), R"({"error":"the server is shutting down","reason":"draining"})");
  EXPECT_EQ(r["Connection"], "close");
  EXPECT_TRUE(other.ClosedByServer());

  // The listener is closed: new connections are refused.
  Client late(port());
  EXPECT_EQ(late.connect_error(), ECONNREFUSED);

  // The request in flight still completes and is answered.
  release.count_down();
  Response slow_response = slow.Read();
  EXPECT_EQ(slow_response.result_int(), 200);
  EXPECT_EQ(slow_response.body(),
            R"({"model_name":"blocking","model_version":"1","outputs":[)"
            R"({"name":"y","datatype":"FP32","shape":[2],"data":[1.5,-2]}]})");
  stopper.join();
  EXPECT_TRUE(slow.ClosedByServer());
}

TEST_F(HttpServerTest, StopWithIdleConnectionsReturnsAndIsIdempotent) {
  ASSERT_NO_FATAL_FAILURE(StartServer({.threads = 2}));
  Client a(port()), b(port());
  EXPECT_EQ(a.Call("GET", "/v2/health/live").result_int(), 200);
  EXPECT_EQ(b.Call("GET", "/v2/health/live").result_int(), 200);
  server_->Stop();
  EXPECT_TRUE(a.ClosedByServer());
  EXPECT_TRUE(b.ClosedByServer());
  server_->Stop();
  Client late(port());
  EXPECT_EQ(late.connect_error(), ECONNREFUSED);
}

// Issue 8's acceptance: a model updated through the repository extension while several
// clients score without pause; no request fails and every answer comes whole from one version
// (version v answers x + v). The scraped metrics then match what the clients saw.
TEST_F(HttpServerTest, ModelUpdatedUnderLoadFailsNoRequestAndMetricsMatch) {
  outpost::testing::TempDir dir;
  const std::string model_dir = JoinPath(dir.path(), "m");
  OUTPOST_ASSERT_OK(MakeDirectories(model_dir));
  OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(model_dir, "config.yaml"), "backend: onnx\n"));
  auto write_version = [&](int v) {
    const std::string staging = JoinPath(model_dir, ".staging");
    OUTPOST_ASSERT_OK(MakeDirectories(staging));
    OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(staging, "tag"), std::to_string(v)));
    ASSERT_EQ(std::rename(staging.c_str(), JoinPath(model_dir, std::to_string(v)).c_str()), 0);
  };
  write_version(1);
  RepositoryOptions options{
      .root = dir.path(),
      .loader = [](const ModelConfig&,
                   const std::string& vdir) -> Result<std::unique_ptr<engine::Model>> {
        OUTPOST_ASSIGN_OR_RETURN(std::string tag, ReadFile(JoinPath(vdir, "tag"), 32));
        return std::make_unique<testing::TagModel>(std::stof(tag));
      }};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repository, ModelRepository::Open(std::move(options)));
  StartOn(std::move(repository));

  constexpr int kClients = 4;
  constexpr int kLastVersion = 5;
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, mixed{0};
  std::vector<std::map<int, int>> answered(kClients);  // per client: version -> answers
  std::latch started(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      Client client(port());
      for (int i = 0; !stop.load() || i == 0; ++i) {
        const int x = c * 100000 + i;
        Response r = client.Call("POST", "/v2/models/m/infer",
                                 R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[)" +
                                     std::to_string(x) + "]}]}");
        int version = 0;
        float y = 0;
        const size_t v_at = r.body().find(R"("model_version":")");
        const size_t d_at = r.body().find(R"("data":[)");
        if (r.result_int() != 200) {
          failed.fetch_add(1);
        } else if (v_at == std::string::npos || d_at == std::string::npos ||
                   std::sscanf(r.body().c_str() + v_at + 17, "%d", &version) != 1 ||
                   std::sscanf(r.body().c_str() + d_at + 8, "%f", &y) != 1 ||
                   y != static_cast<float>(x + version)) {
          mixed.fetch_add(1);
        } else {
          ++answered[c][version];
        }
        if (i == 0) started.count_down();
      }
    });
  }
  started.wait();
  Client admin(port());
  for (int v = 2; v <= kLastVersion; ++v) {
    write_version(v);
    Response load = admin.Call("POST", "/v2/repository/models/m/load");
    EXPECT_EQ(load.result_int(), 200) << load.body();
  }
  stop.store(true);
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(mixed.load(), 0);

  // Only the served version is in /metrics; its count matches the answers it gave.
  std::map<int, int> total;
  for (const auto& per_client : answered) {
    for (const auto& [v, n] : per_client) total[v] += n;
  }
  Response metrics = admin.Call("GET", "/metrics");
  EXPECT_EQ(metrics.result_int(), 200);
  EXPECT_THAT(metrics.body(),
              HasSubstr("outpost_inference_request_success_total{model=\"m\",version=\"" +
                        std::to_string(kLastVersion) + "\"} " +
                        std::to_string(total[kLastVersion]) + "\n"));
  EXPECT_THAT(metrics.body(),
              HasSubstr("outpost_inference_request_failure_total{model=\"m\",version=\"" +
                        std::to_string(kLastVersion) + "\"} 0\n"));
}

}  // namespace
}  // namespace outpost::serve
