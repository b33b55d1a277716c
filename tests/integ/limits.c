/* Limits with clear answers (issue 13, part 4): fills each cap of a real
 * coapd over loopback and checks the answer the client sees, the counter
 * an operator sees at /metrics, and that reaped state is given back.
 *
 * coapd_limits.sh starts coapd --demo with small caps (its coapd.conf
 * names them) and /metrics on, then runs this program. Requests are
 * built with the library's codec and sent from plain UDP sockets bound
 * to chosen loopback addresses (127.0.0.0/8 is all ours on Linux), since
 * the server counts a peer by its IP address:
 *
 * 1. observers per resource: ten GETs with Observe=0 on /time from ten
 *    addresses register; the eleventh is answered as a plain GET, 2.05
 *    without Observe (RFC 7641 §4.1: a server that will not add an
 *    observer falls back to a normal GET), and the counter rises;
 * 2. observers per peer: four from one address register on /obs, the
 *    fifth falls back likewise, another address still registers;
 * 3. peers and stalled uploads: twelve addresses each start a Block1 PUT
 *    of /large-update and stop after 64 KiB; a thirteenth address gets
 *    5.03 with Max-Age (max_peers);
 * 4. reassembly bytes: a second upload of a held peer grows until all
 *    uploads would hold more than max_upload_bytes, and gets 5.03 with
 *    Max-Age at exactly the block where that happens;
 * 5. uploads per peer: a peer's third concurrent upload gets 5.03;
 * 6. the stalled uploads are reaped after upload_idle_ms: the gauges of
 *    uploads, their bytes and peers fall to 0, uploads_expired counts
 *    them, and a new peer can upload again; a second round of the same
 *    must leave coapd's VmRSS where the first left it;
 * 7. connection-mode sessions: the third of max_sessions = 2 gets 5.03;
 * 8. queued notifications: a pub/sub subscriber with CON notifications
 *    that never acknowledges; ten publishes leave max_queued_notes = 5
 *    queued and drop the other five (counted).
 *
 * VmRSS of coapd is read before, at the peak of the uploads and after
 * each reap, and printed. Every wait is bounded. Usage: integ_limits PORT
 * PID METRICS_PORT. Exit 0 when every check holds.
 */
#include <errno.h>
#include <poll.h>
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

/* What coapd_limits.sh's coapd.conf sets. */
enum {
  PER_RESOURCE = 10,
  PER_PEER_OBS = 4,
  MAX_PEERS = 12,
  UPLOADS_PER_PEER = 2,
  UPLOAD_BYTES = 1 << 20,
  IDLE_MS = 6000,
  MAX_SESSIONS = 2,
  MAX_QUEUED = 5
};

enum { BLK = 1024, SZX = 6, STALL_BLOCKS = 64, WAIT_MS = 2000 };

static uint16_t port, mport;
static int pid;
static unsigned checks, failures;
static uint16_t next_mid = 0x2000;

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
  fflush(stdout);
}

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A UDP socket bound to 127.0.0.<host>, connected to coapd. */
static int sock_from(unsigned host)
{
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(0x7f000000u | host);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
    perror("limits: socket");
    exit(2);
  }
  return fd;
}

/* One request and what it needs. */
struct rq {
  uint8_t code;
  const char *path;  /* segments split at '/' */
  const char *query; /* one Uri-Query, or NULL */
  int observe;       /* -1: none */
  const char *token;
  bool block1;
  uint32_t num;
  bool more;
  const void *payload;
  size_t len;
};

/* The answer: the parsed message points into buf. */
struct ans {
  uint8_t buf[1500];
  struct ck_msg m;
};

/* Sends r as a CON and waits for its piggybacked answer (ACK with the
 * same Message ID), skipping anything else (notifications); sends again
 * up to three times. Returns 0, or -1 when no answer came. */
static int request(int fd, const struct rq *r, struct ans *a)
{
  uint8_t out[1500];
  struct ck_builder b;
  uint16_t mid = next_mid++;
  ck_builder_init(&b, out, sizeof out, CK_TYPE_CON, r->code, mid);
  ck_builder_token(&b, r->token, strlen(r->token));
  if (r->observe >= 0)
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, (uint32_t)r->observe);
  char seg[8][32];
  const char *p = r->path;
  for (unsigned i = 0; *p && i < 8; i++) {
    size_t n = strcspn(p, "/");
    if (n >= sizeof seg[i])
      n = sizeof seg[i] - 1;
    memcpy(seg[i], p, n);
    seg[i][n] = '\0';
    ck_builder_opt_str(&b, CK_OPT_URI_PATH, seg[i]);
    p += n + (p[n] == '/');
  }
  if (r->query)
    ck_builder_opt_str(&b, CK_OPT_URI_QUERY, r->query);
  if (r->block1) {
    struct ck_block blk = {.num = r->num, .more = r->more, .szx = SZX};
    uint32_t v;
    ck_block_encode(&blk, &v);
    ck_builder_opt_uint(&b, CK_OPT_BLOCK1, v);
  }
  ck_builder_payload(&b, r->payload, r->len);
  int n = ck_builder_finish(&b);
  if (n < 0) {
    fprintf(stderr, "limits: build: %s\n", ck_strerror(n));
    exit(2);
  }
  for (int attempt = 0; attempt < 3; attempt++) {
    if (send(fd, out, (size_t)n, 0) < 0) {
      perror("limits: send");
      exit(2);
    }
    long long end = now_ms() + WAIT_MS;
    for (long long left; (left = end - now_ms()) > 0;) {
      struct pollfd pf = {.fd = fd, .events = POLLIN};
      if (poll(&pf, 1, (int)left) <= 0)
        break;
      ssize_t k = recv(fd, a->buf, sizeof a->buf, 0);
      if (k <= 0 || ck_msg_parse(&a->m, a->buf, (size_t)k) < 0)
        continue;
      if (a->m.type == CK_TYPE_ACK && a->m.mid == mid)
        return 0;
    }
  }
  return -1;
}

static bool has_opt(const struct ck_msg *m, uint16_t num)
{
  return ck_msg_opt_count(m, num) > 0;
}

static char *code_str(uint8_t c, char *buf)
{
  ck_code_format(buf, 8, c);
  return buf;
}

/* The value of a /metrics sample: name with its labels, as written
 * after "coapd_". Fetched with one HTTP/1.0 GET; -1 when absent. */
static long long metric(const char *name)
{
  static char body[1 << 17];
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(mport)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("limits: metrics");
    exit(2);
  }
  static const char get[] = "GET /metrics HTTP/1.0\r\n\r\n";
  if (send(fd, get, sizeof get - 1, 0) < 0) {
    perror("limits: metrics");
    exit(2);
  }
  size_t len = 0;
  for (ssize_t k; len < sizeof body - 1 &&
                  (k = recv(fd, body + len, sizeof body - 1 - len, 0)) > 0;)
    len += (size_t)k;
  close(fd);
  body[len] = '\0';
  char key[160];
  snprintf(key, sizeof key, "\ncoapd_%s ", name);
  const char *at = strstr(body, key);
  return at ? strtoll(at + strlen(key), NULL, 10) : -1;
}

static long rss_kib(void)
{
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      v = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  return v;
}

/* GET with Observe=0 (or 1 to deregister); returns whether the 2.05
 * carried Observe, -1 for another answer. */
static int observe(int fd, const char *path, const char *token, int obs)
{
  struct rq r = {.code = CK_GET, .path = path, .observe = obs,
                 .token = token};
  struct ans a;
  if (request(fd, &r, &a) < 0 || a.m.code != CK_CONTENT)
    return -1;
  return has_opt(&a.m, CK_OPT_OBSERVE);
}

static void observers_per_resource(void)
{
  long long before =
    metric("observers_rejected_total{cap=\"max_observers_per_resource\"}");
  int fds[PER_RESOURCE + 1];
  int registered = 0;
  for (int i = 0; i < PER_RESOURCE; i++) {
    fds[i] = sock_from(10 + (unsigned)i);
    registered += observe(fds[i], "time", "tim", 0) == 1;
  }
  result(registered == PER_RESOURCE, "%d of %d observers of /time registered",
         registered, PER_RESOURCE);
  fds[PER_RESOURCE] = sock_from(10 + PER_RESOURCE);
  int o = observe(fds[PER_RESOURCE], "time", "tim", 0);
  result(o == 0, "observer %d of /time: 2.05 without Observe (RFC 7641 "
         "4.1), got %d", PER_RESOURCE + 1, o);
  long long after =
    metric("observers_rejected_total{cap=\"max_observers_per_resource\"}");
  result(before == 0 && after == 1,
         "observers_rejected_total{cap=max_observers_per_resource} %lld -> "
         "%lld", before, after);
  for (int i = 0; i < PER_RESOURCE; i++)
    observe(fds[i], "time", "tim", 1);
  for (int i = 0; i <= PER_RESOURCE; i++)
    close(fds[i]);
  long long g = metric("observers");
  result(g == 0, "after deregistration: observers %lld", g);
}

static void observers_per_peer(void)
{
  int fd = sock_from(2), other = sock_from(3);
  static const char *tok[] = {"p0", "p1", "p2", "p3", "p4"};
  int registered = 0;
  for (int i = 0; i < PER_PEER_OBS; i++)
    registered += observe(fd, "obs", tok[i], 0) == 1;
  result(registered == PER_PEER_OBS,
         "%d of %d observers of 127.0.0.2 registered", registered,
         PER_PEER_OBS);
  int o = observe(fd, "obs", tok[PER_PEER_OBS], 0);
  result(o == 0, "observer %d of 127.0.0.2: 2.05 without Observe, got %d",
         PER_PEER_OBS + 1, o);
  o = observe(other, "obs", "q0", 0);
  result(o == 1, "127.0.0.3 still registers (got %d)", o);
  long long c =
    metric("observers_rejected_total{cap=\"max_observers_per_peer\"}");
  result(c == 1, "observers_rejected_total{cap=max_observers_per_peer} %lld",
         c);
  for (int i = 0; i < PER_PEER_OBS; i++)
    observe(fd, "obs", tok[i], 1);
  observe(other, "obs", "q0", 1);
  close(fd);
  close(other);
  long long g = metric("peers");
  result(g == 0, "after deregistration: peers %lld", g);
}

/* Sends blocks [from, to) of an upload of /large-update with more set.
 * Returns the number of the first block not answered 2.31, or to; *code
 * gets that answer's code and *max_age whether it had Max-Age. */
static uint32_t upload(int fd, uint32_t from, uint32_t to, uint8_t *code,
                       bool *max_age)
{
  static uint8_t chunk[BLK];
  memset(chunk, 'u', sizeof chunk);
  *code = CK_CONTINUE;
  *max_age = false;
  for (uint32_t n = from; n < to; n++) {
    struct rq r = {.code = CK_PUT, .path = "large-update", .observe = -1,
                   .token = "up", .block1 = true, .num = n, .more = true,
                   .payload = chunk, .len = BLK};
    struct ans a;
    if (request(fd, &r, &a) < 0) {
      *code = 0;
      return n;
    }
    if (a.m.code != CK_CONTINUE) {
      *code = a.m.code;
      *max_age = has_opt(&a.m, CK_OPT_MAX_AGE);
      return n;
    }
  }
  return to;
}

static long rss_before, rss_peak, rss_after;
static long long dedup_after, dedup_round2_after;

static void uploads(void)
{
  int fds[MAX_PEERS];
  uint8_t code;
  bool ma;
  char cs[8];
  unsigned stalled = 0;
  for (int i = 0; i < MAX_PEERS; i++) {
    fds[i] = sock_from(30 + (unsigned)i);
    stalled += upload(fds[i], 0, STALL_BLOCKS, &code, &ma) == STALL_BLOCKS;
  }
  result(stalled == MAX_PEERS, "%u peers hold a stalled upload of %d KiB",
         stalled, STALL_BLOCKS * BLK / 1024);
  long long held = metric("upload_bytes");
  long long exp_held = (long long)MAX_PEERS * STALL_BLOCKS * BLK;
  result(held == exp_held && metric("uploads") == MAX_PEERS &&
           metric("peers") == MAX_PEERS,
         "uploads %d, upload_bytes %lld (expected %lld), peers %d", MAX_PEERS,
         held, exp_held, MAX_PEERS);

  /* max_peers: a new address is refused. */
  int newcomer = sock_from(30 + MAX_PEERS);
  upload(newcomer, 0, 1, &code, &ma);
  result(code == CK_SERVICE_UNAVAILABLE && ma,
         "peer %d's upload: %s %s Max-Age", MAX_PEERS + 1, code_str(code, cs),
         ma ? "with" : "without");
  long long pr = metric("peers_rejected_total");
  result(pr == 1, "peers_rejected_total %lld", pr);

  /* max_upload_bytes: the buffer doubles from 4 KiB; held + 256 KiB is
   * the cap exactly, so the block that needs 512 KiB is refused. */
  uint32_t expect = (uint32_t)((UPLOAD_BYTES - exp_held) / BLK);
  int second = sock_from(30);
  uint32_t at = upload(second, 0, 1024, &code, &ma);
  result(at == expect && code == CK_SERVICE_UNAVAILABLE && ma,
         "a growing upload: %s %s Max-Age at block %u (expected %u)",
         code_str(code, cs), ma ? "with" : "without", at, expect);
  rss_peak = rss_kib();
  long long rb =
    metric("uploads_rejected_total{cap=\"max_upload_bytes\"}");
  held = metric("upload_bytes");
  result(rb == 1 && held == exp_held,
         "uploads_rejected_total{cap=max_upload_bytes} %lld; upload_bytes "
         "back to %lld", rb, held);
  close(second);

  /* max_uploads_per_peer: 127.0.0.31 holds one; a second starts, a
   * third is refused. */
  int s2 = sock_from(31), s3 = sock_from(31);
  upload(s2, 0, 1, &code, &ma);
  bool ok2 = code == CK_CONTINUE;
  upload(s3, 0, 1, &code, &ma);
  result(ok2 && code == CK_SERVICE_UNAVAILABLE && ma,
         "127.0.0.31's second upload %s, third: %s %s Max-Age",
         ok2 ? "runs" : "refused", code_str(code, cs),
         ma ? "with" : "without");
  long long rp = metric("uploads_rejected_total{cap=\"max_uploads_per_peer\"}");
  result(rp == 1, "uploads_rejected_total{cap=max_uploads_per_peer} %lld",
         rp);

  /* The reap: within upload_idle_ms plus a sweep; bounded. */
  long long t0 = now_ms(), left = -1;
  while (now_ms() - t0 < IDLE_MS + 10000) {
    left = metric("uploads");
    if (left == 0)
      break;
    usleep(100 * 1000);
  }
  long long waited = now_ms() - t0;
  long long expired = metric("uploads_expired_total");
  held = metric("upload_bytes");
  long long peers = metric("peers");
  result(left == 0 && expired == MAX_PEERS + 1 && held == 0 && peers == 0,
         "reaped after %lld ms: uploads %lld, uploads_expired_total %lld "
         "(expected %d), upload_bytes %lld, peers %lld",
         waited, left, expired, MAX_PEERS + 1, held, peers);
  rss_after = rss_kib();
  dedup_after = metric("dedup_bytes");
  upload(newcomer, 0, 1, &code, &ma);
  struct rq last = {.code = CK_PUT, .path = "large-update", .observe = -1,
                    .token = "up", .block1 = true, .num = 1, .payload = "e",
                    .len = 1};
  struct ans a;
  bool done = code == CK_CONTINUE && request(newcomer, &last, &a) == 0 &&
              a.m.code == CK_CHANGED;
  result(done, "after the reap peer %d uploads: 2.31, then 2.04",
         MAX_PEERS + 1);
  for (int i = 0; i < MAX_PEERS; i++)
    close(fds[i]);
  close(newcomer);
  close(s2);
  close(s3);
}

/* The same stalled uploads again, once their first round was reaped:
 * coapd's memory must come back to where the first round left it. */
static long rss_round2_peak, rss_round2_after;

static void stall_again(void)
{
  int fds[MAX_PEERS];
  uint8_t code;
  bool ma;
  unsigned stalled = 0;
  long long expired0 = metric("uploads_expired_total");
  for (int i = 0; i < MAX_PEERS; i++) {
    fds[i] = sock_from(30 + (unsigned)i);
    stalled += upload(fds[i], 0, STALL_BLOCKS, &code, &ma) == STALL_BLOCKS;
  }
  long long held = metric("upload_bytes");
  rss_round2_peak = rss_kib();
  long long t0 = now_ms(), left = -1;
  while (now_ms() - t0 < IDLE_MS + 10000) {
    left = metric("uploads");
    if (left == 0)
      break;
    usleep(100 * 1000);
  }
  long long expired = metric("uploads_expired_total") - expired0;
  rss_round2_after = rss_kib();
  dedup_round2_after = metric("dedup_bytes");
  result(stalled == MAX_PEERS && held == (long long)MAX_PEERS * STALL_BLOCKS *
                                           BLK &&
           left == 0 && expired == MAX_PEERS && metric("upload_bytes") == 0,
         "second round: %u stalled uploads holding %lld bytes, %lld reaped",
         stalled, held, expired);
  for (int i = 0; i < MAX_PEERS; i++)
    close(fds[i]);
}

static void sessions(void)
{
  int fd = sock_from(40);
  static const char *ids[] = {"clientid=s1", "clientid=s2", "clientid=s3"};
  uint8_t codes[3];
  bool ma = false;
  for (int i = 0; i < 3; i++) {
    struct rq r = {.code = CK_POST, .path = "mqtt/connection",
                   .query = ids[i], .observe = -1, .token = "s"};
    struct ans a;
    codes[i] = request(fd, &r, &a) == 0 ? a.m.code : 0;
    if (i == 2)
      ma = codes[i] && has_opt(&a.m, CK_OPT_MAX_AGE);
  }
  char c0[8], c1[8], c2[8];
  result(codes[0] == CK_CREATED && codes[1] == CK_CREATED &&
           codes[2] == CK_SERVICE_UNAVAILABLE && ma,
         "sessions: %s, %s, then %s %s Max-Age", code_str(codes[0], c0),
         code_str(codes[1], c1), code_str(codes[2], c2),
         ma ? "with" : "without");
  long long u = metric("pubsub_unavailable_total");
  long long s = metric("pubsub_sessions");
  result(u == 1 && s == MAX_SESSIONS,
         "pubsub_unavailable_total %lld, pubsub_sessions %lld", u, s);
  close(fd);
}

static void queued(void)
{
  int sub = sock_from(50), pub = sock_from(51);
  struct rq r = {.code = CK_GET, .path = "ps/lim/q", .query = "qos=1",
                 .observe = 0, .token = "sub"};
  struct ans a;
  bool ok = request(sub, &r, &a) == 0 && a.m.code == CK_CONTENT &&
            has_opt(&a.m, CK_OPT_OBSERVE);
  result(ok, "a QoS 1 subscriber that will never acknowledge");
  unsigned changed = 0;
  for (int i = 0; i < 2 * MAX_QUEUED; i++) {
    char msg[16];
    int n = snprintf(msg, sizeof msg, "m%d", i);
    struct rq p = {.code = CK_POST, .path = "ps/lim/q", .observe = -1,
                   .token = "pub", .payload = msg, .len = (size_t)n};
    changed += request(pub, &p, &a) == 0 && a.m.code == CK_CHANGED;
  }
  result(changed == 2 * MAX_QUEUED, "%u of %d publishes 2.04", changed,
         2 * MAX_QUEUED);
  long long q = metric("notify_queued");
  long long d = metric("notify_dropped_cap_total");
  result(q == MAX_QUEUED && d == MAX_QUEUED,
         "notify_queued %lld (cap %d), notify_dropped_cap_total %lld", q,
         MAX_QUEUED, d);
  close(sub);
  close(pub);
}

int main(int argc, char **argv)
{
  if (argc != 4) {
    fprintf(stderr, "usage: integ_limits PORT PID METRICS_PORT\n");
    return 2;
  }
  port = (uint16_t)atoi(argv[1]);
  pid = atoi(argv[2]);
  mport = (uint16_t)atoi(argv[3]);
  rss_before = rss_kib();
  observers_per_resource();
  observers_per_peer();
  uploads();
  stall_again();
  sessions();
  queued();
  printf("VmRSS %ld KiB before, %ld at the uploads' peak, %ld after the "
         "reap; second round %ld at its peak, %ld after its reap\n",
         rss_before, rss_peak, rss_after, rss_round2_peak, rss_round2_after);
  /* glibc keeps freed heap for reuse, so VmRSS need not fall after the
   * reap; what must not happen is growth when the same state is held
   * and reaped again, beyond what the dedup table took meanwhile (every
   * block is remembered for EXCHANGE_LIFETIME, and the table grows with
   * the rate) and 256 KiB of slack. */
  long growth = rss_round2_after - rss_after;
  long dedup = (long)((dedup_round2_after - dedup_after) / 1024);
  printf("dedup_bytes %lld after the first reap, %lld after the second\n",
         dedup_after, dedup_round2_after);
  result(rss_after > 0 && growth <= dedup + 256,
         "VmRSS grew %ld KiB over the second round, the dedup table %ld KiB",
         growth, dedup);
  printf("%u checks, %u failed\n", checks, failures);
  return failures ? 1 : 0;
}
