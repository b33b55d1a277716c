/* The library's client against peer_misbehaving, which answers wrongly
 * on purpose: a piggybacked answer with another token (RFC 7252 §5.3.2),
 * responses with an unknown critical option (§5.4.1), an ACK carrying a
 * request code and an RST that is not empty (§4.2, §4.3), and a server
 * that demands Echo (RFC 9175 §2.3), also block-wise.
 *
 * Usage: client_misbehaving PORT. Prints one line per check and exits 1
 * when any fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/coapkit.h"

static int failures;
static char base[64];

#define CHECK(cond, ...)                                                      \
  do {                                                                       \
    if (cond) {                                                              \
      printf("ok   ");                                                       \
    } else {                                                                 \
      printf("FAIL ");                                                       \
      failures++;                                                            \
    }                                                                        \
    printf(__VA_ARGS__);                                                     \
    printf("\n");                                                            \
  } while (0)

static int run(struct ck_client *cl, uint8_t method, const char *path,
               bool non, const void *payload, size_t len,
               struct ck_client_result *res)
{
  char uri[128];
  snprintf(uri, sizeof uri, "%s/%s", base, path);
  struct ck_client_request req;
  ck_client_request_init(&req, method, uri);
  req.non = non;
  req.payload = payload;
  req.payload_len = len;
  if (payload)
    req.content_format = CK_CF_TEXT_PLAIN;
  return ck_client_do(cl, &req, res);
}

static bool body_is(const struct ck_client_result *r, const char *s)
{
  return r->body_len == strlen(s) && memcmp(r->body, s, r->body_len) == 0;
}

/* A piggybacked-or-separate scenario whose right answer is "good". */
static void expect_good(struct ck_client *cl, const char *path, bool non,
                        const char *why)
{
  struct ck_client_result r;
  int rc = run(cl, CK_GET, path, non, NULL, 0, &r);
  CHECK(rc == 0 && r.code == CK_CONTENT && body_is(&r, "good"),
        "%s: %s (rc %d, code %u.%02u, %zu bytes)", path, why, rc,
        r.code >> 5, r.code & 31, r.body_len);
  ck_client_result_free(&r);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: client_misbehaving PORT\n");
    return 2;
  }
  snprintf(base, sizeof base, "coap://127.0.0.1:%s", argv[1]);
  struct ck_ctx *ctx;
  struct ck_client *cl;
  struct ck_client_config cfg = {0};
  /* Short timers: a retransmission within ~150 ms, a timeout in ~1 s. */
  cfg.params.ack_timeout_ms = 100;
  cfg.params.max_retransmit = 2;
  if (ck_ctx_new(NULL, &ctx) < 0 || ck_client_new(ctx, &cfg, &cl) < 0)
    return 2;

  struct ck_client_result r;
  int rc;

  /* 1. §5.3.2: an ACK with our MID but another token is no answer. */
  rc = run(cl, CK_GET, "token", false, NULL, 0, &r);
  CHECK(rc == CK_ETIMEDOUT && r.body_len == 0,
        "token: a forged piggybacked answer is ignored to the timeout "
        "(rc %s)", ck_err_name(rc));
  ck_client_result_free(&r);
  rc = run(cl, CK_GET, "token-late", false, NULL, 0, &r);
  CHECK(rc == 0 && r.code == CK_CONTENT && body_is(&r, "right"),
        "token-late: the CON is retransmitted and the right answer taken "
        "(rc %d, %zu bytes)", rc, r.body_len);
  ck_client_result_free(&r);

  /* 2. §5.4.1: unknown critical options in a response. */
  expect_good(cl, "crit", false,
              "piggybacked with option 9 ignored, retransmission answered");
  expect_good(cl, "crit-sep", false,
              "separate CON with option 9 rejected, the next one taken");
  expect_good(cl, "crit-non", true,
              "NON with option 9 rejected, the next one taken");

  /* 3. §4.2, §4.3: format errors, silently ignored. */
  expect_good(cl, "ack-req", false,
              "an ACK with code 0.01 ignored, retransmission answered");
  expect_good(cl, "rst-full", false,
              "an RST with a code ignored, retransmission answered");

  /* 5. RFC 9175 §2.3: Echo. */
  rc = run(cl, CK_POST, "echo?x=1", false, "hello", 5, &r);
  CHECK(rc == 0 && r.code == CK_CONTENT && body_is(&r, "fresh:hello"),
        "echo: the request repeated once with Echo, same options and "
        "payload (rc %d, code %u.%02u)", rc, r.code >> 5, r.code & 31);
  ck_client_result_free(&r);
  rc = run(cl, CK_GET, "echo-twice", false, NULL, 0, &r);
  CHECK(rc == 0 && r.code == CK_UNAUTHORIZED && body_is(&r, "again"),
        "echo-twice: the second 4.01 with Echo is the answer (code "
        "%u.%02u)", r.code >> 5, r.code & 31);
  ck_client_result_free(&r);
  rc = run(cl, CK_GET, "echo-big", false, NULL, 0, &r);
  bool big_ok = rc == 0 && r.code == CK_CONTENT && r.body_len == 3000;
  for (size_t i = 0; big_ok && i < r.body_len; i++)
    big_ok = r.body[i] == 'a' + i % 26;
  CHECK(big_ok, "echo-big: Echo, then a 3000-byte Block2 download (rc %d, "
                "%zu bytes)", rc, r.body_len);
  ck_client_result_free(&r);
  static uint8_t up[3000];
  unsigned long sum = 0;
  for (size_t i = 0; i < sizeof up; i++) {
    up[i] = (uint8_t)(i * 7);
    sum += up[i];
  }
  char want[64];
  snprintf(want, sizeof want, "got:%zu:%lu", sizeof up, sum);
  rc = run(cl, CK_POST, "echo-up", false, up, sizeof up, &r);
  CHECK(rc == 0 && r.code == CK_CHANGED && body_is(&r, want),
        "echo-up: Echo, then a 3000-byte Block1 upload (rc %d, code "
        "%u.%02u, want %s)", rc, r.code >> 5, r.code & 31, want);
  ck_client_result_free(&r);

  ck_client_free(cl);
  ck_ctx_free(ctx);
  printf("%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
