// bench/outbox overflow: the outbox's append rate while it overflows (every commit evicts
// samples to make room, and counts them) against its rate while it has room, in the same
// run, and how much of the bound its bookkeeping takes after ten times the bound (issue 21's
// aims: overflow/room >= 0.8, bookkeeping <= 2% of the bound).
//
// Each round runs two outboxes on fresh files for --seconds each, alternating which goes
// first: one whose bound holds everything (room), one whose bound the producers overflow
// from the start (overflow: it is filled first, untimed). The medians of the rounds are
// compared. Then one outbox is offered ten times its bound in samples (and an anomaly in
// sixteen records, with its rule) on a clock moved on an hour per tenth of the bound, and the
// event class's bytes are reported as a share of the bound. A benchmark, not a test: it
// asserts nothing.
//
// Usage: outbox_overflow_bench [--dir DIR] [--seconds S] [--rounds N] [--producers P]
//                              [--payload 512] [--bound-mib 16]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/file.h"
#include "outbox/outbox.h"

namespace {

using namespace outpost;          // NOLINT: a benchmark's main file
using namespace outpost::outbox;  // NOLINT
using Steady = std::chrono::steady_clock;

struct Args {
  std::string dir = "";
  double seconds = 5;
  int rounds = 3;
  int producers = 8;
  size_t payload = 512;
  uint64_t bound_mib = 16;
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--dir") a.dir = v;
    if (k == "--seconds") a.seconds = std::atof(v.c_str());
    if (k == "--rounds") a.rounds = std::max(1, std::atoi(v.c_str()));
    if (k == "--producers") a.producers = std::max(1, std::atoi(v.c_str()));
    if (k == "--payload") a.payload = static_cast<size_t>(std::atol(v.c_str()));
    if (k == "--bound-mib") a.bound_mib = static_cast<uint64_t>(std::max(1L, std::atol(v.c_str())));
  }
  if (a.dir.empty()) a.dir = "/tmp/outbox_overflow_bench";
  if (!MakeDirectories(a.dir).ok()) {
    std::fprintf(stderr, "cannot create %s\n", a.dir.c_str());
    std::exit(1);
  }
  return a;
}

std::unique_ptr<Outbox> OpenFresh(const Args& a, uint64_t max_bytes, Clock* clock) {
  const std::string path = a.dir + "/outbox.db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  auto box = Outbox::Open(
      {.path = path, .site_id = "bench", .node_id = "n1", .max_bytes = max_bytes, .clock = clock});
  if (!box.ok()) {
    std::fprintf(stderr, "open: %s\n", box.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(box).value();
}

// Records appended per second by a.producers threads for a.seconds.
double AppendRate(const Args& a, Outbox& box) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> appended{0};
  const std::string payload(a.payload, 's');
  std::vector<std::thread> threads;
  const auto start = Steady::now();
  for (int t = 0; t < a.producers; ++t) {
    threads.emplace_back([&, t] {
      const std::string stream = "model-" + std::to_string(t % 4);
      while (!stop.load(std::memory_order_relaxed)) {
        // Named by their rule, as insight's samples are: an eviction counts it per rule too.
        auto k = box.Append(
            {.kind = Kind::kSample, .stream = stream, .payload = payload, .rule = "keep_all"});
        if (!k.ok()) {
          std::fprintf(stderr, "append: %s\n", k.status().ToString().c_str());
          std::exit(1);
        }
        appended.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  stop = true;
  for (auto& th : threads) th.join();
  return static_cast<double>(appended.load()) /
         std::chrono::duration<double>(Steady::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// One outbox offered ten times its bound; the event class's share of the bound at the end.
double BookkeepingShare(const Args& a) {
  FakeClock clock;
  const uint64_t bound = a.bound_mib << 20;
  std::unique_ptr<Outbox> box = OpenFresh(a, bound, &clock);
  const std::string payload(a.payload, 's');
  const uint64_t per_tenth = bound / 10 / (a.payload + 60);
  uint64_t offered = 0;
  for (int tenth = 0; tenth < 100; ++tenth) {
    for (uint64_t i = 0; i < per_tenth; ++i, ++offered) {
      const bool anomaly = offered % 16 == 0;
      box->Append({.kind = anomaly ? Kind::kAnomaly : Kind::kSample,
                   .stream = "model",
                   .payload = payload,
                   .rule = anomaly ? "high_score" : "keep_all"})
          .status()
          .IgnoreError();
    }
    clock.Advance(std::chrono::hours(1));
  }
  auto st = box->Stats();
  if (!st.ok()) return -1;
  for (const ClassStats& c : st->classes) {
    if (c.kind == Kind::kEvent) return 100.0 * static_cast<double>(c.bytes) / bound;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  std::vector<double> room, overflow;
  for (int round = 0; round < a.rounds; ++round) {
    for (int which = 0; which < 2; ++which) {
      const bool full = (which + round) % 2 == 1;
      if (!full) {
        std::unique_ptr<Outbox> box = OpenFresh(a, uint64_t{64} << 30, nullptr);
        room.push_back(AppendRate(a, *box));
        continue;
      }
      // Filled first (untimed), so that every timed commit evicts.
      const uint64_t bound = a.bound_mib << 20;
      std::unique_ptr<Outbox> box = OpenFresh(a, bound, nullptr);
      const std::string payload(a.payload, 's');
      for (uint64_t i = 0; i < bound / (a.payload + 56) + 16; ++i) {
        box->Append({.kind = Kind::kSample,
                     .stream = "model-0",
                     .payload = payload,
                     .rule = "keep_all"})
            .status()
            .IgnoreError();
      }
      overflow.push_back(AppendRate(a, *box));
    }
  }
  const double r = Median(room), o = Median(overflow);
  std::printf("producers %d, payload %zu B, bound %llu MiB, %d rounds of %.1f s\n", a.producers,
              a.payload, static_cast<unsigned long long>(a.bound_mib), a.rounds, a.seconds);
  std::printf("appends/s with room      %.0f\n", r);
  std::printf("appends/s overflowing    %.0f\n", o);
  std::printf("overflow/room            %.2f   (aim >= 0.80)\n", r > 0 ? o / r : 0);
  std::printf("bookkeeping after 10x    %.2f %% of the bound   (aim <= 2 %%)\n",
              BookkeepingShare(a));
  return 0;
}
