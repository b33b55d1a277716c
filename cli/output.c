/* coap's output: the verbose view, JSON objects and payloads (see
 * output.h).
 *
 * A verbose line looks like
 *
 *   > CON GET mid=23817 token=9c4a01f2 to 127.0.0.1:5683
 *   >   Uri-Path: hello
 *   < ACK 2.05 Content mid=23817 token=9c4a01f2 from 127.0.0.1:5683 rtt=1ms
 *   <   Content-Format: text/plain;charset=utf-8 (0)
 *   <   payload (13 bytes):
 *   <   | Hello, world!
 *
 * '>' marks what we sent and '<' what we received, as curl -v does.
 * Repeated Uri-Path, Uri-Query, Location-Path and Location-Query options
 * are joined into one line. The round-trip time is measured here, from
 * the first transmission of a message to its ACK or Reset, or of a
 * request to its first response, so it is the wire's view, not the
 * call's.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "output.h"
#include "pretty.h"

uint64_t cli_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cli_timestamp(char *buf, size_t cap)
{
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  char day[32];
  strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, cap, "%s.%03ldZ", day, ts.tv_nsec / 1000000);
}

static void hex(const uint8_t *p, size_t n, char *buf, size_t cap)
{
  size_t k = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && k + 3 <= cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%02x", p[i]);
}

/* Appends text with bytes outside printable ASCII (and sep, when not 0)
 * escaped: \xNN for controls and non-ASCII, %XX for sep. */
static size_t put_text(char *buf, size_t cap, size_t k, const uint8_t *p,
                       size_t n, char sep)
{
  for (size_t i = 0; i < n && k + 5 < cap; i++) {
    uint8_t c = p[i];
    if (sep && c == (uint8_t)sep)
      k += (size_t)snprintf(buf + k, cap - k, "%%%02X", c);
    else if (c < 0x20 || c >= 0x7f)
      k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", c);
    else
      buf[k++] = (char)c;
  }
  buf[k] = '\0';
  return k;
}

void cli_opt_text(const struct ck_opt *opt, char *buf, size_t cap)
{
  const struct ck_optdef *d = ck_opt_def(opt->num);
  uint32_t v = 0;
  bool is_uint = ck_opt_uint_decode(opt->val, opt->len, &v) == 0;
  buf[0] = '\0';
  switch (opt->num) {
  case CK_OPT_CONTENT_FORMAT:
  case CK_OPT_ACCEPT:
    if (is_uint) {
      const char *name = ck_cf_name((uint16_t)v);
      if (name && v <= 65535)
        snprintf(buf, cap, "%s (%u)", name, v);
      else
        snprintf(buf, cap, "%u", v);
      return;
    }
    break;
  case CK_OPT_BLOCK1:
  case CK_OPT_BLOCK2:
  case CK_OPT_Q_BLOCK1:
  case CK_OPT_Q_BLOCK2:
    if (is_uint) {
      /* NUM/M/SIZE, as libcoap shows it: M when more blocks follow. */
      struct ck_block b;
      if (ck_block_decode(v, &b) == 0)
        snprintf(buf, cap, "%u/%c/%u", b.num, b.more ? 'M' : '_',
                 CK_BLOCK_SIZE(b.szx));
      else
        snprintf(buf, cap, "%u/%c/BERT", v >> 4, (v & 8) ? 'M' : '_');
      return;
    }
    break;
  default:
    break;
  }
  if (d && d->fmt == CK_OPTFMT_UINT && is_uint) {
    snprintf(buf, cap, "%u", v);
  } else if (d && d->fmt == CK_OPTFMT_STRING) {
    put_text(buf, cap, 0, opt->val, opt->len, 0);
  } else if (opt->len || !d || d->fmt != CK_OPTFMT_EMPTY) {
    snprintf(buf, cap, "0x");
    if (cap > 2)
      hex(opt->val, opt->len, buf + 2, cap - 2);
  }
}

int cli_msg_cf(const struct ck_msg *m)
{
  uint32_t v;
  if (m && ck_msg_opt_uint(m, CK_OPT_CONTENT_FORMAT, &v) == 0 && v <= 65535)
    return (int)v;
  return -1;
}

static char joiner(uint16_t num)
{
  switch (num) {
  case CK_OPT_URI_PATH:
  case CK_OPT_LOCATION_PATH:
    return '/';
  case CK_OPT_URI_QUERY:
  case CK_OPT_LOCATION_QUERY:
    return '&';
  default:
    return 0;
  }
}

static const char *opt_name(uint16_t num, char *buf, size_t cap)
{
  const struct ck_optdef *d = ck_opt_def(num);
  if (d)
    return d->name;
  snprintf(buf, cap, "Option %u", num);
  return buf;
}

static void trace_options(FILE *f, char dir, const struct ck_msg *m)
{
  struct ck_opt_iter it;
  struct ck_opt opt;
  char line[1024], nb[32];
  size_t k = 0;
  int cur = -1; /* the option a joined line is collecting */
  ck_opt_iter_init(&it, m);
  bool more = ck_opt_next(&it, &opt);
  while (more) {
    char sep = joiner(opt.num);
    if (sep) {
      if (cur == opt.num) {
        k = put_text(line, sizeof line, k, (const uint8_t *)&sep, 1, 0);
      } else {
        cur = opt.num;
        k = 0;
        line[0] = '\0';
      }
      k = put_text(line, sizeof line, k, opt.val, opt.len, sep);
      more = ck_opt_next(&it, &opt);
      if (!more || opt.num != cur) {
        fprintf(f, "%c   %s: %s\n", dir, opt_name((uint16_t)cur, nb, sizeof nb),
                line);
        cur = -1;
      }
      continue;
    }
    cli_opt_text(&opt, line, sizeof line);
    fprintf(f, "%c   %s%s%s\n", dir, opt_name(opt.num, nb, sizeof nb),
            line[0] ? ": " : "", line);
    more = ck_opt_next(&it, &opt);
  }
}

static bool same_token(const struct cli_sent *s, const struct ck_msg *m)
{
  return s->tkl == m->tkl && memcmp(s->token, m->token, m->tkl) == 0;
}

/* Remembers a message we sent; returns its entry (tries > 1 for a
 * retransmission). */
static struct cli_sent *remember(struct cli_out *o, const struct ck_msg *m,
                                 uint64_t now)
{
  for (unsigned i = 0; i < CLI_SENT_RING; i++) {
    struct cli_sent *s = &o->sent[i];
    if (s->used && s->mid == m->mid && s->type == m->type &&
        s->code == m->code && same_token(s, m) && m->type == CK_TYPE_CON &&
        !s->answered) {
      s->tries++;
      return s;
    }
  }
  struct cli_sent *s = &o->sent[o->next++ % CLI_SENT_RING];
  *s = (struct cli_sent){.t_ms = now,
                         .mid = m->mid,
                         .type = m->type,
                         .code = m->code,
                         .tkl = m->tkl,
                         .tries = 1,
                         .used = true};
  memcpy(s->token, m->token, m->tkl);
  return s;
}

/* The message we sent that m answers, if its answer is the first. */
static struct cli_sent *answered(struct cli_out *o, const struct ck_msg *m)
{
  struct cli_sent *best = NULL;
  for (unsigned i = 0; i < CLI_SENT_RING; i++) {
    struct cli_sent *s = &o->sent[i];
    if (!s->used || s->answered)
      continue;
    bool hit;
    if (m->type == CK_TYPE_ACK || m->type == CK_TYPE_RST)
      hit = s->type == CK_TYPE_CON && s->mid == m->mid;
    else
      hit = CK_CODE_CLASS(s->code) == 0 && same_token(s, m);
    if (hit && (!best || s->t_ms >= best->t_ms))
      best = s;
  }
  return best;
}

void cli_out_trace(struct cli_out *o, bool sent, const struct ck_addr *peer,
                   const struct ck_msg *m)
{
  if (!o->verbose)
    return;
  FILE *f = o->err;
  uint64_t now = cli_now_ms();
  char addr[CK_ADDR_STRLEN], code[48], tok[20], extra[48] = "";
  if (ck_addr_format(peer, addr, sizeof addr) < 0)
    snprintf(addr, sizeof addr, "?");
  if (CK_CODE_CLASS(m->code) == 0 && m->code && ck_code_name(m->code))
    snprintf(code, sizeof code, "%s", ck_code_name(m->code));
  else
    ck_code_format(code, sizeof code, m->code);
  if (m->tkl)
    hex(m->token, m->tkl, tok, sizeof tok);
  else
    snprintf(tok, sizeof tok, "-");
  if (sent) {
    struct cli_sent *s = remember(o, m, now);
    if (s->tries > 1)
      snprintf(extra, sizeof extra, " (retransmission %u)", s->tries - 1);
  } else {
    struct cli_sent *s = answered(o, m);
    if (s) {
      /* An ACK of a request answers the message; a response answers
       * the request, whether it came in the ACK or later. */
      bool empty = m->code == CK_CODE_EMPTY;
      if (!empty || m->type == CK_TYPE_RST || CK_CODE_CLASS(s->code) != 0 ||
          s->code == CK_CODE_EMPTY)
        s->answered = true;
      snprintf(extra, sizeof extra, " rtt=%llums",
               (unsigned long long)(now - s->t_ms));
    }
  }
  char dir = sent ? '>' : '<';
  fprintf(f, "%c %s %s mid=%u token=%s %s %s%s\n", dir,
          ck_type_name((enum ck_type)m->type), code, m->mid, tok,
          sent ? "to" : "from", addr, extra);
  trace_options(f, dir, m);
  if (m->payload_len) {
    char prefix[8] = {dir, ' ', ' ', ' ', '|', ' ', '\0'};
    fprintf(f, "%c   payload (%zu bytes):\n", dir, m->payload_len);
    cli_preview(f, prefix, cli_msg_cf(m), m->payload, m->payload_len, 512);
  }
  fflush(f);
}

void cli_out_body(struct cli_out *o, int cf, const uint8_t *p, size_t n)
{
  if (o->pretty)
    cli_pretty(o->out, cf, p, n);
  else if (n)
    fwrite(p, 1, n, o->out);
}

/* --- JSON --- */

/* A JSON string of bytes that are not NUL-terminated. */
static cJSON *jstr(const void *p, size_t n)
{
  char *s = malloc(n + 1);
  if (!s)
    return NULL;
  memcpy(s, p, n);
  s[n] = '\0';
  /* cJSON copies the bytes as they are: keep the output valid JSON. */
  if (!cli_is_utf8((const uint8_t *)s, n))
    for (size_t i = 0; i < n; i++)
      if ((uint8_t)s[i] >= 0x80 || s[i] == 0)
        s[i] = '?';
  cJSON *j = cJSON_CreateString(s);
  free(s);
  return j;
}

static cJSON *jhex(const uint8_t *p, size_t n)
{
  char *s = malloc(2 * n + 1);
  if (!s)
    return NULL;
  hex(p, n, s, 2 * n + 1);
  cJSON *j = cJSON_CreateString(s);
  free(s);
  return j;
}

static cJSON *json_options(const struct ck_msg *m)
{
  cJSON *arr = cJSON_CreateArray();
  struct ck_opt_iter it;
  struct ck_opt opt;
  ck_opt_iter_init(&it, m);
  while (arr && ck_opt_next(&it, &opt)) {
    cJSON *jo = cJSON_CreateObject();
    if (!jo)
      break;
    const struct ck_optdef *d = ck_opt_def(opt.num);
    char nb[32];
    cJSON_AddNumberToObject(jo, "number", opt.num);
    cJSON_AddStringToObject(jo, "name", opt_name(opt.num, nb, sizeof nb));
    uint32_t v;
    if (d && d->fmt == CK_OPTFMT_UINT &&
        ck_opt_uint_decode(opt.val, opt.len, &v) == 0)
      cJSON_AddNumberToObject(jo, "value", v);
    else if (d && d->fmt == CK_OPTFMT_STRING)
      cJSON_AddItemToObject(jo, "value", jstr(opt.val, opt.len));
    else if (d && d->fmt == CK_OPTFMT_EMPTY && opt.len == 0)
      cJSON_AddNullToObject(jo, "value");
    else
      cJSON_AddItemToObject(jo, "value", jhex(opt.val, opt.len));
    if (opt.num == CK_OPT_CONTENT_FORMAT || opt.num == CK_OPT_ACCEPT ||
        opt.num == CK_OPT_BLOCK1 || opt.num == CK_OPT_BLOCK2 ||
        opt.num == CK_OPT_Q_BLOCK1 || opt.num == CK_OPT_Q_BLOCK2) {
      char text[256];
      cli_opt_text(&opt, text, sizeof text);
      cJSON_AddStringToObject(jo, "text", text);
    }
    cJSON_AddItemToArray(arr, jo);
  }
  return arr;
}

static cJSON *json_links(const uint8_t *p, size_t n)
{
  struct ck_link_reader r;
  struct ck_link l;
  cJSON *arr = cJSON_CreateArray();
  ck_link_reader_init(&r, (const char *)p, n);
  int rc;
  while (arr && (rc = ck_link_next(&r, &l)) == 1) {
    cJSON *jl = cJSON_CreateObject();
    if (!jl)
      break;
    cJSON_AddItemToObject(jl, "href", jstr(l.target, l.target_len));
    for (unsigned i = 0; i < l.nparams; i++) {
      const struct ck_link_param *pr = &l.params[i];
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)pr->name_len, pr->name);
      if (cJSON_GetObjectItemCaseSensitive(jl, name))
        continue; /* the first of a repeated parameter counts */
      if (!pr->val) {
        cJSON_AddTrueToObject(jl, name);
        continue;
      }
      char val[1024];
      size_t k = 0;
      for (size_t j = 0; j < pr->val_len && k < sizeof val - 1; j++) {
        char c = pr->val[j];
        if (c == '\\' && pr->quoted && j + 1 < pr->val_len)
          c = pr->val[++j];
        val[k++] = c;
      }
      cJSON_AddItemToObject(jl, name, jstr(val, k));
    }
    cJSON_AddItemToArray(arr, jl);
  }
  return arr;
}

/* Writes j as one line of o->out and frees it. */
static void json_emit(struct cli_out *o, cJSON *j)
{
  char *s = cJSON_PrintUnformatted(j);
  if (s) {
    fprintf(o->out, "%s\n", s);
    cJSON_free(s);
  }
  cJSON_Delete(j);
  fflush(o->out);
}

void cli_out_json(struct cli_out *o, const struct ck_client_response *r,
                  bool links)
{
  cJSON *j = cJSON_CreateObject();
  if (!j)
    return;
  char buf[64];
  cli_timestamp(buf, sizeof buf);
  cJSON_AddStringToObject(j, "time", buf);
  if (r->peer && ck_addr_format(r->peer, buf, sizeof buf) >= 0)
    cJSON_AddStringToObject(j, "from", buf);
  const struct ck_msg *m = r->msg;
  if (m)
    cJSON_AddStringToObject(j, "type", ck_type_name((enum ck_type)m->type));
  snprintf(buf, sizeof buf, "%u.%02u", CK_CODE_CLASS(r->code),
           CK_CODE_DETAIL(r->code));
  cJSON_AddStringToObject(j, "code", buf);
  const char *name = ck_code_name(r->code);
  if (name)
    cJSON_AddStringToObject(j, "code_name", name);
  if (m) {
    cJSON_AddNumberToObject(j, "mid", m->mid);
    cJSON_AddItemToObject(j, "token", jhex(m->token, m->tkl));
  }
  cJSON_AddNumberToObject(j, "rtt_ms", (double)r->rtt_ms);
  if (r->has_observe)
    cJSON_AddNumberToObject(j, "observe", r->observe);
  if (m)
    cJSON_AddItemToObject(j, "options", json_options(m));
  if (r->body_len && cli_is_utf8(r->body, r->body_len))
    cJSON_AddItemToObject(j, "payload", jstr(r->body, r->body_len));
  else if (r->body_len)
    cJSON_AddItemToObject(j, "payload_hex", jhex(r->body, r->body_len));
  else
    cJSON_AddStringToObject(j, "payload", "");
  if (links && cli_msg_cf(m) == CK_CF_LINK_FORMAT)
    cJSON_AddItemToObject(j, "links", json_links(r->body, r->body_len));
  json_emit(o, j);
}

/* --- the shell's view --- */

/* A bounded text buffer: what does not fit is cut, never overrun. */
struct sbuf {
  char *p;
  size_t cap, len;
};

static void sb_add(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
  if (b->len + 1 >= b->cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    b->len += (size_t)n < b->cap - b->len ? (size_t)n : b->cap - b->len - 1;
}

/* A string value between quotes, with '"', '\' and controls escaped. */
static void sb_quoted(struct sbuf *b, const uint8_t *p, size_t n)
{
  sb_add(b, "\"");
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '"' || p[i] == '\\')
      sb_add(b, "\\%c", p[i]);
    else if (p[i] < 0x20 || p[i] == 0x7f)
      sb_add(b, "\\x%02x", p[i]);
    else
      sb_add(b, "%c", p[i]);
  }
  sb_add(b, "\"");
}

/* One option's value as CoAP Shell writes it: a content format by name,
 * a number, a string in quotes, opaque bytes as 0x and hex. */
static void view_value(struct sbuf *b, const struct ck_opt *opt)
{
  const struct ck_optdef *d = ck_opt_def(opt->num);
  uint32_t v;
  bool is_uint = ck_opt_uint_decode(opt->val, opt->len, &v) == 0;
  if ((opt->num == CK_OPT_CONTENT_FORMAT || opt->num == CK_OPT_ACCEPT) &&
      is_uint && v <= 65535 && ck_cf_name((uint16_t)v)) {
    const char *name = ck_cf_name((uint16_t)v);
    sb_quoted(b, (const uint8_t *)name, strlen(name));
  } else if (opt->num == CK_OPT_BLOCK1 || opt->num == CK_OPT_BLOCK2 ||
             opt->num == CK_OPT_Q_BLOCK1 || opt->num == CK_OPT_Q_BLOCK2) {
    char t[64];
    cli_opt_text(opt, t, sizeof t);
    sb_quoted(b, (const uint8_t *)t, strlen(t));
  } else if (d && d->fmt == CK_OPTFMT_UINT && is_uint) {
    sb_add(b, "%u", v);
  } else if (d && d->fmt == CK_OPTFMT_STRING) {
    sb_quoted(b, opt->val, opt->len);
  } else if (d && d->fmt == CK_OPTFMT_EMPTY && opt->len == 0) {
    sb_add(b, "\"\"");
  } else {
    sb_add(b, "0x");
    for (size_t i = 0; i < opt->len; i++)
      sb_add(b, "%02x", opt->val[i]);
  }
}

/* The options as {"Name":value, ...}; a repeated option's values in a
 * list, ["a","b"], as CoAP Shell shows Location-Path. */
static void view_options(struct sbuf *b, const struct ck_msg *m)
{
  struct ck_opt_iter it;
  struct ck_opt opt;
  char nb[32];
  bool first = true;
  sb_add(b, "{");
  ck_opt_iter_init(&it, m);
  bool more = ck_opt_next(&it, &opt);
  while (more) {
    uint16_t num = opt.num;
    sb_add(b, "%s\"%s\":", first ? "" : ", ", opt_name(num, nb, sizeof nb));
    first = false;
    struct ck_opt next;
    bool more2 = ck_opt_next(&it, &next);
    if (!more2 || next.num != num) {
      view_value(b, &opt);
      opt = next;
      more = more2;
      continue;
    }
    sb_add(b, "[");
    view_value(b, &opt);
    while (more2 && next.num == num) {
      sb_add(b, ",");
      view_value(b, &next);
      more2 = ck_opt_next(&it, &next);
    }
    sb_add(b, "]");
    opt = next;
    more = more2;
  }
  sb_add(b, "}");
}

/* A rule of 80 columns with a title in its middle, as CoAP Shell draws
 * them. */
static void view_rule(FILE *f, char c, const char *title)
{
  size_t t = title[0] ? strlen(title) + 2 : 0;
  size_t left = (80 - t) / 2, right = 80 - t - left;
  for (size_t i = 0; i < left; i++)
    fputc(c, f);
  if (t)
    fprintf(f, " %s ", title);
  for (size_t i = 0; i < right; i++)
    fputc(c, f);
  fputc('\n', f);
}

void cli_out_view(struct cli_out *o, const char *what, const char *uri,
                  const struct ck_client_response *r, bool raw)
{
  FILE *f = o->out;
  const struct ck_msg *m = r->msg;
  char code[48], tok[20] = "-", opts[2048];
  struct sbuf b = {opts, sizeof opts, 0};
  opts[0] = '\0';
  ck_code_format(code, sizeof code, r->code);
  if (m && m->tkl)
    hex(m->token, m->tkl, tok, sizeof tok);
  if (m)
    view_options(&b, m);
  view_rule(f, '-', "Response");
  fprintf(f, "%s %s\n", what, uri);
  if (m)
    fprintf(f, "Status: %s, Type: %s, MID: %u, Token: %s, RTT: %llums\n", code,
            ck_type_name((enum ck_type)m->type), m->mid, tok,
            (unsigned long long)r->rtt_ms);
  else
    fprintf(f, "Status: %s, RTT: %llums\n", code,
            (unsigned long long)r->rtt_ms);
  fprintf(f, "Options: %s\n", m ? opts : "{}");
  fprintf(f, "Payload: %zuB\n", r->body_len);
  if (r->body_len) {
    view_rule(f, '.', "Payload");
    if (raw) {
      fwrite(r->body, 1, r->body_len, f);
      if (r->body[r->body_len - 1] != '\n')
        fputc('\n', f);
    } else {
      cli_pretty(f, cli_msg_cf(m), r->body, r->body_len);
    }
  }
  view_rule(f, '-', "");
  fflush(f);
}

void cli_out_json_ping(struct cli_out *o, const char *uri,
                       const struct ck_client_response *r)
{
  cJSON *j = cJSON_CreateObject();
  if (!j)
    return;
  char buf[64];
  cli_timestamp(buf, sizeof buf);
  cJSON_AddStringToObject(j, "time", buf);
  cJSON_AddStringToObject(j, "uri", uri);
  if (r->peer && ck_addr_format(r->peer, buf, sizeof buf) >= 0)
    cJSON_AddStringToObject(j, "from", buf);
  cJSON_AddStringToObject(j, "ping", "pong");
  /* RFC 7252 §4.3: a Reset answers an empty CON; the library hands over
   * no message then. An endpoint may also answer with an empty ACK. */
  cJSON_AddStringToObject(
      j, "type", r->msg ? ck_type_name((enum ck_type)r->msg->type) : "RST");
  cJSON_AddNumberToObject(j, "rtt_ms", (double)r->rtt_ms);
  json_emit(o, j);
}
