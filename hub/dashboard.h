// Dashboard: the hub's fleet and insight views — the JSON query API under /api/v1/ and the
// built web assets (web/dist) that render it. Socket-free: the operator listener of
// `outpost hub` hands it a HubRequest whose caller it has authenticated, and sends back the
// HubResponse. hub/QUERY_API.md documents every route, parameter, limit and reason code.
//
//   hub::Dashboard dashboard(store.get(), hub::DefaultAssetsDir(), {});
//   dashboard.RegisterRoutes(operator_router);   // or, without a listener:
//   hub::HubResponse response = dashboard.Handle(request);
//
// Tenancy: the tenant comes from request.caller alone (an operator's bearer token, mapped by
// the listener); a site of another tenant answers 404 exactly as an unknown site does.
// Errors: every failure is a JSON body {"error": <message>, "reason": <stable code>} with a
// 4xx/5xx status; no input crashes or asserts.
// Thread-safe: Handle may be called from many threads at once (the store is thread-safe and
// the dashboard keeps no mutable state).
#ifndef OUTPOST_HUB_DASHBOARD_H_
#define OUTPOST_HUB_DASHBOARD_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/http/server.h"
#include "base/status.h"
#include "hub/http.h"
#include "hub/store.h"

namespace outpost::hub {

// Limits on the query string a client sends (each breach is a 400 with its reason).
inline constexpr size_t kMaxTargetBytes = 4096;    // the whole request target
inline constexpr size_t kMaxQueryParams = 16;      // parameters in one query string
inline constexpr size_t kMaxParamNameBytes = 32;   // a parameter's decoded name
inline constexpr size_t kMaxParamValueBytes = 256; // a parameter's decoded value

// A parsed query string: names and values percent-decoded ('+' is a space), in order.
struct QueryParams {
  std::vector<std::pair<std::string, std::string>> items{};
  // The value of `name`, or nullptr when absent.
  const std::string* Find(std::string_view name) const;
};

// Parses the part of a target after '?'. InvalidArgument whose message starts with a stable
// reason code and ": " — "bad_escape" (a '%' not followed by two hex digits, or a decoded
// NUL), "too_many_parameters", "parameter_too_long", "repeated_parameter", "empty_name".
// Empty segments ("a=1&&b=2") are skipped; a name without '=' has the empty value.
Result<QueryParams> ParseQueryString(std::string_view query);

// The built assets' folder compiled in: the source tree's web/dist.
std::string DefaultAssetsDir();

struct DashboardOptions {
  // A site whose last contact is older than this is "silent" ("last heard N days ago").
  std::chrono::milliseconds silent_after = std::chrono::hours(24);
  // A site heard from recently whose nodes' remaining autonomy (the reported days less the
  // days since the report) falls below this many days is "warning".
  double autonomy_warning_days = 1.0;
  // Records that one series/aggregates/training request may read from the store, per kind;
  // past it the answer says "truncated": true.
  size_t max_scan_records = 200'000;
  // The k-threshold of the global insights (hub/QUERY_API.md, "Global insights"): a
  // fleet-wide aggregate is answered only where at least this many sites contribute.
  size_t min_fleet_sites = 3;
  // The source of "now" (health, default time ranges). Must outlive the dashboard.
  Clock* clock = nullptr;  // nullptr: SystemClock()
};

class Dashboard {
 public:
  // `store` must outlive the dashboard. `assets_dir` holds index.html and assets/ (the
  // output of `npm run build` in web/); when it is missing, asset requests answer 503.
  Dashboard(Store* store, std::string assets_dir, DashboardOptions options = {});

  // The routes point at this object.
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  // Registers the dashboard's routes on the operator listener's router (base/http/server.h),
  // each for GET and HEAD (a HEAD answer has no body; any other method is a 405):
  // /api/v1/sites, /api/v1/aggregates, /api/v1/records, /api/v1/training, the paths under
  // /api/v1/sites/ (a site, its series, its audit) and under /api/v1/insights/ (anomaly,
  // drift, withheld, shadow), a 404 for any other path under /api/, and
  // the static assets for every other path (a target that is no path, not starting with '/',
  // is a 404). Every answer, 404 and 405 included, carries the security headers
  // (Content-Security-Policy and the rest). The API routes are for operators only (401
  // without an operator caller and tenant); the assets hold no data and go to any caller.
  // The dashboard must outlive the router's server.
  void RegisterRoutes(http::Router& router) const;

  // Answers one request through the same routes, without a listener (tests, fuzzing).
  HubResponse Handle(const HubRequest& request) const;

 private:
  Store* store_;  // not owned
  std::string assets_dir_;
  DashboardOptions options_;
  Clock* clock_;  // not owned
  http::Router router_;  // the routes above, for Handle
};

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_DASHBOARD_H_
