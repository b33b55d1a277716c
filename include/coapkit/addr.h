/* Socket addresses for CoAP endpoints: IPv4 and IPv6 in one type, with
 * parsing and formatting of "host:port" text. */
#ifndef COAPKIT_ADDR_H
#define COAPKIT_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "coapkit/export.h"

#include "coapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An IPv4 or IPv6 socket address. */
struct ck_addr {
  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } u;
  socklen_t len;
};

/* Longest text ck_addr_format() writes, NUL included:
 * "[ffff:...:ffff%ifname]:65535". */
#define CK_ADDR_STRLEN 64

/* Parses "1.2.3.4:5683", "[::1]:5683", "[fe80::1%lo]:5683", or an address
 * without port (then default_port is used). Host names are not resolved.
 * Returns 0, CK_EINVAL or CK_EURI_PORT. */
CK_EXPORT int ck_addr_parse(struct ck_addr *a, const char *s,
                            uint16_t default_port);

/* Writes "1.2.3.4:5683" or "[::1]:5683" into buf (NUL-terminated).
 * Returns the length, or CK_ENOSPC. */
CK_EXPORT int ck_addr_format(const struct ck_addr *a, char *buf, size_t cap);

/* Writes only the IP address, IPv6 without brackets. */
CK_EXPORT int ck_addr_format_ip(const struct ck_addr *a, char *buf, size_t cap);

/* Returns the port in host byte order. */
CK_EXPORT uint16_t ck_addr_port(const struct ck_addr *a);

/* Returns true when both addresses are the same family, IP and port. */
CK_EXPORT bool ck_addr_equal(const struct ck_addr *a, const struct ck_addr *b);

/* Returns true for a multicast IP address. */
CK_EXPORT bool ck_addr_is_multicast(const struct ck_addr *a);

/* Returns a hash of the address and port, for tables. */
CK_EXPORT uint32_t ck_addr_hash(const struct ck_addr *a);

#ifdef __cplusplus
}
#endif

#endif
