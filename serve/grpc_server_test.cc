// GrpcServer over loopback with a real grpc++ client stub generated from inference.proto.
#include "serve/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/auth/auth.h"
#include "base/crypto/crypto.h"
#include "base/crypto/x509.h"
#include "base/file.h"
#include "base/testing/test_util.h"
#include "serve/inference.grpc.pb.h"
#include "serve/testing/fake_models.h"

namespace outpost::serve {
namespace {

using engine::DataType;
using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using testing::AddSubModel;
using testing::BlockingModel;
using testing::BrokenServable;
using testing::EchoModel;
using testing::FailingModel;
using testing::ReadyServable;

std::shared_ptr<const engine::Model> Echo(DataType type) {
  return std::make_shared<EchoModel>(type);
}

std::vector<std::shared_ptr<const ServableModel>> Models() {
  auto simple = std::make_shared<AddSubModel>(DataType::kInt32);
  return {
      ReadyServable("simple", {{1, simple}, {2, simple}}),
      ReadyServable("echo_bool", {{1, Echo(DataType::kBool)}}),
      ReadyServable("echo_int8", {{1, Echo(DataType::kInt8)}}),
      ReadyServable("echo_int32", {{1, Echo(DataType::kInt32)}}),
      ReadyServable("echo_int64", {{1, Echo(DataType::kInt64)}}),
      ReadyServable("echo_fp16", {{1, Echo(DataType::kFp16)}}),
      ReadyServable("echo_fp32", {{1, Echo(DataType::kFp32)}}),
      ReadyServable("echo_bytes", {{1, Echo(DataType::kBytes)}}),
      ReadyServable("failing",
                    {{1, std::make_shared<FailingModel>(InternalError("backend exploded"))}}),
      ReadyServable("rejecting",
                    {{1, std::make_shared<FailingModel>(InvalidArgumentError("NaN in row 0"))}}),
  };
}

// A client stub on loopback that may receive messages of up to 64 MiB.
std::unique_ptr<GRPCInferenceService::Stub> Connect(uint16_t port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return GRPCInferenceService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args));
}

template <typename T>
std::string RawOf(const std::vector<T>& values) {
  std::string raw(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(raw.data(), values.data(), raw.size());
  return raw;
}

template <typename T>
std::vector<T> ValuesOf(const std::string& raw) {
  std::vector<T> values(raw.size() / sizeof(T));
  if (!values.empty()) std::memcpy(values.data(), raw.data(), raw.size());
  return values;
}

// BYTES in the raw layout: a uint32 little-endian length before each element.
std::string RawStrings(const std::vector<std::string>& strings) {
  std::string raw;
  for (const std::string& s : strings) {
    const uint32_t n = static_cast<uint32_t>(s.size());
    for (int b = 0; b < 4; ++b) raw.push_back(static_cast<char>((n >> (8 * b)) & 0xff));
    raw += s;
  }
  return raw;
}

ModelInferRequest::InferInputTensor* AddInput(ModelInferRequest& request, const std::string& name,
                                              const std::string& datatype,
                                              std::vector<int64_t> shape) {
  auto* input = request.add_inputs();
  input->set_name(name);
  input->set_datatype(datatype);
  for (int64_t d : shape) input->add_shape(d);
  return input;
}

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repository_ = ModelRepository::FromModels(Models());
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        server_,
        GrpcServer::Start(*repository_,
                          {.address = "127.0.0.1", .port = 0, .max_total_elements = 2 << 20}));
    stub_ = Connect(server_->port());
  }

  grpc::Status Infer(const ModelInferRequest& request, ModelInferResponse& response) {
    grpc::ClientContext context;
    return stub_->ModelInfer(&context, request, &response);
  }

  // A request to echo_<model> with one input "x" of `datatype` and shape [n].
  static ModelInferRequest EchoRequest(const std::string& model, const std::string& datatype,
                                       int64_t n) {
    ModelInferRequest request;
    request.set_model_name(model);
    AddInput(request, "x", datatype, {n});
    return request;
  }

  // Runs `request` and expects `code`, returning the message.
  std::string ExpectError(const ModelInferRequest& request, grpc::StatusCode code) {
    ModelInferResponse response;
    grpc::Status status = Infer(request, response);
    EXPECT_EQ(status.error_code(), code) << status.error_message();
    return status.error_message();
  }

  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<GRPCInferenceService::Stub> stub_;
};

// ---- Health and metadata ----

TEST_F(GrpcServerTest, ListensOnAPortTheSystemChose) { EXPECT_NE(server_->port(), 0); }

TEST_F(GrpcServerTest, ServerIsLive) {
  grpc::ClientContext context;
  inference::ServerLiveResponse response;
  ASSERT_TRUE(stub_->ServerLive(&context, {}, &response).ok());
  EXPECT_TRUE(response.live());
}

TEST_F(GrpcServerTest, ServerIsReadyWhenEveryModelLoaded) {
  grpc::ClientContext context;
  inference::ServerReadyResponse response;
  ASSERT_TRUE(stub_->ServerReady(&context, {}, &response).ok());
  EXPECT_TRUE(response.ready());
}

TEST(GrpcServer, ServerIsNotReadyWhenAModelFailedToLoad) {
  auto repository = ModelRepository::FromModels(
      {ReadyServable("good", {{1, Echo(DataType::kFp32)}}), BrokenServable("bad", 3, "corrupt")});
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto server,
                               GrpcServer::Start(*repository, {.address = "127.0.0.1", .port = 0}));
  auto stub = Connect(server->port());
  {
    grpc::ClientContext context;
    inference::ServerReadyResponse response;
    ASSERT_TRUE(stub->ServerReady(&context, {}, &response).ok());
    EXPECT_FALSE(response.ready());
  }
  {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name("bad");
    inference::ModelReadyResponse response;
    ASSERT_TRUE(stub->ModelReady(&context, request, &response).ok());
    EXPECT_FALSE(response.ready());
  }
  {
    ModelInferRequest request;
    request.set_model_name("bad");
    AddInput(request, "x", "FP32", {1})->mutable_contents()->add_fp32_contents(1);
    ModelInferResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub->ModelInfer(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_NE(status.error_message().find("corrupt"), std::string::npos) << status.error_message();
  }
}

TEST_F(GrpcServerTest, ServerMetadataNamesOutpostAndItsVersion) {
  grpc::ClientContext context;
  inference::ServerMetadataResponse response;
  ASSERT_TRUE(stub_->ServerMetadata(&context, {}, &response).ok());
  EXPECT_EQ(response.name(), "outpost");
  EXPECT_EQ(response.version(), "0.1.0");
  EXPECT_EQ(response.extensions_size(), 0);
}

TEST_F(GrpcServerTest, ModelReadyForServedModelAndVersion) {
  for (const char* version : {"", "1", "2"}) {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name("simple");
    request.set_version(version);
    inference::ModelReadyResponse response;
    ASSERT_TRUE(stub_->ModelReady(&context, request, &response).ok()) << version;
    EXPECT_TRUE(response.ready()) << version;
  }
}

TEST_F(GrpcServerTest, ModelReadyOfUnknownModelOrVersionIsNotFound) {
  for (auto [name, version] : {std::pair{"nope", ""}, std::pair{"simple", "7"}}) {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name(name);
    request.set_version(version);
    inference::ModelReadyResponse response;
    EXPECT_EQ(stub_->ModelReady(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND)
        << name << " " << version;
  }
}

TEST_F(GrpcServerTest, ModelMetadataGivesVersionsPlatformAndTensors) {
  grpc::ClientContext context;
  inference::ModelMetadataRequest request;
  request.set_name("simple");
  inference::ModelMetadataResponse response;
  ASSERT_TRUE(stub_->ModelMetadata(&context, request, &response).ok());
  EXPECT_EQ(response.name(), "simple");
  ASSERT_EQ(response.versions_size(), 2);
  EXPECT_EQ(response.versions(0), "1");
  EXPECT_EQ(response.versions(1), "2");
  EXPECT_EQ(response.platform(), "fake_addsub");
  ASSERT_EQ(response.inputs_size(), 2);
  EXPECT_EQ(response.inputs(1).name(), "INPUT1");
  EXPECT_EQ(response.inputs(1).datatype(), "INT32");
  ASSERT_EQ(response.inputs(1).shape_size(), 2);
  EXPECT_EQ(response.inputs(1).shape(0), -1);
  EXPECT_EQ(response.inputs(1).shape(1), 4);
  ASSERT_EQ(response.outputs_size(), 2);
  EXPECT_EQ(response.outputs(0).name(), "OUTPUT0");
}

TEST_F(GrpcServerTest, ModelMetadataOfUnknownModelIsNotFound) {
  grpc::ClientContext context;
  inference::ModelMetadataRequest request;
  request.set_name("nope");
  inference::ModelMetadataResponse response;
  grpc::Status status = stub_->ModelMetadata(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

// ---- Inference ----

ModelInferRequest SimpleRawRequest() {
  ModelInferRequest request;
  request.set_model_name("simple");
  request.set_id("req-7");
  AddInput(request, "INPUT0", "INT32", {1, 4});
  AddInput(request, "INPUT1", "INT32", {1, 4});
  request.add_raw_input_contents(RawOf<int32_t>({1, 2, 3, 4}));
  request.add_raw_input_contents(RawOf<int32_t>({1, 1, 1, 1}));
  return request;
}

TEST_F(GrpcServerTest, InferWithRawInputsAnswersRawOutputsAndEchoesIdNameAndVersion) {
  ModelInferResponse response;
  grpc::Status status = Infer(SimpleRawRequest(), response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.model_name(), "simple");
  EXPECT_EQ(response.model_version(), "2");  // the highest ready version
  EXPECT_EQ(response.id(), "req-7");
  ASSERT_EQ(response.outputs_size(), 2);
  ASSERT_EQ(response.raw_output_contents_size(), 2);
  EXPECT_EQ(response.outputs(0).name(), "OUTPUT0");
  EXPECT_EQ(response.outputs(0).datatype(), "INT32");
  ASSERT_EQ(response.outputs(0).shape_size(), 2);
  EXPECT_EQ(response.outputs(0).shape(1), 4);
  EXPECT_FALSE(response.outputs(0).has_contents());
  EXPECT_EQ(ValuesOf<int32_t>(response.raw_output_contents(0)), (std::vector<int32_t>{2, 3, 4, 5}));
  EXPECT_EQ(ValuesOf<int32_t>(response.raw_output_contents(1)), (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST_F(GrpcServerTest, InferOnANamedVersionAnswersWithThatVersion) {
  ModelInferRequest request = SimpleRawRequest();
  request.set_model_version("1");
  ModelInferResponse response;
  ASSERT_TRUE(Infer(request, response).ok());
  EXPECT_EQ(response.model_version(), "1");
}

TEST_F(GrpcServerTest, InferWithoutIdAnswersWithoutId) {
  ModelInferRequest request = SimpleRawRequest();
  request.clear_id();
  ModelInferResponse response;
  ASSERT_TRUE(Infer(request, response).ok());
  EXPECT_EQ(response.id(), "");
}

TEST_F(GrpcServerTest, InferWithTypedInputsAnswersRawOutputs) {
  ModelInferRequest request;
  request.set_model_name("simple");
  auto* a = AddInput(request, "INPUT0", "INT32", {2, 4});
  auto* b = AddInput(request, "INPUT1", "INT32", {2, 4});
  for (int i = 0; i < 8; ++i) {
    a->mutable_contents()->add_int_contents(10 * i);
    b->mutable_contents()->add_int_contents(i);
  }
  ModelInferResponse response;
  grpc::Status status = Infer(request, response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.raw_output_contents_size(), 2);
  EXPECT_EQ(ValuesOf<int32_t>(response.raw_output_contents(0)),
            (std::vector<int32_t>{0, 11, 22, 33, 44, 55, 66, 77}));
  EXPECT_EQ(ValuesOf<int32_t>(response.raw_output_contents(1)),
            (std::vector<int32_t>{0, 9, 18, 27, 36, 45, 54, 63}));
}

TEST_F(GrpcServerTest, InputsMayComeInAnyOrder) {
  ModelInferRequest request;
  request.set_model_name("simple");
  AddInput(request, "INPUT1", "INT32", {1, 4});
  AddInput(request, "INPUT0", "INT32", {1, 4});
  request.add_raw_input_contents(RawOf<int32_t>({1, 1, 1, 1}));
  request.add_raw_input_contents(RawOf<int32_t>({5, 6, 7, 8}));
  ModelInferResponse response;
  ASSERT_TRUE(Infer(request, response).ok());
  EXPECT_EQ(ValuesOf<int32_t>(response.raw_output_contents(1)), (std::vector<int32_t>{4, 5, 6, 7}));
}

TEST_F(GrpcServerTest, RequestedOutputsSelectAndOrderTheResponse) {
  ModelInferRequest request = SimpleRawRequest();
  request.add_outputs()->set_name("OUTPUT1");
  ModelInferResponse response;
  ASSERT_TRUE(Infer(request, response).ok());
  ASSERT_EQ(response.outputs_size(), 1);
  ASSERT_EQ(response.raw_output_contents_size(), 1);
  EXPECT_EQ(response.outputs(0).name(), "OUTPUT1");
  EXPECT_EQ(ValuesOf<int32_t>(response.raw_output_contents(0)), (std::vector<int32_t>{0, 1, 2, 3}));

  request.clear_outputs();
  request.add_outputs()->set_name("OUTPUT1");
  request.add_outputs()->set_name("OUTPUT0");
  ModelInferResponse both;
  ASSERT_TRUE(Infer(request, both).ok());
  ASSERT_EQ(both.outputs_size(), 2);
  EXPECT_EQ(both.outputs(0).name(), "OUTPUT1");
  EXPECT_EQ(both.outputs(1).name(), "OUTPUT0");
  EXPECT_EQ(ValuesOf<int32_t>(both.raw_output_contents(1)), (std::vector<int32_t>{2, 3, 4, 5}));
}

// Each datatype sent typed and raw comes back as the same raw bytes.
TEST_F(GrpcServerTest, TypedAndRawContentsGiveTheSameAnswerForEveryDatatype) {
  struct Case {
    std::string model, datatype;
    int64_t n;
    std::function<void(inference::InferTensorContents&)> typed;
    std::string raw;
  };
  const std::vector<Case> cases = {
      {"echo_fp32", "FP32", 3,
       [](auto& c) {
         for (float v : {1.5f, -2.25f, 1e30f}) c.add_fp32_contents(v);
       },
       RawOf<float>({1.5f, -2.25f, 1e30f})},
      {"echo_int32", "INT32", 3,
       [](auto& c) {
         for (int32_t v : {7, -8, 2147483647}) c.add_int_contents(v);
       },
       RawOf<int32_t>({7, -8, 2147483647})},
      {"echo_int64", "INT64", 2,
       [](auto& c) {
         for (int64_t v : {int64_t{1} << 40, int64_t{-3}}) c.add_int64_contents(v);
       },
       RawOf<int64_t>({int64_t{1} << 40, -3})},
      {"echo_bool", "BOOL", 3,
       [](auto& c) {
         for (bool v : {true, false, true}) c.add_bool_contents(v);
       },
       std::string("\x01\x00\x01", 3)},
      {"echo_bytes", "BYTES", 3,
       [](auto& c) {
         for (const char* v : {"pump", "", "valve\x01"}) c.add_bytes_contents(v);
       },
       RawStrings({"pump", "", "valve\x01"})},
      {"echo_int8", "INT8", 2,
       [](auto& c) {
         for (int32_t v : {-128, 127}) c.add_int_contents(v);
       },
       std::string("\x80\x7f", 2)},
  };
  for (const Case& c : cases) {
    ModelInferRequest typed = EchoRequest(c.model, c.datatype, c.n);
    c.typed(*typed.mutable_inputs(0)->mutable_contents());
    ModelInferRequest raw = EchoRequest(c.model, c.datatype, c.n);
    raw.add_raw_input_contents(c.raw);
    for (const ModelInferRequest* request : {&typed, &raw}) {
      ModelInferResponse response;
      grpc::Status status = Infer(*request, response);
      ASSERT_TRUE(status.ok()) << c.datatype << ": " << status.error_message();
      ASSERT_EQ(response.outputs_size(), 1);
      EXPECT_EQ(response.outputs(0).datatype(), c.datatype);
      ASSERT_EQ(response.outputs(0).shape_size(), 1);
      EXPECT_EQ(response.outputs(0).shape(0), c.n);
      ASSERT_EQ(response.raw_output_contents_size(), 1);
      EXPECT_EQ(response.raw_output_contents(0), c.raw) << c.datatype;
    }
  }
}

TEST_F(GrpcServerTest, Fp16TravelsRawOnly) {
  ModelInferRequest raw = EchoRequest("echo_fp16", "FP16", 2);
  raw.add_raw_input_contents(std::string("\x00\x3c\x00\xc0", 4));  // 1.0, -2.0
  ModelInferResponse response;
  ASSERT_TRUE(Infer(raw, response).ok());
  EXPECT_EQ(response.raw_output_contents(0), std::string("\x00\x3c\x00\xc0", 4));

  ModelInferRequest typed = EchoRequest("echo_fp16", "FP16", 1);
  typed.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  EXPECT_NE(ExpectError(typed, grpc::StatusCode::INVALID_ARGUMENT).find("raw_input_contents"),
            std::string::npos);
}

TEST_F(GrpcServerTest, AMessageLargerThanGrpcsDefaultFourMebibytesIsAccepted) {
  constexpr int64_t kCount = (5 << 20) / 4;  // 5 MiB of FP32
  std::vector<float> values(kCount);
  for (int64_t i = 0; i < kCount; ++i) values[static_cast<size_t>(i)] = static_cast<float>(i);
  ModelInferRequest request = EchoRequest("echo_fp32", "FP32", kCount);
  request.add_raw_input_contents(RawOf(values));
  ModelInferResponse response;
  grpc::Status status = Infer(request, response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.raw_output_contents_size(), 1);
  EXPECT_EQ(response.raw_output_contents(0), request.raw_input_contents(0));
}

// An output of 4 KiB or more travels from the model's own tensor, beside the fields protobuf
// writes; the answer is the message protobuf itself would write, byte for byte.
TEST_F(GrpcServerTest, ALargeOutputSentFromItsTensorArrivesWholeInProtobufsOwnEncoding) {
  for (int64_t count : {int64_t{3}, int64_t{1023}, int64_t{1024}, int64_t{40000}}) {
    std::vector<float> values(static_cast<size_t>(count));
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f;
    ModelInferRequest request = EchoRequest("echo_fp32", "FP32", count);
    request.set_id("large-" + std::to_string(count));
    request.add_raw_input_contents(RawOf(values));
    ModelInferResponse response;
    grpc::Status status = Infer(request, response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.id(), request.id());
    ASSERT_EQ(response.outputs_size(), 1);
    EXPECT_EQ(response.outputs(0).name(), "y");
    EXPECT_EQ(response.outputs(0).shape(0), count);
    ASSERT_EQ(response.raw_output_contents_size(), 1);
    EXPECT_EQ(response.raw_output_contents(0), request.raw_input_contents(0));

    std::string serialized;
    OUTPOST_ASSERT_OK(
        ModelInferSerialized(*repository_, {}, request.SerializeAsString(), serialized));
    EXPECT_EQ(serialized, response.SerializeAsString()) << count;
  }
}

TEST_F(GrpcServerTest, ConcurrentClientsEachGetTheirOwnAnswer) {
  constexpr int kThreads = 8;
  constexpr int kCalls = 40;
  std::vector<int> wrong(kThreads, 0);
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([this, t, &wrong] {
      auto stub = Connect(server_->port());  // a channel (connection) per client
      for (int i = 0; i < kCalls; ++i) {
        const int32_t base = t * 1000 + i;
        ModelInferRequest request;
        request.set_model_name("simple");
        request.set_id(std::to_string(base));
        AddInput(request, "INPUT0", "INT32", {1, 4});
        AddInput(request, "INPUT1", "INT32", {1, 4});
        request.add_raw_input_contents(RawOf<int32_t>({base, base, base, base}));
        request.add_raw_input_contents(RawOf<int32_t>({1, 2, 3, 4}));
        ModelInferResponse response;
        grpc::ClientContext context;
        grpc::Status status = stub->ModelInfer(&context, request, &response);
        if (!status.ok() || response.id() != std::to_string(base) ||
            response.raw_output_contents_size() != 2 ||
            ValuesOf<int32_t>(response.raw_output_contents(0)) !=
                std::vector<int32_t>{base + 1, base + 2, base + 3, base + 4}) {
          ++wrong[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(wrong, std::vector<int>(kThreads, 0));
}

// ---- Errors ----

TEST_F(GrpcServerTest, ContentsAndRawContentsTogetherAreInvalid) {
  ModelInferRequest request = SimpleRawRequest();
  request.mutable_inputs(0)->mutable_contents()->add_int_contents(1);
  EXPECT_NE(ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT).find("INPUT0"),
            std::string::npos);
}

TEST_F(GrpcServerTest, AnInputWithoutDataIsInvalid) {
  ModelInferRequest request = SimpleRawRequest();
  request.mutable_raw_input_contents()->RemoveLast();
  EXPECT_NE(ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT).find("INPUT1"),
            std::string::npos);
}

TEST_F(GrpcServerTest, ARawEntryNoInputTakesIsInvalid) {
  ModelInferRequest request = SimpleRawRequest();
  request.add_raw_input_contents(RawOf<int32_t>({1, 2, 3, 4}));
  ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcServerTest, UnknownModelOrVersionIsNotFound) {
  ModelInferRequest request = SimpleRawRequest();
  request.set_model_name("nope");
  ExpectError(request, grpc::StatusCode::NOT_FOUND);
  request = SimpleRawRequest();
  request.set_model_version("9");
  ExpectError(request, grpc::StatusCode::NOT_FOUND);
  request.set_model_version("99999999999999999999999");
  ExpectError(request, grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcServerTest, AVersionThatIsNotDigitsIsInvalid) {
  ModelInferRequest request = SimpleRawRequest();
  request.set_model_version("v1");
  ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcServerTest, BadInputsAreInvalidWithAReason) {
  struct Case {
    std::string what;
    std::function<void(ModelInferRequest&)> change;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"unknown input", [](auto& r) { r.mutable_inputs(1)->set_name("INPUT9"); }, "INPUT9"},
      {"input twice", [](auto& r) { r.mutable_inputs(1)->set_name("INPUT0"); }, "twice"},
      {"missing input",
       [](auto& r) {
         r.mutable_inputs()->RemoveLast();
         r.mutable_raw_input_contents()->RemoveLast();
       },
       "missing input"},
      {"unknown datatype", [](auto& r) { r.mutable_inputs(0)->set_datatype("FLOAT"); }, "FLOAT"},
      {"wrong datatype", [](auto& r) { r.mutable_inputs(0)->set_datatype("UINT32"); }, "INPUT0"},
      {"raw size not the shape's",
       [](auto& r) {
         r.set_raw_input_contents(0, RawOf<int32_t>({1, 2, 3}));
       },
       "needs 16"},
      {"negative dimension", [](auto& r) { r.mutable_inputs(0)->set_shape(0, -1); }, "INPUT0"},
      {"wrong fixed dimension",
       [](auto& r) {
         r.mutable_inputs(0)->set_shape(1, 2);
         r.set_raw_input_contents(0, RawOf<int32_t>({1, 2}));
       },
       "INPUT0"},
      {"unknown requested output", [](auto& r) { r.add_outputs()->set_name("OUT"); }, "OUT"},
      {"output requested twice",
       [](auto& r) {
         r.add_outputs()->set_name("OUTPUT0");
         r.add_outputs()->set_name("OUTPUT0");
       },
       "twice"},
      {"shared memory",
       [](auto& r) {
         (*r.mutable_inputs(0)->mutable_parameters())["shared_memory_region"].set_string_param("r");
       },
       "shared_memory_region"},
      {"classification",
       [](auto& r) {
         (*r.add_outputs()->mutable_parameters())["classification"].set_int64_param(2);
         r.mutable_outputs(0)->set_name("OUTPUT0");
       },
       "classification"},
  };
  for (const Case& c : cases) {
    ModelInferRequest request = SimpleRawRequest();
    c.change(request);
    std::string message = ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(message.find(c.reason), std::string::npos) << c.what << ": " << message;
  }
}

TEST_F(GrpcServerTest, BadTypedContentsAreInvalidWithAReason) {
  struct Case {
    std::string model, datatype;
    int64_t n;
    std::function<void(inference::InferTensorContents&)> fill;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"echo_fp32", "FP32", 2, [](auto& c) { c.add_fp32_contents(1); }, "needs 2"},
      {"echo_fp32", "FP32", 1, [](auto& c) { c.add_fp64_contents(1); }, "fp32_contents"},
      {"echo_fp32", "FP32", 1,
       [](auto& c) {
         c.add_fp32_contents(1);
         c.add_int_contents(1);
       },
       "fp32_contents only"},
      {"echo_int8", "INT8", 1, [](auto& c) { c.add_int_contents(128); }, "out of range"},
      {"echo_int8", "INT8", 1, [](auto& c) { c.add_int_contents(-129); }, "out of range"},
  };
  for (const Case& c : cases) {
    ModelInferRequest request = EchoRequest(c.model, c.datatype, c.n);
    c.fill(*request.mutable_inputs(0)->mutable_contents());
    std::string message = ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(message.find(c.reason), std::string::npos) << c.reason << ": " << message;
  }
}

TEST_F(GrpcServerTest, BadRawDataIsInvalidWithAReason) {
  struct Case {
    std::string model, datatype;
    int64_t n;
    std::string raw, reason;
  };
  const std::vector<Case> cases = {
      {"echo_bool", "BOOL", 2, std::string("\x01\x02", 2), "only 0 and 1"},
      {"echo_bytes", "BYTES", 2, RawStrings({"a"}), "cannot hold"},
      {"echo_bytes", "BYTES", 1, RawStrings({"a"}) + "x", "past its last element"},
      {"echo_bytes", "BYTES", 2, RawStrings({"a"}) + std::string("\x09\x00\x00\x00xy", 6),
       "says 9 bytes"},
      {"echo_bytes", "BYTES", 2, RawStrings({"abcd"}) + std::string("\x01\x00", 2),
       "inside the length"},
      {"echo_int64", "INT64", 1, RawOf<int32_t>({1}), "needs 8"},
  };
  for (const Case& c : cases) {
    ModelInferRequest request = EchoRequest(c.model, c.datatype, c.n);
    request.add_raw_input_contents(c.raw);
    std::string message = ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(message.find(c.reason), std::string::npos) << c.reason << ": " << message;
  }
}

TEST_F(GrpcServerTest, MoreElementsThanTheLimitAreResourceExhaustedBeforeAnyAllocation) {
  ModelInferRequest request = EchoRequest("echo_fp32", "FP32", int64_t{1} << 40);
  request.add_raw_input_contents("");
  ExpectError(request, grpc::StatusCode::RESOURCE_EXHAUSTED);
}

// A BYTES shape claiming billions of strings, or more than its contents carry, is refused
// naming the input before a std::string is allocated per claimed element.
TEST_F(GrpcServerTest, ABytesShapeTheMessageCannotHoldIsRefusedBeforeAllocating) {
  ModelInferRequest billions = EchoRequest("echo_bytes", "BYTES", int64_t{4} << 30);
  billions.add_raw_input_contents(RawStrings({"a"}));
  EXPECT_NE(ExpectError(billions, grpc::StatusCode::RESOURCE_EXHAUSTED).find("input \"x\""),
            std::string::npos);

  ModelInferRequest raw = EchoRequest("echo_bytes", "BYTES", 1 << 20);
  raw.add_raw_input_contents(RawStrings({"a", "b"}));
  std::string message = ExpectError(raw, grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("input \"x\""), std::string::npos) << message;
  EXPECT_NE(message.find("cannot hold 1048576 BYTES elements"), std::string::npos) << message;

  ModelInferRequest typed = EchoRequest("echo_bytes", "BYTES", 1 << 20);
  typed.mutable_inputs(0)->mutable_contents()->add_bytes_contents("a");
  message = ExpectError(typed, grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("input \"x\""), std::string::npos) << message;
  EXPECT_NE(message.find("contents.bytes_contents has 1 elements"), std::string::npos) << message;
}

TEST_F(GrpcServerTest, ModelFailuresKeepTheirCode) {
  ModelInferRequest failing = EchoRequest("failing", "FP32", 1);
  failing.add_raw_input_contents(RawOf<float>({1}));
  EXPECT_NE(ExpectError(failing, grpc::StatusCode::INTERNAL).find("backend exploded"),
            std::string::npos);
  ModelInferRequest rejecting = EchoRequest("rejecting", "FP32", 1);
  rejecting.add_raw_input_contents(RawOf<float>({1}));
  EXPECT_NE(ExpectError(rejecting, grpc::StatusCode::INVALID_ARGUMENT).find("NaN in row 0"),
            std::string::npos);
}

TEST(GrpcServer, AMessageOverTheConfiguredLimitIsResourceExhausted) {
  auto repository = ModelRepository::FromModels(Models());
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto server,
      GrpcServer::Start(*repository,
                        {.address = "127.0.0.1", .port = 0, .max_message_bytes = 1 << 20}));
  auto stub = Connect(server->port());
  ModelInferRequest request;
  request.set_model_name("echo_fp32");
  AddInput(request, "x", "FP32", {(2 << 20) / 4});
  request.add_raw_input_contents(std::string(2 << 20, '\0'));
  grpc::ClientContext context;
  ModelInferResponse response;
  EXPECT_EQ(stub->ModelInfer(&context, request, &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(GrpcServer, StatusCodesMapToGrpcCodes) {
  EXPECT_EQ(GrpcCodeFor(StatusCode::kOk), static_cast<int>(grpc::StatusCode::OK));
  EXPECT_EQ(GrpcCodeFor(StatusCode::kNotFound), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(GrpcCodeFor(StatusCode::kInvalidArgument),
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(GrpcCodeFor(StatusCode::kUnavailable), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_EQ(GrpcCodeFor(StatusCode::kUnimplemented),
            static_cast<int>(grpc::StatusCode::UNIMPLEMENTED));
  EXPECT_EQ(GrpcCodeFor(StatusCode::kResourceExhausted),
            static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_EQ(GrpcCodeFor(StatusCode::kDeadlineExceeded),
            static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
  EXPECT_EQ(GrpcCodeFor(StatusCode::kCancelled), static_cast<int>(grpc::StatusCode::CANCELLED));
  for (StatusCode code : {StatusCode::kInternal, StatusCode::kUnknown, StatusCode::kDataLoss,
                          StatusCode::kFailedPrecondition, StatusCode::kAlreadyExists}) {
    EXPECT_EQ(GrpcCodeFor(code), static_cast<int>(grpc::StatusCode::INTERNAL))
        << StatusCodeName(code);
  }
}

TEST(ModelInferSerialized, AnswersWhatTheRpcAnswersWithoutANetwork) {
  auto repository = ModelRepository::FromModels(Models());
  std::string response_bytes;
  OUTPOST_ASSERT_OK(ModelInferSerialized(*repository, {}, SimpleRawRequest().SerializeAsString(),
                                         response_bytes));
  ModelInferResponse response;
  ASSERT_TRUE(response.ParseFromString(response_bytes));
  EXPECT_EQ(response.id(), "req-7");
  EXPECT_EQ(ValuesOf<int32_t>(response.raw_output_contents(0)), (std::vector<int32_t>{2, 3, 4, 5}));
}

TEST(ModelInferSerialized, RejectsBytesThatAreNotARequestAndRequestsOverTheLimit) {
  auto repository = ModelRepository::FromModels(Models());
  std::string response = "stale";
  EXPECT_EQ(ModelInferSerialized(*repository, {}, "\xff\xff\xff", response).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(response, "");
  EXPECT_EQ(ModelInferSerialized(*repository, {.max_message_bytes = 8},
                                 SimpleRawRequest().SerializeAsString(), response)
                .code(),
            StatusCode::kResourceExhausted);
}

// ---- Lifecycle ----

TEST(GrpcServer, APortAlreadyTakenIsUnavailable) {
  auto repository = ModelRepository::FromModels(Models());
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto first,
                               GrpcServer::Start(*repository, {.address = "127.0.0.1", .port = 0}));
  Result<std::unique_ptr<GrpcServer>> second =
      GrpcServer::Start(*repository, {.address = "127.0.0.1", .port = first->port()});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
}

TEST(GrpcServer, BadOptionsAreInvalid) {
  auto repository = ModelRepository::FromModels(Models());
  for (GrpcServerOptions options :
       {GrpcServerOptions{.port = 0, .max_message_bytes = 0},
        GrpcServerOptions{.port = 0, .max_message_bytes = size_t{1} << 31},
        GrpcServerOptions{.address = "", .port = 0}}) {
    Result<std::unique_ptr<GrpcServer>> server = GrpcServer::Start(*repository, options);
    ASSERT_FALSE(server.ok());
    EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(GrpcServer, StopLetsACallInFlightFinishAndThenRefusesCalls) {
  std::latch entered(1), release(1);
  auto repository = ModelRepository::FromModels(
      {ReadyServable("blocking", {{1, std::make_shared<BlockingModel>(entered, release)}})});
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto server,
                               GrpcServer::Start(*repository, {.address = "127.0.0.1", .port = 0}));
  auto stub = Connect(server->port());

  grpc::Status in_flight;
  ModelInferResponse response;
  std::thread client([&] {
    ModelInferRequest request;
    request.set_model_name("blocking");
    AddInput(request, "x", "FP32", {2});
    request.add_raw_input_contents(RawOf<float>({3, 4}));
    grpc::ClientContext context;
    in_flight = stub->ModelInfer(&context, request, &response);
  });
  entered.wait();
  // The call is held inside the model while Stop starts in its own thread; whichever of the
  // release and the shutdown comes first, the call in flight must finish with its answer.
  std::thread stopper([&] { server->Stop(std::chrono::minutes(5)); });
  release.count_down();
  client.join();
  stopper.join();
  ASSERT_TRUE(in_flight.ok()) << in_flight.error_message();
  EXPECT_EQ(ValuesOf<float>(response.raw_output_contents(0)), (std::vector<float>{3, 4}));

  grpc::ClientContext context;
  context.set_wait_for_ready(false);
  inference::ServerLiveResponse live;
  EXPECT_FALSE(stub->ServerLive(&context, {}, &live).ok());
}

// A gRPC server for one model, "gate", a HeldEchoModel with one instance and a queue of
// `max_queue_size` (0: the default). Start it with ASSERT_NO_FATAL_FAILURE.
struct GatedServer {
  void Start(int max_queue_size = 0) {
    auto servable = std::make_shared<ServableModel>(*ReadyServable("gate", {{1, gate}}));
    auto config = std::make_shared<ModelConfig>();
    config->name = "gate";
    config->batching.instance_count = 1;
    if (max_queue_size > 0) config->batching.max_queue_size = max_queue_size;
    servable->config = config;
    servable->schedulers.clear();  // built by the repository from the config
    repository = ModelRepository::FromModels({servable});
    OUTPOST_ASSERT_OK_AND_ASSIGN(handle, repository->Find("gate", std::nullopt));
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        server, GrpcServer::Start(*repository, {.address = "127.0.0.1", .port = 0}));
    stub = Connect(server->port());
  }
  ~GatedServer() {
    if (server) server->Stop(std::chrono::seconds(5));
  }

  // A call for the gate echoing the one FP32 `x`.
  static ModelInferRequest Request(float x) {
    ModelInferRequest request;
    request.set_model_name("gate");
    AddInput(request, "x", "FP32", {1});
    request.add_raw_input_contents(RawOf<float>({x}));
    return request;
  }

  std::shared_ptr<testing::HeldEchoModel> gate = std::make_shared<testing::HeldEchoModel>();
  std::unique_ptr<ModelRepository> repository;
  ModelHandle handle;
  std::unique_ptr<GrpcServer> server;
  std::unique_ptr<GRPCInferenceService::Stub> stub;
};

TEST(GrpcServerScheduling, CallCancelledWhileQueuedIsNotRunAndFullQueueIsUnavailable) {
  GatedServer gated;
  ASSERT_NO_FATAL_FAILURE(gated.Start(/*max_queue_size=*/1));
  const auto& gate = gated.gate;
  const ModelHandle& handle = gated.handle;
  GRPCInferenceService::Stub* stub = gated.stub.get();
  const auto request_of = GatedServer::Request;

  // The first call holds the only instance.
  grpc::Status first_status;
  ModelInferResponse first_response;
  std::thread first([&] {
    grpc::ClientContext context;
    first_status = stub->ModelInfer(&context, request_of(1), &first_response);
  });
  gate->WaitEntered();

  // The second waits in the queue until its deadline cancels it.
  grpc::ClientContext short_context;
  short_context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  std::thread second([&] {
    ModelInferResponse response;
    grpc::Status status = stub->ModelInfer(&short_context, request_of(2), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  });
  while (handle.stats->queue_depth.load() != 1) std::this_thread::yield();
  // The queue (of 1) is full: a third call is refused at once.
  {
    grpc::ClientContext context;
    ModelInferResponse response;
    grpc::Status status = stub->ModelInfer(&context, request_of(3), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_NE(status.error_message().find("queue"), std::string::npos) << status.error_message();
  }
  second.join();
  // The server notices the cancelled call and takes it out of the queue without running it.
  while (handle.stats->queue_depth.load() != 0) std::this_thread::yield();
  gate->Release();
  first.join();
  ASSERT_TRUE(first_status.ok()) << first_status.error_message();
  EXPECT_EQ(ValuesOf<float>(first_response.raw_output_contents(0)), (std::vector<float>{1}));
  EXPECT_EQ(gate->runs(), 1);
  // Room again.
  grpc::ClientContext context;
  ModelInferResponse response;
  ASSERT_TRUE(stub->ModelInfer(&context, request_of(4), &response).ok());
  EXPECT_EQ(gate->runs(), 2);
}

// Calls waiting for a blocked model hold none of gRPC's threads: with more of them queued than
// gRPC runs threads, the health and metadata methods still answer, and once the model moves
// again every waiting call gets its own answer. (A server that held a thread per waiting
// call would hang here.)
TEST(GrpcServerScheduling, CallsWaitingForABlockedModelDoNotStopTheOtherMethods) {
  GatedServer gated;
  ASSERT_NO_FATAL_FAILURE(gated.Start());
  const auto& gate = gated.gate;
  const ModelHandle& handle = gated.handle;
  GRPCInferenceService::Stub* stub = gated.stub.get();

  constexpr int kCalls = 64;
  std::vector<grpc::Status> statuses(kCalls);
  std::vector<ModelInferResponse> responses(kCalls);
  std::vector<std::thread> clients;
  for (int i = 0; i < kCalls; ++i) {
    clients.emplace_back([&, i] {
      grpc::ClientContext context;
      statuses[static_cast<size_t>(i)] =
          stub->ModelInfer(&context, GatedServer::Request(static_cast<float>(i)),
                           &responses[static_cast<size_t>(i)]);
    });
  }
  // One call holds the model's only instance; every other one waits in its queue.
  gate->WaitEntered();
  while (handle.stats->queue_depth.load() != kCalls - 1) std::this_thread::yield();

  {
    grpc::ClientContext context;
    inference::ServerLiveResponse live;
    ASSERT_TRUE(stub->ServerLive(&context, {}, &live).ok());
    EXPECT_TRUE(live.live());
  }
  {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name("gate");
    inference::ModelReadyResponse ready;
    ASSERT_TRUE(stub->ModelReady(&context, request, &ready).ok());
    EXPECT_TRUE(ready.ready());
  }
  {
    // A connection of its own is served as well.
    auto other = Connect(gated.server->port());
    grpc::ClientContext context;
    inference::ServerMetadataResponse metadata;
    ASSERT_TRUE(other->ServerMetadata(&context, {}, &metadata).ok());
    EXPECT_EQ(metadata.name(), "outpost");
  }
  // Nothing waiting ran meanwhile.
  EXPECT_EQ(gate->runs(), 1);
  EXPECT_EQ(handle.stats->queue_depth.load(), kCalls - 1);

  gate->Release();
  for (std::thread& client : clients) client.join();
  for (int i = 0; i < kCalls; ++i) {
    const size_t k = static_cast<size_t>(i);
    ASSERT_TRUE(statuses[k].ok()) << i << ": " << statuses[k].error_message();
    EXPECT_EQ(ValuesOf<float>(responses[k].raw_output_contents(0)),
              (std::vector<float>{static_cast<float>(i)}));
  }
}

// ---- Security: TLS, credentials, roles and bounds ----

constexpr std::string_view kInferToken = "opt_grpc-infer-token-0123456789abcdefghijklmn";
constexpr std::string_view kLabelToken = "opt_grpc-label-token-0123456789abcdefghijklmn";

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A key pair and a certificate for it.
struct Identity {
  crypto::KeyPairPem key;
  std::string cert_pem;
};

// A CA that issues certificates valid from an hour ago for a day.
struct TestCa {
  std::string cert_pem;
  std::unique_ptr<crypto::CertificateIssuer> issuer;

  static Result<TestCa> Make(const std::string& name) {
    OUTPOST_ASSIGN_OR_RETURN(crypto::KeyPairPem key,
                             crypto::GenerateKeyPairPem(crypto::KeyAlgorithm::kEcdsaP256));
    OUTPOST_ASSIGN_OR_RETURN(
        std::string ca_pem,
        crypto::SelfSignCertificate({.common_name = name,
                                     .validity = Validity(),
                                     .is_ca = true,
                                     .key_usage = crypto::kKeyCertSign | crypto::kCrlSign},
                                    key.private_pem));
    OUTPOST_ASSIGN_OR_RETURN(auto ca_issuer,
                             crypto::CertificateIssuer::Open(ca_pem, key.private_pem));
    return TestCa{.cert_pem = std::move(ca_pem), .issuer = std::move(ca_issuer)};
  }

  static crypto::Validity Validity() {
    return {.not_before_s = NowSeconds() - 3600, .not_after_s = NowSeconds() + 86400};
  }

  // A certificate for `key` (a new one when empty) named `common_name`.
  Result<Identity> Issue(const std::string& common_name, crypto::ExtendedKeyUsage usage,
                         crypto::KeyPairPem key = {}) const {
    if (key.private_pem.empty()) {
      OUTPOST_ASSIGN_OR_RETURN(key, crypto::GenerateKeyPairPem(crypto::KeyAlgorithm::kEcdsaP256));
    }
    std::vector<std::string> names;
    if (usage == crypto::ExtendedKeyUsage::kServerAuth) names = {"localhost", "127.0.0.1"};
    OUTPOST_ASSIGN_OR_RETURN(std::string leaf_pem,
                             issuer->Issue({.common_name = common_name,
                                            .validity = Validity(),
                                            .key_usage = crypto::kDigitalSignature,
                                            .extended_key_usage = {usage},
                                            .subject_alt_names = names},
                                           key.public_pem));
    return Identity{.key = std::move(key), .cert_pem = std::move(leaf_pem)};
  }
};

// A TLS channel to 127.0.0.1:`port` that trusts `root_pem`, with `client` as its certificate
// (none when its cert_pem is empty), on a connection of its own.
std::unique_ptr<GRPCInferenceService::Stub> ConnectTls(uint16_t port, const std::string& root_pem,
                                                       const Identity& client = {}) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = root_pem;
  ssl.pem_private_key = client.key.private_pem;
  ssl.pem_cert_chain = client.cert_pem;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return GRPCInferenceService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(port), grpc::SslCredentials(ssl), args));
}

enum class Rpc {
  kServerLive,
  kServerReady,
  kModelReady,
  kServerMetadata,
  kModelMetadata,
  kModelInfer
};
constexpr Rpc kEveryRpc[] = {Rpc::kServerLive,     Rpc::kServerReady,   Rpc::kModelReady,
                             Rpc::kServerMetadata, Rpc::kModelMetadata, Rpc::kModelInfer};
constexpr Rpc kRoleRpcs[] = {Rpc::kModelReady, Rpc::kServerMetadata, Rpc::kModelMetadata,
                             Rpc::kModelInfer};

std::string_view RpcName(Rpc rpc) {
  constexpr std::string_view kNames[] = {"ServerLive",     "ServerReady",   "ModelReady",
                                         "ServerMetadata", "ModelMetadata", "ModelInfer"};
  return kNames[static_cast<int>(rpc)];
}

// How a call ended: its code, message and the "outpost-reason" trailer ("" when none).
struct Answer {
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;
  std::string reason;
};

// Calls `rpc` on model "simple" with `authorization` as the metadata of that name ("" =
// none). `model_name` overrides the model named (to make a request large).
Answer Call(GRPCInferenceService::Stub& stub, Rpc rpc, std::string_view authorization,
            const std::string& model_name = "simple") {
  grpc::ClientContext context;
  if (!authorization.empty()) context.AddMetadata("authorization", std::string(authorization));
  grpc::Status status;
  switch (rpc) {
    case Rpc::kServerLive: {
      inference::ServerLiveResponse response;
      status = stub.ServerLive(&context, {}, &response);
      break;
    }
    case Rpc::kServerReady: {
      inference::ServerReadyResponse response;
      status = stub.ServerReady(&context, {}, &response);
      break;
    }
    case Rpc::kModelReady: {
      inference::ModelReadyRequest request;
      request.set_name(model_name);
      inference::ModelReadyResponse response;
      status = stub.ModelReady(&context, request, &response);
      break;
    }
    case Rpc::kServerMetadata: {
      inference::ServerMetadataResponse response;
      status = stub.ServerMetadata(&context, {}, &response);
      break;
    }
    case Rpc::kModelMetadata: {
      inference::ModelMetadataRequest request;
      request.set_name(model_name);
      inference::ModelMetadataResponse response;
      status = stub.ModelMetadata(&context, request, &response);
      break;
    }
    case Rpc::kModelInfer: {
      ModelInferRequest request = SimpleRawRequest();
      request.set_model_name(model_name);
      ModelInferResponse response;
      status = stub.ModelInfer(&context, request, &response);
      break;
    }
  }
  Answer answer{.code = status.error_code(), .message = status.error_message()};
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto it = trailers.find(std::string(kGrpcReasonKey)); it != trailers.end()) {
    answer.reason.assign(it->second.data(), it->second.size());
  }
  return answer;
}

std::string Bearer(std::string_view token) { return "Bearer " + std::string(token); }

// A TLS listener whose callers authenticate: "scorer" (kInferToken, role infer), "labeller"
// (kLabelToken, role label) and "client-a" (a client certificate from the site CA, role
// infer).
class GrpcSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OUTPOST_ASSERT_OK_AND_ASSIGN(site_ca_, TestCa::Make("site CA"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(server_identity_,
                                 site_ca_.Issue("edge", crypto::ExtendedKeyUsage::kServerAuth));
    cert_file_ = dir_.path() + "/server.crt";
    key_file_ = dir_.path() + "/server.key";
    OUTPOST_ASSERT_OK(WriteFileAtomically(cert_file_, server_identity_.cert_pem));
    OUTPOST_ASSERT_OK(WriteFileAtomically(key_file_, server_identity_.key.private_pem, 0600));

    auth::Credentials credentials{.entries = {{.name = "scorer",
                                               .roles = auth::RoleBit(auth::Role::kInfer),
                                               .token_sha256 = crypto::Sha256(kInferToken)},
                                              {.name = "labeller",
                                               .roles = auth::RoleBit(auth::Role::kLabel),
                                               .token_sha256 = crypto::Sha256(kLabelToken)},
                                              {.name = "client-a",
                                               .roles = auth::RoleBit(auth::Role::kInfer),
                                               .cert_common_name = "client-a"}}};
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        authenticator_,
        auth::Authenticator::FromParts(std::move(credentials), site_ca_.cert_pem, ""));
    repository_ = ModelRepository::FromModels(Models());
    OUTPOST_ASSERT_OK_AND_ASSIGN(simple_, repository_->Find("simple", std::nullopt));
  }

  void Start(GrpcServerOptions options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    options.tls_cert_file = cert_file_;
    options.tls_key_file = key_file_;
    options.authenticator = [this] { return authenticator_; };
    OUTPOST_ASSERT_OK_AND_ASSIGN(server_, GrpcServer::Start(*repository_, std::move(options)));
  }

  std::unique_ptr<GRPCInferenceService::Stub> Stub(const Identity& client = {}) {
    return ConnectTls(server_->port(), site_ca_.cert_pem, client);
  }

  // Model runs of "simple" so far: a refused call must not add one.
  uint64_t Runs() const { return simple_.stats->execution_count.load(); }

  outpost::testing::TempDir dir_;
  TestCa site_ca_;
  Identity server_identity_;
  std::string cert_file_, key_file_;
  std::shared_ptr<const auth::Authenticator> authenticator_;
  std::unique_ptr<ModelRepository> repository_;
  ModelHandle simple_;
  std::unique_ptr<GrpcServer> server_;
};

TEST_F(GrpcSecurityTest, TlsWithATokenOfTheRoleServesEveryMethod) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto stub = Stub();
  for (Rpc rpc : kEveryRpc) {
    Answer answer = Call(*stub, rpc, Bearer(kInferToken));
    EXPECT_EQ(answer.code, grpc::StatusCode::OK) << RpcName(rpc) << ": " << answer.message;
  }
  EXPECT_EQ(Runs(), 1u);
}

TEST_F(GrpcSecurityTest, NoCredentialIsUnauthenticatedAndOnlyTheHealthMethodsAreOpen) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto stub = Stub();
  EXPECT_EQ(Call(*stub, Rpc::kServerLive, "").code, grpc::StatusCode::OK);
  EXPECT_EQ(Call(*stub, Rpc::kServerReady, "").code, grpc::StatusCode::OK);
  for (Rpc rpc : kRoleRpcs) {
    Answer answer = Call(*stub, rpc, "");
    EXPECT_EQ(answer.code, grpc::StatusCode::UNAUTHENTICATED) << RpcName(rpc);
    EXPECT_EQ(answer.reason, "credential_missing") << RpcName(rpc);
  }
  EXPECT_EQ(Runs(), 0u);
}

TEST_F(GrpcSecurityTest, AWrongOrMalformedTokenIsUnauthenticatedWithItsReason) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto stub = Stub();
  for (Rpc rpc : kRoleRpcs) {
    Answer wrong = Call(*stub, rpc, Bearer("opt_not-a-token-of-this-site-0123456789abcdefgh"));
    EXPECT_EQ(wrong.code, grpc::StatusCode::UNAUTHENTICATED) << RpcName(rpc);
    EXPECT_EQ(wrong.reason, "credential_invalid") << RpcName(rpc);
    EXPECT_EQ(wrong.message.find(kInferToken), std::string::npos);
    Answer malformed = Call(*stub, rpc, "Basic " + std::string(kInferToken));
    EXPECT_EQ(malformed.code, grpc::StatusCode::UNAUTHENTICATED) << RpcName(rpc);
    EXPECT_EQ(malformed.reason, "credential_malformed") << RpcName(rpc);
  }
  EXPECT_EQ(Runs(), 0u);
}

TEST_F(GrpcSecurityTest, ATokenWithoutTheRoleIsPermissionDenied) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto stub = Stub();
  for (Rpc rpc : kRoleRpcs) {
    Answer answer = Call(*stub, rpc, Bearer(kLabelToken));
    EXPECT_EQ(answer.code, grpc::StatusCode::PERMISSION_DENIED) << RpcName(rpc);
    EXPECT_EQ(answer.reason, "role_required") << RpcName(rpc);
  }
  // The health methods do not care who calls.
  EXPECT_EQ(Call(*stub, Rpc::kServerLive, Bearer(kLabelToken)).code, grpc::StatusCode::OK);
  EXPECT_EQ(Call(*stub, Rpc::kServerReady, Bearer(kLabelToken)).code, grpc::StatusCode::OK);
  EXPECT_EQ(Runs(), 0u);
}

TEST_F(GrpcSecurityTest, AClientCertificateFromTheSiteCaAuthenticates) {
  ASSERT_NO_FATAL_FAILURE(Start());
  OUTPOST_ASSERT_OK_AND_ASSIGN(Identity client,
                               site_ca_.Issue("client-a", crypto::ExtendedKeyUsage::kClientAuth));
  auto stub = Stub(client);
  Answer answer = Call(*stub, Rpc::kModelInfer, "");
  EXPECT_EQ(answer.code, grpc::StatusCode::OK) << answer.message;
  EXPECT_EQ(Runs(), 1u);
}

TEST_F(GrpcSecurityTest, AClientCertificateFromAnotherCaIsUnauthenticated) {
  ASSERT_NO_FATAL_FAILURE(Start());
  OUTPOST_ASSERT_OK_AND_ASSIGN(TestCa other_ca, TestCa::Make("another CA"));
  // The same name as a credential of this site, from a CA the site does not trust.
  OUTPOST_ASSERT_OK_AND_ASSIGN(Identity stranger,
                               other_ca.Issue("client-a", crypto::ExtendedKeyUsage::kClientAuth));
  auto stub = Stub(stranger);
  for (Rpc rpc : kRoleRpcs) {
    Answer answer = Call(*stub, rpc, "");
    EXPECT_EQ(answer.code, grpc::StatusCode::UNAUTHENTICATED) << RpcName(rpc);
    EXPECT_EQ(answer.reason, "certificate_untrusted") << RpcName(rpc);
  }
  EXPECT_EQ(Call(*stub, Rpc::kServerLive, "").code, grpc::StatusCode::OK);
  EXPECT_EQ(Runs(), 0u);
}

TEST_F(GrpcSecurityTest, APlaintextClientIsRefusedByATlsListener) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto plain = Connect(server_->port());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ModelInferResponse response;
  grpc::Status status = plain->ModelInfer(&context, SimpleRawRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(Runs(), 0u);
}

TEST_F(GrpcSecurityTest, EveryMethodButModelInferRefusesARequestOverItsBound) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto stub = Stub();
  const std::string long_name(kMaxSmallRequestBytes + 1, 'm');
  for (Rpc rpc : {Rpc::kModelReady, Rpc::kModelMetadata}) {
    Answer answer = Call(*stub, rpc, Bearer(kInferToken), long_name);
    EXPECT_EQ(answer.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << RpcName(rpc);
    EXPECT_EQ(answer.reason, "message_too_large") << RpcName(rpc);
  }
  // The same bound checked after the caller: a stranger learns nothing of it.
  EXPECT_EQ(Call(*stub, Rpc::kModelMetadata, "", long_name).reason, "credential_missing");
  // ModelInfer takes messages up to max_message_bytes: 256 KiB of input is served.
  ModelInferRequest large;
  large.set_model_name("echo_fp32");
  AddInput(large, "x", "FP32", {64 << 10});
  large.add_raw_input_contents(std::string(256 << 10, '\0'));
  grpc::ClientContext context;
  context.AddMetadata("authorization", Bearer(kInferToken));
  ModelInferResponse response;
  grpc::Status status = stub->ModelInfer(&context, large, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Runs(), 0u);  // "simple" never ran
}

TEST_F(GrpcSecurityTest, ARenewedCertificateReachesNewConnectionsWhileOpenOnesKeepServing) {
  ASSERT_NO_FATAL_FAILURE(Start({.tls_reload_interval = std::chrono::seconds(1)}));
  auto open = Stub();
  ASSERT_EQ(Call(*open, Rpc::kServerLive, "").code, grpc::StatusCode::OK);

  // The same key, a new certificate (a new serial), swapped in by a rename.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      Identity renewed,
      site_ca_.Issue("edge", crypto::ExtendedKeyUsage::kServerAuth, server_identity_.key));
  ASSERT_NE(renewed.cert_pem, server_identity_.cert_pem);
  OUTPOST_ASSERT_OK(WriteFileAtomically(cert_file_, renewed.cert_pem));

  // gRPC re-reads the files on its own timer, with no hook to wait on: new connections are
  // polled until one is served the renewed certificate.
  OUTPOST_ASSERT_OK_AND_ASSIGN(crypto::CertificateInfo wanted,
                               crypto::ParseCertificatePem(renewed.cert_pem));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string served;  // the fingerprint of the certificate a new connection was served
  while (served != wanted.fingerprint && std::chrono::steady_clock::now() < deadline) {
    auto fresh = Stub();
    grpc::ClientContext context;
    inference::ServerLiveResponse response;
    ASSERT_TRUE(fresh->ServerLive(&context, {}, &response).ok());
    std::vector<grpc::string_ref> pems =
        context.auth_context()->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    ASSERT_FALSE(pems.empty());
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        crypto::CertificateInfo info,
        crypto::ParseCertificatePem(std::string_view(pems.front().data(), pems.front().size())));
    served = info.fingerprint;
    if (served != wanted.fingerprint) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(served, wanted.fingerprint);
  // The connection opened before the renewal was not dropped.
  Answer answer = Call(*open, Rpc::kModelInfer, Bearer(kInferToken));
  EXPECT_EQ(answer.code, grpc::StatusCode::OK) << answer.message;
}

TEST_F(GrpcSecurityTest, TlsFilesThatCannotServeFailTheStart) {
  const std::string no_pem = dir_.path() + "/empty.pem";
  OUTPOST_ASSERT_OK(WriteFileAtomically(no_pem, "not a certificate\n"));
  struct Case {
    std::string cert, key;
    StatusCode code;
  };
  for (const Case& c :
       {Case{cert_file_, "", StatusCode::kInvalidArgument},
        Case{"", key_file_, StatusCode::kInvalidArgument},
        Case{dir_.path() + "/missing.crt", key_file_, StatusCode::kFailedPrecondition},
        Case{no_pem, key_file_, StatusCode::kFailedPrecondition},
        Case{cert_file_, no_pem, StatusCode::kFailedPrecondition},
        Case{cert_file_, cert_file_, StatusCode::kFailedPrecondition}}) {
    SCOPED_TRACE(c.cert + " " + c.key);
    Result<std::unique_ptr<GrpcServer>> server = GrpcServer::Start(
        *repository_,
        {.address = "127.0.0.1", .port = 0, .tls_cert_file = c.cert, .tls_key_file = c.key});
    ASSERT_FALSE(server.ok());
    EXPECT_EQ(server.status().code(), c.code) << server.status().ToString();
  }
}

TEST(GrpcServer, WithoutAnAuthenticatorCallersAreAnonymousWithTheConfiguredRoles) {
  auto repository = ModelRepository::FromModels(Models());
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelHandle simple, repository->Find("simple", std::nullopt));
  // An authenticator function that returns none counts as no credentials.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto server,
      GrpcServer::Start(
          *repository,
          {.address = "127.0.0.1",
           .port = 0,
           .authenticator = [] { return std::shared_ptr<const auth::Authenticator>(); },
           .anonymous_roles = auth::RoleBit(auth::Role::kRead)}));
  auto stub = Connect(server->port());
  EXPECT_EQ(Call(*stub, Rpc::kServerLive, "").code, grpc::StatusCode::OK);
  for (Rpc rpc : kRoleRpcs) {
    Answer answer = Call(*stub, rpc, Bearer(kInferToken));
    EXPECT_EQ(answer.code, grpc::StatusCode::PERMISSION_DENIED) << RpcName(rpc);
    EXPECT_EQ(answer.reason, "role_required") << RpcName(rpc);
  }
  EXPECT_EQ(simple.stats->execution_count.load(), 0u);

  // The default anonymous roles include infer.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto open,
                               GrpcServer::Start(*repository, {.address = "127.0.0.1", .port = 0}));
  auto open_stub = Connect(open->port());
  EXPECT_EQ(Call(*open_stub, Rpc::kModelInfer, "").code, grpc::StatusCode::OK);
  EXPECT_EQ(simple.stats->execution_count.load(), 1u);
}

TEST(GrpcServer, BoundsOutsideTheirRangeAreInvalid) {
  auto repository = ModelRepository::FromModels(Models());
  for (GrpcServerOptions options :
       {GrpcServerOptions{.port = 0, .max_threads = 1},
        GrpcServerOptions{.port = 0, .max_concurrent_streams = 0},
        GrpcServerOptions{.port = 0, .tls_reload_interval = std::chrono::seconds(0)},
        GrpcServerOptions{.port = 0, .handshake_timeout = std::chrono::milliseconds(0)}}) {
    Result<std::unique_ptr<GrpcServer>> server = GrpcServer::Start(*repository, options);
    ASSERT_FALSE(server.ok());
    EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(GrpcServer, UnauthenticatedAndPermissionDeniedMapToTheirGrpcCodes) {
  EXPECT_EQ(GrpcCodeFor(StatusCode::kUnauthenticated),
            static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_EQ(GrpcCodeFor(StatusCode::kPermissionDenied),
            static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
}

}  // namespace
}  // namespace outpost::serve
