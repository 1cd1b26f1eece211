/* rsp/command.h: turns one RSP payload into a typed command.
 *
 * rsp_parse() validates everything a packet carries: numbers are strict hex
 * that fits its field, data lengths match what the packet declares, and
 * nothing trails a complete command. It never allocates: pointers in the
 * command point into the payload, which the parser may rewrite in place
 * (hex data is decoded where it lies, strings are NUL-terminated there).
 *
 * A packet the stub does not implement parses as RSP_CMD_UNSUPPORTED (the
 * stub answers with the empty packet); a known packet with bad fields parses
 * as RSP_CMD_MALFORMED with a reason (the stub answers with an error). */
#ifndef RSP_COMMAND_H
#define RSP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rsp_cmd_type {
    RSP_CMD_UNSUPPORTED,
    RSP_CMD_MALFORMED,
    RSP_CMD_HALT_REASON,     /* ? */
    RSP_CMD_READ_REGS,       /* g */
    RSP_CMD_WRITE_REGS,      /* G data */
    RSP_CMD_READ_REG,        /* p n */
    RSP_CMD_WRITE_REG,       /* P n=data */
    RSP_CMD_READ_MEM,        /* m addr,len */
    RSP_CMD_WRITE_MEM,       /* M addr,len:hex */
    RSP_CMD_READ_MEM_BIN,    /* x addr,len */
    RSP_CMD_WRITE_MEM_BIN,   /* X addr,len:binary */
    RSP_CMD_CONTINUE,        /* c [addr], C sig[;addr] */
    RSP_CMD_STEP,            /* s [addr], S sig[;addr] */
    RSP_CMD_VCONT_QUERY,     /* vCont? */
    RSP_CMD_VCONT,           /* vCont;action[:tid]... */
    RSP_CMD_VMUSTREPLYEMPTY, /* vMustReplyEmpty */
    RSP_CMD_VKILL,           /* vKill;pid */
    RSP_CMD_INSERT_BP,       /* Z type,addr,kind */
    RSP_CMD_REMOVE_BP,       /* z type,addr,kind */
    RSP_CMD_SET_THREAD,      /* H op tid */
    RSP_CMD_THREAD_ALIVE,    /* T tid */
    RSP_CMD_QSUPPORTED,      /* qSupported[:features] */
    RSP_CMD_QXFER_FEATURES,  /* qXfer:features:read:annex:off,len */
    RSP_CMD_QC,              /* qC */
    RSP_CMD_QFTHREADINFO,    /* qfThreadInfo */
    RSP_CMD_QSTHREADINFO,    /* qsThreadInfo */
    RSP_CMD_QATTACHED,       /* qAttached[:pid] */
    RSP_CMD_QRCMD,           /* qRcmd,hex */
    RSP_CMD_QOFFSETS,        /* qOffsets */
    RSP_CMD_QSYMBOL,         /* qSymbol:... */
    RSP_CMD_START_NOACK,     /* QStartNoAckMode */
    RSP_CMD_KILL,            /* k */
    RSP_CMD_DETACH,          /* D[;pid], and LLDB's D1 (keep the target stopped) */
    /* LLDB's extensions (lldb/docs/resources/lldbgdbremote.md) */
    RSP_CMD_QHOSTINFO,          /* qHostInfo */
    RSP_CMD_QPROCESSINFO,       /* qProcessInfo */
    RSP_CMD_LIST_THREADS_STOP,  /* QListThreadsInStopReply */
    RSP_CMD_QDETACH_STOPPED,    /* qSupportsDetachAndStayStopped[:] */
    RSP_CMD_EXTENDED,           /* ! */
    RSP_CMD_RESTART,            /* R[XX] */
    RSP_CMD_VRUN,               /* vRun;filename[;arg]... (hex) */
    RSP_CMD_THREAD_EXTRA,       /* qThreadExtraInfo,tid */
    RSP_CMD_PHYMEM_SET,         /* Qqemu.PhyMemMode:0|1 */
    RSP_CMD_PHYMEM_GET,         /* qqemu.PhyMemMode */
    RSP_CMD_QXFER_THREADS,      /* qXfer:threads:read::off,len */
    RSP_CMD_REVERSE_STEP,       /* bs */
    RSP_CMD_REVERSE_CONTINUE,   /* bc */
};

/* One part of a thread id: a number, or the special values gdb uses. */
enum rsp_id_kind {
    RSP_ID_ANY, /* 0: any thread/process */
    RSP_ID_ALL, /* -1: all threads/processes */
    RSP_ID_NUM, /* a positive number in .num */
};

struct rsp_id {
    enum rsp_id_kind kind;
    uint64_t num;
};

/* "T", "-1", "0", "pP", "pP.T" (multiprocess). "pP" alone means all threads
 * of P, so tid is ALL then. */
struct rsp_tid {
    bool has_pid;
    struct rsp_id pid;
    struct rsp_id tid;
};

#define RSP_VCONT_MAX 16

struct rsp_vcont_action {
    char action;    /* 'c', 'C', 's', 'S', 't', 'r' */
    uint8_t signal; /* for 'C' and 'S' */
    uint64_t start; /* for 'r': step while start <= pc < end */
    uint64_t end;
    bool has_tid;
    struct rsp_tid tid;
};

/* Features gdb announces in qSupported. */
enum {
    RSP_FEAT_MULTIPROCESS = 1u << 0,
    RSP_FEAT_SWBREAK = 1u << 1,
    RSP_FEAT_HWBREAK = 1u << 2,
    RSP_FEAT_VCONT_SUPPORTED = 1u << 3,
    RSP_FEAT_NO_RESUMED = 1u << 4,
    RSP_FEAT_XML_I386 = 1u << 5, /* xmlRegisters=...i386... */
    RSP_FEAT_QRELOCINSN = 1u << 6,
    RSP_FEAT_FORK_EVENTS = 1u << 7,
    RSP_FEAT_VFORK_EVENTS = 1u << 8,
    RSP_FEAT_EXEC_EVENTS = 1u << 9,
    RSP_FEAT_THREAD_EVENTS = 1u << 10,
    RSP_FEAT_BINARY_UPLOAD = 1u << 11, /* speaks the 'b'-prefixed x reply */
};

enum rsp_bp_type {
    RSP_BP_SOFTWARE = 0,
    RSP_BP_HARDWARE = 1,
    RSP_BP_WRITE = 2,
    RSP_BP_READ = 3,
    RSP_BP_ACCESS = 4,
};

struct rsp_cmd {
    enum rsp_cmd_type type;
    const char *reason; /* RSP_CMD_MALFORMED: why, for logs */
    union {
        struct { /* m, M, x, X */
            uint64_t addr;
            uint64_t len;       /* as sent; the stub bounds it */
            const uint8_t *data; /* M, X: len bytes (decoded) */
        } mem;
        struct { /* p, P */
            uint64_t regno;
            const uint8_t *data; /* P: decoded value */
            size_t len;
        } reg;
        struct { /* G */
            const uint8_t *data;
            size_t len;
        } regs;
        struct { /* c, s, C, S */
            bool has_addr;
            uint64_t addr;
            bool has_signal;
            uint8_t signal;
        } resume;
        struct { /* vCont; */
            size_t count;
            struct rsp_vcont_action actions[RSP_VCONT_MAX];
        } vcont;
        struct { /* Z, z */
            enum rsp_bp_type type;
            uint64_t addr;
            uint64_t kind;
            bool has_conditions; /* ";X..." lists follow; not evaluated */
        } bp;
        struct { /* H */
            char op; /* 'g' or 'c' (others are malformed) */
            struct rsp_tid tid;
        } thread;
        struct rsp_tid alive; /* T, qThreadExtraInfo */
        bool phymem;          /* Qqemu.PhyMemMode */
        struct {              /* vRun */
            const char *args; /* as sent after "vRun;", NUL-terminated */
        } run;
        struct { /* qSupported */
            uint32_t features; /* RSP_FEAT_* */
            const char *raw;   /* feature list as sent, NUL-terminated, or "" */
        } supported;
        struct { /* qXfer:features:read */
            const char *annex; /* NUL-terminated, e.g. "target.xml" */
            uint64_t offset;
            uint64_t length;
        } xfer;
        struct { /* qRcmd */
            const char *text; /* decoded, NUL-terminated */
            size_t len;
        } rcmd;
        struct { /* D, vKill, qAttached */
            bool has_pid;
            uint64_t pid;
            bool keep_stopped; /* LLDB's D1 */
        } process;
    } u;
};

/* Parses payload[0..len) (payload[len] must be writable; the decoder leaves
 * a NUL there). Returns 0, or -EINVAL with cmd->type RSP_CMD_MALFORMED. */
int rsp_parse(uint8_t *payload, size_t len, struct rsp_cmd *cmd);

/* Name of a command type, for traces. */
const char *rsp_cmd_name(enum rsp_cmd_type type);

#endif
