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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <smpmem/bcache.h>
#include <smpmem/bdev.h>
#include <smpmem/bio_debug.h>
#include <smpmem/hosted.h>
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/spinlock.h>
#include "../support/prng.h"
#include "../support/vcpus.h"

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

/* Run fn on CPUs first..last at once (one thread each, released together by
 * a barrier: support/vcpus.h); return when all are done. */
static void on_cpus(int first, int last, void (*fn)(int cpu, void *arg), void *arg)
{
    vcpus_run(first, last - first + 1, fn, arg);
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
    struct prng g = prng_seed(1234, (uint64_t)cpu);
    for (int r = 0; r < ch->rounds; r++) {
        unsigned k = (unsigned)prng_range(&g, 1, 64);
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
    printf("  Every CPU keeps a cache of free pages that only it touches, with\n"
           "  interrupts off and no lock, so the usual page_alloc/page_free touches\n"
           "  nothing shared and executes no atomic instruction.  Caches refill from\n"
           "  (and drain to) the buddy allocator in batches, and a CPU whose cache\n"
           "  and the buddy are both dry asks another CPU for a batch (a cross-call).\n\n");

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

/* ---- lock counters ------------------------------------------------------- */

/* Sum of #acquire() over the reported locks whose name starts with prefix,
 * read from the xv6-format report (the only place the library shows it). */
static unsigned long lock_acquires(const char *prefix)
{
    static char buf[64 * 1024];
    unsigned long sum = 0;
    size_t plen = strlen(prefix);
    smp_lock_report(buf, sizeof buf);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "--- top", 7) == 0)
            break;                  /* the top-5 list repeats earlier lines */
        const char *a = strstr(line, "#acquire() ");
        if (a && strncmp(line, "lock: ", 6) == 0 && strncmp(line + 6, prefix, plen) == 0)
            sum += strtoul(a + 11, NULL, 10);
    }
    return sum;
}

/* ---- section: kalloc ----------------------------------------------------- */

#define KA_PER_CPU 6000          /* objects each CPU allocates */

/* Percent of objects per size class 8, 16, ... 4096: mostly small (none of
 * 4 KiB, so the section stays within its slice of the region). */
static const unsigned ka_mix[SMP_KALLOC_CLASSES] = { 30, 20, 14, 10, 8, 6, 5, 4, 3 };

struct ka_cpu {
    void *obj[KA_PER_CPU];
    size_t size[KA_PER_CPU];
    unsigned long checked, misaligned, wrong_size, trampled, nulls, remote;
};
static struct ka_cpu *ka;        /* ka[cpu]: written by that CPU (and by the
                                  * CPU it hands a quarter to, after a barrier) */

struct ka_storm {
    unsigned long spins[2], slab_acq[2], obj_spins[2]; /* before/after remote frees */
};

static size_t ka_size_of(uint64_t r)
{
    unsigned pick = (unsigned)(r % 100), k = 0;
    while (k < SMP_KALLOC_CLASSES - 1 && pick >= ka_mix[k])
        pick -= ka_mix[k++];
    size_t hi = (size_t)8 << k, lo = k ? hi / 2 : 4;   /* (lo, hi]: class hi */
    return lo + 1 + (size_t)((r >> 32) % (hi - lo));
}

static unsigned char ka_fill(int cpu, size_t i) { return (unsigned char)(cpu * 61 + i * 7 + 1); }

static size_t pow2_at_least(size_t n)
{
    size_t p = 8;
    while (p < n)
        p <<= 1;
    return p;
}

/* Free owner's object i on the calling CPU, after checking it kept its fill. */
static void ka_free_one(struct ka_cpu *me, int owner, size_t i)
{
    unsigned char *p = ka[owner].obj[i], f = ka_fill(owner, i);
    if (!p)
        return;
    for (size_t b = 0; b < ka[owner].size[i]; b++)
        if (p[b] != f) {
            me->trampled++;
            break;
        }
    smp_kfree(p);
    ka[owner].obj[i] = NULL;
}

static void ka_snapshot(struct ka_storm *st, int k)
{
    st->spins[k] = smp_lock_contended("kmem");
    st->obj_spins[k] = smp_lock_contended("kmem.cpu");
    st->slab_acq[k] = lock_acquires("kmem.slab");
}

static void ka_storm_run(int cpu, void *arg)
{
    struct ka_storm *st = arg;
    struct ka_cpu *me = &ka[cpu];
    struct prng g = prng_seed(777, (uint64_t)cpu);
    for (size_t i = 0; i < KA_PER_CPU; i++) {
        size_t size = ka_size_of(prng_next(&g)), want = pow2_at_least(size);
        unsigned char *p = smp_kalloc(size);
        me->obj[i] = p;
        me->size[i] = size;
        if (!p) {
            me->nulls++;
            continue;
        }
        memset(p, ka_fill(cpu, i), size);
        me->checked++;
        me->misaligned += ((uintptr_t)p & (want - 1)) != 0;
        me->wrong_size += smp_kalloc_usable_size(p) != want;
    }
    /* Hand over: CPU c frees every 4th object of CPU c+1.  CPU 0 reads the
     * lock counters while everyone waits, before and after the frees. */
    vcpus_barrier();
    if (cpu == 0)
        ka_snapshot(st, 0);
    vcpus_barrier();
    int victim = (cpu + 1) % DEMO_NCPU;
    for (size_t i = 0; i < KA_PER_CPU; i += 4, me->remote++)
        ka_free_one(me, victim, i);
    vcpus_barrier();
    if (cpu == 0)
        ka_snapshot(st, 1);
}

static void ka_free_rest(int cpu, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < KA_PER_CPU; i++)
        ka_free_one(&ka[cpu], cpu, i);
}

static void ka_table(void)
{
    struct smp_kalloc_stats all, per[DEMO_NCPU];
    if (smp_kalloc_stats(-1, &all) != 0)
        memset(&all, 0, sizeof all);
    for (int c = 0; c < DEMO_NCPU; c++)
        if (smp_kalloc_stats(c, &per[c]) != 0)
            memset(&per[c], 0, sizeof per[c]);
    size_t most = 1, slabs = 0, inuse = 0, cached = 0;
    for (int k = 0; k < SMP_KALLOC_CLASSES; k++)
        if (all.in_use[k] > most)
            most = all.in_use[k];
    char out[48];
    snprintf(out, sizeof out, "objects out (bar 0..%zu)", most);
    printf("  %s%74s%s\n", c_dim, "<- free in magazines ->", c_off);
    printf("  %s class slabs  %-25s  callers   all cpu0 cpu1 cpu2 cpu3%s\n", c_dim, out, c_off);
    for (int k = 0; k < SMP_KALLOC_CLASSES; k++) {
        printf("  %4zu B %5zu  ", all.class_size[k], all.slabs[k]);
        bar(all.in_use[k], most, 16);
        printf(" %6zu  %7zu %5zu", all.in_use[k], all.in_use[k] - all.cached[k], all.cached[k]);
        for (int c = 0; c < DEMO_NCPU; c++)
            printf(" %4zu", per[c].cached[k]);
        printf("\n");
        slabs += all.slabs[k];
        inuse += all.in_use[k];
        cached += all.cached[k];
    }
    printf("  %s total %5zu  %25zu  %7zu %5zu%s\n", c_dim, slabs, inuse, inuse - cached, cached,
           c_off);
    printf("  The slabs take %zu pages.  Objects out = taken from a slab: held by a\n"
           "  caller, or free in some CPU's magazine.\n", all.slab_pages);
}

static int section_kalloc(void)
{
    int bad = 0;
    size_t total = smp_pmm_total_pages();
    printf("  kalloc(n) rounds n up to a power of two from 8 B to 4 KiB and hands out\n"
           "  a slot of a slab of that size.  Each CPU keeps, per size, two magazines\n"
           "  (stacks) of free slots that only it touches: kalloc pops, kfree pushes -\n"
           "  even for a block another CPU allocated.  A full magazine goes whole to\n"
           "  a shared depot, where a CPU with an empty one picks it up; only when\n"
           "  the depot is full or empty do objects travel to or from the slabs.\n\n");

    ka = calloc(DEMO_NCPU, sizeof *ka);
    if (!ka) {
        perror("demo: calloc");
        return 1;
    }
    printf("%s(1) %d CPUs each kalloc %d objects of 5..2048 B (mostly small), then%s\n"
           "%s    each frees every 4th object of its neighbour (cpu c frees cpu c+1's).%s\n",
           c_bold, DEMO_NCPU, KA_PER_CPU, c_off, c_bold, c_off);
    struct ka_storm st;
    memset(&st, 0, sizeof st);
    on_cpus(0, DEMO_NCPU - 1, ka_storm_run, &st);
    ka_table();
    printf("  -> callers still hold 3/4 of the objects.  Each freed one went onto the\n"
           "     freeing CPU's magazine; a magazine that filled up went back to its\n"
           "     slabs whole, so the slabs see a batch, not every free.\n");

    unsigned long checked = 0, misaligned = 0, wrong = 0, nulls = 0, remote = 0;
    for (int c = 0; c < DEMO_NCPU; c++) {
        checked += ka[c].checked;
        misaligned += ka[c].misaligned;
        wrong += ka[c].wrong_size;
        nulls += ka[c].nulls;
        remote += ka[c].remote;
    }
    unsigned long spins = st.spins[1] - st.spins[0];
    unsigned long slab_acq = st.slab_acq[1] - st.slab_acq[0];
    printf("\n  %lu blocks checked: each lies on a multiple of its power of two, and\n"
           "  kalloc_usable_size() tells that power.\n", checked);
    bad |= verdict("every kalloc succeeded?", nulls == 0 && checked == DEMO_NCPU * (unsigned long)KA_PER_CPU);
    bad |= verdict("every block aligned to its power of two?", misaligned == 0);
    bad |= verdict("usable size == that power of two, every time?", wrong == 0);
    printf("\n  During the %lu remote frees: %lu spins on any kmem lock, and the shared\n"
           "  slab locks were taken %lu times in all (full magazines mostly went\n"
           "  through the depot instead).\n",
           remote, spins, slab_acq);
    /* kmem.cpuN exist only in the locked build; here a remote free has no
     * per-CPU lock to wait on, so this holds by construction. */
    bad |= verdict("remote frees never spun on a kmem.cpu lock?",
                   st.obj_spins[1] == st.obj_spins[0]);
    bad |= verdict("all kmem spins ~ 0 (< 1 per 1000 frees)?", spins * 1000 < remote);
    printf("\n");

    printf("%s(2) Every CPU frees the rest of its own objects, then pmm_drain().%s\n", c_bold, c_off);
    on_cpus(0, DEMO_NCPU - 1, ka_free_rest, NULL);
    struct smp_kalloc_stats s;
    smp_kalloc_stats(-1, &s);
    size_t mag = 0;
    for (int k = 0; k < SMP_KALLOC_CLASSES; k++)
        mag += s.cached[k];
    printf("  before drain: %zu objects wait in magazines, %zu pages in slabs\n", mag, s.slab_pages);
    smp_pmm_drain();
    smp_kalloc_stats(-1, &s);
    size_t slabs = 0;
    mag = 0;
    for (int k = 0; k < SMP_KALLOC_CLASSES; k++) {
        slabs += s.slabs[k];
        mag += s.cached[k];
    }
    printf("  after drain:  %zu objects in magazines, %zu slabs, free %zu of %zu pages\n",
           mag, slabs, smp_pmm_free_pages(), total);
    unsigned long trampled = 0;
    for (int c = 0; c < DEMO_NCPU; c++)
        trampled += ka[c].trampled;
    free(ka);
    ka = NULL;
    bad |= verdict("every block kept its fill until freed (no overlap)?", trampled == 0);
    bad |= verdict("no slab left, free == total?", slabs == 0 && smp_pmm_free_pages() == total);
    bad |= verdict("pmm_check() == 0?", smp_pmm_check() == 0);

    /* The pages coalesced again: the largest block the region holds is whole. */
    size_t big = SMP_PAGE_SIZE << smp_pmm_max_order();
    void *p = smp_kalloc(big);
    printf("  kalloc(%zu MiB): %.0f%% of the region, the largest block (order %u) it holds\n"
           "    -> %s", big >> 20, 100.0 * (double)big / (double)DEMO_REGION, smp_pmm_max_order(),
           p ? "" : "NULL\n");
    if (p)
        printf("%p, usable size %zu MiB\n", p, smp_kalloc_usable_size(p) >> 20);
    bad |= verdict("it succeeds, aligned to its size?", p && ((uintptr_t)p & (big - 1)) == 0);
    smp_kfree(p);
    bad |= verdict("freed again: free == total, pmm_check() == 0?",
                   smp_pmm_free_pages() == total && smp_pmm_check() == 0);
    return bad;
}

/* ---- section: bcache ----------------------------------------------------- */

#define BC_DEV    1
#define BC_BLOCKS 2048           /* RAM disk blocks */
#define BC_BSIZE  1024
#define BC_NBUF   30             /* xv6's NBUF */
#define BC_HOT    16             /* blocks 0..15: read by every CPU */
#define BC_OPS    20000          /* bread/brelse per CPU */
#define BC_WORDS  (BC_BSIZE / 8)
#define BC_MAGIC  0x5354414d50ULL /* "STAMP" */

/* Block b belongs to CPU b % DEMO_NCPU: only that CPU writes it.  Every
 * write stamps the block with (magic, cpu, blockno, version) and fills the
 * rest from those, so a torn or misplaced block shows. */
static uint64_t bc_version[BC_BLOCKS];  /* last version written: the owner's */

struct bc_cpu {
    unsigned long reads, writes, cold, stale, torn;
    uint64_t seen[BC_BLOCKS];   /* newest version this CPU saw of each block */
};
static struct bc_cpu *bc;

static uint64_t bc_word(uint64_t blockno, uint64_t version, unsigned i)
{
    struct prng g = prng_seed(blockno * 0x100000001b3ULL ^ version << 20, i);
    return prng_next(&g);
}

static void bc_stamp(uint64_t *w, int cpu, uint64_t blockno, uint64_t version)
{
    w[0] = BC_MAGIC;
    w[1] = (uint64_t)cpu;
    w[2] = blockno;
    w[3] = version;
    for (unsigned i = 4; i < BC_WORDS; i++)
        w[i] = bc_word(blockno, version, i);
}

/* The version a block holds, or -1 if it is neither a whole stamp of this
 * block by its owner nor never written (all zero). */
static int64_t bc_version_of(const uint64_t *w, uint64_t blockno)
{
    if (w[0] == 0) {
        for (unsigned i = 1; i < BC_WORDS; i++)
            if (w[i])
                return -1;
        return 0;
    }
    if (w[0] != BC_MAGIC || w[1] != blockno % DEMO_NCPU || w[2] != blockno || w[3] == 0)
        return -1;
    for (unsigned i = 4; i < BC_WORDS; i++)
        if (w[i] != bc_word(blockno, w[3], i))
            return -1;
    return (int64_t)w[3];
}

static void bc_work(int cpu, void *arg)
{
    (void)arg;
    struct bc_cpu *me = &bc[cpu];
    struct prng g = prng_seed(4242, (uint64_t)cpu);
    for (int op = 0; op < BC_OPS; op++) {
        uint64_t r = prng_next(&g);
        uint64_t b = r % 100 < 85 ? (r >> 8) % BC_HOT
                                  : BC_HOT + (r >> 8) % (BC_BLOCKS - BC_HOT);
        int write = (int)(b % DEMO_NCPU) == cpu && (r >> 40) % 100 < 25;
        struct buf *bp = bread(BC_DEV, b);
        if (!bp) {
            me->torn++;
            continue;
        }
        uint64_t *w = (uint64_t *)(void *)bp->data;
        int64_t v = bc_version_of(w, b);
        if (v < 0)
            me->torn++;
        else if ((uint64_t)v < me->seen[b] || (write && (uint64_t)v != bc_version[b]))
            me->stale++;        /* went back in time / lost our last write */
        else
            me->seen[b] = (uint64_t)v;
        if (write) {
            bc_stamp(w, cpu, b, ++bc_version[b]);
            if (bwrite(bp) != 0)
                me->torn++;
            me->seen[b] = bc_version[b];
            me->writes++;
        } else {
            me->reads++;
        }
        me->cold += b >= BC_HOT;
        brelse(bp);
    }
}

static int section_bcache(void)
{
    int bad = 0;
    size_t total = smp_pmm_total_pages();
    printf("  The buffer cache keeps recently used disk blocks in memory, xv6-style:\n"
           "  bread locks a block's buffer (reading the disk on a miss), brelse lets\n"
           "  it go.  Buffers hang in hash buckets, one spinlock each, so CPUs that\n"
           "  want different blocks rarely meet on a lock.  A block is never cached\n"
           "  twice, and on a miss the least recently used free buffer is reused.\n\n");

    int rc = smp_ramdisk_create(BC_DEV, BC_BLOCKS, BC_BSIZE);
    if (rc == 0 && (rc = smp_bcache_init(BC_NBUF, BC_BSIZE)) != 0)
        smp_bdev_reset();
    if (rc != 0) {
        printf("  setup failed (%d)\n", rc);
        return 1;
    }
    bc = calloc(DEMO_NCPU, sizeof *bc);
    if (!bc) {
        perror("demo: calloc");
        smp_bcache_reset();
        smp_bdev_reset();
        return 1;
    }
    memset(bc_version, 0, sizeof bc_version);
    struct smp_bcache_stats s;
    smp_bcache_stats(&s);
    printf("  A RAM disk of %d blocks of %d B (%d KiB, from kalloc), and a cache of\n"
           "  %u buffers in %u buckets.\n\n", BC_BLOCKS, BC_BSIZE, BC_BLOCKS * BC_BSIZE >> 10,
           s.nbuf, s.nbucket);

    printf("%s(1) %d CPUs do %d breads each: 85%% to %d hot blocks they all share,%s\n"
           "%s    15%% to cold blocks anywhere on the disk.  Block b belongs to cpu b%%%d;%s\n"
           "%s    in a quarter of the visits to its own blocks a CPU writes a new version.%s\n",
           c_bold, DEMO_NCPU, BC_OPS, BC_HOT, c_off, c_bold, DEMO_NCPU, c_off, c_bold, c_off);
    unsigned long spins0 = smp_lock_contended("bcache.bucket");
    unsigned long bucket_acq0 = lock_acquires("bcache.bucket");
    on_cpus(0, DEMO_NCPU - 1, bc_work, NULL);
    unsigned long spins = smp_lock_contended("bcache.bucket") - spins0;
    unsigned long bucket_acq = lock_acquires("bcache.bucket") - bucket_acq0;
    smp_bcache_stats(&s);

    printf("  %scpu  reads   writes  cold%s\n", c_dim, c_off);
    unsigned long torn = 0, stale = 0;
    for (int c = 0; c < DEMO_NCPU; c++) {
        printf("  %3d  %6lu  %6lu  %5lu\n", c, bc[c].reads, bc[c].writes, bc[c].cold);
        torn += bc[c].torn;
        stale += bc[c].stale;
    }
    unsigned long lookups = s.hits + s.misses;
    printf("\n  hits      ");
    bar(s.hits, lookups, 40);
    printf(" %6lu  %2lu%%\n  misses    ", s.hits, lookups ? 100 * s.hits / lookups : 0);
    bar(s.misses, lookups, 40);
    printf(" %6lu\n", s.misses);
    printf("  %lu misses reused a buffer (evictions); %lu found the block just cached\n"
           "  by another CPU (races); %lu waited for a free buffer.\n"
           "  Disk: %lu reads, %lu writes.\n",
           s.evictions, s.races, s.waits, s.dev_reads, s.dev_writes);
    printf("  -> the hot blocks stay cached; the cold ones take turns in the other buffers.\n\n");

    printf("  The %u bucket locks were taken %lu times; a CPU found one held (and spun)\n"
           "  %lu times: %.1f%%.  With one lock for the whole cache, as in stock xv6,\n"
           "  every bread of every CPU would queue on it.\n",
           s.nbucket, bucket_acq, spins,
           bucket_acq ? 100.0 * (double)spins / (double)bucket_acq : 0.0);
    bad |= verdict("every bread gave a whole block (no torn stamp)?", torn == 0);
    bad |= verdict("no CPU saw a block go back to an older version?", stale == 0);

    unsigned cached = 0, twice = 0;
    for (uint64_t b = 0; b < BC_BLOCKS; b++) {
        unsigned n = smp_bcache_count(BC_DEV, b);
        cached += n;
        twice += n > 1;
    }
    printf("\n  bcache_count over all %d blocks: %u cached, in %u buffers.\n", BC_BLOCKS, cached,
           s.nbuf);
    bad |= verdict("no block cached twice?", twice == 0 && cached <= s.nbuf);
    bad |= verdict("bcache_check() == 0?", smp_bcache_check() == 0);

    /* Read everything back, through the cache and straight from the disk. */
    static uint64_t raw[BC_WORDS];
    unsigned long wrong_cached = 0, wrong_disk = 0, written = 0;
    for (uint64_t b = 0; b < BC_BLOCKS; b++) {
        struct buf *bp = bread(BC_DEV, b);
        if (!bp || bc_version_of((uint64_t *)(void *)bp->data, b) != (int64_t)bc_version[b])
            wrong_cached++;
        if (bp)
            brelse(bp);
        if (smp_bdev_read(BC_DEV, b, raw) != 0 || bc_version_of(raw, b) != (int64_t)bc_version[b])
            wrong_disk++;
        written += bc_version[b] != 0;
    }
    printf("\n  Read back all %d blocks (%lu were written): each must carry the last\n"
           "  version its owner wrote - via bread, and on the disk itself (write-through).\n",
           BC_BLOCKS, written);
    bad |= verdict("bread: last written stamp on every block?", wrong_cached == 0);
    bad |= verdict("disk: last written stamp on every block?", wrong_disk == 0);

    free(bc);
    bc = NULL;
    int busy = smp_bcache_reset();
    smp_bdev_reset();
    smp_pmm_drain();
    printf("\n  bcache_reset(), bdev_reset(), pmm_drain(): free %zu of %zu pages\n",
           smp_pmm_free_pages(), total);
    bad |= verdict("cache and disk gone, free == total?", busy == 0 && smp_pmm_free_pages() == total);
    bad |= verdict("pmm_check() == 0?", smp_pmm_check() == 0);
    return bad;
}

/* ---- section: locks ------------------------------------------------------ */

static int section_locks(void)
{
    printf("  Every smpmem lock counts its acquisitions and its failed test-and-set\n"
           "  attempts (spins while another CPU held it), in xv6's statslock format.\n"
           "  The per-CPU caches have no lock at all (kmem.cpuN appear only in the\n"
           "  locked build for ports without cross-calls); kmem.slabN are the shared\n"
           "  slabs of each size, kmem.depotN their magazine depots, kmem.zone the\n"
           "  buddy's lock.\n"
           "  (The buffer cache's locks leave the report with bcache_reset.)\n\n");
    smp_lock_print();
    printf("\n  -> depots (and per-CPU gates, locked build only): %lu contended spins;\n"
           "     the shared slab locks: %lu, the zone lock: %lu, only when batches\n"
           "     moved at the same moment on two CPUs.\n"
           "     A single-lock allocator (stock xv6 kalloc) spins thousands of times here.\n",
           smp_lock_contended("kmem.cpu") + smp_lock_contended("kmem.depot"),
           smp_lock_contended("kmem.slab"), smp_lock_contended("kmem.zone"));
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
    { "kalloc", "kalloc/kfree: per-CPU magazines over power-of-two slabs", section_kalloc },
    { "bcache", "The buffer cache: hashed buckets over a RAM disk", section_bcache },
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
