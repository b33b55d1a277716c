/* The message bus: where the pub/sub gateway and the device endpoint
 * publish, and where their subscriptions are fed from. One interface, two
 * implementations: bus_embedded.c, an in-process topic tree (the
 * default), and bus_mqtt.c, a bridge to an MQTT broker (libmosquitto).
 *
 * Topics and filters follow MQTT 3.1.1 §4.7: '/'-separated levels, '+'
 * matches one level, '#' (last level only) matches the rest including
 * the parent, and a filter starting with a wildcard does not match a topic
 * starting with '$'. Everything runs on the daemon's loop thread;
 * deliveries happen inside bus_publish() or from the loop, never from
 * another thread.
 */
#ifndef COAPD_BUS_H
#define COAPD_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Caps: a topic or filter (bytes, NUL excluded), levels in one. */
enum { BUS_TOPIC_MAX = 1024, BUS_LEVELS_MAX = 64 };

/* One message. Views: the bus copies what it keeps. */
struct bus_msg {
  const char *topic; /* NUL-terminated, valid topic name */
  const uint8_t *payload;
  size_t len;
  int cf;            /* CoAP Content-Format, -1: none */
  uint8_t qos;       /* 0, 1, 2 */
  bool retain;
  uint32_t expiry_s; /* message expiry interval, 0: never */
  /* Set by the bus on delivery: the message is a retained one sent
   * because of a new subscription, and the seconds left of its expiry
   * (0: none). Ignored by bus_publish(). */
  bool from_retained;
  uint32_t expiry_left_s;
};

struct bus;
struct bus_sub;

/* Receives one message for a subscription. m is valid during the call
 * only. m->qos is the lower of the message's and the subscription's;
 * m->retain is set only on retained messages sent to a new subscription
 * (MQTT 3.1.1 §3.3.1.3). The callback may publish, subscribe or
 * unsubscribe (itself or others); it must not call bus_free(). */
typedef void (*bus_deliver_fn)(void *user, const struct bus_msg *m);

/* Where retained messages live across restarts: the embedded bus calls
 * these (store.c implements them on SQLite); a NULL table keeps them in
 * memory only. save returns 0 or a negative error, and bus_publish()
 * fails with it: a retained message is acknowledged only once stored. */
struct bus_persist {
  int (*save)(void *user, const struct bus_msg *m, int64_t expires_at);
  int (*remove)(void *user, const char *topic);
  /* Calls fn for every stored message (expires_at: Unix seconds, 0:
   * never); returns 0 or an error. */
  int (*load)(void *user,
              void (*fn)(void *arg, const struct bus_msg *m,
                         int64_t expires_at),
              void *arg);
  void *user;
};

/* Counters, for metrics. */
struct bus_stats {
  uint64_t published;      /* messages accepted by bus_publish() */
  uint64_t delivered;      /* deliveries to subscriptions */
  uint64_t expired;        /* retained messages dropped by expiry */
  uint64_t subscriptions;  /* current */
  uint64_t retained;       /* current */
  uint64_t retained_bytes; /* current payload bytes held */
  uint64_t dropped;        /* messages accepted but not delivered (no
                              memory) or not loaded (caps) */
  /* The MQTT bus only (zero for the embedded one). */
  uint64_t connected;  /* 1 while the broker connection is up */
  uint64_t reconnects; /* connections made after the first */
  uint64_t buffered;   /* current: publishes held for the broker (waiting
                          for a connection or for its acknowledgement) */
  uint64_t refused;    /* publishes refused because that buffer was full */
};

/* The completion of a publish that the bus could not settle at once
 * (the MQTT bus at QoS 1 or 2: when the broker has acknowledged it).
 * result is 0 or a negative errno value. Called exactly once, from the
 * loop, never from inside the bus_publish_acked() call itself. */
typedef void (*bus_done_fn)(void *user, int result);

/* bus_publish_acked() returns this when done will be called. */
enum { BUS_PENDING = 1 };

/* The interface each implementation fills. publish's done may be NULL:
 * the caller does not wait, and a bus that would have answered later
 * returns 0 at once. */
struct bus_ops {
  int (*publish)(struct bus *b, const struct bus_msg *m, bus_done_fn done,
                 void *user);
  int (*subscribe)(struct bus *b, const char *filter, uint8_t qos,
                   bus_deliver_fn fn, void *user, struct bus_sub **out);
  void (*unsubscribe)(struct bus *b, struct bus_sub *s);
  void (*stats)(const struct bus *b, struct bus_stats *out);
  void (*free)(struct bus *b);
};

struct bus {
  const struct bus_ops *ops;
};

/* Limits of the embedded bus; zero fields take the defaults. */
struct bus_embedded_config {
  size_t max_retained;       /* retained messages, 100000 */
  size_t max_retained_bytes; /* their payload bytes, 256 MiB */
  size_t max_subscriptions;  /* 1000000 */
  size_t max_payload;        /* one message, 65536 */
  /* Wall clock in Unix seconds, for expiry; NULL: time(). Tests set it. */
  int64_t (*now_s)(void *user);
  void *now_user;
};

/* Creates the embedded bus; persist may be NULL. Loads the stored
 * retained messages (dropping expired ones). Returns 0 and *out, or
 * -ENOMEM, or the loader's error. */
int bus_embedded_new(const struct bus_embedded_config *cfg,
                     const struct bus_persist *persist, struct bus **out);

/* Publishes m: delivers it to every matching subscription, in
 * subscription order, before returning. A retained message (m->retain)
 * replaces the topic's retained one; an empty retained payload clears it
 * (MQTT 3.3.1.3). A publish made from inside a delivery callback is
 * stored (if retained) at once and delivered after the message being
 * delivered, before the outermost bus call returns, so that every
 * subscriber sees messages in publish order; such a publish fails with
 * -ENOSPC when that queue is full (embedded bus: 65536). Returns 0,
 * -EINVAL (topic not a valid topic name, qos over 2), -EMSGSIZE (payload
 * over max_payload), -ENOSPC (retained caps reached: not stored, not
 * delivered), -ENOMEM, or the persistence error. */
static inline int bus_publish(struct bus *b, const struct bus_msg *m)
{
  return b->ops->publish(b, m, NULL, NULL);
}

/* As bus_publish(), for a publisher that waits until the message is
 * safe (a CON publish, answered 2.04 only then): returns BUS_PENDING
 * when the bus will call done later with the result (the MQTT bus with
 * m->qos >= 1), else what bus_publish() returns; done is then not
 * called. The embedded bus never pends: a message is delivered, and a
 * retained one stored, before it returns. */
static inline int bus_publish_acked(struct bus *b, const struct bus_msg *m,
                                    bus_done_fn done, void *user)
{
  return b->ops->publish(b, m, done, user);
}

/* Subscribes to filter. The retained messages matching it are delivered
 * before this returns (m->from_retained set), oldest first; *out is set
 * before the first of them, so the callback may unsubscribe it. The MQTT
 * bus delivers them later, from the loop, when the broker sends them. A
 * subscription made inside a delivery callback gets the messages
 * published after it, not the one being delivered. Returns 0 and *out,
 * -EINVAL (not a valid filter, qos over 2), -ENOSPC (max_subscriptions)
 * or -ENOMEM. */
static inline int bus_subscribe(struct bus *b, const char *filter,
                                uint8_t qos, bus_deliver_fn fn, void *user,
                                struct bus_sub **out)
{
  return b->ops->subscribe(b, filter, qos, fn, user, out);
}

/* Ends a subscription; nothing is delivered to it afterwards, not even
 * the rest of a delivery in progress. A NULL s is ignored. */
static inline void bus_unsubscribe(struct bus *b, struct bus_sub *s)
{
  if (s)
    b->ops->unsubscribe(b, s);
}

static inline void bus_stats(const struct bus *b, struct bus_stats *out)
{
  b->ops->stats(b, out);
}

static inline void bus_free(struct bus *b)
{
  if (b)
    b->ops->free(b);
}

/* topic.c: validation and matching, shared by both implementations. */

/* True when s (len bytes) is a valid topic name to publish to: 1 to
 * BUS_TOPIC_MAX bytes of UTF-8, no NUL, no '+' or '#'. */
bool bus_topic_valid(const char *s, size_t len);

/* True when s is a valid filter: like a topic, plus '+' as a whole level
 * and '#' as the whole last level. */
bool bus_filter_valid(const char *s, size_t len);

/* True when filter matches topic (both valid), with the '$' rule. */
bool bus_filter_match(const char *filter, const char *topic);

#endif
