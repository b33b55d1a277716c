/* The server's internal types, shared by server.c (dispatch, resources,
 * responses), block.c (Block1 reassembly, Block2 slicing) and observe.c
 * (observers and notifications). Internal to libcoapkit. */
#ifndef CK_SRV_H
#define CK_SRV_H

#include "ctx.h"
#include "exchange.h"

enum { CK__MAX_FORMATS = 8, CK__RESP_OPTS = 24, CK__RESP_OPTBUF = 600 };

struct ck__note;

struct ck_resource {
  struct ck_ctx *ctx;
  struct ck_resource *next;
  char *path; /* without leading '/' and without the tree's "/#" */
  size_t path_len;
  bool tree;
  ck_handler_fn handlers[8]; /* by method code 1..7 */
  void *users[8];
  char *rt, *iface, *title;
  int ct;
  uint32_t sz;
  bool hidden;
  uint8_t nproduces, nconsumes;
  uint16_t produces[CK__MAX_FORMATS];
  uint16_t consumes[CK__MAX_FORMATS];
  bool observable;
  bool con_notify;
  uint32_t obs_seq; /* 24-bit sequence of the current state */
  size_t nobs;
  struct ck_observer *obs_head;
};

struct ck_request {
  struct ck_ctx *ctx;
  struct ck_resource *res; /* the resource handling it (NULL: none) */
  struct ck__ep *ep;
  const struct ck_msg *msg;
  const struct ck_addr *peer;
  bool multicast;
  const uint8_t *body;
  size_t body_len;
};

struct ck__resp_opt {
  uint16_t num;
  uint16_t off;
  uint16_t len;
};

struct ck__rep;

struct ck_response {
  uint8_t code;
  bool deferred;
  /* A payload given by reference (ck_response_payload_ref): not ours to
   * free; release(release_arg) is called when done, if release is set. */
  bool ref;
  void (*release)(void *arg);
  void *release_arg;
  /* The cached representation this answer is a block of (repcache.c),
   * whose auto-generated ETag, when etag_set, was computed once. */
  struct ck__rep *rep;
  bool etag_set;
  uint64_t etag;
  struct ck_observer *obs; /* taken over by ck_observer_new() */
  int err;
  unsigned nopts;
  size_t optbuf_len;
  size_t payload_len;
  uint8_t *payload; /* inl or heap */
  struct ck__resp_opt opts[CK__RESP_OPTS];
  uint8_t optbuf[CK__RESP_OPTBUF];
  uint8_t inl[1100];
};

void ck__resp_init(struct ck_response *r, uint8_t method);
void ck__resp_free(struct ck_response *r);
bool ck__resp_has_opt(const struct ck_response *r, uint16_t num);

/* What the server needs to answer a request after the handler ran. */
struct ck__reply {
  struct ck__ep *ep;
  struct ck_addr peer;
  uint8_t req_type;
  uint8_t method;
  uint16_t req_mid;
  uint8_t tkl;
  uint8_t token[CK_TOKEN_MAX];
  bool multicast;
  bool acked;        /* an empty ACK already went out */
  bool has_block2;   /* the request carried Block2 */
  uint32_t block2;   /* its value */
  bool want_size2;   /* the request carried Size2 */
  uint32_t no_response; /* RFC 7967 bits, 0 when absent */
  bool observe;      /* add Observe with obs_seq */
  uint32_t obs_seq;
  bool has_block1;   /* echo Block1 in the final response */
  uint32_t block1;
  /* RFC 9175 (echo.c): the request's datagram length, for the
   * amplification limit, and the Echo value it carried (echo_len 0:
   * none); echo_refused: the answer was replaced by a 4.01 with Echo. */
  uint16_t req_len;
  uint8_t echo_len;
  bool echo_refused;
  uint8_t echo[40];
  /* repcache.c: the request while it is being handled (NULL after), the
   * resource it went to, and the key of its representation. */
  const struct ck_msg *req_msg;
  struct ck_resource *res;
  bool rep_keyed;
  uint64_t rep_key;
};

/* Builds and sends the response; returns the message length sent (or 0
 * when suppressed) or an error. out receives the built bytes when not
 * NULL (cap CK__DGRAM_MAX). */
int ck__send_reply(struct ck_ctx *ctx, struct ck__reply *rp,
                   struct ck_response *resp, struct ck__dd_entry *dd);

/* Builds a response message into buf; the type, MID and token come from
 * the arguments. Slices resp's payload by Block2 as the request asked.
 * Returns the length or an error. */
int ck__build_response(struct ck_ctx *ctx, uint8_t *buf, size_t cap,
                       uint8_t type, uint16_t mid, const uint8_t *token,
                       uint8_t tkl, struct ck_response *resp,
                       const struct ck__reply *rp);

int ck__srv_init(struct ck_ctx *ctx);
void ck__srv_close(struct ck_ctx *ctx);

/* block.c: Block1 reassembly. Returns 1 when the body is complete (req's
 * body then points at it), 0 when a 2.31 or error answer was put in resp
 * and the handler must not run. */
int ck__block1_input(struct ck_ctx *ctx, struct ck_request *req,
                     struct ck__reply *rp, struct ck_response *resp,
                     const char *path, size_t path_len);
/* Releases the upload completed by the last ck__block1_input() == 1. */
void ck__block1_done(struct ck_ctx *ctx);
void ck__uploads_sweep(struct ck_ctx *ctx);
/* How often the sweep runs, from upload_idle_ms. */
uint64_t ck__uploads_sweep_ms(const struct ck_ctx *ctx);
int ck__uploads_init(struct ck_ctx *ctx);
void ck__uploads_close(struct ck_ctx *ctx);

/* repcache.c: representations kept for block-wise transfers (RFC 7959
 * §2.4, §3.2), so that later blocks are served without the handler. */
void ck__rep_close(struct ck_ctx *ctx);
void ck__rep_sweep(struct ck_ctx *ctx);
/* Computes rp's key from rp->req_msg, if not done yet. */
void ck__rep_key(struct ck__reply *rp);
/* Fills resp from the representation kept for rp's request, when there
 * is one, and returns true; the payload is lent, not copied. */
bool ck__rep_lookup(struct ck_ctx *ctx, struct ck__reply *rp,
                    struct ck_response *resp);
/* The same for a request that comes back with an Echo after its answer
 * (a GET's or FETCH's first block, a POST's or PATCH's answer) was held
 * back for one (echo.c): that answer is served, so the handler does not
 * run twice. */
bool ck__rep_lookup_challenged(struct ck_ctx *ctx, struct ck__reply *rp,
                               struct ck_response *resp);
/* After the answer to a POST or PATCH (not a Block1 one) was replaced by
 * a 4.01 with Echo: keeps it, single block or not, under a key that also
 * covers the request's body, so that the request's return with the Echo
 * gets it without running the handler again. */
void ck__rep_keep_challenged(struct ck_ctx *ctx, struct ck__reply *rp,
                             struct ck_response *resp);
/* Keeps resp's representation when it goes out in blocks and more
 * follow this one; the payload moves to the cache, resp borrows it.
 * Returns 0, or CK_EFULL (resp is then a 5.03 with Max-Age). */
int ck__rep_offer(struct ck_ctx *ctx, struct ck__reply *rp,
                  struct ck_response *resp);
/* After resp (a block of a kept representation) went out: forgets it
 * when that was the last block, else keeps it for another idle time. */
void ck__rep_sent(struct ck_ctx *ctx, const struct ck__reply *rp,
                  struct ck_response *resp);
/* Forgets the GET and FETCH representations of r (it changed). */
void ck__rep_invalidate(struct ck_ctx *ctx, const struct ck_resource *r);
/* response.c: the auto-generated ETag of a representation. */
uint64_t ck__etag_of(const struct ck_ctx *ctx, const uint8_t *p, size_t n);

/* observe.c */
int ck__observe_init(struct ck_ctx *ctx);
void ck__observe_close(struct ck_ctx *ctx);
/* Registers or updates the observer of req on r. Returns 0 or an error
 * (the response then goes out without Observe). */
int ck__observe_add(struct ck_ctx *ctx, struct ck_resource *r,
                    const struct ck_request *req);
/* Removes the observer with req's peer and token from r, if any. */
void ck__observe_remove_req(struct ck_ctx *ctx, struct ck_resource *r,
                            const struct ck_request *req);
void ck__observe_resource_free(struct ck_ctx *ctx, struct ck_resource *r);

/* An observer (RFC 7641): one client's observation of a resource,
 * keyed by (address, token). Plain observers keep a copy of their request
 * and the GET handler runs again for each notification; observers taken
 * over with ck_observer_new() ("app" observers, observer.c) get their
 * notifications from the application through a queue instead. */
struct ck_observer {
  struct ck_observer *next, *prev; /* the resource's list */
  struct ck_observer *hnext;       /* hash chain by (peer, token) */
  struct ck_observer *mnext;       /* hash chain by (peer, last_mid) */
  struct ck_observer *pnext, **pprev; /* hash chain by peer */
  struct ck_resource *res;
  struct ck__ep *ep;
  struct ck__con *con; /* a CON notification in flight */
  struct ck__peer *holder; /* peers.c: its peer's count */
  uint8_t *req;        /* plain: the registering request */
  struct ck_addr peer;
  uint64_t last_con;
  uint16_t req_len;
  uint16_t last_mid;
  bool has_mid; /* a message has gone out: hashed by last_mid */
  uint8_t tkl;
  uint8_t token[CK_TOKEN_MAX];
  /* app observers */
  bool app;
  bool pending;      /* the registering answer has not gone out yet */
  bool ending;       /* on_end is running */
  uint8_t type;      /* enum ck_observer_type */
  uint32_t seq;      /* Observe value of the last message sent */
  uint32_t queue_max;
  uint32_t queued;
  struct ck__note *qhead, *qtail; /* qhead is the CON in flight, if any */
  ck_observer_end_fn on_end;
  void *user;
};

/* observe.c: the observer tables. */
struct ck_observer *ck__observe_find(struct ck_ctx *ctx,
                                     const struct ck_addr *peer,
                                     const uint8_t *tok, uint8_t tkl);
/* A new observer of r for req's sender and token (not linked yet), or
 * NULL with *err CK_EFULL (max_observers, max_observers_per_resource,
 * max_observers_per_peer or max_peers, each counted) or CK_ENOMEM. One
 * that is not linked after all goes with ck__observe_unalloc(). */
struct ck_observer *ck__observe_alloc(struct ck_ctx *ctx,
                                      struct ck_resource *r,
                                      const struct ck_request *req, int *err);
void ck__observe_unalloc(struct ck_ctx *ctx, struct ck_observer *o);
/* Allocates the tables on first use and links o (peer, token, res set)
 * into them and its resource's list. Returns 0 or CK_ENOMEM. */
int ck__observe_link(struct ck_ctx *ctx, struct ck_observer *o);
/* Ends o: unlinks it, cancels its CON, calls an app observer's on_end
 * with why (0: not at all) and frees it. */
void ck__observe_end(struct ck_ctx *ctx, struct ck_observer *o, int why);
/* Records that o's latest message went out with Message ID mid, so an
 * RST naming it finds o. */
void ck__observe_sent_mid(struct ck_ctx *ctx, struct ck_observer *o,
                          uint16_t mid);
/* Moves o to another peer (rehashing it). */
void ck__observe_repeer(struct ck_ctx *ctx, struct ck_observer *o,
                        const struct ck_addr *peer);

/* observer.c: app observers. */
/* The registering answer of resp's observer is going out with code:
 * activates it (true: add Observe with o->seq to the answer) or ends it
 * with CK_OBSERVER_REFUSED (false). */
bool ck__observer_answer(struct ck_ctx *ctx, struct ck_response *resp);
/* After the answer went out: sends what was queued meanwhile. */
void ck__observer_answered(struct ck_ctx *ctx, struct ck_observer *o);
/* o's CON notification was acknowledged: sends what waits. */
void ck__observer_con_done(struct ck_ctx *ctx, struct ck_observer *o);
/* observe.c: sends a CON notification to o, with o's completion. */
struct ck__con *ck__observe_con_send(struct ck_ctx *ctx,
                                     struct ck_observer *o,
                                     const uint8_t *buf, size_t len);
/* Frees an app observer's queue. */
void ck__observer_clear(struct ck_observer *o);

/* resource.c */
bool ck__known_opt(const struct ck_ctx *ctx, uint16_t num);
void ck__resources_free(struct ck_ctx *ctx);

/* wellknown.c: answers GET /.well-known/core. */
void ck__well_known(struct ck_ctx *ctx, const struct ck_request *req,
                    struct ck_response *resp);

/* resource.c: runs the handler of r for req into resp. */
void ck__run_handler(struct ck_resource *r, const struct ck_request *req,
                     struct ck_response *resp);

#endif
