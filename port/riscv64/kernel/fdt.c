/*
 * Just enough of the flattened device tree: the harts (/cpus/cpu@N), the
 * first RAM bank (/memory@... reg, two cells each) and /chosen/bootargs.
 * Everything in an FDT is big-endian.
 */
#include "kernel.h"

#define FDT_MAGIC      0xd00dfeedU
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE   2
#define FDT_PROP       3
#define FDT_NOP        4
#define FDT_END        9

static uint32_t be32(const void *p)
{
    const unsigned char *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t be64(const void *p) { return (uint64_t)be32(p) << 32 | be32((const char *)p + 4); }

void fdt_scan(const void *dtb)
{
    const char *base = dtb;
    if (!dtb || be32(base) != FDT_MAGIC)
        return;
    const char *structs = base + be32(base + 8), *strings = base + be32(base + 12);
    const char *path[8] = { 0 };
    int depth = 0;
    for (const char *p = structs;;) {
        uint32_t tok = be32(p);
        p += 4;
        if (tok == FDT_BEGIN_NODE) {
            const char *name = p;
            if (depth < 8)
                path[depth] = name;
            depth++;
            if (depth == 3 && !strcmp(path[1], "cpus") && !strncmp(name, "cpu@", 4))
                boot.ncpu++;
            p += (strlen(name) + 4) & ~3UL;
        } else if (tok == FDT_END_NODE) {
            depth--;
        } else if (tok == FDT_PROP) {
            uint32_t len = be32(p), nameoff = be32(p + 4);
            const char *val = p + 8, *prop = strings + nameoff;
            if (depth == 2 && !strncmp(path[1], "memory@", 7) && !strcmp(prop, "reg") &&
                len >= 16 && !boot.ram_end) {
                boot.ram_start = (uintptr_t)be64(val);
                boot.ram_end = boot.ram_start + (uintptr_t)be64(val + 8);
            }
            if (depth == 2 && !strcmp(path[1], "chosen") && !strcmp(prop, "bootargs")) {
                size_t n = len < sizeof boot.bootargs ? len : sizeof boot.bootargs - 1;
                memcpy(boot.bootargs, val, n);
                boot.bootargs[n] = '\0';
            }
            p += 8 + ((len + 3) & ~3U);
        } else if (tok == FDT_NOP) {
            continue;
        } else {
            break;
        }
    }
}
