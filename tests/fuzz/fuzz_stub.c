/* fuzz_stub: libFuzzer harness for kvmstub's packet handling against a real
 * guest on a real /dev/kvm.
 *
 * One machine (the e2e fixture guest, small RAM) and its vCPU thread live
 * for the whole run; every input gets the machine reset to its image, a new
 * session, and its bytes. An input whose first byte is odd is a list of
 * payloads separated by newlines, each framed with a correct checksum (so
 * the fuzzer reaches the handlers instead of the checksum check); an even
 * first byte sends the rest as a raw stream. Resumes run the guest for real;
 * a run that does not stop on its own is interrupted, as gdb's Ctrl-C
 * would. Crashes, sanitizer reports and hangs are the findings. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "rsp/packet.h"
#include "stub/control.h"
#include "stub/options.h"
#include "stub/session.h"
#include "stub/target_kvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct stub_options opts;
static struct stub_control machine;
static struct stub_shutdown stop_request; /* not "shutdown": sys/socket.h has one */
static uv_loop_t *loop;
static bool closed;
static struct stub_target target = {0};

static void link_write(void *ctx, const uint8_t *data, size_t n)
{
    (void)ctx;
    (void)data;
    (void)n;
}

static void link_close(void *ctx)
{
    (void)ctx;
    closed = true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char *args[] = {"kvmstub", "--memory", "4M", FUZZ_GUEST, NULL};
    char err[512];
    if (stub_options_parse(4, args, &opts, err, sizeof(err)) != STUB_OPTIONS_RUN) {
        fprintf(stderr, "fuzz_stub: %s\n", err);
        abort();
    }
    loop = uv_default_loop();
    bool image_problem;
    if (stub_control_init(&machine, &opts, loop, &stop_request, err, sizeof(err), &image_problem)) {
        fprintf(stderr, "fuzz_stub: %s (this fuzzer needs /dev/kvm)\n", err);
        abort();
    }
    return 0;
}

/* Lets the loop deliver stops; interrupts a guest that runs too long. */
static void settle(void)
{
    for (int spins = 0; stub_control_running(&machine); spins++) {
        uv_run(loop, UV_RUN_NOWAIT);
        /* As a user's Ctrl-C would, again and again: a replay in the
         * past (reverse execution) runs many short steps. */
        if (spins >= 150 && spins % 50 == 0)
            target.ops->interrupt(target.ctx);
        if (spins > 100)
            uv_sleep(1);
    }
    uv_run(loop, UV_RUN_NOWAIT);
}

static void feed(struct stub_session *s, const uint8_t *p, size_t n)
{
    if (closed || n == 0)
        return;
    stub_session_input(s, p, n);
    settle();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536)
        return 0;
    target = stub_target_kvm(&machine);
    settle();
    char err[256];
    stop_request.requested = false;
    if (stub_control_reset(&machine, err, sizeof(err))) {
        fprintf(stderr, "fuzz_stub: reset failed: %s\n", err);
        abort();
    }
    static struct stub_session s;
    struct stub_link link = {.write = link_write, .close = link_close, .ctx = &s};
    if (stub_session_init(&s, &target, &link))
        abort();
    closed = false;
    stub_session_attach(&s);
    if (data[0] & 1) {
        /* newline-separated payloads, framed with correct checksums */
        const uint8_t *p = data + 1, *end = data + size;
        while (p < end && !closed && !stop_request.requested) {
            const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (n == 1 && p[0] == 3) {
                feed(&s, p, 1); /* the interrupt byte on a line of its own */
            } else {
                uint8_t frame[4 + 4096];
                if (n > 4096)
                    n = 4096;
                frame[0] = '$';
                memcpy(frame + 1, p, n);
                snprintf((char *)frame + 1 + n, 4, "#%02x", rsp_checksum(p, n));
                feed(&s, frame, n + 4);
            }
            p += n + 1;
        }
    } else {
        feed(&s, data + 1, size - 1);
    }
    stub_session_detach(&s);
    settle();
    stub_session_free(&s);
    return 0;
}
