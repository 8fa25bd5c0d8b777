// The `outpost` binary as a site operator runs it: exit codes, a real server on a free port
// called with a credential made by `outpost edge credential add` (repository control turned
// on, as it is off by default), predictions over HTTP that equal XGBoost's own, one broken
// model beside a good one, and a graceful SIGTERM.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdlib>

#include "base/file.h"
#include "base/http/client.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "serve/inference.grpc.pb.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

TEST(OutpostCli, ExitCodes) {
  RunResult version = RunProgram({Outpost(), "version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("outpost ", 0), 0u) << version.out;

  RunResult help = RunProgram({Outpost(), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("edge"), std::string::npos);
  EXPECT_EQ(RunProgram({Outpost(), "edge", "--help"}).exit_code, 0);

  EXPECT_EQ(RunProgram({Outpost()}).exit_code, 2);
  EXPECT_EQ(RunProgram({Outpost(), "bogus"}).exit_code, 2);
  EXPECT_EQ(RunProgram({Outpost(), "edge", "--threads", "many"}).exit_code, 2);
  EXPECT_EQ(RunProgram({Outpost(), "edge", "--log-format", "xml"}).exit_code, 2);

  RunResult missing = RunProgram({Outpost(), "edge", "--model-repository", "/nonexistent/models",
                                  "--listen", "127.0.0.1:0"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "outpost: model repository \"/nonexistent/models\" is not a folder\n");
}

TEST(OutpostCli, BadConfigFileFailsWithOneLine) {
  TempDir dir;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("edge.yaml"), "listen: 127.0.0.1:0\nthreds: 2\n"));
  RunResult r = RunProgram({Outpost(), "edge", "--config", dir.File("edge.yaml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown key \"threds\""), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

class EdgeServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A pump model trained on synthetic readings, and a broken model beside it.
    OUTPOST_ASSERT_OK_AND_ASSIGN(data_, train::MakePumpReadings({.rows = 3000, .seed = 11,
                                                                 .missing_rate = 0.02}));
    train::TrainOptions options;
    options.rounds = 30;
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, train::TrainXGBoost(data_, options));
    OUTPOST_ASSERT_OK_AND_ASSIGN(model_bytes_, model->Serialize(train::ModelFormat::kUbjson));
    std::string repo = dir_.File("models");
    OUTPOST_ASSERT_OK(MakeDirectories(repo + "/pump/3"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(repo + "/pump/config.yaml", R"(backend: xgboost
inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]
outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]
)"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(repo + "/pump/3/model.ubj", model_bytes_));
    OUTPOST_ASSERT_OK(MakeDirectories(repo + "/broken/1"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(repo + "/broken/config.yaml", "backend: xgboost\n"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(repo + "/broken/1/model.json", "{\"learner\": 12"));
    // A credential holding every role, as an operator makes one (its token is printed once);
    // repository load and unload are turned on, as they are off by default.
    RunResult added = RunProgram({Outpost(), "edge", "credential", "add", "--data-dir",
                                  dir_.File("data"), "--name", "operator", "--role", "infer",
                                  "--role", "label", "--role", "read", "--role", "admin"});
    ASSERT_EQ(added.exit_code, 0) << added.err;
    token_ = added.out.substr(0, added.out.find('\n'));
    ASSERT_EQ(token_.rfind("opt_", 0), 0u) << added.out;
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("edge.yaml"),
                                          "listen: 127.0.0.1:0\nthreads: 2\nsite_id: test-site\n"
                                          "model_repository: " + repo + "\n"
                                          "data_dir: " + dir_.File("data") + "\n"
                                          "auth:\n  model_control: true\n"));

    OUTPOST_ASSERT_OK_AND_ASSIGN(edge_, Subprocess::Start({Outpost(), "edge", "--config",
                                                           dir_.File("edge.yaml"), "--log-format",
                                                           "json"},
                                                          dir_.File("edge.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, edge_->ReadLine());
    ASSERT_EQ(line.rfind("listening on http://127.0.0.1:", 0), 0u) << line;
    port_ = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string grpc_line, edge_->ReadLine());
    ASSERT_EQ(grpc_line.rfind("grpc listening on 127.0.0.1:", 0), 0u) << grpc_line;
    grpc_port_ = static_cast<uint16_t>(std::atoi(grpc_line.c_str() + grpc_line.rfind(':') + 1));
    OUTPOST_ASSERT_OK_AND_ASSIGN(client_, http::Client::Connect("127.0.0.1", port_, token_));
  }

  std::string Body(int64_t begin, int64_t end) {
    std::string body = "{\"id\":\"r" + std::to_string(begin) +
                       "\",\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[" +
                       std::to_string(end - begin) + ",8],\"data\":[";
    char buf[32];
    for (int64_t r = begin; r < end; ++r) {
      body += '[';
      for (float v : data_.Row(r)) {
        // JSON has no NaN; a missing reading is sent as null.
        if (std::isnan(v)) {
          body += "null";
        } else {
          auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
          body.append(buf, ptr);
        }
        body += ',';
      }
      body.back() = ']';
      body += ',';
    }
    body.back() = ']';
    body += "}]}";
    return body;
  }

  TempDir dir_;
  train::Dataset data_;
  std::string model_bytes_;
  std::string token_;
  std::unique_ptr<Subprocess> edge_;
  uint16_t port_ = 0;
  uint16_t grpc_port_ = 0;
  std::unique_ptr<http::Client> client_;
};

// Extracts the numbers of the first "data":[...] array of a response (flat, as the server
// writes it).
std::vector<float> DataOf(const std::string& body) {
  std::vector<float> out;
  size_t pos = body.find("\"data\":[");
  if (pos == std::string::npos) return out;
  const char* p = body.data() + pos + 8;
  const char* end = body.data() + body.size();
  while (p < end && *p != ']') {
    float v;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc()) break;
    out.push_back(v);
    p = next;
    if (*p == ',') ++p;
  }
  return out;
}

TEST_F(EdgeServerTest, PredictionsOverHttpEqualXGBoostsOwn) {
  const int64_t rows = 200;
  std::vector<float> served;
  for (int64_t begin = 0; begin < rows; begin += 40) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse res,
                                 client_->Request("POST", "/v2/models/pump/infer", Body(begin, begin + 40)));
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_NE(res.body.find("\"id\":\"r" + std::to_string(begin) + "\""), std::string::npos);
    EXPECT_NE(res.body.find("\"model_version\":\"3\""), std::string::npos) << res.body;
    std::vector<float> got = DataOf(res.body);
    ASSERT_EQ(got.size(), 40u) << res.body;
    served.insert(served.end(), got.begin(), got.end());
  }
  std::vector<float> features(data_.features.begin(), data_.features.begin() + rows * 8);
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Predictions want,
                               train::ReferencePredict(model_bytes_, features, rows, 8));
  ASSERT_EQ(want.values.size(), served.size());
  int nan_rows = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (float v : data_.Row(r)) nan_rows += std::isnan(v);
    EXPECT_EQ(served[r], want.values[r]) << "row " << r;
  }
  EXPECT_GT(nan_rows, 0) << "the test data should include missing readings";
}

TEST_F(EdgeServerTest, GrpcPredictionsEqualXGBoostsOwn) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port_),
                                     grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  const int64_t rows = 50;
  inference::ModelInferRequest request;
  request.set_model_name("pump");
  request.set_id("g1");
  auto* input = request.add_inputs();
  input->set_name("features");
  input->set_datatype("FP32");
  input->add_shape(rows);
  input->add_shape(8);
  request.add_raw_input_contents()->assign(reinterpret_cast<const char*>(data_.features.data()),
                                           rows * 8 * sizeof(float));
  inference::ModelInferResponse response;
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + token_);
  grpc::Status status = stub->ModelInfer(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.id(), "g1");
  EXPECT_EQ(response.model_version(), "3");
  ASSERT_EQ(response.raw_output_contents_size(), 1);
  ASSERT_EQ(response.raw_output_contents(0).size(), rows * sizeof(float));
  std::vector<float> served(rows);
  std::memcpy(served.data(), response.raw_output_contents(0).data(), rows * sizeof(float));
  std::vector<float> features(data_.features.begin(), data_.features.begin() + rows * 8);
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Predictions want,
                               train::ReferencePredict(model_bytes_, features, rows, 8));
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(served[r], want.values[r]) << "row " << r;

  grpc::ClientContext unknown_context;
  unknown_context.AddMetadata("authorization", "Bearer " + token_);
  request.set_model_name("valve");
  EXPECT_EQ(stub->ModelInfer(&unknown_context, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // The reason travels as the REST listener's error body carries it.
  const auto& trailers = unknown_context.GetServerTrailingMetadata();
  auto reason = trailers.find("outpost-reason");
  ASSERT_NE(reason, trailers.end());
  EXPECT_EQ(std::string(reason->second.data(), reason->second.size()), "not_found");
}

TEST_F(EdgeServerTest, NewVersionLoadedThroughTheRepositoryExtensionServesAtOnce) {
  // Version 4 of the pump model is written beside version 3 (into a staging folder, then
  // renamed into place), and loaded through the protocol's repository extension.
  std::string repo = dir_.File("models");
  OUTPOST_ASSERT_OK(MakeDirectories(repo + "/.staging-4"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(repo + "/.staging-4/model.ubj", model_bytes_));
  ASSERT_EQ(::rename((repo + "/.staging-4").c_str(), (repo + "/pump/4").c_str()), 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse load,
                               client_->Request("POST", "/v2/repository/models/pump/load", "{}"));
  EXPECT_EQ(load.status, 200) << load.body;
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse res,
                               client_->Request("POST", "/v2/models/pump/infer", Body(0, 1)));
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_NE(res.body.find("\"model_version\":\"4\""), std::string::npos) << res.body;
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse index,
                               client_->Request("POST", "/v2/repository/index", "{}"));
  EXPECT_NE(index.body.find("\"version\":\"4\""), std::string::npos) << index.body;
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse metrics, client_->Request("GET", "/metrics"));
  EXPECT_NE(metrics.body.find("version=\"4\""), std::string::npos) << metrics.body;
}

TEST_F(EdgeServerTest, BrokenModelIsReportedWhileOthersServe) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse ready, client_->Request("GET", "/v2/models/pump/ready"));
  EXPECT_EQ(ready.status, 200);
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse broken, client_->Request("GET", "/v2/models/broken/ready"));
  EXPECT_EQ(broken.status, 503) << broken.body;
  EXPECT_NE(broken.body.find("\"error\""), std::string::npos);
  // Strict readiness: the server is live but not ready while a model is broken.
  EXPECT_EQ(client_->Request("GET", "/v2/health/live")->status, 200);
  EXPECT_EQ(client_->Request("GET", "/v2/health/ready")->status, 503);
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse meta, client_->Request("GET", "/v2/models/pump"));
  EXPECT_EQ(meta.status, 200);
  EXPECT_NE(meta.body.find("\"platform\":\"xgboost_ubj\""), std::string::npos) << meta.body;
}

TEST_F(EdgeServerTest, SigtermStopsCleanlyAndLogsJson) {
  EXPECT_EQ(client_->Request("POST", "/v2/models/pump/infer", Body(0, 1))->status, 200);
  OUTPOST_ASSERT_OK(edge_->Signal(SIGTERM));
  EXPECT_EQ(edge_->Wait(), 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string log, ReadFile(dir_.File("edge.log")));
  EXPECT_NE(log.find("\"msg\":\"outpost edge stopped\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"level\":\"error\""), std::string::npos) << "the broken model is logged";
  for (size_t start = 0; start < log.size();) {
    size_t end = log.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    EXPECT_EQ(log[start], '{') << log.substr(start, end - start);
    EXPECT_EQ(log[end - 1], '}');
    start = end + 1;
  }
}

}  // namespace
}  // namespace outpost
