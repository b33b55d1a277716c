/* Amplification mitigation of coapd (RFC 9175 §2.4) seen from raw UDP
 * sockets, each a new source address (a new port): a GET of
 * /.well-known/core from an unverified source is answered 4.01 with an
 * Echo and no more than three times the request; the same request with
 * that Echo gets the 2.05 and, once verified, every block; a forged
 * Echo, an Echo made for another source and an expired Echo (coapd runs
 * with echo_fresh_ms = 1000) are challenged again; a small GET (/hello)
 * is answered at once. Uses only the public codec.
 *
 * Usage: integ_echo_raw PORT. Prints "ok - ..." lines; exits 1 on the
 * first failure. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coapkit/coapkit.h"

static struct ck_addr server;
static uint16_t next_mid = 100;

#define CHECK(cond, ...)                                                      \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "FAIL line %d: ", __LINE__);                            \
      fprintf(stderr, __VA_ARGS__);                                           \
      fputc('\n', stderr);                                                    \
      exit(1);                                                                \
    }                                                                         \
  } while (0)

static int fresh_source(void)
{
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  CHECK(fd >= 0, "socket");
  CHECK(connect(fd, &server.u.sa, server.len) == 0, "connect");
  return fd;
}

struct answer {
  uint8_t buf[2048];
  size_t len;
  struct ck_msg m;
  size_t req_len;
};

/* One CON GET of path (with Echo and Block2 when given) and its answer;
 * retransmits twice, 1 s apart, when nothing comes (bounded: 3 s). */
static void get(int fd, const char *path, const uint8_t *echo,
                size_t echo_len, int block_num, struct answer *a)
{
  uint8_t req[256];
  struct ck_builder b;
  uint16_t mid = next_mid++;
  ck_builder_init(&b, req, sizeof req, CK_TYPE_CON, CK_GET, mid);
  ck_builder_token(&b, "echotest", 8);
  char p[64];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p, *e; s && *s; s = e) {
    e = strchr(s, '/');
    if (e)
      *e++ = '\0';
    ck_builder_opt_str(&b, CK_OPT_URI_PATH, s);
  }
  if (block_num >= 0) {
    struct ck_block blk = {.num = (uint32_t)block_num, .szx = 6};
    uint32_t v;
    ck_block_encode(&blk, &v);
    ck_builder_opt_uint(&b, CK_OPT_BLOCK2, v);
  }
  if (echo)
    ck_builder_opt(&b, CK_OPT_ECHO, echo, echo_len);
  int n = ck_builder_finish(&b);
  CHECK(n > 0, "build");
  a->req_len = (size_t)n;
  for (int attempt = 0; attempt < 3; attempt++) {
    CHECK(send(fd, req, (size_t)n, 0) == n, "send");
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, 1000) <= 0)
      continue;
    ssize_t r = recv(fd, a->buf, sizeof a->buf, 0);
    CHECK(r > 0, "recv");
    a->len = (size_t)r;
    CHECK(ck_msg_parse(&a->m, a->buf, a->len) == 0, "parse");
    CHECK(a->m.mid == mid, "mid %u, want %u", a->m.mid, mid);
    return;
  }
  CHECK(0, "no answer to GET /%s", path);
}

/* The answer is a 4.01 with an Echo within 3x the request; its Echo is
 * copied out. */
static void challenged(const struct answer *a, uint8_t *echo, size_t *len,
                       const char *what)
{
  CHECK(a->m.code == CK_UNAUTHORIZED, "%s: code %u.%02u, want 4.01", what,
        CK_CODE_CLASS(a->m.code), CK_CODE_DETAIL(a->m.code));
  CHECK(a->len <= 3 * a->req_len, "%s: %zu bytes answer %zu", what, a->len,
        a->req_len);
  struct ck_opt o;
  CHECK(ck_msg_opt(&a->m, CK_OPT_ECHO, &o) == 0, "%s: no Echo", what);
  CHECK(o.len >= 1 && o.len <= 40, "%s: Echo of %u bytes", what, o.len);
  memcpy(echo, o.val, o.len);
  *len = o.len;
  printf("ok - %s: 4.01 with a %u-byte Echo, %zu bytes for a %zu-byte "
         "request\n",
         what, o.len, a->len, a->req_len);
}

int main(int argc, char **argv)
{
  CHECK(argc == 2, "usage: integ_echo_raw PORT");
  char s[64];
  snprintf(s, sizeof s, "127.0.0.1:%s", argv[1]);
  CHECK(ck_addr_parse(&server, s, 5683) == 0, "address %s", s);
  struct answer a;
  uint8_t echo[40], echo2[40];
  size_t elen, elen2;

  /* A small answer is not held back. */
  int fd0 = fresh_source();
  get(fd0, "hello", NULL, 0, -1, &a);
  CHECK(a.m.code == CK_CONTENT, "GET /hello: %02x", a.m.code);
  printf("ok - GET /hello from a new source: 2.05 at once (%zu bytes)\n",
         a.len);
  close(fd0);

  int fd = fresh_source();
  get(fd, ".well-known/core", NULL, 0, -1, &a);
  challenged(&a, echo, &elen, "GET /.well-known/core from a new source");

  /* Forged: one bit of the value changed. */
  uint8_t forged[40];
  memcpy(forged, echo, elen);
  forged[elen - 1] ^= 0x01;
  get(fd, ".well-known/core", forged, elen, -1, &a);
  challenged(&a, echo2, &elen2, "the same with a forged Echo");

  /* Made for another source: not accepted from this one. */
  int other = fresh_source();
  get(other, ".well-known/core", echo, elen, -1, &a);
  challenged(&a, echo2, &elen2, "another source sending this one's Echo");
  close(other);

  /* The right one: the whole representation, block by block. */
  get(fd, ".well-known/core", echo, elen, -1, &a);
  CHECK(a.m.code == CK_CONTENT, "with Echo: %02x", a.m.code);
  uint32_t size2 = 0, b2;
  size_t total = a.m.payload_len;
  char body[16384];
  CHECK(total <= sizeof body, "payload");
  memcpy(body, a.m.payload, total);
  bool sliced = ck_msg_opt_uint(&a.m, CK_OPT_BLOCK2, &b2) == 0;
  if (sliced)
    CHECK(ck_msg_opt_uint(&a.m, CK_OPT_SIZE2, &size2) == 0, "no Size2");
  struct ck_block blk;
  for (int num = 1; sliced && num < 16; num++) {
    CHECK(ck_block_decode(b2, &blk) == 0, "Block2");
    if (!blk.more)
      break;
    /* Verified now: later blocks need no Echo. */
    get(fd, ".well-known/core", NULL, 0, num, &a);
    CHECK(a.m.code == CK_CONTENT, "block %d: %02x", num, a.m.code);
    CHECK(total + a.m.payload_len <= sizeof body, "too long");
    memcpy(body + total, a.m.payload, a.m.payload_len);
    total += a.m.payload_len;
    CHECK(ck_msg_opt_uint(&a.m, CK_OPT_BLOCK2, &b2) == 0, "no Block2");
  }
  CHECK(!sliced || total == size2, "%zu bytes, Size2 %u", total, size2);
  CHECK(memmem(body, total, "</hello>", 8) != NULL, "no </hello> link");
  printf("ok - with its Echo: 2.05, %zu bytes of links%s\n", total,
         sliced ? " in blocks" : "");

  /* The source stays verified: a plain request is answered. */
  get(fd, ".well-known/core", NULL, 0, -1, &a);
  CHECK(a.m.code == CK_CONTENT, "verified source: %02x", a.m.code);
  printf("ok - the verified source asks again without Echo: 2.05\n");
  close(fd);

  /* Expired: coapd's echo_fresh_ms is 1000. */
  fd = fresh_source();
  get(fd, ".well-known/core", NULL, 0, -1, &a);
  challenged(&a, echo, &elen, "a third source");
  struct timespec ts = {.tv_sec = 1, .tv_nsec = 300 * 1000000L};
  nanosleep(&ts, NULL);
  get(fd, ".well-known/core", echo, elen, -1, &a);
  challenged(&a, echo2, &elen2, "its Echo 1.3 s later (expired)");
  get(fd, ".well-known/core", echo2, elen2, -1, &a);
  CHECK(a.m.code == CK_CONTENT, "fresh Echo: %02x", a.m.code);
  printf("ok - the new Echo at once: 2.05\n");
  close(fd);
  return 0;
}
