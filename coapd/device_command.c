/* Devices waiting for a command (Drogue's ct=N): the request that sent
 * the telemetry is held as a separate response (RFC 7252 §5.2.2: the
 * empty ACK goes out at once, the answer later as its own CON), and the
 * first command published to command/{application}/{device}/{name}
 * within N seconds completes it as 2.05 with the name in option 4210
 * and the command's payload; when the window closes it is answered 2.04.
 *
 * One standing bus subscription, command/+/+/+, feeds every waiting
 * device through a hash table keyed by application and device, rather
 * than one subscription per wait: a subscription made per request would
 * reach an MQTT broker only after a round trip, and a command sent in
 * between would be lost; and a command that finds nobody waiting is then
 * seen here, dropped and counted (commands are not queued, as in
 * Drogue). Behind a shared broker every instance sees every command, and
 * counts as dropped those whose device waits on another instance.
 *
 * A device waits once: a new request with ct from the same device
 * answers the older one 2.04 and waits in its place. The number of
 * waits, reserved ones included, is capped (max_waiting; 5.03 beyond). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device_int.h"

struct waiter {
  struct device_ep *d;
  struct waiter *next; /* hash chain; only while waiting */
  bool waiting;
  struct ck_deferred *def;
  struct ck_timer *timer;
  uint64_t hash;
  char key[2 * REG_NAME_MAX]; /* "application/device" */
};

enum { NBUCKETS = 4096 };

/* FNV-1a: the keys are names we validated, not chosen to collide with
 * anything but their own bucket, and a chain is bounded by max_waiting. */
static uint64_t hash_of(const char *s)
{
  uint64_t h = 1469598103934665603u;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211u;
  return h;
}

static struct waiter **slot(struct device_ep *d, uint64_t h)
{
  return &d->buckets[h % d->nbuckets];
}

static struct waiter *find(struct device_ep *d, const char *key)
{
  uint64_t h = hash_of(key);
  for (struct waiter *w = *slot(d, h); w; w = w->next)
    if (w->hash == h && strcmp(w->key, key) == 0)
      return w;
  return NULL;
}

static void unlink_waiter(struct waiter *w)
{
  struct waiter **pp = slot(w->d, w->hash);
  while (*pp && *pp != w)
    pp = &(*pp)->next;
  if (*pp)
    *pp = w->next;
  w->waiting = false;
}

/* Ends w: answers its request with what resp holds, frees it. */
static void finish(struct waiter *w)
{
  if (w->waiting)
    unlink_waiter(w);
  if (w->def)
    (void)ck_deferred_send(w->def);
  ck_timer_free(w->timer);
  w->d->st.waiting--;
  free(w);
}

static void on_window_closed(struct ck_timer *t, void *user)
{
  (void)t;
  struct waiter *w = user;
  w->d->st.waits_expired++;
  ck_response_code(ck_deferred_response(w->def), CK_CHANGED);
  finish(w); /* frees the timer: the loop allows it inside its callback */
}

/* command/{application}/{device}/{name}: a view of the name, and the
 * key; false for another shape (a topic of more levels). */
static bool parse_topic(const char *topic, char *key, size_t cap,
                        const char **name)
{
  static const char prefix[] = "command/";
  const char *p = topic + sizeof prefix - 1;
  const char *s1 = strchr(p, '/');
  const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
  if (!s2 || strchr(s2 + 1, '/') || (size_t)(s2 - p) >= cap)
    return false;
  memcpy(key, p, (size_t)(s2 - p));
  key[s2 - p] = '\0';
  *name = s2 + 1;
  return true;
}

static void on_command(void *user, const struct bus_msg *m)
{
  struct device_ep *d = user;
  if (m->from_retained)
    return; /* a stored command is no command: they are not queued */
  char key[2 * REG_NAME_MAX];
  const char *name;
  struct waiter *w = parse_topic(m->topic, key, sizeof key, &name)
                       ? find(d, key)
                       : NULL;
  if (!w) {
    d->st.commands_dropped++;
    return;
  }
  struct ck_response *resp = ck_deferred_response(w->def);
  ck_response_code(resp, CK_CONTENT);
  (void)ck_response_opt_str(resp, DEVICE_OPT_COMMAND, name);
  if (m->cf >= 0)
    (void)ck_response_opt_uint(resp, CK_OPT_CONTENT_FORMAT, (uint32_t)m->cf);
  /* An option or payload the response cannot carry makes the answer a
   * 5.00 (ck_response_opt): the device learns the command failed. */
  (void)ck_response_payload(resp, m->payload, m->len);
  d->st.commands_delivered++;
  finish(w);
}

struct waiter *waiter_reserve(struct device_ep *d, const char *application,
                              const char *device)
{
  struct waiter *w = calloc(1, sizeof *w);
  if (!w)
    return NULL;
  size_t an = strlen(application), dn = strlen(device);
  /* Both are names under REG_NAME_MAX: the key fits. */
  memcpy(w->key, application, an);
  w->key[an] = '/';
  memcpy(w->key + an + 1, device, dn + 1);
  w->hash = hash_of(w->key);
  /* A device that waits already takes its own place (waiter_start). */
  if ((d->st.waiting >= d->cfg.max_waiting && !find(d, w->key)) ||
      ck_timer_new(d->ctx, on_window_closed, w, &w->timer) < 0) {
    free(w);
    return NULL;
  }
  w->d = d;
  d->st.waiting++;
  return w;
}

void waiter_start(struct waiter *w, struct ck_deferred *def, uint32_t ct_s)
{
  struct device_ep *d = w->d;
  struct waiter *old = find(d, w->key);
  if (old) {
    ck_response_code(ck_deferred_response(old->def), CK_CHANGED);
    finish(old);
  }
  w->def = def;
  struct waiter **head = slot(d, w->hash);
  w->next = *head;
  *head = w;
  w->waiting = true;
  ck_timer_start(w->timer, (uint64_t)ct_s * 1000, 0);
}

void waiter_cancel(struct waiter *w)
{
  if (!w)
    return;
  w->def = NULL;
  finish(w);
}

int commands_init(struct device_ep *d)
{
  d->nbuckets = NBUCKETS;
  d->buckets = calloc(d->nbuckets, sizeof *d->buckets);
  if (!d->buckets)
    return CK_ENOMEM;
  int rc = bus_subscribe(d->bus, "command/+/+/+", 1, on_command, d,
                         &d->commands);
  /* The bus speaks errno; our caller, the library's codes. */
  return rc == 0          ? 0
         : rc == -ENOSPC  ? CK_EFULL
         : rc == -ENOMEM  ? CK_ENOMEM
                          : CK_EINVAL;
}

void commands_close(struct device_ep *d)
{
  bus_unsubscribe(d->bus, d->commands);
  d->commands = NULL;
  for (size_t i = 0; d->buckets && i < d->nbuckets; i++) {
    while (d->buckets[i]) {
      struct waiter *w = d->buckets[i];
      /* Shutting down: the telemetry was accepted; say so. */
      ck_response_code(ck_deferred_response(w->def), CK_CHANGED);
      finish(w);
    }
  }
  free(d->buckets);
  d->buckets = NULL;
}
