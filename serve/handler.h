// Handler: the Open Inference Protocol's REST API (KServe v2 / Triton) over plain request and
// response structs, with no sockets, so that it is tested and fuzzed without a network.
//
// Routes (all paths case-sensitive; a query string is ignored):
//   GET  /v2, /v2/                                  server metadata
//   GET  /v2/health/live                            200 {"live":true}
//   GET  /v2/health/ready                           200 {"ready":true} or 503 {"error":...}
//   GET  /v2/models/{m}[/versions/{v}]              model metadata
//   GET  /v2/models/{m}[/versions/{v}]/ready        200 {"name":m,"ready":true} or an error
//   POST /v2/models/{m}[/versions/{v}]/infer        inference (JSON, or JSON and binary tensor
//                                                   data; see infer_json.h)
//   GET  /v2/models/{m}[/versions/{v}]/stats        statistics extension: every ready version
//                                                   of m, or version v (metrics.h)
//   GET  /v2/models/stats                           statistics of every ready model version
//   POST /v2/repository/index                       repository extension: [{name, version,
//                                                   state, reason}]; the body is ignored
//   POST /v2/repository/models/{m}/load             (re)load m from disk: 200 {} when every
//                                                   version its policy wants is ready
//   POST /v2/repository/models/{m}/unload           stop serving m: 200 {}
//                                                   (load and unload only with
//                                                   HandlerOptions::allow_model_control;
//                                                   otherwise 403 model_control_disabled)
//   GET  /metrics                                   Prometheus text format 0.0.4 (metrics.h)
// {v} is digits only; without it the highest ready version answers. An infer response with
// binary outputs has Content-Type application/octet-stream and an
// Inference-Header-Content-Length header giving its JSON's length.
//
// Every error is answered with Content-Type application/json and {"error": "<message>",
// "reason": "<reason>"} (401 and 403 for a caller without the route's role come from the
// router's authorizer, before the handler; see RegisterRoutes):
//   400 bad request (malformed JSON, wrong input, wrong shape, bad version),
//   403 repository load or unload while model control is off (model_control_disabled),
//   404 unknown model, version or path, 405 wrong method (with an Allow header),
//   413 body or tensors larger than the limits, 501 an extension Outpost does not offer,
//   503 server or model not ready, 500 a fault of Outpost or of the model's backend.
// base/status_mapping.h HttpStatusFor() is the one place where a Status becomes an HTTP status.
#ifndef OUTPOST_SERVE_HANDLER_H_
#define OUTPOST_SERVE_HANDLER_H_

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/http/message.h"
#include "base/http/server.h"
#include "base/status.h"
#include "base/status_mapping.h"
#include "insight/evaluator.h"
#include "serve/infer_json.h"
#include "serve/metrics.h"
#include "serve/repository.h"

namespace outpost::serve {

// The request and response of every Outpost listener (base/http/message.h): the server
// fills them from the wire; the views of a request stay valid until Handle() returns, or
// until its deferred response is sent (an infer request of a listener).
using HttpHeader = http::HeaderField;
using HttpRequest = http::Request;
using HttpResponse = http::Response;

// Fills `response` with base/status_mapping.h's error body ({"error": message, "reason":
// reason}) and HttpStatusFor(status.code()).
void SetErrorResponse(const Status& status, HttpResponse& response);

// Runs a parsed infer request on the model version `handle` holds, with the checks every
// front end (REST, gRPC) shares: inputs are matched to the signature by name (an unexpected,
// repeated or missing input is InvalidArgument), the requested outputs must exist and not
// repeat (InvalidArgument), then engine::ValidateInputs(), then the version's scheduler
// (serve/scheduler.h: handle.scheduler) runs it, alone or in a batch with other requests, or
// refuses it without running it: Unavailable when the model's queue is full,
// DeadlineExceeded when it waited past request.timeout_us (or the model's default), Cancelled
// when request.cancelled says its client has gone. Without a scheduler the model runs on
// the caller's thread at once. Takes the
// request's input tensors (moved out). On success `outputs` holds every output in signature
// order and `selected` the ones to return, in the order requested (all, in signature order,
// when none were), pointing into `outputs` and into the signature; `binary` follows the
// request's binary_data parameters. A model's own error keeps its code, with the model and
// version as context; a model returning the wrong number of outputs is Internal.
// Records the request into handle.stats (the whole call is the request's duration). Blocks
// while the request waits in the queue and runs: for callers that may block (RunInferenceAsync
// is for those that may not).
Status RunInference(const ModelHandle& handle, InferRequest& request,
                    std::vector<engine::Tensor>& outputs, std::vector<OutputRef>& selected);

// As above, but marks the phases on `recorder` (null = none), which the caller finishes: for
// a front end that times parsing and response writing too. After a successful run the batch
// goes to `insight` (null = none), which copies what its rules need and never blocks.
Status RunInference(const ModelHandle& handle, InferRequest& request,
                    std::vector<engine::Tensor>& outputs, std::vector<OutputRef>& selected,
                    InferenceRecorder* recorder, insight::InsightSink* insight = nullptr);

// As RunInference, but returns at once; `done` is called exactly once with the status, on a
// scheduler worker thread (or on the caller's thread when the request is refused before it
// is queued, fails a check, or the version has no scheduler). `handle`'s model stays alive
// until then (done is called before the handle copy the call keeps is released); request,
// outputs, selected, recorder and insight must stay valid until `done` is called. The
// checks, the run and the bookkeeping (recorder, insight, shadow) are RunInference's: the
// blocking form is this one and a wait.
void RunInferenceAsync(const ModelHandle& handle, InferRequest& request,
                       std::vector<engine::Tensor>& outputs, std::vector<OutputRef>& selected,
                       InferenceRecorder* recorder, insight::InsightSink* insight,
                       std::function<void(Status)> done);

struct HandlerOptions {
  // Reported by GET /v2.
  std::string server_name = "outpost";
  std::string server_version = "";  // empty = the version Outpost was built as
  // Bounds on each infer request.
  InferJsonLimits limits{};
  // Receives every successfully scored batch for the model's insight rules (anomalies, hard
  // examples, drift, samples, aggregates). Not owned; must outlive the handler. Null = none.
  insight::InsightSink* insight = nullptr;
  // Whether POST /v2/repository/models/{m}/load and .../unload may change what is served.
  // Off by default (as Triton refuses dynamic model control unless asked): both answer 403
  // with reason model_control_disabled, before reading the body or looking up the model.
  // The repository index stays available either way. RegisterRoutes also puts the whole
  // /v2/repository prefix behind the admin role.
  bool allow_model_control = false;
};

class Handler {
 public:
  // `repository` is not owned and must outlive the handler. The repository routes load and
  // unload models in it.
  Handler(ModelRepository& repository, HandlerOptions options);

  // Answers one request. `response` is overwritten (its body's capacity is reused).
  // Thread-safe: any number of threads may call it at once. An infer request of a listener
  // (request.defer set) is answered through a deferred response, after Handle returns.
  void Handle(const HttpRequest& request, HttpResponse& response) const;

  const HandlerOptions& options() const { return options_; }

 private:
  void ServerMetadata(HttpResponse& response) const;
  void ServerReady(HttpResponse& response) const;
  void ModelMetadata(const ModelHandle& handle, HttpResponse& response) const;
  // The index as a JSON array; with `ready_only`, only the versions that are ready.
  void RepositoryIndex(bool ready_only, HttpResponse& response) const;
  // Parses the request and runs it. With request.defer (a listener's request), the response
  // is deferred and written and sent from the completion, so that the listener's thread
  // never waits for the model; without it (a handler called directly) it is written before
  // Infer returns.
  void Infer(const HttpRequest& request, const ModelHandle& handle, HttpResponse& response) const;

  ModelRepository& repository_;
  HandlerOptions options_;
  std::string server_metadata_;  // the GET /v2 body, built once
};

// Registers the Open Inference Protocol on a listener's router (base/http/server.h): every
// path that starts with /v2, and /metrics, for any method, go to `handler`, which reads the
// rest of the path itself (model, version, action) and answers its own 404s and 405s (with
// Allow) as listed above. `handler` is not owned and must outlive the router's server.
// Each route names the role its caller needs (base/auth/auth.h; the router's authorizer
// checks it before the handler runs, and the router's longest match picks the route):
//   /v2/health/live, /v2/health/ready   open (0): probes carry no credential
//   /v2/repository...                   admin (index, load, unload)
//   /v2/models..., /v2 and the rest     infer (metadata, readiness, infer, statistics)
//   /metrics                            read
void RegisterRoutes(http::Router& router, const Handler& handler);

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_HANDLER_H_
