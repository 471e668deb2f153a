# The bare-metal riscv64 port and its kernel (port/riscv64/), included by
# the top Makefile.  Targets:
#   make qemu          boot the demo on 8 harts (Ctrl-A x quits QEMU)
#   make qemu-check    the suite on 1, 4 and 8 harts; non-zero on any failure
#   make rv-kernel     just build build/riscv64/kernel.elf
# Variables: RV_SMP (harts for `make qemu`, 8), RV_ARGS (kernel command
# line: seed=N scale=PCT test=NAME tick=US), RV_MEM (QEMU -m, 256M).
# The toolchain (gcc-riscv64-unknown-elf) and QEMU (qemu-system-misc) are
# installed by scripts/ensure-tools.sh riscv when missing.

RV_CC     ?= riscv64-unknown-elf-gcc
RV_QEMU   ?= qemu-system-riscv64
RV_BUILD  := $(BUILD)/riscv64
RV_SMP    ?= 8
RV_MEM    ?= 256M
RV_ARGS   ?=
# The core is compiled unmodified, freestanding, with the port's hot hooks
# inline (port.h's SMP_PORT_INLINE).
RV_CFLAGS := -std=c11 -Wall -Wextra -Werror -O2 -g -march=rv64gc -mabi=lp64d \
             -mcmodel=medany -mno-relax -ffreestanding -fno-common -fno-pie \
             -fno-tree-loop-distribute-patterns -fno-omit-frame-pointer \
             -Iinclude -Iport/riscv64/include -Iport/riscv64 \
             -DSMP_PORT_INLINE='"riscv_port_inline.h"'
RV_CORE   := $(wildcard src/*.c src/*/*.c)
RV_SRC    := $(RV_CORE) $(wildcard port/riscv64/*.c port/riscv64/kernel/*.c port/riscv64/suite/*.c)
RV_OBJ    := $(RV_SRC:%.c=$(RV_BUILD)/%.o) $(RV_BUILD)/port/riscv64/kernel/entry.o
RV_HDR    := $(wildcard include/smpmem/*.h src/*/*.h port/riscv64/*.h port/riscv64/*/*.h \
                        tests/harness.h tests/kalloc_util.h support/prng.h)
RV_KERNEL := $(RV_BUILD)/kernel.elf
RV_DISK   := $(RV_BUILD)/disk.img
RV_QFLAGS  = -machine virt -bios default -m $(RV_MEM) -kernel $(RV_KERNEL) \
             -global virtio-mmio.force-legacy=false \
             -drive file=$(RV_DISK),if=none,format=raw,id=x0 \
             -device virtio-blk-device,drive=x0,bus=virtio-mmio-bus.0

.PHONY: qemu qemu-check rv-kernel rv-tools
rv-kernel: $(RV_KERNEL)

rv-tools:
	@scripts/ensure-tools.sh riscv

$(RV_BUILD)/%.o: %.c $(RV_HDR) | rv-tools
	@mkdir -p $(dir $@)
	$(RV_CC) $(RV_CFLAGS) -c $< -o $@

$(RV_BUILD)/%.o: %.S | rv-tools
	@mkdir -p $(dir $@)
	$(RV_CC) $(RV_CFLAGS) -c $< -o $@

$(RV_KERNEL): $(RV_OBJ) port/riscv64/kernel/kernel.ld
	$(RV_CC) $(RV_CFLAGS) -nostdlib -static -Wl,--no-warn-rwx-segments -T port/riscv64/kernel/kernel.ld -o $@ $(RV_OBJ)

# A fresh 4 MiB disk for each run (the suite checks what it wrote).
$(RV_DISK): FORCE_RV_DISK
	@mkdir -p $(dir $@)
	@rm -f $@ && dd if=/dev/zero of=$@ bs=1M count=4 status=none

.PHONY: FORCE_RV_DISK
FORCE_RV_DISK:

qemu: $(RV_KERNEL) $(RV_DISK)
	$(RV_QEMU) $(RV_QFLAGS) -smp $(RV_SMP) -nographic -append "demo $(RV_ARGS)"

qemu-check: $(RV_KERNEL)
	@RV_QEMU="$(RV_QEMU)" RV_MEM="$(RV_MEM)" RV_BUILD="$(RV_BUILD)" RV_ARGS="$(RV_ARGS)" \
	    port/riscv64/qemu-check.sh
