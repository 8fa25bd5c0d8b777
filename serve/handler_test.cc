#include "serve/handler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/auth/auth.h"
#include "base/http/server.h"
#include "base/testing/test_util.h"
#include "serve/testing/fake_models.h"

namespace outpost::serve {
namespace {

using engine::DataType;
using ::testing::HasSubstr;
using testing::AddSubModel;
using testing::BrokenServable;
using testing::EchoModel;
using testing::FailingModel;
using testing::ReadyServable;

std::shared_ptr<const engine::Model> Echo(DataType type) {
  return std::make_shared<EchoModel>(type);
}

std::vector<std::shared_ptr<const ServableModel>> ReadyModels() {
  auto simple = std::make_shared<AddSubModel>(DataType::kInt32);
  return {
      ReadyServable("simple", {{1, simple}, {2, simple}}),
      ReadyServable("simple_fp32", {{1, std::make_shared<AddSubModel>(DataType::kFp32)}}),
      ReadyServable("echo_bool", {{1, Echo(DataType::kBool)}}),
      ReadyServable("echo_uint8", {{1, Echo(DataType::kUint8)}}),
      ReadyServable("echo_uint16", {{1, Echo(DataType::kUint16)}}),
      ReadyServable("echo_uint32", {{1, Echo(DataType::kUint32)}}),
      ReadyServable("echo_uint64", {{1, Echo(DataType::kUint64)}}),
      ReadyServable("echo_int8", {{1, Echo(DataType::kInt8)}}),
      ReadyServable("echo_int16", {{1, Echo(DataType::kInt16)}}),
      ReadyServable("echo_int32", {{1, Echo(DataType::kInt32)}}),
      ReadyServable("echo_int64", {{1, Echo(DataType::kInt64)}}),
      ReadyServable("echo_fp16", {{1, Echo(DataType::kFp16)}}),
      ReadyServable("echo_fp32", {{1, Echo(DataType::kFp32)}}),
      ReadyServable("echo_fp64", {{1, Echo(DataType::kFp64)}}),
      ReadyServable("echo_bytes", {{1, Echo(DataType::kBytes)}}),
      ReadyServable("failing",
                    {{1, std::make_shared<FailingModel>(InternalError("backend exploded"))}}),
      ReadyServable("rejecting",
                    {{1, std::make_shared<FailingModel>(InvalidArgumentError("NaN in row 0"))}}),
  };
}

class HandlerTest : public ::testing::Test {
 protected:
  HandlerTest()
      : repository_(ModelRepository::FromModels(ReadyModels())),
        handler_(*repository_, {.limits = {.max_body_bytes = 4096,
                                           .max_total_elements = 64,
                                           .max_depth = 8}}) {}

  HttpResponse Call(std::string_view method, std::string_view target, std::string body = "",
                    std::vector<HttpHeader> headers = {}) {
    HttpRequest request{.method = method, .target = target, .headers = std::move(headers),
                        .body = std::move(body)};
    HttpResponse response;
    handler_.Handle(request, response);
    return response;
  }
  HttpResponse Infer(std::string_view model, std::string body) {
    return Call("POST", "/v2/models/" + std::string(model) + "/infer", std::move(body));
  }
  // Infers on echo_<type> with `data` under `shape`; returns the response.
  HttpResponse EchoInfer(std::string_view type_lower, std::string_view type,
                         std::string_view shape, std::string_view data) {
    return Infer("echo_" + std::string(type_lower),
                 R"({"inputs":[{"name":"x","datatype":")" + std::string(type) +
                     R"(","shape":)" + std::string(shape) + R"(,"data":)" + std::string(data) +
                     "}]}");
  }

  std::unique_ptr<ModelRepository> repository_;
  Handler handler_;
};

constexpr std::string_view kSimpleRequest =
    R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]},)"
    R"({"name":"INPUT1","datatype":"INT32","shape":[1,4],"data":[1,1,1,1]}]})";
constexpr std::string_view kSimpleOutputs =
    R"("outputs":[{"name":"OUTPUT0","datatype":"INT32","shape":[1,4],"data":[2,3,4,5]},)"
    R"({"name":"OUTPUT1","datatype":"INT32","shape":[1,4],"data":[0,1,2,3]}]})";

// ---- Routes ----

TEST_F(HandlerTest, RegisteredRoutesNameTheRoleEachPathNeedsAndAllReachTheHandler) {
  http::Router router;
  RegisterRoutes(router, handler_);
  constexpr uint32_t kNotAsked = 0xFFFFFFFF;
  uint32_t asked = kNotAsked;
  router.SetAuthorizer([&asked](const http::Request&, uint32_t access, http::Response&) {
    asked = access;
    return true;
  });
  const uint32_t infer = auth::RoleBit(auth::Role::kInfer);
  const uint32_t admin = auth::RoleBit(auth::Role::kAdmin);
  const uint32_t read = auth::RoleBit(auth::Role::kRead);
  struct Case {
    std::string method;
    std::string target;
    uint32_t access;
    std::string body = "";
  };
  const std::vector<Case> cases = {
      {"GET", "/v2/health/live", 0},
      {"GET", "/v2/health/ready?probe=1", 0},
      {"DELETE", "/v2/health/live", 0},              // the handler's 405
      {"GET", "/v2/health/live/more", infer},        // not a health path: the /v2 prefix
      {"GET", "/v2", infer},
      {"GET", "/v2/", infer},
      {"GET", "/v2/models/simple", infer},
      {"GET", "/v2/models/simple/versions/2/ready", infer},
      {"POST", "/v2/models/simple/infer", infer, std::string(kSimpleRequest)},
      {"GET", "/v2/models/stats", infer},
      {"GET", "/v2/nothing", infer},                 // the handler's 404
      {"POST", "/v2/repository/index", admin, "{}"},
      {"POST", "/v2/repository/models/simple/unload", admin},
      {"GET", "/metrics", read},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method + " " + c.target);
    asked = kNotAsked;
    HttpRequest request{.method = c.method, .target = c.target, .body = c.body};
    HttpResponse routed;
    router.Handle(request, routed);
    EXPECT_EQ(asked, c.access);
    HttpResponse direct = Call(c.method, c.target, c.body);
    EXPECT_EQ(routed.status, direct.status);
    EXPECT_EQ(routed.content_type, direct.content_type);
    EXPECT_EQ(routed.body, direct.body);
  }
}

TEST_F(HandlerTest, UnloadIsRefusedByDefaultAndTheModelKeepsServing) {
  HttpResponse refused = Call("POST", "/v2/repository/models/simple/unload", "{}");
  EXPECT_EQ(refused.status, 403);
  EXPECT_THAT(refused.body, HasSubstr(R"("reason":"model_control_disabled")"));
  HttpResponse infer = Infer("simple", std::string(kSimpleRequest));
  EXPECT_EQ(infer.status, 200) << infer.body;
  EXPECT_EQ(Call("GET", "/v2/models/simple/ready").status, 200);
}

TEST_F(HandlerTest, ServerMetadataNamesOutpostAndItsVersion) {
  for (std::string_view target : {"/v2", "/v2/"}) {
    HttpResponse r = Call("GET", target);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(r.body, R"({"name":"outpost","version":"0.1.0","extensions":["binary_tensor_data","model_repository","statistics"]})");
  }
}

TEST_F(HandlerTest, ServerMetadataReportsTheConfiguredNameAndVersion) {
  Handler custom(*repository_, {.server_name = "site-7", .server_version = "9.9"});
  HttpRequest request{.method = "GET", .target = "/v2"};
  HttpResponse r;
  custom.Handle(request, r);
  EXPECT_EQ(r.body, R"({"name":"site-7","version":"9.9","extensions":["binary_tensor_data","model_repository","statistics"]})");
}

TEST_F(HandlerTest, LiveIsAlwaysTrue) {
  HttpResponse r = Call("GET", "/v2/health/live");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"live":true})");
}

TEST_F(HandlerTest, ReadyWhenEveryModelIsLoaded) {
  HttpResponse r = Call("GET", "/v2/health/ready");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"ready":true})");
}

TEST_F(HandlerTest, NotReadyWhileAModelFailedToLoadAndSaysWhich) {
  auto models = ReadyModels();
  models.push_back(BrokenServable("broken", 3, "model.json is missing"));
  auto repository = ModelRepository::FromModels(std::move(models));
  Handler handler(*repository, {});
  HttpRequest request{.method = "GET", .target = "/v2/health/ready"};
  HttpResponse r;
  handler.Handle(request, r);
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr(R"({"error":"the server is not ready: model \"broken\")"));
  EXPECT_THAT(r.body, HasSubstr("model.json is missing"));
}

TEST_F(HandlerTest, QueryStringIsIgnored) {
  EXPECT_EQ(Call("GET", "/v2/health/live?verbose=1").status, 200);
}

TEST_F(HandlerTest, ModelMetadataListsVersionsAsStringsAndVariableDimsAsMinusOne) {
  HttpResponse r = Call("GET", "/v2/models/simple");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            R"({"name":"simple","versions":["1","2"],"platform":"fake_addsub",)"
            R"("inputs":[{"name":"INPUT0","datatype":"INT32","shape":[-1,4]},)"
            R"({"name":"INPUT1","datatype":"INT32","shape":[-1,4]}],)"
            R"("outputs":[{"name":"OUTPUT0","datatype":"INT32","shape":[-1,4]},)"
            R"({"name":"OUTPUT1","datatype":"INT32","shape":[-1,4]}]})");
  EXPECT_EQ(Call("GET", "/v2/models/simple/versions/1").body, r.body);
}

TEST_F(HandlerTest, UnknownModelIs404) {
  HttpResponse r = Call("GET", "/v2/models/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":"unknown model \"nope\"","reason":"not_found"})");
  EXPECT_EQ(Call("GET", "/v2/models/nope/ready").status, 404);
  EXPECT_EQ(Infer("nope", std::string(kSimpleRequest)).status, 404);
}

TEST_F(HandlerTest, UnknownOrMalformedVersionIs404) {
  EXPECT_EQ(Call("GET", "/v2/models/simple/versions/9").status, 404);
  EXPECT_EQ(Call("GET", "/v2/models/simple/versions/9/ready").status, 404);
  EXPECT_EQ(Call("GET", "/v2/models/simple/versions/abc").status, 404);
  EXPECT_EQ(Call("GET", "/v2/models/simple/versions/-1").status, 404);
  EXPECT_EQ(Call("GET", "/v2/models/simple/versions/99999999999999999999999").status, 404);
  EXPECT_EQ(Call("GET", "/v2/models/simple/versions/").status, 404);
}

TEST_F(HandlerTest, UnknownPathsAre404) {
  for (std::string_view target :
       {"/", "/v1/models/simple", "/v2x", "/v2/health", "/v2/health/live/", "/v2/models",
        "/v2/models/", "/v2/models/simple/", "/v2/models/simple/config",
        "/v2/models/simple/infer/x", "/v2/models/simple/versions/1/infer/x",
        "/v2/models/simple/versions/1/ready/"}) {
    HttpResponse r = Call("GET", target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_THAT(r.body, HasSubstr(R"({"error":"no such path)")) << target;
  }
}

TEST_F(HandlerTest, ModelReadyAnswersNameAndReady) {
  HttpResponse r = Call("GET", "/v2/models/simple/ready");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"name":"simple","ready":true})");
  EXPECT_EQ(Call("GET", "/v2/models/simple/versions/2/ready").status, 200);
}

TEST_F(HandlerTest, ModelThatFailedToLoadIs503EverywhereWithItsReason) {
  auto models = ReadyModels();
  models.push_back(BrokenServable("broken", 3, "model.json is missing"));
  auto repository = ModelRepository::FromModels(std::move(models));
  Handler handler(*repository, {});
  for (std::string_view target :
       {"/v2/models/broken/ready", "/v2/models/broken", "/v2/models/broken/versions/3/ready"}) {
    HttpRequest request{.method = "GET", .target = target};
    HttpResponse r;
    handler.Handle(request, r);
    EXPECT_EQ(r.status, 503) << target;
    EXPECT_THAT(r.body, HasSubstr("error")) << target;
  }
  HttpRequest infer{.method = "POST", .target = "/v2/models/broken/versions/3/infer",
                    .body = R"({"inputs":[]})"};
  HttpResponse r;
  handler.Handle(infer, r);
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("model.json is missing"));
}

TEST_F(HandlerTest, WrongMethodIs405WithAllow) {
  struct Case {
    std::string_view method, target, allow;
  };
  for (const Case& c : {Case{"POST", "/v2", "GET"}, Case{"DELETE", "/v2/health/live", "GET"},
                        Case{"POST", "/v2/health/ready", "GET"},
                        Case{"PUT", "/v2/models/simple", "GET"},
                        Case{"POST", "/v2/models/simple/ready", "GET"},
                        Case{"GET", "/v2/models/simple/infer", "POST"},
                        Case{"HEAD", "/v2/models/simple/versions/1/infer", "POST"}}) {
    HttpResponse r = Call(c.method, c.target);
    EXPECT_EQ(r.status, 405) << c.method << " " << c.target;
    EXPECT_THAT(r.body, HasSubstr("is not allowed here"));
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0].first, "Allow");
    EXPECT_EQ(r.headers[0].second, c.allow);
  }
}

// ---- Inference ----

TEST_F(HandlerTest, InferWithoutVersionUsesTheHighestReadyVersion) {
  HttpResponse r = Infer("simple", std::string(kSimpleRequest));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body,
            R"({"model_name":"simple","model_version":"2",)" + std::string(kSimpleOutputs));
}

// The completion of one RunInferenceAsync call: its status and the thread it came on.
struct AsyncOutcome {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Status> status;
  std::thread::id thread;

  std::function<void(Status)> Callback() {
    return [this](Status s) {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_FALSE(status.has_value()) << "called twice";
      status = std::move(s);
      thread = std::this_thread::get_id();
      cv.notify_all();
    };
  }
  Status Wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return status.has_value(); });
    return *status;
  }
};

TEST_F(HandlerTest, RunInferenceAsyncCompletesOnTheSchedulersThread) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle handle, repository_->Find("simple", std::nullopt));
  ASSERT_NE(handle.scheduler, nullptr);
  const uint64_t runs = handle.stats->execution_count.load();
  InferRequest request;
  OUTPOST_ASSERT_OK(ParseInferRequest(std::string(kSimpleRequest), {}, request));
  std::vector<engine::Tensor> outputs;
  std::vector<OutputRef> selected;
  InferenceRecorder recorder(handle.stats);
  AsyncOutcome outcome;
  RunInferenceAsync(handle, request, outputs, selected, &recorder, nullptr, outcome.Callback());
  OUTPOST_ASSERT_OK(outcome.Wait());
  recorder.Finish(true);
  EXPECT_NE(outcome.thread, std::this_thread::get_id());
  ASSERT_EQ(selected.size(), 2u);
  EXPECT_EQ(selected[0].name, "OUTPUT0");
  EXPECT_EQ(selected[0].tensor, &outputs[0]);
  EXPECT_EQ(handle.stats->execution_count.load(), runs + 1);
}

TEST_F(HandlerTest, RunInferenceAsyncRefusesABadRequestOnTheCallersThread) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle handle, repository_->Find("simple", std::nullopt));
  const uint64_t runs = handle.stats->execution_count.load();
  InferRequest request;
  OUTPOST_ASSERT_OK(ParseInferRequest(
      std::string(R"({"inputs":[{"name":"nope","datatype":"INT32","shape":[1],"data":[1]}]})"),
      {}, request));
  std::vector<engine::Tensor> outputs;
  std::vector<OutputRef> selected;
  AsyncOutcome outcome;
  RunInferenceAsync(handle, request, outputs, selected, nullptr, nullptr, outcome.Callback());
  {
    std::lock_guard<std::mutex> lock(outcome.mu);
    ASSERT_TRUE(outcome.status.has_value());  // before RunInferenceAsync returned
  }
  EXPECT_EQ(outcome.thread, std::this_thread::get_id());
  EXPECT_EQ(outcome.Wait().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(outcome.Wait().message(), HasSubstr("unexpected input \"nope\""));
  // Nothing ran.
  EXPECT_TRUE(outputs.empty());
  EXPECT_EQ(handle.stats->execution_count.load(), runs);
}

TEST_F(HandlerTest, InferOnANamedVersionAnswersThatVersion) {
  HttpResponse r =
      Call("POST", "/v2/models/simple/versions/1/infer", std::string(kSimpleRequest));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            R"({"model_name":"simple","model_version":"1",)" + std::string(kSimpleOutputs));
}

TEST_F(HandlerTest, NestedDataIsFlattenedRowMajor) {
  HttpResponse r = Infer(
      "simple",
      R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[2,4],"data":[[1,2,3,4],[5,6,7,8]]},)"
      R"({"name":"INPUT1","datatype":"INT32","shape":[2,4],"data":[[[1,1]],[[1,1]],[[0,0],[0,0]]]}]})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            R"({"model_name":"simple","model_version":"2","outputs":[)"
            R"({"name":"OUTPUT0","datatype":"INT32","shape":[2,4],"data":[2,3,4,5,5,6,7,8]},)"
            R"({"name":"OUTPUT1","datatype":"INT32","shape":[2,4],"data":[0,1,2,3,5,6,7,8]}]})");
}

TEST_F(HandlerTest, Fp32IsWrittenInItsShortestRoundTripForm) {
  HttpResponse r = Infer(
      "simple_fp32",
      R"({"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,4],"data":[0.1,1.5,-2,3.4028235e38]},)"
      R"({"name":"INPUT1","datatype":"FP32","shape":[1,4],"data":[0.2,0,1e-45,0]}]})");
  EXPECT_EQ(r.status, 200) << r.body;
  // 0.1f + 0.2f is 0.3f rounded up one ulp: 0.30000001.
  EXPECT_EQ(r.body,
            R"({"model_name":"simple_fp32","model_version":"1","outputs":[)"
            R"({"name":"OUTPUT0","datatype":"FP32","shape":[1,4],"data":[0.3,1.5,-2,3.4028235e+38]},)"
            R"({"name":"OUTPUT1","datatype":"FP32","shape":[1,4],"data":[-0.1,1.5,-2,3.4028235e+38]}]})");
}

TEST_F(HandlerTest, EveryNumericDatatypeRoundTripsItsExtremes) {
  struct Case {
    std::string_view lower, type, data;
  };
  for (const Case& c : {
           Case{"uint8", "UINT8", "[0,255]"},
           Case{"uint16", "UINT16", "[0,65535]"},
           Case{"uint32", "UINT32", "[0,4294967295]"},
           Case{"uint64", "UINT64", "[0,18446744073709551615]"},
           Case{"int8", "INT8", "[-128,127]"},
           Case{"int16", "INT16", "[-32768,32767]"},
           Case{"int32", "INT32", "[-2147483648,2147483647]"},
           Case{"int64", "INT64", "[-9223372036854775808,9223372036854775807]"},
           Case{"fp32", "FP32", "[-3.4028235e+38,1e-45]"},
           Case{"fp64", "FP64", "[-1.7976931348623157e+308,5e-324]"},
       }) {
    HttpResponse r = EchoInfer(c.lower, c.type, "[2]", c.data);
    EXPECT_EQ(r.status, 200) << c.type << ": " << r.body;
    EXPECT_EQ(r.body, R"({"model_name":"echo_)" + std::string(c.lower) +
                          R"(","model_version":"1","outputs":[{"name":"y","datatype":")" +
                          std::string(c.type) + R"(","shape":[2],"data":)" +
                          std::string(c.data) + "}]}")
        << c.type;
  }
}

TEST_F(HandlerTest, BoolRoundTripsAsTrueAndFalse) {
  HttpResponse r = EchoInfer("bool", "BOOL", "[3]", "[true,false,true]");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            R"({"model_name":"echo_bool","model_version":"1","outputs":[)"
            R"({"name":"y","datatype":"BOOL","shape":[3],"data":[true,false,true]}]})");
}

TEST_F(HandlerTest, BoolRejectsNumbers) {
  HttpResponse r = EchoInfer("bool", "BOOL", "[2]", "[1,0]");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("element 0 of \\\"data\\\" is a number but BOOL needs a boolean"));
}

TEST_F(HandlerTest, NullIsAMissingFloatAndComesBackAsNull) {
  HttpResponse r = EchoInfer("fp32", "FP32", "[3]", "[1.5,null,-2]");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"model_name":"echo_fp32","model_version":"1","outputs":[)"
                    R"({"name":"y","datatype":"FP32","shape":[3],"data":[1.5,null,-2]}]})");
  EXPECT_EQ(EchoInfer("fp64", "FP64", "[1]", "[null]").status, 200);
  HttpResponse integer = EchoInfer("int32", "INT32", "[1]", "[null]");
  EXPECT_EQ(integer.status, 400);
  EXPECT_THAT(integer.body, HasSubstr("is null but INT32 needs an integer"));
}

TEST_F(HandlerTest, BytesRoundTripAsEscapedStrings) {
  HttpResponse r =
      EchoInfer("bytes", "BYTES", "[4]", R"(["plain","caf\u00e9","quote\" and \\","line\n"])");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"model_name\":\"echo_bytes\",\"model_version\":\"1\",\"outputs\":["
                    "{\"name\":\"y\",\"datatype\":\"BYTES\",\"shape\":[4],\"data\":"
                    "[\"plain\",\"caf\xC3\xA9\",\"quote\\\" and \\\\\",\"line\\n\"]}]}");
}

TEST_F(HandlerTest, BytesRejectsNonStrings) {
  HttpResponse r = EchoInfer("bytes", "BYTES", "[1]", "[5]");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("BYTES needs a string"));
}

TEST_F(HandlerTest, Fp16AndBf16InJsonAreRejectedPointingAtBinaryData) {
  for (std::string_view type : {"FP16", "BF16"}) {
    HttpResponse r = EchoInfer("fp16", type, "[1]", "[1.0]");
    EXPECT_EQ(r.status, 400);
    EXPECT_THAT(r.body, HasSubstr("cannot be carried in JSON; use binary tensor data"));
  }
}

TEST_F(HandlerTest, OutOfRangeIntegersAreRejectedNotTruncated) {
  struct Case {
    std::string_view lower, type, data, why;
  };
  for (const Case& c : {
           Case{"int8", "INT8", "[128]", "(128) is out of range for INT8"},
           Case{"int8", "INT8", "[-129]", "(-129) is out of range for INT8"},
           Case{"uint8", "UINT8", "[-1]", "(-1) is out of range for UINT8"},
           Case{"uint16", "UINT16", "[65536]", "out of range for UINT16"},
           Case{"int32", "INT32", "[2147483648]", "out of range for INT32"},
           Case{"uint32", "UINT32", "[4294967296]", "out of range for UINT32"},
           Case{"int64", "INT64", "[9223372036854775808]", "out of range for INT64"},
           Case{"fp32", "FP32", "[3.5e38]", "out of range for FP32"},
       }) {
    HttpResponse r = EchoInfer(c.lower, c.type, "[1]", c.data);
    EXPECT_EQ(r.status, 400) << c.type << " " << c.data;
    EXPECT_THAT(r.body, HasSubstr(c.why)) << r.body;
  }
}

TEST_F(HandlerTest, IntegersMustNotHaveAFraction) {
  for (std::string_view data : {"[1.5]", "[1.0]", "[1e2]"}) {
    HttpResponse r = EchoInfer("int32", "INT32", "[1]", data);
    EXPECT_EQ(r.status, 400) << data;
    EXPECT_THAT(r.body, HasSubstr("is not an integer; INT32 needs an integer")) << r.body;
  }
  HttpResponse r = EchoInfer("int64", "INT64", "[1]", R"(["7"])");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("is a string but INT64 needs an integer"));
}

TEST_F(HandlerTest, ElementCountMustMatchTheShape) {
  HttpResponse fewer = EchoInfer("int32", "INT32", "[3]", "[1,2]");
  EXPECT_EQ(fewer.status, 400);
  EXPECT_THAT(fewer.body,
              HasSubstr("shape does not match true shape of \\\"data\\\": shape [3] has 3 "
                        "elements but \\\"data\\\" has 2"));
  HttpResponse more = EchoInfer("int32", "INT32", "[3]", "[[1,2],[3,4]]");
  EXPECT_EQ(more.status, 400);
  EXPECT_THAT(more.body, HasSubstr("shape [3] has 3 elements but \\\"data\\\" has 4"));
  // More elements than the body has bytes is caught before anything is allocated for them.
  HttpResponse huge = EchoInfer("int32", "INT32", "[60]", "[1]");
  EXPECT_EQ(huge.status, 400);
  EXPECT_THAT(huge.body, HasSubstr("has 60 elements but \\\"data\\\" has 1"));
}

TEST_F(HandlerTest, UnknownDatatypeIsRejected) {
  HttpResponse r = EchoInfer("fp32", "FLOAT", "[1]", "[1]");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("unknown datatype \\\"FLOAT\\\""));
}

TEST_F(HandlerTest, DatatypeOtherThanTheModelsIsRejected) {
  HttpResponse r = EchoInfer("fp32", "FP64", "[1]", "[1]");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("\\\"x\\\""));
}

TEST_F(HandlerTest, UnknownInputIsRejected) {
  HttpResponse r = Infer("echo_fp32",
                         R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]},)"
                         R"({"name":"z","datatype":"FP32","shape":[1],"data":[1]}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error":"unexpected input \"z\" for model \"echo_fp32\"","reason":"invalid_argument"})");
}

TEST_F(HandlerTest, MissingInputIsRejected) {
  HttpResponse r = Infer(
      "simple", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error":"missing input \"INPUT1\" for model \"simple\"","reason":"invalid_argument"})");
}

TEST_F(HandlerTest, InputGivenTwiceIsRejected) {
  HttpResponse r = Infer("echo_fp32",
                         R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]},)"
                         R"({"name":"x","datatype":"FP32","shape":[1],"data":[1]}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("given twice"));
}

TEST_F(HandlerTest, WrongShapeIsRejected) {
  HttpResponse r = Infer(
      "simple",
      R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[2,2],"data":[1,2,3,4]},)"
      R"({"name":"INPUT1","datatype":"INT32","shape":[1,4],"data":[1,1,1,1]}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("INPUT0"));
  EXPECT_THAT(r.body, HasSubstr("[2, 2]"));
}

TEST_F(HandlerTest, InputsThatDisagreeOnTheBatchAreRejected) {
  HttpResponse r = Infer(
      "simple",
      R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]},)"
      R"({"name":"INPUT1","datatype":"INT32","shape":[2,4],"data":[1,1,1,1,1,1,1,1]}]})");
  EXPECT_EQ(r.status, 400);
}

TEST_F(HandlerTest, BadShapesAreRejected) {
  for (std::string_view shape : {"[-1]", "[1.5]", "\"1\"", "[\"1\"]", "{}"}) {
    HttpResponse r = EchoInfer("fp32", "FP32", shape, "[1]");
    EXPECT_EQ(r.status, 400) << shape;
    EXPECT_THAT(r.body, HasSubstr("\\\"shape\\\"")) << r.body;
  }
  std::string rank_40 = "[1";
  for (int i = 1; i < 40; ++i) rank_40 += ",1";
  rank_40 += "]";
  HttpResponse rank = EchoInfer("fp32", "FP32", rank_40, "[1]");
  EXPECT_EQ(rank.status, 400);
  EXPECT_THAT(rank.body, HasSubstr("more than 32 dimensions"));
}

TEST_F(HandlerTest, MalformedJsonIsRejected) {
  for (std::string_view body : {"", "{", "{\"inputs\":[}", "nul", "{\"inputs\":[]}x",
                                "\xff\xfe", "[1,2]", "\"text\""}) {
    HttpResponse r = Infer("echo_fp32", std::string(body));
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_THAT(r.body, HasSubstr("\"error\":")) << body;
  }
  EXPECT_THAT(Infer("echo_fp32", "{").body, HasSubstr("malformed JSON"));
}

TEST_F(HandlerTest, MissingOrMistypedFieldsAreRejectedByName) {
  struct Case {
    std::string_view body, why;
  };
  for (const Case& c : {
           Case{R"({})", "the request has no \\\"inputs\\\""},
           Case{R"({"inputs":{}})", "\\\"inputs\\\" must be an array"},
           Case{R"({"inputs":[5]})", "input 0 must be an object"},
           Case{R"({"inputs":[{"datatype":"FP32","shape":[1],"data":[1]}]})",
                "input 0 has no \\\"name\\\""},
           Case{R"({"inputs":[{"name":"x","shape":[1],"data":[1]}]})", "has no \\\"datatype\\\""},
           Case{R"({"inputs":[{"name":"x","datatype":"FP32","data":[1]}]})", "has no \\\"shape\\\""},
           Case{R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1]}]})", "has no \\\"data\\\""},
           Case{R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":1}]})",
                "\\\"data\\\" must be an array"},
           Case{R"({"inputs":[{"name":7,"datatype":"FP32","shape":[1],"data":[1]}]})",
                "\\\"name\\\" must be a string"},
           Case{R"({"id":5,"inputs":[]})", "\\\"id\\\" must be a string"},
           Case{R"({"inputs":[],"inputs":[]})", "key \\\"inputs\\\" appears twice"},
           Case{R"({"inputs":[],"outputs":[{}]})", "requested output 0 has no \\\"name\\\""},
           Case{R"({"inputs":[],"outputs":{}})", "\\\"outputs\\\" must be an array"},
       }) {
    HttpResponse r = Infer("echo_fp32", std::string(c.body));
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_THAT(r.body, HasSubstr(c.why)) << c.body << " -> " << r.body;
  }
}

TEST_F(HandlerTest, JsonNestedDeeperThanTheLimitIsRejected) {
  // The limit is 8; data of rank 5 nests 8 deep, rank 6 nests 9.
  HttpResponse ok = EchoInfer("fp32", "FP32", "[1]", "[[[[[1]]]]]");
  EXPECT_EQ(ok.status, 200) << ok.body;
  HttpResponse deep = EchoInfer("fp32", "FP32", "[1]", "[[[[[[1]]]]]]");
  EXPECT_EQ(deep.status, 400);
  EXPECT_THAT(deep.body, HasSubstr("nests deeper than 8 levels"));
  HttpResponse very_deep = Infer("echo_fp32", std::string(3000, '['));
  EXPECT_EQ(very_deep.status, 400);
}

TEST_F(HandlerTest, BodyLargerThanTheLimitIs413) {
  std::string body = R"({"inputs":[],"pad":")" + std::string(5000, 'x') + "\"}";
  HttpResponse r = Infer("echo_fp32", body);
  EXPECT_EQ(r.status, 413);
  EXPECT_THAT(r.body, HasSubstr("the limit is 4096"));
}

TEST_F(HandlerTest, MoreElementsThanTheLimitIs413) {
  HttpResponse r = EchoInfer("fp32", "FP32", "[65]", "[]");
  EXPECT_EQ(r.status, 413);
  EXPECT_THAT(r.body, HasSubstr("the limit is 64"));
  // The limit counts all inputs together: 2 x 32 passes, 40 + 40 does not.
  auto ones = [](int n) {
    std::string d = "[1";
    for (int i = 1; i < n; ++i) d += ",1";
    return d + "]";
  };
  HttpResponse sum_ok = Infer(
      "simple", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[8,4],"data":)" +
                    ones(32) + R"(},{"name":"INPUT1","datatype":"INT32","shape":[8,4],"data":)" +
                    ones(32) + "}]}");
  EXPECT_EQ(sum_ok.status, 200) << sum_ok.body;
  HttpResponse sum_over = Infer(
      "simple", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[10,4],"data":)" +
                    ones(40) + R"(},{"name":"INPUT1","datatype":"INT32","shape":[10,4],"data":[]}]})");
  EXPECT_EQ(sum_over.status, 413);
  EXPECT_THAT(sum_over.body, HasSubstr("the request's inputs have 80 elements or more"));
}

// A BYTES shape claiming far more strings than the body holds is refused, naming the input,
// before a std::string is allocated per claimed element: billions over the element limit,
// and within the limit a body padded out so that its size alone cannot rule the shape out.
TEST_F(HandlerTest, ABytesShapeTheBodyCannotHoldIsRefusedBeforeAllocating) {
  HttpResponse billions = EchoInfer("bytes", "BYTES", "[4000000000]", R"(["a"])");
  EXPECT_EQ(billions.status, 413) << billions.body;
  EXPECT_THAT(billions.body, HasSubstr("input \\\"x\\\": the request's inputs have"));

  const InferJsonLimits limits{.max_body_bytes = 4 << 20, .max_total_elements = 1 << 20};
  Handler roomy(*repository_, {.limits = limits});
  const std::string padded = R"({"id":")" + std::string(2 << 20, 'p') +
                             R"(","inputs":[{"name":"blob","datatype":"BYTES",)"
                             R"("shape":[1000000],"data":["a","b"]}]})";
  HttpRequest request{.method = "POST", .target = "/v2/models/echo_bytes/infer", .body = padded};
  HttpResponse response;
  roomy.Handle(request, response);
  EXPECT_EQ(response.status, 400) << response.body;
  EXPECT_THAT(response.body, HasSubstr("input \\\"blob\\\""));
  EXPECT_THAT(response.body, HasSubstr("shape [1000000] has 1000000 elements but "
                                       "\\\"data\\\" has 2"));
}

TEST_F(HandlerTest, RequestedOutputsSelectAndOrderTheResponse) {
  std::string body(kSimpleRequest);
  body.insert(body.size() - 1, R"(,"outputs":[{"name":"OUTPUT1"}])");
  HttpResponse r = Infer("simple", body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"model_name":"simple","model_version":"2","outputs":[)"
                    R"({"name":"OUTPUT1","datatype":"INT32","shape":[1,4],"data":[0,1,2,3]}]})");
  std::string both(kSimpleRequest);
  both.insert(both.size() - 1, R"(,"outputs":[{"name":"OUTPUT1"},{"name":"OUTPUT0"}])");
  HttpResponse r2 = Infer("simple", both);
  EXPECT_THAT(r2.body, HasSubstr(R"("outputs":[{"name":"OUTPUT1")"));
}

TEST_F(HandlerTest, EmptyRequestedOutputsMeansAll) {
  std::string body(kSimpleRequest);
  body.insert(body.size() - 1, R"(,"outputs":[])");
  HttpResponse r = Infer("simple", body);
  EXPECT_EQ(r.body,
            R"({"model_name":"simple","model_version":"2",)" + std::string(kSimpleOutputs));
}

TEST_F(HandlerTest, UnknownOrRepeatedRequestedOutputIsRejected) {
  std::string body(kSimpleRequest);
  body.insert(body.size() - 1, R"(,"outputs":[{"name":"OUTPUT9"}])");
  HttpResponse r = Infer("simple", body);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error":"unknown requested output \"OUTPUT9\" for model \"simple\"","reason":"invalid_argument"})");
  std::string twice(kSimpleRequest);
  twice.insert(twice.size() - 1, R"(,"outputs":[{"name":"OUTPUT0"},{"name":"OUTPUT0"}])");
  EXPECT_EQ(Infer("simple", twice).status, 400);
}

TEST_F(HandlerTest, IdIsEchoedOnlyWhenGiven) {
  std::string body(kSimpleRequest);
  body.insert(1, R"("id":"req-\"42\"",)");
  HttpResponse r = Infer("simple", body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"model_name":"simple","model_version":"2","id":"req-\"42\"",)" +
                        std::string(kSimpleOutputs));
  EXPECT_THAT(Infer("simple", std::string(kSimpleRequest)).body,
              ::testing::Not(HasSubstr("\"id\"")));
}

TEST_F(HandlerTest, ParametersOfEveryKindAreAccepted) {
  HttpResponse r = Infer(
      "echo_fp32",
      R"({"id":"p","parameters":{"s":"v","i":-3,"u":18446744073709551615,"d":0.5,"b":true,)"
      R"("binary_data_output":false},)"
      R"("inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],"parameters":{"k":1}}],)"
      R"("outputs":[{"name":"y","parameters":{"binary_data":false}}]})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"model_name":"echo_fp32","model_version":"1","id":"p","outputs":[)"
                    R"({"name":"y","datatype":"FP32","shape":[1],"data":[1]}]})");
}

TEST_F(HandlerTest, ParametersThatAreNotScalarsAreRejected) {
  for (std::string_view params : {R"({"a":null})", R"({"a":[1]})", R"({"a":{}})", "[]"}) {
    HttpResponse r = Infer("echo_fp32", R"({"parameters":)" + std::string(params) +
                                            R"(,"inputs":[]})");
    EXPECT_EQ(r.status, 400) << params;
    EXPECT_THAT(r.body, HasSubstr("parameter")) << r.body;
  }
}

TEST_F(HandlerTest, ExtensionsOutpostDoesNotOfferAreRefusedClearly) {
  HttpResponse shm = Infer(
      "echo_fp32",
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"shared_memory_region":"r"}}]})");
  EXPECT_EQ(shm.status, 400);
  EXPECT_THAT(shm.body, HasSubstr("shared memory is not supported"));
  std::string body(kSimpleRequest);
  body.insert(body.size() - 1, R"(,"outputs":[{"name":"OUTPUT0","parameters":{"classification":2}}])");
  EXPECT_EQ(Infer("simple", body).status, 400);

  HttpResponse gzip = Call("POST", "/v2/models/simple/infer", std::string(kSimpleRequest),
                           {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(gzip.status, 501);
  HttpResponse identity = Call("POST", "/v2/models/simple/infer", std::string(kSimpleRequest),
                               {{"content-encoding", "identity"}});
  EXPECT_EQ(identity.status, 200);
  HttpResponse raw = Call("POST", "/v2/models/echo_fp32/infer", std::string(4, '\0'),
                          {{"Inference-Header-Content-Length", "0"}});
  EXPECT_EQ(raw.status, 501);
  EXPECT_THAT(raw.body, HasSubstr("raw binary requests"));
}

// ---- Binary tensor data ----

// Little-endian bytes of `values`.
template <typename T>
std::string Bytes(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  return out;
}

// A BYTES element in the binary layout.
std::string LengthPrefixed(std::string_view s) {
  uint32_t n = static_cast<uint32_t>(s.size());
  return Bytes<uint32_t>({n}) + std::string(s);
}

TEST_F(HandlerTest, BinaryInputsAreReadAfterTheJsonInOrder) {
  std::string json =
      R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}},)"
      R"({"name":"INPUT1","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}}]})";
  HttpResponse r = Call("POST", "/v2/models/simple/infer",
                        json + Bytes<int32_t>({1, 2, 3, 4}) + Bytes<int32_t>({1, 1, 1, 1}),
                        {{"Inference-Header-Content-Length", std::to_string(json.size())}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_TRUE(r.headers.empty());
  EXPECT_EQ(r.body,
            R"({"model_name":"simple","model_version":"2",)" + std::string(kSimpleOutputs));
}

TEST_F(HandlerTest, BinaryAndJsonInputsMix) {
  std::string json =
      R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]},)"
      R"({"name":"INPUT1","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}}]})";
  HttpResponse r = Call("POST", "/v2/models/simple/infer", json + Bytes<int32_t>({1, 1, 1, 1}),
                        {{"Inference-Header-Content-Length", std::to_string(json.size())}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            R"({"model_name":"simple","model_version":"2",)" + std::string(kSimpleOutputs));
}

TEST_F(HandlerTest, BinaryDataOutputSendsEveryOutputAsBytesAfterTheJson) {
  std::string body(kSimpleRequest);
  body.insert(1, R"("parameters":{"binary_data_output":true},)");
  HttpResponse r = Infer("simple", body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/octet-stream");
  std::string json =
      R"({"model_name":"simple","model_version":"2","outputs":[)"
      R"({"name":"OUTPUT0","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}},)"
      R"({"name":"OUTPUT1","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}}]})";
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Inference-Header-Content-Length");
  EXPECT_EQ(r.headers[0].second, std::to_string(json.size()));
  EXPECT_EQ(r.body, json + Bytes<int32_t>({2, 3, 4, 5}) + Bytes<int32_t>({0, 1, 2, 3}));
}

TEST_F(HandlerTest, PerOutputBinaryDataOverridesTheRequestDefault) {
  std::string body(kSimpleRequest);
  body.insert(1, R"("parameters":{"binary_data_output":true},)");
  body.insert(body.size() - 1,
              R"(,"outputs":[{"name":"OUTPUT1","parameters":{"binary_data":false}},{"name":"OUTPUT0"}])");
  HttpResponse r = Infer("simple", body);
  EXPECT_EQ(r.status, 200) << r.body;
  std::string json =
      R"({"model_name":"simple","model_version":"2","outputs":[)"
      R"({"name":"OUTPUT1","datatype":"INT32","shape":[1,4],"data":[0,1,2,3]},)"
      R"({"name":"OUTPUT0","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}}]})";
  EXPECT_EQ(r.body, json + Bytes<int32_t>({2, 3, 4, 5}));
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].second, std::to_string(json.size()));
}

TEST_F(HandlerTest, BytesAndBoolRoundTripAsBinary) {
  std::string json =
      R"({"inputs":[{"name":"x","datatype":"BYTES","shape":[3],"parameters":{"binary_data_size":17}}],)"
      R"("outputs":[{"name":"y","parameters":{"binary_data":true}}]})";
  std::string data = LengthPrefixed("ab") + LengthPrefixed("") +
                     LengthPrefixed(std::string_view("\xff\x00z", 3));
  ASSERT_EQ(data.size(), 17u);
  HttpResponse r = Call("POST", "/v2/models/echo_bytes/infer", json + data,
                        {{"Inference-Header-Content-Length", std::to_string(json.size())}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, ::testing::EndsWith(R"("parameters":{"binary_data_size":17}}]})" + data));

  std::string bool_json =
      R"({"parameters":{"binary_data_output":true},)"
      R"("inputs":[{"name":"x","datatype":"BOOL","shape":[3],"parameters":{"binary_data_size":3}}]})";
  HttpResponse b = Call("POST", "/v2/models/echo_bool/infer", bool_json + std::string("\1\0\1", 3),
                        {{"Inference-Header-Content-Length", std::to_string(bool_json.size())}});
  EXPECT_EQ(b.status, 200) << b.body;
  EXPECT_THAT(b.body, ::testing::EndsWith(std::string("\1\0\1", 3)));
}

TEST_F(HandlerTest, Fp16TravelsAsBinaryButNotAsJson) {
  std::string json =
      R"({"inputs":[{"name":"x","datatype":"FP16","shape":[2],"parameters":{"binary_data_size":4}}],)"
      R"("outputs":[{"name":"y","parameters":{"binary_data":true}}]})";
  std::string halfs = Bytes<uint16_t>({0x3c00, 0xc000});  // 1.0, -2.0
  HttpResponse r = Call("POST", "/v2/models/echo_fp16/infer", json + halfs,
                        {{"Inference-Header-Content-Length", std::to_string(json.size())}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, ::testing::EndsWith(halfs));

  std::string json_out =
      R"({"inputs":[{"name":"x","datatype":"FP16","shape":[2],"parameters":{"binary_data_size":4}}]})";
  HttpResponse j = Call("POST", "/v2/models/echo_fp16/infer", json_out + halfs,
                        {{"Inference-Header-Content-Length", std::to_string(json_out.size())}});
  EXPECT_EQ(j.status, 400);
  EXPECT_THAT(j.body, HasSubstr("output \\\"y\\\" is FP16, which JSON cannot carry"));
  EXPECT_EQ(j.content_type, "application/json");
}

TEST_F(HandlerTest, BinaryDataThatDoesNotFitIsRejected) {
  struct Case {
    std::string json, data, header, why;
  };
  const std::string x16 =
      R"({"inputs":[{"name":"x","datatype":"INT32","shape":[4],"parameters":{"binary_data_size":16}}]})";
  const std::string x8 =
      R"({"inputs":[{"name":"x","datatype":"INT32","shape":[4],"parameters":{"binary_data_size":8}}]})";
  const std::string both =
      R"({"inputs":[{"name":"x","datatype":"INT32","shape":[1],"data":[1],"parameters":{"binary_data_size":4}}]})";
  const std::string negative =
      R"({"inputs":[{"name":"x","datatype":"INT32","shape":[1],"parameters":{"binary_data_size":-4}}]})";
  auto bytes2 = [](int size) {
    return R"({"inputs":[{"name":"x","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":)" +
           std::to_string(size) + "}}]}";
  };
  const std::string bool1 =
      R"({"inputs":[{"name":"x","datatype":"BOOL","shape":[1],"parameters":{"binary_data_size":1}}]})";
  const std::string not_bool =
      R"({"parameters":{"binary_data_output":"yes"},"inputs":[{"name":"x","datatype":"INT32","shape":[1],"data":[1]}]})";
  for (const Case& c : {
           Case{x16, std::string(12, 'a'), "", "runs past the end of the body"},
           Case{x8, std::string(8, 'a'), "", "does not match shape [4] of INT32, which takes 16"},
           Case{x16, std::string(20, 'a'), "", "4 bytes of binary data after the JSON"},
           Case{both, Bytes<int32_t>({1}), "", "has both \\\"data\\\" and binary_data_size"},
           Case{negative, "", "", "binary_data_size must be a non-negative integer"},
           Case{bytes2(8), LengthPrefixed("a") + "abc", "", "ends inside a BYTES element's length"},
           Case{bytes2(9), LengthPrefixed("a") + "abcd", "", "runs past its binary_data_size"},
           Case{bytes2(11), LengthPrefixed("a") + LengthPrefixed("b") + "c", "",
                "holds more than the 2 BYTES elements"},
           Case{bytes2(7), LengthPrefixed("a") + "ab", "", "cannot hold the 2 BYTES elements"},
           Case{bool1, "\2", "", "BOOL element 0 is byte 2"},
           Case{not_bool, "", "", "\\\"binary_data_output\\\" must be true or false"},
           Case{x16, Bytes<int32_t>({1, 2, 3, 4}), "9999", "is not a length within the body"},
           Case{x16, Bytes<int32_t>({1, 2, 3, 4}), "12x", "is not a length within the body"},
       }) {
    std::string model = c.json.find("BYTES") != std::string::npos  ? "echo_bytes"
                        : c.json.find("BOOL") != std::string::npos ? "echo_bool"
                                                                   : "echo_int32";
    std::string header = c.header.empty() ? std::to_string(c.json.size()) : c.header;
    HttpResponse r = Call("POST", "/v2/models/" + model + "/infer", c.json + c.data,
                          {{"Inference-Header-Content-Length", header}});
    EXPECT_EQ(r.status, 400) << c.why;
    EXPECT_THAT(r.body, HasSubstr(c.why)) << r.body;
  }
}

TEST_F(HandlerTest, ModelErrorsKeepTheirMeaning) {
  std::string body = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]})";
  HttpResponse internal = Infer("failing", body);
  EXPECT_EQ(internal.status, 500);
  EXPECT_EQ(internal.body, R"({"error":"model \"failing\" version 1: backend exploded","reason":"internal"})");
  HttpResponse invalid = Infer("rejecting", body);
  EXPECT_EQ(invalid.status, 400);
  EXPECT_EQ(invalid.body, R"({"error":"model \"rejecting\" version 1: NaN in row 0","reason":"invalid_argument"})");
}

TEST_F(HandlerTest, ErrorMessagesAreValidJsonEvenForHostileNames) {
  HttpResponse r = Call("GET", "/v2/models/a\"b\\c\x01/ready");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":"unknown model \"a\"b\\c\u0001\"","reason":"not_found"})");
}

TEST(HttpStatusFor, MapsEveryCodeTheWayTritonDoes) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kOutOfRange), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kAlreadyExists), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kCancelled), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnknown), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kResourceExhausted), 413);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnimplemented), 501);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
  EXPECT_EQ(HttpStatusFor(StatusCode::kDataLoss), 500);
  EXPECT_EQ(HttpStatusFor(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnauthenticated), 401);
}

// ---- The parser on its own ----

TEST(ParseInferRequest, ReadsBodiesWithAndWithoutPadding) {
  std::string body = R"({"inputs":[{"name":"x","datatype":"FP64","shape":[2],"data":[0.5,2]}]})";
  InferRequest request;
  OUTPOST_ASSERT_OK(ParseInferRequest(std::string_view(body), {}, request));
  ASSERT_EQ(request.inputs.size(), 1u);
  EXPECT_EQ(request.inputs[0].tensor.values<double>()[0], 0.5);
  std::string padded = body;
  padded.reserve(body.size() + kJsonPadding);
  OUTPOST_ASSERT_OK(ParseInferRequest(padded, {}, request));
  EXPECT_EQ(request.inputs[0].tensor.values<double>()[1], 2.0);
}

TEST(ParseInferRequest, KeepsParametersWithTheirTypes) {
  InferRequest request;
  OUTPOST_ASSERT_OK(ParseInferRequest(
      std::string_view(R"({"parameters":{"s":"v","i":-3,"u":18446744073709551615,"d":0.5,"b":true},"inputs":[]})"),
      {}, request));
  ASSERT_EQ(request.parameters.size(), 5u);
  EXPECT_EQ(std::get<std::string>(request.parameters[0].value), "v");
  EXPECT_EQ(std::get<int64_t>(request.parameters[1].value), -3);
  EXPECT_EQ(std::get<uint64_t>(request.parameters[2].value), 18446744073709551615u);
  EXPECT_EQ(std::get<double>(request.parameters[3].value), 0.5);
  EXPECT_EQ(std::get<bool>(request.parameters[4].value), true);
}

}  // namespace
}  // namespace outpost::serve
