/* Text building for reports and panics (see fmt.h). */
#include "fmt.h"
#include "smpmem/port.h"

void smp_fmt_init(struct smp_fmt *f, char *buf, size_t len)
{
    f->buf = buf;
    f->len = len;
    f->want = 0;
    f->lines = 0;
    if (len)
        buf[0] = '\0';
}

void smp_fmt_init_lines(struct smp_fmt *f, char *buf, size_t len)
{
    smp_fmt_init(f, buf, len);
    f->lines = 1;
}

static void put(struct smp_fmt *f, char c)
{
    if (f->want + 1 < f->len) {
        f->buf[f->want] = c;
        f->buf[f->want + 1] = '\0';
    }
    f->want++;
    if (f->lines && c == '\n') {
        size_t n = f->want < f->len ? f->want : f->len - 1;
        smp_port_write(f->buf, n);
        f->want = 0;
        f->buf[0] = '\0';
    }
}

void smp_fmt_str(struct smp_fmt *f, const char *s)
{
    while (*s)
        put(f, *s++);
}

/* Decimal by subtracting powers of ten: a 64-bit division is a libgcc call
 * (__udivdi3) on 32-bit targets, and kernels link no libgcc. */
void smp_fmt_dec(struct smp_fmt *f, uint64_t v)
{
    static const uint64_t pow10[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
        100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
        10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
    };
    int started = 0;
    for (int i = 19; i >= 0; i--) {
        char d = '0';
        while (v >= pow10[i]) {
            v -= pow10[i];
            d++;
        }
        if (d != '0' || started || i == 0) {
            put(f, d);
            started = 1;
        }
    }
}

void smp_fmt_hex(struct smp_fmt *f, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    put(f, '0');
    put(f, 'x');
    while (n)
        put(f, tmp[--n]);
}

void smp_fmt_name(char *buf, size_t len, const char *prefix, uint64_t n)
{
    struct smp_fmt f;
    smp_fmt_init(&f, buf, len);
    smp_fmt_str(&f, prefix);
    smp_fmt_dec(&f, n);
}

int smp_strprefix(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

static _Noreturn void panic_with(const char *where, const uintptr_t *addr, const char *reason)
{
    char buf[256];
    struct smp_fmt f;
    smp_fmt_init(&f, buf, sizeof buf);
    smp_fmt_str(&f, "smpmem: ");
    smp_fmt_str(&f, where);
    if (addr) {
        smp_fmt_str(&f, "(");
        smp_fmt_hex(&f, *addr);
        smp_fmt_str(&f, ")");
    }
    smp_fmt_str(&f, ": ");
    smp_fmt_str(&f, reason);
    smp_port_panic(buf);
}

_Noreturn void smp_panic_at(const char *where, uintptr_t addr, const char *reason)
{
    panic_with(where, &addr, reason);
}

_Noreturn void smp_panic_at_nums(const char *where, uintptr_t addr, const char *t1, uint64_t n1,
                                 const char *t2, uint64_t n2, const char *t3)
{
    char reason[160];
    struct smp_fmt f;
    smp_fmt_init(&f, reason, sizeof reason);
    smp_fmt_str(&f, t1);
    smp_fmt_dec(&f, n1);
    if (t2) {
        smp_fmt_str(&f, t2);
        smp_fmt_dec(&f, n2);
    }
    smp_fmt_str(&f, t3);
    smp_panic_at(where, addr, reason);
}

_Noreturn void smp_panic(const char *where, const char *reason)
{
    panic_with(where, 0, reason);
}
