// Shadow mode in `outpost edge` as a site runs it: a model whose config.yaml names a shadow
// version is compared over HTTP, labelled through /v1/feedback, and the outcome is kept in
// config.yaml and stored as an `event` record the site's records query returns.
#include <gtest/gtest.h>
#include <signal.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "base/file.h"
#include "base/http/client.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "serve/model_config.h"
#include "tests/edge_test_support.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

std::string TrainModel(uint64_t seed, bool flip) {
  Result<train::Dataset> data = train::MakePumpReadings({.rows = 2000, .seed = seed,
                                                         .fault_rate = 0.3});
  EXPECT_TRUE(data.ok());
  if (flip) {
    for (float& y : data->labels) y = 1.0f - y;
  }
  train::TrainOptions options;
  options.rounds = 10;
  auto model = train::TrainXGBoost(*data, options);
  EXPECT_TRUE(model.ok());
  Result<std::string> bytes = (*model)->Serialize(train::ModelFormat::kUbjson);
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

TEST(ShadowEdge, LosingShadowIsDroppedAndTheEventIsStored) {
  TempDir dir;
  const std::string repo = dir.File("models");
  OUTPOST_ASSERT_OK(MakeDirectories(repo + "/pump/1"));
  OUTPOST_ASSERT_OK(MakeDirectories(repo + "/pump/2"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(repo + "/pump/1/model.ubj", TrainModel(3, false)));
  OUTPOST_ASSERT_OK(WriteFileAtomically(repo + "/pump/2/model.ubj", TrainModel(4, true)));
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      repo + "/pump/config.yaml",
      "backend: xgboost\n"
      "inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\n"
      "outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]\n"
      "shadow: {version: 2, promote: {min_requests: 30, min_agreement: 0.9, min_labelled: 10}}\n"));
  // The shadow counts only trusted labels, those sent with a credential that holds the label
  // role: the client holds one (and infer and read, to score and to read the metrics and the
  // events). The events are read as they were written, by a raw-read role.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::string token,
      testing::AddEdgeCredential(dir.File("data"), "operator", {"infer", "label", "read"}));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("edge.yaml"),
                                        "listen: 127.0.0.1:0\nthreads: 2\nsite_id: test-site\n"
                                        "grpc_listen: \"\"\n"
                                        "model_repository: " + repo + "\n"
                                        "data_dir: " + dir.File("data") + "\n"
                                        "auth:\n  raw_read_roles: [read]\n"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto edge, Subprocess::Start({Outpost(), "edge", "--config", dir.File("edge.yaml")},
                                   dir.File("edge.log")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, edge->ReadLine());
  ASSERT_EQ(line.rfind("listening on http://127.0.0.1:", 0), 0u) << line;
  const auto port = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto client, http::Client::Connect("127.0.0.1", port, token));

  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data,
                               train::MakePumpReadings({.rows = 30, .seed = 42,
                                                        .fault_rate = 0.3}));
  char buf[32];
  for (int r = 0; r < 30; ++r) {
    std::string body = "{\"id\":\"q" + std::to_string(r) +
                       "\",\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\","
                       "\"shape\":[1,8],\"data\":[";
    for (float v : data.Row(r)) {
      auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
      body.append(buf, ptr);
      body += ',';
    }
    body.back() = ']';
    body += "}]}";
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse served,
                                 client->Request("POST", "/v2/models/pump/infer", body));
    ASSERT_EQ(served.status, 200) << served.body;
    EXPECT_NE(served.body.find("\"model_version\":\"1\""), std::string::npos) << served.body;
  }
  // The shadow's comparisons run on their own thread: wait until all 30 rows are counted,
  // so that each label below finds its request.
  const std::string compared = "outpost_shadow_compared_total{model=\"pump\",shadow_version=\"2\"} 30";
  bool counted = false;
  for (int i = 0; i < 600 && !counted; ++i) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse metrics, client->Request("GET", "/metrics"));
    counted = metrics.body.find(compared) != std::string::npos;
    if (!counted) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(counted);
  for (int r = 0; r < 10; ++r) {
    std::string body = "{\"request_id\":\"q" + std::to_string(r) +
                       "\",\"model\":\"pump\",\"label\":" +
                       std::to_string(static_cast<int>(data.labels[static_cast<size_t>(r)])) + "}";
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse fed, client->Request("POST", "/v1/feedback", body));
    ASSERT_EQ(fed.status, 200) << fed.body;
  }
  // The decision follows the tenth label on the runner's thread.
  std::string events;
  for (int i = 0; i < 600; ++i) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse records,
                                 client->Request("GET", "/v1/records?kind=event"));
    events = records.body;
    if (events.find("shadow_dropped") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(events.find("shadow_dropped"), std::string::npos) << events;
  EXPECT_EQ(events.find("shadow_promoted"), std::string::npos) << events;

  OUTPOST_ASSERT_OK(edge->Signal(SIGTERM));
  EXPECT_EQ(edge->Wait(), 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string config, ReadFile(repo + "/pump/config.yaml"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(serve::ModelConfig parsed, serve::ParseModelConfig(config, "pump"));
  EXPECT_EQ(parsed.shadow.version, 0);
  EXPECT_EQ(parsed.version_policy.versions, std::vector<int64_t>{1});
}

}  // namespace
}  // namespace outpost
