/* Unit tests for the device endpoint's waits (coapd/device.c,
 * coapd/device_command.c), in one process: a context serving the
 * endpoint on loopback, the embedded bus, a registry in a temporary
 * directory, and the library's client as the devices. Covers what the
 * integration test cannot reach from outside: the cap on waiting devices
 * (5.03 with Max-Age, the place given back), a second wait of one
 * device answering the first, a command published on the bus itself, a
 * command stored (retained) before the endpoint started ignored, and
 * shutdown answering the devices still waiting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device_int.h"

struct fx {
  char dir[64];
  struct store *s;
  struct registry *r;
  struct bus *bus;
  struct ck_ctx *ctx;
  struct ck_client *cl;
  struct device_ep *d;
  char base[128];
};

/* One device's call and what came back. */
struct call {
  bool done;
  uint8_t code;
  int err;
  uint32_t max_age;
  char cmd[32];
  char body[64];
};

static void on_resp(struct ck_call *c, const struct ck_client_response *r,
                    void *user)
{
  (void)c;
  struct call *k = user;
  if (!r->final)
    return;
  k->done = true;
  k->err = r->err;
  k->code = r->code;
  if (!r->msg)
    return;
  (void)ck_msg_opt_uint(r->msg, CK_OPT_MAX_AGE, &k->max_age);
  struct ck_opt o;
  if (ck_msg_opt(r->msg, DEVICE_OPT_COMMAND, &o) == 0 &&
      o.len < sizeof k->cmd)
    memcpy(k->cmd, o.val, o.len);
  if (r->body_len && r->body_len < sizeof k->body)
    memcpy(k->body, r->body, r->body_len);
}

/* POSTs telemetry as dev (password "pw") to v1/ch with query q. */
static void post(struct fx *f, const char *dev, const char *q,
                 struct call *k)
{
  memset(k, 0, sizeof *k);
  char uri[256], plain[64], auth[128] = "Basic ";
  snprintf(uri, sizeof uri, "%s/v1/ch%s", f->base, q);
  int n = snprintf(plain, sizeof plain, "%s@app:pw", dev);
  int m = device_base64_encode((const uint8_t *)plain, (size_t)n, auth + 6,
                               sizeof auth - 6);
  assert_true(m > 0);
  struct ck_opt o = {.num = DEVICE_OPT_AUTH,
                     .len = (uint16_t)(6 + m),
                     .val = (const uint8_t *)auth};
  struct ck_client_request r;
  ck_client_request_init(&r, CK_POST, uri);
  r.payload = "1";
  r.payload_len = 1;
  r.opts = &o;
  r.nopts = 1;
  assert_int_equal(ck_client_send(f->cl, &r, on_resp, k, NULL), 0);
}

/* Runs the loop until every call in ks[0..n) is done or ms pass. */
static void run(struct fx *f, struct call **ks, size_t n, int ms)
{
  for (int t = 0; t < ms; t += 10) {
    size_t left = 0;
    for (size_t i = 0; i < n; i++)
      left += !ks[i]->done;
    if (!left)
      return;
    ck_ctx_process(f->ctx, 10);
  }
}

/* Runs the loop for ms, so requests reach the endpoint. */
static void spin(struct fx *f, int ms)
{
  for (int t = 0; t < ms; t += 10)
    ck_ctx_process(f->ctx, 10);
}

static void command(struct fx *f, const char *topic, const char *payload,
                    bool retain);

static int setup_with(void **state, bool stored_command)
{
  struct fx *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/test_coapd_device.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  char err[256];
  assert_int_equal(store_open(f->dir, &f->s, err, sizeof err), 0);
  assert_int_equal(registry_new(f->s, &f->r), 0);
  const char *gw_for[] = {"d2"};
  assert_int_equal(registry_device_add(f->r, "app", "d1", REG_CRED_PASSWORD,
                                       NULL, "pw", NULL, 0),
                   0);
  assert_int_equal(registry_device_add(f->r, "app", "d2", REG_CRED_PASSWORD,
                                       NULL, "pw", NULL, 0),
                   0);
  assert_int_equal(registry_device_add(f->r, "app", "gw", REG_CRED_PASSWORD,
                                       NULL, "pw", gw_for, 1),
                   0);
  assert_int_equal(bus_embedded_new(NULL, NULL, &f->bus), 0);
  if (stored_command)
    command(f, "command/app/d1/old", "stale", true);
  struct ck_addr a;
  assert_int_equal(ck_ctx_new(NULL, &f->ctx), 0);
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  assert_int_equal(ck_ctx_listen(f->ctx, &a), 0);
  assert_int_equal(ck_ctx_local_addr(f->ctx, 0, &a), 0);
  char as[CK_ADDR_STRLEN];
  ck_addr_format(&a, as, sizeof as);
  snprintf(f->base, sizeof f->base, "coap://%s", as);
  /* The devices share one client here: let it have several calls in
   * flight to the endpoint, as several devices would (NSTART, RFC 7252
   * §4.7, counts per client). */
  struct ck_client_config cc = {.nstart = 8};
  assert_int_equal(ck_client_new(f->ctx, &cc, &f->cl), 0);
  struct device_config cfg = {.max_waiting = 1};
  assert_int_equal(device_new(f->ctx, &cfg, f->bus, f->r, &f->d), 0);
  *state = f;
  return 0;
}

static int setup(void **state) { return setup_with(state, false); }
static int setup_stored(void **state) { return setup_with(state, true); }

static int teardown(void **state)
{
  struct fx *f = *state;
  device_free(f->d);
  ck_client_free(f->cl);
  ck_ctx_free(f->ctx);
  bus_free(f->bus);
  registry_free(f->r);
  store_close(f->s);
  const char *names[] = {"coapd.db", "coapd.db-wal", "coapd.db-shm"};
  for (int i = 0; i < 3; i++) {
    char p[128];
    snprintf(p, sizeof p, "%s/%s", f->dir, names[i]);
    unlink(p);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

static void command(struct fx *f, const char *topic, const char *payload,
                    bool retain)
{
  struct bus_msg m = {.topic = topic,
                      .payload = (const uint8_t *)payload,
                      .len = strlen(payload),
                      .cf = -1,
                      .retain = retain};
  assert_int_equal(bus_publish(f->bus, &m), 0);
}

static void cap_and_command(void **state)
{
  struct fx *f = *state;
  struct call a, b;
  post(f, "d1", "?ct=30", &a);
  spin(f, 200);
  assert_false(a.done);
  struct device_stats st;
  device_stats(f->d, &st);
  assert_int_equal(st.waiting, 1);
  assert_int_equal(st.accepted, 1);

  /* max_waiting is 1: a second device is refused, and nothing of its
   * message reaches the bus. */
  post(f, "d2", "?ct=30", &b);
  struct call *bs[] = {&b};
  run(f, bs, 1, 2000);
  assert_true(b.done);
  assert_int_equal(b.code, CK_SERVICE_UNAVAILABLE);
  assert_true(b.max_age > 0);
  device_stats(f->d, &st);
  assert_int_equal(st.unavailable, 1);
  assert_int_equal(st.accepted, 1);

  /* A command for another device is dropped; d1's own completes its
   * wait. */
  command(f, "command/app/d2/x", "nobody", false);
  command(f, "command/app/d1/reboot", "now", false);
  struct call *as[] = {&a};
  run(f, as, 1, 2000);
  assert_true(a.done);
  assert_int_equal(a.code, CK_CONTENT);
  assert_string_equal(a.cmd, "reboot");
  assert_string_equal(a.body, "now");
  device_stats(f->d, &st);
  assert_int_equal(st.waiting, 0);
  assert_int_equal(st.commands_delivered, 1);
  assert_int_equal(st.commands_dropped, 1);

  /* The place is free again: d2 may wait now. */
  post(f, "d2", "?ct=30", &b);
  spin(f, 200);
  assert_false(b.done);
  device_stats(f->d, &st);
  assert_int_equal(st.waiting, 1);
}

static void second_wait_and_shutdown(void **state)
{
  struct fx *f = *state;
  struct call a, b;
  post(f, "d1", "?ct=30", &a);
  spin(f, 200);
  /* The same device waits again: the first request is answered 2.04
   * and the second waits in its place (the cap of 1 is not hit). */
  post(f, "d1", "?ct=30", &b);
  struct call *as[] = {&a};
  run(f, as, 1, 2000);
  assert_true(a.done);
  assert_int_equal(a.code, CK_CHANGED);
  assert_false(b.done);
  struct device_stats st;
  device_stats(f->d, &st);
  assert_int_equal(st.waiting, 1);
  assert_int_equal(st.accepted, 2);

  /* Shutting the endpoint down answers the waiting device 2.04. */
  device_free(f->d);
  f->d = NULL;
  struct call *bs[] = {&b};
  run(f, bs, 1, 2000);
  assert_true(b.done);
  assert_int_equal(b.code, CK_CHANGED);
}

static void gateway_waits_for_its_device(void **state)
{
  struct fx *f = *state;
  struct call a;
  post(f, "gw", "?as=d2&ct=30", &a);
  spin(f, 200);
  command(f, "command/app/gw/x", "not for d2", false);
  command(f, "command/app/d2/light", "on", false);
  struct call *as[] = {&a};
  run(f, as, 1, 2000);
  assert_int_equal(a.code, CK_CONTENT);
  assert_string_equal(a.cmd, "light");
  assert_string_equal(a.body, "on");
  /* The command to the gateway itself found nobody waiting. */
  struct device_stats st;
  device_stats(f->d, &st);
  assert_int_equal(st.commands_dropped, 1);
}

static void stored_command_ignored(void **state)
{
  struct fx *f = *state;
  /* A command retained on the bus before the endpoint subscribed
   * (setup_stored) comes to the new subscription as stored: it is
   * neither delivered nor counted. */
  struct call a;
  post(f, "d1", "?ct=1", &a);
  struct call *as[] = {&a};
  run(f, as, 1, 3000);
  assert_int_equal(a.code, CK_CHANGED);
  struct device_stats st;
  device_stats(f->d, &st);
  assert_int_equal(st.commands_delivered, 0);
  assert_int_equal(st.commands_dropped, 0);
}

static void window_closes(void **state)
{
  struct fx *f = *state;
  struct call a;
  post(f, "d1", "?commandTimeout=1", &a);
  struct call *as[] = {&a};
  run(f, as, 1, 3000);
  assert_true(a.done);
  assert_int_equal(a.code, CK_CHANGED);
  struct device_stats st;
  device_stats(f->d, &st);
  assert_int_equal(st.waits_expired, 1);
  assert_int_equal(st.waiting, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(cap_and_command, setup, teardown),
    cmocka_unit_test_setup_teardown(second_wait_and_shutdown, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(gateway_waits_for_its_device, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(stored_command_ignored, setup_stored,
                                    teardown),
    cmocka_unit_test_setup_teardown(window_closes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
