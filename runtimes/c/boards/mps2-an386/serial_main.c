/* Firmware entry for edgeprune bench's serial server (edgeprune/bench/native/ep_serial.c) on mps2-an386;
 * built with -DEP_SERIAL. */
#include "ep_board.h"
#include "ep_serial.h"

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ep_board_init();
    ep_serial_serve();
    return 0;
}
