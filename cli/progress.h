/* A progress bar for block-wise transfers, on standard error when it is a
 * terminal. The client library hands over a body only when it is whole,
 * so the bar is driven by the messages themselves (the trace hook): each
 * Block2 response and each acknowledged Block1 request is one block more,
 * and Size2/Size1 tell the total when the peer sends them. */
#ifndef COAP_CLI_PROGRESS_H
#define COAP_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <coapkit/coapkit.h>

struct cli_progress {
  FILE *f;    /* NULL: no progress is shown */
  bool drawn; /* a bar is on the screen */
  uint64_t t0, t_draw;
  uint64_t bytes, total;
  unsigned blocks;
  uint32_t up_num; /* the Block1 block in flight */
  size_t up_len;
  bool up_pending;
};

/* Starts a transfer's progress; f is NULL when none should be shown. */
void cli_progress_start(struct cli_progress *p, FILE *f);

/* Counts a message sent or received (from the trace hook). */
void cli_progress_msg(struct cli_progress *p, bool sent,
                      const struct ck_msg *m);

/* Removes the bar, if one is shown. */
void cli_progress_end(struct cli_progress *p);

#endif
