/* A CoAP server that answers wrongly on purpose, to test that a client
 * refuses what RFC 7252 and RFC 9175 tell it to refuse.
 *
 * It listens on 127.0.0.1 (a port the kernel picks, printed as the first
 * line "port N"), and the request's Uri-Path picks the misbehaviour:
 *
 *   token       piggybacked 2.05 whose token differs (§5.3.2), always
 *   token-late  the same first, the right answer to the retransmission
 *   crit        piggybacked 2.05 with option 9 (critical, §5.4.1) first,
 *               the right answer to the retransmission
 *   crit-sep    empty ACK, a separate CON 2.05 with option 9, then (after
 *               the client's RST or 500 ms) a right separate response
 *   crit-non    to a NON request: NON 2.05 with option 9, then the same
 *               right after the client's RST or 500 ms
 *   ack-req     an ACK carrying the request code 0.01 (§4.2) first, the
 *               right answer to the retransmission
 *   rst-full    an RST carrying a code, token and payload (§4.3) first,
 *               the right answer to the retransmission
 *   echo        4.01 with Echo until a request carries it (RFC 9175
 *               §2.3); then 2.05 "fresh:" + the payload, if the repeated
 *               request has the first one's options and payload
 *   echo-twice  4.01 with a new Echo each time
 *   echo-big    4.01 with Echo, then a 3000-byte body with Block2 for
 *               requests that carry it
 *   echo-up     4.01 with Echo, then a Block1 upload with it: 2.31 for
 *               each block, 2.04 "got:LEN:SUM" at the end
 *
 * Right answers carry the payload "good" (or the scenario's). Every
 * event is a line on stdout for the test to check. The process ends on
 * SIGTERM or after 300 s.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coapkit/coapkit.h"

enum { MAX_SEEN = 256, BIG_LEN = 3000 };

static const char ECHO_VAL[] = "e-1234";

static int fd;
static struct ck_addr client;
static volatile sig_atomic_t stop;
static uint16_t next_mid = 0x4000;

/* Message IDs seen, to tell a retransmission from a new request. */
static struct {
  uint16_t mid[MAX_SEEN];
  unsigned n;
} seen;

static bool seen_before(uint16_t mid)
{
  unsigned n = seen.n < MAX_SEEN ? seen.n : MAX_SEEN;
  for (unsigned i = 0; i < n; i++)
    if (seen.mid[i] == mid)
      return true;
  seen.mid[seen.n++ % MAX_SEEN] = mid;
  return false;
}

/* The first request of the echo scenario, to compare the repeat with. */
static uint8_t first_req[1600];
static size_t first_req_len;
static unsigned twice_count;
static char echo_twice_val[16];

/* The Block1 upload of echo-up. */
static size_t up_len;
static unsigned long up_sum;

static void on_term(int sig)
{
  (void)sig;
  stop = 1;
}

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct out {
  uint8_t type, code;
  uint16_t mid;
  const uint8_t *tok;
  size_t tkl;
  const char *payload;
  size_t payload_len;
  bool crit9;
  const char *echo;
  int block2; /* -1: none */
  int block1; /* -1: none */
};

static void send_out(const struct out *o)
{
  uint8_t buf[1600];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, o->type, o->code, o->mid);
  ck_builder_token(&b, o->tok, o->tkl);
  if (o->crit9)
    ck_builder_opt(&b, CK_OPT_OSCORE, "\x09", 1);
  if (o->code && o->payload)
    ck_builder_opt_uint(&b, CK_OPT_CONTENT_FORMAT, 0);
  if (o->block2 >= 0)
    ck_builder_opt_uint(&b, CK_OPT_BLOCK2, (uint32_t)o->block2);
  if (o->block1 >= 0)
    ck_builder_opt_uint(&b, CK_OPT_BLOCK1, (uint32_t)o->block1);
  if (o->echo)
    ck_builder_opt_str(&b, CK_OPT_ECHO, o->echo);
  if (o->payload)
    ck_builder_payload(&b, o->payload, o->payload_len);
  int n = ck_builder_finish(&b);
  if (n < 0) {
    printf("build-error %d\n", n);
    return;
  }
  if (sendto(fd, buf, (size_t)n, 0, &client.u.sa, client.len) != n)
    printf("send-error\n");
}

/* Waits up to ms for the client's RST or ACK for mid; logs it. */
static void await_reply(uint16_t mid, const char *what, int ms)
{
  uint64_t end = now_ms() + (uint64_t)ms;
  while (!stop) {
    uint64_t t = now_ms();
    if (t >= end)
      break;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)(end - t)) <= 0)
      continue;
    uint8_t buf[1600];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    struct ck_msg m;
    if (n <= 0 || ck_msg_parse(&m, buf, (size_t)n) < 0)
      continue;
    if (m.mid == mid && (m.type == CK_TYPE_RST || m.type == CK_TYPE_ACK)) {
      printf("%s-for-%s\n", m.type == CK_TYPE_RST ? "rst" : "ack", what);
      return;
    }
    printf("ignored type %u mid %u while waiting\n", m.type, m.mid);
  }
  printf("nothing-for-%s\n", what);
}

static void path_of(const struct ck_msg *m, char *buf, size_t cap)
{
  struct ck_opt_iter it;
  struct ck_opt o;
  size_t n = 0;
  buf[0] = '\0';
  ck_opt_iter_init(&it, m);
  while (ck_opt_next(&it, &o))
    if (o.num == CK_OPT_URI_PATH && n + o.len + 2 < cap) {
      if (n)
        buf[n++] = '/';
      memcpy(buf + n, o.val, o.len);
      n += o.len;
      buf[n] = '\0';
    }
}

/* The request's options other than Echo, Block1, Size1 and Observe, and
 * its payload: what a repeated request must carry again. */
static bool same_request(const struct ck_msg *a, const struct ck_msg *b)
{
  struct ck_opt_iter ia, ib;
  struct ck_opt oa, ob;
  ck_opt_iter_init(&ia, a);
  ck_opt_iter_init(&ib, b);
  for (;;) {
    bool ha, hb;
    do
      ha = ck_opt_next(&ia, &oa);
    while (ha && oa.num == CK_OPT_ECHO);
    do
      hb = ck_opt_next(&ib, &ob);
    while (hb && ob.num == CK_OPT_ECHO);
    if (ha != hb)
      return false;
    if (!ha)
      break;
    if (oa.num != ob.num || oa.len != ob.len ||
        (oa.len && memcmp(oa.val, ob.val, oa.len) != 0))
      return false;
  }
  return a->code == b->code && a->payload_len == b->payload_len &&
         (a->payload_len == 0 ||
          memcmp(a->payload, b->payload, a->payload_len) == 0);
}

static bool has_echo(const struct ck_msg *m, const char *val)
{
  struct ck_opt e;
  return ck_msg_opt(m, CK_OPT_ECHO, &e) == 0 && e.len == strlen(val) &&
         memcmp(e.val, val, e.len) == 0;
}

static void big_body(char *out)
{
  for (size_t i = 0; i < BIG_LEN; i++)
    out[i] = (char)('a' + i % 26);
}

static void handle(const struct ck_msg *m)
{
  char path[128];
  path_of(m, path, sizeof path);
  bool retrans = seen_before(m->mid);
  bool con = m->type == CK_TYPE_CON;
  printf("req %s type %s mid %u%s%s\n", path, ck_type_name(m->type), m->mid,
         retrans ? " retransmission" : "",
         ck_msg_opt_count(m, CK_OPT_ECHO) ? " echo" : "");
  struct out o = {.type = CK_TYPE_ACK,
                  .code = CK_CONTENT,
                  .mid = m->mid,
                  .tok = m->token,
                  .tkl = m->tkl,
                  .payload = "good",
                  .payload_len = 4,
                  .block1 = -1,
                  .block2 = -1};
  uint8_t other[8];
  if (!strcmp(path, "token") || (!strcmp(path, "token-late") && !retrans)) {
    for (size_t i = 0; i < 8; i++)
      other[i] = (uint8_t)((i < m->tkl ? m->token[i] : 0) ^ 0x5a);
    o.tok = other;
    o.tkl = m->tkl ? m->tkl : 4;
    o.payload = "forged";
    o.payload_len = 6;
  } else if (!strcmp(path, "token-late")) {
    o.payload = "right";
    o.payload_len = 5;
  } else if (!strcmp(path, "crit") && !retrans) {
    o.crit9 = true;
    o.payload = "bad";
    o.payload_len = 3;
  } else if (!strcmp(path, "crit-sep") && con) {
    if (retrans) {
      o.code = CK_CODE_EMPTY;
      o.tkl = 0;
      o.payload = NULL;
      send_out(&o);
      return;
    }
    struct out ack = {.type = CK_TYPE_ACK, .mid = m->mid, .block1 = -1,
                      .block2 = -1};
    send_out(&ack);
    o.type = CK_TYPE_CON;
    o.mid = next_mid++;
    o.crit9 = true;
    o.payload = "bad";
    o.payload_len = 3;
    send_out(&o);
    await_reply(o.mid, "bad", 500);
    o.mid = next_mid++;
    o.crit9 = false;
    o.payload = "good";
    o.payload_len = 4;
    send_out(&o);
    await_reply(o.mid, "good", 500);
    return;
  } else if (!strcmp(path, "crit-non") && !con) {
    o.type = CK_TYPE_NON;
    o.mid = next_mid++;
    o.crit9 = true;
    o.payload = "bad";
    o.payload_len = 3;
    send_out(&o);
    await_reply(o.mid, "bad", 500);
    o.mid = next_mid++;
    o.crit9 = false;
    o.payload = "good";
    o.payload_len = 4;
    send_out(&o);
    return;
  } else if (!strcmp(path, "ack-req") && !retrans) {
    o.code = CK_GET;
    o.payload = NULL;
  } else if (!strcmp(path, "rst-full") && !retrans) {
    o.type = CK_TYPE_RST;
  } else if (!strcmp(path, "echo")) {
    if (!has_echo(m, ECHO_VAL)) {
      if ((size_t)m->len <= sizeof first_req) {
        memcpy(first_req, m->data, m->len);
        first_req_len = m->len;
      }
      printf("echo-demanded\n");
      o.code = CK_UNAUTHORIZED;
      o.echo = ECHO_VAL;
      o.payload = NULL;
    } else {
      struct ck_msg f;
      bool same = first_req_len &&
                  ck_msg_parse(&f, first_req, first_req_len) == 0 &&
                  same_request(&f, m);
      printf("echo-repeat same-request %s token %s\n", same ? "yes" : "no",
             f.tkl == m->tkl && !memcmp(f.token, m->token, m->tkl) ? "same"
                                                                   : "new");
      static char buf[256];
      int n = snprintf(buf, sizeof buf, "fresh:%.*s", (int)m->payload_len,
                       (const char *)m->payload);
      o.payload = buf;
      o.payload_len = (size_t)n;
      if (!same)
        o.code = CK_BAD_REQUEST;
    }
  } else if (!strcmp(path, "echo-twice")) {
    twice_count++;
    printf("echo-twice %u\n", twice_count);
    snprintf(echo_twice_val, sizeof echo_twice_val, "t-%u", twice_count);
    o.code = CK_UNAUTHORIZED;
    o.echo = echo_twice_val;
    o.payload = "again";
    o.payload_len = 5;
  } else if (!strcmp(path, "echo-big")) {
    uint32_t v = 0;
    struct ck_block blk = {.num = 0, .szx = 6};
    if (ck_msg_opt_uint(m, CK_OPT_BLOCK2, &v) == 0)
      ck_block_decode(v, &blk);
    if (!has_echo(m, ECHO_VAL)) {
      printf("echo-big block %u no-echo\n", blk.num);
      o.code = CK_UNAUTHORIZED;
      o.echo = ECHO_VAL;
      o.payload = NULL;
    } else {
      static char body[BIG_LEN];
      big_body(body);
      size_t bs = CK_BLOCK_SIZE(blk.szx), off = (size_t)blk.num * bs;
      if (off >= BIG_LEN) {
        o.code = CK_BAD_OPTION;
        o.payload = NULL;
      } else {
        blk.more = off + bs < BIG_LEN;
        uint32_t enc;
        ck_block_encode(&blk, &enc);
        o.block2 = (int)enc;
        o.payload = body + off;
        o.payload_len = blk.more ? bs : BIG_LEN - off;
        printf("echo-big block %u echo\n", blk.num);
      }
    }
  } else if (!strcmp(path, "echo-up")) {
    uint32_t v = 0;
    struct ck_block blk = {.num = 0};
    bool b1 = ck_msg_opt_uint(m, CK_OPT_BLOCK1, &v) == 0 &&
              ck_block_decode(v, &blk) == 0;
    if (!has_echo(m, ECHO_VAL)) {
      printf("echo-up block %u no-echo\n", blk.num);
      o.code = CK_UNAUTHORIZED;
      o.echo = ECHO_VAL;
      o.payload = NULL;
    } else {
      printf("echo-up block %u echo\n", blk.num);
      if (!b1 || blk.num == 0) {
        up_len = 0;
        up_sum = 0;
      }
      if (!retrans)
        for (size_t i = 0; i < m->payload_len; i++) {
          up_sum += m->payload[i];
          up_len++;
        }
      static char buf[64];
      o.payload = NULL;
      if (b1) {
        uint32_t enc;
        ck_block_encode(&blk, &enc);
        o.block1 = (int)enc;
      }
      if (b1 && blk.more) {
        o.code = CK_CONTINUE;
      } else {
        int n = snprintf(buf, sizeof buf, "got:%zu:%lu", up_len, up_sum);
        o.code = CK_CHANGED;
        o.payload = buf;
        o.payload_len = (size_t)n;
      }
    }
  }
  if (!con && o.type == CK_TYPE_ACK) {
    o.type = CK_TYPE_NON;
    o.mid = next_mid++;
  }
  send_out(&o);
}

int main(void)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct ck_addr a;
  ck_addr_parse(&a, "127.0.0.1:0", 0);
  if (fd < 0 || bind(fd, &a.u.sa, a.len) != 0) {
    perror("bind");
    return 1;
  }
  a.len = sizeof a.u;
  getsockname(fd, &a.u.sa, &a.len);
  printf("port %u\n", ck_addr_port(&a));
  uint64_t end = now_ms() + 300000;
  while (!stop && now_ms() < end) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 200) <= 0)
      continue;
    uint8_t buf[1600];
    client.len = sizeof client.u;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, &client.u.sa, &client.len);
    struct ck_msg m;
    if (n <= 0 || ck_msg_parse(&m, buf, (size_t)n) < 0)
      continue;
    if (m.type == CK_TYPE_ACK || m.type == CK_TYPE_RST) {
      printf("%s mid %u\n", ck_type_name(m.type), m.mid);
      continue;
    }
    if (CK_CODE_CLASS(m.code) == 0 && m.code != CK_CODE_EMPTY)
      handle(&m);
  }
  close(fd);
  return 0;
}
