/* The registry's devices (registry.h): Drogue Cloud's APPLICATION/DEVICE
 * pairs with one credential each, and the devices a gateway device may
 * publish for. Unlike the users they are not held in memory: a device
 * authenticates once per request or DTLS handshake, by one indexed
 * lookup (primary key, PSK identity or CN, all unique), through the
 * prepared statements the store caches.
 *
 * A password is hashed as a user's is (registry.c) and shares its cache
 * of verified passwords. A PSK must stay usable for the DTLS handshake,
 * so the key itself is stored, as bytes; that is why the database is
 * readable by its owner only (store.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "registry.h"
#include "registry_impl.h"

static const char SQL_DEV_ADD[] =
    "INSERT INTO devices(application, device, cred, hash, psk_identity, psk, "
    "cert_cn) VALUES(?, ?, ?, ?, ?, ?, ?)";
static const char SQL_GW_ADD[] = "INSERT OR IGNORE INTO gateway_for("
                                 "application, gateway, device) "
                                 "VALUES(?, ?, ?)";
static const char SQL_DEV_REMOVE[] =
    "DELETE FROM devices WHERE application = ? AND device = ?";
#define DEV_COLS                                                               \
  "SELECT application, device, cred, psk_identity, psk, cert_cn FROM "         \
  "devices "
static const char SQL_DEV_GET[] =
    DEV_COLS "WHERE application = ? AND device = ?";
static const char SQL_DEV_BY_PSK[] = DEV_COLS "WHERE psk_identity = ?";
static const char SQL_DEV_BY_CN[] = DEV_COLS "WHERE cert_cn = ?";
static const char SQL_DEV_LIST[] = DEV_COLS "ORDER BY application, device";
static const char SQL_DEV_HASH[] = "SELECT hash FROM devices WHERE "
                                   "application = ? AND device = ? AND "
                                   "cred = 1";
static const char SQL_GW_LIST[] = "SELECT device FROM gateway_for WHERE "
                                  "application = ? AND gateway = ? "
                                  "ORDER BY device";
static const char SQL_GW_CHECK[] = "SELECT 1 FROM gateway_for WHERE "
                                   "application = ? AND gateway = ? AND "
                                   "device = ?";

/* Application and device names also go into topics ("/+#") and into
 * Basic credentials "device@application:password" ("@:"). */
static const char NAME_FORBID[] = "/+#@:";

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Parses hex, "0x" optional, into 1 to REG_PSK_MAX bytes; count or -1. */
static int parse_psk(const char *hex, uint8_t out[REG_PSK_MAX])
{
  if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X'))
    hex += 2;
  size_t n = strlen(hex);
  if (n == 0 || n % 2 || n / 2 > REG_PSK_MAX)
    return -1;
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return (int)(n / 2);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
  if (s)
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Inserts the device row; 0, -EEXIST or -EIO. */
static int insert(struct registry *r, const char *app, const char *dev,
                  enum reg_cred cred, const char *hash, const char *identity,
                  const uint8_t *psk, int psk_len, const char *cn)
{
  sqlite3_stmt *st = store_stmt(r->s, SQL_DEV_ADD);
  if (!st)
    return -EIO;
  bind_text(st, 1, app);
  bind_text(st, 2, dev);
  sqlite3_bind_int(st, 3, (int)cred);
  bind_text(st, 4, hash);
  bind_text(st, 5, identity);
  if (psk)
    sqlite3_bind_blob(st, 6, psk, psk_len, SQLITE_STATIC);
  bind_text(st, 7, cn);
  return registry__write_step(st);
}

int registry_device_add(struct registry *r, const char *application,
                        const char *device, enum reg_cred cred,
                        const char *identity, const char *secret,
                        const char *const *gateway_for, size_t ngw)
{
  if (!registry__name_ok(application, NAME_FORBID) ||
      !registry__name_ok(device, NAME_FORBID) || !secret ||
      ngw > REG_GATEWAY_MAX)
    return -EINVAL;
  for (size_t i = 0; i < ngw; i++)
    if (!registry__name_ok(gateway_for[i], NAME_FORBID))
      return -EINVAL;
  char hash[REG_HASH_STR_MAX] = "";
  uint8_t psk[REG_PSK_MAX];
  int psk_len = 0;
  switch (cred) {
  case REG_CRED_PASSWORD:
    if (!registry__password_ok(secret))
      return -EINVAL;
    if (registry__hash_new(r, secret, hash, sizeof hash) < 0)
      return -EIO;
    break;
  case REG_CRED_PSK:
    if (!registry__name_ok(identity, "") ||
        (psk_len = parse_psk(secret, psk)) < 0)
      return -EINVAL;
    break;
  case REG_CRED_CERT:
    if (!registry__name_ok(secret, ""))
      return -EINVAL;
    break;
  default:
    return -EINVAL;
  }
  if (store_begin(r->s) < 0)
    return -EIO;
  int rc = insert(
      r, application, device, cred, cred == REG_CRED_PASSWORD ? hash : NULL,
      cred == REG_CRED_PSK ? identity : NULL, cred == REG_CRED_PSK ? psk : NULL,
      psk_len, cred == REG_CRED_CERT ? secret : NULL);
  for (size_t i = 0; i < ngw && rc == 0; i++) {
    sqlite3_stmt *st = store_stmt(r->s, SQL_GW_ADD);
    if (!st) {
      rc = -EIO;
      break;
    }
    bind_text(st, 1, application);
    bind_text(st, 2, device);
    bind_text(st, 3, gateway_for[i]);
    rc = registry__write_step(st);
  }
  explicit_bzero(psk, sizeof psk);
  return registry__finish(r, rc);
}

int registry_device_remove(struct registry *r, const char *application,
                           const char *device)
{
  /* The gateway_for rows of the device go with it (ON DELETE CASCADE). */
  return registry__delete_one(r, SQL_DEV_REMOVE, application, device);
}

static void copy(char *dst, const unsigned char *src)
{
  size_t n = src ? strnlen((const char *)src, REG_NAME_MAX - 1) : 0;
  memcpy(dst, src ? (const char *)src : "", n);
  dst[n] = '\0';
}

static void read_row(sqlite3_stmt *st, struct reg_device *d)
{
  memset(d, 0, sizeof *d);
  copy(d->application, sqlite3_column_text(st, 0));
  copy(d->device, sqlite3_column_text(st, 1));
  d->cred = (enum reg_cred)sqlite3_column_int(st, 2);
  copy(d->psk_identity, sqlite3_column_text(st, 3));
  int n = sqlite3_column_bytes(st, 4);
  const void *psk = sqlite3_column_blob(st, 4);
  if (psk && n > 0 && n <= REG_PSK_MAX) {
    memcpy(d->psk, psk, (size_t)n);
    d->psk_len = (size_t)n;
  }
  copy(d->cert_cn, sqlite3_column_text(st, 5));
}

/* Runs a lookup with up to two keys that yields at most one device. */
static int lookup(struct registry *r, const char *sql, const char *a,
                  const char *b, struct reg_device *out)
{
  sqlite3_stmt *st = store_stmt(r->s, sql);
  if (!st)
    return -EIO;
  bind_text(st, 1, a);
  bind_text(st, 2, b);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    read_row(st, out);
  store_stmt_done(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int registry_device_get(struct registry *r, const char *application,
                        const char *device, struct reg_device *out)
{
  return lookup(r, SQL_DEV_GET, application, device, out);
}

int registry_device_by_psk(struct registry *r, const char *identity,
                           struct reg_device *out)
{
  return lookup(r, SQL_DEV_BY_PSK, identity, NULL, out);
}

int registry_device_by_cn(struct registry *r, const char *cn,
                          struct reg_device *out)
{
  return lookup(r, SQL_DEV_BY_CN, cn, NULL, out);
}

int registry_device_check_password(struct registry *r, const char *application,
                                   const char *device, const char *password,
                                   size_t password_len)
{
  sqlite3_stmt *st = store_stmt(r->s, SQL_DEV_HASH);
  if (!st)
    return -EACCES;
  bind_text(st, 1, application);
  bind_text(st, 2, device);
  char hash[REG_HASH_STR_MAX];
  const unsigned char *h =
      sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
  bool found = h && strlen((const char *)h) < sizeof hash;
  if (found)
    memcpy(hash, h, strlen((const char *)h) + 1);
  store_stmt_done(st);
  return registry__verify(r, 'd', application, device, found ? hash : NULL,
                          password, password_len);
}

bool registry_device_acts_for(struct registry *r, const char *application,
                              const char *gateway, const char *device)
{
  sqlite3_stmt *st = store_stmt(r->s, SQL_GW_CHECK);
  if (!st)
    return false;
  bind_text(st, 1, application);
  bind_text(st, 2, gateway);
  bind_text(st, 3, device);
  bool yes = sqlite3_step(st) == SQLITE_ROW;
  store_stmt_done(st);
  return yes;
}

/* The devices d may act for, up to REG_GATEWAY_MAX; count or -EIO. */
static int gateway_list(struct registry *r, const struct reg_device *d,
                        char (*names)[REG_NAME_MAX], const char **ptrs)
{
  sqlite3_stmt *st = store_stmt(r->s, SQL_GW_LIST);
  if (!st)
    return -EIO;
  bind_text(st, 1, d->application);
  bind_text(st, 2, d->device);
  int n = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < REG_GATEWAY_MAX) {
    copy(names[n], sqlite3_column_text(st, 0));
    ptrs[n] = names[n];
    n++;
  }
  store_stmt_done(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -EIO;
}

int registry_device_list(struct registry *r,
                         void (*fn)(void *arg, const struct reg_device *d,
                                    const char *const *gateway_for, size_t ngw),
                         void *arg)
{
  sqlite3_stmt *st = store_stmt(r->s, SQL_DEV_LIST);
  char(*names)[REG_NAME_MAX] = calloc(REG_GATEWAY_MAX, REG_NAME_MAX);
  const char **ptrs = calloc(REG_GATEWAY_MAX, sizeof *ptrs);
  struct reg_device *d = malloc(sizeof *d);
  int rc = st && names && ptrs && d ? 0 : -ENOMEM, step = SQLITE_DONE;
  while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    read_row(st, d);
    int n = gateway_list(r, d, names, ptrs);
    if (n < 0) {
      rc = n;
      break;
    }
    fn(arg, d, ptrs, (size_t)n);
  }
  if (rc == 0 && step != SQLITE_DONE)
    rc = -EIO;
  store_stmt_done(st);
  if (d)
    explicit_bzero(d, sizeof *d);
  free(d);
  free(ptrs);
  free(names);
  return rc;
}
