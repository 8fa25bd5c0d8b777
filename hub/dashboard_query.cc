// The dashboard's query strings and parameters (dashboard.h, dashboard_query.h).
#include "hub/dashboard_query.h"

#include <algorithm>
#include <charconv>
#include <string>
#include <system_error>
#include <utility>

#include "base/coding.h"
#include "base/names.h"

namespace outpost::hub {
namespace dashboard_internal {
namespace {

Result<std::string> Decode(std::string_view in, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size() || HexValue(in[i + 1]) < 0 || HexValue(in[i + 2]) < 0) {
        return Bad("bad_escape", "a '%' must be followed by two hex digits");
      }
      c = static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2]));
      if (c == '\0') return Bad("bad_escape", "a parameter may not contain NUL");
      i += 2;
    }
    if (out.size() >= max_bytes) {
      return Bad("parameter_too_long", "a parameter's name or value is too long");
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

Status Bad(std::string_view reason, std::string_view message) {
  return ErrorWithReason(StatusCode::kInvalidArgument, reason, message);
}

bool IsNameChar(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || (allow_colon && c == ':');
}

bool IsKind(std::string_view s) {
  static constexpr std::string_view kKinds[] = {"anomaly",   "drift",  "feedback", "hard_example",
                                                "aggregate", "sample", "event"};
  return std::find(std::begin(kKinds), std::end(kKinds), s) != std::end(kKinds);
}

// Checks that every parameter is one the route takes.
Status OnlyKnown(const QueryParams& params, std::initializer_list<std::string_view> known) {
  for (const auto& [name, value] : params.items) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return Bad("unknown_parameter", "unknown parameter \"" + name + "\"");
    }
  }
  return Status();
}

// An integer parameter in [min, max], or `fallback` when absent.
Result<int64_t> IntParam(const QueryParams& params, std::string_view name, int64_t min, int64_t max,
                         int64_t fallback) {
  const std::string* value = params.Find(name);
  if (value == nullptr) return fallback;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), v);
  if (value->empty() || ec != std::errc() || end != value->data() + value->size() || v < min ||
      v > max) {
    return Bad("bad_parameter", std::string(name) + " must be an integer in [" +
                                    std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return v;
}

Result<std::optional<std::string>> SiteParam(const QueryParams& params) {
  const std::string* value = params.Find("site");
  if (value == nullptr || value->empty()) return std::optional<std::string>();
  if (!SiteId::IsValid(*value)) {
    return Bad("bad_parameter", "site must match " + std::string(kSiteIdRule.pattern));
  }
  return std::optional<std::string>(*value);
}

Result<std::optional<std::string>> ModelParam(const QueryParams& params) {
  const std::string* value = params.Find("model");
  if (value == nullptr || value->empty()) return std::optional<std::string>();
  if (!ModelName::IsValid(*value)) {
    return Bad("bad_parameter", "model must match " + std::string(kModelNameRule.pattern));
  }
  return std::optional<std::string>(*value);
}

Result<TimeRange> RangeParams(const QueryParams& params, int64_t default_since,
                              int64_t default_until) {
  TimeRange range;
  OUTPOST_ASSIGN_OR_RETURN(range.until_ms, IntParam(params, "until", 1, kMaxTimeMs, default_until));
  OUTPOST_ASSIGN_OR_RETURN(range.since_ms,
                           IntParam(params, "since", 0, kMaxTimeMs - 1,
                                    std::clamp<int64_t>(default_since, 0, kMaxTimeMs - 1)));
  if (range.since_ms >= range.until_ms) {
    return Bad("bad_parameter", "since must be before until");
  }
  return range;
}

Result<BucketedRange> BucketedRangeParams(const QueryParams& params, int64_t now_ms) {
  BucketedRange b;
  OUTPOST_ASSIGN_OR_RETURN(b.bucket_ms,
                           IntParam(params, "bucket", kMsPerMinute, 30 * kMsPerDay, kMsPerHour));
  const int64_t default_until = std::min(now_ms + 1, kMaxTimeMs);
  OUTPOST_ASSIGN_OR_RETURN(b.range,
                           RangeParams(params, default_until - 7 * kMsPerDay, default_until));
  b.first_ms = b.range.since_ms / b.bucket_ms * b.bucket_ms;
  b.count = (b.range.until_ms - b.first_ms + b.bucket_ms - 1) / b.bucket_ms;
  if (b.count > kMaxSeriesBuckets) {
    return Bad("bad_parameter", "at most 2000 buckets: widen bucket or narrow since/until");
  }
  return b;
}

}  // namespace dashboard_internal

using dashboard_internal::Bad;
using dashboard_internal::Decode;

const std::string* QueryParams::Find(std::string_view name) const {
  for (const auto& [n, v] : items) {
    if (n == name) return &v;
  }
  return nullptr;
}

Result<QueryParams> ParseQueryString(std::string_view query) {
  QueryParams params;
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string_view segment =
        query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    start = amp == std::string_view::npos ? query.size() + 1 : amp + 1;
    if (segment.empty()) continue;
    if (params.items.size() == kMaxQueryParams) {
      return Bad("too_many_parameters",
                 "at most " + std::to_string(kMaxQueryParams) + " parameters");
    }
    size_t eq = segment.find('=');
    std::string_view raw_name = segment.substr(0, eq);
    std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : segment.substr(eq + 1);
    OUTPOST_ASSIGN_OR_RETURN(std::string name, Decode(raw_name, kMaxParamNameBytes));
    OUTPOST_ASSIGN_OR_RETURN(std::string value, Decode(raw_value, kMaxParamValueBytes));
    if (name.empty()) return Bad("empty_name", "a parameter has no name");
    if (params.Find(name) != nullptr) {
      return Bad("repeated_parameter", "parameter \"" + name + "\" is repeated");
    }
    params.items.emplace_back(std::move(name), std::move(value));
  }
  return params;
}

}  // namespace outpost::hub
