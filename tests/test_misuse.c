/* Misuse of locks and buffers stops at its cause (issue 10): a buffer
 * released or written by a thread that does not hold it (xv6 checks the
 * holder), a sleep lock released while nobody holds it, and a spinlock
 * acquired twice by one CPU -- each in a child that must panic with the
 * name or address and the reason.  Each check is one the code could lose
 * without any other test noticing. */
#include "harness.h"
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/bcache.h>
#include <smpmem/bdev.h>
#include <smpmem/bio_debug.h>
#include <smpmem/sleeplock.h>
#include <smpmem/spinlock.h>
#include <smpmem/hosted.h>
#include <smpmem/port.h>
#include <stdint.h>
#include <stdlib.h>

#define MiB (1UL << 20)
static char *region;

static void setup(void)
{
    region = region_map(64 * MiB, 0);
    if (pmm_init(region, region + 64 * MiB, 2) != 0 || bcache_init(16, 512) != 0 ||
        ramdisk_create(1, 64, 512) != 0)
        abort();
}

static void teardown(void)
{
    bcache_reset();
    bdev_reset();
    pmm_reset();
    region_unmap(region, 64 * MiB, 0);
}

static struct buf *handed;

static void bread_on_1_release_on_0(int cpu, void *arg)
{
    int write = arg != NULL;
    if (cpu == 1)
        handed = bread(1, 7);
    cpus_barrier();
    if (cpu == 0) {
        if (write)
            bwrite(handed);
        else
            brelse(handed);
    }
}

static void brelse_by_another(void *arg) { (void)arg; run_on_cpus(2, bread_on_1_release_on_0, NULL); }
static void bwrite_by_another(void *arg) { (void)arg; run_on_cpus(2, bread_on_1_release_on_0, (void *)1); }

static void release_unheld_sleeplock(void *arg)
{
    (void)arg;
    static struct smp_sleeplock s;
    smp_sleeplock_init(&s, "test.sleeplock");
    smp_sleeplock_release(&s);
}

/* A sleep lock taken on CPU 1, then released on CPU 0 (another thread):
 * smp_sleeplock_release_mine must refuse and leave it held; the plain
 * release must panic saying so. */
static struct smp_sleeplock shared_sl;
static int mine_on_other;

static void sleeplock_on_1_release_on_0(int cpu, void *arg)
{
    if (cpu == 1)
        smp_sleeplock_acquire(&shared_sl);
    cpus_barrier();
    if (cpu == 0) {
        if (arg)
            smp_sleeplock_release(&shared_sl);
        else
            mine_on_other = smp_sleeplock_release_mine(&shared_sl);
    }
    cpus_barrier();
}

static void release_others_sleeplock(void *arg)
{
    (void)arg;
    smp_sleeplock_init(&shared_sl, "test.others");
    run_on_cpus(2, sleeplock_on_1_release_on_0, (void *)1);
}

static void brelse_twice(void *arg)
{
    (void)arg;
    setup();
    struct buf *b = bread(1, 3);
    if (!b)
        abort();
    brelse(b);
    brelse(b);
}

static struct smp_spinlock twice;
static void acquire_twice(void *arg)
{
    (void)arg;
    smp_lock_init(&twice, "test.twice");
    smp_lock_acquire(&twice);
    smp_lock_acquire(&twice);
}

static void release_unheld_spinlock(void *arg)
{
    (void)arg;
    smp_lock_init(&twice, "test.unheld");
    smp_lock_release(&twice);
}

/* The port's promises, broken: a pop with no push (xv6's pop_off panics),
 * and a CPU id outside the ncpu given to pmm_init, on each fast path (the
 * fast paths fold the id check into their slow-path test: each must still
 * reach the panic rather than index past the per-CPU arrays). */
static void pop_without_push(void *arg)
{
    (void)arg;
    smp_port_irq_pop();
}

static void on_cpu_beyond_ncpu(void *arg)
{
    int which = (int)(intptr_t)arg;
    setup();                                  /* ncpu 2 */
    void *small = kalloc(64), *page = page_alloc(0);
    if (!small || !page)
        abort();
    smp_hosted_bind_cpu(5);
    switch (which) {
    case 0: kalloc(64); break;
    case 1: kfree(small); break;
    case 2: page_alloc(0); break;
    default: page_free(page, 0); break;
    }
}

TEST(port_promises_broken_stop_with_the_reason)
{
    CHECK(expect_panic(pop_without_push, NULL, "pop_off"), "pop without a push");
    static const char *const what[4] = { "kalloc", "kfree", "page_alloc", "page_free" };
    for (intptr_t i = 0; i < 4; i++) {
#ifdef SMP_CHECKED
        if (i == 1)
            continue;         /* the checked kfree holds the object in its quarantine */
#endif
        CHECK(expect_panic(on_cpu_beyond_ncpu, (void *)i, "outside 0..ncpu-1"),
              "%s on a CPU id beyond ncpu", what[i]);
    }
}

TEST(buffers_are_released_by_their_holder)
{
    setup();
    CHECK(expect_panic(brelse_by_another, NULL, "held by another thread"), "brelse by a non-holder");
    CHECK(expect_panic(bwrite_by_another, NULL, "not held by the caller"), "bwrite by a non-holder");
    /* Control: the holder releases it on another CPU after... itself. */
    struct buf *b = bread(1, 7);
    REQUIRE(b != NULL, "bread");
    CHECK(bwrite(b) == 0, "the holder writes");
    brelse(b);
    CHECK(bcache_check() == 0, "check");
    teardown();
}

/* brelse checks and releases in one call (smp_sleeplock_release_mine):
 * each refusal leaves the lock as it was, so the caller's panic tells the
 * truth and nothing is half released. */
TEST(sleep_lock_release_mine_refuses_what_is_not_the_callers)
{
    smp_sleeplock_init(&shared_sl, "test.mine");
    CHECK(smp_sleeplock_release_mine(&shared_sl) == SMP_SLEEPLOCK_NOT_HELD, "a free lock is not the caller's");
    CHECK(!smp_sleeplock_locked(&shared_sl), "and stays free");
    mine_on_other = -1;
    run_on_cpus(2, sleeplock_on_1_release_on_0, NULL);
    CHECK(mine_on_other == SMP_SLEEPLOCK_OTHER_HOLDER, "another thread's lock: got %d", mine_on_other);
    CHECK(smp_sleeplock_locked(&shared_sl), "and stays held by that thread");
    /* The holder's thread has returned; take the lock over for the control. */
    smp_sleeplock_init(&shared_sl, "test.mine");
    smp_sleeplock_acquire(&shared_sl);
    CHECK(smp_sleeplock_release_mine(&shared_sl) == 0, "the holder releases");
    CHECK(!smp_sleeplock_locked(&shared_sl), "free after the holder's release");
    CHECK(expect_panic(brelse_twice, NULL, "not locked: released twice"), "brelse of a released buffer");
}

TEST(locks_refuse_misuse_with_their_name)
{
    CHECK(expect_panic(release_unheld_sleeplock, NULL, "test.sleeplock: sleep lock released while not held"),
          "sleep lock nobody holds");
    CHECK(expect_panic(release_others_sleeplock, NULL, "test.others: sleep lock released by a thread that does not hold it"),
          "sleep lock held by another thread");
    CHECK(expect_panic(acquire_twice, NULL, "test.twice"), "recursive acquire names the lock");
    CHECK(expect_panic(release_unheld_spinlock, NULL, "test.unheld"), "release of an unheld spinlock");
}

int main(void)
{
    return RUN_TESTS(buffers_are_released_by_their_holder, locks_refuse_misuse_with_their_name,
                     sleep_lock_release_mine_refuses_what_is_not_the_callers,
                     port_promises_broken_stop_with_the_reason);
}
