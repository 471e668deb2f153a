/*
 * Hosted port: block devices backed by files (see smp_bdev_open_file in
 * include/smpmem/bdev.h).  read/write are pread/pwrite of whole blocks
 * (retrying short transfers and EINTR), flush is fsync, close closes the
 * descriptor.  Any failure is reported as SMP_EIO.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <smpmem/bdev.h>

struct filedev {
    int fd;
    unsigned block_size;
};

static int fd_read(void *ctx, uint64_t blockno, void *dst)
{
    struct filedev *f = ctx;
    size_t done = 0;
    off_t base = (off_t)(blockno * f->block_size);
    while (done < f->block_size) {
        ssize_t n = pread(f->fd, (char *)dst + done, f->block_size - done, base + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return SMP_EIO;     /* error, or the file shrank under us */
        done += (size_t)n;
    }
    return 0;
}

static int fd_write(void *ctx, uint64_t blockno, const void *src)
{
    struct filedev *f = ctx;
    size_t done = 0;
    off_t base = (off_t)(blockno * f->block_size);
    while (done < f->block_size) {
        ssize_t n = pwrite(f->fd, (const char *)src + done, f->block_size - done,
                           base + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return SMP_EIO;
        done += (size_t)n;
    }
    return 0;
}

static int fd_flush(void *ctx)
{
    struct filedev *f = ctx;
    return fsync(f->fd) == 0 ? 0 : SMP_EIO;
}

static void fd_close(void *ctx)
{
    struct filedev *f = ctx;
    close(f->fd);
    free(f);
}

static const struct smp_bdev_ops file_ops = {
    .read = fd_read,
    .write = fd_write,
    .flush = fd_flush,
    .close = fd_close,
};

int smp_bdev_open_file(unsigned dev, const char *path, unsigned block_size)
{
    if (!path || block_size == 0 || dev >= SMP_BDEV_MAX)
        return SMP_EINVAL;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return SMP_ENODEV;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return SMP_ENODEV;
    }
    uint64_t nblocks = (uint64_t)st.st_size / block_size;
    if (nblocks == 0) {
        close(fd);
        return SMP_EINVAL;
    }
    struct filedev *f = malloc(sizeof *f);
    if (!f) {
        close(fd);
        return SMP_ENOMEM;
    }
    f->fd = fd;
    f->block_size = block_size;
    int r = smp_bdev_register(dev, &file_ops, f, block_size, nblocks);
    if (r)
        fd_close(f);
    return r;
}
