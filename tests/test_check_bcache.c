/* bcache_check can fail, and says why: for every invariant it verifies
 * (src/bio/bcache_check.c: LRU clocks, waiter counts, list shape, each
 * buffer's links, bucket, identity, references and stamp, duplicates, the
 * oldest-free hints, and that no buffer is missing), one case corrupts
 * exactly that field through the test-only hooks of <smpmem/bio_debug.h>,
 * asserts the check prints that reason with the bucket and buffer it names,
 * then restores the old values and asserts a clean check.  A last test
 * reads bcache_check.c and fails if a reason has no case here. */
#include "harness.h"
#include "check_capture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <smpmem/bcache.h>
#include <smpmem/bdev.h>
#include <smpmem/bio_debug.h>
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>

#define MiB (1UL << 20)
#define REGION (16 * MiB)
#define DEV 1
#define BSIZE 512u
#define NBUF 16u
#define NBUCKET 31u

/* ---- hooks with an undo log --------------------------------------------- */

struct poke { enum smp_bcache_field f; unsigned i; uint64_t old; };
static struct poke undo_log[8];
static int npokes;

static uint64_t get(enum smp_bcache_field f, unsigned i) { return smp_bcache_debug_get(f, i); }

static void poke(enum smp_bcache_field f, unsigned i, uint64_t v)
{
    if (npokes == (int)(sizeof undo_log / sizeof undo_log[0]))
        abort();
    undo_log[npokes++] = (struct poke){ f, i, smp_bcache_debug_set(f, i, v) };
}

static void undo(void)
{
    while (npokes > 0) {
        struct poke *p = &undo_log[--npokes];
        smp_bcache_debug_set(p->f, p->i, p->old);
    }
}

static uintptr_t addr_of(unsigned i) { return (uintptr_t)smp_bcache_debug_buf(i); }
static unsigned index_of(uintptr_t b) { return (unsigned)((b - addr_of(0)) / sizeof(struct smp_buf)); }

/* The buffer caching (DEV, blockno), or NBUF. */
static unsigned buf_of(uint64_t blockno)
{
    for (unsigned i = 0; i < NBUF; i++)
        if (get(SMP_DBG_BUF_DEV, i) == DEV && get(SMP_DBG_BUF_BLOCKNO, i) == blockno)
            return i;
    return NBUF;
}

static unsigned first_empty_bucket(void)
{
    for (unsigned i = 0; i < NBUCKET; i++)
        if (!get(SMP_DBG_BUCKET_HEAD, i))
            return i;
    return NBUCKET;
}

/* ---- the scene ------------------------------------------------------------ */

static char *region;
static struct buf *held;

static void scene(void)
{
    region = region_map(REGION, 0);
    if (pmm_init(region, region + REGION, 2) != 0 || ramdisk_create(DEV, 256, BSIZE) != 0 ||
        bcache_init_buckets(NBUF, BSIZE, NBUCKET) != 0)
        abort();
    /* Blocks 0-5 released; 40 then 71 released into one bucket (71 = 40 +
     * NBUCKET); 100 held; the other buffers still cache nothing. */
    static const uint64_t blocks[] = { 0, 1, 2, 3, 4, 5, 40, 71 };
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        struct buf *b = bread(DEV, blocks[i]);
        if (!b)
            abort();
        brelse(b);
    }
    held = bread(DEV, 100);
    if (!held)
        abort();
    npokes = 0;
}

static void finish(void)
{
    brelse(held);
    CHECK(bcache_reset() == 0, "reset");
    bdev_reset();
    pmm_reset();
    region_unmap(region, REGION, 0);
}

/* ---- one case ------------------------------------------------------------ */

struct expect { unsigned bucket; uintptr_t buffer; };
#define SETUP_FAILED ((struct expect){ ~0u, 0 })
#define NEED(cond, ...) do { if (!(cond)) { CHECK(0, __VA_ARGS__); return SETUP_FAILED; } } while (0)

struct bcase {
    const char *reason;          /* exactly what bcache_check must print */
    struct expect (*corrupt)(void);
};

static void run_cases(const struct bcase *cases, size_t n)
{
    for (size_t c = 0; c < n; c++) {
        char out[1024];
        scene();
        int rc = capture_check(smp_bcache_check, out, sizeof out);
        CHECK(rc == 0, "scene not clean before \"%s\": %s", cases[c].reason, out);
        struct expect e = cases[c].corrupt();
        if (e.bucket != ~0u) {
            struct violation v;
            rc = capture_check(smp_bcache_check, out, sizeof out);
            int ok = rc != 0 && parse_violation(out, "bcache_check", &v) && v.lines == 1 &&
                     !strcmp(v.reason, cases[c].reason) && v.bucket == e.bucket &&
                     v.buffer == e.buffer;
            CHECK(ok, "want \"bcache_check: bucket %u buffer %#lx: %s\"; check returned %d and printed: %s",
                  e.bucket, (unsigned long)e.buffer, cases[c].reason, rc, out);
            undo();
            rc = capture_check(smp_bcache_check, out, sizeof out);
            CHECK(rc == 0 && !out[0], "not clean after restoring \"%s\": %s", cases[c].reason, out);
        }
        undo();
        finish();
    }
}

/* ---- the cases, in the order bcache_check looks ------------------------- */

static struct expect clock_ahead(void)
{
    poke(SMP_DBG_CLOCK_EPOCH, 0, get(SMP_DBG_EPOCH, 0) + 1);
    return (struct expect){ 0, 0 };
}

static struct expect waiters_differ(void)
{
    poke(SMP_DBG_BUCKET_WAITERS, 3, 1);
    return (struct expect){ 3, 0 };
}

static struct expect list_cycle(void)
{
    /* The last buffer the walk visits (the tail of the highest non-empty
     * bucket) points back at itself: visit nbuf + 1.  It must cache
     * nothing, or the duplicate scan would meet it again first. */
    unsigned L = NBUCKET;
    while (L-- > 0 && !get(SMP_DBG_BUCKET_HEAD, L))
        ;
    uintptr_t x = get(SMP_DBG_BUCKET_HEAD, L);
    while (get(SMP_DBG_BUF_NEXT, index_of(x)))
        x = get(SMP_DBG_BUF_NEXT, index_of(x));
    unsigned xi = index_of(x);
    NEED(get(SMP_DBG_BUF_REFCNT, xi) == 0, "the last buffer walked is free");
    poke(SMP_DBG_BUF_DEV, xi, SMP_BCACHE_NODEV);
    poke(SMP_DBG_BUF_NEXT, xi, x);
    return (struct expect){ L, x };
}

/* A buffer-shaped object outside the cache's array, ending its list.  (The
 * check's loop reads b->next of the bad entry after reporting it, so the
 * bad entry must be readable: a misaligned pointer into the array is UB
 * there.) */
static struct buf stranger;

static struct expect not_a_buffer(void)
{
    unsigned e = first_empty_bucket();
    NEED(e < NBUCKET, "an empty bucket");
    poke(SMP_DBG_BUCKET_HEAD, e, (uintptr_t)&stranger);
    return (struct expect){ e, (uintptr_t)&stranger };
}

static struct expect prev_link(void)
{
    unsigned b0 = buf_of(0), bk = (unsigned)get(SMP_DBG_BUF_BUCKET, b0);
    uintptr_t head = get(SMP_DBG_BUCKET_HEAD, bk);
    poke(SMP_DBG_BUF_PREV, index_of(head), addr_of(buf_of(1)));
    return (struct expect){ bk, head };
}

static struct expect bucket_field(void)
{
    unsigned b0 = buf_of(0), bk = (unsigned)get(SMP_DBG_BUF_BUCKET, b0);
    poke(SMP_DBG_BUF_BUCKET, b0, (bk + 1) % NBUCKET);
    return (struct expect){ bk, addr_of(b0) };
}

static struct expect identity_elsewhere(void)
{
    unsigned b2 = buf_of(2);
    poke(SMP_DBG_BUF_BLOCKNO, b2, 3);      /* block 3 hashes to the next bucket */
    return (struct expect){ smp_bcache_debug_bucket_of(DEV, 2), addr_of(b2) };
}

static struct expect nodev_referenced(void)
{
    unsigned x = NBUF;
    for (unsigned i = 0; i < NBUF && x == NBUF; i++)
        if (get(SMP_DBG_BUF_DEV, i) == SMP_BCACHE_NODEV)
            x = i;
    NEED(x < NBUF, "a buffer caching nothing");
    poke(SMP_DBG_BUF_REFCNT, x, 1);
    return (struct expect){ (unsigned)get(SMP_DBG_BUF_BUCKET, x), addr_of(x) };
}

static struct expect free_but_locked(void)
{
    unsigned b0 = buf_of(0);                 /* released in the scene: free */
    poke(SMP_DBG_BUF_LOCKED, b0, 1);
    return (struct expect){ (unsigned)get(SMP_DBG_BUF_BUCKET, b0), addr_of(b0) };
}

static struct expect stamp_from_future(void)
{
    unsigned b0 = buf_of(0);
    poke(SMP_DBG_BUF_LAST_USE, b0, (get(SMP_DBG_EPOCH, 0) + 2) << 24);
    return (struct expect){ (unsigned)get(SMP_DBG_BUF_BUCKET, b0), addr_of(b0) };
}

/* Blocks 40 and 71 share a bucket; which of their buffers the list shows
 * first (f) and later (s). */
static unsigned pair_bucket(unsigned *f, unsigned *s)
{
    unsigned a = buf_of(40), b = buf_of(71), bk = smp_bcache_debug_bucket_of(DEV, 40);
    for (uintptr_t x = get(SMP_DBG_BUCKET_HEAD, bk); x; x = get(SMP_DBG_BUF_NEXT, index_of(x)))
        if (index_of(x) == a || index_of(x) == b) {
            *f = index_of(x);
            *s = *f == a ? b : a;
            break;
        }
    return bk;
}

static struct expect cached_twice(void)
{
    unsigned f = NBUF, s = NBUF, bk = pair_bucket(&f, &s);
    NEED(f < NBUF && s < NBUF, "blocks 40 and 71 cached in one bucket");
    poke(SMP_DBG_BUF_BLOCKNO, f, get(SMP_DBG_BUF_BLOCKNO, s));
    return (struct expect){ bk, addr_of(s) };
}

static struct expect hint_missing(void)
{
    unsigned bk = smp_bcache_debug_bucket_of(DEV, 40);
    poke(SMP_DBG_BUCKET_OLDEST, bk, 0);
    return (struct expect){ bk, 0 };
}

static struct expect hint_none_free(void)
{
    unsigned e = first_empty_bucket();
    NEED(e < NBUCKET, "an empty bucket");
    poke(SMP_DBG_BUCKET_OLDEST, e, addr_of(0));
    return (struct expect){ e, addr_of(0) };
}

static struct expect hint_not_oldest(void)
{
    /* A free buffer of the same list released later than the oldest
     * (block 71's bucket holds at least blocks 40 and 71, both free). */
    unsigned bk = smp_bcache_debug_bucket_of(DEV, 71);
    uintptr_t hint = get(SMP_DBG_BUCKET_OLDEST, bk), newer = 0;
    NEED(hint, "a free buffer in block 71's bucket");
    for (uintptr_t x = get(SMP_DBG_BUCKET_HEAD, bk); x && !newer; x = get(SMP_DBG_BUF_NEXT, index_of(x)))
        if (get(SMP_DBG_BUF_REFCNT, index_of(x)) == 0 &&
            get(SMP_DBG_BUF_LAST_USE, index_of(x)) > get(SMP_DBG_BUF_LAST_USE, index_of(hint)))
            newer = x;
    NEED(newer, "two free buffers released at different times in one bucket");
    poke(SMP_DBG_BUCKET_OLDEST, bk, newer);
    return (struct expect){ bk, newer };
}

static struct expect hint_foreign(void)
{
    /* A free buffer of another bucket. */
    unsigned bk = smp_bcache_debug_bucket_of(DEV, 40);
    poke(SMP_DBG_BUCKET_OLDEST, bk, addr_of(buf_of(0)));
    return (struct expect){ bk, addr_of(buf_of(0)) };
}

static struct expect buffers_missing(void)
{
    unsigned bk = smp_bcache_debug_bucket_of(DEV, 40);
    poke(SMP_DBG_BUCKET_HEAD, bk, 0);      /* drop the bucket's whole list... */
    poke(SMP_DBG_BUCKET_OLDEST, bk, 0);    /* ...and its hint, consistently */
    return (struct expect){ 0, 0 };
}

static const struct bcase cases[] = {
    { "a CPU's LRU clock is ahead of the epoch", clock_ahead },
    { "waiters count differs from bucket 0's", waiters_differ },
    { "lists hold more entries than buffers (cycle?)", list_cycle },
    { "list holds something that is not a buffer", not_a_buffer },
    { "prev link does not match the list", prev_link },
    { "bucket field names another bucket", bucket_field },
    { "identity hashes to another bucket", identity_elsewhere },
    { "a buffer caching nothing is referenced", nodev_referenced },
    { "free buffer is sleep-locked or has sleepers", free_but_locked },
    { "last_use stamped with an epoch not reached yet", stamp_from_future },
    { "block cached twice", cached_twice },
    { "oldest-free hint missing", hint_missing },
    { "oldest-free hint set, none free", hint_none_free },
    { "oldest-free hint is not the least recently released free buffer", hint_not_oldest },
    { "oldest-free hint is not the least recently released free buffer", hint_foreign },
    { "buffers missing from the bucket lists", buffers_missing },
};

TEST(bcache_check_reports_each_violation)
{
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

/* ---- every reason bcache_check can print has a case above --------------- */

static int nfound;

static void must_be_covered(const char *reason)
{
    nfound++;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        if (!strcmp(cases[c].reason, reason))
            return;
    CHECK(0, "bcache_check can print \"%s\" but no case in %s proves it", reason, __FILE__);
}

TEST(every_reason_has_a_case)
{
    char path[512];
    repo_path(path, sizeof path, __FILE__, "src/bio/bcache_check.c");
    if (for_each_reason(path, "violation(", must_be_covered) < 0) {
        printf("     (every_reason_has_a_case: %s not found from here; skipped)\n", path);
        return;
    }
    CHECK(nfound >= 14, "found only %d reasons in %s", nfound, path);
}

int main(void)
{
    return RUN_TESTS(bcache_check_reports_each_violation, every_reason_has_a_case);
}
