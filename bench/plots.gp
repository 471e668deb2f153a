# Draws make bench's PNG plots from the TSV tables the benchmarks wrote.
#   gnuplot -e "dir='build/bench/results'" bench/plots.gp
# (scripts/bench.sh runs it.)  A table that is missing is skipped with a note
# on stderr; every plot is drawn from one run's medians, so bars side by side
# were measured side by side.
#
#   throughput.png   Mops/s per workload (pages, small, mixed, remote) by
#                    thread count, one bar per allocator  <- kalloc_*.tsv
#   ratio.png        smpmem / best peer in every cell, green >= 1.0 (the
#                    target), red below; the best peer named on the bar;
#                    a point and bar: the by-round median and its interval
#                    <- ratio.tsv
#   instructions.png callgrind instructions per alloc+free pair, dashed
#                    lines at the targets (60 small, 100 page)
#                    <- instructions.tsv
#   rss.png          peak RSS per allocator on mixed, by thread count
#                    <- rss.tsv
#   pages_baselines.png  smpmem pages vs xv6's one lock and the lab's
#                    per-CPU steal-32  <- pages_baselines.tsv
#   bcache_hits.png  buffer-cache hit throughput, smpmem vs xv6, by
#                    thread count, and the same hits in 1 and 2 separate
#                    processes (the control)  <- bcache_hits.tsv (when present)

if (!exists("dir")) dir = "build/bench/results"
have(f) = system(sprintf("test -r '%s/%s' && echo 1 || echo 0", dir, f)) eq "1"
path(f) = sprintf("%s/%s", dir, f)
# Columns of a table, from its header ("for [i=2:*]" would stop at a column of nan).
ncol(f) = int(system(sprintf("head -n 1 '%s/%s' | awk -F '\t' '{print NF}'", dir, f)))
skip(f) = system(sprintf("echo 'plots: %s missing, not drawn' >&2", f))

set datafile separator "\t"
set datafile missing "nan"
set terminal pngcairo size 1200,800 font "sans,10" noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top vertical
set grid ytics
set yrange [0:*]

# ---- throughput: one panel per workload ------------------------------------
if (have("kalloc_small.tsv")) {
    set output path("throughput.png")
    set multiplot layout 2,2 title "Throughput, Mops/s (alloc + free calls per second, all threads; medians of interleaved rounds)"
    do for [wl in "pages small mixed remote"] {
        f = sprintf("kalloc_%s.tsv", wl)
        set title wl
        set xlabel "threads"
        set ylabel "Mops/s"
        if (have(f)) {
            plot for [i=2:ncol(f)] path(f) using i:xtic(1) title columnheader(i)
        } else {
            set label 1 "not measured" at graph 0.4, 0.5
            plot 0 notitle lc rgb "white"
            unset label 1
        }
    }
    unset multiplot
} else { dummy = skip("kalloc_small.tsv") }

# ---- ratio to the best peer ------------------------------------------------
if (have("ratio.tsv")) {
    set output path("ratio.png")
    set terminal pngcairo size 1200,600 font "sans,10" noenhanced
    set title "smpmem / best peer (glibc, jemalloc, mimalloc, tcmalloc, tbb), every cell; target >= 1.0\nbars: ratio of medians; points: median of the per-round ratios, with its sign-test interval"
    set xlabel "workload, threads"
    set ylabel "ratio"
    set style data boxes
    set boxwidth 0.7
    set xtics rotate by -30
    unset key
    set yrange [0:*]
    plot path("ratio.tsv") using 0:7:($7 >= 1 ? 0x2e8b57 : 0xcd3333):xtic(1) with boxes lc rgb variable, \
         1 with lines lc rgb "black" dt 2 lw 2, \
         path("ratio.tsv") using 0:8:9:10 with yerrorbars lc rgb "black" pt 7 ps 0.6, \
         path("ratio.tsv") using 0:7:(sprintf("%.2fx\n%s", $7, stringcolumn(5))) with labels offset 0,1.5
    set xtics norotate
    set style data histograms
    set boxwidth 0.9
    set key outside right top vertical
} else { dummy = skip("ratio.tsv") }

set terminal pngcairo size 1000,600 font "sans,10" noenhanced

# ---- instructions per pair -------------------------------------------------
if (have("instructions.tsv")) {
    set output path("instructions.png")
    set title "Instructions per alloc + free pair (callgrind); targets: small <= 60, page <= 100"
    set xlabel "allocator"
    set ylabel "instructions"
    plot for [i=2:ncol("instructions.tsv")] path("instructions.tsv") using i:xtic(1) title columnheader(i), \
         60 with lines lc rgb "black" dt 2 title "small target", \
         100 with lines lc rgb "gray40" dt 3 title "page target"
} else { dummy = skip("instructions.tsv") }

# ---- peak RSS --------------------------------------------------------------
if (have("rss.tsv")) {
    set output path("rss.png")
    set title "Peak RSS on the mixed workload, MiB (each allocator's process, VmHWM)"
    set xlabel "allocator"
    set ylabel "MiB"
    plot for [i=2:ncol("rss.tsv")] path("rss.tsv") using i:xtic(1) title columnheader(i)
} else { dummy = skip("rss.tsv") }

# ---- pages against the xv6 and lab baselines -------------------------------
if (have("pages_baselines.tsv")) {
    set output path("pages_baselines.png")
    set title "Pages: smpmem vs xv6's single lock and the lock lab's per-CPU steal-32, Mops/s"
    set xlabel "threads"
    set ylabel "Mops/s"
    plot for [i=2:ncol("pages_baselines.tsv")] path("pages_baselines.tsv") using i:xtic(1) title columnheader(i)
} else { dummy = skip("pages_baselines.tsv") }

# ---- buffer-cache hits -----------------------------------------------------
if (have("bcache_hits.tsv")) {
    set output path("bcache_hits.png")
    set title "Buffer-cache hits: Mops/s by thread count (target: 2 threads >= 1.8x 1 thread)"
    set xlabel "threads"
    set ylabel "Mops/s"
    plot for [i=2:ncol("bcache_hits.tsv")] path("bcache_hits.tsv") using i:xtic(1) title columnheader(i)
} else { dummy = skip("bcache_hits.tsv") }
