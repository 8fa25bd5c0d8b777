// The PostgreSQL engine of hub/store.h (STORE.md): the only file of Outpost that includes
// libpq-fe.h.
//
// A small pool of connections (created on demand, up to kMaxConnections); every statement is
// parameterised (PQexecParams), never spliced. Ingest sends a batch's records as binary
// arrays to one INSERT ... SELECT FROM unnest(...), in one pipeline of statements prepared
// once per connection, so a batch costs two round trips and no parsing or planning. SQLSTATEs
// become Status codes in FromPg() and nowhere else:
//   class 08, 57P0x (connection, shutdown)  -> kUnavailable (retry the call)
//   class 40 (serialization, deadlock)      -> kAborted (retried here, then returned)
//   23514 (a row outside its partition)     -> kAborted (the same: STORE.md section 8)
//   class 53 (disk full, out of memory)     -> kResourceExhausted
//   class 22 (data exception)               -> kInvalidArgument
//   23505 (unique violation)                -> kAlreadyExists
//   anything else                           -> kInternal
#include <libpq-fe.h>
#include <poll.h>

#include <time.h>
#include <algorithm>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/logging.h"
#include "hub/store.h"
#include "hub/store_internal.h"

namespace outpost::hub::internal {
namespace {

constexpr int kMaxConnections = 8;
constexpr int64_t kAdvisoryLock = 7077001;

// The record cursor (STORE.md section 3). An identity column hands out ids when rows are
// inserted, not when their transaction commits, so a reader paging with after_id could pass
// the id of a record whose transaction commits a moment later, and never meet it. Instead,
// a record's id is its inserting transaction's id (xid8, which PostgreSQL hands out in
// order) times kIdsPerTransaction plus the record's place in its batch, and a page holds
// only ids below kCursorHorizon: the oldest transaction id still running when the page's
// snapshot was taken, times kIdsPerTransaction. Every transaction below that horizon has
// ended (committed and visible to the page, or rolled back), and every transaction that
// can still commit has an id at or above it, so no record can later appear behind a
// cursor. Writers pay nothing for it: no lock, no extra statement, no extra round trip (a
// lock serialising id assignment with commit, or a commit log written under one, would
// also serialise the commits' WAL flushes of concurrent ingests). The price is on the
// reading side: a record shows up once every write transaction older than its own has
// ended, so a write transaction held open (in any database of the server) holds cursor
// pages back until it ends; it never makes them skip. Ids stay below 2^63 until the server
// has used 2^46 transaction ids.
constexpr int64_t kIdsPerTransaction = int64_t{1} << 17;
static_assert(kMaxRecordsPerIngest < kIdsPerTransaction, "a batch's places must fit");
static_assert(kIdsPerTransaction == 131072, "spelled 131072 in the SQL of this file");
constexpr const char* kCursorHorizon =
    "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 131072)";

// Type OIDs of PostgreSQL's built-in types (pg_type.dat; stable across versions).
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8ArrayOid = 1016;
constexpr Oid kTextArrayOid = 1009;
constexpr Oid kByteaArrayOid = 1001;

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE outpost_meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sites(
  site_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, region TEXT NOT NULL,
  created_ms BIGINT NOT NULL, credential_serial TEXT NOT NULL DEFAULT '',
  revoked INTEGER NOT NULL DEFAULT 0, last_contact_ms BIGINT NOT NULL DEFAULT 0,
  record_count BIGINT NOT NULL DEFAULT 0, newest_record_ms BIGINT);
CREATE INDEX sites_tenant ON sites(tenant, site_id);
CREATE TABLE enrolment_tokens(
  token_sha256 TEXT PRIMARY KEY, site_id TEXT NOT NULL, expires_ms BIGINT NOT NULL);
CREATE TABLE batches(
  site_id TEXT NOT NULL, node_id TEXT NOT NULL, stream TEXT NOT NULL,
  first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL, content_sha256 TEXT NOT NULL,
  received_ms BIGINT NOT NULL,
  PRIMARY KEY(site_id, node_id, stream, first_seq, last_seq));
CREATE TABLE records(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant TEXT NOT NULL,
  site_id TEXT NOT NULL, node_id TEXT NOT NULL, stream TEXT NOT NULL, seq BIGINT NOT NULL,
  kind TEXT NOT NULL, created_ms BIGINT NOT NULL, received_ms BIGINT NOT NULL,
  payload TEXT NOT NULL, content_hash BYTEA NOT NULL,
  UNIQUE(site_id, node_id, stream, seq));
CREATE INDEX records_tenant_created ON records(tenant, created_ms);
CREATE TABLE audit_heads(
  site_id TEXT NOT NULL, node_id TEXT NOT NULL, seq BIGINT NOT NULL, hash TEXT NOT NULL,
  PRIMARY KEY(site_id, node_id));
CREATE TABLE audit_lines(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, site_id TEXT NOT NULL,
  node_id TEXT NOT NULL, line TEXT NOT NULL);
CREATE INDEX audit_lines_site ON audit_lines(site_id, id);
CREATE TABLE node_status(
  site_id TEXT NOT NULL, node_id TEXT NOT NULL, reported_ms BIGINT NOT NULL,
  received_ms BIGINT NOT NULL, backlog_records BIGINT NOT NULL,
  backlog_bytes BIGINT NOT NULL, autonomy_days DOUBLE PRECISION, models_json TEXT NOT NULL,
  PRIMARY KEY(site_id, node_id));
CREATE TABLE models(
  name TEXT NOT NULL, version BIGINT NOT NULL, state TEXT NOT NULL,
  metrics_json TEXT NOT NULL, lineage_json TEXT NOT NULL, artifact_path TEXT NOT NULL,
  created_ms BIGINT NOT NULL, PRIMARY KEY(name, version));
INSERT INTO outpost_meta(name, value) VALUES ('schema_version', '1');
)sql";

// Schema version 2 (STORE.md section 1): what a node reports of its outbox.
constexpr const char* kMigrateV2 = R"sql(
ALTER TABLE node_status ADD COLUMN autonomy_basis TEXT NOT NULL DEFAULT '';
ALTER TABLE node_status ADD COLUMN outbox_account_json TEXT NOT NULL DEFAULT '';
UPDATE outpost_meta SET value = '2' WHERE name = 'schema_version';
)sql";

// Schema version 3 (STORE.md section 1): records.id is given by Ingest (the record cursor
// above), no longer by an identity. The ids the identity gave stay, below every id given
// since: a transaction took at most 100,000 of them (fewer than kIdsPerTransaction) and an
// ingest refused before it wrote anything at most one.
constexpr const char* kMigrateV3 = R"sql(
ALTER TABLE records ALTER COLUMN id DROP IDENTITY IF EXISTS;
UPDATE outpost_meta SET value = '3' WHERE name = 'schema_version';
)sql";

// Schema version 4 (STORE.md section 1): the scheduler lease (STORE.md section 7).
constexpr const char* kMigrateV4 = R"sql(
CREATE TABLE leases(name TEXT PRIMARY KEY, holder TEXT NOT NULL, generation BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL);
CREATE TABLE schedule_state(name TEXT PRIMARY KEY, value TEXT NOT NULL,
  generation BIGINT NOT NULL);
UPDATE outpost_meta SET value = '4' WHERE name = 'schema_version';
)sql";

// Schema version 5 (STORE.md sections 1 and 8): records partitioned by the day they were
// received, the record key's uniqueness in record_keys, the retention tables. The old rows
// are copied in by MigrateToV5, which makes their partitions first.
constexpr const char* kMigrateV5Tables = R"sql(
LOCK TABLE records IN ACCESS EXCLUSIVE MODE;
ALTER TABLE records RENAME TO records_v4;
ALTER INDEX records_pkey RENAME TO records_v4_pkey;
ALTER INDEX records_tenant_created RENAME TO records_v4_tenant_created;
CREATE TABLE records(
  id BIGINT NOT NULL, tenant TEXT NOT NULL, site_id TEXT NOT NULL, node_id TEXT NOT NULL,
  stream TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, created_ms BIGINT NOT NULL,
  received_ms BIGINT NOT NULL, payload TEXT NOT NULL, content_hash BYTEA NOT NULL,
  PRIMARY KEY(id, received_ms)) PARTITION BY RANGE (received_ms);
CREATE INDEX records_tenant_created ON records(tenant, created_ms);
CREATE TABLE records_default PARTITION OF records DEFAULT;
CREATE TABLE record_keys(
  site_id TEXT NOT NULL, node_id TEXT NOT NULL, stream TEXT NOT NULL, seq BIGINT NOT NULL,
  content_hash BYTEA NOT NULL, PRIMARY KEY(site_id, node_id, stream, seq));
CREATE SEQUENCE retention_export_ids;
CREATE TABLE retention_exports(
  id BIGINT PRIMARY KEY, file TEXT NOT NULL, unit TEXT NOT NULL, records BIGINT NOT NULL,
  sha256 TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE retention_settled(
  partition TEXT NOT NULL, kind TEXT NOT NULL, PRIMARY KEY(partition, kind));
)sql";
constexpr const char* kMigrateV5Rows = R"sql(
INSERT INTO records SELECT id, tenant, site_id, node_id, stream, seq, kind, created_ms,
  received_ms, payload, content_hash FROM records_v4;
INSERT INTO record_keys SELECT site_id, node_id, stream, seq, content_hash FROM records_v4;
DROP TABLE records_v4;
UPDATE outpost_meta SET value = '5' WHERE name = 'schema_version';
)sql";

// Schema version 6 (STORE.md sections 1 and 3): the indexes the dashboard's reads of one
// site and of one kind answer from (STORE.md section 6, reads at scale), the model file's
// bytes in the registry, and the release bundles. An index on the partitioned table is made
// on every partition, and on each one made later.
constexpr const char* kMigrateV6 = R"sql(
CREATE INDEX IF NOT EXISTS records_site_kind_created ON records(site_id, kind, created_ms);
CREATE INDEX IF NOT EXISTS records_tenant_kind_created ON records(tenant, kind, created_ms);
ALTER TABLE models ADD COLUMN IF NOT EXISTS artifact BYTEA;
CREATE TABLE IF NOT EXISTS release_bundles(name TEXT PRIMARY KEY, sha256 TEXT NOT NULL,
  size BIGINT NOT NULL, bytes BYTEA NOT NULL, created_ms BIGINT NOT NULL);
UPDATE outpost_meta SET value = '6' WHERE name = 'schema_version';
)sql";

// Schema version 7 (STORE.md section 3): the rollouts of releases (hub/rollout.h).
constexpr const char* kMigrateV7 = R"sql(
CREATE TABLE IF NOT EXISTS rollouts(model TEXT NOT NULL, model_version BIGINT NOT NULL,
  tenant TEXT NOT NULL, doc TEXT NOT NULL, revision BIGINT NOT NULL,
  created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, PRIMARY KEY (model, model_version));
CREATE INDEX IF NOT EXISTS rollouts_tenant_created ON rollouts(tenant, created_ms);
UPDATE outpost_meta SET value = '7' WHERE name = 'schema_version';
)sql";

// Schema version 8 (STORE.md section 3): the hub's own audit lines of every hub.
constexpr const char* kMigrateV8 = R"sql(
CREATE TABLE IF NOT EXISTS hub_audit(id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  time_ms BIGINT NOT NULL, tenant TEXT NOT NULL, event TEXT NOT NULL, line TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS hub_audit_tenant ON hub_audit(tenant, id);
UPDATE outpost_meta SET value = '8' WHERE name = 'schema_version';
)sql";

// Schema version 9 (STORE.md sections 1 and 8): when a key's record was removed, so that
// keys past their window can be pruned. The column has no default: nothing is rewritten.
constexpr const char* kMigrateV9 = R"sql(
ALTER TABLE record_keys ADD COLUMN IF NOT EXISTS expired_ms BIGINT;
CREATE INDEX IF NOT EXISTS record_keys_expired ON record_keys(expired_ms)
  WHERE expired_ms IS NOT NULL;
UPDATE outpost_meta SET value = '9' WHERE name = 'schema_version';
)sql";

constexpr const char* kRolloutColumns =
    "model, model_version, tenant, doc, revision, created_ms, updated_ms";

// Partitions (STORE.md section 8): one per UTC day of received_ms, between 2000 and 2100
// (other days go to records_default).
constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kFirstPartitionDay = 10'957;  // 2000-01-01
constexpr int64_t kEndPartitionDay = 47'482;    // 2100-01-01
// Makers of partitions wait on each other (STORE.md section 8).
constexpr int64_t kPartitionLock = 7077002;
// One retention pass at a time across hubs.
constexpr int64_t kRetentionLock = 7077003;
// The columns of an exported record, in HubRecord order, then the content hash in hex.
constexpr const char* kExportColumns =
    "id, tenant, site_id, node_id, stream, seq, kind, created_ms, received_ms, payload, "
    "encode(content_hash, 'hex')";

// STORE.md section 7: one upsert on the database's clock; a row only when the caller holds
// the lease afterwards. $3 is the ttl; the conflict's `now` is the new expiry less the ttl.
constexpr const char* kAcquireLease =
    "INSERT INTO leases(name, holder, generation, expires_ms) VALUES ($1, $2, 1, "
    "(extract(epoch FROM clock_timestamp()) * 1000)::bigint + $3) ON CONFLICT (name) DO "
    "UPDATE SET holder = excluded.holder, generation = leases.generation + CASE WHEN "
    "leases.holder = excluded.holder THEN 0 ELSE 1 END, expires_ms = excluded.expires_ms "
    "WHERE leases.holder = excluded.holder OR leases.expires_ms <= excluded.expires_ms - $3 "
    "RETURNING holder, generation, expires_ms";

// STORE.md section 7: a state written only while the writer's lease row is unchanged. FOR
// SHARE holds a takeover of the lease until this write has committed, and sees one that
// committed first, so the next holder reads the state after it took the lease.
constexpr const char* kPutScheduleState =
    "INSERT INTO schedule_state(name, value, generation) SELECT $1, $2, $5 WHERE EXISTS "
    "(SELECT 1 FROM leases WHERE name = $3 AND holder = $4 AND generation = $5 FOR SHARE) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value, generation = excluded.generation";

constexpr const char* kSiteColumns =
    "site_id, tenant, region, created_ms, credential_serial, revoked, last_contact_ms";

void IgnoreNotice(void*, const char*) {}

// One parameter of PQexecParams: text (format 0, type inferred or given) or binary.
struct Param {
  std::string value;
  bool binary = false;
  Oid type = 0;
  bool is_null = false;
};
Param Text(std::string_view v) { return Param{.value = std::string(v)}; }
Param Int(int64_t v) { return Param{.value = std::to_string(v), .type = kInt8Oid}; }

// A one-dimensional array in PostgreSQL's binary array format (array_send), every integer
// big-endian: ndim, has-null flag, element type, then length and lower bound, then each
// element as length + bytes.
class BinaryArray {
 public:
  BinaryArray(Oid element_type, size_t count) {
    PutU32BE(buf_, count == 0 ? 0 : 1);
    PutU32BE(buf_, 0);
    PutU32BE(buf_, element_type);
    if (count > 0) {
      PutU32BE(buf_, static_cast<uint32_t>(count));
      PutU32BE(buf_, 1);
    }
  }
  void AddInt(int64_t v) {
    PutU32BE(buf_, 8);
    PutU64BE(buf_, static_cast<uint64_t>(v));
  }
  void AddBytes(std::string_view v) {
    PutU32BE(buf_, static_cast<uint32_t>(v.size()));
    buf_.append(v);
  }
  Param ToParam(Oid array_type) && {
    return Param{.value = std::move(buf_), .binary = true, .type = array_type};
  }

 private:
  std::string buf_;
};

// Owns a PGresult.
class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  ~PgResult() {
    if (r_ != nullptr) PQclear(r_);
  }
  PgResult(PgResult&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  PgResult& operator=(PgResult&& o) noexcept {
    if (this != &o) {
      if (r_ != nullptr) PQclear(r_);
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  PGresult* raw() const { return r_; }
  int rows() const { return PQntuples(r_); }
  int64_t affected() const {
    const char* s = PQcmdTuples(r_);
    return (s == nullptr || *s == '\0') ? 0 : std::strtoll(s, nullptr, 10);
  }
  bool IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string GetText(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
  }
  int64_t GetInt(int row, int col) const {
    return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10);
  }
  double GetDouble(int row, int col) const {
    return std::strtod(PQgetvalue(r_, row, col), nullptr);
  }

 private:
  PGresult* r_;
};

Status FromPg(PGconn* conn, PGresult* res, std::string_view context) {
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = res != nullptr ? PQresultErrorMessage(res) : PQerrorMessage(conn);
  if (message.empty()) message = PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  std::string text = std::string(context) + ": " + message;
  std::string_view code = state != nullptr ? state : "";
  if (code.empty() || code.starts_with("08") || code.starts_with("57P")) {
    return UnavailableError(text);
  }
  if (code.starts_with("40")) return AbortedError(text);
  // The schema has no CHECK constraint: this is a partition's, met by an insert that was
  // routed to records_default before a partition of its day was attached (STORE.md section
  // 8). Run again, the statement routes the row to the new partition.
  if (code == "23514") return AbortedError(text);
  if (code.starts_with("53")) return ResourceExhaustedError(text);
  if (code.starts_with("22")) return InvalidArgumentError(text);
  if (code == "23505") return AlreadyExistsError(text);
  return InternalError(text + " (SQLSTATE " + std::string(code) + ")");
}

// Runs constant schema text (no parameters) in one simple-protocol call.
Status ExecSchema(PGconn* conn, const char* sql, const char* what) {
  PGresult* raw = PQexec(conn, sql);
  PgResult res(raw);
  if (raw == nullptr || PQresultStatus(raw) != PGRES_COMMAND_OK) return FromPg(conn, raw, what);
  return Status::Ok();
}

// libpq's parallel arrays for a statement's parameters (the values point into `params`,
// which must outlive them).
struct ParamArrays {
  explicit ParamArrays(const std::vector<Param>& params)
      : values(params.size()),
        lengths(params.size()),
        formats(params.size()),
        types(params.size()) {
    for (size_t i = 0; i < params.size(); ++i) {
      values[i] = params[i].is_null ? nullptr : params[i].value.data();
      lengths[i] = static_cast<int>(params[i].value.size());
      formats[i] = params[i].binary ? 1 : 0;
      types[i] = params[i].type;
    }
  }
  int count() const { return static_cast<int>(values.size()); }
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  std::vector<Oid> types;
};

// One server connection and the statements prepared on it (a pipeline's statements are
// prepared on first use and executed by name after that: the server parses and plans each
// once per connection instead of once per call). Prepared statements live as long as the
// connection; they are not transactional, so a rolled-back transaction keeps them.
struct Session {
  explicit Session(PGconn* c) : conn(c) {}
  ~Session() { PQfinish(conn); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  PGconn* conn;
  std::unordered_map<std::string, std::string> prepared;  // SQL text -> statement name
  int64_t names_given = 0;  // statement names are outpost_0, outpost_1, ... in this session
};

// A pooled connection, checked out for one call; returned (or closed when broken) when
// destroyed.
class Pool;
class Conn {
 public:
  Conn(Pool* pool, std::unique_ptr<Session> session)
      : pool_(pool), session_(std::move(session)), conn_(session_->conn) {}
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  Result<PgResult> Exec(std::string_view sql, const std::vector<Param>& params = {}) {
    const ParamArrays a(params);
    std::string text(sql);
    PgResult res(PQexecParams(conn_, text.c_str(), a.count(), a.types.data(), a.values.data(),
                              a.lengths.data(), a.formats.data(),
                              /*resultFormat=*/0));
    PGresult* raw = res.raw();
    ExecStatusType st = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
    if (PQstatus(conn_) != CONNECTION_OK) broken_ = true;
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    return FromPg(conn_, raw, "running \"" + text + "\"");
  }

  // One statement of a pipeline.
  struct Query {
    std::string sql;
    std::vector<Param> params;
  };
  // Sends every query at once (libpq pipeline mode: one round trip) and returns each one's
  // result in order. After a statement fails, the later ones answer Aborted ("pipeline
  // aborted"). The outer Result fails only when the connection broke.
  Result<std::vector<Result<PgResult>>> Pipeline(const std::vector<Query>& queries) {
    if (PQenterPipelineMode(conn_) != 1) {
      broken_ = true;
      return UnavailableError("cannot enter pipeline mode: " + std::string(PQerrorMessage(conn_)));
    }
    // For each statement with parameters, the name it runs under, and whether this pipeline
    // prepares it first (its answer then comes before the statement's own).
    std::vector<std::string> names(queries.size());
    std::vector<bool> preparing(queries.size(), false);
    for (size_t i = 0; i < queries.size(); ++i) {
      const Query& q = queries[i];
      const ParamArrays a(q.params);
      int sent = 0;
      if (q.params.empty()) {
        sent = PQsendQueryParams(conn_, q.sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0);
      } else {
        auto known = session_->prepared.find(q.sql);
        if (known != session_->prepared.end()) {
          names[i] = known->second;
        } else {
          names[i] = "outpost_" + std::to_string(session_->names_given++);
          preparing[i] = true;
          sent = PQsendPrepare(conn_, names[i].c_str(), q.sql.c_str(), a.count(), a.types.data());
          if (sent != 1) break;
        }
        sent = PQsendQueryPrepared(conn_, names[i].c_str(), a.count(), a.values.data(),
                                   a.lengths.data(), a.formats.data(), /*resultFormat=*/0);
      }
      if (sent != 1) {
        broken_ = true;
        return UnavailableError("sending a pipeline: " + std::string(PQerrorMessage(conn_)));
      }
    }
    if (PQpipelineSync(conn_) != 1) {
      broken_ = true;
      return UnavailableError("sending a pipeline: " + std::string(PQerrorMessage(conn_)));
    }
    std::vector<Result<PgResult>> out;
    out.reserve(queries.size());
    for (size_t i = 0; i < queries.size(); ++i) {
      std::optional<Status> prepare_failed;
      if (preparing[i]) {
        OUTPOST_ASSIGN_OR_RETURN(Result<PgResult> prepared, NextPipelineResult(queries[i].sql));
        if (prepared.ok()) {
          session_->prepared.emplace(queries[i].sql, names[i]);
        } else {
          prepare_failed = prepared.status();
        }
      }
      OUTPOST_ASSIGN_OR_RETURN(Result<PgResult> res, NextPipelineResult(queries[i].sql));
      // A statement whose preparation failed answers with that failure, not "aborted".
      out.push_back(prepare_failed ? Result<PgResult>(*prepare_failed) : std::move(res));
    }
    PGresult* sync = PQgetResult(conn_);
    bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    if (sync != nullptr) PQclear(sync);
    if (!synced || PQexitPipelineMode(conn_) != 1) {
      broken_ = true;
      return UnavailableError("the pipeline did not end cleanly: " +
                              std::string(PQerrorMessage(conn_)));
    }
    return out;
  }

  // Runs one statement and hands each row to `row` as it arrives (libpq's single-row mode),
  // so a result of any size takes constant memory. Returns the rows handed over. A failure
  // of `row` stops the handing over (the rest is read and dropped) and is returned.
  Result<int64_t> Stream(const std::string& sql, const std::vector<Param>& params,
                         const std::function<Status(const PgResult&)>& row) {
    const ParamArrays a(params);
    if (PQsendQueryParams(conn_, sql.c_str(), a.count(), a.types.data(), a.values.data(),
                          a.lengths.data(), a.formats.data(), 0) != 1 ||
        PQsetSingleRowMode(conn_) != 1) {
      broken_ = true;
      return UnavailableError("sending a query: " + std::string(PQerrorMessage(conn_)));
    }
    Status failed;
    int64_t rows = 0;
    while (PGresult* raw = PQgetResult(conn_)) {
      PgResult res(raw);
      ExecStatusType st = PQresultStatus(raw);
      if (st == PGRES_SINGLE_TUPLE) {
        if (failed.ok()) failed = row(res);
        ++rows;
      } else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && failed.ok()) {
        if (PQstatus(conn_) != CONNECTION_OK) broken_ = true;
        failed = FromPg(conn_, raw, "running \"" + sql.substr(0, 57) + "...\"");
      }
    }
    if (!failed.ok()) return failed;
    return rows;
  }

  PGconn* raw() { return conn_; }
  void MarkBroken() { broken_ = true; }

 private:
  // The next answer of a pipeline and the null that ends it: the statement's result or its
  // error (Aborted when an earlier statement failed); the outer Result fails when the
  // connection broke or the answers are not what was sent.
  Result<Result<PgResult>> NextPipelineResult(const std::string& sql) {
    PGresult* raw = PQgetResult(conn_);
    if (raw == nullptr) {
      broken_ = true;
      return UnavailableError("the pipeline ended early: " + std::string(PQerrorMessage(conn_)));
    }
    PgResult res(raw);
    PGresult* end = PQgetResult(conn_);  // each statement's results end with a null
    if (end != nullptr) {
      PQclear(end);
      broken_ = true;
      return InternalError("a pipelined statement returned more than one result");
    }
    ExecStatusType st = PQresultStatus(raw);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Result<PgResult>(std::move(res));
    if (st == PGRES_PIPELINE_ABORTED) {
      return Result<PgResult>(AbortedError("pipeline aborted by an earlier statement"));
    }
    return Result<PgResult>(FromPg(conn_, raw, "running \"" + sql.substr(0, 57) + "...\""));
  }

  Pool* pool_;
  std::unique_ptr<Session> session_;
  PGconn* conn_;  // session_->conn
  bool broken_ = false;
};

class Pool {
 public:
  explicit Pool(std::string url) : url_(std::move(url)) {}
  Result<std::unique_ptr<Conn>> Acquire() {
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (true) {
        cv_.wait(lock, [&] { return !idle_.empty() || open_ < kMaxConnections; });
        if (idle_.empty()) break;
        std::unique_ptr<Session> s = std::move(idle_.back());
        idle_.pop_back();
        if (StillOpen(s->conn)) return std::make_unique<Conn>(this, std::move(s));
        // The server closed it while idle (a restart, an idle timeout): drop it.
        --open_;
      }
      ++open_;
    }
    Result<PGconn*> c = Connect();
    if (!c.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      --open_;
      cv_.notify_one();
      return c.status();
    }
    return std::make_unique<Conn>(this, std::make_unique<Session>(*c));
  }

  // An idle connection has nothing to read unless the server said goodbye (a FATAL
  // message, then EOF) or sent something unasked; either way it is not reused.
  static bool StillOpen(PGconn* c) {
    pollfd p{.fd = PQsocket(c), .events = POLLIN, .revents = 0};
    if (p.fd < 0) return false;
    return ::poll(&p, 1, 0) == 0 && PQstatus(c) == CONNECTION_OK;
  }

  void Release(std::unique_ptr<Session> s, bool broken) {
    std::lock_guard<std::mutex> lock(mu_);
    PGconn* c = s->conn;
    if (broken || PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE) {
      --open_;  // s closes it
    } else {
      idle_.push_back(std::move(s));
    }
    cv_.notify_one();
  }

 private:
  Result<PGconn*> Connect() {
    const char* keys[] = {"connect_timeout", "dbname", "fallback_application_name", nullptr};
    const char* values[] = {"10", url_.c_str(), "outpost-hub", nullptr};
    PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    if (c == nullptr) return ResourceExhaustedError("libpq could not allocate a connection");
    if (PQstatus(c) != CONNECTION_OK) {
      std::string message = PQerrorMessage(c);
      PQfinish(c);
      while (!message.empty() && message.back() == '\n') message.pop_back();
      return UnavailableError("cannot connect to PostgreSQL: " + message);
    }
    PQsetNoticeProcessor(c, IgnoreNotice, nullptr);
    PGresult* r = PQexec(c, "SET synchronous_commit = on; SET client_encoding = 'UTF8'");
    bool ok = r != nullptr && PQresultStatus(r) == PGRES_COMMAND_OK;
    Status s = ok ? Status::Ok() : FromPg(c, r, "setting up a connection");
    if (r != nullptr) PQclear(r);
    if (!ok) {
      PQfinish(c);
      return s;
    }
    return c;
  }

  const std::string url_;
  std::mutex mu_;  // guards idle_ and open_
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Session>> idle_;
  int open_ = 0;  // connections that exist: idle or checked out
};

Conn::~Conn() { pool_->Release(std::move(session_), broken_); }

RolloutRow ReadRollout(const PgResult& r, int row) {
  return RolloutRow{.model = r.GetText(row, 0),
                    .model_version = r.GetInt(row, 1),
                    .tenant = r.GetText(row, 2),
                    .doc = r.GetText(row, 3),
                    .revision = r.GetInt(row, 4),
                    .created_ms = r.GetInt(row, 5),
                    .updated_ms = r.GetInt(row, 6)};
}

Site ReadSite(const PgResult& r, int row) {
  Site s;
  s.site_id = r.GetText(row, 0);
  s.tenant = r.GetText(row, 1);
  s.region = r.GetText(row, 2);
  s.created_ms = r.GetInt(row, 3);
  s.credential_serial = r.GetText(row, 4);
  s.revoked = r.GetInt(row, 5) != 0;
  s.last_contact_ms = r.GetInt(row, 6);
  return s;
}

std::vector<Param> ToParams(const std::vector<SqlParam>& params) {
  std::vector<Param> out;
  out.reserve(params.size());
  for (const SqlParam& p : params) out.push_back(p.is_int ? Int(p.int_value) : Text(p.text));
  return out;
}

std::string PgPlaceholder(int n, bool is_int) {
  return "$" + std::to_string(n) + (is_int ? "::bigint" : "::text");
}

// How PostgreSQL spells the store's queries.
const SqlDialect& PgDialect() {
  static const SqlDialect* const dialect =
      new SqlDialect{.placeholder = PgPlaceholder, .id_below = kCursorHorizon};
  return *dialect;
}

// ---------------------------------------------------------------------------------------
// Partitions (STORE.md section 8).

// The UTC day of a Unix ms (floor, also below 0).
int64_t DayOf(int64_t ms) {
  int64_t day = ms / kDayMs;
  return (ms % kDayMs < 0) ? day - 1 : day;
}

// "records_pYYYYMMDD" of a day within [kFirstPartitionDay, kEndPartitionDay).
std::string PartitionName(int64_t day) {
  time_t t = static_cast<time_t>(day * 86'400);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "records_p%Y%m%d", &tm);
  return buf;
}

// The day of a partition's name; nullopt for records_default or a name of another shape.
std::optional<int64_t> PartitionDay(std::string_view name) {
  constexpr std::string_view kPrefix = "records_p";
  if (!name.starts_with(kPrefix) || name.size() != kPrefix.size() + 8) return std::nullopt;
  std::string digits(name.substr(kPrefix.size()));
  if (digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  struct tm tm {};
  tm.tm_year = std::stoi(digits.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(digits.substr(4, 2)) - 1;
  tm.tm_mday = std::stoi(digits.substr(6, 2));
  int64_t day = static_cast<int64_t>(timegm(&tm)) / 86'400;
  if (PartitionName(day) != name) return std::nullopt;
  return day;
}

// Makes the partition of `day` unless it exists, moving the rows of its range out of the
// default partition, in the caller's transaction (which holds kPartitionLock).
Status MakePartition(Conn& c, int64_t day) {
  std::string name = PartitionName(day);
  // pg_class read with the statement's snapshot, which sees a partition that another
  // transaction made and committed while this one waited for kPartitionLock (to_regclass
  // reads a cache that a session refreshes only when it takes a lock on a table).
  OUTPOST_ASSIGN_OR_RETURN(
      auto r, c.Exec("SELECT count(*) FROM pg_class WHERE relname = $1 AND relnamespace = "
                     "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
                     {Text(name)}));
  if (r.GetInt(0, 0) != 0) return Status::Ok();
  // The name is made of digits and the bounds are integers: nothing here comes from input.
  std::string lo = std::to_string(day * kDayMs);
  std::string hi = std::to_string((day + 1) * kDayMs);
  std::string sql = "LOCK TABLE records_default IN EXCLUSIVE MODE; CREATE TABLE " + name +
                    " (LIKE records INCLUDING DEFAULTS); WITH m AS (DELETE FROM "
                    "records_default WHERE received_ms >= " +
                    lo + " AND received_ms < " + hi + " RETURNING *) INSERT INTO " + name +
                    " SELECT * FROM m; ALTER TABLE "
                    "records ATTACH PARTITION " +
                    name + " FOR VALUES FROM (" + lo + ") TO (" + hi + ")";
  return ExecSchema(c.raw(), sql.c_str(), "making a partition of records");
}

// Schema version 4 to 5 (STORE.md section 1), in Init's transaction: the partitioned table,
// a partition for each day the old rows were received on, the rows, their keys.
Status MigrateToV5(Conn& c) {
  OUTPOST_RETURN_IF_ERROR(ExecSchema(c.raw(), kMigrateV5Tables, "migrating the hub schema to 5"));
  OUTPOST_ASSIGN_OR_RETURN(
      auto days,
      c.Exec("SELECT DISTINCT received_ms / $1 FROM records_v4 WHERE received_ms >= "
             "$2 AND received_ms < $3",
             {Int(kDayMs), Int(kFirstPartitionDay * kDayMs), Int(kEndPartitionDay * kDayMs)}));
  for (int i = 0; i < days.rows(); ++i) {
    OUTPOST_RETURN_IF_ERROR(MakePartition(c, days.GetInt(i, 0)));
  }
  return ExecSchema(c.raw(), kMigrateV5Rows, "migrating the hub schema to 5");
}

// ---------------------------------------------------------------------------------------
// Retention (STORE.md section 8).

// now - retention, the received_ms below which a kind's records are expired; INT64_MIN for
// a kind kept forever.
int64_t Cutoff(int64_t now_ms, int64_t retention_ms) {
  if (retention_ms == INT64_MAX) return INT64_MIN;
  int64_t out = 0;
  if (__builtin_sub_overflow(now_ms, retention_ms, &out)) return INT64_MIN;
  return out;
}

struct Cutoffs {
  std::vector<std::string> kinds;  // the kinds the policy names
  std::vector<int64_t> cutoffs;    // theirs
  int64_t other = INT64_MIN;       // every other kind's (the default)
  int64_t max = INT64_MIN;         // the largest: nothing received at or after it expired
  int64_t today = 0;               // DayOf(now)
  int64_t now = 0;                 // the pass's clock
};

Cutoffs CutoffsOf(const RetentionPolicy& policy, int64_t now_ms) {
  Cutoffs out;
  out.today = DayOf(now_ms);
  out.now = now_ms;
  for (const auto& [kind, ms] : policy.kinds) {
    out.kinds.push_back(kind);
    out.cutoffs.push_back(Cutoff(now_ms, ms));
    out.max = std::max(out.max, out.cutoffs.back());
  }
  if (policy.default_ms) out.other = Cutoff(now_ms, *policy.default_ms);
  out.max = std::max(out.max, out.other);
  return out;
}

Param TextArray(const std::vector<std::string>& values) {
  BinaryArray arr(kTextOid, values.size());
  for (const std::string& v : values) arr.AddBytes(v);
  return std::move(arr).ToParam(kTextArrayOid);
}

Param IntArray(const std::vector<int64_t>& values) {
  BinaryArray arr(kInt8Oid, values.size());
  for (int64_t v : values) arr.AddInt(v);
  return std::move(arr).ToParam(kInt8ArrayOid);
}

// One export unit (STORE.md section 8): a whole partition dropped, or its expired rows
// deleted; the kinds (and "*" for the default) that nothing in the partition is left of.
struct ExportUnit {
  std::string partition;
  bool drop = false;
  std::string rows_sql;  // SELECT or DELETE ... RETURNING kExportColumns
  std::vector<Param> params;
  std::vector<std::string> settled;
};

// The unit that deletes a partition's expired rows, or nullopt when every kind that could
// have expired rows in [lo, hi) was settled by an earlier pass.
std::optional<ExportUnit> DeleteUnit(const std::string& partition, int64_t lo, int64_t hi,
                                     const Cutoffs& cut, const std::set<std::string>& settled) {
  ExportUnit u{.partition = partition};
  bool work = false;
  for (size_t i = 0; i < cut.kinds.size(); ++i) {
    if (cut.cutoffs[i] > lo && !settled.contains(cut.kinds[i])) work = true;
    if (cut.cutoffs[i] >= hi) u.settled.push_back(cut.kinds[i]);
  }
  if (cut.other > lo && !settled.contains("*")) work = true;
  if (cut.other >= hi) u.settled.push_back("*");
  if (!work) return std::nullopt;
  // The keys of exactly the deleted rows get expired_ms (STORE.md section 8, the record
  // keys' window) in the same statement.
  u.rows_sql = "WITH d AS (DELETE FROM " + partition +
               " r WHERE r.received_ms < COALESCE((SELECT x.c "
               "FROM unnest($1::text[], $2::bigint[]) AS x(k, c) WHERE x.k = r.kind), "
               "$3::bigint) RETURNING " +
               kExportColumns +
               "), m AS (UPDATE record_keys k SET expired_ms = $4 FROM d WHERE k.site_id = "
               "d.site_id AND k.node_id = d.node_id AND k.stream = d.stream AND k.seq = d.seq) "
               "SELECT * FROM d";
  u.params = {TextArray(cut.kinds), IntArray(cut.cutoffs), Int(cut.other), Int(cut.now)};
  return u;
}

HubRecord ExportedRecord(const PgResult& r) {
  return HubRecord{.site_id = r.GetText(0, 2),
                   .node_id = r.GetText(0, 3),
                   .stream = r.GetText(0, 4),
                   .seq = static_cast<uint64_t>(r.GetInt(0, 5)),
                   .kind = r.GetText(0, 6),
                   .created_ms = r.GetInt(0, 7),
                   .payload = r.GetText(0, 9),
                   .tenant = r.GetText(0, 1),
                   .received_ms = r.GetInt(0, 8),
                   .id = r.GetInt(0, 0)};
}

// What a unit's transaction did before COMMIT.
struct UnitOutcome {
  bool skipped = false;  // another pass holds kRetentionLock
  int64_t id = 0;        // the export's id; 0 = no file (nothing removed)
  bool begun = false;    // the exporter has unit `id` open or sealed
  int64_t records = 0;
  std::string sha256;
};

// Streams the unit's rows into the exporter, counting them per site.
Status ExportRows(Conn& c, const ExportUnit& u, RecordExporter& exporter, UnitOutcome& o,
                  std::map<std::string, int64_t>& per_site) {
  OUTPOST_ASSIGN_OR_RETURN(auto next, c.Exec("SELECT nextval('retention_export_ids')"));
  o.id = next.GetInt(0, 0);
  OUTPOST_RETURN_IF_ERROR(exporter.Begin(o.id));
  o.begun = true;
  OUTPOST_ASSIGN_OR_RETURN(o.records,
                           c.Stream(u.rows_sql, u.params, [&](const PgResult& row) -> Status {
                             HubRecord rec = ExportedRecord(row);
                             ++per_site[rec.site_id];
                             return exporter.Add(rec, row.GetText(0, 10));
                           }));
  return Status::Ok();
}

// The unit's transaction up to COMMIT (STORE.md section 8, steps 1 and 2).
Status UnitBody(Conn& c, const ExportUnit& u, RecordExporter& exporter, int64_t now_ms,
                UnitOutcome& o) {
  OUTPOST_RETURN_IF_ERROR(c.Exec("SET LOCAL lock_timeout = '10s'").status());
  OUTPOST_ASSIGN_OR_RETURN(auto lock,
                           c.Exec("SELECT pg_try_advisory_xact_lock($1)", {Int(kRetentionLock)}));
  if (lock.GetText(0, 0) != "t") {
    o.skipped = true;
    return Status::Ok();
  }
  if (u.drop) {
    OUTPOST_RETURN_IF_ERROR(c.Exec("LOCK TABLE " + u.partition + " IN SHARE MODE").status());
  }
  std::map<std::string, int64_t> per_site;
  OUTPOST_RETURN_IF_ERROR(ExportRows(c, u, exporter, o, per_site));
  if (o.records == 0) {
    OUTPOST_RETURN_IF_ERROR(exporter.Discard(o.id));
    o.begun = false;
    o.id = 0;
  } else {
    OUTPOST_ASSIGN_OR_RETURN(auto sealed, exporter.Seal());
    o.sha256 = sealed.second;
    OUTPOST_RETURN_IF_ERROR(
        c.Exec("INSERT INTO retention_exports(id, file, unit, records, sha256, created_ms) "
               "VALUES ($1, $2, $3, $4, $5, $6)",
               {Int(o.id), Text(sealed.first), Text(u.partition), Int(o.records), Text(o.sha256),
                Int(now_ms)})
            .status());
    std::vector<std::string> sites;
    std::vector<int64_t> counts;
    for (const auto& [site, n] : per_site) {
      sites.push_back(site);
      counts.push_back(n);
    }
    OUTPOST_RETURN_IF_ERROR(
        c.Exec("UPDATE sites SET record_count = record_count - c.n FROM unnest($1::text[], "
               "$2::bigint[]) AS c(site_id, n) WHERE sites.site_id = c.site_id",
               {TextArray(sites), IntArray(counts)})
            .status());
  }
  if (u.drop) {
    // DROP locks all of records: ingests and reads queue behind it while it waits, so it
    // waits little (STORE.md section 8), and the next pass tries again.
    // The keys of the partition's records get expired_ms (STORE.md section 8, the record
    // keys' window), committed with the drop.
    OUTPOST_RETURN_IF_ERROR(
        c.Exec("UPDATE record_keys k SET expired_ms = $1 FROM " + u.partition +
                   " r WHERE k.site_id = r.site_id AND k.node_id = r.node_id AND k.stream = "
                   "r.stream AND k.seq = r.seq",
               {Int(now_ms)})
            .status());
    OUTPOST_RETURN_IF_ERROR(c.Exec("SET LOCAL lock_timeout = '2s'").status());
    OUTPOST_RETURN_IF_ERROR(c.Exec("DROP TABLE " + u.partition).status());
    return c.Exec("DELETE FROM retention_settled WHERE partition = $1", {Text(u.partition)})
        .status();
  }
  return c
      .Exec(
          "INSERT INTO retention_settled(partition, kind) SELECT $1, k FROM "
          "unnest($2::text[]) AS k ON CONFLICT DO NOTHING",
          {Text(u.partition), TextArray(u.settled)})
      .status();
}

// ---------------------------------------------------------------------------------------
// Ingest (STORE.md §4).

// Rolls the open transaction back; a connection that cannot is closed instead of reused.
void RollbackOrBreak(Conn& c) {
  if (!c.Exec("ROLLBACK").ok()) c.MarkBroken();
}

// The statements of one ingest's pipeline and where their answers are.
struct IngestPipeline {
  std::vector<Conn::Query> queries;
  size_t cas_index = 0;      // the audit head's CAS, followed by the audit lines (with an audit)
  size_t records_index = 0;  // the records with the site's counters
};

// Appends the compare-and-set of the node's audit head and the insert of the segment's lines.
void AppendAuditQueries(std::vector<Conn::Query>& queries, const BatchKey& key,
                        const AuditSegment& audit) {
  bool from_zero = audit.from_seq == 0 && audit.from_hash == ZeroHash();
  if (from_zero) {
    queries.push_back(
        {"INSERT INTO audit_heads(site_id, node_id, seq, hash) VALUES ($1, $2, $3, $4) ON "
         "CONFLICT(site_id, node_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash "
         "WHERE audit_heads.seq = 0 AND audit_heads.hash = $5",
         {Text(key.site_id), Text(audit.node_id), Int(static_cast<int64_t>(audit.to_seq)),
          Text(audit.to_hash), Text(ZeroHash())}});
  } else {
    queries.push_back(
        {"UPDATE audit_heads SET seq = $3, hash = $4 WHERE site_id = $1 AND node_id = $2 "
         "AND seq = $5 AND hash = $6",
         {Text(key.site_id), Text(audit.node_id), Int(static_cast<int64_t>(audit.to_seq)),
          Text(audit.to_hash), Int(static_cast<int64_t>(audit.from_seq)), Text(audit.from_hash)}});
  }
  std::vector<std::string> lines = SplitAuditLines(audit.lines);
  BinaryArray arr(kTextOid, lines.size());
  for (const std::string& l : lines) arr.AddBytes(l);
  queries.push_back(
      {"INSERT INTO audit_lines(site_id, node_id, line) SELECT $1, $2, t.line FROM "
       "unnest($3::text[]) WITH ORDINALITY AS t(line, n) ORDER BY t.n",
       {Text(key.site_id), Text(audit.node_id), std::move(arr).ToParam(kTextArrayOid)}});
}

// The ingest's pipeline: BEGIN, the batch row, the audit CAS and lines, the records with the
// site's counters.
IngestPipeline BuildIngestPipeline(const BatchKey& key, size_t count,
                                   const std::vector<Param>& insert_params,
                                   const std::optional<AuditSegment>& audit, int64_t now_ms) {
  IngestPipeline pipeline;
  std::vector<Conn::Query>& queries = pipeline.queries;
  queries.push_back({"BEGIN", {}});
  // The site's tenant and the batch row. The batch row is written first so that
  // concurrent ingests of one key serialize on it.
  queries.push_back(
      {"WITH s AS (SELECT tenant FROM sites WHERE site_id = $1), "
       "b AS (INSERT INTO batches(site_id, node_id, stream, first_seq, last_seq, "
       "content_sha256, received_ms) SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 "
       "FROM s) ON CONFLICT DO NOTHING RETURNING 1) "
       "SELECT (SELECT tenant FROM s), (SELECT count(*) FROM b)",
       {Text(key.site_id), Text(key.node_id), Text(key.stream),
        Int(static_cast<int64_t>(key.first_seq)), Int(static_cast<int64_t>(key.last_seq)),
        Text(key.content_sha256), Int(now_ms)}});
  if (audit) {
    pipeline.cas_index = queries.size();
    AppendAuditQueries(queries, key, *audit);
  }
  // The record keys, then the records whose key was new (STORE.md section 8: the key's
  // uniqueness is record_keys', as records is partitioned; a NULL tenant, for a site that
  // does not exist, fails the statement; the batch row's answer says why), the site's
  // counters, and, only when some record was not inserted, what was there before: keys of
  // the statement's snapshot with the same or another content hash, each looked up by its
  // whole key (a join on the stream would let the planner read every key of the stream).
  pipeline.records_index = queries.size();
  std::vector<Param> records_params = insert_params;
  records_params.push_back(Int(static_cast<int64_t>(count)));
  queries.push_back(
      {"WITH t AS (SELECT * FROM unnest($5::bigint[], $6::text[], $7::bigint[], $8::text[], "
       "$9::bytea[]) WITH ORDINALITY AS t(seq, kind, created_ms, payload, h, n)), "
       "k AS (INSERT INTO record_keys(site_id, node_id, stream, seq, content_hash) SELECT $1, "
       "$2, $3, t.seq, t.h FROM t ON CONFLICT DO NOTHING RETURNING seq), "
       "ins AS (INSERT INTO records(id, tenant, site_id, node_id, stream, seq, kind, "
       "created_ms, received_ms, payload, content_hash) SELECT (SELECT "
       "pg_current_xact_id()::text::bigint * 131072) + t.n, (SELECT tenant FROM sites WHERE "
       "site_id = $1), $1, $2, $3, t.seq, t.kind, t.created_ms, $4, t.payload, t.h FROM t "
       "JOIN k ON k.seq = t.seq RETURNING created_ms), "
       "agg AS (SELECT count(*) AS n, max(created_ms) AS newest FROM ins), "
       "upd AS (UPDATE sites SET last_contact_ms = $4, record_count = record_count + "
       "(SELECT n FROM agg), newest_record_ms = GREATEST(newest_record_ms, (SELECT newest "
       "FROM agg)) WHERE site_id = $1), "
       "old AS (SELECT t.h, (SELECT r.content_hash FROM record_keys r WHERE r.site_id = $1 "
       "AND r.node_id = $2 AND r.stream = $3 AND r.seq = t.seq) AS h_before FROM t WHERE "
       "(SELECT n FROM agg) < $10) "
       "SELECT n, (SELECT count(*) FROM old WHERE h_before = h), (SELECT count(*) FROM old "
       "WHERE h_before <> h) FROM agg",
       records_params});
  return pipeline;
}

// The answer for a batch key that was stored before (or by a writer that committed
// meanwhile), once the transaction is rolled back: a duplicate, which counts as contact, when
// its content is the same, a conflict when not.
Result<IngestResult> AnswerStoredBatch(Conn& c, const BatchKey& key, size_t count, int64_t now_ms) {
  OUTPOST_ASSIGN_OR_RETURN(
      auto e,
      c.Exec("SELECT content_sha256 FROM batches WHERE site_id = $1 AND node_id = "
             "$2 AND stream = $3 AND first_seq = $4 AND last_seq = $5",
             {Text(key.site_id), Text(key.node_id), Text(key.stream),
              Int(static_cast<int64_t>(key.first_seq)), Int(static_cast<int64_t>(key.last_seq))}));
  if (e.rows() == 0) return AbortedError("batch row vanished; retry");
  if (e.GetText(0, 0) != key.content_sha256) {
    return IngestResult{.outcome = IngestOutcome::kConflict};
  }
  OUTPOST_RETURN_IF_ERROR(c.Exec("UPDATE sites SET last_contact_ms = $2 WHERE site_id = $1",
                                 {Text(key.site_id), Int(now_ms)}));
  return IngestResult{.outcome = IngestOutcome::kDuplicate, .records_duplicate = count};
}

// The audit statements' answers: their error, or audit_gap when the stored head was not the
// one the segment continues.
Status CheckAuditAnswers(const std::vector<Result<PgResult>>& results, size_t cas_index,
                         const AuditSegment& audit) {
  for (size_t i = cas_index; i < cas_index + 2; ++i) {
    if (!results[i].ok()) return results[i].status();
  }
  if (results[cas_index]->affected() != 1) {
    return ErrorWithReason(StatusCode::kFailedPrecondition, "audit_gap",
                           "the segment continues seq " + std::to_string(audit.from_seq) +
                               " but the stored head of node " + audit.node_id + " is elsewhere");
  }
  return Status::Ok();
}

// From the records statement's answer `ins`: a conflict (rolled back) when a record's key
// holds other content, else COMMIT and the counts of stored and duplicate records.
Result<IngestResult> FinishIngest(Conn& c, const BatchKey& key, size_t count, const PgResult& ins,
                                  const Param& seq_param, const Param& hash_param) {
  IngestResult result;
  result.records_stored = static_cast<uint64_t>(ins.GetInt(0, 0));
  uint64_t before_same = static_cast<uint64_t>(ins.GetInt(0, 1));
  uint64_t before_other = static_cast<uint64_t>(ins.GetInt(0, 2));
  if (before_other == 0 && result.records_stored + before_same < count) {
    // A record key was inserted by a writer that committed after this statement's
    // snapshot was taken: look again, now that it is visible.
    Result<PgResult> diff = c.Exec(
        "SELECT count(*) FROM unnest($4::bigint[], $5::bytea[]) AS t(seq, h) WHERE (SELECT "
        "r.content_hash FROM record_keys r WHERE r.site_id = $1 AND r.node_id = $2 AND "
        "r.stream = $3 AND r.seq = t.seq) <> t.h",
        {Text(key.site_id), Text(key.node_id), Text(key.stream), seq_param, hash_param});
    if (!diff.ok()) {
      RollbackOrBreak(c);
      return diff.status();
    }
    before_other = static_cast<uint64_t>(diff->GetInt(0, 0));
  }
  if (before_other > 0) {
    RollbackOrBreak(c);
    return IngestResult{.outcome = IngestOutcome::kConflict};
  }
  result.records_duplicate = count - result.records_stored;
  Result<PgResult> commit = c.Exec("COMMIT");
  if (!commit.ok()) {
    if (commit.status().code() == StatusCode::kAborted) return commit.status();
    // The outcome of a commit whose answer was lost is unknown: the caller retries the
    // whole call, which Ingest's idempotency makes safe.
    c.MarkBroken();
    return ErrorWithReason(StatusCode::kUnavailable, "commit_unknown",
                           std::string(commit.status().message()));
  }
  result.outcome = IngestOutcome::kStored;
  return result;
}

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(std::string url) : pool_(std::move(url)) {}

  std::string_view engine() const override { return "postgresql"; }

  Status Ping() override {
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    return c->Exec("SELECT 1", {}).status();
  }

  Status Init() {
    OUTPOST_RETURN_IF_ERROR(InitSchema());
    return MaintainPartitions(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
  }

  Status InitSchema() {
    bool rollback = false;
    return Transaction<bool>(
               [&](Conn& c, bool*) -> Result<bool> {
                 OUTPOST_RETURN_IF_ERROR(
                     c.Exec("SELECT pg_advisory_xact_lock($1)", {Int(kAdvisoryLock)}));
                 OUTPOST_ASSIGN_OR_RETURN(auto r,
                                          c.Exec("SELECT to_regclass('outpost_meta') IS NOT NULL, "
                                                 "to_regclass('sites') IS NOT NULL"));
                 bool has_meta = r.GetText(0, 0) == "t";
                 bool has_sites = r.GetText(0, 1) == "t";
                 if (!has_meta) {
                   if (has_sites) {
                     return ErrorWithReason(StatusCode::kDataLoss, "schema_unknown",
                                            "the database has a sites table but no outpost_meta");
                   }
                   // The schema is constant text without parameters: one simple-protocol call.
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kSchemaV1, "creating the hub schema"));
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV2, "migrating the hub schema to 2"));
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV3, "migrating the hub schema to 3"));
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV4, "migrating the hub schema to 4"));
                   OUTPOST_RETURN_IF_ERROR(MigrateToV5(c));
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV6, "migrating the hub schema to 6"));
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV7, "migrating the hub schema to 7"));
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV8, "migrating the hub schema to 8"));
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV9, "migrating the hub schema to 9"));
                   return true;
                 }
                 OUTPOST_ASSIGN_OR_RETURN(
                     auto v,
                     c.Exec("SELECT value FROM outpost_meta WHERE name = 'schema_version'"));
                 if (v.rows() == 0)
                   return ErrorWithReason(StatusCode::kDataLoss, "schema_unknown",
                                          "no schema_version row");
                 std::string value = v.GetText(0, 0);
                 char* end = nullptr;
                 long long version = std::strtoll(value.c_str(), &end, 10);
                 if (value.empty() || *end != '\0' || version < 1) {
                   return ErrorWithReason(StatusCode::kDataLoss, "schema_unknown",
                                          "schema_version \"" + value + "\"");
                 }
                 if (version > kSchemaVersion) {
                   return ErrorWithReason(StatusCode::kFailedPrecondition, "schema_too_new",
                                          "database schema version " + std::to_string(version) +
                                              ", this binary knows up to " +
                                              std::to_string(kSchemaVersion));
                 }
                 if (version == 1) {
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV2, "migrating the hub schema to 2"));
                 }
                 if (version <= 2) {
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV3, "migrating the hub schema to 3"));
                 }
                 if (version <= 3) {
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV4, "migrating the hub schema to 4"));
                 }
                 if (version <= 4) OUTPOST_RETURN_IF_ERROR(MigrateToV5(c));
                 if (version <= 5) {
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV6, "migrating the hub schema to 6"));
                 }
                 if (version <= 6) {
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV7, "migrating the hub schema to 7"));
                 }
                 if (version <= 7) {
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV8, "migrating the hub schema to 8"));
                 }
                 if (version <= 8) {
                   OUTPOST_RETURN_IF_ERROR(
                       ExecSchema(c.raw(), kMigrateV9, "migrating the hub schema to 9"));
                 }
                 return true;
               },
               &rollback)
        .status();
  }

  Status CreateSite(const Site& site) override {
    OUTPOST_RETURN_IF_ERROR(ValidateSite(site));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c->Exec("INSERT INTO sites(site_id, tenant, region, created_ms, "
                        "credential_serial, revoked, last_contact_ms) VALUES ($1, $2, $3, $4, "
                        "$5, $6, $7) ON CONFLICT DO NOTHING",
                        {Text(site.site_id), Text(site.tenant), Text(site.region),
                         Int(site.created_ms), Text(site.credential_serial),
                         Int(site.revoked ? 1 : 0), Int(site.last_contact_ms)}));
    if (r.affected() == 0) return AlreadyExistsError("site " + site.site_id + " exists");
    return Status::Ok();
  }

  Result<Site> GetSite(std::string_view site_id) override {
    if (!ValidateId("site_id", site_id).ok())
      return NotFoundError("no site " + std::string(site_id));

    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c->Exec(std::string("SELECT ") + kSiteColumns + " FROM sites WHERE site_id = $1",
                        {Text(site_id)}));
    if (r.rows() == 0) return NotFoundError("no site " + std::string(site_id));
    return ReadSite(r, 0);
  }

  Status SetCredential(std::string_view site_id, std::string_view serial) override {
    OUTPOST_RETURN_IF_ERROR(ValidateJson("serial", serial));
    if (serial.size() > kMaxIdBytes) return InvalidArgumentError("serial above 256 bytes");
    return UpdateSite("UPDATE sites SET credential_serial = $2 WHERE site_id = $1",
                      {Text(site_id), Text(serial)}, site_id);
  }

  Status RevokeSite(std::string_view site_id) override {
    return UpdateSite("UPDATE sites SET revoked = 1 WHERE site_id = $1", {Text(site_id)}, site_id);
  }

  Status TouchSite(std::string_view site_id, int64_t now_ms) override {
    return UpdateSite("UPDATE sites SET last_contact_ms = $2 WHERE site_id = $1",
                      {Text(site_id), Int(now_ms)}, site_id);
  }

  Status PutEnrolmentToken(const EnrolmentToken& token) override {
    OUTPOST_RETURN_IF_ERROR(ValidateId("token_sha256", token.token_sha256));
    OUTPOST_RETURN_IF_ERROR(ValidateId("site_id", token.site_id));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c->Exec("INSERT INTO enrolment_tokens(token_sha256, site_id, expires_ms) "
                        "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        {Text(token.token_sha256), Text(token.site_id), Int(token.expires_ms)}));
    if (r.affected() == 0) return AlreadyExistsError("enrolment token exists");
    return Status::Ok();
  }

  Result<EnrolmentToken> ConsumeEnrolmentToken(std::string_view token_sha256,
                                               int64_t now_ms) override {
    OUTPOST_RETURN_IF_ERROR(ValidateId("token_sha256", token_sha256).ok()
                                ? Status::Ok()
                                : NotFoundError("unknown or already used enrolment token"));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(auto r,
                             c->Exec("DELETE FROM enrolment_tokens WHERE token_sha256 = $1 AND "
                                     "expires_ms > $2 RETURNING token_sha256, site_id, expires_ms",
                                     {Text(token_sha256), Int(now_ms)}));
    if (r.rows() == 1) {
      return EnrolmentToken{.token_sha256 = r.GetText(0, 0),
                            .site_id = r.GetText(0, 1),
                            .expires_ms = r.GetInt(0, 2)};
    }
    OUTPOST_ASSIGN_OR_RETURN(
        auto check,
        c->Exec("SELECT 1 FROM enrolment_tokens WHERE token_sha256 = $1", {Text(token_sha256)}));
    if (check.rows() > 0) return DeadlineExceededError("enrolment token expired");
    return NotFoundError("unknown or already used enrolment token");
  }

  Result<IngestResult> Ingest(const BatchKey& key, std::span<const HubRecord> records,
                              const std::optional<AuditSegment>& audit, int64_t now_ms) override {
    OUTPOST_RETURN_IF_ERROR(ValidateIngest(key, records, audit));
    MaybeMaintainPartitions(now_ms);
    // The records' columns as binary arrays, built once for every attempt.
    BinaryArray seqs(kInt8Oid, records.size());
    BinaryArray kinds(kTextOid, records.size());
    BinaryArray created(kInt8Oid, records.size());
    BinaryArray payloads(kTextOid, records.size());
    BinaryArray hashes(kByteaOid, records.size());
    for (const HubRecord& r : records) {
      seqs.AddInt(static_cast<int64_t>(r.seq));
      kinds.AddBytes(r.kind);
      created.AddInt(r.created_ms);
      payloads.AddBytes(r.payload);
      hashes.AddBytes(RecordContentHash(r));
    }
    Param seq_param = std::move(seqs).ToParam(kInt8ArrayOid);
    Param hash_param = std::move(hashes).ToParam(kByteaArrayOid);
    std::vector<Param> insert_params = {Text(key.site_id),
                                        Text(key.node_id),
                                        Text(key.stream),
                                        Int(now_ms),
                                        seq_param,
                                        std::move(kinds).ToParam(kTextArrayOid),
                                        std::move(created).ToParam(kInt8ArrayOid),
                                        std::move(payloads).ToParam(kTextArrayOid),
                                        hash_param};
    Status last;
    for (int attempt = 0; attempt < kMaxTransactionAttempts; ++attempt) {
      OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
      Result<IngestResult> r =
          IngestOnce(*c, key, records.size(), insert_params, seq_param, hash_param, audit, now_ms);
      // Aborted: a concurrent writer; Unavailable before COMMIT: nothing was committed.
      // Either way the whole transaction runs again.
      if (!r.ok() && (r.status().code() == StatusCode::kAborted ||
                      (r.status().code() == StatusCode::kUnavailable &&
                       r.status().reason() != "commit_unknown"))) {
        last = r.status();
        continue;
      }
      return r;
    }
    return last;
  }

  Result<std::pair<uint64_t, std::string>> AuditHead(std::string_view site_id,
                                                     std::string_view node_id) override {
    if (!ValidateId("site_id", site_id).ok() || !ValidateId("node_id", node_id).ok()) {
      return std::make_pair(uint64_t{0}, ZeroHash());  // a head that cannot exist
    }

    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c->Exec("SELECT seq, hash FROM audit_heads WHERE site_id = $1 AND node_id = $2",
                        {Text(site_id), Text(node_id)}));
    if (r.rows() == 0) return std::make_pair(uint64_t{0}, ZeroHash());
    return std::make_pair(static_cast<uint64_t>(r.GetInt(0, 0)), r.GetText(0, 1));
  }

  Result<std::vector<std::string>> AuditLines(std::string_view tenant, std::string_view site_id,
                                              size_t limit) override {
    if (!ValidateId("tenant", tenant).ok() || !ValidateId("site_id", site_id).ok()) {
      return NotFoundError("no site " + std::string(site_id));
    }

    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(auto site,
                             c->Exec("SELECT 1 FROM sites WHERE site_id = $1 AND tenant = $2",
                                     {Text(site_id), Text(tenant)}));
    if (site.rows() == 0) return NotFoundError("no site " + std::string(site_id));
    OUTPOST_ASSIGN_OR_RETURN(
        auto r,
        c->Exec("SELECT line FROM audit_lines WHERE site_id = $1 ORDER BY id LIMIT $2",
                {Text(site_id), Int(static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)))}));
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.GetText(i, 0));
    return out;
  }

  Status PutNodeStatus(const NodeStatus& status, int64_t now_ms) override {
    OUTPOST_RETURN_IF_ERROR(ValidateNodeStatus(status));
    Param days = Param{.type = 701, .is_null = true};  // float8
    if (status.autonomy_days) {
      char buf[64];
      snprintf(buf, sizeof buf, "%.17g", *status.autonomy_days);
      days = Param{.value = buf, .type = 701};
    }
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    return c
        ->Exec(
            "INSERT INTO node_status(site_id, node_id, reported_ms, received_ms, "
            "backlog_records, backlog_bytes, autonomy_days, models_json, autonomy_basis, "
            "outbox_account_json) VALUES ($1, $2, "
            "$3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT(site_id, node_id) DO UPDATE SET "
            "reported_ms = excluded.reported_ms, received_ms = excluded.received_ms, "
            "backlog_records = excluded.backlog_records, backlog_bytes = "
            "excluded.backlog_bytes, autonomy_days = excluded.autonomy_days, models_json = "
            "excluded.models_json, autonomy_basis = excluded.autonomy_basis, "
            "outbox_account_json = excluded.outbox_account_json "
            "WHERE excluded.reported_ms >= node_status.reported_ms",
            {Text(status.site_id), Text(status.node_id), Int(status.reported_ms), Int(now_ms),
             Int(static_cast<int64_t>(status.backlog_records)),
             Int(static_cast<int64_t>(status.backlog_bytes)), days, Text(status.models_json),
             Text(status.autonomy_basis), Text(status.outbox_account_json)})
        .status();
  }

  Result<std::vector<SiteSummary>> ListSites(std::string_view tenant) override {
    OUTPOST_RETURN_IF_ERROR(ValidateId("tenant", tenant));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    // One snapshot for both reads.
    OUTPOST_RETURN_IF_ERROR(c->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    Result<std::vector<SiteSummary>> out = ListSitesIn(*c, tenant, std::nullopt);
    if (!c->Exec("COMMIT").ok()) c->MarkBroken();
    return out;
  }

  Result<SiteSummary> GetSiteSummary(std::string_view tenant, std::string_view site_id) override {
    OUTPOST_RETURN_IF_ERROR(ValidateId("tenant", tenant));
    if (!ValidateId("site_id", site_id).ok()) return SiteNotFound(site_id);
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_RETURN_IF_ERROR(c->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    Result<std::vector<SiteSummary>> out = ListSitesIn(*c, tenant, site_id);
    if (!c->Exec("COMMIT").ok()) c->MarkBroken();
    OUTPOST_RETURN_IF_ERROR(out.status());
    if (out->empty()) return SiteNotFound(site_id);
    return std::move(out->front());
  }

  Result<std::string> ExplainRecordQuery(const RecordQuery& query) override {
    OUTPOST_RETURN_IF_ERROR(ValidateRecordQuery(query));
    return Explain(BuildRecordQuery(query, PgDialect()));
  }

  Result<std::string> ExplainCountQuery(const CountQuery& query) override {
    OUTPOST_RETURN_IF_ERROR(ValidateCountQuery(query));
    return Explain(BuildCountQuery(query, PgDialect()));
  }

  Result<std::vector<HubRecord>> QueryRecords(const RecordQuery& query) override {
    OUTPOST_RETURN_IF_ERROR(ValidateRecordQuery(query));
    BuiltQuery q = BuildRecordQuery(query, PgDialect());
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(auto r, c->Exec(q.sql, ToParams(q.params)));
    std::vector<HubRecord> out;
    out.reserve(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
      HubRecord h;
      h.id = r.GetInt(i, 0);
      h.tenant = r.GetText(i, 1);
      h.site_id = r.GetText(i, 2);
      h.node_id = r.GetText(i, 3);
      h.stream = r.GetText(i, 4);
      h.seq = static_cast<uint64_t>(r.GetInt(i, 5));
      h.kind = r.GetText(i, 6);
      h.created_ms = r.GetInt(i, 7);
      h.received_ms = r.GetInt(i, 8);
      h.payload = r.GetText(i, 9);
      out.push_back(std::move(h));
    }
    return out;
  }

  Result<std::vector<CountBucket>> CountRecords(const CountQuery& query) override {
    OUTPOST_RETURN_IF_ERROR(ValidateCountQuery(query));
    BuiltQuery q = BuildCountQuery(query, PgDialect());
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(auto r, c->Exec(q.sql, ToParams(q.params)));
    if (static_cast<size_t>(r.rows()) > kMaxBuckets) {
      return InvalidArgumentError("more than 100000 buckets; narrow the range or widen buckets");
    }
    std::vector<CountBucket> out;
    out.reserve(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(CountBucket{.start_ms = r.GetInt(i, 0),
                                .site_id = r.GetText(i, 1),
                                .kind = r.GetText(i, 2),
                                .count = static_cast<uint64_t>(r.GetInt(i, 3))});
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
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c->Exec("SELECT content_sha256 FROM batches WHERE site_id = $1 AND node_id = "
                        "$2 AND stream = $3 AND first_seq = $4 AND last_seq = $5",
                        {Text(key.site_id), Text(key.node_id), Text(key.stream),
                         Int(static_cast<int64_t>(key.first_seq)),
                         Int(static_cast<int64_t>(key.last_seq))}));
    return r.rows() == 1 && r.GetText(0, 0) == key.content_sha256;
  }

  Status RegisterModel(const ModelEntry& entry) override {
    OUTPOST_RETURN_IF_ERROR(ValidateId("model name", entry.name));
    OUTPOST_RETURN_IF_ERROR(ValidateModelState(entry.state));
    OUTPOST_RETURN_IF_ERROR(ValidateJson("metrics_json", entry.metrics_json));
    OUTPOST_RETURN_IF_ERROR(ValidateJson("lineage_json", entry.lineage_json));
    OUTPOST_RETURN_IF_ERROR(ValidateJson("artifact_path", entry.artifact_path));
    OUTPOST_RETURN_IF_ERROR(ValidateArtifact(entry.artifact));
    Param artifact{.value = entry.artifact, .binary = true, .type = kByteaOid};
    artifact.is_null = entry.artifact.empty();
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto r,
        c->Exec("INSERT INTO models(name, version, state, metrics_json, lineage_json, "
                "artifact_path, created_ms, artifact) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                "ON CONFLICT DO NOTHING",
                {Text(entry.name), Int(entry.version), Text(entry.state), Text(entry.metrics_json),
                 Text(entry.lineage_json), Text(entry.artifact_path), Int(entry.created_ms),
                 artifact}));
    if (r.affected() == 0) {
      return AlreadyExistsError("model " + entry.name + " version " +
                                std::to_string(entry.version) + " is registered");
    }
    return Status::Ok();
  }

  Status SetModelState(std::string_view name, int64_t version, std::string_view state) override {
    if (!ValidateId("model name", name).ok()) return NotFoundError("no model " + std::string(name));

    OUTPOST_RETURN_IF_ERROR(ValidateModelState(state));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c->Exec("UPDATE models SET state = $3 WHERE name = $1 AND version = $2",
                        {Text(name), Int(version), Text(state)}));
    if (r.affected() == 0) {
      return NotFoundError("no model " + std::string(name) + " version " + std::to_string(version));
    }
    return Status::Ok();
  }

  Result<std::vector<ModelEntry>> ListModels(std::string_view name) override {
    if (!name.empty() && !ValidateId("model name", name).ok()) return std::vector<ModelEntry>{};

    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c->Exec("SELECT name, version, state, metrics_json, lineage_json, "
                        "artifact_path, created_ms FROM models WHERE $1::text = '' OR name = "
                        "$1::text ORDER BY name COLLATE \"C\", version DESC",
                        {Text(name)}));
    std::vector<ModelEntry> out;
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(ModelEntry{.name = r.GetText(i, 0),
                               .version = r.GetInt(i, 1),
                               .state = r.GetText(i, 2),
                               .metrics_json = r.GetText(i, 3),
                               .lineage_json = r.GetText(i, 4),
                               .artifact_path = r.GetText(i, 5),
                               .created_ms = r.GetInt(i, 6)});
    }
    return out;
  }

  Result<std::string> GetModelArtifact(std::string_view name, int64_t version) override {
    if (!ValidateId("model name", name).ok()) return ModelNotFound(name, version);
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c->Exec("SELECT encode(artifact, 'hex') FROM models WHERE name = $1 AND "
                        "version = $2",
                        {Text(name), Int(version)}));
    if (r.rows() == 0) return ModelNotFound(name, version);
    if (r.IsNull(0, 0)) return std::string();
    return HexDecode(r.GetText(0, 0));
  }

  Status PutReleaseBundle(std::string_view name, std::string_view bytes, int64_t now_ms) override {
    OUTPOST_RETURN_IF_ERROR(ValidateReleaseBundle(name, bytes));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    return c
        ->Exec(
            "INSERT INTO release_bundles(name, sha256, size, bytes, created_ms) VALUES ($1, "
            "$2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, "
            "size = excluded.size, bytes = excluded.bytes, created_ms = excluded.created_ms",
            {Text(name), Text(crypto::Sha256Hex(bytes)), Int(static_cast<int64_t>(bytes.size())),
             Param{.value = std::string(bytes), .binary = true, .type = kByteaOid}, Int(now_ms)})
        .status();
  }

  Result<std::vector<ReleaseBundle>> ListReleaseBundles() override {
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(auto r, c->Exec("SELECT name, sha256, size, created_ms FROM "
                                             "release_bundles ORDER BY name COLLATE \"C\""));
    std::vector<ReleaseBundle> out;
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(ReleaseBundle{.name = r.GetText(i, 0),
                                  .sha256 = r.GetText(i, 1),
                                  .bytes = static_cast<uint64_t>(r.GetInt(i, 2)),
                                  .created_ms = r.GetInt(i, 3)});
    }
    return out;
  }

  Result<std::string> GetReleaseBundle(std::string_view name) override {
    if (!ValidateId("release bundle name", name).ok()) return NotFoundError("no such bundle");
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    // In pieces of 16 MiB (hex doubles each on the wire), in one snapshot.
    OUTPOST_RETURN_IF_ERROR(c->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").status());
    Result<std::string> out = ReadReleaseBundleIn(*c, name);
    if (!c->Exec("COMMIT").ok()) c->MarkBroken();
    return out;
  }

  Result<Lease> AcquireLease(std::string_view name, std::string_view holder,
                             int64_t ttl_ms) override {
    OUTPOST_RETURN_IF_ERROR(ValidateLease(name, holder, ttl_ms));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(auto r,
                             c->Exec(kAcquireLease, {Text(name), Text(holder), Int(ttl_ms)}));
    if (r.rows() == 0) {
      // Another holds it: say who (it may have changed since; the caller asks again).
      OUTPOST_ASSIGN_OR_RETURN(
          r, c->Exec("SELECT holder, generation, expires_ms FROM leases WHERE name = $1",
                     {Text(name)}));
      if (r.rows() == 0) return UnavailableError("lease " + std::string(name) + " vanished");
    }
    return Lease{.name = std::string(name),
                 .holder = r.GetText(0, 0),
                 .generation = r.GetInt(0, 1),
                 .expires_ms = r.GetInt(0, 2)};
  }

  Status ReleaseLease(std::string_view name, std::string_view holder) override {
    if (!ValidateId("lease name", name).ok() || !ValidateId("lease holder", holder).ok()) {
      return Status::Ok();
    }
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    return c
        ->Exec("UPDATE leases SET expires_ms = 0 WHERE name = $1 AND holder = $2",
               {Text(name), Text(holder)})
        .status();
  }

  Result<int64_t> PutRollout(const RolloutRow& row, int64_t expected_revision) override {
    OUTPOST_RETURN_IF_ERROR(ValidateRollout(row, expected_revision));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    std::vector<Param> params = {Text(row.model),       Int(row.model_version), Text(row.tenant),
                                 Text(row.doc),         Int(row.created_ms),    Int(row.updated_ms),
                                 Int(expected_revision)};
    // One statement: the revision compared and advanced by the row's own lock, so two hubs
    // writing one rollout at once cannot both pass the check.
    const char* sql =
        expected_revision == 0
            ? "INSERT INTO rollouts(model, model_version, tenant, doc, revision, created_ms, "
              "updated_ms) SELECT $1, $2, $3, $4, 1, $5, $6 WHERE $7::bigint = 0 ON CONFLICT "
              "(model, model_version) DO NOTHING RETURNING revision"
        : expected_revision == kAnyRolloutRevision
            ? "INSERT INTO rollouts(model, model_version, tenant, doc, revision, created_ms, "
              "updated_ms) SELECT $1, $2, $3, $4, 1, $5, $6 WHERE $7::bigint = -1 ON CONFLICT "
              "(model, model_version) DO UPDATE SET tenant = excluded.tenant, doc = "
              "excluded.doc, revision = rollouts.revision + 1, updated_ms = excluded.updated_ms "
              "RETURNING revision"
            : "UPDATE rollouts SET tenant = $3, doc = $4, revision = revision + 1, updated_ms = "
              "$6 WHERE model = $1 AND model_version = $2 AND revision = $7 AND $5::bigint IS "
              "NOT NULL RETURNING revision";
    OUTPOST_ASSIGN_OR_RETURN(auto r, c->Exec(sql, params));
    if (r.rows() == 0) return RolloutChanged(row, expected_revision);
    return r.GetInt(0, 0);
  }

  Result<std::optional<RolloutRow>> GetRollout(std::string_view model,
                                               int64_t model_version) override {
    if (!ValidateId("model name", model).ok()) return std::optional<RolloutRow>();
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(auto r,
                             c->Exec(std::string("SELECT ") + kRolloutColumns +
                                         " FROM rollouts WHERE model = $1 AND model_version = $2",
                                     {Text(model), Int(model_version)}));
    if (r.rows() == 0) return std::optional<RolloutRow>();
    return std::optional<RolloutRow>(ReadRollout(r, 0));
  }

  Result<std::vector<RolloutRow>> ListRollouts(std::optional<std::string_view> tenant,
                                               size_t limit) override {
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    std::vector<Param> params = {Int(static_cast<int64_t>(std::min<size_t>(limit, 100'000)))};
    if (tenant) params.push_back(Text(*tenant));
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c->Exec(std::string("SELECT ") + kRolloutColumns + " FROM rollouts" +
                            (tenant ? " WHERE tenant = $2" : "") +
                            " ORDER BY created_ms DESC, model COLLATE \"C\", model_version "
                            "DESC LIMIT $1",
                        params));
    std::vector<RolloutRow> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(ReadRollout(r, i));
    return out;
  }

  Status AppendHubAudit(const HubAuditEntry& entry) override {
    OUTPOST_RETURN_IF_ERROR(ValidateHubAudit(entry));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    return c
        ->Exec("INSERT INTO hub_audit(time_ms, tenant, event, line) VALUES ($1, $2, $3, $4)",
               {Int(entry.time_ms), Text(entry.tenant), Text(entry.event), Text(entry.line)})
        .status();
  }

  Result<std::vector<HubAuditEntry>> ListHubAudit(std::string_view tenant, int64_t after_id,
                                                  std::string_view event, size_t limit) override {
    OUTPOST_RETURN_IF_ERROR(ValidateHubAuditEvent(event));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c->Exec("SELECT id, time_ms, tenant, event, line FROM hub_audit WHERE tenant = "
                        "$1 AND id > $2 AND ($3 = '' OR event = $3) ORDER BY id LIMIT $4",
                        {Text(tenant), Int(after_id), Text(event),
                         Int(static_cast<int64_t>(std::min(limit, kMaxHubAuditPage)))}));
    std::vector<HubAuditEntry> out;
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(HubAuditEntry{.id = r.GetInt(i, 0),
                                  .time_ms = r.GetInt(i, 1),
                                  .tenant = r.GetText(i, 2),
                                  .event = r.GetText(i, 3),
                                  .line = r.GetText(i, 4)});
    }
    return out;
  }

  Result<std::optional<std::string>> GetScheduleState(std::string_view name) override {
    OUTPOST_RETURN_IF_ERROR(ValidateId("schedule state name", name));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c->Exec("SELECT value FROM schedule_state WHERE name = $1", {Text(name)}));
    if (r.rows() == 0) return std::optional<std::string>();
    return std::optional<std::string>(r.GetText(0, 0));
  }

  Status PutScheduleState(std::string_view name, std::string_view value,
                          const Lease& held) override {
    OUTPOST_RETURN_IF_ERROR(ValidateScheduleState(name, value, held));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(auto r,
                             c->Exec(kPutScheduleState, {Text(name), Text(value), Text(held.name),
                                                         Text(held.holder), Int(held.generation)}));
    if (r.affected() == 0) return LeaseLost(held);
    return Status::Ok();
  }

  // --- partitions and retention (STORE.md section 8) ---

  Status MaintainPartitions(int64_t now_ms) override {
    int64_t today = DayOf(now_ms);
    std::vector<int64_t> days;
    std::string names;
    for (int64_t d = today - 1; d <= today + 2; ++d) {
      if (d < kFirstPartitionDay || d >= kEndPartitionDay) continue;
      days.push_back(d);
      names += (names.empty() ? "" : ",") + PartitionName(d);
    }
    if (days.empty()) return Status::Ok();
    {
      // Most calls find every partition made: one read, no lock.
      OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
      OUTPOST_ASSIGN_OR_RETURN(
          auto r, c->Exec("SELECT count(*) FROM unnest(string_to_array($1::text, ',')) AS n "
                          "WHERE to_regclass(n) IS NULL",
                          {Text(names)}));
      if (r.GetInt(0, 0) == 0) {
        partitions_through_.store(days.back());
        return Status::Ok();
      }
    }
    bool rollback = false;
    auto make = [&](Conn& c, bool*) -> Result<bool> {
      OUTPOST_RETURN_IF_ERROR(c.Exec("SELECT pg_advisory_xact_lock($1)", {Int(kPartitionLock)}));
      for (int64_t d : days) OUTPOST_RETURN_IF_ERROR(MakePartition(c, d));
      return true;
    };
    Result<bool> made = Transaction<bool>(make, &rollback);
    if (!made.ok()) return made.status();
    partitions_through_.store(days.back());
    return Status::Ok();
  }

  Result<RetentionResult> ApplyRetention(const RetentionPolicy& policy, int64_t now_ms,
                                         RecordExporter& exporter) override {
    for (const auto& [kind, ms] : policy.kinds) {
      OUTPOST_RETURN_IF_ERROR(ValidateId("retention kind", kind));
      if (ms <= 0) return InvalidArgumentError("retention of " + kind + " is not positive");
    }
    if (policy.default_ms && *policy.default_ms <= 0) {
      return InvalidArgumentError("the default retention is not positive");
    }
    if (policy.keys_after_expiry_ms <= 0) {
      return InvalidArgumentError("the record keys' window is not positive");
    }
    RetentionResult out;
    OUTPOST_RETURN_IF_ERROR(MaintainPartitions(now_ms));
    OUTPOST_ASSIGN_OR_RETURN(out.units_recovered, SettlePending(exporter));
    if (policy.empty()) return out;
    Cutoffs cut = CutoffsOf(policy, now_ms);
    OUTPOST_ASSIGN_OR_RETURN(std::vector<ExportUnit> units, PlanUnits(cut));
    for (const ExportUnit& u : units) {
      OUTPOST_ASSIGN_OR_RETURN(UnitOutcome o, RunUnit(u, exporter, now_ms));
      if (o.skipped) {
        out.skipped = true;
        break;
      }
      if (o.id != 0) ++out.units;
      out.records_removed += static_cast<uint64_t>(o.records);
      if (u.drop) ++out.partitions_dropped;
    }
    if (out.skipped) return out;
    OUTPOST_ASSIGN_OR_RETURN(out.keys_removed, PruneKeys(policy.keys_after_expiry_ms, now_ms));
    return out;
  }

 private:
  // Publishes the exporter's pending units whose transaction committed (their row exists)
  // and discards the others (STORE.md section 8), under kRetentionLock so that no unit is in
  // flight meanwhile. Returns the units published.
  Result<uint64_t> SettlePending(RecordExporter& exporter) {
    OUTPOST_ASSIGN_OR_RETURN(std::vector<int64_t> pending, exporter.Pending());
    if (pending.empty()) return uint64_t{0};
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_RETURN_IF_ERROR(c->Exec("BEGIN").status());
    uint64_t published = 0;
    Status s = [&]() -> Status {
      OUTPOST_ASSIGN_OR_RETURN(
          auto lock, c->Exec("SELECT pg_try_advisory_xact_lock($1)", {Int(kRetentionLock)}));
      if (lock.GetText(0, 0) != "t") return Status::Ok();  // a pass is running: later
      for (int64_t id : pending) {
        OUTPOST_ASSIGN_OR_RETURN(
            auto r, c->Exec("SELECT sha256 FROM retention_exports WHERE id = $1", {Int(id)}));
        if (r.rows() == 0) {
          OUTPOST_RETURN_IF_ERROR(exporter.Discard(id));
        } else {
          OUTPOST_RETURN_IF_ERROR(exporter.Publish(id, r.GetText(0, 0)));
          ++published;
        }
      }
      return Status::Ok();
    }();
    RollbackOrBreak(*c);
    OUTPOST_RETURN_IF_ERROR(s);
    return published;
  }

  // Deletes the record keys whose record was removed more than `window_ms` before now_ms, in
  // batches of kKeyBatch keys, each batch its own transaction under kRetentionLock (STORE.md
  // section 8, the record keys' window). Returns the keys deleted.
  Result<uint64_t> PruneKeys(int64_t window_ms, int64_t now_ms) {
    constexpr int64_t kKeyBatch = 10'000;
    constexpr uint64_t kMaxKeysPerPass = 1'000'000;
    if (window_ms <= 0 || window_ms == INT64_MAX) return uint64_t{0};
    const int64_t before = Cutoff(now_ms, window_ms);
    uint64_t removed = 0;
    while (removed < kMaxKeysPerPass) {
      auto batch = [&](Conn& c, bool*) -> Result<int64_t> {
        OUTPOST_ASSIGN_OR_RETURN(
            auto lock, c.Exec("SELECT pg_try_advisory_xact_lock($1)", {Int(kRetentionLock)}));
        if (lock.GetText(0, 0) != "t") return int64_t{-1};
        OUTPOST_ASSIGN_OR_RETURN(
            auto r,
            c.Exec("WITH x AS (SELECT site_id, node_id, stream, seq FROM record_keys WHERE "
                   "expired_ms < $1 LIMIT $2), d AS (DELETE FROM record_keys k USING x WHERE "
                   "k.site_id = x.site_id AND k.node_id = x.node_id AND k.stream = x.stream AND "
                   "k.seq = x.seq AND k.expired_ms < $1 RETURNING 1) SELECT count(*) FROM d",
                   {Int(before), Int(kKeyBatch)}));
        return r.GetInt(0, 0);
      };
      bool rollback = false;
      Result<int64_t> n = Transaction<int64_t>(batch, &rollback);
      if (!n.ok()) return n.status();
      if (*n < 0) break;  // another pass holds the lock
      removed += static_cast<uint64_t>(*n);
      if (*n < kKeyBatch) break;
    }
    return removed;
  }

  // The units of a pass, oldest partition first (STORE.md section 8).
  Result<std::vector<ExportUnit>> PlanUnits(const Cutoffs& cut) {
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(
        auto parts, c->Exec("SELECT p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = "
                            "i.inhrelid WHERE i.inhparent = 'records'::regclass ORDER BY 1"));
    OUTPOST_ASSIGN_OR_RETURN(auto settled_rows,
                             c->Exec("SELECT partition, kind FROM retention_settled"));
    std::map<std::string, std::set<std::string>> settled;
    for (int i = 0; i < settled_rows.rows(); ++i) {
      settled[settled_rows.GetText(i, 0)].insert(settled_rows.GetText(i, 1));
    }
    std::vector<ExportUnit> units;
    for (int i = 0; i < parts.rows(); ++i) {
      std::string name = parts.GetText(i, 0);
      std::optional<int64_t> day = PartitionDay(name);
      int64_t lo = day ? *day * kDayMs : INT64_MIN;
      int64_t hi = day ? (*day + 1) * kDayMs : INT64_MAX;
      if (lo >= cut.max) continue;  // nothing in it has expired
      // Whole-partition drop when no row of a kind still live at its end is in it; never of
      // the days MaintainPartitions keeps made (with a retention under a day, their expired
      // rows are deleted instead of the partition dropped and made again every pass).
      if (day && hi <= cut.max && *day < cut.today - 1) {
        std::vector<std::string> expired, live;
        for (size_t k = 0; k < cut.kinds.size(); ++k) {
          (cut.cutoffs[k] >= hi ? expired : live).push_back(cut.kinds[k]);
        }
        OUTPOST_ASSIGN_OR_RETURN(
            auto r, c->Exec("SELECT NOT EXISTS (SELECT 1 FROM " + name +
                                " WHERE CASE WHEN kind = ANY($1::text[]) THEN false WHEN kind = "
                                "ANY($2::text[]) THEN true ELSE $3::boolean END)",
                            {TextArray(expired), TextArray(live),
                             Text(cut.other < hi ? "true" : "false")}));
        if (r.GetText(0, 0) == "t") {
          units.push_back(
              ExportUnit{.partition = name,
                         .drop = true,
                         .rows_sql = std::string("SELECT ") + kExportColumns + " FROM " + name});
          continue;
        }
      }
      std::optional<ExportUnit> u = DeleteUnit(name, lo, hi, cut, settled[name]);
      if (u) units.push_back(std::move(*u));
    }
    return units;
  }

  // One unit's transaction, then the exporter's publish or discard (STORE.md section 8).
  Result<UnitOutcome> RunUnit(const ExportUnit& u, RecordExporter& exporter, int64_t now_ms) {
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_RETURN_IF_ERROR(c->Exec("BEGIN").status());
    UnitOutcome o;
    Status body = UnitBody(*c, u, exporter, now_ms, o);
    if (!body.ok() || o.skipped) {
      RollbackOrBreak(*c);
      if (o.begun) {
        Status d = exporter.Discard(o.id);
        if (!d.ok()) {
          OUTPOST_LOG(kWarning) << "retention: " << d.ToString();
        }
      }
      if (!body.ok()) return body;
      return o;
    }
    Result<PgResult> commit = c->Exec("COMMIT");
    if (!commit.ok()) {
      if (commit.status().code() == StatusCode::kUnavailable) {
        // The outcome is unknown: the unit stays pending and the next pass settles it.
        c->MarkBroken();
      } else if (o.begun) {
        OUTPOST_RETURN_IF_ERROR(exporter.Discard(o.id));
      }
      return commit.status();
    }
    if (o.begun) OUTPOST_RETURN_IF_ERROR(exporter.Publish(o.id, o.sha256));
    return o;
  }

  // Makes tomorrow's partition when the store has not yet (STORE.md section 8), from
  // Ingest: once a day per process, or once a minute while it fails. A failure only logs:
  // records without a partition go to the default partition.
  void MaybeMaintainPartitions(int64_t now_ms) {
    int64_t day = DayOf(now_ms);
    if (day + 1 <= partitions_through_.load() || day < kFirstPartitionDay ||
        day + 1 >= kEndPartitionDay) {
      return;
    }
    int64_t tried = maintain_tried_ms_.load();
    if (tried != INT64_MIN && now_ms >= tried && now_ms - tried < 60'000) return;
    maintain_tried_ms_.store(now_ms);
    Status s = MaintainPartitions(now_ms);
    if (!s.ok()) {
      OUTPOST_LOG(kWarning) << "making partitions of records: " << s.ToString();
    }
  }

 public:
 private:
  // Runs `body` in a transaction on one pooled connection. The body sets *rollback to end
  // without committing (an outcome that stores nothing). A transaction that a concurrent
  // writer made fail (kAborted) is retried.
  template <typename T, typename Body>
  Result<T> Transaction(Body body, bool* rollback) {
    Status last;
    for (int attempt = 0; attempt < kMaxTransactionAttempts; ++attempt) {
      *rollback = false;
      OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
      Result<PgResult> begin = c->Exec("BEGIN");
      if (!begin.ok()) {
        // Nothing ran yet: a connection the server cut meanwhile is retried on another.
        if (begin.status().code() == StatusCode::kUnavailable) {
          last = begin.status();
          continue;
        }
        return begin.status();
      }
      Result<T> result = body(*c, rollback);
      if (!result.ok() || *rollback) {
        RollbackOrBreak(*c);
        if (!result.ok() && result.status().code() == StatusCode::kAborted) {
          last = result.status();
          continue;
        }
        return result;
      }
      Result<PgResult> commit = c->Exec("COMMIT");
      if (!commit.ok()) {
        if (commit.status().code() == StatusCode::kAborted) {
          last = commit.status();
          continue;
        }
        // The outcome of a commit whose answer was lost is unknown: the caller retries the
        // whole call, which Ingest's idempotency makes safe.
        c->MarkBroken();
        return commit.status();
      }
      return result;
    }
    return last;
  }

  Status UpdateSite(const char* sql, std::vector<Param> params, std::string_view site_id) {
    if (!ValidateId("site_id", site_id).ok())
      return NotFoundError("no site " + std::string(site_id));
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(auto r, c->Exec(sql, params));
    if (r.affected() == 0) return NotFoundError("no site " + std::string(site_id));
    return Status::Ok();
  }

  // The bytes of release bundle `name`, read piece by piece on `c`.
  Result<std::string> ReadReleaseBundleIn(Conn& c, std::string_view name) {
    constexpr int64_t kPiece = int64_t{16} << 20;
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c.Exec("SELECT size FROM release_bundles WHERE name = $1", {Text(name)}));
    if (r.rows() == 0) return NotFoundError("no release bundle " + std::string(name));
    const int64_t size = r.GetInt(0, 0);
    std::string out;
    out.reserve(static_cast<size_t>(size));
    for (int64_t at = 0; at < size; at += kPiece) {
      OUTPOST_ASSIGN_OR_RETURN(
          auto piece,
          c.Exec("SELECT encode(substring(bytes FROM $2::integer FOR $3::integer), 'hex') FROM "
                 "release_bundles WHERE name = $1",
                 {Text(name), Int(at + 1), Int(kPiece)}));
      if (piece.rows() == 0) return NotFoundError("no release bundle " + std::string(name));
      OUTPOST_ASSIGN_OR_RETURN(std::string bytes, HexDecode(piece.GetText(0, 0)));
      out += bytes;
    }
    return out;
  }

  // EXPLAIN's text for a built query, one plan line a line.
  Result<std::string> Explain(const BuiltQuery& q) {
    OUTPOST_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    OUTPOST_ASSIGN_OR_RETURN(auto r, c->Exec("EXPLAIN " + q.sql, ToParams(q.params)));
    std::string plan;
    for (int i = 0; i < r.rows(); ++i) plan += r.GetText(i, 0) + "\n";
    return plan;
  }

  // The sites of `tenant` with their nodes' reports; only `site_id` when it is given.
  Result<std::vector<SiteSummary>> ListSitesIn(Conn& c, std::string_view tenant,
                                               std::optional<std::string_view> site_id) {
    std::vector<SiteSummary> out;
    std::vector<Param> params = {Text(tenant)};
    std::string only_site;
    if (site_id) {
      params.push_back(Text(*site_id));
      only_site = " AND site_id = $2";
    }
    OUTPOST_ASSIGN_OR_RETURN(
        auto r, c.Exec(std::string("SELECT ") + kSiteColumns +
                           ", record_count, newest_record_ms FROM sites WHERE tenant = $1" +
                           only_site + " ORDER BY site_id COLLATE \"C\"",
                       params));
    for (int i = 0; i < r.rows(); ++i) {
      SiteSummary s;
      s.site = ReadSite(r, i);
      s.records = static_cast<uint64_t>(r.GetInt(i, 7));
      if (!r.IsNull(i, 8)) s.newest_record_ms = r.GetInt(i, 8);
      out.push_back(std::move(s));
    }
    OUTPOST_ASSIGN_OR_RETURN(
        auto n, c.Exec("SELECT n.site_id, n.node_id, n.reported_ms, n.received_ms, "
                       "n.backlog_records, n.backlog_bytes, n.autonomy_days, n.models_json, "
                       "n.autonomy_basis, n.outbox_account_json "
                       "FROM node_status n JOIN sites s ON s.site_id = n.site_id WHERE "
                       "s.tenant = $1" +
                           (site_id ? std::string(" AND n.site_id = $2") : "") +
                           " ORDER BY n.site_id COLLATE \"C\", n.node_id COLLATE \"C\"",
                       params));
    size_t j = 0;
    for (int i = 0; i < n.rows(); ++i) {
      NodeStatus ns;
      ns.site_id = n.GetText(i, 0);
      ns.node_id = n.GetText(i, 1);
      ns.reported_ms = n.GetInt(i, 2);
      ns.received_ms = n.GetInt(i, 3);
      ns.backlog_records = static_cast<uint64_t>(n.GetInt(i, 4));
      ns.backlog_bytes = static_cast<uint64_t>(n.GetInt(i, 5));
      if (!n.IsNull(i, 6)) ns.autonomy_days = n.GetDouble(i, 6);
      ns.models_json = n.GetText(i, 7);
      ns.autonomy_basis = n.GetText(i, 8);
      ns.outbox_account_json = n.GetText(i, 9);
      while (j < out.size() && out[j].site.site_id < ns.site_id) ++j;
      if (j < out.size() && out[j].site.site_id == ns.site_id)
        out[j].nodes.push_back(std::move(ns));
    }
    return out;
  }

  // STORE.md §4 steps 2-7 on one connection, in two round trips on the common path: one
  // pipeline (BEGIN, the batch row, the audit CAS and lines, the records with the site's
  // counters) and then COMMIT or ROLLBACK.
  Result<IngestResult> IngestOnce(Conn& c, const BatchKey& key, size_t count,
                                  const std::vector<Param>& insert_params, const Param& seq_param,
                                  const Param& hash_param, const std::optional<AuditSegment>& audit,
                                  int64_t now_ms) {
    IngestPipeline pipeline = BuildIngestPipeline(key, count, insert_params, audit, now_ms);
    OUTPOST_ASSIGN_OR_RETURN(std::vector<Result<PgResult>> results, c.Pipeline(pipeline.queries));
    for (size_t i = 0; i < 2; ++i) {
      if (!results[i].ok()) {
        RollbackOrBreak(c);
        return results[i].status();
      }
    }
    const PgResult& b = *results[1];
    if (b.IsNull(0, 0)) {
      RollbackOrBreak(c);
      return NotFoundError("no site " + key.site_id);
    }
    if (b.GetInt(0, 1) == 0) {
      // The key was stored before (or by a writer that committed meanwhile).
      RollbackOrBreak(c);
      return AnswerStoredBatch(c, key, count, now_ms);
    }
    if (audit) {
      Status checked = CheckAuditAnswers(results, pipeline.cas_index, *audit);
      if (!checked.ok()) {
        RollbackOrBreak(c);
        return checked;
      }
    }
    if (!results[pipeline.records_index].ok()) {
      RollbackOrBreak(c);
      return results[pipeline.records_index].status();
    }
    return FinishIngest(c, key, count, *results[pipeline.records_index], seq_param, hash_param);
  }

  Pool pool_;
  // The last day whose partition this process made or found (STORE.md section 8).
  std::atomic<int64_t> partitions_through_{INT64_MIN};
  std::atomic<int64_t> maintain_tried_ms_{INT64_MIN};
};

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url) {
  auto store = std::make_unique<PostgresStore>(url);
  OUTPOST_RETURN_IF_ERROR(store->Init().WithContext("opening the hub's PostgreSQL store"));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace outpost::hub::internal
