// The retraining job on synthetic pumps: the sites' data carries a shift that the original
// set lacks, so a challenger trained with the sites' labels beats the champion on the sites'
// holdout; without the shift it does not beat it by the margin.
#include "train/retrain.h"

#include <gtest/gtest.h>

#include "base/file.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/testing/test_util.h"
#include "train/synthetic.h"
#include "train/testing/edge_payloads.h"

namespace outpost::train {
namespace {

// Edge records for `data`: per row a hard example (node n1) carrying every reading, and a
// feedback record (node n2) with the row's label, as an edge node and an operator send them.
std::vector<EdgeRecord> EdgeRecordsFor(const Dataset& data, const std::string& site) {
  std::vector<EdgeRecord> out;
  for (int64_t r = 0; r < data.rows; ++r) {
    const std::string id = site + "-req-" + std::to_string(r);
    const std::string row = fixtures::HardExamplePayload(data, r, id, 1000 + r, "unsure");
    out.push_back({.kind = "hard_example", .site_id = site, .node_id = "n1", .stream = "pump",
                   .seq = static_cast<uint64_t>(r + 1), .created_ms = 1000 + r, .payload = row});
    const std::string feedback =
        fixtures::FeedbackPayload(id, data.labels[static_cast<size_t>(r)] ? "1" : "0");
    out.push_back({.kind = "feedback", .site_id = site, .node_id = "n2", .stream = "pump",
                   .seq = static_cast<uint64_t>(r + 1), .created_ms = 5000 + r,
                   .payload = feedback});
  }
  return out;
}

TrainConfig Config() {
  TrainConfig c;
  c.features.assign(kPumpFeatureNames.begin(), kPumpFeatureNames.end());
  c.original_synthetic = PumpDataOptions{.rows = 3000, .seed = 1, .fault_rate = 0.1};
  c.xgboost.rounds = 30;
  c.holdout_fraction = 0.4;
  c.margin = 0.02;
  return c;
}

struct Outcome {
  RetrainResult result;
  double champion_auc = 0;
};

Outcome RunRetrain(const PumpDataOptions& edge_options) {
  TrainConfig config = Config();
  auto original = LoadOriginalSet(config);
  EXPECT_TRUE(original.ok());
  auto champion = TrainXGBoost(original->data, config.xgboost);
  EXPECT_TRUE(champion.ok());
  auto champion_bytes = (*champion)->Serialize(ModelFormat::kJson);
  auto edge = MakePumpReadings(edge_options);
  EXPECT_TRUE(edge.ok());
  std::vector<EdgeRecord> records = EdgeRecordsFor(*edge, "plant-7");
  RetrainInputs inputs{.model = "pump", .version = 2, .original = std::move(original).value(),
                       .records = records,
                       .champion = Champion{.version = 1, .model_bytes = *champion_bytes}};
  auto result = Retrain(inputs, config, LocalTrainer());
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  Outcome out{.result = std::move(result).value()};
  out.champion_auc = out.result.champion->auc.value_or(0);
  return out;
}

TEST(Retrain, ChallengerTrainedOnShiftedSiteDataBeatsTheChampion) {
  // The site's bearing temperature sensor reads 2.5 sigmas hot: the champion never saw such
  // readings and calls many healthy pumps faulty.
  Outcome o = RunRetrain({.rows = 2500, .seed = 77, .fault_rate = 0.1,
                   .shift_feature = "bearing_temp_c", .shift_sigmas = 2.5});
  const RetrainResult& r = o.result;
  EXPECT_TRUE(r.candidate) << r.reason;
  EXPECT_GT(*r.challenger.auc, o.champion_auc + 0.02) << r.reason;
  EXPECT_EQ(r.edge.counts.labelled, 2500u);
  EXPECT_EQ(r.edge.train.rows + r.edge.holdout.rows, 2500);
  EXPECT_EQ(r.training_rows, 3000 + r.edge.train.rows);
  EXPECT_NE(r.metrics_json.find("\"decision\":\"candidate\""), std::string::npos);
  // Lineage: both kinds' ranges over all 2500 records of each node.
  ASSERT_EQ(r.edge.ranges.size(), 2u);
  EXPECT_EQ(r.edge.ranges[0], (RecordRange{"plant-7", "n1", "pump", "hard_example", 1, 2500,
                                           2500}));
  EXPECT_EQ(r.edge.ranges[1], (RecordRange{"plant-7", "n2", "pump", "feedback", 1, 2500,
                                           2500}));
  json::Parser parser;
  OUTPOST_ASSERT_OK_AND_ASSIGN(json::Value lineage, parser.Parse(r.lineage_json));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string_view digest,
                               lineage["training_set"]["sha256"].GetString());
  EXPECT_EQ(digest, r.training_set_sha256);
  EXPECT_EQ(digest.size(), 64u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(int64_t parent, lineage["parent_version"].GetInt64());
  EXPECT_EQ(parent, 1);

  testing::TempDir dir;
  OUTPOST_ASSERT_OK(WriteRetrainOutput(r, dir.File("out")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string model, ReadFile(dir.File("out/model.json")));
  EXPECT_EQ(model, r.model_json);
  EXPECT_TRUE(PathExists(dir.File("out/metrics.json")));
  EXPECT_TRUE(PathExists(dir.File("out/lineage.json")));
}

TEST(Retrain, WithoutAShiftTheChallengerDoesNotBeatTheChampionByTheMargin) {
  Outcome o = RunRetrain({.rows = 2500, .seed = 77, .fault_rate = 0.1});
  EXPECT_FALSE(o.result.candidate) << o.result.reason;
  EXPECT_NE(o.result.metrics_json.find("\"decision\":\"rejected\""), std::string::npos);
}

TEST(Retrain, NoHoldoutRowsIsAnError) {
  TrainConfig config = Config();
  OUTPOST_ASSERT_OK_AND_ASSIGN(OriginalSet original, LoadOriginalSet(config));
  RetrainInputs inputs{.model = "pump", .original = std::move(original)};
  Result<RetrainResult> r = Retrain(inputs, config, LocalTrainer());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace outpost::train
