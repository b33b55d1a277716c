/* The client: clients and their endpoints, and calls (one request and
 * its answers) from ck_client_send() to the final callback.
 *
 * A host name in the URI is resolved on the loop (resolve.h), never
 * blocking it: the call waits in state RESOLVING, then tries the name's
 * addresses in turn until one answers ("addresses" below). A literal
 * address is sent to at once.
 *
 * A call keeps its request as a template (options and payload) so that
 * it can send it again with other Block1/Block2/Observe values:
 * block-wise uploads (RFC 7959 §2.5) and downloads (§2.4),
 * re-registration of an observation (RFC 7641 §3.3.1) and its proactive
 * cancel (§3.6) are all "the same request once more" (client_tx.c). At
 * most NSTART calls per server are in flight (RFC 7252 §4.7); the others
 * wait in state QUEUED. A call ends exactly once, in ck__call_finish(),
 * which fires the final callback, frees the call and starts a queued one.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "client_call.h"
#include "coapkit/cf.h"
#include "coapkit/uri.h"
#include "dtls.h"

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
  /* Loaded now, so that a wrong file is the caller's error at once;
   * without them, loaded on the first coaps:// call. */
  c->cfg.dtls = NULL;
  int rc;
  if (cfg && cfg->dtls && (rc = ck__tls_creds_new(cfg->dtls, false,
                                                  &c->creds)) < 0) {
    free(c);
    return rc;
  }
  c->params_short = *p;
  c->params_short.max_retransmit = 0;
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
    ck__call_finish(c->calls, CK_ECANCELED, NULL, NULL);
  ck__tokens_free(c);
  ck__trace_remove(c->ep4, &c->trace4);
  ck__trace_remove(c->ep6, &c->trace6);
  ck__trace_remove(c->dep4, &c->dtrace4);
  ck__trace_remove(c->dep6, &c->dtrace6);
  struct ck_client **pp = &c->ctx->clients;
  while (*pp && *pp != c)
    pp = &(*pp)->next;
  if (*pp)
    *pp = c->next;
  /* Its sockets go with it: a long-lived context that creates and frees
   * clients must not collect them. No CON of its calls is pending any
   * more (finishing cancelled them). */
  struct ck__ep *eps[4] = {c->ep4, c->ep6, c->dep4, c->dep6};
  for (int i = 0; i < 4; i++) {
    if (!eps[i])
      continue;
    struct ck__ep **ep = &c->ctx->eps;
    while (*ep && *ep != eps[i])
      ep = &(*ep)->next;
    if (*ep)
      *ep = eps[i]->next;
    eps[i]->tp->flush(eps[i]);
    eps[i]->tp->free(eps[i]);
  }
  ck__tls_creds_free(c->creds); /* after the sessions that used them */
  free(c);
}

int ck_client_disconnect(struct ck_client *c, const struct ck_dtls_config *cfg)
{
  if (!c)
    return CK_EINVAL;
  struct ck__tls_creds *cr = NULL;
  int rc;
  if (cfg && (rc = ck__tls_creds_new(cfg, false, &cr)) < 0)
    return rc;
  if (c->dep4)
    ck__dtls_disconnect(c->dep4, cr);
  if (c->dep6)
    ck__dtls_disconnect(c->dep6, cr);
  if (cr) {
    ck__tls_creds_free(c->creds);
    c->creds = cr;
  }
  return 0;
}

void ck_client_stats(const struct ck_client *c, struct ck_client_stats *out)
{
  if (!c || !out)
    return;
  *out = c->stats;
}

/* A coaps:// endpoint: the same ephemeral socket with the DTLS
 * transport, whose sessions use the client's credentials. */
static int dtls_endpoint(struct ck_client *c, int family, struct ck__ep **out)
{
  int rc;
  if (!c->creds && (rc = ck__tls_creds_new(NULL, false, &c->creds)) < 0)
    return rc;
  struct ck_addr any;
  ck_addr_parse(&any, family == AF_INET6 ? "[::]:0" : "0.0.0.0:0", 0);
  if ((rc = ck__dtls_open(c->ctx, &any, c->creds, true, out)) < 0)
    return rc;
  for (size_t i = 0; i < 4 && c->cfg.sockopts[i].level; i++)
    (void)setsockopt((*out)->io.fd, c->cfg.sockopts[i].level,
                     c->cfg.sockopts[i].name, &c->cfg.sockopts[i].value,
                     sizeof c->cfg.sockopts[i].value);
  return 0;
}

static int endpoint(struct ck_client *c, int family, bool secure,
                    struct ck__ep **out)
{
  bool v6 = family == AF_INET6;
  struct ck__ep **slot = secure ? (v6 ? &c->dep6 : &c->dep4)
                                : (v6 ? &c->ep6 : &c->ep4);
  if (!*slot) {
    struct ck__ep *ep;
    size_t n = 0;
    while (n < 4 && c->cfg.sockopts[n].level)
      n++;
    int rc = secure ? dtls_endpoint(c, family, &ep)
                    : ck__udp_open_client(c->ctx, family, c->cfg.sockopts, n,
                                          &ep);
    if (rc < 0)
      return rc;
    ep->next = c->ctx->eps;
    c->ctx->eps = ep;
    *slot = ep;
    if (c->cfg.trace)
      ck__trace_install(c, ep,
                        secure ? (v6 ? &c->dtrace6 : &c->dtrace4)
                               : (v6 ? &c->trace6 : &c->trace4));
  }
  *out = *slot;
  return 0;
}

/* --- requests --- */

void ck_client_request_init(struct ck_client_request *r, uint8_t method,
                            const char *uri)
{
  if (!r)
    return;
  memset(r, 0, sizeof *r);
  r->method = method;
  r->uri = uri;
}

static int add_opt(struct ck_call *call, size_t *used, size_t cap,
                   uint16_t num, const void *val, size_t len)
{
  if (call->nopts >= CK__TMPL_OPTS || len > cap - *used)
    return CK_EOPT_TOOMANY;
  struct ck__tmpl_opt *o = &call->opts[call->nopts++];
  o->num = num;
  o->len = (uint16_t)len;
  o->off = (uint32_t)*used;
  if (len)
    memcpy(call->optval + *used, val, len);
  *used += len;
  return 0;
}

/* The URI's host as text (percent-decoded), for ck_addr_parse() or the
 * resolver. RFC 1035 §2.3.4: a name is at most 253 characters as text;
 * an IPv6 literal with a zone is shorter. */
static int host_text(const struct ck_uri *u, char *out, size_t cap)
{
  int n = ck_uri_pct_decode(u->host, u->host_len, out, cap - 1);
  if (n < 0)
    return n;
  if (n == 0 || n > 253)
    return CK_EURI_HOST;
  out[n] = '\0';
  return 0;
}

/* Copies the request into the call's template. */
static int make_template(struct ck_call *call,
                         const struct ck_client_request *req,
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
  if (rc == 0 && req->has_content_format)
    rc = add_opt(call, &used, cap, CK_OPT_CONTENT_FORMAT, b,
                 ck_opt_uint_encode(req->content_format, b));
  if (rc == 0 && req->has_accept)
    rc = add_opt(call, &used, cap, CK_OPT_ACCEPT, b,
                 ck_opt_uint_encode(req->accept, b));
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
  free(call->host);
  free(call);
}

static void link_call(struct ck_client *c, struct ck_call *call)
{
  call->next = c->calls;
  call->prev = NULL;
  if (c->calls)
    c->calls->prev = call;
  c->calls = call;
  if (!call->ping)
    ck__tokens_add(c, &call->tok);
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
  ck__tokens_del(c, &call->tok);
  ck__tokens_del(c, &call->alt);
}

/* The state a call starts in once it may send. */
static enum ck__call_state first_state(const struct ck_call *call)
{
  return call->payload_len > CK_BLOCK_SIZE(call->szx1) ? CK__CALL_UPLOADING
                                                       : CK__CALL_REQUESTING;
}

/* The CON calls in flight to p, for NSTART. A registered observation
 * does not count: it may last forever. Nor does a call still resolving
 * its host: it has no server yet, and sends nothing; it joins the count
 * (or the queue) of the address it is about to send to, and leaves it
 * when it moves on to its next address. */
static unsigned active_to(const struct ck_client *c, const struct ck_addr *p)
{
  unsigned n = 0;
  for (const struct ck_call *x = c->calls; x; x = x->next)
    if (x->state != CK__CALL_RESOLVING && x->state != CK__CALL_QUEUED &&
        x->state != CK__CALL_DONE && !x->non && !x->multicast &&
        !x->registered && ck_addr_equal(&x->peer, p))
      n++;
  return n;
}

/* RFC 7252 §4.7: at most NSTART interactions in flight per server; the
 * oldest queued call for a peer starts when a slot frees up. */
void ck__client_start_queued(struct ck_client *c, const struct ck_addr *peer)
{
  struct ck_call *oldest = NULL;
  for (struct ck_call *x = c->calls; x; x = x->next)
    if (x->state == CK__CALL_QUEUED && ck_addr_equal(&x->peer, peer))
      oldest = x; /* the list is newest first */
  if (oldest && active_to(c, peer) < c->cfg.nstart) {
    oldest->state = first_state(oldest);
    oldest->t_first = ck__loop_now(&c->ctx->loop);
    int rc = ck__call_transmit(oldest);
    if (rc < 0)
      ck__call_finish(oldest, rc, NULL, NULL);
  }
}

/* --- addresses ---
 *
 * A host name may have several addresses (resolve.h: up to
 * CK__RESOLVE_MAX_ADDRS, best first by RFC 6724). The call sends to
 * addrs[0]; when that exchange fails without a word from the address,
 * because an ICMP error said it is unreachable (CK_EUNREACH) or because
 * it never answered (CK_ETIMEDOUT), the call moves on to the next address
 * with a fresh Message ID, the endpoint of that address's family and its
 * timers started afresh (the token stays: it is the same request). It
 * fails only when the last address failed, with that address's error.
 * A response of any code or an RST is an answer, not a failure; so is
 * an empty ACK: once an address has answered anything the call stays
 * with it (moving on then could perform a non-idempotent request twice,
 * or lose a block-wise transfer or an observation half-way).
 *
 * How long an address gets: the last one (the only one, for a literal or
 * a name with one address) gets the whole exchange, MAX_RETRANSMIT
 * retransmissions of a CON or MAX_TRANSMIT_WAIT for a NON, as always.
 * Each address before it gets a short attempt: one transmission and
 * the first ACK timeout (a CON without retransmissions, a NON waits
 * ACK_TIMEOUT * ACK_RANDOM_FACTOR), 2 to 3 s with the defaults. A full
 * MAX_TRANSMIT_WAIT (93 s) per address would make a dead first address
 * cost a minute and a half; RFC 7252 §4.2's first timeout is the time in
 * which a live server is expected to answer, and a single lost datagram
 * costs only the move to the next address, which is most often the same
 * server under another family. ICMP errors skip an address at once. */

/* Keeps what the call may try: a multicast first address is the group
 * the call is for, alone (RFC 7252 §8.1: NON, not observed); multicast
 * addresses after a unicast one are dropped, as a unicast request cannot
 * move on to a group. */
static void take_addrs(struct ck_call *call, const struct ck_addr *a, size_t n)
{
  call->naddrs = 0;
  for (size_t i = 0; i < n && call->naddrs < CK__RESOLVE_MAX_ADDRS; i++)
    if (i == 0 || !ck_addr_is_multicast(&a[i]))
      call->addrs[call->naddrs++] = a[i];
  call->multicast = ck_addr_is_multicast(&call->addrs[0]);
  if (call->multicast) {
    call->naddrs = 1;
    call->non = true;
    call->observe = false;
  }
}

/* Sends the call to addrs[cur], or queues it there for NSTART. An
 * address of a family this host has no socket for (IPv6 disabled) is
 * skipped as if unreachable. Returns 0, or the error that ends the
 * call. */
static int aim(struct ck_call *call)
{
  struct ck_client *c = call->cl;
  int rc;
  for (;;) {
    call->peer = call->addrs[call->cur];
    rc = endpoint(c, call->peer.u.sa.sa_family, call->secure, &call->ep);
    if (rc == 0 && call->secure)
      rc = ck__dtls_connect(call->ep, &call->peer, call->host);
    if (rc == 0 || call->cur + 1 >= call->naddrs)
      break;
    call->cur++;
  }
  if (rc < 0)
    return rc;
  call->heard = false;
  call->t_first = ck__loop_now(&c->ctx->loop);
  /* The call counts itself: queue when others already fill NSTART. */
  call->state = first_state(call);
  if (!call->non && !call->multicast &&
      active_to(c, &call->peer) > c->cfg.nstart) {
    call->state = CK__CALL_QUEUED;
    return 0;
  }
  return ck__call_transmit(call);
}

static void on_resolved(void *user, int err, const struct ck_addr *addrs,
                        size_t n)
{
  struct ck_call *call = user;
  call->rreq = NULL;
  if (err == 0) {
    take_addrs(call, addrs, n);
    err = aim(call);
  }
  if (err < 0)
    ck__call_finish(call, err, NULL, NULL);
}

void ck__call_fail(struct ck_call *call, int err)
{
  if (ck__call_reregister_later(call, err))
    return;
  if ((err != CK_ETIMEDOUT && err != CK_EUNREACH) || !ck__call_short(call) ||
      call->state == CK__CALL_DONE || call->state == CK__CALL_CANCELLING) {
    ck__call_finish(call, err, NULL, NULL);
    return;
  }
  struct ck_client *c = call->cl;
  struct ck_addr left = call->peer;
  ck__timer_stop(&c->ctx->loop, &call->timer);
  if (call->con) {
    ck__con_cancel(c->ctx, call->con);
    call->con = NULL;
  }
  call->cur++;
  int rc = aim(call);
  if (rc < 0)
    ck__call_finish(call, rc, NULL, NULL);
  /* The call no longer counts at the address it left: a call queued
   * there may start. */
  ck__client_start_queued(c, &left);
}

int ck_client_send(struct ck_client *c, const struct ck_client_request *req,
                   ck_client_response_cb cb, void *user, struct ck_call **out)
{
  if (!c || !req || !req->uri || !cb || req->method > CK_IPATCH ||
      (req->token && req->token_len > CK_TOKEN_MAX) ||
      (req->payload_len && !req->payload) || (req->nopts && !req->opts))
    return CK_EINVAL;
  struct ck_uri u;
  int rc = ck_uri_parse(&u, req->uri, strlen(req->uri));
  if (rc < 0)
    return rc;
  struct ck_call *call = calloc(1, sizeof *call);
  if (!call)
    return CK_ENOMEM;
  call->secure = u.scheme == CK_SCHEME_COAPS;
  call->cl = c;
  call->cb = cb;
  call->user = user;
  call->ping = req->ping;
  /* A zeroed request is a GET; a ping is an empty message. */
  call->method = req->ping ? CK_CODE_EMPTY
                           : req->method ? req->method : CK_GET;
  call->non = req->non;
  call->observe = req->observe &&
                  (req->method == CK_GET || req->method == CK_FETCH);
  call->pending_seq = -1;
  call->tok.call = call->alt.call = call;
  char host[300];
  struct ck_addr lit;
  if ((rc = host_text(&u, host, sizeof host)) < 0 ||
      (!call->ping && (rc = make_template(call, req, &u)) < 0)) {
    call_free(call);
    return rc;
  }
  /* RFC 7252 §9.1.3.3: the server's certificate must name the URI's
   * host (an IPv6 literal without its brackets). */
  if (call->secure) {
    size_t hl = strlen(host);
    bool br = hl >= 2 && host[0] == '[' && host[hl - 1] == ']';
    call->host = br ? strndup(host + 1, hl - 2) : strdup(host);
    if (!call->host) {
      call_free(call);
      return CK_ENOMEM;
    }
  }
  /* A literal needs no resolver, and is sent at once. */
  bool literal = ck_addr_parse(&lit, host, u.port) == 0;
  if (literal)
    take_addrs(call, &lit, 1);
  if (req->token) {
    memcpy(call->tok.bytes, req->token, req->token_len);
    call->tok.len = (uint8_t)req->token_len;
  } else if (!call->ping) {
    /* RFC 7252 §5.3.1 and RFC 9175 §4.2: unguessable tokens. */
    call->tok.len = c->cfg.min_token_len;
    ck__random(c->ctx, call->tok.bytes, call->tok.len);
  }
  uint16_t bs = req->block_size ? req->block_size : c->cfg.block_size;
  int szx = ck_block_szx(bs);
  if (szx < 0) {
    call_free(call);
    return CK_EINVAL;
  }
  call->szx1 = call->szx2 = (uint8_t)szx;
  call->explicit_block = bs != 1024;
  ck__random(c->ctx, call->req_tag, sizeof call->req_tag);
  /* A name: the answer comes through on_resolved(), from the loop. What
   * goes wrong from here on reaches the final callback. */
  if (!literal &&
      (rc = ck__resolve_start(c->ctx, host, u.port, AF_UNSPEC, on_resolved,
                              call, &call->rreq)) < 0) {
    call_free(call);
    return rc;
  }

  link_call(c, call);
  c->stats.requests++;
  /* Called from outside the loop, perhaps long after it last read the
   * clock: timeouts and the RTT count from now, not from then. */
  ck__loop_update(&c->ctx->loop);
  call->t_first = ck__loop_now(&c->ctx->loop);
  call->state = CK__CALL_RESOLVING;
  if (literal && (rc = aim(call)) < 0) {
    /* Nothing went out: undo, and cb never fires. */
    ck__timer_stop(&c->ctx->loop, &call->timer);
    unlink_call(call);
    call_free(call);
    return rc;
  }
  if (out)
    *out = call;
  return 0;
}

/* --- the end of a call --- */

void ck__call_deliver(struct ck_call *call, const struct ck_msg *m,
                      const struct ck_addr *from, bool final, int err)
{
  const uint8_t *body = NULL;
  size_t len = 0;
  if (m && !err) {
    body = call->body_len ? call->body : m->payload;
    len = call->body_len ? call->body_len : m->payload_len;
  }
  struct ck_client_response r = {.err = err,
                      .final = final,
                      .code = m ? m->code : 0,
                      .msg = m,
                      .body = body,
                      .body_len = len,
                      .peer = from ? from : &call->peer};
  uint32_t obs;
  if (m && call->pending_seq >= 0) {
    r.has_observe = true;
    r.observe = (uint32_t)call->pending_seq;
  } else if (m && ck_msg_opt_uint(m, CK_OPT_OBSERVE, &obs) == 0) {
    r.has_observe = true;
    r.observe = obs;
  }
  r.rtt_ms = ck__loop_now(&call->cl->ctx->loop) - call->t_first;
  r.peer_identity = "";
  if (call->secure)
    r.security = (int)ck__dtls_identity(call->ep, r.peer, &r.peer_identity);
  call->in_cb = true;
  call->cb(call, &r, call->user);
  call->in_cb = false;
}

void ck__call_finish(struct ck_call *call, int err, const struct ck_msg *m,
                     const struct ck_addr *from)
{
  if (call->state == CK__CALL_DONE)
    return;
  struct ck_client *c = call->cl;
  struct ck_ctx *ctx = c->ctx;
  /* A call that never got as far as an address held no NSTART slot. */
  bool placed = call->state != CK__CALL_RESOLVING;
  call->state = CK__CALL_DONE;
  if (call->rreq) {
    /* Before the callback, which may free what the resolver would call
     * back into. */
    ck__resolve_cancel(call->rreq);
    call->rreq = NULL;
  }
  ck__timer_stop(&ctx->loop, &call->timer);
  if (call->con) {
    ck__con_cancel(ctx, call->con);
    call->con = NULL;
  }
  ck__call_deliver(call, err ? NULL : m, from, true, err);
  struct ck_addr peer = call->peer;
  unlink_call(call);
  call_free(call);
  if (placed)
    ck__client_start_queued(c, &peer);
}

/* --- cancel and accessors --- */

void ck_call_cancel(struct ck_call *call, bool proactive)
{
  if (!call || call->state == CK__CALL_DONE ||
      call->state == CK__CALL_CANCELLING)
    return;
  if (call->in_cb) {
    /* Cancelling from inside the call's own callback: act after it. */
    call->cancel_after =
      proactive ? CK__CANCEL_PROACTIVE : CK__CANCEL_REACTIVE;
    return;
  }
  if (call->observe && call->registered && proactive &&
      ck__call_deregister(call) == 0)
    return;
  ck__call_finish(call, CK_ECANCELED, NULL, NULL);
}

size_t ck_call_token(const struct ck_call *call, uint8_t out[8])
{
  if (!call || !out)
    return 0;
  memcpy(out, call->tok.bytes, call->tok.len);
  return call->tok.len;
}

uint16_t ck_call_mid(const struct ck_call *call)
{
  if (!call)
    return 0;
  return call->mid;
}
