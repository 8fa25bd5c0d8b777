// OpenStore and what both engines share (hub/store_internal.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/names.h"
#include "hub/store.h"
#include "hub/store_internal.h"

namespace outpost::hub {
namespace internal {
namespace {

void AppendU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
void AppendI64(std::string* out, int64_t value) {
  uint64_t v = static_cast<uint64_t>(value);
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < n + 1) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values above U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// The filters shared by record and count queries; appends to `out`.
void AppendFilters(const std::string& tenant, const std::optional<std::string>& site_id,
                   const std::vector<std::string>& site_ids, const std::optional<std::string>& kind,
                   const std::optional<std::string>& stream, int64_t since_ms, int64_t until_ms,
                   const SqlDialect& dialect,
                   const std::function<std::string(int, bool)>& placeholder, BuiltQuery* out) {
  auto add_text = [&](std::string_view column, const std::string& value) {
    out->params.push_back(SqlParam{.text = value});
    out->sql += " AND ";
    out->sql += column;
    out->sql += " = " + placeholder(static_cast<int>(out->params.size()), false);
  };
  auto add_int = [&](std::string_view column, std::string_view op, int64_t value) {
    out->params.push_back(SqlParam{.is_int = true, .int_value = value});
    out->sql += " AND ";
    out->sql += column;
    out->sql += " ";
    out->sql += op;
    out->sql += " " + placeholder(static_cast<int>(out->params.size()), true);
  };
  out->params.push_back(SqlParam{.text = tenant});
  const bool names_sites = site_id.has_value() || !site_ids.empty();
  out->sql += (names_sites && dialect.unary_plus_tenant) ? " WHERE +tenant = " : " WHERE tenant = ";
  out->sql += placeholder(1, false);
  if (site_id) add_text("site_id", *site_id);
  if (!site_ids.empty()) {
    out->sql += " AND site_id IN (";
    for (size_t i = 0; i < site_ids.size(); ++i) {
      out->params.push_back(SqlParam{.text = site_ids[i]});
      if (i > 0) out->sql += ", ";
      out->sql += placeholder(static_cast<int>(out->params.size()), false);
    }
    out->sql += ")";
  }
  if (kind) add_text("kind", *kind);
  if (stream) add_text("stream", *stream);
  if (since_ms != INT64_MIN) add_int("created_ms", ">=", since_ms);
  if (until_ms != INT64_MAX) add_int("created_ms", "<", until_ms);
}

Status ValidateFilters(const std::string& tenant, const std::optional<std::string>& site_id,
                       const std::optional<std::string>& kind,
                       const std::optional<std::string>& stream) {
  OUTPOST_RETURN_IF_ERROR(ValidateId("tenant", tenant));
  if (site_id) OUTPOST_RETURN_IF_ERROR(ValidateId("site_id", *site_id));
  if (kind) OUTPOST_RETURN_IF_ERROR(ValidateId("kind", *kind));
  if (stream) OUTPOST_RETURN_IF_ERROR(ValidateId("stream", *stream));
  return Status::Ok();
}

}  // namespace

Status ValidateId(std::string_view what, std::string_view value) {
  if (value.empty() || value.size() > kMaxIdBytes) {
    return InvalidArgumentError(std::string(what) + " must be 1.." + std::to_string(kMaxIdBytes) +
                                " bytes");
  }
  if (value.find('\0') != std::string_view::npos) {
    return InvalidArgumentError(std::string(what) + " must not contain NUL");
  }
  if (!IsValidUtf8(value)) return InvalidArgumentError(std::string(what) + " is not UTF-8");
  return Status::Ok();
}

Status ValidateJson(std::string_view what, std::string_view value) {
  if (value.size() > kMaxJsonBytes) {
    return InvalidArgumentError(std::string(what) + " is larger than 1 MiB");
  }
  if (value.find('\0') != std::string_view::npos) {
    return InvalidArgumentError(std::string(what) + " must not contain NUL");
  }
  if (!IsValidUtf8(value)) return InvalidArgumentError(std::string(what) + " is not UTF-8");
  return Status::Ok();
}

Status ValidateSite(const Site& site) {
  OUTPOST_RETURN_IF_ERROR(ValidateId("site_id", site.site_id));
  OUTPOST_RETURN_IF_ERROR(ValidateId("tenant", site.tenant));
  if (site.region.size() > kMaxIdBytes || site.credential_serial.size() > kMaxIdBytes ||
      site.region.find('\0') != std::string::npos ||
      site.credential_serial.find('\0') != std::string::npos || !IsValidUtf8(site.region) ||
      !IsValidUtf8(site.credential_serial)) {
    return InvalidArgumentError("site region and credential serial must be 0..256 bytes");
  }
  return Status::Ok();
}

Status ValidateModelState(std::string_view state) {
  if (state == "candidate" || state == "approved" || state == "bundled" || state == "rejected") {
    return Status::Ok();
  }
  return InvalidArgumentError("model state must be candidate, approved, bundled or rejected");
}

Status ValidateIngest(const BatchKey& key, std::span<const HubRecord> records,
                      const std::optional<AuditSegment>& audit) {
  OUTPOST_RETURN_IF_ERROR(ValidateId("batch site_id", key.site_id));
  OUTPOST_RETURN_IF_ERROR(ValidateId("batch node_id", key.node_id));
  OUTPOST_RETURN_IF_ERROR(ValidateId("batch stream", key.stream));
  OUTPOST_RETURN_IF_ERROR(ValidateId("batch content_sha256", key.content_sha256));
  if (key.first_seq > key.last_seq) {
    return InvalidArgumentError("batch first_seq is after last_seq");
  }
  if (key.last_seq > static_cast<uint64_t>(INT64_MAX)) {
    return InvalidArgumentError("batch seq above 2^63-1");
  }
  if (records.size() > kMaxRecordsPerIngest) {
    return InvalidArgumentError("more than 100000 records in one batch");
  }
  if (records.size() > key.last_seq - key.first_seq + 1) {
    return InvalidArgumentError("more records than seqs in the batch's range");
  }
  std::vector<uint64_t> seqs;
  seqs.reserve(records.size());
  for (const HubRecord& r : records) {
    if (r.site_id != key.site_id || r.node_id != key.node_id || r.stream != key.stream) {
      return InvalidArgumentError("a record's site, node or stream differs from its batch's");
    }
    if (r.seq < key.first_seq || r.seq > key.last_seq) {
      return InvalidArgumentError("a record's seq " + std::to_string(r.seq) +
                                  " is outside its batch's range");
    }
    OUTPOST_RETURN_IF_ERROR(ValidateId("record kind", r.kind));
    OUTPOST_RETURN_IF_ERROR(ValidateJson("record payload", r.payload));
    seqs.push_back(r.seq);
  }
  std::sort(seqs.begin(), seqs.end());
  if (std::adjacent_find(seqs.begin(), seqs.end()) != seqs.end()) {
    return InvalidArgumentError("a seq appears twice in one batch");
  }
  if (audit) {
    OUTPOST_RETURN_IF_ERROR(ValidateId("audit node_id", audit->node_id));
    if (audit->lines.size() > kMaxAuditBytes) {
      return InvalidArgumentError("audit segment larger than 16 MiB");
    }
    if (audit->from_seq > static_cast<uint64_t>(INT64_MAX) ||
        audit->to_seq > static_cast<uint64_t>(INT64_MAX)) {
      return InvalidArgumentError("audit seq above 2^63-1");
    }
    if (audit->to_seq < audit->from_seq) {
      return InvalidArgumentError("audit segment ends before it starts");
    }
    if (!IsHex64(audit->from_hash) || !IsHex64(audit->to_hash)) {
      return InvalidArgumentError("audit hashes must be 64 lowercase hex digits");
    }
    if (audit->lines.find('\0') != std::string::npos || !IsValidUtf8(audit->lines)) {
      return InvalidArgumentError("audit lines must be UTF-8 without NUL");
    }
  }
  return Status::Ok();
}

Status ValidateNodeStatus(const NodeStatus& status) {
  OUTPOST_RETURN_IF_ERROR(ValidateId("site_id", status.site_id));
  OUTPOST_RETURN_IF_ERROR(ValidateId("node_id", status.node_id));
  OUTPOST_RETURN_IF_ERROR(ValidateJson("models_json", status.models_json));
  OUTPOST_RETURN_IF_ERROR(ValidateJson("outbox_account_json", status.outbox_account_json));
  if (status.autonomy_basis.size() > 32 ||
      status.autonomy_basis.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos) {
    return InvalidArgumentError("autonomy_basis must be at most 32 of a-z and _");
  }
  if (status.autonomy_days && !std::isfinite(*status.autonomy_days)) {
    return InvalidArgumentError("autonomy_days must be a finite number");
  }
  if (status.backlog_records > static_cast<uint64_t>(INT64_MAX) ||
      status.backlog_bytes > static_cast<uint64_t>(INT64_MAX)) {
    return InvalidArgumentError("backlog above 2^63-1");
  }
  return Status::Ok();
}

Status ValidateLease(std::string_view name, std::string_view holder, int64_t ttl_ms) {
  OUTPOST_RETURN_IF_ERROR(ValidateId("lease name", name));
  OUTPOST_RETURN_IF_ERROR(ValidateId("lease holder", holder));
  if (ttl_ms < 1000 || ttl_ms > 86'400'000) {
    return InvalidArgumentError("lease ttl_ms " + std::to_string(ttl_ms) +
                                " is outside 1000..86400000");
  }
  return Status::Ok();
}

Status ValidateScheduleState(std::string_view name, std::string_view value, const Lease& held) {
  OUTPOST_RETURN_IF_ERROR(ValidateId("schedule state name", name));
  OUTPOST_RETURN_IF_ERROR(ValidateId("lease name", held.name));
  OUTPOST_RETURN_IF_ERROR(ValidateId("lease holder", held.holder));
  if (value.size() > (size_t{64} << 10) || value.find('\0') != std::string_view::npos ||
      !IsValidUtf8(value)) {
    return InvalidArgumentError("a schedule state must be at most 64 KiB of UTF-8 without NUL");
  }
  return Status::Ok();
}

Status LeaseLost(const Lease& held) {
  return ErrorWithReason(StatusCode::kFailedPrecondition, "lease_lost",
                         "the lease " + held.name + " is no longer held by " + held.holder +
                             " at generation " + std::to_string(held.generation));
}

Status ValidateArtifact(std::string_view artifact) {
  if (artifact.size() > kMaxModelArtifactBytes) {
    return InvalidArgumentError("a model file of " + std::to_string(artifact.size()) +
                                " bytes is over the registry's 256 MiB");
  }
  return Status::Ok();
}

Status ValidateReleaseBundle(std::string_view name, std::string_view bytes) {
  if (!ParseReleaseBundleName(name)) {
    return InvalidArgumentError("a release bundle is named <model>-<version>.bundle, not " +
                                std::string(name.substr(0, 128)));
  }
  if (bytes.size() > kMaxReleaseBundleBytes) {
    return InvalidArgumentError("a release bundle of " + std::to_string(bytes.size()) +
                                " bytes is over the store's 512 MiB");
  }
  return Status::Ok();
}

Status ValidateHubAuditEvent(std::string_view event) {
  bool ok = event.size() <= 32 && std::all_of(event.begin(), event.end(), [](char c) {
              return c == '_' || (c >= 'a' && c <= 'z');
            });
  if (ok) return Status::Ok();
  return InvalidArgumentError("an audit event is [a-z_]{1,32}, not " +
                              std::string(event.substr(0, 64)));
}

Status ValidateHubAudit(const HubAuditEntry& entry) {
  if (entry.event.empty()) return InvalidArgumentError("an audit line names its event");
  OUTPOST_RETURN_IF_ERROR(ValidateHubAuditEvent(entry.event));
  if (entry.tenant.size() > 128 || entry.tenant.find('\0') != std::string::npos) {
    return InvalidArgumentError("an audit line's tenant is at most 128 bytes without NUL");
  }
  if (entry.line.empty() || entry.line.size() > kMaxHubAuditLineBytes ||
      entry.line.find_first_of(std::string_view("\0\n", 2)) != std::string::npos) {
    return InvalidArgumentError("an audit line is 1 to 65,536 bytes without NUL or newline");
  }
  return Status::Ok();
}

Status ValidateRollout(const RolloutRow& row, int64_t expected_revision) {
  if (!ModelName::IsValid(row.model)) {
    return InvalidArgumentError("a rollout's model is a model name, not " +
                                std::string(row.model.substr(0, 128)));
  }
  OUTPOST_RETURN_IF_ERROR(ValidateId("tenant", row.tenant));
  if (row.model_version < 1) return InvalidArgumentError("a rollout's model version must be >= 1");
  if (expected_revision < kAnyRolloutRevision) {
    return InvalidArgumentError("an expected rollout revision is >= -1");
  }
  if (row.doc.size() > kMaxRolloutDocBytes || row.doc.find('\0') != std::string::npos ||
      !IsValidUtf8(row.doc)) {
    return InvalidArgumentError("a rollout document must be at most 1 MiB of UTF-8 without NUL");
  }
  return Status::Ok();
}

Status RolloutChanged(const RolloutRow& row, int64_t expected_revision) {
  return ErrorWithReason(StatusCode::kFailedPrecondition, "rollout_changed",
                         "the rollout of " + row.model + " version " +
                             std::to_string(row.model_version) + " is no longer at revision " +
                             std::to_string(expected_revision));
}

Status ModelNotFound(std::string_view name, int64_t version) {
  return NotFoundError("no model " + std::string(name.substr(0, 128)) + " version " +
                       std::to_string(version));
}

Status SiteNotFound(std::string_view site_id) {
  std::string shown(site_id.substr(0, 128));
  return ErrorWithReason(StatusCode::kNotFound, "site_not_found", "no site " + shown);
}

Status RetentionUnsupported(std::string_view engine) {
  return ErrorWithReason(StatusCode::kFailedPrecondition, "retention_unsupported",
                         "the " + std::string(engine) +
                             " store keeps every record; retention needs the PostgreSQL store "
                             "(hub/STORE.md section 8)");
}

std::string RecordContentHash(const HubRecord& record) {
  std::string buf;
  buf.reserve(16 + record.kind.size() + record.payload.size());
  AppendU32(&buf, static_cast<uint32_t>(record.kind.size()));
  buf += record.kind;
  AppendI64(&buf, record.created_ms);
  AppendU32(&buf, static_cast<uint32_t>(record.payload.size()));
  buf += record.payload;
  return crypto::Sha256(buf);
}

std::vector<std::string> SplitAuditLines(std::string_view lines) {
  std::vector<std::string> out;
  while (!lines.empty()) {
    size_t nl = lines.find('\n');
    if (nl == std::string_view::npos) {
      out.emplace_back(lines);
      break;
    }
    out.emplace_back(lines.substr(0, nl));
    lines.remove_prefix(nl + 1);
  }
  return out;
}

std::string ZeroHash() { return std::string(64, '0'); }

int64_t BucketStart(int64_t created_ms, int64_t bucket_ms) {
  int64_t r = created_ms % bucket_ms;
  if (r < 0) r += bucket_ms;
  return created_ms - r;
}

void SortBuckets(std::vector<CountBucket>* buckets) {
  std::sort(buckets->begin(), buckets->end(), [](const CountBucket& a, const CountBucket& b) {
    if (a.start_ms != b.start_ms) return a.start_ms < b.start_ms;
    if (a.site_id != b.site_id) return a.site_id < b.site_id;
    return a.kind < b.kind;
  });
}

Status ValidateRecordQuery(const RecordQuery& query) {
  OUTPOST_RETURN_IF_ERROR(ValidateFilters(query.tenant, query.site_id, query.kind, query.stream));
  if (query.site_ids.size() > kMaxQuerySites) {
    return InvalidArgumentError("a query names at most 1000 sites");
  }
  if (!query.site_ids.empty() && query.site_id) {
    return InvalidArgumentError("a query names one site or a list of sites, not both");
  }
  for (const std::string& site : query.site_ids) {
    OUTPOST_RETURN_IF_ERROR(ValidateId("site_id", site));
  }
  return Status::Ok();
}

Status ValidateCountQuery(const CountQuery& query) {
  OUTPOST_RETURN_IF_ERROR(ValidateFilters(query.tenant, query.site_id, query.kind, query.stream));
  if (query.bucket_ms < kMinBucketMs || query.bucket_ms > kMaxBucketMs) {
    return InvalidArgumentError("bucket_ms must be 1000 .. 2^40");
  }
  return Status::Ok();
}

BuiltQuery BuildRecordQuery(const RecordQuery& query, const SqlDialect& dialect) {
  const auto& placeholder = dialect.placeholder;
  BuiltQuery out;
  out.sql =
      "SELECT id, tenant, site_id, node_id, stream, seq, kind, created_ms, received_ms, "
      "payload FROM records";
  AppendFilters(query.tenant, query.site_id, query.site_ids, query.kind, query.stream,
                query.since_ms, query.until_ms, dialect, placeholder, &out);
  out.params.push_back(SqlParam{.is_int = true, .int_value = query.after_id});
  out.sql += " AND id > " + placeholder(static_cast<int>(out.params.size()), true);
  if (!dialect.id_below.empty()) out.sql += " AND id < " + std::string(dialect.id_below);
  out.params.push_back(SqlParam{
      .is_int = true, .int_value = static_cast<int64_t>(std::min(query.limit, kMaxQueryLimit))});
  out.sql += " ORDER BY id LIMIT " + placeholder(static_cast<int>(out.params.size()), true);
  return out;
}

BuiltQuery BuildCountQuery(const CountQuery& query, const SqlDialect& dialect) {
  const auto& placeholder = dialect.placeholder;
  BuiltQuery out;
  // The bucket is parameter 1 (used twice); the filters follow it.
  std::string b = placeholder(1, true);
  out.params.push_back(SqlParam{.is_int = true, .int_value = query.bucket_ms});
  BuiltQuery filters;
  auto shifted = [&](int n, bool is_int) { return placeholder(n + 1, is_int); };
  AppendFilters(query.tenant, query.site_id, {}, query.kind, query.stream, query.since_ms,
                query.until_ms, dialect, shifted, &filters);
  out.sql = "SELECT created_ms - (((created_ms % " + b + ") + " + b + ") % " + b +
            ") AS bucket, site_id, kind, count(*) FROM records" + filters.sql +
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LIMIT " + std::to_string(kMaxBuckets + 1);
  for (SqlParam& p : filters.params) out.params.push_back(std::move(p));
  return out;
}

}  // namespace internal

std::optional<std::pair<std::string, uint64_t>> ParseReleaseBundleName(std::string_view name) {
  constexpr std::string_view kSuffix = ".bundle";
  if (!name.ends_with(kSuffix)) return std::nullopt;
  name.remove_suffix(kSuffix.size());
  const size_t dash = name.rfind('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const std::string_view model = name.substr(0, dash);
  const std::string_view digits = name.substr(dash + 1);
  uint64_t version = 0;
  if (!ModelName::IsValid(model) || digits.size() > 19 || !ParseDecimal(digits, &version) ||
      version == 0 || version > static_cast<uint64_t>(INT64_MAX)) {
    return std::nullopt;
  }
  return std::make_pair(std::string(model), version);
}

bool RetentionPolicy::empty() const {
  if (default_ms && *default_ms != INT64_MAX) return false;
  for (const auto& [kind, ms] : kinds) {
    if (ms != INT64_MAX) return false;
  }
  return true;
}

Result<std::unique_ptr<Store>> OpenStore(std::string_view url) {
  if (url.starts_with("sqlite:")) {
    std::string path(url.substr(7));
    if (path.starts_with("//")) path = path.substr(2);  // sqlite:///abs/path
    if (path.empty()) return InvalidArgumentError("store URL sqlite: names no file");
    return internal::OpenSqliteStore(path);
  }
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return internal::OpenPostgresStore(std::string(url));
  }
  return InvalidArgumentError("store URL must start with sqlite: or postgresql://");
}

}  // namespace outpost::hub
