#!/bin/sh
# make check: build and run every test program in every variant, prove the
# core freestanding, and print one total.  Last line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
total_pass=0; total_fail=0; broken=0
log=build/check.log
mkdir -p build; : > "$log"

run_variant() { # toolchain san dir scale [locked [checked]]
    tc=$1; san=$2; dir=$3; scale=$4; locked=${5:-0}; checked=${6:-0}
    echo "=== $tc $san$( [ "$locked" = 1 ] && echo ' (locked per-CPU fallback)')$( [ "$checked" = 1 ] && echo ' (checked build)') ==="
    if ! make -s -j"$JOBS" TOOLCHAIN="$tc" SAN="$san" LOCKED="$locked" CHECKED="$checked" BUILD="$dir" tests >>"$log" 2>&1; then
        echo "build failed ($tc $san): see $log"; tail -30 "$log"; broken=$((broken + 1)); return
    fi
    for t in "$dir"/tests/test_*; do
        out=$(SMP_TEST_SCALE=$scale "$t" 2>&1); rc=$?
        last=$(printf '%s\n' "$out" | tail -1)
        p=$(printf '%s' "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
        f=$(printf '%s' "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
        if [ -z "$p" ]; then
            printf '%s\n' "$out" | tail -40
            echo "CRASH $t (exit $rc)"; total_fail=$((total_fail + 1)); continue
        fi
        if [ "$f" != 0 ] || [ $rc != 0 ]; then printf '%s\n' "$out"; fi
        note=""
        if [ $rc != 0 ] && [ "$f" = 0 ]; then f=1; note=" -- FAILED: exit $rc (sanitizer report above)"; fi
        echo "$(basename "$t"): $last$note"
        total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    done
}

scripts/ensure-tools.sh gcc clang || broken=$((broken + 1))
run_variant gcc   none build                100
if make -s TOOLCHAIN=gcc BUILD=build freestanding; then total_pass=$((total_pass + 1)); else total_fail=$((total_fail + 1)); fi
run_variant clang none build/clang-plain    100
if make -s TOOLCHAIN=clang BUILD=build/clang-plain freestanding; then total_pass=$((total_pass + 1)); else total_fail=$((total_fail + 1)); fi
run_variant gcc   asan build/gcc-asan       30
run_variant clang asan build/clang-asan     30
run_variant gcc   tsan build/gcc-tsan       20
run_variant clang tsan build/clang-tsan     20
# The fallback for ports without cross-calls (SMP_PERCPU_LOCKED), plain and TSan.
run_variant gcc   none build/gcc-locked     50 1
run_variant clang tsan build/clang-tsan-locked 20 1
# The checked build (CHECKED=1): every test, plus its own misuse cases.
run_variant gcc   none build/gcc-checked    50 0 1
# The fast paths contain no atomic instruction (and the scan can see one:
# in the locked build it must find the gate lock).
step() { if "$@" >>"$log" 2>&1; then total_pass=$((total_pass + 1)); echo "ok   $*"; else total_fail=$((total_fail + 1)); echo "FAIL $* (see $log)"; tail -8 "$log"; fi; }
step make -s TOOLCHAIN=gcc BUILD=build fastpath-check
step make -s TOOLCHAIN=clang BUILD=build/clang-plain fastpath-check
step make -s TOOLCHAIN=gcc LOCKED=1 BUILD=build/gcc-locked fastpath-check
# No libgcc helper and no libc call on i386, armv7, aarch64 and riscv64 either.
step scripts/check-cross.sh
[ -x scripts/check-extra.sh ] && . scripts/check-extra.sh
[ -x scripts/check-fuzz.sh ] && . scripts/check-fuzz.sh
[ -x scripts/check-faults.sh ] && . scripts/check-faults.sh
[ -x scripts/check-soak.sh ] && . scripts/check-soak.sh
[ -x scripts/check-orders.sh ] && step scripts/check-orders.sh
[ -x scripts/check-malloc.sh ] && . scripts/check-malloc.sh

total_fail=$((total_fail + broken))
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
