/*
 * kalloc/kfree: route a request by size.  (First version: every request is
 * served by whole buddy blocks; the slab layer for small sizes comes next.)
 */
#include "pmm_internal.h"
#include "fmt.h"

static unsigned order_for(size_t size)
{
    unsigned o = 0;
    while ((SMP_PAGE_SIZE << o) < size)
        o++;
    return o;
}

void *smp_kalloc(size_t size)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m || size == 0 || size > (SMP_PAGE_SIZE << m->zone.max_order))
        return 0;
    return smp_page_alloc(order_for(size));
}

static struct smp_page *block_of(struct smp_pmm *m, void *p, const char *who)
{
    uintptr_t addr = (uintptr_t)p;
    if (!m)
        smp_panic_at(who, addr, "smpmem is not initialised");
    if (addr < m->base || addr - m->base >= (uintptr_t)m->npages << SMP_PAGE_SHIFT)
        smp_panic_at(who, addr, "address outside the managed region");
    if (addr & (SMP_PAGE_SIZE - 1))
        smp_panic_at(who, addr, "not the start of a block");
    return &m->pages[smp_page_index(m, addr)];
}

void smp_kfree(void *p)
{
    if (!p)
        return;
    struct smp_pmm *m = smp_pmm_state;
    struct smp_page *pg = block_of(m, p, "kfree");
    if (pg->state != PG_ALLOC)
        smp_page_validate_free(m, smp_page_index(m, (uintptr_t)p), pg->order, "kfree");
    smp_page_free(p, pg->order);
}

size_t smp_kalloc_usable_size(void *p)
{
    struct smp_pmm *m = smp_pmm_state;
    struct smp_page *pg = block_of(m, p, "kalloc_usable_size");
    return SMP_PAGE_SIZE << pg->order;
}
