/* IPv4/IPv6 socket addresses: parse and format "host:port" text, compare
 * and hash addresses for the messaging layer's tables. */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/addr.h"

static int parse_port(const char *s, uint16_t *port)
{
  if (*s == '\0')
    return CK_EURI_PORT;
  unsigned long v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9')
      return CK_EURI_PORT;
    v = v * 10 + (unsigned long)(*p - '0');
    if (v > 65535)
      return CK_EURI_PORT;
  }
  *port = (uint16_t)v;
  return 0;
}

int ck_addr_parse(struct ck_addr *a, const char *s, uint16_t default_port)
{
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  const char *port_s = NULL;
  size_t hlen;
  if (a == NULL || s == NULL)
    return CK_EINVAL;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close)
      return CK_EINVAL;
    hlen = (size_t)(close - s - 1);
    if (close[1] == ':')
      port_s = close + 2;
    else if (close[1] != '\0')
      return CK_EINVAL;
    s++;
  } else {
    const char *colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':')) {
      /* Several colons and no brackets: a bare IPv6 address. */
      colon = NULL;
    }
    hlen = colon ? (size_t)(colon - s) : strlen(s);
    if (colon)
      port_s = colon + 1;
  }
  if (hlen == 0 || hlen >= sizeof host)
    return CK_EINVAL;
  memcpy(host, s, hlen);
  host[hlen] = '\0';

  uint16_t port = default_port;
  if (port_s) {
    int rc = parse_port(port_s, &port);
    if (rc < 0)
      return rc;
  }

  memset(a, 0, sizeof *a);
  if (inet_pton(AF_INET, host, &a->u.in4.sin_addr) == 1) {
    a->u.in4.sin_family = AF_INET;
    a->u.in4.sin_port = htons(port);
    a->len = sizeof a->u.in4;
    return 0;
  }
  char *zone = strchr(host, '%');
  if (zone)
    *zone++ = '\0';
  if (inet_pton(AF_INET6, host, &a->u.in6.sin6_addr) == 1) {
    a->u.in6.sin6_family = AF_INET6;
    a->u.in6.sin6_port = htons(port);
    if (zone) {
      unsigned idx = if_nametoindex(zone);
      if (idx == 0) {
        char *end;
        unsigned long v = strtoul(zone, &end, 10);
        if (*end != '\0' || v == 0)
          return CK_EINVAL;
        idx = (unsigned)v;
      }
      a->u.in6.sin6_scope_id = idx;
    }
    a->len = sizeof a->u.in6;
    return 0;
  }
  return CK_EINVAL;
}

int ck_addr_format_ip(const struct ck_addr *a, char *buf, size_t cap)
{
  char ip[INET6_ADDRSTRLEN];
  if (!a || (!buf && cap))
    return CK_EINVAL;
  const void *src = a->u.sa.sa_family == AF_INET
                      ? (const void *)&a->u.in4.sin_addr
                      : (const void *)&a->u.in6.sin6_addr;
  if (a->u.sa.sa_family != AF_INET && a->u.sa.sa_family != AF_INET6)
    return CK_EINVAL;
  if (!inet_ntop(a->u.sa.sa_family, src, ip, sizeof ip))
    return CK_EINVAL;
  int n;
  if (a->u.sa.sa_family == AF_INET6 && a->u.in6.sin6_scope_id) {
    char ifname[IF_NAMESIZE];
    if (if_indextoname(a->u.in6.sin6_scope_id, ifname))
      n = snprintf(buf, cap, "%s%%%s", ip, ifname);
    else
      n = snprintf(buf, cap, "%s%%%u", ip, a->u.in6.sin6_scope_id);
  } else {
    n = snprintf(buf, cap, "%s", ip);
  }
  return (n < 0 || (size_t)n >= cap) ? CK_ENOSPC : n;
}

int ck_addr_format(const struct ck_addr *a, char *buf, size_t cap)
{
  char ip[CK_ADDR_STRLEN];
  if (!buf && cap)
    return CK_EINVAL;
  int rc = ck_addr_format_ip(a, ip, sizeof ip);
  if (rc < 0)
    return rc;
  int n = a->u.sa.sa_family == AF_INET6
            ? snprintf(buf, cap, "[%s]:%u", ip, ck_addr_port(a))
            : snprintf(buf, cap, "%s:%u", ip, ck_addr_port(a));
  return (n < 0 || (size_t)n >= cap) ? CK_ENOSPC : n;
}

uint16_t ck_addr_port(const struct ck_addr *a)
{
  if (!a)
    return 0;
  return ntohs(a->u.sa.sa_family == AF_INET6 ? a->u.in6.sin6_port
                                              : a->u.in4.sin_port);
}

bool ck_addr_equal(const struct ck_addr *a, const struct ck_addr *b)
{
  if (!a || !b)
    return false;
  if (a->u.sa.sa_family != b->u.sa.sa_family)
    return false;
  if (a->u.sa.sa_family == AF_INET)
    return a->u.in4.sin_port == b->u.in4.sin_port &&
           a->u.in4.sin_addr.s_addr == b->u.in4.sin_addr.s_addr;
  if (a->u.sa.sa_family == AF_INET6)
    return a->u.in6.sin6_port == b->u.in6.sin6_port &&
           memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, 16) == 0 &&
           a->u.in6.sin6_scope_id == b->u.in6.sin6_scope_id;
  return false;
}

bool ck_addr_is_multicast(const struct ck_addr *a)
{
  if (!a)
    return false;
  if (a->u.sa.sa_family == AF_INET)
    return IN_MULTICAST(ntohl(a->u.in4.sin_addr.s_addr));
  if (a->u.sa.sa_family == AF_INET6)
    return IN6_IS_ADDR_MULTICAST(&a->u.in6.sin6_addr);
  return false;
}

uint32_t ck_addr_hash(const struct ck_addr *a)
{
  /* FNV-1a over the address bytes and port: cheap and well spread for
   * the few dozen bits that differ between peers. */
  uint32_t h = 2166136261u;
  const uint8_t *p;
  size_t n;
  uint16_t port;
  if (!a)
    return h;
  if (a->u.sa.sa_family == AF_INET) {
    p = (const uint8_t *)&a->u.in4.sin_addr;
    n = 4;
    port = a->u.in4.sin_port;
  } else {
    p = (const uint8_t *)&a->u.in6.sin6_addr;
    n = 16;
    port = a->u.in6.sin6_port;
  }
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 16777619u;
  h = (h ^ (port & 0xff)) * 16777619u;
  h = (h ^ (port >> 8)) * 16777619u;
  return h;
}
