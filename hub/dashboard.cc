// The dashboard's router (dashboard.h): checks the method, the target and the caller, and
// hands each API route to its resource's handler (dashboard_internal.h lists their files) and
// every other path to the static assets. Also here: what those handlers share, the
// responses, the payload readers and paging through the store.
#include "hub/dashboard.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json/json.h"
#include "base/names.h"
#include "hub/dashboard_internal.h"

#ifndef OUTPOST_WEB_DIST_DIR
#define OUTPOST_WEB_DIST_DIR "web/dist"
#endif

namespace outpost::hub {
namespace dashboard_internal {
namespace {

constexpr size_t kPageSize = 10'000;  // the store's cap on one QueryRecords call

}  // namespace

HubResponse Json(int status, std::string body) {
  HubResponse response;
  response.status = status;
  response.body = std::move(body);
  response.headers.emplace_back("cache-control", "no-store");
  return response;
}

HubResponse Error(int status, std::string_view reason, std::string_view message) {
  HubResponse response = ErrorResponse(status, reason, message);
  response.headers.emplace_back("cache-control", "no-store");
  return response;
}

// An InvalidArgument from the query parsers (dashboard_query.h) carries its own reason.
HubResponse BadRequest(const Status& status) {
  return Error(400, status.has_reason() ? status.reason() : "bad_parameter", status.message());
}

HubResponse StoreError(const Status& status) {
  if (status.code() == StatusCode::kNotFound) {
    return Error(404, "site_not_found", "no such site");
  }
  if (status.code() == StatusCode::kInvalidArgument) {
    return Error(400, "bad_parameter", status.message());
  }
  return Error(503, "store_unavailable", "the hub's store failed: " + status.ToString());
}

// Reads a JSON number (any of the three kinds) as a double.
std::optional<double> Number(json::Value e) {
  Result<double> d = e.GetDouble();
  if (!d.ok()) return std::nullopt;
  return *d;
}

std::optional<double> NumberField(json::Value o, std::string_view key) {
  std::optional<json::Value> e = o.Find(key);
  if (!e) return std::nullopt;
  return Number(*e);
}

uint64_t CountField(json::Value o, std::string_view key) {
  std::optional<double> v = NumberField(o, key);
  if (!v || !std::isfinite(*v) || *v < 0 || *v > 1e18) return 0;
  return static_cast<uint64_t>(*v);
}

std::string StringField(json::Value o, std::string_view key) {
  Result<std::string_view> s = o[key].GetString();
  if (!s.ok()) return {};
  return std::string(*s);
}

// Parses `text` as an object; false when it is not one.
bool ParseObject(json::Parser& parser, const std::string& text, json::Value& out) {
  Result<json::Value> e = parser.Parse(text);
  if (!e.ok() || !e->is_object()) return false;
  out = *e;
  return true;
}

// Reads every record that `query` selects, page by page, up to `max_records`. Sets
// *truncated when more were there.
Status ScanRecords(Store& store, RecordQuery query, size_t max_records,
                   const std::function<void(const HubRecord&)>& visit, bool* truncated) {
  size_t seen = 0;
  while (true) {
    query.limit = std::min(kPageSize, max_records - seen + 1);
    OUTPOST_ASSIGN_OR_RETURN(std::vector<HubRecord> page, store.QueryRecords(query));
    for (const HubRecord& record : page) {
      if (seen == max_records) {
        *truncated = true;
        return Status();
      }
      visit(record);
      ++seen;
      query.after_id = std::max(query.after_id, record.id);
    }
    if (page.size() < query.limit) return Status();
  }
}

// The caller's site named `site_id`, or NotFound (also for another tenant's site).
Result<SiteSummary> FindSite(Store& store, const std::string& tenant, std::string_view site_id) {
  OUTPOST_ASSIGN_OR_RETURN(std::vector<SiteSummary> sites, store.ListSites(tenant));
  for (SiteSummary& summary : sites) {
    if (summary.site.site_id == site_id && summary.site.tenant == tenant) {
      return std::move(summary);
    }
  }
  return NotFoundError("no such site");
}

}  // namespace dashboard_internal

using dashboard_internal::AggregatesResponse;
using dashboard_internal::ApiContext;
using dashboard_internal::AssetResponse;
using dashboard_internal::AuditResponse;
using dashboard_internal::BadRequest;
using dashboard_internal::Error;
using dashboard_internal::RecordsResponse;
using dashboard_internal::SeriesResponse;
using dashboard_internal::SiteResponse;
using dashboard_internal::SitesResponse;
using dashboard_internal::TrainingResponse;

std::string DefaultAssetsDir() { return OUTPOST_WEB_DIST_DIR; }

Dashboard::Dashboard(Store* store, std::string assets_dir, DashboardOptions options)
    : store_(store),
      assets_dir_(std::move(assets_dir)),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : &SystemClock()) {}

HubResponse Dashboard::Handle(const HubRequest& request) const {
  if (request.target.size() > kMaxTargetBytes) {
    return Error(414, "target_too_long", "the request target is over 4096 bytes");
  }
  std::string_view target = request.target;
  size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  bool head = request.method == "HEAD";
  if (request.method != "GET" && !head) {
    HubResponse response = Error(405, "method_not_allowed", "only GET and HEAD are served");
    response.headers.emplace_back("allow", "GET, HEAD");
    return response;
  }
  auto strip_body = [head](HubResponse response) {
    if (head) response.body.clear();
    return response;
  };

  constexpr std::string_view kApi = "/api/v1/";
  if (path.starts_with("/api/")) {
    if (request.caller.kind != Caller::Kind::kOperator || request.caller.tenant.empty()) {
      HubResponse response = Error(401, "unauthenticated", "an operator's bearer token is needed");
      response.headers.emplace_back("www-authenticate", "Bearer");
      return strip_body(std::move(response));
    }
    auto params = ParseQueryString(query);
    if (!params.ok()) return strip_body(BadRequest(params.status()));
    if (!path.starts_with(kApi)) return strip_body(Error(404, "not_found", "no such route"));
    std::string_view route = path.substr(kApi.size());
    const ApiContext api{.store = *store_,
                         .options = options_,
                         .now_ms = UnixMillis(clock_->Now()),
                         .tenant = request.caller.tenant};
    if (route == "sites") return strip_body(SitesResponse(api, *params));
    if (route == "aggregates") return strip_body(AggregatesResponse(api, *params));
    if (route == "records") return strip_body(RecordsResponse(api, *params));
    if (route == "training") return strip_body(TrainingResponse(api, *params));
    if (route.starts_with("sites/")) {
      std::string_view rest = route.substr(6);
      size_t slash = rest.find('/');
      std::string_view site_id = rest.substr(0, slash);
      std::string_view sub =
          slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
      if (!SiteId::IsValid(site_id)) {
        return strip_body(Error(404, "site_not_found", "no such site"));
      }
      if (slash == std::string_view::npos) return strip_body(SiteResponse(api, site_id, *params));
      if (sub == "series") return strip_body(SeriesResponse(api, site_id, *params));
      if (sub == "audit") return strip_body(AuditResponse(api, site_id, *params));
    }
    return strip_body(Error(404, "not_found", "no such route"));
  }

  // Static assets: the built dashboard, no data in them.
  return strip_body(AssetResponse(assets_dir_, path));
}

}  // namespace outpost::hub
