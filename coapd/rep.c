/* Stored representations. The ETag is a hash of the bytes, computed once
 * when they are stored: the same bytes always get the same ETag (so a
 * client's cached copy stays valid across an identical PUT), and the
 * library, finding an ETag in the response, need not hash the whole body
 * again for every Block2 block it slices. */
#include <stdlib.h>
#include <string.h>

#include "rep.h"

/* 64-bit FNV-1a. */
static void etag_of(struct rep *r)
{
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < r->len; i++)
    h = (h ^ r->data[i]) * 1099511628211ull;
  for (int i = 0; i < 8; i++)
    r->etag[i] = (uint8_t)(h >> (56 - 8 * i));
}

void rep_clear(struct rep *r)
{
  free(r->data);
  *r = (struct rep){.cf = -1};
  etag_of(r);
}

int rep_set(struct rep *r, const void *p, size_t len, int cf)
{
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy)
    return -1;
  if (len)
    memcpy(copy, p, len);
  free(r->data);
  r->data = copy;
  r->len = len;
  r->cf = cf;
  etag_of(r);
  return 0;
}

void rep_answer(const struct rep *r, struct ck_response *resp)
{
  if (r->cf >= 0)
    ck_response_opt_uint(resp, CK_OPT_CONTENT_FORMAT, (uint32_t)r->cf);
  ck_response_opt(resp, CK_OPT_ETAG, r->etag, sizeof r->etag);
  ck_response_payload(resp, r->data, r->len);
}

bool rep_store_body(struct rep *r, const struct ck_request *req,
                    struct ck_response *resp)
{
  size_t len;
  const uint8_t *p = ck_request_payload(req, &len);
  uint32_t cf = ck_request_uint(req, CK_OPT_CONTENT_FORMAT, UINT32_MAX);
  if (rep_set(r, p, len, cf == UINT32_MAX ? -1 : (int)cf) < 0) {
    ck_response_code(resp, CK_INTERNAL_SERVER_ERROR);
    return false;
  }
  return true;
}

/* RFC 7252 §5.10.8: If-Match holds when one of its values is the current
 * ETag, or is empty and there is a representation; If-None-Match holds
 * when there is none. The library marks both options as understood and
 * leaves their meaning to the handler. */
static bool preconditions(const struct rep *r, const struct ck_request *req)
{
  bool exists = r->data != NULL, has_match = false, match = false;
  struct ck_opt_iter it;
  struct ck_opt o;
  ck_opt_iter_init(&it, ck_request_msg(req));
  while (ck_opt_next(&it, &o)) {
    if (o.num == CK_OPT_IF_MATCH) {
      has_match = true;
      if (exists && (o.len == 0 || (o.len == sizeof r->etag &&
                                    memcmp(o.val, r->etag, o.len) == 0)))
        match = true;
    } else if (o.num == CK_OPT_IF_NONE_MATCH && exists) {
      return false;
    }
  }
  return !has_match || match;
}

bool rep_store(struct rep *r, const struct ck_request *req,
               struct ck_response *resp)
{
  if (!preconditions(r, req)) {
    ck_response_code(resp, CK_PRECONDITION_FAILED);
    return false;
  }
  return rep_store_body(r, req, resp);
}
