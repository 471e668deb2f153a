/*
 * The C library's allocation calls, as the C standard, POSIX and glibc
 * promise them: run with build/libsmpmem-malloc.so preloaded (it also
 * passes under glibc, except the check that smpmem is the one answering,
 * which is skipped unless SMPMEM_EXPECT=1).  Last line: "N passed, N failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A failed realloc leaves the block to the caller: freeing it is right. */
#pragma GCC diagnostic ignored "-Wuse-after-free"

static int passed, failed;
#define CHECK(cond) do { if (cond) passed++; else { failed++; \
    printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } } while (0)

/* Allocated before main: the allocator must initialise on its own. */
static char *early;
__attribute__((constructor(101))) static void before_main(void)
{
    early = malloc(100);
    if (early)
        strcpy(early, "constructor");
}

/* Opaque to the compiler, which would otherwise fold or warn about them. */
static volatile size_t huge = SIZE_MAX, half = SIZE_MAX / 2, big32 = (size_t)1 << 32,
                       quarter = SIZE_MAX / 4;

static int aligned(void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

int main(void)
{
    CHECK(early && strcmp(early, "constructor") == 0);
    free(early);

    /* malloc(0) is a unique pointer that can be freed. */
    void *z1 = malloc(0), *z2 = malloc(0);
    CHECK(z1 && z2 && z1 != z2);
    free(z1);
    free(z2);
    free(NULL);

    /* Every size, written whole, default alignment 16 from 16 bytes up. */
    for (size_t n = 1; n <= (1 << 20); n = n * 3 / 2 + 1) {
        unsigned char *p = malloc(n);
        CHECK(p != NULL);
        if (!p) continue;
        memset(p, 0xa5, n);
        CHECK(malloc_usable_size(p) >= n);
        if (n >= 16) CHECK(aligned(p, 16));
        free(p);
    }
    if (getenv("SMPMEM_EXPECT")) {
        void *p = malloc(100);
        CHECK(malloc_usable_size(p) == 128);   /* smpmem answers: power-of-two blocks */
        free(p);
        /* 4 KiB is the core's largest class, which the thread cache leaves
         * to kfree: freed, the block is on top of the core's magazine, and
         * the next 4 KiB request (the core's too) gets it straight back. */
        for (int i = 0; i < 100; i++) {
            void *a = malloc(3000), *b = malloc(4096);
            CHECK(a && b && aligned(a, 4096) && aligned(b, 4096) && malloc_usable_size(a) == 4096);
            free(a);
            void *c = malloc(4096);
            CHECK(c == a);
            free(b);
            free(c);
        }
    }

    /* Exhaustion and overflow: NULL and ENOMEM. */
    errno = 0;
    CHECK(malloc(huge) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc(half) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(half, 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(big32, big32) == NULL && errno == ENOMEM);
    errno = 0;
    void *ra = malloc(8);
    CHECK(reallocarray(ra, quarter, 8) == NULL && errno == ENOMEM);
    free(ra);                                   /* untouched by the failure */
    errno = 0;
    void *big = malloc(64);
    CHECK(realloc(big, huge - 4096) == NULL && errno == ENOMEM);
    free(big);

    /* calloc zeroes, also memory that was used before. */
    for (int round = 0; round < 2; round++) {
        for (size_t n = 8; n <= (1 << 18); n *= 4) {
            unsigned char *d = malloc(n);
            memset(d, 0xff, n);
            free(d);
            unsigned char *c = calloc(n, 1);
            size_t bad = 0;
            for (size_t i = 0; i < n; i++) bad += c[i] != 0;
            CHECK(bad == 0);
            free(c);
        }
    }

    /* realloc keeps the contents, grows and shrinks, NULL acts as malloc. */
    unsigned char *r = realloc(NULL, 10);
    CHECK(r != NULL);
    for (int i = 0; i < 10; i++) r[i] = (unsigned char)i;
    size_t sizes[] = { 20, 3000, 100000, 5, 70000, 1 << 21, 12 };
    int intact = 1;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        r = realloc(r, sizes[k]);
        if (!r) { intact = 0; break; }
        for (int i = 0; i < 5; i++) intact &= r[i] == i;
    }
    CHECK(intact);
    unsigned char *ra2 = reallocarray(r, 100, 10);
    CHECK(ra2 && ra2[4] == 4);
    free(ra2);

    /* Alignment calls. */
    for (size_t a = sizeof(void *); a <= (1 << 22); a *= 2) {
        void *p = NULL;
        CHECK(posix_memalign(&p, a, 24) == 0 && p && aligned(p, a));
        free(p);
        p = aligned_alloc(a, a * 2);
        CHECK(p && aligned(p, a));
        free(p);
        p = memalign(a, 1);
        CHECK(p && aligned(p, a));
        free(p);
    }
    void *q = (void *)1;
    CHECK(posix_memalign(&q, 24, 8) == EINVAL && q == (void *)1);
    CHECK(posix_memalign(&q, 4, 8) == EINVAL);
    CHECK(posix_memalign(&q, 0, 8) == EINVAL);
    errno = 0;
    void *v = valloc(10);
    CHECK(v && aligned(v, 4096));
    free(v);
    v = pvalloc(5000);
    CHECK(v && aligned(v, 4096) && malloc_usable_size(v) >= 8192);
    free(v);
    CHECK(malloc_usable_size(NULL) == 0);

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
