// The edge API's routes (edge_api.h). Feedback bodies and stored payloads are read through
// the JSON adapter (base/json/json.h).
#include "serve/edge_api.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "base/coding.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "base/names.h"

namespace outpost::serve {
namespace {

// Feedback bodies are flat objects; deeper nesting is refused by the parser.
constexpr size_t kFeedbackMaxDepth = 7;
// Stored payloads are at most the outbox's largest (16 MiB).
constexpr size_t kMaxPayloadBytes = size_t{16} << 20;

// A string member of the feedback object, checked against `max_bytes`.
Status ReadString(json::Value value, std::string_view key, size_t max_bytes, bool allow_empty,
                  std::string& out) {
  Result<std::string_view> text = value.GetString();
  if (!text.ok()) {
    return InvalidArgumentError("feedback \"" + std::string(key) + "\" must be a string");
  }
  const std::string_view s = *text;
  if (s.empty() && !allow_empty) {
    return InvalidArgumentError("feedback \"" + std::string(key) + "\" must not be empty");
  }
  if (s.size() > max_bytes) {
    return InvalidArgumentError("feedback \"" + std::string(key) + "\" is longer than " +
                                std::to_string(max_bytes) + " bytes");
  }
  out.assign(s);
  return Status();
}

// The outbox's answer as the HTTP client should see it: a full or failed store is the
// server's condition (503), not a fault of the request. A reason the outbox gave
// (too_many_streams) is kept.
Status OutboxStatus(const Status& s) {
  Status out;
  switch (s.code()) {
    case StatusCode::kResourceExhausted:
      out = UnavailableError("outbox full, nothing stored: " + std::string(s.message()));
      break;
    case StatusCode::kFailedPrecondition:
      out = UnavailableError("outbox unavailable: " + std::string(s.message()));
      break;
    default:
      return s.WithContext("outbox");
  }
  return s.has_reason() ? out.WithReason(s.reason()) : out;
}

// The name a caller goes by in logs: its credential, or "anonymous".
std::string_view CallerName(const http::Caller& caller) {
  return caller.kind == http::Caller::Kind::kClient ? std::string_view(caller.credential)
                                                    : std::string_view("anonymous");
}

// Decodes %XX and '+' of a query component; nullopt for a broken escape.
std::optional<std::string> DecodeQueryComponent(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// A non-negative decimal integer, the whole of `s`.
bool ParseNonNegative(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && out >= 0;
}

std::string Truncated(std::string_view s) {
  constexpr size_t kMax = 64;
  return s.size() > kMax ? std::string(s.substr(0, kMax)) + "..." : std::string(s);
}

}  // namespace

Result<Feedback> ParseFeedback(std::string_view body, const FeedbackLimits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return ResourceExhaustedError("feedback body is larger than " +
                                  std::to_string(limits.max_body_bytes) + " bytes");
  }
  json::Parser parser({.max_depth = kFeedbackMaxDepth});
  if (!parser.Reserve(std::max<size_t>(body.size(), 64)).ok()) {
    return ResourceExhaustedError("cannot allocate the JSON parser");
  }
  if (body.empty()) return InvalidArgumentError("feedback body is empty; it must be a JSON object");
  Result<json::Value> root = parser.Parse(body);
  if (!root.ok()) {
    return InvalidArgumentError("feedback body is not valid JSON: " +
                                std::string(root.status().message()));
  }
  if (!root->is_object()) return InvalidArgumentError("feedback body must be a JSON object");
  Feedback feedback;
  bool has_request_id = false, has_model = false, has_label = false, has_note = false;
  for (json::Member member : root->Members()) {
    std::string_view key = member.key;
    bool* seen = nullptr;
    if (key == "request_id") {
      seen = &has_request_id;
    } else if (key == "model") {
      seen = &has_model;
    } else if (key == "label") {
      seen = &has_label;
    } else if (key == "note") {
      seen = &has_note;
    } else {
      return InvalidArgumentError("feedback has an unknown key \"" + Truncated(key) + "\"");
    }
    if (*seen) return InvalidArgumentError("feedback repeats the key \"" + std::string(key) + "\"");
    *seen = true;
    if (key == "request_id") {
      OUTPOST_RETURN_IF_ERROR(ReadString(member.value, key, limits.max_request_id_bytes,
                                         /*allow_empty=*/false, feedback.request_id));
    } else if (key == "model") {
      OUTPOST_RETURN_IF_ERROR(ReadString(member.value, key, 128, false, feedback.model));
      // The bundle's rule (base/names.h): a model that can be fed back can be bundled.
      if (!ModelName::IsValid(feedback.model)) {
        return InvalidArgumentError("feedback \"model\" \"" + Truncated(feedback.model) +
                                    "\" is not a model name (" +
                                    std::string(kModelNameRule.pattern) + ")")
            .WithReason(kModelNameRule.reason);
      }
    } else if (key == "note") {
      OUTPOST_RETURN_IF_ERROR(
          ReadString(member.value, key, limits.max_note_bytes, true, feedback.note));
    } else {  // label
      json::Value value = member.value;
      switch (value.type()) {
        case json::Type::kInt64:
          feedback.label = *value.GetInt64();
          break;
        case json::Type::kUint64:
          feedback.label = static_cast<double>(*value.GetUint64());
          break;
        case json::Type::kDouble:
          feedback.label = *value.GetDouble();
          break;
        case json::Type::kString: {
          std::string label;
          OUTPOST_RETURN_IF_ERROR(ReadString(value, key, limits.max_label_bytes, false, label));
          feedback.label = std::move(label);
          break;
        }
        default:
          return InvalidArgumentError("feedback \"label\" must be a number or a string");
      }
    }
  }
  if (!has_request_id) return InvalidArgumentError("feedback needs \"request_id\"");
  if (!has_model) return InvalidArgumentError("feedback needs \"model\"");
  if (!has_label) return InvalidArgumentError("feedback needs \"label\"");
  return feedback;
}

LabelSource LabelSourceOf(const http::Caller& caller) {
  LabelSource source;
  if (caller.kind == http::Caller::Kind::kClient) {
    source.credential = caller.credential;
    source.trusted = (caller.roles & auth::RoleBit(auth::Role::kLabel)) != 0;
  }
  return source;
}

std::string FeedbackPayload(const Feedback& feedback, int64_t time_ms, const LabelSource& source) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("v");
  w.Int(1);
  w.Key("kind");
  w.String("feedback");
  w.Key("model");
  w.String(feedback.model);
  w.Key("request_id");
  w.String(feedback.request_id);
  w.Key("label");
  if (const auto* i = std::get_if<int64_t>(&feedback.label)) {
    w.Int(*i);
  } else if (const auto* d = std::get_if<double>(&feedback.label)) {
    w.Double(*d);
  } else {
    w.String(std::get<std::string>(feedback.label));
  }
  if (!feedback.note.empty()) {
    w.Key("note");
    w.String(feedback.note);
  }
  w.Key("time_ms");
  w.Int(time_ms);
  if (!source.credential.empty()) {
    w.Key("credential");
    w.String(source.credential);
  }
  w.Key("trusted");
  w.Bool(source.trusted);
  w.EndObject();
  return out;
}

EdgeApi::EdgeApi(EdgeApiOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock()) {
  RegisterRoutes(router_);
}

bool EdgeApi::Owns(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  return path == "/v1" || path.rfind("/v1/", 0) == 0;
}

void EdgeApi::RegisterRoutes(http::Router& router) const {
  // Every route answers 503 on a node that has no outbox.
  auto route = [this](auto answer) {
    return [this, answer](const HttpRequest& request, HttpResponse& response) {
      if (options_.outbox == nullptr) {
        SetErrorResponse(UnavailableError("this node has no outbox"), response);
        return;
      }
      answer(request, response);
    };
  };
  router.Exact("POST", "/v1/feedback",
               route([this](const HttpRequest& request, HttpResponse& response) {
                 PostFeedback(request, response);
               }),
               auth::RoleBit(auth::Role::kLabel));
  router.Exact("GET", "/v1/records",
               route([this](const HttpRequest& request, HttpResponse& response) {
                 std::string_view target = request.target;
                 const size_t question = target.find('?');
                 GetRecords(request,
                            question == std::string_view::npos ? std::string_view()
                                                               : target.substr(question + 1),
                            response);
               }),
               auth::RoleBit(auth::Role::kRead));
  router.Exact("GET", "/v1/outbox",
               route([this](const HttpRequest&, HttpResponse& response) { GetOutbox(response); }),
               auth::RoleBit(auth::Role::kRead));
}

void EdgeApi::Handle(const HttpRequest& request, HttpResponse& response) const {
  response.Clear();
  router_.Handle(request, response);
}

bool EdgeApi::TakeFeedbackToken(std::string_view key, int64_t* retry_after_s) const {
  const double rate = options_.feedback_per_second;
  if (!(rate > 0)) return true;
  const double burst = static_cast<double>(std::max<size_t>(options_.feedback_burst, 1));
  const Clock::MonoTime now = clock_->Monotonic();
  std::lock_guard<std::mutex> lock(rate_mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    it = buckets_.emplace(std::string(key), Bucket{.tokens = burst, .last = now}).first;
  }
  Bucket& b = it->second;
  const double elapsed_s = std::chrono::duration<double>(now - b.last).count();
  if (elapsed_s > 0) {
    b.tokens = std::min(burst, b.tokens + elapsed_s * rate);
    b.last = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return true;
  }
  *retry_after_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1 - b.tokens) / rate)));
  return false;
}

void EdgeApi::PostFeedback(const HttpRequest& request, HttpResponse& response) const {
  const LabelSource source = LabelSourceOf(request.caller);
  // Callers without a credential share one bucket, keyed "" (no credential has that name).
  int64_t retry_after_s = 0;
  if (!TakeFeedbackToken(source.credential, &retry_after_s)) {
    SetErrorResponse(
        ErrorWithReason(StatusCode::kResourceExhausted, "rate_limited",
                        "caller \"" + std::string(CallerName(request.caller)) +
                            "\" sent more than its feedback rate; nothing stored, retry in " +
                            std::to_string(retry_after_s) + " s"),
        response);
    // Too Many Requests: a bound on this caller's rate, which base/status_mapping.h has no
    // code for.
    response.status = 429;
    response.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
    return;
  }
  Result<Feedback> feedback = ParseFeedback(request.body, options_.feedback);
  if (!feedback.ok()) return SetErrorResponse(feedback.status(), response);
  if (options_.repository == nullptr || !options_.repository->Knows(feedback->model)) {
    return SetErrorResponse(
        ErrorWithReason(StatusCode::kNotFound, "model_unknown",
                        "feedback names model \"" + feedback->model +
                            "\", which this node does not serve and has not served"),
        response);
  }
  std::string stream = feedback->model;
  Result<outbox::RecordKey> key = options_.outbox->Append(
      {.kind = outbox::Kind::kFeedback,
       .stream = std::move(stream),
       .payload = FeedbackPayload(*feedback, UnixMillis(clock_->Now()), source)});
  if (!key.ok()) return SetErrorResponse(OutboxStatus(key.status()), response);
  if (options_.labels != nullptr) {
    // Counted against the version that answered, when trusted (serve/label_tally.h).
    if (const auto* i = std::get_if<int64_t>(&feedback->label)) {
      options_.labels->OnFeedback(feedback->model, feedback->request_id, static_cast<double>(*i),
                                  source.trusted);
    } else if (const auto* d = std::get_if<double>(&feedback->label)) {
      options_.labels->OnFeedback(feedback->model, feedback->request_id, *d, source.trusted);
    }
  }
  if (options_.shadow != nullptr) {
    // A numeric label also scores the champion and the shadow (serve/shadow.h), which
    // counts it only when it is trusted.
    if (const auto* i = std::get_if<int64_t>(&feedback->label)) {
      options_.shadow->OnFeedback(feedback->model, feedback->request_id, static_cast<double>(*i),
                                  source);
    } else if (const auto* d = std::get_if<double>(&feedback->label)) {
      options_.shadow->OnFeedback(feedback->model, feedback->request_id, *d, source);
    }
  }
  JsonWriter w(response.body);
  w.BeginObject();
  w.Key("stream");
  w.String(key->stream);
  w.Key("seq");
  w.Uint(key->seq);
  w.EndObject();
}

void EdgeApi::GetRecords(const HttpRequest& request, std::string_view query,
                         HttpResponse& response) const {
  outbox::QueryOptions q{.limit = options_.default_query_limit};
  bool seen_kind = false, seen_since = false, seen_limit = false;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string_view name = part.substr(0, eq);
    std::optional<std::string> value = DecodeQueryComponent(
        eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
    if (!value) {
      return SetErrorResponse(
          InvalidArgumentError("query parameter \"" + Truncated(name) + "\" has a broken %-escape"),
          response);
    }
    bool* seen = nullptr;
    if (name == "kind") {
      seen = &seen_kind;
    } else if (name == "since") {
      seen = &seen_since;
    } else if (name == "limit") {
      seen = &seen_limit;
    } else {
      return SetErrorResponse(InvalidArgumentError("unknown query parameter \"" + Truncated(name) +
                                                   "\" (kind, since, limit)"),
                              response);
    }
    if (*seen) {
      return SetErrorResponse(
          InvalidArgumentError("query parameter \"" + std::string(name) + "\" is repeated"),
          response);
    }
    *seen = true;
    if (name == "kind") {
      if (value->empty()) continue;  // kind= means every kind
      Result<outbox::Kind> kind = outbox::ParseKind(*value);
      if (!kind.ok()) {
        return SetErrorResponse(InvalidArgumentError("unknown kind \"" + Truncated(*value) + "\""),
                                response);
      }
      q.kind = *kind;
    } else if (name == "since") {
      if (!ParseNonNegative(*value, q.since_ms)) {
        return SetErrorResponse(
            InvalidArgumentError("since must be Unix milliseconds, a non-negative integer"),
            response);
      }
    } else {
      int64_t limit = 0;
      if (!ParseNonNegative(*value, limit) || limit < 1 ||
          static_cast<uint64_t>(limit) > options_.max_query_limit) {
        return SetErrorResponse(InvalidArgumentError("limit must be an integer from 1 to " +
                                                     std::to_string(options_.max_query_limit)),
                                response);
      }
      q.limit = static_cast<size_t>(limit);
    }
  }
  Result<std::vector<outbox::Record>> records = options_.outbox->Query(q);
  if (!records.ok()) return SetErrorResponse(OutboxStatus(records.status()), response);
  WriteRecords(request.caller, *records, q.limit, response);
}

void EdgeApi::WriteRecords(const http::Caller& caller, std::vector<outbox::Record>& records,
                           size_t limit, HttpResponse& response) const {
  // Raw for a caller holding a raw-read role; otherwise each payload as the forwarder would
  // upload it (policy::Apply), and nothing the policy keeps at the site.
  const bool raw = (caller.roles & options_.raw_read_roles) != 0;
  const bool can_filter = options_.policy != nullptr && options_.policy_hash_key.has_value();
  const outbox::Outbox& box = *options_.outbox;
  json::Parser parser({.max_bytes = kMaxPayloadBytes});
  JsonWriter w(response.body);
  w.BeginObject();
  w.Key("records");
  w.BeginArray();
  bool more = false;
  size_t written = 0, withheld = 0;
  for (outbox::Record& record : records) {
    if (written > 0 && response.body.size() >= options_.max_response_bytes) {
      more = true;
      break;
    }
    if (!raw) {
      if (!can_filter) {
        ++withheld;
        continue;
      }
      policy::RecordView view{.kind = outbox::KindName(record.kind),
                              .site = box.site_id(),
                              .node = box.node_id(),
                              .stream = record.stream,
                              .seq = record.seq,
                              .payload = record.payload};
      policy::Decision d = policy::Apply(*options_.policy, *options_.policy_hash_key, view);
      if (!d.allowed()) {
        ++withheld;
        continue;
      }
      record.payload = std::move(d.payload);
    }
    w.BeginObject();
    w.Key("stream");
    w.String(record.stream);
    w.Key("seq");
    w.Uint(record.seq);
    w.Key("kind");
    w.String(outbox::KindName(record.kind));
    w.Key("created_ms");
    w.Int(record.created_ms);
    // Payloads are JSON by convention and embedded as such; anything else is quoted.
    bool is_json = parser.Parse(record.payload).ok();
    if (is_json) {
      w.Key("payload");
      w.Raw(record.payload);
    } else {
      w.Key("payload_text");
      w.String(record.payload);
    }
    w.EndObject();
    ++written;
  }
  w.EndArray();
  w.Key("more");
  w.Bool(more || records.size() == limit);
  w.EndObject();
  const std::string policy_digest = raw          ? std::string("-")
                                    : can_filter ? options_.policy->digest
                                                 : std::string("none");
  OUTPOST_LOG(kInfo) << "records read" << Field("credential", CallerName(caller))
                     << Field("access", raw ? "raw" : "filtered") << Field("policy", policy_digest)
                     << Field("listed", written) << Field("withheld", withheld);
  if (!options_.audit) return;
  std::string line;
  JsonWriter a(line);
  a.BeginObject();
  a.Key("v");
  a.Int(1);
  a.Key("time_ms");
  a.Int(UnixMillis(clock_->Now()));
  a.Key("event");
  a.String("records_read");
  a.Key("credential");
  a.String(CallerName(caller));
  a.Key("access");
  a.String(raw ? "raw" : "filtered");
  a.Key("policy");
  a.String(policy_digest);
  a.Key("listed");
  a.Uint(written);
  a.Key("withheld");
  a.Uint(withheld);
  a.EndObject();
  // No record leaves without its line in the audit.
  if (Status audited = options_.audit(line); !audited.ok()) {
    response.Clear();
    SetErrorResponse(
        ErrorWithReason(StatusCode::kUnavailable, "audit_unavailable",
                        "the access audit cannot be written: " + std::string(audited.message())),
        response);
  }
}

void EdgeApi::GetOutbox(HttpResponse& response) const {
  Result<outbox::OutboxStats> stats = options_.outbox->Stats();
  if (!stats.ok()) return SetErrorResponse(OutboxStatus(stats.status()), response);
  const int64_t now_ms = UnixMillis(clock_->Now());
  JsonWriter w(response.body);
  w.BeginObject();
  w.Key("site_id");
  w.String(stats->site_id);
  w.Key("node_id");
  w.String(stats->node_id);
  w.Key("records");
  w.Uint(stats->records);
  w.Key("bytes");
  w.Uint(stats->bytes);
  w.Key("max_bytes");
  w.Uint(stats->max_bytes);
  w.Key("oldest_record_age_ms");
  if (stats->oldest_record_age) {
    w.Int(stats->oldest_record_age->count());
  } else {
    w.Null();
  }
  w.Key("ingest_records_per_s");
  w.Double(stats->ingest_records_per_s);
  w.Key("ingest_bytes_per_s");
  w.Double(stats->ingest_bytes_per_s);
  w.Key("rate_window_s");
  w.Int(stats->rate_window.count());
  w.Key("autonomy_days");
  if (stats->autonomy_days) {
    w.Double(*stats->autonomy_days);
  } else {
    w.Null();
  }
  w.Key("leased_records");
  w.Uint(stats->leased_records);
  w.Key("active_leases");
  w.Uint(stats->active_leases);
  w.Key("quarantined_records");
  w.Uint(stats->quarantined_records);
  w.Key("rejected_records");
  w.Uint(stats->rejected_records);
  w.Key("autonomy_basis");
  w.String(outbox::AutonomyBasisName(stats->autonomy_basis));
  w.Key("drain_bytes_per_s");
  w.Double(stats->drain_bytes_per_s);
  w.Key("account");
  w.Raw(outbox::AccountJson(*stats));
  w.Key("failed");
  w.Bool(stats->failed);
  if (stats->failed) {
    w.Key("failure");
    w.String(stats->failure);
  }
  w.Key("classes");
  w.BeginArray();
  for (const outbox::ClassStats& c : stats->classes) {
    w.BeginObject();
    w.Key("kind");
    w.String(outbox::KindName(c.kind));
    w.Key("records");
    w.Uint(c.records);
    w.Key("bytes");
    w.Uint(c.bytes);
    w.Key("quota_bytes");
    w.Uint(c.quota_bytes);
    w.Key("oldest_age_ms");
    if (c.oldest_created_ms) {
      w.Int(std::max<int64_t>(0, now_ms - *c.oldest_created_ms));
    } else {
      w.Null();
    }
    w.Key("evicted_records");
    w.Uint(c.evicted_records);
    w.Key("evicted_bytes");
    w.Uint(c.evicted_bytes);
    w.Key("ingest_bytes_per_s");
    w.Double(c.ingest_bytes_per_s);
    w.Key("reserved_bytes");
    w.Uint(c.reserved_bytes);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace outpost::serve
