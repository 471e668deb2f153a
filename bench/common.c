/* Shared benchmark helpers (see common.h). */
#define _GNU_SOURCE
#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../support/stats.h"
#include "../support/vcpus.h"

static void die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- threads ------------------------------------------------------------- */

void bench_pin_setup(void)
{
    static int pinned;
    if (!pinned++)
        vcpus_pin_threads();         /* threads on fixed cores: vcpus.h says why */
}

double bench_run_threads(int nthreads, void (*fn)(int cpu, void *arg), void *arg)
{
    bench_pin_setup();
    int cpu;
    double secs = vcpus_run(0, nthreads, fn, arg);
    if (vcpus_broken(&cpu)) {
        fprintf(stderr, "bench: cpu %d returned with interrupts pushed off\n", cpu);
        exit(1);
    }
    return secs;
}

/* ---- statistics ---------------------------------------------------------- */

static int cmp_ul(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return (x > y) - (x < y);
}

double bench_median(const double *v, int n)
{
    if (n <= 0)
        return 0;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s)
        die("malloc");
    memcpy(s, v, (size_t)n * sizeof *s);
    double m = stats_median(s, n);
    free(s);
    return m;
}

unsigned long bench_median_ul(const unsigned long *v, int n)
{
    if (n <= 0)
        return 0;
    unsigned long *s = malloc((size_t)n * sizeof *s);
    if (!s)
        die("malloc");
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_ul);
    unsigned long m = n % 2 ? s[n / 2] : s[n / 2 - 1] / 2 + s[n / 2] / 2;
    free(s);
    return m;
}

/* ---- configuration ------------------------------------------------------- */

long bench_env_int(const char *name, long def)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return def;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0) {
        fprintf(stderr, "bench: ignoring %s=%s (want a positive integer); using %ld\n",
                name, s, def);
        return def;
    }
    return v;
}

/* ---- memory regions ------------------------------------------------------ */

void *bench_map(size_t bytes, int prefault)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    if (prefault) {
        long pg = sysconf(_SC_PAGESIZE);
        if (pg <= 0)
            pg = 4096;
        for (size_t off = 0; off < bytes; off += (size_t)pg)
            ((volatile char *)p)[off] = 0;
    }
    return p;
}

void bench_unmap(void *p, size_t bytes)
{
    if (p && munmap(p, bytes))
        die("munmap");
}

/* ---- tables -------------------------------------------------------------- */

#define CELL 64

struct bench_table {
    int ncols;
    int ncells;                 /* cells filled, header excluded */
    int cap;
    char (*cells)[CELL];        /* header row first, then data rows */
};

struct bench_table *bench_table_new(int ncols, ...)
{
    if (ncols < 1 || ncols > BENCH_TABLE_MAX_COLS) {
        fprintf(stderr, "bench: bench_table_new: bad column count %d\n", ncols);
        exit(1);
    }
    struct bench_table *t = calloc(1, sizeof *t);
    if (!t)
        die("calloc");
    t->ncols = ncols;
    t->cap = ncols * 8;
    t->cells = calloc((size_t)t->cap, CELL);
    if (!t->cells)
        die("calloc");
    va_list ap;
    va_start(ap, ncols);
    for (int i = 0; i < ncols; i++)
        snprintf(t->cells[i], CELL, "%s", va_arg(ap, const char *));
    va_end(ap);
    return t;
}

void bench_table_cell(struct bench_table *t, const char *fmt, ...)
{
    int at = t->ncols + t->ncells;
    if (at >= t->cap) {
        t->cap *= 2;
        t->cells = realloc(t->cells, (size_t)t->cap * CELL);
        if (!t->cells)
            die("realloc");
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->cells[at], CELL, fmt, ap);
    va_end(ap);
    t->ncells++;
}

void bench_table_print(const struct bench_table *t, FILE *out)
{
    int rows = 1 + (t->ncells + t->ncols - 1) / t->ncols;
    int width[BENCH_TABLE_MAX_COLS] = {0};
    int total = t->ncols + t->ncells;
    for (int i = 0; i < total; i++) {
        int w = (int)strlen(t->cells[i]);
        if (w > width[i % t->ncols])
            width[i % t->ncols] = w;
    }
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            int i = r * t->ncols + c;
            const char *s = i < total ? t->cells[i] : "";
            if (c == 0)
                fprintf(out, "%-*s", width[c], s);
            else
                fprintf(out, "  %*s", width[c], s);
        }
        fputc('\n', out);
        if (r == 0) {
            int line = 0;
            for (int c = 0; c < t->ncols; c++)
                line += width[c] + (c ? 2 : 0);
            for (int k = 0; k < line; k++)
                fputc('-', out);
            fputc('\n', out);
        }
    }
}

void bench_table_free(struct bench_table *t)
{
    if (t) {
        free(t->cells);
        free(t);
    }
}

/* ---- results folder ------------------------------------------------------ */

const char *bench_results_dir(void)
{
    const char *d = getenv("BENCH_RESULTS");
    return d && *d ? d : NULL;
}

/* mkdir -p; 0 or -1 with errno. */
static int make_dirs(const char *path)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
        return errno = ENAMETOOLONG, -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0777) && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0777) && errno != EEXIST ? -1 : 0;
}

FILE *bench_results_open(const char *name)
{
    const char *dir = bench_results_dir();
    if (!dir)
        return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (make_dirs(dir) != 0)
        fprintf(stderr, "bench: mkdir -p %s: %s\n", dir, strerror(errno));
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "bench: cannot write %s: %s (table on stdout only)\n", path,
                strerror(errno));
    return f;
}

/* ---- reporting ----------------------------------------------------------- */

void bench_print_machine(FILE *out)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
#if defined(__clang__)
    const char *cc = "clang " __clang_version__;
#elif defined(__GNUC__)
    const char *cc = "gcc " __VERSION__;
#else
    const char *cc = "unknown compiler";
#endif
#ifdef __OPTIMIZE__
    const char *opt = "optimised";
#else
    const char *opt = "NOT optimised";
#endif
    double load[1] = { -1 };
    if (getloadavg(load, 1) != 1)
        load[0] = -1;
    fprintf(out, "machine: %ld online cores; %s, %s build; load %.2f, %d other tasks runnable\n",
            cores, cc, opt, load[0], bench_others_running());
}

int bench_others_running(void)
{
    /* Fourth field of /proc/loadavg: "runnable/total"; runnable counts us. */
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return -1;
    double a, b, c;
    int running = -1, total;
    if (fscanf(f, "%lf %lf %lf %d/%d", &a, &b, &c, &running, &total) != 5)
        running = -1;
    fclose(f);
    return running < 1 ? -1 : running - 1;
}

int bench_target(FILE *out, const char *what, double measured, double want)
{
    int met = measured >= want;
    fprintf(out, "target: %s: measured %.2f (want >= %.2f): %s\n",
            what, measured, want, met ? "met" : "NOT met");
    return met;
}

/* ---- instruction counts ---------------------------------------------------- */

extern char **environ;

const char *bench_valgrind(void)
{
    const char *names[] = { "BENCH_VALGRIND", "KALLOC_BENCH_VALGRIND" };
    const char *vg = "/usr/bin/valgrind";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) {
            vg = v;
            break;
        }
    }
    return access(vg, X_OK) == 0 ? vg : NULL;
}

double bench_callgrind_ir(const char *fn, char *const argv[], const char *tmpdir)
{
    const char *vg = bench_valgrind();
    if (!vg)
        return NAN;
    static unsigned seq;
    char out[512], outarg[600], toggle[160];
    snprintf(out, sizeof out, "%s/callgrind.%ld.%u", tmpdir, (long)getpid(), seq++);
    snprintf(outarg, sizeof outarg, "--callgrind-out-file=%s", out);
    snprintf(toggle, sizeof toggle, "--toggle-collect=%s", fn);
    char *args[64] = { (char *)vg, "--tool=callgrind", "--collect-atstart=no", toggle, outarg };
    int n = 5;
    for (int i = 0; argv[i] && n < 63; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int st = -1;
    int rc = posix_spawn(&pid, vg, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        unlink(out);
        return NAN;
    }
    FILE *f = fopen(out, "r");
    if (!f)
        return NAN;
    char line[8192];
    double ir = NAN;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "totals:", 7) == 0)
            ir = strtod(line + 7, NULL);
    fclose(f);
    unlink(out);
    return ir;
}
