#include "serve/handler.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <utility>

#include "base/auth/auth.h"
#include "base/json_writer.h"
#include "engine/model.h"
#include "serve/label_tally.h"
#include "serve/metrics.h"
#include "serve/shadow.h"

#ifndef OUTPOST_VERSION
#define OUTPOST_VERSION "unknown"
#endif

namespace outpost::serve {
namespace {

// Paths and names quoted in error messages are cut to this many bytes.
constexpr size_t kMaxQuoted = 200;

std::string Quote(std::string_view s) {
  std::string out = "\"";
  out.append(s.substr(0, kMaxQuoted));
  if (s.size() > kMaxQuoted) out.append("...");
  out.push_back('"');
  return out;
}

// Where a request goes, decided from its path alone.
struct Route {
  enum class Kind {
    kUnknown,           // no such path
    kServerMetadata,    // /v2
    kLive,              // /v2/health/live
    kReady,             // /v2/health/ready
    kModelMetadata,     // /v2/models/{m}[/versions/{v}]
    kModelReady,        // .../ready
    kInfer,             // .../infer
    kModelStats,        // .../stats
    kAllStats,          // /v2/models/stats
    kRepositoryIndex,   // /v2/repository/index
    kRepositoryLoad,    // /v2/repository/models/{m}/load
    kRepositoryUnload,  // /v2/repository/models/{m}/unload
    kMetrics,           // /metrics
  };
  Kind kind = Kind::kUnknown;
  std::string_view model;
  std::string_view version_text;  // the {v} segment as sent; empty when absent
};

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

Route::Kind ActionKind(std::string_view action) {
  if (action == "ready") return Route::Kind::kModelReady;
  if (action == "infer") return Route::Kind::kInfer;
  if (action == "stats") return Route::Kind::kModelStats;
  return Route::Kind::kUnknown;
}

// The one method each kind of route takes.
std::string_view MethodOf(Route::Kind kind) {
  switch (kind) {
    case Route::Kind::kInfer:
    case Route::Kind::kRepositoryIndex:
    case Route::Kind::kRepositoryLoad:
    case Route::Kind::kRepositoryUnload:
      return "POST";
    default:
      return "GET";
  }
}

Route Resolve(std::string_view path) {
  Route route;
  if (path == "/metrics") {
    route.kind = Route::Kind::kMetrics;
    return route;
  }
  if (!path.starts_with("/v2")) return route;
  std::string_view rest = path.substr(3);
  if (rest.empty() || rest == "/") {
    route.kind = Route::Kind::kServerMetadata;
  } else if (rest == "/health/live") {
    route.kind = Route::Kind::kLive;
  } else if (rest == "/health/ready") {
    route.kind = Route::Kind::kReady;
  } else if (rest == "/models/stats") {
    route.kind = Route::Kind::kAllStats;
  } else if (rest == "/repository/index") {
    route.kind = Route::Kind::kRepositoryIndex;
  } else if (rest.starts_with("/repository/models/")) {
    rest.remove_prefix(19);
    const size_t slash = rest.find('/');
    if (slash == 0 || slash == std::string_view::npos) return route;
    route.model = rest.substr(0, slash);
    const std::string_view action = rest.substr(slash + 1);
    if (action == "load") route.kind = Route::Kind::kRepositoryLoad;
    if (action == "unload") route.kind = Route::Kind::kRepositoryUnload;
  } else if (rest.starts_with("/models/")) {
    rest.remove_prefix(8);
    // {m} | {m}/{action} | {m}/versions/{v} | {m}/versions/{v}/{action}
    std::string_view segments[5];
    size_t n = 0;
    while (n < 5) {
      size_t slash = rest.find('/');
      segments[n++] = rest.substr(0, slash);
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
    if (segments[0].empty()) return route;
    route.model = segments[0];
    const bool versioned = n >= 3 && segments[1] == "versions" && AllDigits(segments[2]);
    if (versioned) route.version_text = segments[2];
    if (n == 1) {
      route.kind = Route::Kind::kModelMetadata;
    } else if (n == 2) {
      route.kind = ActionKind(segments[1]);
    } else if (n == 3 && versioned) {
      route.kind = Route::Kind::kModelMetadata;
    } else if (n == 4 && versioned) {
      route.kind = ActionKind(segments[3]);
    }
  }
  return route;
}

void SetError(int status, std::string_view reason, std::string_view message,
              HttpResponse& response) {
  response.status = status;
  response.content_type = "application/json";
  response.body = ErrorBody(reason, message);
}

// 405 is the one status that does not come from a Status: it is about HTTP, not Outpost.
void SetMethodNotAllowed(std::string_view method, std::string_view allowed,
                         HttpResponse& response) {
  SetError(405, "method_not_allowed",
           "method " + Quote(method) + " is not allowed here; use " + std::string(allowed),
           response);
  response.headers.emplace_back("Allow", std::string(allowed));
}

// The version named in the URL: nullopt when absent; NotFound when too large to be one.
Result<std::optional<int64_t>> ParseVersion(std::string_view text) {
  if (text.empty()) return std::optional<int64_t>();
  int64_t version = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return NotFoundError("unknown version " + Quote(text));
  }
  return std::optional<int64_t>(version);
}

// One REST infer request from its body to its response; the run's completion owns it when
// the response is deferred.
struct RestInfer {
  explicit RestInfer(const ModelHandle& h) : handle(h), recorder(h.stats) {}
  ModelHandle handle;  // before the recorder: its stats outlive the recorder
  InferenceRecorder recorder;
  InferRequest parsed;
  std::vector<engine::Tensor> outputs;
  std::vector<OutputRef> refs;
  http::DeferredResponse deferred;  // empty when answered before the handler returns
};

// Checks the body's encoding and Inference-Header-Content-Length, then parses the request.
Status ParseInfer(const HttpRequest& request, const InferJsonLimits& limits, InferRequest& parsed) {
  std::string_view encoding = request.Header("Content-Encoding");
  if (!encoding.empty() && !http::EqualsIgnoreCase(encoding, "identity")) {
    return UnimplementedError("Content-Encoding " + Quote(encoding) +
                              " is not supported; send the body uncompressed");
  }
  // Binary tensor data: the JSON is the body's first Inference-Header-Content-Length bytes.
  size_t json_size = request.body.size();
  std::string_view header_length = request.Header("Inference-Header-Content-Length");
  if (!header_length.empty()) {
    auto [end, ec] = std::from_chars(header_length.data(),
                                     header_length.data() + header_length.size(), json_size);
    if (ec != std::errc() || end != header_length.data() + header_length.size() ||
        json_size > request.body.size()) {
      return InvalidArgumentError("Inference-Header-Content-Length " + Quote(header_length) +
                                  " is not a length within the body's " +
                                  std::to_string(request.body.size()) + " bytes");
    }
    if (json_size == 0) {
      return UnimplementedError(
          "raw binary requests (Inference-Header-Content-Length: 0) are not supported; send a "
          "JSON header with binary_data_size on the input");
    }
  }
  return ParseInferRequest(request.body, json_size, limits, parsed);
}

// Writes the infer response of `call` after its run ended with `status`: its outputs, or
// the error; then records the request.
void AnswerInfer(RestInfer& call, Status status, HttpResponse& response) {
  if (status.ok()) {
    bool any_binary = false;
    for (const OutputRef& ref : call.refs) any_binary = any_binary || ref.binary;
    size_t response_json_size = 0;
    status = WriteInferResponse(call.handle.servable->name, call.handle.version, call.parsed.id,
                                call.refs, response.body, response_json_size);
    if (status.ok() && any_binary) {
      response.content_type = "application/octet-stream";
      response.headers.emplace_back("Inference-Header-Content-Length",
                                    std::to_string(response_json_size));
    }
  }
  call.recorder.Finish(status.ok());
  if (!status.ok()) SetErrorResponse(status, response);
}

// One inference on its way through RunInferenceAsync: the checked inputs and what the
// bookkeeping after the run needs. Owned by the run's completion.
struct InferenceCall {
  ModelHandle handle;  // first: released last, after `done` has returned
  InferRequest* request = nullptr;
  std::vector<engine::Tensor>* outputs = nullptr;
  std::vector<OutputRef>* selected = nullptr;
  InferenceRecorder* recorder = nullptr;
  insight::InsightSink* insight = nullptr;
  std::function<void(Status)> done;
  std::vector<engine::Tensor> inputs;  // in signature order
  std::vector<size_t> chosen;          // the outputs to return, as indexes into the signature
  ScheduledRequest scheduled;
};

// The checks before a run: inputs matched to the signature by name (moved into
// call.inputs), the requested outputs (call.chosen, and *call.selected's binary flags), then
// engine::ValidateInputs.
Status CheckInference(InferenceCall& call) {
  const ModelHandle& handle = call.handle;
  InferRequest& request = *call.request;
  const std::string& model_name = handle.servable->name;
  const engine::Signature& signature = handle.model->signature();
  const size_t n_inputs = signature.inputs.size();
  std::vector<engine::Tensor>& inputs = call.inputs;
  inputs.resize(n_inputs);
  std::vector<uint8_t> given(n_inputs, 0);
  for (InferInput& input : request.inputs) {
    size_t j = 0;
    while (j < n_inputs && signature.inputs[j].name != input.name) ++j;
    if (j == n_inputs) {
      return InvalidArgumentError("unexpected input " + Quote(input.name) + " for model " +
                                  Quote(model_name));
    }
    if (given[j]) {
      return InvalidArgumentError("input " + Quote(input.name) + " is given twice");
    }
    given[j] = 1;
    inputs[j] = std::move(input.tensor);
  }
  for (size_t j = 0; j < n_inputs; ++j) {
    if (!given[j]) {
      return InvalidArgumentError("missing input " + Quote(signature.inputs[j].name) +
                                  " for model " + Quote(model_name));
    }
  }

  // The outputs to return, as indexes into signature.outputs with their binary flag, checked
  // before running.
  const size_t n_outputs = signature.outputs.size();
  std::vector<size_t>& chosen = call.chosen;
  std::vector<OutputRef>& selected = *call.selected;
  selected.clear();
  if (request.outputs.empty()) {
    chosen.resize(n_outputs);
    for (size_t j = 0; j < n_outputs; ++j) chosen[j] = j;
    selected.resize(n_outputs, OutputRef{.binary = request.binary_data_output});
  } else {
    chosen.reserve(request.outputs.size());
    selected.reserve(request.outputs.size());
    for (const InferRequestedOutput& requested : request.outputs) {
      size_t j = 0;
      while (j < n_outputs && signature.outputs[j].name != requested.name) ++j;
      if (j == n_outputs) {
        return InvalidArgumentError("unknown requested output " + Quote(requested.name) +
                                    " for model " + Quote(model_name));
      }
      for (size_t k : chosen) {
        if (k == j) {
          return InvalidArgumentError("output " + Quote(requested.name) + " is requested twice");
        }
      }
      chosen.push_back(j);
      selected.push_back(
          OutputRef{.binary = requested.binary_data.value_or(request.binary_data_output)});
    }
  }
  return engine::ValidateInputs(signature, inputs);
}

// The bookkeeping after a run that ended with `run`: the recorder's phases, the model's
// error with context, the output count, insight, the shadow, and *call.selected.
Status AfterRun(InferenceCall& call, const Status& run) {
  const ModelHandle& handle = call.handle;
  const std::string& model_name = handle.servable->name;
  const engine::Signature& signature = handle.model->signature();
  const std::vector<engine::Tensor>& inputs = call.inputs;
  std::vector<engine::Tensor>& outputs = *call.outputs;
  InferenceRecorder* recorder = call.recorder;
  if (recorder != nullptr && handle.scheduler != nullptr) {
    recorder->Queued(call.scheduled.queue_ns);
  }
  if (recorder != nullptr && run.ok()) {
    // Rows: the first input's dimension 0 (1 for a model without a batch dimension).
    uint64_t rows = 1;
    if (!inputs.empty() && !signature.inputs[0].shape.empty() && signature.inputs[0].shape[0] < 0 &&
        !inputs[0].shape().empty()) {
      rows = static_cast<uint64_t>(inputs[0].shape()[0]);
    }
    recorder->RunDone(rows);
  }
  if (!run.ok()) {
    return run.WithContext("model " + Quote(model_name) + " version " +
                           std::to_string(handle.version));
  }
  if (outputs.size() != signature.outputs.size()) {
    return InternalError("model " + Quote(model_name) + " returned " +
                         std::to_string(outputs.size()) + " outputs; its signature has " +
                         std::to_string(signature.outputs.size()));
  }
  const std::string_view request_id =
      call.request->id ? std::string_view(*call.request->id) : std::string_view();
  if (call.insight != nullptr) {
    call.insight->OnScored(
        {.rules = handle.insight_rules != nullptr ? *handle.insight_rules : nullptr,
         .model = model_name,
         .version = handle.version,
         .request_id = request_id,
         .signature = &signature,
         .inputs = inputs,
         .outputs = outputs});
  }
  if (handle.shadow != nullptr) {
    // Copies what it needs and returns at once; the shadow runs on its own thread.
    handle.shadow->Offer(handle, request_id, inputs, outputs);
  }
  if (handle.labels != nullptr && !request_id.empty()) {
    handle.labels->Remember(handle, request_id, outputs);
  }
  std::vector<OutputRef>& selected = *call.selected;
  for (size_t i = 0; i < call.chosen.size(); ++i) {
    selected[i].name = signature.outputs[call.chosen[i]].name;
    selected[i].tensor = &outputs[call.chosen[i]];
  }
  return Status();
}

// AfterRun, then the caller's completion; the call, and the model handle it keeps, are
// released once the completion has returned.
void CompleteInference(std::shared_ptr<InferenceCall> call, Status run) {
  Status status = AfterRun(*call, run);
  std::function<void(Status)> done = std::move(call->done);
  done(std::move(status));
}

}  // namespace

void SetErrorResponse(const Status& status, HttpResponse& response) {
  response.status = HttpStatusFor(status.code());
  response.content_type = "application/json";
  response.body.clear();
  AppendErrorBody(status, response.body);
}

void RegisterRoutes(http::Router& router, const Handler& handler) {
  auto answer = [&handler](const HttpRequest& request, HttpResponse& response) {
    handler.Handle(request, response);
  };
  // Every route reaches the same handler, which resolves the path itself; the routes differ
  // only in the access they need (the router prefers an exact path, then the longest prefix).
  constexpr uint32_t kOpen = 0;
  router.Exact("*", "/v2/health/live", answer, kOpen);
  router.Exact("*", "/v2/health/ready", answer, kOpen);
  router.Prefix("*", "/v2/repository", answer, auth::RoleBit(auth::Role::kAdmin));
  router.Prefix("*", "/v2/models", answer, auth::RoleBit(auth::Role::kInfer));
  router.Prefix("*", "/v2", answer, auth::RoleBit(auth::Role::kInfer));
  router.Exact("*", "/metrics", answer, auth::RoleBit(auth::Role::kRead));
}

Handler::Handler(ModelRepository& repository, HandlerOptions options)
    : repository_(repository), options_(std::move(options)) {
  if (options_.server_version.empty()) options_.server_version = OUTPOST_VERSION;
  JsonWriter w(server_metadata_);
  w.BeginObject();
  w.Key("name");
  w.String(options_.server_name);
  w.Key("version");
  w.String(options_.server_version);
  // Only what Outpost implements.
  w.Key("extensions");
  w.BeginArray();
  w.String("binary_tensor_data");
  w.String("model_repository");
  w.String("statistics");
  w.EndArray();
  w.EndObject();
}

void Handler::Handle(const HttpRequest& request, HttpResponse& response) const {
  response.Clear();
  std::string_view path = std::string_view(request.target).substr(0, request.target.find('?'));
  const Route route = Resolve(path);
  if (route.kind == Route::Kind::kUnknown) {
    SetErrorResponse(NotFoundError("no such path " + Quote(path)), response);
    return;
  }
  const std::string_view method = MethodOf(route.kind);
  if (request.method != method) {
    SetMethodNotAllowed(request.method, method, response);
    return;
  }
  switch (route.kind) {
    case Route::Kind::kServerMetadata:
      response.body = server_metadata_;
      return;
    case Route::Kind::kLive:
      response.body = "{\"live\":true}";
      return;
    case Route::Kind::kReady:
      ServerReady(response);
      return;
    case Route::Kind::kMetrics:
      response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      WriteMetrics(repository_, response.body);
      if (ShadowRunner* shadow = repository_.shadow_runner()) shadow->WriteMetrics(response.body);
      return;
    case Route::Kind::kAllStats:
      WriteAllModelStats(repository_, response.body);
      return;
    case Route::Kind::kRepositoryIndex: {
      Result<RepositoryRequest> body = ParseRepositoryRequest(request.body, RepositoryCall::kIndex);
      if (!body.ok()) {
        SetErrorResponse(body.status(), response);
      } else {
        RepositoryIndex(body->ready_only, response);
      }
      return;
    }
    case Route::Kind::kRepositoryLoad:
    case Route::Kind::kRepositoryUnload: {
      if (!options_.allow_model_control) {
        SetErrorResponse(ErrorWithReason(StatusCode::kPermissionDenied, "model_control_disabled",
                                         "loading and unloading models is turned off on this "
                                         "server; its operator may enable model control"),
                         response);
        return;
      }
      const bool load = route.kind == Route::Kind::kRepositoryLoad;
      Result<RepositoryRequest> body = ParseRepositoryRequest(
          request.body, load ? RepositoryCall::kLoad : RepositoryCall::kUnload);
      Status status = !body.ok() ? body.status()
                      : load     ? repository_.Load(route.model)
                                 : repository_.Unload(route.model);
      if (!status.ok()) {
        SetErrorResponse(status, response);
      } else {
        response.body = "{}";
      }
      return;
    }
    default:
      break;
  }

  Result<std::optional<int64_t>> version = ParseVersion(route.version_text);
  if (!version.ok()) {
    SetErrorResponse(version.status(), response);
    return;
  }
  Result<ModelHandle> handle = repository_.Find(route.model, *version);
  if (!handle.ok()) {
    SetErrorResponse(handle.status(), response);
    return;
  }
  switch (route.kind) {
    case Route::Kind::kModelMetadata:
      ModelMetadata(*handle, response);
      return;
    case Route::Kind::kModelReady: {
      JsonWriter w(response.body);
      w.BeginObject();
      w.Key("name");
      w.String(handle->servable->name);
      w.Key("ready");
      w.Bool(true);
      w.EndObject();
      return;
    }
    case Route::Kind::kInfer:
      Infer(request, *handle, response);
      return;
    case Route::Kind::kModelStats:
      WriteModelStats(*handle, !version->has_value(), response.body);
      return;
    default:
      SetErrorResponse(InternalError("unrouted request"), response);
      return;
  }
}

void Handler::ServerReady(HttpResponse& response) const {
  if (repository_.IsReady()) {
    response.body = "{\"ready\":true}";
    return;
  }
  std::string message = "the server is not ready";
  for (const auto& model : repository_.Models()) {
    if (model->IsReady()) continue;
    message += ": model " + Quote(model->name) + " has no ready version";
    if (!model->error.empty()) {
      message += " (" + model->error + ")";
    } else {
      for (const VersionStatus& v : model->versions) {
        if (v.state != VersionState::kReady && !v.reason.empty()) {
          message += " (version " + std::to_string(v.version) + ": " + v.reason + ")";
          break;
        }
      }
    }
    break;
  }
  SetErrorResponse(UnavailableError(message), response);
}

void Handler::RepositoryIndex(bool ready_only, HttpResponse& response) const {
  JsonWriter w(response.body);
  w.BeginArray();
  for (const IndexEntry& entry : repository_.Index()) {
    if (ready_only && entry.state != VersionState::kReady) continue;
    w.BeginObject();
    w.Key("name");
    w.String(entry.name);
    if (entry.version > 0) {
      w.Key("version");
      w.String(std::to_string(entry.version));
    }
    w.Key("state");
    w.String(VersionStateName(entry.state));
    w.Key("reason");
    w.String(entry.reason);
    w.EndObject();
  }
  w.EndArray();
}

void Handler::ModelMetadata(const ModelHandle& handle, HttpResponse& response) const {
  const engine::Signature& signature = handle.model->signature();
  JsonWriter w(response.body);
  w.BeginObject();
  w.Key("name");
  w.String(handle.servable->name);
  w.Key("versions");
  w.BeginArray();
  for (const auto& [version, model] : handle.servable->ready) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), version);
    (void)ec;
    w.String(std::string_view(buf, static_cast<size_t>(end - buf)));
  }
  w.EndArray();
  w.Key("platform");
  w.String(handle.model->platform());
  auto tensors = [&w](std::string_view key, const std::vector<engine::TensorSpec>& specs) {
    w.Key(key);
    w.BeginArray();
    for (const engine::TensorSpec& spec : specs) {
      w.BeginObject();
      w.Key("name");
      w.String(spec.name);
      w.Key("datatype");
      w.String(engine::DataTypeName(spec.type));
      w.Key("shape");
      w.BeginArray();
      for (int64_t d : spec.shape) w.Int(d);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
  };
  tensors("inputs", signature.inputs);
  tensors("outputs", signature.outputs);
  w.EndObject();
}

void Handler::Infer(const HttpRequest& request, const ModelHandle& handle,
                    HttpResponse& response) const {
  auto call = std::make_shared<RestInfer>(handle);
  Status status = ParseInfer(request, options_.limits, call->parsed);
  if (!status.ok()) {
    AnswerInfer(*call, std::move(status), response);
    return;
  }
  call->parsed.cancelled = request.client_gone;
  if (!request.defer) {
    status = RunInference(handle, call->parsed, call->outputs, call->refs, &call->recorder,
                          options_.insight);
    AnswerInfer(*call, std::move(status), response);
    return;
  }
  // The listener's thread goes on with its other connections; the completion writes the
  // response and sends it.
  call->deferred = request.defer();
  RestInfer& rest = *call;
  RunInferenceAsync(handle, rest.parsed, rest.outputs, rest.refs, &rest.recorder, options_.insight,
                    [call = std::move(call), &response](Status run) {
                      AnswerInfer(*call, std::move(run), response);
                      call->deferred.Send();
                    });
}

Status RunInference(const ModelHandle& handle, InferRequest& request,
                    std::vector<engine::Tensor>& outputs, std::vector<OutputRef>& selected) {
  InferenceRecorder recorder(handle.stats);
  Status status = RunInference(handle, request, outputs, selected, &recorder);
  recorder.Finish(status.ok());
  return status;
}

Status RunInference(const ModelHandle& handle, InferRequest& request,
                    std::vector<engine::Tensor>& outputs, std::vector<OutputRef>& selected,
                    InferenceRecorder* recorder, insight::InsightSink* insight) {
  return WaitForCompletion([&](ScheduledDone done) {
    RunInferenceAsync(handle, request, outputs, selected, recorder, insight, std::move(done));
  });
}

void RunInferenceAsync(const ModelHandle& handle, InferRequest& request,
                       std::vector<engine::Tensor>& outputs, std::vector<OutputRef>& selected,
                       InferenceRecorder* recorder, insight::InsightSink* insight,
                       std::function<void(Status)> done) {
  auto call = std::make_shared<InferenceCall>();
  call->handle = handle;
  call->request = &request;
  call->outputs = &outputs;
  call->selected = &selected;
  call->recorder = recorder;
  call->insight = insight;
  call->done = std::move(done);
  Status checked = CheckInference(*call);
  if (!checked.ok()) {
    std::function<void(Status)> answer = std::move(call->done);
    answer(std::move(checked));
    return;
  }
  outputs.clear();
  if (recorder != nullptr) recorder->InputsReady();
  if (handle.scheduler == nullptr) {
    Status run = handle.model->Run(call->inputs, outputs);
    if (run.ok() && handle.stats != nullptr) {
      handle.stats->execution_count.fetch_add(1, std::memory_order_relaxed);
    }
    CompleteInference(std::move(call), std::move(run));
    return;
  }
  // Queued, maybe batched with other requests; refused when the queue is full, the
  // request's timeout passes or its client goes away while it waits.
  call->scheduled = ScheduledRequest{.inputs = call->inputs,
                                     .outputs = &outputs,
                                     .timeout = std::chrono::microseconds(std::min<uint64_t>(
                                         request.timeout_us, kMaxRequestTimeoutUs)),
                                     .cancelled = request.cancelled};
  ScheduledRequest& scheduled = call->scheduled;
  handle.scheduler->Submit(scheduled, [call = std::move(call)](Status run) mutable {
    CompleteInference(std::move(call), std::move(run));
  });
}

}  // namespace outpost::serve
