/* snapbench: what a snapshot save and load cost, against the pages the guest
 * dirtied since the last one and against the RAM size.
 *
 *   snapbench [--rounds N] [--memory 64M,1G,3G] [--pages 0,1,16,256,4096]
 *
 * For each RAM size it makes a bare VM through kvmstub's vm/ layer, opens
 * snapshots on it (dirty-page tracking on) and takes a first, full snapshot.
 * Then, for each page count P, N rounds of: the guest writes one byte into
 * each of P pages (a loop of stores, then hlt; not timed), save a snapshot
 * (timed), the guest writes the same P pages again, load the previous
 * snapshot (timed), delete the oldest snapshot (timed). A save copies the P
 * pages; a load writes back the P pages the guest changed after the save
 * plus those that differ between the two snapshots. Medians in
 * microseconds, whole machine (vCPU registers, XSAVE, MSRs, events and the
 * dirty log included), and the best save+load of the rounds ("best_us",
 * what a quiet machine gives); "store_MiB" is what the page store holds at
 * the end. "delete_us" only drops a handle when the base still uses the
 * snapshot's pages (they go when the base moves on, inside a save or load).
 * SNAPBENCH_DEBUG=1 prints every round's page counts.
 * Under .ci/kvm-machine everything runs 10-50 times slower than on
 * hardware. */
#include "vm/image.h"
#include "vm/snapshot.h"

#include "vm/vm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BASE 0x1000000ull /* the pages the guest writes start at 16 MiB */
#define CODE 0x100000ull

/* Long mode: one byte into each of rcx pages from rbx, then a new value. */
static const uint8_t dirtier[] = {
    0x88, 0x03,                               /* 1: mov %al,(%rbx) */
    0x48, 0x81, 0xc3, 0x00, 0x10, 0x00, 0x00, /*    add $0x1000,%rbx */
    0x48, 0xff, 0xc9,                         /*    dec %rcx */
    0x75, 0xf2,                               /*    jnz 1b */
    0xfe, 0xc0,                               /*    inc %al */
    0xf4,                                     /*    hlt */
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int dirty(struct vm *vm, uint64_t pages)
{
    if (!pages)
        return 0;
    struct vm_cpu *cpu = vm_cpu(vm, 0);
    if (vm_reg_set(cpu, VM_REG_RIP, CODE) || vm_reg_set(cpu, VM_REG_RBX, BASE) ||
        vm_reg_set(cpu, VM_REG_RCX, pages))
        return -EIO;
    struct vm_event ev;
    int r = vm_cpu_run(cpu, VM_RUN_CONTINUE, &ev);
    if (r)
        return r;
    if (ev.type != VM_EVENT_HALT) {
        fprintf(stderr, "snapbench: the guest stopped with %s\n", vm_event_name(ev.type));
        return -EIO;
    }
    return 0;
}

static uint64_t parse_size(const char *s)
{
    char *end;
    uint64_t v = strtoull(s, &end, 10);
    if (*end == 'G')
        v <<= 30;
    else if (*end == 'M')
        v <<= 20;
    return v;
}

static int bench(uint64_t ram, const uint64_t *counts, int ncounts, int rounds)
{
    struct vm_config cfg = {.ram_size = ram};
    struct vm *vm;
    char err[256];
    if (vm_create(&cfg, &vm, err, sizeof(err))) {
        fprintf(stderr, "snapbench: %s\n", err);
        return 1;
    }
    vm_cpu_bind_thread(vm_cpu(vm, 0));
    struct vm_image img;
    struct vm_image_options opt = {.format = VM_IMAGE_BIN, .has_mode = true, .mode = VM_MODE_LONG,
                                   .has_load = true, .load = CODE};
    if (vm_image_from_buffer(&img, dirtier, sizeof(dirtier), "dirtier") ||
        vm_image_load(vm, &img, &opt, err, sizeof(err))) {
        fprintf(stderr, "snapbench: %s\n", err);
        return 1;
    }
    vm_image_free(&img);
    struct vm_snapshots *ss;
    double t0 = now_us();
    if (vm_snapshot_open(vm, &(struct vm_snapshot_config){0}, &ss, err, sizeof(err))) {
        fprintf(stderr, "snapbench: %s\n", err);
        return 1;
    }
    double t_open = now_us() - t0;
    if (!vm_snapshot_incremental(ss))
        printf("# %s\n", vm_snapshot_note(ss));
    struct vm_snapshot *old, *cur;
    t0 = now_us();
    /* The vm layer's soft state (halted flags) and the UART travel inside
     * the snapshot itself: nothing to add here. */
    if (vm_snapshot_save(ss, NULL, 0, &old, NULL, err, sizeof(err))) {
        fprintf(stderr, "snapbench: %s\n", err);
        return 1;
    }
    printf("%-7llu %-6s %9.0f %9s %9s %9s %9s %9s   (open %.0f us; the first save takes what the "
           "loader wrote)\n",
           (unsigned long long)(ram >> 20), "first", now_us() - t0, "-", "-", "-", "-", "-",
           t_open);
    double *save = calloc((size_t)rounds, sizeof(double));
    double *load = calloc((size_t)rounds, sizeof(double));
    double *del = calloc((size_t)rounds, sizeof(double));
    for (int c = 0; c < ncounts; c++) {
        uint64_t pages = counts[c];
        if (BASE + pages * 4096 > ram) {
            printf("%-7llu %-6llu   (does not fit in RAM)\n", (unsigned long long)(ram >> 20),
                   (unsigned long long)pages);
            continue;
        }
        uint64_t copied = 0, written = 0;
        for (int i = -2; i < rounds; i++) { /* two rounds to warm up */
            struct vm_pagestore_cost sc, lc;
            if (dirty(vm, pages))
                return 1;
            t0 = now_us();
            if (vm_snapshot_save(ss, NULL, 0, &cur, &sc, err, sizeof(err))) {
                fprintf(stderr, "snapbench: %s\n", err);
                return 1;
            }
            double ts = now_us() - t0;
            if (dirty(vm, pages))
                return 1;
            t0 = now_us();
            if (vm_snapshot_load(ss, old, &lc, err, sizeof(err))) {
                fprintf(stderr, "snapbench: %s\n", err);
                return 1;
            }
            double tl = now_us() - t0;
            t0 = now_us();
            vm_snapshot_free(old);
            double td = now_us() - t0;
            old = cur;
            if (i >= 0) {
                save[i] = ts;
                load[i] = tl;
                del[i] = td;
                copied += sc.copied;
                written += lc.copied;
                if (getenv("SNAPBENCH_DEBUG"))
                    fprintf(stderr,
                            "round %d: save changed %llu copied %llu shared %llu; "
                            "load changed %llu written %llu\n",
                            i, (unsigned long long)sc.changed, (unsigned long long)sc.copied,
                            (unsigned long long)sc.shared, (unsigned long long)lc.changed,
                            (unsigned long long)lc.copied);
            }
        }
        double best = save[0] + load[0];
        for (int i = 1; i < rounds; i++)
            if (save[i] + load[i] < best)
                best = save[i] + load[i];
        double ms = median(save, rounds), ml = median(load, rounds);
        printf("%-7llu %-6llu %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f   "
               "(copied %llu, written back %llu a round)\n",
               (unsigned long long)(ram >> 20), (unsigned long long)pages, ms, ml, ms + ml, best,
               median(del, rounds), (double)vm_pagestore_usage(ss->ps)->bytes / (1 << 20),
               (unsigned long long)(copied / (uint64_t)rounds),
               (unsigned long long)(written / (uint64_t)rounds));
        fflush(stdout);
    }
    free(save);
    free(load);
    free(del);
    vm_snapshot_free(old);
    vm_snapshot_close(ss);
    vm_destroy(vm);
    return 0;
}

static int parse_list(const char *s, uint64_t *out, int max, bool sizes)
{
    int n = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
        out[n++] = sizes ? parse_size(t) : strtoull(t, NULL, 10);
    free(copy);
    return n;
}

int main(int argc, char **argv)
{
    uint64_t sizes[8], counts[16];
    int nsizes = parse_list("64M,1G,3G", sizes, 8, true);
    int ncounts = parse_list("0,1,16,256,4096", counts, 16, false);
    int rounds = 15;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--memory") && i + 1 < argc)
            nsizes = parse_list(argv[++i], sizes, 8, true);
        else if (!strcmp(argv[i], "--pages") && i + 1 < argc)
            ncounts = parse_list(argv[++i], counts, 16, false);
        else {
            fprintf(stderr, "usage: snapbench [--rounds N] [--memory 64M,1G,3G] "
                            "[--pages 0,1,16,256,4096]\n");
            return 2;
        }
    }
    if (rounds < 1)
        rounds = 1;
    printf("# snapbench: whole-machine snapshot save and load, medians of %d rounds, us\n", rounds);
    printf("%-7s %-6s %9s %9s %9s %9s %9s %9s\n", "RAM_MiB", "pages", "save_us", "load_us",
           "total_us", "best_us", "delete_us", "store_MiB");
    for (int i = 0; i < nsizes; i++)
        if (bench(sizes[i], counts, ncounts, rounds))
            return 1;
    return 0;
}
