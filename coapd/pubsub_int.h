/* The inside of the pub/sub gateway, shared by pubsub.c (topics,
 * publish, subscribe), pubsub_session.c (connection mode) and
 * pubsub_query.c (the query keys). Internal to coapd. */
#ifndef COAPD_PUBSUB_INT_H
#define COAPD_PUBSUB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pubsub.h"

/* A view of one query value. */
struct qv {
  const char *p;
  size_t n;
  bool set;
};

/* The query keys of EMQX's contract, with their short aliases. */
struct query {
  struct qv clientid, token, username, password, qos, retain, expiry;
};

/* pubsub_query.c: reads every Uri-Query option of req into q; unknown
 * keys are ignored (as EMQX does), a repeated key keeps its last value. */
void query_parse(const struct ck_request *req, struct query *q);
/* The keys EMQX's documentation puts into the topic ("a/b&clientid=1&
 * token=2"): when the last level ends in '&'-separated known keys, they
 * go into q (overriding Uri-Query values) and the topic is cut before
 * them. Returns the topic's new length. */
size_t query_from_topic(char *topic, size_t len, struct query *q);
/* Parses an unsigned decimal up to max; returns 0 or -1. */
int qv_uint(const struct qv *v, uint32_t max, uint32_t *out);
/* Parses true/false (also 1/0); returns 0 or -1. */
int qv_bool(const struct qv *v, bool *out);

struct session;
struct sub;
struct read_wait;

struct pubsub {
  struct ck_ctx *ctx;
  struct pubsub_config cfg;
  struct bus *bus;
  struct registry *reg;
  struct store *store;
  struct ck_resource *ps_res, *mqtt_res;
  struct sub *subs; /* every subscription, for pubsub_free */
  struct read_wait *reads; /* plain GETs waiting for the broker */
  struct pubsub_stats st;
  /* pubsub_session.c */
  struct session **buckets;
  size_t nbuckets;
  struct ck_timer *sweep;
};

/* One subscription: a library observer fed from a bus subscription. */
struct sub {
  struct pubsub *ps;
  struct sub *next, *prev;           /* ps->subs */
  struct sub *snext, *sprev;         /* the session's list */
  struct session *sess;              /* NULL in connectionless mode */
  struct ck_observer *obs;
  struct bus_sub *bs;
};

/* Ends s silently (the client is not told): session removal. */
void sub_free(struct sub *s);

/* pubsub_session.c */
int sessions_init(struct pubsub *ps);
void sessions_close(struct pubsub *ps);
/* Handles a request on mqtt/connection. */
void session_request(struct pubsub *ps, const struct ck_request *req,
                     struct ck_response *resp, const struct query *q);
/* Connection mode: checks q's clientid and token (answering 4.00 or 4.01
 * into resp and returning NULL), marks the session alive and moves it
 * (and its observations) to req's address if it changed. */
struct session *session_check(struct pubsub *ps, const struct ck_request *req,
                              struct ck_response *resp, const struct query *q);
const char *session_username(const struct session *s);
void session_add_sub(struct session *sess, struct sub *s);
void session_remove_sub(struct sub *s);

/* Answers code with a reason in the payload (text/plain). */
void pubsub_fail(struct pubsub *ps, struct ck_response *resp, uint8_t code,
                 const char *reason);

#endif
