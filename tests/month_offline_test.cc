// A month offline, drained as a disconnected site is (issue 21's acceptance): the month of
// outbox/testing/month.h (30 simulated days at ten times the bound, a 6-hour anomaly storm on
// day 12) is written into a site's outbox on a fake clock; then one `outpost export` carries
// everything the outbox holds, read here with the hub's reader, and the hub's receipt taken
// by `outpost import-receipt` empties the site. What the hub received balances with the
// site's account: per class, what the newest summary record says the site held is what the
// hub holds, and the site counts each of them as delivered; every hour's aggregate (the
// site's aggregate rule rolls its minutes up into hours) and every drift record arrived, and
// the storm arrived with its counts.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/file.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "outbox/outbox.h"
#include "outbox/testing/month.h"
#include "sync/batch.h"
#include "sync/export.h"
#include "sync/receipt.h"
#include "tests/sync_test_support.h"

namespace outpost {
namespace {

using namespace outbox::testing;  // NOLINT: the month's constants and helpers

std::string Outpost() { return JoinPath(outpost::testing::BinaryDir(), "outpost"); }

// Every kind leaves raw and whole.
constexpr char kEverythingPolicy[] =
    "format: 1\nversion: 1\ndefault: keep\nregions:\n  r1:\n    raw: true\n"
    "default_region: r1\nkinds:\n  anomaly: {}\n  drift: {}\n  feedback: {}\n"
    "  hard_example: {}\n  aggregate: {fields: {rows: keep}}\n  sample: {}\n  event: {}\n";

const outbox::ClassStats& ClassOf(const outbox::OutboxStats& st, outbox::Kind kind) {
  for (const outbox::ClassStats& c : st.classes) {
    if (c.kind == kind) return c;
  }
  static const outbox::ClassStats kNone;
  return kNone;
}

// What the hub's reader finds in one export file.
struct AtHub {
  std::map<std::string, uint64_t> by_kind;
  std::vector<sync::BatchKeyFields> keys;
  std::set<int64_t> aggregate_hours;
  uint64_t drift = 0;
  uint64_t storm_sampled_out = 0;
  std::string newest_summary;  // payload of the summary with the greatest to_ms
};

AtHub ReadAtHub(const sync::ExportFile& file) {
  AtHub hub;
  json::Parser parser;
  int64_t newest = -1;
  for (const std::string& bytes : file.batches) {
    Result<sync::DecodedBatch> d = sync::DecodeBatch(bytes);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    if (!d.ok()) continue;
    hub.keys.push_back(d->key);
    for (const sync::BatchRecord& r : d->batch.records) {
      const std::string kind(outbox::KindName(static_cast<outbox::Kind>(r.kind)));
      ++hub.by_kind[kind];
      Result<json::Value> v = parser.Parse(r.payload);
      EXPECT_TRUE(v.ok()) << r.payload;
      if (!v.ok()) continue;
      if (kind == "aggregate") hub.aggregate_hours.insert((*v)["hour"].GetInt64().value_or(-1));
      if (kind == "drift") ++hub.drift;
      if (kind != "event" || (*v)["type"].GetString().value_or("") != "outbox_summary") continue;
      for (json::Value rule : (*v)["rules"].Items()) {
        if (rule["rule"].GetString().value_or("") == "high_score") {
          hub.storm_sampled_out += rule["sampled_out"].GetUint64().value_or(0);
        }
      }
      const int64_t to = (*v)["to_ms"].GetInt64().value_or(-1);
      if (to > newest) {
        newest = to;
        hub.newest_summary = r.payload;
      }
    }
  }
  return hub;
}

TEST(MonthOffline, OneExportAndReceiptDrainTheSiteAndTheHubBalancesWithIt) {
  outpost::testing::TempDir dir;
  const std::string data = dir.File("data");
  OUTPOST_ASSERT_OK(MakeDirectories(data));
  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("models")));
  OUTPOST_ASSERT_OK(
      outpost::testing::MakeTestPki(dir.File("hub"), dir.File("credentials"), "plant-7"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("policy.yaml"), kEverythingPolicy));
  // The hub is never reachable: everything leaves by the export file.
  const std::string config = dir.File("edge.yaml");
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      config, "site_id: plant-7\nnode_id: edge-1\nmodel_repository: " + dir.File("models") +
                  "\ndata_dir: " + data + "\noutbox:\n  max_bytes: " + std::to_string(kMonthBound) +
                  "\n  classes:\n    anomaly: {storm_first: 100, storm_sample: 100, "
                  "storm_percent: 10}\nsync:\n  hub_url: https://127.0.0.1:1\n"
                  "  credentials_dir: " +
                  dir.File("credentials") + "\n  policy_file: " + dir.File("policy.yaml") +
                  "\n  status_interval_s: 0\n"));

  // The month, written into the site's outbox as its producers would.
  outbox::OutboxStats site;
  {
    FakeClock clock(kMonthStart);
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        auto box, outbox::Outbox::Open(
                      MonthOptions(JoinPath(data, "outbox.db"), "plant-7", "edge-1", &clock)));
    MonthOutcome outcome;
    RunMonth(*box, clock, &outcome, [](int) {});
    ASSERT_EQ(outcome.failed.load(), 0u);
    OUTPOST_ASSERT_OK_AND_ASSIGN(site, box->Stats());
  }
  EXPECT_LE(site.bytes, kMonthBound);

  // One export carries everything the site holds.
  const std::string file = dir.File("month.opsx");
  RunResult exported = RunProgram({Outpost(), "export", "--config", config, "--to", file});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_NE(exported.out.find("exported " + std::to_string(site.records) + " records"),
            std::string::npos)
      << exported.out;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(file));
  OUTPOST_ASSERT_OK_AND_ASSIGN(sync::ExportFile export_file, sync::ReadExport(bytes));
  OUTPOST_ASSERT_OK(sync::VerifyExportSite(export_file, *ReadFile(dir.File("hub/ca.crt"))));
  const AtHub hub = ReadAtHub(export_file);

  // What arrived: every hour's aggregate, every drift record, the storm with its counts.
  EXPECT_EQ(hub.aggregate_hours.size(), static_cast<size_t>(kMonthDays * 24));
  EXPECT_EQ(hub.drift, static_cast<uint64_t>(kMonthDays));
  EXPECT_EQ(hub.storm_sampled_out, kStormSampledOut);
  // The newest summary's account is the site's: what it says the site held is what arrived
  // (the summary itself aside), and its totals are the site's.
  json::Parser parser;
  ASSERT_FALSE(hub.newest_summary.empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(json::Value summary, parser.Parse(hub.newest_summary));
  for (outbox::Kind k : outbox::kAllKinds) {
    const std::string kind(outbox::KindName(k));
    json::Value c = summary["classes"][kind];
    const uint64_t held = c["held"].GetUint64().value_or(0);
    EXPECT_EQ(held + (k == outbox::Kind::kEvent ? 1 : 0),
              hub.by_kind.count(kind) ? hub.by_kind.at(kind) : 0)
        << kind;
    if (k != outbox::Kind::kEvent) {
      EXPECT_EQ(c["raised"].GetUint64().value_or(0), ClassOf(site, k).raised_records) << kind;
      EXPECT_EQ(c["evicted"].GetUint64().value_or(0), ClassOf(site, k).evicted_records) << kind;
      EXPECT_EQ(c["sampled_out"].GetUint64().value_or(0), ClassOf(site, k).sampled_out_records)
          << kind;
    }
  }

  // The hub's receipt drains the site.
  sync::Receipt receipt{.cert_pem = *ReadFile(dir.File("hub/receipt.crt")),
                        .site_id = "plant-7",
                        .export_id = export_file.export_id,
                        .created_ms = 1,
                        .keys = hub.keys};
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string signed_receipt,
                               sync::WriteReceipt(receipt, *ReadFile(dir.File("hub/receipt.key"))));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("month.rcpt"), signed_receipt));
  RunResult taken =
      RunProgram({Outpost(), "import-receipt", dir.File("month.rcpt"), "--config", config});
  ASSERT_EQ(taken.exit_code, 0) << taken.err;
  FakeClock later(kMonthStart + std::chrono::hours(24 * kMonthDays + 2));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto box,
      outbox::Outbox::Open(MonthOptions(JoinPath(data, "outbox.db"), "plant-7", "edge-1", &later)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(outbox::OutboxStats drained, box->Stats());
  EXPECT_EQ(drained.records, 0u);
  for (const outbox::ClassStats& c : drained.classes) {
    const std::string kind(outbox::KindName(c.kind));
    EXPECT_EQ(c.delivered_records, hub.by_kind.count(kind) ? hub.by_kind.at(kind) : 0) << kind;
    EXPECT_EQ(c.raised_records, c.delivered_records + c.withheld_records + c.evicted_records +
                                    c.refused_records + c.sampled_out_records +
                                    c.quarantined_records)
        << kind;
  }
}

}  // namespace
}  // namespace outpost
