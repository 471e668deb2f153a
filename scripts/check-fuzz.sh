# Sourced by scripts/check.sh (make check): a bounded run of the fuzz target
# tests/fuzz/fuzz_pmm.c (CHECK_FUZZ_SECONDS, default 30) from the seed corpus
# tests/fuzz/corpus.  One pass or one fail in check.sh's totals.
fz_secs=${CHECK_FUZZ_SECONDS:-30}
fz_out=build/fuzz/check-run.txt
mkdir -p build/fuzz
echo "=== fuzz: libFuzzer, ${fz_secs} s (make fuzz FUZZ_SECONDS=n for longer) ==="
if make -s fuzz FUZZ_SECONDS="$fz_secs" >"$fz_out.tmp" 2>&1; then
    mv "$fz_out.tmp" "$fz_out"
    fz_done=$(grep -m1 '^Done [0-9]* runs' "$fz_out")
    fz_cov=$(grep -E '(DONE|INITED) +cov:' "$fz_out" | tail -1 | sed -n 's/.*\(cov: [0-9]* ft: [0-9]*\).*/\1/p')
    echo "ok   fuzz_pmm: $fz_done, $fz_cov"
    total_pass=$((total_pass + 1))
else
    mkdir -p build/fuzz; mv "$fz_out.tmp" "$fz_out" 2>/dev/null
    grep -v '^"\|Uses: \|dictionary' "$fz_out" | tail -30
    echo "FAIL fuzz_pmm (full output: $fz_out; the crashing input is build/fuzz/crash-*)"
    total_fail=$((total_fail + 1))
fi
