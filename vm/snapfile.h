/* vm/snapfile.h: whole-machine snapshots in files.
 *
 * A reader validates the whole file before anything is applied: it builds a
 * struct vm_snapshot (RAM imported into a page store that no VM uses until
 * vm_snapshot_load) and only returns it when every check passed, so a
 * refused file leaves the VM untouched. Checked: magic, format version and
 * kvmstub version (equal to this one), host CPU (vendor, family, model,
 * stepping and a digest of KVM_GET_SUPPORTED_CPUID: the XSAVE layout and
 * the MSRs depend on them), sizes (bounded before any allocation, RAM pages
 * inside the RAM size and in ascending order, each vCPU exactly once),
 * CRC-32C of the header, of every section header and of every payload, and
 * truncation anywhere (an end record counts the sections; nothing may
 * follow it). Messages name the file, what is wrong, where, and what to do.
 *
 * Layout, little-endian:
 *   header   0 magic "\x89KVMSNP\n"      8 format version (1)
 *           12 header length H          16 kvmstub version, 32 bytes NUL-padded
 *           48 CPU vendor (12)          60 family  64 model  68 stepping
 *           72 CPUID digest (8)         80 RAM size (8)      88 vCPUs
 *           92 VM state parts           96 vCPU state parts  100 XSAVE size
 *          104 sections before the end record
 *          108 image hash length (<= 64) 112 image hash (64)
 *          176 image path length P (<= 4096)  180 image path
 *      180+P CRC-32C of bytes [0, 180+P); H = 184 + P
 *   section  0 type (1 vCPU, 2 VM state, 3 blob, 4 RAM, 5 end)
 *            4 index (vCPU number; for the end, the number of sections)
 *            8 payload length (8)  16 CRC-32C of the payload
 *           20 CRC-32C of bytes [0, 20); then the payload
 *   payloads vCPU: vm_snap_cpu_encode(); VM state: vm_snap_vm_encode();
 *            blob: name length (4, 1..31), name, data;
 *            RAM: page count n (4, 1..4096), 0 (4), n page numbers (8 each,
 *            ascending across sections), n × 4096 bytes. Pages absent from
 *            every RAM section are all zero. */
#ifndef VM_SNAPFILE_H
#define VM_SNAPFILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "snapshot.h"

#define VM_SNAPFILE_FORMAT 1u
#define VM_SNAPFILE_MAX_PATH 4096u
#define VM_SNAPFILE_MAX_HASH 64u

/* The host a snapshot can be restored on. */
struct vm_snapfile_host {
    char vendor[13];
    uint32_t family, model, stepping;
    uint64_t cpuid_digest; /* per-CPU fields (APIC ids) left out */
};

struct vm_snapfile_info {
    uint32_t format;
    char version[33];
    struct vm_snapfile_host host;
    uint64_t ram_size;
    uint32_t ncpus;
    uint32_t vm_parts, cpu_parts, xsave_size;
    char image_path[VM_SNAPFILE_MAX_PATH + 1];
    uint32_t image_hash_len;
    uint8_t image_hash[VM_SNAPFILE_MAX_HASH];
};

/* This host: the CPU from the cpuid instruction, the digest from
 * KVM_GET_SUPPORTED_CPUID on /dev/kvm's descriptor. */
int vm_snapfile_host(int kvm_fd, struct vm_snapfile_host *out);
/* The same for the host vm runs on. */
int vm_snapfile_host_of(const struct vm *vm, struct vm_snapfile_host *out);

/* The first bytes of every snapshot file. */
#define VM_SNAPFILE_MAGIC "\x89KVMSNP\n"

/* Writes s to path (through path.tmp, renamed when complete, so a failed
 * write never leaves a truncated file under the name). image_path and
 * image_hash identify the image the guest was started from (hash: any
 * digest up to 64 bytes, the caller's choice). */
int vm_snapfile_write(const char *path, const struct vm_snapshot *s,
                      const struct vm_snapfile_host *host, const char *image_path,
                      const uint8_t *image_hash, uint32_t hash_len, char *err, size_t errlen);
/* The same for name in the directory dirfd, following no symbolic link at
 * name or name.tmp; with replace false, a file that appears at name
 * meanwhile is left alone and the write fails with EEXIST. */
int vm_snapfile_write_at(int dirfd, const char *name, bool replace, const struct vm_snapshot *s,
                         const struct vm_snapfile_host *host, const char *image_path,
                         const uint8_t *image_hash, uint32_t hash_len, char *err,
                         size_t errlen);

/* Reads and checks the header only (version, host), e.g. to learn the RAM
 * size and vCPUs for creating the VM before vm_snapfile_read(). */
int vm_snapfile_peek(const char *path, const struct vm_snapfile_host *host,
                     struct vm_snapfile_info *info, char *err, size_t errlen);

/* Reads the whole file into *out (RAM into ps, whose RAM size must equal
 * the file's). info (may be NULL) receives the header. */
int vm_snapfile_read(const char *path, const struct vm_snapfile_host *host,
                     struct vm_pagestore *ps, struct vm_snapfile_info *info,
                     struct vm_snapshot **out, char *err, size_t errlen);
/* The same from an open stream; name is for messages. */
int vm_snapfile_read_stream(FILE *f, const char *name, const struct vm_snapfile_host *host,
                            struct vm_pagestore *ps, struct vm_snapfile_info *info,
                            struct vm_snapshot **out, char *err, size_t errlen);

#endif
