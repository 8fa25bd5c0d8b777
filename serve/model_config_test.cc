#include "serve/model_config.h"

#include <gtest/gtest.h>

#include "base/testing/test_util.h"

namespace outpost::serve {
namespace {

using engine::DataType;

TEST(ModelConfig, ParsesEveryKey) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig(R"(
name: pump
backend: xgboost
version_policy: {latest: 2}
max_batch_size: 64
inputs:
  - {name: features, datatype: FP32, shape: [-1, 8]}
outputs:
  - {name: fault, datatype: FP32, shape: [-1]}
parameters: {predict: margin}
insight: {anything: goes}
)", "pump"));
  EXPECT_EQ(c.name, "pump");
  EXPECT_EQ(c.backend, "xgboost");
  EXPECT_EQ(c.version_policy.kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(c.version_policy.latest, 2);
  EXPECT_EQ(c.max_batch_size, 64);
  ASSERT_EQ(c.inputs.size(), 1u);
  EXPECT_EQ(c.inputs[0].name, "features");
  EXPECT_EQ(c.inputs[0].type, DataType::kFp32);
  EXPECT_EQ(c.inputs[0].shape, (engine::Shape{-1, 8}));
  EXPECT_EQ(c.outputs[0].shape, (engine::Shape{-1}));
  EXPECT_EQ(c.parameters.at("predict"), "margin");
}

TEST(ModelConfig, DefaultsToLatestOneAndFolderName) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig("backend: onnx\n", "m"));
  EXPECT_EQ(c.name, "m");
  EXPECT_EQ(c.version_policy.kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(c.version_policy.latest, 1);
  EXPECT_TRUE(c.inputs.empty());
}

TEST(ModelConfig, RejectsMistakesWithTheirKey) {
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"", "empty"},
      {"- a\n- b\n", "map"},
      {"backend: xgboost\nbackedn: x\n", "backedn"},
      {"backend: tensorflow\n", "tensorflow"},
      {"name: other\nbackend: xgboost\n", "differs"},
      {"backend: xgboost\nversion_policy: {latest: 0}\n", "at least 1"},
      {"backend: xgboost\nversion_policy: {latest: 1, all: true}\n", "exactly one"},
      {"backend: xgboost\nversion_policy: {specific: []}\n", "non-empty"},
      {"backend: xgboost\ninputs: [{name: x, datatype: FP33, shape: [1]}]\n", "FP33"},
      {"backend: xgboost\ninputs: [{name: x, datatype: FP32, shape: [-2]}]\n", "variable"},
      {"backend: xgboost\ninputs: [{name: x, datatype: FP32}]\n", "shape"},
      {"backend: xgboost\ninputs: [{name: x, datatype: FP32, shape: [1]}, "
       "{name: x, datatype: FP32, shape: [1]}]\n",
       "twice"},
      {"backend: xgboost\nmax_batch_size: lots\n", "config.yaml"},
      {"backend: [unclosed\n", "config.yaml"},
  };
  for (const Case& c : cases) {
    Result<ModelConfig> r = ParseModelConfig(c.yaml, "pump");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.yaml << " -> " << r.status().ToString();
  }
}

TEST(ModelConfig, ParsesBatching) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig(R"(
backend: xgboost
max_batch_size: 16
batching:
  preferred_batch_sizes: [16, 4, 8, 4]
  max_queue_delay_microseconds: 250
  instance_count: 3
  max_queue_size: 12
  default_timeout_microseconds: 5000
)", "pump"));
  EXPECT_EQ(c.max_batch_size, 16);
  EXPECT_EQ(c.batching.preferred_batch_sizes, (std::vector<int64_t>{4, 8, 16}));
  EXPECT_EQ(c.batching.max_queue_delay_microseconds, 250);
  EXPECT_EQ(c.batching.instance_count, 3);
  EXPECT_EQ(c.batching.max_queue_size, 12);
  EXPECT_EQ(c.batching.default_timeout_microseconds, 5000);

  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig d, ParseModelConfig("backend: onnx\n", "m"));
  EXPECT_EQ(d.max_batch_size, 0);
  EXPECT_TRUE(d.batching.preferred_batch_sizes.empty());
  EXPECT_EQ(d.batching.instance_count, 0);
  EXPECT_EQ(d.batching.max_queue_size, 256);
}

TEST(ModelConfig, RejectsBatchingMistakesWithTheirKey) {
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"backend: onnx\nbatching: 3\n", "batching must be a map"},
      {"backend: onnx\nbatching: {max_delay: 3}\n", "max_delay"},
      {"backend: onnx\nmax_batch_size: 4\nbatching: {preferred_batch_sizes: [8]}\n",
       "preferred_batch_sizes"},
      {"backend: onnx\nmax_batch_size: 4\nbatching: {preferred_batch_sizes: [0]}\n",
       "preferred_batch_sizes"},
      {"backend: onnx\nbatching: {max_queue_size: 0}\n", "max_queue_size"},
      {"backend: onnx\nbatching: {instance_count: -1}\n", "instance_count"},
      {"backend: onnx\nbatching: {instance_count: 5000}\n", "instance_count"},
      {"backend: onnx\nbatching: {max_queue_delay_microseconds: 2000000}\n",
       "max_queue_delay_microseconds"},
      {"backend: onnx\nbatching: {default_timeout_microseconds: -5}\n",
       "default_timeout_microseconds"},
      {"backend: onnx\nmax_batch_size: 99999999\n", "max_batch_size"},
  };
  for (const Case& c : cases) {
    Result<ModelConfig> r = ParseModelConfig(c.yaml, "m");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.yaml << " -> " << r.status().ToString();
  }
}

TEST(ModelConfig, ParsesThreadsForOnnxAndLeavesThemUnsetWhenAbsent) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig("backend: onnx\nthreads: 4\n", "m"));
  EXPECT_EQ(c.threads, 4);
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig low,
                               ParseModelConfig("backend: onnx\nthreads: 1\n", "m"));
  EXPECT_EQ(low.threads, 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig high,
                               ParseModelConfig("backend: onnx\nthreads: 64\n", "m"));
  EXPECT_EQ(high.threads, kMaxModelThreads);
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig absent, ParseModelConfig("backend: onnx\n", "m"));
  EXPECT_EQ(absent.threads, 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig xgb, ParseModelConfig("backend: xgboost\n", "m"));
  EXPECT_EQ(xgb.threads, 0);
}

TEST(ModelConfig, RefusesThreadsOutOfRangeOrForXGBoostWithTheirReason) {
  struct Case {
    const char* yaml;
    const char* reason;
  } cases[] = {
      {"backend: onnx\nthreads: 0\n", "model_threads_range"},
      {"backend: onnx\nthreads: -2\n", "model_threads_range"},
      {"backend: onnx\nthreads: 65\n", "model_threads_range"},
      {"backend: onnx\nthreads: 99999999999999999999\n", "model_threads_range"},
      {"backend: onnx\nthreads: 2.5\n", "model_threads_range"},
      {"backend: onnx\nthreads: two\n", "model_threads_range"},
      {"backend: onnx\nthreads: [2]\n", "model_threads_range"},
      {"backend: onnx\nthreads: {n: 2}\n", "model_threads_range"},
      {"backend: xgboost\nthreads: 2\n", "model_threads_backend"},
  };
  for (const Case& c : cases) {
    Result<ModelConfig> r = ParseModelConfig(c.yaml, "m");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_EQ(r.status().reason(), c.reason) << c.yaml << " -> " << r.status().ToString();
    EXPECT_NE(r.status().message().find("threads"), std::string::npos) << r.status().ToString();
  }
}

TEST(ModelConfig, IntraOpThreadsDefaultToTheBudgetSharedByInstances) {
  ModelConfig c;
  c.backend = "onnx";
  // Absent: max(1, budget / instances), so that instances x threads <= budget.
  EXPECT_EQ(IntraOpThreadsFor(c, 1, 4), 4);
  EXPECT_EQ(IntraOpThreadsFor(c, 2, 4), 2);
  EXPECT_EQ(IntraOpThreadsFor(c, 3, 8), 2);
  EXPECT_EQ(IntraOpThreadsFor(c, 4, 4), 1);
  EXPECT_EQ(IntraOpThreadsFor(c, 8, 4), 1);
  EXPECT_EQ(IntraOpThreadsFor(c, 1, 1024), kMaxModelThreads);
  EXPECT_EQ(IntraOpThreadsFor(c, 0, 0), 1);
  for (int instances = 1; instances <= 16; ++instances) {
    for (int budget = 1; budget <= 64; ++budget) {
      const int threads = IntraOpThreadsFor(c, instances, budget);
      EXPECT_GE(threads, 1);
      if (instances <= budget) {
        EXPECT_LE(instances * threads, budget) << instances << " x " << threads;
      }
    }
  }
  // Given: used as written, whatever the budget.
  c.threads = 3;
  EXPECT_EQ(IntraOpThreadsFor(c, 4, 4), 3);
  EXPECT_EQ(IntraOpThreadsFor(c, 1, 64), 3);
}

TEST(VersionPolicy, SelectsAsTritonDoes) {
  VersionPolicy latest2{.kind = VersionPolicy::Kind::kLatest, .latest = 2};
  EXPECT_EQ(latest2.Select({3, 1, 7}), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(latest2.Select({5}), (std::vector<int64_t>{5}));
  VersionPolicy all{.kind = VersionPolicy::Kind::kAll};
  EXPECT_EQ(all.Select({2, 1}), (std::vector<int64_t>{1, 2}));
  VersionPolicy specific{.kind = VersionPolicy::Kind::kSpecific, .versions = {1, 4}};
  EXPECT_EQ(specific.Select({1, 2, 3}), (std::vector<int64_t>{1, 4}));
}

}  // namespace
}  // namespace outpost::serve
