/*
 * The 16550 UART at VIRT_UART0: 8N1, FIFOs on, no interrupts; output is
 * polled (the transmit-holding-register-empty bit of LSR).
 */
#include "uart.h"
#include "riscv.h"

#define REG(r) (((volatile unsigned char *)VIRT_UART0)[r])
enum { THR = 0, DLL = 0, IER = 1, DLM = 1, FCR = 2, LCR = 3, LSR = 5 };
#define LCR_DLAB  0x80
#define LCR_8N1   0x03
#define FCR_FIFOS 0x07          /* enable and clear both FIFOs */
#define LSR_THRE  0x20

void uart_init(void)
{
    REG(IER) = 0;
    REG(LCR) = LCR_DLAB;        /* divisor 3: 38400 baud (QEMU ignores it) */
    REG(DLL) = 3;
    REG(DLM) = 0;
    REG(LCR) = LCR_8N1;
    REG(FCR) = FCR_FIFOS;
}

void uart_write(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n') {
            while (!(REG(LSR) & LSR_THRE))
                ;
            REG(THR) = '\r';
        }
        while (!(REG(LSR) & LSR_THRE))
            ;
        REG(THR) = (unsigned char)s[i];
    }
}
