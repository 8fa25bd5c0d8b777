#!/usr/bin/env bash
# serve_load_client_test: the load client of bench/serve_load against two tiny servers, in
# each of its modes, for a few hundred requests each: open loop and closed loop, over gRPC
# (serve_load_grpc_floor) and over HTTP/1.1 keep-alive (a small Python server). Every request
# must be answered with a success (serve_load --check) and the client must exit cleanly: its
# open loop once freed the arrival queue while client threads still took from it (a corrupt
# heap, or a client asleep until a time read from freed memory). Counts, never timings: the
# runs are bounded by --requests, and nothing here asserts a rate or a latency.
#
# usage: client_test.sh SERVE_LOAD GRPC_FLOOR
set -euo pipefail
load=$1
floor=$2
. "$(cd "$(dirname "$0")" && pwd)/../lib.sh"
bench_workdir outpost-serve-load-test

# Waits for a server's "... port N" line in FILE and prints N.
listening_port() {
  for _ in $(seq 300); do
    port=$(sed -n 's/.*listening on port \([0-9][0-9]*\).*/\1/p' "$1" 2>/dev/null | head -n 1)
    if [[ -n $port ]]; then echo "$port"; return 0; fi
    sleep 0.1
  done
  echo "no server started: $(cat "$1")" >&2
  exit 1
}

"$floor" 127.0.0.1:0 tiny fault_probability 1 > "$work/grpc.out" 2>&1 &
pids+=($!)
/usr/bin/python3 - > "$work/http.out" 2>&1 <<'PY' &
import http.server, sys

class Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects
    disable_nagle_algorithm = True

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b'{"outputs":[]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

# Every client connects at once: a listen backlog for all of them.
http.server.ThreadingHTTPServer.request_queue_size = 64
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
print("http listening on port %d" % server.server_address[1], flush=True)
server.serve_forever()
PY
pids+=($!)
gport=$(listening_port "$work/grpc.out")
hport=$(listening_port "$work/http.out")
echo '{"inputs":[]}' > "$work/body.json"

run() {
  echo "serve_load $*"
  "$load" "$@" --warmup 0 --requests 300 --timeout 30 --check
}
run --grpc "127.0.0.1:$gport" --model tiny --rows 1 --cols 8 --open 1000 --connections 16
run --grpc "127.0.0.1:$gport" --model tiny --rows 1 --cols 8 --closed 8
run --http "127.0.0.1:$hport" --path /v2/models/tiny/infer --body "$work/body.json" --open 1000 --connections 16
run --http "127.0.0.1:$hport" --path /v2/models/tiny/infer --body "$work/body.json" --closed 8
echo "serve_load answered every request in every mode"
