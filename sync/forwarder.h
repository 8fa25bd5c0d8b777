// Forwarder: moves an edge node's outbox to the hub (sync/FORMAT.md section 2).
//
// One thread loops: it Leases records from the outbox by priority, applies the compliance
// policy to each (policy::Apply with the site's hash key), appends every decision to the
// node's audit log (durably, before anything leaves), groups the records that may leave by
// stream into batches, and uploads each batch over HTTPS with mutual TLS together with the
// audit lines the hub has not acknowledged yet. Records are deleted locally only after the
// hub's durable acknowledgement ("stored" or "duplicate"); withheld and rejected records are
// deleted once their decision is in the audit log, and counted. On a transient failure (no
// answer, 5xx, 429, 401/403) the lease is Released and the thread backs off (exponential with
// jitter, capped); records the hub refuses for good (400, 409 batch_conflict, 413, 422) stay
// leased until the lease expires, so the rest of the queue keeps moving. Uploads obey a
// bandwidth cap (a token bucket over body bytes). Nothing is held only in memory: after a
// restart, leases have expired with the process and the audit head the hub acknowledged is
// read from <data_dir>/sync_state.json; after days without a link the loop simply succeeds
// again. Every status_interval it also reports the node's status to /sync/v1/status.
//
// Thread-safe: Stats and Stop may be called from any thread.
#ifndef OUTPOST_SYNC_FORWARDER_H_
#define OUTPOST_SYNC_FORWARDER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/clock.h"
#include "base/status.h"
#include "outbox/outbox.h"
#include "policy/audit.h"
#include "policy/evaluate.h"
#include "policy/policy.h"
#include "sync/audit_cursor.h"
#include "sync/bandwidth.h"
#include "sync/hub_client.h"

namespace outpost::sync {

struct ForwarderOptions {
  // The node's outbox. Not owned; must outlive the Forwarder.
  outbox::Outbox* outbox = nullptr;
  // The hub: base URL and the site's credentials (FORMAT.md; written by `outpost enrol`).
  HubClientOptions https{};
  // The policy every record passes before it leaves, and the site secret of its hash rules.
  std::shared_ptr<const policy::Policy> policy{};
  std::string hash_key_secret{};
  // Folder of audit.log and sync_state.json (the edge's data_dir).
  std::string state_dir{};
  // What one lease takes from the outbox; the lease's duration is how long records the hub
  // refused for good wait before they are tried again.
  outbox::LeaseOptions lease{.max_records = 500, .max_bytes = 1 << 20,
                             .duration = std::chrono::seconds(60)};
  // Audit lines carried by one batch at most (whole lines; the rest goes with later ones).
  size_t max_audit_bytes_per_batch = size_t{4} << 20;
  // Backoff after a failure: starts here, doubles, capped; each wait is drawn uniformly from
  // [d/2, d].
  std::chrono::milliseconds backoff_initial = std::chrono::milliseconds(500);
  std::chrono::milliseconds backoff_max = std::chrono::seconds(60);
  // How long to wait for new records when the outbox is empty.
  std::chrono::milliseconds idle_poll = std::chrono::seconds(1);
  // Upload bandwidth cap in bytes of request body per second; 0 = none.
  uint64_t bandwidth_bytes_per_s = 0;
  // The link's cap shared with other transfers to the hub (the releases the edge fetches,
  // apps/edge_releases.h); null = one of the forwarder's own at bandwidth_bytes_per_s.
  std::shared_ptr<Bandwidth> bandwidth{};
  // How often the node's status goes to the hub; 0 = never.
  std::chrono::seconds status_interval = std::chrono::seconds(60);
  // The served models as a JSON array for status reports ("[]" when unset).
  std::function<std::string()> models_json{};
  // Time source for timestamps (audit entries, status). Null = SystemClock(). Not owned.
  Clock* clock = nullptr;
};

struct ForwarderStats {
  uint64_t batches_acked = 0;      // batches the hub acknowledged (stored or duplicate)
  uint64_t duplicate_batches = 0;  // of which the hub had already
  uint64_t records_acked = 0;      // records deleted after the hub's acknowledgement
  uint64_t records_withheld = 0;   // records the policy kept at the site (deleted, audited)
  uint64_t records_set_aside = 0;  // records the hub refused for good (kept, retried later)
  uint64_t failures = 0;           // uploads without an acknowledgement
  uint64_t bytes_sent = 0;         // request bodies of batch uploads
  uint64_t status_reports = 0;
  std::string last_error{};
};

class Forwarder {
 public:
  // Loads the credentials, opens the audit log and the sync state, and starts the thread.
  // Errors: InvalidArgument (options, the hash key), NotFound / InvalidArgument for the
  // credentials, DataLoss for a damaged audit log.
  static Result<std::unique_ptr<Forwarder>> Start(ForwarderOptions options);
  // Stops the thread (Stop()).
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Stops the loop: an upload in flight finishes or times out first; its lease is released.
  // Idempotent.
  void Stop();
  ForwarderStats Stats() const;

 private:
  enum class Upload { kAcked, kSetAside, kFailed };

  Forwarder(ForwarderOptions options, std::unique_ptr<HubClient> client,
            std::unique_ptr<policy::AuditLog> audit, std::unique_ptr<AuditCursor> cursor,
            policy::HashKey key);
  void Loop();
  // One lease: true when something was leased.
  Result<bool> RunOnce(bool* failed);
  Upload UploadGroup(const std::string& stream, const std::vector<const outbox::Record*>& records,
                     const std::vector<std::string>& payloads);
  void ReportStatus();
  void Throttle(uint64_t bytes);
  // Waits up to `d` unless stopping; false when stopping.
  bool WaitFor(std::chrono::milliseconds d);
  void NoteError(const std::string& error);

  ForwarderOptions options_;
  Clock* clock_;
  std::unique_ptr<HubClient> client_;
  std::unique_ptr<policy::AuditLog> audit_;
  std::unique_ptr<AuditCursor> cursor_;  // used only by the loop thread
  policy::HashKey key_;

  std::chrono::steady_clock::time_point next_status_{};
  uint64_t rng_state_;

  mutable std::mutex mu_;  // guards stopping_ and stats_
  std::condition_variable cv_;
  bool stopping_ = false;
  ForwarderStats stats_;
  std::thread thread_;
};

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_FORWARDER_H_
