// libFuzzer target: arbitrary bytes as an infer request body through Handler::Handle with
// fake models, and straight into the request parser with and without padding. The first byte
// steers: its top bit makes the input "<target>\n<body>" (routing, versions and the repository
// calls); otherwise bit 6 makes the next two bytes an Inference-Header-Content-Length (binary
// tensor data) and the low bits pick the model. Any crash, leak or sanitizer report is a bug,
// and so is an answer that breaks what the protocol promises for its route (CheckAnswer).
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include "serve/handler.h"
#include "serve/infer_json.h"
#include "serve/testing/fake_models.h"

namespace {

using outpost::engine::DataType;
using namespace outpost::serve;

const char* const kModels[] = {"simple",     "simple_fp32", "echo_bool", "echo_uint8",
                               "echo_int64", "echo_uint64", "echo_fp64", "echo_bytes",
                               "echo_int8",  "failing"};

struct World {
  std::unique_ptr<ModelRepository> repository;
  std::unique_ptr<Handler> handler;
};

// The fake models, as new. A repository call that changes them (an unload) is undone by
// making the world again, so that one input cannot leave every later one a 503.
std::unique_ptr<World> MakeWorld() {
  auto echo = [](DataType t) { return std::make_shared<testing::EchoModel>(t); };
  auto w = std::make_unique<World>();
  w->repository = ModelRepository::FromModels({
      testing::ReadyServable("simple",
                             {{1, std::make_shared<testing::AddSubModel>(DataType::kInt32)}}),
      testing::ReadyServable("simple_fp32",
                             {{1, std::make_shared<testing::AddSubModel>(DataType::kFp32)}}),
      testing::ReadyServable("echo_bool", {{1, echo(DataType::kBool)}}),
      testing::ReadyServable("echo_uint8", {{1, echo(DataType::kUint8)}}),
      testing::ReadyServable("echo_int64", {{1, echo(DataType::kInt64)}}),
      testing::ReadyServable("echo_uint64", {{1, echo(DataType::kUint64)}}),
      testing::ReadyServable("echo_fp64", {{1, echo(DataType::kFp64)}}),
      testing::ReadyServable("echo_bytes", {{1, echo(DataType::kBytes)}}),
      testing::ReadyServable("echo_int8", {{1, echo(DataType::kInt8)}}),
      testing::ReadyServable("failing", {{1, std::make_shared<testing::FailingModel>(
                                                 outpost::InternalError("fails"))}}),
  });
  w->handler = std::make_unique<Handler>(
      *w->repository,
      HandlerOptions{
          .limits = {.max_body_bytes = 1 << 20, .max_total_elements = 1 << 16, .max_depth = 32},
          .allow_model_control = true});  // so that load and unload are fuzzed too
  return w;
}

std::unique_ptr<World>& TheWorld() {
  static std::unique_ptr<World> world = MakeWorld();
  return world;
}

// What the protocol (and Outpost's README) promise of an answer to `request`:
//   - a status that HttpStatusFor can give (no 401/403: the handler has no credentials);
//   - an error is a JSON object {"error": ...};
//   - GET /metrics is Prometheus text; POST /v2/repository/index a JSON array; every other
//     route a JSON object (application/json), or, when the answer gives an
//     Inference-Header-Content-Length, that many bytes of JSON object followed by the bytes
//     of the binary outputs (application/octet-stream).
void CheckAnswer(const HttpRequest& request, const HttpResponse& response) {
  switch (response.status) {
    case 200:
    case 400:
    case 404:
    case 405:
    case 413:
    case 500:
    case 501:
    case 503:
      break;
    default:
      std::abort();
  }
  const std::string_view path =
      std::string_view(request.target).substr(0, request.target.find('?'));
  if (response.status == 200 && path == "/metrics") {
    if (!response.content_type.starts_with("text/plain")) std::abort();
    return;
  }
  // JSON, or (binary tensor data) the JSON followed by the outputs' bytes, as octets.
  bool binary = false;
  std::string_view json = response.body;
  for (const auto& [name, value] : response.headers) {
    if (name != "Inference-Header-Content-Length") continue;
    binary = true;
    size_t json_size = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), json_size);
    if (ec != std::errc() || end != value.data() + value.size() || json_size > json.size()) {
      std::abort();
    }
    json = json.substr(0, json_size);
  }
  if (response.content_type != (binary ? "application/octet-stream" : "application/json")) {
    std::abort();
  }
  const bool array = response.status == 200 && path == "/v2/repository/index";
  if (json.size() < 2 || json.front() != (array ? '[' : '{') ||
      json.back() != (array ? ']' : '}')) {
    std::abort();
  }
  if (response.status != 200 && !json.starts_with("{\"error\":")) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<World>& world = TheWorld();
  std::string_view input(reinterpret_cast<const char*>(data), size);

  HttpRequest request;
  request.method = "POST";
  std::string target;
  std::string json_length;
  size_t binary_json_size = SIZE_MAX;
  if (!input.empty() && (static_cast<uint8_t>(input[0]) & 0x80) != 0) {
    // "<target>\n<body>": exercises routing and version parsing too.
    size_t newline = input.find('\n', 1);
    target.assign(input.substr(1, newline == std::string_view::npos ? input.size() : newline - 1));
    input = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
    if (!target.empty() && (target.size() & 1)) request.method = "GET";
  } else if (!input.empty()) {
    const uint8_t steer = static_cast<uint8_t>(input[0]);
    target = std::string("/v2/models/") + kModels[(steer & 0x3f) % std::size(kModels)] + "/infer";
    input.remove_prefix(1);
    if ((steer & 0x40) != 0 && input.size() >= 2) {
      size_t json_size = static_cast<uint8_t>(input[0]) | (static_cast<uint8_t>(input[1]) << 8);
      input.remove_prefix(2);
      json_length = std::to_string(json_size);
      request.headers.push_back({"Inference-Header-Content-Length", json_length});
      binary_json_size = json_size;
    }
  } else {
    target = "/v2/models/simple/infer";
  }
  request.target = target;
  request.body.reserve(input.size() + kJsonPadding);
  request.body.assign(input);

  HttpResponse response;
  world->handler->Handle(request, response);
  CheckAnswer(request, response);
  if (response.status == 200 && target.starts_with("/v2/repository/models/")) world = MakeWorld();

  // The parser alone, reading a string_view (copied unless followed by binary data).
  InferRequest parsed;
  const InferJsonLimits limits{
      .max_body_bytes = 1 << 20, .max_total_elements = 1 << 16, .max_depth = 16};
  if (binary_json_size == SIZE_MAX) {
    (void)ParseInferRequest(input, limits, parsed);
  } else {
    (void)ParseInferRequest(input, binary_json_size, limits, parsed);
  }
  return 0;
}
