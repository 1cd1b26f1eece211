/* Monitor commands (monitor.h). */
#include "monitor.h"

#include "vm/image.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define say stub_text_add

static const char help_text[] =
    "kvmstub monitor commands:\n"
    "  monitor help          this list\n"
    "  monitor info          the machine: CPU mode, memory, image, exits, debug methods\n"
    "  monitor regs          control, segment and descriptor-table registers, decoded\n"
    "  monitor reset         back to the image's initial state\n"
    "  monitor serial        what the guest printed so far (the last 64 KiB)\n"
    "  monitor input TEXT    queue TEXT (and a newline) for the guest's UART to read\n"
    "  monitor until TEXT    stop when the guest prints TEXT; 'monitor until' alone lists\n"
    "                        the texts, 'monitor until clear' forgets them\n"
    "  monitor catch io PORT[-PORT] [in|out|any]\n"
    "                        stop after the guest's IN or OUT on those ports\n"
    "  monitor catch         list the catches; 'monitor catch delete N' removes one\n"
    "  monitor quit          end kvmstub\n";

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

static void info(struct stub_machine *m, unsigned tid, struct stub_text *t)
{
    struct vm *vm = m->vm;
    const struct vm_image *img = &m->image;
    const struct vm_stats *st = vm_stats(vm);
    struct vm_cpu *cpu = stub_machine_cpu(m, tid);
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
    say(t, "host probe:    int3 %s; DR0-DR3 execution breakpoints %s; data breakpoints %s; "
           "read-only slots %s\n",
        c->sw_bp == VM_BP_INT3                  ? "reaches kvmstub"
        : c->sw_bp == VM_BP_INT3_INTERNAL_ERROR ? "reaches kvmstub as an internal error"
                                                : "is not intercepted",
        c->hw_exec_bp ? "fire" : "do not fire", c->hw_data_bp ? "fire" : "do not fire",
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

static int regs(struct stub_machine *m, unsigned tid, struct stub_text *t)
{
    struct vm_cpu *c = stub_machine_cpu(m, tid);
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

static void serial(struct stub_machine *m, struct stub_text *t)
{
    uint8_t *buf = malloc(STUB_CONSOLE_HISTORY);
    if (!buf) {
        say(t, "out of memory\n");
        return;
    }
    size_t n = stub_console_history(&m->console, buf, STUB_CONSOLE_HISTORY);
    if (n == 0)
        say(t, "(the guest has printed nothing yet)\n");
    else if (m->console.total > n)
        say(t, "(the last %zu of %llu bytes)\n", n, (unsigned long long)m->console.total);
    stub_text_put(t, (const char *)buf, n);
    if (n && buf[n - 1] != '\n')
        say(t, "\n");
    free(buf);
}

static int until(struct stub_machine *m, const char *arg, size_t n, struct stub_text *t)
{
    if (n == 0) {
        if (!m->until.n)
            say(t, "no texts to stop at; 'monitor until TEXT' adds one\n");
        for (size_t i = 0; i < m->until.n; i++)
            say(t, "stops when the guest prints '%s'\n", m->until.texts[i].text);
        return 0;
    }
    if (n == 5 && strncmp(arg, "clear", 5) == 0) {
        stub_machine_until_clear(m);
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
    int r = stub_machine_until(m, text);
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

static int catch(struct stub_machine *m, const char *arg, size_t n, struct stub_text *t)
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

int stub_monitor_run(struct stub_machine *m, unsigned tid, const char *cmd, struct stub_text *t)
{
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
    if (word == 0 || IS("help")) {
        say(t, "%s", help_text);
    } else if (IS("info")) {
        info(m, tid, t);
    } else if (IS("regs")) {
        return regs(m, tid, t);
    } else if (IS("reset")) {
        char err[256];
        int r = stub_machine_reset(m, err, sizeof(err));
        if (r) {
            say(t, "reset failed: %s\n", err);
            return r;
        }
        say(t, "the guest is back at its entry point 0x%llx; gdb still shows the old registers "
               "until you run 'maintenance flush register-cache' or step\n",
            (unsigned long long)m->image.entry);
    } else if (IS("serial")) {
        serial(m, t);
    } else if (IS("input")) {
        size_t n = (size_t)(cmd + len - arg);
        size_t q = vm_console_input(m->vm, arg, n);
        q += vm_console_input(m->vm, "\n", 1);
        say(t, "queued %zu bytes for the guest's UART%s\n", q,
            q < n + 1 ? " (its input queue is full)" : "");
    } else if (IS("until")) {
        return until(m, arg, (size_t)(cmd + len - arg), t);
    } else if (IS("catch")) {
        return catch(m, arg, (size_t)(cmd + len - arg), t);
    } else if (IS("quit")) {
        say(t, "kvmstub exits\n");
        stub_machine_exit(m, 0);
    } else {
        say(t, "unknown monitor command '%.*s'; try 'monitor help'\n", (int)word, cmd);
        return -ENOENT;
    }
#undef IS
    return 0;
}
