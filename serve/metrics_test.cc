// GET /metrics (Prometheus text) and the statistics extension, scraped after known traffic.
#include "serve/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>

#include "base/testing/test_util.h"
#include "serve/handler.h"
#include "serve/testing/fake_models.h"

namespace outpost::serve {
namespace {

using engine::DataType;
using testing::AddSubModel;
using testing::FailingModel;
using ::testing::HasSubstr;
using testing::ReadyServable;

class MetricsTest : public ::testing::Test {
 protected:
  MetricsTest()
      : repository_(ModelRepository::FromModels(
            {ReadyServable("simple", {{1, std::make_shared<AddSubModel>(DataType::kInt32)},
                                      {2, std::make_shared<AddSubModel>(DataType::kInt32)}}),
             ReadyServable("failing",
                           {{1, std::make_shared<FailingModel>(InternalError("exploded"))}}),
             ReadyServable("we\"ird", {{3, std::make_shared<AddSubModel>(DataType::kInt32)}})})),
        handler_(*repository_, {}) {}

  HttpResponse Call(std::string_view method, std::string_view target, std::string body = "") {
    HttpRequest request{.method = method, .target = target, .body = std::move(body)};
    HttpResponse response;
    handler_.Handle(request, response);
    return response;
  }
  // An INT32 add/sub request of `rows` rows.
  static std::string Rows(int rows) {
    std::string data;
    for (int i = 0; i < rows * 4; ++i) data += (i ? "," : "") + std::to_string(i);
    const std::string shape = "[" + std::to_string(rows) + ",4]";
    return R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":)" + shape + R"(,"data":[)" +
           data + R"(]},{"name":"INPUT1","datatype":"INT32","shape":)" + shape + R"(,"data":[)" +
           data + "]}]}";
  }

  // Parses the exposition text: every line must be a comment, blank, or
  // `name{labels} value`. Returns series (name with labels as written) -> value.
  static std::map<std::string, double> Parse(const std::string& text) {
    static const std::regex kSample(
        R"(^([a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})?) )"
        R"(([-+]?[0-9.]+([eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN)$)");
    std::map<std::string, double> series;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') {
        if (!line.empty()) {
          EXPECT_TRUE(line.starts_with("# HELP ") || line.starts_with("# TYPE ")) << line;
        }
        continue;
      }
      std::smatch m;
      if (!std::regex_match(line, m, kSample)) {
        ADD_FAILURE() << "not a sample line: " << line;
        continue;
      }
      series[m[1].str()] = std::stod(m[5].str());
    }
    return series;
  }

  std::unique_ptr<ModelRepository> repository_;
  Handler handler_;
};

TEST_F(MetricsTest, CountsAddUpAfterKnownTrafficIncludingFailures) {
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(Call("POST", "/v2/models/simple/infer", Rows(3)).status, 200);
  EXPECT_EQ(Call("POST", "/v2/models/simple/versions/1/infer", Rows(2)).status, 200);
  EXPECT_EQ(Call("POST", "/v2/models/simple/infer", "{not json").status, 400);
  EXPECT_EQ(Call("POST", "/v2/models/simple/infer", R"({"inputs":[]})").status, 400);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Call("POST", "/v2/models/failing/infer",
                   R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]})")
                  .status,
              500);
  }
  // Requests that never reach a model version are not counted against one.
  EXPECT_EQ(Call("POST", "/v2/models/nope/infer", Rows(1)).status, 404);
  // Labelled answers (counted by serve::LabelTally from POST /v1/feedback) of version 2.
  Result<ModelHandle> simple2 = repository_->Find("simple", 2);
  ASSERT_TRUE(simple2.ok());
  simple2->stats->labelled += 7;
  simple2->stats->correct += 5;

  HttpResponse r = Call("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  std::map<std::string, double> m = Parse(r.body);
  const std::string v2 = R"({model="simple",version="2"})";
  const std::string v1 = R"({model="simple",version="1"})";
  const std::string f1 = R"({model="failing",version="1"})";
  EXPECT_EQ(m["outpost_inference_request_success_total" + v2], 5);
  EXPECT_EQ(m["outpost_inference_request_failure_total" + v2], 2);
  EXPECT_EQ(m["outpost_inference_count_total" + v2], 15);
  EXPECT_EQ(m["outpost_inference_exec_count_total" + v2], 5);
  EXPECT_EQ(m["outpost_inference_labelled_total" + v2], 7);
  EXPECT_EQ(m["outpost_inference_correct_total" + v2], 5);
  EXPECT_EQ(m["outpost_inference_labelled_total" + v1], 0);
  EXPECT_EQ(m["outpost_inference_request_success_total" + v1], 1);
  EXPECT_EQ(m["outpost_inference_count_total" + v1], 2);
  EXPECT_EQ(m["outpost_inference_request_failure_total" + f1], 4);
  EXPECT_EQ(m["outpost_inference_request_success_total" + f1], 0);
  EXPECT_EQ(m["outpost_inference_queue_depth" + v2], 0);
  EXPECT_EQ(m[R"(outpost_inference_request_success_total{model="we\"ird",version="3"})"], 0);
  for (const char* h :
       {"outpost_inference_request_duration_us", "outpost_inference_queue_duration_us",
        "outpost_inference_compute_duration_us"}) {
    const std::string name(h);
    EXPECT_EQ(m[name + R"(_bucket{model="simple",version="2",le="+Inf"})"], 5) << name;
    EXPECT_EQ(m[name + "_count" + v2], 5) << name;
    // Cumulative buckets never decrease.
    double previous = 0;
    for (uint64_t le : kDurationBucketsUs) {
      const double v =
          m[name + R"(_bucket{model="simple",version="2",le=")" + std::to_string(le) + "\"}"];
      EXPECT_GE(v, previous) << name << " le=" << le;
      previous = v;
    }
  }
  // Every request took time; none waited in a queue.
  EXPECT_GT(m["outpost_inference_request_duration_us_sum" + v2], 0);
  EXPECT_EQ(m["outpost_inference_queue_duration_us_sum" + v2], 0);
}

TEST_F(MetricsTest, StatisticsExtensionHasTritonsShapeAndTheSameCounts) {
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(Call("POST", "/v2/models/simple/infer", Rows(2)).status, 200);
  EXPECT_EQ(Call("POST", "/v2/models/simple/infer", "[]").status, 400);

  HttpResponse one = Call("GET", "/v2/models/simple/versions/2/stats");
  ASSERT_EQ(one.status, 200);
  EXPECT_THAT(one.body,
              HasSubstr(R"({"model_stats":[{"name":"simple","version":"2","last_inference":)"));
  EXPECT_THAT(
      one.body,
      HasSubstr(
          R"("inference_count":6,"execution_count":3,"inference_stats":{"success":{"count":3,"ns":)"));
  EXPECT_THAT(one.body, HasSubstr(R"("fail":{"count":1,"ns":)"));
  EXPECT_THAT(one.body, HasSubstr(R"("queue":{"count":3,"ns":0})"));
  EXPECT_THAT(one.body, HasSubstr(R"("compute_infer":{"count":3,"ns":)"));
  EXPECT_THAT(one.body, HasSubstr(R"("compute_output":{"count":3,"ns":)"));
  EXPECT_THAT(one.body, HasSubstr(R"("batch_stats":[])"));
  EXPECT_THAT(one.body, ::testing::Not(HasSubstr(R"("version":"1")")));

  HttpResponse all_versions = Call("GET", "/v2/models/simple/stats");
  ASSERT_EQ(all_versions.status, 200);
  EXPECT_THAT(all_versions.body,
              HasSubstr(R"("name":"simple","version":"1","last_inference":0,"inference_count":0)"));
  EXPECT_THAT(all_versions.body, HasSubstr(R"("version":"2")"));

  HttpResponse every = Call("GET", "/v2/models/stats");
  ASSERT_EQ(every.status, 200);
  EXPECT_THAT(every.body, HasSubstr(R"("name":"failing")"));

  EXPECT_EQ(Call("GET", "/v2/models/nope/stats").status, 404);
  EXPECT_EQ(Call("GET", "/v2/models/simple/versions/7/stats").status, 404);
  EXPECT_EQ(Call("POST", "/v2/models/simple/stats").status, 405);
  EXPECT_EQ(Call("POST", "/metrics").status, 405);
}

TEST_F(MetricsTest, RunInferenceWithoutARecorderStillCountsTheRequest) {
  // The gRPC front end calls this form.
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle h, repository_->Find("simple", 1));
  ASSERT_NE(h.stats, nullptr);
  InferRequest request;
  request.inputs.resize(2);
  request.inputs[0].name = "INPUT0";
  request.inputs[1].name = "INPUT1";
  for (InferInput& input : request.inputs) {
    input.tensor = engine::Tensor(DataType::kInt32, {4, 4});
  }
  std::vector<engine::Tensor> outputs;
  std::vector<OutputRef> selected;
  OUTPOST_ASSERT_OK(RunInference(h, request, outputs, selected));
  EXPECT_EQ(h.stats->success.count.load(), 1u);
  EXPECT_EQ(h.stats->inference_count.load(), 4u);
  EXPECT_EQ(h.stats->execution_count.load(), 1u);
  EXPECT_GT(h.stats->last_inference_ms.load(), 0u);
}

}  // namespace
}  // namespace outpost::serve
