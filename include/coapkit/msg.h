/* The CoAP message codec (RFC 7252 §3).
 *
 * ck_msg_parse() turns a datagram into a struct ck_msg: a view whose
 * pointers refer into the caller's buffer. It never allocates and never
 * copies; the buffer must outlive the view. Options are validated once
 * during the parse, so iterating them later cannot fail.
 *
 * struct ck_builder writes a message into a caller's buffer. Options may be
 * added in any order; they are sorted (stably, so repeated options keep
 * their order) and delta-encoded when the message is finished.
 */
#ifndef COAPKIT_MSG_H
#define COAPKIT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "coapkit/export.h"

#include "coapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CK_COAP_VERSION 1
#define CK_TOKEN_MAX 8
#define CK_HEADER_LEN 4
#define CK_PAYLOAD_MARKER 0xff
/* The longest option value the builder accepts. */
#define CK_OPT_VALUE_MAX 65535

/* Message types (RFC 7252 §3). */
enum ck_type {
  CK_TYPE_CON = 0,
  CK_TYPE_NON = 1,
  CK_TYPE_ACK = 2,
  CK_TYPE_RST = 3,
};

/* A code is class.detail packed as c << 5 | dd. */
#define CK_CODE(cls, detail) ((uint8_t)(((cls) << 5) | (detail)))
#define CK_CODE_CLASS(code) ((unsigned)(code) >> 5)
#define CK_CODE_DETAIL(code) ((unsigned)(code)&0x1f)

/* Method and response codes (RFC 7252 §12.1, RFC 7959, RFC 8132,
 * RFC 8516, RFC 8768, RFC 9175). */
enum ck_code {
  CK_CODE_EMPTY = CK_CODE(0, 0),
  CK_GET = CK_CODE(0, 1),
  CK_POST = CK_CODE(0, 2),
  CK_PUT = CK_CODE(0, 3),
  CK_DELETE = CK_CODE(0, 4),
  CK_FETCH = CK_CODE(0, 5),
  CK_PATCH = CK_CODE(0, 6),
  CK_IPATCH = CK_CODE(0, 7),
  CK_CREATED = CK_CODE(2, 1),
  CK_DELETED = CK_CODE(2, 2),
  CK_VALID = CK_CODE(2, 3),
  CK_CHANGED = CK_CODE(2, 4),
  CK_CONTENT = CK_CODE(2, 5),
  CK_CONTINUE = CK_CODE(2, 31),
  CK_BAD_REQUEST = CK_CODE(4, 0),
  CK_UNAUTHORIZED = CK_CODE(4, 1),
  CK_BAD_OPTION = CK_CODE(4, 2),
  CK_FORBIDDEN = CK_CODE(4, 3),
  CK_NOT_FOUND = CK_CODE(4, 4),
  CK_METHOD_NOT_ALLOWED = CK_CODE(4, 5),
  CK_NOT_ACCEPTABLE = CK_CODE(4, 6),
  CK_REQUEST_ENTITY_INCOMPLETE = CK_CODE(4, 8),
  CK_CONFLICT = CK_CODE(4, 9),
  CK_PRECONDITION_FAILED = CK_CODE(4, 12),
  CK_REQUEST_ENTITY_TOO_LARGE = CK_CODE(4, 13),
  CK_UNSUPPORTED_CONTENT_FORMAT = CK_CODE(4, 15),
  CK_UNPROCESSABLE_ENTITY = CK_CODE(4, 22),
  CK_TOO_MANY_REQUESTS = CK_CODE(4, 29),
  CK_INTERNAL_SERVER_ERROR = CK_CODE(5, 0),
  CK_NOT_IMPLEMENTED = CK_CODE(5, 1),
  CK_BAD_GATEWAY = CK_CODE(5, 2),
  CK_SERVICE_UNAVAILABLE = CK_CODE(5, 3),
  CK_GATEWAY_TIMEOUT = CK_CODE(5, 4),
  CK_PROXYING_NOT_SUPPORTED = CK_CODE(5, 5),
  CK_HOP_LIMIT_REACHED = CK_CODE(5, 8),
};

/* One option as a view: the value points into the message buffer. */
struct ck_opt {
  uint16_t num;
  uint16_t len;
  const uint8_t *val;
};

/* A parsed message. Every pointer refers into the parsed buffer. */
struct ck_msg {
  const uint8_t *data; /* the whole datagram */
  size_t len;
  uint8_t type; /* enum ck_type */
  uint8_t code;
  uint8_t tkl;
  uint16_t mid;
  const uint8_t *token; /* tkl bytes */
  const uint8_t *opts;  /* encoded options, validated */
  size_t opts_len;
  unsigned nopts;
  const uint8_t *payload; /* NULL when there is none */
  size_t payload_len;
};

/* Parses the datagram buf[0..len) into *m without copying or allocating.
 * Returns 0, or a negative CK_EMSG_* / CK_EOPT_* error naming the first
 * format error found. Even on error, when len >= 4, m->type, m->code and
 * m->mid hold the header's values so that the caller can answer a
 * malformed CON with a Reset (RFC 7252 §4.2). */
CK_EXPORT int ck_msg_parse(struct ck_msg *m, const void *buf, size_t len);

/* Iterates the options of a parsed message in wire order. */
struct ck_opt_iter {
  const uint8_t *p;
  const uint8_t *end;
  uint32_t num;
};

/* Starts an iteration over m's options. */
CK_EXPORT void ck_opt_iter_init(struct ck_opt_iter *it, const struct ck_msg *m);

/* Stores the next option in *out and returns true, or returns false at the
 * end. The message must have been accepted by ck_msg_parse(). */
CK_EXPORT bool ck_opt_next(struct ck_opt_iter *it, struct ck_opt *out);

/* Finds the first option numbered num. Returns 0 and fills *out, or
 * CK_ENOTFOUND. */
CK_EXPORT int ck_msg_opt(const struct ck_msg *m, uint16_t num,
                         struct ck_opt *out);

/* Finds the first option numbered num and decodes it as an unsigned
 * integer. Returns 0, CK_ENOTFOUND, or CK_ERANGE when longer than 4 bytes. */
CK_EXPORT int ck_msg_opt_uint(const struct ck_msg *m, uint16_t num,
                              uint32_t *out);

/* Returns how many options numbered num the message carries. */
CK_EXPORT unsigned ck_msg_opt_count(const struct ck_msg *m, uint16_t num);

/* The most options one builder holds. */
#define CK_BUILDER_MAX_OPTS 64

struct ck_builder_opt {
  uint16_t num;
  uint16_t len;
  const uint8_t *val; /* NULL: the value is in inl */
  uint8_t inl[4];
};

/* Builds one message into a caller's buffer. Errors are sticky: the first
 * one is remembered and returned by ck_builder_finish(), so a sequence of
 * calls needs only one check at the end. */
struct ck_builder {
  uint8_t *buf;
  size_t cap;
  int err;
  uint8_t type;
  uint8_t code;
  uint8_t tkl;
  bool sorted;
  uint16_t mid;
  unsigned nopts;
  uint8_t token[CK_TOKEN_MAX];
  const uint8_t *payload;
  size_t payload_len;
  struct ck_builder_opt opts[CK_BUILDER_MAX_OPTS];
};

/* Starts a message of the given type, code and Message ID that will be
 * written into buf[0..cap). The builder does not own buf. */
CK_EXPORT void ck_builder_init(struct ck_builder *b, void *buf, size_t cap,
                               enum ck_type type, uint8_t code, uint16_t mid);

/* Sets the token (0 to 8 bytes, copied). Returns 0 or CK_EMSG_TKL. */
CK_EXPORT int ck_builder_token(struct ck_builder *b, const void *tok,
                               size_t len);

/* Adds an option whose value is referenced, not copied: val must stay
 * valid until ck_builder_finish(). Returns 0, CK_EOPT_TOOMANY or
 * CK_EOPT_VALUE. */
CK_EXPORT int ck_builder_opt(struct ck_builder *b, uint16_t num,
                             const void *val, size_t len);

/* Adds a NUL-terminated string option (referenced, not copied). */
CK_EXPORT int ck_builder_opt_str(struct ck_builder *b, uint16_t num,
                                 const char *s);

/* Adds an unsigned integer option in its minimal length (copied). */
CK_EXPORT int ck_builder_opt_uint(struct ck_builder *b, uint16_t num,
                                  uint32_t v);

/* Sets the payload (referenced, not copied). An empty payload writes no
 * payload marker. */
CK_EXPORT void ck_builder_payload(struct ck_builder *b, const void *p,
                                  size_t len);

/* Writes the message. Returns its length in bytes, or the first error:
 * CK_ENOSPC when the buffer is too small, CK_EMSG_EMPTY for a 0.00 message
 * with a token, options or payload, or an error from an earlier call. */
CK_EXPORT int ck_builder_finish(struct ck_builder *b);

/* Returns the name of a code ("Content", "GET"), or NULL if unassigned. */
CK_EXPORT const char *ck_code_name(uint8_t code);

/* Writes "c.dd Name" (or "c.dd" for an unassigned code) into buf, always
 * NUL-terminated when cap > 0. Returns the length it needed, like
 * snprintf. */
CK_EXPORT int ck_code_format(char *buf, size_t cap, uint8_t code);

/* Returns "CON", "NON", "ACK" or "RST". */
CK_EXPORT const char *ck_type_name(enum ck_type type);

#ifdef __cplusplus
}
#endif

#endif
