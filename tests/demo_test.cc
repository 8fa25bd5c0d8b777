// `outpost demo` end to end: runs the whole loop (a hub and two sites as real processes) with
// --summary, then checks every step's outcome independently of the demo's own account:
//   - records: what the hub's store holds for each site, counted through the store, equals what
//     the site produced (its outbox's gapless seqs) minus what is still held there, evicted,
//     quarantined or withheld by policy (the site's audit log); every operator label arrived;
//     site B's records came only by export file and its receipts emptied its outbox;
//   - retraining: the hub's schedule ran it; metrics.json beside the registered model says the
//     challenger beat the champion on the holdout by the margin, and the registry holds
//     version 2 as bundled (approved through the hub's API, which built the bundle);
//   - the release's delivery: site A's edge fetched the approved release over its link by
//     itself (its release puller's log line names the bundle version, its releases folder holds
//     no leftover and no refusal) and its `bundle_installed` event reached the hub; site B,
//     without a link, has no puller and installed the same bundle version from disk;
//   - shadow and promotion: each site's `shadow_promoted` event record for version 2 is in the
//     hub's store;
//   - serving: the promoted version serves at both sites (asked of an edge started on each
//     site's model repository), with XGBoost's own predictions of the new model;
//   - security: each site's edge served HTTPS with its site certificate and admitted three
//     tokens made by `outpost edge credential add` (scorer: infer, labeller: label, reader:
//     read), kept as hashes in a 0600 file; the demo showed a request without a credential
//     refused with 401 credential_missing and a label with the scorer's token with 403
//     role_required, and printed no token.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <charconv>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/json/json_testing.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "hub/store.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost {
namespace {

using json::Missing;
using json::MissingArray;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

uint64_t Sql(const std::string& db, const std::string& sql) {
  RunResult r = RunProgram({"/usr/bin/sqlite3", "-batch", "-noheader", db, sql});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  uint64_t v = 0;
  std::from_chars(r.out.data(), r.out.data() + r.out.size(), v);
  return v;
}

// Records of `site` in the hub's store, by kind.
std::map<std::string, uint64_t> HubKinds(hub::Store& store, const std::string& site) {
  std::map<std::string, uint64_t> kinds;
  hub::RecordQuery q{.tenant = "demo", .site_id = site, .limit = 10000};
  while (true) {
    auto page = store.QueryRecords(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    for (const hub::HubRecord& r : *page) {
      q.after_id = std::max(q.after_id, r.id);
      ++kinds[r.kind];
    }
    if (page->size() < q.limit) break;
  }
  return kinds;
}

// Records the site's policy did not let out: distinct (stream, seq) with a decision other
// than "allowed" in its audit log.
uint64_t Withheld(const std::string& audit_path) {
  if (!PathExists(audit_path)) return 0;
  auto text = ReadFile(audit_path);
  EXPECT_TRUE(text.ok());
  std::set<std::pair<std::string, uint64_t>> dropped;
  json::Parser parser;
  size_t start = 0;
  while (text.ok() && start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) break;
    json::Value e;
    EXPECT_FALSE(Missing(parser.Parse(std::string_view(text->data() + start, end - start)), e));
    std::string_view decision, stream;
    uint64_t rseq = 0;
    if (!Missing(e["decision"].GetString(), decision) && decision != "allowed" &&
        !Missing(e["stream"].GetString(), stream) && !Missing(e["rseq"].GetUint64(), rseq)) {
      dropped.emplace(std::string(stream), rseq);
    }
    start = end + 1;
  }
  return dropped.size();
}

// The event records of `site` in the hub's store whose `event` begins with `prefix`, oldest
// first: each one's payload parsed, described by `describe` and followed by ";".
std::string Events(hub::Store& store, const std::string& site, std::string_view prefix,
                   const std::function<std::string(std::string_view event, json::Value e,
                                                   const std::string& payload)>& describe) {
  hub::RecordQuery q{.tenant = "demo", .site_id = site, .kind = "event", .limit = 10000};
  auto events = store.QueryRecords(q);
  EXPECT_TRUE(events.ok()) << events.status().ToString();
  std::string out;
  json::Parser parser;
  for (const hub::HubRecord& r : events.ok() ? *events : std::vector<hub::HubRecord>{}) {
    json::Value e;
    std::string_view event;
    if (Missing(parser.Parse(r.payload), e) || Missing(e["event"].GetString(), event) ||
        event.rfind(prefix, 0) != 0) {
      continue;
    }
    out += describe(event, e, r.payload) + ";";
  }
  return out;
}

// The shadow decisions of `site` in the hub's store, as "<event> <winner> champion <v>;" each.
std::string ShadowEvents(hub::Store& store, const std::string& site) {
  return Events(store, site, "shadow_",
                [](std::string_view event, json::Value e, const std::string& payload) {
                  int64_t version = 0, champion = 0;
                  EXPECT_FALSE(Missing(e["version"].GetInt64(), version)) << payload;
                  EXPECT_FALSE(Missing(e["champion_version"].GetInt64(), champion)) << payload;
                  return std::string(event) + " " + std::to_string(version) + " champion " +
                         std::to_string(champion);
                });
}

// The bundle events (bundle/FORMAT.md section 9) of `site` in the hub's store, as
// "<event> <bundle_version>;" each, oldest first.
std::string BundleEvents(hub::Store& store, const std::string& site) {
  return Events(store, site, "bundle_",
                [](std::string_view event, json::Value e, const std::string& payload) {
                  uint64_t version = 0;
                  EXPECT_FALSE(Missing(e["bundle_version"].GetUint64(), version)) << payload;
                  return std::string(event) + " " + std::to_string(version);
                });
}

TEST(Demo, TheLoopClosesAndEveryRecordIsAccountedFor) {
  testing::TempDir dir;
  const std::string work = dir.File("demo");
  const std::string summary_path = dir.File("summary.json");
  constexpr int kRows = 900, kShadowRows = 400;
  RunResult demo = RunProgram({Outpost(), "demo", "--workdir", work, "--summary", summary_path,
                               "--rows", std::to_string(kRows), "--shadow-rows",
                               std::to_string(kShadowRows)});
  std::printf("%s", demo.out.c_str());
  ASSERT_EQ(demo.exit_code, 0) << demo.err;

  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string summary_text, ReadFile(summary_path));
  json::Parser parser;
  json::Value summary;
  ASSERT_FALSE(Missing(parser.Parse(summary_text), summary)) << summary_text;

  // The edge refused a caller without a credential, and a credential without the role, and
  // the story says so; no edge token (opt_...) reached the story.
  std::string_view no_credential, wrong_role;
  ASSERT_FALSE(Missing(summary["refusals"]["no_credential"].GetString(), no_credential));
  ASSERT_FALSE(Missing(summary["refusals"]["wrong_role"].GetString(), wrong_role));
  EXPECT_EQ(no_credential, "401 credential_missing");
  EXPECT_EQ(wrong_role, "403 role_required");
  EXPECT_NE(demo.out.find("POST /v2/models/pump/infer -> 401 credential_missing"),
            std::string::npos);
  EXPECT_NE(demo.out.find("POST /v1/feedback -> 403 role_required"), std::string::npos);
  EXPECT_EQ(demo.out.find("opt_"), std::string::npos);
  std::string_view store_url;
  ASSERT_FALSE(Missing(summary["store"].GetString(), store_url));
  auto opened = hub::OpenStore(store_url);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  hub::Store& store = **opened;

  // Retraining: the challenger beat the champion on the holdout, by metrics.json itself (in the
  // folder of the job the hub's schedule ran, beside the registered model file).
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<hub::ModelEntry> models, store.ListModels("pump"));
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].version, 2);
  EXPECT_EQ(models[0].state, "bundled");
  EXPECT_EQ(models[1].state, "bundled");
  EXPECT_EQ(models[0].artifact_path.rfind(JoinPath(work, "hub/training/pump-"), 0), 0u)
      << models[0].artifact_path;
  const std::string job_dir =
      models[0].artifact_path.substr(0, models[0].artifact_path.rfind('/'));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string metrics_text,
                               ReadFile(JoinPath(job_dir, "metrics.json")));
  json::Parser metrics_parser;
  json::Value metrics;
  ASSERT_FALSE(Missing(metrics_parser.Parse(metrics_text), metrics));
  std::string_view decision;
  double challenger_auc = 0, champion_auc = 0, margin = 0;
  int64_t holdout_rows = 0, champion_version = 0;
  ASSERT_FALSE(Missing(metrics["decision"].GetString(), decision));
  ASSERT_FALSE(Missing(metrics["challenger"]["auc"].GetDouble(), challenger_auc)) << metrics_text;
  ASSERT_FALSE(Missing(metrics["champion"]["auc"].GetDouble(), champion_auc)) << metrics_text;
  ASSERT_FALSE(Missing(metrics["champion"]["version"].GetInt64(), champion_version));
  ASSERT_FALSE(Missing(metrics["margin"].GetDouble(), margin));
  ASSERT_FALSE(Missing(metrics["holdout"]["rows"].GetInt64(), holdout_rows));
  EXPECT_EQ(decision, "candidate");
  EXPECT_EQ(champion_version, 1);
  EXPECT_GT(holdout_rows, 100);
  EXPECT_GE(challenger_auc, champion_auc + margin) << metrics_text;
  double summary_auc = 0;
  ASSERT_FALSE(Missing(summary["challenger"]["auc"].GetDouble(), summary_auc));
  EXPECT_DOUBLE_EQ(summary_auc, challenger_auc);
  bool shadow = false;
  ASSERT_FALSE(Missing(summary["shadow"].GetBool(), shadow));
  EXPECT_TRUE(shadow);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string new_model, ReadFile(models[0].artifact_path));
  uint64_t bundle_version = 0;
  ASSERT_FALSE(Missing(summary["bundle_version"].GetUint64(), bundle_version));
  ASSERT_GT(bundle_version, 1u);
  const std::string release = std::to_string(bundle_version);
  const std::string fetched =
      "site-a, connected: fetched the release over its link and installed it (bundle version ";
  EXPECT_NE(demo.out.find(fetched + release + ")"), std::string::npos);
  EXPECT_NE(demo.out.find("site-b, disconnected: the bundle is carried on disk and installed"),
            std::string::npos);

  json::Value sites;
  ASSERT_FALSE(MissingArray(summary["sites"], sites));
  int seen = 0;
  for (json::Value s : sites.Items()) {
    ++seen;
    std::string_view id_view, data_view, models_view, serving;
    int64_t readings = 0, feedback = 0;
    bool live = false;
    ASSERT_FALSE(Missing(s["site_id"].GetString(), id_view));
    ASSERT_FALSE(Missing(s["data_dir"].GetString(), data_view));
    ASSERT_FALSE(Missing(s["models"].GetString(), models_view));
    ASSERT_FALSE(Missing(s["serving_after"].GetString(), serving));
    ASSERT_FALSE(Missing(s["readings"].GetInt64(), readings));
    ASSERT_FALSE(Missing(s["feedback"].GetInt64(), feedback));
    ASSERT_FALSE(Missing(s["live"].GetBool(), live));
    const std::string id(id_view), data(data_view), repo(models_view);
    SCOPED_TRACE(id);

    // The edge's callers: one token each, made by outpost edge credential add, stored as
    // hashes in a file only its owner reads; the edge served HTTPS with its site certificate.
    const std::string credentials = JoinPath(data, "credentials.yaml");
    struct stat mode {};
    ASSERT_EQ(::stat(credentials.c_str(), &mode), 0) << credentials;
    EXPECT_EQ(mode.st_mode & 0777, 0600u);
    RunResult listed = RunProgram({Outpost(), "edge", "credential", "list", "--data-dir", data});
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_EQ(listed.out, "scorer\ttoken\tinfer\nlabeller\ttoken\tlabel\nreader\ttoken\tread\n");
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string credentials_text, ReadFile(credentials));
    EXPECT_EQ(credentials_text.find("opt_"), std::string::npos);
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string edge_yaml,
                                 ReadFile(JoinPath(work, id + "/edge.yaml")));
    EXPECT_NE(edge_yaml.find("tls: {site_certificate: true}"), std::string::npos) << edge_yaml;
    EXPECT_EQ(readings, kRows + kShadowRows);
    EXPECT_EQ(feedback, kRows + kShadowRows);
    EXPECT_EQ(serving, "2");

    // The account, from the site's own files and the hub's store.
    const std::string db = JoinPath(data, "outbox.db");
    EXPECT_EQ(Sql(db, "SELECT COUNT(*) FROM meta WHERE key='seq_floor' AND value > 1;"), 0u);
    const uint64_t produced = Sql(db, "SELECT COALESCE(SUM(next_seq - 1), 0) FROM streams;");
    const uint64_t held = Sql(db, "SELECT COUNT(*) FROM records;");
    const uint64_t evicted =
        Sql(db, "SELECT COALESCE(SUM(value), 0) FROM counters WHERE name LIKE 'evicted_records.%';");
    const uint64_t quarantined =
        Sql(db, "SELECT COALESCE(SUM(value), 0) FROM counters WHERE name = 'quarantined_records';");
    const uint64_t withheld = Withheld(JoinPath(data, "audit.log"));
    std::map<std::string, uint64_t> kinds = HubKinds(store, id);
    uint64_t at_hub = 0;
    for (const auto& [kind, n] : kinds) at_hub += n;
    EXPECT_GT(produced, 2u * (kRows + kShadowRows));
    EXPECT_EQ(at_hub, produced - held - evicted - quarantined - withheld)
        << "produced " << produced << " held " << held << " evicted " << evicted
        << " quarantined " << quarantined << " withheld " << withheld;
    uint64_t summary_at_hub = 0;
    ASSERT_FALSE(Missing(s["at_hub"].GetUint64(), summary_at_hub));
    EXPECT_EQ(summary_at_hub, at_hub);
    // Every label and every scored reading (the sample rule keeps all) reached the hub, and
    // the insight rules' records came with them.
    EXPECT_EQ(kinds["feedback"], static_cast<uint64_t>(kRows + kShadowRows));
    EXPECT_EQ(kinds["sample"], static_cast<uint64_t>(kRows + kShadowRows));
    EXPECT_GT(kinds["anomaly"], 0u);
    EXPECT_GT(kinds["drift"], 0u);
    EXPECT_GT(kinds["event"], 0u);  // the bundle installs, the promotion
    // The site promoted version 2 by its shadow rule, and said so to the hub.
    EXPECT_EQ(ShadowEvents(store, id), "shadow_promoted 2 champion 1;");
    // Both sites installed the first bundle offline and the release once, and told the hub.
    EXPECT_EQ(BundleEvents(store, id), "bundle_installed 1;bundle_installed " + release + ";");
    // How the release came: site A's edge fetched it over its link by itself (only its release
    // puller logs this line, after its install; had the release been installed at the site
    // another way first, the puller would never have fetched it), leaving no part file, no
    // fetched bundle and no refusal in its releases folder. Site B has no link and no puller.
    std::string_view release_by;
    ASSERT_FALSE(Missing(s["release_by"].GetString(), release_by));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string edge_log, ReadFile(JoinPath(work, id + "/edge.log")));
    const std::string pulled =
        "releases: installed a release from the hub model=pump bundle_version=" + release;
    const std::string releases_dir = JoinPath(data, "releases");
    if (live) {
      EXPECT_EQ(release_by, "link");
      EXPECT_NE(edge_yaml.find("  releases:\n"), std::string::npos) << edge_yaml;
      EXPECT_NE(edge_log.find(pulled), std::string::npos) << edge_log;
      OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<std::string> left, ListDirectory(releases_dir));
      EXPECT_TRUE(left.empty()) << left.front();
    } else {
      EXPECT_EQ(release_by, "disk");
      EXPECT_EQ(edge_yaml.find("sync:"), std::string::npos) << edge_yaml;
      EXPECT_EQ(edge_log.find("releases:"), std::string::npos) << edge_log;
      EXPECT_FALSE(PathExists(releases_dir));
    }
    if (!live) {
      // Site B: only by file. Everything exported was stored, and the receipts emptied the
      // outbox of it.
      uint64_t exported = 0, imported = 0, deleted = 0;
      ASSERT_FALSE(Missing(s["exported"].GetUint64(), exported));
      ASSERT_FALSE(Missing(s["imported_at_hub"].GetUint64(), imported));
      ASSERT_FALSE(Missing(s["receipt_deleted"].GetUint64(), deleted));
      EXPECT_EQ(imported, at_hub);
      EXPECT_EQ(exported, at_hub);
      EXPECT_EQ(deleted, at_hub);
      EXPECT_EQ(held, 0u);
      // The files on the stick were sealed to the hub's key: nothing of the site in clear.
      OUTPOST_ASSERT_OK_AND_ASSIGN(std::string stick,
                                   ReadFile(JoinPath(work, "usb-stick/" + id + "-1.export")));
      EXPECT_EQ(stick.substr(0, 4), "OPSE");
      EXPECT_EQ(stick.find(id), std::string::npos);
      EXPECT_EQ(stick.find("pump"), std::string::npos);
    }

    // The installed version serves at the site: an edge on the site's repository answers
    // version 2 only, with the new model's own predictions.
    const std::string config = dir.File(id + "-check.yaml");
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        config, "site_id: " + id + "\nlisten: 127.0.0.1:0\ngrpc_listen: \"\"\nthreads: 1\n"
                "model_repository: " + repo + "\ndata_dir: " + dir.File(id + "-check") + "\n"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto edge, Subprocess::Start({Outpost(), "edge", "--config", config},
                                                              dir.File(id + "-check.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, edge->ReadLine());
    ASSERT_EQ(line.rfind("listening on http://127.0.0.1:", 0), 0u) << line;
    const uint16_t port = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto client, http::Client::Connect("127.0.0.1", port));
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse info, client->Request("GET", "/v2/models/pump"));
    EXPECT_EQ(info.status, 200) << info.body;
    EXPECT_NE(info.body.find("\"versions\":[\"2\"]"), std::string::npos) << info.body;
    OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset rows, train::MakePumpReadings({.rows = 4, .seed = 3}));
    std::string body = R"({"inputs":[{"name":"features","datatype":"FP32","shape":[4,8],"data":[)";
    char buf[32];
    for (size_t i = 0; i < rows.features.size(); ++i) {
      auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), rows.features[i]);
      body += (i ? "," : "") + std::string(buf, p);
    }
    body += "]}]}";
    OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse scored,
                                 client->Request("POST", "/v2/models/pump/infer", body));
    ASSERT_EQ(scored.status, 200) << scored.body;
    EXPECT_NE(scored.body.find("\"model_version\":\"2\""), std::string::npos) << scored.body;
    OUTPOST_ASSERT_OK_AND_ASSIGN(train::Predictions want,
                                 train::ReferencePredict(new_model, rows.features, 4, 8));
    json::Parser answer_parser;
    json::Value answer;
    ASSERT_FALSE(Missing(answer_parser.Parse(scored.body), answer));
    json::Value outputs;
    ASSERT_FALSE(MissingArray(answer["outputs"], outputs));
    std::vector<float> got;
    for (json::Value out : outputs.Items()) {
      json::Value values;
      ASSERT_FALSE(MissingArray(out["data"], values));
      for (json::Value v : values.Items()) {
        double d = 0;
        ASSERT_FALSE(Missing(v.GetDouble(), d));
        got.push_back(static_cast<float>(d));
      }
    }
    ASSERT_EQ(got.size(), 4u);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(got[i], want.values[i]) << i;
    client.reset();
    OUTPOST_ASSERT_OK(edge->Signal(SIGTERM));
    EXPECT_EQ(edge->Wait(), 0);
  }
  EXPECT_EQ(seen, 2);
}

TEST(Demo, RefusesANonEmptyWorkdir) {
  testing::TempDir dir;
  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("w")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("w/something"), "x"));
  RunResult demo = RunProgram({Outpost(), "demo", "--workdir", dir.File("w")});
  EXPECT_EQ(demo.exit_code, 1);
  EXPECT_NE(demo.err.find("must be empty"), std::string::npos) << demo.err;
}

}  // namespace
}  // namespace outpost
