// Shadow mode on a real scoring server (loopback HTTP, XGBoost models trained here, a real
// outbox): every request is scored by the champion and the shadow, answered by the champion,
// compared, labelled through POST /v1/feedback, and the shadow is promoted when it agrees
// and dropped when it does not — durably (config.yaml) and with an `event` record.
#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/auth/auth.h"
#include "base/file.h"
#include "base/http/client.h"
#include "base/testing/test_util.h"
#include "outbox/outbox.h"
#include "serve/edge_api.h"
#include "serve/handler.h"
#include "serve/http_server.h"
#include "serve/model_config.h"
#include "serve/repository.h"
#include "serve/shadow.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost {
namespace {

using testing::TempDir;

constexpr int kRequests = 60;
constexpr int kLabelled = 20;

std::string Float(float v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

// Trains a pump model; `flip` trains it on inverted labels (a shadow that disagrees).
std::string TrainModel(int64_t rows, uint64_t seed, int rounds, bool flip) {
  Result<train::Dataset> data = train::MakePumpReadings({.rows = rows, .seed = seed,
                                                         .fault_rate = 0.3});
  EXPECT_TRUE(data.ok()) << data.status().ToString();
  if (flip) {
    for (float& y : data->labels) y = 1.0f - y;
  }
  train::TrainOptions options;
  options.rounds = rounds;
  auto model = train::TrainXGBoost(*data, options);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  Result<std::string> bytes = (*model)->Serialize(train::ModelFormat::kUbjson);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return *bytes;
}

class ShadowServerTest : public ::testing::Test {
 protected:
  // Writes models/pump with champion version 1 and shadow version 2, and starts the server.
  void Start(const std::string& shadow_bytes, std::string_view promote_rule,
             size_t max_queue = 256) {
    root_ = dir_.File("models");
    ASSERT_TRUE(MakeDirectories(root_ + "/pump/1").ok());
    ASSERT_TRUE(MakeDirectories(root_ + "/pump/2").ok());
    OUTPOST_ASSERT_OK(WriteFileAtomically(root_ + "/pump/1/model.ubj",
                                          TrainModel(3000, 5, 20, false)));
    OUTPOST_ASSERT_OK(WriteFileAtomically(root_ + "/pump/2/model.ubj", shadow_bytes));
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        root_ + "/pump/config.yaml",
        "backend: xgboost\n"
        "version_policy: {latest: 1}\n"
        "inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\n"
        "outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]\n"
        "shadow:\n"
        "  version: 2\n"
        "  decision_threshold: 0.5\n"
        "  promote: " + std::string(promote_rule) + "\n"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(outbox_, outbox::Outbox::Open({.path = dir_.File("outbox.db"),
                                                                .site_id = "site-a",
                                                                .node_id = "edge-1"}));
    OUTPOST_ASSERT_OK_AND_ASSIGN(repository_, serve::ModelRepository::Open({.root = root_}));
    shadow_ = std::make_unique<serve::ShadowRunner>(serve::ShadowOptions{
        .repository = repository_.get(),
        .on_event = [this](const std::string& model, std::string payload) -> Status {
          return outbox_
              ->Append({.kind = outbox::Kind::kEvent, .stream = model, .payload = payload})
              .status();
        },
        .max_queue = max_queue});
    repository_->SetShadowRunner(shadow_.get());
    handler_ = std::make_unique<serve::Handler>(*repository_, serve::HandlerOptions{});
    edge_api_ =
        std::make_unique<serve::EdgeApi>(serve::EdgeApiOptions{.outbox = outbox_.get(),
                                                               .shadow = shadow_.get(),
                                                               .repository = repository_.get(),
                                                               .feedback_per_second = 0});
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        server_, serve::HttpServer::Start(
                     {.address = "127.0.0.1", .port = 0, .threads = 2},
                     [this](const serve::HttpRequest& request, serve::HttpResponse& response) {
                       if (serve::EdgeApi::Owns(request.target)) {
                         // What the listener's authorizer sets for an operator's token with
                         // the label role: only such labels count for promotion.
                         {
                           std::lock_guard<std::mutex> lock(caller_mu_);
                           request.caller = caller_;
                         }
                         edge_api_->Handle(request, response);
                       } else {
                         handler_->Handle(request, response);
                       }
                     }));
    OUTPOST_ASSERT_OK_AND_ASSIGN(client_, http::Client::Connect("127.0.0.1", server_->port()));
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        data_, train::MakePumpReadings({.rows = kRequests, .seed = 99, .fault_rate = 0.3}));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
    if (repository_ != nullptr) repository_->SetShadowRunner(nullptr);
    shadow_.reset();
  }

  std::string Body(int row) const {
    std::string body = "{\"id\":\"r" + std::to_string(row) +
                       "\",\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\","
                       "\"shape\":[1,8],\"data\":[";
    for (int64_t c = 0; c < data_.cols(); ++c) {
      if (c > 0) body += ',';
      body += Float(data_.features[static_cast<size_t>(row * data_.cols() + c)]);
    }
    return body + "]}]}";
  }

  http::ClientResponse Post(const std::string& target, const std::string& body) {
    Result<http::ClientResponse> r = client_->Request("POST", target, body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : http::ClientResponse{};
  }

  // The first number of the first output of an infer response.
  static double FirstScore(const std::string& body) {
    size_t at = body.find("\"data\":[");
    EXPECT_NE(at, std::string::npos) << body;
    if (at == std::string::npos) return NAN;
    return std::strtod(body.c_str() + at + 8, nullptr);
  }

  // Sends every row: the answer without a version equals version 1's, asked for by number.
  // Returns how many rows the shadow (version 2, asked for by number) answered differently.
  int ScoreAll() {
    int differing = 0;
    for (int row = 0; row < kRequests; ++row) {
      http::ClientResponse served = Post("/v2/models/pump/infer", Body(row));
      http::ClientResponse champion = Post("/v2/models/pump/versions/1/infer", Body(row));
      http::ClientResponse shadow = Post("/v2/models/pump/versions/2/infer", Body(row));
      EXPECT_EQ(served.status, 200) << served.body;
      EXPECT_EQ(served.body, champion.body);
      EXPECT_NE(served.body.find("\"model_version\":\"1\""), std::string::npos) << served.body;
      std::string shadow_as_champion = shadow.body;
      size_t at = shadow_as_champion.find("\"model_version\":\"2\"");
      if (at != std::string::npos) shadow_as_champion[at + 17] = '1';
      if (shadow_as_champion != champion.body) ++differing;
      champion_scores_.push_back(FirstScore(champion.body));
      shadow_scores_.push_back(FirstScore(shadow.body));
    }
    return differing;
  }

  // Who the next requests come from, as the listener's authorizer would set it.
  void CallAs(http::Caller caller) {
    std::lock_guard<std::mutex> lock(caller_mu_);
    caller_ = std::move(caller);
  }

  void Label(int from = 0, int to = kLabelled) {
    for (int row = from; row < to; ++row) {
      std::string body = "{\"request_id\":\"r" + std::to_string(row) +
                         "\",\"model\":\"pump\",\"label\":" +
                         std::to_string(static_cast<int>(data_.labels[static_cast<size_t>(row)])) +
                         "}";
      http::ClientResponse r = Post("/v1/feedback", body);
      EXPECT_EQ(r.status, 200) << r.body;
    }
  }

  std::vector<std::string> Events() {
    Result<std::vector<outbox::Record>> records =
        outbox_->Query({.kind = outbox::Kind::kEvent, .limit = 100});
    EXPECT_TRUE(records.ok()) << records.status().ToString();
    std::vector<std::string> out;
    if (records.ok()) {
      for (const outbox::Record& r : *records) {
        if (r.stream == "pump") out.push_back(r.payload);
      }
    }
    return out;
  }

  TempDir dir_;
  std::string root_;
  train::Dataset data_;
  std::unique_ptr<outbox::Outbox> outbox_;
  std::unique_ptr<serve::ModelRepository> repository_;
  std::unique_ptr<serve::ShadowRunner> shadow_;
  std::unique_ptr<serve::Handler> handler_;
  std::unique_ptr<serve::EdgeApi> edge_api_;
  std::unique_ptr<serve::HttpServer> server_;
  std::unique_ptr<http::Client> client_;
  std::vector<double> champion_scores_, shadow_scores_;
  std::mutex caller_mu_;  // guards caller_
  // An operator's token with the label role: only such labels count for promotion.
  http::Caller caller_{.kind = http::Caller::Kind::kClient,
                       .credential = "operator",
                       .roles = auth::RoleBit(auth::Role::kLabel)};
};

// What the runner must have counted, computed from the versions' own answers.
struct Expected {
  uint64_t agreed = 0, champion_correct = 0, shadow_correct = 0;
};

Expected Expect(const std::vector<double>& champion, const std::vector<double>& shadow,
                const train::Dataset& data) {
  Expected e;
  for (size_t i = 0; i < champion.size(); ++i) {
    if ((champion[i] >= 0.5) == (shadow[i] >= 0.5)) ++e.agreed;
    if (i < static_cast<size_t>(kLabelled)) {
      const bool truth = data.labels[i] >= 0.5f;
      if ((champion[i] >= 0.5) == truth) ++e.champion_correct;
      if ((shadow[i] >= 0.5) == truth) ++e.shadow_correct;
    }
  }
  return e;
}

TEST_F(ShadowServerTest, UntrustedLabelsNeverPromoteAndTheEventCountsTheCredentials) {
  Start(TrainModel(6000, 6, 40, false),
        "{min_requests: 60, min_agreement: 0.8, min_labelled: 20, min_accuracy_gain: -0.2}");
  ScoreAll();
  shadow_->WaitIdle();
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string config_before, ReadFile(root_ + "/pump/config.yaml"));
  // Every label from callers that are not trusted: anonymous with the label role (an open
  // listener), and a credential without it.
  CallAs({.kind = http::Caller::Kind::kAnonymous, .roles = auth::RoleBit(auth::Role::kLabel)});
  Label(0, kLabelled / 2);
  CallAs({.kind = http::Caller::Kind::kClient,
          .credential = "reader",
          .roles = auth::RoleBit(auth::Role::kRead)});
  Label(kLabelled / 2, kLabelled);
  shadow_->WaitIdle();
  std::optional<serve::ShadowCounters> ignored = shadow_->Counters("pump");
  ASSERT_TRUE(ignored.has_value());
  EXPECT_EQ(ignored->labelled, 0u);
  EXPECT_EQ(ignored->untrusted_labels, static_cast<uint64_t>(kLabelled));
  EXPECT_EQ(ignored->outcome, serve::ShadowOutcome::kPending);
  // Nothing changed: the same config.yaml, no event, and the champion still answers.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string config_after, ReadFile(root_ + "/pump/config.yaml"));
  EXPECT_EQ(config_after, config_before);
  EXPECT_TRUE(Events().empty());
  http::ClientResponse served = Post("/v2/models/pump/infer", Body(0));
  EXPECT_NE(served.body.find("\"model_version\":\"1\""), std::string::npos) << served.body;
  // The labels were stored all the same, marked as untrusted.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto stored, outbox_->Query({.kind = outbox::Kind::kFeedback}));
  ASSERT_EQ(stored.size(), static_cast<size_t>(kLabelled));
  EXPECT_NE(stored.front().payload.find("\"trusted\":false"), std::string::npos);
  EXPECT_EQ(stored.front().payload.find("\"credential\""), std::string::npos);
  EXPECT_NE(stored.back().payload.find("\"credential\":\"reader\",\"trusted\":false"),
            std::string::npos)
      << stored.back().payload;

  // The same labels from two operators' tokens with the label role decide.
  CallAs({.kind = http::Caller::Kind::kClient,
          .credential = "op-a",
          .roles = auth::RoleBit(auth::Role::kLabel)});
  Label(0, kLabelled / 2);
  CallAs({.kind = http::Caller::Kind::kClient,
          .credential = "op-b",
          .roles = auth::RoleBit(auth::Role::kLabel) | auth::RoleBit(auth::Role::kRead)});
  Label(kLabelled / 2, kLabelled);
  shadow_->WaitIdle();
  std::optional<serve::ShadowCounters> c = shadow_->Counters("pump");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->labelled, static_cast<uint64_t>(kLabelled));
  EXPECT_EQ(c->label_credentials, 2u);
  EXPECT_EQ(c->outcome, serve::ShadowOutcome::kPromoted);
  std::vector<std::string> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].find("\"labelled\":20,\"label_credentials\":2,\"untrusted_labels\":20"),
            std::string::npos)
      << events[0];
}

TEST_F(ShadowServerTest, AgreeingShadowIsPromotedDurably) {
  // A shadow trained on more data, with the same task: it agrees on nearly every row.
  Start(TrainModel(6000, 6, 40, false),
        "{min_requests: 60, min_agreement: 0.8, min_labelled: 20, min_accuracy_gain: -0.2}");
  ScoreAll();
  shadow_->WaitIdle();
  std::optional<serve::ShadowCounters> before = shadow_->Counters("pump");
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->compared, static_cast<uint64_t>(kRequests));
  EXPECT_EQ(before->labelled, 0u);
  EXPECT_EQ(before->outcome, serve::ShadowOutcome::kPending);  // no labels yet
  EXPECT_TRUE(Events().empty());

  Label();
  shadow_->WaitIdle();
  std::optional<serve::ShadowCounters> c = shadow_->Counters("pump");
  ASSERT_TRUE(c.has_value());
  const Expected e = Expect(champion_scores_, shadow_scores_, data_);
  EXPECT_EQ(c->compared, static_cast<uint64_t>(kRequests));
  EXPECT_EQ(c->agreed, e.agreed);
  EXPECT_GE(c->agreed, static_cast<uint64_t>(kRequests * 8 / 10));
  EXPECT_EQ(c->labelled, static_cast<uint64_t>(kLabelled));
  EXPECT_EQ(c->champion_correct, e.champion_correct);
  EXPECT_EQ(c->shadow_correct, e.shadow_correct);
  EXPECT_EQ(c->skipped, 0u);
  EXPECT_EQ(c->outcome, serve::ShadowOutcome::kPromoted);

  // The promoted version serves, now and after a restart: config.yaml names it alone.
  http::ClientResponse after = Post("/v2/models/pump/infer", Body(0));
  EXPECT_NE(after.body.find("\"model_version\":\"2\""), std::string::npos) << after.body;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string config, ReadFile(root_ + "/pump/config.yaml"));
  EXPECT_EQ(config.find("shadow"), std::string::npos) << config;
  OUTPOST_ASSERT_OK_AND_ASSIGN(serve::ModelConfig parsed, serve::ParseModelConfig(config, "pump"));
  EXPECT_EQ(parsed.version_policy.kind, serve::VersionPolicy::Kind::kSpecific);
  EXPECT_EQ(parsed.version_policy.versions, std::vector<int64_t>{2});
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto restarted, serve::ModelRepository::Open({.root = root_}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(serve::ModelHandle handle, restarted->Find("pump", std::nullopt));
  EXPECT_EQ(handle.version, 2);

  // The outcome went to the outbox with its numbers, and /metrics shows the counters.
  std::vector<std::string> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].find("\"event\":\"shadow_promoted\""), std::string::npos) << events[0];
  EXPECT_NE(events[0].find("\"compared\":60"), std::string::npos) << events[0];
  EXPECT_NE(events[0].find("\"labelled\":20"), std::string::npos) << events[0];
  EXPECT_NE(events[0].find("\"label_credentials\":1"), std::string::npos) << events[0];
  EXPECT_NE(events[0].find("\"agreed\":" + std::to_string(e.agreed)), std::string::npos)
      << events[0];
  EXPECT_NE(events[0].find("\"persisted\":true"), std::string::npos) << events[0];
  Result<http::ClientResponse> metrics = client_->Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("outpost_shadow_compared_total{model=\"pump\",shadow_version=\"2\"} 60"),
            std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("outpost_shadow_state{model=\"pump\",shadow_version=\"2\"} 1"),
            std::string::npos) << metrics->body;
}

TEST_F(ShadowServerTest, DisagreeingShadowIsDroppedAndNeverAnswers) {
  // A shadow trained on inverted labels: it disagrees with the champion and loses on labels.
  Start(TrainModel(3000, 7, 20, true),
        "{min_requests: 60, min_agreement: 0.9, min_labelled: 20, min_accuracy_gain: 0.0}");
  const int differing = ScoreAll();
  EXPECT_GT(differing, kRequests / 2);  // the shadow's answers differ; none was returned
  Label();
  shadow_->WaitIdle();
  std::optional<serve::ShadowCounters> c = shadow_->Counters("pump");
  ASSERT_TRUE(c.has_value());
  const Expected e = Expect(champion_scores_, shadow_scores_, data_);
  EXPECT_EQ(c->agreed, e.agreed);
  EXPECT_LT(c->agreed, static_cast<uint64_t>(kRequests / 2));
  EXPECT_EQ(c->champion_correct, e.champion_correct);
  EXPECT_EQ(c->shadow_correct, e.shadow_correct);
  EXPECT_GT(c->champion_correct, c->shadow_correct);
  EXPECT_EQ(c->outcome, serve::ShadowOutcome::kDropped);

  // The champion keeps serving; the shadow is no longer loaded, now or after a restart.
  http::ClientResponse after = Post("/v2/models/pump/infer", Body(0));
  EXPECT_NE(after.body.find("\"model_version\":\"1\""), std::string::npos) << after.body;
  EXPECT_EQ(Post("/v2/models/pump/versions/2/infer", Body(0)).status, 404);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto restarted, serve::ModelRepository::Open({.root = root_}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(serve::ModelHandle handle, restarted->Find("pump", std::nullopt));
  EXPECT_EQ(handle.version, 1);
  EXPECT_FALSE(restarted->Find("pump", 2).ok());

  std::vector<std::string> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].find("\"event\":\"shadow_dropped\""), std::string::npos) << events[0];
  EXPECT_NE(events[0].find("\"version\":1"), std::string::npos) << events[0];
}

TEST_F(ShadowServerTest, FullQueueSkipsTheShadowNotTheResponse) {
  // No room at all: every batch is skipped and counted; every response is the champion's.
  Start(TrainModel(3000, 7, 20, true),
        "{min_requests: 1, min_agreement: 0.9, min_labelled: 0}", /*max_queue=*/0);
  ScoreAll();
  shadow_->WaitIdle();
  std::optional<serve::ShadowCounters> c = shadow_->Counters("pump");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->skipped, static_cast<uint64_t>(kRequests));
  EXPECT_EQ(c->compared, 0u);
  EXPECT_EQ(c->outcome, serve::ShadowOutcome::kPending);
  EXPECT_TRUE(Events().empty());
}

}  // namespace
}  // namespace outpost
