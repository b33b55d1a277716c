/* The demo resource set of `coapd --demo` (SPEC "Demo resources"): what
 * public CoAP test servers offer, for trying clients out. */
#ifndef COAPD_DEMO_H
#define COAPD_DEMO_H

#include <coapkit/coapkit.h>

struct demo;

/* Creates the demo resources on ctx, with the timers (on ctx's loop)
 * that notify /time and /obs every second and send the separate answers
 * of /separate. Returns 0 and stores the state in *out, or a negative
 * CK_E... error. */
int demo_new(struct ck_ctx *ctx, struct demo **out);

/* Drops unanswered separate responses and frees the state. Call it
 * before ck_ctx_free(), which frees the resources. NULL is ignored. */
void demo_free(struct demo *d);

#endif
