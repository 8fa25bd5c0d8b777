// The dashboard's query API and static assets (hub/QUERY_API.md). The one file of the
// dashboard that includes simdjson.h: it reads stored payloads, node reports and audit lines.
#include "hub/dashboard.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "base/file.h"
#include "base/json_writer.h"

#ifndef OUTPOST_WEB_DIST_DIR
#define OUTPOST_WEB_DIST_DIR "web/dist"
#endif

namespace outpost::hub {
namespace {

constexpr int64_t kMsPerMinute = 60'000;
constexpr int64_t kMsPerHour = 3'600'000;
constexpr int64_t kMsPerDay = 86'400'000;
constexpr int64_t kMaxTimeMs = int64_t{1} << 53;
constexpr int64_t kMaxBuckets = 2000;
constexpr size_t kMaxSeriesModels = 64;         // models in one series answer
constexpr size_t kMaxAggregateGroups = 10'000;  // (site, model, version) groups in one answer
constexpr size_t kMaxTrainingGroups = 10'000;   // (model, site) pairs in one answer
constexpr size_t kPageSize = 10'000;            // the store's cap on one QueryRecords call
constexpr uint64_t kMaxAssetBytes = 32u << 20;

// ---------------------------------------------------------------------------------------
// Responses.

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

// An InvalidArgument from the parsers below carries "reason: message".
HubResponse BadRequest(const Status& status) {
  std::string_view message = status.message();
  size_t colon = message.find(": ");
  if (colon == std::string_view::npos) return Error(400, "bad_parameter", message);
  return Error(400, message.substr(0, colon), message);
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

Status Bad(std::string_view reason, std::string_view message) {
  std::string text(reason);
  text += ": ";
  text += message;
  return InvalidArgumentError(text);
}

// ---------------------------------------------------------------------------------------
// Parameters.

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> Decode(std::string_view in, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size() || HexValue(in[i + 1]) < 0 || HexValue(in[i + 2]) < 0) {
        return Bad("bad_escape", "a '%' must be followed by two hex digits");
      }
      c = static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2]));
      if (c == '\0') return Bad("bad_escape", "a parameter may not contain NUL");
      i += 2;
    }
    if (out.size() >= max_bytes) {
      return Bad("parameter_too_long", "a parameter's name or value is too long");
    }
    out.push_back(c);
  }
  return out;
}

bool IsNameChar(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || (allow_colon && c == ':');
}

bool IsSiteId(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsNameChar(c, false); });
}

bool IsModelName(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  if (s[0] == '.' || s[0] == '_' || s[0] == '-' || s[0] == ':') return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsNameChar(c, true); });
}

bool IsKind(std::string_view s) {
  static constexpr std::string_view kKinds[] = {"anomaly",   "drift",  "feedback", "hard_example",
                                                "aggregate", "sample", "event"};
  return std::find(std::begin(kKinds), std::end(kKinds), s) != std::end(kKinds);
}

// Checks that every parameter is one the route takes.
Status OnlyKnown(const QueryParams& params, std::initializer_list<std::string_view> known) {
  for (const auto& [name, value] : params.items) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return Bad("unknown_parameter", "unknown parameter \"" + name + "\"");
    }
  }
  return Status();
}

// An integer parameter in [min, max], or `fallback` when absent.
Result<int64_t> IntParam(const QueryParams& params, std::string_view name, int64_t min, int64_t max,
                         int64_t fallback) {
  const std::string* value = params.Find(name);
  if (value == nullptr) return fallback;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), v);
  if (value->empty() || ec != std::errc() || end != value->data() + value->size() || v < min ||
      v > max) {
    return Bad("bad_parameter", std::string(name) + " must be an integer in [" +
                                    std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return v;
}

Result<std::optional<std::string>> SiteParam(const QueryParams& params) {
  const std::string* value = params.Find("site");
  if (value == nullptr || value->empty()) return std::optional<std::string>();
  if (!IsSiteId(*value)) return Bad("bad_parameter", "site must match [A-Za-z0-9._-]{1,128}");
  return std::optional<std::string>(*value);
}

Result<std::optional<std::string>> ModelParam(const QueryParams& params) {
  const std::string* value = params.Find("model");
  if (value == nullptr || value->empty()) return std::optional<std::string>();
  if (!IsModelName(*value)) {
    return Bad("bad_parameter", "model must match [A-Za-z0-9][A-Za-z0-9._:-]{0,127}");
  }
  return std::optional<std::string>(*value);
}

struct TimeRange {
  int64_t since_ms = 0;
  int64_t until_ms = 0;
};

Result<TimeRange> RangeParams(const QueryParams& params, int64_t default_since,
                              int64_t default_until) {
  TimeRange range;
  OUTPOST_ASSIGN_OR_RETURN(range.until_ms, IntParam(params, "until", 1, kMaxTimeMs, default_until));
  OUTPOST_ASSIGN_OR_RETURN(range.since_ms,
                           IntParam(params, "since", 0, kMaxTimeMs - 1,
                                    std::clamp<int64_t>(default_since, 0, kMaxTimeMs - 1)));
  if (range.since_ms >= range.until_ms) {
    return Bad("bad_parameter", "since must be before until");
  }
  return range;
}

// ---------------------------------------------------------------------------------------
// Payloads.

// Reads a JSON number (any of simdjson's three kinds) as a double.
std::optional<double> Number(simdjson::dom::element e) {
  double d = 0;
  if (e.get_double().get(d) == simdjson::SUCCESS) return d;
  int64_t i = 0;
  if (e.get_int64().get(i) == simdjson::SUCCESS) return static_cast<double>(i);
  uint64_t u = 0;
  if (e.get_uint64().get(u) == simdjson::SUCCESS) return static_cast<double>(u);
  return std::nullopt;
}

std::optional<double> NumberField(simdjson::dom::object o, std::string_view key) {
  simdjson::dom::element e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS) return std::nullopt;
  return Number(e);
}

uint64_t CountField(simdjson::dom::object o, std::string_view key) {
  std::optional<double> v = NumberField(o, key);
  if (!v || !std::isfinite(*v) || *v < 0 || *v > 1e18) return 0;
  return static_cast<uint64_t>(*v);
}

std::string StringField(simdjson::dom::object o, std::string_view key) {
  std::string_view s;
  if (o.at_key(key).get_string().get(s) != simdjson::SUCCESS) return {};
  return std::string(s);
}

// Parses `json` as an object; false when it is not one.
bool ParseObject(simdjson::dom::parser& parser, const std::string& json,
                 simdjson::dom::object& out) {
  simdjson::dom::element e;
  if (parser.parse(json).get(e) != simdjson::SUCCESS) return false;
  return e.get_object().get(out) == simdjson::SUCCESS;
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

// ---------------------------------------------------------------------------------------
// Sites.

struct ModelRef {
  std::string name;
  int64_t version = 0;
  std::string state;
};

std::vector<ModelRef> ParseModels(simdjson::dom::parser& parser, const std::string& json) {
  std::vector<ModelRef> models;
  simdjson::dom::element e;
  if (parser.parse(json).get(e) != simdjson::SUCCESS) return models;
  simdjson::dom::array array;
  if (e.get_array().get(array) != simdjson::SUCCESS) return models;
  for (simdjson::dom::element item : array) {
    simdjson::dom::object o;
    if (item.get_object().get(o) != simdjson::SUCCESS) continue;
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
  std::optional<double> reported;                  // the smallest autonomy a node reported, in days
  std::optional<double> left;                      // the smallest autonomy left at now_ms, in days
  std::vector<std::vector<ModelRef>> node_models;  // each node's models, in node order
};

// Sums the node reports of `summary` as of `now_ms` and parses each node's models.
NodeTotals SumNodes(simdjson::dom::parser& parser, const SiteSummary& summary, int64_t now_ms) {
  NodeTotals totals;
  for (const NodeStatus& node : summary.nodes) {
    totals.backlog_records += node.backlog_records;
    totals.backlog_bytes += node.backlog_bytes;
    if (node.autonomy_days && std::isfinite(*node.autonomy_days)) {
      double days = *node.autonomy_days;
      double since_report = static_cast<double>(std::max<int64_t>(0, now_ms - node.received_ms)) /
                            static_cast<double>(kMsPerDay);
      double remaining = std::max(0.0, days - since_report);
      totals.reported = totals.reported ? std::min(*totals.reported, days) : days;
      totals.left = totals.left ? std::min(*totals.left, remaining) : remaining;
    }
    totals.node_models.push_back(ParseModels(parser, node.models_json));
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

void WriteSite(JsonWriter& w, simdjson::dom::parser& parser, const SiteSummary& summary,
               int64_t now_ms, const DashboardOptions& options,
               std::map<std::string, int>* counts) {
  const Site& site = summary.site;
  w.BeginObject();
  WriteSiteIdentity(w, summary);
  NodeTotals totals = SumNodes(parser, summary, now_ms);
  WriteNodeTotals(w, summary, totals);
  WriteNodes(w, summary, totals);

  int64_t elapsed = now_ms - site.last_contact_ms;
  SiteHealth health = HealthOf(site, totals.left, elapsed, options);
  if (counts != nullptr) ++(*counts)[health.health];
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

// ---------------------------------------------------------------------------------------
// Series.

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
  void Add(std::string_view kind, const HubRecord& record, simdjson::dom::parser& parser) {
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
    simdjson::dom::object o;
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

// ---------------------------------------------------------------------------------------
// Static assets.

std::string_view ContentType(std::string_view path) {
  auto ends = [&](std::string_view suffix) {
    return path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  if (ends(".json")) return "application/json";
  if (ends(".map")) return "application/json";
  if (ends(".woff2")) return "font/woff2";
  return "application/octet-stream";
}

// A relative path inside the assets folder for `path` ("/" = index.html), or empty when the
// path could leave the folder or has characters assets never have.
std::string AssetPath(std::string_view path) {
  if (path == "/" || path == "/index.html") return "index.html";
  if (path.size() < 2 || path.size() > 256 || path[0] != '/') return {};
  std::string_view rel = path.substr(1);
  for (char c : rel) {
    if (!IsNameChar(c, false) && c != '/') return {};
  }
  size_t start = 0;
  while (start <= rel.size()) {
    size_t slash = rel.find('/', start);
    std::string_view segment =
        rel.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (segment.empty() || segment[0] == '.') return {};
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return std::string(rel);
}

// ---------------------------------------------------------------------------------------
// Route handlers. Each gets the caller's tenant and the parsed parameters.

class Api {
 public:
  Api(Store& store, const DashboardOptions& options, int64_t now_ms, std::string tenant)
      : store_(store), options_(options), now_ms_(now_ms), tenant_(std::move(tenant)) {}

  HubResponse Sites(const QueryParams& params) {
    if (Status s = OnlyKnown(params, {}); !s.ok()) return BadRequest(s);
    auto sites = store_.ListSites(tenant_);
    if (!sites.ok()) return StoreError(sites.status());
    std::sort(sites->begin(), sites->end(), [](const SiteSummary& a, const SiteSummary& b) {
      return a.site.site_id < b.site.site_id;
    });
    std::map<std::string, int> counts = {
        {"ok", 0}, {"warning", 0}, {"silent", 0}, {"never", 0}, {"revoked", 0}};
    std::string rows;
    JsonWriter rw(rows);
    rw.BeginArray();
    for (const SiteSummary& summary : *sites) {
      if (summary.site.tenant != tenant_) continue;  // never another tenant's
      WriteSite(rw, parser_, summary, now_ms_, options_, &counts);
    }
    rw.EndArray();
    std::string body;
    JsonWriter w(body);
    w.BeginObject();
    w.Key("now_ms");
    w.Int(now_ms_);
    w.Key("silent_after_ms");
    w.Int(options_.silent_after.count());
    w.Key("counts");
    w.BeginObject();
    for (std::string_view health : {"ok", "warning", "silent", "never", "revoked"}) {
      w.Key(health);
      w.Int(counts[std::string(health)]);
    }
    w.EndObject();
    w.Key("sites");
    w.Raw(rows);
    w.EndObject();
    return Json(200, std::move(body));
  }

  HubResponse Site(std::string_view site_id, const QueryParams& params) {
    if (Status s = OnlyKnown(params, {}); !s.ok()) return BadRequest(s);
    auto summary = FindSite(store_, tenant_, site_id);
    if (!summary.ok()) return StoreError(summary.status());
    std::string body;
    JsonWriter w(body);
    WriteSite(w, parser_, *summary, now_ms_, options_, nullptr);
    // The site object plus now_ms, so the page can state "as of".
    body.pop_back();
    body += ",\"now_ms\":";
    AppendJsonNumber(body, now_ms_);
    body += "}";
    return Json(200, std::move(body));
  }

  HubResponse Series(std::string_view site_id, const QueryParams& params) {
    if (Status s = OnlyKnown(params, {"model", "since", "until", "bucket"}); !s.ok()) {
      return BadRequest(s);
    }
    auto model = ModelParam(params);
    if (!model.ok()) return BadRequest(model.status());
    auto bucket = IntParam(params, "bucket", kMsPerMinute, 30 * kMsPerDay, kMsPerHour);
    if (!bucket.ok()) return BadRequest(bucket.status());
    int64_t default_until = std::min(now_ms_ + 1, kMaxTimeMs);
    auto range = RangeParams(params, default_until - 7 * kMsPerDay, default_until);
    if (!range.ok()) return BadRequest(range.status());
    int64_t first = range->since_ms / *bucket * *bucket;
    int64_t count = (range->until_ms - first + *bucket - 1) / *bucket;
    if (count > kMaxBuckets) {
      return Error(400, "bad_parameter",
                   "at most 2000 buckets: widen bucket or narrow since/until");
    }
    auto summary = FindSite(store_, tenant_, site_id);
    if (!summary.ok()) return StoreError(summary.status());

    SeriesBuilder built{.grid = {.first_ms = first, .width_ms = *bucket, .count = count}};
    RecordQuery query{.tenant = tenant_,
                      .site_id = std::string(site_id),
                      .stream = *model,
                      .since_ms = range->since_ms,
                      .until_ms = range->until_ms};
    for (std::string_view kind : {"aggregate", "anomaly", "drift"}) {
      query.kind = std::string(kind);
      query.after_id = 0;
      Status s = ScanRecords(
          store_, query, options_.max_scan_records,
          [&](const HubRecord& record) { built.Add(kind, record, parser_); }, &built.truncated);
      if (!s.ok()) return StoreError(s);
    }
    return Json(200, SeriesBody(site_id, *range, built));
  }

  HubResponse Aggregates(const QueryParams& params) {
    if (Status s = OnlyKnown(params, {"site", "model", "since", "until"}); !s.ok()) {
      return BadRequest(s);
    }
    auto site = SiteParam(params);
    if (!site.ok()) return BadRequest(site.status());
    auto model = ModelParam(params);
    if (!model.ok()) return BadRequest(model.status());
    auto range = RangeParams(params, 0, std::min(now_ms_ + 1, kMaxTimeMs));
    if (!range.ok()) return BadRequest(range.status());
    if (*site) {
      auto found = FindSite(store_, tenant_, **site);
      if (!found.ok()) return StoreError(found.status());
    }
    struct Totals {
      uint64_t minutes = 0, batches = 0, rows = 0, anomalies = 0, hard_examples = 0, samples = 0,
               drifts = 0, nan_scores = 0;
      int64_t first_ms = std::numeric_limits<int64_t>::max(), last_ms = 0;
    };
    std::map<std::tuple<std::string, std::string, int64_t>, Totals> totals;
    bool truncated = false;
    RecordQuery query{.tenant = tenant_,
                      .site_id = *site,
                      .kind = "aggregate",
                      .stream = *model,
                      .since_ms = range->since_ms,
                      .until_ms = range->until_ms};
    Status s = ScanRecords(
        store_, query, options_.max_scan_records,
        [&](const HubRecord& record) {
          simdjson::dom::object o;
          if (!ParseObject(parser_, record.payload, o)) return;
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

  HubResponse Records(const QueryParams& params) {
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
      auto found = FindSite(store_, tenant_, **site);
      if (!found.ok()) return StoreError(found.status());
    }
    RecordQuery query{.tenant = tenant_,
                      .site_id = *site,
                      .kind = kind,
                      .stream = *model,
                      .since_ms = range->since_ms,
                      .until_ms = range->until_ms,
                      .after_id = *after,
                      .limit = static_cast<size_t>(*limit)};
    auto records = store_.QueryRecords(query);
    if (!records.ok()) return StoreError(records.status());
    std::string body;
    JsonWriter w(body);
    w.BeginObject();
    w.Key("records");
    w.BeginArray();
    int64_t last_id = 0;
    for (const HubRecord& record : *records) {
      if (record.tenant != tenant_ && !record.tenant.empty()) continue;
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
      simdjson::dom::element e;
      if (parser_.parse(record.payload).get(e) == simdjson::SUCCESS) {
        // Validated JSON, re-serialized minified by simdjson (never the raw bytes).
        w.Key("payload");
        w.Raw(simdjson::minify(e));
      } else {
        w.Key("payload_text");
        w.String(record.payload);
      }
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

  HubResponse Audit(std::string_view site_id, const QueryParams& params) {
    if (Status s = OnlyKnown(params, {"limit"}); !s.ok()) return BadRequest(s);
    auto limit = IntParam(params, "limit", 1, 10'000, 1000);
    if (!limit.ok()) return BadRequest(limit.status());
    auto found = FindSite(store_, tenant_, site_id);
    if (!found.ok()) return StoreError(found.status());
    auto lines = store_.AuditLines(tenant_, site_id, static_cast<size_t>(*limit));
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
      simdjson::dom::object o;
      if (!ParseObject(parser_, line, o)) {
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

  HubResponse Training(const QueryParams& params) {
    if (Status s = OnlyKnown(params, {"model"}); !s.ok()) return BadRequest(s);
    auto model = ModelParam(params);
    if (!model.ok()) return BadRequest(model.status());
    struct Counts {
      uint64_t feedback = 0, labelled = 0, hard_examples = 0;
    };
    // model -> site -> counts
    std::map<std::string, std::map<std::string, Counts>> counts;
    size_t groups = 0;
    bool truncated = false;
    for (std::string_view kind : {"feedback", "hard_example"}) {
      RecordQuery query{.tenant = tenant_, .kind = std::string(kind), .stream = *model};
      Status s = ScanRecords(
          store_, query, options_.max_scan_records,
          [&](const HubRecord& record) {
            auto& by_site = counts[record.stream];
            auto it = by_site.find(record.site_id);
            if (it == by_site.end()) {
              if (groups == kMaxTrainingGroups) {
                truncated = true;
                if (by_site.empty()) counts.erase(record.stream);
                return;
              }
              ++groups;
              it = by_site.emplace(record.site_id, Counts{}).first;
            }
            Counts& c = it->second;
            if (kind == "hard_example") {
              ++c.hard_examples;
              return;
            }
            ++c.feedback;
            simdjson::dom::object o;
            simdjson::dom::element label;
            if (ParseObject(parser_, record.payload, o) &&
                o.at_key("label").get(label) == simdjson::SUCCESS && !label.is_null()) {
              ++c.labelled;
            }
          },
          &truncated);
      if (!s.ok()) return StoreError(s);
    }
    std::string body;
    JsonWriter w(body);
    w.BeginObject();
    w.Key("truncated");
    w.Bool(truncated);
    w.Key("models");
    w.BeginArray();
    for (const auto& [name, by_site] : counts) {
      Counts total;
      for (const auto& [site, c] : by_site) {
        total.feedback += c.feedback;
        total.labelled += c.labelled;
        total.hard_examples += c.hard_examples;
      }
      w.BeginObject();
      w.Key("model");
      w.String(name);
      w.Key("feedback");
      w.Uint(total.feedback);
      w.Key("labelled");
      w.Uint(total.labelled);
      w.Key("hard_examples");
      w.Uint(total.hard_examples);
      w.Key("sites");
      w.Uint(by_site.size());
      w.Key("by_site");
      w.BeginArray();
      for (const auto& [site, c] : by_site) {
        w.BeginObject();
        w.Key("site_id");
        w.String(site);
        w.Key("feedback");
        w.Uint(c.feedback);
        w.Key("labelled");
        w.Uint(c.labelled);
        w.Key("hard_examples");
        w.Uint(c.hard_examples);
        w.EndObject();
      }
      w.EndArray();
      w.Key("registry");
      w.BeginArray();
      auto registry = store_.ListModels(name);
      if (registry.ok()) {
        for (const ModelEntry& entry : *registry) {
          w.BeginObject();
          w.Key("version");
          w.Int(entry.version);
          w.Key("state");
          w.String(entry.state);
          w.Key("created_ms");
          w.Int(entry.created_ms);
          w.EndObject();
        }
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return Json(200, std::move(body));
  }

 private:
  Store& store_;
  const DashboardOptions& options_;
  int64_t now_ms_;
  std::string tenant_;
  simdjson::dom::parser parser_;  // one per request: Handle is called from many threads
};

}  // namespace

const std::string* QueryParams::Find(std::string_view name) const {
  for (const auto& [n, v] : items) {
    if (n == name) return &v;
  }
  return nullptr;
}

Result<QueryParams> ParseQueryString(std::string_view query) {
  QueryParams params;
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string_view segment =
        query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    start = amp == std::string_view::npos ? query.size() + 1 : amp + 1;
    if (segment.empty()) continue;
    if (params.items.size() == kMaxQueryParams) {
      return Bad("too_many_parameters",
                 "at most " + std::to_string(kMaxQueryParams) + " parameters");
    }
    size_t eq = segment.find('=');
    std::string_view raw_name = segment.substr(0, eq);
    std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : segment.substr(eq + 1);
    OUTPOST_ASSIGN_OR_RETURN(std::string name, Decode(raw_name, kMaxParamNameBytes));
    OUTPOST_ASSIGN_OR_RETURN(std::string value, Decode(raw_value, kMaxParamValueBytes));
    if (name.empty()) return Bad("empty_name", "a parameter has no name");
    if (params.Find(name) != nullptr) {
      return Bad("repeated_parameter", "parameter \"" + name + "\" is repeated");
    }
    params.items.emplace_back(std::move(name), std::move(value));
  }
  return params;
}

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
    Api api(*store_, options_, UnixMillis(clock_->Now()), request.caller.tenant);
    if (route == "sites") return strip_body(api.Sites(*params));
    if (route == "aggregates") return strip_body(api.Aggregates(*params));
    if (route == "records") return strip_body(api.Records(*params));
    if (route == "training") return strip_body(api.Training(*params));
    if (route.starts_with("sites/")) {
      std::string_view rest = route.substr(6);
      size_t slash = rest.find('/');
      std::string_view site_id = rest.substr(0, slash);
      std::string_view sub =
          slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
      if (!IsSiteId(site_id)) return strip_body(Error(404, "site_not_found", "no such site"));
      if (slash == std::string_view::npos) return strip_body(api.Site(site_id, *params));
      if (sub == "series") return strip_body(api.Series(site_id, *params));
      if (sub == "audit") return strip_body(api.Audit(site_id, *params));
    }
    return strip_body(Error(404, "not_found", "no such route"));
  }

  // Static assets: the built dashboard, no data in them.
  std::string rel = AssetPath(path);
  if (rel.empty()) return strip_body(Error(404, "not_found", "no such asset"));
  if (!IsDirectory(assets_dir_)) {
    return strip_body(Error(503, "assets_missing",
                            "the dashboard's assets are not built (npm run build in web/)"));
  }
  std::string file = JoinPath(assets_dir_, rel);
  if (!PathExists(file) || IsDirectory(file)) {
    return strip_body(Error(404, "not_found", "no such asset"));
  }
  auto contents = ReadFile(file, kMaxAssetBytes);
  if (!contents.ok()) return strip_body(Error(404, "not_found", "no such asset"));
  HubResponse response;
  response.status = 200;
  response.content_type = std::string(ContentType(rel));
  response.body = std::move(*contents);
  // Vite names bundles by content hash under assets/; index.html must be revalidated.
  response.headers.emplace_back("cache-control", rel.starts_with("assets/")
                                                     ? "public, max-age=31536000, immutable"
                                                     : "no-cache");
  response.headers.emplace_back("x-content-type-options", "nosniff");
  return strip_body(std::move(response));
}

}  // namespace outpost::hub
