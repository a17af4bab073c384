/*
 * edgeprune instruction counter: a QEMU TCG plugin (user and system mode).
 *
 * Counts every guest instruction executed, and records the running count each time the guest
 * enters the marker function (default "ep_bench_mark"; plugin argument marker=NAME). A benchmark
 * program calls the marker right before and right after each timed call, so the difference of
 * two consecutive records is that call's instruction count. At exit it prints, on QEMU's plugin
 * log (-d plugin -D FILE):
 *
 *     epcount total <N>
 *     epcount marks <c1> <c2> ...      (several lines of at most 64 values)
 *
 * Counting is per translation block (one inline add at block entry), so a record includes the
 * marker's own block: the same few instructions in every record, which cancel in differences.
 *
 * Only the handful of plugin API entry points used here are declared (QEMU plugin API version 1,
 * QEMU 7.x); QEMU checks qemu_plugin_version when it loads the plugin.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

#define EXPORT __attribute__((visibility("default")))

EXPORT int qemu_plugin_version = 1;

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb *));
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const char *qemu_plugin_insn_symbol(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, void (*cb)(unsigned int, void *),
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, void *), void *userdata);
void qemu_plugin_outs(const char *string);

static uint64_t count;
static char marker[128] = "ep_bench_mark";
static uint64_t *marks;
static size_t n_marks, cap_marks;

static void on_mark(unsigned int vcpu, void *userdata) {
    (void)vcpu;
    (void)userdata;
    if (n_marks == cap_marks) {
        size_t cap = cap_marks ? 2 * cap_marks : 4096;
        uint64_t *grown = realloc(marks, cap * sizeof *grown);
        if (!grown) return; /* out of memory: stop recording, the total stays right */
        marks = grown;
        cap_marks = cap;
    }
    marks[n_marks++] = count;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &count, n);
    int previous_in_marker = 0;
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const char *symbol = qemu_plugin_insn_symbol(insn);
        int in_marker = symbol && strcmp(symbol, marker) == 0;
        if (in_marker && !previous_in_marker) /* the marker's entry, once per call */
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        previous_in_marker = in_marker;
    }
}

static void on_exit_(qemu_plugin_id_t id, void *userdata) {
    (void)id;
    (void)userdata;
    char line[64 * 24 + 32];
    snprintf(line, sizeof line, "epcount total %llu\n", (unsigned long long)count);
    qemu_plugin_outs(line);
    for (size_t start = 0; start < n_marks; start += 64) {
        size_t used = (size_t)snprintf(line, sizeof line, "epcount marks");
        for (size_t i = start; i < n_marks && i < start + 64; i++)
            used += (size_t)snprintf(line + used, sizeof line - used, " %llu", (unsigned long long)marks[i]);
        snprintf(line + used, sizeof line - used, "\n");
        qemu_plugin_outs(line);
    }
    free(marks);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "marker=", 7) == 0) {
            strncpy(marker, argv[i] + 7, sizeof marker - 1);
            marker[sizeof marker - 1] = '\0';
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_, NULL);
    return 0;
}
