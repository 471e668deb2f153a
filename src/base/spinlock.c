/*
 * Spinlocks with xv6-style statistics (see include/smpmem/spinlock.h).
 *
 * Locks: registry_lock guards the registry array; it is a bare flag, not a
 * registered smp_spinlock, so reports never count themselves.  It is a leaf:
 * nothing else is acquired while it is held.
 */
#include "smpmem/spinlock.h"
#include "smpmem/port.h"
#include "fmt.h"
#include "spinlock_inline.h"

#define MAX_LOCKS 512

static struct smp_spinlock *registry[MAX_LOCKS];
static atomic_uint registry_lock;
static int registry_count;

static void registry_enter(void)
{
    smp_port_irq_push();
    /* acquire: pairs with the release in registry_leave, so the registry
     * and its count as the last holder left them are what we read; relaxed
     * could read a half-added or half-compacted registry. */
    while (atomic_exchange_explicit(&registry_lock, 1, memory_order_acquire))
        smp_port_relax();
}

static void registry_leave(void)
{
    /* release: pairs with the acquire in registry_enter (our registry
     * writes are visible to the next holder). */
    atomic_store_explicit(&registry_lock, 0, memory_order_release);
    smp_port_irq_pop();
}

void smp_lock_init(struct smp_spinlock *lk, const char *name)
{
    atomic_init(&lk->locked, 0);
    atomic_init(&lk->cpu, -1);
    lk->name = name;
    atomic_init(&lk->n_acquire, 0);
    atomic_init(&lk->n_contended, 0);
    registry_enter();
    int i;
    for (i = 0; i < registry_count; i++)
        if (registry[i] == lk)
            break;
    if (i == registry_count && registry_count < MAX_LOCKS)
        registry[registry_count++] = lk;
    /* A full registry only loses statistics, never correctness. */
    registry_leave();
}

/* Statistics are bumped only by the holder (smp_counter_add). */

void smp_lock_spin(struct smp_spinlock *lk)
{
    unsigned long spins = 0;
    do {
        spins++;
        while (atomic_load_explicit(&lk->locked, memory_order_relaxed))
            smp_port_relax();   /* relaxed: only a hint; the exchange decides */
        /* acquire: pairs with the holder's release store, as in
         * smp_lock_acquire_on (spinlock_inline.h). */
    } while (atomic_exchange_explicit(&lk->locked, 1, memory_order_acquire));
    /* We hold lk now, so the counter is ours to bump. */
    smp_counter_add(&lk->n_contended, spins);
}

int smp_lock_holding(struct smp_spinlock *lk)
{
    /* Only this CPU can store its own id into lk->cpu, so a relaxed load
     * answers reliably for the caller even while others race for lk. */
    return atomic_load_explicit(&lk->cpu, memory_order_relaxed) == smp_port_cpu_id();
}

void smp_lock_acquire(struct smp_spinlock *lk)
{
    smp_port_irq_push();
    smp_lock_acquire_on(lk, smp_port_cpu_id());
}

void smp_lock_release(struct smp_spinlock *lk)
{
    smp_lock_release_on(lk, smp_port_cpu_id());
    smp_port_irq_pop();
}

void smp_lock_forget_range(const void *lo, const void *hi)
{
    registry_enter();
    int kept = 0;
    for (int i = 0; i < registry_count; i++) {
        const char *p = (const char *)registry[i];
        if (p >= (const char *)lo && p < (const char *)hi)
            continue;
        registry[kept++] = registry[i];
    }
    registry_count = kept;
    registry_leave();
}

void smp_lock_stats_reset(void)
{
    registry_enter();
    for (int i = 0; i < registry_count; i++) {
        atomic_store_explicit(&registry[i]->n_acquire, 0, memory_order_relaxed);
        atomic_store_explicit(&registry[i]->n_contended, 0, memory_order_relaxed);
    }
    registry_leave();
}

static int is_reported(const struct smp_spinlock *lk)
{
    return smp_strprefix(lk->name, "kmem") || smp_strprefix(lk->name, "bcache");
}

unsigned long smp_lock_contended(const char *prefix)
{
    unsigned long sum = 0;
    registry_enter();
    for (int i = 0; i < registry_count; i++)
        if (smp_strprefix(registry[i]->name, prefix))
            sum += atomic_load_explicit(&registry[i]->n_contended, memory_order_relaxed);
    registry_leave();
    return sum;
}

static void report_line(struct smp_fmt *f, struct smp_spinlock *lk)
{
    smp_fmt_str(f, "lock: ");
    smp_fmt_str(f, lk->name);
    smp_fmt_str(f, ": #test-and-set ");
    smp_fmt_dec(f, atomic_load_explicit(&lk->n_contended, memory_order_relaxed));
    smp_fmt_str(f, " #acquire() ");
    smp_fmt_dec(f, atomic_load_explicit(&lk->n_acquire, memory_order_relaxed));
    smp_fmt_str(f, "\n");
}

static void report(struct smp_fmt *fp)
{
    struct smp_fmt f = *fp;
    unsigned long total = 0;
    registry_enter();
    smp_fmt_str(&f, "--- lock kmem/bcache stats\n");
    for (int i = 0; i < registry_count; i++) {
        if (!is_reported(registry[i]))
            continue;
        report_line(&f, registry[i]);
        total += atomic_load_explicit(&registry[i]->n_contended, memory_order_relaxed);
    }
    /* Top 5 by contention: selection by repeated maximum (n is small). */
    smp_fmt_str(&f, "--- top 5 contended locks:\n");
    struct smp_spinlock *top[5] = {0};
    for (int k = 0; k < 5; k++) {
        struct smp_spinlock *best = 0;
        for (int i = 0; i < registry_count; i++) {
            struct smp_spinlock *lk = registry[i];
            int taken = 0;
            for (int j = 0; j < k; j++)
                taken |= top[j] == lk;
            if (taken)
                continue;
            if (!best || atomic_load_explicit(&lk->n_contended, memory_order_relaxed) >
                         atomic_load_explicit(&best->n_contended, memory_order_relaxed))
                best = lk;
        }
        if (!best)
            break;
        top[k] = best;
        report_line(&f, best);
    }
    registry_leave();
    smp_fmt_str(&f, "tot= ");
    smp_fmt_dec(&f, total);
    smp_fmt_str(&f, "\n");
    *fp = f;
}

size_t smp_lock_report(char *buf, size_t len)
{
    struct smp_fmt f;
    smp_fmt_init(&f, buf, len);
    report(&f);
    return f.want;
}

void smp_lock_print(void)
{
    /* Line by line: kernel stacks are small. */
    char line[160];
    struct smp_fmt f;
    smp_fmt_init_lines(&f, line, sizeof line);
    report(&f);
}
