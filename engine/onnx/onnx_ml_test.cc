// Table-style tests of the ONNX-ML kernels: inputs, attributes, expected outputs computed by
// hand from the operator definitions (and ONNX Runtime's rules where the definition is loose).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "base/testing/test_util.h"
#include "engine/onnx/onnx_import.h"
#include "engine/onnx/onnx_model.h"
#include "engine/onnx/test_models.h"
#include "engine/onnx/counting_allocator.h"

namespace outpost::engine::onnx {
namespace {

using testing::FloatAttr;
using testing::FloatsAttr;
using testing::FloatTensor;
using testing::GraphBuilder;
using testing::IntAttr;
using testing::IntsAttr;
using testing::StringAttr;
using testing::StringsAttr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

Result<std::unique_ptr<Model>> Load(Graph& g) {
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, ExportModel(g));
  return LoadOnnxModelFromBytes(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
}

float Sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// Two stumps on features 0 and 1:
//   tree 0: x0 <= 0.5 ? 1.0 : 2.0   (NaN goes to the true branch)
//   tree 1: x1 <= -1  ? 10  : 20    (NaN goes to the false branch)
std::vector<Attribute> Stumps(const char* mode, const char* prefix) {
  const std::string p = prefix;
  return {
      IntsAttr("nodes_treeids", {0, 0, 0, 1, 1, 1}),
      IntsAttr("nodes_nodeids", {0, 1, 2, 0, 1, 2}),
      IntsAttr("nodes_featureids", {0, 0, 0, 1, 0, 0}),
      StringsAttr("nodes_modes", {mode, "LEAF", "LEAF", mode, "LEAF", "LEAF"}),
      FloatsAttr("nodes_values", {0.5f, 0, 0, -1.0f, 0, 0}),
      IntsAttr("nodes_truenodeids", {1, 0, 0, 1, 0, 0}),
      IntsAttr("nodes_falsenodeids", {2, 0, 0, 2, 0, 0}),
      IntsAttr("nodes_missing_value_tracks_true", {1, 0, 0, 0, 0, 0}),
      IntsAttr(p + "treeids", {0, 0, 1, 1}),
      IntsAttr(p + "nodeids", {1, 2, 1, 2}),
      IntsAttr(p + "ids", {0, 0, 0, 0}),
      FloatsAttr(p + "weights", {1.0f, 2.0f, 10.0f, 20.0f}),
  };
}

TEST(OnnxMl, TreeEnsembleRegressorSumsLeavesWithMissingValueTracking) {
  GraphBuilder b(17, 3);
  ValueId x = b.Input("X", DataType::kFp32, {-1, 2});
  auto attrs = Stumps("BRANCH_LEQ", "target_");
  attrs.push_back(IntAttr("n_targets", 1));
  attrs.push_back(FloatsAttr("base_values", {100.0f}));
  b.Output(b.Op("TreeEnsembleRegressor", {x}, {"Y"}, attrs, "ai.onnx.ml"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, Load(b.graph()));
  EXPECT_EQ(model->signature().outputs[0].shape, (Shape{-1, 1}));
  std::vector<Tensor> in;
  // rows: exact thresholds (LEQ: true), above, NaN in both features
  in.push_back(FloatTensor({3, 2}, {0.5f, -1.0f, 0.6f, 0.0f, kNaN, kNaN}));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ASSERT_EQ(out[0].shape(), (Shape{3, 1}));
  EXPECT_FLOAT_EQ(out[0].values<float>()[0], 100 + 1 + 10);
  EXPECT_FLOAT_EQ(out[0].values<float>()[1], 100 + 2 + 20);
  EXPECT_FLOAT_EQ(out[0].values<float>()[2], 100 + 1 + 20);
}

TEST(OnnxMl, TreeEnsembleRegressorBranchLtSendsEqualValuesFalse) {
  GraphBuilder b(17, 3);
  ValueId x = b.Input("X", DataType::kFp32, {-1, 2});
  auto attrs = Stumps("BRANCH_LT", "target_");
  attrs.push_back(IntAttr("n_targets", 1));
  attrs.push_back(StringAttr("aggregate_function", "AVERAGE"));
  b.Output(b.Op("TreeEnsembleRegressor", {x}, {"Y"}, attrs, "ai.onnx.ml"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, Load(b.graph()));
  std::vector<Tensor> in;
  in.push_back(FloatTensor({2, 2}, {0.5f, -1.0f, 0.4f, -2.0f}));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  EXPECT_FLOAT_EQ(out[0].values<float>()[0], (2 + 20) / 2.0f);
  EXPECT_FLOAT_EQ(out[0].values<float>()[1], (1 + 10) / 2.0f);
}

TEST(OnnxMl, TreeEnsembleRegressorReadsDoubleInputAndIntegerInput) {
  for (DataType t : {DataType::kFp64, DataType::kInt64}) {
    GraphBuilder b(17, 3);
    ValueId x = b.Input("X", t, {-1, 2});
    auto attrs = Stumps("BRANCH_LEQ", "target_");
    attrs.push_back(IntAttr("n_targets", 1));
    b.Output(b.Op("TreeEnsembleRegressor", {x}, {"Y"}, attrs, "ai.onnx.ml"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, Load(b.graph()));
    std::vector<Tensor> in;
    in.emplace_back(t, Shape{1, 2});
    if (t == DataType::kFp64) {
      in[0].values<double>()[0] = 0.25;
      in[0].values<double>()[1] = 3;
    } else {
      in[0].values<int64_t>()[0] = 0;
      in[0].values<int64_t>()[1] = 3;
    }
    std::vector<Tensor> out;
    OUTPOST_ASSERT_OK(model->Run(in, out));
    EXPECT_FLOAT_EQ(out[0].values<float>()[0], 1 + 20);
  }
}

TEST(OnnxMl, TreeEnsembleClassifierBinaryLogisticGivesBothProbabilities) {
  // XGBoost's binary layout: every weight on class 0, one base value (the margin).
  GraphBuilder b(17, 3);
  ValueId x = b.Input("X", DataType::kFp32, {-1, 2});
  auto attrs = Stumps("BRANCH_LT", "class_");
  attrs[11] = FloatsAttr("class_weights", {0.5f, -0.25f, -1.0f, 0.75f});
  attrs.push_back(IntsAttr("classlabels_int64s", {0, 1}));
  attrs.push_back(FloatsAttr("base_values", {0.1f}));
  attrs.push_back(StringAttr("post_transform", "LOGISTIC"));
  b.Op("TreeEnsembleClassifier", {x}, {"label", "probabilities"}, attrs, "ai.onnx.ml");
  b.Output(b.graph().values.size() - 2);
  b.Output(b.graph().values.size() - 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, Load(b.graph()));
  std::vector<Tensor> in;
  in.push_back(FloatTensor({2, 2}, {0.0f, 0.0f, 1.0f, -5.0f}));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  // row 0: 0.5 + 0.75 + 0.1 = 1.35; row 1: -0.25 - 1.0 + 0.1 = -1.15
  const float s0 = 1.35f, s1 = -1.15f;
  EXPECT_EQ(out[0].values<int64_t>()[0], 1);
  EXPECT_EQ(out[0].values<int64_t>()[1], 0);
  EXPECT_NEAR(out[1].values<float>()[0], 1 - Sigmoid(s0), 1e-6);
  EXPECT_NEAR(out[1].values<float>()[1], Sigmoid(s0), 1e-6);
  EXPECT_NEAR(out[1].values<float>()[2], 1 - Sigmoid(s1), 1e-6);
  EXPECT_NEAR(out[1].values<float>()[3], Sigmoid(s1), 1e-6);
}

TEST(OnnxMl, TreeEnsembleClassifierRunAllocatesNothingOnceWarm) {
  GraphBuilder b(17, 3);
  ValueId x = b.Input("X", DataType::kFp32, {-1, 2});
  auto attrs = Stumps("BRANCH_LT", "class_");
  attrs[11] = FloatsAttr("class_weights", {0.5f, -0.25f, -1.0f, 0.75f});
  attrs.push_back(IntsAttr("classlabels_int64s", {0, 1}));
  attrs.push_back(FloatsAttr("base_values", {0.1f}));
  attrs.push_back(StringAttr("post_transform", "LOGISTIC"));
  b.Op("TreeEnsembleClassifier", {x}, {"label", "probabilities"}, attrs, "ai.onnx.ml");
  b.Output(b.graph().values.size() - 2);
  b.Output(b.graph().values.size() - 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, Load(b.graph()));
  std::vector<Tensor> in;
  in.push_back(FloatTensor({300, 2}, std::vector<float>(600, 0.25f)));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  int64_t allocations = -1;
  Status st;
  {
    testing::CountAllocations count(&allocations);
    st = model->Run(in, out);
  }
  OUTPOST_ASSERT_OK(st);
  EXPECT_EQ(allocations, 0);
}

TEST(OnnxMl, TreeEnsembleClassifierMulticlassSoftmaxWithStringLabels) {
  GraphBuilder b(17, 3);
  ValueId x = b.Input("X", DataType::kFp32, {-1, 1});
  std::vector<Attribute> attrs = {
      IntsAttr("nodes_treeids", {0, 0, 0}),
      IntsAttr("nodes_nodeids", {0, 1, 2}),
      IntsAttr("nodes_featureids", {0, 0, 0}),
      StringsAttr("nodes_modes", {"BRANCH_LEQ", "LEAF", "LEAF"}),
      FloatsAttr("nodes_values", {0.0f, 0, 0}),
      IntsAttr("nodes_truenodeids", {1, 0, 0}),
      IntsAttr("nodes_falsenodeids", {2, 0, 0}),
      IntsAttr("class_treeids", {0, 0, 0, 0, 0, 0}),
      IntsAttr("class_nodeids", {1, 1, 1, 2, 2, 2}),
      IntsAttr("class_ids", {0, 1, 2, 0, 1, 2}),
      FloatsAttr("class_weights", {3, 1, 0, 0, 1, 2}),
      StringsAttr("classlabels_strings", {"low", "mid", "high"}),
      StringAttr("post_transform", "SOFTMAX"),
  };
  b.Op("TreeEnsembleClassifier", {x}, {"label", "probabilities"}, attrs, "ai.onnx.ml");
  b.Output(b.graph().values.size() - 2);
  b.Output(b.graph().values.size() - 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, Load(b.graph()));
  EXPECT_EQ(model->signature().outputs[0].type, DataType::kBytes);
  std::vector<Tensor> in;
  in.push_back(FloatTensor({2, 1}, {-1.0f, 1.0f}));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  EXPECT_EQ(out[0].strings()[0], "low");
  EXPECT_EQ(out[0].strings()[1], "high");
  const double e0 = std::exp(3.0), e1 = std::exp(1.0), e2 = 1.0;
  EXPECT_NEAR(out[1].values<float>()[0], e0 / (e0 + e1 + e2), 1e-6);
  EXPECT_NEAR(out[1].values<float>()[5], std::exp(2.0) / (1 + std::exp(1.0) + std::exp(2.0)),
              1e-6);
}

TEST(OnnxMl, TreeWithACycleIsRefusedNamingTheNode) {
  GraphBuilder b(17, 3);
  ValueId x = b.Input("X", DataType::kFp32, {-1, 1});
  std::vector<Attribute> attrs = {
      IntsAttr("nodes_treeids", {0, 0, 0}),
      IntsAttr("nodes_nodeids", {0, 1, 2}),
      IntsAttr("nodes_featureids", {0, 0, 0}),
      StringsAttr("nodes_modes", {"BRANCH_LEQ", "BRANCH_LEQ", "LEAF"}),
      FloatsAttr("nodes_values", {0.0f, 0.0f, 0}),
      IntsAttr("nodes_truenodeids", {1, 0, 0}),  // node 1 leads back to node 0
      IntsAttr("nodes_falsenodeids", {2, 2, 0}),
      IntsAttr("target_treeids", {0}),
      IntsAttr("target_nodeids", {2}),
      IntsAttr("target_ids", {0}),
      FloatsAttr("target_weights", {1.0f}),
      IntAttr("n_targets", 1),
  };
  b.Output(b.Op("TreeEnsembleRegressor", {x}, {"Y"}, attrs, "ai.onnx.ml"));
  auto model = Load(b.graph());
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("(ai.onnx.ml.TreeEnsembleRegressor)"),
            std::string_view::npos)
      << model.status().ToString();
  EXPECT_NE(model.status().message().find("reached twice"), std::string_view::npos);
}

TEST(OnnxMl, TreeReadingAFeatureBeyondTheInputIsRefused) {
  GraphBuilder b(17, 3);
  ValueId x = b.Input("X", DataType::kFp32, {-1, 1});
  auto attrs = Stumps("BRANCH_LEQ", "target_");
  attrs.push_back(IntAttr("n_targets", 1));
  b.Output(b.Op("TreeEnsembleRegressor", {x}, {"Y"}, attrs, "ai.onnx.ml"));
  auto model = Load(b.graph());
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("feature 1"), std::string_view::npos)
      << model.status().ToString();
}

TEST(OnnxMl, LinearClassifierScalerNormalizerPipeline) {
  GraphBuilder b(17, 1);
  ValueId x = b.Input("X", DataType::kFp32, {-1, 2});
  ValueId s = b.Op("Scaler", {x}, {"scaled"},
                   {FloatsAttr("offset", {1.0f, 0.0f}), FloatsAttr("scale", {2.0f, 0.5f})},
                   "ai.onnx.ml");
  b.Op("LinearClassifier", {s}, {"label", "scores"},
       {FloatsAttr("coefficients", {1, 0, 0, 1, -1, -1}), FloatsAttr("intercepts", {0, 0, 1}),
        IntsAttr("classlabels_ints", {7, 8, 9}), StringAttr("post_transform", "NONE")},
       "ai.onnx.ml");
  const ValueId label = static_cast<ValueId>(b.graph().values.size() - 2);
  const ValueId scores = static_cast<ValueId>(b.graph().values.size() - 1);
  ValueId norm = b.Op("Normalizer", {scores}, {"norm"}, {StringAttr("norm", "L1")}, "ai.onnx.ml");
  b.Output(label);
  b.Output(norm);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, Load(b.graph()));
  std::vector<Tensor> in;
  in.push_back(FloatTensor({1, 2}, {2.0f, 4.0f}));  // scaled: [2, 2]; scores [2, 2, -3]
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  EXPECT_EQ(out[0].values<int64_t>()[0], 7);  // the first of equal maxima
  EXPECT_NEAR(out[1].values<float>()[0], 2.0 / 7, 1e-6);
  EXPECT_NEAR(out[1].values<float>()[2], -3.0 / 7, 1e-6);
}

TEST(OnnxMl, EncodersAndExtractors) {
  GraphBuilder b(17, 2);
  ValueId cat = b.Input("cat", DataType::kBytes, {-1});
  ValueId num = b.Input("num", DataType::kFp32, {-1, 3});
  ValueId onehot = b.Op("OneHotEncoder", {cat}, {"onehot"},
                        {StringsAttr("cats_strings", {"a", "b"})}, "ai.onnx.ml");
  ValueId code = b.Op("LabelEncoder", {cat}, {"code"},
                      {StringsAttr("keys_strings", {"a", "b"}), IntsAttr("values_int64s", {5, 6}),
                       IntAttr("default_int64", -9)},
                      "ai.onnx.ml");
  ValueId picked = b.Op("ArrayFeatureExtractor", {num, b.Ints("idx", {2}, {2, 0})}, {"picked"},
                        {}, "ai.onnx.ml");
  ValueId imputed = b.Op("Imputer", {picked}, {"imputed"},
                         {FloatsAttr("imputed_value_floats", {-1.0f}),
                          FloatAttr("replaced_value_float", kNaN)},
                         "ai.onnx.ml");
  ValueId bin = b.Op("Binarizer", {imputed}, {"bin"}, {FloatAttr("threshold", 0.0f)},
                     "ai.onnx.ml");
  ValueId vec = b.Op("FeatureVectorizer", {bin, onehot}, {"vec"},
                     {IntsAttr("inputdimensions", {2, 2})}, "ai.onnx.ml");
  b.Output(vec);
  b.Output(code);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, Load(b.graph()));
  std::vector<Tensor> in;
  in.emplace_back(DataType::kBytes, Shape{2});
  in[0].strings() = {"b", "zzz"};
  in.push_back(FloatTensor({2, 3}, {1, 2, kNaN, -1, 5, 3}));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  // row 0: picked [NaN, 1] -> imputed [-1, 1] -> bin [0, 1]; onehot "b" -> [0, 1]
  // row 1: picked [3, -1] -> bin [1, 0]; onehot "zzz" -> [0, 0]
  const std::vector<float> want = {0, 1, 0, 1, 1, 0, 0, 0};
  ASSERT_EQ(out[0].shape(), (Shape{2, 4}));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(out[0].values<float>()[i], want[i]) << i;
  EXPECT_EQ(out[1].values<int64_t>()[0], 6);
  EXPECT_EQ(out[1].values<int64_t>()[1], -9);
}

TEST(OnnxMl, ZipMapOutputIsTheProbabilityTensor) {
  GraphBuilder b(17, 1);
  ValueId x = b.Input("X", DataType::kFp32, {-1, 2});
  ValueId z = b.Op("ZipMap", {x}, {"z"}, {IntsAttr("classlabels_int64s", {0, 1})}, "ai.onnx.ml");
  b.graph().values[static_cast<size_t>(z)].info.is_tensor = false;  // declared seq(map)
  b.Output(z);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, Load(b.graph()));
  EXPECT_EQ(model->signature().outputs[0].shape, (Shape{-1, 2}));
  std::vector<Tensor> in;
  in.push_back(FloatTensor({1, 2}, {0.25f, 0.75f}));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  EXPECT_EQ(out[0].values<float>()[1], 0.75f);
}

}  // namespace
}  // namespace outpost::engine::onnx
