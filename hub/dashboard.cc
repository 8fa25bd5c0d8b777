// The dashboard's routes (dashboard.h): each API route checks the target and the caller,
// then hands the request to its resource's handler (dashboard_internal.h lists their files);
// every other path goes to the static assets. Also here: what those handlers share, the
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

void WriteJsonOrText(JsonWriter& w, json::Parser& parser, std::string_view key,
                     std::string_view text_key, std::string_view text) {
  if (Result<json::Value> v = parser.Parse(text); v.ok()) {
    w.Key(key);
    w.Raw(v->ToJson());
  } else {
    w.Key(text_key);
    w.String(text);
  }
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
  return store.GetSiteSummary(tenant, site_id);
}

}  // namespace dashboard_internal

using dashboard_internal::AggregatesResponse;
using dashboard_internal::ApiContext;
using dashboard_internal::AssetResponse;
using dashboard_internal::AuditResponse;
using dashboard_internal::BadRequest;
using dashboard_internal::Error;
using dashboard_internal::InsightsResponse;
using dashboard_internal::RecordsResponse;
using dashboard_internal::SeriesResponse;
using dashboard_internal::SiteResponse;
using dashboard_internal::SitesResponse;
using dashboard_internal::TrainingResponse;

std::string DefaultAssetsDir() { return OUTPOST_WEB_DIST_DIR; }

namespace {

// The part of a target after its '?'; empty when it has none.
std::string_view QueryOf(std::string_view target) {
  const size_t question = target.find('?');
  return question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
}

// What the bundled front end (web/, built with no CDN) needs and nothing more: its own
// script, stylesheet and API. Chart styles are set from script through the CSSOM, which
// style-src does not govern, so no 'unsafe-inline'. Every form submits from script.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

// The headers on every dashboard answer (page, asset, API and error alike): the policy
// above, no framing, no type sniffing and no Referer leaving the hub.
void AddSecurityHeaders(HubResponse& response) {
  response.headers.emplace_back("content-security-policy", kContentSecurityPolicy);
  response.headers.emplace_back("x-frame-options", "DENY");
  response.headers.emplace_back("x-content-type-options", "nosniff");
  response.headers.emplace_back("referrer-policy", "no-referrer");
}

// A route's handler from a function that returns its answer: the target's length is checked
// first, a HEAD answer loses its body, and every answer carries AddSecurityHeaders'.
template <typename Fn>
http::HandlerFn Route(Fn answer) {
  return [answer = std::move(answer)](const HubRequest& request, HubResponse& response) {
    if (request.target.size() > kMaxTargetBytes) {
      response = Error(414, "target_too_long", "the request target is over 4096 bytes");
    } else {
      response = answer(request);
    }
    if (request.method == "HEAD") response.body.clear();
    AddSecurityHeaders(response);
  };
}

// Every method but GET and HEAD on a dashboard path: 405, its Allow naming both.
HubResponse MethodNotAllowed(const HubRequest& request) {
  HubResponse response = Error(405, "method_not_allowed",
                               "method " + request.method + " is not allowed; use GET or HEAD");
  response.headers.emplace_back("allow", "GET, HEAD");
  return response;
}

// Registers `handler` for GET and HEAD, and MethodNotAllowed for every other method: the
// dashboard answers its 405s itself, with the security headers, instead of leaving them to
// the router's, which has none.
void AddGet(http::Router& router, std::string_view path, bool prefix,
            const http::HandlerFn& handler) {
  auto add = [&](const char* method, const http::HandlerFn& fn) {
    if (prefix) {
      router.Prefix(method, std::string(path), fn);
    } else {
      router.Exact(method, std::string(path), fn);
    }
  };
  add("GET", handler);
  add("HEAD", handler);
  add("*", Route(MethodNotAllowed));  // registered last: GET and HEAD match their own first
}

// GET /api/v1/sites/{site}[/series|/audit]; `rest` is what follows "sites/".
HubResponse SiteRoutes(const ApiContext& api, std::string_view rest, const QueryParams& params) {
  const size_t slash = rest.find('/');
  const std::string_view site_id = rest.substr(0, slash);
  if (!SiteId::IsValid(site_id)) return Error(404, "site_not_found", "no such site");
  if (slash == std::string_view::npos) return SiteResponse(api, site_id, params);
  const std::string_view sub = rest.substr(slash + 1);
  if (sub == "series") return SeriesResponse(api, site_id, params);
  if (sub == "audit") return AuditResponse(api, site_id, params);
  return Error(404, "not_found", "no such route");
}

}  // namespace

Dashboard::Dashboard(Store* store, std::string assets_dir, DashboardOptions options)
    : store_(store),
      assets_dir_(std::move(assets_dir)),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : &SystemClock()) {
  RegisterRoutes(router_);
}

void Dashboard::RegisterRoutes(http::Router& router) const {
  // An API route: an operator caller and a well-formed query string before anything else.
  auto api = [this](auto answer) {
    return Route([this, answer](const HubRequest& request) {
      if (request.caller.kind != Caller::Kind::kOperator || request.caller.tenant.empty()) {
        HubResponse response =
            Error(401, "unauthenticated", "an operator's bearer token is needed");
        response.headers.emplace_back("www-authenticate", "Bearer");
        return response;
      }
      Result<QueryParams> params = ParseQueryString(QueryOf(request.target));
      if (!params.ok()) return BadRequest(params.status());
      const ApiContext context{.store = *store_,
                               .options = options_,
                               .now_ms = UnixMillis(clock_->Now()),
                               .tenant = request.caller.tenant};
      return answer(context, http::Router::PathOf(request.target), *params);
    });
  };
  constexpr std::string_view kSites = "/api/v1/sites/";
  AddGet(router, "/api/v1/sites", false,
         api([](const ApiContext& c, std::string_view, const QueryParams& p) {
           return SitesResponse(c, p);
         }));
  AddGet(router, "/api/v1/aggregates", false,
         api([](const ApiContext& c, std::string_view, const QueryParams& p) {
           return AggregatesResponse(c, p);
         }));
  AddGet(router, "/api/v1/records", false,
         api([](const ApiContext& c, std::string_view, const QueryParams& p) {
           return RecordsResponse(c, p);
         }));
  AddGet(router, "/api/v1/audit", false,
         api([](const ApiContext& c, std::string_view, const QueryParams& p) {
           return HubAuditResponse(c, p);
         }));
  AddGet(router, "/api/v1/training", false,
         api([](const ApiContext& c, std::string_view, const QueryParams& p) {
           return TrainingResponse(c, p);
         }));
  AddGet(router, "/api/v1/installs", false,
         api([](const ApiContext& c, std::string_view, const QueryParams& p) {
           return InstallsResponse(c, p);
         }));
  AddGet(router, kSites, true,
         api([kSites](const ApiContext& c, std::string_view path, const QueryParams& p) {
           return SiteRoutes(c, path.substr(kSites.size()), p);
         }));
  constexpr std::string_view kInsights = "/api/v1/insights/";
  AddGet(router, kInsights, true,
         api([kInsights](const ApiContext& c, std::string_view path, const QueryParams& p) {
           return InsightsResponse(c, path.substr(kInsights.size()), p);
         }));
  // Any other /api/ path: still the operator and the query first, then 404.
  AddGet(router, "/api/", true, api([](const ApiContext&, std::string_view, const QueryParams&) {
           return Error(404, "not_found", "no such route");
         }));
  // Everything else: the built assets, no data in them, to any caller.
  AddGet(router, "/", true, Route([this](const HubRequest& request) {
           return AssetResponse(assets_dir_, http::Router::PathOf(request.target));
         }));
  // A target that no path above takes (one not starting with '/', as "*"): 404, with the
  // security headers too (the router's own 404 has none). The empty prefix is the shortest,
  // so on a shared router it takes only what no other route does.
  router.Prefix("*", "",
                Route([](const HubRequest&) { return Error(404, "not_found", "no such path"); }));
}

HubResponse Dashboard::Handle(const HubRequest& request) const {
  HubResponse response;
  router_.Handle(request, response);
  return response;
}

}  // namespace outpost::hub
