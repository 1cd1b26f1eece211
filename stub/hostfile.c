/* Host files a connection may write (hostfile.h). */
#include "hostfile.h"

#include "vm/snapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int refuse(char *err, size_t errlen, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(char *err, size_t errlen, int e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -e;
}

/* Whether fd starts like a file vm_snapfile_write made. */
static bool is_snapshot(int fd)
{
    char magic[sizeof(VM_SNAPFILE_MAGIC) - 1];
    ssize_t n = pread(fd, magic, sizeof(magic), 0);
    return n == (ssize_t)sizeof(magic) && memcmp(magic, VM_SNAPFILE_MAGIC, sizeof(magic)) == 0;
}

/* The file already at leaf: nothing (fine), a kvmstub snapshot (fine, to
 * be replaced), or anything else (refused, with the reason). */
static int check_existing(int parent, const char *name, const char *leaf, bool *exists,
                          char *err, size_t errlen)
{
    struct stat st;
    *exists = false;
    if (fstatat(parent, leaf, &st, AT_SYMLINK_NOFOLLOW)) {
        if (errno == ENOENT)
            return 0;
        int e = errno;
        snprintf(err, errlen, "cannot look at %s: %s", name, strerror(e));
        return -e;
    }
    if (S_ISLNK(st.st_mode))
        return refuse(err, errlen, ELOOP,
                      "%s is a symbolic link: kvmstub does not write through symbolic links; "
                      "give another name", name);
    if (!S_ISREG(st.st_mode))
        return refuse(err, errlen, EEXIST,
                      "%s exists and is not a regular file; give another name", name);
    int fd = openat(parent, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    bool ours = fd >= 0 && is_snapshot(fd);
    if (fd >= 0)
        close(fd);
    if (!ours)
        return refuse(err, errlen, EEXIST,
                      "%s exists and is not a kvmstub snapshot: kvmstub replaces only its own "
                      "snapshot files; give another name, or remove the file first", name);
    *exists = true;
    return 0;
}

int stub_hostfile_resolve(int dirfd, const char *name, int *parent, const char **leaf,
                          bool *exists, char *err, size_t errlen)
{
    *parent = dirfd;
    if (!*name)
        return refuse(err, errlen, EINVAL, "give a file name");
    if (*name == '/')
        return refuse(err, errlen, EPERM,
                      "%s is an absolute path: give a name relative to the snapshot directory "
                      "(--snapshot-dir)", name);
    if (strlen(name) >= PATH_MAX)
        return refuse(err, errlen, ENAMETOOLONG, "%.64s... is too long a name", name);
    /* Every ".." is refused, not just those that would climb out: the
     * check then needs no bookkeeping a symlink could fool. */
    for (const char *q = name; (q = strstr(q, "..")); q += 2)
        if ((q == name || q[-1] == '/') && (q[2] == '/' || !q[2]))
            return refuse(err, errlen, EPERM,
                          "%s contains '..': names stay inside the snapshot directory "
                          "(--snapshot-dir)", name);
    char comp[NAME_MAX + 1];
    const char *p = name;
    int cur = dirfd;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n > NAME_MAX) {
            stub_hostfile_close_parent(dirfd, cur);
            return refuse(err, errlen, ENAMETOOLONG, "%s has a component over 255 bytes", name);
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        if (!slash) {
            if (!n || strcmp(comp, ".") == 0) {
                stub_hostfile_close_parent(dirfd, cur);
                return refuse(err, errlen, EISDIR, "%s names a directory: give a file name",
                              name);
            }
            break;
        }
        p = slash + 1;
        if (!n || strcmp(comp, ".") == 0)
            continue;
        int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        stub_hostfile_close_parent(dirfd, cur);
        if (next < 0) {
            if (e == ELOOP || e == ENOTDIR)
                return refuse(err, errlen, ELOOP,
                              "a component of %s is a symbolic link or not a directory: "
                              "kvmstub does not follow symbolic links; give a plain path "
                              "inside the snapshot directory", name);
            snprintf(err, errlen, "cannot open the directories of %s: %s", name, strerror(e));
            return -e;
        }
        cur = next;
    }
    int r = check_existing(cur, name, p, exists, err, errlen);
    if (r) {
        stub_hostfile_close_parent(dirfd, cur);
        return r;
    }
    *parent = cur;
    *leaf = p;
    return 0;
}

void stub_hostfile_close_parent(int dirfd, int parent)
{
    if (parent != dirfd && parent >= 0)
        close(parent);
}
