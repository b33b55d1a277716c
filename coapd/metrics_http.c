/* /metrics over HTTP, for Prometheus to scrape (--metrics-listen).
 *
 * libmicrohttpd does the HTTP, but it runs no thread of its own: the
 * counters it shows are written by the daemon's loop thread without
 * locks, so the scrape must be formatted on that thread too. MHD is
 * therefore started in external-select mode with epoll, and its epoll
 * descriptor (readable when any of its sockets has work) is watched on
 * the library's loop with ck_watch; a ck_timer follows MHD_get_timeout()
 * for its idle connections and for work it has left over after a run.
 *
 * The address actually bound (port 0 picks one) is written to
 * DATA_DIR/metrics.addr, which is how `coapd stats` finds a running
 * instance; the file is written under another name and renamed, so a
 * reader never sees half of it, and removed again on free.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "config.h"
#include "log.h"
#include "metrics.h"

/* Caps: concurrent HTTP connections, seconds an idle one is kept, and
 * the largest scrape (the text grows by doubling from SCRAPE_MIN). */
enum {
  HTTP_CONNECTIONS = 16,
  HTTP_IDLE_S = 10,
  SCRAPE_MIN = 16384,
  SCRAPE_MAX = 4 << 20
};

struct metrics_http {
  struct ck_ctx *ctx;
  struct metrics_source src;
  struct MHD_Daemon *mhd;
  struct ck_watch *watch;
  struct ck_timer *timer;
  char *buf; /* the scrape's text, reused */
  size_t cap;
  char addr_file[COAPD_PATH_MAX + 16]; /* "" when none was written */
  char addr_text[CK_ADDR_STRLEN + 1];  /* "ADDR:PORT\n" as written */
  char bound[CK_ADDR_STRLEN];          /* the address bound */
  char mhd_err[160]; /* MHD's last log line, for a failed start */
};

/* MHD's own messages (a failed bind, a broken connection). The format
 * attribute tells clang's -Wformat-nonliteral that fmt is MHD's. */
__attribute__((format(printf, 2, 0))) static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
  struct metrics_http *m = cls;
  vsnprintf(m->mhd_err, sizeof m->mhd_err, fmt, ap);
  size_t n = strlen(m->mhd_err);
  while (n > 0 && (m->mhd_err[n - 1] == '\n' || m->mhd_err[n - 1] == '.'))
    m->mhd_err[--n] = '\0';
  log_debug("metrics http: %s", m->mhd_err);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *type, const char *body, size_t len)
{
  struct MHD_Response *r = MHD_create_response_from_buffer(
      len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  enum MHD_Result ok = MHD_add_response_header(r, "Content-Type", type);
  if (ok == MHD_YES && status == MHD_HTTP_METHOD_NOT_ALLOWED)
    ok = MHD_add_response_header(r, "Allow", "GET, HEAD");
  if (ok == MHD_YES)
    ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

/* Formats the scrape into m->buf, growing it up to SCRAPE_MAX. Returns
 * the length or a negative error. */
static int scrape(struct metrics_http *m)
{
  for (;;) {
    if (m->buf) {
      int n = metrics_format(&m->src, m->buf, m->cap);
      if (n != -ENOSPC)
        return n;
    }
    size_t cap = m->cap ? m->cap * 2 : SCRAPE_MIN;
    if (cap > SCRAPE_MAX)
      return -ENOSPC;
    char *b = realloc(m->buf, cap);
    if (!b)
      return -ENOMEM;
    m->buf = b;
    m->cap = cap;
  }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
  struct metrics_http *m = cls;
  (void)version;
  (void)upload;
  (void)upload_size;
  (void)state;
  static const char text[] = "text/plain; charset=utf-8";
  if (strcmp(url, "/metrics") != 0)
    return reply(c, MHD_HTTP_NOT_FOUND, text, "not found\n", 10);
  /* MHD drops the body of a HEAD answer by itself. */
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text,
                 "method not allowed\n", 19);
  int n = scrape(m);
  if (n < 0) {
    log_warn("metrics: cannot format the scrape: %s", strerror(-n));
    return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text, "error\n", 6);
  }
  /* The content type of the text format, version 0.0.4. */
  return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
               m->buf, (size_t)n);
}

/* Runs MHD; after every run, it says when it wants to run again: at
 * once when it has work left that its epoll descriptor will not show
 * again (its sockets are edge-triggered), later for idle connections, or
 * never. */
static void run(struct metrics_http *m)
{
  if (MHD_run(m->mhd) != MHD_YES)
    log_debug("metrics http: MHD_run failed");
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(m->mhd, &ms) == MHD_YES)
    ck_timer_start(m->timer, ms, 0);
  else
    ck_timer_stop(m->timer);
}

static void on_readable(struct ck_watch *w, int fd, unsigned events,
                        void *user)
{
  struct metrics_http *m = user;
  (void)w;
  (void)fd;
  (void)events;
  run(m);
}

static void on_timer(struct ck_timer *t, void *user)
{
  struct metrics_http *m = user;
  (void)t;
  run(m);
}

/* A wildcard is written as the loopback of its family: the file tells a
 * local `coapd stats` where to connect, and 0.0.0.0 is not an address to
 * connect to. */
static void connectable(struct ck_addr *a)
{
  if (a->u.sa.sa_family == AF_INET &&
      a->u.in4.sin_addr.s_addr == htonl(INADDR_ANY))
    a->u.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  else if (a->u.sa.sa_family == AF_INET6 &&
           IN6_IS_ADDR_UNSPECIFIED(&a->u.in6.sin6_addr))
    a->u.in6.sin6_addr = in6addr_loopback;
}

/* Writes m->addr_text to DATA_DIR/metrics.addr, mode 0600, by rename. */
static int write_addr_file(struct metrics_http *m, const char *dir,
                           char *err, size_t cap)
{
  char tmp[sizeof m->addr_file + 8];
  int n = snprintf(m->addr_file, sizeof m->addr_file, "%s/metrics.addr",
                   dir);
  int k = snprintf(tmp, sizeof tmp, "%s.%ld", m->addr_file, (long)getpid());
  if (n < 0 || (size_t)n >= sizeof m->addr_file || k < 0 ||
      (size_t)k >= sizeof tmp) {
    m->addr_file[0] = '\0';
    snprintf(err, cap, "data directory path too long");
    return -1;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  size_t len = strlen(m->addr_text);
  bool ok = fd >= 0 && write(fd, m->addr_text, len) == (ssize_t)len;
  int saved = errno;
  if (fd >= 0 && close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (ok && rename(tmp, m->addr_file) != 0) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    if (fd >= 0)
      unlink(tmp);
    snprintf(err, cap, "cannot write %.200s: %s", m->addr_file,
             strerror(saved));
    m->addr_file[0] = '\0';
    return -1;
  }
  return 0;
}

int metrics_http_new(struct ck_ctx *ctx, const struct ck_addr *addr,
                     const struct metrics_source *src, const char *data_dir,
                     struct metrics_http **out, char *err, size_t cap)
{
  char text[CK_ADDR_STRLEN];
  if (ck_addr_format(addr, text, sizeof text) < 0)
    snprintf(text, sizeof text, "?");
  struct metrics_http *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, cap, "metrics on %s: out of memory", text);
    return -1;
  }
  m->ctx = ctx;
  m->src = *src;
  bool v6 = addr->u.sa.sa_family == AF_INET6;
  unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
  m->mhd = MHD_start_daemon(
      flags, ck_addr_port(addr), NULL, NULL, on_request, m,
      MHD_OPTION_SOCK_ADDR, &addr->u.sa, MHD_OPTION_EXTERNAL_LOGGER,
      on_mhd_log, m, MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_S, MHD_OPTION_END);
  if (!m->mhd) {
    snprintf(err, cap, "cannot serve metrics on %s: %s", text,
             m->mhd_err[0] ? m->mhd_err : "libmicrohttpd failed to start");
    free(m);
    return -1;
  }
  const union MHD_DaemonInfo *ep =
      MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  const union MHD_DaemonInfo *port =
      MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
  int rc = CK_EINVAL;
  if (ep && port) {
    rc = ck_timer_new(ctx, on_timer, m, &m->timer);
    if (rc == 0)
      rc = ck_watch_new(ctx, ep->epoll_fd, CK_WATCH_READ, on_readable, m,
                        &m->watch);
  }
  if (rc < 0) {
    snprintf(err, cap, "cannot serve metrics on %s: %s", text,
             ep && port ? ck_strerror(rc) : "no epoll descriptor or port");
    metrics_http_free(m);
    return -1;
  }
  struct ck_addr bound = *addr;
  if (v6)
    bound.u.in6.sin6_port = htons(port->port);
  else
    bound.u.in4.sin_port = htons(port->port);
  if (ck_addr_format(&bound, m->bound, sizeof m->bound) < 0)
    m->bound[0] = '\0';
  connectable(&bound);
  int n = ck_addr_format(&bound, m->addr_text, sizeof m->addr_text - 1);
  if (n < 0)
    n = 0;
  m->addr_text[n] = '\n';
  m->addr_text[n + 1] = '\0';
  if (data_dir && write_addr_file(m, data_dir, err, cap) < 0) {
    metrics_http_free(m);
    return -1;
  }
  ck_timer_start(m->timer, 0, 0); /* a first run sets the timer */
  *out = m;
  return 0;
}

/* The file is removed only while it still names this instance: another
 * coapd on the same data directory may have written its own since. */
static void remove_addr_file(struct metrics_http *m)
{
  if (!m->addr_file[0])
    return;
  char now[sizeof m->addr_text];
  FILE *f = fopen(m->addr_file, "r");
  if (!f)
    return;
  size_t n = fread(now, 1, sizeof now - 1, f);
  fclose(f);
  now[n] = '\0';
  if (strcmp(now, m->addr_text) == 0)
    unlink(m->addr_file);
}

void metrics_http_free(struct metrics_http *m)
{
  if (!m)
    return;
  remove_addr_file(m);
  /* The watch goes before MHD closes the descriptor it watches. */
  ck_watch_free(m->watch);
  ck_timer_free(m->timer);
  if (m->mhd)
    MHD_stop_daemon(m->mhd);
  free(m->buf);
  free(m);
}

const char *metrics_http_addr(const struct metrics_http *m)
{
  return m->bound;
}
