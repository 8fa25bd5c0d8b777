// A real `outpost edge` producing more than its outbox holds (issue 21's two scenarios), with
// a model with an anomaly rule and a sample rule keeping every row, and one client scoring
// over REST:
//
// - a sample flood (6,000 requests of 16 rows, 1 anomalous row in 16, about ten times the
//   bound in samples): every one of the 6,000 anomalies raised is held, the samples make room
//   and are counted as evicted (per class and for the sample rule), and the outbox's
//   bookkeeping is one summary at most, not an event per commit. The bound is 3 MiB, not the
//   issue's 1 MiB: an anomaly record here is charged about 309 bytes (its payload, the stream
//   and the 48-byte envelope; 6,000 measured 1,856,183 bytes), so 6,000 of them take 1.77
//   times the whole of 1 MiB, and the 83% of 1 MiB that the reserved shares leave holds about
//   2,800; 3 MiB leaves them 2.6 MB. And 6,000 anomalies of one rule in an hour are a storm by
//   the default policy (past 1,000 once anomalies hold 40% of the bound), so the test's edge
//   keeps the first 6,000 per hour: the flood is a flood of samples, not an anomaly storm;
// - an anomaly storm (every row anomalous, a 1 MiB bound): the per-minute aggregates of every
//   row are held,
//   the storm is sampled and what was not kept is counted, in an account that balances and
//   survives a restart.
//
// The requests go one after another, fewer than the evaluator's queue holds, so that no
// batch is dropped and every row reaches the rules.
#include <gtest/gtest.h>
#include <signal.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

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

constexpr uint64_t kBound = uint64_t{1} << 20;

std::string Number(double v) {
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, ptr);
}

class EdgeOverflowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        train::Dataset data,
        train::MakePumpReadings({.rows = 4000, .seed = 11, .fault_rate = 0.1}));
    train::TrainOptions options;
    options.rounds = 20;
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, train::TrainXGBoost(data, options));
    OUTPOST_ASSERT_OK_AND_ASSIGN(model_bytes_, model->Serialize(train::ModelFormat::kJson));
    // Readings the model scores below 0.5 (calm) and above 0.95 (faults).
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        traffic_, train::MakePumpReadings({.rows = 3000, .seed = 12, .fault_rate = 0.2}));
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        train::Predictions p,
        train::ReferencePredict(model_bytes_, traffic_.features, traffic_.rows, 8));
    for (int64_t r = 0; r < traffic_.rows; ++r) {
      if (p.values[r] < 0.5f) calm_.push_back(r);
      if (p.values[r] > 0.95f) faults_.push_back(r);
    }
    ASSERT_GE(calm_.size(), 100u);
    ASSERT_GE(faults_.size(), 10u);
  }

  // A model whose anomaly rule fires above `above`, with a sample rule keeping every row, on
  // an edge whose outbox has the bound `bound` and the class settings `classes` (a flow map).
  void WriteModel(double above, uint64_t bound = kBound, const std::string& classes = "") {
    std::string dir = dir_.File("models/pump");
    OUTPOST_ASSERT_OK(MakeDirectories(dir + "/1"));
    OUTPOST_ASSERT_OK(
        WriteFileAtomically(dir + "/config.yaml",
                            "backend: xgboost\n"
                            "inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\n"
                            "outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]\n"
                            "insight:\n"
                            "  rules:\n"
                            "    - {name: fault_likely, kind: anomaly, score: value, above: " +
                                Number(above) +
                                ",\n"
                                "       fields: [f0, f1]}\n"
                                "    - {name: keep_all, kind: sample, rate: 1.0}\n"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir + "/1/model.json", model_bytes_));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("edge.yaml"),
                                          "listen: 127.0.0.1:0\ngrpc_listen: \"\"\nthreads: 2\n"
                                          "site_id: plant-7\nnode_id: edge-1\n"
                                          "model_repository: " +
                                              dir_.File("models") +
                                              "\n"
                                              "data_dir: " +
                                              dir_.File("data") +
                                              "\n"
                                              "outbox: {max_bytes: " +
                                              std::to_string(bound) +
                                              (classes.empty() ? "" : ", classes: " + classes) +
                                              "}\n"
                                              "auth:\n  raw_read_roles: [read]\n"));
  }

  void Start() {
    client_.reset();
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        edge_, Subprocess::Start({Outpost(), "edge", "--config", dir_.File("edge.yaml")},
                                 dir_.File("edge.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, edge_->ReadLine());
    ASSERT_EQ(line.rfind("listening on http://127.0.0.1:", 0), 0u) << line;
    uint16_t port = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
    OUTPOST_ASSERT_OK_AND_ASSIGN(client_, http::Client::Connect("127.0.0.1", port));
  }

  // Stops the edge gracefully (the evaluator writes everything it holds) and starts it again.
  void Restart() {
    client_.reset();
    OUTPOST_ASSERT_OK(edge_->Signal(SIGTERM));
    ASSERT_EQ(edge_->Wait(), 0);
    Start();
  }

  // Scores `rows` (indices into traffic_) in one request.
  void Score(const std::vector<int64_t>& rows) {
    std::string body = "{\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[" +
                       std::to_string(rows.size()) + ",8],\"data\":[";
    for (int64_t r : rows) {
      for (float v : traffic_.Row(r)) body += Number(v) + ",";
    }
    body.back() = ']';
    body += "}]}";
    Result<http::ClientResponse> res = client_->Request("POST", "/v2/models/pump/infer", body);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    ASSERT_EQ(res->status, 200) << res->body;
  }

  json::Value Get(const std::string& target) {
    Result<http::ClientResponse> res = client_->Request("GET", target);
    EXPECT_TRUE(res.ok() && res->status == 200) << target;
    if (!res.ok()) return {};
    bodies_.push_back(std::move(res->body));
    Result<json::Value> parsed = parser_.Parse(bodies_.back());
    EXPECT_TRUE(parsed.ok()) << bodies_.back();
    return parsed.ok() ? *parsed : json::Value();
  }

  uint64_t Count(json::Value v) { return v.GetUint64().value_or(0); }

  // Waits until the outbox's account has `anomalies` anomalies raised: the edge's insight
  // evaluator has taken every request scored so far. A test that calls this every few
  // hundred requests never has more batches waiting for the evaluator than its queue holds
  // (1,024), past which it sheds batches (counted in an insight_dropped event) when scoring
  // outruns it; what the outbox does with them is what such a test is about.
  void WaitRaised(uint64_t anomalies) {
    for (int i = 0; i < 12000; ++i) {
      json::Value raised = Get("/v1/outbox")["account"]["classes"]["anomaly"]["raised"];
      if (Count(raised) >= anomalies) return;
      bodies_.pop_back();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "the evaluator did not take " << anomalies << " anomalies in 120 s";
  }

  // The account of every class balances (outbox/FORMAT.md section 11).
  void ExpectBalanced(json::Value account) {
    for (const char* kind :
         {"event", "anomaly", "drift", "feedback", "hard_example", "aggregate", "sample"}) {
      json::Value c = account["classes"][kind];
      EXPECT_EQ(Count(c["raised"]), Count(c["held"]) + Count(c["delivered"]) +
                                        Count(c["withheld"]) + Count(c["evicted"]) +
                                        Count(c["refused"]) + Count(c["sampled_out"]) +
                                        Count(c["quarantined"]))
          << kind;
    }
  }

  // The rows the held aggregates counted, and how many aggregate records there are.
  void Aggregates(int64_t* rows, int64_t* minutes) {
    *rows = 0;
    *minutes = 0;
    json::Value records = Get("/v1/records?kind=aggregate&limit=1000")["records"];
    for (json::Value r : records.Items()) {
      *rows += r["payload"]["rows"].GetInt64().value_or(0);
      ++*minutes;
    }
  }

  TempDir dir_;
  std::string model_bytes_;
  train::Dataset traffic_;
  std::vector<int64_t> calm_, faults_;
  std::unique_ptr<Subprocess> edge_;
  std::unique_ptr<http::Client> client_;
  json::Parser parser_;
  std::vector<std::string> bodies_;  // keep parsed documents' text alive
};

TEST_F(EdgeOverflowTest, AfterASampleFloodEveryAnomalyRaisedIsHeld) {
  constexpr uint64_t kFloodBound = uint64_t{3} << 20;
  WriteModel(/*above=*/0.9, kFloodBound, "{anomaly: {storm_first: 6000}}");
  ASSERT_NO_FATAL_FAILURE(Start());
  // 6,000 requests of 16 rows, one of them a fault: 6,000 anomalies and 96,000 samples,
  // about ten times the bound.
  constexpr int kRequests = 6000;
  for (int i = 0; i < kRequests; ++i) {
    std::vector<int64_t> rows;
    for (int j = 0; j < 15; ++j) {
      rows.push_back(calm_[static_cast<size_t>(i * 15 + j) % calm_.size()]);
    }
    rows.push_back(faults_[static_cast<size_t>(i) % faults_.size()]);
    ASSERT_NO_FATAL_FAILURE(Score(rows));
    if ((i + 1) % 500 == 0) {
      ASSERT_NO_FATAL_FAILURE(WaitRaised(static_cast<uint64_t>(i + 1)));
    }
  }
  ASSERT_NO_FATAL_FAILURE(Restart());
  json::Value state = Get("/v1/outbox");
  json::Value account = state["account"];
  json::Value anomaly = account["classes"]["anomaly"];
  json::Value sample = account["classes"]["sample"];
  EXPECT_EQ(Count(anomaly["raised"]), uint64_t{kRequests});
  EXPECT_EQ(Count(anomaly["held"]), uint64_t{kRequests}) << "every anomaly raised is held";
  EXPECT_EQ(Count(anomaly["refused"]), 0u);
  EXPECT_EQ(Count(sample["raised"]), 16u * kRequests);
  EXPECT_GT(Count(sample["evicted"]), 10u * kRequests);
  ExpectBalanced(account);
  EXPECT_LE(Count(state["bytes"]), kFloodBound);
  // Evictions are counted per rule too: every sample evicted was the sample rule's.
  int rules = 0;
  for (json::Value r : account["rules"].Items()) {
    const std::string rule(r["rule"].GetString().value_or(""));
    if (rule == "keep_all") {
      ++rules;
      EXPECT_EQ(Count(r["raised"]), 16u * kRequests);
      EXPECT_EQ(Count(r["evicted"]), Count(sample["evicted"]));
    } else if (rule == "fault_likely") {
      ++rules;
      EXPECT_EQ(Count(r["raised"]), uint64_t{kRequests});
      EXPECT_EQ(Count(r["evicted"]), 0u);
    }
  }
  EXPECT_EQ(rules, 2);
  // Bookkeeping: the event class stays inside its 2% share (no event per commit).
  for (json::Value c : state["classes"].Items()) {
    const std::string kind(c["kind"].GetString().value_or(""));
    if (kind == "anomaly") {
      std::cout << "anomaly records: " << Count(c["records"]) << ", bytes charged: "
                << Count(c["bytes"]) << "\n";
    }
    if (kind != "event") continue;
    EXPECT_LE(Count(c["bytes"]), kFloodBound / 50);
    EXPECT_LE(Count(c["records"]), 1u);
  }
  OUTPOST_ASSERT_OK(edge_->Signal(SIGTERM));
  EXPECT_EQ(edge_->Wait(), 0);
}

TEST_F(EdgeOverflowTest, AfterAnAnomalyStormEveryMinutesAggregateIsHeldAndTheRestIsCounted) {
  WriteModel(/*above=*/-1.0);  // every row is an anomaly
  ASSERT_NO_FATAL_FAILURE(Start());
  constexpr int kRequests = 250;
  constexpr int kRows = 64;
  for (int i = 0; i < kRequests; ++i) {
    std::vector<int64_t> rows;
    for (int j = 0; j < kRows; ++j) {
      rows.push_back(static_cast<int64_t>((i * kRows + j) % traffic_.rows));
    }
    ASSERT_NO_FATAL_FAILURE(Score(rows));
  }
  ASSERT_NO_FATAL_FAILURE(Restart());
  const uint64_t raised = uint64_t{kRequests} * kRows;
  // Every row scored is counted in an aggregate held for its minute.
  int64_t rows = 0, minutes = 0;
  Aggregates(&rows, &minutes);
  EXPECT_EQ(rows, static_cast<int64_t>(raised));
  EXPECT_GE(minutes, 1);
  json::Value state = Get("/v1/outbox");
  json::Value anomaly = state["account"]["classes"]["anomaly"];
  EXPECT_EQ(Count(anomaly["raised"]), raised);
  EXPECT_EQ(Count(state["account"]["classes"]["aggregate"]["refused"]), 0u);
  EXPECT_EQ(Count(state["account"]["classes"]["aggregate"]["evicted"]), 0u);
  // The storm kept a sample and counted the rest.
  EXPECT_LT(Count(anomaly["held"]), raised / 4);
  EXPECT_GT(Count(anomaly["sampled_out"]) + Count(anomaly["refused"]), raised / 2);
  ExpectBalanced(state["account"]);
  EXPECT_LE(Count(state["bytes"]), kBound);
  bool storm = false;
  for (json::Value r : state["account"]["rules"].Items()) {
    if (r["rule"].GetString().value_or("") != "fault_likely") continue;
    storm = Count(r["sampled_out"]) > 0 && r["storm_from_ms"].GetInt64().ok();
    EXPECT_EQ(Count(r["raised"]), raised);
  }
  EXPECT_TRUE(storm) << "the storm is reported with its rule and span";
  // The counts are durable: the same after a restart.
  const uint64_t sampled_out = Count(anomaly["sampled_out"]);
  const uint64_t refused = Count(anomaly["refused"]);
  ASSERT_NO_FATAL_FAILURE(Restart());
  json::Value again = Get("/v1/outbox")["account"]["classes"]["anomaly"];
  EXPECT_EQ(Count(again["raised"]), raised);
  EXPECT_EQ(Count(again["sampled_out"]), sampled_out);
  EXPECT_EQ(Count(again["refused"]), refused);
  OUTPOST_ASSERT_OK(edge_->Signal(SIGTERM));
  EXPECT_EQ(edge_->Wait(), 0);
}

}  // namespace
}  // namespace outpost
