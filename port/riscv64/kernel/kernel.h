/*
 * The small riscv64 kernel around smpmem: boot, traps, timer, PLIC,
 * virtio-blk, a hart runner, and the few library functions it needs.
 * Dependency rule: kernel/ uses the port (../), smpmem's public headers and
 * nothing else; the suite and demo (../suite/) use kernel/.
 */
#ifndef SMPMEM_RV_KERNEL_H
#define SMPMEM_RV_KERNEL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "../riscv.h"

/* What boot learned from the device tree and the command line
 * (QEMU -append: "demo", "seed=N", "scale=PCT", "test=NAME", "tick=US"). */
struct boot_info {
    int ncpu;                  /* harts running (ids 0..ncpu-1) */
    int boot_hart;
    uintptr_t ram_start, ram_end;
    char bootargs[256];
};
extern struct boot_info boot;
/* Value of "key=" in bootargs as a number, or dflt; bootarg_str copies it. */
long bootarg_num(const char *key, long dflt);
int bootarg_str(const char *key, char *out, size_t len);
int bootarg_flag(const char *word);

/* lib.c: freestanding C library bits (memset & co. are also what gcc may
 * emit calls to, and what smpmem's core needs: see PORTING.md), declared
 * once, in the port's <string.h>. */
#include "../include/string.h"
/* %d %i %u %x %p %s %c %% with l/ll/z sizes, width and '0' flag. */
int kvsnprintf(char *buf, size_t len, const char *fmt, va_list ap);
int ksnprintf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* fdt.c */
void fdt_scan(const void *dtb);

/* trap.c: timer and interrupt plumbing.  The timer fires every tick_us
 * microseconds on every hart; timer_hook (if set) runs in the handler. */
void trap_hart_init(void);
void timer_set_period_us(unsigned long us);
extern void (*volatile timer_hook)(int cpu);
extern atomic_ulong timer_ticks[RV_MAX_HARTS];

/* plic.c */
void plic_init(void);
void plic_hart_init(int hart);
int plic_claim(int hart);
void plic_complete(int hart, int irq);

/* virtio_blk.c: the disk at virtio-mmio slot 0 as block device `dev` with
 * blocks of block_size bytes (a multiple of 512).  0, SMP_ENODEV (no disk)
 * or a bdev_register error. */
int virtio_blk_init(unsigned dev, unsigned block_size);
void virtio_blk_intr(void);
struct virtio_blk_stats { unsigned long reads, writes, flushes, irqs, waits_for_desc; };
void virtio_blk_stats(struct virtio_blk_stats *out);

/* main.c: run fn(cpu, arg) on harts 0..n-1 at once (the caller's hart takes
 * part if its id is below n) and return when all have finished.  Harts run
 * fn with interrupts on.  Returns the number of harts that came back with
 * interrupts pushed off (a broken rule). */
int harts_run(int n, void (*fn)(int cpu, void *arg), void *arg);
/* Wake hart h from wfi (an IPI with an empty mailbox). */
void hart_kick(int h);

/* The program the kernel runs after boot (suite/ or demo); returns the
 * exit code for QEMU. */
int suite_main(void);
int demo_main(void);

#endif
