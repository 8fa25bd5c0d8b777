#include "outbox/schema.h"

#include "base/coding.h"
#include "base/sqlite/sqlite.h"
#include "outbox/checksum.h"

namespace outpost::outbox {
namespace {

// Format 2's column (FORMAT.md sections 2 and 6): added the same way to a new file and to a
// migrated one, so that both have the same schema text.
constexpr std::string_view kAddRuleColumn = "ALTER TABLE records ADD COLUMN rule INTEGER";

void PutString(std::string& out, std::string_view s) {
  PutU16LE(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}

}  // namespace

Status ConfigureConnection(sqlite::Db& db, uint64_t max_bytes) {
  uint64_t pages = (2 * max_bytes + (uint64_t{16} << 20)) / 4096;
  if (pages > 0xFFFFFFFEull) pages = 0xFFFFFFFEull;
  return db.Exec(
      "PRAGMA synchronous=FULL; PRAGMA cell_size_check=ON; PRAGMA mmap_size=0;"
      "PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=67108864;"
      "PRAGMA wal_autocheckpoint=1000; PRAGMA max_page_count=" +
      std::to_string(pages) + ";");
}

Status CreateSchema(sqlite::Db& db, const Meta& meta) {
  OUTPOST_RETURN_IF_ERROR(db.Exec("PRAGMA page_size=4096; PRAGMA journal_mode=WAL;"));
  OUTPOST_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  Status s = [&]() -> Status {
    OUTPOST_RETURN_IF_ERROR(db.Exec(R"sql(
      CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value ANY NOT NULL,
        checksum INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE streams (stream TEXT PRIMARY KEY NOT NULL, next_seq INTEGER NOT NULL,
        checksum INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE records (
        id INTEGER PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL,
        kind INTEGER NOT NULL, created_ms INTEGER NOT NULL, payload BLOB NOT NULL,
        checksum INTEGER NOT NULL);
      CREATE UNIQUE INDEX records_by_key ON records(stream, seq);
      CREATE INDEX records_by_kind ON records(kind, created_ms);
      CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY, stream TEXT, seq INTEGER, kind INTEGER, created_ms INTEGER,
        payload_bytes INTEGER, reason TEXT NOT NULL, quarantined_ms INTEGER NOT NULL);
      CREATE TABLE counters (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL)
        WITHOUT ROWID;
    )sql"));
    OUTPOST_RETURN_IF_ERROR(db.Exec(kAddRuleColumn));
    OUTPOST_ASSIGN_OR_RETURN(
        auto put, db.Prepare("INSERT INTO meta(key, value, checksum) VALUES(?1, ?2, ?3)"));
    auto text = [&](std::string_view k, std::string_view v) {
      put->BindText(1, k);
      put->BindText(2, v);
      put->BindInt(3, MetaChecksum(k, v));
      return put->Run();
    };
    auto blob = [&](std::string_view k, std::string_view v) {
      put->BindText(1, k);
      put->BindBlob(2, v);
      put->BindInt(3, MetaChecksum(k, v));
      return put->Run();
    };
    auto integer = [&](std::string_view k, int64_t v) {
      put->BindText(1, k);
      put->BindInt(2, v);
      put->BindInt(3, MetaChecksum(k, std::to_string(v)));
      return put->Run();
    };
    OUTPOST_RETURN_IF_ERROR(text("site_id", meta.site_id));
    OUTPOST_RETURN_IF_ERROR(text("node_id", meta.node_id));
    OUTPOST_RETURN_IF_ERROR(integer("created_ms", meta.created_ms));
    OUTPOST_RETURN_IF_ERROR(text("encryption", meta.encryption));
    if (meta.encryption != "none") {
      OUTPOST_RETURN_IF_ERROR(blob("key_salt", meta.key_salt));
      OUTPOST_RETURN_IF_ERROR(blob("key_check", meta.key_check));
    }
    OUTPOST_RETURN_IF_ERROR(integer("nonce_reserved", static_cast<int64_t>(meta.nonce_reserved)));
    OUTPOST_RETURN_IF_ERROR(integer("seq_floor", static_cast<int64_t>(meta.seq_floor)));
    OUTPOST_RETURN_IF_ERROR(db.Exec("PRAGMA application_id=" + std::to_string(kApplicationId) +
                                    "; PRAGMA user_version=" + std::to_string(kFormatVersion)));
    return Status::Ok();
  }();
  if (!s.ok()) {
    db.Exec("ROLLBACK").IgnoreError();
    return s.WithContext("creating the outbox schema");
  }
  return db.Exec("COMMIT");
}

Status MigrateFromFormat1(sqlite::Db& db) {
  OUTPOST_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  Status s = db.Exec(std::string(kAddRuleColumn) +
                     "; PRAGMA user_version=" + std::to_string(kFormatVersion));
  if (!s.ok()) {
    db.Exec("ROLLBACK").IgnoreError();
    return s.WithContext("migrating the outbox from format 1");
  }
  return db.Exec("COMMIT");
}

Result<Meta> ReadMeta(sqlite::Db& db) {
  OUTPOST_ASSIGN_OR_RETURN(auto stmt,
                           db.Prepare("SELECT key, CAST(value AS BLOB), checksum FROM meta"));
  Meta meta;
  bool site = false, node = false;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    std::string_view key = stmt->ColumnText(0);
    if (MetaChecksum(key, stmt->ColumnBlob(1)) != static_cast<uint32_t>(stmt->ColumnInt(2))) {
      return DataLossError("outbox meta value \"" + std::string(key.substr(0, 64)) +
                           "\" fails its checksum");
    }
    if (key == "site_id") {
      meta.site_id = std::string(stmt->ColumnText(1));
      site = true;
    } else if (key == "node_id") {
      meta.node_id = std::string(stmt->ColumnText(1));
      node = true;
    } else if (key == "created_ms") {
      meta.created_ms = stmt->ColumnInt(1);
    } else if (key == "encryption") {
      meta.encryption = std::string(stmt->ColumnText(1));
    } else if (key == "key_salt") {
      meta.key_salt = std::string(stmt->ColumnBlob(1));
    } else if (key == "key_check") {
      meta.key_check = std::string(stmt->ColumnBlob(1));
    } else if (key == "nonce_reserved") {
      meta.nonce_reserved = static_cast<uint64_t>(stmt->ColumnInt(1));
    } else if (key == "seq_floor") {
      meta.seq_floor = static_cast<uint64_t>(stmt->ColumnInt(1));
    }
    // Other keys are additions of a later build that this one may ignore (FORMAT.md 6).
  }
  if (!site || !node) return DataLossError("the outbox meta table lacks site_id or node_id");
  if (meta.encryption != "none" && meta.encryption != "aes-256-gcm") {
    return DataLossError("the outbox meta table names an unknown encryption \"" + meta.encryption +
                         "\"");
  }
  if (meta.seq_floor < 1) meta.seq_floor = 1;
  return meta;
}

uint32_t MetaChecksum(std::string_view key, std::string_view value_bytes) {
  uint32_t crc = Crc32c(0, key);
  crc = Crc32c(crc, std::string_view("\0", 1));
  return Crc32c(crc, value_bytes);
}

uint32_t StreamChecksum(std::string_view stream, uint64_t next_seq) {
  std::string tail(1, '\0');
  PutU64LE(tail, next_seq);
  return Crc32c(Crc32c(0, stream), tail);
}

Status SetMetaInt(sqlite::Db& db, std::string_view key, int64_t value) {
  OUTPOST_ASSIGN_OR_RETURN(auto stmt,
                           db.Prepare("UPDATE meta SET value = ?2, checksum = ?3 WHERE key = ?1"));
  stmt->BindText(1, key);
  stmt->BindInt(2, value);
  stmt->BindInt(3, MetaChecksum(key, std::to_string(value)));
  return stmt->Run();
}

Status ReadStreams(sqlite::Db& db, std::map<std::string, uint64_t>* out) {
  OUTPOST_ASSIGN_OR_RETURN(auto stmt, db.Prepare("SELECT stream, next_seq, checksum FROM streams"));
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    std::string stream(stmt->ColumnText(0));
    auto next = static_cast<uint64_t>(stmt->ColumnInt(1));
    if (StreamChecksum(stream, next) != static_cast<uint32_t>(stmt->ColumnInt(2))) {
      return DataLossError("outbox stream \"" + stream.substr(0, 64) + "\" fails its checksum");
    }
    (*out)[stream] = next;
  }
  return Status::Ok();
}

namespace {

// "type name tbl_name sql" of every schema row, sorted by name.
Result<std::string> SchemaText(sqlite::Db& db) {
  OUTPOST_ASSIGN_OR_RETURN(auto stmt, db.Prepare("SELECT type, name, tbl_name, sql FROM "
                                                 "sqlite_schema ORDER BY name"));
  std::string out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    for (int i = 0; i < 4; ++i) {
      out.append(stmt->ColumnText(i));
      out.push_back('\n');
    }
  }
  return out;
}

Result<std::string> ExpectedSchema() {
  OUTPOST_ASSIGN_OR_RETURN(auto db, sqlite::Db::Open(":memory:", sqlite::DbOptions{}));
  OUTPOST_RETURN_IF_ERROR(CreateSchema(*db, Meta{.site_id = "x", .node_id = "x"}));
  return SchemaText(*db);
}

}  // namespace

Status CheckSchema(sqlite::Db& db) {
  static const Result<std::string>* expected = new Result<std::string>(ExpectedSchema());
  if (!expected->ok()) return expected->status();
  OUTPOST_ASSIGN_OR_RETURN(std::string actual, SchemaText(db));
  if (actual != **expected) {
    return DataLossError("the outbox file's schema is not that of format 2 (damaged)");
  }
  return Status::Ok();
}

Status QuickCheck(sqlite::Db& db) {
  OUTPOST_ASSIGN_OR_RETURN(auto stmt, db.Prepare("PRAGMA quick_check(1)"));
  OUTPOST_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return DataLossError("quick_check returned nothing");
  std::string result(stmt->ColumnText(0));
  if (result != "ok") return DataLossError("the database file is damaged: " + result);
  return Status::Ok();
}

std::string EnvelopeHeader(std::string_view site_id, std::string_view node_id,
                           std::string_view stream, uint64_t seq, uint8_t kind,
                           int64_t created_ms) {
  std::string out;
  out.reserve(6 + site_id.size() + node_id.size() + stream.size() + 17);
  PutString(out, site_id);
  PutString(out, node_id);
  PutString(out, stream);
  PutU64LE(out, seq);
  out.push_back(static_cast<char>(kind));
  PutU64LE(out, static_cast<uint64_t>(created_ms));
  return out;
}

uint32_t RecordChecksum(std::string_view header, std::string_view stored_payload) {
  std::string len;
  PutU32LE(len, static_cast<uint32_t>(stored_payload.size()));
  uint32_t crc = Crc32c(0, header);
  crc = Crc32c(crc, len);
  return Crc32c(crc, stored_payload);
}

std::string RecordAad(std::string_view header) {
  std::string aad = "outpost.outbox.v1";
  aad.append(header);
  return aad;
}

}  // namespace outpost::outbox
