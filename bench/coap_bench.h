/* coap-bench's internal seam: the command line, the configuration main()
 * builds from it, the counters each load thread keeps, the latency
 * histogram, and the engine that drives one thread's connections.
 *
 * The tool is five small files: coap_bench.c builds the request once and
 * runs the threads; coap_bench_opts.c is the option table, the parser and
 * --help; coap_bench_run.c is the epoll loop that keeps --pipeline
 * requests in flight per connection, batched per socket;
 * coap_bench_hist.c is a fixed-size log-linear
 * histogram, so that recording a latency never allocates;
 * coap_bench_report.c prints the results.
 */
#ifndef COAP_BENCH_H
#define COAP_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* Latencies are recorded in nanoseconds: below 64 ns exactly, above in 64
 * sub-buckets per power of two (at most 1.6% error), up to 2^40 ns (about
 * 18 minutes); larger values land in the last bucket. */
#define BENCH_HIST_SUB_BITS 6
#define BENCH_HIST_MAX_BITS 40
#define BENCH_HIST_BUCKETS                                                     \
  ((BENCH_HIST_MAX_BITS - BENCH_HIST_SUB_BITS + 1) << BENCH_HIST_SUB_BITS)

struct bench_hist {
  uint64_t n;
  uint64_t sum;
  uint64_t max;
  uint64_t b[BENCH_HIST_BUCKETS];
};

/* Records one value (ns). */
void bench_hist_add(struct bench_hist *h, uint64_t v);

/* Adds every sample of src to dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/* Returns the value at percentile p (0 < p <= 100): the upper edge of the
 * bucket holding that rank, never more than the exact maximum. Returns 0
 * for an empty histogram. */
uint64_t bench_hist_pct(const struct bench_hist *h, double p);

/* What to send and how; filled by main() and read-only afterwards. */
struct bench_cfg {
  struct sockaddr_storage addr; /* the server */
  socklen_t addrlen;
  bool observe; /* observe the URI instead of requesting it */
  unsigned timeout_ms;
  bool non;
  unsigned pipeline; /* requests in flight per connection (socket) */
  /* --rate: how long a connection waits after each answer (or loss)
   * before its next request, in ns; 0 for a closed loop. */
  uint64_t pace_ns;
  /* The request as sent, with a 4-byte token. Its Message ID (bytes 2-3)
   * and token (bytes 4-7) are rewritten for every send. */
  const uint8_t *req;
  size_t req_len;
  /* In observe mode, the same request with Observe: 1 (deregister). */
  const uint8_t *dereg;
  size_t dereg_len;
  /* With --basic-auth, each connection's own request instead of req:
   * connection k's is conn_lens[k] bytes at conn_reqs + k * conn_stride.
   * Read only: each slot sends its own Message ID and token from a copy
   * of the first 8 bytes. NULL otherwise. */
  const uint8_t *conn_reqs;
  size_t conn_stride;
  const size_t *conn_lens;
};

/* Counters of one thread, merged by main(). Unless noted, a counter
 * counts only events inside the measured window (after the warm-up). */
struct bench_stats {
  uint64_t sent;      /* requests sent */
  uint64_t responses; /* requests answered with a response code */
  uint64_t ok;        /* responses of class 2 */
  uint64_t lost;      /* requests not answered within the timeout */
  uint64_t errors;    /* socket errors (e.g. ICMP port unreachable) */
  uint64_t rst;       /* requests answered with a Reset */
  uint64_t stray;     /* datagrams matching no request (e.g. late) */
  uint64_t bad;       /* datagrams that are not valid CoAP */
  uint64_t separate;  /* responses that came separately from the ACK */
  uint64_t rotations; /* sockets replaced after using all 65536 MIDs */
  uint64_t inflight;  /* requests still unanswered at the end */
  uint64_t received;  /* datagrams from the server, warm-up included */
  /* Observe mode. Registrations count from the start, warm-up included:
   * they happen once. */
  uint64_t observing;      /* observations the server accepted */
  uint64_t not_observable; /* 2.xx registration answers without Observe */
  uint64_t ended;          /* observations the server ended (non-2.xx) */
  uint64_t notifications;  /* notifications received in the window */
  int last_errno;          /* the last socket error, for the report */
  uint64_t codes[256];     /* responses per code */
  struct bench_hist lat;   /* request latency (observe: registration) */
};

/* State all threads share. The times are CLOCK_MONOTONIC nanoseconds. */
struct bench_shared {
  uint64_t t0_ns;    /* start: first requests go out */
  uint64_t m0_ns;    /* end of warm-up: counting starts */
  uint64_t m1_ns;    /* end: counting stops, threads return */
  atomic_bool heard; /* some thread has heard from the server */
  atomic_bool abort; /* stop now: the server is silent */
  atomic_bool stop;  /* stop now: interrupted (SIGINT) */
  uint64_t end_ns;   /* when thread 0 stopped */
  /* Written by thread 0 only, read after every thread has joined. */
  struct rusage ru0, ru1;
  bool ru0_set;
};

struct bench_engine;

/* One load thread: its share of the connections and its counters. */
struct bench_thread {
  const struct bench_cfg *cfg;
  struct bench_shared *sh;
  unsigned index;
  unsigned first; /* the index of its first connection, over all threads */
  unsigned nconns;
  struct bench_engine *eng;
  pthread_t tid;
  struct bench_stats st;
};

/* Returns CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Allocates t's connections and opens, connects and registers their
 * sockets. Returns 0, or a negative errno; on failure nothing is left
 * allocated. */
int bench_engine_init(struct bench_thread *t);

/* Runs t's connections from sh->t0_ns until sh->m1_ns or an abort. */
void bench_engine_run(struct bench_thread *t);

/* Closes t's sockets and frees what bench_engine_init() allocated. */
void bench_engine_free(struct bench_thread *t);

#define BENCH_PROG        "coap-bench"
#define BENCH_MAX_CONNS   100000u
#define BENCH_MAX_THREADS 256u
#define BENCH_MAX_OBSERVE 64u
#define BENCH_MAX_PAYLOAD 60000u
#define BENCH_MAX_URI     8000u
/* --pipeline: requests in flight per socket; connections times pipeline
 * is capped by BENCH_MAX_CONNS too. */
#define BENCH_MAX_PIPELINE 64u
/* --basic-auth: the template's length, and what all the connections'
 * own requests may take together. */
#define BENCH_MAX_AUTH      1024u
#define BENCH_MAX_CONN_REQS (256u << 20)

/* The command line, as parsed; see coap_bench_opts.c. */
struct bench_args {
  unsigned conns;
  unsigned pipeline;
  unsigned threads;
  unsigned observe;
  unsigned timeout_ms;
  unsigned rate; /* requests per second in all; 0: closed loop */
  double duration;
  double warmup;
  bool non;
  bool json;
  bool help;
  uint8_t method;
  long psize; /* -1: none */
  const char *ptext;
  bool have_format;
  uint16_t format;
  const char *basic_auth; /* NULL: none */
  const char *uri;
};

/* Parses argv into a, which holds the defaults on entry. Returns 0, or
 * the exit status 2 after printing a one-line error that names the
 * argument. Sets a->help when --help was given. */
int bench_parse_args(int argc, char **argv, struct bench_args *a);

/* Prints --help to stdout. */
void bench_print_help(void);

/* Prints "coap-bench: " and the message on one line to stderr. Returns 2,
 * the exit status for bad arguments. */
__attribute__((format(printf, 1, 2))) int bench_usage_err(const char *fmt, ...);

/* Adds the counters and histogram of s to d. */
void bench_stats_add(struct bench_stats *d, const struct bench_stats *s);

/* Prints the report of a finished run whose merged counters are tot: a
 * summary (unless --json), then the machine-readable line last. When
 * the server never sent a datagram, or the run was interrupted during the
 * warm-up, prints one line to stderr instead. Returns the exit status: 0, 3 (no
 * answer) or 130 (interrupted). */
int bench_report(const struct bench_args *a, const struct bench_shared *sh,
                 const struct bench_stats *tot, unsigned nthreads,
                 const char *peer);

#endif
