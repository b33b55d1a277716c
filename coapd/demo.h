/* The demo resource set of `coapd --demo` (SPEC "Demo resources"): what
 * public CoAP test servers offer, for trying clients out. */
#ifndef COAPD_DEMO_H
#define COAPD_DEMO_H

#include <coapkit/coapkit.h>

struct demo;

/* Creates the demo resources on ctx. Returns 0 and stores the state in
 * *out, or a negative CK_E... error. */
int demo_new(struct ck_ctx *ctx, struct demo **out);

/* A timer descriptor the application's loop watches; when it is readable,
 * call demo_run(), then let the context flush (ck_ctx_process). */
int demo_fd(const struct demo *d);

/* Does what is due: notifications of /time and /obs every second, and
 * the separate responses of /separate. */
void demo_run(struct demo *d);

/* Drops unanswered separate responses and frees the state. Call it
 * before ck_ctx_free(), which frees the resources. NULL is ignored. */
void demo_free(struct demo *d);

#endif
