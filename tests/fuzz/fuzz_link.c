/* libFuzzer target for the CoRE Link Format module (RFC 6690).
 *
 * Reads every link of the input, matches each against fixed filters, the
 * input's first line used as a filter, and filters built from the link's
 * own parameters (which must match), then writes the links back and reads
 * the output again: the round trip must give the same links. Any violated
 * property calls abort() so that the fuzzer reports it. Also linked with
 * replay_main.c, so it builds with gcc as well as clang.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FILTER_MAX = 256 };

static const char *const fixed_filters[] = {
  "rt=temperature*", "href=/sensors*", "if=sensor", "obs", "rt=*",
  "ct=0",            "ct=4*",          "",          "=x",  "title=*",
  "href",            "RT=light-lux",   "sz=*",      "rel=describedby",
};

static void check(bool ok)
{
  if (!ok)
    abort();
}

static bool is_href(const char *s, size_t len)
{
  return len == 4 && (s[0] | 0x20) == 'h' && (s[1] | 0x20) == 'r' &&
         (s[2] | 0x20) == 'e' && (s[3] | 0x20) == 'f';
}

/* Builds "name=<unescaped value>[*]" into f; returns its length, or 0 when
 * it does not fit. */
static size_t make_filter(char *f, const struct ck_link_param *p,
                          size_t prefix_len, bool star)
{
  size_t n = 0;
  if (p->name_len + 2 > FILTER_MAX)
    return 0;
  memcpy(f, p->name, p->name_len);
  n = p->name_len;
  f[n++] = '=';
  size_t taken = 0;
  for (size_t i = 0; p->val && i < p->val_len && taken < prefix_len; i++) {
    char c = p->val[i];
    if (p->quoted && c == '\\' && i + 1 < p->val_len)
      c = p->val[++i];
    if (n == FILTER_MAX - 1)
      return 0;
    f[n++] = c;
    taken++;
  }
  if (star)
    f[n++] = '*';
  return n;
}

/* Copies the first space-separated word of p's value, escapes resolved,
 * into word; returns its length, or 0 when there is none or it is long. */
static size_t first_word(const struct ck_link_param *p, char *word)
{
  size_t wl = 0;
  for (size_t j = 0; p->val && j < p->val_len; j++) {
    char c = p->val[j];
    if (p->quoted && c == '\\' && j + 1 < p->val_len)
      c = p->val[++j];
    if (c == ' ' || c == '\t') {
      if (wl)
        break;
      continue;
    }
    if (wl == FILTER_MAX)
      return 0;
    word[wl++] = c;
  }
  return wl;
}

static bool is_list(const char *s, size_t len)
{
  static const char *const lists[] = { "rt", "if", "rel", "rev", "ct" };
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
    size_t n = strlen(lists[i]);
    bool eq = len == n;
    for (size_t j = 0; eq && j < n; j++)
      eq = (s[j] | 0x20) == lists[i][j];
    if (eq)
      return true;
  }
  return false;
}

/* Filters built from a link's own parts must select it. */
static void check_self_match(const struct ck_link *l)
{
  char f[FILTER_MAX + 1];
  if (l->target_len + 6 <= FILTER_MAX) {
    memcpy(f, "href=", 5);
    memcpy(f + 5, l->target, l->target_len);
    check(ck_link_match(l, f, 5 + l->target_len));
    f[5 + l->target_len] = '*';
    check(ck_link_match(l, f, 6 + l->target_len));
  }
  for (unsigned i = 0; i < l->nparams; i++) {
    const struct ck_link_param *p = &l->params[i];
    /* A parameter literally named href is shadowed by the target. */
    if (is_href(p->name, p->name_len))
      continue;
    check(ck_link_match(l, p->name, p->name_len));
    size_t n = make_filter(f, p, SIZE_MAX, false);
    if (n)
      check(ck_link_match(l, f, n));
    n = make_filter(f, p, 3, true);
    if (n)
      check(ck_link_match(l, f, n));

    char word[FILTER_MAX];
    size_t wl = first_word(p, word);
    if (wl == 0)
      continue;
    check(ck_link_param_has(p, word, wl));
    if (is_list(p->name, p->name_len) && p->name_len + 1 + wl <= FILTER_MAX) {
      memcpy(f, p->name, p->name_len);
      f[p->name_len] = '=';
      memcpy(f + p->name_len + 1, word, wl);
      check(ck_link_match(l, f, p->name_len + 1 + wl));
    }
  }
}

static bool same_link(const struct ck_link *a, const struct ck_link *b)
{
  if (a->target_len != b->target_len ||
      memcmp(a->target, b->target, a->target_len) != 0 ||
      a->nparams != b->nparams)
    return false;
  for (unsigned i = 0; i < a->nparams; i++) {
    const struct ck_link_param *p = &a->params[i];
    const struct ck_link_param *q = &b->params[i];
    if (p->name_len != q->name_len ||
        memcmp(p->name, q->name, p->name_len) != 0)
      return false;
    if ((p->val == NULL) != (q->val == NULL))
      return false;
    if (p->val && (p->val_len != q->val_len || p->quoted != q->quoted ||
                   memcmp(p->val, q->val, p->val_len) != 0))
      return false;
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* An exact-size copy without a NUL, so ASan sees any overread. */
  char *doc = malloc(size ? size : 1);
  char *out = malloc(size ? size : 1);
  if (!doc || !out) {
    free(doc);
    free(out);
    return 0;
  }
  if (size)
    memcpy(doc, data, size);

  /* The first line, up to 64 bytes, doubles as a filter. */
  size_t flen = 0;
  while (flen < size && flen < 64 && doc[flen] != '\n')
    flen++;

  /* The canonical form is never longer than the input: each ',' or line
   * break between links becomes one ',' and whitespace is dropped. So a
   * buffer of the input's size must be enough. */
  struct ck_link_writer w;
  ck_link_writer_init(&w, out, size);
  struct ck_link_reader r;
  ck_link_reader_init(&r, doc, size);
  struct ck_link l;
  unsigned count = 0;
  int rc;
  while ((rc = ck_link_next(&r, &l)) == 1) {
    count++;
    check(l.nparams <= CK_LINK_MAX_PARAMS);
    for (size_t i = 0; i < sizeof fixed_filters / sizeof fixed_filters[0];
         i++)
      ck_link_match(&l, fixed_filters[i], strlen(fixed_filters[i]));
    ck_link_match(&l, doc, flen);
    check(ck_link_match(&l, "", 0));
    check_self_match(&l);
    check(ck_link_write(&w, &l) == 0);
  }
  check(rc == 0 || rc == CK_ELINK_SYNTAX);
  check(ck_link_next(&r, &l) == rc);
  int len = ck_link_writer_finish(&w);
  check(len >= 0 && (size_t)len <= size && w.count == count);

  /* Read the input again beside the output: link for link the same. */
  struct ck_link_reader again, back;
  ck_link_reader_init(&again, doc, size);
  ck_link_reader_init(&back, out, (size_t)len);
  for (unsigned i = 0; i < count; i++) {
    struct ck_link a, b;
    check(ck_link_next(&again, &a) == 1);
    check(ck_link_next(&back, &b) == 1);
    check(same_link(&a, &b));
  }
  check(ck_link_next(&back, &l) == 0);

  /* Half the room: CK_ENOSPC, a whole-links prefix, no byte past cap. */
  if (len > 0) {
    size_t cap = (size_t)len / 2;
    char *small = malloc(cap ? cap : 1);
    if (small) {
      struct ck_link_writer sw;
      ck_link_writer_init(&sw, small, cap);
      ck_link_reader_init(&again, doc, size);
      unsigned written = 0;
      while (ck_link_next(&again, &l) == 1 && ck_link_write(&sw, &l) == 0)
        written++;
      check(sw.err == CK_ENOSPC && sw.len <= cap && written < count);
      check(ck_link_writer_finish(&sw) == CK_ENOSPC);
      ck_link_reader_init(&back, small, sw.len);
      unsigned n = 0;
      while ((rc = ck_link_next(&back, &l)) == 1)
        n++;
      check(rc == 0 && n == written);
      free(small);
    }
  }

  free(out);
  free(doc);
  return 0;
}
