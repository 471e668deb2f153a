/*
 * The bare-metal backend of tests/harness.h: the same TEST/CHECK/REQUIRE,
 * seeded rng streams, scaled() and run_on_cpus() the hosted tests use,
 * with harts instead of threads and the kernel command line instead of the
 * environment:
 *   seed=N    replay a failure (SMP_SEED)      scale=PCT  (SMP_TEST_SCALE)
 *   test=NAME run one test (SMP_TEST)
 * Differences from hosted: region_map carves memory from a stack-like arena
 * (unmap in reverse order, which releases everything mapped after it);
 * expect_panic cannot fork, so it fails loudly (the panic tests stay hosted);
 * test_main prints a subtotal per group and suite_total() the last line.
 */
#include "../../../tests/harness.h"
#include "../kernel/kernel.h"
#include <smpmem/port.h>

extern char end[];                 /* first byte after the kernel image */

static atomic_int failures;
static uint64_t seed;
static const char *current_test;
static int total_passed, total_failed;
static uintptr_t arena_top;

void check_failed(const char *file, int line, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kprintf("  FAIL %s:%d (%s, hart %d, seed=%lu): %s\n", file, line, current_test,
            (int)rv_tp(), (unsigned long)seed, msg);
    atomic_fetch_add(&failures, 1);
}

int test_failures(void) { return atomic_load(&failures); }
uint64_t test_seed(void) { return seed; }

long scaled(long n)
{
    long v = n * bootarg_num("scale", 100) / 100;
    return v < 1 ? 1 : v;
}

/* ---- harts as CPUs ------------------------------------------------------ */
static int run_n;
static atomic_int bar_count, bar_sense;

void vcpus_barrier(void)
{
    int sense = atomic_load_explicit(&bar_sense, memory_order_acquire);
    if (atomic_fetch_add_explicit(&bar_count, 1, memory_order_acq_rel) + 1 == run_n) {
        atomic_store_explicit(&bar_count, 0, memory_order_relaxed);
        atomic_store_explicit(&bar_sense, !sense, memory_order_release);
    } else {
        while (atomic_load_explicit(&bar_sense, memory_order_acquire) == sense) {
            rv_xcall_poll();        /* we may wait with interrupts pushed off */
            smp_port_relax();
        }
    }
}

void run_on_cpus(int ncpu, void (*fn)(int cpu, void *arg), void *arg)
{
    run_n = ncpu;
    atomic_store(&bar_count, 0);
    int broken = harts_run(ncpu, fn, arg);
    if (broken)
        check_failed(__FILE__, __LINE__, "%d harts finished with interrupts pushed off", broken);
}

/* ---- memory --------------------------------------------------------------- */
void *region_map(size_t bytes, size_t skew)
{
    if (!arena_top)
        arena_top = ((uintptr_t)end + 4095) & ~4095UL;
    uintptr_t p = arena_top;
    if (p + skew + bytes > boot.ram_end || p + skew + bytes < p)
        smp_port_panic("region_map: the test asks for more memory than QEMU was given (-m)");
    arena_top = (p + skew + bytes + 4095) & ~4095UL;
    return (void *)(p + skew);
}

void region_unmap(void *p, size_t bytes, size_t skew)
{
    (void)bytes;
    arena_top = (uintptr_t)p - skew;
}

size_t region_available(void)
{
    if (!arena_top)
        arena_top = ((uintptr_t)end + 4095) & ~4095UL;
    return boot.ram_end - arena_top;
}

int expect_panic(void (*fn)(void *arg), void *arg, const char *expect)
{
    (void)fn;
    (void)arg;
    kprintf("  expect_panic(\"%s\"): not available on bare metal (a panic powers off)\n", expect);
    return 0;
}

/* ---- running tests -------------------------------------------------------- */
int test_main(const struct test_case *cases, size_t n)
{
    char only[64];
    int want_one = bootarg_str("test", only, sizeof only);
    long fixed = bootarg_num("seed", -1);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (want_one && strcmp(only, cases[i].name))
            continue;
        seed = fixed >= 0 ? (uint64_t)fixed : rv_time() * 1000003u + i * 7919u;
        current_test = cases[i].name;
        atomic_store(&failures, 0);
        uint64_t t0 = rv_time();
        cases[i].fn();
        unsigned long ms = (unsigned long)((rv_time() - t0) / (RV_TIMEBASE_HZ / 1000));
        if (atomic_load(&failures)) {
            kprintf("FAIL %s (seed=%lu, %lu ms)\n", cases[i].name, (unsigned long)seed, ms);
            failed++;
        } else {
            kprintf("ok   %s (%lu ms)\n", cases[i].name, ms);
            passed++;
        }
    }
    total_passed += passed;
    total_failed += failed;
    return failed;
}

int suite_total(void)
{
    kprintf("%d passed, %d failed\n", total_passed, total_failed);
    return total_failed;
}
