/* Hostile input against coapd (issue 13, part 2): malformed and nasty
 * datagrams from many sources, then proof that the daemon still serves
 * and gave its memory back.
 *
 * hostile_coapd.sh starts coapd --demo with the pub/sub gateway, a user
 * and a device in its registry (so the authenticated paths run) and a
 * short EXCHANGE_LIFETIME (so that remembered exchanges expire within the
 * test), then runs this program with coapd's port and PID. It:
 *
 * 1. warms coapd up (GET /hello, a publish/observe round trip) and reads
 *    VmRSS from /proc/PID/status;
 * 2. sends one datagram of each kind that RFC 7252 fixes the answer to,
 *    and checks that answer: a Reset for a CON with a format error (§3,
 *    §4.2), silence for a bad version or a stray ACK/RST (§3, §4.2, §4.3),
 *    4.02 for an unknown critical option (§5.4.1), the elective one
 *    ignored, a plain 2.05 for Observe on a resource that is not
 *    observable (RFC 7641 §4.1), 4.00 for bad gateway input, 4.03 for
 *    garbage credentials in option 4209;
 * 3. floods coapd from 32 sockets with a seeded mix of the same kinds,
 *    mutated, plus random bytes, at most FLOOD_MAX datagrams or
 *    FLOOD_SECONDS seconds, paced; every answer must parse as CoAP;
 * 4. waits for the exchanges to expire, checks GET /hello and the round
 *    trip again and reads VmRSS; then floods and checks a second time,
 *    and compares VmRSS with the level after the first flood (a leak)
 *    and, more loosely, with the level before.
 *
 * Every wait is bounded. Usage: integ_hostile PORT PID USER PASS DEVAUTH
 * SETTLE_MS, where DEVAUTH is the device's option 4209 value and
 * SETTLE_MS outlasts coapd's EXCHANGE_LIFETIME. Exit 0 when every check
 * holds.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <coapkit/coapkit.h>

enum {
  FLOOD_MAX = 20000,
  FLOOD_SECONDS = 10,
  NSOCK = 32,
  BUF = 2048,
  /* Datagrams per pacing step of 10 ms: at most 2,500 per second. */
  BURST = 25
};

enum { CON = 0, NON = 1, ACK = 2, RST = 3 };
enum { GET = 1, POST = 2, PUT = 3 };

static uint16_t port;
static int pid;
static const char *user, *pass, *devauth;
static unsigned checks, failures;
static uint16_t next_mid = 0x1000;

/* xorshift64*: the flood's randomness, seeded, so that a failing run can
 * be repeated exactly. */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t rnd(void)
{
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (uint32_t)((rng * 0x2545f4914f6cdd1du) >> 32);
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void result(bool ok, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  printf("%s - ", ok ? "ok" : "FAIL");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  checks++;
  failures += !ok;
  fflush(stdout);
}

static int sock_new(void)
{
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("hostile: socket");
    exit(2);
  }
  return fd;
}

/* A datagram under construction, encoded by hand rather than by the
 * library under test, so that it can also be wrong on purpose. */
struct enc {
  uint8_t b[BUF];
  size_t n;
  uint16_t last; /* the previous option's number */
};

static void e_bytes(struct enc *e, const void *p, size_t n)
{
  if (n > sizeof e->b - e->n)
    n = sizeof e->b - e->n;
  memcpy(e->b + e->n, p, n);
  e->n += n;
}

static void e_hdr(struct enc *e, int type, int code, uint16_t mid,
                  const char *token)
{
  size_t tkl = strlen(token);
  e->n = 0;
  e->last = 0;
  uint8_t h[4] = {(uint8_t)(0x40 | type << 4 | tkl), (uint8_t)code,
                  (uint8_t)(mid >> 8), (uint8_t)mid};
  e_bytes(e, h, 4);
  e_bytes(e, token, tkl);
}

/* RFC 7252 §3.1: the 13/14 extended forms of delta and length. */
static void e_opt(struct enc *e, uint16_t num, const void *v, size_t len)
{
  if (num < e->last) {
    fprintf(stderr, "hostile: option %u after %u\n", num, e->last);
    abort(); /* a bug in this test, not in coapd */
  }
  uint32_t d = (uint32_t)(num - e->last), l = (uint32_t)len;
  uint8_t x[5];
  size_t k = 1;
  int dn = d < 13 ? (int)d : d < 269 ? 13 : 14;
  int ln = l < 13 ? (int)l : l < 269 ? 13 : 14;
  x[0] = (uint8_t)(dn << 4 | ln);
  if (dn == 13)
    x[k++] = (uint8_t)(d - 13);
  if (dn == 14) {
    x[k++] = (uint8_t)((d - 269) >> 8);
    x[k++] = (uint8_t)(d - 269);
  }
  if (ln == 13)
    x[k++] = (uint8_t)(l - 13);
  if (ln == 14) {
    x[k++] = (uint8_t)((l - 269) >> 8);
    x[k++] = (uint8_t)(l - 269);
  }
  e_bytes(e, x, k);
  e_bytes(e, v, len);
  e->last = num;
}

static void e_uint(struct enc *e, uint16_t num, uint32_t v)
{
  uint8_t b[4];
  size_t n = 0;
  for (int s = 24; s >= 0; s -= 8)
    if (n || (v >> s) & 0xff)
      b[n++] = (uint8_t)(v >> s);
  e_opt(e, num, b, n);
}

/* Uri-Path (11) segments of "a/b/c"; Uri-Query (15) goes after. */
static void e_path(struct enc *e, const char *path)
{
  while (*path) {
    size_t n = strcspn(path, "/");
    e_opt(e, 11, path, n);
    path += n + (path[n] == '/');
  }
}

static void e_str(struct enc *e, uint16_t num, const char *s)
{
  e_opt(e, num, s, strlen(s));
}

static void e_payload(struct enc *e, const char *p)
{
  e_bytes(e, "\xff", 1);
  e_bytes(e, p, strlen(p));
}

static uint16_t mid_new(void)
{
  return next_mid++;
}

/* Receives the next datagram on fd whose MID is mid (any MID when mid is
 * negative) within ms milliseconds. Returns its length, or 0. */
static size_t recv_mid(int fd, int mid, uint8_t *ans, int ms)
{
  double end = now_s() + ms / 1000.0;
  for (;;) {
    int left = (int)((end - now_s()) * 1000);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (left <= 0 || poll(&p, 1, left) <= 0)
      return 0;
    ssize_t n = recv(fd, ans, BUF, 0);
    if (n >= 4 && (mid < 0 || (ans[2] << 8 | ans[3]) == mid))
      return (size_t)n;
  }
}

/* Sends e and waits up to ms for the answer with the same MID. */
static size_t xchg(int fd, const struct enc *e, uint8_t *ans, int ms)
{
  if (send(fd, e->b, e->n, 0) < 0)
    return 0;
  return recv_mid(fd, e->n >= 4 ? (e->b[2] << 8 | e->b[3]) : -1, ans, ms);
}

static const char *code_str(uint8_t c, char *buf)
{
  snprintf(buf, 8, "%d.%02d", c >> 5, c & 31);
  return buf;
}

/* The answer is a Reset (type 3, code 0.00, the request's MID). */
static void want_rst(int fd, const char *what, struct enc *e)
{
  uint8_t a[BUF];
  size_t n = xchg(fd, e, a, 1000);
  result(n == 4 && (a[0] & 0xf0) == 0x70 && a[1] == 0 && a[2] == e->b[2] &&
             a[3] == e->b[3],
         "%s -> RST (%zu-byte answer)", what, n);
}

static void want_none(int fd, const char *what, struct enc *e)
{
  uint8_t a[BUF];
  size_t n = xchg(fd, e, a, 300);
  result(n == 0, "%s -> no answer%s", what, n ? " (got one)" : "");
}

/* The answer is a valid CoAP message with code, in an ACK; it is left
 * parsed in *m (over ans) for further checks. */
static bool want_code(int fd, const char *what, struct enc *e, int code,
                      struct ck_msg *m, uint8_t *ans)
{
  size_t n = xchg(fd, e, ans, 3000);
  char b1[8], b2[8];
  bool ok = n > 0 && ck_msg_parse(m, ans, n) == 0 && m->type == ACK &&
            m->code == code;
  result(ok, "%s -> %s (got %s)", what, code_str((uint8_t)code, b1),
         n ? code_str(ans[1], b2) : "nothing");
  return ok;
}

/* The answer is a valid CoAP response of class 4 or 5, whichever: for
 * inputs the RFCs leave to the server (a Uri-Path longer than anything
 * we serve). */
static void want_error(int fd, const char *what, struct enc *e)
{
  uint8_t a[BUF];
  struct ck_msg m;
  size_t n = xchg(fd, e, a, 3000);
  char b[8];
  bool ok = n > 0 && ck_msg_parse(&m, a, n) == 0 &&
            (m.code >> 5 == 4 || m.code >> 5 == 5);
  result(ok, "%s -> %s", what, n ? code_str(a[1], b) : "nothing");
}

static long rss_kib(void)
{
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  long kib = -1;
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}

/* ps/<topic>?u=USER&p=PASS */
static void e_ps(struct enc *e, const char *topic, bool auth)
{
  char q[256];
  e_str(e, 11, "ps");
  e_path(e, topic);
  if (auth) {
    snprintf(q, sizeof q, "u=%s", user);
    e_str(e, 15, q);
    snprintf(q, sizeof q, "p=%s", pass);
    e_str(e, 15, q);
  }
}

/* GET /hello answers 2.05 "Hello, world!", and an observer of a topic
 * hears a publish to it. */
static void alive(int fd, const char *when)
{
  struct enc e;
  struct ck_msg m;
  uint8_t a[BUF];
  e_hdr(&e, CON, GET, mid_new(), "h1");
  e_path(&e, "hello");
  char what[96];
  snprintf(what, sizeof what, "%s: GET /hello", when);
  if (want_code(fd, what, &e, 0x45, &m, a))
    result(m.payload_len == 13 && memcmp(m.payload, "Hello, world!", 13) == 0,
           "%s: /hello says Hello, world!", when);

  int obs = sock_new();
  e_hdr(&e, CON, GET, mid_new(), "ob");
  e_uint(&e, 6, 0);
  e_ps(&e, "hostile/t", true);
  size_t n = xchg(obs, &e, a, 3000);
  bool reg = n > 0 && ck_msg_parse(&m, a, n) == 0 && m.code >> 5 == 2 &&
             ck_msg_opt_count(&m, 6) == 1;
  result(reg, "%s: observe ps/hostile/t -> 2.xx with Observe", when);

  char body[64];
  snprintf(body, sizeof body, "round trip %s", when);
  e_hdr(&e, CON, POST, mid_new(), "pu");
  e_ps(&e, "hostile/t", true);
  e_payload(&e, body);
  snprintf(what, sizeof what, "%s: publish to ps/hostile/t", when);
  want_code(fd, what, &e, 0x44, &m, a);

  /* The notification, CON or NON; a CON is acknowledged. */
  bool heard = false;
  double end = now_s() + 3;
  while (!heard && now_s() < end) {
    n = recv_mid(obs, -1, a, 500);
    if (n == 0 || ck_msg_parse(&m, a, n) != 0)
      continue;
    if (m.type == CON) {
      uint8_t ack[4] = {0x60, 0, a[2], a[3]};
      send(obs, ack, 4, 0);
    }
    heard = m.tkl == 2 && memcmp(m.token, "ob", 2) == 0 &&
            m.payload_len == strlen(body) &&
            memcmp(m.payload, body, m.payload_len) == 0;
  }
  result(heard, "%s: the observer hears the publish", when);
  /* Deregister (RFC 7641 §3.6) so that no observer stays behind. */
  e_hdr(&e, CON, GET, mid_new(), "ob");
  e_uint(&e, 6, 1);
  e_ps(&e, "hostile/t", true);
  xchg(obs, &e, a, 1000);
  close(obs);
}

/* Part 2: one datagram of each kind, with the answer RFC 7252 fixes. */
static void format_errors(int fd)
{
  struct enc e;
  char what[96];
  /* §3: TKL 9 to 15 are reserved and a message format error; the CON
   * gets a Reset (§4.2), the NON nothing (§4.3). */
  for (int tkl = 9; tkl <= 15; tkl++) {
    uint16_t mid = mid_new();
    uint8_t h[] = {(uint8_t)(0x40 | tkl),
                   GET,
                   (uint8_t)(mid >> 8),
                   (uint8_t)mid,
                   1,
                   2,
                   3,
                   4,
                   5,
                   6,
                   7,
                   8,
                   9,
                   10,
                   11,
                   12,
                   13,
                   14,
                   15};
    e.n = 0;
    e_bytes(&e, h, sizeof h);
    snprintf(what, sizeof what, "CON with TKL %d", tkl);
    want_rst(fd, what, &e);
  }
  e.n = 0;
  e_bytes(&e,
          "\x59\x01\x10\x00"
          "123456789",
          13);
  want_none(fd, "NON with TKL 9", &e);
  /* §3: other versions are silently ignored. */
  for (int v = 0; v <= 3; v += v == 0 ? 2 : 1) {
    e_hdr(&e, CON, GET, mid_new(), "");
    e.b[0] = (uint8_t)(v << 6 | (e.b[0] & 0x3f));
    e_path(&e, "hello");
    snprintf(what, sizeof what, "CON GET /hello with version %d", v);
    want_none(fd, what, &e);
  }
  /* §3.1: delta nibble 15 without 0xff, length nibble 15. */
  e_hdr(&e, CON, GET, mid_new(), "t");
  e_bytes(&e, "\xf1\x61", 2);
  want_rst(fd, "option delta nibble 15", &e);
  e_hdr(&e, CON, GET, mid_new(), "t");
  e_bytes(&e,
          "\xbf"
          "hello",
          6);
  want_rst(fd, "option length nibble 15", &e);
  /* An option's value running past the end of the datagram. */
  e_hdr(&e, CON, GET, mid_new(), "t");
  e_bytes(&e,
          "\xb8"
          "hel",
          4);
  want_rst(fd, "option value past the end", &e);
  /* Truncated extended delta and length bytes. */
  e_hdr(&e, CON, GET, mid_new(), "t");
  e_bytes(&e, "\xd0", 1);
  want_rst(fd, "extended delta (13) cut off", &e);
  e_hdr(&e, CON, GET, mid_new(), "t");
  e_bytes(&e, "\xe0\x01", 2);
  want_rst(fd, "extended delta (14) cut off", &e);
  e_hdr(&e, CON, GET, mid_new(), "t");
  e_bytes(&e, "\xbe\x00", 2);
  want_rst(fd, "extended length (14) cut off", &e);
  /* Huge extended lengths: 65,804 bytes promised, 3 present. */
  e_hdr(&e, CON, GET, mid_new(), "t");
  e_bytes(&e,
          "\xbe\xff\xff"
          "abc",
          6);
  want_rst(fd, "option length 65804", &e);
  e_hdr(&e, CON, GET, mid_new(), "t");
  e_bytes(&e,
          "\xee\xff\xff\xff\xff"
          "x",
          6);
  want_rst(fd, "option delta 65804, length 65804", &e);
  /* A delta that carries the number past 65535. */
  e_hdr(&e, CON, GET, mid_new(), "t");
  e_path(&e, "hello");
  e_bytes(&e, "\xe0\xff\xff", 3);
  want_rst(fd, "option number past 65535", &e);
  /* §3: a payload marker followed by no payload. */
  e_hdr(&e, CON, GET, mid_new(), "t");
  e_path(&e, "hello");
  e_bytes(&e, "\xff", 1);
  want_rst(fd, "payload marker without a payload", &e);
  /* §4.1: an empty message (0.00) is only the 4-byte header. */
  e_hdr(&e, CON, 0, mid_new(), "tk");
  want_rst(fd, "empty CON with a token", &e);
  e_hdr(&e, CON, 0, mid_new(), "");
  e_path(&e, "hello");
  want_rst(fd, "empty CON with an option", &e);
  e_hdr(&e, CON, 0, mid_new(), "");
  e_payload(&e, "x");
  want_rst(fd, "empty CON with a payload", &e);
  /* Fewer than 4 bytes: nothing to answer to. */
  e.n = 0;
  e_bytes(&e, "\x40\x01\x10", 3);
  want_none(fd, "3-byte datagram", &e);
  /* §4.2/§4.3: ACKs and RSTs for MIDs never sent are ignored. */
  e_hdr(&e, ACK, 0, 0xfff0, "");
  want_none(fd, "ACK for an unknown MID", &e);
  e_hdr(&e, RST, 0, 0xfff1, "");
  want_none(fd, "RST for an unknown MID", &e);
  e_hdr(&e, ACK, 0x45, 0xfff2, "zz");
  e_payload(&e, "response nobody asked for");
  want_none(fd, "piggybacked 2.05 for an unknown MID", &e);
}

static void nonsense_options(int fd)
{
  struct enc e;
  struct ck_msg m;
  uint8_t a[BUF];
  /* §5.4.1: unknown critical (odd) options are 4.02, unknown elective
   * (even) ones are ignored. */
  /* 9 is OSCORE (RFC 8613), which coapd does not implement: §2 there
   * makes a server without it answer 4.02 too. */
  static const uint16_t critical[] = {9, 101, 2049, 65001};
  for (size_t i = 0; i < sizeof critical / sizeof critical[0]; i++) {
    char what[64];
    e_hdr(&e, CON, GET, mid_new(), "c");
    if (critical[i] < 11)
      e_str(&e, critical[i], "?");
    e_path(&e, "hello");
    if (critical[i] > 11)
      e_str(&e, critical[i], "?");
    snprintf(what, sizeof what, "GET /hello with critical option %u",
             critical[i]);
    want_code(fd, what, &e, 0x82, &m, a);
  }
  e_hdr(&e, CON, GET, mid_new(), "c");
  e_path(&e, "hello");
  e_str(&e, 16, "ignored");
  e_str(&e, 65000, "ignored");
  want_code(fd, "GET /hello with elective options 16 and 65000", &e, 0x45, &m,
            a);
  /* A known option with a length out of its range (§5.4.3: treated as
   * unrecognized; Uri-Host is critical): 4.02. */
  char host[300];
  memset(host, 'h', sizeof host);
  e_hdr(&e, CON, GET, mid_new(), "c");
  e_opt(&e, 3, host, sizeof host);
  e_path(&e, "hello");
  want_code(fd, "Uri-Host of 300 bytes", &e, 0x82, &m, a);
  /* RFC 7641 §4.1: Observe on a resource that is not observable is a
   * plain GET. */
  e_hdr(&e, CON, GET, mid_new(), "o");
  e_uint(&e, 6, 0);
  e_path(&e, "hello");
  if (want_code(fd, "Observe on /hello", &e, 0x45, &m, a))
    result(ck_msg_opt_count(&m, 6) == 0,
           "Observe on /hello: the answer has no Observe option");
  /* RFC 7959 §2.2: a Block2 number past the end of /large. */
  static const uint32_t far[] = {1000, 0xfffff};
  for (size_t i = 0; i < 2; i++) {
    char what[64];
    e_hdr(&e, CON, GET, mid_new(), "b");
    e_path(&e, "large");
    e_uint(&e, 23, far[i] << 4 | 2); /* SZX 2: 64 bytes */
    snprintf(what, sizeof what, "GET /large Block2 number %u", far[i]);
    want_error(fd, what, &e);
  }
  /* Oversize Uri-Path: many segments, long segments. */
  e_hdr(&e, CON, GET, mid_new(), "p");
  for (int i = 0; i < 300; i++)
    e_str(&e, 11, "a");
  want_error(fd, "300 Uri-Path segments", &e);
  char seg[1100];
  memset(seg, 's', sizeof seg);
  e_hdr(&e, CON, GET, mid_new(), "p");
  e_opt(&e, 11, seg, 255);
  want_error(fd, "a Uri-Path segment of 255 bytes", &e);
  e_hdr(&e, CON, GET, mid_new(), "p");
  e_opt(&e, 11, seg, sizeof seg);
  e_path(&e, "x");
  want_error(fd, "a Uri-Path segment of 1100 bytes", &e);
}

/* The gateway's and the device endpoint's inputs. */
static void gateway_input(int fd)
{
  struct enc e;
  struct ck_msg m;
  uint8_t a[BUF];
  /* Invalid UTF-8 in a topic (MQTT 3.1.1 §1.5.3): 4.00. */
  static const char *const bad_utf8[] = {"\xff\xfe", "a\xc3", "\xed\xa0\x80",
                                         "\xc0\xaf", "x\x00y"};
  for (size_t i = 0; i < 5; i++) {
    char what[64];
    e_hdr(&e, CON, POST, mid_new(), "u");
    e_str(&e, 11, "ps");
    e_opt(&e, 11, bad_utf8[i], i == 4 ? 3 : strlen(bad_utf8[i]));
    char q[128];
    snprintf(q, sizeof q, "u=%s", user);
    e_str(&e, 15, q);
    snprintf(q, sizeof q, "p=%s", pass);
    e_str(&e, 15, q);
    e_payload(&e, "x");
    snprintf(what, sizeof what, "publish to a topic with bad UTF-8 #%zu", i);
    want_code(fd, what, &e, 0x80, &m, a);
  }
  /* Invalid UTF-8 in a query's value. */
  e_hdr(&e, CON, POST, mid_new(), "u");
  e_ps(&e, "hostile/q", true);
  e_str(&e, 15, "qos=\xff");
  e_payload(&e, "x");
  want_code(fd, "publish with qos=<0xff>", &e, 0x80, &m, a);
  /* Huge query counts: 200 Uri-Query options. */
  e_hdr(&e, CON, POST, mid_new(), "q");
  e_ps(&e, "hostile/q", true);
  for (int i = 0; i < 200; i++)
    e_str(&e, 15, "retain=false");
  e_payload(&e, "x");
  want_error(fd, "publish with 200 Uri-Query options", &e);
  e_hdr(&e, CON, POST, mid_new(), "q");
  e_path(&e, "mqtt/connection");
  for (int i = 0; i < 200; i++)
    e_str(&e, 15, "clientid=c");
  want_error(fd, "mqtt/connection with 200 Uri-Query options", &e);
  e_hdr(&e, CON, POST, mid_new(), "q");
  e_path(&e, "mqtt/connection");
  e_str(&e, 15, "clientid=\xc3(");
  e_str(&e, 15, "username=\xff");
  want_error(fd, "mqtt/connection with bad UTF-8 in its queries", &e);
  /* Garbage Basic credentials in option 4209 for /v1/...: 4.03. */
  static const char *const garbage[] = {
      "Basic", "Basic ", "Basic !!!!", "Basic ZGV2aWNl", "Bearer abc",
      "Basic \xff\xfe\xfd",
      /* device1@example-app:wrong, and ":@:@:::" */
      "Basic ZGV2aWNlMUBleGFtcGxlLWFwcDp3cm9uZw==", "Basic OkA6QDo6Og==",
      /* "\0\0\0\0": NUL bytes where the names go */
      "Basic AAAAAA=="};
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
    char what[64];
    e_hdr(&e, CON, POST, mid_new(), "d");
    e_path(&e, "v1/foo");
    e_str(&e, 4209, garbage[i]);
    e_payload(&e, "{}");
    snprintf(what, sizeof what, "v1/foo with garbage option 4209 #%zu", i);
    want_code(fd, what, &e, 0x83, &m, a);
  }
  /* 1,000 bytes of credentials: refused, one way or another. */
  char big[1000];
  memcpy(big, "Basic ", 6);
  memset(big + 6, 'A', sizeof big - 6);
  e_hdr(&e, CON, POST, mid_new(), "d");
  e_path(&e, "v1/foo");
  e_opt(&e, 4209, big, sizeof big);
  e_payload(&e, "{}");
  want_error(fd, "v1/foo with 1,000 bytes in option 4209", &e);
  /* A channel with bad UTF-8, from a device with good credentials. */
  e_hdr(&e, CON, POST, mid_new(), "d");
  e_str(&e, 11, "v1");
  e_str(&e, 11, "\xff\xfe");
  e_str(&e, 4209, devauth);
  e_payload(&e, "{}");
  want_code(fd, "v1/<0xfffe> with good credentials", &e, 0x80, &m, a);
}

/* One flood datagram of kind k (random, seeded) into e. */
static void flood_one(struct enc *e, unsigned k)
{
  uint16_t mid = (uint16_t)rnd();
  int type = (int)(rnd() % 2);
  char tok[9];
  size_t tkl = rnd() % 9;
  for (size_t i = 0; i < tkl; i++)
    tok[i] = (char)('a' + rnd() % 26);
  tok[tkl] = '\0';
  switch (k) {
  case 0: /* random bytes */
    e->n = rnd() % 1200;
    for (size_t i = 0; i < e->n; i++)
      e->b[i] = (uint8_t)rnd();
    return;
  case 1: /* a valid header, then random bytes */
    e_hdr(e, type, (int)(rnd() % 256), mid, tok);
    for (size_t i = rnd() % 64; i > 0; i--) {
      uint8_t b = (uint8_t)rnd();
      e_bytes(e, &b, 1);
    }
    return;
  case 2: /* TKL or version wrong */
    e_hdr(e, type, GET, mid, "");
    e->b[0] = rnd() % 2 ? (uint8_t)(0x40 | (9 + rnd() % 7))
                        : (uint8_t)(rnd() % 4 << 6);
    e_path(e, "hello");
    return;
  case 3: /* nibble 15, huge extended values, truncation */
    e_hdr(e, type, GET, mid, tok);
    e_path(e, "hello");
    {
      static const char *const tails[] = {"\xf1", "\x1f",     "\xee\xff\xff",
                                          "\xd0", "\xe0\x01", "\x0e\xff",
                                          "\xff"};
      const char *t = tails[rnd() % 7];
      e_bytes(e, t, strlen(t));
    }
    return;
  case 4: /* an empty message with bytes after the header */
    e_hdr(e, type, 0, mid, tkl ? tok : "x");
    return;
  case 5: /* unknown options, critical or not */
    e_hdr(e, type, GET, mid, tok);
    e_path(e, "hello");
    e_uint(e, (uint16_t)(20 + rnd() % 60000), rnd());
    return;
  case 6: /* Block2 far past the end, or Observe where it means nothing */
    e_hdr(e, type, GET, mid, tok);
    if (rnd() % 2)
      e_uint(e, 6, rnd() % 2);
    e_path(e, rnd() % 2 ? "large" : "hello");
    e_uint(e, 23, (rnd() % 0xfffff) << 4 | rnd() % 7);
    return;
  case 7: /* oversize Uri-Path */
    e_hdr(e, type, GET, mid, tok);
    for (unsigned i = rnd() % 400; i > 0; i--)
      e_str(e, 11, "seg");
    {
      char seg[600];
      memset(seg, 'x', sizeof seg);
      e_opt(e, 11, seg, rnd() % sizeof seg);
    }
    return;
  case 8: /* invalid UTF-8 in topics and channels, garbage auth */
    e_hdr(e, type, rnd() % 2 ? POST : GET, mid, tok);
    {
      char s[8];
      for (size_t i = 0; i < sizeof s; i++)
        s[i] = (char)(0x80 | rnd());
      if (rnd() % 2) {
        e_str(e, 11, "ps");
        e_opt(e, 11, s, 1 + rnd() % 8);
        e_opt(e, 15, s, rnd() % 8);
      } else {
        e_str(e, 11, "v1");
        e_opt(e, 11, s, 1 + rnd() % 8);
        e_opt(e, 4209, s, rnd() % 8);
      }
    }
    e_payload(e, "{\"x\":1}");
    return;
  case 9: /* huge query counts */
    e_hdr(e, type, POST, mid, tok);
    e_path(e, rnd() % 2 ? "mqtt/connection" : "ps/hostile/flood");
    for (unsigned i = rnd() % 300; i > 0; i--)
      e_str(e, 15, rnd() % 2 ? "clientid=c" : "qos=1");
    return;
  case 10: /* ACKs and RSTs for unknown MIDs */
    e_hdr(e, 2 + (int)(rnd() % 2), 0, mid, "");
    return;
  default: /* a valid request with a few bits flipped */
    e_hdr(e, type, GET, mid, tok);
    e_path(e, "seg1/seg2/seg3");
    e_str(e, 15, "a=b");
    for (unsigned i = 1 + rnd() % 4; i > 0; i--)
      e->b[rnd() % e->n] ^= (uint8_t)(1u << rnd() % 8);
    return;
  }
}

static void flood(int round)
{
  int fds[NSOCK];
  for (int i = 0; i < NSOCK; i++)
    fds[i] = sock_new();
  unsigned sent = 0, answers = 0, bad = 0;
  double start = now_s();
  struct enc e;
  uint8_t a[BUF];
  while (sent < FLOOD_MAX && now_s() - start < FLOOD_SECONDS) {
    for (int b = 0; b < BURST && sent < FLOOD_MAX; b++, sent++) {
      flood_one(&e, rnd() % 12);
      if (send(fds[sent % NSOCK], e.b, e.n, 0) < 0 && errno != EAGAIN &&
          errno != ECONNREFUSED) {
        perror("hostile: send");
        break;
      }
    }
    /* Drain the answers; each must be a well-formed CoAP message. */
    for (int i = 0; i < NSOCK; i++) {
      ssize_t n;
      while ((n = recv(fds[i], a, sizeof a, 0)) >= 0) {
        struct ck_msg m;
        answers++;
        bad += ck_msg_parse(&m, a, (size_t)n) != 0;
      }
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  double took = now_s() - start;
  /* Late answers, for a second. */
  double end = now_s() + 1;
  while (now_s() < end)
    for (int i = 0; i < NSOCK; i++) {
      ssize_t n;
      while ((n = recv(fds[i], a, sizeof a, 0)) >= 0) {
        struct ck_msg m;
        answers++;
        bad += ck_msg_parse(&m, a, (size_t)n) != 0;
      }
    }
  for (int i = 0; i < NSOCK; i++)
    close(fds[i]);
  printf("flood %d: %u datagrams from %d sockets in %.1f s (%.0f/s), "
         "%u answers\n",
         round, sent, NSOCK, took, sent / took, answers);
  result(sent >= 1000, "flood %d sent %u datagrams", round, sent);
  result(bad == 0, "flood %d: every answer is well-formed CoAP (%u bad)", round,
         bad);
  result(kill(pid, 0) == 0, "coapd is alive after flood %d", round);
}

int main(int argc, char **argv)
{
  if (argc != 7) {
    fprintf(stderr,
            "usage: integ_hostile PORT PID USER PASS DEVAUTH SETTLE_MS\n");
    return 2;
  }
  port = (uint16_t)atoi(argv[1]);
  pid = atoi(argv[2]);
  user = argv[3];
  pass = argv[4];
  devauth = argv[5];
  int settle_ms = atoi(argv[6]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  int fd = sock_new();

  alive(fd, "before");
  struct timespec ts = {settle_ms / 1000, settle_ms % 1000 * 1000000L};
  nanosleep(&ts, NULL);
  long before = rss_kib();

  format_errors(fd);
  nonsense_options(fd);
  gateway_input(fd);
  result(kill(pid, 0) == 0, "coapd is alive after the single checks");

  /* Two rounds of the flood. The first leaves the allocator at its high
   * water mark (glibc's arenas and ASan's quarantine keep freed pages),
   * so the second is the test for leaks: whatever a round leaves behind
   * would show again. Remembered exchanges live for EXCHANGE_LIFETIME
   * (the script makes it short); each round waits that long before
   * asking again and reading VmRSS. */
  long rss[3] = {before, 0, 0};
  for (int round = 1; round <= 2; round++) {
    char when[32];
    snprintf(when, sizeof when, "after flood %d", round);
    flood(round);
    nanosleep(&ts, NULL);
    alive(fd, when);
    nanosleep(&ts, NULL);
    rss[round] = rss_kib();
  }
  long margin = rss[1] / 10 > 2048 ? rss[1] / 10 : 2048;
  long wide = before / 4 > 4096 ? before / 4 : 4096;
  printf("rss: before %ld KiB, after flood 1 %ld KiB, after flood 2 %ld "
         "KiB\n",
         rss[0], rss[1], rss[2]);
  result(rss[0] > 0 && rss[1] > 0 && rss[2] > 0 && rss[2] <= rss[1] + margin,
         "VmRSS steady over the second flood: %ld KiB -> %ld KiB (margin "
         "%ld KiB)",
         rss[1], rss[2], margin);
  result(rss[2] <= before + wide,
         "VmRSS near its level before: %ld KiB -> %ld KiB (margin %ld KiB)",
         before, rss[2], wide);
  close(fd);
  printf("%u checks, %u failed\n", checks, failures);
  return failures ? 1 : 0;
}
