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
// Transport: plaintext, or TLS only (1.2 or newer) with the PEM certificate and key files of
// GrpcServerOptions, re-read every tls_reload_interval so that a renewed certificate reaches
// new connections while open ones keep theirs. The TLS layer asks for a client certificate
// and proves that the client holds its key, but does not judge it: the authenticator does.
//
// Who may call, decided in one place before every method's own work, the same way as the REST
// listener's gate (base/auth/http_gate.h), so both answer one caller with the same reasons:
//   ServerLive, ServerReady                          open (probes carry no credential)
//   ModelReady, ServerMetadata, ModelMetadata,       role infer
//   ModelInfer
// With an authenticator, the "authorization" metadata ("Bearer <token>") and the client's
// certificate are authenticated (UNAUTHENTICATED with base/auth/auth.h's 401 reasons:
// credential_missing, credential_malformed, credential_invalid, certificate_untrusted,
// certificate_expired, certificate_revoked) and must hold the role (PERMISSION_DENIED,
// role_required). Without one the caller is anonymous and holds anonymous_roles.
//
// Bounds: ModelInfer takes messages of up to max_message_bytes (gRPC refuses a larger one);
// every other method's request is at most kMaxSmallRequestBytes (RESOURCE_EXHAUSTED, reason
// message_too_large). Memory buffered by gRPC across all connections is capped by
// max_buffered_bytes and each connection's concurrent calls by max_concurrent_streams; a TLS
// handshake must finish within handshake_timeout.
//
// Zero copy: a ModelInfer answer is written as protobuf would write it, but each numeric
// output of 4 KiB or more goes out as a slice of the model's own output tensor, which the
// response holds until gRPC has sent it; smaller outputs and BYTES are copied once into the
// message. A raw input is copied twice: protobuf parses it into a string of the request, and
// that is copied into the engine's tensor, since an engine::Tensor owns its bytes and cannot
// read the request's in place.
//
// Thread-safety: Start() and Stop() from one owning thread. Every method runs on gRPC's
// callback API, on gRPC's own threads, which no call holds while it waits: the health and
// metadata methods answer on the thread that received them; ModelInfer admits, parses and
// decodes there, submits the request to its model's scheduler (RunInferenceAsync) and
// returns, and the scheduler's worker encodes and sends the answer when the run is over. A
// call's state lives in one heap object until gRPC reports the call done. A slow or blocked
// model thus never stops other calls, health probes included; its queue bound (UNAVAILABLE)
// and the request's timeout (DEADLINE_EXCEEDED) limit how many calls wait for it, and a call
// cancelled by its client (or its deadline) while queued is dropped without running.
#ifndef OUTPOST_SERVE_GRPC_SERVER_H_
#define OUTPOST_SERVE_GRPC_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/auth/auth.h"
#include "base/status.h"
#include "base/status_mapping.h"
#include "insight/evaluator.h"
#include "serve/repository.h"

namespace outpost::serve {

// The largest request of every method but ModelInfer (names and versions only), in bytes.
inline constexpr size_t kMaxSmallRequestBytes = 64 << 10;

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

  // TLS: both set = TLS only (1.2 or newer), with this PEM certificate chain and PEM private
  // key; both empty = plaintext; one without the other is InvalidArgument. Both are read at
  // Start (FailedPrecondition when either cannot be read or holds no PEM of its kind), then
  // every tls_reload_interval: replace them atomically (a rename), the key first when it
  // changes too. A key that does not match the certificate fails every handshake.
  std::string tls_cert_file = "";
  std::string tls_key_file = "";
  // How often the certificate and key files are re-read; at least 1 s.
  std::chrono::seconds tls_reload_interval = std::chrono::seconds(10);
  // How long a connection may take to finish its TLS (or HTTP/2) handshake.
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10);

  // Who may call: called for every call that needs a role, and returns the authenticator of
  // the moment, so that a reload (a swap of the pointer, as auth::HttpGate::SetAuthenticator)
  // reaches calls that start after it. Must be thread-safe and outlive the server. A null
  // function, or a null pointer returned, means no credentials: every caller is anonymous
  // and holds anonymous_roles.
  std::function<std::shared_ptr<const auth::Authenticator>()> authenticator{};
  // The roles of an anonymous caller (see above).
  auth::RoleSet anonymous_roles = auth::RoleBit(auth::Role::kInfer) |
                                  auth::RoleBit(auth::Role::kLabel) |
                                  auth::RoleBit(auth::Role::kRead);

  // Bytes gRPC may hold for all connections together (its resource quota): messages read and
  // being written, and connection buffers. Raised to max_message_bytes when smaller, so that
  // one largest message always fits. Calls beyond it are refused by gRPC.
  size_t max_buffered_bytes = size_t{512} << 20;
  // Kept for configurations that set it (at least 2), and given to gRPC's resource quota,
  // where it bounds only the threads of synchronous services. Outpost's service is on the
  // callback API: gRPC sizes its callback threads from the machine's cores, and a call that
  // waits for its model holds none, so this bounds nothing today.
  int max_threads = 256;
  // Most calls in flight on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); at least 1.
  int max_concurrent_streams = 100;
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
  // InvalidArgument for bad options; FailedPrecondition when a TLS file cannot be read;
  // Unavailable when the address cannot be bound.
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
