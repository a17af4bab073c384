/*
 * edgeprune serial benchmark server. Host and board exchange ASCII lines ending in '\n'; the host
 * speaks first and every command gets exactly one reply, "OK ..." or "ERR <reason>". Floats
 * travel as the 8 hex digits of their IEEE-754 bits, so values are exact and the board needs no
 * float parsing or printing. Commands (docs/bench.md has the full description):
 *
 *   HELLO                    -> OK edgeprune-serial 1 model=<name> inputs=<F> classes=<C>
 *                               max_steps=<S> clock=<name> clock_hz=<hz>
 *   RESET                    -> OK                          (zero the recurrent state)
 *   STEP <F words>           -> OK <cycles> <C words>       (one timed step; logits after it)
 *   LOAD <t> <F words>       -> OK                          (store step t of a sequence)
 *   RUN <T>                  -> OK <cycles> <C words>       (timed whole sequence of T loaded steps)
 *
 * C99, no allocation, no stdio: the board port provides getc/putc and a cycle counter.
 */
#include "ep_serial.h"

#include <stdint.h>
#include <string.h>

#include "ep_board.h"
#include "ep_model.h"

#define LINE_MAX_ (32 + 9 * (EP_SERIAL_MAX_INPUTS > EP_SERIAL_MAX_CLASSES ? EP_SERIAL_MAX_INPUTS : EP_SERIAL_MAX_CLASSES))

static char line_buf[LINE_MAX_];
static float x_buf[EP_SERIAL_MAX_INPUTS];
static float seq_buf[EP_SERIAL_MAX_STEPS * EP_SERIAL_MAX_INPUTS];
static float logits_buf[EP_SERIAL_MAX_CLASSES];

static void put_str(const char *s) {
    while (*s) ep_board_putc(*s++);
}

static void put_u32(uint32_t v) {
    char digits[11];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n) ep_board_putc(digits[--n]);
}

static void put_hex_word(uint32_t v) {
    static const char hex[] = "0123456789abcdef";
    for (int shift = 28; shift >= 0; shift -= 4) ep_board_putc(hex[(v >> shift) & 0xFu]);
}

static void put_float(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    put_hex_word(bits);
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parse n space-separated 8-hex-digit floats from *p; 0 on success. */
static int parse_floats(const char **p, float *out, int n) {
    const char *s = *p;
    for (int i = 0; i < n; i++) {
        if (*s != ' ') return -1;
        s++;
        uint32_t bits = 0;
        for (int d = 0; d < 8; d++) {
            int v = hex_value(s[d]);
            if (v < 0) return -1;
            bits = (bits << 4) | (uint32_t)v;
        }
        s += 8;
        memcpy(&out[i], &bits, sizeof bits);
    }
    *p = s;
    return 0;
}

static int parse_uint(const char **p, uint32_t *out) {
    const char *s = *p;
    if (*s != ' ') return -1;
    s++;
    if (*s < '0' || *s > '9') return -1;
    uint32_t v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10u + (uint32_t)(*s++ - '0');
    *out = v;
    *p = s;
    return 0;
}

static void reply_err(const char *why) {
    put_str("ERR ");
    put_str(why);
    ep_board_putc('\n');
}

static void reply_timed(uint32_t cycles, int classes) {
    put_str("OK ");
    put_u32(cycles);
    for (int c = 0; c < classes; c++) {
        ep_board_putc(' ');
        put_float(logits_buf[c]);
    }
    ep_board_putc('\n');
}

static int starts_with(const char *s, const char *word) {
    size_t n = strlen(word);
    return strncmp(s, word, n) == 0 && (s[n] == '\0' || s[n] == ' ');
}

void ep_serial_handle(const char *line) {
    const int inputs = ep_model_inputs(), classes = ep_model_classes();
    if (inputs > EP_SERIAL_MAX_INPUTS || classes > EP_SERIAL_MAX_CLASSES) {
        reply_err("model larger than EP_SERIAL_MAX_INPUTS/CLASSES");
        return;
    }
    if (starts_with(line, "HELLO")) {
        put_str("OK edgeprune-serial ");
        put_u32(EP_SERIAL_PROTOCOL_VERSION);
        put_str(" model=");
        put_str(ep_model_name());
        put_str(" inputs=");
        put_u32((uint32_t)inputs);
        put_str(" classes=");
        put_u32((uint32_t)classes);
        put_str(" max_steps=");
        put_u32(EP_SERIAL_MAX_STEPS);
        put_str(" clock=");
        put_str(ep_board_clock_name());
        put_str(" clock_hz=");
        put_u32(ep_board_clock_hz());
        ep_board_putc('\n');
    } else if (starts_with(line, "RESET")) {
        ep_model_reset();
        put_str("OK\n");
    } else if (starts_with(line, "STEP")) {
        const char *p = line + 4;
        if (parse_floats(&p, x_buf, inputs) || *p) {
            reply_err("STEP needs one 8-hex-digit word per input");
            return;
        }
        uint32_t t0 = ep_board_cycles();
        ep_model_step(x_buf, logits_buf);
        uint32_t t1 = ep_board_cycles();
        reply_timed(t1 - t0, classes);
    } else if (starts_with(line, "LOAD")) {
        const char *p = line + 4;
        uint32_t t;
        if (parse_uint(&p, &t) || t >= EP_SERIAL_MAX_STEPS) {
            reply_err("LOAD needs a step index below max_steps");
            return;
        }
        if (parse_floats(&p, seq_buf + (long)t * inputs, inputs) || *p) {
            reply_err("LOAD needs one 8-hex-digit word per input");
            return;
        }
        put_str("OK\n");
    } else if (starts_with(line, "RUN")) {
        const char *p = line + 3;
        uint32_t steps;
        if (parse_uint(&p, &steps) || *p || steps < 1 || steps > EP_SERIAL_MAX_STEPS) {
            reply_err("RUN needs a step count between 1 and max_steps");
            return;
        }
        uint32_t t0 = ep_board_cycles();
        ep_model_run(seq_buf, (int)steps, logits_buf);
        uint32_t t1 = ep_board_cycles();
        reply_timed(t1 - t0, classes);
    } else {
        reply_err("unknown command");
    }
}

void ep_serial_serve(void) {
    size_t n = 0;
    int overflow = 0;
    for (;;) {
        int c = ep_board_getc();
        if (c == '\r') continue;
        if (c == '\n') {
            line_buf[n] = '\0';
            if (overflow)
                reply_err("line too long");
            else if (n)
                ep_serial_handle(line_buf);
            n = 0;
            overflow = 0;
        } else if (n + 1 < sizeof line_buf) {
            line_buf[n++] = (char)c;
        } else {
            overflow = 1;
        }
    }
}
