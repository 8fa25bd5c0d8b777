#!/usr/bin/env bash
# bench/serve_rest/profile.sh: where `outpost edge` spends its cycles on REST JSON scoring.
#
# The tiny model and the 1x8 FP32 body of bench/serve_load/run.sh, the same load client
# (serve_load, closed loop) and the same peer, nginx answering a fixed body of the same size.
# First requests/s for Outpost and nginx at concurrency 8 and 32, ROUNDS times, alternately,
# and the ratio (no profiler attached); then `perf record -g` on the outpost process during a
# run at each concurrency, summarised by `perf report --no-children --sort symbol` (top
# symbols) and by what each share belongs to (the infer JSON reader and writer, XGBoost's
# per-call JSON, malloc, the kernel, the rest).
#
# usage: bench/serve_rest/profile.sh [build-dir] [out-dir]
#        (DURATION=5 THREADS=2 ROUNDS=2 PERF=1 CONCURRENCY="8 32" OUTPOST=<build-dir>/outpost
#        by default)
# Needs the targets outpost and serve_load, and perf (/usr/bin/perf); loopback only.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
outdir=$(mkdir -p "${2:-/tmp/outpost-profile}" && cd "${2:-/tmp/outpost-profile}" && pwd)
duration=${DURATION:-5}
threads=${THREADS:-2}
rounds=${ROUNDS:-2}
outpost=${OUTPOST:-$build/outpost}
load="$build/bench/serve_load/serve_load"
for b in "$outpost" "$load"; do
  [[ -x $b ]] || { echo "missing $b: build targets outpost serve_load" >&2; exit 1; }
done
. "$(cd "$(dirname "$0")" && pwd)/../lib.sh"
bench_workdir outpost-profile

"$outpost" demo --write-repository "$work/tiny" --trees 10 --depth 3 >/dev/null
repo="$work/models"
mkdir -p "$repo/tiny/1"
cp "$work/tiny/pump/1/model.json" "$repo/tiny/1/"
printf 'backend: xgboost\ninputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\noutputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]\n' \
  > "$repo/tiny/config.yaml"
cat > "$work/body.json" <<'JSON'
{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[71.5,2.1,6.4,41.0,1480.0,18.0,0.7,3.1]}]}
JSON

port=$(free_port)
"$outpost" edge --model-repository "$repo" --listen "127.0.0.1:$port" --threads "$threads" \
  --data-dir "$work/data" --no-watch --log-level error > "$work/edge.out" 2>&1 &
outpost_pid=$!
pids+=($outpost_pid)
wait_http "http://127.0.0.1:$port/v2/health/ready"
url=/v2/models/tiny/infer
answer=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary @"$work/body.json" \
  "http://127.0.0.1:$port$url")

start_nginx "$threads" "$answer"

rest_json() { "$load" --http "127.0.0.1:$1" --path "$2" --body "$work/body.json" --duration "$duration" "${@:3}"; }
ratio() { /usr/bin/python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2f' % (a/b if b else 0))" "$1" "$2"; }

echo "== REST JSON, tiny model, closed loop, $duration s per point (no profiler)"
printf '%-5s %5s | %10s %8s %8s %4s | %10s %8s %8s | %6s\n' round conc "outpost/s" "p50 us" "p99 us" err "nginx/s" "p50 us" "p99 us" ratio
for r in $(seq "$rounds"); do
  for c in ${CONCURRENCY:-8 32}; do
    o=$(rest_json "$port" "$url" --closed "$c")
    f=$(rest_json "$nport" /json --closed "$c")
    read -r o_rps o_p50 o_p99 o_err <<<"$o"
    read -r f_rps f_p50 f_p99 f_err <<<"$f"
    printf '%-5s %5s | %10s %8s %8s %4s | %10s %8s %8s | %6s\n' "$r" "$c" "$o_rps" "$o_p50" "$o_p99" "$o_err" "$f_rps" "$f_p50" "$f_p99" "$(ratio "$o_rps" "$f_rps")"
  done
done
[[ ${PERF:-1} == 1 ]] || exit 0

# What each share belongs to, from `perf report --sort dso,symbol`.
summarise() {
  /usr/bin/perf report -i "$1" --no-children --sort dso,symbol -g none --stdio 2>/dev/null | /usr/bin/python3 -c '
import re, sys
groups = [
    ("infer JSON reader (serve/infer_json, base/json, simdjson)",
     r"simdjson|outpost::json::|serve::\(anonymous namespace\)::(Parse|Fill|ThreadParser|CountMismatch)|ParseInferRequest"),
    ("infer JSON writer (WriteInferResponse, to_chars)",
     r"WriteInferResponse|serve::\(anonymous namespace\)::(Append|ResponseSizeHint)|AppendJson|to_chars"),
    ("XGBoost JSON (its per-call configuration and array interface)", r"xgboost::.*Json"),
    ("XGBoost, the rest", r"xgboost"),
    ("malloc and free", r"malloc|_int_free|cfree|tcache|operator new|operator delete"),
    ("kernel", r"\[k\]"),
]
sums = [0.0] * len(groups)
rest = 0.0
for line in sys.stdin:
    m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+(\[.\]\s+.*)", line)
    if not m:
        continue
    share, text = float(m.group(1)), m.group(3) + " " + m.group(2)
    for i, (_, pattern) in enumerate(groups):
        if re.search(pattern, text):
            sums[i] += share
            break
    else:
        rest += share
for (name, _), share in zip(groups, sums):
    print("  %6.2f%%  %s" % (share, name))
print("  %6.2f%%  the rest (Asio and Beast, the HTTP layer, the scheduler, libc)" % rest)'
}

for c in ${CONCURRENCY:-8 32}; do
  data="$outdir/perf-c$c.data"
  /usr/bin/perf record -g -o "$data" -p "$outpost_pid" -- sleep $((duration + 1)) 2>"$outdir/perf-c$c.log" &
  perf_pid=$!
  o=$(rest_json "$port" "$url" --closed "$c")
  wait "$perf_pid" || true
  echo
  echo "== perf record -g on outpost at concurrency $c (requests/s p50 p99 errors under perf: $o)"
  echo "top symbols (perf report --no-children --sort symbol):"
  /usr/bin/perf report -i "$data" --no-children --sort symbol -g none --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | sed -E 's/ +- +- *$//; s/ +$//' | cut -c1-150 | sed -n '1,20p'
  echo "by owner:"
  summarise "$data"
done
echo
echo "perf data kept in $outdir (perf report -i $outdir/perf-c32.data --no-children --sort symbol)"
