// Insight rules on a real scoring server with a real model (issue 3's acceptance): `outpost
// edge` scores pump readings over HTTP; an injected anomaly yields exactly one anomaly
// record, drift on a shifted stream is raised within the rule's window (and not on the
// unshifted stream before it), and the per-minute aggregates add up to the rows sent. The
// records are read back through GET /v1/records after a graceful stop and a restart on the
// same data folder, so they are also shown to be durable.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string>

#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

constexpr int kWindow = 200;

std::string Number(double v) {
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, ptr);
}

std::string FeatureList() {
  std::string out = "[";
  for (std::string_view f : train::kPumpFeatureNames) {
    if (out.size() > 1) out += ", ";
    out += f;
  }
  return out + "]";
}

class EdgeInsightTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data,
                                 train::MakePumpReadings({.rows = 4000, .seed = 11, .fault_rate = 0.1}));
    train::TrainOptions options;
    options.rounds = 20;
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, train::TrainXGBoost(data, options));
    OUTPOST_ASSERT_OK_AND_ASSIGN(model_bytes_, model->Serialize(train::ModelFormat::kJson));

    // The drift baseline of bearing_temp_c: deciles of the training data.
    std::vector<float> temps;
    for (int64_t r = 0; r < data.rows; ++r) temps.push_back(data.Row(r)[0]);
    std::sort(temps.begin(), temps.end());
    std::string edges = "[", fractions = "[";
    for (int q = 1; q <= 9; ++q) {
      edges += (q > 1 ? ", " : "") + Number(temps[temps.size() * q / 10]);
      fractions += "0.1, ";
    }
    edges += "]";
    fractions += "0.1]";

    const std::string head = "backend: xgboost\n"
                             "inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\n"
                             "outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]\n"
                             "insight:\n"
                             "  features: " + FeatureList() + "\n"
                             "  rules:\n";
    WriteModel("pump", head +
                           "    - {name: fault_likely, kind: anomaly, score: value, above: 0.9,\n"
                           "       fields: [bearing_temp_c, vibration_mm_s]}\n");
    WriteModel("pump_drift", head +
                                 "    - name: bearing_heat\n"
                                 "      kind: drift\n"
                                 "      window: " + std::to_string(kWindow) + "\n"
                                 "      level: 0.25\n"
                                 "      baseline:\n"
                                 "        bearing_temp_c: {edges: " + edges +
                                 ", fractions: " + fractions + "}\n");
    // The records are read back as they were written: without a policy, GET /v1/records lists
    // them only to a raw-read role, here read, which an anonymous caller on loopback holds.
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        dir_.File("edge.yaml"), "listen: 127.0.0.1:0\ngrpc_listen: \"\"\nthreads: 2\n"
                                "site_id: plant-7\nnode_id: edge-1\n"
                                "model_repository: " + dir_.File("models") + "\n"
                                "data_dir: " + dir_.File("data") + "\n"
                                "auth:\n  raw_read_roles: [read]\n"));
  }

  void WriteModel(const std::string& name, const std::string& config) {
    std::string dir = dir_.File("models/" + name);
    OUTPOST_ASSERT_OK(MakeDirectories(dir + "/1"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir + "/config.yaml", config));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir + "/1/model.json", model_bytes_));
  }

  void Start() {
    client_.reset();
    OUTPOST_ASSERT_OK_AND_ASSIGN(edge_, Subprocess::Start({Outpost(), "edge", "--config",
                                                           dir_.File("edge.yaml")},
                                                          dir_.File("edge.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, edge_->ReadLine());
    ASSERT_EQ(line.rfind("listening on http://127.0.0.1:", 0), 0u) << line;
    uint16_t port = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
    OUTPOST_ASSERT_OK_AND_ASSIGN(client_, http::Client::Connect("127.0.0.1", port));
  }

  // Stops the edge gracefully (the evaluator writes what it holds) and starts it again.
  void Restart() {
    client_.reset();
    OUTPOST_ASSERT_OK(edge_->Signal(SIGTERM));
    ASSERT_EQ(edge_->Wait(), 0);
    Start();
  }

  // Scores rows [begin, end) of `data` on `model` in one request.
  void Score(const std::string& model, const train::Dataset& data, int64_t begin, int64_t end) {
    std::string body = "{\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[" +
                       std::to_string(end - begin) + ",8],\"data\":[";
    for (int64_t r = begin; r < end; ++r) {
      for (float v : data.Row(r)) body += Number(v) + ",";
    }
    body.back() = ']';
    body += "}]}";
    Result<http::ClientResponse> res = client_->Request("POST", "/v2/models/" + model + "/infer", body);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    ASSERT_EQ(res->status, 200) << res->body;
  }

  // The payloads of the records of `kind` for `model`, via GET /v1/records.
  std::vector<json::Value> Records(std::string_view kind, std::string_view model) {
    Result<http::ClientResponse> res =
        client_->Request("GET", "/v1/records?kind=" + std::string(kind) + "&limit=1000");
    EXPECT_TRUE(res.ok() && res->status == 200);
    if (!res.ok()) return {};
    bodies_.push_back(std::move(res->body));
    Result<json::Value> parsed = parser_.Parse(bodies_.back());
    EXPECT_TRUE(parsed.ok());
    const json::Value root = parsed.ok() ? *parsed : json::Value();
    std::vector<json::Value> out;
    json::Value records = root["records"];
    for (json::Value record : records.Items()) {
      json::Value payload = record["payload"];
      if (payload["model"].GetString().value() == model) out.push_back(payload);
    }
    EXPECT_FALSE(root["more"].GetBool().value());
    return out;
  }

  TempDir dir_;
  std::string model_bytes_;
  std::unique_ptr<Subprocess> edge_;
  std::unique_ptr<http::Client> client_;
  json::Parser parser_;
  std::vector<std::string> bodies_;  // keep parsed documents' text alive
};

TEST_F(EdgeInsightTest, AnomalyDriftAndAggregatesFromARealServer) {
  Start();
  // Ordinary traffic: readings the model scores well below the anomaly threshold, in
  // batches, then one injected reading that it scores above it.
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset traffic,
                               train::MakePumpReadings({.rows = 3000, .seed = 12, .fault_rate = 0.1}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Predictions p,
                               train::ReferencePredict(model_bytes_, traffic.features, traffic.rows, 8));
  train::Dataset calm{.feature_names = traffic.feature_names};
  int64_t injected = -1;
  for (int64_t r = 0; r < traffic.rows; ++r) {
    if (p.values[r] < 0.5f && calm.rows < 600) {
      calm.features.insert(calm.features.end(), traffic.Row(r).begin(), traffic.Row(r).end());
      ++calm.rows;
    } else if (p.values[r] > 0.95f && injected < 0) {
      injected = r;
    }
  }
  ASSERT_EQ(calm.rows, 600);
  ASSERT_GE(injected, 0) << "the traffic should hold a reading the model calls a fault";
  int64_t pump_rows = 0;
  for (int64_t begin = 0; begin < 300; begin += 50, pump_rows += 50) Score("pump", calm, begin, begin + 50);
  Score("pump", traffic, injected, injected + 1);
  ++pump_rows;
  for (int64_t begin = 300; begin < 600; begin += 50, pump_rows += 50) Score("pump", calm, begin, begin + 50);

  // Drift: an unshifted stream, then the same pumps with their bearings 3 spreads hotter.
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset steady,
                               train::MakePumpReadings({.rows = 400, .seed = 21}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset hot,
                               train::MakePumpReadings({.rows = 400, .seed = 22,
                                                        .shift_feature = "bearing_temp_c",
                                                        .shift_sigmas = 3.0}));
  for (int64_t begin = 0; begin < 400; begin += 40) Score("pump_drift", steady, begin, begin + 40);
  for (int64_t begin = 0; begin < 400; begin += 40) Score("pump_drift", hot, begin, begin + 40);

  Restart();

  std::vector<json::Value> anomalies = Records("anomaly", "pump");
  ASSERT_EQ(anomalies.size(), 1u);
  EXPECT_EQ(anomalies[0]["rule"].GetString().value(), "fault_likely");
  EXPECT_DOUBLE_EQ(anomalies[0]["inputs"]["bearing_temp_c"].GetDouble().value(),
                   traffic.Row(injected)[0]);
  EXPECT_EQ(anomalies[0]["inputs"].size(), 2u);

  std::vector<json::Value> drifts = Records("drift", "pump_drift");
  ASSERT_EQ(drifts.size(), 1u);
  EXPECT_EQ(drifts[0]["feature"].GetString().value(), "bearing_temp_c");
  int64_t rows_seen = drifts[0]["rows_seen"].GetInt64().value();
  EXPECT_GT(rows_seen, 400) << "no drift may be raised on the unshifted stream";
  EXPECT_LE(rows_seen, 400 + kWindow) << "drift must be raised within the window";

  int64_t aggregated = 0, anomalies_counted = 0;
  for (json::Value a : Records("aggregate", "pump")) {
    aggregated += a["rows"].GetInt64().value();
    anomalies_counted += a["anomalies"].GetInt64().value();
  }
  EXPECT_EQ(aggregated, pump_rows);
  EXPECT_EQ(anomalies_counted, 1);
  int64_t drift_rows = 0;
  for (json::Value a : Records("aggregate", "pump_drift")) {
    drift_rows += a["rows"].GetInt64().value();
  }
  EXPECT_EQ(drift_rows, 800);
  EXPECT_TRUE(Records("event", "pump").empty()) << "no batch may have been dropped";
}

}  // namespace
}  // namespace outpost
