/*
 * The kernel's C library: memory and string functions (gcc may emit calls
 * to memset/memcpy/memmove/memcmp even in freestanding code, and smpmem's
 * core does: zero-initialised aggregates), and a small printf.
 */
#include "kernel.h"
#include <smpmem/port.h>

void *memset(void *d, int c, size_t n)
{
    unsigned char *p = d;
    uint64_t w = (unsigned char)c * 0x0101010101010101ULL;
    while (n && ((uintptr_t)p & 7)) { *p++ = (unsigned char)c; n--; }
    for (; n >= 8; n -= 8, p += 8)
        *(volatile uint64_t *)p = w;          /* volatile: not turned back into memset */
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if ((((uintptr_t)dp | (uintptr_t)sp) & 7) == 0)
        for (; n >= 8; n -= 8, dp += 8, sp += 8)
            *(volatile uint64_t *)dp = *(const uint64_t *)sp;
    while (n--)
        *(volatile unsigned char *)dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if (dp <= sp || dp >= sp + n)
        return memcpy(d, s, n);
    while (n--)
        ((volatile unsigned char *)dp)[n] = sp[n];
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
        if (!a[i])
            return 0;
    }
    return 0;
}

int strcmp(const char *a, const char *b) { return strncmp(a, b, (size_t)-1); }

/* ---- printf ---------------------------------------------------------- */
struct out { char *buf; size_t len, pos; };

static void put(struct out *o, char c)
{
    if (o->pos + 1 < o->len)
        o->buf[o->pos] = c;
    o->pos++;
}

static void put_num(struct out *o, uint64_t v, unsigned base, int neg, int width, char pad)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg)
        tmp[n++] = '-';
    for (int i = n; i < width; i++)
        put(o, pad);
    while (n)
        put(o, tmp[--n]);
}

int kvsnprintf(char *buf, size_t len, const char *fmt, va_list ap)
{
    struct out o = { buf, len, 0 };
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(&o, *fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*fmt == '-')
            fmt++;                                   /* left-justify: ignored */
        if (*fmt == '0') { pad = '0'; fmt++; }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l' || *fmt == 'z') { lng++; fmt++; }
        switch (*fmt) {
        case 'd': case 'i': {
            int64_t v = lng ? va_arg(ap, long) : va_arg(ap, int);
            put_num(&o, v < 0 ? (uint64_t)-v : (uint64_t)v, 10, v < 0, width, pad);
            break;
        }
        case 'u': case 'x': {
            uint64_t v = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            put_num(&o, v, *fmt == 'u' ? 10 : 16, 0, width, pad);
            break;
        }
        case 'p':
            put(&o, '0'); put(&o, 'x');
            put_num(&o, (uintptr_t)va_arg(ap, void *), 16, 0, width, pad);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t n = strlen(s);
            for (size_t i = n; i < (size_t)width; i++)
                put(&o, ' ');
            while (*s)
                put(&o, *s++);
            break;
        }
        case 'c': put(&o, (char)va_arg(ap, int)); break;
        case '%': put(&o, '%'); break;
        default: put(&o, '%'); put(&o, *fmt); break;
        }
        if (!*fmt)
            break;
    }
    if (len)
        buf[o.pos < len ? o.pos : len - 1] = '\0';
    return (int)o.pos;
}

int ksnprintf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = kvsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

int kprintf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = kvsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    smp_port_write(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    return n;
}
