/* coap-bench's report: a summary for people, then one machine-readable
 * line, always last, so that scripts can take `tail -n 1`; with --json
 * that line is a JSON object with the same keys and the summary is left
 * out. Latencies come from the merged histogram, the generator's own CPU
 * time from getrusage() sampled by thread 0 at both ends of the measured
 * window.
 */
#include <stdio.h>
#include <string.h>

#include <coapkit/coapkit.h>

#include "coap_bench.h"

static uint64_t us(uint64_t ns)
{
  return (ns + 500) / 1000;
}

static double tv_us(const struct timeval *tv)
{
  return (double)tv->tv_sec * 1e6 + (double)tv->tv_usec;
}

/* What the report shows, computed once for both output forms. */
struct result {
  double dur_s;
  double rps;
  double nps;
  double cpu_us;
  double cpu_per_req;
  uint64_t p50, p90, p99, max, mean; /* microseconds */
  uint64_t errors;
};

static void print_codes(const struct bench_stats *t, bool json)
{
  bool any = false;
  for (unsigned c = 0; c < 256; c++) {
    if (t->codes[c] == 0)
      continue;
    char name[48];
    ck_code_format(name, sizeof name, (uint8_t)c);
    name[4] = '\0'; /* "c.dd" */
    if (json)
      printf("%s\"%s\":%llu", any ? "," : "", name,
             (unsigned long long)t->codes[c]);
    else
      printf("%s%s:%llu", any ? "," : "", name,
             (unsigned long long)t->codes[c]);
    any = true;
  }
  if (!any && !json)
    fputs("none", stdout);
}

/* Writes the machine-readable line: "coap-bench k=v k=v ..." or, with
 * --json, one JSON object with the same keys. */
struct kv_out {
  bool json;
  bool first;
};

static void put_key(struct kv_out *o, const char *k)
{
  if (o->json)
    printf("%s\"%s\":", o->first ? "{" : ",", k);
  else
    printf("%s%s=", o->first ? BENCH_PROG " " : " ", k);
  o->first = false;
}

static void kv_u(struct kv_out *o, const char *k, uint64_t v)
{
  put_key(o, k);
  printf("%llu", (unsigned long long)v);
}

static void kv_f(struct kv_out *o, const char *k, double v, int prec)
{
  put_key(o, k);
  printf("%.*f", prec, v);
}

static void print_machine(const struct bench_args *a,
                          const struct bench_stats *t, const struct result *r,
                          unsigned threads)
{
  struct kv_out o = {.json = a->json, .first = true};
  kv_f(&o, "rps", r->rps, 0);
  kv_u(&o, "p50_us", r->p50);
  kv_u(&o, "p90_us", r->p90);
  kv_u(&o, "p99_us", r->p99);
  kv_u(&o, "max_us", r->max);
  kv_u(&o, "mean_us", r->mean);
  kv_u(&o, "sent", t->sent);
  kv_u(&o, "responses", t->responses);
  kv_u(&o, "ok", t->ok);
  kv_u(&o, "lost", t->lost);
  kv_u(&o, "errors", r->errors);
  kv_u(&o, "stray", t->stray);
  kv_u(&o, "inflight", t->inflight);
  kv_u(&o, "conns", a->conns);
  kv_u(&o, "pipeline", a->pipeline);
  kv_u(&o, "threads", threads);
  kv_f(&o, "duration_s", r->dur_s, 2);
  kv_f(&o, "cpu_us_per_req", r->cpu_per_req, 2);
  put_key(&o, "codes");
  if (a->json)
    putchar('{');
  print_codes(t, a->json);
  if (a->json)
    putchar('}');
  if (a->observe) {
    kv_u(&o, "observers", t->observing);
    kv_u(&o, "notifications", t->notifications);
    kv_f(&o, "nps", r->nps, 1);
  }
  puts(a->json ? "}" : "");
}

static void print_human(const struct bench_args *a, const struct bench_stats *t,
                        const struct result *r)
{
  printf("  measured     %.2f s after %.2f s of warm-up\n", r->dur_s,
         a->warmup);
  printf("  requests     %llu sent, %llu answered, %llu lost, %llu "
         "errors",
         (unsigned long long)t->sent, (unsigned long long)t->responses,
         (unsigned long long)t->lost, (unsigned long long)r->errors);
  if (t->errors > 0 && t->last_errno != 0)
    printf(" (last: %s)", strerror(t->last_errno));
  printf(", %llu in flight at the end\n", (unsigned long long)t->inflight);
  const struct {
    uint64_t n;
    const char *what;
  } also[] = {
      {t->separate, "separate responses"},
      {t->rst, "Resets"},
      {t->bad, "malformed datagrams"},
      {t->stray, "stray datagrams (late or unmatched)"},
      {t->rotations, "sockets replaced (all Message IDs used)"},
  };
  bool any = false;
  for (size_t i = 0; i < sizeof also / sizeof also[0]; i++) {
    if (also[i].n == 0)
      continue;
    printf("%s%llu %s", any ? ", " : "  also         ",
           (unsigned long long)also[i].n, also[i].what);
    any = true;
  }
  if (any)
    putchar('\n');
  if (a->observe) {
    printf("  observers    %llu of %llu registered (%u connections x %u)",
           (unsigned long long)t->observing,
           (unsigned long long)a->conns * a->observe, a->conns, a->observe);
    if (t->not_observable)
      printf(", %llu answers without Observe",
             (unsigned long long)t->not_observable);
    if (t->ended)
      printf(", %llu ended by the server", (unsigned long long)t->ended);
    printf("\n  notify       %llu notifications, %.1f/s",
           (unsigned long long)t->notifications, r->nps);
    if (t->observing)
      printf(" (%.2f/s per observer)", r->nps / (double)t->observing);
    putchar('\n');
  } else {
    printf("  throughput   %.0f requests/s\n", r->rps);
  }
  printf("  latency us   %sp50 %llu  p90 %llu  p99 %llu  max %llu  mean "
         "%llu\n",
         a->observe ? "(registration) " : "", (unsigned long long)r->p50,
         (unsigned long long)r->p90, (unsigned long long)r->p99,
         (unsigned long long)r->max, (unsigned long long)r->mean);
  printf("  codes        ");
  any = false;
  for (unsigned c = 0; c < 256; c++) {
    if (t->codes[c] == 0)
      continue;
    char name[48];
    ck_code_format(name, sizeof name, (uint8_t)c);
    printf("%s%s: %llu", any ? ", " : "", name,
           (unsigned long long)t->codes[c]);
    any = true;
  }
  puts(any ? "" : "none");
  printf("  generator    %.2f us CPU per %s, %.0f%% of one core\n",
         r->cpu_per_req, a->observe ? "notification" : "request",
         r->cpu_us / (r->dur_s * 1e6) * 100.0);
}

void bench_stats_add(struct bench_stats *d, const struct bench_stats *s)
{
  d->sent += s->sent;
  d->responses += s->responses;
  d->ok += s->ok;
  d->lost += s->lost;
  d->errors += s->errors;
  d->rst += s->rst;
  d->stray += s->stray;
  d->bad += s->bad;
  d->separate += s->separate;
  d->rotations += s->rotations;
  d->inflight += s->inflight;
  d->received += s->received;
  d->observing += s->observing;
  d->not_observable += s->not_observable;
  d->ended += s->ended;
  d->notifications += s->notifications;
  if (s->last_errno != 0)
    d->last_errno = s->last_errno;
  for (unsigned c = 0; c < 256; c++)
    d->codes[c] += s->codes[c];
  bench_hist_merge(&d->lat, &s->lat);
}

int bench_report(const struct bench_args *a, const struct bench_shared *sh,
                 const struct bench_stats *tot, unsigned nthreads,
                 const char *peer)
{
  if (tot->received == 0) {
    fprintf(stderr, BENCH_PROG ": no response from %s", peer);
    if (tot->last_errno != 0)
      fprintf(stderr, " (%s)", strerror(tot->last_errno));
    fprintf(stderr, "; is a CoAP server listening there?\n");
    return 3;
  }
  uint64_t end = sh->end_ns < sh->m1_ns ? sh->end_ns : sh->m1_ns;
  if (!sh->ru0_set || end <= sh->m0_ns) {
    fprintf(stderr, BENCH_PROG ": interrupted during the warm-up\n");
    return 130;
  }
  struct result r = {.dur_s = (double)(end - sh->m0_ns) / 1e9};
  r.nps = (double)tot->notifications / r.dur_s;
  /* In observe mode the work is the notifications, and registrations
   * happen once, in the warm-up. */
  r.rps = a->observe ? r.nps : (double)tot->responses / r.dur_s;
  r.cpu_us = tv_us(&sh->ru1.ru_utime) + tv_us(&sh->ru1.ru_stime) -
             tv_us(&sh->ru0.ru_utime) - tv_us(&sh->ru0.ru_stime);
  uint64_t work = a->observe ? tot->notifications : tot->sent;
  r.cpu_per_req = work ? r.cpu_us / (double)work : 0;
  r.p50 = us(bench_hist_pct(&tot->lat, 50));
  r.p90 = us(bench_hist_pct(&tot->lat, 90));
  r.p99 = us(bench_hist_pct(&tot->lat, 99));
  r.max = us(tot->lat.max);
  r.mean = tot->lat.n ? us(tot->lat.sum / tot->lat.n) : 0;
  r.errors = tot->errors + tot->rst + tot->bad;
  if (!a->json)
    print_human(a, tot, &r);
  print_machine(a, tot, &r, nthreads);
  return 0;
}
