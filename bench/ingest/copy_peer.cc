#include "bench/ingest/copy_peer.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "base/coding.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "bundle/crypto.h"

namespace outpost::bench {
namespace {

void AppendCopyText(std::string* out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\\':
        *out += "\\\\";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      default:
        out->push_back(c);
    }
  }
}

}  // namespace

Status CreateCopyTable(const std::string& psql, const std::string& url) {
  // The store gives record ids itself (hub/STORE.md section 3, the record cursor); COPY
  // takes them from an identity, as the store did before. The table is the unpartitioned
  // records table of schema version 4, unique record key included, whatever the store's
  // version: the floor stays the same from one version to the next.
  RunResult made = RunProgram(
      {psql, "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
       "CREATE TABLE records_copy(id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant "
       "TEXT NOT NULL, site_id TEXT NOT NULL, node_id TEXT NOT NULL, stream TEXT NOT NULL, seq "
       "BIGINT NOT NULL, kind TEXT NOT NULL, created_ms BIGINT NOT NULL, received_ms BIGINT NOT "
       "NULL, payload TEXT NOT NULL, content_hash BYTEA NOT NULL, UNIQUE(site_id, node_id, "
       "stream, seq)); CREATE INDEX ON records_copy(tenant, created_ms)"});
  if (made.exit_code != 0) return InternalError("psql: " + made.err);
  return Status::Ok();
}

std::string CopyScript(std::span<const std::span<const hub::HubRecord>> batches, bool per_batch,
                       std::string_view tenant) {
  static const char* kCopy =
      "COPY records_copy(tenant, site_id, node_id, stream, seq, kind, created_ms, "
      "received_ms, payload, content_hash) FROM STDIN;\n";
  std::string out = "SET synchronous_commit = on;\n";
  bool open = false;
  int64_t now = 1'760'000'000'000;
  for (std::span<const hub::HubRecord> batch : batches) {
    if (!open) {
      out += kCopy;
      open = true;
    }
    for (const hub::HubRecord& r : batch) {
      AppendCopyText(&out, tenant);
      out += '\t';
      AppendCopyText(&out, r.site_id);
      out += '\t';
      AppendCopyText(&out, r.node_id);
      out += '\t';
      AppendCopyText(&out, r.stream);
      out += '\t' + std::to_string(r.seq) + '\t' + r.kind + '\t' + std::to_string(r.created_ms) +
             '\t' + std::to_string(now) + '\t';
      AppendCopyText(&out, r.payload);
      // The same content hash the store computes (its input is irrelevant to COPY's cost).
      out += "\t\\\\x" + HexEncode(bundle::Sha256Of(r.payload)) + '\n';
    }
    if (per_batch) {
      out += "\\.\n";
      open = false;
    }
  }
  if (open) out += "\\.\n";
  return out;
}

Result<double> RunCopy(const std::string& psql, const std::string& url, const std::string& dir,
                       const std::string& tag, const std::vector<std::string>& scripts) {
  std::vector<std::string> files;
  for (size_t i = 0; i < scripts.size(); ++i) {
    std::string f = dir + "/copy-" + tag + "-" + std::to_string(i) + ".sql";
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(f, scripts[i]));
    files.push_back(f);
  }
  RunResult trunc = RunProgram({psql, "-q", url, "-c", "TRUNCATE records_copy"});
  if (trunc.exit_code != 0) return InternalError("psql: " + trunc.err);
  std::atomic<int> failures{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (const std::string& f : files) {
    threads.emplace_back([&, f] {
      RunResult r = RunProgram({psql, "-q", "-v", "ON_ERROR_STOP=1", url, "-f", f});
      if (r.exit_code != 0) {
        fprintf(stderr, "psql -f %s: %s\n", f.c_str(), r.err.c_str());
        ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failures.load() > 0) return InternalError("COPY failed");
  return secs;
}

std::string AnomalyPayload(std::mt19937_64& rng, uint64_t seq) {
  std::uniform_real_distribution<double> u(0, 1);
  char buf[512];
  snprintf(buf, sizeof buf,
           R"({"v":1,"kind":"anomaly","model":"pump-failure","version":"7","score":%.6f,)"
           R"("threshold":0.95,"rule":"score_above_threshold","features":{"temp_c":%.2f,)"
           R"("vibration_mm_s":%.3f,"pressure_bar":%.3f,"rpm":%d,"flow_l_min":%.2f,)"
           R"("hours_since_service":%d},"request_id":"%016llx%016llx","seq":%llu,)"
           R"("explanation":[["vibration_mm_s",%.4f],["temp_c",%.4f]]})",
           0.95 + 0.05 * u(rng), 60 + 20 * u(rng), 2 + 5 * u(rng), 5 + 2 * u(rng),
           1400 + static_cast<int>(200 * u(rng)), 100 + 50 * u(rng),
           static_cast<int>(2000 * u(rng)), static_cast<unsigned long long>(rng()),
           static_cast<unsigned long long>(rng()), static_cast<unsigned long long>(seq), u(rng),
           u(rng));
  return buf;
}

}  // namespace outpost::bench
