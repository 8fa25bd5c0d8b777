// `outpost edge` under more load than a model's queue takes: a compute-bound XGBoost model
// with one instance, dynamic batching and a queue of 4. Bursts from many clients at once (REST
// and gRPC) are shed with 503 / UNAVAILABLE while every answered request gets exactly its own
// rows' predictions (equal to XGBoost's own); afterwards every request succeeds again; the
// server's memory and the queue depth it reports stay bounded; and /metrics counts exactly
// the requests that were sent (successes, failures, rows, batches).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

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

constexpr int kQueueSize = 4;
constexpr int64_t kRows = 64;  // rows per request
constexpr int kClients = 24;   // connections sending at once
constexpr int kPerClient = 6;  // requests per client per burst
constexpr int kBursts = 3;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

// VmRSS of process `pid` in KiB; 0 when it cannot be read.
int64_t RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

// The value of one sample of a Prometheus text body; -1 when absent.
double Sample(const std::string& body, const std::string& series) {
  size_t at = body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::strtod(body.c_str() + at + series.size() + 2, nullptr);
}

class ServeOverloadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Compute-bound: 200 trees of depth 8, so that a 64-row request takes a while.
    Result<train::Dataset> data = train::MakePumpReadings({.rows = 4000, .seed = 5});
    ASSERT_TRUE(data.ok());
    data_ = new train::Dataset(std::move(*data));
    train::TrainOptions options;
    options.rounds = 200;
    options.params["max_depth"] = "8";
    auto model = train::TrainXGBoost(*data_, options);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    auto bytes = (*model)->Serialize(train::ModelFormat::kUbjson);
    ASSERT_TRUE(bytes.ok());
    model_bytes_ = new std::string(std::move(*bytes));
  }
  static void TearDownTestSuite() {
    delete data_;
    delete model_bytes_;
  }

  void SetUp() override {
    std::string repo = dir_.File("models");
    OUTPOST_ASSERT_OK(MakeDirectories(repo + "/heavy/1"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(repo + "/heavy/config.yaml",
                                          "backend: xgboost\n"
                                          "max_batch_size: 256\n"
                                          "batching:\n"
                                          "  max_queue_delay_microseconds: 200\n"
                                          "  instance_count: 1\n"
                                          "  max_queue_size: " + std::to_string(kQueueSize) + "\n"
                                          "inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\n"
                                          "outputs: [{name: p, datatype: FP32, shape: [-1]}]\n"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(repo + "/heavy/1/model.ubj", *model_bytes_));
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        edge_, Subprocess::Start({Outpost(), "edge", "--listen", "127.0.0.1:0", "--grpc-listen",
                                  "127.0.0.1:0", "--model-repository", repo, "--data-dir",
                                  dir_.File("data"), "--threads", std::to_string(kClients + 4),
                                  "--no-watch", "--log-level", "error"},
                                 dir_.File("edge.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, edge_->ReadLine());
    ASSERT_EQ(line.rfind("listening on http://127.0.0.1:", 0), 0u) << line;
    port_ = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string grpc_line, edge_->ReadLine());
    ASSERT_EQ(grpc_line.rfind("grpc listening on 127.0.0.1:", 0), 0u) << grpc_line;
    grpc_port_ = static_cast<uint16_t>(std::atoi(grpc_line.c_str() + grpc_line.rfind(':') + 1));

    // What XGBoost itself predicts for every row the clients send.
    std::vector<float> features;
    for (int64_t r = 0; r < data_->rows; ++r) {
      for (float v : data_->Row(r)) features.push_back(v);
    }
    OUTPOST_ASSERT_OK_AND_ASSIGN(train::Predictions p,
                                 train::ReferencePredict(*model_bytes_, features, data_->rows, 8));
    expected_ = std::move(p.values);
  }

  // The JSON body of rows [begin, begin + kRows).
  std::string Body(int64_t begin) const {
    std::string body = R"({"inputs":[{"name":"features","datatype":"FP32","shape":[)" +
                       std::to_string(kRows) + R"(,8],"data":[)";
    char buf[32];
    for (int64_t r = begin; r < begin + kRows; ++r) {
      for (float v : data_->Row(r)) {
        if (std::isnan(v)) {
          body += "null,";
          continue;
        }
        auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
        body.append(buf, ptr);
        body += ',';
      }
    }
    body.back() = ']';
    body += "}]}";
    return body;
  }

  // Whether a 200 body holds exactly the predictions of rows [begin, begin + kRows).
  bool HoldsRows(const std::string& body, int64_t begin) const {
    size_t pos = body.find("\"data\":[");
    if (pos == std::string::npos) return false;
    const char* p = body.data() + pos + 8;
    const char* end = body.data() + body.size();
    int64_t n = 0;
    while (p < end && *p != ']') {
      float v = 0;
      auto [next, ec] = std::from_chars(p, end, v);
      if (ec != std::errc() || n >= kRows) return false;
      if (std::fabs(v - expected_[static_cast<size_t>(begin + n)]) > 1e-5f) return false;
      ++n;
      p = next;
      if (p < end && *p == ',') ++p;
    }
    return n == kRows;
  }

  // The first row of request `i` of client `c` in burst `b`: every request its own rows.
  int64_t BeginOf(int b, int c, int i) const {
    const int64_t slots = (data_->rows - kRows) / 7;
    return ((b * kClients + c) * kPerClient + i) % slots * 7;
  }

  std::string Metrics() {
    auto client = http::Client::Connect("127.0.0.1", port_);
    if (!client.ok()) return "";
    auto r = (*client)->Request("GET", "/metrics");
    return r.ok() ? r->body : "";
  }

  TempDir dir_;
  static train::Dataset* data_;
  static std::string* model_bytes_;
  std::vector<float> expected_;
  std::unique_ptr<Subprocess> edge_;
  uint16_t port_ = 0;
  uint16_t grpc_port_ = 0;
};
train::Dataset* ServeOverloadTest::data_ = nullptr;
std::string* ServeOverloadTest::model_bytes_ = nullptr;

const std::string kSeries = R"({model="heavy",version="1"})";

TEST_F(ServeOverloadTest, RestShedsPastTheQueueBoundRecoversAndCountsEveryRequest) {
  int64_t ok = 0;
  int64_t shed = 0;
  // Warm-up, one request at a time: all succeed.
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto client, http::Client::Connect("127.0.0.1", port_));
    for (int i = 0; i < 5; ++i) {
      OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse r,
                                   client->Request("POST", "/v2/models/heavy/infer", Body(i)));
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_TRUE(HoldsRows(r.body, i));
      ++ok;
    }
  }
  const int64_t rss_before = RssKib(edge_->pid());
  ASSERT_GT(rss_before, 0);

  // While the bursts run, the queue depth the server reports never passes the bound.
  std::atomic<bool> bursting{true};
  std::atomic<int> scrapes{0};
  double max_depth = 0;
  std::thread scraper([&] {
    while (bursting.load()) {
      const double depth = Sample(Metrics(), "outpost_inference_queue_depth" + kSeries);
      if (depth >= 0) {
        max_depth = std::max(max_depth, depth);
        scrapes.fetch_add(1);
      }
    }
  });

  std::atomic<int64_t> burst_ok{0};
  std::atomic<int64_t> burst_shed{0};
  std::atomic<int64_t> wrong{0};
  std::mutex mu;
  std::string unexpected;
  for (int b = 0; b < kBursts; ++b) {
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, b, c] {
        auto client = http::Client::Connect("127.0.0.1", port_);
        if (!client.ok()) {
          wrong.fetch_add(1);
          return;
        }
        for (int i = 0; i < kPerClient; ++i) {
          const int64_t begin = BeginOf(b, c, i);
          auto r = (*client)->Request("POST", "/v2/models/heavy/infer", Body(begin));
          if (r.ok() && r->status == 200 && HoldsRows(r->body, begin)) {
            burst_ok.fetch_add(1);
          } else if (r.ok() && r->status == 503 &&
                     r->body.find("queue of the model is full") != std::string::npos) {
            burst_shed.fetch_add(1);
          } else {
            wrong.fetch_add(1);
            std::lock_guard<std::mutex> lock(mu);
            unexpected = r.ok() ? std::to_string(r->status) + " " + r->body.substr(0, 300)
                                : r.status().ToString();
          }
        }
      });
    }
    for (auto& t : clients) t.join();
  }
  bursting = false;
  scraper.join();
  EXPECT_EQ(wrong.load(), 0) << unexpected;
  ok += burst_ok.load();
  shed += burst_shed.load();
  EXPECT_EQ(burst_ok.load() + burst_shed.load(), int64_t{kBursts} * kClients * kPerClient);
  // Load was shed, and some requests were still answered.
  EXPECT_GT(burst_shed.load(), 0);
  EXPECT_GT(burst_ok.load(), 0);
  EXPECT_GT(scrapes.load(), 0);
  EXPECT_LE(max_depth, kQueueSize);

  // Recovered: every request succeeds again.
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto client, http::Client::Connect("127.0.0.1", port_));
    for (int i = 0; i < 10; ++i) {
      OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse r,
                                   client->Request("POST", "/v2/models/heavy/infer", Body(i * 3)));
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_TRUE(HoldsRows(r.body, i * 3));
      ++ok;
    }
  }
  // Memory stays bounded: a refused request holds nothing once answered.
  const int64_t rss_after = RssKib(edge_->pid());
  EXPECT_LT(rss_after, rss_before + 64 * 1024) << rss_before << " KiB -> " << rss_after << " KiB";

  // The metrics count exactly what was sent.
  const std::string m = Metrics();
  EXPECT_EQ(Sample(m, "outpost_inference_request_success_total" + kSeries), ok) << m;
  EXPECT_EQ(Sample(m, "outpost_inference_request_failure_total" + kSeries), shed);
  EXPECT_EQ(Sample(m, "outpost_inference_count_total" + kSeries), ok * kRows);
  EXPECT_EQ(Sample(m, "outpost_inference_queue_depth" + kSeries), 0);
  // Batches: at most 4 requests (256 rows) each, and fewer batches than requests because
  // queued requests were run together.
  const double executions = Sample(m, "outpost_inference_exec_count_total" + kSeries);
  EXPECT_LT(executions, static_cast<double>(ok));
  EXPECT_GE(executions * 4, static_cast<double>(ok));
  EXPECT_EQ(Sample(m, "outpost_inference_queue_duration_us_count" + kSeries), ok);
  EXPECT_GT(Sample(m, "outpost_inference_queue_duration_us_sum" + kSeries), 0);
}

TEST_F(ServeOverloadTest, GrpcShedsWithUnavailableAndRecovers) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port_),
                                     grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  auto make_request = [this](int64_t begin) {
    inference::ModelInferRequest request;
    request.set_model_name("heavy");
    auto* input = request.add_inputs();
    input->set_name("features");
    input->set_datatype("FP32");
    input->add_shape(kRows);
    input->add_shape(8);
    std::string raw;
    for (int64_t r = begin; r < begin + kRows; ++r) {
      for (float v : data_->Row(r)) raw.append(reinterpret_cast<const char*>(&v), sizeof(v));
    }
    request.add_raw_input_contents(std::move(raw));
    return request;
  };
  auto holds_rows = [this](const inference::ModelInferResponse& response, int64_t begin) {
    if (response.raw_output_contents_size() != 1) return false;
    const std::string& raw = response.raw_output_contents(0);
    if (raw.size() != kRows * sizeof(float)) return false;
    for (int64_t i = 0; i < kRows; ++i) {
      float v = 0;
      std::memcpy(&v, raw.data() + i * sizeof(float), sizeof(float));
      if (std::fabs(v - expected_[static_cast<size_t>(begin + i)]) > 1e-5f) return false;
    }
    return true;
  };

  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> shed{0};
  std::atomic<int64_t> wrong{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kPerClient; ++i) {
        const int64_t begin = BeginOf(0, c, i);
        grpc::ClientContext context;
        inference::ModelInferResponse response;
        grpc::Status status = stub->ModelInfer(&context, make_request(begin), &response);
        if (status.ok() && holds_rows(response, begin)) {
          ok.fetch_add(1);
        } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
                   status.error_message().find("queue") != std::string::npos) {
          shed.fetch_add(1);
        } else {
          wrong.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(shed.load(), 0);
  EXPECT_GT(ok.load(), 0);

  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext context;
    inference::ModelInferResponse response;
    grpc::Status status = stub->ModelInfer(&context, make_request(i), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(holds_rows(response, i));
  }
  auto client = http::Client::Connect("127.0.0.1", port_);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Request("GET", "/metrics");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Sample(r->body, "outpost_inference_request_success_total" + kSeries), ok.load() + 5);
  EXPECT_EQ(Sample(r->body, "outpost_inference_request_failure_total" + kSeries), shed.load());
}

TEST_F(ServeOverloadTest, TimeoutParameterIsCheckedOverBothProtocols) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto client, http::Client::Connect("127.0.0.1", port_));
  std::string body = Body(0);
  body.insert(1, R"("parameters":{"timeout":-3},)");
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse bad,
                               client->Request("POST", "/v2/models/heavy/infer", body));
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("timeout"), std::string::npos) << bad.body;
  body = Body(0);
  body.insert(1, R"("parameters":{"timeout":5000000},)");
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse good,
                               client->Request("POST", "/v2/models/heavy/infer", body));
  EXPECT_EQ(good.status, 200) << good.body;

  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port_),
                                     grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  inference::ModelInferRequest request;
  request.set_model_name("heavy");
  (*request.mutable_parameters())["timeout"].set_string_param("soon");
  auto* input = request.add_inputs();
  input->set_name("features");
  input->set_datatype("FP32");
  input->add_shape(1);
  input->add_shape(8);
  request.add_raw_input_contents(std::string(32, '\0'));
  grpc::ClientContext context;
  inference::ModelInferResponse response;
  grpc::Status status = stub->ModelInfer(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("timeout"), std::string::npos);
  (*request.mutable_parameters())["timeout"].set_int64_param(1000000);
  grpc::ClientContext context2;
  status = stub->ModelInfer(&context2, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

}  // namespace
}  // namespace outpost
