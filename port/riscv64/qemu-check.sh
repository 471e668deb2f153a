#!/bin/sh
# make qemu-check: boot the suite kernel on 1, 4 and 8 harts under QEMU
# (TCG), each with a fresh virtio disk, and read each run's last line
# "N passed, N failed" and QEMU's exit code (the kernel powers off with 0
# only when nothing failed; a panic exits with 3).  Logs go to
# $RV_BUILD/check-<harts>.log.  Prints one line per run, then the total as
# the last line; exits non-zero on any failure.
# Environment: RV_QEMU, RV_MEM, RV_BUILD, RV_ARGS (kernel command line),
# RV_HARTS (default "1 4 8"), RV_TIMEOUT (seconds per run, default 300).
set -u
cd "$(dirname "$0")/../.."
QEMU=${RV_QEMU:-qemu-system-riscv64}
MEM=${RV_MEM:-256M}
B=${RV_BUILD:-build/riscv64}
ARGS=${RV_ARGS:-}
pass=0; fail=0
for n in ${RV_HARTS:-1 4 8}; do
    log=$B/check-$n.log
    disk=$B/check-disk-$n.img
    rm -f "$disk" && dd if=/dev/zero of="$disk" bs=1M count=4 status=none
    start=$(date +%s)
    timeout "${RV_TIMEOUT:-300}" "$QEMU" -machine virt -bios default -m "$MEM" -smp "$n" \
        -kernel "$B/kernel.elf" -global virtio-mmio.force-legacy=false \
        -drive file="$disk",if=none,format=raw,id=x0 \
        -device virtio-blk-device,drive=x0,bus=virtio-mmio-bus.0 \
        -display none -monitor none -serial stdio -append "$ARGS" </dev/null >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    last=$(tr -d '\r' <"$log" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    p=$(printf '%s' "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(printf '%s' "$last" | sed -n 's/.* \([0-9]*\) failed$/\1/p')
    if [ -z "$p" ]; then
        tr -d '\r' <"$log" | tail -25
        echo "riscv64 -smp $n: no result line (QEMU exit $rc after ${secs}s; see $log)"
        fail=$((fail + 1)); continue
    fi
    if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
        tr -d '\r' <"$log" | grep -E '^(FAIL|  FAIL|panic)' | head -20
        [ "$f" = 0 ] && f=1
    fi
    echo "riscv64 -smp $n: $last (QEMU exit $rc, ${secs}s)"
    pass=$((pass + p)); fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
