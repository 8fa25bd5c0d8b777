// libFuzzer target: arbitrary bytes as a serialized inference.ModelInferRequest through
// ModelInferSerialized (what the gRPC service runs for each ModelInfer call) with fake models.
// Any crash, leak or sanitizer report is a bug, and so is an answer that is not either a
// response or one of the codes the RPC documents.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "serve/grpc_server.h"
#include "serve/testing/fake_models.h"

namespace {

using outpost::StatusCode;
using outpost::engine::DataType;
using namespace outpost::serve;

const ModelRepository& GetRepository() {
  static const ModelRepository* repository = [] {
    auto echo = [](DataType t) { return std::make_shared<testing::EchoModel>(t); };
    return ModelRepository::FromModels(
               {
                   testing::ReadyServable(
                       "simple", {{1, std::make_shared<testing::AddSubModel>(DataType::kInt32)}}),
                   testing::ReadyServable("echo_bool", {{1, echo(DataType::kBool)}}),
                   testing::ReadyServable("echo_int8", {{1, echo(DataType::kInt8)}}),
                   testing::ReadyServable("echo_uint16", {{1, echo(DataType::kUint16)}}),
                   testing::ReadyServable("echo_fp16", {{1, echo(DataType::kFp16)}}),
                   testing::ReadyServable("echo_fp32", {{1, echo(DataType::kFp32)}}),
                   testing::ReadyServable("echo_bytes", {{1, echo(DataType::kBytes)}}),
                   testing::ReadyServable("failing", {{1, std::make_shared<testing::FailingModel>(
                                                              outpost::InternalError("fails"))}}),
                   testing::BrokenServable("broken", 1, "corrupt"),
               })
        .release();
  }();
  return *repository;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const GrpcServerOptions options{.max_message_bytes = 1 << 20, .max_total_elements = 1 << 16};
  std::string response;
  outpost::Status status =
      ModelInferSerialized(GetRepository(), options,
                           std::string_view(reinterpret_cast<const char*>(data), size), response);
  if (status.ok() != !response.empty()) std::abort();
  switch (status.code()) {
    case StatusCode::kOk:
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
    case StatusCode::kInternal:  // the "failing" model
      return 0;
    default:
      std::abort();
  }
}
