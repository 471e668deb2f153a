/*
 * A tiny text builder for reports and panic messages: the core has no libc,
 * so no snprintf.  Output is always NUL-terminated and silently truncated;
 * `want` counts what would have been written.
 */
#ifndef SMPMEM_FMT_H
#define SMPMEM_FMT_H

#include <stddef.h>
#include <stdint.h>

struct smp_fmt {
    char *buf;
    size_t len;    /* capacity including the NUL */
    size_t want;   /* characters appended so far, truncated or not */
    int lines;     /* nonzero: write each completed line to the port */
};

void smp_fmt_init(struct smp_fmt *f, char *buf, size_t len);
/* Like smp_fmt_init, but each '\n' flushes the line through smp_port_write
 * and empties buf, so long reports need only a line-sized buffer. */
void smp_fmt_init_lines(struct smp_fmt *f, char *buf, size_t len);
void smp_fmt_str(struct smp_fmt *f, const char *s);
void smp_fmt_dec(struct smp_fmt *f, uint64_t v);
void smp_fmt_hex(struct smp_fmt *f, uint64_t v);     /* 0x-prefixed */

/* buf = prefix followed by n in decimal ("kmem.cpu3"): lock names. */
void smp_fmt_name(char *buf, size_t len, const char *prefix, uint64_t n);
int smp_strprefix(const char *s, const char *prefix);

/* Panic with "smpmem: WHERE(0xADDR): REASON". */
_Noreturn void smp_panic_at(const char *where, uintptr_t addr, const char *reason);
/* Panic with "smpmem: WHERE(0xADDR): T1 N1 T2 N2 T3" (numbers in decimal);
 * with t2 NULL, "T1 N1 T3".  For reasons that carry a size or an order. */
_Noreturn void smp_panic_at_nums(const char *where, uintptr_t addr, const char *t1, uint64_t n1,
                                 const char *t2, uint64_t n2, const char *t3);
/* Panic with "smpmem: WHERE: REASON". */
_Noreturn void smp_panic(const char *where, const char *reason);

#endif
