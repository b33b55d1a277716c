/* CoAP URIs: parsing, decomposition into options and recomposition
 * (RFC 7252 §6).
 *
 * A request names its target twice over: as a coap:// or coaps:// URI that
 * people write, and as Uri-Host, Uri-Port, Uri-Path and Uri-Query options
 * that travel in the message with every percent-encoding resolved. This
 * module turns one into the other in both directions, following the
 * algorithms of RFC 7252 §6.4 and §6.5 step by step, so that a URI sent
 * through a message and read back out names the same resource. It is part
 * of the codec: it never allocates, and every string it returns is a view
 * into the caller's text or the caller's scratch buffer.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "coapkit/opt.h"
#include "coapkit/uri.h"

/* RFC 7252 §5.10: Uri-Host, Uri-Path and Uri-Query are at most 255
 * bytes. */
#define VALUE_MAX 255

/* Zero-length option values point here rather than at NULL + 0, which C
 * leaves undefined. */
static const uint8_t empty_value[1];

/* Character classes of RFC 3986 §2 (ASCII only; every other byte must be
 * percent-encoded). */
static bool is_alpha(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
  return c >= '0' && c <= '9';
}

static bool is_unreserved(unsigned char c)
{
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

static bool is_subdelim(unsigned char c)
{
  return c != 0 && memchr("!$&'()*+,;=", c, 11) != NULL;
}

static bool is_pchar(unsigned char c)
{
  return is_unreserved(c) || is_subdelim(c) || c == ':' || c == '@';
}

static int hexval(unsigned char c)
{
  if (is_digit(c))
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static unsigned char lower(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Compares s[0..n) with the lower-case literal lit, ignoring ASCII case
 * whatever the locale. */
static bool ascii_ieq(const char *s, const char *lit, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
      return false;
  return true;
}

static uint16_t default_port(unsigned scheme)
{
  return scheme == CK_SCHEME_COAPS ? CK_PORT_COAPS : CK_PORT_COAP;
}

/* Checks that every '%' in s[0..n) starts a "%" HEXDIG HEXDIG triplet and
 * stores the length s decodes to. */
static int pct_scan(const char *s, size_t n, size_t *dlen)
{
  size_t out = 0;
  for (size_t i = 0; i < n; i++, out++) {
    if (s[i] != '%')
      continue;
    if (n - i < 3 || hexval((unsigned char)s[i + 1]) < 0 ||
        hexval((unsigned char)s[i + 2]) < 0)
      return CK_EURI_ESCAPE;
    i += 2;
  }
  *dlen = out;
  return 0;
}

/* Decodes s[0..n), already checked by pct_scan(), into out. Reading runs
 * ahead of writing, so out may equal s. */
static size_t pct_copy(const char *s, size_t n, uint8_t *out)
{
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      c = (unsigned char)((hexval((unsigned char)s[i + 1]) << 4) |
                          hexval((unsigned char)s[i + 2]));
      i += 2;
    }
    out[o++] = c;
  }
  return o;
}

int ck_uri_pct_decode(const char *src, size_t len, char *out, size_t cap)
{
  size_t o = 0;
  if ((len > 0 && src == NULL) || (cap > 0 && out == NULL))
    return CK_EINVAL;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)src[i];
    if (c == '%') {
      int hi = len - i >= 3 ? hexval((unsigned char)src[i + 1]) : -1;
      int lo = len - i >= 3 ? hexval((unsigned char)src[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return CK_EURI_ESCAPE;
      c = (unsigned char)((hi << 4) | lo);
      i += 2;
    }
    if (o >= cap || o >= INT_MAX)
      return CK_ENOSPC;
    out[o++] = (char)c;
  }
  return (int)o;
}

/* RFC 3986 §3.2.2: dec-octet, which forbids leading zeros. */
static bool ipv4_valid(const char *s, size_t n)
{
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= n || s[i] != '.')
        return false;
      i++;
    }
    size_t start = i;
    unsigned v = 0;
    while (i < n && is_digit((unsigned char)s[i]) && i - start < 3)
      v = v * 10 + (unsigned)(s[i++] - '0');
    if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
      return false;
  }
  return i == n;
}

/* RFC 3986 §3.2.2: IPv6address, eight 16-bit groups of which one run may
 * be shortened to "::" and the last two may be written as an IPv4
 * address. */
static bool ipv6_valid(const char *s, size_t n)
{
  size_t i = 0;
  unsigned groups = 0;
  bool gap = false;
  if (n >= 2 && s[0] == ':' && s[1] == ':') {
    gap = true;
    i = 2;
  }
  while (i < n) {
    /* An IPv4 tail is the only place a '.' may appear. */
    const char *colon = memchr(s + i, ':', n - i);
    const char *dot = memchr(s + i, '.', n - i);
    if (dot && !colon) {
      if (!ipv4_valid(s + i, n - i))
        return false;
      groups += 2;
      break;
    }
    size_t start = i;
    while (i < n && i - start < 4 && hexval((unsigned char)s[i]) >= 0)
      i++;
    if (i == start)
      return false;
    groups++;
    if (i == n)
      break;
    if (s[i] != ':')
      return false;
    i++;
    if (i < n && s[i] == ':') {
      if (gap)
        return false;
      gap = true;
      i++;
    } else if (i == n) {
      return false;
    }
  }
  return gap ? groups <= 7 : groups == 8;
}

/* The inside of an IP-literal: an IPv6 address, optionally with a zone
 * (RFC 6874 §2: "%25" then 1*( unreserved / pct-encoded )). IPvFuture is
 * refused: no CoAP transport could use it. */
static int ip_literal_check(const char *s, size_t n)
{
  const char *pct = memchr(s, '%', n);
  size_t alen = pct ? (size_t)(pct - s) : n;
  if (!ipv6_valid(s, alen))
    return CK_EURI_HOST;
  if (!pct)
    return 0;
  if (n - alen < 4 || s[alen + 1] != '2' || s[alen + 2] != '5')
    return CK_EURI_HOST;
  for (size_t i = alen + 3; i < n; i++) {
    if (s[i] == '%') {
      if (n - i < 3 || hexval((unsigned char)s[i + 1]) < 0 ||
          hexval((unsigned char)s[i + 2]) < 0)
        return CK_EURI_ESCAPE;
      i += 2;
    } else if (!is_unreserved((unsigned char)s[i])) {
      return CK_EURI_HOST;
    }
  }
  return 0;
}

/* A reg-name whose decoding is an IPv4 address. Digits and '.' are
 * unreserved, so RFC 3986 §2.3 makes "%31.2.3.4" the same host as
 * "1.2.3.4"; treating both as the literal keeps equivalent URIs
 * decomposing to the same options. */
static bool decodes_to_ipv4(const char *s, size_t n)
{
  char buf[16];
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (o == sizeof buf)
      return false;
    if (s[i] == '%') {
      buf[o++] = (char)((hexval((unsigned char)s[i + 1]) << 4) |
                        hexval((unsigned char)s[i + 2]));
      i += 2;
    } else {
      buf[o++] = s[i];
    }
  }
  return ipv4_valid(buf, o);
}

/* Checks the characters of a path (pchar and '/') or a query (also '?'),
 * RFC 3986 §3.3 and §3.4. */
static int check_chars(const char *s, size_t n, bool query)
{
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      if (n - i < 3 || hexval((unsigned char)s[i + 1]) < 0 ||
          hexval((unsigned char)s[i + 2]) < 0)
        return CK_EURI_ESCAPE;
      i += 2;
    } else if (!is_pchar(c) && c != '/' && !(query && c == '?')) {
      return CK_EURI_SYNTAX;
    }
  }
  return 0;
}

/* Parses the host and port of the authority s[0..n). */
static int parse_authority(struct ck_uri *u, const char *s, size_t n)
{
  size_t i;
  /* RFC 7252 §6.1: the grammar is "//" host [ ":" port ], so a userinfo
   * part ("user@") cannot be part of a CoAP URI. */
  if (memchr(s, '@', n))
    return CK_EURI_SYNTAX;
  if (n > 0 && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (!close)
      return CK_EURI_HOST;
    u->host = s + 1;
    u->host_len = (size_t)(close - s) - 1;
    int rc = ip_literal_check(u->host, u->host_len);
    if (rc != 0)
      return rc;
    u->host_is_literal = true;
    u->host_is_ipv6 = true;
    i = (size_t)(close - s) + 1;
    if (i < n && s[i] != ':')
      return CK_EURI_HOST;
  } else {
    for (i = 0; i < n && s[i] != ':'; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c == '%') {
        if (n - i < 3 || hexval((unsigned char)s[i + 1]) < 0 ||
            hexval((unsigned char)s[i + 2]) < 0)
          return CK_EURI_ESCAPE;
        i += 2;
      } else if (!is_unreserved(c) && !is_subdelim(c)) {
        return CK_EURI_HOST;
      }
    }
    /* RFC 7252 §6.1: "The host MUST NOT be empty". */
    if (i == 0)
      return CK_EURI_HOST;
    u->host = s;
    u->host_len = i;
    u->host_is_literal = decodes_to_ipv4(s, i);
  }
  if (i == n)
    return 0;
  /* RFC 3986 §3.2.3: port = *DIGIT, and an empty port means the scheme's
   * default ("coap://h:/" is "coap://h/", RFC 7252 §6.6). */
  uint32_t port = 0;
  for (i++; i < n; i++) {
    if (!is_digit((unsigned char)s[i]))
      return CK_EURI_PORT;
    port = port * 10 + (uint32_t)(s[i] - '0');
    if (port > UINT16_MAX)
      return CK_EURI_PORT;
    u->port_given = true;
  }
  if (u->port_given)
    u->port = (uint16_t)port;
  return 0;
}

int ck_uri_parse(struct ck_uri *u, const char *s, size_t len)
{
  if (u == NULL || (s == NULL && len > 0))
    return CK_EINVAL;
  memset(u, 0, sizeof *u);

  /* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ),
   * compared without regard to case (RFC 7252 §6.4 step 3). */
  size_t i = 0;
  while (i < len && (is_alpha((unsigned char)s[i]) ||
                     (i > 0 && (is_digit((unsigned char)s[i]) || s[i] == '+' ||
                                s[i] == '-' || s[i] == '.'))))
    i++;
  if (i == len || s[i] != ':')
    return CK_EURI_SCHEME;
  if (i == 4 && ascii_ieq(s, "coap", 4))
    u->scheme = CK_SCHEME_COAP;
  else if (i == 5 && ascii_ieq(s, "coaps", 5))
    u->scheme = CK_SCHEME_COAPS;
  else
    return CK_EURI_SCHEME;
  u->port = default_port(u->scheme);
  i++;

  /* RFC 7252 §6.4 step 4: a fragment fails the whole algorithm. Nothing
   * else in a URI may contain '#', so a plain search is exact. */
  if (memchr(s + i, '#', len - i))
    return CK_EURI_FRAGMENT;

  /* RFC 7252 §6.1: a URI with an absent authority is invalid. */
  if (len - i < 2 || s[i] != '/' || s[i + 1] != '/')
    return CK_EURI_HOST;
  i += 2;

  size_t a = i;
  while (i < len && s[i] != '/' && s[i] != '?')
    i++;
  int rc = parse_authority(u, s + a, i - a);
  if (rc != 0)
    return rc;

  size_t p = i;
  while (i < len && s[i] != '?')
    i++;
  rc = check_chars(s + p, i - p, false);
  if (rc != 0)
    return rc;
  u->path = s + p;
  u->path_len = i - p;

  if (i < len) {
    i++;
    rc = check_chars(s + i, len - i, true);
    if (rc != 0)
      return rc;
    u->query = s + i;
    u->query_len = len - i;
  }
  return 0;
}

/* Options and scratch space being filled by ck_uri_opts(). */
struct decomp {
  struct ck_opt *opts;
  size_t cap;
  size_t n;
  uint8_t *scratch;
  size_t scap;
  size_t used;
};

static const uint8_t *scratch_at(const struct decomp *d, size_t off, size_t n)
{
  return n > 0 ? d->scratch + off : empty_value;
}

/* Adds one option whose value is the decoding of s[0..n). */
static int add_decoded(struct decomp *d, uint16_t num, const char *s, size_t n,
                       bool lowercase)
{
  size_t dlen;
  int rc = pct_scan(s, n, &dlen);
  if (rc != 0)
    return rc;
  if (dlen > VALUE_MAX)
    return CK_EURI_TOOLONG;
  if (d->n >= d->cap || dlen > d->scap - d->used)
    return CK_ENOSPC;
  if (dlen > 0) {
    uint8_t *out = d->scratch + d->used;
    pct_copy(s, n, out);
    for (size_t i = 0; lowercase && i < dlen; i++)
      out[i] = lower(out[i]);
  }
  d->opts[d->n++] =
      (struct ck_opt){num, (uint16_t)dlen, scratch_at(d, d->used, dlen)};
  d->used += dlen;
  return 0;
}

enum { SEG_NORMAL, SEG_DOT, SEG_DOTDOT };

/* Classifies a segment by its decoded value: "%2E" is "." (RFC 3986 §2.3),
 * and RFC 7252 §5.10.1 forbids a Uri-Path of "." or ".." either way. */
static int seg_kind(const char *s, size_t n)
{
  char v[2];
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (o == 2)
      return SEG_NORMAL;
    if (s[i] == '%') {
      v[o++] = (char)((hexval((unsigned char)s[i + 1]) << 4) |
                      hexval((unsigned char)s[i + 2]));
      i += 2;
    } else {
      v[o++] = s[i];
    }
  }
  if (o == 1 && v[0] == '.')
    return SEG_DOT;
  if (o == 2 && v[0] == '.' && v[1] == '.')
    return SEG_DOTDOT;
  return SEG_NORMAL;
}

/* Adds one Uri-Path per segment of the path p[0..n) after removing dot
 * segments (RFC 3986 §5.2.4, applied by RFC 7252 §6.4 step 2).
 *
 * remove_dot_segments() is written as string surgery; on segments it
 * means: "." is dropped, ".." drops itself and the nearest kept segment
 * to its left, and a "." or ".." at the very end leaves the path ending
 * in "/", that is, an empty last segment. Walking right to left, each
 * ".." just cancels the next normal segment met, so we count survivors in
 * a first pass (which also sizes the buffers exactly, so a segment that a
 * ".." removes never causes CK_EURI_TOOLONG or CK_ENOSPC) and store them
 * back to front in a second. */
static int add_path(struct decomp *d, const char *p, size_t n)
{
  if (n == 0)
    return 0;
  if (p[0] != '/')
    return CK_EINVAL;

  size_t count = 0, bytes = 0;
  bool toolong = false;
  for (int pass = 0; pass < 2; pass++) {
    size_t slot = d->n + count, off = d->used + bytes;
    size_t pending = 0, end = n;
    bool last = true;
    for (;;) {
      size_t k = end;
      while (p[k - 1] != '/')
        k--;
      size_t dlen;
      int rc = pct_scan(p + k, end - k, &dlen);
      if (rc != 0)
        return rc;
      int kind = seg_kind(p + k, end - k);
      bool keep = false;
      if (kind == SEG_DOTDOT)
        pending++;
      else if (kind == SEG_NORMAL && pending > 0)
        pending--;
      else if (kind == SEG_NORMAL)
        keep = true;
      if (kind != SEG_NORMAL && last) {
        /* The empty segment a trailing dot segment leaves behind. */
        if (pass == 0)
          count++;
        else
          d->opts[--slot] = (struct ck_opt){CK_OPT_URI_PATH, 0, empty_value};
      }
      if (keep && pass == 0) {
        count++;
        bytes += dlen;
        toolong |= dlen > VALUE_MAX;
      } else if (keep) {
        off -= dlen;
        if (dlen > 0)
          pct_copy(p + k, end - k, d->scratch + off);
        d->opts[--slot] = (struct ck_opt){CK_OPT_URI_PATH, (uint16_t)dlen,
                                          scratch_at(d, off, dlen)};
      }
      last = false;
      if (k == 1)
        break;
      end = k - 1;
    }
    if (pass > 0)
      break;
    /* RFC 7252 §6.4 step 8: a path that is (now) just "/" gives no
     * Uri-Path at all. */
    if (count == 1 && bytes == 0)
      return 0;
    if (toolong)
      return CK_EURI_TOOLONG;
    if (count > d->cap - d->n || bytes > d->scap - d->used)
      return CK_ENOSPC;
  }
  d->n += count;
  d->used += bytes;
  return 0;
}

int ck_uri_opts(const struct ck_uri *u, struct ck_opt *opts, size_t cap,
                uint8_t *scratch, size_t scratch_cap)
{
  if (u == NULL || (cap > 0 && opts == NULL) ||
      (scratch_cap > 0 && scratch == NULL) || u->scheme > CK_SCHEME_COAPS ||
      (u->host == NULL && u->host_len > 0) ||
      (u->path == NULL && u->path_len > 0))
    return CK_EINVAL;
  struct decomp d = {
      opts, cap < INT_MAX ? cap : INT_MAX, 0, scratch, scratch_cap, 0};
  int rc;

  /* RFC 7252 §6.4 step 5. The RFC lower-cases before decoding; we also
   * lower-case what "%41" decodes to, since RFC 3986 §2.3 and §3.2.2 make
   * "%41", "A" and "a" the same host, and they should give one option. */
  if (!u->host_is_literal) {
    if (u->host_len == 0)
      return CK_EINVAL; /* RFC 7252 §6.1: "The host MUST NOT be empty" */
    rc = add_decoded(&d, CK_OPT_URI_HOST, u->host, u->host_len, true);
    if (rc != 0)
      return rc;
  }

  /* RFC 7252 §6.4 steps 6 and 7, with the scheme's default port standing
   * for the destination port the request will use. */
  if (u->port != default_port(u->scheme)) {
    uint8_t v[4];
    size_t vlen = ck_opt_uint_encode(u->port, v);
    if (d.n >= d.cap || vlen > d.scap - d.used)
      return CK_ENOSPC;
    if (vlen > 0)
      memcpy(d.scratch + d.used, v, vlen);
    d.opts[d.n++] = (struct ck_opt){CK_OPT_URI_PORT, (uint16_t)vlen,
                                    scratch_at(&d, d.used, vlen)};
    d.used += vlen;
  }

  rc = add_path(&d, u->path, u->path_len);
  if (rc != 0)
    return rc;

  /* RFC 7252 §6.4 step 9: one Uri-Query per '&'-separated argument, empty
   * ones included, so that "?" alone is one empty argument and composes
   * back to "?" (§6.5 step 8). */
  if (u->query != NULL) {
    const char *q = u->query, *end = u->query + u->query_len;
    for (;;) {
      const char *amp = memchr(q, '&', (size_t)(end - q));
      const char *stop = amp ? amp : end;
      rc = add_decoded(&d, CK_OPT_URI_QUERY, q, (size_t)(stop - q), false);
      if (rc != 0)
        return rc;
      if (!amp)
        break;
      q = amp + 1;
    }
  }
  return (int)d.n;
}

int ck_uri_to_builder(const char *s, struct ck_builder *b, uint8_t *scratch,
                      size_t scratch_cap)
{
  struct ck_uri u;
  struct ck_opt opts[CK_BUILDER_MAX_OPTS];
  int rc;
  if (b == NULL)
    return CK_EINVAL;
  rc = s ? ck_uri_parse(&u, s, strlen(s)) : CK_EINVAL;
  if (rc == 0)
    rc = ck_uri_opts(&u, opts, CK_BUILDER_MAX_OPTS, scratch, scratch_cap);
  if (rc < 0) {
    /* Keep the builder's promise that its first error is sticky. */
    if (b->err == 0)
      b->err = rc;
    return rc;
  }
  for (int i = 0; i < rc; i++) {
    int err = ck_builder_opt(b, opts[i].num, opts[i].val, opts[i].len);
    if (err != 0)
      return err;
  }
  return 0;
}

/* The output of ck_uri_from_msg(): writes stop at the capacity, but the
 * length keeps counting so that overflow is detected once, at the end. */
struct wbuf {
  char *p;
  size_t cap;
  size_t len;
};

static void put(struct wbuf *w, char c)
{
  if (w->len < w->cap)
    w->p[w->len] = c;
  w->len++;
}

static void put_raw(struct wbuf *w, const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    put(w, s[i]);
}

enum { SET_REGNAME, SET_ZONE, SET_PATH, SET_QUERY };

/* The characters each component may carry unencoded (RFC 7252 §6.5). */
static bool keep_char(unsigned char c, int set)
{
  switch (set) {
  case SET_REGNAME: /* RFC 3986 §3.2.2 reg-name */
    return is_unreserved(c) || is_subdelim(c);
  case SET_ZONE: /* RFC 6874 §2 ZoneID */
    return is_unreserved(c);
  case SET_PATH: /* §6.5 step 5 */
    return is_unreserved(c) || is_subdelim(c) || c == ':' || c == '@';
  default: /* §6.5 step 8: '&' separates arguments, so it is escaped */
    return (is_unreserved(c) || is_subdelim(c) || c == ':' || c == '@' ||
            c == '/' || c == '?') &&
           c != '&';
  }
}

static void put_encoded(struct wbuf *w, const uint8_t *s, size_t n, int set)
{
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    if (keep_char(s[i], set)) {
      put(w, (char)s[i]);
    } else {
      /* RFC 3986 §2.1: producers should use upper-case hex digits. */
      put(w, '%');
      put(w, hex[s[i] >> 4]);
      put(w, hex[s[i] & 15]);
    }
  }
}

/* RFC 7252 §6.5 step 2, with a Uri-Host option. An IPv4 address or an
 * IP-literal goes in as it is. Anything else becomes a reg-name; the RFC
 * percent-encodes only non-ASCII bytes and fails on other characters a
 * reg-name cannot hold, but encoding those too yields a URI that
 * decomposes back to the very same option, which is what §6.5 is for. */
static int put_uri_host(struct wbuf *w, const uint8_t *v, size_t n)
{
  const char *s = (const char *)v;
  if (n == 0)
    return CK_EURI_HOST; /* RFC 7252 §6.1: "The host MUST NOT be empty" */
  if (ipv4_valid(s, n) || (n >= 2 && s[0] == '[' && s[n - 1] == ']' &&
                           ip_literal_check(s + 1, n - 2) == 0)) {
    put_raw(w, s, n);
    return 0;
  }
  put_encoded(w, v, n, SET_REGNAME);
  return 0;
}

/* RFC 7252 §6.5 step 2, without a Uri-Host option: the destination
 * address, bracketed when IPv6 (RFC 3986 §3.2.2) and with the zone's '%'
 * written "%25" (RFC 6874 §2). */
static int put_dest_host(struct wbuf *w, const char *h)
{
  size_t n = strlen(h);
  if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
    h++;
    n -= 2;
  }
  if (n == 0)
    return CK_EURI_HOST;
  if (!memchr(h, ':', n)) {
    put_encoded(w, (const uint8_t *)h, n, SET_REGNAME);
    return 0;
  }
  const char *pct = memchr(h, '%', n);
  size_t alen = pct ? (size_t)(pct - h) : n;
  if (!ipv6_valid(h, alen) || alen + 1 == n)
    return CK_EINVAL;
  put(w, '[');
  put_raw(w, h, alen);
  if (pct) {
    put_raw(w, "%25", 3);
    put_encoded(w, (const uint8_t *)pct + 1, n - alen - 1, SET_ZONE);
  }
  put(w, ']');
  return 0;
}

int ck_uri_from_msg(const struct ck_msg *m, bool secure, const char *dest_host,
                    uint16_t dest_port, char *out, size_t cap)
{
  struct wbuf w = {out, cap, 0};
  struct ck_opt o;
  struct ck_opt_iter it;
  int rc;
  if (m == NULL || (out == NULL && cap > 0))
    return CK_EINVAL;

  /* RFC 7252 §6.5 step 1. */
  put_raw(&w, secure ? "coaps://" : "coap://", secure ? 8 : 7);

  if (ck_msg_opt(m, CK_OPT_URI_HOST, &o) == 0)
    rc = put_uri_host(&w, o.val, o.len);
  else if (dest_host != NULL)
    rc = put_dest_host(&w, dest_host);
  else
    rc = CK_EURI_HOST;
  if (rc != 0)
    return rc;

  /* RFC 7252 §6.5 steps 3 and 4. */
  uint32_t port = dest_port;
  if (ck_msg_opt(m, CK_OPT_URI_PORT, &o) == 0 &&
      (ck_opt_uint_decode(o.val, o.len, &port) != 0 || port > UINT16_MAX))
    return CK_EURI_PORT;
  if (port != (secure ? CK_PORT_COAPS : CK_PORT_COAP)) {
    char num[8];
    int k = snprintf(num, sizeof num, ":%u", (unsigned)port);
    put_raw(&w, num, (size_t)k);
  }

  /* RFC 7252 §6.5 steps 5 and 6. */
  bool any = false;
  ck_opt_iter_init(&it, m);
  while (ck_opt_next(&it, &o)) {
    if (o.num != CK_OPT_URI_PATH)
      continue;
    /* RFC 7252 §5.10.1: such a value MUST NOT be sent, and written into
     * a URI it would name a different resource. */
    if ((o.len == 1 && o.val[0] == '.') ||
        (o.len == 2 && o.val[0] == '.' && o.val[1] == '.'))
      return CK_EURI_SYNTAX;
    put(&w, '/');
    put_encoded(&w, o.val, o.len, SET_PATH);
    any = true;
  }
  if (!any)
    put(&w, '/');

  /* RFC 7252 §6.5 steps 7 and 8. */
  any = false;
  ck_opt_iter_init(&it, m);
  while (ck_opt_next(&it, &o)) {
    if (o.num != CK_OPT_URI_QUERY)
      continue;
    put(&w, any ? '&' : '?');
    put_encoded(&w, o.val, o.len, SET_QUERY);
    any = true;
  }

  if (w.len >= cap || w.len > INT_MAX) {
    if (cap > 0)
      out[0] = '\0';
    return CK_ENOSPC;
  }
  out[w.len] = '\0';
  return (int)w.len;
}
