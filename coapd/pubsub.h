/* The publish/subscribe gateway: EMQX's CoAP gateway contract (SPEC,
 * "Publish/subscribe gateway") on the bus (bus.h).
 *
 * ps/{+topic} and the legacy mqtt/{+topic} publish (POST, PUT) and
 * subscribe (GET with Observe); mqtt/connection manages connection-mode
 * sessions (pubsub_session.c). Each subscription is a library observer
 * fed from a bus subscription: notifications keep their order, at most
 * one CON is in flight per observer, and a bounded queue drops its
 * oldest entry when full (the library's ck_observer).
 */
#ifndef COAPD_PUBSUB_H
#define COAPD_PUBSUB_H

#include <stdbool.h>
#include <stdint.h>

#include <coapkit/coapkit.h>

#include "bus.h"
#include "registry.h"
#include "store.h"

enum pubsub_notify_type { NOTIFY_QOS = 0, NOTIFY_CON, NOTIFY_NON };

struct pubsub_config {
  bool connection_required;       /* --connection-required */
  uint32_t heartbeat_s;           /* --heartbeat, 30 */
  int notify_type;                /* enum pubsub_notify_type, qos */
  uint8_t unsubscribe_code;       /* unsubscribe_code: 2.05, or 2.07 */
  uint32_t queue_max;             /* observer_queue, 100 */
  uint32_t max_sessions;          /* 100000 */
  uint32_t max_payload;           /* publish payload cap, 1024 */
};

/* Counters for metrics (current values and running totals). */
struct pubsub_stats {
  uint64_t sessions;          /* current connection-mode sessions */
  uint64_t subscriptions;     /* current observer subscriptions */
  uint64_t published;         /* publishes accepted */
  uint64_t notifications;     /* notifications handed to observers */
  uint64_t queue_drops;       /* notifications dropped by a full queue */
  uint64_t ended_reset;       /* observations ended by RST */
  uint64_t ended_timeout;     /* ... by CON notifications timing out */
  uint64_t ended_other;       /* deregistered, unreachable, expired */
  uint64_t sessions_expired;  /* sessions removed by a lapsed heartbeat */
  uint64_t auth_failures;     /* 4.01 answers */
  uint64_t acl_denied;        /* 4.03 answers */
  uint64_t bad_requests;      /* 4.00 answers */
  uint64_t unavailable;       /* 5.03 answers: a cap was reached */
};

struct pubsub;

/* Adds the gateway's resources to ctx. bus, reg and st stay the
 * caller's and must outlive the gateway; st may be NULL (sessions are
 * then not persisted). Returns 0 and *out, or a negative error. */
int pubsub_new(struct ck_ctx *ctx, const struct pubsub_config *cfg,
               struct bus *bus, struct registry *reg, struct store *st,
               struct pubsub **out);
void pubsub_free(struct pubsub *ps);
void pubsub_stats(const struct pubsub *ps, struct pubsub_stats *out);

#endif
