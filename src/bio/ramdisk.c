/*
 * A RAM disk whose blocks live in memory from smp_kalloc (see bdev.h).
 *
 * Storage is a table of chunks of at most 64 KiB, each holding a whole
 * number of blocks, so a disk is not limited by the largest buddy block and
 * a non-power-of-two size wastes at most one chunk's rounding.
 *
 * Locks: none.  Concurrent requests touch different blocks (the buffer cache
 * serialises requests per block); the chunk table is read-only after create.
 */
#include "smpmem/bdev.h"
#include "smpmem/pmm.h"

#define CHUNK_BYTES (64u * 1024u)

struct ramdisk {
    unsigned block_size;
    unsigned per_chunk;         /* blocks per chunk: a power of two, >= 1 */
    unsigned chunk_shift;       /* log2(per_chunk): no 64-bit division (a libgcc call on 32-bit targets) */
    uint64_t nblocks;
    uint64_t nchunks;
    unsigned char **chunks;
};

/* 8-byte words that may alias anything: block data is raw memory. */
typedef uint64_t __attribute__((__may_alias__)) word_t;

static void copy_bytes(void *dst, const void *src, size_t n)
{
    if ((((uintptr_t)dst | (uintptr_t)src | n) & 7) == 0) {
        word_t *d = dst;
        const word_t *s = src;
        for (size_t i = 0; i < n / 8; i++)
            d[i] = s[i];
        return;
    }
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++)
        d[i] = s[i];
}

static void zero_bytes(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = 0;
}

static unsigned char *block_addr(struct ramdisk *rd, uint64_t blockno)
{
    return rd->chunks[blockno >> rd->chunk_shift] +
           (size_t)(blockno & (rd->per_chunk - 1)) * rd->block_size;
}

static int rd_read(void *ctx, uint64_t blockno, void *dst)
{
    struct ramdisk *rd = ctx;
    copy_bytes(dst, block_addr(rd, blockno), rd->block_size);
    return 0;
}

static int rd_write(void *ctx, uint64_t blockno, const void *src)
{
    struct ramdisk *rd = ctx;
    copy_bytes(block_addr(rd, blockno), src, rd->block_size);
    return 0;
}

static void rd_free(struct ramdisk *rd)
{
    if (rd->chunks) {
        for (uint64_t i = 0; i < rd->nchunks; i++)
            smp_kfree(rd->chunks[i]);
        smp_kfree(rd->chunks);
    }
    smp_kfree(rd);
}

static void rd_close(void *ctx) { rd_free(ctx); }

static const struct smp_bdev_ops ramdisk_ops = {
    .read = rd_read,
    .write = rd_write,
    .flush = 0,
    .close = rd_close,
};

int smp_ramdisk_create(unsigned dev, uint64_t nblocks, unsigned block_size)
{
    if (dev >= SMP_BDEV_MAX || nblocks == 0 || block_size == 0)
        return SMP_EINVAL;
    if (smp_bdev_present(dev))
        return SMP_EBUSY;
    struct ramdisk *rd = smp_kalloc(sizeof *rd);
    if (!rd)
        return SMP_ENOMEM;
    rd->block_size = block_size;
    unsigned fit = block_size >= CHUNK_BYTES ? 1 : CHUNK_BYTES / block_size;
    rd->chunk_shift = 0;
    while ((2u << rd->chunk_shift) <= fit)
        rd->chunk_shift++;
    rd->per_chunk = 1u << rd->chunk_shift;
    rd->nblocks = nblocks;
    rd->nchunks = (nblocks + rd->per_chunk - 1) >> rd->chunk_shift;
    rd->chunks = 0;
    if (rd->nchunks > SIZE_MAX / sizeof *rd->chunks) {
        rd_free(rd);
        return SMP_ENOMEM;
    }
    rd->chunks = smp_kalloc((size_t)rd->nchunks * sizeof *rd->chunks);
    if (!rd->chunks) {
        rd_free(rd);
        return SMP_ENOMEM;
    }
    for (uint64_t i = 0; i < rd->nchunks; i++)
        rd->chunks[i] = 0;
    for (uint64_t i = 0; i < rd->nchunks; i++) {
        uint64_t blocks = nblocks - i * rd->per_chunk;
        if (blocks > rd->per_chunk)
            blocks = rd->per_chunk;
        size_t bytes = (size_t)blocks * block_size;
        rd->chunks[i] = smp_kalloc(bytes);
        if (!rd->chunks[i]) {
            rd_free(rd);
            return SMP_ENOMEM;
        }
        zero_bytes(rd->chunks[i], bytes);
    }
    int r = smp_bdev_register(dev, &ramdisk_ops, rd, block_size, nblocks);
    if (r)
        rd_free(rd);
    return r;
}
