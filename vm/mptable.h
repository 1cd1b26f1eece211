/* vm/mptable.h: an Intel MultiProcessor Specification 1.4 table, which is
 * how a Linux guest without ACPI learns its CPUs and interrupt routing.
 *
 * vm_mptable_write puts, at addr in a guest-RAM buffer: the "_MP_"
 * floating pointer (16 bytes), then the "PCMP" configuration table with a
 * processor entry per CPU (APIC ids 0..ncpus-1, APIC version 0x14, all
 * enabled, the bootstrap flag on CPU 0), one ISA bus (id 0), the IOAPIC
 * (id ncpus, version 0x11, at 0xfec00000), ISA IRQ i -> IOAPIC pin i for
 * i = 0..15 (what KVM's default GSI routing does), and the local
 * interrupts of every LAPIC: LINT0 ExtINT (the 8259s), LINT1 NMI. Both
 * checksums are set. With PCI devices, bus 0 is PCI and each device's
 * INTA gets an entry. Linux scans 0x9fc00-0xa0000 (the last KiB of base
 * memory) and 0xf0000-0xfffff; the region must be reserved in the e820
 * map. The vCPUs' CPUID APIC ids must match (vm/cpuid.h). */
#ifndef VM_MPTABLE_H
#define VM_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#define VM_MPTABLE_LAPIC_ADDR 0xfee00000u
#define VM_MPTABLE_IOAPIC_ADDR 0xfec00000u
#define VM_MPTABLE_ISA_IRQS 16u
#define VM_MPTABLE_MAX_CPUS 254u /* the IOAPIC takes APIC id ncpus; 0xff is broadcast */
#define VM_MPTABLE_IOAPIC_PINS 24u
#define VM_MPTABLE_MAX_PCI 32u

/* A PCI device on bus 0 whose INTA line drives IOAPIC pin (level, active
 * low). */
struct vm_mptable_pci_irq {
    unsigned slot;
    unsigned pin;
};

/* Bytes the table takes for ncpus CPUs. */
size_t vm_mptable_size(unsigned ncpus);
/* The most CPUs whose table fits in room bytes (0 if none). */
unsigned vm_mptable_max_cpus(size_t room);

/* Writes the table at addr (16-byte aligned, below 4 GiB) into ram,
 * using at most room bytes. Returns 0, -EINVAL (bad ncpus, address, or
 * outside ram_size) or -ENOSPC (more than room bytes needed). */
int vm_mptable_write(uint8_t *ram, uint64_t ram_size, uint64_t addr, size_t room, unsigned ncpus);
/* The same with PCI bus 0 as MP bus 0 (ISA becomes bus 1) and an I/O
 * interrupt entry per device, when npci is not 0. */
size_t vm_mptable_size_pci(unsigned ncpus, unsigned npci);
int vm_mptable_write_pci(uint8_t *ram, uint64_t ram_size, uint64_t addr, size_t room,
                         unsigned ncpus, const struct vm_mptable_pci_irq *pci, unsigned npci);

#endif
