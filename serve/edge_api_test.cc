// The /v1 edge API on a real outbox file: feedback stored durably and read back, local
// queries with their filters and bounds, the outbox's state, and clear 4xx answers for bad
// bodies and queries.
#include "serve/edge_api.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/clock.h"
#include "base/json/json.h"
#include "base/testing/test_util.h"
#include "outbox/outbox.h"

namespace outpost::serve {
namespace {

using testing::TempDir;

class EdgeApiTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(uint64_t max_bytes = uint64_t{1} << 30) {
    api_.reset();
    outbox_.reset();
    OUTPOST_ASSERT_OK_AND_ASSIGN(outbox_, outbox::Outbox::Open({.path = dir_.File("outbox.db"),
                                                                .site_id = "site-1",
                                                                .node_id = "node-1",
                                                                .max_bytes = max_bytes,
                                                                .clock = &clock_}));
    api_ = std::make_unique<EdgeApi>(EdgeApiOptions{.outbox = outbox_.get(), .clock = &clock_});
  }

  HttpResponse Call(std::string_view method, std::string_view target, std::string body = {}) {
    HttpRequest request{.method = method, .target = target, .body = std::move(body)};
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

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<outbox::Outbox> outbox_;
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
            R"("note":"bearing","time_ms":1700000000000})");
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
  // A bound that holds one feedback record but not two (feedback is never evicted).
  Open(/*max_bytes=*/200);
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
  EXPECT_GT(o["autonomy_days"].GetDouble().value(), 0.0);
  EXPECT_FALSE(o["failed"].GetBool().value());
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

}  // namespace
}  // namespace outpost::serve
