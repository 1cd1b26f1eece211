/* The debugger's view of guest memory: linear addresses, translated page by
 * page, with planted breakpoints hidden. */
#include "internal.h"

#include <errno.h>

typedef int (*chunk_fn)(struct vm_cpu *cpu, uint64_t gpa, uint8_t *p, size_t n);

static int walk(struct vm_cpu *cpu, uint64_t addr, uint8_t *p, size_t len, size_t *done,
                chunk_fn fn)
{
    size_t off = 0;
    int err = 0;
    if (len && addr + (len - 1) < addr) {
        err = -EFAULT; /* the range wraps around the address space */
        len = 0;
    }
    while (off < len) {
        uint64_t a = addr + off;
        size_t n = VM_PAGE_SIZE - (a & (VM_PAGE_SIZE - 1));
        if (n > len - off)
            n = len - off;
        uint64_t gpa;
        if ((err = vm_translate(cpu, a, &gpa)))
            break;
        if (!vm_mem_contains(&cpu->vm->mem, gpa, n)) {
            err = -EFAULT;
            break;
        }
        if ((err = fn(cpu, gpa, p + off, n)))
            break;
        off += n;
    }
    if (done)
        *done = off;
    return err;
}

static int read_chunk(struct vm_cpu *cpu, uint64_t gpa, uint8_t *p, size_t n)
{
    int err = vm_mem_read(&cpu->vm->mem, gpa, p, n);
    if (!err)
        vm_planted_hide(cpu->vm, gpa, p, n);
    return err;
}

static int write_chunk(struct vm_cpu *cpu, uint64_t gpa, uint8_t *p, size_t n)
{
    int err = vm_mem_write(&cpu->vm->mem, gpa, p, n);
    if (!err)
        vm_planted_write_through(cpu->vm, gpa, p, n);
    return err;
}

int vm_read_linear(struct vm_cpu *cpu, uint64_t addr, void *buf, size_t len, size_t *done)
{
    return walk(cpu, addr, buf, len, done, read_chunk);
}

int vm_write_linear(struct vm_cpu *cpu, uint64_t addr, const void *buf, size_t len, size_t *done)
{
    /* write_chunk only reads through p; the cast keeps one walker. */
    return walk(cpu, addr, (uint8_t *)(uintptr_t)buf, len, done, write_chunk);
}

/* Physical ranges are checked in one piece against RAM: what lies past its
 * end is not there. */
static size_t in_ram(const struct vm *vm, uint64_t gpa, size_t len)
{
    uint64_t size = vm->mem.size;
    if (gpa >= size)
        return 0;
    return size - gpa < len ? (size_t)(size - gpa) : len;
}

int vm_read_physical(struct vm *vm, uint64_t gpa, void *buf, size_t len, size_t *done)
{
    size_t n = in_ram(vm, gpa, len);
    int err = n ? vm_mem_read(&vm->mem, gpa, buf, n) : 0;
    if (!err && n)
        vm_planted_hide(vm, gpa, buf, n);
    if (done)
        *done = err ? 0 : n;
    return err ? err : n < len ? -EFAULT : 0;
}

int vm_write_physical(struct vm *vm, uint64_t gpa, const void *buf, size_t len, size_t *done)
{
    size_t n = in_ram(vm, gpa, len);
    int err = n ? vm_mem_write(&vm->mem, gpa, buf, n) : 0;
    if (!err && n)
        vm_planted_write_through(vm, gpa, buf, n);
    if (done)
        *done = err ? 0 : n;
    return err ? err : n < len ? -EFAULT : 0;
}
