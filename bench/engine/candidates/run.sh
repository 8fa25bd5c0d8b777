#!/bin/sh
# Measures the Debian 12 kernel libraries against the engine's own convolutions on the same
# shapes, one thread. NOT PART OF THE BUILD: CMake never compiles this, and scripts/setup.sh
# does not install these packages. To repeat the measurement on a Debian 12 machine:
#
#   apt-get install -y libopenblas-dev libdnnl-dev libxnnpack-dev libpthreadpool-dev libcpuinfo-dev
#   bench/engine/candidates/run.sh [outpost-build-dir [rounds]]     (from the repository root)
#
# It alternates onnx_conv_bench (the engine's kernels, from an existing release build) with
# the candidates program, `rounds` times, so that both see the same neighbours on a shared
# machine, and writes every round's output to $OUTDIR (default /tmp/outpost-candidates).
set -eu
here=$(dirname "$0")
build=${1:-build}
rounds=${2:-5}
out=${OUTDIR:-/tmp/outpost-candidates}
mkdir -p "$out"
g++ -O2 -march=native -std=c++17 -o "$out/candidates" "$here/candidates.cc" \
  -I/usr/include/x86_64-linux-gnu/openblas-pthread \
  -L/usr/lib/x86_64-linux-gnu/openblas-pthread -lopenblas -ldnnl -lXNNPACK -lpthreadpool
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
i=1
while [ "$i" -le "$rounds" ]; do
  "$build/engine/onnx/onnx_conv_bench" 0.5 > "$out/outpost.$i.txt"
  "$out/candidates" 0.6 5 > "$out/candidates.$i.txt"
  i=$((i + 1))
done
/usr/bin/python3 "$here/summarize.py" "$out" "$rounds"
