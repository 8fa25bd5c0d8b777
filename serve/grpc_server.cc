// The gRPC and protobuf adapter of serve/: the only file that sees grpc++ or the generated
// inference.* messages. Exceptions from either library are caught here.
#include "serve/grpc_server.h"

#include <google/protobuf/arena.h>
#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/slice.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "base/coding.h"
#include "base/crypto/x509.h"
#include "base/file.h"
#include "base/logging.h"
#include "engine/model.h"
#include "engine/tensor.h"
#include "serve/handler.h"
#include "serve/infer_json.h"
#include "serve/inference.grpc.pb.h"
#include "serve/inference.pb.h"
#include "serve/metrics.h"

#ifndef OUTPOST_VERSION
#define OUTPOST_VERSION "unknown"
#endif

namespace outpost::serve {
namespace {

using engine::DataType;
using engine::Tensor;

// Names quoted in error messages are cut to this many bytes.
constexpr size_t kMaxQuoted = 200;

std::string Quote(std::string_view s) {
  std::string out = "\"";
  out.append(s.substr(0, kMaxQuoted));
  if (s.size() > kMaxQuoted) out.append("...");
  out.push_back('"');
  return out;
}

// The one Status -> gRPC mapping (base/status_mapping.h); the reason travels in the trailing
// metadata, as the HTTP listeners carry it in their error body.
grpc::Status ToGrpc(const Status& status, grpc::ServerContextBase* context) {
  if (status.ok()) return grpc::Status::OK;
  if (context != nullptr) {
    context->AddTrailingMetadata(std::string(kGrpcReasonKey), std::string(status.reason()));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(GrpcCodeFor(status.code())),
                      std::string(status.message()));
}

// The version a request names: nullopt when empty. InvalidArgument when not decimal digits,
// NotFound when too large to be a version.
Result<std::optional<int64_t>> ParseVersion(const std::string& text) {
  if (text.empty()) return std::optional<int64_t>();
  for (char c : text) {
    if (c < '0' || c > '9') {
      return InvalidArgumentError("model version " + Quote(text) +
                                  " must be decimal digits (or empty for the latest)");
    }
  }
  int64_t version = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return NotFoundError("unknown version " + Quote(text));
  }
  return std::optional<int64_t>(version);
}

Result<ModelHandle> FindModel(const ModelRepository& repository, const std::string& name,
                              const std::string& version_text) {
  OUTPOST_ASSIGN_OR_RETURN(std::optional<int64_t> version, ParseVersion(version_text));
  return repository.Find(name, version);
}

// Rejects the parameters of extensions Outpost does not offer, so that a client's data is
// never silently ignored.
Status CheckParameters(const google::protobuf::Map<std::string, inference::InferParameter>& params,
                       std::string_view where, bool is_output) {
  for (const auto& [key, value] : params) {
    (void)value;
    if (key.starts_with("shared_memory_")) {
      return InvalidArgumentError(std::string(where) + ": parameter " + Quote(key) +
                                  " is not supported (Outpost offers no shared memory "
                                  "extension); send the data in the request");
    }
    if (is_output && key == "classification") {
      return InvalidArgumentError(std::string(where) +
                                  ": parameter \"classification\" is not supported; request "
                                  "the raw output");
    }
  }
  return Status();
}

// Elements held by every field of typed contents.
int64_t TypedElementCount(const inference::InferTensorContents& c) {
  return static_cast<int64_t>(c.bool_contents_size()) + c.int_contents_size() +
         c.int64_contents_size() + c.uint_contents_size() + c.uint64_contents_size() +
         c.fp32_contents_size() + c.fp64_contents_size() + c.bytes_contents_size();
}

// Copies `values` into `tensor` as T, rejecting values outside T's range.
template <typename T, typename Source>
Status CopyChecked(const Source& values, Tensor& tensor, const std::string& where) {
  std::span<T> out = tensor.values<T>();
  for (int i = 0; i < values.size(); ++i) {
    auto v = values.Get(i);
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
      return InvalidArgumentError(where + ": element " + std::to_string(i) + " (" +
                                  std::to_string(v) + ") is out of range for " +
                                  std::string(engine::DataTypeName(tensor.type())));
    }
    out[static_cast<size_t>(i)] = static_cast<T>(v);
  }
  return Status();
}

template <typename T, typename Source>
void Copy(const Source& values, Tensor& tensor) {
  std::span<T> out = tensor.values<T>();
  for (int i = 0; i < values.size(); ++i) out[static_cast<size_t>(i)] = values.Get(i);
}

// The field typed data of `type` must be in, with its element count; nullopt for FP16/BF16.
std::optional<std::pair<std::string_view, int64_t>> TypedField(
    DataType type, const inference::InferTensorContents& c) {
  switch (type) {
    case DataType::kBool:
      return std::make_pair("bool_contents", c.bool_contents_size());
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
      return std::make_pair("int_contents", c.int_contents_size());
    case DataType::kInt64:
      return std::make_pair("int64_contents", c.int64_contents_size());
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32:
      return std::make_pair("uint_contents", c.uint_contents_size());
    case DataType::kUint64:
      return std::make_pair("uint64_contents", c.uint64_contents_size());
    case DataType::kFp32:
      return std::make_pair("fp32_contents", c.fp32_contents_size());
    case DataType::kFp64:
      return std::make_pair("fp64_contents", c.fp64_contents_size());
    case DataType::kBytes:
      return std::make_pair("bytes_contents", c.bytes_contents_size());
    case DataType::kFp16:
    case DataType::kBf16:
      break;
  }
  return std::nullopt;
}

// A tensor of `type` and `shape` (whose element count is `count`) from typed contents.
Result<Tensor> FromTyped(DataType type, const engine::Shape& shape, int64_t count,
                         const inference::InferTensorContents& c, const std::string& where) {
  std::optional<std::pair<std::string_view, int64_t>> field = TypedField(type, c);
  if (!field) {
    return InvalidArgumentError(where + ": " + std::string(engine::DataTypeName(type)) +
                                " has no typed contents; send it in raw_input_contents");
  }
  if (TypedElementCount(c) != field->second) {
    return InvalidArgumentError(where + ": " + std::string(engine::DataTypeName(type)) +
                                " data must be in contents." + std::string(field->first) + " only");
  }
  if (field->second != count) {
    return InvalidArgumentError(where + ": contents." + std::string(field->first) + " has " +
                                std::to_string(field->second) + " elements; shape " +
                                engine::ShapeToString(shape) + " needs " + std::to_string(count));
  }
  Tensor tensor(type, shape);
  switch (type) {
    case DataType::kBool: {
      std::span<uint8_t> out = tensor.values<uint8_t>();
      for (int i = 0; i < c.bool_contents_size(); ++i) {
        out[static_cast<size_t>(i)] = c.bool_contents(i) ? 1 : 0;
      }
      break;
    }
    case DataType::kInt8:
      OUTPOST_RETURN_IF_ERROR(CopyChecked<int8_t>(c.int_contents(), tensor, where));
      break;
    case DataType::kInt16:
      OUTPOST_RETURN_IF_ERROR(CopyChecked<int16_t>(c.int_contents(), tensor, where));
      break;
    case DataType::kInt32:
      Copy<int32_t>(c.int_contents(), tensor);
      break;
    case DataType::kInt64:
      Copy<int64_t>(c.int64_contents(), tensor);
      break;
    case DataType::kUint8:
      OUTPOST_RETURN_IF_ERROR(CopyChecked<uint8_t>(c.uint_contents(), tensor, where));
      break;
    case DataType::kUint16:
      OUTPOST_RETURN_IF_ERROR(CopyChecked<uint16_t>(c.uint_contents(), tensor, where));
      break;
    case DataType::kUint32:
      Copy<uint32_t>(c.uint_contents(), tensor);
      break;
    case DataType::kUint64:
      Copy<uint64_t>(c.uint64_contents(), tensor);
      break;
    case DataType::kFp32:
      Copy<float>(c.fp32_contents(), tensor);
      break;
    case DataType::kFp64:
      Copy<double>(c.fp64_contents(), tensor);
      break;
    case DataType::kBytes:
      tensor.strings().assign(c.bytes_contents().begin(), c.bytes_contents().end());
      break;
    case DataType::kFp16:
    case DataType::kBf16:
      break;  // excluded above
  }
  return tensor;
}

// A tensor of `type` and `shape` (whose element count is `count`) from raw bytes.
Result<Tensor> FromRaw(DataType type, const engine::Shape& shape, int64_t count,
                       std::string_view raw, const std::string& where) {
  if (type == DataType::kBytes) {
    // Every element takes at least its 4-byte length, so this bounds the allocation.
    if (static_cast<uint64_t>(count) > raw.size() / 4) {
      return InvalidArgumentError(where + ": raw data of " + std::to_string(raw.size()) +
                                  " bytes cannot hold " + std::to_string(count) +
                                  " BYTES elements");
    }
    Tensor tensor(type, shape);
    std::vector<std::string>& strings = tensor.strings();
    size_t pos = 0;
    for (int64_t i = 0; i < count; ++i) {
      if (raw.size() - pos < 4) {
        return InvalidArgumentError(where + ": raw BYTES data ends inside the length of element " +
                                    std::to_string(i));
      }
      const uint32_t length = GetU32LE(raw.data() + pos);
      pos += 4;
      if (raw.size() - pos < length) {
        return InvalidArgumentError(where + ": raw BYTES element " + std::to_string(i) + " says " +
                                    std::to_string(length) + " bytes but only " +
                                    std::to_string(raw.size() - pos) + " remain");
      }
      strings[static_cast<size_t>(i)].assign(raw.data() + pos, length);
      pos += length;
    }
    if (pos != raw.size()) {
      return InvalidArgumentError(where + ": raw BYTES data has " +
                                  std::to_string(raw.size() - pos) +
                                  " bytes past its last element");
    }
    return tensor;
  }
  const uint64_t expected = static_cast<uint64_t>(count) * engine::ElementSize(type);
  if (raw.size() != expected) {
    return InvalidArgumentError(where + ": raw data has " + std::to_string(raw.size()) +
                                " bytes; " + std::string(engine::DataTypeName(type)) + " " +
                                engine::ShapeToString(shape) + " needs " +
                                std::to_string(expected));
  }
  if (type == DataType::kBool) {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (static_cast<uint8_t>(raw[i]) > 1) {
        return InvalidArgumentError(where + ": BOOL element " + std::to_string(i) + " is byte " +
                                    std::to_string(static_cast<uint8_t>(raw[i])) +
                                    "; only 0 and 1 are booleans");
      }
    }
  }
  Tensor tensor(type, shape);
  if (!raw.empty()) std::memcpy(tensor.data(), raw.data(), raw.size());
  return tensor;
}

// Appends `tensor`'s data in the raw layout.
void AppendRaw(const Tensor& tensor, std::string& out) {
  if (tensor.type() != DataType::kBytes) {
    out.append(reinterpret_cast<const char*>(tensor.data()), tensor.byte_size());
    return;
  }
  size_t total = 0;
  for (const std::string& s : tensor.strings()) total += 4 + s.size();
  out.reserve(out.size() + total);
  for (const std::string& s : tensor.strings()) {
    const uint32_t length = static_cast<uint32_t>(s.size());
    for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((length >> (8 * b)) & 0xff));
    out.append(s);
  }
}

// Decodes one ModelInfer against `repository`: the model version that answers it (`handle`)
// and its tensors, typed or raw, into `infer`, ready for RunInference, which makes the checks
// and bookkeeping the REST handler shares (input matching, output selection, validation,
// statistics, insight rules).
Status DecodeInfer(const ModelRepository& repository, const GrpcServerOptions& options,
                   const inference::ModelInferRequest& request, ModelHandle& handle,
                   InferRequest& infer) {
  OUTPOST_ASSIGN_OR_RETURN(handle,
                           FindModel(repository, request.model_name(), request.model_version()));
  OUTPOST_RETURN_IF_ERROR(CheckParameters(request.parameters(), "request", false));

  if (!request.id().empty()) infer.id = request.id();
  // How long the request may wait in the model's queue, in microseconds (as Triton).
  if (auto it = request.parameters().find("timeout"); it != request.parameters().end()) {
    const inference::InferParameter& timeout = it->second;
    int64_t us = -1;
    if (timeout.parameter_choice_case() == inference::InferParameter::kInt64Param) {
      us = timeout.int64_param();
    } else if (timeout.parameter_choice_case() == inference::InferParameter::kUint64Param &&
               timeout.uint64_param() <= static_cast<uint64_t>(kMaxRequestTimeoutUs)) {
      us = static_cast<int64_t>(timeout.uint64_param());
    }
    if (us < 0 || us > kMaxRequestTimeoutUs) {
      return InvalidArgumentError(
          "request: parameter \"timeout\" must be an integer number of microseconds within "
          "0.." +
          std::to_string(kMaxRequestTimeoutUs));
    }
    infer.timeout_us = static_cast<uint64_t>(us);
  }
  infer.inputs.reserve(static_cast<size_t>(request.inputs_size()));
  const int n_raw = request.raw_input_contents_size();
  int next_raw = 0;
  int64_t total_elements = 0;
  for (const inference::ModelInferRequest::InferInputTensor& input : request.inputs()) {
    const std::string where = "input " + Quote(input.name());
    OUTPOST_RETURN_IF_ERROR(CheckParameters(input.parameters(), where, false));
    Result<DataType> type = engine::ParseDataType(input.datatype());
    if (!type.ok()) return type.status().WithContext(where);
    if (static_cast<size_t>(input.shape_size()) > kMaxShapeRank) {
      return InvalidArgumentError(where + ": shape has " + std::to_string(input.shape_size()) +
                                  " dimensions; at most " + std::to_string(kMaxShapeRank));
    }
    engine::Shape shape(input.shape().begin(), input.shape().end());
    Result<int64_t> count = engine::ElementCount(shape);
    if (!count.ok()) return count.status().WithContext(where);
    if (*count > options.max_total_elements - total_elements) {
      return ResourceExhaustedError(where + ": the request's inputs hold more than " +
                                    std::to_string(options.max_total_elements) +
                                    " elements (the server's limit)");
    }
    total_elements += *count;
    InferInput& decoded = infer.inputs.emplace_back(InferInput{.name = input.name()});
    if (input.has_contents()) {
      if (n_raw > 0) {
        return InvalidArgumentError(where +
                                    " has contents while the request has "
                                    "raw_input_contents; use one form for every input");
      }
      OUTPOST_ASSIGN_OR_RETURN(decoded.tensor,
                               FromTyped(*type, shape, *count, input.contents(), where));
    } else if (next_raw < n_raw) {
      OUTPOST_ASSIGN_OR_RETURN(
          decoded.tensor,
          FromRaw(*type, shape, *count, request.raw_input_contents(next_raw++), where));
    } else {
      return InvalidArgumentError(where +
                                  " has no data: set its contents or a "
                                  "raw_input_contents entry");
    }
  }
  if (next_raw != n_raw) {
    return InvalidArgumentError("the request has " + std::to_string(n_raw) +
                                " raw_input_contents entries but only " + std::to_string(next_raw) +
                                " inputs to take them");
  }
  for (const auto& requested : request.outputs()) {
    OUTPOST_RETURN_IF_ERROR(
        CheckParameters(requested.parameters(), "output " + Quote(requested.name()), true));
    infer.outputs.push_back(InferRequestedOutput{.name = requested.name()});
  }

  return Status();
}

// Field 6 of ModelInferResponse (raw_output_contents), length-delimited: its key byte.
constexpr char kRawOutputContentsKey = (6 << 3) | 2;

// Raw outputs of at least this many bytes are sent from the tensor's own memory; smaller ones
// are copied next to the message's other fields, which costs less than a slice of their own.
constexpr size_t kBorrowMinBytes = 4096;

void AppendVarint(uint64_t value, std::string& out) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

// Bytes of `tensor`'s data in the raw layout.
size_t RawByteSize(const Tensor& tensor) {
  if (tensor.type() != DataType::kBytes) return tensor.byte_size();
  size_t total = 0;
  for (const std::string& s : tensor.strings()) total += 4 + s.size();
  return total;
}

// A serialized ModelInferResponse in pieces: chunks[0], the data of borrowed[0], chunks[1],
// ..., the data of borrowed[n-1], chunks[n] (chunks has one more entry than borrowed). The
// borrowed tensors are not owned.
struct EncodedResponse {
  std::vector<std::string> chunks{std::string()};
  std::vector<const Tensor*> borrowed;
};

// The answer of a successful run: id, model name, the version that answered and each selected
// output's metadata through protobuf, then each output's data as a raw_output_contents entry.
// Protobuf writes the repeated field 6 last as well, so the bytes are those
// ModelInferResponse::SerializeToString would give. Numeric outputs of at least
// `borrow_min_bytes` are borrowed, not copied (SIZE_MAX = never).
Result<EncodedResponse> EncodeResponse(const ModelHandle& handle, const std::string& id,
                                       const std::vector<OutputRef>& selected,
                                       size_t borrow_min_bytes) {
  inference::ModelInferResponse head;
  head.set_model_name(handle.servable->name);
  head.set_model_version(std::to_string(handle.version));
  if (!id.empty()) head.set_id(id);
  for (const OutputRef& ref : selected) {
    const Tensor& tensor = *ref.tensor;
    inference::ModelInferResponse::InferOutputTensor* out = head.add_outputs();
    out->set_name(std::string(ref.name));
    out->set_datatype(std::string(engine::DataTypeName(tensor.type())));
    for (int64_t d : tensor.shape()) out->add_shape(d);
  }
  EncodedResponse encoded;
  if (!head.SerializeToString(&encoded.chunks.back())) {
    return InternalError("the ModelInferResponse could not be serialized");
  }
  for (const OutputRef& ref : selected) {
    const Tensor& tensor = *ref.tensor;
    std::string& chunk = encoded.chunks.back();
    const size_t size = RawByteSize(tensor);
    chunk.push_back(kRawOutputContentsKey);
    AppendVarint(size, chunk);
    if (tensor.type() != DataType::kBytes && size >= borrow_min_bytes) {
      encoded.borrowed.push_back(&tensor);
      encoded.chunks.emplace_back();
    } else {
      AppendRaw(tensor, chunk);
    }
  }
  return encoded;
}

void FillTensorMetadata(
    const std::vector<engine::TensorSpec>& specs,
    google::protobuf::RepeatedPtrField<inference::ModelMetadataResponse::TensorMetadata>& out) {
  for (const engine::TensorSpec& spec : specs) {
    auto* t = out.Add();
    t->set_name(spec.name);
    t->set_datatype(std::string(engine::DataTypeName(spec.type)));
    for (int64_t d : spec.shape) t->add_shape(d);
  }
}

// Calls `body`, turning a library exception into INTERNAL.
template <typename Body>
grpc::Status Guard(grpc::ServerContextBase* context, std::string_view rpc, Body&& body) {
  try {
    return ToGrpc(body(), context);
  } catch (const std::exception& e) {
    OUTPOST_LOG(kError) << "gRPC call failed" << Field("rpc", rpc) << Field("error", e.what());
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(rpc) + ": " + e.what());
  }
}

std::string_view View(const grpc::string_ref& ref) { return {ref.data(), ref.size()}; }

// What one method needs of its caller and its request.
struct MethodPolicy {
  std::string_view name;
  std::optional<auth::Role> role;  // nullopt = open to anyone
};
constexpr MethodPolicy kServerLive{"ServerLive", std::nullopt};
constexpr MethodPolicy kServerReady{"ServerReady", std::nullopt};
constexpr MethodPolicy kModelReady{"ModelReady", auth::Role::kInfer};
constexpr MethodPolicy kServerMetadata{"ServerMetadata", auth::Role::kInfer};
constexpr MethodPolicy kModelMetadata{"ModelMetadata", auth::Role::kInfer};
constexpr MethodPolicy kModelInfer{"ModelInfer", auth::Role::kInfer};

// Whether the caller of `context` may make a call that needs `role`: the one check of every
// method (see grpc_server.h). Unauthenticated or PermissionDenied with base/auth/auth.h's
// reasons.
Status Admit(grpc::ServerContextBase& context, const GrpcServerOptions& options, auth::Role role) {
  std::shared_ptr<const auth::Authenticator> authenticator =
      options.authenticator ? options.authenticator() : nullptr;
  if (authenticator == nullptr) {
    return auth::Authorize(auth::Principal{.name = "anonymous", .roles = options.anonymous_roles},
                           role);
  }
  std::string_view authorization;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = View(it->second);
  }
  // The peer's certificate, as the TLS layer received it (PEM); present only over TLS.
  std::string cert_der;
  if (std::shared_ptr<const grpc::AuthContext> peer = context.auth_context()) {
    std::vector<grpc::string_ref> pems = peer->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (!pems.empty()) {
      Result<std::string> der = crypto::CertificatePemToDer(View(pems.front()));
      if (!der.ok()) {
        return ErrorWithReason(StatusCode::kUnauthenticated, "certificate_untrusted",
                               "the client certificate could not be read");
      }
      cert_der = std::move(der).value();
    }
  }
  OUTPOST_ASSIGN_OR_RETURN(
      auth::Principal principal,
      authenticator->Authenticate({.authorization = authorization, .cert_der = cert_der}));
  return auth::Authorize(principal, role);
}

// The data of borrowed outputs stays alive while a slice of the response points into it:
// each slice holds one of these, and the last one released frees the outputs.
using SharedOutputs = std::shared_ptr<std::vector<Tensor>>;

void ReleaseOutputs(void* holder) { delete static_cast<SharedOutputs*>(holder); }

// `encoded` as the slices of one message; a borrowed tensor's slice points into `outputs`,
// which it keeps alive.
grpc::ByteBuffer ToByteBuffer(const EncodedResponse& encoded, const SharedOutputs& outputs) {
  std::vector<grpc::Slice> slices;
  slices.reserve(encoded.chunks.size() + encoded.borrowed.size());
  for (size_t i = 0; i < encoded.chunks.size(); ++i) {
    if (!encoded.chunks[i].empty()) slices.emplace_back(encoded.chunks[i]);
    if (i == encoded.borrowed.size()) break;
    const Tensor& tensor = *encoded.borrowed[i];
    // gRPC only reads a slice it sends; its constructor takes a mutable pointer all the same.
    slices.emplace_back(const_cast<std::byte*>(tensor.data()), tensor.byte_size(), &ReleaseOutputs,
                        new SharedOutputs(outputs));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// One ModelInfer call, from its arrival to gRPC's OnDone: everything the call needs while it
// waits for its model (the parsed request, the decoded tensors, the outputs, the recorder)
// lives here, and the call deletes itself in OnDone, after Finish's answer has been sent.
// The gRPC thread that starts it returns as soon as the request is submitted; the model's
// scheduler completes it from its worker thread.
class InferCall final : public grpc::ServerUnaryReactor {
 public:
  // `repository` and `options` outlive the server, hence the call; `context` and `response`
  // are gRPC's, valid until OnDone.
  InferCall(const ModelRepository& repository, const GrpcServerOptions& options,
            grpc::CallbackServerContext* context, grpc::ByteBuffer* response)
      : repository_(repository),
        options_(options),
        context_(context),
        response_(response),
        request_(google::protobuf::Arena::CreateMessage<inference::ModelInferRequest>(&arena_)) {}

  // Admits the caller, parses and decodes `request`, and submits it to the model; answers at
  // once when any of these fails. `this` may be finished (by another thread) when it returns.
  void Start(const grpc::ByteBuffer& request) {
    grpc::Status refused = Guard(context_, kModelInfer.name, [&] { return Prepare(request); });
    if (!refused.ok()) {
      Finish(refused);
      return;
    }
    Run();
  }

  void OnDone() override { delete this; }

 private:
  Status Prepare(const grpc::ByteBuffer& request) {
    OUTPOST_RETURN_IF_ERROR(Admit(*context_, options_, *kModelInfer.role));
    grpc::ByteBuffer shared(request);  // shares the request's slices
    grpc::ProtoBufferReader reader(&shared);
    if (!reader.status().ok() || !request_->ParseFromZeroCopyStream(&reader)) {
      return InvalidArgumentError("the request is not a serialized inference.ModelInferRequest");
    }
    OUTPOST_RETURN_IF_ERROR(DecodeInfer(repository_, options_, *request_, handle_, infer_));
    infer_.cancelled = [context = context_] { return context->IsCancelled(); };
    return Status();
  }

  // Submits the decoded request; the scheduler answers it through Answer, from its worker
  // (or from this thread when it refuses the request before queueing it).
  void Run() {
    recorder_.emplace(handle_.stats);
    try {
      RunInferenceAsync(handle_, infer_, *outputs_, selected_, &*recorder_, options_.insight,
                        [this](Status status) { Answer(std::move(status)); });
    } catch (const std::exception& e) {
      // Only an allocation before the request is queued throws; `done` was not called then.
      Answer(InternalError(std::string(kModelInfer.name) + ": " + e.what()));
    }
  }

  // The run's one outcome; a second (see Run) is ignored.
  void Answer(Status status) {
    if (answered_.exchange(true, std::memory_order_acq_rel)) return;
    Complete(std::move(status));
  }

  // Answers with the run's outcome: the encoded outputs, or the error with its reason.
  void Complete(Status status) {
    recorder_->Finish(status.ok());
    Finish(Guard(context_, kModelInfer.name, [&]() -> Status {
      OUTPOST_RETURN_IF_ERROR(status);
      OUTPOST_ASSIGN_OR_RETURN(EncodedResponse encoded,
                               EncodeResponse(handle_, request_->id(), selected_, kBorrowMinBytes));
      grpc::ByteBuffer answer = ToByteBuffer(encoded, outputs_);
      response_->Swap(&answer);
      return Status();
    }));
  }

  const ModelRepository& repository_;
  const GrpcServerOptions& options_;
  grpc::CallbackServerContext* const context_;
  grpc::ByteBuffer* const response_;
  google::protobuf::Arena arena_;
  inference::ModelInferRequest* const request_;  // on arena_
  ModelHandle handle_;
  InferRequest infer_;
  // Shared with the response's slices that borrow from it (ToByteBuffer).
  SharedOutputs outputs_ = std::make_shared<std::vector<Tensor>>();
  std::vector<OutputRef> selected_;  // points into *outputs_ and the model's signature
  std::optional<InferenceRecorder> recorder_;
  std::atomic<bool> answered_{false};
};

// The service on gRPC's callback API: every method but ModelInfer answers on the gRPC thread
// that received it (they never wait); ModelInfer takes its messages as bytes, so that its
// request is parsed after the caller is admitted and its outputs are sent without a copy.
using CallbackMethods = inference::GRPCInferenceService::WithCallbackMethod_ServerLive<
    inference::GRPCInferenceService::WithCallbackMethod_ServerReady<
        inference::GRPCInferenceService::WithCallbackMethod_ModelReady<
            inference::GRPCInferenceService::WithCallbackMethod_ServerMetadata<
                inference::GRPCInferenceService::WithCallbackMethod_ModelMetadata<
                    inference::GRPCInferenceService::WithRawCallbackMethod_ModelInfer<
                        inference::GRPCInferenceService::Service>>>>>>;

class InferenceService final : public CallbackMethods {
 public:
  // `repository` outlives the service (GrpcServer's contract).
  InferenceService(const ModelRepository& repository, const GrpcServerOptions& options)
      : repository_(repository), options_(options) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest* request,
                                       inference::ServerLiveResponse* response) override {
    return Serve(context, kServerLive, *request, [&]() -> Status {
      response->set_live(true);
      return Status();
    });
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest* request,
                                        inference::ServerReadyResponse* response) override {
    return Serve(context, kServerReady, *request, [&]() -> Status {
      response->set_ready(repository_.IsReady());
      return Status();
    });
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    return Serve(context, kModelReady, *request, [&]() -> Status {
      Result<ModelHandle> handle = FindModel(repository_, request->name(), request->version());
      // A model or version that failed to load is known but not ready.
      if (!handle.ok() && handle.status().code() != StatusCode::kUnavailable) {
        return handle.status();
      }
      response->set_ready(handle.ok());
      return Status();
    });
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest* request,
                                           inference::ServerMetadataResponse* response) override {
    return Serve(context, kServerMetadata, *request, [&]() -> Status {
      response->set_name(options_.server_name);
      response->set_version(options_.server_version);
      // No protocol extension is offered over gRPC yet.
      return Status();
    });
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    return Serve(context, kModelMetadata, *request, [&]() -> Status {
      OUTPOST_ASSIGN_OR_RETURN(ModelHandle handle,
                               FindModel(repository_, request->name(), request->version()));
      response->set_name(handle.servable->name);
      for (const auto& [version, model] : handle.servable->ready) {
        response->add_versions(std::to_string(version));
      }
      response->set_platform(std::string(handle.model->platform()));
      const engine::Signature& signature = handle.model->signature();
      FillTensorMetadata(signature.inputs, *response->mutable_inputs());
      FillTensorMetadata(signature.outputs, *response->mutable_outputs());
      return Status();
    });
  }

  // Bounded by max_message_bytes, which gRPC enforces before the call starts.
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override {
    auto* call = new InferCall(repository_, options_, context, response);
    call->Start(*request);
    return call;
  }

 private:
  // Every small method's frame: admits the caller (Admit), bounds the request, runs `body`
  // and finishes the call at once; an error or an exception becomes the call's status with
  // its reason.
  template <typename Request, typename Body>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context, const MethodPolicy& method,
                                  const Request& request, Body&& body) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(Guard(context, method.name, [&]() -> Status {
      if (method.role.has_value()) {
        OUTPOST_RETURN_IF_ERROR(Admit(*context, options_, *method.role));
      }
      if (request.ByteSizeLong() > kMaxSmallRequestBytes) {
        return ErrorWithReason(StatusCode::kResourceExhausted, "message_too_large",
                               std::string(method.name) + " requests are at most " +
                                   std::to_string(kMaxSmallRequestBytes) + " bytes");
      }
      return body();
    }));
    return reactor;
  }

  const ModelRepository& repository_;
  const GrpcServerOptions& options_;  // owned by GrpcServer::Impl, which owns this service
};

}  // namespace

Status ModelInferSerialized(const ModelRepository& repository, const GrpcServerOptions& options,
                            std::string_view request, std::string& response) {
  response.clear();
  if (request.size() > options.max_message_bytes ||
      request.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return ResourceExhaustedError("the request's " + std::to_string(request.size()) +
                                  " bytes are more than the limit of " +
                                  std::to_string(options.max_message_bytes));
  }
  try {
    inference::ModelInferRequest parsed;
    if (!parsed.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
      return InvalidArgumentError("the request is not a serialized inference.ModelInferRequest");
    }
    ModelHandle handle;
    InferRequest infer;
    OUTPOST_RETURN_IF_ERROR(DecodeInfer(repository, options, parsed, handle, infer));
    std::vector<Tensor> outputs;
    std::vector<OutputRef> selected;
    InferenceRecorder recorder(handle.stats);
    Status status = RunInference(handle, infer, outputs, selected, &recorder, options.insight);
    recorder.Finish(status.ok());
    OUTPOST_RETURN_IF_ERROR(status);
    OUTPOST_ASSIGN_OR_RETURN(
        EncodedResponse encoded,
        EncodeResponse(handle, parsed.id(), selected, std::numeric_limits<size_t>::max()));
    response = std::move(encoded.chunks.front());
    return Status();
  } catch (const std::exception& e) {
    return InternalError(std::string("ModelInfer: ") + e.what());
  }
}

namespace {

// The bounds of `options` that Start checks, with their messages.
Status CheckOptions(const GrpcServerOptions& options) {
  if (options.max_message_bytes == 0 ||
      options.max_message_bytes > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return InvalidArgumentError("gRPC max_message_bytes must be 1 to 2147483647");
  }
  if (options.max_total_elements <= 0) {
    return InvalidArgumentError("gRPC max_total_elements must be positive");
  }
  if (options.address.empty()) return InvalidArgumentError("gRPC listen address is empty");
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return InvalidArgumentError("gRPC TLS needs both a certificate file and a key file");
  }
  if (options.tls_reload_interval < std::chrono::seconds(1) ||
      options.tls_reload_interval > std::chrono::hours(24)) {
    return InvalidArgumentError("gRPC tls_reload_interval must be 1 s to 24 h");
  }
  if (options.handshake_timeout < std::chrono::milliseconds(1) ||
      options.handshake_timeout > std::chrono::hours(1)) {
    return InvalidArgumentError("gRPC handshake_timeout must be 1 ms to 1 h");
  }
  if (options.max_threads < 2) return InvalidArgumentError("gRPC max_threads must be at least 2");
  if (options.max_concurrent_streams < 1) {
    return InvalidArgumentError("gRPC max_concurrent_streams must be at least 1");
  }
  return Status();
}

// FailedPrecondition unless `path` can be read and holds a PEM block whose label ends with
// `label_end` ("CERTIFICATE", "PRIVATE KEY"). gRPC's file watcher only logs a file it cannot
// read, and its listener would then fail every handshake; this makes Start fail instead.
Status CheckPemFile(const std::string& path, std::string_view label_end, std::string_view what) {
  Result<std::string> text = ReadFile(path, uint64_t{1} << 20);
  if (!text.ok()) {
    return FailedPreconditionError("gRPC TLS " + std::string(what) + " " + path + ": " +
                                   std::string(text.status().message()));
  }
  const std::string marker = std::string(label_end) + "-----";
  if (text->find("-----BEGIN ") == std::string::npos || text->find(marker) == std::string::npos) {
    return FailedPreconditionError("gRPC TLS " + std::string(what) + " " + path + " holds no PEM " +
                                   std::string(label_end));
  }
  return Status();
}

// The listener's credentials: plaintext, or TLS from the certificate and key files, watched
// for renewal. A client certificate is asked for and its key proven by the handshake, but no
// chain is checked here: Admit's authenticator does that, with the same reasons as REST.
Result<std::shared_ptr<grpc::ServerCredentials>> ListenerCredentials(
    const GrpcServerOptions& options) {
  if (options.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  OUTPOST_RETURN_IF_ERROR(CheckPemFile(options.tls_cert_file, "CERTIFICATE", "certificate"));
  OUTPOST_RETURN_IF_ERROR(CheckPemFile(options.tls_key_file, "PRIVATE KEY", "key"));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.tls_key_file, options.tls_cert_file,
      static_cast<unsigned int>(options.tls_reload_interval.count()));
  // gRPC's TLS credentials negotiate TLS 1.2 or 1.3 (their default range in gRPC 1.51).
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  tls.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  tls.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::experimental::TlsServerCredentials(tls);
  if (credentials == nullptr) {
    return FailedPreconditionError("gRPC refused the TLS options for " + options.tls_cert_file);
  }
  return credentials;
}

// The bounds of the whole listener: memory and threads (gRPC's resource quota), calls per
// connection, message sizes, the handshake's deadline.
void ApplyBounds(const GrpcServerOptions& options, grpc::ServerBuilder& builder) {
  grpc::ResourceQuota quota;
  quota.Resize(std::max(options.max_buffered_bytes, options.max_message_bytes));
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             static_cast<int>(options.handshake_timeout.count()));
  const int max_message = static_cast<int>(options.max_message_bytes);
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(max_message);
}

}  // namespace

struct GrpcServer::Impl {
  Impl(const ModelRepository& repository, GrpcServerOptions opts)
      : options(std::move(opts)), service(repository, options) {}

  GrpcServerOptions options;
  InferenceService service;  // refers to `options`
  std::unique_ptr<grpc::Server> server;
  bool stopped = false;  // only the owning thread reads and writes it (Stop, destructor)
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl, uint16_t port)
    : impl_(std::move(impl)), port_(port) {}

GrpcServer::~GrpcServer() { Stop(); }

Result<std::unique_ptr<GrpcServer>> GrpcServer::Start(const ModelRepository& repository,
                                                      GrpcServerOptions options) {
  OUTPOST_RETURN_IF_ERROR(CheckOptions(options));
  if (options.server_version.empty()) options.server_version = OUTPOST_VERSION;
  const std::string host = options.address.find(':') != std::string::npos
                               ? "[" + options.address + "]"
                               : options.address;
  const std::string target = host + ":" + std::to_string(options.port);
  try {
    OUTPOST_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                             ListenerCredentials(options));
    auto impl = std::make_unique<Impl>(repository, std::move(options));
    grpc::ServerBuilder builder;
    int selected_port = 0;
    builder.AddListeningPort(target, std::move(credentials), &selected_port);
    ApplyBounds(impl->options, builder);
    // A port another process (or another Outpost) holds is an error, not a shared port.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.RegisterService(&impl->service);
    impl->server = builder.BuildAndStart();
    if (impl->server == nullptr || selected_port <= 0 || selected_port > 65535) {
      if (impl->server != nullptr) impl->server->Shutdown();
      return UnavailableError("cannot listen for gRPC on " + target);
    }
    return std::unique_ptr<GrpcServer>(
        new GrpcServer(std::move(impl), static_cast<uint16_t>(selected_port)));
  } catch (const std::exception& e) {
    return InternalError("starting the gRPC server on " + target + ": " + e.what());
  }
}

void GrpcServer::Stop(std::chrono::milliseconds deadline) {
  if (impl_ == nullptr || impl_->stopped) return;
  impl_->stopped = true;
  // gRPC's deadlines are wall-clock time points.
  impl_->server->Shutdown(std::chrono::system_clock::now() + deadline);
  impl_->server->Wait();
}

}  // namespace outpost::serve
