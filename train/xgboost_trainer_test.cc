#include "train/xgboost_trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "base/file.h"
#include "base/testing/test_util.h"
#include "train/synthetic.h"

namespace outpost::train {
namespace {

Dataset Pumps(int64_t rows, uint64_t seed) {
  auto d = MakePumpReadings({.rows = rows, .seed = seed, .fault_rate = 0.2});
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return std::move(d).value();
}

// Area under the ROC curve of scores `p` for binary labels of `d` (ties are rare enough
// with continuous scores to be ignored here).
double Auc(const Predictions& p, const Dataset& d) {
  std::vector<size_t> order(p.values.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return p.values[a] < p.values[b]; });
  double rank_sum = 0, positives = 0;
  for (size_t r = 0; r < order.size(); ++r) {
    if (d.labels[order[r]] == 1.0f) {
      rank_sum += static_cast<double>(r + 1);
      positives += 1;
    }
  }
  double negatives = static_cast<double>(order.size()) - positives;
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

TEST(XGBoostTrainer, LearnsThePumpFaultsBetterThanTheBaseRate) {
  Dataset train = Pumps(4000, 1);
  Dataset test = Pumps(2000, 2);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, TrainXGBoost(train, {}));
  EXPECT_EQ(model->num_features(), 8);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, model->Serialize(ModelFormat::kJson));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Predictions p,
                               ReferencePredict(bytes, test.features, test.rows, test.cols()));
  EXPECT_EQ(p.shape, (std::vector<int64_t>{test.rows}));
  // Chance is 0.5; the fault law leaves room for about 0.9 with this much data.
  EXPECT_GT(Auc(p, test), 0.85);
}

TEST(XGBoostTrainer, TrainingIsReproducible) {
  Dataset d = Pumps(1000, 4);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto a, TrainXGBoost(d, {.rounds = 10}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto b, TrainXGBoost(d, {.rounds = 10}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ja, a->Serialize(ModelFormat::kJson));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string jb, b->Serialize(ModelFormat::kJson));
  EXPECT_EQ(ja, jb);
}

TEST(XGBoostTrainer, JsonAndUbjsonFilesScoreIdentically) {
  Dataset d = Pumps(800, 5);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, TrainXGBoost(d, {.rounds = 10}));
  testing::TempDir dir;
  OUTPOST_ASSERT_OK(model->Save(dir.File("model.json"), ModelFormat::kJson));
  OUTPOST_ASSERT_OK(model->Save(dir.File("model.ubj"), ModelFormat::kUbjson));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string json, ReadFile(dir.File("model.json")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ubj, ReadFile(dir.File("model.ubj")));
  EXPECT_EQ(json.substr(0, 2), "{\"");
  EXPECT_EQ(ubj.substr(0, 2), "{L");
  OUTPOST_ASSERT_OK_AND_ASSIGN(Predictions pj, ReferencePredict(json, d.features, d.rows, 8));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Predictions pu, ReferencePredict(ubj, d.features, d.rows, 8));
  EXPECT_EQ(pj.values, pu.values);
}

TEST(XGBoostTrainer, MarginIsTheLogitOfTheProbability) {
  Dataset d = Pumps(500, 6);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, TrainXGBoost(d, {.rounds = 5}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, model->Serialize(ModelFormat::kUbjson));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Predictions p, ReferencePredict(bytes, d.features, d.rows, 8));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      Predictions m, ReferencePredict(bytes, d.features, d.rows, 8, PredictKind::kMargin));
  ASSERT_EQ(p.values.size(), m.values.size());
  for (size_t i = 0; i < p.values.size(); ++i) {
    EXPECT_NEAR(1.0 / (1.0 + std::exp(-m.values[i])), p.values[i], 1e-6);
  }
}

TEST(XGBoostTrainer, MultiClassGivesOneColumnPerClass) {
  Dataset d = Pumps(600, 8);
  for (int64_t r = 0; r < d.rows; ++r) d.labels[static_cast<size_t>(r)] = static_cast<float>(r % 3);
  TrainOptions options{.rounds = 3};
  options.params["objective"] = "multi:softprob";
  options.params["num_class"] = "3";
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, TrainXGBoost(d, options));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, model->Serialize(ModelFormat::kJson));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Predictions p, ReferencePredict(bytes, d.features, d.rows, 8));
  EXPECT_EQ(p.shape, (std::vector<int64_t>{d.rows, 3}));
}

TEST(XGBoostTrainer, RejectsBadInputWithXGBoostsReason) {
  Dataset d = Pumps(100, 9);
  EXPECT_EQ(TrainXGBoost(d, {.rounds = 0}).status().code(), StatusCode::kInvalidArgument);
  Dataset unlabelled = d;
  unlabelled.labels.clear();
  EXPECT_EQ(TrainXGBoost(unlabelled, {}).status().code(), StatusCode::kInvalidArgument);
  Dataset bad_labels = d;
  bad_labels.labels[0] = 2.0f;  // not a binary label
  Status s = TrainXGBoost(bad_labels, {.rounds = 1}).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("label"), std::string_view::npos) << s.message();
  TrainOptions unknown_objective;
  unknown_objective.params["objective"] = "binary:nonsense";
  EXPECT_EQ(TrainXGBoost(d, unknown_objective).status().code(), StatusCode::kInvalidArgument);
}

TEST(XGBoostTrainer, ReferencePredictRejectsMismatchedInput) {
  Dataset d = Pumps(100, 10);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, TrainXGBoost(d, {.rounds = 2}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, model->Serialize(ModelFormat::kJson));
  std::vector<float> seven(7 * 2, 1.0f);
  EXPECT_EQ(ReferencePredict(bytes, seven, 2, 7).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReferencePredict(bytes, seven, 3, 8).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReferencePredict("{\"nonsense\"", seven, 2, 7).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(XGBoostTrainer, ModelFileNamesAreWhatTheRepositoryExpects) {
  EXPECT_EQ(ModelFileName(ModelFormat::kJson), "model.json");
  EXPECT_EQ(ModelFileName(ModelFormat::kUbjson), "model.ubj");
}

}  // namespace
}  // namespace outpost::train
