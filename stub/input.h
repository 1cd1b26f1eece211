/* stub/input.h: kvmstub's standard input as the guest's serial input, for
 * --serial - (an interactive console, like qemu -serial stdio).
 *
 * Bytes read from stdin go to the board's UART receiver (vm_console_input).
 * The UART keeps a backlog (the remote sender); while it is full, reading
 * pauses and resumes as the guest drains it, so nothing typed or piped in
 * is lost. stdin may be a terminal, a pipe or socket, or a file; at its end
 * the guest simply gets no more input. A terminal is switched to raw input
 * (no line editing, no local echo: the guest echoes, as a serial terminal
 * expects; CR goes through as CR) but keeps its signals, so Ctrl-C ends
 * kvmstub as it ends QEMU; stub_input_stop() puts the terminal back.
 *
 * Loop thread only. */
#ifndef STUB_INPUT_H
#define STUB_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>
#include <uv.h>

#include "vm/vm.h"

#define STUB_INPUT_CHUNK 4096u
#define STUB_INPUT_RETRY_MS 10u

struct stub_input {
    struct vm *vm;
    int fd;
    bool started;
    bool reading;     /* a stream handle with uv_read_start in effect */
    bool file;        /* a regular file (or /dev/null): read() on the timer */
    bool eof;
    union {
        uv_tty_t tty;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } h;
    uv_stream_t *stream; /* &h, or NULL for a file */
    uv_timer_t retry;    /* feeds what the UART could not take yet */
    uint8_t buf[STUB_INPUT_CHUNK];
    size_t off, len;     /* bytes of buf still to feed */
    bool termios_saved;
    struct termios saved;
    uint64_t total;      /* bytes handed to the guest */
};

/* Starts feeding fd (normally 0) to vm's console. Returns 0 or a negative
 * errno with a message in err. */
int stub_input_start(struct stub_input *in, uv_loop_t *loop, struct vm *vm, int fd, char *err,
                     size_t errlen);
/* Stops reading, restores the terminal, closes the handles (the loop must
 * run once more to finish closing them). Safe on a never-started one. */
void stub_input_stop(struct stub_input *in);

#endif
