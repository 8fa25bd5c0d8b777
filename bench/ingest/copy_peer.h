// The COPY peer of the hub's ingestion benchmarks (bench/ingest, bench/fleet): the same rows
// written into a table of the records table's shape by PostgreSQL's own COPY through psql,
// with the same durability per batch (one COPY + commit each) and none of the hub's checks.
// What the hub's ingestion is compared with, on the same server in the same run.
//
//   OUTPOST_RETURN_IF_ERROR(bench::CreateCopyTable(psql, url));
//   std::vector<std::string> scripts = ...;  // bench::CopyScript(batches of one worker, true)
//   OUTPOST_ASSIGN_OR_RETURN(double seconds, bench::RunCopy(psql, url, dir, "batch", scripts));
#ifndef OUTPOST_BENCH_INGEST_COPY_PEER_H_
#define OUTPOST_BENCH_INGEST_COPY_PEER_H_

#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "hub/store.h"

namespace outpost::bench {

// Creates `records_copy` in the database at `url`: the unpartitioned records table of schema
// version 4 (hub/STORE.md), its id an identity, as the store's was before it gave ids itself,
// whatever the store's version, so that the floor stays the same from one version to the next.
Status CreateCopyTable(const std::string& psql, const std::string& url);

// One psql script: a COPY block per batch (per_batch) or one for all the rows, every row of
// tenant `tenant`. COPY text format: backslash, tab, newline and carriage return escaped.
std::string CopyScript(std::span<const std::span<const hub::HubRecord>> batches, bool per_batch,
                       std::string_view tenant);

// Empties records_copy, writes each script to `dir`/copy-`tag`-<i>.sql and runs them with one
// psql each, all at once; returns the seconds from the first start to the last exit.
Result<double> RunCopy(const std::string& psql, const std::string& url, const std::string& dir,
                       const std::string& tag, const std::vector<std::string>& scripts);

// A realistic anomaly record of a pump model: score, threshold, rule, the features that
// triggered it and an id, as insight/ writes them (about 360 bytes of JSON).
std::string AnomalyPayload(std::mt19937_64& rng, uint64_t seq);

}  // namespace outpost::bench

#endif  // OUTPOST_BENCH_INGEST_COPY_PEER_H_
