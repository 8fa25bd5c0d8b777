// The policy's YAML (FORMAT.md), read through the YAML adapter (base/yaml/yaml.h).
#include <cmath>
#include <set>
#include <string>
#include <utility>

#include "base/crypto/crypto.h"
#include "base/yaml/yaml.h"
#include "base/names.h"
#include "policy/policy.h"

namespace outpost::policy {
namespace {

Status KeyError(std::string_view key, std::string_view message) {
  return InvalidArgumentError(std::string(key) + ": " + std::string(message));
}

std::string Join(std::string_view a, std::string_view b) {
  return std::string(a) + "." + std::string(b);
}

// The members of a map node in order, each key a scalar string; duplicates are errors.
Result<std::vector<std::pair<std::string, yaml::Node>>> Members(const yaml::Node& node,
                                                                std::string_view where) {
  if (!node.IsMap()) return KeyError(where, "must be a map");
  std::vector<std::pair<std::string, yaml::Node>> out;
  std::set<std::string> seen;
  for (const auto& item : node.entries()) {
    if (!item.first.IsScalar()) return KeyError(where, "keys must be strings");
    std::string key = item.first.scalar();
    if (!seen.insert(key).second) return KeyError(Join(where, key), "repeated key");
    out.emplace_back(std::move(key), item.second);
  }
  return out;
}

Result<std::string> Scalar(const yaml::Node& node, std::string_view key) {
  if (!node.IsScalar()) return KeyError(key, "must be a scalar");
  return node.scalar();
}

Result<int64_t> Integer(const yaml::Node& node, std::string_view key) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, Scalar(node, key));
  int64_t value = 0;
  if (!node.Decode(value)) return KeyError(key, "must be an integer");
  return value;
}

Result<double> Number(const yaml::Node& node, std::string_view key) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, Scalar(node, key));
  double value = 0;
  if (!node.Decode(value) || !std::isfinite(value)) {
    return KeyError(key, "must be a finite number");
  }
  return value;
}

Result<bool> Boolean(const yaml::Node& node, std::string_view key) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, Scalar(node, key));
  bool value = false;
  if (!node.Decode(value)) return KeyError(key, "must be true or false");
  return value;
}

Result<Action> KeepOrDrop(const yaml::Node& node, std::string_view key) {
  // Read in place rather than moved out: GCC 12 warns (wrongly) that a string moved out of a
  // Result here may be uninitialised.
  const Result<std::string> text = Scalar(node, key);
  if (!text.ok()) return text.status();
  if (*text == "keep") return Action::kKeep;
  if (*text == "drop") return Action::kDrop;
  return KeyError(key, "must be keep or drop");
}

Result<FieldRule> ParseFieldRule(const yaml::Node& node, std::string_view key) {
  FieldRule rule;
  if (node.IsScalar()) {
    const std::string& text = node.scalar();
    if (text == "keep") rule.action = Action::kKeep;
    else if (text == "drop") rule.action = Action::kDrop;
    else if (text == "hash") rule.action = Action::kHash;
    else return KeyError(key, "unknown action \"" + text + "\" (keep, drop, hash or a map)");
    return rule;
  }
  OUTPOST_ASSIGN_OR_RETURN(auto members, Members(node, key));
  std::optional<std::string> generalize;
  std::optional<double> step, grid;
  std::optional<std::string> unit;
  for (const auto& [name, value] : members) {
    const std::string at = Join(key, name);
    if (name == "generalize") {
      OUTPOST_ASSIGN_OR_RETURN(generalize, Scalar(value, at));
    } else if (name == "step") {
      OUTPOST_ASSIGN_OR_RETURN(step, Number(value, at));
    } else if (name == "grid") {
      OUTPOST_ASSIGN_OR_RETURN(grid, Number(value, at));
    } else if (name == "unit") {
      OUTPOST_ASSIGN_OR_RETURN(unit, Scalar(value, at));
    } else {
      return KeyError(at, "unknown key");
    }
  }
  if (!generalize) return KeyError(Join(key, "generalize"), "required in a map rule");
  const std::string at_generalize = Join(key, "generalize");
  if (*generalize == "round") {
    if (!step || *step <= 0) return KeyError(Join(key, "step"), "required, > 0");
    if (grid || unit) return KeyError(key, "round takes only `step`");
    rule.action = Action::kRound;
    rule.step = *step;
  } else if (*generalize == "coarsen") {
    if (!grid || *grid <= 0) return KeyError(Join(key, "grid"), "required, > 0");
    if (step || unit) return KeyError(key, "coarsen takes only `grid`");
    rule.action = Action::kCoarsen;
    rule.step = *grid;
  } else if (*generalize == "truncate_time") {
    if (!unit) return KeyError(Join(key, "unit"), "required: second, minute, hour or day");
    if (step || grid) return KeyError(key, "truncate_time takes only `unit`");
    if (*unit == "second") rule.unit_ms = 1000;
    else if (*unit == "minute") rule.unit_ms = 60'000;
    else if (*unit == "hour") rule.unit_ms = 3'600'000;
    else if (*unit == "day") rule.unit_ms = 86'400'000;
    else return KeyError(Join(key, "unit"), "must be second, minute, hour or day");
    rule.action = Action::kTruncateTime;
  } else {
    return KeyError(at_generalize, "unknown \"" + *generalize +
                                       "\" (round, truncate_time or coarsen)");
  }
  return rule;
}

Result<KindRule> ParseKind(const std::string& kind, const yaml::Node& node,
                           std::string_view key) {
  KindRule rule;
  std::optional<RecordClass> record_class = internal::DefaultClass(kind);
  bool count_given = false;
  if (kind == "aggregate") rule.count_field = "rows";
  OUTPOST_ASSIGN_OR_RETURN(auto members, Members(node, key));
  for (const auto& [name, value] : members) {
    const std::string at = Join(key, name);
    if (name == "class") {
      OUTPOST_ASSIGN_OR_RETURN(std::string text, Scalar(value, at));
      if (text == "raw") record_class = RecordClass::kRaw;
      else if (text == "aggregate") record_class = RecordClass::kAggregate;
      else return KeyError(at, "must be raw or aggregate");
    } else if (name == "default") {
      OUTPOST_ASSIGN_OR_RETURN(rule.default_action, KeepOrDrop(value, at));
    } else if (name == "count_field") {
      OUTPOST_ASSIGN_OR_RETURN(rule.count_field, Scalar(value, at));
      count_given = true;
      if (Status s = internal::ValidatePath(rule.count_field); !s.ok() ||
          rule.count_field.find('*') != std::string::npos) {
        return KeyError(at, "must be a field path without `*`");
      }
    } else if (name == "fields") {
      OUTPOST_ASSIGN_OR_RETURN(auto fields, Members(value, at));
      if (fields.size() > kMaxRulesPerKind) return KeyError(at, "more than 1024 rules");
      for (const auto& [path, field] : fields) {
        const std::string field_at = Join(at, path);
        if (Status s = internal::ValidatePath(path); !s.ok()) {
          return KeyError(field_at, s.message());
        }
        OUTPOST_ASSIGN_OR_RETURN(FieldRule field_rule, ParseFieldRule(field, field_at));
        rule.fields.emplace(path, field_rule);
        for (size_t dot = path.find('.'); dot != std::string::npos;
             dot = path.find('.', dot + 1)) {
          rule.prefixes.insert(path.substr(0, dot));
        }
      }
    } else {
      return KeyError(at, "unknown key");
    }
  }
  if (!record_class) return KeyError(Join(key, "class"), "required for this kind (raw or aggregate)");
  rule.record_class = *record_class;
  if (!rule.count_field.empty()) {
    // The hub must be able to check the count, so the count leaves the site unchanged.
    auto it = rule.fields.find(rule.count_field);
    if (it == rule.fields.end() || it->second.action != Action::kKeep) {
      return KeyError(count_given ? Join(key, "count_field") : Join(key, "fields"),
                      "the count field \"" + rule.count_field + "\" must have a `keep` rule");
    }
  }
  return rule;
}

Result<std::shared_ptr<const Policy>> ParseRoot(const yaml::Node& root, std::string_view text) {
  if (!root.IsMap()) return InvalidArgumentError("policy: must be a map of keys");
  auto policy = std::make_shared<Policy>();
  policy->digest = "sha256:" + crypto::Sha256Hex(text);
  OUTPOST_ASSIGN_OR_RETURN(auto members, Members(root, "policy"));
  bool have_format = false, have_version = false, have_regions = false;
  for (const auto& [name, value] : members) {
    if (name == "format") {
      OUTPOST_ASSIGN_OR_RETURN(int64_t format, Integer(value, name));
      if (format != 1) return KeyError(name, "this Outpost reads format 1 only");
      have_format = true;
    } else if (name == "version") {
      OUTPOST_ASSIGN_OR_RETURN(policy->version, Integer(value, name));
      if (policy->version < 1) return KeyError(name, "must be >= 1");
      have_version = true;
    } else if (name == "name") {
      OUTPOST_ASSIGN_OR_RETURN(policy->name, Scalar(value, name));
      if (policy->name.size() > kMaxNameBytes) return KeyError(name, "at most 128 bytes");
    } else if (name == "default") {
      OUTPOST_ASSIGN_OR_RETURN(policy->default_action, KeepOrDrop(value, name));
    } else if (name == "regions") {
      OUTPOST_ASSIGN_OR_RETURN(auto regions, Members(value, name));
      if (regions.empty()) return KeyError(name, "needs at least one region");
      if (regions.size() > kMaxRegions) return KeyError(name, "more than 256 regions");
      for (const auto& [region_name, region_node] : regions) {
        const std::string at = Join(name, region_name);
        if (Status s = CheckName(kRegionRule, region_name); !s.ok()) {
          return KeyError(at, s.message()).WithReason(s.reason());
        }
        Region region;
        bool have_raw = false;
        OUTPOST_ASSIGN_OR_RETURN(auto fields, Members(region_node, at));
        for (const auto& [field, field_value] : fields) {
          const std::string field_at = Join(at, field);
          if (field == "raw") {
            OUTPOST_ASSIGN_OR_RETURN(region.raw_allowed, Boolean(field_value, field_at));
            have_raw = true;
          } else if (field == "min_count") {
            OUTPOST_ASSIGN_OR_RETURN(region.min_count, Integer(field_value, field_at));
            if (region.min_count < 0) return KeyError(field_at, "must be >= 0");
          } else {
            return KeyError(field_at, "unknown key");
          }
        }
        if (!have_raw) return KeyError(Join(at, "raw"), "required (true or false)");
        policy->regions.emplace(region_name, region);
      }
      have_regions = true;
    } else if (name == "sites") {
      OUTPOST_ASSIGN_OR_RETURN(auto sites, Members(value, name));
      if (sites.size() > kMaxSites) return KeyError(name, "more than 100000 sites");
      for (const auto& [site, region_node] : sites) {
        const std::string at = Join(name, site);
        if (Status s = CheckName(kSiteIdRule, site); !s.ok()) {
          return KeyError(at, s.message()).WithReason(s.reason());
        }
        OUTPOST_ASSIGN_OR_RETURN(std::string region, Scalar(region_node, at));
        policy->sites.emplace(site, std::move(region));
      }
    } else if (name == "default_region") {
      OUTPOST_ASSIGN_OR_RETURN(policy->default_region, Scalar(value, name));
    } else if (name == "kinds") {
      OUTPOST_ASSIGN_OR_RETURN(auto kinds, Members(value, name));
      if (kinds.size() > kMaxKinds) return KeyError(name, "more than 64 kinds");
      for (const auto& [kind, kind_node] : kinds) {
        const std::string at = Join(name, kind);
        if (Status s = internal::ValidateName(kind); !s.ok()) return KeyError(at, s.message());
        OUTPOST_ASSIGN_OR_RETURN(KindRule rule, ParseKind(kind, kind_node, at));
        policy->kinds.emplace(kind, std::move(rule));
      }
    } else {
      return KeyError(name, "unknown key");
    }
  }
  if (!have_format) return KeyError("format", "required (1)");
  if (!have_version) return KeyError("version", "required (an integer >= 1)");
  if (!have_regions) return KeyError("regions", "required (at least one region)");
  for (const auto& [site, region] : policy->sites) {
    if (!policy->regions.contains(region)) {
      return KeyError(Join("sites", site), "names region \"" + region + "\", which `regions` lacks");
    }
  }
  if (!policy->default_region.empty() && !policy->regions.contains(policy->default_region)) {
    return KeyError("default_region", "names a region that `regions` lacks");
  }
  return std::shared_ptr<const Policy>(std::move(policy));
}

}  // namespace

Result<std::shared_ptr<const Policy>> ParsePolicy(std::string_view yaml_text) {
  if (yaml_text.size() > kMaxPolicyBytes) {
    return InvalidArgumentError("policy: larger than 256 KiB");
  }
  Result<yaml::Node> root = yaml::Parse(yaml_text);
  if (!root.ok()) return yaml::WithYamlContext(root.status(), "policy: not valid YAML");
  return ParseRoot(*root, yaml_text);
}

}  // namespace outpost::policy
