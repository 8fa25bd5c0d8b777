// Tests of the compliance policy: parsing, Apply at the edge field by field, Check at the hub,
// regions and min_count, and the hash-chained audit log.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/testing/test_util.h"
#include "policy/audit.h"
#include "policy/crypto.h"
#include "policy/evaluate.h"
#include "policy/policy.h"

namespace outpost::policy {
namespace {

constexpr std::string_view kPolicy = R"(format: 1
version: 7
name: pump-fleet
regions:
  eu: {raw: false, min_count: 20}
  us: {raw: true, min_count: 5}
sites:
  plant-eu: eu
  plant-us: us
kinds:
  anomaly:
    fields:
      v: keep
      kind: keep
      model: keep
      time_ms: {generalize: truncate_time, unit: hour}
      request_id: hash
      score_value: {generalize: round, step: 0.05}
      output: {generalize: round, step: 0.1}
      inputs.bearing_temp_c: {generalize: round, step: 0.5}
      inputs.*: hash
      position: {generalize: coarsen, grid: 0.1}
      flags: keep
  aggregate:
    fields:
      v: keep
      kind: keep
      rows: keep
      score: keep
  feedback:
    default: keep
    fields:
      note: drop
      request_id: hash
)";

std::shared_ptr<const Policy> TestPolicy() {
  auto policy = ParsePolicy(kPolicy);
  EXPECT_TRUE(policy.ok()) << policy.status().ToString();
  return *policy;
}

HashKey TestKey(std::string_view secret = "site-secret-0123456789") {
  auto key = HashKey::Create(secret);
  EXPECT_TRUE(key.ok());
  return *key;
}

RecordView Record(std::string_view kind, std::string_view payload,
                  std::string_view site = "plant-us") {
  return RecordView{.kind = kind, .site = site, .node = "n1", .stream = "pump", .seq = 42,
                    .payload = payload};
}

// The payload that leaves when `payload` is applied, or "<outcome>:<reason>".
std::string Applied(std::string_view kind, std::string_view payload,
                    std::string_view site = "plant-us") {
  auto policy = TestPolicy();
  Decision d = Apply(*policy, TestKey(), Record(kind, payload, site));
  if (!d.allowed()) return std::string(OutcomeName(d.outcome)) + ":" + d.reason;
  return d.payload;
}

// ---- parsing ----

TEST(ParsePolicy, ReadsVersionNameRegionsSitesAndDigest) {
  auto policy = TestPolicy();
  EXPECT_EQ(policy->version, 7);
  EXPECT_EQ(policy->name, "pump-fleet");
  EXPECT_EQ(policy->digest, "sha256:" + crypto::Sha256Hex(kPolicy));
  ASSERT_NE(policy->FindRegion("plant-eu"), nullptr);
  EXPECT_FALSE(policy->FindRegion("plant-eu")->raw_allowed);
  EXPECT_EQ(policy->FindRegion("plant-eu")->min_count, 20);
  EXPECT_EQ(policy->FindRegion("elsewhere"), nullptr);
  EXPECT_EQ(policy->kinds.at("aggregate").count_field, "rows");
  EXPECT_EQ(policy->kinds.at("anomaly").fields.at("inputs.*").action, Action::kHash);
  EXPECT_EQ(policy->kinds.at("anomaly").fields.at("time_ms").unit_ms, 3'600'000);
}

TEST(ParsePolicy, DigestChangesWithAnyByte) {
  std::string other(kPolicy);
  other += "# a comment\n";
  auto a = ParsePolicy(kPolicy);
  auto b = ParsePolicy(other);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->digest, (*b)->digest);
}

struct BadPolicy {
  std::string yaml;
  std::string key_in_error;
};

TEST(ParsePolicy, MistakesAreInvalidArgumentNamingTheKey) {
  const std::string head = "format: 1\nversion: 1\nregions: {r: {raw: true}}\n";
  const std::vector<BadPolicy> cases = {
      {"version: 1\nregions: {r: {raw: true}}\n", "format"},
      {"format: 2\nversion: 1\nregions: {r: {raw: true}}\n", "format"},
      {"format: 1\nregions: {r: {raw: true}}\n", "version"},
      {"format: 1\nversion: 0\nregions: {r: {raw: true}}\n", "version"},
      {"format: 1\nversion: 1\n", "regions"},
      {"format: 1\nversion: 1\nregions: {r: {min_count: 3}}\n", "regions.r.raw"},
      {"format: 1\nversion: 1\nregions: {r: {raw: maybe}}\n", "regions.r.raw"},
      {"format: 1\nversion: 1\nregions: {r: {raw: true, min_count: -1}}\n", "regions.r.min_count"},
      {head + "colour: blue\n", "colour"},
      {head + "default: hash\n", "default"},
      {head + "sites: {s1: nowhere}\n", "sites.s1"},
      {head + "default_region: nowhere\n", "default_region"},
      {head + "kinds: {anomaly: {fields: {x: hsah}}}\n", "kinds.anomaly.fields.x"},
      {head + "kinds: {anomaly: {fields: {x: {generalize: round}}}}\n",
       "kinds.anomaly.fields.x.step"},
      {head + "kinds: {anomaly: {fields: {x: {generalize: round, step: -1}}}}\n",
       "kinds.anomaly.fields.x.step"},
      {head + "kinds: {anomaly: {fields: {x: {generalize: truncate_time, unit: week}}}}\n",
       "kinds.anomaly.fields.x.unit"},
      {head + "kinds: {anomaly: {fields: {x: {generalize: blur}}}}\n",
       "kinds.anomaly.fields.x.generalize"},
      {head + "kinds: {anomaly: {fields: {\"a..b\": keep}}}\n", "kinds.anomaly.fields.a..b"},
      {head + "kinds: {anomaly: {fields: {\"*.b\": keep}}}\n", "kinds.anomaly.fields.*.b"},
      {head + "kinds: {anomaly: {colour: red}}\n", "kinds.anomaly.colour"},
      {head + "kinds: {telemetry: {fields: {x: keep}}}\n", "kinds.telemetry.class"},
      {head + "kinds: {aggregate: {fields: {v: keep}}}\n", "kinds.aggregate.fields"},
      {head + "kinds: {aggregate: {fields: {rows: hash}}}\n", "kinds.aggregate.fields"},
      {head + "kinds: {x: {class: raw, count_field: n, fields: {n: drop}}}\n",
       "kinds.x.count_field"},
      {head + "regions: {q: {raw: true}}\n", "regions"},  // repeated top-level key
      {"format: 1\n  version: [\n", "policy"},
      {"- a\n- b\n", "policy"},
  };
  for (const BadPolicy& c : cases) {
    auto policy = ParsePolicy(c.yaml);
    ASSERT_FALSE(policy.ok()) << c.yaml;
    EXPECT_EQ(policy.status().code(), StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_NE(policy.status().message().find(c.key_in_error), std::string_view::npos)
        << c.yaml << " -> " << policy.status().ToString();
  }
}

TEST(ParsePolicy, RegionsAndSitesFollowTheRulesOfBaseNames) {
  const std::string head = "format: 1\nversion: 1\nregions: {r: {raw: true}}\n";
  const std::pair<std::string, std::string> refused[] = {
      {"format: 1\nversion: 1\nregions: {\"a/b\": {raw: true}}\n", "invalid_region"},
      {"format: 1\nversion: 1\nregions: {\"a:b\": {raw: true}}\n", "invalid_region"},
      {head + "sites: {\"a/b\": r}\n", "invalid_site_id"},
      {head + "sites: {\"-s\": r}\n", "invalid_site_id"},
  };
  for (const auto& [yaml, reason] : refused) {
    auto policy = ParsePolicy(yaml);
    ASSERT_FALSE(policy.ok()) << yaml;
    EXPECT_EQ(policy.status().code(), StatusCode::kInvalidArgument) << yaml;
    EXPECT_EQ(policy.status().reason(), reason) << policy.status().ToString();
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto policy, ParsePolicy(head + "sites: {\"Ship:9\": r}\n"));
  EXPECT_EQ(policy->sites.count("Ship:9"), 1u);
}

TEST(ParsePolicy, RefusesOversizedDocumentsAndTooManyKinds) {
  std::string big = "format: 1\nversion: 1\nregions: {r: {raw: true}}\nname: x\n#";
  big.append(kMaxPolicyBytes, 'x');
  EXPECT_EQ(ParsePolicy(big).status().code(), StatusCode::kInvalidArgument);

  std::string many = "format: 1\nversion: 1\nregions: {r: {raw: true}}\nkinds:\n";
  for (int i = 0; i < 65; ++i) many += "  k" + std::to_string(i) + ": {class: raw}\n";
  auto policy = ParsePolicy(many);
  ASSERT_FALSE(policy.ok());
  EXPECT_NE(policy.status().message().find("kinds"), std::string_view::npos);
}

// ---- Apply, field by field ----

TEST(Apply, KeepsNamedFieldsAndDropsUnnamedOnesByDefault) {
  EXPECT_EQ(Applied("anomaly", R"({"v":1,"kind":"anomaly","model":"pump","secret":"x",)"
                               R"("rule":"r","flags":[true,null,"a\"b"]})"),
            R"({"v":1,"kind":"anomaly","model":"pump","flags":[true,null,"a\"b"]})");
}

TEST(Apply, DefaultKeepPassesUnnamedFieldsAndExplicitDropStillDrops) {
  EXPECT_EQ(Applied("feedback", R"({"v":1,"model":"pump","label":1,"note":"secret text"})"),
            R"({"v":1,"model":"pump","label":1})");
}

TEST(Apply, HashesStringsNumbersAndObjectsWithTheSiteSecret) {
  auto policy = TestPolicy();
  HashKey key = TestKey();
  Decision d = Apply(*policy, key,
                     Record("anomaly", R"({"request_id":"r-42","inputs":{"speed_rpm":1450,)"
                                       R"("tag":{"a":1},"missing":null}})"));
  ASSERT_TRUE(d.allowed()) << d.reason << " " << d.detail;
  EXPECT_EQ(d.payload, std::string(R"({"request_id":")") + key.Digest("r-42") +
                           R"(","inputs":{"speed_rpm":")" + key.Digest("1450") +
                           R"(","tag":")" + key.Digest(R"({"a":1})") +
                           R"(","missing":null}})");
  EXPECT_EQ(key.Digest("r-42"), "h1:" + HmacSha256Hex("site-secret-0123456789", "r-42"));
  EXPECT_EQ(d.payload.find("r-42"), std::string::npos);
}

TEST(Apply, HashIsStableForOneSecretAndDiffersForAnother) {
  auto policy = TestPolicy();
  auto record = Record("anomaly", R"({"request_id":"r-42"})");
  Decision a = Apply(*policy, TestKey(), record);
  Decision b = Apply(*policy, TestKey(), record);
  Decision c = Apply(*policy, TestKey("another-site-secret-987"), record);
  ASSERT_TRUE(a.allowed() && b.allowed() && c.allowed());
  EXPECT_EQ(a.payload, b.payload);
  EXPECT_NE(a.payload, c.payload);
  // Two different values never share a digest in practice.
  Decision other = Apply(*policy, TestKey(), Record("anomaly", R"({"request_id":"r-43"})"));
  EXPECT_NE(a.payload, other.payload);
}

TEST(HashKey, RefusesShortOrHugeSecrets) {
  EXPECT_EQ(HashKey::Create("short").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HashKey::Create(std::string(1025, 'k')).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(HashKey::Create(std::string(16, 'k')).ok());
}

TEST(Apply, RoundsNumbersToTheStepIncludingArraysAndIntegers) {
  EXPECT_EQ(Applied("anomaly", R"({"score_value":0.973,"output":[0.12,0.88,1],)"
                               R"("inputs":{"bearing_temp_c":81.7}})"),
            R"({"score_value":0.9500000000000001,"output":[0.1,0.9,1],)"
            R"("inputs":{"bearing_temp_c":81.5}})");
  EXPECT_EQ(Applied("anomaly", R"({"inputs":{"bearing_temp_c":-3}})"),
            R"({"inputs":{"bearing_temp_c":-3}})");
}

TEST(Apply, TruncatesTimestampsToTheUnit) {
  EXPECT_EQ(Applied("anomaly", R"({"time_ms":1700000000123})"), R"({"time_ms":1699999200000})");
}

TEST(Apply, CoarsensCoordinatesToTheGrid) {
  EXPECT_EQ(Applied("anomaly", R"({"position":{"lat":52.5219,"lon":-13.4049}})"),
            R"({"position":{"lat":52.5,"lon":-13.5}})");
  EXPECT_EQ(Applied("anomaly", R"({"position":[52.5219,13.4049]})"),
            R"({"position":[52.5,13.4]})");
}

TEST(Apply, GeneralizingANonNumberIsRejectedNamingTheField) {
  auto policy = TestPolicy();
  Decision d = Apply(*policy, TestKey(), Record("anomaly", R"({"time_ms":"yesterday"})"));
  EXPECT_EQ(d.outcome, Outcome::kRejected);
  EXPECT_EQ(d.reason, "field_type_mismatch");
  EXPECT_NE(d.detail.find("time_ms"), std::string::npos);
  EXPECT_EQ(Applied("anomaly", R"({"time_ms":-5})"), "rejected:field_type_mismatch");
  EXPECT_EQ(Applied("anomaly", R"({"time_ms":1.5})"), "rejected:field_type_mismatch");
  EXPECT_EQ(Applied("anomaly", R"({"position":{"lat":"north"}})"),
            "rejected:field_type_mismatch");
}

TEST(Apply, ExactRuleWinsOverWildcardAndOddMemberNamesOnlyMatchWildcards) {
  auto policy = TestPolicy();
  HashKey key = TestKey();
  Decision d = Apply(*policy, key,
                     Record("anomaly", R"({"inputs":{"bearing_temp_c":80.1,"a.b":7},)"
                                       R"("inputs.bearing_temp_c":99})"));
  ASSERT_TRUE(d.allowed()) << d.detail;
  // "inputs.bearing_temp_c" as one top-level name is not the nested path: default drop.
  EXPECT_EQ(d.payload, std::string(R"({"inputs":{"bearing_temp_c":80,"a.b":")") +
                           key.Digest("7") + R"("}})");
}

TEST(Apply, AnObjectLeftEmptyIsDropped) {
  auto policy = ParsePolicy(R"(format: 1
version: 1
regions: {r: {raw: true}}
default_region: r
kinds:
  anomaly:
    fields:
      v: keep
      inputs.kept: keep
)");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  Decision d = Apply(**policy, TestKey(), Record("anomaly", R"({"v":1,"inputs":{"other":1}})"));
  ASSERT_TRUE(d.allowed());
  EXPECT_EQ(d.payload, R"({"v":1})");
}

// ---- regions, kinds, counts ----

TEST(Apply, AggregatesOnlyRegionNeverLetsARawRecordThrough) {
  auto policy = TestPolicy();
  for (std::string_view kind : {"anomaly", "feedback"}) {
    for (std::string_view payload : {R"({"v":1})", R"({})", R"(not json)", R"({"rows":1000})"}) {
      Decision d = Apply(*policy, TestKey(), Record(kind, payload, "plant-eu"));
      EXPECT_EQ(d.outcome, Outcome::kWithheld) << kind << " " << payload;
      EXPECT_EQ(d.reason, "raw_not_allowed_in_region");
      EXPECT_TRUE(d.payload.empty());
    }
  }
  // The same record from a raw-allowed region leaves.
  EXPECT_EQ(Applied("anomaly", R"({"v":1})", "plant-us"), R"({"v":1})");
  // Aggregates leave the aggregates-only region.
  EXPECT_EQ(Applied("aggregate", R"({"v":1,"rows":25,"site_note":"x"})", "plant-eu"),
            R"({"v":1,"rows":25})");
}

TEST(Apply, MinCountWithholdsSmallAggregates) {
  EXPECT_EQ(Applied("aggregate", R"({"rows":19})", "plant-eu"),
            "withheld:aggregate_below_min_count");
  EXPECT_EQ(Applied("aggregate", R"({"rows":20})", "plant-eu"), R"({"rows":20})");
  EXPECT_EQ(Applied("aggregate", R"({"rows":4})", "plant-us"),
            "withheld:aggregate_below_min_count");
  EXPECT_EQ(Applied("aggregate", R"({"v":1})", "plant-us"), "rejected:count_missing");
  EXPECT_EQ(Applied("aggregate", R"({"rows":-3})", "plant-us"), "rejected:count_missing");
  EXPECT_EQ(Applied("aggregate", R"({"rows":"many"})", "plant-us"), "rejected:count_missing");
}

TEST(Apply, UnknownKindsAndUnboundSitesAreWithheld) {
  EXPECT_EQ(Applied("sample", R"({"v":1})"), "withheld:kind_not_allowed");
  EXPECT_EQ(Applied("telemetry", R"({"v":1})"), "withheld:kind_not_allowed");
  EXPECT_EQ(Applied("anomaly", R"({"v":1})", "plant-unknown"), "withheld:site_not_bound");
}

TEST(Apply, MalformedPayloadsGiveAClearReason) {
  auto policy = TestPolicy();
  const std::vector<std::string> bad = {
      "", "not json", "[1,2]", "\"text\"", "{\"v\":1", "{\"v\":1,\"v\":2}",
      "{\"inputs\":{\"x\":1,\"x\":2}}", std::string(40, '[') + std::string(40, ']'),
      "{\"flags\":" + std::string(40, '[') + std::string(40, ']') + "}", "{\"v\":\"\xff\"}"};
  for (const std::string& payload : bad) {
    Decision d = Apply(*policy, TestKey(), Record("anomaly", payload));
    EXPECT_EQ(d.outcome, Outcome::kRejected) << payload;
    EXPECT_EQ(d.reason, "malformed_payload") << payload;
    EXPECT_FALSE(d.detail.empty());
  }
  std::string huge = "{\"v\":\"" + std::string(kMaxPayloadBytes, 'a') + "\"}";
  EXPECT_EQ(Apply(*policy, TestKey(), Record("anomaly", huge)).reason, "payload_too_large");
}

// ---- Check at the hub ----

TEST(Check, AcceptsWhatApplyLetsOut) {
  auto policy = TestPolicy();
  const std::vector<std::pair<std::string, std::string>> records = {
      {"anomaly", R"({"v":1,"kind":"anomaly","model":"pump","time_ms":1700000000123,)"
                  R"("request_id":"r-1","score_value":0.973,"output":[0.12,0.88],"extra":1,)"
                  R"("inputs":{"bearing_temp_c":81.7,"speed_rpm":1450,"x":null},)"
                  R"("position":{"lat":52.5219,"lon":13.4049},"flags":[1]})"},
      {"aggregate", R"({"v":1,"kind":"aggregate","rows":340,"score":{"counts":[1,2]}})"},
      {"feedback", R"({"v":1,"model":"pump","request_id":"r-42","label":1,"note":"n"})"},
  };
  for (const auto& [kind, payload] : records) {
    Decision applied = Apply(*policy, TestKey(), Record(kind, payload));
    ASSERT_TRUE(applied.allowed()) << kind << " " << applied.reason << " " << applied.detail;
    Decision checked = Check(*policy, Record(kind, applied.payload));
    EXPECT_TRUE(checked.allowed()) << applied.payload << " " << checked.reason << " "
                                   << checked.detail;
    EXPECT_EQ(checked.payload, applied.payload);
  }
}

TEST(Check, RejectsNonConformingPayloadsAtTheHub) {
  auto policy = TestPolicy();
  struct Case {
    std::string kind, site, payload, reason, path;
  };
  const std::string digest = TestKey().Digest("r-1");
  const std::vector<Case> cases = {
      {"anomaly", "plant-us", R"({"v":1,"secret":"x"})", "field_not_allowed", "secret"},
      {"feedback", "plant-us", R"({"v":1,"note":"free text"})", "field_not_allowed", "note"},
      {"anomaly", "plant-us", R"({"request_id":"r-1"})", "field_not_hashed", "request_id"},
      {"anomaly", "plant-us", R"({"inputs":{"speed_rpm":1450}})", "field_not_hashed",
       "inputs.speed_rpm"},
      {"anomaly", "plant-us", R"({"request_id":")" + digest.substr(0, 20) + R"("})",
       "field_not_hashed", "request_id"},
      {"anomaly", "plant-us", R"({"time_ms":1700000000123})", "field_not_generalized", "time_ms"},
      {"anomaly", "plant-us", R"({"score_value":0.973})", "field_not_generalized", "score_value"},
      {"anomaly", "plant-us", R"({"inputs":{"bearing_temp_c":81.7}})", "field_not_generalized",
       "inputs.bearing_temp_c"},
      {"anomaly", "plant-us", R"({"position":[52.5219,13.4]})", "field_not_generalized",
       "position"},
      {"anomaly", "plant-eu", R"({"v":1})", "raw_not_allowed_in_region", ""},
      {"aggregate", "plant-eu", R"({"rows":3})", "aggregate_below_min_count", ""},
      {"sample", "plant-us", R"({"v":1})", "kind_not_allowed", ""},
      {"anomaly", "plant-us", R"({"v":1,"v":1})", "malformed_payload", ""},
  };
  for (const Case& c : cases) {
    Decision d = Check(*policy, Record(c.kind, c.payload, c.site));
    EXPECT_EQ(d.outcome, Outcome::kRejected) << c.payload;
    EXPECT_EQ(d.reason, c.reason) << c.payload << " " << d.detail;
    EXPECT_NE(d.detail.find(c.path), std::string::npos) << d.detail;
  }
  // A well-formed digest passes.
  EXPECT_TRUE(Check(*policy, Record("anomaly", R"({"request_id":")" + digest + R"("})")).allowed());
}

// ---- audit log ----

AuditEntry Entry(uint64_t rseq, Outcome outcome = Outcome::kAllowed) {
  return AuditEntry{.time_ms = 1700000000000 + static_cast<int64_t>(rseq),
                    .decision = outcome,
                    .reason = outcome == Outcome::kAllowed ? "" : "raw_not_allowed_in_region",
                    .kind = "anomaly",
                    .site = "plant-eu",
                    .node = "n1",
                    .stream = "pump \"main\"",
                    .rseq = rseq,
                    .policy_digest = "sha256:" + std::string(64, 'a')};
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(text.substr(start, end - start));
  }
  return lines;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// A log of five entries written by AuditLog, its text and head.
struct WrittenLog {
  testing::TempDir dir;
  std::string text;
  ChainHead head;
};

std::unique_ptr<WrittenLog> WriteFive() {
  auto out = std::make_unique<WrittenLog>();
  auto log = AuditLog::Open(out->dir.File("audit.log"));
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  std::vector<AuditEntry> first = {Entry(1), Entry(2, Outcome::kWithheld)};
  EXPECT_TRUE((*log)->Append(first).ok());
  std::vector<AuditEntry> rest = {Entry(3), Entry(4), Entry(5)};
  EXPECT_TRUE((*log)->Append(rest).ok());
  out->head = (*log)->head();
  auto text = ReadFile(out->dir.File("audit.log"));
  EXPECT_TRUE(text.ok());
  out->text = *text;
  return out;
}

TEST(AuditLog, AppendsAChainThatVerifies) {
  auto log = WriteFive();
  EXPECT_EQ(log->head.seq, 5u);
  auto lines = Lines(log->text);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(log->head.hash, crypto::Sha256Hex(lines[4]));
  EXPECT_EQ(lines[0], FormatAuditLine(1, Entry(1), std::string(64, '0')));
  EXPECT_NE(lines[1].find(R"("decision":"withheld","reason":"raw_not_allowed_in_region")"),
            std::string::npos);
  auto head = VerifyAuditChain(log->text, {}, log->head);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(*head, log->head);
}

TEST(AuditLog, ReopeningContinuesTheChain) {
  testing::TempDir dir;
  const std::string path = dir.File("audit.log");
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto log, AuditLog::Open(path));
    std::vector<AuditEntry> e = {Entry(1), Entry(2)};
    OUTPOST_ASSERT_OK(log->Append(e));
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto log, AuditLog::Open(path));
  EXPECT_EQ(log->head().seq, 2u);
  std::vector<AuditEntry> e = {Entry(3)};
  OUTPOST_ASSERT_OK(log->Append(e));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(path));
  auto head = VerifyAuditChain(text);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->seq, 3u);
}

TEST(AuditLog, OpenCutsATornLastLineButRefusesAnEditedChain) {
  testing::TempDir dir;
  const std::string path = dir.File("audit.log");
  auto written = WriteFive();
  OUTPOST_ASSERT_OK(WriteFileAtomically(path, written->text + R"({"seq":6,"time)"));
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto log, AuditLog::Open(path));
    EXPECT_EQ(log->head(), written->head);
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(path));
  EXPECT_EQ(text, written->text);

  auto lines = Lines(written->text);
  lines[1].replace(lines[1].find("withheld"), 8, "allowed!");
  OUTPOST_ASSERT_OK(WriteFileAtomically(path, Join(lines)));
  auto log = AuditLog::Open(path);
  EXPECT_EQ(log.status().code(), StatusCode::kDataLoss);
}

TEST(AuditLog, RecordsEachDecisionWithTheRecordKeyAndThePolicyDigest) {
  auto policy = TestPolicy();
  testing::TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto log, AuditLog::Open(dir.File("audit.log")));
  RecordView allowed = Record("aggregate", R"({"rows":25})", "plant-eu");
  RecordView withheld = Record("anomaly", R"({"v":1})", "plant-eu");
  withheld.seq = 43;
  std::vector<AuditEntry> entries = {
      MakeAuditEntry(*policy, allowed, Apply(*policy, TestKey(), allowed), 1000),
      MakeAuditEntry(*policy, withheld, Apply(*policy, TestKey(), withheld), 2000)};
  OUTPOST_ASSERT_OK(log->Append(entries));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(dir.File("audit.log")));
  auto lines = Lines(text);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], R"({"seq":1,"time_ms":1000,"decision":"allowed","reason":"",)"
                      R"("kind":"aggregate","site":"plant-eu","node":"n1","stream":"pump",)"
                      R"("rseq":42,"policy":")" + policy->digest + R"(","prev":")" +
                          std::string(64, '0') + R"("})");
  EXPECT_NE(lines[1].find(R"("decision":"withheld","reason":"raw_not_allowed_in_region")"),
            std::string::npos);
  EXPECT_NE(lines[1].find(R"("rseq":43)"), std::string::npos);
  EXPECT_NE(lines[1].find(R"("prev":")" + crypto::Sha256Hex(lines[0])), std::string::npos);
}

void ExpectChainError(const Result<ChainHead>& result, std::string_view reason) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(result.status().message().starts_with(reason)) << result.status().ToString();
}

TEST(VerifyAuditChain, DetectsACutInTheMiddleAtTheStartAndAtTheEnd) {
  auto log = WriteFive();
  auto lines = Lines(log->text);
  auto middle = lines;
  middle.erase(middle.begin() + 2);
  ExpectChainError(VerifyAuditChain(Join(middle)), "audit_cut");
  auto start = lines;
  start.erase(start.begin());
  ExpectChainError(VerifyAuditChain(Join(start)), "audit_cut");
  auto end = lines;
  end.pop_back();
  // Without a known head a shorter chain is valid; with it, the cut shows.
  EXPECT_TRUE(VerifyAuditChain(Join(end)).ok());
  ExpectChainError(VerifyAuditChain(Join(end), {}, log->head), "audit_cut");
}

TEST(VerifyAuditChain, DetectsAnEditOfAnyEntry) {
  auto log = WriteFive();
  auto lines = Lines(log->text);
  for (size_t i = 0; i < lines.size(); ++i) {
    auto edited = lines;
    edited[i].replace(edited[i].find("plant-eu"), 8, "plant-xx");
    ExpectChainError(VerifyAuditChain(Join(edited), {}, log->head), "audit_edited");
  }
}

TEST(VerifyAuditChain, DetectsAReorder) {
  auto log = WriteFive();
  auto lines = Lines(log->text);
  std::swap(lines[1], lines[2]);
  ExpectChainError(VerifyAuditChain(Join(lines)), "audit_cut");  // 1, 3: entry 2 missing
  auto again = Lines(log->text);
  auto repeated = again;
  repeated.insert(repeated.begin() + 3, again[1]);
  ExpectChainError(VerifyAuditChain(Join(repeated)), "audit_reorder");
  auto reversed = again;
  std::reverse(reversed.begin() + 1, reversed.end());
  ExpectChainError(VerifyAuditChain(Join(reversed)), "audit_cut");
  // Renumbered to hide the swap: the hashes no longer chain.
  auto renumbered = Lines(log->text);
  std::swap(renumbered[1], renumbered[2]);
  renumbered[1].replace(renumbered[1].find("\"seq\":3"), 7, "\"seq\":2");
  renumbered[2].replace(renumbered[2].find("\"seq\":2"), 7, "\"seq\":3");
  ExpectChainError(VerifyAuditChain(Join(renumbered)), "audit_edited");
}

TEST(VerifyAuditChain, VerifiesAPieceFromAnAnchorAndRejectsMalformedLines) {
  auto log = WriteFive();
  auto lines = Lines(log->text);
  ChainHead anchor{.seq = 2, .hash = crypto::Sha256Hex(lines[1])};
  auto head = VerifyAuditChain(Join({lines[2], lines[3], lines[4]}), anchor, log->head);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(*head, log->head);
  ExpectChainError(VerifyAuditChain("not json\n"), "audit_malformed");
  ExpectChainError(VerifyAuditChain(lines[0]), "audit_malformed");  // no final newline
  ExpectChainError(VerifyAuditChain(R"({"seq":1})" "\n"), "audit_malformed");
}

}  // namespace
}  // namespace outpost::policy
