# realprog.png from realprog.tsv (bench/realprog.sh): per program, each
# allocator's wall time and peak RSS relative to the best peer (1.0 = the
# best of glibc, jemalloc, mimalloc, tcmalloc; dashed lines at smpmem's
# targets, 1.1 for time and 1.2 for RSS).
if (!exists("dir")) dir = "build/bench/results"
f = sprintf("%s/realprog.tsv", dir)
set datafile separator "\t"
set terminal pngcairo size 1200,800 font ",10"
set output sprintf("%s/realprog.png", dir)
set multiplot layout 2,1
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right
set grid ytics
set xtics rotate by -20
allocs = "glibc smpmem jemalloc mimalloc tcmalloc"
set ylabel "wall time / best peer"
set title "Real programs and stress patterns: wall time (median), 1.0 = best peer"
set arrow 1 from graph 0, first 1.1 to graph 1, first 1.1 nohead dt 2 lc rgb "red"
plot for [a in allocs] sprintf("< awk -F '\t' '$2 == \"%s\"' %s", a, f) using 5:xtic(1) title a
unset arrow 1
set ylabel "peak RSS / best peer"
set title "Peak RSS (median), 1.0 = best peer"
set arrow 2 from graph 0, first 1.2 to graph 1, first 1.2 nohead dt 2 lc rgb "red"
plot for [a in allocs] sprintf("< awk -F '\t' '$2 == \"%s\"' %s", a, f) using 6:xtic(1) title a
unset multiplot
