/* Block-wise uploads on the server (RFC 7959 §2.5): Block1 requests are
 * reassembled before the handler sees them.
 *
 * An upload is identified by the client's address, its Request-Tag (RFC
 * 9175 §3) and the request's path, so that concurrent uploads from one
 * client stay apart when the client tags them. Blocks must arrive in
 * order; a gap is answered 4.08 and an upload larger than max_body 4.13
 * with Size1. An upload that receives no block for upload_idle_ms
 * (EXCHANGE_LIFETIME by default) is dropped by a sweep on a timer and
 * counted (uploads_expired). At most max_uploads run at once,
 * max_uploads_per_peer from one peer (peers.c), and together they hold at
 * most max_upload_bytes: beyond any of these the answer is 5.03 with a
 * Max-Age (RFC 7252 §5.9.3.4), and a counter rises.
 */
#include <stdlib.h>
#include <string.h>

#include "coapkit/opt.h"
#include "peers.h"
#include "srv.h"

/* The Max-Age of a 5.03 for a full table: most uploads end within
 * seconds, while the worst case (upload_idle_ms) is too long to ask a
 * client to wait. */
enum { RETRY_S = 10 };

struct upload {
  struct upload *next;
  struct ck__peer *holder; /* peers.c: its peer's count */
  struct ck_addr peer;
  uint32_t path_hash;
  uint8_t taglen;
  uint8_t tag[8];
  uint64_t expires;
  size_t len;
  size_t cap;
  uint8_t *buf;
};

struct ck__uploads {
  struct upload *head;
  unsigned count;
  struct upload *done; /* handed to the handler, freed after it */
};

int ck__uploads_init(struct ck_ctx *ctx)
{
  ctx->uploads = calloc(1, sizeof *ctx->uploads);
  return ctx->uploads ? 0 : CK_ENOMEM;
}

static void upload_free(struct ck_ctx *ctx, struct upload *u)
{
  ctx->stats.upload_bytes -= u->cap;
  ck__peer_release(ctx, u->holder, CK__PEER_UPLOAD);
  free(u->buf);
  free(u);
}

void ck__uploads_close(struct ck_ctx *ctx)
{
  struct ck__uploads *ups = ctx->uploads;
  if (!ups)
    return;
  while (ups->head) {
    struct upload *u = ups->head;
    ups->head = u->next;
    upload_free(ctx, u);
  }
  if (ups->done)
    upload_free(ctx, ups->done);
  free(ups);
  ctx->stats.uploads = 0;
  ctx->uploads = NULL;
}

void ck__uploads_sweep(struct ck_ctx *ctx)
{
  struct ck__uploads *ups = ctx->uploads;
  uint64_t now = ck__loop_now(&ctx->loop);
  struct upload **pp = &ups->head;
  while (*pp) {
    struct upload *u = *pp;
    if (u->expires <= now) {
      *pp = u->next;
      ups->count--;
      ctx->stats.uploads--;
      ctx->stats.uploads_expired++;
      upload_free(ctx, u);
    } else {
      pp = &u->next;
    }
  }
}

static void unlink_upload(struct ck_ctx *ctx, struct upload *u)
{
  struct ck__uploads *ups = ctx->uploads;
  struct upload **pp = &ups->head;
  while (*pp && *pp != u)
    pp = &(*pp)->next;
  if (*pp) {
    *pp = u->next;
    ups->count--;
    ctx->stats.uploads--;
  }
}

static uint32_t hash_path(const char *p, size_t n, uint8_t method)
{
  uint32_t h = 2166136261u ^ method;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (uint8_t)p[i]) * 16777619u;
  return h;
}

static int too_large(struct ck_ctx *ctx, struct ck_response *resp)
{
  resp->code = CK_REQUEST_ENTITY_TOO_LARGE;
  /* RFC 7959 §2.9.3: Size1 tells the client the largest body we take. */
  ck_response_opt_uint(resp, CK_OPT_SIZE1, ctx->cfg.max_body);
  return 0;
}

static int busy(struct ck_response *resp)
{
  resp->code = CK_SERVICE_UNAVAILABLE;
  ck_response_opt_uint(resp, CK_OPT_MAX_AGE, RETRY_S);
  return 0;
}

uint64_t ck__uploads_sweep_ms(const struct ck_ctx *ctx)
{
  /* Often enough that an upload goes at most a quarter of its idle time
   * late; at least every 5 s, as before idle times were configurable. */
  uint64_t ms = ctx->cfg.upload_idle_ms / 4;
  return ms < 50 ? 50 : ms > 5000 ? 5000 : ms;
}

int ck__block1_input(struct ck_ctx *ctx, struct ck_request *req,
                     struct ck__reply *rp, struct ck_response *resp,
                     const char *path, size_t path_len)
{
  struct ck__uploads *ups = ctx->uploads;
  const struct ck_msg *m = req->msg;
  uint32_t v, size1;
  struct ck_block blk;
  if (ck_msg_opt_uint(m, CK_OPT_BLOCK1, &v) < 0 ||
      ck_block_decode(v, &blk) < 0) {
    resp->code = CK_BAD_OPTION;
    return 0;
  }
  size_t bsize = CK_BLOCK_SIZE(blk.szx);
  if (blk.more && m->payload_len != bsize) {
    /* §2.3: every block but the last carries exactly the block size. */
    resp->code = CK_BAD_REQUEST;
    ck_response_payload(resp, "block size mismatch", 19);
    return 0;
  }
  if (ck_msg_opt_uint(m, CK_OPT_SIZE1, &size1) == 0 &&
      size1 > ctx->cfg.max_body)
    return too_large(ctx, resp);

  static const uint8_t no_tag[1];
  struct ck_opt tag = {.len = 0, .val = no_tag};
  ck_msg_opt(m, CK_OPT_REQUEST_TAG, &tag);
  uint32_t ph = hash_path(path, path_len, m->code);
  struct upload *u = NULL;
  for (struct upload *x = ups->head; x; x = x->next) {
    if (x->path_hash == ph && x->taglen == tag.len &&
        memcmp(x->tag, tag.val, tag.len) == 0 &&
        ck_addr_equal(&x->peer, req->peer)) {
      u = x;
      break;
    }
  }

  if (blk.num == 0) {
    if (u) {
      u->len = 0; /* the client started over */
    } else {
      if (ups->count >= ctx->cfg.max_uploads)
        ck__uploads_sweep(ctx);
      if (ups->count >= ctx->cfg.max_uploads) {
        ctx->stats.uploads_rejected++;
        return busy(resp);
      }
      u = calloc(1, sizeof *u);
      if (!u) {
        resp->code = CK_SERVICE_UNAVAILABLE;
        return 0;
      }
      bool full;
      u->holder = ck__peer_hold(ctx, req->peer, CK__PEER_UPLOAD, &full);
      if (!u->holder) {
        /* max_uploads_per_peer or max_peers, counted by peers.c */
        free(u);
        return busy(resp);
      }
      u->peer = *req->peer;
      u->path_hash = ph;
      u->taglen = (uint8_t)(tag.len > 8 ? 8 : tag.len);
      if (u->taglen)
        memcpy(u->tag, tag.val, u->taglen);
      u->next = ups->head;
      ups->head = u;
      ups->count++;
      ctx->stats.uploads++;
    }
  } else if (!u || u->len != (size_t)blk.num * bsize) {
    /* §2.9.2: a block that does not continue what we hold. */
    resp->code = CK_REQUEST_ENTITY_INCOMPLETE;
    return 0;
  }

  size_t need = u->len + m->payload_len;
  if (need > ctx->cfg.max_body) {
    unlink_upload(ctx, u);
    upload_free(ctx, u);
    return too_large(ctx, resp);
  }
  if (need > u->cap) {
    size_t cap = u->cap ? u->cap : 4096;
    while (cap < need)
      cap *= 2;
    if (cap > ctx->cfg.max_body)
      cap = ctx->cfg.max_body;
    if (ctx->stats.upload_bytes - u->cap + cap > ctx->cfg.max_upload_bytes) {
      /* The uploads together hold all they may: this one ends, so that
       * what it held goes back to the others. */
      ctx->stats.uploads_rejected_bytes++;
      unlink_upload(ctx, u);
      upload_free(ctx, u);
      return busy(resp);
    }
    uint8_t *nb = realloc(u->buf, cap);
    if (!nb) {
      unlink_upload(ctx, u);
      upload_free(ctx, u);
      resp->code = CK_SERVICE_UNAVAILABLE;
      return 0;
    }
    u->buf = nb;
    ctx->stats.upload_bytes += cap - u->cap;
    u->cap = cap;
  }
  if (m->payload_len)
    memcpy(u->buf + u->len, m->payload, m->payload_len);
  u->len = need;
  u->expires = ck__loop_now(&ctx->loop) + ctx->cfg.upload_idle_ms;

  rp->has_block1 = true;
  struct ck_block echo = {.num = blk.num, .more = blk.more, .szx = blk.szx};
  ck_block_encode(&echo, &rp->block1);
  if (blk.more) {
    resp->code = CK_CONTINUE;
    return 0;
  }
  unlink_upload(ctx, u);
  if (ups->done)
    upload_free(ctx, ups->done);
  ups->done = u;
  req->body = u->buf;
  req->body_len = u->len;
  return 1;
}

void ck__block1_done(struct ck_ctx *ctx)
{
  struct ck__uploads *ups = ctx->uploads;
  if (ups->done) {
    upload_free(ctx, ups->done);
    ups->done = NULL;
  }
}
