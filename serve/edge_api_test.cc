// The /v1 edge API on a real outbox file: feedback stored durably and read back, local
// queries with their filters and bounds, the outbox's state, and clear 4xx answers for bad
// bodies and queries; feedback only for known models, at each caller's rate, within the
// outbox's feedback quota and stream bound; records as the compliance policy shows them
// unless the caller holds a raw-read role.
#include "serve/edge_api.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/auth/auth.h"
#include "base/clock.h"
#include "base/json/json.h"
#include "base/testing/test_util.h"
#include "outbox/outbox.h"
#include "policy/evaluate.h"
#include "policy/policy.h"
#include "serve/repository.h"

namespace outpost::serve {
namespace {

using testing::TempDir;

constexpr int kFeedbackClass = static_cast<int>(outbox::Kind::kFeedback) - 1;

// A model the repository holds (not loaded: feedback need not name a loaded model).
std::shared_ptr<const ServableModel> Model(std::string name) {
  auto model = std::make_shared<ServableModel>();
  model->name = std::move(name);
  model->error = "not loaded in this test";
  return model;
}

http::Caller Client(std::string credential, auth::RoleSet roles) {
  return {.kind = http::Caller::Kind::kClient, .credential = std::move(credential), .roles = roles};
}

class EdgeApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repository_ = ModelRepository::FromModels(
        {Model("pump"), Model("iris"), Model("m"), Model(std::string(64, 'm'))});
    Open();
  }

  void Open(uint64_t max_bytes = uint64_t{1} << 30,
            outbox::ClassPolicy feedback_class = outbox::DefaultClassPolicies()[kFeedbackClass],
            size_t max_streams = 1024) {
    api_.reset();
    outbox_.reset();
    outbox::OutboxOptions o{.path = dir_.File("outbox.db"),
                            .site_id = "site-1",
                            .node_id = "node-1",
                            .max_bytes = max_bytes,
                            .max_streams = max_streams,
                            .clock = &clock_};
    o.classes[kFeedbackClass] = feedback_class;
    // A bound of a few records counts records without the reserved shares of aggregate,
    // drift and event (outbox/FORMAT.md section 3).
    if (max_bytes < 4096) {
      for (outbox::ClassPolicy& c : o.classes) c.reserved_percent = 0;
    }
    OUTPOST_ASSERT_OK_AND_ASSIGN(outbox_, outbox::Outbox::Open(o));
    MakeApi();
  }

  // (Re)makes the API from options_.
  void MakeApi() {
    EdgeApiOptions options = options_;
    options.outbox = outbox_.get();
    options.clock = &clock_;
    options.repository = repository_.get();
    api_ = std::make_unique<EdgeApi>(std::move(options));
  }

  HttpResponse Call(std::string_view method, std::string_view target, std::string body = {}) {
    HttpRequest request{.method = method, .target = target, .body = std::move(body)};
    // What the listener's authorizer sets before a route runs.
    request.caller = caller_;
    HttpResponse response;
    EXPECT_TRUE(EdgeApi::Owns(target)) << target;
    api_->Handle(request, response);
    return response;
  }

  // The parsed JSON of a response body (owned by parser_).
  json::Value Json(const HttpResponse& response) {
    Result<json::Value> root = parser_.Parse(response.body);
    EXPECT_TRUE(root.ok()) << response.body;
    return root.ok() ? *root : json::Value();
  }

  // The "error" message of an error response.
  std::string ErrorOf(const HttpResponse& response) {
    Result<std::string_view> message = Json(response)["error"].GetString();
    if (!message.ok()) return "<no error>";
    return std::string(*message);
  }

  // The "reason" of an error response.
  std::string ReasonOf(const HttpResponse& response) {
    Result<std::string_view> reason = Json(response)["reason"].GetString();
    return reason.ok() ? std::string(*reason) : "<no reason>";
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<outbox::Outbox> outbox_;
  // Every test's API: raw reads for admin.
  EdgeApiOptions options_{.raw_read_roles = auth::RoleBit(auth::Role::kAdmin)};
  http::Caller caller_ = Client("tester", auth::kAllRoles);
  std::unique_ptr<EdgeApi> api_;
  json::Parser parser_;
};

TEST_F(EdgeApiTest, FeedbackIsStoredAsAFeedbackRecordOnTheModelsStream) {
  HttpResponse r = Call("POST", "/v1/feedback",
                        R"({"request_id":"r-42","model":"pump","label":1,"note":"bearing"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"stream":"pump","seq":1})");

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto records,
                               outbox_->Query({.kind = outbox::Kind::kFeedback}));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].stream, "pump");
  EXPECT_EQ(records[0].payload,
            R"({"v":1,"kind":"feedback","model":"pump","request_id":"r-42","label":1,)"
            R"("note":"bearing","time_ms":1700000000000,"credential":"tester","trusted":true})");
}

TEST_F(EdgeApiTest, StringAndFractionalLabelsAreKeptAsSent) {
  ASSERT_EQ(Call("POST", "/v1/feedback", R"({"request_id":"a","model":"iris","label":"setosa"})")
                .status,
            200);
  ASSERT_EQ(Call("POST", "/v1/feedback", R"({"request_id":"b","model":"iris","label":0.25})")
                .status,
            200);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto records, outbox_->Query({}));
  ASSERT_EQ(records.size(), 2u);
  EXPECT_NE(records[0].payload.find(R"("label":"setosa")"), std::string::npos);
  EXPECT_NE(records[1].payload.find(R"("label":0.25)"), std::string::npos);
  EXPECT_EQ(records[1].seq, 2u);
}

TEST_F(EdgeApiTest, BadFeedbackBodiesGet400WithAReasonAndStoreNothing) {
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "not valid JSON"},
      {"[1,2]", "must be a JSON object"},
      {R"({"model":"pump","label":1})", "needs \"request_id\""},
      {R"({"request_id":"r","label":1})", "needs \"model\""},
      {R"({"request_id":"r","model":"pump"})", "needs \"label\""},
      {R"({"request_id":"","model":"pump","label":1})", "must not be empty"},
      {R"({"request_id":7,"model":"pump","label":1})", "\"request_id\" must be a string"},
      {R"({"request_id":"r","model":"../etc","label":1})", "is not a model name"},
      {R"({"request_id":"r","model":"_outbox","label":1})", "is not a model name"},
      {R"({"request_id":"r","model":"pump","label":[1]})", "must be a number or a string"},
      {R"({"request_id":"r","model":"pump","label":null})", "must be a number or a string"},
      {R"({"request_id":"r","model":"pump","label":1,"extra":2})", "unknown key \"extra\""},
      {R"({"request_id":"r","request_id":"s","model":"pump","label":1})", "repeats the key"},
      {R"({"request_id":")" + std::string(300, 'x') + R"(","model":"pump","label":1})",
       "longer than 256 bytes"},
      {R"({"request_id":"r","model":"pump","label":1,"note":")" + std::string(5000, 'n') + "\"}",
       "\"note\" is longer than 4096 bytes"},
  };
  for (const auto& [body, reason] : cases) {
    HttpResponse r = Call("POST", "/v1/feedback", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(ErrorOf(r).find(reason), std::string::npos) << body << " -> " << r.body;
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto records, outbox_->Query({}));
  EXPECT_TRUE(records.empty());
}

TEST_F(EdgeApiTest, FeedbackRefusesAModelNameThatCouldNeverBeBundled) {
  // The feedback rule is the bundle rule (base/names.h ModelName): lower case, at most 64.
  HttpResponse other = Call("POST", "/v1/feedback", R"({"request_id":"r","label":1})");
  ASSERT_EQ(other.status, 400);
  for (const std::string& model :
       std::vector<std::string>{"Pump", "PUMP", "a:b", std::string(65, 'm'), "-pump", ".pump"}) {
    HttpResponse r = Call("POST", "/v1/feedback",
                          R"({"request_id":"r","model":")" + model + R"(","label":1})");
    EXPECT_EQ(r.status, 400) << model;
    EXPECT_NE(ErrorOf(r).find("is not a model name"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("reason":"invalid_model_name")"), std::string::npos) << r.body;
    // The same error body shape as any other invalid argument: the same members.
    std::vector<std::string> keys, other_keys;
    for (auto member : Json(r).Members()) keys.emplace_back(member.key);
    for (auto member : Json(other).Members()) other_keys.emplace_back(member.key);
    EXPECT_EQ(keys, other_keys) << r.body << " vs " << other.body;
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto records, outbox_->Query({}));
  EXPECT_TRUE(records.empty());
  // The longest name a bundle takes is taken here too.
  std::string longest(64, 'm');
  EXPECT_EQ(Call("POST", "/v1/feedback",
                 R"({"request_id":"r","model":")" + longest + R"(","label":1})")
                .status,
            200);
}

TEST_F(EdgeApiTest, OversizedFeedbackBodyGets413) {
  std::string body = R"({"request_id":"r","model":"pump","label":1,"note":")" +
                     std::string(20 << 10, 'n') + "\"}";
  HttpResponse r = Call("POST", "/v1/feedback", body);
  EXPECT_EQ(r.status, 413) << r.body;
}

TEST_F(EdgeApiTest, FeedbackWhenTheOutboxIsFullGets503AndIsNotStored) {
  // A bound that holds one feedback record but not two, with feedback neither bounded by a
  // quota of its own nor evictable.
  Open(/*max_bytes=*/250, outbox::ClassPolicy{});
  ASSERT_EQ(Call("POST", "/v1/feedback", R"({"request_id":"a","model":"m","label":1})").status,
            200);
  HttpResponse r = Call("POST", "/v1/feedback", R"({"request_id":"b","model":"m","label":1})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("outbox full"), std::string::npos) << r.body;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto records, outbox_->Query({}));
  EXPECT_EQ(records.size(), 1u);
}

TEST_F(EdgeApiTest, RecordsQueryFiltersByKindSinceAndLimitAndEmbedsJsonPayloads) {
  OUTPOST_ASSERT_OK(outbox_->Append({.kind = outbox::Kind::kAnomaly, .stream = "pump",
                                     .payload = R"({"kind":"anomaly","score_value":0.9})"})
                        .status());
  clock_.Advance(std::chrono::seconds(1));
  const int64_t second = UnixMillis(clock_.Now());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Call("POST", "/v1/feedback",
                   R"({"request_id":"r)" + std::to_string(i) + R"(","model":"pump","label":1})")
                  .status,
              200);
  }
  OUTPOST_ASSERT_OK(outbox_->Append({.kind = outbox::Kind::kSample, .stream = "pump",
                                     .payload = "not json \x01"})
                        .status());

  HttpResponse all = Call("GET", "/v1/records");
  ASSERT_EQ(all.status, 200) << all.body;
  json::Value records = Json(all)["records"];
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(std::string_view(records.At(0)["kind"].GetString().value()), "anomaly");
  EXPECT_EQ(records.At(0)["payload"]["score_value"].GetDouble().value(), 0.9);
  EXPECT_EQ(records.At(4)["payload_text"].GetString().value(), "not json \x01");

  HttpResponse feedback = Call("GET", "/v1/records?kind=feedback&limit=2");
  ASSERT_EQ(feedback.status, 200) << feedback.body;
  json::Value fb = Json(feedback);
  json::Value two = fb["records"];
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(std::string_view(two.At(0)["payload"]["request_id"].GetString().value()), "r0");
  EXPECT_EQ(two.At(1)["seq"].GetUint64().value(), 3u);  // the anomaly took seq 1 on "pump"
  EXPECT_TRUE(fb["more"].GetBool().value());

  HttpResponse since =
      Call("GET", "/v1/records?since=" + std::to_string(second) + "&kind=anomaly");
  ASSERT_EQ(since.status, 200) << since.body;
  EXPECT_EQ(Json(since)["records"].size(), 0u);
}

TEST_F(EdgeApiTest, BadRecordQueriesGet400) {
  const std::pair<std::string, std::string> cases[] = {
      {"/v1/records?kind=bogus", "unknown kind \"bogus\""},
      {"/v1/records?limit=0", "limit must be an integer from 1 to 1000"},
      {"/v1/records?limit=1001", "limit must be an integer from 1 to 1000"},
      {"/v1/records?limit=ten", "limit must be"},
      {"/v1/records?since=-5", "since must be Unix milliseconds"},
      {"/v1/records?sort=asc", "unknown query parameter \"sort\""},
      {"/v1/records?kind=%zz", "broken %-escape"},
      {"/v1/records?limit=1&limit=2", "is repeated"},
  };
  for (const auto& [target, reason] : cases) {
    HttpResponse r = Call("GET", target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_NE(ErrorOf(r).find(reason), std::string::npos) << target << " -> " << r.body;
  }
}

TEST_F(EdgeApiTest, OutboxStateReportsDepthBytesAgeAndRatePerClass) {
  HttpResponse empty = Call("GET", "/v1/outbox");
  ASSERT_EQ(empty.status, 200) << empty.body;
  json::Value e = Json(empty);
  EXPECT_EQ(e["records"].GetUint64().value(), 0u);
  EXPECT_TRUE(e["oldest_record_age_ms"].is_null());
  EXPECT_TRUE(e["autonomy_days"].is_null());
  EXPECT_EQ(std::string_view(e["site_id"].GetString().value()), "site-1");

  ASSERT_EQ(Call("POST", "/v1/feedback", R"({"request_id":"a","model":"m","label":1})").status,
            200);
  clock_.Advance(std::chrono::seconds(30));
  HttpResponse one = Call("GET", "/v1/outbox");
  ASSERT_EQ(one.status, 200) << one.body;
  json::Value o = Json(one);
  EXPECT_EQ(o["records"].GetUint64().value(), 1u);
  EXPECT_GT(o["bytes"].GetUint64().value(), 0u);
  EXPECT_EQ(o["max_bytes"].GetUint64().value(), uint64_t{1} << 30);
  EXPECT_EQ(o["oldest_record_age_ms"].GetInt64().value(), 30000);
  EXPECT_GT(o["ingest_records_per_s"].GetDouble().value(), 0.0);
  // 30 s of an hour's rate window: no estimate from a burst, and it says why.
  EXPECT_TRUE(o["autonomy_days"].is_null());
  EXPECT_EQ(o["autonomy_basis"].GetString().value_or(""), "not_enough_history");
  EXPECT_FALSE(o["failed"].GetBool().value());
  // The account: the feedback raised is held.
  json::Value feedback = o["account"]["classes"]["feedback"];
  EXPECT_EQ(feedback["raised"].GetUint64().value_or(0), 1u);
  EXPECT_EQ(feedback["held"].GetUint64().value_or(0), 1u);
  EXPECT_EQ(feedback["refused"].GetUint64().value_or(1), 0u);
  int classes = 0;
  json::Value class_list = o["classes"];
  for (json::Value c : class_list.Items()) {
    ++classes;
    if (std::string_view(c["kind"].GetString().value()) == "feedback") {
      EXPECT_EQ(c["records"].GetUint64().value(), 1u);
      EXPECT_EQ(c["oldest_age_ms"].GetInt64().value(), 30000);
    } else {
      EXPECT_EQ(c["records"].GetUint64().value(), 0u);
      EXPECT_TRUE(c["oldest_age_ms"].is_null());
    }
  }
  EXPECT_EQ(classes, outbox::kNumKinds);
}

TEST_F(EdgeApiTest, UnknownPathsAndWrongMethodsGet404And405) {
  EXPECT_EQ(Call("GET", "/v1/nothing").status, 404);
  EXPECT_EQ(Call("GET", "/v1").status, 404);
  HttpResponse r = Call("GET", "/v1/feedback");
  EXPECT_EQ(r.status, 405);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Allow");
  EXPECT_EQ(r.headers[0].second, "POST");
  EXPECT_EQ(Call("POST", "/v1/outbox").status, 405);
  EXPECT_EQ(Call("DELETE", "/v1/records").status, 405);
  EXPECT_FALSE(EdgeApi::Owns("/v2/models/pump/infer"));
  EXPECT_FALSE(EdgeApi::Owns("/v10/x"));
  EXPECT_TRUE(EdgeApi::Owns("/v1/records?kind=feedback"));
}

TEST_F(EdgeApiTest, AcknowledgedFeedbackSurvivesReopeningTheOutbox) {
  ASSERT_EQ(Call("POST", "/v1/feedback", R"({"request_id":"keep","model":"m","label":"ok"})")
                .status,
            200);
  Open();
  HttpResponse r = Call("GET", "/v1/records?kind=feedback");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("request_id":"keep")"), std::string::npos) << r.body;
}

TEST_F(EdgeApiTest, RoutesAskTheAuthorizerForLabelAndReadRoles) {
  http::Router router;
  api_->RegisterRoutes(router);
  std::vector<uint32_t> asked;
  router.SetAuthorizer([&](const http::Request&, uint32_t access, http::Response& refusal) {
    asked.push_back(access);
    refusal.status = 403;
    return false;
  });
  for (auto [method, target] : {std::pair<std::string, std::string>{"POST", "/v1/feedback"},
                                {"GET", "/v1/records"},
                                {"GET", "/v1/outbox"}}) {
    HttpRequest request{.method = method,
                        .target = target,
                        .body = R"({"request_id":"r","model":"pump","label":1})"};
    HttpResponse response;
    router.Handle(request, response);
    EXPECT_EQ(response.status, 403) << target;
  }
  EXPECT_EQ(asked, (std::vector<uint32_t>{auth::RoleBit(auth::Role::kLabel),
                                          auth::RoleBit(auth::Role::kRead),
                                          auth::RoleBit(auth::Role::kRead)}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto records, outbox_->Query({}));
  EXPECT_TRUE(records.empty());
}

TEST_F(EdgeApiTest, FeedbackForAModelTheRepositoryNeverHeldIs404AndTouchesNothing) {
  HttpResponse r = Call("POST", "/v1/feedback", R"({"request_id":"r","model":"ghost","label":1})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(ReasonOf(r), "model_unknown");
  // Nothing stored, and the outbox was never asked (no stream, no refusal counted).
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto records, outbox_->Query({}));
  EXPECT_TRUE(records.empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(outbox::OutboxStats st, outbox_->Stats());
  EXPECT_EQ(st.records, 0u);
  EXPECT_EQ(st.rejected_records, 0u);
  EXPECT_EQ(st.committed_records, 0u);
  // Without a repository no model is known.
  options_.repository = nullptr;
  repository_.reset();
  MakeApi();
  EXPECT_EQ(
      ReasonOf(Call("POST", "/v1/feedback", R"({"request_id":"r","model":"pump","label":1})")),
      "model_unknown");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto after, outbox_->Query({}));
  EXPECT_TRUE(after.empty());
}

TEST_F(EdgeApiTest, FeedbackOverTheCallersRateIs429WithRetryAfterAndStoresNothing) {
  options_.feedback_per_second = 0.5;
  options_.feedback_burst = 2;
  MakeApi();
  const std::string body = R"({"request_id":"r","model":"pump","label":1})";
  ASSERT_EQ(Call("POST", "/v1/feedback", body).status, 200);
  ASSERT_EQ(Call("POST", "/v1/feedback", body).status, 200);
  HttpResponse limited = Call("POST", "/v1/feedback", body);
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_EQ(ReasonOf(limited), "rate_limited");
  ASSERT_EQ(limited.headers.size(), 1u);
  EXPECT_EQ(limited.headers[0].first, "Retry-After");
  EXPECT_EQ(limited.headers[0].second, "2");  // one token at 0.5 per second
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto two, outbox_->Query({}));
  EXPECT_EQ(two.size(), 2u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(outbox::OutboxStats st, outbox_->Stats());
  EXPECT_EQ(st.rejected_records, 0u);

  // Another credential has a bucket of its own; anonymous callers share one.
  caller_ = Client("other", auth::RoleBit(auth::Role::kLabel));
  EXPECT_EQ(Call("POST", "/v1/feedback", body).status, 200);
  caller_ = {.kind = http::Caller::Kind::kAnonymous, .roles = auth::RoleBit(auth::Role::kLabel)};
  EXPECT_EQ(Call("POST", "/v1/feedback", body).status, 200);
  EXPECT_EQ(Call("POST", "/v1/feedback", body).status, 200);
  EXPECT_EQ(Call("POST", "/v1/feedback", body).status, 429);
  // The first caller's bucket refills with time.
  caller_ = Client("tester", auth::kAllRoles);
  EXPECT_EQ(Call("POST", "/v1/feedback", body).status, 429);
  clock_.Advance(std::chrono::seconds(2));
  EXPECT_EQ(Call("POST", "/v1/feedback", body).status, 200);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto all, outbox_->Query({}));
  EXPECT_EQ(all.size(), 6u);
}

TEST_F(EdgeApiTest, FeedbackFloodAtItsQuotaLeavesEveryAnomalyInPlace) {
  Open(/*max_bytes=*/200'000);
  options_.feedback_per_second = 0;
  MakeApi();
  for (int i = 0; i < 50; ++i) {
    OUTPOST_ASSERT_OK(
        outbox_
            ->Append({.kind = outbox::Kind::kAnomaly,
                      .stream = "pump",
                      .payload = R"({"kind":"anomaly","i":)" + std::to_string(i) + "}"})
            .status());
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto anomalies_before,
                               outbox_->Query({.kind = outbox::Kind::kAnomaly, .limit = 1000}));
  // Far more feedback than its quota (10% of the bound) holds: the newest is kept.
  for (int i = 0; i < 400; ++i) {
    HttpResponse r =
        Call("POST", "/v1/feedback",
             R"({"request_id":"flood-)" + std::to_string(i) + R"(","model":"pump","label":1})");
    ASSERT_EQ(r.status, 200) << i << ": " << r.body;
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto anomalies_after,
                               outbox_->Query({.kind = outbox::Kind::kAnomaly, .limit = 1000}));
  ASSERT_EQ(anomalies_after.size(), anomalies_before.size());
  for (size_t i = 0; i < anomalies_after.size(); ++i) {
    EXPECT_EQ(anomalies_after[i].seq, anomalies_before[i].seq);
    EXPECT_EQ(anomalies_after[i].payload, anomalies_before[i].payload);
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(outbox::OutboxStats st, outbox_->Stats());
  for (const outbox::ClassStats& c : st.classes) {
    if (c.kind == outbox::Kind::kFeedback) {
      EXPECT_LE(c.bytes, 20'000u);
      EXPECT_GT(c.evicted_records, 0u);
    } else {
      EXPECT_EQ(c.evicted_records, 0u) << outbox::KindName(c.kind);
    }
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto feedback,
                               outbox_->Query({.kind = outbox::Kind::kFeedback, .limit = 1000}));
  ASSERT_FALSE(feedback.empty());
  EXPECT_NE(feedback.back().payload.find(R"("request_id":"flood-399")"), std::string::npos);
  // An anomaly still finds room.
  OUTPOST_ASSERT_OK(
      outbox_->Append({.kind = outbox::Kind::kAnomaly, .stream = "pump", .payload = "{}"})
          .status());
}

TEST_F(EdgeApiTest, FeedbackStartingAStreamBeyondTheOutboxBoundIs503AndStoresNothing) {
  Open(uint64_t{1} << 30, outbox::DefaultClassPolicies()[kFeedbackClass], /*max_streams=*/1);
  ASSERT_EQ(Call("POST", "/v1/feedback", R"({"request_id":"a","model":"pump","label":1})").status,
            200);
  HttpResponse r = Call("POST", "/v1/feedback", R"({"request_id":"b","model":"iris","label":1})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(ReasonOf(r), "too_many_streams");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto records, outbox_->Query({}));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].stream, "pump");
  // The stream that exists takes more.
  EXPECT_EQ(Call("POST", "/v1/feedback", R"({"request_id":"c","model":"pump","label":1})").status,
            200);
}

constexpr char kPolicy[] = R"(format: 1
version: 1
default: drop
regions:
  field: {raw: true}
default_region: field
kinds:
  anomaly:
    fields:
      v: keep
      kind: keep
      model: keep
      request_id: hash
)";

TEST_F(EdgeApiTest, RecordsShowWhatThePolicyLetsLeaveUnlessTheCallerHoldsARawRole) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(options_.policy, policy::ParsePolicy(kPolicy));
  OUTPOST_ASSERT_OK_AND_ASSIGN(policy::HashKey key,
                               policy::HashKey::Create("a site secret of enough bytes"));
  options_.policy_hash_key = key;
  MakeApi();
  const std::string anomaly =
      R"({"v":1,"kind":"anomaly","model":"pump","request_id":"r-1","inputs":{"temp":91.5}})";
  OUTPOST_ASSERT_OK(
      outbox_->Append({.kind = outbox::Kind::kAnomaly, .stream = "pump", .payload = anomaly})
          .status());
  ASSERT_EQ(Call("POST", "/v1/feedback", R"({"request_id":"r-1","model":"pump","label":1})").status,
            200);

  // A reader: the anomaly as it would leave (inputs dropped, the request id hashed), and no
  // feedback, which this policy keeps at the site.
  caller_ = Client("reader", auth::RoleBit(auth::Role::kRead));
  HttpResponse filtered = Call("GET", "/v1/records");
  ASSERT_EQ(filtered.status, 200) << filtered.body;
  json::Value listed = Json(filtered)["records"];
  ASSERT_EQ(listed.size(), 1u) << filtered.body;
  EXPECT_EQ(std::string_view(listed.At(0)["kind"].GetString().value()), "anomaly");
  EXPECT_EQ(filtered.body.find("inputs"), std::string::npos) << filtered.body;
  EXPECT_EQ(filtered.body.find("r-1"), std::string::npos) << filtered.body;
  EXPECT_EQ(
      std::string_view(listed.At(0)["payload"]["request_id"].GetString().value()).substr(0, 3),
      "h1:");

  // An admin (the raw-read role here) reads both as stored.
  caller_ = Client("auditor", auth::RoleBit(auth::Role::kRead) | auth::RoleBit(auth::Role::kAdmin));
  HttpResponse raw = Call("GET", "/v1/records");
  ASSERT_EQ(raw.status, 200) << raw.body;
  ASSERT_EQ(Json(raw)["records"].size(), 2u) << raw.body;
  EXPECT_NE(raw.body.find(R"("inputs":{"temp":91.5})"), std::string::npos) << raw.body;

  // Without a policy a reader sees nothing at all; the admin still reads raw.
  options_.policy = nullptr;
  MakeApi();
  caller_ = Client("reader", auth::RoleBit(auth::Role::kRead));
  HttpResponse none = Call("GET", "/v1/records");
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_EQ(Json(none)["records"].size(), 0u) << none.body;
  caller_ = Client("auditor", auth::RoleBit(auth::Role::kRead) | auth::RoleBit(auth::Role::kAdmin));
  EXPECT_EQ(Json(Call("GET", "/v1/records"))["records"].size(), 2u);

  // Reading changed nothing: both records are still held, as stored.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto held, outbox_->Query({}));
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].payload, anomaly);
}

// Every read is in the access audit before its answer; a read the audit cannot record is
// refused with no records in it.
TEST_F(EdgeApiTest, EachRecordsReadIsAuditedAndAnUnwritableAuditRefusesTheRead) {
  std::vector<std::string> lines;
  Status audit_status;
  options_.audit = [&](std::string_view line) {
    if (audit_status.ok()) lines.emplace_back(line);
    return audit_status;
  };
  MakeApi();
  ASSERT_EQ(Call("POST", "/v1/feedback", R"({"request_id":"r-1","model":"pump","label":1})").status,
            200);
  caller_ = Client("auditor", auth::RoleBit(auth::Role::kRead) | auth::RoleBit(auth::Role::kAdmin));
  HttpResponse raw = Call("GET", "/v1/records");
  ASSERT_EQ(raw.status, 200) << raw.body;
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], R"({"v":1,"time_ms":1700000000000,"event":"records_read",)"
                      R"("credential":"auditor","access":"raw","policy":"-","listed":1,)"
                      R"("withheld":0})");
  caller_ = Client("reader", auth::RoleBit(auth::Role::kRead));
  ASSERT_EQ(Call("GET", "/v1/records").status, 200);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[1].find(R"("credential":"reader","access":"filtered","policy":"none",)"
                          R"("listed":0,"withheld":1)"),
            std::string::npos)
      << lines[1];

  audit_status = UnavailableError("disk full");
  caller_ = Client("auditor", auth::RoleBit(auth::Role::kRead) | auth::RoleBit(auth::Role::kAdmin));
  HttpResponse refused = Call("GET", "/v1/records");
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(ReasonOf(refused), "audit_unavailable");
  EXPECT_EQ(refused.body.find("r-1"), std::string::npos) << refused.body;
  EXPECT_EQ(lines.size(), 2u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto held, outbox_->Query({}));
  EXPECT_EQ(held.size(), 1u);
}

}  // namespace
}  // namespace outpost::serve
