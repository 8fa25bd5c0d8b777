// Ingestion at the hub: authentication from the credential, decode under limits, policy
// check, audit chain, store, acknowledgement (sync/FORMAT.md section 2).
#include "hub/ingest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <utility>

#include "base/fd_write.h"
#include "base/file.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "base/names.h"
#include "outbox/outbox.h"
#include "policy/audit.h"
#include "policy/evaluate.h"

namespace outpost::hub {
namespace {

std::string_view ReasonOrDefault(const Status& status, std::string_view fallback) {
  std::string_view reason = sync::ReasonOf(status);
  return reason.empty() ? fallback : reason;
}

BatchOutcome Refused(int status, std::string_view reason, std::string_view error) {
  BatchOutcome out;
  out.http_status = status;
  out.reason = std::string(reason);
  out.error = std::string(error);
  return out;
}

// Sets the audit head an outcome reports.
void SetAuditHead(BatchOutcome& out, const std::pair<uint64_t, std::string>& head) {
  out.has_audit_head = true;
  out.audit_seq = head.first;
  out.audit_hash = head.second;
}

}  // namespace

// --- PolicySet ---

Result<PolicySet> PolicySet::Load(const std::vector<std::pair<std::string, std::string>>& files) {
  PolicySet set;
  for (const auto& [tenant, path] : files) {
    if (tenant != "*") OUTPOST_RETURN_IF_ERROR(Tenant::Parse(tenant));
    OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, policy::kMaxPolicyBytes + 1));
    Result<std::shared_ptr<const policy::Policy>> parsed = policy::ParsePolicy(text);
    if (!parsed.ok()) return parsed.status().WithContext("policy " + path);
    set.Add(tenant, std::move(*parsed));
  }
  return set;
}

const policy::Policy* PolicySet::Find(std::string_view tenant) const {
  auto it = by_tenant_.find(tenant);
  if (it == by_tenant_.end()) it = by_tenant_.find(std::string_view("*"));
  return it == by_tenant_.end() ? nullptr : it->second.get();
}

// --- HubAuditLog ---

Result<std::unique_ptr<HubAuditLog>> HubAuditLog::Open(const std::string& path, Store* store) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "open", path);
  return std::unique_ptr<HubAuditLog>(new HubAuditLog(fd, store));
}

HubAuditLog::~HubAuditLog() { ::close(fd_); }

Status HubAuditLog::Append(const Event& event) {
  std::string line;
  JsonWriter w(line);
  w.BeginObject();
  w.Key("time_ms");
  w.Int(event.time_ms);
  w.Key("event");
  w.String(event.event);
  w.Key("site");
  w.String(event.site);
  w.Key("tenant");
  w.String(event.tenant);
  w.Key("node");
  w.String(event.node);
  w.Key("stream");
  w.String(event.stream);
  w.Key("first_seq");
  w.Uint(event.first_seq);
  w.Key("last_seq");
  w.Uint(event.last_seq);
  w.Key("reason");
  w.String(event.reason);
  w.Key("detail");
  w.String(event.detail.substr(0, 1024));
  w.EndObject();
  return Write(HubAuditEntry{.time_ms = event.time_ms,
                             .tenant = event.tenant,
                             .event = event.event,
                             .line = std::move(line)});
}

Status HubAuditLog::AppendLine(std::string_view json_line) {
  if (json_line.find('\n') != std::string_view::npos) {
    return InvalidArgumentError("an audit line holds no newline");
  }
  // The lines are the hub's own (OperatorAuditLine): each has these three members. A line
  // that does not parse still goes to the file; the store refuses it (no event).
  json::Parser parser;
  json::Value root = parser.Parse(json_line).value_or(json::Value());
  return Write(HubAuditEntry{.time_ms = root["time_ms"].GetInt64().value_or(0),
                             .tenant = std::string(root["tenant"].GetString().value_or("")),
                             .event = std::string(root["event"].GetString().value_or("")),
                             .line = std::string(json_line)});
}

Status HubAuditLog::Write(HubAuditEntry entry) {
  entry.line.push_back('\n');
  {
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_RETURN_IF_ERROR(WriteAllToFd(fd_, entry.line, "hub audit log"));
    if (::fdatasync(fd_) != 0) return ErrnoToStatus(errno, "fdatasync", "hub audit log");
  }
  entry.line.pop_back();
  if (store_ == nullptr) return Status::Ok();
  return store_->AppendHubAudit(entry).WithContext("the store's hub_audit");
}

// --- BatchOutcome ---

std::string BatchOutcome::Body() const {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  if (accepted()) {
    w.Key("outcome");
    w.String(result.outcome == IngestOutcome::kDuplicate ? "duplicate" : "stored");
    w.Key("records");
    w.Uint(records);
    w.Key("stored");
    w.Uint(result.records_stored);
    w.Key("duplicate");
    w.Uint(result.outcome == IngestOutcome::kDuplicate ? records : result.records_duplicate);
  } else {
    w.Key("error");
    w.String(error);
    w.Key("reason");
    w.String(reason);
  }
  if (has_audit_head) {
    w.Key("audit_head");
    w.BeginObject();
    w.Key("seq");
    w.Uint(audit_seq);
    w.Key("hash");
    w.String(audit_hash);
    w.EndObject();
  }
  w.EndObject();
  return out;
}

// --- HubService ---

Result<Caller> HubService::Authenticate(const PeerCredential& peer, HubResponse* refusal) {
  auto refuse = [&](int status, std::string_view reason, std::string_view error) {
    *refusal = ErrorResponse(status, reason, error);
    return UnauthenticatedError(std::string(reason));
  };
  if (!peer.presented) {
    return refuse(401, "credential_missing", "a site client certificate is required");
  }
  if (!peer.verified) {
    return refuse(
        401, "credential_untrusted",
        "the client certificate does not verify against this hub's CA: " + peer.verify_error);
  }
  Result<Site> site = store_.GetSite(peer.certificate.common_name);
  if (!site.ok()) {
    if (site.status().code() == StatusCode::kNotFound) {
      return refuse(403, "site_unknown", "the certificate names no site of this hub");
    }
    return refuse(503, "store_unavailable", site.status().message());
  }
  if (site->revoked) return refuse(403, "site_revoked", "the site is revoked");
  if (site->credential_serial.empty() || site->credential_serial != peer.certificate.serial) {
    return refuse(403, "credential_superseded",
                  "the certificate is not the site's current credential");
  }
  return Caller{.kind = Caller::Kind::kSite, .tenant = site->tenant, .site_id = site->site_id};
}

namespace {

// The site listener's routes that only an enrolled site may use.
bool IsSyncRoute(std::string_view path) {
  return path == "/sync/v1/batches" || path == "/sync/v1/status" || path == "/sync/v1/releases" ||
         path.starts_with("/sync/v1/releases/");
}

// The operator listener's probes (hub/FORMAT.md section 6, "Health"), which take no token.
bool IsHealthRoute(std::string_view path) { return path == "/healthz" || path == "/readyz"; }

HubResponse PlainOk() {
  return HubResponse{.status = 200, .content_type = "text/plain", .body = "ok"};
}

// /readyz: whether the store answers. The store's own message goes to the log only.
HubResponse Readiness(Store& store) {
  Status pinged = store.Ping();
  if (pinged.ok()) return PlainOk();
  OUTPOST_LOG(kWarning) << "not ready: the store does not answer" << Field("status", pinged);
  return ErrorResponse(503, "store_unavailable", "the store does not answer");
}

// A route's answer from a handler that returns it.
template <typename Fn>
http::HandlerFn Answering(Fn fn) {
  return [fn = std::move(fn)](const HubRequest& request, HubResponse& response) {
    response = fn(request);
  };
}

}  // namespace

HubService::HubService(Store& store, Enrolment& enrolment, const PolicySet& policies,
                       HubAuditLog* audit_log, HubServiceOptions options, Clock& clock)
    : store_(store),
      enrolment_(enrolment),
      policies_(policies),
      audit_log_(audit_log),
      options_(std::move(options)),
      clock_(clock) {
  RegisterSiteRoutes();
  RegisterOperatorRoutes();
}

void HubService::RegisterSiteRoutes() {
  enrolment_.RegisterRoutes(site_router_);
  // Any method: a peer without a credential is refused (401, 403, by HandleSite) before the
  // method counts.
  auto sync = Answering([this](const HubRequest& request) { return HandleSync(request); });
  site_router_.Exact("*", "/sync/v1/batches", sync);
  site_router_.Exact("*", "/sync/v1/status", sync);
  if (options_.site_routes) options_.site_routes(site_router_);
}

void HubService::RegisterOperatorRoutes() {
  auto site_paths = Answering([](const HubRequest&) {
    return ErrorResponse(404, "not_found", "sites use the site listener");
  });
  operator_router_.Prefix("*", "/sync/", site_paths);
  operator_router_.Prefix("*", "/enrol/", site_paths);
  operator_router_.Exact("GET", "/healthz", Answering([](const HubRequest&) { return PlainOk(); }));
  operator_router_.Exact("GET", "/readyz", Answering([this](const HubRequest&) {
                           if (draining_.load()) {
                             return ErrorResponse(503, "draining", "the hub is shutting down");
                           }
                           return Readiness(store_);
                         }));
  if (options_.operator_routes) {
    options_.operator_routes(operator_router_);
    return;
  }
  if (options_.dashboard) {
    operator_router_.Prefix("*", "/", Answering(options_.dashboard));
    return;
  }
  operator_router_.Prefix("*", "/", Answering([](const HubRequest& request) {
                            if (request.caller.kind != Caller::Kind::kOperator) {
                              return ErrorResponse(401, "operator_token",
                                                   "an operator bearer token is required");
                            }
                            return ErrorResponse(404, "not_found", "this build has no dashboard");
                          }));
}

HubResponse HubService::HandleSite(const HubRequest& request, const PeerCredential& peer) {
  // The caller comes from the credential alone: a sync route's is authenticated here, before
  // the route runs, and travels on the request (Request::caller, which the listener leaves
  // empty); every other route's stays empty.
  request.caller = Caller{};
  if (IsSyncRoute(http::Router::PathOf(request.target))) {
    HubResponse refusal;
    Result<Caller> caller = Authenticate(peer, &refusal);
    if (!caller.ok()) return refusal;
    request.caller = std::move(*caller);
  }
  HubResponse response;
  site_router_.Handle(request, response);
  return response;
}

HubResponse HubService::HandleSync(const HubRequest& request) {
  const Caller& caller = request.caller;
  if (caller.kind != Caller::Kind::kSite) {
    return ErrorResponse(401, "credential_missing", "a site client certificate is required");
  }
  if (request.method != "POST") {
    HubResponse response = ErrorResponse(405, "method_not_allowed", "use POST");
    response.headers.emplace_back("Allow", "POST");
    return response;
  }
  if (http::Router::PathOf(request.target) == "/sync/v1/status") {
    return HandleStatus(caller, request);
  }
  BatchOutcome outcome = IngestBatch(caller, request.body);
  return HubResponse{.status = outcome.http_status, .body = outcome.Body()};
}

HubResponse HubService::HandleOperator(const HubRequest& request) {
  if (TokenInQuery(request.target)) {
    return ErrorResponse(400, "token_in_url",
                         "tokens are never taken from a URL; send Authorization: Bearer <token>");
  }
  // The caller travels on the request (Request::caller; the listener leaves it empty), which
  // is routed as it came, body uncopied.
  request.caller = Caller{};
  // The probes' paths never read the Authorization header.
  const bool probe = IsHealthRoute(http::Router::PathOf(request.target));
  if (std::string_view auth = request.Header("authorization"); !auth.empty() && !probe) {
    Result<Caller> caller = AuthenticateOperator(options_.operator_tokens, auth);
    if (!caller.ok()) {
      HubResponse refusal = ErrorResponse(caller.status());
      refusal.headers.emplace_back("WWW-Authenticate", "Bearer");
      return refusal;
    }
    request.caller = std::move(*caller);
  }
  HubResponse response;
  operator_router_.Handle(request, response);
  return response;
}

void HubService::AuditRefusal(const Caller& caller, const BatchKey& key, std::string_view event,
                              std::string_view reason, std::string_view detail) {
  OUTPOST_LOG(kWarning) << "batch refused" << Field("site", caller.site_id)
                        << Field("node", key.node_id) << Field("stream", key.stream)
                        << Field("reason", reason) << Field("detail", detail);
  if (audit_log_ == nullptr) return;
  Status s = audit_log_->Append({.time_ms = UnixMillis(clock_.Now()),
                                 .event = std::string(event),
                                 .site = caller.site_id,
                                 .tenant = caller.tenant,
                                 .node = key.node_id,
                                 .stream = key.stream,
                                 .first_seq = key.first_seq,
                                 .last_seq = key.last_seq,
                                 .reason = std::string(reason),
                                 .detail = std::string(detail)});
  if (!s.ok()) {
    OUTPOST_LOG(kError) << "hub audit log append failed" << Field("status", s);
  }
}

BatchOutcome HubService::IngestBatch(const Caller& caller, std::string_view bytes,
                                     std::string_view event) {
  if (bytes.size() > options_.limits.max_encoded_bytes) {
    return Refused(413, "batch_too_large",
                   "batch over " + std::to_string(options_.limits.max_encoded_bytes) + " bytes");
  }
  Result<sync::DecodedBatch> decoded = sync::DecodeBatch(bytes, options_.limits);
  if (!decoded.ok()) {
    int status = decoded.status().code() == StatusCode::kResourceExhausted ? 413 : 400;
    return Refused(status, ReasonOrDefault(decoded.status(), "batch_malformed"),
                   decoded.status().message());
  }
  return IngestDecoded(caller, *decoded, event);
}

// The steps of one IngestDecoded call, sharing who sent the batch, its key, the audit event of
// a refusal and the records that passed the policy. Lives for one call; `service` and
// `caller` outlive it.
class HubService::BatchIngest {
 public:
  BatchIngest(HubService& service, const Caller& caller, const sync::DecodedBatch& decoded,
              std::string_view event)
      : service_(service),
        caller_(caller),
        batch_(decoded.batch),
        event_(event),
        key_{.site_id = decoded.key.site_id,
             .node_id = decoded.key.node_id,
             .stream = decoded.key.stream,
             .first_seq = decoded.key.first_seq,
             .last_seq = decoded.key.last_seq,
             .content_sha256 = decoded.key.content_sha256} {}

  // A refusal carrying the batch's key; written to the hub's audit log when `audit`.
  BatchOutcome Refuse(int status, std::string_view reason, std::string_view error,
                      bool audit = false) {
    if (audit) service_.AuditRefusal(caller_, key_, event_, reason, error);
    BatchOutcome out = Refused(status, reason, error);
    out.key = key_;
    return out;
  }

  // The outcome of a batch the store took, stored or duplicate.
  BatchOutcome Accepted(const IngestResult& result) const {
    BatchOutcome out;
    out.key = key_;
    out.result = result;
    out.records = records_.size();
    return out;
  }

  // Checks every record against the tenant's policy and collects them as the hub stores
  // them; the refusal of the first record that breaks the policy.
  std::optional<BatchOutcome> CheckRecords(const policy::Policy& site_policy) {
    records_.reserve(batch_.records.size());
    for (const sync::BatchRecord& r : batch_.records) {
      std::string_view kind = outbox::KindName(static_cast<outbox::Kind>(r.kind));
      policy::Decision decision =
          policy::Check(site_policy, policy::RecordView{.kind = kind,
                                                        .site = batch_.site_id,
                                                        .node = batch_.node_id,
                                                        .stream = batch_.stream,
                                                        .seq = r.seq,
                                                        .payload = r.payload});
      if (!decision.allowed()) {
        return Refuse(422, decision.reason,
                      "record " + std::to_string(r.seq) + " (" + std::string(kind) +
                          ") breaks the policy: " + decision.detail,
                      true);
      }
      records_.push_back(HubRecord{.site_id = batch_.site_id,
                                   .node_id = batch_.node_id,
                                   .stream = batch_.stream,
                                   .seq = r.seq,
                                   .kind = std::string(kind),
                                   .created_ms = r.created_ms,
                                   .payload = r.payload});
    }
    return std::nullopt;
  }

  // Checks the batch's audit segment against the hub's `head` of the node. Sets *segment to
  // what the store appends, or returns the outcome that ends the ingest: a refusal, or the
  // acknowledgement of a batch the hub already holds.
  std::optional<BatchOutcome> CheckAuditSegment(const std::pair<uint64_t, std::string>& head,
                                                std::optional<AuditSegment>* segment) {
    const sync::BatchAudit& audit = *batch_.audit;
    if (audit.from_seq == head.first && audit.from_hash != head.second) {
      return Refuse(422, "audit_edited",
                    "the audit segment continues entry " + std::to_string(audit.from_seq) +
                        " with another hash than the hub holds",
                    true);
    }
    if (audit.from_seq != head.first) {
      // A batch the hub already holds (a retry whose acknowledgement was lost, a replayed
      // export) carries an audit segment the chain has moved past: it is a duplicate.
      if (std::optional<BatchOutcome> held = HeldDuplicate(head)) return held;
      // Overlapping or missing lines: the site re-sends from the hub's head (FORMAT.md).
      BatchOutcome out = Refuse(409, "audit_gap",
                                "the audit segment starts at " + std::to_string(audit.from_seq) +
                                    ", the hub holds " + std::to_string(head.first));
      SetAuditHead(out, head);
      return out;
    }
    Result<policy::ChainHead> reached = policy::VerifyAuditChain(
        audit.lines, policy::ChainHead{.seq = audit.from_seq, .hash = audit.from_hash},
        policy::ChainHead{.seq = audit.to_seq, .hash = audit.to_hash});
    if (!reached.ok()) {
      return Refuse(422, ReasonOrDefault(reached.status(), "audit_malformed"),
                    reached.status().message(), true);
    }
    if (reached->seq != audit.to_seq || reached->hash != audit.to_hash) {
      return Refuse(422, reached->seq < audit.to_seq ? "audit_cut" : "audit_edited",
                    "the audit segment does not reach the head it names", true);
    }
    *segment = AuditSegment{.node_id = batch_.node_id,
                            .from_seq = audit.from_seq,
                            .from_hash = audit.from_hash,
                            .to_seq = audit.to_seq,
                            .to_hash = audit.to_hash,
                            .lines = audit.lines};
    return std::nullopt;
  }

  // The acknowledgement, with the hub's `head`, when the store already holds this batch as
  // it is; nothing otherwise.
  std::optional<BatchOutcome> HeldDuplicate(const std::pair<uint64_t, std::string>& head) {
    Result<bool> held = service_.store_.HasBatch(key_);
    if (!held.ok() || !*held) return std::nullopt;
    Result<IngestResult> dup =
        service_.store_.Ingest(key_, records_, std::nullopt, UnixMillis(service_.clock_.Now()));
    if (!dup.ok() || dup->outcome != IngestOutcome::kDuplicate) return std::nullopt;
    BatchOutcome out = Accepted(*dup);
    SetAuditHead(out, head);
    return out;
  }

  // Stores the records (and `segment`) and answers with the stored audit head, or the
  // refusal the store's answer calls for.
  BatchOutcome StoreRecords(const std::optional<AuditSegment>& segment) {
    Result<IngestResult> result =
        service_.store_.Ingest(key_, records_, segment, UnixMillis(service_.clock_.Now()));
    if (!result.ok()) {
      const Status& s = result.status();
      if (s.code() == StatusCode::kFailedPrecondition) {
        Result<std::pair<uint64_t, std::string>> now_head =
            service_.store_.AuditHead(batch_.site_id, batch_.node_id);
        BatchOutcome out = Refuse(409, "audit_gap", s.message());
        if (now_head.ok()) SetAuditHead(out, *now_head);
        return out;
      }
      if (s.code() == StatusCode::kInvalidArgument) {
        return Refuse(400, "batch_malformed", s.message());
      }
      return Refuse(503, "store_unavailable", s.message());
    }
    if (result->outcome == IngestOutcome::kConflict) {
      return Refuse(409, "batch_conflict",
                    "this batch key (or a record in it) was stored before with other content",
                    true);
    }
    BatchOutcome out = Accepted(*result);
    Result<std::pair<uint64_t, std::string>> after =
        service_.store_.AuditHead(batch_.site_id, batch_.node_id);
    if (after.ok()) SetAuditHead(out, *after);
    return out;
  }

 private:
  HubService& service_;
  const Caller& caller_;
  const sync::Batch& batch_;
  std::string_view event_;
  BatchKey key_;
  std::vector<HubRecord> records_;  // the batch's records as stored, once they pass the policy
};

BatchOutcome HubService::IngestDecoded(const Caller& caller, const sync::DecodedBatch& decoded,
                                       std::string_view event) {
  const sync::Batch& batch = decoded.batch;
  BatchIngest ingest(*this, caller, decoded, event);
  if (caller.kind != Caller::Kind::kSite || caller.site_id.empty()) {
    return ingest.Refuse(401, "credential_missing", "only a site may send batches");
  }
  // Site and tenant come from the credential alone.
  if (batch.site_id != caller.site_id) {
    return ingest.Refuse(
        403, "site_mismatch",
        "the batch names site \"" + batch.site_id + "\", the credential \"" + caller.site_id + "\"",
        /*audit=*/true);
  }
  const policy::Policy* site_policy = policies_.Find(caller.tenant);
  if (site_policy == nullptr) {
    return ingest.Refuse(422, "no_policy",
                         "the hub has no policy for tenant \"" + caller.tenant + "\"", true);
  }
  if (std::optional<BatchOutcome> refused = ingest.CheckRecords(*site_policy)) return *refused;
  std::optional<AuditSegment> segment;
  Result<std::pair<uint64_t, std::string>> head = store_.AuditHead(batch.site_id, batch.node_id);
  if (!head.ok()) return ingest.Refuse(503, "store_unavailable", head.status().message());
  if (batch.audit.has_value()) {
    if (std::optional<BatchOutcome> ended = ingest.CheckAuditSegment(*head, &segment)) {
      return *ended;
    }
  }
  return ingest.StoreRecords(segment);
}

HubResponse HubService::HandleStatus(const Caller& caller, const HubRequest& request) {
  if (request.body.size() > kMaxStatusBodyBytes) {
    return ErrorResponse(413, "body_too_large", "status report over 1 MiB");
  }
  json::Parser parser;
  Result<json::Value> parsed = parser.Parse(std::string_view(request.body));
  if (!parsed.ok() || !parsed->is_object()) {
    return ErrorResponse(400, "malformed_json", "the status report is not a JSON object");
  }
  const json::Value root = *parsed;
  NodeStatus status;
  Result<std::string_view> site_value = root["site_id"].GetString();
  Result<std::string_view> node_value = root["node_id"].GetString();
  if (!site_value.ok() || !node_value.ok() || !NodeId::IsValid(*node_value)) {
    return ErrorResponse(400, "missing_field", "site_id and node_id are required");
  }
  const std::string_view site_id = *site_value, node_id = *node_value;
  if (site_id != caller.site_id) {
    return ErrorResponse(403, "site_mismatch", "the report names another site");
  }
  status.site_id = std::string(site_id);
  status.node_id = std::string(node_id);
  if (Result<int64_t> reported = root["reported_ms"].GetInt64(); reported.ok()) {
    status.reported_ms = *reported;
  }
  if (Result<uint64_t> n = root["backlog_records"].GetUint64(); n.ok()) {
    status.backlog_records = *n;
  }
  if (Result<uint64_t> n = root["backlog_bytes"].GetUint64(); n.ok()) status.backlog_bytes = *n;
  if (Result<double> days = root["autonomy_days"].GetDouble(); days.ok()) {
    status.autonomy_days = *days;
  }
  // Why there is an estimate or not, and the outbox's account (sync/FORMAT.md, status);
  // an unknown basis is kept out rather than refusing the report.
  if (Result<std::string_view> basis = root["autonomy_basis"].GetString();
      basis.ok() && basis->size() <= 32 &&
      basis->find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string_view::npos) {
    status.autonomy_basis = std::string(*basis);
  }
  if (const json::Value account = root["account"]; account.is_object()) {
    status.outbox_account_json = account.ToJson();
  }
  if (const json::Value models = root["models"]; models.is_array()) {
    if (models.size() > kMaxStatusModels) {
      return ErrorResponse(413, "too_many_models", "at most 1,000 models");
    }
    status.models_json = models.ToJson();
  }
  Status put = store_.PutNodeStatus(status, UnixMillis(clock_.Now()));
  if (!put.ok()) return ErrorResponse(503, "store_unavailable", put.message());
  return HubResponse{.status = 200, .body = "{\"ok\":true}"};
}

}  // namespace outpost::hub
