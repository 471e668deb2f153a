# The malloc front end for LD_PRELOAD: build/libsmpmem-malloc.so, built by
# `make` (the default target).  Its own build of the kalloc core (no buffer
# cache) with the malloc port inlined in place of port/hosted, position
# independent, every symbol hidden but the C library's allocation calls.
# tests/malloc/*.c are the programs scripts/check-malloc.sh and
# bench/realprog.sh run with it preloaded.

MALLOC_SO       := $(BUILD)/libsmpmem-malloc.so
MALLOC_CORE_SRC := $(wildcard src/base/*.c src/page/*.c src/obj/*.c src/kalloc/*.c)
MALLOC_PORT_SRC := $(wildcard port/malloc/*.c)
MALLOC_HDR      := $(wildcard port/malloc/*.h port/linux/*.h include/smpmem/*.h) $(CORE_HDR)
MALLOC_OBJ      := $(MALLOC_CORE_SRC:%.c=$(BUILD)/malloc/%.o) $(MALLOC_PORT_SRC:%.c=$(BUILD)/malloc/%.o)
MALLOC_CFLAGS   := -O2 -g -fPIC -fvisibility=hidden -fno-semantic-interposition \
                   -ftls-model=initial-exec -Wall -Wextra -Werror -Iinclude \
                   -DSMP_PORT_INLINE='"../../port/malloc/port_inline.h"'
# gcc would turn malloc + memset into a call of calloc, inside calloc.
MALLOC_NOBUILTIN := -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free
MALLOC_TEST_SRC := $(wildcard tests/malloc/*.c)
MALLOC_TEST_BIN := $(MALLOC_TEST_SRC:tests/malloc/%.c=$(BUILD)/malloc/tests/%)

.PHONY: malloc malloc-tests
all: malloc
malloc: $(MALLOC_SO)
malloc-tests: $(MALLOC_SO) $(MALLOC_TEST_BIN)

$(BUILD)/malloc/src/%.o: src/%.c $(MALLOC_HDR) port/malloc/malloc.mk
	@mkdir -p $(dir $@)
	gcc -std=c11 $(MALLOC_CFLAGS) -ffreestanding -fno-tree-loop-distribute-patterns -c $< -o $@

$(BUILD)/malloc/port/malloc/%.o: port/malloc/%.c $(MALLOC_HDR) port/malloc/malloc.mk
	@mkdir -p $(dir $@)
	gcc -std=gnu11 $(MALLOC_CFLAGS) $(MALLOC_NOBUILTIN) -c $< -o $@

$(MALLOC_SO): $(MALLOC_OBJ)
	gcc -shared -pthread -Wl,-z,now -Wl,-z,relro -o $@ $^

# Test programs are ordinary programs: they know nothing of smpmem.
$(BUILD)/malloc/tests/%: tests/malloc/%.c
	@mkdir -p $(dir $@)
	gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread -o $@ $<

# make bench's real-program table (bench/realprog.sh): the stress patterns
# and the runner that measures wall time and peak RSS.
MALLOC_BENCH_BIN := $(BUILD)/malloc/bench/stress $(BUILD)/malloc/bench/runstat
.PHONY: malloc-bench
malloc-bench: $(MALLOC_SO) $(MALLOC_TEST_BIN) $(MALLOC_BENCH_BIN)
$(BUILD)/malloc/bench/%: bench/malloc/%.c
	@mkdir -p $(dir $@)
	gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread -o $@ $<
