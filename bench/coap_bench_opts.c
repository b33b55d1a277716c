/* coap-bench's command line: one table of options drives both the parser
 * and --help, so that the two cannot drift apart. Options take their
 * value as "-c 8", "-c8", "--connections 8" or "--connections=8"; every
 * bad argument ends in one line on stderr that names it, and exit
 * status 2.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <coapkit/coapkit.h>

#include "coap_bench.h"

enum opt_id {
  O_CONNS,
  O_PIPELINE,
  O_DURATION,
  O_WARMUP,
  O_NON,
  O_METHOD,
  O_PSIZE,
  O_PTEXT,
  O_FORMAT,
  O_BASIC_AUTH,
  O_OBSERVE,
  O_THREADS,
  O_TIMEOUT,
  O_RATE,
  O_JSON,
  O_HELP,
};

struct optdef {
  enum opt_id id;
  char short_name;  /* 0: long form only */
  const char *name; /* long form, without "--" */
  const char *arg;  /* the argument's name, or NULL for a flag */
  const char *help;
};

static const struct optdef optdefs[] = {
    {O_CONNS, 'c', "connections", "N",
     "simulated clients, each with its own UDP socket and --pipeline "
     "requests in flight (default 64, at most 100000)"},
    {O_PIPELINE, 0, "pipeline", "K",
     "requests in flight per connection (1-64, default 1): -c N --pipeline "
     "K keeps N*K outstanding from N sockets, sent and read K at a time, "
     "which costs coap-bench about K times fewer system calls; not with "
     "--observe"},
    {O_DURATION, 'd', "duration", "SECONDS",
     "how long to measure, after the warm-up (default 10; fractions "
     "allowed)"},
    {O_WARMUP, 'w', "warmup", "SECONDS",
     "load sent first and not counted (default 1)"},
    {O_NON, 0, "non", NULL,
     "send Non-confirmable requests (default: Confirmable)"},
    {O_METHOD, 'm', "method", "METHOD",
     "get, post, put, delete, fetch, patch or ipatch (default get)"},
    {O_PSIZE, 'p', "payload-size", "BYTES",
     "send a payload of BYTES bytes of text (at most 60000)"},
    {O_PTEXT, 'e', "payload", "TEXT", "send TEXT as the payload"},
    {O_FORMAT, 'f', "content-format", "FORMAT",
     "Content-Format of the payload: a number or a name such as json or "
     "cbor (default text/plain when there is a payload)"},
    {O_BASIC_AUTH, 0, "basic-auth", "TEMPLATE",
     "give each connection its own credentials: option 4209 = \"Basic \" + "
     "base64(TEMPLATE), {i} in TEMPLATE replaced by the connection's index "
     "0..N-1 (Drogue's device authentication; see Credentials below)"},
    {O_OBSERVE, 0, "observe", "N",
     "observe URI instead of requesting it, with N observers per "
     "connection (1-64); see Observe mode below"},
    {O_THREADS, 't', "threads", "N",
     "split the connections across N threads, each with its own epoll "
     "loop (default 1)"},
    {O_TIMEOUT, 0, "timeout", "MS",
     "a request not answered within MS milliseconds is lost (default "
     "2000)"},
    {O_RATE, 'r', "rate", "N",
     "send at most N requests per second in all (default: as fast as the "
     "server answers); see Steady rate below"},
    {O_JSON, 0, "json", NULL,
     "print only the final result, as one JSON object with the keys of the "
     "machine-readable line"},
    {O_HELP, 'h', "help", NULL, "show this help"},
};

#define NOPTS (sizeof optdefs / sizeof optdefs[0])

static const struct {
  const char *name;
  uint8_t code;
} methods[] = {
    {"get", CK_GET},       {"post", CK_POST},   {"put", CK_PUT},
    {"delete", CK_DELETE}, {"fetch", CK_FETCH}, {"patch", CK_PATCH},
    {"ipatch", CK_IPATCH},
};

static const char help_head[] =
    "Usage: coap-bench [OPTIONS] URI\n"
    "\n"
    "Load-tests any CoAP server: CONNECTIONS simulated clients, each with\n"
    "its own UDP socket and one request in flight (or --pipeline K; a\n"
    "closed loop), send requests for SECONDS; then requests/s, latency\n"
    "percentiles, losses and response codes are reported.\n"
    "\n"
    "Examples:\n"
    "  coap-bench coap://127.0.0.1/\n"
    "      64 clients send Confirmable GETs of /: 1 s warm-up, 10 s measured\n"
    "  coap-bench -c 256 -d 30 --non coap://[::1]:5683/sensors/temp\n"
    "      256 clients send Non-confirmable GETs for 30 s over IPv6\n"
    "  coap-bench -m post -p 64 -t 2 coap://server.example/store\n"
    "      POST a 64-byte payload, the load split over two threads\n"
    "  coap-bench --observe 1 -c 100 -d 60 coap://127.0.0.1/time\n"
    "      100 observers of /time; notifications per second are counted\n"
    "  coap-bench -c 8 --pipeline 8 coap://127.0.0.1/\n"
    "      64 requests in flight from 8 sockets, as many as -c 64, for\n"
    "      far less of coap-bench's own CPU\n"
    "  coap-bench -d 5 --json coap://127.0.0.1/ | jq .rps\n"
    "  coap-bench -c 1000 -m post -f json -e '{\"temp\":21.5}' \\\n"
    "      --basic-auth 'dev{i}@bench:pw' coap://127.0.0.1/v1/telemetry\n"
    "      1000 devices dev0..dev999 of application bench send telemetry\n"
    "\n"
    "Options:\n";

static const char help_tail[] =
    "\n"
    "How requests are sent:\n"
    "  Each connection has its own socket (a distinct endpoint to the\n"
    "  server), a Message ID counter started at random, and a random 4-byte\n"
    "  token per request. A socket that has used all 65536 Message IDs is\n"
    "  replaced by a new one, so that no ID is reused towards an endpoint\n"
    "  within EXCHANGE_LIFETIME (RFC 7252 4.4). A response is matched by\n"
    "  Message ID and token: piggybacked in the ACK, or after an empty ACK\n"
    "  in a separate CON, which is acknowledged. Requests are never\n"
    "  retransmitted: one not answered within --timeout counts as lost and\n"
    "  the connection goes on with a new Message ID and token. A socket\n"
    "  error (ICMP port unreachable arrives as \"connection refused\") counts\n"
    "  as an error and the connection tries again after 10 ms.\n"
    "\n"
    "Pipelining (--pipeline K):\n"
    "  Each connection keeps K requests in flight, each with its own\n"
    "  Message ID and token, and sends whatever is ready with one\n"
    "  sendmmsg() and reads up to K answers with one recvmmsg(). The server\n"
    "  sees N endpoints with K exchanges outstanding each: more than the\n"
    "  NSTART of 1 that RFC 7252 4.7 asks of a client by default, which is\n"
    "  why it is not the default; a server that limits exchanges per\n"
    "  endpoint will answer or drop accordingly. A socket error puts all of\n"
    "  that socket's requests in back-off. Before a socket is replaced, its\n"
    "  requests in flight are let finish.\n"
    "\n"
    "Credentials (--basic-auth TEMPLATE):\n"
    "  Connection k (0 to N-1) carries option 4209 with the value \"Basic \"\n"
    "  and the base64 of TEMPLATE, each {i} replaced by k: with\n"
    "  'dev{i}@bench:pw', connection 7 authenticates as device dev7 of\n"
    "  application bench with password pw. Each connection's request is\n"
    "  built once before the run, so the credentials cost nothing per\n"
    "  request. Not with --observe.\n"
    "\n"
    "Steady rate (--rate N):\n"
    "  Each of the C connections waits C/N seconds after each answer or\n"
    "  loss before it sends again, and their first requests are spread\n"
    "  over that interval, so that the load is N requests/s while answers\n"
    "  take much less than C/N seconds, and falls below N, never above,\n"
    "  when they take longer (the loop stays closed). Not with --observe.\n"
    "\n"
    "Observe mode (--observe N):\n"
    "  Each connection runs N observers, each from its own socket, since a\n"
    "  server keeps one observation per endpoint and resource (RFC 7641\n"
    "  4.1). Each observer registers once, then only listens; one whose\n"
    "  registration is lost registers again. The latency reported is that\n"
    "  of the registrations, counted from the start (warm-up included);\n"
    "  notifications are counted in the measured window and reported per\n"
    "  second; CON notifications are acknowledged. Notifications carry no\n"
    "  send time, so their latency is not measured. At the end every\n"
    "  observation is cancelled with Observe: 1.\n"
    "\n"
    "Output:\n"
    "  A report for people, then one line for programs, always last:\n"
    "    coap-bench rps=R p50_us=N p90_us=N p99_us=N max_us=N mean_us=N\n"
    "      sent=N responses=N ok=N lost=N errors=N stray=N inflight=N\n"
    "      conns=N pipeline=K threads=N duration_s=S cpu_us_per_req=U\n"
    "      codes=2.05:N,4.04:N (or codes=none)\n"
    "      [observe mode: observers=N notifications=N nps=R]\n"
    "  all on one line. rps counts responses of any code per second of the\n"
    "  measured window; latencies are in microseconds; sent counts the\n"
    "  requests sent in the window, lost those of them not answered within\n"
    "  --timeout, and inflight those still unanswered when the time ran out\n"
    "  (not losses); ok counts 2.xx responses; errors counts socket errors,\n"
    "  Resets and malformed datagrams; stray counts datagrams that matched\n"
    "  no request, such as answers that came after the timeout;\n"
    "  cpu_us_per_req is coap-bench's own CPU time (user + system, all\n"
    "  threads) per request sent. In observe mode, rps and cpu_us_per_req\n"
    "  are per notification, and the latencies those of the registrations.\n"
    "\n"
    "Exit status:\n"
    "  0 the run completed; 1 it could not be set up (sockets, threads);\n"
    "  2 bad arguments, or a host that does not resolve; 3 not one datagram\n"
    "  came back from the server (for instance, nothing listens on that\n"
    "  port). When nothing has come back --timeout after the start, the run\n"
    "  stops there.\n";

int bench_usage_err(const char *fmt, ...)
{
  va_list ap;
  fputs(BENCH_PROG ": ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 2;
}

/* Prints text word-wrapped to 79 columns, continuation lines indented. */
static void print_wrapped(const char *text, int col, int indent)
{
  const char *p = text;
  bool first = true;
  while (*p != '\0') {
    while (*p == ' ')
      p++;
    const char *end = p;
    while (*end != '\0' && *end != ' ')
      end++;
    int len = (int)(end - p);
    if (len == 0)
      break;
    if (!first && col + 1 + len > 79) {
      printf("\n%*s", indent, "");
      col = indent;
    } else if (!first) {
      putchar(' ');
      col++;
    }
    fwrite(p, 1, (size_t)len, stdout);
    col += len;
    first = false;
    p = end;
  }
  putchar('\n');
}

void bench_print_help(void)
{
  enum { INDENT = 26 };
  fputs(help_head, stdout);
  for (size_t i = 0; i < NOPTS; i++) {
    const struct optdef *o = &optdefs[i];
    char left[64];
    int n;
    if (o->short_name)
      n = snprintf(left, sizeof left, "  -%c, --%s%s%s", o->short_name, o->name,
                   o->arg ? " " : "", o->arg ? o->arg : "");
    else
      n = snprintf(left, sizeof left, "      --%s%s%s", o->name,
                   o->arg ? " " : "", o->arg ? o->arg : "");
    fputs(left, stdout);
    if (n + 1 >= INDENT)
      printf("\n%*s", INDENT, "");
    else
      printf("%*s", INDENT - n, "");
    print_wrapped(o->help, INDENT, INDENT);
  }
  fputs(help_tail, stdout);
}

static int uint_arg(const char *name, const char *val, unsigned long lo,
                    unsigned long hi, unsigned *out)
{
  char *end = NULL;
  unsigned long v = 0;
  errno = 0;
  /* strtoul() would accept "-1" and " 1": insist on digits only. */
  if (val[0] >= '0' && val[0] <= '9')
    v = strtoul(val, &end, 10);
  if (end == NULL || *end != '\0' || errno != 0 || v < lo || v > hi)
    return bench_usage_err("%s: expected a whole number from %lu to %lu, got "
                           "\"%s\"",
                           name, lo, hi, val);
  *out = (unsigned)v;
  return 0;
}

static int secs_arg(const char *name, const char *val, double lo, double hi,
                    bool lo_open, double *out)
{
  char *end;
  errno = 0;
  double v = strtod(val, &end);
  if (end == val || *end != '\0' || errno != 0 || !isfinite(v) || v < lo ||
      (lo_open && v == lo) || v > hi)
    return bench_usage_err(
        "%s: expected seconds %s %g and at most %g, got \"%s\"", name,
        lo_open ? "above" : "from", lo, hi, val);
  *out = v;
  return 0;
}

static int apply(struct bench_args *a, const struct optdef *o, const char *name,
                 const char *val)
{
  unsigned v = 0;
  int rc = 0;
  switch (o->id) {
  case O_CONNS:
    rc = uint_arg(name, val, 1, BENCH_MAX_CONNS, &a->conns);
    break;
  case O_PIPELINE:
    rc = uint_arg(name, val, 1, BENCH_MAX_PIPELINE, &a->pipeline);
    break;
  case O_DURATION:
    rc = secs_arg(name, val, 0, 86400, true, &a->duration);
    break;
  case O_WARMUP:
    rc = secs_arg(name, val, 0, 3600, false, &a->warmup);
    break;
  case O_NON:
    a->non = true;
    break;
  case O_METHOD:
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
      if (strcasecmp(val, methods[i].name) == 0) {
        a->method = methods[i].code;
        return 0;
      }
    rc = bench_usage_err("%s: unknown method \"%s\" (get, post, put, delete, "
                         "fetch, patch or ipatch)",
                         name, val);
    break;
  case O_PSIZE:
    rc = uint_arg(name, val, 0, BENCH_MAX_PAYLOAD, &v);
    a->psize = v;
    break;
  case O_PTEXT:
    if (strlen(val) > BENCH_MAX_PAYLOAD)
      rc = bench_usage_err("%s: longer than %u bytes", name, BENCH_MAX_PAYLOAD);
    a->ptext = val;
    break;
  case O_FORMAT:
    if (ck_cf_parse(val, &a->format) < 0)
      rc = bench_usage_err("%s: unknown content format \"%s\"", name, val);
    a->have_format = true;
    break;
  case O_BASIC_AUTH:
    if (strlen(val) > BENCH_MAX_AUTH)
      rc = bench_usage_err("%s: longer than %u bytes", name, BENCH_MAX_AUTH);
    a->basic_auth = val;
    break;
  case O_OBSERVE:
    rc = uint_arg(name, val, 1, BENCH_MAX_OBSERVE, &a->observe);
    break;
  case O_THREADS:
    rc = uint_arg(name, val, 1, BENCH_MAX_THREADS, &a->threads);
    break;
  case O_TIMEOUT:
    rc = uint_arg(name, val, 1, 3600000, &a->timeout_ms);
    break;
  case O_RATE:
    rc = uint_arg(name, val, 1, 10000000, &a->rate);
    break;
  case O_JSON:
    a->json = true;
    break;
  case O_HELP:
    a->help = true;
    break;
  }
  return rc;
}

int bench_parse_args(int argc, char **argv, struct bench_args *a)
{
  bool dashdash = false;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (dashdash || s[0] != '-' || s[1] == '\0') {
      if (a->uri != NULL)
        return bench_usage_err("unexpected argument \"%s\": give one URI", s);
      a->uri = s;
      continue;
    }
    if (strcmp(s, "--") == 0) {
      dashdash = true;
      continue;
    }
    const struct optdef *o = NULL;
    const char *val = NULL;
    char name[48];
    if (s[1] == '-') {
      const char *eq = strchr(s + 2, '=');
      size_t len = eq ? (size_t)(eq - (s + 2)) : strlen(s + 2);
      snprintf(name, sizeof name, "--%.*s", (int)len, s + 2);
      for (size_t k = 0; k < NOPTS; k++)
        if (strlen(optdefs[k].name) == len &&
            strncmp(optdefs[k].name, s + 2, len) == 0)
          o = &optdefs[k];
      if (o == NULL)
        return bench_usage_err("%s: unknown option (see --help)", name);
      if (eq != NULL) {
        if (o->arg == NULL)
          return bench_usage_err("%s: takes no value", name);
        val = eq + 1;
      }
    } else {
      snprintf(name, sizeof name, "-%c", s[1]);
      for (size_t k = 0; k < NOPTS; k++)
        if (optdefs[k].short_name == s[1])
          o = &optdefs[k];
      if (o == NULL)
        return bench_usage_err("%s: unknown option (see --help)", name);
      if (s[2] != '\0') {
        if (o->arg == NULL)
          return bench_usage_err("%s: takes no value", name);
        val = s + 2;
      }
    }
    if (o->arg != NULL && val == NULL) {
      if (i + 1 >= argc)
        return bench_usage_err("%s: needs %s", name, o->arg);
      val = argv[++i];
    }
    int rc = apply(a, o, name, val);
    if (rc != 0)
      return rc;
  }
  if (a->help)
    return 0;
  if (a->uri == NULL)
    return bench_usage_err(
        "missing URI, such as coap://127.0.0.1/ (see --help)");
  if (a->psize >= 0 && a->ptext != NULL)
    return bench_usage_err("-p and -e: give one payload, not both");
  if (a->observe && a->method != CK_GET && a->method != CK_FETCH)
    return bench_usage_err("--observe: needs -m get or -m fetch");
  if (a->observe && a->pipeline > 1)
    return bench_usage_err("--pipeline: not with --observe (one observation "
                           "per socket)");
  if ((unsigned long)a->conns * a->pipeline > BENCH_MAX_CONNS)
    return bench_usage_err("--pipeline: -c times --pipeline is over %u "
                           "requests in flight",
                           BENCH_MAX_CONNS);
  if (a->observe && a->basic_auth != NULL)
    return bench_usage_err("--basic-auth: not with --observe");
  if (a->observe && (unsigned long)a->conns * a->observe > BENCH_MAX_CONNS)
    return bench_usage_err("--observe: -c times --observe is over %u sockets",
                           BENCH_MAX_CONNS);
  return 0;
}
