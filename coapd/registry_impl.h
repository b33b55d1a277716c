/* Inside the registry: the state registry.c (users, passwords, the
 * verified-password cache) shares with registry_device.c (devices).
 * Nothing else includes this. */
#ifndef COAPD_REGISTRY_IMPL_H
#define COAPD_REGISTRY_IMPL_H

#include <sqlite3.h>

#include "registry.h"

/* A stored hash string's longest form, NUL included; the most entries
 * of the verified-password cache (registry_cache.c) and their size. */
enum { REG_HASH_STR_MAX = 160, REG_CACHE_MAX = 1 << 20, REG_MAC_LEN = 32 };

struct user {
  char *name;
  char *hash;
  char **pats[2]; /* indexed by enum reg_acl */
  size_t npat[2];
};

struct registry {
  struct store *s;
  int64_t version;
  struct user *users; /* sorted by name (strcmp, as SQLite's BINARY) */
  size_t nusers;
  uint8_t key[32]; /* the cache's HMAC key, random per process */
  uint8_t (*cache)[REG_MAC_LEN]; /* registry_cache.c: open addressing */
  size_t cache_cap, cache_n;
  struct registry_stats stats;
};

/* registry_cache.c: the set of verified passwords' keyed hashes. */
bool registry__cache_has(const struct registry *r, const uint8_t *mac);
void registry__cache_add(struct registry *r, const uint8_t *mac);
void registry__cache_clear(struct registry *r);
void registry__cache_free(struct registry *r);

/* Hashes a new password into a "pbkdf2-sha256$..." string; 0 or -EIO. */
int registry__hash_new(struct registry *r, const char *pw, char *out,
                       size_t cap);
/* Checks pw (len bytes) for a user (kind 'u', a = name, b = NULL) or a
 * device (kind 'd', a/b = application/device) against stored, which is
 * NULL when there is no such entry; 0 or -EACCES. */
int registry__verify(struct registry *r, char kind, const char *a,
                     const char *b, const char *stored, const char *pw,
                     size_t len);
/* 1 to REG_NAME_MAX - 1 bytes, no control character, none of forbid. */
bool registry__name_ok(const char *s, const char *forbid);
bool registry__password_ok(const char *pw);
/* Steps and resets a write statement: 0, -EEXIST (a key constraint) or
 * -EIO. */
int registry__write_step(sqlite3_stmt *st);
/* Ends a write transaction begun with store_begin(): commits when rc is
 * 0, else rolls back; reloads the users. Returns rc (or -EIO). */
int registry__finish(struct registry *r, int rc);
/* Runs a DELETE with one or two text keys, then reloads; 0, -ENOENT or
 * -EIO. */
int registry__delete_one(struct registry *r, const char *sql, const char *a,
                         const char *b);

#endif
