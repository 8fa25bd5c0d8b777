// The outbox file's schema, meta values, record envelope and checksum (FORMAT.md sections
// 1-4, 6), shared by the store (outbox.cc) and the salvage (salvage.cc).
#ifndef OUTPOST_OUTBOX_SCHEMA_H_
#define OUTPOST_OUTBOX_SCHEMA_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::sqlite {
class Db;
}  // namespace outpost::sqlite

namespace outpost::outbox {

inline constexpr int64_t kApplicationId = 0x4F504F42;  // "OPOB"
inline constexpr int64_t kFormatVersion = 2;
inline constexpr uint64_t kEnvelopeCharge = 48;  // bytes charged per record besides payload
inline constexpr uint64_t kNonceReserveStep = uint64_t{1} << 20;
inline constexpr std::string_view kEventStream = "_outbox";
inline constexpr size_t kMaxPayloadLimit = size_t{16} << 20;

// The meta table of one file.
struct Meta {
  std::string site_id{};
  std::string node_id{};
  int64_t created_ms = 0;
  std::string encryption = "none";  // "none" or "aes-256-gcm"
  std::string key_salt{};           // 16 bytes when encrypted
  std::string key_check{};          // 16 bytes when encrypted
  uint64_t nonce_reserved = 0;      // seals counted under the data key (FORMAT.md section 7)
  uint64_t seq_floor = 1;
};

// Per-connection settings of FORMAT.md section 1 (synchronous=FULL, cell_size_check, ...).
// `max_bytes` sets the max_page_count backstop.
Status ConfigureConnection(sqlite::Db& db, uint64_t max_bytes);
// Creates format 2 in an empty database, in one transaction, with `meta`.
Status CreateSchema(sqlite::Db& db, const Meta& meta);
// Migrates a format-1 file to format 2 in one transaction (FORMAT.md section 6).
Status MigrateFromFormat1(sqlite::Db& db);
// Reads the meta table. DataLoss when a required key is missing or malformed.
Result<Meta> ReadMeta(sqlite::Db& db);
// Row checksums of `meta` and `streams` (FORMAT.md section 4). An INTEGER meta value is
// checksummed as its decimal text.
uint32_t MetaChecksum(std::string_view key, std::string_view value_bytes);
uint32_t StreamChecksum(std::string_view stream, uint64_t next_seq);
// Sets an INTEGER meta value with its checksum (inside the caller's transaction, if any).
Status SetMetaInt(sqlite::Db& db, std::string_view key, int64_t value);
// Reads every stream's next seq, checking each row. DataLoss on a mismatch.
Status ReadStreams(sqlite::Db& db, std::map<std::string, uint64_t>* out);
// SQL that upserts a stream row: ?1 stream, ?2 next_seq, ?3 checksum.
inline constexpr std::string_view kUpsertStreamSql =
    "INSERT INTO streams(stream, next_seq, checksum) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(stream) DO UPDATE SET next_seq = excluded.next_seq, "
    "checksum = excluded.checksum";

// Checks that the file's tables and indexes are exactly those of format 2 (their SQL text
// included). DataLoss otherwise: the schema is stored as data, so damage there passes
// quick_check but breaks every statement.
Status CheckSchema(sqlite::Db& db);

// Runs PRAGMA quick_check; DataLoss with SQLite's first complaint when it is not "ok".
Status QuickCheck(sqlite::Db& db);

// The little-endian envelope of FORMAT.md section 4 up to and including created_ms.
std::string EnvelopeHeader(std::string_view site_id, std::string_view node_id,
                           std::string_view stream, uint64_t seq, uint8_t kind, int64_t created_ms);
// CRC32C over the header, the payload length and the stored payload.
uint32_t RecordChecksum(std::string_view header, std::string_view stored_payload);
// The additional authenticated data of FORMAT.md section 7.
std::string RecordAad(std::string_view header);

}  // namespace outpost::outbox

#endif  // OUTPOST_OUTBOX_SCHEMA_H_
