// The operator routes' shared pieces (operator_api.h).
#include "hub/operator_api.h"

#include <utility>
#include <variant>

#include "base/logging.h"
#include "bundle/metadata.h"

namespace outpost::hub {

std::string_view TargetPath(std::string_view target) {
  size_t q = target.find_first_of("?#");
  return q == std::string_view::npos ? target : target.substr(0, q);
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  while (true) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (out.size() > 8) break;  // no route has more segments
  }
  return out;
}

std::optional<int64_t> ParsePathVersion(std::string_view s) {
  if (s.empty() || s.size() > 15) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < 1) return std::nullopt;
  return v;
}

HubResponse JsonResponse(int status, std::string body) {
  HubResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HubResponse MethodNotAllowed(std::string_view allow) {
  HubResponse r =
      ErrorResponse(405, "method_not_allowed", "this route takes " + std::string(allow) + " only");
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

std::optional<HubResponse> RefuseOperatorRequest(const HubRequest& request) {
  if (request.target.size() > kMaxOperatorTargetBytes) {
    return ErrorResponse(414, "target_too_long", "the request target is over 4096 bytes");
  }
  if (request.body.size() > kMaxOperatorBodyBytes) {
    return ErrorResponse(413, "body_too_large", "these routes take no body (64 KiB at most)");
  }
  if (request.caller.kind != Caller::Kind::kOperator) {
    return ErrorResponse(401, "unauthenticated", "an operator bearer token is required");
  }
  return std::nullopt;
}

void OptionalInt(JsonWriter& w, int64_t v, int64_t none) {
  if (v == none) {
    w.Null();
  } else {
    w.Int(v);
  }
}

void OptionalString(JsonWriter& w, const std::string& s) {
  if (s.empty()) {
    w.Null();
  } else {
    w.String(s);
  }
}

std::string OperatorAuditLine(const OperatorAction& a) {
  std::string line;
  JsonWriter w(line);
  w.BeginObject();
  w.Key("time_ms");
  w.Int(a.time_ms);
  w.Key("event");
  w.String(a.event);
  w.Key("tenant");
  w.String(a.caller != nullptr ? a.caller->tenant : std::string());
  w.Key("operator");
  w.String(a.caller != nullptr ? a.caller->credential : std::string());
  w.Key("model");
  w.String(a.model);
  w.Key("version");
  OptionalInt(w, a.version, 0);
  w.Key("status");
  w.Int(a.status);
  w.Key("outcome");
  w.String(a.outcome);
  w.Key("detail");
  w.String(a.detail.substr(0, 1024));
  w.EndObject();
  return line;
}

void AppendOperatorAudit(const std::function<Status(std::string_view line)>& audit,
                         const OperatorAction& action) {
  if (!audit) return;
  if (Status s = audit(OperatorAuditLine(action)); !s.ok()) {
    OUTPOST_LOG(kError) << "hub audit log append failed" << Field("event", action.event)
                        << Field("model", action.model) << Field("status", s);
  }
}

void RegisterOperatorRoutes(http::Router& router, std::string_view prefix,
                            std::function<HubResponse(const HubRequest&)> handle) {
  auto answer = [handle = std::move(handle)](const HubRequest& request, HubResponse& response) {
    response = handle(request);
  };
  router.Exact("*", std::string(prefix), answer);
  router.Prefix("*", std::string(prefix) + "/", answer);
}

void ReadOutcome(const HubResponse& response, std::string_view key, std::string_view detail_key,
                 std::string& outcome, std::string& detail) {
  Result<bundle::Json> body = bundle::ParseJson(response.body, /*canonical_numbers_only=*/false);
  if (!body.ok()) return;
  const auto* o = std::get_if<bundle::JsonObject>(&body->v);
  if (o == nullptr) return;
  auto text = [o](std::string_view k) -> std::string {
    auto it = o->find(std::string(k));
    if (it == o->end()) return {};
    const std::string* s = std::get_if<std::string>(&it->second.v);
    return s != nullptr ? *s : std::string();
  };
  if (response.status / 100 == 2) {
    outcome = text(key);
    detail = text(detail_key);
  } else {
    outcome = text("reason");
    detail = text("error");
  }
}

}  // namespace outpost::hub
