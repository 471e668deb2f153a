# make check, the malloc front end: sourced by scripts/check.sh (uses its
# step(), $log, total_pass and total_fail).  Real programs run with
# build/libsmpmem-malloc.so preloaded and their output is compared with a
# run on glibc; the heap is checked at every exit (SMPMEM_CHECK=1, on an
# 8 GiB heap so the check's walk stays quick).  Under two minutes on 2 cores.
#   MALLOC_CHECK_QUICK=1   smaller inputs (a development loop)

echo "=== malloc front end (LD_PRELOAD build/libsmpmem-malloc.so) ==="
M_SO=$PWD/build/libsmpmem-malloc.so
M_DIR=build/malloc-check
M_T=build/malloc/tests
mkdir -p "$M_DIR"

# Run "$@" on glibc and under smpmem; pass when both exit 0 and print the
# same.  Outputs kept in $M_DIR/<name>.{glibc,smpmem}.
m_same() { # name command...
    name=$1; shift
    timeout 120 "$@" >"$M_DIR/$name.glibc" 2>"$M_DIR/$name.glibc.err"; rg=$?
    SMPMEM_CHECK=1 SMPMEM_HEAP_SIZE=8G LD_PRELOAD=$M_SO timeout 120 "$@" \
        >"$M_DIR/$name.smpmem" 2>"$M_DIR/$name.smpmem.err"; rs=$?
    if [ $rg = 0 ] && [ $rs = 0 ] && cmp -s "$M_DIR/$name.glibc" "$M_DIR/$name.smpmem"; then
        total_pass=$((total_pass + 1)); echo "ok   malloc: $name (output identical to glibc)"
    else
        total_fail=$((total_fail + 1))
        echo "FAIL malloc: $name (exit glibc $rg, smpmem $rs; outputs in $M_DIR/$name.*)"
        tail -5 "$M_DIR/$name.smpmem.err"
    fi
}

# A misuse must abort (SIGABRT: exit 134) with a report naming the address.
m_misuse() { # mode
    # (braces: the shell's own "Aborted" notice goes nowhere)
    { out=$(LD_PRELOAD=$M_SO "$M_T/badfree" "$1" 2>"$M_DIR/badfree-$1.err"); rc=$?; } 2>/dev/null
    addr=$(printf '%s\n' "$out" | sed -n 's/^addr 0x//p')
    said=$(grep -o '0x[0-9a-f]*' "$M_DIR/badfree-$1.err" | head -1 | sed 's/^0x//')
    if [ $rc = 134 ] && [ -n "$addr" ] && [ -n "$said" ] && \
       [ "$(printf '%d' "0x$addr")" = "$(printf '%d' "0x$said")" ]; then
        total_pass=$((total_pass + 1)); echo "ok   malloc: bad free ($1) reported: $(head -1 "$M_DIR/badfree-$1.err")"
    else
        total_fail=$((total_fail + 1)); echo "FAIL malloc: bad free ($1): exit $rc, stderr: $(head -3 "$M_DIR/badfree-$1.err")"
    fi
}

scripts/ensure-tools.sh malloc || total_fail=$((total_fail + 1))
if step make -s malloc malloc-tests; then
    quick=${MALLOC_CHECK_QUICK:-0}
    # The API as the C library promises it (its own tally).
    out=$(SMPMEM_EXPECT=1 SMPMEM_CHECK=1 LD_PRELOAD=$M_SO timeout 60 "$M_T/api" 2>&1); rc=$?
    last=$(printf '%s\n' "$out" | tail -1)
    p=$(printf '%s' "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(printf '%s' "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$p" ] || [ $rc != 0 ]; then
        printf '%s\n' "$out" | tail -20; echo "FAIL malloc: api (exit $rc)"; total_fail=$((total_fail + 1))
    else
        [ "$f" != 0 ] && printf '%s\n' "$out"
        echo "malloc api: $last"; total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    fi
    for mode in stack double cached interior wild realloc; do m_misuse $mode; done

    # Runs on a 64 MiB heap that must exit 0 (they check themselves).
    m_small_heap() { # name vcpus what command...
        name=$1; v=$2; what=$3; shift 3
        if SMPMEM_VCPUS=$v SMPMEM_CHECK=1 SMPMEM_HEAP_SIZE=64M LD_PRELOAD=$M_SO timeout 60 \
               "$@" >"$M_DIR/$name-$v.out" 2>&1; then
            total_pass=$((total_pass + 1)); echo "ok   malloc: $what, $v vCPUs"
        else
            total_fail=$((total_fail + 1)); echo "FAIL malloc: $what, $v vCPUs: $(tail -3 "$M_DIR/$name-$v.out")"
        fi
    }
    # Exhaustion under 200 threads: ENOMEM, then everything back
    # (stop-the-world by cross-calls, every thread's cache reclaimed).
    for v in 2 64; do m_small_heap pressure $v "exhaustion, 200 threads" "$M_T/pressure" 200 3; done
    # fork while workers exhaust the heap again and again: no child may
    # hang or fail (but with ENOMEM).
    for v in 1 4 64; do
        m_small_heap forkexhaust $v "fork while the heap is exhausted" "$M_T/forktest" 40 8 exhaust
    done
    # Threads that exit give their cache back: pages in use at exit after
    # 1000 short threads stay within 500 of one thread's (a leak would be
    # ~6000: ~20 KiB cached per thread).
    m_inuse() { SMPMEM_STATS=1 LD_PRELOAD=$M_SO "$M_T/threadexit" "$1" 2>&1 >/dev/null |
                sed -n 's/.*pages managed \([0-9]*\), free \([0-9]*\),.*/\1 \2/p' | awk '{print $1 - $2}'; }
    one=$(m_inuse 1); many=$(m_inuse 1000)
    if [ -n "$one" ] && [ -n "$many" ] && [ "$many" -lt $((one + 500)) ]; then
        total_pass=$((total_pass + 1)); echo "ok   malloc: 1000 exited threads leave $many pages in use (one thread: $one)"
    else
        total_fail=$((total_fail + 1)); echo "FAIL malloc: exited threads keep memory: $many pages in use after 1000 threads, $one after one"
    fi
    # The thread cache off: every call through a vCPU entry of its own.
    m_same threads-no-tcache env SMPMEM_TCACHE=0 "$M_T/threads" 300 1 $([ "$quick" = 1 ] && echo 40 || echo 100)
    m_same threads "$M_T/threads" 300 2 $([ "$quick" = 1 ] && echo 40 || echo 120)
    m_same fork "$M_T/forktest" $([ "$quick" = 1 ] && echo 10 || echo 30) 3
    # Fork prepare must win every owner word from threads that retake theirs
    # in a tight loop (it starved with 4 vCPUs and 3 workers): also with the
    # fewest and the most vCPUs, and more workers than cores.
    m_same fork-1-vcpu env SMPMEM_VCPUS=1 "$M_T/forktest" 20 4
    m_same fork-64-vcpus env SMPMEM_VCPUS=64 "$M_T/forktest" 20 8

    # Python: the real interpreter, not a pyenv shim (a shell script).
    py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
    if [ -n "$py" ]; then
        m_same python-dicts "$py" tests/malloc/dicts.py 4 $([ "$quick" = 1 ] && echo "2 20000" || echo "4 40000")
    else
        total_fail=$((total_fail + 1)); echo "FAIL malloc: python3 not found"
    fi

    # sort of a large generated file (deterministic words and numbers).
    lines=$([ "$quick" = 1 ] && echo 200000 || echo 1000000)
    if [ ! -s "$M_DIR/sort-input-$lines" ]; then
        awk -v n="$lines" 'BEGIN { s = 12345; for (i = 0; i < n; i++) {
            s = (s * 1103515245 + 12345) % 2147483648; w = "";
            for (j = 0; j < 3 + s % 9; j++) w = w sprintf("%c", 97 + int(s / (j + 7)) % 26);
            print w, s % 100000, i } }' > "$M_DIR/sort-input-$lines"
    fi
    m_same sort sort -k2,2n -k1,1 "$M_DIR/sort-input-$lines"

    # gcc compiling smpmem's own sources (driver, cc1 and as preloaded); the
    # objects must be byte for byte the same.
    m_same gcc-compile tests/malloc/compile.sh "$M_DIR/gcc"
fi
