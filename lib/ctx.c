/* The context: creation and teardown, endpoints, the loop driver that
 * applications call (ck_run, or ck_ctx_fd/ck_ctx_timeout/ck_ctx_process
 * from their own loop), transmission parameters, randomness and counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "ctx.h"
#include "exchange.h"
#include "gate.h"
#include "resolve.h"
#include "srv.h"

void ck_params_default(struct ck_params *p)
{
  if (!p)
    return;
  p->ack_timeout_ms = 2000;
  p->ack_random_factor = 1.5f;
  p->max_retransmit = 4;
  p->nstart = 1;
  p->default_leisure_ms = 5000;
  p->max_latency_ms = 100000;
  p->processing_delay_ms = 2000;
}

uint64_t ck_params_max_transmit_span(const struct ck_params *p)
{
  /* RFC 7252 §4.8.2: ACK_TIMEOUT * (2^MAX_RETRANSMIT - 1) * factor. */
  if (!p)
    return 0;
  uint32_t r = p->max_retransmit > 20 ? 20 : p->max_retransmit;
  return (uint64_t)((double)p->ack_timeout_ms * (double)((1u << r) - 1) *
                    (double)p->ack_random_factor);
}

uint64_t ck_params_exchange_lifetime(const struct ck_params *p)
{
  if (!p)
    return 0;
  return ck_params_max_transmit_span(p) + 2ull * p->max_latency_ms +
         p->processing_delay_ms;
}

uint64_t ck_params_non_lifetime(const struct ck_params *p)
{
  if (!p)
    return 0;
  return ck_params_max_transmit_span(p) + p->max_latency_ms;
}

static void os_random(void *user, void *buf, size_t len)
{
  (void)user;
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      /* getrandom cannot fail on Linux >= 3.17 once seeded; never leave
       * the buffer predictable if it somehow does. */
      abort();
    }
    p += n;
    len -= (size_t)n;
  }
}

void ck__random(struct ck_ctx *ctx, void *buf, size_t len)
{
  /* The OS source is read a buffer at a time: the bytes are as good, and
   * the server's CON notifications no longer cost a getrandom() each. A
   * replaced source (tests) is called directly. */
  if (ctx->random != os_random || len > sizeof ctx->rnd) {
    ctx->random(ctx->random_user, buf, len);
    return;
  }
  if (ctx->rnd_left < len) {
    os_random(NULL, ctx->rnd, sizeof ctx->rnd);
    ctx->rnd_left = sizeof ctx->rnd;
  }
  uint8_t *src = ctx->rnd + sizeof ctx->rnd - ctx->rnd_left;
  memcpy(buf, src, len);
  memset(src, 0, len); /* used bytes are not left behind */
  ctx->rnd_left = (uint16_t)(ctx->rnd_left - len);
}

static void stop_read(struct ck__io *io, unsigned events)
{
  (void)events;
  struct ck_ctx *ctx =
    (struct ck_ctx *)((char *)io - offsetof(struct ck_ctx, stop_io));
  char buf[64];
  while (read(ctx->stop_pipe[0], buf, sizeof buf) > 0)
    ;
  ctx->loop.stop = true;
}

/* The ranges coap and coapd accept too: beyond them the derived
 * lifetimes overflow or stop meaning anything (RFC 7252 §4.8.1 asks
 * ACK_RANDOM_FACTOR >= 1). */
enum {
  MAX_ACK_TIMEOUT_MS = 600000,
  MAX_RETRANSMIT_CAP = 20,
  MAX_NSTART = 1000,
  MAX_LEISURE_MS = 600000,
  MAX_LATENCY_MS = 3600000,
  MAX_PROCESSING_DELAY_MS = 600000,
};

int ck__params_fill(struct ck_params *p)
{
  struct ck_params d;
  if (!p)
    return CK_EINVAL;
  /* Zero means "the default"; anything else out of range is the
   * caller's mistake, refused rather than silently replaced. The factor
   * is compared so that NaN fails too. */
  float f = p->ack_random_factor;
  if ((f != 0.0f && !(f >= 1.0f && f <= 10.0f)) ||
      p->ack_timeout_ms > MAX_ACK_TIMEOUT_MS ||
      (p->max_retransmit > MAX_RETRANSMIT_CAP &&
       p->max_retransmit != CK_MAX_RETRANSMIT_NONE) ||
      p->nstart > MAX_NSTART || p->default_leisure_ms > MAX_LEISURE_MS ||
      p->max_latency_ms > MAX_LATENCY_MS ||
      p->processing_delay_ms > MAX_PROCESSING_DELAY_MS)
    return CK_EINVAL;
  ck_params_default(&d);
  if (!p->ack_timeout_ms)
    p->ack_timeout_ms = d.ack_timeout_ms;
  if (p->ack_random_factor == 0.0f)
    p->ack_random_factor = d.ack_random_factor;
  if (!p->max_retransmit)
    p->max_retransmit = d.max_retransmit;
  else if (p->max_retransmit == CK_MAX_RETRANSMIT_NONE)
    p->max_retransmit = 0;
  if (!p->nstart)
    p->nstart = d.nstart;
  if (!p->default_leisure_ms)
    p->default_leisure_ms = d.default_leisure_ms;
  if (!p->max_latency_ms)
    p->max_latency_ms = d.max_latency_ms;
  if (!p->processing_delay_ms)
    p->processing_delay_ms = p->ack_timeout_ms;
  return 0;
}

static int apply_defaults(struct ck_ctx_config *c)
{
  int rc = ck__params_fill(&c->params);
  if (rc < 0)
    return rc;
  /* dedup_max_bytes and dedup_entries: zero is meaningful (the 128 MiB
   * default, no entry cap); dedup.c reads them as they are. */
  if (!c->max_body)
    c->max_body = 16u << 20;
  if (!c->max_uploads)
    c->max_uploads = 1024;
  if (!c->max_observers)
    c->max_observers = 1000000;
  if (!c->separate_delay_ms)
    c->separate_delay_ms = 100;
  if (!c->echo_amplification)
    c->echo_amplification = 3;
  if (!c->echo_fresh_ms)
    c->echo_fresh_ms = 60000;
  if (!c->echo_verified_ms)
    c->echo_verified_ms = 600000;
  if (!c->echo_verified_max)
    c->echo_verified_max = 4096;
  if (c->echo_verified_max > (1u << 24))
    return CK_EINVAL;
  if (!c->max_peers)
    c->max_peers = 1000000;
  if (!c->max_observers_per_peer)
    c->max_observers_per_peer = c->max_observers;
  if (!c->max_observers_per_resource)
    c->max_observers_per_resource = c->max_observers;
  if (!c->max_uploads_per_peer)
    c->max_uploads_per_peer = c->max_uploads;
  if (!c->max_upload_bytes)
    c->max_upload_bytes = 256u << 20;
  if (!c->max_queued_notes)
    c->max_queued_notes = 1000000;
  if (!c->rcvbuf)
    c->rcvbuf = 4 << 20;
  if (!c->sndbuf)
    c->sndbuf = 4 << 20;
  if (c->workers > CK_WORKERS_MAX)
    return CK_EINVAL;
  return 0;
}

int ck_ctx_new(const struct ck_ctx_config *cfg, struct ck_ctx **out)
{
  if (!out)
    return CK_EINVAL;
  struct ck_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx)
    return CK_ENOMEM;
  if (cfg)
    ctx->cfg = *cfg;
  if (apply_defaults(&ctx->cfg) < 0) {
    free(ctx);
    return CK_EINVAL;
  }
  ctx->exchange_lifetime = ck_params_exchange_lifetime(&ctx->cfg.params);
  ctx->non_lifetime = ck_params_non_lifetime(&ctx->cfg.params);
  if (!ctx->cfg.upload_idle_ms)
    ctx->cfg.upload_idle_ms = (uint32_t)ctx->exchange_lifetime;
  ctx->random = os_random;
  ctx->stop_pipe[0] = ctx->stop_pipe[1] = -1;
  int rc = ck__loop_init(&ctx->loop);
  if (rc < 0)
    goto fail;
  if (pipe2(ctx->stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
    rc = CK_ESYS;
    goto fail;
  }
  ctx->stop_io.fd = ctx->stop_pipe[0];
  ctx->stop_io.cb = stop_read;
  if ((rc = ck__backend_add(&ctx->loop, &ctx->stop_io, CK__READ)) < 0)
    goto fail;
  if (ctx->cfg.workers > 1 && (rc = ck__gate_new(ctx)) < 0)
    goto fail;
  ck__random(ctx, &ctx->etag_seed, sizeof ctx->etag_seed);
  if ((rc = ck__exchange_init(ctx)) < 0 || (rc = ck__srv_init(ctx)) < 0)
    goto fail;
  *out = ctx;
  return 0;
fail:
  ck_ctx_free(ctx);
  return rc;
}

void ck_ctx_free(struct ck_ctx *ctx)
{
  if (!ctx)
    return;
  /* First: from here on this thread alone touches the context. */
  ck__udp_workers_stop(ctx, ctx->eps);
  while (ctx->clients)
    ck_client_free(ctx->clients);
  /* After the clients, which cancel their own resolutions; before the
   * loop closes under c-ares's sockets and timers. */
  ck__resolve_free(ctx);
  ck__srv_close(ctx);
  ck__exchange_close(ctx);
  struct ck__ep *ep = ctx->eps;
  while (ep) {
    struct ck__ep *next = ep->next;
    ep->tp->flush(ep);
    ep->tp->free(ep);
    ep = next;
  }
  for (int i = 0; i < 2; i++)
    if (ctx->stop_pipe[i] >= 0)
      close(ctx->stop_pipe[i]);
  ck__watches_reap(ctx);
  ck__mids_free(ctx);
  ck__gate_free(ctx);
  ck__loop_close(&ctx->loop);
  free(ctx);
}

int ck_ctx_listen(struct ck_ctx *ctx, const struct ck_addr *addr)
{
  struct ck__ep *ep;
  if (!ctx || !addr)
    return CK_EINVAL;
  int rc = ck__udp_listen(ctx, addr, &ep);
  if (rc < 0)
    return rc;
  /* Append (with its siblings, if any), so that ck_ctx_local_addr(i)
   * follows the listen order. */
  struct ck__ep **pp = &ctx->eps;
  while (*pp)
    pp = &(*pp)->next;
  *pp = ep;
  ctx->neps++;
  return 0;
}

int ck_ctx_local_addr(struct ck_ctx *ctx, unsigned i, struct ck_addr *out)
{
  if (!ctx || !out)
    return CK_EINVAL;
  struct ck__ep *ep = ctx->eps;
  /* Client endpoints are the library's own; only listeners count. */
  while (ep && (ep->client || ep->sibling || i-- > 0))
    ep = ep->next;
  if (!ep)
    return CK_ENOTFOUND;
  *out = ep->local;
  return 0;
}

int ck_ctx_join(struct ck_ctx *ctx, const char *group, const char *ifname)
{
  struct ck_addr g;
  if (!ctx || !group || ck_addr_parse(&g, group, 0) < 0 ||
      !ck_addr_is_multicast(&g))
    return CK_EINVAL;
  int joined = 0, rc = 0;
  for (struct ck__ep *ep = ctx->eps; ep; ep = ep->next) {
    if (ep->client || ep->sibling ||
        ep->local.u.sa.sa_family != g.u.sa.sa_family ||
        !ep->tp->join)
      continue;
    rc = ep->tp->join(ep, group, ifname);
    if (rc == 0)
      joined++;
  }
  if (joined)
    return 0;
  return rc < 0 ? rc : CK_ENOTFOUND;
}

int ck_ctx_fd(const struct ck_ctx *ctx)
{
  return ctx ? ctx->loop.backend_fd : CK_EINVAL;
}

int ck_ctx_timeout(struct ck_ctx *ctx)
{
  if (!ctx)
    return CK_EINVAL;
  /* No output waits between iterations: a send made outside the loop
   * leaves at once (ck__ep_send), so only timers decide. */
  return ck__loop_timeout(&ctx->loop);
}

void ck__flush_all(struct ck_ctx *ctx)
{
  for (struct ck__ep *ep = ctx->eps; ep; ep = ep->next)
    if (ep->nsend)
      ep->tp->flush(ep);
}

int ck_ctx_process(struct ck_ctx *ctx, int timeout_ms)
{
  if (!ctx)
    return CK_EINVAL;
  int t = ck__loop_timeout(&ctx->loop);
  if (t >= 0 && (timeout_ms < 0 || t < timeout_ms))
    timeout_ms = t;
  /* While callbacks run, sends are batched and leave together at the end
   * of the iteration (one sendmmsg per endpoint); outside, ck__ep_send()
   * flushes at once. */
  ctx->loop.depth++;
  int n = ck__backend_poll(&ctx->loop, timeout_ms);
  if (n >= 0)
    n += ck__loop_run_timers(&ctx->loop);
  ck__flush_all(ctx);
  ctx->loop.depth--;
  if (ctx->loop.depth == 0)
    ck__watches_reap(ctx);
  return n;
}

int ck_run(struct ck_ctx *ctx)
{
  if (!ctx)
    return CK_EINVAL;
  ctx->loop.stop = false;
  while (!ctx->loop.stop) {
    int rc = ck_ctx_process(ctx, -1);
    if (rc < 0)
      return rc;
  }
  return 0;
}

void ck_stop(struct ck_ctx *ctx)
{
  if (ctx)
    ctx->loop.stop = true;
}

int ck_stop_fd(const struct ck_ctx *ctx)
{
  return ctx ? ctx->stop_pipe[1] : CK_EINVAL;
}

void ck_ctx_set_clock(struct ck_ctx *ctx, uint64_t (*now_ms)(void *user),
                      void *user)
{
  if (ctx)
    ck__loop_set_clock(&ctx->loop, now_ms, user);
}

void ck_ctx_set_random(struct ck_ctx *ctx,
                       void (*fill)(void *user, void *buf, size_t len),
                       void *user)
{
  if (!ctx)
    return;
  ctx->random = fill ? fill : os_random;
  ctx->random_user = fill ? user : NULL;
}

void ck_ctx_set_log(struct ck_ctx *ctx, ck_log_cb cb, void *user)
{
  if (!ctx)
    return;
  ctx->log = cb;
  ctx->log_user = cb ? user : NULL;
}

void ck__log(struct ck_ctx *ctx, enum ck_log_level level, const char *fmt,
             ...)
{
  if (!ctx->log)
    return;
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  ctx->log(ctx->log_user, level, line);
}

void ck_ctx_stats(const struct ck_ctx *ctx, struct ck_stats *out)
{
  if (ctx && out)
    *out = ctx->stats;
}
