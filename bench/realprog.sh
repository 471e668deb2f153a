#!/bin/sh
# Real programs and the classic stress patterns with each allocator
# preloaded the same way (LD_PRELOAD): smpmem (build/libsmpmem-malloc.so),
# glibc (nothing preloaded), jemalloc, mimalloc, tcmalloc (Debian's
# libjemalloc2, libmimalloc2.0, libtcmalloc-minimal4).  Wall time and peak
# RSS (largest process of the run), medians of REALPROG_ROUNDS runs (3;
# --quick: 1 and smaller inputs); allocators interleaved within each round
# so a noisy neighbour hits them alike.  Every run must exit 0 and print
# what the glibc run printed, else the table says so (and this exits 1).
#   bench/realprog.sh [--quick]          (scripts/bench.sh runs it)
# Writes $BENCH_RESULTS/realprog.tsv (default build/bench/results) and
# realprog.png when gnuplot is there.  Never fails on a time.
set -u
cd "$(dirname "$0")/.."
quick=0; [ "${1:-}" = --quick ] && quick=1
RESULTS=${BENCH_RESULTS:-build/bench/results}
ROUNDS=${REALPROG_ROUNDS:-$([ $quick = 1 ] && echo 1 || echo 3)}
W=build/realprog
mkdir -p "$RESULTS" "$W"
make -s malloc-bench >/dev/null || exit 1
scripts/ensure-tools.sh peers >/dev/null 2>&1 || true
L=/usr/lib/x86_64-linux-gnu
so_of() { case $1 in
    glibc) echo "" ;; smpmem) echo "$PWD/build/libsmpmem-malloc.so" ;;
    jemalloc) echo "$L/libjemalloc.so.2" ;; mimalloc) echo "$L/libmimalloc.so.2" ;;
    tcmalloc) echo "$L/libtcmalloc_minimal.so.4" ;; esac; }
ALLOCS=""
for a in glibc smpmem jemalloc mimalloc tcmalloc; do
    so=$(so_of $a)
    if [ -z "$so" ] || [ -r "$so" ]; then ALLOCS="$ALLOCS $a"; else echo "realprog: $a missing ($so), skipped"; fi
done

py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
lines=$([ $quick = 1 ] && echo 300000 || echo 1000000)
input=$W/sort-input-$lines
[ -s "$input" ] || awk -v n="$lines" 'BEGIN { s = 12345; for (i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648; w = "";
    for (j = 0; j < 3 + s % 9; j++) w = w sprintf("%c", 97 + int(s / (j + 7)) % 26);
    print w, s % 100000, i } }' > "$input"
B=build/malloc/bench; T=build/malloc/tests
if [ $quick = 1 ]; then
    PROGS="python-dicts|$py tests/malloc/dicts.py 4 2 20000
sort|sort -k2,2n -k1,1 $input
gcc-compile|tests/malloc/compile.sh $W/gcc src/obj src/kalloc
threads|$T/threads 200 1 60
larson|$B/stress larson 8 10 30000
prodcons|$B/stress prodcons 2 1000000
falseshare|$B/stress falseshare 4 100000
passive|$B/stress passive 4 100000
bigbuf|$B/stress bigbuf 2 100 4"
else
    PROGS="python-dicts|$py tests/malloc/dicts.py 4 3 40000
sort|sort -k2,2n -k1,1 $input
gcc-compile|tests/malloc/compile.sh $W/gcc src/obj src/page src/kalloc
threads|$T/threads 300 1 100
larson|$B/stress larson 8 20 60000
prodcons|$B/stress prodcons 2 2000000
falseshare|$B/stress falseshare 4 300000
passive|$B/stress passive 4 300000
bigbuf|$B/stress bigbuf 2 200 4"
fi

raw=$W/raw.tsv; : > "$raw"; bad=0
echo "realprog: $ROUNDS round(s), allocators:$ALLOCS"
echo "$PROGS" | while IFS='|' read -r name cmd; do
    # The reference output, on glibc.
    $cmd > "$W/$name.ref" 2>/dev/null
    for r in $(seq "$ROUNDS"); do
        for a in $ALLOCS; do
            so=$(so_of $a)
            # Round 1 keeps the output: it must be glibc's.
            outf=""; [ "$r" = 1 ] && outf=$W/$name.$a.out
            set -- $(RUNSTAT_OUT=$outf RUNSTAT_PRELOAD=$so $B/runstat $cmd)
            if [ "$r" = 1 ] && { [ "$3" != 0 ] || ! cmp -s "$W/$name.ref" "$outf"; }; then
                echo "realprog: $name under $a: exit $3 or output differs from glibc" >&2
                echo "$name	$a	MISMATCH" >> "$raw"
            fi
            echo "$name	$a	$1	$2	$3" >> "$raw"
        done
    done
done

# Medians, ratios to the best peer, the table.
tsv=$RESULTS/realprog.tsv
awk -F '\t' -v allocs="$ALLOCS" '
function median(list,   n, v, i, j, t) { n = split(list, v, " ");
    for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
$3 == "MISMATCH" { mism[$1 "," $2] = 1; next }
{ if (!($1 in seen)) { seen[$1] = 1; order[++np] = $1 }
  w[$1 "," $2] = w[$1 "," $2] " " $3; m[$1 "," $2] = m[$1 "," $2] " " $4; if ($5 != 0) fail[$1 "," $2] = 1 }
END {
  na = split(allocs, A, " ")
  printf "program\tallocator\twall_s\tpeak_rss_mib\twall_vs_best_peer\trss_vs_best_peer\tstatus\n"
  for (p = 1; p <= np; p++) {
    bw = bm = 0
    for (i = 1; i <= na; i++) { k = order[p] "," A[i]; if (!(k in w)) continue
      W[k] = median(w[k]); M[k] = median(m[k]) / 1024
      if (A[i] != "smpmem") { if (!bw || W[k] < bw) bw = W[k]; if (!bm || M[k] < bm) bm = M[k] } }
    for (i = 1; i <= na; i++) { k = order[p] "," A[i]; if (!(k in w)) continue
      st = (k in fail) ? "CRASH" : (k in mism) ? "MISMATCH" : "ok"
      printf "%s\t%s\t%.3f\t%.1f\t%.2f\t%.2f\t%s\n", order[p], A[i], W[k], M[k], W[k] / bw, M[k] / bm, st } }
}' "$raw" > "$tsv"
column -t -s '	' "$tsv" 2>/dev/null || cat "$tsv"
# The targets (issue #11) are for the real programs; the stress patterns
# are reported beside them, to show where the design pays (larson) and where
# it does not (prodcons: every block crosses cores twice); bigbuf is the
# trap of giving every freed big block back to the kernel at once.
awk -F '\t' -v stress="larson prodcons falseshare passive bigbuf" '
    BEGIN { split(stress, s, " "); for (i in s) isstress[s[i]] = 1 }
    $2 == "smpmem" { k = ($1 in isstress) ? "s" : "r"; n[k]++; if ($5 <= 1.1) tw[k]++; if ($6 <= 1.2) tr[k]++
                     if ($7 != "ok") bad++ }
    END { printf "smpmem, real programs: wall within 1.1x of the best peer on %d of %d, peak RSS within 1.2x on %d of %d\n", tw["r"], n["r"], tr["r"], n["r"]
          printf "smpmem, stress patterns: wall within 1.1x on %d of %d, peak RSS within 1.2x on %d of %d; %d crashed or differed in all\n", tw["s"], n["s"], tr["s"], n["s"], bad }' "$tsv"
grep -q 'CRASH\|MISMATCH' "$tsv" && bad=1

if command -v gnuplot >/dev/null 2>&1; then
    gnuplot -e "dir='$RESULTS'" bench/realprog.gp 2>&1 | grep -v '^$' >&2 || true
fi
exit $bad
