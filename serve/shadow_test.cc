// The `shadow:` section of config.yaml, and config.yaml after a shadow's outcome.
#include <gtest/gtest.h>

#include "base/testing/test_util.h"
#include "serve/model_config.h"
#include "serve/shadow.h"

namespace outpost::serve {
namespace {

constexpr std::string_view kConfig = R"(backend: xgboost
version_policy: {latest: 1}
max_batch_size: 8
shadow:
  version: 3
  decision_threshold: 0.4
  tolerance: 0.05
  promote: {min_requests: 200, min_agreement: 0.9, min_labelled: 20, min_accuracy_gain: 0.01}
)";

TEST(ShadowConfig, Parsed) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig config, ParseModelConfig(kConfig, "pump"));
  EXPECT_EQ(config.shadow.version, 3);
  EXPECT_DOUBLE_EQ(config.shadow.decision_threshold, 0.4);
  EXPECT_DOUBLE_EQ(config.shadow.tolerance, 0.05);
  EXPECT_EQ(config.shadow.promote.min_requests, 200);
  EXPECT_DOUBLE_EQ(config.shadow.promote.min_agreement, 0.9);
  EXPECT_EQ(config.shadow.promote.min_labelled, 20);
  EXPECT_DOUBLE_EQ(config.shadow.promote.min_accuracy_gain, 0.01);
}

TEST(ShadowConfig, AbsentMeansNoShadow) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig config, ParseModelConfig("backend: xgboost\n", "m"));
  EXPECT_EQ(config.shadow.version, 0);
}

TEST(ShadowConfig, DefaultsOfTheRule) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      ModelConfig config, ParseModelConfig("backend: xgboost\nshadow: {version: 2}\n", "m"));
  EXPECT_EQ(config.shadow.version, 2);
  EXPECT_DOUBLE_EQ(config.shadow.decision_threshold, 0.5);
  EXPECT_EQ(config.shadow.promote.min_requests, 200);
  EXPECT_EQ(config.shadow.promote.min_labelled, 20);
}

TEST(ShadowConfig, BadSectionsAreRejectedByName) {
  struct Case {
    const char* yaml;
    const char* message;
  };
  const Case cases[] = {
      {"shadow: 3", "shadow must be a map"},
      {"shadow: {}", "shadow needs a version"},
      {"shadow: {version: 0}", "shadow.version must be a positive integer"},
      {"shadow: {version: x}", "config.yaml"},
      {"shadow: {version: 2, verison: 3}", "unknown key \"verison\" in shadow"},
      {"shadow: {version: 2, tolerance: -1}", "tolerance"},
      {"shadow: {version: 2, promote: 1}", "shadow.promote must be a map"},
      {"shadow: {version: 2, promote: {min_agreement: 1.5}}", "min_agreement"},
      {"shadow: {version: 2, promote: {min_requests: 0}}", "min_requests"},
      {"shadow: {version: 2, promote: {min_labelled: -1}}", "min_labelled"},
      {"shadow: {version: 2, promote: {min_accuracy_gain: 2}}", "min_accuracy_gain"},
      {"shadow: {version: 2, promote: {min_gain: 0}}", "unknown key \"min_gain\""},
  };
  for (const Case& c : cases) {
    Result<ModelConfig> config =
        ParseModelConfig(std::string("backend: xgboost\n") + c.yaml + "\n", "m");
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_NE(config.status().message().find(c.message), std::string::npos)
        << c.yaml << ": " << config.status().message();
  }
}

TEST(ShadowConfig, AfterTheOutcomeOnlyTheWinnerIsNamed) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string text, ConfigAfterShadow(kConfig, "pump", {3}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelConfig config, ParseModelConfig(text, "pump"));
  EXPECT_EQ(config.shadow.version, 0);
  EXPECT_EQ(config.version_policy.kind, VersionPolicy::Kind::kSpecific);
  EXPECT_EQ(config.version_policy.versions, std::vector<int64_t>{3});
  EXPECT_EQ(config.max_batch_size, 8);  // the rest is kept
  EXPECT_EQ(config.backend, "xgboost");

  EXPECT_FALSE(ConfigAfterShadow("backend: [", "pump", {3}).ok());
  EXPECT_FALSE(ConfigAfterShadow(kConfig, "pump", {}).ok());
}

TEST(ShadowOutcome, Names) {
  EXPECT_EQ(ShadowOutcomeName(ShadowOutcome::kPending), "pending");
  EXPECT_EQ(ShadowOutcomeName(ShadowOutcome::kPromoted), "promoted");
  EXPECT_EQ(ShadowOutcomeName(ShadowOutcome::kDropped), "dropped");
}

}  // namespace
}  // namespace outpost::serve
