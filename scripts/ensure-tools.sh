#!/bin/sh
# Install what the build needs beyond gcc and make, with apt-get (as root);
# a no-op when everything is there.
# Usage: ensure-tools.sh [gcc|clang|peers|plot|valgrind|riscv|malloc]...
#   gcc    the sanitizer runtimes gcc links against
#   clang  clang and its sanitizer runtimes (libclang-rt-14-dev also holds
#          libFuzzer: make fuzz links -fsanitize=fuzzer from it)
#   peers  the allocators bench_kalloc compares against (bench/kalloc.mk):
#          libjemalloc-dev (-ljemalloc), libmimalloc-dev (-lmimalloc),
#          libgoogle-perftools-dev (-ltcmalloc_minimal), libtbb-dev (-ltbbmalloc)
#   plot   gnuplot (gnuplot-nox: no X11), which draws make bench's PNG plots
#   valgrind  callgrind, which counts make bench's instructions per kalloc
#          pair and per buffer-cache hit
#   riscv  the bare-metal riscv64 port (port/riscv64/riscv.mk): the cross
#          compiler (gcc-riscv64-unknown-elf) and QEMU (qemu-system-misc,
#          whose qemu-system-data brings the OpenSBI firmware virt boots)
#   malloc python3, which make check runs on the malloc front end (gcc and
#          sort are there already)
set -e
need=""
for what in "$@"; do
    case "$what" in
    gcc)   for p in libasan8 libubsan1 libtsan2; do
               dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done ;;
    clang) command -v clang >/dev/null 2>&1 || need="$need clang"
           dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || need="$need libclang-rt-14-dev" ;;
    malloc) command -v python3 >/dev/null 2>&1 || need="$need python3" ;;
    plot)  command -v gnuplot >/dev/null 2>&1 || need="$need gnuplot-nox" ;;
    valgrind) command -v valgrind >/dev/null 2>&1 || need="$need valgrind" ;;
    peers) for p in libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev libtbb-dev; do
               dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done ;;
    riscv) command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 || need="$need gcc-riscv64-unknown-elf"
           command -v qemu-system-riscv64 >/dev/null 2>&1 || need="$need qemu-system-misc" ;;
    *)     echo "ensure-tools: unknown set '$what'" >&2; exit 2 ;;
    esac
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "ensure-tools: need$need; run as root so apt-get can install them" >&2
    exit 1
fi
echo "ensure-tools: installing$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends $need >/dev/null
