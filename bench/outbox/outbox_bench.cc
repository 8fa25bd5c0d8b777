// bench/outbox: durable records/s and acknowledgement latency of the outbox for 512-byte
// records with 1, 8 and 64 producer threads, against plain SQLite in the same run.
//
// For each producer count, the outbox runs for --seconds with every producer appending in a
// loop (each Append returns once its group commit is fsynced); we record every Append's
// latency. Then plain SQLite (same file settings: WAL, synchronous=FULL; same table and
// indexes) inserts the same number of rows from one thread in transactions of the mean
// size the outbox's group commits had. The ratio outbox/plain is what the outbox's queueing,
// checksums, seq assignment and bounds cost. A benchmark, not a test: it asserts nothing.
//
// The machines we run on are shared and their fsync latency swings from one second to the
// next, so each producer count runs --rounds times, the outbox and plain SQLite alternating,
// and the medians are compared.
//
// --in-flight N runs each producer with N appends in flight: it keeps calling AppendAsync
// until N are unanswered, then waits for half of them to be answered (N = 1 is the blocking
// Append).
// A record counts, and its latency is taken, when its completion says it is stored.
//
// Usage: outbox_bench [--dir DIR] [--seconds S] [--rounds N] [--producers 1,8,64]
//                     [--in-flight 1,16] [--payload 512]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/file.h"
#include "base/sqlite/sqlite.h"
#include "outbox/outbox.h"
#include "outbox/schema.h"

namespace {

using namespace outpost;          // NOLINT: a benchmark's main file
using namespace outpost::outbox;  // NOLINT
using namespace outpost::sqlite;  // NOLINT
using Steady = std::chrono::steady_clock;

struct Args {
  std::string dir = "";
  double seconds = 5;
  int rounds = 3;
  std::vector<int> producers = {1, 8, 64};
  std::vector<int> in_flight = {1, 16};
  size_t payload = 512;
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--dir") {
      a.dir = v;
    } else if (k == "--seconds") {
      a.seconds = std::atof(v.c_str());
    } else if (k == "--rounds") {
      a.rounds = std::max(1, std::atoi(v.c_str()));
    } else if (k == "--payload") {
      a.payload = static_cast<size_t>(std::atol(v.c_str()));
    } else if (k == "--producers" || k == "--in-flight") {
      std::vector<int>& list = k == "--producers" ? a.producers : a.in_flight;
      list.clear();
      for (size_t p = 0; p < v.size();) {
        size_t q = v.find(',', p);
        list.push_back(std::max(1, std::atoi(v.substr(p, q - p).c_str())));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      std::exit(2);
    }
  }
  if (a.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/outbox-bench-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::exit(2);
    }
    a.dir = tmpl;
  }
  return a;
}

void Remove(const std::string& path) {
  for (const char* s : {"", "-wal", "-shm"}) std::remove((path + s).c_str());
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

struct OursResult {
  uint64_t records = 0;
  double seconds = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  double mean_batch = 0;
};

// One producer of the outbox run: blocking Appends (in_flight 1) or AppendAsync with up to
// `in_flight` unanswered; each stored record's latency goes to `lat`.
void Produce(Outbox& box, const std::string& stream, const std::string& payload, int in_flight,
             const std::atomic<bool>& stop, std::vector<double>& lat) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "append: %s\n", s.ToString().c_str());
    std::exit(1);
  };
  if (in_flight <= 1) {
    while (!stop.load(std::memory_order_relaxed)) {
      auto t0 = Steady::now();
      auto k = box.Append({.kind = Kind::kSample, .stream = stream, .payload = payload});
      auto t1 = Steady::now();
      if (!k.ok()) fail(k.status());
      lat.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    return;
  }
  // A producer that finds its window full waits until half of it is answered, then refills
  // it: one wake-up per half window rather than one per record.
  const int low = in_flight / 2;
  std::mutex mu;
  std::condition_variable cv;
  int outstanding = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    {
      std::unique_lock<std::mutex> l(mu);
      if (outstanding == in_flight) cv.wait(l, [&] { return outstanding <= low; });
      ++outstanding;
    }
    auto t0 = Steady::now();
    box.AppendAsync({.kind = Kind::kSample, .stream = stream, .payload = payload},
                    [&, t0](Result<RecordKey> k) {
                      if (!k.ok()) fail(k.status());
                      auto t1 = Steady::now();
                      std::lock_guard<std::mutex> l(mu);
                      lat.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
                      if (--outstanding == low || outstanding == 0) cv.notify_one();
                    });
  }
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return outstanding == 0; });
}

OursResult RunOutbox(const Args& a, int producers, int in_flight) {
  const std::string path = a.dir + "/outbox.db";
  Remove(path);
  auto box = Outbox::Open(
      {.path = path, .site_id = "bench", .node_id = "n1", .max_bytes = uint64_t{64} << 30});
  if (!box.ok()) {
    std::fprintf(stderr, "open: %s\n", box.status().ToString().c_str());
    std::exit(1);
  }
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat(static_cast<size_t>(producers));
  std::vector<std::thread> threads;
  const std::string payload(a.payload, 'r');
  auto start = Steady::now();
  for (int t = 0; t < producers; ++t) {
    threads.emplace_back([&, t] {
      auto& mine = lat[static_cast<size_t>(t)];
      mine.reserve(1 << 16);
      Produce(**box, "model-" + std::to_string(t % 8), payload, in_flight, stop, mine);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  stop = true;
  for (auto& th : threads) th.join();
  OursResult r;
  r.seconds = std::chrono::duration<double>(Steady::now() - start).count();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  r.records = all.size();
  r.p50_ms = Percentile(all, 0.50);
  r.p99_ms = Percentile(all, 0.99);
  r.max_ms = all.empty() ? 0 : *std::max_element(all.begin(), all.end());
  auto st = (*box)->Stats();
  if (st.ok() && st->commits > 0) {
    r.mean_batch = static_cast<double>(st->committed_records) / static_cast<double>(st->commits);
  }
  return r;
}

struct PlainResult {
  double rows_per_s = 0;
  double p99_commit_ms = 0;
};

// Plain SQLite: the same rows into the same table, one thread, `batch` rows per transaction.
// With `spin`, a second thread spins meanwhile: on a virtual machine a lone thread blocked in
// fdatasync waits several times longer (the idle CPU must be woken by the completion) than
// one whose neighbours keep a CPU busy, as the outbox's producers do. Both ratios are printed:
// against the lone thread (like for like at 1 producer) and against the spinning one (like
// for like when many producers keep CPUs busy; the harder baseline).
PlainResult RunPlain(const Args& a, uint64_t rows, size_t batch, bool spin) {
  std::atomic<bool> stop{false};
  std::thread spinner;
  if (spin) {
    spinner = std::thread([&] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  const std::string path = a.dir + "/plain.db";
  Remove(path);
  auto db = Db::Open(path, DbOptions{});
  auto check = [](const Status& s, const char* what) {
    if (!s.ok()) {
      std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
      std::exit(1);
    }
  };
  check(db.status(), "plain open");
  check(ConfigureConnection(**db, uint64_t{64} << 30), "plain pragmas");
  check(CreateSchema(**db, Meta{.site_id = "bench", .node_id = "n1"}), "plain schema");
  auto ins = (*db)->Prepare(
      "INSERT INTO records(stream, seq, kind, created_ms, payload, checksum) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  check(ins.status(), "plain prepare");
  const std::string payload(a.payload, 'r');
  std::vector<double> commits;
  std::vector<uint64_t> seq(8, 1);
  auto start = Steady::now();
  for (uint64_t done = 0; done < rows;) {
    auto t0 = Steady::now();
    check((*db)->Exec("BEGIN IMMEDIATE"), "begin");
    for (size_t i = 0; i < batch && done < rows; ++i, ++done) {
      size_t s = done % 8;
      (*ins)->BindText(1, "model-" + std::to_string(s));
      (*ins)->BindInt(2, static_cast<int64_t>(seq[s]++));
      (*ins)->BindInt(3, 6);
      (*ins)->BindInt(4, 1'700'000'000'000);
      (*ins)->BindBlob(5, payload);
      (*ins)->BindInt(6, 12345);
      check((*ins)->Run(), "insert");
    }
    check((*db)->Exec("COMMIT"), "commit");
    commits.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t0).count());
  }
  PlainResult r;
  double secs = std::chrono::duration<double>(Steady::now() - start).count();
  stop = true;
  if (spinner.joinable()) spinner.join();
  r.rows_per_s = static_cast<double>(rows) / secs;
  r.p99_commit_ms = Percentile(commits, 0.99);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = Parse(argc, argv);
  std::printf(
      "outbox bench: %zu-byte records, %.1f s per run, medians of %d rounds, "
      "SQLite %s, folder %s\n",
      a.payload, a.seconds, a.rounds, std::string(SqliteVersion()).c_str(), a.dir.c_str());
  std::printf("%9s %9s %12s %9s %9s %9s %10s | %11s %11s %12s | %6s %6s\n", "producers",
              "in flight", "records/s", "p50 ms", "p99 ms", "max ms", "mean batch", "plain rows/s",
              "+spin rows/s", "plain p99 ms", "ratio", "r+spin");
  std::printf(
      "(ratio, r+spin: outbox records/s over plain SQLite, lone / with a spinning "
      "thread; latencies are per Append, plain p99 per commit; in flight: appends each "
      "producer keeps unanswered, 1 = the blocking Append)\n");
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (int p : a.producers) {
    for (int f : a.in_flight) {
      std::vector<double> rate, p50, p99, maxl, batch, lone_rate, spin_rate, plain_p99;
      for (int round = 0; round < a.rounds; ++round) {
        OursResult ours = RunOutbox(a, p, f);
        size_t b = static_cast<size_t>(std::max(1.0, ours.mean_batch + 0.5));
        PlainResult lone = RunPlain(a, ours.records, b, /*spin=*/false);
        PlainResult spin = RunPlain(a, ours.records, b, /*spin=*/true);
        rate.push_back(static_cast<double>(ours.records) / ours.seconds);
        p50.push_back(ours.p50_ms);
        p99.push_back(ours.p99_ms);
        maxl.push_back(ours.max_ms);
        batch.push_back(ours.mean_batch);
        lone_rate.push_back(lone.rows_per_s);
        spin_rate.push_back(spin.rows_per_s);
        plain_p99.push_back(std::min(lone.p99_commit_ms, spin.p99_commit_ms));
      }
      std::printf("%9d %9d %12.0f %9.2f %9.2f %9.2f %10.1f | %11.0f %11.0f %12.2f | %6.2f %6.2f\n",
                  p, f, median(rate), median(p50), median(p99), median(maxl), median(batch),
                  median(lone_rate), median(spin_rate), median(plain_p99),
                  median(rate) / median(lone_rate), median(rate) / median(spin_rate));
      std::fflush(stdout);
    }
  }
  Remove(a.dir + "/outbox.db");
  Remove(a.dir + "/plain.db");
  ::rmdir(a.dir.c_str());
  return 0;
}
