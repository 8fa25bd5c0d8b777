// The child of outbox_crash_test: appends to an outbox as fast as it can from several
// producer threads, while a forwarder thread leases and acknowledges batches, and reports
// every step on stdout, one line per write(2) (atomic on a pipe). Half the producers call
// Append; the other half AppendAsync, with up to 8 records in flight each, and report a
// record when its completion says it is stored.
//   O                               the store opened
//   A <stream> <seq> <uid>          Append (or AppendAsync's completion) returned OK for the
//                                   record with this uid
//   L <lease> <stream>:<seq> ...    about to Ack this lease
//   K <lease>                       Ack returned OK (the records are deleted)
//   E <message>                     an unexpected error; exits non-zero
// It never exits by itself: the parent kills it with SIGKILL.
//
// Usage: outbox_crash_writer <db path> <run id>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "outbox/outbox.h"

namespace {

using outpost::Result;
using outpost::outbox::Kind;
using outpost::outbox::Outbox;
using outpost::outbox::RecordKey;

void Emit(const std::string& line) {
  // Pipe writes of at most PIPE_BUF bytes are atomic, so lines from threads never mix.
  ssize_t n = ::write(1, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) _exit(5);
}

[[noreturn]] void Die(const std::string& what, const outpost::Status& s) {
  Emit("E " + what + ": " + s.ToString() + "\n");
  _exit(3);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    Emit("E usage: outbox_crash_writer <db path> <run id>\n");
    return 2;
  }
  const std::string path = argv[1];
  const std::string run = argv[2];
  auto box = Outbox::Open({.path = path, .site_id = "site-1", .node_id = "node-1"});
  if (!box.ok()) Die("open", box.status());
  Emit("O\n");
  constexpr int kProducers = 4;
  constexpr int kInFlight = 8;  // per asynchronous producer
  std::atomic<uint64_t> acked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kProducers; ++t) {
    threads.emplace_back([&, t] {
      const std::string stream = "p" + std::to_string(t);
      const bool async = t % 2 == 1;
      std::mutex mu;
      std::condition_variable cv;
      int in_flight = 0;
      for (uint64_t n = 0;; ++n) {
        std::string uid = run + "-" + std::to_string(t) + "-" + std::to_string(n);
        std::string payload = "uid=" + uid + ";";
        payload.resize(160, '.');
        auto stored = [&, uid](const Result<RecordKey>& key) {
          if (!key.ok()) Die("append", key.status());
          Emit("A " + stream + " " + std::to_string(key->seq) + " " + uid + "\n");
          acked.fetch_add(1);
          acked.notify_one();
        };
        if (!async) {
          stored((*box)->Append({.kind = Kind::kSample, .stream = stream, .payload = payload}));
          continue;
        }
        {
          std::unique_lock<std::mutex> l(mu);
          cv.wait(l, [&] { return in_flight < kInFlight; });
          ++in_flight;
        }
        (*box)->AppendAsync({.kind = Kind::kSample, .stream = stream, .payload = payload},
                            [&, stored](Result<RecordKey> key) {
                              stored(key);
                              std::lock_guard<std::mutex> l(mu);
                              --in_flight;
                              cv.notify_one();
                            });
      }
    });
  }
  // The forwarder: one lease of up to 40 records per 100 acknowledged appends.
  threads.emplace_back([&] {
    for (uint64_t threshold = 100;; threshold += 100) {
      for (uint64_t seen = acked.load(); seen < threshold; seen = acked.load()) acked.wait(seen);
      auto batch = (*box)->Lease({.max_records = 40, .duration = std::chrono::hours(1)});
      if (!batch.ok()) Die("lease", batch.status());
      if (batch->records.empty()) continue;
      std::string line = "L " + std::to_string(batch->lease_id);
      for (const auto& r : batch->records) line += " " + r.stream + ":" + std::to_string(r.seq);
      Emit(line + "\n");
      outpost::Status s = (*box)->Ack(batch->lease_id);
      if (!s.ok()) Die("ack", s);
      Emit("K " + std::to_string(batch->lease_id) + "\n");
    }
  });
  for (auto& t : threads) t.join();
  return 0;
}
