// GET /api/v1/training (dashboard_internal.h): per model and site, the feedback records
// (labelled or not) and hard examples the hub holds, beside the model's registry versions.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "base/json/json.h"
#include "base/json_writer.h"
#include "hub/dashboard_internal.h"

namespace outpost::hub::dashboard_internal {
namespace {

constexpr size_t kMaxTrainingGroups = 10'000;  // (model, site) pairs in one answer

}  // namespace

HubResponse TrainingResponse(const ApiContext& api, const QueryParams& params) {
  json::Parser parser;  // one per request: handlers run on many threads
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
    RecordQuery query{.tenant = api.tenant, .kind = std::string(kind), .stream = *model};
    Status s = ScanRecords(
        api.store, query, api.options.max_scan_records,
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
          json::Value o;
          if (ParseObject(parser, record.payload, o) && o.Find("label") &&
              !o["label"].is_null()) {
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
    auto registry = api.store.ListModels(name);
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

}  // namespace outpost::hub::dashboard_internal
