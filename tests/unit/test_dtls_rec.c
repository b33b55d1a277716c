/* The server's own DTLS record layer (lib/dtls_rec.c, issue 12): records
 * sealed by one side's keys and opened by the other's, for each AEAD
 * suite it runs; a replayed record, a tampered one, one of another
 * epoch and one below the anti-replay window are dropped (RFC 6347
 * §4.1.2.6-7); records out of order within the window are taken; the
 * cipher cache evicts and re-initialises without losing a session. The
 * interoperability with real peers (GnuTLS's and libcoap's clients) is
 * tests/integ/dtls_record.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "coapkit/error.h"
#include "../../lib/dtls.h"

/* Two ends of one session: a's write keys are b's read keys. */
static void pair(enum ck__aead a, struct ck__rec *x, struct ck__rec *y)
{
  struct ck__rec_keys k;
  memset(&k, 0, sizeof k);
  k.aead = (uint8_t)a;
  k.key_len = a == CK__AEAD_AES_128_GCM || a == CK__AEAD_AES_128_CCM ||
                      a == CK__AEAD_AES_128_CCM_8
                  ? 16
                  : 32;
  k.tag_len = a == CK__AEAD_AES_128_CCM_8 || a == CK__AEAD_AES_256_CCM_8 ? 8
                                                                         : 16;
  k.epoch = 1;
  k.wseq = 1;
  for (int i = 0; i < 32; i++) {
    k.wkey[i] = (uint8_t)i;
    k.rkey[i] = (uint8_t)(100 + i);
  }
  for (int i = 0; i < 12; i++) {
    k.wiv[i] = (uint8_t)(7 * i);
    k.riv[i] = (uint8_t)(9 * i);
  }
  ck__rec_init(x, &k);
  struct ck__rec_keys m = k;
  memcpy(m.wkey, k.rkey, 32);
  memcpy(m.rkey, k.wkey, 32);
  memcpy(m.wiv, k.riv, 12);
  memcpy(m.riv, k.wiv, 12);
  ck__rec_init(y, &m);
}

/* Opens the one record in buf; returns what ck__rec_open does. */
static int open1(struct ck__rec_cache *c, struct ck__rec *r,
                 const uint8_t *buf, size_t len, uint8_t *out, size_t cap)
{
  size_t off = 0;
  uint8_t type = 0;
  int n = ck__rec_open(c, r, buf, len, &off, &type, out, cap);
  if (n >= 0)
    assert_int_equal(type, 23);
  assert_int_equal(off, len);
  return n;
}

static void test_suites(void **state)
{
  (void)state;
  static const enum ck__aead all[] = {
      CK__AEAD_AES_128_GCM,   CK__AEAD_AES_256_GCM,   CK__AEAD_AES_128_CCM,
      CK__AEAD_AES_256_CCM,   CK__AEAD_AES_128_CCM_8, CK__AEAD_AES_256_CCM_8,
      CK__AEAD_CHACHA20_POLY1305};
  struct ck__rec_cache *c;
  assert_int_equal(ck__rec_cache_new(4, &c), 0);
  for (unsigned i = 0; i < sizeof all / sizeof all[0]; i++) {
    struct ck__rec x, y;
    pair(all[i], &x, &y);
    uint8_t rec[256], out[256];
    const char msg[] = "\x40\x01\x12\x34hello";
    int n = ck__rec_seal(c, &x, 23, (const uint8_t *)msg, sizeof msg, rec,
                         sizeof rec);
    assert_true(n > 13 + (int)sizeof msg);
    assert_int_equal(rec[0], 23);
    assert_int_equal(rec[3] << 8 | rec[4], 1); /* epoch */
    assert_int_equal(rec[10], 1);              /* sequence number */
    assert_int_equal(open1(c, &y, rec, (size_t)n, out, sizeof out),
                     (int)sizeof msg);
    assert_memory_equal(out, msg, sizeof msg);
    /* The same record again is a replay. */
    assert_int_equal(open1(c, &y, rec, (size_t)n, out, sizeof out),
                     CK_ENOTFOUND);
    /* One bit of ciphertext, of the tag, or of the header (which the
     * additional data covers) flipped: it does not authenticate. */
    n = ck__rec_seal(c, &x, 23, (const uint8_t *)msg, sizeof msg, rec,
                     sizeof rec);
    size_t flips[] = {(size_t)n - 1, (size_t)n - 20, 0};
    for (unsigned f = 0; f < 3; f++) {
      uint8_t bad[256];
      memcpy(bad, rec, (size_t)n);
      bad[flips[f]] ^= 0x20;
      assert_int_equal(open1(c, &y, bad, (size_t)n, out, sizeof out),
                       CK_ENOTFOUND);
    }
    /* Untouched, it still comes through: a forgery moves no window. */
    assert_int_equal(open1(c, &y, rec, (size_t)n, out, sizeof out),
                     (int)sizeof msg);
    /* And the other way. */
    n = ck__rec_seal(c, &y, 23, (const uint8_t *)msg, 4, rec, sizeof rec);
    assert_int_equal(open1(c, &x, rec, (size_t)n, out, sizeof out), 4);
    ck__rec_close(c, &x);
    ck__rec_close(c, &y);
  }
  ck__rec_cache_free(c);
}

static void test_epoch_window(void **state)
{
  (void)state;
  struct ck__rec_cache *c;
  assert_int_equal(ck__rec_cache_new(2, &c), 0);
  struct ck__rec x, y;
  pair(CK__AEAD_AES_128_CCM_8, &x, &y);
  uint8_t recs[80][64], out[64];
  int len[80];
  for (int i = 0; i < 80; i++) {
    uint8_t b = (uint8_t)i;
    len[i] = ck__rec_seal(c, &x, 23, &b, 1, recs[i], sizeof recs[i]);
    assert_true(len[i] > 0);
  }
  /* Newest first, then older ones within 64: all taken, once. */
  assert_int_equal(open1(c, &y, recs[70], (size_t)len[70], out, 64), 1);
  assert_int_equal(open1(c, &y, recs[10], (size_t)len[10], out, 64), 1);
  assert_int_equal(out[0], 10);
  assert_int_equal(open1(c, &y, recs[10], (size_t)len[10], out, 64),
                   CK_ENOTFOUND);
  /* Below the window (70 - 64): dropped, new or not. */
  assert_int_equal(open1(c, &y, recs[5], (size_t)len[5], out, 64),
                   CK_ENOTFOUND);
  assert_int_equal(open1(c, &y, recs[79], (size_t)len[79], out, 64), 1);
  /* Another epoch (the one before the handshake's ChangeCipherSpec):
   * dropped without being decrypted. */
  recs[71][4] = 0;
  assert_int_equal(open1(c, &y, recs[71], (size_t)len[71], out, 64),
                   CK_ENOTFOUND);
  /* A record cut short ends the datagram. */
  size_t off = 0;
  uint8_t type;
  assert_int_equal(ck__rec_open(c, &y, recs[72], (size_t)len[72] - 1, &off,
                                &type, out, 64),
                   CK_EMSG_SHORT);
  /* Two records in one datagram. */
  uint8_t two[128];
  memcpy(two, recs[73], (size_t)len[73]);
  memcpy(two + len[73], recs[74], (size_t)len[74]);
  off = 0;
  size_t tl = (size_t)(len[73] + len[74]);
  assert_int_equal(ck__rec_open(c, &y, two, tl, &off, &type, out, 64), 1);
  assert_int_equal(out[0], 73);
  assert_int_equal(ck__rec_open(c, &y, two, tl, &off, &type, out, 64), 1);
  assert_int_equal(out[0], 74);
  assert_int_equal(ck__rec_open(c, &y, two, tl, &off, &type, out, 64),
                   CK_EMSG_SHORT);
  ck__rec_close(c, &x);
  ck__rec_close(c, &y);
  ck__rec_cache_free(c);
}

/* More sessions than cache slots: each evicts another's ciphers, and
 * every record still opens (its cipher made again from the raw key). */
static void test_cache(void **state)
{
  (void)state;
  struct ck__rec_cache *c;
  assert_int_equal(ck__rec_cache_new(3, &c), 0);
  enum { N = 10 };
  struct ck__rec x[N], y[N];
  for (int i = 0; i < N; i++)
    pair(CK__AEAD_AES_128_GCM, &x[i], &y[i]);
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < N; i++) {
      uint8_t rec[64], out[64], b = (uint8_t)(i + round);
      int n = ck__rec_seal(c, &x[i], 23, &b, 1, rec, sizeof rec);
      assert_true(n > 0);
      assert_int_equal(open1(c, &y[i], rec, (size_t)n, out, sizeof out), 1);
      assert_int_equal(out[0], b);
    }
  for (int i = 0; i < N; i++) {
    ck__rec_close(c, &x[i]);
    ck__rec_close(c, &y[i]);
  }
  ck__rec_cache_free(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_suites),
      cmocka_unit_test(test_epoch_window),
      cmocka_unit_test(test_cache),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
