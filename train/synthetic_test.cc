#include "train/synthetic.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>

#include "base/testing/test_util.h"

namespace outpost::train {
namespace {

double FaultShare(const Dataset& d) {
  return std::accumulate(d.labels.begin(), d.labels.end(), 0.0) / static_cast<double>(d.rows);
}

double ColumnMean(const Dataset& d, int col) {
  double sum = 0;
  int64_t n = 0;
  for (int64_t r = 0; r < d.rows; ++r) {
    float v = d.Row(r)[static_cast<size_t>(col)];
    if (!std::isnan(v)) {
      sum += v;
      ++n;
    }
  }
  return sum / static_cast<double>(n);
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(PumpReadings, HaveTheDocumentedColumnsAndSizes) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset d, MakePumpReadings({.rows = 100}));
  OUTPOST_ASSERT_OK(CheckDataset(d, /*need_labels=*/true));
  ASSERT_EQ(d.cols(), 8);
  EXPECT_EQ(d.feature_names[0], "bearing_temp_c");
  EXPECT_EQ(d.feature_names[7], "hours_since_service");
  EXPECT_EQ(d.rows, 100);
  for (float label : d.labels) EXPECT_TRUE(label == 0.0f || label == 1.0f);
  for (float v : d.features) EXPECT_TRUE(std::isfinite(v));
}

TEST(PumpReadings, AreDeterministicForASeedAndDifferAcrossSeeds) {
  PumpDataOptions options{.rows = 2000, .seed = 42, .fault_rate = 0.1, .missing_rate = 0.05};
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset a, MakePumpReadings(options));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset b, MakePumpReadings(options));
  EXPECT_TRUE(SameBits(a.features, b.features));
  EXPECT_TRUE(SameBits(a.labels, b.labels));
  options.seed = 43;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset c, MakePumpReadings(options));
  EXPECT_FALSE(SameBits(a.features, c.features));
}

TEST(PumpReadings, ReadingsDoNotDependOnFaultRateOrMissingRate) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset a, MakePumpReadings({.rows = 500, .fault_rate = 0.05}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset b, MakePumpReadings({.rows = 500, .fault_rate = 0.5}));
  EXPECT_TRUE(SameBits(a.features, b.features));
  EXPECT_FALSE(SameBits(a.labels, b.labels));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset c, MakePumpReadings({.rows = 500, .missing_rate = 0.3}));
  for (size_t i = 0; i < a.features.size(); ++i) {
    if (!std::isnan(c.features[i])) {
      ASSERT_EQ(a.features[i], c.features[i]) << i;
    }
  }
  // A prefix of a longer data set is the shorter one.
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset longer, MakePumpReadings({.rows = 800, .fault_rate = 0.05}));
  EXPECT_EQ(std::memcmp(longer.features.data(), a.features.data(), a.features.size() * 4), 0);
}

TEST(PumpReadings, FaultShareIsRoughlyTheRequestedRate) {
  for (double rate : {0.02, 0.1, 0.3}) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset d,
                                 MakePumpReadings({.rows = 20000, .seed = 7, .fault_rate = rate}));
    EXPECT_NEAR(FaultShare(d), rate, 0.15 * rate + 0.005) << rate;
  }
}

TEST(PumpReadings, FaultsDependOnTheReadings) {
  // Faulty pumps run hotter and shake more than healthy ones.
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset d, MakePumpReadings({.rows = 20000, .fault_rate = 0.1}));
  double hot_faulty = 0, hot_ok = 0, vib_faulty = 0, vib_ok = 0;
  int64_t faulty = 0;
  for (int64_t r = 0; r < d.rows; ++r) {
    auto row = d.Row(r);
    double excess = row[0] - row[5];
    if (d.labels[static_cast<size_t>(r)] == 1.0f) {
      hot_faulty += excess;
      vib_faulty += row[1];
      ++faulty;
    } else {
      hot_ok += excess;
      vib_ok += row[1];
    }
  }
  int64_t ok = d.rows - faulty;
  EXPECT_GT(hot_faulty / static_cast<double>(faulty), hot_ok / static_cast<double>(ok) + 3.0);
  EXPECT_GT(vib_faulty / static_cast<double>(faulty), vib_ok / static_cast<double>(ok) * 1.2);
}

TEST(PumpReadings, ShiftMovesOneFeatureAndFaultsFollowTheLaw) {
  PumpDataOptions base{.rows = 20000, .seed = 3, .fault_rate = 0.05};
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset before, MakePumpReadings(base));
  PumpDataOptions drifted = base;
  drifted.shift_feature = "bearing_temp_c";
  drifted.shift_sigmas = 2.0;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset after, MakePumpReadings(drifted));
  EXPECT_NEAR(ColumnMean(after, 0) - ColumnMean(before, 0), 2.0 * kPumpFeatureSpread[0], 1e-3);
  for (int col = 1; col < 8; ++col) {
    EXPECT_EQ(ColumnMean(after, col), ColumnMean(before, col)) << col;
  }
  // Hotter bearings fail more often.
  EXPECT_GT(FaultShare(after), 1.5 * FaultShare(before));
}

TEST(PumpReadings, MissingShareIsRoughlyTheRequestedRate) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset d, MakePumpReadings({.rows = 5000, .missing_rate = 0.2}));
  int64_t blank = 0;
  for (float v : d.features) blank += std::isnan(v) ? 1 : 0;
  EXPECT_NEAR(static_cast<double>(blank) / static_cast<double>(d.features.size()), 0.2, 0.01);
}

TEST(PumpReadings, RejectsOptionsOutOfRange) {
  EXPECT_EQ(MakePumpReadings({.rows = 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MakePumpReadings({.fault_rate = 0.0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MakePumpReadings({.fault_rate = 1.0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MakePumpReadings({.missing_rate = 1.0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MakePumpReadings({.shift_feature = "oil_level"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MakePumpReadings({.shift_feature = "speed_rpm", .shift_sigmas = NAN}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Dataset, CheckDatasetRejectsInconsistentSizes) {
  Dataset d;
  EXPECT_EQ(CheckDataset(d, false).code(), StatusCode::kInvalidArgument);
  d.feature_names = {"a", "b"};
  d.rows = 2;
  d.features = {1, 2, 3};
  EXPECT_EQ(CheckDataset(d, false).code(), StatusCode::kInvalidArgument);
  d.features = {1, 2, 3, 4};
  OUTPOST_EXPECT_OK(CheckDataset(d, false));
  EXPECT_EQ(CheckDataset(d, true).code(), StatusCode::kInvalidArgument);
  d.labels = {1};
  EXPECT_EQ(CheckDataset(d, true).code(), StatusCode::kInvalidArgument);
  d.labels = {1, 0};
  OUTPOST_EXPECT_OK(CheckDataset(d, true));
}

}  // namespace
}  // namespace outpost::train
