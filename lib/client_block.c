/* Block-wise transfers of a call (RFC 7959): the Block1 upload of a
 * large request body, the Block2 download of a large response body, and
 * the Block options each request of the call carries.
 *
 * An upload sends the body slice by slice, each the next time the server
 * answers 2.31 Continue; the server may ask for smaller blocks (§2.5), or
 * refuse the first with 4.13 and a size to start over with (§2.9.3). A
 * download asks for the next block until one without the M bit arrives,
 * checking that each continues the body and comes from the same
 * representation (ETag, §2.4). The body is kept on the call, up to the
 * client's max_body.
 */
#include <stdlib.h>
#include <string.h>

#include "client_call.h"

static int append_body(struct ck_call *call, const uint8_t *p, size_t n)
{
  if (n == 0)
    return 0; /* an empty block: body and p may both be NULL */
  size_t need = call->body_len + n;
  if (need > call->cl->cfg.max_body)
    return CK_EFULL;
  if (need > call->body_cap) {
    size_t cap = call->body_cap ? call->body_cap : 4096;
    while (cap < need)
      cap *= 2;
    uint8_t *nb = realloc(call->body, cap);
    if (!nb)
      return CK_ENOMEM;
    call->body = nb;
    call->body_cap = cap;
  }
  memcpy(call->body + call->body_len, p, n);
  call->body_len = need;
  return 0;
}

/* Sends the call's next message, or ends it when that fails. */
static void next(struct ck_call *call)
{
  int rc = ck__call_transmit(call);
  if (rc < 0)
    ck__call_finish(call, rc, NULL, NULL);
}

int ck__call_upload_answer(struct ck_call *call, const struct ck_msg *m)
{
  uint32_t v;
  struct ck_block blk;
  if (m->code == CK_CONTINUE && ck_msg_opt_uint(m, CK_OPT_BLOCK1, &v) == 0 &&
      ck_block_decode(v, &blk) == 0) {
    /* §2.5: the server may ask for smaller blocks from here on. */
    if (blk.szx < call->szx1) {
      call->up_num = (uint32_t)(((size_t)call->up_num + 1) *
                                CK_BLOCK_SIZE(call->szx1) /
                                CK_BLOCK_SIZE(blk.szx));
      call->szx1 = blk.szx;
    } else {
      call->up_num++;
    }
    next(call);
    return 1;
  }
  if (m->code == CK_REQUEST_ENTITY_TOO_LARGE && call->szx1 > 0 &&
      call->up_num == 0) {
    /* §2.9.3: start over with the size the server names, or smaller. */
    uint8_t szx = (uint8_t)(call->szx1 - 1);
    if (ck_msg_opt_uint(m, CK_OPT_BLOCK1, &v) == 0 &&
        ck_block_decode(v, &blk) == 0 && blk.szx < call->szx1)
      szx = blk.szx;
    call->szx1 = szx;
    next(call);
    return 1;
  }
  /* The upload is over: this is the answer to the whole request. */
  call->state = CK__CALL_REQUESTING;
  return 0;
}

int ck__call_download_answer(struct ck_call *call, const struct ck_msg *m)
{
  struct ck_client *c = call->cl;
  uint32_t v;
  struct ck_block blk;
  bool downloading = call->state == CK__CALL_DOWNLOADING;
  if (ck_msg_opt_uint(m, CK_OPT_BLOCK2, &v) < 0 ||
      ck_block_decode(v, &blk) < 0 ||
      !(blk.more || blk.num > 0 || downloading)) {
    if (!downloading)
      call->body_len = 0;
    return 0;
  }
  size_t bs = CK_BLOCK_SIZE(blk.szx);
  struct ck_opt etag = {.len = 0};
  ck_msg_opt(m, CK_OPT_ETAG, &etag);
  if (blk.num == 0) {
    call->body_len = 0;
    call->etag_len = (uint8_t)(etag.len <= 8 ? etag.len : 0);
    if (call->etag_len)
      memcpy(call->etag, etag.val, call->etag_len);
    uint32_t size2;
    if (ck_msg_opt_uint(m, CK_OPT_SIZE2, &size2) == 0 &&
        size2 > c->cfg.max_body) {
      ck__call_finish(call, CK_EFULL, NULL, NULL);
      return 1;
    }
  } else if ((size_t)blk.num * bs != call->body_len ||
             (call->etag_len &&
              (etag.len != call->etag_len ||
               memcmp(etag.val, call->etag, etag.len) != 0))) {
    /* §2.4: a block that does not continue what we have, or from a
     * changed representation. */
    ck__call_finish(call, CK_EBADRESP, NULL, NULL);
    return 1;
  }
  int rc = append_body(call, m->payload, m->payload_len);
  if (rc < 0) {
    ck__call_finish(call, rc, NULL, NULL);
    return 1;
  }
  if (!blk.more) {
    call->state = call->registered ? CK__CALL_OBSERVING : CK__CALL_REQUESTING;
    return 0;
  }
  call->state = CK__CALL_DOWNLOADING;
  call->down_num = blk.num + 1;
  call->szx2 = blk.szx;
  if (call->registered && !call->alt.len) {
    /* §3.4: after a notification, the rest of its body is asked for
     * with a token of its own, so that it is not taken for the next
     * notification. */
    call->alt.len = call->tok.len ? call->tok.len : 4;
    ck__random(c->ctx, call->alt.bytes, call->alt.len);
    ck__tokens_add(c, &call->alt);
  }
  next(call);
  return 1;
}

int ck__call_block_opts(struct ck_call *call, struct ck_builder *b,
                        bool block1, bool block2, const uint8_t **pl,
                        size_t *plen)
{
  uint32_t v;
  int rc;
  if (block1) {
    size_t bs = CK_BLOCK_SIZE(call->szx1);
    size_t off = (size_t)call->up_num * bs;
    struct ck_block blk = {.num = call->up_num, .szx = call->szx1};
    blk.more = off + bs < call->payload_len;
    if ((rc = ck_block_encode(&blk, &v)) < 0)
      return rc; /* a body beyond 2^20 blocks */
    ck_builder_opt_uint(b, CK_OPT_BLOCK1, v);
    if (call->up_num == 0)
      ck_builder_opt_uint(b, CK_OPT_SIZE1, (uint32_t)call->payload_len);
    /* RFC 9175 §3.3: a Request-Tag keeps concurrent uploads to one
     * server apart. */
    ck_builder_opt(b, CK_OPT_REQUEST_TAG, call->req_tag,
                   sizeof call->req_tag);
    *pl += off;
    *plen = blk.more ? bs : call->payload_len - off;
  }
  if (block2) {
    struct ck_block blk = {.num = call->down_num, .szx = call->szx2};
    if ((rc = ck_block_encode(&blk, &v)) < 0)
      return rc;
    ck_builder_opt_uint(b, CK_OPT_BLOCK2, v);
  }
  return 0;
}
