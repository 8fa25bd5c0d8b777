// The bodies of the Open Inference Protocol's infer call (KServe v2 / Triton REST), JSON and
// Triton's binary tensor data extension: parsing a request into tensors and writing a
// response. infer_json.cc reads the JSON through the JSON adapter (base/json/json.h).
//
// Request, as the protocol defines it:
//   {"id": "r1",                                   optional string, echoed back
//    "parameters": {"k": "v" | 1 | 1.5 | true},    optional; kept, not interpreted
//    "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3],
//                "parameters": {...},              optional
//                "data": [[1, 2, 3], [4, 5, 6]]}], flat or nested to any depth, row-major
//    "outputs": [{"name": "y", "parameters": {...}}]}   optional; absent or [] = every output
//
// Binary tensor data (Triton's extension, the default of tritonclient): the body is the JSON
// header followed by raw tensor bytes, and the HTTP header Inference-Header-Content-Length
// gives the JSON's length. An input with parameter "binary_data_size": n has no "data"; its
// n bytes are the next ones after the JSON, inputs taking theirs in the order they appear.
// Layout: elements little-endian and row-major at their natural size, BOOL one byte (0 or 1),
// BYTES each element a uint32 little-endian length and its bytes. Every byte after the JSON
// must belong to an input.
//
// What Outpost accepts, where the protocol leaves it to the server:
//   - `data` is an array; nesting is flattened and need not follow `shape`, but the number of
//     elements must equal the product of `shape`.
//   - BOOL takes true/false only. INT*/UINT* take JSON integers only (1.0 is rejected) and a
//     value outside the datatype's range is rejected, never truncated. FP32 takes any number
//     whose magnitude rounds to a finite float; FP64 any number; both take null as a missing
//     value (NaN), which tree models route down their default branch. BYTES takes strings.
//     FP16 and BF16 cannot be carried in JSON; they must come as binary data.
//   - Unknown keys are ignored, as Triton does; a key given twice in one object is rejected.
//   - `shared_memory_*` and `classification` parameters (extensions Outpost does not offer)
//     are rejected, so a client never has its data silently ignored or its answer changed.
// Every rejection is an InvalidArgument whose message names the input and the reason; a
// size limit hit is ResourceExhausted.
//
// Response:
//   {"model_name": "m", "model_version": "1", "id": "r1",
//    "outputs": [{"name": "y", "datatype": "FP32", "shape": [2], "data": [0.5, 0.25]}]}
// `id` only when the request had one. Numbers are written in their shortest form that reads
// back to the same value (FP32 as a float: 0.1f is written 0.1); NaN and infinities are
// written as null. BOOL as true/false, BYTES as strings (invalid UTF-8 becomes U+FFFD).
// An output is sent as binary data instead when its requested output has parameter
// "binary_data": true, or, without that parameter, when the request has parameter
// "binary_data_output": true: its JSON then carries "parameters": {"binary_data_size": n}
// and no "data", and its n bytes follow the JSON, in the order of the outputs.
#ifndef OUTPOST_SERVE_INFER_JSON_H_
#define OUTPOST_SERVE_INFER_JSON_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "engine/tensor.h"

namespace outpost::serve {

// Bytes a body's buffer should have allocated past its end (std::string::capacity() -
// size()) for the parser to read it in place; a body without them is copied once into a
// per-thread buffer first.
inline constexpr size_t kJsonPadding = 64;

// The most dimensions a request's `shape` may have.
inline constexpr size_t kMaxShapeRank = 32;

// Bounds on what one request may make the server hold. All are enforced before the memory
// is committed.
struct InferJsonLimits {
  // Largest request body, in bytes.
  size_t max_body_bytes = 64 << 20;
  // Largest number of tensor elements, summed over all inputs.
  int64_t max_total_elements = 16 << 20;
  // Deepest nesting of arrays and objects anywhere in the document (the top-level object
  // counts as 1, so an input's `data` of rank r nests r + 3 deep).
  size_t max_depth = 64;
};

// A request or tensor parameter's value. JSON integers that fit int64 become int64_t, larger
// ones uint64_t; other numbers double.
using ParameterValue = std::variant<bool, int64_t, uint64_t, double, std::string>;
struct Parameter {
  std::string name;
  ParameterValue value;
};
using Parameters = std::vector<Parameter>;

struct InferInput {
  std::string name;
  engine::Tensor tensor{};  // datatype, shape and data as the request gave them
  Parameters parameters{};
};

struct InferRequestedOutput {
  std::string name;
  Parameters parameters{};
  // Its "binary_data" parameter; absent = the request's binary_data_output.
  std::optional<bool> binary_data{};
};

struct InferRequest {
  std::optional<std::string> id;
  Parameters parameters;
  std::vector<InferInput> inputs;
  std::vector<InferRequestedOutput> outputs;  // empty = every output of the model
  // The request's "binary_data_output" parameter: outputs default to binary data.
  bool binary_data_output = false;
  // The request's "timeout" parameter in microseconds (as Triton takes it): how long it may
  // wait in the model's queue. 0 = the model's default (serve/scheduler.h).
  uint64_t timeout_us = 0;
  // Set by the front end, not parsed: true once the client has gone (REST: its connection
  // closed; gRPC: the call was cancelled). Empty = never. Must be cheap; it is called while
  // the request waits in the model's queue.
  std::function<bool()> cancelled{};
};

// The largest "timeout" a request may give: one hour.
inline constexpr int64_t kMaxRequestTimeoutUs = 3'600'000'000;

// Parses an infer request body into `request` (overwritten). The first `json_size` bytes of
// `body` are the JSON and the rest binary tensor data (the overloads without `json_size`
// take the whole body as JSON). The JSON is read in place when kJsonPadding bytes after it
// are readable (binary data, or the string's spare capacity), and copied once otherwise.
// Errors: ResourceExhausted when a limit is passed (body size, total elements); InvalidArgument
// for malformed JSON, JSON nested deeper than the limit, a wrong or missing field, a bad
// datatype, shape or value, an element count that differs from the shape's, binary data that
// does not match its input or is left over, and a json_size larger than the body.
// Thread-safe: each thread parses with its own reusable parser.
Status ParseInferRequest(const std::string& body, const InferJsonLimits& limits,
                         InferRequest& request);
Status ParseInferRequest(const std::string& body, size_t json_size, const InferJsonLimits& limits,
                         InferRequest& request);
// The same for a body held elsewhere.
Status ParseInferRequest(std::string_view body, const InferJsonLimits& limits,
                         InferRequest& request);
Status ParseInferRequest(std::string_view body, size_t json_size, const InferJsonLimits& limits,
                         InferRequest& request);

// The body of a repository call (POST /v2/repository/index, .../load, .../unload): empty, or a
// JSON object. The protocol defines one field for the index, "ready" (optional boolean: true
// lists only models that are ready), and "parameters" (optional object) for load and unload.
// Unknown keys are ignored, as in an infer request. Outpost takes no load or unload parameter
// (Triton's "config" and "file:" overrides, "unload_dependents"), so a non-empty "parameters"
// is refused rather than ignored. InvalidArgument for a body that is not a JSON object, a key
// given twice, or a field of the wrong type.
struct RepositoryRequest {
  bool ready_only = false;  // the index's "ready": true
};
enum class RepositoryCall { kIndex, kLoad, kUnload };
Result<RepositoryRequest> ParseRepositoryRequest(std::string_view body, RepositoryCall call);

// One output to write: a name, the tensor the model produced for it, and whether it goes as
// binary data.
struct OutputRef {
  std::string_view name;
  const engine::Tensor* tensor = nullptr;  // not owned; outlives the write
  bool binary = false;
};

// Appends the infer response to `out`: the JSON, then the bytes of the binary outputs.
// `json_size` receives the JSON's length (for Inference-Header-Content-Length); it is all
// that was appended when no output is binary. InvalidArgument when an output that is not
// binary has a datatype JSON cannot carry (FP16, BF16); `out` then holds a partial document
// the caller discards.
Status WriteInferResponse(std::string_view model_name, int64_t model_version,
                          const std::optional<std::string>& id, std::span<const OutputRef> outputs,
                          std::string& out, size_t& json_size);

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_INFER_JSON_H_
