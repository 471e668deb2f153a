/*
 * RISC-V supervisor-mode helpers for the riscv64 port: CSR access, the
 * SBI calls the port and the kernel use, the per-hart record, and the
 * QEMU virt addresses.  Everything here is the port's own; the core never
 * includes it.
 */
#ifndef SMPMEM_RISCV_H
#define SMPMEM_RISCV_H

#include <stdatomic.h>
#include <stdint.h>

#define RV_MAX_HARTS 16              /* harts this kernel starts (QEMU virt: ids 0..n-1) */

#define SSTATUS_SIE  (1UL << 1)
#define SIE_SSIE     (1UL << 1)      /* software interrupt (IPI) */
#define SIE_STIE     (1UL << 5)      /* timer */
#define SIE_SEIE     (1UL << 9)      /* external (PLIC) */
#define SIP_SSIP     (1UL << 1)

#define CSR_READ(name) ({ unsigned long v_; __asm__ volatile("csrr %0, " #name : "=r"(v_)); v_; })
#define CSR_WRITE(name, v) __asm__ volatile("csrw " #name ", %0" : : "r"((unsigned long)(v)) : "memory")
#define CSR_SET(name, v) __asm__ volatile("csrs " #name ", %0" : : "r"((unsigned long)(v)) : "memory")
#define CSR_CLEAR(name, v) __asm__ volatile("csrc " #name ", %0" : : "r"((unsigned long)(v)) : "memory")

static inline unsigned long rv_tp(void)
{
    unsigned long v;
    __asm__ volatile("mv %0, tp" : "=r"(v));
    return v;
}

static inline uint64_t rv_time(void) { return CSR_READ(time); }   /* 10 MHz on virt */
#define RV_TIMEBASE_HZ 10000000UL

static inline void rv_intr_on(void) { CSR_SET(sstatus, SSTATUS_SIE); }
static inline void rv_intr_off(void) { CSR_CLEAR(sstatus, SSTATUS_SIE); }
static inline int rv_intr_get(void) { return (CSR_READ(sstatus) & SSTATUS_SIE) != 0; }
static inline void rv_wfi(void) { __asm__ volatile("wfi" ::: "memory"); }

/* A cross-call request, on the asking hart's stack (port.c). */
struct rv_xreq {
    void (*fn)(int cpu, void *arg);
    void *arg;
    struct rv_xreq *next;           /* queue link, under the target's qlock */
    atomic_int done;                /* set by the target when fn returned */
};

/* Per-hart state of the port.  noff/intena are xv6's push_off/pop_off
 * counter and saved enable bit, and `serving` says a cross-called fn runs
 * here; only the hart itself touches them. */
struct rv_hart {
    _Alignas(64) int noff;          /* depth of smp_port_irq_push */
    int intena;                     /* SIE before the outermost push */
    int serving;                    /* a cross-called fn is running on this hart */
    atomic_int qlock;               /* guards head/tail: held for a few instructions */
    struct rv_xreq *_Atomic head;   /* requests to run here, oldest first */
    struct rv_xreq *tail;
    unsigned long xcalls_served;    /* statistics: fns run for others */
    /* The core's per-CPU words (SMP_PORT_HAS_CPU_WORDS, port.h): the
     * push's token is this record, so a fast path finds its caches here. */
    void *smp_words[2];
};
extern struct rv_hart rv_harts[RV_MAX_HARTS];
/* At boot, on the first hart, before any hart calls smpmem: every hart's
 * words for the core start idle (port.h). */
void rv_port_boot(void);

/* ---- SBI (OpenSBI): a0..a5 arguments, a6 function, a7 extension ------- */
struct sbiret { long error; long value; };
static inline struct sbiret sbi_call(long ext, long fid, unsigned long a0, unsigned long a1,
                                     unsigned long a2)
{
    register unsigned long r0 __asm__("a0") = a0;
    register unsigned long r1 __asm__("a1") = a1;
    register unsigned long r2 __asm__("a2") = a2;
    register long r6 __asm__("a6") = fid;
    register long r7 __asm__("a7") = ext;
    __asm__ volatile("ecall" : "+r"(r0), "+r"(r1) : "r"(r2), "r"(r6), "r"(r7) : "memory");
    return (struct sbiret){ (long)r0, (long)r1 };
}
#define SBI_EXT_TIME 0x54494D45L     /* "TIME" */
#define SBI_EXT_IPI  0x735049L       /* "sPI" */
#define SBI_EXT_HSM  0x48534DL       /* "HSM" */
#define SBI_EXT_SRST 0x53525354L     /* "SRST" */

static inline void sbi_set_timer(uint64_t when) { sbi_call(SBI_EXT_TIME, 0, when, 0, 0); }
/* Raise the supervisor software interrupt on one hart. */
static inline void sbi_send_ipi_one(unsigned long hart) { sbi_call(SBI_EXT_IPI, 0, 1, hart, 0); }
static inline long sbi_hart_start(unsigned long hart, unsigned long addr, unsigned long opaque)
{ return sbi_call(SBI_EXT_HSM, 0, hart, addr, opaque).error; }
static inline long sbi_hart_status(unsigned long hart)  /* <0: no such hart */
{ struct sbiret r = sbi_call(SBI_EXT_HSM, 2, hart, 0, 0); return r.error ? r.error : r.value; }

/* ---- QEMU virt ---------------------------------------------------------- */
#define VIRT_TEST     0x100000UL      /* sifive test device: power off with a code */
#define VIRT_UART0    0x10000000UL    /* 16550 */
#define VIRT_VIRTIO0  0x10001000UL    /* virtio-mmio slot 0 */
#define VIRT_PLIC     0x0c000000UL
#define VIRT_UART0_IRQ  10
#define VIRT_VIRTIO0_IRQ 1

/* Run a cross-call posted to this hart, if any (port.c).  Call it from
 * every loop that waits with interrupts off outside smpmem (a kernel
 * spinlock, a barrier): such a hart takes no IPI, and smpmem's contract
 * lets others wait for it only until its pop.  Never call it inside an
 * smpmem section (smp_port_relax must not call it: smpmem spins there). */
void rv_xcall_poll(void);

/* Stop the machine: QEMU exits with status code (0 = success). */
_Noreturn void rv_poweroff(int code);

#endif
