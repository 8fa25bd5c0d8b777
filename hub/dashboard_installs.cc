// GET /api/v1/installs (dashboard_internal.h, hub/QUERY_API.md): what runs where, per site and
// node, from the nodes' status reports and, for nodes that never reported (sites that only
// export), from their bundle events.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/json/json.h"
#include "base/json_writer.h"
#include "hub/dashboard_internal.h"

namespace outpost::hub::dashboard_internal {
namespace {

struct ModelAt {
  std::string model{};
  int64_t version = 0;
};

// A bundle event of a node (bundle/FORMAT.md section 9).
struct InstallEvent {
  std::string event{};
  uint64_t bundle_version = 0;
  std::string reason{};  // empty = null
  int64_t created_ms = 0;
  int64_t id = 0;  // the store's, to order events of one millisecond
  std::vector<ModelAt> models{};
};

struct NodeInstalls {
  bool reported = false;
  int64_t reported_ms = 0;
  std::optional<uint64_t> bundle_version{};
  std::vector<ModelAt> serving{};
  std::vector<ModelAt> shadow{};
  std::optional<InstallEvent> last_event{};   // any bundle event
  std::optional<InstallEvent> last_switch{};  // the newest installed or rolled back
};

bool Newer(const InstallEvent& a, const std::optional<InstallEvent>& b) {
  return !b || a.created_ms > b->created_ms || (a.created_ms == b->created_ms && a.id > b->id);
}

// "pump/3" -> {pump, 3}; nullopt otherwise.
std::optional<ModelAt> ParseModelKey(std::string_view key) {
  const size_t slash = key.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  int64_t version = 0;
  for (char c : key.substr(slash + 1)) {
    if (c < '0' || c > '9' || version > (INT64_MAX - 9) / 10) return std::nullopt;
    version = version * 10 + (c - '0');
  }
  if (slash + 1 == key.size()) return std::nullopt;
  return ModelAt{.model = std::string(key.substr(0, slash)), .version = version};
}

void ReadStatus(json::Parser& parser, const NodeStatus& status, NodeInstalls& node) {
  node.reported = true;
  node.reported_ms = status.received_ms;
  Result<json::Value> models = parser.Parse(status.models_json);
  if (!models.ok() || !models->is_array()) return;
  for (json::Value entry : models->Items()) {
    std::string name = StringField(entry, "name");
    std::optional<double> version = NumberField(entry, "version");
    if (name.empty() || !version || *version < 0 || *version > 9e15) continue;
    ModelAt at{.model = std::move(name), .version = static_cast<int64_t>(*version)};
    if (Result<uint64_t> b = entry["bundle_version"].GetUint64(); b.ok() && *b > 0) {
      node.bundle_version = *b;
    }
    if (StringField(entry, "role") == "shadow") {
      node.shadow.push_back(std::move(at));
    } else if (StringField(entry, "state") == "READY") {
      node.serving.push_back(std::move(at));
    }
  }
}

void WriteModels(JsonWriter& w, const std::vector<ModelAt>& models) {
  w.BeginArray();
  for (const ModelAt& m : models) {
    w.BeginObject();
    w.Key("model");
    w.String(m.model);
    w.Key("version");
    w.Int(m.version);
    w.EndObject();
  }
  w.EndArray();
}

// One node of the answer; a node that never reported serves its last switch's models.
void WriteNode(JsonWriter& w, const std::string& node_id, NodeInstalls& node) {
  if (!node.reported && node.last_switch) node.serving = node.last_switch->models;
  std::optional<uint64_t> bundle = node.bundle_version;
  if (!bundle && node.last_switch && node.last_switch->bundle_version > 0) {
    bundle = node.last_switch->bundle_version;
  }
  w.BeginObject();
  w.Key("node_id");
  w.String(node_id);
  w.Key("source");
  w.String(node.reported ? "status" : "events");
  w.Key("reported_ms");
  if (node.reported) {
    w.Int(node.reported_ms);
  } else {
    w.Null();
  }
  w.Key("bundle_version");
  if (bundle) {
    w.Uint(*bundle);
  } else {
    w.Null();
  }
  w.Key("serving");
  WriteModels(w, node.serving);
  w.Key("shadow");
  WriteModels(w, node.shadow);
  w.Key("last_install");
  if (node.last_event) {
    const InstallEvent& e = *node.last_event;
    w.BeginObject();
    w.Key("event");
    w.String(e.event);
    w.Key("bundle_version");
    w.Uint(e.bundle_version);
    w.Key("reason");
    if (e.reason.empty()) {
      w.Null();
    } else {
      w.String(e.reason);
    }
    w.Key("created_ms");
    w.Int(e.created_ms);
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
}

}  // namespace

HubResponse InstallsResponse(const ApiContext& api, const QueryParams& params) {
  json::Parser parser;  // one per request: handlers run on many threads
  if (Status s = OnlyKnown(params, {"site"}); !s.ok()) return BadRequest(s);
  auto site = SiteParam(params);
  if (!site.ok()) return BadRequest(site.status());
  // (site, node) -> what is known.
  std::map<std::pair<std::string, std::string>, NodeInstalls> nodes;
  std::vector<std::string> sites;
  if (*site) {
    auto found = FindSite(api.store, api.tenant, **site);
    if (!found.ok()) return StoreError(found.status());
    sites.push_back(found->site.site_id);
    for (const NodeStatus& status : found->nodes) {
      ReadStatus(parser, status, nodes[{found->site.site_id, status.node_id}]);
    }
  } else {
    auto all = api.store.ListSites(api.tenant);
    if (!all.ok()) return StoreError(all.status());
    for (const SiteSummary& summary : *all) {
      sites.push_back(summary.site.site_id);
      for (const NodeStatus& status : summary.nodes) {
        ReadStatus(parser, status, nodes[{summary.site.site_id, status.node_id}]);
      }
    }
  }
  bool truncated = false;
  RecordQuery query{.tenant = api.tenant,
                    .site_id = *site,
                    .kind = std::string("event"),
                    .stream = std::string("bundle")};
  Status scanned = ScanRecords(
      api.store, query, api.options.max_scan_records,
      [&](const HubRecord& record) {
        json::Value o;
        if (!ParseObject(parser, record.payload, o)) return;
        InstallEvent event{.event = StringField(o, "event"),
                           .bundle_version = o["bundle_version"].GetUint64().value_or(0),
                           .reason = StringField(o, "reason"),
                           .created_ms = record.created_ms,
                           .id = record.id};
        if (event.event.empty()) return;
        for (json::Value m : o["models"].Items()) {
          Result<std::string_view> key = m.GetString();
          if (!key.ok()) continue;
          if (std::optional<ModelAt> at = ParseModelKey(*key)) event.models.push_back(*at);
        }
        NodeInstalls& node = nodes[{record.site_id, record.node_id}];
        const bool switched =
            event.event == "bundle_installed" || event.event == "bundle_rolled_back";
        if (switched && Newer(event, node.last_switch)) node.last_switch = event;
        if (Newer(event, node.last_event)) node.last_event = std::move(event);
      },
      &truncated);
  if (!scanned.ok()) return StoreError(scanned);

  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("truncated");
  w.Bool(truncated);
  w.Key("sites");
  w.BeginArray();
  for (const std::string& site_id : sites) {
    w.BeginObject();
    w.Key("site_id");
    w.String(site_id);
    w.Key("nodes");
    w.BeginArray();
    for (auto it = nodes.lower_bound({site_id, std::string()});
         it != nodes.end() && it->first.first == site_id; ++it) {
      WriteNode(w, it->first.second, it->second);
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Json(200, std::move(body));
}

}  // namespace outpost::hub::dashboard_internal
