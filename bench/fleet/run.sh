#!/usr/bin/env bash
# bench/fleet: a fleet of simulated sites against several hub processes on one PostgreSQL
# (bench/fleet/README.md says what is simulated and what is not). Starts a private
# PostgreSQL and HUBS `outpost hub serve` processes sharing it and one CA, then fleet_sim:
#
#   1. the schedule: SITES sites, each with its own key and certificate, one batch of RECORDS
#      records every INTERVAL_S seconds (+-10% jitter) for DURATION_S seconds, a status report
#      every 3 batches, faults at DROP_RATE / DUP_RATE / LATE_RATE; prints upload latency
#      p50/p99/max, records/s acknowledged against the offered rate, the faults seen;
#   2. saturation: SATURATE_BATCHES batches from CONCURRENCY sites at once, back to back, and
#      the COPY peer (bench/ingest/copy_peer.h: psql, one COPY + commit per batch, the same
#      rows, CONCURRENCY processes, same server): the ratio hubs/COPY;
#   3. the check: every acknowledged record in PostgreSQL exactly once (0 lost, 0 duplicated).
#
# Then the fleet page (GET /api/v1/sites, what the dashboard's fleet table loads) with all
# SITES sites in the database: one client, back to back for PAGE_S seconds (wrk), p50/p99.
# Aims (issue 20, not gates): 10,000 sites at one batch of 100 per minute with upload p99
# <= 200 ms and 0 lost/duplicated; ingestion >= 0.5x COPY with 3 hubs; the fleet page p99
# <= 200 ms with 10,000 sites. Absolute numbers on a shared machine are noise; say which.
#
# usage: bench/fleet/run.sh [build-dir]
#   SITES=1000 HUBS=3 RECORDS=100 INTERVAL_S=60 DURATION_S=300 DROP_RATE=0.01 DUP_RATE=0.01
#   LATE_RATE=0.01 SATURATE_BATCHES=4000 CONCURRENCY=16 PAGE_S=10 by default.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
sites=${SITES:-1000}
hubs=${HUBS:-3}
. "$here/../lib.sh"
. "$here/fleet_lib.sh"
bench_workdir outpost-bench-fleet
fleet_postgres
fleet_hubs "$hubs" "$build/outpost"
echo "PostgreSQL $pg_url; $hubs hubs: ${hub_args[*]}"

"$build/bench/fleet/fleet_sim" --store "$pg_url" --ca-dir "$work/hub0" --psql "$psql" \
  "${hub_args[@]}" --sites "$sites" --records "${RECORDS:-100}" \
  --interval-s "${INTERVAL_S:-60}" --duration-s "${DURATION_S:-300}" --drain-s 120 \
  --status-every 3 --drop-rate "${DROP_RATE:-0.01}" --dup-rate "${DUP_RATE:-0.01}" \
  --late-rate "${LATE_RATE:-0.01}" --saturate-batches "${SATURATE_BATCHES:-4000}" \
  --concurrency "${CONCURRENCY:-16}" --copy-peer
# Where the machine's CPU went during the run (the hubs' and PostgreSQL's server processes
# still alive; on a shared machine, other work took the rest).
cpu_of() { ps -o times= -p "$1" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
hub_cpu=0
for ((i = 0; i < hubs; i++)); do hub_cpu=$((hub_cpu + $(cpu_of "${pids[i]}"))); done
pg_cpu=$(ps -o times= --ppid "$(head -1 "$work/pg/data/postmaster.pid")" | awk '{s += $1} END {print s + 0}')
echo "CPU seconds so far: hubs $hub_cpu, PostgreSQL backends alive $pg_cpu; load: $(cut -d' ' -f1-3 /proc/loadavg)"

# The fleet page, with every site of the run in the database.
page="http://127.0.0.1:${op_ports[0]}/api/v1/sites"
listed=$(curl -sf -H "Authorization: Bearer $op_token" "$page" | tee "$work/page.json" |
  /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)["sites"]))')
[[ $listed == "$sites" ]] || { echo "the fleet page lists $listed sites, not $sites"; exit 1; }
wrk -t1 -c1 -d"${PAGE_S:-10}s" --timeout 60s --latency -H "Authorization: Bearer $op_token" "$page" \
  > "$work/wrk.txt"
read -r rps p50 p99 < <(wrk_summary < "$work/wrk.txt") || { cat "$work/wrk.txt"; exit 1; }
/usr/bin/python3 -c "print('fleet page (GET /api/v1/sites, %d sites, %.1f MB): %.1f calls/s, p50 %.1f ms, p99 %.1f ms (aim: p99 <= 200 ms)' % ($sites, $(stat -c %s "$work/page.json") / 1e6, $rps, $p50 / 1e3, $p99 / 1e3))"
"$psql" -X -q -At "$pg_url" -c "SELECT 'database ' || pg_size_pretty(pg_database_size('fleet')) || ', records ' || (SELECT count(*) FROM records) || ', records table with indexes ' || pg_size_pretty(pg_total_relation_size('records'))"
