// GET /api/v1/insights/{anomaly,drift,withheld,shadow} (dashboard_internal.h): views across
// the caller's tenant's sites (hub/QUERY_API.md, "Global insights"). Each fleet-wide
// aggregate is answered only where at least options.min_fleet_sites sites contribute to it,
// and says "withheld" where fewer did.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/json/json.h"
#include "base/json_writer.h"
#include "hub/dashboard_internal.h"

namespace outpost::hub::dashboard_internal {
namespace {

constexpr size_t kMaxChartSites = 100;       // sites charted in one anomaly answer
constexpr int64_t kMaxSiteBuckets = 50'000;  // site buckets in one anomaly answer
constexpr size_t kMaxMapSites = 500;         // rows of the drift map, sites of withheld
constexpr size_t kMaxMapFeatures = 64;       // columns of the drift map
constexpr size_t kMaxAuditLinesPerSite = 100'000;
constexpr size_t kMaxRulesPerSite = 256;  // (decision, reason, kind) groups of a site
constexpr size_t kMaxShadowResults = 1000;

// A count, or null when a fleet aggregate is withheld.
void CountOrNull(JsonWriter& w, bool shown, uint64_t n) {
  if (shown) {
    w.Uint(n);
  } else {
    w.Null();
  }
}

// anomalies / rows, or null when rows is 0 or the aggregate is withheld.
void RateOrNull(JsonWriter& w, bool shown, uint64_t rows, uint64_t anomalies) {
  if (shown && rows > 0) {
    w.Double(static_cast<double>(anomalies) / static_cast<double>(rows));
  } else {
    w.Null();
  }
}

// Opens an insight's answer with the members every one starts with: its range, the
// k-threshold and whether a bound was hit.
void BeginInsight(JsonWriter& w, const TimeRange& range, size_t min_sites, bool truncated) {
  w.BeginObject();
  w.Key("since_ms");
  w.Int(range.since_ms);
  w.Key("until_ms");
  w.Int(range.until_ms);
  w.Key("min_sites");
  w.Uint(min_sites);
  w.Key("truncated");
  w.Bool(truncated);
}

// Visits the tenant's records of `kind` (of stream `model` when set) created in `range`, at
// most options.max_scan_records of them (sets *truncated past that). Store errors.
Status ScanTenant(const ApiContext& api, std::string_view kind,
                  const std::optional<std::string>& model, const TimeRange& range,
                  const std::function<void(const HubRecord&)>& visit, bool* truncated) {
  RecordQuery query{.tenant = api.tenant,
                    .kind = std::string(kind),
                    .stream = model,
                    .since_ms = range.since_ms,
                    .until_ms = range.until_ms};
  return ScanRecords(api.store, query, api.options.max_scan_records, visit, truncated);
}

// The caller's sites' ids, ordered, at most `max` (sets *truncated past it).
Result<std::vector<std::string>> TenantSiteIds(const ApiContext& api, size_t max, bool* truncated) {
  OUTPOST_ASSIGN_OR_RETURN(std::vector<SiteSummary> sites, api.store.ListSites(api.tenant));
  std::vector<std::string> ids;
  for (const SiteSummary& s : sites) {
    if (s.site.tenant == api.tenant) ids.push_back(s.site.site_id);
  }
  std::sort(ids.begin(), ids.end());
  if (ids.size() > max) {
    ids.resize(max);
    *truncated = true;
  }
  return ids;
}

// ---- anomaly ------------------------------------------------------------------------------

struct RowCounts {
  uint64_t rows = 0;
  uint64_t anomalies = 0;
};

struct AnomalySite {
  RowCounts total;
  std::vector<RowCounts> buckets;  // empty when the site is past the charted ones
};

struct AnomalyBuilder {
  int64_t first_ms = 0;
  int64_t width_ms = 0;
  int64_t count = 0;
  size_t max_chart_sites = 0;
  std::map<std::string, AnomalySite> sites;
  size_t charted = 0;
  std::vector<RowCounts> fleet;              // every site read
  std::vector<uint32_t> fleet_sites;         // contributing sites per bucket
  std::unordered_set<uint64_t> contributed;  // (bucket << 32 | site index) seen
  std::map<std::string, uint32_t> index;     // site -> index
  bool truncated = false;

  void Add(const HubRecord& record, json::Parser& parser) {
    if (record.created_ms < first_ms) return;
    const size_t i = static_cast<size_t>((record.created_ms - first_ms) / width_ms);
    if (i >= fleet.size()) return;
    json::Value o;
    if (!ParseObject(parser, record.payload, o)) return;
    const RowCounts c{CountField(o, "rows"), CountField(o, "anomalies")};
    auto [it, added] = sites.try_emplace(record.site_id);
    AnomalySite& site = it->second;
    if (added) {
      if (charted < max_chart_sites) {
        site.buckets.resize(static_cast<size_t>(count));
        ++charted;
      } else {
        truncated = true;
      }
      index.emplace(record.site_id, static_cast<uint32_t>(index.size()));
    }
    site.total.rows += c.rows;
    site.total.anomalies += c.anomalies;
    if (!site.buckets.empty()) {
      site.buckets[i].rows += c.rows;
      site.buckets[i].anomalies += c.anomalies;
    }
    fleet[i].rows += c.rows;
    fleet[i].anomalies += c.anomalies;
    if (c.rows > 0 && contributed.insert((uint64_t{i} << 32) | index.at(record.site_id)).second) {
      ++fleet_sites[i];
    }
  }
};

void WriteRowBucket(JsonWriter& w, int64_t start_ms, const RowCounts& c) {
  w.BeginObject();
  w.Key("start_ms");
  w.Int(start_ms);
  w.Key("rows");
  w.Uint(c.rows);
  w.Key("anomalies");
  w.Uint(c.anomalies);
  w.Key("anomaly_rate");
  RateOrNull(w, true, c.rows, c.anomalies);
  w.EndObject();
}

std::string AnomalyBody(const TimeRange& range, const AnomalyBuilder& b, size_t min_sites) {
  std::string body;
  JsonWriter w(body);
  BeginInsight(w, range, min_sites, b.truncated);
  w.Key("bucket_ms");
  w.Int(b.width_ms);
  w.Key("sites");
  w.BeginArray();
  RowCounts all;
  size_t contributing = 0;
  for (const auto& [site_id, site] : b.sites) {
    all.rows += site.total.rows;
    all.anomalies += site.total.anomalies;
    if (site.total.rows > 0) ++contributing;
    if (site.buckets.empty()) continue;
    w.BeginObject();
    w.Key("site_id");
    w.String(site_id);
    w.Key("rows");
    w.Uint(site.total.rows);
    w.Key("anomalies");
    w.Uint(site.total.anomalies);
    w.Key("anomaly_rate");
    RateOrNull(w, true, site.total.rows, site.total.anomalies);
    w.Key("buckets");
    w.BeginArray();
    for (size_t i = 0; i < site.buckets.size(); ++i) {
      WriteRowBucket(w, b.first_ms + static_cast<int64_t>(i) * b.width_ms, site.buckets[i]);
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  const bool shown = contributing >= min_sites;
  w.Key("fleet");
  w.BeginObject();
  w.Key("sites");
  w.Uint(contributing);
  w.Key("rows");
  CountOrNull(w, shown, all.rows);
  w.Key("anomalies");
  CountOrNull(w, shown, all.anomalies);
  w.Key("anomaly_rate");
  RateOrNull(w, shown, all.rows, all.anomalies);
  w.Key("withheld");
  w.Bool(!shown);
  w.Key("buckets");
  w.BeginArray();
  for (size_t i = 0; i < b.fleet.size(); ++i) {
    const bool bucket_shown = b.fleet_sites[i] >= min_sites;
    w.BeginObject();
    w.Key("start_ms");
    w.Int(b.first_ms + static_cast<int64_t>(i) * b.width_ms);
    w.Key("sites");
    w.Uint(b.fleet_sites[i]);
    w.Key("rows");
    CountOrNull(w, bucket_shown, b.fleet[i].rows);
    w.Key("anomalies");
    CountOrNull(w, bucket_shown, b.fleet[i].anomalies);
    w.Key("anomaly_rate");
    RateOrNull(w, bucket_shown, b.fleet[i].rows, b.fleet[i].anomalies);
    w.Key("withheld");
    w.Bool(!bucket_shown);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.EndObject();
  return body;
}

HubResponse AnomalyResponse(const ApiContext& api, const QueryParams& params) {
  json::Parser parser;  // one per request: handlers run on many threads
  if (Status s = OnlyKnown(params, {"model", "since", "until", "bucket"}); !s.ok()) {
    return BadRequest(s);
  }
  auto model = ModelParam(params);
  if (!model.ok()) return BadRequest(model.status());
  auto grid = BucketedRangeParams(params, api.now_ms);
  if (!grid.ok()) return BadRequest(grid.status());
  const TimeRange* range = &grid->range;
  const int64_t first = grid->first_ms;
  const int64_t count = grid->count;
  AnomalyBuilder b{.first_ms = first,
                   .width_ms = grid->bucket_ms,
                   .count = count,
                   .max_chart_sites = std::min<size_t>(
                       kMaxChartSites, static_cast<size_t>(kMaxSiteBuckets / count))};
  b.fleet.resize(static_cast<size_t>(count));
  b.fleet_sites.resize(static_cast<size_t>(count));
  Status s = ScanTenant(
      api, "aggregate", *model, *range, [&](const HubRecord& record) { b.Add(record, parser); },
      &b.truncated);
  if (!s.ok()) return StoreError(s);
  return Json(200, AnomalyBody(*range, b, api.options.min_fleet_sites));
}

// ---- drift --------------------------------------------------------------------------------

using FeatureKey = std::pair<std::string, std::string>;  // (model, feature)

struct DriftCell {
  double max_psi = 0;
  uint64_t records = 0;
  int64_t last_ms = 0;
  std::optional<double> level;
};
using DriftCells = std::map<std::pair<std::string, FeatureKey>, DriftCell>;  // (site, feature)

// The drift answer: the map of `cells` over `site_ids` and `features`, and the fleet row of
// each feature, withheld below `min_sites` sites.
std::string DriftBody(const TimeRange& range, const std::vector<std::string>& site_ids,
                      const std::set<FeatureKey>& features, const DriftCells& cells, bool truncated,
                      size_t min_sites) {
  std::string body;
  JsonWriter w(body);
  BeginInsight(w, range, min_sites, truncated);
  w.Key("sites");
  w.BeginArray();
  for (const std::string& id : site_ids) w.String(id);
  w.EndArray();
  w.Key("features");
  w.BeginArray();
  for (const FeatureKey& f : features) {
    w.BeginObject();
    w.Key("model");
    w.String(f.first);
    w.Key("feature");
    w.String(f.second);
    w.EndObject();
  }
  w.EndArray();
  w.Key("cells");
  w.BeginArray();
  std::map<FeatureKey, std::pair<size_t, double>> fleet;  // sites, sum of max_psi
  for (const auto& [key, cell] : cells) {
    auto& [n, sum] = fleet[key.second];
    ++n;
    sum += cell.max_psi;
    w.BeginObject();
    w.Key("site_id");
    w.String(key.first);
    w.Key("model");
    w.String(key.second.first);
    w.Key("feature");
    w.String(key.second.second);
    w.Key("max_psi");
    w.Double(cell.max_psi);
    w.Key("records");
    w.Uint(cell.records);
    w.Key("last_ms");
    w.Int(cell.last_ms);
    w.Key("level");
    w.OptionalDouble(cell.level);
    w.EndObject();
  }
  w.EndArray();
  w.Key("fleet");
  w.BeginArray();
  for (const FeatureKey& f : features) {
    const auto [n, sum] = fleet[f];
    const bool shown = n >= min_sites;
    w.BeginObject();
    w.Key("model");
    w.String(f.first);
    w.Key("feature");
    w.String(f.second);
    w.Key("sites");
    w.Uint(n);
    w.Key("mean_max_psi");
    if (shown && n > 0) {
      w.Double(sum / static_cast<double>(n));
    } else {
      w.Null();
    }
    w.Key("withheld");
    w.Bool(!shown);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return body;
}

HubResponse DriftResponse(const ApiContext& api, const QueryParams& params) {
  json::Parser parser;
  if (Status s = OnlyKnown(params, {"model", "since", "until"}); !s.ok()) return BadRequest(s);
  auto model = ModelParam(params);
  if (!model.ok()) return BadRequest(model.status());
  const int64_t default_until = std::min(api.now_ms + 1, kMaxTimeMs);
  auto range = RangeParams(params, default_until - 7 * kMsPerDay, default_until);
  if (!range.ok()) return BadRequest(range.status());
  bool truncated = false;
  auto site_ids = TenantSiteIds(api, kMaxMapSites, &truncated);
  if (!site_ids.ok()) return StoreError(site_ids.status());
  const std::set<std::string> listed(site_ids->begin(), site_ids->end());
  std::set<FeatureKey> features;
  DriftCells cells;
  Status s = ScanTenant(
      api, "drift", *model, *range,
      [&](const HubRecord& record) {
        if (!listed.count(record.site_id)) return;
        json::Value o;
        if (!ParseObject(parser, record.payload, o)) return;
        std::optional<double> psi = NumberField(o, "psi");
        if (!psi || !std::isfinite(*psi)) return;
        FeatureKey key{record.stream, StringField(o, "feature")};
        if (!features.count(key)) {
          if (features.size() == kMaxMapFeatures) {
            truncated = true;
            return;
          }
          features.insert(key);
        }
        std::pair<std::string, FeatureKey> cell_key{record.site_id, key};
        auto [it, added] = cells.try_emplace(std::move(cell_key));
        DriftCell& cell = it->second;
        cell.max_psi = added ? *psi : std::max(cell.max_psi, *psi);
        ++cell.records;
        cell.last_ms = std::max(cell.last_ms, record.created_ms);
        std::optional<double> level = NumberField(o, "level");
        if (level && std::isfinite(*level)) {
          cell.level = cell.level ? std::max(*cell.level, *level) : *level;
        }
      },
      &truncated);
  if (!s.ok()) return StoreError(s);

  return Json(
      200, DriftBody(*range, *site_ids, features, cells, truncated, api.options.min_fleet_sites));
}

// ---- withheld -----------------------------------------------------------------------------

using RuleKey = std::tuple<std::string, std::string, std::string>;  // decision, reason, kind

struct SiteWithheld {
  std::string site_id;
  uint64_t lines = 0;
  bool truncated = false;
  std::map<std::string, uint64_t> decisions = {{"allowed", 0}, {"withheld", 0}, {"rejected", 0}};
  std::map<RuleKey, uint64_t> rules;
};

// Counts one site's audit lines in `range`, reading at most `budget` lines.
Status CountSiteAudit(const ApiContext& api, const TimeRange& range, size_t budget,
                      json::Parser& parser, SiteWithheld& site) {
  const size_t want = std::min(budget, kMaxAuditLinesPerSite);
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> lines,
                           api.store.AuditLines(api.tenant, site.site_id, want + 1));
  if (lines.size() > want) {
    lines.resize(want);
    site.truncated = true;
  }
  site.lines = lines.size();
  for (const std::string& line : lines) {
    json::Value o;
    if (!ParseObject(parser, line, o)) continue;
    std::optional<double> t = NumberField(o, "time_ms");
    if (!t || *t < static_cast<double>(range.since_ms) ||
        *t >= static_cast<double>(range.until_ms)) {
      continue;
    }
    std::string decision = StringField(o, "decision");
    if (decision != "allowed" && decision != "withheld" && decision != "rejected") continue;
    ++site.decisions[decision];
    if (decision == "allowed") continue;
    RuleKey key{decision, StringField(o, "reason"), StringField(o, "kind")};
    if (site.rules.size() < kMaxRulesPerSite || site.rules.count(key)) ++site.rules[key];
  }
  return Status();
}

void WriteSiteWithheld(JsonWriter& w, const SiteWithheld& site) {
  w.BeginObject();
  w.Key("site_id");
  w.String(site.site_id);
  w.Key("lines");
  w.Uint(site.lines);
  w.Key("truncated");
  w.Bool(site.truncated);
  w.Key("decisions");
  w.BeginObject();
  for (const auto& [d, n] : site.decisions) {
    w.Key(d);
    w.Uint(n);
  }
  w.EndObject();
  w.Key("rules");
  w.BeginArray();
  for (const auto& [key, n] : site.rules) {
    w.BeginObject();
    w.Key("decision");
    w.String(std::get<0>(key));
    w.Key("reason");
    w.String(std::get<1>(key));
    w.Key("kind");
    w.String(std::get<2>(key));
    w.Key("count");
    w.Uint(n);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

HubResponse WithheldResponse(const ApiContext& api, const QueryParams& params) {
  json::Parser parser;
  if (Status s = OnlyKnown(params, {"since", "until"}); !s.ok()) return BadRequest(s);
  auto range = RangeParams(params, 0, std::min(api.now_ms + 1, kMaxTimeMs));
  if (!range.ok()) return BadRequest(range.status());
  bool truncated = false;
  auto site_ids = TenantSiteIds(api, kMaxMapSites, &truncated);
  if (!site_ids.ok()) return StoreError(site_ids.status());
  size_t budget = api.options.max_scan_records;
  std::vector<SiteWithheld> sites;
  for (const std::string& id : *site_ids) {
    SiteWithheld& site = sites.emplace_back();
    site.site_id = id;
    if (budget == 0) {
      site.truncated = true;
      continue;
    }
    Status s = CountSiteAudit(api, *range, budget, parser, site);
    if (!s.ok()) return StoreError(s);
    budget -= site.lines;
    truncated = truncated || site.truncated;
  }
  // (decision, reason) -> sites, count
  std::map<std::pair<std::string, std::string>, std::pair<size_t, uint64_t>> fleet;
  for (const SiteWithheld& site : sites) {
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& [key, n] : site.rules) {
      std::pair<std::string, std::string> rule{std::get<0>(key), std::get<1>(key)};
      auto& [count_sites, count] = fleet[rule];
      if (seen.insert(rule).second) ++count_sites;
      count += n;
    }
  }
  const size_t min_sites = api.options.min_fleet_sites;
  std::string body;
  JsonWriter w(body);
  BeginInsight(w, *range, min_sites, truncated);
  w.Key("sites");
  w.BeginArray();
  for (const SiteWithheld& site : sites) WriteSiteWithheld(w, site);
  w.EndArray();
  w.Key("fleet");
  w.BeginArray();
  for (const auto& [rule, counted] : fleet) {
    const bool shown = counted.first >= min_sites;
    w.BeginObject();
    w.Key("decision");
    w.String(rule.first);
    w.Key("reason");
    w.String(rule.second);
    w.Key("sites");
    w.Uint(counted.first);
    w.Key("count");
    CountOrNull(w, shown, counted.second);
    w.Key("withheld");
    w.Bool(!shown);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Json(200, std::move(body));
}

// ---- shadow -------------------------------------------------------------------------------

struct ShadowResult {
  std::string site_id, node_id, model, event;
  int64_t created_ms = 0;
  std::string payload;  // the event's JSON, read again when written
};

// The payload's `key` as an integer, or null.
void IntOrNull(JsonWriter& w, json::Value o, std::string_view key) {
  std::optional<double> v = NumberField(o, key);
  if (v && std::isfinite(*v) && std::fabs(*v) < 9e15 && *v == std::floor(*v)) {
    w.Int(static_cast<int64_t>(*v));
  } else {
    w.Null();
  }
}

void DoubleOrNull(JsonWriter& w, json::Value o, std::string_view key) {
  std::optional<double> v = NumberField(o, key);
  w.OptionalDouble(v && std::isfinite(*v) ? v : std::nullopt);
}

void WriteShadowResult(JsonWriter& w, const ShadowResult& r, json::Parser& parser) {
  json::Value o;
  const bool parsed = ParseObject(parser, r.payload, o);
  w.BeginObject();
  w.Key("site_id");
  w.String(r.site_id);
  w.Key("node_id");
  w.String(r.node_id);
  w.Key("model");
  w.String(r.model);
  w.Key("created_ms");
  w.Int(r.created_ms);
  w.Key("event");
  w.String(r.event);
  for (std::string_view key :
       {"version", "shadow_version", "champion_version", "compared", "agreed", "labelled"}) {
    w.Key(key);
    if (parsed) {
      IntOrNull(w, o, key);
    } else {
      w.Null();
    }
  }
  for (std::string_view key : {"agreement", "champion_accuracy", "shadow_accuracy"}) {
    w.Key(key);
    if (parsed) {
      DoubleOrNull(w, o, key);
    } else {
      w.Null();
    }
  }
  w.Key("persisted");
  std::optional<json::Value> persisted = parsed ? o.Find("persisted") : std::nullopt;
  Result<bool> b = persisted ? persisted->GetBool() : Result<bool>(NotFoundError("absent"));
  if (b.ok()) {
    w.Bool(*b);
  } else {
    w.Null();
  }
  w.EndObject();
}

HubResponse ShadowResponse(const ApiContext& api, const QueryParams& params) {
  json::Parser parser;
  if (Status s = OnlyKnown(params, {"model", "since", "until"}); !s.ok()) return BadRequest(s);
  auto model = ModelParam(params);
  if (!model.ok()) return BadRequest(model.status());
  auto range = RangeParams(params, 0, std::min(api.now_ms + 1, kMaxTimeMs));
  if (!range.ok()) return BadRequest(range.status());
  bool truncated = false;
  std::vector<ShadowResult> results;
  Status s = ScanTenant(
      api, "event", *model, *range,
      [&](const HubRecord& record) {
        json::Value o;
        if (!ParseObject(parser, record.payload, o)) return;
        std::string event = StringField(o, "event");
        if (event != "shadow_promoted" && event != "shadow_dropped") return;
        results.push_back({record.site_id, record.node_id, record.stream, std::move(event),
                           record.created_ms, record.payload});
      },
      &truncated);
  if (!s.ok()) return StoreError(s);
  std::stable_sort(
      results.begin(), results.end(),
      [](const ShadowResult& a, const ShadowResult& b) { return a.created_ms > b.created_ms; });
  if (results.size() > kMaxShadowResults) {
    results.resize(kMaxShadowResults);
    truncated = true;
  }
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("truncated");
  w.Bool(truncated);
  w.Key("results");
  w.BeginArray();
  for (const ShadowResult& r : results) WriteShadowResult(w, r, parser);
  w.EndArray();
  w.EndObject();
  return Json(200, std::move(body));
}

}  // namespace

HubResponse InsightsResponse(const ApiContext& api, std::string_view view,
                             const QueryParams& params) {
  if (view == "anomaly") return AnomalyResponse(api, params);
  if (view == "drift") return DriftResponse(api, params);
  if (view == "withheld") return WithheldResponse(api, params);
  if (view == "shadow") return ShadowResponse(api, params);
  return Error(404, "not_found", "no such route");
}

}  // namespace outpost::hub::dashboard_internal
