// A month offline on a fake clock, for the tests that check it (outbox/outbox_month_test.cc
// in this process, tests/month_offline_test.cc through `outpost export` and a receipt): 30
// simulated days of a site producing ten times what its 4 MiB bound holds in a month, with a
// 6-hour anomaly storm on day 12. Test code only; header-only.
//
// What the site raises each simulated hour: one aggregate (its aggregate rule rolls its
// minutes up into hours, so one aggregate record an hour), a drift record at the start of
// each day, four anomalies of rule "high_score" (5,000 an hour during the storm), and 24
// samples of 2.5 KB (10.5 times the bound over the month). Its storm settings: 100 kept per
// rule and hour, 100 more sampled, once anomalies hold 10% of the bound; its shares are the
// defaults. The records of one hour are appended by eight producers at once, so that they
// share group commits and the month takes seconds.
//
// Thread-compatible: one month per outbox at a time.
#ifndef OUTPOST_OUTBOX_TESTING_MONTH_H_
#define OUTPOST_OUTBOX_TESTING_MONTH_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "outbox/outbox.h"

namespace outpost::outbox::testing {

inline constexpr int kMonthDays = 30;
inline constexpr int kStormDay = 12;
inline constexpr int kStormHours = 6;
inline constexpr int kStormPerHour = 5000;
inline constexpr int kAnomaliesPerHour = 4;
inline constexpr int kSamplesPerHour = 24;
inline constexpr uint64_t kMonthBound = uint64_t{4} << 20;
// Storm records not kept: each storm hour keeps its first 100 and a sample of 100.
inline constexpr uint64_t kStormSampledOut = uint64_t{kStormHours} * (kStormPerHour - 200);
// A wall time at the start of a clock hour (storms count per clock hour).
inline const Clock::WallTime kMonthStart{std::chrono::hours(472'223)};

// A JSON object `json_head` (without its closing brace) padded to `size` bytes.
inline std::string Padded(std::string json_head, size_t size) {
  json_head += ",\"pad\":\"";
  // Letters from a fixed generator, so that records compress as real ones do (a run of one
  // letter would compress past the hub's ratio limit on an upload or an export's batch).
  uint32_t state = static_cast<uint32_t>(std::hash<std::string>{}(json_head));
  while (json_head.size() + 2 < size) {
    state = state * 1664525u + 1013904223u;
    json_head.push_back(static_cast<char>('a' + (state >> 24) % 26));
  }
  return json_head + "\"}";
}

// The site's outbox settings: the bound and the storm sampling above.
inline OutboxOptions MonthOptions(std::string path, std::string site_id, std::string node_id,
                                  Clock* clock) {
  OutboxOptions o{.path = std::move(path),
                  .site_id = std::move(site_id),
                  .node_id = std::move(node_id),
                  .max_bytes = kMonthBound,
                  .clock = clock};
  ClassPolicy& anomaly = o.classes[static_cast<int>(Kind::kAnomaly) - 1];
  anomaly.storm_first = 100;
  anomaly.storm_sample = 100;
  anomaly.storm_percent = 10;
  return o;
}

// How the month's Appends were answered.
struct MonthOutcome {
  std::atomic<uint64_t> stored{0};
  std::atomic<uint64_t> sampled_out{0};  // storm_sampled_out
  std::atomic<uint64_t> refused{0};      // ResourceExhausted otherwise
  std::atomic<uint64_t> failed{0};       // any other error (a test failure)
  uint64_t raised = 0;                   // records handed to Append
};

// Appends `records` from `threads` producers at once.
inline void AppendAll(Outbox& box, const std::vector<NewRecord>& records, int threads,
                      MonthOutcome* outcome) {
  std::vector<std::thread> producers;
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < records.size();
           i += static_cast<size_t>(threads)) {
        Result<RecordKey> k = box.Append(records[i]);
        if (k.ok()) {
          ++outcome->stored;
        } else if (k.status().reason() == "storm_sampled_out") {
          ++outcome->sampled_out;
        } else if (k.status().code() == StatusCode::kResourceExhausted) {
          ++outcome->refused;
        } else {
          ++outcome->failed;
        }
      }
    });
  }
  for (std::thread& p : producers) p.join();
  outcome->raised += records.size();
}

// The records the site raises in simulated hour `hour` (from 0).
inline std::vector<NewRecord> HourOfRecords(int hour) {
  std::vector<NewRecord> out;
  const std::string h = std::to_string(hour);
  out.push_back({.kind = Kind::kAggregate,
                 .stream = "pump",
                 .payload = Padded("{\"kind\":\"aggregate\",\"rows\":60,\"hour\":" + h, 400),
                 .rule = "aggregate"});
  if (hour % 24 == 0) {
    out.push_back({.kind = Kind::kDrift,
                   .stream = "pump",
                   .payload = Padded("{\"kind\":\"drift\",\"day\":" + std::to_string(hour / 24),
                                     400),
                   .rule = "inlet_drift"});
  }
  const bool storm = hour >= kStormDay * 24 && hour < kStormDay * 24 + kStormHours;
  const int anomalies = storm ? kStormPerHour : kAnomaliesPerHour;
  for (int i = 0; i < anomalies; ++i) {
    out.push_back({.kind = Kind::kAnomaly,
                   .stream = "pump",
                   .payload = Padded("{\"kind\":\"anomaly\",\"hour\":" + h, 500),
                   .rule = "high_score"});
  }
  for (int i = 0; i < kSamplesPerHour; ++i) {
    out.push_back({.kind = Kind::kSample,
                   .stream = "pump",
                   .payload = Padded("{\"kind\":\"sample\",\"hour\":" + h, 2500),
                   .rule = "keep_all"});
  }
  return out;
}

// Runs the 30 days on `box`, moving `clock` an hour at a time, and calls `each_day` after
// every simulated day; then appends one more sample an hour later, with which the summary of
// the last window is written.
inline void RunMonth(Outbox& box, FakeClock& clock, MonthOutcome* outcome,
                     const std::function<void(int day)>& each_day) {
  for (int hour = 0; hour < kMonthDays * 24; ++hour) {
    AppendAll(box, HourOfRecords(hour), 8, outcome);
    clock.Advance(std::chrono::hours(1));
    if (hour % 24 == 23) each_day(hour / 24);
  }
  AppendAll(box,
            {{.kind = Kind::kSample,
              .stream = "pump",
              .payload = Padded("{\"kind\":\"sample\",\"last\":1", 2500)}},
            1, outcome);
}

}  // namespace outpost::outbox::testing

#endif  // OUTPOST_OUTBOX_TESTING_MONTH_H_
