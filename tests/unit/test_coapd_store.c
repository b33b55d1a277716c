/* coapd's SQLite store (coapd/store.h) in a fresh temporary directory:
 * the database and its -wal and -shm files are private (0600) whatever
 * the umask, the umask is given back, the schema is versioned and a
 * newer one refused, retained messages round-trip through the
 * bus_persist table (save, replace, remove, load, an empty payload),
 * sessions likewise, and PRAGMA data_version moves when another
 * connection commits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

struct fx {
  char dir[64];
  struct store *s;
};

static int setup(void **state)
{
  struct fx *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/test_coapd_store.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  char err[256];
  assert_int_equal(store_open(f->dir, &f->s, err, sizeof err), 0);
  *state = f;
  return 0;
}

static void rm(const char *dir, const char *name)
{
  char p[128];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  unlink(p);
}

static int teardown(void **state)
{
  struct fx *f = *state;
  store_close(f->s);
  rm(f->dir, "coapd.db");
  rm(f->dir, "coapd.db-wal");
  rm(f->dir, "coapd.db-shm");
  rmdir(f->dir);
  free(f);
  return 0;
}

static unsigned mode_of(const char *dir, const char *name)
{
  char p[128];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  return st.st_mode & 0777;
}

static void test_files_private(void **state)
{
  (void)state;
  char dir[] = "/tmp/test_coapd_store.XXXXXX";
  assert_non_null(mkdtemp(dir));
  mode_t old = umask(022);
  char err[256];
  struct store *s;
  assert_int_equal(store_open(dir, &s, err, sizeof err), 0);
  /* The umask is given back. */
  assert_int_equal(umask(022), 022);
  /* A write makes sure the WAL is in use: -wal and -shm exist while the
   * store is open. */
  struct bus_persist p = store_bus_persist(s);
  struct bus_msg m = {.topic = "a/b",
                      .payload = (const uint8_t *)"x",
                      .len = 1,
                      .cf = 0,
                      .retain = true};
  assert_int_equal(p.save(p.user, &m, 0), 0);
  assert_int_equal(mode_of(dir, "coapd.db"), 0600);
  assert_int_equal(mode_of(dir, "coapd.db-wal"), 0600);
  assert_int_equal(mode_of(dir, "coapd.db-shm"), 0600);
  store_close(s);
  umask(old);

  /* An existing database made readable by others is tightened. */
  char path[128];
  snprintf(path, sizeof path, "%s/coapd.db", dir);
  assert_int_equal(chmod(path, 0644), 0);
  assert_int_equal(store_open(dir, &s, err, sizeof err), 0);
  assert_int_equal(mode_of(dir, "coapd.db"), 0600);
  store_close(s);
  rm(dir, "coapd.db");
  rm(dir, "coapd.db-wal");
  rm(dir, "coapd.db-shm");
  rmdir(dir);
}

static void test_wal_and_schema_version(void **state)
{
  struct fx *f = *state;
  char path[128];
  snprintf(path, sizeof path, "%s/coapd.db", f->dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
  sqlite3_finalize(st);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), 1);
  sqlite3_finalize(st);

  /* A database from a newer coapd is refused, with the file named. */
  assert_int_equal(
      sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  char err[512];
  struct store *s2 = NULL;
  assert_int_equal(store_open(f->dir, &s2, err, sizeof err), -1);
  assert_null(s2);
  assert_non_null(strstr(err, "coapd.db"));
  assert_non_null(strstr(err, "newer"));
}

static void test_open_missing_dir(void **state)
{
  (void)state;
  char err[256] = "";
  struct store *s = NULL;
  assert_int_equal(store_open("/nonexistent/dir", &s, err, sizeof err), -1);
  assert_null(s);
  assert_non_null(strstr(err, "/nonexistent/dir/coapd.db"));
}

struct loaded {
  int n;
  char topic[4][32];
  char payload[4][32];
  size_t len[4];
  int cf[4];
  int qos[4];
  int64_t expires[4];
};

static void on_msg(void *arg, const struct bus_msg *m, int64_t expires_at)
{
  struct loaded *l = arg;
  assert_true(l->n < 4);
  assert_true(m->retain);
  snprintf(l->topic[l->n], 32, "%s", m->topic);
  assert_true(m->len < 32);
  if (m->len)
    memcpy(l->payload[l->n], m->payload, m->len);
  l->len[l->n] = m->len;
  l->cf[l->n] = m->cf;
  l->qos[l->n] = m->qos;
  l->expires[l->n] = expires_at;
  l->n++;
}

static void test_retained_round_trip(void **state)
{
  struct fx *f = *state;
  struct bus_persist p = store_bus_persist(f->s);
  assert_ptr_equal(p.user, f->s);
  struct bus_msg a = {.topic = "t/a",
                      .payload = (const uint8_t *)"one",
                      .len = 3,
                      .cf = 50,
                      .qos = 1,
                      .retain = true};
  struct bus_msg b = {.topic = "t/b",
                      .payload = (const uint8_t *)"\0\1\2",
                      .len = 3,
                      .cf = -1,
                      .qos = 2,
                      .retain = true};
  struct bus_msg e = {.topic = "t/e", .len = 0, .cf = 0, .retain = true};
  assert_int_equal(p.save(p.user, &a, 0), 0);
  assert_int_equal(p.save(p.user, &b, 1700000000), 0);
  assert_int_equal(p.save(p.user, &e, 0), 0);
  /* Saving a topic again replaces its message. */
  a.payload = (const uint8_t *)"two!";
  a.len = 4;
  assert_int_equal(p.save(p.user, &a, 42), 0);
  assert_int_equal(p.remove(p.user, "t/e"), 0);
  assert_int_equal(p.remove(p.user, "t/absent"), 0);

  /* Another connection sees it all (each call committed). */
  char err[256];
  struct store *s2;
  assert_int_equal(store_open(f->dir, &s2, err, sizeof err), 0);
  struct bus_persist p2 = store_bus_persist(s2);
  struct loaded l = {0};
  assert_int_equal(p2.load(p2.user, on_msg, &l), 0);
  assert_int_equal(l.n, 2);
  int ia = strcmp(l.topic[0], "t/a") == 0 ? 0 : 1, ib = 1 - ia;
  assert_string_equal(l.topic[ia], "t/a");
  assert_int_equal(l.len[ia], 4);
  assert_memory_equal(l.payload[ia], "two!", 4);
  assert_int_equal(l.cf[ia], 50);
  assert_int_equal(l.qos[ia], 1);
  assert_int_equal(l.expires[ia], 42);
  assert_string_equal(l.topic[ib], "t/b");
  assert_int_equal(l.len[ib], 3);
  assert_memory_equal(l.payload[ib], "\0\1\2", 3);
  assert_int_equal(l.cf[ib], -1);
  assert_int_equal(l.qos[ib], 2);
  assert_int_equal(l.expires[ib], 1700000000);
  store_close(s2);

  /* An empty payload is stored as such. */
  assert_int_equal(p.save(p.user, &e, 0), 0);
  memset(&l, 0, sizeof l);
  assert_int_equal(p.load(p.user, on_msg, &l), 0);
  assert_int_equal(l.n, 3);
  bool found = false;
  for (int i = 0; i < l.n; i++)
    if (strcmp(l.topic[i], "t/e") == 0) {
      found = true;
      assert_int_equal(l.len[i], 0);
    }
  assert_true(found);
}

struct sessions {
  int n;
  char clientid[4][16];
  char username[4][16];
  int64_t expires[4];
};

static void on_session(void *arg, const struct store_session *ss)
{
  struct sessions *x = arg;
  assert_true(x->n < 4);
  snprintf(x->clientid[x->n], 16, "%s", ss->clientid);
  snprintf(x->username[x->n], 16, "%s", ss->username ? ss->username : "");
  x->expires[x->n] = ss->expires_at;
  x->n++;
}

static void test_sessions(void **state)
{
  struct fx *f = *state;
  struct store_session a = {"c1", "tok1", "alice", 100};
  struct store_session b = {"c2", "tok2", NULL, 200};
  assert_int_equal(store_session_put(f->s, &a), 0);
  assert_int_equal(store_session_put(f->s, &b), 0);
  a.expires_at = 150;
  assert_int_equal(store_session_put(f->s, &a), 0);
  struct sessions x = {0};
  assert_int_equal(store_session_load(f->s, on_session, &x), 0);
  assert_int_equal(x.n, 2);
  for (int i = 0; i < 2; i++) {
    if (strcmp(x.clientid[i], "c1") == 0) {
      assert_string_equal(x.username[i], "alice");
      assert_int_equal(x.expires[i], 150);
    } else {
      assert_string_equal(x.clientid[i], "c2");
      assert_string_equal(x.username[i], "");
      assert_int_equal(x.expires[i], 200);
    }
  }
  assert_int_equal(store_session_delete(f->s, "c1"), 0);
  assert_int_equal(store_session_delete(f->s, "c1"), 0);
  memset(&x, 0, sizeof x);
  assert_int_equal(store_session_load(f->s, on_session, &x), 0);
  assert_int_equal(x.n, 1);
  assert_string_equal(x.clientid[0], "c2");
}

static void test_data_version(void **state)
{
  struct fx *f = *state;
  char err[256];
  struct store *s2;
  assert_int_equal(store_open(f->dir, &s2, err, sizeof err), 0);
  int64_t v0 = store_data_version(f->s);
  assert_true(v0 >= 0);
  /* Our own commit does not move it; another connection's does. */
  struct store_session a = {"c1", "t", NULL, 1};
  assert_int_equal(store_session_put(f->s, &a), 0);
  assert_true(store_data_version(f->s) == v0);
  assert_int_equal(store_session_put(s2, &a), 0);
  int64_t v1 = store_data_version(f->s);
  assert_true(v1 != v0);
  assert_true(store_data_version(f->s) == v1);
  store_close(s2);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_files_private),
      cmocka_unit_test(test_open_missing_dir),
      cmocka_unit_test_setup_teardown(test_wal_and_schema_version, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_retained_round_trip, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_version, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
