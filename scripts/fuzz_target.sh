#!/usr/bin/env bash
# Runs one of Outpost's libFuzzer targets (CTest calls it; see cmake/OutpostHelpers.cmake).
#
#   fuzz_target.sh check   BINARY WORKDIR RUNS    REGRESSIONS [SEEDS...]
#   fuzz_target.sh explore BINARY WORKDIR SECONDS REGRESSIONS [SEEDS...]
#
# check (make test) gives the same result on every run of one commit:
#   1. every committed input that once failed (REGRESSIONS) and every seed (SEEDS folders) is
#      run once, on its own;
#   2. then RUNS inputs are fuzzed from a fixed seed (-seed=1), starting from those inputs in
#      a fresh corpus folder, so that nothing a previous run found changes this one, with
#      address-space randomisation off, so that the seed takes the same path every time.
# explore (make fuzz) looks for new failures: a random seed, a corpus kept in WORKDIR between
# runs, SECONDS of fuzzing (OUTPOST_FUZZ_SECONDS overrides). A failing input is written into
# REGRESSIONS, in the source tree, where it can be committed; from then on `check` replays it.
#
# Sanitizers stop at their first report: an UBSan report is a failure, never a line in a log.
set -euo pipefail

if [ $# -lt 5 ]; then
  echo "usage: $0 check|explore BINARY WORKDIR RUNS|SECONDS REGRESSIONS [SEEDS...]" >&2
  exit 2
fi
mode=$1 binary=$2 work=$3 amount=$4 regressions=$5
shift 5

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"

# The committed inputs: the regressions first, then the seeds (folders that exist).
inputs=()
for dir in "$regressions" "$@"; do
  if [ -d "$dir" ]; then inputs+=("$dir"); fi
done

common=(-rss_limit_mb=2048 -print_final_stats=1)
case "$mode" in
  check)
    # Address-space randomisation changes the values libFuzzer sees compared (pointers, and
    # the order of tables keyed by them), so one seed would take another path on each run:
    # the check runs with it off where the kernel allows (setarch -R, util-linux).
    fixed=()
    if setarch "$(uname -m)" -R true 2>/dev/null; then
      fixed=(setarch "$(uname -m)" -R)
    else
      echo "fuzz check: cannot turn address-space randomisation off; runs may differ" >&2
    fi
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts"
    files=()
    if [ ${#inputs[@]} -gt 0 ]; then
      mapfile -t files < <(find "${inputs[@]}" -type f | LC_ALL=C sort)
    fi
    if [ ${#files[@]} -gt 0 ]; then
      echo "fuzz check: replaying ${#files[@]} committed inputs"
      "${fixed[@]}" "$binary" "${common[@]}" -artifact_prefix="$work/artifacts/" "${files[@]}"
    fi
    echo "fuzz check: $amount runs from seed 1"
    # -reload=0: libFuzzer otherwise rereads its corpus folder every few seconds, which
    # makes the path depend on how fast the machine is.
    if ! "${fixed[@]}" "$binary" "${common[@]}" -seed=1 -runs="$amount" -reload=0 \
         -artifact_prefix="$work/artifacts/" "$work/corpus" "${inputs[@]}"; then
      echo "fuzz check: the failing input is in $work/artifacts/; copy it into $regressions" \
           "and commit it" >&2
      exit 1
    fi
    ;;
  explore)
    seconds=${OUTPOST_FUZZ_SECONDS:-$amount}
    mkdir -p "$work/corpus" "$regressions"
    echo "fuzz explore: $seconds s from a random seed; failing inputs go to $regressions"
    if ! "$binary" "${common[@]}" -max_total_time="$seconds" -artifact_prefix="$regressions/" \
         "$work/corpus" "${inputs[@]}"; then
      echo "fuzz explore: a failing input was saved in $regressions: fix the bug and commit" \
           "the input, which make test replays from then on" >&2
      exit 1
    fi
    # An empty folder of our own making is not worth leaving in the source tree.
    rmdir "$regressions" 2>/dev/null || true
    ;;
  *)
    echo "$0: unknown mode '$mode' (check or explore)" >&2
    exit 2
    ;;
esac
