/*
 * make qemu: smpmem on every hart of QEMU virt, briefly and visibly.
 *   1. every hart churns pages: per-CPU cache statistics
 *   2. hart 0 takes every page: the others give theirs up by cross-call
 *   3. kalloc on every hart, with timer handlers allocating too
 *   4. the buffer cache on the virtio disk, with smpmem's lock table in
 *      xv6's statslock format (step 5), then the blocks read back
 */
#include "suite.h"
#include <smpmem/bcache.h>
#include <smpmem/bio_debug.h>
#include <smpmem/bdev.h>
#include <smpmem/pmm.h>
#include <smpmem/spinlock.h>

static void churn(int cpu, void *arg)
{
    (void)arg;
    struct rng g = rng_for((uint64_t)cpu);
    void *p[64];
    for (int r = 0; r < 500; r++) {
        int k = 1 + (int)rng_below(&g, 64);
        for (int i = 0; i < k; i++)
            p[i] = smp_page_alloc(0);
        for (int i = 0; i < k; i++)
            smp_page_free(p[i], 0);
    }
}

static void print_pcp(void)
{
    kprintf("  cpu  cached  refills  drains  steals  stolen\n");
    for (int c = 0; c < NCPU; c++) {
        struct smp_pcp_stats st;
        smp_pmm_cpu_stats(c, &st);
        kprintf("  %3d  %6lu  %7lu  %6lu  %6lu  %6lu\n", c, (unsigned long)st.cached_pages,
                st.refills, st.drains, st.steals, st.stolen);
    }
}

static atomic_long irq_allocs;
static void tick(int cpu)
{
    void *p = smp_kalloc(64 + 32 * (size_t)cpu);
    smp_kfree(p);
    if (p)
        atomic_fetch_add_explicit(&irq_allocs, 1, memory_order_relaxed);
}

static void kalloc_work(int cpu, void *arg)
{
    (void)arg;
    struct rng g = rng_for(100 + (uint64_t)cpu);
    void *p[32];
    for (int r = 0; r < 2000; r++) {
        for (int i = 0; i < 32; i++)
            p[i] = smp_kalloc(1 + rng_below(&g, 3000));
        for (int i = 0; i < 32; i++)
            smp_kfree(p[i]);
    }
}

static void disk_work(int cpu, void *arg)
{
    (void)arg;
    for (uint64_t b = (uint64_t)cpu; b < 64; b += (uint64_t)NCPU) {
        struct smp_buf *buf = smp_bread(1, b);
        if (!buf)
            continue;
        ksnprintf((char *)buf->data, 64, "block %lu written by hart %d", (unsigned long)b, cpu);
        smp_bwrite(buf);
        smp_brelse(buf);
    }
}

int demo_main(void)
{
    kprintf("\n== smpmem on %d harts of QEMU virt ==\n", NCPU);
    suite_region(64 * MiB);
    kprintf("region: %lu pages managed\n\n1. every hart churns pages (bursts of 1-64)\n",
            (unsigned long)smp_pmm_total_pages());
    harts_run(NCPU, churn, 0);
    print_pcp();

    kprintf("\n2. hart 0 alone allocates every page: the others are idle in wfi and\n"
            "   hand their caches over when hart 0's cross-call IPI arrives\n");
    size_t n = 0, total = smp_pmm_total_pages();
    void **all = region_map(total * sizeof(void *), 0);
    void *p;
    while ((p = smp_page_alloc(0)) != 0)
        all[n++] = p;
    kprintf("   got %lu of %lu pages\n", (unsigned long)n, (unsigned long)total);
    print_pcp();
    while (n)
        smp_page_free(all[--n], 0);
    region_unmap(all, total * sizeof(void *), 0);

    kprintf("\n3. kalloc/kfree on every hart while every timer interrupt allocates too\n");
    timer_set_period_us(500);
    timer_hook = tick;
    harts_run(NCPU, kalloc_work, 0);
    timer_hook = 0;
    struct smp_kalloc_stats ks;
    smp_kalloc_stats(-1, &ks);
    kprintf("   %ld allocations in timer handlers; per class (bytes: slabs, cached objects):\n  ",
            atomic_load(&irq_allocs));
    for (int c = 0; c < SMP_KALLOC_CLASSES; c++)
        kprintf(" %lu:%lu,%lu", (unsigned long)ks.class_size[c], (unsigned long)ks.slabs[c],
                (unsigned long)ks.cached[c]);
    kprintf("\n   pmm_check: %s\n", smp_pmm_check() == 0 ? "ok" : "FAILED");

    kprintf("\n4. the buffer cache on the virtio disk (requests complete by interrupt)\n");
    if (virtio_blk_init(1, 1024) == 0 && smp_bcache_init(32, 1024) == 0) {
        smp_lock_stats_reset();
        harts_run(NCPU, disk_work, 0);
        kprintf("\n5. lock table (kmem and bcache locks of this step, and the disk's)\n");
        smp_lock_print();
        smp_bcache_reset();
        smp_bcache_init(32, 1024);
        struct smp_buf *b = smp_bread(1, 5);
        kprintf("   read back from the disk: \"%s\"\n", b ? (char *)b->data : "(failed)");
        if (b)
            smp_brelse(b);
        struct virtio_blk_stats vs;
        virtio_blk_stats(&vs);
        kprintf("   virtio: %lu reads, %lu writes, %lu interrupts\n", vs.reads, vs.writes, vs.irqs);
        smp_bcache_reset();
    } else {
        kprintf("   no virtio disk\n");
    }
    suite_region_done();
    return 0;
}
