/* Multicast discovery with the client library (RFC 7252 §8, RFC 7390):
 * one GET to a group URI, and every server that answers within the
 * response window reported with its address.
 *
 * Prints one line per answer, "responder ADDR CODE LEN [links]" ("links"
 * when the body is a link-format document naming /hello), then
 * "responders N distinct, window closed after MS ms". Exits 0 when the
 * call ended normally (its window closed), 1 otherwise; the script that
 * runs it decides whether the right servers answered.
 *
 * Usage: client_multicast URI [WINDOW_MS]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <coapkit/coapkit.h>

enum { MAX_SEEN = 16 };

struct state {
  bool done;
  int err;
  unsigned answers, nseen, finals;
  struct ck_addr seen[MAX_SEEN];
};

static double mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void on_resp(struct ck_call *call, const struct ck_client_response *r, void *user)
{
  (void)call;
  struct state *s = user;
  if (r->final) {
    s->finals++;
    s->done = true;
    s->err = r->err;
    return;
  }
  s->answers++;
  char addr[CK_ADDR_STRLEN], code[32];
  ck_addr_format(r->peer, addr, sizeof addr);
  ck_code_format(code, sizeof code, r->code);
  bool links = r->body_len >= 8 && memmem(r->body, r->body_len, "</hello>", 8);
  printf("responder %s %s %zu%s\n", addr, code, r->body_len,
         links ? " links" : "");
  unsigned i = 0;
  while (i < s->nseen && !ck_addr_equal(&s->seen[i], r->peer))
    i++;
  if (i == s->nseen && s->nseen < MAX_SEEN)
    s->seen[s->nseen++] = *r->peer;
}

int main(int argc, char **argv)
{
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: client_multicast URI [WINDOW_MS]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  uint32_t window = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1500;
  struct ck_ctx *ctx;
  if (ck_ctx_new(NULL, &ctx) < 0) {
    fprintf(stderr, "client_multicast: ck_ctx_new failed\n");
    return 1;
  }
  struct ck_client_config cfg = {.max_server_response_delay_ms = window};
  struct ck_client *c;
  int rc = ck_client_new(ctx, &cfg, &c);
  if (rc < 0) {
    fprintf(stderr, "client_multicast: %s\n", ck_strerror(rc));
    return 1;
  }
  struct ck_client_request r;
  ck_client_request_init(&r, CK_GET, argv[1]);
  struct state s = {0};
  double t0 = mono_ms();
  rc = ck_client_send(c, &r, on_resp, &s, NULL);
  if (rc < 0) {
    fprintf(stderr, "client_multicast: %s: %s\n", argv[1], ck_strerror(rc));
    ck_client_free(c);
    ck_ctx_free(ctx);
    return 1;
  }
  /* The call ends by its own window; the deadline only guards a bug. */
  while (!s.done && mono_ms() - t0 < window + 10000.0)
    ck_ctx_process(ctx, 100);
  double took = mono_ms() - t0;
  ck_client_free(c); /* a call still open ends here, with CK_ECANCELED */
  printf("responders %u distinct (%u answers), window closed after %.0f ms: "
         "%s\n",
         s.nseen, s.answers, took, s.err ? ck_err_name(s.err) : "ok");
  ck_ctx_free(ctx);
  if (s.finals != 1) {
    printf("FAIL: %u final callbacks\n", s.finals);
    return 1;
  }
  return s.err == 0 && took >= window - 5.0 ? 0 : 1;
}
