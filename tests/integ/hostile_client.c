/* Hostile input against the library's client (issue 13, part 2): a raw
 * UDP "server" in a thread of this program answers each request with one
 * item of a corpus of malformed and nonsense responses built on the
 * request's MID and token (so that they pass the first checks and reach
 * the deeper ones), or sprays seeded garbage at the client before a good
 * answer.
 *
 * The client must end every call cleanly and in bounded time: a
 * malformed answer (RFC 7252 §3) is never delivered as a response, so
 * those calls fail (in practice with a timeout, as §4.2 has the
 * datagram ignored); of the nonsense ones, those that are no answer (an
 * unknown critical option, Block2 far past the end, a request code in
 * an ACK, another token) fail too, and the others (Observe in an answer
 * to a plain GET, 300 ETags, a Content-Format of 4 bytes) end in
 * whichever way the library chose, which is printed. Calls that
 * meet garbage sprayed before their answer (random bytes, and the
 * corpus addressed to exchanges long gone) get that answer. The corpus
 * runs twice; the client's VmRSS must hold steady over the second run.
 *
 * Usage: integ_hostile_client. Exit 0 when every check holds.
 */
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <coapkit/coapkit.h>

enum { NMAL = 10, NODD = 10, NSPRAY = 20, SPRAY_EACH = 250, BUF = 2048 };

static unsigned checks, failures;
static int peer_fd;
static atomic_bool stop;
static uint64_t rng = 0x2545f4914f6cdd1du;

static uint32_t rnd(void)
{
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (uint32_t)((rng * 0x2545f4914f6cdd1du) >> 32);
}

static void result(bool ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
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
}

/* An answer: header with the request's MID and (unless tkl says
 * otherwise) its token, then raw bytes. */
struct out {
  uint8_t b[BUF];
  size_t n;
};

static void put(struct out *o, const void *p, size_t n)
{
  if (n > sizeof o->b - o->n)
    n = sizeof o->b - o->n;
  memcpy(o->b + o->n, p, n);
  o->n += n;
}

static void hdr(struct out *o, int type, int code, const struct ck_msg *req)
{
  uint8_t h[4] = {(uint8_t)(0x40 | type << 4 | req->tkl), (uint8_t)code,
                  (uint8_t)(req->mid >> 8), (uint8_t)req->mid};
  o->n = 0;
  put(o, h, 4);
  put(o, req->token, req->tkl);
}

/* Malformed answers (RFC 7252 §3), i from 0 to NMAL - 1. */
static void malformed(struct out *o, unsigned i, const struct ck_msg *req)
{
  hdr(o, 2, 0x45, req);
  switch (i) {
  case 0: /* TKL 9 */
    o->b[0] = 0x69;
    put(o, "123456789", 9);
    break;
  case 1: /* version 2 */
    o->b[0] = (uint8_t)(0x80 | (o->b[0] & 0x3f));
    put(o,
        "\xff"
        "hi",
        3);
    break;
  case 2: /* option delta nibble 15 */
    put(o,
        "\xf1"
        "x",
        2);
    break;
  case 3: /* option length nibble 15 */
    put(o,
        "\x1f"
        "x",
        2);
    break;
  case 4: /* an option past the end */
    put(o,
        "\xc8"
        "te",
        3);
    break;
  case 5: /* a payload marker with no payload */
    put(o, "\xff", 1);
    break;
  case 6: /* an empty ACK with the token */
    o->b[1] = 0;
    break;
  case 7: /* huge extended delta and length */
    put(o,
        "\xee\xff\xff\xff\xff"
        "x",
        6);
    break;
  case 8: /* 3 bytes */
    o->n = 3;
    break;
  default: /* a truncated extended length */
    put(o, "\x1e\x01", 2);
    break;
  }
}

static void put_opt(struct out *o, unsigned delta, const void *v, size_t n)
{
  /* Deltas and lengths below 269 are enough here. */
  uint8_t x[3];
  size_t k = 1;
  unsigned dn = delta < 13 ? delta : 13, ln = n < 13 ? (unsigned)n : 13;
  x[0] = (uint8_t)(dn << 4 | ln);
  if (dn == 13)
    x[k++] = (uint8_t)(delta - 13);
  if (ln == 13)
    x[k++] = (uint8_t)(n - 13);
  put(o, x, k);
  put(o, v, n);
}

/* Well-formed answers that make no sense for the request. */
static void odd(struct out *o, unsigned i, const struct ck_msg *req)
{
  static uint8_t body[1024];
  memset(body, 'b', sizeof body);
  hdr(o, 2, 0x45, req);
  switch (i) {
  case 0: /* an unknown critical option */
    put_opt(o, 101, "?", 1);
    put(o, "\xffodd", 4);
    break;
  case 1: /* Observe in the answer to a plain GET */
    put_opt(o, 6, "\x05", 1);
    put(o, "\xffodd", 4);
    break;
  case 2: /* Block2 number 100000, more to come, SZX 6 */
    put_opt(o, 23, "\x18\x6a\x0e", 3);
    put(o, "\xff", 1);
    put(o, body, sizeof body);
    break;
  case 3: /* Block2 0 with more, Size2 4 GiB - 1: the next block is this
           * one again */
    put_opt(o, 23, "\x0e", 1);
    put_opt(o, 5, "\xff\xff\xff\xff", 4); /* 28: Size2 */
    put(o, "\xff", 1);
    put(o, body, sizeof body);
    break;
  case 4: /* 300 ETags */
    for (int k = 0; k < 300; k++)
      put_opt(o, k == 0 ? 4 : 0, "e", 1);
    break;
  case 5: /* a request code in an ACK */
    o->b[1] = 0x01;
    break;
  case 6: /* another token */
    o->b[4] ^= 0xff;
    put(o, "\xffodd", 4);
    break;
  case 7: /* an RST for another MID, and nothing else */
    o->b[0] = 0x70;
    o->b[1] = 0;
    o->b[3] ^= 0x55;
    o->n = 4;
    break;
  case 8: /* invalid UTF-8 as text/plain */
    put_opt(o, 12, "", 0);
    put(o, "\xff\xc3\x28\xed\xa0\x80", 6);
    break;
  default: /* Content-Format with 4 bytes, Max-Age with 5 */
    put_opt(o, 12, "\x01\x02\x03\x04", 4);
    put_opt(o, 2, "\x01\x02\x03\x04\x05", 5);
    break;
  }
}

/* Garbage for the client, none of it an answer to req: the malformed
 * and odd answers go to another MID and token (as if to an exchange
 * long gone), random bytes anywhere. */
static void spray(const struct sockaddr_in *to, const struct ck_msg *req)
{
  struct out o;
  static const uint8_t other[8] = "zzzzzzzz";
  struct ck_msg fake = *req;
  fake.mid ^= 0x8000;
  fake.token = other;
  req = &fake;
  for (int k = 0; k < SPRAY_EACH; k++) {
    if (rnd() % 2) {
      o.n = rnd() % 300;
      for (size_t i = 0; i < o.n; i++)
        o.b[i] = (uint8_t)rnd();
    } else if (rnd() % 2) {
      malformed(&o, rnd() % NMAL, req);
    } else {
      odd(&o, rnd() % NODD, req);
      o.b[rnd() % o.n] ^= (uint8_t)(1u << rnd() % 8);
    }
    sendto(peer_fd, o.b, o.n, 0, (const struct sockaddr *)to, sizeof *to);
  }
}

/* The peer: answers GET /KIND/N by its path. */
static void *peer(void *arg)
{
  (void)arg;
  uint8_t in[BUF];
  while (!atomic_load(&stop)) {
    struct pollfd p = {.fd = peer_fd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0)
      continue;
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n =
        recvfrom(peer_fd, in, sizeof in, 0, (struct sockaddr *)&from, &fl);
    struct ck_msg req;
    if (n < 4 || ck_msg_parse(&req, in, (size_t)n) != 0 || req.code == 0 ||
        req.code >> 5 != 0)
      continue;
    char seg[2][16] = {"", ""};
    struct ck_opt_iter it;
    struct ck_opt op;
    int s = 0;
    ck_opt_iter_init(&it, &req);
    while (ck_opt_next(&it, &op))
      if (op.num == 11 && s < 2 && op.len < sizeof seg[0]) {
        memcpy(seg[s], op.val, op.len);
        seg[s++][op.len] = '\0';
      }
    unsigned i = (unsigned)atoi(seg[1]);
    struct out o;
    if (strcmp(seg[0], "mal") == 0) {
      malformed(&o, i % NMAL, &req);
    } else if (strcmp(seg[0], "odd") == 0) {
      odd(&o, i % NODD, &req);
    } else {
      if (strcmp(seg[0], "spray") == 0)
        spray(&from, &req);
      hdr(&o, req.type == 0 ? 2 : 1, 0x45, &req);
      put(&o, "\xffgood", 5);
    }
    sendto(peer_fd, o.b, o.n, 0, (struct sockaddr *)&from, fl);
  }
  return NULL;
}

static long rss_kib(void)
{
  char line[256];
  long kib = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}

static int call(struct ck_client *cl, uint16_t port, const char *kind,
                unsigned i, struct ck_client_result *r)
{
  char uri[96];
  snprintf(uri, sizeof uri, "coap://127.0.0.1:%u/%s/%u", port, kind, i);
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  return ck_client_do(cl, &req, r);
}

static bool good(const struct ck_client_result *r, int rc)
{
  return rc == 0 && r->code == CK_CONTENT && r->body_len == 4 &&
         memcmp(r->body, "good", 4) == 0;
}

static void corpus(struct ck_client *cl, uint16_t port, int round)
{
  struct ck_client_result r;
  for (unsigned i = 0; i < NMAL; i++) {
    int rc = call(cl, port, "mal", i, &r);
    result(rc < 0, "round %d: malformed answer %u: the call fails (%s)", round,
           i, ck_err_name(rc));
    ck_client_result_free(&r);
  }
  /* An unknown critical option (RFC 7252 §5.4.1), a block past the end
   * or a body over max_body (RFC 7959), a request code in an ACK, another
   * token (§5.3.2) or a Reset for another MID are no answer; the rest
   * may be taken as one, the odd parts ignored. */
  static const bool must_fail[NODD] = {1, 0, 1, 1, 0, 1, 1, 1, 0, 0};
  for (unsigned i = 0; i < NODD; i++) {
    int rc = call(cl, port, "odd", i, &r);
    if (must_fail[i])
      result(rc < 0, "round %d: odd answer %u: the call fails (%s)", round, i,
             ck_err_name(rc));
    else
      result(rc <= 0,
             "round %d: odd answer %u: the call ends (%s, %d.%02d, "
             "%zu bytes)",
             round, i, ck_err_name(rc), r.code >> 5, r.code & 31, r.body_len);
    ck_client_result_free(&r);
  }
  unsigned ok = 0;
  for (unsigned i = 0; i < NSPRAY; i++) {
    int rc = call(cl, port, "spray", i, &r);
    ok += good(&r, rc);
    ck_client_result_free(&r);
  }
  result(ok == NSPRAY,
         "round %d: %u of %d calls get their answer through %d datagrams "
         "of garbage each",
         round, ok, NSPRAY, SPRAY_EACH);
  int rc = call(cl, port, "good", 0, &r);
  result(good(&r, rc), "round %d: a good answer afterwards (%s)", round,
         ck_err_name(rc));
  ck_client_result_free(&r);
}

int main(void)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* Nothing here may take long: a client that loops ends the test. */
  alarm(240);
  peer_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (peer_fd < 0 || bind(peer_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(peer_fd, (struct sockaddr *)&a, &al) < 0) {
    perror("hostile_client: socket");
    return 2;
  }
  uint16_t port = ntohs(a.sin_port);
  pthread_t th;
  if (pthread_create(&th, NULL, peer, NULL) != 0)
    return 2;

  struct ck_ctx *ctx;
  struct ck_client *cl;
  struct ck_client_config cfg = {0};
  /* Short timers: a call that meets only garbage times out in ~0.5 s. */
  cfg.params.ack_timeout_ms = 100;
  cfg.params.max_retransmit = 1;
  if (ck_ctx_new(NULL, &ctx) < 0 || ck_client_new(ctx, &cfg, &cl) < 0)
    return 2;

  struct ck_client_result r;
  int rc = call(cl, port, "good", 0, &r);
  result(good(&r, rc), "a good answer first (%s)", ck_err_name(rc));
  ck_client_result_free(&r);
  long rss[3] = {rss_kib(), 0, 0};
  for (int round = 1; round <= 2; round++) {
    corpus(cl, port, round);
    rss[round] = rss_kib();
  }
  long margin = rss[1] / 10 > 2048 ? rss[1] / 10 : 2048;
  printf("rss: before %ld KiB, after round 1 %ld KiB, after round 2 %ld "
         "KiB\n",
         rss[0], rss[1], rss[2]);
  result(rss[0] > 0 && rss[2] > 0 && rss[2] <= rss[1] + margin,
         "the client's VmRSS steady over round 2: %ld KiB -> %ld KiB "
         "(margin %ld KiB)",
         rss[1], rss[2], margin);

  ck_client_free(cl);
  ck_ctx_free(ctx);
  atomic_store(&stop, true);
  pthread_join(th, NULL);
  close(peer_fd);
  printf("%u checks, %u failed; %d datagrams sprayed\n", checks, failures,
         2 * NSPRAY * SPRAY_EACH);
  return failures ? 1 : 0;
}
