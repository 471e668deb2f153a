/* The naming rule: short names are opt-in (SMPMEM_SHORT_NAMES), so a kernel
 * that owns `void *kalloc(void)` and `void kfree(void *)` (xv6), or a
 * `static void *kalloc(size_t)` and `pmm_init` (NJU's pmm lab skeleton),
 * includes every header as it is and calls the smp_ names; its own stay
 * its own.  The buffer type takes the kernel's name (SMPMEM_BUF_NAME) and
 * has fields for the block driver. */
#undef SMPMEM_SHORT_NAMES              /* the build turns them on for tests: a kernel would not */
#define SMPMEM_BUF_NAME buf
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/bcache.h>
#include <smpmem/bdev.h>
#include <smpmem/bio_debug.h>
#include <smpmem/spinlock.h>
#include "harness.h"
#include <stdint.h>

/* xv6's page allocator interface, the kernel's own. */
static char xv6_page[4096] __attribute__((aligned(4096)));
static int xv6_calls;
void *kalloc(void);
void kfree(void *pa);
void *kalloc(void) { xv6_calls++; return xv6_page; }
void kfree(void *pa) { (void)pa; xv6_calls++; }
/* NJU's skeleton: its own static pmm_init. */
static int pmm_init(void) { return 42; }

/* xv6's fs code and driver speak of struct buf and b->disk. */
static int driver_marks(struct buf *b)
{
    b->disk = 1;
    b->driver = b;
    return b->disk == 1 && b->driver == b && b->data != NULL;
}

#define MiB (1UL << 20)

TEST(kernel_keeps_its_own_kalloc)
{
    char *r = region_map(64 * MiB, 0);
    REQUIRE(smp_pmm_init(r, r + 64 * MiB, 2) == 0, "init");
    void *own = kalloc();
    CHECK(own == xv6_page && xv6_calls == 1, "the kernel's kalloc is called");
    void *obj = smp_kalloc(100);
    CHECK(obj != NULL && obj != xv6_page && (char *)obj >= r && (char *)obj < r + 64 * MiB,
          "smp_kalloc serves from the region");
    CHECK(((uintptr_t)obj & 127) == 0, "aligned to 128");
    smp_kfree(obj);
    kfree(own);
    CHECK(xv6_calls == 2, "the kernel's kfree is called");
    CHECK(pmm_init() == 42, "the skeleton's pmm_init is its own");
    REQUIRE(smp_bcache_init(8, 512) == 0, "bcache");
    REQUIRE(smp_ramdisk_create(3, 16, 512) == 0, "ramdisk");
    struct buf *b = smp_bread(3, 5);
    REQUIRE(b != NULL, "bread as struct buf");
    CHECK(driver_marks(b), "driver fields");
    smp_brelse(b);
    CHECK(smp_bcache_reset() == 0, "bcache reset");
    smp_bdev_reset();
    void *pg = smp_page_alloc(0);
    CHECK(pg != NULL, "smp_page_alloc");
    smp_page_free(pg, 0);
    smp_pmm_drain();
    CHECK(smp_pmm_free_pages() == smp_pmm_total_pages(), "recovered");
    CHECK(smp_pmm_check() == 0, "check");
    smp_pmm_reset();
    region_unmap(r, 64 * MiB, 0);
}

int main(void)
{
    return RUN_TESTS(kernel_keeps_its_own_kalloc);
}
