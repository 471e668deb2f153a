/*
 * bench_kalloc: kalloc/kfree throughput of smpmem against the allocators
 * people use, and instructions per small alloc+free pair.
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
 * Environment (defaults in brackets):
 *   KALLOC_BENCH_ROUNDS     rounds, >= 1 [BENCH_ROUNDS, else 5]
 *   KALLOC_BENCH_OPS        allocator calls per thread [2000000]
 *   KALLOC_BENCH_THREADS    comma list [1,2,8]
 *   KALLOC_BENCH_WORKLOADS  comma list of small,mixed,remote [all]
 *   KALLOC_BENCH_ALLOCS     comma list [smpmem,gslab,glibc,jemalloc,mimalloc,tcmalloc,tbb]
 *   KALLOC_BENCH_SEED       base seed; round r uses seed + r [1]
 *   KALLOC_BENCH_LIVE       working-set slots per thread (small, mixed) [1024]
 *   KALLOC_BENCH_IPAIRS     pairs for the callgrind count, 0 to skip [100000]
 *   KALLOC_BENCH_IALLOCS    allocators counted with callgrind [smpmem,mimalloc]
 *   KALLOC_BENCH_RAW        1: also print every run's figure as it finishes
 * Progress goes to stderr only when it is a terminal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_ITEMS 16
#define MAX_ROUNDS 101

struct list {
    int n;
    char item[MAX_ITEMS][32];
};

static const char *peers[] = {"glibc", "jemalloc", "mimalloc", "tcmalloc", "tbb"};
static char bindir[4096];
static int failures;              /* workload runs that did not finish */

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

/* Run argv with stdout into buf (or discarded when buf is NULL) and stderr
 * passed through (or discarded).  Returns the exit status, -1 on failure. */
static int run(char *const argv[], char *buf, size_t cap, int quiet)
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
    pid_t pid;
    int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (err != 0) {
        close(fd[0]);
        return -1;
    }
    size_t len = 0;
    char sink[4096];
    for (;;) {
        char *at = buf && len + 1 < cap ? buf + len : sink;
        size_t room = buf && len + 1 < cap ? cap - 1 - len : sizeof sink;
        ssize_t got = read(fd[0], at, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (at != sink)
            len += (size_t)got;
    }
    if (buf)
        buf[len] = 0;
    close(fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static double run_workload(const char *alloc, const char *wl, int threads,
                           unsigned long ops, unsigned long seed)
{
    char bin[4200], t[16], o[32], s[32], out[512];
    snprintf(bin, sizeof bin, "%s/kalloc_%s", bindir, alloc);
    snprintf(t, sizeof t, "%d", threads);
    snprintf(o, sizeof o, "%lu", ops);
    snprintf(s, sizeof s, "%lu", seed);
    char *argv[] = {bin, "run", (char *)wl, t, o, s, NULL};
    int rc = run(argv, out, sizeof out, 0);
    const char *m = strstr(out, " mops ");
    if (rc != 0 || !m) {
        fprintf(stderr, "bench_kalloc: %s %s %d threads seed %lu failed (status %d)\n",
                alloc, wl, threads, seed, rc);
        failures++;
        return NAN;
    }
    return strtod(m + 6, NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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
    qsort(s, (size_t)k, sizeof s[0], cmp_double);
    double m = k % 2 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
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

/* Instructions callgrind counts inside kalloc_pair_loop for n pairs. */
static double callgrind_ir(const char *alloc, unsigned long n, int live, const char *dir)
{
    char bin[4200], out[4200], outarg[4300], num[32], nlive[16], buf[8192];
    snprintf(bin, sizeof bin, "%s/kalloc_%s", bindir, alloc);
    snprintf(out, sizeof out, "%s/callgrind.%s.%lu", dir, alloc, n);
    snprintf(outarg, sizeof outarg, "--callgrind-out-file=%s", out);
    snprintf(num, sizeof num, "%lu", n);
    snprintf(nlive, sizeof nlive, "%d", live);
    char *argv[] = {"/usr/bin/valgrind", "--tool=callgrind", "--collect-atstart=no",
                    "--toggle-collect=kalloc_pair_loop", outarg, bin, "pairs", num, nlive, NULL};
    const char *vg = getenv("KALLOC_BENCH_VALGRIND");
    if (vg && *vg)
        argv[0] = (char *)vg;
    if (run(argv, NULL, 0, 1) != 0)
        return NAN;
    FILE *f = fopen(out, "r");
    if (!f)
        return NAN;
    double ir = NAN;
    while (fgets(buf, sizeof buf, f))
        if (strncmp(buf, "totals:", 7) == 0)
            ir = strtod(buf + 7, NULL);
    fclose(f);
    unlink(out);
    return ir;
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
    split(env_or("KALLOC_BENCH_WORKLOADS", "small,mixed,remote"), &wls);
    split(env_or("KALLOC_BENCH_THREADS", "1,2,8"), &thr);
    split(env_or("KALLOC_BENCH_ALLOCS", "smpmem,gslab,glibc,jemalloc,mimalloc,tcmalloc,tbb"), &allocs);
    split(env_or("KALLOC_BENCH_IALLOCS", "smpmem,mimalloc"), &ialloc);
    int rounds = atoi(env_or("KALLOC_BENCH_ROUNDS", env_or("BENCH_ROUNDS", "5")));
    unsigned long ops = strtoul(env_or("KALLOC_BENCH_OPS", "2000000"), NULL, 0);
    unsigned long seed = strtoul(env_or("KALLOC_BENCH_SEED", "1"), NULL, 0);
    unsigned long ipairs = strtoul(env_or("KALLOC_BENCH_IPAIRS", "100000"), NULL, 0);
    if (rounds < 1 || rounds > MAX_ROUNDS || ops == 0) {
        fprintf(stderr, "bench_kalloc: bad KALLOC_BENCH_ROUNDS or KALLOC_BENCH_OPS\n");
        return 1;
    }

    /* Drop allocators whose binary is missing, loudly. */
    for (int a = 0; a < allocs.n; a++) {
        char bin[4200];
        snprintf(bin, sizeof bin, "%s/kalloc_%s", bindir, allocs.item[a]);
        if (access(bin, X_OK) != 0) {
            fprintf(stderr, "bench_kalloc: %s missing (make benches builds it); skipped\n", bin);
            memmove(&allocs.item[a], &allocs.item[a + 1], sizeof allocs.item[0] * (size_t)(allocs.n - a - 1));
            allocs.n--;
            a--;
        }
    }

    static double mops[MAX_ITEMS][MAX_ITEMS][MAX_ITEMS][MAX_ROUNDS];
    printf("kalloc benchmark: %d rounds x %d workloads x %d thread counts x %d allocators, "
           "%lu calls per thread, seed %lu, %ld online CPUs\n", rounds, wls.n, thr.n,
           allocs.n, ops, seed, sysconf(_SC_NPROCESSORS_ONLN));
    print_load("at start");
    fflush(stdout);
    int raw = atoi(env_or("KALLOC_BENCH_RAW", "0")) > 0, tty = isatty(2);
    for (int r = 0; r < rounds; r++)
        for (int w = 0; w < wls.n; w++)
            for (int t = 0; t < thr.n; t++)
                for (int a = 0; a < allocs.n; a++) {
                    if (tty)
                        fprintf(stderr, "\rround %d/%d  %-6s %2s threads  %-10s", r + 1,
                                rounds, wls.item[w], thr.item[t], allocs.item[a]);
                    double x = run_workload(allocs.item[a], wls.item[w], atoi(thr.item[t]),
                                            ops, seed + (unsigned long)r);
                    mops[w][t][a][r] = x;
                    if (raw)
                        printf("raw round %d %s %s threads %s: %.2f Mops/s\n", r + 1,
                               wls.item[w], thr.item[t], allocs.item[a], x);
                }
    if (tty)
        fprintf(stderr, "\r%60s\r", "");

    print_load("at end");
    for (int w = 0; w < wls.n; w++) {
        printf("\nworkload %s: Mops/s (kalloc+kfree calls per second, all threads), "
               "median of %d interleaved rounds\n", wls.item[w], rounds);
        printf("%-18s", "allocator");
        for (int t = 0; t < thr.n; t++)
            printf("  %7s thr", thr.item[t]);
        printf("\n");
        double med[MAX_ITEMS][MAX_ITEMS], worst = 0;
        const char *worst_a = "", *worst_t = "";
        for (int a = 0; a < allocs.n; a++) {
            printf("%-18s", allocs.item[a]);
            for (int t = 0; t < thr.n; t++) {
                double spread;
                med[a][t] = median(mops[w][t][a], rounds, &spread);
                printf("  %11.2f", med[a][t]);
                if (spread > worst) {
                    worst = spread;
                    worst_a = allocs.item[a];
                    worst_t = thr.item[t];
                }
            }
            printf("\n");
        }
        int self = -1;
        for (int a = 0; a < allocs.n; a++)
            if (strcmp(allocs.item[a], "smpmem") == 0)
                self = a;
        printf("%-18s", "best peer");
        int best[MAX_ITEMS];
        for (int t = 0; t < thr.n; t++) {
            best[t] = -1;
            for (int a = 0; a < allocs.n; a++)
                if (is_peer(allocs.item[a]) && !isnan(med[a][t]) &&
                    (best[t] < 0 || med[a][t] > med[best[t]][t]))
                    best[t] = a;
            printf("  %11s", best[t] >= 0 ? allocs.item[best[t]] : "-");
        }
        printf("\n%-18s", "smpmem / best peer");
        for (int t = 0; t < thr.n; t++) {
            if (self >= 0 && best[t] >= 0 && !isnan(med[self][t]))
                printf("  %10.2fx", med[self][t] / med[best[t]][t]);
            else
                printf("  %11s", "-");
        }
        printf("\n");
        if (worst > 0)
            printf("(largest spread (max-min)/median: %.0f%%, %s at %s threads)\n",
                   worst * 100, worst_a, worst_t);
    }

    if (ipairs > 0) {
        char dir[] = "/tmp/bench_kalloc.XXXXXX";
        if (access(env_or("KALLOC_BENCH_VALGRIND", "/usr/bin/valgrind"), X_OK) != 0 || !mkdtemp(dir)) {
            printf("\ninstructions per pair: valgrind not available, skipped\n");
            return failures ? 1 : 0;
        }
        unsigned long n1 = ipairs / 10 + 1, n2 = n1 + ipairs;
        printf("\ninstructions per alloc(64)+free pair: callgrind Ir inside kalloc_pair_loop,\n"
               "steady state (Ir(%lu pairs) - Ir(%lu pairs)) / %lu, ~10 of them the loop and stamp.\n"
               "'64 live': 64 blocks of 64 B held through the loop (the fast path);\n"
               "'0 live': the block's page/slab empties on every free (retire paths).\n",
               n2, n1, ipairs);
        printf("%-18s  %11s  %11s\n", "allocator", "64 live", "0 live");
        double per[MAX_ITEMS], per0[MAX_ITEMS];
        for (int a = 0; a < ialloc.n; a++) {
            per[a] = (callgrind_ir(ialloc.item[a], n2, 64, dir) -
                      callgrind_ir(ialloc.item[a], n1, 64, dir)) / (double)ipairs;
            per0[a] = (callgrind_ir(ialloc.item[a], n2, 0, dir) -
                       callgrind_ir(ialloc.item[a], n1, 0, dir)) / (double)ipairs;
            printf("%-18s  %11.1f  %11.1f\n", ialloc.item[a], per[a], per0[a]);
            fflush(stdout);
        }
        int s = -1, m = -1;
        for (int a = 0; a < ialloc.n; a++) {
            if (strcmp(ialloc.item[a], "smpmem") == 0) s = a;
            if (strcmp(ialloc.item[a], "mimalloc") == 0) m = a;
        }
        if (s >= 0 && m >= 0)
            printf("%-18s  %10.2fx  %10.2fx\n", "smpmem / mimalloc", per[s] / per[m],
                   per0[s] / per0[m]);
        rmdir(dir);
    }
    if (failures)
        printf("\n%d workload runs failed (see the messages above): "
               "their cells are medians of the other rounds or nan\n", failures);
    return failures ? 1 : 0;
}
