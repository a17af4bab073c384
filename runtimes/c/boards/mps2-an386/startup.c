/*
 * Bare-metal start-up for the Arm MPS2 AN386 board (Cortex-M4F), as emulated by
 * `qemu-system-arm -M mps2-an386`: vector table and reset handler (copy .data, zero .bss, enable
 * the FPU, run constructors), then main() with a fixed command line: the C target's harness
 * serves its protocol from edgeprune_in.bin into edgeprune_out.bin; other programs ignore it.
 *
 * The board's I/O is chosen by a define:
 * - default: Arm semihosting (newlib's rdimon, --specs=rdimon.specs). The program reads and
 *   writes files on the host, printf reaches QEMU's stdout and main's return value becomes
 *   QEMU's exit code; a fault ends the run with exit status 3.
 * - -DEP_SERIAL (newlib's nosys, --specs=nosys.specs): no semihosting; the program talks over
 *   UART0 (board.c + serial_main.c: edgeprune bench's serial server) and main never returns;
 *   a fault stops the core.
 *
 * SysTick_Handler is weak: board.c's cycle counter overrides it.
 */
#include <stddef.h>
#include <stdint.h>
#ifndef EP_SERIAL
#include <stdlib.h>
#endif

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void __libc_init_array(void);
#ifndef EP_SERIAL
extern void initialise_monitor_handles(void);
#endif
int main(int argc, char **argv);
void ep_reset_handler(void);
void ep_fault_handler(void);
void SysTick_Handler(void);
void _init(void);
void _fini(void);

typedef void (*ep_handler)(void);

#define CPACR (*(volatile uint32_t *)0xE000ED88u)

__attribute__((weak)) void SysTick_Handler(void)
{
    ep_fault_handler(); /* nothing here enables SysTick: a tick without board.c is a fault */
}

__attribute__((section(".isr_vector"), used)) const ep_handler ep_vectors[16] = {
    (ep_handler)(uintptr_t)&_estack, ep_reset_handler, ep_fault_handler, ep_fault_handler, ep_fault_handler,
    ep_fault_handler, ep_fault_handler, 0, 0, 0, 0, ep_fault_handler, ep_fault_handler, 0, ep_fault_handler,
    SysTick_Handler,
};

void ep_fault_handler(void)
{
#ifdef EP_SERIAL
    for (;;) {
    }
#else
    exit(3);
#endif
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
    static char *argv[] = {program, io, in, out, NULL};
    const uint32_t *src = &_sidata;
    uint32_t *dst;
    for (dst = &_sdata; dst < &_edata;)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
    CPACR |= 0xFu << 20; /* full access to the FPU (CP10, CP11) */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    __libc_init_array();
#ifdef EP_SERIAL
    (void)main(4, argv);
    for (;;) {
    }
#else
    initialise_monitor_handles();
    exit(main(4, argv));
#endif
}
