/* libFuzzer target for the DTLS server's receive path (dtls.c, issue
 * 10). The input is cut into datagrams, each prefixed by one byte whose
 * low bits pick one of eight source addresses and whose high bits move
 * the fake clock on, and one length byte; each datagram goes to
 * ck__dtls_input() of a PSK+certificate-less DTLS endpoint as if its
 * socket had read it, and timers run between them.
 *
 * Beyond "no crash, no sanitizer report", one invariant of RFC 6347
 * §4.2.1 is checked after every datagram: no source that has not
 * returned a valid cookie gets a session. The fuzzer cannot forge the
 * cookie's HMAC (its key is random per run), so the session count must
 * stay zero whatever it sends; HelloVerifyRequests go to closed ports on
 * loopback. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/coapkit.h"
#include "../../lib/ctx.h"
#include "../../lib/dtls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ck_ctx *ctx;
static struct ck__ep *ep;
static uint64_t fake_now;

static uint64_t clock_fn(void *user)
{
  (void)user;
  return fake_now;
}

static int lookup(void *user, const uint8_t *id, size_t len, uint8_t *key,
                  size_t cap)
{
  (void)user, (void)id, (void)len;
  if (cap < 4)
    return -1;
  memcpy(key, "fuzz", 4);
  return 4;
}

static void h_get(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r, (void)req, (void)u;
  ck_response_content(resp, 0, "hi", 2);
}

static void setup(void)
{
  if (ck_ctx_new(NULL, &ctx) < 0)
    abort();
  ck_ctx_set_clock(ctx, clock_fn, NULL);
  struct ck_addr a;
  ck_addr_parse(&a, "127.0.0.1:0", 0);
  struct ck_dtls_config dc = {.psk_lookup = lookup,
                              .psk_hint = "fuzz",
                              .max_sessions = 4,
                              .idle_timeout_ms = 1000};
  if (ck_ctx_listen_dtls(ctx, &a, &dc) < 0)
    abort();
  ep = ctx->eps;
  struct ck_resource *r;
  ck_resource_new(ctx, "a", &r);
  ck_resource_handler(r, CK_GET, h_get, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!ctx)
    setup();
  struct ck_addr peers[8];
  for (int k = 0; k < 8; k++) {
    char s[32];
    snprintf(s, sizeof s, "127.0.0.1:%d", 9 + k);
    ck_addr_parse(&peers[k], s, 0);
  }
  size_t i = 0;
  while (i + 2 <= size) {
    uint8_t flags = data[i];
    size_t len = data[i + 1];
    i += 2;
    if (len > size - i)
      len = size - i;
    /* An exact-size copy, so that ASan sees any overread. */
    uint8_t *dgram = malloc(len ? len : 1);
    memcpy(dgram, data + i, len);
    ck__dtls_input(ep, &peers[flags & 7], dgram, len);
    free(dgram);
    i += len;
    if (ctx->dtls_stats.sessions != 0)
      abort(); /* state kept for a peer that proved nothing */
    fake_now += (flags >> 3) * 100u;
    ck_ctx_process(ctx, 0);
  }
  return 0;
}
