/* ticks: a kernel that takes timer interrupts. It programs the 8259 PICs
 * and the 8254 PIT for 100 interrupts a second, counts them in an interrupt
 * handler, halts between them, prints a line every 10 ticks and ends the
 * guest after 50 with status 0 through the debug-exit port.
 *
 *     kvmstub --machine pc build/examples/ticks.elf
 *     kvmstub --machine pc --cmdline timer=lapic build/examples/ticks.elf
 *
 * With "timer=lapic" on its command line it measures the local APIC timer
 * against the PIT first, then counts the local APIC timer's interrupts
 * instead, with the PICs masked. */
#include "multiboot.h"
#include "pc.h"
#include "uart.h"

#define HZ 100
#define TICKS_TO_RUN 50
#define REPORT_EVERY 10
#define CALIBRATION_TICKS 10

/* Vectors: the PICs' IRQs 0-15 at 0x20-0x2f, above the CPU's exceptions. */
#define PIC_VECTOR_BASE 0x20
#define LAPIC_TIMER_VECTOR 0x40
#define LAPIC_SPURIOUS_VECTOR 0xff

enum timer_source { TIMER_PIT, TIMER_LAPIC };

/* Which device interrupts: the handler's EOI goes to it. */
enum timer_source timer_source = TIMER_PIT;
/* The local APIC timer's count for one tick, once measured. */
unsigned int lapic_counts_per_tick;

/* The tick counter, written by the interrupt handler alone. It has a page
 * to itself (ticks.ld): where the host's CPU has no debug register for a
 * watchpoint, kvmstub write-protects the page instead, and then no other
 * variable's writes trap. volatile: the main loop must read it from memory
 * each time, as the handler changes it behind the loop's back. */
volatile unsigned int ticks __attribute__((section(".watched")));

/* boot.S */
extern void timer_entry(void);
extern void spurious_entry(void);

/* The interrupt handler proper, called by timer_entry with IF clear. */
void timer_tick(void);
void timer_tick(void)
{
    ticks++;
    if (timer_source == TIMER_LAPIC)
        pc_lapic_eoi();
    else
        pc_pic_eoi(0);
}

/* Sleeps until an interrupt has been handled. Called with IF clear: sti
 * takes effect only after the next instruction, so no interrupt can slip in
 * between the caller's check of `ticks` and the hlt, and hlt wakes for it. */
static void wait_for_interrupt(void)
{
    __asm__ volatile("sti; hlt; cli" : : : "memory");
}

/* Counts ticks until there are `limit`, printing every REPORT_EVERY. */
static void count_ticks(unsigned int limit)
{
    unsigned int reported = 0;
    while (ticks < limit) {
        wait_for_interrupt();
        unsigned int now = ticks;
        if (now / REPORT_EVERY != reported / REPORT_EVERY) {
            reported = now;
            uart_puts("ticks: ");
            uart_put_dec(now);
            uart_puts(" (");
            uart_put_dec(now / HZ);
            uart_putc('.');
            uart_put_dec(now % HZ / 10);
            uart_puts(" s)\n");
        }
    }
}

/* The local APIC timer counts down at a rate of its own (the bus clock
 * divided by 16): count it over CALIBRATION_TICKS of the PIT. */
static unsigned int measure_lapic_timer(void)
{
    unsigned int start = ticks;
    while (ticks == start)
        wait_for_interrupt(); /* begin right after a tick */
    pc_lapic_write(LAPIC_TIMER_DIVIDE, 0x3);                    /* divide by 16 */
    pc_lapic_write(LAPIC_LVT_TIMER, 1u << 16 | LAPIC_TIMER_VECTOR); /* masked, one-shot */
    pc_lapic_write(LAPIC_TIMER_INITIAL, 0xffffffffu);
    start = ticks;
    while (ticks - start < CALIBRATION_TICKS)
        wait_for_interrupt();
    uint32_t left = pc_lapic_read(LAPIC_TIMER_CURRENT);
    pc_lapic_write(LAPIC_TIMER_INITIAL, 0); /* stop it */
    return (0xffffffffu - left) / CALIBRATION_TICKS;
}

static int has_word(const char *s, const char *word)
{
    while (*s) {
        const char *w = word;
        const char *p = s;
        while (*w && *p == *w)
            p++, w++;
        if (!*w && (*p == ' ' || !*p))
            return 1;
        while (*s && *s != ' ')
            s++;
        while (*s == ' ')
            s++;
    }
    return 0;
}

void kmain(uint32_t magic, const struct multiboot_info *mbi);
void kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    int use_lapic = magic == MULTIBOOT_BOOTLOADER_MAGIC && (mbi->flags & MULTIBOOT_INFO_CMDLINE) &&
                    has_word((const char *)(uintptr_t)mbi->cmdline, "timer=lapic");

    uart_init();
    pc_descriptors_init();
    pc_pic_init(PIC_VECTOR_BASE);
    for (unsigned int irq = 0; irq < 16; irq++)
        pc_idt_set(PIC_VECTOR_BASE + irq, irq == 0 ? timer_entry : spurious_entry);
    pc_pic_unmask(0);
    pc_pit_periodic(HZ);
    uart_puts("ticks: the PIT interrupts 100 times a second, through the PIC on IRQ 0\n");

    if (use_lapic) {
        pc_idt_set(LAPIC_TIMER_VECTOR, timer_entry);
        pc_idt_set(LAPIC_SPURIOUS_VECTOR, spurious_entry);
        pc_lapic_enable(LAPIC_SPURIOUS_VECTOR);
        lapic_counts_per_tick = measure_lapic_timer();
        uart_puts("ticks: the local APIC timer counts ");
        uart_put_dec(lapic_counts_per_tick);
        uart_puts(" per tick; it takes over, the PICs are masked\n");
        /* IF is clear: no tick arrives between these steps. */
        pc_pic_mask_all();
        timer_source = TIMER_LAPIC;
        ticks = 0;
        pc_lapic_write(LAPIC_LVT_TIMER, 1u << 17 | LAPIC_TIMER_VECTOR); /* periodic */
        pc_lapic_write(LAPIC_TIMER_INITIAL, lapic_counts_per_tick);
    }

    count_ticks(TICKS_TO_RUN);
    uart_puts("ticks: done after ");
    uart_put_dec(ticks);
    uart_puts(use_lapic ? " local APIC timer ticks\n" : " PIT ticks\n");
    pc_exit(0);
}
