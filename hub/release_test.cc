// The release step and the retraining schedule (hub/release.h) on real parts: SQLite stores,
// keys made by `outpost keys generate`, XGBoost models, bundles checked by the site's own
// verifier, config.yaml checked by the scoring server's parser, and `outpost train` as the
// scheduler's child process.
#include "hub/release.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/coding.h"
#include "base/file.h"
#include "base/json_writer.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "bundle/bundle.h"
#include "bundle/crypto.h"
#include "bundle/metadata.h"
#include "hub/lease.h"
#include "hub/retrain_scheduler.h"
#include "hub/store.h"
#include "serve/model_config.h"
#include "train/synthetic.h"
#include "train/testing/edge_payloads.h"
#include "train/xgboost_trainer.h"

namespace outpost::hub {
namespace {

constexpr char kTemplate[] = R"(# the pump model: 8 readings in, the chance of a fault out
backend: xgboost
inputs:
  - {name: features, datatype: FP32, shape: [-1, 8]}
outputs:
  - {name: fault_probability, datatype: FP32, shape: [-1]}
)";

constexpr char kShadowRule[] = "promote: {min_requests: 200, min_agreement: 0.8, min_labelled: 50}";

constexpr char kMetricsV2[] =
    R"({"v":1,"model":"pump","version":2,"decision":"candidate","metric":"auc","margin":0.01,)"
    R"("challenger":{"auc":0.91,"accuracy":0.93,"logloss":null},)"
    R"("champion":{"version":1,"auc":0.84,"accuracy":0.9,"logloss":0.27}})";
constexpr char kLineageV2[] = R"({"v":1,"model":"pump","version":2,"parent_version":1})";

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

// A key folder made by `outpost keys generate`, and its root as a site trusts it.
struct Keys {
  std::string dir;
  bundle::Root root;
};

void MakeKeys(const std::string& dir, Keys* keys) {
  RunResult r = RunProgram({Outpost(), "keys", "generate", "--dir", dir});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(JoinPath(dir, "root.json")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(bundle::Envelope env, bundle::ParseEnvelope(text));
  OUTPOST_ASSERT_OK_AND_ASSIGN(keys->root, bundle::RootFromJson(env.signed_value));
  keys->dir = dir;
}

// A small real XGBoost model of the pump readings, as JSON.
void TrainModel(uint64_t seed, std::string* json) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data,
                               train::MakePumpReadings({.rows = 300, .seed = seed}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, train::TrainXGBoost(data, {.rounds = 5}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(*json, model->Serialize(train::ModelFormat::kJson));
}

// What a site sees of a bundle: verified with its root, staged under `staging`.
Result<bundle::VerifiedBundle> Verify(const std::string& path, const bundle::Root& root,
                                      const std::string& staging, const std::string& site) {
  return bundle::VerifyBundle(path, root, {},
                              {.site_id = site, .staging_dir = staging, .clock = &SystemClock()});
}

bool ListsContent(const bundle::VerifiedBundle& b, const std::string& content) {
  const std::string digest = HexEncode(bundle::Sha256Of(content));
  for (const auto& [name, target] : b.targets.targets) {
    if (target.sha256 == digest && target.length == content.size()) return true;
  }
  return false;
}

// A hub data folder with a store, keys, the model config template and two registry
// versions: pump 1 (bundled, the champion) and pump 2 (a candidate).
class ReleaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = dir_.File("hub");
    OUTPOST_ASSERT_OK(MakeDirectories(data_dir_));
    ASSERT_NO_FATAL_FAILURE(MakeKeys(dir_.File("keys"), &keys_));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("pump.yaml"), kTemplate));
    OUTPOST_ASSERT_OK_AND_ASSIGN(store_, OpenStore("sqlite:" + dir_.File("hub.db")));
    ASSERT_NO_FATAL_FAILURE(TrainModel(1, &model_v1_));
    ASSERT_NO_FATAL_FAILURE(TrainModel(2, &model_v2_));
    // Version 1 as a file, version 2 as `outpost train`'s folder holding model.json.
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("champion.json"), model_v1_));
    OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("pump-2")));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("pump-2/model.json"), model_v2_));
    OUTPOST_ASSERT_OK(store_->RegisterModel({.name = "pump",
                                             .version = 1,
                                             .state = "bundled",
                                             .artifact_path = dir_.File("champion.json"),
                                             .created_ms = 1000}));
    OUTPOST_ASSERT_OK(store_->RegisterModel({.name = "pump",
                                             .version = 2,
                                             .state = "candidate",
                                             .metrics_json = kMetricsV2,
                                             .lineage_json = kLineageV2,
                                             .artifact_path = dir_.File("pump-2"),
                                             .created_ms = 2000}));
    config_ = RetrainConfig{.model = "pump",
                            .tenant = "acme",
                            .train_config = dir_.File("train.yaml"),
                            .release = {.model_config_path = dir_.File("pump.yaml"),
                                        .keys_dir = keys_.dir,
                                        .sites = {"plant-7"},
                                        .shadow_yaml = kShadowRule}};
  }

  std::string State(int64_t version) {
    Result<std::vector<ModelEntry>> entries = store_->ListModels("pump");
    if (!entries.ok()) return "error: " + entries.status().ToString();
    for (const ModelEntry& e : *entries) {
      if (e.version == version) return e.state;
    }
    return "absent";
  }

  testing::TempDir dir_;
  std::string data_dir_;
  Keys keys_;
  std::unique_ptr<Store> store_;
  std::string model_v1_, model_v2_;
  RetrainConfig config_;
  FakeClock clock_{std::chrono::system_clock::now()};
};

TEST_F(ReleaseTest, ApprovedCandidateShipsAsTheShadowOfTheBundledChampion) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(ReleaseResult r,
                               ApproveAndRelease(*store_, config_, 2, data_dir_, clock_));
  EXPECT_TRUE(r.shadow);
  EXPECT_EQ(r.champion_version, 1);
  EXPECT_EQ(r.bundle_path, JoinPath(data_dir_, "bundles/pump-2.bundle"));
  EXPECT_EQ(r.bundle_version, static_cast<uint64_t>(UnixMillis(clock_.Now())));
  EXPECT_EQ(State(2), "bundled");
  EXPECT_EQ(State(1), "bundled");

  OUTPOST_ASSERT_OK_AND_ASSIGN(bundle::VerifiedBundle b,
                               Verify(r.bundle_path, keys_.root, dir_.File("staging"), "plant-7"));
  EXPECT_EQ(b.targets.version, r.bundle_version);
  EXPECT_EQ(b.targets.sites, std::vector<std::string>{"plant-7"});
  ASSERT_EQ(b.targets.models.size(), 2u);
  ASSERT_EQ(b.descriptors.size(), 2u);
  std::vector<uint64_t> versions;
  for (const bundle::ModelDescriptor& d : b.descriptors) {
    versions.push_back(d.version);
    EXPECT_EQ(d.name, "pump");
    EXPECT_EQ(d.engine, "xgboost");
    ASSERT_EQ(d.inputs.size(), 1u);
    EXPECT_EQ(d.inputs[0].name, "features");
    EXPECT_EQ(d.inputs[0].shape, (std::vector<int64_t>{-1, 8}));
    ASSERT_EQ(d.outputs.size(), 1u);
    EXPECT_EQ(d.outputs[0].name, "fault_probability");
    if (d.version == 2) {
      // The challenger's holdout metrics; a null one is left out.
      EXPECT_EQ(d.metrics, (std::map<std::string, double>{{"accuracy", 0.93}, {"auc", 0.91}}));
      EXPECT_EQ(d.lineage_sha256, HexEncode(bundle::Sha256Of(kLineageV2)));
    } else {
      EXPECT_TRUE(d.metrics.empty());
      EXPECT_EQ(d.lineage_sha256, HexEncode(bundle::Sha256Of("{}")));
    }
  }
  std::sort(versions.begin(), versions.end());
  EXPECT_EQ(versions, (std::vector<uint64_t>{1, 2}));

  // The bundle carries both model files and the release's config.yaml, byte for byte.
  EXPECT_TRUE(ListsContent(b, model_v1_));
  EXPECT_TRUE(ListsContent(b, model_v2_));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string config_yaml,
                               ReadFile(JoinPath(data_dir_, "releases/pump-2/pump/config.yaml")));
  EXPECT_TRUE(ListsContent(b, config_yaml)) << config_yaml;
  std::printf("the release's config.yaml:\n%s", config_yaml.c_str());
  // The edge reads it as: version 1 serves, version 2 is its shadow under the rule.
  OUTPOST_ASSERT_OK_AND_ASSIGN(serve::ModelConfig parsed,
                               serve::ParseModelConfig(config_yaml, "pump"));
  EXPECT_EQ(parsed.version_policy.kind, serve::VersionPolicy::Kind::kSpecific);
  EXPECT_EQ(parsed.version_policy.versions, std::vector<int64_t>{1});
  EXPECT_EQ(parsed.shadow.version, 2);
  EXPECT_EQ(parsed.shadow.promote.min_requests, 200);
  EXPECT_DOUBLE_EQ(parsed.shadow.promote.min_agreement, 0.8);
  EXPECT_EQ(parsed.shadow.promote.min_labelled, 50);
  ASSERT_EQ(parsed.inputs.size(), 1u);

  // A site not named is refused.
  Result<bundle::VerifiedBundle> elsewhere =
      Verify(r.bundle_path, keys_.root, dir_.File("staging-2"), "plant-8");
  EXPECT_FALSE(elsewhere.ok());

  // Once bundled, the version is no longer a candidate.
  Result<ReleaseResult> again = ApproveAndRelease(*store_, config_, 2, data_dir_, clock_);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(again.status().message().starts_with("not_candidate")) << again.status().ToString();
  Result<ReleaseResult> unknown = ApproveAndRelease(*store_, config_, 9, data_dir_, clock_);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(unknown.status().message().starts_with("version_not_found"));
}

TEST_F(ReleaseTest, WithoutAChampionOrAShadowRuleTheVersionShipsAlone) {
  // No shadow rule: version 2 replaces the champion directly.
  RetrainConfig direct = config_;
  direct.release.shadow_yaml.clear();
  OUTPOST_ASSERT_OK_AND_ASSIGN(ReleaseResult r,
                               ApproveAndRelease(*store_, direct, 2, data_dir_, clock_));
  EXPECT_FALSE(r.shadow);
  EXPECT_EQ(r.champion_version, 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(bundle::VerifiedBundle b,
                               Verify(r.bundle_path, keys_.root, dir_.File("staging"), "plant-7"));
  ASSERT_EQ(b.descriptors.size(), 1u);
  EXPECT_EQ(b.descriptors[0].version, 2u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string config_yaml,
                               ReadFile(JoinPath(data_dir_, "releases/pump-2/pump/config.yaml")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(serve::ModelConfig parsed,
                               serve::ParseModelConfig(config_yaml, "pump"));
  EXPECT_EQ(parsed.version_policy.versions, std::vector<int64_t>{2});
  EXPECT_EQ(parsed.shadow.version, 0);

  // A shadow rule but no bundled version of another model: a plain bundle of that version.
  OUTPOST_ASSERT_OK(store_->RegisterModel({.name = "fan",
                                           .version = 1,
                                           .state = "candidate",
                                           .artifact_path = dir_.File("champion.json")}));
  RetrainConfig fan = config_;
  fan.model = "fan";
  clock_.Advance(std::chrono::seconds(5));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ReleaseResult f,
                               ApproveAndRelease(*store_, fan, 1, data_dir_, clock_));
  EXPECT_FALSE(f.shadow);
  EXPECT_EQ(f.bundle_path, JoinPath(data_dir_, "bundles/fan-1.bundle"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      bundle::VerifiedBundle fb,
      Verify(f.bundle_path, keys_.root, dir_.File("staging-f"), "plant-7"));
  ASSERT_EQ(fb.descriptors.size(), 1u);
  EXPECT_EQ(fb.descriptors[0].name, "fan");
}

// A version trained by another hub, whose file is not on this one: the release ships the
// bytes the registry keeps with the entry (hub/STORE.md section 3, models.artifact).
TEST_F(ReleaseTest, AVersionWhoseFileIsOnlyInTheStoreShipsFromTheStore) {
  const std::string model = R"({"learner":{"trained_on":"another hub"}})";
  OUTPOST_ASSERT_OK(store_->RegisterModel({.name = "fan",
                                           .version = 4,
                                           .state = "candidate",
                                           .artifact_path = "/on/another/hub/model.json",
                                           .artifact = model}));
  RetrainConfig fan = config_;
  fan.model = "fan";
  OUTPOST_ASSERT_OK_AND_ASSIGN(ReleaseResult r,
                               ApproveAndRelease(*store_, fan, 4, data_dir_, clock_));
  OUTPOST_ASSERT_OK_AND_ASSIGN(bundle::VerifiedBundle b,
                               Verify(r.bundle_path, keys_.root, dir_.File("staging"), "plant-7"));
  ASSERT_EQ(b.descriptors.size(), 1u);
  EXPECT_EQ(b.descriptors[0].version, 4u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string shipped,
                               ReadFile(JoinPath(data_dir_, "releases/fan-4/fan/4/model.json")));
  EXPECT_EQ(shipped, model);
  // The store keeps the bundle as written, for the other hubs to serve.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string kept, store_->GetReleaseBundle("fan-4.bundle"));
  EXPECT_EQ(kept, ReadFile(r.bundle_path).value_or(""));

  // Without the bytes in the store and without the file, the release fails and says why;
  // the version stays approved.
  OUTPOST_ASSERT_OK(store_->RegisterModel({.name = "fan",
                                           .version = 5,
                                           .state = "candidate",
                                           .artifact_path = "/on/another/hub/model.json"}));
  clock_.Advance(std::chrono::seconds(5));
  Result<ReleaseResult> failed = ApproveAndRelease(*store_, fan, 5, data_dir_, clock_);
  EXPECT_EQ(failed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(failed.status().message().find("no readable model file"), std::string_view::npos)
      << failed.status().ToString();
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto models, store_->ListModels("fan"));
  EXPECT_EQ(models[0].state, "approved");
}

TEST_F(ReleaseTest, RotatedKeysSignAndTheRootChainTravelsWithTheBundle) {
  // The signer rotated every key after the sites were provisioned with root version 1.
  RunResult rotated = RunProgram({Outpost(), "keys", "rotate", "--dir", keys_.dir});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  OUTPOST_ASSERT_OK_AND_ASSIGN(ReleaseResult r,
                               ApproveAndRelease(*store_, config_, 2, data_dir_, clock_));
  // A site that trusts root 1 follows the chain to root 2, whose targets keys signed.
  OUTPOST_ASSERT_OK_AND_ASSIGN(bundle::VerifiedBundle b,
                               Verify(r.bundle_path, keys_.root, dir_.File("staging"), "plant-7"));
  EXPECT_EQ(b.trusted_root.version, 2u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string root2, ReadFile(JoinPath(keys_.dir, "roots/2.json")));
  EXPECT_EQ(b.trusted_root_file, root2);
}

TEST_F(ReleaseTest, AFailedReleaseLeavesTheVersionApprovedAndARetryShipsIt) {
  // A template that sets what the hub sets is refused, at startup and at release.
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("pump.yaml"),
                                        std::string(kTemplate) + "version_policy: {latest: 1}\n"));
  Status invalid = ValidateRetrainConfig(config_);
  EXPECT_EQ(invalid.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(invalid.message().find("version_policy"), std::string_view::npos) << invalid.ToString();
  Result<ReleaseResult> failed = ApproveAndRelease(*store_, config_, 2, data_dir_, clock_);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("version_policy"), std::string_view::npos);
  EXPECT_EQ(State(2), "approved");
  EXPECT_FALSE(PathExists(JoinPath(data_dir_, "bundles/pump-2.bundle")));

  // Fixed, the approved version is released on the next try.
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("pump.yaml"), kTemplate));
  OUTPOST_ASSERT_OK(ValidateRetrainConfig(config_));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ReleaseResult r,
                               ApproveAndRelease(*store_, config_, 2, data_dir_, clock_));
  EXPECT_TRUE(r.shadow);
  EXPECT_EQ(State(2), "bundled");

  // A rejected version is not released.
  OUTPOST_ASSERT_OK(store_->RegisterModel({.name = "pump",
                                           .version = 3,
                                           .state = "rejected",
                                           .artifact_path = dir_.File("champion.json")}));
  Result<ReleaseResult> rejected = ApproveAndRelease(*store_, config_, 3, data_dir_, clock_);
  ASSERT_FALSE(rejected.ok());
  EXPECT_TRUE(rejected.status().message().starts_with("not_candidate"));

  // A shadow rule that names the version, or is not a map, is refused.
  config_.release.shadow_yaml = "{version: 4}";
  EXPECT_EQ(ValidateRetrainConfig(config_).code(), StatusCode::kInvalidArgument);
  config_.release.shadow_yaml = "[1, 2]";
  EXPECT_EQ(ValidateRetrainConfig(config_).code(), StatusCode::kInvalidArgument);
}

TEST(ReleaseFolder, WritesTheLayoutBundleCreateReads) {
  testing::TempDir dir;
  std::string model;
  ASSERT_NO_FATAL_FAILURE(TrainModel(3, &model));
  const std::string digest = HexEncode(bundle::Sha256Of("lineage"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string config, ReleaseConfigYaml(kTemplate, 4, 0, ""));
  // A stale file from an earlier release is gone after the rewrite.
  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("out/pump/3")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("out/pump/3/model.json"), "stale"));
  OUTPOST_ASSERT_OK(
      WriteReleaseFolder(dir.File("out"), "pump", config, {{4, model}}, {{4, digest}}));
  EXPECT_FALSE(PathExists(dir.File("out/pump/3")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string written, ReadFile(dir.File("out/pump/config.yaml")));
  EXPECT_EQ(written, config);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(dir.File("out/pump/4/model.json")));
  EXPECT_EQ(bytes, model);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string d, ReadFile(dir.File("out/pump/4/descriptor.json")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(bundle::ModelDescriptor descriptor, bundle::ParseModelDescriptor(d));
  EXPECT_EQ(descriptor.version, 4u);
  EXPECT_EQ(descriptor.lineage_sha256, digest);
  EXPECT_EQ(descriptor.outputs.size(), 1u);

  // bundle::CreateBundle takes the folder as it is.
  OUTPOST_ASSERT_OK_AND_ASSIGN(bundle::KeyPair key, bundle::GenerateKeyPair());
  OUTPOST_EXPECT_OK(bundle::CreateBundle(dir.File("out"), {key},
                                         {.version = 1, .created = 1, .expires = 4'000'000'000},
                                         dir.File("x.bundle")));

  // Refusals: a digest that is not one, a version missing its digest, a bad model name.
  EXPECT_EQ(WriteReleaseFolder(dir.File("o2"), "pump", config, {{4, model}}, {{4, "abc"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteReleaseFolder(dir.File("o2"), "pump", config, {{4, model}}, {}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      WriteReleaseFolder(dir.File("o2"), "Pump/..", config, {{4, model}}, {{4, digest}}).code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(ReleaseConfigYaml("- a list\n", 1, 0, "").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ReleaseConfigYaml("shadow: {version: 2}\nbackend: xgboost\n", 1, 0, "").status().code(),
            StatusCode::kInvalidArgument);
}

// --- the scheduler and its API ---

// Collects the scheduler's status updates; waits for one that satisfies a condition. The
// bound on the wait only keeps a broken build from hanging; no test asserts a duration.
class Updates {
 public:
  void Add(const RetrainStatus& s) {
    std::lock_guard<std::mutex> lock(mu_);
    all_.push_back(s);
    cv_.notify_all();
  }
  RetrainStatus WaitFor(const std::function<bool(const RetrainStatus&)>& want) {
    std::unique_lock<std::mutex> lock(mu_);
    size_t seen = 0;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    while (true) {
      for (; seen < all_.size(); ++seen) {
        if (want(all_[seen])) return all_[seen];
      }
      if (cv_.wait_until(lock, give_up) == std::cv_status::timeout) {
        ADD_FAILURE() << "no status update met the condition";
        return RetrainStatus{};
      }
    }
  }
  std::function<void(const RetrainStatus&)> Callback() {
    return [this](const RetrainStatus& s) { Add(s); };
  }

 private:
  std::mutex mu_;  // guards all_
  std::condition_variable cv_;
  std::vector<RetrainStatus> all_;
};

HubRequest Request(std::string method, std::string target, std::string tenant = "acme") {
  HubRequest r{.method = std::move(method), .target = std::move(target)};
  if (!tenant.empty()) r.caller = Caller{.kind = Caller::Kind::kOperator, .tenant = tenant};
  return r;
}

bool Has(const HubResponse& r, const std::string& text) {
  return r.body.find(text) != std::string::npos;
}

// An executable script standing in for `outpost` (its first argument is "train").
std::string Script(const testing::TempDir& dir, const std::string& name, const std::string& body) {
  const std::string path = dir.File(name);
  EXPECT_TRUE(WriteFileAtomically(path, "#!/bin/sh\n" + body + "\n", 0755).ok());
  return path;
}

class SchedulerApiTest : public ReleaseTest {
 protected:
  std::unique_ptr<RetrainScheduler> StartScheduler(const std::string& self,
                                                   std::vector<RetrainConfig> models) {
    auto s = RetrainScheduler::Start(*store_, {.self = self,
                                               .store_url = "sqlite:" + dir_.File("hub.db"),
                                               .data_dir = data_dir_,
                                               .models = std::move(models),
                                               .clock = &clock_,
                                               .on_update = updates_.Callback(),
                                               .audit = [this](std::string_view line) {
                                                 audit_lines_.emplace_back(line);
                                                 return Status();
                                               }});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  Updates updates_;
  std::vector<std::string> audit_lines_;  // what the scheduler handed to its audit log
};

TEST_F(SchedulerApiTest, RoutesAuthAndTheRegistry) {
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("train.yaml"), "features: [a]\n"));
  // `fan` signs with a folder that holds no keys: its releases fail.
  OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("no-keys")));
  RetrainConfig fan = config_;
  fan.model = "fan";
  fan.release.keys_dir = dir_.File("no-keys");
  RetrainConfig other = config_;
  other.model = "mixer";
  other.tenant = "globex";
  OUTPOST_ASSERT_OK(store_->RegisterModel({.name = "fan",
                                           .version = 1,
                                           .state = "candidate",
                                           .artifact_path = dir_.File("champion.json")}));
  OUTPOST_ASSERT_OK(store_->RegisterModel({.name = "pump",
                                           .version = 3,
                                           .state = "candidate",
                                           .metrics_json = "not json",
                                           .artifact_path = dir_.File("champion.json")}));
  std::unique_ptr<RetrainScheduler> s =
      StartScheduler(Script(dir_, "never.sh", "exit 9"), {config_, fan, other});
  ASSERT_NE(s, nullptr);

  EXPECT_TRUE(s->Handles(Request("GET", "/api/v1/models/pump/versions")));
  EXPECT_TRUE(s->Handles(Request("GET", "/api/v1/models")));
  EXPECT_FALSE(s->Handles(Request("GET", "/api/v1/sites")));
  EXPECT_FALSE(s->Handles(Request("GET", "/api/v1/modelsx")));

  // Operators only; another tenant's model is not there.
  HubResponse anonymous = s->Handle(Request("GET", "/api/v1/models/pump/versions", ""));
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_TRUE(Has(anonymous, R"("reason":"unauthenticated")"));
  HubResponse foreign = s->Handle(Request("GET", "/api/v1/models/pump/versions", "globex"));
  EXPECT_EQ(foreign.status, 404);
  EXPECT_TRUE(Has(foreign, R"("reason":"model_not_found")"));
  EXPECT_EQ(s->Handle(Request("GET", "/api/v1/models/mixer/versions")).status, 404);
  EXPECT_EQ(s->Handle(Request("GET", "/api/v1/models/nope/retrain")).status, 404);
  HubResponse unknown_route = s->Handle(Request("GET", "/api/v1/models/pump/other"));
  EXPECT_EQ(unknown_route.status, 404);
  EXPECT_TRUE(Has(unknown_route, R"("reason":"not_found")"));

  HubResponse listed = s->Handle(Request("GET", "/api/v1/models"));
  EXPECT_EQ(listed.status, 200);
  EXPECT_TRUE(Has(listed, R"("model":"pump")"));
  EXPECT_TRUE(Has(listed, R"("model":"fan")"));
  EXPECT_FALSE(Has(listed, "mixer"));

  // The registry, newest first, with metrics and lineage as stored (null when not JSON).
  HubResponse versions = s->Handle(Request("GET", "/api/v1/models/pump/versions?x=1"));
  ASSERT_EQ(versions.status, 200) << versions.body;
  EXPECT_TRUE(Has(versions, R"({"model":"pump","versions":[{"version":3,"state":"candidate",)"))
      << versions.body;
  EXPECT_TRUE(Has(versions, R"("metrics":null)"));
  EXPECT_TRUE(
      Has(versions, std::string(R"("metrics":)") + kMetricsV2 + R"(,"lineage":)" + kLineageV2));
  EXPECT_TRUE(Has(versions, R"({"version":1,"state":"bundled","created_ms":1000,)"));

  // Wrong methods.
  HubResponse wrong = s->Handle(Request("POST", "/api/v1/models/pump/versions"));
  EXPECT_EQ(wrong.status, 405);
  EXPECT_TRUE(Has(wrong, R"("reason":"method_not_allowed")"));
  ASSERT_EQ(wrong.headers.size(), 1u);
  EXPECT_EQ(wrong.headers[0].second, "GET");
  EXPECT_EQ(s->Handle(Request("GET", "/api/v1/models/pump/versions/2/approve")).status, 405);
  EXPECT_EQ(s->Handle(Request("DELETE", "/api/v1/models/pump/retrain")).status, 405);

  // Approve: the release, then not a candidate any more.
  HubResponse approved = s->Handle(Request("POST", "/api/v1/models/pump/versions/2/approve"));
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_TRUE(Has(approved, R"({"model":"pump","version":2,"state":"bundled","bundle":")"));
  EXPECT_TRUE(Has(approved, R"("champion_version":1,"shadow":true})")) << approved.body;
  EXPECT_TRUE(PathExists(JoinPath(data_dir_, "bundles/pump-2.bundle")));
  EXPECT_EQ(State(2), "bundled");
  HubResponse twice = s->Handle(Request("POST", "/api/v1/models/pump/versions/2/approve"));
  EXPECT_EQ(twice.status, 409);
  EXPECT_TRUE(Has(twice, R"("reason":"not_candidate")"));
  HubResponse missing = s->Handle(Request("POST", "/api/v1/models/pump/versions/9/approve"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_TRUE(Has(missing, R"("reason":"version_not_found")"));
  EXPECT_EQ(s->Handle(Request("POST", "/api/v1/models/pump/versions/x1/approve")).status, 404);
  EXPECT_EQ(s->Handle(Request("POST", "/api/v1/models/pump/versions/0/approve")).status, 404);

  // Reject: a candidate is rejected; a bundled version is not.
  HubResponse rejected = s->Handle(Request("POST", "/api/v1/models/pump/versions/3/reject"));
  EXPECT_EQ(rejected.status, 200);
  EXPECT_EQ(rejected.body, R"({"model":"pump","version":3,"state":"rejected"})");
  EXPECT_EQ(State(3), "rejected");
  EXPECT_EQ(s->Handle(Request("POST", "/api/v1/models/pump/versions/3/approve")).status, 409);
  HubResponse shipped = s->Handle(Request("POST", "/api/v1/models/pump/versions/2/reject"));
  EXPECT_EQ(shipped.status, 409);
  EXPECT_TRUE(Has(shipped, R"("reason":"not_candidate")"));

  // A release that cannot sign is a 500 that says why; the version stays approved.
  HubResponse unsigned_release =
      s->Handle(Request("POST", "/api/v1/models/fan/versions/1/approve"));
  EXPECT_EQ(unsigned_release.status, 500);
  EXPECT_TRUE(Has(unsigned_release, R"("reason":"release_failed")"));
  EXPECT_TRUE(Has(unsigned_release, "no targets keys")) << unsigned_release.body;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<ModelEntry> fans, store_->ListModels("fan"));
  EXPECT_EQ(fans[0].state, "approved");

  // Limits on what a client sends.
  HubRequest big = Request("POST", "/api/v1/models/pump/retrain");
  big.body.assign(1 << 20, 'x');
  EXPECT_EQ(s->Handle(big).status, 413);
  EXPECT_EQ(s->Handle(Request("GET", "/api/v1/models/" + std::string(5000, 'a'))).status, 414);

  // The retraining status before any job.
  HubResponse status = s->Handle(Request("GET", "/api/v1/models/pump/retrain"));
  EXPECT_EQ(status.status, 200);
  EXPECT_TRUE(Has(status, R"({"model":"pump","running":false,"runs":0,)")) << status.body;
  EXPECT_TRUE(Has(status, R"("last_outcome":null)"));
  s->Stop();
}

// Every POST on a configured model goes to the audit log with the operator's name and its
// outcome, refusals included; reads and requests for unknown models do not.
TEST_F(SchedulerApiTest, EveryRegistryActionIsAuditedWithItsOperatorAndOutcome) {
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("train.yaml"), "features: [a]\n"));
  OUTPOST_ASSERT_OK(store_->RegisterModel({.name = "pump",
                                           .version = 3,
                                           .state = "candidate",
                                           .artifact_path = dir_.File("champion.json"),
                                           .created_ms = 3000}));
  std::unique_ptr<RetrainScheduler> s =
      StartScheduler(Script(dir_, "never.sh", "exit 9"), {config_});
  ASSERT_NE(s, nullptr);
  auto as = [](HubRequest r) {
    r.caller.credential = "alice";
    return r;
  };
  clock_.SetWall(Clock::WallTime(std::chrono::milliseconds(1'700'000'000'000)));
  EXPECT_EQ(s->Handle(as(Request("GET", "/api/v1/models/pump/versions"))).status, 200);
  EXPECT_EQ(s->Handle(as(Request("POST", "/api/v1/models/nope/versions/2/approve"))).status, 404);
  EXPECT_TRUE(audit_lines_.empty()) << audit_lines_[0];

  ASSERT_EQ(s->Handle(as(Request("POST", "/api/v1/models/pump/versions/2/approve"))).status, 200);
  EXPECT_EQ(s->Handle(as(Request("POST", "/api/v1/models/pump/versions/2/approve"))).status, 409);
  EXPECT_EQ(s->Handle(as(Request("POST", "/api/v1/models/pump/versions/3/reject"))).status, 200);
  EXPECT_EQ(s->Handle(as(Request("POST", "/api/v1/models/pump/versions/9/reject"))).status, 404);
  EXPECT_EQ(s->Handle(as(Request("POST", "/api/v1/models/pump/versions/x/reject"))).status, 404);
  EXPECT_EQ(s->Handle(as(Request("POST", "/api/v1/models/pump/retrain"))).status, 202);
  ASSERT_EQ(audit_lines_.size(), 6u);
  const std::string bundle = JoinPath(data_dir_, "bundles/pump-2.bundle");
  EXPECT_EQ(audit_lines_[0],
            R"({"time_ms":1700000000000,"event":"model_approve","tenant":"acme",)"
            R"("operator":"alice","model":"pump","version":2,"status":200,"outcome":"bundled",)"
            R"("detail":")" +
                bundle + R"("})");
  EXPECT_NE(audit_lines_[1].find(R"("version":2,"status":409,"outcome":"not_candidate",)"),
            std::string::npos)
      << audit_lines_[1];
  EXPECT_NE(audit_lines_[2].find(R"("event":"model_reject","tenant":"acme","operator":"alice",)"
                                 R"("model":"pump","version":3,"status":200,"outcome":"rejected",)"
                                 R"("detail":""})"),
            std::string::npos)
      << audit_lines_[2];
  EXPECT_NE(audit_lines_[3].find(R"("version":9,"status":404,"outcome":"version_not_found")"),
            std::string::npos)
      << audit_lines_[3];
  EXPECT_NE(audit_lines_[4].find(R"("version":null,"status":404,"outcome":"version_not_found")"),
            std::string::npos)
      << audit_lines_[4];
  EXPECT_NE(audit_lines_[5].find(R"("event":"model_retrain","tenant":"acme","operator":"alice",)"
                                 R"("model":"pump","version":null,"status":202,)"
                                 R"("outcome":"started")"),
            std::string::npos)
      << audit_lines_[5];
  s->Stop();
}

TEST_F(SchedulerApiTest, OnlyTrustedLabelsCountTowardsTheLabelTrigger) {
  OUTPOST_ASSERT_OK(store_->CreateSite({.site_id = "plant-7", .tenant = "acme", .region = "eu"}));
  // 10 labels from an operator's credential, and 20 that are not trusted: sent anonymously,
  // without the member (an older site, or a policy that dropped it), or not JSON.
  std::vector<HubRecord> feedback;
  for (int i = 0; i < 30; ++i) {
    const std::string id = "r" + std::to_string(i);
    std::string payload = i < 10   ? train::fixtures::FeedbackPayload(id, "1", /*trusted=*/true)
                          : i < 20 ? train::fixtures::FeedbackPayload(id, "1", /*trusted=*/false)
                          : i < 25 ? R"({"v":1,"kind":"feedback","model":"pump","request_id":")" +
                                         id + R"(","label":1})"
                                   : std::string("not json");
    feedback.push_back({.site_id = "plant-7",
                        .node_id = "n2",
                        .stream = "pump",
                        .seq = static_cast<uint64_t>(i + 1),
                        .kind = "feedback",
                        .created_ms = 9000 + i,
                        .payload = std::move(payload)});
  }
  BatchKey key{.site_id = "plant-7",
               .node_id = "n2",
               .stream = "pump",
               .first_seq = 1,
               .last_seq = 30,
               .content_sha256 = HexEncode(bundle::Sha256Of("untrusted labels"))};
  OUTPOST_ASSERT_OK(store_->Ingest(key, feedback, std::nullopt, 1).status());

  RetrainConfig c = config_;
  c.min_new_labels = 11;
  c.check_every = std::chrono::seconds(1);
  // A job would fail at once; none may start.
  std::unique_ptr<RetrainScheduler> s = StartScheduler(Script(dir_, "never.sh", "exit 9"), {c});
  ASSERT_NE(s, nullptr);
  RetrainStatus checked = updates_.WaitFor([](const RetrainStatus& u) { return u.checks >= 2; });
  EXPECT_EQ(checked.labels_now, 10);
  EXPECT_EQ(checked.last_check_error, "");
  EXPECT_FALSE(checked.running);
  EXPECT_EQ(checked.runs, 0);
  EXPECT_EQ(checked.last_started_ms, 0);
  s->Stop();
  EXPECT_FALSE(PathExists(JoinPath(data_dir_, "retrain-pump.json")));
}

TEST_F(SchedulerApiTest, OneJobAtATimeAndStopEndsTheChild) {
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("train.yaml"), "features: [a]\n"));
  // A training run that only ends when it is told to.
  std::unique_ptr<RetrainScheduler> s =
      StartScheduler(Script(dir_, "slow.sh", "echo started; exec sleep 600"), {config_});
  ASSERT_NE(s, nullptr);
  HubResponse started = s->Handle(Request("POST", "/api/v1/models/pump/retrain"));
  EXPECT_EQ(started.status, 202);
  EXPECT_EQ(started.body, R"({"model":"pump","started":true})");
  HubResponse busy = s->Handle(Request("POST", "/api/v1/models/pump/retrain"));
  EXPECT_EQ(busy.status, 409);
  EXPECT_TRUE(Has(busy, R"("reason":"already_running")"));
  HubResponse status = s->Handle(Request("GET", "/api/v1/models/pump/retrain"));
  EXPECT_TRUE(Has(status, R"("running":true)")) << status.body;

  // Stop sends SIGTERM to the child and waits for the job; the interrupted job is not
  // recorded, so a restarted hub runs it again.
  s->Stop();
  OUTPOST_ASSERT_OK_AND_ASSIGN(RetrainStatus after, s->RunStatus("pump"));
  EXPECT_FALSE(after.running);
  EXPECT_EQ(after.runs, 0);
  EXPECT_EQ(after.last_outcome, "failed");
  EXPECT_TRUE(after.last_error.starts_with("stopped: ")) << after.last_error;
  EXPECT_NE(after.last_error.find("exited with 143"), std::string::npos) << after.last_error;
  EXPECT_FALSE(PathExists(JoinPath(data_dir_, "retrain-pump.json")));
  EXPECT_EQ(s->Handle(Request("POST", "/api/v1/models/pump/retrain")).status, 503);
}

TEST_F(SchedulerApiTest, TheTrainerGetsTheStoreUrlInItsEnvironmentNeverOnItsCommandLine) {
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("train.yaml"), "features: [a]\n"));
  // The trainer stand-in writes down its command line as /proc shows it to every user of
  // the machine, and the URL its environment holds.
  const std::string secret_url = "postgresql://hub:s3cret-pw@db.example:5432/outpost";
  const std::string script =
      Script(dir_, "peek.sh",
             "tr '\\0' ' ' < /proc/$$/cmdline > " + dir_.File("cmdline.txt") +
                 "; printf '%s' \"$OUTPOST_STORE_URL\" > " + dir_.File("env.txt") + "; exit 3");
  auto s = RetrainScheduler::Start(*store_, {.self = script,
                                             .store_url = secret_url,
                                             .data_dir = data_dir_,
                                             .models = {config_},
                                             .clock = &clock_,
                                             .on_update = updates_.Callback()});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Handle(Request("POST", "/api/v1/models/pump/retrain")).status, 202);
  RetrainStatus done = updates_.WaitFor([](const RetrainStatus& u) { return u.runs == 1; });
  EXPECT_NE(done.last_error.find("exited with 3"), std::string::npos) << done.last_error;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string cmdline, ReadFile(dir_.File("cmdline.txt")));
  EXPECT_NE(cmdline.find(" train "), std::string::npos) << cmdline;
  EXPECT_NE(cmdline.find("--model pump"), std::string::npos) << cmdline;
  EXPECT_EQ(cmdline.find("s3cret-pw"), std::string::npos) << cmdline;
  EXPECT_EQ(cmdline.find("postgresql:"), std::string::npos) << cmdline;
  EXPECT_EQ(cmdline.find("--store"), std::string::npos) << cmdline;
  EXPECT_EQ(ReadFile(dir_.File("env.txt")).value_or(""), secret_url);
  // Nor does the job's status or its log carry it.
  EXPECT_EQ(done.last_error.find("s3cret-pw"), std::string::npos) << done.last_error;
  (*s)->Stop();
}

TEST_F(SchedulerApiTest, TheScheduleRunsAJobWhenItsTimeHasCome) {
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("train.yaml"), "features: [a]\n"));
  RetrainConfig hourly = config_;
  hourly.every = std::chrono::hours(1);
  hourly.check_every = std::chrono::seconds(1);
  std::unique_ptr<RetrainScheduler> s =
      StartScheduler(Script(dir_, "fail.sh", "echo 'no data for pump' >&2; exit 3"), {hourly});
  ASSERT_NE(s, nullptr);
  const int64_t t0 = UnixMillis(clock_.Now());
  // Never run before: due at once. The job fails, and a failed job counts as a run.
  RetrainStatus first = updates_.WaitFor([](const RetrainStatus& u) { return u.runs == 1; });
  EXPECT_EQ(first.last_outcome, "failed");
  EXPECT_NE(first.last_error.find("exited with 3: no data for pump"), std::string::npos)
      << first.last_error;
  EXPECT_EQ(first.last_run_ms, t0);
  EXPECT_EQ(first.next_due_ms, t0 + 3'600'000);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string state,
                               ReadFile(JoinPath(data_dir_, "retrain-pump.json")));
  EXPECT_EQ(state, R"({"v":1,"model":"pump","last_run_ms":)" + std::to_string(t0) +
                       R"(,"labels_at_last_run":0,"runs":1})" + "\n");
  // Checks while the hour has not passed start nothing.
  const int64_t checks = first.checks;
  RetrainStatus quiet = updates_.WaitFor(
      [&](const RetrainStatus& u) { return u.checks >= checks + 2 && !u.running; });
  EXPECT_EQ(quiet.runs, 1);
  // An hour later (on the hub's clock) the next job runs.
  clock_.Advance(std::chrono::hours(1));
  RetrainStatus second = updates_.WaitFor([](const RetrainStatus& u) { return u.runs == 2; });
  EXPECT_EQ(second.last_run_ms, t0 + 3'600'000);
  s->Stop();
}

// Two hubs on one database (two stores on one SQLite file, each hub with its own data
// folder), each with a scheduler and the scheduler lease: a job runs only in the hub that
// holds the lease; the other counts labels but starts nothing, by its schedule or by an
// operator, until the holder lets go; then it takes over the schedule's state from the store
// and runs the next job when it is due, not the one the first hub ran.
TEST_F(SchedulerApiTest, JobsStartOnlyInTheHubThatHoldsTheSchedulerLease) {
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("train.yaml"), "features: [a]\n"));
  RetrainConfig hourly = config_;
  hourly.every = std::chrono::hours(1);
  hourly.check_every = std::chrono::seconds(1);
  // Each job writes down its --out folder (its hub's data folder) and fails.
  const std::string jobs = dir_.File("jobs.txt");
  const std::string script = Script(dir_, "job.sh", "echo \"$7\" >> " + jobs + "; exit 3");
  auto job_lines = [&] {
    std::vector<std::string> out;
    std::string text = ReadFile(jobs).value_or("");
    for (size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) {
      out.push_back(text.substr(at, nl - at));
    }
    return out;
  };
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto store_b, OpenStore("sqlite:" + dir_.File("hub.db")));
  const SchedulerLease::Options lease_options{.ttl = std::chrono::milliseconds(3000)};
  SchedulerLease::Options options_a = lease_options, options_b = lease_options;
  options_a.holder = "hub-a";
  options_b.holder = "hub-b";
  // Waits for a state; the guard (about two minutes) only keeps a broken build from hanging.
  auto wait_for = [](const std::function<bool()>& done) {
    for (int i = 0; i < 6000 && !done(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  };
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto lease_a, SchedulerLease::Start(*store_, options_a));
  ASSERT_TRUE(wait_for([&] { return lease_a->Held(); }));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto lease_b, SchedulerLease::Start(*store_b, options_b));
  ASSERT_TRUE(wait_for([&] { return lease_b->answers() >= 1; }));
  ASSERT_FALSE(lease_b->Held());

  const std::string data_b = dir_.File("hub-b");
  Updates updates_b;
  auto a = RetrainScheduler::Start(*store_, {.self = script,
                                             .store_url = "sqlite:" + dir_.File("hub.db"),
                                             .data_dir = data_dir_,
                                             .models = {hourly},
                                             .clock = &clock_,
                                             .on_update = updates_.Callback(),
                                             .lease = lease_a.get()});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = RetrainScheduler::Start(*store_b, {.self = script,
                                              .store_url = "sqlite:" + dir_.File("hub.db"),
                                              .data_dir = data_b,
                                              .models = {hourly},
                                              .clock = &clock_,
                                              .on_update = updates_b.Callback(),
                                              .lease = lease_b.get()});
  ASSERT_TRUE(b.ok()) << b.status().ToString();

  // Both find the job due at once (neither has run it); only the holder runs it.
  updates_.WaitFor([](const RetrainStatus& u) { return u.runs == 1; });
  RetrainStatus idle =
      updates_b.WaitFor([](const RetrainStatus& u) { return u.checks >= 3 && !u.running; });
  EXPECT_EQ(idle.runs, 0);
  EXPECT_EQ(idle.last_outcome, "");
  HubResponse refused = (*b)->Handle(Request("POST", "/api/v1/models/pump/retrain"));
  EXPECT_EQ(refused.status, 503);
  EXPECT_TRUE(Has(refused, R"("reason":"not_scheduler")")) << refused.body;
  std::vector<std::string> ran = job_lines();
  ASSERT_EQ(ran.size(), 1u);
  EXPECT_TRUE(ran[0].starts_with(data_dir_ + "/")) << ran[0];

  // The holder lets go (a hub that stops): the other takes the lease over, reads the state
  // the first left in the store and finds the job done for this hour: it runs nothing.
  const int64_t t0 = UnixMillis(clock_.Now());
  lease_a->Stop();
  ASSERT_TRUE(wait_for([&] { return lease_b->Held(); }));
  EXPECT_EQ(lease_b->generation(), 2);
  const int64_t checks_at_takeover = (*b)->RunStatus("pump")->checks;
  RetrainStatus taken = updates_b.WaitFor(
      [&](const RetrainStatus& u) { return u.checks >= checks_at_takeover + 2 && !u.running; });
  EXPECT_EQ(taken.runs, 1);  // the first hub's job, from the store
  EXPECT_EQ(taken.last_run_ms, t0);
  EXPECT_EQ(taken.next_due_ms, t0 + 3'600'000);
  EXPECT_EQ(job_lines().size(), 1u);
  // An hour later the new holder runs the next job; the first starts nothing more.
  clock_.Advance(std::chrono::hours(1));
  RetrainStatus next = updates_b.WaitFor([](const RetrainStatus& u) { return u.runs == 2; });
  EXPECT_EQ(next.last_outcome, "failed");
  EXPECT_EQ((*a)->Handle(Request("POST", "/api/v1/models/pump/retrain")).status, 503);
  ran = job_lines();
  ASSERT_EQ(ran.size(), 2u);
  EXPECT_TRUE(ran[1].starts_with(data_b + "/")) << ran[1];
  EXPECT_EQ((*a)->RunStatus("pump")->runs, 1);
  (*a)->Stop();
  (*b)->Stop();
}

// --- the scheduler with a real `outpost train` ---

constexpr char kTrainYaml[] = R"(
features: [bearing_temp_c, vibration_mm_s, discharge_pressure_bar, motor_current_a,
           speed_rpm, ambient_temp_c, flow_m3h, hours_since_service]
labels: {ok: 0, fault: 1}
original:
  synthetic: {rows: 1000, seed: 1, fault_rate: 0.1}
xgboost: {rounds: 10}
holdout: {fraction: 0.4}
decision: {metric: auc, margin: 0.0}
tenant: acme
)";

// Rows [from, to) of `data` as a site uploads them: hard examples from node n1 and
// operators' feedback labels from node n2, one batch each.
void Upload(Store& store, const train::Dataset& data, int64_t from, int64_t to) {
  std::vector<HubRecord> rows, feedback;
  for (int64_t r = from; r < to; ++r) {
    const std::string id = "plant-7-r" + std::to_string(r);
    const std::string payload = train::fixtures::HardExamplePayload(data, r, id, 1000 + r);
    const uint64_t seq = static_cast<uint64_t>(r + 1);
    rows.push_back({.site_id = "plant-7",
                    .node_id = "n1",
                    .stream = "pump",
                    .seq = seq,
                    .kind = "hard_example",
                    .created_ms = 1000 + r,
                    .payload = payload});
    const char* label = data.labels[static_cast<size_t>(r)] == 1.0f ? "\"fault\"" : "0";
    feedback.push_back({.site_id = "plant-7",
                        .node_id = "n2",
                        .stream = "pump",
                        .seq = seq,
                        .kind = "feedback",
                        .created_ms = 9000 + r,
                        .payload = train::fixtures::FeedbackPayload(id, label)});
  }
  for (auto* batch : {&rows, &feedback}) {
    BatchKey key{.site_id = "plant-7",
                 .node_id = batch->front().node_id,
                 .stream = "pump",
                 .first_seq = static_cast<uint64_t>(from + 1),
                 .last_seq = static_cast<uint64_t>(to),
                 .content_sha256 =
                     HexEncode(bundle::Sha256Of(batch->front().node_id + std::to_string(from)))};
    auto result = store.Ingest(key, *batch, std::nullopt, 1);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->records_stored, static_cast<uint64_t>(to - from));
  }
}

TEST_F(SchedulerApiTest, EnoughNewLabelsTrainReleaseOnceAndSurviveARestart) {
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("train.yaml"), kTrainYaml));
  OUTPOST_ASSERT_OK(store_->CreateSite({.site_id = "plant-7", .tenant = "acme", .region = "eu"}));
  // The champion: trained on the original set alone, shipped in an earlier bundle. The
  // registry's candidate of the fixture is rejected by an operator first.
  OUTPOST_ASSERT_OK(store_->SetModelState("pump", 2, "rejected"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      train::Dataset original,
      train::MakePumpReadings({.rows = 1000, .seed = 1, .fault_rate = 0.1}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto champion, train::TrainXGBoost(original, {.rounds = 10}));
  OUTPOST_ASSERT_OK(champion->Save(dir_.File("champion.json"), train::ModelFormat::kJson));
  // The sites' readings drifted: bearing temperatures run hot.
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset edge,
                               train::MakePumpReadings({.rows = 800,
                                                        .seed = 77,
                                                        .fault_rate = 0.1,
                                                        .shift_feature = "bearing_temp_c",
                                                        .shift_sigmas = 2.5}));
  ASSERT_NO_FATAL_FAILURE(Upload(*store_, edge, 0, 500));

  RetrainConfig c = config_;
  c.min_new_labels = 800;
  c.check_every = std::chrono::seconds(1);
  c.auto_approve = true;
  std::unique_ptr<RetrainScheduler> s = StartScheduler(Outpost(), {c});
  ASSERT_NE(s, nullptr);
  // 500 labels of 800: checked, nothing started.
  RetrainStatus early = updates_.WaitFor([](const RetrainStatus& u) { return u.checks >= 1; });
  EXPECT_EQ(early.labels_now, 500);
  EXPECT_FALSE(early.running);
  EXPECT_EQ(early.runs, 0);

  // The rest arrives: the next check starts `outpost train`, which registers version 3; it
  // beats the champion and, with auto_approve, ships as its shadow.
  ASSERT_NO_FATAL_FAILURE(Upload(*store_, edge, 500, 800));
  RetrainStatus done = updates_.WaitFor([](const RetrainStatus& u) { return u.runs == 1; });
  EXPECT_EQ(done.last_error, "");
  EXPECT_EQ(done.last_outcome, "candidate");
  EXPECT_EQ(done.last_version, 3);
  EXPECT_EQ(done.last_state, "bundled");
  EXPECT_EQ(done.labels_at_last_run, 800);
  EXPECT_EQ(done.last_bundle, JoinPath(data_dir_, "bundles/pump-3.bundle"));
  EXPECT_EQ(State(3), "bundled");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<ModelEntry> entries, store_->ListModels("pump"));
  EXPECT_EQ(
      entries[0].artifact_path,
      JoinPath(data_dir_, "training/pump-" + std::to_string(done.last_started_ms) + "/model.json"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(bundle::VerifiedBundle b, Verify(done.last_bundle, keys_.root,
                                                                dir_.File("staging"), "plant-7"));
  std::vector<uint64_t> versions;
  for (const bundle::ModelDescriptor& d : b.descriptors) versions.push_back(d.version);
  std::sort(versions.begin(), versions.end());
  EXPECT_EQ(versions, (std::vector<uint64_t>{1, 3}));
  HubResponse status = s->Handle(Request("GET", "/api/v1/models/pump/retrain"));
  EXPECT_TRUE(Has(status, R"("runs":1,)")) << status.body;
  EXPECT_TRUE(Has(status, R"("last_outcome":"candidate","last_version":3,"last_state":"bundled")"))
      << status.body;
  s->Stop();
  s.reset();

  // A restarted hub reads its state: the same labels start no second job.
  Updates after_restart;
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<RetrainScheduler> again,
      RetrainScheduler::Start(*store_, {.self = Outpost(),
                                        .store_url = "sqlite:" + dir_.File("hub.db"),
                                        .data_dir = data_dir_,
                                        .models = {c},
                                        .clock = &clock_,
                                        .on_update = after_restart.Callback()}));
  RetrainStatus restarted =
      after_restart.WaitFor([](const RetrainStatus& u) { return u.checks >= 2; });
  EXPECT_FALSE(restarted.running);
  EXPECT_EQ(restarted.runs, 1);
  EXPECT_EQ(restarted.labels_at_last_run, 800);
  EXPECT_EQ(restarted.labels_now, 800);
  EXPECT_EQ(restarted.last_outcome, "");
  again->Stop();
  OUTPOST_ASSERT_OK_AND_ASSIGN(entries, store_->ListModels("pump"));
  EXPECT_EQ(entries[0].version, 3);
}

// `outpost hub serve` with a `retrain:` list: the operator listener answers the registry's
// routes (curl as the operator), an unknown key of the list is refused, SIGTERM exits 0.
TEST_F(ReleaseTest, HubServeRunsTheScheduleFromItsConfig) {
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("train.yaml"), "features: [a]\n"));
  const std::string entry =
      "retrain:\n"
      "  - model: pump\n"
      "    tenant: acme\n"
      "    train_config: " +
      dir_.File("train.yaml") +
      "\n"
      "    min_new_labels: 100\n"
      "    check_every_s: 1\n"
      "    release:\n"
      "      model_config: " +
      dir_.File("pump.yaml") +
      "\n"
      "      keys: " +
      keys_.dir +
      "\n"
      "      sites: [plant-7]\n"
      "      shadow: {promote: {min_requests: 200}}\n";
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("bad.yaml"), entry + "    colour: blue\n"));
  RunResult bad = RunProgram({Outpost(), "hub", "serve", "--config", dir_.File("bad.yaml"),
                              "--data-dir", data_dir_, "--store", "sqlite:" + dir_.File("hub.db"),
                              "--listen", "127.0.0.1:0"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("unknown key \"retrain.colour\""), std::string::npos) << bad.err;

  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("hub.yaml"), entry));
  // The operator's token, made by `outpost hub operator add` and shown once.
  RunResult added = RunProgram({Outpost(), "hub", "operator", "add", "--tokens-file",
                                dir_.File("operators.yaml"), "--name", "ops", "--tenant", "acme"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  const std::string operator_token = added.out.substr(0, added.out.find('\n'));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Subprocess> hub,
      Subprocess::Start({Outpost(), "hub", "serve", "--config", dir_.File("hub.yaml"), "--data-dir",
                         data_dir_, "--store", "sqlite:" + dir_.File("hub.db"), "--listen",
                         "127.0.0.1:0", "--operator-listen", "127.0.0.1:0",
                         "--operator-tokens-file", dir_.File("operators.yaml"), "--log-level",
                         "warning"}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, hub->ReadLine());
  ASSERT_EQ(line.rfind("listening on ", 0), 0u) << line;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string op_line, hub->ReadLine());
  ASSERT_EQ(op_line.rfind("operator listening on http://", 0), 0u) << op_line;
  const std::string url = op_line.substr(std::string("operator listening on ").size());
  auto curl = [&](const std::string& method, const std::string& path, bool token) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "-X", method, "-w", "\n%{http_code}"};
    if (token) {
      argv.push_back("-H");
      argv.push_back("Authorization: Bearer " + operator_token);
    }
    argv.push_back(url + path);
    return RunProgram(argv).out;
  };
  std::string versions = curl("GET", "/api/v1/models/pump/versions", true);
  EXPECT_NE(versions.find(R"({"model":"pump","versions":[{"version":2,"state":"candidate")"),
            std::string::npos)
      << versions;
  EXPECT_TRUE(versions.ends_with("\n200")) << versions;
  std::string approved = curl("POST", "/api/v1/models/pump/versions/2/approve", true);
  EXPECT_NE(approved.find(R"("champion_version":1,"shadow":true})"), std::string::npos) << approved;
  EXPECT_TRUE(PathExists(JoinPath(data_dir_, "bundles/pump-2.bundle")));
  // The approval is in the hub's audit log, with the operator who made it.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string audit, ReadFile(JoinPath(data_dir_, "audit.log")));
  EXPECT_NE(audit.find(R"("event":"model_approve","tenant":"acme","operator":"ops",)"
                       R"("model":"pump","version":2,"status":200,"outcome":"bundled",)"),
            std::string::npos)
      << audit;
  std::string status = curl("GET", "/api/v1/models/pump/retrain", true);
  EXPECT_NE(status.find(R"("min_new_labels":100)"), std::string::npos) << status;
  EXPECT_TRUE(curl("GET", "/api/v1/models/pump/retrain", false).ends_with("\n401"));
  // A token in the URL is refused, even the right one, and starts nothing.
  std::string in_url = curl("POST", "/api/v1/models/pump/retrain?token=" + operator_token, false);
  EXPECT_TRUE(in_url.ends_with("\n400")) << in_url;
  EXPECT_NE(in_url.find(R"("reason":"token_in_url")"), std::string::npos) << in_url;
  EXPECT_NE(curl("GET", "/api/v1/models/pump/retrain", true).find(R"("running":false)"),
            std::string::npos);
  // Everything else still reaches the dashboard (or its 404 where the build has none).
  std::string sites = curl("GET", "/api/v1/sites", true);
  EXPECT_TRUE(sites.ends_with("\n200") || sites.ends_with("\n404")) << sites;
  OUTPOST_ASSERT_OK(hub->Signal(SIGTERM));
  EXPECT_EQ(hub->Wait(), 0);
}

TEST(RetrainScheduler, RefusesBadConfigAndDamagedState) {
  testing::TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto store, OpenStore("sqlite:" + dir.File("hub.db")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("pump.yaml"), kTemplate));
  RetrainConfig c{
      .model = "pump",
      .tenant = "acme",
      .train_config = dir.File("train.yaml"),
      .release = {.model_config_path = dir.File("pump.yaml"), .keys_dir = dir.File("keys")}};
  auto start = [&](std::vector<RetrainConfig> models) {
    return RetrainScheduler::Start(*store, {.self = "/bin/false",
                                            .store_url = "sqlite:" + dir.File("hub.db"),
                                            .data_dir = dir.File("hub"),
                                            .models = std::move(models)});
  };
  RetrainConfig bad_name = c;
  bad_name.model = "Pump!";
  EXPECT_EQ(start({bad_name}).status().code(), StatusCode::kInvalidArgument);
  RetrainConfig fast = c;
  fast.check_every = std::chrono::seconds(0);
  EXPECT_EQ(start({fast}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(start({c, c}).status().code(), StatusCode::kInvalidArgument);
  RetrainConfig no_template = c;
  no_template.release.model_config_path = dir.File("missing.yaml");
  EXPECT_EQ(start({no_template}).status().code(), StatusCode::kNotFound);

  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("hub")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("hub/retrain-pump.json"), "{\"v\":1,"));
  Result<std::unique_ptr<RetrainScheduler>> damaged = start({c});
  EXPECT_EQ(damaged.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(damaged.status().message().find("retrain-pump.json"), std::string_view::npos);
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("hub/retrain-pump.json"),
                                        R"({"v":2,"last_run_ms":1,"labels_at_last_run":1})"));
  EXPECT_EQ(start({c}).status().code(), StatusCode::kDataLoss);
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      dir.File("hub/retrain-pump.json"),
      R"({"v":1,"model":"pump","last_run_ms":5,"labels_at_last_run":7,"future":true})"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto ok, start({c}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(RetrainStatus s, ok->RunStatus("pump"));
  EXPECT_EQ(s.labels_at_last_run, 7);
  EXPECT_EQ(s.last_run_ms, 5);
  EXPECT_EQ(ok->RunStatus("fan").status().code(), StatusCode::kNotFound);
}

// The label count behind the label trigger, over feedback records held in memory: the store
// as UpdateLabelTally sees it, with a log of the ids each read started after.
class FeedbackRecords {
 public:
  void Add(int64_t id, bool trusted) {
    records_.push_back({.payload = trusted ? R"({"trusted":true})" : R"({"x":1})", .id = id});
    std::sort(records_.begin(), records_.end(),
              [](const HubRecord& a, const HubRecord& b) { return a.id < b.id; });
  }
  retrain_internal::FeedbackPageAfter PageAfter(size_t page_size) {
    return [this, page_size](int64_t after_id) -> Result<std::vector<HubRecord>> {
      reads_after_.push_back(after_id);
      if (fail_reads_) return UnavailableError("store down");
      std::vector<HubRecord> page;
      for (const HubRecord& r : records_) {
        if (r.id > after_id && page.size() < page_size) page.push_back(r);
      }
      return page;
    };
  }
  retrain_internal::FeedbackTotal Total() {
    return [this]() -> Result<int64_t> {
      if (fail_total_) return InvalidArgumentError("more than 100000 buckets");
      return static_cast<int64_t>(records_.size());
    };
  }
  std::vector<int64_t> TakeReads() { return std::exchange(reads_after_, {}); }
  bool fail_reads_ = false;
  bool fail_total_ = false;

 private:
  std::vector<HubRecord> records_;
  std::vector<int64_t> reads_after_;
};

TEST(LabelTally, ReadsOnlyTheRecordsAfterTheLastOneRead) {
  FeedbackRecords store;
  for (int64_t id = 1; id <= 5; ++id) store.Add(id, id != 2);
  retrain_internal::LabelTally tally;
  auto update = [&] {
    return retrain_internal::UpdateLabelTally(tally, 2, store.PageAfter(2), store.Total());
  };
  OUTPOST_ASSERT_OK_AND_ASSIGN(int64_t labels, update());
  EXPECT_EQ(labels, 4);
  EXPECT_EQ(store.TakeReads(), (std::vector<int64_t>{0, 2, 4}));
  // Nothing new: one read after the last id, no payload read again.
  OUTPOST_ASSERT_OK_AND_ASSIGN(labels, update());
  EXPECT_EQ(labels, 4);
  EXPECT_EQ(store.TakeReads(), (std::vector<int64_t>{5}));
  store.Add(6, true);
  store.Add(7, false);
  store.Add(9, true);
  OUTPOST_ASSERT_OK_AND_ASSIGN(labels, update());
  EXPECT_EQ(labels, 6);
  EXPECT_EQ(store.TakeReads(), (std::vector<int64_t>{5, 7}));
  EXPECT_EQ(tally.after_id, 9);
  EXPECT_EQ(tally.seen, 8);
}

TEST(LabelTally, ARecordCommittedBehindTheLastOneReadIsCountedByAFullScan) {
  FeedbackRecords store;
  for (int64_t id = 1; id <= 4; ++id) store.Add(id, true);
  store.Add(6, true);
  retrain_internal::LabelTally tally;
  auto update = [&] {
    return retrain_internal::UpdateLabelTally(tally, 10, store.PageAfter(10), store.Total());
  };
  OUTPOST_ASSERT_OK_AND_ASSIGN(int64_t labels, update());
  EXPECT_EQ(labels, 5);
  store.TakeReads();
  // Id 5 commits after id 6 was read (PostgreSQL's identities allow it): the reads after 6
  // cannot see it, the total can; the count starts again from zero and finds it.
  store.Add(5, true);
  OUTPOST_ASSERT_OK_AND_ASSIGN(labels, update());
  EXPECT_EQ(labels, 6);
  EXPECT_EQ(store.TakeReads(), (std::vector<int64_t>{6, 6, 6, 0}));
  EXPECT_EQ(tally.seen, 6);
  // A store that does not answer the total is scanned in full each time, as before.
  store.fail_total_ = true;
  OUTPOST_ASSERT_OK_AND_ASSIGN(labels, update());
  EXPECT_EQ(labels, 6);
  EXPECT_EQ(store.TakeReads(), (std::vector<int64_t>{6, 0}));
}

TEST(LabelTally, AFailedReadIsTheErrorAndTheNextUpdateGoesOn) {
  FeedbackRecords store;
  for (int64_t id = 1; id <= 3; ++id) store.Add(id, true);
  retrain_internal::LabelTally tally;
  auto update = [&] {
    return retrain_internal::UpdateLabelTally(tally, 10, store.PageAfter(10), store.Total());
  };
  store.fail_reads_ = true;
  EXPECT_EQ(update().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(tally.seen, 0);
  store.fail_reads_ = false;
  OUTPOST_ASSERT_OK_AND_ASSIGN(int64_t labels, update());
  EXPECT_EQ(labels, 3);
}

}  // namespace
}  // namespace outpost::hub
