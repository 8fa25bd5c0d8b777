// The model registry's operator API (hub/release.h, RetrainScheduler::Handles, Handle and
// RegisterRoutes; hub/QUERY_API.md "Model registry and retraining"): GET /api/v1/models, the
// versions of a model, approve and reject, and POST/GET .../retrain over the scheduler's
// state.
#include "hub/retrain_scheduler.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/json_writer.h"
#include "base/logging.h"
#include "bundle/metadata.h"
#include "hub/operator_api.h"

namespace outpost::hub {
namespace {

using retrain_internal::ModelSlot;

// Whether `text` is JSON, read with the bundle library's strict parser.
bool IsJsonText(const std::string& text) {
  return bundle::ParseJson(text, /*canonical_numbers_only=*/false).ok();
}

constexpr std::string_view kModelsPrefix = "/api/v1/models";

}  // namespace

HubResponse RetrainScheduler::Impl::ListConfigured(const Caller& caller) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("models");
  w.BeginArray();
  for (const auto& m : models) {
    if (m->config.tenant != caller.tenant) continue;
    w.BeginObject();
    w.Key("model");
    w.String(m->config.model);
    w.Key("auto_approve");
    w.Bool(m->config.auto_approve);
    w.Key("shadow");
    w.Bool(!m->config.release.shadow_yaml.empty());
    w.Key("min_new_labels");
    w.Int(m->config.min_new_labels);
    w.Key("every_s");
    w.Int(m->config.every.count());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return JsonResponse(200, std::move(body));
}

HubResponse RetrainScheduler::Impl::Versions(ModelSlot& m) {
  Result<std::vector<ModelEntry>> entries = store.ListModels(m.config.model);
  if (!entries.ok()) {
    return ErrorResponse(503, "store_unavailable", entries.status().ToString());
  }
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("model");
  w.String(m.config.model);
  w.Key("versions");
  w.BeginArray();
  for (const ModelEntry& e : *entries) {
    w.BeginObject();
    w.Key("version");
    w.Int(e.version);
    w.Key("state");
    w.String(e.state);
    w.Key("created_ms");
    w.Int(e.created_ms);
    w.Key("metrics");
    if (IsJsonText(e.metrics_json)) {
      w.Raw(e.metrics_json);
    } else {
      w.Null();
    }
    w.Key("lineage");
    if (IsJsonText(e.lineage_json)) {
      w.Raw(e.lineage_json);
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return JsonResponse(200, std::move(body));
}

// The version's registry entry, or the refusal.
Result<ModelEntry> RetrainScheduler::Impl::Entry(ModelSlot& m, int64_t version,
                                                 HubResponse* refusal) {
  Result<std::vector<ModelEntry>> entries = store.ListModels(m.config.model);
  if (!entries.ok()) {
    *refusal = ErrorResponse(503, "store_unavailable", entries.status().ToString());
    return entries.status();
  }
  for (ModelEntry& e : *entries) {
    if (e.version == version) return std::move(e);
  }
  *refusal = ErrorResponse(404, "version_not_found",
                           m.config.model + " has no version " + std::to_string(version));
  return NotFoundError("version_not_found");
}

HubResponse RetrainScheduler::Impl::Approve(ModelSlot& m, int64_t version) {
  std::lock_guard<std::mutex> release_lock(m.release_mu);
  HubResponse refusal;
  Result<ModelEntry> entry = Entry(m, version, &refusal);
  if (!entry.ok()) return refusal;
  if (entry->state != "candidate" && entry->state != "approved") {
    return ErrorResponse(409, "not_candidate",
                         m.config.model + " version " + std::to_string(version) + " is " +
                             entry->state + "; only a candidate is approved");
  }
  Result<ReleaseResult> released =
      ApproveAndRelease(store, m.config, version, options.data_dir, clock);
  if (!released.ok()) {
    const Status& failed = released.status();
    if (failed.reason() == "not_candidate") {
      return ErrorResponse(409, "not_candidate", failed.message());
    }
    if (failed.reason() == "version_not_found") return ErrorResponse(failed);
    return ErrorResponse(500, "release_failed", released.status().ToString());
  }
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("model");
  w.String(m.config.model);
  w.Key("version");
  w.Int(version);
  w.Key("state");
  w.String("bundled");
  w.Key("bundle");
  w.String(released->bundle_path);
  w.Key("bundle_version");
  w.Uint(released->bundle_version);
  w.Key("champion_version");
  OptionalInt(w, released->champion_version, 0);
  w.Key("shadow");
  w.Bool(released->shadow);
  w.EndObject();
  return JsonResponse(200, std::move(body));
}

HubResponse RetrainScheduler::Impl::Reject(ModelSlot& m, int64_t version) {
  std::lock_guard<std::mutex> release_lock(m.release_mu);
  HubResponse refusal;
  Result<ModelEntry> entry = Entry(m, version, &refusal);
  if (!entry.ok()) return refusal;
  if (entry->state == "bundled") {
    return ErrorResponse(409, "not_candidate",
                         m.config.model + " version " + std::to_string(version) +
                             " is bundled; a shipped version is not rejected");
  }
  if (entry->state != "rejected") {
    Status s = store.SetModelState(m.config.model, version, "rejected");
    if (!s.ok()) return ErrorResponse(503, "store_unavailable", s.ToString());
    OUTPOST_LOG(kInfo) << "model version rejected" << Field("model", m.config.model)
                       << Field("version", version);
  }
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("model");
  w.String(m.config.model);
  w.Key("version");
  w.Int(version);
  w.Key("state");
  w.String("rejected");
  w.EndObject();
  return JsonResponse(200, std::move(body));
}

HubResponse RetrainScheduler::Impl::StartRetrain(ModelSlot& m) {
  std::thread previous;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return ErrorResponse(503, "stopping", "the hub is shutting down");
    if (!HoldsLease()) {
      return ErrorResponse(503, "not_scheduler",
                           "another hub process holds the scheduler lease; ask again");
    }
    if (m.status.running) {
      return ErrorResponse(409, "already_running",
                           "a retraining job of " + m.config.model + " is running");
    }
    OUTPOST_LOG(kInfo) << "retraining requested by an operator" << Field("model", m.config.model);
    previous = StartJobLocked(m, std::nullopt, "operator");
  }
  if (previous.joinable()) previous.join();
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("model");
  w.String(m.config.model);
  w.Key("started");
  w.Bool(true);
  w.EndObject();
  return JsonResponse(202, std::move(body));
}

HubResponse RetrainScheduler::Impl::RetrainStatusResponse(ModelSlot& m) {
  RetrainStatus s;
  {
    std::lock_guard<std::mutex> lock(mu);
    s = m.status;
  }
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("model");
  w.String(s.model);
  w.Key("running");
  w.Bool(s.running);
  w.Key("runs");
  w.Int(s.runs);
  w.Key("last_started_ms");
  OptionalInt(w, s.last_started_ms, 0);
  w.Key("last_finished_ms");
  OptionalInt(w, s.last_finished_ms, 0);
  w.Key("last_outcome");
  OptionalString(w, s.last_outcome);
  w.Key("last_version");
  OptionalInt(w, s.last_version, 0);
  w.Key("last_state");
  OptionalString(w, s.last_state);
  w.Key("last_bundle");
  OptionalString(w, s.last_bundle);
  w.Key("last_error");
  OptionalString(w, s.last_error);
  w.Key("last_run_ms");
  OptionalInt(w, s.last_run_ms, 0);
  w.Key("labels_at_last_run");
  w.Int(s.labels_at_last_run);
  w.Key("labels_now");
  OptionalInt(w, s.labels_now, -1);
  w.Key("checks");
  w.Int(s.checks);
  w.Key("last_check_error");
  OptionalString(w, s.last_check_error);
  w.Key("next_due_ms");
  OptionalInt(w, s.next_due_ms, 0);
  w.Key("min_new_labels");
  w.Int(m.config.min_new_labels);
  w.Key("every_s");
  w.Int(m.config.every.count());
  w.Key("auto_approve");
  w.Bool(m.config.auto_approve);
  w.EndObject();
  return JsonResponse(200, std::move(body));
}

HubResponse RetrainScheduler::Impl::Handle(const HubRequest& request) {
  if (std::optional<HubResponse> refused = RefuseOperatorRequest(request)) return *refused;
  std::string_view path = TargetPath(request.target);
  if (!path.starts_with(kModelsPrefix)) {
    return ErrorResponse(404, "not_found", "no such route");
  }
  path.remove_prefix(kModelsPrefix.size());
  const std::string& method = request.method;
  if (path.empty() || path == "/") {
    if (method != "GET") return MethodNotAllowed("GET");
    return ListConfigured(request.caller);
  }
  if (path.front() != '/') return ErrorResponse(404, "not_found", "no such route");
  path.remove_prefix(1);
  const std::vector<std::string_view> seg = SplitPath(path);
  ModelSlot* m = Find(seg[0]);
  if (m == nullptr || m->config.tenant != request.caller.tenant) {
    return ErrorResponse(404, "model_not_found",
                         "no retraining is configured for this model in your tenant");
  }
  if (seg.size() == 2 && seg[1] == "versions") {
    if (method != "GET") return MethodNotAllowed("GET");
    return Versions(*m);
  }
  if (seg.size() == 4 && seg[1] == "versions" && (seg[3] == "approve" || seg[3] == "reject")) {
    if (method != "POST") return MethodNotAllowed("POST");
    const bool approve = seg[3] == "approve";
    std::optional<int64_t> version = ParsePathVersion(seg[2]);
    HubResponse response =
        !version  ? ErrorResponse(404, "version_not_found", "a version is a positive integer")
        : approve ? Approve(*m, *version)
                  : Reject(*m, *version);
    AuditAction(request, approve ? "model_approve" : "model_reject", *m, version.value_or(0),
                response);
    return response;
  }
  if (seg.size() == 2 && seg[1] == "retrain") {
    if (method == "POST") {
      HubResponse response = StartRetrain(*m);
      AuditAction(request, "model_retrain", *m, 0, response);
      return response;
    }
    if (method == "GET") return RetrainStatusResponse(*m);
    return MethodNotAllowed("GET, POST");
  }
  return ErrorResponse(404, "not_found", "no such route");
}

void RetrainScheduler::Impl::AuditAction(const HubRequest& request, std::string_view action,
                                         const ModelSlot& m, int64_t version,
                                         const HubResponse& response) {
  if (!options.audit) return;
  // The outcome: the state or "started" the success names, or the refusal's reason; the
  // detail: the bundle an approval wrote, or the refusal's message.
  std::string outcome, detail;
  ReadOutcome(response, "state", "bundle", outcome, detail);
  if (response.status == 202) outcome = "started";
  AppendOperatorAudit(options.audit, {.time_ms = UnixMillis(clock.Now()),
                                      .event = action,
                                      .caller = &request.caller,
                                      .model = m.config.model,
                                      .version = version,
                                      .status = response.status,
                                      .outcome = std::move(outcome),
                                      .detail = std::move(detail)});
}

bool RetrainScheduler::Handles(const HubRequest& request) const {
  std::string_view path = TargetPath(request.target);
  if (!path.starts_with(kModelsPrefix)) return false;
  path.remove_prefix(kModelsPrefix.size());
  return path.empty() || path.front() == '/';
}

HubResponse RetrainScheduler::Handle(const HubRequest& request) { return impl_->Handle(request); }

void RetrainScheduler::RegisterRoutes(http::Router& router) {
  RegisterOperatorRoutes(router, kModelsPrefix,
                         [this](const HubRequest& request) { return Handle(request); });
}

}  // namespace outpost::hub
