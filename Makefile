# smpmem build.  `make` builds build/libsmpmem.a (core + hosted port);
# `make demo` runs the demo; `make check` runs every test in every variant
# (gcc/clang x plain/ASan+UBSan/TSan); `make bench` runs the benchmarks
# (`make bench-quick`: a short run of them).
#
# One variant per invocation: TOOLCHAIN=gcc|clang SAN=none|asan|tsan, built
# into BUILD.  scripts/check.sh drives the variants.

TOOLCHAIN ?= gcc
SAN       ?= none
# LOCKED=1: the per-CPU lock fallback for ports without cross-calls
# (src/base/percpu.h), built and tested by make check like the default.
LOCKED    ?= 0
BUILD     ?= build
CC        := $(TOOLCHAIN)

WARN      := -std=c11 -Wall -Wextra -Werror
OPT       ?= -O2 -g
CPPFLAGS  := -Iinclude
ifeq ($(LOCKED),1)
CPPFLAGS  += -DSMP_PERCPU_LOCKED
endif
# CHECKED=1: the checked build (src/kalloc/checked.c): redzones, poison,
# quarantine, double-free detection of any kind; same API.
CHECKED   ?= 0
ifeq ($(CHECKED),1)
CPPFLAGS  += -DSMP_CHECKED
endif
# The hosted library inlines the port's hot hooks (see port.h).
PORT_INLINE := -DSMP_PORT_INLINE='"../../port/hosted/port_inline.h"'
ifeq ($(SAN),asan)
SANFLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif
ifeq ($(SAN),tsan)
SANFLAGS  := -fsanitize=thread
endif
# The core is freestanding; keep gcc from turning loops into memset calls.
ifeq ($(TOOLCHAIN),gcc)
FREESTANDING := -ffreestanding -fno-tree-loop-distribute-patterns
else
FREESTANDING := -ffreestanding
endif

# Every function and object of the core in its own section, so a program or
# kernel linked with --gc-sections keeps only what it calls (a kernel that
# never runs pmm_check carries none of the checks), and no unwind tables:
# nothing unwinds through an allocator (kernels build with the same flag).
# The benchmark binaries link that way: the code counts in their peak RSS.
# Sanitizer builds keep the tables: ASan and UBSan unwind with them to
# print the stack of a report, which would otherwise stop at the core.
CORE_CFLAGS := -ffunction-sections -fdata-sections
ifeq ($(SAN),none)
CORE_CFLAGS += -fno-asynchronous-unwind-tables
endif
LINK_GC   := -Wl,--gc-sections

CORE_SRC  := $(wildcard src/*.c src/*/*.c)
CORE_HDR  := $(wildcard src/*.h src/*/*.h)
PORT_SRC  := $(wildcard port/hosted/*.c)
ifeq ($(shell uname -m),x86_64)
PORT_ASM  := port/hosted/wait_x86_64.S
endif
# tests/test_faults.c needs the fault points (FAULT=1, make faults): other
# builds leave it out rather than run a program that asserts nothing.
TEST_SRC  := $(filter-out $(if $(filter 1,$(FAULT)),,tests/test_faults.c),$(wildcard tests/test_*.c))
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
PORT_OBJ  := $(PORT_SRC:%.c=$(BUILD)/obj/%.o) $(PORT_ASM:%.S=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HARNESS   := $(BUILD)/obj/tests/harness.o
LIB       := $(BUILD)/libsmpmem.a
# support/: the one copy of the helpers tests, bench and demo share (PRNG,
# the vCPU runner).  An archive, so a program takes only the members it
# uses: the peer allocators' bench binaries take the runner without smpmem.
SUPPORT_SRC := $(wildcard support/*.c)
SUPPORT   := $(BUILD)/libsupport.a

.PHONY: all lib tests freestanding check demo bench bench-quick clean tools fastpath-check
all: lib
lib: $(LIB)
tests: $(TEST_BIN)

$(BUILD)/obj/src/%.o: src/%.c $(CORE_HDR) $(wildcard include/smpmem/*.h port/hosted/*.h) | tools
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(OPT) $(CPPFLAGS) $(PORT_INLINE) $(FREESTANDING) $(CORE_CFLAGS) $(SANFLAGS) -c $< -o $@

# The freestanding proof builds the core again with out-of-line port hooks,
# as a kernel does: not position-independent.
$(BUILD)/fs/src/%.o: src/%.c $(CORE_HDR) $(wildcard include/smpmem/*.h) Makefile | tools
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(OPT) $(CPPFLAGS) $(FREESTANDING) $(CORE_CFLAGS) -fno-pic -fno-pie -c $< -o $@

# Tests, bench, demo and the hosted port use the short names (kalloc, ...),
# which are opt-in for includers (include/smpmem/pmm.h).
$(BUILD)/obj/%.o: %.c $(wildcard include/smpmem/*.h tests/*.h bench/*.h support/*.h port/hosted/*.h port/linux/*.h) | tools
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(OPT) $(CPPFLAGS) -DSMPMEM_SHORT_NAMES $(PORT_INLINE) $(SANFLAGS) -pthread -c $< -o $@

$(BUILD)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(LIB): $(CORE_OBJ) $(PORT_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SUPPORT): $(SUPPORT_SRC:%.c=$(BUILD)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(HARNESS) $(SUPPORT) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -pthread -o $@ $< $(HARNESS) $(SUPPORT) $(LIB)

# Proof that src/ is freestanding: link the core with -nostdlib into one
# relocatable object and require every undefined symbol to be a port hook,
# and require every <...> include of the core and its public headers to be
# one of the five freestanding headers (project headers use "...").
FS_OBJ := $(CORE_SRC:%.c=$(BUILD)/fs/%.o)
freestanding: $(FS_OBJ)
	$(CC) -nostdlib -r -o $(BUILD)/core-freestanding.o $(FS_OBJ)
	@bad=$$(nm -u $(BUILD)/core-freestanding.o | awk '{print $$2}' | grep -v '^smp_port_' || true); \
	if [ -n "$$bad" ]; then echo "core calls outside the port: $$bad"; exit 1; fi; \
	inc=$$(grep -n '^ *# *include *<' $(CORE_SRC) $(CORE_HDR) include/smpmem/*.h | \
	       grep -v '<\(stddef\|stdint\|stdbool\|stdatomic\|limits\)\.h>' || true); \
	if [ -n "$$inc" ]; then echo "core includes outside the freestanding set: $$inc"; exit 1; fi; \
	echo "freestanding: core links with -nostdlib; undefined symbols are port hooks only;" \
	     "src/ and include/smpmem/ include only <stddef.h> <stdint.h> <stdbool.h> <stdatomic.h> <limits.h>"

tools:
	@scripts/ensure-tools.sh $(TOOLCHAIN)

# The fast paths execute no atomic instruction: disassemble them and look.
fastpath-check: $(CORE_OBJ)
	@scripts/check-fastpath.sh $(BUILD)/obj/src/kalloc/kalloc.o $(LOCKED)

check:
	@scripts/check.sh

demo: $(LIB) $(BUILD)/demo
	@$(BUILD)/demo

$(BUILD)/demo: $(BUILD)/obj/demo/demo.o $(SUPPORT) $(LIB)
	$(CC) $(SANFLAGS) -pthread -o $@ $^

# Results (text, TSV, PNG plots) go to $BENCH_RESULTS, default build/bench/results/.
bench:
	@scripts/bench.sh

# The same programs with few rounds and short runs: under a minute.
bench-quick:
	@scripts/bench.sh --quick

clean:
	rm -rf build

# Benchmarks: each bench/bench_*.c is a program linked with bench/common.c
# (when present) and the library.  scripts/bench.sh runs them.
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
BENCH_COMMON := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bench/common.c))
benches: $(BENCH_BIN)
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BENCH_COMMON) $(SUPPORT) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LINK_GC) -pthread -o $@ $^ -lm

# Benchmark fragments (e.g. peer-allocator builds) add targets to `benches`.
-include $(wildcard bench/*.mk)

# The bare-metal riscv64 port: make qemu, make qemu-check (port/riscv64/riscv.mk).
-include port/riscv64/riscv.mk
-include tests/proof.mk
# The malloc front end (LD_PRELOAD): port/malloc/.
-include port/malloc/malloc.mk
