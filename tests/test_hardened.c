/* The hardened default (issue 10): misuse that used to pass silently or
 * crash inside the allocator now stops at its cause with the address and
 * the reason.  Each case runs in a child and must panic with the message;
 * each also has a clean twin that must not.  (The checked build,
 * SMP_CHECKED, catches more: tests/test_checked.c.) */
#include "harness.h"
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1UL << 20)

#ifndef SMP_CHECKED
static char expect[128];
static uintptr_t victim;

/* A write into a freed object's link, then the allocations that reach it. */
static void use_after_free_write(void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    char *p = kalloc(size);
    kfree(p);
    memset(p, 0x41, 8);                 /* the bug: p is free */
    void *again = kalloc(size);         /* LIFO: p itself, its link now followed */
    (void)again;
    kalloc(size);                       /* must stop here, naming p */
}

static void use_after_free_address(size_t size)
{
    /* The same sequence, allocation only, to learn which address the child
     * will report (allocation is deterministic from a fresh state). */
    char *p = kalloc(size);
    kfree(p);
    victim = (uintptr_t)p;
}

TEST(write_after_free_is_reported_as_that_object)
{
    pmm_setup(64 * MiB, 1);
    static const size_t sizes[] = { 8, 64, 2048 };
    for (unsigned i = 0; i < 3; i++) {
        use_after_free_address(sizes[i]);
        snprintf(expect, sizeof expect, "kalloc(0x%lx): free object corrupted", (unsigned long)victim);
        CHECK(expect_panic(use_after_free_write, (void *)(uintptr_t)sizes[i], expect),
              "size %zu: a write into a freed object is reported at its address", sizes[i]);
    }
    /* Control: the same sequence without the write runs clean. */
    char *p = kalloc(64);
    kfree(p);
    CHECK(kalloc(64) == p && kalloc(64) != NULL, "clean twin");
    pmm_teardown();
}

#endif

static void double_free(void *arg)
{
    char *p = kalloc((size_t)(uintptr_t)arg);
    kfree(p);
    kfree(p);
}

TEST(immediate_double_free_of_a_cached_object_panics)
{
    pmm_setup(64 * MiB, 2);
    static const size_t sizes[] = { 8, 24, 1000, 2048 };
    for (unsigned i = 0; i < 4; i++)
        CHECK(expect_panic(double_free, (void *)(uintptr_t)sizes[i], "double free"),
              "size %zu: kfree twice in a row", sizes[i]);
    /* Control: free, reallocate, free again is fine. */
    char *p = kalloc(24);
    kfree(p);
    char *q = kalloc(24);
#ifndef SMP_CHECKED
    CHECK(q == p, "LIFO reuse");
#endif
    kfree(q);
    CHECK(pmm_check() == 0, "check");
    pmm_teardown();
}

#ifndef SMP_CHECKED
/* A one-byte overflow past a 64-byte object into its free neighbour. */
static void overflow_into_free_neighbour(void *arg)
{
    (void)arg;
    char *obj[32];
    for (int i = 0; i < 32; i++)
        obj[i] = kalloc(64);
    /* Find two neighbours a, b = a + 64. */
    char *a = NULL;
    for (int i = 0; i < 32 && !a; i++)
        for (int j = 0; j < 32; j++)
            if (obj[j] == obj[i] + 64) {
                a = obj[i];                 /* its neighbour obj[j] is freed below */
                break;
            }
    if (!a)
        abort();
    for (int i = 0; i < 32; i++)
        if (obj[i] != a)
            kfree(obj[i]);
    a[64] ^= 0x5a;                      /* the bug: one byte past a, into b's link */
    for (int i = 0; i < 64; i++)         /* allocate until b's link is followed */
        kalloc(64);
}

TEST(overflow_into_a_free_neighbour_is_caught)
{
    pmm_setup(64 * MiB, 1);
    CHECK(expect_panic(overflow_into_free_neighbour, NULL, "free object corrupted"),
          "a one-byte overflow into a free object's link");
    pmm_teardown();
}

#endif

int main(void)
{
#ifdef SMP_CHECKED
    /* The checked build quarantines freed blocks, so the free-list cases
     * (which reuse the block at once) are test_checked.c's there. */
    return RUN_TESTS(immediate_double_free_of_a_cached_object_panics);
#else
    return RUN_TESTS(write_after_free_is_reported_as_that_object,
                     immediate_double_free_of_a_cached_object_panics,
                     overflow_into_a_free_neighbour_is_caught);
#endif
}
