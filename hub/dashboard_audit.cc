// GET /api/v1/sites/{site}/audit (dashboard_internal.h): a site's compliance audit lines,
// with the count of each decision and of each policy; GET /api/v1/audit: the hub's own audit
// lines (refusals, operators' actions) of every hub sharing the store.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json/json.h"
#include "base/json_writer.h"
#include "hub/dashboard_internal.h"

namespace outpost::hub::dashboard_internal {

HubResponse AuditResponse(const ApiContext& api, std::string_view site_id,
                          const QueryParams& params) {
  json::Parser parser;  // one per request: handlers run on many threads
  if (Status s = OnlyKnown(params, {"limit"}); !s.ok()) return BadRequest(s);
  auto limit = IntParam(params, "limit", 1, 10'000, 1000);
  if (!limit.ok()) return BadRequest(limit.status());
  auto found = FindSite(api.store, api.tenant, site_id);
  if (!found.ok()) return StoreError(found.status());
  auto lines = api.store.AuditLines(api.tenant, site_id, static_cast<size_t>(*limit));
  if (!lines.ok()) return StoreError(lines.status());
  std::map<std::string, uint64_t> decisions = {{"allowed", 0}, {"withheld", 0}, {"rejected", 0}};
  std::vector<std::pair<std::string, uint64_t>> policies;  // in order of first appearance
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("site_id");
  w.String(site_id);
  w.Key("entries");
  w.BeginArray();
  for (const std::string& line : *lines) {
    json::Value o;
    if (!ParseObject(parser, line, o)) {
      w.BeginObject();
      w.Key("unparsed");
      w.String(line);
      w.EndObject();
      continue;
    }
    w.BeginObject();
    for (std::string_view key : {"seq", "time_ms", "rseq"}) {
      w.Key(key);
      std::optional<double> v = NumberField(o, key);
      if (v && std::isfinite(*v) && std::fabs(*v) < 9e15) {
        w.Int(static_cast<int64_t>(*v));
      } else {
        w.Null();
      }
    }
    for (std::string_view key :
         {"decision", "reason", "kind", "site", "node", "stream", "policy"}) {
      w.Key(key);
      w.String(StringField(o, key));
    }
    w.EndObject();
    std::string decision = StringField(o, "decision");
    if (decisions.size() < 16 || decisions.count(decision)) ++decisions[decision];
    std::string policy = StringField(o, "policy");
    auto it = std::find_if(policies.begin(), policies.end(),
                           [&](const auto& p) { return p.first == policy; });
    if (it != policies.end()) {
      ++it->second;
    } else if (policies.size() < 256) {
      policies.emplace_back(policy, 1);
    }
  }
  w.EndArray();
  w.Key("decisions");
  w.BeginObject();
  for (const auto& [decision, n] : decisions) {
    w.Key(decision);
    w.Uint(n);
  }
  w.EndObject();
  w.Key("policies");
  w.BeginArray();
  for (const auto& [policy, n] : policies) {
    w.BeginObject();
    w.Key("policy");
    w.String(policy);
    w.Key("entries");
    w.Uint(n);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Json(200, std::move(body));
}

HubResponse HubAuditResponse(const ApiContext& api, const QueryParams& params) {
  if (Status s = OnlyKnown(params, {"after", "limit", "event"}); !s.ok()) return BadRequest(s);
  auto after = IntParam(params, "after", 0, std::numeric_limits<int64_t>::max(), 0);
  if (!after.ok()) return BadRequest(after.status());
  auto limit = IntParam(params, "limit", 1, static_cast<int64_t>(kMaxHubAuditPage), 100);
  if (!limit.ok()) return BadRequest(limit.status());
  std::string event;
  if (const std::string* e = params.Find("event"); e != nullptr) {
    auto event_char = [](char c) { return c == '_' || (c >= 'a' && c <= 'z'); };
    if (e->empty() || e->size() > 32 || !std::all_of(e->begin(), e->end(), event_char)) {
      return Error(400, "bad_parameter", "event is an audit event name, [a-z_]{1,32}");
    }
    event = *e;
  }
  auto lines = api.store.ListHubAudit(api.tenant, *after, event, static_cast<size_t>(*limit));
  if (!lines.ok()) return StoreError(lines.status());
  json::Parser parser;  // one per request: handlers run on many threads
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("entries");
  w.BeginArray();
  for (const HubAuditEntry& e : *lines) {
    w.BeginObject();
    w.Key("id");
    w.Int(e.id);
    w.Key("time_ms");
    w.Int(e.time_ms);
    w.Key("event");
    w.String(e.event);
    WriteJsonOrText(w, parser, "line", "line_text", e.line);
    w.EndObject();
  }
  w.EndArray();
  w.Key("next_after");
  if (lines->size() == static_cast<size_t>(*limit)) {
    w.Int(lines->back().id);
  } else {
    w.Null();
  }
  w.EndObject();
  return Json(200, std::move(body));
}

}  // namespace outpost::hub::dashboard_internal
