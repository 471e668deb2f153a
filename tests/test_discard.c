/* The Linux ports' discard (port/linux/discard.h): it asks mincore which
 * pages are resident and drops those, in runs, so every page that was
 * touched must be gone afterwards -- at chunk boundaries, at the range's
 * ends, in dense runs and alone -- and a range it cannot ask about must
 * still be dropped whole. */
#define _GNU_SOURCE
#include "harness.h"
#include "../port/linux/discard.h"
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL

static size_t resident_pages(const char *p, size_t npages)
{
    static unsigned char vec[3 * DISCARD_CHUNK];
    size_t n = 0;
    if (npages > sizeof vec || mincore((void *)p, npages * PAGE, vec) != 0) {
        CHECK(0, "mincore of %zu pages failed", npages);
        return SIZE_MAX;
    }
    for (size_t i = 0; i < npages; i++)
        n += vec[i] & 1;
    return n;
}

static char *map_pages(size_t npages)
{
    char *p = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(p != MAP_FAILED, "mmap of %zu pages", npages);
    return p == MAP_FAILED ? NULL : p;
}

/* Pages touched where a bug in the walk would miss them: both ends, both
 * sides of every mincore chunk boundary, a dense run longer than the gap,
 * runs just closer and just farther apart than the gap, and seeded strays. */
TEST(every_touched_page_is_dropped)
{
    const size_t npages = 2 * DISCARD_CHUNK + 300;   /* three chunks, the last partial */
    char *p = map_pages(npages);
    REQUIRE(p, "no range to test");
    static unsigned char touched[2 * DISCARD_CHUNK + 300];
    for (size_t i = 0; i < npages; i++)
        touched[i] = 0;
    const size_t fixed[] = { 0, 1, DISCARD_CHUNK - 1, DISCARD_CHUNK, 2 * DISCARD_CHUNK - 1,
                             2 * DISCARD_CHUNK, npages - 1,
                             100, 100 + DISCARD_GAP - 1,        /* one call apart */
                             200, 200 + DISCARD_GAP,            /* two calls apart */
                             200 + 2 * DISCARD_GAP + 1 };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        touched[fixed[i]] = 1;
    for (size_t i = 0; i < 3 * DISCARD_GAP; i++)
        touched[1000 + i] = 1;                      /* a dense run */
    struct rng g = rng_for(1);
    for (int i = 0; i < 200; i++)
        touched[rng_below(&g, npages)] = 1;
    size_t want = 0;
    for (size_t i = 0; i < npages; i++)
        if (touched[i]) {
            p[i * PAGE + (i % PAGE)] = (char)(i | 1);
            want++;
        }
    CHECK(resident_pages(p, npages) == want, "%zu pages resident before, %zu touched",
          resident_pages(p, npages), want);

    CHECK(linux_discard(p, npages * PAGE) == 0, "linux_discard failed");
    CHECK(resident_pages(p, npages) == 0, "%zu pages still resident after the discard",
          resident_pages(p, npages));
    size_t kept = 0;
    for (size_t i = 0; i < npages; i++)
        if (touched[i] && p[i * PAGE + (i % PAGE)] != 0)
            kept++;
    CHECK(kept == 0, "%zu touched pages kept their contents", kept);
    munmap(p, npages * PAGE);
}

TEST(an_untouched_range_stays_untouched)
{
    const size_t npages = DISCARD_CHUNK + 7;
    char *p = map_pages(npages);
    REQUIRE(p, "no range to test");
    CHECK(linux_discard(p, npages * PAGE) == 0, "linux_discard of an untouched range failed");
    CHECK(resident_pages(p, npages) == 0, "the discard made pages resident");
    munmap(p, npages * PAGE);
}

/* A range with a hole is not one mapping: mincore refuses it, and the
 * fallback drops the whole range; Linux's madvise still acts on the mapped
 * parts and then reports the hole (ENOMEM), which reaches the caller. */
TEST(a_range_mincore_refuses_is_dropped_whole)
{
    char *p = map_pages(3);
    REQUIRE(p, "no range to test");
    REQUIRE(munmap(p + PAGE, PAGE) == 0, "munmap of the middle page");
    p[0] = 1;
    p[2 * PAGE] = 2;
    CHECK(linux_discard(p, 3 * PAGE) == -1, "a range with a hole reported success");
    CHECK(p[0] == 0 && p[2 * PAGE] == 0, "the mapped pages kept their contents (%d, %d)",
          p[0], p[2 * PAGE]);
    munmap(p, PAGE);
    munmap(p + 2 * PAGE, PAGE);
}

int main(void)
{
    return RUN_TESTS(every_touched_page_is_dropped, an_untouched_range_stays_untouched,
                     a_range_mincore_refuses_is_dropped_whole);
}
