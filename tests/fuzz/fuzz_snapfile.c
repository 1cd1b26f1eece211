/* fuzz_snapfile: libFuzzer harness for the snapshot file reader.
 *
 * The input is a snapshot file from a hostile source. The first byte picks
 * whether checksums count (odd) or are skipped (even), so that mutations
 * reach the section decoders and not only the checksum checks; the rest is
 * the file, read for a 1 MiB guest on a made-up host (the seeds are written
 * for both by make_snapfile_seeds). A file the reader accepts is loaded into
 * RAM; afterwards the page store must hold nothing: a refused file leaves
 * nothing behind. Any broken invariant aborts. FUZZ_SNAPFILE_VERBOSE=1 prints
 * the reader's verdict on each input. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/snapfile.h"

#include "snapfile_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern bool vm_snapfile_fuzz_skip_crc;

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *ram;
    static struct vm_pagestore *ps;
    if (!ram) {
        ram = calloc(1, FUZZ_SNAPFILE_RAM);
        CHECK(ram && vm_pagestore_create(FUZZ_SNAPFILE_RAM, &ps) == 0);
    }
    if (size < 2)
        return 0;
    vm_snapfile_fuzz_skip_crc = !(data[0] & 1);
    FILE *f = fmemopen((void *)(data + 1), size - 1, "rb");
    CHECK(f);
    struct vm_snapshot *s = NULL;
    struct vm_snapfile_info info;
    char err[512] = "";
    int r = vm_snapfile_read_stream(f, "input", &fuzz_snapfile_host, ps, &info, &s, err,
                                    sizeof(err));
    fclose(f);
    if (getenv("FUZZ_SNAPFILE_VERBOSE")) /* to see what an input does */
        fprintf(stderr, "fuzz_snapfile: %s\n", r ? err : "accepted");
    if (r) {
        CHECK(!s && err[0]);
        CHECK(vm_pagestore_usage(ps)->bytes == 0 && vm_pagestore_usage(ps)->snaps == 0);
        return 0;
    }
    CHECK(s && s->ram && s->ncpus == info.ncpus && s->ncpus >= 1);
    CHECK(vm_pagestore_snap_pages(s->ram) <= FUZZ_SNAPFILE_RAM / 4096);
    for (unsigned i = 0; i < s->ncpus; i++) {
        uint8_t *b;
        size_t n;
        CHECK(vm_snap_cpu_encode(&s->cpus[i], &b, &n) == 0);
        struct vm_snap_cpu back;
        CHECK(vm_snap_cpu_decode(b, n, &back) == 0);
        vm_snap_cpu_free(&back);
        free(b);
    }
    vm_pagestore_mark(ps, 0, FUZZ_SNAPFILE_RAM / 4096);
    vm_pagestore_load(ps, s->ram, ram, NULL);
    vm_snapshot_free(s);
    /* The store's base still holds the loaded RAM; drop it for the next. */
    vm_pagestore_destroy(ps);
    CHECK(vm_pagestore_create(FUZZ_SNAPFILE_RAM, &ps) == 0);
    return 0;
}
