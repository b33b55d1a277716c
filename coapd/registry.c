/* The registry (registry.h): gateway users with their ACL patterns, and
 * devices with their credentials, kept in the store's SQLite database.
 *
 * Passwords are kept as "pbkdf2-sha256$ITER$SALT$HASH" (base64 salt and
 * hash): the string names its own algorithm and iteration count, so the
 * count can grow later without invalidating what is stored. A check
 * costs REG_PBKDF2_ITER rounds of HMAC-SHA256, on purpose; to spare a
 * client that presents its password on every request, a successful check
 * is remembered as HMAC-SHA256(process key, who, stored hash, password)
 * in a direct-mapped table. The key is random per process and never
 * stored, so the table is no faster way to guess a password than the
 * hash itself; mixing in the stored hash (with its random salt) makes an
 * entry useless once the password is changed.
 *
 * Users and their patterns live in memory (a sorted array), because an
 * ACL is checked on every publish and subscribe; registry_refresh()
 * reloads them when another process committed (PRAGMA data_version).
 * Devices are in registry_device.c; what both share is in
 * registry_impl.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <sqlite3.h>

#include "bus.h"
#include "log.h"
#include "registry.h"
#include "registry_impl.h"

enum { SALT_LEN = 16, HASH_LEN = 32 };

static const char SQL_BEGIN[] = "BEGIN";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_USERS[] = "SELECT name, hash FROM users ORDER BY name";
static const char SQL_ACLS[] =
    "SELECT name, kind, pattern FROM user_acl ORDER BY name, kind, pattern";
static const char SQL_USER_COUNT[] = "SELECT count(*) FROM users";
static const char SQL_USER_ADD[] = "INSERT INTO users(name, hash) VALUES(?, ?)";
static const char SQL_ACL_ADD[] =
    "INSERT OR IGNORE INTO user_acl(name, kind, pattern) VALUES(?, ?, ?)";
static const char SQL_USER_REMOVE[] = "DELETE FROM users WHERE name = ?";
/* --- passwords --- */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < n)
      v |= in[i + 2];
    out[o++] = b64[v >> 18];
    out[o++] = b64[(v >> 12) & 63];
    out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? b64[v & 63] : '=';
  }
  out[o] = '\0';
  return o;
}

/* Decodes len characters (padded) into at most cap bytes; -1 if bad. */
static int b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
  if (len % 4)
    return -1;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      const char *p = in[i + k] ? strchr(b64, in[i + k]) : NULL;
      if (in[i + k] == '=' && i + 4 == len && k >= 2)
        pad++;
      else if (!p || pad)
        return -1;
      v = v << 6 | (p ? (uint32_t)(p - b64) : 0);
    }
    for (int k = 0; k < 3 - pad; k++) {
      if (o == cap)
        return -1;
      out[o++] = (uint8_t)(v >> (16 - 8 * k));
    }
  }
  return (int)o;
}

static bool ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
  volatile uint8_t d = 0;
  for (size_t i = 0; i < n; i++)
    d |= a[i] ^ b[i];
  return d == 0;
}

static int pbkdf2(struct registry *r, const char *pw, size_t len, unsigned iter,
                  const uint8_t *salt, size_t salt_len, uint8_t out[HASH_LEN])
{
  gnutls_datum_t k = {(unsigned char *)pw, (unsigned)len};
  gnutls_datum_t s = {(unsigned char *)salt, (unsigned)salt_len};
  r->stats.slow_hashes++;
  return gnutls_pbkdf2(GNUTLS_MAC_SHA256, &k, &s, iter, out, HASH_LEN) == 0
             ? 0
             : -EIO;
}

int registry__hash_new(struct registry *r, const char *pw, char *out,
                       size_t cap)
{
  uint8_t salt[SALT_LEN], h[HASH_LEN];
  char s64[4 * SALT_LEN / 3 + 4], h64[4 * HASH_LEN / 3 + 4];
  if (gnutls_rnd(GNUTLS_RND_NONCE, salt, sizeof salt) != 0 ||
      pbkdf2(r, pw, strlen(pw), REG_PBKDF2_ITER, salt, sizeof salt, h) < 0)
    return -EIO;
  b64_encode(salt, sizeof salt, s64);
  b64_encode(h, sizeof h, h64);
  int k =
      snprintf(out, cap, "pbkdf2-sha256$%d$%s$%s", REG_PBKDF2_ITER, s64, h64);
  return k > 0 && (size_t)k < cap ? 0 : -EIO;
}

/* Checks pw against a stored string; 0 or -EACCES. */
static int hash_check(struct registry *r, const char *stored, const char *pw,
                      size_t len)
{
  static const char pre[] = "pbkdf2-sha256$";
  if (strncmp(stored, pre, sizeof pre - 1) != 0)
    return -EACCES;
  char *end;
  unsigned long iter = strtoul(stored + sizeof pre - 1, &end, 10);
  const char *salt64 = end + 1, *h64 = strchr(salt64, '$');
  uint8_t salt[64], want[HASH_LEN], got[HASH_LEN];
  if (*end != '$' || iter == 0 || iter > 10000000 || !h64)
    return -EACCES;
  int ns = b64_decode(salt64, (size_t)(h64 - salt64), salt, sizeof salt);
  if (ns <= 0 ||
      b64_decode(h64 + 1, strlen(h64 + 1), want, sizeof want) != HASH_LEN ||
      pbkdf2(r, pw, len, (unsigned)iter, salt, (size_t)ns, got) < 0)
    return -EACCES;
  return ct_equal(want, got, HASH_LEN) ? 0 : -EACCES;
}

/* Verifies a password of user (kind 'u', a = name) or device (kind 'd',
 * a/b = application/device) against its stored hash, through the cache;
 * a NULL stored hash (no such entry) costs a hash all the same, so that
 * the time taken does not tell which names exist. */
int registry__verify(struct registry *r, char kind, const char *a,
                     const char *b, const char *stored, const char *pw,
                     size_t len)
{
  if (len == 0 || len >= REG_PASSWORD_MAX || !stored) {
    uint8_t dummy[HASH_LEN], salt[SALT_LEN] = {0};
    pbkdf2(r, "x", 1, REG_PBKDF2_ITER, salt, sizeof salt, dummy);
    return -EACCES;
  }
  char buf[2 * REG_NAME_MAX + REG_HASH_STR_MAX + REG_PASSWORD_MAX + 8];
  int k = snprintf(buf, sizeof buf, "%c%s%c%s%c%s%c", kind, a, 0, b ? b : "", 0,
                   stored, 0);
  if (k < 0 || (size_t)k + len > sizeof buf)
    return -EACCES;
  memcpy(buf + k, pw, len);
  uint8_t mac[HASH_LEN];
  if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, r->key, sizeof r->key, buf,
                       (size_t)k + len, mac) != 0)
    return -EACCES;
  if (registry__cache_has(r, mac)) {
    r->stats.cache_hits++;
    return 0;
  }
  if (hash_check(r, stored, pw, len) < 0)
    return -EACCES;
  registry__cache_add(r, mac);
  return 0;
}

/* --- users in memory --- */

static void users_free(struct user *u, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(u[i].name);
    free(u[i].hash);
    for (int k = 0; k < 2; k++) {
      for (size_t j = 0; j < u[i].npat[k]; j++)
        free(u[i].pats[k][j]);
      free(u[i].pats[k]);
    }
  }
  free(u);
}

static int by_name(const void *key, const void *elem)
{
  return strcmp(key, ((const struct user *)elem)->name);
}

static struct user *find(struct user *u, size_t n, const char *name)
{
  return n ? bsearch(name, u, n, sizeof *u, by_name) : NULL;
}

static int run_cached(struct store *s, const char *sql)
{
  sqlite3_stmt *st = store_stmt(s, sql);
  int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
  store_stmt_done(st);
  return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Reads users and patterns into a new array; returns 0 or -EIO/-ENOMEM. */
static int read_users(struct store *s, struct user **out, size_t *nout)
{
  sqlite3_stmt *st = store_stmt(s, SQL_USER_COUNT);
  size_t cap = st && sqlite3_step(st) == SQLITE_ROW
                   ? (size_t)sqlite3_column_int64(st, 0)
                   : 0;
  store_stmt_done(st);
  if (cap > REG_USERS_MAX) {
    log_warn("registry: %zu users, loading the first %d", cap, REG_USERS_MAX);
    cap = REG_USERS_MAX;
  }
  struct user *u = calloc(cap ? cap : 1, sizeof *u);
  size_t n = 0;
  int rc = !u ? -ENOMEM : (st = store_stmt(s, SQL_USERS)) ? 0 : -EIO;
  int step = SQLITE_DONE;
  while (rc == 0 && n < cap && (step = sqlite3_step(st)) == SQLITE_ROW) {
    u[n].name = strdup((const char *)sqlite3_column_text(st, 0));
    u[n].hash = strdup((const char *)sqlite3_column_text(st, 1));
    rc = u[n].name && u[n].hash ? 0 : -ENOMEM;
    n++;
  }
  store_stmt_done(st);
  /* A step that is neither a row nor the end is an error: a partial view
   * would lock users out. */
  if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
    rc = -EIO;
  st = rc == 0 ? store_stmt(s, SQL_ACLS) : NULL;
  if (rc == 0 && !st)
    rc = -EIO;
  while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    struct user *x = find(u, n, (const char *)sqlite3_column_text(st, 0));
    int kind = sqlite3_column_int(st, 1);
    if (!x || kind < 0 || kind > 1 || x->npat[kind] == REG_PATTERNS_MAX)
      continue;
    if (!x->pats[kind] &&
        !(x->pats[kind] = calloc(REG_PATTERNS_MAX, sizeof(char *)))) {
      rc = -ENOMEM;
      break;
    }
    char *p = strdup((const char *)sqlite3_column_text(st, 2));
    if (!p)
      rc = -ENOMEM;
    else
      x->pats[kind][x->npat[kind]++] = p;
  }
  if (rc == 0 && step != SQLITE_DONE)
    rc = -EIO;
  store_stmt_done(st);
  if (rc < 0) {
    users_free(u, n);
    return rc;
  }
  *out = u;
  *nout = n;
  return 0;
}

/* Loads a fresh view in one read transaction, so that users and patterns
 * are of the same commit. */
static int reload(struct registry *r)
{
  int64_t v = store_data_version(r->s);
  if (v < 0 || run_cached(r->s, SQL_BEGIN) < 0)
    return -EIO;
  struct user *u = NULL;
  size_t n = 0;
  int rc = read_users(r->s, &u, &n);
  run_cached(r->s, SQL_COMMIT);
  if (rc < 0)
    return rc;
  users_free(r->users, r->nusers);
  r->users = u;
  r->nusers = n;
  r->version = v;
  registry__cache_clear(r);
  r->stats.reloads++;
  return 0;
}

int registry_new(struct store *s, struct registry **out)
{
  struct registry *r = calloc(1, sizeof *r);
  if (!r)
    return -ENOMEM;
  r->s = s;
  if (gnutls_rnd(GNUTLS_RND_KEY, r->key, sizeof r->key) != 0) {
    free(r);
    return -EIO;
  }
  int rc = reload(r);
  if (rc < 0) {
    registry_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

void registry_free(struct registry *r)
{
  if (!r)
    return;
  users_free(r->users, r->nusers);
  registry__cache_free(r);
  gnutls_memset(r, 0, sizeof *r);
  free(r);
}

int registry_refresh(struct registry *r)
{
  int64_t v = store_data_version(r->s);
  if (v < 0)
    return -EIO;
  if (v == r->version)
    return 0;
  int rc = reload(r);
  return rc < 0 ? -EIO : 1;
}

void registry_stats(const struct registry *r, struct registry_stats *out)
{
  *out = r->stats;
}

size_t registry_user_count(const struct registry *r)
{
  return r->nusers;
}

int registry_user_check(struct registry *r, const char *name, size_t name_len,
                        const char *password, size_t password_len)
{
  char n[REG_NAME_MAX];
  struct user *u = NULL;
  if (name_len < sizeof n && !memchr(name, '\0', name_len)) {
    memcpy(n, name, name_len);
    n[name_len] = '\0';
    u = find(r->users, r->nusers, n);
  }
  return registry__verify(r, 'u', u ? u->name : "", NULL, u ? u->hash : NULL,
                          password, password_len);
}

/* --- ACL --- */

/* Copies pattern into out, each whole level "%u" replaced by name (which
 * holds no '/', '+' or '#', so the result is a filter of the same
 * shape). False when it does not fit. */
static bool substitute(const char *pat, const char *name, char *out, size_t cap)
{
  size_t o = 0, nl = strlen(name);
  for (const char *p = pat;;) {
    const char *e = strchr(p, '/');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    const char *src = l == 2 && memcmp(p, "%u", 2) == 0 ? name : p;
    size_t sl = src == name ? nl : l;
    if (o + sl + 2 > cap)
      return false;
    memcpy(out + o, src, sl);
    o += sl;
    if (!e)
      break;
    out[o++] = '/';
    p = e + 1;
  }
  out[o] = '\0';
  return true;
}

/* True when every topic filter f matches, pattern p matches too (both
 * valid filters): level by level, '#' in p covers the rest, '+' in p
 * covers one level of f that is not '#', a literal only itself. The '$'
 * rule: a p starting with a wildcard matches no '$' topic, so it covers
 * no f whose first level starts with '$'. */
static bool filter_within(const char *f, const char *p)
{
  if ((p[0] == '+' || p[0] == '#') && f[0] == '$')
    return false;
  for (;;) {
    if (p[0] == '#')
      return true;
    const char *fe = strchr(f, '/'), *pe = strchr(p, '/');
    size_t fl = fe ? (size_t)(fe - f) : strlen(f);
    size_t pl = pe ? (size_t)(pe - p) : strlen(p);
    if (pl == 1 && p[0] == '+') {
      if (fl == 1 && f[0] == '#')
        return false;
    } else if (fl != pl || memcmp(f, p, fl) != 0) {
      return false;
    }
    if (!fe)
      /* "a/#" matches "a" (MQTT 3.1.1 §4.7.1.2). */
      return !pe || strcmp(pe + 1, "#") == 0;
    if (!pe)
      return false;
    f = fe + 1;
    p = pe + 1;
  }
}

bool registry_user_allows(struct registry *r, const char *name,
                          enum reg_acl kind, const char *topic)
{
  struct user *u = find(r->users, r->nusers, name);
  size_t len = strlen(topic);
  if (!u || (kind != REG_ACL_PUB && kind != REG_ACL_SUB))
    return false;
  if (kind == REG_ACL_PUB ? !bus_topic_valid(topic, len)
                          : !bus_filter_valid(topic, len))
    return false;
  char p[BUS_TOPIC_MAX + 1];
  for (size_t i = 0; i < u->npat[kind]; i++) {
    if (!substitute(u->pats[kind][i], u->name, p, sizeof p))
      continue;
    if (kind == REG_ACL_PUB ? bus_filter_match(p, topic)
                            : filter_within(topic, p))
      return true;
  }
  return false;
}

/* --- administration --- */

/* A name: 1 to REG_NAME_MAX - 1 bytes, no control character and none of
 * forbid. */
bool registry__name_ok(const char *s, const char *forbid)
{
  size_t n = s ? strnlen(s, REG_NAME_MAX) : 0;
  if (n == 0 || n == REG_NAME_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || strchr(forbid, s[i]))
      return false;
  return true;
}

bool registry__password_ok(const char *pw)
{
  size_t n = pw ? strnlen(pw, REG_PASSWORD_MAX) : 0;
  return n > 0 && n < REG_PASSWORD_MAX;
}

/* Steps a write; a broken constraint is -EEXIST. */
int registry__write_step(sqlite3_stmt *st)
{
  int rc = sqlite3_step(st);
  int ext = sqlite3_extended_errcode(sqlite3_db_handle(st));
  store_stmt_done(st);
  if (rc == SQLITE_DONE)
    return 0;
  return ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE
             ? -EEXIST
             : -EIO;
}

/* Ends a write transaction: commits when rc is 0, reloads the view. */
int registry__finish(struct registry *r, int rc)
{
  if (rc == 0 && store_commit(r->s) < 0)
    rc = -EIO;
  if (rc < 0)
    store_rollback(r->s);
  else
    reload(r);
  return rc;
}

int registry_user_add(struct registry *r, const char *name,
                      const char *password, const char *const *pub, size_t npub,
                      const char *const *sub, size_t nsub)
{
  const char *const *pats[2] = {pub, sub};
  size_t npat[2] = {npub, nsub};
  if (!registry__name_ok(name, "/+#") || !registry__password_ok(password) ||
      npub > REG_PATTERNS_MAX || nsub > REG_PATTERNS_MAX)
    return -EINVAL;
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < npat[k]; i++)
      if (!pats[k][i] || !bus_filter_valid(pats[k][i], strlen(pats[k][i])))
        return -EINVAL;
  char hash[REG_HASH_STR_MAX];
  if (registry__hash_new(r, password, hash, sizeof hash) < 0 ||
      store_begin(r->s) < 0)
    return -EIO;
  sqlite3_stmt *st = store_stmt(r->s, SQL_USER_COUNT);
  bool full = !st || sqlite3_step(st) != SQLITE_ROW ||
              sqlite3_column_int64(st, 0) >= REG_USERS_MAX;
  store_stmt_done(st);
  int rc = full ? -ENOSPC : -EIO;
  if (!full && (st = store_stmt(r->s, SQL_USER_ADD))) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    rc = registry__write_step(st);
  }
  for (int k = 0; k < 2 && rc == 0; k++)
    for (size_t i = 0; i < npat[k] && rc == 0; i++) {
      if (!(st = store_stmt(r->s, SQL_ACL_ADD))) {
        rc = -EIO;
        break;
      }
      sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
      sqlite3_bind_int(st, 2, k);
      sqlite3_bind_text(st, 3, pats[k][i], -1, SQLITE_STATIC);
      rc = registry__write_step(st);
    }
  return registry__finish(r, rc);
}

/* Deletes by one or two keys; -ENOENT when nothing was there. */
int registry__delete_one(struct registry *r, const char *sql, const char *a,
                         const char *b)
{
  sqlite3_stmt *st = store_stmt(r->s, sql);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
  if (b)
    sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
  int rc = registry__write_step(st);
  if (rc == 0 && sqlite3_changes(sqlite3_db_handle(st)) == 0)
    rc = -ENOENT;
  if (rc == 0)
    reload(r);
  return rc;
}

int registry_user_remove(struct registry *r, const char *name)
{
  return registry__delete_one(r, SQL_USER_REMOVE, name, NULL);
}

int registry_user_list(struct registry *r,
                       void (*fn)(void *arg, const char *name,
                                  const char *const *pub, size_t npub,
                                  const char *const *sub, size_t nsub),
                       void *arg)
{
  if (registry_refresh(r) < 0)
    return -EIO;
  for (size_t i = 0; i < r->nusers; i++) {
    const struct user *u = &r->users[i];
    fn(arg, u->name, (const char *const *)u->pats[0], u->npat[0],
       (const char *const *)u->pats[1], u->npat[1]);
  }
  return 0;
}
