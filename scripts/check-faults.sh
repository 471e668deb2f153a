# Sourced by scripts/check.sh (make check): tests/test_faults.c with the
# core built with -DSMP_FAULT_INJECT (make faults), in several variants.
# SMP_TEST_SCALE sets the sweep's stride (100: every fault point).  Each
# variant adds its passes and failures to check.sh's totals.
fault_variant() { # toolchain san locked scale
    fv_dir=build/faults-$1-$2$( [ "$3" = 1 ] && echo -locked)
    fv_name="faults ($1 $2$( [ "$3" = 1 ] && echo ' locked'))"
    if ! make -s TOOLCHAIN="$1" SAN="$2" LOCKED="$3" FAULT=1 BUILD="$fv_dir" "$fv_dir/tests/test_faults" >>"$log" 2>&1; then
        echo "FAIL $fv_name: build failed (see $log)"; total_fail=$((total_fail + 1)); return
    fi
    fv_out=$(SMP_TEST_SCALE=$4 "$fv_dir/tests/test_faults" 2>&1); fv_rc=$?
    fv_last=$(printf '%s\n' "$fv_out" | tail -1)
    fv_p=$(printf '%s' "$fv_last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    fv_f=$(printf '%s' "$fv_last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$fv_p" ] || [ "$fv_f" != 0 ] || [ $fv_rc != 0 ]; then
        printf '%s\n' "$fv_out" | tail -30
        fv_f=${fv_f:-1}; [ "$fv_f" = 0 ] && fv_f=1
        echo "FAIL $fv_name (exit $fv_rc)"; total_fail=$((total_fail + fv_f))
        [ -n "$fv_p" ] && total_pass=$((total_pass + fv_p))
        return
    fi
    printf '%s\n' "$fv_out" | grep '^     ' | sed 's/^ *//; s/^/     /'
    echo "$fv_name: $fv_last"
    total_pass=$((total_pass + fv_p))
}
echo "=== fault injection (make faults) ==="
# Two variants keep make check within its time: plain (half the fault
# points) and clang TSan on the locked build; `make faults` runs any other.
fault_variant gcc   none 0 50
fault_variant clang tsan 1 10
