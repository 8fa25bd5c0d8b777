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
# Then the fleet page (GET /api/v1/sites?limit=100, what the dashboard's fleet table loads)
# with all SITES sites in the database: PAGE_CALLS calls one after another (curl),
# p50/p99/max; and the whole fleet in one answer (no limit).
# Aims (issue 20, not gates): 10,000 sites at one batch of 100 per minute with upload p99
# <= 200 ms and 0 lost/duplicated; ingestion >= 0.5x COPY with 3 hubs; the fleet page p99
# <= 200 ms with 10,000 sites. Absolute numbers on a shared machine are noise; say which.
#
# usage: bench/fleet/run.sh [build-dir]
#   SITES=1000 HUBS=3 RECORDS=100 INTERVAL_S=60 DURATION_S=300 DROP_RATE=0.01 DUP_RATE=0.01
#   LATE_RATE=0.01 SATURATE_BATCHES=4000 CONCURRENCY=16 PAGE_CALLS=20 by default.
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

"$build/bench/fleet/fleet_sim" --store "$pg_url" --ca-dir "$work/ca" --psql "$psql" \
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

# The fleet page as the dashboard loads it (GET /api/v1/sites?limit=100: the whole fleet's
# counts and one page of sites), with every site of the run in the database.
api="http://127.0.0.1:${op_ports[0]}/api/v1/sites"
page="$api?limit=100"
read -r matched next < <(curl -sf -H "Authorization: Bearer $op_token" "$page" | tee "$work/page.json" |
  /usr/bin/python3 -c 'import json, sys; p = json.load(sys.stdin); print(p["matched"], p["next_after"])')
[[ $matched == "$sites" ]] || { echo "the fleet page counts $matched sites, not $sites"; exit 1; }
# PAGE_CALLS calls one after another (curl's own timing of each transfer), the first page and
# the next one in turn: a fixed count, not a duration, so that a slow page still gives every
# figure. Then the whole fleet in one answer (no limit), for comparison.
calls=${PAGE_CALLS:-20}
for ((i = 0; i < calls; i++)); do
  target=$page
  ((i % 2 == 0)) || target="$page&after=$next"
  curl -sf -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $op_token" "$target"
done > "$work/page_times.txt"
for ((i = 0; i < 3; i++)); do
  curl -sf -o "$work/all.json" -w '%{time_total}\n' -H "Authorization: Bearer $op_token" "$api"
done > "$work/all_times.txt"
/usr/bin/python3 - "$work/page_times.txt" "$sites" "$(stat -c %s "$work/page.json")" \
  "$work/all_times.txt" "$(stat -c %s "$work/all.json")" <<'PY'
import sys
def times(path):
    return sorted(float(x) * 1e3 for x in open(path))
def pick(t, p):
    return t[min(len(t) - 1, int(p * (len(t) - 1) + 0.5))]
t = times(sys.argv[1])
print("fleet page (GET /api/v1/sites?limit=100, %s sites, %.0f kB): %d calls, p50 %.1f ms, "
      "p99 %.1f ms, max %.1f ms (aim: p99 <= 200 ms)" % (sys.argv[2], int(sys.argv[3]) / 1e3,
                                                      len(t), pick(t, 0.5), pick(t, 0.99), t[-1]))
a = times(sys.argv[4])
print("whole fleet in one answer (GET /api/v1/sites, %.1f MB): %d calls, median %.1f ms" %
      (int(sys.argv[5]) / 1e6, len(a), pick(a, 0.5)))
PY
"$psql" -X -q -At "$pg_url" -c "SELECT 'database ' || pg_size_pretty(pg_database_size('fleet')) || ', records ' || (SELECT count(*) FROM records) || ', records table with indexes (every partition) ' || pg_size_pretty((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'records'::regclass)) || ', record_keys ' || pg_size_pretty(pg_total_relation_size('record_keys'))"
