/* Deduplication of received messages (RFC 7252 §4.5): the table of
 * remembered exchanges, keyed by (peer, Message ID), that lets a
 * retransmitted request be answered from the cache instead of running its
 * handler twice. The policy (growth, the memory cap, what is forgotten
 * first and when a request is refused) is told in dedup.c. Internal to
 * libcoapkit. */
#ifndef CK_DEDUP_H
#define CK_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"

enum ck__dd_state {
  CK__DD_FREE,
  CK__DD_PENDING,  /* the handler deferred; nothing sent yet */
  CK__DD_ACKED,    /* an empty ACK went out; the response is separate */
  CK__DD_ANSWERED, /* answered; resp holds the answer when cached */
};

/* Answers up to this long live in the entry itself, which makes an entry
 * two cache lines (128 bytes on LP64). A piggybacked ACK with an 8-byte
 * token, a few options and a short payload fits. */
enum { CK__DD_INLINE = 58 };

/* An entry stays at the same address for the life of the context (the
 * table grows by adding chunks, never by moving them), so a handle may
 * keep a pointer to it and check gen to learn whether it was reused. */
struct ck__dd_entry {
  struct ck_addr peer;
  uint64_t born;     /* when it was added, on the loop's clock (ms) */
  uint8_t *heap;     /* the cached answer when longer than CK__DD_INLINE */
  uint32_t life;     /* lifetime in ms: EXCHANGE_ or NON_LIFETIME */
  uint32_t gen;      /* bumped on reuse, so handles can detect it */
  uint32_t next;     /* dedup.c: the next entry of its hash bucket */
  uint32_t younger;  /* dedup.c: the next younger entry, in age order */
  uint16_t mid;
  uint8_t state;
  bool idempotent;
  uint16_t resp_len; /* 0: no cached answer (re-run an idempotent one) */
  uint8_t inl[CK__DD_INLINE];
};

/* Creates the context's (empty) table; memory comes with demand. Returns
 * 0 or CK_ENOMEM. */
int ck__dedup_init(struct ck_ctx *ctx);

/* Frees the table and every cached answer. */
void ck__dedup_close(struct ck_ctx *ctx);

/* Finds the live entry for a request from peer with mid, or NULL. */
struct ck__dd_entry *ck__dedup_find(struct ck_ctx *ctx,
                                    const struct ck_addr *peer,
                                    uint16_t mid);

/* Adds an entry in state PENDING that lives lifetime_ms. When the table
 * is at its cap and its oldest entry is too young to forget (see
 * dedup.c), returns NULL with *err = CK_EFULL for a non-idempotent
 * request (the caller answers 5.03, with ck__dedup_retry_after() as
 * Max-Age) and *err = 0 for an idempotent one (it is served without an
 * entry: a duplicate merely runs the handler again). */
struct ck__dd_entry *ck__dedup_add(struct ck_ctx *ctx,
                                   const struct ck_addr *peer, uint16_t mid,
                                   bool idempotent, uint64_t lifetime_ms,
                                   int *err);

/* Records the answer sent for e: cached in full when it fits inline or
 * the request was not idempotent; an idempotent request's long answer is
 * not kept, since running its handler again is harmless (§4.5). */
void ck__dedup_answer(struct ck_ctx *ctx, struct ck__dd_entry *e,
                      const uint8_t *msg, size_t len);

/* The cached answer of e, or NULL. */
const uint8_t *ck__dedup_cached(const struct ck__dd_entry *e, size_t *len);

/* Seconds (at least 1) until the table can take a new exchange again:
 * the Max-Age of a 5.03 after ck__dedup_add() failed with CK_EFULL. */
uint32_t ck__dedup_retry_after(struct ck_ctx *ctx);

#endif
