#include "serve/repository.h"

#include <gtest/gtest.h>

#include "base/file.h"
#include "base/testing/test_util.h"
#include "engine/onnx/xgboost_to_onnx.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost::serve {
namespace {

using testing::TempDir;

// A repository folder with real XGBoost models trained on the pump data.
class RepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Result<train::Dataset> data = train::MakePumpReadings({.rows = 500, .seed = 3});
    ASSERT_TRUE(data.ok());
    train::TrainOptions options;
    options.rounds = 5;
    auto model = train::TrainXGBoost(*data, options);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    auto bytes = (*model)->Serialize(train::ModelFormat::kJson);
    ASSERT_TRUE(bytes.ok());
    model_bytes_ = new std::string(*bytes);
  }
  static void TearDownTestSuite() { delete model_bytes_; }

  void AddModel(const std::string& name, const std::string& config, std::vector<int64_t> versions,
                const std::string& bytes = *model_bytes_) {
    std::string dir = JoinPath(dir_.path(), name);
    OUTPOST_ASSERT_OK(MakeDirectories(dir));
    OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(dir, "config.yaml"), config));
    for (int64_t v : versions) {
      std::string vdir = JoinPath(dir, std::to_string(v));
      OUTPOST_ASSERT_OK(MakeDirectories(vdir));
      OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(vdir, "model.json"), bytes));
    }
  }

  TempDir dir_;
  static std::string* model_bytes_;
};
std::string* RepositoryTest::model_bytes_ = nullptr;

TEST_F(RepositoryTest, ServesHighestReadyVersionByDefault) {
  AddModel("pump", "backend: xgboost\nversion_policy: {latest: 2}\n", {1, 2, 3});
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open({.root = dir_.path()}));
  EXPECT_TRUE(repo->IsReady());
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle h, repo->Find("pump", std::nullopt));
  EXPECT_EQ(h.version, 3);
  ASSERT_NE(h.model, nullptr);
  EXPECT_EQ(h.model->signature().inputs[0].shape, (engine::Shape{-1, 8}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle h2, repo->Find("pump", 2));
  EXPECT_EQ(h2.version, 2);
  // Version 1 is on disk but outside the policy: not served.
  EXPECT_EQ(repo->Find("pump", 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(repo->Find("pump", 9).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(repo->Find("valve", std::nullopt).status().code(), StatusCode::kNotFound);
}

TEST_F(RepositoryTest, BrokenModelIsReportedAndDoesNotStopOthers) {
  AddModel("pump", "backend: xgboost\n", {1});
  AddModel("broken", "backend: xgboost\n", {1}, "this is not a model");
  AddModel("badconfig", "backend: tensorflow\n", {1});
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open({.root = dir_.path()}));
  EXPECT_TRUE(repo->Find("pump", std::nullopt).ok());

  Status broken = repo->Find("broken", std::nullopt).status();
  EXPECT_EQ(broken.code(), StatusCode::kUnavailable);
  EXPECT_NE(broken.message().find("not ready"), std::string::npos) << broken.ToString();
  EXPECT_EQ(repo->Find("broken", 1).status().code(), StatusCode::kUnavailable);

  Status bad = repo->Find("badconfig", std::nullopt).status();
  EXPECT_EQ(bad.code(), StatusCode::kUnavailable);
  EXPECT_NE(bad.message().find("tensorflow"), std::string::npos) << bad.ToString();

  std::vector<std::string> names;
  for (const auto& m : repo->Models()) names.push_back(m->name);
  EXPECT_EQ(names, (std::vector<std::string>{"badconfig", "broken", "pump"}));
  EXPECT_FALSE(repo->IsReady());  // strict readiness, as Triton
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto lenient,
                               ModelRepository::Open({.root = dir_.path(), .strict_readiness = false}));
  EXPECT_TRUE(lenient->IsReady());
}

TEST_F(RepositoryTest, SpecificPolicyReportsMissingVersion) {
  AddModel("pump", "backend: xgboost\nversion_policy: {specific: [1, 4]}\n", {1, 2});
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open({.root = dir_.path()}));
  auto models = repo->Models();
  ASSERT_EQ(models.size(), 1u);
  ASSERT_EQ(models[0]->versions.size(), 2u);
  EXPECT_EQ(models[0]->versions[0].state, VersionState::kReady);
  EXPECT_EQ(models[0]->versions[1].state, VersionState::kUnavailable);
  EXPECT_NE(models[0]->versions[1].reason.find("version 4"), std::string::npos);
  EXPECT_EQ(repo->Find("pump", 4).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(repo->Find("pump", std::nullopt)->version, 1);
  EXPECT_FALSE(repo->IsReady());
}

TEST_F(RepositoryTest, IgnoresNonVersionFoldersAndHiddenEntries) {
  AddModel("pump", "backend: xgboost\nversion_policy: {all: true}\n", {2});
  OUTPOST_ASSERT_OK(MakeDirectories(JoinPath(dir_.path(), "pump/latest")));
  OUTPOST_ASSERT_OK(MakeDirectories(JoinPath(dir_.path(), "pump/0")));
  OUTPOST_ASSERT_OK(MakeDirectories(JoinPath(dir_.path(), ".staging/1")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(dir_.path(), "README"), "not a model"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open({.root = dir_.path()}));
  ASSERT_EQ(repo->Models().size(), 1u);
  EXPECT_EQ(repo->Models()[0]->versions.size(), 1u);
  EXPECT_TRUE(repo->IsReady());
}

TEST_F(RepositoryTest, ModelWithoutVersionsIsUnavailable) {
  AddModel("pump", "backend: xgboost\n", {});
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open({.root = dir_.path()}));
  Status s = repo->Find("pump", std::nullopt).status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("no version folder"), std::string::npos) << s.ToString();
}

TEST_F(RepositoryTest, OnnxBackendServesTheConvertedPumpModelAsXGBoostDoes) {
  AddModel("pump_xgb", "backend: xgboost\n", {1});
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string onnx, engine::onnx::ConvertXGBoostToOnnx(*model_bytes_));
  std::string dir = JoinPath(dir_.path(), "pump_onnx");
  OUTPOST_ASSERT_OK(MakeDirectories(dir + "/1"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir + "/config.yaml", "backend: onnx\n"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir + "/1/model.onnx", onnx));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open({.root = dir_.path()}));
  ASSERT_TRUE(repo->IsReady());
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle xgb, repo->Find("pump_xgb", std::nullopt));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle onx, repo->Find("pump_onnx", std::nullopt));
  EXPECT_EQ(onx.model->platform(), "onnx_onnxv1");

  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset rows, train::MakePumpReadings({.rows = 300, .seed = 5,
                                                                          .missing_rate = 0.05}));
  engine::Tensor input(engine::DataType::kFp32, {rows.rows, 8});
  std::copy(rows.features.begin(), rows.features.end(), input.values<float>().begin());
  std::vector<engine::Tensor> inputs;
  inputs.push_back(input);
  std::vector<engine::Tensor> by_xgb, by_onnx;
  OUTPOST_ASSERT_OK(xgb.model->Run(inputs, by_xgb));
  OUTPOST_ASSERT_OK(onx.model->Run(inputs, by_onnx));
  ASSERT_EQ(by_onnx.size(), 1u);
  ASSERT_EQ(by_onnx[0].element_count(), by_xgb[0].element_count());
  for (int64_t i = 0; i < rows.rows; ++i) {
    EXPECT_NEAR(by_onnx[0].values<float>()[i], by_xgb[0].values<float>()[i], 1e-5) << "row " << i;
  }
}

TEST_F(RepositoryTest, OnnxModelWithTwoThreadsLoadsAndScoresAsWithOne) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string onnx, engine::onnx::ConvertXGBoostToOnnx(*model_bytes_));
  for (const auto& [name, config] : {std::pair<std::string, std::string>{"one", "backend: onnx\n"},
                                     {"two", "backend: onnx\nthreads: 2\n"}}) {
    std::string dir = JoinPath(dir_.path(), name);
    OUTPOST_ASSERT_OK(MakeDirectories(dir + "/1"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir + "/config.yaml", config));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir + "/1/model.onnx", onnx));
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo,
                               ModelRepository::Open({.root = dir_.path(), .thread_budget = 2}));
  ASSERT_TRUE(repo->IsReady());
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle one, repo->Find("one", std::nullopt));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle two, repo->Find("two", std::nullopt));
  EXPECT_EQ(two.servable->config->threads, 2);

  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset rows,
                               train::MakePumpReadings({.rows = 64, .seed = 9}));
  engine::Tensor input(engine::DataType::kFp32, {rows.rows, 8});
  std::copy(rows.features.begin(), rows.features.end(), input.values<float>().begin());
  std::vector<engine::Tensor> inputs;
  inputs.push_back(input);
  std::vector<engine::Tensor> by_one, by_two;
  OUTPOST_ASSERT_OK(one.model->Run(inputs, by_one));
  OUTPOST_ASSERT_OK(two.model->Run(inputs, by_two));
  ASSERT_EQ(by_two.size(), 1u);
  ASSERT_EQ(by_two[0].element_count(), by_one[0].element_count());
  for (int64_t i = 0; i < rows.rows; ++i) {
    EXPECT_EQ(by_two[0].values<float>()[i], by_one[0].values<float>()[i]) << "row " << i;
  }
}

TEST_F(RepositoryTest, BadThreadsFailTheLoadAndLeaveTheServingVersionAsItWas) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string onnx, engine::onnx::ConvertXGBoostToOnnx(*model_bytes_));
  std::string dir = JoinPath(dir_.path(), "pump_onnx");
  OUTPOST_ASSERT_OK(MakeDirectories(dir + "/1"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir + "/config.yaml", "backend: onnx\nthreads: 2\n"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir + "/1/model.onnx", onnx));
  AddModel("pump_xgb", "backend: xgboost\nthreads: 2\n", {1});
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open({.root = dir_.path()}));
  // XGBoost scores each run on one thread: the key is refused, the model does not load.
  Status xgb = repo->Find("pump_xgb", std::nullopt).status();
  EXPECT_EQ(xgb.code(), StatusCode::kUnavailable);
  EXPECT_NE(xgb.message().find("model_threads_backend"), std::string::npos) << xgb.ToString();
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle before, repo->Find("pump_onnx", std::nullopt));

  for (const char* bad : {"threads: 0\n", "threads: 65\n", "threads: many\n"}) {
    OUTPOST_ASSERT_OK(
        WriteFileAtomically(dir + "/config.yaml", std::string("backend: onnx\n") + bad));
    Status load = repo->Load("pump_onnx");
    EXPECT_EQ(load.code(), StatusCode::kUnavailable) << bad;
    EXPECT_NE(load.message().find("model_threads_range"), std::string::npos) << load.ToString();
    // Nothing changed: the same version, model object and config keep serving.
    OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle after, repo->Find("pump_onnx", std::nullopt));
    EXPECT_EQ(after.version, 1);
    EXPECT_EQ(after.model, before.model);
    EXPECT_EQ(after.servable->config->threads, 2);
  }
}

TEST_F(RepositoryTest, OnnxVersionWithoutModelFileIsUnavailable) {
  std::string dir = JoinPath(dir_.path(), "empty");
  OUTPOST_ASSERT_OK(MakeDirectories(dir + "/1"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir + "/config.yaml", "backend: onnx\n"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open({.root = dir_.path()}));
  Status s = repo->Find("empty", 1).status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("no model.onnx"), std::string::npos) << s.ToString();
}

TEST_F(RepositoryTest, KnowsEveryModelItHoldsOrHeldSinceItOpened) {
  AddModel("pump", "backend: xgboost\n", {1});
  AddModel("valve", "backend: xgboost\n", {1});
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open({.root = dir_.path()}));
  EXPECT_TRUE(repo->Knows("pump"));
  EXPECT_TRUE(repo->Knows("valve"));
  EXPECT_FALSE(repo->Knows("ghost"));
  // Unloaded: still held. Its folder removed: no longer served, but it was.
  OUTPOST_ASSERT_OK(repo->Unload("pump"));
  EXPECT_TRUE(repo->Knows("pump"));
  OUTPOST_ASSERT_OK(RemoveTree(JoinPath(dir_.path(), "valve")));
  OUTPOST_EXPECT_OK(repo->Rescan());
  EXPECT_EQ(repo->Find("valve", std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(repo->Knows("valve"));
  EXPECT_FALSE(repo->Knows("ghost"));
}

TEST(Repository, MissingRootIsNotFound) {
  EXPECT_EQ(ModelRepository::Open({.root = "/nonexistent/outpost"}).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace outpost::serve
