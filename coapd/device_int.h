/* The inside of the device endpoint, shared by device.c (requests),
 * device_auth.c (the Basic credentials of option 4209, a parser with a
 * fuzz target), device_event.c (the CloudEvent) and device_command.c
 * (devices waiting for commands). Internal to coapd; the parsers here
 * depend on nothing but the C library, so that the fuzz target and the
 * unit tests take them alone. */
#ifndef COAPD_DEVICE_INT_H
#define COAPD_DEVICE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device.h"

/* --- device_auth.c --- */

/* Decodes standard base64 (RFC 4648 §4) strictly: the length a multiple
 * of 4, padding only at the end, no other characters (no whitespace, no
 * URL-safe alphabet), and the unused bits of the last group zero, so that
 * every accepted text is the one encoding of its bytes. Returns the
 * number of bytes written to out, or -EINVAL (not such a text) or
 * -EMSGSIZE (over cap). */
int device_base64_decode(const char *in, size_t len, uint8_t *out,
                         size_t cap);

/* Encodes n bytes as padded standard base64 into out (NUL-terminated).
 * Returns the length, or -EMSGSIZE when cap is too small (it must
 * exceed 4 * ceil(n / 3)). */
int device_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* The credentials in option 4209, as views into the caller's buffer. */
struct device_creds {
  const char *device;
  size_t device_len;
  const char *application; /* NULL: "device:password", no application */
  size_t application_len;
  const char *password;
  size_t password_len;
};

/* Cap of the decoded credentials: two names and a password. */
enum { DEVICE_CREDS_MAX = 2 * 256 + 1024 + 2 };

/* Parses an option 4209 value, "Basic " then base64 of
 * "device[@application]:password" (RFC 7617 §2: the scheme is case-
 * insensitive; the user-id ends at the first ':', the password may hold
 * any byte). The device and application are 1 to 255 bytes without NUL,
 * '@' or ':' (registry.h's names cannot hold them, so the split is
 * unique); the password may be empty. The decoded text goes into buf;
 * out's views point into it. Returns 0, -EINVAL (another scheme, bad
 * base64, bad user-id) or -EMSGSIZE (over cap). */
int device_auth_parse(const uint8_t *val, size_t len, char *buf, size_t cap,
                      struct device_creds *out);

/* --- device_event.c --- */

/* True for content formats whose media type is JSON: application/json
 * or a "+json" structured syntax suffix (RFC 6839 §3.1), as the library's
 * registry names them, but not a content-coded one (11050, deflate). */
bool device_cf_is_json(int cf);

/* True when p[0..n) is one JSON text (RFC 8259): UTF-8, no control
 * characters but whitespace, one value and nothing after it but
 * whitespace. */
bool device_json_valid(const uint8_t *p, size_t n);

/* True when p[0..n) is well-formed UTF-8 (RFC 3629 §4) without NUL. */
bool device_utf8_valid(const uint8_t *p, size_t n);

/* A random UUID (RFC 9562 §5.4, version 4) from GnuTLS's generator, in
 * its 36-character text form. Returns 0 or -EIO. */
int device_event_uuid(char out[37]);

/* Unix time in milliseconds as RFC 3339 UTC with milliseconds
 * ("2026-11-30T12:00:00.000Z"). Returns 0, or -EINVAL for a time that
 * does not fit. */
int device_event_time(int64_t unix_ms, char out[32]);

/* One accepted telemetry message, as the CloudEvent tells it. Strings
 * are NUL-terminated and valid UTF-8; optional ones may be NULL. */
struct device_event {
  const char *id;          /* device_event_uuid() */
  const char *time;        /* device_event_time() */
  const char *application;
  const char *device;      /* the device the data is about (as=) */
  const char *sender;      /* the device that sent it (the gateway) */
  const char *channel;     /* the subject */
  const char *suffix;      /* the path after the channel, or NULL */
  const char *data_schema; /* or NULL */
  int cf;                  /* Content-Format, -1: none */
  const uint8_t *data;
  size_t len;
};

/* Writes e as a CloudEvent 1.0 in the JSON event format. A JSON body
 * (by content format, or without one when it parses, as Drogue does) is
 * "data", byte for byte; any other is "data_base64". Returns 0 and
 * *out (malloc'ed, NUL-terminated, the caller frees it) with *len, or
 * -EINVAL (a JSON content format whose body is not JSON) or -ENOMEM. */
int device_event_json(const struct device_event *e, char **out, size_t *len);

/* --- device_command.c --- */

struct waiter;
struct pending;

/* Sets up the waiting devices and the command subscription. Returns 0
 * or a negative error. */
int commands_init(struct device_ep *d);
/* Answers every waiting device 2.04 and removes the subscription. */
void commands_close(struct device_ep *d);
/* Reserves a place for application/device to wait: NULL (answered 5.03
 * by the caller) when max_waiting devices wait (unless this device is
 * one of them: it will take its own place) or memory is short. The
 * reservation counts against the cap until it ends. */
struct waiter *waiter_reserve(struct device_ep *d, const char *application,
                              const char *device);
/* Starts the reserved wait with the deferred answer def (taken over),
 * for ct_s seconds. A device already waiting is answered 2.04 now: the
 * newer request waits instead. */
void waiter_start(struct waiter *w, struct ck_deferred *def, uint32_t ct_s);
/* Gives a reservation back without waiting. A NULL w is ignored. */
void waiter_cancel(struct waiter *w);

/* --- device.c --- */

struct device_ep {
  struct ck_ctx *ctx;
  struct device_config cfg;
  struct bus *bus;
  struct registry *reg;
  struct ck_resource *res;
  struct device_stats st;
  /* device_command.c */
  struct waiter **buckets;
  size_t nbuckets;
  struct bus_sub *commands;
  /* device.c: publishes the bus settles later */
  struct pending *pendings;
};

#endif
