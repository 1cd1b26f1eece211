/* stub/hostfile.h: the host files a connection may write, and only those.
 *
 * A gdb on the port is not necessarily kvmstub's user, and kvmstub often
 * runs as root: a file name from a monitor command is taken relative to
 * the directory the user gave (--snapshot-dir), walked one component at a
 * time with openat and O_NOFOLLOW so that no absolute path, no "..", and
 * no symbolic link (planted before or during the walk) leads outside it,
 * and an existing file is replaced only if it is a kvmstub snapshot.
 * Errors: negative errno with a message for the user in err. */
#ifndef STUB_HOSTFILE_H
#define STUB_HOSTFILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* Where name leads inside the directory dirfd: the directory that holds
 * it (*parent, to close with stub_hostfile_close_parent) and its last
 * component (*leaf, within name). *exists says whether a kvmstub snapshot
 * is there already; anything else there is refused. */
int stub_hostfile_resolve(int dirfd, const char *name, int *parent, const char **leaf,
                          bool *exists, char *err, size_t errlen);
void stub_hostfile_close_parent(int dirfd, int parent);

#endif
