/* Pub/sub clients that a polite test would not be: raw UDP sockets
 * against a running coapd, each scenario checked on the wire.
 *
 * - NAT rebinding: a connection-mode client subscribes from one address,
 *   then sends its heartbeat from another; the next notification arrives
 *   at the new address and not at the old one.
 * - A slow subscriber never acknowledges its CON notifications while a
 *   publisher sends 300 messages: a second subscriber gets all of them in
 *   order, the slow one gets exactly one (the CON in flight), and coapd
 *   answers every publish at once.
 * - An RST to a notification ends the subscription: the next publish
 *   notifies nobody at that address.
 * - The Content-Format of the publisher reaches the subscriber.
 *
 * Usage: pubsub_peers PORT (coapd on 127.0.0.1:PORT, connectionless
 * mode, no users). Exits 0 when every check passed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <coapkit/coapkit.h>

static struct sockaddr_in srv;
static int failures;
static uint16_t next_mid = 0x4000;

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                   \
      fprintf(stderr, __VA_ARGS__);                                          \
      fprintf(stderr, "\n");                                                 \
      failures++;                                                            \
    }                                                                        \
  } while (0)

static int sock(void)
{
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&srv, sizeof srv) < 0) {
    perror("socket");
    exit(2);
  }
  return fd;
}

/* Sends a request: path segments split at '/', then query strings
 * (NULL-terminated list), an optional Observe and Content-Format. */
static uint16_t send_req(int fd, uint8_t type, uint8_t code, const char *tok,
                         const char *path, int observe, int cf,
                         const char *payload, ...)
{
  uint8_t buf[1400];
  struct ck_builder b;
  uint16_t mid = next_mid++;
  ck_builder_init(&b, buf, sizeof buf, type, code, mid);
  if (tok)
    ck_builder_token(&b, tok, strlen(tok));
  if (observe >= 0)
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, (uint32_t)observe);
  char p[256];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p, *e; s; s = e) {
    e = strchr(s, '/');
    if (e)
      *e++ = '\0';
    ck_builder_opt_str(&b, CK_OPT_URI_PATH, s);
  }
  if (cf >= 0)
    ck_builder_opt_uint(&b, CK_OPT_CONTENT_FORMAT, (uint32_t)cf);
  va_list ap;
  va_start(ap, payload);
  for (const char *q; (q = va_arg(ap, const char *)) != NULL;)
    ck_builder_opt_str(&b, CK_OPT_URI_QUERY, q);
  va_end(ap);
  if (payload)
    ck_builder_payload(&b, payload, strlen(payload));
  int n = ck_builder_finish(&b);
  if (n < 0 || send(fd, buf, (size_t)n, 0) != n) {
    perror("send");
    exit(2);
  }
  return mid;
}

static uint8_t rxbuf[2048];
static struct ck_msg rx;

/* The next datagram on fd within ms, parsed into rx; false if none. */
static bool recv_msg(int fd, int ms)
{
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, ms) <= 0)
    return false;
  ssize_t n = recv(fd, rxbuf, sizeof rxbuf, 0);
  return n > 0 && ck_msg_parse(&rx, rxbuf, (size_t)n) == 0;
}

static void send_empty(int fd, uint8_t type, uint16_t mid)
{
  uint8_t m[4] = {(uint8_t)(0x40 | (type << 4)), 0, (uint8_t)(mid >> 8),
                  (uint8_t)mid};
  if (send(fd, m, 4, 0) != 4)
    exit(2);
}

/* Waits for the answer to mid (skipping notifications, which it ACKs
 * when CON) and returns its code, or 0. */
static uint8_t answer(int fd, uint16_t mid)
{
  for (int i = 0; i < 50; i++) {
    if (!recv_msg(fd, 2000))
      return 0;
    if (rx.type == CK_TYPE_ACK && rx.mid == mid)
      return rx.code;
    if (rx.type == CK_TYPE_CON)
      send_empty(fd, CK_TYPE_ACK, rx.mid);
  }
  return 0;
}

static bool payload_is(const char *s)
{
  return rx.payload_len == strlen(s) && memcmp(rx.payload, s, strlen(s)) == 0;
}

static void nat_rebinding(void)
{
  int a = sock(), b = sock();
  uint16_t mid = send_req(a, CK_TYPE_CON, CK_POST, "c1", "mqtt/connection",
                          -1, -1, NULL, "clientid=nat1", NULL);
  CHECK(answer(a, mid) == CK_CREATED, "connection not created");
  char token[64] = "", qt[80];
  snprintf(token, sizeof token, "%.*s", (int)rx.payload_len,
           (const char *)rx.payload);
  snprintf(qt, sizeof qt, "token=%s", token);
  mid = send_req(a, CK_TYPE_CON, CK_GET, "s1", "ps/nat/t", 0, -1, NULL,
                 "clientid=nat1", qt, NULL);
  CHECK(answer(a, mid) == CK_CONTENT, "subscribe from A failed");
  /* The heartbeat from B: the NAT gave the client a new port. */
  mid = send_req(b, CK_TYPE_CON, CK_PUT, "h1", "mqtt/connection", -1, -1,
                 NULL, "clientid=nat1", qt, NULL);
  CHECK(answer(b, mid) == CK_CHANGED, "heartbeat from B refused");
  int pub = sock();
  mid = send_req(pub, CK_TYPE_CON, CK_POST, "p1", "ps/nat/t", -1, 0, "moved",
                 NULL);
  CHECK(answer(pub, mid) == CK_CHANGED, "publish refused");
  CHECK(recv_msg(b, 2000) && payload_is("moved") &&
          rx.tkl == 2 && memcmp(rx.token, "s1", 2) == 0,
        "no notification at the new address");
  if (rx.type == CK_TYPE_CON)
    send_empty(b, CK_TYPE_ACK, rx.mid);
  CHECK(!recv_msg(a, 300), "a notification still went to the old address");
  close(a);
  close(b);
  close(pub);
  printf("ok - NAT rebinding: the subscription followed the client\n");
}

/* The notification in rx reached fd: ACK it, and check that it is
 * message m<*got>. */
static void take_note(int fd, int *got, int *in_order)
{
  if (rx.type == CK_TYPE_CON)
    send_empty(fd, CK_TYPE_ACK, rx.mid);
  char want[16];
  snprintf(want, sizeof want, "m%d", *got);
  if (!payload_is(want))
    *in_order = 0;
  (*got)++;
}

static void slow_subscriber(void)
{
  int slow = sock(), fast = sock(), pub = sock();
  uint16_t mid = send_req(slow, CK_TYPE_CON, CK_GET, "sl", "ps/flow/t", 0,
                          -1, NULL, "qos=1", NULL);
  CHECK(answer(slow, mid) == CK_CONTENT, "slow subscribe failed");
  mid = send_req(fast, CK_TYPE_CON, CK_GET, "fa", "ps/flow/t", 0, -1, NULL,
                 "qos=1", NULL);
  CHECK(answer(fast, mid) == CK_CONTENT, "fast subscribe failed");
  enum { N = 300 };
  int got = 0, in_order = 1, answered = 0;
  for (int i = 0; i < N; i++) {
    char p[16];
    snprintf(p, sizeof p, "m%d", i);
    mid = send_req(pub, CK_TYPE_CON, CK_POST, "pp", "ps/flow/t", -1, 0, p,
                   NULL);
    if (answer(pub, mid) == CK_CHANGED)
      answered++;
    /* The fast subscriber acknowledges everything that has arrived. */
    while (recv_msg(fast, got < i ? 50 : 0))
      take_note(fast, &got, &in_order);
  }
  while (got < N && recv_msg(fast, 1000))
    take_note(fast, &got, &in_order);
  CHECK(answered == N, "%d of %d publishes answered 2.04", answered, N);
  CHECK(got == N && in_order, "fast subscriber got %d of %d (order %s)", got,
        N, in_order ? "kept" : "broken");
  /* The slow one: the first CON (and its retransmissions), nothing
   * else while it stays unacknowledged. */
  int distinct = 0;
  uint16_t first_mid = 0;
  while (recv_msg(slow, 100)) {
    if (rx.type == CK_TYPE_CON && (distinct == 0 || rx.mid != first_mid)) {
      first_mid = rx.mid;
      distinct++;
    }
  }
  CHECK(distinct == 1, "slow subscriber got %d distinct CONs, expected 1",
        distinct);
  close(slow);
  close(fast);
  close(pub);
  printf("ok - a slow subscriber: %d/%d in order to the other, one CON in "
         "flight to it\n", got, N);
}

static void reset_ends(void)
{
  int s = sock(), pub = sock();
  uint16_t mid = send_req(s, CK_TYPE_CON, CK_GET, "rs", "ps/rst/t", 0, -1,
                          NULL, "qos=0", NULL);
  CHECK(answer(s, mid) == CK_CONTENT, "subscribe failed");
  mid = send_req(pub, CK_TYPE_CON, CK_POST, "pp", "ps/rst/t", -1, 50,
                 "{\"v\":1}", NULL);
  CHECK(answer(pub, mid) == CK_CHANGED, "publish refused");
  CHECK(recv_msg(s, 2000) && rx.type == CK_TYPE_NON && payload_is("{\"v\":1}"),
        "no NON notification for qos=0");
  uint32_t cf = 0;
  CHECK(ck_msg_opt_uint(&rx, CK_OPT_CONTENT_FORMAT, &cf) == 0 && cf == 50,
        "the publisher's Content-Format (50) was not carried");
  send_empty(s, CK_TYPE_RST, rx.mid);
  usleep(100000);
  mid = send_req(pub, CK_TYPE_CON, CK_POST, "pp", "ps/rst/t", -1, 0, "again",
                 NULL);
  CHECK(answer(pub, mid) == CK_CHANGED, "publish refused");
  CHECK(!recv_msg(s, 500), "a notification after the RST");
  close(s);
  close(pub);
  printf("ok - Content-Format carried; an RST ends the subscription\n");
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: pubsub_peers PORT\n");
    return 2;
  }
  srv.sin_family = AF_INET;
  srv.sin_port = htons((uint16_t)atoi(argv[1]));
  srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  nat_rebinding();
  slow_subscriber();
  reset_ends();
  return failures ? 1 : 0;
}
