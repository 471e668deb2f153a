/*
 * The block-device table (see include/smpmem/bdev.h).
 *
 * Locks: table_guard (a bare flag, not a reported spinlock) serialises
 * register/unregister.  The I/O path takes no lock: an entry is published
 * by a release store of `present` after its fields are written, and read
 * after an acquire load of it.  Nothing else is acquired under the guard;
 * a device's close hook runs after the guard is dropped.
 */
#include <stdatomic.h>
#include "bdev_internal.h"
#include "smpmem/bdev.h"
#include "smpmem/bio_debug.h"
#include "smpmem/port.h"

struct dev_entry {
    atomic_int present;                 /* 1 once the fields below are valid */
    const struct smp_bdev_ops *ops;
    void *ctx;
    unsigned block_size;
    uint64_t nblocks;
};

static struct dev_entry table[SMP_BDEV_MAX];
static atomic_uint table_guard;

static void guard_enter(void)
{
    smp_port_irq_push();
    /* acquire: pairs with the release in guard_leave, so a register or
     * unregister sees the table as the previous one left it (without it,
     * two registrations of one dev could both see it free). */
    while (atomic_exchange_explicit(&table_guard, 1, memory_order_acquire))
        smp_port_relax();
}

static void guard_leave(void)
{
    /* release: pairs with the acquire in guard_enter. */
    atomic_store_explicit(&table_guard, 0, memory_order_release);
    smp_port_irq_pop();
}

static struct dev_entry *entry_of(unsigned dev)
{
    if (dev >= SMP_BDEV_MAX)
        return 0;
    struct dev_entry *e = &table[dev];
    /* acquire: pairs with the release store of present = 1 in
     * smp_bdev_register, so ops, ctx, block_size and nblocks read after it
     * are the ones written before it.  Relaxed would let a CPU doing I/O
     * see the device present but read an old or NULL ops pointer and call
     * through it (weakly ordered CPUs). */
    return atomic_load_explicit(&e->present, memory_order_acquire) ? e : 0;
}

int smp_bdev_register(unsigned dev, const struct smp_bdev_ops *ops, void *ctx,
                      unsigned block_size, uint64_t nblocks)
{
    if (dev >= SMP_BDEV_MAX || !ops || !ops->read || !ops->write || block_size == 0 ||
        nblocks == 0)
        return SMP_EINVAL;
    struct dev_entry *e = &table[dev];
    guard_enter();
    int busy = atomic_load_explicit(&e->present, memory_order_relaxed);
    if (!busy) {
        e->ops = ops;
        e->ctx = ctx;
        e->block_size = block_size;
        e->nblocks = nblocks;
        /* release: publishes the fields above to entry_of's acquire load. */
        atomic_store_explicit(&e->present, 1, memory_order_release);
    }
    guard_leave();
    return busy ? SMP_EBUSY : 0;
}

int smp_bdev_unregister(unsigned dev)
{
    if (dev >= SMP_BDEV_MAX)
        return SMP_ENODEV;
    struct dev_entry *e = &table[dev];
    const struct smp_bdev_ops *ops = 0;
    void *ctx = 0;
    guard_enter();
    int present = atomic_load_explicit(&e->present, memory_order_relaxed);
    if (present) {
        ops = e->ops;
        ctx = e->ctx;
        /* release, pairing with entry_of's acquire: a reader that sees 0
         * reads nothing more, so relaxed would do; kept for symmetry (a
         * configuration call, off every I/O path). */
        atomic_store_explicit(&e->present, 0, memory_order_release);
    }
    guard_leave();
    if (!present)
        return SMP_ENODEV;
    if (ops->close)
        ops->close(ctx);
    return 0;
}

void smp_bdev_reset(void)
{
    for (unsigned dev = 0; dev < SMP_BDEV_MAX; dev++)
        smp_bdev_unregister(dev);
}

int smp_bdev_present(unsigned dev) { return entry_of(dev) != 0; }

int smp_bdev_check_block(unsigned dev, uint64_t blockno, unsigned block_size)
{
    struct dev_entry *e = entry_of(dev);
    if (!e)
        return SMP_ENODEV;
    return blockno < e->nblocks && e->block_size == block_size ? 0 : SMP_EINVAL;
}

unsigned smp_bdev_block_size(unsigned dev)
{
    struct dev_entry *e = entry_of(dev);
    return e ? e->block_size : 0;
}

uint64_t smp_bdev_nblocks(unsigned dev)
{
    struct dev_entry *e = entry_of(dev);
    return e ? e->nblocks : 0;
}

static int device_result(int r)
{
    return r > 0 ? SMP_EIO : r;
}

int smp_bdev_read(unsigned dev, uint64_t blockno, void *dst)
{
    struct dev_entry *e = entry_of(dev);
    if (!e)
        return SMP_ENODEV;
    if (blockno >= e->nblocks)
        return SMP_EINVAL;
    return device_result(e->ops->read(e->ctx, blockno, dst));
}

int smp_bdev_write(unsigned dev, uint64_t blockno, const void *src)
{
    struct dev_entry *e = entry_of(dev);
    if (!e)
        return SMP_ENODEV;
    if (blockno >= e->nblocks)
        return SMP_EINVAL;
    return device_result(e->ops->write(e->ctx, blockno, src));
}

int smp_bdev_flush(unsigned dev)
{
    struct dev_entry *e = entry_of(dev);
    if (!e)
        return SMP_ENODEV;
    return e->ops->flush ? device_result(e->ops->flush(e->ctx)) : 0;
}
