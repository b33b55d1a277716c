/* What coap writes: the payload (raw, or readable on a terminal), one
 * JSON object per response (--json), and the verbose view of every
 * message sent and received (-v) on standard error.
 *
 * The verbose view is fed by the client library's trace hook, so it shows
 * the messages as they went over the wire: retransmissions, empty ACKs
 * and Resets included, each block of a block-wise transfer on its own.
 */
#ifndef COAP_CLI_OUTPUT_H
#define COAP_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <coapkit/coapkit.h>

enum { CLI_SENT_RING = 64 };

/* A message we sent, remembered to show retransmissions and the
 * round-trip time of its answer. */
struct cli_sent {
  uint64_t t_ms;
  uint16_t mid;
  uint8_t type, code, tkl;
  uint8_t token[CK_TOKEN_MAX];
  unsigned tries;
  bool answered;
  bool used;
};

struct cli_out {
  FILE *out; /* payloads and JSON: standard output or -o FILE */
  FILE *err; /* the verbose view and messages: standard error */
  bool verbose;
  bool json;
  bool pretty; /* out is a terminal and --raw was not given */
  struct cli_sent sent[CLI_SENT_RING];
  unsigned next;
};

/* Milliseconds of the monotonic clock. */
uint64_t cli_now_ms(void);

/* Writes the current UTC time as "2025-01-01T12:00:00.123Z". */
void cli_timestamp(char *buf, size_t cap);

/* Writes an option's value readably: a content format by name, a block
 * as NUM/M/SIZE, opaque bytes in hex, text with escapes. */
void cli_opt_text(const struct ck_opt *opt, char *buf, size_t cap);

/* The verbose view of one message (the trace hook calls it). */
void cli_out_trace(struct cli_out *o, bool sent, const struct ck_addr *peer,
                   const struct ck_msg *m);

/* The Content-Format of m, or -1. */
int cli_msg_cf(const struct ck_msg *m);

/* Writes a body to o->out: readably when o->pretty, else as is. */
void cli_out_body(struct cli_out *o, int cf, const uint8_t *p, size_t n);

/* Writes one response as a JSON object on one line of o->out. The links
 * of a link-format body are added as "links" when links is true. */
void cli_out_json(struct cli_out *o, const struct ck_client_response *r, bool links);

#endif
