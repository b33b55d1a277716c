/* The demo resources of `coapd --demo`, after coap.me and the ETSI
 * plugtest server: one handler per method of each resource, all declared
 * in the table near the end of the file, which also gives their link
 * attributes for /.well-known/core.
 *
 * Most of the protocol is the library's work: 4.04/4.05/4.06, Block2
 * slicing of /large, Block1 reassembly for /large-update and
 * /large-create, the observers of /time and /obs. What needs time runs
 * on the library's own loop: a repeating one-second timer for the
 * notifications, and one timer armed for the earliest deferred /separate
 * answer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"
#include "log.h"
#include "rep.h"

/* Caps: created items kept (the oldest goes), separate answers pending. */
enum { MAX_ITEMS = 16, MAX_PENDING = 64, SEPARATE_MS = 1000 };

struct item {
  unsigned id; /* 0: free */
  struct rep rep;
};

struct pending {
  struct ck_deferred *d;
  uint64_t due;
};

struct demo {
  struct ck_ctx *ctx;
  struct ck_timer *tick, *separate;
  uint64_t start;
  uint32_t obs_value;
  struct ck_resource *time_res, *obs_res;
  size_t time_observers, obs_observers;
  struct rep sink, update, validate;
  struct item items[MAX_ITEMS];
  unsigned next_id;
  struct pending pending[MAX_PENDING];
  unsigned npending;
  size_t large_len;
  char large[4096];
};

static void arm_separate(struct demo *d);

static void text(struct ck_response *resp, const char *s)
{
  ck_response_content(resp, CK_CF_TEXT_PLAIN, s, strlen(s));
}

static void trace(const struct ck_request *req)
{
  if (!coapd_log_enabled(LOG_LEVEL_DEBUG))
    return;
  char path[256], peer[CK_ADDR_STRLEN];
  if (ck_request_path(req, path, sizeof path) < 0)
    path[0] = '\0';
  if (ck_addr_format(ck_request_peer(req), peer, sizeof peer) < 0)
    peer[0] = '\0';
  const char *m = ck_code_name(ck_request_method(req));
  log_debug("%s /%s from %s", m ? m : "?", path, peer);
}

/* --- handlers; user is the struct demo --- */

#define HANDLER(name)                                                          \
  static void name(struct ck_resource *res, const struct ck_request *req,      \
                   struct ck_response *resp, void *user)

HANDLER(hello_get)
{
  (void)res, (void)user;
  trace(req);
  text(resp, "Hello, world!");
}

HANDLER(time_get)
{
  (void)res, (void)req, (void)user;
  char buf[32];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  text(resp, buf);
}

HANDLER(test_any)
{
  (void)res, (void)user;
  trace(req);
  switch (ck_request_method(req)) {
  case CK_GET:
    text(resp, "This is the test resource: GET, PUT, POST and DELETE.");
    break;
  case CK_POST:
    /* As the ETSI plugtest server answers TD_COAP_CORE_03. */
    ck_response_code(resp, CK_CREATED);
    ck_response_opt_str(resp, CK_OPT_LOCATION_PATH, "location1");
    ck_response_opt_str(resp, CK_OPT_LOCATION_PATH, "location2");
    ck_response_opt_str(resp, CK_OPT_LOCATION_PATH, "location3");
    break;
  case CK_PUT:
    ck_response_code(resp, CK_CHANGED);
    break;
  default:
    ck_response_code(resp, CK_DELETED);
  }
}

HANDLER(sink_any)
{
  (void)res;
  struct demo *d = user;
  trace(req);
  switch (ck_request_method(req)) {
  case CK_GET:
    rep_answer(&d->sink, resp);
    break;
  case CK_DELETE:
    rep_clear(&d->sink);
    ck_response_code(resp, CK_DELETED);
    break;
  default:
    if (rep_store(&d->sink, req, resp))
      ck_response_code(resp, ck_request_method(req) == CK_POST ? CK_CREATED
                                                               : CK_CHANGED);
  }
}

HANDLER(separate_get)
{
  (void)res;
  struct demo *d = user;
  trace(req);
  if (d->npending == MAX_PENDING) {
    ck_response_code(resp, CK_SERVICE_UNAVAILABLE);
    ck_response_opt_uint(resp, CK_OPT_MAX_AGE, 2);
    return;
  }
  /* RFC 7252 §5.2.2: acknowledge at once, answer about a second later. */
  struct ck_deferred *def = ck_response_defer(resp, CK_DEFER_ACK_NOW);
  if (!def) {
    text(resp, "This response could not be deferred.");
    return;
  }
  d->pending[d->npending++] =
      (struct pending){def, ck_ctx_now(d->ctx) + SEPARATE_MS};
  arm_separate(d);
}

HANDLER(large_get)
{
  (void)res;
  struct demo *d = user;
  trace(req);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, d->large, d->large_len);
}

HANDLER(update_any)
{
  (void)res;
  struct demo *d = user;
  trace(req);
  if (ck_request_method(req) == CK_GET) {
    rep_answer(&d->update, resp);
  } else if (rep_store(&d->update, req, resp)) {
    ck_response_code(resp, CK_CHANGED);
  }
}

HANDLER(create_post)
{
  (void)res;
  struct demo *d = user;
  trace(req);
  unsigned id = ++d->next_id;
  struct item *it = &d->items[(id - 1) % MAX_ITEMS];
  if (!rep_store_body(&it->rep, req, resp))
    return;
  it->id = id; /* replaces the oldest item when all slots are taken */
  char num[16];
  snprintf(num, sizeof num, "%u", id);
  ck_response_code(resp, CK_CREATED);
  ck_response_opt_str(resp, CK_OPT_LOCATION_PATH, "large-create");
  ck_response_opt_str(resp, CK_OPT_LOCATION_PATH, num);
}

/* GET large-create/N: an item that POST created. */
HANDLER(item_get)
{
  (void)res;
  struct demo *d = user;
  trace(req);
  char path[64];
  const char *prefix = "large-create/";
  size_t pl = strlen(prefix);
  int n = ck_request_path(req, path, sizeof path);
  if (n > (int)pl && n < (int)pl + 10 && strncmp(path, prefix, pl) == 0 &&
      strspn(path + pl, "0123456789") == (size_t)n - pl) {
    unsigned id = (unsigned)strtoul(path + pl, NULL, 10);
    struct item *it = &d->items[(id - 1) % MAX_ITEMS];
    if (id > 0 && it->id == id) {
      rep_answer(&it->rep, resp);
      return;
    }
  }
  ck_response_code(resp, CK_NOT_FOUND);
}

HANDLER(seg_get)
{
  (void)res, (void)user;
  trace(req);
  text(resp, "seg1/seg2/seg3");
}

HANDLER(query_get)
{
  (void)res, (void)user;
  trace(req);
  /* Every Uri-Query value, joined with '&' as in the URI. */
  char buf[1024];
  size_t n = 0;
  struct ck_opt_iter it;
  struct ck_opt o;
  ck_opt_iter_init(&it, ck_request_msg(req));
  while (ck_opt_next(&it, &o)) {
    if (o.num != CK_OPT_URI_QUERY)
      continue;
    if (n + 1 + o.len > sizeof buf) {
      ck_response_code(resp, CK_REQUEST_ENTITY_TOO_LARGE);
      return;
    }
    if (n)
      buf[n++] = '&';
    memcpy(buf + n, o.val, o.len);
    n += o.len;
  }
  ck_response_content(resp, CK_CF_TEXT_PLAIN, buf, n);
}

HANDLER(locquery_post)
{
  (void)res, (void)user;
  trace(req);
  ck_response_code(resp, CK_CREATED);
  ck_response_opt_str(resp, CK_OPT_LOCATION_QUERY, "first=1");
  ck_response_opt_str(resp, CK_OPT_LOCATION_QUERY, "second=2");
}

HANDLER(multi_get)
{
  (void)res;
  struct demo *d = user;
  trace(req);
  /* The library already refused an Accept other than 0 and 50 (4.06). */
  uint64_t up = (ck_ctx_now(d->ctx) - d->start) / 1000;
  char buf[64];
  if (ck_request_uint(req, CK_OPT_ACCEPT, CK_CF_TEXT_PLAIN) == CK_CF_JSON) {
    snprintf(buf, sizeof buf, "{\"uptime_s\":%" PRIu64 "}", up);
    ck_response_content(resp, CK_CF_JSON, buf, strlen(buf));
  } else {
    snprintf(buf, sizeof buf, "uptime_s: %" PRIu64, up);
    text(resp, buf);
  }
}

HANDLER(validate_any)
{
  (void)res;
  struct demo *d = user;
  trace(req);
  if (ck_request_method(req) == CK_PUT) {
    if (!rep_store(&d->validate, req, resp))
      return;
    ck_response_code(resp, CK_CHANGED);
    ck_response_opt(resp, CK_OPT_ETAG, d->validate.etag, 8);
    return;
  }
  /* RFC 7252 §5.10.6.2: a request ETag that is current gets 2.03. */
  struct ck_opt_iter it;
  struct ck_opt o;
  ck_opt_iter_init(&it, ck_request_msg(req));
  while (ck_opt_next(&it, &o)) {
    if (o.num == CK_OPT_ETAG && o.len == 8 &&
        memcmp(o.val, d->validate.etag, 8) == 0) {
      ck_response_code(resp, CK_VALID);
      ck_response_opt(resp, CK_OPT_ETAG, d->validate.etag, 8);
      return;
    }
  }
  rep_answer(&d->validate, resp);
}

HANDLER(obs_get)
{
  (void)res, (void)req;
  struct demo *d = user;
  char buf[16];
  snprintf(buf, sizeof buf, "%" PRIu32, d->obs_value);
  /* RFC 7641 §4.3.1: fresh until the next change is surely out. */
  ck_response_opt_uint(resp, CK_OPT_MAX_AGE, 2);
  text(resp, buf);
}

/* --- the resource table --- */

struct spec {
  const char *path;
  ck_handler_fn get, put, post, del;
  struct ck_resource_attrs attrs;
  bool observable;
};

#define TEXT .ct = CK_CF_TEXT_PLAIN
#define NOCT .ct = -1

static const struct spec specs[] = {
    {.path = "hello",
     .get = hello_get,
     .attrs = {.rt = "demo.hello", .title = "Hello world", TEXT}},
    {.path = "time",
     .get = time_get,
     .observable = true,
     .attrs = {.rt = "demo.time", .title = "Current time in UTC", TEXT}},
    {.path = "test",
     .get = test_any,
     .put = test_any,
     .post = test_any,
     .del = test_any,
     .attrs = {.rt = "demo.test", .title = "GET PUT POST DELETE", TEXT}},
    {.path = "sink",
     .get = sink_any,
     .put = sink_any,
     .post = sink_any,
     .del = sink_any,
     .attrs = {.rt = "demo.sink", .title = "Keeps what is put", NOCT}},
    {.path = "separate",
     .get = separate_get,
     .attrs = {.rt = "demo.separate", .title = "Answers later", TEXT}},
    {.path = "large",
     .get = large_get,
     .attrs = {.rt = "demo.large", .title = "Large text", TEXT}},
    {.path = "large-update",
     .get = update_any,
     .put = update_any,
     .attrs = {.rt = "demo.large-update", .title = "PUT a large body", TEXT}},
    {.path = "large-create",
     .post = create_post,
     .attrs = {.rt = "demo.large-create", .title = "POST a large body", NOCT}},
    /* The items POST creates; not listed, /large-create stands for them. */
    {.path = "large-create/#",
     .get = item_get,
     .attrs = {.hidden = true, NOCT}},
    {.path = "seg1/seg2/seg3",
     .get = seg_get,
     .attrs = {.rt = "demo.seg", .title = "Several segments", TEXT}},
    {.path = "query",
     .get = query_get,
     .attrs = {.rt = "demo.query", .title = "Echoes Uri-Query", TEXT}},
    {.path = "location-query",
     .post = locquery_post,
     .attrs = {.rt = "demo.location-query", .title = "Location-Query", NOCT}},
    {.path = "multi-format",
     .get = multi_get,
     .attrs = {.rt = "demo.multi-format", .title = "text or JSON", TEXT}},
    {.path = "validate",
     .get = validate_any,
     .put = validate_any,
     .attrs = {.rt = "demo.validate", .title = "ETag validation", TEXT}},
    {.path = "obs",
     .get = obs_get,
     .observable = true,
     .attrs = {.rt = "demo.obs", .title = "Changes every second", TEXT}},
};

static void make_large(struct demo *d)
{
  size_t n = 0;
  for (unsigned i = 1; i <= 40; i++) {
    int k = snprintf(d->large + n, sizeof d->large - n,
                     "%02u/40 coapd /large: a text of a few KiB that Block2 "
                     "slices (RFC 7959).\n",
                     i);
    if (k < 0 || (size_t)k >= sizeof d->large - n)
      break;
    n += (size_t)k;
  }
  d->large_len = n;
}

static void watch_observers(struct ck_resource *r, size_t *last)
{
  size_t n = ck_resource_observers(r);
  if (n != *last)
    log_debug("observers of /%s: %zu", ck_resource_path(r), n);
  *last = n;
}

/* Milliseconds until a few past the next second of the wall clock: the
 * tick follows the clock's seconds, so each /time notification shows a
 * new second and none repeats the value a registration just got. */
static uint64_t to_next_second(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return 1000u - (uint64_t)(ts.tv_nsec / 1000000) + 3u;
}

/* Once a second: /time and /obs change. */
static void on_tick(struct ck_timer *t, void *user)
{
  struct demo *d = user;
  ck_timer_start(t, to_next_second(), 0);
  d->obs_value++;
  ck_resource_changed(d->time_res, 0);
  ck_resource_changed(d->obs_res, 0);
  watch_observers(d->time_res, &d->time_observers);
  watch_observers(d->obs_res, &d->obs_observers);
}

/* Arms the separate-answer timer for the earliest pending answer. */
static void arm_separate(struct demo *d)
{
  if (d->npending == 0) {
    ck_timer_stop(d->separate);
    return;
  }
  uint64_t now = ck_ctx_now(d->ctx), next = d->pending[0].due;
  for (unsigned i = 1; i < d->npending; i++)
    if (d->pending[i].due < next)
      next = d->pending[i].due;
  ck_timer_start(d->separate, next > now ? next - now : 0, 0);
}

/* Sends the /separate answers that are due, in arrival order. */
static void on_separate(struct ck_timer *t, void *user)
{
  (void)t;
  struct demo *d = user;
  uint64_t now = ck_ctx_now(d->ctx);
  unsigned kept = 0;
  for (unsigned i = 0; i < d->npending; i++) {
    struct pending *p = &d->pending[i];
    if (p->due <= now) {
      text(ck_deferred_response(p->d),
           "This response was sent separately, a second later.");
      int rc = ck_deferred_send(p->d);
      if (rc < 0)
        log_warn("/separate: cannot send the response: %s", ck_strerror(rc));
    } else {
      d->pending[kept++] = *p; /* keeps the arrival order */
    }
  }
  d->npending = kept;
  arm_separate(d);
}

static int add_resources(struct demo *d)
{
  static const uint16_t multi[] = {CK_CF_TEXT_PLAIN, CK_CF_JSON};
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    const struct spec *s = &specs[i];
    struct ck_resource *r;
    struct ck_resource_attrs a = s->attrs;
    if (strcmp(s->path, "large") == 0)
      a.sz = (uint32_t)d->large_len;
    int rc = ck_resource_new(d->ctx, s->path, &r);
    if (rc < 0 || (rc = ck_resource_attrs(r, &a)) < 0)
      return rc;
    if (s->get)
      ck_resource_handler(r, CK_GET, s->get, d);
    if (s->put)
      ck_resource_handler(r, CK_PUT, s->put, d);
    if (s->post)
      ck_resource_handler(r, CK_POST, s->post, d);
    if (s->del)
      ck_resource_handler(r, CK_DELETE, s->del, d);
    ck_resource_observable(r, s->observable, false);
    if (s->get == time_get)
      d->time_res = r;
    if (s->get == obs_get)
      d->obs_res = r;
    if (s->get == multi_get)
      ck_resource_produces(r, multi, 2);
  }
  return 0;
}

int demo_new(struct ck_ctx *ctx, struct demo **out)
{
  struct demo *d = calloc(1, sizeof *d);
  if (!d)
    return CK_ENOMEM;
  d->ctx = ctx;
  rep_clear(&d->sink);
  d->start = ck_ctx_now(ctx);
  make_large(d);
  static const char upd[] =
      "This is /large-update. PUT a new representation (Block1 for a large "
      "one) and GET returns it byte for byte.\n";
  static const char val[] = "validate: version 1\n";
  int rc = CK_ENOMEM;
  if (rep_set(&d->update, (const uint8_t *)upd, sizeof upd - 1, 0) < 0 ||
      rep_set(&d->validate, (const uint8_t *)val, sizeof val - 1, 0) < 0)
    goto fail;
  if ((rc = ck_timer_new(ctx, on_tick, d, &d->tick)) < 0 ||
      (rc = ck_timer_new(ctx, on_separate, d, &d->separate)) < 0)
    goto fail;
  ck_timer_start(d->tick, to_next_second(), 0);
  if ((rc = add_resources(d)) < 0)
    goto fail;
  /* rep.c evaluates the conditional options for every stored
   * representation, so the library must not refuse them. */
  ck_ctx_recognize_option(ctx, CK_OPT_IF_MATCH);
  ck_ctx_recognize_option(ctx, CK_OPT_IF_NONE_MATCH);
  *out = d;
  return 0;
fail:
  demo_free(d);
  return rc;
}

void demo_free(struct demo *d)
{
  if (!d)
    return;
  for (unsigned i = 0; i < d->npending; i++)
    ck_deferred_drop(d->pending[i].d);
  rep_clear(&d->sink);
  rep_clear(&d->update);
  rep_clear(&d->validate);
  for (unsigned i = 0; i < MAX_ITEMS; i++)
    rep_clear(&d->items[i].rep);
  ck_timer_free(d->tick);
  ck_timer_free(d->separate);
  free(d);
}
