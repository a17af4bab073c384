/* The edgeprune serial benchmark server: serves the ep_model.h model over a line protocol (docs/bench.md). */
#ifndef EP_SERIAL_H
#define EP_SERIAL_H

#define EP_SERIAL_PROTOCOL_VERSION 1

#ifndef EP_SERIAL_MAX_INPUTS
#define EP_SERIAL_MAX_INPUTS 256
#endif
#ifndef EP_SERIAL_MAX_CLASSES
#define EP_SERIAL_MAX_CLASSES 64
#endif
#ifndef EP_SERIAL_MAX_STEPS
#define EP_SERIAL_MAX_STEPS 64
#endif

/* Answer commands forever (never returns). */
void ep_serial_serve(void);

/* One command line (no newline) -> one reply line written through ep_board_putc; for tests. */
void ep_serial_handle(const char *line);

#endif
