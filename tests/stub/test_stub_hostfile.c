/* Where 'monitor snapshot write NAME' may write (stub/hostfile.h): inside
 * the snapshot directory, through no symbolic link, over no file that is
 * not a kvmstub snapshot; every refusal says why and leaves the target as
 * it was. No KVM: the path checks run on a scratch directory. */
#include "testmain.h"

#include "stub/hostfile.h"
#include "vm/snapfile.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[64], dir[96];
static int dirfd_;

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static bool holds(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return strcmp(buf, text) == 0;
}

static int setup(void)
{
    snprintf(top, sizeof(top), "/tmp/kvmstub-hostfile-XXXXXX");
    if (!mkdtemp(top))
        return -1;
    snprintf(dir, sizeof(dir), "%s/snaps", top);
    if (mkdir(dir, 0700))
        return -1;
    dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
    return dirfd_ < 0 ? -1 : 0;
}

static int teardown(void)
{
    close(dirfd_);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
    return system(cmd) == 0 ? 0 : -1;
}

/* name is refused with a message containing why. */
static void refused(const char *name, int want_err, const char *why)
{
    int parent = -7;
    const char *leaf = NULL;
    bool exists;
    char err[512] = "";
    int r = stub_hostfile_resolve(dirfd_, name, &parent, &leaf, &exists, err, sizeof(err));
    CU_ASSERT_EQUAL(r, -want_err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, why));
    CU_ASSERT_EQUAL(parent, dirfd_); /* nothing left open */
    if (!strstr(err, why))
        fprintf(stderr, "for '%s': got '%s'\n", name, err);
}

static void test_absolute_path_refused(void)
{
    char outside[128];
    snprintf(outside, sizeof(outside), "%s/x", top);
    put(outside, "keep");
    refused(outside, EPERM, "is an absolute path: give a name relative to the snapshot directory");
    refused("/tmp/x", EPERM, "is an absolute path");
    CU_ASSERT(holds(outside, "keep"));
}

static void test_dotdot_refused(void)
{
    char outside[128];
    snprintf(outside, sizeof(outside), "%s/x", top);
    put(outside, "keep");
    refused("../x", EPERM, "contains '..': names stay inside the snapshot directory");
    refused("a/../../x", EPERM, "contains '..'");
    refused("sub/..", EPERM, "contains '..'");
    CU_ASSERT(holds(outside, "keep"));
}

static void test_symlinks_refused(void)
{
    struct stat before, after;
    CU_ASSERT_EQUAL_FATAL(stat("/etc/passwd", &before), 0);
    char link[128];
    snprintf(link, sizeof(link), "%s/passwd.snap", dir);
    CU_ASSERT_EQUAL_FATAL(symlink("/etc/passwd", link), 0);
    refused("passwd.snap", ELOOP, "is a symbolic link: kvmstub does not write through symbolic "
                                  "links");
    /* A link on the way, to a directory outside. */
    snprintf(link, sizeof(link), "%s/etc", dir);
    CU_ASSERT_EQUAL_FATAL(symlink("/etc", link), 0);
    refused("etc/passwd", ELOOP, "is a symbolic link or not a directory");
    refused("etc/new.snap", ELOOP, "kvmstub does not follow symbolic links");
    CU_ASSERT_EQUAL_FATAL(stat("/etc/passwd", &after), 0);
    CU_ASSERT_EQUAL(before.st_size, after.st_size);
    CU_ASSERT_EQUAL(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    CU_ASSERT_EQUAL(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
}

static void test_other_files_not_replaced(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/notes.txt", dir);
    put(path, "my notes");
    refused("notes.txt", EEXIST, "exists and is not a kvmstub snapshot: kvmstub replaces only its "
                                 "own snapshot files");
    CU_ASSERT(holds(path, "my notes"));
    snprintf(path, sizeof(path), "%s/adir", dir);
    CU_ASSERT_EQUAL(mkdir(path, 0700), 0);
    refused("adir", EEXIST, "is not a regular file");
    refused("", EINVAL, "give a file name");
    refused("adir/", EISDIR, "names a directory");
}

static void test_inside_accepted(void)
{
    int parent;
    const char *leaf;
    bool exists = true;
    char err[256];
    CU_ASSERT_EQUAL(stub_hostfile_resolve(dirfd_, "new.snap", &parent, &leaf, &exists, err,
                                          sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(parent, dirfd_);
    CU_ASSERT_STRING_EQUAL(leaf, "new.snap");
    CU_ASSERT_FALSE(exists);
    /* An old snapshot may be replaced. */
    char path[128];
    snprintf(path, sizeof(path), "%s/old.snap", dir);
    put(path, VM_SNAPFILE_MAGIC "rest of a snapshot");
    CU_ASSERT_EQUAL(stub_hostfile_resolve(dirfd_, "./old.snap", &parent, &leaf, &exists, err,
                                          sizeof(err)),
                    0);
    CU_ASSERT(exists);
    /* Subdirectories that exist are walked. */
    snprintf(path, sizeof(path), "%s/runs", dir);
    CU_ASSERT_EQUAL(mkdir(path, 0700), 0);
    CU_ASSERT_EQUAL(stub_hostfile_resolve(dirfd_, "runs//a.snap", &parent, &leaf, &exists, err,
                                          sizeof(err)),
                    0);
    CU_ASSERT_NOT_EQUAL(parent, dirfd_);
    CU_ASSERT_STRING_EQUAL(leaf, "a.snap");
    CU_ASSERT_FALSE(exists);
    struct stat st, want;
    CU_ASSERT_EQUAL(fstat(parent, &st), 0);
    CU_ASSERT_EQUAL(stat(path, &want), 0);
    CU_ASSERT_EQUAL(st.st_ino, want.st_ino);
    stub_hostfile_close_parent(dirfd_, parent);
    /* A missing one is not created. */
    char err2[256] = "";
    CU_ASSERT_EQUAL(stub_hostfile_resolve(dirfd_, "nodir/a.snap", &parent, &leaf, &exists, err2,
                                          sizeof(err2)),
                    -ENOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err2, "nodir/a.snap"));
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("stub_hostfile", setup, teardown);
    CU_add_test(s, "absolute paths are refused, the file there untouched",
                test_absolute_path_refused);
    CU_add_test(s, "'..' is refused, the file above untouched", test_dotdot_refused);
    CU_add_test(s, "a symlink to /etc/passwd, or through /etc, is refused",
                test_symlinks_refused);
    CU_add_test(s, "an existing file that is not a snapshot is refused and kept",
                test_other_files_not_replaced);
    CU_add_test(s, "names inside: new, an old snapshot, in a subdirectory",
                test_inside_accepted);
}

int main(void)
{
    return test_main("test_stub_hostfile", register_suites, false);
}
