// bench/fleet: the simulator's parts (bench/fleet/README.md says what it simulates).
//
//   fleet_sites.cc   the sites' credentials: a key and a certificate each, from the hub CA,
//                    the site row in the hub's store (the enrolment's end state).
//   fleet_upload.cc  the sites themselves: one coroutine each on one event loop, uploading
//                    batches and status reports over mutual TLS on a schedule, with faults.
//   fleet_sim.cc     the command: options, the run, the check against PostgreSQL, the report.
#ifndef OUTPOST_BENCH_FLEET_FLEET_H_
#define OUTPOST_BENCH_FLEET_FLEET_H_

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "hub/store.h"

namespace outpost::fleet {

using SteadyClock = std::chrono::steady_clock;

struct Options {
  std::string store_url{};  // the hubs' PostgreSQL (setup and the final check)
  std::string ca_dir{};     // a hub data folder holding ca.key and ca.crt
  std::string psql = "psql";
  std::string tenant = "fleet";
  std::string region = "eu";
  std::vector<std::pair<std::string, uint16_t>> hubs{};  // site listeners, host:port
  int sites = 100;
  int records = 100;            // per batch
  double interval_s = 60;       // one batch per site per interval
  double jitter = 0.1;          // each interval drawn from interval * [1 - jitter, 1 + jitter]
  double duration_s = 120;      // batches are made for this long; then the sites drain
  double drain_s = 120;         // how long undelivered batches may still be retried
  int status_every = 3;         // a status report every this many batches
  double drop_rate = 0;         // an upload attempt's connection dropped mid-upload
  double dup_rate = 0;          // an acknowledged batch sent again
  double late_rate = 0;         // a batch held back and sent after the next one
  int saturate_batches = 0;     // after the schedule: this many batches as fast as they go
  int concurrency = 16;         // sites uploading at once in that phase
  bool copy_peer = false;       // then the COPY peer with the same rows
  bool require_faults = false;  // exit 1 unless each fault kind happened at least once
  int setup_threads = 4;
  uint64_t seed = 1;
};

// One batch a site made: its records' range and the encoded upload body.
struct PendingBatch {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::string wire{};
  SteadyClock::time_point made{};  // when the schedule made it
  bool late = false;               // held back; sent after a newer batch
};

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

struct Site {
  std::string id{};
  size_t hub = 0;          // index into Options::hubs
  uint32_t source_ip = 0;  // the loopback address it connects from (host order)
  std::unique_ptr<X509, X509Free> cert{};
  std::unique_ptr<EVP_PKEY, PkeyFree> key{};
  uint64_t next_seq = 1;
  int batches_made = 0;
  std::deque<PendingBatch> queue{};
  std::optional<PendingBatch> held{};
  std::vector<std::pair<uint64_t, uint64_t>> acked{};  // record ranges acknowledged
  std::mt19937_64 rng{};
};

// What the run saw. The event loop is one thread: no locks.
struct Metrics {
  std::vector<double> upload_ms{};  // per acknowledged upload attempt, connection set-up included
  std::vector<double> e2e_ms{};     // per batch: made by the schedule -> acknowledged
  std::vector<double> status_ms{};
  std::vector<uint64_t> acked_per_s{};  // records acknowledged in each second of the run
  uint64_t batches_acked = 0, records_acked = 0;
  uint64_t outcome_stored = 0, outcome_duplicate = 0;
  uint64_t drops_mid_body = 0, drops_ack_lost = 0, retries = 0, connect_failures = 0;
  uint64_t dup_resends = 0, dup_resends_answered_duplicate = 0;
  uint64_t late_batches = 0, status_ok = 0, status_failed = 0;
  uint64_t given_up = 0;                      // batches still unacknowledged when the drain ended
  std::map<std::string, uint64_t> refused{};  // "status reason" -> count
  std::map<std::string, uint64_t> connect_errors{};  // why a connection failed -> count
  std::vector<hub::HubRecord> saturate_records{};    // the saturation phase's rows, for COPY
  std::vector<std::pair<size_t, size_t>> saturate_batches{};  // [begin, end) into those rows
  std::vector<double> saturate_upload_ms{};
  double saturate_s = 0;
  uint64_t saturate_records_acked = 0;
};

// Makes each site's key and certificate (issued by the CA in options.ca_dir) and its row in
// the store with that certificate's serial, `setup_threads` at a time.
Result<std::vector<Site>> MakeSites(const Options& options);

// Runs the schedule (and the saturation phase when asked) to its end on one event loop.
Status RunFleet(const Options& options, std::vector<Site>& sites, Metrics& metrics);

}  // namespace outpost::fleet

#endif  // OUTPOST_BENCH_FLEET_FLEET_H_
