#!/usr/bin/env bash
# bench/serve_tls: what the secure edge costs. Scores the demo's tiny pump model over REST at
# concurrency 32 on two `outpost edge` processes of the same build, started alike: one
# serving TLS with a bearer token checked on every request (the secure configuration), one
# plain HTTP on loopback with no credentials. wrk keeps its connections alive, as real
# clients do, so TLS costs its record encryption and the token its hash and compare. The two
# run alternately, twice each, in the same run; prints requests/s and p99 of each and the
# ratio secure/plain. Aim: >= 0.85x plain.
#
# usage: bench/serve_tls/run.sh [build-dir]     (DURATION=10 THREADS=2 by default)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
duration=${DURATION:-10}
threads=${THREADS:-2}
outpost="$build/outpost"
. "$here/../lib.sh"
bench_workdir outpost-bench-tls
chmod 700 "$work"

# 1. The model, a server certificate (P-256, for 127.0.0.1) and a token with the infer role.
"$outpost" demo --write-repository "$work/models" --trees 10 --depth 3 >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=outpost-bench" -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$work/edge.key" -out "$work/edge.crt" 2>/dev/null
mkdir -p "$work/secure"
chmod 700 "$work/secure"
token=$("$outpost" edge credential add --data-dir "$work/secure" --name bench --role infer 2>/dev/null)
cat > "$work/secure.yaml" <<YAML
tls: {cert_file: $work/edge.crt, key_file: $work/edge.key}
YAML
cat > "$work/body.json" <<'JSON'
{"id":"bench","inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[71.5,2.1,6.4,41.0,1480.0,18.0,0.7,3.1]}]}
JSON

# 2. The two edges.
start_edge() {  # name port extra-args...
  local name=$1 port=$2
  shift 2
  "$outpost" edge --model-repository "$work/models" --listen "127.0.0.1:$port" \
    --threads "$threads" --grpc-listen "" --data-dir "$work/$name" --no-watch \
    --log-level warning "$@" > "$work/$name.out" 2>&1 &
  pids+=($!)
}
sport=$(free_port)
pport=$(free_port)
start_edge secure "$sport" --config "$work/secure.yaml"
start_edge plain "$pport"
wait_http "https://127.0.0.1:$sport/v2/health/ready" -k
wait_http "http://127.0.0.1:$pport/v2/health/ready"
# The secure edge refuses a request without the token, and serves one with it.
code=$(curl -sk -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data-binary @"$work/body.json" "https://127.0.0.1:$sport/v2/models/pump/infer")
[ "$code" = 401 ] || { echo "the secure edge answered $code without a token"; exit 1; }
echo "secure edge: $(curl -sfk -X POST -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $token" --data-binary @"$work/body.json" \
  "https://127.0.0.1:$sport/v2/models/pump/infer")"

# 3. wrk, alternately: plain, secure, plain, secure.
run_wrk() {  # url [token] -> "rps p50_us p99_us"
  BODY_FILE="$work/body.json" TOKEN="${2:-}" wrk -t"$threads" -c32 -d"${duration}s" --latency \
    -s "$here/../serve_rest/post.lua" "$1" | wrk_summary
}
printf '\n%-22s %12s %10s\n' "edge (concurrency 32)" "requests/s" "p99 us"
p_sum=0; s_sum=0; p_p99=0; s_p99=0
for round in 1 2; do
  read -r p_rps _ p_lat < <(run_wrk "http://127.0.0.1:$pport/v2/models/pump/infer")
  read -r s_rps _ s_lat < <(run_wrk "https://127.0.0.1:$sport/v2/models/pump/infer" "$token")
  printf '%-22s %12.0f %10.0f\n' "plain, round $round" "$p_rps" "$p_lat"
  printf '%-22s %12.0f %10.0f\n' "TLS+token, round $round" "$s_rps" "$s_lat"
  p_sum=$(/usr/bin/python3 -c "print($p_sum + $p_rps)"); s_sum=$(/usr/bin/python3 -c "print($s_sum + $s_rps)")
  p_p99=$(/usr/bin/python3 -c "print($p_p99 + $p_lat)"); s_p99=$(/usr/bin/python3 -c "print($s_p99 + $s_lat)")
done
/usr/bin/python3 -c "print('ratio TLS+token/plain at concurrency 32: requests/s %.2fx, p99 %.2fx (aim: requests/s >= 0.85x)' % ($s_sum/$p_sum, $s_p99/$p_p99))"
