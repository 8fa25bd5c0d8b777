#include "sync/batch.h"

#include <string>

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/names.h"
#include "sync/compress.h"
#include "sync/wire.h"

namespace outpost::sync {
namespace {

constexpr char kMagic[4] = {'O', 'P', 'S', 'B'};
constexpr size_t kEnvelopeBytes = 16;
constexpr uint8_t kFlagAudit = 1;

Status Malformed(std::string_view reason, std::string_view detail) {
  return ErrorWithReason(StatusCode::kInvalidArgument, reason, detail);
}
Status OverLimit(std::string_view reason, std::string_view detail) {
  return ErrorWithReason(StatusCode::kResourceExhausted, reason, detail);
}

// Checks what Decode would refuse about `batch` under the default limits.
Status Validate(const Batch& batch) {
  const std::pair<std::string_view, bool> names[] = {
      {batch.site_id, SiteId::IsValid(batch.site_id)},
      {batch.node_id, NodeId::IsValid(batch.node_id)},
      {batch.stream, StreamName::IsValid(batch.stream)}};
  for (const auto& [name, valid] : names) {
    if (!valid) return Malformed("batch_malformed", "bad name \"" + std::string(name) + "\"");
  }
  if (batch.records.empty()) return Malformed("batch_malformed", "no records");
  DecodeLimits limits;
  if (batch.records.size() > limits.max_records) {
    return OverLimit("batch_too_many_records", std::to_string(batch.records.size()) + " records");
  }
  uint64_t prev = 0;
  for (size_t i = 0; i < batch.records.size(); ++i) {
    const BatchRecord& r = batch.records[i];
    if (r.seq == 0) return Malformed("batch_malformed", "seq 0");
    if (i > 0 && r.seq <= prev) {
      return Malformed("batch_seq_order", "record " + std::to_string(i) + " has seq " +
                                              std::to_string(r.seq) + " after " +
                                              std::to_string(prev));
    }
    prev = r.seq;
    if (r.kind < 1 || r.kind > 7) return Malformed("batch_malformed", "unknown kind");
    if (r.payload.size() > limits.max_payload_bytes) {
      return OverLimit("batch_payload_too_large", std::to_string(r.payload.size()) + " bytes");
    }
  }
  if (batch.audit) {
    const BatchAudit& a = *batch.audit;
    if (!IsHex64(a.from_hash) || !IsHex64(a.to_hash)) {
      return Malformed("batch_audit_malformed", "a head hash is not 64 lowercase hex digits");
    }
    if (a.to_seq < a.from_seq) return Malformed("batch_audit_malformed", "to_seq < from_seq");
    if (!a.lines.empty() && a.lines.back() != '\n') {
      return Malformed("batch_audit_malformed", "lines do not end in a newline");
    }
    if (a.lines.size() > limits.max_audit_bytes) {
      return OverLimit("batch_audit_too_large", std::to_string(a.lines.size()) + " bytes");
    }
  }
  return Status();
}

// The body up to the end of the records (the part the content hash covers).
std::string EncodeRecordsPart(const Batch& batch) {
  std::string body;
  size_t reserve = 3 * 129 + 20;
  for (const BatchRecord& r : batch.records) reserve += 21 + r.payload.size();
  body.reserve(reserve);
  wire::PutStr8(body, batch.site_id);
  wire::PutStr8(body, batch.node_id);
  wire::PutStr8(body, batch.stream);
  PutU64LE(body, batch.records.front().seq);
  PutU64LE(body, batch.records.back().seq);
  PutU32LE(body, static_cast<uint32_t>(batch.records.size()));
  for (const BatchRecord& r : batch.records) {
    PutU64LE(body, r.seq);
    wire::PutU8(body, r.kind);
    PutU64LE(body, static_cast<uint64_t>(r.created_ms));
    PutU32LE(body, static_cast<uint32_t>(r.payload.size()));
    body.append(r.payload);
  }
  return body;
}

}  // namespace

std::string_view ReasonOf(const Status& status) {
  return status.has_reason() ? status.reason() : std::string_view();
}

Result<BatchKeyFields> KeyOf(const Batch& batch) {
  OUTPOST_RETURN_IF_ERROR(Validate(batch));
  return BatchKeyFields{.site_id = batch.site_id,
                        .node_id = batch.node_id,
                        .stream = batch.stream,
                        .first_seq = batch.records.front().seq,
                        .last_seq = batch.records.back().seq,
                        .content_sha256 = crypto::Sha256Hex(EncodeRecordsPart(batch))};
}

Result<std::string> EncodeBatch(const Batch& batch, int level) {
  OUTPOST_RETURN_IF_ERROR(Validate(batch));
  std::string body = EncodeRecordsPart(batch);
  if (batch.audit) {
    const BatchAudit& a = *batch.audit;
    PutU64LE(body, a.from_seq);
    body.append(a.from_hash);
    PutU64LE(body, a.to_seq);
    body.append(a.to_hash);
    PutU32LE(body, static_cast<uint32_t>(a.lines.size()));
    body.append(a.lines);
  }
  DecodeLimits limits;
  if (body.size() > limits.max_body_bytes) {
    return OverLimit("batch_body_too_large", std::to_string(body.size()) + " bytes");
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string frame, ZstdCompress(body, level));
  std::string out;
  out.reserve(kEnvelopeBytes + frame.size());
  out.append(kMagic, 4);
  wire::PutU8(out, kBatchVersion);
  wire::PutU8(out, batch.audit ? kFlagAudit : 0);
  PutU16LE(out, 0);
  PutU32LE(out, static_cast<uint32_t>(body.size()));
  PutU32LE(out, static_cast<uint32_t>(frame.size()));
  out.append(frame);
  if (out.size() > limits.max_encoded_bytes) {
    return OverLimit("batch_too_large", std::to_string(out.size()) + " bytes encoded");
  }
  return out;
}

namespace {

// The fixed-size envelope before a batch's zstd frame.
struct EnvelopeFields {
  uint8_t flags = 0;
  uint32_t body_size = 0;
  std::string_view frame;  // the zstd frame, exactly compressed_size bytes
};

// Checks the envelope of `bytes` and the sizes it states against `limits`.
Result<EnvelopeFields> ReadEnvelope(std::string_view bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.max_encoded_bytes) {
    return OverLimit("batch_too_large", std::to_string(bytes.size()) + " bytes, limit " +
                                            std::to_string(limits.max_encoded_bytes));
  }
  if (bytes.size() < kEnvelopeBytes) return Malformed("batch_truncated", "no complete envelope");
  if (bytes.substr(0, 4) != std::string_view(kMagic, 4)) {
    return Malformed("batch_bad_magic", "not a batch");
  }
  wire::Reader env(bytes.substr(4, kEnvelopeBytes - 4));
  uint8_t version = 0, flags = 0;
  uint16_t reserved = 0;
  uint32_t body_size = 0, compressed_size = 0;
  env.U8(version);
  env.U8(flags);
  env.U16(reserved);
  env.U32(body_size);
  env.U32(compressed_size);
  if (version != kBatchVersion) {
    return Malformed("batch_version",
                     "version " + std::to_string(version) + ", this reader knows 1");
  }
  if ((flags & ~kFlagAudit) != 0 || reserved != 0) {
    return Malformed("batch_flags", "unknown flags or reserved bits set");
  }
  std::string_view frame = bytes.substr(kEnvelopeBytes);
  if (frame.size() < compressed_size) {
    return Malformed("batch_truncated", "the zstd frame is cut short");
  }
  if (frame.size() > compressed_size) {
    return Malformed("batch_trailing_bytes", "bytes after the zstd frame");
  }
  if (body_size > limits.max_body_bytes) {
    return OverLimit("batch_body_too_large", std::to_string(body_size) + " bytes, limit " +
                                                 std::to_string(limits.max_body_bytes));
  }
  if (compressed_size == 0 || body_size / compressed_size > limits.max_ratio) {
    return OverLimit("batch_ratio", std::to_string(body_size) + " bytes from " +
                                        std::to_string(compressed_size) + ", ratio limit " +
                                        std::to_string(limits.max_ratio));
  }
  return EnvelopeFields{.flags = flags, .body_size = body_size, .frame = frame};
}

Status Truncated() { return Malformed("batch_truncated", "the body ends inside a field"); }

// Reads the body's header into `b` (names) and first, last and count, checked.
Status ReadBodyHeader(wire::Reader& r, const DecodeLimits& limits, Batch& b, uint64_t& first,
                      uint64_t& last, uint32_t& count) {
  std::string_view site, node, stream;
  if (!r.Str8(site) || !r.Str8(node) || !r.Str8(stream)) return Truncated();
  if (!SiteId::IsValid(site) || !NodeId::IsValid(node) || !StreamName::IsValid(stream)) {
    return Malformed("batch_malformed", "bad name");
  }
  b.site_id = site;
  b.node_id = node;
  b.stream = stream;
  if (!r.U64(first) || !r.U64(last) || !r.U32(count)) return Truncated();
  if (count == 0) return Malformed("batch_malformed", "no records");
  if (count > limits.max_records) {
    return OverLimit("batch_too_many_records", std::to_string(count) + " records, limit " +
                                                   std::to_string(limits.max_records));
  }
  // Each record takes at least 21 bytes, so `count` is bounded by the body too.
  if (r.left() / 21 < count) return Truncated();
  return Status::Ok();
}

// Reads `count` records into b.records, seqs ascending from 1.
Status ReadRecords(wire::Reader& r, uint32_t count, const DecodeLimits& limits, Batch& b) {
  b.records.reserve(count);
  uint64_t prev = 0;
  for (uint32_t i = 0; i < count; ++i) {
    BatchRecord rec;
    uint32_t len = 0;
    std::string_view payload;
    if (!r.U64(rec.seq) || !r.U8(rec.kind) || !r.I64(rec.created_ms) || !r.U32(len)) {
      return Truncated();
    }
    if (rec.seq == 0) return Malformed("batch_malformed", "seq 0");
    if (i > 0 && rec.seq <= prev) {
      return Malformed("batch_seq_order", "record " + std::to_string(i) + " has seq " +
                                              std::to_string(rec.seq) + " after " +
                                              std::to_string(prev));
    }
    prev = rec.seq;
    if (rec.kind < 1 || rec.kind > 7) {
      return Malformed("batch_malformed", "unknown kind " + std::to_string(rec.kind));
    }
    if (len > limits.max_payload_bytes) {
      return OverLimit("batch_payload_too_large", std::to_string(len) + " bytes, limit " +
                                                      std::to_string(limits.max_payload_bytes));
    }
    if (!r.Bytes(len, payload)) return Truncated();
    rec.payload = payload;
    b.records.push_back(std::move(rec));
  }
  return Status::Ok();
}

// Reads the audit section that follows the records when the envelope's audit flag is set.
Result<BatchAudit> ReadAudit(wire::Reader& r, const DecodeLimits& limits) {
  BatchAudit a;
  std::string_view from_hash, to_hash, lines;
  uint32_t lines_len = 0;
  if (!r.U64(a.from_seq) || !r.Bytes(64, from_hash) || !r.U64(a.to_seq) || !r.Bytes(64, to_hash) ||
      !r.U32(lines_len)) {
    return Truncated();
  }
  if (!IsHex64(from_hash) || !IsHex64(to_hash)) {
    return Malformed("batch_audit_malformed", "a head hash is not 64 lowercase hex digits");
  }
  if (a.to_seq < a.from_seq) return Malformed("batch_audit_malformed", "to_seq < from_seq");
  if (lines_len > limits.max_audit_bytes) {
    return OverLimit("batch_audit_too_large", std::to_string(lines_len) + " bytes, limit " +
                                                  std::to_string(limits.max_audit_bytes));
  }
  if (!r.Bytes(lines_len, lines)) return Truncated();
  if (!lines.empty() && lines.back() != '\n') {
    return Malformed("batch_audit_malformed", "lines do not end in a newline");
  }
  a.from_hash = from_hash;
  a.to_hash = to_hash;
  a.lines = lines;
  return a;
}

}  // namespace

Result<DecodedBatch> DecodeBatch(std::string_view bytes, const DecodeLimits& limits) {
  OUTPOST_ASSIGN_OR_RETURN(EnvelopeFields envelope, ReadEnvelope(bytes, limits));
  OUTPOST_ASSIGN_OR_RETURN(std::string body, ZstdDecompress(envelope.frame, envelope.body_size));

  DecodedBatch out;
  out.body_bytes = body.size();
  Batch& b = out.batch;
  wire::Reader r(body);
  uint64_t first = 0, last = 0;
  uint32_t count = 0;
  OUTPOST_RETURN_IF_ERROR(ReadBodyHeader(r, limits, b, first, last, count));
  OUTPOST_RETURN_IF_ERROR(ReadRecords(r, count, limits, b));
  if (first != b.records.front().seq || last != b.records.back().seq) {
    return Malformed("batch_range", "first/last seq " + std::to_string(first) + ".." +
                                        std::to_string(last) + " disagree with the records");
  }
  size_t records_end = r.pos();
  if (envelope.flags & kFlagAudit) {
    OUTPOST_ASSIGN_OR_RETURN(BatchAudit a, ReadAudit(r, limits));
    b.audit = std::move(a);
  }
  if (r.left() != 0) return Malformed("batch_trailing_bytes", "bytes after the last field");
  out.key = BatchKeyFields{
      .site_id = b.site_id,
      .node_id = b.node_id,
      .stream = b.stream,
      .first_seq = first,
      .last_seq = last,
      .content_sha256 = crypto::Sha256Hex(std::string_view(body).substr(0, records_end))};
  return out;
}

}  // namespace outpost::sync
