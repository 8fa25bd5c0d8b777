#!/usr/bin/env bash
# fleet_smoke_test: the fleet simulator's correctness on a small fleet: 50 sites on 2 hub
# processes sharing one private PostgreSQL, a batch every 2 s each for 12 s, with every fault
# kind at a high rate (dropped connections mid-upload and after the whole body, duplicate
# resends of acknowledged batches, late batches). fleet_sim exits 1 unless every
# acknowledged record is stored exactly once (0 lost, 0 duplicated), no batch was refused or
# left unacknowledged, and each fault kind happened. No assertion on any time or rate.
#
# usage: smoke_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
. "$here/../lib.sh"
. "$here/fleet_lib.sh"
bench_workdir outpost-fleet-smoke
fleet_postgres
fleet_hubs 2 "$build/outpost"
"$build/bench/fleet/fleet_sim" --store "$pg_url" --ca-dir "$work/ca" --psql "$psql" \
  "${hub_args[@]}" --sites 50 --records 20 --interval-s 2 --duration-s 12 --drain-s 60 \
  --status-every 2 --drop-rate 0.15 --dup-rate 0.15 --late-rate 0.15 --require-faults
# The hubs saw the sites' status reports: the fleet page lists all 50 with their nodes.
curl -sf -H "Authorization: Bearer $op_token" "http://127.0.0.1:${op_ports[1]}/api/v1/sites" |
  /usr/bin/python3 -c '
import json, sys
page = json.load(sys.stdin)
sites = page["sites"]
assert len(sites) == 50, len(sites)
assert all(s["nodes"] for s in sites), "a site without a status report"
print("fleet page: 50 sites, each with its node status")'
