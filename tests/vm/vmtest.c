#include "vmtest.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

struct vm *vt_create(uint64_t ram)
{
    struct vm_config cfg = {.ram_size = ram};
    struct vm *vm = NULL;
    char err[256];
    int r = vm_create(&cfg, &vm, err, sizeof(err));
    if (r) {
        fprintf(stderr, "vm_create: %s\n", err);
        return NULL;
    }
    vm_cpu_bind_thread(&vm->cpus[0]);
    return vm;
}

int vt_load(struct vm *vm, enum vm_mode mode, uint64_t addr, const void *code, size_t n)
{
    struct vm_image img;
    int r = vm_image_from_buffer(&img, code, n, "test-code");
    if (r)
        return r;
    struct vm_image_options opt = {
        .format = VM_IMAGE_BIN, .has_mode = true, .mode = mode, .has_load = true, .load = addr};
    char err[256];
    r = vm_image_load(vm, &img, &opt, err, sizeof(err));
    if (r)
        fprintf(stderr, "vm_image_load: %s\n", err);
    vm_image_free(&img);
    return r;
}

int vt_run(struct vm *vm, enum vm_run_mode mode, struct vm_event *ev, char *out, size_t cap)
{
    size_t len = out ? strlen(out) : 0;
    for (;;) {
        int r = vm_cpu_run(&vm->cpus[0], mode, ev);
        uint8_t buf[4096];
        size_t n;
        while ((n = vm_console_take(vm, buf, sizeof(buf))) > 0) {
            if (!out)
                continue;
            size_t room = cap - 1 - len;
            if (n > room)
                n = room;
            memcpy(out + len, buf, n);
            len += n;
            out[len] = 0;
        }
        if (r || ev->type != VM_EVENT_SERIAL)
            return r;
    }
}

uint64_t vt_reg(struct vm *vm, enum vm_reg_id id)
{
    uint64_t v = 0;
    CU_ASSERT_EQUAL(vm_reg_get(&vm->cpus[0], id, &v), 0);
    return v;
}
