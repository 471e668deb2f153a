/*
 * virtio-blk over virtio-mmio (version 2, "modern": QEMU needs
 * -global virtio-mmio.force-legacy=false), as an smpmem block device.
 *
 * A request is a chain of three descriptors (header, data, status byte);
 * the submitting CPU sleeps (smp_port_sleep) until the completion interrupt
 * marks its request done, so requests from several harts are in flight at
 * once, up to NUM/3.  With no free descriptors a submitter sleeps too.
 *
 * Locks: vd.lock ("virtio_disk", an smpmem spinlock, so it shows in the
 * lock report) guards the descriptor table, the free map, the avail ring,
 * used_idx and each request's done flag; the interrupt handler takes it.
 * It is a leaf: nothing else is acquired under it (sleep releases it).
 */
#include "kernel.h"
#include <smpmem/bdev.h>
#include <smpmem/port.h>
#include <smpmem/spinlock.h>

#define NUM 32                        /* queue size: up to 10 requests in flight */

enum {                                /* virtio-mmio registers */
    MMIO_MAGIC = 0x000, MMIO_VERSION = 0x004, MMIO_DEVICE_ID = 0x008,
    MMIO_DEVICE_FEATURES = 0x010, MMIO_DEVICE_FEATURES_SEL = 0x014,
    MMIO_DRIVER_FEATURES = 0x020, MMIO_DRIVER_FEATURES_SEL = 0x024,
    MMIO_QUEUE_SEL = 0x030, MMIO_QUEUE_NUM_MAX = 0x034, MMIO_QUEUE_NUM = 0x038,
    MMIO_QUEUE_READY = 0x044, MMIO_QUEUE_NOTIFY = 0x050,
    MMIO_INTERRUPT_STATUS = 0x060, MMIO_INTERRUPT_ACK = 0x064, MMIO_STATUS = 0x070,
    MMIO_QUEUE_DESC_LOW = 0x080, MMIO_QUEUE_DESC_HIGH = 0x084,
    MMIO_QUEUE_DRIVER_LOW = 0x090, MMIO_QUEUE_DRIVER_HIGH = 0x094,
    MMIO_QUEUE_DEVICE_LOW = 0x0a0, MMIO_QUEUE_DEVICE_HIGH = 0x0a4,
    MMIO_CONFIG = 0x100,
};
#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8
#define F_BLK_RO 5
#define F_BLK_SCSI 7
#define F_BLK_FLUSH 9
#define F_BLK_CONFIG_WCE 11
#define F_BLK_MQ 12
#define F_ANY_LAYOUT 27
#define F_INDIRECT_DESC 28
#define F_EVENT_IDX 29
#define F_VERSION_1_HI 0              /* feature 32: bit 0 of the high word */
#define DESC_NEXT 1
#define DESC_WRITE 2                  /* device writes this buffer */
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4

#define R(off) (*(volatile uint32_t *)(VIRT_VIRTIO0 + (off)))

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[NUM], used_event; };
struct used_elem { uint32_t id, len; };
struct used { uint16_t flags, idx; struct used_elem ring[NUM]; uint16_t avail_event; };

struct request {
    struct { uint32_t type, reserved; uint64_t sector; } hdr;
    uint8_t status;                   /* written by the device */
    int done;                         /* set by the interrupt handler */
};

static struct {
    _Alignas(4096) struct desc desc[NUM];
    _Alignas(4096) struct avail avail;
    _Alignas(4096) struct used used;
} ring;

static struct {
    struct smp_spinlock lock;
    char free[NUM];
    uint16_t used_idx;
    struct request req[NUM];          /* indexed by the chain's first descriptor */
    unsigned block_size;
    int has_flush;
    struct virtio_blk_stats st;
} vd;

static void fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

/* n free descriptors into idx[], or 0 (taking none).  vd.lock held. */
static int alloc_descs(int n, int *idx)
{
    int got = 0;
    for (int i = 0; i < NUM && got < n; i++)
        if (vd.free[i])
            idx[got++] = i;
    if (got < n)
        return 0;
    for (int i = 0; i < n; i++)
        vd.free[idx[i]] = 0;
    return 1;
}

static void free_chain(int i)
{
    for (;;) {
        int flags = ring.desc[i].flags, next = ring.desc[i].next;
        ring.desc[i] = (struct desc){ 0, 0, 0, 0 };
        vd.free[i] = 1;
        if (!(flags & DESC_NEXT))
            break;
        i = next;
    }
    smp_port_wakeup(&vd.free);
}

/* One request: type T_IN/T_OUT with a data buffer, or T_FLUSH without. */
static int request(uint32_t type, uint64_t blockno, void *data)
{
    int n = data ? 3 : 2, d[3];
    smp_lock_acquire(&vd.lock);
    while (!alloc_descs(n, d)) {
        vd.st.waits_for_desc++;
        smp_port_sleep(&vd.free, &vd.lock);
    }
    struct request *r = &vd.req[d[0]];
    r->hdr.type = type;
    r->hdr.reserved = 0;
    r->hdr.sector = blockno * (vd.block_size / 512);
    r->status = 0xff;
    r->done = 0;
    ring.desc[d[0]] = (struct desc){ (uintptr_t)&r->hdr, sizeof r->hdr, DESC_NEXT, (uint16_t)d[1] };
    if (data) {
        ring.desc[d[1]] = (struct desc){ (uintptr_t)data, vd.block_size,
                                         (uint16_t)(DESC_NEXT | (type == T_IN ? DESC_WRITE : 0)),
                                         (uint16_t)d[2] };
        ring.desc[d[2]] = (struct desc){ (uintptr_t)&r->status, 1, DESC_WRITE, 0 };
    } else {
        ring.desc[d[1]] = (struct desc){ (uintptr_t)&r->status, 1, DESC_WRITE, 0 };
    }
    ring.avail.ring[ring.avail.idx % NUM] = (uint16_t)d[0];
    fence();                           /* descriptors before the index */
    ring.avail.idx++;
    fence();
    R(MMIO_QUEUE_NOTIFY) = 0;
    while (!*(volatile int *)&r->done)
        smp_port_sleep(r, &vd.lock);
    int status = *(volatile uint8_t *)&r->status;
    if (type == T_IN)
        vd.st.reads++;
    else if (type == T_OUT)
        vd.st.writes++;
    else
        vd.st.flushes++;
    free_chain(d[0]);
    smp_lock_release(&vd.lock);
    return status == 0 ? 0 : SMP_EIO;
}

void virtio_blk_intr(void)
{
    smp_lock_acquire(&vd.lock);
    R(MMIO_INTERRUPT_ACK) = R(MMIO_INTERRUPT_STATUS) & 3;
    fence();
    vd.st.irqs++;
    while (vd.used_idx != *(volatile uint16_t *)&ring.used.idx) {
        fence();
        int id = (int)ring.used.ring[vd.used_idx % NUM].id;
        vd.req[id].done = 1;
        smp_port_wakeup(&vd.req[id]);
        vd.used_idx++;
    }
    smp_lock_release(&vd.lock);
}

static int vb_read(void *ctx, uint64_t blockno, void *dst)
{
    (void)ctx;
    return request(T_IN, blockno, dst);
}

static int vb_write(void *ctx, uint64_t blockno, const void *src)
{
    (void)ctx;
    return request(T_OUT, blockno, (void *)src);
}

static int vb_flush(void *ctx)
{
    (void)ctx;
    return vd.has_flush ? request(T_FLUSH, 0, 0) : 0;
}

static const struct smp_bdev_ops virtio_ops = { vb_read, vb_write, vb_flush, 0 };

void virtio_blk_stats(struct virtio_blk_stats *out)
{
    smp_lock_acquire(&vd.lock);
    *out = vd.st;
    smp_lock_release(&vd.lock);
}

int virtio_blk_init(unsigned dev, unsigned block_size)
{
    static int ready;
    if (block_size == 0 || block_size % 512)
        return SMP_EINVAL;
    if (ready) {                       /* device set up already: register again */
        vd.block_size = block_size;
        uint64_t sectors = *(volatile uint64_t *)(VIRT_VIRTIO0 + MMIO_CONFIG);
        return smp_bdev_register(dev, &virtio_ops, 0, block_size, sectors / (block_size / 512));
    }
    if (R(MMIO_MAGIC) != 0x74726976 || R(MMIO_VERSION) != 2 || R(MMIO_DEVICE_ID) != 2)
        return SMP_ENODEV;
    smp_lock_init(&vd.lock, "virtio_disk");
    uint32_t status = 0;
    R(MMIO_STATUS) = status;
    R(MMIO_STATUS) = status |= ST_ACK;
    R(MMIO_STATUS) = status |= ST_DRIVER;
    R(MMIO_DEVICE_FEATURES_SEL) = 0;
    uint32_t f = R(MMIO_DEVICE_FEATURES);
    vd.has_flush = (f >> F_BLK_FLUSH) & 1;
    f &= ~(1U << F_BLK_RO | 1U << F_BLK_SCSI | 1U << F_BLK_CONFIG_WCE | 1U << F_BLK_MQ |
           1U << F_ANY_LAYOUT | 1U << F_INDIRECT_DESC | 1U << F_EVENT_IDX);
    R(MMIO_DRIVER_FEATURES_SEL) = 0;
    R(MMIO_DRIVER_FEATURES) = f;
    R(MMIO_DEVICE_FEATURES_SEL) = 1;
    uint32_t hi = R(MMIO_DEVICE_FEATURES) & (1U << F_VERSION_1_HI);
    R(MMIO_DRIVER_FEATURES_SEL) = 1;
    R(MMIO_DRIVER_FEATURES) = hi;
    R(MMIO_STATUS) = status |= ST_FEATURES_OK;
    if (!(R(MMIO_STATUS) & ST_FEATURES_OK))
        return SMP_ENODEV;
    R(MMIO_QUEUE_SEL) = 0;
    if (R(MMIO_QUEUE_READY) || R(MMIO_QUEUE_NUM_MAX) < NUM)
        return SMP_ENODEV;
    R(MMIO_QUEUE_NUM) = NUM;
    R(MMIO_QUEUE_DESC_LOW) = (uint32_t)(uintptr_t)ring.desc;
    R(MMIO_QUEUE_DESC_HIGH) = (uint32_t)((uintptr_t)ring.desc >> 32);
    R(MMIO_QUEUE_DRIVER_LOW) = (uint32_t)(uintptr_t)&ring.avail;
    R(MMIO_QUEUE_DRIVER_HIGH) = (uint32_t)((uintptr_t)&ring.avail >> 32);
    R(MMIO_QUEUE_DEVICE_LOW) = (uint32_t)(uintptr_t)&ring.used;
    R(MMIO_QUEUE_DEVICE_HIGH) = (uint32_t)((uintptr_t)&ring.used >> 32);
    R(MMIO_QUEUE_READY) = 1;
    for (int i = 0; i < NUM; i++)
        vd.free[i] = 1;
    R(MMIO_STATUS) = status |= ST_DRIVER_OK;
    ready = 1;
    vd.block_size = block_size;
    uint64_t sectors = *(volatile uint64_t *)(VIRT_VIRTIO0 + MMIO_CONFIG);
    return smp_bdev_register(dev, &virtio_ops, 0, block_size, sectors / (block_size / 512));
}
