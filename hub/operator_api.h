// What the hub's operator routes that act (the registry, hub/registry_api.cc; rollouts,
// hub/rollout.h) share: reading a target's path and segments, their version numbers, the
// answers for a wrong method and a JSON body, and the audit log's line of an operator action
// (hub/FORMAT.md section 1, "Registry actions").
#ifndef OUTPOST_HUB_OPERATOR_API_H_
#define OUTPOST_HUB_OPERATOR_API_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/http/message.h"
#include "base/http/server.h"
#include "base/json_writer.h"
#include "base/status.h"
#include "hub/http.h"

namespace outpost::hub {

inline constexpr size_t kMaxOperatorTargetBytes = 4096;
inline constexpr size_t kMaxOperatorBodyBytes = 64 << 10;  // bodies are ignored, but bounded

// The path of a target without its query string.
std::string_view TargetPath(std::string_view target);

// "a/b/c" -> {"a", "b", "c"}; at most 9 segments (no route has more).
std::vector<std::string_view> SplitPath(std::string_view path);

// A version as a path segment: 1 to 15 decimal digits, > 0; nullopt otherwise.
std::optional<int64_t> ParsePathVersion(std::string_view s);

HubResponse JsonResponse(int status, std::string body);

// 405 method_not_allowed with `Allow: <allow>`.
HubResponse MethodNotAllowed(std::string_view allow);

// 414, 413 and 401 for a target over kMaxOperatorTargetBytes, a body over
// kMaxOperatorBodyBytes and a caller that is not an operator; nullopt when none applies.
std::optional<HubResponse> RefuseOperatorRequest(const HubRequest& request);

// `v`, or null when it equals `none`.
void OptionalInt(JsonWriter& w, int64_t v, int64_t none);
// `s`, or null when empty.
void OptionalString(JsonWriter& w, const std::string& s);

// One action of an operator, as the hub's audit log records it.
struct OperatorAction {
  int64_t time_ms = 0;
  std::string_view event{};  // "model_approve", "rollout_abort", ...
  const Caller* caller = nullptr;
  std::string_view model{};
  int64_t version = 0;  // 0 = null
  int status = 0;       // the HTTP status answered
  std::string outcome{};
  std::string detail{};  // at most 1024 bytes are written
};

// The audit line (no trailing newline) of hub/FORMAT.md section 1, "Registry actions".
std::string OperatorAuditLine(const OperatorAction& action);

// Appends `action`'s audit line through `audit` (when set); a failure is logged as an error
// (the action has happened, and the answer is still sent).
void AppendOperatorAudit(const std::function<Status(std::string_view line)>& audit,
                         const OperatorAction& action);

// Registers `handle` on `router` for `prefix` exactly and every path under `prefix`/, any
// method: the handler reads the rest of the path and answers its own 401, 404 and 405.
void RegisterOperatorRoutes(http::Router& router, std::string_view prefix,
                            std::function<HubResponse(const HubRequest&)> handle);

// The outcome and detail of an answer of these routes: for a success, the body's `key`
// (e.g. "state") and `detail_key`; for a refusal, its reason and message.
void ReadOutcome(const HubResponse& response, std::string_view key, std::string_view detail_key,
                 std::string& outcome, std::string& detail);

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_OPERATOR_API_H_
