/* libFuzzer target for the URI module (RFC 7252 §6).
 *
 * The input is taken as a URI. When ck_uri_parse() accepts it, the target
 * decomposes it into options with roomy and with tight buffers, carries
 * the options through a real message (ck_builder, ck_msg_parse), composes
 * the URI back with ck_uri_from_msg() and checks the invariants that make
 * §6.4 and §6.5 inverses of each other:
 *
 * - tight buffers either give exactly the roomy result or CK_ENOSPC, and
 *   CK_ENOSPC only when the result really does not fit;
 * - every option is a Uri-Host/Port/Path/Query in number order, within
 *   the lengths of RFC 7252 §5.10, and no Uri-Path is "." or "..";
 * - the composed URI parses again and decomposes to the same options (a
 *   Uri-Host that reads as an IP-literal, which only "%5B" can produce, is
 *   the one ambiguity RFC 7252 leaves; there we check only the next
 *   point);
 * - composing a second time gives the very same string;
 * - ck_uri_to_builder() builds the same message as the steps above.
 *
 * Any violation aborts. The file also builds with gcc, linked with
 * replay_main.c, to replay the corpus under CTest.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/msg.h"
#include "coapkit/opt.h"
#include "coapkit/uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
  NOPTS = CK_BUILDER_MAX_OPTS,
  SCRATCH = 1 << 14,
  MSGBUF = 1 << 16,
  OUTBUF = 1 << 16,
  /* Composition writes at most three bytes per input byte plus a fixed
   * amount, so inputs up to this size always fit OUTBUF. */
  COMPOSE_MAX = OUTBUF / 4,
};

static void check(bool ok)
{
  if (!ok)
    abort();
}

static bool same_opts(const struct ck_opt *a, int na, const struct ck_opt *b,
                      int nb)
{
  if (na != nb)
    return false;
  for (int i = 0; i < na; i++)
    if (a[i].num != b[i].num || a[i].len != b[i].len ||
        (a[i].len > 0 && memcmp(a[i].val, b[i].val, a[i].len) != 0))
      return false;
  return true;
}

static void check_opts(const struct ck_opt *o, int n, const uint8_t *scratch,
                       size_t scap)
{
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    check(o[i].num == CK_OPT_URI_HOST || o[i].num == CK_OPT_URI_PORT ||
          o[i].num == CK_OPT_URI_PATH || o[i].num == CK_OPT_URI_QUERY);
    check(i == 0 || o[i - 1].num <= o[i].num);
    check(o[i].num == CK_OPT_URI_PATH || o[i].num == CK_OPT_URI_QUERY ||
          i == 0 || o[i - 1].num != o[i].num);
    check(o[i].len <= 255);
    check(o[i].num != CK_OPT_URI_HOST || o[i].len >= 1);
    check(o[i].num != CK_OPT_URI_PORT || o[i].len <= 2);
    check(o[i].val != NULL);
    if (o[i].len > 0)
      check(o[i].val >= scratch && o[i].val + o[i].len <= scratch + scap);
    check(o[i].num != CK_OPT_URI_PATH ||
          !((o[i].len == 1 && o[i].val[0] == '.') ||
            (o[i].len == 2 && o[i].val[0] == '.' && o[i].val[1] == '.')));
    total += o[i].len;
  }
  check(total <= scap);
}

static size_t opts_bytes(const struct ck_opt *o, int n)
{
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += o[i].len;
  return total;
}

/* Builds a GET with the options into buf; returns its length. */
static int build(const struct ck_opt *o, int n, uint8_t *buf, size_t cap)
{
  struct ck_builder b;
  ck_builder_init(&b, buf, cap, CK_TYPE_CON, CK_GET, 0x4242);
  for (int i = 0; i < n; i++)
    ck_builder_opt(&b, o[i].num, o[i].val, o[i].len);
  int len = ck_builder_finish(&b);
  check(len > 0);
  return len;
}

/* The destination address a request to u's literal host would use, as
 * ck_uri_from_msg() wants it: decoded, no brackets, NUL-terminated.
 * Returns false when it cannot be a C string (a "%00" in a zone). */
static bool literal_dest(const struct ck_uri *u, char *out, size_t cap)
{
  int n = ck_uri_pct_decode(u->host, u->host_len, out, cap - 1);
  check(n > 0);
  out[n] = '\0';
  return strlen(out) == (size_t)n;
}

/* Carries o[0..n) through a message and composes the URI into out. */
static int compose(const struct ck_opt *o, int n, bool secure, const char *dest,
                   char *out, size_t cap)
{
  static uint8_t buf[MSGBUF];
  struct ck_msg m;
  struct ck_opt_iter it;
  struct ck_opt got;
  int len = build(o, n, buf, sizeof buf);
  check(ck_msg_parse(&m, buf, (size_t)len) == 0);
  ck_opt_iter_init(&it, &m);
  for (int i = 0; i < n; i++) {
    check(ck_opt_next(&it, &got));
    check(same_opts(&got, 1, &o[i], 1));
  }
  check(!ck_opt_next(&it, &got));

  uint16_t port = secure ? CK_PORT_COAPS : CK_PORT_COAP;
  int r = ck_uri_from_msg(&m, secure, dest, port, out, cap);
  check(r > 0 && (size_t)r < cap && strlen(out) == (size_t)r);
  /* The string and its NUL need exactly r + 1 bytes. */
  static char tight[OUTBUF];
  check(ck_uri_from_msg(&m, secure, dest, port, tight, (size_t)r + 1) == r);
  check(memcmp(tight, out, (size_t)r + 1) == 0);
  check(ck_uri_from_msg(&m, secure, dest, port, tight, (size_t)r) == CK_ENOSPC);
  return r;
}

/* Decomposes with tight buffers and checks the result against the roomy
 * one (n options, or the error n). */
static void check_tight(const struct ck_uri *u, const struct ck_opt *ref, int n,
                        size_t cap, size_t scap)
{
  static struct ck_opt o[NOPTS];
  static uint8_t scratch[SCRATCH];
  if (cap > NOPTS)
    cap = NOPTS;
  if (scap > SCRATCH)
    scap = SCRATCH;
  int r = ck_uri_opts(u, cap ? o : NULL, cap, scap ? scratch : NULL, scap);
  if (n < 0) {
    check(r < 0);
  } else if ((size_t)n <= cap && opts_bytes(ref, n) <= scap) {
    check(r == n && same_opts(o, r, ref, n));
  } else {
    check(r == CK_ENOSPC);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct ck_opt opts[NOPTS], opts2[NOPTS];
  static uint8_t scratch[SCRATCH], scratch2[SCRATCH];
  static char out[OUTBUF], out2[OUTBUF], dest[OUTBUF], dest2[OUTBUF];
  static char copy[OUTBUF];
  const char *s = (const char *)data;
  struct ck_uri u, u2;

  /* Decoding never grows, and works in place. */
  if (size < sizeof copy) {
    if (size > 0)
      memcpy(copy, data, size);
    int d = ck_uri_pct_decode(copy, size, copy, size);
    check(d == CK_EURI_ESCAPE || (d >= 0 && (size_t)d <= size));
  }

  if (ck_uri_parse(&u, s, size) != 0)
    return 0;
  check(u.scheme == CK_SCHEME_COAP || u.scheme == CK_SCHEME_COAPS);
  check(u.host >= s && u.host_len > 0 && u.host + u.host_len <= s + size);
  check(u.path >= s && u.path + u.path_len <= s + size);
  check(u.path_len == 0 || u.path[0] == '/');
  check(!u.query || (u.query >= s && u.query + u.query_len <= s + size));
  check(!u.host_is_ipv6 || u.host_is_literal);
  check(u.port_given || u.port == (u.scheme ? CK_PORT_COAPS : CK_PORT_COAP));

  int n = ck_uri_opts(&u, opts, NOPTS, scratch, sizeof scratch);
  check(n >= 0 || n == CK_EURI_TOOLONG || n == CK_ENOSPC);
  if (n >= 0)
    check_opts(opts, n, scratch, sizeof scratch);

  /* Tight buffers: one short of the need, none at all, and sizes taken
   * from the input. */
  size_t need = n > 0 ? opts_bytes(opts, n) : 0;
  check_tight(&u, opts, n, n > 0 ? (size_t)n - 1 : 0, need);
  check_tight(&u, opts, n, n > 0 ? (size_t)n : 0, need > 0 ? need - 1 : 0);
  check_tight(&u, opts, n, 0, 0);
  check_tight(&u, opts, n, data[0] % 8, data[size / 2] % 64);

  /* ck_uri_to_builder() must build what the steps below build. */
  if (n >= 0 && memchr(data, 0, size) == NULL && size < sizeof copy) {
    static uint8_t a[MSGBUF], b[MSGBUF], sc[SCRATCH];
    struct ck_builder bld;
    memcpy(copy, data, size);
    copy[size] = '\0';
    ck_builder_init(&bld, b, sizeof b, CK_TYPE_CON, CK_GET, 0x4242);
    int rc = ck_uri_to_builder(copy, &bld, sc, sizeof sc);
    check(rc == 0 || rc == CK_ENOSPC);
    int blen = ck_builder_finish(&bld);
    if (rc == 0) {
      int alen = build(opts, n, a, sizeof a);
      check(blen == alen && memcmp(a, b, (size_t)alen) == 0);
    } else {
      check(blen == rc);
    }
  }

  if (n < 0 || size > COMPOSE_MAX)
    return 0;

  bool secure = u.scheme == CK_SCHEME_COAPS;
  const char *d = "192.0.2.1";
  if (u.host_is_literal) {
    if (!literal_dest(&u, dest, sizeof dest))
      return 0;
    d = dest;
  }
  int len = compose(opts, n, secure, d, out, sizeof out);

  /* The composed URI is valid and, but for the ambiguity noted at the
   * top, names the same options and the same literal host. */
  check(ck_uri_parse(&u2, out, (size_t)len) == 0);
  check(u2.scheme == u.scheme);
  int n2 = ck_uri_opts(&u2, opts2, NOPTS, scratch2, sizeof scratch2);
  check(n2 >= 0);
  const char *d2 = "192.0.2.1";
  if (u2.host_is_literal) {
    check(literal_dest(&u2, dest2, sizeof dest2));
    d2 = dest2;
  }
  bool ambiguous =
      n > 0 && opts[0].num == CK_OPT_URI_HOST && opts[0].val[0] == '[';
  if (!ambiguous) {
    check(same_opts(opts, n, opts2, n2));
    check(u2.host_is_literal == u.host_is_literal);
    check(u2.host_is_ipv6 == u.host_is_ipv6);
    check(!u.host_is_literal || strcmp(d, d2) == 0);
  }

  /* Composing again gives the same URI; after an ambiguous Uri-Host, from
   * the second round on. */
  int len2 = compose(opts2, n2, secure, d2, out2, sizeof out2);
  if (!ambiguous) {
    check(len2 == len && memcmp(out, out2, (size_t)len) == 0);
    return 0;
  }
  struct ck_uri u3;
  check(ck_uri_parse(&u3, out2, (size_t)len2) == 0);
  int n3 = ck_uri_opts(&u3, opts, NOPTS, scratch, sizeof scratch);
  check(same_opts(opts, n3, opts2, n2));
  const char *d3 = "192.0.2.1";
  if (u3.host_is_literal) {
    check(literal_dest(&u3, dest, sizeof dest));
    d3 = dest;
  }
  int len3 = compose(opts, n3, secure, d3, out, sizeof out);
  check(len3 == len2 && memcmp(out, out2, (size_t)len2) == 0);
  return 0;
}
