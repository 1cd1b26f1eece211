#include "monitor.h"

#include "session.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct text {
    char *p;
    size_t len, cap;
};

static void say(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->p && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 1024) + (size_t)n;
        char *np = realloc(t->p, cap);
        if (!np)
            return;
        t->p = np;
        t->cap = cap;
    }
}

static const char help_text[] =
    "kvmstub monitor commands:\n"
    "  monitor help          this list\n"
    "  monitor info          the machine: CPU mode, memory, image, exits, debug methods\n"
    "  monitor regs          control, segment and descriptor-table registers, decoded\n"
    "  monitor reset         back to the image's initial state (run 'flushregs' after)\n"
    "  monitor serial        what the guest printed so far (the last 64 KiB)\n"
    "  monitor input TEXT    queue TEXT (and a newline) for the guest's UART to read\n"
    "  monitor quit          end kvmstub\n";

static void bits(struct text *t, uint64_t v, const char *const names[], int count)
{
    say(t, " [");
    for (int b = 0; b < count; b++)
        if (names[b] && names[b][0] && (v & (1ull << b)))
            say(t, " %s", names[b]);
    say(t, " ]");
}

static void info(struct stub_session *s, struct text *t)
{
    struct stub_machine *m = s->m;
    struct vm *vm = m->vm;
    const struct vm_image *img = &m->image;
    const struct vm_stats *st = &vm->stats;
    bool real;
    enum vm_arch a = stub_machine_arch(m, &real);
    enum vm_mode mode = vm_cpu_mode(&vm->cpus[0]);
    say(t, "kvmstub %s\n", KVMSTUB_VERSION);
    say(t, "cpu mode:      %s (gdb sees %s)\n", vm_mode_name(mode),
        s->arch_known ? (s->arch == VM_ARCH_AMD64 ? "amd64" : s->real_mode ? "i8086" : "i386")
                      : (a == VM_ARCH_AMD64 ? "amd64" : real ? "i8086" : "i386"));
    say(t, "state:         %s\n",
        m->last.exited ? "ended" : vm->cpus[0].halted ? "halted (hlt)" : "stopped");
    say(t, "memory:        %llu MiB at 0x0-0x%llx", (unsigned long long)(vm->mem.size >> 20),
        (unsigned long long)(vm->mem.size - 1));
    if (mode != VM_MODE_REAL)
        say(t, ", boot area 0x%llx-0x%llx", (unsigned long long)vm_boot_area(vm),
            (unsigned long long)(vm->mem.size - 1));
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
    say(t, "stops:         %llu; breakpoint hits %llu, watchpoint hits %llu, steps %llu\n",
        (unsigned long long)m->stops, (unsigned long long)st->breakpoint_hits,
        (unsigned long long)st->watch_hits, (unsigned long long)st->steps);
    say(t, "serial:        %llu bytes out\n", (unsigned long long)m->console.total);
    const struct vm_caps *c = &vm->caps;
    say(t, "host probe:    int3 %s; DR0-DR3 execution breakpoints %s; data breakpoints %s; "
           "read-only slots %s\n",
        c->sw_bp == VM_BP_INT3                  ? "reaches kvmstub"
        : c->sw_bp == VM_BP_INT3_INTERNAL_ERROR ? "reaches kvmstub as an internal error"
                                                : "is not intercepted",
        c->hw_exec_bp ? "fire" : "do not fire", c->hw_data_bp ? "fire" : "do not fire",
        c->ro_slot_traps_writes ? "trap writes" : "unavailable");
    say(t, "breakpoints:   %s, %zu planted; hardware breakpoints %s\n",
        vm_bp_method_name(vm->debug.bp_method), vm->debug.nbps,
        vm->debug.hw_exec ? "in DR0-DR3" : "planted like software ones (at most 4)");
    size_t traps = 0;
    for (size_t i = 0; i < vm->debug.nwatches; i++)
        traps += vm->debug.watches[i].dr < 0;
    say(t, "watchpoints:   %s; %zu set (%zu on page traps, %zu pages trapped)\n",
        vm->debug.hw_data && vm->debug.watch_method != VM_WATCH_PAGE_TRAPS
            ? "debug registers, then page traps"
            : "page traps (any number, any length)",
        vm->debug.nwatches, traps, vm->mem.ntraps);
    say(t, "coalesced PIO: %s\n", c->coalesced_pio ? "on for the UART's transmit register"
                                                   : "not offered by this host");
    if (m->opts->stdio)
        say(t, "connection:    stdio\n");
    else
        say(t, "listening:     %s:%d\n", m->opts->listen, m->port);
}

static void segment(struct text *t, const char *name, const struct kvm_segment *g)
{
    say(t, "%-4s %04x base %016llx limit %08x type %x%s dpl %u%s%s%s%s\n", name, g->selector,
        (unsigned long long)g->base, g->limit, g->type, g->s ? " code/data" : " system", g->dpl,
        g->present ? " present" : " not-present", g->l ? " 64-bit" : g->db ? " 32-bit" : " 16-bit",
        g->g ? " 4K-granular" : "", g->unusable ? " unusable" : "");
}

static void regs(struct stub_session *s, struct text *t)
{
    struct vm_cpu *c = &s->m->vm->cpus[0];
    if (vm_regs_fetch(c, VM_RC_REGS | VM_RC_SREGS | VM_RC_MSRS)) {
        say(t, "cannot read the registers from KVM\n");
        return;
    }
    const struct kvm_sregs *r = &c->rc.sregs;
    static const char *const cr0[] = {"PE", "MP", "EM", "TS", "ET", "NE", [16] = "WP",
                                      [18] = "AM", [29] = "NW", [30] = "CD", [31] = "PG"};
    static const char *const cr4[] = {"VME", "PVI", "TSD", "DE", "PSE", "PAE", "MCE", "PGE",
                                      "PCE", "OSFXSR", "OSXMMEXCPT", "UMIP", "LA57", "VMXE",
                                      "SMXE", NULL, "FSGSBASE", "PCIDE", "OSXSAVE", NULL,
                                      "SMEP", "SMAP", "PKE"};
    static const char *const efer[] = {"SCE", [8] = "LME", [10] = "LMA", [11] = "NXE",
                                       [12] = "SVME", [14] = "FFXSR"};
    say(t, "mode %s, rip %016llx, rflags %08llx\n", vm_mode_name(vm_cpu_mode(c)),
        (unsigned long long)c->rc.regs.rip, (unsigned long long)c->rc.regs.rflags);
    say(t, "cr0  %016llx", (unsigned long long)r->cr0);
    bits(t, r->cr0, cr0, 32);
    say(t, "\ncr2  %016llx\ncr3  %016llx\ncr4  %016llx", (unsigned long long)r->cr2,
        (unsigned long long)r->cr3, (unsigned long long)r->cr4);
    bits(t, r->cr4, cr4, 23);
    say(t, "\ncr8  %016llx\nefer %016llx", (unsigned long long)r->cr8,
        (unsigned long long)r->efer);
    bits(t, r->efer, efer, 15);
    say(t, "\napic_base %016llx\n", (unsigned long long)r->apic_base);
    segment(t, "cs", &r->cs);
    segment(t, "ss", &r->ss);
    segment(t, "ds", &r->ds);
    segment(t, "es", &r->es);
    segment(t, "fs", &r->fs);
    segment(t, "gs", &r->gs);
    segment(t, "tr", &r->tr);
    segment(t, "ldt", &r->ldt);
    say(t, "gdt  base %016llx limit %04x\nidt  base %016llx limit %04x\n",
        (unsigned long long)r->gdt.base, r->gdt.limit, (unsigned long long)r->idt.base,
        r->idt.limit);
    say(t, "kernel_gs_base %016llx\n", (unsigned long long)c->rc.kernel_gs_base);
}

static void serial(struct stub_session *s, struct text *t)
{
    uint8_t *buf = malloc(STUB_CONSOLE_HISTORY);
    if (!buf)
        return;
    size_t n = stub_console_history(&s->m->console, buf, STUB_CONSOLE_HISTORY);
    if (n == 0)
        say(t, "(the guest has printed nothing yet)\n");
    else if (s->m->console.total > n)
        say(t, "(the last %zu of %llu bytes)\n", n, (unsigned long long)s->m->console.total);
    for (size_t i = 0; i < n; i++)
        say(t, "%c", buf[i]);
    if (n && buf[n - 1] != '\n')
        say(t, "\n");
    free(buf);
}

void stub_monitor(struct stub_session *s, const char *cmd)
{
    struct text t = {0};
    while (isspace((unsigned char)*cmd))
        cmd++;
    size_t len = strlen(cmd);
    while (len && isspace((unsigned char)cmd[len - 1]))
        len--;
    const char *arg = cmd;
    while (arg < cmd + len && !isspace((unsigned char)*arg))
        arg++;
    size_t word = (size_t)(arg - cmd);
    while (arg < cmd + len && isspace((unsigned char)*arg))
        arg++;
#define IS(w) (word == strlen(w) && strncmp(cmd, w, word) == 0)
    bool ok = true, quit = false;
    if (word == 0 || IS("help")) {
        say(&t, "%s", help_text);
    } else if (IS("info")) {
        info(s, &t);
    } else if (IS("regs")) {
        regs(s, &t);
    } else if (IS("reset")) {
        char err[256];
        if (stub_machine_reset(s->m, err, sizeof(err)) == 0)
            say(&t, "the guest is back at its entry point 0x%llx; gdb still shows the old "
                    "registers until you run 'flushregs' or step\n",
                (unsigned long long)s->m->image.entry);
        else
            say(&t, "reset failed: %s\n", err);
    } else if (IS("serial")) {
        serial(s, &t);
    } else if (IS("input")) {
        size_t n = (size_t)(cmd + len - arg);
        size_t q = vm_serial_input(&s->m->vm->serial, arg, n);
        q += vm_serial_input(&s->m->vm->serial, "\n", 1);
        say(&t, "queued %zu bytes for the guest's UART%s\n", q,
            q < n + 1 ? " (its input queue is full)" : "");
    } else if (IS("quit")) {
        say(&t, "kvmstub exits\n");
        quit = true;
    } else {
        say(&t, "unknown monitor command '%.*s'; try 'monitor help'\n", (int)word, cmd);
        ok = false;
    }
#undef IS
    if (t.len)
        rsp_send_console(&s->conn, t.p, t.len, 0);
    rsp_send_str(&s->conn, ok ? "OK" : "E01");
    free(t.p);
    if (quit)
        stub_machine_exit(s->m, 0);
}
