/* libFuzzer target for the client's response processing: datagrams that
 * arrive while requests are outstanding.
 *
 * Each input gets a fresh context (fake clock, counting random source, so
 * tokens and Message IDs repeat from run to run) and client, and starts
 * some of these calls against a peer (a local socket nobody answers
 * from): CON GET, CON GET with Observe, a block-wise PUT of 3000 bytes,
 * NON GET, ping, GET with early Block2 negotiation, NON FETCH with
 * Observe, a block-wise POST with a caller's token, and a multicast GET
 * (TTL 0: it never leaves the host). The rest of the input is cut into
 * datagrams fed into the messaging layer as if they came from the peer,
 * another host, another port of the peer or via a group address; each can
 * have the token and the Message ID of an outstanding call spliced in, so
 * that the fuzzer reaches matched responses, not just rejected ones.
 * Between datagrams the clock moves on (retransmissions, timeouts,
 * re-registration, the multicast window), calls are cancelled, and ICMP
 * errors arrive; callbacks cancel calls or start new ones.
 *
 * Finally the client is freed (or the context, which frees it). A call's
 * final callback must have fired exactly once, and no callback may follow
 * it: anything else aborts.
 *
 * Input: 4 header bytes, then records. The header: h0 bit k starts call
 * k (0..7); h1 picks the block size (& 7), token length (>> 3 & 3) and
 * NSTART (>> 5); h2 what callbacks do (& 3: nothing, cancel themselves,
 * cancel call (h2 >> 3) % NSLOTS, start a new call; & 4: proactively);
 * h3 MAX_RETRANSMIT (& 3), a 2000-byte max_body (& 4), leave the client
 * to ck_ctx_free() (& 8), the multicast call (& 0x80). Each record is
 * [len][flags][sel] + len bytes:
 *   flags & 3    source: peer, other host, other port, peer via a group
 *   flags & 4    splice in the token of call (sel & 15) % NSLOTS
 *   flags & 8    splice in the Message ID of call (sel >> 4) % NSLOTS
 *   flags & 16   then: sel & 0x40 ? cancel call (sel & 15) % NSLOTS
 *                (proactive when sel & 0x80) : an ICMP error from the peer
 *   flags >> 5   how far the clock moves on afterwards
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coapkit/coapkit.h"
#include "../../lib/ctx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { NCALLS = 9, NDYN = 4, NSLOTS = NCALLS + NDYN };

struct slot {
  struct ck_call *call; /* valid until its final callback returns */
  bool started;
  unsigned callbacks, finals;
};

static struct ck_ctx *ctx;
static struct ck_client *cl;
static struct slot slots[NSLOTS];
static unsigned ndyn;
static uint8_t plan; /* what callbacks do: header byte 2 */
static uint64_t fake_now;
static uint32_t rnd_counter;
static int sink = -1;
static struct ck_addr peer, other_host, other_port;
static char peer_s[64];
static uint8_t payload[3000];

static uint64_t clock_fn(void *user)
{
  (void)user;
  return fake_now;
}

/* Predictable "random" bytes: a counter, so the tokens of calls differ
 * from each other yet repeat from run to run. */
static void rnd(void *user, void *buf, size_t len)
{
  (void)user;
  uint8_t *p = buf;
  for (size_t i = 0; i < len; i++)
    p[i] = (uint8_t)(rnd_counter++ * 0x9d);
}

static void start(unsigned k);

static void on_resp(struct ck_call *call, const struct ck_client_response *r,
                    void *user)
{
  struct slot *s = user;
  if (s->finals)
    abort(); /* a callback after the final one */
  if (s->call != call)
    abort();
  s->callbacks++;
  if (r->final) {
    s->finals++;
    s->call = NULL;
  }
  if (r->body_len && !r->body)
    abort();
  /* Read every byte the callback is given, so ASan checks the views. */
  volatile uint8_t sum = 0;
  for (size_t i = 0; i < r->body_len; i++)
    sum += r->body[i];
  if (r->msg)
    for (size_t i = 0; i < r->msg->len; i++)
      sum += r->msg->data[i];
  (void)sum;
  switch (plan & 3) {
  case 1:
    /* Cancel itself from its own callback (a no-op after the final). */
    ck_call_cancel(call, (plan & 4) != 0);
    break;
  case 2: {
    /* Cancel another call: a final callback that frees its neighbour. */
    struct slot *o = &slots[(plan >> 3) % NSLOTS];
    if (o != s && o->call)
      ck_call_cancel(o->call, (plan & 4) != 0);
    break;
  }
  case 3:
    /* Start a new call from inside a callback. */
    if (ndyn < NDYN)
      start(NCALLS + ndyn++);
    break;
  default:
    break;
  }
}

/* Starts call kind k (dynamic slots start a GET). */
static void start(unsigned k)
{
  struct slot *s = &slots[k];
  char uri[128] = "";
  struct ck_client_request r;
  ck_client_request_init(&r, CK_GET, uri);
  const char *path = "a";
  static const uint8_t tok7[] = {7, 7, 7, 7, 7};
  switch (k) {
  case 1:
    path = "o";
    r.observe = true;
    break;
  case 2:
    path = "b";
    r.method = CK_PUT;
    r.payload = payload;
    r.payload_len = sizeof payload;
    r.has_content_format = true;
    r.content_format = 42;
    break;
  case 3:
    path = "n";
    r.non = true;
    r.has_accept = true;
    r.accept = 0;
    break;
  case 4:
    r.ping = true;
    break;
  case 5:
    path = "big";
    r.block_size = 64;
    break;
  case 6:
    path = "f";
    r.method = CK_FETCH;
    r.non = true;
    r.observe = true;
    r.payload = payload;
    r.payload_len = 20;
    break;
  case 7:
    path = "p?x=1";
    r.method = CK_POST;
    r.payload = payload;
    r.payload_len = 1500;
    r.token = tok7;
    r.token_len = sizeof tok7;
    break;
  case 8:
    break;
  default:
    path = "d";
    break;
  }
  if (k == 8)
    snprintf(uri, sizeof uri, "coap://224.0.1.187:%u/.well-known/core",
             ck_addr_port(&peer));
  else
    snprintf(uri, sizeof uri, "coap://%s/%s", peer_s, path);
  memset(s, 0, sizeof *s);
  struct ck_call *call;
  if (ck_client_send(cl, &r, on_resp, s, &call) == 0) {
    s->started = true;
    s->call = call;
  }
}

static void setup_once(void)
{
  sink = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct ck_addr a;
  ck_addr_parse(&a, "127.0.0.1:0", 0);
  if (sink < 0 || bind(sink, &a.u.sa, a.len) != 0)
    abort();
  peer.len = sizeof peer.u;
  getsockname(sink, &peer.u.sa, &peer.len);
  ck_addr_format(&peer, peer_s, sizeof peer_s);
  char s[64];
  snprintf(s, sizeof s, "127.0.0.2:%u", ck_addr_port(&peer));
  ck_addr_parse(&other_host, s, 0);
  snprintf(s, sizeof s, "127.0.0.1:%u", (ck_addr_port(&peer) + 1) & 0xffff);
  ck_addr_parse(&other_port, s, 0);
  for (size_t i = 0; i < sizeof payload; i++)
    payload[i] = (uint8_t)(i * 7 + i / 256);
}

/* Copies the datagram into out, with the token and MID replaced when
 * asked (tok NULL / mid < 0: keep). Returns the new length. */
static size_t splice(uint8_t *out, const uint8_t *in, size_t len,
                     const uint8_t *tok, size_t tkl, int mid)
{
  if (len < 4) {
    memcpy(out, in, len);
    return len;
  }
  memcpy(out, in, 4);
  size_t n = 4;
  size_t skip = 0;
  if (tok) {
    size_t old = in[0] & 15u;
    skip = old <= 8 ? (old < len - 4 ? old : len - 4) : 0;
    out[0] = (uint8_t)((in[0] & 0xf0) | tkl);
    memcpy(out + 4, tok, tkl);
    n += tkl;
  }
  memcpy(out + n, in + 4 + skip, len - 4 - skip);
  n += len - 4 - skip;
  if (mid >= 0) {
    out[2] = (uint8_t)(mid >> 8);
    out[3] = (uint8_t)mid;
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (sink < 0)
    setup_once();
  uint8_t h[4] = {0xff, 0x00, 0x00, 0x80};
  for (size_t i = 0; i < 4 && i < size; i++)
    h[i] = data[i];
  size_t i = size < 4 ? size : 4;

  struct ck_ctx_config ccfg = {0};
  ccfg.dedup_entries = 64;
  if (ck_ctx_new(&ccfg, &ctx) < 0)
    abort();
  fake_now = 1000000;
  rnd_counter = 0;
  ck_ctx_set_clock(ctx, clock_fn, NULL);
  ck_ctx_set_random(ctx, rnd, NULL);

  struct ck_client_config cfg = {0};
  static const uint16_t sizes[] = {16, 32, 64, 128, 256, 512, 1024, 1024};
  static const uint8_t tkls[] = {1, 2, 4, 8};
  cfg.block_size = sizes[h[1] & 7];
  cfg.min_token_len = tkls[(h[1] >> 3) & 3];
  cfg.nstart = 1u + (h[1] >> 5);
  cfg.params.ack_timeout_ms = 1000;
  cfg.params.max_retransmit = 1u + (h[3] & 3);
  cfg.max_body = h[3] & 4 ? 2000 : 16384;
  cfg.max_server_response_delay_ms = 3000;
  /* Multicast with TTL 0: the request never leaves this host. */
  cfg.sockopts[0] = (struct ck_sockopt){IPPROTO_IP, IP_MULTICAST_TTL, 0};
  if (ck_client_new(ctx, &cfg, &cl) < 0)
    abort();
  plan = h[2];
  ndyn = 0;
  memset(slots, 0, sizeof slots);
  for (unsigned k = 0; k < NCALLS; k++)
    if (k < 8 ? h[0] >> k & 1 : (h[3] & 0x80) != 0)
      start(k);
  ck_ctx_process(ctx, 0);

  static const uint32_t steps[] = {0,    50,    300,   1000,
                                   3000, 10000, 60000, 300000};
  static const struct ck_addr *froms[] = {&peer, &other_host, &other_port,
                                          &peer};
  /* The client's endpoint, where its answers arrive (none when no call
   * could start). */
  struct ck__ep *ep = ctx->eps;
  while (ep && i + 3 <= size) {
    size_t len = data[i];
    uint8_t flags = data[i + 1], sel = data[i + 2];
    i += 3;
    if (len > size - i)
      len = size - i;
    uint8_t tok[CK_TOKEN_MAX];
    size_t tkl = 0;
    const uint8_t *tp = NULL;
    struct slot *ts = &slots[(sel & 15) % NSLOTS];
    if ((flags & 4) && ts->call) {
      tkl = ck_call_token(ts->call, tok);
      tp = tok;
    }
    int mid = -1;
    struct slot *ms = &slots[(sel >> 4) % NSLOTS];
    if ((flags & 8) && ms->call)
      mid = ck_call_mid(ms->call);
    /* An exact-size copy, so that ASan sees any overread. */
    uint8_t *dg = malloc(len + CK_TOKEN_MAX + 1);
    size_t n = splice(dg, data + i, len, tp, tkl, mid);
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, dg, n);
    free(dg);
    ck__input(ep, froms[flags & 3], exact, n, (flags & 3) == 3);
    free(exact);
    i += len;
    if (flags & 16) {
      if (sel & 0x40) {
        if (ts->call)
          ck_call_cancel(ts->call, (sel & 0x80) != 0);
      } else {
        ck__input_icmp(ep, &peer, CK_EUNREACH);
      }
    }
    fake_now += steps[flags >> 5];
    ck_ctx_process(ctx, 0);
  }

  /* Free the client, or let the context do it. */
  if (!(h[3] & 8))
    ck_client_free(cl);
  ck_ctx_free(ctx);
  cl = NULL;
  ctx = NULL;
  for (unsigned k = 0; k < NSLOTS; k++) {
    const struct slot *s = &slots[k];
    if (s->started && (s->finals != 1 || s->call))
      abort(); /* a final callback that never came, or came twice */
    if (!s->started && s->callbacks)
      abort(); /* a callback for a call that never started */
  }
  /* Drop what the calls sent, so the sink never fills up. */
  uint8_t buf[2048];
  while (recv(sink, buf, sizeof buf, MSG_DONTWAIT) >= 0)
    ;
  return 0;
}
