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
    /* Counted as xv6 counts: one for every attempt that found the lock
     * held -- here every look while spinning, and the failed exchange that
     * brought us here -- so the figures match a test-and-set loop's. */
    unsigned long spins = 0;
    do {
        spins++;
        while (atomic_load_explicit(&lk->locked, memory_order_relaxed)) {
            spins++;
            smp_port_relax();   /* relaxed: only a hint; the exchange decides */
        }
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
    smp_lock_acquire_inline(lk);
}

void smp_lock_release(struct smp_spinlock *lk)
{
    smp_lock_release_inline(lk);
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

static int is_reported(const struct smp_spinlock *lk, const char *prefix)
{
    if (prefix)
        return smp_strprefix(lk->name, prefix);
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

void smp_lock_for_each(void (*fn)(void *ctx, const char *name, unsigned long acquires,
                                  unsigned long contended), void *ctx)
{
    /* A snapshot first: fn may take locks of its own (a kernel's report). */
    enum { CHUNK = 32 };
    for (int from = 0;; from += CHUNK) {
        const char *name[CHUNK];
        unsigned long acq[CHUNK], ts[CHUNK];
        int n = 0;
        registry_enter();
        for (int i = from; i < registry_count && n < CHUNK; i++, n++) {
            name[n] = registry[i]->name;
            acq[n] = atomic_load_explicit(&registry[i]->n_acquire, memory_order_relaxed);
            ts[n] = atomic_load_explicit(&registry[i]->n_contended, memory_order_relaxed);
        }
        registry_leave();
        for (int i = 0; i < n; i++)
            fn(ctx, name[i], acq[i], ts[i]);
        if (n < CHUNK)
            return;
    }
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

static unsigned long acquires(const struct smp_spinlock *lk)
{
    return atomic_load_explicit(&lk->n_acquire, memory_order_relaxed);
}

/* The tail: top 5 and the total, which a bounded report never drops. */
static void report_tail(struct smp_fmt *f, const char *prefix)
{
    unsigned long total = 0;
    for (int i = 0; i < registry_count; i++)
        if (is_reported(registry[i], prefix))
            total += atomic_load_explicit(&registry[i]->n_contended, memory_order_relaxed);
    /* Top 5 by contention among the reported locks that were acquired:
     * selection by repeated maximum (n is small). */
    smp_fmt_str(f, "--- top 5 contended locks:\n");
    struct smp_spinlock *top[5] = {0};
    for (int k = 0; k < 5; k++) {
        struct smp_spinlock *best = 0;
        for (int i = 0; i < registry_count; i++) {
            struct smp_spinlock *lk = registry[i];
            int taken = 0;
            for (int j = 0; j < k; j++)
                taken |= top[j] == lk;
            if (taken || !acquires(lk) || !is_reported(lk, prefix))
                continue;
            if (!best || atomic_load_explicit(&lk->n_contended, memory_order_relaxed) >
                         atomic_load_explicit(&best->n_contended, memory_order_relaxed))
                best = lk;
        }
        if (!best)
            break;
        top[k] = best;
        report_line(f, best);
    }
    smp_fmt_str(f, "tot= ");
    smp_fmt_dec(f, total);
    smp_fmt_str(f, "\n");
}

/* Into a buffer of len bytes: the header, a line per reported lock that
 * was acquired, then the tail.  When the lines do not all fit, as many as
 * fit are kept, then "... N more locks", and the tail always follows. */
static size_t report(char *buf, size_t len, const char *prefix, int to_port)
{
    char tail[640], line[160], out[160];
    struct smp_fmt t, f, l;
    registry_enter();
    smp_fmt_init(&t, tail, sizeof tail);
    report_tail(&t, prefix);
    if (to_port)
        smp_fmt_init_lines(&f, out, sizeof out);
    else
        smp_fmt_init(&f, buf, len);
    smp_fmt_str(&f, "--- lock kmem/bcache stats\n");
    size_t room = len > t.want + 40 ? len - t.want - 40 : 0, want = f.want, dropped = 0;
    for (int i = 0; i < registry_count; i++) {
        if (!is_reported(registry[i], prefix) || !acquires(registry[i]))
            continue;
        smp_fmt_init(&l, line, sizeof line);
        report_line(&l, registry[i]);
        want += l.want;
        if (!to_port && f.want + l.want > room) {
            dropped++;
            continue;
        }
        smp_fmt_str(&f, line);
    }
    if (dropped) {
        smp_fmt_str(&f, "... ");
        smp_fmt_dec(&f, dropped);
        smp_fmt_str(&f, " more locks (buffer full)\n");
    }
    smp_fmt_str(&f, tail);
    registry_leave();
    return want + t.want + (dropped ? 40 : 0);
}

size_t smp_lock_report(char *buf, size_t len)
{
    return report(buf, len, 0, 0);
}

size_t smp_lock_report_filtered(char *buf, size_t len, const char *prefix)
{
    return report(buf, len, prefix, 0);
}

void smp_lock_print(void)
{
    /* Line by line through the port: kernel stacks are small. */
    report(0, 0, 0, 1);
}
