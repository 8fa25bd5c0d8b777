// fleet_sim: thousands of simulated sites in one process against running hub processes
// (bench/fleet/README.md). Makes the sites' credentials, runs their schedule with faults,
// then checks the hubs' PostgreSQL: every acknowledged record stored exactly once. Prints
// upload latency, the sustained rate against the offered one, the faults seen and the check;
// with --saturate-batches, the hubs' ingestion as fast as it goes, and with --copy-peer,
// PostgreSQL's COPY of the same rows on the same server (bench/ingest/copy_peer.h) and the
// ratio. Exit 1 when a record is lost or duplicated, a batch was refused or never
// acknowledged, or (--require-faults) a fault kind never happened.
//
// usage: fleet_sim --store URL --ca-dir DIR --hub HOST:PORT [--hub ...] [--sites N]
//          [--records N] [--interval-s S] [--jitter F] [--duration-s S] [--drain-s S]
//          [--status-every N] [--drop-rate F] [--dup-rate F] [--late-rate F]
//          [--saturate-batches N] [--concurrency N] [--copy-peer] [--require-faults]
//          [--psql PATH] [--tenant T] [--seed N] [--setup-threads N]
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "base/subprocess.h"
#include "bench/fleet/fleet.h"
#include "bench/ingest/copy_peer.h"

namespace outpost::fleet {
namespace {

struct Check {
  uint64_t acked = 0, stored = 0, lost = 0, duplicated = 0, unexpected = 0, stored_unacked = 0;
};

// Reads every (site, seq) of the tenant from PostgreSQL and compares it with what the sites
// had acknowledged.
Result<Check> CheckStore(const Options& o, const std::vector<Site>& sites) {
  RunResult r = RunProgram(
      {o.psql, "-q", "-X", "-v", "ON_ERROR_STOP=1", o.store_url, "-c",
       "COPY (SELECT site_id, seq FROM records WHERE tenant = '" + o.tenant + "') TO STDOUT"});
  if (r.exit_code != 0) return InternalError("psql: " + r.err);
  std::vector<std::vector<uint8_t>> count(sites.size());
  for (size_t i = 0; i < sites.size(); ++i) count[i].assign(sites[i].next_seq, 0);
  Check check;
  size_t pos = 0;
  while (pos < r.out.size()) {
    size_t end = r.out.find('\n', pos);
    if (end == std::string::npos) end = r.out.size();
    const std::string_view line(r.out.data() + pos, end - pos);
    pos = end + 1;
    const size_t tab = line.find('\t');
    if (tab == std::string_view::npos || line.substr(0, 5) != "site-") {
      return InternalError("psql printed: " + std::string(line));
    }
    const size_t index = std::strtoull(std::string(line.substr(5, tab - 5)).c_str(), nullptr, 10);
    const uint64_t seq = std::strtoull(std::string(line.substr(tab + 1)).c_str(), nullptr, 10);
    ++check.stored;
    if (index >= sites.size() || sites[index].id != line.substr(0, tab) || seq == 0 ||
        seq >= sites[index].next_seq) {
      ++check.unexpected;  // a record no simulated site made
      continue;
    }
    uint8_t& c = count[index][seq];
    if (c < 255) ++c;
  }
  for (size_t i = 0; i < sites.size(); ++i) {
    std::vector<bool> acked(sites[i].next_seq, false);
    for (const auto& [first, last] : sites[i].acked) {
      for (uint64_t s = first; s <= last; ++s) acked[s] = true;
    }
    for (uint64_t s = 1; s < sites[i].next_seq; ++s) {
      const uint8_t c = count[i][s];
      if (acked[s]) ++check.acked;
      if (acked[s] && c == 0) ++check.lost;
      if (c > 1) check.duplicated += c - 1u;
      if (!acked[s] && c > 0) ++check.stored_unacked;
    }
  }
  return check;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t at = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(at, v.size() - 1)];
}

void PrintLatency(const char* what, const std::vector<double>& ms) {
  printf("%-44s p50 %8.1f  p99 %8.1f  max %8.1f  (n=%zu)\n", what, Percentile(ms, 0.5),
         Percentile(ms, 0.99), ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end()),
         ms.size());
}

void PrintRun(const Options& o, const Metrics& m) {
  const double offered = o.sites * o.records / o.interval_s;
  printf(
      "fleet: %d sites over %zu hubs, %d records per batch, one batch per site every %.1f s "
      "(jitter +-%.0f%%), %.0f s of schedule, status every %d batches\n",
      o.sites, o.hubs.size(), o.records, o.interval_s, o.jitter * 100, o.duration_s,
      o.status_every);
  // Records acknowledged in the schedule's whole seconds against the offered rate.
  const size_t secs = static_cast<size_t>(o.duration_s);
  uint64_t in_window = 0;
  double low = 1e18, high = 0;
  for (size_t s = 0; s < secs; ++s) {
    const uint64_t n = s < m.acked_per_s.size() ? m.acked_per_s[s] : 0;
    in_window += n;
    if (s + 10 <= secs && s % 10 == 0) {
      uint64_t w = 0;
      for (size_t t = s; t < s + 10; ++t) w += t < m.acked_per_s.size() ? m.acked_per_s[t] : 0;
      low = std::min(low, w / 10.0);
      high = std::max(high, w / 10.0);
    }
  }
  const double sustained =
      secs > 0 ? static_cast<double>(in_window) / static_cast<double>(secs) : 0;
  printf("offered   %10.0f records/s  (%.1f batches/s)\n", offered, offered / o.records);
  printf(
      "sustained %10.0f records/s  acknowledged during the schedule = %.3fx offered; "
      "10 s windows %.0f .. %.0f records/s\n",
      sustained, sustained / offered, secs >= 10 ? low : 0.0, high);
  PrintLatency("upload latency ms (attempt -> ack, TLS incl.)", m.upload_ms);
  PrintLatency("batch made -> acknowledged ms (faults incl.)", m.e2e_ms);
  PrintLatency("status report ms", m.status_ms);
  printf(
      "batches acknowledged %llu (outcome stored %llu, duplicate %llu); status ok %llu, "
      "failed %llu\n",
      (unsigned long long)m.batches_acked, (unsigned long long)m.outcome_stored,
      (unsigned long long)m.outcome_duplicate, (unsigned long long)m.status_ok,
      (unsigned long long)m.status_failed);
  printf(
      "faults: dropped mid-body %llu, ack lost %llu, duplicate resends %llu (answered "
      "duplicate %llu), late batches %llu; retries %llu, connect failures %llu, "
      "given up %llu\n",
      (unsigned long long)m.drops_mid_body, (unsigned long long)m.drops_ack_lost,
      (unsigned long long)m.dup_resends, (unsigned long long)m.dup_resends_answered_duplicate,
      (unsigned long long)m.late_batches, (unsigned long long)m.retries,
      (unsigned long long)m.connect_failures, (unsigned long long)m.given_up);
  for (const auto& [why, n] : m.connect_errors) {
    printf("connect failed: %s x %llu\n", why.c_str(), (unsigned long long)n);
  }
  for (const auto& [what, n] : m.refused) {
    printf("refused: %s x %llu\n", what.c_str(), (unsigned long long)n);
  }
}

// PostgreSQL's COPY of the saturation phase's rows, one psql per site that sent them, one
// COPY + commit per batch; prints both rates and the ratio.
Status RunCopyPeer(const Options& o, const Metrics& m) {
  const size_t workers = static_cast<size_t>(std::min(o.concurrency, o.sites));
  std::vector<std::vector<std::span<const hub::HubRecord>>> per_worker(workers);
  for (size_t b = 0; b < m.saturate_batches.size(); ++b) {
    const auto [begin, end] = m.saturate_batches[b];
    per_worker[b % workers].emplace_back(m.saturate_records.data() + begin, end - begin);
  }
  std::vector<std::string> scripts;
  for (const auto& batches : per_worker)
    scripts.push_back(bench::CopyScript(batches, true, o.tenant));
  OUTPOST_RETURN_IF_ERROR(bench::CreateCopyTable(o.psql, o.store_url));
  std::string dir = (std::filesystem::temp_directory_path() / "fleet-copy-XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) return InternalError("mkdtemp failed");
  Result<double> copy = bench::RunCopy(o.psql, o.store_url, dir, "batch", scripts);
  std::filesystem::remove_all(dir);
  if (!copy.ok()) return copy.status();
  const double rows = static_cast<double>(m.saturate_records.size());
  const double hubs = static_cast<double>(m.saturate_records_acked) / m.saturate_s;
  printf(
      "COPY peer  %10.0f records/s  (%zu psql, COPY + commit per batch of %d, same rows, "
      "same server)\n",
      rows / *copy, workers, o.records);
  printf("ratio hubs/COPY = %.2f\n", hubs / (rows / *copy));
  return Status::Ok();
}

int Run(const Options& o) {
  Result<std::vector<Site>> sites = MakeSites(o);
  if (!sites.ok()) {
    fprintf(stderr, "fleet_sim: %s\n", sites.status().ToString().c_str());
    return 1;
  }
  fprintf(stderr, "fleet_sim: %d sites enrolled; running\n", o.sites);
  Metrics m;
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  const auto began = SteadyClock::now();
  Status ran = RunFleet(o, *sites, m);
  getrusage(RUSAGE_SELF, &after);
  PrintRun(o, m);
  auto cpu_s = [](const rusage& r) {
    return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  const double wall = std::chrono::duration<double>(SteadyClock::now() - began).count();
  printf("fleet_sim's own CPU: %.1f s over %.1f s (%.2f cores), schedule and saturation\n",
         cpu_s(after) - cpu_s(before), wall, (cpu_s(after) - cpu_s(before)) / wall);
  if (!ran.ok()) {
    fprintf(stderr, "fleet_sim: %s\n", ran.ToString().c_str());
    return 1;
  }
  if (o.saturate_batches > 0) {
    printf(
        "saturation %9.0f records/s  (%zu batches of %d from %d sites at once, no faults, "
        "%.2f s)\n",
        static_cast<double>(m.saturate_records_acked) / m.saturate_s, m.saturate_batches.size(),
        o.records, std::min(o.concurrency, o.sites), m.saturate_s);
    PrintLatency("saturation upload latency ms", m.saturate_upload_ms);
  }
  Result<Check> check = CheckStore(o, *sites);
  if (!check.ok()) {
    fprintf(stderr, "fleet_sim: %s\n", check.status().ToString().c_str());
    return 1;
  }
  printf(
      "check (PostgreSQL): acknowledged records %llu, stored %llu: lost %llu, duplicated "
      "%llu, unexpected %llu, stored but never acknowledged %llu\n",
      (unsigned long long)check->acked, (unsigned long long)check->stored,
      (unsigned long long)check->lost, (unsigned long long)check->duplicated,
      (unsigned long long)check->unexpected, (unsigned long long)check->stored_unacked);
  if (o.copy_peer && o.saturate_batches > 0) {
    if (Status s = RunCopyPeer(o, m); !s.ok()) {
      fprintf(stderr, "fleet_sim: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  bool ok = check->lost == 0 && check->duplicated == 0 && check->unexpected == 0 &&
            m.refused.empty() && m.given_up == 0 && check->acked == m.records_acked;
  if (o.require_faults && (m.drops_mid_body == 0 || m.drops_ack_lost == 0 ||
                           m.dup_resends_answered_duplicate == 0 || m.late_batches == 0)) {
    fprintf(stderr, "fleet_sim: a fault kind never happened (raise the rates)\n");
    ok = false;
  }
  printf("%s\n",
         ok ? "PASS: every acknowledged record stored exactly once" : "FAIL: see the counts above");
  return ok ? 0 : 1;
}

bool ParseHub(const std::string& text, Options& o) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  const int port = std::atoi(text.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return false;
  o.hubs.emplace_back(text.substr(0, colon), static_cast<uint16_t>(port));
  return true;
}

// Flags with a value; false for an unknown flag or a bad value.
bool ParseFlag(const std::string& flag, const std::string& v, Options& o) {
  auto positive = [&](int& out) { return (out = std::atoi(v.c_str())) > 0; };
  auto rate = [&](double& out) {
    out = std::atof(v.c_str());
    return out >= 0 && out <= 1;
  };
  auto seconds = [&](double& out) { return (out = std::atof(v.c_str())) > 0; };
  if (flag == "--store") return !(o.store_url = v).empty();
  if (flag == "--ca-dir") return !(o.ca_dir = v).empty();
  if (flag == "--psql") return !(o.psql = v).empty();
  if (flag == "--tenant") return !(o.tenant = v).empty();
  if (flag == "--hub") return ParseHub(v, o);
  if (flag == "--sites") return positive(o.sites);
  if (flag == "--records") return positive(o.records);
  if (flag == "--interval-s") return seconds(o.interval_s);
  if (flag == "--jitter") return rate(o.jitter);
  if (flag == "--duration-s") return seconds(o.duration_s);
  if (flag == "--drain-s") return seconds(o.drain_s);
  if (flag == "--status-every") return positive(o.status_every);
  if (flag == "--drop-rate") return rate(o.drop_rate);
  if (flag == "--dup-rate") return rate(o.dup_rate);
  if (flag == "--late-rate") return rate(o.late_rate);
  if (flag == "--saturate-batches") return positive(o.saturate_batches);
  if (flag == "--concurrency") return positive(o.concurrency);
  if (flag == "--setup-threads") return positive(o.setup_threads);
  if (flag == "--seed") return (o.seed = std::strtoull(v.c_str(), nullptr, 10)) > 0;
  return false;
}

}  // namespace
}  // namespace outpost::fleet

int main(int argc, char** argv) {
  outpost::fleet::Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--copy-peer") {
      o.copy_peer = true;
    } else if (flag == "--require-faults") {
      o.require_faults = true;
    } else if (i + 1 >= argc || !outpost::fleet::ParseFlag(flag, argv[i + 1], o)) {
      fprintf(stderr, "fleet_sim: bad flag or value: %s (see the usage in fleet_sim.cc)\n",
              flag.c_str());
      return 2;
    } else {
      ++i;
    }
  }
  if (o.store_url.empty() || o.ca_dir.empty() || o.hubs.empty()) {
    fprintf(stderr, "usage: fleet_sim --store URL --ca-dir DIR --hub HOST:PORT [...]\n");
    return 2;
  }
  return outpost::fleet::Run(o);
}
