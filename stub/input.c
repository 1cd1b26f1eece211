/* stdin to the guest's UART (input.h). */
#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void pump(struct stub_input *in);
static void retry_cb(uv_timer_t *t);

/* Feeds what is buffered; true once all of it went in. */
static bool feed(struct stub_input *in)
{
    while (in->off < in->len) {
        size_t n = vm_console_input(in->vm, in->buf + in->off, in->len - in->off);
        if (n == 0)
            return false;
        in->off += n;
        in->total += n;
    }
    in->off = in->len = 0;
    return true;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct stub_input *in = h->data;
    /* Reading stops whenever buf holds bytes, so it is free here. */
    *buf = uv_buf_init((char *)in->buf, sizeof(in->buf));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct stub_input *in = s->data;
    if (n < 0) {
        /* The end of stdin (or an error, which ends it as well). */
        uv_read_stop(s);
        in->reading = false;
        in->eof = true;
        return;
    }
    if (n == 0)
        return;
    in->off = 0;
    in->len = (size_t)n;
    if (!feed(in)) {
        /* The guest has not read what it was given: wait for it. */
        uv_read_stop(s);
        in->reading = false;
        uv_timer_start(&in->retry, retry_cb, STUB_INPUT_RETRY_MS, 0);
    }
}

static void retry_cb(uv_timer_t *t)
{
    pump(t->data);
}

/* Moves input along: buffered bytes first, then more from stdin. */
static void pump(struct stub_input *in)
{
    if (!feed(in)) {
        uv_timer_start(&in->retry, retry_cb, STUB_INPUT_RETRY_MS, 0);
        return;
    }
    if (in->eof)
        return;
    if (in->stream) {
        if (!in->reading && uv_read_start(in->stream, alloc_cb, read_cb) == 0)
            in->reading = true;
        return;
    }
    /* A regular file never blocks: a chunk per turn, so a big one neither
     * stalls the loop nor outruns the guest. */
    ssize_t n;
    do
        n = read(in->fd, in->buf, sizeof(in->buf));
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        in->eof = true;
        return;
    }
    in->off = 0;
    in->len = (size_t)n;
    uv_timer_start(&in->retry, retry_cb, 0, 0);
}

/* Raw input as qemu -serial stdio sets it: bytes as typed, no echo, but
 * Ctrl-C and Ctrl-Z still signal kvmstub. */
static void raw_terminal(struct stub_input *in)
{
    struct termios t;
    if (tcgetattr(in->fd, &t) < 0)
        return;
    in->saved = t;
    in->termios_saved = true;
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag |= OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    t.c_cflag |= CS8;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    tcsetattr(in->fd, TCSANOW, &t);
}

int stub_input_start(struct stub_input *in, uv_loop_t *loop, struct vm *vm, int fd, char *err,
                     size_t errlen)
{
    memset(in, 0, sizeof(*in));
    in->vm = vm;
    in->fd = fd;
    int r;
    switch (uv_guess_handle(fd)) {
    case UV_TTY:
        r = uv_tty_init(loop, &in->h.tty, fd, 1);
        if (!r)
            raw_terminal(in);
        break;
    case UV_NAMED_PIPE:
        r = uv_pipe_init(loop, &in->h.pipe, 0);
        if (!r && (r = uv_pipe_open(&in->h.pipe, fd)))
            uv_close((uv_handle_t *)&in->h.pipe, NULL);
        break;
    case UV_TCP:
        r = uv_tcp_init(loop, &in->h.tcp);
        if (!r && (r = uv_tcp_open(&in->h.tcp, fd)))
            uv_close((uv_handle_t *)&in->h.tcp, NULL);
        break;
    default:
        in->file = true;
        r = 0;
        break;
    }
    if (r) {
        snprintf(err, errlen, "cannot read stdin for --serial -: %s", uv_strerror(r));
        return r;
    }
    if (!in->file) {
        in->stream = (uv_stream_t *)&in->h;
        in->stream->data = in;
    }
    uv_timer_init(loop, &in->retry);
    in->retry.data = in;
    in->started = true;
    pump(in);
    return 0;
}

void stub_input_stop(struct stub_input *in)
{
    if (!in->started)
        return;
    in->started = false;
    if (in->termios_saved)
        tcsetattr(in->fd, TCSANOW, &in->saved);
    uv_close((uv_handle_t *)&in->retry, NULL);
    if (in->stream)
        uv_close((uv_handle_t *)in->stream, NULL);
}
