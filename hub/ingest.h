// Ingestion at the hub (sync/FORMAT.md section 2, hub/FORMAT.md section 5): who a request
// comes from (the site credential alone), decoding a batch under limits, the hub's policy
// check of every record, the audit chain's continuation, the durable store, and the
// acknowledgement. No sockets here: HubService turns a HubRequest (and what TLS established
// about the peer) into a HubResponse, so every path is tested and fuzzed without a network.
#ifndef OUTPOST_HUB_INGEST_H_
#define OUTPOST_HUB_INGEST_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/http/server.h"
#include "base/status.h"
#include "hub/enrol.h"
#include "hub/http.h"
#include "hub/operator_tokens.h"
#include "hub/server.h"
#include "hub/store.h"
#include "policy/policy.h"
#include "sync/batch.h"

namespace outpost::hub {

inline constexpr size_t kMaxStatusBodyBytes = 1 << 20;
inline constexpr size_t kMaxStatusModels = 1000;

// The compliance policy of each tenant ("*": every tenant without one of its own).
// Immutable after Load; shared by threads.
class PolicySet {
 public:
  // (tenant or "*", policy file) pairs. InvalidArgument naming the file for a bad policy.
  static Result<PolicySet> Load(const std::vector<std::pair<std::string, std::string>>& files);
  void Add(std::string tenant, std::shared_ptr<const policy::Policy> p) {
    by_tenant_[std::move(tenant)] = std::move(p);
  }
  // The policy for `tenant`, or null when none applies.
  const policy::Policy* Find(std::string_view tenant) const;

 private:
  std::map<std::string, std::shared_ptr<const policy::Policy>, std::less<>> by_tenant_;
};

// The hub's own audit log (hub/FORMAT.md section 1): one JSON line per refusal or operator
// action, fsynced to the file at `path` and then appended to `store`'s hub_audit table (when
// given; it outlives the log), before the refusal or action is answered. Thread-safe.
class HubAuditLog {
 public:
  static Result<std::unique_ptr<HubAuditLog>> Open(const std::string& path, Store* store = nullptr);
  ~HubAuditLog();
  HubAuditLog(const HubAuditLog&) = delete;
  HubAuditLog& operator=(const HubAuditLog&) = delete;

  struct Event {
    int64_t time_ms = 0;
    std::string event{};  // "batch_refused" or "import_refused"
    std::string site{};
    std::string tenant{};
    std::string node{};
    std::string stream{};
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;
    std::string reason{};
    std::string detail{};
  };
  Status Append(const Event& event);
  // Appends one line that the caller wrote (a registry action, hub/FORMAT.md section 1),
  // with its newline, and fsyncs; then to the store, with the line's `time_ms`, `event`
  // and `tenant`. InvalidArgument for a line that holds a newline; the store's error when
  // the file took the line and the store did not.
  Status AppendLine(std::string_view json_line);

 private:
  HubAuditLog(int fd, Store* store) : fd_(fd), store_(store) {}
  // Appends `entry.line` to the file and fsyncs, then `entry` to the store (when given).
  Status Write(HubAuditEntry entry);
  std::mutex mu_;  // guards writes to fd_
  int fd_;
  Store* store_;
};

// The outcome of one batch, for HTTP and for import alike.
struct BatchOutcome {
  int http_status = 200;
  std::string reason{};  // empty when accepted
  std::string error{};
  IngestResult result{};
  BatchKey key{};
  size_t records = 0;
  // The stored audit head after the batch (or, for audit_gap, the one the hub holds).
  uint64_t audit_seq = 0;
  std::string audit_hash{};
  bool has_audit_head = false;

  bool accepted() const { return http_status == 200; }
  // The JSON body: the acknowledgement or the error.
  std::string Body() const;
};

struct HubServiceOptions {
  sync::DecodeLimits limits{};
  // The operators and the hashes of their tokens (hub/operator_tokens.h); none = every
  // operator request is unauthenticated.
  OperatorTokens operator_tokens{};
  // Registers the operator listener's routes (the dashboard's API and assets,
  // Dashboard::RegisterRoutes; the registry, RetrainScheduler::RegisterRoutes) on its
  // router, once, when the service is made. What they point at must outlive the service.
  std::function<void(http::Router&)> operator_routes{};
  // Everything on the operator listener that no route above takes, as one handler (the
  // dashboard, composed by hand); null with no operator_routes: 401 without an operator
  // token, else 404.
  std::function<HubResponse(const HubRequest&)> dashboard{};
  // Registers more of the site listener's routes under /sync/v1/releases (the releases sites
  // fetch, hub/site_releases.h) on its router, once, when the service is made; their caller
  // is authenticated as the sync routes' is. What they point at must outlive the service.
  std::function<void(http::Router&)> site_routes{};
};

// The handlers of both listeners, each dispatching through its router (base/http/server.h):
// the site listener's holds enrolment's routes (Enrolment::RegisterRoutes) and ingestion's
// (/sync/v1/batches, /sync/v1/status); the operator listener's holds the probes (GET
// /healthz, and /readyz, which asks Store::Ping), a 404 for the site paths and whatever
// HubServiceOptions registers. `store`, `enrolment`, `policies`,
// `audit_log` and `clock` outlive the service; `audit_log` may be null (refusals are then
// only logged). Thread-safe.
class HubService {
 public:
  HubService(Store& store, Enrolment& enrolment, const PolicySet& policies, HubAuditLog* audit_log,
             HubServiceOptions options, Clock& clock = SystemClock());
  // The routes point at this object.
  HubService(const HubService&) = delete;
  HubService& operator=(const HubService&) = delete;

  // The site listener: /enrol/v1... without a credential, /sync/v1/... with one (`peer`);
  // 404 for another path.
  HubResponse HandleSite(const HubRequest& request, const PeerCredential& peer);
  // The operator listener: a target with a token in its query string is refused (400,
  // token_in_url) before anything else; then the bearer token → the operator's tenant
  // (checked once, before any route: 401 operator_token for a bad one; never read on the
  // probes' /healthz and /readyz, hub/FORMAT.md section 6), then the operator routes.
  HubResponse HandleOperator(const HubRequest& request);

  // The site a credential belongs to (hub/FORMAT.md section 5), or the refusal.
  Result<Caller> Authenticate(const PeerCredential& peer, HubResponse* refusal);

  // Decodes and ingests one encoded batch sent by `caller` (a site). `event` names the
  // hub audit event on refusal ("batch_refused" or "import_refused").
  BatchOutcome IngestBatch(const Caller& caller, std::string_view bytes,
                           std::string_view event = "batch_refused");
  // Ingests an already decoded batch (exports carry many).
  BatchOutcome IngestDecoded(const Caller& caller, const sync::DecodedBatch& decoded,
                             std::string_view event);

  Store& store() { return store_; }

  // From now on /readyz answers 503 `draining` (hub/FORMAT.md section 6, "Shutting down");
  // every other route is served as before. Idempotent.
  void StopBeingReady() { draining_.store(true); }

 private:
  // The steps of IngestDecoded for one batch (ingest.cc).
  class BatchIngest;

  void RegisterSiteRoutes();
  void RegisterOperatorRoutes();
  // POST /sync/v1/batches and /sync/v1/status for request.caller, the site HandleSite
  // authenticated (401 without one); then the method.
  HubResponse HandleSync(const HubRequest& request);
  HubResponse HandleStatus(const Caller& caller, const HubRequest& request);
  void AuditRefusal(const Caller& caller, const BatchKey& key, std::string_view event,
                    std::string_view reason, std::string_view detail);

  std::atomic<bool> draining_{false};
  Store& store_;
  Enrolment& enrolment_;
  const PolicySet& policies_;
  HubAuditLog* audit_log_;
  const HubServiceOptions options_;
  Clock& clock_;
  http::Router site_router_;
  http::Router operator_router_;
};

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_INGEST_H_
