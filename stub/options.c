#include "options.h"

#include "regmap.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: kvmstub [OPTIONS] IMAGE\n"
    "Run a bare-metal x86 guest under KVM and debug it with gdb:\n"
    "    gdb -ex 'target remote :1234'\n"
    "\n"
    "Connection:\n"
    "  --listen ADDR        address to listen on (default 127.0.0.1); anyone who can\n"
    "                       connect controls the guest, so an address off loopback\n"
    "                       needs --allow-users all\n"
    "  --port N             TCP port (default 1234; 0 picks a free one)\n"
    "  --stdio              speak the protocol on stdin/stdout instead, for\n"
    "                       gdb -ex 'target remote | kvmstub --stdio IMAGE'\n"
    "  --no-gdb             listen nowhere: run the guest to its end (implies --run)\n"
    "  -s, -S, -gdb tcp:[ADDR]:PORT, -gdb unix:PATH\n"
    "                       QEMU's spellings: -s is --port 1234, -S stays stopped at\n"
    "                       start (the default), -gdb unix:PATH listens on a Unix socket\n"
    "  --gdb-arch A         auto, i8086, i386 or amd64: the register layout gdb gets\n"
    "                       (auto: from the CPU mode when gdb connects; amd64 follows a\n"
    "                       guest through every mode switch, as QEMU does)\n"
    "  --allow-users all|UID[,UID...]\n"
    "                       who may connect besides kvmstub's own user and root\n"
    "                       (default nobody else; all: anyone, for --listen off\n"
    "                       loopback); the kernel names each peer's uid\n"
    "  --on-detach run|stop what the guest does when gdb detaches or goes away:\n"
    "                       run on without gdb's breakpoints (default), or stay\n"
    "                       stopped\n"
    "Guest:\n"
    "  --machine bare|pc    bare: no interrupts, polled UART (default but for\n"
    "                       bzImages); pc: PIC, IOAPIC, LAPIC, PIT, UART on IRQ 4\n"
    "  --cpus N             vCPUs, each a gdb thread (default 1; more than one\n"
    "                       needs --machine pc; at most 64 or the host's KVM limit)\n"
    "  --memory SIZE        guest RAM, with K, M or G (default 64M, 128M on pc;\n"
    "                       at most 3G)\n"
    "  --format FMT         auto, bin, elf, multiboot or bzimage (default auto)\n"
    "  --mode MODE          real, protected or long: CPU mode for a flat binary\n"
    "                       (default real)\n"
    "  --load ADDR          load address of a flat binary (default 0x1000)\n"
    "  --entry ADDR         start here instead of the image's entry point\n"
    "  --cmdline STR        multiboot command line, or words for Linux after\n"
    "                       kvmstub's default (console=ttyS0 ..., see README)\n"
    "  --initrd FILE        initial RAM disk for a Linux bzImage\n"
    "  --drive FILE[,readonly][,transport=pci|mmio]\n"
    "                       a raw disk image as a virtio block device (pc only;\n"
    "                       repeatable: Linux's vda, vdb, ...; default transport pci)\n"
    "  --reg NAME=VALUE     set a register before the guest starts (repeatable),\n"
    "                       e.g. --reg rax=2\n"
    "";

/* In two parts: ISO C promises string literals of 4095 bytes only. */
static const char usage_running[] =
    "Running:\n"
    "  --run                start the guest at once instead of waiting for gdb (on a\n"
    "                       free port unless --port, --listen or --stdio is given)\n"
    "  --until TEXT         stop when the guest's console output contains TEXT\n"
    "                       (repeatable); without gdb, exit with status 0 there\n"
    "  --timeout SECONDS    end a guest that has not exited by then: status 124\n"
    "  --history SIZE       memory for reverse execution's checkpoints (default 256M;\n"
    "                       the oldest go first; 0 turns history off)\n"
    "  --restore FILE       start the machine saved by 'monitor snapshot write FILE'\n"
    "                       (IMAGE may then be left out: the file names it)\n"
    "  --snapshot-dir DIR   let 'monitor snapshot write NAME' create files in DIR, and\n"
    "                       only there (default: nowhere, the command is refused)\n"
    "  --snapshot-memory SIZE\n"
    "                       memory for named snapshots and history's checkpoints\n"
    "                       together (default 4G; a save past it is refused)\n"
    "  --on-hlt stop|exit   bare only: report hlt to gdb as a stop (default), or end\n"
    "                       the guest with exit status 0\n"
    "  --serial FILE|-      also copy the guest's serial output to FILE; - is the\n"
    "                       terminal: output to stdout, stdin to the guest's UART\n"
    "  --watchpoints M      auto, debug-registers or page-traps (default auto: debug\n"
    "                       registers where the host honours them)\n"
    "  --hlt-breakpoints    plant hlt for software breakpoints even where int3 works\n"
    "  --trace              log every packet and every unhandled port on stderr\n"
    "  -h, --help           this text, and exit\n"
    "  --version            kvmstub's version and the git commit it was built from\n"
    "\n"
    "With --no-gdb --serial - (and --on-hlt exit, --until, --timeout), kvmstub is\n"
    "a small KVM runner whose exit status is the guest's (the value written to\n"
    "port 0xf4), 0 (--on-hlt exit, --until matched), 124 (--timeout) or 128+N\n"
    "for a stop only a debugger could go on from (N: the host's number of the\n"
    "signal gdb would show, as a shell reports it); see README for the table.\n";

const char *stub_usage(void)
{
    static char text[sizeof(usage) + sizeof(usage_running)];
    if (!text[0])
        snprintf(text, sizeof(text), "%s%s", usage, usage_running);
    return text;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int stub_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

int stub_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -EINVAL;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B')
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

enum {
    OPT_LISTEN = 256, OPT_PORT, OPT_STDIO, OPT_MEMORY, OPT_FORMAT, OPT_MODE, OPT_LOAD, OPT_ENTRY,
    OPT_CMDLINE, OPT_REG, OPT_RUN, OPT_ON_HLT, OPT_SERIAL, OPT_WATCH, OPT_HLT_BP, OPT_TRACE,
    OPT_HELP, OPT_VERSION, OPT_NO_GDB, OPT_UNTIL, OPT_TIMEOUT, OPT_GDB, OPT_GDB_ARCH,
    OPT_ON_DETACH, OPT_HISTORY, OPT_RESTORE, OPT_MACHINE, OPT_INITRD, OPT_CPUS,
    OPT_ALLOW_USERS, OPT_SNAPSHOT_DIR, OPT_SNAPSHOT_MEMORY, OPT_DRIVE,
};

static const struct option longopts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"port", required_argument, NULL, OPT_PORT},
    {"stdio", no_argument, NULL, OPT_STDIO},
    {"no-gdb", no_argument, NULL, OPT_NO_GDB},
    {"gdb", required_argument, NULL, OPT_GDB},
    {"gdb-arch", required_argument, NULL, OPT_GDB_ARCH},
    {"on-detach", required_argument, NULL, OPT_ON_DETACH},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"history", required_argument, NULL, OPT_HISTORY},
    {"restore", required_argument, NULL, OPT_RESTORE},
    {"allow-users", required_argument, NULL, OPT_ALLOW_USERS},
    {"snapshot-dir", required_argument, NULL, OPT_SNAPSHOT_DIR},
    {"snapshot-memory", required_argument, NULL, OPT_SNAPSHOT_MEMORY},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"machine", required_argument, NULL, OPT_MACHINE},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"drive", required_argument, NULL, OPT_DRIVE},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"mode", required_argument, NULL, OPT_MODE},
    {"load", required_argument, NULL, OPT_LOAD},
    {"entry", required_argument, NULL, OPT_ENTRY},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"reg", required_argument, NULL, OPT_REG},
    {"run", no_argument, NULL, OPT_RUN},
    {"on-hlt", required_argument, NULL, OPT_ON_HLT},
    {"serial", required_argument, NULL, OPT_SERIAL},
    {"watchpoints", required_argument, NULL, OPT_WATCH},
    {"hlt-breakpoints", no_argument, NULL, OPT_HLT_BP},
    {"trace", no_argument, NULL, OPT_TRACE},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int parse_reg(struct stub_options *o, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    char name[32];
    if (!eq || (size_t)(eq - arg) >= sizeof(name) || eq == arg)
        return fail(err, errlen, "--reg needs NAME=VALUE, e.g. --reg rax=2 (got '%s')", arg);
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = 0;
    enum vm_reg_id id;
    if (stub_regmap_find(name, &id) || (id >= VM_REG_ST0 && id < VM_REG_ST0 + 8) ||
        (id >= VM_REG_XMM0 && id < VM_REG_XMM0 + 16))
        return fail(err, errlen,
                    "--reg: unknown or unsupported register '%s' (use names gdb shows, like rax, "
                    "eip, cr3)",
                    name);
    uint64_t v;
    if (stub_parse_u64(eq + 1, &v))
        return fail(err, errlen, "--reg %s: '%s' is not a number (decimal or 0x hex)", name,
                    eq + 1);
    if (o->nregs >= STUB_MAX_INITIAL_REGS)
        return fail(err, errlen, "--reg given more than %d times", STUB_MAX_INITIAL_REGS);
    o->regs[o->nregs++] = (struct stub_initial_reg){id, v};
    return 0;
}

/* FILE[,readonly][,transport=pci|mmio]: the file name ends at the first
 * comma (QEMU's ",," escape is not supported). */
static int parse_drive(struct stub_options *o, const char *arg, char *err, size_t errlen)
{
    static char paths[VM_MAX_DRIVES][4096];
    if (o->ndrives >= VM_MAX_DRIVES)
        return fail(err, errlen, "--drive given more than %u times", VM_MAX_DRIVES);
    char *copy = paths[o->ndrives];
    if (strlen(arg) >= sizeof(paths[0]))
        return fail(err, errlen, "--drive: '%.40s...' is too long", arg);
    strcpy(copy, arg);
    struct vm_drive d = {.path = copy, .transport = VM_DRIVE_AUTO};
    char *opt = strchr(copy, ',');
    if (opt)
        *opt++ = 0;
    if (!*copy)
        return fail(err, errlen, "--drive needs a file: --drive FILE[,readonly][,transport=pci|mmio]");
    while (opt) {
        char *next = strchr(opt, ',');
        if (next)
            *next++ = 0;
        if (strcmp(opt, "readonly") == 0 || strcmp(opt, "readonly=on") == 0)
            d.readonly = true;
        else if (strcmp(opt, "transport=pci") == 0)
            d.transport = VM_DRIVE_PCI;
        else if (strcmp(opt, "transport=mmio") == 0)
            d.transport = VM_DRIVE_MMIO;
        else
            return fail(err, errlen,
                        "--drive %s: '%s' is not readonly, transport=pci or transport=mmio",
                        copy, opt);
        opt = next;
    }
    o->drives[o->ndrives++] = d;
    return 0;
}

/* QEMU's -gdb DEV: tcp:[HOST]:PORT (an empty host is loopback here: QEMU
 * listens everywhere, which gives the guest to anyone on the network) or
 * unix:PATH, either maybe followed by ",server,nowait"-style options. */
static int parse_gdb_dev(struct stub_options *o, const char *dev, char *err, size_t errlen)
{
    static char copy[512];
    if (strlen(dev) >= sizeof(copy))
        return fail(err, errlen, "-gdb: '%s' is too long", dev);
    strcpy(copy, dev);
    char *comma = strchr(copy, ',');
    if (comma)
        *comma = 0; /* server, nowait, wait=off...: kvmstub always serves and never waits */
    if (strncmp(copy, "unix:", 5) == 0) {
        if (!copy[5])
            return fail(err, errlen, "-gdb unix: needs a path, e.g. -gdb unix:/tmp/kvmstub.sock");
        o->unix_path = copy + 5;
        return 0;
    }
    char *p = strncmp(copy, "tcp:", 4) == 0 ? copy + 4 : copy;
    char *colon = strrchr(p, ':');
    uint64_t port;
    if (!colon || stub_parse_u64(colon + 1, &port) || port > 65535)
        return fail(err, errlen,
                    "-gdb: '%s' is not tcp:[ADDR]:PORT or unix:PATH (e.g. -gdb tcp::1234)", dev);
    *colon = 0;
    if (*p)
        o->listen = p;
    o->port = (int)port;
    return 0;
}

int stub_options_parse(int argc, char **argv, struct stub_options *o, char *err, size_t errlen)
{
    /* getopt would read -gdb as -g -d -b. */
    static char *args[256];
    if (argc > (int)(sizeof(args) / sizeof(args[0])) - 1)
        return fail(err, errlen, "too many arguments (%d)", argc);
    for (int i = 0; i < argc; i++)
        args[i] = strcmp(argv[i], "-gdb") == 0 ? "--gdb" : argv[i];
    args[argc] = NULL;
    argv = args;
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1";
    o->port = STUB_DEFAULT_PORT;
    o->memory = VM_DEFAULT_RAM;
    o->ncpus = 1;
    o->history = 256ull << 20;
    o->snapshot_memory = 4ull << 30; /* STUB_SNAPSTORE_DEFAULT_LIMIT */
    o->on_hlt = STUB_HLT_STOP;
    o->watch_method = VM_WATCH_AUTO;
    optind = 1;
    opterr = 0;
    int c;
    uint64_t v;
    bool where_given = false, stopped_given = false;
    while ((c = getopt_long(argc, argv, "+:hsS", longopts, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case OPT_LISTEN:
            o->listen = a;
            where_given = true;
            break;
        case OPT_PORT:
            if (stub_parse_u64(a, &v) || v > 65535)
                return fail(err, errlen, "--port: '%s' is not a port number (0-65535)", a);
            o->port = (int)v;
            where_given = true;
            break;
        case OPT_STDIO:
            o->stdio = true;
            where_given = true;
            break;
        case OPT_NO_GDB:
            o->no_gdb = true;
            break;
        case 's':
            o->port = STUB_DEFAULT_PORT;
            where_given = true;
            break;
        case 'S':
            stopped_given = true;
            break;
        case OPT_GDB: {
            int r = parse_gdb_dev(o, a, err, errlen);
            if (r)
                return r;
            where_given = true;
            break;
        }
        case OPT_GDB_ARCH:
            if (strcmp(a, "auto") == 0)
                o->gdb_arch = STUB_GDB_ARCH_AUTO;
            else if (strcmp(a, "i8086") == 0)
                o->gdb_arch = STUB_GDB_ARCH_I8086;
            else if (strcmp(a, "i386") == 0)
                o->gdb_arch = STUB_GDB_ARCH_I386;
            else if (strcmp(a, "amd64") == 0)
                o->gdb_arch = STUB_GDB_ARCH_AMD64;
            else
                return fail(err, errlen, "--gdb-arch: '%s' is not auto, i8086, i386 or amd64", a);
            break;
        case OPT_ON_DETACH:
            if (strcmp(a, "run") == 0)
                o->on_detach = STUB_DETACH_RUN;
            else if (strcmp(a, "stop") == 0)
                o->on_detach = STUB_DETACH_STOP;
            else
                return fail(err, errlen, "--on-detach: '%s' is not run or stop", a);
            break;
        case OPT_UNTIL:
            if (!*a || strlen(a) > 256)
                return fail(err, errlen, "--until: give a text of 1 to 256 bytes");
            if (o->nuntil >= STUB_MAX_UNTIL)
                return fail(err, errlen, "--until given more than %d times", STUB_MAX_UNTIL);
            o->until[o->nuntil++] = a;
            break;
        case OPT_TIMEOUT: {
            char *end;
            errno = 0;
            double t = strtod(a, &end);
            if (errno || end == a || *end || !(t > 0 && t <= 1e7))
                return fail(err, errlen, "--timeout: '%s' is not a number of seconds above 0", a);
            o->timeout = t;
            break;
        }
        case OPT_HISTORY:
            if (stub_parse_size(a, &o->history))
                return fail(err, errlen, "--history: '%s' is not a size (like 256M, or 0 for none)",
                            a);
            break;
        case OPT_RESTORE:
            o->restore = a;
            break;
        case OPT_ALLOW_USERS:
            if (stub_peer_policy_parse(a, &o->allow))
                return fail(err, errlen,
                            "--allow-users: '%s' is not all or a list of numeric uids like "
                            "1000,1001 (at most %d)",
                            a, STUB_PEER_MAX_USERS);
            break;
        case OPT_SNAPSHOT_DIR:
            if (!*a)
                return fail(err, errlen, "--snapshot-dir needs a directory");
            o->snapshot_dir = a;
            break;
        case OPT_SNAPSHOT_MEMORY:
            if (stub_parse_size(a, &o->snapshot_memory))
                return fail(err, errlen, "--snapshot-memory: '%s' is not a size (like 1G)", a);
            break;
        case OPT_MEMORY:
            if (stub_parse_size(a, &v))
                return fail(err, errlen, "--memory: '%s' is not a size (like 64M or 1G)", a);
            if (v < VM_MIN_RAM || v > VM_MAX_RAM || v % 4096)
                return fail(err, errlen,
                            "--memory %s: give between 1M and 3G, in whole 4K pages", a);
            o->memory = v;
            o->has_memory = true;
            break;
        case OPT_CPUS: {
            char *end;
            errno = 0;
            unsigned long n = strtoul(a, &end, 10);
            if (errno || end == a || *end || *a == '-' || n < 1 || n > VM_MAX_CPUS)
                return fail(err, errlen, "--cpus: '%s' is not a number of CPUs from 1 to %u", a,
                            VM_MAX_CPUS);
            o->ncpus = (unsigned)n;
            o->has_ncpus = true;
            break;
        }
        case OPT_MACHINE:
            if (!(o->machine = vm_board_find(a))) {
                char names[128];
                vm_board_names(names, sizeof(names));
                return fail(err, errlen, "--machine: '%s' is not %s", a, names);
            }
            break;
        case OPT_INITRD:
            o->initrd = a;
            break;
        case OPT_DRIVE: {
            int r = parse_drive(o, a, err, errlen);
            if (r)
                return r;
            break;
        }
        case OPT_FORMAT:
            if (strcmp(a, "auto") == 0)
                o->image_opts.format = VM_IMAGE_AUTO;
            else if (strcmp(a, "bin") == 0)
                o->image_opts.format = VM_IMAGE_BIN;
            else if (strcmp(a, "elf") == 0)
                o->image_opts.format = VM_IMAGE_ELF;
            else if (strcmp(a, "multiboot") == 0)
                o->image_opts.format = VM_IMAGE_MULTIBOOT;
            else if (strcmp(a, "bzimage") == 0)
                o->image_opts.format = VM_IMAGE_BZIMAGE;
            else
                return fail(err, errlen,
                            "--format: '%s' is not auto, bin, elf, multiboot or bzimage", a);
            break;
        case OPT_MODE:
            if (strcmp(a, "real") == 0)
                o->image_opts.mode = VM_MODE_REAL;
            else if (strcmp(a, "protected") == 0)
                o->image_opts.mode = VM_MODE_PROTECTED;
            else if (strcmp(a, "long") == 0)
                o->image_opts.mode = VM_MODE_LONG;
            else
                return fail(err, errlen, "--mode: '%s' is not real, protected or long", a);
            o->image_opts.has_mode = true;
            break;
        case OPT_LOAD:
            if (stub_parse_u64(a, &v))
                return fail(err, errlen, "--load: '%s' is not an address", a);
            o->image_opts.has_load = true;
            o->image_opts.load = v;
            break;
        case OPT_ENTRY:
            if (stub_parse_u64(a, &v))
                return fail(err, errlen, "--entry: '%s' is not an address", a);
            o->image_opts.has_entry = true;
            o->image_opts.entry = v;
            break;
        case OPT_CMDLINE:
            o->image_opts.cmdline = a;
            break;
        case OPT_REG: {
            int r = parse_reg(o, a, err, errlen);
            if (r)
                return r;
            break;
        }
        case OPT_RUN:
            o->run = true;
            break;
        case OPT_ON_HLT:
            if (strcmp(a, "stop") == 0)
                o->on_hlt = STUB_HLT_STOP;
            else if (strcmp(a, "exit") == 0)
                o->on_hlt = STUB_HLT_EXIT;
            else
                return fail(err, errlen, "--on-hlt: '%s' is not stop or exit", a);
            o->has_on_hlt = true;
            break;
        case OPT_SERIAL:
            o->serial = a;
            break;
        case OPT_WATCH:
            if (strcmp(a, "auto") == 0)
                o->watch_method = VM_WATCH_AUTO;
            else if (strcmp(a, "debug-registers") == 0)
                o->watch_method = VM_WATCH_DEBUG_REGS;
            else if (strcmp(a, "page-traps") == 0)
                o->watch_method = VM_WATCH_PAGE_TRAPS;
            else
                return fail(err, errlen,
                            "--watchpoints: '%s' is not auto, debug-registers or page-traps", a);
            break;
        case OPT_HLT_BP:
            o->force_hlt_breakpoints = true;
            break;
        case OPT_TRACE:
            o->trace = true;
            break;
        case 'h':
        case OPT_HELP:
            return STUB_OPTIONS_HELP;
        case OPT_VERSION:
            return STUB_OPTIONS_VERSION;
        case ':':
            return fail(err, errlen, "%s needs a value; see kvmstub --help", argv[optind - 1]);
        default:
            if (optopt)
                return fail(err, errlen, "unknown option -%c; see kvmstub --help", optopt);
            return fail(err, errlen, "unknown option %s; see kvmstub --help", argv[optind - 1]);
        }
    }
    if (optind >= argc && !o->restore)
        return fail(err, errlen, "no image given; usage: kvmstub [OPTIONS] IMAGE (see --help)");
    if (optind + 1 < argc)
        return fail(err, errlen, "one image only; '%s' is extra (see --help)", argv[optind + 1]);
    o->image = optind < argc ? argv[optind] : NULL;
    if (o->stdio && o->serial && strcmp(o->serial, "-") == 0)
        return fail(err, errlen,
                    "--serial - and --stdio both want stdout; give --serial a file instead");
    if (stopped_given && o->run)
        return fail(err, errlen, "-S (stay stopped) and --run contradict each other; drop one");
    if (o->unix_path && o->stdio)
        return fail(err, errlen, "-gdb unix:PATH and --stdio are two places; give one");
    if (o->no_gdb && where_given)
        return fail(err, errlen, "--no-gdb listens nowhere: drop --port, --listen and --stdio");
    if (o->no_gdb)
        o->run = true;
    /* A runner needs no fixed port: many of them start at once in CI. */
    if (o->run && !where_given)
        o->port = 0;
    return STUB_OPTIONS_RUN;
}
