/* How a received message finds its call.
 *
 * RFC 7252 §5.3.2: a response is matched to its request by token and
 * endpoint. Each client keeps the tokens of its calls in a chained hash
 * (struct ck__tokens), so a response costs one bucket's walk per client
 * of the context, however many calls are in flight. A call may hold two
 * tokens: its own, and the one its block requests use after a
 * notification (RFC 7959 §3.4). Chains keep the newest entry first, so
 * that of calls sharing a token (the application chose it) the newest
 * wins, as it always has.
 *
 * Here also the client's other inputs: an RST that no pending CON
 * matched (a NON request's rejection), and an ICMP error for a peer.
 */
#include <stdlib.h>
#include <string.h>

#include "client_call.h"

enum { TOK_MIN_BUCKETS = 16 };

static size_t tok_hash(const uint8_t *b, size_t len)
{
  /* FNV-1a: tokens are random (RFC 9175 §4.2), a short mix suffices. */
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++)
    h = (h ^ b[i]) * 16777619u;
  return h;
}

static void tok_grow(struct ck__tokens *t)
{
  size_t n = t->nbuckets ? t->nbuckets * 2 : TOK_MIN_BUCKETS;
  struct ck__tok **nb = calloc(n, sizeof *nb);
  if (!nb)
    return; /* the chains grow longer instead */
  /* Re-insert bucket by bucket, each chain's tail first, so that the
   * newest-first order of equal tokens survives. */
  for (size_t i = 0; i < t->nbuckets; i++) {
    struct ck__tok *rev = NULL;
    for (struct ck__tok *e = t->buckets[i], *nx; e; e = nx) {
      nx = e->next;
      e->next = rev;
      rev = e;
    }
    for (struct ck__tok *e = rev, *nx; e; e = nx) {
      nx = e->next;
      struct ck__tok **b = &nb[tok_hash(e->bytes, e->len) & (n - 1)];
      e->next = *b;
      *b = e;
    }
  }
  free(t->buckets);
  t->buckets = nb;
  t->nbuckets = n;
}

void ck__tokens_add(struct ck_client *c, struct ck__tok *e)
{
  struct ck__tokens *t = &c->tokens;
  if (e->linked)
    return;
  if (t->count >= t->nbuckets)
    tok_grow(t);
  if (!t->nbuckets)
    return; /* not even the first array: such a call is never matched */
  struct ck__tok **b =
    &t->buckets[tok_hash(e->bytes, e->len) & (t->nbuckets - 1)];
  e->next = *b;
  *b = e;
  e->linked = true;
  t->count++;
}

void ck__tokens_del(struct ck_client *c, struct ck__tok *e)
{
  struct ck__tokens *t = &c->tokens;
  if (!e->linked)
    return;
  struct ck__tok **pp =
    &t->buckets[tok_hash(e->bytes, e->len) & (t->nbuckets - 1)];
  while (*pp && *pp != e)
    pp = &(*pp)->next;
  if (*pp)
    *pp = e->next;
  e->linked = false;
  t->count--;
}

void ck__tokens_free(struct ck_client *c)
{
  free(c->tokens.buckets);
  memset(&c->tokens, 0, sizeof c->tokens);
}

bool ck__client_understood(const struct ck_msg *m)
{
  /* The client acts on Block1 and Block2 (RFC 7959); the other critical
   * options it knows are request options, and one in a response means
   * something it cannot honour. */
  struct ck_opt_iter it;
  struct ck_opt o;
  ck_opt_iter_init(&it, m);
  while (ck_opt_next(&it, &o))
    if (ck_opt_is_critical(o.num) && o.num != CK_OPT_BLOCK1 &&
        o.num != CK_OPT_BLOCK2)
      return false;
  return true;
}

static struct ck_call *match_in(struct ck_client *c,
                                const struct ck_addr *from,
                                const struct ck_msg *m)
{
  struct ck__tokens *t = &c->tokens;
  if (!t->nbuckets)
    return NULL;
  size_t h = tok_hash(m->token, m->tkl) & (t->nbuckets - 1);
  for (struct ck__tok *e = t->buckets[h]; e; e = e->next) {
    struct ck_call *x = e->call;
    if (e->len != m->tkl || memcmp(e->bytes, m->token, m->tkl) != 0 ||
        x->state == CK__CALL_RESOLVING || x->state == CK__CALL_QUEUED ||
        x->state == CK__CALL_DONE || x->ping)
      continue;
    /* §5.3.2: the token and the endpoint must both match; a group
     * request is answered by members' own addresses. */
    if (x->multicast || ck_addr_equal(&x->peer, from))
      return x;
  }
  return NULL;
}

bool ck__client_input(struct ck_ctx *ctx, struct ck__ep *ep,
                      const struct ck_addr *from, const struct ck_msg *m)
{
  struct ck_call *call = NULL;
  for (struct ck_client *c = ctx->clients; c; c = c->next)
    if (c->ep4 == ep || c->ep6 == ep || c->dep4 == ep || c->dep6 == ep)
      ck__trace_in(c, from, m);
  /* §5.4.1: a response with a critical option we do not understand is
   * rejected, like one nobody expects: RST (which §4.3 allows for a NON
   * too), and the call goes on waiting for its answer. */
  if (ck__client_understood(m))
    for (struct ck_client *c = ctx->clients; c && !call; c = c->next)
      call = match_in(c, from, m);
  if (!call) {
    /* The message belongs to no client in particular: every client of
     * the context counts it. */
    for (struct ck_client *c = ctx->clients; c; c = c->next)
      c->stats.rejected++;
    return false;
  }
  /* Remember the message so that its retransmissions are answered the
   * same way and not delivered twice (§4.5). Without an entry (the table
   * is full) a retransmission is merely delivered again, which the
   * call's state absorbs: a notification's sequence number, a block's
   * number, or a call already finished. */
  int err;
  struct ck__dd_entry *dd =
    ck__dedup_add(ctx, from, m->mid, false,
                  m->type == CK_TYPE_CON ? ctx->exchange_lifetime
                                         : ctx->non_lifetime,
                  &err);
  if (m->type == CK_TYPE_CON) {
    uint8_t ack[4];
    ck__empty_msg(ack, CK_TYPE_ACK, m->mid);
    /* A lost ACK is repaired by the server's retransmission, which the
     * dedup entry answers: a failed send needs nothing more. */
    (void)ck__ep_send(ep, from, ack, sizeof ack);
    if (dd)
      ck__dedup_answer(ctx, dd, ack, sizeof ack);
  } else if (dd) {
    dd->state = CK__DD_ANSWERED;
  }
  if (call->con && !call->registered) {
    /* The response overtook the ACK of our CON (§5.2.2). */
    ck__con_cancel(ctx, call->con);
    call->con = NULL;
  }
  ck__call_response(call, m, from);
  return true;
}

void ck__client_rst(struct ck_ctx *ctx, const struct ck_addr *from,
                    uint16_t mid)
{
  /* No token to look up: the RST names the Message ID of a NON request
   * (§4.3), and only calls awaiting an answer without a CON count. */
  for (struct ck_client *c = ctx->clients; c; c = c->next)
    for (struct ck_call *x = c->calls; x; x = x->next)
      if (ck__call_outstanding(x) && !x->con && x->mid == mid &&
          ck_addr_equal(&x->peer, from)) {
        ck__trace_rst_in(c, from, mid);
        ck__call_finish(x, CK_ERESET, NULL, NULL);
        return;
      }
}

void ck__client_icmp(struct ck_ctx *ctx, const struct ck_addr *peer, int err)
{
  /* CON calls failed already, through their pending transmission
   * (ck__input_icmp() fails the peer's CONs first); calls waiting for
   * that peer's response are failed here directly. A final
   * callback may cancel other calls (freeing them) or start new ones, so
   * no list pointer survives a finish: mark the calls this error
   * concerns, then finish the marked ones one at a time, each found
   * afresh. */
  for (struct ck_client *c = ctx->clients; c; c = c->next)
    for (struct ck_call *x = c->calls; x; x = x->next)
      x->marked = ck__call_outstanding(x) && !x->con && !x->multicast &&
                  ck_addr_equal(&x->peer, peer);
  for (;;) {
    struct ck_call *x = NULL;
    for (struct ck_client *c = ctx->clients; c && !x; c = c->next)
      for (x = c->calls; x && !x->marked; x = x->next)
        ;
    if (!x)
      return;
    x->marked = false;
    ck__call_fail(x, err); /* a NON call may move on to its next address */
  }
}
