# Sourced by scripts/check.sh (make check): a short soak (tests/soak.c,
# CHECK_SOAK_SECONDS each, default 10) in the plain build and under TSan;
# make soak runs it for SOAK_SECONDS (default 120).  Each run adds one pass
# or one fail to check.sh's totals.
soak_variant() { # toolchain san build-dir
    sv_name="soak ($1 $2, ${CHECK_SOAK_SECONDS:-10} s)"
    sv_out=$(make -s TOOLCHAIN="$1" SAN="$2" BUILD="$3" SOAK_SECONDS="${CHECK_SOAK_SECONDS:-10}" soak 2>&1); sv_rc=$?
    if [ $sv_rc = 0 ] && [ "$(printf '%s\n' "$sv_out" | tail -1)" = "1 passed, 0 failed" ]; then
        printf '%s\n' "$sv_out" | grep '^ *soak:' | sed 's/^ *//; s/^/     /'
        echo "ok   $sv_name"; total_pass=$((total_pass + 1))
    else
        printf '%s\n' "$sv_out" | tail -30
        echo "FAIL $sv_name (exit $sv_rc)"; total_fail=$((total_fail + 1))
    fi
}
echo "=== soak ==="
soak_variant gcc   none build
soak_variant clang tsan build/clang-tsan
