/* smp: several processors at once. The boot processor (BSP) finds the other
 * processors in the MP table, starts each with INIT and startup IPIs
 * through its local APIC, and then every CPU increments its own counter
 * and, under a spinlock, a shared one, `rounds` times (10000, or N with
 * "rounds=N" on the command line). The BSP waits for all, checks that the
 * shared counter equals the sum of the per-CPU ones, prints the result and
 * ends the guest through the debug-exit port: status 0 when the counts
 * agree, 1 when they do not, 2 when a CPU did not start.
 *
 *     kvmstub --machine pc --cpus 2 build/examples/smp.elf
 *     kvmstub --machine pc --cpus 4 --cmdline rounds=1000000 build/examples/smp.elf
 *
 * A third counter is incremented by every CPU without the lock, to show
 * what the lock prevents: with CPUs really running at once, some of its
 * increments get lost (how many varies from run to run). */
#include "multiboot.h"
#include "pc.h"
#include "uart.h"

#define MAX_CPUS 16
/* Few enough for a host that emulates every instruction (a few seconds),
 * enough for CPUs that really run at once to lose unlocked increments. */
#define DEFAULT_ROUNDS 10000
/* The APs start at physical TRAMPOLINE_PAGE * 4096, in real mode. */
#define TRAMPOLINE_PAGE 0x08
#define AP_STACK_SIZE 4096

unsigned int rounds = DEFAULT_ROUNDS;
/* The processors: index 0 is the BSP, the others in MP table order. */
unsigned int ncpus = 1;
unsigned int apic_ids[MAX_CPUS];

/* Each CPU's own count, and the shared one that `lock` protects. */
volatile unsigned int per_cpu_count[MAX_CPUS];
volatile unsigned int shared_count;
volatile unsigned int lock;
/* Incremented without the lock: the race, made visible. */
volatile unsigned int unlocked_count;

/* Incremented under the lock, like shared_count, but kept on the code
 * page by boot.S: a watchpoint on it traps the page every CPU runs. */
extern volatile unsigned int code_page_count;

/* The start line and the finish line. */
volatile unsigned int go;
volatile unsigned int cpus_done;

/* What the AP being started reads in boot.S and ap_main(): its stack and
 * its index. The BSP starts one AP at a time and waits until `ap_started`
 * shows that AP took them. */
uint32_t ap_stack_top;
volatile unsigned int ap_index;
volatile unsigned int ap_started;
static uint8_t ap_stacks[MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));

/* boot.S */
extern const char trampoline_start[], trampoline_end[];

static void spin_lock(volatile unsigned int *l)
{
    /* xchg is atomic: exactly one CPU reads 0 and owns the lock. The others
     * wait with plain reads (no bus locking) until it looks free. */
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
        while (*l)
            cpu_pause();
}

static void spin_unlock(volatile unsigned int *l)
{
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* One round of the work, on CPU `cpu`: a function of its own so that gdb
 * can break on it and show which CPU came. */
void count_once(unsigned int cpu) __attribute__((noinline));
void count_once(unsigned int cpu)
{
    per_cpu_count[cpu]++;
    unlocked_count++;
    spin_lock(&lock);
    shared_count++;
    code_page_count++;
    spin_unlock(&lock);
}

static void work(unsigned int cpu)
{
    while (!go)
        cpu_pause();
    for (unsigned int i = 0; i < rounds; i++)
        count_once(cpu);
    __atomic_fetch_add(&cpus_done, 1, __ATOMIC_RELEASE);
}

/* Where each AP arrives in C, from ap_start32 in boot.S. */
void ap_main(void);
void ap_main(void)
{
    unsigned int cpu = ap_index;
    pc_idt_load(); /* exceptions get reported here too */
    __atomic_store_n(&ap_started, 1, __ATOMIC_RELEASE);
    work(cpu);
}

/* The MP table (Intel MultiProcessor Specification 1.4): a floating
 * pointer structure, "_MP_", in one of three places, pointing to a
 * configuration table, "PCMP", that lists the processors, buses and
 * interrupt routing. */
struct mp_floating_pointer {
    char signature[4];
    uint32_t config_table;
    uint8_t length; /* in 16-byte units */
    uint8_t revision;
    uint8_t checksum;
    uint8_t features[5];
} __attribute__((packed));

struct mp_config_table {
    char signature[4];
    uint16_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem[8];
    char product[12];
    uint32_t oem_table;
    uint16_t oem_table_size;
    uint16_t entry_count;
    uint32_t lapic_address;
    uint16_t extended_length;
    uint8_t extended_checksum;
    uint8_t reserved;
} __attribute__((packed));

#define MP_PROCESSOR 0 /* 20 bytes; every other entry type is 8 */
#define MP_CPU_ENABLED 0x01

struct mp_processor {
    uint8_t type;
    uint8_t apic_id;
    uint8_t apic_version;
    uint8_t flags;
    uint32_t signature;
    uint32_t features;
    uint32_t reserved[2];
} __attribute__((packed));

static int sums_to_zero(const void *p, uint32_t length)
{
    uint8_t sum = 0;
    for (uint32_t i = 0; i < length; i++)
        sum = (uint8_t)(sum + ((const uint8_t *)p)[i]);
    return sum == 0;
}

static const struct mp_floating_pointer *mp_search(uint32_t start, uint32_t length)
{
    for (uint32_t a = start; a + 16 <= start + length; a += 16) {
        const struct mp_floating_pointer *f = (const void *)(uintptr_t)a;
        if (f->signature[0] == '_' && f->signature[1] == 'M' && f->signature[2] == 'P' &&
            f->signature[3] == '_' && f->length == 1 && sums_to_zero(f, 16))
            return f;
    }
    return 0;
}

/* Fills apic_ids[] from the MP table, the BSP first; returns the number of
 * processors, or 0 when there is no usable table. */
static unsigned int mp_find_cpus(unsigned int bsp_id)
{
    /* The first KiB of the extended BIOS data area (its segment is at
     * 0x40e), the last KiB of base memory, then the BIOS ROM. Without a
     * BIOS (kvmstub) 0x40e holds 0, so that place is skipped. */
    uint32_t ebda = (uint32_t)*(volatile uint16_t *)0x40e << 4;
    const struct mp_floating_pointer *f = 0;
    if (ebda)
        f = mp_search(ebda, 1024);
    if (!f)
        f = mp_search(0x9fc00, 1024);
    if (!f)
        f = mp_search(0xf0000, 0x10000);
    if (!f || !f->config_table)
        return 0;
    const struct mp_config_table *t = (const void *)(uintptr_t)f->config_table;
    if (t->signature[0] != 'P' || t->signature[1] != 'C' || t->signature[2] != 'M' ||
        t->signature[3] != 'P' || !sums_to_zero(t, t->length))
        return 0;

    unsigned int n = 1;
    apic_ids[0] = bsp_id;
    const uint8_t *e = (const uint8_t *)(t + 1);
    const uint8_t *end = (const uint8_t *)t + t->length;
    for (unsigned int i = 0; i < t->entry_count && e < end; i++) {
        if (*e != MP_PROCESSOR) {
            e += 8;
            continue;
        }
        const struct mp_processor *p = (const void *)e;
        e += sizeof(*p);
        if (!(p->flags & MP_CPU_ENABLED) || p->apic_id == bsp_id)
            continue;
        if (n == MAX_CPUS) {
            uart_puts("smp: more processors than the example's limit of 16; using 16\n");
            break;
        }
        apic_ids[n++] = p->apic_id;
    }
    return n;
}

static void lapic_send_ipi(unsigned int apic_id, uint32_t command)
{
    pc_lapic_write(LAPIC_ICR_HIGH, apic_id << 24);
    pc_lapic_write(LAPIC_ICR_LOW, command);
    while (pc_lapic_read(LAPIC_ICR_LOW) & (1u << 12))
        cpu_pause(); /* the delivery status: sent yet? */
}

#define IPI_INIT 0x00004500    /* INIT, level assert */
#define IPI_STARTUP 0x00004600 /* startup (SIPI), the page number in bits 0-7 */

/* INIT, 10 ms, SIPI, 200 us, and a second SIPI if the first went unheard:
 * the sequence the MP specification gives. Returns whether the AP came. */
static int start_ap(unsigned int cpu)
{
    ap_index = cpu;
    ap_stack_top = (uint32_t)(uintptr_t)&ap_stacks[cpu][AP_STACK_SIZE];
    ap_started = 0;
    lapic_send_ipi(apic_ids[cpu], IPI_INIT);
    pc_pit_delay_us(10000);
    for (int sipi = 0; sipi < 2 && !ap_started; sipi++) {
        lapic_send_ipi(apic_ids[cpu], IPI_STARTUP | TRAMPOLINE_PAGE);
        pc_pit_delay_us(200);
    }
    for (int ms = 0; ms < 1000 && !__atomic_load_n(&ap_started, __ATOMIC_ACQUIRE); ms++)
        pc_pit_delay_us(1000);
    return ap_started;
}

/* Runs once every CPU is done: the race-free result. */
static int report(void)
{
    unsigned int sum = 0;
    for (unsigned int cpu = 0; cpu < ncpus; cpu++) {
        uart_puts("smp: cpu ");
        uart_put_dec(cpu);
        uart_puts(" counted ");
        uart_put_dec(per_cpu_count[cpu]);
        uart_putc('\n');
        sum += per_cpu_count[cpu];
    }
    uart_puts("smp: shared counter ");
    uart_put_dec(shared_count);
    uart_puts(", sum of the per-CPU counters ");
    uart_put_dec(sum);
    uart_puts("\nsmp: without the lock: ");
    uart_put_dec(unlocked_count);
    uart_puts(" (");
    uart_put_dec(sum - unlocked_count);
    uart_puts(" increments lost)\n");
    int ok = shared_count == sum && sum == ncpus * rounds;
    uart_puts(ok ? "smp: PASS\n" : "smp: FAIL\n");
    return ok;
}

/* The number in a "rounds=N" word of the command line, or 0. */
static unsigned int rounds_option(const char *s)
{
    static const char key[] = "rounds=";
    while (*s) {
        unsigned int i = 0;
        while (key[i] && s[i] == key[i])
            i++;
        if (!key[i]) {
            unsigned int n = 0;
            for (s += i; *s >= '0' && *s <= '9' && n < 100000000; s++)
                n = n * 10 + (unsigned int)(*s - '0');
            return n;
        }
        while (*s && *s != ' ') /* the next word */
            s++;
        while (*s == ' ')
            s++;
    }
    return 0;
}

void bsp_main(uint32_t magic, const struct multiboot_info *mbi);
void bsp_main(uint32_t magic, const struct multiboot_info *mbi)
{
    if (magic == MULTIBOOT_BOOTLOADER_MAGIC && (mbi->flags & MULTIBOOT_INFO_CMDLINE)) {
        unsigned int n = rounds_option((const char *)(uintptr_t)mbi->cmdline);
        if (n)
            rounds = n;
    }
    uart_init();
    pc_descriptors_init();
    pc_pic_init(0x20); /* masked: this example takes no interrupts */
    unsigned int bsp_id = pc_lapic_id();
    pc_lapic_enable(0xff);

    ncpus = mp_find_cpus(bsp_id);
    if (!ncpus) {
        uart_puts("smp: no MP table found; running on the boot processor alone\n");
        ncpus = 1;
        apic_ids[0] = bsp_id;
    }
    uart_puts("smp: ");
    uart_put_dec(ncpus);
    uart_puts(ncpus == 1 ? " processor" : " processors");
    uart_puts(", APIC ids");
    for (unsigned int cpu = 0; cpu < ncpus; cpu++) {
        uart_putc(' ');
        uart_put_dec(apic_ids[cpu]);
    }
    uart_putc('\n');

    const char *src = trampoline_start;
    char *dst = (char *)(TRAMPOLINE_PAGE * 4096);
    while (src < trampoline_end)
        *dst++ = *src++;
    for (unsigned int cpu = 1; cpu < ncpus; cpu++) {
        if (!start_ap(cpu)) {
            uart_puts("smp: the processor with APIC id ");
            uart_put_dec(apic_ids[cpu]);
            uart_puts(" did not start\n");
            pc_exit(2);
        }
        uart_puts("smp: cpu ");
        uart_put_dec(cpu);
        uart_puts(" started\n");
    }

    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    work(0);
    while (__atomic_load_n(&cpus_done, __ATOMIC_ACQUIRE) < ncpus)
        cpu_pause();
    pc_exit(report() ? 0 : 1);
}
