/* coap-pubsub-bench's accounting: the payload every published message
 * carries and what each subscriber makes of it.
 *
 * A payload starts with 16 bytes, big-endian: the magic "PS", the run's
 * 16-bit id, the 32-bit sequence number and the CLOCK_MONOTONIC time of
 * the publish in nanoseconds. Publisher and subscribers live in one
 * process, so the receiver subtracts that time from its own clock and
 * gets the publish-to-notification latency without any clock sync.
 *
 * Each subscriber tracks the highest sequence number it has seen and a
 * 64-bit map of the ones below it, so a duplicate (a CON notification or
 * a QoS 1 PUBLISH sent again) is told from one that overtook another.
 * A message is complete when every subscriber has it; the run counts
 * distinct deliveries per message for that.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pubsub_bench.h"

uint64_t ps_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
  for (unsigned i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

void ps_payload_encode(uint8_t *buf, size_t len, const struct ps_payload *p)
{
  put_be(buf, PS_MAGIC, 2);
  put_be(buf + 2, p->run, 2);
  put_be(buf + 4, p->seq, 4);
  put_be(buf + 8, p->t_ns, 8);
  for (size_t i = PS_HDR_LEN; i < len; i++)
    buf[i] = (uint8_t)('a' + i % 26);
}

int ps_payload_decode(const uint8_t *buf, size_t len, struct ps_payload *p)
{
  if (len < PS_HDR_LEN || get_be(buf, 2) != PS_MAGIC)
    return -1;
  p->run = (uint16_t)get_be(buf + 2, 2);
  p->seq = (uint32_t)get_be(buf + 4, 4);
  p->t_ns = get_be(buf + 8, 8);
  return 0;
}

enum ps_arrival ps_seqtrack_add(struct ps_seqtrack *t, uint32_t seq)
{
  if (seq >= t->next_seq) {
    uint32_t shift = seq - t->next_seq + 1;
    t->seen = shift >= 64 ? 1 : t->seen << shift | 1;
    t->next_seq = seq + 1;
    return PS_NEW;
  }
  uint32_t d = t->next_seq - 1 - seq;
  if (d >= 64)
    return PS_TOO_OLD;
  uint64_t bit = (uint64_t)1 << d;
  if (t->seen & bit)
    return PS_DUP;
  t->seen |= bit;
  return PS_LATE;
}

void ps_deliver(struct ps_run *r, unsigned sub, const uint8_t *payload,
                size_t len, uint64_t now_ns)
{
  struct ps_payload p;
  if (sub >= r->nsubs || ps_payload_decode(payload, len, &p) < 0 ||
      p.run != r->run_id || p.seq >= r->next_seq) {
    r->st.foreign++;
    return;
  }
  switch (ps_seqtrack_add(&r->track[sub], p.seq)) {
  case PS_DUP:
    r->st.dup++;
    return;
  case PS_LATE:
  case PS_TOO_OLD:
    r->st.reordered++;
    break;
  case PS_NEW:
    break;
  }
  r->st.delivered++;
  if (now_ns >= r->t_start_ns && now_ns < r->t_end_ns)
    r->st.in_window++;
  bench_hist_add(&r->st.lat, now_ns > p.t_ns ? now_ns - p.t_ns : 0);
  uint32_t c = ++r->count[p.seq];
  if (c == r->nsubs) {
    r->count[p.seq] |= PS_RETIRED;
    r->outstanding--;
  }
}

bool ps_retire(struct ps_run *r, uint32_t seq)
{
  if (r->count[seq] & PS_RETIRED)
    return false;
  r->count[seq] |= PS_RETIRED;
  r->outstanding--;
  return true;
}

int ps_fail(struct ps_run *r, const char *fmt, ...)
{
  if (r->err[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
  }
  return -1;
}
