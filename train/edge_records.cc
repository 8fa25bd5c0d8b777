// The simdjson adapter of train/: the only file of train/ that includes simdjson.h.
#include "train/edge_records.h"

#include <simdjson.h>

#include <cmath>
#include <limits>

namespace outpost::train {
namespace {

namespace dom = simdjson::dom;

constexpr size_t kMaxDepth = 16;
constexpr size_t kMaxStringBytes = 4096;

Status ReadString(dom::element value, std::string_view key, std::string& out) {
  std::string_view s;
  if (value.get(s) != simdjson::SUCCESS) {
    return InvalidArgumentError("\"" + std::string(key) + "\" is not a string");
  }
  if (s.size() > kMaxStringBytes) {
    return InvalidArgumentError("\"" + std::string(key) + "\" is longer than 4096 bytes");
  }
  out.assign(s);
  return Status();
}

// A JSON number as a double; `null` as NaN when `allow_null`.
bool ReadNumber(dom::element value, bool allow_null, double& out) {
  switch (value.type()) {
    case dom::element_type::INT64:
      out = static_cast<double>(value.get_int64().value_unsafe());
      return true;
    case dom::element_type::UINT64:
      out = static_cast<double>(value.get_uint64().value_unsafe());
      return true;
    case dom::element_type::DOUBLE:
      out = value.get_double().value_unsafe();
      return true;
    case dom::element_type::NULL_VALUE:
      out = std::numeric_limits<double>::quiet_NaN();
      return allow_null;
    default:
      return false;
  }
}

Status ReadInputs(dom::element value, std::map<std::string, double, std::less<>>& out) {
  dom::object object;
  if (value.get(object) != simdjson::SUCCESS) {
    return InvalidArgumentError("\"inputs\" is not an object");
  }
  for (dom::key_value_pair member : object) {
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
  dom::parser parser;
  if (parser.allocate(std::max<size_t>(payload.size(), 64), kMaxDepth) != simdjson::SUCCESS) {
    return ResourceExhaustedError("cannot allocate the JSON parser");
  }
  dom::element root;
  // An empty view may have no address, and simdjson would copy from it.
  if (payload.empty()) return InvalidArgumentError("the payload is empty, not JSON");
  if (auto error = parser.parse(payload.data(), payload.size(), /*realloc_if_needed=*/true)
                       .get(root);
      error != simdjson::SUCCESS) {
    return InvalidArgumentError(std::string("the payload is not valid JSON: ") +
                                simdjson::error_message(error));
  }
  dom::object object;
  if (root.get(object) != simdjson::SUCCESS) {
    return InvalidArgumentError("the payload is not a JSON object");
  }
  RecordPayload out;
  out.kind = std::string(kind);
  bool has_model = false, has_request_id = false, has_label = false, has_row = false;
  for (dom::key_value_pair member : object) {
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
      std::string_view text;
      if (ReadNumber(member.value, /*allow_null=*/false, number)) {
        out.label = number;
      } else if (member.value.get(text) == simdjson::SUCCESS) {
        if (text.size() > kMaxStringBytes) {
          return InvalidArgumentError("\"label\" is longer than 4096 bytes");
        }
        out.label = std::string(text);
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
