// GrpcServer: the Open Inference Protocol's gRPC form (inference.GRPCInferenceService, see
// serve/inference.proto) over a model repository. grpc_server.cc is the only file of serve/
// that sees gRPC or protobuf types; this header shows neither.
//
// RPCs: ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer. Any
// other method of Triton's service is answered UNIMPLEMENTED by gRPC itself.
//
// ModelInfer, as Triton does it:
//   - model_version empty = the highest ready version; otherwise decimal digits.
//   - Each input's data comes from its typed `contents`, or else from the next unused entry
//     of raw_input_contents. An input with `contents` while raw_input_contents is not empty,
//     an input with no data, or a raw entry no input used is INVALID_ARGUMENT.
//   - Typed data must be in the datatype's field (FP32 in fp32_contents, INT8/16/32 in
//     int_contents, ...), exactly as many elements as the shape holds; a value outside a
//     narrow datatype's range is rejected. FP16/BF16 come only as raw data.
//   - Raw data: little-endian, row-major, natural element size, BOOL one byte 0 or 1, BYTES
//     each element a uint32 little-endian length then its bytes; the byte count must match
//     the shape exactly.
//   - `outputs` selects and orders the outputs returned; none = all, in signature order.
//   - The response echoes id, model_name and the version that answered, and carries every
//     output's data in raw_output_contents (same index as `outputs`), never in `contents`.
//   - Parameters Outpost does not offer (shared_memory_*, classification) are rejected.
//
// Errors: base/status_mapping.h's GrpcCodeFor() is the one place a Status becomes a gRPC
// status code; the Status's reason is sent as the trailing metadata "outpost-reason".
//
// Thread-safety: Start() and Stop() from one owning thread; RPCs are served concurrently on
// gRPC's own threads.
#ifndef OUTPOST_SERVE_GRPC_SERVER_H_
#define OUTPOST_SERVE_GRPC_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "base/status_mapping.h"
#include "insight/evaluator.h"
#include "serve/repository.h"

namespace outpost::serve {

struct GrpcServerOptions {
  // Host to listen on: an IPv4 or IPv6 address (without brackets) or a name.
  std::string address = "0.0.0.0";
  // 0 = any free port; port() tells which one was taken.
  uint16_t port = 8001;
  // Largest message received or sent, in bytes (gRPC's own default is 4 MiB). At most
  // INT32_MAX. A larger request is refused by gRPC with RESOURCE_EXHAUSTED.
  size_t max_message_bytes = 64 << 20;
  // Largest number of tensor elements in one request, summed over its inputs; more is
  // RESOURCE_EXHAUSTED.
  int64_t max_total_elements = 16 << 20;
  // Reported by ServerMetadata.
  std::string server_name = "outpost";
  std::string server_version = "";  // empty = the version Outpost was built as
  // Receives every successfully scored batch for the model's insight rules, as the REST
  // handler's HandlerOptions::insight. Not owned; must outlive the server. Null = none.
  insight::InsightSink* insight = nullptr;
};

// What the service does for one ModelInfer call, without a network: parses `request` as a
// serialized inference.ModelInferRequest, runs it and writes the serialized
// ModelInferResponse to `response`. For embedding and for the fuzz target. Errors as the RPC's
// (see above); InvalidArgument when `request` is not a ModelInferRequest, ResourceExhausted
// when it is larger than options.max_message_bytes. Thread-safe.
Status ModelInferSerialized(const ModelRepository& repository, const GrpcServerOptions& options,
                            std::string_view request, std::string& response);

class GrpcServer {
 public:
  // Listens and starts serving. `repository` is not owned and must outlive the server.
  // InvalidArgument for bad options; Unavailable when the address cannot be bound.
  static Result<std::unique_ptr<GrpcServer>> Start(const ModelRepository& repository,
                                                   GrpcServerOptions options);

  // Stops with a deadline of 5 s if Stop() was not called.
  ~GrpcServer();

  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // The port the server listens on.
  uint16_t port() const { return port_; }

  // Refuses new calls at once, lets calls in flight finish until `deadline` has passed, then
  // cancels those still running, and returns when every handler has returned. Idempotent.
  void Stop(std::chrono::milliseconds deadline = std::chrono::seconds(5));

 private:
  struct Impl;
  GrpcServer(std::unique_ptr<Impl> impl, uint16_t port);

  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_GRPC_SERVER_H_
