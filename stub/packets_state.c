/* The guest's state as gdb reads and changes it: registers (g G p P),
 * memory (m M x X) and breakpoints (Z z). See packets.h. */
#include "packets.h"

#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- registers ---- */

/* A register as gdb's layout has it: a 32-bit layout reads the low half. */
static int reg_get(struct stub_session *s, const struct stub_reg *d, uint8_t *out)
{
    return STUB_CALL(s, reg_read, s->g_tid, d->id, out, d->size);
}

/* A 32-bit layout writes the low half; the rest of the register keeps what
 * gdb cannot express. */
static int reg_put(struct stub_session *s, const struct stub_reg *d, const uint8_t *in)
{
    uint8_t v[16] = {0};
    if (!stub_regmap_is_wide(d->id) && d->size < 8 && d->id != VM_REG_EFLAGS) {
        int err = STUB_CALL(s, reg_read, s->g_tid, d->id, v, 8);
        if (err)
            return err;
        memcpy(v, in, d->size);
        return STUB_CALL(s, reg_write, s->g_tid, d->id, v, 8);
    }
    return STUB_CALL(s, reg_write, s->g_tid, d->id, in, d->size);
}

static void h_read_regs(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    enum stub_arch arch = stub_packets_arch(s);
    size_t n, len = 0;
    const struct stub_reg *d = stub_regmap(arch, s->regsets, &n);
    n = stub_regmap_g_count(arch, s->regsets); /* see regmap.h */
    uint8_t all[STUB_REGMAP_MAX_BYTES];
    for (size_t i = 0; i < n; i++) {
        int err = reg_get(s, &d[i], all + len);
        if (err) {
            stub_packets_error(s, err);
            return;
        }
        len += d[i].size;
    }
    /* One hex run: the reply costs per byte, not per register. */
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    rsp_reply_hex(&r, all, len);
    rsp_reply_end(&r);
}

/* G data */
static void h_write_regs(struct stub_session *s, const struct rsp_args *a)
{
    enum stub_arch arch = stub_packets_arch(s);
    const uint8_t *data = a->arg[0].data;
    size_t len = a->arg[0].len;
    /* What 'g' gave, or every register. */
    bool all = len == stub_regmap_size(arch, s->regsets);
    if (!all && len != stub_regmap_g_size(arch, s->regsets)) {
        stub_packets_error(s, EINVAL);
        return;
    }
    size_t n;
    const struct stub_reg *d = stub_regmap(arch, s->regsets, &n);
    if (!all)
        n = stub_regmap_g_count(arch, s->regsets);
    for (size_t i = 0; i < n; data += d[i].size, i++) {
        int err = reg_put(s, &d[i], data);
        if (err) {
            stub_trace("G: register %s refused the value: %s", d[i].name, strerror(-err));
            stub_packets_error(s, err);
            return;
        }
    }
    stub_packets_reply(s, "OK");
}

static const struct stub_reg *reg_by_number(struct stub_session *s, uint64_t regno)
{
    return regno < SIZE_MAX ? stub_regmap_reg(stub_packets_arch(s), s->regsets, (size_t)regno)
                            : NULL;
}

/* p regno */
static void h_read_reg(struct stub_session *s, const struct rsp_args *a)
{
    const struct stub_reg *d = reg_by_number(s, a->arg[0].num);
    uint8_t v[16];
    if (!d) {
        stub_packets_error(s, EINVAL);
        return;
    }
    int err = reg_get(s, d, v);
    if (err) {
        stub_packets_error(s, err);
        return;
    }
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    rsp_reply_hex(&r, v, d->size);
    rsp_reply_end(&r);
}

/* P regno=value */
static void h_write_reg(struct stub_session *s, const struct rsp_args *a)
{
    const struct stub_reg *d = reg_by_number(s, a->arg[0].num);
    if (!d || a->arg[1].len != d->size) {
        stub_packets_error(s, EINVAL);
        return;
    }
    int err = reg_put(s, d, a->arg[1].data);
    if (err)
        stub_packets_error(s, err);
    else
        stub_packets_reply(s, "OK");
}

/* ---- memory ---- */

/* The x reply comes in two forms. gdb (16 on) uses x only when the stub
 * advertises binary-upload, and wants 'b' before the data (so that no data
 * differs from the empty "unsupported" reply); newer LLDBs do the same. LLDB
 * before that (Debian 12's LLDB 14 among them) ignores binary-upload,
 * probes with x0,0, takes OK as "supported" and wants the bare data. So the
 * probe decides: a client that sends it, and did not itself announce
 * binary-upload, gets bare data for the rest of the connection. */
static void read_mem(struct stub_session *s, uint64_t addr, uint64_t len, bool binary)
{
    if (len == 0) {
        if (binary && addr == 0 && !(s->features & RSP_FEAT_BINARY_UPLOAD))
            s->x_raw = true;
        if (binary)
            stub_packets_reply(s, "OK");
        else
            stub_packets_error(s, EINVAL);
        return;
    }
    if (addr + (len - 1) < addr) {
        stub_packets_error(s, EFAULT);
        return;
    }
    /* Longer requests get what fits; gdb asks again for the rest. */
    size_t n = len > STUB_PACKETS_MEM_MAX ? STUB_PACKETS_MEM_MAX : (size_t)len;
    uint8_t *buf = malloc(n);
    if (!buf) {
        stub_packets_error(s, ENOMEM);
        return;
    }
    size_t done = 0;
    int err = STUB_CALL(s, mem_read, s->g_tid, s->phys, addr, buf, n, &done);
    if (done == 0) {
        stub_packets_error(s, err ? err : EFAULT);
    } else {
        struct rsp_reply r;
        rsp_reply_begin(&r, &s->conn);
        if (binary) {
            if (!s->x_raw)
                rsp_reply_put(&r, "b", 1);
            rsp_reply_put(&r, buf, done);
        } else {
            rsp_reply_hex(&r, buf, done);
        }
        if (rsp_reply_end(&r))
            stub_packets_error(s, ENOMEM);
    }
    free(buf);
}

/* m addr,len */
static void h_read_mem_hex(struct stub_session *s, const struct rsp_args *a)
{
    read_mem(s, a->arg[0].num, a->arg[1].num, false);
}

/* x addr,len */
static void h_read_mem_binary(struct stub_session *s, const struct rsp_args *a)
{
    read_mem(s, a->arg[0].num, a->arg[1].num, true);
}

/* M addr,len:hex and X addr,len:binary: the data arrives decoded. */
static void h_write_mem(struct stub_session *s, const struct rsp_args *a)
{
    uint64_t addr = a->arg[0].num, len = a->arg[1].num;
    if (len == 0) {
        stub_packets_reply(s, "OK");
        return;
    }
    if (addr + (len - 1) < addr) {
        stub_packets_error(s, EFAULT);
        return;
    }
    int err = STUB_CALL(s, mem_write, s->g_tid, s->phys, addr, a->arg[2].data, (size_t)len);
    if (err)
        stub_packets_error(s, err);
    else
        stub_packets_reply(s, "OK");
}

/* ---- breakpoints ---- */

/* Z and z type,addr,kind[;conditions]: target-side conditions and commands
 * are only sent to a stub that advertised them; any sent anyway are
 * skipped, never evaluated. */
static void breakpoint(struct stub_session *s, const struct rsp_args *a, bool insert)
{
    enum rsp_bp_type type = (enum rsp_bp_type)a->arg[0].num;
    uint64_t addr = a->arg[1].num, kind = a->arg[2].num;
    static const enum stub_bp_kind kinds[] = {
        [RSP_BP_SOFTWARE] = STUB_BP_SOFTWARE, [RSP_BP_HARDWARE] = STUB_BP_HARDWARE,
        [RSP_BP_WRITE] = STUB_WATCH_WRITE,    [RSP_BP_READ] = STUB_WATCH_READ,
        [RSP_BP_ACCESS] = STUB_WATCH_ACCESS};
    enum stub_bp_kind k = kinds[type];
    /* x86 breakpoints are one byte; anything else is not ours. */
    if ((k <= STUB_BP_HARDWARE && kind != 1) || kind == 0) {
        stub_packets_error(s, EINVAL);
        return;
    }
    int err = insert ? STUB_CALL(s, bp_insert, s->g_tid, k, addr, kind)
                     : STUB_CALL(s, bp_remove, s->g_tid, k, addr, kind);
    /* Removing what is not there succeeds: the packets are idempotent. */
    if (err == -ENOENT && !insert)
        err = 0;
    if (err) {
        stub_trace("%s of type %d at 0x%llx failed: %s", insert ? "insert" : "remove", (int)type,
                   (unsigned long long)addr, strerror(-err));
        stub_packets_error(s, err);
    } else {
        stub_packets_reply(s, "OK");
    }
}

static void h_insert_breakpoint(struct stub_session *s, const struct rsp_args *a)
{
    breakpoint(s, a, true);
}

static void h_remove_breakpoint(struct stub_session *s, const struct rsp_args *a)
{
    breakpoint(s, a, false);
}

static const struct stub_packet packets[] = {
    {{"g", ""}, h_read_regs},
    {{"G", "x"}, h_write_regs},
    {{"p", "n"}, h_read_reg},
    {{"P", "n=x"}, h_write_reg},
    {{"m", "n,n"}, h_read_mem_hex},
    {{"x", "n,n"}, h_read_mem_binary},
    {{"M", "n,n:X"}, h_write_mem},
    {{"X", "n,n:b"}, h_write_mem},
    {{"Z", "k,n,n[;*]"}, h_insert_breakpoint},
    {{"z", "k,n,n[;*]"}, h_remove_breakpoint},
};

const struct stub_packet_table stub_packets_state = {packets, sizeof(packets) / sizeof(packets[0])};
