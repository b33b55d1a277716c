/* Requests and responses as handlers see them: accessors for the
 * request, a response that collects code, options and payload, and the
 * builder that turns a response into a message, sliced by Block2 with
 * Size2 and ETag when it is large (RFC 7959 §2.4). */
#include <stdlib.h>
#include <string.h>

#include "coapkit/opt.h"
#include "srv.h"

/* --- requests --- */

uint8_t ck_request_method(const struct ck_request *req)
{
  return req ? req->msg->code : 0;
}

const struct ck_msg *ck_request_msg(const struct ck_request *req)
{
  return req ? req->msg : NULL;
}

const struct ck_addr *ck_request_peer(const struct ck_request *req)
{
  return req ? req->peer : NULL;
}

bool ck_request_multicast(const struct ck_request *req)
{
  return req && req->multicast;
}

const uint8_t *ck_request_payload(const struct ck_request *req, size_t *len)
{
  if (!req || !len)
    return NULL;
  *len = req->body_len;
  return req->body;
}

int ck_request_query(const struct ck_request *req, const char *key,
                     const char **val, size_t *len)
{
  if (!req || !key || !val || !len)
    return CK_EINVAL;
  size_t klen = strlen(key);
  struct ck_opt_iter it;
  struct ck_opt o;
  ck_opt_iter_init(&it, req->msg);
  while (ck_opt_next(&it, &o)) {
    if (o.num != CK_OPT_URI_QUERY)
      continue;
    if (o.len < klen || memcmp(o.val, key, klen) != 0)
      continue;
    if (o.len == klen) {
      *val = (const char *)o.val + klen;
      *len = 0;
      return 0;
    }
    if (o.val[klen] == '=') {
      *val = (const char *)o.val + klen + 1;
      *len = o.len - klen - 1;
      return 0;
    }
  }
  return CK_ENOTFOUND;
}

int ck_request_path(const struct ck_request *req, char *buf, size_t cap)
{
  size_t n = 0;
  bool first = true;
  struct ck_opt_iter it;
  struct ck_opt o;
  if (!req || (!buf && cap))
    return CK_EINVAL;
  if (cap == 0)
    return CK_ENOSPC;
  ck_opt_iter_init(&it, req->msg);
  while (ck_opt_next(&it, &o)) {
    if (o.num < CK_OPT_URI_PATH)
      continue;
    if (o.num > CK_OPT_URI_PATH)
      break;
    if (n + (first ? 0 : 1) + o.len >= cap)
      return CK_ENOSPC;
    if (!first)
      buf[n++] = '/';
    memcpy(buf + n, o.val, o.len);
    n += o.len;
    first = false;
  }
  buf[n] = '\0';
  return (int)n;
}

uint32_t ck_request_uint(const struct ck_request *req, uint16_t num,
                         uint32_t def)
{
  uint32_t v;
  if (!req)
    return def;
  return ck_msg_opt_uint(req->msg, num, &v) == 0 ? v : def;
}

bool ck_request_has(const struct ck_request *req, uint16_t num)
{
  struct ck_opt o;
  return req && ck_msg_opt(req->msg, num, &o) == 0;
}

/* --- responses --- */

static uint8_t default_code(uint8_t method)
{
  switch (method) {
  case CK_GET:
  case CK_FETCH:
    return CK_CONTENT;
  case CK_DELETE:
    return CK_DELETED;
  default:
    return CK_CHANGED;
  }
}

void ck__resp_init(struct ck_response *r, uint8_t method)
{
  r->code = default_code(method);
  r->deferred = false;
  r->obs = NULL;
  r->err = 0;
  r->nopts = 0;
  r->optbuf_len = 0;
  r->payload_len = 0;
  r->payload = r->inl;
  r->ref = false;
  r->release = NULL;
  r->release_arg = NULL;
  r->rep = NULL;
  r->etag_set = false;
  r->etag = 0;
}

void ck__resp_free(struct ck_response *r)
{
  if (r->ref) {
    void (*release)(void *) = r->release;
    r->ref = false;
    r->release = NULL;
    if (release)
      release(r->release_arg);
  } else if (r->payload != r->inl) {
    free(r->payload);
  }
  r->payload = r->inl;
  r->payload_len = 0;
  r->rep = NULL;
  r->etag_set = false;
}

void ck_response_code(struct ck_response *r, uint8_t code)
{
  if (r)
    r->code = code;
}

int ck_response_opt(struct ck_response *r, uint16_t num, const void *val,
                    size_t len)
{
  if (!r)
    return CK_EINVAL;
  /* Sticky, as a lost option is: the handler's answer is then a 5.00. */
  if (!val && len)
    return r->err = CK_EINVAL;
  if (r->nopts >= CK__RESP_OPTS || len > CK__RESP_OPTBUF - r->optbuf_len)
    return r->err = CK_ENOSPC;
  struct ck__resp_opt *o = &r->opts[r->nopts++];
  o->num = num;
  o->off = (uint16_t)r->optbuf_len;
  o->len = (uint16_t)len;
  if (len)
    memcpy(r->optbuf + r->optbuf_len, val, len);
  r->optbuf_len += len;
  return 0;
}

int ck_response_opt_uint(struct ck_response *r, uint16_t num, uint32_t v)
{
  uint8_t b[4];
  return ck_response_opt(r, num, b, ck_opt_uint_encode(v, b));
}

int ck_response_opt_str(struct ck_response *r, uint16_t num, const char *s)
{
  if (!r)
    return CK_EINVAL;
  if (!s)
    return r->err = CK_EINVAL;
  return ck_response_opt(r, num, s, strlen(s));
}

bool ck__resp_has_opt(const struct ck_response *r, uint16_t num)
{
  for (unsigned i = 0; i < r->nopts; i++)
    if (r->opts[i].num == num)
      return true;
  return false;
}

int ck_response_payload(struct ck_response *r, const void *p, size_t len)
{
  if (!r)
    return CK_EINVAL;
  if (!p && len)
    return r->err = CK_EINVAL;
  ck__resp_free(r);
  if (len > sizeof r->inl) {
    r->payload = malloc(len);
    if (!r->payload) {
      r->payload = r->inl;
      return r->err = CK_ENOMEM;
    }
  }
  if (len)
    memcpy(r->payload, p, len);
  r->payload_len = len;
  return 0;
}

int ck_response_payload_ref(struct ck_response *r, const void *p,
                            size_t len, void (*release)(void *arg),
                            void *arg)
{
  if (!r)
    return CK_EINVAL;
  if (!p && len)
    return r->err = CK_EINVAL;
  ck__resp_free(r);
  /* Lent, not given: ck__resp_free() calls release instead of free. */
  r->payload = len ? (uint8_t *)(uintptr_t)p : r->inl;
  r->payload_len = len;
  r->ref = true;
  r->release = release;
  r->release_arg = arg;
  return 0;
}

int ck_response_content(struct ck_response *r, uint16_t cf, const void *p,
                        size_t len)
{
  int rc = ck_response_opt_uint(r, CK_OPT_CONTENT_FORMAT, cf);
  return rc < 0 ? rc : ck_response_payload(r, p, len);
}

/* 64-bit FNV-1a of the representation, seeded per context: an ETag that
 * changes when the bytes change (RFC 7959 §2.4 wants one per
 * representation so that clients can tell blocks apart). */
uint64_t ck__etag_of(const struct ck_ctx *ctx, const uint8_t *p, size_t n)
{
  uint64_t h = 14695981039346656037ull ^ ctx->etag_seed;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

int ck__build_response(struct ck_ctx *ctx, uint8_t *buf, size_t cap,
                       uint8_t type, uint16_t mid, const uint8_t *token,
                       uint8_t tkl, struct ck_response *resp,
                       const struct ck__reply *rp)
{
  struct ck_builder b;
  ck_builder_init(&b, buf, cap, (enum ck_type)type, resp->code, mid);
  ck_builder_token(&b, token, tkl);
  for (unsigned i = 0; i < resp->nopts; i++)
    ck_builder_opt(&b, resp->opts[i].num, resp->optbuf + resp->opts[i].off,
                   resp->opts[i].len);
  if (rp->observe)
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, rp->obs_seq & 0xffffff);
  if (rp->has_block1)
    ck_builder_opt_uint(&b, CK_OPT_BLOCK1, rp->block1);

  const uint8_t *pl = resp->payload;
  size_t plen = resp->payload_len;
  /* RFC 7959 §2.2: the client's Block2 SZX is the most it will take; with
   * none, 1024 bytes keeps a response within a 1152-byte datagram. */
  struct ck_block want = {.num = 0, .more = false, .szx = 6};
  if (rp->has_block2 && ck_block_decode(rp->block2, &want) < 0)
    want.szx = 6;
  size_t bsize = CK_BLOCK_SIZE(want.szx);
  /* A later block past the end is 4.02, but an error that fits one
   * block (a 5.03, a 4.08) is no block of the representation asked for:
   * it goes out whole. */
  bool sliced = plen > bsize || (rp->has_block2 && want.num > 0 &&
                                 CK_CODE_CLASS(resp->code) == 2);
  uint64_t etag = 0;
  if (sliced) {
    size_t off = (size_t)want.num * bsize;
    if (off >= plen) {
      /* A block past the end of the representation (sliced with off 0
       * implies plen > bsize, so this is never the first block). */
      ck_builder_init(&b, buf, cap, (enum ck_type)type, CK_BAD_OPTION, mid);
      ck_builder_token(&b, token, tkl);
      return ck_builder_finish(&b);
    }
    struct ck_block out = {.num = want.num, .szx = want.szx};
    out.more = off + bsize < plen;
    uint32_t v;
    ck_block_encode(&out, &v);
    ck_builder_opt_uint(&b, CK_OPT_BLOCK2, v);
    if (want.num == 0 || rp->want_size2)
      ck_builder_opt_uint(&b, CK_OPT_SIZE2, (uint32_t)plen);
    if (!ck__resp_has_opt(resp, CK_OPT_ETAG)) {
      /* A kept representation's ETag was computed once (repcache.c). */
      etag = resp->etag_set ? resp->etag : ck__etag_of(ctx, pl, plen);
      ck_builder_opt(&b, CK_OPT_ETAG, &etag, sizeof etag);
    }
    pl += off;
    plen = plen - off < bsize ? plen - off : bsize;
  } else if (rp->want_size2 && !ck__resp_has_opt(resp, CK_OPT_SIZE2)) {
    ck_builder_opt_uint(&b, CK_OPT_SIZE2, (uint32_t)plen);
  }
  ck_builder_payload(&b, pl, plen);
  return ck_builder_finish(&b);
}

