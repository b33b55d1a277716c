/* The CoRE Link Format (RFC 6690): reader, query filter and writer.
 *
 * A /.well-known/core answer is a comma-separated list of links such as
 * </sensors/temp>;rt="temperature-c";if="sensor". The reader walks such a
 * document one link at a time and hands out views into the caller's
 * buffer, never allocating and never copying, as the rest of the codec
 * does. The filter implements the query of RFC 6690 §4.1 that a client
 * sends as ?rt=temperature* and a server applies to each of its links. The
 * writer produces documents that the reader reads back to the same links.
 *
 * The grammar is RFC 6690 §2, itself RFC 5988's link-value with link
 * extensions. We are strict where a document cannot be understood (a link
 * without '<', an unterminated '>' or quoted-string, a value without a
 * name) and liberal where deployed servers are merely untidy: whitespace,
 * including line breaks, may surround ',', ';' and '=', a line break may
 * stand in for the ',' between links, and a trailing ',' is ignored.
 */
#include "coapkit/link.h"

#include <limits.h>
#include <string.h>

/* ---- character classes ------------------------------------------------ */

static bool is_ws(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alnum(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

/* RFC 5987 §3.2.1: parmname = 1*attr-char. A trailing '*' marks an
 * RFC 2231-style extended parameter such as title* (RFC 5988 §5); we
 * accept '*' anywhere in a name rather than police where it sits. */
static bool is_name_char(char c)
{
  return is_alnum(c) || (c != '\0' && strchr("!#$&+-.^_`|~*", c) != NULL);
}

/* RFC 6690 §2 (from RFC 5988 §5): the characters of an unquoted value.
 * Note that '<', '>' and '=' are allowed, while ',', ';', '"', '\' and
 * whitespace are not: those are what end a value. */
static bool is_ptoken_char(char c)
{
  return is_alnum(c) ||
         (c != '\0' && strchr("!#$%&'()*+-./:<=>?@[]^_`{|}~", c) != NULL);
}

/* A URI-reference never holds controls or angle brackets (RFC 3986 §2).
 * Rejecting them in a target also turns a missing '>' into an error at the
 * line where it happened rather than many links later. Bytes >= 0x80 are
 * let through for servers that put IRIs in their links. */
static bool is_target_char(char c)
{
  unsigned char u = (unsigned char)c;
  return u > 0x1f && u != 0x7f && c != '<' && c != '>';
}

static char lower(char c)
{
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* ASCII case-insensitive equality of a[0..alen) and b[0..blen). */
static bool name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
  if (alen != blen)
    return false;
  for (size_t i = 0; i < alen; i++)
    if (lower(a[i]) != lower(b[i]))
      return false;
  return true;
}

static bool is_ptoken(const char *s, size_t len)
{
  if (len == 0)
    return false;
  for (size_t i = 0; i < len; i++)
    if (!is_ptoken_char(s[i]))
      return false;
  return true;
}

/* ---- reader ----------------------------------------------------------- */

/* Skips whitespace and reports whether it held a line break, which is
 * what lets a newline separate two links. */
static bool skip_ws(const char **pp, const char *end)
{
  const char *p = *pp;
  bool nl = false;
  while (p < end && is_ws(*p)) {
    if (*p == '\r' || *p == '\n')
      nl = true;
    p++;
  }
  *pp = p;
  return nl;
}

/* Reads one link-param (RFC 6690 §2: parmname [ "=" ( ptoken /
 * quoted-string ) ]) at *pp, which is just past the ';' and its
 * whitespace. */
static int read_param(const char **pp, const char *end, struct ck_link *l)
{
  const char *p = *pp;
  const char *name = p;
  while (p < end && is_name_char(*p))
    p++;
  /* Catches ";;", ";=x", ";\"x\"" and a ';' that ends the link: a value
   * cannot be interpreted without the name that says what it is. */
  if (p == name)
    return CK_ELINK_SYNTAX;
  if (l->nparams == CK_LINK_MAX_PARAMS)
    return CK_ELINK_SYNTAX;

  struct ck_link_param *prm = &l->params[l->nparams++];
  prm->name = name;
  prm->name_len = (size_t)(p - name);
  prm->val = NULL;
  prm->val_len = 0;
  prm->quoted = false;

  const char *q = p;
  skip_ws(&q, end);
  if (q == end || *q != '=') {
    /* A parameter without a value, such as "obs" (RFC 7641 §6). */
    *pp = p;
    return 0;
  }
  p = q + 1;
  skip_ws(&p, end);
  if (p == end)
    return CK_ELINK_SYNTAX;

  if (*p == '"') {
    /* quoted-string (RFC 7230 §3.2.6): a backslash makes the next byte
     * literal, so \" does not end the string. The escapes stay in the
     * view; ck_link_param_has() and ck_link_match() read through them. */
    const char *val = ++p;
    while (p < end && *p != '"') {
      if (*p == '\\' && ++p == end)
        break;
      p++;
    }
    if (p == end)
      return CK_ELINK_SYNTAX;
    prm->val = val;
    prm->val_len = (size_t)(p - val);
    prm->quoted = true;
    p++;
  } else {
    const char *val = p;
    while (p < end && is_ptoken_char(*p))
      p++;
    /* ptoken = 1*ptokenchar: "rt=;" and "rt=,x" say nothing. */
    if (p == val)
      return CK_ELINK_SYNTAX;
    prm->val = val;
    prm->val_len = (size_t)(p - val);
  }
  *pp = p;
  return 0;
}

/* Reads one link-value at *pp and the separator after it. */
static int read_link(const char **pp, const char *end, struct ck_link *l)
{
  const char *p = *pp;
  if (*p != '<')
    return CK_ELINK_SYNTAX;
  const char *target = ++p;
  while (p < end && *p != '>') {
    if (!is_target_char(*p))
      return CK_ELINK_SYNTAX;
    p++;
  }
  if (p == end)
    return CK_ELINK_SYNTAX;
  l->target = target;
  l->target_len = (size_t)(p - target);
  l->nparams = 0;
  p++;

  for (;;) {
    bool nl = skip_ws(&p, end);
    if (p == end)
      break;
    if (*p == ',') {
      /* Consume the separator here, so the next call starts at a link
       * (or at the end: a trailing comma is harmless). */
      p++;
      break;
    }
    /* libcoap and Californium emit links on one line, but documents
     * written by hand or pretty-printed put one link per line, sometimes
     * without the comma. A line break followed by '<' can only be that. */
    if (*p == '<' && nl)
      break;
    if (*p != ';')
      return CK_ELINK_SYNTAX;
    p++;
    skip_ws(&p, end);
    int rc = read_param(&p, end, l);
    if (rc < 0)
      return rc;
  }
  *pp = p;
  return 0;
}

void ck_link_reader_init(struct ck_link_reader *r, const char *buf,
                         size_t len)
{
  if (!r)
    return;
  r->err = 0;
  if (!buf) {
    /* Even buf + 0 is undefined for a null pointer. */
    r->p = r->end = NULL;
    if (len > 0)
      r->err = CK_EINVAL;
    return;
  }
  r->p = buf;
  r->end = buf + len;
}

int ck_link_next(struct ck_link_reader *r, struct ck_link *out)
{
  if (!r || !out)
    return CK_EINVAL;
  if (r->err)
    return r->err;
  const char *p = r->p;
  skip_ws(&p, r->end);
  if (p == r->end) {
    r->p = p;
    return 0;
  }
  int rc = read_link(&p, r->end, out);
  if (rc < 0) {
    /* Sticky: after a syntax error we no longer know where links start. */
    r->err = rc;
    return rc;
  }
  r->p = p;
  return 1;
}

const struct ck_link_param *ck_link_param(const struct ck_link *l,
                                          const char *name)
{
  if (!l || !name)
    return NULL;
  size_t len = strlen(name);
  for (unsigned i = 0; i < l->nparams && i < CK_LINK_MAX_PARAMS; i++) {
    const struct ck_link_param *p = &l->params[i];
    if (name_eq(p->name, p->name_len, name, len))
      return p;
  }
  return NULL;
}

/* ---- matching --------------------------------------------------------- */

/* Reads a parameter value one character at a time with quoted-string
 * escapes resolved, so that title="a \"b\"" compares as a "b". */
struct cursor {
  const char *p;
  const char *end;
  bool quoted;
};

static void cursor_init(struct cursor *c, const struct ck_link_param *p)
{
  c->p = p->val;
  c->end = p->val ? p->val + p->val_len : NULL;
  c->quoted = p->quoted;
}

/* Returns the next character as 0..255, or -1 at the end. */
static int cursor_next(struct cursor *c)
{
  if (c->p == c->end)
    return -1;
  char ch = *c->p++;
  if (c->quoted && ch == '\\' && c->p != c->end)
    ch = *c->p++;
  return (unsigned char)ch;
}

/* Compares the whole value with pat[0..plen), exactly or as a prefix. A
 * parameter without a value compares as the empty string, so that "obs="
 * and "obs=*" both select links carrying a bare obs. */
static bool value_matches(const struct ck_link_param *p, const char *pat,
                          size_t plen, bool prefix)
{
  struct cursor c;
  cursor_init(&c, p);
  for (size_t i = 0; i < plen; i++)
    if (cursor_next(&c) != (unsigned char)pat[i])
      return false;
  return prefix || cursor_next(&c) < 0;
}

/* Returns true when any space-separated word of the value equals
 * pat[0..plen) or, with prefix, starts with it. RFC 6690 §2 and RFC 5988
 * §5 separate relation-types with 1*SP; we also split on tabs. */
static bool word_matches(const struct ck_link_param *p, const char *pat,
                         size_t plen, bool prefix)
{
  struct cursor c;
  cursor_init(&c, p);
  int ch = cursor_next(&c);
  for (;;) {
    while (ch == ' ' || ch == '\t')
      ch = cursor_next(&c);
    if (ch < 0)
      return false;
    size_t i = 0;
    bool ok = true;
    while (ch >= 0 && ch != ' ' && ch != '\t') {
      if (i < plen) {
        if (ch != (unsigned char)pat[i])
          ok = false;
        i++;
      } else if (!prefix) {
        ok = false;
      }
      ch = cursor_next(&c);
    }
    if (ok && i == plen)
      return true;
  }
}

bool ck_link_param_has(const struct ck_link_param *p, const char *word,
                       size_t len)
{
  if (!p || !p->val || !word || len == 0)
    return false;
  return word_matches(p, word, len, false);
}

/* Parameters whose values are space-separated lists: relation types (RFC
 * 6690 §2 rel/rev, from RFC 5988), resource types and interface
 * descriptions (RFC 6690 §3.1, §3.2), and content formats (RFC 7252
 * §7.2.1, ct="0 40"). */
static bool is_list_param(const char *name, size_t len)
{
  static const char *const lists[] = { "rt", "if", "rel", "rev", "ct" };
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
    if (name_eq(name, len, lists[i], strlen(lists[i])))
      return true;
  return false;
}

bool ck_link_match(const struct ck_link *l, const char *filter, size_t len)
{
  if (!l)
    return false;
  if (len == 0)
    return true;
  if (!filter)
    return false;

  const char *eq = memchr(filter, '=', len);
  size_t nlen = eq ? (size_t)(eq - filter) : len;
  /* "=x" names no parameter: a malformed filter selects nothing rather
   * than everything, so a typo cannot flood a client. */
  if (nlen == 0)
    return false;
  bool href = name_eq(filter, nlen, "href", 4);

  if (!eq) {
    /* Not in RFC 6690 §4.1's grammar, but "?obs" is what clients send to
     * find observable resources: select links that carry the parameter,
     * with or without a value. Every link has an href. */
    if (href)
      return true;
    for (unsigned i = 0; i < l->nparams && i < CK_LINK_MAX_PARAMS; i++)
      if (name_eq(l->params[i].name, l->params[i].name_len, filter, nlen))
        return true;
    return false;
  }

  /* RFC 6690 §4.1: query-pattern = search-token [ "*" ]; a trailing '*'
   * makes the search token a prefix. */
  const char *pat = eq + 1;
  size_t plen = len - nlen - 1;
  bool prefix = plen > 0 && pat[plen - 1] == '*';
  if (prefix)
    plen--;

  if (href) {
    /* RFC 6690 §4.1: "href" filters on the URI-reference of the link, as
     * written between the angle brackets. */
    if (prefix)
      return l->target_len >= plen && memcmp(l->target, pat, plen) == 0;
    return l->target_len == plen && memcmp(l->target, pat, plen) == 0;
  }

  bool list = is_list_param(filter, nlen);
  /* A link that lacks the parameter does not match. A parameter given
   * twice matches when either occurrence does. */
  for (unsigned i = 0; i < l->nparams && i < CK_LINK_MAX_PARAMS; i++) {
    const struct ck_link_param *p = &l->params[i];
    if (!name_eq(p->name, p->name_len, filter, nlen))
      continue;
    /* For a list, a single word selects the link (?rt=temperature-f
     * finds rt="temperature-c temperature-f"); the whole value is tried
     * too, so a decoded "?rt=a%20b" still finds rt="a b". */
    if (value_matches(p, pat, plen, prefix))
      return true;
    if (list && p->val && word_matches(p, pat, plen, prefix))
      return true;
  }
  return false;
}

/* ---- writer ----------------------------------------------------------- */

void ck_link_writer_init(struct ck_link_writer *w, char *buf, size_t cap)
{
  if (!w)
    return;
  w->buf = buf;
  w->cap = buf ? cap : 0;
  w->len = 0;
  w->count = 0;
  w->err = (!buf && cap > 0) ? CK_EINVAL : 0;
}

static bool put(struct ck_link_writer *w, const char *s, size_t n)
{
  if (n == 0)
    return true;
  if (w->cap - w->len < n)
    return false;
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  return true;
}

static bool put_c(struct ck_link_writer *w, char c)
{
  return put(w, &c, 1);
}

/* Writes a value. An unquoted parameter holds plain text: it goes out bare
 * when it is a ptoken, else quoted with '"' and '\' escaped. A quoted
 * parameter holds a quoted-string's inside with its escapes in place, as
 * the reader gives it, and goes out as it is, so that parse -> write ->
 * parse keeps the view; only a stray '"' or a final lone '\', which would
 * end or break the string, is escaped. */
static bool put_value(struct ck_link_writer *w, const struct ck_link_param *p)
{
  if (!p->quoted && is_ptoken(p->val, p->val_len))
    return put(w, p->val, p->val_len);
  if (!put_c(w, '"'))
    return false;
  for (size_t i = 0; i < p->val_len; i++) {
    char c = p->val[i];
    if (p->quoted && c == '\\' && i + 1 < p->val_len) {
      if (!put(w, p->val + i, 2))
        return false;
      i++;
      continue;
    }
    if ((c == '"' || c == '\\') && !put_c(w, '\\'))
      return false;
    if (!put_c(w, c))
      return false;
  }
  return put_c(w, '"');
}

/* Refuses a link the reader could not read back. */
static int check_link(const struct ck_link *l)
{
  if (!l || (!l->target && l->target_len > 0))
    return CK_EINVAL;
  for (size_t i = 0; i < l->target_len; i++)
    if (!is_target_char(l->target[i]))
      return CK_EINVAL;
  if (l->nparams > CK_LINK_MAX_PARAMS)
    return CK_EINVAL;
  for (unsigned i = 0; i < l->nparams; i++) {
    const struct ck_link_param *p = &l->params[i];
    if (!p->name || p->name_len == 0)
      return CK_EINVAL;
    for (size_t j = 0; j < p->name_len; j++)
      if (!is_name_char(p->name[j]))
        return CK_EINVAL;
  }
  return 0;
}

int ck_link_write(struct ck_link_writer *w, const struct ck_link *l)
{
  if (!w)
    return CK_EINVAL;
  if (w->err)
    return w->err;
  int rc = check_link(l);
  if (rc < 0)
    return w->err = rc;

  size_t start = w->len;
  bool ok = (w->count == 0 || put_c(w, ',')) && put_c(w, '<') &&
            put(w, l->target, l->target_len) && put_c(w, '>');
  for (unsigned i = 0; ok && i < l->nparams; i++) {
    const struct ck_link_param *p = &l->params[i];
    ok = put_c(w, ';') && put(w, p->name, p->name_len);
    if (ok && p->val)
      ok = put_c(w, '=') && put_value(w, p);
  }
  if (!ok) {
    /* Take back the partial link: what precedes it is still a whole
     * document a server may send. */
    w->len = start;
    return w->err = CK_ENOSPC;
  }
  w->count++;
  return 0;
}

int ck_link_writer_finish(struct ck_link_writer *w)
{
  if (!w)
    return CK_EINVAL;
  if (w->err)
    return w->err;
  if (w->len > INT_MAX)
    return w->err = CK_ERANGE;
  /* Never at buf[cap]: the NUL is a convenience, the length is the
   * answer. */
  if (w->len < w->cap)
    w->buf[w->len] = '\0';
  return (int)w->len;
}
