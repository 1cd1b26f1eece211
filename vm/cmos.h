/* vm/cmos.h: the PC's MC146818 real-time clock and CMOS RAM (ports 0x70,
 * 0x71), so that a Linux guest reads a sane wall clock instead of all
 * ones: with 0xff everywhere, Linux before 5.18 spins forever in
 * mach_get_cmos_time() waiting for the update-in-progress bit to clear,
 * and later kernels print a WARN from mc146818_get_time().
 *
 * The time registers read the host's UTC clock (BCD or binary, 24 or 12
 * hour, as register B says); the guest's writes to them are not kept.
 * Register A never shows an update in progress, C no interrupt, D a valid
 * clock. The other 114 bytes are plain RAM. No IRQ 8 is raised.
 *
 * Threads: one mutex inside. */
#ifndef VM_CMOS_H
#define VM_CMOS_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define VM_CMOS_INDEX 0x70u
#define VM_CMOS_DATA 0x71u

struct vm_cmos {
    pthread_mutex_t lock;
    uint8_t index;
    uint8_t ram[128];
    time_t (*clock)(void); /* the host clock; tests set their own */
};

/* clock NULL: the host's time(). */
void vm_cmos_init(struct vm_cmos *c, time_t (*clock)(void));
void vm_cmos_destroy(struct vm_cmos *c);

/* port is 0x70 or 0x71; others are ignored (reads give 0xff). */
void vm_cmos_out(struct vm_cmos *c, uint16_t port, uint8_t value);
uint8_t vm_cmos_in(struct vm_cmos *c, uint16_t port);

#endif
