/* 16550 UART of QEMU virt, polled output (port/riscv64/uart.c). */
#ifndef SMPMEM_RISCV_UART_H
#define SMPMEM_RISCV_UART_H
#include <stddef.h>
void uart_init(void);
/* Write len bytes, waiting for the transmitter; no locking (callers hold
 * the console). */
void uart_write(const char *s, size_t len);
#endif
