/* Error codes of libcoapkit.
 *
 * Every public call that can fail returns a negative CK_E... value. The
 * codes, their names and their readable strings come from one X-macro table
 * so that ck_strerror() and ck_err_name() can never drift from the enum.
 * A CoAP response code such as 4.04 is data, never one of these errors.
 */
#ifndef COAPKIT_ERROR_H
#define COAPKIT_ERROR_H

#include "coapkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message). Values are stable: never renumber one. */
#define CK_ERRNO_MAP(X)                                                      \
  X(EINVAL, -1, "invalid argument")                                          \
  X(ENOMEM, -2, "out of memory")                                             \
  X(ENOSPC, -3, "buffer too small")                                          \
  X(ERANGE, -4, "value out of range")                                        \
  X(EMSG_SHORT, -10, "message shorter than the 4-byte header")               \
  X(EMSG_VERSION, -11, "message version is not 1")                           \
  X(EMSG_TKL, -12, "token length 9-15 is reserved")                          \
  X(EMSG_EMPTY, -13, "empty message (0.00) has bytes after the header")      \
  X(EMSG_CODE, -14, "code is in a reserved class")                           \
  X(EMSG_PAYLOAD, -15, "payload marker is followed by no payload")           \
  X(EOPT_DELTA, -16, "option delta nibble 15 outside the payload marker")    \
  X(EOPT_LEN, -17, "option length nibble 15 is reserved")                    \
  X(EOPT_TRUNC, -18, "option runs past the end of the message")              \
  X(EOPT_NUM, -19, "option number exceeds 65535")                            \
  X(EOPT_TOOMANY, -20, "too many options for the builder")                   \
  X(EOPT_VALUE, -21, "option value too long")                                \
  X(ENOTFOUND, -22, "not found")                                             \
  X(EMSG_TOKEN, -23, "token runs past the end of the message")               \
  X(EURI_SCHEME, -30, "URI scheme is not coap or coaps")                     \
  X(EURI_SYNTAX, -31, "URI is malformed")                                    \
  X(EURI_HOST, -32, "URI host is missing or malformed")                      \
  X(EURI_PORT, -33, "URI port is not a number from 0 to 65535")              \
  X(EURI_FRAGMENT, -34, "CoAP URIs cannot have a fragment")                  \
  X(EURI_ESCAPE, -35, "URI has a malformed percent-escape")                  \
  X(EURI_TOOLONG, -36, "URI component is too long")                          \
  X(ELINK_SYNTAX, -40, "link-format document is malformed")               \
  X(ESYS, -50, "system call failed (see errno)")                             \
  X(ETIMEDOUT, -51, "no response: the exchange timed out")                   \
  X(ERESET, -52, "the peer answered with a Reset")                           \
  X(EUNREACH, -53, "the peer is unreachable")                                \
  X(ECANCELED, -54, "cancelled")                                             \
  X(EBADRESP, -55, "the response is malformed or does not match")           \
  X(EFULL, -56, "a table or queue is full")                                  \
  X(EEXIST, -57, "already exists")                                         \
  X(EDTLS, -60, "the DTLS handshake failed")                                 \
  X(EDTLS_PSK, -61, "DTLS: the pre-shared key or identity was refused")     \
  X(EDTLS_UNTRUSTED, -62, "DTLS: the peer's certificate is not trusted")    \
  X(EDTLS_EXPIRED, -63, "DTLS: the peer's certificate has expired")         \
  X(EDTLS_NAME, -64, "DTLS: the certificate does not match the host name")  \
  X(EDTLS_TIMEOUT, -65, "DTLS: the handshake timed out")                    \
  X(EDTLS_CREDS, -66, "DTLS: credentials missing or not loadable")          \
  X(EDTLS_REFUSED, -67, "DTLS: the peer refused our certificate (or none)")

/* The error codes; CK_OK is 0 and every error is negative. */
enum ck_err {
  CK_OK = 0,
#define CK__ERR_ENUM(name, value, msg) CK_##name = (value),
  CK_ERRNO_MAP(CK__ERR_ENUM)
#undef CK__ERR_ENUM
};

/* Returns a readable, static string for an error code (never NULL). */
CK_EXPORT const char *ck_strerror(int err);

/* Returns the code's name without prefix, e.g. "EMSG_TKL" (never NULL). */
CK_EXPORT const char *ck_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif
