// Edge records' payloads as training rows, read through the JSON adapter (base/json/json.h).
#include "train/edge_records.h"

#include <cmath>
#include <limits>

#include "base/json/json.h"

namespace outpost::train {
namespace {


// Deepest nesting a payload may have (the top-level object counts as 1).
constexpr size_t kMaxDepth = 15;
constexpr size_t kMaxStringBytes = 4096;

Status ReadString(json::Value value, std::string_view key, std::string& out) {
  Result<std::string_view> text = value.GetString();
  if (!text.ok()) return InvalidArgumentError("\"" + std::string(key) + "\" is not a string");
  const std::string_view s = *text;
  if (s.size() > kMaxStringBytes) {
    return InvalidArgumentError("\"" + std::string(key) + "\" is longer than 4096 bytes");
  }
  out.assign(s);
  return Status();
}

// A JSON number as a double; `null` as NaN when `allow_null`.
bool ReadNumber(json::Value value, bool allow_null, double& out) {
  switch (value.type()) {
    case json::Type::kInt64:
      out = static_cast<double>(*value.GetInt64());
      return true;
    case json::Type::kUint64:
      out = static_cast<double>(*value.GetUint64());
      return true;
    case json::Type::kDouble:
      out = *value.GetDouble();
      return true;
    case json::Type::kNull:
      out = std::numeric_limits<double>::quiet_NaN();
      return allow_null;
    default:
      return false;
  }
}

Status ReadInputs(json::Value value, std::map<std::string, double, std::less<>>& out) {
  if (!value.is_object()) return InvalidArgumentError("\"inputs\" is not an object");
  for (json::Member member : value.Members()) {
    if (out.size() >= kMaxPayloadInputs) {
      return InvalidArgumentError("\"inputs\" has more than 4096 entries");
    }
    double v = 0;
    if (!ReadNumber(member.value, /*allow_null=*/true, v)) {
      return InvalidArgumentError("input \"" + std::string(member.key.substr(0, 64)) +
                                  "\" is not a number or null");
    }
    // A repeated name keeps its first value: the join must not depend on which copy wins.
    out.emplace(std::string(member.key), v);
  }
  return Status();
}

}  // namespace

Result<RecordPayload> ParseRecordPayload(std::string_view kind, std::string_view payload) {
  const bool feedback = kind == "feedback";
  if (!feedback && kind != "hard_example" && kind != "sample" && kind != "anomaly") {
    return InvalidArgumentError("records of kind \"" + std::string(kind.substr(0, 64)) +
                                "\" carry no training rows");
  }
  if (payload.size() > kMaxPayloadBytes) {
    return InvalidArgumentError("the payload is larger than 1 MiB");
  }
  json::Parser parser({.max_depth = kMaxDepth});
  if (!parser.Reserve(std::max<size_t>(payload.size(), 64)).ok()) {
    return ResourceExhaustedError("cannot allocate the JSON parser");
  }
  if (payload.empty()) return InvalidArgumentError("the payload is empty, not JSON");
  Result<json::Value> root = parser.Parse(payload);
  if (!root.ok()) {
    return InvalidArgumentError("the payload is not valid JSON: " +
                                std::string(root.status().message()));
  }
  const json::Value object = *root;
  if (!object.is_object()) return InvalidArgumentError("the payload is not a JSON object");
  RecordPayload out;
  out.kind = std::string(kind);
  bool has_model = false, has_request_id = false, has_label = false, has_row = false;
  for (json::Member member : object.Members()) {
    std::string_view key = member.key;
    if (key == "model" && !has_model) {
      has_model = true;
      OUTPOST_RETURN_IF_ERROR(ReadString(member.value, key, out.model));
    } else if (key == "request_id" && !has_request_id) {
      has_request_id = true;
      OUTPOST_RETURN_IF_ERROR(ReadString(member.value, key, out.request_id));
    } else if (key == "kind") {
      std::string stated;
      OUTPOST_RETURN_IF_ERROR(ReadString(member.value, key, stated));
      if (stated != kind) {
        return InvalidArgumentError("the payload says kind \"" + stated.substr(0, 64) +
                                    "\", the record \"" + std::string(kind) + "\"");
      }
    } else if (key == "label" && feedback && !has_label) {
      has_label = true;
      double number = 0;
      if (ReadNumber(member.value, /*allow_null=*/false, number)) {
        out.label = number;
      } else if (Result<std::string_view> text = member.value.GetString(); text.ok()) {
        if (text->size() > kMaxStringBytes) {
          return InvalidArgumentError("\"label\" is longer than 4096 bytes");
        }
        out.label = std::string(*text);
      } else {
        return InvalidArgumentError("\"label\" is not a number or a string");
      }
    } else if (key == "row" && !feedback && !has_row) {
      has_row = true;
      double row = 0;
      if (!ReadNumber(member.value, /*allow_null=*/false, row) || !(row >= 0) ||
          row > 1e15 || row != std::floor(row)) {
        return InvalidArgumentError("\"row\" is not a non-negative integer");
      }
      out.row = static_cast<int64_t>(row);
    } else if (key == "inputs" && !out.inputs.has_value()) {
      out.inputs.emplace();
      OUTPOST_RETURN_IF_ERROR(ReadInputs(member.value, *out.inputs));
    }
  }
  if (!has_model) return InvalidArgumentError("the payload has no \"model\"");
  if (feedback) {
    if (!has_request_id) return InvalidArgumentError("the feedback has no \"request_id\"");
    if (!has_label) return InvalidArgumentError("the feedback has no \"label\"");
  } else {
    if (!has_row) return InvalidArgumentError("the record has no \"row\"");
    if (!out.inputs.has_value()) return InvalidArgumentError("the record has no \"inputs\"");
  }
  return out;
}

}  // namespace outpost::train
