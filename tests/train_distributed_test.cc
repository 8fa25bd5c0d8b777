// Distributed training on XGBoost's own engine: two `outpost train --worker` processes and
// XGBoost's Rabit tracker on loopback reach the quality of one process, and end with the same
// model, which no single shard alone would give.
#include <gtest/gtest.h>

#include "base/file.h"
#include "base/testing/test_util.h"
#include "train/distributed.h"
#include "train/evaluate.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost::train {
namespace {

Dataset Pumps(int64_t rows, uint64_t seed) {
  auto d = MakePumpReadings({.rows = rows, .seed = seed, .fault_rate = 0.1});
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return std::move(d).value();
}

double HoldoutAuc(const std::string& model, const Dataset& holdout) {
  auto p = ReferencePredict(model, holdout.features, holdout.rows, holdout.cols());
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  auto m = EvaluateBinary(p->values, holdout.labels);
  EXPECT_TRUE(m.ok());
  return m->auc.value_or(0);
}

std::vector<std::string> WorkerCommand() {
  return {JoinPath(testing::BinaryDir(), "outpost"), "train", "--worker"};
}

TEST(TrainDistributed, TwoWorkersOnLoopbackMatchOneProcess) {
  Dataset data = Pumps(4000, 1);
  Dataset holdout = Pumps(2000, 2);
  TrainOptions options{.rounds = 30};

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto single, TrainXGBoost(data, options));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string single_json, single->Serialize(ModelFormat::kJson));

  testing::TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      DistributedResult result,
      TrainDistributed(data, options,
                       {.workers = 2, .worker_command = WorkerCommand(), .work_dir = dir.path()}));
  EXPECT_EQ(result.workers, 2);
  EXPECT_EQ(result.shard_rows, (std::vector<int64_t>{2000, 2000}));
  // The workers' own files, compared here as well as by TrainDistributed.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string m0, ReadFile(dir.File("model-0.json")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string m1, ReadFile(dir.File("model-1.json")));
  EXPECT_EQ(m0, m1);
  EXPECT_EQ(m0, result.model_json);

  // Each worker saw only its half: without the collective, the two models would differ, and
  // each would equal a model trained on its shard alone.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string shard_bytes, ReadFile(dir.File("shard-0.opds")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset shard0, DecodeDataset(shard_bytes));
  EXPECT_EQ(shard0.rows, 2000);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto alone, TrainXGBoost(shard0, options));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string alone_json, alone->Serialize(ModelFormat::kJson));
  EXPECT_NE(alone_json, result.model_json);

  const double auc_single = HoldoutAuc(single_json, holdout);
  const double auc_distributed = HoldoutAuc(result.model_json, holdout);
  const double auc_half = HoldoutAuc(alone_json, holdout);
  std::printf("holdout AUC: one process %.4f, two workers %.4f, one shard alone %.4f\n",
              auc_single, auc_distributed, auc_half);
  EXPECT_GT(auc_single, 0.8);
  EXPECT_NEAR(auc_distributed, auc_single, 0.01);
}

TEST(TrainDistributed, AFailingWorkerFailsTheJobWithoutHanging) {
  Dataset data = Pumps(200, 3);
  testing::TempDir dir;
  // Worker 1 dies before it joins; worker 0 has joined and would wait on the collective for
  // it forever if the coordinator did not kill it.
  const std::string script =
      "case \"$*\" in *'--task-id 1 '*) exit 3;; esac; exec \"$0\" train --worker \"$@\"";
  DistributedOptions options{
      .workers = 2,
      .worker_command = {"/bin/sh", "-c", script, JoinPath(testing::BinaryDir(), "outpost")},
      .work_dir = dir.path()};
  Result<DistributedResult> failed = TrainDistributed(data, {.rounds = 3}, options);
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(failed.status().message().find("training worker 1 exited with 3"), std::string::npos)
      << failed.status().ToString();
}

TEST(TrainDistributed, BadOptionsAreRefused) {
  Dataset data = Pumps(10, 4);
  testing::TempDir dir;
  EXPECT_EQ(TrainDistributed(data, {}, {.workers = 0, .worker_command = WorkerCommand(),
                                        .work_dir = dir.path()})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TrainDistributed(data, {}, {.workers = 11, .worker_command = WorkerCommand(),
                                        .work_dir = dir.path()})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace outpost::train
