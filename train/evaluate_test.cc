#include "train/evaluate.h"

#include <gtest/gtest.h>

#include <cmath>

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
