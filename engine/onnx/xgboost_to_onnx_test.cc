// The XGBoost -> ONNX converter: models trained by XGBoost itself, converted, scored by the
// ONNX engine, and compared with XGBoost's own predictions on rows that include missing
// values and values exactly at split thresholds.
#include "engine/onnx/xgboost_to_onnx.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "base/testing/test_util.h"
#include "engine/onnx/onnx_model.h"
#include "train/xgboost_trainer.h"

namespace outpost::engine::onnx {
namespace {

// Integer-valued features (so split thresholds fall exactly on data values), every 7th
// value missing; labels from a fixed rule.
train::Dataset Data(int64_t rows, int classes, uint32_t seed) {
  train::Dataset d;
  d.feature_names = {"a", "b", "c", "d", "e"};
  d.rows = rows;
  uint32_t s = seed;
  auto next = [&s] {
    s = s * 1664525u + 1013904223u;
    return s >> 8;
  };
  for (int64_t r = 0; r < rows; ++r) {
    float row[5];
    for (float& v : row) {
      const uint32_t u = next();
      v = (u % 7 == 0) ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(u % 10);
    }
    d.features.insert(d.features.end(), row, row + 5);
    const float a = std::isnan(row[0]) ? 5 : row[0];
    const float b = std::isnan(row[1]) ? 2 : row[1];
    const float score = a + 0.5f * b - (row[2] > 4 ? 3 : 0) + static_cast<float>(next() % 3);
    if (classes == 0) {
      d.labels.push_back(score);
    } else if (classes == 2) {
      d.labels.push_back(score > 6 ? 1 : 0);
    } else {
      d.labels.push_back(static_cast<float>(((static_cast<int>(score) % classes) + classes) % classes));
    }
  }
  return d;
}

struct Case {
  std::string objective;
  int classes;  // 0 = regression
  std::string booster;
};

class XGBoostToOnnx : public ::testing::TestWithParam<Case> {};

TEST_P(XGBoostToOnnx, ConvertedModelAgreesWithXGBoost) {
  const Case& c = GetParam();
  train::Dataset data = Data(400, c.classes, 7);
  train::TrainOptions opts;
  opts.params["objective"] = c.objective;
  opts.params["booster"] = c.booster;
  opts.params["max_depth"] = "5";
  if (c.classes > 2) opts.params["num_class"] = std::to_string(c.classes);
  if (c.objective == "count:poisson") {
    for (float& l : data.labels) l = std::fabs(l);
  }
  if (c.booster == "dart") {
    opts.params["rate_drop"] = "0.3";
    opts.params["one_drop"] = "1";
  }
  opts.rounds = 30;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto trained, train::TrainXGBoost(data, opts));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string json, trained->Serialize(train::ModelFormat::kJson));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string onnx_bytes, ConvertXGBoostToOnnx(json));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto model,
      LoadOnnxModelFromBytes(std::as_bytes(std::span<const char>(onnx_bytes.data(), onnx_bytes.size()))));

  train::Dataset test = Data(1000, c.classes, 99);
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Predictions want,
                               train::ReferencePredict(json, test.features, test.rows, 5));
  std::vector<Tensor> in;
  in.emplace_back(DataType::kFp32, Shape{test.rows, 5});
  std::copy(test.features.begin(), test.features.end(), in[0].values<float>().begin());
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), want.shape);
  ASSERT_EQ(out[0].element_count(), static_cast<int64_t>(want.values.size()));
  double worst = 0;
  for (size_t i = 0; i < want.values.size(); ++i) {
    const double got = out[0].values<float>()[i];
    const double diff = std::fabs(got - want.values[i]) / std::max(1.0, std::fabs(static_cast<double>(want.values[i])));
    worst = std::max(worst, diff);
  }
  EXPECT_LE(worst, 1e-5) << c.objective;
}

INSTANTIATE_TEST_SUITE_P(
    Objectives, XGBoostToOnnx,
    ::testing::Values(Case{"binary:logistic", 2, "gbtree"}, Case{"binary:logitraw", 2, "gbtree"},
                      Case{"reg:squarederror", 0, "gbtree"}, Case{"reg:logistic", 2, "gbtree"},
                      Case{"count:poisson", 0, "gbtree"}, Case{"multi:softprob", 3, "gbtree"},
                      Case{"multi:softmax", 4, "gbtree"}, Case{"binary:logistic", 2, "dart"}),
    [](const ::testing::TestParamInfo<Case>& param) {
      std::string name = param.param.objective + "_" + param.param.booster;
      for (char& ch : name) {
        if (ch == ':') ch = '_';
      }
      return name;
    });

TEST(XGBoostToOnnxErrors, UbjsonAndMalformedDocumentsAreRefused) {
  train::Dataset data = Data(100, 2, 1);
  train::TrainOptions opts;
  opts.rounds = 2;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto trained, train::TrainXGBoost(data, opts));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ubj, trained->Serialize(train::ModelFormat::kUbjson));
  EXPECT_EQ(ConvertXGBoostToOnnx(ubj).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(ConvertXGBoostToOnnx("{\"learner\": 1}").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(ConvertXGBoostToOnnx("").ok());
}

}  // namespace
}  // namespace outpost::engine::onnx
