// The outbox when a site produces more than it can hold (FORMAT.md sections 3, 9, 11, 12):
// reserved shares, the coalesced summary record and its bookkeeping bound, storm sampling,
// and the account of every raised record, across a reopen and a crash in the middle of an
// eviction.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/file.h"
#include "base/json/json.h"
#include "base/sqlite/file_faults.h"
#include "base/sqlite/sqlite.h"
#include "base/testing/test_util.h"
#include "outbox/outbox.h"

namespace outpost::outbox {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// A wall time at the start of a clock hour (storms count per clock hour).
const Clock::WallTime kOnTheHour{hours(472'223)};

// 80 bytes charged per record on stream "s" with a 31-byte payload (1 + 31 + 48).
constexpr uint64_t kCharge = 80;

std::string Payload31(int i) {
  std::string p = "payload-" + std::to_string(i);
  p.resize(31, '.');
  return p;
}

OutboxOptions Options(const testing::TempDir& dir, Clock* clock,
                      sqlite::FileFaults* faults = nullptr) {
  return OutboxOptions{.path = dir.File("outbox.db"),
                       .site_id = "site-1",
                       .node_id = "node-1",
                       .clock = clock,
                       .faults = faults};
}

ClassPolicy& PolicyOf(OutboxOptions& o, Kind kind) { return o.classes[static_cast<int>(kind) - 1]; }

NewRecord Rec(Kind kind, std::string payload, std::string rule = std::string()) {
  return NewRecord{
      .kind = kind, .stream = "s", .payload = std::move(payload), .rule = std::move(rule)};
}

// A sample flood: every minute for `n_hours`, one 1 KB sample of each of `rules` ("" for none),
// the clock moving on a minute after each.
void FloodSamples(Outbox& box, FakeClock& clock, int n_hours,
                  const std::vector<std::string>& rules) {
  const std::string payload(1000, 's');
  for (int minute = 0; minute < n_hours * 60; ++minute) {
    for (const std::string& rule : rules) {
      OUTPOST_ASSERT_OK(box.Append(Rec(Kind::kSample, payload, rule)));
    }
    clock.Advance(minutes(1));
  }
}

const ClassStats& ClassOf(const OutboxStats& st, Kind kind) {
  for (const ClassStats& c : st.classes) {
    if (c.kind == kind) return c;
  }
  static const ClassStats kNone;
  return kNone;
}

void ExpectAccountBalances(const OutboxStats& st) {
  for (const ClassStats& c : st.classes) {
    EXPECT_EQ(c.raised_records, c.records + c.delivered_records + c.withheld_records +
                                    c.evicted_records + c.refused_records + c.sampled_out_records +
                                    c.quarantined_records)
        << KindName(c.kind);
  }
}

std::vector<Record> OfKind(Outbox& box, Kind kind) {
  auto r = box.Query({.kind = kind, .limit = 10000});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<Record>{};
}

TEST(OutboxShares, AReservedShareIsNeverTakenByAnotherClass) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 100 * kCharge;  // reserved: aggregate 10 records, drift 5, event 2
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  // A sample flood takes the shared room only: 100 - 10 - 5 - 2 = 83 records.
  for (int i = 0; i < 200; ++i) OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(i))));
  EXPECT_EQ(OfKind(*box, Kind::kSample).size(), 83u);
  // Every aggregate finds its room, without evicting anything.
  for (int i = 0; i < 10; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAggregate, Payload31(1000 + i))));
  }
  // Anomalies evict samples, never the aggregates' share, and are refused past the shared room.
  int refused = 0;
  for (int i = 0; i < 100; ++i) {
    Result<RecordKey> k = box->Append(Rec(Kind::kAnomaly, Payload31(2000 + i)));
    if (!k.ok()) {
      EXPECT_EQ(k.status().code(), StatusCode::kResourceExhausted);
      ++refused;
    }
  }
  EXPECT_EQ(refused, 17);
  EXPECT_EQ(OfKind(*box, Kind::kAggregate).size(), 10u);
  EXPECT_EQ(OfKind(*box, Kind::kAnomaly).size(), 83u);
  EXPECT_TRUE(OfKind(*box, Kind::kSample).empty());
  // A drift record still has its share.
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kDrift, Payload31(3000))));
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_LE(st.bytes, st.max_bytes);
  EXPECT_EQ(ClassOf(st, Kind::kAggregate).reserved_bytes, 10 * kCharge);
  EXPECT_EQ(ClassOf(st, Kind::kAggregate).evicted_records, 0u);
  EXPECT_EQ(ClassOf(st, Kind::kSample).evicted_records, 200u);  // 117 at the share, 83 later
  EXPECT_EQ(ClassOf(st, Kind::kAnomaly).refused_records, 17u);
  ExpectAccountBalances(st);
}

TEST(OutboxShares, AReservedClassGrowsPastItsShareIntoFreeRoom) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 100 * kCharge;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  for (int i = 0; i < 40; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAggregate, Payload31(i))));
  }
  EXPECT_EQ(OfKind(*box, Kind::kAggregate).size(), 40u);
  // Samples may not evict them; anomalies take back only what lies above the share.
  for (int i = 0; i < 100; ++i) {
    box->Append(Rec(Kind::kAnomaly, Payload31(100 + i))).status().IgnoreError();
  }
  EXPECT_EQ(OfKind(*box, Kind::kAggregate).size(), 10u);
  EXPECT_EQ(OfKind(*box, Kind::kAnomaly).size(), 83u);
}

TEST(OutboxShares, SharesOverAHundredPercentAreRefused) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  PolicyOf(o, Kind::kSample).reserved_percent = 90;
  Result<std::unique_ptr<Outbox>> box = Outbox::Open(o);
  EXPECT_EQ(box.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(box.status().message().find("reserved shares"), std::string_view::npos);
  o = Options(dir, &clock);
  o.summary_interval = milliseconds(0);
  EXPECT_EQ(Outbox::Open(o).status().code(), StatusCode::kInvalidArgument);
}

// --- The summary record and the bookkeeping bound. ---

struct Summary {
  int64_t from_ms = 0, to_ms = 0;
  uint64_t window_sample_evicted = 0;
  uint64_t sample_evicted = 0;  // the account at to_ms
  std::map<std::string, uint64_t> window_rule_evicted{};  // by rule name
};

std::vector<Summary> Summaries(Outbox& box, json::Parser& parser) {
  std::vector<Summary> out;
  for (const Record& r : OfKind(box, Kind::kEvent)) {
    Result<json::Value> v = parser.Parse(r.payload);
    EXPECT_TRUE(v.ok()) << r.payload;
    if (!v.ok() || (*v)["type"].GetString().value_or("") != "outbox_summary") continue;
    EXPECT_EQ(r.stream, "_outbox");
    Summary s;
    s.from_ms = (*v)["from_ms"].GetInt64().value_or(-1);
    s.to_ms = (*v)["to_ms"].GetInt64().value_or(-1);
    s.window_sample_evicted = (*v)["window"]["sample"]["evicted"].GetUint64().value_or(0);
    s.sample_evicted = (*v)["classes"]["sample"]["evicted"].GetUint64().value_or(0);
    for (json::Value rule : (*v)["rules"].Items()) {
      s.window_rule_evicted[std::string(rule["rule"].GetString().value_or(""))] =
          rule["evicted"].GetUint64().value_or(0);
    }
    out.push_back(s);
  }
  return out;
}

TEST(OutboxSummary, EvictionsAreReportedByOneSummaryPerIntervalWithinTheEventShare) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 200'000;  // the event share: 4,000 bytes
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  // Six hours of a sample flood, two 1 KB samples a minute: five times the bound.
  ASSERT_NO_FATAL_FAILURE(FloodSamples(*box, clock, 6, {"", ""}));
  json::Parser parser;
  std::vector<Summary> summaries = Summaries(*box, parser);
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  ASSERT_FALSE(summaries.empty());
  EXPECT_LE(summaries.size(), 6u);  // at most one per hour, not one per commit
  uint64_t reported = 0;
  for (size_t i = 0; i < summaries.size(); ++i) {
    EXPECT_GE(summaries[i].to_ms - summaries[i].from_ms, 3'600'000) << i;
    if (i > 0) {
      EXPECT_GE(summaries[i].from_ms, summaries[i - 1].to_ms) << i;
    }
    reported += summaries[i].window_sample_evicted;
    // The windows add up to the account each summary carries.
    EXPECT_EQ(reported, summaries[i].sample_evicted) << i;
  }
  EXPECT_GT(reported, 0u);
  EXPECT_LE(reported, ClassOf(st, Kind::kSample).evicted_records);
  // Bookkeeping stays inside the event share (2% of the bound), and the bound holds.
  EXPECT_LE(ClassOf(st, Kind::kEvent).bytes, ClassOf(st, Kind::kEvent).reserved_bytes);
  EXPECT_LE(st.bytes, st.max_bytes);
  ExpectAccountBalances(st);
}

TEST(OutboxSummary, AFullEventShareLengthensTheWindowAndLosesNoCount) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 100'000;  // the event share: 2,000 bytes, a summary or two
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  const std::string payload(1000, 's');
  for (int minute = 0; minute < 12 * 60; ++minute) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, payload)));
    clock.Advance(minutes(1));
  }
  json::Parser parser;
  std::vector<Summary> summaries = Summaries(*box, parser);
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  ASSERT_FALSE(summaries.empty());
  EXPECT_LT(summaries.size(), 12u);
  EXPECT_LE(ClassOf(st, Kind::kEvent).bytes, ClassOf(st, Kind::kEvent).reserved_bytes);
  // Deliver the summaries: the next one covers the whole lengthened window.
  OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch events,
                               box->Lease({.max_records = 100, .max_bytes = 1 << 20}));
  OUTPOST_ASSERT_OK(box->Ack(events.lease_id));
  for (int minute = 0; minute < 61; ++minute) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, payload)));
    clock.Advance(minutes(1));
  }
  std::vector<Summary> later = Summaries(*box, parser);
  ASSERT_FALSE(later.empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats after, box->Stats());
  uint64_t reported = 0;
  for (const Summary& s : summaries) reported += s.window_sample_evicted;
  for (const Summary& s : later) reported += s.window_sample_evicted;
  EXPECT_EQ(reported, later.back().sample_evicted);
  EXPECT_LE(reported, ClassOf(after, Kind::kSample).evicted_records);
  ExpectAccountBalances(after);
}

// --- Storms. ---

TEST(OutboxStorms, AStormKeepsTheFirstPerRuleAndHourAndAUniformSampleAndCountsTheRest) {
  testing::TempDir dir;
  FakeClock clock(kOnTheHour);
  OutboxOptions o = Options(dir, &clock);
  ClassPolicy& anomaly = PolicyOf(o, Kind::kAnomaly);
  anomaly.storm_first = 10;
  anomaly.storm_sample = 50;
  anomaly.storm_percent = 0;  // in a storm as soon as the first ten are kept
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  int sampled_out = 0;
  for (int i = 0; i < 2000; ++i) {
    Result<RecordKey> k = box->Append(Rec(Kind::kAnomaly, "storm-" + std::to_string(i), "hot"));
    if (!k.ok()) {
      EXPECT_EQ(k.status().reason(), "storm_sampled_out") << k.status().ToString();
      ++sampled_out;
    }
  }
  // Another rule of the same class is untouched.
  for (int i = 0; i < 5; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "calm-" + std::to_string(i), "calm")));
  }
  std::vector<Record> kept = OfKind(*box, Kind::kAnomaly);
  ASSERT_EQ(kept.size(), 10u + 50u + 5u);
  std::set<int> indices;
  for (const Record& r : kept) {
    if (r.payload.starts_with("storm-")) indices.insert(std::stoi(r.payload.substr(6)));
  }
  ASSERT_EQ(indices.size(), 60u);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(indices.count(i)) << i;
  // The sample reaches over the whole storm, not only its start.
  int late = 0;
  for (int i : indices) late += i >= 1000 ? 1 : 0;
  EXPECT_GE(late, 10);
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  const ClassStats& c = ClassOf(st, Kind::kAnomaly);
  EXPECT_EQ(c.raised_records, 2005u);
  EXPECT_EQ(c.sampled_out_records, 2000u - 60u);
  EXPECT_EQ(st.rejected_records, 0u);  // sampled out is not refused
  ExpectAccountBalances(st);
  bool found = false;
  for (const RuleStats& r : st.rules) {
    if (r.rule != "hot") continue;
    found = true;
    EXPECT_EQ(r.kind, Kind::kAnomaly);
    EXPECT_EQ(r.stream, "s");
    EXPECT_EQ(r.raised_records, 2000u);
    EXPECT_EQ(r.sampled_out_records, 1940u);
    EXPECT_EQ(r.window_raised, 2000u);
    EXPECT_TRUE(r.storm_from_ms.has_value());
  }
  EXPECT_TRUE(found);
  // The next hour starts counting afresh: its first ten are kept.
  clock.Advance(hours(1));
  for (int i = 0; i < 10; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, "next-" + std::to_string(i), "hot")));
  }
}

TEST(OutboxStorms, AStormReachesTheSummaryWithItsCountsAndSpan) {
  testing::TempDir dir;
  FakeClock clock(kOnTheHour);  // the storm's 50 minutes are all in one clock hour
  OutboxOptions o = Options(dir, &clock);
  ClassPolicy& anomaly = PolicyOf(o, Kind::kAnomaly);
  anomaly.storm_first = 5;
  anomaly.storm_sample = 5;
  anomaly.storm_percent = 0;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  const int64_t start = UnixMillis(clock.Now());
  for (int i = 0; i < 300; ++i) {
    box->Append(Rec(Kind::kAnomaly, "a" + std::to_string(i), "hot")).status().IgnoreError();
    clock.Advance(seconds(10));  // 50 minutes of storm
  }
  clock.Advance(minutes(20));
  OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, "after")));  // the window has lasted an hour
  json::Parser parser;
  int summaries = 0;
  for (const Record& r : OfKind(*box, Kind::kEvent)) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(json::Value v, parser.Parse(r.payload));
    if (v["type"].GetString().value_or("") != "outbox_summary") continue;
    ++summaries;
    json::Value rule = v["rules"].At(0);
    EXPECT_EQ(rule["rule"].GetString().value_or(""), "hot");
    EXPECT_EQ(rule["kind"].GetString().value_or(""), "anomaly");
    EXPECT_EQ(rule["raised"].GetUint64().value_or(0), 300u);
    EXPECT_EQ(rule["sampled_out"].GetUint64().value_or(0), 290u);
    EXPECT_GE(rule["kept"].GetUint64().value_or(0), 10u);
    EXPECT_GT(rule["storm_from_ms"].GetInt64().value_or(0), start);
    EXPECT_GT(rule["storm_to_ms"].GetInt64().value_or(0),
              rule["storm_from_ms"].GetInt64().value_or(0));
    EXPECT_EQ(v["classes"]["anomaly"]["raised"].GetUint64().value_or(0), 300u);
  }
  EXPECT_EQ(summaries, 1);
  // The window is closed: the rule's window counts start again.
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  for (const RuleStats& r : st.rules) {
    EXPECT_EQ(r.window_raised, 0u);
    EXPECT_EQ(r.raised_records, 300u);
  }
}

TEST(OutboxStorms, NoSamplingBelowTheClassStormShare) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = uint64_t{64} << 20;  // defaults: 1000 kept, then sampling at 40%
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  for (int i = 0; i < 1500; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, Payload31(i), "busy")));
  }
  EXPECT_EQ(OfKind(*box, Kind::kAnomaly).size(), 1500u);
}

TEST(OutboxStorms, RulesPastTheTrackedNumberAreCountedAsOther) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_tracked_rules = 2;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  for (const char* rule : {"r1", "r2", "r3", "r4"}) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kAnomaly, Payload31(0), rule)));
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  std::map<std::string, uint64_t> raised;
  for (const RuleStats& r : st.rules) raised[r.stream + "/" + r.rule] = r.raised_records;
  EXPECT_EQ(raised,
            (std::map<std::string, uint64_t>{{"s/r1", 1}, {"s/r2", 1}, {"_other/_other", 2}}));
}

// --- Evictions per rule (FORMAT.md section 11, rule slots). ---

// Lifetime evictions by "<kind>.<stream>/<rule>".
std::map<std::string, uint64_t> EvictedByRule(const OutboxStats& st) {
  std::map<std::string, uint64_t> out;
  for (const RuleStats& r : st.rules) {
    out[std::string(KindName(r.kind)) + "." + r.stream + "/" + r.rule] = r.evicted_records;
  }
  return out;
}

TEST(OutboxRules, EvictionsAreCountedPerRuleOldestFirstAlsoAfterAReopen) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 100 * kCharge;  // 83 records of shared room
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    for (int i = 0; i < 60; ++i) {
      OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(i), "keep_a")));
    }
    for (int i = 0; i < 60; ++i) {
      OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(100 + i), "keep_b")));
    }
    for (int i = 0; i < 10; ++i) {
      OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(200 + i))));  // no rule
    }
    OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
    EXPECT_EQ(ClassOf(st, Kind::kSample).evicted_records, 47u);
    EXPECT_EQ(EvictedByRule(st), (std::map<std::string, uint64_t>{{"sample.s/keep_a", 47},
                                                                  {"sample.s/keep_b", 0}}));
  }
  // After a reopen the stored records still know their rule: the 13 left of keep_a go first,
  // then the 7 oldest of keep_b.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  for (int i = 0; i < 20; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(300 + i), "keep_b")));
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(OfKind(*box, Kind::kSample).size(), 83u);
  EXPECT_EQ(ClassOf(st, Kind::kSample).evicted_records, 67u);
  EXPECT_EQ(EvictedByRule(st), (std::map<std::string, uint64_t>{{"sample.s/keep_a", 60},
                                                                {"sample.s/keep_b", 7}}));
  for (const RuleStats& r : st.rules) {
    EXPECT_EQ(r.window_evicted, r.evicted_records) << r.rule;  // no summary written yet
  }
  ExpectAccountBalances(st);
  // The status report's account carries them.
  json::Parser parser;
  const std::string account = AccountJson(st);
  OUTPOST_ASSERT_OK_AND_ASSIGN(json::Value v, parser.Parse(account));
  std::map<std::string, uint64_t> reported;
  for (json::Value r : v["rules"].Items()) {
    reported[std::string(r["rule"].GetString().value_or(""))] = r["evicted"].GetUint64().value_or(0);
    EXPECT_EQ(r["window_evicted"].GetUint64().value_or(99), r["evicted"].GetUint64().value_or(0));
  }
  EXPECT_EQ(reported, (std::map<std::string, uint64_t>{{"keep_a", 60}, {"keep_b", 7}}));
}

TEST(OutboxRules, EvictionsOfRulesPastTheTrackedNumberAreCountedAsOther) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 100 * kCharge;
  o.max_tracked_rules = 1;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  for (int i = 0; i < 50; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(i), "tracked")));
  }
  for (int i = 0; i < 50; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(100 + i), "late_one")));
  }
  for (int i = 0; i < 50; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(200 + i), "late_two")));
  }
  // 150 raised, 83 held: the 50 of "tracked" and the 17 oldest of the others go.
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(ClassOf(st, Kind::kSample).evicted_records, 67u);
  EXPECT_EQ(EvictedByRule(st), (std::map<std::string, uint64_t>{{"sample.s/tracked", 50},
                                                                {"sample._other/_other", 17}}));
  EXPECT_EQ(st.rules.size(), 2u) << "memory stays bounded by the tracked rules";
}

TEST(OutboxRules, TheSummaryCarriesEachRulesEvictionsInItsWindow) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 200'000;  // the event share: 4,000 bytes
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  // Three hours of two 1 KB samples a minute, one of each rule: three times the bound.
  ASSERT_NO_FATAL_FAILURE(FloodSamples(*box, clock, 3, {"every_row", "low_score"}));
  json::Parser parser;
  std::vector<Summary> summaries = Summaries(*box, parser);
  ASSERT_FALSE(summaries.empty());
  uint64_t every_row = 0, low_score = 0, reported = 0;
  for (const Summary& s : summaries) {
    every_row += s.window_rule_evicted.count("every_row") ? s.window_rule_evicted.at("every_row") : 0;
    low_score += s.window_rule_evicted.count("low_score") ? s.window_rule_evicted.at("low_score") : 0;
    reported += s.window_sample_evicted;
  }
  EXPECT_GT(reported, 0u);
  EXPECT_EQ(every_row + low_score, reported) << "every eviction reported is a named rule's";
  // They alternate, so oldest first evicts them in turn.
  EXPECT_LE(every_row - std::min(every_row, low_score), 1u);
  EXPECT_LE(low_score - std::min(every_row, low_score), 1u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  uint64_t lifetime = 0;
  for (const RuleStats& r : st.rules) lifetime += r.evicted_records;
  EXPECT_EQ(lifetime, ClassOf(st, Kind::kSample).evicted_records);
}

TEST(OutboxRules, AFormatOneFileIsMigratedAndItsOlderRecordsCountPerClassOnly) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 100 * kCharge;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    for (int i = 0; i < 50; ++i) {
      OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(i), "keep")));
    }
  }
  {
    // Back to format 1, as an older build wrote it: no rule column.
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto db, sqlite::Db::Open(o.path, {}));
    OUTPOST_ASSERT_OK(db->Exec("ALTER TABLE records DROP COLUMN rule; PRAGMA user_version=1"));
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  EXPECT_EQ(OfKind(*box, Kind::kSample).size(), 50u) << "the migration keeps every record";
  // Migrated, not salvaged: no damaged file was set aside.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<std::string> files, ListDirectory(dir.path()));
  for (const std::string& f : files) EXPECT_EQ(f.find("damaged"), std::string::npos) << f;
  for (int i = 0; i < 60; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(100 + i), "keep")));
  }
  // 110 raised, 83 held: 27 evicted, all written before the migration (no rule known).
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_EQ(ClassOf(st, Kind::kSample).evicted_records, 27u);
  EXPECT_EQ(EvictedByRule(st), (std::map<std::string, uint64_t>{{"sample.s/keep", 0}}));
  for (int i = 0; i < 30; ++i) {
    OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(200 + i), "keep")));
  }
  // The 23 older ones go, then 7 written since: those are counted for their rule.
  OUTPOST_ASSERT_OK_AND_ASSIGN(st, box->Stats());
  EXPECT_EQ(ClassOf(st, Kind::kSample).evicted_records, 57u);
  EXPECT_EQ(EvictedByRule(st), (std::map<std::string, uint64_t>{{"sample.s/keep", 7}}));
  ExpectAccountBalances(st);
  box.reset();
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto db, sqlite::Db::Open(o.path, {}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(int64_t version, db->QueryInt("PRAGMA user_version"));
  EXPECT_EQ(version, 2);
}

// --- The account. ---

TEST(OutboxAccount, EveryRaisedRecordIsAccountedAndTheAccountSurvivesAReopen) {
  testing::TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir, &clock);
  o.max_bytes = 100 * kCharge;
  PolicyOf(o, Kind::kAnomaly).storm_first = 3;
  PolicyOf(o, Kind::kAnomaly).storm_sample = 2;
  PolicyOf(o, Kind::kAnomaly).storm_percent = 0;
  OutboxStats before;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
    for (int i = 0; i < 150; ++i) {
      OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(i))));  // evictions
    }
    for (int i = 0; i < 20; ++i) {
      box->Append(Rec(Kind::kAnomaly, Payload31(i), "r")).status().IgnoreError();  // a storm
    }
    for (int i = 0; i < 120; ++i) {
      box->Append(Rec(Kind::kDrift, Payload31(i)))
          .status()
          .IgnoreError();  // refusals past the room
    }
    // Delivered, and withheld by policy.
    OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch b, box->Lease({.max_records = 4}));
    OUTPOST_ASSERT_OK(box->Ack(b.lease_id));
    OUTPOST_ASSERT_OK_AND_ASSIGN(LeasedBatch w, box->Lease({.max_records = 3}));
    std::vector<RecordKey> keys;
    for (const Record& r : w.records) keys.push_back({r.stream, r.seq});
    OUTPOST_ASSERT_OK(box->Delete(keys, Disposal::kWithheld));
    OUTPOST_ASSERT_OK_AND_ASSIGN(before, box->Stats());
    ExpectAccountBalances(before);
    uint64_t delivered = 0, withheld = 0;
    for (const ClassStats& c : before.classes) {
      delivered += c.delivered_records;
      withheld += c.withheld_records;
    }
    EXPECT_EQ(delivered, 4u);
    EXPECT_EQ(withheld, 3u);
    EXPECT_GT(ClassOf(before, Kind::kSample).evicted_records, 0u);
    EXPECT_EQ(ClassOf(before, Kind::kAnomaly).sampled_out_records, 15u);
    EXPECT_GT(ClassOf(before, Kind::kDrift).refused_records, 0u);
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats after, box->Stats());
  ASSERT_EQ(after.classes.size(), before.classes.size());
  for (size_t i = 0; i < after.classes.size(); ++i) {
    const ClassStats& a = after.classes[i];
    const ClassStats& b = before.classes[i];
    EXPECT_EQ(a.raised_records, b.raised_records) << KindName(a.kind);
    EXPECT_EQ(a.evicted_records, b.evicted_records) << KindName(a.kind);
    EXPECT_EQ(a.refused_records, b.refused_records) << KindName(a.kind);
    EXPECT_EQ(a.sampled_out_records, b.sampled_out_records) << KindName(a.kind);
    EXPECT_EQ(a.delivered_records, b.delivered_records) << KindName(a.kind);
    EXPECT_EQ(a.withheld_records, b.withheld_records) << KindName(a.kind);
  }
  EXPECT_EQ(after.account_since_ms, before.account_since_ms);
  EXPECT_GT(after.account_since_ms, 0);
  ExpectAccountBalances(after);
  const std::string json = AccountJson(after);
  json::Parser parser;
  OUTPOST_ASSERT_OK_AND_ASSIGN(json::Value v, parser.Parse(json));
  EXPECT_EQ(v["classes"]["sample"]["raised"].GetUint64().value_or(0), 150u);
  EXPECT_EQ(v["rules"].At(0)["rule"].GetString().value_or(""), "r");
}

// A power cut at every write of a commit that evicts: whatever survives, the records, the
// eviction counters and the account agree (they change in one transaction).
TEST(OutboxAccount, ACrashInTheMiddleOfAnEvictionLeavesCountersAndRecordsConsistent) {
  bool completed = false;
  for (int64_t skip = 0; skip < 64 && !completed; ++skip) {
    SCOPED_TRACE("failing write " + std::to_string(skip));
    testing::TempDir dir;
    FakeClock clock;
    sqlite::FileFaults faults;
    faults.SetTrackUnsynced(true);
    OutboxOptions o = Options(dir, &clock, &faults);
    o.max_bytes = 100 * kCharge;
    {
      OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(o));
      for (int i = 0; i < 83; ++i) {
        OUTPOST_ASSERT_OK(box->Append(Rec(Kind::kSample, Payload31(i), "keep")));
      }
      faults.Inject({.op = sqlite::FileFaults::Op::kWrite, .skip = skip, .sticky = true});
      // Needs the room of twenty samples.
      Result<RecordKey> big = box->Append(Rec(Kind::kAnomaly, std::string(20 * kCharge - 49, 'a')));
      completed = big.ok();
      OUTPOST_ASSERT_OK(faults.PowerLoss());
    }
    faults.Clear();
    OutboxOptions reopen = Options(dir, &clock);
    reopen.max_bytes = o.max_bytes;
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto box, Outbox::Open(reopen));
    OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
    const ClassStats& samples = ClassOf(st, Kind::kSample);
    const ClassStats& anomalies = ClassOf(st, Kind::kAnomaly);
    EXPECT_EQ(OfKind(*box, Kind::kSample).size(), samples.records);
    EXPECT_EQ(samples.records + samples.evicted_records, samples.raised_records);
    // The rule's count moved with the class's, in the same transaction.
    EXPECT_EQ(EvictedByRule(st)["sample.s/keep"], samples.evicted_records);
    if (anomalies.records == 1) {
      EXPECT_EQ(samples.evicted_records, 20u);
    } else {
      EXPECT_EQ(samples.evicted_records, 0u);
      EXPECT_EQ(anomalies.raised_records, anomalies.refused_records);
    }
    EXPECT_LE(st.bytes, st.max_bytes);
    ExpectAccountBalances(st);
  }
  EXPECT_TRUE(completed) << "the evicting commit never got through";
}

}  // namespace
}  // namespace outpost::outbox
