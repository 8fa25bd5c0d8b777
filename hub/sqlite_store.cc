// The SQLite engine of hub/store.h (STORE.md), on Outpost's SQLite adapter
// (base/sqlite/sqlite.h, the one part of Outpost that sees SQLite's C header).
//
// One connection in WAL mode with synchronous=FULL, guarded by one mutex: SQLite has one
// writer at a time anyway, and a hub that outgrows it moves to PostgreSQL.
#include <algorithm>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/crypto/crypto.h"
#include "base/sqlite/sqlite.h"
#include "hub/store.h"
#include "hub/store_internal.h"

namespace outpost::hub::internal {
namespace {

using sqlite::Db;
using sqlite::Statement;

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE outpost_meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sites(
  site_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, region TEXT NOT NULL,
  created_ms INTEGER NOT NULL, credential_serial TEXT NOT NULL DEFAULT '',
  revoked INTEGER NOT NULL DEFAULT 0, last_contact_ms INTEGER NOT NULL DEFAULT 0,
  record_count INTEGER NOT NULL DEFAULT 0, newest_record_ms INTEGER);
CREATE INDEX sites_tenant ON sites(tenant, site_id);
CREATE TABLE enrolment_tokens(
  token_sha256 TEXT PRIMARY KEY, site_id TEXT NOT NULL, expires_ms INTEGER NOT NULL);
CREATE TABLE batches(
  site_id TEXT NOT NULL, node_id TEXT NOT NULL, stream TEXT NOT NULL,
  first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, content_sha256 TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY(site_id, node_id, stream, first_seq, last_seq));
CREATE TABLE records(
  id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, site_id TEXT NOT NULL,
  node_id TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
  created_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, payload TEXT NOT NULL,
  content_hash BLOB NOT NULL, UNIQUE(site_id, node_id, stream, seq));
CREATE INDEX records_tenant_created ON records(tenant, created_ms);
CREATE TABLE audit_heads(
  site_id TEXT NOT NULL, node_id TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL,
  PRIMARY KEY(site_id, node_id));
CREATE TABLE audit_lines(
  id INTEGER PRIMARY KEY, site_id TEXT NOT NULL, node_id TEXT NOT NULL, line TEXT NOT NULL);
CREATE INDEX audit_lines_site ON audit_lines(site_id, id);
CREATE TABLE node_status(
  site_id TEXT NOT NULL, node_id TEXT NOT NULL, reported_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL, backlog_records INTEGER NOT NULL,
  backlog_bytes INTEGER NOT NULL, autonomy_days TEXT, models_json TEXT NOT NULL,
  PRIMARY KEY(site_id, node_id));
CREATE TABLE models(
  name TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL,
  metrics_json TEXT NOT NULL, lineage_json TEXT NOT NULL, artifact_path TEXT NOT NULL,
  created_ms INTEGER NOT NULL, PRIMARY KEY(name, version));
INSERT INTO outpost_meta(name, value) VALUES ('schema_version', '1');
)sql";

// Schema version 2 (STORE.md section 1): what a node reports of its outbox.
constexpr const char* kMigrateV2 = R"sql(
ALTER TABLE node_status ADD COLUMN autonomy_basis TEXT NOT NULL DEFAULT '';
ALTER TABLE node_status ADD COLUMN outbox_account_json TEXT NOT NULL DEFAULT '';
UPDATE outpost_meta SET value = '2' WHERE name = 'schema_version';
)sql";

// Schema version 3 (STORE.md section 1) changes only the PostgreSQL engine's record ids;
// SQLite's are already in commit order (one writer at a time). The step writes the version.
constexpr const char* kMigrateV3 = R"sql(
UPDATE outpost_meta SET value = '3' WHERE name = 'schema_version';
)sql";

// Schema version 4 (STORE.md section 1): the scheduler lease (STORE.md section 7).
constexpr const char* kMigrateV4 = R"sql(
CREATE TABLE leases(name TEXT PRIMARY KEY, holder TEXT NOT NULL, generation INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL);
CREATE TABLE schedule_state(name TEXT PRIMARY KEY, value TEXT NOT NULL,
  generation INTEGER NOT NULL);
UPDATE outpost_meta SET value = '4' WHERE name = 'schema_version';
)sql";

// Schema version 5 (STORE.md section 1): PostgreSQL's partitions and retention (STORE.md
// section 8). SQLite keeps one records table and every record: only the version changes.
constexpr const char* kMigrateV5 = R"sql(
UPDATE outpost_meta SET value = '5' WHERE name = 'schema_version';
)sql";

// Schema version 6 (STORE.md sections 1 and 3): the indexes the dashboard's reads of one
// site and of one kind answer from (STORE.md section 6, reads at scale), the model file's
// bytes in the registry, and the release bundles.
constexpr const char* kMigrateV6 = R"sql(
CREATE INDEX IF NOT EXISTS records_site_kind_created ON records(site_id, kind, created_ms);
CREATE INDEX IF NOT EXISTS records_tenant_kind_created ON records(tenant, kind, created_ms);
CREATE TABLE IF NOT EXISTS release_bundles(name TEXT PRIMARY KEY, sha256 TEXT NOT NULL,
  size INTEGER NOT NULL, bytes BLOB NOT NULL, created_ms INTEGER NOT NULL);
UPDATE outpost_meta SET value = '6' WHERE name = 'schema_version';
)sql";

// Schema version 7 (STORE.md section 3): the rollouts of releases (hub/rollout.h).
constexpr const char* kMigrateV7 = R"sql(
CREATE TABLE IF NOT EXISTS rollouts(model TEXT NOT NULL, model_version INTEGER NOT NULL,
  tenant TEXT NOT NULL, doc TEXT NOT NULL, revision INTEGER NOT NULL,
  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (model, model_version));
CREATE INDEX IF NOT EXISTS rollouts_tenant_created ON rollouts(tenant, created_ms);
UPDATE outpost_meta SET value = '7' WHERE name = 'schema_version';
)sql";

// Schema version 8 (STORE.md section 3): the hub's own audit lines of every hub.
constexpr const char* kMigrateV8 = R"sql(
CREATE TABLE IF NOT EXISTS hub_audit(id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,
  tenant TEXT NOT NULL, event TEXT NOT NULL, line TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS hub_audit_tenant ON hub_audit(tenant, id);
UPDATE outpost_meta SET value = '8' WHERE name = 'schema_version';
)sql";

// Schema version 9 (STORE.md section 1): only PostgreSQL's record_keys changes.
constexpr const char* kMigrateV9 = R"sql(
UPDATE outpost_meta SET value = '9' WHERE name = 'schema_version';
)sql";

// STORE.md section 7: one upsert on the database's clock (julianday('now'), the same within
// one statement); a row only when the caller holds the lease afterwards. ?3 is the ttl.
constexpr const char* kAcquireLease =
    "INSERT INTO leases(name, holder, generation, expires_ms) VALUES (?1, ?2, 1, "
    "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) + ?3) ON CONFLICT (name) DO "
    "UPDATE SET holder = excluded.holder, generation = leases.generation + CASE WHEN "
    "leases.holder = excluded.holder THEN 0 ELSE 1 END, expires_ms = excluded.expires_ms "
    "WHERE leases.holder = excluded.holder OR leases.expires_ms <= excluded.expires_ms - ?3 "
    "RETURNING holder, generation, expires_ms";

// STORE.md section 7: a state written only while the writer's lease row is unchanged.
constexpr const char* kPutScheduleState =
    "INSERT INTO schedule_state(name, value, generation) SELECT ?1, ?2, ?5 WHERE EXISTS "
    "(SELECT 1 FROM leases WHERE name = ?3 AND holder = ?4 AND generation = ?5) ON "
    "CONFLICT (name) DO UPDATE SET value = excluded.value, generation = excluded.generation";

constexpr const char* kRolloutColumns =
    "model, model_version, tenant, doc, revision, created_ms, updated_ms";

constexpr const char* kSiteColumns =
    "site_id, tenant, region, created_ms, credential_serial, revoked, last_contact_ms";

Site ReadSite(const Statement& st, int first) {
  Site s;
  s.site_id = std::string(st.ColumnText(first));
  s.tenant = std::string(st.ColumnText(first + 1));
  s.region = std::string(st.ColumnText(first + 2));
  s.created_ms = st.ColumnInt(first + 3);
  s.credential_serial = std::string(st.ColumnText(first + 4));
  s.revoked = st.ColumnInt(first + 5) != 0;
  s.last_contact_ms = st.ColumnInt(first + 6);
  return s;
}

NodeStatus ReadNodeStatus(const Statement& st) {
  NodeStatus n;
  n.site_id = std::string(st.ColumnText(0));
  n.node_id = std::string(st.ColumnText(1));
  n.reported_ms = st.ColumnInt(2);
  n.received_ms = st.ColumnInt(3);
  n.backlog_records = static_cast<uint64_t>(st.ColumnInt(4));
  n.backlog_bytes = static_cast<uint64_t>(st.ColumnInt(5));
  if (!st.ColumnIsNull(6)) {
    // Stored as "%.17g" text, so the double comes back bit for bit.
    n.autonomy_days = std::stod(std::string(st.ColumnText(6)));
  }
  n.models_json = std::string(st.ColumnText(7));
  n.autonomy_basis = std::string(st.ColumnText(8));
  n.outbox_account_json = std::string(st.ColumnText(9));
  return n;
}

void BindParams(Statement* st, const std::vector<SqlParam>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].is_int) {
      st->BindInt(static_cast<int>(i + 1), params[i].int_value);
    } else {
      st->BindText(static_cast<int>(i + 1), params[i].text);
    }
  }
}

std::string SqlitePlaceholder(int n, bool /*is_int*/) { return "?" + std::to_string(n); }

// How SQLite spells the store's queries.
const SqlDialect& SqliteDialect() {
  static const SqlDialect* const dialect =
      new SqlDialect{.placeholder = SqlitePlaceholder, .unary_plus_tenant = true};
  return *dialect;
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(std::unique_ptr<Db> db) : db_(std::move(db)) {}

  std::string_view engine() const override { return "sqlite"; }

  Status Ping() override {
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT 1"));
    return st->Step().status();
  }

  Status Init() {
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_RETURN_IF_ERROR(db_->Exec("PRAGMA busy_timeout=10000"));
    OUTPOST_RETURN_IF_ERROR(db_->Exec("PRAGMA journal_mode=WAL"));
    OUTPOST_RETURN_IF_ERROR(db_->Exec("PRAGMA synchronous=FULL"));
    OUTPOST_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    Status s = InitSchemaLocked();
    if (!s.ok()) {
      db_->Exec("ROLLBACK").IgnoreError();
      return s;
    }
    return db_->Exec("COMMIT");
  }

  Status CreateSite(const Site& site) override {
    OUTPOST_RETURN_IF_ERROR(ValidateSite(site));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st,
                             db_->Prepare("INSERT INTO sites(site_id, tenant, region, created_ms, "
                                          "credential_serial, revoked, last_contact_ms) VALUES "
                                          "(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"));
    st->BindText(1, site.site_id);
    st->BindText(2, site.tenant);
    st->BindText(3, site.region);
    st->BindInt(4, site.created_ms);
    st->BindText(5, site.credential_serial);
    st->BindInt(6, site.revoked ? 1 : 0);
    st->BindInt(7, site.last_contact_ms);
    OUTPOST_RETURN_IF_ERROR(st->Run());
    if (db_->Changes() == 0) return AlreadyExistsError("site " + site.site_id + " exists");
    return Status::Ok();
  }

  Result<Site> GetSite(std::string_view site_id) override {
    if (!ValidateId("site_id", site_id).ok())
      return NotFoundError("no site " + std::string(site_id));

    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st, db_->Prepare(std::string("SELECT ") + kSiteColumns +
                                                   " FROM sites WHERE site_id = ?1"));
    st->BindText(1, site_id);
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return NotFoundError("no site " + std::string(site_id));
    return ReadSite(*st, 0);
  }

  Status SetCredential(std::string_view site_id, std::string_view serial) override {
    OUTPOST_RETURN_IF_ERROR(ValidateJson("serial", serial));
    if (serial.size() > kMaxIdBytes) return InvalidArgumentError("serial above 256 bytes");
    return UpdateSite("UPDATE sites SET credential_serial = ?2 WHERE site_id = ?1", site_id,
                      [&](Statement* st) { st->BindText(2, serial); });
  }

  Status RevokeSite(std::string_view site_id) override {
    return UpdateSite("UPDATE sites SET revoked = 1 WHERE site_id = ?1", site_id,
                      [](Statement*) {});
  }

  Status TouchSite(std::string_view site_id, int64_t now_ms) override {
    return UpdateSite("UPDATE sites SET last_contact_ms = ?2 WHERE site_id = ?1", site_id,
                      [&](Statement* st) { st->BindInt(2, now_ms); });
  }

  Status PutEnrolmentToken(const EnrolmentToken& token) override {
    OUTPOST_RETURN_IF_ERROR(ValidateId("token_sha256", token.token_sha256));
    OUTPOST_RETURN_IF_ERROR(ValidateId("site_id", token.site_id));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("INSERT INTO enrolment_tokens(token_sha256, site_id, "
                              "expires_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"));
    st->BindText(1, token.token_sha256);
    st->BindText(2, token.site_id);
    st->BindInt(3, token.expires_ms);
    OUTPOST_RETURN_IF_ERROR(st->Run());
    if (db_->Changes() == 0) return AlreadyExistsError("enrolment token exists");
    return Status::Ok();
  }

  Result<EnrolmentToken> ConsumeEnrolmentToken(std::string_view token_sha256,
                                               int64_t now_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("DELETE FROM enrolment_tokens WHERE token_sha256 = ?1 AND "
                              "expires_ms > ?2 RETURNING token_sha256, site_id, expires_ms"));
    st->BindText(1, token_sha256);
    st->BindInt(2, now_ms);
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) {
      EnrolmentToken t{.token_sha256 = std::string(st->ColumnText(0)),
                       .site_id = std::string(st->ColumnText(1)),
                       .expires_ms = st->ColumnInt(2)};
      OUTPOST_ASSIGN_OR_RETURN(bool more, st->Step());
      (void)more;
      return t;
    }
    st.reset();
    OUTPOST_ASSIGN_OR_RETURN(
        auto check, db_->Prepare("SELECT 1 FROM enrolment_tokens WHERE token_sha256 = ?1"));
    check->BindText(1, token_sha256);
    OUTPOST_ASSIGN_OR_RETURN(bool expired, check->Step());
    if (expired) return DeadlineExceededError("enrolment token expired");
    return NotFoundError("unknown or already used enrolment token");
  }

  Result<IngestResult> Ingest(const BatchKey& key, std::span<const HubRecord> records,
                              const std::optional<AuditSegment>& audit, int64_t now_ms) override {
    OUTPOST_RETURN_IF_ERROR(ValidateIngest(key, records, audit));
    std::vector<std::string> hashes;
    hashes.reserve(records.size());
    for (const HubRecord& r : records) hashes.push_back(RecordContentHash(r));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    Result<IngestResult> result = IngestLocked(key, records, hashes, audit, now_ms);
    if (!result.ok() || result->outcome == IngestOutcome::kConflict) {
      db_->Exec("ROLLBACK").IgnoreError();
      return result;
    }
    OUTPOST_RETURN_IF_ERROR(db_->Exec("COMMIT"));
    return result;
  }

  Result<std::pair<uint64_t, std::string>> AuditHead(std::string_view site_id,
                                                     std::string_view node_id) override {
    if (!ValidateId("site_id", site_id).ok() || !ValidateId("node_id", node_id).ok()) {
      return std::make_pair(uint64_t{0}, ZeroHash());  // a head that cannot exist
    }

    std::lock_guard<std::mutex> lock(mu_);
    return AuditHeadLocked(site_id, node_id);
  }

  Result<std::vector<std::string>> AuditLines(std::string_view tenant, std::string_view site_id,
                                              size_t limit) override {
    if (!ValidateId("tenant", tenant).ok() || !ValidateId("site_id", site_id).ok()) {
      return NotFoundError("no site " + std::string(site_id));
    }

    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_RETURN_IF_ERROR(CheckTenantLocked(tenant, site_id));
    OUTPOST_ASSIGN_OR_RETURN(
        auto st,
        db_->Prepare("SELECT line FROM audit_lines WHERE site_id = ?1 ORDER BY id LIMIT ?2"));
    st->BindText(1, site_id);
    st->BindInt(2, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    std::vector<std::string> out;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      out.emplace_back(st->ColumnText(0));
    }
    return out;
  }

  Status PutNodeStatus(const NodeStatus& status, int64_t now_ms) override {
    OUTPOST_RETURN_IF_ERROR(ValidateNodeStatus(status));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("INSERT INTO node_status(site_id, node_id, reported_ms, received_ms, "
                              "backlog_records, backlog_bytes, autonomy_days, models_json, "
                              "autonomy_basis, outbox_account_json) VALUES "
                              "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(site_id, "
                              "node_id) DO "
                              "UPDATE SET reported_ms = excluded.reported_ms, received_ms = "
                              "excluded.received_ms, backlog_records = excluded.backlog_records, "
                              "backlog_bytes = excluded.backlog_bytes, autonomy_days = "
                              "excluded.autonomy_days, models_json = excluded.models_json, "
                              "autonomy_basis = excluded.autonomy_basis, outbox_account_json = "
                              "excluded.outbox_account_json WHERE "
                              "excluded.reported_ms >= node_status.reported_ms"));
    st->BindText(1, status.site_id);
    st->BindText(2, status.node_id);
    st->BindInt(3, status.reported_ms);
    st->BindInt(4, now_ms);
    st->BindInt(5, static_cast<int64_t>(status.backlog_records));
    st->BindInt(6, static_cast<int64_t>(status.backlog_bytes));
    if (status.autonomy_days) {
      // "%.17g" text round-trips every double exactly (the column has no REAL affinity).
      char buf[64];
      snprintf(buf, sizeof buf, "%.17g", *status.autonomy_days);
      st->BindText(7, buf);
    } else {
      st->BindNull(7);
    }
    st->BindText(8, status.models_json);
    st->BindText(9, status.autonomy_basis);
    st->BindText(10, status.outbox_account_json);
    return st->Run();
  }

  Result<std::vector<SiteSummary>> ListSites(std::string_view tenant) override {
    OUTPOST_RETURN_IF_ERROR(ValidateId("tenant", tenant));
    std::lock_guard<std::mutex> lock(mu_);
    return ListSitesLocked(tenant, std::nullopt);
  }

  Result<SiteSummary> GetSiteSummary(std::string_view tenant, std::string_view site_id) override {
    OUTPOST_RETURN_IF_ERROR(ValidateId("tenant", tenant));
    if (!ValidateId("site_id", site_id).ok()) return SiteNotFound(site_id);
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(std::vector<SiteSummary> out, ListSitesLocked(tenant, site_id));
    if (out.empty()) return SiteNotFound(site_id);
    return std::move(out.front());
  }

  Result<std::string> ExplainRecordQuery(const RecordQuery& query) override {
    OUTPOST_RETURN_IF_ERROR(ValidateRecordQuery(query));
    return Explain(BuildRecordQuery(query, SqliteDialect()));
  }

  Result<std::string> ExplainCountQuery(const CountQuery& query) override {
    OUTPOST_RETURN_IF_ERROR(ValidateCountQuery(query));
    return Explain(BuildCountQuery(query, SqliteDialect()));
  }

  Result<std::vector<HubRecord>> QueryRecords(const RecordQuery& query) override {
    OUTPOST_RETURN_IF_ERROR(ValidateRecordQuery(query));
    BuiltQuery q = BuildRecordQuery(query, SqliteDialect());
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st, db_->Prepare(q.sql));
    BindParams(st.get(), q.params);
    std::vector<HubRecord> out;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      HubRecord r;
      r.id = st->ColumnInt(0);
      r.tenant = std::string(st->ColumnText(1));
      r.site_id = std::string(st->ColumnText(2));
      r.node_id = std::string(st->ColumnText(3));
      r.stream = std::string(st->ColumnText(4));
      r.seq = static_cast<uint64_t>(st->ColumnInt(5));
      r.kind = std::string(st->ColumnText(6));
      r.created_ms = st->ColumnInt(7);
      r.received_ms = st->ColumnInt(8);
      r.payload = std::string(st->ColumnText(9));
      out.push_back(std::move(r));
    }
    return out;
  }

  Result<std::vector<CountBucket>> CountRecords(const CountQuery& query) override {
    OUTPOST_RETURN_IF_ERROR(ValidateCountQuery(query));
    BuiltQuery q = BuildCountQuery(query, SqliteDialect());
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st, db_->Prepare(q.sql));
    BindParams(st.get(), q.params);
    std::vector<CountBucket> out;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      out.push_back(CountBucket{.start_ms = st->ColumnInt(0),
                                .site_id = std::string(st->ColumnText(1)),
                                .kind = std::string(st->ColumnText(2)),
                                .count = static_cast<uint64_t>(st->ColumnInt(3))});
    }
    if (out.size() > kMaxBuckets) {
      return InvalidArgumentError("more than 100000 buckets; narrow the range or widen buckets");
    }
    SortBuckets(&out);
    return out;
  }

  Result<bool> HasBatch(const BatchKey& key) override {
    if (!ValidateId("site_id", key.site_id).ok() || !ValidateId("node_id", key.node_id).ok() ||
        !ValidateId("stream", key.stream).ok() ||
        !ValidateId("content_sha256", key.content_sha256).ok()) {
      return false;
    }

    if (key.first_seq > static_cast<uint64_t>(INT64_MAX) ||
        key.last_seq > static_cast<uint64_t>(INT64_MAX)) {
      return false;
    }
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(std::optional<std::string> stored, StoredContentLocked(key));
    return stored.has_value() && *stored == key.content_sha256;
  }

  Status RegisterModel(const ModelEntry& entry) override {
    OUTPOST_RETURN_IF_ERROR(ValidateId("model name", entry.name));
    OUTPOST_RETURN_IF_ERROR(ValidateModelState(entry.state));
    OUTPOST_RETURN_IF_ERROR(ValidateJson("metrics_json", entry.metrics_json));
    OUTPOST_RETURN_IF_ERROR(ValidateJson("lineage_json", entry.lineage_json));
    OUTPOST_RETURN_IF_ERROR(ValidateJson("artifact_path", entry.artifact_path));
    OUTPOST_RETURN_IF_ERROR(ValidateArtifact(entry.artifact));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("INSERT INTO models(name, version, state, metrics_json, "
                              "lineage_json, artifact_path, created_ms, artifact) VALUES (?1, "
                              "?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING"));
    if (!entry.artifact.empty()) st->BindBlob(8, entry.artifact);  // unbound: NULL
    st->BindText(1, entry.name);
    st->BindInt(2, entry.version);
    st->BindText(3, entry.state);
    st->BindText(4, entry.metrics_json);
    st->BindText(5, entry.lineage_json);
    st->BindText(6, entry.artifact_path);
    st->BindInt(7, entry.created_ms);
    OUTPOST_RETURN_IF_ERROR(st->Run());
    if (db_->Changes() == 0) {
      return AlreadyExistsError("model " + entry.name + " version " +
                                std::to_string(entry.version) + " is registered");
    }
    return Status::Ok();
  }

  Status SetModelState(std::string_view name, int64_t version, std::string_view state) override {
    if (!ValidateId("model name", name).ok()) return NotFoundError("no model " + std::string(name));

    OUTPOST_RETURN_IF_ERROR(ValidateModelState(state));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("UPDATE models SET state = ?3 WHERE name = ?1 AND version = ?2"));
    st->BindText(1, name);
    st->BindInt(2, version);
    st->BindText(3, state);
    OUTPOST_RETURN_IF_ERROR(st->Run());
    if (db_->Changes() == 0) {
      return NotFoundError("no model " + std::string(name) + " version " + std::to_string(version));
    }
    return Status::Ok();
  }

  Result<std::vector<ModelEntry>> ListModels(std::string_view name) override {
    if (!name.empty() && !ValidateId("model name", name).ok()) return std::vector<ModelEntry>{};

    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("SELECT name, version, state, metrics_json, lineage_json, "
                              "artifact_path, created_ms FROM models WHERE ?1 = '' OR name = "
                              "?1 ORDER BY name, version DESC"));
    st->BindText(1, name);
    std::vector<ModelEntry> out;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      out.push_back(ModelEntry{.name = std::string(st->ColumnText(0)),
                               .version = st->ColumnInt(1),
                               .state = std::string(st->ColumnText(2)),
                               .metrics_json = std::string(st->ColumnText(3)),
                               .lineage_json = std::string(st->ColumnText(4)),
                               .artifact_path = std::string(st->ColumnText(5)),
                               .created_ms = st->ColumnInt(6)});
    }
    return out;
  }

  Result<std::string> GetModelArtifact(std::string_view name, int64_t version) override {
    if (!ValidateId("model name", name).ok()) return ModelNotFound(name, version);
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("SELECT artifact FROM models WHERE name = ?1 AND version = ?2"));
    st->BindText(1, name);
    st->BindInt(2, version);
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return ModelNotFound(name, version);
    if (st->ColumnIsNull(0)) return std::string();
    return std::string(st->ColumnBlob(0));
  }

  Status PutReleaseBundle(std::string_view name, std::string_view bytes, int64_t now_ms) override {
    OUTPOST_RETURN_IF_ERROR(ValidateReleaseBundle(name, bytes));
    const std::string sha256 = crypto::Sha256Hex(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("INSERT INTO release_bundles(name, sha256, size, bytes, "
                              "created_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO "
                              "UPDATE SET sha256 = excluded.sha256, size = excluded.size, "
                              "bytes = excluded.bytes, created_ms = excluded.created_ms"));
    st->BindText(1, name);
    st->BindText(2, sha256);
    st->BindInt(3, static_cast<int64_t>(bytes.size()));
    st->BindBlob(4, bytes);
    st->BindInt(5, now_ms);
    return st->Run();
  }

  Result<std::vector<ReleaseBundle>> ListReleaseBundles() override {
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("SELECT name, sha256, size, created_ms FROM release_bundles "
                              "ORDER BY name"));
    std::vector<ReleaseBundle> out;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      out.push_back(ReleaseBundle{.name = std::string(st->ColumnText(0)),
                                  .sha256 = std::string(st->ColumnText(1)),
                                  .bytes = static_cast<uint64_t>(st->ColumnInt(2)),
                                  .created_ms = st->ColumnInt(3)});
    }
    return out;
  }

  Result<std::string> GetReleaseBundle(std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st,
                             db_->Prepare("SELECT bytes FROM release_bundles WHERE name = ?1"));
    st->BindText(1, name);
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return NotFoundError("no release bundle " + std::string(name.substr(0, 128)));
    return std::string(st->ColumnBlob(0));
  }

  Result<Lease> AcquireLease(std::string_view name, std::string_view holder,
                             int64_t ttl_ms) override {
    OUTPOST_RETURN_IF_ERROR(ValidateLease(name, holder, ttl_ms));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st, db_->Prepare(kAcquireLease));
    st->BindText(1, name);
    st->BindText(2, holder);
    st->BindInt(3, ttl_ms);
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) {
      // Another holds it: say who. (The upsert has run to its end.)
      st.reset();
      OUTPOST_ASSIGN_OR_RETURN(
          st, db_->Prepare("SELECT holder, generation, expires_ms FROM leases WHERE name = ?1"));
      st->BindText(1, name);
      OUTPOST_ASSIGN_OR_RETURN(row, st->Step());
      if (!row) return UnavailableError("lease " + std::string(name) + " vanished");
    }
    Lease lease{.name = std::string(name),
                .holder = std::string(st->ColumnText(0)),
                .generation = st->ColumnInt(1),
                .expires_ms = st->ColumnInt(2)};
    OUTPOST_ASSIGN_OR_RETURN(bool more, st->Step());  // runs the statement to its end
    (void)more;
    return lease;
  }

  Status ReleaseLease(std::string_view name, std::string_view holder) override {
    if (!ValidateId("lease name", name).ok() || !ValidateId("lease holder", holder).ok()) {
      return Status::Ok();
    }
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("UPDATE leases SET expires_ms = 0 WHERE name = ?1 AND holder = ?2"));
    st->BindText(1, name);
    st->BindText(2, holder);
    return st->Run();
  }

  Result<int64_t> PutRollout(const RolloutRow& row, int64_t expected_revision) override {
    OUTPOST_RETURN_IF_ERROR(ValidateRollout(row, expected_revision));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    Result<int64_t> out = PutRolloutLocked(row, expected_revision);
    if (!out.ok()) {
      db_->Exec("ROLLBACK").IgnoreError();
      return out;
    }
    OUTPOST_RETURN_IF_ERROR(db_->Exec("COMMIT"));
    return out;
  }

  Result<std::optional<RolloutRow>> GetRollout(std::string_view model,
                                               int64_t model_version) override {
    if (!ValidateId("model name", model).ok()) return std::optional<RolloutRow>();
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare(std::string("SELECT ") + kRolloutColumns +
                              " FROM rollouts WHERE model = ?1 AND model_version = ?2"));
    st->BindText(1, model);
    st->BindInt(2, model_version);
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return std::optional<RolloutRow>();
    return std::optional<RolloutRow>(ReadRollout(*st));
  }

  Result<std::vector<RolloutRow>> ListRollouts(std::optional<std::string_view> tenant,
                                               size_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare(std::string("SELECT ") + kRolloutColumns + " FROM rollouts" +
                              (tenant ? " WHERE tenant = ?1" : "") +
                              " ORDER BY created_ms DESC, model, model_version DESC LIMIT " +
                              std::to_string(std::min<size_t>(limit, 100'000))));
    if (tenant) st->BindText(1, *tenant);
    std::vector<RolloutRow> out;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      out.push_back(ReadRollout(*st));
    }
    return out;
  }

  Status AppendHubAudit(const HubAuditEntry& entry) override {
    OUTPOST_RETURN_IF_ERROR(ValidateHubAudit(entry));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st,
                             db_->Prepare("INSERT INTO hub_audit(time_ms, tenant, event, line) "
                                          "VALUES (?1, ?2, ?3, ?4)"));
    st->BindInt(1, entry.time_ms);
    st->BindText(2, entry.tenant);
    st->BindText(3, entry.event);
    st->BindText(4, entry.line);
    return st->Run();
  }

  Result<std::vector<HubAuditEntry>> ListHubAudit(std::string_view tenant, int64_t after_id,
                                                  std::string_view event, size_t limit) override {
    OUTPOST_RETURN_IF_ERROR(ValidateHubAuditEvent(event));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("SELECT id, time_ms, tenant, event, line FROM hub_audit WHERE "
                              "tenant = ?1 AND id > ?2 AND (?3 = '' OR event = ?3) ORDER BY id "
                              "LIMIT ?4"));
    st->BindText(1, tenant);
    st->BindInt(2, after_id);
    st->BindText(3, event);
    st->BindInt(4, static_cast<int64_t>(std::min(limit, kMaxHubAuditPage)));
    std::vector<HubAuditEntry> out;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      out.push_back(HubAuditEntry{.id = st->ColumnInt(0),
                                  .time_ms = st->ColumnInt(1),
                                  .tenant = std::string(st->ColumnText(2)),
                                  .event = std::string(st->ColumnText(3)),
                                  .line = std::string(st->ColumnText(4))});
    }
    return out;
  }

  Result<std::optional<std::string>> GetScheduleState(std::string_view name) override {
    OUTPOST_RETURN_IF_ERROR(ValidateId("schedule state name", name));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st,
                             db_->Prepare("SELECT value FROM schedule_state WHERE name = ?1"));
    st->BindText(1, name);
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(std::string(st->ColumnText(0)));
  }

  Status PutScheduleState(std::string_view name, std::string_view value,
                          const Lease& held) override {
    OUTPOST_RETURN_IF_ERROR(ValidateScheduleState(name, value, held));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st, db_->Prepare(kPutScheduleState));
    st->BindText(1, name);
    st->BindText(2, value);
    st->BindText(3, held.name);
    st->BindText(4, held.holder);
    st->BindInt(5, held.generation);
    OUTPOST_RETURN_IF_ERROR(st->Run());
    if (db_->Changes() == 0) return LeaseLost(held);
    return Status::Ok();
  }

  // SQLite has no partitions and keeps every record (STORE.md section 8).
  Status MaintainPartitions(int64_t) override { return Status::Ok(); }

  Result<RetentionResult> ApplyRetention(const RetentionPolicy&, int64_t,
                                         RecordExporter&) override {
    return RetentionUnsupported("sqlite");
  }

 private:
  // EXPLAIN QUERY PLAN's details for a built query, one a line.
  Result<std::string> Explain(const BuiltQuery& q) {
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st, db_->Prepare("EXPLAIN QUERY PLAN " + q.sql));
    BindParams(st.get(), q.params);
    std::string plan;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      plan += std::string(st->ColumnText(3)) + "\n";
    }
    return plan;
  }

  // The sites of `tenant` with their nodes' reports; only `site_id` when it is given. mu_
  // held.
  Result<std::vector<SiteSummary>> ListSitesLocked(std::string_view tenant,
                                                   std::optional<std::string_view> site_id) {
    std::vector<SiteSummary> out;
    {
      OUTPOST_ASSIGN_OR_RETURN(
          auto st, db_->Prepare(std::string("SELECT ") + kSiteColumns +
                                ", record_count, newest_record_ms FROM sites WHERE tenant = "
                                "?1" +
                                (site_id ? " AND site_id = ?2" : "") + " ORDER BY site_id"));
      st->BindText(1, tenant);
      if (site_id) st->BindText(2, *site_id);
      while (true) {
        OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
        if (!row) break;
        SiteSummary s;
        s.site = ReadSite(*st, 0);
        s.records = static_cast<uint64_t>(st->ColumnInt(7));
        if (!st->ColumnIsNull(8)) s.newest_record_ms = st->ColumnInt(8);
        out.push_back(std::move(s));
      }
    }
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("SELECT n.site_id, n.node_id, n.reported_ms, n.received_ms, "
                              "n.backlog_records, n.backlog_bytes, n.autonomy_days, "
                              "n.models_json, n.autonomy_basis, n.outbox_account_json "
                              "FROM node_status n JOIN sites s ON s.site_id = "
                              "n.site_id WHERE s.tenant = ?1" +
                              std::string(site_id ? " AND n.site_id = ?2" : "") +
                              " ORDER BY n.site_id, n.node_id"));
    st->BindText(1, tenant);
    if (site_id) st->BindText(2, *site_id);
    size_t i = 0;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      NodeStatus n = ReadNodeStatus(*st);
      while (i < out.size() && out[i].site.site_id < n.site_id) ++i;
      if (i < out.size() && out[i].site.site_id == n.site_id) out[i].nodes.push_back(std::move(n));
    }
    return out;
  }

  Status InitSchemaLocked() {
    OUTPOST_ASSIGN_OR_RETURN(
        int64_t has_meta,
        db_->QueryInt("SELECT count(*) FROM sqlite_schema WHERE name = 'outpost_meta'"));
    if (has_meta == 0) {
      OUTPOST_ASSIGN_OR_RETURN(
          int64_t has_sites,
          db_->QueryInt("SELECT count(*) FROM sqlite_schema WHERE name = 'sites'"));
      if (has_sites == 0) {
        OUTPOST_RETURN_IF_ERROR(db_->Exec(kSchemaV1));
        OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV2));
        OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV3));
        OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV4));
        OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV5));
        OUTPOST_RETURN_IF_ERROR(MigrateToV6Locked());
        OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV7));
        OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV8));
        return db_->Exec(kMigrateV9);
      }
      return ErrorWithReason(StatusCode::kDataLoss, "schema_unknown",
                             "the database has a sites table but no outpost_meta");
    }
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("SELECT value FROM outpost_meta WHERE name = 'schema_version'"));
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row)
      return ErrorWithReason(StatusCode::kDataLoss, "schema_unknown", "no schema_version row");
    std::string value(st->ColumnText(0));
    int64_t version = 0;
    try {
      size_t used = 0;
      version = std::stoll(value, &used);
      if (used != value.size()) version = -1;
    } catch (...) {
      version = -1;
    }
    if (version < 1)
      return ErrorWithReason(StatusCode::kDataLoss, "schema_unknown",
                             "schema_version \"" + value + "\"");
    if (version > kSchemaVersion) {
      return ErrorWithReason(StatusCode::kFailedPrecondition, "schema_too_new",
                             "database schema version " + std::to_string(version) +
                                 ", this binary knows up to " + std::to_string(kSchemaVersion));
    }
    // In Init's transaction.
    if (version == 1) OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV2));
    if (version <= 2) OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV3));
    if (version <= 3) OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV4));
    if (version <= 4) OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV5));
    if (version <= 5) OUTPOST_RETURN_IF_ERROR(MigrateToV6Locked());
    if (version <= 6) OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV7));
    if (version <= 7) OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV8));
    if (version <= 8) OUTPOST_RETURN_IF_ERROR(db_->Exec(kMigrateV9));
    return Status::Ok();
  }

  // PutRollout inside its transaction: the revision checked, then the row written.
  Result<int64_t> PutRolloutLocked(const RolloutRow& row, int64_t expected_revision) {
    OUTPOST_ASSIGN_OR_RETURN(
        auto read,
        db_->Prepare("SELECT revision FROM rollouts WHERE model = ?1 AND model_version = ?2"));
    read->BindText(1, row.model);
    read->BindInt(2, row.model_version);
    OUTPOST_ASSIGN_OR_RETURN(bool found, read->Step());
    const int64_t current = found ? read->ColumnInt(0) : 0;
    if (expected_revision != kAnyRolloutRevision && current != expected_revision) {
      return RolloutChanged(row, expected_revision);
    }
    OUTPOST_ASSIGN_OR_RETURN(
        auto write,
        db_->Prepare("INSERT INTO rollouts(model, model_version, tenant, doc, revision, "
                     "created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT "
                     "(model, model_version) DO UPDATE SET tenant = excluded.tenant, doc = "
                     "excluded.doc, revision = excluded.revision, updated_ms = "
                     "excluded.updated_ms"));
    write->BindText(1, row.model);
    write->BindInt(2, row.model_version);
    write->BindText(3, row.tenant);
    write->BindText(4, row.doc);
    write->BindInt(5, current + 1);
    write->BindInt(6, row.created_ms);
    write->BindInt(7, row.updated_ms);
    OUTPOST_RETURN_IF_ERROR(write->Run());
    return current + 1;
  }

  static RolloutRow ReadRollout(const Statement& st) {
    return RolloutRow{.model = std::string(st.ColumnText(0)),
                      .model_version = st.ColumnInt(1),
                      .tenant = std::string(st.ColumnText(2)),
                      .doc = std::string(st.ColumnText(3)),
                      .revision = st.ColumnInt(4),
                      .created_ms = st.ColumnInt(5),
                      .updated_ms = st.ColumnInt(6)};
  }

  // Schema version 6: the registry's model files (a column SQLite cannot add "if not
  // exists", so it is looked for first) and kMigrateV6.
  Status MigrateToV6Locked() {
    OUTPOST_ASSIGN_OR_RETURN(
        int64_t has_artifact,
        db_->QueryInt("SELECT count(*) FROM pragma_table_info('models') WHERE name = 'artifact'"));
    if (has_artifact == 0) {
      OUTPOST_RETURN_IF_ERROR(db_->Exec("ALTER TABLE models ADD COLUMN artifact BLOB"));
    }
    return db_->Exec(kMigrateV6);
  }

  template <typename Bind>
  Status UpdateSite(const char* sql, std::string_view site_id, Bind bind) {
    if (!ValidateId("site_id", site_id).ok())
      return NotFoundError("no site " + std::string(site_id));
    std::lock_guard<std::mutex> lock(mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto st, db_->Prepare(sql));
    st->BindText(1, site_id);
    bind(st.get());
    OUTPOST_RETURN_IF_ERROR(st->Run());
    if (db_->Changes() == 0) return NotFoundError("no site " + std::string(site_id));
    return Status::Ok();
  }

  // NotFound unless the site exists and belongs to `tenant`.
  Status CheckTenantLocked(std::string_view tenant, std::string_view site_id) {
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("SELECT 1 FROM sites WHERE site_id = ?1 AND tenant = ?2"));
    st->BindText(1, site_id);
    st->BindText(2, tenant);
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return NotFoundError("no site " + std::string(site_id));
    return Status::Ok();
  }

  Result<std::pair<uint64_t, std::string>> AuditHeadLocked(std::string_view site_id,
                                                           std::string_view node_id) {
    OUTPOST_ASSIGN_OR_RETURN(
        auto st,
        db_->Prepare("SELECT seq, hash FROM audit_heads WHERE site_id = ?1 AND node_id = ?2"));
    st->BindText(1, site_id);
    st->BindText(2, node_id);
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return std::make_pair(uint64_t{0}, ZeroHash());
    return std::make_pair(static_cast<uint64_t>(st->ColumnInt(0)), std::string(st->ColumnText(1)));
  }

  // STORE.md §4 steps 2-6 inside the caller's transaction. kConflict and errors make the
  // caller roll back.
  Result<IngestResult> IngestLocked(const BatchKey& key, std::span<const HubRecord> records,
                                    const std::vector<std::string>& hashes,
                                    const std::optional<AuditSegment>& audit, int64_t now_ms) {
    OUTPOST_ASSIGN_OR_RETURN(std::string tenant, SiteTenantLocked(key.site_id));
    OUTPOST_ASSIGN_OR_RETURN(std::optional<IngestResult> stored_before,
                             StoredBatchLocked(key, records.size(), now_ms));
    if (stored_before) return *stored_before;
    if (audit) {
      OUTPOST_RETURN_IF_ERROR(AppendAuditLocked(key.site_id, *audit));
    }
    int64_t newest = INT64_MIN;
    OUTPOST_ASSIGN_OR_RETURN(IngestResult result,
                             InsertRecordsLocked(key, tenant, records, hashes, now_ms, &newest));
    if (result.outcome == IngestOutcome::kConflict) return result;
    OUTPOST_RETURN_IF_ERROR(InsertBatchLocked(key, now_ms));
    OUTPOST_RETURN_IF_ERROR(
        TouchLocked(key.site_id, now_ms, result.records_stored,
                    newest == INT64_MIN ? std::nullopt : std::optional<int64_t>(newest)));
    result.outcome = IngestOutcome::kStored;
    return result;
  }

  // The tenant of site `site_id`; NotFound when there is no such site.
  Result<std::string> SiteTenantLocked(const std::string& site_id) {
    OUTPOST_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT tenant FROM sites WHERE site_id = ?1"));
    st->BindText(1, site_id);
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return NotFoundError("no site " + site_id);
    return std::string(st->ColumnText(0));
  }

  // The content digest stored for the batch `key` names (site, node, stream, first and last
  // seq); nothing when no such batch was stored.
  Result<std::optional<std::string>> StoredContentLocked(const BatchKey& key) {
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("SELECT content_sha256 FROM batches WHERE site_id = ?1 AND "
                              "node_id = ?2 AND stream = ?3 AND first_seq = ?4 AND "
                              "last_seq = ?5"));
    st->BindText(1, key.site_id);
    st->BindText(2, key.node_id);
    st->BindText(3, key.stream);
    st->BindInt(4, static_cast<int64_t>(key.first_seq));
    st->BindInt(5, static_cast<int64_t>(key.last_seq));
    OUTPOST_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(std::string(st->ColumnText(0)));
  }

  // The answer for a batch key stored before: kConflict when its content differs, else
  // kDuplicate of all `count` records, which counts as contact. Nothing for a new key.
  Result<std::optional<IngestResult>> StoredBatchLocked(const BatchKey& key, size_t count,
                                                        int64_t now_ms) {
    OUTPOST_ASSIGN_OR_RETURN(std::optional<std::string> stored, StoredContentLocked(key));
    if (!stored.has_value()) return std::optional<IngestResult>();
    IngestResult result;
    if (*stored != key.content_sha256) {
      result.outcome = IngestOutcome::kConflict;
      return std::optional<IngestResult>(result);
    }
    result.outcome = IngestOutcome::kDuplicate;
    result.records_duplicate = count;
    OUTPOST_RETURN_IF_ERROR(TouchLocked(key.site_id, now_ms, 0, std::nullopt));
    return std::optional<IngestResult>(result);
  }

  // Moves the node's audit head from the segment's start to its end and appends its lines;
  // FailedPrecondition (audit_gap) when the stored head is not where the segment starts.
  Status AppendAuditLocked(const std::string& site_id, const AuditSegment& audit) {
    OUTPOST_ASSIGN_OR_RETURN(auto head, AuditHeadLocked(site_id, audit.node_id));
    if (head.first != audit.from_seq || head.second != audit.from_hash) {
      return ErrorWithReason(StatusCode::kFailedPrecondition, "audit_gap",
                             "the segment continues seq " + std::to_string(audit.from_seq) +
                                 " but the stored head of node " + audit.node_id + " is seq " +
                                 std::to_string(head.first));
    }
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("INSERT INTO audit_heads(site_id, node_id, seq, hash) VALUES "
                              "(?1, ?2, ?3, ?4) ON CONFLICT(site_id, node_id) DO UPDATE "
                              "SET seq = excluded.seq, hash = excluded.hash"));
    st->BindText(1, site_id);
    st->BindText(2, audit.node_id);
    st->BindInt(3, static_cast<int64_t>(audit.to_seq));
    st->BindText(4, audit.to_hash);
    OUTPOST_RETURN_IF_ERROR(st->Run());
    OUTPOST_ASSIGN_OR_RETURN(
        auto line_st,
        db_->Prepare("INSERT INTO audit_lines(site_id, node_id, line) VALUES (?1, ?2, ?3)"));
    for (const std::string& line : SplitAuditLines(audit.lines)) {
      line_st->BindText(1, site_id);
      line_st->BindText(2, audit.node_id);
      line_st->BindText(3, line);
      OUTPOST_RETURN_IF_ERROR(line_st->Run());
    }
    return Status::Ok();
  }

  // Inserts each record whose key is new and counts the others, which must hold the same
  // content (`hashes`, one per record). The counts and, in *newest, the newest creation time
  // stored; kConflict with zero counts at the first record whose key holds other content.
  Result<IngestResult> InsertRecordsLocked(const BatchKey& key, const std::string& tenant,
                                           std::span<const HubRecord> records,
                                           const std::vector<std::string>& hashes, int64_t now_ms,
                                           int64_t* newest) {
    IngestResult result;
    OUTPOST_ASSIGN_OR_RETURN(
        auto ins, db_->Prepare("INSERT INTO records(tenant, site_id, node_id, stream, seq, "
                               "kind, created_ms, received_ms, payload, content_hash) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON "
                               "CONFLICT(site_id, node_id, stream, seq) DO NOTHING"));
    OUTPOST_ASSIGN_OR_RETURN(auto existing,
                             db_->Prepare("SELECT content_hash FROM records WHERE site_id = ?1 "
                                          "AND node_id = ?2 AND stream = ?3 AND seq = ?4"));
    for (size_t i = 0; i < records.size(); ++i) {
      const HubRecord& r = records[i];
      ins->BindText(1, tenant);
      ins->BindText(2, key.site_id);
      ins->BindText(3, key.node_id);
      ins->BindText(4, key.stream);
      ins->BindInt(5, static_cast<int64_t>(r.seq));
      ins->BindText(6, r.kind);
      ins->BindInt(7, r.created_ms);
      ins->BindInt(8, now_ms);
      ins->BindText(9, r.payload);
      ins->BindBlob(10, hashes[i]);
      OUTPOST_RETURN_IF_ERROR(ins->Run());
      if (db_->Changes() == 1) {
        ++result.records_stored;
        *newest = std::max(*newest, r.created_ms);
        continue;
      }
      existing->BindText(1, key.site_id);
      existing->BindText(2, key.node_id);
      existing->BindText(3, key.stream);
      existing->BindInt(4, static_cast<int64_t>(r.seq));
      OUTPOST_ASSIGN_OR_RETURN(bool row, existing->Step());
      bool same = row && existing->ColumnBlob(0) == hashes[i];
      existing->Reset();
      if (!same) {
        result.outcome = IngestOutcome::kConflict;
        result.records_stored = 0;
        result.records_duplicate = 0;
        return result;
      }
      ++result.records_duplicate;
    }
    return result;
  }

  // Inserts the batch row, which makes a later batch with this key a duplicate.
  Status InsertBatchLocked(const BatchKey& key, int64_t now_ms) {
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("INSERT INTO batches(site_id, node_id, stream, first_seq, "
                              "last_seq, content_sha256, received_ms) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    st->BindText(1, key.site_id);
    st->BindText(2, key.node_id);
    st->BindText(3, key.stream);
    st->BindInt(4, static_cast<int64_t>(key.first_seq));
    st->BindInt(5, static_cast<int64_t>(key.last_seq));
    st->BindText(6, key.content_sha256);
    st->BindInt(7, now_ms);
    return st->Run();
  }

  Status TouchLocked(const std::string& site_id, int64_t now_ms, uint64_t stored,
                     std::optional<int64_t> newest) {
    OUTPOST_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("UPDATE sites SET last_contact_ms = ?2, record_count = "
                              "record_count + ?3, newest_record_ms = CASE WHEN ?4 IS NULL "
                              "THEN newest_record_ms WHEN newest_record_ms IS NULL THEN ?4 "
                              "ELSE max(newest_record_ms, ?4) END WHERE site_id = ?1"));
    st->BindText(1, site_id);
    st->BindInt(2, now_ms);
    st->BindInt(3, static_cast<int64_t>(stored));
    if (newest) {
      st->BindInt(4, *newest);
    } else {
      st->BindNull(4);
    }
    return st->Run();
  }

  std::mutex mu_;  // guards db_ and every statement on it
  std::unique_ptr<Db> db_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(auto db, Db::Open(path, sqlite::DbOptions{.create = true}));
  auto store = std::make_unique<SqliteStore>(std::move(db));
  OUTPOST_RETURN_IF_ERROR(store->Init().WithContext("opening hub store " + path));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace outpost::hub::internal
