/* Connection mode of the pub/sub gateway (EMQX's "connection mode"):
 * POST mqtt/connection?clientid=&username=&password= creates a session
 * and answers 2.01 with its token; PUT with clientid and token is the
 * heartbeat (2.04); DELETE closes it (2.02). With --connection-required
 * every other request names its session with clientid and token.
 *
 * A session is known by its clientid, not by the client's address: a
 * client whose NAT mapping changed presents the same clientid and token
 * from its new address, and its session and subscriptions move there.
 * A session that shows no sign of life (a heartbeat or any request) for
 * the heartbeat interval is removed with its subscriptions by a sweep
 * that runs every half interval, so within 1.5 intervals.
 *
 * Sessions are stored (store.c) when created and removed, so that a
 * restarted coapd still knows the clientid and token its clients hold;
 * a restored session gets a fresh heartbeat window, but its
 * subscriptions, which were observations of the old process, are gone:
 * clients observe again, as after any server restart (RFC 7641 §4.1).
 */
#include <errno.h>
#include <gnutls/crypto.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub_int.h"

enum { NBUCKETS = 1 << 14, CLIENTID_MAX = 256, TOKEN_LEN = 20 };

struct session {
  struct session *hnext;
  struct sub *subs;
  uint64_t last_seen; /* ck_ctx_now() */
  struct ck_addr peer;
  bool has_peer;
  char token[TOKEN_LEN + 1];
  char username[REG_NAME_MAX];
  char clientid[];
};

static size_t bucket(const char *id, size_t n)
{
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (uint8_t)id[i]) * 16777619u;
  return h & (NBUCKETS - 1);
}

static struct session **find(struct pubsub *ps, const char *id, size_t n)
{
  struct session **pp = &ps->buckets[bucket(id, n)];
  while (*pp && !(strlen((*pp)->clientid) == n &&
                  memcmp((*pp)->clientid, id, n) == 0))
    pp = &(*pp)->hnext;
  return pp;
}

const char *session_username(const struct session *s)
{
  return s->username;
}

void session_add_sub(struct session *sess, struct sub *s)
{
  s->sess = sess;
  s->sprev = NULL;
  s->snext = sess->subs;
  if (sess->subs)
    sess->subs->sprev = s;
  sess->subs = s;
}

void session_remove_sub(struct sub *s)
{
  if (!s->sess)
    return;
  if (s->sprev)
    s->sprev->snext = s->snext;
  else
    s->sess->subs = s->snext;
  if (s->snext)
    s->snext->sprev = s->sprev;
  s->sess = NULL;
}

/* Unlinks *pp and frees it with its subscriptions. */
static void session_remove(struct pubsub *ps, struct session **pp, bool store)
{
  struct session *s = *pp;
  *pp = s->hnext;
  while (s->subs)
    sub_free(s->subs);
  if (store && ps->store)
    store_session_delete(ps->store, s->clientid);
  ps->st.sessions--;
  free(s);
}

static struct session *session_add(struct pubsub *ps, const char *id,
                                   size_t n, const char *token,
                                   const char *user)
{
  struct session *s = calloc(1, sizeof *s + n + 1);
  if (!s)
    return NULL;
  memcpy(s->clientid, id, n);
  snprintf(s->token, sizeof s->token, "%s", token);
  snprintf(s->username, sizeof s->username, "%s", user ? user : "");
  s->last_seen = ck_ctx_now(ps->ctx);
  struct session **b = &ps->buckets[bucket(id, n)];
  s->hnext = *b;
  *b = s;
  ps->st.sessions++;
  return s;
}

/* Tokens are 64 random bits in decimal: EMQX's clients treat the token as
 * an opaque string, and 64 bits cannot be guessed by trying. */
static int new_token(char *buf, size_t cap)
{
  uint64_t v;
  if (gnutls_rnd(GNUTLS_RND_NONCE, &v, sizeof v) < 0)
    return -1;
  snprintf(buf, cap, "%" PRIu64, v);
  return 0;
}

static bool same(const char *a, const struct qv *b)
{
  size_t n = strlen(a);
  if (n != b->n)
    return false;
  unsigned char d = 0; /* compare in constant time */
  for (size_t i = 0; i < n; i++)
    d |= (unsigned char)(a[i] ^ b->p[i]);
  return d == 0;
}

struct session *session_check(struct pubsub *ps, const struct ck_request *req,
                              struct ck_response *resp, const struct query *q)
{
  if (!q->clientid.set || !q->token.set || q->clientid.n == 0) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "clientid and token needed");
    return NULL;
  }
  struct session *s = *find(ps, q->clientid.p, q->clientid.n);
  if (!s || !same(s->token, &q->token)) {
    pubsub_fail(ps, resp, CK_UNAUTHORIZED, "unknown clientid or token");
    return NULL;
  }
  s->last_seen = ck_ctx_now(ps->ctx);
  const struct ck_addr *from = ck_request_peer(req);
  if (!s->has_peer || !ck_addr_equal(&s->peer, from)) {
    /* NAT rebinding, or the first request after a restart: the
     * session's observations follow it to the address it uses now. */
    s->peer = *from;
    s->has_peer = true;
    for (struct sub *x = s->subs; x; x = x->snext)
      ck_observer_move(x->obs, req);
  }
  return s;
}

static void connect_(struct pubsub *ps, const struct ck_request *req,
                     struct ck_response *resp, const struct query *q)
{
  if (!q->clientid.set || q->clientid.n == 0 ||
      q->clientid.n >= CLIENTID_MAX) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "clientid needed (1-255 bytes)");
    return;
  }
  char user[REG_NAME_MAX] = "";
  if (ps->reg && registry_user_count(ps->reg) > 0) {
    if (!q->username.set || !q->password.set ||
        q->username.n >= sizeof user ||
        registry_user_check(ps->reg, q->username.p, q->username.n,
                            q->password.p, q->password.n) < 0) {
      pubsub_fail(ps, resp, CK_UNAUTHORIZED, "bad username or password");
      return;
    }
    memcpy(user, q->username.p, q->username.n);
    user[q->username.n] = '\0';
  }
  struct session **pp = find(ps, q->clientid.p, q->clientid.n);
  if (*pp) {
    /* A client that connects again takes its clientid over, as an MQTT
     * client does: the old session and its subscriptions end. */
    session_remove(ps, pp, false);
  } else if (ps->st.sessions >= ps->cfg.max_sessions) {
    pubsub_fail(ps, resp, CK_SERVICE_UNAVAILABLE, "too many sessions");
    return;
  }
  char token[TOKEN_LEN + 1];
  struct session *s = NULL;
  if (new_token(token, sizeof token) == 0)
    s = session_add(ps, q->clientid.p, q->clientid.n, token, user);
  if (!s) {
    pubsub_fail(ps, resp, CK_SERVICE_UNAVAILABLE, "cannot create a session");
    return;
  }
  s->peer = *ck_request_peer(req);
  s->has_peer = true;
  if (ps->store) {
    struct store_session ss = {
      .clientid = s->clientid,
      .token = s->token,
      .username = s->username,
      .expires_at = 0};
    if (store_session_put(ps->store, &ss) < 0) {
      session_remove(ps, find(ps, q->clientid.p, q->clientid.n), false);
      pubsub_fail(ps, resp, CK_INTERNAL_SERVER_ERROR, "cannot store it");
      return;
    }
  }
  ck_response_code(resp, CK_CREATED);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, s->token, strlen(s->token));
}

void session_request(struct pubsub *ps, const struct ck_request *req,
                     struct ck_response *resp, const struct query *q)
{
  uint8_t method = ck_request_method(req);
  if (method == CK_POST) {
    connect_(ps, req, resp, q);
    return;
  }
  if (method != CK_PUT && method != CK_DELETE) {
    ck_response_code(resp, CK_METHOD_NOT_ALLOWED);
    return;
  }
  struct session *s = session_check(ps, req, resp, q);
  if (!s)
    return;
  if (method == CK_PUT) {
    ck_response_code(resp, CK_CHANGED); /* the heartbeat */
    return;
  }
  session_remove(ps, find(ps, s->clientid, strlen(s->clientid)), true);
  ck_response_code(resp, CK_DELETED);
}

static void sweep(struct ck_timer *t, void *user)
{
  (void)t;
  struct pubsub *ps = user;
  uint64_t now = ck_ctx_now(ps->ctx);
  uint64_t life = (uint64_t)ps->cfg.heartbeat_s * 1000;
  for (size_t i = 0; i < NBUCKETS; i++) {
    struct session **pp = &ps->buckets[i];
    while (*pp) {
      if (now - (*pp)->last_seen > life) {
        ps->st.sessions_expired++;
        session_remove(ps, pp, true);
      } else {
        pp = &(*pp)->hnext;
      }
    }
  }
}

static void restore(void *arg, const struct store_session *ss)
{
  struct pubsub *ps = arg;
  size_t n = strlen(ss->clientid);
  if (n == 0 || n >= CLIENTID_MAX || strlen(ss->token) > TOKEN_LEN ||
      *find(ps, ss->clientid, n))
    return;
  session_add(ps, ss->clientid, n, ss->token, ss->username);
}

int sessions_init(struct pubsub *ps)
{
  ps->buckets = calloc(NBUCKETS, sizeof *ps->buckets);
  if (!ps->buckets)
    return CK_ENOMEM;
  if (ps->store && store_session_load(ps->store, restore, ps) < 0)
    return CK_ESYS;
  int rc = ck_timer_new(ps->ctx, sweep, ps, &ps->sweep);
  if (rc < 0)
    return rc;
  uint64_t period = (uint64_t)ps->cfg.heartbeat_s * 500;
  ck_timer_start(ps->sweep, period ? period : 1, period ? period : 1);
  return 0;
}

void sessions_close(struct pubsub *ps)
{
  ck_timer_free(ps->sweep);
  ps->sweep = NULL;
  if (!ps->buckets)
    return;
  /* The stored sessions stay: a restart keeps them. */
  for (size_t i = 0; i < NBUCKETS; i++)
    while (ps->buckets[i])
      session_remove(ps, &ps->buckets[i], false);
  free(ps->buckets);
  ps->buckets = NULL;
}
