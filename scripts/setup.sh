#!/usr/bin/env bash
# Installs every Debian package that Outpost's build, tests, benchmarks and demo use.
# Idempotent, and quiet when nothing is missing. Needs root (or sudo) only when it installs.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake make ccache pkg-config clang libclang-rt-14-dev
  # libraries (docs/ARCHITECTURE.md section 5, "Dependencies and why we chose them")
  libboost-dev libxgboost-dev xgboost libsimdjson-dev libyaml-cpp-dev libcli11-dev
  libssl-dev libzstd-dev libsqlite3-dev
  # the runtime image: gzip layers (zlib), the CA bundle it carries (image/FORMAT.md)
  zlib1g-dev ca-certificates
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libonnx-dev libonnx-testdata
  # the ONNX engine's convolutions (engine/onnx/onednn_conv.h)
  libdnnl-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy python3-onnx
  curl wrk nginx-light openssl
  skopeo umoci docker-registry nghttp2-client
  # the Kubernetes test (tests/kubernetes): the runtime image run by podman's `kube play` with
  # runc and catatonit's pause, host networking; its manifests are read with python3-yaml
  podman runc catatonit containernetworking-plugins python3-yaml
  # the hub's production store, and its contract tests against a real server
  postgresql libpq-dev
  # retention's export files are read back in the tests with the zstd command
  zstd
  # distributed retraining: XGBoost's tracker (rabit) as Debian ships it
  python3-xgboost
  # the dashboard's browser tests
  chromium
  # the demo's record account reads a stopped site's outbox with the SQLite shell
  sqlite3
  # scripts/function_lengths.py finds functions with ctags
  universal-ctags
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# The dashboard is built with npm. A machine with Node.js from elsewhere (nodesource) has
# npm already; Debian's npm would conflict with it.
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The hub's dashboard (web/): its npm packages (with playwright-core for the browser tests)
# when they are missing or the lock file changed, then the assets in web/dist, which
# `outpost hub` serves, when a source is newer than the last build. Quiet unless it fails.
web="$(cd "$(dirname "$0")/.." && pwd)/web"
if [ -f "$web/package.json" ]; then
  if [ ! -f "$web/node_modules/.package-lock.json" ] ||
     [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
    if ! log=$(cd "$web" && npm ci --no-audit --no-fund --loglevel=error 2>&1); then
      echo "$log" >&2; echo "setup: npm ci in web/ failed" >&2; exit 1
    fi
  fi
  if [ ! -f "$web/dist/index.html" ] || [ -n "$(find "$web/src" "$web/index.html" \
       "$web/package-lock.json" "$web/vite.config.ts" "$web/tsconfig.json" \
       -newer "$web/dist/index.html" -print -quit)" ]; then
    if ! log=$(cd "$web" && npm run build 2>&1); then
      echo "$log" >&2; echo "setup: building the dashboard (npm run build in web/) failed" >&2
      exit 1
    fi
  fi
fi

# onnxruntime-node, the ONNX engine's reference peer (bench/engine/): the build scores the
# large golden models with it (tests/onnx_golden/models.py, reference.js) and run_bench.js
# times it. Its install script only fetches GPU providers, so it is skipped; the CPU binaries
# ship in the package.
engine_bench="$(cd "$(dirname "$0")/.." && pwd)/bench/engine"
if [ ! -f "$engine_bench/node_modules/.package-lock.json" ] ||
   [ "$engine_bench/package-lock.json" -nt "$engine_bench/node_modules/.package-lock.json" ]; then
  if ! log=$(cd "$engine_bench" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error 2>&1); then
    echo "$log" >&2; echo "setup: npm ci in bench/engine/ failed" >&2; exit 1
  fi
fi
