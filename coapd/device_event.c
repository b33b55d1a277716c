/* The event an accepted telemetry message becomes: a CloudEvent 1.0 in
 * the JSON event format (CloudEvents spec v1.0.2, "JSON Event Format"),
 * with the attributes Drogue Cloud gives its events: id (a random
 * UUID), source "drogue://APPLICATION/DEVICE" (each name percent-encoded
 * but for RFC 3986's unreserved characters), type "io.drogue.event.v1",
 * subject = the channel, time, datacontenttype, dataschema, and the
 * extension attributes application, device and sender (the gateway when
 * a device publishes "as" another), plus suffix: the path after the
 * channel, which Drogue keeps out of the subject.
 *
 * A JSON body goes into "data" byte for byte rather than parsed and
 * printed again (a JSON library would round a 64-bit integer through a
 * double). That is safe only because the body was checked here first
 * against RFC 8259's grammar, strictly: the validator below, recursive
 * with a depth cap, accepts no leading zeros, no bare '.', no BOM, no
 * control characters. cJSON builds the rest of the event. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "device_int.h"

bool device_cf_is_json(int cf)
{
  if (cf < 0 || cf > 65535)
    return false;
  const char *name = ck_cf_name((uint16_t)cf);
  if (!name)
    return false;
  size_t n = strcspn(name, ";");
  if (name[n] == ';')
    return false; /* content-coded (11050): the body is not JSON text */
  static const char suffix[] = "+json";
  const size_t sn = sizeof suffix - 1;
  return (n == 16 && memcmp(name, "application/json", 16) == 0) ||
         (n > sn && memcmp(name + n - sn, suffix, sn) == 0);
}

bool device_utf8_valid(const uint8_t *p, size_t n)
{
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    if (c == 0)
      return false;
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t k;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
      k = 1, cp = c & 0x1fu, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      k = 2, cp = c & 0x0fu, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      k = 3, cp = c & 0x07u, min = 0x10000;
    } else {
      return false;
    }
    if (n - i <= k)
      return false;
    for (size_t j = 1; j <= k; j++) {
      if ((p[i + j] & 0xc0) != 0x80)
        return false;
      cp = cp << 6 | (p[i + j] & 0x3fu);
    }
    /* RFC 3629 §3: no overlong forms, no surrogates, nothing past
     * U+10FFFF. */
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += k + 1;
  }
  return true;
}

/* --- RFC 8259 §2-7, strictly --- */

enum { JSON_DEPTH_MAX = 64 };

struct jp {
  const uint8_t *p, *end;
  int depth;
};

static bool more(const struct jp *j) { return j->p < j->end; }

static void ws(struct jp *j)
{
  while (more(j) &&
         (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static bool eat(struct jp *j, char c)
{
  if (!more(j) || *j->p != (uint8_t)c)
    return false;
  j->p++;
  return true;
}

static bool word(struct jp *j, const char *w)
{
  size_t n = strlen(w);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
    return false;
  j->p += n;
  return true;
}

static bool digit(const struct jp *j)
{
  return more(j) && *j->p >= '0' && *j->p <= '9';
}

static bool digits(struct jp *j)
{
  if (!digit(j))
    return false;
  while (digit(j))
    j->p++;
  return true;
}

static bool number(struct jp *j)
{
  (void)eat(j, '-');
  if (!eat(j, '0') && !digits(j))
    return false;
  if (eat(j, '.') && !digits(j))
    return false;
  if (eat(j, 'e') || eat(j, 'E')) {
    if (!eat(j, '+'))
      (void)eat(j, '-');
    if (!digits(j))
      return false;
  }
  return true;
}

static bool hex(uint8_t c)
{
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool string(struct jp *j)
{
  if (!eat(j, '"'))
    return false;
  while (more(j)) {
    uint8_t c = *j->p++;
    if (c == '"')
      return true;
    if (c < 0x20)
      return false;
    if (c != '\\')
      continue;
    if (!more(j))
      return false;
    c = *j->p++;
    if (c == 'u') {
      if (j->end - j->p < 4)
        return false;
      for (int k = 0; k < 4; k++)
        if (!hex(*j->p++))
          return false;
    } else if (!memchr("\"\\/bfnrt", c, 8)) {
      return false;
    }
  }
  return false;
}

static bool value(struct jp *j);

/* An object or an array, after its opening bracket. */
static bool members(struct jp *j, char close, bool object)
{
  if (++j->depth > JSON_DEPTH_MAX)
    return false;
  ws(j);
  if (eat(j, close)) {
    j->depth--;
    return true;
  }
  for (;;) {
    ws(j);
    if (object) {
      if (!string(j))
        return false;
      ws(j);
      if (!eat(j, ':'))
        return false;
    }
    if (!value(j))
      return false;
    ws(j);
    if (eat(j, close))
      break;
    if (!eat(j, ','))
      return false;
  }
  j->depth--;
  return true;
}

static bool value(struct jp *j)
{
  ws(j);
  if (!more(j))
    return false;
  switch (*j->p) {
  case '{':
    j->p++;
    return members(j, '}', true);
  case '[':
    j->p++;
    return members(j, ']', false);
  case '"':
    return string(j);
  case 't':
    return word(j, "true");
  case 'f':
    return word(j, "false");
  case 'n':
    return word(j, "null");
  default:
    return number(j);
  }
}

bool device_json_valid(const uint8_t *p, size_t n)
{
  if (!p || !device_utf8_valid(p, n))
    return false;
  struct jp j = {.p = p, .end = p + n};
  if (!value(&j))
    return false;
  ws(&j);
  return j.p == j.end;
}

/* --- the event --- */

int device_event_uuid(char out[37])
{
  uint8_t b[16];
  if (gnutls_rnd(GNUTLS_RND_NONCE, b, sizeof b) < 0)
    return -EIO;
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
  static const char hx[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = hx[b[i] >> 4];
    out[o++] = hx[b[i] & 15];
  }
  out[o] = '\0';
  return 0;
}

int device_event_time(int64_t unix_ms, char out[32])
{
  if (unix_ms < 0)
    return -EINVAL;
  time_t s = (time_t)(unix_ms / 1000);
  struct tm tm;
  if (!gmtime_r(&s, &tm) || tm.tm_year + 1900 > 9999)
    return -EINVAL;
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  if (n == 0)
    return -EINVAL;
  snprintf(out + n, 32 - n, ".%03dZ", (int)(unix_ms % 1000));
  return 0;
}

/* "drogue://" + application + "/" + device, percent-encoded (RFC 3986
 * §2.1; unreserved characters stay, §2.3). */
static void source_of(const struct device_event *e, char *buf, size_t cap)
{
  static const char hx[] = "0123456789ABCDEF";
  size_t o = 0;
  const char *parts[2] = {e->application, e->device};
  int k = snprintf(buf, cap, "drogue://");
  o = k > 0 ? (size_t)k : 0;
  for (int i = 0; i < 2; i++) {
    if (i == 1 && o + 1 < cap)
      buf[o++] = '/';
    for (const char *p = parts[i]; *p && o + 3 < cap; p++) {
      unsigned char c = (unsigned char)*p;
      if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
          c == '~') {
        buf[o++] = (char)c;
      } else {
        buf[o++] = '%';
        buf[o++] = hx[c >> 4];
        buf[o++] = hx[c & 15];
      }
    }
  }
  buf[o] = '\0';
}

/* Adds the body as "data" (JSON, verbatim) or "data_base64". */
static int add_data(cJSON *ev, const struct device_event *e, bool json)
{
  if (json) {
    char *raw = malloc(e->len + 1);
    if (!raw)
      return -ENOMEM;
    memcpy(raw, e->data, e->len);
    raw[e->len] = '\0';
    cJSON *d = cJSON_AddRawToObject(ev, "data", raw);
    free(raw);
    return d ? 0 : -ENOMEM;
  }
  if (e->len == 0)
    return 0; /* CloudEvents: data is optional */
  size_t cap = (e->len + 2) / 3 * 4 + 1;
  char *b64 = malloc(cap);
  if (!b64)
    return -ENOMEM;
  int rc = device_base64_encode(e->data, e->len, b64, cap);
  cJSON *d = rc < 0 ? NULL : cJSON_AddStringToObject(ev, "data_base64", b64);
  free(b64);
  return d ? 0 : -ENOMEM;
}

int device_event_json(const struct device_event *e, char **out, size_t *len)
{
  bool json;
  const char *ctype = NULL;
  if (e->cf >= 0) {
    json = device_cf_is_json(e->cf);
    if (json && !device_json_valid(e->data, e->len))
      return -EINVAL;
    ctype = e->cf <= 65535 ? ck_cf_name((uint16_t)e->cf) : NULL;
  } else {
    /* No Content-Format: JSON if it parses, else bytes (as Drogue). */
    json = device_json_valid(e->data, e->len);
    ctype = json ? "application/json" : "application/octet-stream";
  }
  char source[9 + 2 * 3 * 256];
  source_of(e, source, sizeof source);
  cJSON *ev = cJSON_CreateObject();
  if (!ev)
    return -ENOMEM;
  bool ok = cJSON_AddStringToObject(ev, "specversion", "1.0") &&
            cJSON_AddStringToObject(ev, "id", e->id) &&
            cJSON_AddStringToObject(ev, "source", source) &&
            cJSON_AddStringToObject(ev, "type", "io.drogue.event.v1") &&
            cJSON_AddStringToObject(ev, "subject", e->channel) &&
            cJSON_AddStringToObject(ev, "time", e->time) &&
            (!ctype ||
             cJSON_AddStringToObject(ev, "datacontenttype", ctype)) &&
            (!e->data_schema ||
             cJSON_AddStringToObject(ev, "dataschema", e->data_schema)) &&
            cJSON_AddStringToObject(ev, "application", e->application) &&
            cJSON_AddStringToObject(ev, "device", e->device) &&
            cJSON_AddStringToObject(ev, "sender", e->sender) &&
            (!e->suffix || cJSON_AddStringToObject(ev, "suffix", e->suffix));
  int rc = ok ? add_data(ev, e, json) : -ENOMEM;
  char *text = rc == 0 ? cJSON_PrintUnformatted(ev) : NULL;
  cJSON_Delete(ev);
  if (rc < 0)
    return rc;
  if (!text)
    return -ENOMEM;
  *out = text;
  *len = strlen(text);
  return 0;
}
