// `outpost train` end to end against the hub's store (SQLite): the records a site uploaded
// and the registry's champion in; model.json, metrics.json, lineage.json and a registry entry
// out — "candidate" when the site's data carries a shift the original set lacks, "rejected"
// when it does not; and the same run on two XGBoost workers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/json_writer.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "hub/store.h"
#include "train/synthetic.h"
#include "train/testing/edge_payloads.h"
#include "train/xgboost_trainer.h"

namespace outpost {
namespace {

constexpr char kConfig[] = R"(
features: [bearing_temp_c, vibration_mm_s, discharge_pressure_bar, motor_current_a,
           speed_rpm, ambient_temp_c, flow_m3h, hours_since_service]
labels: {ok: 0, fault: 1}
original:
  synthetic: {rows: 3000, seed: 1, fault_rate: 0.1}
xgboost: {rounds: 30}
holdout: {fraction: 0.4}
decision: {metric: auc, margin: 0.02}
tenant: acme
)";

// One batch per node: hard examples from the edge node (n1), operators' feedback (n2).
void Upload(hub::Store& store, const train::Dataset& data, const std::string& site) {
  std::vector<hub::HubRecord> rows, feedback;
  for (int64_t r = 0; r < data.rows; ++r) {
    const std::string id = site + "-r" + std::to_string(r);
    const std::string payload = train::fixtures::HardExamplePayload(data, r, id, 1000 + r);
    const uint64_t seq = static_cast<uint64_t>(r + 1);
    rows.push_back({.site_id = site, .node_id = "n1", .stream = "pump", .seq = seq,
                    .kind = "hard_example", .created_ms = 1000 + r, .payload = payload});
    const char* label = data.labels[static_cast<size_t>(r)] == 1.0f ? "\"fault\"" : "0";
    feedback.push_back({.site_id = site, .node_id = "n2", .stream = "pump", .seq = seq,
                        .kind = "feedback", .created_ms = 9000 + r,
                        .payload = train::fixtures::FeedbackPayload(id, label)});
  }
  for (auto* batch : {&rows, &feedback}) {
    hub::BatchKey key{.site_id = site, .node_id = batch->front().node_id, .stream = "pump",
                      .first_seq = 1, .last_seq = static_cast<uint64_t>(data.rows),
                      .content_sha256 = crypto::Sha256Hex(batch->front().node_id + site)};
    auto result = store.Ingest(key, *batch, std::nullopt, 1);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->records_stored, static_cast<uint64_t>(data.rows));
  }
}

struct HubFixture {
  testing::TempDir dir;
  std::string url;
};

// A store with site plant-7 (tenant acme), `edge` uploaded, and champion version 1
// (trained on the original set) approved.
void Prepare(HubFixture& s, const train::PumpDataOptions& edge) {
  s.url = "sqlite:" + s.dir.File("hub.db");
  OUTPOST_ASSERT_OK(WriteFileAtomically(s.dir.File("train.yaml"), kConfig));
  auto store = hub::OpenStore(s.url);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  OUTPOST_ASSERT_OK((*store)->CreateSite({.site_id = "plant-7", .tenant = "acme",
                                          .region = "eu"}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset original,
                               train::MakePumpReadings({.rows = 3000, .seed = 1,
                                                        .fault_rate = 0.1}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto champion, train::TrainXGBoost(original, {.rounds = 30}));
  OUTPOST_ASSERT_OK(champion->Save(s.dir.File("champion.json"), train::ModelFormat::kJson));
  OUTPOST_ASSERT_OK((*store)->RegisterModel({.name = "pump", .version = 1, .state = "approved",
                                             .artifact_path = s.dir.File("champion.json"),
                                             .created_ms = 1}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data, train::MakePumpReadings(edge));
  Upload(**store, data, "plant-7");
}

RunResult Train(const HubFixture& s, const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {JoinPath(testing::BinaryDir(), "outpost"), "train",
                                   "--store", s.url, "--model", "pump", "--config",
                                   s.dir.File("train.yaml"), "--out", s.dir.File(out)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return RunProgram(argv);
}

TEST(TrainCommand, ShiftedSiteDataMakesACandidateWithMetricsAndLineage) {
  HubFixture s;
  ASSERT_NO_FATAL_FAILURE(Prepare(s, {.rows = 2500, .seed = 77, .fault_rate = 0.1,
                                      .shift_feature = "bearing_temp_c", .shift_sigmas = 2.5}));
  RunResult run = Train(s, "v2");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("pump version 2: candidate"), std::string::npos) << run.out;
  std::printf("%s", run.out.c_str());

  auto store = hub::OpenStore(s.url);
  ASSERT_TRUE(store.ok());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<hub::ModelEntry> models, (*store)->ListModels("pump"));
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].version, 2);
  EXPECT_EQ(models[0].state, "candidate");
  EXPECT_EQ(models[0].artifact_path, s.dir.File("v2/model.json"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string metrics, ReadFile(s.dir.File("v2/metrics.json")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string lineage, ReadFile(s.dir.File("v2/lineage.json")));
  EXPECT_EQ(models[0].metrics_json, metrics);
  EXPECT_EQ(models[0].lineage_json, lineage);
  EXPECT_NE(metrics.find("\"champion\":{\"version\":1,"), std::string::npos) << metrics;
  EXPECT_NE(lineage.find(R"({"site_id":"plant-7","node_id":"n1","stream":"pump",)"
                         R"("kind":"hard_example","first_seq":1,"last_seq":2500,"count":2500})"),
            std::string::npos)
      << lineage;
  EXPECT_NE(lineage.find("\"labelled\":2500"), std::string::npos) << lineage;
  // The model the registry points at is a real model that scores.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string model, ReadFile(models[0].artifact_path));
  std::vector<float> row(8, 50.0f);
  EXPECT_TRUE(train::ReferencePredict(model, row, 1, 8).ok());

  // Two XGBoost workers on loopback: the same decision, version 3.
  RunResult distributed = Train(s, "v3", {"--workers", "2"});
  ASSERT_EQ(distributed.exit_code, 0) << distributed.err;
  EXPECT_NE(distributed.out.find("pump version 3: candidate"), std::string::npos)
      << distributed.out;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string metrics3, ReadFile(s.dir.File("v3/metrics.json")));
  EXPECT_NE(metrics3.find("\"workers\":2"), std::string::npos);
  EXPECT_TRUE(PathExists(s.dir.File("v3/workers/model-1.json")));
}

TEST(TrainCommand, WithoutAShiftTheChallengerIsRejected) {
  HubFixture s;
  ASSERT_NO_FATAL_FAILURE(Prepare(s, {.rows = 2500, .seed = 77, .fault_rate = 0.1}));
  RunResult run = Train(s, "v2");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("pump version 2: rejected"), std::string::npos) << run.out;
  auto store = hub::OpenStore(s.url);
  ASSERT_TRUE(store.ok());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<hub::ModelEntry> models, (*store)->ListModels("pump"));
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].state, "rejected");
}

TEST(TrainCommand, ClearErrorsForMissingFlagsAndAnEmptyStore) {
  HubFixture s;
  OUTPOST_ASSERT_OK(WriteFileAtomically(s.dir.File("train.yaml"), kConfig));
  s.url = "sqlite:" + s.dir.File("empty.db");
  RunResult run = Train(s, "out");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("no edge-labelled rows fell into the holdout"), std::string::npos)
      << run.err;
  RunResult missing = RunProgram({JoinPath(testing::BinaryDir(), "outpost"), "train",
                                  "--model", "pump"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("a store (--store, --store-url-file or OUTPOST_STORE_URL)"), std::string::npos)
      << missing.err;
}

}  // namespace
}  // namespace outpost
