/* The client library against a real peer: libcoap's coap-server-notls.
 *
 * Each scenario is one function that prints one "PASS name: ..." or
 * "FAIL name: ..." line; the exit status is 1 when any failed. Only the
 * public API is used. Every wait is bounded by a deadline of our own
 * (run_call), so a server that never answers fails a scenario instead of
 * hanging the test. client_libcoap.sh starts the server (with -d, so that
 * PUT and POST create resources, and -v 7, whose log it checks after us)
 * and passes its port:
 *
 *   integ_client_libcoap PORT
 *
 * What coap-server-notls (libcoap 4.3) answers, found by trying it: GET /
 * is 2.05; PUT or POST to an unknown path creates a resource (2.01, POST
 * with a Location-Path) that PUT and POST then replace (2.04), GET reads
 * and DELETE removes (2.02); /time is observable and changes every
 * second; /async?N answers separately after N seconds; /example_data is
 * 1,500 bytes served block-wise with Size2. No resource has a FETCH,
 * PATCH or iPATCH handler, so those are answered 4.05 on a resource that
 * exists and 4.04 on one that does not: what the test can check here is
 * that libcoap parsed our method, path and payload (the script finds
 * them in the server's log).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <coapkit/coapkit.h>

static const char *port;
static struct ck_ctx *ctx;
static struct ck_client *cl;
static int failures;

/* Prints one verdict line. A format starting with '!' reports a failure
 * (the '!' is not printed). */
static void report(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void report(const char *name, const char *fmt, ...)
{
  bool ok = fmt[0] != '!';
  va_list ap;
  va_start(ap, fmt);
  printf("%s %s: ", ok ? "PASS" : "FAIL", name);
  vprintf(ok ? fmt : fmt + 1, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
  if (!ok)
    failures++;
}

/* PASS with ok when bad is NULL, else FAIL with bad. */
static void verdict(const char *name, const char *bad, const char *ok)
{
  if (bad)
    report(name, "!%s", bad);
  else
    report(name, "%s", ok);
}

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void uri(char *buf, size_t cap, const char *path)
{
  snprintf(buf, cap, "coap://127.0.0.1:%s%s", port, path);
}

/* What a call ended with, copied out of its final callback. */
struct outcome {
  bool done, timed_out;
  unsigned callbacks;
  int err;
  uint8_t code;
  bool has_msg;
  struct ck_msg msg;
  uint8_t *raw; /* msg's bytes */
  uint8_t *body;
  size_t body_len;
  uint8_t token[8];
  size_t tkl;
};

static void outcome_free(struct outcome *o)
{
  free(o->raw);
  free(o->body);
  memset(o, 0, sizeof *o);
}

static void on_final(struct ck_call *call, const struct ck_client_response *r, void *user)
{
  struct outcome *o = user;
  o->callbacks++;
  if (!r->final)
    return;
  o->tkl = ck_call_token(call, o->token);
  o->done = true;
  o->err = r->err;
  o->code = r->code;
  if (r->msg) {
    o->raw = malloc(r->msg->len);
    if (o->raw) {
      memcpy(o->raw, r->msg->data, r->msg->len);
      o->has_msg = ck_msg_parse(&o->msg, o->raw, r->msg->len) == 0;
    }
  }
  if (r->body_len) {
    o->body = malloc(r->body_len);
    if (o->body) {
      memcpy(o->body, r->body, r->body_len);
      o->body_len = r->body_len;
    }
  }
}

/* Runs the loop until done() or the deadline; returns false on timeout. */
static bool run_until(bool (*done)(void *), void *arg, uint64_t timeout_ms)
{
  uint64_t end = now_ms() + timeout_ms;
  while (!done(arg)) {
    uint64_t t = now_ms();
    if (t >= end)
      return false;
    uint64_t left = end - t;
    ck_ctx_process(ctx, left < 100 ? (int)left : 100);
  }
  return true;
}

/* For a plain wait: run the loop for the whole time. */
static bool never(void *arg)
{
  (void)arg;
  return false;
}

static bool outcome_done(void *arg)
{
  return ((struct outcome *)arg)->done;
}

/* Sends req on client c and waits at most timeout_ms for the final
 * callback; on timeout the call is cancelled (which ends it at once). A
 * send that fails is an outcome with that error. */
static void run_call_on(struct ck_client *c, const struct ck_client_request *req,
                        struct outcome *o, uint64_t timeout_ms)
{
  memset(o, 0, sizeof *o);
  struct ck_call *call;
  int rc = ck_client_send(c, req, on_final, o, &call);
  if (rc < 0) {
    o->done = true;
    o->err = rc;
    return;
  }
  if (!run_until(outcome_done, o, timeout_ms)) {
    ck_call_cancel(call, false);
    o->timed_out = true;
  }
}

static void run_call(const struct ck_client_request *req, struct outcome *o,
                     uint64_t timeout_ms)
{
  run_call_on(cl, req, o, timeout_ms);
}

/* A request to path with an optional text payload, in 10 s at most. */
static void simple(uint8_t method, const char *path, const char *payload,
                   bool non, struct outcome *o)
{
  char u[256];
  uri(u, sizeof u, path);
  struct ck_client_request req;
  ck_client_request_init(&req, method, u);
  req.non = non;
  if (payload) {
    req.payload = payload;
    req.payload_len = strlen(payload);
    req.content_format = 0; /* text/plain */
  }
  run_call(&req, o, 10000);
}

static const char *code_str(uint8_t code, char buf[40])
{
  ck_code_format(buf, 40, code);
  return buf;
}

/* Checks a plain outcome: no error, the expected code, and (when body is
 * not NULL) exactly that body. Returns NULL or what went wrong. */
static const char *expect(const struct outcome *o, uint8_t code,
                          const char *body, char why[160])
{
  char a[40], b[40];
  if (o->timed_out)
    return "no final callback within the deadline";
  if (o->err) {
    snprintf(why, 160, "err %s", ck_err_name(o->err));
    return why;
  }
  if (o->code != code) {
    snprintf(why, 160, "code %s, expected %s", code_str(o->code, a),
             code_str(code, b));
    return why;
  }
  if (body && (o->body_len != strlen(body) ||
               memcmp(o->body, body, o->body_len) != 0)) {
    snprintf(why, 160, "body '%.*s', expected '%s'", (int)o->body_len,
             o->body ? (const char *)o->body : "", body);
    return why;
  }
  return NULL;
}

/* --- scenarios --- */

static void test_get(void)
{
  struct outcome o;
  char why[160];
  simple(CK_GET, "/", NULL, false, &o);
  const char *bad = expect(&o, CK_CONTENT, NULL, why);
  if (!bad && !(o.body_len > 7 && memmem(o.body, o.body_len, "libcoap", 7)))
    bad = "the body does not mention libcoap";
  if (bad)
    report("method GET", "!%s", bad);
  else
    report("method GET", "2.05 with %zu bytes", o.body_len);
  outcome_free(&o);
}

/* PUT creates, PUT replaces, GET reads back. */
static void test_put(void)
{
  struct outcome o;
  char why[160];
  const char *bad = NULL;
  simple(CK_PUT, "/put-res", "first", false, &o);
  bad = expect(&o, CK_CREATED, NULL, why);
  outcome_free(&o);
  if (!bad) {
    simple(CK_PUT, "/put-res", "second", false, &o);
    bad = expect(&o, CK_CHANGED, NULL, why);
    outcome_free(&o);
  }
  if (!bad) {
    simple(CK_GET, "/put-res", NULL, false, &o);
    bad = expect(&o, CK_CONTENT, "second", why);
    outcome_free(&o);
  }
  verdict("method PUT", bad, "2.01, then 2.04, read back");
}

/* POST to a new path creates it, with Location-Path naming it. */
static void test_post(void)
{
  struct outcome o;
  char why[160];
  simple(CK_POST, "/post-res", "posted", false, &o);
  const char *bad = expect(&o, CK_CREATED, NULL, why);
  struct ck_opt loc;
  if (!bad &&
      (!o.has_msg || ck_msg_opt(&o.msg, CK_OPT_LOCATION_PATH, &loc) < 0 ||
       loc.len != 8 || memcmp(loc.val, "post-res", 8) != 0))
    bad = "no Location-Path post-res";
  outcome_free(&o);
  if (!bad) {
    simple(CK_POST, "/post-res", "again", false, &o);
    bad = expect(&o, CK_CHANGED, NULL, why);
    outcome_free(&o);
  }
  if (!bad) {
    simple(CK_GET, "/post-res", NULL, false, &o);
    bad = expect(&o, CK_CONTENT, "again", why);
    outcome_free(&o);
  }
  verdict("method POST", bad, "2.01 with Location-Path, 2.04");
}

static void test_delete(void)
{
  struct outcome o;
  char why[160];
  simple(CK_PUT, "/del-res", "doomed", false, &o);
  const char *bad = expect(&o, CK_CREATED, NULL, why);
  outcome_free(&o);
  if (!bad) {
    simple(CK_DELETE, "/del-res", NULL, false, &o);
    bad = expect(&o, CK_DELETED, NULL, why);
    outcome_free(&o);
  }
  if (!bad) {
    simple(CK_GET, "/del-res", NULL, false, &o);
    bad = expect(&o, CK_NOT_FOUND, NULL, why);
    outcome_free(&o);
  }
  verdict("method DELETE", bad, "2.02, then GET is 4.04");
}

/* FETCH, PATCH and iPATCH carry a payload to a resource that exists
 * (/example_data: 4.05, it has no handler for them) and to one that does
 * not (4.04). The script checks that libcoap logged our method, path and
 * payload. */
static void test_method_no_handler(uint8_t method, const char *name,
                                   const char *payload)
{
  struct outcome o;
  char why[160], label[40];
  snprintf(label, sizeof label, "method %s", name);
  simple(method, "/example_data", payload, false, &o);
  const char *bad = expect(&o, CK_METHOD_NOT_ALLOWED, NULL, why);
  outcome_free(&o);
  if (!bad) {
    simple(method, "/no-such-res", payload, false, &o);
    bad = expect(&o, CK_NOT_FOUND, NULL, why);
    outcome_free(&o);
  }
  verdict(label, bad, "4.05 on /example_data, 4.04 elsewhere");
}

static void test_con_non(bool non)
{
  struct outcome o;
  char why[160];
  const char *name = non ? "NON request" : "CON request";
  simple(CK_GET, "/", NULL, non, &o);
  const char *bad = expect(&o, CK_CONTENT, NULL, why);
  /* A CON is answered piggybacked in the ACK, a NON with a NON. */
  uint8_t want = non ? CK_TYPE_NON : CK_TYPE_ACK;
  if (!bad && (!o.has_msg || o.msg.type != want)) {
    snprintf(why, sizeof why, "answered with %s, expected %s",
             o.has_msg ? ck_type_name(o.msg.type) : "nothing",
             ck_type_name(want));
    bad = why;
  }
  report(name, bad ? "!%s" : "2.05 in a %s", bad ? bad : ck_type_name(want));
  outcome_free(&o);
}

/* /async?1: an empty ACK now, the response as its own CON a second
 * later (RFC 7252 §5.2.2). */
static void test_separate(void)
{
  struct outcome o;
  char why[160];
  simple(CK_GET, "/async?1", NULL, false, &o);
  const char *bad = expect(&o, CK_CONTENT, "done", why);
  if (!bad && (!o.has_msg || o.msg.type != CK_TYPE_CON))
    bad = "the response did not come as a separate CON";
  verdict("separate response", bad, "2.05 'done' in a CON");
  outcome_free(&o);
}

/* A NON request whose answer is block-wise: every block request is NON
 * too, and the 1,500 bytes of /example_data come back whole. */
static void test_non_blockwise(void)
{
  struct outcome o;
  char why[160];
  simple(CK_GET, "/example_data", NULL, true, &o);
  const char *bad = expect(&o, CK_CONTENT, NULL, why);
  if (!bad && o.body_len != 1500) {
    snprintf(why, sizeof why, "%zu bytes, expected 1500", o.body_len);
    bad = why;
  } else if (!bad && (!o.has_msg || o.msg.type != CK_TYPE_NON)) {
    bad = "the last block did not come in a NON";
  }
  verdict("NON block-wise", bad, "1500 bytes in NON blocks");
  outcome_free(&o);
}

struct many {
  struct outcome o[5];
};

static bool many_done(void *arg)
{
  struct many *m = arg;
  for (size_t i = 0; i < 5; i++)
    if (!m->o[i].done)
      return false;
  return true;
}

/* Five calls started at once: NSTART (1) holds four back until the one
 * before has ended (RFC 7252 §4.7); every one is answered. */
static void test_concurrent(void)
{
  static const char *const paths[5] = {"/", "/time", "/example_data",
                                       "/put-res", "/no-such-res"};
  static const uint8_t codes[5] = {CK_CONTENT, CK_CONTENT, CK_CONTENT,
                                   CK_CONTENT, CK_NOT_FOUND};
  struct many m;
  memset(&m, 0, sizeof m);
  struct ck_call *calls[5];
  const char *bad = NULL;
  char why[160];
  for (size_t i = 0; i < 5 && !bad; i++) {
    char u[256];
    uri(u, sizeof u, paths[i]);
    struct ck_client_request req;
    ck_client_request_init(&req, CK_GET, u);
    if (ck_client_send(cl, &req, on_final, &m.o[i], &calls[i]) < 0)
      bad = "send failed";
  }
  if (!bad && !run_until(many_done, &m, 15000)) {
    for (size_t i = 0; i < 5; i++)
      if (!m.o[i].done)
        ck_call_cancel(calls[i], false);
    bad = "not every call ended within 15 s";
  }
  const char *where = "";
  for (size_t i = 0; i < 5; i++) {
    if (!bad && (bad = expect(&m.o[i], codes[i], NULL, why)) != NULL)
      where = paths[i];
    outcome_free(&m.o[i]);
  }
  if (bad)
    report("concurrent calls", "!%s %s", where, bad);
  else
    report("concurrent calls", "5 started at once, all answered");
}

/* A call waiting for a separate response is cancelled: its final
 * callback fires at once with CK_ECANCELED, and the response that comes
 * later finds no call and is rejected (answered with RST). */
static void test_cancel(void)
{
  char u[256];
  uri(u, sizeof u, "/async?1");
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, u);
  struct outcome o;
  memset(&o, 0, sizeof o);
  struct ck_call *call;
  struct ck_client_stats before, after;
  ck_client_stats(cl, &before);
  const char *bad = NULL;
  if (ck_client_send(cl, &req, on_final, &o, &call) < 0) {
    bad = "send failed";
  } else {
    run_until(never, NULL, 300); /* the empty ACK comes at once */
    if (o.done) {
      bad = "the call ended before the cancel";
    } else {
      ck_call_cancel(call, false);
      if (!o.done || o.err != CK_ECANCELED || o.callbacks != 1)
        bad = "no single final callback with ECANCELED";
    }
  }
  if (!bad) {
    run_until(never, NULL, 1500); /* the separate response comes */
    ck_client_stats(cl, &after);
    if (after.rejected != before.rejected + 1)
      bad = "the late response was not rejected";
  }
  verdict("cancel a call", bad, "ECANCELED at once, late answer rejected");
  outcome_free(&o);
}

/* --- observe --- */

struct obs {
  unsigned want;          /* cancel after this many notifications */
  unsigned notifications; /* non-final callbacks with Observe */
  bool increasing;
  uint32_t last;
  bool done;
  int err;
  uint8_t token[8];
  size_t tkl;
};

static void on_notify(struct ck_call *call, const struct ck_client_response *r, void *user)
{
  struct obs *s = user;
  if (r->final) {
    s->done = true;
    s->err = r->err;
    return;
  }
  if (r->err || !r->has_observe || r->code != CK_CONTENT)
    return;
  if (s->notifications > 0 && r->observe <= s->last)
    s->increasing = false;
  s->last = r->observe;
  s->notifications++;
  printf("  notification %u: Observe=%u '%.*s'\n", s->notifications,
         (unsigned)r->observe, (int)r->body_len, (const char *)r->body);
  if (s->notifications == s->want) {
    /* Right after a notification: /time sends the next one a second
     * later, so none is on its way while the cancel is. */
    s->tkl = ck_call_token(call, s->token);
    ck_call_cancel(call, true);
  }
}

static bool obs_done(void *arg)
{
  return ((struct obs *)arg)->done;
}

/* Observe /time for the registration plus 3 notifications, cancel
 * proactively (GET with Observe=1), and check that nothing more comes:
 * a notification after the cancel would be answered with RST and counted
 * as rejected. The script checks libcoap's log for the removal. */
static void test_observe(void)
{
  char u[256];
  uri(u, sizeof u, "/time");
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, u);
  req.observe = true;
  struct obs s = {.want = 4, .increasing = true};
  struct ck_call *call;
  int rc = ck_client_send(cl, &req, on_notify, &s, &call);
  if (rc < 0) {
    report("observe", "!send: %s", ck_strerror(rc));
    return;
  }
  if (!run_until(obs_done, &s, 15000)) {
    ck_call_cancel(call, false);
    report("observe", "!%u notifications in 15 s, no final callback",
           s.notifications);
    return;
  }
  struct ck_client_stats before, after;
  ck_client_stats(cl, &before);
  run_until(never, NULL, 2500);
  ck_client_stats(cl, &after);
  char tok[17] = "";
  for (size_t i = 0; i < s.tkl; i++)
    snprintf(tok + 2 * i, 3, "%02x", s.token[i]);
  if (s.notifications < 4)
    report("observe", "!only %u notifications", s.notifications);
  else if (!s.increasing)
    report("observe", "!Observe numbers did not increase");
  else if (s.err != CK_ECANCELED)
    report("observe", "!final callback with %s, not ECANCELED",
           ck_err_name(s.err));
  else if (after.rejected != before.rejected)
    report("observe", "!%llu notifications came after the cancel",
           (unsigned long long)(after.rejected - before.rejected));
  else
    report("observe", "%u notifications, cancelled, silent 2.5 s; token=%s",
           s.notifications, tok);
}

struct obs_once {
  unsigned notifications;
  bool done;
  int err;
};

static void on_notify_once(struct ck_call *call, const struct ck_client_response *r,
                           void *user)
{
  struct obs_once *s = user;
  if (r->final) {
    s->done = true;
    s->err = r->err;
    return;
  }
  /* Reactive: the call is forgotten now, from inside its callback. */
  if (!r->err && r->has_observe && ++s->notifications == 2)
    ck_call_cancel(call, false);
}

static bool obs_once_done(void *arg)
{
  return ((struct obs_once *)arg)->done;
}

/* Observe /time and cancel reactively (RFC 7641 §3.6): the call ends at
 * once, the server's next notification finds no call and is answered
 * with RST, and that RST removes the observer, so exactly one
 * notification is rejected. */
static void test_observe_reactive(void)
{
  char u[256];
  uri(u, sizeof u, "/time");
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, u);
  req.observe = true;
  struct obs_once s = {.notifications = 0};
  struct ck_call *call;
  if (ck_client_send(cl, &req, on_notify_once, &s, &call) < 0) {
    report("observe reactive cancel", "!send failed");
    return;
  }
  struct ck_client_stats before, after;
  ck_client_stats(cl, &before);
  if (!run_until(obs_once_done, &s, 10000)) {
    ck_call_cancel(call, false);
    report("observe reactive cancel", "!no final callback in 10 s");
    return;
  }
  run_until(never, NULL, 3500);
  ck_client_stats(cl, &after);
  uint64_t rejected = after.rejected - before.rejected;
  if (s.err != CK_ECANCELED)
    report("observe reactive cancel", "!ended with %s", ck_err_name(s.err));
  else if (rejected != 1)
    report("observe reactive cancel", "!%llu notifications rejected, not 1",
           (unsigned long long)rejected);
  else
    report("observe reactive cancel", "ECANCELED, one notification "
                                      "answered with RST, then silence");
}

struct obs_blk {
  unsigned notifications;
  size_t last_len;
  uint8_t *last; /* the latest notification's body */
  bool done;
  int err;
};

static void on_notify_blk(struct ck_call *call, const struct ck_client_response *r,
                          void *user)
{
  (void)call;
  struct obs_blk *s = user;
  if (r->final) {
    s->done = true;
    s->err = r->err;
    return;
  }
  if (r->err || r->code != CK_CONTENT)
    return;
  s->notifications++;
  free(s->last);
  s->last = malloc(r->body_len ? r->body_len : 1);
  if (s->last)
    memcpy(s->last, r->body, r->body_len);
  s->last_len = s->last ? r->body_len : 0;
}

struct obs_blk_wait {
  struct obs_blk *s;
  unsigned n;
};

static bool obs_blk_count(void *arg)
{
  struct obs_blk_wait *w = arg;
  return w->s->done || w->s->notifications >= w->n;
}

static bool obs_blk_done(void *arg)
{
  return ((struct obs_blk *)arg)->done;
}

/* Observe /example_data (1,500 bytes, so each notification's body comes
 * block-wise: RFC 7959 §3.4), change it with a block-wise PUT of 3,000
 * bytes, and receive the new body whole in a notification. Run last: it
 * changes /example_data. */
static void test_observe_blockwise(void)
{
  char u[256], why[160];
  uri(u, sizeof u, "/example_data");
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, u);
  req.observe = true;
  struct obs_blk s;
  memset(&s, 0, sizeof s);
  struct ck_call *call;
  const char *bad = NULL;
  uint8_t data[3000];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)('A' + i % 26);
  if (ck_client_send(cl, &req, on_notify_blk, &s, &call) < 0) {
    report("observe block-wise", "!send failed");
    return;
  }
  struct obs_blk_wait w = {.s = &s, .n = 1};
  if (!run_until(obs_blk_count, &w, 10000) || s.done)
    bad = "no registration response";
  else if (s.last_len != 1500)
    bad = "the first body is not 1500 bytes";
  if (!bad) {
    struct ck_client_request put;
    ck_client_request_init(&put, CK_PUT, u);
    put.payload = data;
    put.payload_len = sizeof data;
    put.content_format = 0;
    struct outcome o;
    run_call(&put, &o, 10000);
    bad = expect(&o, CK_CHANGED, NULL, why);
    outcome_free(&o);
  }
  w.n = 2;
  if (!bad && (!run_until(obs_blk_count, &w, 10000) || s.done))
    bad = "no notification after the PUT";
  if (!bad &&
      (s.last_len != sizeof data || memcmp(s.last, data, sizeof data) != 0)) {
    snprintf(why, sizeof why, "notified %zu bytes, expected the %zu put",
             s.last_len, sizeof data);
    bad = why;
  }
  if (!s.done) {
    ck_call_cancel(call, true);
    if (!run_until(obs_blk_done, &s, 10000)) {
      ck_call_cancel(call, false);
      if (!bad)
        bad = "the cancel was not answered";
    }
  }
  if (!bad && s.err != CK_ECANCELED)
    bad = "the observation did not end with ECANCELED";
  free(s.last);
  verdict("observe block-wise", bad, "1500 bytes, then the 3000 put, whole");
}

/* --- block-wise --- */

static void fill_random(uint8_t *p, size_t n, uint32_t seed)
{
  uint32_t x = seed ? seed : 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = (uint8_t)x;
  }
}

/* The number and M bit of the message's Block2 option, or -1. */
static long block2_num(const struct outcome *o, bool *more)
{
  uint32_t v;
  struct ck_block b;
  if (!o->has_msg || ck_msg_opt_uint(&o->msg, CK_OPT_BLOCK2, &v) < 0 ||
      ck_block_decode(v, &b) < 0)
    return -1;
  *more = b.more;
  return (long)b.num;
}

/* PUTs size random bytes to a new resource block-wise (Block1), GETs
 * them back (Block2) and compares byte for byte. block_size 0 is the
 * client's default (1024); others are negotiated early. */
static void test_block(size_t size, uint16_t block_size, const char *label)
{
  char name[64], u[256], why[160];
  snprintf(name, sizeof name, "block-wise %s", label);
  snprintf(u, sizeof u, "coap://127.0.0.1:%s/blk-%zu", port, size);
  uint8_t *data = malloc(size);
  if (!data) {
    report(name, "!out of memory");
    return;
  }
  fill_random(data, size, (uint32_t)size);
  size_t bs = block_size ? block_size : 1024;
  long last = (long)((size + bs - 1) / bs) - 1;

  struct ck_client_request req;
  ck_client_request_init(&req, CK_PUT, u);
  req.payload = data;
  req.payload_len = size;
  req.content_format = 42; /* application/octet-stream */
  req.block_size = block_size;
  struct outcome o;
  uint64_t t0 = now_ms();
  run_call(&req, &o, 120000);
  uint64_t t_up = now_ms() - t0;
  /* libcoap 4.3 does not echo Block1 in its final response (RFC 7959
   * §2.3's examples do), so the script reads the blocks from its log. */
  const char *bad = expect(&o, CK_CREATED, NULL, why);
  outcome_free(&o);

  uint64_t t_down = 0;
  if (!bad) {
    ck_client_request_init(&req, CK_GET, u);
    req.block_size = block_size;
    t0 = now_ms();
    run_call(&req, &o, 120000);
    t_down = now_ms() - t0;
    bad = expect(&o, CK_CONTENT, NULL, why);
    bool more = true;
    long n2 = block2_num(&o, &more);
    if (!bad && o.body_len != size) {
      snprintf(why, sizeof why, "got %zu bytes back, sent %zu", o.body_len,
               size);
      bad = why;
    } else if (!bad && memcmp(o.body, data, size) != 0) {
      bad = "the body read back differs";
    } else if (!bad && size > bs && (n2 != last || more)) {
      snprintf(why, sizeof why, "final Block2 %ld%s, expected %ld", n2,
               more ? "/M" : "", last);
      bad = why;
    }
    outcome_free(&o);
  }
  free(data);
  if (bad)
    report(name, "!%s", bad);
  else
    report(name, "%zu bytes in %ld blocks of %zu: up %llu ms, down %llu ms",
           size, last + 1, bs, (unsigned long long)t_up,
           (unsigned long long)t_down);
}

/* --- errors, ping, tokens, sizes --- */

/* Writes the URI of a loopback port nothing listens on: one the kernel
 * gives out, closed again. Returns 0 or a negative error. */
static int closed_port_uri(char *u, size_t cap)
{
  struct ck_ctx *tmp;
  struct ck_addr a;
  int rc = ck_ctx_new(NULL, &tmp);
  if (rc < 0)
    return rc;
  if ((rc = ck_addr_parse(&a, "127.0.0.1", 0)) == 0 &&
      (rc = ck_ctx_listen(tmp, &a)) == 0 &&
      (rc = ck_ctx_local_addr(tmp, 0, &a)) == 0)
    snprintf(u, cap, "coap://127.0.0.1:%u/", (unsigned)ck_addr_port(&a));
  ck_ctx_free(tmp);
  return rc;
}

/* A port nothing listens on: the kernel's ICMP port unreachable ends the
 * call with CK_EUNREACH at once instead of after 93 s of retransmission. */
static void test_unreachable(void)
{
  char u[80];
  if (closed_port_uri(u, sizeof u) < 0) {
    report("unreachable port", "!could not find a free port");
    return;
  }

  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, u);
  struct outcome o;
  uint64_t t0 = now_ms();
  run_call(&req, &o, 10000);
  uint64_t dt = now_ms() - t0;
  if (o.timed_out || o.err != CK_EUNREACH)
    report("unreachable port", "!%s after %llu ms",
           o.timed_out ? "no final callback" : ck_err_name(o.err),
           (unsigned long long)dt);
  else if (dt > 1000)
    report("unreachable port", "!EUNREACH, but only after %llu ms",
           (unsigned long long)dt);
  else
    report("unreachable port", "EUNREACH in %llu ms", (unsigned long long)dt);
  outcome_free(&o);
}

struct sibling {
  struct ck_call *id[2];   /* which is which */
  struct ck_call *call[2]; /* still running */
  int err[2];
  unsigned finals;
};

static void on_sibling(struct ck_call *call, const struct ck_client_response *r,
                       void *user)
{
  struct sibling *s = user;
  if (!r->final)
    return;
  int i = call == s->id[0] ? 0 : 1;
  s->err[i] = r->err;
  s->call[i] = NULL;
  s->finals++;
  /* Give up on the other call as soon as one fails: it is ended (and
   * freed) while the library may be going through its calls. */
  struct ck_call *other = s->call[1 - i];
  if (other) {
    s->call[1 - i] = NULL;
    ck_call_cancel(other, false);
  }
}

static bool sibling_done(void *arg)
{
  return ((struct sibling *)arg)->finals == 2;
}

/* Two NON requests to a closed port, whose callback cancels the other
 * call when the first fails (this freed a call the ICMP handler was
 * about to visit: ASan catches a regression). */
static void test_unreachable_sibling(void)
{
  char u[80];
  if (closed_port_uri(u, sizeof u) < 0) {
    report("unreachable NON, sibling cancelled", "!no free port");
    return;
  }
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, u);
  req.non = true;
  struct sibling s;
  memset(&s, 0, sizeof s);
  for (int i = 0; i < 2; i++)
    if (ck_client_send(cl, &req, on_sibling, &s, &s.call[i]) < 0)
      s.finals++;
    else
      s.id[i] = s.call[i];
  bool done = run_until(sibling_done, &s, 5000);
  for (int i = 0; i < 2; i++)
    if (s.call[i])
      ck_call_cancel(s.call[i], false);
  bool one_each = (s.err[0] == CK_EUNREACH && s.err[1] == CK_ECANCELED) ||
                  (s.err[1] == CK_EUNREACH && s.err[0] == CK_ECANCELED);
  if (!done || !one_each)
    report("unreachable NON, sibling cancelled", "!ended with %s and %s",
           ck_err_name(s.err[0]), ck_err_name(s.err[1]));
  else
    report("unreachable NON, sibling cancelled", "EUNREACH and ECANCELED");
}

/* A response code is data: 4.04 is err 0, code 0x84, and the blocking
 * form returns 0. */
static void test_not_found(void)
{
  char u[256];
  uri(u, sizeof u, "/no/such/resource");
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, u);
  struct ck_client_result res;
  int rc = ck_client_do(cl, &req, &res);
  if (rc != 0 || res.err != 0 || res.code != 0x84)
    report("4.04", "!rc %d, err %d, code 0x%02x", rc, res.err, res.code);
  else
    report("4.04", "code 0x84, err 0 (ck_client_do)");
  ck_client_result_free(&res);
}

/* An empty CON is a ping, which libcoap answers with RST (§4.3). */
static void test_ping(void)
{
  char u[256];
  uri(u, sizeof u, "/");
  struct ck_client_request req;
  ck_client_request_init(&req, 0, u);
  struct outcome o;
  run_call(&req, &o, 10000);
  if (o.timed_out || o.err != 0)
    report("ping", "!%s", o.timed_out ? "no answer" : ck_err_name(o.err));
  else
    report("ping", "answered (RST, as libcoap does)");
  outcome_free(&o);
}

/* The caller's token is used as given (8 bytes, then none at all), and
 * the response echoes it. */
static void test_token(void)
{
  static const uint8_t tok8[8] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 0xff};
  char u[256], why[160];
  uri(u, sizeof u, "/");
  const char *bad = NULL;
  static const size_t lens[2] = {8, 0};
  for (size_t i = 0; i < 2 && !bad; i++) {
    size_t len = lens[i];
    struct ck_client_request req;
    ck_client_request_init(&req, CK_GET, u);
    req.token = tok8;
    req.token_len = len;
    struct outcome o;
    run_call(&req, &o, 10000);
    bad = expect(&o, CK_CONTENT, NULL, why);
    if (!bad && (o.tkl != len || memcmp(o.token, tok8, len) != 0))
      bad = "ck_call_token differs from the token given";
    if (!bad && (!o.has_msg || o.msg.tkl != len ||
                 memcmp(o.msg.token, tok8, len) != 0)) {
      snprintf(why, sizeof why, "the %zu-byte token did not come back", len);
      bad = why;
    }
    outcome_free(&o);
  }
  verdict("explicit token", bad, "8 bytes and empty, echoed");
}

/* RFC 7959 §4: a request with Size2 0 asks for the size; libcoap gives it
 * with every block of /example_data (1,500 bytes). A client whose
 * max_body is smaller refuses the body as soon as Size2 says so. */
static void test_size2(void)
{
  char u[256], why[160];
  uri(u, sizeof u, "/example_data");
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, u);
  struct ck_opt size2 = {.num = CK_OPT_SIZE2, .len = 0, .val = NULL};
  req.opts = &size2;
  req.nopts = 1;
  struct outcome o;
  run_call(&req, &o, 10000);
  const char *bad = expect(&o, CK_CONTENT, NULL, why);
  uint32_t s2 = 0;
  if (!bad && (!o.has_msg || ck_msg_opt_uint(&o.msg, CK_OPT_SIZE2, &s2) < 0))
    bad = "no Size2 in the response";
  if (!bad && (s2 != 1500 || o.body_len != s2)) {
    snprintf(why, sizeof why, "Size2 %u, body %zu bytes, expected 1500",
             (unsigned)s2, o.body_len);
    bad = why;
  }
  outcome_free(&o);

  if (!bad) {
    struct ck_client_config cfg = {.max_body = 1000};
    struct ck_client *small;
    int rc = ck_client_new(ctx, &cfg, &small);
    if (rc < 0) {
      bad = "ck_client_new failed";
    } else {
      run_call_on(small, &req, &o, 10000);
      if (o.timed_out || o.err != CK_EFULL) {
        snprintf(why, sizeof why, "max_body 1000: %s, expected EFULL",
                 o.timed_out ? "no answer" : ck_err_name(o.err));
        bad = why;
      }
      outcome_free(&o);
      ck_client_free(small);
    }
  }
  verdict("Size2", bad, "Size2 1500 = body; max_body 1000 is EFULL");
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  port = argv[1];
  if (ck_ctx_new(NULL, &ctx) < 0 || ck_client_new(ctx, NULL, &cl) < 0) {
    fprintf(stderr, "cannot create a context and a client\n");
    return 1;
  }
  test_get();
  test_post();
  test_put();
  test_delete();
  test_method_no_handler(CK_FETCH, "FETCH", "fetch-body");
  test_method_no_handler(CK_PATCH, "PATCH", "patch-body");
  test_method_no_handler(CK_IPATCH, "iPATCH", "ipatch-body");
  test_con_non(false);
  test_con_non(true);
  test_separate();
  test_non_blockwise();
  test_concurrent();
  test_cancel();
  test_observe();
  test_observe_reactive();
  test_block(1024, 256, "1 KiB");
  test_block(100 * 1024, 0, "100 KiB");
  test_block(4 * 1024 * 1024, 0, "4 MiB");
  test_unreachable();
  test_unreachable_sibling();
  test_not_found();
  test_ping();
  test_token();
  test_size2();
  test_observe_blockwise();

  struct ck_client_stats st;
  ck_client_stats(cl, &st);
  printf("stats: requests=%llu retransmits=%llu notifications=%llu "
         "stale=%llu rejected=%llu\n",
         (unsigned long long)st.requests, (unsigned long long)st.retransmits,
         (unsigned long long)st.notifications,
         (unsigned long long)st.notifications_stale,
         (unsigned long long)st.rejected);
  ck_ctx_free(ctx); /* frees the client too */
  printf("%s: %d failure%s\n", failures ? "FAIL" : "PASS", failures,
         failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}
