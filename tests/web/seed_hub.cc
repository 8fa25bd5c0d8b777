// seed_hub: fills a hub store with demo-like data for the dashboard's browser tests, through
// the Store interface the way ingestion stores it: two tenants' sites, node status reports,
// a week of hourly aggregates with anomalies, drift records on one site, feedback and hard
// examples, a hash-chained policy audit trail, and one site silent for four days.
//
//   seed_hub --store sqlite:/tmp/x/hub.db [--model-file PATH] [--now-ms MS] [--installs]
//
// The model registry holds pump v3 and v4 (bundled) and v5 and v6 (candidates) with their
// holdout metrics (ROC and calibration points included) and lineage; --model-file is the
// model file each version names, which an approval ships.
//
// --installs makes acme's fleet six sites whose nodes report what they serve as newer nodes do
// (sync/FORMAT.md section 2: `state` READY, `role` serving or shadow, `bundle_version`), for the
// rollouts page's model-version map: rig-9 and farm-2 join, and farm-2's node is known only
// from its bundle_installed event (bundle/FORMAT.md section 9).
//
// The data is deterministic for a given now (a fixed-seed generator); times are relative to
// now so that "silent for 4 days" holds whenever the test runs. Prints a one-line summary.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/crypto/crypto.h"
#include "base/json_writer.h"
#include "base/status.h"
#include "hub/store.h"
#include "policy/audit.h"
#include "policy/evaluate.h"

namespace outpost::hub {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr std::string_view kPolicy =
    "sha256:5d1f0b8a3c9e7f2a4b6c8d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c";

struct SitePlan {
  std::string site_id;
  std::string tenant;
  std::string region;
  std::vector<std::string> nodes;
  std::vector<std::string> models;  // each node serves these
  int64_t silent_for_ms = 0;         // last contact this long before now
  double autonomy_days = 10;
  uint64_t backlog_records = 0;
  double anomaly_rate = 0.01;   // share of rows flagged
  bool drifting = false;        // drift records in the last two days
  int model_version = 3;
  // The outcome of v4 run as the shadow of v3 that the site reported as an event record
  // (serve/FORMAT.md "Shadow mode"): "shadow_promoted", "shadow_dropped" or none.
  std::string shadow_event{};
};

std::vector<SitePlan> Plans() {
  return {
      {.site_id = "plant-north", .tenant = "acme", .region = "eu-west",
       .nodes = {"n1", "n2"}, .models = {"pump", "fan"}, .silent_for_ms = 10 * kMinute,
       .autonomy_days = 12.5, .backlog_records = 42, .anomaly_rate = 0.012,
       .shadow_event = "shadow_promoted"},
      {.site_id = "plant-south", .tenant = "acme", .region = "eu-south", .nodes = {"n1"},
       .models = {"pump"}, .silent_for_ms = 25 * kMinute, .autonomy_days = 0.6,
       .backlog_records = 5230, .anomaly_rate = 0.03, .shadow_event = "shadow_promoted"},
      {.site_id = "mine-andes", .tenant = "acme", .region = "sa-west", .nodes = {"n1"},
       .models = {"pump"}, .silent_for_ms = 2 * kHour, .autonomy_days = 21,
       .backlog_records = 310, .anomaly_rate = 0.02, .drifting = true, .model_version = 4,
       .shadow_event = "shadow_dropped"},
      {.site_id = "ship-atlantic", .tenant = "acme", .region = "at-sea", .nodes = {"n1"},
       .models = {"pump"}, .silent_for_ms = 4 * kDay + 3 * kHour, .autonomy_days = 9,
       .backlog_records = 880, .anomaly_rate = 0.015},
      {.site_id = "depot-1", .tenant = "globex", .region = "us-east", .nodes = {"n1"},
       .models = {"press"}, .silent_for_ms = 5 * kMinute, .autonomy_days = 30,
       .backlog_records = 3, .anomaly_rate = 0.05},
      {.site_id = "depot-2", .tenant = "globex", .region = "us-west", .nodes = {"n1"},
       .models = {"press"}, .silent_for_ms = 6 * kDay, .autonomy_days = 4,
       .backlog_records = 77, .anomaly_rate = 0.04},
  };
}

// A node's policy audit chain (one per (site, node), whatever the stream): the head written
// and the head the hub has stored.
struct Chain {
  uint64_t seq = 0;
  std::string hash = std::string(64, '0');
  uint64_t stored_seq = 0;
  std::string stored_hash = std::string(64, '0');
};

// One (site, node, stream) being filled: its seq counter and the batch open. The streams of
// one node are filled one after the other, each flushing its chain lines before the next.
class StreamWriter {
 public:
  StreamWriter(Store& store, const SitePlan& plan, Chain& chain, std::string node,
               std::string stream)
      : store_(store),
        plan_(plan),
        chain_(chain),
        node_(std::move(node)),
        stream_(std::move(stream)) {}

  void Add(std::string kind, int64_t created_ms, std::string payload,
           policy::Outcome decision = policy::Outcome::kAllowed, std::string reason = "") {
    uint64_t seq = ++seq_;
    policy::AuditEntry entry{.time_ms = created_ms,
                             .decision = decision,
                             .reason = std::move(reason),
                             .kind = kind,
                             .site = plan_.site_id,
                             .node = node_,
                             .stream = stream_,
                             .rseq = seq,
                             .policy_digest = std::string(kPolicy)};
    std::string line = policy::FormatAuditLine(chain_.seq + 1, entry, chain_.hash);
    ++chain_.seq;
    chain_.hash = crypto::Sha256Hex(line);
    lines_ += line;
    lines_ += '\n';
    if (decision != policy::Outcome::kAllowed) return;  // withheld: only the audit line leaves
    batch_.push_back(HubRecord{.site_id = plan_.site_id,
                               .node_id = node_,
                               .stream = stream_,
                               .seq = seq,
                               .kind = std::move(kind),
                               .created_ms = created_ms,
                               .payload = std::move(payload)});
  }

  // Stores the open batch as the site uploading it at `now_ms`.
  Status Flush(int64_t now_ms) {
    if (batch_.empty()) return Status();
    std::string content;
    for (const HubRecord& r : batch_) content += r.kind + r.payload + std::to_string(r.seq);
    BatchKey key{.site_id = plan_.site_id,
                 .node_id = node_,
                 .stream = stream_,
                 // Withheld records before the first stored one lie within the range too.
                 .first_seq = first_unflushed_,
                 .last_seq = batch_.back().seq,
                 .content_sha256 = crypto::Sha256Hex(content)};
    AuditSegment audit{.node_id = node_,
                       .from_seq = chain_.stored_seq,
                       .from_hash = chain_.stored_hash,
                       .to_seq = chain_.seq,
                       .to_hash = chain_.hash,
                       .lines = lines_};
    auto result = store_.Ingest(key, batch_, audit, now_ms);
    if (!result.ok()) return result.status();
    batch_.clear();
    lines_.clear();
    chain_.stored_seq = chain_.seq;
    chain_.stored_hash = chain_.hash;
    first_unflushed_ = seq_ + 1;
    return Status();
  }

 private:
  Store& store_;
  const SitePlan& plan_;
  Chain& chain_;
  std::string node_, stream_;
  uint64_t seq_ = 0;
  uint64_t first_unflushed_ = 1;
  std::string lines_;
  std::vector<HubRecord> batch_;
};

std::string Payload(const std::function<void(JsonWriter&)>& fill) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  fill(w);
  w.EndObject();
  return out;
}

// The event a site's node writes when its shadow rule decides (serve/FORMAT.md "Shadow
// mode"): v4 against champion v3.
std::string ShadowEvent(const SitePlan& plan, int64_t time_ms) {
  const bool promoted = plan.shadow_event == "shadow_promoted";
  const uint64_t compared = promoted ? 1200 : 640;
  const uint64_t agreed = promoted ? 1130 : 470;
  return Payload([&](JsonWriter& w) {
    w.Key("v"); w.Int(1);
    w.Key("kind"); w.String("event");
    w.Key("model"); w.String("pump");
    w.Key("version"); w.Int(promoted ? 4 : 3);
    w.Key("time_ms"); w.Int(time_ms);
    w.Key("event"); w.String(plan.shadow_event);
    w.Key("shadow_version"); w.Int(4);
    w.Key("champion_version"); w.Int(3);
    w.Key("compared"); w.Uint(compared);
    w.Key("agreed"); w.Uint(agreed);
    w.Key("agreement"); w.Double(std::round(10000.0 * agreed / compared) / 10000);
    w.Key("labelled"); w.Uint(promoted ? 80 : 55);
    w.Key("champion_accuracy"); w.Double(promoted ? 0.85 : 0.88);
    w.Key("shadow_accuracy"); w.Double(promoted ? 0.9 : 0.84);
    w.Key("persisted"); w.Bool(true);
  });
}

Status SeedSite(Store& store, const SitePlan& plan, int64_t now_ms, std::mt19937_64& rng,
                uint64_t* records) {
  OUTPOST_RETURN_IF_ERROR(store.CreateSite(Site{.site_id = plan.site_id,
                                                .tenant = plan.tenant,
                                                .region = plan.region,
                                                .created_ms = now_ms - 30 * kDay}));
  const int64_t last_contact = now_ms - plan.silent_for_ms;
  const int64_t start = (now_ms - 7 * kDay) / kHour * kHour;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (const std::string& node : plan.nodes) {
    Chain chain;
    for (const std::string& model : plan.models) {
      StreamWriter writer(store, plan, chain, node, model);
      int64_t day_end = start + kDay;
      double level = 0.2;
      for (int64_t hour = start; hour + kHour <= last_contact; hour += kHour) {
        // Traffic follows the working day; a busy hour scores ~2000 rows.
        double phase = std::sin(static_cast<double>(hour % kDay) / kDay * 2 * M_PI);
        uint64_t rows = static_cast<uint64_t>(1200 + 800 * phase + 200 * unit(rng));
        double rate = plan.anomaly_rate * (0.5 + unit(rng));
        if (plan.drifting && hour > now_ms - 2 * kDay) rate *= 2.5;
        uint64_t anomalies = static_cast<uint64_t>(std::llround(rows * rate));
        uint64_t hard = rows / 150;
        int64_t t = hour + 30 * kMinute;
        // The rows flagged as anomalies leave as records too (a few of each hour).
        uint64_t anomaly_records = std::min<uint64_t>(anomalies, 3);
        for (uint64_t i = 0; i < anomaly_records; ++i) {
          double score = 0.9 + 0.099 * unit(rng);
          writer.Add("anomaly", t + static_cast<int64_t>(i) * 1000, Payload([&](JsonWriter& w) {
                       w.Key("v"); w.Int(1);
                       w.Key("kind"); w.String("anomaly");
                       w.Key("model"); w.String(model);
                       w.Key("version"); w.Int(plan.model_version);
                       w.Key("time_ms"); w.Int(t + static_cast<int64_t>(i) * 1000);
                       w.Key("rule"); w.String("fault_likely");
                       w.Key("request_id"); w.String("r-" + std::to_string(hour / 1000 + i));
                       w.Key("row"); w.Int(0);
                       w.Key("score"); w.String("value");
                       w.Key("score_value"); w.Double(std::round(score * 1000) / 1000);
                       w.Key("inputs"); w.BeginObject();
                       w.Key("bearing_temp_c"); w.Double(std::round((70 + 20 * unit(rng)) * 10) / 10);
                       w.EndObject();
                     }));
        }
        if (hour % (3 * kHour) == 0) {
          writer.Add("hard_example", t + 5000, Payload([&](JsonWriter& w) {
                       w.Key("v"); w.Int(1);
                       w.Key("kind"); w.String("hard_example");
                       w.Key("model"); w.String(model);
                       w.Key("version"); w.Int(plan.model_version);
                       w.Key("time_ms"); w.Int(t + 5000);
                       w.Key("rule"); w.String("unsure");
                       w.Key("score"); w.String("margin");
                       w.Key("score_value"); w.Double(0.1);
                     }));
        }
        if (hour % (4 * kHour) == 0) {
          writer.Add("feedback", t + 6000, Payload([&](JsonWriter& w) {
                       w.Key("v"); w.Int(1);
                       w.Key("kind"); w.String("feedback");
                       w.Key("model"); w.String(model);
                       w.Key("request_id"); w.String("r-" + std::to_string(hour / 1000));
                       w.Key("label"); w.Int(unit(rng) < 0.3 ? 1 : 0);
                       w.Key("time_ms"); w.Int(t + 6000);
                     }));
        }
        if (hour % (6 * kHour) == 0) {
          // Samples are withheld by the site's policy: only the audit line tells.
          writer.Add("sample", t + 7000, "{}", policy::Outcome::kWithheld, "aggregates_only");
        }
        if (plan.drifting && hour > now_ms - 2 * kDay && hour % (5 * kHour) == 0) {
          double psi = std::round((0.22 + 0.4 * unit(rng)) * 1000) / 1000;
          writer.Add("drift", t + 8000, Payload([&](JsonWriter& w) {
                       w.Key("v"); w.Int(1);
                       w.Key("kind"); w.String("drift");
                       w.Key("model"); w.String(model);
                       w.Key("version"); w.Int(plan.model_version);
                       w.Key("time_ms"); w.Int(t + 8000);
                       w.Key("rule"); w.String("inputs_moved");
                       w.Key("feature"); w.String(unit(rng) < 0.5 ? "bearing_temp_c" : "vibration_mm_s");
                       w.Key("psi"); w.Double(psi);
                       w.Key("level"); w.Double(level);
                       w.Key("window"); w.Int(500);
                     }));
        }
        writer.Add("aggregate", hour + kHour - kMinute, Payload([&](JsonWriter& w) {
                     w.Key("v"); w.Int(1);
                     w.Key("kind"); w.String("aggregate");
                     w.Key("model"); w.String(model);
                     w.Key("version"); w.Int(plan.model_version);
                     w.Key("time_ms"); w.Int(hour + kHour - kMinute);
                     w.Key("minute_ms"); w.Int(hour + kHour - kMinute);
                     w.Key("batches"); w.Uint(rows / 20);
                     w.Key("rows"); w.Uint(rows);
                     w.Key("anomalies"); w.Uint(anomalies);
                     w.Key("hard_examples"); w.Uint(hard);
                     w.Key("samples"); w.Uint(0);
                     w.Key("drifts"); w.Uint(0);
                     w.Key("nan_scores"); w.Uint(0);
                   }));
        *records += 1;
        if (hour + kHour >= day_end) {
          OUTPOST_RETURN_IF_ERROR(writer.Flush(std::min(day_end + 5 * kMinute, last_contact)));
          day_end += kDay;
        }
      }
      if (!plan.shadow_event.empty() && model == "pump" && node == plan.nodes.front()) {
        writer.Add("event", last_contact - 2 * kHour, ShadowEvent(plan, last_contact - 2 * kHour));
      }
      OUTPOST_RETURN_IF_ERROR(writer.Flush(last_contact));
    }
    std::string models = "[";
    for (size_t i = 0; i < plan.models.size(); ++i) {
      if (i > 0) models += ",";
      models += R"({"name":")" + plan.models[i] + R"(","version":)" +
                std::to_string(plan.model_version) + R"(,"state":"AVAILABLE"})";
    }
    models += "]";
    OUTPOST_RETURN_IF_ERROR(store.PutNodeStatus(
        NodeStatus{.site_id = plan.site_id,
                   .node_id = node,
                   .reported_ms = last_contact - 1000,
                   .backlog_records = plan.backlog_records,
                   .backlog_bytes = plan.backlog_records * 512,
                   .autonomy_days = plan.autonomy_days,
                   .models_json = models},
        last_contact));
  }
  // Contact last happened when the newest upload or report arrived.
  return store.TouchSite(plan.site_id, last_contact);
}

// A holdout evaluation as train/FORMAT.md section 3 writes it: an ROC curve tpr = fpr^c
// (whose AUC is 1 / (1 + c)) and a reliability table a little off the diagonal.
void WriteModelMetrics(JsonWriter& w, double auc, double accuracy, double logloss, double skew) {
  w.Key("auc"); w.Double(auc);
  w.Key("accuracy"); w.Double(accuracy);
  w.Key("logloss"); w.Double(logloss);
  w.Key("roc");
  w.BeginArray();
  const double c = 1 / auc - 1;
  for (int i = 0; i <= 20; ++i) {
    const double fpr = i / 20.0;
    w.BeginArray();
    w.Double(fpr);
    w.Double(std::round(std::pow(fpr, c) * 10000) / 10000);
    w.EndArray();
  }
  w.EndArray();
  w.Key("calibration");
  w.BeginArray();
  const int rows[10] = {310, 90, 44, 30, 22, 18, 16, 20, 22, 28};
  for (int b = 0; b < 10; ++b) {
    const double p = b / 10.0 + 0.05;
    w.BeginObject();
    w.Key("p"); w.Double(p);
    w.Key("rate"); w.Double(std::round(std::clamp(p + skew * (p - 0.5), 0.0, 1.0) * 10000) / 10000);
    w.Key("rows"); w.Int(rows[b]);
    w.EndObject();
  }
  w.EndArray();
}

// pump vN's metrics.json: vN against the champion v(N-1) on vN's holdout.
std::string MetricsJson(int version) {
  // AUC, accuracy, log loss and calibration skew of each version.
  const double auc[] = {0.8, 0.84, 0.87, 0.91, 0.86};
  const double accuracy[] = {0.86, 0.88, 0.9, 0.93, 0.89};
  const double logloss[] = {0.34, 0.3, 0.26, 0.19, 0.28};
  const double skew[] = {0.4, 0.3, 0.2, 0.05, 0.25};
  const int i = version - 2;
  return Payload([&](JsonWriter& w) {
    w.Key("v"); w.Int(1);
    w.Key("model"); w.String("pump");
    w.Key("version"); w.Int(version);
    w.Key("decision"); w.String("candidate");
    w.Key("metric"); w.String("auc");
    w.Key("margin"); w.Double(0.01);
    w.Key("reason");
    char reason[128];
    std::snprintf(reason, sizeof(reason),
                  "challenger auc %.4f beats champion %.4f by %.4f >= 0.0100", auc[i],
                  auc[i - 1], auc[i] - auc[i - 1]);
    w.String(version == 6 ? "operator-requested retrain on the newest labels" : reason);
    w.Key("holdout"); w.BeginObject();
    w.Key("rows"); w.Int(600); w.Key("positives"); w.Int(71); w.EndObject();
    w.Key("challenger"); w.BeginObject();
    WriteModelMetrics(w, auc[i], accuracy[i], logloss[i], skew[i]);
    w.EndObject();
    w.Key("champion"); w.BeginObject();
    w.Key("version"); w.Int(version == 6 ? 4 : version - 1);
    const int c = version == 6 ? 2 : i - 1;
    WriteModelMetrics(w, auc[c], accuracy[c], logloss[c], skew[c]);
    w.EndObject();
    w.Key("workers"); w.Int(1);
  });
}

// pump vN's lineage.json: which sites' records and labels trained it.
std::string LineageJson(int version) {
  const std::string digest = crypto::Sha256Hex("pump training set v" + std::to_string(version));
  return Payload([&](JsonWriter& w) {
    w.Key("v"); w.Int(1);
    w.Key("model"); w.String("pump");
    w.Key("version"); w.Int(version);
    w.Key("parent_version"); w.Int(version == 6 ? 4 : version - 1);
    w.Key("training_set"); w.BeginObject();
    w.Key("sha256"); w.String(digest);
    w.Key("rows"); w.Int(5000 + 100 * version);
    w.Key("original_rows"); w.Int(5000);
    w.Key("edge_rows"); w.Int(100 * version);
    w.EndObject();
    w.Key("holdout"); w.BeginObject();
    w.Key("sha256"); w.String(crypto::Sha256Hex("pump holdout v" + std::to_string(version)));
    w.Key("rows"); w.Int(600);
    w.EndObject();
    w.Key("original"); w.BeginObject();
    w.Key("source"); w.String("synthetic:rows=5000,seed=1");
    w.Key("sha256"); w.String(crypto::Sha256Hex("pump original"));
    w.Key("rows"); w.Int(5000);
    w.EndObject();
    w.Key("records"); w.BeginArray();
    for (const char* site : {"mine-andes", "plant-north"}) {
      for (const char* kind : {"anomaly", "feedback"}) {
        w.BeginObject();
        w.Key("site_id"); w.String(site);
        w.Key("node_id"); w.String("n1");
        w.Key("stream"); w.String("pump");
        w.Key("kind"); w.String(kind);
        w.Key("first_seq"); w.Int(1);
        w.Key("last_seq"); w.Int(400 + 10 * version);
        w.Key("count"); w.Int(25 * version);
        w.EndObject();
      }
    }
    w.EndArray();
    w.Key("join"); w.BeginObject();
    w.Key("feedback"); w.Int(110 * version);
    w.Key("labelled"); w.Int(100 * version);
    w.Key("unmatched"); w.Int(10 * version);
    w.EndObject();
  });
}

// One node's models as a newer node reports them: {model, version, state, role}.
struct Reported {
  std::string model;
  int version;
  std::string state;
  std::string role;
};

std::string ReportedModels(const std::vector<Reported>& models, uint64_t bundle_version) {
  std::string out;
  JsonWriter w(out);
  w.BeginArray();
  for (const Reported& m : models) {
    w.BeginObject();
    w.Key("name"); w.String(m.model);
    w.Key("version"); w.Int(m.version);
    w.Key("state"); w.String(m.state);
    w.Key("role"); w.String(m.role);
    w.Key("bundle_version"); w.Uint(bundle_version);
    w.EndObject();
  }
  w.EndArray();
  return out;
}

// The bundle versions of the releases of pump v3 and v4 the sites installed.
constexpr uint64_t kBundleV3 = 1700000000300;
constexpr uint64_t kBundleV4 = 1700000000400;

Status SeedInstalls(Store& store, int64_t now_ms) {
  for (const auto& [site_id, region] :
       {std::pair{"rig-9", "north-sea"}, std::pair{"farm-2", "us-central"}}) {
    OUTPOST_RETURN_IF_ERROR(store.CreateSite(Site{.site_id = site_id,
                                                  .tenant = "acme",
                                                  .region = region,
                                                  .created_ms = now_ms - 30 * kDay}));
    OUTPOST_RETURN_IF_ERROR(store.TouchSite(site_id, now_ms - 20 * kMinute));
  }
  // Mid-upgrade: plant-north's two nodes serve different versions; the sites still on v3 run
  // v4 as its shadow; rig-9 loads v5 (not READY: not serving yet).
  struct NodeReport {
    std::string site_id, node_id;
    uint64_t bundle_version;
    std::vector<Reported> models;
  };
  const Reported v3{"pump", 3, "READY", "serving"};
  const Reported v4{"pump", 4, "READY", "serving"};
  const Reported v4_shadow{"pump", 4, "READY", "shadow"};
  const Reported fan{"fan", 3, "READY", "serving"};
  const std::vector<NodeReport> reports = {
      {"plant-north", "n1", kBundleV4, {v3, v4_shadow, fan}},
      {"plant-north", "n2", kBundleV4, {v4, fan}},
      {"plant-south", "n1", kBundleV4, {v3, v4_shadow}},
      {"mine-andes", "n1", kBundleV4, {v4}},
      {"ship-atlantic", "n1", kBundleV3, {v3}},
      {"rig-9", "n1", kBundleV4, {v4, {"pump", 5, "LOADING", "serving"}}},
  };
  for (const NodeReport& r : reports) {
    // A seeded site reports when it was last in contact (a silent one stays silent).
    int64_t at = now_ms - 15 * kMinute;
    for (const SitePlan& plan : Plans()) {
      if (plan.site_id == r.site_id) at = now_ms - plan.silent_for_ms - 1000;
    }
    OUTPOST_RETURN_IF_ERROR(store.PutNodeStatus(
        NodeStatus{.site_id = r.site_id,
                   .node_id = r.node_id,
                   .reported_ms = at,
                   .backlog_records = 10,
                   .backlog_bytes = 5120,
                   .autonomy_days = 10,
                   .models_json = ReportedModels(r.models, r.bundle_version)},
        at));
  }
  // farm-2 only exports: its node is known from the bundle event it wrote.
  SitePlan farm{.site_id = "farm-2", .tenant = "acme", .region = "us-central"};
  Chain chain;
  StreamWriter writer(store, farm, chain, "n1", "bundle");
  writer.Add("event", now_ms - 3 * kHour, Payload([](JsonWriter& w) {
               w.Key("event"); w.String("bundle_installed");
               w.Key("bundle_version"); w.Uint(kBundleV3);
               w.Key("models"); w.BeginArray(); w.String("pump/3"); w.EndArray();
             }));
  return writer.Flush(now_ms - 3 * kHour);
}

int Main(int argc, char** argv) {
  std::string url;
  std::optional<int64_t> now_ms;
  std::string model_file;  // the registry versions' model file (an approval ships it)
  bool installs = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--store" && i + 1 < argc) {
      url = argv[++i];
    } else if (arg == "--model-file" && i + 1 < argc) {
      model_file = argv[++i];
    } else if (arg == "--now-ms" && i + 1 < argc) {
      now_ms = std::strtoll(argv[++i], nullptr, 10);
    } else if (arg == "--installs") {
      installs = true;
    } else {
      std::fprintf(stderr,
                   "usage: seed_hub --store URL [--model-file PATH] [--now-ms MS] [--installs]\n");
      return 2;
    }
  }
  if (url.empty()) {
    std::fprintf(stderr, "seed_hub: --store is required\n");
    return 2;
  }
  auto store = OpenStore(url);
  if (!store.ok()) {
    std::fprintf(stderr, "seed_hub: %s\n", store.status().ToString().c_str());
    return 1;
  }
  int64_t now = now_ms.value_or(UnixMillis(SystemClock().Now()));
  std::mt19937_64 rng(20261125);
  uint64_t hours = 0;
  std::vector<SitePlan> plans = Plans();
  for (const SitePlan& plan : plans) {
    if (Status s = SeedSite(**store, plan, now, rng, &hours); !s.ok()) {
      std::fprintf(stderr, "seed_hub: %s: %s\n", plan.site_id.c_str(), s.ToString().c_str());
      return 1;
    }
  }
  if (installs) {
    if (Status s = SeedInstalls(**store, now); !s.ok()) {
      std::fprintf(stderr, "seed_hub: installs: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  // The registry: the champion the sites run, the challengers trained since, each with the
  // metrics.json and lineage.json `outpost train` writes (train/FORMAT.md section 3).
  for (const auto& [version, state] : {std::pair{3, "bundled"}, std::pair{4, "bundled"},
                                       std::pair{5, "candidate"}, std::pair{6, "candidate"}}) {
    Status s = (*store)->RegisterModel(ModelEntry{.name = "pump",
                                                  .version = version,
                                                  .state = state,
                                                  .metrics_json = MetricsJson(version),
                                                  .lineage_json = LineageJson(version),
                                                  .artifact_path = model_file,
                                                  .created_ms = now - (7 - version) * 5 * kDay});
    if (!s.ok()) {
      std::fprintf(stderr, "seed_hub: registry: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::printf("seeded %zu sites, %" PRIu64 " site-hours of data, now_ms %" PRId64 "\n",
              plans.size(), hours, now);
  return 0;
}

}  // namespace
}  // namespace outpost::hub

int main(int argc, char** argv) { return outpost::hub::Main(argc, argv); }
