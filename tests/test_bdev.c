/* Block devices: the table refuses bad registrations and reports missing
 * devices; a RAM disk keeps every block (across 64 KiB chunks, odd block
 * sizes included), takes its storage from the managed region and gives it
 * all back; a file device reads and writes the file and reports errors. */
#define _GNU_SOURCE
#include "harness.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <smpmem/bdev.h>
#include <smpmem/bio_debug.h>
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>

#define MiB (1UL << 20)
#define REGION (64 * MiB)

static char *region;

static int setup(void)
{
    region = region_map(REGION, 0);
    return pmm_init(region, region + REGION, 4);
}

static void teardown(void)
{
    bdev_reset();
    pmm_drain();
    CHECK(pmm_free_pages() == pmm_total_pages(), "every page back after bdev_reset");
    CHECK(pmm_check() == 0, "pmm invariants");
    pmm_reset();
    region_unmap(region, REGION, 0);
}

static int nop_read(void *ctx, uint64_t b, void *dst) { (void)ctx; (void)b; (void)dst; return 0; }
static int nop_write(void *ctx, uint64_t b, const void *s) { (void)ctx; (void)b; (void)s; return 0; }
static int positive_read(void *ctx, uint64_t b, void *dst) { (void)ctx; (void)b; (void)dst; return 3; }
static int closed;
static void count_close(void *ctx) { (void)ctx; closed++; }

TEST(registration_rules)
{
    REQUIRE(setup() == 0, "setup");
    struct smp_bdev_ops ops = { nop_read, nop_write, NULL, count_close };
    struct smp_bdev_ops no_read = { NULL, nop_write, NULL, NULL };
    CHECK(bdev_register(SMP_BDEV_MAX, &ops, NULL, 512, 8) == SMP_EINVAL, "dev out of range");
    CHECK(bdev_register(0, NULL, NULL, 512, 8) == SMP_EINVAL, "NULL ops");
    CHECK(bdev_register(0, &no_read, NULL, 512, 8) == SMP_EINVAL, "NULL read");
    CHECK(bdev_register(0, &ops, NULL, 0, 8) == SMP_EINVAL, "block size 0");
    CHECK(bdev_register(0, &ops, NULL, 512, 0) == SMP_EINVAL, "no blocks");
    CHECK(!bdev_present(0), "nothing registered by failures");
    for (unsigned d = 0; d < SMP_BDEV_MAX; d++)
        CHECK(bdev_register(d, &ops, NULL, 512 + d, 8 + d) == 0, "register %u", d);
    CHECK(bdev_register(3, &ops, NULL, 512, 8) == SMP_EBUSY, "twice");
    CHECK(bdev_block_size(15) == 527 && bdev_nblocks(15) == 23, "geometry of device 15");
    char block[600];
    CHECK(bdev_read(2, 10, block) == SMP_EINVAL, "read past the end");
    CHECK(bdev_write(2, 10, block) == SMP_EINVAL, "write past the end");
    CHECK(bdev_read(2, 9, block) == 0, "last block");
    CHECK(bdev_flush(2) == 0, "no flush hook: nothing to do");
    CHECK(bdev_unregister(2) == 0 && closed == 1, "unregister closes");
    CHECK(bdev_unregister(2) == SMP_ENODEV, "unregister twice");
    CHECK(bdev_read(2, 0, block) == SMP_ENODEV && bdev_flush(2) == SMP_ENODEV, "gone");
    CHECK(bdev_block_size(2) == 0 && bdev_nblocks(2) == 0, "no geometry");
    CHECK(bdev_read(SMP_BDEV_MAX, 0, block) == SMP_ENODEV, "out of range is no device");
    struct smp_bdev_ops pos = { positive_read, nop_write, NULL, NULL };
    CHECK(bdev_register(2, &pos, NULL, 512, 8) == 0, "re-register");
    CHECK(bdev_read(2, 0, block) == SMP_EIO, "a positive device result reads as SMP_EIO");
    bdev_reset();
    /* 1 earlier + the 15 devices with a close hook (device 2 now has none). */
    CHECK(closed == 1 + (SMP_BDEV_MAX - 1), "reset closed the other 15 devices (%d)", closed);
    for (unsigned d = 0; d < SMP_BDEV_MAX; d++)
        CHECK(!bdev_present(d), "reset unregistered %u", d);
    teardown();
}

static void fill(unsigned char *p, size_t n, uint64_t blockno, unsigned salt)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(blockno * 31 + i * 7 + salt);
}

TEST(ramdisk_keeps_every_block)
{
    REQUIRE(setup() == 0, "setup");
    size_t total = pmm_total_pages();
    /* 1000-byte blocks: 65 per chunk, misaligned offsets; 8 KiB blocks:
     * aligned word copies; 128 KiB blocks: one block per chunk. */
    unsigned sizes[3] = { 1000, 8192, 128 * 1024 };
    uint64_t counts[3] = { 1000, 100, 20 };
    unsigned char *want = malloc(128 * 1024), *got = malloc(128 * 1024);
    for (int k = 0; k < 3; k++) {
        CHECK(ramdisk_create(k, counts[k], sizes[k]) == 0, "ramdisk %u x %llu", sizes[k],
              (unsigned long long)counts[k]);
        CHECK(bdev_block_size(k) == sizes[k] && bdev_nblocks(k) == counts[k], "geometry");
        CHECK(bdev_read(k, counts[k] - 1, got) == 0 && got[0] == 0 && got[sizes[k] - 1] == 0,
              "starts zeroed");
    }
    pmm_drain();
    size_t used = total - pmm_free_pages();
    CHECK(used * SMP_PAGE_SIZE >= 1000 * 1000 + 100 * 8192 + 20 * 128 * 1024,
          "storage comes from the region (%zu pages used)", used);
#ifdef SMP_CHECKED
    /* The checked build adds an 8-byte trailer to every block: a 2^k-byte
     * block takes a 2^(k+1) one. */
    CHECK(used * SMP_PAGE_SIZE <= (1000 * 1000 + 100 * 8192 + 20 * 128 * 1024) * 5 / 2,
          "and wastes little for the checked build (%zu pages)", used);
#else
    CHECK(used * SMP_PAGE_SIZE <= (1000 * 1000 + 100 * 8192 + 20 * 128 * 1024) * 5 / 4,
          "and wastes little (%zu pages)", used);
#endif
    CHECK(ramdisk_create(1, 10, 512) == SMP_EBUSY, "device taken");
    CHECK(ramdisk_create(5, 0, 512) == SMP_EINVAL, "no blocks");
    CHECK(ramdisk_create(5, 10, 0) == SMP_EINVAL, "no block size");
    CHECK(ramdisk_create(5, 1ULL << 40, 4096) == SMP_ENOMEM, "larger than the region");
    CHECK(!bdev_present(5), "failed create registers nothing");
    for (int k = 0; k < 3; k++)
        for (uint64_t b = 0; b < counts[k]; b++) {
            fill(want, sizes[k], b, (unsigned)k);
            CHECK(bdev_write(k, b, want) == 0, "write");
        }
    long bad = 0;
    for (int k = 0; k < 3; k++)
        for (uint64_t b = 0; b < counts[k]; b++) {
            fill(want, sizes[k], b, (unsigned)k);
            memset(got, 0xCC, sizes[k]);
            bad += bdev_read(k, b, got) != 0 || memcmp(want, got, sizes[k]) != 0;
        }
    CHECK(bad == 0, "%ld blocks read back wrong", bad);
    free(want);
    free(got);
    teardown();   /* checks that unregistering gave every page back */
}

TEST(file_device)
{
    REQUIRE(setup() == 0, "setup");
    char path[] = "/tmp/smpmem-bdev-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "mkstemp");
    CHECK(bdev_open_file(0, path, 512) == SMP_EINVAL, "empty file: no blocks");
    CHECK(bdev_open_file(0, "/nonexistent/smpmem", 512) == SMP_ENODEV, "missing file");
    CHECK(bdev_open_file(0, path, 0) == SMP_EINVAL, "block size 0");
    CHECK(bdev_open_file(SMP_BDEV_MAX, path, 512) == SMP_EINVAL, "bad device");
    REQUIRE(ftruncate(fd, 64 * 512 + 100) == 0, "size the file");
    CHECK(bdev_open_file(7, path, 512) == 0, "open");
    CHECK(bdev_open_file(7, path, 512) == SMP_EBUSY, "open twice");
    CHECK(bdev_nblocks(7) == 64, "partial last block ignored: %llu",
          (unsigned long long)bdev_nblocks(7));
    unsigned char blk[512], back[512];
    for (uint64_t b = 0; b < 64; b++) {
        fill(blk, 512, b, 9);
        CHECK(bdev_write(7, b, blk) == 0, "write %llu", (unsigned long long)b);
    }
    CHECK(bdev_flush(7) == 0, "fsync");
    long bad = 0;
    for (uint64_t b = 0; b < 64; b++) {
        fill(blk, 512, b, 9);
        bad += pread(fd, back, 512, (off_t)(b * 512)) != 512 || memcmp(blk, back, 512);
        bad += bdev_read(7, b, back) != 0 || memcmp(blk, back, 512);
    }
    CHECK(bad == 0, "%ld blocks differ in the file or through the device", bad);
    /* The file shrinks under the device: reads past its end fail with EIO. */
    REQUIRE(ftruncate(fd, 10 * 512) == 0, "shrink");
    CHECK(bdev_read(7, 20, back) == SMP_EIO, "read beyond the shrunk file");
    CHECK(bdev_read(7, 5, back) == 0, "earlier blocks still read");
    CHECK(bdev_unregister(7) == 0, "close");
    unlink(path);
    close(fd);
    teardown();
}

int main(void)
{
    return RUN_TESTS(registration_rules, ramdisk_keeps_every_block, file_device);
}
