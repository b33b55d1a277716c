/* The message codec: parse a datagram into a zero-copy view, iterate its
 * options, and build a message into a caller's buffer (RFC 7252 §3).
 *
 * The parser walks the options once to validate them, so that iteration
 * afterwards needs no checks and cannot fail. Nothing here allocates; the
 * parse of a typical request touches each byte once.
 */
#include <stdio.h>
#include <string.h>

#include "coapkit/msg.h"
#include "coapkit/opt.h"

/* Option header nibbles with a special meaning (RFC 7252 §3.1). */
enum { NIB_EXT8 = 13, NIB_EXT16 = 14, NIB_RESERVED = 15 };

static bool class_reserved(uint8_t code)
{
  /* RFC 7252 §12.1: class 0 is requests, 2, 4 and 5 are responses; every
   * other class is reserved. */
  unsigned cls = CK_CODE_CLASS(code);
  return cls == 1 || cls == 3 || cls >= 6;
}

/* Reads the extended form of a delta or length nibble; returns the value,
 * or -1 when the extension runs past end. */
static int32_t read_ext(unsigned nib, const uint8_t **pp, const uint8_t *end)
{
  const uint8_t *p = *pp;
  if (nib < NIB_EXT8)
    return (int32_t)nib;
  if (nib == NIB_EXT8) {
    if (p >= end)
      return -1;
    *pp = p + 1;
    return 13 + p[0];
  }
  if (end - p < 2)
    return -1;
  *pp = p + 2;
  return 269 + ((int32_t)p[0] << 8 | p[1]);
}

int ck_msg_parse(struct ck_msg *m, const void *buf, size_t len)
{
  const uint8_t *p = buf;
  if (!m || (!buf && len))
    return CK_EINVAL;
  if (len < CK_HEADER_LEN)
    return CK_EMSG_SHORT;

  m->data = p;
  m->len = len;
  m->type = (p[0] >> 4) & 3;
  m->tkl = p[0] & 15;
  m->code = p[1];
  m->mid = (uint16_t)(p[2] << 8 | p[3]);
  m->token = p + CK_HEADER_LEN;
  m->opts = NULL;
  m->opts_len = 0;
  m->nopts = 0;
  m->payload = NULL;
  m->payload_len = 0;

  if ((p[0] >> 6) != CK_COAP_VERSION)
    return CK_EMSG_VERSION;
  if (m->tkl > CK_TOKEN_MAX)
    return CK_EMSG_TKL;
  if (m->code == CK_CODE_EMPTY) {
    /* RFC 7252 §4.1: anything after the Message ID of an Empty message
     * is a message format error. */
    return (len == CK_HEADER_LEN && m->tkl == 0) ? 0 : CK_EMSG_EMPTY;
  }
  if (class_reserved(m->code))
    return CK_EMSG_CODE;
  if (len < (size_t)CK_HEADER_LEN + m->tkl)
    return CK_EMSG_TOKEN;

  const uint8_t *q = p + CK_HEADER_LEN + m->tkl;
  const uint8_t *end = p + len;
  const uint8_t *opts_end = end;
  uint32_t num = 0;
  unsigned n = 0;
  m->opts = q;
  while (q < end) {
    uint8_t b = *q++;
    if (b == CK_PAYLOAD_MARKER) {
      /* RFC 7252 §3: a marker followed by a zero-length payload is a
       * message format error. */
      if (q == end)
        return CK_EMSG_PAYLOAD;
      opts_end = q - 1;
      m->payload = q;
      m->payload_len = (size_t)(end - q);
      break;
    }
    unsigned dn = b >> 4, ln = b & 15;
    if (dn == NIB_RESERVED)
      return CK_EOPT_DELTA;
    if (ln == NIB_RESERVED)
      return CK_EOPT_LEN;
    int32_t delta = read_ext(dn, &q, end);
    if (delta < 0)
      return CK_EOPT_TRUNC;
    int32_t olen = read_ext(ln, &q, end);
    if (olen < 0 || (size_t)(end - q) < (size_t)olen)
      return CK_EOPT_TRUNC;
    num += (uint32_t)delta;
    if (num > UINT16_MAX)
      return CK_EOPT_NUM;
    q += olen;
    n++;
  }
  m->opts_len = (size_t)(opts_end - m->opts);
  m->nopts = n;
  return 0;
}

/* The option walk without argument checks, for the lookups below and,
 * through ck_opt_iter_init()/ck_opt_next(), for callers, which the public
 * functions check once. Inlined: the request path runs it several times
 * per request. */
static inline void iter_init(struct ck_opt_iter *it, const struct ck_msg *m)
{
  it->p = m->opts;
  it->end = m->opts ? m->opts + m->opts_len : NULL;
  it->num = 0;
}

static inline bool iter_next(struct ck_opt_iter *it, struct ck_opt *out)
{
  if (it->p == NULL || it->p >= it->end)
    return false;
  uint8_t b = *it->p++;
  /* The parse validated every option, so the extensions are present. */
  int32_t delta = read_ext(b >> 4, &it->p, it->end);
  int32_t olen = read_ext(b & 15, &it->p, it->end);
  it->num += (uint32_t)delta;
  out->num = (uint16_t)it->num;
  out->len = (uint16_t)olen;
  out->val = it->p;
  it->p += olen;
  return true;
}

void ck_opt_iter_init(struct ck_opt_iter *it, const struct ck_msg *m)
{
  if (!it)
    return;
  if (!m) {
    it->p = it->end = NULL;
    it->num = 0;
    return;
  }
  iter_init(it, m);
}

bool ck_opt_next(struct ck_opt_iter *it, struct ck_opt *out)
{
  if (!it || !out)
    return false;
  return iter_next(it, out);
}

int ck_msg_opt(const struct ck_msg *m, uint16_t num, struct ck_opt *out)
{
  struct ck_opt_iter it;
  struct ck_opt o;
  if (!m || !out)
    return CK_EINVAL;
  iter_init(&it, m);
  while (iter_next(&it, &o)) {
    if (o.num == num) {
      *out = o;
      return 0;
    }
    /* Options are in ascending order on the wire. */
    if (o.num > num)
      break;
  }
  return CK_ENOTFOUND;
}

int ck_msg_opt_uint(const struct ck_msg *m, uint16_t num, uint32_t *out)
{
  struct ck_opt o;
  if (!out)
    return CK_EINVAL;
  int rc = ck_msg_opt(m, num, &o);
  if (rc < 0)
    return rc;
  return ck_opt_uint_decode(o.val, o.len, out);
}

unsigned ck_msg_opt_count(const struct ck_msg *m, uint16_t num)
{
  struct ck_opt_iter it;
  struct ck_opt o;
  unsigned n = 0;
  if (!m)
    return 0;
  iter_init(&it, m);
  while (iter_next(&it, &o)) {
    if (o.num == num)
      n++;
    else if (o.num > num)
      break;
  }
  return n;
}

void ck_builder_init(struct ck_builder *b, void *buf, size_t cap,
                     enum ck_type type, uint8_t code, uint16_t mid)
{
  /* The option array is left uninitialised: only nopts entries are read. */
  if (!b)
    return;
  b->buf = buf;
  b->cap = cap;
  b->err = 0;
  b->type = (uint8_t)type & 3;
  b->code = code;
  b->tkl = 0;
  b->sorted = true;
  b->mid = mid;
  b->nopts = 0;
  b->payload = NULL;
  b->payload_len = 0;
  if (!buf && cap)
    b->err = CK_EINVAL; /* ck_builder_finish() reports it */
}

static int fail(struct ck_builder *b, int err)
{
  if (b->err == 0)
    b->err = err;
  return err;
}

int ck_builder_token(struct ck_builder *b, const void *tok, size_t len)
{
  if (!b)
    return CK_EINVAL;
  if (!tok && len)
    return fail(b, CK_EINVAL);
  if (len > CK_TOKEN_MAX)
    return fail(b, CK_EMSG_TKL);
  if (len)
    memcpy(b->token, tok, len);
  b->tkl = (uint8_t)len;
  return 0;
}

static struct ck_builder_opt *add(struct ck_builder *b, uint16_t num)
{
  if (b->nopts >= CK_BUILDER_MAX_OPTS) {
    fail(b, CK_EOPT_TOOMANY);
    return NULL;
  }
  if (b->nopts > 0 && b->opts[b->nopts - 1].num > num)
    b->sorted = false;
  struct ck_builder_opt *o = &b->opts[b->nopts++];
  o->num = num;
  return o;
}

int ck_builder_opt(struct ck_builder *b, uint16_t num, const void *val,
                   size_t len)
{
  if (!b)
    return CK_EINVAL;
  if (len > CK_OPT_VALUE_MAX)
    return fail(b, CK_EOPT_VALUE);
  if (len > 0 && val == NULL)
    return fail(b, CK_EINVAL);
  struct ck_builder_opt *o = add(b, num);
  if (!o)
    return b->err;
  o->len = (uint16_t)len;
  o->val = len ? val : NULL;
  return 0;
}

int ck_builder_opt_str(struct ck_builder *b, uint16_t num, const char *s)
{
  if (!b)
    return CK_EINVAL;
  if (s == NULL)
    return fail(b, CK_EINVAL);
  return ck_builder_opt(b, num, s, strlen(s));
}

int ck_builder_opt_uint(struct ck_builder *b, uint16_t num, uint32_t v)
{
  if (!b)
    return CK_EINVAL;
  struct ck_builder_opt *o = add(b, num);
  if (!o)
    return b->err;
  o->len = (uint16_t)ck_opt_uint_encode(v, o->inl);
  o->val = NULL;
  return 0;
}

void ck_builder_payload(struct ck_builder *b, const void *p, size_t len)
{
  if (!b)
    return;
  b->payload = p;
  b->payload_len = p ? len : 0;
}

/* Stable insertion sort by number: repeated options keep the order in
 * which they were added (RFC 7252 §5.4.5: their order is significant). */
static void sort_opts(struct ck_builder_opt *o, unsigned n)
{
  for (unsigned i = 1; i < n; i++) {
    struct ck_builder_opt x = o[i];
    unsigned j = i;
    while (j > 0 && o[j - 1].num > x.num) {
      o[j] = o[j - 1];
      j--;
    }
    o[j] = x;
  }
}

/* Splits v into a header nibble and 0-2 extension bytes. */
static unsigned nibble(uint32_t v, uint8_t ext[2], size_t *ext_len)
{
  if (v < 13) {
    *ext_len = 0;
    return v;
  }
  if (v < 269) {
    ext[0] = (uint8_t)(v - 13);
    *ext_len = 1;
    return NIB_EXT8;
  }
  v -= 269;
  ext[0] = (uint8_t)(v >> 8);
  ext[1] = (uint8_t)v;
  *ext_len = 2;
  return NIB_EXT16;
}

int ck_builder_finish(struct ck_builder *b)
{
  if (!b)
    return CK_EINVAL;
  if (b->err)
    return b->err;
  if (b->code == CK_CODE_EMPTY &&
      (b->tkl || b->nopts || b->payload_len))
    return fail(b, CK_EMSG_EMPTY);
  if (!b->sorted) {
    sort_opts(b->opts, b->nopts);
    b->sorted = true;
  }

  uint8_t *out = b->buf;
  size_t cap = b->cap, pos = CK_HEADER_LEN + b->tkl;
  if (cap < pos)
    return fail(b, CK_ENOSPC);
  out[0] = (uint8_t)(CK_COAP_VERSION << 6 | b->type << 4 | b->tkl);
  out[1] = b->code;
  out[2] = (uint8_t)(b->mid >> 8);
  out[3] = (uint8_t)b->mid;
  if (b->tkl)
    memcpy(out + CK_HEADER_LEN, b->token, b->tkl);

  uint32_t prev = 0;
  for (unsigned i = 0; i < b->nopts; i++) {
    const struct ck_builder_opt *o = &b->opts[i];
    uint8_t dext[2], lext[2];
    size_t dlen, llen;
    unsigned dn = nibble(o->num - prev, dext, &dlen);
    unsigned ln = nibble(o->len, lext, &llen);
    size_t need = 1 + dlen + llen + o->len;
    if (cap - pos < need)
      return fail(b, CK_ENOSPC);
    out[pos++] = (uint8_t)(dn << 4 | ln);
    memcpy(out + pos, dext, dlen);
    pos += dlen;
    memcpy(out + pos, lext, llen);
    pos += llen;
    if (o->len)
      memcpy(out + pos, o->val ? o->val : o->inl, o->len);
    pos += o->len;
    prev = o->num;
  }

  if (b->payload_len) {
    if (cap - pos < 1 + b->payload_len)
      return fail(b, CK_ENOSPC);
    out[pos++] = CK_PAYLOAD_MARKER;
    memcpy(out + pos, b->payload, b->payload_len);
    pos += b->payload_len;
  }
  if (pos > INT32_MAX)
    return fail(b, CK_ENOSPC);
  return (int)pos;
}

const char *ck_type_name(enum ck_type type)
{
  static const char *const names[] = {"CON", "NON", "ACK", "RST"};
  return names[(unsigned)type & 3];
}

const char *ck_code_name(uint8_t code)
{
  switch (code) {
  case CK_CODE_EMPTY: return "Empty";
  case CK_GET: return "GET";
  case CK_POST: return "POST";
  case CK_PUT: return "PUT";
  case CK_DELETE: return "DELETE";
  case CK_FETCH: return "FETCH";
  case CK_PATCH: return "PATCH";
  case CK_IPATCH: return "iPATCH";
  case CK_CREATED: return "Created";
  case CK_DELETED: return "Deleted";
  case CK_VALID: return "Valid";
  case CK_CHANGED: return "Changed";
  case CK_CONTENT: return "Content";
  case CK_CONTINUE: return "Continue";
  case CK_BAD_REQUEST: return "Bad Request";
  case CK_UNAUTHORIZED: return "Unauthorized";
  case CK_BAD_OPTION: return "Bad Option";
  case CK_FORBIDDEN: return "Forbidden";
  case CK_NOT_FOUND: return "Not Found";
  case CK_METHOD_NOT_ALLOWED: return "Method Not Allowed";
  case CK_NOT_ACCEPTABLE: return "Not Acceptable";
  case CK_REQUEST_ENTITY_INCOMPLETE: return "Request Entity Incomplete";
  case CK_CONFLICT: return "Conflict";
  case CK_PRECONDITION_FAILED: return "Precondition Failed";
  case CK_REQUEST_ENTITY_TOO_LARGE: return "Request Entity Too Large";
  case CK_UNSUPPORTED_CONTENT_FORMAT: return "Unsupported Content-Format";
  case CK_UNPROCESSABLE_ENTITY: return "Unprocessable Entity";
  case CK_TOO_MANY_REQUESTS: return "Too Many Requests";
  case CK_INTERNAL_SERVER_ERROR: return "Internal Server Error";
  case CK_NOT_IMPLEMENTED: return "Not Implemented";
  case CK_BAD_GATEWAY: return "Bad Gateway";
  case CK_SERVICE_UNAVAILABLE: return "Service Unavailable";
  case CK_GATEWAY_TIMEOUT: return "Gateway Timeout";
  case CK_PROXYING_NOT_SUPPORTED: return "Proxying Not Supported";
  case CK_HOP_LIMIT_REACHED: return "Hop Limit Reached";
  }
  return NULL;
}

int ck_code_format(char *buf, size_t cap, uint8_t code)
{
  if (!buf && cap)
    return CK_EINVAL;
  const char *name = ck_code_name(code);
  if (name)
    return snprintf(buf, cap, "%u.%02u %s", CK_CODE_CLASS(code),
                    CK_CODE_DETAIL(code), name);
  return snprintf(buf, cap, "%u.%02u", CK_CODE_CLASS(code),
                  CK_CODE_DETAIL(code));
}
