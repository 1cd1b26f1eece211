/* Monitor commands (monitor.h). */
#include "monitor.h"

#include "kvmstub_version.h"
#include "snapstore.h"
#include "vm/image.h"
#include "vm/kaslr.h"
#include "vm/paging.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define say stub_text_add

static const char help_text[] =
    "kvmstub monitor commands:\n"
    "  monitor help              this list\n"
    "  monitor info              the machine: board, CPU mode, memory, image, exits, debug\n"
    "                            methods, catches\n"
    "  monitor info version      kvmstub's version (what the Linux gdb scripts probe)\n"
    "  monitor info registers    every register of the current thread, decoded\n"
    "  monitor info mem          the current page tables' mappings, as ranges\n"
    "  monitor info tlb          ... and page by page, with their flags\n"
    "  monitor info kaslr        where a Linux kernel's text runs (its KASLR slide) and the\n"
    "                            gdb command that moves vmlinux's symbols there\n"
    "  monitor info disks        the drives: transport, how notifications and interrupts\n"
    "                            reach KVM (ioeventfd, MSI-X through irqfd, ...), requests\n"
    "  monitor regs              control, segment and descriptor-table registers, decoded\n"
    "  monitor xp /FMT ADDR      guest-physical memory: FMT is [count][x|d|u|o|c][b|h|w|g]\n"
    "  monitor reset             back to the image's initial state (system_reset too)\n"
    "  monitor serial            what the guest printed so far (the last 64 KiB)\n"
    "  monitor input TEXT        queue TEXT (and a newline) for the guest's UART to read\n"
    "  monitor until TEXT        stop when the guest prints TEXT; 'monitor until' alone lists\n"
    "                            the texts, 'monitor until clear' forgets them\n"
    "  monitor catch io PORT[-PORT] [in|out|any]\n"
    "                            stop after the guest's IN or OUT on those ports\n"
    "  monitor catch             list the catches; 'monitor catch delete N' removes one\n"
    "  monitor snapshot save NAME | load NAME | list | delete NAME\n"
    "                            whole-machine snapshots in memory\n"
    "  monitor snapshot write NAME\n"
    "                            the machine into the file NAME in --snapshot-dir, for\n"
    "                            kvmstub --restore (refused without --snapshot-dir)\n"
    "  monitor record [start|stop|info]\n"
    "                            execution history for reverse-stepi/-continue (on from\n"
    "                            when gdb attaches, unless --history 0)\n"
    "  monitor quit              end kvmstub\n";

static void bits(struct stub_text *t, uint64_t v, const char *const names[], int count)
{
    say(t, " [");
    for (int b = 0; b < count; b++)
        if (names[b] && names[b][0] && (v & (1ull << b)))
            say(t, " %s", names[b]);
    say(t, " ]");
}

static const char *gdb_arch_name(enum vm_mode mode)
{
    return mode == VM_MODE_LONG ? "amd64" : mode == VM_MODE_REAL ? "i8086" : "i386";
}

/* "an OUT on port 0x3f8, 2 hits" */
static const char *catch_text(const struct vm_io_catch *c)
{
    static char b[96];
    char ports[32];
    if (c->lo == c->hi)
        snprintf(ports, sizeof(ports), "port 0x%x", c->lo);
    else
        snprintf(ports, sizeof(ports), "ports 0x%x-0x%x", c->lo, c->hi);
    snprintf(b, sizeof(b), "%s on %s, %llu hit%s",
             c->dir == VM_IO_IN ? "an IN" : c->dir == VM_IO_OUT ? "an OUT" : "an IN or OUT", ports,
             (unsigned long long)c->hits, c->hits == 1 ? "" : "s");
    return b;
}

static void info(struct stub_control *m, unsigned tid, struct stub_text *t)
{
    struct vm *vm = m->vm;
    const struct vm_image *img = &m->image;
    const struct vm_stats *st = vm_stats(vm);
    struct vm_cpu *cpu = stub_control_cpu(m, tid);
    enum vm_mode mode = vm_cpu_mode(cpu);
    say(t, "kvmstub %s\n", KVMSTUB_VERSION);
    say(t, "board:         %s, %u CPU%s\n", vm_board_name(vm), m->ncpus, m->ncpus > 1 ? "s" : "");
    say(t, "cpu mode:      %s (gdb sees %s)\n", vm_mode_name(mode), gdb_arch_name(mode));
    say(t, "state:         %s\n",
        m->last.exited ? "ended" : vm_cpu_halted(cpu) ? "halted (hlt)" : "stopped");
    uint64_t ram = vm_ram_size(vm);
    say(t, "memory:        %llu MiB at 0x0-0x%llx", (unsigned long long)(ram >> 20),
        (unsigned long long)(ram - 1));
    if (mode != VM_MODE_REAL)
        say(t, ", boot area 0x%llx-0x%llx", (unsigned long long)vm_boot_area(vm),
            (unsigned long long)(ram - 1));
    say(t, "\nimage:         %s (%s, %s mode, entry 0x%llx)\n", img->name,
        vm_image_format_name(img->format), vm_mode_name(img->mode),
        (unsigned long long)img->entry);
    for (size_t i = 0; i < img->nsegments; i++)
        say(t, "  segment:     0x%llx-0x%llx (0x%llx bytes from the file)\n",
            (unsigned long long)img->segments[i].paddr,
            (unsigned long long)(img->segments[i].paddr + img->segments[i].memsz - 1),
            (unsigned long long)img->segments[i].filesz);
    say(t, "exits:         %llu (io %llu, mmio %llu, hlt %llu, debug %llu), %llu serial bytes "
           "coalesced\n",
        (unsigned long long)st->exits, (unsigned long long)st->io_exits,
        (unsigned long long)st->mmio_exits, (unsigned long long)st->hlt_exits,
        (unsigned long long)st->debug_exits, (unsigned long long)st->coalesced);
    say(t, "stops:         %llu; breakpoint hits %llu, watchpoint hits %llu, steps %llu, "
           "int3/#DB given back to the guest %llu\n",
        (unsigned long long)m->stops, (unsigned long long)st->breakpoint_hits,
        (unsigned long long)st->watch_hits, (unsigned long long)st->steps,
        (unsigned long long)st->reinjected);
    say(t, "serial:        %llu bytes out\n", (unsigned long long)m->console.total);
    for (size_t i = 0; i < m->until.n; i++)
        say(t, "until:         '%s'\n", m->until.texts[i].text);
    struct vm_io_catch catches[VM_MAX_IO_CATCHES];
    size_t nc = vm_io_catch_list(m->vm, catches, VM_MAX_IO_CATCHES);
    for (size_t i = 0; i < nc && i < VM_MAX_IO_CATCHES; i++)
        say(t, "catch %u:       %s\n", catches[i].id, catch_text(&catches[i]));
    if (m->last_catch[0])
        say(t, "last catch:    %s\n", m->last_catch);
    const struct vm_caps *c = vm_caps(vm);
    static const char *mode_names[VM_PROBE_MODES] = {"real mode", "protected mode", "long mode"};
    for (unsigned i = 0; i < VM_PROBE_MODES; i++) {
        const struct vm_probe_result *r = &c->mode[i];
        say(t, "host probe:    %-15s int3 %s; DR0-DR3 execution breakpoints %s; data "
               "breakpoints %s\n",
            mode_names[i],
            r->sw_bp == VM_BP_INT3                  ? "reaches kvmstub"
            : r->sw_bp == VM_BP_INT3_INTERNAL_ERROR ? "reaches kvmstub as an internal error"
                                                    : "is not intercepted",
            r->hw_exec_bp ? "fire" : "do not fire", r->hw_data_bp ? "fire" : "do not fire");
    }
    say(t, "host probe:    read-only slots %s\n",
        c->ro_slot_traps_writes ? "trap writes" : "unavailable");
    struct vm_debug_info d;
    vm_debug_info(vm, &d);
    const char *why = d.bp_method != VM_BP_HLT            ? ""
                      : m->opts->force_hlt_breakpoints ? " (--hlt-breakpoints)"
                                                       : " (this host does not intercept int3)";
    say(t, "breakpoints:   %s%s, %zu planted now; hardware breakpoints %s\n",
        vm_bp_method_name(d.bp_method), why, d.breakpoints,
        d.hw_exec ? "in DR0-DR3" : "planted like software ones (at most 4)");
    say(t, "watchpoints:   %s%s; %zu set now (%zu on page traps, %zu pages trapped)\n",
        d.watch_method == VM_WATCH_DEBUG_REGS ? "debug registers only"
        : d.hw_data                           ? "debug registers, then page traps"
                                              : "page traps (any number, any length)",
        d.watch_method == VM_WATCH_PAGE_TRAPS ? " (--watchpoints page-traps)" : "",
        d.watchpoints, d.page_trapped, d.pages);
    say(t, "stepping:      %s\n",
        c->guest_debug_flags & KVM_GUESTDBG_BLOCKIRQ
            ? "interrupts are held back during a step (KVM_GUESTDBG_BLOCKIRQ)"
            : "this host cannot hold interrupts back during a step");
    say(t, "coalesced PIO: %s\n", c->coalesced_pio ? "on for the UART's transmit register"
                                                   : "not offered by this host");
    if (m->opts->stdio)
        say(t, "connection:    stdio\n");
    else
        say(t, "listening:     %s:%d\n", m->opts->listen, m->port);
}

static void segment(struct stub_text *t, const char *name, const struct kvm_segment *g)
{
    say(t, "%-4s %04x base %016llx limit %08x type %x%s dpl %u%s%s%s%s\n", name, g->selector,
        (unsigned long long)g->base, g->limit, g->type, g->s ? " code/data" : " system", g->dpl,
        g->present ? " present" : " not-present", g->l ? " 64-bit" : g->db ? " 32-bit" : " 16-bit",
        g->g ? " 4K-granular" : "", g->unusable ? " unusable" : "");
}

static int regs(struct stub_control *m, unsigned tid, struct stub_text *t)
{
    struct vm_cpu *c = stub_control_cpu(m, tid);
    struct kvm_sregs r;
    uint64_t rip, rflags, kgs;
    int err = vm_cpu_sregs(c, &r);
    if (!err)
        err = vm_reg_get(c, VM_REG_RIP, &rip);
    if (!err)
        err = vm_reg_get(c, VM_REG_EFLAGS, &rflags);
    if (!err)
        err = vm_reg_get(c, VM_REG_K_GS_BASE, &kgs);
    if (err) {
        say(t, "cannot read the registers from KVM: %s\n", strerror(-err));
        return err;
    }
    static const char *const cr0[] = {"PE", "MP", "EM", "TS", "ET", "NE", [16] = "WP",
                                      [18] = "AM", [29] = "NW", [30] = "CD", [31] = "PG"};
    static const char *const cr4[] = {"VME", "PVI", "TSD", "DE", "PSE", "PAE", "MCE", "PGE",
                                      "PCE", "OSFXSR", "OSXMMEXCPT", "UMIP", "LA57", "VMXE",
                                      "SMXE", NULL, "FSGSBASE", "PCIDE", "OSXSAVE", NULL,
                                      "SMEP", "SMAP", "PKE"};
    static const char *const efer[] = {"SCE", [8] = "LME", [10] = "LMA", [11] = "NXE",
                                       [12] = "SVME", [14] = "FFXSR"};
    say(t, "CPU#%u, mode %s, rip %016llx, rflags %08llx\n", tid - 1, vm_mode_name(vm_cpu_mode(c)),
        (unsigned long long)rip, (unsigned long long)rflags);
    say(t, "cr0  %016llx", (unsigned long long)r.cr0);
    bits(t, r.cr0, cr0, 32);
    say(t, "\ncr2  %016llx\ncr3  %016llx\ncr4  %016llx", (unsigned long long)r.cr2,
        (unsigned long long)r.cr3, (unsigned long long)r.cr4);
    bits(t, r.cr4, cr4, 23);
    say(t, "\ncr8  %016llx\nefer %016llx", (unsigned long long)r.cr8, (unsigned long long)r.efer);
    bits(t, r.efer, efer, 15);
    say(t, "\napic_base %016llx\n", (unsigned long long)r.apic_base);
    segment(t, "cs", &r.cs);
    segment(t, "ss", &r.ss);
    segment(t, "ds", &r.ds);
    segment(t, "es", &r.es);
    segment(t, "fs", &r.fs);
    segment(t, "gs", &r.gs);
    segment(t, "tr", &r.tr);
    segment(t, "ldt", &r.ldt);
    say(t, "gdt  base %016llx limit %04x\nidt  base %016llx limit %04x\n",
        (unsigned long long)r.gdt.base, r.gdt.limit, (unsigned long long)r.idt.base,
        r.idt.limit);
    say(t, "kernel_gs_base %016llx\n", (unsigned long long)kgs);
    return 0;
}

static void serial(struct stub_control *m, struct stub_text *t)
{
    uint8_t *buf = malloc(STUB_CONSOLE_RECENT);
    if (!buf) {
        say(t, "out of memory\n");
        return;
    }
    size_t n = stub_console_recent(&m->console, buf, STUB_CONSOLE_RECENT);
    if (n == 0)
        say(t, "(the guest has printed nothing yet)\n");
    else if (m->console.total > n)
        say(t, "(the last %zu of %llu bytes)\n", n, (unsigned long long)m->console.total);
    stub_text_put(t, (const char *)buf, n);
    if (n && buf[n - 1] != '\n')
        say(t, "\n");
    free(buf);
}

static int until(struct stub_control *m, const char *arg, size_t n, struct stub_text *t)
{
    if (n == 0) {
        if (!m->until.n)
            say(t, "no texts to stop at; 'monitor until TEXT' adds one\n");
        for (size_t i = 0; i < m->until.n; i++)
            say(t, "stops when the guest prints '%s'\n", m->until.texts[i].text);
        return 0;
    }
    if (n == 5 && strncmp(arg, "clear", 5) == 0) {
        stub_control_until_clear(m);
        say(t, "no more texts to stop at\n");
        return 0;
    }
    char text[STUB_UNTIL_MAX_LEN + 1];
    if (n > STUB_UNTIL_MAX_LEN) {
        say(t, "that text is longer than %u bytes\n", STUB_UNTIL_MAX_LEN);
        return -EINVAL;
    }
    memcpy(text, arg, n);
    text[n] = 0;
    int r = stub_control_until(m, text);
    if (r == -ENOSPC)
        say(t, "%u texts are set already; 'monitor until clear' forgets them\n", STUB_UNTIL_MAX);
    else if (r == -EEXIST)
        say(t, "'%s' is set already\n", text);
    else if (r)
        say(t, "cannot watch for '%s': %s\n", text, strerror(-r));
    else
        say(t, "the guest stops when it prints '%s'\n", text);
    return r == -EEXIST ? 0 : r;
}

/* The next word of [*p, end), NUL-terminated into w (cap bytes). */
static bool word(const char **p, const char *end, char *w, size_t cap)
{
    while (*p < end && isspace((unsigned char)**p))
        (*p)++;
    size_t k = 0;
    while (*p < end && !isspace((unsigned char)**p)) {
        if (k + 1 < cap)
            w[k++] = **p;
        (*p)++;
    }
    w[k] = 0;
    return k > 0;
}

static bool port_number(const char *s, uint16_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || end == s || *end || v > 0xffff)
        return false;
    *out = (uint16_t)v;
    return true;
}

static int catch(struct stub_control *m, const char *arg, size_t n, struct stub_text *t)
{
    const char *p = arg, *end = arg + n;
    char w[64];
    if (!word(&p, end, w, sizeof(w))) {
        struct vm_io_catch c[VM_MAX_IO_CATCHES];
        size_t k = vm_io_catch_list(m->vm, c, VM_MAX_IO_CATCHES);
        if (!k)
            say(t, "no catches; 'monitor catch io PORT[-PORT] [in|out|any]' sets one\n");
        for (size_t i = 0; i < k && i < VM_MAX_IO_CATCHES; i++)
            say(t, "%u: %s\n", c[i].id, catch_text(&c[i]));
        return 0;
    }
    if (strcmp(w, "delete") == 0) {
        char num[32];
        char *e;
        unsigned long id = word(&p, end, num, sizeof(num)) ? strtoul(num, &e, 0) : 0;
        if (!id || *e || word(&p, end, w, sizeof(w))) {
            say(t, "usage: monitor catch delete N (N from 'monitor catch')\n");
            return -EINVAL;
        }
        int r = vm_io_catch_remove(m->vm, (unsigned)id);
        say(t, r ? "there is no catch %lu\n" : "catch %lu deleted\n", id);
        return r;
    }
    if (strcmp(w, "io") != 0) {
        say(t, "unknown catch '%s': use 'monitor catch io PORT[-PORT] [in|out|any]', 'monitor "
               "catch delete N' or 'monitor catch'\n",
            w);
        return -EINVAL;
    }
    char range[64], dirw[16] = "any";
    uint16_t lo, hi;
    if (!word(&p, end, range, sizeof(range))) {
        say(t, "usage: monitor catch io PORT[-PORT] [in|out|any], e.g. monitor catch io 0x3f8 out\n");
        return -EINVAL;
    }
    char *dash = strchr(range, '-');
    if (dash)
        *dash = 0;
    if (!port_number(range, &lo) || (dash ? !port_number(dash + 1, &hi) : !(hi = lo, 1)) ||
        lo > hi) {
        say(t, "'%s' is not a port or a range of ports (0 to 0xffff, like 0x3f8 or 0x60-0x64)\n",
            range);
        return -EINVAL;
    }
    char given[16];
    if (word(&p, end, given, sizeof(given)))
        memcpy(dirw, given, sizeof(dirw));
    enum vm_io_dir dir = strcmp(dirw, "in") == 0    ? VM_IO_IN
                         : strcmp(dirw, "out") == 0 ? VM_IO_OUT
                         : strcmp(dirw, "any") == 0 ? VM_IO_ANY
                                                    : 0;
    if (!dir || word(&p, end, w, sizeof(w))) {
        say(t, "the direction is in, out or any (not '%s')\n", dirw);
        return -EINVAL;
    }
    unsigned id;
    int r = vm_io_catch_add(m->vm, lo, hi, dir, &id);
    if (r == -ENOSPC) {
        say(t, "%u catches are set already; delete one first\n", VM_MAX_IO_CATCHES);
        return r;
    }
    if (r && r != -ENOTTY)
        say(t, "note: KVM kept batching writes to these ports (%s): some may be seen late\n",
            strerror(-r));
    struct vm_io_catch shown = {.id = id, .lo = lo, .hi = hi, .dir = dir};
    say(t, "catch %u: the guest stops after %s\n", id, catch_text(&shown));
    return 0;
}

/* ---- QEMU's habits ---- */

static void info_registers(struct stub_control *m, unsigned tid, struct stub_text *t)
{
    struct vm_cpu *c = stub_control_cpu(m, tid);
    static const struct {
        const char *name;
        enum vm_reg_id id;
    } gpr[] = {{"RAX", VM_REG_RAX}, {"RBX", VM_REG_RBX}, {"RCX", VM_REG_RCX}, {"RDX", VM_REG_RDX},
               {"RSI", VM_REG_RSI}, {"RDI", VM_REG_RDI}, {"RBP", VM_REG_RBP}, {"RSP", VM_REG_RSP},
               {"R8 ", VM_REG_R8},  {"R9 ", VM_REG_R9},  {"R10", VM_REG_R10}, {"R11", VM_REG_R11},
               {"R12", VM_REG_R12}, {"R13", VM_REG_R13}, {"R14", VM_REG_R14}, {"R15", VM_REG_R15}};
    uint64_t v;
    say(t, "CPU#%u, %s mode%s\n", tid - 1, vm_mode_name(vm_cpu_mode(c)),
        vm_cpu_halted(c) ? ", halted" : "");
    for (size_t i = 0; i < sizeof(gpr) / sizeof(gpr[0]); i++) {
        vm_reg_get(c, gpr[i].id, &v);
        say(t, "%s=%016llx%s", gpr[i].name, (unsigned long long)v, i % 4 == 3 ? "\n" : " ");
    }
    uint64_t rip = 0, fl = 0, cs = 0;
    vm_reg_get(c, VM_REG_RIP, &rip);
    vm_reg_get(c, VM_REG_EFLAGS, &fl);
    vm_reg_get(c, VM_REG_CS, &cs);
    static const char *const flag[] = {"CF", NULL, "PF", NULL, "AF", NULL, "ZF", "SF", "TF", "IF",
                                       "DF", "OF", NULL, NULL, "NT", NULL, "RF", "VM", "AC", "VIF",
                                       "VIP", "ID"};
    say(t, "RIP=%016llx RFL=%08llx", (unsigned long long)rip, (unsigned long long)fl);
    bits(t, fl, flag, 22);
    say(t, " CPL=%llu IOPL=%llu\n", (unsigned long long)(cs & 3),
        (unsigned long long)((fl >> 12) & 3));
    static const struct {
        const char *name;
        enum vm_reg_id sel, base, limit, attr;
    } segs[] = {
        {"ES ", VM_REG_ES, VM_REG_ES_BASE, VM_REG_ES_LIMIT, VM_REG_ES_ATTR},
        {"CS ", VM_REG_CS, VM_REG_CS_BASE, VM_REG_CS_LIMIT, VM_REG_CS_ATTR},
        {"SS ", VM_REG_SS, VM_REG_SS_BASE, VM_REG_SS_LIMIT, VM_REG_SS_ATTR},
        {"DS ", VM_REG_DS, VM_REG_DS_BASE, VM_REG_DS_LIMIT, VM_REG_DS_ATTR},
        {"FS ", VM_REG_FS, VM_REG_FS_BASE, VM_REG_FS_LIMIT, VM_REG_FS_ATTR},
        {"GS ", VM_REG_GS, VM_REG_GS_BASE, VM_REG_GS_LIMIT, VM_REG_GS_ATTR},
        {"LDT", VM_REG_LDTR, VM_REG_LDTR_BASE, VM_REG_LDTR_LIMIT, VM_REG_LDTR_ATTR},
        {"TR ", VM_REG_TR, VM_REG_TR_BASE, VM_REG_TR_LIMIT, VM_REG_TR_ATTR},
    };
    for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
        uint64_t sel = 0, base = 0, limit = 0, attr = 0;
        vm_reg_get(c, segs[i].sel, &sel);
        vm_reg_get(c, segs[i].base, &base);
        vm_reg_get(c, segs[i].limit, &limit);
        vm_reg_get(c, segs[i].attr, &attr);
        say(t, "%s=%04llx %016llx %08llx %05llx type=%llx%s DPL=%llu%s%s%s%s\n", segs[i].name,
            (unsigned long long)sel, (unsigned long long)base, (unsigned long long)limit,
            (unsigned long long)attr, (unsigned long long)(attr & VM_SEG_ATTR_TYPE),
            attr & VM_SEG_ATTR_S ? "" : " system",
            (unsigned long long)((attr >> VM_SEG_ATTR_DPL_SHIFT) & 3),
            attr & VM_SEG_ATTR_P ? " P" : "", attr & VM_SEG_ATTR_L ? " L" : "",
            attr & VM_SEG_ATTR_DB ? " DB" : "", attr & VM_SEG_ATTR_UNUSABLE ? " unusable" : "");
    }
    uint64_t gb = 0, gl = 0, ib = 0, il = 0;
    vm_reg_get(c, VM_REG_GDTR_BASE, &gb);
    vm_reg_get(c, VM_REG_GDTR_LIMIT, &gl);
    vm_reg_get(c, VM_REG_IDTR_BASE, &ib);
    vm_reg_get(c, VM_REG_IDTR_LIMIT, &il);
    say(t, "GDT=     %016llx %08llx\nIDT=     %016llx %08llx\n", (unsigned long long)gb,
        (unsigned long long)gl, (unsigned long long)ib, (unsigned long long)il);
    static const enum vm_reg_id ctl[] = {VM_REG_CR0, VM_REG_CR2, VM_REG_CR3, VM_REG_CR4,
                                         VM_REG_CR8, VM_REG_EFER, VM_REG_DR0, VM_REG_DR1,
                                         VM_REG_DR2, VM_REG_DR3, VM_REG_DR6, VM_REG_DR7};
    static const char *const ctl_name[] = {"CR0", "CR2", "CR3", "CR4", "CR8", "EFER",
                                           "DR0", "DR1", "DR2", "DR3", "DR6", "DR7"};
    for (size_t i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
        v = 0;
        vm_reg_get(c, ctl[i], &v);
        say(t, "%s=%016llx%s", ctl_name[i], (unsigned long long)v, i % 4 == 3 ? "\n" : " ");
    }
    uint64_t fcw = 0, fsw = 0, ftw = 0, mx = 0;
    vm_reg_get(c, VM_REG_FCTRL, &fcw);
    vm_reg_get(c, VM_REG_FSTAT, &fsw);
    vm_reg_get(c, VM_REG_FTAG, &ftw);
    vm_reg_get(c, VM_REG_MXCSR, &mx);
    say(t, "FCW=%04llx FSW=%04llx FTW=%04llx MXCSR=%08llx\n", (unsigned long long)fcw,
        (unsigned long long)fsw, (unsigned long long)ftw, (unsigned long long)mx);
    bool avx = vm_xsave_features(m->vm) & (1u << 2);
    for (unsigned i = 0; i < 16; i++) {
        uint8_t x[16], y[16] = {0};
        vm_reg_read(c, VM_REG_XMM0 + i, x, 16);
        if (avx)
            vm_reg_read(c, VM_REG_YMM0H + i, y, 16);
        say(t, "%s%02u=", avx ? "YMM" : "XMM", i);
        if (avx) {
            for (int b = 15; b >= 0; b--)
                say(t, "%02x", y[b]);
            say(t, " ");
        }
        for (int b = 15; b >= 0; b--)
            say(t, "%02x", x[b]);
        say(t, "\n");
    }
}

/* info mem: contiguous ranges with the same permissions; info tlb: every
 * leaf. Bounded, since a kernel maps a lot. */
#define MAP_LINES 4096

struct maps {
    struct stub_text *t;
    bool tlb;
    size_t lines, dropped;
    bool open;
    struct vm_mapping run; /* info mem: the range being grown */
};

static void mem_line(struct maps *w)
{
    if (w->lines++ >= MAP_LINES) {
        w->dropped++;
        return;
    }
    const struct vm_mapping *r = &w->run;
    say(w->t, "%016llx-%016llx %016llx %c%c%c\n", (unsigned long long)r->virt,
        (unsigned long long)(r->virt + r->size), (unsigned long long)r->size,
        r->flags & VM_PTE_U ? 'u' : '-', 'r', r->flags & VM_PTE_W ? 'w' : '-');
}

static int map_one(void *ctx, const struct vm_mapping *mp)
{
    struct maps *w = ctx;
    if (w->tlb) {
        if (w->lines++ >= MAP_LINES) {
            w->dropped++;
            return 0;
        }
        uint64_t f = mp->flags;
        say(w->t, "%016llx: %016llx %c%c%c%c%c%c%c%c%c\n", (unsigned long long)mp->virt,
            (unsigned long long)mp->phys, f & VM_PTE_NX ? 'X' : '-', f & VM_PTE_G ? 'G' : '-',
            mp->size > 4096 ? 'P' : '-', f & VM_PTE_D ? 'D' : '-', f & VM_PTE_A ? 'A' : '-',
            f & VM_PTE_PCD ? 'C' : '-', f & VM_PTE_PWT ? 'T' : '-', f & VM_PTE_U ? 'U' : '-',
            f & VM_PTE_W ? 'W' : '-');
        return 0;
    }
    const uint64_t perm = VM_PTE_U | VM_PTE_W;
    if (w->open && w->run.virt + w->run.size == mp->virt &&
        (w->run.flags & perm) == (mp->flags & perm)) {
        w->run.size += mp->size;
        return 0;
    }
    if (w->open)
        mem_line(w);
    w->run = *mp;
    w->open = true;
    return 0;
}

static int info_maps(struct stub_control *m, unsigned tid, bool tlb, struct stub_text *t)
{
    struct maps w = {.t = t, .tlb = tlb};
    int r = vm_paging_walk(stub_control_cpu(m, tid), map_one, &w);
    if (r == -ENODATA) {
        say(t, "paging is off: linear addresses are physical\n");
        return 0;
    }
    if (r) {
        say(t, "cannot read the page tables: %s\n", strerror(-r));
        return r;
    }
    if (w.open)
        mem_line(&w);
    if (w.dropped)
        say(t, "(%zu more not shown)\n", w.dropped);
    else if (!w.lines)
        say(t, "nothing is mapped\n");
    return 0;
}

/* info kaslr: the kernel's _text where it runs, against vmlinux's. gdb
 * needs the slide for every section but the per-CPU one (vaddr 0, which
 * KASLR leaves alone: per-CPU variables are offsets from each CPU's base). */
static int info_kaslr(struct stub_control *m, unsigned tid, struct stub_text *t)
{
    struct vm_kaslr k;
    int r = vm_kaslr_find(stub_control_cpu(m, tid), &k);
    if (r == -ENOEXEC) {
        say(t, "not a Linux kernel: 'monitor info kaslr' applies to a 64-bit bzImage "
               "kvmstub loaded by its boot protocol\n");
        return r;
    }
    if (r == -ENODATA || r == -EAGAIN) {
        say(t, "the kernel has not chosen its place yet: %s. With KASLR its decompressor "
               "picks the physical address and the virtual offset at random when it runs, and "
               "only then maps the kernel at 0xffffffff80000000 and up; ask again once the "
               "kernel runs its own code (startup_64 on), or boot with nokaslr\n",
            r == -ENODATA ? "this CPU's paging is off (an AP not started yet, or the guest "
                            "before its 64-bit entry)"
                          : "nothing is mapped in the kernel's text range (the guest is still in "
                            "the boot protocol's entry or the decompressor)");
        return 0;
    }
    if (r) {
        say(t, "cannot read the page tables: %s\n", strerror(-r));
        return r;
    }
    say(t, "kernel _text: virtual 0x%llx, physical 0x%llx\n", (unsigned long long)k.text_virt,
        (unsigned long long)k.text_phys);
    say(t, "vmlinux links it at virtual 0x%llx, physical 0x%llx (LOAD_PHYSICAL_ADDR)\n",
        (unsigned long long)k.link_virt, (unsigned long long)k.link_phys);
    if (k.slide == 0)
        say(t, "slide: 0 (no KASLR: nokaslr, or the decompressor kept the link address)\n"
               "vmlinux's symbols are right as they are\n");
    else
        say(t, "slide: 0x%llx virtual (0x%llx physical from LOAD_PHYSICAL_ADDR)\n"
               "gdb: add-symbol-file vmlinux -o 0x%llx -s .data..percpu 0\n"
               "  (in a gdb that has not loaded vmlinux, or after 'symbol-file' with no "
               "argument drops it; 'symbol-file -o' would move the per-CPU variables too;\n"
               "  with Linux's lx-symbols, which reloads vmlinux unslid, use kvmstub-kaslr from "
               "examples/linux/kaslr.py instead)\n",
            (unsigned long long)k.slide, (unsigned long long)(k.text_phys - k.link_phys),
            (unsigned long long)k.slide);
    return 0;
}

/* xp /FMT ADDR, as QEMU's monitor: count, format (x d u o c), size (b h w g). */
static int xp(struct stub_control *m, const char *arg, size_t n, struct stub_text *t)
{
    char buf[128];
    if (n >= sizeof(buf)) {
        say(t, "usage: monitor xp /FMT ADDR, e.g. monitor xp /8xg 0x1000\n");
        return -EINVAL;
    }
    memcpy(buf, arg, n);
    buf[n] = 0;
    unsigned long count = 1;
    char fmt = 'x';
    unsigned size = 4;
    char *p = buf;
    if (*p == '/') {
        p++;
        if (isdigit((unsigned char)*p))
            count = strtoul(p, &p, 10);
        for (; *p && !isspace((unsigned char)*p); p++) {
            switch (*p) {
            case 'x': case 'd': case 'u': case 'o': case 'c': fmt = *p; break;
            case 'b': size = 1; break;
            case 'h': size = 2; break;
            case 'w': size = 4; break;
            case 'g': size = 8; break;
            default:
                say(t, "'%c' is not a format (x d u o c) or size (b h w g)\n", *p);
                return -EINVAL;
            }
        }
    }
    while (isspace((unsigned char)*p))
        p++;
    char *end;
    errno = 0;
    unsigned long long addr = strtoull(p, &end, 0);
    if (!*p || errno || *end || count == 0 || count > 4096) {
        say(t, "usage: monitor xp /FMT ADDR (1 to 4096 items), e.g. monitor xp /8xg 0x1000\n");
        return -EINVAL;
    }
    if (fmt == 'c')
        size = 1;
    unsigned per_line = fmt == 'c' ? 16 : 16 / size;
    for (unsigned long i = 0; i < count; i++) {
        uint64_t a = addr + i * size, v = 0;
        size_t done;
        if (vm_read_physical(m->vm, a, &v, size, &done)) {
            say(t, "%s%016llx: cannot read guest-physical memory there\n", i % per_line ? "\n" : "",
                (unsigned long long)a);
            return -EFAULT;
        }
        if (i % per_line == 0)
            say(t, "%016llx:", (unsigned long long)a);
        int digits = (int)size * 2;
        switch (fmt) {
        case 'x': say(t, " 0x%0*llx", digits, (unsigned long long)v); break;
        case 'u': say(t, " %llu", (unsigned long long)v); break;
        case 'o': say(t, " %#llo", (unsigned long long)v); break;
        case 'c': say(t, isprint((int)v) ? " '%c'" : " \\x%02x", (int)v); break;
        case 'd': {
            int64_t sv = size == 8 ? (int64_t)v : size == 4 ? (int32_t)v
                                                : size == 2 ? (int16_t)v
                                                            : (int8_t)v;
            say(t, " %lld", (long long)sv);
            break;
        }
        }
        if (i % per_line == per_line - 1 || i + 1 == count)
            say(t, "\n");
    }
    return 0;
}

static int reset(struct stub_control *m, struct stub_text *t)
{
    char err[256];
    int r = stub_control_reset(m, err, sizeof(err));
    if (r) {
        say(t, "reset failed: %s\n", err);
        return r;
    }
    say(t, "the guest is back at its entry point 0x%llx; gdb still shows the old registers "
           "until you run 'maintenance flush register-cache' or step\n",
        (unsigned long long)m->image.entry);
    return 0;
}

/* ---- the command table ---- */

struct args {
    const char *p; /* after the command word, spaces skipped */
    size_t n;
};

static bool no_args(const char *what, const struct args *a, struct stub_text *t)
{
    if (!a->n)
        return true;
    say(t, "'monitor %s' takes no arguments (got '%.*s')\n", what, (int)a->n, a->p);
    return false;
}

static int c_help(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t)
{
    (void)m;
    (void)tid;
    (void)a;
    say(t, "%s", help_text);
    return 0;
}

static int c_info(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t)
{
    const char *p = a->p, *end = a->p + a->n;
    char w[32];
    if (!word(&p, end, w, sizeof(w))) {
        info(m, tid, t);
        return 0;
    }
    char extra[32];
    if (word(&p, end, extra, sizeof(extra))) {
        say(t, "'monitor info %s' takes no arguments\n", w);
        return -EINVAL;
    }
    if (strcmp(w, "version") == 0) {
        say(t, "kvmstub %s\n", KVMSTUB_VERSION);
        return 0;
    }
    if (strcmp(w, "registers") == 0) {
        info_registers(m, tid, t);
        return 0;
    }
    if (strcmp(w, "mem") == 0 || strcmp(w, "tlb") == 0)
        return info_maps(m, tid, strcmp(w, "tlb") == 0, t);
    if (strcmp(w, "kaslr") == 0)
        return info_kaslr(m, tid, t);
    if (strcmp(w, "disks") == 0) {
        char buf[8192];
        vm_devices_describe_disks(m->vm, buf, sizeof(buf));
        say(t, "%s", buf);
        return 0;
    }
    say(t, "unknown 'monitor info %s'; there are: info, info version, info registers, info mem, "
           "info tlb, info kaslr, info disks\n",
        w);
    return -ENOENT;
}

static int c_regs(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t)
{
    return no_args("regs", a, t) ? regs(m, tid, t) : -EINVAL;
}

static int c_reset(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t)
{
    (void)tid;
    return no_args("reset", a, t) ? reset(m, t) : -EINVAL;
}

static int c_serial(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t)
{
    (void)tid;
    if (!no_args("serial", a, t))
        return -EINVAL;
    serial(m, t);
    return 0;
}

static int c_input(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t)
{
    (void)tid;
    size_t q = vm_console_input(m->vm, a->p, a->n);
    q += vm_console_input(m->vm, "\n", 1);
    say(t, "queued %zu bytes for the guest's UART%s\n", q,
        q < a->n + 1 ? " (its input queue is full)" : "");
    return 0;
}

static int c_until(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t)
{
    (void)tid;
    return until(m, a->p, a->n, t);
}

static int c_catch(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t)
{
    (void)tid;
    return catch(m, a->p, a->n, t);
}

static int c_xp(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t)
{
    (void)tid;
    return xp(m, a->p, a->n, t);
}

/* The argument text, NUL-terminated. */
static char *arg_copy(const struct args *a)
{
    char *s = malloc(a->n + 1);
    if (s) {
        memcpy(s, a->p, a->n);
        s[a->n] = 0;
    }
    return s;
}

static int c_snapshot(struct stub_control *m, unsigned tid, const struct args *a,
                      struct stub_text *t)
{
    (void)tid;
    char *s = arg_copy(a);
    if (!s)
        return -ENOMEM;
    int r = stub_snapstore_command(m->snapstore, s, t);
    free(s);
    return r;
}

/* Only without the record layer (stub/record.h), which answers `monitor
 * record` itself: there is no history to start. */
static int c_record(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t)
{
    (void)tid;
    if (a->n >= 5 && strncmp(a->p, "start", 5) == 0) {
        say(t, "cannot record: %s\n", m->record_refusal ? m->record_refusal : "not here");
        return -ENOTSUP;
    }
    if (a->n >= 4 && strncmp(a->p, "stop", 4) == 0) {
        say(t, "history dropped; 'monitor record start' records again\n");
        return 0;
    }
    if (a->n == 0 || (a->n >= 4 && strncmp(a->p, "info", 4) == 0)) {
        say(t, "not recording ('monitor record start')\n");
        return 0;
    }
    say(t, "usage: monitor record start | stop | info\n");
    return -EINVAL;
}

static int c_quit(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t)
{
    (void)tid;
    if (!no_args("quit", a, t))
        return -EINVAL;
    say(t, "kvmstub exits\n");
    stub_control_exit(m, 0);
    return 0;
}

static const struct {
    const char *name;
    int (*run)(struct stub_control *m, unsigned tid, const struct args *a, struct stub_text *t);
} commands[] = {
    {"help", c_help},   {"info", c_info},   {"regs", c_regs},   {"reset", c_reset},
    {"system_reset", c_reset}, {"serial", c_serial}, {"input", c_input}, {"until", c_until},
    {"catch", c_catch}, {"xp", c_xp},       {"snapshot", c_snapshot}, {"record", c_record},
    {"quit", c_quit},
};

int stub_monitor_run(struct stub_control *m, unsigned tid, const char *cmd, struct stub_text *t)
{
    while (isspace((unsigned char)*cmd))
        cmd++;
    size_t len = strlen(cmd);
    while (len && isspace((unsigned char)cmd[len - 1]))
        len--;
    const char *arg = cmd;
    while (arg < cmd + len && !isspace((unsigned char)*arg))
        arg++;
    size_t wlen = (size_t)(arg - cmd);
    while (arg < cmd + len && isspace((unsigned char)*arg))
        arg++;
    struct args a = {arg, (size_t)(cmd + len - arg)};
    if (wlen == 0)
        return c_help(m, tid, &a, t);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (wlen == strlen(commands[i].name) && strncmp(cmd, commands[i].name, wlen) == 0)
            return commands[i].run(m, tid, &a, t);
    say(t, "unknown monitor command '%.*s'; the commands are:", (int)wlen, cmd);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        say(t, " %s", commands[i].name);
    say(t, " ('monitor help' explains them)\n");
    return -ENOENT;
}
