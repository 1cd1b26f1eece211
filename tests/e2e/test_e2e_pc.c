/* The pc board end to end, without Linux: a bzImage small enough to read
 * (guests/tinylinux.S inside a setup header built here) shows what the boot
 * protocol hands a kernel; a reset, a triple fault and Ctrl-C of a halted
 * CPU as gdb and the shell see them; every refusal of a bad kernel, initrd
 * or option; kvmstub's stdin as the guest's serial input. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SETUP_SECTS 4u
#define KERNEL_OFFSET ((SETUP_SECTS + 1) * 512u)
#define ENTRY64 0x200u
#define HDR_END 0x26cu
#define MiB (1024u * 1024u)

static char dir[64];
static char kernel_path[128], initrd_path[128];

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static void *slurp(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc((size_t)size);
    *n = fread(b, 1, (size_t)size, f);
    fclose(f);
    return b;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(data, 1, n, f), n);
    fclose(f);
}

struct bz_opts {
    uint16_t version;
    uint16_t xloadflags;
    uint32_t init_size;
    uint32_t cmdline_size;
};

/* A bzImage as Debian's looks (protocol 2.15, relocatable, loaded at
 * 16 MiB) whose protected-mode kernel holds tinylinux at its 64-bit entry. */
static void make_bzimage(const char *path, const struct bz_opts *o)
{
    size_t code_len = 0;
    uint8_t *code = slurp(E2E_TINYLINUX_BIN, &code_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(code);
    size_t kernel_len = (ENTRY64 + code_len + 15) & ~(size_t)15;
    size_t size = KERNEL_OFFSET + kernel_len;
    uint8_t *img = calloc(1, size);
    img[0x1f1] = SETUP_SECTS;
    put32(img + 0x1f4, (uint32_t)(kernel_len / 16));
    put16(img + 0x1fa, 0xffff);
    put16(img + 0x1fe, 0xaa55);
    img[0x200] = 0xeb;
    img[0x201] = HDR_END - 0x202;
    memcpy(img + 0x202, "HdrS", 4);
    put16(img + 0x206, o->version ? o->version : 0x020f);
    img[0x211] = 0x01; /* LOADED_HIGH */
    put32(img + 0x214, 0x100000);
    put32(img + 0x22c, 0x7fffffff);
    put32(img + 0x230, 0x200000);
    img[0x234] = 1;
    put16(img + 0x236, o->xloadflags ? o->xloadflags : 0x7f);
    put32(img + 0x238, o->cmdline_size ? o->cmdline_size : 0x7ff);
    put64(img + 0x258, 16 * MiB);
    put32(img + 0x260, o->init_size ? o->init_size : 32 * MiB);
    memcpy(img + KERNEL_OFFSET + ENTRY64, code, code_len);
    write_file(path, img, size);
    free(img);
    free(code);
}

static void make_initrd(const char *path, char first, size_t size)
{
    char *b = calloc(1, size);
    memset(b, '.', size);
    memcpy(b, "?INITRD-CONTENTS", 16);
    b[0] = first;
    write_file(path, b, size);
    free(b);
}

static int suite_init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/e2e-pc-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(kernel_path, sizeof(kernel_path), "%s/tiny.bzImage", dir);
    snprintf(initrd_path, sizeof(initrd_path), "%s/initrd", dir);
    return 0;
}

static int suite_clean(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* kvmstub ARGS... with stdin from /dev/null; status and output in o. */
static void run(struct e2e_out *o, const char *const *args)
{
    const char *argv[32] = {KVMSTUB_BIN};
    int n = 1;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    e2e_run(o, argv, E2E_TIMEOUT_S);
}

static void test_boots_by_the_64bit_protocol(void)
{
    make_bzimage(kernel_path, &(struct bz_opts){0});
    make_initrd(initrd_path, 'X', 100000);
    struct e2e_out o;
    /* No --machine: a bzImage picks pc. */
    run(&o, (const char *[]){"--run", "--serial", "-", "--memory", "64M", "--port", "0",
                             "--cmdline", "hello=world nokaslr", "--initrd", initrd_path,
                             kernel_path, NULL});
    /* The default command line, the vCPUs' TSC rate, then --cmdline; the
     * initrd where the zero page says; RAM below 640K, the reserved hole,
     * RAM from 1 MiB. */
    E2E_HAS(o.text, "cmdline: console=ttyS0 acpi=off pci=off 8250.nr_uarts=1 i8042.noaux "
                    "i8042.nomux i8042.nopnp i8042.dumbkbd reboot=k panic=1 tsc_early_khz=");
    E2E_MATCHES(o.text, "panic=1 tsc_early_khz=[1-9][0-9]* hello=world nokaslr\n");
    E2E_HAS(o.text, "initrd: XINITRD-CONTENTS (100000 bytes)\n");
    E2E_HAS(o.text, "e820: 3\n");
    CU_ASSERT_EQUAL(o.status, 3); /* through the debug-exit port */
    e2e_out_free(&o);
}

static void test_reset_ends_kvmstub_with_status_0(void)
{
    make_bzimage(kernel_path, &(struct bz_opts){0});
    make_initrd(initrd_path, 'R', 4096);
    struct e2e_out o;
    run(&o, (const char *[]){"--run", "--serial", "-", "--port", "0", "--initrd", initrd_path,
                             kernel_path, NULL});
    CU_ASSERT_EQUAL(o.status, 0);
    E2E_HAS(o.text, "the guest reset the machine (a reboot), which ends it");
    e2e_out_free(&o);

    /* gdb hears of it as the end of the program. */
    char target[512];
    snprintf(target, sizeof(target), "| %s --stdio --initrd %s %s", KVMSTUB_BIN, initrd_path,
             kernel_path);
    e2e_gdb(&o, 0, target, (const char *[]){"continue", NULL}, NULL);
    E2E_HAS(o.text, "exited normally]");
    e2e_out_free(&o);
}

static void test_triple_fault(void)
{
    make_bzimage(kernel_path, &(struct bz_opts){0});
    make_initrd(initrd_path, 'T', 4096);
    char target[512];
    snprintf(target, sizeof(target), "| %s --stdio --initrd %s %s", KVMSTUB_BIN, initrd_path,
             kernel_path);
    /* With gdb: a stop to look at; continuing resets, which ends it. */
    struct e2e_out o;
    /* gdb would pass the SIGSEGV on, which a bare-metal guest cannot take:
     * resume without it. */
    e2e_gdb(&o, 0, target, (const char *[]){"continue", "signal 0", NULL}, NULL);
    E2E_HAS(o.text, "Program received signal SIGSEGV");
    E2E_HAS(o.text, "triple fault");
    E2E_HAS(o.text, "exited normally]");
    e2e_out_free(&o);
    /* Without: a PC resets, which ends it. */
    run(&o, (const char *[]){"--run", "--port", "0", "--initrd", initrd_path, kernel_path, NULL});
    CU_ASSERT_EQUAL(o.status, 0);
    E2E_HAS(o.text, "triple fault");
    e2e_out_free(&o);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_ctrl_c_stops_a_halted_cpu(void)
{
    make_bzimage(kernel_path, &(struct bz_opts){0});
    make_initrd(initrd_path, 'H', 4096);
    struct e2e_stub s;
    CU_ASSERT_EQUAL_FATAL(e2e_stub_start(&s, (const char *[]){"--initrd", initrd_path,
                                                               kernel_path, NULL}),
                          0);
    struct e2e_rsp c;
    CU_ASSERT_EQUAL_FATAL(e2e_rsp_connect(&c, s.port), 0);
    char r[4096];
    enum { ROUNDS = 10 };
    double ms[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        CU_ASSERT_EQUAL(e2e_rsp_send(&c, "vCont;c"), 0);
        usleep(100 * 1000); /* long enough to be halted in KVM */
        double t0 = e2e_now();
        e2e_rsp_send_raw(&c, "\x03", 1);
        int n;
        do
            n = e2e_rsp_recv(&c, r, sizeof(r), E2E_TIMEOUT_S * 1000);
        while (n > 0 && r[0] == 'O');
        ms[i] = (e2e_now() - t0) * 1000;
        CU_ASSERT_TRUE(n > 0 && r[0] == 'T' && strncmp(r, "T02", 3) == 0);
    }
    e2e_rsp_close(&c);
    /* The CPU stays halted in KVM, and monitor info says so. */
    struct e2e_out o;
    e2e_gdb(&o, s.port, NULL, (const char *[]){"monitor info", NULL}, NULL);
    E2E_HAS(o.text, "board:         pc, 1 CPU");
    E2E_HAS(o.text, "state:         halted");
    e2e_out_free(&o);
    qsort(ms, ROUNDS, sizeof(ms[0]), cmp_double);
    printf("\n    Ctrl-C to stop reply, halted pc guest: median %.2f ms, max %.2f ms (%s)\n",
           ms[ROUNDS / 2], ms[ROUNDS - 1], getenv("KVMSTUB_EMULATED") ? "emulated" : "native");
    /* 100 ms where KVM runs on the hardware; the emulated machine of the
     * development hosts is 10-50 times slower at everything. */
    CU_ASSERT_TRUE(ms[ROUNDS - 1] < (getenv("KVMSTUB_EMULATED") ? 2000 : 100));
    e2e_stub_kill(&s);
}

/* One line on stderr, status 2, and the line says what is wrong. */
static void refused(const char *const *args, const char *why)
{
    struct e2e_out o;
    run(&o, args);
    CU_ASSERT_EQUAL(o.status, 2);
    CU_ASSERT_EQUAL(e2e_count(o.text, "\n"), 1);
    CU_ASSERT_EQUAL(strncmp(o.text, "kvmstub: ", 9), 0);
    E2E_HAS(o.text, why);
    e2e_out_free(&o);
}

static void test_bad_kernels_and_options_are_refused(void)
{
    char old[128], no64[128], shortcmd[128], big[128], elf_initrd[128];
    snprintf(old, sizeof(old), "%s/old.bzImage", dir);
    snprintf(no64, sizeof(no64), "%s/no64.bzImage", dir);
    snprintf(shortcmd, sizeof(shortcmd), "%s/shortcmd.bzImage", dir);
    snprintf(big, sizeof(big), "%s/big-initrd", dir);
    snprintf(elf_initrd, sizeof(elf_initrd), "%s/small-initrd", dir);
    make_bzimage(kernel_path, &(struct bz_opts){0});
    make_bzimage(old, &(struct bz_opts){.version = 0x0209});
    make_bzimage(no64, &(struct bz_opts){.xloadflags = 0x7e});
    make_bzimage(shortcmd, &(struct bz_opts){.cmdline_size = 255});
    make_initrd(big, 'X', 20 * MiB);
    make_initrd(elf_initrd, 'X', 4096);
    char longcmd[300];
    memset(longcmd, 'x', sizeof(longcmd) - 1);
    longcmd[sizeof(longcmd) - 1] = 0;

    refused((const char *[]){"--format", "bzimage", E2E_GUEST_ELF, NULL}, "not a bzImage");
    refused((const char *[]){old, NULL}, "boot protocol 2.09 is too old");
    refused((const char *[]){no64, NULL}, "no 64-bit entry point");
    /* 32 MiB of init_size from 16 MiB does not fit in 32 MiB of RAM. */
    refused((const char *[]){"--memory", "32M", kernel_path, NULL},
            "the kernel does not fit in 32 MiB of RAM");
    /* The kernel ends at 48 MiB; 20 MiB of initrd do not fit below 64. */
    refused((const char *[]){"--memory", "64M", "--initrd", big, kernel_path, NULL},
            "does not fit in RAM");
    refused((const char *[]){"--cmdline", longcmd, shortcmd, NULL},
            "this kernel takes at most 255");
    refused((const char *[]){"--initrd", elf_initrd, E2E_GUEST_ELF, NULL},
            "--initrd applies to Linux bzImages only");
    refused((const char *[]){"--initrd", "/nonexistent/initrd", kernel_path, NULL},
            "cannot open initrd /nonexistent/initrd");
    refused((const char *[]){"--machine", "bare", kernel_path, NULL},
            "needs the pc board: use --machine pc");
    refused((const char *[]){"--on-hlt", "exit", kernel_path, NULL},
            "--on-hlt applies to --machine bare only");
    refused((const char *[]){"--machine", "pc", "--hlt-breakpoints", E2E_GUEST_ELF, NULL},
            "--hlt-breakpoints applies to --machine bare only");
    refused((const char *[]){"--machine", "486", E2E_GUEST_ELF, NULL},
            "--machine: '486' is not bare or pc");
}

/* kvmstub's stdin is the UART's input: piped in faster than the guest
 * reads, nothing is lost (target64 mode 9 echoes a line). */
static void test_stdin_feeds_the_uart(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "{ printf 'ping-'; head -c 10000 /dev/zero | tr '\\0' 'x'; printf -- '-pong\\n'; } | "
             "%s --run --serial - --port 0 --reg rdi=9 --on-hlt exit %s",
             KVMSTUB_BIN, E2E_GUEST_ELF);
    const char *argv[] = {"sh", "-c", cmd, NULL};
    struct e2e_out o;
    e2e_run(&o, argv, E2E_TIMEOUT_S);
    CU_ASSERT_EQUAL(o.status, 0);
    const char *p = strstr(o.text, "> ping-");
    CU_ASSERT_PTR_NOT_NULL(p);
    if (p) {
        size_t xs = strspn(p + 7, "x");
        CU_ASSERT_EQUAL(xs, 10000);
        CU_ASSERT_EQUAL(strncmp(p + 7 + xs, "-pong", 5), 0);
    }
    e2e_out_free(&o);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_pc", suite_init, suite_clean);
    CU_add_test(s, "a bzImage gets the command line, initrd and e820 map",
                test_boots_by_the_64bit_protocol);
    CU_add_test(s, "an i8042 reset ends kvmstub with status 0, gdb sees an exit",
                test_reset_ends_kvmstub_with_status_0);
    CU_add_test(s, "a triple fault stops for gdb, then resets; alone it resets",
                test_triple_fault);
    CU_add_test(s, "Ctrl-C stops a CPU halted in KVM, within 100 ms natively",
                test_ctrl_c_stops_a_halted_cpu);
    CU_add_test(s, "bad kernels, initrds and options: status 2 and one line",
                test_bad_kernels_and_options_are_refused);
    CU_add_test(s, "stdin feeds the UART without loss (--serial -)", test_stdin_feeds_the_uart);
}

int main(void)
{
    return test_main("test_e2e_pc", register_suites, true);
}
