/* A stored representation of a coapd resource: its bytes, Content-Format
 * and ETag, and the conditional requests of RFC 7252 §5.10.8 that decide
 * whether a PUT may replace it. */
#ifndef COAPD_REP_H
#define COAPD_REP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <coapkit/coapkit.h>

struct rep {
  uint8_t *data; /* NULL: no representation */
  size_t len;
  int cf;          /* Content-Format, < 0: none */
  uint8_t etag[8]; /* computed from the bytes when they are stored */
};

/* Empties r (which must be zeroed or valid): no representation. */
void rep_clear(struct rep *r);

/* Replaces r by a copy of p[0..len). Returns 0, or -1 when out of memory
 * (r is unchanged then). */
int rep_set(struct rep *r, const void *p, size_t len, int cf);

/* Puts r into resp: Content-Format, ETag and payload. */
void rep_answer(const struct rep *r, struct ck_response *resp);

/* Replaces r by the request's body and Content-Format; answers 5.00 and
 * returns false when out of memory. */
bool rep_store_body(struct rep *r, const struct ck_request *req,
                    struct ck_response *resp);

/* The same when the request's If-Match and If-None-Match hold; answers
 * 4.12 Precondition Failed and returns false when they do not. */
bool rep_store(struct rep *r, const struct ck_request *req,
               struct ck_response *resp);

#endif
