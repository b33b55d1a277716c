/* The client's trace hook (ck_client_config.trace): every message its
 * endpoints send and every message that reaches it, shown to the hook.
 *
 * Sent messages are caught below the messaging layer, so that
 * retransmissions, ACKs and RSTs are seen as well as requests: the
 * endpoint sends through a copy of its transport whose commit parses the
 * datagram being queued and shows it first. Received messages are shown
 * where the client takes them (client_match.c, client_tx.c).
 */
#include <string.h>

#include "client_call.h"

static struct ck__trace_tp *trace_of(struct ck__ep *ep)
{
  return (struct ck__trace_tp *)(uintptr_t)ep->tp;
}

static uint8_t *trace_begin(struct ck__ep *ep, size_t *cap)
{
  struct ck__trace_tp *t = trace_of(ep);
  t->out = t->inner->out_begin(ep, cap);
  return t->out;
}

static int trace_commit(struct ck__ep *ep, const struct ck_addr *to,
                        size_t len)
{
  struct ck__trace_tp *t = trace_of(ep);
  struct ck_msg m;
  if (t->out && ck_msg_parse(&m, t->out, len) == 0)
    t->c->cfg.trace(t->c->cfg.trace_user, true, to, &m);
  t->out = NULL;
  return t->inner->out_commit(ep, to, len);
}

static void trace_flush(struct ck__ep *ep)
{
  trace_of(ep)->inner->flush(ep);
}

static void trace_free(struct ck__ep *ep)
{
  trace_of(ep)->inner->free(ep);
}

void ck__trace_install(struct ck_client *c, struct ck__ep *ep,
                       struct ck__trace_tp *t)
{
  t->tp = *ep->tp;
  t->tp.out_begin = trace_begin;
  t->tp.out_commit = trace_commit;
  t->tp.flush = trace_flush;
  t->tp.free = trace_free;
  t->inner = ep->tp;
  t->c = c;
  ep->tp = &t->tp;
}

/* The endpoint may outlive the client: give it back its own transport. */
void ck__trace_remove(struct ck__ep *ep, struct ck__trace_tp *t)
{
  if (ep && t->inner)
    ep->tp = t->inner;
}

void ck__trace_in(struct ck_client *c, const struct ck_addr *from,
                  const struct ck_msg *m)
{
  if (c->cfg.trace)
    c->cfg.trace(c->cfg.trace_user, false, from, m);
}

/* The messaging layer hands over an RST as its Message ID alone: rebuild
 * the four bytes for the hook. */
void ck__trace_rst_in(struct ck_client *c, const struct ck_addr *from,
                      uint16_t mid)
{
  if (!c->cfg.trace)
    return;
  uint8_t rst[4];
  ck__empty_msg(rst, CK_TYPE_RST, mid);
  struct ck_msg m;
  if (ck_msg_parse(&m, rst, sizeof rst) == 0)
    c->cfg.trace(c->cfg.trace_user, false, from, &m);
}
