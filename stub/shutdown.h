/* stub/shutdown.h: kvmstub's decision to end, and its exit status. Who may
 * decide (the machine when the guest ends, the session on kill, the server
 * when stdio closes, a signal) calls stub_shutdown_request(); who must act
 * (the server, which ends the loop once everything queued for gdb is
 * written) is notified. Loop thread only. */
#ifndef STUB_SHUTDOWN_H
#define STUB_SHUTDOWN_H

#include <stdbool.h>

struct stub_shutdown {
    bool requested;
    int status;
    void (*notify)(void *ctx);
    void *ctx;
};

/* The first request's status stands; later ones only notify again. */
void stub_shutdown_request(struct stub_shutdown *s, int status);

#endif
