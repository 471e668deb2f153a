/*
 * make demo: a short, visual tour of smpmem on 4 virtual CPUs.
 *
 * Threads stand for CPUs (each bound with smp_hosted_bind_cpu), all over one
 * 64 MiB region.  The demo is a list of sections run in order; each section
 * starts from a quiet allocator (nothing allocated) and must leave it that
 * way, with smp_pmm_check() == 0.  To add one, write
 *
 *     static int section_foo(void) { ...; return 0; }   // non-zero = failed
 *
 * and append { "foo", "what it shows", section_foo } to sections[] (before
 * "locks", which prints the lock statistics every earlier section gathered).
 *
 * Usage: demo [section...]   (no argument: every section, in order)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <smpmem/hosted.h>
#include <smpmem/pmm.h>
#include <smpmem/spinlock.h>

#define DEMO_REGION (64UL << 20)
#define DEMO_NCPU   4

/* ---- output helpers ------------------------------------------------------ */

static int use_colour;
static const char *c_bold = "", *c_bar = "", *c_dim = "", *c_ok = "", *c_bad = "", *c_off = "";

static void colour_init(void)
{
    use_colour = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    if (use_colour) {
        c_bold = "\033[1m";
        c_bar = "\033[32m";
        c_dim = "\033[2m";
        c_ok = "\033[1;32m";
        c_bad = "\033[1;31m";
        c_off = "\033[0m";
    }
}

static void heading(const char *fmt, const char *arg)
{
    printf("\n%s", c_bold);
    printf(fmt, arg);
    printf("%s\n", c_off);
}

/* "[#######     ]": value out of full, width characters; '>' marks a value
 * beyond the scale. */
static void bar(size_t value, size_t full, int width)
{
    int n = full ? (int)((value * (size_t)width + full / 2) / full) : 0;
    int over = n > width;
    if (over)
        n = width - 1;
    if (value && n == 0)
        n = 1;      /* something is there: show it */
    printf("[%s", c_bar);
    for (int i = 0; i < n; i++)
        putchar('#');
    if (over)
        putchar('>');
    printf("%s", c_off);
    for (int i = n + over; i < width; i++)
        putchar(' ');
    putchar(']');
}

static int verdict(const char *what, int ok)
{
    printf("  %-52s %s%s%s\n", what, ok ? c_ok : c_bad, ok ? "yes" : "NO", c_off);
    return ok ? 0 : 1;
}

/* ---- virtual CPUs ------------------------------------------------------- */

struct cpu_run {
    pthread_barrier_t go;
    void (*fn)(int cpu, void *arg);
    void *arg;
};
struct cpu_thread { struct cpu_run *run; int cpu; };

static void *cpu_main(void *p)
{
    struct cpu_thread *t = p;
    smp_hosted_bind_cpu(t->cpu);
    pthread_barrier_wait(&t->run->go);
    t->run->fn(t->cpu, t->run->arg);
    return NULL;
}

/* Run fn on CPUs first..last at once (one thread each, released together by
 * a barrier); return when all are done. */
static void on_cpus(int first, int last, void (*fn)(int cpu, void *arg), void *arg)
{
    struct cpu_run run = { .fn = fn, .arg = arg };
    pthread_t th[DEMO_NCPU];
    struct cpu_thread t[DEMO_NCPU];
    int n = last - first + 1;
    pthread_barrier_init(&run.go, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        t[i] = (struct cpu_thread){ &run, first + i };
        if (pthread_create(&th[i], NULL, cpu_main, &t[i])) {
            perror("demo: pthread_create");
            exit(1);
        }
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&run.go);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- page-cache views --------------------------------------------------- */

#define CACHE_FULL 512          /* bar scale for one CPU's cache, in pages */

static struct smp_pcp_stats stats_of(int cpu)
{
    struct smp_pcp_stats s;
    if (smp_pmm_cpu_stats(cpu, &s) != 0)
        memset(&s, 0, sizeof s);
    return s;
}

static size_t cached_total(void)
{
    size_t n = 0;
    for (int c = 0; c < DEMO_NCPU; c++)
        n += stats_of(c).cached_pages;
    return n;
}

/* One row per CPU: cache bar and counters, then the buddy's share. */
static void cpu_table(void)
{
    printf("  %scpu  cached pages (bar: 0..%d)              refills  drains  steals  stolen%s\n",
           c_dim, CACHE_FULL, c_off);
    for (int c = 0; c < DEMO_NCPU; c++) {
        struct smp_pcp_stats s = stats_of(c);
        printf("  %3d  ", c);
        bar(s.cached_pages, CACHE_FULL, 30);
        printf(" %5zu  %7lu  %6lu  %6lu  %6lu\n",
               s.cached_pages, s.refills, s.drains, s.steals, s.stolen);
    }
    size_t total = smp_pmm_total_pages(), free_pages = smp_pmm_free_pages();
    size_t cached = cached_total();
    printf("  free %zu of %zu pages: %zu in the buddy, %zu in CPU caches, %zu allocated\n",
           free_pages, total, free_pages - cached, cached, total - free_pages);
}

/* ---- section: pages ------------------------------------------------------ */

struct churn { int rounds; };

/* Phase 1 work: bursts of 1..64 pages, then one larger burst whose size
 * differs per CPU, so each cache ends up a different size. */
static void churn(int cpu, void *arg)
{
    const struct churn *ch = arg;
    static _Thread_local void *held[1024];
    uint64_t seed = 1234 + (uint64_t)cpu;
    for (int r = 0; r < ch->rounds; r++) {
        unsigned k = 1 + (unsigned)(rng_next(&seed) % 64);
        for (unsigned i = 0; i < k; i++)
            held[i] = smp_page_alloc(0);
        for (unsigned i = 0; i < k; i++)
            smp_page_free(held[i], 0);
    }
    unsigned last = 60 + 110 * (unsigned)cpu;
    for (unsigned i = 0; i < last; i++)
        held[i] = smp_page_alloc(0);
    for (unsigned i = 0; i < last; i++)
        smp_page_free(held[i], 0);
}

static void **hoard;            /* the pages CPU 0 takes in phase 2 */
static size_t nhoard;

/* Phase 3 work: CPUs 1..3 each free a third of CPU 0's pages. */
static void give_back(int cpu, void *arg)
{
    (void)arg;
    size_t share = (nhoard + DEMO_NCPU - 2) / (DEMO_NCPU - 1);
    size_t lo = (size_t)(cpu - 1) * share, hi = lo + share;
    if (hi > nhoard)
        hi = nhoard;
    for (size_t i = lo; i < hi; i++)
        smp_page_free(hoard[i], 0);
}

static void hoard_row(size_t held, const char *note)
{
    size_t cached = cached_total();
    size_t buddy = smp_pmm_free_pages() - cached;
    printf("  %6zu  %6zu ", held, buddy);
    for (int c = 0; c < DEMO_NCPU; c++) {
        size_t n = stats_of(c).cached_pages;
        putchar(' ');
        bar(n, CACHE_FULL, 8);
        printf("%4zu", n);
    }
    printf("  %6lu  %s\n", stats_of(0).steals, note);
}

static int section_pages(void)
{
    int bad = 0;
    size_t total = smp_pmm_total_pages();
    printf("  Every CPU keeps a cache of free pages under its own lock, so the usual\n"
           "  page_alloc/page_free touches nothing shared.  Caches refill from (and\n"
           "  drain to) the buddy allocator in batches, and a CPU whose cache and the\n"
           "  buddy are both dry steals a batch from another CPU.\n\n");

    printf("%s(1) All %d CPUs churn pages at once: alloc 1..64 pages, free them, repeat.%s\n",
           c_bold, DEMO_NCPU, c_off);
    struct churn ch = { .rounds = 3000 };
    on_cpus(0, DEMO_NCPU - 1, churn, &ch);
    cpu_table();
    printf("  -> each cache kept what its CPU last freed; the refills are the only\n"
           "     times a CPU took the shared zone lock.\n\n");

    printf("%s(2) CPU 0 alone allocates every page in the system.%s\n", c_bold, c_off);
    printf("  %s  held   buddy ", c_dim);
    for (int c = 0; c < DEMO_NCPU; c++)
        printf(" cpu%d cache    ", c);
    printf("  steals%s\n", c_off);
    hoard = malloc(total * sizeof *hoard);
    if (!hoard) {
        perror("demo: malloc");
        return 1;
    }
    nhoard = 0;
    unsigned long last_steals = stats_of(0).steals;
    size_t last_buddy = (size_t)-1;
    hoard_row(0, "start");
    for (;;) {
        void *p = smp_page_alloc(0);
        if (!p)
            break;
        *(volatile char *)p = 1;          /* really ours: touch it */
        hoard[nhoard++] = p;
        size_t buddy = smp_pmm_free_pages() - cached_total();
        unsigned long steals = stats_of(0).steals;
        if (nhoard == total / 2)
            hoard_row(nhoard, "half taken: own cache, then refills from the buddy");
        else if (buddy == 0 && last_buddy != 0 && steals == last_steals)
            hoard_row(nhoard, "buddy dry: next refill must steal");
        else if (steals != last_steals && (steals % 4 == 1))
            hoard_row(nhoard, "steal: half of a victim's cache (<= 64 pages)");
        last_steals = steals;
        last_buddy = buddy;
    }
    hoard_row(nhoard, "page_alloc returned NULL: nothing left anywhere");
    bad |= verdict("CPU 0 got every page (held == total)?", nhoard == total);
    bad |= verdict("free pages now 0?", smp_pmm_free_pages() == 0);
    printf("\n");

    printf("%s(3) CPUs 1-3 free CPU 0's pages (a third each), then pmm_drain().%s\n",
           c_bold, c_off);
    on_cpus(1, DEMO_NCPU - 1, give_back, NULL);
    cpu_table();
    printf("  -> frees land in the freeing CPU's cache; past its high watermark a\n"
           "     cache drains a batch to the buddy (drains column).\n");
    smp_pmm_drain();
    printf("  after pmm_drain():\n");
    cpu_table();
    free(hoard);
    hoard = NULL;
    bad |= verdict("free == total?", smp_pmm_free_pages() == total);
    bad |= verdict("pmm_check() == 0 (every page in exactly one place)?", smp_pmm_check() == 0);
    return bad;
}

/* ---- section: locks ------------------------------------------------------ */

static int section_locks(void)
{
    printf("  Every smpmem lock counts its acquisitions and its failed test-and-set\n"
           "  attempts (spins while another CPU held it), in xv6's statslock format.\n"
           "  kmem.cpuN are the per-CPU cache locks, kmem.zone the buddy's lock.\n\n");
    smp_lock_print();
    printf("\n  -> per-CPU cache locks: %lu contended spins in all (each CPU takes its own);\n"
           "     the shared zone lock: %lu, only when caches refilled or drained at once.\n"
           "     A single-lock allocator (stock xv6 kalloc) spins thousands of times here.\n",
           smp_lock_contended("kmem.cpu"), smp_lock_contended("kmem.zone"));
    return 0;
}

/* ---- driver -------------------------------------------------------------- */

struct section {
    const char *name;
    const char *title;
    int (*run)(void);
};

static const struct section sections[] = {
    { "pages", "Pages: per-CPU caches in front of the buddy allocator", section_pages },
    /* kalloc and buffer-cache sections go here. */
    { "locks", "Lock statistics (xv6 statslock format)", section_locks },
};
#define NSECTIONS ((int)(sizeof sections / sizeof sections[0]))

static int wanted(const struct section *s, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], s->name) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    colour_init();
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        int known = 0;
        for (int s = 0; s < NSECTIONS; s++)
            known |= strcmp(argv[i], sections[s].name) == 0;
        if (!known) {
            fprintf(stderr, "usage: demo [section...]; sections:");
            for (int s = 0; s < NSECTIONS; s++)
                fprintf(stderr, " %s", sections[s].name);
            fprintf(stderr, "\n");
            return 2;
        }
    }

    void *region = mmap(NULL, DEMO_REGION, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) {
        perror("demo: mmap");
        return 1;
    }
    int rc = smp_pmm_init(region, (char *)region + DEMO_REGION, DEMO_NCPU);
    if (rc != 0) {
        fprintf(stderr, "demo: pmm_init failed (%d)\n", rc);
        return 1;
    }
    size_t total = smp_pmm_total_pages();
    printf("%ssmpmem demo%s: a %lu MiB region managed on %d virtual CPUs (threads)\n",
           c_bold, c_off, DEMO_REGION >> 20, DEMO_NCPU);
    printf("  pmm_init: %zu pages of 4 KiB under management; metadata uses %.2f%% of the region\n",
           total, 100.0 * (double)(DEMO_REGION - total * SMP_PAGE_SIZE) / (double)DEMO_REGION);

    int failed = 0, n = 0;
    for (int s = 0; s < NSECTIONS; s++) {
        if (!wanted(&sections[s], argc, argv))
            continue;
        char title[128];
        snprintf(title, sizeof title, "== %d. %s ==", ++n, sections[s].title);
        heading("%s", title);
        if (sections[s].run() != 0) {
            printf("  %ssection %s FAILED%s\n", c_bad, sections[s].name, c_off);
            failed++;
        }
    }
    smp_pmm_reset();
    munmap(region, DEMO_REGION);
    printf("\n%s%s%s\n", failed ? c_bad : c_ok,
           failed ? "demo: some checks FAILED" : "demo: all checks passed", c_off);
    return failed ? 1 : 0;
}
