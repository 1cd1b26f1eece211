/* pc.c: see pc.h. */
#include "pc.h"
#include "uart.h"

#define DEBUG_EXIT_PORT 0xf4

#define PIC1_COMMAND 0x20
#define PIC1_DATA 0x21
#define PIC2_COMMAND 0xa0
#define PIC2_DATA 0xa1
#define PIC_EOI 0x20

#define PIT_CHANNEL0 0x40
#define PIT_COMMAND 0x43

void pc_exit(uint8_t status)
{
    outb(DEBUG_EXIT_PORT, status);
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* Descriptor tables. A descriptor's fields are scattered over its 8 bytes
 * for compatibility with the 80286; these are the flat ones, written out. */
const uint64_t pc_gdt[3] = {
    0,                     /* the null descriptor */
    0x00cf9a000000ffffull, /* 0x08: code, base 0, limit 4 GiB, 32-bit, ring 0 */
    0x00cf92000000ffffull, /* 0x10: data, base 0, limit 4 GiB, writable */
};

struct gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t zero;
    uint8_t type; /* 0x8e: present, ring 0, 32-bit interrupt gate */
    uint16_t offset_high;
} __attribute__((packed));

static struct gate idt[256];

struct table_register {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

/* The exception entry points of vectors.S, in vector order. */
extern void (*const pc_exception_entries[32])(void);

void pc_idt_set(unsigned int vector, void (*entry)(void))
{
    uint32_t offset = (uint32_t)(uintptr_t)entry;
    idt[vector].offset_low = (uint16_t)offset;
    idt[vector].selector = PC_CODE_SEGMENT;
    idt[vector].zero = 0;
    idt[vector].type = 0x8e;
    idt[vector].offset_high = (uint16_t)(offset >> 16);
}

void pc_idt_load(void)
{
    struct table_register idtr = {sizeof(idt) - 1, (uint32_t)(uintptr_t)idt};
    __asm__ volatile("lidt %0" : : "m"(idtr));
}

void pc_descriptors_init(void)
{
    struct table_register gdtr = {sizeof(pc_gdt) - 1, (uint32_t)(uintptr_t)pc_gdt};
    /* The loader's GDT may be anywhere, even in memory we reuse: switch to
     * ours, reloading CS with a far jump and the data segments by hand. */
    __asm__ volatile("lgdt %0\n\t"
                     "ljmp %1, $1f\n"
                     "1:\n\t"
                     "mov %2, %%ds\n\t"
                     "mov %2, %%es\n\t"
                     "mov %2, %%fs\n\t"
                     "mov %2, %%gs\n\t"
                     "mov %2, %%ss"
                     :
                     : "m"(gdtr), "i"(PC_CODE_SEGMENT), "r"(PC_DATA_SEGMENT)
                     : "memory");
    for (unsigned int v = 0; v < 32; v++)
        pc_idt_set(v, pc_exception_entries[v]);
    pc_idt_load();
}

/* What vectors.S pushed, lowest address first. */
struct exception_frame {
    uint32_t edi, esi, ebp, esp, ebx, edx, ecx, eax; /* pusha */
    uint32_t vector, error;                          /* the stub's, or the CPU's error code */
    uint32_t eip, cs, eflags;                        /* pushed by the CPU */
};

void pc_exception(const struct exception_frame *f);
void pc_exception(const struct exception_frame *f)
{
    uart_puts("exception ");
    uart_put_dec(f->vector);
    uart_puts(" at eip 0x");
    uart_put_hex(f->eip, 8);
    uart_puts(", error code 0x");
    uart_put_hex(f->error, 8);
    uart_puts(", on the CPU with APIC id ");
    uart_put_dec(pc_lapic_id());
    uart_putc('\n');
    pc_exit(PC_EXIT_EXCEPTION);
}

void pc_pic_init(uint8_t base)
{
    /* ICW1: initialise, ICW4 follows; ICW2: vector base; ICW3: the slave
     * hangs on the master's IRQ 2; ICW4: 8086 mode. */
    outb(PIC1_COMMAND, 0x11);
    outb(PIC2_COMMAND, 0x11);
    outb(PIC1_DATA, base);
    outb(PIC2_DATA, (uint8_t)(base + 8));
    outb(PIC1_DATA, 1 << 2);
    outb(PIC2_DATA, 2);
    outb(PIC1_DATA, 0x01);
    outb(PIC2_DATA, 0x01);
    pc_pic_mask_all();
}

void pc_pic_mask_all(void)
{
    outb(PIC1_DATA, 0xff);
    outb(PIC2_DATA, 0xff);
}

void pc_pic_unmask(unsigned int irq)
{
    if (irq < 8) {
        outb(PIC1_DATA, (uint8_t)(inb(PIC1_DATA) & ~(1u << irq)));
    } else {
        outb(PIC2_DATA, (uint8_t)(inb(PIC2_DATA) & ~(1u << (irq - 8))));
        outb(PIC1_DATA, (uint8_t)(inb(PIC1_DATA) & ~(1u << 2))); /* the cascade */
    }
}

void pc_pic_eoi(unsigned int irq)
{
    if (irq >= 8)
        outb(PIC2_COMMAND, PIC_EOI);
    outb(PIC1_COMMAND, PIC_EOI);
}

/* Channel 0, low then high byte, mode 2 (rate generator), binary. */
static void pit_load(uint16_t count)
{
    outb(PIT_COMMAND, 0x34);
    outb(PIT_CHANNEL0, (uint8_t)count);
    outb(PIT_CHANNEL0, (uint8_t)(count >> 8));
}

void pc_pit_periodic(unsigned int hz)
{
    pit_load((uint16_t)((PC_PIT_HZ + hz / 2) / hz));
}

static uint16_t pit_count(void)
{
    outb(PIT_COMMAND, 0x00); /* latch channel 0's count, then read it */
    uint8_t low = inb(PIT_CHANNEL0);
    return (uint16_t)(low | inb(PIT_CHANNEL0) << 8);
}

void pc_pit_delay_us(unsigned int us)
{
    /* 1193 counts per millisecond, without 64-bit arithmetic. */
    uint32_t target = us / 1000 * 1193 + us % 1000 * 1193 / 1000;
    uint32_t elapsed = 0;
    pit_load(0); /* 0 means 65536: wraps every 55 ms */
    uint16_t last = pit_count();
    while (elapsed < target) {
        uint16_t now = pit_count();
        elapsed += (uint16_t)(last - now); /* it counts down, and wraps */
        last = now;
    }
}

void pc_lapic_enable(uint8_t spurious_vector)
{
    pc_lapic_write(LAPIC_SVR, 0x100u | spurious_vector);
}

void pc_lapic_eoi(void)
{
    pc_lapic_write(LAPIC_EOI, 0);
}
