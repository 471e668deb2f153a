/* The naming rule: a kernel that owns `void *kalloc(void)` and
 * `void kfree(void *)` (xv6) links with smpmem by defining
 * SMPMEM_NO_SHORT_NAMES and calling the smp_ names; its own kalloc stays
 * its own.  Every public header must compile in this mode. */
#define SMPMEM_NO_SHORT_NAMES
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/bcache.h>
#include <smpmem/bdev.h>
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
