/*
 * Reset and vectors for QEMU's mps2-an386 (Cortex-M4F). Copies .data, zeroes .bss, enables the
 * FPU, runs constructors and calls main(). Built with -DEP_SEMIHOSTING (newlib rdimon), stdout
 * goes to the host through semihosting and main's return value becomes QEMU's exit code.
 */
#include <stdint.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
extern int main(void);
extern void __libc_init_array(void);
#ifdef EP_SEMIHOSTING
extern void initialise_monitor_handles(void);
extern void exit(int status);
#endif

void ep_reset_handler(void);
void ep_default_handler(void);
void _init(void);
void _fini(void);
void SysTick_Handler(void) __attribute__((weak, alias("ep_default_handler")));

void ep_default_handler(void) {
    for (;;) {
    }
}

/* newlib's __libc_init_array calls these; this port has no crti/crtn */
void _init(void) {}
void _fini(void) {}

void ep_reset_handler(void) {
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: full access to CP10/CP11 (FPU) */
    __asm volatile("dsb\n\tisb" ::: "memory");
    __libc_init_array();
#ifdef EP_SEMIHOSTING
    initialise_monitor_handles();
    exit(main());
#else
    (void)main();
    for (;;) {
    }
#endif
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__stack_top,
    ep_reset_handler,
    ep_default_handler, /* NMI */
    ep_default_handler, /* HardFault */
    ep_default_handler, /* MemManage */
    ep_default_handler, /* BusFault */
    ep_default_handler, /* UsageFault */
    0, 0, 0, 0,
    ep_default_handler, /* SVCall */
    ep_default_handler, /* DebugMonitor */
    0,
    ep_default_handler, /* PendSV */
    SysTick_Handler,
};
