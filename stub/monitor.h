/* stub/monitor.h: gdb's "monitor" commands (qRcmd). The answer goes to the
 * gdb console as 'O' packets, then OK; an unknown command gets a message
 * that points at "monitor help". */
#ifndef STUB_MONITOR_H
#define STUB_MONITOR_H

struct stub_session;

void stub_monitor(struct stub_session *s, const char *cmd);

#endif
