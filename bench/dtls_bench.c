/* coap-dtls-bench: what DTLS costs a coaps:// server (issue 10), the
 * same way for any server, so that coapd and libcoap's
 * coap-server-gnutls are measured by one client in one run
 * (dtls_compare.sh).
 *
 *  1. Full PSK handshakes per second: CONCURRENCY clients at a time,
 *     each with a fresh socket (so a fresh session: no resumption), do a
 *     handshake and one GET of URI, then close; for SECONDS.
 *  2. Memory per established session: SESSIONS clients each do a
 *     handshake and a GET and keep their session open; the server's
 *     resident memory (/proc/PID/status, VmRSS) is read before and
 *     after, and the difference divided by the sessions that are up.
 *  3. Requests per second over those established sessions: a closed
 *     loop of CONCURRENCY x 4 GETs in flight, each new one on the next
 *     session in turn, so every session is used, for SECONDS; and the
 *     server's CPU time (/proc/PID/stat) per request.
 *
 * Output is one "key value" line per figure, for scripts.
 *
 * Usage: coap-dtls-bench --psk KEY --identity ID [-c CONCURRENCY]
 *        [-d SECONDS] [--sessions N] [--server-pid PID] URI */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <coapkit/coapkit.h>

struct slot {
  struct ck_client *client;
  bool done;
  int err;
  uint8_t code;
};

static struct ck_ctx *ctx;
static struct ck_client_config ccfg;
static struct ck_dtls_config dcfg;
static const char *uri;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_answer(struct ck_call *call, const struct ck_client_response *r,
                      void *user)
{
  (void)call;
  struct slot *s = user;
  if (!r->final)
    return;
  s->done = true;
  s->err = r->err;
  s->code = r->code;
}

static int start(struct slot *s)
{
  s->done = false;
  s->err = 0;
  int rc = ck_client_new(ctx, &ccfg, &s->client);
  if (rc < 0)
    return rc;
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  return ck_client_send(s->client, &req, on_answer, s, NULL);
}

static long rss_kb(long pid)
{
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  fclose(f);
  return kb;
}

/* The server's user + system CPU time in microseconds, or -1. */
static double cpu_us(long pid)
{
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields 14 and 15 (utime, stime) follow the ')' closing the name. */
  char *p = strrchr(buf, ')');
  unsigned long ut, st;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &st) != 2)
    return -1;
  return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* Another GET on an established session's client. */
static int again(struct slot *s)
{
  s->done = false;
  s->err = 0;
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  return ck_client_send(s->client, &req, on_answer, s, NULL);
}

/* 3: requests per second over the sessions that are up in ss. */
static void requests(struct slot *ss, long n, long conc, double secs,
                     long pid)
{
  long window = conc * 4 < n ? conc * 4 : n;
  long *busy = calloc((size_t)window, sizeof *busy);
  if (!busy || window < 1) {
    free(busy);
    return;
  }
  long next = 0, live = 0;
  /* The next session that is up, in turn. */
  for (long w = 0; w < window; w++) {
    long tries = 0;
    while (tries++ < n && (ss[next].err || !ss[next].done))
      next = (next + 1) % n;
    if (again(&ss[next]) < 0)
      break;
    busy[live++] = next;
    next = (next + 1) % n;
  }
  unsigned long ok = 0, failed = 0;
  double c0 = pid ? cpu_us(pid) : -1;
  double t0 = now_s(), end = t0 + secs;
  while (now_s() < end && live > 0) {
    ck_ctx_process(ctx, 5);
    for (long w = 0; w < live; w++) {
      struct slot *s = &ss[busy[w]];
      if (!s->done)
        continue;
      if (s->err == 0)
        ok++;
      else
        failed++;
      long tries = 0;
      while (tries++ < n && (ss[next].err || !ss[next].done))
        next = (next + 1) % n;
      if (again(&ss[next]) < 0) {
        busy[w] = busy[--live];
        continue;
      }
      busy[w] = next;
      next = (next + 1) % n;
    }
  }
  double took = now_s() - t0;
  double c1 = pid ? cpu_us(pid) : -1;
  /* Let the last answers come in before the sessions are closed. */
  double settle = now_s() + 1;
  while (now_s() < settle)
    ck_ctx_process(ctx, 20);
  printf("requests %lu\nrequest_failures %lu\nrequests_per_s %.0f\n", ok,
         failed, (double)ok / took);
  if (c0 >= 0 && c1 >= 0 && ok > 0)
    printf("server_cpu_us_per_request %.2f\n", (c1 - c0) / (double)ok);
  free(busy);
}

static int usage(void)
{
  fprintf(stderr, "usage: coap-dtls-bench --psk KEY --identity ID "
                  "[-c CONCURRENCY] [-d SECONDS] [--sessions N] "
                  "[--server-pid PID] coaps://HOST:PORT/PATH\n");
  return 2;
}

int main(int argc, char **argv)
{
  long conc = 16, sessions = 0, pid = 0;
  double secs = 5;
  const char *psk = NULL, *id = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (a[0] != '-') {
      uri = a;
      continue;
    }
    if (!v)
      return usage();
    i++;
    if (!strcmp(a, "--psk"))
      psk = v;
    else if (!strcmp(a, "--identity"))
      id = v;
    else if (!strcmp(a, "-c"))
      conc = strtol(v, NULL, 10);
    else if (!strcmp(a, "-d"))
      secs = strtod(v, NULL);
    else if (!strcmp(a, "--sessions"))
      sessions = strtol(v, NULL, 10);
    else if (!strcmp(a, "--server-pid"))
      pid = strtol(v, NULL, 10);
    else
      return usage();
  }
  if (!uri || !psk || !id || conc < 1 || conc > 1000 || sessions < 0 ||
      sessions > 100000 || secs <= 0)
    return usage();
  /* One socket per session: raise the descriptor limit as far as the
   * hard limit goes. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  dcfg.psk = (const uint8_t *)psk;
  dcfg.psk_len = strlen(psk);
  dcfg.psk_identity = id;
  ccfg.dtls = &dcfg;
  /* A lost handshake datagram is retried by DTLS (1 s); the CoAP
   * exchange waits for it. */
  ccfg.params.ack_timeout_ms = 4000;
  if (ck_ctx_new(NULL, &ctx) < 0)
    return 1;

  /* 1. handshakes per second */
  struct slot *slots = calloc((size_t)conc, sizeof *slots);
  if (!slots)
    return 1;
  unsigned long ok = 0, failed = 0;
  for (long i = 0; i < conc; i++)
    if (start(&slots[i]) < 0)
      return 1;
  double t0 = now_s(), end = t0 + secs;
  while (now_s() < end) {
    ck_ctx_process(ctx, 5);
    for (long i = 0; i < conc; i++) {
      if (!slots[i].done)
        continue;
      if (slots[i].err == 0)
        ok++;
      else
        failed++;
      /* Freed outside its callback, as the client's rules ask; its
       * close_notify ends the server's session. */
      ck_client_free(slots[i].client);
      if (start(&slots[i]) < 0)
        return 1;
    }
  }
  double took = now_s() - t0;
  for (long i = 0; i < conc; i++)
    ck_client_free(slots[i].client);
  free(slots);
  printf("handshakes %lu\nhandshake_failures %lu\nhandshakes_per_s %.0f\n", ok,
         failed, (double)ok / took);
  fflush(stdout);

  /* 2. memory per established session */
  if (sessions > 0) {
    struct slot *ss = calloc((size_t)sessions, sizeof *ss);
    if (!ss)
      return 1;
    /* Let the server settle after phase 1 (sessions closed, memory
     * returned to its allocator). */
    double settle = now_s() + 1;
    while (now_s() < settle)
      ck_ctx_process(ctx, 50);
    long before = pid ? rss_kb(pid) : -1;
    long started = 0, up = 0, down = 0;
    double deadline = now_s() + 120;
    /* At most conc handshakes at a time, as a fleet reconnecting would
     * come, so that none times out in the server's queue. */
    while ((up + down < sessions) && now_s() < deadline) {
      while (started < sessions && started - up - down < conc) {
        if (start(&ss[started]) < 0)
          return 1;
        started++;
      }
      ck_ctx_process(ctx, 5);
      up = down = 0;
      for (long i = 0; i < started; i++)
        if (ss[i].done) {
          if (ss[i].err == 0)
            up++;
          else
            down++;
        }
    }
    /* Each session answered; give the server a moment to finish its
     * own bookkeeping before reading its memory. */
    settle = now_s() + 1;
    while (now_s() < settle)
      ck_ctx_process(ctx, 50);
    long after = pid ? rss_kb(pid) : -1;
    printf("sessions_up %ld\nsessions_failed %ld\n", up, down);
    for (long i = 0; i < started; i++)
      if (ss[i].done && ss[i].err) {
        printf("first_failure %s\n", ck_err_name(ss[i].err));
        break;
      }
    if (pid && before >= 0 && after >= 0 && up > 0)
      printf("server_rss_before_kb %ld\nserver_rss_after_kb %ld\n"
             "bytes_per_session %.0f\n",
             before, after, (double)(after - before) * 1024.0 / (double)up);
    fflush(stdout);
    requests(ss, started, conc, secs, pid);
    for (long i = 0; i < started; i++)
      ck_client_free(ss[i].client);
    free(ss);
  }
  ck_ctx_free(ctx);
  return 0;
}
