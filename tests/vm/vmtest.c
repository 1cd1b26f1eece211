#include "vmtest.h"

#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* One watchdog thread for the process; vt_run arms it around each run.
 * The kick is decided under the lock, so a disarmed run is never kicked. */
static struct {
    pthread_mutex_t lock;
    pthread_once_t once;
    struct vm_cpu *cpu; /* armed: the vCPU to kick at deadline */
    time_t deadline;
    bool fired;
} dog = {.lock = PTHREAD_MUTEX_INITIALIZER, .once = PTHREAD_ONCE_INIT};

static void *dog_main(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(1);
        pthread_mutex_lock(&dog.lock);
        if (dog.cpu && !dog.fired && time(NULL) >= dog.deadline) {
            vm_cpu_kick(dog.cpu);
            dog.fired = true;
        }
        pthread_mutex_unlock(&dog.lock);
    }
    return NULL;
}

static void dog_start(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, dog_main, NULL) == 0)
        pthread_detach(t);
}

static void dog_arm(struct vm_cpu *cpu)
{
    pthread_once(&dog.once, dog_start);
    pthread_mutex_lock(&dog.lock);
    dog.cpu = cpu;
    dog.deadline = time(NULL) + VT_RUN_LIMIT_S;
    dog.fired = false;
    pthread_mutex_unlock(&dog.lock);
}

/* True if the watchdog kicked this run (its kick is then consumed). */
static bool dog_disarm(struct vm_cpu *cpu)
{
    pthread_mutex_lock(&dog.lock);
    bool fired = dog.fired;
    dog.cpu = NULL;
    dog.fired = false;
    pthread_mutex_unlock(&dog.lock);
    if (fired)
        vm_cpu_clear_kick(cpu);
    return fired;
}

int vt_run(struct vm *vm, enum vm_run_mode mode, struct vm_event *ev, char *out, size_t cap)
{
    size_t len = out ? strlen(out) : 0;
    for (;;) {
        dog_arm(&vm->cpus[0]);
        int r = vm_cpu_run(&vm->cpus[0], mode, ev);
        if (dog_disarm(&vm->cpus[0])) {
            uint64_t rip = 0;
            vm_reg_get(&vm->cpus[0], VM_REG_RIP, &rip);
            fprintf(stderr,
                    "vt_run: a %s did not come back from KVM in %d s (rip 0x%llx); kicked it\n",
                    mode == VM_RUN_STEP ? "single step" : "run", VT_RUN_LIMIT_S,
                    (unsigned long long)rip);
            CU_FAIL("the guest's run or step came back only when the watchdog kicked it");
        }
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
