/* coap-pubsub-bench's internal seam: one publisher and N subscribers on
 * one topic, driven through coapd's CoAP pub/sub gateway (SPEC.md,
 * "Publish/subscribe gateway") or through an MQTT broker with
 * libmosquitto, with the same publish schedule and the same accounting,
 * so that the two can be compared in one run.
 *
 * The tool is four files: pubsub_bench.c holds the options, the publish
 * schedule, the run loop and the report; pubsub_track.c is the payload
 * format and the per-subscriber sequence tracking (pure code, unit-tested
 * in tests/unit/test_bench_pubsub.c); pubsub_bench_coap.c and
 * pubsub_bench_mqtt.c are the two transports behind struct ps_proto.
 * Latencies go into coap-bench's histogram (coap_bench_hist.c).
 */
#ifndef PUBSUB_BENCH_H
#define PUBSUB_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "coap_bench.h"

/* The payload: magic and run id, sequence number, send time. Both the
 * CoAP and the MQTT payload start with these 16 bytes (big-endian),
 * padded to the chosen size. */
#define PS_HDR_LEN     16u
#define PS_MAGIC       0x5053u /* "PS" */
#define PS_MAX_PAYLOAD 1024u
#define PS_MAX_SUBS    50000u
#define PS_MAX_WINDOW  4096u
/* The most messages one run publishes: the per-message delivery counts
 * are an array of this many entries (16 MiB). */
#define PS_MAX_MESSAGES (4u << 20)

/* Set in a message's delivery count once it left the window (complete or
 * timed out), so that it leaves only once. */
#define PS_RETIRED 0x80000000u

struct ps_payload {
  uint16_t run;  /* the run's id: stale messages of another run differ */
  uint32_t seq;  /* 0, 1, 2, ... */
  uint64_t t_ns; /* CLOCK_MONOTONIC when published */
};

/* Writes p into buf[0..len), len >= PS_HDR_LEN, filling the rest with a
 * pattern. */
void ps_payload_encode(uint8_t *buf, size_t len, const struct ps_payload *p);

/* Reads buf[0..len) into *p. Returns 0, or -1 when it is too short or
 * does not carry the magic. */
int ps_payload_decode(const uint8_t *buf, size_t len, struct ps_payload *p);

/* What one subscriber has seen of the sequence. seqs below next_seq that
 * arrived are bits of `seen` (bit i: next_seq - 1 - i), so a duplicate is
 * told from a late message within the last 64 sequence numbers. */
struct ps_seqtrack {
  uint32_t next_seq;
  uint64_t seen;
};

enum ps_arrival {
  PS_NEW,     /* in order, or ahead of a gap */
  PS_LATE,    /* fills an earlier gap: arrived out of order */
  PS_DUP,     /* seen before */
  PS_TOO_OLD, /* more than 64 behind: counted as late, unchecked for dup */
};

/* Classifies the arrival of seq at one subscriber and updates t. */
enum ps_arrival ps_seqtrack_add(struct ps_seqtrack *t, uint32_t seq);

/* Counters of one run, over every subscriber. */
struct ps_stats {
  uint64_t published; /* publishes sent */
  uint64_t pub_ok;    /* publishes acknowledged (2.04 / PUBACK) */
  uint64_t pub_err;   /* publishes refused (4.xx/5.xx) or failed */
  uint64_t delivered; /* distinct (subscriber, message) deliveries */
  uint64_t in_window; /* of these, received within the -d window */
  uint64_t dup;       /* deliveries seen twice by one subscriber */
  uint64_t reordered; /* deliveries that arrived after a later one */
  uint64_t timed_out; /* messages not delivered to all in --timeout */
  uint64_t foreign;   /* messages of another run, or malformed */
  uint64_t errors;    /* socket errors */
  int last_errno;
  struct bench_hist lat; /* publish-to-notification latency, ns */
};

/* The run's shared state that the transports report into. */
struct ps_run {
  unsigned nsubs;
  unsigned qos;
  size_t psize;
  uint16_t run_id;
  uint64_t t_start_ns, t_end_ns; /* the measured window */
  uint32_t next_seq;
  uint32_t *count;           /* [seq]: distinct deliveries of message seq */
  struct ps_seqtrack *track; /* [subscriber] */
  struct ps_stats st;
  unsigned outstanding; /* messages not yet delivered to all nor timed out */
  char err[256];        /* the first fatal error, for the report */
};

/* Called by a transport for every message payload subscriber `sub`
 * receives, at time now_ns. */
void ps_deliver(struct ps_run *r, unsigned sub, const uint8_t *payload,
                size_t len, uint64_t now_ns);

/* Takes message seq out of the window when its --timeout has passed.
 * Returns true when it was still incomplete (a timeout), false when
 * every subscriber already had it. */
bool ps_retire(struct ps_run *r, uint32_t seq);

/* Records a fatal error message (the first one wins) and returns -1. */
__attribute__((format(printf, 2, 3))) int ps_fail(struct ps_run *r,
                                                  const char *fmt, ...);

/* A transport: the publisher and N subscribers of one system. Every
 * function returns 0 or -1 after ps_fail(). */
struct ps_proto {
  const char *name; /* "coapd", "mosquitto" */
  /* Connects the publisher and the run's N subscribers to topic and
   * waits (up to timeout_ms) until every subscription is in place. */
  int (*setup)(void **ctx, struct ps_run *r, const char *host, const char *port,
               const char *topic, unsigned timeout_ms);
  /* Publishes the payload; must not block. A send that fails counts in
   * st.pub_err and the message times out. */
  int (*publish)(void *ctx, const uint8_t *payload, size_t len);
  /* Waits up to timeout_ms for input and handles all that is ready:
   * notifications go to ps_deliver(), acknowledgements into st. */
  int (*poll)(void *ctx, int timeout_ms);
  /* Ends the subscriptions and frees everything. */
  void (*close)(void *ctx);
};

extern const struct ps_proto ps_proto_coap;
extern const struct ps_proto ps_proto_mqtt;

/* Returns CLOCK_MONOTONIC in nanoseconds. */
uint64_t ps_now_ns(void);

#endif
