// What both engines of hub/store.h share: the limits and validation of STORE.md §5, the
// record content hash (STORE.md §3), the query builders, and the engines' constructors.
// Included only by hub/store.cc, hub/sqlite_store.cc and hub/postgres_store.cc.
#ifndef OUTPOST_HUB_STORE_INTERNAL_H_
#define OUTPOST_HUB_STORE_INTERNAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "hub/store.h"

namespace outpost::hub::internal {

inline constexpr int64_t kSchemaVersion = 9;
inline constexpr size_t kMaxIdBytes = 256;
inline constexpr size_t kMaxJsonBytes = size_t{1} << 20;
inline constexpr size_t kMaxRecordsPerIngest = 100'000;
inline constexpr size_t kMaxAuditBytes = size_t{16} << 20;
inline constexpr size_t kMaxQueryLimit = 10'000;
inline constexpr size_t kMaxQuerySites = 1'000;  // RecordQuery::site_ids
inline constexpr size_t kMaxBuckets = 100'000;
inline constexpr int64_t kMinBucketMs = 1000;
inline constexpr int64_t kMaxBucketMs = int64_t{1} << 40;  // ~34 years
// Attempts of a transaction that a concurrent writer made fail (Aborted).
inline constexpr int kMaxTransactionAttempts = 5;

// InvalidArgument unless `value` is 1..kMaxIdBytes bytes without NUL.
Status ValidateId(std::string_view what, std::string_view value);
// InvalidArgument unless `value` is at most kMaxJsonBytes.
Status ValidateJson(std::string_view what, std::string_view value);
Status ValidateSite(const Site& site);
Status ValidateModelState(std::string_view state);
// Step 1 of STORE.md §4: the key, the records' keys and seqs, sizes.
Status ValidateIngest(const BatchKey& key, std::span<const HubRecord> records,
                      const std::optional<AuditSegment>& audit);
Status ValidateNodeStatus(const NodeStatus& status);
// InvalidArgument unless name and holder are ids and ttl_ms is within STORE.md section 7.
Status ValidateLease(std::string_view name, std::string_view holder, int64_t ttl_ms);
// InvalidArgument unless name is an id, value at most 64 KiB of UTF-8 without NUL and
// `held` names a lease and a holder.
Status ValidateScheduleState(std::string_view name, std::string_view value, const Lease& held);
// FailedPrecondition reason "lease_lost": `held` is no longer the lease's row.
Status LeaseLost(const Lease& held);

// InvalidArgument when a model file is over kMaxModelArtifactBytes.
Status ValidateArtifact(std::string_view artifact);
// InvalidArgument unless ParseReleaseBundleName takes `name` and `bytes` is at most
// kMaxReleaseBundleBytes.
Status ValidateReleaseBundle(std::string_view name, std::string_view bytes);
// InvalidArgument unless the row's model is an id, its version positive, its tenant an id and
// its doc at most kMaxRolloutDocBytes of UTF-8 without NUL, and expected_revision >= -1.
Status ValidateRollout(const RolloutRow& row, int64_t expected_revision);
// InvalidArgument unless the entry's event is [a-z_]{1,32}, its tenant at most 128 bytes
// without NUL, and its line 1..kMaxHubAuditLineBytes bytes without NUL or newline.
Status ValidateHubAudit(const HubAuditEntry& entry);
// InvalidArgument unless `event` is empty or [a-z_]{1,32}.
Status ValidateHubAuditEvent(std::string_view event);
// FailedPrecondition reason "rollout_changed": the row's revision is not the expected one.
Status RolloutChanged(const RolloutRow& row, int64_t expected_revision);
// NotFound: the registry has no (name, version).
Status ModelNotFound(std::string_view name, int64_t version);
// NotFound reason "site_not_found": no site `site_id` of the caller's tenant.
Status SiteNotFound(std::string_view site_id);

// FailedPrecondition reason "retention_unsupported": the engine `engine` keeps every record
// (STORE.md section 8).
Status RetentionUnsupported(std::string_view engine);

// SHA-256 (32 raw bytes) of a record's kind, created_ms and payload (STORE.md §3).
std::string RecordContentHash(const HubRecord& record);

// The segment's lines without their '\n' (a last line without one is kept as is).
std::vector<std::string> SplitAuditLines(std::string_view lines);

// The audit head of a (site, node) that has none.
std::string ZeroHash();

// floor(created_ms / bucket) * bucket for negative values too.
int64_t BucketStart(int64_t created_ms, int64_t bucket_ms);

// A parameter of a built query.
struct SqlParam {
  bool is_int = false;
  int64_t int_value = 0;
  std::string text{};
};

// A WHERE clause over `records` for the filters shared by QueryRecords and CountRecords.
// `placeholder(n, is_int)` returns the engine's spelling of parameter n (1-based), e.g. "?1"
// or "$1::bigint".
struct BuiltQuery {
  std::string sql{};
  std::vector<SqlParam> params{};
};
// How an engine spells the queries below.
struct SqlDialect {
  // The engine's spelling of parameter n (1-based) of the given type.
  std::function<std::string(int, bool)> placeholder;
  // SQL bounding the ids a page may hold (the engine's record cursor horizon, STORE.md
  // section 3); empty for none.
  std::string_view id_below{};
  // SQLite: a query naming a site writes its tenant term `+tenant`, which keeps the term
  // off the indexes. A site's records are a subset of its tenant's, so the site's index is
  // never the worse choice, but SQLite without statistics may take the tenant's (STORE.md
  // section 6, reads at scale). PostgreSQL costs both from its statistics.
  bool unary_plus_tenant = false;
};
BuiltQuery BuildRecordQuery(const RecordQuery& query, const SqlDialect& dialect);
BuiltQuery BuildCountQuery(const CountQuery& query, const SqlDialect& dialect);
// Orders buckets by start, then site and kind bytewise (both engines, whatever the
// database's collation).
void SortBuckets(std::vector<CountBucket>* buckets);
Status ValidateRecordQuery(const RecordQuery& query);
Status ValidateCountQuery(const CountQuery& query);

// The engines (STORE.md). `path` is the SQLite file; `url` the libpq connection URI.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);
Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url);

}  // namespace outpost::hub::internal

#endif  // OUTPOST_HUB_STORE_INTERNAL_H_
