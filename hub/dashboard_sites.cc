// GET /api/v1/sites and GET /api/v1/sites/{site} (dashboard_internal.h): each site's
// identity, its nodes' reports and models, and its health, honest about disconnection.

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/names.h"
#include "hub/dashboard_internal.h"

namespace outpost::hub::dashboard_internal {
namespace {

// How far back storms are shown: the fleet view a week, the site page a month.
constexpr int64_t kStormDaysFleet = 7;
constexpr int64_t kStormDaysSite = 31;
// The most sites one page of the fleet table answers.
constexpr int64_t kMaxSitesPage = 1000;
// A site's health, in the order the counts are written.
constexpr std::array<std::string_view, 5> kHealths = {"ok", "warning", "silent", "never",
                                                      "revoked"};

struct ModelRef {
  std::string name;
  int64_t version = 0;
  std::string state;
};

std::vector<ModelRef> ParseModels(json::Parser& parser, const std::string& text) {
  std::vector<ModelRef> models;
  Result<json::Value> e = parser.Parse(text);
  if (!e.ok() || !e->is_array()) return models;
  for (json::Value o : e->Items()) {
    if (!o.is_object()) continue;
    ModelRef ref;
    ref.name = StringField(o, "name");
    std::optional<double> version = NumberField(o, "version");
    if (version && std::isfinite(*version) && std::fabs(*version) < 9e15) {
      ref.version = static_cast<int64_t>(*version);
    }
    ref.state = StringField(o, "state");
    if (!ref.name.empty() && models.size() < 256) models.push_back(std::move(ref));
  }
  return models;
}

std::string AgoText(int64_t elapsed_ms) {
  auto plural = [](int64_t n, std::string_view unit) {
    return std::to_string(n) + " " + std::string(unit) + (n == 1 ? "" : "s");
  };
  if (elapsed_ms < 0) elapsed_ms = 0;
  if (elapsed_ms >= kMsPerDay)
    return "last heard " + plural(elapsed_ms / kMsPerDay, "day") + " ago";
  if (elapsed_ms >= kMsPerHour) {
    return "last heard " + plural(elapsed_ms / kMsPerHour, "hour") + " ago";
  }
  return "last heard " + plural(elapsed_ms / kMsPerMinute, "minute") + " ago";
}

std::string FormatDays(double days) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), std::round(days * 10) / 10,
                                 std::chars_format::fixed, 1);
  (void)ec;
  return std::string(buf, end);
}

// Writes a model's name, version and state as three keys of the open object.
void WriteModelFields(JsonWriter& w, const ModelRef& model) {
  w.Key("name");
  w.String(model.name);
  w.Key("version");
  w.Int(model.version);
  w.Key("state");
  w.String(model.state);
}

// Writes the site's own fields: identity, contact times and its record count.
void WriteSiteIdentity(JsonWriter& w, const SiteSummary& summary) {
  const Site& site = summary.site;
  w.Key("site_id");
  w.String(site.site_id);
  w.Key("region");
  w.String(site.region);
  w.Key("created_ms");
  w.Int(site.created_ms);
  w.Key("revoked");
  w.Bool(site.revoked);
  w.Key("last_contact_ms");
  if (site.last_contact_ms > 0) {
    w.Int(site.last_contact_ms);
  } else {
    w.Null();
  }
  w.Key("newest_record_ms");
  if (summary.newest_record_ms) {
    w.Int(*summary.newest_record_ms);
  } else {
    w.Null();
  }
  w.Key("records");
  w.Uint(summary.records);
}

// What a site's node reports add up to.
struct NodeTotals {
  uint64_t backlog_records = 0;
  uint64_t backlog_bytes = 0;
  std::optional<double> reported;  // the smallest autonomy a node reported, in days
  std::optional<double> left;      // the smallest autonomy left at now_ms, in days
  std::string basis;  // why there is no estimate: the most telling basis a node reported
  std::vector<std::vector<ModelRef>> node_models;  // each node's models, in node order
};

// The days of autonomy a node has left at now_ms: its report less the days since the hub
// received it, floored at 0; none when it reported no number.
std::optional<double> NodeAutonomyLeft(const NodeStatus& node, int64_t now_ms) {
  if (!node.autonomy_days || !std::isfinite(*node.autonomy_days)) return std::nullopt;
  double since_report = static_cast<double>(std::max<int64_t>(0, now_ms - node.received_ms)) /
                        static_cast<double>(kMsPerDay);
  return std::max(0.0, *node.autonomy_days - since_report);
}

// The least autonomy left over the site's nodes at now_ms.
std::optional<double> SiteAutonomyLeft(const SiteSummary& summary, int64_t now_ms) {
  std::optional<double> left;
  for (const NodeStatus& node : summary.nodes) {
    std::optional<double> remaining = NodeAutonomyLeft(node, now_ms);
    if (remaining) left = left ? std::min(*left, *remaining) : *remaining;
  }
  return left;
}

// Sums the node reports of `summary` as of `now_ms` and parses each node's models.
NodeTotals SumNodes(json::Parser& parser, const SiteSummary& summary, int64_t now_ms) {
  NodeTotals totals;
  totals.left = SiteAutonomyLeft(summary, now_ms);
  for (const NodeStatus& node : summary.nodes) {
    totals.backlog_records += node.backlog_records;
    totals.backlog_bytes += node.backlog_bytes;
    if (NodeAutonomyLeft(node, now_ms)) {
      const double days = *node.autonomy_days;
      totals.reported = totals.reported ? std::min(*totals.reported, days) : days;
    }
    totals.node_models.push_back(ParseModels(parser, node.models_json));
    // Without an estimate, say why: not enough history outranks draining, which outranks idle.
    // A node that reported a number (an older one says no basis) has an estimate.
    const std::string_view node_basis =
        node.autonomy_days ? std::string_view("estimated") : std::string_view(node.autonomy_basis);
    for (std::string_view b : {"estimated", "not_enough_history", "draining", "idle"}) {
      if (totals.basis == b) break;
      if (node_basis == b) {
        totals.basis = std::string(b);
        break;
      }
    }
  }
  return totals;
}

// Writes the site's backlog and autonomy totals and the models of all its nodes.
void WriteNodeTotals(JsonWriter& w, const SiteSummary& summary, const NodeTotals& totals) {
  w.Key("backlog_records");
  w.Uint(totals.backlog_records);
  w.Key("backlog_bytes");
  w.Uint(totals.backlog_bytes);
  w.Key("autonomy_days_reported");
  w.OptionalDouble(totals.reported);
  w.Key("autonomy_days_left");
  if (totals.left) {
    w.Double(std::round(*totals.left * 1000) / 1000);
  } else {
    w.Null();
  }
  w.Key("autonomy_basis");
  if (totals.basis.empty()) {
    w.Null();
  } else {
    w.String(totals.basis);
  }
  w.Key("models");
  w.BeginArray();
  for (size_t i = 0; i < summary.nodes.size(); ++i) {
    for (const ModelRef& model : totals.node_models[i]) {
      w.BeginObject();
      WriteModelFields(w, model);
      w.Key("node_id");
      w.String(summary.nodes[i].node_id);
      w.EndObject();
    }
  }
  w.EndArray();
}

// Writes the "nodes" array: each node's report with its models.
void WriteNodes(JsonWriter& w, const SiteSummary& summary, const NodeTotals& totals) {
  w.Key("nodes");
  w.BeginArray();
  for (size_t i = 0; i < summary.nodes.size(); ++i) {
    const NodeStatus& node = summary.nodes[i];
    w.BeginObject();
    w.Key("node_id");
    w.String(node.node_id);
    w.Key("reported_ms");
    w.Int(node.reported_ms);
    w.Key("received_ms");
    w.Int(node.received_ms);
    w.Key("backlog_records");
    w.Uint(node.backlog_records);
    w.Key("backlog_bytes");
    w.Uint(node.backlog_bytes);
    w.Key("autonomy_days");
    w.OptionalDouble(node.autonomy_days);
    w.Key("autonomy_basis");
    if (node.autonomy_basis.empty()) {
      w.Null();
    } else {
      w.String(node.autonomy_basis);
    }
    w.Key("outbox_account");
    if (node.outbox_account_json.empty()) {
      w.Null();
    } else {
      w.Raw(node.outbox_account_json);
    }
    w.Key("models");
    w.BeginArray();
    for (const ModelRef& model : totals.node_models[i]) {
      w.BeginObject();
      WriteModelFields(w, model);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

struct SiteHealth {
  std::string health;  // "ok", "warning", "silent", "never" or "revoked"
  std::string text;    // the health in words, for the page
};

// The site's health, honest about disconnection: a silent site is never "ok".
SiteHealth HealthOf(const Site& site, std::optional<double> left, int64_t elapsed,
                    const DashboardOptions& options) {
  if (site.revoked) return {"revoked", "credential revoked"};
  if (site.last_contact_ms <= 0) return {"never", "never heard from"};
  if (elapsed > options.silent_after.count()) return {"silent", AgoText(elapsed)};
  if (left && *left < options.autonomy_warning_days) {
    return {"warning", "autonomy " + FormatDays(*left) + " days left"};
  }
  return {"ok", AgoText(elapsed)};
}

void WriteSite(JsonWriter& w, json::Parser& parser, const SiteSummary& summary,
               const SiteOverflow& overflow, int64_t now_ms, const DashboardOptions& options) {
  const Site& site = summary.site;
  w.BeginObject();
  WriteSiteIdentity(w, summary);
  NodeTotals totals = SumNodes(parser, summary, now_ms);
  WriteNodeTotals(w, summary, totals);
  WriteNodes(w, summary, totals);
  WriteOverflow(w, overflow);

  int64_t elapsed = now_ms - site.last_contact_ms;
  SiteHealth health = HealthOf(site, totals.left, elapsed, options);
  w.Key("health");
  w.String(health.health);
  w.Key("health_text");
  w.String(health.text);
  w.Key("silent_for_ms");
  if (site.last_contact_ms > 0) {
    w.Int(std::max<int64_t>(0, elapsed));
  } else {
    w.Null();
  }
  w.EndObject();
}

// The fleet table's filters and page (hub/QUERY_API.md, GET /api/v1/sites).
struct SitesPage {
  std::optional<size_t> limit;  // none: every matching site
  std::string after;            // only sites ordered after this id; empty: from the first
  std::string health;           // empty: any
  std::string prefix;           // empty: any
};

Result<SitesPage> ParseSitesPage(const QueryParams& params) {
  OUTPOST_RETURN_IF_ERROR(OnlyKnown(params, {"limit", "after", "health", "prefix"}));
  SitesPage page;
  if (params.Find("limit") != nullptr) {
    OUTPOST_ASSIGN_OR_RETURN(int64_t limit, IntParam(params, "limit", 1, kMaxSitesPage, 0));
    page.limit = static_cast<size_t>(limit);
  }
  if (const std::string* after = params.Find("after"); after != nullptr && !after->empty()) {
    if (!SiteId::IsValid(*after)) {
      return Bad("bad_parameter", "after must match " + std::string(kSiteIdRule.pattern));
    }
    page.after = *after;
  }
  if (const std::string* health = params.Find("health"); health != nullptr && !health->empty()) {
    if (std::find(kHealths.begin(), kHealths.end(), *health) == kHealths.end()) {
      return Bad("bad_parameter", "health must be ok, warning, silent, never or revoked");
    }
    page.health = *health;
  }
  if (const std::string* prefix = params.Find("prefix"); prefix != nullptr && !prefix->empty()) {
    // A prefix of a site id: the id's characters, at most its length.
    if (prefix->size() > 128 ||
        !std::all_of(prefix->begin(), prefix->end(), [](char c) { return IsNameChar(c, true); })) {
      return Bad("bad_parameter", "prefix must be at most 128 of a site id's characters");
    }
    page.prefix = *prefix;
  }
  return page;
}

}  // namespace

HubResponse SitesResponse(const ApiContext& api, const QueryParams& params) {
  json::Parser parser;  // one per request: handlers run on many threads
  Result<SitesPage> page = ParseSitesPage(params);
  if (!page.ok()) return BadRequest(page.status());
  auto sites = api.store.ListSites(api.tenant);
  if (!sites.ok()) return StoreError(sites.status());
  std::sort(sites->begin(), sites->end(), [](const SiteSummary& a, const SiteSummary& b) {
    return a.site.site_id < b.site.site_id;
  });
  // One pass over the fleet for the counts (every site) and the page (the matching sites
  // after the cursor). Only the page's sites are written, and only theirs have their
  // storms read: one indexed read a hundred sites (hub/STORE.md section 6).
  std::map<std::string, int> counts;
  for (std::string_view health : kHealths) counts[std::string(health)] = 0;
  uint64_t matched = 0;
  std::vector<const SiteSummary*> answered;
  bool more = false;
  for (const SiteSummary& summary : *sites) {
    if (summary.site.tenant != api.tenant) continue;  // never another tenant's
    const std::string health = HealthOf(summary.site, SiteAutonomyLeft(summary, api.now_ms),
                                        api.now_ms - summary.site.last_contact_ms, api.options)
                                   .health;
    ++counts[health];
    if (!page->health.empty() && health != page->health) continue;
    if (!summary.site.site_id.starts_with(page->prefix)) continue;
    ++matched;
    if (!page->after.empty() && summary.site.site_id <= page->after) continue;
    if (page->limit && answered.size() == *page->limit) {
      more = true;
      continue;
    }
    answered.push_back(&summary);
  }
  // The fleet view shows the storms of the last week.
  std::vector<std::string> ids;
  ids.reserve(answered.size());
  for (const SiteSummary* summary : answered) ids.push_back(summary->site.site_id);
  auto overflows =
      ReadSitesOverflow(api.store, api.tenant, ids, api.now_ms - kStormDaysFleet * kMsPerDay);
  if (!overflows.ok()) return StoreError(overflows.status());
  std::string rows;
  JsonWriter rw(rows);
  rw.BeginArray();
  for (const SiteSummary* summary : answered) {
    WriteSite(rw, parser, *summary, (*overflows)[summary->site.site_id], api.now_ms, api.options);
  }
  rw.EndArray();
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("now_ms");
  w.Int(api.now_ms);
  w.Key("silent_after_ms");
  w.Int(api.options.silent_after.count());
  w.Key("counts");
  w.BeginObject();
  for (std::string_view health : kHealths) {
    w.Key(health);
    w.Int(counts[std::string(health)]);
  }
  w.EndObject();
  w.Key("matched");
  w.Uint(matched);
  w.Key("next_after");
  if (more) {
    w.String(answered.back()->site.site_id);
  } else {
    w.Null();
  }
  w.Key("sites");
  w.Raw(rows);
  w.EndObject();
  return Json(200, std::move(body));
}

HubResponse SiteResponse(const ApiContext& api, std::string_view site_id,
                         const QueryParams& params) {
  json::Parser parser;  // one per request: handlers run on many threads
  if (Status s = OnlyKnown(params, {}); !s.ok()) return BadRequest(s);
  auto summary = FindSite(api.store, api.tenant, site_id);
  if (!summary.ok()) return StoreError(summary.status());
  auto overflow = ReadSiteOverflow(api.store, api.tenant, summary->site.site_id,
                                   api.now_ms - kStormDaysSite * kMsPerDay);
  if (!overflow.ok()) return StoreError(overflow.status());
  std::string body;
  JsonWriter w(body);
  WriteSite(w, parser, *summary, *overflow, api.now_ms, api.options);
  // The site object plus now_ms, so the page can state "as of".
  body.pop_back();
  body += ",\"now_ms\":";
  AppendJsonNumber(body, api.now_ms);
  body += "}";
  return Json(200, std::move(body));
}

}  // namespace outpost::hub::dashboard_internal
