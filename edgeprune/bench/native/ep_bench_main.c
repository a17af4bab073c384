/*
 * edgeprune device benchmark program: runs the embedded test sequences through the ep_model.h
 * interface and prints ONE JSON object in the "edgeprune.bench-program" format (docs/bench.md):
 * the logits of every sequence, driven step by step and as whole sequences, and one timing
 * sample per timed call. Each timed call is bracketed by ep_bench_mark() so that QEMU's
 * instruction-counting plugin (epcount.c) can count exactly that call. Inputs and repetition
 * settings come from the generated bench_config.h; nothing is read at run time, so the same
 * program runs on a Linux board, under qemu-user, or as semihosted Cortex-M firmware.
 */
#if defined(__linux__)
#define _POSIX_C_SOURCE 199309L
#include <time.h>
#endif
#include <stdint.h>
#include <stdio.h>

#include "bench_config.h"
#include "ep_model.h"

void ep_bench_mark(void);
__attribute__((noinline, used)) void ep_bench_mark(void) { __asm__ volatile("" ::: "memory"); }

#if defined(__linux__)
#define CLOCK_NAME "clock_gettime(CLOCK_MONOTONIC)"
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#else
#define CLOCK_NAME "none"
static uint64_t now_ns(void) { return 0; }
#endif

static uint64_t samples[EP_MAX_REPS];
static float logits[EP_CLASSES];

static void print_logits(void) {
    printf("[");
    for (int c = 0; c < EP_CLASSES; c++) printf("%s%.9g", c ? "," : "", (double)logits[c]);
    printf("]");
}

static const float *sequence(int n) { return ep_inputs + (long)n * EP_STEPS * EP_INPUTS; }

static int time_steps(void) {
    int reps = 0;
    for (int w = 0; w < EP_WARMUP; w++) {
        if (w % EP_STEPS == 0) ep_model_reset();
        ep_model_step(sequence((w / EP_STEPS) % EP_SAMPLES) + (long)(w % EP_STEPS) * EP_INPUTS, logits);
    }
    uint64_t start = now_ns();
    for (; reps < EP_MAX_REPS; reps++) {
        int t = reps % EP_STEPS, n = (reps / EP_STEPS) % EP_SAMPLES;
        if (t == 0) ep_model_reset();
        const float *x = sequence(n) + (long)t * EP_INPUTS;
        uint64_t t0 = now_ns();
        ep_bench_mark();
        ep_model_step(x, logits);
        ep_bench_mark();
        samples[reps] = now_ns() - t0;
        if (reps + 1 >= EP_MIN_REPS && now_ns() - start > EP_BUDGET_NS) { reps++; break; }
    }
    return reps;
}

static int time_sequences(void) {
    int reps = 0;
    for (int w = 0; w < EP_WARMUP; w++) ep_model_run(sequence(w % EP_SAMPLES), EP_STEPS, logits);
    uint64_t start = now_ns();
    for (; reps < EP_MAX_REPS; reps++) {
        const float *x = sequence(reps % EP_SAMPLES);
        uint64_t t0 = now_ns();
        ep_bench_mark();
        ep_model_run(x, EP_STEPS, logits);
        ep_bench_mark();
        samples[reps] = now_ns() - t0;
        if (reps + 1 >= EP_MIN_REPS && now_ns() - start > EP_BUDGET_NS) { reps++; break; }
    }
    return reps;
}

static void print_samples(int reps) {
    printf("{\"warmup\":%d,\"samples\":[", EP_WARMUP);
    for (int r = 0; r < reps; r++) printf("%s%llu", r ? "," : "", (unsigned long long)samples[r]);
    printf("]}");
}

int main(int argc, char **argv) {
    (void)argc; /* the Cortex-M start-up passes the C target harness's command line */
    (void)argv;
    if (ep_model_inputs() != EP_INPUTS || ep_model_classes() != EP_CLASSES) {
        printf("{\"error\":\"model shape differs from the embedded inputs\"}\n");
        return 2;
    }
    printf("{\"format\":\"edgeprune.bench-program\",\"version\":1,\"model\":\"%s\",", ep_model_name());
    printf("\"inputs\":%d,\"classes\":%d,\"steps\":%d,\"samples\":%d,", EP_INPUTS, EP_CLASSES, EP_STEPS, EP_SAMPLES);
    printf("\"clock\":\"%s\",\"unit\":\"ns\",\"outputs\":{", CLOCK_NAME);
    int first = 1;
    if (EP_MODES & 1) {
        printf("\"step\":[");
        for (int n = 0; n < EP_SAMPLES; n++) {
            ep_model_reset();
            for (int t = 0; t < EP_STEPS; t++) ep_model_step(sequence(n) + (long)t * EP_INPUTS, logits);
            printf("%s", n ? "," : "");
            print_logits();
        }
        printf("]");
        first = 0;
    }
    if (EP_MODES & 2) {
        printf("%s\"sequence\":[", first ? "" : ",");
        for (int n = 0; n < EP_SAMPLES; n++) {
            ep_model_run(sequence(n), EP_STEPS, logits);
            printf("%s", n ? "," : "");
            print_logits();
        }
        printf("]");
    }
    printf("},\"latency\":{");
    first = 1;
    if (EP_MODES & 1) {
        printf("\"step\":");
        print_samples(time_steps());
        first = 0;
    }
    if (EP_MODES & 2) {
        printf("%s\"sequence\":", first ? "" : ",");
        print_samples(time_sequences());
    }
    printf("}}\n");
    fflush(stdout);
    return 0;
}
