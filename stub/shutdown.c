/* Ending kvmstub (shutdown.h). */
#include "shutdown.h"

void stub_shutdown_request(struct stub_shutdown *s, int status)
{
    if (!s->requested) {
        s->requested = true;
        s->status = status;
    }
    if (s->notify)
        s->notify(s->ctx);
}
