/* tests/stub/fake_machine.h: the fake target (fake_target.h) made to
 * execute, for the record layer (stub/record.h) without KVM: a toy CPU on
 * thread 1 that runs a few x86 instructions from the fake's memory, with
 * its breakpoints and write watchpoints, and checkpoints of the whole fake.
 *
 * Instructions: nop (90), inc eax (ff c0), stosb (aa: [rdi] = al, rdi++),
 * hlt (f4: stops, reported), jmp rel8 (eb xx), rdtsc (0f 31: rax from a
 * counter no checkpoint holds, so a replay reads another value). Anything
 * else stops the run as a fault. */
#ifndef FAKE_MACHINE_H
#define FAKE_MACHINE_H

#include "fake_target.h"
#include "stub/record.h"

/* Runs what the target was asked to (resume, including the record layer's
 * replays), stop by stop, until it is stopped and nothing more was asked. */
void fake_machine_settle(struct fake *f);
/* Checkpoint operations over f; nondeterministic: what they answer (NULL:
 * replays repeat). */
struct stub_checkpoint_ops fake_machine_checkpoints(struct fake *f, const char **nondeterministic);

#endif
