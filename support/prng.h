/*
 * A small seeded PRNG (splitmix64), header-only, for tests, benchmarks and
 * the demo: the one copy of it in the tree.
 *
 *   struct prng r = prng_seed(seed, stream);   // e.g. stream = the CPU id
 *   uint64_t x = prng_next(&r);                // 64 uniform bits
 *   uint64_t k = prng_below(&r, 64);           // uniform in [0, 64)
 *   uint64_t s = prng_range(&r, 5, 128);       // uniform in [5, 128]
 *
 * The same (seed, stream) gives the same sequence on every platform, so a
 * failing test replays from its printed seed and every allocator in a
 * benchmark sees identical requests.  The state is the caller's: no locks,
 * no globals; a struct prng may be copied to fork a sequence.
 * Freestanding: needs only <stdint.h>.
 */
#ifndef SMPMEM_SUPPORT_PRNG_H
#define SMPMEM_SUPPORT_PRNG_H

#include <stdint.h>

struct prng { uint64_t s; };

/* The next 64 bits (splitmix64: add the golden-ratio increment, then mix). */
static inline uint64_t prng_next(struct prng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A generator for stream `stream` of seed `seed`: nearby seeds and streams
 * start far apart (one output is discarded to mix them). */
static inline struct prng prng_seed(uint64_t seed, uint64_t stream)
{
    struct prng r = { seed ^ (stream * 0x9e3779b97f4a7c15ULL) ^ 0x5bd1e995ULL };
    prng_next(&r);
    return r;
}

/* Uniform in [0, n) (modulo bias below 2^-40 for n < 2^24); 0 when n == 0. */
static inline uint64_t prng_below(struct prng *r, uint64_t n)
{
    return n ? prng_next(r) % n : 0;
}

/* Uniform in [lo, hi], both included; lo <= hi. */
static inline uint64_t prng_range(struct prng *r, uint64_t lo, uint64_t hi)
{
    uint64_t span = hi - lo + 1;
    return span ? lo + prng_next(r) % span : prng_next(r);
}

#endif
