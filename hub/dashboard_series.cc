// GET /api/v1/sites/{site}/series (dashboard_internal.h): one site's aggregate, anomaly and
// drift records counted into time buckets per model, with the drift points.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json/json.h"
#include "base/json_writer.h"
#include "hub/dashboard_internal.h"

namespace outpost::hub::dashboard_internal {
namespace {

constexpr size_t kMaxSeriesModels = 64;  // models in one series answer

// One bucket of a model's series: what its aggregate, anomaly and drift records add up to.
struct SeriesBucket {
  uint64_t rows = 0, anomalies = 0, anomaly_records = 0, hard_examples = 0, drift = 0;
  std::optional<double> max_psi;
};

struct DriftPoint {
  int64_t time_ms;
  int64_t version;
  std::string feature;
  double psi;
  std::optional<double> level;
};

struct ModelSeries {
  std::vector<SeriesBucket> buckets;
  std::vector<DriftPoint> drift;
};

// The buckets of a series answer: `count` buckets of `width_ms` each from `first_ms`.
struct BucketGrid {
  int64_t first_ms = 0;
  int64_t width_ms = 0;
  int64_t count = 0;
};

// Counts one site's records into per-model series, bucket by bucket.
struct SeriesBuilder {
  BucketGrid grid;
  std::map<std::string, ModelSeries> models;
  bool truncated = false;  // a model or record was left out

  // The series of `name`, or nullptr past kMaxSeriesModels (streams are named by sites).
  ModelSeries* SeriesOf(const std::string& name) {
    auto it = models.find(name);
    if (it != models.end()) return &it->second;
    if (models.size() == kMaxSeriesModels) {
      truncated = true;
      return nullptr;
    }
    ModelSeries& series = models[name];
    series.buckets.resize(static_cast<size_t>(grid.count));
    return &series;
  }

  // Counts `record`, of `kind` "aggregate", "anomaly" or "drift", into its bucket.
  void Add(std::string_view kind, const HubRecord& record, json::Parser& parser) {
    if (record.created_ms < grid.first_ms) return;
    size_t i = static_cast<size_t>((record.created_ms - grid.first_ms) / grid.width_ms);
    ModelSeries* found = SeriesOf(record.stream);
    if (found == nullptr || i >= found->buckets.size()) return;
    ModelSeries& series = *found;
    SeriesBucket& b = series.buckets[i];
    if (kind == "anomaly") {
      ++b.anomaly_records;
      return;
    }
    json::Value o;
    if (!ParseObject(parser, record.payload, o)) return;
    if (kind == "aggregate") {
      b.rows += CountField(o, "rows");
      b.anomalies += CountField(o, "anomalies");
      b.hard_examples += CountField(o, "hard_examples");
      return;
    }
    ++b.drift;
    std::optional<double> psi = NumberField(o, "psi");
    if (!psi || !std::isfinite(*psi)) return;
    b.max_psi = b.max_psi ? std::max(*b.max_psi, *psi) : *psi;
    std::optional<double> version = NumberField(o, "version");
    if (series.drift.size() < 10'000) {
      series.drift.push_back(
          {record.created_ms,
           version && std::fabs(*version) < 9e15 ? static_cast<int64_t>(*version) : 0,
           StringField(o, "feature"), *psi, NumberField(o, "level")});
    }
  }
};

void WriteSeriesBucket(JsonWriter& w, const SeriesBucket& b, int64_t start_ms) {
  w.BeginObject();
  w.Key("start_ms");
  w.Int(start_ms);
  w.Key("rows");
  w.Uint(b.rows);
  w.Key("anomalies");
  w.Uint(b.anomalies);
  w.Key("anomaly_rate");
  if (b.rows > 0) {
    w.Double(static_cast<double>(b.anomalies) / static_cast<double>(b.rows));
  } else {
    w.Null();
  }
  w.Key("anomaly_records");
  w.Uint(b.anomaly_records);
  w.Key("hard_examples");
  w.Uint(b.hard_examples);
  w.Key("drift_records");
  w.Uint(b.drift);
  w.Key("max_psi");
  w.OptionalDouble(b.max_psi);
  w.EndObject();
}

void WriteDriftPoint(JsonWriter& w, const DriftPoint& p) {
  w.BeginObject();
  w.Key("time_ms");
  w.Int(p.time_ms);
  w.Key("version");
  w.Int(p.version);
  w.Key("feature");
  w.String(p.feature);
  w.Key("psi");
  w.Double(p.psi);
  w.Key("level");
  w.OptionalDouble(p.level);
  w.EndObject();
}

// Writes one model's series: its buckets, then its drift points in time order (sorts them).
void WriteModelSeries(JsonWriter& w, const std::string& name, ModelSeries& series,
                      const BucketGrid& grid) {
  w.BeginObject();
  w.Key("model");
  w.String(name);
  w.Key("buckets");
  w.BeginArray();
  for (size_t i = 0; i < series.buckets.size(); ++i) {
    WriteSeriesBucket(w, series.buckets[i],
                      grid.first_ms + static_cast<int64_t>(i) * grid.width_ms);
  }
  w.EndArray();
  std::sort(series.drift.begin(), series.drift.end(),
            [](const DriftPoint& a, const DriftPoint& b) { return a.time_ms < b.time_ms; });
  w.Key("drift");
  w.BeginArray();
  for (const DriftPoint& p : series.drift) WriteDriftPoint(w, p);
  w.EndArray();
  w.EndObject();
}

// The body of a series answer for `site_id` over `range`.
std::string SeriesBody(std::string_view site_id, const TimeRange& range, SeriesBuilder& built) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("site_id");
  w.String(site_id);
  w.Key("since_ms");
  w.Int(range.since_ms);
  w.Key("until_ms");
  w.Int(range.until_ms);
  w.Key("bucket_ms");
  w.Int(built.grid.width_ms);
  w.Key("truncated");
  w.Bool(built.truncated);
  w.Key("models");
  w.BeginArray();
  for (auto& [name, series] : built.models) WriteModelSeries(w, name, series, built.grid);
  w.EndArray();
  w.EndObject();
  return body;
}

}  // namespace

HubResponse SeriesResponse(const ApiContext& api, std::string_view site_id,
                           const QueryParams& params) {
  json::Parser parser;  // one per request: handlers run on many threads
  if (Status s = OnlyKnown(params, {"model", "since", "until", "bucket"}); !s.ok()) {
    return BadRequest(s);
  }
  auto model = ModelParam(params);
  if (!model.ok()) return BadRequest(model.status());
  auto grid = BucketedRangeParams(params, api.now_ms);
  if (!grid.ok()) return BadRequest(grid.status());
  const TimeRange* range = &grid->range;
  auto summary = FindSite(api.store, api.tenant, site_id);
  if (!summary.ok()) return StoreError(summary.status());

  SeriesBuilder built{
      .grid = {.first_ms = grid->first_ms, .width_ms = grid->bucket_ms, .count = grid->count}};
  RecordQuery query{.tenant = api.tenant,
                    .site_id = std::string(site_id),
                    .stream = *model,
                    .since_ms = range->since_ms,
                    .until_ms = range->until_ms};
  for (std::string_view kind : {"aggregate", "anomaly", "drift"}) {
    query.kind = std::string(kind);
    query.after_id = 0;
    Status s = ScanRecords(
        api.store, query, api.options.max_scan_records,
        [&](const HubRecord& record) { built.Add(kind, record, parser); }, &built.truncated);
    if (!s.ok()) return StoreError(s);
  }
  return Json(200, SeriesBody(site_id, *range, built));
}

}  // namespace outpost::hub::dashboard_internal
