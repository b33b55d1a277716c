/* `coapd user add|remove|list` and `coapd device add|remove|list`
 * (admin.h): parse the command line, open the data directory's store,
 * call the registry, print one line.
 *
 * Two tables drive the parsing, as config.c's does for the daemon: the
 * commands (object, verb, positional arguments, which options they take)
 * and the options (name, whether repeatable, where the value goes).
 * Options may stand anywhere after the verb, as "--name VALUE" or
 * "--name=VALUE". The store's busy timeout lets these commands write
 * while the daemon reads and writes the same database. Nothing printed
 * ever shows a password or a PSK.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "bus.h"
#include "config.h"
#include "registry.h"
#include "store.h"

enum {
  C_USER_ADD = 1 << 0,
  C_USER_REMOVE = 1 << 1,
  C_USER_LIST = 1 << 2,
  C_DEV_ADD = 1 << 3,
  C_DEV_REMOVE = 1 << 4,
  C_DEV_LIST = 1 << 5,
  C_ALL = (1 << 6) - 1,
};

/* Exit statuses (admin.h). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* What the command line gave. A repeatable option fills an array up to
 * its cap. */
struct args {
  const char *data_dir;
  const char *password, *psk_identity, *psk, *cert_cn;
  const char *pub[REG_PATTERNS_MAX], *sub[REG_PATTERNS_MAX];
  const char *gw[REG_GATEWAY_MAX];
  size_t npub, nsub, ngw;
  const char *pos[2];
  size_t npos;
};

/* cap 0: a single value at off; else up to cap values in the array at
 * off, counted at cnt. */
struct opt {
  const char *name;
  unsigned cmds; /* the commands that take it */
  size_t off, cnt, cap;
};

#define ONE(f)          offsetof(struct args, f), 0, 0
#define MANY(f, n, cap) offsetof(struct args, f), offsetof(struct args, n), cap

static const struct opt opts[] = {
    {"--data-dir", C_ALL, ONE(data_dir)},
    {"--password", C_USER_ADD | C_DEV_ADD, ONE(password)},
    {"--allow-pub", C_USER_ADD, MANY(pub, npub, REG_PATTERNS_MAX)},
    {"--allow-sub", C_USER_ADD, MANY(sub, nsub, REG_PATTERNS_MAX)},
    {"--psk-identity", C_DEV_ADD, ONE(psk_identity)},
    {"--psk", C_DEV_ADD, ONE(psk)},
    {"--cert-cn", C_DEV_ADD, ONE(cert_cn)},
    {"--gateway-for", C_DEV_ADD, MANY(gw, ngw, REG_GATEWAY_MAX)},
};

struct cmd {
  const char *object, *verb;
  unsigned bit;
  size_t npos; /* positional arguments */
  const char *usage;
};

static const struct cmd cmds[] = {
    {"user", "add", C_USER_ADD, 1,
     "user add NAME --password P [--allow-pub PATTERN]... "
     "[--allow-sub PATTERN]..."},
    {"user", "remove", C_USER_REMOVE, 1, "user remove NAME"},
    {"user", "list", C_USER_LIST, 0, "user list"},
    {"device", "add", C_DEV_ADD, 2,
     "device add APPLICATION DEVICE (--password P | --psk-identity ID --psk "
     "KEY | --cert-cn CN) [--gateway-for DEVICE]..."},
    {"device", "remove", C_DEV_REMOVE, 2, "device remove APPLICATION DEVICE"},
    {"device", "list", C_DEV_LIST, 0, "device list"},
};
enum { NCMDS = sizeof cmds / sizeof cmds[0] };
enum { NOPTS = sizeof opts / sizeof opts[0] };

/* The object named on the command line, for the hint after an error. */
static const char *object_name = "user";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt,
                                                             ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("coapd: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (see coapd %s --help)\n", object_name);
  return EXIT_USAGE;
}

static void help(FILE *f, const char *object)
{
  fprintf(f, "usage:\n");
  for (size_t i = 0; i < NCMDS; i++)
    if (strcmp(object, cmds[i].object) == 0)
      fprintf(f, "  coapd %s\n", cmds[i].usage);
  fprintf(f, "every command also takes --data-dir DIR (default %s)\n",
          COAPD_DATA_DIR);
}

/* Stores one option's value; 0 or an exit status. */
static int take(struct args *a, const struct opt *o, const char *value)
{
  char *base = (char *)a;
  if (!o->cap) {
    const char **slot = (const char **)(base + o->off);
    if (*slot)
      return usage_error("%s given twice", o->name);
    *slot = value;
    return 0;
  }
  const char **arr = (const char **)(base + o->off);
  size_t *n = (size_t *)(base + o->cnt);
  if (*n == o->cap)
    return usage_error("too many %s options", o->name);
  arr[(*n)++] = value;
  return 0;
}

/* Parses argv[3...] for command c; 0 or an exit status. */
static int parse(const struct cmd *c, int argc, char **argv, struct args *a)
{
  bool opts_done = false;
  for (int i = 3; i < argc; i++) {
    const char *s = argv[i];
    if (opts_done || strncmp(s, "--", 2) != 0 || s[2] == '\0') {
      if (!opts_done && strcmp(s, "--") == 0) {
        opts_done = true;
        continue;
      }
      if (a->npos == c->npos)
        return usage_error("unexpected argument '%s'", s);
      a->pos[a->npos++] = s;
      continue;
    }
    const char *eq = strchr(s, '=');
    size_t len = eq ? (size_t)(eq - s) : strlen(s);
    const struct opt *o = NULL;
    for (size_t k = 0; k < NOPTS && !o; k++)
      if (strlen(opts[k].name) == len && memcmp(opts[k].name, s, len) == 0)
        o = &opts[k];
    if (!o || !(o->cmds & c->bit)) {
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)(len < 60 ? len : 60), s);
      return usage_error("unknown option '%s' for %s", name, c->verb);
    }
    const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!value)
      return usage_error("%s needs a value", o->name);
    int rc = take(a, o, value);
    if (rc)
      return rc;
  }
  if (a->npos < c->npos)
    return usage_error("missing arguments: coapd %s", c->usage);
  return 0;
}

/* --- output --- */

/* Prints s with control characters shown as '?', so that one entry stays
 * one line whatever a pattern holds. */
static void put_clean(const char *s)
{
  for (; *s; s++)
    putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static void put_list(const char *label, const char *const *v, size_t n)
{
  printf("  %s ", label);
  if (n == 0)
    putchar('-');
  for (size_t i = 0; i < n; i++) {
    if (i)
      fputs(", ", stdout);
    put_clean(v[i]);
  }
}

static void on_user(void *arg, const char *name, const char *const *pub,
                    size_t npub, const char *const *sub, size_t nsub)
{
  (void)arg;
  printf("%-20s", name);
  put_list("pub:", pub, npub);
  put_list("sub:", sub, nsub);
  putchar('\n');
}

static void on_device(void *arg, const struct reg_device *d,
                      const char *const *gw, size_t ngw)
{
  (void)arg;
  char id[2 * REG_NAME_MAX];
  snprintf(id, sizeof id, "%s/%s", d->application, d->device);
  printf("%-30s ", id);
  switch (d->cred) {
  case REG_CRED_PASSWORD:
    fputs("password", stdout);
    break;
  case REG_CRED_PSK:
    fputs("psk identity ", stdout);
    put_clean(d->psk_identity);
    break;
  case REG_CRED_CERT:
    fputs("cert cn ", stdout);
    put_clean(d->cert_cn);
    break;
  default:
    fputs("?", stdout);
  }
  if (ngw)
    put_list("gateway for:", gw, ngw);
  putchar('\n');
}

/* --- commands --- */

/* A PSK as SPEC gives it (text, or hex with "0x") into the hex the
 * registry takes; 0 or an exit status. */
static int psk_hex(const char *in, char *out, size_t cap)
{
  if (strncmp(in, "0x", 2) == 0 || strncmp(in, "0X", 2) == 0) {
    if (strlen(in) >= cap)
      return usage_error("the PSK is longer than %d bytes", REG_PSK_MAX);
    memcpy(out, in, strlen(in) + 1);
    return 0;
  }
  size_t n = strlen(in);
  if (n == 0 || n > REG_PSK_MAX)
    return usage_error("the PSK must be 1 to %d bytes", REG_PSK_MAX);
  for (size_t i = 0; i < n; i++)
    snprintf(out + 2 * i, cap - 2 * i, "%02x", (unsigned char)in[i]);
  return 0;
}

/* Maps a registry error to a message and an exit status. */
static int failed(int rc, const char *what, const char *name)
{
  const char *why = rc == -EEXIST   ? "exists"
                    : rc == -ENOENT ? "does not exist"
                    : rc == -ENOSPC ? "cannot be added: the registry is full"
                    : rc == -EINVAL ? "is not valid (name, password, pattern "
                                      "or key)"
                                    : "cannot be changed: database error";
  fprintf(stderr, "coapd: %s '%s' %s\n", what, name, why);
  return rc == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
}

static int user_add(struct registry *r, const struct args *a)
{
  if (!a->password)
    return usage_error("user add needs --password");
  const char *const *pats[2] = {a->pub, a->sub};
  size_t n[2] = {a->npub, a->nsub};
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < n[k]; i++)
      if (!bus_filter_valid(pats[k][i], strlen(pats[k][i])))
        return usage_error("'%s' is not a valid topic filter", pats[k][i]);
  int rc = registry_user_add(r, a->pos[0], a->password, a->pub, a->npub, a->sub,
                             a->nsub);
  if (rc < 0)
    return failed(rc, "user", a->pos[0]);
  printf("user %s added\n", a->pos[0]);
  return EXIT_OK;
}

static int device_add(struct registry *r, const struct args *a)
{
  int ncred = !!a->password + !!(a->psk || a->psk_identity) + !!a->cert_cn;
  if (ncred != 1)
    return usage_error("device add needs exactly one of --password, "
                       "--psk-identity with --psk, --cert-cn");
  if (!a->psk != !a->psk_identity)
    return usage_error("--psk and --psk-identity go together");
  char hex[2 * REG_PSK_MAX + 3];
  enum reg_cred cred = a->password ? REG_CRED_PASSWORD
                       : a->psk    ? REG_CRED_PSK
                                   : REG_CRED_CERT;
  const char *secret = a->password ? a->password : a->cert_cn;
  if (cred == REG_CRED_PSK) {
    int rc = psk_hex(a->psk, hex, sizeof hex);
    if (rc)
      return rc;
    secret = hex;
  }
  char id[2 * REG_NAME_MAX];
  snprintf(id, sizeof id, "%s/%s", a->pos[0], a->pos[1]);
  int rc = registry_device_add(r, a->pos[0], a->pos[1], cred, a->psk_identity,
                               secret, a->gw, a->ngw);
  explicit_bzero(hex, sizeof hex);
  if (rc < 0)
    return failed(rc == -EEXIST && cred != REG_CRED_PASSWORD ? -EEXIST : rc,
                  "device (or its identity or CN)", id);
  printf("device %s added\n", id);
  return EXIT_OK;
}

static int run(const struct cmd *c, struct registry *r, const struct args *a)
{
  int rc;
  char id[2 * REG_NAME_MAX];
  switch (c->bit) {
  case C_USER_ADD:
    return user_add(r, a);
  case C_USER_REMOVE:
    if ((rc = registry_user_remove(r, a->pos[0])) < 0)
      return failed(rc, "user", a->pos[0]);
    printf("user %s removed\n", a->pos[0]);
    return EXIT_OK;
  case C_USER_LIST:
    return registry_user_list(r, on_user, NULL) < 0 ? EXIT_FAIL : EXIT_OK;
  case C_DEV_ADD:
    return device_add(r, a);
  case C_DEV_REMOVE:
    snprintf(id, sizeof id, "%s/%s", a->pos[0], a->pos[1]);
    if ((rc = registry_device_remove(r, a->pos[0], a->pos[1])) < 0)
      return failed(rc, "device", id);
    printf("device %s removed\n", id);
    return EXIT_OK;
  default:
    return registry_device_list(r, on_device, NULL) < 0 ? EXIT_FAIL : EXIT_OK;
  }
}

int admin_main(int argc, char **argv)
{
  const char *object = argv[1];
  const char *verb = argc > 2 ? argv[2] : NULL;
  object_name = object;
  if (!verb || strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
    help(verb ? stdout : stderr, object);
    return verb ? EXIT_OK : EXIT_USAGE;
  }
  const struct cmd *c = NULL;
  for (size_t i = 0; i < NCMDS && !c; i++)
    if (strcmp(cmds[i].object, object) == 0 && strcmp(cmds[i].verb, verb) == 0)
      c = &cmds[i];
  if (!c)
    return usage_error("unknown command '%s %s'", object, verb);
  static struct args a;
  memset(&a, 0, sizeof a);
  int rc = parse(c, argc, argv, &a);
  if (rc)
    return rc;

  /* coapd_data_dir_make() reads only data_dir; the daemon's settings are
   * not needed here. */
  static struct coapd_config cfg;
  const char *dir = a.data_dir ? a.data_dir : COAPD_DATA_DIR;
  if (strlen(dir) >= sizeof cfg.data_dir)
    return usage_error("--data-dir is too long");
  memcpy(cfg.data_dir, dir, strlen(dir) + 1);
  char err[COAPD_PATH_MAX + 256];
  struct store *s = NULL;
  struct registry *r = NULL;
  if (coapd_data_dir_make(&cfg, err, sizeof err) < 0 ||
      store_open(dir, &s, err, sizeof err) < 0) {
    fprintf(stderr, "coapd: %s\n", err);
    return EXIT_FAIL;
  }
  if ((rc = registry_new(s, &r)) < 0) {
    fprintf(stderr, "coapd: cannot read the registry in '%s': %s\n", dir,
            strerror(-rc));
    store_close(s);
    return EXIT_FAIL;
  }
  rc = run(c, r, &a);
  registry_free(r);
  store_close(s);
  return rc;
}
