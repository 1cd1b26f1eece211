/* The RTC's register map is the MC146818's (as Linux's mc146818rtc.h names
 * it); the century byte sits at 0x32 as on PCs. */
#include "cmos.h"

#include <string.h>

enum {
    RTC_SECONDS = 0x00,
    RTC_MINUTES = 0x02,
    RTC_HOURS = 0x04,
    RTC_DAY_OF_WEEK = 0x06,
    RTC_DAY_OF_MONTH = 0x07,
    RTC_MONTH = 0x08,
    RTC_YEAR = 0x09,
    RTC_REG_A = 0x0a,
    RTC_REG_B = 0x0b,
    RTC_REG_C = 0x0c,
    RTC_REG_D = 0x0d,
    RTC_CENTURY = 0x32,
};

#define REG_A_DIVIDER 0x26 /* 32.768 kHz time base, 1024 Hz rate; UIP (bit 7) clear */
#define REG_B_24H 0x02
#define REG_B_DM_BINARY 0x04
#define REG_D_VRT 0x80

void vm_cmos_init(struct vm_cmos *c, time_t (*clock)(void))
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    c->clock = clock;
    c->ram[RTC_REG_A] = REG_A_DIVIDER;
    c->ram[RTC_REG_B] = REG_B_24H;
    c->ram[RTC_REG_D] = REG_D_VRT;
}

void vm_cmos_destroy(struct vm_cmos *c)
{
    pthread_mutex_destroy(&c->lock);
}

static uint8_t encode(const struct vm_cmos *c, unsigned v)
{
    if (c->ram[RTC_REG_B] & REG_B_DM_BINARY)
        return (uint8_t)v;
    return (uint8_t)((v / 10) << 4 | v % 10);
}

static uint8_t hours(const struct vm_cmos *c, unsigned h)
{
    if (c->ram[RTC_REG_B] & REG_B_24H)
        return encode(c, h);
    unsigned h12 = h % 12 ? h % 12 : 12;
    return (uint8_t)(encode(c, h12) | (h >= 12 ? 0x80 : 0));
}

static uint8_t read_reg(struct vm_cmos *c, uint8_t reg)
{
    switch (reg) {
    case RTC_SECONDS:
    case RTC_MINUTES:
    case RTC_HOURS:
    case RTC_DAY_OF_WEEK:
    case RTC_DAY_OF_MONTH:
    case RTC_MONTH:
    case RTC_YEAR:
    case RTC_CENTURY: {
        time_t now = c->clock ? c->clock() : time(NULL);
        struct tm tm;
        if (!gmtime_r(&now, &tm))
            return 0;
        unsigned year = (unsigned)tm.tm_year + 1900;
        switch (reg) {
        case RTC_SECONDS: return encode(c, (unsigned)tm.tm_sec % 60);
        case RTC_MINUTES: return encode(c, (unsigned)tm.tm_min);
        case RTC_HOURS: return hours(c, (unsigned)tm.tm_hour);
        case RTC_DAY_OF_WEEK: return encode(c, (unsigned)tm.tm_wday + 1);
        case RTC_DAY_OF_MONTH: return encode(c, (unsigned)tm.tm_mday);
        case RTC_MONTH: return encode(c, (unsigned)tm.tm_mon + 1);
        case RTC_YEAR: return encode(c, year % 100);
        default: return encode(c, (year / 100) % 100);
        }
    }
    case RTC_REG_A:
        return c->ram[RTC_REG_A] & 0x7f;
    case RTC_REG_C:
        return 0;
    case RTC_REG_D:
        return REG_D_VRT;
    default:
        return c->ram[reg];
    }
}

void vm_cmos_out(struct vm_cmos *c, uint16_t port, uint8_t value)
{
    pthread_mutex_lock(&c->lock);
    if (port == VM_CMOS_INDEX) {
        c->index = value & 0x7f; /* bit 7 masks NMIs on a PC; nothing to mask here */
    } else if (port == VM_CMOS_DATA) {
        switch (c->index) {
        case RTC_REG_C:
        case RTC_REG_D:
            break; /* read-only */
        default:
            c->ram[c->index] = value;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

uint8_t vm_cmos_in(struct vm_cmos *c, uint16_t port)
{
    uint8_t v = 0xff;
    pthread_mutex_lock(&c->lock);
    if (port == VM_CMOS_DATA)
        v = read_reg(c, c->index);
    pthread_mutex_unlock(&c->lock);
    return v;
}
