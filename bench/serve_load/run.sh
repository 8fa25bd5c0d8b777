#!/usr/bin/env bash
# bench/serve_load: `outpost edge` under load over REST JSON, REST binary and gRPC, with two
# floors measured in the same run:
#   - nginx answering POSTs with a fixed body of the same size as Outpost's answer (REST);
#   - a bare grpc++ server answering ModelInfer with a fixed message of the same size (gRPC).
# All load comes from serve_load (bench/serve_load/serve_load.cc), the same client for
# Outpost and for the floors.
#
#  1. Closed loop, tiny model (10 trees, depth 3, one row per request): concurrency sweep
#     1, 8, 32, 64; requests/s, p50, p99, and the ratio of Outpost's throughput to the floor's.
#  2. Open loop (Poisson arrivals) at half of Outpost's peak closed-loop throughput on the tiny
#     model, per protocol, Outpost and floor at the same rate: p50 and p99 from each request's
#     scheduled arrival.
#  3. Compute-bound model (500 trees, depth 8, one row per request) at concurrency 32 over
#     REST JSON and gRPC, dynamic batching on (max_batch_size 32, 500 us delay) against off,
#     both with 2 instances: what batching does to throughput.
#  4. IDLE (10,000 by default) idle keep-alive connections held against the first edge while
#     REST JSON runs again at concurrency 32: requests/s without and with them, and the
#     edge's resident memory per idle connection.
#
# usage: bench/serve_load/run.sh [build-dir]   (DURATION=5 THREADS=2 by default)
# Loopback only; each run lasts DURATION seconds after a 1 s warm-up.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
duration=${DURATION:-5}
threads=${THREADS:-2}
outpost="$build/outpost"
load="$build/bench/serve_load/serve_load"
floor="$build/bench/serve_load/serve_load_grpc_floor"
for b in "$outpost" "$load" "$floor"; do
  [[ -x $b ]] || { echo "missing $b: build targets outpost serve_load serve_load_grpc_floor" >&2; exit 1; }
done
. "$(cd "$(dirname "$0")" && pwd)/../lib.sh"
bench_workdir outpost-serve-load

# 1. Models: a tiny one and a compute-bound one (the demo's pump model, trained here).
echo "training the models (tiny: 10 trees depth 3; compute-bound: 500 trees depth 8)..."
"$outpost" demo --write-repository "$work/tiny" --trees 10 --depth 3 >/dev/null
"$outpost" demo --write-repository "$work/heavy" --trees 500 --depth 8 >/dev/null
repo="$work/models"
signature='inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]
outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]'
mkdir -p "$repo/tiny/1" "$repo/heavy_batch/1" "$repo/heavy_nobatch/1"
cp "$work/tiny/pump/1/model.json" "$repo/tiny/1/"
cp "$work/heavy/pump/1/model.json" "$repo/heavy_batch/1/"
cp "$work/heavy/pump/1/model.json" "$repo/heavy_nobatch/1/"
printf 'backend: xgboost\n%s\n' "$signature" > "$repo/tiny/config.yaml"
printf 'backend: xgboost\nmax_batch_size: 32\nbatching: {max_queue_delay_microseconds: 500, instance_count: 2, max_queue_size: 1024}\n%s\n' \
  "$signature" > "$repo/heavy_batch/config.yaml"
printf 'backend: xgboost\nbatching: {instance_count: 2, max_queue_size: 1024}\n%s\n' \
  "$signature" > "$repo/heavy_nobatch/config.yaml"

# Request bodies: JSON, and the binary tensor extension (JSON header + 32 bytes of FP32).
cat > "$work/body.json" <<'JSON'
{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[71.5,2.1,6.4,41.0,1480.0,18.0,0.7,3.1]}]}
JSON
/usr/bin/python3 - "$work" <<'PY'
import json, struct, sys
work = sys.argv[1]
header = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 8],
                                 "parameters": {"binary_data_size": 32}}],
                     "outputs": [{"name": "fault_probability",
                                  "parameters": {"binary_data": True}}]},
                    separators=(",", ":")).encode()
data = struct.pack("<8f", 71.5, 2.1, 6.4, 41.0, 1480.0, 18.0, 0.7, 3.1)
open(work + "/body.bin", "wb").write(header + data)
open(work + "/body.bin.len", "w").write(str(len(header)))
PY
bin_header="Inference-Header-Content-Length: $(cat "$work/body.bin.len")"

# 2. Outpost: THREADS event loops for the tiny model (as many as nginx has workers), and a
# second server with 64 loops so that 32 clients are in flight at once on the compute-bound
# model (each loop answers its connections one request at a time).
port=$(free_port); gport=$(free_port)
"$outpost" edge --model-repository "$repo" --listen "127.0.0.1:$port" --threads "$threads" \
  --grpc-listen "127.0.0.1:$gport" --data-dir "$work/data" --no-watch --log-level error \
  > "$work/edge.out" 2>&1 &
pids+=($!)
wport=$(free_port); wgport=$(free_port)
"$outpost" edge --model-repository "$repo" --listen "127.0.0.1:$wport" --threads 64 \
  --grpc-listen "127.0.0.1:$wgport" --data-dir "$work/data_wide" --no-watch --log-level error \
  > "$work/edge_wide.out" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$port/v2/health/ready"
wait_http "http://127.0.0.1:$wport/v2/health/ready"
url="/v2/models/tiny/infer"
# The edge reads a body only when its Content-Type says what it is (curl's default is a form).
json_answer=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary @"$work/body.json" "http://127.0.0.1:$port$url")
bin_size=$(curl -sf -X POST -H 'Content-Type: application/octet-stream' -H "$bin_header" --data-binary @"$work/body.bin" "http://127.0.0.1:$port$url" | wc -c)
echo "outpost answers (JSON, ${#json_answer} bytes): $json_answer"
echo "outpost answers (binary): $bin_size bytes"

# 3. nginx: fixed bodies of the same sizes.
start_nginx "$threads" "$json_answer" "$bin_size"

# 4. The bare grpc++ floor.
fport=$(free_port)
"$floor" "127.0.0.1:$fport" tiny fault_probability 1 > "$work/floor.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/floor.out" 2>/dev/null && break; sleep 0.1; done

# serve_load wrappers: print "rps p50 p99 errors".
rest_json() { "$load" --http "127.0.0.1:$1" --path "$2" --body "$work/body.json" --duration "$duration" "${@:3}"; }
rest_bin() { "$load" --http "127.0.0.1:$1" --path "$2" --body "$work/body.bin" --header "$bin_header" --duration "$duration" "${@:3}"; }
grpc_call() { "$load" --grpc "127.0.0.1:$1" --model "$2" --rows 1 --cols 8 --duration "$duration" "${@:3}"; }
ratio() { /usr/bin/python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2f' % (a/b if b else 0))" "$1" "$2"; }

declare -A peak
echo
echo "== closed loop, tiny model (1 row/request), $duration s per point; floor = nginx (REST) / bare grpc++ (gRPC)"
printf '%-10s %5s | %10s %8s %8s %4s | %10s %8s %8s | %6s\n' protocol conc "outpost/s" "p50 us" "p99 us" err "floor/s" "p50 us" "p99 us" ratio
for proto in rest_json rest_bin grpc; do
  peak[$proto]=0
  for c in 1 8 32 64; do
    case $proto in
      rest_json) o=$(rest_json "$port" "$url" --closed "$c"); f=$(rest_json "$nport" /json --closed "$c");;
      rest_bin) o=$(rest_bin "$port" "$url" --closed "$c"); f=$(rest_bin "$nport" /bin --closed "$c");;
      grpc) o=$(grpc_call "$gport" tiny --closed "$c"); f=$(grpc_call "$fport" tiny --closed "$c");;
    esac
    read -r o_rps o_p50 o_p99 o_err <<<"$o"
    read -r f_rps f_p50 f_p99 f_err <<<"$f"
    printf '%-10s %5s | %10s %8s %8s %4s | %10s %8s %8s | %6s\n' "$proto" "$c" "$o_rps" "$o_p50" "$o_p99" "$o_err" "$f_rps" "$f_p50" "$f_p99" "$(ratio "$o_rps" "$f_rps")"
    if (( o_rps > ${peak[$proto]} )); then peak[$proto]=$o_rps; fi
  done
done

echo
echo "== open loop (Poisson arrivals) at half of Outpost's peak, tiny model, 64 connections"
printf '%-10s %8s | %10s %8s %8s %4s | %10s %8s %8s\n' protocol "rate/s" "outpost/s" "p50 us" "p99 us" err "floor/s" "p50 us" "p99 us"
for proto in rest_json rest_bin grpc; do
  rate=$(( ${peak[$proto]} / 2 ))
  case $proto in
    rest_json) o=$(rest_json "$port" "$url" --open "$rate" --connections 64); f=$(rest_json "$nport" /json --open "$rate" --connections 64);;
    rest_bin) o=$(rest_bin "$port" "$url" --open "$rate" --connections 64); f=$(rest_bin "$nport" /bin --open "$rate" --connections 64);;
    grpc) o=$(grpc_call "$gport" tiny --open "$rate" --connections 64); f=$(grpc_call "$fport" tiny --open "$rate" --connections 64);;
  esac
  read -r o_rps o_p50 o_p99 o_err <<<"$o"
  read -r f_rps f_p50 f_p99 f_err <<<"$f"
  printf '%-10s %8s | %10s %8s %8s %4s | %10s %8s %8s\n' "$proto" "$rate" "$o_rps" "$o_p50" "$o_p99" "$o_err" "$f_rps" "$f_p50" "$f_p99"
done

echo
echo "== compute-bound model (500 trees, depth 8, 1 row/request), closed loop at concurrency 32, 2 instances"
printf '%-10s %-9s | %10s %8s %8s %4s\n' protocol batching "requests/s" "p50 us" "p99 us" err
for proto in rest_json grpc; do
  for model in heavy_nobatch heavy_batch; do
    case $proto in
      rest_json) r=$(rest_json "$wport" "/v2/models/$model/infer" --closed 32);;
      grpc) r=$(grpc_call "$wgport" "$model" --closed 32);;
    esac
    read -r rps p50 p99 err <<<"$r"
    printf '%-10s %-9s | %10s %8s %8s %4s\n' "$proto" "$([[ $model == heavy_batch ]] && echo on || echo off)" "$rps" "$p50" "$p99" "$err"
    eval "heavy_${proto}_${model}=$rps"
  done
  eval "on=\$heavy_${proto}_heavy_batch; off=\$heavy_${proto}_heavy_nobatch"
  echo "           batching on / off: $(ratio "$on" "$off")x"
done
# What the scheduler saw: batches against requests on the batching model.
curl -sf "http://127.0.0.1:$wport/metrics" | grep -E '^outpost_inference_(request_success_total|exec_count_total)\{model="heavy_batch"' || true

# 5. Idle keep-alive connections: each is answered once (GET /v2/health/live) and then stays
# silent, spread over loopback source addresses 127.0.0.2 and up, 100 each (the listener
# takes 128 per address). The edge closes a connection idle for 60 s, so the run with them
# comes right after they are all open.
idle=${IDLE:-10000}
ulimit -n "$(ulimit -Hn)"
edge_pid=${pids[0]}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
echo
echo "== $idle idle keep-alive connections held, REST JSON at concurrency 32 (tiny model)"
read -r without _ <<<"$(rest_json "$port" "$url" --closed 32)"
rss_before=$(rss_kib "$edge_pid")
/usr/bin/python3 - "$port" "$idle" "$work/idle.ready" <<'PY' &
import socket, sys, time
port, count, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = []
for i in range(count):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (2 + i // 100), 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: edge\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += s.recv(4096)
    held.append(s)
open(ready, "w").write("%d\n" % len(held))
time.sleep(600)
PY
idle_pid=$!
pids+=("$idle_pid")
for _ in $(seq 600); do [[ -s $work/idle.ready ]] && break; sleep 0.1; done
[[ -s $work/idle.ready ]] || { echo "the idle connections did not open" >&2; exit 1; }
rss_after=$(rss_kib "$edge_pid")
read -r with _ <<<"$(rest_json "$port" "$url" --closed 32)"
still=$(curl -sf "http://127.0.0.1:$port/v2/health/live" -o /dev/null -w '%{http_code}')
kill "$idle_pid" 2>/dev/null || true
printf 'without idle: %s/s   with %s idle: %s/s   with / without: %sx   a new connection: %s\n' \
  "$without" "$(cat "$work/idle.ready")" "$with" "$(ratio "$with" "$without")" "$still"
echo "edge resident memory: $rss_before KiB before, $rss_after KiB with them: $(( (rss_after - rss_before) * 1024 / idle )) bytes per idle connection"
