/* stub/monitor.h: kvmstub's monitor commands (gdb's "monitor", qRcmd).
 * A command's answer is text for the user; the caller decides how it
 * travels (console packets for gdb). Loop thread, target stopped. */
#ifndef STUB_MONITOR_H
#define STUB_MONITOR_H

#include "control.h"
#include "text.h"

/* Runs cmd with thread tid as the current one. Returns 0, -ENOENT for an
 * unknown command (the text then says what exists), or another negative
 * errno when the command failed (the text says why). */
int stub_monitor_run(struct stub_control *m, unsigned tid, const char *cmd, struct stub_text *out);

#endif
