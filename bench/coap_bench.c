/* coap-bench: a load generator for any CoAP server, in the manner of wrk
 * and h2load.
 *
 * This file is the tool's front: it parses the URI (ck_uri_parse, its
 * options from ck_uri_opts), resolves the host, builds the request once
 * with ck_builder as a template the engine sends for every request, each
 * with its own Message ID and token (with --basic-auth, one such template per
 * connection, each with its own credentials), starts the threads, and
 * hands their merged counters to the report. The command line is
 * coap_bench_opts.c, the load itself coap_bench_run.c, the latency
 * histogram coap_bench_hist.c and the output coap_bench_report.c. Only the
 * public API of libcoapkit is used.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <coapkit/coapkit.h>

#include "coap_bench.h"

static struct bench_shared *g_shared;

static void on_sigint(int sig)
{
  (void)sig;
  if (g_shared != NULL)
    atomic_store(&g_shared->stop, true);
}

/* Drogue's device credentials travel in this option (docs/devices.md). */
#define OPT_AUTHORIZATION 4209

/* Builds the request into buf: a 4-byte token of zeros, the URI's
 * options, Observe when observe_val >= 0, option 4209 = auth when
 * auth_len > 0, and the payload. Returns its length or a negative
 * CK_E... error. */
static int build_req(const struct bench_args *a, const struct ck_uri *u,
                     int observe_val, const uint8_t *auth, size_t auth_len,
                     const uint8_t *payload, size_t plen, uint8_t *buf,
                     size_t cap)
{
  static const uint8_t zero_token[4];
  struct ck_opt uo[CK_BUILDER_MAX_OPTS - 2];
  uint8_t scratch[BENCH_MAX_URI];
  int n = ck_uri_opts(u, uo, sizeof uo / sizeof uo[0], scratch, sizeof scratch);
  if (n < 0)
    return n;
  struct ck_builder b;
  ck_builder_init(&b, buf, cap, a->non ? CK_TYPE_NON : CK_TYPE_CON, a->method,
                  0);
  ck_builder_token(&b, zero_token, sizeof zero_token);
  for (int i = 0; i < n; i++)
    ck_builder_opt(&b, uo[i].num, uo[i].val, uo[i].len);
  if (observe_val >= 0)
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, (uint32_t)observe_val);
  if (auth_len > 0)
    ck_builder_opt(&b, OPT_AUTHORIZATION, auth, auth_len);
  if (plen > 0 || a->have_format)
    ck_builder_opt_uint(&b, CK_OPT_CONTENT_FORMAT,
                        a->have_format ? a->format : 0);
  ck_builder_payload(&b, payload, plen);
  return ck_builder_finish(&b);
}

/* Writes "Basic " and the base64 (RFC 4648 §4, padded) of tmpl, each
 * "{i}" replaced by index, into out. Returns the length, or -1 when it
 * does not fit in cap. */
static int basic_auth(const char *tmpl, unsigned index, char *out, size_t cap)
{
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char plain[BENCH_MAX_AUTH * 4 + 16];
  size_t n = 0;
  for (const char *p = tmpl; *p != '\0';) {
    int w;
    if (strncmp(p, "{i}", 3) == 0) {
      w = snprintf(plain + n, sizeof plain - n, "%u", index);
      p += 3;
    } else {
      w = snprintf(plain + n, sizeof plain - n, "%c", *p);
      p++;
    }
    if (w < 0 || (size_t)w >= sizeof plain - n)
      return -1;
    n += (size_t)w;
  }
  size_t need = 6 + (n + 2) / 3 * 4;
  if (need > cap)
    return -1;
  memcpy(out, "Basic ", 6);
  size_t o = 6;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)(uint8_t)plain[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)(uint8_t)plain[i + 1] << 8;
    if (i + 2 < n)
      v |= (uint8_t)plain[i + 2];
    out[o++] = b64[v >> 18 & 63];
    out[o++] = b64[v >> 12 & 63];
    out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? b64[v & 63] : '=';
  }
  return (int)o;
}

/* With --basic-auth, builds every connection's own request once, so that
 * a send costs no more than with the shared one. Returns 0 or an exit
 * status, the error printed. */
static int build_conn_reqs(const struct bench_args *a, const struct ck_uri *u,
                           const uint8_t *payload, size_t plen,
                           struct bench_cfg *cfg, uint8_t **reqs,
                           size_t **lens)
{
  /* The largest value: every {i} as long as the largest index. */
  size_t tl = strlen(a->basic_auth), nbrace = 0;
  for (const char *p = a->basic_auth; (p = strstr(p, "{i}")) != NULL; p += 3)
    nbrace++;
  size_t plain = tl + nbrace * 10;
  size_t vcap = 6 + (plain + 2) / 3 * 4;
  /* Option 4209 adds at most 5 bytes of header to its value. */
  size_t stride = cfg->req_len + vcap + 8;
  if ((unsigned long long)stride * a->conns > BENCH_MAX_CONN_REQS)
    return bench_usage_err("--basic-auth: -c %u requests of %zu bytes each "
                           "are over %u MiB",
                           a->conns, stride, BENCH_MAX_CONN_REQS >> 20);
  char *val = malloc(vcap);
  *reqs = malloc(stride * a->conns);
  *lens = malloc(sizeof **lens * a->conns);
  if (val == NULL || *reqs == NULL || *lens == NULL) {
    free(val);
    fprintf(stderr, BENCH_PROG ": out of memory\n");
    return 1;
  }
  for (unsigned k = 0; k < a->conns; k++) {
    int vl = basic_auth(a->basic_auth, k, val, vcap);
    int n = vl < 0 ? CK_ENOSPC
                   : build_req(a, u, -1, (const uint8_t *)val, (size_t)vl,
                               payload, plen, *reqs + k * stride, stride);
    if (n < 0) {
      free(val);
      return bench_usage_err("--basic-auth: %s", ck_strerror(n));
    }
    (*lens)[k] = (size_t)n;
  }
  free(val);
  cfg->conn_reqs = *reqs;
  cfg->conn_stride = stride;
  cfg->conn_lens = *lens;
  return 0;
}

/* Resolves the URI's host into cfg->addr and writes "host:port" (IPv6 in
 * brackets) into peer. Returns 0 or an exit status, the error printed. */
static int resolve(const struct ck_uri *u, struct bench_cfg *cfg, char *peer,
                   size_t peer_cap)
{
  char host[256];
  int hl = ck_uri_pct_decode(u->host, u->host_len, host, sizeof host - 1);
  if (hl < 0)
    return bench_usage_err("URI: bad host: %s", ck_strerror(hl));
  host[hl] = '\0';
  char port[8];
  snprintf(port, sizeof port, "%u", (unsigned)u->port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_DGRAM,
                           .ai_flags = u->host_is_literal ? AI_NUMERICHOST : 0};
  struct addrinfo *res;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0)
    return bench_usage_err("URI: cannot resolve host \"%s\": %s", host,
                           gai_strerror(rc));
  memcpy(&cfg->addr, res->ai_addr, res->ai_addrlen);
  cfg->addrlen = res->ai_addrlen;
  freeaddrinfo(res);
  char num[NI_MAXHOST];
  if (getnameinfo((const struct sockaddr *)&cfg->addr, cfg->addrlen, num,
                  sizeof num, NULL, 0, NI_NUMERICHOST) != 0)
    snprintf(num, sizeof num, "%s", host);
  snprintf(peer, peer_cap,
           cfg->addr.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", num, port);
  return 0;
}

/* Raises the open-file limit to what need sockets take. Returns 0, or -1
 * with the limit in *have. */
static int ensure_fds(rlim_t need, rlim_t *have)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
    return 0;
  rl.rlim_cur =
      rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
    getrlimit(RLIMIT_NOFILE, &rl);
  *have = rl.rlim_cur;
  return rl.rlim_cur >= need ? 0 : -1;
}

static void *thread_main(void *arg)
{
  bench_engine_run(arg);
  return NULL;
}

/* Runs the configured load and prints the report. Returns the exit
 * status. */
static int run(const struct bench_args *a, const struct bench_cfg *cfg,
               const char *peer)
{
  int status = 0;
  /* In observe mode every observer is a connection of the engine. */
  unsigned nconns = a->conns * (a->observe ? a->observe : 1);
  unsigned nthreads = a->threads < nconns ? a->threads : nconns;
  struct bench_shared *sh = calloc(1, sizeof *sh);
  struct bench_thread *th = calloc(nthreads, sizeof *th);
  struct bench_stats *tot = calloc(1, sizeof *tot);
  if (sh == NULL || th == NULL || tot == NULL) {
    fprintf(stderr, BENCH_PROG ": out of memory\n");
    status = 1;
    goto out;
  }
  for (unsigned i = 0, first = 0; i < nthreads; i++) {
    th[i].cfg = cfg;
    th[i].sh = sh;
    th[i].index = i;
    th[i].first = first;
    th[i].nconns = nconns / nthreads + (i < nconns % nthreads);
    first += th[i].nconns;
    int rc = bench_engine_init(&th[i]);
    if (rc < 0) {
      fprintf(stderr, BENCH_PROG ": cannot open sockets to %s: %s\n", peer,
              strerror(-rc));
      status = 1;
      goto out;
    }
  }
  if (!a->json) {
    char pipe[48] = "";
    if (a->pipeline > 1)
      snprintf(pipe, sizeof pipe, " x %u in flight", a->pipeline);
    printf(BENCH_PROG ": %s %s %s (%s)%s, %u connection%s%s, %u thread%s, "
                      "%g s\n",
           a->non ? "NON" : "CON", ck_code_name(a->method), a->uri, peer,
           a->observe ? " observed" : "", a->conns, a->conns == 1 ? "" : "s",
           pipe, nthreads, nthreads == 1 ? "" : "s", a->warmup + a->duration);
    fflush(stdout);
  }
  g_shared = sh;
  struct sigaction sa = {.sa_handler = on_sigint};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  /* A short delay so that every thread starts at the same instant. */
  sh->t0_ns = bench_now_ns() + 20000000u;
  sh->m0_ns = sh->t0_ns + (uint64_t)(a->warmup * 1e9);
  sh->m1_ns = sh->m0_ns + (uint64_t)(a->duration * 1e9);
  unsigned started = 1;
  for (; started < nthreads; started++) {
    int rc = pthread_create(&th[started].tid, NULL, thread_main, &th[started]);
    if (rc != 0) {
      fprintf(stderr, BENCH_PROG ": cannot start thread: %s\n", strerror(rc));
      atomic_store(&sh->stop, true);
      status = 1;
      break;
    }
  }
  bench_engine_run(&th[0]);
  for (unsigned i = 1; i < started; i++)
    pthread_join(th[i].tid, NULL);
  signal(SIGINT, SIG_DFL);
  g_shared = NULL;
  if (status != 0)
    goto out;

  for (unsigned i = 0; i < nthreads; i++)
    bench_stats_add(tot, &th[i].st);
  status = bench_report(a, sh, tot, nthreads, peer);
out:
  if (th != NULL)
    for (unsigned i = 0; i < nthreads; i++)
      bench_engine_free(&th[i]);
  free(th);
  free(sh);
  free(tot);
  return status;
}

int main(int argc, char **argv)
{
  struct bench_args a = {.conns = 64,
                         .pipeline = 1,
                         .threads = 1,
                         .timeout_ms = 2000,
                         .duration = 10,
                         .warmup = 1,
                         .method = CK_GET,
                         .psize = -1};
  int rc = bench_parse_args(argc, argv, &a);
  if (rc != 0)
    return rc;
  if (a.help) {
    bench_print_help();
    return 0;
  }

  size_t ulen = strlen(a.uri);
  struct ck_uri u;
  if (ulen > BENCH_MAX_URI)
    return bench_usage_err("URI: longer than %u characters", BENCH_MAX_URI);
  rc = ck_uri_parse(&u, a.uri, ulen);
  if (rc < 0)
    return bench_usage_err("URI \"%s\": %s", a.uri, ck_strerror(rc));
  if (u.scheme != CK_SCHEME_COAP)
    return bench_usage_err("URI \"%s\": coaps (DTLS) is not supported; use "
                           "coap://",
                           a.uri);

  struct bench_cfg cfg = {.observe = a.observe != 0,
                          .timeout_ms = a.timeout_ms,
                          .non = a.non,
                          .pipeline = a.pipeline};
  if (a.rate != 0 && a.observe != 0)
    return bench_usage_err("--rate: not with --observe");
  /* Each of the C x K slots waits its share of the rate after an answer. */
  if (a.rate != 0)
    cfg.pace_ns = (uint64_t)a.conns * (a.pipeline ? a.pipeline : 1) *
                  1000000000u / a.rate;
  char peer[NI_MAXHOST + 16];
  rc = resolve(&u, &cfg, peer, sizeof peer);
  if (rc != 0)
    return rc;

  size_t plen = a.ptext ? strlen(a.ptext) : a.psize > 0 ? (size_t)a.psize : 0;
  size_t cap = plen + BENCH_MAX_URI + 64;
  uint8_t *payload = malloc(plen ? plen : 1);
  uint8_t *req = malloc(cap);
  uint8_t *dereg = malloc(cap);
  uint8_t *conn_reqs = NULL;
  size_t *conn_lens = NULL;
  if (payload == NULL || req == NULL || dereg == NULL) {
    fprintf(stderr, BENCH_PROG ": out of memory\n");
    rc = 1;
    goto out;
  }
  if (a.ptext != NULL)
    memcpy(payload, a.ptext, plen);
  else
    for (size_t i = 0; i < plen; i++)
      payload[i] = (uint8_t) "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36];
  int n = build_req(&a, &u, a.observe ? 0 : -1, NULL, 0, payload, plen, req,
                    cap);
  int m = a.observe ? build_req(&a, &u, 1, NULL, 0, payload, plen, dereg, cap)
                    : 0;
  if (n < 0 || m < 0) {
    rc = bench_usage_err("URI \"%s\": %s", a.uri, ck_strerror(n < 0 ? n : m));
    goto out;
  }
  cfg.req = req;
  cfg.req_len = (size_t)n;
  cfg.dereg = dereg;
  cfg.dereg_len = (size_t)m;
  if (a.basic_auth != NULL) {
    rc = build_conn_reqs(&a, &u, payload, plen, &cfg, &conn_reqs, &conn_lens);
    if (rc != 0)
      goto out;
  }

  rlim_t have = 0;
  rlim_t need = (rlim_t)a.conns * (a.observe ? a.observe : 1) + a.threads + 64;
  if (ensure_fds(need, &have) < 0) {
    fprintf(stderr,
            BENCH_PROG ": -c %u needs %llu open files but the limit is %llu "
                       "(ulimit -n)\n",
            a.conns, (unsigned long long)need, (unsigned long long)have);
    rc = 1;
    goto out;
  }
  rc = run(&a, &cfg, peer);
out:
  free(payload);
  free(req);
  free(dereg);
  free(conn_reqs);
  free(conn_lens);
  return rc;
}
