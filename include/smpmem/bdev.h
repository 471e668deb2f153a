/*
 * Block devices: a table of devices 0..SMP_BDEV_MAX-1, each a set of
 * operations over fixed-size blocks.  The buffer cache (bcache.h) reads and
 * writes through this table; anything may also call it directly.
 *
 * Device contract (what a driver's ops must do):
 *   read(ctx, blockno, dst)   copy block blockno (< nblocks) into dst
 *                             (block_size bytes); 0 or a negative error.
 *   write(ctx, blockno, src)  store block_size bytes from src as block
 *                             blockno; 0 or a negative error.  Durable
 *                             once flush returns 0.
 *   flush(ctx)                make earlier writes durable; may be NULL.
 *   close(ctx)                release ctx; called once by unregister; may be
 *                             NULL.
 * read and write may run concurrently on different blocks; the buffer cache
 * never issues two requests for the same block at once.
 *
 * Thread safety: I/O calls may be made from any CPU concurrently.
 * Registration is configuration: register a device before any CPU does I/O
 * on it, and unregister it only when no I/O on it is in flight and none of
 * its blocks is cached (reset the buffer cache first).
 */
#ifndef SMPMEM_BDEV_H
#define SMPMEM_BDEV_H

#include <stdint.h>
#include "errors.h"

#define SMP_BDEV_MAX 16

struct smp_bdev_ops {
    int (*read)(void *ctx, uint64_t blockno, void *dst);
    int (*write)(void *ctx, uint64_t blockno, const void *src);
    int (*flush)(void *ctx);
    void (*close)(void *ctx);
};

/* Register device dev.  Returns 0, or:
 *   SMP_EINVAL  dev >= SMP_BDEV_MAX, ops/read/write NULL, block_size 0,
 *               nblocks 0;
 *   SMP_EBUSY   dev is already registered. */
int smp_bdev_register(unsigned dev, const struct smp_bdev_ops *ops, void *ctx,
                      unsigned block_size, uint64_t nblocks);

/* Close (ops->close) and forget device dev.  0, or SMP_ENODEV. */
int smp_bdev_unregister(unsigned dev);

/* Whether dev is registered; its geometry (0 if not registered). */
int smp_bdev_present(unsigned dev);
unsigned smp_bdev_block_size(unsigned dev);
uint64_t smp_bdev_nblocks(unsigned dev);

/* Direct I/O through the table.  0, or SMP_ENODEV (no such device),
 * SMP_EINVAL (blockno >= nblocks), or the device's negative error (a device
 * returning a positive value is reported as SMP_EIO). */
int smp_bdev_read(unsigned dev, uint64_t blockno, void *dst);
int smp_bdev_write(unsigned dev, uint64_t blockno, const void *src);
int smp_bdev_flush(unsigned dev);

/* A RAM disk of nblocks zeroed blocks at dev, its storage taken from
 * smp_kalloc in chunks of at most 64 KiB (so it is not limited by the
 * largest buddy block).  Unregistering it gives the storage back.
 * 0, SMP_EINVAL (as for register), SMP_EBUSY, or SMP_ENOMEM. */
int smp_ramdisk_create(unsigned dev, uint64_t nblocks, unsigned block_size);

/* Hosted port only (port/hosted/filedev.c): device dev backed by the
 * existing file at path, opened read-write; nblocks = file size / block_size
 * (a partial last block is ignored).  read/write use pread/pwrite, flush is
 * fsync.  0, or SMP_ENODEV (cannot open/stat), SMP_EINVAL (block_size 0 or
 * file shorter than one block), SMP_ENOMEM, or a register error. */
int smp_bdev_open_file(unsigned dev, const char *path, unsigned block_size);

#if defined(SMPMEM_SHORT_NAMES) && !defined(SMPMEM_NO_SHORT_NAMES)
#define bdev_register    smp_bdev_register
#define bdev_unregister  smp_bdev_unregister
#define bdev_present     smp_bdev_present
#define bdev_block_size  smp_bdev_block_size
#define bdev_nblocks     smp_bdev_nblocks
#define bdev_read        smp_bdev_read
#define bdev_write       smp_bdev_write
#define bdev_flush       smp_bdev_flush
#define ramdisk_create   smp_ramdisk_create
#define bdev_open_file   smp_bdev_open_file
#endif

#endif
