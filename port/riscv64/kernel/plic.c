/*
 * The PLIC of QEMU virt: the virtio disk's interrupt goes to the S-mode
 * context of every hart (context 2*hart+1); whichever claims it handles it.
 */
#include "kernel.h"

#define PLIC_PRIORITY(irq)   (VIRT_PLIC + 4 * (irq))
#define PLIC_SENABLE(hart)   (VIRT_PLIC + 0x2080 + (hart) * 0x100)
#define PLIC_STHRESHOLD(hart) (VIRT_PLIC + 0x201000 + (hart) * 0x2000)
#define PLIC_SCLAIM(hart)    (VIRT_PLIC + 0x201004 + (hart) * 0x2000)
#define REG(a) (*(volatile uint32_t *)(a))

void plic_init(void)
{
    REG(PLIC_PRIORITY(VIRT_VIRTIO0_IRQ)) = 1;
}

void plic_hart_init(int hart)
{
    REG(PLIC_SENABLE(hart)) = 1U << VIRT_VIRTIO0_IRQ;
    REG(PLIC_STHRESHOLD(hart)) = 0;
}

int plic_claim(int hart) { return (int)REG(PLIC_SCLAIM(hart)); }
void plic_complete(int hart, int irq) { REG(PLIC_SCLAIM(hart)) = (uint32_t)irq; }
