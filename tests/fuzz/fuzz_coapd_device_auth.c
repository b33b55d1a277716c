/* libFuzzer target for the device endpoint's credentials (coapd/
 * device_auth.c): the strict base64 decoder and the option 4209 parser.
 * Checks, beyond not crashing: a decoded text is the canonical encoding
 * of its bytes (encoding them again gives the input back), and its
 * length is three quarters of the input's less the padding; parsed
 * credentials lie inside the buffer, hold names of 1 to 255 bytes
 * without '@', ':' or NUL, and the user-id and password rebuild the
 * decoded text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device_int.h"

static void inside(const char *p, size_t n, const char *buf, size_t len)
{
  if (n && (p < buf || p + n > buf + len))
    abort();
}

static void name(const char *p, size_t n)
{
  if (n == 0 || n > 255 || memchr(p, '@', n) || memchr(p, ':', n) ||
      memchr(p, '\0', n))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static uint8_t out[4096];
  static char again[8192];
  if (size > 4096)
    return 0;
  int n = device_base64_decode((const char *)data, size, out, sizeof out);
  if (n >= 0) {
    if ((size_t)n > size / 4 * 3 || (size_t)n + 2 < size / 4 * 3)
      abort();
    int m = device_base64_encode(out, (size_t)n, again, sizeof again);
    if (m < 0 || (size_t)m != size || memcmp(again, data, size) != 0)
      abort();
  }
  static char buf[DEVICE_CREDS_MAX];
  struct device_creds c;
  if (device_auth_parse(data, size, buf, sizeof buf, &c) == 0) {
    inside(c.device, c.device_len, buf, sizeof buf);
    inside(c.password, c.password_len, buf, sizeof buf);
    name(c.device, c.device_len);
    if (c.application) {
      inside(c.application, c.application_len, buf, sizeof buf);
      name(c.application, c.application_len);
      if (c.application != c.device + c.device_len + 1)
        abort();
    }
    const char *colon = c.application ? c.application + c.application_len
                                      : c.device + c.device_len;
    if (*colon != ':' || c.password != colon + 1)
      abort();
  }
  return 0;
}
