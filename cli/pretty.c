/* Readable payloads for a terminal (see pretty.h).
 *
 * JSON is checked with cJSON, then re-indented from its own text, so that
 * numbers and escapes appear exactly as the server wrote them. CBOR is
 * decoded with libcbor and written in diagnostic notation (RFC 8949 §8):
 * compact when it fits a line, else one element per line. libcbor frees
 * nested items recursively, so a scan first refuses anything nested
 * deeper than MAX_DEPTH: a hostile payload must not exhaust the stack.
 * Link format is read with the library's reader into a table.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <cjson/cJSON.h>
#include <coapkit/coapkit.h>

#include "pretty.h"

enum { MAX_DEPTH = 64, LINE = 72 };

enum cli_shape cli_shape_of(int cf)
{
  if (cf < 0)
    return SHAPE_GUESS;
  if (cf == CK_CF_LINK_FORMAT)
    return SHAPE_LINK;
  const char *n = ck_cf_name((uint16_t)cf);
  if (!n)
    return SHAPE_GUESS;
  if (strstr(n, "content-coding"))
    return SHAPE_BINARY; /* compressed */
  if (strstr(n, "json"))
    return SHAPE_JSON;
  if (strstr(n, "cbor") || strstr(n, "cwt"))
    return SHAPE_CBOR;
  if (strncmp(n, "text/", 5) == 0 || strstr(n, "xml") ||
      strstr(n, "javascript"))
    return SHAPE_TEXT;
  return SHAPE_BINARY;
}

/* The length of the UTF-8 sequence at p (at most n bytes), or 0 when it
 * is malformed, overlong, a surrogate or beyond U+10FFFF. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
  uint8_t c = p[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return len;
}

/* Is the character at p a control character (C0, DEL or C1)? */
static bool is_control(const uint8_t *p, size_t len)
{
  if (len == 1)
    return p[0] < 0x20 || p[0] == 0x7f;
  return len == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

bool cli_is_text(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n;) {
    size_t len = utf8_len(p + i, n - i);
    if (!len)
      return false;
    if (is_control(p + i, len) && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
      return false;
    i += len;
  }
  return true;
}

bool cli_is_utf8(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n;) {
    size_t len = utf8_len(p + i, n - i);
    if (!len || p[i] == 0)
      return false;
    i += len;
  }
  return true;
}

void cli_text(FILE *f, const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n;) {
    size_t len = utf8_len(p + i, n - i);
    if (!len || (is_control(p + i, len) && p[i] != '\t' && p[i] != '\n')) {
      fprintf(f, "\\x%02x", p[i]);
      i++;
      continue;
    }
    fwrite(p + i, 1, len, f);
    i += len;
  }
}

void cli_hexdump(FILE *f, const char *prefix, const uint8_t *p, size_t n)
{
  for (size_t off = 0; off < n; off += 16) {
    fprintf(f, "%s%08zx ", prefix, off);
    for (size_t i = 0; i < 16; i++) {
      if (i == 8)
        fputc(' ', f);
      if (off + i < n)
        fprintf(f, " %02x", p[off + i]);
      else
        fputs("   ", f);
    }
    fputs("  |", f);
    for (size_t i = 0; i < 16 && off + i < n; i++) {
      uint8_t c = p[off + i];
      fputc(c >= 0x20 && c < 0x7f ? c : '.', f);
    }
    fputs("|\n", f);
  }
}

/* --- JSON --- */

static void newline(FILE *f, int depth)
{
  fprintf(f, "\n%*s", depth * 2, "");
}

/* Re-indents valid JSON by its structure; strings pass unchanged. */
static void json_indent(FILE *f, const char *s, size_t n)
{
  int depth = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    switch (c) {
    case ' ':
    case '\t':
    case '\n':
    case '\r':
      break;
    case '"': {
      size_t j = i + 1;
      while (j < n && s[j] != '"')
        j += s[j] == '\\' ? 2 : 1;
      fwrite(s + i, 1, (j < n ? j + 1 : n) - i, f);
      i = j;
      break;
    }
    case '{':
    case '[': {
      size_t j = i + 1;
      while (j < n && strchr(" \t\r\n", s[j]))
        j++;
      fputc(c, f);
      if (j < n && (s[j] == '}' || s[j] == ']')) {
        fputc(s[j], f); /* {} and [] stay on one line */
        i = j;
      } else {
        newline(f, ++depth);
      }
      break;
    }
    case '}':
    case ']':
      newline(f, --depth);
      fputc(c, f);
      break;
    case ',':
      fputc(',', f);
      newline(f, depth);
      break;
    case ':':
      fputs(": ", f);
      break;
    default:
      fputc(c, f);
    }
  }
  fputc('\n', f);
}

static bool json_ok(const uint8_t *p, size_t n)
{
  cJSON *j = cJSON_ParseWithLength((const char *)p, n);
  if (!j)
    return false;
  cJSON_Delete(j);
  return true;
}

/* --- CBOR --- */

/* Is the sequence nested at most MAX_DEPTH deep? Malformed input passes:
 * libcbor rejects it afterwards. */
static bool cbor_depth_ok(const uint8_t *p, size_t n)
{
  const uint64_t indef = UINT64_MAX;
  uint64_t left[MAX_DEPTH]; /* items still due in each open container */
  unsigned d = 0;
  size_t i = 0;
  while (i < n) {
    uint8_t ib = p[i++];
    unsigned mt = ib >> 5, ai = ib & 31;
    uint64_t arg = ai;
    bool done_item = true;
    if (ib == 0xff) {
      if (d == 0 || left[d - 1] != indef)
        return true;
      d--;
    } else {
      if (ai >= 24 && ai <= 27) {
        size_t k = (size_t)1 << (ai - 24);
        if (k > n - i)
          return true;
        arg = 0;
        for (size_t j = 0; j < k; j++)
          arg = arg << 8 | p[i + j];
        i += k;
      } else if (ai >= 28 && ai <= 30) {
        return true;
      }
      bool is_indef = ai == 31;
      if ((mt == 2 || mt == 3) && !is_indef) {
        if (arg > n - i)
          return true;
        i += (size_t)arg;
      } else if (mt == 4 || mt == 5 || mt == 6 ||
                 ((mt == 2 || mt == 3) && is_indef)) {
        uint64_t items = is_indef  ? indef
                         : mt == 5 ? arg * 2
                         : mt == 6 ? 1
                                   : arg;
        if (mt == 5 && !is_indef && arg > UINT64_MAX / 2)
          return true;
        if (items) {
          if (d == MAX_DEPTH)
            return false;
          left[d++] = items;
          done_item = false;
        }
      }
    }
    /* An item is complete: it counts against its container, which may
     * be complete in turn. */
    while (done_item && d > 0 && left[d - 1] != indef) {
      if (--left[d - 1] > 0)
        break;
      d--;
    }
  }
  return true;
}

struct sbuf {
  char *p;
  size_t len, cap;
  bool oom;
};

static void put(struct sbuf *b, const char *s, size_t n)
{
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->oom = true;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void puts_(struct sbuf *b, const char *s)
{
  put(b, s, strlen(s));
}

static void putf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void putf(struct sbuf *b, const char *fmt, ...)
{
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0)
    put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void put_quoted(struct sbuf *b, const uint8_t *s, size_t n)
{
  puts_(b, "\"");
  for (size_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(b, e, 2);
    } else if (c == '\n') {
      puts_(b, "\\n");
    } else if (c < 0x20 || c == 0x7f) {
      putf(b, "\\u%04x", c);
    } else {
      put(b, (const char *)&c, 1);
    }
  }
  puts_(b, "\"");
}

static void put_hex(struct sbuf *b, const uint8_t *s, size_t n)
{
  puts_(b, "h'");
  for (size_t i = 0; i < n; i++)
    putf(b, "%02x", s[i]);
  puts_(b, "'");
}

/* A float as diagnostic notation wants it: the shortest text that reads
 * back to the same value, always with a '.' or an exponent. */
static void put_float(struct sbuf *b, double x, bool single)
{
  if (isnan(x)) {
    puts_(b, "NaN");
    return;
  }
  if (isinf(x)) {
    puts_(b, x < 0 ? "-Infinity" : "Infinity");
    return;
  }
  char tmp[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, x);
    double y = strtod(tmp, NULL);
    if (single ? (float)y == (float)x : y == x)
      break;
  }
  puts_(b, tmp);
  if (!strpbrk(tmp, ".e"))
    puts_(b, ".0");
}

static void diag(struct sbuf *b, cbor_item_t *it, int depth, bool compact);

static void diag_chunks(struct sbuf *b, cbor_item_t **chunks, size_t n,
                        bool bytes)
{
  puts_(b, "(_ ");
  for (size_t i = 0; i < n; i++) {
    if (i)
      puts_(b, ", ");
    if (bytes)
      put_hex(b, cbor_bytestring_handle(chunks[i]),
              cbor_bytestring_length(chunks[i]));
    else
      put_quoted(b, cbor_string_handle(chunks[i]),
                 cbor_string_length(chunks[i]));
  }
  puts_(b, ")");
}

/* Writes an array or a map: on one line when compact or when it fits,
 * else one element per line. */
static void diag_container(struct sbuf *b, cbor_item_t *it, int depth,
                           bool compact)
{
  bool map = cbor_typeof(it) == CBOR_TYPE_MAP;
  bool indef = map ? cbor_map_is_indefinite(it) : cbor_array_is_indefinite(it);
  size_t n = map ? cbor_map_size(it) : cbor_array_size(it);
  if (!compact) {
    struct sbuf one = {0};
    diag_container(&one, it, depth, true);
    bool fits = !one.oom && one.len + (size_t)depth * 2 <= LINE;
    if (fits)
      put(b, one.p, one.len);
    free(one.p);
    if (fits)
      return;
  }
  puts_(b, map ? "{" : "[");
  if (indef)
    puts_(b, "_ ");
  for (size_t i = 0; i < n; i++) {
    if (i)
      puts_(b, ",");
    if (!compact)
      putf(b, "\n%*s", (depth + 1) * 2, "");
    else if (i)
      puts_(b, " ");
    if (map) {
      struct cbor_pair *pr = cbor_map_handle(it);
      diag(b, pr[i].key, depth + 1, compact);
      puts_(b, ": ");
      diag(b, pr[i].value, depth + 1, compact);
    } else {
      diag(b, cbor_array_handle(it)[i], depth + 1, compact);
    }
  }
  if (!compact && n)
    putf(b, "\n%*s", depth * 2, "");
  puts_(b, map ? "}" : "]");
}

static void diag(struct sbuf *b, cbor_item_t *it, int depth, bool compact)
{
  switch (cbor_typeof(it)) {
  case CBOR_TYPE_UINT:
    putf(b, "%" PRIu64, cbor_get_int(it));
    break;
  case CBOR_TYPE_NEGINT: {
    uint64_t v = cbor_get_int(it); /* the value is -1 - v */
    if (v == UINT64_MAX)
      puts_(b, "-18446744073709551616");
    else
      putf(b, "-%" PRIu64, v + 1);
    break;
  }
  case CBOR_TYPE_BYTESTRING:
    if (cbor_bytestring_is_indefinite(it))
      diag_chunks(b, cbor_bytestring_chunks_handle(it),
                  cbor_bytestring_chunk_count(it), true);
    else
      put_hex(b, cbor_bytestring_handle(it), cbor_bytestring_length(it));
    break;
  case CBOR_TYPE_STRING:
    if (cbor_string_is_indefinite(it))
      diag_chunks(b, cbor_string_chunks_handle(it), cbor_string_chunk_count(it),
                  false);
    else
      put_quoted(b, cbor_string_handle(it), cbor_string_length(it));
    break;
  case CBOR_TYPE_ARRAY:
  case CBOR_TYPE_MAP:
    diag_container(b, it, depth, compact);
    break;
  case CBOR_TYPE_TAG: {
    putf(b, "%" PRIu64 "(", cbor_tag_value(it));
    cbor_item_t *inner = cbor_tag_item(it); /* a new reference */
    diag(b, inner, depth, compact);
    cbor_decref(&inner);
    puts_(b, ")");
    break;
  }
  case CBOR_TYPE_FLOAT_CTRL:
    if (cbor_float_get_width(it) == CBOR_FLOAT_0) {
      if (cbor_is_bool(it))
        puts_(b, cbor_get_bool(it) ? "true" : "false");
      else if (cbor_is_null(it))
        puts_(b, "null");
      else if (cbor_is_undef(it))
        puts_(b, "undefined");
      else
        putf(b, "simple(%u)", cbor_ctrl_value(it));
    } else {
      put_float(b, cbor_float_get_float(it),
                cbor_float_get_width(it) != CBOR_FLOAT_64);
    }
    break;
  }
}

char *cli_cbor_diag(const uint8_t *p, size_t n, bool compact)
{
  if (n == 0 || !cbor_depth_ok(p, n))
    return NULL;
  struct sbuf b = {0};
  size_t off = 0;
  /* RFC 8742: a sequence of items is written separated by commas. */
  while (off < n) {
    struct cbor_load_result r;
    cbor_item_t *it = cbor_load(p + off, n - off, &r);
    if (!it || r.error.code != CBOR_ERR_NONE || r.read == 0) {
      if (it)
        cbor_decref(&it);
      free(b.p);
      return NULL;
    }
    if (off)
      puts_(&b, compact ? ", " : ",\n");
    diag(&b, it, 0, compact);
    cbor_decref(&it);
    off += r.read;
  }
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* --- link format --- */

enum { NCOLS = 6, CELL = 200 };

static const char *const col_names[NCOLS] = {"path", "rt", "ct",
                                             "if",   "sz", "obs"};

/* A parameter's value for the table, quoted-pair escapes resolved and
 * control characters replaced. */
static void cell_param(const struct ck_link *l, const char *name, char *out)
{
  const struct ck_link_param *p = ck_link_param(l, name);
  size_t k = 0;
  if (p && p->val)
    for (size_t i = 0; i < p->val_len && k < CELL - 1; i++) {
      char c = p->val[i];
      if (c == '\\' && p->quoted && i + 1 < p->val_len)
        c = p->val[++i];
      out[k++] = (unsigned char)c < 0x20 || c == 0x7f ? '?' : c;
    }
  if (p && !p->val && k == 0)
    out[k++] = '-';
  out[k] = '\0';
  if (!p)
    snprintf(out, CELL, "-");
}

/* ct: each number of the list by its media type. */
static void cell_ct(const struct ck_link *l, char *out)
{
  char raw[CELL];
  cell_param(l, "ct", raw);
  if (strcmp(raw, "-") == 0) {
    snprintf(out, CELL, "-");
    return;
  }
  size_t k = 0;
  out[0] = '\0';
  for (char *w = raw; *w;) {
    size_t n = strcspn(w, " ");
    char word[CELL];
    snprintf(word, sizeof word, "%.*s", (int)n, w);
    uint16_t num;
    const char *name = NULL;
    if (word[0] >= '0' && word[0] <= '9' && ck_cf_parse(word, &num) == 0)
      name = ck_cf_name(num);
    int m =
        snprintf(out + k, CELL - k, "%s%s", k ? " " : "", name ? name : word);
    if (m < 0 || (size_t)m >= CELL - k)
      break;
    k += (size_t)m;
    w += n;
    while (*w == ' ')
      w++;
  }
}

static void cells(const struct ck_link *l, char c[NCOLS][CELL])
{
  snprintf(c[0], CELL, "%.*s", (int)l->target_len, l->target);
  for (char *s = c[0]; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      *s = '?';
  cell_param(l, "rt", c[1]);
  cell_ct(l, c[2]);
  cell_param(l, "if", c[3]);
  cell_param(l, "sz", c[4]);
  snprintf(c[5], CELL, "%s", ck_link_param(l, "obs") ? "obs" : "");
}

static void row(FILE *f, const char *indent, const size_t *w,
                char c[NCOLS][CELL])
{
  /* Trailing blanks are left out: the last cells are often empty. */
  int last = NCOLS - 1;
  while (last > 0 && c[last][0] == '\0')
    last--;
  fputs(indent, f);
  for (int i = 0; i < last; i++)
    fprintf(f, "%-*s  ", (int)w[i], c[i]);
  fprintf(f, "%s\n", c[last]);
}

int cli_link_table(FILE *f, const char *indent, const char *doc, size_t len)
{
  size_t w[NCOLS];
  char c[NCOLS][CELL];
  for (int i = 0; i < NCOLS; i++)
    w[i] = strlen(col_names[i]);
  struct ck_link_reader r;
  struct ck_link l;
  int rc, n = 0;
  /* Two passes: the widths first, then the rows. */
  ck_link_reader_init(&r, doc, len);
  while ((rc = ck_link_next(&r, &l)) == 1) {
    cells(&l, c);
    for (int i = 0; i < NCOLS; i++)
      if (strlen(c[i]) > w[i])
        w[i] = strlen(c[i]);
    n++;
  }
  if (rc < 0)
    return -1;
  for (int i = 0; i < NCOLS; i++)
    snprintf(c[i], CELL, "%s", col_names[i]);
  row(f, indent, w, c);
  ck_link_reader_init(&r, doc, len);
  while (ck_link_next(&r, &l) == 1) {
    cells(&l, c);
    row(f, indent, w, c);
  }
  return n;
}

/* --- the payload as a whole --- */

void cli_pretty(FILE *f, int cf, const uint8_t *p, size_t n)
{
  if (n == 0)
    return;
  enum cli_shape s = cli_shape_of(cf);
  if (s == SHAPE_JSON && json_ok(p, n)) {
    json_indent(f, (const char *)p, n);
    return;
  }
  if (s == SHAPE_CBOR) {
    char *d = cli_cbor_diag(p, n, false);
    if (d) {
      fprintf(f, "%s\n", d);
      free(d);
      return;
    }
  }
  if (s == SHAPE_LINK && cli_link_table(f, "", (const char *)p, n) >= 0)
    return;
  /* Declared text is shown as text (controls escaped) when it is
   * UTF-8; undeclared bytes only when they read as text. */
  if (s == SHAPE_BINARY || !cli_is_utf8(p, n) ||
      (s == SHAPE_GUESS && !cli_is_text(p, n))) {
    cli_hexdump(f, "", p, n);
    return;
  }
  cli_text(f, p, n);
  if (p[n - 1] != '\n')
    fputc('\n', f);
}

void cli_preview(FILE *f, const char *prefix, int cf, const uint8_t *p,
                 size_t n, size_t max_bytes)
{
  size_t shown = n < max_bytes ? n : max_bytes;
  enum cli_shape s = cli_shape_of(cf);
  char *d = s == SHAPE_CBOR ? cli_cbor_diag(p, n, true) : NULL;
  if (d) {
    size_t dl = strlen(d);
    fprintf(f, "%s%.*s%s\n", prefix, (int)(dl < max_bytes ? dl : max_bytes), d,
            dl > max_bytes ? " ..." : "");
    free(d);
    return;
  }
  /* A cut may split a UTF-8 sequence: text is what is text up to there. */
  size_t cut = shown;
  while (cut > 0 && cut < n && (p[cut] & 0xc0) == 0x80)
    cut--;
  if (s != SHAPE_BINARY && s != SHAPE_CBOR && cli_is_text(p, cut)) {
    const uint8_t *q = p, *end = p + cut;
    while (q < end) {
      const uint8_t *nl = memchr(q, '\n', (size_t)(end - q));
      size_t len = nl ? (size_t)(nl - q) : (size_t)(end - q);
      if (len && q[len - 1] == '\r')
        len--;
      fputs(prefix, f);
      cli_text(f, q, len);
      fputc('\n', f);
      q = nl ? nl + 1 : end;
    }
    shown = cut;
  } else {
    cli_hexdump(f, prefix, p, shown);
  }
  if (shown < n)
    fprintf(f, "%s... %zu more bytes\n", prefix, n - shown);
}
