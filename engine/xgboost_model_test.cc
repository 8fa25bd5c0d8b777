#include "engine/xgboost_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "base/file.h"
#include "base/testing/test_util.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost::engine {
namespace {

using train::Dataset;
using train::ModelFormat;
using train::PredictKind;

// Pump readings with sensor dropouts, so that every test also scores missing values.
Dataset PumpData(int64_t rows, uint64_t seed) {
  auto data =
      train::MakePumpReadings({.rows = rows, .seed = seed, .fault_rate = 0.2, .missing_rate = 0.1});
  EXPECT_TRUE(data.ok()) << data.status().ToString();
  return std::move(data).value();
}

// Three classes from the readings' pressure and vibration, for multi-class objectives.
Dataset ThreeClassData() {
  Dataset d = PumpData(600, 7);
  for (int64_t r = 0; r < d.rows; ++r) {
    float pressure = d.features[static_cast<size_t>(r * d.cols() + 2)];
    d.labels[static_cast<size_t>(r)] = std::isnan(pressure) ? 0.0f : pressure < 9.0f ? 1.0f : 2.0f;
  }
  return d;
}

std::string TrainBytes(const Dataset& data, std::map<std::string, std::string> params,
                       ModelFormat format, int rounds = 8) {
  train::TrainOptions options;
  for (auto& [k, v] : params) options.params[k] = v;
  options.rounds = rounds;
  auto model = train::TrainXGBoost(data, options);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return "";
  auto bytes = (*model)->Serialize(format);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : "";
}

Tensor Batch(const Dataset& d) {
  Tensor t(DataType::kFp32, Shape{d.rows, d.cols()});
  std::memcpy(t.data(), d.features.data(), t.byte_size());
  return t;
}

// Runs `model` on all rows of `data` and checks the output bit for bit against XGBoost's own
// DMatrix prediction of the same bytes.
void ExpectSameAsReference(const Model& model, const std::string& bytes, const Dataset& data,
                           PredictKind kind = PredictKind::kValue) {
  std::vector<Tensor> in;
  in.push_back(Batch(data));
  OUTPOST_ASSERT_OK(ValidateInputs(model.signature(), in));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model.Run(in, out));
  ASSERT_EQ(out.size(), 1u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      train::Predictions ref,
      train::ReferencePredict(bytes, data.features, data.rows, data.cols(), kind));
  EXPECT_EQ(out[0].shape(), ref.shape);
  ASSERT_EQ(static_cast<size_t>(out[0].element_count()), ref.values.size());
  auto got = out[0].values<float>();
  size_t mismatches = 0;
  for (size_t i = 0; i < ref.values.size(); ++i) {
    if (got[i] != ref.values[i]) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0u) << "first values " << got[0] << " vs " << ref.values[0];
}

class XGBoostModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new Dataset(PumpData(500, 3));
    binary_json_ = new std::string(TrainBytes(*data_, {}, ModelFormat::kJson));
    binary_ubj_ = new std::string(TrainBytes(*data_, {}, ModelFormat::kUbjson));
  }
  static void TearDownTestSuite() {
    delete data_;
    delete binary_json_;
    delete binary_ubj_;
  }
  static Dataset* data_;
  static std::string* binary_json_;
  static std::string* binary_ubj_;
};
Dataset* XGBoostModelTest::data_ = nullptr;
std::string* XGBoostModelTest::binary_json_ = nullptr;
std::string* XGBoostModelTest::binary_ubj_ = nullptr;

TEST_F(XGBoostModelTest, LoadsJsonFileWithTheDefaultSignature) {
  testing::TempDir dir;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("model.json"), *binary_json_));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModel(dir.File("model.json")));
  EXPECT_EQ(model->platform(), "xgboost_json");
  const Signature& sig = model->signature();
  ASSERT_EQ(sig.inputs.size(), 1u);
  EXPECT_EQ(sig.inputs[0].name, "input");
  EXPECT_EQ(sig.inputs[0].type, DataType::kFp32);
  EXPECT_EQ(sig.inputs[0].shape, (Shape{-1, 8}));
  ASSERT_EQ(sig.outputs.size(), 1u);
  EXPECT_EQ(sig.outputs[0].name, "output");
  EXPECT_EQ(sig.outputs[0].type, DataType::kFp32);
  EXPECT_EQ(sig.outputs[0].shape, (Shape{-1}));
}

TEST_F(XGBoostModelTest, LoadsUbjsonFile) {
  testing::TempDir dir;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("model.ubj"), *binary_ubj_));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModel(dir.File("model.ubj")));
  EXPECT_EQ(model->platform(), "xgboost_ubj");
  EXPECT_EQ(model->signature().inputs[0].shape, (Shape{-1, 8}));
}

TEST_F(XGBoostModelTest, BinaryLogisticPredictionsEqualTheReferenceExactly) {
  for (const std::string* bytes : {binary_json_, binary_ubj_}) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModelFromBytes(*bytes));
    ExpectSameAsReference(*model, *bytes, *data_);
    // Probabilities, not margins.
    std::vector<Tensor> in;
    in.push_back(Batch(*data_));
    std::vector<Tensor> out;
    OUTPOST_ASSERT_OK(model->Run(in, out));
    for (float p : out[0].values<float>()) {
      ASSERT_GE(p, 0.0f);
      ASSERT_LE(p, 1.0f);
    }
  }
}

TEST_F(XGBoostModelTest, MarginPredictionsAreTheUntransformedScores) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto value, LoadXGBoostModelFromBytes(*binary_json_));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto margin,
                               LoadXGBoostModelFromBytes(*binary_json_, {.predict = "margin"}));
  ExpectSameAsReference(*margin, *binary_json_, *data_, PredictKind::kMargin);
  std::vector<Tensor> in;
  in.push_back(Batch(*data_));
  std::vector<Tensor> p, m;
  OUTPOST_ASSERT_OK(value->Run(in, p));
  OUTPOST_ASSERT_OK(margin->Run(in, m));
  bool any_outside_unit_interval = false;
  for (int64_t i = 0; i < data_->rows; ++i) {
    float logit = m[0].values<float>()[static_cast<size_t>(i)];
    float prob = p[0].values<float>()[static_cast<size_t>(i)];
    EXPECT_NEAR(1.0 / (1.0 + std::exp(-static_cast<double>(logit))), prob, 1e-6);
    any_outside_unit_interval |= logit < 0.0f || logit > 1.0f;
  }
  EXPECT_TRUE(any_outside_unit_interval);
}

TEST_F(XGBoostModelTest, NaNIsAMissingValueNotAnError) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModelFromBytes(*binary_json_));
  Dataset all_missing;
  all_missing.feature_names = data_->feature_names;
  all_missing.rows = 2;
  all_missing.features.assign(16, std::numeric_limits<float>::quiet_NaN());
  all_missing.features[8] = 70.0f;  // second row: only the bearing temperature is known
  ExpectSameAsReference(*model, *binary_json_, all_missing);
}

TEST_F(XGBoostModelTest, EmptyBatchGivesEmptyOutput) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModelFromBytes(*binary_json_));
  std::vector<Tensor> in;
  in.emplace_back(DataType::kFp32, Shape{0, 8});
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), (Shape{0}));
}

TEST_F(XGBoostModelTest, RunRefusesAnInputOfTheWrongWidthInsteadOfReadingPastIt) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModelFromBytes(*binary_json_));
  std::vector<Tensor> in;
  in.emplace_back(DataType::kFp32, Shape{4, 7});
  std::vector<Tensor> out;
  EXPECT_EQ(model->Run(in, out).code(), StatusCode::kInvalidArgument);
}

TEST_F(XGBoostModelTest, ConcurrentRunsFromFourThreadsGiveIdenticalResults) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModelFromBytes(*binary_ubj_));
  std::vector<Tensor> in;
  in.push_back(Batch(*data_));
  std::vector<Tensor> expected;
  OUTPOST_ASSERT_OK(model->Run(in, expected));

  constexpr int kThreads = 4;
  constexpr int kRunsPerThread = 50;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRunsPerThread; ++i) {
        std::vector<Tensor> out;
        Status s = model->Run(in, out);
        if (!s.ok() || out.size() != 1 || out[0].byte_size() != expected[0].byte_size() ||
            std::memcmp(out[0].data(), expected[0].data(), out[0].byte_size()) != 0) {
          ++failures[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[static_cast<size_t>(t)], 0) << t;
}

TEST_F(XGBoostModelTest, OneThreadAlternatingBetweenModelsKeepsTheirBatchesApart) {
  // Scoring takes its batch through a proxy matrix that each thread reuses across models;
  // a model of another width in between must not disturb the next call.
  Dataset narrow;
  narrow.feature_names = {"a", "b", "c"};
  narrow.rows = data_->rows;
  for (int64_t r = 0; r < data_->rows; ++r) {
    auto row = data_->Row(r);
    narrow.features.insert(narrow.features.end(), row.begin(), row.begin() + 3);
  }
  narrow.labels = data_->labels;
  std::string narrow_bytes = TrainBytes(narrow, {}, ModelFormat::kJson);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto wide_model, LoadXGBoostModelFromBytes(*binary_json_));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto narrow_model, LoadXGBoostModelFromBytes(narrow_bytes));
  EXPECT_EQ(narrow_model->signature().inputs[0].shape, (Shape{-1, 3}));
  for (int i = 0; i < 3; ++i) {
    ExpectSameAsReference(*wide_model, *binary_json_, *data_);
    ExpectSameAsReference(*narrow_model, narrow_bytes, narrow);
  }
}

TEST(XGBoostModel, MultiSoftprobGivesOneProbabilityPerClass) {
  Dataset d = ThreeClassData();
  for (ModelFormat format : {ModelFormat::kJson, ModelFormat::kUbjson}) {
    std::string bytes =
        TrainBytes(d, {{"objective", "multi:softprob"}, {"num_class", "3"}}, format);
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModelFromBytes(bytes));
    EXPECT_EQ(model->signature().outputs[0].shape, (Shape{-1, 3}));
    ExpectSameAsReference(*model, bytes, d);
    std::vector<Tensor> in;
    in.push_back(Batch(d));
    std::vector<Tensor> out;
    OUTPOST_ASSERT_OK(model->Run(in, out));
    auto v = out[0].values<float>();
    for (int64_t r = 0; r < d.rows; ++r) {
      size_t i = static_cast<size_t>(r * 3);
      EXPECT_NEAR(v[i] + v[i + 1] + v[i + 2], 1.0f, 1e-5f);
    }
  }
}

TEST(XGBoostModel, MultiSoftmaxGivesTheClassAndItsMarginsGiveOneScorePerClass) {
  Dataset d = ThreeClassData();
  std::string bytes =
      TrainBytes(d, {{"objective", "multi:softmax"}, {"num_class", "3"}}, ModelFormat::kJson);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto value, LoadXGBoostModelFromBytes(bytes));
  EXPECT_EQ(value->signature().outputs[0].shape, (Shape{-1}));
  ExpectSameAsReference(*value, bytes, d);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto margin,
                               LoadXGBoostModelFromBytes(bytes, {.predict = "margin"}));
  EXPECT_EQ(margin->signature().outputs[0].shape, (Shape{-1, 3}));
  ExpectSameAsReference(*margin, bytes, d, PredictKind::kMargin);
}

TEST(XGBoostModel, RegressionGivesOneValuePerRow) {
  Dataset d = PumpData(400, 11);
  // Predict the bearing temperature's deviation from the other readings.
  for (int64_t r = 0; r < d.rows; ++r) {
    d.labels[static_cast<size_t>(r)] = static_cast<float>(r % 17) * 0.5f;
  }
  std::string bytes = TrainBytes(d, {{"objective", "reg:squarederror"}}, ModelFormat::kUbjson);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModelFromBytes(bytes));
  EXPECT_EQ(model->signature().outputs[0].shape, (Shape{-1}));
  ExpectSameAsReference(*model, bytes, d);
}

TEST(XGBoostModel, DartAndLinearBoostersScoreLikeTheReference) {
  Dataset d = PumpData(300, 5);
  std::string dart = TrainBytes(d, {{"booster", "dart"}}, ModelFormat::kJson);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto dart_model, LoadXGBoostModelFromBytes(dart));
  ExpectSameAsReference(*dart_model, dart, d);

  for (ModelFormat format : {ModelFormat::kJson, ModelFormat::kUbjson}) {
    std::string linear = TrainBytes(d, {{"booster", "gblinear"}}, format);
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto linear_model, LoadXGBoostModelFromBytes(linear));
    ExpectSameAsReference(*linear_model, linear, d);
  }
  // The linear path takes FP64 batches too.
  std::string linear = TrainBytes(d, {{"booster", "gblinear"}}, ModelFormat::kJson);
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto fp64_model,
      LoadXGBoostModelFromBytes(
          linear, {.inputs = {{.name = "x", .type = DataType::kFp64, .shape = {-1, 8}}}}));
  Tensor x(DataType::kFp64, Shape{d.rows, 8});
  for (size_t i = 0; i < d.features.size(); ++i) x.values<double>()[i] = d.features[i];
  std::vector<Tensor> in;
  in.push_back(std::move(x));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(fp64_model->Run(in, out));
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Predictions ref,
                               train::ReferencePredict(linear, d.features, d.rows, 8));
  ASSERT_EQ(static_cast<size_t>(out[0].element_count()), ref.values.size());
  for (size_t i = 0; i < ref.values.size(); ++i)
    ASSERT_EQ(out[0].values<float>()[i], ref.values[i]);
}

TEST_F(XGBoostModelTest, AcceptsOverridesThatAgreeWithTheBooster) {
  XGBoostOptions options{
      .inputs = {{.name = "readings", .type = DataType::kFp64, .shape = {-1, 8}}},
      .outputs = {{.name = "fault_probability", .type = DataType::kFp32, .shape = {-1}}},
  };
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModelFromBytes(*binary_json_, options));
  EXPECT_EQ(model->signature().inputs[0].name, "readings");
  EXPECT_EQ(model->signature().inputs[0].type, DataType::kFp64);
  EXPECT_EQ(model->signature().outputs[0].name, "fault_probability");

  // FP64 rows holding the same (float) values score exactly like FP32 rows.
  Tensor x(DataType::kFp64, Shape{data_->rows, 8});
  for (size_t i = 0; i < data_->features.size(); ++i) {
    x.values<double>()[i] = static_cast<double>(data_->features[i]);
  }
  std::vector<Tensor> in;
  in.push_back(std::move(x));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      train::Predictions ref,
      train::ReferencePredict(*binary_json_, data_->features, data_->rows, 8));
  ASSERT_EQ(ref.values.size(), static_cast<size_t>(out[0].element_count()));
  for (size_t i = 0; i < ref.values.size(); ++i) {
    ASSERT_EQ(out[0].values<float>()[i], ref.values[i]) << i;
  }
}

TEST_F(XGBoostModelTest, AcceptsAFixedBatchSize) {
  XGBoostOptions options{.inputs = {{.name = "x", .type = DataType::kFp32, .shape = {4, 8}}}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModelFromBytes(*binary_json_, options));
  EXPECT_EQ(model->signature().outputs[0].shape, (Shape{4}));
}

TEST_F(XGBoostModelTest, RejectsOverridesThatDisagreeWithTheBooster) {
  auto code = [&](const XGBoostOptions& o) {
    return LoadXGBoostModelFromBytes(*binary_json_, o).status().code();
  };
  const auto kInvalid = StatusCode::kInvalidArgument;
  EXPECT_EQ(code({.inputs = {{.name = "x", .type = DataType::kFp32, .shape = {-1, 7}}}}), kInvalid);
  EXPECT_EQ(code({.inputs = {{.name = "x", .type = DataType::kFp32, .shape = {-1, -1}}}}),
            kInvalid);
  EXPECT_EQ(code({.inputs = {{.name = "x", .type = DataType::kFp32, .shape = {8}}}}), kInvalid);
  EXPECT_EQ(code({.inputs = {{.name = "x", .type = DataType::kInt64, .shape = {-1, 8}}}}),
            kInvalid);
  EXPECT_EQ(code({.inputs = {{.name = "a", .type = DataType::kFp32, .shape = {-1, 8}},
                             {.name = "b", .type = DataType::kFp32, .shape = {-1, 8}}}}),
            kInvalid);
  EXPECT_EQ(code({.outputs = {{.name = "y", .type = DataType::kFp32, .shape = {-1, 2}}}}),
            kInvalid);
  EXPECT_EQ(code({.outputs = {{.name = "y", .type = DataType::kFp64, .shape = {-1}}}}), kInvalid);
  EXPECT_EQ(code({.outputs = {{.name = "", .type = DataType::kFp32, .shape = {-1}}}}), kInvalid);
  EXPECT_EQ(code({.predict = "probability"}), kInvalid);
  EXPECT_EQ(code({.threads = 0}), kInvalid);

  Status s =
      LoadXGBoostModelFromBytes(
          *binary_json_, {.inputs = {{.name = "x", .type = DataType::kFp32, .shape = {-1, 7}}}})
          .status();
  EXPECT_NE(s.message().find("[-1, 8]"), std::string_view::npos) << s.message();
}

TEST_F(XGBoostModelTest, RefusesCorruptTruncatedAndEmptyFiles) {
  testing::TempDir dir;
  auto load = [&](const std::string& bytes) {
    std::string path = dir.File("model.bin");
    EXPECT_TRUE(WriteFileAtomically(path, bytes).ok());
    return LoadXGBoostModel(path).status();
  };
  EXPECT_EQ(load("").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(load("not a model").code(), StatusCode::kInvalidArgument);
  for (const std::string* bytes : {binary_json_, binary_ubj_}) {
    // Every truncation point in steps, and a flipped byte at the same points.
    for (size_t cut = 0; cut < bytes->size(); cut += 97) {
      Status s = LoadXGBoostModelFromBytes(bytes->substr(0, cut)).status();
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "cut at " << cut << ": " << s.ToString();
    }
  }
  std::string garbled = *binary_json_;
  garbled[garbled.size() / 2] = '\x01';
  EXPECT_EQ(load(garbled).code(), StatusCode::kInvalidArgument);
}

TEST_F(XGBoostModelTest, SurvivesEveryByteOfAModelFlipped) {
  // Not a proof (the fuzz target searches further), but every single-byte corruption of a
  // UBJSON model must end in a model or an error, never a crash.
  const std::string& bytes = *binary_ubj_;
  Tensor rows(DataType::kFp32, Shape{4, 8});
  std::memcpy(rows.data(), data_->features.data(), rows.byte_size());
  int loaded = 0, refused = 0;
  for (size_t i = 0; i < bytes.size(); i += 53) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
    auto model = LoadXGBoostModelFromBytes(damaged);
    if (!model.ok()) {
      EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument) << model.status().ToString();
      ++refused;
      continue;
    }
    ++loaded;
    std::vector<Tensor> in;
    in.push_back(rows);
    std::vector<Tensor> out;
    (*model)->Run(in, out).IgnoreError();
  }
  // Both outcomes happen: damaged leaf values still load, damaged structure does not.
  EXPECT_GT(loaded, 0);
  EXPECT_GT(refused, 0);
}

TEST(XGBoostModel, MissingFileIsNotFound) {
  testing::TempDir dir;
  Status s = LoadXGBoostModel(dir.File("absent.json")).status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
}

TEST_F(XGBoostModelTest, FileOverTheSizeLimitIsRefused) {
  testing::TempDir dir;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("model.json"), *binary_json_));
  Status s = LoadXGBoostModel(dir.File("model.json"), {.max_file_bytes = 100}).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_EQ(LoadXGBoostModelFromBytes(*binary_json_, {.max_file_bytes = 100}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace outpost::engine
