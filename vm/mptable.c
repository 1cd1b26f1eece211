/* The MP table: floating pointer, configuration table header, then base
 * entries in the order the specification sorts them (processors, buses,
 * IOAPICs, I/O interrupts, local interrupts). */
#include "mptable.h"

#include <errno.h>
#include <string.h>

#define FP_SIZE 16u
#define HEADER_SIZE 44u
#define CPU_SIZE 20u
#define ENTRY_SIZE 8u /* bus, IOAPIC, I/O and local interrupt entries */
#define FIXED_SIZE (FP_SIZE + HEADER_SIZE + ENTRY_SIZE * (2 + VM_MPTABLE_ISA_IRQS + 2))

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };
enum { INT_VECTORED = 0, INT_NMI = 1, INT_EXTINT = 3 };

#define SPEC_REV 4 /* 1.4 */
#define LAPIC_VERSION 0x14
#define IOAPIC_VERSION 0x11
#define CPU_ENABLED 0x01
#define CPU_BSP 0x02
#define CPU_SIGNATURE 0x600u       /* family 6, as firecracker reports */
#define CPU_FEATURES 0x201u        /* FPU, APIC */
#define ALL_LAPICS 0xff
#define PCI_IRQ_FLAGS 0x0fu        /* polarity 11: active low; trigger 11: level */

size_t vm_mptable_size(unsigned ncpus)
{
    return FIXED_SIZE + (size_t)CPU_SIZE * ncpus;
}

size_t vm_mptable_size_pci(unsigned ncpus, unsigned npci)
{
    /* A PCI bus entry and one I/O interrupt entry per device. */
    return vm_mptable_size(ncpus) + (npci ? ENTRY_SIZE * (1 + (size_t)npci) : 0);
}

unsigned vm_mptable_max_cpus(size_t room)
{
    if (room < vm_mptable_size(1))
        return 0;
    size_t n = (room - FIXED_SIZE) / CPU_SIZE;
    return n > VM_MPTABLE_MAX_CPUS ? VM_MPTABLE_MAX_CPUS : (unsigned)n;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + p[i]);
    return (uint8_t)-sum;
}

static uint8_t *interrupt(uint8_t *e, uint8_t kind, uint8_t int_type, uint8_t bus, uint8_t bus_irq,
                          uint8_t dest, uint8_t dest_pin)
{
    e[0] = kind;
    e[1] = int_type;
    put16(e + 2, 0); /* polarity and trigger: conforming to the bus */
    e[4] = bus;
    e[5] = bus_irq;
    e[6] = dest;
    e[7] = dest_pin;
    return e + ENTRY_SIZE;
}

int vm_mptable_write(uint8_t *ram, uint64_t ram_size, uint64_t addr, size_t room, unsigned ncpus)
{
    return vm_mptable_write_pci(ram, ram_size, addr, room, ncpus, NULL, 0);
}

int vm_mptable_write_pci(uint8_t *ram, uint64_t ram_size, uint64_t addr, size_t room,
                         unsigned ncpus, const struct vm_mptable_pci_irq *pci, unsigned npci)
{
    if (!ram || ncpus == 0 || ncpus > VM_MPTABLE_MAX_CPUS || (addr & 15) ||
        npci > VM_MPTABLE_MAX_PCI || (npci && !pci))
        return -EINVAL;
    for (unsigned i = 0; i < npci; i++)
        if (pci[i].slot >= 32 || pci[i].pin >= VM_MPTABLE_IOAPIC_PINS)
            return -EINVAL;
    size_t size = vm_mptable_size_pci(ncpus, npci);
    if (addr > ram_size || size > ram_size - addr || addr + size > 0x100000000ull)
        return -EINVAL;
    if (size > room)
        return -ENOSPC;
    uint8_t *fp = ram + addr, *table = fp + FP_SIZE;
    memset(fp, 0, size);

    memcpy(fp, "_MP_", 4);
    put32(fp + 4, (uint32_t)(addr + FP_SIZE)); /* the configuration table */
    fp[8] = 1;                                  /* length in 16-byte units */
    fp[9] = SPEC_REV;
    /* Feature bytes 0: a configuration table is present; no IMCR, so the
     * guest uses virtual wire mode through LINT0. */
    fp[10] = checksum(fp, FP_SIZE);

    uint8_t *e = table + HEADER_SIZE;
    for (unsigned i = 0; i < ncpus; i++, e += CPU_SIZE) {
        e[0] = MP_PROCESSOR;
        e[1] = (uint8_t)i;
        e[2] = LAPIC_VERSION;
        e[3] = CPU_ENABLED | (i == 0 ? CPU_BSP : 0);
        put32(e + 4, CPU_SIGNATURE);
        put32(e + 8, CPU_FEATURES);
    }
    /* Linux looks a PCI device's interrupt up by its bus number as the MP
     * bus id, so PCI bus 0 must be MP bus 0 and ISA comes after it (as
     * SeaBIOS lays it out). */
    uint8_t isa_bus = npci ? 1 : 0;
    if (npci) {
        e[0] = MP_BUS;
        e[1] = 0;
        memcpy(e + 2, "PCI   ", 6);
        e += ENTRY_SIZE;
    }
    e[0] = MP_BUS;
    e[1] = isa_bus;
    memcpy(e + 2, "ISA   ", 6);
    e += ENTRY_SIZE;
    uint8_t ioapic_id = (uint8_t)ncpus;
    e[0] = MP_IOAPIC;
    e[1] = ioapic_id;
    e[2] = IOAPIC_VERSION;
    e[3] = 1; /* usable */
    put32(e + 4, VM_MPTABLE_IOAPIC_ADDR);
    e += ENTRY_SIZE;
    for (unsigned irq = 0; irq < VM_MPTABLE_ISA_IRQS; irq++)
        e = interrupt(e, MP_INTSRC, INT_VECTORED, isa_bus, (uint8_t)irq, ioapic_id, (uint8_t)irq);
    /* PCI source bus IRQ: slot in bits 2-6, INTA-INTD as 0-3 in bits 0-1
     * (MP spec 1.4, appendix D); level-triggered, active low, as PCI's
     * INTx lines are. */
    for (unsigned i = 0; i < npci; i++) {
        uint8_t *x = interrupt(e, MP_INTSRC, INT_VECTORED, 0, (uint8_t)(pci[i].slot << 2),
                               ioapic_id, pci[i].pin);
        put16(e + 2, PCI_IRQ_FLAGS);
        e = x;
    }
    e = interrupt(e, MP_LINTSRC, INT_EXTINT, isa_bus, 0, ALL_LAPICS, 0);
    e = interrupt(e, MP_LINTSRC, INT_NMI, isa_bus, 0, ALL_LAPICS, 1);

    uint16_t length = (uint16_t)(e - table);
    memcpy(table, "PCMP", 4);
    put16(table + 4, length);
    table[6] = SPEC_REV;
    memcpy(table + 8, "KVMSTUB ", 8);
    memcpy(table + 16, "PC          ", 12);
    put16(table + 34, (uint16_t)(ncpus + 2 + VM_MPTABLE_ISA_IRQS + 2 + (npci ? 1 + npci : 0)));
    put32(table + 36, VM_MPTABLE_LAPIC_ADDR);
    table[7] = checksum(table, length);
    return 0;
}
