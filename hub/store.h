// Store: everything the hub keeps — sites and their credentials, the records that sites
// uploaded or exported, each site's policy audit chain, the status sites report, and the
// model registry. One interface, two engines: SQLite embedded (the default, one file) and
// PostgreSQL (libpq) for production. One contract test suite (store_contract_test.cc) runs
// against both; a behaviour that only one engine shows is a bug.
//
//   OUTPOST_ASSIGN_OR_RETURN(auto store, hub::OpenStore("sqlite:/var/lib/outpost-hub/hub.db"));
//   OUTPOST_ASSIGN_OR_RETURN(auto store, hub::OpenStore("postgresql://hub@db:5432/outpost"));
//
// Durability: every mutating call returns only after its transaction has committed durably
// (SQLite: WAL with synchronous=FULL; PostgreSQL: synchronous_commit on). A batch the hub
// acknowledges to a site has been through Ingest, so the site may delete it.
//
// Tenancy: every read that a dashboard or an operator makes takes the caller's tenant and
// sees nothing of another tenant's sites.
//
// Thread-safe: every method may be called from any thread (the engines serialize or pool
// connections as they need).
#ifndef OUTPOST_HUB_STORE_H_
#define OUTPOST_HUB_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace outpost::hub {

// A site as the hub knows it.
struct Site {
  std::string site_id{};
  std::string tenant{};
  std::string region{};
  int64_t created_ms = 0;
  // The serial number (hex) of the credential the site enrolled with; empty before enrolment.
  std::string credential_serial{};
  bool revoked = false;
  // Unix ms of the last authenticated request from the site (upload, report); 0 = never.
  int64_t last_contact_ms = 0;
};

// A one-time enrolment token, stored only as its SHA-256 (hex).
struct EnrolmentToken {
  std::string token_sha256{};
  std::string site_id{};
  int64_t expires_ms = 0;
};

// One record as it travels from a site (sync/FORMAT.md) and as the hub keeps it.
struct HubRecord {
  std::string site_id{};
  std::string node_id{};
  std::string stream{};
  uint64_t seq = 0;
  std::string kind{};  // "anomaly", "drift", ... (outbox::KindName)
  int64_t created_ms = 0;
  std::string payload{};  // JSON, after the site's policy was applied
  // Set by the store on reads: the tenant (from the site) and when the hub stored it.
  std::string tenant{};
  int64_t received_ms = 0;
  // Set by the store on reads: a row id that orders records by arrival (query cursors;
  // positive, not dense: PostgreSQL's are far apart, STORE.md section 3).
  int64_t id = 0;
};

// The idempotency key of one batch (sync/FORMAT.md): which records of which stream, and the
// SHA-256 (hex) of their encoded content.
struct BatchKey {
  std::string site_id{};
  std::string node_id{};
  std::string stream{};
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::string content_sha256{};
  friend bool operator==(const BatchKey&, const BatchKey&) = default;
};

// A continuation of a site's policy audit chain (policy/audit.h), verified by the caller
// with policy::VerifyAuditChain before it is stored.
struct AuditSegment {
  std::string node_id{};
  uint64_t from_seq = 0;    // the stored head's seq this segment continues
  std::string from_hash{};  // the stored head's hash
  uint64_t to_seq = 0;      // the head after the segment
  std::string to_hash{};
  std::string lines{};  // the entries' lines, each ending in '\n'
};

enum class IngestOutcome {
  kStored,     // new: every record stored
  kDuplicate,  // the same key with the same content was stored before: a no-op
  kConflict,   // the key (or a record key in it) was stored before with other content:
               // nothing stored
};

struct IngestResult {
  IngestOutcome outcome = IngestOutcome::kStored;
  uint64_t records_stored = 0;
  uint64_t records_duplicate = 0;  // records already present with the same content
};

// What a site's node last reported about itself (sync/FORMAT.md, status report).
struct NodeStatus {
  std::string site_id{};
  std::string node_id{};
  int64_t reported_ms = 0;  // the node's clock when it reported
  int64_t received_ms = 0;  // the hub's clock when it arrived (set by the store)
  uint64_t backlog_records = 0;
  uint64_t backlog_bytes = 0;
  std::optional<double> autonomy_days{};
  // JSON array of the model versions the node serves: [{"name":..,"version":..,
  // "state":..}] (and whatever else the node reports; stored as given).
  std::string models_json = "[]";
  // Why autonomy_days has a value or not: "estimated", "not_enough_history", "idle",
  // "draining" (outbox/FORMAT.md section 11); empty = not reported (an older node).
  std::string autonomy_basis{};
  // The outbox's account as the node reported it (outbox/FORMAT.md section 11: its
  // "classes" and "rules"); empty = not reported.
  std::string outbox_account_json{};
};

// One row of the fleet table.
struct SiteSummary {
  Site site{};
  std::optional<int64_t> newest_record_ms{};  // created_ms of the newest record received
  uint64_t records = 0;                       // records received, all kinds
  std::vector<NodeStatus> nodes{};            // the latest report of each node
};

struct RecordQuery {
  std::string tenant{};  // required
  std::optional<std::string> site_id{};
  // Only the records of these sites (at most 1,000; not with site_id): one read for a page
  // of sites (STORE.md section 6). Empty: no such filter.
  std::vector<std::string> site_ids{};
  std::optional<std::string> kind{};
  std::optional<std::string> stream{};  // the model name, by convention
  int64_t since_ms = 0;                 // created_ms >= since_ms
  int64_t until_ms = INT64_MAX;         // created_ms < until_ms
  // Cursor: only records with id > after_id. Paging with the largest id met so far meets
  // every record exactly once, also while other hubs ingest: no page holds an id below one
  // whose transaction may still commit (STORE.md section 3, the record cursor).
  int64_t after_id = 0;
  size_t limit = 100;  // capped at 10,000
};

// Records per time bucket, for the charts.
struct CountQuery {
  std::string tenant{};
  std::optional<std::string> site_id{};
  std::optional<std::string> kind{};
  std::optional<std::string> stream{};
  int64_t since_ms = 0;
  int64_t until_ms = INT64_MAX;
  int64_t bucket_ms = 3'600'000;  // >= 1000
};

struct CountBucket {
  int64_t start_ms = 0;  // a multiple of bucket_ms
  std::string site_id{};
  std::string kind{};
  uint64_t count = 0;
};

// A model version in the hub's registry (the retraining loop).
struct ModelEntry {
  std::string name{};
  int64_t version = 0;
  // "candidate" (trained, not yet approved), "approved", "bundled", "rejected".
  std::string state = "candidate";
  std::string metrics_json = "{}";  // holdout metrics, champion comparison
  std::string lineage_json = "{}";  // data set digest, record ranges, parent version
  std::string artifact_path{};      // where the model file (or bundle) lies on the hub
  int64_t created_ms = 0;
  // The model file's bytes (at most 256 MiB), kept in the store with the entry so that every
  // hub sharing the store can release it (STORE.md section 3). RegisterModel stores them;
  // ListModels leaves this empty (GetModelArtifact reads them). Empty for an entry
  // registered before schema version 6, whose file is only at artifact_path.
  std::string artifact{};
};

// The largest model file the registry keeps with an entry (ModelEntry::artifact), and the
// largest release bundle the store keeps (ReleaseBundle).
inline constexpr size_t kMaxModelArtifactBytes = size_t{256} << 20;
inline constexpr size_t kMaxReleaseBundleBytes = size_t{512} << 20;

// The model and version of a release bundle's name "<model>-<version>.bundle" (a ModelName
// of base/names.h, a decimal version in 1 .. 2^63-1); nullopt for any other name.
std::optional<std::pair<std::string, uint64_t>> ParseReleaseBundleName(std::string_view name);

// A signed release bundle the store keeps (STORE.md section 3, `release_bundles`), so that
// every hub sharing the store serves it to the sites it is meant for (hub/FORMAT.md section
// 10), whichever hub made it.
struct ReleaseBundle {
  std::string name{};    // the file name, "<model>-<version>.bundle"
  std::string sha256{};  // lowercase hex of the bytes
  uint64_t bytes = 0;
  int64_t created_ms = 0;
};

// One rollout of a release (STORE.md section 3, `rollouts`; hub/rollout.h): the document the
// rollout controller keeps, and the revision every write advances, so that an operator's
// action on one hub and the controller on another never overwrite each other unseen.
struct RolloutRow {
  std::string model{};
  int64_t model_version = 0;  // the registry version released
  std::string tenant{};
  std::string doc{};     // JSON (hub/FORMAT.md section 11), at most kMaxRolloutDocBytes
  int64_t revision = 0;  // 1 after the first write, one more after each
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};
inline constexpr size_t kMaxRolloutDocBytes = size_t{1} << 20;
// PutRollout's expected_revision that replaces whatever row is there.
inline constexpr int64_t kAnyRolloutRevision = -1;

// One line of the hub's own audit log (hub/FORMAT.md section 1) as the store keeps it
// (STORE.md section 3, `hub_audit`).
struct HubAuditEntry {
  int64_t id = 0;  // given by AppendHubAudit, in arrival order
  int64_t time_ms = 0;
  std::string tenant{};  // may be empty (a line of no tenant's: read by none)
  std::string event{};   // [a-z_]{1,32}
  std::string line{};    // the JSON line, no newline, at most kMaxHubAuditLineBytes
};
inline constexpr size_t kMaxHubAuditLineBytes = size_t{64} << 10;
inline constexpr size_t kMaxHubAuditPage = 1000;

// A named lease that one hub process at a time holds (STORE.md section 7).
struct Lease {
  std::string name{};
  std::string holder{};
  int64_t generation = 0;  // one more each time the lease changes holder
  int64_t expires_ms = 0;  // on the database's clock
};

// How long records are kept after the hub received them, per kind (STORE.md section 8).
// A kind not in `kinds` takes `default_ms`; nullopt (or an absent kind without a default)
// keeps records forever. Values are positive milliseconds; INT64_MAX means forever.
struct RetentionPolicy {
  std::map<std::string, int64_t, std::less<>> kinds{};
  std::optional<int64_t> default_ms{};
  // How long a removed record's key is kept (STORE.md section 8, the record keys' window);
  // INT64_MAX keeps every key.
  int64_t keys_after_expiry_ms = int64_t{90} * 86'400'000;
  // Whether any record can ever expire.
  bool empty() const;
};

// Where retention puts records before the store removes them (STORE.md section 8, the
// export units; hub/retention.h writes them to files, hub/FORMAT.md section 9). The store
// calls Begin, Add for each record, Seal, and then Publish after its transaction committed
// or Discard after it did not.
class RecordExporter {
 public:
  virtual ~RecordExporter() = default;
  // Units begun and neither published nor discarded (a crash came between): the store
  // publishes those its table names and discards the others, before a pass.
  virtual Result<std::vector<int64_t>> Pending() = 0;
  virtual Status Begin(int64_t unit_id) = 0;
  // `content_hash_hex`: the record content hash of STORE.md section 3, 64 hex digits.
  virtual Status Add(const HubRecord& record, std::string_view content_hash_hex) = 0;
  // The unit is durable under its temporary name; returns its file name and SHA-256 (hex).
  virtual Result<std::pair<std::string, std::string>> Seal() = 0;
  virtual Status Publish(int64_t unit_id, std::string_view sha256) = 0;
  virtual Status Discard(int64_t unit_id) = 0;
};

// What one retention pass did.
struct RetentionResult {
  uint64_t partitions_dropped = 0;
  uint64_t records_removed = 0;  // exported, then dropped or deleted
  uint64_t units = 0;            // export units committed
  uint64_t units_recovered = 0;  // pending units published (their transaction had committed)
  bool skipped = false;          // another pass held the lock: nothing done
  uint64_t keys_removed = 0;     // record keys past their window, deleted
};

class Store {
 public:
  virtual ~Store() = default;

  // "sqlite" or "postgresql".
  virtual std::string_view engine() const = 0;
  // Whether the database answers a trivial query (`SELECT 1`, STORE.md section 6): Ok, or
  // the engine's error (Unavailable when PostgreSQL cannot be reached). Reads and writes
  // nothing; the hub's /readyz asks it.
  virtual Status Ping() = 0;

  // --- sites and credentials ---
  // Creates the site, or AlreadyExists.
  virtual Status CreateSite(const Site& site) = 0;
  // NotFound when unknown.
  virtual Result<Site> GetSite(std::string_view site_id) = 0;
  // Sets the credential serial of an enrolled site.
  virtual Status SetCredential(std::string_view site_id, std::string_view serial) = 0;
  virtual Status RevokeSite(std::string_view site_id) = 0;
  virtual Status TouchSite(std::string_view site_id, int64_t now_ms) = 0;
  virtual Status PutEnrolmentToken(const EnrolmentToken& token) = 0;
  // Returns the token and deletes it in one transaction: a token enrols at most once.
  // NotFound for an unknown or already used token, DeadlineExceeded for an expired one.
  virtual Result<EnrolmentToken> ConsumeEnrolmentToken(std::string_view token_sha256,
                                                       int64_t now_ms) = 0;

  // --- ingestion ---
  // Stores a batch of records of one (site, node, stream) with its key, and the audit
  // segment if any, in one transaction. Records must all carry key.site_id, key.node_id and
  // key.stream, with seqs within [first_seq, last_seq] (InvalidArgument otherwise). The
  // audit segment must continue the stored head of (site, node) exactly (FailedPrecondition
  // "audit_gap" otherwise; nothing stored). Sets the site's last contact to now_ms.
  virtual Result<IngestResult> Ingest(const BatchKey& key, std::span<const HubRecord> records,
                                      const std::optional<AuditSegment>& audit, int64_t now_ms) = 0;
  // The stored audit head of (site, node): {0, 64 zeros} when none.
  virtual Result<std::pair<uint64_t, std::string>> AuditHead(std::string_view site_id,
                                                             std::string_view node_id) = 0;
  // The audit lines stored for a site (every node), oldest first, at most `limit` lines.
  virtual Result<std::vector<std::string>> AuditLines(std::string_view tenant,
                                                      std::string_view site_id, size_t limit) = 0;
  virtual Status PutNodeStatus(const NodeStatus& status, int64_t now_ms) = 0;

  // --- reads for the dashboard, exports' receipts and training ---
  // Every site of `tenant` with its nodes' reports, ordered by site id (bytewise).
  virtual Result<std::vector<SiteSummary>> ListSites(std::string_view tenant) = 0;
  // One site of `tenant` with its nodes' reports: NotFound reason "site_not_found" for an
  // unknown site and for another tenant's (the same answer). Reads one site's rows only.
  virtual Result<SiteSummary> GetSiteSummary(std::string_view tenant, std::string_view site_id) = 0;
  virtual Result<std::vector<HubRecord>> QueryRecords(const RecordQuery& query) = 0;
  virtual Result<std::vector<CountBucket>> CountRecords(const CountQuery& query) = 0;
  // The engine's plan for QueryRecords(query) and CountRecords(query), as the engine prints
  // it (PostgreSQL: EXPLAIN's text; SQLite: EXPLAIN QUERY PLAN's details, one a line), for
  // the tests that check which index a heavy read uses (STORE.md section 6) and for an
  // operator looking into a slow page. Runs nothing but the planner.
  virtual Result<std::string> ExplainRecordQuery(const RecordQuery& query) = 0;
  virtual Result<std::string> ExplainCountQuery(const CountQuery& query) = 0;
  // Whether every record of `key`'s range that the batch held is stored (receipts).
  virtual Result<bool> HasBatch(const BatchKey& key) = 0;

  // --- the model registry ---
  // AlreadyExists for a (name, version) that is registered.
  virtual Status RegisterModel(const ModelEntry& entry) = 0;
  virtual Status SetModelState(std::string_view name, int64_t version, std::string_view state) = 0;
  // Newest version first.
  virtual Result<std::vector<ModelEntry>> ListModels(std::string_view name) = 0;
  // The model file stored with (name, version): NotFound when no such entry; empty when the
  // entry was registered without its bytes.
  virtual Result<std::string> GetModelArtifact(std::string_view name, int64_t version) = 0;

  // --- release bundles (STORE.md section 3) ---
  // Keeps `bytes` (at most 512 MiB) under `name` ("<model>-<version>.bundle"), replacing
  // what was kept under it (a version released again).
  virtual Status PutReleaseBundle(std::string_view name, std::string_view bytes,
                                  int64_t now_ms) = 0;
  // Every bundle kept, by name, without the bytes.
  virtual Result<std::vector<ReleaseBundle>> ListReleaseBundles() = 0;
  // The bytes kept under `name`; NotFound when none.
  virtual Result<std::string> GetReleaseBundle(std::string_view name) = 0;

  // --- rollouts (STORE.md section 3) ---
  // Writes `row` (its doc, tenant and updated_ms; created_ms on a new row) when the row's
  // revision is `expected_revision` (0: no row yet; kAnyRolloutRevision: any or none) and
  // returns the new revision. FailedPrecondition reason "rollout_changed", nothing
  // written, when the revision differs (another writer came first: read it again);
  // InvalidArgument for a bad model name, version, tenant or a doc over kMaxRolloutDocBytes.
  virtual Result<int64_t> PutRollout(const RolloutRow& row, int64_t expected_revision) = 0;
  virtual Result<std::optional<RolloutRow>> GetRollout(std::string_view model,
                                                       int64_t model_version) = 0;
  // The newest `limit` rollouts by created_ms (then model, version), of `tenant` or of all.
  virtual Result<std::vector<RolloutRow>> ListRollouts(std::optional<std::string_view> tenant,
                                                       size_t limit) = 0;

  // --- the hub's audit lines (STORE.md section 3, hub_audit) ---
  // Appends `entry` (its id is given here). InvalidArgument for an event outside
  // [a-z_]{1,32}, a tenant over 128 bytes, or a line that is empty, holds a newline or is
  // over kMaxHubAuditLineBytes.
  virtual Status AppendHubAudit(const HubAuditEntry& entry) = 0;
  // `tenant`'s lines with an id above `after_id`, oldest first, at most `limit` (capped at
  // kMaxHubAuditPage); only those of `event` when it is not empty.
  virtual Result<std::vector<HubAuditEntry>> ListHubAudit(std::string_view tenant, int64_t after_id,
                                                          std::string_view event, size_t limit) = 0;

  // --- the scheduler lease (STORE.md section 7) ---
  // Takes or renews the lease `name` for `holder` until the database's clock passes now +
  // ttl_ms, when it is free, expired or already held by `holder`; else changes nothing.
  // Returns the lease as it stands after the call: `holder` holds it exactly when the
  // returned holder is `holder`. InvalidArgument for a bad name or holder, or a ttl_ms
  // outside 1000..86,400,000.
  virtual Result<Lease> AcquireLease(std::string_view name, std::string_view holder,
                                     int64_t ttl_ms) = 0;
  // Lets go of the lease (it expires now) when `holder` holds it; else changes nothing.
  virtual Status ReleaseLease(std::string_view name, std::string_view holder) = 0;
  // The state of scheduled work `name` (STORE.md section 7, `schedule_state`), as the
  // holder of the lease last wrote it; nullopt when never written.
  virtual Result<std::optional<std::string>> GetScheduleState(std::string_view name) = 0;
  // Writes the state of scheduled work `name` (at most 64 KiB) only while `held` (its name,
  // holder and generation) is still the lease's row: FailedPrecondition reason "lease_lost",
  // nothing written, once another took the lease over.
  virtual Status PutScheduleState(std::string_view name, std::string_view value,
                                  const Lease& held) = 0;

  // --- partitions and retention (STORE.md section 8) ---
  // Makes the partitions of records for the days around now_ms (yesterday .. in two days)
  // that are missing. PostgreSQL only; SQLite has none and returns Ok.
  virtual Status MaintainPartitions(int64_t now_ms) = 0;
  // One retention pass at now_ms: settles `exporter`'s pending units, then exports and
  // removes every expired record. SQLite: FailedPrecondition reason
  // "retention_unsupported", nothing done.
  virtual Result<RetentionResult> ApplyRetention(const RetentionPolicy& policy, int64_t now_ms,
                                                 RecordExporter& exporter) = 0;
};

// Opens (creating the schema if absent) the store that `url` names:
//   "sqlite:PATH"                         an SQLite file (its folder must exist)
//   "postgresql://..." or "postgres://..."  a PostgreSQL database (libpq connection URI)
// InvalidArgument for another scheme; Unavailable when the server cannot be reached.
Result<std::unique_ptr<Store>> OpenStore(std::string_view url);

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_STORE_H_
