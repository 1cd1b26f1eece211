/* Snapshots of a running machine on /dev/kvm: dirty-page tracking sees the
 * guest's writes and kvmstub's and nothing else; a load restores every
 * register (compared through KVM_GET_REGS/SREGS/XSAVE/DEBUGREGS) and every
 * byte of RAM, and execution from there repeats exactly; many checkpoints
 * load in any order; a snapshot file restores the same, and truncated,
 * corrupt, foreign-version and foreign-CPU files are refused without
 * touching the VM; the irqchip, PIT, clock and LAPIC of a PC-style VM come
 * back too. */
#include "testmain.h"
#include "vm/checksum.h"
#include "vm/snapfile.h"
#include "vm/snapshot.h"
#include "vmtest.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PAGE 4096u
#define WINDOW 0x400000u /* where the fixture writes, 512 qwords a batch */

static char dir[64];

static struct vm *guest(uint64_t ram)
{
    struct vm *vm = vt_create(ram);
    if (!vm)
        return NULL;
    struct vm_image img;
    char err[256];
    if (vm_image_open(&img, FIXTURE_SNAPWRITE, err, sizeof(err)) ||
        vm_image_load(vm, &img, &(struct vm_image_options){0}, err, sizeof(err))) {
        fprintf(stderr, "fixture: %s\n", err);
        vm_destroy(vm);
        return NULL;
    }
    vm_image_free(&img);
    return vm;
}

static int open_snapshots(struct vm *vm, struct vm_snapshots **ss)
{
    char err[256];
    int r = vm_snapshot_open(vm, &(struct vm_snapshot_config){0}, ss, err, sizeof(err));
    if (r)
        fprintf(stderr, "vm_snapshot_open: %s\n", err);
    return r;
}

/* One batch of the fixture: 512 quadword writes (one page), then hlt; rip
 * moved past the nop after it, which wakes the vCPU for the next batch. */
static void batch(struct vm *vm)
{
    struct vm_event ev;
    CU_ASSERT_EQUAL_FATAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(vm_reg_set(&vm->cpus[0], VM_REG_RIP, vt_reg(vm, VM_REG_RIP) + 1), 0);
    CU_ASSERT_EQUAL(vm_regcache_flush(&vm->cpus[0].rc), 0);
}

/* What KVM says the machine is, read around kvmstub's own caches. */
struct view {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_debugregs dregs;
    struct kvm_vcpu_events events;
    uint8_t xsave[16384];
    uint64_t kgs;
    uint32_t ram;
};

static void look(struct vm *vm, struct view *v)
{
    struct vm_cpu *cpu = &vm->cpus[0];
    CU_ASSERT_EQUAL(vm_regcache_flush(&cpu->rc), 0);
    memset(v, 0, sizeof(*v));
    int fd = cpu->fd;
    CU_ASSERT_EQUAL(ioctl(fd, KVM_GET_REGS, &v->regs), 0);
    CU_ASSERT_EQUAL(ioctl(fd, KVM_GET_SREGS, &v->sregs), 0);
    CU_ASSERT_EQUAL(ioctl(fd, KVM_GET_DEBUGREGS, &v->dregs), 0);
    CU_ASSERT_EQUAL(ioctl(fd, KVM_GET_VCPU_EVENTS, &v->events), 0);
    int xs = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    CU_ASSERT_FATAL(xs <= (int)sizeof(v->xsave));
    CU_ASSERT_EQUAL(ioctl(fd, xs > 4096 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, v->xsave), 0);
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e[1];
    } m = {.h.nmsrs = 1, .e[0].index = 0xc0000102};
    CU_ASSERT_EQUAL(ioctl(fd, KVM_GET_MSRS, &m), 1);
    v->kgs = m.e[0].data;
    v->ram = vm_checksum_crc32c(0, vm->mem.host, vm->mem.size);
}

static void same_view(const struct view *a, const struct view *b)
{
    CU_ASSERT_EQUAL(memcmp(&a->regs, &b->regs, sizeof(a->regs)), 0);
    CU_ASSERT_EQUAL(memcmp(&a->sregs, &b->sregs, sizeof(a->sregs)), 0);
    CU_ASSERT_EQUAL(memcmp(&a->dregs, &b->dregs, sizeof(a->dregs)), 0);
    CU_ASSERT_EQUAL(memcmp(&a->events, &b->events, sizeof(a->events)), 0);
    CU_ASSERT_EQUAL(memcmp(a->xsave, b->xsave, sizeof(a->xsave)), 0);
    CU_ASSERT_EQUAL(a->kgs, b->kgs);
    CU_ASSERT_EQUAL(a->ram, b->ram);
    if (memcmp(a->xsave, b->xsave, sizeof(a->xsave)))
        for (unsigned i = 0; i < sizeof(a->xsave); i++)
            if (a->xsave[i] != b->xsave[i]) {
                fprintf(stderr, "\n    xsave byte %u: %02x != %02x\n", i, a->xsave[i], b->xsave[i]);
                break;
            }
}

/* Changes a debugger or the guest could make to every part of the state. */
static void disturb(struct vm *vm)
{
    struct vm_cpu *cpu = &vm->cpus[0];
    batch(vm);
    batch(vm);
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_R15, 0x1515151515151515ull), 0);
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_K_GS_BASE, 0xffff800012340000ull), 0);
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_FS_BASE, 0x7000), 0);
    uint8_t x[16];
    memset(x, 0xa5, sizeof(x));
    CU_ASSERT_EQUAL(vm_reg_write(cpu, VM_REG_XMM0 + 3, x, sizeof(x)), 0);
    CU_ASSERT_EQUAL(vm_regcache_flush(&cpu->rc), 0);
    struct kvm_debugregs dr;
    CU_ASSERT_EQUAL(ioctl(cpu->fd, KVM_GET_DEBUGREGS, &dr), 0);
    dr.db[1] = 0xdeadbeef;
    CU_ASSERT_EQUAL(ioctl(cpu->fd, KVM_SET_DEBUGREGS, &dr), 0);
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, 0x30000, "gdb wrote this", 14), 0);
}

static int count_bits(const uint64_t *b, size_t words)
{
    int n = 0;
    for (size_t i = 0; i < words; i++)
        n += __builtin_popcountll(b[i]);
    return n;
}

/* The pages set, for a failure message. */
static void show(const char *what, const uint64_t *b, size_t words)
{
    fprintf(stderr, "\n    %s:", what);
    for (uint64_t p = 0; p < words * 64; p++)
        if (b[p / 64] >> (p % 64) & 1)
            fprintf(stderr, " %#llx", (unsigned long long)p);
    fprintf(stderr, "\n");
}

static bool bit(const uint64_t *b, uint64_t page)
{
    return b[page / 64] >> (page % 64) & 1;
}

/* The collected set holds every page in want and nothing else but pages the
 * guest's CPU reads: its code and its page tables. KVM may report those
 * without a store: AMD's nested paging walks guest page tables as writes,
 * and a re-made slot can log the code page; their content is unchanged,
 * so snapshots share them. Clears b. */
static void expect_pages(struct vm *vm, uint64_t *b, const uint64_t *want, int nwant)
{
    size_t words = vm_mem_bitmap_words(&vm->mem);
    uint64_t tables = vm_boot_area(vm) / PAGE;
    bool ok = true;
    for (int i = 0; i < nwant; i++)
        ok &= bit(b, want[i]);
    for (uint64_t p = 0; p < words * 64; p++) {
        bool wanted = false;
        for (int i = 0; i < nwant; i++)
            wanted |= want[i] == p;
        bool read_by_cpu = p == 0x100 || (p > tables && p <= tables + 6);
        if (bit(b, p) && !wanted && !read_by_cpu)
            ok = false;
    }
    if (!ok)
        show("dirty pages", b, words);
    CU_ASSERT(ok);
    memset(b, 0, words * 8);
}

static void test_dirty_log_sees_guest_and_stub_writes(void)
{
    struct vm *vm = guest(16u << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_mem *m = &vm->mem;
    size_t words = vm_mem_bitmap_words(m);
    uint64_t *b = calloc(words, 8);
    CU_ASSERT_EQUAL_FATAL(vm_mem_track_dirty(m, true), 0);
    /* The first collect reports what the loader wrote before tracking. */
    CU_ASSERT_EQUAL(vm_mem_dirty_collect(m, b), 0);
    CU_ASSERT(bit(b, 0x100)); /* the fixture's code */
    /* Not all of RAM: what the host backed (whole huge pages with THP). */
    CU_ASSERT(count_bits(b, words) < (int)(m->size / PAGE / 2));
    /* The first batch also sets accessed bits in the page tables. */
    batch(vm); /* page 0x400 */
    CU_ASSERT_EQUAL(vm_mem_dirty_collect(m, b), 0);
    CU_ASSERT(bit(b, 0x400));
    memset(b, 0, words * 8);

    batch(vm); /* page 0x401 */
    CU_ASSERT_EQUAL(vm_mem_write(m, 0x800010, "x", 1), 0);
    vm_mem_mark_dirty(m, 0x900ffe, 4); /* straddles 0x900 and 0x901 */
    *(uint8_t *)vm_mem_ptr(m, 0xa00000, 1) = 1; /* not reported: no mark */
    CU_ASSERT_EQUAL(vm_mem_dirty_collect(m, b), 0);
    expect_pages(vm, b, (const uint64_t[]){0x401, 0x800, 0x900, 0x901}, 4);
    CU_ASSERT_EQUAL(vm_mem_dirty_collect(m, b), 0);
    CU_ASSERT_EQUAL(count_bits(b, words), 0); /* collecting cleared it */

    /* A write logged in a slot that trap tiling then removes is kept. */
    batch(vm); /* page 0x402 */
    CU_ASSERT_EQUAL(vm_mem_set_trap(m, 0x403000, VM_TRAP_WRITE), 0);
    CU_ASSERT_EQUAL(vm_mem_dirty_collect(m, b), 0);
    /* 0x403: trapped pages always count */
    expect_pages(vm, b, (const uint64_t[]){0x402, 0x403}, 2);
    /* Guest writes to a trapped page go through the MMIO exit; counted,
     * also once the trap is gone. */
    batch(vm); /* page 0x403, every store an MMIO exit */
    uint64_t got;
    CU_ASSERT_EQUAL(vm_mem_read(m, 0x403000, &got, 8), 0);
    CU_ASSERT_NOT_EQUAL(got, 0);
    CU_ASSERT_EQUAL(vm_mem_set_trap(m, 0x403000, VM_TRAP_NONE), 0);
    CU_ASSERT_EQUAL(vm_mem_dirty_collect(m, b), 0);
    expect_pages(vm, b, (const uint64_t[]){0x403}, 1);
    batch(vm); /* page 0x404 through the re-merged slot */
    CU_ASSERT_EQUAL(vm_mem_dirty_collect(m, b), 0);
    expect_pages(vm, b, (const uint64_t[]){0x404}, 1);

    /* Without tracking, every page counts. */
    CU_ASSERT_EQUAL(vm_mem_track_dirty(m, false), 0);
    CU_ASSERT_EQUAL(vm_mem_dirty_collect(m, b), 1);
    CU_ASSERT_EQUAL(count_bits(b, words), (int)(m->size / PAGE));
    free(b);
    vm_destroy(vm);
}

static void test_load_restores_registers_and_ram(void)
{
    struct vm *vm = guest(64u << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    batch(vm);
    struct vm_snapshots *ss;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(open_snapshots(vm, &ss), 0);
    CU_ASSERT(vm_snapshot_incremental(ss));
    struct vm_snapshot *s;
    struct vm_pagestore_cost c;
    static const uint8_t uart[] = "queued input";
    struct vm_snapshot_blob blob = {.name = "uart", .data = (uint8_t *)uart, .len = sizeof(uart)};
    CU_ASSERT_EQUAL_FATAL(vm_snapshot_save(ss, &blob, 1, &s, &c, err, sizeof(err)), 0);
    CU_ASSERT(c.copied > 0 && c.copied < 40); /* what the loader and the guest wrote */
    struct view saved, later, now;
    look(vm, &saved);

    /* Forward: two batches, state after them, then disturb everything. */
    batch(vm);
    batch(vm);
    look(vm, &later);
    disturb(vm);
    look(vm, &now);
    CU_ASSERT_NOT_EQUAL(now.ram, saved.ram);
    CU_ASSERT_NOT_EQUAL(now.regs.rip + now.regs.r15, saved.regs.rip + saved.regs.r15);

    int lr = vm_snapshot_load(ss, s, &c, err, sizeof(err));
    if (lr)
        fprintf(stderr, "\n    load: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(lr, 0);
    look(vm, &now);
    same_view(&now, &saved);
    /* 4 batches = 4 pages, and the page gdb wrote; KVM may add the code
     * and page-table pages (see expect_pages). */
    CU_ASSERT(c.copied >= 5 && c.copied <= 5 + 4);
    CU_ASSERT_EQUAL(memcmp(vm_snapshot_blob(s, "uart")->data, uart, sizeof(uart)), 0);

    /* Running again from the snapshot repeats the first run exactly. */
    batch(vm);
    batch(vm);
    look(vm, &now);
    same_view(&now, &later);

    /* Saving right after a load with nothing changed costs nothing. */
    CU_ASSERT_EQUAL_FATAL(vm_snapshot_load(ss, s, &c, err, sizeof(err)), 0);
    struct vm_snapshot *again;
    CU_ASSERT_EQUAL_FATAL(vm_snapshot_save(ss, NULL, 0, &again, &c, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.copied, 0);
    vm_snapshot_free(again);
    vm_snapshot_free(s);
    vm_snapshot_close(ss);
    vm_destroy(vm);
}

static int uart_state(struct vm *vm, uint8_t **buf, size_t *len)
{
    for (size_t i = 0; i < vm->bus.nstates; i++)
        if (strcmp(vm->bus.states[i].name, "uart") == 0)
            return vm->bus.states[i].save(vm->bus.states[i].dev, buf, len);
    return -ENOENT;
}

/* What the vm layer holds beside KVM travels in the snapshot itself: the
 * halted flag, the UART with its queued input; a planted breakpoint is not
 * in the saved RAM, and is still planted (over the loaded byte) after. */
static void test_soft_state_and_breakpoints(void)
{
    struct vm *vm = guest(16u << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_event ev;
    CU_ASSERT_EQUAL_FATAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_FATAL(vm_cpu_halted(&vm->cpus[0]));
    uint64_t hlt = vt_reg(vm, VM_REG_RIP) - 1;
    uint8_t guest_byte;
    CU_ASSERT_EQUAL_FATAL(vm_read_linear(&vm->cpus[0], hlt, &guest_byte, 1, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(vm_bp_insert(&vm->cpus[0], hlt, false), 0);
    CU_ASSERT_EQUAL(vm_console_input(vm, "abc", 3), 3u);
    uint8_t *u0, *u1;
    size_t n0, n1;
    CU_ASSERT_EQUAL_FATAL(uart_state(vm, &u0, &n0), 0);

    struct vm_snapshots *ss;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(open_snapshots(vm, &ss), 0);
    struct vm_snapshot *s;
    CU_ASSERT_EQUAL_FATAL(vm_snapshot_save(ss, NULL, 0, &s, NULL, err, sizeof(err)), 0);
    const uint8_t *page = vm_pagestore_page(s->ram, hlt / PAGE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(page);
    CU_ASSERT_EQUAL(page[hlt % PAGE], guest_byte); /* the guest's byte, not the trap */

    /* Change all three, and the code page under the breakpoint. */
    CU_ASSERT_EQUAL(vm_reg_set(&vm->cpus[0], VM_REG_RIP, hlt + 2), 0);
    CU_ASSERT(!vm_cpu_halted(&vm->cpus[0]));
    CU_ASSERT_EQUAL(vm_console_input(vm, "xyz", 3), 3u);
    uint8_t other = (uint8_t)(guest_byte ^ 0x5a);
    CU_ASSERT_EQUAL(vm_write_linear(&vm->cpus[0], hlt, &other, 1, NULL), 0);

    int lr = vm_snapshot_load(ss, s, NULL, err, sizeof(err));
    if (lr)
        fprintf(stderr, "\n    load: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(lr, 0);
    CU_ASSERT(vm_cpu_halted(&vm->cpus[0]));
    CU_ASSERT_EQUAL_FATAL(uart_state(vm, &u1, &n1), 0);
    CU_ASSERT_EQUAL(n0, n1);
    CU_ASSERT(n0 == n1 && memcmp(u0, u1, n0) == 0);
    uint8_t seen;
    CU_ASSERT_EQUAL(vm_read_linear(&vm->cpus[0], hlt, &seen, 1, NULL), 0);
    CU_ASSERT_EQUAL(seen, guest_byte);
    uint64_t gpa;
    CU_ASSERT_EQUAL(vm_translate(&vm->cpus[0], hlt, &gpa), 0);
    CU_ASSERT_EQUAL(vm->mem.host[gpa], vm_planted_trap_byte(vm)); /* still planted */
    /* Removing it gives the loaded byte back, not the one written after. */
    CU_ASSERT_EQUAL(vm_bp_remove(&vm->cpus[0], hlt, false), 0);
    CU_ASSERT_EQUAL(vm->mem.host[gpa], guest_byte);

    /* The vm layer's blob names are its own. */
    struct vm_snapshot *t;
    struct vm_snapshot_blob bad = {.name = "dev.uart", .data = (uint8_t *)"x", .len = 1};
    CU_ASSERT_EQUAL(vm_snapshot_save(ss, &bad, 1, &t, NULL, err, sizeof(err)), -EINVAL);
    free(u0);
    free(u1);
    vm_snapshot_free(s);
    vm_snapshot_close(ss);
    vm_destroy(vm);
}

/* Reverse execution's pattern: a checkpoint after every batch, loaded in
 * any order, the oldest deleted first. */
static void test_many_checkpoints(void)
{
    enum { N = 24 };
    struct vm *vm = guest(64u << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_snapshots *ss;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(open_snapshots(vm, &ss), 0);
    struct vm_snapshot *cp[N];
    static struct view v[N];
    for (int i = 0; i < N; i++) {
        batch(vm);
        CU_ASSERT_EQUAL_FATAL(vm_snapshot_save(ss, NULL, 0, &cp[i], NULL, err, sizeof(err)), 0);
        look(vm, &v[i]);
    }
    static const int order[] = {5, 23, 0, 17, 17, 3, 22, 9, 1, 12};
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        struct vm_pagestore_cost c;
        CU_ASSERT_EQUAL_FATAL(vm_snapshot_load(ss, cp[order[k]], &c, err, sizeof(err)), 0);
        struct view now;
        look(vm, &now);
        same_view(&now, &v[order[k]]);
        batch(vm); /* a little forward work between loads */
    }
    uint64_t held = vm_pagestore_usage(ss->ps)->bytes;
    for (int i = 0; i < N / 2; i++)
        vm_snapshot_free(cp[i]);
    CU_ASSERT(vm_pagestore_usage(ss->ps)->bytes < held);
    CU_ASSERT_EQUAL_FATAL(vm_snapshot_load(ss, cp[N - 1], NULL, err, sizeof(err)), 0);
    struct view now;
    look(vm, &now);
    same_view(&now, &v[N - 1]);
    for (int i = N / 2; i < N; i++)
        vm_snapshot_free(cp[i]);
    vm_snapshot_close(ss);
    vm_destroy(vm);
}

/* A host whose KVM cannot log dirty pages: slower, still exact. */
static void test_untracked_still_exact(void)
{
    struct vm *vm = guest(16u << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_snapshots *ss;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(open_snapshots(vm, &ss), 0);
    CU_ASSERT_EQUAL(vm_mem_track_dirty(&vm->mem, false), 0);
    batch(vm);
    struct vm_snapshot *s;
    struct vm_pagestore_cost c;
    CU_ASSERT_EQUAL_FATAL(vm_snapshot_save(ss, NULL, 0, &s, &c, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.visited, vm->mem.size / PAGE);
    struct view saved, now;
    look(vm, &saved);
    disturb(vm);
    CU_ASSERT_EQUAL_FATAL(vm_snapshot_load(ss, s, &c, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.changed, vm->mem.size / PAGE);
    look(vm, &now);
    same_view(&now, &saved);
    vm_snapshot_free(s);
    vm_snapshot_close(ss);
    vm_destroy(vm);
}

static uint8_t *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*n);
    if (fread(b, 1, *n, f) != *n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static void spill(const char *p, const uint8_t *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_file_restores_or_refuses_untouched(void)
{
    struct vm *vm = guest(32u << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    batch(vm);
    struct vm_snapshots *ss;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(open_snapshots(vm, &ss), 0);
    struct vm_snapshot *s;
    struct vm_snapshot_blob blob = {.name = "kvmstub", .data = (uint8_t *)"halted=0", .len = 8};
    CU_ASSERT_EQUAL_FATAL(vm_snapshot_save(ss, &blob, 1, &s, NULL, err, sizeof(err)), 0);
    struct view saved;
    look(vm, &saved);
    struct vm_snapfile_host host, foreign;
    CU_ASSERT_EQUAL_FATAL(vm_snapfile_host(vm->kvm_fd, &host), 0);
    foreign = host;
    foreign.stepping ^= 1;
    char good[128], bad[128];
    snprintf(good, sizeof(good), "%s/good", dir);
    snprintf(bad, sizeof(bad), "%s/bad", dir);
    static const uint8_t hash[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    int r = vm_snapfile_write(good, s, &host, FIXTURE_SNAPWRITE, hash, 8, err, sizeof(err));
    if (r)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    disturb(vm);
    struct view moved, now;
    look(vm, &moved);
    struct vm_pagestore_usage use = *vm_pagestore_usage(ss->ps);

    /* Every refused file leaves the VM and the store as they were. */
    size_t n;
    uint8_t *file = slurp(good, &n), *copy = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    size_t offs[64], k = 0;
    uint32_t hlen = le32(file + 12);
    offs[k++] = 5;
    offs[k++] = 50;
    for (size_t at = hlen; at + 24 <= n && k < 60;) {
        uint64_t len = le32(file + at + 8) | (uint64_t)le32(file + at + 12) << 32;
        offs[k++] = at + 2;
        if (len)
            offs[k++] = at + 24 + len - 1;
        at += 24 + len;
    }
    struct {
        const char *what;
        size_t cut;
        size_t flip; /* a byte to flip; VERSION: claim another kvmstub version */
        const struct vm_snapfile_host *host;
    } cases[80];
    const size_t VERSION = SIZE_MAX - 1;
    size_t nc = 0;
    cases[nc++] = (typeof(cases[0])){"truncated", n / 2, SIZE_MAX, &host};
    cases[nc++] = (typeof(cases[0])){"truncated", n - 1, SIZE_MAX, &host};
    cases[nc++] = (typeof(cases[0])){"foreign CPU", n, SIZE_MAX, &foreign};
    cases[nc++] = (typeof(cases[0])){"foreign version", n, VERSION, &host};
    for (size_t i = 0; i < k; i++)
        cases[nc++] = (typeof(cases[0])){"corrupt", n, offs[i], &host};
    for (size_t i = 0; i < nc; i++) {
        memcpy(copy, file, n);
        if (cases[i].flip == VERSION) {
            /* what another writer would put there, checksum and all */
            memcpy(copy + 16, "0.0.1\0", 6);
            uint32_t crc = vm_checksum_crc32c(0, copy, hlen - 4);
            for (int b = 0; b < 4; b++)
                copy[hlen - 4 + b] = (uint8_t)(crc >> (8 * b));
        } else if (cases[i].flip != SIZE_MAX) {
            copy[cases[i].flip] ^= 1;
        }
        spill(bad, copy, cases[i].cut);
        struct vm_snapshot *t = NULL;
        r = vm_snapfile_read(bad, cases[i].host, ss->ps, NULL, &t, err, sizeof(err));
        CU_ASSERT_EQUAL(r, -EINVAL);
        if (cases[i].flip == VERSION)
            CU_ASSERT_PTR_NOT_NULL(strstr(err, "written by kvmstub 0.0.1"));
        if (!r) {
            fprintf(stderr, "\n    %s case %zu accepted\n", cases[i].what, i);
            vm_snapshot_free(t);
        }
        CU_ASSERT_EQUAL(vm_pagestore_usage(ss->ps)->bytes, use.bytes);
    }
    fprintf(stderr, "\n    e.g. %s\n", err);
    look(vm, &now);
    same_view(&now, &moved);

    /* The good file restores the saved machine. */
    struct vm_snapshot *t = NULL;
    struct vm_snapfile_info info;
    CU_ASSERT_EQUAL_FATAL(vm_snapfile_read(good, &host, ss->ps, &info, &t, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(info.image_path, FIXTURE_SNAPWRITE);
    CU_ASSERT_EQUAL(memcmp(info.image_hash, hash, 8), 0);
    CU_ASSERT_EQUAL_FATAL(vm_snapshot_load(ss, t, NULL, err, sizeof(err)), 0);
    look(vm, &now);
    same_view(&now, &saved);
    CU_ASSERT_EQUAL(memcmp(vm_snapshot_blob(t, "kvmstub")->data, "halted=0", 8), 0);

    /* And a fresh VM of the same size, as --restore would make. */
    struct vm *fresh = vt_create(32u << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fresh);
    struct vm_snapshots *fs;
    CU_ASSERT_EQUAL_FATAL(open_snapshots(fresh, &fs), 0);
    struct vm_snapshot *u = NULL;
    CU_ASSERT_EQUAL_FATAL(vm_snapfile_read(good, &host, fs->ps, NULL, &u, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(vm_snapshot_load(fs, u, NULL, err, sizeof(err)), 0);
    look(fresh, &now);
    same_view(&now, &saved);
    struct view later, there;
    batch(vm);
    look(vm, &later);
    batch(fresh);
    look(fresh, &there);
    same_view(&there, &later);
    vm_snapshot_free(u);
    vm_snapshot_close(fs);
    vm_destroy(fresh);

    unlink(good);
    unlink(bad);
    free(file);
    free(copy);
    vm_snapshot_free(t);
    vm_snapshot_free(s);
    vm_snapshot_close(ss);
    vm_destroy(vm);
}

/* A PC-style VM: in-kernel PIC/IOAPIC, PIT, kvm-clock, a LAPIC per vCPU. */
static void test_irqchip_pit_clock_lapic(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    CU_ASSERT_FATAL(kvm >= 0);
    int vmfd = ioctl(kvm, KVM_CREATE_VM, 0);
    CU_ASSERT_FATAL(vmfd >= 0);
    CU_ASSERT_EQUAL(ioctl(vmfd, KVM_SET_TSS_ADDR, 0xfffbd000ul), 0);
    CU_ASSERT_EQUAL_FATAL(ioctl(vmfd, KVM_CREATE_IRQCHIP, 0), 0);
    struct kvm_pit_config pc = {.flags = KVM_PIT_SPEAKER_DUMMY};
    CU_ASSERT_EQUAL_FATAL(ioctl(vmfd, KVM_CREATE_PIT2, &pc), 0);
    int cpu = ioctl(vmfd, KVM_CREATE_VCPU, 0);
    CU_ASSERT_FATAL(cpu >= 0);
    struct kvm_cpuid2 *cp = calloc(1, sizeof(*cp) + 256 * sizeof(cp->entries[0]));
    cp->nent = 256;
    CU_ASSERT_EQUAL(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cp), 0);
    CU_ASSERT_EQUAL(ioctl(cpu, KVM_SET_CPUID2, cp), 0);
    free(cp);

    unsigned parts = VM_SNAP_VM_IRQCHIP | VM_SNAP_VM_PIT | VM_SNAP_VM_CLOCK;
    struct vm_snap_cpu_ctx ctx;
    CU_ASSERT_EQUAL_FATAL(vm_snap_cpu_ctx_init(&ctx, kvm, vmfd, cpu, true), 0);
    CU_ASSERT(ctx.parts & VM_SNAP_CPU_LAPIC);
    CU_ASSERT(ctx.nmsrs > 10);
    struct vm_snap_vm vs;
    struct vm_snap_cpu cs;
    CU_ASSERT_EQUAL_FATAL(vm_snap_vm_save(vmfd, parts, &vs), 0);
    CU_ASSERT_EQUAL_FATAL(vm_snap_cpu_save(&ctx, cpu, &cs), 0);

    /* Change an IOAPIC route, the PIT's reload value, the clock, the TPR. */
    struct kvm_irqchip io = {.chip_id = KVM_IRQCHIP_IOAPIC};
    CU_ASSERT_EQUAL(ioctl(vmfd, KVM_GET_IRQCHIP, &io), 0);
    io.chip.ioapic.redirtbl[3].bits = 0x1234;
    CU_ASSERT_EQUAL(ioctl(vmfd, KVM_SET_IRQCHIP, &io), 0);
    struct kvm_pit_state2 pit;
    CU_ASSERT_EQUAL(ioctl(vmfd, KVM_GET_PIT2, &pit), 0);
    pit.channels[0].count = 0x55;
    CU_ASSERT_EQUAL(ioctl(vmfd, KVM_SET_PIT2, &pit), 0);
    struct kvm_clock_data clk = {.clock = vs.clock.clock + 100000000000ull};
    CU_ASSERT_EQUAL(ioctl(vmfd, KVM_SET_CLOCK, &clk), 0);
    struct kvm_lapic_state la;
    CU_ASSERT_EQUAL(ioctl(cpu, KVM_GET_LAPIC, &la), 0);
    la.regs[0x80] = 0x70;
    CU_ASSERT_EQUAL(ioctl(cpu, KVM_SET_LAPIC, &la), 0);

    char err[256];
    CU_ASSERT_EQUAL(vm_snap_vm_restore(vmfd, &vs, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(vm_snap_cpu_restore(&ctx, cpu, &cs, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(ioctl(vmfd, KVM_GET_IRQCHIP, &io), 0);
    CU_ASSERT_EQUAL(memcmp(&io, &vs.chips[2], sizeof(io)), 0);
    CU_ASSERT_EQUAL(ioctl(vmfd, KVM_GET_PIT2, &pit), 0);
    CU_ASSERT_EQUAL(pit.channels[0].count, vs.pit.channels[0].count);
    CU_ASSERT_EQUAL(ioctl(vmfd, KVM_GET_CLOCK, &clk), 0);
    CU_ASSERT(clk.clock >= vs.clock.clock && clk.clock < vs.clock.clock + 10000000000ull);
    CU_ASSERT_EQUAL(ioctl(cpu, KVM_GET_LAPIC, &la), 0);
    CU_ASSERT_EQUAL(la.regs[0x80], cs.lapic.regs[0x80]);

    /* A bare-board vCPU state does not go into this VM, and vice versa. */
    struct vm_snap_cpu bare;
    CU_ASSERT_EQUAL(vm_snap_cpu_copy(&cs, &bare), 0);
    bare.parts &= ~(unsigned)VM_SNAP_CPU_LAPIC;
    CU_ASSERT_EQUAL(vm_snap_cpu_check(&ctx, &bare, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "another host or board"));
    CU_ASSERT_EQUAL(vm_snap_vm_check(0, &vs, err, sizeof(err)), -EINVAL);
    vm_snap_cpu_free(&bare);
    vm_snap_cpu_free(&cs);
    vm_snap_cpu_ctx_free(&ctx);
    close(cpu);
    close(vmfd);
    close(kvm);
}

static int setup_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kvmstub-snapshot-XXXXXX");
    return mkdtemp(dir) ? 0 : 1;
}

static int cleanup_dir(void)
{
    return rmdir(dir);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_snapshot", setup_dir, cleanup_dir);
    CU_add_test(s, "dirty log: guest and kvmstub writes, nothing else",
                test_dirty_log_sees_guest_and_stub_writes);
    CU_add_test(s, "load restores registers and RAM; the run repeats",
                test_load_restores_registers_and_ram);
    CU_add_test(s, "24 checkpoints load in any order", test_many_checkpoints);
    CU_add_test(s, "halted flag, UART input and breakpoints survive a load",
                test_soft_state_and_breakpoints);
    CU_add_test(s, "without dirty logging: every page, still exact", test_untracked_still_exact);
    CU_add_test(s, "files restore, or are refused leaving the VM untouched",
                test_file_restores_or_refuses_untouched);
    CU_add_test(s, "irqchip, PIT, clock and LAPIC come back", test_irqchip_pit_clock_lapic);
}

int main(void)
{
    return test_main("test_vm_snapshot", register_suites, true);
}
