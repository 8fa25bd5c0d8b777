#!/bin/bash
# bench/release: SITES enrolled sites (default 50) fetch one signed release of SIZE_MIB
# (default 100) at once from `outpost hub serve` over their mutual-TLS links, as the edge's
# release puller does (1 MiB ranges; release_fanout.cc), and then the same bytes from nginx
# serving the same file with the same certificates (TLS 1.3, client certificates required)
# as the peer. Prints each server's CPU seconds (utime + stime of its processes, from
# /proc) for the whole fan-out, its average cores over the transfer, and the ratio
# hub / nginx. Issue 19's aim: the hub under one core. Not part of `make test`.
#
#   bench/release/run.sh [BUILD_DIR] [SITES] [SIZE_MIB]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
SITES=${2:-50}
SIZE_MIB=${3:-100}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
outpost=$BUILD/outpost
fanout=$BUILD/bench/release/release_fanout
[ -x "$outpost" ] && [ -x "$fanout" ] || { echo "build outpost and release_fanout first" >&2; exit 2; }
bench_workdir outpost-bench-release
hub=$work/hub
mkdir -p "$hub" && chmod 700 "$hub"

# 1. The release: one model version whose file is SIZE_MIB of random bytes, with its
#    descriptor written by hand (as bench/bundle does), signed for group "fleet".
"$outpost" keys generate --dir "$work/keys" >/dev/null
mkdir -p "$work/models/big/1"
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$work/models/big/1/model.bin"
printf 'backend: onnx\n' > "$work/models/big/config.yaml"
printf '%s' '{"name":"big","version":1,"engine":"onnx","engine_version":"0.1.0","inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"outputs":[{"name":"y","datatype":"FP32","shape":[-1]}],"metrics":{},"lineage_sha256":"0000000000000000000000000000000000000000000000000000000000000000"}' \
  > "$work/models/big/1/descriptor.json"
mkdir -p "$hub/bundles"
"$outpost" bundle create --models "$work/models" --keys "$work/keys" --version 1 \
  --group fleet --no-model-check -o "$hub/bundles/big-1.bundle" >/dev/null
bytes=$(stat -c %s "$hub/bundles/big-1.bundle")

# 2. The hub and its sites: SITES sites added and enrolled, all in group "fleet".
members=$(seq -s, -f 'site-%g' 1 "$SITES")
"$outpost" hub operator add --tokens-file "$work/operators.yaml" --name ops --tenant acme >/dev/null 2>&1
printf 'format: 1\nversion: 1\ndefault: keep\nregions:\n  r1:\n    raw: true\ndefault_region: r1\n' > "$work/policy.yaml"
cat > "$work/hub.yaml" <<CONF
data_dir: $hub
listen: 127.0.0.1:0
operator_tokens_file: $work/operators.yaml
policies:
  - {tenant: "*", file: $work/policy.yaml}
site_groups:
  fleet: [${members//,/, }]
# Every simulated site connects from 127.0.0.1: the per-address bound (32 by default) is
# raised so that it does not turn most of them away, as distinct sites' addresses would not.
limits:
  max_connections_per_address: $((SITES + 8))
CONF
tokens=()
for i in $(seq 1 "$SITES"); do
  tokens+=("$("$outpost" hub site add --data-dir "$hub" --site "site-$i" --tenant acme --region r1 | head -1)")
done
"$outpost" hub serve --config "$work/hub.yaml" > "$work/hub.out" 2> "$work/hub.log" &
hub_pid=$!
pids+=("$hub_pid")
for _ in $(seq 100); do grep -q 'listening on https' "$work/hub.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^listening on https:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$work/hub.out")
for i in $(seq 1 "$SITES"); do
  "$outpost" enrol --hub "https://127.0.0.1:$port" --token "${tokens[$((i - 1))]}" --site "site-$i" \
    --credentials "$work/creds/site-$i" >/dev/null 2>&1
done

calc() { awk "BEGIN { print $1 }"; }
# CPU seconds (utime + stime) of a process and its reaped children.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15 + $16 + $17) / hz}' "/proc/$1/stat"; }
# Runs the fan-out against URL and prints "wall_s cpu_s" of the server processes PIDS.
measure() {
  local url=$1 if_match=$2; shift 2
  local before=0 after=0 p
  for p in "$@"; do before=$(calc "$before + $(cpu_s "$p")"); done
  "$fanout" --hub "$url" --creds "$work/creds" --sites "$SITES" --if-match "$if_match" > "$work/fanout.out" \
    || { cat "$work/fanout.out" >&2; exit 1; }
  for p in "$@"; do after=$(calc "$after + $(cpu_s "$p")"); done
  echo "$(sed -n 's/^wall_s //p' "$work/fanout.out") $(calc "$after - $before")"
}

# 3. The hub: the listing reads the bundle once (its SHA-256) before the fan-out.
"$outpost" --version >/dev/null 2>&1 || true
read -r hub_wall hub_cpu <<<"$(measure "https://127.0.0.1:$port" 1 "$hub_pid")"

# 4. nginx with the hub's own server certificate and CA: the same bytes, the same ranges.
nport=$(free_port)
mkdir -p "$work/peer/logs" "$work/peer/files/big"
cp "$hub/bundles/big-1.bundle" "$work/peer/files/big/1"
sha=$(sha256sum "$hub/bundles/big-1.bundle" | cut -d' ' -f1)
printf '{"site_id":"any","releases":[{"model":"big","model_version":1,"version":1,"bytes":%s,"sha256":"%s","created":0,"expires":0}]}' \
  "$bytes" "$sha" > "$work/peer/files/list.json"
cat > "$work/peer/nginx.conf" <<CONF
worker_processes 2;
user $(id -un);
daemon off;
pid $work/peer/nginx.pid;
error_log $work/peer/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$nport ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate $hub/server.crt;
    ssl_certificate_key $hub/server.key;
    ssl_client_certificate $hub/ca.crt;
    ssl_verify_client on;
    location = /sync/v1/releases { default_type application/json; alias $work/peer/files/list.json; }
    location /sync/v1/releases/ { default_type application/octet-stream; alias $work/peer/files/; }
  }
}
CONF
nginx -p "$work/peer" -c "$work/peer/nginx.conf" 2>"$work/peer/stderr" &
nginx_master=$!
pids+=("$nginx_master")
sleep 1
workers=$(pgrep -P "$nginx_master" | tr '\n' ' ')
read -r nginx_wall nginx_cpu <<<"$(measure "https://127.0.0.1:$nport" 0 "$nginx_master" $workers)"

gib=$(calc "$bytes * $SITES / 1073741824")
printf '\n== %d sites x %.1f MiB release (%.2f GiB served), 1 MiB ranges, mutual TLS 1.3\n' "$SITES" "$(calc "$bytes / 1048576")" "$gib"
printf '%-8s %8s %10s %10s %12s\n' server wall_s cpu_s cores cpu_s/GiB
printf '%-8s %8.2f %10.2f %10.2f %12.2f\n' hub "$hub_wall" "$hub_cpu" "$(calc "$hub_cpu / $hub_wall")" "$(calc "$hub_cpu / $gib")"
printf '%-8s %8.2f %10.2f %10.2f %12.2f\n' nginx "$nginx_wall" "$nginx_cpu" "$(calc "$nginx_cpu / $nginx_wall")" "$(calc "$nginx_cpu / $gib")"
printf 'ratio hub/nginx CPU seconds: %.2f\n' "$(calc "$hub_cpu / $nginx_cpu")"
