/* rsp/command.h: which packet kind a payload is, and its fields, read by
 * the kind's schema.
 *
 * The caller owns the table of packet kinds (the stub keeps each entry
 * beside its handler); this module knows no packet, only how a name is
 * matched and the grammar of the fields that follow it. Reading validates
 * everything a packet carries: numbers are strict hex that fits its field,
 * data lengths match what the packet declares, and nothing trails a
 * complete packet. It never allocates: fields point into the payload, which
 * the reader may rewrite in place (hex data is decoded where it lies,
 * strings are NUL-terminated there).
 *
 * A payload no name matches is a packet the caller does not implement (the
 * stub answers with the empty packet); a matched packet whose fields break
 * its schema is malformed, with a reason (the stub answers with an error). */
#ifndef RSP_COMMAND_H
#define RSP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One packet kind.
 *
 * name: what the payload begins with. A name that begins with 'q', 'Q' or
 * 'v' is a word (the manual's general queries and v packets): it matches
 * only when the payload ends after it or goes on with ':', ';', ',' or '?'
 * (or when the name itself ends with one of those), so "qC" is not "qCRC".
 * Any other name is a prefix: one-letter packets carry their fields right
 * after the letter. Where several names match, the longest wins ("D1" over
 * "D", "vCont?" over "vCont"), whatever the order of the table.
 *
 * schema: the grammar of what follows the name, read left to right. Each
 * letter below reads one field into the next of args->arg[]; "[...]" is an
 * optional part, read only if the payload has not ended where it starts
 * (its fields are then not .present; no nesting); "{...}" is one of the
 * characters listed, its value in .num; any other character must be there
 * as written. After the schema the payload must end.
 *   n  hex number, at most 64 bits (.num)
 *   g  gdb signal number, hex, at most ff (.num)
 *   k  breakpoint type, hex, 0 to 4 (.num, an enum rsp_bp_type)
 *   t  thread id: "T", "-1", "0", "pP" or "pP.T" (.tid)
 *   x  hex data to the end, at least one byte, decoded in place (.data, .len)
 *   X  hex data to the end, exactly as many bytes as the number before (M)
 *   b  binary data to the end, exactly as many bytes as the number before (X)
 *   r  hex text to the end, maybe empty, decoded in place, NUL-terminated
 *      (.text, .len; a NUL inside is kept, .len tells)
 *   a  annex: text up to the next ':', which it consumes; NUL-terminated
 *   s  text to the end, without NUL (.text, .len)
 *   *  anything to the end, unread (.data, .len)
 *   V  vCont actions: one or more ";action[:tid]" (args->vcont; .num counts)
 *   F  qSupported's ';'-separated features (.num: RSP_FEAT_*; .text as sent)
 */
struct rsp_command {
    const char *name;
    const char *schema;
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

/* Fields per schema; a schema with more is refused as malformed. */
#define RSP_ARGS_MAX 6

struct rsp_arg {
    bool present;        /* false: an optional part that was not sent */
    uint64_t num;        /* n, g, k, {}, V, F */
    const uint8_t *data; /* x, X, b, r, a, s, *: where it lies in the payload */
    const char *text;    /* r, a, s, F: the same, NUL-terminated; else NULL */
    size_t len;
    struct rsp_tid tid; /* t */
};

struct rsp_args {
    const char *reason; /* malformed: why, for logs */
    size_t count;       /* fields read */
    struct rsp_arg arg[RSP_ARGS_MAX];
    struct rsp_vcont_action vcont[RSP_VCONT_MAX]; /* V */
};

/* The length of def's name if payload[0..len) is a packet of that kind, or
 * 0 (see struct rsp_command for the rules). */
size_t rsp_command_match(const struct rsp_command *def, const uint8_t *payload, size_t len);

/* Reads the fields of payload[0..len), a packet that def matches, into
 * args (payload[len] must be writable; the reader leaves a NUL there).
 * Returns 0, or -EINVAL with args->reason saying what is malformed. */
int rsp_command_read(const struct rsp_command *def, uint8_t *payload, size_t len,
                    struct rsp_args *args);

#endif
