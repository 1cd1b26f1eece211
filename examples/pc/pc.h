/* pc.h: the PC hardware the `--machine pc` examples (ticks, smp) program,
 * for 32-bit protected mode with paging off: port I/O, descriptor tables,
 * the two 8259 interrupt controllers (PIC), the 8254 timer (PIT), the local
 * APIC, and the debug-exit port that ends the guest.
 *
 * The same code runs under kvmstub --machine pc and under
 * qemu-system-x86_64 -kernel, which both provide these devices at their
 * standard addresses. */
#ifndef EXAMPLES_PC_H
#define EXAMPLES_PC_H

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline void cpu_pause(void)
{
    __asm__ volatile("pause");
}

/* Ends the guest with `status` through the debug-exit port 0xf4. kvmstub
 * reports the value itself; QEMU's isa-debug-exit device (which QEMU needs
 * on its command line) exits with (status << 1) | 1. Without such a device
 * the CPU halts for good. */
__attribute__((noreturn)) void pc_exit(uint8_t status);

/* A flat GDT (code 0x08, data 0x10, 4 GiB each) loaded into the segment
 * registers, and an IDT whose exception vectors 0-31 print what happened
 * and end the guest with status PC_EXIT_EXCEPTION. Other vectors are empty
 * (an interrupt there ends up as exception 11) until pc_idt_set fills them. */
#define PC_EXIT_EXCEPTION 3
#define PC_CODE_SEGMENT 0x08
#define PC_DATA_SEGMENT 0x10
extern const uint64_t pc_gdt[3]; /* null, code, data */
void pc_descriptors_init(void);
/* Loads the IDT on this CPU (an AP has none after its INIT). */
void pc_idt_load(void);
/* Makes `entry` the interrupt gate (IF cleared on entry) for `vector`.
 * `entry` is assembly that saves what it uses and returns with iret. */
void pc_idt_set(unsigned int vector, void (*entry)(void));

/* The 8259 PICs: IRQ 0-7 (master) at vectors base..base+7, IRQ 8-15
 * (slave, cascaded on IRQ 2) at base+8..base+15, every IRQ masked. */
void pc_pic_init(uint8_t base);
void pc_pic_unmask(unsigned int irq);
void pc_pic_mask_all(void);
/* End of interrupt: the PIC delivers no lower-priority IRQ until then. */
void pc_pic_eoi(unsigned int irq);

/* The 8254 PIT's channel 0 counts down at 1.193182 MHz. */
#define PC_PIT_HZ 1193182u
/* Periodic interrupts on IRQ 0, `hz` times a second (19 to 1193182). */
void pc_pit_periodic(unsigned int hz);
/* Busy-waits `us` microseconds (up to 3.5 s) by reading channel 0, which
 * this reprograms to count through 65536 without caring for IRQ 0. */
void pc_pit_delay_us(unsigned int us);

/* The local APIC of the CPU that runs the code, at its reset address. */
#define PC_LAPIC_BASE 0xfee00000u
#define LAPIC_ID 0x020
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0      /* spurious vector; bit 8 enables the APIC */
#define LAPIC_ICR_LOW 0x300  /* writing it sends the inter-processor interrupt */
#define LAPIC_ICR_HIGH 0x310 /* destination APIC id in bits 24-31 */
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_TIMER_INITIAL 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE 0x3e0

static inline uint32_t pc_lapic_read(unsigned int reg)
{
    return *(volatile uint32_t *)(PC_LAPIC_BASE + reg);
}

static inline void pc_lapic_write(unsigned int reg, uint32_t value)
{
    *(volatile uint32_t *)(PC_LAPIC_BASE + reg) = value;
}

static inline unsigned int pc_lapic_id(void)
{
    return pc_lapic_read(LAPIC_ID) >> 24;
}

/* Software-enables this CPU's local APIC with `spurious_vector`, whose
 * handler must return without an EOI. */
void pc_lapic_enable(uint8_t spurious_vector);
void pc_lapic_eoi(void);

#endif
