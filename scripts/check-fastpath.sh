#!/bin/sh
# Prove from the disassembly that the allocator's fast paths execute no
# atomic read-modify-write, no fence and no lock (issue 8): the functions
# smp_kalloc, smp_kfree, kfree_block (kfree's route for page blocks),
# smp_page_alloc and smp_page_free, with the port's hot hooks inlined, must contain no lock-prefixed instruction, no xchg
# (implicitly locked), no cmpxchg/xadd and no m/s/lfence.  Slow paths are
# separate functions (tail calls), so they do not count.
# Usage: check-fastpath.sh OBJECT LOCKED
#   LOCKED=1: the per-CPU lock fallback, where each of these functions must
#   contain an atomic (the same scan, expected to find one: proof that the
#   scan can fail).
set -u
obj=$1; locked=${2:-0}
case "$(uname -m)" in x86_64|i?86) ;; *) echo "fastpath-check: x86 only; skipped"; exit 0 ;; esac
pattern='(^|[[:space:]])(lock[[:space:]]|cmpxchg|xadd|mfence|sfence|lfence)|xchg[^(]*\('
fail=0
for fn in smp_kalloc smp_kfree kfree_block smp_page_alloc smp_page_free; do
    body=$(objdump -d --no-show-raw-insn "$obj" | awk -v f="<$fn>:" '
        $2 == f { on = 1; next }
        on && (/^[0-9a-f]+ <.*>:$/ || /^Disassembly of section/) { exit }
        on && NF { print }')
    if [ -z "$body" ]; then echo "fastpath-check: $fn not found in $obj"; fail=1; continue; fi
    n=$(printf '%s\n' "$body" | wc -l)
    hits=$(printf '%s\n' "$body" | grep -E "$pattern" || true)
    if [ "$locked" = 1 ]; then
        if [ -z "$hits" ]; then echo "fastpath-check: $fn has no atomic in the locked build: the scan is blind"; fail=1;
        else echo "fastpath-check: $fn: the locked build takes its gate lock, and the scan sees it"; fi
    elif [ -n "$hits" ]; then
        echo "fastpath-check: $fn ($n instructions) executes atomics:"; printf '%s\n' "$hits"; fail=1
    else
        echo "fastpath-check: $fn: $n instructions, no atomic, no fence"
    fi
done
exit $fail
