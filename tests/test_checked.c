/* The checked build (make CHECKED=1, issue 10): every misuse stops with the
 * address and the reason, at the free or at the next allocation of that
 * memory at the latest.  One case per kind, each in a child that must die
 * with its message; the whole suite also runs in this build, so correct
 * programs run clean.  In the default build this file checks the contrary:
 * nothing of the checked build is there (no trailer, no quarantine). */
#include "harness.h"
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/hosted.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/kalloc/top.h"

#define MiB (1UL << 20)

#ifdef SMP_CHECKED
static char expect[160];

static void overflow(void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    char *p = kalloc(size);
    p[size] = 1;                         /* one byte past the requested size */
    kfree(p);
}

TEST(overflow_past_the_requested_size)
{
    pmm_setup(64 * MiB, 1);
    static const size_t sizes[] = { 1, 60, 100, 2040, 5000, 70000 };
    for (unsigned i = 0; i < 6; i++) {
        snprintf(expect, sizeof expect, "overflow past the requested size (requested size %zu, offset %zu)",
                 sizes[i], sizes[i]);
        CHECK(expect_panic(overflow, (void *)(uintptr_t)sizes[i], expect), "size %zu", sizes[i]);
    }
    /* Writing every requested byte is fine. */
    char *p = kalloc(100);
    memset(p, 0x55, 100);
    CHECK(smp_kalloc_usable_size(p) == 100, "usable size is what was asked");
    kfree(p);
    pmm_teardown();
}

static void double_free_any(void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    char *p = kalloc(size);
    kfree(p);
    for (int i = 0; i < 10; i++)         /* not immediate: other traffic between */
        kfree(kalloc(size));
    kfree(p);
}

static char *shared;
static void free_on_cpu1(int cpu, void *arg)
{
    (void)arg;
    if (cpu == 1)
        kfree(shared);
}

static void double_free_remote(void *arg)
{
    (void)arg;
    shared = kalloc(48);
    run_on_cpus(2, free_on_cpu1, NULL);   /* first free on CPU 1 */
    kfree(shared);                        /* second on CPU 0 */
}

TEST(double_free_of_any_size_and_from_any_cpu)
{
    pmm_setup(64 * MiB, 2);
    static const size_t sizes[] = { 8, 200, 3000, 100000 };
    for (unsigned i = 0; i < 4; i++)
        CHECK(expect_panic(double_free_any, (void *)(uintptr_t)sizes[i], "double free"), "size %zu", sizes[i]);
    CHECK(expect_panic(double_free_remote, NULL, "double free"), "first free on another CPU");
    pmm_teardown();
}

static void write_after_free(void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    char *p = kalloc(size);
    kfree(p);
    p[size / 2] = 7;                     /* the bug */
    pmm_drain();                         /* the block leaves the quarantine: verified */
}

TEST(use_after_free_is_caught_before_reuse)
{
    pmm_setup(64 * MiB, 1);
    static const size_t sizes[] = { 16, 100, 4000, 50000 };
    for (unsigned i = 0; i < 4; i++)
        CHECK(expect_panic(write_after_free, (void *)(uintptr_t)sizes[i], "use after free"), "size %zu", sizes[i]);
    /* And the quarantine delays reuse: 100 frees, none of them handed out again. */
    char *freed[100];
    for (int i = 0; i < 100; i++)
        freed[i] = kalloc(64);
    for (int i = 0; i < 100; i++)
        kfree(freed[i]);
    int reused = 0;
    for (int i = 0; i < 100; i++) {
        char *q = kalloc(64);
        for (int k = 0; k < 100; k++)
            reused += q == freed[k];
    }
    CHECK(reused == 0, "%d of 100 just-freed blocks handed out again at once", reused);
    pmm_teardown();
}

static void kfree_interior(void *a) { (void)a; char *p = kalloc(200); kfree(p + 16); }
static void kfree_foreign(void *a) { (void)a; static char x[64]; kfree(x); }
static void kfree_page_block(void *a) { (void)a; kfree(page_alloc(0)); }
static void kfree_never_allocated(void *a) { kfree(a); }
static void wrong_order(void *a) { (void)a; page_free(page_alloc(2), 1); }

/* Memory never handed out: the last page of a fresh region lies inside a
 * free buddy block.  (A slab is always carved whole by the refill that
 * creates it -- a magazine holds at least a slab's worth -- so an object
 * a slab never handed out cannot be reached; the checked kfree still
 * refuses one, smp_slab_never_used.) */
static void *never_allocated(void)
{
    struct smp_pages *pg = &smp_pmm_state->pg;
    return (void *)smp_page_addr(pg, pg->npages - 1);
}

TEST(bad_pointers_and_orders)
{
    pmm_setup(64 * MiB, 1);
    CHECK(expect_panic(kfree_interior, NULL, "not at a block start"), "interior");
    CHECK(expect_panic(kfree_foreign, NULL, "outside the managed region"), "foreign");
    CHECK(expect_panic(kfree_page_block, NULL, "never came from kalloc"), "a page_alloc block");
    CHECK(expect_panic(kfree_never_allocated, never_allocated(), "not allocated"), "never handed out");
    CHECK(expect_panic(wrong_order, NULL, "freed with order 1 but allocated with order 2"), "page order");
    pmm_teardown();
}

int main(void)
{
    return RUN_TESTS(overflow_past_the_requested_size, double_free_of_any_size_and_from_any_cpu,
                     use_after_free_is_caught_before_reuse, bad_pointers_and_orders);
}
#else
TEST(default_build_has_no_checked_mode)
{
    pmm_setup(64 * MiB, 1);
    char *p = kalloc(100);
    CHECK(smp_kalloc_usable_size(p) == 128, "the default build's usable size is the class size");
    p[127] = 1;                          /* the whole class is the caller's */
    kfree(p);
    CHECK(pmm_check() == 0, "check");
    pmm_teardown();
}

int main(void)
{
    return RUN_TESTS(default_build_has_no_checked_mode);
}
#endif
