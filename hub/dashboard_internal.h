// What the dashboard's route handlers share (hub/dashboard.h): the request's context, the
// JSON and error responses, the readers of stored payloads, paging through records, and one
// handler per resource, each in its own file:
//   dashboard_sites.cc       GET /api/v1/sites, GET /api/v1/sites/{site}
//   dashboard_series.cc      GET /api/v1/sites/{site}/series
//   dashboard_audit.cc       GET /api/v1/sites/{site}/audit
//   dashboard_aggregates.cc  GET /api/v1/aggregates
//   dashboard_records.cc     GET /api/v1/records
//   dashboard_training.cc    GET /api/v1/training
//   dashboard_insights.cc    GET /api/v1/insights/{anomaly,drift,withheld,shadow}
//   dashboard_installs.cc    GET /api/v1/installs
//   dashboard_storms.cc      a site's storms and outbox account, from its summary records
//   dashboard_assets.cc      the built web assets
// dashboard.cc routes a request to them. Internal to outpost_hub_query; stored payloads are
// read through the JSON adapter (base/json/json.h).
#ifndef OUTPOST_HUB_DASHBOARD_INTERNAL_H_
#define OUTPOST_HUB_DASHBOARD_INTERNAL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/status.h"
#include "hub/dashboard.h"
#include "hub/dashboard_query.h"
#include "hub/http.h"
#include "hub/store.h"

namespace outpost::hub::dashboard_internal {

// One API request: the store, the options, the time it is answered at and the caller's
// tenant (every handler answers for this tenant alone).
struct ApiContext {
  Store& store;  // the dashboard's; outlives the request
  const DashboardOptions& options;
  int64_t now_ms = 0;
  std::string tenant;
};

// --- responses ---

// A JSON answer, not to be cached.
HubResponse Json(int status, std::string body);
// Writes `text` as the member `key` when it parses as JSON (re-serialized compactly by the
// parser, never the raw bytes), else as the string member `text_key`.
void WriteJsonOrText(JsonWriter& w, json::Parser& parser, std::string_view key,
                     std::string_view text_key, std::string_view text);
// An error answer {"error", "reason"}, not to be cached.
HubResponse Error(int status, std::string_view reason, std::string_view message);
// 400 for an InvalidArgument from the parameter parsers ("reason: message").
HubResponse BadRequest(const Status& status);
// 404 site_not_found, 400 bad_parameter or 503 store_unavailable for a store's error.
HubResponse StoreError(const Status& status);

// --- payloads ---

// Reads a JSON number (any of the three kinds) as a double.
std::optional<double> Number(json::Value e);
std::optional<double> NumberField(json::Value o, std::string_view key);
// A count: a finite number in [0, 1e18]; 0 otherwise.
uint64_t CountField(json::Value o, std::string_view key);
// A string field; empty when absent or not a string.
std::string StringField(json::Value o, std::string_view key);
// Parses `text` with `parser` as an object into `out` (valid until the parser's next parse);
// false when it is not one.
bool ParseObject(json::Parser& parser, const std::string& text, json::Value& out);

// --- the store ---

// Reads every record that `query` selects, page by page, up to `max_records`. Sets
// *truncated when more were there.
Status ScanRecords(Store& store, RecordQuery query, size_t max_records,
                   const std::function<void(const HubRecord&)>& visit, bool* truncated);

// The caller's site named `site_id`, or NotFound (also for another tenant's site).
Result<SiteSummary> FindSite(Store& store, const std::string& tenant, std::string_view site_id);

// --- what a site's outbox could not keep (outbox/FORMAT.md sections 9, 11, 12) ---

// One storm: a rule that flooded its class, over a run of summary windows.
struct Storm {
  std::string kind{};
  std::string stream{};
  std::string rule{};
  uint64_t raised = 0;   // records the rule raised in the storm's windows
  uint64_t kept = 0;     // of those, stored (not sampled out, refused or evicted)
  uint64_t evicted = 0;  // the rule's records evicted in the storm's windows
  int64_t from_ms = 0;   // the first record sampled out
  int64_t to_ms = 0;     // the last
};

struct SiteOverflow {
  std::vector<Storm> storms{};  // newest first
  std::string account_json{};   // the newest summary's "classes"; empty = none received
  std::string rules_json{};     // the newest summary's "rules" (its window, per rule)
  int64_t account_as_of_ms = 0;
};

// "anomaly storm: 15.4 M raised, 1,008 kept, 06:10–08:40" (UTC).
std::string StormText(const Storm& storm);
// Reads the site's outbox summary records created since `since_ms`: its storms, windows of
// one rule within two hours of each other merged, and the newest account. Store errors.
Result<SiteOverflow> ReadSiteOverflow(Store& store, const std::string& tenant,
                                      const std::string& site_id, int64_t since_ms);
// The same for several sites, in one read per hundred sites; every site named has an entry.
Result<std::map<std::string, SiteOverflow>> ReadSitesOverflow(
    Store& store, const std::string& tenant, const std::vector<std::string>& site_ids,
    int64_t since_ms);
// Writes "storms" and "outbox_account" as keys of the open object.
void WriteOverflow(JsonWriter& w, const SiteOverflow& overflow);

// --- the handlers, one per resource; each gets the parsed parameters ---

HubResponse SitesResponse(const ApiContext& api, const QueryParams& params);
HubResponse SiteResponse(const ApiContext& api, std::string_view site_id,
                         const QueryParams& params);
HubResponse SeriesResponse(const ApiContext& api, std::string_view site_id,
                           const QueryParams& params);
HubResponse AuditResponse(const ApiContext& api, std::string_view site_id,
                          const QueryParams& params);
HubResponse AggregatesResponse(const ApiContext& api, const QueryParams& params);
HubResponse RecordsResponse(const ApiContext& api, const QueryParams& params);
// GET /api/v1/audit: the hub's own audit lines of the caller's tenant (hub_audit).
HubResponse HubAuditResponse(const ApiContext& api, const QueryParams& params);
HubResponse TrainingResponse(const ApiContext& api, const QueryParams& params);
// GET /api/v1/insights/{view}: view is what follows "insights/" (anomaly, drift, withheld,
// shadow; any other is a 404).
HubResponse InsightsResponse(const ApiContext& api, std::string_view view,
                             const QueryParams& params);
HubResponse InstallsResponse(const ApiContext& api, const QueryParams& params);

// GET of `path` (the target's path) from the built assets in `assets_dir`: 404 for a path
// that is not an asset, 503 when the assets are not built. The route adds the security
// headers (dashboard.cc, AddSecurityHeaders).
HubResponse AssetResponse(const std::string& assets_dir, std::string_view path);

}  // namespace outpost::hub::dashboard_internal

#endif  // OUTPOST_HUB_DASHBOARD_INTERNAL_H_
