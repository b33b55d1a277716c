/* The device endpoint: Drogue Cloud's CoAP contract (SPEC "Device
 * endpoint") on the bus (bus.h) and the registry's devices (registry.h).
 *
 * A device POSTs (or PUTs) telemetry to v1/{channel}[/{subject...}],
 * authenticated by CoAP option 4209 ("Basic base64(device@application:
 * password)") or, once DTLS exposes it, by its transport identity. The
 * message goes onto the bus as a CloudEvent 1.0 in JSON on topic
 * app/{application}/{device}/{channel}, where the pub/sub gateway's
 * observers (ps/app/...) and an MQTT broker's subscribers see it. With
 * ct=N the device then waits up to N seconds for a command published to
 * command/{application}/{device}/{name}, which comes back as 2.05 with
 * the name in option 4210. docs/devices.md is the user's guide.
 */
#ifndef COAPD_DEVICE_H
#define COAPD_DEVICE_H

#include <stdint.h>

#include <coapkit/coapkit.h>

#include "bus.h"
#include "registry.h"

/* CoAP options of Drogue's contract. Both are odd, hence critical
 * (RFC 7252 §5.4.1): coapd declares 4209 recognized, and a device that
 * waits for commands must understand 4210. */
enum { DEVICE_OPT_AUTH = 4209, DEVICE_OPT_COMMAND = 4210 };

/* Limits; zero fields take the defaults. */
struct device_config {
  uint32_t max_waiting;   /* devices waiting for a command at once, 10000 */
  uint32_t max_ct_s;      /* a longer ct is cut to this, 60 */
  uint32_t max_payload;   /* telemetry body bytes, 16384 */
};

/* Counters for metrics (running totals, and current values). */
struct device_stats {
  uint64_t accepted;           /* telemetry messages put on the bus */
  uint64_t auth_failures;      /* 4.03 answers */
  uint64_t bad_requests;       /* 4.00, 4.06, 4.13 answers */
  uint64_t unavailable;        /* 5.03 answers (caps, the bus refused) */
  uint64_t commands_delivered; /* commands handed to a waiting device */
  uint64_t commands_dropped;   /* commands with no device waiting here */
  uint64_t waits_expired;      /* windows that closed without a command */
  uint64_t waiting;            /* current: devices waiting for a command */
};

struct device_ep;

/* Adds the endpoint's resource tree (v1/#) to ctx, declares option 4209
 * recognized and subscribes to the commands. bus and reg stay the
 * caller's and must outlive the endpoint. Returns 0 and *out, or
 * CK_ENOMEM, CK_EEXIST (v1 is taken) or CK_EFULL (the bus's
 * subscriptions). */
int device_new(struct ck_ctx *ctx, const struct device_config *cfg,
               struct bus *bus, struct registry *reg, struct device_ep **out);

/* Answers every waiting device 2.04 (its telemetry was accepted) and
 * every publish still pending 5.03, and frees the endpoint; the
 * resource stays in the context, without handlers. A NULL d is
 * ignored. */
void device_free(struct device_ep *d);

void device_stats(const struct device_ep *d, struct device_stats *out);

#endif
