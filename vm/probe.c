#include "probe.h"

#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Layout of the probe guest (flat segments at 0). In real mode every IVT
 * entry points at a hlt, so an exception the host fails to intercept ends
 * there; in protected and long mode the IDT is empty, so one ends in a
 * triple fault (KVM_EXIT_SHUTDOWN). Either is "not delivered". */
#define P_RAM 0x10000u
#define P_CODE 0x1000u
#define P_HANDLER 0x2000u
#define P_DATA 0x3000u
#define P_PML4 0x4000u /* long mode: 0x4000 -> 0x5000 -> 0x6000, one 2 MiB page */
#define P_RO 0x8000u   /* a read-only slot of one page, when supported */

/* One VM serves every probe, each on a fresh vCPU of its own, so no probe
 * sees state another left behind (an int3 that ended in an internal error
 * leaves its vCPU unusable). Creating and tearing down a VM costs far more
 * than a vCPU, and start-up latency is something users notice. */
struct probe {
    int kvm_fd, vm_fd;
    size_t run_size;
    uint8_t *mem;
    unsigned next_id;
};

struct probe_cpu {
    int fd;
    struct kvm_run *run;
    size_t run_size;
};

static int probe_slot(struct probe *p, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size)
{
    struct kvm_userspace_memory_region r = {.slot = slot, .flags = flags, .guest_phys_addr = gpa,
                                            .memory_size = size,
                                            .userspace_addr = (uintptr_t)(p->mem + gpa)};
    return ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

static int probe_open(struct probe *p, int kvm_fd, bool ro_page)
{
    memset(p, 0, sizeof(*p));
    p->kvm_fd = kvm_fd;
    p->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (p->vm_fd < 0)
        return -errno;
    ioctl(p->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul);
    int size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0)
        return -EIO;
    p->run_size = (size_t)size;
    p->mem = mmap(NULL, P_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p->mem == MAP_FAILED) {
        p->mem = NULL;
        return -errno;
    }
    int r;
    if (!ro_page)
        return probe_slot(p, 0, 0, 0, P_RAM);
    if ((r = probe_slot(p, 0, 0, 0, P_RO)) ||
        (r = probe_slot(p, 1, KVM_MEM_READONLY, P_RO, VM_PAGE_SIZE)))
        return r;
    return probe_slot(p, 2, 0, P_RO + VM_PAGE_SIZE, P_RAM - P_RO - VM_PAGE_SIZE);
}

static void probe_close(struct probe *p)
{
    if (p->mem)
        munmap(p->mem, P_RAM);
    if (p->vm_fd >= 0)
        close(p->vm_fd);
}

static void probe_cpu_close(struct probe_cpu *c)
{
    if (c->run)
        munmap(c->run, c->run_size);
    if (c->fd >= 0)
        close(c->fd);
}

static void flat(struct kvm_segment *g, uint16_t sel, uint8_t type, bool l)
{
    *g = (struct kvm_segment){.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
                              .present = 1, .s = 1, .db = !l, .l = l, .g = 1};
}

/* A new vCPU in the given mode at P_CODE, with code in place. */
static int probe_cpu_open(struct probe *p, struct probe_cpu *c, enum vm_probe_mode mode,
                          const uint8_t *code, size_t n)
{
    memset(c, 0, sizeof(*c));
    c->fd = ioctl(p->vm_fd, KVM_CREATE_VCPU, p->next_id++);
    if (c->fd < 0)
        return -errno;
    c->run_size = p->run_size;
    void *run = mmap(NULL, c->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (run == MAP_FAILED)
        return -errno;
    c->run = run;
    for (unsigned v = 0; v < 256; v++) {
        uint16_t ivt[2] = {P_HANDLER, 0};
        memcpy(p->mem + v * 4, ivt, sizeof(ivt));
    }
    p->mem[P_HANDLER] = 0xf4; /* hlt */
    uint64_t pt[3] = {P_PML4 + 0x1000 + 3, P_PML4 + 0x2000 + 3, 0x83 /* 2 MiB, P RW PS */};
    for (unsigned i = 0; i < 3; i++)
        memcpy(p->mem + P_PML4 + i * 0x1000, &pt[i], sizeof(pt[i]));
    memcpy(p->mem + P_CODE, code, n);
    struct kvm_sregs s;
    if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
        return -errno;
    s.cs.base = 0;
    s.cs.selector = 0;
    if (mode != VM_PROBE_REAL) {
        bool lm = mode == VM_PROBE_LONG;
        flat(&s.cs, 0x08, 0xb, lm);
        flat(&s.ds, 0x10, 0x3, false);
        s.es = s.fs = s.gs = s.ss = s.ds;
        s.idt.base = 0;
        s.idt.limit = 0;
        s.cr0 = 0x11 | (lm ? 0x80000000u : 0); /* PE ET, PG */
        if (lm) {
            s.cr3 = P_PML4;
            s.cr4 = 0x20;      /* PAE */
            s.efer = 0x500;    /* LME LMA */
        }
    }
    if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
        return -errno;
    struct kvm_regs regs = {.rip = P_CODE, .rflags = 2, .rsp = 0xf000, .rdi = P_DATA};
    if (ioctl(c->fd, KVM_SET_REGS, &regs) < 0)
        return -errno;
    return 0;
}

/* Runs code on a fresh vCPU until its first exit; the exit stays in
 * c->run and the final rip in *rip. */
static int probe_run(struct probe *p, struct probe_cpu *c, enum vm_probe_mode mode,
                     const uint8_t *code, size_t n, uint64_t control, const uint64_t dr[8],
                     uint64_t *rip)
{
    int r = probe_cpu_open(p, c, mode, code, n);
    if (r)
        return r;
    struct kvm_guest_debug dbg = {.control = control};
    if (dr)
        memcpy(dbg.arch.debugreg, dr, sizeof(dbg.arch.debugreg));
    if (ioctl(c->fd, KVM_SET_GUEST_DEBUG, &dbg) < 0)
        return -errno;
    do
        r = ioctl(c->fd, KVM_RUN, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    struct kvm_regs regs;
    if (ioctl(c->fd, KVM_GET_REGS, &regs) < 0)
        return -errno;
    *rip = regs.rip;
    return 0;
}

/* int3, a DR0 execution breakpoint and a DR0 write watchpoint, in one
 * mode. */
static void probe_mode(struct probe *p, enum vm_probe_mode mode, struct vm_probe_result *out)
{
    struct probe_cpu c;
    uint64_t rip;
    bool real = mode == VM_PROBE_REAL;

    static const uint8_t int3[] = {0xcc, 0xf4};
    out->sw_bp = VM_BP_HLT;
    if (probe_run(p, &c, mode, int3, sizeof(int3), KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP,
                  NULL, &rip) == 0) {
        if (c.run->exit_reason == KVM_EXIT_DEBUG && c.run->debug.arch.exception == 3 &&
            c.run->debug.arch.pc == P_CODE)
            out->sw_bp = VM_BP_INT3;
        else if (c.run->exit_reason == KVM_EXIT_INTERNAL_ERROR && rip == P_CODE)
            out->sw_bp = VM_BP_INT3_INTERNAL_ERROR;
    }
    probe_cpu_close(&c);

    /* DR0 as an execution breakpoint on the second nop. */
    static const uint8_t nops[] = {0x90, 0x90, 0x90, 0xf4};
    uint64_t dr[8] = {[0] = P_CODE + 1, [7] = 0x1 | 0x400};
    out->hw_exec_bp = probe_run(p, &c, mode, nops, sizeof(nops),
                                KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP, dr, &rip) == 0 &&
                      c.run->exit_reason == KVM_EXIT_DEBUG && rip == P_CODE + 1 &&
                      (c.run->debug.arch.dr6 & 1);
    probe_cpu_close(&c);

    /* DR0 as a one-byte write watchpoint: mov %al,(%di) or (%edi)/(%rdi),
     * with rdi at P_DATA; nop; hlt. The trap comes after the store. */
    const uint8_t store[] = {0x88, real ? 0x05 : 0x07, 0x90, 0xf4};
    uint64_t wdr[8] = {[0] = P_DATA, [7] = 0x1 | 0x400 | (1u << 16)};
    out->hw_data_bp = probe_run(p, &c, mode, store, sizeof(store),
                                KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP, wdr, &rip) == 0 &&
                      c.run->exit_reason == KVM_EXIT_DEBUG && rip == P_CODE + 2 &&
                      (c.run->debug.arch.dr6 & 1);
    probe_cpu_close(&c);
}

int vm_probe(int kvm_fd, struct vm_caps *caps)
{
    struct probe p;
    struct probe_cpu c;
    uint64_t rip;
    int err = probe_open(&p, kvm_fd, caps->readonly_mem);
    if (err) {
        probe_close(&p);
        return err;
    }

    /* hlt must exit to userspace, or nothing else here can work. */
    static const uint8_t hlt[] = {0xf4};
    err = probe_run(&p, &c, VM_PROBE_REAL, hlt, sizeof(hlt), 0, NULL, &rip);
    bool hlt_ok = !err && c.run->exit_reason == KVM_EXIT_HLT && rip == P_CODE + 1;
    probe_cpu_close(&c);
    if (err || !hlt_ok) {
        probe_close(&p);
        return err ? err : -ENOTSUP;
    }

    /* The debug mechanisms in each mode: a host may deliver them in one
     * and not in another (kvm-pvm's int3 beyond real mode). */
    for (int mode = VM_PROBE_REAL; mode <= VM_PROBE_LONG; mode++)
        probe_mode(&p, (enum vm_probe_mode)mode, &caps->mode[mode]);
    /* What works in every mode is what kvmstub uses: an int3 is treated as
     * a hit both ways it can come back, so one mode reporting it as an
     * internal error makes that the method. */
    caps->sw_bp = VM_BP_INT3;
    caps->hw_exec_bp = caps->hw_data_bp = true;
    for (int mode = VM_PROBE_REAL; mode <= VM_PROBE_LONG; mode++) {
        const struct vm_probe_result *r = &caps->mode[mode];
        if (r->sw_bp == VM_BP_HLT || (r->sw_bp == VM_BP_INT3_INTERNAL_ERROR &&
                                      caps->sw_bp == VM_BP_INT3))
            caps->sw_bp = caps->sw_bp == VM_BP_HLT ? VM_BP_HLT : r->sw_bp;
        caps->hw_exec_bp &= r->hw_exec_bp;
        caps->hw_data_bp &= r->hw_data_bp;
    }

    /* A write to a read-only slot must exit as MMIO with its data. */
    static const uint8_t ro_store[] = {0xb0, 0x5a, 0xa2, P_RO & 0xff, P_RO >> 8, 0xf4};
    caps->ro_slot_traps_writes = false;
    if (caps->readonly_mem) {
        caps->ro_slot_traps_writes =
            probe_run(&p, &c, VM_PROBE_REAL, ro_store, sizeof(ro_store), 0, NULL, &rip) == 0 &&
            c.run->exit_reason == KVM_EXIT_MMIO && c.run->mmio.is_write &&
            c.run->mmio.phys_addr == P_RO && c.run->mmio.data[0] == 0x5a;
        probe_cpu_close(&c);
    }
    probe_close(&p);
    caps->probed = true;
    return 0;
}
