#include "sync/batch.h"

#include <gtest/gtest.h>

#include <string>

#include "base/coding.h"
#include "base/testing/test_util.h"
#include "sync/compress.h"
#include "sync/wire.h"

namespace outpost::sync {
namespace {

Batch SampleBatch(size_t n = 3) {
  Batch b{.site_id = "plant-7", .node_id = "n1", .stream = "pump"};
  for (size_t i = 0; i < n; ++i) {
    b.records.push_back({.seq = 10 + 2 * i,
                         .kind = 1,
                         .created_ms = 1'700'000'000'000 + static_cast<int64_t>(i),
                         .payload = "{\"x\":" + std::to_string(i) + "}"});
  }
  return b;
}

// An envelope around `body` as it is, so tests can hand Decode any body.
std::string Envelope(const std::string& body, uint8_t flags = 0, uint8_t version = 1,
                     int64_t announced = -1) {
  std::string frame = *ZstdCompress(body, 1);
  std::string out = "OPSB";
  wire::PutU8(out, version);
  wire::PutU8(out, flags);
  PutU16LE(out, 0);
  PutU32LE(out,
           announced < 0 ? static_cast<uint32_t>(body.size()) : static_cast<uint32_t>(announced));
  PutU32LE(out, static_cast<uint32_t>(frame.size()));
  return out + frame;
}

std::string Body(uint64_t first, uint64_t last, const std::vector<BatchRecord>& records,
                 std::string_view site = "s", uint32_t count_override = 0) {
  std::string body;
  wire::PutStr8(body, site);
  wire::PutStr8(body, "n");
  wire::PutStr8(body, "st");
  PutU64LE(body, first);
  PutU64LE(body, last);
  PutU32LE(body, count_override ? count_override : static_cast<uint32_t>(records.size()));
  for (const BatchRecord& r : records) {
    PutU64LE(body, r.seq);
    wire::PutU8(body, r.kind);
    PutU64LE(body, static_cast<uint64_t>(r.created_ms));
    PutU32LE(body, static_cast<uint32_t>(r.payload.size()));
    body += r.payload;
  }
  return body;
}

std::string ReasonOfDecode(std::string_view bytes, const DecodeLimits& limits = {}) {
  Result<DecodedBatch> got = DecodeBatch(bytes, limits);
  if (got.ok()) return "ok";
  return std::string(ReasonOf(got.status()));
}

TEST(Batch, RoundTripsRecordsAndAudit) {
  Batch b = SampleBatch();
  b.audit = BatchAudit{.from_seq = 4, .from_hash = std::string(64, 'a'), .to_seq = 6,
                       .to_hash = std::string(64, 'b'), .lines = "{\"seq\":5}\n{\"seq\":6}\n"};
  Result<std::string> bytes = EncodeBatch(b);
  OUTPOST_ASSERT_OK(bytes);
  Result<DecodedBatch> got = DecodeBatch(*bytes);
  OUTPOST_ASSERT_OK(got);
  EXPECT_EQ(got->batch.site_id, "plant-7");
  EXPECT_EQ(got->batch.node_id, "n1");
  EXPECT_EQ(got->batch.stream, "pump");
  EXPECT_EQ(got->batch.records, b.records);
  EXPECT_EQ(got->batch.audit, b.audit);
  EXPECT_EQ(got->key.first_seq, 10u);
  EXPECT_EQ(got->key.last_seq, 14u);
  EXPECT_EQ(got->key.content_sha256.size(), 64u);
  EXPECT_EQ(got->key, *KeyOf(b));
}

TEST(Batch, KeyCoversRecordsButNotTheAuditSegment) {
  Batch a = SampleBatch();
  Batch b = SampleBatch();
  b.audit = BatchAudit{.to_seq = 1, .lines = "{}\n"};
  EXPECT_EQ(DecodeBatch(*EncodeBatch(a))->key, DecodeBatch(*EncodeBatch(b))->key);
  Batch c = SampleBatch();
  c.records[1].payload = "{\"x\":9}";
  EXPECT_NE(KeyOf(a)->content_sha256, KeyOf(c)->content_sha256);
  Batch d = SampleBatch();
  d.records[2].created_ms += 1;
  EXPECT_NE(KeyOf(a)->content_sha256, KeyOf(d)->content_sha256);
  Batch e = SampleBatch();
  e.node_id = "n2";
  EXPECT_NE(KeyOf(a)->content_sha256, KeyOf(e)->content_sha256);
}

TEST(Batch, CompressesRepetitiveRecords) {
  Batch b = SampleBatch(1000);
  for (auto& r : b.records) r.payload = std::string(200, 'x');
  std::string bytes = *EncodeBatch(b);
  EXPECT_LT(bytes.size(), 1000u * 200 / 10);
  OUTPOST_ASSERT_OK(DecodeBatch(bytes));
}

TEST(Batch, EncodeRefusesWhatDecodeWould) {
  Batch b = SampleBatch();
  b.stream = "bad stream";
  EXPECT_EQ(ReasonOf(EncodeBatch(b).status()), "batch_malformed");
  b = SampleBatch();
  b.records.clear();
  EXPECT_EQ(ReasonOf(EncodeBatch(b).status()), "batch_malformed");
  b = SampleBatch();
  std::swap(b.records[0], b.records[1]);
  EXPECT_EQ(ReasonOf(EncodeBatch(b).status()), "batch_seq_order");
  b = SampleBatch();
  b.records[0].kind = 9;
  EXPECT_EQ(ReasonOf(EncodeBatch(b).status()), "batch_malformed");
  b = SampleBatch();
  b.audit = BatchAudit{.from_hash = "xyz"};
  EXPECT_EQ(ReasonOf(EncodeBatch(b).status()), "batch_audit_malformed");
  b = SampleBatch();
  b.audit = BatchAudit{.from_seq = 3, .to_seq = 2};
  EXPECT_EQ(ReasonOf(EncodeBatch(b).status()), "batch_audit_malformed");
  b = SampleBatch();
  b.records[0].payload.assign((1 << 20) + 1, 'p');
  EXPECT_EQ(ReasonOf(EncodeBatch(b).status()), "batch_payload_too_large");
}

TEST(Batch, EnvelopeReasonCodes) {
  std::string good = *EncodeBatch(SampleBatch());
  EXPECT_EQ(ReasonOfDecode(good), "ok");
  EXPECT_EQ(ReasonOfDecode(good.substr(0, 10)), "batch_truncated");
  EXPECT_EQ(ReasonOfDecode(good.substr(0, good.size() - 1)), "batch_truncated");
  EXPECT_EQ(ReasonOfDecode(good + "x"), "batch_trailing_bytes");
  std::string bad = good;
  bad[0] = 'X';
  EXPECT_EQ(ReasonOfDecode(bad), "batch_bad_magic");
  bad = good;
  bad[4] = 2;
  EXPECT_EQ(ReasonOfDecode(bad), "batch_version");
  bad = good;
  bad[5] = 2;
  EXPECT_EQ(ReasonOfDecode(bad), "batch_flags");
  bad = good;
  bad[6] = 1;
  EXPECT_EQ(ReasonOfDecode(bad), "batch_flags");
  bad = good;
  bad[20] ^= 0x5a;  // inside the zstd frame
  EXPECT_EQ(ReasonOfDecode(bad), "batch_decompress");
  EXPECT_EQ(ReasonOfDecode(std::string(100, 'z'), {.max_encoded_bytes = 50}), "batch_too_large");
}

TEST(Batch, AnnouncedSizeMustMatchTheFrame) {
  std::string body = Body(1, 1, {{.seq = 1, .kind = 1, .payload = "{}"}});
  EXPECT_EQ(ReasonOfDecode(Envelope(body)), "ok");
  EXPECT_EQ(ReasonOfDecode(Envelope(body, 0, 1, body.size() + 1)), "batch_decompress");
  EXPECT_EQ(ReasonOfDecode(Envelope(body, 0, 1, body.size() - 1)), "batch_decompress");
}

TEST(Batch, LimitsOnBodyRatioRecordsPayloadAndAudit) {
  // 8 MiB of zeros compresses far beyond a ratio of 250.
  std::string bomb(8 << 20, '\0');
  EXPECT_EQ(ReasonOfDecode(Envelope(bomb)), "batch_ratio");
  EXPECT_EQ(ReasonOfDecode(Envelope(bomb), {.max_body_bytes = 1 << 20}), "batch_body_too_large");

  std::vector<BatchRecord> many;
  for (uint64_t i = 1; i <= 20; ++i) many.push_back({.seq = i, .kind = 6, .payload = "{}"});
  std::string body = Body(1, 20, many);
  EXPECT_EQ(ReasonOfDecode(Envelope(body), {.max_records = 19}), "batch_too_many_records");
  EXPECT_EQ(ReasonOfDecode(Envelope(body), {.max_records = 20}), "ok");
  // A record count far beyond what the body holds is refused before anything is reserved.
  EXPECT_EQ(ReasonOfDecode(Envelope(Body(1, 20, many, "s", 9'000))), "batch_truncated");

  std::string payload(5000, 'p');
  std::string big = Body(1, 1, {{.seq = 1, .kind = 1, .payload = payload}});
  EXPECT_EQ(ReasonOfDecode(Envelope(big), {.max_payload_bytes = 4999}),
            "batch_payload_too_large");

  Batch b = SampleBatch();
  b.audit = BatchAudit{.to_seq = 1, .lines = std::string(3000, 'l') + "\n"};
  EXPECT_EQ(ReasonOfDecode(*EncodeBatch(b), {.max_audit_bytes = 3000}), "batch_audit_too_large");
}

TEST(Batch, BodyReasonCodes) {
  BatchRecord r1{.seq = 1, .kind = 1, .payload = "{}"};
  BatchRecord r2{.seq = 2, .kind = 1, .payload = "{}"};
  EXPECT_EQ(ReasonOfDecode(Envelope(Body(1, 2, {r1, r2}))), "ok");
  EXPECT_EQ(ReasonOfDecode(Envelope(Body(1, 3, {r1, r2}))), "batch_range");
  EXPECT_EQ(ReasonOfDecode(Envelope(Body(0, 2, {r1, r2}))), "batch_range");
  EXPECT_EQ(ReasonOfDecode(Envelope(Body(2, 1, {r2, r1}))), "batch_seq_order");
  EXPECT_EQ(ReasonOfDecode(Envelope(Body(1, 1, {r1, r1}))), "batch_seq_order");
  EXPECT_EQ(ReasonOfDecode(Envelope(Body(1, 1, {}))), "batch_malformed");
  EXPECT_EQ(ReasonOfDecode(Envelope(Body(1, 2, {r1, r2}, ""))), "batch_malformed");
  EXPECT_EQ(ReasonOfDecode(Envelope(Body(1, 2, {r1, r2}, "a/b"))), "batch_malformed");
  BatchRecord zero{.seq = 0, .kind = 1};
  EXPECT_EQ(ReasonOfDecode(Envelope(Body(0, 0, {zero}))), "batch_malformed");
  BatchRecord bad_kind{.seq = 1, .kind = 8};
  EXPECT_EQ(ReasonOfDecode(Envelope(Body(1, 1, {bad_kind}))), "batch_malformed");
  std::string body = Body(1, 2, {r1, r2});
  EXPECT_EQ(ReasonOfDecode(Envelope(body + "x")), "batch_trailing_bytes");
  EXPECT_EQ(ReasonOfDecode(Envelope(body.substr(0, body.size() - 1))), "batch_truncated");
  // The audit flag with no segment, then a segment with bad fields.
  EXPECT_EQ(ReasonOfDecode(Envelope(body, 1)), "batch_truncated");
  std::string audit = body;
  PutU64LE(audit, 0);
  audit += std::string(64, '0');
  PutU64LE(audit, 1);
  audit += std::string(64, 'G');
  PutU32LE(audit, 0);
  EXPECT_EQ(ReasonOfDecode(Envelope(audit, 1)), "batch_audit_malformed");
  std::string no_newline = body;
  PutU64LE(no_newline, 0);
  no_newline += std::string(64, '0');
  PutU64LE(no_newline, 1);
  no_newline += std::string(64, 'a');
  PutU32LE(no_newline, 3);
  no_newline += "abc";
  EXPECT_EQ(ReasonOfDecode(Envelope(no_newline, 1)), "batch_audit_malformed");
}

TEST(Batch, ReasonOfReadsTheCode) {
  EXPECT_EQ(ReasonOf(ErrorWithReason(StatusCode::kInvalidArgument, "batch_range", "x")),
            "batch_range");
  // The reason is the Status's own, kept through context, never read from the message.
  EXPECT_EQ(ReasonOf(ErrorWithReason(StatusCode::kInvalidArgument, "batch_range", "x")
                         .WithContext("upload")),
            "batch_range");
  EXPECT_EQ(ReasonOf(InvalidArgumentError("batch_range: x")), "");
  EXPECT_EQ(ReasonOf(Status()), "");
}

}  // namespace
}  // namespace outpost::sync
