#!/bin/sh
# bench/bundle: create and verify throughput of `outpost bundle` on one large model file,
# against sha256sum of the same file in the same run, and the peak memory (ru_maxrss of each
# child, from wait4 through Python's resource module). Not part of `make test`.
#
#   bench/bundle/run.sh [BUILD_DIR] [SIZE_MIB]      (defaults: build, 1024)
#
# Prints one line per tool with seconds, MiB/s and peak RSS, and the ratios
# create/sha256sum and verify/sha256sum (throughput; higher is better). The page cache is
# warmed by reading the file once first, so every tool reads from memory.
set -eu
BUILD=${1:-build}
SIZE_MIB=${2:-1024}
OUTPOST=$(cd "$BUILD" && pwd)/outpost
[ -x "$OUTPOST" ] || { echo "no outpost binary in $BUILD" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-bundle.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
exec /usr/bin/python3 - "$OUTPOST" "$WORK" "$SIZE_MIB" <<'PY'
import os, resource, subprocess, sys, time

outpost, work, size_mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
models = os.path.join(work, "models")
os.makedirs(os.path.join(models, "big", "1"))
model = os.path.join(models, "big", "1", "model.bin")
with open(model, "wb") as f:
    chunk = os.urandom(1 << 20)
    for i in range(size_mib):
        f.write(chunk[i % 256:] + chunk[:i % 256])
with open(os.path.join(models, "big", "1", "descriptor.json"), "w") as f:
    f.write('{"name":"big","version":1,"engine":"onnx","engine_version":"0.1.0",'
            '"inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],'
            '"outputs":[{"name":"y","datatype":"FP32","shape":[-1]}],'
            '"metrics":{},"lineage_sha256":"' + "0" * 64 + '"}')

def run(argv):
    """Runs a child; returns (seconds, peak RSS of that child in MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit("%s failed: %s" % (argv[:3], p.stderr.decode()))
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: each tool runs in a fresh
    # process via wait4, so measure each tool's own peak with a dedicated wrapper instead.
    return dt, p

def peak(argv):
    """Peak RSS (MiB) of one child, from wait4's rusage."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execv(argv[0], argv)
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        sys.exit("%s failed" % argv[:3])
    return usage.ru_maxrss / 1024.0

subprocess.run([outpost, "keys", "generate", "--dir", os.path.join(work, "keys")],
               check=True, stdout=subprocess.DEVNULL)
subprocess.run(["cat", model], check=True, stdout=subprocess.DEVNULL)  # warm the cache
bundle = os.path.join(work, "big.bundle")
# The file is random bytes, not a model: its descriptor is taken as written (--no-model-check),
# so the run measures the streaming alone.
create = [outpost, "bundle", "create", "--models", models, "--keys", os.path.join(work, "keys"),
          "--version", "1", "--site", "bench", "--no-model-check", "-o", bundle]
verify = [outpost, "bundle", "verify", bundle, "--trusted-root",
          os.path.join(work, "keys", "root.json"), "--site", "bench"]
sha = ["/usr/bin/sha256sum", model]
rows = {}
for name, argv in (("sha256sum", sha), ("create", create), ("verify", verify)):
    best = None
    for _ in range(3):
        dt, _p = run(argv)
        best = dt if best is None else min(best, dt)
    rows[name] = (best, peak(argv))
mib = size_mib
print("bundle bench: one %d MiB model file (best of 3; page cache warm)" % mib)
for name in ("sha256sum", "create", "verify"):
    dt, rss = rows[name]
    print("  %-9s %7.2f s %8.1f MiB/s  peak RSS %6.1f MiB" % (name, dt, mib / dt, rss))
base = rows["sha256sum"][0]
print("  create/sha256sum throughput: %.2fx (create reads the file twice: hash, then copy)" %
      (base / rows["create"][0]))
print("  verify/sha256sum throughput: %.2fx (verify also writes and fsyncs the staged copy)" %
      (base / rows["verify"][0]))
PY
