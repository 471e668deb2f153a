/* Helpers shared by the kalloc tests: stamps and alignment. */
#ifndef SMPMEM_TEST_KALLOC_UTIL_H
#define SMPMEM_TEST_KALLOC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline size_t pow2_at_least(size_t n)
{
    size_t p = 8;
    while (p < n)
        p <<= 1;
    return p;
}

static inline int aligned_for(const void *p, size_t size)
{
    return ((uintptr_t)p & (pow2_at_least(size) - 1)) == 0;
}

/* Stamp the first and last bytes (and words, when they fit) of a block. */
static inline void stamp(void *p, size_t size, uint64_t tag)
{
    unsigned char *b = p;
    if (size >= 16) {
        memcpy(b, &tag, 8);
        uint64_t t2 = ~tag;
        memcpy(b + size - 8, &t2, 8);
    } else {
        b[0] = (unsigned char)tag;
        b[size - 1] = (unsigned char)(tag >> 8) | 1;
        if (size == 1)
            b[0] = (unsigned char)((tag >> 8) | 1);
    }
}

static inline int stamp_intact(const void *p, size_t size, uint64_t tag)
{
    const unsigned char *b = p;
    if (size >= 16) {
        uint64_t a, z;
        memcpy(&a, b, 8);
        memcpy(&z, b + size - 8, 8);
        return a == tag && z == ~tag;
    }
    if (size == 1)
        return b[0] == (unsigned char)((tag >> 8) | 1);
    return b[0] == (unsigned char)tag && b[size - 1] == (unsigned char)((tag >> 8) | 1);
}

#endif
