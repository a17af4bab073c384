/*
 * What the serial server needs from a board: a UART and a cycle counter. A port is one C file
 * (see runtimes/c/boards/mps2-an386/board.c for QEMU's Cortex-M4 board); on a real Cortex-M3/M4/M7 board, count
 * cycles with the DWT: DEMCR (0xE000EDFC) |= 1 << 24; DWT_CTRL (0xE0001000) |= 1; read
 * DWT_CYCCNT (0xE0001004).
 */
#ifndef EP_BOARD_H
#define EP_BOARD_H

#include <stdint.h>

void ep_board_init(void);               /* clocks, UART, cycle counter */
int ep_board_getc(void);                /* next received byte (blocking) */
void ep_board_putc(char c);             /* send one byte (blocking) */
uint32_t ep_board_cycles(void);         /* free-running counter; differences are cycles (mod 2^32) */
uint32_t ep_board_clock_hz(void);       /* counter frequency, 0 if unknown */
const char *ep_board_clock_name(void);  /* e.g. "dwt-cyccnt", "systick"; no spaces */

#endif
