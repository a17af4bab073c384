/*
 * ep_board.h for QEMU mps2-an386: CMSDK APB UART0 at 0x40004000, SysTick on the 25 MHz CPU clock
 * as the cycle counter (24-bit, extended to 32 bits by counting wraps in its interrupt). QEMU does
 * not model cycles: with -icount shift=0 one instruction is one nanosecond of virtual time, so a
 * tick is 40 instructions; without -icount the ticks follow host time. Either way these figures
 * are emulated, not a board's.
 */
#include <stdint.h>

#include "ep_board.h"

#define UART0 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0 + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0 + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0 + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0 + 0x10u))
#define STATE_TX_FULL 1u
#define STATE_RX_FULL 2u

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYSCLK_HZ 25000000u

static volatile uint32_t systick_wraps;

void SysTick_Handler(void); /* overrides the weak default in startup.c */
void SysTick_Handler(void) { systick_wraps++; }

void ep_board_init(void) {
    UART_BAUDDIV = 16u;
    UART_CTRL = 3u; /* TX and RX enabled */
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 7u; /* enable, interrupt on wrap, CPU clock */
}

int ep_board_getc(void) {
    while (!(UART_STATE & STATE_RX_FULL)) {
    }
    return (int)(UART_DATA & 0xFFu);
}

void ep_board_putc(char c) {
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = (uint8_t)c;
}

uint32_t ep_board_cycles(void) {
    uint32_t wraps, value;
    do { /* re-read if the counter wrapped between the two reads */
        wraps = systick_wraps;
        value = SYST_CVR;
    } while (wraps != systick_wraps);
    return (wraps << 24) | (0x00FFFFFFu - value);
}

uint32_t ep_board_clock_hz(void) { return SYSCLK_HZ; }

const char *ep_board_clock_name(void) { return "systick"; }
