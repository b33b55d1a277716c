/* The MQTT bus (bus_mqtt.c): struct bus_ops through a real MQTT broker
 * (Mosquitto, or an EMQX/VerneMQ/HiveMQ cluster), so that several coapd
 * instances share topics and retained messages. docs/scale-out.md tells
 * the operator's side.
 *
 * Where it differs from the embedded bus (bus.h):
 * - retained messages come from the broker, after bus_subscribe() has
 *   returned, from the loop;
 * - a publish goes to the broker and comes back to the local
 *   subscriptions from it (a local subscriber sees its own instance's
 *   publishes once the broker has routed them);
 * - bus_publish() and bus_publish_acked() also return -EAGAIN when the
 *   broker is away and the buffer of waiting publishes is full;
 * - bus_publish_acked() with m->qos >= 1 returns BUS_PENDING and calls
 *   done(0) once the broker acknowledged (PUBACK, PUBCOMP), or done(-EIO)
 *   when the broker refused it. bus_free() drops the completions still
 *   pending without calling them.
 */
#ifndef COAPD_BUS_MQTT_H
#define COAPD_BUS_MQTT_H

#include <stddef.h>

#include "bus.h"

struct ck_ctx;

/* The longest bus URL, NUL included. */
enum { BUS_MQTT_URL_MAX = 1024 };

/* Zero or NULL fields take the defaults. Strings are copied. */
struct bus_mqtt_config {
  /* mqtt://[USER:PASSWORD@]HOST[:PORT][/PREFIX]; port 1883. A gateway
   * topic a/b is the MQTT topic PREFIX/a/b (a/b without a prefix). */
  const char *url;
  const char *client_id;     /* coapd-<hostname>-<pid> */
  size_t max_buffered;       /* publishes held, 10000 */
  size_t max_buffered_bytes; /* their payload bytes, 16 MiB */
  unsigned keepalive_s;      /* MQTT keep alive, 30 */
  /* TLS to the broker when cafile is set (mosquitto_tls_set); certfile
   * and keyfile, both or neither, for a client certificate. */
  const char *cafile, *certfile, *keyfile;
};

/* Checks url as bus_mqtt_new() reads it. Returns 0, or -EINVAL with one
 * line saying why in err. */
int bus_mqtt_url_check(const char *url, char *err, size_t cap);

/* Creates the MQTT bus on ctx's loop and starts connecting (the broker
 * need not be up: it reconnects, 0.5 s doubling to 30 s). Returns 0 and
 * *out, -EINVAL (a bad URL or TLS setting) or -ENOMEM. */
int bus_mqtt_new(struct ck_ctx *ctx, const struct bus_mqtt_config *cfg,
                 struct bus **out);

#endif
