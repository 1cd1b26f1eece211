#include "probe.h"

#include "vm.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Layout of the probe guest (real mode, CS=DS=0). Every IVT entry points
 * at a hlt, so an exception the host fails to intercept ends there. */
#define P_RAM 0x10000u
#define P_CODE 0x1000u
#define P_HANDLER 0x2000u
#define P_DATA 0x3000u
#define P_RO 0x8000u /* a read-only slot of one page, when supported */

struct probe {
    int vm_fd, fd;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *mem;
};

static int probe_open(struct probe *p, int kvm_fd, bool ro_page)
{
    memset(p, 0, sizeof(*p));
    p->vm_fd = p->fd = -1;
    p->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (p->vm_fd < 0)
        return -errno;
    ioctl(p->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul);
    p->mem = mmap(NULL, P_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p->mem == MAP_FAILED) {
        p->mem = NULL;
        return -errno;
    }
    struct kvm_userspace_memory_region r = {
        .slot = 0, .memory_size = ro_page ? P_RO : P_RAM, .userspace_addr = (uintptr_t)p->mem};
    if (ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return -errno;
    if (ro_page) {
        struct kvm_userspace_memory_region ro = {.slot = 1,
                                                 .flags = KVM_MEM_READONLY,
                                                 .guest_phys_addr = P_RO,
                                                 .memory_size = VM_PAGE_SIZE,
                                                 .userspace_addr = (uintptr_t)(p->mem + P_RO)};
        if (ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &ro) < 0)
            return -errno;
    }
    p->fd = ioctl(p->vm_fd, KVM_CREATE_VCPU, 0);
    if (p->fd < 0)
        return -errno;
    int size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0)
        return -EIO;
    p->run_size = (size_t)size;
    void *run = mmap(NULL, p->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
    if (run == MAP_FAILED)
        return -errno;
    p->run = run;
    for (unsigned v = 0; v < 256; v++) {
        uint16_t ivt[2] = {P_HANDLER, 0};
        memcpy(p->mem + v * 4, ivt, sizeof(ivt));
    }
    p->mem[P_HANDLER] = 0xf4; /* hlt */
    struct kvm_sregs s;
    if (ioctl(p->fd, KVM_GET_SREGS, &s) < 0)
        return -errno;
    s.cs.base = 0;
    s.cs.selector = 0;
    if (ioctl(p->fd, KVM_SET_SREGS, &s) < 0)
        return -errno;
    struct kvm_regs regs = {.rip = P_CODE, .rflags = 2, .rsp = 0xf000};
    if (ioctl(p->fd, KVM_SET_REGS, &regs) < 0)
        return -errno;
    return 0;
}

static void probe_close(struct probe *p)
{
    if (p->run)
        munmap(p->run, p->run_size);
    if (p->fd >= 0)
        close(p->fd);
    if (p->mem)
        munmap(p->mem, P_RAM);
    if (p->vm_fd >= 0)
        close(p->vm_fd);
}

static int probe_run(struct probe *p, const uint8_t *code, size_t n, uint64_t control,
                     const uint64_t dr[8], uint64_t *rip)
{
    memcpy(p->mem + P_CODE, code, n);
    struct kvm_guest_debug dbg = {.control = control};
    if (dr)
        memcpy(dbg.arch.debugreg, dr, sizeof(dbg.arch.debugreg));
    if (ioctl(p->fd, KVM_SET_GUEST_DEBUG, &dbg) < 0)
        return -errno;
    int r;
    do
        r = ioctl(p->fd, KVM_RUN, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    struct kvm_regs regs;
    if (ioctl(p->fd, KVM_GET_REGS, &regs) < 0)
        return -errno;
    *rip = regs.rip;
    return 0;
}

int vm_probe(int kvm_fd, struct vm_caps *caps)
{
    struct probe p;
    uint64_t rip;
    int err;

    /* hlt must exit to userspace, or nothing else here can work. */
    static const uint8_t hlt[] = {0xf4};
    if ((err = probe_open(&p, kvm_fd, false)) == 0)
        err = probe_run(&p, hlt, sizeof(hlt), 0, NULL, &rip);
    bool hlt_ok = !err && p.run->exit_reason == KVM_EXIT_HLT && rip == P_CODE + 1;
    probe_close(&p);
    if (err)
        return err;
    if (!hlt_ok)
        return -ENOTSUP;

    /* int3 with #BP interception. */
    static const uint8_t int3[] = {0xcc, 0xf4};
    caps->sw_bp = VM_BP_HLT;
    if ((err = probe_open(&p, kvm_fd, false)) == 0 &&
        (err = probe_run(&p, int3, sizeof(int3), KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP,
                         NULL, &rip)) == 0) {
        if (p.run->exit_reason == KVM_EXIT_DEBUG && p.run->debug.arch.exception == 3 &&
            p.run->debug.arch.pc == P_CODE)
            caps->sw_bp = VM_BP_INT3;
        else if (p.run->exit_reason == KVM_EXIT_INTERNAL_ERROR && rip == P_CODE)
            caps->sw_bp = VM_BP_INT3_INTERNAL_ERROR;
    }
    probe_close(&p);

    /* DR0 as an execution breakpoint on the second nop. */
    static const uint8_t nops[] = {0x90, 0x90, 0x90, 0xf4};
    uint64_t dr[8] = {[0] = P_CODE + 1, [7] = 0x1 | 0x400};
    caps->hw_exec_bp = false;
    if ((err = probe_open(&p, kvm_fd, false)) == 0 &&
        (err = probe_run(&p, nops, sizeof(nops), KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP,
                         dr, &rip)) == 0)
        caps->hw_exec_bp = p.run->exit_reason == KVM_EXIT_DEBUG && rip == P_CODE + 1 &&
                           (p.run->debug.arch.dr6 & 1);
    probe_close(&p);

    /* DR0 as a one-byte write watchpoint: mov [P_DATA], al; nop; hlt. */
    static const uint8_t store[] = {0xa2, P_DATA & 0xff, P_DATA >> 8, 0x90, 0xf4};
    uint64_t wdr[8] = {[0] = P_DATA, [7] = 0x1 | 0x400 | (1u << 16)};
    caps->hw_data_bp = false;
    if ((err = probe_open(&p, kvm_fd, false)) == 0 &&
        (err = probe_run(&p, store, sizeof(store), KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP,
                         wdr, &rip)) == 0)
        caps->hw_data_bp = p.run->exit_reason == KVM_EXIT_DEBUG && rip == P_CODE + 3 &&
                           (p.run->debug.arch.dr6 & 1);
    probe_close(&p);

    /* A write to a read-only slot must exit as MMIO with its data. */
    static const uint8_t ro_store[] = {0xb0, 0x5a, 0xa2, P_RO & 0xff, P_RO >> 8, 0xf4};
    caps->ro_slot_traps_writes = false;
    if (caps->readonly_mem) {
        if ((err = probe_open(&p, kvm_fd, true)) == 0 &&
            (err = probe_run(&p, ro_store, sizeof(ro_store), 0, NULL, &rip)) == 0)
            caps->ro_slot_traps_writes = p.run->exit_reason == KVM_EXIT_MMIO &&
                                         p.run->mmio.is_write && p.run->mmio.phys_addr == P_RO &&
                                         p.run->mmio.data[0] == 0x5a;
        probe_close(&p);
    }
    caps->probed = true;
    return 0;
}
