/*
 * Bare-metal start-up for the Arm MPS2 AN386 board (Cortex-M4F), as emulated by
 * `qemu-system-arm -M mps2-an386`: vector table, reset handler, and a SysTick clock for
 * edgeprune_run --bench. I/O goes through Arm semihosting (newlib's rdimon), so the harness
 * reads and writes files on the host.
 *
 * main() gets a fixed command line: serve the protocol from edgeprune_in.bin into
 * edgeprune_out.bin, or, when the host file edgeprune_bench.txt holds a step count, time that
 * many steps. A fault ends the run with exit status 3.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void __libc_init_array(void);
extern void initialise_monitor_handles(void);
int main(int argc, char **argv);

void ep_reset_handler(void);
void ep_fault_handler(void);
void _init(void);
void _fini(void);
void ep_systick_handler(void);
uint64_t ep_board_time_ns(void);

typedef void (*ep_handler)(void);

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SYSTICK_RELOAD 0x00FFFFFFu
#define NS_PER_TICK 40u /* the AN386 CPU clock is 25 MHz */

static volatile uint32_t systick_wraps;

__attribute__((section(".isr_vector"), used)) const ep_handler ep_vectors[16] = {
    (ep_handler)(uintptr_t)&_estack, ep_reset_handler, ep_fault_handler, ep_fault_handler, ep_fault_handler,
    ep_fault_handler, ep_fault_handler, 0, 0, 0, 0, ep_fault_handler, ep_fault_handler, 0, ep_fault_handler,
    ep_systick_handler,
};

void ep_systick_handler(void)
{
    ++systick_wraps;
}

uint64_t ep_board_time_ns(void)
{
    uint32_t wraps, value;
    do { /* a wrap between the two reads would pair the new count with the old wrap total */
        wraps = systick_wraps;
        value = SYST_CVR;
    } while (wraps != systick_wraps);
    return ((uint64_t)wraps * (SYSTICK_RELOAD + 1u) + (SYSTICK_RELOAD - value)) * NS_PER_TICK;
}

void ep_fault_handler(void)
{
    exit(3);
}

/* newlib's __libc_init_array/__libc_fini_array call these; -nostartfiles leaves them out. */
void _init(void)
{
}

void _fini(void)
{
}

void ep_reset_handler(void)
{
    static char program[] = "edgeprune_run", io[] = "--io", in[] = "edgeprune_in.bin", out[] = "edgeprune_out.bin";
    static char bench[] = "--bench", steps[16];
    static char *serve_argv[] = {program, io, in, out, NULL};
    static char *bench_argv[] = {program, bench, steps, NULL};
    const uint32_t *src = &_sidata;
    uint32_t *dst;
    FILE *f;
    for (dst = &_sdata; dst < &_edata;)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
    CPACR |= 0xFu << 20; /* full access to the FPU (CP10, CP11) */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt on wrap, enabled */
    __libc_init_array();
    initialise_monitor_handles();
    f = fopen("edgeprune_bench.txt", "r");
    if (f) {
        const int got = fgets(steps, (int)sizeof steps, f) != NULL;
        fclose(f);
        if (got)
            exit(main(3, bench_argv));
    }
    exit(main(4, serve_argv));
}
