// RuleSet: a model's insight rules, parsed from the `insight:` section of its config.yaml
// (insight/FORMAT.md section 1).
//
// A RuleSet is immutable once parsed and shared between the loader, the scoring threads and
// the evaluator through std::shared_ptr<const RuleSet>; a model reload parses a new one.
//
//   OUTPOST_ASSIGN_OR_RETURN(auto rules, insight::ParseInsightConfig(config_yaml_text));
//   OUTPOST_RETURN_IF_ERROR(insight::CheckSignature(*rules, model->signature()));
#ifndef OUTPOST_INSIGHT_RULES_H_
#define OUTPOST_INSIGHT_RULES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/tensor.h"

namespace outpost::insight {

// How a row's score is derived from its K output values (FORMAT.md section 1, "Scores").
enum class ScoreKind { kValue, kMaxProbability, kMargin, kReconstructionError };

// "value", "max_probability", "margin", "reconstruction_error".
std::string_view ScoreKindName(ScoreKind kind);

struct ScoreSpec {
  ScoreKind kind = ScoreKind::kValue;
  int64_t column = 0;  // the output column, for kValue
};

// The input columns a record carries: every column, or these indices (in the order `fields`
// names them) into RuleSet::features.
struct FieldList {
  bool all = false;
  std::vector<int> columns;
};

struct AnomalyRule {
  std::string name;
  ScoreSpec score;
  std::optional<double> above;  // anomalous when score > above
  std::optional<double> below;  // anomalous when score < below
  FieldList fields;
};

struct HardExampleRule {
  std::string name;
  std::optional<double> confidence_below;  // max_probability < this
  std::optional<double> margin_below;      // margin < this
  FieldList fields;
};

// The baseline histogram of one feature: bin i holds edges[i-1] <= v < edges[i].
struct FeatureBaseline {
  int feature = 0;                // index into RuleSet::features
  std::vector<double> edges;      // ascending, at least one
  std::vector<double> fractions;  // edges.size() + 1 values, summing to 1
};

struct DriftRule {
  std::string name;
  size_t window = 0;  // readings per feature
  double level = 0;   // PSI at or above which drift is raised
  std::vector<FeatureBaseline> baseline;
};

struct SampleRule {
  std::string name;
  double rate = 0;  // in [0, 1]
  FieldList fields;
};

struct AggregateSpec {
  bool enabled = true;
  ScoreSpec score;
  std::vector<double> edges;  // ascending histogram edges of the score
};

struct RuleSet {
  // Input and output tensor names; empty = the model's first input / output.
  std::string input;
  std::string output;
  // Column names of the input. Empty when the config gave none: the columns are then
  // called f0, f1, ... and any rule naming fields forces `features` to be filled with
  // those names up to the highest one named (so a field index is always valid here).
  std::vector<std::string> features;
  // Whether `features` came from the config (then the input must have exactly that many
  // columns) or was made up from f<i> names (then it must have at least that many).
  bool features_declared = false;

  std::vector<AnomalyRule> anomalies;
  std::vector<HardExampleRule> hard_examples;
  std::vector<DriftRule> drifts;
  std::vector<SampleRule> samples;
  AggregateSpec aggregate;

  // True when the section has no rule (aggregates may still be on).
  bool has_rules() const {
    return !anomalies.empty() || !hard_examples.empty() || !drifts.empty() || !samples.empty();
  }
};

// Limits (FORMAT.md section 1).
inline constexpr size_t kMaxRules = 64;
inline constexpr size_t kMaxFeatures = 4096;
inline constexpr size_t kMaxEdges = 1000;
inline constexpr size_t kMaxWindow = 1'000'000;
inline constexpr size_t kMinWindow = 10;
// A drift rule's window times its baseline features (4 bytes of memory each).
inline constexpr size_t kMaxWindowReadings = 16'000'000;

// Parses a whole config.yaml and reads its `insight` key; a config without one gives an
// empty RuleSet (aggregates on with the default edges). Other keys of the config are not
// looked at (serve/model_config.h checks them). InvalidArgument naming the offending key
// ("insight.rules[2].window: ...") for malformed YAML or a mistake in the section.
Result<std::shared_ptr<const RuleSet>> ParseInsightConfig(std::string_view config_yaml);

// Parses the text of the section alone (what sits under `insight:`). Errors as above.
Result<std::shared_ptr<const RuleSet>> ParseInsightSection(std::string_view section_yaml);

// Checks that a model's signature can feed `rules`: the named (or first) input and output
// exist, the input is numeric with rank 1 or 2 and, when its column count is fixed, agrees
// with `features`; the output is numeric with rank 1 or 2 and its fixed column count covers
// the score columns. InvalidArgument naming the mismatch. Serve calls this at load time so
// that a config that cannot work is refused with the model rather than at every batch.
Status CheckSignature(const RuleSet& rules, const engine::Signature& signature);

}  // namespace outpost::insight

#endif  // OUTPOST_INSIGHT_RULES_H_
