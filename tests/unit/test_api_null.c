/* Every public function of opt.h, uri.h, link.h, cf.h, server.h, ctx.h,
 * loop.h and dtls.h (with ck_client_disconnect) called with NULL for
 * each pointer argument (issues 8, 10): none
 * may crash, and each returns what its header says (CK_EINVAL from an
 * int, NULL from a pointer, false from a bool, 0 from a size or count,
 * nothing done by a void). error.h takes no pointers. msg.h, addr.h and
 * client.h are covered by test_client.c.
 *
 * The calls sit in tables, one row per call with the expression's text,
 * so a failure names the call. Rows are independent of one another, since
 * C leaves the order in which an initializer's calls run unspecified;
 * calls whose effect must be seen later (a sticky error) are checked
 * after the table. Request and response accessors are also called with
 * live objects from inside a handler that a real datagram over loopback
 * reaches, and the answer that a refused option turns into (5.00) is
 * read back from the socket. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coapkit/coapkit.h"

static unsigned failures;

struct int_case {
  const char *what;
  long long got;
  long long want;
};

struct ptr_case {
  const char *what;
  const void *got; /* must be NULL */
};

#define I(expr, want) {#expr, (long long)(expr), (long long)(want)}
#define P(expr) {#expr, (const void *)(expr)}
/* bools, sizes and counts compare as integers too */
#define B(expr, want) I((expr) ? 1 : 0, (want) ? 1 : 0)

/* Reports every mismatch (no longjmp: some rows run inside a library
 * callback, which must return normally). */
static void check_ints(const struct int_case *c, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (c[i].got != c[i].want) {
      print_error("%s returned %lld, want %lld\n", c[i].what, c[i].got,
                  c[i].want);
      failures++;
    }
}

static void check_nulls(const struct ptr_case *c, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (c[i].got != NULL) {
      print_error("%s returned %p, want NULL\n", c[i].what, c[i].got);
      failures++;
    }
}

#define CHECK_INTS(t) check_ints(t, sizeof t / sizeof t[0])
#define CHECK_NULLS(t) check_nulls(t, sizeof t / sizeof t[0])

static void timer_cb(struct ck_timer *t, void *user)
{
  (void)t;
  (void)user;
}

static void watch_cb(struct ck_watch *w, int fd, unsigned ev, void *user)
{
  (void)w;
  (void)fd;
  (void)ev;
  (void)user;
}

static uint64_t clock_cb(void *user)
{
  (void)user;
  return 0;
}

static void random_cb(void *user, void *buf, size_t len)
{
  (void)user;
  memset(buf, 0, len);
}

static void log_cb(void *user, enum ck_log_level level, const char *msg)
{
  (void)user;
  (void)level;
  (void)msg;
}

static void handler_cb(struct ck_resource *r, const struct ck_request *req,
                       struct ck_response *resp, void *user)
{
  (void)r;
  (void)req;
  (void)resp;
  (void)user;
}

/* --- codec: opt.h, cf.h, uri.h, link.h --- */

static void test_codec(void **state)
{
  (void)state;
  failures = 0;
  uint8_t buf[8] = {0x16};
  uint32_t v = 0;
  uint16_t cf = 0;
  struct ck_block blk = {.num = 1, .more = false, .szx = 2};
  struct ck_uri u;
  struct ck_opt opts[4];
  uint8_t scratch[64];
  char out[64];
  struct ck_builder b;
  struct ck_msg m;
  /* A CON GET without options: no Uri-Host, so the destination is needed. */
  static const uint8_t get[] = {0x40, 0x01, 0x00, 0x01};
  assert_int_equal(ck_msg_parse(&m, get, sizeof get), 0);
  assert_int_equal(ck_uri_parse(&u, "coap://h/a", 10), 0);
  struct ck_uri no_host = u, no_path = u;
  no_host.host = NULL;
  no_path.path = NULL;
  no_path.path_len = 2;
  struct ck_link_reader rd;
  struct ck_link link = {.target = "/a", .target_len = 2, .nparams = 1};
  link.params[0] = (struct ck_link_param){"rt", 2, "x", 1, false};
  struct ck_link_writer w;
  ck_link_writer_init(&w, out, sizeof out);

  struct int_case ints[] = {
    I(ck_opt_uint_encode(5, NULL), 0),
    I(ck_opt_uint_decode(NULL, 1, &v), CK_EINVAL),
    I(ck_opt_uint_decode(buf, 1, NULL), CK_EINVAL),
    I(ck_block_decode(0x16, NULL), CK_EINVAL),
    I(ck_block_encode(NULL, &v), CK_EINVAL),
    I(ck_block_encode(&blk, NULL), CK_EINVAL),
    I(ck_cf_parse(NULL, &cf), CK_EINVAL),
    I(ck_cf_parse("json", NULL), CK_EINVAL),
    I(ck_cf_parse("50x", &cf), CK_EINVAL),
    I(ck_uri_parse(NULL, "coap://h", 8), CK_EINVAL),
    I(ck_uri_parse(&u, NULL, 8), CK_EINVAL),
    I(ck_uri_opts(NULL, opts, 4, scratch, sizeof scratch), CK_EINVAL),
    I(ck_uri_opts(&u, NULL, 4, scratch, sizeof scratch), CK_EINVAL),
    I(ck_uri_opts(&u, opts, 4, NULL, sizeof scratch), CK_EINVAL),
    I(ck_uri_opts(&no_host, opts, 4, scratch, sizeof scratch), CK_EINVAL),
    I(ck_uri_opts(&no_path, opts, 4, scratch, sizeof scratch), CK_EINVAL),
    I(ck_uri_to_builder("coap://h/a", NULL, scratch, sizeof scratch),
      CK_EINVAL),
    I(ck_uri_from_msg(NULL, false, "127.0.0.1", 5683, out, sizeof out),
      CK_EINVAL),
    I(ck_uri_from_msg(&m, false, "127.0.0.1", 5683, NULL, sizeof out),
      CK_EINVAL),
    I(ck_uri_from_msg(&m, false, NULL, 5683, out, sizeof out),
      CK_EURI_HOST),
    I(ck_uri_pct_decode(NULL, 3, out, sizeof out), CK_EINVAL),
    I(ck_uri_pct_decode("abc", 3, NULL, sizeof out), CK_EINVAL),
    I(ck_uri_pct_decode("abc", 3, NULL, 0), CK_ENOSPC),
    I(ck_link_next(NULL, &link), CK_EINVAL),
    B(ck_link_param_has(NULL, "x", 1), false),
    B(ck_link_param_has(&link.params[0], NULL, 1), false),
    B(ck_link_match(NULL, "rt=x", 4), false),
    B(ck_link_match(&link, NULL, 4), false),
    B(ck_link_match(&link, NULL, 0), true),
    I(ck_link_writer_finish(NULL), CK_EINVAL),
    I(ck_link_write(NULL, &link), CK_EINVAL),
  };
  CHECK_INTS(ints);

  struct ptr_case ptrs[] = {
    P(ck_opt_def_by_name(NULL)),
    P(ck_link_param(NULL, "rt")),
    P(ck_link_param(&link, NULL)),
  };
  CHECK_NULLS(ptrs);

  /* Empty views: not NULL arguments in the sense above, and valid. */
  assert_int_equal(ck_opt_uint_decode(NULL, 0, &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(ck_uri_parse(&u, NULL, 0), CK_EURI_SCHEME);

  /* The stateful ones, in order: errors that later calls must see. */
  ck_link_reader_init(NULL, "</a>", 4);
  ck_link_reader_init(&rd, NULL, 0);
  assert_int_equal(ck_link_next(&rd, &link), 0);
  ck_link_reader_init(&rd, NULL, 4);
  assert_int_equal(ck_link_next(&rd, &link), CK_EINVAL);
  ck_link_reader_init(&rd, "</a>", 4);
  assert_int_equal(ck_link_next(&rd, NULL), CK_EINVAL);

  ck_link_writer_init(NULL, out, sizeof out);
  ck_link_writer_init(&w, NULL, 8);
  assert_int_equal(ck_link_write(&w, &link), CK_EINVAL);
  assert_int_equal(ck_link_writer_finish(&w), CK_EINVAL);
  ck_link_writer_init(&w, out, sizeof out);
  assert_int_equal(ck_link_write(&w, NULL), CK_EINVAL);
  assert_int_equal(ck_link_write(&w, &link), CK_EINVAL); /* sticky */
  assert_int_equal(ck_link_writer_finish(&w), CK_EINVAL);

  /* ck_uri_to_builder remembers its error in the builder. */
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 1);
  assert_int_equal(ck_uri_to_builder(NULL, &b, scratch, sizeof scratch),
                   CK_EINVAL);
  assert_int_equal(ck_builder_finish(&b), CK_EINVAL);
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 1);
  assert_int_equal(ck_uri_to_builder("coap://h/a", &b, NULL, 16), CK_EINVAL);
  assert_int_equal(ck_builder_finish(&b), CK_EINVAL);

  assert_int_equal(failures, 0);
}

/* --- the context, its loop, timers and watches: ctx.h, loop.h --- */

static void test_ctx_and_loop(void **state)
{
  (void)state;
  failures = 0;
  struct ck_ctx *ctx = NULL;
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  struct ck_timer *t = NULL;
  struct ck_watch *wt = NULL;
  int fds[2];
  assert_int_equal(pipe(fds), 0);

  struct int_case ints[] = {
    I(ck_params_max_transmit_span(NULL), 0),
    I(ck_params_exchange_lifetime(NULL), 0),
    I(ck_params_non_lifetime(NULL), 0),
    I(ck_ctx_new(NULL, NULL), CK_EINVAL),
    I(ck_ctx_listen(NULL, &a), CK_EINVAL),
    I(ck_ctx_listen(ctx, NULL), CK_EINVAL),
    I(ck_ctx_local_addr(NULL, 0, &a), CK_EINVAL),
    I(ck_ctx_local_addr(ctx, 0, NULL), CK_EINVAL),
    I(ck_ctx_join(NULL, "224.0.1.187", NULL), CK_EINVAL),
    I(ck_ctx_join(ctx, NULL, NULL), CK_EINVAL),
    I(ck_ctx_fd(NULL), CK_EINVAL),
    I(ck_ctx_timeout(NULL), CK_EINVAL),
    I(ck_ctx_timeout(NULL), -1),
    I(ck_ctx_process(NULL, 0), CK_EINVAL),
    I(ck_run(NULL), CK_EINVAL),
    I(ck_stop_fd(NULL), CK_EINVAL),
    I(ck_ctx_recognize_option(NULL, CK_OPT_IF_MATCH), CK_EINVAL),
    I(ck_timer_new(NULL, timer_cb, NULL, &t), CK_EINVAL),
    I(ck_timer_new(ctx, NULL, NULL, &t), CK_EINVAL),
    I(ck_timer_new(ctx, timer_cb, NULL, NULL), CK_EINVAL),
    B(ck_timer_active(NULL), false),
    I(ck_watch_new(NULL, fds[0], CK_WATCH_READ, watch_cb, NULL, &wt),
      CK_EINVAL),
    I(ck_watch_new(ctx, fds[0], CK_WATCH_READ, NULL, NULL, &wt), CK_EINVAL),
    I(ck_watch_new(ctx, fds[0], CK_WATCH_READ, watch_cb, NULL, NULL),
      CK_EINVAL),
    I(ck_watch_set(NULL, CK_WATCH_READ), CK_EINVAL),
    I(ck_ctx_now(NULL), 0),
  };
  CHECK_INTS(ints);
  assert_null(t);
  assert_null(wt);

  /* Void functions do nothing with a NULL handle; ASan watches. */
  ck_params_default(NULL);
  ck_ctx_free(NULL);
  ck_stop(NULL);
  ck_ctx_set_clock(NULL, clock_cb, NULL);
  ck_ctx_set_random(NULL, random_cb, NULL);
  ck_ctx_set_log(NULL, log_cb, NULL);
  ck_timer_start(NULL, 10, 10);
  ck_timer_stop(NULL);
  ck_timer_free(NULL);
  ck_watch_free(NULL);
  struct ck_stats st;
  memset(&st, 0xab, sizeof st);
  ck_ctx_stats(NULL, &st);
  assert_int_equal(st.rx_datagrams, 0xababababababababull);
  ck_ctx_stats(ctx, NULL);

  /* ck_ctx_join's other documented answer: no endpoint to join on yet. */
  assert_int_equal(ck_ctx_join(ctx, "224.0.1.187", NULL), CK_ENOTFOUND);

  /* The context is unharmed: it still listens and runs. */
  assert_int_equal(ck_ctx_listen(ctx, &a), 0);
  assert_int_equal(ck_ctx_local_addr(ctx, 0, &a), 0);
  assert_true(ck_ctx_process(ctx, 0) >= 0);
  ck_ctx_free(ctx);
  close(fds[0]);
  close(fds[1]);
  assert_int_equal(failures, 0);
}

/* --- resources, requests, responses, deferred answers: server.h --- */

struct live {
  unsigned calls;
  struct ck_deferred *deferred;
};

/* Calls the accessors with a live request and response and NULL for the
 * other pointers, then refuses an option (val NULL), which must turn the
 * answer into a 5.00. */
static void h_null(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *user)
{
  (void)r;
  struct live *lv = user;
  const char *val = NULL;
  size_t len = 0;
  lv->calls++;
  struct int_case ints[] = {
    I(ck_request_query(req, NULL, &val, &len), CK_EINVAL),
    I(ck_request_query(req, "k", NULL, &len), CK_EINVAL),
    I(ck_request_query(req, "k", &val, NULL), CK_EINVAL),
    I(ck_request_path(req, NULL, 8), CK_EINVAL),
    I(ck_request_path(req, NULL, 0), CK_ENOSPC),
    I(ck_request_method(req), CK_GET),
    I(ck_request_identity(req, NULL), CK_SECURITY_NONE),
    I(ck_response_opt(resp, CK_OPT_ETAG, NULL, 2), CK_EINVAL),
    I(ck_response_opt_str(resp, CK_OPT_LOCATION_PATH, NULL), CK_EINVAL),
    I(ck_response_payload(resp, NULL, 3), CK_EINVAL),
    I(ck_response_payload_ref(resp, NULL, 3, NULL, NULL), CK_EINVAL),
    I(ck_response_content(resp, CK_CF_TEXT_PLAIN, NULL, 3), CK_EINVAL),
  };
  CHECK_INTS(ints);
  struct ptr_case ptrs[] = {
    P(ck_request_payload(req, NULL)),
  };
  CHECK_NULLS(ptrs);
}

static void test_dtls(void **state)
{
  (void)state;
  failures = 0;
  struct ck_ctx *ctx = NULL;
  struct ck_client *c = NULL;
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  assert_int_equal(ck_client_new(ctx, NULL, &c), 0);
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  struct ck_dtls_config none = {0};
  struct ck_dtls_config missing = {.cert_file = "/nonexistent/c.pem",
                                   .key_file = "/nonexistent/k.pem"};
  const char *id = "unchanged";
  struct int_case ints[] = {
    I(ck_ctx_listen_dtls(NULL, &a, &none), CK_EINVAL),
    I(ck_ctx_listen_dtls(ctx, NULL, &none), CK_EINVAL),
    I(ck_ctx_listen_dtls(ctx, &a, NULL), CK_EINVAL),
    I(ck_ctx_listen_dtls(ctx, &a, &none), CK_EDTLS_CREDS),
    I(ck_ctx_listen_dtls(ctx, &a, &missing), CK_EDTLS_CREDS),
    I(ck_request_identity(NULL, NULL), CK_EINVAL),
    I(ck_client_disconnect(NULL, NULL), CK_EINVAL),
    I(ck_client_disconnect(NULL, &none), CK_EINVAL),
    I(ck_client_disconnect(c, NULL), 0),
    I(ck_client_disconnect(c, &missing), CK_EDTLS_CREDS),
  };
  CHECK_INTS(ints);
  assert_int_equal(ck_request_identity(NULL, &id), CK_EINVAL);
  assert_null(id);
  struct ck_dtls_stats st;
  memset(&st, 0xab, sizeof st);
  ck_ctx_dtls_stats(NULL, &st);
  assert_int_equal(st.sessions, 0xababababababababull);
  ck_ctx_dtls_stats(ctx, NULL);
  /* Nothing was opened by the refused calls. */
  assert_int_equal(ck_ctx_local_addr(ctx, 0, &a), CK_ENOTFOUND);
  ck_ctx_dtls_stats(ctx, &st);
  assert_int_equal(st.sessions, 0);
  ck_client_free(c);
  ck_ctx_free(ctx);
  assert_int_equal(failures, 0);
}

static void h_defer(struct ck_resource *r, const struct ck_request *req,
                    struct ck_response *resp, void *user)
{
  (void)r;
  (void)req;
  struct live *lv = user;
  lv->calls++;
  lv->deferred = ck_response_defer(resp, 0);
}

/* Sends a CON GET for path with a one-byte token and runs the loop until
 * the handler ran. */
static void request(struct ck_ctx *ctx, int fd, const char *path,
                    uint16_t mid, char tok, const struct live *lv)
{
  uint8_t buf[64];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, mid);
  ck_builder_token(&b, &tok, 1);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, path);
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  unsigned before = lv->calls;
  assert_int_equal(send(fd, buf, (size_t)n, 0), n);
  for (int i = 0; i < 40 && lv->calls == before; i++)
    assert_true(ck_ctx_process(ctx, 50) >= 0);
  assert_int_equal(lv->calls, before + 1);
}

/* Reads the answer with token tok (piggybacked or separate) and returns
 * its code. */
static uint8_t answer(struct ck_ctx *ctx, int fd, char tok)
{
  uint8_t buf[256];
  for (int i = 0; i < 40; i++) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) == 1) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      struct ck_msg m;
      assert_true(n > 0);
      assert_int_equal(ck_msg_parse(&m, buf, (size_t)n), 0);
      if (m.code != 0 && m.tkl == 1 && m.token[0] == (uint8_t)tok)
        return m.code;
      continue;
    }
    ck_ctx_process(ctx, 50);
  }
  fail_msg("no answer with token %c", tok);
  return 0;
}

static void test_server(void **state)
{
  (void)state;
  failures = 0;
  struct ck_ctx *ctx = NULL;
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  assert_int_equal(ck_ctx_listen(ctx, &a), 0);
  assert_int_equal(ck_ctx_local_addr(ctx, 0, &a), 0);
  struct ck_resource *r = NULL, *rd = NULL;
  struct live lv = {0};
  assert_int_equal(ck_resource_new(ctx, "n", &r), 0);
  assert_int_equal(ck_resource_handler(r, CK_GET, h_null, &lv), 0);
  assert_int_equal(ck_resource_new(ctx, "d", &rd), 0);
  assert_int_equal(ck_resource_handler(rd, CK_GET, h_defer, &lv), 0);
  struct ck_resource_attrs attrs = {.ct = -1};
  static const uint16_t cfs[] = {CK_CF_JSON};
  struct ck_resource *none = NULL;
  const char *val = NULL;
  size_t len = 0;
  char path[16];

  struct int_case ints[] = {
    I(ck_resource_new(NULL, "p", &none), CK_EINVAL),
    I(ck_resource_new(ctx, NULL, &none), CK_EINVAL),
    I(ck_resource_new(ctx, "p", NULL), CK_EINVAL),
    I(ck_resource_handler(NULL, CK_GET, handler_cb, NULL), CK_EINVAL),
    I(ck_resource_attrs(NULL, &attrs), CK_EINVAL),
    I(ck_resource_attrs(r, NULL), CK_EINVAL),
    I(ck_resource_produces(NULL, cfs, 1), CK_EINVAL),
    I(ck_resource_produces(r, NULL, 1), CK_EINVAL),
    I(ck_resource_consumes(NULL, cfs, 1), CK_EINVAL),
    I(ck_resource_consumes(r, NULL, 1), CK_EINVAL),
    I(ck_resource_changed(NULL, 0), CK_EINVAL),
    I(ck_resource_observers(NULL), 0),
    I(ck_request_method(NULL), 0),
    B(ck_request_multicast(NULL), false),
    I(ck_request_query(NULL, "k", &val, &len), CK_EINVAL),
    I(ck_request_path(NULL, path, sizeof path), CK_EINVAL),
    I(ck_request_uint(NULL, CK_OPT_ACCEPT, 77), 77),
    B(ck_request_has(NULL, CK_OPT_ACCEPT), false),
    I(ck_response_opt(NULL, CK_OPT_ETAG, "e", 1), CK_EINVAL),
    I(ck_response_opt_uint(NULL, CK_OPT_MAX_AGE, 60), CK_EINVAL),
    I(ck_response_opt_str(NULL, CK_OPT_LOCATION_PATH, "x"), CK_EINVAL),
    I(ck_response_payload(NULL, "x", 1), CK_EINVAL),
    I(ck_response_payload_ref(NULL, "x", 1, NULL, NULL), CK_EINVAL),
    I(ck_response_content(NULL, CK_CF_TEXT_PLAIN, "x", 1), CK_EINVAL),
    I(ck_deferred_send(NULL), CK_EINVAL),
    I(ck_observer_new(NULL, NULL, NULL, NULL), CK_EINVAL),
    I(ck_observer_notify(NULL, NULL), CK_EINVAL),
    I(ck_observer_move(NULL, NULL), CK_EINVAL),
    I(ck_observer_queued(NULL), 0),
  };
  CHECK_INTS(ints);
  struct ptr_case ptrs[] = {
    P(ck_resource_path(NULL)),
    P(ck_request_msg(NULL)),
    P(ck_request_peer(NULL)),
    P(ck_request_payload(NULL, &len)),
    P(ck_response_defer(NULL, 0)),
    P(ck_deferred_response(NULL)),
    P(ck_deferred_peer(NULL)),
    P(ck_observer_peer(NULL)),
  };
  CHECK_NULLS(ptrs);
  assert_null(none);
  ck_resource_observable(NULL, true, false);
  ck_response_code(NULL, CK_CONTENT);
  ck_deferred_drop(NULL);
  ck_observer_free(NULL);
  /* Empty lists are fine with NULL. */
  assert_int_equal(ck_resource_produces(r, NULL, 0), 0);
  assert_int_equal(ck_resource_consumes(r, NULL, 0), 0);

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, &a.u.sa, a.len), 0);

  /* Live request and response, NULL for the rest; the refused option
   * makes the answer a 5.00. */
  request(ctx, fd, "n", 1, 'n', &lv);
  assert_int_equal(answer(ctx, fd, 'n'), CK_INTERNAL_SERVER_ERROR);

  /* A deferred answer: its response refuses NULL too, it cannot be
   * deferred again, and the send still answers (5.00) and returns 0. */
  request(ctx, fd, "d", 2, 'd', &lv);
  assert_non_null(lv.deferred);
  assert_non_null(ck_deferred_peer(lv.deferred));
  struct ck_response *resp = ck_deferred_response(lv.deferred);
  assert_non_null(resp);
  assert_null(ck_response_defer(resp, 0));
  assert_int_equal(ck_response_opt(resp, CK_OPT_ETAG, NULL, 4), CK_EINVAL);
  assert_int_equal(ck_deferred_send(lv.deferred), 0);
  assert_int_equal(answer(ctx, fd, 'd'), CK_INTERNAL_SERVER_ERROR);

  struct ck_stats st;
  ck_ctx_stats(ctx, &st);
  assert_int_equal(st.responses_failed, 2);
  close(fd);
  ck_ctx_free(ctx);
  assert_int_equal(failures, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_codec),
    cmocka_unit_test(test_ctx_and_loop),
    cmocka_unit_test(test_server),
    cmocka_unit_test(test_dtls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
