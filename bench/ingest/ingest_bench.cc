// bench/ingest: how fast the hub's PostgreSQL store ingests batches, against the floor a
// plain COPY of the same rows sets, measured in the same run on the same private server.
//
//   ingest     T threads, each calling Store::Ingest for its site's batches in turn (one
//              transaction per batch: key lookup, record-key checks, audit CAS, commit).
//   copy/batch T psql processes, each running one COPY + commit per batch of the same rows
//              into a table of the same shape (same columns, indexes and unique key): the
//              same durability per batch, none of the checks.
//   copy/bulk  T psql processes, each one COPY of all its rows: the floor.
//
// Prints records/s for each and the ratios, then the wire size of the batches encoded with
// sync::EncodeBatch (the forwarder's upload body) per record. Absolute numbers on a shared
// machine are noise; the ratios are the result.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/file.h"
#include "bench/ingest/copy_peer.h"
#include "hub/store.h"
#include "hub/testing/postgres_cluster.h"
#include "sync/batch.h"

namespace outpost {
namespace {

struct Options {
  int threads = 4;
  int batches_per_thread = 40;
  int batch_size = 500;
};

struct PreparedBatch {
  hub::BatchKey key;
  std::vector<hub::HubRecord> records;
  size_t wire_bytes = 0;
};

Result<std::vector<std::vector<PreparedBatch>>> Prepare(const Options& o) {
  std::vector<std::vector<PreparedBatch>> out(static_cast<size_t>(o.threads));
  std::mt19937_64 rng(42);
  int64_t t0 = 1'760'000'000'000;
  for (int t = 0; t < o.threads; ++t) {
    uint64_t seq = 1;
    for (int b = 0; b < o.batches_per_thread; ++b) {
      sync::Batch batch{.site_id = "site-" + std::to_string(t), .node_id = "node-1",
                        .stream = "pump-failure"};
      PreparedBatch p;
      for (int i = 0; i < o.batch_size; ++i, ++seq) {
        int64_t created = t0 + static_cast<int64_t>(seq) * 250;
        std::string payload = bench::AnomalyPayload(rng, seq);
        batch.records.push_back(sync::BatchRecord{.seq = seq, .kind = 1,
                                                  .created_ms = created, .payload = payload});
        p.records.push_back(hub::HubRecord{.site_id = batch.site_id,
                                           .node_id = batch.node_id,
                                           .stream = batch.stream,
                                           .seq = seq,
                                           .kind = "anomaly",
                                           .created_ms = created,
                                           .payload = std::move(payload)});
      }
      OUTPOST_ASSIGN_OR_RETURN(std::string wire, sync::EncodeBatch(batch));
      OUTPOST_ASSIGN_OR_RETURN(sync::BatchKeyFields k, sync::KeyOf(batch));
      p.wire_bytes = wire.size();
      p.key = hub::BatchKey{.site_id = k.site_id, .node_id = k.node_id, .stream = k.stream,
                            .first_seq = k.first_seq, .last_seq = k.last_seq,
                            .content_sha256 = k.content_sha256};
      out[static_cast<size_t>(t)].push_back(std::move(p));
    }
  }
  return out;
}

// The rows of one thread's batches, batch by batch, for the COPY peer.
std::vector<std::span<const hub::HubRecord>> RecordSpans(const std::vector<PreparedBatch>& batches) {
  std::vector<std::span<const hub::HubRecord>> out;
  for (const PreparedBatch& b : batches) out.emplace_back(b.records);
  return out;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

int Run(const Options& o) {
  auto die = [](const Status& s) {
    fprintf(stderr, "ingest_bench: %s\n", s.ToString().c_str());
    return 1;
  };
  Result<std::unique_ptr<hub::testing::PostgresCluster>> cluster =
      hub::testing::PostgresCluster::Start();
  if (!cluster.ok()) return die(cluster.status());
  Result<std::string> url = (*cluster)->CreateDatabase("ingest_bench");
  if (!url.ok()) return die(url.status());
  Result<std::unique_ptr<hub::Store>> store = hub::OpenStore(*url);
  if (!store.ok()) return die(store.status());
  for (int t = 0; t < o.threads; ++t) {
    Status s = (*store)->CreateSite(hub::Site{.site_id = "site-" + std::to_string(t),
                                              .tenant = "acme", .region = "eu"});
    if (!s.ok()) return die(s);
  }
  Result<std::vector<std::vector<PreparedBatch>>> prepared = Prepare(o);
  if (!prepared.ok()) return die(prepared.status());
  const auto& batches = *prepared;
  const double total = static_cast<double>(o.threads) * o.batches_per_thread * o.batch_size;

  std::string psql = JoinPath((*cluster)->bindir(), "psql");
  Status made = bench::CreateCopyTable(psql, *url);
  if (!made.ok()) return die(made);

  auto run_copy = [&](bool per_batch, const std::string& tag) -> Result<double> {
    std::vector<std::string> scripts;
    for (int t = 0; t < o.threads; ++t) {
      scripts.push_back(bench::CopyScript(RecordSpans(batches[static_cast<size_t>(t)]),
                                          per_batch, "acme"));
    }
    return bench::RunCopy(psql, *url, (*cluster)->dir(), tag, scripts);
  };

  // COPY per batch first (a warm-up of the server for everyone), then Ingest, then bulk.
  Result<double> copy_batch = run_copy(true, "batch");
  if (!copy_batch.ok()) return die(copy_batch.status());

  // Today's partition (hub/STORE.md section 8), made when the store opened.
  const int64_t received_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  std::atomic<int> failures{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] {
      for (const PreparedBatch& b : batches[static_cast<size_t>(t)]) {
        Result<hub::IngestResult> r = (*store)->Ingest(b.key, b.records, {}, received_ms);
        if (!r.ok() || r->outcome != hub::IngestOutcome::kStored ||
            r->records_stored != b.records.size()) {
          fprintf(stderr, "Ingest: %s\n", r.status().ToString().c_str());
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  double ingest = Seconds(std::chrono::steady_clock::now() - start);
  if (failures.load() > 0) return die(InternalError("Ingest failed"));

  Result<double> copy_bulk = run_copy(false, "bulk");
  if (!copy_bulk.ok()) return die(copy_bulk.status());

  size_t wire = 0, payload = 0;
  for (const auto& per_thread : batches) {
    for (const PreparedBatch& b : per_thread) {
      wire += b.wire_bytes;
      for (const hub::HubRecord& r : b.records) payload += r.payload.size();
    }
  }
  printf("records: %.0f (%d threads x %d batches x %d records), PostgreSQL fsync=on\n", total,
         o.threads, o.batches_per_thread, o.batch_size);
  printf("ingest      %8.3f s  %10.0f records/s  (Store::Ingest, one transaction per batch)\n",
         ingest, total / ingest);
  printf("copy/batch  %8.3f s  %10.0f records/s  (psql COPY + commit per batch)\n",
         *copy_batch, total / *copy_batch);
  printf("copy/bulk   %8.3f s  %10.0f records/s  (psql, one COPY per thread)\n", *copy_bulk,
         total / *copy_bulk);
  printf("ratio ingest/copy_batch = %.2f\n", *copy_batch / ingest);
  printf("ratio ingest/copy_bulk  = %.2f\n", *copy_bulk / ingest);
  printf("wire: sync::EncodeBatch (zstd level 3) %.1f bytes/record; payload JSON %.1f "
         "bytes/record (ratio %.2f)\n",
         static_cast<double>(wire) / total, static_cast<double>(payload) / total,
         static_cast<double>(payload) / static_cast<double>(wire));
  return 0;
}

}  // namespace
}  // namespace outpost

int main(int argc, char** argv) {
  outpost::Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (v <= 0) {
      fprintf(stderr, "usage: ingest_bench [--threads N] [--batches N] [--batch N]\n");
      return 2;
    }
    if (flag == "--threads") {
      o.threads = v;
    } else if (flag == "--batches") {
      o.batches_per_thread = v;
    } else if (flag == "--batch") {
      o.batch_size = v;
    } else {
      fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  return outpost::Run(o);
}
