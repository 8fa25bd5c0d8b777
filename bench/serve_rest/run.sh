#!/usr/bin/env bash
# bench/serve_rest: Outpost's REST scoring path against nginx returning a fixed body.
#
# Scores a tiny XGBoost model (the demo's pump model, 10 trees of depth 3) at concurrency 1
# and 32 with wrk, and in the same run sends the same requests to nginx answering a fixed
# JSON body of the same size as Outpost's answer. Prints requests/s and p50/p99 for both and
# the ratio ours/nginx. Then the same model with insight rules (anomaly, hard example, drift,
# sampling, aggregates) against the plain one at concurrency 32: what the rules add to p99.
# Loopback only; each run is bounded by DURATION seconds.
#
# usage: bench/serve_rest/run.sh [build-dir]     (DURATION=10 THREADS=2 by default)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
duration=${DURATION:-10}
threads=${THREADS:-2}
outpost="$build/outpost"
. "$here/../lib.sh"
bench_workdir outpost-bench

# 1. A tiny model in a repository, and the request body.
"$outpost" demo --write-repository "$work/models" --trees 10 --depth 3 >/dev/null
# The same model with insight rules, to measure what evaluating them adds.
mkdir -p "$work/models/pump_insight/1"
cp "$work/models/pump/1/model.json" "$work/models/pump_insight/1/"
cat > "$work/models/pump_insight/config.yaml" <<'YAML'
backend: xgboost
inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]
outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]
insight:
  features: [bearing_temp_c, vibration_mm_s, discharge_pressure_bar, motor_current_a,
             speed_rpm, ambient_temp_c, flow_m3h, hours_since_service]
  rules:
    - {name: fault_likely, kind: anomaly, score: value, above: 0.9, fields: all}
    - {name: unsure, kind: hard_example, margin_below: 0.2, fields: all}
    - name: heat
      kind: drift
      window: 1000
      level: 0.2
      baseline:
        bearing_temp_c: {edges: [55, 60, 65, 70, 75, 80], fractions: [0.1, 0.15, 0.2, 0.25, 0.15, 0.1, 0.05]}
    - {name: traffic, kind: sample, rate: 0.01, fields: all}
YAML
cat > "$work/body.json" <<'JSON'
{"id":"bench","inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[71.5,2.1,6.4,41.0,1480.0,18.0,0.7,3.1]}]}
JSON

# 2. Outpost edge.
port=$(free_port)
"$outpost" edge --model-repository "$work/models" --listen "127.0.0.1:$port" --threads "$threads" \
  --grpc-listen "" --data-dir "$work/data" --no-watch --log-level warning > "$work/edge.out" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$port/v2/health/ready"
answer=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary @"$work/body.json" \
  "http://127.0.0.1:$port/v2/models/pump/infer")
echo "outpost answers: $answer"

# 3. nginx answering the same bytes.
start_nginx "$threads" "$answer"

# 4. wrk at concurrency 1 and 32 against both.
run_wrk() {  # url connections -> "rps p50_us p99_us"
  local url=$1 conns=$2 t=$(( $2 < threads ? $2 : threads ))
  BODY_FILE="$work/body.json" wrk -t"$t" -c"$conns" -d"${duration}s" --latency -s "$here/post.lua" "$url" |
    wrk_summary
}

printf '\n%-12s %-8s %12s %10s %10s\n' server conc "requests/s" "p50 us" "p99 us"
for c in 1 32; do
  read -r o_rps o_p50 o_p99 < <(run_wrk "http://127.0.0.1:$port/v2/models/pump/infer" "$c")
  read -r n_rps n_p50 n_p99 < <(run_wrk "http://127.0.0.1:$nport/v2/models/pump/infer" "$c")
  printf '%-12s %-8s %12.0f %10.0f %10.0f\n' outpost "$c" "$o_rps" "$o_p50" "$o_p99"
  printf '%-12s %-8s %12.0f %10.0f %10.0f\n' nginx "$c" "$n_rps" "$n_p50" "$n_p99"
  /usr/bin/python3 -c "print('ratio ours/nginx at concurrency $c: requests/s %.2fx, p50 %.2fx, p99 %.2fx' % ($o_rps/$n_rps, $o_p50/$n_p50, $o_p99/$n_p99))"
done

read -r i_rps i_p50 i_p99 < <(run_wrk "http://127.0.0.1:$port/v2/models/pump_insight/infer" 32)
read -r o_rps o_p50 o_p99 < <(run_wrk "http://127.0.0.1:$port/v2/models/pump/infer" 32)
printf '\n%-12s %-8s %12.0f %10.0f %10.0f\n' "+insight" 32 "$i_rps" "$i_p50" "$i_p99"
printf '%-12s %-8s %12.0f %10.0f %10.0f\n' "no rules" 32 "$o_rps" "$o_p50" "$o_p99"
/usr/bin/python3 -c "print('insight rules at concurrency 32: requests/s %.2fx, p99 %+.0f us (%.2fx)' % ($i_rps/$o_rps, $i_p99-$o_p99, $i_p99/$o_p99))"
curl -sf "http://127.0.0.1:$port/v1/outbox" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("outbox after the run: %d records" % d["records"])'
