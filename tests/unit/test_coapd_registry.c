/* coapd's registry (coapd/registry.h) on a store in a fresh temporary
 * directory: user passwords are hashed (the stored string names PBKDF2
 * and never holds the password), checked, refused when wrong, and a
 * second check of the same password is answered by the cache without
 * PBKDF2; ACLs with "%u", wildcards and the rule that a subscription
 * filter must lie within a pattern; a change made through a second
 * connection reaches the first on registry_refresh(); devices with each
 * kind of credential, lookups by PSK identity and CN, and gateways. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "registry.h"
#include "registry_impl.h"
#include "store.h"

struct fx {
  char dir[64];
  struct store *s;
  struct registry *r;
};

static int setup(void **state)
{
  struct fx *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/test_coapd_registry.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  char err[256];
  assert_int_equal(store_open(f->dir, &f->s, err, sizeof err), 0);
  assert_int_equal(registry_new(f->s, &f->r), 0);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fx *f = *state;
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

static int check(struct registry *r, const char *name, const char *pw)
{
  return registry_user_check(r, name, strlen(name), pw, strlen(pw));
}

/* The hash column of a user, read with SQLite directly. */
static void stored_hash(const char *dir, const char *name, char *out,
                        size_t cap)
{
  char path[128];
  snprintf(path, sizeof path, "%s/coapd.db", dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT hash FROM users WHERE name=?",
                                      -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static void test_password_round_trip(void **state)
{
  struct fx *f = *state;
  assert_int_equal(registry_user_count(f->r), 0);
  assert_int_equal(
      registry_user_add(f->r, "alice", "correct horse", NULL, 0, NULL, 0), 0);
  assert_int_equal(registry_user_count(f->r), 1);
  assert_int_equal(check(f->r, "alice", "correct horse"), 0);
  assert_int_equal(check(f->r, "alice", "correct horsE"), -EACCES);
  assert_int_equal(check(f->r, "alice", "correct hors"), -EACCES);
  assert_int_equal(check(f->r, "alice", ""), -EACCES);
  assert_int_equal(check(f->r, "bob", "correct horse"), -EACCES);
  /* name_len counts: "alicex" cut to 5 bytes is alice. */
  assert_int_equal(registry_user_check(f->r, "alicex", 5, "correct horse", 13),
                   0);

  char h[256];
  stored_hash(f->dir, "alice", h, sizeof h);
  assert_null(strstr(h, "correct horse"));
  assert_null(strstr(h, "horse"));
  char iter[32];
  snprintf(iter, sizeof iter, "pbkdf2-sha256$%d$", REG_PBKDF2_ITER);
  assert_int_equal(strncmp(h, iter, strlen(iter)), 0);

  /* The same password again gets another salt, hence another string. */
  assert_int_equal(
      registry_user_add(f->r, "bob", "correct horse", NULL, 0, NULL, 0), 0);
  char h2[256];
  stored_hash(f->dir, "bob", h2, sizeof h2);
  assert_string_not_equal(h, h2);

  assert_int_equal(registry_user_add(f->r, "alice", "x", NULL, 0, NULL, 0),
                   -EEXIST);
  assert_int_equal(registry_user_add(f->r, "a/b", "x", NULL, 0, NULL, 0),
                   -EINVAL);
  assert_int_equal(registry_user_add(f->r, "c", "", NULL, 0, NULL, 0), -EINVAL);
  const char *bad[] = {"a/#/b"};
  assert_int_equal(registry_user_add(f->r, "c", "x", bad, 1, NULL, 0), -EINVAL);
  assert_int_equal(registry_user_remove(f->r, "bob"), 0);
  assert_int_equal(registry_user_remove(f->r, "bob"), -ENOENT);
  assert_int_equal(check(f->r, "bob", "correct horse"), -EACCES);
}

static void test_cache(void **state)
{
  struct fx *f = *state;
  assert_int_equal(registry_user_add(f->r, "alice", "pw1", NULL, 0, NULL, 0),
                   0);
  struct registry_stats a, b;
  registry_stats(f->r, &a);
  assert_int_equal(check(f->r, "alice", "pw1"), 0);
  registry_stats(f->r, &b);
  assert_int_equal(b.slow_hashes, a.slow_hashes + 1);
  assert_int_equal(b.cache_hits, a.cache_hits);
  /* Hits: no PBKDF2 at all. */
  for (int i = 0; i < 100; i++)
    assert_int_equal(check(f->r, "alice", "pw1"), 0);
  registry_stats(f->r, &a);
  assert_int_equal(a.slow_hashes, b.slow_hashes);
  assert_int_equal(a.cache_hits, b.cache_hits + 100);
  /* A wrong password is never a hit. */
  assert_int_equal(check(f->r, "alice", "pw2"), -EACCES);
  registry_stats(f->r, &b);
  assert_int_equal(b.slow_hashes, a.slow_hashes + 1);
  assert_int_equal(b.cache_hits, a.cache_hits);

  /* Another process replaces alice's password: after the reload the old
   * one is refused although it was cached. */
  char err[256];
  struct store *s2;
  struct registry *r2;
  assert_int_equal(store_open(f->dir, &s2, err, sizeof err), 0);
  assert_int_equal(registry_new(s2, &r2), 0);
  assert_int_equal(registry_user_remove(r2, "alice"), 0);
  assert_int_equal(registry_user_add(r2, "alice", "pw2", NULL, 0, NULL, 0), 0);
  assert_int_equal(registry_refresh(f->r), 1);
  assert_int_equal(registry_refresh(f->r), 0);
  assert_int_equal(check(f->r, "alice", "pw1"), -EACCES);
  assert_int_equal(check(f->r, "alice", "pw2"), 0);
  registry_free(r2);
  store_close(s2);
}

static void test_acl(void **state)
{
  struct fx *f = *state;
  const char *pub[] = {"sensors/%u/#", "cmd/+/ack", "%u"};
  const char *sub[] = {"sensors/#", "cmd/%u/+", "news/+/today", "x/%u"};
  assert_int_equal(registry_user_add(f->r, "alice", "pw", pub, 3, sub, 4), 0);
  assert_int_equal(registry_user_add(f->r, "eve", "pw", NULL, 0, NULL, 0), 0);
  struct {
    enum reg_acl kind;
    const char *topic;
    bool allowed;
  } cases[] = {
      {REG_ACL_PUB, "sensors/alice/t", true},
      {REG_ACL_PUB, "sensors/alice/a/b/c", true},
      {REG_ACL_PUB, "sensors/alice", true}, /* '#' covers the parent */
      {REG_ACL_PUB, "sensors/bob/t", false},
      {REG_ACL_PUB, "sensors/%u/t", false}, /* %u is not literal */
      {REG_ACL_PUB, "cmd/x/ack", true},
      {REG_ACL_PUB, "cmd/x/y/ack", false},
      {REG_ACL_PUB, "alice", true},
      {REG_ACL_PUB, "alice/x", false},
      {REG_ACL_PUB, "sensors/+/t", false}, /* not a topic name */
      {REG_ACL_PUB, "other", false},
      {REG_ACL_SUB, "sensors/#", true},
      {REG_ACL_SUB, "sensors/+/t", true},
      {REG_ACL_SUB, "sensors", true},
      {REG_ACL_SUB, "#", false},
      {REG_ACL_SUB, "+/x", false},
      {REG_ACL_SUB, "cmd/alice/+", true},
      {REG_ACL_SUB, "cmd/alice/go", true},
      {REG_ACL_SUB, "cmd/alice/#", false}, /* '#' is wider than '+' */
      {REG_ACL_SUB, "cmd/+/go", false},    /* wider than alice's level */
      {REG_ACL_SUB, "cmd/bob/go", false},
      {REG_ACL_SUB, "news/+/today", true},
      {REG_ACL_SUB, "news/eu/today", true},
      {REG_ACL_SUB, "news/eu/#", false},
      {REG_ACL_SUB, "news/eu", false},
      {REG_ACL_SUB, "x/alice", true},
      {REG_ACL_SUB, "x/+", false},
      {REG_ACL_SUB, "sensors/#/x", false}, /* not a valid filter */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool got =
        registry_user_allows(f->r, "alice", cases[i].kind, cases[i].topic);
    if (got != cases[i].allowed)
      fail_msg("%s %s: got %d", cases[i].kind == REG_ACL_PUB ? "pub" : "sub",
               cases[i].topic, got);
  }
  /* No patterns of a kind: nothing of that kind; unknown user: nothing. */
  assert_false(registry_user_allows(f->r, "eve", REG_ACL_PUB, "a"));
  assert_false(registry_user_allows(f->r, "eve", REG_ACL_SUB, "a"));
  assert_false(registry_user_allows(f->r, "bob", REG_ACL_PUB, "bob"));
  assert_false(registry_user_allows(f->r, "eve", REG_ACL_PUB, "sensors/eve/t"));
}

static void test_acl_wide_and_dollar(void **state)
{
  struct fx *f = *state;
  const char *all[] = {"#"};
  const char *sys[] = {"$SYS/#"};
  assert_int_equal(registry_user_add(f->r, "root", "pw", all, 1, all, 1), 0);
  assert_int_equal(registry_user_add(f->r, "mon", "pw", NULL, 0, sys, 1), 0);
  assert_true(registry_user_allows(f->r, "root", REG_ACL_PUB, "a/b/c"));
  assert_true(registry_user_allows(f->r, "root", REG_ACL_SUB, "#"));
  assert_true(registry_user_allows(f->r, "root", REG_ACL_SUB, "+/+/x"));
  /* MQTT 3.1.1 §4.7.2: '#' does not reach '$' topics. */
  assert_false(registry_user_allows(f->r, "root", REG_ACL_PUB, "$SYS/x"));
  assert_false(registry_user_allows(f->r, "root", REG_ACL_SUB, "$SYS/#"));
  assert_true(registry_user_allows(f->r, "mon", REG_ACL_SUB, "$SYS/#"));
  assert_true(registry_user_allows(f->r, "mon", REG_ACL_SUB, "$SYS/+/x"));
  assert_false(registry_user_allows(f->r, "mon", REG_ACL_SUB, "#"));
}

static int nusers;
static char first[32];
static void on_user(void *arg, const char *name, const char *const *pub,
                    size_t npub, const char *const *sub, size_t nsub)
{
  (void)arg;
  (void)pub;
  (void)sub;
  if (nusers++ == 0) {
    snprintf(first, sizeof first, "%s", name);
    assert_int_equal(npub, 1);
    assert_int_equal(nsub, 0);
  }
}

static void test_reload_from_other_connection(void **state)
{
  struct fx *f = *state;
  char err[256];
  struct store *s2;
  struct registry *r2;
  assert_int_equal(store_open(f->dir, &s2, err, sizeof err), 0);
  assert_int_equal(registry_new(s2, &r2), 0);
  assert_int_equal(registry_refresh(f->r), 0);
  const char *pub[] = {"p/#"};
  assert_int_equal(registry_user_add(r2, "zed", "pw", NULL, 0, NULL, 0), 0);
  assert_int_equal(registry_user_add(r2, "amy", "pw", pub, 1, NULL, 0), 0);
  /* Not yet seen by the first registry, then seen after the refresh. */
  assert_int_equal(registry_user_count(f->r), 0);
  assert_false(registry_user_allows(f->r, "amy", REG_ACL_PUB, "p/x"));
  assert_int_equal(registry_refresh(f->r), 1);
  assert_int_equal(registry_user_count(f->r), 2);
  assert_true(registry_user_allows(f->r, "amy", REG_ACL_PUB, "p/x"));
  assert_int_equal(check(f->r, "zed", "pw"), 0);
  nusers = 0;
  assert_int_equal(registry_user_list(f->r, on_user, NULL), 0);
  assert_int_equal(nusers, 2);
  assert_string_equal(first, "amy");
  /* And a removal. */
  assert_int_equal(registry_user_remove(r2, "amy"), 0);
  assert_int_equal(registry_refresh(f->r), 1);
  assert_int_equal(registry_user_count(f->r), 1);
  assert_false(registry_user_allows(f->r, "amy", REG_ACL_PUB, "p/x"));
  registry_free(r2);
  store_close(s2);
}

static int ndev;
static void on_device(void *arg, const struct reg_device *d,
                      const char *const *gw, size_t ngw)
{
  (void)arg;
  ndev++;
  if (strcmp(d->device, "gw") == 0) {
    assert_int_equal(ngw, 2);
    assert_string_equal(gw[0], "d1");
    assert_string_equal(gw[1], "d2");
  } else {
    assert_int_equal(ngw, 0);
  }
}

static void test_devices(void **state)
{
  struct fx *f = *state;
  struct registry *r = f->r;
  const char *gw[] = {"d2", "d1"};
  assert_int_equal(registry_device_add(r, "app", "gw", REG_CRED_PASSWORD, NULL,
                                       "gwpass", gw, 2),
                   0);
  assert_int_equal(registry_device_add(r, "app", "d1", REG_CRED_PSK, "d1@app",
                                       "0x00112233aabbccddeeff", NULL, 0),
                   0);
  assert_int_equal(registry_device_add(r, "app", "d2", REG_CRED_CERT, NULL,
                                       "d2.example.com", NULL, 0),
                   0);
  /* Duplicates: the device, an identity, a CN. */
  assert_int_equal(registry_device_add(r, "app", "d1", REG_CRED_CERT, NULL,
                                       "other", NULL, 0),
                   -EEXIST);
  assert_int_equal(registry_device_add(r, "app", "d3", REG_CRED_PSK, "d1@app",
                                       "0102", NULL, 0),
                   -EEXIST);
  assert_int_equal(registry_device_add(r, "app", "d3", REG_CRED_CERT, NULL,
                                       "d2.example.com", NULL, 0),
                   -EEXIST);
  /* Bad input. */
  assert_int_equal(
      registry_device_add(r, "app", "d3", REG_CRED_PSK, "i", "xyz", NULL, 0),
      -EINVAL);
  char big[2 * REG_PSK_MAX + 3];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(
      registry_device_add(r, "app", "d3", REG_CRED_PSK, "i", big, NULL, 0),
      -EINVAL);
  big[2 * REG_PSK_MAX] = '\0'; /* exactly 64 bytes */
  assert_int_equal(
      registry_device_add(r, "app", "d64", REG_CRED_PSK, "i64", big, NULL, 0),
      0);
  assert_int_equal(
      registry_device_add(r, "a/b", "d3", REG_CRED_CERT, NULL, "cn3", NULL, 0),
      -EINVAL);
  assert_int_equal(
      registry_device_add(r, "app", "d@3", REG_CRED_CERT, NULL, "cn3", NULL, 0),
      -EINVAL);

  struct reg_device d;
  assert_int_equal(registry_device_by_psk(r, "d1@app", &d), 0);
  assert_string_equal(d.application, "app");
  assert_string_equal(d.device, "d1");
  assert_int_equal(d.cred, REG_CRED_PSK);
  assert_int_equal(d.psk_len, 10);
  assert_memory_equal(d.psk, "\x00\x11\x22\x33\xaa\xbb\xcc\xdd\xee\xff", 10);
  assert_int_equal(registry_device_by_psk(r, "i64", &d), 0);
  assert_int_equal(d.psk_len, REG_PSK_MAX);
  assert_int_equal(registry_device_by_psk(r, "nobody", &d), -ENOENT);
  assert_int_equal(registry_device_by_cn(r, "d2.example.com", &d), 0);
  assert_string_equal(d.device, "d2");
  assert_int_equal(d.cred, REG_CRED_CERT);
  assert_int_equal(registry_device_by_cn(r, "nobody", &d), -ENOENT);
  assert_int_equal(registry_device_get(r, "app", "gw", &d), 0);
  assert_int_equal(d.cred, REG_CRED_PASSWORD);
  assert_int_equal(d.psk_len, 0);
  assert_int_equal(registry_device_get(r, "app", "nope", &d), -ENOENT);

  assert_int_equal(registry_device_check_password(r, "app", "gw", "gwpass", 6),
                   0);
  assert_int_equal(registry_device_check_password(r, "app", "gw", "gwpasx", 6),
                   -EACCES);
  /* A PSK device has no password. */
  assert_int_equal(registry_device_check_password(r, "app", "d1", "x", 1),
                   -EACCES);
  struct registry_stats a, b;
  registry_stats(r, &a);
  assert_int_equal(registry_device_check_password(r, "app", "gw", "gwpass", 6),
                   0);
  registry_stats(r, &b);
  assert_int_equal(b.cache_hits, a.cache_hits + 1);
  assert_int_equal(b.slow_hashes, a.slow_hashes);

  assert_true(registry_device_acts_for(r, "app", "gw", "d1"));
  assert_true(registry_device_acts_for(r, "app", "gw", "d2"));
  assert_false(registry_device_acts_for(r, "app", "gw", "d3"));
  assert_false(registry_device_acts_for(r, "app", "d1", "gw"));
  assert_false(registry_device_acts_for(r, "other", "gw", "d1"));

  ndev = 0;
  assert_int_equal(registry_device_list(r, on_device, NULL), 0);
  assert_int_equal(ndev, 4);

  assert_int_equal(registry_device_remove(r, "app", "gw"), 0);
  assert_int_equal(registry_device_remove(r, "app", "gw"), -ENOENT);
  assert_false(registry_device_acts_for(r, "app", "gw", "d1"));
  assert_int_equal(registry_device_check_password(r, "app", "gw", "gwpass", 6),
                   -EACCES);
}

/* The verified-password cache keeps every entry, however many: 1,000
 * devices must not evict each other (each miss is a PBKDF2 on the loop
 * thread). */
static void test_cache_holds_many(void **state)
{
  (void)state;
  struct registry r;
  memset(&r, 0, sizeof r);
  enum { N = 20000 };
  uint8_t mac[REG_MAC_LEN];
  for (uint32_t i = 1; i <= N; i++) {
    memset(mac, 0, sizeof mac);
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15u;
    memcpy(mac, &x, sizeof x);
    memcpy(mac + 8, &i, sizeof i);
    registry__cache_add(&r, mac);
  }
  assert_int_equal(r.cache_n, N);
  assert_true(r.cache_cap >= 2 * N);
  for (uint32_t i = 1; i <= N; i++) {
    memset(mac, 0, sizeof mac);
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15u;
    memcpy(mac, &x, sizeof x);
    memcpy(mac + 8, &i, sizeof i);
    assert_true(registry__cache_has(&r, mac));
  }
  mac[20] ^= 1; /* never added */
  assert_false(registry__cache_has(&r, mac));
  registry__cache_clear(&r);
  mac[20] ^= 1;
  assert_false(registry__cache_has(&r, mac));
  registry__cache_free(&r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_password_round_trip),
      T(test_cache),
      T(test_acl),
      T(test_acl_wide_and_dollar),
      T(test_reload_from_other_connection),
      T(test_devices),
      cmocka_unit_test(test_cache_holds_many),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
