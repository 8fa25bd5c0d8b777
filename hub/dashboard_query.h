// The dashboard's parameter parsing, shared by its route handlers (hub/dashboard_*.cc): the
// checks every route makes of its query parameters, each failure an InvalidArgument whose
// message starts with the stable reason code and ": " (hub/QUERY_API.md). ParseQueryString
// itself is public (hub/dashboard.h). Internal to outpost_hub_query.
#ifndef OUTPOST_HUB_DASHBOARD_QUERY_H_
#define OUTPOST_HUB_DASHBOARD_QUERY_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "hub/dashboard.h"

namespace outpost::hub::dashboard_internal {

inline constexpr int64_t kMsPerMinute = 60'000;
inline constexpr int64_t kMsPerHour = 3'600'000;
inline constexpr int64_t kMsPerDay = 86'400'000;
inline constexpr int64_t kMaxTimeMs = int64_t{1} << 53;

// InvalidArgument "<reason>: <message>".
Status Bad(std::string_view reason, std::string_view message);

// [A-Za-z0-9._-], and ':' when `allow_colon`.
bool IsNameChar(char c, bool allow_colon);
// One of the record kinds the hub stores.
bool IsKind(std::string_view s);

// Checks that every parameter is one the route takes.
Status OnlyKnown(const QueryParams& params, std::initializer_list<std::string_view> known);

// An integer parameter in [min, max], or `fallback` when absent.
Result<int64_t> IntParam(const QueryParams& params, std::string_view name, int64_t min, int64_t max,
                         int64_t fallback);

// `site` and `model`: none when absent or empty.
Result<std::optional<std::string>> SiteParam(const QueryParams& params);
Result<std::optional<std::string>> ModelParam(const QueryParams& params);

struct TimeRange {
  int64_t since_ms = 0;
  int64_t until_ms = 0;
};

// `since` and `until`, with these defaults; since must be before until.
Result<TimeRange> RangeParams(const QueryParams& params, int64_t default_since,
                              int64_t default_until);

// The range and buckets of a time series: `since` and `until` (default: the 7 days before
// `now_ms`) and `bucket` (1 minute .. 30 days, default 1 h); the buckets run from since
// rounded down to a whole bucket to until, at most kMaxSeriesBuckets of them.
inline constexpr int64_t kMaxSeriesBuckets = 2000;
struct BucketedRange {
  TimeRange range{};
  int64_t bucket_ms = 0;
  int64_t first_ms = 0;  // the first bucket's start
  int64_t count = 0;     // the buckets, >= 1
};
Result<BucketedRange> BucketedRangeParams(const QueryParams& params, int64_t now_ms);

}  // namespace outpost::hub::dashboard_internal

#endif  // OUTPOST_HUB_DASHBOARD_QUERY_H_
