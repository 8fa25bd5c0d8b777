// GET /api/v1/aggregates (dashboard_internal.h): the aggregate records summed per (site,
// model, version) over a time range.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "base/json/json.h"
#include "base/json_writer.h"
#include "hub/dashboard_internal.h"

namespace outpost::hub::dashboard_internal {
namespace {

constexpr size_t kMaxAggregateGroups = 10'000;  // (site, model, version) groups in one answer

}  // namespace

HubResponse AggregatesResponse(const ApiContext& api, const QueryParams& params) {
  json::Parser parser;  // one per request: handlers run on many threads
  if (Status s = OnlyKnown(params, {"site", "model", "since", "until"}); !s.ok()) {
    return BadRequest(s);
  }
  auto site = SiteParam(params);
  if (!site.ok()) return BadRequest(site.status());
  auto model = ModelParam(params);
  if (!model.ok()) return BadRequest(model.status());
  auto range = RangeParams(params, 0, std::min(api.now_ms + 1, kMaxTimeMs));
  if (!range.ok()) return BadRequest(range.status());
  if (*site) {
    auto found = FindSite(api.store, api.tenant, **site);
    if (!found.ok()) return StoreError(found.status());
  }
  struct Totals {
    uint64_t minutes = 0, batches = 0, rows = 0, anomalies = 0, hard_examples = 0, samples = 0,
             drifts = 0, nan_scores = 0;
    int64_t first_ms = std::numeric_limits<int64_t>::max(), last_ms = 0;
  };
  std::map<std::tuple<std::string, std::string, int64_t>, Totals> totals;
  bool truncated = false;
  RecordQuery query{.tenant = api.tenant,
                    .site_id = *site,
                    .kind = "aggregate",
                    .stream = *model,
                    .since_ms = range->since_ms,
                    .until_ms = range->until_ms};
  Status s = ScanRecords(
      api.store, query, api.options.max_scan_records,
      [&](const HubRecord& record) {
        json::Value o;
        if (!ParseObject(parser, record.payload, o)) return;
        std::optional<double> version = NumberField(o, "version");
        int64_t v = version && std::fabs(*version) < 9e15 ? static_cast<int64_t>(*version) : 0;
        auto key = std::make_tuple(record.site_id, record.stream, v);
        auto it = totals.find(key);
        if (it == totals.end()) {
          if (totals.size() == kMaxAggregateGroups) {
            truncated = true;
            return;
          }
          it = totals.emplace(std::move(key), Totals{}).first;
        }
        Totals& t = it->second;
        ++t.minutes;
        t.batches += CountField(o, "batches");
        t.rows += CountField(o, "rows");
        t.anomalies += CountField(o, "anomalies");
        t.hard_examples += CountField(o, "hard_examples");
        t.samples += CountField(o, "samples");
        t.drifts += CountField(o, "drifts");
        t.nan_scores += CountField(o, "nan_scores");
        t.first_ms = std::min(t.first_ms, record.created_ms);
        t.last_ms = std::max(t.last_ms, record.created_ms);
      },
      &truncated);
  if (!s.ok()) return StoreError(s);
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("since_ms");
  w.Int(range->since_ms);
  w.Key("until_ms");
  w.Int(range->until_ms);
  w.Key("truncated");
  w.Bool(truncated);
  w.Key("aggregates");
  w.BeginArray();
  for (const auto& [key, t] : totals) {
    w.BeginObject();
    w.Key("site_id");
    w.String(std::get<0>(key));
    w.Key("model");
    w.String(std::get<1>(key));
    w.Key("version");
    w.Int(std::get<2>(key));
    const std::pair<std::string_view, uint64_t> fields[] = {{"minutes", t.minutes},
                                                            {"batches", t.batches},
                                                            {"rows", t.rows},
                                                            {"anomalies", t.anomalies},
                                                            {"hard_examples", t.hard_examples},
                                                            {"samples", t.samples},
                                                            {"drifts", t.drifts},
                                                            {"nan_scores", t.nan_scores}};
    for (const auto& [name, value] : fields) {
      w.Key(name);
      w.Uint(value);
    }
    w.Key("first_ms");
    w.Int(t.first_ms);
    w.Key("last_ms");
    w.Int(t.last_ms);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Json(200, std::move(body));
}

}  // namespace outpost::hub::dashboard_internal
