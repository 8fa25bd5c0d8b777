// The batch: records of one (site, node, stream) as they travel from a site to the hub, with
// their idempotency key and an optional segment of the node's policy audit chain
// (sync/FORMAT.md section 1). The site Encodes; the hub Decodes bytes it does not trust,
// under limits, and gets either a Batch or an error with a stable reason code.
//
//   OUTPOST_ASSIGN_OR_RETURN(std::string bytes, sync::EncodeBatch(batch));
//   OUTPOST_ASSIGN_OR_RETURN(sync::DecodedBatch got, sync::DecodeBatch(bytes));
//   // got.key.content_sha256 is the idempotency key's hash.
//
// Pure functions; thread-safe.
#ifndef OUTPOST_SYNC_BATCH_H_
#define OUTPOST_SYNC_BATCH_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace outpost::sync {

inline constexpr uint8_t kBatchVersion = 1;

// One record in a batch. `kind` is the outbox's kind code (1..7, outbox/FORMAT.md).
struct BatchRecord {
  uint64_t seq = 0;
  uint8_t kind = 0;
  int64_t created_ms = 0;
  std::string payload{};
  friend bool operator==(const BatchRecord&, const BatchRecord&) = default;
};

// A continuation of the node's audit chain: the lines after (from_seq, from_hash), reaching
// (to_seq, to_hash). Hashes are 64 lowercase hex digits.
struct BatchAudit {
  uint64_t from_seq = 0;
  std::string from_hash = std::string(64, '0');
  uint64_t to_seq = 0;
  std::string to_hash = std::string(64, '0');
  std::string lines{};  // each ending in '\n'
  friend bool operator==(const BatchAudit&, const BatchAudit&) = default;
};

struct Batch {
  std::string site_id{};
  std::string node_id{};
  std::string stream{};
  std::vector<BatchRecord> records{};  // >= 1, strictly increasing seq
  std::optional<BatchAudit> audit{};
};

// The idempotency key (FORMAT.md, Idempotency key).
struct BatchKeyFields {
  std::string site_id{};
  std::string node_id{};
  std::string stream{};
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::string content_sha256{};  // lowercase hex
  friend bool operator==(const BatchKeyFields&, const BatchKeyFields&) = default;
};

// Limits a decoder enforces (FORMAT.md, Limits), with their defaults.
struct DecodeLimits {
  uint64_t max_encoded_bytes = uint64_t{16} << 20;
  uint64_t max_body_bytes = uint64_t{64} << 20;
  uint64_t max_ratio = 250;  // body_size / compressed_size
  uint64_t max_records = 10'000;
  uint64_t max_payload_bytes = uint64_t{1} << 20;
  uint64_t max_audit_bytes = uint64_t{16} << 20;
};

struct DecodedBatch {
  Batch batch{};
  BatchKeyFields key{};
  uint64_t body_bytes = 0;  // decompressed size
};

// Encodes `batch` (zstd level `level`). InvalidArgument, with a FORMAT.md reason code, for a
// batch Decode would refuse under the default limits (names, order, empty, kinds, audit).
Result<std::string> EncodeBatch(const Batch& batch, int level = 3);

// Decodes an encoded batch under `limits` and computes its key. Errors: InvalidArgument
// (malformed) or ResourceExhausted (over a limit), the message beginning with the reason
// code (FORMAT.md section 1).
Result<DecodedBatch> DecodeBatch(std::string_view bytes, const DecodeLimits& limits = {});

// The key `batch` has when encoded (the same as DecodeBatch computes). InvalidArgument as
// EncodeBatch.
Result<BatchKeyFields> KeyOf(const Batch& batch);

// The reason code of a sync refusal ("batch_seq_order": Status::reason(), set where the
// refusal starts), or "" for a status that has no reason of its own.
std::string_view ReasonOf(const Status& status);

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_BATCH_H_
