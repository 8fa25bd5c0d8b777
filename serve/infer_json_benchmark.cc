// What the infer call's JSON costs on the scoring path: ParseInferRequest on a request with one
// FP32 input (1x8, the load bench's body; 1x64; 1x3x224x224, an image) and WriteInferResponse
// of an FP32 output of the same sizes, each next to its floor measured in the same run: the
// number conversions alone (std::from_chars over the request's numbers; std::to_chars of the
// output's values into a preallocated buffer), the least any JSON reader or writer must pay.
// The numbers are written as a client's JSON library writes float32 values widened to double
// (up to 17 significant digits), the common case for numpy's tolist() and json.dumps.
//
//   build-*/serve/infer_json_benchmark [--benchmark_filter=Parse]
//
// Under perf: perf record -g build-*/serve/infer_json_benchmark --benchmark_filter=Parse/150528
#include <benchmark/benchmark.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "serve/infer_json.h"

namespace outpost::serve {
namespace {

// Shapes by element count: the load bench's 1x8, a 1x64 row, a 1x3x224x224 image.
engine::Shape ShapeFor(int64_t count) {
  if (count == 3 * 224 * 224) return {1, 3, 224, 224};
  return {1, count};
}

std::vector<float> Values(int64_t count) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-2.5f, 2.5f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& v : values) v = dist(rng);
  return values;
}

// The request body as a client sends it, with kJsonPadding bytes of spare capacity (as the
// HTTP server leaves them), so that the parser reads it in place.
std::string RequestBody(const std::vector<float>& values, const engine::Shape& shape) {
  std::string body = R"({"id":"bench","inputs":[{"name":"x","datatype":"FP32","shape":[)";
  for (size_t d = 0; d < shape.size(); ++d) {
    if (d != 0) body.push_back(',');
    body += std::to_string(shape[d]);
  }
  body += R"(],"data":[)";
  char buf[32];
  for (size_t i = 0; i < values.size(); ++i) {
    if (i != 0) body.push_back(',');
    body.append(buf, std::to_chars(buf, buf + sizeof buf, static_cast<double>(values[i])).ptr);
  }
  body += "]}]}";
  body.reserve(body.size() + kJsonPadding);
  return body;
}

void BM_ParseInferRequest(benchmark::State& state) {
  const int64_t count = state.range(0);
  const std::string body = RequestBody(Values(count), ShapeFor(count));
  InferRequest request;
  for (auto _ : state) {
    Status status = ParseInferRequest(body, InferJsonLimits{}, request);
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(request.inputs[0].tensor.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_ParseInferRequest)->Arg(8)->Arg(64)->Arg(3 * 224 * 224);

// Floor: the request's numbers converted with std::from_chars, already split (no JSON).
void BM_ParseFloor(benchmark::State& state) {
  const int64_t count = state.range(0);
  const std::vector<float> values = Values(count);
  std::string text;
  std::vector<size_t> starts;
  char buf[32];
  for (float v : values) {
    starts.push_back(text.size());
    text.append(buf, std::to_chars(buf, buf + sizeof buf, static_cast<double>(v)).ptr);
    text.push_back(',');
  }
  std::vector<float> out(values.size());
  for (auto _ : state) {
    const char* p = text.data();
    const char* const end = text.data() + text.size();
    for (float& v : out) {
      double d = 0;
      p = std::from_chars(p, end, d).ptr + 1;
      v = static_cast<float>(d);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_ParseFloor)->Arg(8)->Arg(64)->Arg(3 * 224 * 224);

void BM_WriteInferResponse(benchmark::State& state) {
  const int64_t count = state.range(0);
  const std::vector<float> values = Values(count);
  engine::Tensor tensor(engine::DataType::kFp32, ShapeFor(count));
  std::copy(values.begin(), values.end(), tensor.values<float>().begin());
  const OutputRef ref{.name = "y", .tensor = &tensor};
  const std::optional<std::string> id("bench");
  size_t bytes = 0;
  for (auto _ : state) {
    // A fresh body each time, as the server writes each answer into a new response.
    std::string out;
    size_t json_size = 0;
    Status status = WriteInferResponse("model", 1, id, std::span(&ref, 1), out, json_size);
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(out.data());
    bytes = out.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_WriteInferResponse)->Arg(8)->Arg(64)->Arg(3 * 224 * 224);

// Floor: the output's floats written with std::to_chars, comma-separated, into a buffer that
// is already large enough.
void BM_WriteFloor(benchmark::State& state) {
  const int64_t count = state.range(0);
  const std::vector<float> values = Values(count);
  std::vector<char> buffer(values.size() * 17 + 2);
  for (auto _ : state) {
    char* p = buffer.data();
    char* const end = buffer.data() + buffer.size();
    for (float v : values) {
      p = std::to_chars(p, end, v).ptr;
      *p++ = ',';
    }
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_WriteFloor)->Arg(8)->Arg(64)->Arg(3 * 224 * 224);

}  // namespace
}  // namespace outpost::serve

BENCHMARK_MAIN();
