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

void cli_out_json(struct cli_out *o, const struct ck_client_response *r, bool links)
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
  char *s = cJSON_PrintUnformatted(j);
  if (s) {
    fprintf(o->out, "%s\n", s);
    cJSON_free(s);
  }
  cJSON_Delete(j);
  fflush(o->out);
}
