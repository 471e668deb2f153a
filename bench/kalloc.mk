# kalloc benchmark: one workload binary per allocator, all from
# bench/kalloc_workload.c (-DALLOC_<NAME>, adapters in bench/kalloc_adapters.h),
# into $(BUILD)/kalloc/kalloc_<name>.  bench/bench_kalloc.c (built by the
# generic bench rule) runs them.  The peer libraries are Debian packages that
# scripts/ensure-tools.sh peers installs them with apt-get when missing.

KALLOC_ALLOCS := smpmem gslab glibc jemalloc mimalloc tcmalloc tbb
KALLOC_BIN    := $(KALLOC_ALLOCS:%=$(BUILD)/kalloc/kalloc_%)
KALLOC_HDRS   := bench/kalloc_adapters.h bench/kalloc_baseline.h $(wildcard include/smpmem/*.h support/*.h)

KALLOC_LIBS_smpmem   := $(LIB)
KALLOC_LIBS_gslab    := $(BUILD)/obj/bench/kalloc/baseline.o
KALLOC_LIBS_glibc    :=
KALLOC_LIBS_jemalloc := -ljemalloc
KALLOC_LIBS_mimalloc := -lmimalloc
KALLOC_LIBS_tcmalloc := -ltcmalloc_minimal
KALLOC_LIBS_tbb      := -ltbbmalloc

# The line-sharing diagnostic (kalloc_workload.c, KALLOC_LINES) for smpmem
# and mimalloc, the allocator whose pages are a thread's own: a reference.
KALLOC_LINES_BIN := $(BUILD)/kalloc/lines_smpmem $(BUILD)/kalloc/lines_mimalloc

.PHONY: kalloc-peers
benches: $(KALLOC_BIN) $(KALLOC_LINES_BIN)

kalloc-peers:
	@scripts/ensure-tools.sh peers

$(BUILD)/obj/bench/kalloc/workload_%.o: bench/kalloc_workload.c $(KALLOC_HDRS) | kalloc-peers
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(OPT) $(CPPFLAGS) $(SANFLAGS) -pthread \
	    -DALLOC_$(shell echo $* | tr a-z A-Z) -c $< -o $@

$(BUILD)/obj/bench/kalloc/baseline.o: bench/kalloc_baseline.c bench/kalloc_baseline.h
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(OPT) $(CPPFLAGS) $(SANFLAGS) -pthread -c $< -o $@

# Extra prerequisites of the two statically linked allocators; the recipe
# below takes the workload object ($<) and the libraries by name.  Every
# binary takes the thread runner from $(SUPPORT) (its smpmem-free member).
$(BUILD)/kalloc/kalloc_smpmem: $(LIB)
$(BUILD)/kalloc/kalloc_gslab: $(BUILD)/obj/bench/kalloc/baseline.o
$(BUILD)/kalloc/kalloc_%: $(BUILD)/obj/bench/kalloc/workload_%.o $(SUPPORT)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LINK_GC) -pthread -o $@ $< $(SUPPORT) $(KALLOC_LIBS_$*)

$(BUILD)/obj/bench/kalloc/lines_%.o: bench/kalloc_workload.c $(KALLOC_HDRS) | kalloc-peers
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(OPT) $(CPPFLAGS) $(SANFLAGS) -pthread -DKALLOC_LINES \
	    -DALLOC_$(shell echo $* | tr a-z A-Z) -c $< -o $@

$(BUILD)/kalloc/lines_smpmem: $(LIB)
$(BUILD)/kalloc/lines_%: $(BUILD)/obj/bench/kalloc/lines_%.o $(SUPPORT)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LINK_GC) -pthread -o $@ $< $(SUPPORT) $(KALLOC_LIBS_$*)
