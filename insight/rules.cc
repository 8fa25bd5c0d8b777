// The insight rules of config.yaml (rules.h), read through the YAML adapter (base/yaml/yaml.h).
#include "insight/rules.h"

#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "base/names.h"
#include "base/yaml/yaml.h"

namespace outpost::insight {
namespace {

constexpr size_t kMaxName = 256;

Status Error(const std::string& path, std::string_view what) {
  return InvalidArgumentError(path + ": " + std::string(what));
}

Status CheckKeys(const yaml::Node& node, const std::set<std::string>& allowed,
                 const std::string& path) {
  for (const auto& kv : node.entries()) {
    if (!kv.first.IsScalar()) return Error(path, "keys must be plain names");
    std::string key = kv.first.scalar();
    if (!allowed.count(key)) return Error(path + "." + key, "unknown key");
  }
  return Status();
}

Result<double> GetDouble(const yaml::Node& node, const std::string& path) {
  double v = 0;
  if (!node.IsScalar() || !node.Decode(v) || !std::isfinite(v)) {
    return Error(path, "must be a finite number");
  }
  return v;
}

Result<int64_t> GetInt(const yaml::Node& node, const std::string& path, int64_t lo, int64_t hi) {
  int64_t v = 0;
  if (!node.IsScalar() || !node.Decode(v)) {
    return Error(path, "must be an integer");
  }
  if (v < lo || v > hi) {
    return Error(path, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  }
  return v;
}

Result<bool> GetBool(const yaml::Node& node, const std::string& path) {
  bool v = false;
  if (!node.IsScalar() || !node.Decode(v)) {
    return Error(path, "must be true or false");
  }
  return v;
}

Result<std::string> GetName(const yaml::Node& node, const std::string& path, size_t max_len) {
  if (!node.IsScalar()) return Error(path, "must be a name");
  const std::string& s = node.scalar();
  if (s.empty() || s.size() > max_len) {
    return Error(path, "must have 1 to " + std::to_string(max_len) + " characters");
  }
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Error(path, "has a control character");
    }
  }
  return s;
}

Result<std::vector<double>> GetEdges(const yaml::Node& node, const std::string& path) {
  if (!node.IsSequence() || node.size() == 0 || node.size() > kMaxEdges) {
    return Error(path, "must be a list of 1 to " + std::to_string(kMaxEdges) + " numbers");
  }
  std::vector<double> edges;
  for (size_t i = 0; i < node.size(); ++i) {
    OUTPOST_ASSIGN_OR_RETURN(double v, GetDouble(node[i], path + "[" + std::to_string(i) + "]"));
    if (!edges.empty() && !(v > edges.back())) return Error(path, "must be strictly ascending");
    edges.push_back(v);
  }
  return edges;
}

// Resolves feature names to column indices. When the config declares no `features`, names
// must be f<i>, and `features` grows to cover the highest one named.
class FeatureNames {
 public:
  explicit FeatureNames(RuleSet& rules) : rules_(rules) {
    for (size_t i = 0; i < rules.features.size(); ++i) {
      index_[rules.features[i]] = static_cast<int>(i);
    }
  }

  Result<int> Resolve(const std::string& name, const std::string& path) {
    if (rules_.features_declared) {
      auto it = index_.find(name);
      if (it == index_.end()) return Error(path, "\"" + name + "\" is not one of `features`");
      return it->second;
    }
    int64_t i = -1;
    if (name.size() >= 2 && name.size() <= 5 && name[0] == 'f' &&
        name.find_first_not_of("0123456789", 1) == std::string::npos &&
        (name.size() == 2 || name[1] != '0')) {
      i = std::stoll(name.substr(1));
    }
    if (i < 0 || i >= static_cast<int64_t>(kMaxFeatures)) {
      return Error(path,
                   "\"" + name + "\" is not a column name (f0, f1, ...; or declare `features`)");
    }
    while (rules_.features.size() <= static_cast<size_t>(i)) {
      rules_.features.push_back("f" + std::to_string(rules_.features.size()));
    }
    return static_cast<int>(i);
  }

 private:
  RuleSet& rules_;
  std::map<std::string, int> index_;
};

Result<FieldList> GetFields(const yaml::Node& node, const std::string& path, FeatureNames& names) {
  FieldList out;
  if (!node) return out;
  if (node.IsScalar() && node.scalar() == "all") {
    out.all = true;
    return out;
  }
  if (!node.IsSequence() || node.size() > kMaxFeatures) {
    return Error(path, "must be `all` or a list of feature names");
  }
  std::set<int> seen;
  for (size_t i = 0; i < node.size(); ++i) {
    std::string p = path + "[" + std::to_string(i) + "]";
    OUTPOST_ASSIGN_OR_RETURN(std::string name, GetName(node[i], p, kMaxName));
    OUTPOST_ASSIGN_OR_RETURN(int col, names.Resolve(name, p));
    if (!seen.insert(col).second) return Error(p, "\"" + name + "\" is named twice");
    out.columns.push_back(col);
  }
  return out;
}

Result<ScoreSpec> GetScore(const yaml::Node& map, const std::string& path) {
  ScoreSpec spec;
  if (const yaml::Node& s = map["score"]) {
    if (!s.IsScalar()) return Error(path + ".score", "must be a score name");
    const std::string& v = s.scalar();
    if (v == "value") {
      spec.kind = ScoreKind::kValue;
    } else if (v == "max_probability") {
      spec.kind = ScoreKind::kMaxProbability;
    } else if (v == "margin") {
      spec.kind = ScoreKind::kMargin;
    } else if (v == "reconstruction_error") {
      spec.kind = ScoreKind::kReconstructionError;
    } else {
      return Error(path + ".score",
                   "\"" + v + "\" is not value, max_probability, margin or reconstruction_error");
    }
  }
  if (const yaml::Node& c = map["column"]) {
    if (spec.kind != ScoreKind::kValue)
      return Error(path + ".column", "only goes with score: value");
    OUTPOST_ASSIGN_OR_RETURN(spec.column, GetInt(c, path + ".column", 0, 1 << 20));
  }
  return spec;
}

Status ParseAnomaly(const yaml::Node& n, const std::string& path, std::string name,
                    FeatureNames& names, RuleSet& rules) {
  OUTPOST_RETURN_IF_ERROR(
      CheckKeys(n, {"name", "kind", "score", "column", "above", "below", "fields"}, path));
  AnomalyRule r{.name = std::move(name)};
  OUTPOST_ASSIGN_OR_RETURN(r.score, GetScore(n, path));
  if (n["above"]) {
    OUTPOST_ASSIGN_OR_RETURN(r.above, GetDouble(n["above"], path + ".above"));
  }
  if (n["below"]) {
    OUTPOST_ASSIGN_OR_RETURN(r.below, GetDouble(n["below"], path + ".below"));
  }
  if (!r.above && !r.below) return Error(path, "an anomaly rule needs `above`, `below` or both");
  if (r.above && r.below && !(*r.below <= *r.above)) {
    return Error(path + ".below",
                 "must not be greater than `above` (the normal band is [below, above])");
  }
  OUTPOST_ASSIGN_OR_RETURN(r.fields, GetFields(n["fields"], path + ".fields", names));
  rules.anomalies.push_back(std::move(r));
  return Status();
}

Status ParseHardExample(const yaml::Node& n, const std::string& path, std::string name,
                        FeatureNames& names, RuleSet& rules) {
  OUTPOST_RETURN_IF_ERROR(
      CheckKeys(n, {"name", "kind", "confidence_below", "margin_below", "fields"}, path));
  HardExampleRule r{.name = std::move(name)};
  if (n["confidence_below"]) {
    OUTPOST_ASSIGN_OR_RETURN(r.confidence_below,
                             GetDouble(n["confidence_below"], path + ".confidence_below"));
  }
  if (n["margin_below"]) {
    OUTPOST_ASSIGN_OR_RETURN(r.margin_below, GetDouble(n["margin_below"], path + ".margin_below"));
  }
  if (!r.confidence_below && !r.margin_below) {
    return Error(path, "a hard_example rule needs `confidence_below`, `margin_below` or both");
  }
  OUTPOST_ASSIGN_OR_RETURN(r.fields, GetFields(n["fields"], path + ".fields", names));
  rules.hard_examples.push_back(std::move(r));
  return Status();
}

Status ParseDrift(const yaml::Node& n, const std::string& path, std::string name,
                  FeatureNames& names, RuleSet& rules) {
  OUTPOST_RETURN_IF_ERROR(CheckKeys(n, {"name", "kind", "window", "level", "baseline"}, path));
  DriftRule r{.name = std::move(name)};
  if (!n["window"]) return Error(path, "a drift rule needs `window`");
  OUTPOST_ASSIGN_OR_RETURN(int64_t window,
                           GetInt(n["window"], path + ".window", kMinWindow, kMaxWindow));
  r.window = static_cast<size_t>(window);
  if (!n["level"]) return Error(path, "a drift rule needs `level`");
  OUTPOST_ASSIGN_OR_RETURN(r.level, GetDouble(n["level"], path + ".level"));
  if (!(r.level > 0)) return Error(path + ".level", "must be greater than 0");
  const yaml::Node& base = n["baseline"];
  if (!base) return Error(path, "a drift rule needs `baseline`");
  if (!base.IsMap() || base.size() == 0) {
    return Error(path + ".baseline", "must map feature names to histograms");
  }
  std::set<int> seen;
  for (const auto& kv : base.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string feature, GetName(kv.first, path + ".baseline", kMaxName));
    std::string p = path + ".baseline." + feature;
    FeatureBaseline fb;
    OUTPOST_ASSIGN_OR_RETURN(fb.feature, names.Resolve(feature, p));
    if (!seen.insert(fb.feature).second) return Error(p, "is given twice");
    const yaml::Node& h = kv.second;
    if (!h.IsMap()) return Error(p, "must have `edges` and `fractions`");
    OUTPOST_RETURN_IF_ERROR(CheckKeys(h, {"edges", "fractions"}, p));
    if (!h["edges"] || !h["fractions"]) return Error(p, "must have `edges` and `fractions`");
    OUTPOST_ASSIGN_OR_RETURN(fb.edges, GetEdges(h["edges"], p + ".edges"));
    const yaml::Node& f = h["fractions"];
    if (!f.IsSequence() || f.size() != fb.edges.size() + 1) {
      return Error(p + ".fractions", "must have one more value than `edges`");
    }
    double sum = 0;
    for (size_t i = 0; i < f.size(); ++i) {
      std::string fp = p + ".fractions[" + std::to_string(i) + "]";
      OUTPOST_ASSIGN_OR_RETURN(double v, GetDouble(f[i], fp));
      if (v < 0 || v > 1) return Error(fp, "must be between 0 and 1");
      sum += v;
      fb.fractions.push_back(v);
    }
    if (std::abs(sum - 1.0) > 0.01) return Error(p + ".fractions", "must sum to 1");
    r.baseline.push_back(std::move(fb));
    if (r.baseline.size() * r.window > kMaxWindowReadings) {
      return Error(path + ".baseline", "window x features must stay within " +
                                           std::to_string(kMaxWindowReadings) + " readings");
    }
  }
  rules.drifts.push_back(std::move(r));
  return Status();
}

Status ParseSample(const yaml::Node& n, const std::string& path, std::string name,
                   FeatureNames& names, RuleSet& rules) {
  OUTPOST_RETURN_IF_ERROR(CheckKeys(n, {"name", "kind", "rate", "fields"}, path));
  SampleRule r{.name = std::move(name)};
  if (!n["rate"]) return Error(path, "a sample rule needs `rate`");
  OUTPOST_ASSIGN_OR_RETURN(r.rate, GetDouble(n["rate"], path + ".rate"));
  if (r.rate < 0 || r.rate > 1) return Error(path + ".rate", "must be between 0 and 1");
  OUTPOST_ASSIGN_OR_RETURN(r.fields, GetFields(n["fields"], path + ".fields", names));
  rules.samples.push_back(std::move(r));
  return Status();
}

Status ParseAggregate(const yaml::Node& n, const std::string& path, AggregateSpec& spec) {
  if (!n.IsMap()) return Error(path, "must be a map");
  OUTPOST_RETURN_IF_ERROR(CheckKeys(n, {"enabled", "score", "column", "edges"}, path));
  if (n["enabled"]) {
    OUTPOST_ASSIGN_OR_RETURN(spec.enabled, GetBool(n["enabled"], path + ".enabled"));
  }
  OUTPOST_ASSIGN_OR_RETURN(spec.score, GetScore(n, path));
  if (n["edges"]) {
    OUTPOST_ASSIGN_OR_RETURN(spec.edges, GetEdges(n["edges"], path + ".edges"));
  }
  return Status();
}

Result<std::shared_ptr<const RuleSet>> ParseSectionNode(const yaml::Node& root) {
  auto rules = std::make_shared<RuleSet>();
  rules->aggregate.edges = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  if (!root || root.IsNull()) return std::shared_ptr<const RuleSet>(std::move(rules));
  const std::string path = "insight";
  if (!root.IsMap()) return Error(path, "must be a map");
  OUTPOST_RETURN_IF_ERROR(
      CheckKeys(root, {"input", "output", "features", "rules", "aggregate"}, path));
  if (root["input"]) {
    OUTPOST_ASSIGN_OR_RETURN(rules->input, GetName(root["input"], path + ".input", kMaxName));
  }
  if (root["output"]) {
    OUTPOST_ASSIGN_OR_RETURN(rules->output, GetName(root["output"], path + ".output", kMaxName));
  }
  if (const yaml::Node& f = root["features"]) {
    if (!f.IsSequence() || f.size() == 0 || f.size() > kMaxFeatures) {
      return Error(path + ".features",
                   "must be a list of 1 to " + std::to_string(kMaxFeatures) + " names");
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < f.size(); ++i) {
      std::string p = path + ".features[" + std::to_string(i) + "]";
      OUTPOST_ASSIGN_OR_RETURN(std::string name, GetName(f[i], p, kMaxName));
      if (!seen.insert(name).second) return Error(p, "\"" + name + "\" is named twice");
      rules->features.push_back(std::move(name));
    }
    rules->features_declared = true;
  }
  FeatureNames names(*rules);
  if (const yaml::Node& list = root["rules"]) {
    if (!list.IsSequence() || list.size() > kMaxRules) {
      return Error(path + ".rules",
                   "must be a list of at most " + std::to_string(kMaxRules) + " rules");
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < list.size(); ++i) {
      const yaml::Node& n = list[i];
      std::string p = path + ".rules[" + std::to_string(i) + "]";
      if (!n.IsMap()) return Error(p, "must be a map");
      if (!n["name"]) return Error(p, "needs a name");
      if (!n["name"].IsScalar() || !RuleName::IsValid(n["name"].scalar())) {
        return Error(p + ".name", "must match " + std::string(kRuleNameRule.pattern))
            .WithReason(kRuleNameRule.reason);
      }
      std::string name = n["name"].scalar();
      if (!seen.insert(name).second) return Error(p + ".name", "\"" + name + "\" is used twice");
      if (!n["kind"] || !n["kind"].IsScalar()) return Error(p, "needs a kind");
      const std::string& kind = n["kind"].scalar();
      if (kind == "anomaly") {
        OUTPOST_RETURN_IF_ERROR(ParseAnomaly(n, p, name, names, *rules));
      } else if (kind == "hard_example") {
        OUTPOST_RETURN_IF_ERROR(ParseHardExample(n, p, name, names, *rules));
      } else if (kind == "drift") {
        OUTPOST_RETURN_IF_ERROR(ParseDrift(n, p, name, names, *rules));
      } else if (kind == "sample") {
        OUTPOST_RETURN_IF_ERROR(ParseSample(n, p, name, names, *rules));
      } else {
        return Error(p + ".kind", "\"" + kind + "\" is not anomaly, hard_example, drift or sample");
      }
    }
  }
  if (const yaml::Node& a = root["aggregate"]) {
    OUTPOST_RETURN_IF_ERROR(ParseAggregate(a, path + ".aggregate", rules->aggregate));
  }
  return std::shared_ptr<const RuleSet>(std::move(rules));
}

// Parses YAML text; a document that does not parse is InvalidArgument naming `what`.
Result<yaml::Node> Load(std::string_view text, std::string_view what) {
  Result<yaml::Node> root = yaml::Parse(text);
  if (!root.ok()) return yaml::WithYamlContext(root.status(), what);
  return root;
}

Result<int64_t> Columns(const engine::Shape& shape) {
  if (shape.size() == 1) return 1;
  return shape[1];
}

bool Numeric(engine::DataType t) { return t != engine::DataType::kBytes; }

}  // namespace

std::string_view ScoreKindName(ScoreKind kind) {
  switch (kind) {
    case ScoreKind::kValue:
      return "value";
    case ScoreKind::kMaxProbability:
      return "max_probability";
    case ScoreKind::kMargin:
      return "margin";
    case ScoreKind::kReconstructionError:
      return "reconstruction_error";
  }
  return "value";
}

Result<std::shared_ptr<const RuleSet>> ParseInsightConfig(std::string_view config_yaml) {
  OUTPOST_ASSIGN_OR_RETURN(yaml::Node root, Load(config_yaml, "config.yaml"));
  if (root && !root.IsNull() && !root.IsMap()) {
    return InvalidArgumentError("config.yaml must be a map of keys");
  }
  yaml::Node section;
  if (root && root.IsMap()) section = root["insight"];
  return ParseSectionNode(section);
}

Result<std::shared_ptr<const RuleSet>> ParseInsightSection(std::string_view section_yaml) {
  OUTPOST_ASSIGN_OR_RETURN(yaml::Node root, Load(section_yaml, "insight"));
  return ParseSectionNode(root);
}

Status CheckSignature(const RuleSet& rules, const engine::Signature& signature) {
  auto find = [](const std::vector<engine::TensorSpec>& specs,
                 const std::string& name) -> const engine::TensorSpec* {
    if (specs.empty()) return nullptr;
    if (name.empty()) return &specs[0];
    for (const auto& s : specs) {
      if (s.name == name) return &s;
    }
    return nullptr;
  };
  const engine::TensorSpec* in = find(signature.inputs, rules.input);
  if (in == nullptr) {
    return InvalidArgumentError("insight.input: the model has no input \"" + rules.input + "\"");
  }
  if (!Numeric(in->type) || in->shape.empty() || in->shape.size() > 2) {
    return InvalidArgumentError("insight.input: \"" + in->name +
                                "\" must be numeric with rank 1 or 2 (rows x columns)");
  }
  OUTPOST_ASSIGN_OR_RETURN(int64_t in_cols, Columns(in->shape));
  if (in_cols >= 0) {
    int64_t want = static_cast<int64_t>(rules.features.size());
    if (rules.features_declared ? in_cols != want : in_cols < want) {
      return InvalidArgumentError("insight.features: names " + std::to_string(want) +
                                  " columns but input \"" + in->name + "\" has " +
                                  std::to_string(in_cols));
    }
  }
  const engine::TensorSpec* out = find(signature.outputs, rules.output);
  if (out == nullptr) {
    return InvalidArgumentError("insight.output: the model has no output \"" + rules.output + "\"");
  }
  if (!Numeric(out->type) || out->shape.empty() || out->shape.size() > 2) {
    return InvalidArgumentError("insight.output: \"" + out->name +
                                "\" must be numeric with rank 1 or 2 (rows x values)");
  }
  OUTPOST_ASSIGN_OR_RETURN(int64_t out_cols, Columns(out->shape));
  if (out_cols >= 0) {
    auto check = [&](const ScoreSpec& s, const std::string& where) -> Status {
      if (s.kind == ScoreKind::kValue && s.column >= out_cols) {
        return InvalidArgumentError(where + ".column: output \"" + out->name + "\" has " +
                                    std::to_string(out_cols) + " columns");
      }
      if (s.kind == ScoreKind::kReconstructionError && in_cols >= 0 && out_cols != in_cols) {
        return InvalidArgumentError(where +
                                    ".score: reconstruction_error needs as many outputs as inputs");
      }
      return Status();
    };
    for (const auto& r : rules.anomalies) {
      OUTPOST_RETURN_IF_ERROR(check(r.score, "insight.rules." + r.name));
    }
    if (rules.aggregate.enabled)
      OUTPOST_RETURN_IF_ERROR(check(rules.aggregate.score, "insight.aggregate"));
  }
  return Status();
}

}  // namespace outpost::insight
