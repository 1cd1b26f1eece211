/* The MP table, written into a RAM buffer and read back the way Linux's
 * mpparse.c finds and walks it (no KVM needed). */
#include "testmain.h"
#include "vm/mptable.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RAM_SIZE 0x100000u
#define BASE 0x9fc00u
#define ROOM 0x400u /* the last KiB of base memory */

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s = (uint8_t)(s + *p++);
    return s;
}

struct parsed {
    unsigned cpus, bsp_count, buses, ioapics, intsrc, lint;
    int apic_ids_ok, bsp_is_0, isa, ioapic_id, ioapic_addr_ok, pins_ok, extint_lint0, nmi_lint1;
};

/* Linux scans a region 16 bytes at a time for "_MP_" with a valid
 * checksum, then validates "PCMP" and walks the entries. */
static int parse(const uint8_t *ram, uint32_t from, uint32_t len, struct parsed *o)
{
    memset(o, 0, sizeof(*o));
    const uint8_t *fp = NULL;
    for (uint32_t a = from; a + 16 <= from + len; a += 16)
        if (memcmp(ram + a, "_MP_", 4) == 0 && ram[a + 8] == 1 && sum(ram + a, 16) == 0 &&
            (ram[a + 9] == 1 || ram[a + 9] == 4)) {
            fp = ram + a;
            break;
        }
    if (!fp)
        return -1;
    uint32_t table_addr = get32(fp + 4);
    if (table_addr + 44 > RAM_SIZE)
        return -2;
    const uint8_t *t = ram + table_addr;
    uint16_t length = get16(t + 4);
    if (memcmp(t, "PCMP", 4) || t[6] != 4 || table_addr + length > RAM_SIZE || sum(t, length))
        return -3;
    if (get32(t + 36) != VM_MPTABLE_LAPIC_ADDR || get16(t + 40) != 0)
        return -4;
    unsigned count = get16(t + 34), seen = 0;
    const uint8_t *e = t + 44, *end = t + length;
    o->apic_ids_ok = 1;
    o->pins_ok = 1;
    while (e < end) {
        seen++;
        switch (e[0]) {
        case 0:
            if (e + 20 > end)
                return -5;
            if (e[1] != o->cpus || e[2] != 0x14 || !(e[3] & 1))
                o->apic_ids_ok = 0;
            if (e[3] & 2) {
                o->bsp_count++;
                o->bsp_is_0 = e[1] == 0;
            }
            o->cpus++;
            e += 20;
            break;
        case 1:
            o->buses++;
            o->isa = e[1] == 0 && memcmp(e + 2, "ISA   ", 6) == 0;
            e += 8;
            break;
        case 2:
            o->ioapics++;
            o->ioapic_id = e[1];
            o->ioapic_addr_ok = (e[3] & 1) && get32(e + 4) == VM_MPTABLE_IOAPIC_ADDR;
            e += 8;
            break;
        case 3:
            if (e[1] != 0 || e[4] != 0 || e[5] != o->intsrc || e[6] != o->ioapic_id ||
                e[7] != o->intsrc)
                o->pins_ok = 0;
            o->intsrc++;
            e += 8;
            break;
        case 4:
            if (e[1] == 3 && e[7] == 0 && e[6] == 0xff)
                o->extint_lint0 = 1;
            if (e[1] == 1 && e[7] == 1 && e[6] == 0xff)
                o->nmi_lint1 = 1;
            o->lint++;
            e += 8;
            break;
        default:
            return -6;
        }
    }
    if (e != end || seen != count)
        return -7;
    return 0;
}

static void check_cpus(unsigned n)
{
    uint8_t *ram = calloc(1, RAM_SIZE);
    CU_ASSERT_FATAL(ram != NULL);
    CU_ASSERT_EQUAL(vm_mptable_write(ram, RAM_SIZE, BASE, ROOM, n), 0);
    struct parsed o;
    CU_ASSERT_EQUAL(parse(ram, BASE, ROOM, &o), 0);
    CU_ASSERT_EQUAL(o.cpus, n);
    CU_ASSERT(o.apic_ids_ok);
    CU_ASSERT_EQUAL(o.bsp_count, 1);
    CU_ASSERT(o.bsp_is_0);
    CU_ASSERT_EQUAL(o.buses, 1);
    CU_ASSERT(o.isa);
    CU_ASSERT_EQUAL(o.ioapics, 1);
    CU_ASSERT_EQUAL(o.ioapic_id, (int)n);
    CU_ASSERT(o.ioapic_addr_ok);
    CU_ASSERT_EQUAL(o.intsrc, 16);
    CU_ASSERT(o.pins_ok);
    CU_ASSERT_EQUAL(o.lint, 2);
    CU_ASSERT(o.extint_lint0);
    CU_ASSERT(o.nmi_lint1);
    /* Nothing written outside the table. */
    size_t size = vm_mptable_size(n);
    CU_ASSERT_EQUAL(sum(ram, BASE), 0);
    CU_ASSERT_EQUAL(sum(ram + BASE + size, RAM_SIZE - BASE - size), 0);
    free(ram);
}

static void test_one_cpu(void) { check_cpus(1); }
static void test_two_cpus(void) { check_cpus(2); }
static void test_sixteen_cpus(void) { check_cpus(16); }

/* With PCI devices: bus 0 is PCI (Linux looks PCI interrupts up by bus
 * number as MP bus id), ISA moves to bus 1, and each device's INTA gets a
 * level, active-low entry to its IOAPIC pin. */
static void test_pci_bus_and_interrupts(void)
{
    uint8_t *ram = calloc(1, RAM_SIZE);
    CU_ASSERT_FATAL(ram != NULL);
    const struct vm_mptable_pci_irq pci[] = {{.slot = 1, .pin = 16}, {.slot = 2, .pin = 17}};
    size_t size = vm_mptable_size_pci(1, 2);
    CU_ASSERT_EQUAL(size, vm_mptable_size(1) + 3 * 8);
    CU_ASSERT_EQUAL(vm_mptable_write_pci(ram, RAM_SIZE, BASE, ROOM, 1, pci, 2), 0);
    struct parsed o;
    CU_ASSERT_EQUAL(parse(ram, BASE, ROOM, &o), 0); /* checksums, count, lengths */
    CU_ASSERT_EQUAL(o.buses, 2);
    CU_ASSERT_EQUAL(o.intsrc, 18);
    const uint8_t *e = ram + BASE + 16 + 44 + 20, *end = ram + BASE + size;
    int pci_bus = 0, isa_bus = 0, isa_ok = 1, pci_found = 0;
    for (; e < end; e += 8) {
        if (e[0] == 1 && e[1] == 0 && memcmp(e + 2, "PCI   ", 6) == 0)
            pci_bus = 1;
        if (e[0] == 1 && e[1] == 1 && memcmp(e + 2, "ISA   ", 6) == 0)
            isa_bus = 1;
        if (e[0] == 3 && e[4] == 1 && (e[5] != e[7] || get16(e + 2) != 0))
            isa_ok = 0;
        if (e[0] == 3 && e[4] == 0) {
            unsigned i = (unsigned)pci_found++;
            CU_ASSERT(i < 2);
            if (i < 2) {
                CU_ASSERT_EQUAL(e[5], pci[i].slot << 2); /* INTA */
                CU_ASSERT_EQUAL(e[7], pci[i].pin);
                CU_ASSERT_EQUAL(e[6], 1); /* the IOAPIC */
                CU_ASSERT_EQUAL(get16(e + 2), 0x0f); /* level, active low */
            }
        }
    }
    CU_ASSERT(pci_bus);
    CU_ASSERT(isa_bus);
    CU_ASSERT(isa_ok);
    CU_ASSERT_EQUAL(pci_found, 2);
    CU_ASSERT_EQUAL(sum(ram + BASE + size, RAM_SIZE - BASE - size), 0);
    const struct vm_mptable_pci_irq bad = {.slot = 1, .pin = 24};
    CU_ASSERT_EQUAL(vm_mptable_write_pci(ram, RAM_SIZE, BASE, ROOM, 1, &bad, 1), -EINVAL);
    free(ram);
}

static void test_most_cpus_in_the_last_kib(void)
{
    unsigned max = vm_mptable_max_cpus(ROOM);
    CU_ASSERT_EQUAL(max, 40); /* (1024 - 220) / 20 */
    check_cpus(max);
    uint8_t *ram = calloc(1, RAM_SIZE);
    CU_ASSERT_FATAL(ram != NULL);
    CU_ASSERT_EQUAL(vm_mptable_write(ram, RAM_SIZE, BASE, ROOM, max + 1), -ENOSPC);
    CU_ASSERT_EQUAL(sum(ram, RAM_SIZE), 0); /* refused: nothing written */
    free(ram);
}

static void test_bios_area_fits_the_maximum(void)
{
    /* 0xf0000-0xfffff has room for every CPU the APIC ids allow. */
    uint8_t *ram = calloc(1, RAM_SIZE);
    CU_ASSERT_FATAL(ram != NULL);
    CU_ASSERT_EQUAL(vm_mptable_max_cpus(0x10000), VM_MPTABLE_MAX_CPUS);
    CU_ASSERT_EQUAL(vm_mptable_write(ram, RAM_SIZE, 0xf0000, 0x10000, VM_MPTABLE_MAX_CPUS), 0);
    struct parsed o;
    CU_ASSERT_EQUAL(parse(ram, 0xf0000, 0x10000, &o), 0);
    CU_ASSERT_EQUAL(o.cpus, VM_MPTABLE_MAX_CPUS);
    CU_ASSERT_EQUAL(o.ioapic_id, (int)VM_MPTABLE_MAX_CPUS);
    free(ram);
}

static void test_refusals(void)
{
    uint8_t *ram = calloc(1, RAM_SIZE);
    CU_ASSERT_FATAL(ram != NULL);
    CU_ASSERT_EQUAL(vm_mptable_write(ram, RAM_SIZE, BASE, ROOM, 0), -EINVAL);
    CU_ASSERT_EQUAL(vm_mptable_write(ram, RAM_SIZE, BASE, 0x10000, 255), -EINVAL);
    CU_ASSERT_EQUAL(vm_mptable_write(ram, RAM_SIZE, BASE + 8, ROOM, 1), -EINVAL);
    CU_ASSERT_EQUAL(vm_mptable_write(ram, RAM_SIZE, RAM_SIZE - 16, 0x10000, 1), -EINVAL);
    CU_ASSERT_EQUAL(vm_mptable_write(ram, RAM_SIZE, UINT64_MAX - 15, 0x10000, 1), -EINVAL);
    CU_ASSERT_EQUAL(vm_mptable_write(NULL, RAM_SIZE, BASE, ROOM, 1), -EINVAL);
    CU_ASSERT_EQUAL(vm_mptable_max_cpus(10), 0);
    CU_ASSERT_EQUAL(sum(ram, RAM_SIZE), 0);
    free(ram);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_mptable", NULL, NULL);
    CU_add_test(s, "1 CPU: pointer, table, entries, checksums", test_one_cpu);
    CU_add_test(s, "2 CPUs", test_two_cpus);
    CU_add_test(s, "16 CPUs", test_sixteen_cpus);
    CU_add_test(s, "the most CPUs that fit at 0x9fc00 (40), one more refused",
                test_most_cpus_in_the_last_kib);
    CU_add_test(s, "254 CPUs in the BIOS area", test_bios_area_fits_the_maximum);
    CU_add_test(s, "bad counts, addresses and buffers refused", test_refusals);
    CU_add_test(s, "PCI bus 0 with level, active-low INTA entries; ISA on bus 1",
                test_pci_bus_and_interrupts);
}

int main(void)
{
    return test_main("test_vm_mptable", register_suites, false);
}
