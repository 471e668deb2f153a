/* The non-relaxed memory orders in src/ protect something a test can see.
 * Each test below uses one ordered access pair the way the core relies on
 * it, from two CPUs at once; under ThreadSanitizer (make check's TSan
 * variants) weakening that pair to relaxed turns the test into a data
 * race report, which `make orders` (scripts/check-orders.sh) proves by
 * doing it, one pair at a time:
 *   spinlock acquire exchange / release store   spinlock_inline.h, spinlock.c
 *   the lock registry's flag                    spinlock.c registry_enter/leave
 *   the device table's guard                    bdev.c guard_enter/leave
 *   a device entry's `present` publication      bdev.c register / entry_of
 * The plain and ASan variants check the same results without the race
 * detector (on x86 only the compiler could break them). */
#define _GNU_SOURCE
#include "harness.h"
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <smpmem/bdev.h>
#include <smpmem/bio_debug.h>
#include <smpmem/spinlock.h>

/* ---- a spinlock orders its critical sections -------------------------- */

static struct smp_spinlock counter_lock;
static unsigned long counter;          /* plain: only the lock orders it */

/* Whose turn it is in the opening handover (relaxed: it orders nothing
 * for the race detector, so the lock is the only order between the two
 * CPUs' increments). */
static atomic_int turn;
#define HANDOVERS 64

static void count_under_lock(int cpu, void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        /* The first increments alternate between the CPUs, so both are
         * alive and interleaved however the host schedules them: a CPU
         * that ran its whole loop alone, and had exited, before the other
         * began could leave TSan unable to report the race at all. */
        if (i < HANDOVERS)
            while (atomic_load_explicit(&turn, memory_order_relaxed) != cpu)
                sched_yield();
        smp_lock_acquire(&counter_lock);
        counter++;
        smp_lock_release(&counter_lock);
        if (i < HANDOVERS)
            atomic_store_explicit(&turn, !cpu, memory_order_relaxed);
    }
}

TEST(spinlock_orders_critical_sections)
{
    long n = scaled(20000);
    smp_lock_init(&counter_lock, "orders.counter");
    counter = 0;
    atomic_store(&turn, 0);
    run_on_cpus(2, count_under_lock, &n);
    CHECK(counter == (unsigned long)(2 * n), "counter %lu, want %ld", counter, 2 * n);
    smp_lock_forget_range(&counter_lock, &counter_lock + 1);
}

/* ---- the lock registry's flag orders registrations -------------------- */

static struct smp_spinlock many[2][32];

static void register_locks(int cpu, void *arg)
{
    long rounds = *(long *)arg;
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < 32; i++)
            smp_lock_init(&many[cpu][i], "orders.many");
        smp_lock_forget_range(&many[cpu][0], &many[cpu][32]);
    }
}

TEST(lock_registry_orders_registrations)
{
    long rounds = scaled(2000);
    run_on_cpus(2, register_locks, &rounds);
    char report[8192];
    smp_lock_report(report, sizeof report);
    CHECK(!strstr(report, "orders.many"), "a forgotten lock is still in the report");
}

/* ---- the device table's guard and a device's publication --------------- */

struct tiny_dev { uint64_t value; };

static int tiny_read(void *ctx, uint64_t b, void *dst)
{
    (void)b;
    memcpy(dst, &((struct tiny_dev *)ctx)->value, 8);
    return 0;
}

static int tiny_write(void *ctx, uint64_t b, const void *src)
{
    (void)b;
    memcpy(&((struct tiny_dev *)ctx)->value, src, 8);
    return 0;
}

static struct tiny_dev devs[2];
/* Each round's ops table is new memory written just before registering,
 * so a reader that saw `present` without its order would read it stale. */
static struct smp_bdev_ops round_ops[2];

/* The last round the reader has started polling in (relaxed, so it
 * orders nothing for the race detector): CPU 0 publishes only once the
 * reader polls.  Without it, on a loaded host the reader often came to
 * look only after the device was published, and TSan then missed the
 * race the weakened order makes (make orders failed under load). */
static atomic_long reader_polls;

static void publish(int cpu, void *arg)
{
    long rounds = *(long *)arg;
    for (long r = 1; r <= rounds; r++) {
        cpus_barrier();
        if (cpu == 0) {
            while (atomic_load_explicit(&reader_polls, memory_order_relaxed) < r)
                sched_yield();
            struct smp_bdev_ops *ops = &round_ops[r & 1];
            ops->read = tiny_read;
            ops->write = tiny_write;
            devs[r & 1].value = (uint64_t)r;
            CHECK(bdev_register(7, ops, &devs[r & 1], 8, 1) == 0, "register round %ld", r);
        } else {
            atomic_store_explicit(&reader_polls, r, memory_order_relaxed);
            while (!bdev_present(7))
                sched_yield();
            uint64_t got = 0;
            CHECK(bdev_read(7, 0, &got) == 0 && got == (uint64_t)r,
                  "round %ld: a fresh device read %llu", r, (unsigned long long)got);
        }
        cpus_barrier();
        if (cpu == 0)
            CHECK(bdev_unregister(7) == 0, "unregister round %ld", r);
    }
}

TEST(device_registration_publishes_the_device)
{
    long rounds = scaled(300);
    atomic_store(&reader_polls, 0);
    run_on_cpus(2, publish, &rounds);
    CHECK(!bdev_present(7), "device left registered");
}

static atomic_long registered, unregistered;

static void fight(int cpu, void *arg)
{
    long n = *(long *)arg;
    static const struct smp_bdev_ops ops = { tiny_read, tiny_write, 0, 0 };
    for (long i = 0; i < n; i++) {
        if (bdev_register(9, &ops, &devs[cpu], 8, 1) == 0)
            atomic_fetch_add(&registered, 1);
        if (bdev_unregister(9) == 0)
            atomic_fetch_add(&unregistered, 1);
    }
}

TEST(device_table_guard_serialises_registrations)
{
    long n = scaled(5000);
    run_on_cpus(2, fight, &n);
    CHECK(atomic_load(&registered) == atomic_load(&unregistered) && !bdev_present(9),
          "%ld registrations, %ld unregistrations", atomic_load(&registered),
          atomic_load(&unregistered));
    bdev_reset();
}

int main(void)
{
    return RUN_TESTS(spinlock_orders_critical_sections, lock_registry_orders_registrations,
                     device_registration_publishes_the_device,
                     device_table_guard_serialises_registrations);
}
