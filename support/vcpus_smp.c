/* vcpus_run: the runner of vcpus.c on smpmem's hosted virtual CPUs.  Apart
 * from vcpus.c so that programs that do not link smpmem can use the runner. */
#include "vcpus.h"
#include <smpmem/hosted.h>

static int irq_still_off(int cpu)
{
    (void)cpu;
    return smp_hosted_irq_depth() != 0;
}

double vcpus_run(int first, int n, vcpu_fn *fn, void *arg)
{
    static const struct vcpus_hooks bound = { smp_hosted_bind_cpu, irq_still_off };
    return vcpus_run_with(&bound, first, n, fn, arg);
}
