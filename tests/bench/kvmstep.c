/* kvmstep: what one single step costs below the protocol.
 *
 *   kvmstep [--seconds N] BOOT_SECTOR.bin
 *   kvmstep [--seconds N] --serial BOOT_SECTOR.bin
 *
 * Loads the boot sector at 0x7c00 in real mode through kvmstub's vm/ layer
 * and single-steps it for N seconds (default 2), the way the stub's vCPU
 * thread does for 's': set the debug state, KVM_RUN, read the exit. Prints
 * "kvm_step_us" and "kvm_steps_per_sec". Together with rspbench's loopback
 * ping-pong this gives the floor for steps over RSP: no stub can step faster
 * than one TCP exchange plus one KVM step.
 *
 * With --serial it runs the guest instead (bench_serial.bin, which writes
 * to the UART forever) and prints "kvm_serial_MBps": the bytes the vm layer
 * collects per second with no protocol and no client, the ceiling for the
 * serial figure over RSP. Each byte is one guest OUT, so one exit to the
 * host kernel at least (coalesced PIO spares the exit to userspace). */
#include "vm/vm.h"
#include "vm/image.h"
#include "vm/serial.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(stderr, "usage: kvmstep [--seconds N] [--serial] BOOT_SECTOR.bin\n");
    return 2;
}

static int serial_rate(struct vm *vm, double seconds)
{
    static uint8_t buf[65536];
    unsigned long long bytes = 0;
    double t0 = now(), t;
    do {
        struct vm_event ev;
        int r = vm_cpu_run(vm_cpu(vm, 0), VM_RUN_CONTINUE, &ev);
        if (r || ev.type != VM_EVENT_SERIAL) {
            fprintf(stderr, "kvmstep: the guest stopped with %s (event %d): it must write to the "
                    "UART forever (use bench_serial.bin)\n", r ? strerror(-r) : "no error",
                    (int)ev.type);
            return 1;
        }
        size_t got;
        while ((got = vm_console_take(vm, buf, sizeof buf)) > 0)
            bytes += got;
    } while ((t = now() - t0) < seconds);
    if (bytes == 0) {
        fprintf(stderr, "kvmstep: no serial output in %.1f s\n", t);
        return 1;
    }
    printf("kvm_serial_MBps %.3f\n", (double)bytes / t / 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 2.0;
    bool serial = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            char *end;
            seconds = strtod(argv[++i], &end);
            if (*end || !(seconds > 0 && seconds <= 3600)) {
                fprintf(stderr, "kvmstep: --seconds wants a number of seconds up to 3600\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--serial") == 0) {
            serial = true;
        } else if (argv[i][0] == '-' || path) {
            return usage();
        } else {
            path = argv[i];
        }
    }
    if (!path)
        return usage();

    char err[256];
    struct vm_image img;
    if (vm_image_open(&img, path, err, sizeof err)) {
        fprintf(stderr, "kvmstep: %s\n", err);
        return 2;
    }
    struct vm_config cfg = {0};
    struct vm *vm = NULL;
    if (vm_create(&cfg, &vm, err, sizeof err)) {
        fprintf(stderr, "kvmstep: %s\n", err);
        vm_image_free(&img);
        return 1;
    }
    struct vm_image_options opt = {.format = VM_IMAGE_BIN, .has_mode = true,
                                   .mode = VM_MODE_REAL, .has_load = true, .load = 0x7c00};
    int r = vm_image_load(vm, &img, &opt, err, sizeof err);
    vm_image_free(&img);
    if (r) {
        fprintf(stderr, "kvmstep: %s\n", err);
        vm_destroy(vm);
        return 1;
    }
    struct vm_cpu *cpu = vm_cpu(vm, 0);
    vm_cpu_bind_thread(cpu);

    if (serial) {
        r = serial_rate(vm, seconds);
        vm_destroy(vm);
        return r;
    }
    unsigned long long n = 0;
    double t0 = now(), t;
    do {
        struct vm_event ev;
        r = vm_cpu_run(cpu, VM_RUN_STEP, &ev);
        if (r || ev.type != VM_EVENT_STEP) {
            fprintf(stderr, "kvmstep: step %llu ended with %s (event %d): the guest must loop "
                    "forever (use bench_loop.bin)\n", n, r ? strerror(-r) : "no error",
                    (int)ev.type);
            vm_destroy(vm);
            return 1;
        }
        n++;
    } while ((t = now() - t0) < seconds);
    printf("kvm_step_us %.2f\n", t / (double)n * 1e6);
    printf("kvm_steps_per_sec %.1f\n", (double)n / t);
    vm_destroy(vm);
    return 0;
}
