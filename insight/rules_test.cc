#include "insight/rules.h"

#include <gtest/gtest.h>

#include <string>

#include "base/testing/test_util.h"

namespace outpost::insight {
namespace {

constexpr char kFullConfig[] = R"(
name: pump
backend: xgboost
insight:
  input: features
  output: probability
  features: [temp, vib, pressure]
  rules:
    - name: fault_likely
      kind: anomaly
      score: value
      above: 0.9
      fields: [vib, temp]
    - name: unsure
      kind: hard_example
      margin_below: 0.2
      fields: all
    - name: moved
      kind: drift
      window: 100
      level: 0.25
      baseline:
        temp: {edges: [10, 20], fractions: [0.25, 0.5, 0.25]}
    - name: traffic
      kind: sample
      rate: 0.05
  aggregate:
    score: max_probability
    edges: [0.5, 0.75]
)";

TEST(Rules, ParsesEveryRuleKindFromAWholeConfig) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto rules, ParseInsightConfig(kFullConfig));
  EXPECT_EQ(rules->input, "features");
  EXPECT_EQ(rules->output, "probability");
  ASSERT_EQ(rules->features.size(), 3u);
  ASSERT_EQ(rules->anomalies.size(), 1u);
  EXPECT_EQ(rules->anomalies[0].name, "fault_likely");
  EXPECT_EQ(*rules->anomalies[0].above, 0.9);
  EXPECT_FALSE(rules->anomalies[0].below.has_value());
  EXPECT_EQ(rules->anomalies[0].fields.columns, (std::vector<int>{1, 0}));
  ASSERT_EQ(rules->hard_examples.size(), 1u);
  EXPECT_TRUE(rules->hard_examples[0].fields.all);
  EXPECT_EQ(*rules->hard_examples[0].margin_below, 0.2);
  ASSERT_EQ(rules->drifts.size(), 1u);
  EXPECT_EQ(rules->drifts[0].window, 100u);
  ASSERT_EQ(rules->drifts[0].baseline.size(), 1u);
  EXPECT_EQ(rules->drifts[0].baseline[0].feature, 0);
  EXPECT_EQ(rules->drifts[0].baseline[0].fractions.size(), 3u);
  ASSERT_EQ(rules->samples.size(), 1u);
  EXPECT_EQ(rules->samples[0].rate, 0.05);
  EXPECT_TRUE(rules->samples[0].fields.columns.empty());
  EXPECT_FALSE(rules->samples[0].fields.all);
  EXPECT_EQ(rules->aggregate.score.kind, ScoreKind::kMaxProbability);
  EXPECT_EQ(rules->aggregate.edges, (std::vector<double>{0.5, 0.75}));
}

TEST(Rules, ConfigWithoutInsightHasNoRulesButAggregates) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto rules, ParseInsightConfig("backend: xgboost\n"));
  EXPECT_FALSE(rules->has_rules());
  EXPECT_TRUE(rules->aggregate.enabled);
  EXPECT_EQ(rules->aggregate.edges.size(), 9u);
}

TEST(Rules, SectionTextParsesAlone) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto rules,
                               ParseInsightSection("rules: [{name: s, kind: sample, rate: 1}]"));
  ASSERT_EQ(rules->samples.size(), 1u);
}

TEST(Rules, UndeclaredFeaturesAreNamedByColumn) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto rules, ParseInsightSection("rules: [{name: a, kind: anomaly, below: 0, fields: [f2]}]"));
  EXPECT_FALSE(rules->features_declared);
  EXPECT_EQ(rules->features, (std::vector<std::string>{"f0", "f1", "f2"}));
  EXPECT_EQ(rules->anomalies[0].fields.columns, (std::vector<int>{2}));
}

// Each mistake is refused with InvalidArgument and a message that names the key.
TEST(Rules, MistakesNameTheirKey) {
  struct Case {
    const char* yaml;
    const char* key;
  };
  const Case cases[] = {
      {"rulez: []", "insight.rulez"},
      {"rules: [{name: a, kind: anomaly}]", "insight.rules[0]"},
      {"rules: [{name: a, kind: anomaly, above: x}]", "insight.rules[0].above"},
      {"rules: [{name: a, kind: anomaly, above: 1, below: 2}]", "insight.rules[0].below"},
      {"rules: [{name: a, kind: anomaly, above: 1, treshold: 2}]", "insight.rules[0].treshold"},
      {"rules: [{name: a, kind: anomaly, above: 1, score: entropy}]", "insight.rules[0].score"},
      {"rules: [{name: a, kind: anomaly, above: 1, fields: [nope]}]", "insight.rules[0].fields[0]"},
      {"features: [a, b]\nrules: [{name: x, kind: sample, rate: 1, fields: [c]}]",
       "insight.rules[0].fields[0]"},
      {"features: [a, a]", "insight.features[1]"},
      {"rules: [{name: a, kind: sample, rate: 1.5}]", "insight.rules[0].rate"},
      {"rules: [{name: a, kind: sample}]", "insight.rules[0]"},
      {"rules: [{name: a, kind: hard_example}]", "insight.rules[0]"},
      {"rules: [{name: a, kind: cluster}]", "insight.rules[0].kind"},
      {"rules: [{name: 'bad name', kind: sample, rate: 1}]", "insight.rules[0].name"},
      {"rules: [{name: a, kind: sample, rate: 1}, {name: a, kind: sample, rate: 1}]",
       "insight.rules[1].name"},
      {"rules: [{name: d, kind: drift, window: 5, level: 1, baseline: {f0: {edges: [1], "
       "fractions: [0.5, 0.5]}}}]",
       "insight.rules[0].window"},
      {"rules: [{name: d, kind: drift, window: 50, level: 0, baseline: {f0: {edges: [1], "
       "fractions: [0.5, 0.5]}}}]",
       "insight.rules[0].level"},
      {"rules: [{name: d, kind: drift, window: 50, level: 1, baseline: {f0: {edges: [2, 1], "
       "fractions: [0.5, 0.25, 0.25]}}}]",
       "insight.rules[0].baseline.f0.edges"},
      {"rules: [{name: d, kind: drift, window: 50, level: 1, baseline: {f0: {edges: [1], "
       "fractions: [0.5, 0.6]}}}]",
       "insight.rules[0].baseline.f0.fractions"},
      {"rules: [{name: d, kind: drift, window: 50, level: 1, baseline: {f0: {edges: [1], "
       "fractions: [1]}}}]",
       "insight.rules[0].baseline.f0.fractions"},
      {"aggregate: {enabled: maybe}", "insight.aggregate.enabled"},
      {"aggregate: {score: margin, column: 1}", "insight.aggregate.column"},
      {"[1, 2]", "insight"},
  };
  for (const Case& c : cases) {
    auto r = ParseInsightSection(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_NE(r.status().message().find(std::string(c.key) + ":"), std::string_view::npos)
        << c.yaml << " -> " << r.status().ToString();
  }
}

TEST(Rules, MalformedYamlIsInvalidArgument) {
  auto r = ParseInsightConfig("insight: {rules: [");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  auto s = ParseInsightConfig("- just\n- a list\n");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

TEST(Rules, TooManyRulesAreRefused) {
  std::string yaml = "rules:\n";
  for (size_t i = 0; i <= kMaxRules; ++i) {
    yaml += "  - {name: s" + std::to_string(i) + ", kind: sample, rate: 0.1}\n";
  }
  auto r = ParseInsightSection(yaml);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("insight.rules"), std::string_view::npos);
}

TEST(Rules, DriftWindowMemoryIsBounded) {
  std::string yaml = "rules: [{name: d, kind: drift, window: 1000000, level: 1, baseline: {";
  for (int f = 0; f < 17; ++f) {
    yaml += (f ? ", f" : "f") + std::to_string(f) + ": {edges: [1], fractions: [0.5, 0.5]}";
  }
  yaml += "}}]";
  auto r = ParseInsightSection(yaml);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("insight.rules[0].baseline:"), std::string_view::npos)
      << r.status().ToString();
}

engine::Signature PumpSignature(int64_t cols) {
  return engine::Signature{
      .inputs = {{.name = "features", .type = engine::DataType::kFp32, .shape = {-1, cols}}},
      .outputs = {{.name = "probability", .type = engine::DataType::kFp32, .shape = {-1}}}};
}

TEST(Rules, SignatureMustFeedTheRules) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto rules, ParseInsightConfig(kFullConfig));
  OUTPOST_EXPECT_OK(CheckSignature(*rules, PumpSignature(3)));
  Status wrong_cols = CheckSignature(*rules, PumpSignature(4));
  EXPECT_EQ(wrong_cols.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_cols.message().find("insight.features"), std::string_view::npos);

  engine::Signature other = PumpSignature(3);
  other.outputs[0].name = "label";
  Status no_output = CheckSignature(*rules, other);
  EXPECT_NE(no_output.message().find("insight.output"), std::string_view::npos);

  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto col5, ParseInsightSection("rules: [{name: a, kind: anomaly, column: 5, above: 1}]"));
  EXPECT_EQ(CheckSignature(*col5, PumpSignature(3)).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace outpost::insight
