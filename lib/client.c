/* The client: calls (one request and its answers), from the first
 * transmission to the final callback.
 *
 * A call keeps its request as a template (options and payload) so that it
 * can send it again with other Block1/Block2/Observe values: block-wise
 * uploads (RFC 7959 §2.5) and downloads (§2.4), re-registration of an
 * observation (RFC 7641 §3.3.1) and its proactive cancel (§3.6) are all
 * "the same request once more". CON transmissions go through the
 * messaging layer (exchange.c), which retransmits and matches the ACK by
 * Message ID; responses that come on their own (separate responses, NON
 * responses, notifications) are matched here by token and peer. A
 * response nobody expects is answered with RST by the caller.
 */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/cf.h"
#include "coapkit/client.h"
#include "coapkit/opt.h"
#include "coapkit/uri.h"
#include "exchange.h"

enum {
  MAX_TEMPLATE_OPTS = 48,
  /* RFC 7641 §3.3.1: re-register a little after Max-Age runs out. */
  REREGISTER_SLACK_MS = 2000,
};

struct tmpl_opt {
  uint16_t num;
  uint16_t len;
  uint32_t off;
};

/* Tracing (cfg.trace): a client's endpoint sends through a copy of its
 * transport whose commit shows each datagram to the hook first, so that
 * retransmissions, ACKs and RSTs are seen as well as requests. tp is the
 * first member: the endpoint's tp pointer leads back here. */
struct trace_tp {
  struct ck__transport tp;
  const struct ck__transport *inner;
  struct ck_client *c;
  uint8_t *out; /* the buffer of the datagram being built */
};

struct ck_client {
  struct ck_ctx *ctx;
  struct ck_client *next;
  struct ck_client_config cfg;
  struct ck__ep *ep4, *ep6;
  struct ck_call *calls;
  struct ck_client_stats stats;
  struct trace_tp trace4, trace6;
};

struct ck_call {
  struct ck__timer timer; /* first: the timer callback casts back */
  struct ck_client *cl;
  struct ck_call *next, *prev;
  ck_resp_cb cb;
  void *user;
  struct ck__ep *ep;
  struct ck_addr peer;
  struct ck__con *con;
  uint8_t method;
  bool non, multicast, observe, ping;
  bool queued, done, in_cb, cancel_pending, cancel_proactive;
  bool waiting;  /* awaiting a separate or NON response */
  bool uploading, downloading, registered, cancelling;
  bool unreach;  /* marked by an ICMP error, about to be finished */
  uint8_t tkl, alt_tkl;
  uint8_t token[CK_TOKEN_MAX];
  uint8_t alt_token[CK_TOKEN_MAX]; /* block requests after a notification */
  uint8_t szx1, szx2;
  bool explicit_block;
  uint16_t mid;
  uint32_t up_num;
  uint8_t req_tag[4];
  uint32_t down_num;
  uint8_t etag[8];
  uint8_t etag_len;
  bool has_seq;
  uint32_t seq, pending_seq;
  bool pending_has_seq;
  uint64_t seq_time;
  uint64_t t_first;
  uint8_t *body;
  size_t body_len, body_cap;
  unsigned nopts;
  struct tmpl_opt opts[MAX_TEMPLATE_OPTS];
  uint8_t *optval;
  uint8_t *payload;
  size_t payload_len;
};

static void finish(struct ck_call *call, int err, const struct ck_msg *m,
                   const struct ck_addr *from);
static int transmit(struct ck_call *call);

/* --- tracing --- */

static struct trace_tp *trace_of(struct ck__ep *ep)
{
  return (struct trace_tp *)(uintptr_t)ep->tp;
}

static uint8_t *trace_begin(struct ck__ep *ep, size_t *cap)
{
  struct trace_tp *t = trace_of(ep);
  t->out = t->inner->out_begin(ep, cap);
  return t->out;
}

static int trace_commit(struct ck__ep *ep, const struct ck_addr *to,
                        size_t len)
{
  struct trace_tp *t = trace_of(ep);
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

static void trace_close(struct ck__ep *ep)
{
  trace_of(ep)->inner->close(ep);
}

static void trace_install(struct ck_client *c, struct ck__ep *ep,
                          struct trace_tp *t)
{
  t->tp = *ep->tp;
  t->tp.out_begin = trace_begin;
  t->tp.out_commit = trace_commit;
  t->tp.flush = trace_flush;
  t->tp.close = trace_close;
  t->inner = ep->tp;
  t->c = c;
  ep->tp = &t->tp;
}

/* The endpoint outlives the client: give it back its own transport. */
static void trace_remove(struct ck__ep *ep, struct trace_tp *t)
{
  if (ep && t->inner)
    ep->tp = t->inner;
}

static void trace_in(struct ck_client *c, const struct ck_addr *from,
                     const struct ck_msg *m)
{
  if (c->cfg.trace)
    c->cfg.trace(c->cfg.trace_user, false, from, m);
}

/* --- clients --- */

int ck_client_new(struct ck_ctx *ctx, const struct ck_client_config *cfg,
                  struct ck_client **out)
{
  if (!ctx || !out)
    return CK_EINVAL;
  struct ck_client *c = calloc(1, sizeof *c);
  if (!c)
    return CK_ENOMEM;
  if (cfg)
    c->cfg = *cfg;
  struct ck_params *p = &c->cfg.params;
  if (ck__params_fill(p) < 0) {
    free(c);
    return CK_EINVAL;
  }
  if (!c->cfg.max_server_response_delay_ms)
    c->cfg.max_server_response_delay_ms = p->default_leisure_ms;
  if (!c->cfg.min_token_len)
    c->cfg.min_token_len = 4;
  if (!c->cfg.block_size)
    c->cfg.block_size = 1024;
  if (!c->cfg.max_body)
    c->cfg.max_body = 64u << 20;
  if (!c->cfg.nstart)
    c->cfg.nstart = p->nstart;
  if (c->cfg.min_token_len > CK_TOKEN_MAX ||
      ck_block_szx(c->cfg.block_size) < 0) {
    free(c);
    return CK_EINVAL;
  }
  c->ctx = ctx;
  c->next = ctx->clients;
  ctx->clients = c;
  *out = c;
  return 0;
}

void ck_client_free(struct ck_client *c)
{
  if (!c)
    return;
  while (c->calls)
    finish(c->calls, CK_ECANCELED, NULL, NULL);
  trace_remove(c->ep4, &c->trace4);
  trace_remove(c->ep6, &c->trace6);
  struct ck_client **pp = &c->ctx->clients;
  while (*pp && *pp != c)
    pp = &(*pp)->next;
  if (*pp)
    *pp = c->next;
  /* Its sockets go with it: a long-lived context that creates and frees
   * clients must not collect them. No CON of its calls is pending any
   * more (finish() cancelled them). */
  struct ck__ep *eps[2] = {c->ep4, c->ep6};
  for (int i = 0; i < 2; i++) {
    if (!eps[i])
      continue;
    struct ck__ep **ep = &c->ctx->eps;
    while (*ep && *ep != eps[i])
      ep = &(*ep)->next;
    if (*ep)
      *ep = eps[i]->next;
    eps[i]->tp->flush(eps[i]);
    eps[i]->tp->close(eps[i]);
    free(eps[i]);
  }
  free(c);
}

void ck_client_stats(const struct ck_client *c, struct ck_client_stats *out)
{
  if (!c || !out)
    return;
  *out = c->stats;
}

static int endpoint(struct ck_client *c, int family, struct ck__ep **out)
{
  struct ck__ep **slot = family == AF_INET6 ? &c->ep6 : &c->ep4;
  if (!*slot) {
    struct ck__ep *ep;
    size_t n = 0;
    while (n < 4 && c->cfg.sockopts[n].level)
      n++;
    int rc = ck__udp_open_client(c->ctx, family, c->cfg.sockopts, n, &ep);
    if (rc < 0)
      return rc;
    ep->next = c->ctx->eps;
    c->ctx->eps = ep;
    *slot = ep;
    if (c->cfg.trace)
      trace_install(c, ep, family == AF_INET6 ? &c->trace6 : &c->trace4);
  }
  *out = *slot;
  return 0;
}

/* --- requests --- */

void ck_req_init(struct ck_req *r, uint8_t method, const char *uri)
{
  if (!r)
    return;
  memset(r, 0, sizeof *r);
  r->method = method;
  r->uri = uri;
  r->content_format = -1;
  r->accept = -1;
}

static int add_opt(struct ck_call *call, size_t *used, size_t cap,
                   uint16_t num, const void *val, size_t len)
{
  if (call->nopts >= MAX_TEMPLATE_OPTS || len > cap - *used)
    return CK_EOPT_TOOMANY;
  struct tmpl_opt *o = &call->opts[call->nopts++];
  o->num = num;
  o->len = (uint16_t)len;
  o->off = (uint32_t)*used;
  if (len)
    memcpy(call->optval + *used, val, len);
  *used += len;
  return 0;
}

static int resolve(const struct ck_uri *u, struct ck_addr *out)
{
  char host[300];
  int n = ck_uri_pct_decode(u->host, u->host_len, host, sizeof host - 1);
  if (n < 0)
    return n;
  host[n] = '\0';
  if (ck_addr_parse(out, host, u->port) == 0)
    return 0;
  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
    return CK_EURI_HOST;
  memset(out, 0, sizeof *out);
  memcpy(&out->u, res->ai_addr, res->ai_addrlen);
  out->len = res->ai_addrlen;
  if (out->u.sa.sa_family == AF_INET6)
    out->u.in6.sin6_port = htons(u->port);
  else
    out->u.in4.sin_port = htons(u->port);
  freeaddrinfo(res);
  return 0;
}

/* Copies the request into the call's template. */
static int make_template(struct ck_call *call, const struct ck_req *req,
                         const struct ck_uri *u)
{
  size_t cap = 1024;
  for (size_t i = 0; i < req->nopts; i++)
    cap += req->opts[i].len;
  call->optval = malloc(cap);
  if (!call->optval)
    return CK_ENOMEM;
  struct ck_opt uo[32];
  uint8_t scratch[1024];
  int n = ck_uri_opts(u, uo, 32, scratch, sizeof scratch);
  if (n < 0)
    return n;
  size_t used = 0;
  int rc = 0;
  /* RFC 7252 §6.4 step 7: Uri-Port only when it differs from the
   * destination port, and we always send to the URI's own port. */
  for (int i = 0; i < n && rc == 0; i++)
    if (uo[i].num != CK_OPT_URI_PORT)
      rc = add_opt(call, &used, cap, uo[i].num, uo[i].val, uo[i].len);
  uint8_t b[4];
  if (rc == 0 && req->content_format >= 0)
    rc = add_opt(call, &used, cap, CK_OPT_CONTENT_FORMAT, b,
                 ck_opt_uint_encode((uint32_t)req->content_format, b));
  if (rc == 0 && req->accept >= 0)
    rc = add_opt(call, &used, cap, CK_OPT_ACCEPT, b,
                 ck_opt_uint_encode((uint32_t)req->accept, b));
  for (size_t i = 0; i < req->nopts && rc == 0; i++)
    rc = add_opt(call, &used, cap, req->opts[i].num, req->opts[i].val,
                 req->opts[i].len);
  if (rc < 0)
    return rc;
  if (req->payload_len) {
    call->payload = malloc(req->payload_len);
    if (!call->payload)
      return CK_ENOMEM;
    memcpy(call->payload, req->payload, req->payload_len);
    call->payload_len = req->payload_len;
  }
  return 0;
}

static void call_free(struct ck_call *call)
{
  free(call->optval);
  free(call->payload);
  free(call->body);
  free(call);
}

static unsigned active_to(const struct ck_client *c, const struct ck_addr *p)
{
  unsigned n = 0;
  for (const struct ck_call *x = c->calls; x; x = x->next)
    if (!x->queued && !x->done && !x->non && !x->multicast &&
        !x->registered && ck_addr_equal(&x->peer, p))
      n++;
  return n;
}

/* RFC 7252 §4.7: at most NSTART interactions in flight per server; the
 * oldest queued call for a peer starts when a slot frees up. */
static void start_queued(struct ck_client *c, const struct ck_addr *peer)
{
  struct ck_call *oldest = NULL;
  /* Never one that is finishing: its final callback may end another
   * call, whose finish() lands here, and sending it then would leave a
   * live CON behind when it is freed. */
  for (struct ck_call *x = c->calls; x; x = x->next)
    if (x->queued && !x->done && ck_addr_equal(&x->peer, peer))
      oldest = x; /* the list is newest first */
  if (oldest && active_to(c, peer) < c->cfg.nstart) {
    oldest->queued = false;
    oldest->t_first = ck__loop_now(&c->ctx->loop);
    int rc = transmit(oldest);
    if (rc < 0)
      finish(oldest, rc, NULL, NULL);
  }
}

int ck_client_send(struct ck_client *c, const struct ck_req *req,
                   ck_resp_cb cb, void *user, struct ck_call **out)
{
  if (!c || !req || !req->uri || !cb || req->method > CK_IPATCH ||
      (req->token && req->token_len > CK_TOKEN_MAX))
    return CK_EINVAL;
  struct ck_uri u;
  int rc = ck_uri_parse(&u, req->uri, strlen(req->uri));
  if (rc < 0)
    return rc;
  if (u.scheme != CK_SCHEME_COAP)
    return CK_EURI_SCHEME; /* coaps arrives with the DTLS transport */
  struct ck_call *call = calloc(1, sizeof *call);
  if (!call)
    return CK_ENOMEM;
  call->cl = c;
  call->cb = cb;
  call->user = user;
  call->method = req->method;
  call->ping = req->method == CK_CODE_EMPTY;
  call->non = req->non;
  call->observe = req->observe &&
                  (req->method == CK_GET || req->method == CK_FETCH);
  if ((rc = resolve(&u, &call->peer)) < 0 ||
      (rc = endpoint(c, call->peer.u.sa.sa_family, &call->ep)) < 0 ||
      (!call->ping && (rc = make_template(call, req, &u)) < 0)) {
    call_free(call);
    return rc;
  }
  call->multicast = ck_addr_is_multicast(&call->peer);
  if (call->multicast) {
    /* RFC 7252 §8.1: multicast requests are NON and not observed. */
    call->non = true;
    call->observe = false;
  }
  if (req->token) {
    memcpy(call->token, req->token, req->token_len);
    call->tkl = (uint8_t)req->token_len;
  } else if (!call->ping) {
    /* RFC 7252 §5.3.1 and RFC 9175 §4.2: unguessable tokens. */
    call->tkl = c->cfg.min_token_len;
    ck__random(c->ctx, call->token, call->tkl);
  }
  uint16_t bs = req->block_size ? req->block_size : c->cfg.block_size;
  int szx = ck_block_szx(bs);
  if (szx < 0) {
    call_free(call);
    return CK_EINVAL;
  }
  call->szx1 = call->szx2 = (uint8_t)szx;
  call->explicit_block = bs != 1024;
  call->uploading = call->payload_len > CK_BLOCK_SIZE(call->szx1);
  ck__random(c->ctx, call->req_tag, sizeof call->req_tag);

  call->next = c->calls;
  if (c->calls)
    c->calls->prev = call;
  c->calls = call;
  c->stats.requests++;
  /* Called from outside the loop, perhaps long after it last read the
   * clock: timeouts and the RTT count from now, not from then. */
  ck__loop_update(&c->ctx->loop);
  call->t_first = ck__loop_now(&c->ctx->loop);
  /* The call counts itself: queue when others already fill NSTART. */
  if (!call->non && !call->multicast &&
      active_to(c, &call->peer) > c->cfg.nstart)
    call->queued = true;
  if (!call->queued) {
    rc = transmit(call);
    if (rc < 0) {
      /* Nothing went out: undo, and cb never fires. */
      if (call->prev)
        call->prev->next = call->next;
      else
        c->calls = call->next;
      if (call->next)
        call->next->prev = call->prev;
      call_free(call);
      return rc;
    }
  }
  if (out)
    *out = call;
  return 0;
}

/* --- transmission --- */

static void on_timer(struct ck__timer *t);
static void on_con(struct ck_ctx *ctx, void *user, int result,
                   const struct ck_msg *ack);

struct send_opts {
  const uint8_t *token;
  uint8_t tkl;
  uint8_t method;
  int observe;      /* -1: none */
  bool block1;      /* send block up_num of the upload */
  bool block2;      /* ask for block down_num */
  bool payload;     /* carry the payload (or the Block1 slice) */
};

static int build(struct ck_call *call, uint8_t *buf, size_t cap, uint8_t type,
                 uint16_t mid, const struct send_opts *so)
{
  struct ck_builder b;
  ck_builder_init(&b, buf, cap, (enum ck_type)type, so->method, mid);
  ck_builder_token(&b, so->token, so->tkl);
  for (unsigned i = 0; i < call->nopts; i++)
    ck_builder_opt(&b, call->opts[i].num, call->optval + call->opts[i].off,
                   call->opts[i].len);
  if (so->observe >= 0)
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, (uint32_t)so->observe);
  const uint8_t *pl = call->payload;
  size_t plen = so->payload ? call->payload_len : 0;
  if (so->block1) {
    size_t bs = CK_BLOCK_SIZE(call->szx1);
    size_t off = (size_t)call->up_num * bs;
    struct ck_block blk = {.num = call->up_num, .szx = call->szx1};
    blk.more = off + bs < call->payload_len;
    uint32_t v;
    ck_block_encode(&blk, &v);
    ck_builder_opt_uint(&b, CK_OPT_BLOCK1, v);
    if (call->up_num == 0)
      ck_builder_opt_uint(&b, CK_OPT_SIZE1, (uint32_t)call->payload_len);
    /* RFC 9175 §3.3: a Request-Tag keeps concurrent uploads to one
     * server apart. */
    ck_builder_opt(&b, CK_OPT_REQUEST_TAG, call->req_tag,
                   sizeof call->req_tag);
    pl += off;
    plen = blk.more ? bs : call->payload_len - off;
  }
  if (so->block2) {
    struct ck_block blk = {.num = call->down_num, .szx = call->szx2};
    uint32_t v;
    ck_block_encode(&blk, &v);
    ck_builder_opt_uint(&b, CK_OPT_BLOCK2, v);
  }
  ck_builder_payload(&b, pl, plen);
  return ck_builder_finish(&b);
}

static int send_msg(struct ck_call *call, const struct send_opts *so)
{
  struct ck_client *c = call->cl;
  struct ck_ctx *ctx = c->ctx;
  uint8_t buf[CK__DGRAM_MAX];
  bool con = !call->non && !call->multicast;
  uint16_t mid = ck__next_mid(ctx);
  int n;
  if (call->ping) {
    uint8_t ping[4] = {CK_VERSION << 6 | CK_TYPE_CON << 4, 0,
                       (uint8_t)(mid >> 8), (uint8_t)mid};
    memcpy(buf, ping, 4);
    n = 4;
  } else {
    n = build(call, buf, sizeof buf, con ? CK_TYPE_CON : CK_TYPE_NON, mid, so);
    if (n < 0)
      return n;
  }
  call->mid = mid;
  if (con) {
    if (call->con)
      ck__con_cancel(ctx, call->con);
    call->con = ck__con_send(ctx, call->ep, &call->peer, buf, (size_t)n,
                             &c->cfg.params, on_con, call);
    if (!call->con)
      return CK_ENOMEM;
    ck__con_count_into(call->con, &c->stats.retransmits);
  } else {
    ck__ep_send(call->ep, &call->peer, buf, (size_t)n);
    /* A NON request has no ACK: wait as long as a CON could take
     * (MAX_TRANSMIT_WAIT), or the multicast response window. */
    const struct ck_params *p = &c->cfg.params;
    uint64_t wait = call->multicast
                      ? c->cfg.max_server_response_delay_ms
                      : ck_params_max_transmit_span(p) * 2 +
                          p->ack_timeout_ms;
    call->waiting = true;
    ck__timer_start(&ctx->loop, &call->timer, wait, on_timer);
  }
  return 0;
}

/* The next message of the call as its state says: an upload block, a
 * download block, or the plain request. */
static int transmit(struct ck_call *call)
{
  struct send_opts so = {.token = call->token,
                         .tkl = call->tkl,
                         .method = call->method,
                         .observe = -1,
                         .payload = true};
  if (call->cancelling) {
    so.observe = 1;
    so.payload = call->method == CK_FETCH;
  } else if (call->uploading) {
    so.block1 = true;
    so.observe = call->observe ? 0 : -1;
  } else if (call->downloading) {
    so.block2 = true;
    /* RFC 7959 §2.4: later blocks are asked for without Observe, and
     * after a notification with a token of their own (§3.4). */
    if (call->registered) {
      so.token = call->alt_token;
      so.tkl = call->alt_tkl;
      so.method = call->method == CK_FETCH ? CK_FETCH : CK_GET;
    }
    so.payload = call->method == CK_FETCH;
  } else {
    so.observe = call->observe ? 0 : -1;
    /* Early negotiation (§2.4): a non-default size is asked for at once. */
    so.block2 = call->explicit_block &&
                (call->method == CK_GET || call->method == CK_FETCH);
  }
  return send_msg(call, &so);
}

/* --- answers --- */

static void deliver(struct ck_call *call, const struct ck_msg *m,
                    const struct ck_addr *from, const uint8_t *body,
                    size_t body_len, bool final, int err)
{
  struct ck_resp r = {.err = err,
                      .final = final,
                      .code = m ? m->code : 0,
                      .msg = m,
                      .body = body,
                      .body_len = body_len,
                      .peer = from ? from : &call->peer};
  uint32_t obs;
  if (m && call->pending_has_seq) {
    r.has_observe = true;
    r.observe = call->pending_seq;
  } else if (m && ck_msg_opt_uint(m, CK_OPT_OBSERVE, &obs) == 0) {
    r.has_observe = true;
    r.observe = obs;
  }
  r.rtt_ms = ck__loop_now(&call->cl->ctx->loop) - call->t_first;
  call->in_cb = true;
  call->cb(call, &r, call->user);
  call->in_cb = false;
}

static void unlink_call(struct ck_call *call)
{
  struct ck_client *c = call->cl;
  if (call->prev)
    call->prev->next = call->next;
  else
    c->calls = call->next;
  if (call->next)
    call->next->prev = call->prev;
}

static void finish(struct ck_call *call, int err, const struct ck_msg *m,
                   const struct ck_addr *from)
{
  if (call->done)
    return;
  struct ck_client *c = call->cl;
  struct ck_ctx *ctx = c->ctx;
  call->done = true;
  ck__timer_stop(&ctx->loop, &call->timer);
  if (call->con) {
    ck__con_cancel(ctx, call->con);
    call->con = NULL;
  }
  const uint8_t *body = NULL;
  size_t len = 0;
  if (m && !err) {
    body = call->body_len ? call->body : m->payload;
    len = call->body_len ? call->body_len : m->payload_len;
  }
  deliver(call, err ? NULL : m, from, body, len, true, err);
  struct ck_addr peer = call->peer;
  unlink_call(call);
  call_free(call);
  start_queued(c, &peer);
}

/* RFC 7641 §3.4: is notification v (received at t) newer than the last? */
static bool fresher(const struct ck_call *call, uint32_t v, uint64_t t)
{
  if (!call->has_seq)
    return true;
  uint32_t v1 = call->seq;
  return (v1 < v && v - v1 < (1u << 23)) || (v1 > v && v1 - v > (1u << 23)) ||
         t > call->seq_time + 128000;
}

static void arm_reregister(struct ck_call *call, const struct ck_msg *m)
{
  uint32_t max_age = 60;
  ck_msg_opt_uint(m, CK_OPT_MAX_AGE, &max_age);
  ck__timer_start(&call->cl->ctx->loop, &call->timer,
                  (uint64_t)max_age * 1000 + REREGISTER_SLACK_MS, on_timer);
}

static int append_body(struct ck_call *call, const uint8_t *p, size_t n)
{
  if (n == 0)
    return 0; /* an empty block: body and p may both be NULL */
  size_t need = call->body_len + n;
  if (need > call->cl->cfg.max_body)
    return CK_EFULL;
  if (need > call->body_cap) {
    size_t cap = call->body_cap ? call->body_cap : 4096;
    while (cap < need)
      cap *= 2;
    uint8_t *nb = realloc(call->body, cap);
    if (!nb)
      return CK_ENOMEM;
    call->body = nb;
    call->body_cap = cap;
  }
  memcpy(call->body + call->body_len, p, n);
  call->body_len = need;
  return 0;
}

/* Handles one response to the call (from an ACK, a separate response, a
 * NON response or a notification). */
static void handle_response(struct ck_call *call, const struct ck_msg *m,
                            const struct ck_addr *from)
{
  struct ck_client *c = call->cl;
  struct ck_ctx *ctx = c->ctx;
  call->waiting = false;
  if (!call->multicast)
    ck__timer_stop(&ctx->loop, &call->timer);
  if (call->ping) {
    finish(call, 0, m, from);
    return;
  }
  if (call->cancelling) {
    finish(call, CK_ECANCELED, NULL, from);
    return;
  }
  uint32_t v;
  struct ck_block blk;

  if (call->uploading) {
    if (m->code == CK_CONTINUE &&
        ck_msg_opt_uint(m, CK_OPT_BLOCK1, &v) == 0 &&
        ck_block_decode(v, &blk) == 0) {
      /* §2.5: the server may ask for smaller blocks from here on. */
      if (blk.szx < call->szx1) {
        call->up_num = (uint32_t)(((size_t)call->up_num + 1) *
                                  CK_BLOCK_SIZE(call->szx1) /
                                  CK_BLOCK_SIZE(blk.szx));
        call->szx1 = blk.szx;
      } else {
        call->up_num++;
      }
      int rc = transmit(call);
      if (rc < 0)
        finish(call, rc, NULL, NULL);
      return;
    }
    if (m->code == CK_REQUEST_ENTITY_TOO_LARGE && call->szx1 > 0 &&
        call->up_num == 0) {
      /* §2.9.3: start over with the size the server names, or smaller. */
      uint8_t szx = (uint8_t)(call->szx1 - 1);
      if (ck_msg_opt_uint(m, CK_OPT_BLOCK1, &v) == 0 &&
          ck_block_decode(v, &blk) == 0 && blk.szx < call->szx1)
        szx = blk.szx;
      call->szx1 = szx;
      int rc = transmit(call);
      if (rc < 0)
        finish(call, rc, NULL, NULL);
      return;
    }
    call->uploading = false;
  }

  bool is_obs = call->observe && CK_CODE_CLASS(m->code) == 2 &&
                ck_msg_opt_count(m, CK_OPT_OBSERVE) > 0 && !call->downloading;
  if (is_obs) {
    uint32_t seq = 0;
    ck_msg_opt_uint(m, CK_OPT_OBSERVE, &seq);
    uint64_t now = ck__loop_now(&ctx->loop);
    if (!fresher(call, seq, now)) {
      c->stats.notifications_stale++;
      return;
    }
    bool first = !call->registered;
    call->has_seq = true;
    call->seq = seq;
    call->seq_time = now;
    call->registered = true;
    if (!first)
      c->stats.notifications++;
    arm_reregister(call, m);
    call->pending_has_seq = true;
    call->pending_seq = seq;
    call->body_len = 0;
    if (first)
      start_queued(c, &call->peer);
  }

  if (ck_msg_opt_uint(m, CK_OPT_BLOCK2, &v) == 0 &&
      ck_block_decode(v, &blk) == 0 &&
      (blk.more || blk.num > 0 || call->downloading)) {
    size_t bs = CK_BLOCK_SIZE(blk.szx);
    struct ck_opt etag = {.len = 0};
    ck_msg_opt(m, CK_OPT_ETAG, &etag);
    if (blk.num == 0) {
      call->body_len = 0;
      call->etag_len = (uint8_t)(etag.len <= 8 ? etag.len : 0);
      if (call->etag_len)
        memcpy(call->etag, etag.val, call->etag_len);
      uint32_t size2;
      if (ck_msg_opt_uint(m, CK_OPT_SIZE2, &size2) == 0 &&
          size2 > c->cfg.max_body) {
        finish(call, CK_EFULL, NULL, NULL);
        return;
      }
    } else if ((size_t)blk.num * bs != call->body_len ||
               (call->etag_len &&
                (etag.len != call->etag_len ||
                 memcmp(etag.val, call->etag, etag.len) != 0))) {
      /* §2.4: a block that does not continue what we have, or from a
       * changed representation. */
      finish(call, CK_EBADRESP, NULL, NULL);
      return;
    }
    int rc = append_body(call, m->payload, m->payload_len);
    if (rc < 0) {
      finish(call, rc, NULL, NULL);
      return;
    }
    if (blk.more) {
      call->downloading = true;
      call->down_num = blk.num + 1;
      call->szx2 = blk.szx;
      if (call->registered && !call->alt_tkl) {
        call->alt_tkl = call->tkl ? call->tkl : 4;
        ck__random(ctx, call->alt_token, call->alt_tkl);
      }
      rc = transmit(call);
      if (rc < 0)
        finish(call, rc, NULL, NULL);
      return;
    }
    call->downloading = false;
  } else if (!call->downloading) {
    call->body_len = 0;
  }

  if (call->observe && call->registered) {
    if (CK_CODE_CLASS(m->code) != 2) {
      /* RFC 7641 §3.2: an error ends the observation. */
      finish(call, 0, m, from);
      return;
    }
    const uint8_t *body = call->body_len ? call->body : m->payload;
    size_t len = call->body_len ? call->body_len : m->payload_len;
    deliver(call, m, from, body, len, false, 0);
    call->pending_has_seq = false;
    call->body_len = 0;
    if (call->cancel_pending) {
      call->cancel_pending = false;
      ck_call_cancel(call, call->cancel_proactive);
    }
    return;
  }
  if (call->multicast) {
    const uint8_t *body = call->body_len ? call->body : m->payload;
    size_t len = call->body_len ? call->body_len : m->payload_len;
    deliver(call, m, from, body, len, false, 0);
    call->body_len = 0;
    if (call->cancel_pending)
      finish(call, CK_ECANCELED, NULL, NULL);
    return;
  }
  finish(call, 0, m, from);
}

static void on_con(struct ck_ctx *ctx, void *user, int result,
                   const struct ck_msg *ack)
{
  struct ck_call *call = user;
  (void)ctx;
  call->con = NULL;
  if (result == CK_ECANCELED)
    return; /* the context is closing; ck_client_free() reports it */
  if (ack)
    trace_in(call->cl, &call->peer, ack);
  if (result < 0) {
    if (call->ping && result == CK_ERESET) {
      finish(call, 0, NULL, &call->peer); /* §4.3: RST answers a ping */
      return;
    }
    if (call->cancelling) {
      finish(call, CK_ECANCELED, NULL, NULL);
      return;
    }
    finish(call, result, NULL, NULL);
    return;
  }
  if (ack->code == CK_CODE_EMPTY) {
    if (call->ping) {
      finish(call, 0, ack, &call->peer);
      return;
    }
    /* §5.2.2: the answer comes later as its own message. */
    call->waiting = true;
    ck__timer_start(&ctx->loop, &call->timer, ctx->exchange_lifetime,
                    on_timer);
    return;
  }
  handle_response(call, ack, &call->peer);
}

static void on_timer(struct ck__timer *t)
{
  struct ck_call *call = (struct ck_call *)t;
  if (call->multicast) {
    /* RFC 7390 §2.7: the response window has closed. */
    finish(call, 0, NULL, NULL);
    return;
  }
  if (call->registered && !call->waiting && !call->downloading) {
    /* RFC 7641 §3.3.1: Max-Age ran out without a notification. */
    int rc = transmit(call);
    if (rc < 0)
      finish(call, rc, NULL, NULL);
    return;
  }
  finish(call, CK_ETIMEDOUT, NULL, NULL);
}

/* --- input from the messaging layer --- */

static struct ck_call *match(struct ck_ctx *ctx, const struct ck_addr *from,
                             const struct ck_msg *m)
{
  for (struct ck_client *c = ctx->clients; c; c = c->next)
    for (struct ck_call *x = c->calls; x; x = x->next) {
      if (x->done || x->queued || x->ping)
        continue;
      bool tok = (x->tkl == m->tkl && memcmp(x->token, m->token, m->tkl) == 0) ||
                 (x->alt_tkl && x->alt_tkl == m->tkl &&
                  memcmp(x->alt_token, m->token, m->tkl) == 0);
      /* §5.3.2: the token and the endpoint must both match; a group
       * request is answered by members' own addresses. */
      if (tok && (x->multicast || ck_addr_equal(&x->peer, from)))
        return x;
    }
  return NULL;
}

bool ck__client_input(struct ck_ctx *ctx, struct ck__ep *ep,
                      const struct ck_addr *from, const struct ck_msg *m)
{
  for (struct ck_client *c = ctx->clients; c; c = c->next)
    if (c->ep4 == ep || c->ep6 == ep)
      trace_in(c, from, m);
  struct ck_call *call = match(ctx, from, m);
  if (!call) {
    /* The message belongs to no client in particular: every client of
     * the context counts it. */
    for (struct ck_client *c = ctx->clients; c; c = c->next)
      c->stats.rejected++;
    return false;
  }
  /* Remember the message so that its retransmissions are answered the
   * same way and not delivered twice (§4.5). */
  int err;
  struct ck__dd_entry *dd =
    ck__dedup_add(ctx, from, m->mid, false,
                  m->type == CK_TYPE_CON ? ctx->exchange_lifetime
                                         : ctx->non_lifetime,
                  &err);
  if (m->type == CK_TYPE_CON) {
    uint8_t ack[4] = {CK_VERSION << 6 | CK_TYPE_ACK << 4, 0,
                      (uint8_t)(m->mid >> 8), (uint8_t)m->mid};
    ck__ep_send(ep, from, ack, sizeof ack);
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
  handle_response(call, m, from);
  return true;
}

void ck__client_rst(struct ck_ctx *ctx, const struct ck_addr *from,
                    uint16_t mid)
{
  for (struct ck_client *c = ctx->clients; c; c = c->next)
    for (struct ck_call *x = c->calls; x; x = x->next)
      if (!x->done && x->waiting && x->mid == mid &&
          ck_addr_equal(&x->peer, from)) {
        if (c->cfg.trace) {
          uint8_t rst[4] = {CK_VERSION << 6 | CK_TYPE_RST << 4, 0,
                            (uint8_t)(mid >> 8), (uint8_t)mid};
          struct ck_msg m;
          if (ck_msg_parse(&m, rst, sizeof rst) == 0)
            trace_in(c, from, &m);
        }
        finish(x, CK_ERESET, NULL, NULL);
        return;
      }
}

void ck__client_icmp(struct ck_ctx *ctx, const struct ck_addr *peer, int err)
{
  /* CON calls fail through their pending transmission... */
  ck__con_fail_peer(ctx, peer, err);
  /* ...and NON calls waiting for that peer directly. A final callback
   * may cancel other calls (freeing them) or start new ones, so no list
   * pointer survives a finish(): mark the calls this error concerns, then
   * finish the marked ones one at a time, each found afresh. */
  for (struct ck_client *c = ctx->clients; c; c = c->next)
    for (struct ck_call *x = c->calls; x; x = x->next)
      x->unreach = !x->done && !x->multicast && x->waiting &&
                   ck_addr_equal(&x->peer, peer);
  for (;;) {
    struct ck_call *x = NULL;
    for (struct ck_client *c = ctx->clients; c && !x; c = c->next)
      for (x = c->calls; x && !x->unreach; x = x->next)
        ;
    if (!x)
      return;
    x->unreach = false;
    finish(x, err, NULL, NULL);
  }
}

/* --- cancel and accessors --- */

void ck_call_cancel(struct ck_call *call, bool proactive)
{
  if (!call || call->done || call->cancelling)
    return;
  if (call->in_cb) {
    /* Cancelling from inside the call's own callback: act after it. */
    call->cancel_pending = true;
    call->cancel_proactive = proactive;
    return;
  }
  if (call->observe && call->registered && proactive) {
    call->cancelling = true;
    call->downloading = false;
    ck__timer_stop(&call->cl->ctx->loop, &call->timer);
    if (transmit(call) == 0)
      return;
  }
  finish(call, CK_ECANCELED, NULL, NULL);
}

size_t ck_call_token(const struct ck_call *call, uint8_t out[8])
{
  if (!call || !out)
    return 0;
  memcpy(out, call->token, call->tkl);
  return call->tkl;
}

uint16_t ck_call_mid(const struct ck_call *call)
{
  if (!call)
    return 0;
  return call->mid;
}

/* --- blocking form --- */

struct waiter {
  bool done;
  struct ck_result *out;
};

static void on_result(struct ck_call *call, const struct ck_resp *r,
                      void *user)
{
  (void)call;
  struct waiter *w = user;
  struct ck_result *out = w->out;
  if (!r->final)
    return;
  w->done = true;
  out->err = r->err;
  out->code = r->code;
  out->rtt_ms = r->rtt_ms;
  if (r->peer)
    out->peer = *r->peer;
  if (r->msg) {
    out->raw = malloc(r->msg->len);
    if (out->raw) {
      memcpy(out->raw, r->msg->data, r->msg->len);
      out->has_msg = ck_msg_parse(&out->msg, out->raw, r->msg->len) == 0;
    }
  }
  if (r->body_len) {
    out->body = malloc(r->body_len);
    if (out->body) {
      memcpy(out->body, r->body, r->body_len);
      out->body_len = r->body_len;
    } else {
      out->err = CK_ENOMEM;
    }
  }
}

int ck_client_do(struct ck_client *c, const struct ck_req *req,
                 struct ck_result *out)
{
  if (!out)
    return CK_EINVAL;
  memset(out, 0, sizeof *out);
  if (!c)
    return out->err = CK_EINVAL;
  if (req && req->observe)
    return out->err = CK_EINVAL;
  struct waiter w = {.done = false, .out = out};
  int rc = ck_client_send(c, req, on_result, &w, NULL);
  if (rc < 0)
    return out->err = rc;
  /* Bounded: every call ends by its own timers at the latest. */
  while (!w.done) {
    rc = ck_ctx_process(c->ctx, -1);
    if (rc < 0)
      return out->err = rc;
  }
  return out->err;
}

void ck_result_free(struct ck_result *r)
{
  if (!r)
    return;
  free(r->raw);
  free(r->body);
  r->raw = NULL;
  r->body = NULL;
}
