/* A small coaps:// server on the public API, for the DTLS interop tests
 * (dtls_libcoap.sh, dtls_cert.sh): libcoap's coap-client-gnutls and our
 * own coap talk to it. It binds 127.0.0.1 on a free port for coaps://
 * and another for coap://, prints "DTLS_PORT UDP_PORT" on the first line
 * of stdout, and serves until SIGTERM:
 *
 *   /whoami  GET: "MODE IDENTITY", what ck_request_identity() says
 *   /large   GET: 3000 bytes of text (Block2)
 *   /echo    POST/PUT: "N bytes" for the payload received (Block1)
 *   /obs     observable, changes every 200 ms
 *   /still   observable, never changes (an observer that stays silent)
 *
 * Usage: integ_dtls_server [--psk ID:KEY]... [--hint H] [--cert F --key F]
 *        [--ca F] [--require] [--rpk F] [--max-sessions N] [--idle MS]
 *        [--port N] (the DTLS port; 0, a free one, by default)
 * Exits 2 on a usage error, 1 when it cannot listen. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <coapkit/coapkit.h>

enum { MAX_PSKS = 16 };

static struct {
  const char *id;
  const char *key;
} psks[MAX_PSKS];
static size_t npsks;

static int lookup(void *user, const uint8_t *id, size_t len, uint8_t *key,
                  size_t cap)
{
  (void)user;
  for (size_t i = 0; i < npsks; i++)
    if (strlen(psks[i].id) == len && memcmp(psks[i].id, id, len) == 0) {
      size_t n = strlen(psks[i].key);
      if (n > cap)
        return -1;
      memcpy(key, psks[i].key, n);
      return (int)n;
    }
  return -1;
}

static void whoami(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *user)
{
  (void)r, (void)user;
  static const char *modes[] = {"none", "psk", "cert", "rpk"};
  const char *id = NULL;
  int m = ck_request_identity(req, &id);
  char buf[256];
  int n = snprintf(buf, sizeof buf, "%s %s", m >= 0 && m < 4 ? modes[m] : "?",
                   id ? id : "(null)");
  ck_response_content(resp, CK_CF_TEXT_PLAIN, buf, (size_t)n);
}

static void large(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *user)
{
  (void)r, (void)req, (void)user;
  static char text[3000];
  for (size_t i = 0; i < sizeof text; i++)
    text[i] = (char)('a' + i % 26);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, text, sizeof text);
}

static void echo(struct ck_resource *r, const struct ck_request *req,
                 struct ck_response *resp, void *user)
{
  (void)r, (void)user;
  size_t len;
  (void)ck_request_payload(req, &len);
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%zu bytes", len);
  ck_response_code(resp, CK_CHANGED);
  ck_response_payload(resp, buf, (size_t)n);
}

static unsigned counter;

static void obs_get(struct ck_resource *r, const struct ck_request *req,
                    struct ck_response *resp, void *user)
{
  (void)r, (void)req, (void)user;
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%u", counter);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, buf, (size_t)n);
}

static void tick(struct ck_timer *t, void *user)
{
  counter++;
  (void)t;
  ck_resource_changed(user, 0);
}

static struct ck_ctx *ctx;

static void on_term(int sig)
{
  (void)sig;
  char b = 1;
  if (write(ck_stop_fd(ctx), &b, 1) < 0)
    _exit(1);
}

static void on_log(void *user, enum ck_log_level level, const char *msg)
{
  (void)user, (void)level;
  fprintf(stderr, "log: %s\n", msg);
}

int main(int argc, char **argv)
{
  struct ck_dtls_config dc = {0};
  unsigned port = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--require")) {
      dc.require_client_cert = true;
      continue;
    }
    if (!v)
      goto usage;
    i++;
    if (!strcmp(a, "--psk")) {
      char *colon = strchr(argv[i], ':');
      if (!colon || npsks == MAX_PSKS)
        goto usage;
      *colon = '\0';
      psks[npsks].id = argv[i];
      psks[npsks++].key = colon + 1;
      dc.psk_lookup = lookup;
    } else if (!strcmp(a, "--hint")) {
      dc.psk_hint = v;
    } else if (!strcmp(a, "--cert")) {
      dc.cert_file = v;
    } else if (!strcmp(a, "--key")) {
      dc.key_file = v;
    } else if (!strcmp(a, "--ca")) {
      dc.ca_file = v;
    } else if (!strcmp(a, "--rpk")) {
      dc.rpk_key_file = v;
    } else if (!strcmp(a, "--max-sessions")) {
      dc.max_sessions = (uint32_t)strtoul(v, NULL, 10);
    } else if (!strcmp(a, "--port")) {
      port = (unsigned)strtoul(v, NULL, 10);
    } else if (!strcmp(a, "--idle")) {
      dc.idle_timeout_ms = (uint32_t)strtoul(v, NULL, 10);
    } else {
      goto usage;
    }
  }
  struct ck_addr addr;
  struct ck_resource *r;
  struct ck_timer *t;
  ck_addr_parse(&addr, "127.0.0.1", (uint16_t)port);
  int rc = ck_ctx_new(NULL, &ctx);
  if (rc == 0) {
    ck_ctx_set_log(ctx, on_log, NULL);
    rc = ck_ctx_listen_dtls(ctx, &addr, &dc);
  }
  struct ck_addr plain;
  ck_addr_parse(&plain, "127.0.0.1:0", 0);
  if (rc == 0 && (rc = ck_ctx_listen(ctx, &plain)) == 0)
    rc = ck_ctx_local_addr(ctx, 1, &plain);
  if (rc == 0)
    rc = ck_ctx_local_addr(ctx, 0, &addr);
  if (rc < 0) {
    fprintf(stderr, "integ_dtls_server: %s\n", ck_strerror(rc));
    return 1;
  }
  ck_resource_new(ctx, "whoami", &r);
  ck_resource_handler(r, CK_GET, whoami, NULL);
  ck_resource_new(ctx, "large", &r);
  ck_resource_handler(r, CK_GET, large, NULL);
  ck_resource_new(ctx, "echo", &r);
  ck_resource_handler(r, CK_POST, echo, NULL);
  ck_resource_handler(r, CK_PUT, echo, NULL);
  ck_resource_new(ctx, "obs", &r);
  ck_resource_handler(r, CK_GET, obs_get, NULL);
  ck_resource_observable(r, true, false);
  struct ck_resource *still;
  ck_resource_new(ctx, "still", &still);
  ck_resource_handler(still, CK_GET, obs_get, NULL);
  ck_resource_observable(still, true, false);
  if (ck_timer_new(ctx, tick, r, &t) < 0)
    return 1;
  ck_timer_start(t, 200, 200);
  printf("%u %u\n", ck_addr_port(&addr), ck_addr_port(&plain));
  fflush(stdout);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  rc = ck_run(ctx);
  struct ck_dtls_stats st;
  struct ck_stats cs;
  ck_ctx_dtls_stats(ctx, &st);
  ck_ctx_stats(ctx, &cs);
  fprintf(stderr,
          "stats: sessions %llu handshakes %llu failed %llu cookies %llu "
          "refused_full %llu expired %llu dropped %llu resumed %llu "
          "observers %llu\n",
          (unsigned long long)st.sessions, (unsigned long long)st.handshakes,
          (unsigned long long)st.handshakes_failed,
          (unsigned long long)st.cookies_sent,
          (unsigned long long)st.refused_full, (unsigned long long)st.expired,
          (unsigned long long)st.records_dropped,
          (unsigned long long)st.resumed, (unsigned long long)cs.observers);
  ck_timer_free(t);
  ck_ctx_free(ctx);
  return rc < 0 ? 1 : 0;
usage:
  fprintf(stderr, "usage: integ_dtls_server [--psk ID:KEY]... [--hint H] "
                  "[--cert F --key F] [--ca F] [--require] [--rpk F] "
                  "[--max-sessions N] [--idle MS] [--port N]\n");
  return 2;
}
