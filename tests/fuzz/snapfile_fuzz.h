/* What fuzz_snapfile and its seed writer agree on: the guest's RAM size and
 * a made-up host, so that seeds pass the host check on any machine. */
#ifndef SNAPFILE_FUZZ_H
#define SNAPFILE_FUZZ_H

#include "vm/snapfile.h"

#define FUZZ_SNAPFILE_RAM (1u << 20)

static const struct vm_snapfile_host fuzz_snapfile_host = {
    .vendor = "FuzzingHost", .family = 6, .model = 0x8f, .stepping = 8, .cpuid_digest = 42};

#endif
