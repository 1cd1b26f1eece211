/* kvmstub: a GDB remote stub for bare-metal x86 guests under KVM. This is
 * the only place that exits: everything below returns errors. */
#include "kvmstub_version.h"
#include "log.h"
#include "control.h"
#include "options.h"
#include "record.h"
#include "record_kvm.h"
#include "server.h"
#include "snapstore.h"
#include "target_kvm.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static void on_signal(uv_signal_t *h, int signum)
{
    struct stub_shutdown *sd = h->data;
    stub_log("%s received; exiting", signum == SIGINT ? "SIGINT" : "SIGTERM");
    sd->notify = NULL; /* no waiting for gdb: a signal means now */
    stub_shutdown_request(sd, 128 + signum);
    uv_stop(h->loop);
}

/* With --no-gdb nobody has replies waiting: the loop ends at once. */
static void stop_loop(void *ctx)
{
    uv_stop(ctx);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int main(int argc, char **argv)
{
    struct stub_options opts;
    char err[512];
    int r = stub_options_parse(argc, argv, &opts, err, sizeof(err));
    if (r == STUB_OPTIONS_HELP) {
        fputs(stub_usage(), stdout);
        return 0;
    }
    if (r == STUB_OPTIONS_VERSION) {
        printf("kvmstub %s\n", KVMSTUB_VERSION);
        return 0;
    }
    if (r < 0) {
        fprintf(stderr, "kvmstub: %s\n", err);
        return 2;
    }
    stub_set_trace(opts.trace);
    /* A gdb that vanishes must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t *loop = uv_default_loop();
    struct stub_shutdown shutdown = {0};
    struct stub_control m;
    bool image_problem = false;
    r = stub_control_init(&m, &opts, loop, &shutdown, err, sizeof(err), &image_problem);
    if (r) {
        fprintf(stderr, "kvmstub: %s\n", err);
        stub_control_free(&m);
        return image_problem ? 2 : 1;
    }
    stub_snapstore_set_limit(m.snapstore, opts.snapshot_memory);
    if (opts.snapshot_dir &&
        (r = stub_snapstore_set_dir(m.snapstore, opts.snapshot_dir, err, sizeof(err)))) {
        fprintf(stderr, "kvmstub: %s\n", err);
        stub_control_free(&m);
        return 2;
    }
    /* The stack: the machine, the KVM target over it, and (where a replay
     * can repeat a run: the bare board, --history not 0) the record target
     * over that; the server talks to the top. */
    struct stub_target target = stub_target_kvm(&m);
    struct stub_record *record = NULL;
    if (!opts.history) {
        m.reverse_refusal = "no execution history to go back in: --history 0 turned it off";
        m.record_refusal = "history is off (--history 0)";
    } else if (m.board->irqchip) {
        m.reverse_refusal = m.record_refusal =
            "reverse execution needs the bare board: under KVM the timing of interrupts (PIT, "
            "LAPIC timer, devices) is not reproducible, so a replay would not repeat the "
            "recorded run";
    } else {
        struct stub_checkpoint_ops checkpoints = stub_record_kvm_checkpoints(&m);
        if (stub_record_create(&record, target, &checkpoints, loop, opts.history)) {
            fprintf(stderr, "kvmstub: out of memory\n");
            stub_control_free(&m);
            return 1;
        }
        stub_snapstore_on_load(m.snapstore, stub_record_jumped, record);
        target = stub_record_target(record);
    }
    struct stub_server srv = {0};
    struct stub_server_config scfg = {
        .listen = opts.listen, .port = opts.port, .unix_path = opts.unix_path, .stdio = opts.stdio,
        .gdb_arch = opts.gdb_arch, .allow = &opts.allow};
    if (opts.no_gdb) {
        shutdown.notify = stop_loop;
        shutdown.ctx = loop;
        r = 0;
    } else {
        r = stub_server_start(&srv, &scfg, &target, &shutdown, loop, err, sizeof(err));
    }
    if (r) {
        fprintf(stderr, "kvmstub: %s\n", err);
        stub_server_stop(&srv);
        stub_record_free(record);
        stub_control_free(&m);
        uv_walk(loop, close_any, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        return 1;
    }
    m.port = srv.port;
    uv_signal_t sigint, sigterm;
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sigterm);
    sigint.data = sigterm.data = &shutdown;
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);

    if (opts.run)
        stub_control_resume_all(&m, STUB_ACTION_CONTINUE);
    if (!shutdown.requested)
        uv_run(loop, UV_RUN_DEFAULT);

    int status = shutdown.status;
    stub_server_stop(&srv);
    stub_record_free(record);
    stub_control_free(&m);
    uv_walk(loop, close_any, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return status;
}
