// EdgeApi: the edge node's own REST routes under /v1/, beside the Open Inference Protocol's
// /v2/ (handler.h), over the same plain request and response structs and with no sockets.
//
// Routes (paths case-sensitive; serve/FORMAT.md, section "Edge API"), with the role each
// needs (base/auth/auth.h; the listener's authorizer checks it and sets request.caller):
//   POST /v1/feedback                        label: a label for a scored request, stored
//                                            durably as a `feedback` record on the model's
//                                            stream
//   GET  /v1/records?kind=&since=&limit=     read: records still held at the site, oldest
//                                            first, as the compliance policy would let them
//                                            leave (raw for the raw_read_roles)
//   GET  /v1/outbox                          read: depth and bytes per class, oldest
//                                            record's age, ingest rate, days of autonomy left
// Errors are {"error": "<message>", "reason": "<code>"} as everywhere in serve/: 400 for a
// malformed body or query, 401/403 from the authorizer, 404 for an unknown /v1 path, 405 for
// a wrong method (with Allow; both from the router, base/http/server.h), 404 model_unknown
// for feedback on a model the repository never held, 413 for a body over max_body_bytes,
// 429 rate_limited (with Retry-After) for a caller over its feedback rate, 503 when the
// outbox is full or failed, or too_many_streams (nothing was stored).
//
// A feedback answer of 200 means the record is durable (the outbox's group commit was
// fsynced); any other answer means it was not stored. The record carries the caller's
// credential name and whether the label is trusted: sent by an authenticated credential
// (Caller::Kind::kClient) holding the label role. Only trusted labels reach the shadow
// runner's scoring.
//
//   serve::EdgeApi edge_api({.outbox = outbox.get(), .repository = repository.get(),
//                            .policy = policy, .policy_hash_key = hash_key,
//                            .raw_read_roles = auth::RoleBit(auth::Role::kAdmin)});
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
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/auth/auth.h"
#include "base/clock.h"
#include "base/http/server.h"
#include "base/status.h"
#include "outbox/outbox.h"
#include "policy/evaluate.h"
#include "policy/policy.h"
#include "serve/handler.h"
#include "serve/label_tally.h"
#include "serve/repository.h"
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

// The label source of a request's caller (request.caller, set by the authorizer).
LabelSource LabelSourceOf(const http::Caller& caller);

// The payload stored for a feedback record (serve/FORMAT.md): {"v":1,"kind":"feedback",
// "model","request_id","label",["note"],"time_ms",["credential"],"trusted"}.
std::string FeedbackPayload(const Feedback& feedback, int64_t time_ms, const LabelSource& source);

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
  // Counts a numeric label against the version that answered (serve/label_tally.h). Not
  // owned; null = none.
  LabelTally* labels = nullptr;
  // The models feedback may name: those this repository holds or held since it opened
  // (ModelRepository::Knows). Not owned; must outlive the EdgeApi. Null = no model is known
  // and every feedback is refused (model_unknown).
  const ModelRepository* repository = nullptr;
  // Per caller (the credential's name; every caller without one shares "anonymous"), a
  // token bucket of feedback_per_second labels holding at most feedback_burst; a label over
  // it is 429 rate_limited. feedback_per_second <= 0 = no limit.
  double feedback_per_second = 50;
  size_t feedback_burst = 200;
  // GET /v1/records shows each payload as policy::Apply makes it before an upload (the
  // forwarder's evaluation, sync/forwarder.h), and lists no record the policy withholds or
  // rejects. Null policy or no hash key = filtered reads list nothing.
  std::shared_ptr<const policy::Policy> policy{};
  std::optional<policy::HashKey> policy_hash_key{};
  // Callers holding any of these roles read records as stored, unfiltered. 0 = nobody.
  auth::RoleSet raw_read_roles = 0;
  // Records each GET /v1/records in the node's access audit (FORMAT.md): called with one JSON
  // line before the answer is sent; an error makes the read a 503 audit_unavailable. Null =
  // no audit (tests, embedding).
  std::function<Status(std::string_view line)> audit{};
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
  void GetRecords(const HttpRequest& request, std::string_view query, HttpResponse& response) const;
  // The records' part of a GET /v1/records answer, filtered for `caller`; logs the read.
  void WriteRecords(const http::Caller& caller, std::vector<outbox::Record>& records, size_t limit,
                    HttpResponse& response) const;
  void GetOutbox(HttpResponse& response) const;
  // Takes one token of `key`'s bucket; when it is empty, false and the whole seconds until
  // it holds one again.
  bool TakeFeedbackToken(std::string_view key, int64_t* retry_after_s) const;

  struct Bucket {
    double tokens = 0;
    Clock::MonoTime last{};
  };

  EdgeApiOptions options_;
  Clock* clock_;  // not owned
  http::Router router_;  // this API's routes alone, for Handle
  mutable std::mutex rate_mu_;  // guards buckets_
  // Feedback rate per caller; one entry per credential name that sent feedback (bounded by
  // the credentials file) and "anonymous".
  mutable std::map<std::string, Bucket, std::less<>> buckets_;
};

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_EDGE_API_H_
