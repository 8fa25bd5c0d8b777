// A slow model cannot starve a fast one (issue 18): the REST front end runs on one event-loop
// thread, a slow model's requests fill its instance and its queue, and the fast model's
// requests on other connections are all answered while every slow request is still held
// inside or behind the slow model. The slow model holds each run until the test releases it,
// so the test proves the property by order of events, not by timing: with a front end that
// blocked its loop thread for a queued request, no fast answer would come before the release.
// The slow model's requests beyond its queue are refused at once (503, Unavailable).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/testing/test_util.h"
#include "serve/handler.h"
#include "serve/http_server.h"
#include "serve/repository.h"
#include "serve/testing/fake_models.h"

namespace outpost::serve {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<ServableModel> Servable(const std::string& name,
                                        std::shared_ptr<const engine::Model> model,
                                        int64_t max_queue_size) {
  auto servable = std::make_shared<ServableModel>();
  servable->name = name;
  auto config = std::make_shared<ModelConfig>();
  config->name = name;
  config->batching.instance_count = 1;
  config->batching.max_queue_size = max_queue_size;
  servable->config = config;
  servable->versions.push_back({.version = 1, .state = VersionState::kReady});
  servable->ready.emplace_back(1, std::move(model));
  return servable;
}

// A raw HTTP/1.1 connection to 127.0.0.1:port whose reads give up after 30 s, so that a
// front end that starves the connection fails the test instead of hanging it.
int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval limit{.tv_sec = 30, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void SendInfer(int fd, const std::string& model, float value) {
  const std::string body = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[)" +
                           std::to_string(value) + "]}]}";
  const std::string request = "POST /v2/models/" + model +
                              "/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
}

// Waits until `stats` counts `depth` queued requests; false after 30 s (a front end that
// starves the connections never gets there).
bool WaitForDepth(const ModelStats& stats, int64_t depth) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (stats.queue_depth.load() != depth) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

// Whether any byte of an answer has arrived on `fd` (without waiting).
bool Answered(int fd) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, 0) > 0;
}

TEST(NoStarvation, FastModelIsAnsweredWhileTheSlowModelHoldsItsRequests) {
  constexpr int kSlowQueue = 4;
  auto slow = std::make_shared<testing::HeldEchoModel>(/*hold=*/true);
  auto fast = std::make_shared<testing::HeldEchoModel>(/*hold=*/false);
  auto repository = ModelRepository::FromModels(
      {Servable("slow", slow, kSlowQueue), Servable("fast", fast, 64)});
  Handler handler(*repository, {});
  http::Router router;
  RegisterRoutes(router, handler);
  // One event-loop thread serves every connection.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto server,
      HttpServer::Start({.address = "127.0.0.1", .port = 0, .threads = 1}, router.AsHandler()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle slow_handle, repository->Find("slow", std::nullopt));

  // The slow model's one instance holds a request and kSlowQueue more wait behind it.
  std::vector<int> held;
  for (int i = 0; i <= kSlowQueue; ++i) {
    const int fd = Connect(server->port());
    ASSERT_GE(fd, 0);
    SendInfer(fd, "slow", static_cast<float>(i));
    held.push_back(fd);
    if (i == 0) slow->WaitEntered(1);
  }
  ASSERT_TRUE(WaitForDepth(*slow_handle.stats, kSlowQueue));

  // One more is refused at once: the queue is full.
  const int refused = Connect(server->port());
  ASSERT_GE(refused, 0);
  SendInfer(refused, "slow", 99);
  const std::string refusal = outpost::testing::ReadHttpResponse(refused);
  EXPECT_THAT(refusal, HasSubstr("503 Service Unavailable"));
  EXPECT_THAT(refusal, HasSubstr("queue"));
  ::close(refused);

  // The fast model answers every request, on connections of their own and one after
  // another on a kept-alive connection, while the slow requests are all still held.
  std::vector<int> quick;
  for (int i = 0; i < 8; ++i) {
    const int fd = Connect(server->port());
    ASSERT_GE(fd, 0);
    SendInfer(fd, "fast", static_cast<float>(100 + i));
    quick.push_back(fd);
  }
  for (int i = 0; i < 8; ++i) {
    const std::string answer = outpost::testing::ReadHttpResponse(quick[i]);
    EXPECT_THAT(answer, HasSubstr("200 OK"));
    EXPECT_THAT(answer, HasSubstr("\"data\":[" + std::to_string(100 + i) + "]"));
  }
  for (int i = 0; i < 20; ++i) {
    SendInfer(quick[0], "fast", static_cast<float>(i));
    EXPECT_THAT(outpost::testing::ReadHttpResponse(quick[0]), HasSubstr("200 OK"));
  }
  for (int fd : quick) ::close(fd);
  EXPECT_EQ(fast->runs(), 28);
  // Nothing of the slow model has answered: its first request is inside the model, the
  // others in its queue, all unanswered.
  EXPECT_EQ(slow->runs(), 1);
  EXPECT_EQ(slow_handle.stats->queue_depth.load(), kSlowQueue);
  for (int fd : held) EXPECT_FALSE(Answered(fd));

  slow->Release();
  for (size_t i = 0; i < held.size(); ++i) {
    const std::string answer = outpost::testing::ReadHttpResponse(held[i]);
    EXPECT_THAT(answer, HasSubstr("200 OK"));
    EXPECT_THAT(answer, HasSubstr("\"data\":[" + std::to_string(i) + "]"));
    ::close(held[i]);
  }
  EXPECT_EQ(slow->runs(), kSlowQueue + 1);
  server->Stop();
}

}  // namespace
}  // namespace outpost::serve
