/* coap-pubsub-bench's accounting (bench/pubsub_track.c) and the latency
 * histogram it shares with coap-bench (bench/coap_bench_hist.c): the
 * payload round-trips and rejects what is not one; each subscriber's
 * sequence tracking tells new, late, duplicate and too-old arrivals
 * apart; a run counts distinct deliveries, retires a message once when
 * every subscriber has it or its timeout passed; percentiles come out
 * within a bucket's width.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pubsub_bench.h"

static void payload_round_trip(void **state)
{
  (void)state;
  uint8_t buf[64];
  struct ps_payload in = {0xbeef, 0x01020304u, 0x1122334455667788ull}, out;
  ps_payload_encode(buf, sizeof buf, &in);
  /* Big-endian on the wire, so a capture reads the same on any host. */
  assert_int_equal(buf[0], 'P');
  assert_int_equal(buf[1], 'S');
  assert_int_equal(buf[4], 0x01);
  assert_int_equal(buf[15], 0x88);
  assert_int_equal(ps_payload_decode(buf, sizeof buf, &out), 0);
  assert_int_equal(out.run, in.run);
  assert_int_equal(out.seq, in.seq);
  assert_true(out.t_ns == in.t_ns);
  /* The shortest payload is the header alone. */
  assert_int_equal(ps_payload_decode(buf, PS_HDR_LEN, &out), 0);
}

static void payload_rejects(void **state)
{
  (void)state;
  uint8_t buf[PS_HDR_LEN];
  struct ps_payload in = {1, 2, 3}, out;
  ps_payload_encode(buf, sizeof buf, &in);
  assert_int_equal(ps_payload_decode(buf, PS_HDR_LEN - 1, &out), -1);
  buf[0] = 'X';
  assert_int_equal(ps_payload_decode(buf, sizeof buf, &out), -1);
}

static void seqtrack_classifies(void **state)
{
  (void)state;
  struct ps_seqtrack t = {0, 0};
  assert_int_equal(ps_seqtrack_add(&t, 0), PS_NEW);
  assert_int_equal(ps_seqtrack_add(&t, 1), PS_NEW);
  assert_int_equal(ps_seqtrack_add(&t, 1), PS_DUP);
  /* 2 and 3 skipped: 4 is new, 3 then fills a gap, and again is a dup. */
  assert_int_equal(ps_seqtrack_add(&t, 4), PS_NEW);
  assert_int_equal(ps_seqtrack_add(&t, 3), PS_LATE);
  assert_int_equal(ps_seqtrack_add(&t, 3), PS_DUP);
  assert_int_equal(ps_seqtrack_add(&t, 2), PS_LATE);
  assert_int_equal(t.next_seq, 5);
  /* A jump of more than 64 forgets the map; 64 behind is too old. */
  assert_int_equal(ps_seqtrack_add(&t, 200), PS_NEW);
  assert_int_equal(ps_seqtrack_add(&t, 136), PS_TOO_OLD);
  assert_int_equal(ps_seqtrack_add(&t, 137), PS_LATE);
  assert_int_equal(ps_seqtrack_add(&t, 137), PS_DUP);
  assert_int_equal(ps_seqtrack_add(&t, 199), PS_LATE);
}

/* A run of 3 subscribers with 4 messages published. */
static void run_init(struct ps_run *r, uint32_t *count,
                     struct ps_seqtrack *track)
{
  memset(r, 0, sizeof *r);
  r->nsubs = 3;
  r->run_id = 7;
  r->next_seq = 4;
  r->outstanding = 4;
  r->count = count;
  r->track = track;
  r->t_start_ns = 1000;
  r->t_end_ns = 2000;
}

static void deliver(struct ps_run *r, unsigned sub, uint16_t run, uint32_t seq,
                    uint64_t sent, uint64_t now)
{
  uint8_t buf[32];
  struct ps_payload p = {run, seq, sent};
  ps_payload_encode(buf, sizeof buf, &p);
  ps_deliver(r, sub, buf, sizeof buf, now);
}

static void run_counts_deliveries(void **state)
{
  (void)state;
  uint32_t count[4] = {0};
  struct ps_seqtrack track[3] = {{0, 0}};
  struct ps_run r;
  run_init(&r, count, track);

  deliver(&r, 0, 7, 0, 1000, 1100);
  deliver(&r, 1, 7, 0, 1000, 1200);
  assert_int_equal(r.outstanding, 4);
  deliver(&r, 1, 7, 0, 1000, 1300); /* a duplicate: not counted */
  assert_int_equal(r.st.dup, 1);
  deliver(&r, 2, 7, 0, 1000, 2500); /* the last one, after the window */
  assert_int_equal(r.outstanding, 3);
  assert_true(count[0] & PS_RETIRED);
  assert_int_equal(r.st.delivered, 3);
  assert_int_equal(r.st.in_window, 2);

  /* Another run's message, an unpublished sequence number, a subscriber
   * out of range and a short payload are all foreign. */
  deliver(&r, 0, 8, 1, 1000, 1100);
  deliver(&r, 0, 7, 4, 1000, 1100);
  deliver(&r, 3, 7, 1, 1000, 1100);
  ps_deliver(&r, 0, (const uint8_t *)"PS", 2, 1100);
  assert_int_equal(r.st.foreign, 4);
  assert_int_equal(r.st.delivered, 3);

  /* Subscriber 0 gets 2 before 1: both count, one as reordered. */
  deliver(&r, 0, 7, 2, 1000, 1500);
  deliver(&r, 0, 7, 1, 1000, 1600);
  assert_int_equal(r.st.reordered, 1);
  assert_int_equal(r.st.delivered, 5);

  /* The latencies recorded are now - sent: 100, 200, 1500, 500, 600. */
  assert_int_equal(r.st.lat.n, 5);
  assert_int_equal(r.st.lat.max, 1500);
  uint64_t p50 = bench_hist_pct(&r.st.lat, 50);
  assert_true(p50 >= 500 && p50 <= 500 + 500 / 64);
}

static void run_retires_once(void **state)
{
  (void)state;
  uint32_t count[4] = {0};
  struct ps_seqtrack track[3] = {{0, 0}};
  struct ps_run r;
  run_init(&r, count, track);

  /* Message 3 times out with one delivery; later ones do not retire it
   * again. */
  deliver(&r, 0, 7, 3, 1000, 1100);
  assert_true(ps_retire(&r, 3));
  assert_int_equal(r.outstanding, 3);
  deliver(&r, 1, 7, 3, 1000, 1100);
  deliver(&r, 2, 7, 3, 1000, 1100);
  assert_int_equal(r.outstanding, 3);
  assert_false(ps_retire(&r, 3));
  /* A complete message is not a timeout. */
  for (unsigned s = 0; s < 3; s++)
    deliver(&r, s, 7, 2, 1000, 1100);
  assert_int_equal(r.outstanding, 2);
  assert_false(ps_retire(&r, 2));
  assert_int_equal(r.outstanding, 2);
}

static void hist_percentiles(void **state)
{
  (void)state;
  struct bench_hist *h = calloc(1, sizeof *h);
  assert_non_null(h);
  assert_int_equal(bench_hist_pct(h, 50), 0);
  for (uint64_t v = 1; v <= 100000; v++)
    bench_hist_add(h, v * 1000); /* 1 µs .. 100 ms */
  uint64_t p50 = bench_hist_pct(h, 50), p99 = bench_hist_pct(h, 99);
  /* Within a bucket (1/64 of the value) above the exact rank. */
  assert_true(p50 >= 50000000 && p50 <= 50000000 + 50000000 / 64);
  assert_true(p99 >= 99000000 && p99 <= 99000000 + 99000000 / 64);
  assert_int_equal(bench_hist_pct(h, 100), 100000000);
  free(h);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(payload_round_trip),
      cmocka_unit_test(payload_rejects),
      cmocka_unit_test(seqtrack_classifies),
      cmocka_unit_test(run_counts_deliveries),
      cmocka_unit_test(run_retires_once),
      cmocka_unit_test(hist_percentiles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
