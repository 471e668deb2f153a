/* The stamped page churn that the hosted page tests (test_pages_smp.c) and
 * the riscv64 kernel's suite (port/riscv64/suite/suite_pages.c) both run on
 * every CPU: bursts of 1..64 pages, each stamped in its first, middle and
 * last words with (cpu, sequence), verified and freed.  A page handed to two
 * CPUs at once shows as an overwritten stamp; NULL under this low pressure
 * is a failure too.  Needs the harness's CHECK and rng (harness.h). */
#ifndef SMPMEM_TEST_PAGE_CHURN_H
#define SMPMEM_TEST_PAGE_CHURN_H

#include <stdint.h>
#include <smpmem/pmm.h>
#include "harness.h"

static inline uint64_t page_stamp_of(int cpu, uint64_t seq)
{
    return ((uint64_t)cpu << 56) ^ (seq * 0x9e3779b97f4a7c15ULL);
}

static inline void stamped_page_churn(int cpu, long rounds)
{
    struct rng g = rng_for((uint64_t)cpu);
    uint64_t *pages[64], stamps[64];
    for (long r = 0; r < rounds; r++) {
        int k = 1 + (int)rng_below(&g, 64), n = 0;
        for (; n < k; n++) {
            pages[n] = smp_page_alloc(0);
            if (!pages[n])
                break;
            stamps[n] = page_stamp_of(cpu, (uint64_t)r * 64 + (uint64_t)n);
            pages[n][0] = stamps[n];
            pages[n][256] = stamps[n] + 1;
            pages[n][511] = ~stamps[n];
        }
        CHECK(n == k, "cpu %d: page_alloc gave NULL under low pressure", cpu);
        for (int i = 0; i < n; i++) {
            CHECK(pages[i][0] == stamps[i] && pages[i][256] == stamps[i] + 1 &&
                  pages[i][511] == ~stamps[i], "cpu %d: page %p overwritten by someone else",
                  cpu, (void *)pages[i]);
            smp_page_free(pages[i], 0);
        }
    }
}

#endif
