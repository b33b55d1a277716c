/* libFuzzer target for the server's receive path. The input is cut into
 * datagrams (each prefixed by one length byte and one flags byte) that
 * are fed straight into the messaging layer of a context with a few
 * resources: plain, observable, block-wise, deferred, tree. Between
 * datagrams the fake clock moves on and timers run, so retransmissions,
 * separate responses, leisure and expiry are exercised too. Responses go
 * to a local socket nobody reads. Crashes, leaks and sanitizer reports
 * are the findings; the server must never abort on input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/coapkit.h"
#include "../../lib/ctx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ck_ctx *ctx;
static struct ck_resource *obs_res;
static struct ck_deferred *pending;
static uint64_t fake_now;
static uint8_t big[3000];

static uint64_t clock_fn(void *user)
{
  (void)user;
  return fake_now;
}

static void rnd(void *user, void *buf, size_t len)
{
  (void)user;
  memset(buf, 0x5a, len);
}

static void h_get(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)u;
  const char *v;
  size_t n;
  if (ck_request_query(req, "big", &v, &n) == 0)
    ck_response_content(resp, 0, big, sizeof big);
  else
    ck_response_content(resp, 0, "hi", 2);
  ck_response_opt_uint(resp, CK_OPT_MAX_AGE, 5);
}

static void h_put(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)u;
  size_t n;
  const uint8_t *p = ck_request_payload(req, &n);
  char path[256];
  ck_request_path(req, path, sizeof path);
  ck_response_payload(resp, p, n > 64 ? 64 : n);
}

static void h_defer(struct ck_resource *r, const struct ck_request *req,
                    struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  if (pending) {
    ck_response_code(resp, CK_SERVICE_UNAVAILABLE);
    return;
  }
  pending = ck_response_defer(resp, 0);
}

static void setup(void)
{
  struct ck_ctx_config cfg = {0};
  cfg.dedup_entries = 256;
  cfg.max_body = 8192;
  cfg.max_uploads = 4;
  cfg.max_observers = 16;
  cfg.params.default_leisure_ms = 50;
  if (ck_ctx_new(&cfg, &ctx) < 0)
    abort();
  ck_ctx_set_clock(ctx, clock_fn, NULL);
  ck_ctx_set_random(ctx, rnd, NULL);
  struct ck_addr a;
  ck_addr_parse(&a, "127.0.0.1:0", 0);
  if (ck_ctx_listen(ctx, &a) < 0)
    abort();
  struct ck_resource *r;
  ck_resource_new(ctx, "a", &r);
  ck_resource_handler(r, CK_GET, h_get, NULL);
  ck_resource_handler(r, CK_PUT, h_put, NULL);
  ck_resource_handler(r, CK_POST, h_put, NULL);
  uint16_t fmts[] = {0, 50};
  ck_resource_produces(r, fmts, 2);
  ck_resource_consumes(r, fmts, 2);
  struct ck_resource_attrs at = {.rt = "x y", .title = "t", .ct = 0};
  ck_resource_attrs(r, &at);
  ck_resource_new(ctx, "o", &obs_res);
  ck_resource_handler(obs_res, CK_GET, h_get, NULL);
  ck_resource_observable(obs_res, true, false);
  ck_resource_new(ctx, "d", &r);
  ck_resource_handler(r, CK_GET, h_defer, NULL);
  ck_resource_new(ctx, "t/#", &r);
  ck_resource_handler(r, CK_PUT, h_put, NULL);
  ck_resource_handler(r, CK_FETCH, h_put, NULL);
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (uint8_t)('a' + i % 26);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!ctx)
    setup();
  struct ck_addr peers[2];
  ck_addr_parse(&peers[0], "127.0.0.1:9", 0);
  ck_addr_parse(&peers[1], "[::1]:9", 0);
  size_t i = 0;
  while (i + 2 <= size) {
    size_t len = data[i];
    uint8_t flags = data[i + 1];
    i += 2;
    if (len > size - i)
      len = size - i;
    /* An exact-size copy, so that ASan sees any overread. */
    uint8_t *dgram = malloc(len ? len : 1);
    memcpy(dgram, data + i, len);
    ck__input(ctx->eps, &peers[flags & 1], dgram, len, (flags & 2) != 0);
    free(dgram);
    i += len;
    if (flags & 4)
      ck_resource_changed(obs_res, flags & 8 ? CK_NOTIFY_CON : 0);
    if (flags & 16 && pending) {
      struct ck_response *r = ck_deferred_response(pending);
      ck_response_content(r, 0, "late", 4);
      ck_deferred_send(pending);
      pending = NULL;
    }
    fake_now += (flags >> 5) * 700u;
    ck_ctx_process(ctx, 0);
  }
  /* Let everything expire so that state does not pile up across runs. */
  fake_now += 400000;
  for (int k = 0; k < 8; k++) {
    fake_now += 60000;
    ck_ctx_process(ctx, 0);
  }
  return 0;
}
