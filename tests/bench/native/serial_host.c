/*
 * ep_board.h on stdin/stdout (tests only): runs the serial server on the host, so the protocol can
 * be tested under AddressSanitizer/UBSan without an emulator. The cycle counter is a call counter.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ep_board.h"
#include "ep_serial.h"

static uint32_t ticks;

void ep_board_init(void) {}

int ep_board_getc(void) {
    int c = getchar();
    if (c == EOF) {
        fflush(stdout);
        exit(0);
    }
    return c;
}

void ep_board_putc(char c) { putchar(c); }

uint32_t ep_board_cycles(void) { return ticks += 7u; }

uint32_t ep_board_clock_hz(void) { return 0u; }

const char *ep_board_clock_name(void) { return "host-test"; }

int main(void) {
    ep_board_init();
    ep_serial_serve();
    return 0;
}
