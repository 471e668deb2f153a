/*
 * bench_kalloc: kalloc/kfree and page throughput of smpmem against the
 * allocators people use, peak RSS, and instructions per alloc+free pair.
 *
 * It runs the per-allocator workload binaries (bench/kalloc_workload.c, built
 * by bench/kalloc.mk into ../kalloc/kalloc_<name> next to this program's
 * directory), interleaved: in round r every allocator runs once, in order,
 * for each workload x thread count, all with the same seed, so drift of the
 * machine hits every allocator alike.  Each table cell is the median of the
 * rounds; "smpmem / best peer" divides by the best of glibc, jemalloc,
 * mimalloc, tcmalloc and tbb in the same invocation (gslab, the global-lock
 * baseline, is shown but is not a peer).  Never asserts a time; exits 1 if
 * a workload run failed (a stamp check found overlapping blocks, a crash).
 *
 * Peak RSS is each run's VmHWM, which the workload process reads from
 * /proc/self/status as its last act (ru_maxrss from wait4 where it cannot):
 * each allocator runs in its own process, so it is that allocator's peak.
 * It varies from run to run with where ASLR puts the libraries, because
 * the kernel maps a library's cached pages 64 KiB at a time around each
 * page touched: the same glibc run read 2372..2592 KiB.  The mixed runs
 * are short, so they are repeated for the RSS figures alone, three times
 * as many rounds as the timed ones, which narrows the interval the verdict
 * reads by about 1/sqrt(3).
 *
 * The noise floor: in every round smpmem runs a second time, as
 * "smpmem-again", after the peers of the cell.  The same binary with the
 * same seed, so its ratio to smpmem's first run (the "A/A" column) would be
 * 1.00 on a quiet machine; how far it strays is how far the host moved any
 * ratio in that run.  It is shown in the text tables, never a peer, and
 * left out of the TSV files and plots.
 *
 * With BENCH_RESULTS set (scripts/bench.sh), it also writes TSV tables there
 * (bench/plots.gp draws them):
 *   kalloc_<workload>.tsv  threads, then Mops/s per allocator (medians)
 *   ratio.tsv              per cell: smpmem and best peer Mops/s, the ratio
 *   rss.tsv                allocator, peak RSS MiB on mixed per thread count
 *   instructions.tsv       allocator, instructions per small and page pair
 *
 * Environment (defaults in brackets):
 *   KALLOC_BENCH_ROUNDS     rounds, >= 1 [BENCH_ROUNDS, else 15: with 7 the
 *                           by-round interval can only be min .. max]
 *   KALLOC_BENCH_OPS        allocator calls per thread [2000000]
 *   KALLOC_BENCH_THREADS    comma list [1,2,8]
 *   KALLOC_BENCH_WORKLOADS  comma list of pages,small,mixed,remote [all]
 *   KALLOC_BENCH_ALLOCS     comma list [smpmem,gslab,glibc,jemalloc,mimalloc,tcmalloc,tbb]
 *   KALLOC_BENCH_SEED       base seed; round r uses seed + r [1]
 *   KALLOC_BENCH_LIVE       working-set slots per thread (small, mixed) [1024]
 *   KALLOC_BENCH_IPAIRS     pairs for the callgrind count, 0 to skip [100000]
 *   KALLOC_BENCH_IALLOCS    allocators counted with callgrind [all of ALLOCS]
 *   KALLOC_BENCH_RAW        1: also print every run's figure as it finishes
 *   KALLOC_BENCH_AA         0: no smpmem-again runs [1]
 *   KALLOC_BENCH_RSS_ROUNDS rounds of peak RSS on mixed [3 x ROUNDS, at most
 *                           101]: after the timed rounds, the mixed runs
 *                           again for their peak RSS alone (below)
 *   KALLOC_BENCH_CONTROL    0: no small-workload control [1]
 * Progress goes to stderr only when it is a terminal.
 *
 * The control (small at 2 threads, on 2 or more cores): the same runs as
 * two one-thread processes at once, each on the core where thread k of a
 * 2-thread run is pinned, for smpmem and the cell's best peer, a 2-thread
 * run and its two processes back to back in each round.  A process shares
 * nothing with the other, so threads / processes is what running in one
 * address space costs each allocator (lines and pages both threads
 * touch), apart from the host: both are timed the same way, as the sum
 * of each thread's or process's own rate; and smpmem / peer in processes
 * is the comparison with that cost taken out.  Where smpmem and the peer
 * are at parity in the cell, these lines say whether the host or running
 * in one address space decided it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"
#include "../support/stats.h"

extern char **environ;

#define MAX_ITEMS 16
#define MAX_ROUNDS 101

struct list {
    int n;
    char item[MAX_ITEMS][32];
};

static const char *peers[] = {"glibc", "jemalloc", "mimalloc", "tcmalloc", "tbb"};
#define AGAIN "smpmem-again"      /* smpmem's second run of a cell (the A/A) */
static char bindir[4096];
static int failures;              /* workload runs that did not finish */
static char skipped[1024];        /* "\n  alloc workload: why" per skip */

static void split(const char *text, struct list *l)
{
    l->n = 0;
    while (*text && l->n < MAX_ITEMS) {
        size_t len = strcspn(text, ",");
        if (len > 0 && len < sizeof l->item[0]) {
            memcpy(l->item[l->n], text, len);
            l->item[l->n][len] = 0;
            l->n++;
        }
        text += len;
        if (*text == ',')
            text++;
    }
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static int is_peer(const char *name)
{
    for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++)
        if (strcmp(name, peers[i]) == 0)
            return 1;
    return 0;
}

/* The workload binary's allocator: smpmem-again is smpmem's. */
static const char *binary_of(const char *alloc)
{
    return strcmp(alloc, AGAIN) == 0 ? "smpmem" : alloc;
}

/* Start argv with stdout into a pipe, whose read end is returned (-1 on
 * failure), and stderr passed through (or discarded); *pid gets the child. */
static int run_start(char *const argv[], int quiet, pid_t *pid)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    if (quiet)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int err = posix_spawn(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (err != 0) {
        close(fd[0]);
        return -1;
    }
    return fd[0];
}

/* Read what run_start's child prints into buf (or discard it when buf is
 * NULL) and wait for it; *maxrss_kib (if not NULL) gets its peak resident
 * set.  Returns the exit status, -1 on failure. */
static int run_finish(pid_t pid, int fd, char *buf, size_t cap, long *maxrss_kib)
{
    size_t len = 0;
    char sink[4096];
    for (;;) {
        char *at = buf && len + 1 < cap ? buf + len : sink;
        size_t room = buf && len + 1 < cap ? cap - 1 - len : sizeof sink;
        ssize_t got = read(fd, at, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (at != sink)
            len += (size_t)got;
    }
    if (buf)
        buf[len] = 0;
    close(fd);
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR)
            return -1;
    if (maxrss_kib)
        *maxrss_kib = ru.ru_maxrss;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Run argv with stdout into buf (run_finish) and stderr passed through (or
 * discarded).  Returns the exit status, -1 on failure. */
static int run(char *const argv[], char *buf, size_t cap, int quiet, long *maxrss_kib)
{
    pid_t pid;
    int fd = run_start(argv, quiet, &pid);
    if (buf && cap)
        buf[0] = 0;
    return fd < 0 ? -1 : run_finish(pid, fd, buf, cap, maxrss_kib);
}

/* Mops/s of one run, NAN if it failed or the allocator skips the workload;
 * *rss_mib gets the run's peak RSS (NAN likewise), and *rate_sum (when not
 * NULL) the sum of the threads' own Mops/s, each over its own time. */
static double run_workload(const char *alloc, const char *wl, int threads, unsigned long ops,
                           unsigned long seed, double *rss_mib, double *rate_sum)
{
    char bin[4200], t[16], o[32], s[32], out[512];
    snprintf(bin, sizeof bin, "%s/kalloc_%s", bindir, binary_of(alloc));
    snprintf(t, sizeof t, "%d", threads);
    snprintf(o, sizeof o, "%lu", ops);
    snprintf(s, sizeof s, "%lu", seed);
    char *argv[] = {bin, "run", (char *)wl, t, o, s, NULL};
    long rss = 0;
    int rc = run(argv, out, sizeof out, 0, &rss);
    const char *m = strstr(out, " mops ");
    *rss_mib = NAN;
    if (rate_sum) {
        const char *rs = strstr(out, " rate_sum ");
        *rate_sum = rc == 0 && rs ? strtod(rs + 10, NULL) : NAN;
    }
    const char *why = strstr(out, " skipped: ");
    if (rc == 0 && why) {         /* the adapter says why; reported once */
        char note[256];
        snprintf(note, sizeof note, "\n  %s %s: %.*s", alloc, wl, (int)strcspn(why + 10, "\n"),
                 why + 10);
        if (!strstr(skipped, note) && strlen(skipped) + strlen(note) < sizeof skipped)
            strcat(skipped, note);
        return NAN;
    }
    if (rc != 0 || !m) {
        fprintf(stderr, "bench_kalloc: %s %s %d threads seed %lu failed (status %d)\n",
                alloc, wl, threads, seed, rc);
        failures++;
        return NAN;
    }
    /* The workload's own VmHWM where it reports one (kalloc_workload.c's
     * peak_rss_kib says why ru_maxrss is not exact); else ru_maxrss. */
    const char *h = strstr(out, " hwm_kib ");
    long hwm = h ? atol(h + 9) : -1;
    *rss_mib = (double)(hwm > 0 ? hwm : rss) / 1024.0;
    return strtod(m + 6, NULL);
}

/* The control's two processes: alloc's workload wl with one thread in
 * each of two processes at once, process k on core[k]; the sum of their
 * Mops/s, NAN if either failed.  Process k draws the PRNG stream thread k
 * of a 2-thread run draws (KALLOC_BENCH_STREAM): the same work.  A child
 * inherits this process's CPU set, so each is started with ours narrowed
 * to its core (the workload pins its thread to the first CPU it may use,
 * support/vcpus.c), and ours is given back after. */
static double run_two_processes(const char *alloc, const char *wl, unsigned long ops,
                                unsigned long seed, const int core[2])
{
    char bin[4200], o[32], s[32], stream[2][8];
    snprintf(bin, sizeof bin, "%s/kalloc_%s", bindir, binary_of(alloc));
    snprintf(o, sizeof o, "%lu", ops);
    snprintf(s, sizeof s, "%lu", seed);
    char *argv[] = {bin, "run", (char *)wl, "1", o, s, NULL};
    cpu_set_t mine;
    if (sched_getaffinity(0, sizeof mine, &mine) != 0)
        return NAN;
    pid_t pid[2];
    int fd[2];
    for (int k = 0; k < 2; k++) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(core[k], &one);
        snprintf(stream[k], sizeof stream[k], "%d", k);
        setenv("KALLOC_BENCH_STREAM", stream[k], 1);
        fd[k] = sched_setaffinity(0, sizeof one, &one) == 0 ? run_start(argv, 0, &pid[k]) : -1;
    }
    sched_setaffinity(0, sizeof mine, &mine);
    unsetenv("KALLOC_BENCH_STREAM");
    double sum = 0;
    for (int k = 0; k < 2; k++) {
        char out[512];
        int rc = fd[k] < 0 ? -1 : run_finish(pid[k], fd[k], out, sizeof out, NULL);
        const char *m = rc == 0 ? strstr(out, " mops ") : NULL;
        if (!m) {
            fprintf(stderr, "bench_kalloc: control %s %s process %d failed (status %d)\n", alloc, wl, k, rc);
            failures++;
            sum = NAN;
        } else {
            sum += strtod(m + 6, NULL);
        }
    }
    return sum;
}

/* Median of the finite values; NAN if none.  *spread = (max - min) / median. */
static double median(const double *v, int n, double *spread)
{
    double s[MAX_ROUNDS];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            s[k++] = v[i];
    *spread = 0;
    if (k == 0)
        return NAN;
    double m = stats_median(s, k);            /* sorts s */
    *spread = m > 0 ? (s[k - 1] - s[0]) / m : 0;
    return m;
}

/* Other work on the machine skews every figure: say how much there was. */
static void print_load(const char *when)
{
    char buf[128] = "";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            buf[0] = 0;
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
    printf("load average %s: %s\n", when, buf[0] ? buf : "unknown");
}

/* Instructions callgrind counts inside the pair loop of `mode` (pairs:
 * kalloc_pair_loop, pagepairs: kalloc_page_pair_loop) for n pairs. */
static double callgrind_ir(const char *alloc, const char *mode, unsigned long n, int live,
                           const char *dir)
{
    char bin[4200], num[32], nlive[16];
    snprintf(bin, sizeof bin, "%s/kalloc_%s", bindir, alloc);
    snprintf(num, sizeof num, "%lu", n);
    snprintf(nlive, sizeof nlive, "%d", live);
    char *argv[] = {bin, (char *)mode, num, nlive, NULL};
    return bench_callgrind_ir(strcmp(mode, "pagepairs") == 0 ? "kalloc_page_pair_loop"
                                                              : "kalloc_pair_loop", argv, dir);
}

/* Index of allocator name in l, -1 if absent. */
static int find(const struct list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->item[i], name) == 0)
            return i;
    return -1;
}

/* The best peer in v[0..allocs->n) (highest, or lowest when `low`),
 * ignoring NAN; -1 if none. */
static int best_peer(const struct list *allocs, const double *v, int low)
{
    int best = -1;
    for (int a = 0; a < allocs->n; a++)
        if (is_peer(allocs->item[a]) && !isnan(v[a]) &&
            (best < 0 || (low ? v[a] < v[best] : v[a] > v[best])))
            best = a;
    return best;
}

/* "first\t<item><suffix>\t..." and a newline (smpmem-again left out). */
static void tsv_header(FILE *f, const char *first, const struct list *l, const char *suffix)
{
    fputs(first, f);
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->item[i], AGAIN) != 0)
            fprintf(f, "\t%s%s", l->item[i], suffix);
    fputc('\n', f);
}

static void tsv_num(FILE *f, double v)
{
    if (isnan(v))
        fputs("\tnan", f);
    else
        fprintf(f, "\t%.3f", v);
}

static double mops[MAX_ITEMS][MAX_ITEMS][MAX_ITEMS][MAX_ROUNDS];   /* [w][t][a][r] */
static double rss[MAX_ITEMS][MAX_ITEMS][MAX_ITEMS][MAX_ROUNDS];
static double med[MAX_ITEMS][MAX_ITEMS][MAX_ITEMS];               /* [w][t][a] */

/* Throughput of one workload: the table on stdout, kalloc_<wl>.tsv. */
static void report_workload(const struct list *wls, int w, const struct list *thr,
                            const struct list *allocs, int rounds)
{
    printf("\nworkload %s: Mops/s (alloc+free calls per second, all threads), "
           "median of %d interleaved rounds\n", wls->item[w], rounds);
    printf("%-18s", "allocator");
    for (int t = 0; t < thr->n; t++)
        printf("  %7s thr", thr->item[t]);
    printf("\n");
    double worst = 0;
    const char *worst_a = "", *worst_t = "";
    for (int a = 0; a < allocs->n; a++) {
        printf("%-18s", allocs->item[a]);
        for (int t = 0; t < thr->n; t++) {
            double spread;
            med[w][t][a] = median(mops[w][t][a], rounds, &spread);
            printf("  %11.2f", med[w][t][a]);
            if (spread > worst) {
                worst = spread;
                worst_a = allocs->item[a];
                worst_t = thr->item[t];
            }
        }
        printf("\n");
    }
    int self = find(allocs, "smpmem");
    int best[MAX_ITEMS];
    printf("%-18s", "best peer");
    for (int t = 0; t < thr->n; t++) {
        best[t] = best_peer(allocs, med[w][t], 0);
        printf("  %11s", best[t] >= 0 ? allocs->item[best[t]] : "-");
    }
    printf("\n%-18s", "smpmem / best peer");
    for (int t = 0; t < thr->n; t++) {
        if (self >= 0 && best[t] >= 0 && !isnan(med[w][t][self]))
            printf("  %10.2fx", med[w][t][self] / med[w][t][best[t]]);
        else
            printf("  %11s", "-");
    }
    printf("\n");
    if (worst > 0)
        printf("(largest spread (max-min)/median: %.0f%%, %s at %s threads)\n",
               worst * 100, worst_a, worst_t);

    char name[64];
    snprintf(name, sizeof name, "kalloc_%s.tsv", wls->item[w]);
    FILE *f = bench_results_open(name);
    if (f) {
        tsv_header(f, "threads", allocs, "");
        for (int t = 0; t < thr->n; t++) {
            fputs(thr->item[t], f);
            for (int a = 0; a < allocs->n; a++)
                if (strcmp(allocs->item[a], AGAIN) != 0)
                    tsv_num(f, med[w][t][a]);
            fputc('\n', f);
        }
        fclose(f);
    }
}

/* The median over rounds of num[i] / den[i] (smpmem's figure over a
 * peer's in the same round, rounds where both ran): runs a few seconds
 * apart, so a drift of the host's speed that lasts longer than that
 * cancels, where the ratio of medians mixes rounds run in different
 * phases.  *lo .. *hi: the sign test's interval for it (support/stats.h),
 * *level its coverage; all NAN when no round has both. */
#define CI_LEVEL 0.90
static double paired_ratio(const double *num, const double *den, int rounds,
                           double *lo, double *hi, double *level)
{
    double r[MAX_ROUNDS];
    int n = 0;
    for (int i = 0; i < rounds; i++)
        if (!isnan(num[i]) && !isnan(den[i]) && den[i] > 0)
            r[n++] = num[i] / den[i];
    *lo = *hi = *level = NAN;
    return n ? stats_median_interval(r, n, CI_LEVEL, lo, hi, level) : NAN;
}

/* Every cell's ratio to the best peer in one table: the line to read first. */
static void report_ratios(const struct list *wls, const struct list *thr,
                          const struct list *allocs, int rounds)
{
    int self = find(allocs, "smpmem"), again = find(allocs, AGAIN);
    if (self < 0)
        return;
    FILE *f = bench_results_open("ratio.tsv");
    if (f)
        fputs("cell\tworkload\tthreads\tsmpmem_mops\tbest_peer\tbest_peer_mops\tratio"
              "\tby_round\tinterval_lo\tinterval_hi\tverdict\n", f);
    printf("\nsmpmem / best peer, every cell (Mops/s medians of this run; target >= 1.00x;\n"
           "by round: the median of each round's smpmem run over that round's best-peer run,\n"
           "  with a confidence interval for it (sign test, no assumption about the noise);\n"
           "verdict: above/below when that interval lies wholly above/below 1.00x, else parity;\n"
           "A/A: smpmem over smpmem-again, the same binary run after the peers: the noise floor)\n");
    printf("%-8s %7s  %11s  %-10s %11s  %7s  %8s  %-13s  %-7s %6s\n", "workload", "threads", "smpmem",
           "best peer", "its Mops/s", "ratio", "by round", "interval", "verdict", "A/A");
    double aa_lo = NAN, aa_hi = NAN, level_min = NAN;
    int above = 0, parity = 0, below = 0;
    for (int w = 0; w < wls->n; w++)
        for (int t = 0; t < thr->n; t++) {
            int b = best_peer(allocs, med[w][t], 0);
            double mine = med[w][t][self], peer = b >= 0 ? med[w][t][b] : NAN;
            double ratio = mine / peer;
            double lo = NAN, hi = NAN, level = NAN;
            double by_round = b >= 0 ? paired_ratio(mops[w][t][self], mops[w][t][b], rounds,
                                                    &lo, &hi, &level) : NAN;
            const char *verdict = isnan(lo) ? "-" : lo >= 1.0 ? "above" : hi < 1.0 ? "below" : "parity";
            if (!isnan(lo)) {
                above += lo >= 1.0;
                below += hi < 1.0;
                parity += lo < 1.0 && hi >= 1.0;
                level_min = isnan(level_min) || level < level_min ? level : level_min;
            }
            double aa = again >= 0 ? mine / med[w][t][again] : NAN;
            if (!isnan(aa)) {
                aa_lo = isnan(aa_lo) || aa < aa_lo ? aa : aa_lo;
                aa_hi = isnan(aa_hi) || aa > aa_hi ? aa : aa_hi;
            }
            char interval[32];
            snprintf(interval, sizeof interval, "%.2f .. %.2f", lo, hi);
            printf("%-8s %7s  %11.2f  %-10s %11.2f  %6.2fx  %7.2fx  %-13s  %-7s %5.2fx\n", wls->item[w],
                   thr->item[t], mine, b >= 0 ? allocs->item[b] : "-", peer, ratio, by_round,
                   interval, verdict, aa);
            if (f) {
                fprintf(f, "%s %s\t%s\t%s", wls->item[w], thr->item[t], wls->item[w], thr->item[t]);
                tsv_num(f, mine);
                fprintf(f, "\t%s", b >= 0 ? allocs->item[b] : "-");
                tsv_num(f, peer);
                tsv_num(f, ratio);
                tsv_num(f, by_round);
                tsv_num(f, lo);
                tsv_num(f, hi);
                fprintf(f, "\t%s\n", verdict);
            }
        }
    if (f)
        fclose(f);
    if (!isnan(aa_lo))
        printf("A/A across the cells: %.2fx .. %.2fx (1.00x on a quiet host; a ratio above "
               "within that much of 1.00x is inside this run's noise)\n", aa_lo, aa_hi);
    if (!isnan(level_min))
        printf("by round, at %.0f%% confidence or more: %d cells above 1.00x, %d at parity "
               "(1.00x inside the interval), %d below\n", 100 * level_min, above, parity, below);
}

/* The control (the header comment): small at 2 threads against two
 * one-thread processes, smpmem and the cell's best peer, `rounds` rounds,
 * each allocator's thread run and process pair back to back, who goes
 * first alternating. */
static void report_control(const struct list *wls, const struct list *thr,
                           const struct list *allocs, int rounds, unsigned long ops,
                           unsigned long seed)
{
    int w = find(wls, "small"), t = find(thr, "2"), self = find(allocs, "smpmem");
    int peer = w >= 0 && t >= 0 ? best_peer(allocs, med[w][t], 0) : -1;
    if (w < 0 || t < 0 || self < 0 || peer < 0 || atoi(env_or("KALLOC_BENCH_CONTROL", "1")) == 0)
        return;
    /* The cores threads 0 and 1 of a 2-thread run are pinned to
     * (support/vcpus.c: the first two this process may use). */
    int core[2], n = 0;
    cpu_set_t set;
    const char *pin = getenv("BENCH_PIN");
    if (!(pin && atoi(pin) == 0) && sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
            if (CPU_ISSET(c, &set))
                core[n++] = c;
    if (n < 2) {
        printf("\ncontrol (small, 2 threads against 2 processes): skipped, fewer than 2 cores to pin to\n");
        return;
    }
    /* Four times the calls of a timed run, so that a run takes long
     * enough for its cores' speeds to settle.  The thread runs are read
     * as the sum of each thread's own rate (rate_sum), as the processes
     * are: the cell's figure runs from the first thread's start to the
     * last one's end, which also charges skew between the threads and a
     * core slower than the other, and the processes would pay neither. */
    ops *= 4;
    const int who[2] = { self, peer };
    static double thr_run[2][MAX_ROUNDS], procs[2][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < 2; i++) {
            int k = (i + r) % 2;                  /* smpmem first in even rounds */
            const char *alloc = allocs->item[who[k]];
            double rss_unused;
            run_workload(alloc, "small", 2, ops, seed + (unsigned long)r, &rss_unused, &thr_run[k][r]);
            procs[k][r] = run_two_processes(alloc, "small", ops, seed + (unsigned long)r, core);
        }
    printf("\ncontrol: small at 2 threads against the same work as 2 processes of 1 thread, each\n"
           "on its thread's core (nothing shared between the cores), back to back, %d rounds of\n"
           "%lu calls per thread, each thread and process over its own time, summed;\n"
           "threads / processes is what running in one address space costs:\n",
           rounds, ops);
    for (int k = 0; k < 2; k++) {
        double lo, hi, level;
        double m = paired_ratio(thr_run[k], procs[k], rounds, &lo, &hi, &level);
        printf("  %-10s threads / processes, round by round: median %.2f (%.0f%% interval %.2f .. %.2f)\n",
               allocs->item[who[k]], m, 100 * level, lo, hi);
    }
    double lo, hi, level, m;
    m = paired_ratio(thr_run[0], thr_run[1], rounds, &lo, &hi, &level);
    printf("  smpmem / %s in 2 threads (the control's runs): median %.2f (%.0f%% interval %.2f .. %.2f)\n",
           allocs->item[peer], m, 100 * level, lo, hi);
    m = paired_ratio(procs[0], procs[1], rounds, &lo, &hi, &level);
    printf("  smpmem / %s in 2 processes (nothing shared): median %.2f (%.0f%% interval %.2f .. %.2f)\n",
           allocs->item[peer], m, 100 * level, lo, hi);
}

/* Peak RSS per allocator on the mixed workload: table and rss.tsv. */
static void report_rss(const struct list *wls, const struct list *thr,
                       const struct list *allocs, int rounds)
{
    int w = find(wls, "mixed"), self = find(allocs, "smpmem");
    if (w < 0)
        return;
    printf("\npeak RSS on mixed, MiB (each allocator's process, VmHWM; median of %d rounds)\n",
           rounds);
    printf("%-18s", "allocator");
    for (int t = 0; t < thr->n; t++)
        printf("  %7s thr", thr->item[t]);
    printf("\n");
    double m[MAX_ITEMS][MAX_ITEMS], col[MAX_ITEMS];   /* [t][a] */
    FILE *f = bench_results_open("rss.tsv");
    if (f)
        tsv_header(f, "allocator", thr, " thr");
    for (int a = 0; a < allocs->n; a++) {
        FILE *row = strcmp(allocs->item[a], AGAIN) != 0 ? f : NULL;   /* not in the TSV */
        printf("%-18s", allocs->item[a]);
        if (row)
            fputs(allocs->item[a], row);
        for (int t = 0; t < thr->n; t++) {
            double spread;
            m[t][a] = median(rss[w][t][a], rounds, &spread);
            printf("  %11.1f", m[t][a]);
            if (row)
                tsv_num(row, m[t][a]);
        }
        printf("\n");
        if (row)
            fputc('\n', row);
    }
    if (f)
        fclose(f);
    if (self < 0)
        return;
    printf("%-18s", "smpmem / lowest");
    int lowest[MAX_ITEMS];
    for (int t = 0; t < thr->n; t++) {
        for (int a = 0; a < allocs->n; a++)
            col[a] = m[t][a];
        int b = lowest[t] = best_peer(allocs, col, 1);
        if (b >= 0 && !isnan(m[t][self]))
            printf("  %10.2fx", m[t][self] / m[t][b]);
        else
            printf("  %11s", "-");
    }
    printf("   (lowest peer; target <= 1.10x)\n");
    /* The same round by round (both processes ran seconds apart), with the
     * sign test's interval for its median (support/stats.h) and a verdict
     * against the target: met when the whole interval is at or below it. */
    double by[MAX_ITEMS], lo[MAX_ITEMS], hi[MAX_ITEMS], cover = NAN;
    for (int t = 0; t < thr->n; t++) {
        double c = NAN;
        by[t] = lo[t] = hi[t] = NAN;
        if (lowest[t] >= 0)
            by[t] = paired_ratio(rss[w][t][self], rss[w][t][lowest[t]], rounds, &lo[t], &hi[t], &c);
        if (!isnan(c))
            cover = isnan(cover) || c < cover ? c : cover;
    }
    printf("%-18s", "  by round");
    for (int t = 0; t < thr->n; t++)
        printf("  %10.2fx", by[t]);
    printf("   (median of each round's ratio)\n%-18s", "  interval");
    for (int t = 0; t < thr->n; t++)
        printf("  %5.2f..%4.2f", lo[t], hi[t]);
    printf("   (%.0f%% confidence, sign test)\n%-18s", 100 * cover, "  verdict");
    for (int t = 0; t < thr->n; t++)
        printf("  %11s", isnan(lo[t]) ? "-" : hi[t] <= 1.10 ? "met" : lo[t] > 1.10 ? "not met" : "undecided");
    printf("   (met: the whole interval at or below 1.10x)\n");
    int again = find(allocs, AGAIN);
    if (again < 0)
        return;
    printf("%-18s", "A/A (smpmem/again)");
    for (int t = 0; t < thr->n; t++)
        printf("  %10.2fx", m[t][self] / m[t][again]);
    printf("   (the same binary twice: this run's noise in peak RSS)\n");
}

/* Instructions per pair with callgrind: table and instructions.tsv. */
static void report_instructions(const struct list *ialloc, unsigned long ipairs)
{
    char dir[] = "/tmp/bench_kalloc.XXXXXX";
    if (!bench_valgrind() || !mkdtemp(dir)) {
        printf("\ninstructions per pair: valgrind not available, skipped\n");
        return;
    }
    unsigned long n1 = ipairs / 10 + 1, n2 = n1 + ipairs;
    printf("\ninstructions per alloc+free pair: callgrind Ir inside the pair loop, steady\n"
           "state (Ir(%lu pairs) - Ir(%lu pairs)) / %lu, ~10 of them the loop and stamp.\n"
           "small: alloc(64)+free with 64 blocks held through the loop (the fast path);\n"
           "small, 0 live: the block's slab empties on every free (retire paths);\n"
           "page: one 4 KiB page (smpmem page_alloc(0), peers 4 KiB aligned), 64 held.\n",
           n2, n1, ipairs);
    printf("%-18s  %11s  %13s  %11s\n", "allocator", "small", "small, 0 live", "page");
    FILE *f = bench_results_open("instructions.tsv");
    if (f)
        fputs("allocator\tsmall\tsmall, 0 live\tpage\n", f);
    static const struct { const char *mode; int live; } kind[3] = {
        {"pairs", 64}, {"pairs", 0}, {"pagepairs", 64}};
    double per[3][MAX_ITEMS];
    for (int a = 0; a < ialloc->n; a++) {
        printf("%-18s", ialloc->item[a]);
        if (f)
            fputs(ialloc->item[a], f);
        for (int k = 0; k < 3; k++) {
            per[k][a] = (callgrind_ir(ialloc->item[a], kind[k].mode, n2, kind[k].live, dir) -
                         callgrind_ir(ialloc->item[a], kind[k].mode, n1, kind[k].live, dir)) /
                        (double)ipairs;
            printf("  %*.1f", k == 1 ? 13 : 11, per[k][a]);
            if (f)
                tsv_num(f, per[k][a]);
        }
        printf("\n");
        if (f)
            fputc('\n', f);
        fflush(stdout);
    }
    if (f)
        fclose(f);
    int self = find(ialloc, "smpmem");
    if (self >= 0) {
        printf("%-18s", "smpmem / fewest");
        for (int k = 0; k < 3; k++) {
            int b = best_peer(ialloc, per[k], 1);
            if (b >= 0)
                printf("  %*.2fx", k == 1 ? 12 : 10, per[k][self] / per[k][b]);
            else
                printf("  %*s", k == 1 ? 13 : 11, "-");
        }
        printf("   (fewest of the peers; targets: small <= 60, page <= 100)\n");
    }
    rmdir(dir);
}

int main(void)
{
    ssize_t len = readlink("/proc/self/exe", bindir, sizeof bindir - 1);
    if (len <= 0) {
        perror("bench_kalloc: /proc/self/exe");
        return 1;
    }
    bindir[len] = 0;
    char *slash = strrchr(bindir, '/');
    *slash = 0;                                   /* .../bench */
    slash = strrchr(bindir, '/');
    strcpy(slash ? slash + 1 : bindir, "kalloc"); /* .../kalloc */

    struct list wls, thr, allocs, ialloc;
    const char *all = "smpmem,gslab,glibc,jemalloc,mimalloc,tcmalloc,tbb";
    split(env_or("KALLOC_BENCH_WORKLOADS", "pages,small,mixed,remote"), &wls);
    split(env_or("KALLOC_BENCH_THREADS", "1,2,8"), &thr);
    split(env_or("KALLOC_BENCH_ALLOCS", all), &allocs);
    split(env_or("KALLOC_BENCH_IALLOCS", env_or("KALLOC_BENCH_ALLOCS", all)), &ialloc);
    int rounds = atoi(env_or("KALLOC_BENCH_ROUNDS", env_or("BENCH_ROUNDS", "15")));
    unsigned long ops = strtoul(env_or("KALLOC_BENCH_OPS", "2000000"), NULL, 0);
    unsigned long seed = strtoul(env_or("KALLOC_BENCH_SEED", "1"), NULL, 0);
    unsigned long ipairs = strtoul(env_or("KALLOC_BENCH_IPAIRS", "100000"), NULL, 0);
    if (rounds < 1 || rounds > MAX_ROUNDS || ops == 0) {
        fprintf(stderr, "bench_kalloc: bad KALLOC_BENCH_ROUNDS or KALLOC_BENCH_OPS\n");
        return 1;
    }
    int rss_rounds = (int)bench_env_int("KALLOC_BENCH_RSS_ROUNDS",
                                        3 * rounds < MAX_ROUNDS ? 3 * rounds : MAX_ROUNDS);
    if (rss_rounds < rounds || rss_rounds > MAX_ROUNDS) {
        fprintf(stderr, "bench_kalloc: KALLOC_BENCH_RSS_ROUNDS must be %d..%d\n", rounds, MAX_ROUNDS);
        return 1;
    }

    /* Drop allocators whose binary is missing, loudly. */
    for (struct list *l = &allocs; l; l = l == &allocs ? &ialloc : NULL)
        for (int a = 0; a < l->n; a++) {
            char bin[4200];
            snprintf(bin, sizeof bin, "%s/kalloc_%s", bindir, binary_of(l->item[a]));
            if (access(bin, X_OK) != 0) {
                if (l == &allocs)
                    fprintf(stderr, "bench_kalloc: %s missing (make benches builds it); "
                                    "skipped\n", bin);
                memmove(&l->item[a], &l->item[a + 1], sizeof l->item[0] * (size_t)(l->n - a - 1));
                l->n--;
                a--;
            }
        }

    /* Last in each cell's order, so its runs bracket the peers' with smpmem's. */
    if (find(&allocs, "smpmem") >= 0 && find(&allocs, AGAIN) < 0 && allocs.n < MAX_ITEMS &&
        atoi(env_or("KALLOC_BENCH_AA", "1")) != 0)
        strcpy(allocs.item[allocs.n++], AGAIN);

    printf("kalloc benchmark: %d rounds x %d workloads x %d thread counts x %d allocators, "
           "%lu calls per thread, seed %lu, %ld online CPUs\n", rounds, wls.n, thr.n,
           allocs.n, ops, seed, sysconf(_SC_NPROCESSORS_ONLN));
    print_load("at start");
    fflush(stdout);
    int raw = atoi(env_or("KALLOC_BENCH_RAW", "0")) > 0, tty = isatty(2);
    /* Rounds past `rounds` run only mixed, for its peak RSS alone. */
    for (int r = 0; r < rss_rounds; r++)
        for (int w = 0; w < wls.n; w++) {
            if (r >= rounds && strcmp(wls.item[w], "mixed") != 0)
                continue;
            for (int t = 0; t < thr.n; t++)
                for (int a = 0; a < allocs.n; a++) {
                    if (tty)
                        fprintf(stderr, "\rround %d/%d  %-6s %2s threads  %-10s", r + 1,
                                rss_rounds, wls.item[w], thr.item[t], allocs.item[a]);
                    double x = run_workload(allocs.item[a], wls.item[w], atoi(thr.item[t]),
                                            ops, seed + (unsigned long)r, &rss[w][t][a][r], NULL);
                    if (r < rounds)
                        mops[w][t][a][r] = x;
                    if (raw)
                        printf("raw round %d %s %s threads %s: %.2f Mops/s\n", r + 1,
                               wls.item[w], thr.item[t], allocs.item[a], x);
                }
        }
    if (tty)
        fprintf(stderr, "\r%60s\r", "");

    print_load("at end");
    for (int w = 0; w < wls.n; w++)
        report_workload(&wls, w, &thr, &allocs, rounds);
    report_ratios(&wls, &thr, &allocs, rounds);
    report_control(&wls, &thr, &allocs, rounds, ops, seed);
    report_rss(&wls, &thr, &allocs, rss_rounds);
    if (ipairs > 0)
        report_instructions(&ialloc, ipairs);
    if (skipped[0])
        printf("\nnot measured (nan above):%s\n", skipped);
    if (failures)
        printf("\n%d workload runs failed (see the messages above): "
               "their cells are medians of the other rounds or nan\n", failures);
    return failures ? 1 : 0;
}
