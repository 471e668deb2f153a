#!/bin/sh
# The core needs nothing but the port hooks on other targets too (issue 9):
# cross-compile every src/ file with clang for a 32-bit and three 64-bit
# targets (-ffreestanding, not PIC, as kernels build), then list the
# symbols the objects need but do not define.  Anything but smp_port_*
# (a libgcc helper such as __udivdi3 or __clzdi2, or memset) fails.
# Both per-CPU modes are built.  Usage: check-cross.sh [CC=clang]
set -u
cd "$(dirname "$0")/.."
cc=${1:-clang}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for mode in "" "-DSMP_PERCPU_LOCKED"; do
    for t in "i386-none-elf" "arm-none-eabi -march=armv7ve" "aarch64-none-elf" "riscv64-none-elf -march=rv64gc"; do
        rm -f "$tmp"/*.o
        for f in $(find src -name '*.c'); do
            if ! $cc --target=$t -std=c11 -Wall -Wextra -Werror -O2 -ffreestanding -fno-pic $mode \
                    -Iinclude -c "$f" -o "$tmp/$(echo "$f" | tr / _).o"; then
                echo "cross: $f does not build for $t $mode"; fail=1
            fi
        done
        nm -u "$tmp"/*.o | awk 'NF==2 {print $2}' | sort -u > "$tmp/needed"
        nm --defined-only "$tmp"/*.o | awk 'NF==3 {print $3}' | sort -u > "$tmp/defined"
        extra=$(comm -23 "$tmp/needed" "$tmp/defined" | grep -v '^smp_port_' | tr '\n' ' ')
        if [ -n "$extra" ]; then
            echo "cross: the core for $t $mode needs: $extra"; fail=1
        else
            echo "cross: $t ${mode:-(cross-call build)}: undefined symbols are port hooks only"
        fi
    done
done
exit $fail
