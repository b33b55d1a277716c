/* The CoRE Link Format (RFC 6690).
 *
 * ck_link_next() reads one link at a time from an application/link-format
 * document into views of the caller's buffer, without allocating.
 * ck_link_match() applies a /.well-known/core query filter (RFC 6690 §4.1)
 * to a link, and struct ck_link_writer serialises links.
 */
#ifndef COAPKIT_LINK_H
#define COAPKIT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include "coapkit/export.h"

#include "coapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most parameters one link may carry; more is CK_ELINK_SYNTAX. */
#define CK_LINK_MAX_PARAMS 24

/* One link parameter. val is NULL for a parameter without a value (such as
 * "obs"); a quoted value is given without its quotes but with any
 * backslash escapes still in place. */
struct ck_link_param {
  const char *name;
  size_t name_len;
  const char *val;
  size_t val_len;
  bool quoted;
};

/* One link: the URI-reference between '<' and '>', and its parameters. */
struct ck_link {
  const char *target;
  size_t target_len;
  unsigned nparams;
  struct ck_link_param params[CK_LINK_MAX_PARAMS];
};

struct ck_link_reader {
  const char *p;
  const char *end;
  int err;
};

/* Starts reading the document buf[0..len). The reader keeps pointers into
 * buf, which must outlive it and every link it gives out. A NULL r is
 * ignored; a NULL buf reads as an empty document when len is 0, else
 * ck_link_next() returns CK_EINVAL. */
CK_EXPORT void ck_link_reader_init(struct ck_link_reader *r, const char *buf,
                                   size_t len);

/* Reads the next link into *out, whose fields then point into the buffer.
 * Returns 1 when a link was read, 0 at the end of the document,
 * CK_ELINK_SYNTAX (and keeps returning it; *out is then unspecified), or
 * CK_EINVAL (r or out NULL, or the reader was started on a NULL buffer
 * with a length).
 * Whitespace and line breaks may surround ',', ';' and '='; a line break
 * may replace the ',' between links, and a trailing ',' is ignored. More
 * than CK_LINK_MAX_PARAMS parameters on one link is CK_ELINK_SYNTAX. */
CK_EXPORT int ck_link_next(struct ck_link_reader *r, struct ck_link *out);

/* Returns the first parameter named name (ASCII case-insensitive), or
 * NULL (also when l or name is NULL). */
CK_EXPORT const struct ck_link_param *ck_link_param(const struct ck_link *l,
                                                    const char *name);

/* Returns true when the parameter's value, read as a space-separated list
 * (RFC 6690 §3.1, e.g. rt="a b"), contains the word word[0..len).
 * Comparison is case-sensitive, and an escaped character in a quoted
 * value counts as the character itself. False for a NULL parameter, one
 * without a value, or an empty or NULL word. */
CK_EXPORT bool ck_link_param_has(const struct ck_link_param *p,
                                 const char *word, size_t len);

/* Applies a /.well-known/core query filter "name=value" (RFC 6690 §4.1),
 * already percent-decoded, to l. Names compare case-insensitively, values
 * case-sensitively with quoted-string escapes resolved. A value ending in
 * '*' matches by prefix; "href" matches the target; for rt, if, rel, rev
 * and ct, whose values are space-separated lists, any word (or the whole
 * value) may match; other parameters match on the whole value. A link
 * without the parameter does not match; a parameter without a value
 * compares as "". A filter without '=' ("obs") selects links carrying the
 * parameter. An empty filter (len 0) matches every link; one with an
 * empty name ("=x") matches none. False when l is NULL, or filter is NULL
 * and len > 0. */
CK_EXPORT bool ck_link_match(const struct ck_link *l, const char *filter,
                             size_t len);

/* Serialises links into a caller's buffer, comma-separated. Errors are
 * sticky, as with struct ck_builder. */
struct ck_link_writer {
  char *buf;
  size_t cap;
  size_t len;
  unsigned count;
  int err;
};

/* Starts a document in buf[0..cap), which the writer does not own. A
 * NULL w is ignored; a NULL buf with cap > 0 makes every later call
 * return CK_EINVAL. */
CK_EXPORT void ck_link_writer_init(struct ck_link_writer *w, char *buf,
                                   size_t cap);

/* Appends l as "<target>;name=value;name=\"quoted\";bare", after a ','
 * unless it is the first. A parameter with val == NULL is written bare. An
 * unquoted value is plain text: written as is when it is a valid token
 * (RFC 6690 ptoken), else quoted with '"' and '\' escaped. A value marked
 * quoted is a quoted-string's inside with its escapes in place, exactly as
 * ck_link_next() gives it, and is written between quotes unchanged (only
 * a stray '"' or a final lone '\' gets escaped), so parse -> write -> parse
 * gives the same links. Returns 0, CK_ENOSPC (nothing of l is kept; the
 * links before it remain in buf[0..w->len)), or CK_EINVAL for a NULL w or
 * l, or a link the reader could not read back (a target holding '<', '>'
 * or a control character, a NULL target with a length, an empty, NULL
 * or invalid parameter name, too many parameters). Errors are
 * sticky: after one, every call returns it again. */
CK_EXPORT int ck_link_write(struct ck_link_writer *w, const struct ck_link *l);

/* NUL-terminates the document when room remains (never writing past
 * buf[cap - 1]), and returns its length without the NUL, or the first
 * error of the writer (see ck_link_write()), CK_ERANGE when the length
 * exceeds INT_MAX, or CK_EINVAL when w is NULL. */
CK_EXPORT int ck_link_writer_finish(struct ck_link_writer *w);

#ifdef __cplusplus
}
#endif

#endif
