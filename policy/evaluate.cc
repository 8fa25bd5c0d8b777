#include "policy/evaluate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_set>

#include "base/coding.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "policy/crypto.h"

namespace outpost::policy {
namespace {


constexpr std::string_view kHashPrefix = "h1:";

// Why a walk stopped.
struct Failure {
  Outcome outcome = Outcome::kRejected;
  std::string reason;
  std::string detail;
};

Decision Fail(Outcome outcome, std::string_view reason, std::string detail) {
  Decision d;
  d.outcome = outcome;
  d.reason = std::string(reason);
  d.detail = std::move(detail);
  return d;
}

bool IsPlainSegment(std::string_view key) {
  if (key.empty() || key.size() > kMaxNameBytes) return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string JoinPath(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  std::string out(prefix);
  out.push_back('.');
  out.append(key);
  return out;
}

// Walks one payload under one kind's rules, writing what leaves (apply) or verifying that the
// payload already has that form (check). One per record.
class Walker {
 public:
  // `key` is null in check mode. Both outlive the walker.
  Walker(const Policy& policy, const KindRule& kind, const HashKey* key)
      : kind_(kind), default_(policy.DefaultFor(kind)), key_(key), checking_(key == nullptr) {}

  const Failure& failure() const { return failure_; }

  // Writes the object's members that leave (apply) or verifies them (check). False on failure.
  bool Object(json::Value object, std::string_view prefix, JsonWriter& out) {
    if (!NoDuplicateKeys(object, prefix)) return false;
    out.BeginObject();
    for (json::Member member : object.Members()) {
      std::string value_json;
      JsonWriter value(value_json);
      bool present = false;
      if (!Member(member.key, member.value, prefix, value, &present)) return false;
      if (present) {
        out.Key(member.key);
        out.Raw(value_json);
      }
    }
    out.EndObject();
    return true;
  }

 private:
  bool Error(std::string_view reason, std::string detail) {
    failure_.outcome = Outcome::kRejected;
    failure_.reason = std::string(reason);
    failure_.detail = std::move(detail);
    return false;
  }

  bool NoDuplicateKeys(json::Value object, std::string_view prefix) {
    if (object.size() < 2) return true;
    std::unordered_set<std::string_view> seen;
    for (json::Member member : object.Members()) {
      if (!seen.insert(member.key).second) {
        return Error("malformed_payload",
                     "repeated member \"" + JoinPath(prefix, member.key) + "\"");
      }
    }
    return true;
  }

  // One member: the rule that applies (FORMAT.md, Field paths) and its action.
  bool Member(std::string_view key, json::Value value, std::string_view prefix,
              JsonWriter& out, bool* present) {
    const bool plain = IsPlainSegment(key);
    const std::string path = JoinPath(prefix, key);
    if (plain) {
      if (auto it = kind_.fields.find(path); it != kind_.fields.end()) {
        return Rule(it->second, value, path, out, present);
      }
      if (value.type() == json::Type::kObject && kind_.prefixes.contains(path)) {
        std::string nested_json;
        JsonWriter nested(nested_json);
        if (!Object(value, path, nested)) return false;
        if (nested_json != "{}") {
          out.Raw(nested_json);
          *present = true;
        }
        return true;
      }
    }
    const std::string wildcard = JoinPath(prefix, "*");
    if (auto it = kind_.fields.find(wildcard); it != kind_.fields.end()) {
      return Rule(it->second, value, path, out, present);
    }
    FieldRule fallback{.action = default_};
    return Rule(fallback, value, path, out, present);
  }

  bool Rule(const FieldRule& rule, json::Value value, const std::string& path, JsonWriter& out,
            bool* present) {
    switch (rule.action) {
      case Action::kDrop:
        if (checking_) return Error("field_not_allowed", "member \"" + path + "\" must not leave a site");
        return true;
      case Action::kKeep:
        *present = true;
        return Write(value, path, out);
      case Action::kHash:
        *present = true;
        return Hash(value, path, out);
      case Action::kRound:
      case Action::kTruncateTime:
      case Action::kCoarsen:
        *present = true;
        return Generalize(rule, value, path, out);
    }
    return Error("malformed_payload", "unknown action");
  }

  // Writes `value` as it is (checking repeated members on the way).
  bool Write(json::Value value, const std::string& path, JsonWriter& out) {
    switch (value.type()) {
      case json::Type::kObject: {
        json::Value object = value;
        if (!NoDuplicateKeys(object, path)) return false;
        out.BeginObject();
        for (json::Member member : object.Members()) {
          out.Key(member.key);
          if (!Write(member.value, JoinPath(path, member.key), out)) return false;
        }
        out.EndObject();
        return true;
      }
      case json::Type::kArray:
        out.BeginArray();
        for (json::Value item : value.Items()) {
          if (!Write(item, path, out)) return false;
        }
        out.EndArray();
        return true;
      case json::Type::kString:
        out.String(*value.GetString());
        return true;
      case json::Type::kInt64:
        out.Int(*value.GetInt64());
        return true;
      case json::Type::kUint64:
        out.Uint(*value.GetUint64());
        return true;
      case json::Type::kDouble:
        out.Double(*value.GetDouble());
        return true;
      case json::Type::kBool:
        out.Bool(*value.GetBool());
        return true;
      case json::Type::kNull:
        out.Null();
        return true;
    }
    return Error("malformed_payload", "unknown JSON type at \"" + path + "\"");
  }

  bool Hash(json::Value value, const std::string& path, JsonWriter& out) {
    if (value.type() == json::Type::kNull) {
      out.Null();
      return true;
    }
    if (checking_) {
      Result<std::string_view> text_or = value.GetString();
      const std::string_view text = text_or.ok() ? *text_or : std::string_view();
      const bool ok = text_or.ok() &&
                      text.starts_with(kHashPrefix) && IsHex64(text.substr(kHashPrefix.size()));
      if (!ok) return Error("field_not_hashed", "member \"" + path + "\" must be a h1: digest");
      out.String(text);
      return true;
    }
    std::string message;
    if (value.type() == json::Type::kString) {
      message = std::string(*value.GetString());
    } else {
      JsonWriter text(message);
      if (!Write(value, path, text)) return false;
    }
    out.String(key_->Digest(message));
    return true;
  }

  // The generalized form of a number, or nullopt when `rule` cannot take it.
  bool Generalize(const FieldRule& rule, json::Value value, const std::string& path,
                  JsonWriter& out) {
    switch (value.type()) {
      case json::Type::kNull:
        out.Null();
        return true;
      case json::Type::kArray:
        out.BeginArray();
        for (json::Value item : value.Items()) {
          if (!Generalize(rule, item, path, out)) return false;
        }
        out.EndArray();
        return true;
      case json::Type::kObject: {
        json::Value object = value;
        if (!NoDuplicateKeys(object, path)) return false;
        out.BeginObject();
        for (json::Member member : object.Members()) {
          out.Key(member.key);
          if (!Generalize(rule, member.value, JoinPath(path, member.key), out)) return false;
        }
        out.EndObject();
        return true;
      }
      case json::Type::kInt64:
      case json::Type::kUint64:
      case json::Type::kDouble:
        break;
      default:
        return Error("field_type_mismatch", "member \"" + path + "\" must hold numbers to be " +
                                                std::string(ActionName(rule.action)) + "ed");
    }
    if (rule.action == Action::kTruncateTime) {
      int64_t t = 0;
      if (value.type() == json::Type::kInt64) t = *value.GetInt64();
      if (value.type() != json::Type::kInt64 || t < 0) {
        return Error("field_type_mismatch",
                     "member \"" + path + "\" must be a non-negative integer of Unix ms");
      }
      const int64_t truncated = t / rule.unit_ms * rule.unit_ms;
      if (checking_ && truncated != t) {
        return Error("field_not_generalized", "member \"" + path + "\" is not truncated");
      }
      out.Int(truncated);
      return true;
    }
    double n = 0;
    if (value.type() == json::Type::kInt64) n = double(*value.GetInt64());
    else if (value.type() == json::Type::kUint64) n = double(*value.GetUint64());
    else n = *value.GetDouble();
    if (checking_) {
      // On the grid: n is within 1e-9 of a step (or a few units in the last place, for
      // numbers so large that doubles cannot resolve the step) of round(n / S) * S.
      const double on_grid = std::round(n / rule.step) * rule.step;
      const double tolerance = std::max(rule.step * 1e-9,
                                        std::abs(n) * 8 * std::numeric_limits<double>::epsilon());
      if (!(std::abs(on_grid - n) <= tolerance)) {
        return Error("field_not_generalized", "member \"" + path + "\" is not generalized");
      }
      out.Double(n);
      return true;
    }
    const double q = n / rule.step;
    const double g = (rule.action == Action::kRound ? std::round(q) : std::floor(q)) * rule.step;
    out.Double(g);
    return true;
  }

  const KindRule& kind_;
  const Action default_;
  const HashKey* key_;
  const bool checking_;
  Failure failure_;
};

// The count a count_field path names: found, and a non-negative integer.
std::optional<uint64_t> FindCount(json::Value root, std::string_view path) {
  json::Value at = root;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    std::string_view segment =
        path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    std::optional<json::Value> next = at.Find(segment);
    if (!next) return std::nullopt;
    at = *next;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (at.type() == json::Type::kUint64) return *at.GetUint64();
  if (at.type() == json::Type::kInt64 && *at.GetInt64() >= 0) {
    return static_cast<uint64_t>(*at.GetInt64());
  }
  return std::nullopt;
}

// Apply (key set) or Check (key null).
Decision Evaluate(const Policy& policy, const HashKey* key, const RecordView& record) {
  const bool checking = key == nullptr;
  // At the hub, what the edge would withhold is a rejection.
  const Outcome withhold = checking ? Outcome::kRejected : Outcome::kWithheld;
  if (record.payload.size() > kMaxPayloadBytes) {
    return Fail(Outcome::kRejected, "payload_too_large", "payload over 1 MiB");
  }
  const KindRule* kind = policy.FindKind(record.kind);
  if (kind == nullptr) {
    return Fail(withhold, "kind_not_allowed",
                "the policy lets no record of kind \"" + std::string(record.kind) + "\" leave");
  }
  const Region* region = policy.FindRegion(record.site);
  if (region == nullptr) {
    return Fail(withhold, "site_not_bound",
                "site \"" + std::string(record.site) + "\" has no region in the policy");
  }
  if (kind->record_class == RecordClass::kRaw && !region->raw_allowed) {
    return Fail(withhold, "raw_not_allowed_in_region",
                "the site's region takes aggregates only; \"" + std::string(record.kind) +
                    "\" records are raw");
  }
  json::Parser parser({.max_depth = kMaxPayloadDepth - 1});
  if (!parser.Reserve(std::max<size_t>(record.payload.size(), 64)).ok()) {
    return Fail(Outcome::kRejected, "payload_too_large", "no memory to parse the payload");
  }
  if (record.payload.empty()) {
    return Fail(Outcome::kRejected, "malformed_payload", "payload is empty, not JSON");
  }
  Result<json::Value> parsed = parser.Parse(record.payload);
  if (!parsed.ok()) {
    return Fail(Outcome::kRejected, "malformed_payload",
                "payload is not JSON: " + std::string(parsed.status().message()));
  }
  const json::Value root = *parsed;
  const json::Value object = root;
  if (!object.is_object()) {
    return Fail(Outcome::kRejected, "malformed_payload", "payload is not a JSON object");
  }
  if (!kind->count_field.empty()) {
    std::optional<uint64_t> count = FindCount(root, kind->count_field);
    if (!count) {
      return Fail(Outcome::kRejected, "count_missing",
                  "member \"" + kind->count_field + "\" must be a non-negative integer");
    }
    if (*count < static_cast<uint64_t>(region->min_count)) {
      return Fail(withhold, "aggregate_below_min_count",
                  "count " + std::to_string(*count) + " is below the region's min_count " +
                      std::to_string(region->min_count));
    }
  }
  Walker walker(policy, *kind, key);
  std::string out_json;
  JsonWriter out(out_json);
  if (!walker.Object(object, "", out)) {
    const Failure& f = walker.failure();
    return Fail(f.outcome, f.reason, f.detail);
  }
  Decision decision;
  decision.outcome = Outcome::kAllowed;
  decision.payload = checking ? std::string(record.payload) : std::move(out_json);
  return decision;
}

}  // namespace

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kAllowed: return "allowed";
    case Outcome::kWithheld: return "withheld";
    case Outcome::kRejected: return "rejected";
  }
  return "unknown";
}

Result<HashKey> HashKey::Create(std::string_view secret) {
  if (secret.size() < 16 || secret.size() > 1024) {
    return InvalidArgumentError("site secret: must be 16 to 1024 bytes");
  }
  return HashKey(std::string(secret));
}

std::string HashKey::Digest(std::string_view message) const {
  return std::string(kHashPrefix) + HmacSha256Hex(secret_, message);
}

Decision Apply(const Policy& policy, const HashKey& key, const RecordView& record) {
  return Evaluate(policy, &key, record);
}

Decision Check(const Policy& policy, const RecordView& record) {
  return Evaluate(policy, nullptr, record);
}

}  // namespace outpost::policy
