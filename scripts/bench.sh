#!/bin/sh
# make bench / make bench-quick: build every bench/bench_*.c (gcc -O2, no
# sanitizers), run each in turn, and draw the plots.
#
#   scripts/bench.sh           full rounds (~2-3 minutes on 2 cores)
#   scripts/bench.sh --quick   the same programs with few rounds and short
#                              runs (under a minute): a development loop
#
# Everything goes to the results folder, $BENCH_RESULTS (default
# build/bench/results/), emptied first so no figure there is from an
# older run:
#   results.txt  everything the benchmarks printed (tables, ratios, targets)
#   *.tsv        the tables the plots are drawn from (see bench/plots.gp)
#   *.png        the plots (gnuplot; installed by ensure-tools.sh plot)
# Benchmarks print figures and targets; they never fail on a time.  A
# benchmark that exits non-zero (a correctness check failed) makes this
# fail.  Missing gnuplot does not: the plots are skipped with the reason.
# Environment passed through: BENCH_ROUNDS, BENCH_ITERS, BENCH_OPS,
# KALLOC_BENCH_* (see each bench/bench_*.c); --quick only sets the ones
# that are unset.
set -u
cd "$(dirname "$0")/.."
quick=0
case "${1:-}" in
--quick) quick=1 ;;
"") ;;
*) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
BUILD=build/bench-build
RESULTS=${BENCH_RESULTS:-build/bench/results}
export BENCH_RESULTS="$RESULTS"
OUT=$RESULTS/results.txt
if [ $quick = 1 ]; then
    export BENCH_ROUNDS="${BENCH_ROUNDS:-3}"             # every program: medians of 3
    export BENCH_ITERS="${BENCH_ITERS:-20000}"           # bench_pages
    export BENCH_OPS="${BENCH_OPS:-200000}"              # bench_bcache
    export KALLOC_BENCH_OPS="${KALLOC_BENCH_OPS:-200000}"
    export KALLOC_BENCH_RSS_ROUNDS="${KALLOC_BENCH_RSS_ROUNDS:-$BENCH_ROUNDS}"   # no extra RSS runs
    export KALLOC_BENCH_IPAIRS="${KALLOC_BENCH_IPAIRS:-20000}"
    export KALLOC_BENCH_IALLOCS="${KALLOC_BENCH_IALLOCS:-smpmem,mimalloc,tcmalloc}"
    export BENCH_IHITS="${BENCH_IHITS:-20000}"           # bench_bcache's callgrind count
fi

scripts/ensure-tools.sh gcc || exit 1
# Instruction counts need callgrind; without it they are skipped, not failed.
scripts/ensure-tools.sh valgrind || echo "bench: valgrind could not be installed: no instruction counts" >&2
make -s TOOLCHAIN=gcc BUILD="$BUILD" OPT=-O2 benches || exit 1
mkdir -p "$RESULTS" || exit 1
rm -f "$RESULTS"/*.tsv "$RESULTS"/*.png "$OUT"
start=$(date +%s)
[ $quick = 1 ] && echo "bench-quick: ${BENCH_ROUNDS} rounds, short runs: figures for a development loop, noisier than make bench" | tee -a "$OUT"
status=0
# The programs of bench/bench_*.c, not whatever else lies in the build folder
# (an experiment's binary left there would run, and could overwrite a table).
for src in bench/bench_*.c; do
    b="$BUILD/bench/$(basename "$src" .c)"
    [ -x "$b" ] || continue
    echo "### $(basename "$b")  ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))" | tee -a "$OUT"
    # Keep the exit status of the benchmark, not of tee.
    { "$b"; echo $? > "$RESULTS/.rc"; } 2>&1 | tee -a "$OUT"
    rc=$(cat "$RESULTS/.rc"); rm -f "$RESULTS/.rc"
    if [ "$rc" != 0 ]; then echo "FAILED: $(basename "$b") exited $rc" | tee -a "$OUT"; status=1; fi
    echo | tee -a "$OUT"
done

# Real programs under each allocator preloaded (bench/realprog.sh: realprog.tsv/.png).
[ -x bench/realprog.sh ] && { bench/realprog.sh $([ $quick = 1 ] && echo --quick) >"$RESULTS/realprog.txt" 2>&1 || status=1; tee -a "$OUT" <"$RESULTS/realprog.txt"; }

# Plots: never the reason the bench fails.
if ! command -v gnuplot >/dev/null 2>&1; then
    scripts/ensure-tools.sh plot >/dev/null 2>"$RESULTS/.why" || true
fi
if command -v gnuplot >/dev/null 2>&1; then
    if gnuplot -e "dir='$RESULTS'" bench/plots.gp 2>"$RESULTS/.why"; then
        grep -v 'no valid points' "$RESULTS/.why" >&2
    else
        echo "plots: gnuplot failed, no plots:" >&2; cat "$RESULTS/.why" >&2
    fi
else
    echo "plots: skipped, gnuplot is missing and could not be installed:" \
         "$(cat "$RESULTS/.why" 2>/dev/null)" >&2
fi
rm -f "$RESULTS/.why"

echo "results in $RESULTS/ ($(( $(date +%s) - start )) s):"
(cd "$RESULTS" && ls *.txt *.tsv *.png 2>/dev/null | tr '\n' ' '); echo
exit $status
