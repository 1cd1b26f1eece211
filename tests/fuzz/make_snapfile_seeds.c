/* make_snapfile_seeds DIR: writes fuzz_snapfile's seeds, snapshot files of
 * the version being built (a file from another version is refused at its
 * header, so committed seeds would go stale): a 1-vCPU machine with a few
 * RAM pages, a 2-vCPU PC-style one with irqchip, PIT, clock and device
 * blobs, and one with 64 RAM pages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapfile_fuzz.h"

static void fill(void *p, size_t n, unsigned seed)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 13 + seed);
}

static int seed(const char *dir, const char *name, unsigned ncpus, unsigned pc, unsigned pages,
                unsigned nblobs)
{
    struct vm_pagestore *ps;
    if (vm_pagestore_create(FUZZ_SNAPFILE_RAM, &ps))
        return 1;
    uint8_t *ram = calloc(1, FUZZ_SNAPFILE_RAM);
    for (unsigned p = 0; p < pages; p++)
        ram[(size_t)(p * 7 % 256) * 4096 + p] = (uint8_t)(p + 1);
    vm_pagestore_mark(ps, 0, FUZZ_SNAPFILE_RAM / 4096);
    struct vm_snapshot s = {.ps = ps, .ncpus = ncpus};
    if (vm_pagestore_save(ps, ram, NULL, NULL, &s.ram, NULL))
        return 1;
    s.cpus = calloc(ncpus, sizeof(*s.cpus));
    for (unsigned i = 0; i < ncpus; i++) {
        struct vm_snap_cpu *c = &s.cpus[i];
        c->parts = VM_SNAP_CPU_SREGS2 | VM_SNAP_CPU_XSAVE | VM_SNAP_CPU_XCRS |
                   VM_SNAP_CPU_DEBUGREGS | VM_SNAP_CPU_EVENTS | (pc ? VM_SNAP_CPU_LAPIC : 0);
        fill(&c->regs, sizeof(c->regs), i);
        c->xsave_size = 4096;
        c->xsave = calloc(1, 4096);
        c->nmsrs = 2;
        c->msrs = calloc(2, sizeof(*c->msrs));
        c->msrs[0].index = 0x10;
        c->msrs[1].index = 0xc0000102;
    }
    if (pc) {
        s.vm.parts = VM_SNAP_VM_IRQCHIP | VM_SNAP_VM_PIT | VM_SNAP_VM_CLOCK;
        for (unsigned i = 0; i < 3; i++)
            s.vm.chips[i].chip_id = i;
    }
    struct vm_snapshot_blob blobs[2] = {{.name = "uart", .data = (uint8_t *)"in", .len = 2},
                                        {.name = "kvmstub", .data = (uint8_t *)"h", .len = 1}};
    s.blobs = blobs;
    s.nblobs = nblobs;
    char path[4096], err[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    static const uint8_t hash[4] = {1, 2, 3, 4};
    int r = vm_snapfile_write(path, &s, &fuzz_snapfile_host, "guest.elf", hash, 4, err,
                              sizeof(err));
    if (r)
        fprintf(stderr, "make_snapfile_seeds: %s\n", err);
    /* The harness reads byte 0 as its mode: prepend "checksums count". */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)n + 1);
    b[0] = 1;
    if (fread(b + 1, 1, (size_t)n, f) != (size_t)n)
        r = 1;
    fclose(f);
    f = fopen(path, "wb");
    fwrite(b, 1, (size_t)n + 1, f);
    fclose(f);
    free(b);
    for (unsigned i = 0; i < ncpus; i++)
        vm_snap_cpu_free(&s.cpus[i]);
    free(s.cpus);
    vm_pagestore_destroy(ps);
    free(ram);
    return r != 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_snapfile_seeds DIR\n");
        return 2;
    }
    return seed(argv[1], "bare", 1, 0, 3, 0) | seed(argv[1], "pc", 2, 1, 20, 2) |
           seed(argv[1], "many", 1, 0, 64, 1);
}
