/* tests/e2e/dap.h: a Debug Adapter Protocol client, the part of an IDE
 * (VS Code) that talks to a debug adapter such as lldb-vscode.
 *
 * The adapter runs as a child with its stdin and stdout on pipes; messages
 * are JSON with a "Content-Length: N\r\n\r\n" header each way. Requests are
 * numbered; a response is matched to its request by request_seq. Events
 * and responses can arrive in any order (lldb-vscode often sends "stopped"
 * before the response to "continue"), so whatever is read while waiting for
 * something else is kept, in order, until asked for. Every wait has a
 * timeout. Everything sent and received is kept in a transcript, printed
 * when a test fails. */
#ifndef E2E_DAP_H
#define E2E_DAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "json.h"

/* Messages kept at most while nobody asks for them. */
#define DAP_BACKLOG_MAX 1024

struct dap {
    pid_t pid;
    int to, from;
    int seq;                 /* of the last request sent */
    char *in;                /* bytes read and not yet framed */
    size_t in_len, in_cap;
    struct json *backlog[DAP_BACKLOG_MAX];
    size_t backlog_len;
    char *transcript;        /* "-> ..." and "<- ..." lines */
    size_t tr_len, tr_cap;
    char err_path[64];       /* the adapter's stderr */
    bool broken;             /* framing error or EOF: no more messages */
};

/* Starts argv[0] (NULL-terminated argv). 0 or -1. */
int dap_start(struct dap *d, const char *const *argv);
/* Sends a request; args_json is the "arguments" object's text or NULL.
 * Returns its seq, or -1. */
int dap_send(struct dap *d, const char *command, const char *args_json);
/* Sends a request and waits for its response (caller frees), NULL on
 * timeout or a broken stream. The response may report success false. */
struct json *dap_request(struct dap *d, const char *command, const char *args_json,
                         int timeout_ms);
/* Waits for the next event named event (and, when reason is not NULL, whose
 * body.reason is reason); earlier messages of other kinds stay kept. The
 * caller frees it; NULL on timeout. */
struct json *dap_wait_event(struct dap *d, const char *event, const char *reason,
                            int timeout_ms);
/* Reads whatever arrives within timeout_ms into the kept messages. */
void dap_pump(struct dap *d, int timeout_ms);
/* The concatenated body.output of the "output" events kept so far (with
 * category category, or any when NULL); malloc'd. Does not consume them. */
char *dap_output(const struct dap *d, const char *category);
/* Closes the adapter's stdin, gives it timeout_ms to exit, then kills it.
 * Returns its exit status (128+signal when killed). Frees everything. */
int dap_stop(struct dap *d, int timeout_ms);
/* The transcript so far, and the adapter's stderr appended (malloc'd). */
char *dap_transcript(const struct dap *d);

#endif
