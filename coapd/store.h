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
 * the daemon polls it to reload its registry cache. */
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

#endif
