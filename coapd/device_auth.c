/* The credentials a device puts into CoAP option 4209, Drogue Cloud's
 * stand-in for HTTP's Authorization header: "Basic " and the base64 of
 * "device@application:password", or of "device:password" when the
 * application comes in the query (RFC 7617 §2, the Basic scheme).
 *
 * Both functions are parsers of bytes a stranger sends before we know
 * who it is, so they are strict and allocate nothing: the base64 decoder
 * takes only the canonical encoding (RFC 4648 §3.5: padding required and
 * the pad bits zero; no whitespace, no URL-safe letters), and the
 * user-id must split one way only. tests/fuzz/fuzz_coapd_device_auth.c
 * drives them. */
#include <errno.h>
#include <string.h>

#include "device_int.h"

static const char ALPHABET[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The value of a base64 letter, or -1. */
static int b64val(unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

int device_base64_decode(const char *in, size_t len, uint8_t *out,
                         size_t cap)
{
  if (len % 4)
    return -EINVAL;
  size_t pad = 0;
  if (len && in[len - 1] == '=')
    pad = len >= 2 && in[len - 2] == '=' ? 2 : 1;
  size_t n = len / 4 * 3 - pad;
  if (n > cap)
    return -EMSGSIZE;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    bool last = i + 4 == len;
    int v[4];
    for (size_t k = 0; k < 4; k++) {
      /* '=' only in the last group's final pad positions. */
      if (last && k >= 4 - pad) {
        v[k] = 0;
        continue;
      }
      v[k] = b64val((unsigned char)in[i + k]);
      if (v[k] < 0)
        return -EINVAL;
    }
    uint32_t g = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)v[2] << 6 | (uint32_t)v[3];
    /* RFC 4648 §3.5: the bits the padding leaves over must be zero, or
     * two texts would decode to the same bytes. */
    if (last && ((pad == 1 && (g & 0xff)) || (pad == 2 && (g & 0xffff))))
      return -EINVAL;
    out[o++] = (uint8_t)(g >> 16);
    if (!last || pad < 2)
      out[o++] = (uint8_t)(g >> 8);
    if (!last || pad < 1)
      out[o++] = (uint8_t)g;
  }
  return (int)o;
}

int device_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
  size_t need = (n + 2) / 3 * 4;
  if (need >= cap)
    return -EMSGSIZE;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    size_t left = n - i;
    uint32_t g = (uint32_t)in[i] << 16;
    if (left > 1)
      g |= (uint32_t)in[i + 1] << 8;
    if (left > 2)
      g |= in[i + 2];
    out[o++] = ALPHABET[g >> 18 & 63];
    out[o++] = ALPHABET[g >> 12 & 63];
    out[o++] = left > 1 ? ALPHABET[g >> 6 & 63] : '=';
    out[o++] = left > 2 ? ALPHABET[g & 63] : '=';
  }
  out[o] = '\0';
  return (int)o;
}

/* A device or application name inside the user-id: 1 to 255 bytes, no
 * NUL (the registry takes C strings). '@' and ':' were split on. */
static bool name_ok(const char *p, size_t n)
{
  return n > 0 && n < 256 && !memchr(p, '\0', n);
}

int device_auth_parse(const uint8_t *val, size_t len, char *buf, size_t cap,
                      struct device_creds *out)
{
  static const char scheme[] = "basic";
  const size_t sn = sizeof scheme - 1;
  if (len <= sn || val[sn] != ' ')
    return -EINVAL;
  for (size_t i = 0; i < sn; i++) {
    unsigned char c = val[i];
    if ((c | 0x20) != (unsigned char)scheme[i])
      return -EINVAL;
  }
  /* RFC 7235 §2.1: credentials = auth-scheme 1*SP token68. */
  size_t i = sn;
  while (i < len && val[i] == ' ')
    i++;
  int n = device_base64_decode((const char *)val + i, len - i,
                               (uint8_t *)buf, cap);
  if (n < 0)
    return n;
  const char *colon = memchr(buf, ':', (size_t)n);
  if (!colon)
    return -EINVAL;
  size_t ulen = (size_t)(colon - buf);
  const char *at = memchr(buf, '@', ulen);
  memset(out, 0, sizeof *out);
  out->device = buf;
  out->device_len = at ? (size_t)(at - buf) : ulen;
  if (at) {
    out->application = at + 1;
    out->application_len = ulen - out->device_len - 1;
    if (!name_ok(out->application, out->application_len) ||
        memchr(out->application, '@', out->application_len))
      return -EINVAL;
  }
  if (!name_ok(out->device, out->device_len))
    return -EINVAL;
  out->password = colon + 1;
  out->password_len = (size_t)n - ulen - 1;
  return 0;
}
