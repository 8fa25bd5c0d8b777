# bench/lib.sh: what the benchmark scripts share; sourced (`. "$here/../lib.sh"`), never run.
#
#   bench_workdir PREFIX   makes $work, a fresh folder /tmp/PREFIX-XXXXXX, and $pids, the
#                          background processes to stop; on exit every one of them is killed
#                          and $work removed. Add each server started with `pids+=($!)`.
#   free_port              prints a TCP port free on 127.0.0.1 now.
#   wait_http URL [CURL-OPTION]...
#                          waits up to 20 s for URL to answer 2xx; exits the script if not.
#   start_nginx WORKERS ANSWER [BINARY_SIZE]
#                          starts nginx with WORKERS workers on $nport, a free loopback port,
#                          answering every request with the JSON text ANSWER, except /bin,
#                          which answers BINARY_SIZE bytes (default 0); waits until it answers.
#   wrk_summary            reads wrk --latency's report on stdin and prints
#                          "requests/s p50_us p99_us"; fails if wrk saw non-2xx answers.

bench_workdir() {
  work=$(mktemp -d "/tmp/$1-XXXXXX")
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() {
  local url=$1
  shift
  for _ in $(seq 200); do
    curl -sf "$@" "$url" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "no answer from $url" >&2
  exit 1
}

start_nginx() {
  local workers=$1 answer=$2 binary
  binary=$(head -c "${3:-0}" /dev/zero | tr '\0' 'x')
  nport=$(free_port)
  mkdir -p "$work/nginx/logs"
  cat > "$work/nginx/nginx.conf" <<CONF
worker_processes $workers;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$nport;
    location / { default_type application/json; return 200 '$answer'; }
    location /bin { default_type application/octet-stream; return 200 '$binary'; }
  }
}
CONF
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/stderr" &
  pids+=($!)
  wait_http "http://127.0.0.1:$nport/json"
}

wrk_summary() {
  /usr/bin/python3 -c '
import re, sys
text = sys.stdin.read()
def us(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = us(re.search(r"\s50%\s+(\S+)", text).group(1))
p99 = us(re.search(r"\s99%\s+(\S+)", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if non2xx: sys.exit("wrk saw %s non-2xx answers" % non2xx.group(1))
print(rps, p50, p99)'
}
