# The proof section of issue 10, included by the Makefile: the fuzz target,
# the fault-injection build and the soak run.  `make check` reaches them
# through scripts/check-fuzz.sh, check-faults.sh and check-soak.sh.
#
#   make fuzz   [FUZZ_SECONDS=60]   libFuzzer on tests/fuzz/fuzz_pmm.c, seeded
#                                   from tests/fuzz/corpus (new inputs go to
#                                   build/fuzz/corpus, crashes to build/fuzz/)
#   make faults                     tests/test_faults.c built with -DSMP_FAULT_INJECT
#   make soak   [SOAK_SECONDS=120]  randomized multi-CPU churn (tests/soak.c)
#   make orders                     each non-relaxed memory order weakened in turn
#                                   must make tests/test_orders.c race under TSan

FUZZ_SECONDS ?= 60
SOAK_SECONDS ?= 120
FUZZ_BUILD   := build/fuzz
FAULT_BUILD  ?= build/faults

# SAN=fuzz: AddressSanitizer + UBSan with libFuzzer's coverage on every
# object (clang only); the target links libFuzzer's main.
ifeq ($(SAN),fuzz)
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif
# FAULT=1: the core's fault points (src/base/fault.h) are compiled in.
ifeq ($(FAULT),1)
CPPFLAGS += -DSMP_FAULT_INJECT
endif

.PHONY: fuzz fuzz-build faults soak orders

fuzz-build:
	@scripts/ensure-tools.sh clang
	@$(MAKE) -s TOOLCHAIN=clang SAN=fuzz BUILD=$(FUZZ_BUILD) $(FUZZ_BUILD)/fuzz_pmm

$(BUILD)/fuzz_pmm: $(BUILD)/obj/tests/fuzz/fuzz_pmm.o $(LIB)
	$(CC) $(subst fuzzer-no-link,fuzzer,$(SANFLAGS)) -pthread -o $@ $^

fuzz: fuzz-build
	@mkdir -p $(FUZZ_BUILD)/corpus
	$(FUZZ_BUILD)/fuzz_pmm -max_total_time=$(FUZZ_SECONDS) -timeout=20 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/ $(FUZZ_BUILD)/corpus tests/fuzz/corpus

# The fault-injection build: the library and tests/test_faults.c with
# -DSMP_FAULT_INJECT, in their own BUILD (TOOLCHAIN, SAN and LOCKED pass
# through; scripts/check-faults.sh runs several).
faults:
	@$(MAKE) -s FAULT=1 BUILD=$(FAULT_BUILD) $(FAULT_BUILD)/tests/test_faults
	@$(FAULT_BUILD)/tests/test_faults

# The soak run: TOOLCHAIN, SAN and LOCKED choose the variant as for tests.
$(BUILD)/soak: $(BUILD)/obj/tests/soak.o $(HARNESS) $(SUPPORT) $(LIB)
	$(CC) $(SANFLAGS) -pthread -o $@ $^

soak: $(BUILD)/soak
	@SOAK_SECONDS=$(SOAK_SECONDS) $(BUILD)/soak

# Each non-relaxed order weakened in turn must make tests/test_orders.c
# report a race under TSan (a few minutes: one TSan build per order).
orders:
	@scripts/check-orders.sh
