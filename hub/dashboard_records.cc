// GET /api/v1/records (dashboard_internal.h): one page of the caller's records, filtered by
// site, kind, model and time, each payload re-serialized by the JSON parser.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "base/json/json.h"
#include "base/json_writer.h"
#include "hub/dashboard_internal.h"

namespace outpost::hub::dashboard_internal {

HubResponse RecordsResponse(const ApiContext& api, const QueryParams& params) {
  json::Parser parser;  // one per request: handlers run on many threads
  if (Status s = OnlyKnown(params, {"site", "kind", "model", "since", "until", "after", "limit"});
      !s.ok()) {
    return BadRequest(s);
  }
  auto site = SiteParam(params);
  if (!site.ok()) return BadRequest(site.status());
  auto model = ModelParam(params);
  if (!model.ok()) return BadRequest(model.status());
  std::optional<std::string> kind;
  if (const std::string* k = params.Find("kind"); k != nullptr && !k->empty()) {
    if (!IsKind(*k)) {
      return Error(400, "bad_parameter",
                   "kind must be one of anomaly, drift, feedback, hard_example, aggregate, "
                   "sample, event");
    }
    kind = *k;
  }
  auto range = RangeParams(params, 0, kMaxTimeMs);
  if (!range.ok()) return BadRequest(range.status());
  auto after = IntParam(params, "after", 0, std::numeric_limits<int64_t>::max(), 0);
  if (!after.ok()) return BadRequest(after.status());
  auto limit = IntParam(params, "limit", 1, 1000, 100);
  if (!limit.ok()) return BadRequest(limit.status());
  if (*site) {
    auto found = FindSite(api.store, api.tenant, **site);
    if (!found.ok()) return StoreError(found.status());
  }
  RecordQuery query{.tenant = api.tenant,
                    .site_id = *site,
                    .kind = kind,
                    .stream = *model,
                    .since_ms = range->since_ms,
                    .until_ms = range->until_ms,
                    .after_id = *after,
                    .limit = static_cast<size_t>(*limit)};
  auto records = api.store.QueryRecords(query);
  if (!records.ok()) return StoreError(records.status());
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("records");
  w.BeginArray();
  int64_t last_id = 0;
  for (const HubRecord& record : *records) {
    if (record.tenant != api.tenant && !record.tenant.empty()) continue;
    last_id = std::max(last_id, record.id);
    w.BeginObject();
    w.Key("id");
    w.Int(record.id);
    w.Key("site_id");
    w.String(record.site_id);
    w.Key("node_id");
    w.String(record.node_id);
    w.Key("stream");
    w.String(record.stream);
    w.Key("seq");
    w.Uint(record.seq);
    w.Key("kind");
    w.String(record.kind);
    w.Key("created_ms");
    w.Int(record.created_ms);
    w.Key("received_ms");
    w.Int(record.received_ms);
    WriteJsonOrText(w, parser, "payload", "payload_text", record.payload);
    w.EndObject();
  }
  w.EndArray();
  w.Key("next_after");
  if (records->size() == static_cast<size_t>(*limit) && last_id > 0) {
    w.Int(last_id);
  } else {
    w.Null();
  }
  w.EndObject();
  return Json(200, std::move(body));
}

}  // namespace outpost::hub::dashboard_internal
