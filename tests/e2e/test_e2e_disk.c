/* Debian's kernel on the pc board with its root file system on a disk:
 * kvmstub --drive over virtio-pci (the default transport), the kernel's
 * virtio_pci, virtio_blk and ext4 modules loaded by the disk initramfs of
 * examples/linux/assets.sh, on ext4 images built without root privileges
 * (mke2fs -d). Each boot runs kvmstub without gdb to the guest's reboot:
 *   1. two drives show up as vda and vdb; root=/dev/vda mounts read-write,
 *      the guest reads a file the host put there, writes one and syncs;
 *      the host then reads it back from the image (debugfs);
 *   2. kvmstub killed with SIGKILL as soon as the guest's sync returned
 *      loses nothing: after e2fsck replays the journal, the file is there;
 *   3. a readonly drive mounts read-only, and a write through the file
 *      system and a raw write to the device are both refused; the image
 *      is unchanged;
 *   4. drives kvmstub refuses (missing, not whole sectors, on the bare
 *      board) end it with status 2 and one line, before any boot;
 *   5. the kernel built from source (examples/linux/own-kernel.sh: virtio
 *      and ext4 built in, CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, SLOB, so
 *      8-byte aligned indirect descriptor tables) does 1. with root=/dev/vda
 *      over virtio-mmio (the device announced on the command line) and
 *      over virtio-pci, each on an image of its own. The disk initramfs's
 *      insmods fail there (nothing is a module): harmless;
 *   6. gdb on that kernel's vmlinux stops it as it is about to notify the
 *      device of its first request (`break virtqueue_notify`: the request
 *      is in the available ring), then saves and loads a snapshot, whose
 *      load hands the device every ready queue as if notified: while the
 *      guest stays stopped the used ring's index does not move (the disk's
 *      worker holds still until the guest runs), and after `continue` the
 *      request completes. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BOOT_TIMEOUT_S 600

static char dir[200];
static char root_img[240], second_img[240], kill_img[240], own_img[2][240];

static bool assets_present(void)
{
    if (access(E2E_LINUX_KERNEL, R_OK) == 0 && access(E2E_LINUX_DISK_INITRD, R_OK) == 0)
        return true;
    fprintf(stderr,
            "the Linux example's assets are missing (%s, %s): run 'cmake --build %s --target "
            "linux_assets' first\n",
            E2E_LINUX_KERNEL, E2E_LINUX_DISK_INITRD, E2E_BUILD_DIR);
    return false;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
    char cmd[1024];
    char body[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    /* mke2fs and debugfs live in sbin, which a user's PATH may lack. */
    snprintf(cmd, sizeof(cmd), "PATH=\"$PATH:/usr/sbin:/sbin\"; %s", body);
    return system(cmd);
}

static int suite_init(void)
{
    /* Inside .ci/kvm-machine its watchdog counts the consoles' growth there
     * as progress. */
    const char *base = getenv("KVM_MACHINE_PROGRESS");
    snprintf(dir, sizeof(dir), "%.180s/e2e-disk-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    snprintf(root_img, sizeof(root_img), "%s/root.img", dir);
    snprintf(second_img, sizeof(second_img), "%s/second.img", dir);
    snprintf(kill_img, sizeof(kill_img), "%s/kill.img", dir);
    snprintf(own_img[0], sizeof(own_img[0]), "%s/own-mmio.img", dir);
    snprintf(own_img[1], sizeof(own_img[1]), "%s/own-pci.img", dir);
    char tree[240];
    snprintf(tree, sizeof(tree), "%s/tree", dir);
    if (sh("mkdir -p %s && echo 'from the host' >%s/hello", tree, tree))
        return -1;
    if (sh("mke2fs -q -F -t ext4 -d %s %s 16M", tree, root_img) ||
        sh("mke2fs -q -F -t ext4 %s 8M", second_img) ||
        sh("mke2fs -q -F -t ext4 -d %s %s 16M", tree, kill_img) ||
        sh("mke2fs -q -F -t ext4 -d %s %s 16M", tree, own_img[0]) ||
        sh("mke2fs -q -F -t ext4 -d %s %s 16M", tree, own_img[1]))
        return -1;
    return 0;
}

static int suite_clean(void)
{
    return sh("rm -rf %s", dir) == 0 ? 0 : -1;
}

/* Boots kernel with the drives given (args, NULL-terminated, before the
 * kernel) and the disk init's action; the console and kvmstub's messages
 * in o. */
static void boot_kernel(struct e2e_out *o, const char *kernel, const char *const *drives,
                        const char *action)
{
    char cmdline[256], serial[240];
    snprintf(cmdline, sizeof(cmdline), "nokaslr quiet root=/dev/vda kvmstub.disk=%s", action);
    snprintf(serial, sizeof(serial), "%s/console.log", dir);
    const char *argv[32] = {KVMSTUB_BIN, "--no-gdb", "--serial", serial, "--timeout", "500",
                            "--initrd", E2E_LINUX_DISK_INITRD, "--cmdline", cmdline};
    int n = 10;
    for (int i = 0; drives[i] && n < 30; i++)
        argv[n++] = drives[i];
    argv[n++] = kernel;
    argv[n] = NULL;
    unlink(serial);
    e2e_run(o, argv, BOOT_TIMEOUT_S);
    /* The console after kvmstub's own lines. */
    char *console = e2e_console_text(serial);
    size_t len = strlen(o->text), more = strlen(console);
    o->text = realloc(o->text, len + more + 1);
    memcpy(o->text + len, console, more + 1);
    free(console);
}

static void boot(struct e2e_out *o, const char *const *drives, const char *action)
{
    boot_kernel(o, E2E_LINUX_KERNEL, drives, action);
}

/* What the host reads back from the image's /file with debugfs. */
static void file_written_by_guest(const char *img)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "PATH=\"$PATH:/usr/sbin:/sbin\"; debugfs -R 'cat /file' %s",
             img);
    const char *argv[] = {"sh", "-c", cmd, NULL};
    struct e2e_out o;
    e2e_run(&o, argv, 60);
    CU_ASSERT_EQUAL(o.status, 0);
    E2E_HAS(o.text, "written by the guest");
    e2e_out_free(&o);
}

static void test_root_on_vda_written_and_read_back(void)
{
    if (!assets_present()) {
        CU_FAIL("assets missing");
        return;
    }
    char d1[320], d2[320];
    snprintf(d1, sizeof(d1), "--drive=%s", root_img);
    snprintf(d2, sizeof(d2), "--drive=%s,transport=pci", second_img);
    const char *drives[] = {d1, d2, NULL};
    struct e2e_out o;
    boot(&o, drives, "write");
    CU_ASSERT_EQUAL(o.status, 0);
    E2E_HAS(o.text, "kvmstub-disk: disks vda vdb");
    E2E_HAS(o.text, "kvmstub-disk: mounted /dev/vda rw");
    E2E_HAS(o.text, "kvmstub-disk: hello says from the host");
    E2E_HAS(o.text, "kvmstub-disk: synced");
    E2E_HAS(o.text, "kvmstub-disk: done");
    /* Debian's kernel enables MSI-X: a vector per queue, not INTx. */
    E2E_HAS(o.text, "PCI-MSI");
    E2E_HAS(o.text, "virtio0-req.0");
    E2E_LACKS(o.text, "IO-APIC 16-fasteoi");
    e2e_out_free(&o);
    file_written_by_guest(root_img);
}

static void test_own_kernel_root_over_mmio_and_pci(void)
{
    if (access(E2E_OWN_BZIMAGE, R_OK)) {
        fprintf(stderr,
                "the kernel built from source (%s) is missing; the default build never builds "
                "it: run 'cmake --build %s --target own_kernel_assets' first\n",
                E2E_OWN_BZIMAGE, E2E_BUILD_DIR);
        CU_FAIL("own kernel missing");
        return;
    }
    if (!assets_present()) {
        CU_FAIL("assets missing");
        return;
    }
    static const char *const transports[] = {"mmio", "pci"};
    for (int i = 0; i < 2; i++) {
        char d[520];
        snprintf(d, sizeof(d), "--drive=%s,transport=%s", own_img[i], transports[i]);
        const char *drives[] = {d, NULL};
        struct e2e_out o;
        double t0 = e2e_now();
        boot_kernel(&o, E2E_OWN_BZIMAGE, drives, "write");
        printf("\n    own kernel, root over %s: %.1f s to the guest's reboot", transports[i],
               e2e_now() - t0);
        CU_ASSERT_EQUAL(o.status, 0);
        E2E_HAS(o.text, "kvmstub-disk: disks vda");
        E2E_LACKS(o.text, "vdb");
        E2E_HAS(o.text, "kvmstub-disk: mounted /dev/vda rw");
        E2E_HAS(o.text, "kvmstub-disk: hello says from the host");
        E2E_HAS(o.text, "kvmstub-disk: synced");
        E2E_HAS(o.text, "kvmstub-disk: done");
        /* This kernel has no CONFIG_PCI_MSI: over PCI it takes INTx, a
         * level on IOAPIC pin 16; over MMIO an edge on ISA IRQ 5. */
        E2E_HAS(o.text, i == 0 ? "IO-APIC 5-edge virtio0" : "IO-APIC 16-fasteoi virtio0");
        e2e_out_free(&o);
        file_written_by_guest(own_img[i]);
    }
    printf("\n");
}

static void test_kill_after_sync_loses_nothing(void)
{
    if (!assets_present()) {
        CU_FAIL("assets missing");
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "log=%s/kill.log; rm -f $log; "
             "%s --no-gdb --serial $log --initrd %s --cmdline 'nokaslr quiet root=/dev/vda "
             "kvmstub.disk=hold' --drive %s %s </dev/null >/dev/null 2>&1 & pid=$!; i=0; "
             "while ! grep -q 'kvmstub-disk: synced' $log 2>/dev/null && [ $i -lt 10000 ]; do "
             "sleep 0.05; i=$((i + 1)); done; kill -9 $pid; wait $pid; echo \"status $?\"; "
             "PATH=\"$PATH:/usr/sbin:/sbin\"; e2fsck -fy %s >/dev/null 2>&1; "
             "debugfs -R 'cat /file' %s 2>/dev/null",
             dir, KVMSTUB_BIN, E2E_LINUX_DISK_INITRD, kill_img, E2E_LINUX_KERNEL, kill_img,
             kill_img);
    const char *argv[] = {"sh", "-c", cmd, NULL};
    struct e2e_out o;
    e2e_run(&o, argv, BOOT_TIMEOUT_S);
    E2E_HAS(o.text, "status 137"); /* killed, not ended by itself */
    E2E_HAS(o.text, "written by the guest");
    e2e_out_free(&o);
}

static void test_readonly_drive_refuses_writes(void)
{
    if (!assets_present()) {
        CU_FAIL("assets missing");
        return;
    }
    CU_ASSERT_EQUAL(sh("md5sum <%s >%s/before", root_img, dir), 0);
    char d1[320];
    snprintf(d1, sizeof(d1), "--drive=%s,readonly", root_img);
    const char *drives[] = {d1, NULL};
    struct e2e_out o;
    boot(&o, drives, "readonly");
    CU_ASSERT_EQUAL(o.status, 0);
    E2E_HAS(o.text, "kvmstub-disk: disks vda");
    E2E_LACKS(o.text, "vdb");
    E2E_HAS(o.text, "kvmstub-disk: mounted /dev/vda ro");
    E2E_HAS(o.text, "kvmstub-disk: write refused");
    E2E_HAS(o.text, "kvmstub-disk: raw write refused");
    e2e_out_free(&o);
    char after[240];
    snprintf(after, sizeof(after), "%s/before", dir);
    CU_ASSERT_EQUAL(sh("md5sum <%s | cmp -s - %s", root_img, after), 0);
}

static void refused(const char *drive, const char *machine, const char *needle)
{
    const char *argv[] = {KVMSTUB_BIN, "--no-gdb", "--machine", machine, "--drive", drive,
                          E2E_LINUX_KERNEL, NULL};
    struct e2e_out o;
    e2e_run(&o, argv, 60);
    CU_ASSERT_EQUAL(o.status, 2);
    E2E_HAS(o.text, needle);
    CU_ASSERT_EQUAL(e2e_count(o.text, "\n"), 1);
    e2e_out_free(&o);
}

static void test_bad_drives_refused(void)
{
    char odd[240], missing[240];
    snprintf(odd, sizeof(odd), "%s/odd.img", dir);
    snprintf(missing, sizeof(missing), "%s/missing.img", dir);
    CU_ASSERT_EQUAL(sh("head -c 1000 /dev/zero >%s", odd), 0);
    refused(missing, "pc", "No such file or directory");
    refused(odd, "pc", "not a positive multiple of 512");
    refused("/dev/null", "pc", "not a regular file");
    refused(root_img, "bare", "--drive needs --machine pc");
}

/* The number after "NAME " in text, or -1. */
static long number_after(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    return p ? strtol(p + strlen(name), NULL, 10) : -1;
}

/* The kernel built from source, its symbols and the disk assets; a
 * failure saying how to build them otherwise. */
static bool own_kernel_present(void)
{
    if (access(E2E_OWN_BZIMAGE, R_OK) || access(E2E_OWN_VMLINUX, R_OK) || !assets_present()) {
        fprintf(stderr, "the kernel built from source (%s, %s) is missing: run 'cmake --build "
                        "%s --target own_kernel_assets' first\n",
                E2E_OWN_BZIMAGE, E2E_OWN_VMLINUX, E2E_BUILD_DIR);
        CU_FAIL("own kernel missing");
        return false;
    }
    return true;
}

/* gdb's target: kvmstub over stdio booting the kernel built from source
 * with root=/dev/vda, the console in dir/LOG, CMDLINE words and DRIVES
 * added. */
static void own_kernel_target(char *buf, size_t len, const char *log, const char *cmdline,
                              const char *drives)
{
    snprintf(buf, len,
             "| %s --stdio --serial %s/%s --initrd %s --cmdline 'nokaslr quiet root=/dev/vda%s' "
             "%s %s",
             KVMSTUB_BIN, dir, log, E2E_LINUX_DISK_INITRD, cmdline, drives, E2E_OWN_BZIMAGE);
}

static void test_stopped_guest_sees_no_request_complete(void)
{
    if (!own_kernel_present())
        return;
    char target[2048], drive[300];
    snprintf(drive, sizeof(drive), "--drive=%s,transport=mmio", own_img[0]);
    own_kernel_target(target, sizeof(target), "stop.log", "", drive);
    const char *cmds[] = {
        "break virtqueue_notify", "continue",
        "set $vq = (struct vring_virtqueue *)_vq",
        "printf \"at-stop avail %u used %u\\n\", $vq->split.vring.avail->idx, "
        "$vq->split.vring.used->idx",
        "monitor snapshot save s1", "monitor snapshot load s1",
        "shell sleep 3",
        "printf \"3s-later used %u\\n\", $vq->split.vring.used->idx",
        "delete", "break virtqueue_notify", "continue",
        "printf \"next-notify used %u\\n\", $vq->split.vring.used->idx",
        NULL};
    struct e2e_gdb_opts opts = {
        .target = target, .cmds = cmds, .file = E2E_OWN_VMLINUX, .timeout_s = BOOT_TIMEOUT_S};
    struct e2e_out o;
    e2e_gdb_run(&o, 0, &opts);
    long avail = number_after(o.text, "at-stop avail ");
    const char *at = strstr(o.text, "at-stop avail ");
    long used = at ? number_after(at, " used ") : -1;
    long later = number_after(o.text, "3s-later used ");
    long next = number_after(o.text, "next-notify used ");
    printf("\n    at the stop: avail %ld, used %ld (%ld in flight); 3 s later used %ld; at the "
           "next notify used %ld\n", avail, used, avail - used, later, next);
    CU_ASSERT(used >= 0);
    CU_ASSERT(avail > used); /* the request the guest is about to notify */
    E2E_HAS(o.text, "snapshot s1 loaded");
    CU_ASSERT_EQUAL(later, used);
    /* Once resumed, everything notified before the stop completed. */
    CU_ASSERT(next >= avail);
    if (used < 0 || later != used || next < avail)
        fprintf(stderr, "gdb printed:\n%s\n", o.text);
    e2e_out_free(&o);
}

/* `monitor info disks` once the guest has used both drives: which path
 * each notification and interrupt took, with counts that only KVM's
 * ioeventfd and irqfd could have made. */
static void test_info_disks_names_the_paths(void)
{
    if (!own_kernel_present())
        return;
    char target[2048], drives[600];
    snprintf(drives, sizeof(drives), "--drive=%s --drive=%s,transport=mmio", own_img[1],
             second_img);
    own_kernel_target(target, sizeof(target), "paths.log", " kvmstub.disk=write", drives);
    /* Stopped at the 13th kick: both drives have read their partition
     * tables and the root is being mounted. */
    const char *cmds[] = {"break virtqueue_notify", "ignore 1 12", "continue",
                          "monitor info disks", "kill", NULL};
    struct e2e_gdb_opts opts = {
        .target = target, .cmds = cmds, .file = E2E_OWN_VMLINUX, .timeout_s = BOOT_TIMEOUT_S};
    struct e2e_out o;
    e2e_gdb_run(&o, 0, &opts);
    printf("\n%s\n", o.text);
    E2E_HAS(o.text, "virtio-blk over PCI 00:01.0");
    E2E_HAS(o.text, "notifications: KVM_IOEVENTFD at 0xc0003000");
    E2E_HAS(o.text, "interrupts: INTx (MSI-X not enabled by the driver), IOAPIC pin 16");
    E2E_HAS(o.text, "virtio-blk over MMIO at 0xd0000000");
    E2E_HAS(o.text, "notifications: KVM_IOEVENTFD at 0xd0000050");
    E2E_HAS(o.text, "interrupts: ISA IRQ 5, an edge each, through irqfd");
    /* Both drives were read (the root mounted, the other's partition
     * table) and every kick went through KVM, none through an exit. */
    char pci_name[300], mmio_name[300];
    snprintf(pci_name, sizeof(pci_name), "drive %s:", own_img[1]);
    snprintf(mmio_name, sizeof(mmio_name), "drive %s:", second_img);
    const char *vda = strstr(o.text, pci_name), *vdb = strstr(o.text, mmio_name);
    long vda_kvm = vda ? number_after(vda, "0xc0003000: ") : -1;
    long vda_exit = vda ? number_after(vda, " in KVM, ") : -1;
    long vdb_kvm = vdb ? number_after(vdb, "0xd0000050: ") : -1;
    long vdb_irqs = vdb ? number_after(vdb, "through irqfd: ") : -1;
    long vda_reads = vda ? number_after(vda, "requests: ") : -1;
    printf("    PCI drive: %ld notifications in KVM, %ld after exits, %ld reads; MMIO drive: %ld in KVM, "
           "%ld interrupts through irqfd\n",
           vda_kvm, vda_exit, vda_reads, vdb_kvm, vdb_irqs);
    CU_ASSERT(vda_kvm > 0);
    CU_ASSERT_EQUAL(vda_exit, 0);
    CU_ASSERT(vda_reads > 0);
    CU_ASSERT(vdb_kvm > 0);
    CU_ASSERT(vdb_irqs > 0);
    e2e_out_free(&o);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_disk", suite_init, suite_clean);
    CU_add_test(s, "vda and vdb over PCI, interrupts by MSI-X; root=/dev/vda written, synced, read back "
                   "by debugfs",
                test_root_on_vda_written_and_read_back);
    CU_add_test(s, "SIGKILL right after the guest's sync loses nothing it synced",
                test_kill_after_sync_loses_nothing);
    CU_add_test(s, "a readonly drive mounts ro and refuses file and raw writes",
                test_readonly_drive_refuses_writes);
    CU_add_test(s, "the kernel built from source: root=/dev/vda over MMIO (edge on IRQ 5), then over PCI "
                   "(INTx on pin 16)",
                test_own_kernel_root_over_mmio_and_pci);
    CU_add_test(s, "a stopped guest's request kicked by a snapshot load: the used index holds",
                test_stopped_guest_sees_no_request_complete);
    CU_add_test(s, "monitor info disks: PCI kicks through KVM_IOEVENTFD, INTx without MSI; "
                   "MMIO kicks through KVM_IOEVENTFD, its edge through an irqfd",
                test_info_disks_names_the_paths);
    CU_add_test(s, "missing, odd-sized, non-regular drives and the bare board: status 2",
                test_bad_drives_refused);
}

int main(void)
{
    return test_main("test_e2e_disk", register_suites, true);
}
