/* Shared benchmark helpers (see common.h). */
#define _GNU_SOURCE
#include "common.h"
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <smpmem/hosted.h>

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

struct run {
    pthread_barrier_t start;
    void (*fn)(int, void *);
    void *arg;
    double finish[BENCH_MAX_THREADS];
    int cpu[BENCH_MAX_THREADS];
};

struct worker { struct run *run; int cpu; };

static void *worker_main(void *p)
{
    struct worker *w = p;
    struct run *run = w->run;
    smp_hosted_bind_cpu(w->cpu);
    pthread_barrier_wait(&run->start);
    run->fn(w->cpu, run->arg);
    run->finish[w->cpu] = bench_now();
    if (smp_hosted_irq_depth() != 0) {
        fprintf(stderr, "bench: cpu %d returned with interrupts pushed off\n", w->cpu);
        exit(1);
    }
    return NULL;
}

double bench_run_threads(int nthreads, void (*fn)(int cpu, void *arg), void *arg)
{
    if (nthreads < 1 || nthreads > BENCH_MAX_THREADS) {
        fprintf(stderr, "bench: bench_run_threads: bad thread count %d\n", nthreads);
        exit(1);
    }
    static struct run run;   /* not reentrant, as documented */
    pthread_t th[BENCH_MAX_THREADS];
    struct worker w[BENCH_MAX_THREADS];
    run.fn = fn;
    run.arg = arg;
    if (pthread_barrier_init(&run.start, NULL, (unsigned)nthreads + 1))
        die("pthread_barrier_init");
    for (int i = 0; i < nthreads; i++) {
        w[i] = (struct worker){ &run, i };
        if ((errno = pthread_create(&th[i], NULL, worker_main, &w[i])))
            die("pthread_create");
    }
    pthread_barrier_wait(&run.start);
    double t0 = bench_now();
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&run.start);
    double end = t0;
    for (int i = 0; i < nthreads; i++)
        if (run.finish[i] > end)
            end = run.finish[i];
    return end - t0;
}

/* ---- statistics ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

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
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
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

/* ---- random numbers ------------------------------------------------------ */

struct bench_rng bench_rng_seed(uint64_t seed)
{
    struct bench_rng r = { seed ^ 0x6a09e667f3bcc909ULL };
    bench_rng_next(&r);
    return r;
}

uint64_t bench_rng_next(struct bench_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t bench_rng_range(struct bench_rng *r, uint64_t lo, uint64_t hi)
{
    uint64_t span = hi - lo + 1;
    return span ? lo + bench_rng_next(r) % span : bench_rng_next(r);
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
