/*
 * The test harness shared by every test program.
 *
 *   TEST(name) { ... CHECK(cond, "fmt", ...); ... }
 *   int main(void) { return RUN_TESTS(test_a, test_b); }
 *
 * Each test runs with a seed (SMP_SEED from the environment, else from the
 * clock); a failed CHECK prints file:line, the message and the seed, so
 * `SMP_SEED=n ./test` replays it.  The last line is "N passed, N failed".
 * CHECK is thread-safe; REQUIRE also returns from the current function.
 * SMP_TEST_SCALE (percent, default 100) scales iteration counts: sanitizer
 * runs use less.
 */
#ifndef SMPMEM_TEST_HARNESS_H
#define SMPMEM_TEST_HARNESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "../support/prng.h"
#include "../support/vcpus.h"

typedef void (*test_fn)(void);
struct test_case { const char *name; test_fn fn; };

#define TEST(name) static void name(void)
#define RUN_TESTS(...) \
    test_main((struct test_case[]){ TEST_CASES_(__VA_ARGS__) }, \
              sizeof((struct test_case[]){ TEST_CASES_(__VA_ARGS__) }) / sizeof(struct test_case))
#define TC_(f) { #f, f }
#define TEST_CASES_(...) TC_MAP_(__VA_ARGS__)
/* Up to 24 tests per program. */
#define TC_MAP_(...) TC_PICK_(__VA_ARGS__, TC24_, TC23_, TC22_, TC21_, TC20_, TC19_, TC18_, TC17_, TC16_, TC15_, TC14_, TC13_, TC12_, TC11_, TC10_, TC9_, TC8_, TC7_, TC6_, TC5_, TC4_, TC3_, TC2_, TC1_)(__VA_ARGS__)
#define TC_PICK_(_1,_2,_3,_4,_5,_6,_7,_8,_9,_10,_11,_12,_13,_14,_15,_16,_17,_18,_19,_20,_21,_22,_23,_24,N,...) N
#define TC1_(a) TC_(a)
#define TC2_(a,...) TC_(a), TC1_(__VA_ARGS__)
#define TC3_(a,...) TC_(a), TC2_(__VA_ARGS__)
#define TC4_(a,...) TC_(a), TC3_(__VA_ARGS__)
#define TC5_(a,...) TC_(a), TC4_(__VA_ARGS__)
#define TC6_(a,...) TC_(a), TC5_(__VA_ARGS__)
#define TC7_(a,...) TC_(a), TC6_(__VA_ARGS__)
#define TC8_(a,...) TC_(a), TC7_(__VA_ARGS__)
#define TC9_(a,...) TC_(a), TC8_(__VA_ARGS__)
#define TC10_(a,...) TC_(a), TC9_(__VA_ARGS__)
#define TC11_(a,...) TC_(a), TC10_(__VA_ARGS__)
#define TC12_(a,...) TC_(a), TC11_(__VA_ARGS__)
#define TC13_(a,...) TC_(a), TC12_(__VA_ARGS__)
#define TC14_(a,...) TC_(a), TC13_(__VA_ARGS__)
#define TC15_(a,...) TC_(a), TC14_(__VA_ARGS__)
#define TC16_(a,...) TC_(a), TC15_(__VA_ARGS__)
#define TC17_(a,...) TC_(a), TC16_(__VA_ARGS__)
#define TC18_(a,...) TC_(a), TC17_(__VA_ARGS__)
#define TC19_(a,...) TC_(a), TC18_(__VA_ARGS__)
#define TC20_(a,...) TC_(a), TC19_(__VA_ARGS__)
#define TC21_(a,...) TC_(a), TC20_(__VA_ARGS__)
#define TC22_(a,...) TC_(a), TC21_(__VA_ARGS__)
#define TC23_(a,...) TC_(a), TC22_(__VA_ARGS__)
#define TC24_(a,...) TC_(a), TC23_(__VA_ARGS__)

int test_main(const struct test_case *cases, size_t n);

void check_failed(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define CHECK(cond, ...) \
    do { if (!(cond)) check_failed(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define REQUIRE(cond, ...) \
    do { if (!(cond)) { check_failed(__FILE__, __LINE__, __VA_ARGS__); return; } } while (0)

/* Failures so far in the current test (any thread). */
int test_failures(void);

/* The current test's seed, and a PRNG stream derived from it (the PRNG of
 * support/prng.h; these names are the tests' short forms of it). */
uint64_t test_seed(void);
struct rng { struct prng p; };
static inline struct rng rng_for(uint64_t stream)     /* stream: e.g. the CPU id */
{ return (struct rng){ prng_seed(test_seed(), stream) }; }
static inline uint64_t rng_next(struct rng *r) { return prng_next(&r->p); }
static inline uint64_t rng_below(struct rng *r, uint64_t n)  /* uniform in [0, n) */
{ return prng_below(&r->p, n); }

/* Iteration count n scaled by SMP_TEST_SCALE percent (at least 1). */
long scaled(long n);

/* Run fn(cpu, arg) on ncpu threads, each bound to its virtual CPU, all
 * released together by a barrier; returns when all have finished.  A CPU
 * that returns with interrupts pushed off fails the test.  (vcpus_run of
 * support/vcpus.h, 1 <= ncpu <= VCPUS_MAX.) */
void run_on_cpus(int ncpu, void (*fn)(int cpu, void *arg), void *arg);

/* A barrier for the threads of one run_on_cpus call. */
static inline void cpus_barrier(void) { vcpus_barrier(); }

/* mmap a region of bytes (MAP_NORESERVE: untouched pages cost nothing);
 * the returned pointer is offset by `skew` bytes from the mapping start. */
void *region_map(size_t bytes, size_t skew);
void region_unmap(void *p, size_t bytes, size_t skew);

/* The usual fixture: map size bytes (region_map) and smp_pmm_init them for
 * ncpu CPUs, aborting on failure; test_region and test_region_size say
 * where.  pmm_teardown resets smpmem and unmaps. */
extern char *test_region;
extern size_t test_region_size;
void pmm_setup(size_t size, int ncpu);
void pmm_teardown(void);

/* Run fn(arg) in a child process; pass iff it panics (SIGABRT) and its
 * stderr contains `expect`.  The child's message is printed on mismatch. */
int expect_panic(void (*fn)(void *arg), void *arg, const char *expect);

#endif
