/* coapd, the CoAP server daemon: reads its settings (config.c), opens
 * its endpoints, adds the resources it serves, and runs until SIGINT or
 * SIGTERM.
 *
 * The daemon runs its own epoll loop and drives libcoapkit from it, the
 * way the library lets an application embed it: it watches ck_ctx_fd()
 * beside its own descriptors (the demo's timer), bounds each wait with
 * ck_ctx_timeout(), and calls ck_ctx_process() to do what is ready. A
 * signal handler sets a flag and writes one byte to ck_stop_fd(), which
 * wakes the wait through ck_ctx_fd().
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <coapkit/coapkit.h>

#include "config.h"
#include "demo.h"
#include "log.h"

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

/* Joins the groups it can and names them in joined (for the start line);
 * a group it cannot join is a warning: the host may lack IPv6, or the
 * endpoints may be of the other family. */
static void join_groups(struct ck_ctx *ctx, char *joined, size_t cap)
{
  /* RFC 7252 §12.8: "All CoAP Nodes" of IPv4, IPv6 link- and site-local. */
  static const char *const groups[] = {"224.0.1.187", "ff02::fd", "ff05::fd"};
  size_t used = 0;
  joined[0] = '\0';
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
    int rc = ck_ctx_join(ctx, groups[i], NULL);
    if (rc < 0) {
      log_warn("cannot join multicast group %s: %s", groups[i],
               rc == CK_ESYS        ? strerror(errno)
               : rc == CK_ENOTFOUND ? "no endpoint of its address family"
                                    : ck_strerror(rc));
      continue;
    }
    int k = snprintf(joined + used, cap - used, " %s", groups[i]);
    if (k > 0 && (size_t)k < cap - used)
      used += (size_t)k;
  }
}

/* The loop: returns 0 when a signal stopped it, or 1 on a failure. */
static int serve(struct ck_ctx *ctx, struct demo *demo)
{
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    log_error("epoll_create1: %s", strerror(errno));
    return 1;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ctx};
  int rc = epoll_ctl(ep, EPOLL_CTL_ADD, ck_ctx_fd(ctx), &ev);
  if (rc == 0 && demo) {
    ev.data.ptr = demo;
    rc = epoll_ctl(ep, EPOLL_CTL_ADD, demo_fd(demo), &ev);
  }
  if (rc != 0) {
    log_error("epoll_ctl: %s", strerror(errno));
    close(ep);
    return 1;
  }
  int status = 0;
  while (!stop_signal) {
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, ck_ctx_timeout(ctx));
    if (n < 0 && errno != EINTR) {
      log_error("epoll_wait: %s", strerror(errno));
      status = 1;
      break;
    }
    for (int i = 0; i < n; i++)
      if (evs[i].data.ptr == demo)
        demo_run(demo);
    /* Also when nothing is readable: the library's timers may be due.
     * It flushes what the demo queued, too. */
    rc = ck_ctx_process(ctx, 0);
    if (rc < 0) {
      log_error("ck_ctx_process: %s", ck_strerror(rc));
      status = 1;
      break;
    }
  }
  close(ep);
  return status;
}

/* The shutdown line: why, and the library's counters. */
static void log_stats(const struct ck_ctx *ctx, const char *why)
{
  struct ck_stats s;
  ck_ctx_stats(ctx, &s);
  log_info(
      "stopped by %s: rx %llu tx %llu malformed %llu duplicates %llu "
      "retransmits %llu dropped %llu dedup_evictions %llu observers "
      "%llu observers_rejected %llu uploads_rejected %llu",
      why, (unsigned long long)s.rx_datagrams,
      (unsigned long long)s.tx_datagrams, (unsigned long long)s.rx_malformed,
      (unsigned long long)s.rx_duplicates, (unsigned long long)s.tx_retransmits,
      (unsigned long long)s.tx_dropped, (unsigned long long)s.dedup_evictions,
      (unsigned long long)s.observers, (unsigned long long)s.observers_rejected,
      (unsigned long long)s.uploads_rejected);
}

int main(int argc, char **argv)
{
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

  struct ck_ctx *ctx;
  rc = ck_ctx_new(&ctx, &cfg.ctx);
  if (rc < 0) {
    log_error("cannot create the context: %s", ck_strerror(rc));
    return 1;
  }
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
  int status = 1;
  char names[COAPD_MAX_LISTEN * CK_ADDR_STRLEN], groups[64] = "";
  if (open_endpoints(ctx, &cfg, names, sizeof names) < 0)
    goto out;
  if (cfg.multicast)
    join_groups(ctx, groups, sizeof groups);
  if (cfg.demo && (rc = demo_new(ctx, &demo)) < 0) {
    log_error("cannot add the demo resources: %s", ck_strerror(rc));
    goto out;
  }

  log_info("coapd %s listening on %s%s%s%s", COAPD_VERSION, names,
           groups[0] ? ", multicast groups" : "", groups,
           demo ? ", demo resources" : "");
  status = serve(ctx, demo);
  log_stats(ctx, !stop_signal            ? "an error"
                 : stop_signal == SIGINT ? "SIGINT"
                                         : "SIGTERM");
out:
  demo_free(demo);
  ck_ctx_free(ctx);
  return status;
}
