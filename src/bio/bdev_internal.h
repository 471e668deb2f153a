/*
 * What the buffer cache asks of the device table (bdev.c) beyond the
 * public calls of include/smpmem/bdev.h.
 */
#ifndef SMPMEM_BDEV_INTERNAL_H
#define SMPMEM_BDEV_INTERNAL_H

#include <stdint.h>

/* 0 if dev is registered, has block blockno and blocks of block_size
 * bytes; else SMP_ENODEV (no such device) or SMP_EINVAL.  One lookup:
 * bread makes it on every call, hits included. */
int smp_bdev_check_block(unsigned dev, uint64_t blockno, unsigned block_size);

#endif
