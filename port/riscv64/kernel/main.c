/*
 * Boot: the hart OpenSBI enters first reads the device tree, starts every
 * other hart with SBI HSM, and once all are up runs the suite (or the demo
 * with bootarg "demo"), then powers off with its exit code.  Other harts
 * wait in wfi, interrupts on, for work from harts_run: that is also how they
 * serve cross-calls (an IPI) and timer ticks while idle.
 */
#include "kernel.h"
#include "../uart.h"
#include <smpmem/port.h>

struct boot_info boot;
static atomic_int online;
extern char _entry_secondary[];

long bootarg_num(const char *key, long dflt)
{
    char v[32];
    if (!bootarg_str(key, v, sizeof v))
        return dflt;
    long n = 0;
    for (const char *p = v; *p >= '0' && *p <= '9'; p++)
        n = n * 10 + (*p - '0');
    return n;
}

int bootarg_str(const char *key, char *out, size_t len)
{
    size_t k = strlen(key);
    for (const char *p = boot.bootargs; *p;) {
        while (*p == ' ')
            p++;
        if (!strncmp(p, key, k) && p[k] == '=') {
            p += k + 1;
            size_t n = 0;
            while (p[n] && p[n] != ' ' && n + 1 < len) {
                out[n] = p[n];
                n++;
            }
            out[n] = '\0';
            return 1;
        }
        while (*p && *p != ' ')
            p++;
    }
    return 0;
}

int bootarg_flag(const char *word)
{
    size_t k = strlen(word);
    for (const char *p = boot.bootargs; *p;) {
        while (*p == ' ')
            p++;
        if (!strncmp(p, word, k) && (p[k] == ' ' || p[k] == '\0'))
            return 1;
        while (*p && *p != ' ')
            p++;
    }
    return 0;
}

/* ---- the hart runner --------------------------------------------------- */
static struct {
    void (*fn)(int cpu, void *arg);
    void *arg;
    int n;
    int caller;
    atomic_int go[RV_MAX_HARTS]; /* set to post a run to a hart, cleared by it */
    atomic_int done;            /* harts finished with the current run */
    atomic_int broken;          /* ... that returned with interrupts pushed off */
} run;

void hart_kick(int h) { sbi_send_ipi_one((unsigned long)h); }

/* Sleep until *v is nonzero: wfi with interrupts masked so a wakeup cannot
 * slip between the test and the wfi; open them to take it. */
static void wait_set(atomic_int *v)
{
    rv_intr_off();
    while (!atomic_load_explicit(v, memory_order_acquire)) {
        rv_wfi();
        rv_intr_on();
        rv_intr_off();
    }
    rv_intr_on();
}

static void run_share(int cpu)
{
    run.fn(cpu, run.arg);
    if (rv_harts[cpu].noff != 0 || !rv_intr_get()) {
        atomic_fetch_add(&run.broken, 1);
        while (rv_harts[cpu].noff)
            smp_port_irq_pop();
        rv_intr_on();
    }
    if (atomic_fetch_add_explicit(&run.done, 1, memory_order_acq_rel) + 1 == run.n &&
        run.caller != cpu)
        hart_kick(run.caller);
}

int harts_run(int n, void (*fn)(int cpu, void *arg), void *arg)
{
    int me = (int)rv_tp();
    if (n < 1 || n > boot.ncpu)
        smp_port_panic("harts_run: bad hart count");
    run.fn = fn;
    run.arg = arg;
    run.n = n;
    run.caller = me;
    atomic_store(&run.done, 0);
    atomic_store(&run.broken, 0);
    for (int h = 0; h < n; h++)
        if (h != me) {
            atomic_store_explicit(&run.go[h], 1, memory_order_release);
            hart_kick(h);
        }
    if (me < n)
        run_share(me);
    rv_intr_off();
    while (atomic_load_explicit(&run.done, memory_order_acquire) < n) {
        rv_wfi();
        rv_intr_on();
        rv_intr_off();
    }
    rv_intr_on();
    return atomic_load(&run.broken);
}

static void hart_init(int hart)
{
    trap_hart_init();
    plic_hart_init(hart);
    atomic_fetch_add(&online, 1);
    rv_intr_on();
}

void kmain_secondary(unsigned long hart)
{
    if (hart >= RV_MAX_HARTS)
        for (;;)
            rv_wfi();
    hart_init((int)hart);
    for (;;) {
        wait_set(&run.go[hart]);
        atomic_store_explicit(&run.go[hart], 0, memory_order_relaxed);
        run_share((int)hart);
    }
}

void kmain(unsigned long hart, const void *dtb)
{
    uart_init();
    rv_port_boot();
    fdt_scan(dtb);
    if (boot.ncpu < 1)
        boot.ncpu = 1;
    if (boot.ncpu > RV_MAX_HARTS)
        boot.ncpu = RV_MAX_HARTS;
    if (!boot.ram_end) {
        boot.ram_start = 0x80000000UL;
        boot.ram_end = boot.ram_start + (128UL << 20);
    }
    if (hart >= (unsigned long)boot.ncpu)
        smp_port_panic("boot hart id beyond the harts this kernel runs");
    boot.boot_hart = (int)hart;
    kprintf("smpmem riscv64 kernel: %d harts, RAM %p..%p, boot hart %lu, args \"%s\"\n",
            boot.ncpu, (void *)boot.ram_start, (void *)boot.ram_end, hart, boot.bootargs);
    long tick = bootarg_num("tick", 2000);
    timer_set_period_us((unsigned long)(tick > 0 ? tick : 2000));
    plic_init();
    hart_init((int)hart);
    for (int h = 0; h < boot.ncpu; h++) {
        if (h == (int)hart)
            continue;
        long err = sbi_hart_start((unsigned long)h, (uintptr_t)_entry_secondary, 0);
        if (err)
            kprintf("hart %d: SBI hart_start error %ld\n", h, err);
    }
    uint64_t t0 = rv_time();
    while (atomic_load(&online) < boot.ncpu) {
        if (rv_time() - t0 > 5 * RV_TIMEBASE_HZ)
            smp_port_panic("not every hart came online");
        smp_port_relax();
    }
    int code = bootarg_flag("demo") ? demo_main() : suite_main();
    rv_poweroff(code);
}
