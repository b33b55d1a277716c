/* Micro-benchmark of the message codec: nanoseconds per parse and per
 * build of a typical request (CON GET, 4-byte token, two Uri-Path
 * segments) and of a response with a 1 KiB payload. When built with
 * libcoap (CK_BENCH_LIBCOAP), the same messages are parsed and built with
 * libcoap 3's PDU API in the same run and the ratio is printed.
 *
 * Output: one human line per case, then one machine-readable line per
 * case: "bench codec CASE ns=N libcoap_ns=M ratio=R". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coapkit/coapkit.h"

#ifdef CK_BENCH_LIBCOAP
#include <coap3/coap.h>
#endif

static volatile uint64_t sink;

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const uint8_t token[4] = {0xde, 0xad, 0xbe, 0xef};
static uint8_t payload[1024];

static int build_request(uint8_t *buf, size_t cap, uint16_t mid)
{
  struct ck_builder b;
  ck_builder_init(&b, buf, cap, CK_TYPE_CON, CK_GET, mid);
  ck_builder_token(&b, token, sizeof token);
  ck_builder_opt(&b, CK_OPT_URI_PATH, "sensors", 7);
  ck_builder_opt(&b, CK_OPT_URI_PATH, "temp", 4);
  return ck_builder_finish(&b);
}

static int build_response(uint8_t *buf, size_t cap, uint16_t mid)
{
  struct ck_builder b;
  ck_builder_init(&b, buf, cap, CK_TYPE_ACK, CK_CONTENT, mid);
  ck_builder_token(&b, token, sizeof token);
  ck_builder_opt_uint(&b, CK_OPT_CONTENT_FORMAT, CK_CF_OCTET_STREAM);
  ck_builder_opt_uint(&b, CK_OPT_MAX_AGE, 60);
  ck_builder_payload(&b, payload, sizeof payload);
  return ck_builder_finish(&b);
}

/* Parses and touches what a receiver reads: header, token, first path. */
static void parse_once(const uint8_t *m, size_t len)
{
  struct ck_msg msg;
  struct ck_opt o;
  if (ck_msg_parse(&msg, m, len) != 0)
    abort();
  sink += msg.mid + msg.nopts + msg.payload_len;
  if (ck_msg_opt(&msg, CK_OPT_URI_PATH, &o) == 0)
    sink += o.len;
}

typedef void (*bench_fn)(const uint8_t *m, size_t len, long i);

static void ck_parse(const uint8_t *m, size_t len, long i)
{
  (void)i;
  parse_once(m, len);
}

static void ck_build_req(const uint8_t *m, size_t len, long i)
{
  (void)m;
  (void)len;
  uint8_t buf[64];
  sink += (uint64_t)build_request(buf, sizeof buf, (uint16_t)i);
}

static void ck_build_resp(const uint8_t *m, size_t len, long i)
{
  (void)m;
  (void)len;
  uint8_t buf[1200];
  sink += (uint64_t)build_response(buf, sizeof buf, (uint16_t)i);
}

#ifdef CK_BENCH_LIBCOAP
static coap_pdu_t *lc_pdu;

static void lc_parse(const uint8_t *m, size_t len, long i)
{
  (void)i;
  if (!coap_pdu_parse(COAP_PROTO_UDP, m, len, lc_pdu))
    abort();
  coap_opt_iterator_t it;
  coap_opt_t *o = coap_check_option(lc_pdu, COAP_OPTION_URI_PATH, &it);
  sink += coap_pdu_get_mid(lc_pdu) + (o ? coap_opt_length(o) : 0);
}

static void lc_build_req(const uint8_t *m, size_t len, long i)
{
  (void)m;
  (void)len;
  coap_pdu_t *p = coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET,
                                (coap_mid_t)(i & 0xffff), 64);
  coap_add_token(p, sizeof token, token);
  coap_add_option(p, COAP_OPTION_URI_PATH, 7, (const uint8_t *)"sensors");
  coap_add_option(p, COAP_OPTION_URI_PATH, 4, (const uint8_t *)"temp");
  sink += (uintptr_t)p & 1;
  coap_delete_pdu(p);
}

static void lc_build_resp(const uint8_t *m, size_t len, long i)
{
  (void)m;
  (void)len;
  uint8_t cf[1] = {42}, ma[1] = {60};
  coap_pdu_t *p = coap_pdu_init(COAP_MESSAGE_ACK, COAP_RESPONSE_CODE_CONTENT,
                                (coap_mid_t)(i & 0xffff), 1200);
  coap_add_token(p, sizeof token, token);
  coap_add_option(p, COAP_OPTION_CONTENT_FORMAT, 1, cf);
  coap_add_option(p, COAP_OPTION_MAXAGE, 1, ma);
  coap_add_data(p, sizeof payload, payload);
  sink += (uintptr_t)p & 1;
  coap_delete_pdu(p);
}
#endif

/* Runs fn until at least min_ns have passed, three times, and returns
 * the best ns per call (the least disturbed run). */
static double measure(bench_fn fn, const uint8_t *m, size_t len)
{
  double best = 1e18;
  for (int round = 0; round < 3; round++) {
    long n = 0;
    double start = now_ns(), t;
    do {
      for (int k = 0; k < 10000; k++)
        fn(m, len, n++);
      t = now_ns() - start;
    } while (t < 3e8);
    if (t / (double)n < best)
      best = t / (double)n;
  }
  return best;
}

struct bench_case {
  const char *name;
  bench_fn ours;
  bench_fn theirs;
  int which; /* 0: request bytes, 1: response bytes */
};

int main(void)
{
  for (size_t i = 0; i < sizeof payload; i++)
    payload[i] = (uint8_t)i;
  uint8_t req[64], resp[1200];
  int req_len = build_request(req, sizeof req, 1);
  int resp_len = build_response(resp, sizeof resp, 1);
  if (req_len < 0 || resp_len < 0)
    return 1;

#ifdef CK_BENCH_LIBCOAP
  coap_startup();
  lc_pdu = coap_pdu_init(0, 0, 0, 1500);
#define THEIRS(f) f
#else
#define THEIRS(f) NULL
#endif
  const struct bench_case cases[] = {
    {"parse_request", ck_parse, THEIRS(lc_parse), 0},
    {"build_request", ck_build_req, THEIRS(lc_build_req), 0},
    {"parse_response_1k", ck_parse, THEIRS(lc_parse), 1},
    {"build_response_1k", ck_build_resp, THEIRS(lc_build_resp), 1},
  };
  printf("request: %d bytes, response: %d bytes\n", req_len, resp_len);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct bench_case *c = &cases[i];
    const uint8_t *m = c->which ? resp : req;
    size_t len = (size_t)(c->which ? resp_len : req_len);
    double ours = measure(c->ours, m, len);
    if (c->theirs) {
      double theirs = measure(c->theirs, m, len);
      printf("%-20s coapkit %7.1f ns   libcoap %7.1f ns   %.1fx faster\n",
             c->name, ours, theirs, theirs / ours);
      printf("bench codec %s ns=%.1f libcoap_ns=%.1f ratio=%.2f\n", c->name,
             ours, theirs, theirs / ours);
    } else {
      printf("%-20s coapkit %7.1f ns   (libcoap not built in)\n", c->name,
             ours);
      printf("bench codec %s ns=%.1f\n", c->name, ours);
    }
  }
  return 0;
}
