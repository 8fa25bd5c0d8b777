// Live model updates: Load/Unload/Refresh of ModelRepository, the repository extension over
// the handler, and the inotify watcher. Models are fakes loaded from real folders by a test
// loader, so that a test decides what each version does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <latch>
#include <mutex>
#include <thread>

#include "base/file.h"
#include "base/testing/test_util.h"
#include "serve/handler.h"
#include "serve/repository.h"
#include "serve/repository_watcher.h"

namespace outpost::serve {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

// y = x + tag for FP32 "x" of shape [-1]. When x[0] == 999 the run first counts down
// `entered` and waits on `release` (a zero input, as in warm-up, never blocks). When `fail_zero`
// it fails on an all-zero input.
class TagModel final : public engine::Model {
 public:
  TagModel(float tag, std::latch* entered, std::latch* release, bool fail_zero)
      : tag_(tag), entered_(entered), release_(release), fail_zero_(fail_zero) {
    signature_.inputs.push_back({.name = "x", .type = engine::DataType::kFp32, .shape = {-1}});
    signature_.outputs.push_back({.name = "y", .type = engine::DataType::kFp32, .shape = {-1}});
  }
  const engine::Signature& signature() const override { return signature_; }
  std::string_view platform() const override { return "fake_tag"; }
  Status Run(std::span<const engine::Tensor> inputs,
             std::vector<engine::Tensor>& outputs) const override {
    auto x = inputs[0].values<float>();
    if (fail_zero_ && !x.empty() && x[0] == 0) return InternalError("cannot score zeros");
    if (!x.empty() && x[0] == 999 && entered_ != nullptr) {
      entered_->count_down();
      release_->wait();
    }
    outputs.clear();
    outputs.emplace_back(engine::DataType::kFp32, inputs[0].shape());
    auto y = outputs[0].values<float>();
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] + tag_;
    return Status();
  }

 private:
  engine::Signature signature_;
  float tag_;
  std::latch* entered_;
  std::latch* release_;
  bool fail_zero_;
};

class LiveUpdateTest : public ::testing::Test {
 protected:
  // A version folder holds model.fake: "tag <n>", "gate <n>" (blocks on 999), "warmfail" or
  // "broken".
  Result<std::unique_ptr<engine::Model>> LoadFake(const ModelConfig&, const std::string& dir) {
    loads_.fetch_add(1);
    OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(JoinPath(dir, "model.fake"), 100));
    float tag = 0;
    if (std::sscanf(text.c_str(), "tag %f", &tag) == 1) {
      return std::make_unique<TagModel>(tag, nullptr, nullptr, false);
    }
    if (std::sscanf(text.c_str(), "gate %f", &tag) == 1) {
      return std::make_unique<TagModel>(tag, &entered_, &release_, false);
    }
    if (text == "warmfail") return std::make_unique<TagModel>(0, nullptr, nullptr, true);
    return InvalidArgumentError("model.fake says \"" + text + "\"");
  }

  RepositoryOptions Options() {
    return {.root = dir_.path(), .loader = [this](const ModelConfig& c, const std::string& d) {
              return LoadFake(c, d);
            }};
  }

  void WriteConfig(const std::string& model, const std::string& config = "backend: onnx\n") {
    OUTPOST_ASSERT_OK(MakeDirectories(JoinPath(dir_.path(), model)));
    OUTPOST_ASSERT_OK(
        WriteFileAtomically(JoinPath(JoinPath(dir_.path(), model), "config.yaml"), config));
  }
  // Writes <model>/<version>/model.fake under a temporary name, then renames it into place.
  void WriteVersion(const std::string& model, int64_t version, const std::string& contents) {
    const std::string model_dir = JoinPath(dir_.path(), model);
    const std::string staging = JoinPath(model_dir, ".staging-" + std::to_string(version));
    OUTPOST_ASSERT_OK(MakeDirectories(staging));
    OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(staging, "model.fake"), contents));
    ASSERT_EQ(std::rename(staging.c_str(), JoinPath(model_dir, std::to_string(version)).c_str()),
              0);
  }

  static std::string InferBody(float x) {
    return R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[)" + std::to_string(x) +
           "]}]}";
  }
  static HttpResponse Call(const Handler& handler, std::string_view method, std::string_view target,
                           std::string body = "") {
    HttpRequest request{.method = method, .target = target, .body = std::move(body)};
    HttpResponse response;
    handler.Handle(request, response);
    return response;
  }

  TempDir dir_;
  std::atomic<int> loads_{0};
  std::latch entered_{1};
  std::latch release_{1};
};

TEST_F(LiveUpdateTest, NewVersionIsSwappedInWhileARequestOnTheOldOneFinishesOnIt) {
  WriteConfig("m");
  WriteVersion("m", 1, "gate 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  Handler handler(*repo, {});

  HttpResponse in_flight;
  std::thread request(
      [&] { in_flight = Call(handler, "POST", "/v2/models/m/infer", InferBody(999)); });
  entered_.wait();  // the request runs on version 1 and holds its handle

  WriteVersion("m", 2, "tag 2");
  OUTPOST_EXPECT_OK(repo->Load("m"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle now, repo->Find("m", std::nullopt));
  EXPECT_EQ(now.version, 2);
  // The default policy (latest 1) no longer serves version 1 to new requests.
  EXPECT_EQ(repo->Find("m", 1).status().code(), StatusCode::kNotFound);
  HttpResponse fresh = Call(handler, "POST", "/v2/models/m/infer", InferBody(5));
  EXPECT_EQ(fresh.status, 200);
  EXPECT_THAT(fresh.body, HasSubstr(R"("model_version":"2")"));
  EXPECT_THAT(fresh.body, HasSubstr(R"("data":[7])"));

  release_.count_down();
  request.join();
  EXPECT_EQ(in_flight.status, 200) << in_flight.body;
  EXPECT_THAT(in_flight.body, HasSubstr(R"("model_version":"1")"));
  EXPECT_THAT(in_flight.body, HasSubstr(R"("data":[1000])"));
}

TEST_F(LiveUpdateTest, VersionThatFailsToLoadLeavesTheOldOneServingAndSaysWhy) {
  WriteConfig("m");
  WriteVersion("m", 1, "tag 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  WriteVersion("m", 2, "broken");

  Status load = repo->Load("m");
  EXPECT_EQ(load.code(), StatusCode::kUnavailable);
  EXPECT_THAT(load.message(), HasSubstr("model.fake says \"broken\""));
  EXPECT_THAT(load.message(), HasSubstr("still serving version 1"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle h, repo->Find("m", std::nullopt));
  EXPECT_EQ(h.version, 1);
  EXPECT_TRUE(repo->IsReady());  // still serving: not taken out of rotation

  std::vector<IndexEntry> index = repo->Index();
  ASSERT_EQ(index.size(), 2u);
  EXPECT_EQ(index[0].version, 1);
  EXPECT_EQ(index[0].state, VersionState::kReady);
  EXPECT_EQ(index[1].version, 2);
  EXPECT_EQ(index[1].state, VersionState::kUnavailable);
  EXPECT_THAT(index[1].reason, HasSubstr("broken"));

  // Fixed on disk: the next load serves it.
  WriteVersion("m", 3, "tag 3");
  OUTPOST_EXPECT_OK(repo->Load("m"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle h3, repo->Find("m", std::nullopt));
  EXPECT_EQ(h3.version, 3);
}

TEST_F(LiveUpdateTest, VersionWhoseWarmUpRunFailsIsNotServed) {
  WriteConfig("m");
  WriteVersion("m", 1, "tag 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  WriteVersion("m", 2, "warmfail");
  Status load = repo->Load("m");
  EXPECT_EQ(load.code(), StatusCode::kUnavailable);
  EXPECT_THAT(load.message(), HasSubstr("warm-up run on a zero input"));
  EXPECT_THAT(load.message(), HasSubstr("cannot score zeros"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle h, repo->Find("m", std::nullopt));
  EXPECT_EQ(h.version, 1);
}

TEST_F(LiveUpdateTest, InsightRulesAreParsedPerVersionAndABadRuleFailsOnlyTheNewVersion) {
  WriteConfig("m",
              "backend: onnx\n"
              "insight:\n"
              "  rules:\n"
              "    - {name: high, kind: anomaly, score: value, above: 5}\n");
  WriteVersion("m", 1, "tag 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle h1, repo->Find("m", std::nullopt));
  ASSERT_NE(h1.insight_rules, nullptr);
  ASSERT_NE(*h1.insight_rules, nullptr);
  ASSERT_EQ((*h1.insight_rules)->anomalies.size(), 1u);
  EXPECT_EQ((*h1.insight_rules)->anomalies[0].name, "high");

  // A malformed rule: version 2 does not load, version 1 keeps serving with its own rules.
  WriteConfig("m",
              "backend: onnx\n"
              "insight:\n"
              "  rules:\n"
              "    - {name: high, kind: anomaly, score: value, abve: 5}\n");
  WriteVersion("m", 2, "tag 2");
  Status load = repo->Load("m");
  EXPECT_EQ(load.code(), StatusCode::kUnavailable);
  EXPECT_THAT(load.message(), HasSubstr("insight rules"));
  EXPECT_THAT(load.message(), HasSubstr("abve"));
  EXPECT_THAT(load.message(), HasSubstr("still serving version 1"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle kept, repo->Find("m", std::nullopt));
  EXPECT_EQ(kept.version, 1);
  ASSERT_NE(kept.insight_rules, nullptr);
  EXPECT_EQ(*kept.insight_rules, *h1.insight_rules);

  // Rules that parse but do not fit the model's signature (no input "pressure") fail too.
  WriteConfig("m",
              "backend: onnx\n"
              "insight:\n"
              "  input: pressure\n");
  load = repo->Load("m");
  EXPECT_EQ(load.code(), StatusCode::kUnavailable);
  EXPECT_THAT(load.message(), HasSubstr("insight rules do not fit the model"));
  EXPECT_THAT(load.message(), HasSubstr("pressure"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(kept, repo->Find("m", std::nullopt));
  EXPECT_EQ(kept.version, 1);

  // Fixed: version 2 serves with the new rules.
  WriteConfig("m",
              "backend: onnx\n"
              "insight:\n"
              "  rules:\n"
              "    - {name: low, kind: anomaly, score: value, below: 1}\n");
  OUTPOST_EXPECT_OK(repo->Load("m"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle h2, repo->Find("m", std::nullopt));
  EXPECT_EQ(h2.version, 2);
  ASSERT_NE(h2.insight_rules, nullptr);
  ASSERT_NE(*h2.insight_rules, nullptr);
  ASSERT_EQ((*h2.insight_rules)->anomalies.size(), 1u);
  EXPECT_EQ((*h2.insight_rules)->anomalies[0].name, "low");
}

// Receives scored batches, as the insight evaluator does.
class RecordingSink final : public insight::InsightSink {
 public:
  void OnScored(const insight::ScoredBatch& batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    rules_.push_back(batch.rules);
  }
  std::vector<std::shared_ptr<const insight::RuleSet>> rules() {
    std::lock_guard<std::mutex> lock(mu_);
    return rules_;
  }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<const insight::RuleSet>> rules_;
};

TEST_F(LiveUpdateTest, ScoredBatchesCarryTheRulesOfTheVersionThatScoredThem) {
  WriteConfig("m", "backend: onnx\n");  // no section: the default rules (aggregates)
  WriteVersion("m", 1, "tag 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  RecordingSink sink;
  Handler handler(*repo, {.insight = &sink});
  EXPECT_EQ(Call(handler, "POST", "/v2/models/m/infer", InferBody(1)).status, 200);
  WriteConfig("m",
              "backend: onnx\n"
              "insight:\n"
              "  rules:\n"
              "    - {name: high, kind: anomaly, score: value, above: 5}\n");
  WriteVersion("m", 2, "tag 2");
  OUTPOST_ASSERT_OK(repo->Load("m"));
  EXPECT_EQ(Call(handler, "POST", "/v2/models/m/infer", InferBody(1)).status, 200);
  std::vector<std::shared_ptr<const insight::RuleSet>> seen = sink.rules();
  ASSERT_EQ(seen.size(), 2u);
  ASSERT_NE(seen[0], nullptr);
  EXPECT_TRUE(seen[0]->anomalies.empty());
  EXPECT_TRUE(seen[0]->aggregate.enabled);
  ASSERT_NE(seen[1], nullptr);
  ASSERT_EQ(seen[1]->anomalies.size(), 1u);
  EXPECT_EQ(seen[1]->anomalies[0].name, "high");
}

TEST_F(LiveUpdateTest, UnreadableConfigOnReloadKeepsTheServingVersions) {
  WriteConfig("m");
  WriteVersion("m", 1, "tag 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  WriteConfig("m", "backend: [unclosed\n");
  Status load = repo->Load("m");
  EXPECT_EQ(load.code(), StatusCode::kUnavailable);
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle h, repo->Find("m", std::nullopt));
  EXPECT_EQ(h.version, 1);
  std::vector<IndexEntry> index = repo->Index();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].state, VersionState::kReady);
  EXPECT_THAT(index[0].reason, HasSubstr("the last reload failed"));
}

TEST_F(LiveUpdateTest, UnchangedVersionsAreNotLoadedAgain) {
  WriteConfig("m", "backend: onnx\nversion_policy: {all: true}\n");
  WriteVersion("m", 1, "tag 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle before, repo->Find("m", 1));
  const int loads = loads_.load();
  WriteVersion("m", 2, "tag 2");
  OUTPOST_EXPECT_OK(repo->Load("m"));
  EXPECT_EQ(loads_.load(), loads + 1);  // only version 2
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle after, repo->Find("m", 1));
  EXPECT_EQ(after.model, before.model);
  EXPECT_EQ(after.stats, before.stats);
}

TEST_F(LiveUpdateTest, UnloadStopsServingAndLoadBringsItBack) {
  WriteConfig("m");
  WriteVersion("m", 1, "tag 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle held, repo->Find("m", std::nullopt));
  OUTPOST_EXPECT_OK(repo->Unload("m"));
  EXPECT_EQ(repo->Find("m", std::nullopt).status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(repo->IsReady());  // unloaded on purpose is not a failure
  // The handle taken before still runs.
  std::vector<engine::Tensor> in, out;
  in.emplace_back(engine::DataType::kFp32, engine::Shape{1});
  OUTPOST_EXPECT_OK(held.model->Run(in, out));
  // The watcher's refresh does not bring back a model unloaded on request.
  OUTPOST_EXPECT_OK(repo->Refresh("m"));
  EXPECT_EQ(repo->Find("m", std::nullopt).status().code(), StatusCode::kUnavailable);
  OUTPOST_EXPECT_OK(repo->Load("m"));
  EXPECT_TRUE(repo->Find("m", std::nullopt).ok());
  EXPECT_EQ(repo->Unload("nope").code(), StatusCode::kNotFound);
  EXPECT_EQ(repo->Load("nope").code(), StatusCode::kNotFound);
  EXPECT_EQ(repo->Load("../m").code(), StatusCode::kNotFound);
}

TEST_F(LiveUpdateTest, RefreshRemovesAModelWhoseFolderIsGone) {
  WriteConfig("m");
  WriteVersion("m", 1, "tag 1");
  WriteConfig("n");
  WriteVersion("n", 1, "tag 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  testing::RemoveTree(JoinPath(dir_.path(), "n"));
  OUTPOST_EXPECT_OK(repo->Rescan());
  EXPECT_EQ(repo->Find("n", std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(repo->Find("m", std::nullopt).ok());
}

TEST_F(LiveUpdateTest, RepositoryExtensionIndexesLoadsAndUnloadsOverTheHandler) {
  WriteConfig("m");
  WriteVersion("m", 1, "tag 1");
  WriteConfig("b");
  WriteVersion("b", 1, "broken");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  Handler handler(*repo, {.allow_model_control = true});

  HttpResponse index = Call(handler, "POST", "/v2/repository/index", "{}");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(
      index.body,
      R"([{"name":"b","version":"1","state":"UNAVAILABLE","reason":"INVALID_ARGUMENT: )"
      R"(model.fake says \"broken\""},{"name":"m","version":"1","state":"READY","reason":""}])");

  HttpResponse unload = Call(handler, "POST", "/v2/repository/models/m/unload");
  EXPECT_EQ(unload.status, 200);
  EXPECT_EQ(Call(handler, "POST", "/v2/models/m/infer", InferBody(1)).status, 503);
  EXPECT_THAT(Call(handler, "POST", "/v2/repository/index").body,
              HasSubstr(R"({"name":"m","state":"UNAVAILABLE","reason":"unloaded"})"));

  WriteVersion("m", 2, "tag 2");
  HttpResponse load = Call(handler, "POST", "/v2/repository/models/m/load");
  EXPECT_EQ(load.status, 200);
  EXPECT_EQ(load.body, "{}");
  HttpResponse infer = Call(handler, "POST", "/v2/models/m/infer", InferBody(1));
  EXPECT_EQ(infer.status, 200);
  EXPECT_THAT(infer.body, HasSubstr(R"("model_version":"2")"));

  HttpResponse failed = Call(handler, "POST", "/v2/repository/models/b/load");
  EXPECT_EQ(failed.status, 503);
  EXPECT_THAT(failed.body, HasSubstr("broken"));
  EXPECT_EQ(Call(handler, "POST", "/v2/repository/models/zz/load").status, 404);
  EXPECT_EQ(Call(handler, "POST", "/v2/repository/models/zz/unload").status, 404);
  EXPECT_EQ(Call(handler, "POST", "/v2/repository/models/m/reload").status, 404);
  EXPECT_EQ(Call(handler, "POST", "/v2/repository/models//load").status, 404);
  HttpResponse wrong = Call(handler, "GET", "/v2/repository/models/m/load");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(Call(handler, "GET", "/v2/repository/index").status, 405);
}

TEST_F(LiveUpdateTest, LoadAndUnloadAreRefusedUnlessModelControlIsAllowed) {
  WriteConfig("m");
  WriteVersion("m", 1, "tag 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  Handler handler(*repo, {});  // model control off: the default
  const std::string full_index = Call(handler, "POST", "/v2/repository/index").body;
  ASSERT_THAT(full_index, HasSubstr(R"("name":"m","version":"1","state":"READY")"));

  // Refused before the body or the model name is looked at, for known and unknown models.
  WriteVersion("m", 2, "tag 2");
  const int loads = loads_.load();
  for (const char* path : {"/v2/repository/models/m/unload", "/v2/repository/models/m/load",
                           "/v2/repository/models/zz/load"}) {
    SCOPED_TRACE(path);
    for (const char* body : {"", "{}", "not json"}) {
      HttpResponse refused = Call(handler, "POST", path, body);
      EXPECT_EQ(refused.status, 403);
      EXPECT_THAT(refused.body, HasSubstr(R"("reason":"model_control_disabled")"));
    }
  }
  // Nothing changed: version 1 still answers and the index is as it was.
  HttpResponse infer = Call(handler, "POST", "/v2/models/m/infer", InferBody(1));
  EXPECT_EQ(infer.status, 200);
  EXPECT_THAT(infer.body, HasSubstr(R"("model_version":"1")"));
  EXPECT_EQ(Call(handler, "POST", "/v2/repository/index").body, full_index);
  EXPECT_EQ(loads_.load(), loads);
}

TEST_F(LiveUpdateTest, RepositoryBodiesAreJsonObjectsOrRefusedWithNothingChanged) {
  WriteConfig("m");
  WriteVersion("m", 1, "tag 1");
  WriteConfig("b");
  WriteVersion("b", 1, "broken");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  Handler handler(*repo, {.allow_model_control = true});
  const std::string full_index = Call(handler, "POST", "/v2/repository/index").body;
  ASSERT_THAT(full_index, HasSubstr(R"("name":"b")"));

  // The protocol's only index field: "ready" lists the ready models alone.
  HttpResponse ready = Call(handler, "POST", "/v2/repository/index", R"({"ready":true})");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, R"([{"name":"m","version":"1","state":"READY","reason":""}])");
  EXPECT_EQ(Call(handler, "POST", "/v2/repository/index", R"({"ready":false})").body, full_index);
  EXPECT_EQ(Call(handler, "POST", "/v2/repository/index", R"({"other":1})").body, full_index);

  // The body the fuzzer found (a malformed JSON after the target), and its relatives.
  for (
      const char* body :
      {R"({"inputs":[{"name":"INPUT5","datatype":"FP,3,4]},{"name":"INPUT1","datatype3,-2,30.842235e38],1.1,1,1]}]})",
       "{", "[]", "null", "\"ready\"", R"({"ready":"yes"})", R"({"ready":1})",
       R"({"ready":true,"ready":false})", "{} {}"}) {
    SCOPED_TRACE(body);
    HttpResponse refused = Call(handler, "POST", "/v2/repository/index", body);
    EXPECT_EQ(refused.status, 400);
    EXPECT_THAT(refused.body, HasSubstr(R"("error":)"));
  }

  // Load and unload take an object too; a parameter Outpost would ignore is refused, and the
  // model keeps serving.
  for (const char* body :
       {"not json", "[1]", R"({"parameters":[]})", R"({"parameters":{"config":"{}"}})"}) {
    SCOPED_TRACE(body);
    EXPECT_EQ(Call(handler, "POST", "/v2/repository/models/m/unload", body).status, 400);
    EXPECT_EQ(Call(handler, "POST", "/v2/repository/models/m/load", body).status, 400);
    EXPECT_EQ(Call(handler, "POST", "/v2/models/m/infer", InferBody(1)).status, 200);
  }
  EXPECT_EQ(Call(handler, "POST", "/v2/repository/index").body, full_index);
  EXPECT_EQ(Call(handler, "POST", "/v2/repository/models/m/unload", R"({"parameters":{}})").status,
            200);
  EXPECT_EQ(Call(handler, "POST", "/v2/models/m/infer", InferBody(1)).status, 503);
}

TEST_F(LiveUpdateTest, UpdatesUnderContinuousLoadFailNoRequestAndMixNoVersions) {
  WriteConfig("m");
  WriteVersion("m", 1, "tag 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  Handler handler(*repo, {});
  constexpr int kClients = 4;
  constexpr int kUpdates = 6;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, mixed{0}, answered{0};
  std::latch started(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      bool first = true;
      for (int i = 0; !stop.load(); ++i) {
        const float x = static_cast<float>(c * 1000 + i % 1000);
        HttpResponse r = Call(handler, "POST", "/v2/models/m/infer", InferBody(x));
        if (r.status != 200) {
          failures.fetch_add(1);
        } else {
          // Version v answers x + v: the output must match the version that answered.
          int version = 0;
          float y = 0;
          const size_t v_at = r.body.find(R"("model_version":")");
          const size_t d_at = r.body.find(R"("data":[)");
          if (v_at == std::string::npos || d_at == std::string::npos ||
              std::sscanf(r.body.c_str() + v_at + 17, "%d", &version) != 1 ||
              std::sscanf(r.body.c_str() + d_at + 8, "%f", &y) != 1 ||
              y != x + static_cast<float>(version)) {
            mixed.fetch_add(1);
          }
          answered.fetch_add(1);
        }
        if (first) {
          first = false;
          started.count_down();
        }
      }
    });
  }
  started.wait();
  for (int v = 2; v <= kUpdates + 1; ++v) {
    WriteVersion("m", v, "tag " + std::to_string(v));
    OUTPOST_EXPECT_OK(repo->Load("m"));
  }
  stop.store(true);
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mixed.load(), 0);
  EXPECT_GE(answered.load(), kClients);
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle h, repo->Find("m", std::nullopt));
  EXPECT_EQ(h.version, kUpdates + 1);
}

// Collects the watcher's reloads so that a test can wait for a condition on them.
class ReloadLog {
 public:
  void Add(std::string_view model, const Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    reloads_.emplace_back(std::string(model), status);
    cv_.notify_all();
  }
  // Waits (up to a generous minute, so that a broken watcher fails instead of hanging) until
  // `done` holds; re-checked after every reload.
  bool WaitFor(const std::function<bool()>& done) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), done);
  }

 private:
  std::mutex mu_;  // guards reloads_
  std::condition_variable cv_;
  std::vector<std::pair<std::string, Status>> reloads_;
};

TEST_F(LiveUpdateTest, WatcherLoadsAVersionFolderRenamedIntoPlace) {
  WriteConfig("m");
  WriteVersion("m", 1, "tag 1");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto repo, ModelRepository::Open(Options()));
  ReloadLog log;
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto watcher,
      RepositoryWatcher::Start(
          *repo, {.settle = std::chrono::milliseconds(20),
                  .on_reload = [&log](std::string_view m, const Status& s) { log.Add(m, s); }}));
  WriteVersion("m", 2, "tag 2");
  EXPECT_TRUE(log.WaitFor([&] {
    Result<ModelHandle> h = repo->Find("m", std::nullopt);
    return h.ok() && h->version == 2;
  }));

  // A whole new model folder, renamed into the root.
  const std::string staging = JoinPath(dir_.path(), ".new");
  OUTPOST_ASSERT_OK(MakeDirectories(JoinPath(staging, "1")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(staging, "config.yaml"), "backend: onnx\n"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(JoinPath(staging, "1"), "model.fake"), "tag 5"));
  ASSERT_EQ(std::rename(staging.c_str(), JoinPath(dir_.path(), "fresh").c_str()), 0);
  EXPECT_TRUE(log.WaitFor([&] { return repo->Find("fresh", std::nullopt).ok(); }));

  // A broken version is reported and the serving one stays.
  WriteVersion("m", 3, "broken");
  EXPECT_TRUE(log.WaitFor([&] {
    for (const IndexEntry& e : repo->Index()) {
      if (e.name == "m" && e.version == 3) return e.state == VersionState::kUnavailable;
    }
    return false;
  }));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle h, repo->Find("m", std::nullopt));
  EXPECT_EQ(h.version, 2);
  watcher->Stop();
}

}  // namespace
}  // namespace outpost::serve
