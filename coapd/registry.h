/* The registry: everything coapd authenticates, kept in the store
 * (store.c) and administered with `coapd user ...` and
 * `coapd device ...` while the daemon runs.
 *
 * - Gateway users: a name, a password kept as a salted PBKDF2-SHA256 hash
 *   (GnuTLS), and ACL patterns (MQTT filters) for publish and subscribe.
 *   A user without patterns of a kind may do nothing of that kind. When
 *   no user exists, the gateway is open to anonymous clients (as EMQX is
 *   without an authenticator).
 * - Devices, named APPLICATION/DEVICE, with one credential: a password
 *   (hashed as above), a PSK identity and key (kept usable, for DTLS), or
 *   an X.509 certificate CN; and the devices a gateway device may act for
 *   (--gateway-for).
 *
 * The daemon keeps the users in memory and reloads them when another
 * process changed the database (registry_refresh(), polled). A verified
 * password is remembered in memory as a keyed fast hash, so a client
 * that presents it on every request pays the slow hash once.
 */
#ifndef COAPD_REGISTRY_H
#define COAPD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct registry;

/* Caps: a name, identity or CN (bytes, NUL included); a PSK; a password;
 * users; patterns of one kind per user; devices one gateway acts for. */
enum {
  REG_NAME_MAX = 256,
  REG_PSK_MAX = 64,
  REG_PASSWORD_MAX = 1024,
  REG_USERS_MAX = 100000,
  REG_PATTERNS_MAX = 64,
  REG_GATEWAY_MAX = 64,
};

/* PBKDF2 iterations for new hashes (a stored hash names its own count):
 * tens of milliseconds per check, which the verified-password cache
 * pays once per client. */
enum { REG_PBKDF2_ITER = 100000 };

int registry_new(struct store *s, struct registry **out);
void registry_free(struct registry *r);

/* Reloads the in-memory view if the database changed since the last
 * call. Returns 1 when it reloaded, 0 when nothing changed, or -EIO
 * (the previous view stays). A reload forgets the verified passwords. */
int registry_refresh(struct registry *r);

/* Counters, for metrics (and the tests of the cache). */
struct registry_stats {
  uint64_t slow_hashes; /* PBKDF2 computations (adds and checks) */
  uint64_t cache_hits;  /* checks answered by the verified-password cache */
  uint64_t reloads;     /* in-memory views loaded, the first included */
};
void registry_stats(const struct registry *r, struct registry_stats *out);

/* --- gateway users --- */

/* Number of users: 0 means anonymous access is allowed. */
size_t registry_user_count(const struct registry *r);

/* Checks name and password (len bytes each, not NUL-terminated).
 * Returns 0 when they match, -EACCES otherwise (unknown user or wrong
 * password). */
int registry_user_check(struct registry *r, const char *name,
                        size_t name_len, const char *password,
                        size_t password_len);

enum reg_acl { REG_ACL_PUB, REG_ACL_SUB };

/* True when user name may publish to the topic (REG_ACL_PUB) or
 * subscribe with the filter (REG_ACL_SUB): some pattern of the kind
 * matches it. A pattern may use "%u" for the user's name as a whole
 * level. For a subscription, the filter must lie within a pattern: a
 * filter 'a/#' needs a pattern 'a/#' or '#', not 'a/b'. */
bool registry_user_allows(struct registry *r, const char *name,
                          enum reg_acl kind, const char *topic);

/* Admin operations (coapd user ...): return 0, -EEXIST, -ENOENT,
 * -EINVAL (bad name, password or pattern; too many patterns), -ENOSPC
 * (REG_USERS_MAX) or -EIO. A name is 1 to 255 bytes without control
 * characters, '/', '+' or '#' (it may stand for a topic level, "%u");
 * a password 1 to REG_PASSWORD_MAX - 1 bytes; a pattern a valid MQTT
 * filter. The in-memory view is reloaded after a change. */
int registry_user_add(struct registry *r, const char *name,
                      const char *password, const char *const *pub,
                      size_t npub, const char *const *sub, size_t nsub);
int registry_user_remove(struct registry *r, const char *name);
/* Calls fn once per user, sorted by name. */
int registry_user_list(struct registry *r,
                       void (*fn)(void *arg, const char *name,
                                  const char *const *pub, size_t npub,
                                  const char *const *sub, size_t nsub),
                       void *arg);

/* --- devices --- */

enum reg_cred { REG_CRED_PASSWORD = 1, REG_CRED_PSK, REG_CRED_CERT };

struct reg_device {
  char application[REG_NAME_MAX];
  char device[REG_NAME_MAX];
  enum reg_cred cred;
  char psk_identity[REG_NAME_MAX]; /* REG_CRED_PSK */
  uint8_t psk[REG_PSK_MAX];        /* REG_CRED_PSK: the key itself */
  size_t psk_len;
  char cert_cn[REG_NAME_MAX];      /* REG_CRED_CERT */
};

/* Adds a device. secret is the password (REG_CRED_PASSWORD), the key in
 * hex, "0x" prefix optional (REG_CRED_PSK, with identity) or the CN
 * (REG_CRED_CERT, identity NULL). gateway_for names devices of the same
 * application it may act for. Application and device names are user
 * names (above) without '@' or ':' either, so that Drogue's
 * "device@application:password" splits one way only. Returns 0, -EEXIST
 * (the device, or its identity or CN, exists), -EINVAL or -EIO.
 * Removing returns 0, -ENOENT or -EIO. Listing calls fn once per device,
 * sorted; fn must not call back into the registry. */
int registry_device_add(struct registry *r, const char *application,
                        const char *device, enum reg_cred cred,
                        const char *identity, const char *secret,
                        const char *const *gateway_for, size_t ngw);
int registry_device_remove(struct registry *r, const char *application,
                           const char *device);
int registry_device_list(struct registry *r,
                         void (*fn)(void *arg, const struct reg_device *d,
                                    const char *const *gateway_for,
                                    size_t ngw),
                         void *arg);

/* Looks a device up; returns 0 and fills *out, or -ENOENT / -EIO. */
int registry_device_get(struct registry *r, const char *application,
                        const char *device, struct reg_device *out);
/* Checks a device's password; 0 or -EACCES. */
int registry_device_check_password(struct registry *r,
                                   const char *application,
                                   const char *device, const char *password,
                                   size_t password_len);
/* Finds the device with this PSK identity or certificate CN; 0 or
 * -ENOENT / -EIO. */
int registry_device_by_psk(struct registry *r, const char *identity,
                           struct reg_device *out);
int registry_device_by_cn(struct registry *r, const char *cn,
                          struct reg_device *out);
/* True when gateway (application/gateway) may act for device. */
bool registry_device_acts_for(struct registry *r, const char *application,
                              const char *gateway, const char *device);

#endif
