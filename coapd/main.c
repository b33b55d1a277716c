/* coapd, the CoAP server daemon: reads its settings (config.c), opens
 * its endpoints, adds the resources it serves, and runs until SIGINT or
 * SIGTERM.
 *
 * Everything runs on the library's loop (ck_run): the daemon's own timers
 * (the demo's, the multicast join retry) are library timers, so coapd
 * has no loop of its own. A signal handler sets a flag and writes one
 * byte to ck_stop_fd(), which makes ck_run() return.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <coapkit/coapkit.h>

#include "admin.h"
#include "bus.h"
#include "config.h"
#include "demo.h"
#include "device.h"
#include "dtls.h"
#include "log.h"
#include "pubsub.h"
#include "registry.h"
#include "store.h"
#include "metrics.h"

static volatile sig_atomic_t stop_signal;
static int stop_fd = -1;

static void on_signal(int sig)
{
  int saved = errno;
  /* The flag first: the byte wakes the loop, which then sees the flag. */
  stop_signal = sig;
  char b = 1;
  ssize_t n = write(stop_fd, &b, 1);
  (void)n;
  errno = saved;
}

static int open_endpoints(struct ck_ctx *ctx, const struct coapd_config *c,
                          char *names, size_t cap)
{
  unsigned opened = 0;
  size_t used = 0;
  names[0] = '\0';
  for (unsigned i = 0; i < c->nlisten; i++) {
    const struct coapd_listen *l = &c->listen[i];
    char a[CK_ADDR_STRLEN];
    ck_addr_format(&l->addr, a, sizeof a);
    int rc = ck_ctx_listen(ctx, &l->addr);
    if (rc < 0) {
      const char *why = rc == CK_ESYS ? strerror(errno) : ck_strerror(rc);
      if (l->optional && rc == CK_ESYS &&
          (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
        log_warn("cannot listen on %s (%s): no IPv6, continuing", a, why);
        continue;
      }
      log_error("cannot listen on %s: %s", a, why);
      return -1;
    }
    /* Port 0 picks a port: name the one we got. */
    struct ck_addr got;
    if (ck_ctx_local_addr(ctx, opened++, &got) == 0)
      ck_addr_format(&got, a, sizeof a);
    int k = snprintf(names + used, cap - used, "%s%s", used ? " " : "", a);
    if (k > 0 && (size_t)k < cap - used)
      used += (size_t)k;
  }
  if (opened == 0) {
    log_error("no endpoint to listen on");
    return -1;
  }
  return 0;
}

/* Multicast groups (RFC 7252 §12.8: "All CoAP Nodes" of IPv4, IPv6 link-
 * and site-local). A group that cannot be joined at the start (no route
 * yet, an interface still coming up) is tried again every RETRY_MS until
 * it is joined (multicast_retry_ms, 30 s), with one warning when it first
 * fails and one line when it finally succeeds. */
enum { NGROUPS = 3 };
static const char *const groups[NGROUPS] = {"224.0.1.187", "ff02::fd",
                                            "ff05::fd"};

struct joiner {
  struct ck_ctx *ctx;
  struct ck_timer *retry;
  uint32_t retry_ms;
  bool joined[NGROUPS];
  bool hopeless[NGROUPS]; /* no endpoint of the group's family */
};

/* Tries every group not yet joined; returns how many are still missing. */
static int join_missing(struct joiner *j, bool first)
{
  int missing = 0;
  for (int i = 0; i < NGROUPS; i++) {
    if (j->joined[i] || j->hopeless[i])
      continue;
    int rc = ck_ctx_join(j->ctx, groups[i], NULL);
    if (rc == 0) {
      j->joined[i] = true;
      if (!first)
        log_info("joined multicast group %s", groups[i]);
      continue;
    }
    if (rc == CK_ENOTFOUND) {
      /* No endpoint of this family: retrying cannot help. */
      j->hopeless[i] = true;
      if (first)
        log_warn("cannot join multicast group %s: no endpoint of its "
                 "address family", groups[i]);
      continue;
    }
    missing++;
    if (first)
      log_warn("cannot join multicast group %s: %s; retrying every %u ms",
               groups[i], rc == CK_ESYS ? strerror(errno) : ck_strerror(rc),
               j->retry_ms);
  }
  return missing;
}

static void on_retry(struct ck_timer *t, void *user)
{
  struct joiner *j = user;
  if (join_missing(j, false) == 0)
    ck_timer_stop(t);
}

/* Joins what it can now, names the joined groups in names, and keeps
 * retrying the others on a timer. Returns 0 or a CK_E... error. */
static int join_groups(struct joiner *j, struct ck_ctx *ctx,
                       uint32_t retry_ms, char *names, size_t cap)
{
  memset(j, 0, sizeof *j);
  j->ctx = ctx;
  j->retry_ms = retry_ms;
  if (join_missing(j, true) > 0) {
    int rc = ck_timer_new(ctx, on_retry, j, &j->retry);
    if (rc < 0)
      return rc;
    ck_timer_start(j->retry, retry_ms, retry_ms);
  }
  size_t used = 0;
  names[0] = '\0';
  for (int i = 0; i < NGROUPS; i++) {
    if (!j->joined[i])
      continue;
    int k = snprintf(names + used, cap - used, " %s", groups[i]);
    if (k > 0 && (size_t)k < cap - used)
      used += (size_t)k;
  }
  return 0;
}

/* The gateway's state: the store in the data directory, the registry
 * read from it, the bus and the gateway itself. */
struct gateway {
  struct store *store;
  struct registry *reg;
  struct bus *bus;
  struct pubsub *ps;
  struct device_ep *dev;
  struct ck_timer *refresh;
};

/* Another process (coapd user|device ...) may change the registry while
 * we run: look once a second, reload when it did. */
static void on_refresh(struct ck_timer *t, void *user)
{
  (void)t;
  struct gateway *g = user;
  int rc = registry_refresh(g->reg);
  if (rc > 0)
    log_info("registry reloaded: %zu users", registry_user_count(g->reg));
  else if (rc < 0)
    log_warn("cannot reload the registry: %s", strerror(-rc));
}

static int gateway_start(struct gateway *g, struct ck_ctx *ctx,
                         struct coapd_config *cfg)
{
  char why[COAPD_PATH_MAX + 128];
  if (store_open(cfg->data_dir, &g->store, why, sizeof why) < 0) {
    log_error("%s", why);
    return -1;
  }
  int rc = registry_new(g->store, &g->reg);
  if (rc < 0) {
    log_error("cannot read the registry: %s", strerror(-rc));
    return -1;
  }
  struct bus_persist persist = store_bus_persist(g->store);
  if (cfg->bus_url[0]) {
    /* Retained messages live in the broker then, not in the store. */
    cfg->mqtt.url = cfg->bus_url;
    cfg->mqtt.client_id = cfg->mqtt_client_id;
    cfg->mqtt.cafile = cfg->mqtt_cafile;
    cfg->mqtt.certfile = cfg->mqtt_certfile;
    cfg->mqtt.keyfile = cfg->mqtt_keyfile;
    rc = bus_mqtt_new(ctx, &cfg->mqtt, &g->bus);
  } else {
    rc = bus_embedded_new(&cfg->bus, &persist, &g->bus);
  }
  if (rc < 0) {
    log_error("cannot start the bus: %s", strerror(-rc));
    return -1;
  }
  cfg->pubsub.unsubscribe_code =
    cfg->unsubscribe_choice ? CK_CODE(2, 7) : CK_CONTENT;
  rc = pubsub_new(ctx, &cfg->pubsub, g->bus, g->reg, g->store, &g->ps);
  if (rc < 0) {
    log_error("cannot start the pub/sub gateway: %s", ck_strerror(rc));
    return -1;
  }
  rc = device_new(ctx, NULL, g->bus, g->reg, &g->dev);
  if (rc < 0) {
    log_error("cannot start the device endpoint: %s", ck_strerror(rc));
    return -1;
  }
  rc = ck_timer_new(ctx, on_refresh, g, &g->refresh);
  if (rc < 0) {
    log_error("cannot start the registry timer: %s", ck_strerror(rc));
    return -1;
  }
  ck_timer_start(g->refresh, 1000, 1000);
  return 0;
}

static void gateway_stop(struct gateway *g)
{
  if (g->ps) {
    struct pubsub_stats s;
    pubsub_stats(g->ps, &s);
    log_info("pub/sub: published %llu notifications %llu queue_drops %llu "
             "ended_reset %llu ended_timeout %llu sessions_expired %llu "
             "auth_failures %llu acl_denied %llu bad_requests %llu",
             (unsigned long long)s.published,
             (unsigned long long)s.notifications,
             (unsigned long long)s.queue_drops,
             (unsigned long long)s.ended_reset,
             (unsigned long long)s.ended_timeout,
             (unsigned long long)s.sessions_expired,
             (unsigned long long)s.auth_failures,
             (unsigned long long)s.acl_denied,
             (unsigned long long)s.bad_requests);
  }
  if (g->dev) {
    struct device_stats s;
    device_stats(g->dev, &s);
    log_info("devices: accepted %llu auth_failures %llu bad_requests %llu "
             "unavailable %llu commands_delivered %llu commands_dropped "
             "%llu waits_expired %llu",
             (unsigned long long)s.accepted,
             (unsigned long long)s.auth_failures,
             (unsigned long long)s.bad_requests,
             (unsigned long long)s.unavailable,
             (unsigned long long)s.commands_delivered,
             (unsigned long long)s.commands_dropped,
             (unsigned long long)s.waits_expired);
  }
  ck_timer_free(g->refresh);
  device_free(g->dev);
  pubsub_free(g->ps);
  bus_free(g->bus);
  registry_free(g->reg);
  store_close(g->store);
}

/* The library's own log lines go to coapd's log. */
static void on_lib_log(void *user, enum ck_log_level level, const char *msg)
{
  (void)user;
  static const enum coapd_log_level map[] = {LOG_LEVEL_ERROR, LOG_LEVEL_WARN,
                                             LOG_LEVEL_INFO, LOG_LEVEL_DEBUG};
  coapd_log(level <= CK_LOG_DEBUG ? map[level] : LOG_LEVEL_DEBUG, "%s", msg);
}

/* The shutdown line: why, and the library's counters. */
static void log_stats(const struct ck_ctx *ctx, const char *why)
{
  struct ck_stats s;
  ck_ctx_stats(ctx, &s);
  log_info("stopped by %s: rx %llu tx %llu malformed %llu duplicates %llu "
           "retransmits %llu dropped %llu dedup_evictions %llu dedup_refused "
           "%llu dedup_bytes %llu observers %llu observers_rejected %llu "
           "uploads_rejected %llu responses_failed %llu",
           why, (unsigned long long)s.rx_datagrams,
           (unsigned long long)s.tx_datagrams,
           (unsigned long long)s.rx_malformed,
           (unsigned long long)s.rx_duplicates,
           (unsigned long long)s.tx_retransmits,
           (unsigned long long)s.tx_dropped,
           (unsigned long long)s.dedup_evictions,
           (unsigned long long)s.dedup_refused,
           (unsigned long long)s.dedup_bytes, (unsigned long long)s.observers,
           (unsigned long long)s.observers_rejected,
           (unsigned long long)s.uploads_rejected,
           (unsigned long long)s.responses_failed);
}

int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "stats") == 0)
    return stats_main(argc - 1, argv + 1);
  if (argc > 1 && (strcmp(argv[1], "user") == 0 ||
                   strcmp(argv[1], "device") == 0))
    return admin_main(argc, argv);
  struct coapd_config cfg;
  int rc = coapd_config_load(&cfg, argc, argv);
  if (rc != COAPD_CONFIG_RUN)
    return rc == COAPD_CONFIG_EXIT ? 0 : 2;
  coapd_log_set_level(cfg.log_level);
  char why[COAPD_PATH_MAX + 128];
  if (coapd_data_dir_make(&cfg, why, sizeof why) < 0) {
    /* A setting that is fine as text but unusable here: serving fails
     * (exit 1), as for an address this host does not have. */
    log_error("%s", why);
    return 1;
  }
  log_debug("data directory %s", cfg.data_dir);
  if ((rc = coapd_dtls_check(&cfg)) < 0)
    return -rc;

  struct ck_ctx *ctx;
  rc = ck_ctx_new(&cfg.ctx, &ctx);
  if (rc < 0) {
    log_error("cannot create the context: %s", ck_strerror(rc));
    return 1;
  }
  ck_ctx_set_log(ctx, on_lib_log, NULL);
  /* From here on a signal stops coapd cleanly, even during the start. */
  stop_fd = ck_stop_fd(ctx);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  struct demo *demo = NULL;
  struct metrics_http *metrics = NULL;
  struct joiner joiner = {0};
  struct gateway gw = {0};
  int status = 1;
  char names[COAPD_MAX_LISTEN * CK_ADDR_STRLEN], joined[64] = "";
  if (open_endpoints(ctx, &cfg, names, sizeof names) < 0)
    goto out;
  if (gateway_start(&gw, ctx, &cfg) < 0)
    goto out;
  /* After the registry, which holds the devices' PSKs. */
  if (cfg.ndtls_listen && (rc = coapd_dtls_start(ctx, &cfg, gw.reg)) < 0) {
    status = rc == -2 ? 2 : 1;
    goto out;
  }
  if (cfg.metrics_listen.len) {
    struct metrics_source src = {ctx, gw.bus, gw.ps, gw.dev};
    if (metrics_http_new(ctx, &cfg.metrics_listen, &src, cfg.data_dir,
                         &metrics, why, sizeof why) < 0) {
      log_error("%s", why);
      goto out;
    }
    log_info("serving metrics at http://%s/metrics",
             metrics_http_addr(metrics));
  }
  if (cfg.multicast &&
      (rc = join_groups(&joiner, ctx, cfg.multicast_retry_ms, joined,
                        sizeof joined)) < 0) {
    log_error("cannot start the multicast retry: %s", ck_strerror(rc));
    goto out;
  }
  if (cfg.demo && (rc = demo_new(ctx, &demo)) < 0) {
    log_error("cannot add the demo resources: %s", ck_strerror(rc));
    goto out;
  }

  log_info("coapd %s listening on %s%s%s, pub/sub gateway (%s mode)%s",
           COAPD_VERSION, names, joined[0] ? ", multicast groups" : "",
           joined, cfg.pubsub.connection_required ? "connection"
                                                  : "connectionless",
           demo ? ", demo resources" : "");
  rc = ck_run(ctx);
  if (rc < 0)
    log_error("the event loop failed: %s", ck_strerror(rc));
  status = rc < 0 ? 1 : 0;
  log_stats(ctx, !stop_signal            ? "an error"
                 : stop_signal == SIGINT ? "SIGINT"
                                         : "SIGTERM");
out:
  metrics_http_free(metrics);
  ck_timer_free(joiner.retry);
  demo_free(demo);
  gateway_stop(&gw);
  ck_ctx_free(ctx);
  return status;
}
