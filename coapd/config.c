/* coapd's settings from the command line and the configuration file.
 *
 * Every setting is one row of the table below: its long option (NULL:
 * file only), its file key (NULL: command line only), its type, where it
 * lives in struct coapd_config and its range. Both parsers look names up
 * in the table and hand the value to set(), so a new setting is one row,
 * and --help is printed from the same rows.
 *
 * The command line is read twice: first to find --config, --help,
 * --version and to reject unknown options before anything else happens,
 * then, after the file, to apply the options so that they override it.
 */
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

enum kind {
  K_BOOL,
  K_U32,
  K_SIZE,
  K_INT,
  K_FLOAT,
  K_LEVEL,
  K_LISTEN,
  K_DTLS_LISTEN,
  K_PATH, /* a file's path, into a char[COAPD_PATH_MAX] */
  K_ADDR,
  K_DIR,
  K_ENUM, /* one of the '|'-separated words in arg, stored as its index
           * into an int */
  K_FILE,
  K_STR, /* text into a char array of max bytes, NUL included */
  K_BUS, /* K_STR holding "embedded" (stored as "") or an mqtt:// URL */
  K_HELP,
  K_VERSION
};

/* Where a value came from; listen[] is replaced, not appended to, when a
 * later source names addresses. */
enum { SRC_DEFAULT = 1, SRC_FILE, SRC_CLI };

struct setting {
  const char *opt; /* "--" + opt on the command line */
  const char *key; /* key in the file */
  enum kind kind;
  size_t off;
  double min, max;
  const char *arg; /* the value's name in --help */
  const char *help;
};

bool coapd_config_resolve = true;

#define F(field) offsetof(struct coapd_config, field)
#define P(field) offsetof(struct coapd_config, ctx.params.field)

static const struct setting table[] = {
    {"config", NULL, K_FILE, F(config_path), 0, 0, "FILE",
     "read settings from FILE (docs/coapd.md)"},
    {"listen", "listen", K_LISTEN, F(listen), 0, 0, "ADDR:PORT",
     "serve UDP here; repeatable; :PORT is 0.0.0.0 and [::]; ADDR may be "
     "a host name (every address it has)"},
    {"dtls-listen", "dtls_listen", K_DTLS_LISTEN, F(dtls_listen), 0, 0,
     "ADDR:PORT",
     "serve coaps:// (DTLS) here; repeatable; port 5684 by default; needs "
     "PSK devices or dtls_cert"},
    {"metrics-listen", "metrics_listen", K_ADDR, F(metrics_listen), 0, 0,
     "ADDR:PORT",
     "serve Prometheus metrics over HTTP at /metrics here (off); ADDR may "
     "be a host name (its first address)"},
    {"data-dir", "data_dir", K_DIR, F(data_dir), 0, 0, "DIR",
     "keep the daemon's data in DIR (./coapd-data), made 0700 at start"},
    {"multicast", "multicast", K_BOOL, F(multicast), 0, 0, NULL,
     "join 224.0.1.187, ff02::fd and ff05::fd"},
    {"demo", "demo", K_BOOL, F(demo), 0, 0, NULL,
     "serve the demo resources (/hello, /obs, ...)"},
    {"log-level", "log_level", K_LEVEL, F(log_level), 0, 0, "LEVEL",
     "error, warn, info (default) or debug"},
    {"connection-required", "connection_required", K_BOOL,
     F(pubsub.connection_required), 0, 0, NULL,
     "pub/sub clients must create a session (mqtt/connection) first"},
    {"heartbeat", "heartbeat", K_U32, F(pubsub.heartbeat_s), 1, 86400,
     "SECONDS", "a session without a heartbeat this long ends (30)"},
    {"bus", "bus", K_BUS, F(bus_url), 0, BUS_MQTT_URL_MAX,
     "embedded|mqtt://...",
     "the message bus: embedded (default) or an MQTT broker, "
     "mqtt://[USER:PASSWORD@]HOST[:PORT][/PREFIX] (docs/scale-out.md)"},
    {"workers", "workers", K_U32, F(ctx.workers), 1, 64, "N",
     "threads receiving and sending on each UDP listener, one lock for "
     "the protocol (1)"},
    {"help", NULL, K_HELP, 0, 0, 0, NULL, "print this help and exit"},
    {"version", NULL, K_VERSION, 0, 0, 0, NULL, "print the version and exit"},
    {NULL, "ack_timeout_ms", K_U32, P(ack_timeout_ms), 1, 600000, NULL,
     "ACK_TIMEOUT (2000)"},
    {NULL, "ack_random_factor", K_FLOAT, P(ack_random_factor), 1, 10, NULL,
     "ACK_RANDOM_FACTOR (1.5)"},
    {NULL, "max_retransmit", K_U32, P(max_retransmit), 1, 20, NULL,
     "MAX_RETRANSMIT (4)"},
    {NULL, "nstart", K_U32, P(nstart), 1, 1000, NULL, "NSTART (1)"},
    {NULL, "default_leisure_ms", K_U32, P(default_leisure_ms), 1, 600000, NULL,
     "DEFAULT_LEISURE for multicast answers (5000)"},
    {NULL, "max_latency_ms", K_U32, P(max_latency_ms), 1, 3600000, NULL,
     "MAX_LATENCY (100000)"},
    {NULL, "processing_delay_ms", K_U32, P(processing_delay_ms), 1, 600000,
     NULL, "PROCESSING_DELAY (= ack_timeout_ms)"},
    {NULL, "dedup_entries", K_U32, F(ctx.dedup_entries), 64, 16777216, NULL,
     "most remembered request exchanges (no limit but dedup_max_bytes)"},
    {NULL, "dedup_max_bytes", K_SIZE, F(ctx.dedup_max_bytes), 65536,
     68719476736.0, NULL,
     "memory for remembered exchanges; grows with the rate (134217728)"},
    {NULL, "multicast_retry_ms", K_U32, F(multicast_retry_ms), 100, 3600000,
     NULL, "retry a multicast group not yet joined this often (30000)"},
    {NULL, "remember_idempotent", K_BOOL, F(ctx.remember_idempotent), 0, 0,
     NULL, "also cache answers to GET, PUT, DELETE (false)"},
    {NULL, "max_body", K_U32, F(ctx.max_body), 1024, 1073741824, NULL,
     "largest Block1 upload in bytes (16777216)"},
    {NULL, "max_uploads", K_U32, F(ctx.max_uploads), 1, 1000000, NULL,
     "concurrent Block1 uploads (1024)"},
    {NULL, "max_observers", K_U32, F(ctx.max_observers), 1, 100000000, NULL,
     "observers across all resources (1000000)"},
    {NULL, "max_observers_per_resource", K_U32,
     F(ctx.max_observers_per_resource), 1, 100000000, NULL,
     "observers of one resource (max_observers)"},
    {NULL, "max_observers_per_peer", K_U32, F(ctx.max_observers_per_peer), 1,
     100000000, NULL,
     "observers of one peer: its IP address, an IPv6 /64 (max_observers)"},
    {NULL, "max_uploads_per_peer", K_U32, F(ctx.max_uploads_per_peer), 1,
     1000000, NULL, "concurrent Block1 uploads of one peer (max_uploads)"},
    {NULL, "max_upload_bytes", K_SIZE, F(ctx.max_upload_bytes), 1024,
     68719476736.0, NULL,
     "bytes held by all Block1 uploads together (268435456)"},
    {NULL, "upload_idle_ms", K_U32, F(ctx.upload_idle_ms), 100, 86400000,
     NULL, "a Block1 upload without a block this long is dropped "
     "(EXCHANGE_LIFETIME, 247000)"},
    {NULL, "max_peers", K_U32, F(ctx.max_peers), 1, 100000000, NULL,
     "peers holding observers or uploads at once (1000000)"},
    {NULL, "max_queued_notes", K_U32, F(ctx.max_queued_notes), 1, 1000000000,
     NULL, "notifications queued by all pub/sub observers together; "
     "beyond it an observer's oldest drops (1000000)"},
    {NULL, "separate_delay_ms", K_U32, F(ctx.separate_delay_ms), 1, 60000, NULL,
     "wait before an empty ACK for a slow handler (100)"},
    {NULL, "echo_amplification", K_U32, F(ctx.echo_amplification), 1,
     4294967295.0, NULL,
     "largest answer to an unverified source, times its request; larger "
     "ones need an Echo round trip first (3; 4294967295: no check)"},
    {NULL, "echo_fresh_ms", K_U32, F(ctx.echo_fresh_ms), 1000, 86400000,
     NULL, "how long an Echo value is valid (60000)"},
    {NULL, "echo_verified_ms", K_U32, F(ctx.echo_verified_ms), 1000,
     604800000, NULL, "how long a source stays verified (600000)"},
    {NULL, "echo_verified_max", K_U32, F(ctx.echo_verified_max), 1, 16777216,
     NULL, "verified sources remembered; the oldest goes (4096)"},
    {NULL, "echo_require_fresh", K_BOOL, F(ctx.echo_require_fresh), 0, 0,
     NULL, "POST, PUT, PATCH, DELETE need a fresh Echo (false)"},
    {NULL, "notify_type", K_ENUM, F(pubsub.notify_type), 0, 0, "qos|con|non",
     "pub/sub notifications: by the subscription's qos, always CON or NON"},
    {NULL, "unsubscribe_code", K_ENUM, F(unsubscribe_choice), 0, 0,
     "2.05|2.07", "answer to an unsubscribing GET (2.07: as EMQX does)"},
    {NULL, "observer_queue", K_U32, F(pubsub.queue_max), 1, 1000000, NULL,
     "notifications held per pub/sub observer; the oldest drops (100)"},
    {NULL, "max_sessions", K_U32, F(pubsub.max_sessions), 1, 100000000, NULL,
     "connection-mode sessions (100000)"},
    {NULL, "max_payload", K_U32, F(pubsub.max_payload), 1, 1024, NULL,
     "largest published payload in bytes (1024: one datagram)"},
    {NULL, "max_retained", K_SIZE, F(bus.max_retained), 1, 1e9, NULL,
     "retained messages kept (100000)"},
    {NULL, "max_retained_bytes", K_SIZE, F(bus.max_retained_bytes), 1024,
     68719476736.0, NULL, "payload bytes of retained messages (268435456)"},
    {NULL, "max_subscriptions", K_SIZE, F(bus.max_subscriptions), 1, 1e9,
     NULL, "bus subscriptions (1000000)"},
    {NULL, "mqtt_client_id", K_STR, F(mqtt_client_id), 0, 128, NULL,
     "MQTT client id (coapd-HOSTNAME-PID)"},
    {NULL, "mqtt_max_buffered", K_SIZE, F(mqtt.max_buffered), 1, 1e9, NULL,
     "publishes held while the broker is away or has not acked (10000)"},
    {NULL, "mqtt_max_buffered_bytes", K_SIZE, F(mqtt.max_buffered_bytes),
     1024, 68719476736.0, NULL, "their payload bytes (16777216)"},
    {NULL, "mqtt_cafile", K_STR, F(mqtt_cafile), 0, COAPD_PATH_MAX, NULL,
     "TLS to the broker: CA certificates (PEM)"},
    {NULL, "mqtt_certfile", K_STR, F(mqtt_certfile), 0, COAPD_PATH_MAX, NULL,
     "TLS client certificate (PEM), with mqtt_keyfile"},
    {NULL, "mqtt_keyfile", K_STR, F(mqtt_keyfile), 0, COAPD_PATH_MAX, NULL,
     "TLS client key (PEM)"},
    {NULL, "dtls_cert", K_PATH, F(dtls_cert), 0, 0, NULL,
     "DTLS: the server's X.509 chain (PEM)"},
    {NULL, "dtls_key", K_PATH, F(dtls_key), 0, 0, NULL,
     "DTLS: the private key of dtls_cert or dtls_rpk (PEM)"},
    {NULL, "dtls_ca", K_PATH, F(dtls_ca), 0, 0, NULL,
     "DTLS: CA certificates that client certificates are checked against"},
    {NULL, "dtls_rpk", K_BOOL, F(dtls_rpk), 0, 0, NULL,
     "DTLS: present dtls_key as a raw public key (RFC 7250) (false)"},
    {NULL, "dtls_require_client_cert", K_BOOL, F(dtls_require_client_cert),
     0, 0, NULL, "DTLS: refuse clients without a trusted certificate (false)"},
    {NULL, "dtls_max_sessions", K_U32, F(dtls_max_sessions), 1, 10000000,
     NULL, "DTLS sessions at once; new peers wait beyond it (10000)"},
    {NULL, "dtls_idle_s", K_U32, F(dtls_idle_s), 1, 86400, NULL,
     "a silent DTLS session is dropped after this long (300)"},
    {NULL, "rcvbuf", K_INT, F(ctx.rcvbuf), 4096, 1073741824, NULL,
     "SO_RCVBUF in bytes (4194304)"},
    {NULL, "sndbuf", K_INT, F(ctx.sndbuf), 4096, 1073741824, NULL,
     "SO_SNDBUF in bytes (4194304)"},
};

enum { NTABLE = sizeof table / sizeof table[0] };

static const struct setting *by_opt(const char *name, size_t len)
{
  for (size_t i = 0; i < NTABLE; i++)
    if (table[i].opt && strlen(table[i].opt) == len &&
        memcmp(table[i].opt, name, len) == 0)
      return &table[i];
  return NULL;
}

static const struct setting *by_key(const char *key)
{
  for (size_t i = 0; i < NTABLE; i++)
    if (table[i].key && strcmp(table[i].key, key) == 0)
      return &table[i];
  return NULL;
}

static bool takes_value(const struct setting *s)
{
  return s->kind != K_BOOL && s->kind != K_HELP && s->kind != K_VERSION;
}

/* The list being filled: listen[] or, with dtls set, dtls_listen[]. */
struct lst {
  struct coapd_listen *a;
  unsigned *n;
  int *source;
  unsigned long port; /* the default: 5683, or 5684 for coaps */
};

static struct lst lst_of(struct coapd_config *c, bool dtls)
{
  if (dtls)
    return (struct lst){c->dtls_listen, &c->ndtls_listen,
                        &c->dtls_listen_source, 5684};
  return (struct lst){c->listen, &c->nlisten, &c->listen_source, 5683};
}

static int add_listen(struct lst l, const struct ck_addr *a, bool optional,
                      char *err, size_t cap)
{
  if (*l.n == COAPD_MAX_LISTEN) {
    snprintf(err, cap, "more than %d addresses", COAPD_MAX_LISTEN);
    return -1;
  }
  l.a[*l.n].addr = *a;
  l.a[*l.n].optional = optional;
  (*l.n)++;
  return 0;
}

/* A host name as RFC 1123 §2.1 allows it: letters, digits, '-' and '.'. */
static bool host_name_ok(const char *h, size_t n)
{
  if (n == 0 || n > 253 || h[0] == '-' || h[0] == '.')
    return false;
  for (size_t i = 0; i < n; i++) {
    char ch = h[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
      return false;
  }
  return true;
}

/* "HOST:PORT" or "HOST" (port 5683) with a host name, which the SPEC
 * allows for ADDR: resolved here, at start (the loop is not running yet,
 * so a blocking getaddrinfo() is harmless), into found[] (up to
 * COAPD_MAX_LISTEN addresses, each once, in getaddrinfo's order):
 * "localhost" is 127.0.0.1 and, where the hosts file says so, ::1.
 * Returns 0 with *nfound set, -1 with err filled (the name does not
 * resolve), or 1 when v is not a host name at all. */
static int resolve_name(const char *v, unsigned long port,
                        struct ck_addr *found, unsigned *nfound, char *err,
                        size_t cap)
{
  const char *colon = strrchr(v, ':');
  size_t hl = colon ? (size_t)(colon - v) : strlen(v);
  if (colon) {
    const char *p = colon + 1;
    if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5)
      return 1;
    port = strtoul(p, NULL, 10);
    if (port > 65535)
      return 1;
  }
  char host[256];
  if (!host_name_ok(v, hl) || hl >= sizeof host)
    return 1;
  if (!coapd_config_resolve) {
    snprintf(err, cap, "'%.100s': host names are not resolved here", v);
    return -1;
  }
  memcpy(host, v, hl);
  host[hl] = '\0';
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(host, NULL, &hints, &res);
  if (rc != 0) {
    snprintf(err, cap, "'%.100s': cannot resolve the host name: %s", v,
             rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    return -1;
  }
  unsigned n = 0;
  for (struct addrinfo *ai = res; ai && n < COAPD_MAX_LISTEN;
       ai = ai->ai_next) {
    struct ck_addr a = {0};
    if (ai->ai_family == AF_INET && ai->ai_addrlen == sizeof a.u.in4) {
      memcpy(&a.u.in4, ai->ai_addr, sizeof a.u.in4);
      a.u.in4.sin_port = htons((uint16_t)port);
      a.len = sizeof a.u.in4;
    } else if (ai->ai_family == AF_INET6 && ai->ai_addrlen == sizeof a.u.in6) {
      memcpy(&a.u.in6, ai->ai_addr, sizeof a.u.in6);
      a.u.in6.sin6_port = htons((uint16_t)port);
      a.len = sizeof a.u.in6;
    } else {
      continue;
    }
    bool seen = false;
    for (unsigned i = 0; i < n && !seen; i++)
      seen = ck_addr_equal(&found[i], &a);
    if (!seen)
      found[n++] = a;
  }
  freeaddrinfo(res);
  if (n == 0) {
    snprintf(err, cap, "'%.100s': the host has no IPv4 or IPv6 address", v);
    return -1;
  }
  *nfound = n;
  return 0;
}

/* Every address of a host name is listened on; a family the host lacks
 * is then a warning, as for the default [::]. */
static int listen_name(struct lst l, const char *v, char *err, size_t cap)
{
  struct ck_addr found[COAPD_MAX_LISTEN];
  unsigned n = 0;
  int rc = resolve_name(v, l.port, found, &n, err, cap);
  if (rc != 0)
    return rc;
  for (unsigned i = 0; i < n; i++)
    if (add_listen(l, &found[i], n > 1, err, cap) < 0)
      return -1;
  return 0;
}

/* "ADDR:PORT", "[V6]:PORT", an address alone (port 5683), a host name
 * with or without a port, or ":PORT" for both wildcards. */
static int set_listen(struct lst l, const char *v, int src, char *err,
                      size_t cap)
{
  struct ck_addr a;
  if (*l.source != src) {
    *l.n = 0;
    *l.source = src;
  }
  if (v[0] == ':') {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "0.0.0.0%s", v);
    if (n < 0 || (size_t)n >= sizeof buf || ck_addr_parse(&a, buf, 0) < 0)
      goto bad;
    if (add_listen(l, &a, false, err, cap) < 0)
      return -1;
    a.u.in6 = (struct sockaddr_in6){.sin6_family = AF_INET6,
                                    .sin6_port = a.u.in4.sin_port,
                                    .sin6_addr = IN6ADDR_ANY_INIT};
    a.len = sizeof a.u.in6;
    return add_listen(l, &a, true, err, cap);
  }
  if (ck_addr_parse(&a, v, (uint16_t)l.port) == 0)
    return add_listen(l, &a, false, err, cap);
  int rc = listen_name(l, v, err, cap);
  if (rc <= 0)
    return rc;
bad:
  snprintf(err, cap, "'%s' is not ADDR:PORT, [IPV6]:PORT or :PORT", v);
  return -1;
}

/* The metrics listener: one address, with its port always written (there
 * is no well-known port to default to); ":PORT" is 0.0.0.0, and a host
 * name takes its first address. */
static int set_addr(struct ck_addr *field, const char *v, char *err,
                    size_t cap)
{
  const char *colon = strrchr(v, ':');
  bool v6 = v[0] == '[';
  if (!colon || colon[1] == '\0' ||
      (v6 ? colon == v || colon[-1] != ']' : strchr(v, ':') != colon))
    goto bad;
  char buf[64];
  if (v[0] == ':') {
    int n = snprintf(buf, sizeof buf, "0.0.0.0%s", v);
    if (n < 0 || (size_t)n >= sizeof buf)
      goto bad;
    v = buf;
  }
  if (ck_addr_parse(field, v, 0) == 0)
    return 0;
  struct ck_addr found[COAPD_MAX_LISTEN];
  unsigned n = 0;
  int rc = resolve_name(v, 5683, found, &n, err, cap);
  if (rc < 0)
    return rc;
  if (rc == 0) {
    *field = found[0];
    return 0;
  }
bad:
  snprintf(err, cap, "'%s' is not ADDR:PORT, [IPV6]:PORT or :PORT", v);
  return -1;
}

static int set_number(const struct setting *s, void *field, const char *v,
                      char *err, size_t cap)
{
  bool integral = s->kind != K_FLOAT;
  bool ok;
  double d = 0;
  errno = 0;
  if (integral) {
    /* Digits only: no sign, no hex, no exponent. */
    ok = v[0] && strspn(v, "0123456789") == strlen(v);
    if (ok)
      d = (double)strtoull(v, NULL, 10);
  } else {
    char *end;
    d = strtod(v, &end);
    ok = end != v && *end == '\0';
  }
  if (!ok || errno || !(d >= s->min && d <= s->max)) {
    snprintf(err, cap, "'%s' is not %s from %.10g to %.10g", v,
             integral ? "a whole number" : "a number", s->min, s->max);
    return -1;
  }
  if (s->kind == K_U32)
    *(uint32_t *)field = (uint32_t)d;
  else if (s->kind == K_SIZE)
    *(size_t *)field = (size_t)d;
  else if (s->kind == K_INT)
    *(int *)field = (int)d;
  else
    *(float *)field = (float)d;
  return 0;
}

/* A directory's path, copied: a file's line does not outlive its
 * parsing. */
static int set_dir(char *field, const char *v, char *err, size_t cap)
{
  size_t n = strlen(v);
  if (n == 0) {
    snprintf(err, cap, "the directory's path is empty");
    return -1;
  }
  if (n >= COAPD_PATH_MAX) {
    snprintf(err, cap, "'%.40s...' is longer than %d bytes", v,
             COAPD_PATH_MAX - 1);
    return -1;
  }
  memcpy(field, v, n + 1);
  return 0;
}

static int set_bool(bool *field, const char *v, char *err, size_t cap)
{
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
      *field = strcmp(v, yes[i]) == 0;
      return 0;
    }
  }
  snprintf(err, cap, "'%s' is not true or false", v);
  return -1;
}

static int set_enum(const struct setting *s, int *field, const char *v,
                    char *err, size_t cap)
{
  const char *w = s->arg;
  size_t n = strlen(v);
  for (int i = 0; *w; i++) {
    size_t k = strcspn(w, "|");
    if (k == n && memcmp(w, v, n) == 0) {
      *field = i;
      return 0;
    }
    w += k + (w[k] == '|');
  }
  snprintf(err, cap, "'%.100s' is not one of %s", v, s->arg);
  return -1;
}

/* Text copied whole into a field of s->max bytes, or refused. */
static int set_str(const struct setting *s, char *field, const char *v,
                   char *err, size_t cap)
{
  size_t n = strlen(v);
  if (n >= (size_t)s->max) {
    snprintf(err, cap, "'%.40s...' is longer than %.0f bytes", v, s->max - 1);
    return -1;
  }
  if (s->kind == K_BUS && strcmp(v, "embedded") == 0) {
    field[0] = '\0';
    return 0;
  }
  if (s->kind == K_BUS && bus_mqtt_url_check(v, err, cap) < 0)
    return -1;
  memcpy(field, v, n + 1);
  return 0;
}

/* Applies one value; on error writes the reason into err. */
static int set(struct coapd_config *c, const struct setting *s, const char *v,
               int src, char *err, size_t cap)
{
  void *field = (char *)c + s->off;
  switch (s->kind) {
  case K_BOOL:
    return set_bool(field, v, err, cap);
  case K_U32:
  case K_SIZE:
  case K_INT:
  case K_FLOAT:
    return set_number(s, field, v, err, cap);
  case K_LEVEL:
    if (coapd_log_level_parse(v, field) == 0)
      return 0;
    snprintf(err, cap, "'%s' is not error, warn, info or debug", v);
    return -1;
  case K_LISTEN:
  case K_DTLS_LISTEN:
    return set_listen(lst_of(c, s->kind == K_DTLS_LISTEN), v, src, err, cap);
  case K_PATH:
    return set_dir(field, v, err, cap);
  case K_ADDR:
    return set_addr(field, v, err, cap);
  case K_DIR:
    return set_dir(field, v, err, cap);
  case K_ENUM:
    return set_enum(s, field, v, err, cap);
  case K_STR:
  case K_BUS:
    return set_str(s, field, v, err, cap);
  default:
    return 0; /* --config, --help, --version: handled by the caller */
  }
}

static char *trim(char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n > 0 && strchr(" \t\r\n", s[n - 1]))
    s[--n] = '\0';
  return s;
}

/* "key = value" lines; '#' at the start of a line or after a blank starts
 * a comment. */
static int load_file(struct coapd_config *c, const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "coapd: %s: %s\n", path, strerror(errno));
    return -1;
  }
  char line[1024], err[256];
  int rc = 0;
  for (unsigned no = 1; rc == 0 && fgets(line, sizeof line, f); no++) {
    if (!strchr(line, '\n') && !feof(f)) {
      fprintf(stderr, "coapd: %s:%u: line longer than %zu bytes\n", path, no,
              sizeof line - 2);
      rc = -1;
      break;
    }
    for (char *h = line; (h = strchr(h, '#')) != NULL; h++) {
      if (h == line || h[-1] == ' ' || h[-1] == '\t') {
        *h = '\0';
        break;
      }
    }
    char *s = trim(line);
    if (*s == '\0')
      continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      fprintf(stderr, "coapd: %s:%u: expected 'key = value'\n", path, no);
      rc = -1;
      break;
    }
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    const struct setting *st = by_key(key);
    if (!st) {
      fprintf(stderr, "coapd: %s:%u: unknown key '%s'\n", path, no, key);
      rc = -1;
    } else if (set(c, st, val, SRC_FILE, err, sizeof err) < 0) {
      fprintf(stderr, "coapd: %s:%u: %s: %s\n", path, no, key, err);
      rc = -1;
    }
  }
  fclose(f);
  return rc;
}

static void usage(void)
{
  printf("Usage: coapd [OPTION]...\n"
         "       coapd user add|remove|list ...     gateway users (--help)\n"
         "       coapd device add|remove|list ...   devices (--help)\n"
         "       coapd stats [--metrics ADDR:PORT]  a running coapd's "
         "metrics\n"
         "A CoAP server (RFC 7252) built on libcoapkit: a publish/subscribe "
         "gateway\n(docs/gateway.md) and, with --demo, test resources."
         "\n\nOptions:\n");
  for (size_t i = 0; i < NTABLE; i++) {
    const struct setting *s = &table[i];
    if (!s->opt)
      continue;
    char left[40];
    snprintf(left, sizeof left, "--%s%s%s", s->opt, s->arg ? " " : "",
             s->arg ? s->arg : "");
    /* A long option and its value push the text to the next line. */
    if (strlen(left) > 22)
      printf("  %s\n  %-22s %s\n", left, "", s->help);
    else
      printf("  %-22s %s\n", left, s->help);
  }
  printf("\nConfiguration file keys (key = value), besides the options:\n");
  for (size_t i = 0; i < NTABLE; i++)
    if (!table[i].opt)
      printf("  %-22s %s\n", table[i].key, table[i].help);
  printf("\nExit status: 0 after SIGINT/SIGTERM, 1 when serving fails, "
         "2 for a bad\ncommand line or configuration.\n");
}

/* One option of the command line with its value (NULL for a flag). */
struct cli_item {
  const struct setting *s;
  const char *val;
};

int coapd_config_load(struct coapd_config *c, int argc, char **argv)
{
  memset(c, 0, sizeof *c);
  c->log_level = LOG_LEVEL_INFO;
  c->multicast_retry_ms = 30000;
  snprintf(c->data_dir, sizeof c->data_dir, "%s", COAPD_DATA_DIR);
  char err[256];
  set_listen(lst_of(c, false), ":5683", SRC_DEFAULT, err, sizeof err);

  struct cli_item *items = calloc((size_t)argc + 1, sizeof *items);
  if (!items)
    return COAPD_CONFIG_USAGE;
  int n = 0, rc = COAPD_CONFIG_RUN;
  for (int i = 1; i < argc && rc == COAPD_CONFIG_RUN; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
      fprintf(stderr, "coapd: unexpected argument '%s' (try --help)\n", a);
      rc = COAPD_CONFIG_USAGE;
      break;
    }
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    const struct setting *s = by_opt(a + 2, len);
    if (!s) {
      fprintf(stderr, "coapd: unknown option '%.*s' (try --help)\n",
              (int)len + 2, a);
      rc = COAPD_CONFIG_USAGE;
    } else if (takes_value(s) && !eq && i + 1 >= argc) {
      fprintf(stderr, "coapd: option '--%s' needs a value\n", s->opt);
      rc = COAPD_CONFIG_USAGE;
    } else if (!takes_value(s) && eq) {
      fprintf(stderr, "coapd: option '--%s' takes no value\n", s->opt);
      rc = COAPD_CONFIG_USAGE;
    } else if (s->kind == K_HELP) {
      usage();
      rc = COAPD_CONFIG_EXIT;
    } else if (s->kind == K_VERSION) {
      printf("coapd %s\n", COAPD_VERSION);
      rc = COAPD_CONFIG_EXIT;
    } else {
      items[n].s = s;
      items[n].val = !takes_value(s) ? "true" : eq ? eq + 1 : argv[++i];
      if (s->kind == K_FILE)
        c->config_path = items[n].val;
      n++;
    }
  }
  if (rc == COAPD_CONFIG_RUN && c->config_path &&
      load_file(c, c->config_path) < 0)
    rc = COAPD_CONFIG_USAGE;
  for (int i = 0; i < n && rc == COAPD_CONFIG_RUN; i++) {
    if (set(c, items[i].s, items[i].val, SRC_CLI, err, sizeof err) < 0) {
      fprintf(stderr, "coapd: --%s: %s\n", items[i].s->opt, err);
      rc = COAPD_CONFIG_USAGE;
    }
  }
  free(items);
  return rc;
}

int coapd_data_dir_make(const struct coapd_config *c, char *err, size_t cap)
{
  /* 0700: the registry's credentials live here (SPEC: the SQLite store).
   * Only the last component is made; a missing parent is an error, as
   * with mkdir(1) without -p. */
  if (mkdir(c->data_dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, cap, "cannot create the data directory '%s': %s", c->data_dir,
             strerror(errno));
    return -1;
  }
  struct stat st;
  if (stat(c->data_dir, &st) != 0) {
    snprintf(err, cap, "data directory '%s': %s", c->data_dir, strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(err, cap, "data directory '%s': not a directory", c->data_dir);
    return -1;
  }
  if (access(c->data_dir, W_OK | X_OK) != 0) {
    snprintf(err, cap, "data directory '%s': %s", c->data_dir, strerror(errno));
    return -1;
  }
  return 0;
}
