#include "train/train_config.h"

#include <gtest/gtest.h>

#include "base/file.h"
#include "base/testing/test_util.h"

namespace outpost::train {
namespace {

constexpr char kFull[] = R"(
features: [a, b]
labels: {ok: 0, fault: 1}
original:
  csv: data/train.csv
xgboost:
  rounds: 20
  params: {max_depth: 3, eta: 0.1}
holdout: {fraction: 0.4, salt: s1}
decision: {metric: logloss, margin: 0.02}
tenant: acme
max_records: 5000
workers: 2
)";

TEST(TrainConfig, ReadsEveryKey) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(TrainConfig c, ParseTrainConfig(kFull, "/etc/outpost"));
  EXPECT_EQ(c.features, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.labels.at("fault"), 1.0f);
  EXPECT_EQ(c.original_csv, "/etc/outpost/data/train.csv");
  EXPECT_EQ(c.xgboost.rounds, 20);
  EXPECT_EQ(c.xgboost.params.at("max_depth"), "3");
  EXPECT_EQ(c.xgboost.params.at("objective"), "binary:logistic");  // defaults kept
  EXPECT_EQ(c.holdout_fraction, 0.4);
  EXPECT_EQ(c.holdout_salt, "s1");
  EXPECT_EQ(c.metric, Metric::kLogloss);
  EXPECT_EQ(c.margin, 0.02);
  EXPECT_EQ(c.tenant, "acme");
  EXPECT_EQ(c.max_records, 5000);
  EXPECT_EQ(c.workers, 2);
}

TEST(TrainConfig, ErrorsNameTheKey) {
  auto error = [](const std::string& yaml) {
    Result<TrainConfig> r = ParseTrainConfig(yaml, ".");
    return r.ok() ? std::string("ok") : std::string(r.status().message());
  };
  const std::string base = "features: [a]\noriginal: {synthetic: {rows: 10}}\n";
  EXPECT_EQ(error(base), "ok");
  EXPECT_EQ(error(base + "holdut: {fraction: 0.2}\n"), "unknown key \"holdut\" in train.yaml");
  EXPECT_EQ(error(base + "holdout: {fraction: 1}\n"), "\"holdout.fraction\" must be in (0, 1)");
  EXPECT_EQ(error(base + "decision: {metric: f1}\n"),
            "unknown metric \"f1\" (auc, accuracy or logloss)");
  EXPECT_EQ(error(base + "workers: 0\n"), "\"workers\" must be between 1 and 64");
  EXPECT_EQ(error(base + "xgboost: {rounds: x}\n"), "\"rounds\" has the wrong type");
  EXPECT_EQ(error("features: [a, a]\noriginal: {csv: x}\n"), "\"features\": \"a\" repeats");
  EXPECT_EQ(error("features: [a]\noriginal: {csv: x, synthetic: {}}\n"),
            "\"original\" needs exactly one of \"csv\" and \"synthetic\"");
  EXPECT_EQ(error("features: [a]\n"), "\"original\" is required");
  EXPECT_NE(error("features: [a\n"), "ok");
}

TEST(TrainConfig, LoadsTheOriginalCsvBesideTheYaml) {
  testing::TempDir dir;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("t.csv"), "a,b,label\n1,2,0\n3,4,1\n"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("train.yaml"),
                                        "features: [b, a]\noriginal: {csv: t.csv}\n"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(TrainConfig c, LoadTrainConfig(dir.File("train.yaml")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(OriginalSet o, LoadOriginalSet(c));
  EXPECT_EQ(o.data.features, (std::vector<float>{2, 1, 4, 3}));
  EXPECT_EQ(o.source, "csv:" + dir.File("t.csv"));
}

}  // namespace
}  // namespace outpost::train
