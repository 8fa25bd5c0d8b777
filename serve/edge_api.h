// EdgeApi: the edge node's own REST routes under /v1/, beside the Open Inference Protocol's
// /v2/ (handler.h), over the same plain request and response structs and with no sockets.
//
// Routes (paths case-sensitive; serve/FORMAT.md, section "Edge API"):
//   POST /v1/feedback                        a label for a scored request, stored durably as
//                                            a `feedback` record on the model's stream
//   GET  /v1/records?kind=&since=&limit=     records still held at the site, oldest first
//   GET  /v1/outbox                          depth and bytes per class, oldest record's age,
//                                            ingest rate, days of autonomy left
// Errors are {"error": "<message>", "reason": "<code>"} as everywhere in serve/: 400 for a
// malformed body or query, 404 for an unknown /v1 path, 405 for a wrong method (with Allow;
// both from the router, base/http/server.h), 413 for a body over max_body_bytes, 503 when
// the outbox is full or failed (nothing was stored).
//
// A feedback answer of 200 means the record is durable (the outbox's group commit was
// fsynced); any other answer means it was not stored.
//
//   serve::EdgeApi edge_api({.outbox = outbox.get()});
//   http::Router router;
//   edge_api.RegisterRoutes(router);  // beside serve::RegisterRoutes(router, handler)
//   auto server = http::Server::Start(options, router.AsHandler());
//
// Parsing: feedback bodies are read through the JSON adapter (base/json/json.h), which
// reports errors as Status values.
// Thread-safe: any number of threads may call Handle (and the registered routes) at once.
#ifndef OUTPOST_SERVE_EDGE_API_H_
#define OUTPOST_SERVE_EDGE_API_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "base/http/server.h"
#include "base/status.h"
#include "outbox/outbox.h"
#include "serve/handler.h"
#include "serve/shadow.h"

namespace outpost::serve {

// Bounds on what a client sends to /v1/feedback (each a stable 400 reason when broken).
struct FeedbackLimits {
  size_t max_body_bytes = 16 << 10;  // larger bodies: 413
  size_t max_request_id_bytes = 256;
  size_t max_label_bytes = 256;  // a string label
  size_t max_note_bytes = 4096;
};

// One parsed POST /v1/feedback body.
struct Feedback {
  std::string request_id{};
  std::string model{};  // a ModelName (base/names.h), which is also a valid outbox stream
  // The label: a number as the client wrote it (int64 when integral and in range, else a
  // finite double) or a string.
  std::variant<int64_t, double, std::string> label{};
  std::string note{};  // empty when absent
};

// Parses a feedback body: a JSON object with "request_id" (non-empty string), "model" (a
// ModelName of base/names.h, the rule bundles use), "label" (number or string) and optional
// "note" (string); any other key, a wrong type, a missing key or a size over `limits` is
// InvalidArgument naming the key (reason invalid_model_name for a model that is not a
// ModelName); a body over max_body_bytes is ResourceExhausted.
Result<Feedback> ParseFeedback(std::string_view body, const FeedbackLimits& limits = {});

// The payload stored for a feedback record (serve/FORMAT.md): {"v":1,"kind":"feedback",
// "model","request_id","label",["note"],"time_ms"}.
std::string FeedbackPayload(const Feedback& feedback, int64_t time_ms);

struct EdgeApiOptions {
  // Where feedback goes and what the queries read. Not owned; must outlive the EdgeApi.
  outbox::Outbox* outbox = nullptr;
  // Stamps feedback's time_ms. Null = SystemClock(). Not owned.
  Clock* clock = nullptr;
  FeedbackLimits feedback{};
  // GET /v1/records: `limit` defaults to this and may be 1 .. max_query_limit.
  size_t default_query_limit = 100;
  size_t max_query_limit = 1000;
  // GET /v1/records stops adding records once the response body passes this many bytes and
  // says "more": true (the first record is always included).
  size_t max_response_bytes = size_t{8} << 20;
  // Told of each stored feedback with a numeric label, to score a model's champion and
  // shadow (serve/shadow.h). Not owned; null = none.
  ShadowRunner* shadow = nullptr;
};

class EdgeApi {
 public:
  explicit EdgeApi(EdgeApiOptions options);
  // The routes point at this object.
  EdgeApi(const EdgeApi&) = delete;
  EdgeApi& operator=(const EdgeApi&) = delete;

  // True for targets this API answers: the path is /v1 or starts with /v1/.
  static bool Owns(std::string_view target);

  // Registers the routes above on a listener's router, one by one: POST /v1/feedback,
  // GET /v1/records, GET /v1/outbox. This API must outlive the router's server.
  void RegisterRoutes(http::Router& router) const;

  // Answers one /v1 request through the same routes, without a listener (tests, fuzzing).
  // `response` is overwritten.
  void Handle(const HttpRequest& request, HttpResponse& response) const;

 private:
  void PostFeedback(const HttpRequest& request, HttpResponse& response) const;
  void GetRecords(std::string_view query, HttpResponse& response) const;
  void GetOutbox(HttpResponse& response) const;

  EdgeApiOptions options_;
  Clock* clock_;  // not owned
  http::Router router_;  // this API's routes alone, for Handle
};

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_EDGE_API_H_
