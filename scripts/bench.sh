#!/bin/sh
# make bench: build every bench/bench_*.c (gcc -O2, no sanitizers) and run
# each in turn; the output also goes to build/bench/results.txt.
# Benchmarks print figures and targets; they never fail on a time.  A
# benchmark that exits non-zero (a correctness check failed) makes this fail.
# Environment (passed through): BENCH_ROUNDS, BENCH_ITERS, ...
set -u
cd "$(dirname "$0")/.."
BUILD=build/bench-build
OUT=build/bench/results.txt
mkdir -p build/bench
scripts/ensure-tools.sh gcc || exit 1
make -s TOOLCHAIN=gcc BUILD="$BUILD" OPT=-O2 benches || exit 1
: > "$OUT"
status=0
for b in "$BUILD"/bench/bench_*; do
    [ -x "$b" ] || continue
    echo "### $(basename "$b")  ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))" | tee -a "$OUT"
    # Keep the exit status of the benchmark, not of tee.
    { "$b"; echo $? > build/bench/.rc; } 2>&1 | tee -a "$OUT"
    rc=$(cat build/bench/.rc); rm -f build/bench/.rc
    if [ "$rc" != 0 ]; then echo "FAILED: $(basename "$b") exited $rc" | tee -a "$OUT"; status=1; fi
    echo | tee -a "$OUT"
done
echo "results: $OUT"
exit $status
