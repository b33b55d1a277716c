/* The text a Prometheus scrape of coapd reads: the library's counters
 * (ck_ctx_stats), the bus's (bus_stats), the gateway's (pubsub_stats)
 * and the device endpoint's (device_stats)
 * in the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Every family is announced by a # HELP and a # TYPE line and its samples
 * follow at once, since the format wants a family's lines together. Names
 * take the coapd_ prefix; counters end in _total, as Prometheus's naming
 * guide asks, and gauges (what is current, not a running total) do not.
 * A family with labels (responses by code, observations ended by reason)
 * is one family, so that a query can sum over the label. The writer is a
 * cursor over the caller's buffer: nothing is allocated, and a buffer that
 * is too small is told with -ENOSPC rather than a truncated scrape.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

/* A cursor over the caller's buffer; once one write does not fit, every
 * later one is skipped and the result is -ENOSPC. */
struct out {
  char *buf;
  size_t cap, len;
  bool full;
};

static void put(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
  if (o->full)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= o->cap - o->len) {
    o->full = true;
    return;
  }
  o->len += (size_t)n;
}

static void family(struct out *o, const char *name, const char *type,
                   const char *help)
{
  put(o, "# HELP coapd_%s %s\n# TYPE coapd_%s %s\n", name, help, name, type);
}

/* A family with one unlabelled sample. */
static void counter(struct out *o, const char *name, const char *help,
                    uint64_t v)
{
  family(o, name, "counter", help);
  put(o, "coapd_%s %llu\n", name, (unsigned long long)v);
}

static void gauge(struct out *o, const char *name, const char *help,
                  uint64_t v)
{
  family(o, name, "gauge", help);
  put(o, "coapd_%s %llu\n", name, (unsigned long long)v);
}

/* The library's caps (struct ck_ctx_config): what each holds now, and
 * what hitting it refused or reaping dropped. A refusal is the answer
 * the client saw: 5.03 with Max-Age for an upload or for a POST the
 * dedup table cannot remember, a plain GET without Observe for an
 * observer (RFC 7641 4.1). */
static void limit_families(struct out *o, const struct ck_stats *s)
{
  counter(o, "dedup_evictions_total",
          "Remembered exchanges forgotten early: dedup_max_bytes reached.",
          s->dedup_evictions);
  counter(o, "dedup_refused_total",
          "POSTs answered 5.03: dedup table full of young exchanges.",
          s->dedup_refused);
  gauge(o, "dedup_bytes", "Memory the dedup table holds.", s->dedup_bytes);
  gauge(o, "peers", "Peers (IP addresses, IPv6 /64s) holding observers or "
        "uploads.", s->peers);
  counter(o, "peers_rejected_total",
          "Observers or uploads refused: max_peers reached.",
          s->peers_rejected);
  family(o, "observers_rejected_total", "counter",
         "Observe registrations refused (answered as a plain GET), by cap.");
  put(o,
      "coapd_observers_rejected_total{cap=\"max_observers\"} %llu\n"
      "coapd_observers_rejected_total{cap=\"max_observers_per_resource\"} "
      "%llu\n"
      "coapd_observers_rejected_total{cap=\"max_observers_per_peer\"} "
      "%llu\n",
      (unsigned long long)s->observers_rejected,
      (unsigned long long)s->observers_rejected_resource,
      (unsigned long long)s->observers_rejected_peer);
  gauge(o, "uploads", "Block1 uploads being reassembled.", s->uploads);
  gauge(o, "upload_bytes", "Bytes the Block1 uploads hold.",
        s->upload_bytes);
  family(o, "uploads_rejected_total", "counter",
         "Block1 uploads refused or ended with 5.03, by cap.");
  put(o,
      "coapd_uploads_rejected_total{cap=\"max_uploads\"} %llu\n"
      "coapd_uploads_rejected_total{cap=\"max_uploads_per_peer\"} %llu\n"
      "coapd_uploads_rejected_total{cap=\"max_upload_bytes\"} %llu\n",
      (unsigned long long)s->uploads_rejected,
      (unsigned long long)s->uploads_rejected_peer,
      (unsigned long long)s->uploads_rejected_bytes);
  counter(o, "uploads_expired_total",
          "Block1 uploads dropped after upload_idle_ms without a block.",
          s->uploads_expired);
  gauge(o, "notify_queued", "Notifications queued for observers.",
        s->notify_queued);
  counter(o, "notify_dropped_cap_total",
          "Of notify_dropped_total: dropped because max_queued_notes was "
          "reached.",
          s->notify_dropped_cap);
  counter(o, "responses_failed_total",
          "Handler answers that could not be built: sent as 5.00.",
          s->responses_failed);
}

static void ctx_families(struct out *o, const struct ck_ctx *ctx)
{
  /* ck_stats holds 256 response counters: 2 KiB, fine on the stack. */
  struct ck_stats s;
  ck_ctx_stats(ctx, &s);
  counter(o, "datagrams_received_total", "UDP datagrams received.",
          s.rx_datagrams);
  counter(o, "datagrams_sent_total", "UDP datagrams sent.", s.tx_datagrams);
  counter(o, "malformed_total",
          "Datagrams with a message format error (RFC 7252 4.2: "
          "a CON is answered with RST).",
          s.rx_malformed);
  counter(o, "duplicates_total",
          "Retransmitted requests answered from the exchange cache.",
          s.rx_duplicates);
  counter(o, "retransmits_total", "CON messages sent again.",
          s.tx_retransmits);
  counter(o, "dropped_total", "Sends that failed or found no room.",
          s.tx_dropped);
  gauge(o, "observers", "Current observers across all resources.",
        s.observers);
  counter(o, "notify_dropped_total",
          "Notifications dropped by an observer's full queue.",
          s.notify_dropped);
  counter(o, "echo_challenges_total",
          "Large answers to unverified sources replaced by 4.01 with "
          "Echo (RFC 9175 2.4).",
          s.echo_challenges);
  counter(o, "echo_fresh_challenges_total",
          "State-changing requests refused for want of a fresh Echo.",
          s.echo_fresh_challenges);
  counter(o, "echo_rejected_total",
          "Echo values forged, altered, for another address or expired.",
          s.echo_rejected);
  counter(o, "echo_verified_total",
          "Source addresses verified by an Echo round trip.",
          s.echo_verified);
  counter(o, "echo_evictions_total",
          "Verified sources forgotten at echo_verified_max.",
          s.echo_evictions);
  counter(o, "echo_dropped_total",
          "Answers not sent because even the 4.01 would amplify.",
          s.echo_dropped);
  limit_families(o, &s);
  /* Only the codes seen: 256 lines of zeros would bury the few that
   * matter. The class.detail form (RFC 7252 3: c.dd) is how operators
   * and the CoAP tools name a code. */
  family(o, "responses_total", "counter",
         "Responses sent (piggybacked, separate and notifications), by "
         "code.");
  for (unsigned c = 0; c < 256; c++)
    if (s.responses[c])
      put(o, "coapd_responses_total{code=\"%u.%02u\"} %llu\n", c >> 5,
          c & 31, (unsigned long long)s.responses[c]);

  struct ck_dtls_stats d;
  ck_ctx_dtls_stats(ctx, &d);
  gauge(o, "dtls_sessions", "Current DTLS sessions.", d.sessions);
  counter(o, "dtls_handshakes_total",
          "DTLS handshakes completed, resumed ones included.", d.handshakes);
  counter(o, "dtls_resumed_total", "DTLS handshakes that resumed a session.",
          d.resumed);
  counter(o, "dtls_handshakes_failed_total", "DTLS handshakes that failed.",
          d.handshakes_failed);
  counter(o, "dtls_cookies_sent_total",
          "HelloVerifyRequests sent before keeping any state.",
          d.cookies_sent);
  counter(o, "dtls_refused_full_total",
          "ClientHellos ignored because dtls_max_sessions was reached.",
          d.refused_full);
  counter(o, "dtls_expired_total", "DTLS sessions dropped for idleness.",
          d.expired);
  counter(o, "dtls_records_dropped_total",
          "Datagrams that did not decrypt.", d.records_dropped);
}

static void bus_families(struct out *o, const struct bus *b)
{
  struct bus_stats s = {0};
  bus_stats(b, &s);
  counter(o, "bus_published_total", "Messages accepted by the bus.",
          s.published);
  counter(o, "bus_delivered_total", "Deliveries to bus subscriptions.",
          s.delivered);
  counter(o, "bus_expired_total", "Retained messages dropped by expiry.",
          s.expired);
  gauge(o, "bus_subscriptions", "Current bus subscriptions.",
        s.subscriptions);
  gauge(o, "bus_retained", "Current retained messages.", s.retained);
  gauge(o, "bus_retained_bytes", "Payload bytes of the retained messages.",
        s.retained_bytes);
  gauge(o, "bus_connected", "1 while the MQTT bus is connected to its broker.",
        s.connected);
  counter(o, "bus_reconnects_total", "Broker connections after the first.",
          s.reconnects);
  gauge(o, "bus_buffered", "Publishes held for the broker.", s.buffered);
  counter(o, "bus_refused_total",
          "Publishes refused because the broker buffer was full.", s.refused);
}

static void pubsub_families(struct out *o, const struct pubsub *ps)
{
  struct pubsub_stats s = {0};
  pubsub_stats(ps, &s);
  gauge(o, "pubsub_sessions", "Current connection-mode sessions.",
        s.sessions);
  gauge(o, "pubsub_subscriptions", "Current observer subscriptions.",
        s.subscriptions);
  counter(o, "pubsub_published_total", "Publishes accepted.", s.published);
  counter(o, "pubsub_notifications_total",
          "Notifications handed to observers.", s.notifications);
  counter(o, "pubsub_queue_drops_total",
          "Notifications dropped by a full observer queue.", s.queue_drops);
  /* RFC 7641 4.5: an RST and a CON that times out both end an
   * observation; told apart, a lossy path shows as timeouts. */
  family(o, "pubsub_observations_ended_total", "counter",
         "Observations ended, by reason.");
  put(o,
      "coapd_pubsub_observations_ended_total{reason=\"reset\"} %llu\n"
      "coapd_pubsub_observations_ended_total{reason=\"timeout\"} %llu\n"
      "coapd_pubsub_observations_ended_total{reason=\"other\"} %llu\n",
      (unsigned long long)s.ended_reset, (unsigned long long)s.ended_timeout,
      (unsigned long long)s.ended_other);
  counter(o, "pubsub_sessions_expired_total",
          "Sessions removed because their heartbeat lapsed.",
          s.sessions_expired);
  counter(o, "pubsub_auth_failures_total",
          "Requests refused for failed authentication (4.01).",
          s.auth_failures);
  counter(o, "pubsub_acl_denied_total",
          "Requests refused by an ACL (4.03).", s.acl_denied);
  counter(o, "pubsub_bad_requests_total",
          "Requests refused as malformed (4.00).", s.bad_requests);
  counter(o, "pubsub_unavailable_total",
          "Requests answered 5.03 with Max-Age (max_sessions, "
          "max_subscriptions, max_observers..., retained caps).",
          s.unavailable);
}

static void device_families(struct out *o, const struct device_ep *d)
{
  struct device_stats s = {0};
  device_stats(d, &s);
  counter(o, "device_accepted_total",
          "Telemetry messages from devices put on the bus.", s.accepted);
  counter(o, "device_auth_failures_total",
          "Device requests refused for their credentials (4.03).",
          s.auth_failures);
  counter(o, "device_bad_requests_total",
          "Device requests refused as malformed (4.00, 4.06, 4.13).",
          s.bad_requests);
  counter(o, "device_unavailable_total",
          "Device requests answered 5.03 (caps, the bus refused).",
          s.unavailable);
  counter(o, "device_commands_delivered_total",
          "Commands handed to a waiting device.", s.commands_delivered);
  counter(o, "device_commands_dropped_total",
          "Commands that found no device waiting on this instance.",
          s.commands_dropped);
  counter(o, "device_waits_expired_total",
          "Command windows (ct) that closed without a command.",
          s.waits_expired);
  gauge(o, "device_waiting", "Devices waiting for a command now.",
        s.waiting);
}

int metrics_format(const struct metrics_source *src, char *buf, size_t cap)
{
  if (!buf || cap == 0)
    return -ENOSPC;
  struct out o = {.buf = buf, .cap = cap};
  buf[0] = '\0';
  if (src && src->ctx)
    ctx_families(&o, src->ctx);
  if (src && src->bus)
    bus_families(&o, src->bus);
  if (src && src->pubsub)
    pubsub_families(&o, src->pubsub);
  if (src && src->device)
    device_families(&o, src->device);
  if (o.full) {
    buf[0] = '\0';
    return -ENOSPC;
  }
  /* The length must fit the int we return; a scrape is a few KiB. */
  return o.len > (size_t)INT32_MAX ? -ENOSPC : (int)o.len;
}
