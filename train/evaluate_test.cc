#include "train/evaluate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <utility>
#include <vector>

#include "base/testing/test_util.h"

namespace outpost::train {
namespace {

TEST(EvaluateBinary, KnownValues) {
  // Positives at 0.9 and 0.4, negatives at 0.6 and 0.1: 3 of 4 pairs ordered right.
  std::vector<float> p = {0.9f, 0.4f, 0.6f, 0.1f};
  std::vector<float> y = {1, 1, 0, 0};
  OUTPOST_ASSERT_OK_AND_ASSIGN(BinaryMetrics m, EvaluateBinary(p, y));
  EXPECT_EQ(m.rows, 4);
  EXPECT_EQ(m.positives, 2);
  EXPECT_DOUBLE_EQ(*m.auc, 0.75);
  EXPECT_DOUBLE_EQ(*m.accuracy, 0.5);
  const double expected = -(std::log(0.9f) + std::log(0.4f) + std::log(1 - 0.6f) +
                            std::log(1 - 0.1f)) / 4;
  EXPECT_NEAR(*m.logloss, expected, 1e-6);
}

TEST(EvaluateBinary, TiesCountOneHalfAndOneClassHasNoAuc) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(BinaryMetrics tie, EvaluateBinary(std::vector<float>{0.5f, 0.5f},
                                                                 std::vector<float>{1, 0}));
  EXPECT_DOUBLE_EQ(*tie.auc, 0.5);
  OUTPOST_ASSERT_OK_AND_ASSIGN(BinaryMetrics one, EvaluateBinary(std::vector<float>{0.2f, 0.7f},
                                                                 std::vector<float>{1, 1}));
  EXPECT_FALSE(one.auc.has_value());
  EXPECT_DOUBLE_EQ(*one.accuracy, 0.5);
}

TEST(EvaluateBinary, RocCurvePointsPerThresholdAndTheReliabilityTable) {
  // Thresholds 0.9, 0.6, 0.4, 0.1: TP/FP move (1,0), (1,1), (2,1), (2,2).
  std::vector<float> p = {0.9f, 0.4f, 0.6f, 0.1f};
  std::vector<float> y = {1, 1, 0, 0};
  OUTPOST_ASSERT_OK_AND_ASSIGN(BinaryMetrics m, EvaluateBinary(p, y));
  const std::vector<std::pair<double, double>> roc = {
      {0, 0}, {0, 0.5}, {0.5, 0.5}, {0.5, 1}, {1, 1}};
  EXPECT_EQ(m.roc, roc);
  // Bins [0.0,0.1) is empty ... 0.1 -> bin 1, 0.4 -> 4, 0.6 -> 6, 0.9 -> 9.
  ASSERT_EQ(m.calibration.size(), 4u);
  EXPECT_NEAR(m.calibration[0].mean_p, 0.1, 1e-4);
  EXPECT_EQ(m.calibration[0].rate, 0);
  EXPECT_EQ(m.calibration[3].rate, 1);
  EXPECT_EQ(m.calibration[3].rows, 1);

  // Tied scores are one threshold; one class has no curve but still a table.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      BinaryMetrics tie, EvaluateBinary(std::vector<float>{0.5f, 0.5f}, std::vector<float>{1, 0}));
  EXPECT_EQ(tie.roc, (std::vector<std::pair<double, double>>{{0, 0}, {1, 1}}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      BinaryMetrics one, EvaluateBinary(std::vector<float>{0.2f, 1.0f}, std::vector<float>{1, 1}));
  EXPECT_TRUE(one.roc.empty());
  ASSERT_EQ(one.calibration.size(), 2u);
  EXPECT_EQ(one.calibration[1].mean_p, 1.0);  // 1.0 lies in the last bin

  // Many distinct scores: thinned to at most 101 points, ending at (1,1).
  std::vector<float> many, labels;
  for (int i = 0; i < 5000; ++i) {
    many.push_back(static_cast<float>(i) / 5000.0f);
    labels.push_back(i % 3 == 0 ? 1.0f : 0.0f);
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(BinaryMetrics big, EvaluateBinary(many, labels));
  EXPECT_LE(big.roc.size(), kMaxRocPoints);
  EXPECT_GE(big.roc.size(), 50u);
  EXPECT_EQ(big.roc.front(), (std::pair<double, double>{0, 0}));
  EXPECT_EQ(big.roc.back(), (std::pair<double, double>{1, 1}));
  EXPECT_EQ(big.calibration.size(), 10u);
}

TEST(EvaluateBinary, RefusesBadInput) {
  EXPECT_FALSE(EvaluateBinary(std::vector<float>{0.5f}, std::vector<float>{}).ok());
  EXPECT_FALSE(EvaluateBinary(std::vector<float>{0.5f}, std::vector<float>{2}).ok());
  EXPECT_FALSE(EvaluateBinary(std::vector<float>{NAN}, std::vector<float>{1}).ok());
  EXPECT_FALSE(EvaluateBinary(std::vector<float>{1.5f}, std::vector<float>{1}).ok());
}

TEST(Decide, MarginAndDirectionPerMetric) {
  BinaryMetrics ours{.rows = 10, .positives = 5, .auc = 0.90, .accuracy = 0.8, .logloss = 0.30};
  BinaryMetrics theirs{.rows = 10, .positives = 5, .auc = 0.85, .accuracy = 0.8, .logloss = 0.35};
  EXPECT_TRUE(Decide(ours, theirs, Metric::kAuc, 0.04).beats);
  EXPECT_FALSE(Decide(ours, theirs, Metric::kAuc, 0.06).beats);
  EXPECT_FALSE(Decide(ours, theirs, Metric::kAccuracy, 0.01).beats);
  EXPECT_TRUE(Decide(ours, theirs, Metric::kLogloss, 0.04).beats);
  EXPECT_FALSE(Decide(theirs, ours, Metric::kLogloss, 0.0).beats);
  EXPECT_TRUE(Decide(ours, std::nullopt, Metric::kAuc, 0.5).beats);
  BinaryMetrics no_auc = ours;
  no_auc.auc.reset();
  EXPECT_FALSE(Decide(no_auc, theirs, Metric::kAuc, 0.0).beats);
  EXPECT_FALSE(Decide(ours, no_auc, Metric::kAuc, 0.0).beats);
  EXPECT_EQ(Decide(ours, theirs, Metric::kAuc, 0.04).reason,
            "challenger auc 0.9000 beats champion 0.8500 by 0.0500 >= 0.0400");
}

}  // namespace
}  // namespace outpost::train
