/* The daemon's SQLite database, DATA_DIR/coapd.db, in WAL mode: the
 * registry (gateway users, their ACL patterns, devices), the retained
 * messages of the embedded bus and the connection-mode sessions.
 *
 * The database and its -wal and -shm files are created readable by their
 * owner only (they hold PSKs). Several processes may open it at once:
 * the running daemon and `coapd user|device ...`; writers wait for each
 * other (busy timeout). Every write is its own transaction, committed
 * before the call returns, so a kill -9 after an acknowledgement loses
 * nothing (synchronous=NORMAL in WAL mode survives a process crash; a
 * power loss may lose the last transactions).
 */
#ifndef COAPD_STORE_H
#define COAPD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"

struct store;

/* Opens (creating if needed) DIR/coapd.db and its schema. Returns 0 and
 * *out, or -1 with one line naming the file in err. */
int store_open(const char *dir, struct store **out, char *err, size_t cap);
void store_close(struct store *s);

/* A number that changes whenever another connection (another process)
 * committed a change since the last call: PRAGMA data_version. Cheap;
 * the daemon polls it to reload its registry cache. Returns it (>= 0) or
 * -EIO. The connection's own commits do not change it. */
int64_t store_data_version(struct store *s);

/* The retained-message table, in the shape of struct bus_persist; user
 * is the struct store. */
struct bus_persist store_bus_persist(struct store *s);

/* --- connection-mode sessions (pubsub_session.c) --- */
struct store_session {
  const char *clientid;
  const char *token;
  const char *username; /* NULL or "" when anonymous */
  int64_t expires_at;   /* Unix seconds */
};
/* Inserts or replaces; returns 0 or -EIO. */
int store_session_put(struct store *s, const struct store_session *ss);
/* Deletes; returns 0 (also when absent) or -EIO. */
int store_session_delete(struct store *s, const char *clientid);
/* Calls fn for each stored session; returns 0 or -EIO. */
int store_session_load(struct store *s,
                       void (*fn)(void *arg, const struct store_session *ss),
                       void *arg);

/* --- for registry.c, which keeps its SQL beside its logic --- */
struct sqlite3_stmt;

/* The prepared statement for sql, prepared once and cached in s (up to
 * STORE_STMT_MAX statements); sql must outlive s (a string literal).
 * Returns it reset, with no bindings, or NULL on error (logged). The
 * caller steps it and then calls store_stmt_done(), which ends its read:
 * an unreset statement would pin an old snapshot of the database. */
enum { STORE_STMT_MAX = 48 };
struct sqlite3_stmt *store_stmt(struct store *s, const char *sql);
void store_stmt_done(struct sqlite3_stmt *st);

/* A write transaction of several statements: store_begin() takes the
 * write lock at once (BEGIN IMMEDIATE, waiting up to the busy timeout),
 * so it cannot fail later on another writer. Each returns 0 or -EIO;
 * store_rollback() cannot fail. */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

#endif
