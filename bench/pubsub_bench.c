/* coap-pubsub-bench: one publisher and N subscribers on one topic,
 * through coapd's CoAP pub/sub gateway and through an MQTT broker
 * (Mosquitto) in the same run, with the same schedule and accounting.
 *
 *   coap-pubsub-bench [-n N] [-d SECONDS] [--qos 0|1] [-w WINDOW]
 *                     [--rate MSGS_PER_S] [-p BYTES] [--timeout MS]
 *                     [--coap HOST:PORT] [--mqtt HOST:PORT]
 *                     [--coap-pid PID] [--mqtt-pid PID]
 *
 * For each system given it prints one machine-readable line,
 *
 *   pubsub system=coapd n=100 qos=0 window=40 published=P delivered=D
 *   delivered_per_s=R p50_us=A p99_us=B lost=L dup=U reordered=O ...
 *
 * and, when both ran, `pubsub n=100 qos=0 ratio_delivered=R ratio_p50=A
 * ratio_p99=B` (coapd's deliveries per second and latencies over
 * Mosquitto's). With --rate, `window=W` reads `rate=R`.
 *
 * The publish schedule. By default the loop is closed end to end: at most
 * WINDOW messages are outstanding, where a message is outstanding until
 * every subscriber has received it (or --timeout passes). This is the
 * fair maximum-throughput measure for both systems because it does not
 * rest on either protocol's publish acknowledgement: a CoAP 2.04 or an
 * MQTT PUBACK says only that the broker took the message, and QoS 0 has
 * no acknowledgement at all, so a window on those would let one system
 * queue without bound (and drop, or show latency that is only queueing)
 * while the other paced itself. With the end-to-end window both brokers
 * see the same offered load shape, run as fast as they deliver, and the
 * latency percentiles are those of a saturated but not overflowing
 * broker. The default WINDOW is 4096/N clamped to 4..64, so that no
 * subscriber ever has more than 64 messages queued (coapd keeps 100 per
 * observer, a UDP socket's default buffer about 200 small datagrams).
 * --rate R instead publishes open loop at R messages/s (latency at a
 * given load); messages are still tracked, up to PS_MAX_WINDOW at once.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "pubsub_bench.h"

#define PROG "coap-pubsub-bench"

struct args {
  unsigned nsubs;
  double duration;
  unsigned qos;
  unsigned window; /* 0: from nsubs */
  double rate;     /* 0: closed loop */
  unsigned psize;
  unsigned timeout_ms;
  unsigned setup_ms;
  const char *coap, *mqtt; /* HOST:PORT */
  long coap_pid, mqtt_pid;
};

/* The outcome of one system's run, for the ratio line. */
struct result {
  bool ok;
  double per_s;
  double p50_us, p99_us;
};

static const char usage[] =
    "usage: " PROG " [-n N] [-d SECONDS] [--qos 0|1] [-w WINDOW]\n"
    "         [--rate MSGS_PER_S] [-p BYTES] [--timeout MS]\n"
    "         [--setup-timeout MS] [--coap HOST:PORT] [--mqtt HOST:PORT]\n"
    "         [--coap-pid PID] [--mqtt-pid PID]\n"
    "\n"
    "One publisher, N subscribers on one topic, through coapd's CoAP\n"
    "pub/sub gateway (--coap) and an MQTT broker (--mqtt), one after the\n"
    "other in the same run. Prints a 'pubsub system=...' line per system\n"
    "and, when both ran, a ratio line.\n"
    "\n"
    "  -n N              subscribers (default 100, at most 50000)\n"
    "  -d SECONDS        publishing time per system (default 5)\n"
    "  --qos 0|1         QoS of publishes and subscriptions on both sides\n"
    "                    (CoAP: NON / CON; default 0)\n"
    "  -w WINDOW         messages outstanding until every subscriber has\n"
    "                    them (default 4096/N, clamped to 4..64)\n"
    "  --rate R          publish open loop at R messages/s instead\n"
    "  -p BYTES          payload size (16..1024, default 32)\n"
    "  --timeout MS      a message not delivered to all by then is lost\n"
    "                    (default 10000)\n"
    "  --setup-timeout MS  time to connect and subscribe (default 60000)\n"
    "  --coap-pid PID, --mqtt-pid PID  report the server's CPU use\n";

static int bad_arg(const char *what, const char *val)
{
  fprintf(stderr, PROG ": bad %s: '%s' (try --help)\n", what, val);
  return 2;
}

static bool parse_uint(const char *s, unsigned long lo, unsigned long hi,
                       unsigned *out)
{
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
    return false;
  *out = (unsigned)v;
  return true;
}

static bool parse_pos(const char *s, double *out)
{
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v > 0) || v > 1e9)
    return false;
  *out = v;
  return true;
}

static int parse_args(int argc, char **argv, struct args *a)
{
  static const struct option longopts[] = {
      {"qos", required_argument, NULL, 'q'},
      {"rate", required_argument, NULL, 'r'},
      {"timeout", required_argument, NULL, 't'},
      {"setup-timeout", required_argument, NULL, 's'},
      {"coap", required_argument, NULL, 'C'},
      {"mqtt", required_argument, NULL, 'M'},
      {"coap-pid", required_argument, NULL, 'P'},
      {"mqtt-pid", required_argument, NULL, 'Q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int c;
  unsigned u;
  while ((c = getopt_long(argc, argv, "n:d:w:p:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'n':
      if (!parse_uint(optarg, 1, PS_MAX_SUBS, &a->nsubs))
        return bad_arg("-n", optarg);
      break;
    case 'd':
      if (!parse_pos(optarg, &a->duration) || a->duration > 3600)
        return bad_arg("-d", optarg);
      break;
    case 'q':
      if (!parse_uint(optarg, 0, 1, &a->qos))
        return bad_arg("--qos", optarg);
      break;
    case 'w':
      if (!parse_uint(optarg, 1, PS_MAX_WINDOW, &a->window))
        return bad_arg("-w", optarg);
      break;
    case 'r':
      if (!parse_pos(optarg, &a->rate))
        return bad_arg("--rate", optarg);
      break;
    case 'p':
      if (!parse_uint(optarg, PS_HDR_LEN, PS_MAX_PAYLOAD, &a->psize))
        return bad_arg("-p", optarg);
      break;
    case 't':
      if (!parse_uint(optarg, 1, 600000, &a->timeout_ms))
        return bad_arg("--timeout", optarg);
      break;
    case 's':
      if (!parse_uint(optarg, 1, 3600000, &a->setup_ms))
        return bad_arg("--setup-timeout", optarg);
      break;
    case 'C':
      a->coap = optarg;
      break;
    case 'M':
      a->mqtt = optarg;
      break;
    case 'P':
    case 'Q':
      if (!parse_uint(optarg, 1, 1u << 30, &u))
        return bad_arg(c == 'P' ? "--coap-pid" : "--mqtt-pid", optarg);
      *(c == 'P' ? &a->coap_pid : &a->mqtt_pid) = u;
      break;
    case 'h':
      fputs(usage, stdout);
      exit(0);
    default:
      return 2;
    }
  }
  if (optind < argc)
    return bad_arg("argument", argv[optind]);
  if (!a->coap && !a->mqtt) {
    fprintf(stderr, PROG ": give --coap HOST:PORT, --mqtt HOST:PORT or "
                         "both (try --help)\n");
    return 2;
  }
  if (a->window == 0) {
    unsigned w = 4096 / a->nsubs;
    a->window = w < 4 ? 4 : w > 64 ? 64 : w;
  }
  return 0;
}

/* Splits "HOST:PORT" (or "[V6]:PORT") into host and port. */
static int split_hostport(const char *s, char *host, size_t hcap, char *port,
                          size_t pcap)
{
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || !colon[1])
    return -1;
  const char *h = s, *he = colon;
  if (*h == '[' && he[-1] == ']') {
    h++;
    he--;
  }
  size_t hl = (size_t)(he - h), pl = strlen(colon + 1);
  if (hl == 0 || hl >= hcap || pl >= pcap)
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  memcpy(port, colon + 1, pl + 1);
  return 0;
}

/* utime + stime of a process in clock ticks, or -1. */
static long long proc_ticks(long pid)
{
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* The command name may hold spaces; fields count from after its ')'. */
  const char *p = strrchr(buf, ')');
  if (!p)
    return -1;
  unsigned long long ut, st;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return -1;
  return (long long)(ut + st);
}

static double self_cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* One outstanding message: its sequence number and when it left. */
struct pending {
  uint32_t seq;
  uint64_t t_ns;
};

/* Publishes, waits for deliveries and retires messages until the window
 * has closed and every message is complete or timed out. */
static int drive(const struct ps_proto *pr, void *ctx, struct ps_run *r,
                 const struct args *a)
{
  const uint64_t timeout_ns = (uint64_t)a->timeout_ms * 1000000u;
  const unsigned cap = PS_MAX_WINDOW; /* the ring of pending messages */
  struct pending *ring = calloc(cap, sizeof *ring);
  if (!ring)
    return ps_fail(r, "out of memory");
  unsigned head = 0, used = 0;
  uint8_t payload[PS_MAX_PAYLOAD];
  const double gap_ns = a->rate > 0 ? 1e9 / a->rate : 0;
  double next_due = (double)r->t_start_ns;
  int rc = 0;

  for (;;) {
    uint64_t now = ps_now_ns();
    /* Messages leave the ring in publish order; one that is complete is
     * dropped, one past its timeout is counted lost. */
    while (used > 0) {
      struct pending *p = &ring[head];
      bool done = r->count[p->seq] & PS_RETIRED;
      if (!done && now - p->t_ns < timeout_ns)
        break;
      if (!done && ps_retire(r, p->seq))
        r->st.timed_out++;
      head = (head + 1) % cap;
      used--;
    }
    bool publishing = now < r->t_end_ns;
    /* At QoS 1 a broker may forward a message before it acknowledges it
     * (Mosquitto does), so the last acknowledgements are awaited too. */
    bool acked = a->qos == 0 ||
                 r->st.pub_ok + r->st.pub_err >= r->st.published ||
                 now >= r->t_end_ns + timeout_ns;
    if (!publishing && r->outstanding == 0 && acked)
      break;
    if (now >= r->t_end_ns + timeout_ns + 1000000000u)
      break; /* cannot happen: every message times out before */

    while (
        publishing && used < cap && r->next_seq < PS_MAX_MESSAGES &&
        (gap_ns > 0 ? next_due <= (double)now : r->outstanding < a->window)) {
      struct ps_payload p = {r->run_id, r->next_seq, ps_now_ns()};
      ps_payload_encode(payload, r->psize, &p);
      ring[(head + used) % cap] = (struct pending){p.seq, p.t_ns};
      used++;
      r->next_seq++;
      r->outstanding++;
      r->st.published++;
      if (pr->publish(ctx, payload, r->psize) < 0) {
        rc = -1;
        goto out;
      }
      next_due += gap_ns;
    }
    /* Wake for the next publish (open loop), the end of the window or a
     * timeout; 10 ms at most so the checks above stay timely. The wait
     * is rounded up to whole milliseconds (epoll's unit), so above 1000
     * messages/s the open loop publishes in bursts, once a millisecond. */
    int wait_ms = 10;
    if (gap_ns > 0 && publishing) {
      double d = (next_due - (double)ps_now_ns()) / 1e6;
      wait_ms = d <= 0 ? 0 : d < 9 ? (int)d + 1 : 10;
    }
    if (pr->poll(ctx, wait_ms) < 0) {
      rc = -1;
      goto out;
    }
  }
out:
  free(ring);
  return rc;
}

static struct result run_system(const struct ps_proto *pr, const char *target,
                                long pid, const struct args *a)
{
  struct result res = {false, 0, 0, 0};
  char host[256], port[16], topic[64];
  struct ps_run r = {.nsubs = a->nsubs, .qos = a->qos, .psize = a->psize};
  if (split_hostport(target, host, sizeof host, port, sizeof port) < 0) {
    fprintf(stderr, PROG ": %s: not HOST:PORT: '%s'\n", pr->name, target);
    printf("pubsub system=%s n=%u qos=%u error=bad-address\n", pr->name,
           a->nsubs, a->qos);
    return res;
  }
  if (getrandom(&r.run_id, sizeof r.run_id, 0) != sizeof r.run_id)
    r.run_id = (uint16_t)ps_now_ns();
  /* A topic of this run's own, so that subscriptions another run left
   * behind (a NON observer is not told when its client goes away) get
   * none of this run's messages. */
  snprintf(topic, sizeof topic, "bench/%04x/%s", r.run_id, pr->name);
  r.count = calloc(PS_MAX_MESSAGES, sizeof *r.count);
  r.track = calloc(a->nsubs, sizeof *r.track);
  void *ctx = NULL;
  int rc = -1;
  long long tk0 = -1, tk1 = -1;
  double cpu0 = 0, cpu1 = 0;
  uint64_t t_done = 0;
  if (!r.count || !r.track) {
    ps_fail(&r, "out of memory");
    goto out;
  }
  if (pr->setup(&ctx, &r, host, port, topic, a->setup_ms) < 0)
    goto out;
  tk0 = pid ? proc_ticks(pid) : -1;
  cpu0 = self_cpu_s();
  r.t_start_ns = ps_now_ns();
  r.t_end_ns = r.t_start_ns + (uint64_t)(a->duration * 1e9);
  rc = drive(pr, ctx, &r, a);
  t_done = ps_now_ns();
  cpu1 = self_cpu_s();
  tk1 = pid ? proc_ticks(pid) : -1;
out:
  if (ctx)
    pr->close(ctx);
  if (rc < 0) {
    fprintf(stderr, PROG ": %s at %s: %s\n", pr->name, target,
            r.err[0] ? r.err : "failed");
    printf("pubsub system=%s n=%u qos=%u error=setup-or-run-failed\n", pr->name,
           a->nsubs, a->qos);
  } else {
    const struct ps_stats *s = &r.st;
    double secs = (double)(r.t_end_ns - r.t_start_ns) / 1e9;
    double all = (double)(t_done - r.t_start_ns) / 1e9;
    uint64_t expect = s->published * a->nsubs;
    res.ok = true;
    res.per_s = (double)s->in_window / secs;
    res.p50_us = (double)bench_hist_pct(&s->lat, 50) / 1e3;
    res.p99_us = (double)bench_hist_pct(&s->lat, 99) / 1e3;
    char mode[48];
    if (a->rate > 0)
      snprintf(mode, sizeof mode, "rate=%g", a->rate);
    else
      snprintf(mode, sizeof mode, "window=%u", a->window);
    printf(
        "pubsub system=%s n=%u qos=%u %s published=%llu "
        "delivered=%llu delivered_per_s=%.0f p50_us=%.0f p99_us=%.0f "
        "max_us=%.0f lost=%llu dup=%llu reordered=%llu timed_out=%llu "
        "pub_acked=%llu pub_errors=%llu errors=%llu bench_cpu_pct=%.0f",
        pr->name, a->nsubs, a->qos, mode, (unsigned long long)s->published,
        (unsigned long long)s->delivered, res.per_s, res.p50_us, res.p99_us,
        (double)s->lat.max / 1e3,
        (unsigned long long)(expect > s->delivered ? expect - s->delivered : 0),
        (unsigned long long)s->dup, (unsigned long long)s->reordered,
        (unsigned long long)s->timed_out, (unsigned long long)s->pub_ok,
        (unsigned long long)s->pub_err, (unsigned long long)s->errors,
        (cpu1 - cpu0) / all * 100);
    if (tk0 >= 0 && tk1 >= tk0)
      printf(" server_cpu_pct=%.0f",
             (double)(tk1 - tk0) / (double)sysconf(_SC_CLK_TCK) / all * 100);
    printf("\n");
    if (s->foreign)
      fprintf(stderr,
              PROG ": %s: %llu messages of another run or "
                   "malformed\n",
              pr->name, (unsigned long long)s->foreign);
    if (s->errors)
      fprintf(stderr, PROG ": %s: %llu socket errors, the last: %s\n", pr->name,
              (unsigned long long)s->errors, strerror(s->last_errno));
  }
  fflush(stdout);
  free(r.count);
  free(r.track);
  return res;
}

/* 10,000 subscribers need 10,000 sockets: raise the soft limit on open
 * files to the hard one. Returns 0, or -1 when even that is too few. */
static int raise_nofile(unsigned need)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    fprintf(stderr,
            PROG ": %u subscribers need %u open files, the limit "
                 "is %llu (ulimit -Hn)\n",
            need - 64, need, (unsigned long long)rl.rlim_cur);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv)
{
  struct args a = {.nsubs = 100,
                   .duration = 5,
                   .psize = 32,
                   .timeout_ms = 10000,
                   .setup_ms = 60000};
  int rc = parse_args(argc, argv, &a);
  if (rc)
    return rc;
  if (raise_nofile(a.nsubs + 64) < 0)
    return 1;
  /* A broker that closes a connection must not kill the tool. */
  signal(SIGPIPE, SIG_IGN);
  struct result rc_coap = {false, 0, 0, 0}, rc_mqtt = rc_coap;
  bool failed = false;
  if (a.coap) {
    rc_coap = run_system(&ps_proto_coap, a.coap, a.coap_pid, &a);
    failed |= !rc_coap.ok;
  }
  if (a.mqtt) {
    rc_mqtt = run_system(&ps_proto_mqtt, a.mqtt, a.mqtt_pid, &a);
    failed |= !rc_mqtt.ok;
  }
  /* coapd over Mosquitto: above 1 coapd delivers more; below 1 its
   * latency is lower. */
  if (rc_coap.ok && rc_mqtt.ok)
    printf("pubsub n=%u qos=%u ratio_delivered=%.2f ratio_p50=%.2f "
           "ratio_p99=%.2f\n",
           a.nsubs, a.qos,
           rc_mqtt.per_s > 0 ? rc_coap.per_s / rc_mqtt.per_s : 0,
           rc_mqtt.p50_us > 0 ? rc_coap.p50_us / rc_mqtt.p50_us : 0,
           rc_mqtt.p99_us > 0 ? rc_coap.p99_us / rc_mqtt.p99_us : 0);
  return failed ? 1 : 0;
}
