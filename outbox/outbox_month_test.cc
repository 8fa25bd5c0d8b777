// A month offline, on a fake clock (outbox/FORMAT.md sections 3, 9, 11, 12): 30 simulated
// days of a site producing ten times what its 4 MiB bound holds in a month, with a 6-hour
// anomaly storm on day 12. At the end the outbox is within its bound, every class is
// accounted, an aggregate is held for every hour of the 30 days (the site's aggregate rule
// rolls its minutes up into hours, so one aggregate record an hour), every drift record is
// held, the storm is visible with its counts in the summary records, and the outbox's
// bookkeeping stayed inside the event share. Then one drain (every record handed over, and
// deleted by key as a hub receipt would) empties the site, and what the "hub" received
// balances with the site's account.
//
// The month itself (what the site raises each hour, its settings) is outbox/testing/month.h,
// shared with tests/month_offline_test.cc, which drains it through `outpost export` and a
// receipt instead.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/json/json.h"
#include "base/testing/test_util.h"
#include "outbox/outbox.h"
#include "outbox/testing/month.h"

namespace outpost::outbox {
namespace {

using namespace outbox::testing;  // NOLINT: the month's constants and helpers

const ClassStats& ClassOf(const OutboxStats& st, Kind kind) {
  for (const ClassStats& c : st.classes) {
    if (c.kind == kind) return c;
  }
  static const ClassStats kNone;
  return kNone;
}

TEST(OutboxMonthOffline, TenTimesTheBoundForThirtyDaysWithAStormKeepsSummariesAndAccountsAll) {
  outpost::testing::TempDir dir;
  FakeClock clock(kMonthStart);
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto box, Outbox::Open(MonthOptions(dir.File("outbox.db"), "site-1", "node-1", &clock)));
  const int64_t start_ms = UnixMillis(clock.Now());
  MonthOutcome outcome;
  RunMonth(*box, clock, &outcome, [&](int day) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats today, box->Stats());
    EXPECT_LE(today.bytes, today.max_bytes) << "day " << day;
    EXPECT_LE(ClassOf(today, Kind::kEvent).bytes, ClassOf(today, Kind::kEvent).reserved_bytes);
  });
  EXPECT_EQ(outcome.failed.load(), 0u);
  const uint64_t raised = outcome.raised;
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, box->Stats());
  EXPECT_LE(st.bytes, st.max_bytes);
  EXPECT_EQ(outcome.refused.load(), 0u) << "only samples make room, and they are evictable";
  // The month overflowed the bound many times; bookkeeping stayed under 2% of it.
  const ClassStats& samples = ClassOf(st, Kind::kSample);
  EXPECT_GT(samples.evicted_bytes, 8 * kMonthBound);
  EXPECT_LE(ClassOf(st, Kind::kEvent).bytes, kMonthBound / 50);
  uint64_t raised_total = 0;
  for (const ClassStats& c : st.classes) {
    EXPECT_EQ(c.raised_records, c.records + c.delivered_records + c.withheld_records +
                                    c.evicted_records + c.refused_records + c.sampled_out_records +
                                    c.quarantined_records)
        << KindName(c.kind);
    if (c.kind != Kind::kEvent) raised_total += c.raised_records;
  }
  EXPECT_EQ(raised_total, raised);
  // The producer hears of the storm records the reservoir did not take; the records it took in
  // place of ones it held were acknowledged, and those it let go are counted too.
  EXPECT_GT(outcome.sampled_out.load(), 0u);
  EXPECT_LE(outcome.sampled_out.load(), ClassOf(st, Kind::kAnomaly).sampled_out_records);
  EXPECT_EQ(ClassOf(st, Kind::kAnomaly).sampled_out_records, kStormSampledOut);

  // The drain: every record to the "hub", then deleted by key as a receipt does.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      LeasedBatch all, box->Lease({.max_records = 1'000'000, .max_bytes = uint64_t{1} << 40}));
  std::map<Kind, uint64_t> at_hub;
  std::set<int> aggregate_hours;
  int drift = 0;
  json::Parser parser;
  json::Value last_summary;
  std::string last_summary_text;
  uint64_t storm_raised = 0, storm_sampled_out = 0;
  int64_t storm_from = 0, storm_to = 0;
  std::vector<RecordKey> keys;
  for (const Record& r : all.records) {
    keys.push_back({r.stream, r.seq});
    ++at_hub[r.kind];
    if (r.kind == Kind::kAggregate) {
      OUTPOST_ASSERT_OK_AND_ASSIGN(json::Value v, parser.Parse(r.payload));
      aggregate_hours.insert(static_cast<int>(v["hour"].GetInt64().value_or(-1)));
    }
    if (r.kind == Kind::kDrift) ++drift;
    if (r.kind != Kind::kEvent) continue;
    OUTPOST_ASSERT_OK_AND_ASSIGN(json::Value v, parser.Parse(r.payload));
    if (v["type"].GetString().value_or("") != "outbox_summary") continue;
    for (size_t i = 0; i < v["rules"].size(); ++i) {
      json::Value rule = v["rules"].At(i);
      if (rule["rule"].GetString().value_or("") != "high_score") continue;
      const uint64_t out = rule["sampled_out"].GetUint64().value_or(0);
      if (out == 0) continue;
      storm_raised += rule["raised"].GetUint64().value_or(0);
      storm_sampled_out += out;
      if (storm_from == 0) storm_from = rule["storm_from_ms"].GetInt64().value_or(0);
      storm_to = rule["storm_to_ms"].GetInt64().value_or(0);
    }
    last_summary_text = r.payload;  // oldest first within the class: the last is the newest
  }
  EXPECT_EQ(aggregate_hours.size(), static_cast<size_t>(kMonthDays * 24))
      << "an aggregate per hour";
  EXPECT_EQ(drift, kMonthDays);
  // The storm, with its counts and its span, is in the summaries the hub received.
  EXPECT_EQ(storm_sampled_out, kStormSampledOut);
  EXPECT_GE(storm_raised, uint64_t{kStormHours} * kStormPerHour);
  const int64_t storm_start = start_ms + int64_t{kStormDay} * 24 * 3'600'000;
  EXPECT_GE(storm_from, storm_start);
  EXPECT_LT(storm_to, storm_start + int64_t{kStormHours} * 3'600'000);
  // The newest summary's account is the site's at that moment: what the hub holds of each
  // class is what the summary says the site held (the summary itself aside).
  ASSERT_FALSE(last_summary_text.empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(last_summary, parser.Parse(last_summary_text));
  for (Kind k : kAllKinds) {
    const uint64_t held = last_summary["classes"][KindName(k)]["held"].GetUint64().value_or(0);
    EXPECT_EQ(held + (k == Kind::kEvent ? 1 : 0), at_hub[k]) << KindName(k);
  }
  OUTPOST_ASSERT_OK(box->Delete(keys));
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats drained, box->Stats());
  EXPECT_EQ(drained.records, 0u);
  for (const ClassStats& c : drained.classes) {
    EXPECT_EQ(c.delivered_records, at_hub[c.kind]) << KindName(c.kind);
    EXPECT_EQ(c.raised_records, c.delivered_records + c.evicted_records + c.refused_records +
                                    c.sampled_out_records + c.withheld_records +
                                    c.quarantined_records)
        << KindName(c.kind);
  }
}

}  // namespace
}  // namespace outpost::outbox
