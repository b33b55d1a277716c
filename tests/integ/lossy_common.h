/* What the lossy-link test drivers (client_lossy.c, lossy_scenarios.c)
 * share: a seeded random source for the context, so that tokens,
 * Message IDs and initial timeouts repeat from run to run; a monotonic
 * clock in milliseconds; and a fatal failure line. Header-only: each
 * driver is one program. */
#ifndef LOSSY_COMMON_H
#define LOSSY_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <coapkit/coapkit.h>

static uint64_t rng_state;

static inline uint64_t splitmix64(uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* For ck_ctx_set_random(ctx, fill_random, &rng_state). */
static inline void fill_random(void *user, void *buf, size_t len)
{
  uint64_t *s = user;
  uint8_t *p = buf;
  for (size_t i = 0; i < len; i++)
    p[i] = (uint8_t)splitmix64(s);
}

static inline double mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

__attribute__((format(printf, 1, 2), noreturn)) static inline void
fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("FAIL: ", stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  exit(1);
}

static inline const char *err_name(int err)
{
  return err ? ck_err_name(err) : "0";
}

#endif
