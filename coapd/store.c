/* The daemon's SQLite store (store.h): one connection to DIR/coapd.db per
 * struct store, in WAL mode so that the running daemon reads while
 * `coapd user|device ...` writes, with a busy timeout for writer against
 * writer. The schema carries a version (PRAGMA user_version) so that a
 * later coapd can migrate what an older one wrote, and refuses a database
 * from a newer one.
 *
 * The files hold password hashes and PSKs, so they are made 0600: the
 * database file is created by us with that mode before SQLite sees it,
 * and SQLite gives its -wal and -shm files the mode of the database
 * (unix VFS, findCreateFileMode). A umask of 077 around the opening and
 * the first statements covers any file SQLite would create otherwise.
 *
 * Prepared statements are cached here, keyed by their SQL text, and every
 * use ends with a reset: a statement left mid-step would keep a read
 * transaction open, pin an old snapshot and stop WAL checkpoints.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"

/* Version 1: the first schema. A migration from N to N+1 goes into
 * migrate() as one more step inside the same transaction. */
enum { SCHEMA_VERSION = 1, BUSY_TIMEOUT_MS = 5000 };

static const char schema_v1[] =
    "CREATE TABLE users("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  hash TEXT NOT NULL);"
    /* kind: 0 publish, 1 subscribe (enum reg_acl). */
    "CREATE TABLE user_acl("
    "  name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
    "  kind INTEGER NOT NULL,"
    "  pattern TEXT NOT NULL,"
    "  PRIMARY KEY(name, kind, pattern));"
    /* cred: enum reg_cred. One credential per device; identity and CN are
     * lookup keys, so unique. */
    "CREATE TABLE devices("
    "  application TEXT NOT NULL,"
    "  device TEXT NOT NULL,"
    "  cred INTEGER NOT NULL,"
    "  hash TEXT,"
    "  psk_identity TEXT UNIQUE,"
    "  psk BLOB,"
    "  cert_cn TEXT UNIQUE,"
    "  PRIMARY KEY(application, device));"
    "CREATE TABLE gateway_for("
    "  application TEXT NOT NULL,"
    "  gateway TEXT NOT NULL,"
    "  device TEXT NOT NULL,"
    "  PRIMARY KEY(application, gateway, device),"
    "  FOREIGN KEY(application, gateway) REFERENCES devices(application, "
    "    device) ON DELETE CASCADE);"
    "CREATE TABLE retained("
    "  topic TEXT PRIMARY KEY NOT NULL,"
    "  payload BLOB NOT NULL,"
    "  cf INTEGER NOT NULL,"
    "  qos INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL);"
    "CREATE TABLE sessions("
    "  clientid TEXT PRIMARY KEY NOT NULL,"
    "  token TEXT NOT NULL,"
    "  username TEXT,"
    "  expires_at INTEGER NOT NULL);";

struct cached {
  const char *sql;
  sqlite3_stmt *st;
};

struct store {
  sqlite3 *db;
  struct cached stmts[STORE_STMT_MAX];
  size_t nstmts;
};

static const char SQL_DATA_VERSION[] = "PRAGMA data_version";
static const char SQL_RET_SAVE[] =
    "INSERT OR REPLACE INTO retained(topic, payload, cf, qos, expires_at) "
    "VALUES(?, ?, ?, ?, ?)";
static const char SQL_RET_REMOVE[] = "DELETE FROM retained WHERE topic = ?";
static const char SQL_RET_LOAD[] =
    "SELECT topic, payload, cf, qos, expires_at FROM retained ORDER BY rowid";
static const char SQL_SES_PUT[] =
    "INSERT OR REPLACE INTO sessions(clientid, token, username, expires_at) "
    "VALUES(?, ?, ?, ?)";
static const char SQL_SES_DELETE[] = "DELETE FROM sessions WHERE clientid = ?";
static const char SQL_SES_LOAD[] =
    "SELECT clientid, token, username, expires_at FROM sessions";

static int exec(struct store *s, const char *sql)
{
  char *msg = NULL;
  if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    log_error("store: %s: %s", sql, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return -EIO;
  }
  return 0;
}

/* Creates the file 0600 (or tightens an existing one) before SQLite opens
 * it, so that its -wal and -shm files inherit that mode. */
static int make_private(const char *path, char *err, size_t cap)
{
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    snprintf(err, cap, "cannot open '%s': %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 ||
      ((st.st_mode & 0777) != 0600 && fchmod(fd, 0600) != 0)) {
    snprintf(err, cap, "cannot make '%s' private: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

/* Tightens a -wal or -shm file left behind by a crash, if any. */
static void tighten(const char *path, const char *suffix)
{
  char p[4200];
  int k = snprintf(p, sizeof p, "%s%s", path, suffix);
  if (k > 0 && (size_t)k < sizeof p)
    (void)chmod(p, 0600);
}

static int read_version(struct store *s, int *out)
{
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) !=
      SQLITE_OK)
    return -EIO;
  int rc = sqlite3_step(st);
  *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : -EIO;
}

/* Brings the schema to SCHEMA_VERSION in one write transaction, so that
 * two processes opening a new database at once do not both create it. */
static int migrate(struct store *s, char *err, size_t cap)
{
  int v;
  if (read_version(s, &v) == 0 && v == SCHEMA_VERSION)
    return 0;
  if (store_begin(s) < 0 || read_version(s, &v) < 0) {
    snprintf(err, cap, "cannot read the schema version: %s",
             sqlite3_errmsg(s->db));
    store_rollback(s);
    return -1;
  }
  if (v > SCHEMA_VERSION) {
    snprintf(err, cap, "schema version %d is newer than this coapd's (%d)", v,
             SCHEMA_VERSION);
    store_rollback(s);
    return -1;
  }
  if (v == 0 && exec(s, schema_v1) < 0) {
    snprintf(err, cap, "cannot create the schema: %s", sqlite3_errmsg(s->db));
    store_rollback(s);
    return -1;
  }
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
  if (exec(s, sql) < 0 || store_commit(s) < 0) {
    snprintf(err, cap, "cannot set the schema version: %s",
             sqlite3_errmsg(s->db));
    store_rollback(s);
    return -1;
  }
  return 0;
}

static int setup(struct store *s, char *err, size_t cap)
{
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) !=
      SQLITE_OK) {
    snprintf(err, cap, "%s", sqlite3_errmsg(s->db));
    return -1;
  }
  int rc = sqlite3_step(st);
  const char *mode =
      rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
  bool wal = mode && strcmp(mode, "wal") == 0;
  sqlite3_finalize(st);
  if (!wal) {
    snprintf(err, cap, "cannot switch to WAL mode: %s", sqlite3_errmsg(s->db));
    return -1;
  }
  /* NORMAL: in WAL mode a commit survives a process crash (kill -9);
   * only a power loss can take the last commits (SQLite's documentation
   * of synchronous). foreign_keys is per connection, hence here. */
  if (exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON") < 0) {
    snprintf(err, cap, "%s", sqlite3_errmsg(s->db));
    return -1;
  }
  return migrate(s, err, cap);
}

int store_open(const char *dir, struct store **out, char *err, size_t cap)
{
  char path[4200];
  int k = snprintf(path, sizeof path, "%s/coapd.db", dir);
  if (k < 0 || (size_t)k >= sizeof path) {
    snprintf(err, cap, "data directory path too long");
    return -1;
  }
  struct store *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, cap, "%s: out of memory", path);
    return -1;
  }
  /* The umask is process-wide: this runs before the daemon starts any
   * thread, and in the one-shot admin commands. */
  mode_t old = umask(077);
  int rc = make_private(path, err, cap);
  if (rc == 0) {
    tighten(path, "-wal");
    tighten(path, "-shm");
    char why[512];
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
      snprintf(err, cap, "cannot open '%s': %s", path,
               s->db ? sqlite3_errmsg(s->db) : "out of memory");
      rc = -1;
    } else if (setup(s, why, sizeof why) < 0) {
      snprintf(err, cap, "%s: %s", path, why);
      rc = -1;
    }
  }
  umask(old);
  if (rc < 0) {
    store_close(s);
    return -1;
  }
  *out = s;
  return 0;
}

void store_close(struct store *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->nstmts; i++)
    sqlite3_finalize(s->stmts[i].st);
  /* The last connection to close checkpoints and removes -wal and -shm. */
  sqlite3_close(s->db);
  free(s);
}

sqlite3_stmt *store_stmt(struct store *s, const char *sql)
{
  for (size_t i = 0; i < s->nstmts; i++)
    if (s->stmts[i].sql == sql || strcmp(s->stmts[i].sql, sql) == 0) {
      sqlite3_stmt *st = s->stmts[i].st;
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      return st;
    }
  if (s->nstmts == STORE_STMT_MAX) {
    log_error("store: more than %d statements to cache", STORE_STMT_MAX);
    return NULL;
  }
  sqlite3_stmt *st;
  if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                         NULL) != SQLITE_OK) {
    log_error("store: cannot prepare '%s': %s", sql, sqlite3_errmsg(s->db));
    return NULL;
  }
  s->stmts[s->nstmts++] = (struct cached){sql, st};
  return st;
}

void store_stmt_done(sqlite3_stmt *st)
{
  if (st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
}

int store_begin(struct store *s)
{
  return exec(s, "BEGIN IMMEDIATE");
}
int store_commit(struct store *s)
{
  return exec(s, "COMMIT");
}

void store_rollback(struct store *s)
{
  if (!sqlite3_get_autocommit(s->db))
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int64_t store_data_version(struct store *s)
{
  sqlite3_stmt *st = store_stmt(s, SQL_DATA_VERSION);
  if (!st)
    return -EIO;
  int64_t v =
      sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -EIO;
  store_stmt_done(st);
  return v;
}

/* Steps a statement that returns no rows and resets it. */
static int run(struct store *s, sqlite3_stmt *st)
{
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE)
    log_error("store: %s: %s", sqlite3_sql(st), sqlite3_errmsg(s->db));
  store_stmt_done(st);
  return rc == SQLITE_DONE ? 0 : -EIO;
}

/* --- retained messages --- */

static int ret_save(void *user, const struct bus_msg *m, int64_t expires_at)
{
  struct store *s = user;
  sqlite3_stmt *st = store_stmt(s, SQL_RET_SAVE);
  if (!st)
    return -EIO;
  /* A non-NULL pointer makes an empty payload a zero-length BLOB, not
   * NULL. */
  sqlite3_bind_text(st, 1, m->topic, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, m->len ? (const void *)m->payload : "", (int)m->len,
                    SQLITE_STATIC);
  sqlite3_bind_int(st, 3, m->cf);
  sqlite3_bind_int(st, 4, m->qos);
  sqlite3_bind_int64(st, 5, expires_at);
  return run(s, st);
}

static int ret_remove(void *user, const char *topic)
{
  struct store *s = user;
  sqlite3_stmt *st = store_stmt(s, SQL_RET_REMOVE);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
  return run(s, st);
}

static int ret_load(void *user,
                    void (*fn)(void *arg, const struct bus_msg *m,
                               int64_t expires_at),
                    void *arg)
{
  struct store *s = user;
  sqlite3_stmt *st = store_stmt(s, SQL_RET_LOAD);
  if (!st)
    return -EIO;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct bus_msg m = {0};
    m.topic = (const char *)sqlite3_column_text(st, 0);
    m.payload = sqlite3_column_blob(st, 1);
    m.len = (size_t)sqlite3_column_bytes(st, 1);
    m.cf = sqlite3_column_int(st, 2);
    m.qos = (uint8_t)sqlite3_column_int(st, 3);
    m.retain = true;
    if (!m.topic)
      continue;
    fn(arg, &m, sqlite3_column_int64(st, 4));
  }
  if (rc != SQLITE_DONE)
    log_error("store: loading retained messages: %s", sqlite3_errmsg(s->db));
  store_stmt_done(st);
  return rc == SQLITE_DONE ? 0 : -EIO;
}

struct bus_persist store_bus_persist(struct store *s)
{
  return (struct bus_persist){
      .save = ret_save, .remove = ret_remove, .load = ret_load, .user = s};
}

/* --- sessions --- */

int store_session_put(struct store *s, const struct store_session *ss)
{
  sqlite3_stmt *st = store_stmt(s, SQL_SES_PUT);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, ss->clientid, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, ss->token, -1, SQLITE_STATIC);
  if (ss->username && ss->username[0])
    sqlite3_bind_text(st, 3, ss->username, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, ss->expires_at);
  return run(s, st);
}

int store_session_delete(struct store *s, const char *clientid)
{
  sqlite3_stmt *st = store_stmt(s, SQL_SES_DELETE);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, clientid, -1, SQLITE_STATIC);
  return run(s, st);
}

int store_session_load(struct store *s,
                       void (*fn)(void *arg, const struct store_session *ss),
                       void *arg)
{
  sqlite3_stmt *st = store_stmt(s, SQL_SES_LOAD);
  if (!st)
    return -EIO;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct store_session ss = {
        .clientid = (const char *)sqlite3_column_text(st, 0),
        .token = (const char *)sqlite3_column_text(st, 1),
        .username = (const char *)sqlite3_column_text(st, 2),
        .expires_at = sqlite3_column_int64(st, 3),
    };
    if (ss.clientid && ss.token)
      fn(arg, &ss);
  }
  if (rc != SQLITE_DONE)
    log_error("store: loading sessions: %s", sqlite3_errmsg(s->db));
  store_stmt_done(st);
  return rc == SQLITE_DONE ? 0 : -EIO;
}
