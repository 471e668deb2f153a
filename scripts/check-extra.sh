#!/bin/sh
# Sourced by scripts/check.sh (when executable): the bare-metal riscv64
# suite under QEMU on 1, 4 and 8 harts (make qemu-check), added to
# check.sh's totals.  Builds the cross toolchain and QEMU first when
# missing (scripts/ensure-tools.sh riscv, as root).
echo "=== riscv64 kernel under QEMU (1, 4, 8 harts) ==="
if make -s rv-kernel >>"$log" 2>&1; then
    rv_out=$(make -s qemu-check 2>&1)
    printf '%s\n' "$rv_out" | sed '$d'
    rv_last=$(printf '%s\n' "$rv_out" | tail -1)
    rv_p=$(printf '%s' "$rv_last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    rv_f=$(printf '%s' "$rv_last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$rv_p" ]; then
        printf '%s\n' "$rv_out" | tail -5
        rv_p=0; rv_f=1
    fi
    total_pass=$((total_pass + rv_p)); total_fail=$((total_fail + rv_f))
else
    echo "riscv64 kernel build failed: see $log"; tail -20 "$log"
    total_fail=$((total_fail + 1))
fi
