/* lossy_scenarios: the client library's side of issue 13's loss and
 * reordering scenarios, against coapd --demo behind lossy_relay (loss,
 * duplication and reordering each way; lossy_scenarios.sh sets them up).
 *
 * One scenario per run, chosen by --scenario:
 *  gets    N CON GETs, W in flight at a time (NSTART = W), each checked
 *          against the answer its URI asks for: /query?req=i echoes a
 *          query that names the request, every tenth is /hello, whose
 *          answer is the same for all; every call's callback fires once;
 *  block   a pseudo-random body PUT to /large-update (Block1), then a GET
 *          of it (Block2) compared byte for byte;
 *  obs     an observation of /obs until N notifications: the application
 *          never sees a value twice or a value go backwards (RFC 7641
 *          §3.4), and, after a GET of /obs, a notification at least as
 *          new as what the GET saw arrives (the latest state);
 *  pubsub  a subscriber observes ps/TOPIC?qos=1 (CON notifications) while
 *          a publisher, a client of its own, POSTs N numbered messages as
 *          CON, one after another: every POST is answered 2.04, the
 *          subscriber sees no number twice and the numbers in order. It
 *          prints how many it missed; the script compares that with
 *          coapd's count of notifications its observer queue dropped.
 * Each prints "result SCENARIO key=value ..." for the script and for
 * docs/RELIABILITY.md, and exits 1 with "FAIL: ..." on the first broken
 * promise. Every wait is bounded by --deadline.
 *
 * The transmission parameters are the test's, not RFC 7252's defaults
 * (whose 2 s ACK_TIMEOUT would make this run for hours): ACK_TIMEOUT
 * --ack-timeout ms, ACK_RANDOM_FACTOR 1.5, MAX_RETRANSMIT
 * --max-retransmit; lossy_scenarios.sh gives the arithmetic.
 *
 * Usage: lossy_scenarios --uri coap://ADDR:PORT --scenario NAME [--n N]
 *          [--window W] [--bytes N] [--topic T] [--seed N]
 *          [--ack-timeout MS] [--max-retransmit N] [--deadline SEC]
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <coapkit/coapkit.h>

#include "lossy_common.h"

/* Caps on what a run may ask for. */
enum { MAX_N = 100000, MAX_WINDOW = 64 };

struct opts {
  const char *uri, *scenario, *topic;
  unsigned n, window;
  size_t bytes;
  uint64_t seed;
  uint32_t ack_timeout, max_retransmit;
  double deadline_ms;
};


static struct ck_client *new_client(struct ck_ctx *ctx, const struct opts *o,
                                    unsigned nstart)
{
  struct ck_client_config cfg = {0};
  cfg.params.ack_timeout_ms = o->ack_timeout;
  cfg.params.ack_random_factor = 1.5f;
  cfg.params.max_retransmit = o->max_retransmit;
  cfg.nstart = nstart;
  struct ck_client *c;
  int rc = ck_client_new(ctx, &cfg, &c);
  if (rc < 0)
    fail("ck_client_new: %s", ck_err_name(rc));
  return c;
}

/* Runs the loop until *done or the deadline. */
static void run_until(struct ck_ctx *ctx, const bool *done, double t0,
                      const struct opts *o, const char *what)
{
  while (!*done) {
    if (mono_ms() - t0 > o->deadline_ms)
      fail("%s: not done after %.0f s", what, o->deadline_ms / 1000);
    int rc = ck_ctx_process(ctx, 50);
    if (rc < 0)
      fail("ck_ctx_process: %s", ck_err_name(rc));
  }
}

/* Lets late copies (retransmissions, duplicates, held datagrams) arrive:
 * none may reach a callback again. */
static void settle(struct ck_ctx *ctx, double ms)
{
  double t = mono_ms();
  while (mono_ms() - t < ms)
    ck_ctx_process(ctx, 20);
}

/* --- gets --- */

struct gets;

struct get_call {
  struct gets *g;
  unsigned i, callbacks, finals;
};

struct gets {
  struct get_call *calls;
  unsigned next, done, n;
  bool all_done;
  char base[96];
  struct ck_client *c;
};

/* The URI of GET i and the body it must bring back. */
static void get_want(const struct gets *g, unsigned i, char *uri,
                     size_t urilen, char *want, size_t wantlen)
{
  if (i % 10 == 9) {
    snprintf(uri, urilen, "%s/hello", g->base);
    snprintf(want, wantlen, "Hello, world!");
  } else {
    snprintf(uri, urilen, "%s/query?req=%u", g->base, i);
    snprintf(want, wantlen, "req=%u", i);
  }
}

static void start_get(struct gets *g);

static void on_get(struct ck_call *call, const struct ck_client_response *r,
                   void *user)
{
  (void)call;
  struct get_call *gc = user;
  struct gets *g = gc->g;
  gc->callbacks++;
  if (gc->callbacks > 1)
    fail("GET %u: callback %u", gc->i, gc->callbacks);
  if (!r->final)
    fail("GET %u: a callback that is not final", gc->i);
  gc->finals++;
  char uri[160], want[32];
  get_want(g, gc->i, uri, sizeof uri, want, sizeof want);
  if (r->err || r->code != CK_CONTENT)
    fail("GET %s: err %s code %u.%02u", uri, err_name(r->err), r->code >> 5,
         r->code & 31u);
  if (r->body_len != strlen(want) || memcmp(r->body, want, r->body_len))
    fail("GET %s: body '%.*s', expected '%s'", uri, (int)r->body_len,
         (const char *)r->body, want);
  g->done++;
  if (g->done == g->n)
    g->all_done = true;
  /* Keep the window full: the next call starts from this callback. */
  start_get(g);
}

static void start_get(struct gets *g)
{
  if (g->next == g->n)
    return;
  unsigned i = g->next++;
  struct get_call *gc = &g->calls[i];
  gc->g = g;
  gc->i = i;
  char uri[160], want[32];
  get_want(g, i, uri, sizeof uri, want, sizeof want);
  struct ck_client_request r;
  ck_client_request_init(&r, CK_GET, uri);
  int rc = ck_client_send(g->c, &r, on_get, gc, NULL);
  if (rc < 0)
    fail("send %s: %s", uri, ck_err_name(rc));
}

static void run_gets(struct ck_ctx *ctx, const struct opts *o)
{
  struct gets g = {.n = o->n};
  snprintf(g.base, sizeof g.base, "%s", o->uri);
  g.calls = calloc(o->n, sizeof *g.calls);
  if (!g.calls)
    fail("out of memory");
  g.c = new_client(ctx, o, o->window);
  double t0 = mono_ms();
  for (unsigned k = 0; k < o->window; k++)
    start_get(&g);
  run_until(ctx, &g.all_done, t0, o, "gets");
  double took = mono_ms() - t0;
  settle(ctx, 300);
  unsigned same = 0;
  for (unsigned i = 0; i < o->n; i++) {
    if (g.calls[i].callbacks != 1 || g.calls[i].finals != 1)
      fail("GET %u: %u callbacks, %u final", i, g.calls[i].callbacks,
           g.calls[i].finals);
    same += i % 10 == 9;
  }
  struct ck_client_stats st;
  ck_client_stats(g.c, &st);
  struct ck_stats cs;
  ck_ctx_stats(ctx, &cs);
  printf("ok - %u CON GETs (%u in flight, %u of them /hello with the same "
         "answer) each completed once with its own body in %.1f s\n",
         o->n, o->window, same, took / 1000);
  printf("result gets sent=%u completed=%u same_answer=%u requests=%" PRIu64
         " retransmits=%" PRIu64 " rejected=%" PRIu64 " rx=%" PRIu64
         " tx=%" PRIu64 " seconds=%.1f\n",
         o->n, g.done, same, st.requests, st.retransmits, st.rejected,
         cs.rx_datagrams, cs.tx_datagrams, took / 1000);
  ck_client_free(g.c);
  free(g.calls);
}

/* --- block --- */

static void run_block(struct ck_ctx *ctx, const struct opts *o)
{
  size_t len = o->bytes;
  uint8_t *body = malloc(len);
  if (!body)
    fail("out of memory");
  uint64_t s = o->seed ^ 0xb10cb10cu;
  fill_random(&s, body, len);
  char uri[160];
  snprintf(uri, sizeof uri, "%s/large-update", o->uri);
  struct ck_client *c = new_client(ctx, o, 1);

  struct ck_client_request r;
  ck_client_request_init(&r, CK_PUT, uri);
  r.payload = body;
  r.payload_len = len;
  r.has_content_format = true;
  r.content_format = CK_CF_OCTET_STREAM;
  struct ck_client_result res;
  double t = mono_ms();
  int rc = ck_client_do(c, &r, &res);
  if (rc != 0 || res.code != CK_CHANGED)
    fail("PUT %zu bytes: err %s code %u.%02u", len, err_name(rc),
         res.code >> 5, res.code & 31u);
  ck_client_result_free(&res);
  double put_s = (mono_ms() - t) / 1000;
  struct ck_client_stats st_put;
  ck_client_stats(c, &st_put);

  ck_client_request_init(&r, CK_GET, uri);
  t = mono_ms();
  rc = ck_client_do(c, &r, &res);
  if (rc != 0 || res.code != CK_CONTENT)
    fail("GET %zu bytes: err %s code %u.%02u", len, err_name(rc),
         res.code >> 5, res.code & 31u);
  double get_s = (mono_ms() - t) / 1000;
  if (res.body_len != len)
    fail("GET returned %zu bytes, %zu were PUT", res.body_len, len);
  for (size_t i = 0; i < len; i++)
    if (res.body[i] != body[i])
      fail("GET differs from the PUT at byte %zu", i);
  ck_client_result_free(&res);
  free(body);
  struct ck_client_stats st;
  ck_client_stats(c, &st);
  printf("ok - PUT %zu bytes block-wise (%.1f s) and GET them back, the "
         "same byte for byte (%.1f s)\n",
         len, put_s, get_s);
  printf("result block bytes=%zu compared=%zu requests=%" PRIu64
         " retransmits_put=%" PRIu64 " retransmits_get=%" PRIu64
         " put_seconds=%.1f get_seconds=%.1f\n",
         len, len, st.requests, st_put.retransmits,
         st.retransmits - st_put.retransmits, put_s, get_s);
  ck_client_free(c);
}

/* --- obs --- */

struct obs {
  unsigned notes, finals;
  bool have, registered;
  uint32_t last_seq;
  long last_value;
  int final_err;
  bool done;
};

/* The body of a notification as a number; -1 when it is none. */
static long body_number(const uint8_t *b, size_t len, const char *prefix)
{
  size_t pl = strlen(prefix);
  if (len <= pl || len - pl > 10 || memcmp(b, prefix, pl) != 0)
    return -1;
  long v = 0;
  for (size_t i = pl; i < len; i++) {
    if (b[i] < '0' || b[i] > '9')
      return -1;
    v = v * 10 + (b[i] - '0');
  }
  return v;
}

static void on_obs(struct ck_call *call, const struct ck_client_response *r,
                   void *user)
{
  (void)call;
  struct obs *ob = user;
  if (r->final) {
    ob->finals++;
    ob->final_err = r->err;
    ob->done = true;
    return;
  }
  if (r->err || r->code != CK_CONTENT || !r->has_observe)
    fail("/obs: err %s code %u.%02u observe %d", err_name(r->err),
         r->code >> 5, r->code & 31u, r->has_observe);
  long v = body_number(r->body, r->body_len, "");
  if (v < 0)
    fail("/obs: body '%.*s' is no number", (int)r->body_len,
         (const char *)r->body);
  /* RFC 7641 §3.4: what reaches the application is never older than
   * what it already has; a copy of the last is older too. */
  if (ob->have && (r->observe == ob->last_seq || v <= ob->last_value))
    fail("/obs: notification %ld (Observe %" PRIu32 ") after %ld (Observe %"
         PRIu32 "): delivered twice or out of order",
         v, r->observe, ob->last_value, ob->last_seq);
  if (ob->have)
    ob->notes++;
  ob->have = true;
  ob->last_seq = r->observe;
  ob->last_value = v;
}

static void run_obs(struct ck_ctx *ctx, const struct opts *o)
{
  char uri[160];
  snprintf(uri, sizeof uri, "%s/obs", o->uri);
  struct ck_client *c = new_client(ctx, o, 1);
  struct ck_client_request r;
  ck_client_request_init(&r, CK_GET, uri);
  r.observe = true;
  struct obs ob = {0};
  struct ck_call *call;
  int rc = ck_client_send(c, &r, on_obs, &ob, &call);
  if (rc < 0)
    fail("observe %s: %s", uri, ck_err_name(rc));
  double t0 = mono_ms();
  while (ob.notes < o->n) {
    if (ob.done)
      fail("/obs: the observation ended (%s) after %u notifications",
           err_name(ob.final_err), ob.notes);
    if (mono_ms() - t0 > o->deadline_ms)
      fail("/obs: %u of %u notifications after %.0f s", ob.notes, o->n,
           o->deadline_ms / 1000);
    ck_ctx_process(ctx, 100);
  }
  /* The latest state: what a GET sees now must arrive as a notification
   * (or has already), though notifications are NON and may be lost. */
  struct ck_client *g = new_client(ctx, o, 1);
  ck_client_request_init(&r, CK_GET, uri);
  struct ck_client_result res;
  rc = ck_client_do(g, &r, &res);
  if (rc != 0 || res.code != CK_CONTENT)
    fail("GET /obs: err %s", err_name(rc));
  long now = body_number(res.body, res.body_len, "");
  ck_client_result_free(&res);
  ck_client_free(g);
  double t1 = mono_ms();
  while (ob.last_value < now) {
    if (ob.done)
      fail("/obs: the observation ended before the latest state");
    if (mono_ms() - t1 > 20000)
      fail("/obs: value %ld (from a GET) not notified within 20 s; last "
           "%ld", now, ob.last_value);
    ck_ctx_process(ctx, 100);
  }
  double took = mono_ms() - t0;
  ck_call_cancel(call, true);
  double t2 = mono_ms();
  while (!ob.done) {
    if (mono_ms() - t2 > 20000)
      fail("/obs: the proactive cancel did not end within 20 s");
    ck_ctx_process(ctx, 50);
  }
  settle(ctx, 300);
  if (ob.finals != 1 || ob.final_err != CK_ECANCELED)
    fail("/obs: %u final callbacks, err %s", ob.finals,
         err_name(ob.final_err));
  struct ck_client_stats st;
  ck_client_stats(c, &st);
  struct ck_stats cs;
  ck_ctx_stats(ctx, &cs);
  printf("ok - %u notifications of /obs, none twice, none older than the "
         "last; the latest value (%ld) arrived; %" PRIu64
         " stale or repeated ones suppressed (%.1f s)\n",
         ob.notes, now, st.notifications_stale, took / 1000);
  printf("result obs notifications=%u delivered=%" PRIu64
         " stale_suppressed=%" PRIu64 " duplicates_answered=%" PRIu64
         " latest=%ld last=%ld seconds=%.1f\n",
         ob.notes, st.notifications, st.notifications_stale,
         cs.rx_duplicates, now, ob.last_value, took / 1000);
  ck_client_free(c);
}

/* --- pubsub --- */

struct sub {
  unsigned got, finals;
  long last;
  bool registered, done;
  int final_err;
};

static void on_sub(struct ck_call *call, const struct ck_client_response *r,
                   void *user)
{
  (void)call;
  struct sub *s = user;
  if (r->final) {
    s->finals++;
    s->final_err = r->err;
    s->done = true;
    return;
  }
  if (r->err || r->code != CK_CONTENT)
    fail("subscriber: err %s code %u.%02u", err_name(r->err), r->code >> 5,
         r->code & 31u);
  if (!s->registered) {
    /* The answer to the subscription: 2.05, empty (docs/gateway.md). */
    if (r->body_len != 0)
      fail("subscriber: the registration came with %zu bytes", r->body_len);
    s->registered = true;
    return;
  }
  long v = body_number(r->body, r->body_len, "msg-");
  if (v < 0)
    fail("subscriber: body '%.*s' is no message of ours", (int)r->body_len,
         (const char *)r->body);
  if (v <= s->last)
    fail("subscriber: message %ld after %ld: %s", v, s->last,
         v == s->last ? "delivered twice" : "out of order");
  s->last = v;
  s->got++;
}

static void run_pubsub(struct ck_ctx *ctx, const struct opts *o)
{
  char uri[192];
  snprintf(uri, sizeof uri, "%s/ps/%s?qos=1", o->uri, o->topic);
  struct ck_client *sc = new_client(ctx, o, 1);
  struct ck_client_request r;
  ck_client_request_init(&r, CK_GET, uri);
  r.observe = true;
  struct sub s = {.last = -1};
  struct ck_call *call;
  int rc = ck_client_send(sc, &r, on_sub, &s, &call);
  if (rc < 0)
    fail("subscribe %s: %s", uri, ck_err_name(rc));
  double t0 = mono_ms();
  run_until(ctx, &s.registered, t0, o, "subscription");

  struct ck_client *pc = new_client(ctx, o, 1);
  unsigned changed = 0;
  for (unsigned i = 0; i < o->n; i++) {
    char body[16];
    int bl = snprintf(body, sizeof body, "msg-%u", i);
    ck_client_request_init(&r, CK_POST, uri);
    r.payload = body;
    r.payload_len = (size_t)bl;
    struct ck_client_result res;
    rc = ck_client_do(pc, &r, &res);
    if (rc != 0 || res.code != CK_CHANGED)
      fail("publish %u: err %s code %u.%02u", i, err_name(rc), res.code >> 5,
           res.code & 31u);
    changed++;
    ck_client_result_free(&res);
    if (s.done)
      fail("the subscription ended (%s) at publish %u",
           err_name(s.final_err), i);
  }
  double pub_s = (mono_ms() - t0) / 1000;
  /* The last message must arrive: a queue drops its oldest entries, never
   * the newest. */
  while (s.last != (long)o->n - 1) {
    if (s.done)
      fail("the subscription ended (%s)", err_name(s.final_err));
    if (mono_ms() - t0 > o->deadline_ms)
      fail("subscriber: last message %ld of %u after %.0f s", s.last, o->n,
           o->deadline_ms / 1000);
    ck_ctx_process(ctx, 50);
  }
  double took = mono_ms() - t0;
  settle(ctx, 500);
  ck_call_cancel(call, true);
  double t2 = mono_ms();
  while (!s.done) {
    if (mono_ms() - t2 > 20000)
      fail("subscriber: the proactive cancel did not end within 20 s");
    ck_ctx_process(ctx, 50);
  }
  struct ck_client_stats pst, sst;
  ck_client_stats(pc, &pst);
  ck_client_stats(sc, &sst);
  struct ck_stats cs;
  ck_ctx_stats(ctx, &cs);
  printf("ok - %u CON publishes answered 2.04 (%.1f s); the subscriber got "
         "%u of them in order, none twice, the last included (%.1f s)\n",
         changed, pub_s, s.got, took / 1000);
  printf("result pubsub published=%u answered_204=%u received=%u missed=%u "
         "pub_retransmits=%" PRIu64 " sub_notifications=%" PRIu64
         " sub_stale=%" PRIu64 " duplicates_answered=%" PRIu64
         " seconds=%.1f\n",
         o->n, changed, s.got, o->n - s.got, pst.retransmits,
         sst.notifications, sst.notifications_stale, cs.rx_duplicates,
         took / 1000);
  ck_client_free(pc);
  ck_client_free(sc);
}

static void usage(void)
{
  fprintf(stderr, "usage: lossy_scenarios --uri coap://ADDR:PORT --scenario "
                  "gets|block|obs|pubsub [--n N] [--window W] [--bytes N] "
                  "[--topic T] [--seed N] [--ack-timeout MS] "
                  "[--max-retransmit N] [--deadline SEC]\n");
  exit(2);
}

int main(int argc, char **argv)
{
  struct opts o = {.n = 100, .window = 8, .bytes = 1u << 20,
                   .topic = "lossy/t", .seed = 1, .ack_timeout = 2,
                   .max_retransmit = 20, .deadline_ms = 150000};
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (strcmp(a, "--uri") == 0)
      o.uri = v;
    else if (strcmp(a, "--scenario") == 0)
      o.scenario = v;
    else if (strcmp(a, "--topic") == 0)
      o.topic = v;
    else if (strcmp(a, "--n") == 0)
      o.n = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(a, "--window") == 0)
      o.window = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(a, "--bytes") == 0)
      o.bytes = strtoul(v, NULL, 10);
    else if (strcmp(a, "--seed") == 0)
      o.seed = strtoull(v, NULL, 0);
    else if (strcmp(a, "--ack-timeout") == 0)
      o.ack_timeout = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--max-retransmit") == 0)
      o.max_retransmit = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--deadline") == 0)
      o.deadline_ms = strtod(v, NULL) * 1000;
    else
      usage();
  }
  if (argc % 2 == 0 || !o.uri || !o.scenario || o.n == 0 || o.n > MAX_N ||
      o.window == 0 || o.window > MAX_WINDOW || o.bytes == 0 ||
      !o.ack_timeout || !o.max_retransmit || !(o.deadline_ms > 0))
    usage();
  setvbuf(stdout, NULL, _IOLBF, 0);

  struct ck_ctx *ctx;
  if (ck_ctx_new(NULL, &ctx) < 0)
    fail("ck_ctx_new");
  rng_state = o.seed;
  ck_ctx_set_random(ctx, fill_random, &rng_state);
  if (strcmp(o.scenario, "gets") == 0)
    run_gets(ctx, &o);
  else if (strcmp(o.scenario, "block") == 0)
    run_block(ctx, &o);
  else if (strcmp(o.scenario, "obs") == 0)
    run_obs(ctx, &o);
  else if (strcmp(o.scenario, "pubsub") == 0)
    run_pubsub(ctx, &o);
  else
    usage();
  ck_ctx_free(ctx);
  return 0;
}
