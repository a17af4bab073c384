/* Firmware entry for the serial benchmark server on mps2-an386. */
#include "ep_board.h"
#include "ep_serial.h"

int main(void) {
    ep_board_init();
    ep_serial_serve();
    return 0;
}
