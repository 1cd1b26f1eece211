/* stub/options.h: kvmstub's command line.
 *
 * stub_options_parse() turns argv into a struct stub_options and never
 * exits or prints: it returns STUB_OPTIONS_RUN, STUB_OPTIONS_HELP or
 * STUB_OPTIONS_VERSION, or a negative errno with a one-line message in err
 * (main prints it and exits with status 2). */
#ifndef STUB_OPTIONS_H
#define STUB_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.h"
#include "regmap.h"
#include "vm/image.h"

#define STUB_DEFAULT_PORT 1234
#define STUB_MAX_INITIAL_REGS 32
#define STUB_MAX_UNTIL 16

enum stub_on_detach {
    STUB_DETACH_RUN,  /* the guest runs on without gdb's breakpoints (QEMU, gdbserver) */
    STUB_DETACH_STOP, /* it stays as gdb left it */
};

enum stub_on_hlt {
    STUB_HLT_STOP, /* report a stop to gdb */
    STUB_HLT_EXIT, /* end the guest with exit status 0 */
};


struct stub_initial_reg {
    enum vm_reg_id id;
    uint64_t value;
};

struct stub_options {
    const char *image;
    const char *listen;     /* address to bind */
    int port;               /* 0 picks a free one */
    const char *unix_path;  /* listen on this Unix socket instead (-gdb unix:PATH) */
    bool stdio;
    bool no_gdb;            /* listen nowhere (implies run) */
    uint64_t memory;
    bool has_memory;
    /* --machine: a board of vm_board_find(), or NULL for the image's
     * default (vm_board_default). */
    const struct vm_board_info *machine;
    unsigned ncpus;         /* --cpus; 1 unless given */
    bool has_ncpus;
    const char *initrd;     /* --initrd FILE, or NULL */
    struct vm_drive drives[VM_MAX_DRIVES]; /* --drive, in order */
    unsigned ndrives;
    struct vm_image_options image_opts;
    const char *serial;     /* copy serial output here; "-" for stdout */
    enum stub_on_hlt on_hlt;
    bool has_on_hlt;
    enum stub_on_detach on_detach;
    enum stub_gdb_arch gdb_arch;
    bool run;               /* start the guest without waiting for gdb */
    bool trace;
    enum vm_watch_method watch_method;
    bool force_hlt_breakpoints; /* use planted hlt even where int3 works */
    struct stub_initial_reg regs[STUB_MAX_INITIAL_REGS];
    size_t nregs;
    const char *until[STUB_MAX_UNTIL]; /* stop when the console prints one */
    size_t nuntil;
    double timeout;                    /* seconds; 0 for none */
    uint64_t history;                  /* bytes for reverse execution; 0: off */
    const char *restore;               /* a snapshot file to start from, or NULL */
    struct stub_peer_policy allow;     /* --allow-users beyond kvmstub's user and root */
    const char *snapshot_dir;          /* where monitor commands may write, or NULL: nowhere */
    uint64_t snapshot_memory;          /* bytes named snapshots may hold */
};

enum {
    STUB_OPTIONS_RUN = 0,
    STUB_OPTIONS_HELP = 1,
    STUB_OPTIONS_VERSION = 2,
};

int stub_options_parse(int argc, char **argv, struct stub_options *o, char *err, size_t errlen);
/* The --help text. */
const char *stub_usage(void);
/* QEMU's spellings are taken too (-s, -S, -gdb tcp::PORT, -gdb unix:PATH), so
 * commands from tutorials and IDE launch configurations work as they are. */

/* Parses sizes like 64M, 512K, 1G or a plain byte count. */
int stub_parse_size(const char *s, uint64_t *out);
/* Parses 0x-prefixed hex or decimal. */
int stub_parse_u64(const char *s, uint64_t *out);

#endif
