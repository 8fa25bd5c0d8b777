// The evaluator on a real outbox (a real SQLite file in a temporary folder) with a fake clock.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/json/json.h"
#include "base/testing/test_util.h"
#include "engine/model.h"
#include "engine/tensor.h"
#include "engine/xgboost_model.h"
#include "insight/evaluator.h"
#include "insight/rules.h"
#include "outbox/outbox.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost::insight {
namespace {

using engine::DataType;
using engine::Tensor;

// A parsed payload's member as the test expects it; a missing member or another kind throws,
// which fails the test.
int64_t AsInt(const json::Value& v) { return v.GetInt64().value(); }
uint64_t AsUint(const json::Value& v) { return v.GetUint64().value(); }
double AsDouble(const json::Value& v) { return v.GetDouble().value(); }
std::string_view AsString(const json::Value& v) { return v.GetString().value(); }

// The pump model's signature: 8 readings in, a fault probability out.
const engine::Signature& PumpSignature() {
  static const engine::Signature kSig{
      .inputs = {{.name = "features", .type = DataType::kFp32, .shape = {-1, 8}}},
      .outputs = {{.name = "probability", .type = DataType::kFp32, .shape = {-1}}}};
  return kSig;
}

std::string PumpFeatures() {
  std::string s = "features: [";
  for (size_t i = 0; i < train::kPumpFeatureNames.size(); ++i) {
    if (i > 0) s += ", ";
    s += train::kPumpFeatureNames[i];
  }
  return s + "]\n";
}

// A batch of `rows` readings (row-major, 8 per row) and one probability per row.
struct Batch {
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
};

Batch MakeBatch(std::span<const float> readings, std::span<const float> probabilities,
                int64_t cols = 8) {
  const int64_t rows = static_cast<int64_t>(probabilities.size());
  Batch b;
  b.inputs.emplace_back(DataType::kFp32, engine::Shape{rows, cols});
  std::copy(readings.begin(), readings.end(), b.inputs[0].values<float>().begin());
  b.outputs.emplace_back(DataType::kFp32, engine::Shape{rows});
  std::copy(probabilities.begin(), probabilities.end(), b.outputs[0].values<float>().begin());
  return b;
}

class InsightTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto box = outbox::Outbox::Open({.path = dir_.File("outbox.db"),
                                     .site_id = "site-1",
                                     .node_id = "edge-1",
                                     .clock = &clock_});
    ASSERT_TRUE(box.ok()) << box.status().ToString();
    outbox_ = std::move(box).value();
  }

  void Start(std::string_view section, EvaluatorOptions options = {}) {
    auto rules = ParseInsightSection(section);
    ASSERT_TRUE(rules.ok()) << rules.status().ToString();
    rules_ = std::move(rules).value();
    ASSERT_TRUE(CheckSignature(*rules_, PumpSignature()).ok());
    options.outbox = outbox_.get();
    options.clock = &clock_;
    auto e = Evaluator::Create(options);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    evaluator_ = std::move(e).value();
  }

  void Send(const Batch& b, std::string_view request_id = "req") {
    evaluator_->OnScored({.rules = rules_,
                          .model = "pump",
                          .version = 3,
                          .request_id = request_id,
                          .signature = &PumpSignature(),
                          .inputs = b.inputs,
                          .outputs = b.outputs});
  }

  // Sends `data`'s rows in batches of `batch_rows`, each row with probability `p`.
  void SendRows(const train::Dataset& data, int64_t batch_rows, float p = 0.1f) {
    for (int64_t r = 0; r < data.rows; r += batch_rows) {
      const int64_t n = std::min(batch_rows, data.rows - r);
      std::vector<float> probs(static_cast<size_t>(n), p);
      Send(MakeBatch(std::span<const float>(data.features)
                         .subspan(static_cast<size_t>(r * 8), static_cast<size_t>(n * 8)),
                     probs));
    }
  }

  // Every stored record of `kind`, parsed, oldest first.
  std::vector<json::Value> Records(outbox::Kind kind) {
    auto records = outbox_->Query({.kind = kind, .limit = 10000});
    EXPECT_TRUE(records.ok()) << records.status().ToString();
    std::vector<json::Value> out;
    if (!records.ok()) return out;
    for (const outbox::Record& r : *records) {
      EXPECT_EQ(r.stream, "pump");
      parsers_.push_back(std::make_unique<json::Parser>());
      json::Value doc = parsers_.back()->Parse(r.payload).value();
      EXPECT_EQ(AsString(doc["kind"]), outbox::KindName(kind));
      EXPECT_EQ(AsInt(doc["v"]), 1);
      EXPECT_EQ(AsString(doc["model"]), "pump");
      EXPECT_EQ(AsInt(doc["version"]), 3);
      out.push_back(doc);
    }
    return out;
  }

  static std::set<std::string> Keys(json::Value o) {
    std::set<std::string> keys;
    for (json::Member field : o.Members()) keys.insert(std::string(field.key));
    return keys;
  }

  testing::TempDir dir_;
  FakeClock clock_{Clock::WallTime(std::chrono::seconds(1'700'000'000))};  // 20 s into a minute
  std::unique_ptr<outbox::Outbox> outbox_;
  std::shared_ptr<const RuleSet> rules_;
  std::unique_ptr<Evaluator> evaluator_;
  std::vector<std::unique_ptr<json::Parser>> parsers_;
};

TEST_F(InsightTest, InjectedAnomalyYieldsExactlyOneAnomalyRecord) {
  ASSERT_NO_FATAL_FAILURE(Start(PumpFeatures() + R"(
rules:
  - {name: fault_likely, kind: anomaly, above: 0.9, fields: [vibration_mm_s, bearing_temp_c]}
)"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data, train::MakePumpReadings({.rows = 50}));
  std::vector<float> probs(50, 0.2f);
  probs[17] = 0.97f;
  Send(MakeBatch(data.features, probs), "req-anomaly");
  evaluator_->Drain();

  auto anomalies = Records(outbox::Kind::kAnomaly);
  ASSERT_EQ(anomalies.size(), 1u);
  json::Value a = anomalies[0];
  EXPECT_EQ(AsString(a["rule"]), "fault_likely");
  EXPECT_EQ(AsString(a["request_id"]), "req-anomaly");
  EXPECT_EQ(AsInt(a["row"]), 17);
  EXPECT_EQ(AsString(a["score"]), "value");
  EXPECT_NEAR(AsDouble(a["score_value"]), 0.97, 1e-6);
  EXPECT_EQ(AsInt(a["time_ms"]), 1'700'000'000'000);
  // Exactly the fields the rule names, with the row's readings.
  json::Value inputs = a["inputs"];
  EXPECT_EQ(Keys(inputs), (std::set<std::string>{"vibration_mm_s", "bearing_temp_c"}));
  EXPECT_EQ(AsDouble(inputs["bearing_temp_c"]), data.Row(17)[0]);
  EXPECT_EQ(AsDouble(inputs["vibration_mm_s"]), data.Row(17)[1]);
  EXPECT_EQ(evaluator_->stats().records_appended, 1u);
  EXPECT_TRUE(Records(outbox::Kind::kHardExample).empty());
}

TEST_F(InsightTest, EveryRecordIsAnsweredByTheOutboxAndRefusalsAreCounted) {
  // Records go to the outbox with AppendAsync, many in flight: each is counted when the outbox
  // answers it, stored or refused, and Drain waits for every answer.
  ASSERT_NO_FATAL_FAILURE(Start(PumpFeatures() + R"(
rules:
  - {name: fault_likely, kind: anomaly, above: 0.9, fields: [vibration_mm_s]}
)"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data, train::MakePumpReadings({.rows = 200}));
  std::vector<float> probs(200, 0.95f);
  Send(MakeBatch(data.features, probs), "req-all");
  evaluator_->Drain();
  EXPECT_EQ(evaluator_->stats().records_appended, 200u);
  EXPECT_EQ(evaluator_->stats().records_failed, 0u);
  EXPECT_EQ(Records(outbox::Kind::kAnomaly).size(), 200u);
  evaluator_.reset();
  // An outbox that refuses every record (payloads over its limit): each refusal is counted as
  // failed, and nothing is stored.
  outbox_.reset();
  auto box = outbox::Outbox::Open({.path = dir_.File("refusing.db"),
                                   .site_id = "site-1",
                                   .node_id = "edge-1",
                                   .max_payload_bytes = 16,
                                   .clock = &clock_});
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  outbox_ = std::move(box).value();
  ASSERT_NO_FATAL_FAILURE(Start(PumpFeatures() + R"(
rules:
  - {name: fault_likely, kind: anomaly, above: 0.9, fields: [vibration_mm_s]}
)"));
  Send(MakeBatch(std::span<const float>(data.features).subspan(0, 80),
                 std::span<const float>(probs).subspan(0, 10)),
       "req-refused");
  evaluator_->Drain();
  EXPECT_EQ(evaluator_->stats().records_failed, 10u);
  EXPECT_EQ(evaluator_->stats().records_appended, 0u);
  EXPECT_TRUE(Records(outbox::Kind::kAnomaly).empty());
}

TEST_F(InsightTest, BandCatchesRowsOnBothSides) {
  ASSERT_NO_FATAL_FAILURE(Start("rules: [{name: band, kind: anomaly, below: 0.05, above: 0.95}]"));
  std::vector<float> readings(4 * 8, 1.0f);
  std::vector<float> probs = {0.01f, 0.5f, 0.99f, 0.05f};
  Send(MakeBatch(readings, probs));
  evaluator_->Drain();
  auto anomalies = Records(outbox::Kind::kAnomaly);
  ASSERT_EQ(anomalies.size(), 2u);
  std::set<int64_t> rows = {AsInt(anomalies[0]["row"]), AsInt(anomalies[1]["row"])};
  EXPECT_EQ(rows, (std::set<int64_t>{0, 2}));
  // No fields named: the record carries none.
  EXPECT_TRUE(Keys(anomalies[0]["inputs"]).empty());
}

TEST_F(InsightTest, HardExampleOnSmallMarginBetweenTopTwoClasses) {
  // A three-class model: its own signature.
  static const engine::Signature kSig{
      .inputs = {{.name = "x", .type = DataType::kFp32, .shape = {-1, 2}}},
      .outputs = {{.name = "probabilities", .type = DataType::kFp32, .shape = {-1, 3}}}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto rules,
      ParseInsightSection(
          "features: [a, b]\n"
          "rules: [{name: unsure, kind: hard_example, margin_below: 0.1, fields: all}]"));
  OUTPOST_ASSERT_OK(CheckSignature(*rules, kSig));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto e,
                               Evaluator::Create({.outbox = outbox_.get(), .clock = &clock_}));
  std::vector<Tensor> in, out;
  in.emplace_back(DataType::kFp32, engine::Shape{3, 2});
  std::vector<float> x = {1, 2, 3, 4, 5, 6};
  std::copy(x.begin(), x.end(), in[0].values<float>().begin());
  out.emplace_back(DataType::kFp32, engine::Shape{3, 3});
  std::vector<float> p = {0.90f, 0.05f, 0.05f,   // confident
                          0.11f, 0.45f, 0.44f,   // margin 0.01: hard
                          0.30f, 0.10f, 0.60f};  // margin 0.30
  std::copy(p.begin(), p.end(), out[0].values<float>().begin());
  e->OnScored({.rules = rules,
               .model = "pump",
               .version = 3,
               .request_id = "r",
               .signature = &kSig,
               .inputs = in,
               .outputs = out});
  e->Drain();
  auto hard = Records(outbox::Kind::kHardExample);
  ASSERT_EQ(hard.size(), 1u);
  EXPECT_EQ(AsInt(hard[0]["row"]), 1);
  EXPECT_EQ(AsString(hard[0]["score"]), "margin");
  EXPECT_NEAR(AsDouble(hard[0]["score_value"]), 0.01, 1e-6);
  json::Value inputs = hard[0]["inputs"];
  EXPECT_EQ(Keys(inputs), (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(AsDouble(inputs["a"]), 3.0);
  json::Value output = hard[0]["output"];
  EXPECT_EQ(output.size(), 3u);
}

TEST_F(InsightTest, HardExampleOnLowConfidenceOfABinaryProbability) {
  ASSERT_NO_FATAL_FAILURE(
      Start("rules: [{name: unsure, kind: hard_example, confidence_below: 0.6}]"));
  std::vector<float> readings(3 * 8, 0.0f);
  std::vector<float> probs = {0.55f, 0.02f, 0.7f};  // confidences 0.55, 0.98, 0.7
  Send(MakeBatch(readings, probs));
  evaluator_->Drain();
  auto hard = Records(outbox::Kind::kHardExample);
  ASSERT_EQ(hard.size(), 1u);
  EXPECT_EQ(AsInt(hard[0]["row"]), 0);
  EXPECT_EQ(AsString(hard[0]["score"]), "max_probability");
}

// A drift rule on every pump reading, its baseline the deciles of a training set.
std::string DriftSection(int window, double level) {
  auto train_data = train::MakePumpReadings({.rows = 5000, .seed = 1});
  EXPECT_TRUE(train_data.ok());
  std::string s = PumpFeatures() +
                  "rules:\n  - name: moved\n    kind: drift\n"
                  "    window: " +
                  std::to_string(window) + "\n    level: " + std::to_string(level) +
                  "\n    baseline:\n";
  for (size_t f = 0; f < 8; ++f) {
    std::vector<float> col;
    for (int64_t r = 0; r < train_data->rows; ++r) col.push_back(train_data->Row(r)[f]);
    std::sort(col.begin(), col.end());
    std::vector<double> edges;
    for (int q = 1; q < 10; ++q) {
      double e = col[col.size() * q / 10];
      if (edges.empty() || e > edges.back()) edges.push_back(e);
    }
    std::vector<double> counts(edges.size() + 1, 0);
    for (float v : col) {
      counts[std::upper_bound(edges.begin(), edges.end(), v) - edges.begin()] += 1;
    }
    s += "      " + std::string(train::kPumpFeatureNames[f]) + ":\n        edges: [";
    for (size_t i = 0; i < edges.size(); ++i) s += (i ? ", " : "") + std::to_string(edges[i]);
    s += "]\n        fractions: [";
    for (size_t i = 0; i < counts.size(); ++i) {
      s += (i ? ", " : "") + std::to_string(counts[i] / static_cast<double>(col.size()));
    }
    s += "]\n";
  }
  return s;
}

TEST_F(InsightTest, NoDriftRecordOnUnshiftedData) {
  ASSERT_NO_FATAL_FAILURE(Start("input: features\n" + DriftSection(500, 0.2)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset live,
                               train::MakePumpReadings({.rows = 3000, .seed = 2}));
  SendRows(live, 25);
  evaluator_->Drain();
  EXPECT_TRUE(Records(outbox::Kind::kDrift).empty());
  EXPECT_EQ(evaluator_->stats().rows_evaluated, 3000u);
}

TEST_F(InsightTest, DriftOnShiftedStreamIsDetectedWithinTheWindow) {
  constexpr int kWindow = 500;
  ASSERT_NO_FATAL_FAILURE(Start(DriftSection(kWindow, 0.2)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset before,
                               train::MakePumpReadings({.rows = 1000, .seed = 2}));
  SendRows(before, 20);
  evaluator_->Drain();
  ASSERT_TRUE(Records(outbox::Kind::kDrift).empty());

  OUTPOST_ASSERT_OK_AND_ASSIGN(
      train::Dataset after,
      train::MakePumpReadings(
          {.rows = 2000, .seed = 3, .shift_feature = "bearing_temp_c", .shift_sigmas = 2.0}));
  SendRows(after, 20);
  evaluator_->Drain();
  auto drifts = Records(outbox::Kind::kDrift);
  // One record for the shifted reading, raised once although PSI stays above the level.
  ASSERT_EQ(drifts.size(), 1u);
  json::Value d = drifts[0];
  EXPECT_EQ(AsString(d["feature"]), "bearing_temp_c");
  EXPECT_EQ(AsString(d["rule"]), "moved");
  EXPECT_GE(AsDouble(d["psi"]), 0.2);
  const int64_t rows_seen = AsInt(d["rows_seen"]);
  EXPECT_GT(rows_seen, 1000);
  EXPECT_LE(rows_seen, 1000 + kWindow);
  json::Value observed = d["observed"];
  json::Value baseline = d["baseline"];
  EXPECT_EQ(observed.size(), baseline.size());
}

TEST_F(InsightTest, AggregatesAddUpToTheRowsSentPerMinute) {
  ASSERT_NO_FATAL_FAILURE(Start(PumpFeatures() +
                                "rules: [{name: high, kind: anomaly, above: 0.9}]\n"
                                "aggregate: {edges: [0.5]}\n"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data, train::MakePumpReadings({.rows = 100}));
  auto rows_of = [&](int64_t from, int64_t n) {
    return std::span<const float>(data.features)
        .subspan(static_cast<size_t>(from * 8), static_cast<size_t>(n * 8));
  };
  // Minute one: 3 batches, 30 rows, 2 anomalies, 5 rows above 0.5.
  const int64_t minute_one = 1'700'000'000'000 - 20'000;
  std::vector<float> p10(10, 0.1f);
  std::vector<float> mixed = {0.95f, 0.6f, 0.7f, 0.96f, 0.8f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
  Send(MakeBatch(rows_of(0, 10), p10));
  Send(MakeBatch(rows_of(10, 10), mixed));
  Send(MakeBatch(rows_of(20, 10), p10));
  // Minute two: 2 batches, 13 rows.
  clock_.Advance(std::chrono::seconds(60));
  std::vector<float> p3(3, 0.99f);
  Send(MakeBatch(rows_of(30, 10), p10));
  Send(MakeBatch(rows_of(40, 3), p3));
  evaluator_->Drain();
  // The first minute was written when the second began; the second is still open.
  ASSERT_EQ(Records(outbox::Kind::kAggregate).size(), 1u);
  clock_.Advance(std::chrono::seconds(60));
  evaluator_->FlushDueAggregates();
  evaluator_->Drain();

  auto aggs = Records(outbox::Kind::kAggregate);
  ASSERT_EQ(aggs.size(), 2u);
  EXPECT_EQ(AsInt(aggs[0]["minute_ms"]), minute_one);
  EXPECT_EQ(AsInt(aggs[1]["minute_ms"]), minute_one + 60'000);
  EXPECT_EQ(AsInt(aggs[0]["batches"]), 3);
  EXPECT_EQ(AsInt(aggs[0]["rows"]), 30);
  EXPECT_EQ(AsInt(aggs[0]["anomalies"]), 2);
  EXPECT_EQ(AsInt(aggs[1]["batches"]), 2);
  EXPECT_EQ(AsInt(aggs[1]["rows"]), 13);
  EXPECT_EQ(AsInt(aggs[1]["anomalies"]), 3);
  json::Value counts = aggs[0]["score"]["counts"];
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(AsInt(counts.At(0)), 25);
  EXPECT_EQ(AsInt(counts.At(1)), 5);
  EXPECT_EQ(Records(outbox::Kind::kAnomaly).size(), 5u);

  // Per-feature statistics of the first minute's 30 rows.
  double sum = 0, lo = INFINITY, hi = -INFINITY;
  for (int64_t r = 0; r < 30; ++r) {
    double v = data.Row(r)[1];
    sum += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  json::Value vib = aggs[0]["features"]["vibration_mm_s"];
  EXPECT_EQ(AsInt(vib["count"]), 30);
  EXPECT_NEAR(AsDouble(vib["mean"]), sum / 30, 1e-9);
  EXPECT_EQ(AsDouble(vib["min"]), lo);
  EXPECT_EQ(AsDouble(vib["max"]), hi);
  EXPECT_EQ(Keys(aggs[0]["features"]).size(), 8u);
}

TEST_F(InsightTest, ShutdownWritesTheOpenAggregate) {
  ASSERT_NO_FATAL_FAILURE(Start(""));
  std::vector<float> readings(2 * 8, 1.0f);
  std::vector<float> probs = {0.3f, 0.4f};
  Send(MakeBatch(readings, probs));
  evaluator_.reset();
  auto aggs = Records(outbox::Kind::kAggregate);
  ASSERT_EQ(aggs.size(), 1u);
  EXPECT_EQ(AsInt(aggs[0]["rows"]), 2);
}

TEST_F(InsightTest, SamplingRespectsTheRateForASeed) {
  ASSERT_NO_FATAL_FAILURE(Start("rules: [{name: traffic, kind: sample, rate: 0.1, fields: [f1]}]",
                                {.appenders = 16, .seed = 42}));
  constexpr int kRows = 4000;
  std::vector<float> readings(kRows * 8, 2.0f);
  std::vector<float> probs(kRows, 0.3f);
  for (int i = 0; i < kRows; i += 100) {
    Send(MakeBatch(std::span<const float>(readings).subspan(i * 8, 800),
                   std::span<const float>(probs).subspan(i, 100)));
  }
  evaluator_->Drain();
  auto samples = Records(outbox::Kind::kSample);
  // Expected 400, standard deviation 19: within four of them.
  EXPECT_GE(samples.size(), 324u);
  EXPECT_LE(samples.size(), 476u);
  EXPECT_EQ(Keys(samples[0]["inputs"]), (std::set<std::string>{"f1"}));
  EXPECT_EQ(evaluator_->stats().rows_evaluated, static_cast<uint64_t>(kRows));
}

TEST_F(InsightTest, SameSeedSamplesTheSameRows) {
  auto sampled_rows = [&](uint64_t seed) {
    testing::TempDir dir;
    auto box = outbox::Outbox::Open(
        {.path = dir.File("o.db"), .site_id = "s", .node_id = "n", .clock = &clock_});
    EXPECT_TRUE(box.ok());
    auto rules = ParseInsightSection("rules: [{name: t, kind: sample, rate: 0.05}]");
    EXPECT_TRUE(rules.ok());
    std::set<int64_t> rows;
    {
      auto e = Evaluator::Create({.outbox = box->get(), .clock = &clock_, .seed = seed});
      EXPECT_TRUE(e.ok());
      std::vector<float> readings(500 * 8, 1.0f);
      std::vector<float> probs(500, 0.5f);
      Batch b = MakeBatch(readings, probs);
      (*e)->OnScored({.rules = *rules,
                      .model = "pump",
                      .version = 3,
                      .signature = &PumpSignature(),
                      .inputs = b.inputs,
                      .outputs = b.outputs});
    }
    auto records = (*box)->Query({.kind = outbox::Kind::kSample, .limit = 10000});
    EXPECT_TRUE(records.ok());
    json::Parser parser;
    for (const auto& r : *records) rows.insert(AsInt(parser.Parse(r.payload).value()["row"]));
    return rows;
  };
  std::set<int64_t> a = sampled_rows(7), b = sampled_rows(7), c = sampled_rows(8);
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST_F(InsightTest, FieldsAllCarriesEveryNamedColumn) {
  ASSERT_NO_FATAL_FAILURE(
      Start(PumpFeatures() + "rules: [{name: all_rows, kind: sample, rate: 1, fields: all}]\n"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data, train::MakePumpReadings({.rows = 2}));
  std::vector<float> probs = {0.1f, 0.2f};
  Send(MakeBatch(data.features, probs));
  evaluator_->Drain();
  auto samples = Records(outbox::Kind::kSample);
  ASSERT_EQ(samples.size(), 2u);
  std::set<std::string> want(train::kPumpFeatureNames.begin(), train::kPumpFeatureNames.end());
  EXPECT_EQ(Keys(samples[0]["inputs"]), want);
}

TEST_F(InsightTest, BatchThatDoesNotFitTheRulesIsCountedAndSkipped) {
  ASSERT_NO_FATAL_FAILURE(
      Start(PumpFeatures() + "rules: [{name: all_rows, kind: sample, rate: 1}]\n"));
  std::vector<float> readings(2 * 5, 1.0f);
  std::vector<float> probs = {0.1f, 0.2f};
  Send(MakeBatch(readings, probs, /*cols=*/5));
  evaluator_->Drain();
  EXPECT_EQ(evaluator_->stats().batches_invalid, 1u);
  EXPECT_EQ(evaluator_->stats().batches_evaluated, 0u);
  EXPECT_TRUE(Records(outbox::Kind::kSample).empty());
}

TEST_F(InsightTest, FullQueueDropsBatchesAndReportsThemAsAnEvent) {
  // One batch may wait, and each row's record must reach the disk before the next batch is
  // looked at: batches sent back to back overflow the queue.
  ASSERT_NO_FATAL_FAILURE(Start("rules: [{name: every, kind: sample, rate: 1}]",
                                {.queue_capacity = 1, .max_pending_records = 1, .appenders = 1}));
  std::vector<float> readings(8, 1.0f);
  std::vector<float> probs = {0.5f};
  constexpr uint64_t kBatches = 300;
  Batch b = MakeBatch(readings, probs);
  for (uint64_t i = 0; i < kBatches; ++i) Send(b);
  evaluator_->Drain();
  EvaluatorStats stats = evaluator_->stats();
  EXPECT_GT(stats.batches_dropped, 0u);
  EXPECT_EQ(stats.batches_dropped + stats.batches_evaluated, kBatches);
  EXPECT_EQ(stats.rows_dropped, stats.batches_dropped);
  uint64_t reported = 0;
  auto events = Records(outbox::Kind::kEvent);
  for (json::Value e : events) {
    EXPECT_EQ(AsString(e["event"]), "insight_dropped");
    reported += AsUint(e["batches"]);
  }
  EXPECT_EQ(reported, stats.batches_dropped);
  EXPECT_EQ(Records(outbox::Kind::kSample).size(), stats.batches_evaluated);
}

TEST_F(InsightTest, ReconstructionErrorOfAnAutoencoderFlagsTheRowItCannotRebuild) {
  static const engine::Signature kSig{
      .inputs = {{.name = "x", .type = DataType::kFp64, .shape = {-1, 2}}},
      .outputs = {{.name = "x_hat", .type = DataType::kFp64, .shape = {-1, 2}}}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto rules, ParseInsightSection("rules: [{name: odd, kind: anomaly, "
                                      "score: reconstruction_error, above: 1.0, fields: [f0]}]"));
  OUTPOST_ASSERT_OK(CheckSignature(*rules, kSig));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto e,
                               Evaluator::Create({.outbox = outbox_.get(), .clock = &clock_}));
  std::vector<Tensor> in, out;
  in.emplace_back(DataType::kFp64, engine::Shape{2, 2});
  out.emplace_back(DataType::kFp64, engine::Shape{2, 2});
  std::vector<double> x = {1, 2, 3, 4}, x_hat = {1.1, 2.1, 0, 4};  // errors 0.01 and 4.5
  std::copy(x.begin(), x.end(), in[0].values<double>().begin());
  std::copy(x_hat.begin(), x_hat.end(), out[0].values<double>().begin());
  e->OnScored({.rules = rules,
               .model = "pump",
               .version = 3,
               .signature = &kSig,
               .inputs = in,
               .outputs = out});
  e->Drain();
  auto anomalies = Records(outbox::Kind::kAnomaly);
  ASSERT_EQ(anomalies.size(), 1u);
  EXPECT_EQ(AsInt(anomalies[0]["row"]), 1);
  EXPECT_EQ(AsString(anomalies[0]["score"]), "reconstruction_error");
  EXPECT_DOUBLE_EQ(AsDouble(anomalies[0]["score_value"]), 4.5);
  EXPECT_EQ(AsDouble(anomalies[0]["inputs"]["f0"]), 3.0);
}

TEST_F(InsightTest, ReloadedRulesStartAFreshAggregate) {
  ASSERT_NO_FATAL_FAILURE(Start(""));
  std::vector<float> readings(3 * 8, 1.0f);
  std::vector<float> probs = {0.3f, 0.4f, 0.5f};
  Send(MakeBatch(readings, probs));
  evaluator_->Drain();
  EXPECT_TRUE(Records(outbox::Kind::kAggregate).empty());
  // The model was reloaded with a new config: same name and version, new RuleSet.
  OUTPOST_ASSERT_OK_AND_ASSIGN(rules_, ParseInsightSection(""));
  Send(MakeBatch(std::span<const float>(readings).subspan(0, 8),
                 std::span<const float>(probs).subspan(0, 1)));
  evaluator_->Drain();
  auto aggs = Records(outbox::Kind::kAggregate);
  ASSERT_EQ(aggs.size(), 1u);
  EXPECT_EQ(AsInt(aggs[0]["rows"]), 3);
  evaluator_.reset();
  aggs = Records(outbox::Kind::kAggregate);
  ASSERT_EQ(aggs.size(), 2u);
  EXPECT_EQ(AsInt(aggs[1]["rows"]), 1);
}

// A real XGBoost model scores pump readings; its config.yaml's rules see its own output.
TEST_F(InsightTest, RealModelScoresFeedTheRules) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset train_data,
                               train::MakePumpReadings({.rows = 2000, .seed = 11}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto trained, train::TrainXGBoost(train_data, {.rounds = 10}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, trained->Serialize(train::ModelFormat::kJson));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::unique_ptr<engine::Model> model,
                               engine::LoadXGBoostModelFromBytes(bytes));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto rules, ParseInsightConfig("backend: xgboost\n"
                                                              "insight:\n  " +
                                                              PumpFeatures() +
                                                              "  rules:\n"
                                                              "    - name: likely_fault\n"
                                                              "      kind: anomaly\n"
                                                              "      above: 0.5\n"
                                                              "      fields: [flow_m3h]\n"));
  OUTPOST_ASSERT_OK(CheckSignature(*rules, model->signature()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto e,
                               Evaluator::Create({.outbox = outbox_.get(), .clock = &clock_}));

  OUTPOST_ASSERT_OK_AND_ASSIGN(
      train::Dataset live, train::MakePumpReadings({.rows = 400, .seed = 12, .fault_rate = 0.3}));
  std::vector<Tensor> inputs;
  inputs.emplace_back(DataType::kFp32, engine::Shape{live.rows, 8});
  std::copy(live.features.begin(), live.features.end(), inputs[0].values<float>().begin());
  std::vector<Tensor> outputs;
  OUTPOST_ASSERT_OK(model->Run(inputs, outputs));
  e->OnScored({.rules = rules,
               .model = "pump",
               .version = 3,
               .request_id = "real",
               .signature = &model->signature(),
               .inputs = inputs,
               .outputs = outputs});
  e.reset();  // evaluates, writes the open aggregate, stops

  std::set<int64_t> expected;
  auto p = outputs[0].values<float>();
  for (size_t r = 0; r < p.size(); ++r) {
    if (p[r] > 0.5f) expected.insert(static_cast<int64_t>(r));
  }
  ASSERT_FALSE(expected.empty());
  ASSERT_LT(expected.size(), p.size());
  std::set<int64_t> got;
  for (json::Value a : Records(outbox::Kind::kAnomaly)) {
    got.insert(AsInt(a["row"]));
    EXPECT_EQ(Keys(a["inputs"]), (std::set<std::string>{"flow_m3h"}));
  }
  EXPECT_EQ(got, expected);
  auto aggs = Records(outbox::Kind::kAggregate);
  ASSERT_EQ(aggs.size(), 1u);
  EXPECT_EQ(AsInt(aggs[0]["rows"]), live.rows);
  EXPECT_EQ(AsUint(aggs[0]["anomalies"]), expected.size());
}

TEST(Evaluator, CreateRefusesBadOptions) {
  EXPECT_EQ(Evaluator::Create({}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace outpost::insight
