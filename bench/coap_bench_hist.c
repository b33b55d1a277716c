/* coap-bench's latency histogram: a fixed array of log-linear buckets, in
 * the manner of HdrHistogram, so that recording a sample is a few
 * instructions and never allocates, and threads' histograms merge by
 * adding bucket counts. Values below 64 are exact; above, each power of
 * two is split in 64 buckets, so a bucket is at most 1/64 of its value
 * wide.
 */
#include "coap_bench.h"

#define SUB (1u << BENCH_HIST_SUB_BITS)

static unsigned bucket_of(uint64_t v)
{
  if (v < SUB)
    return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  if (msb >= BENCH_HIST_MAX_BITS)
    return BENCH_HIST_BUCKETS - 1;
  unsigned shift = msb - BENCH_HIST_SUB_BITS;
  return ((shift + 1) << BENCH_HIST_SUB_BITS) + (unsigned)((v >> shift) - SUB);
}

/* The largest value that falls in bucket i. */
static uint64_t bucket_top(unsigned i)
{
  if (i < SUB)
    return i;
  unsigned shift = (i >> BENCH_HIST_SUB_BITS) - 1;
  uint64_t low = (uint64_t)(SUB + (i & (SUB - 1))) << shift;
  return low + (((uint64_t)1 << shift) - 1);
}

void bench_hist_add(struct bench_hist *h, uint64_t v)
{
  h->b[bucket_of(v)]++;
  h->n++;
  h->sum += v;
  if (v > h->max)
    h->max = v;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
  for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
    dst->b[i] += src->b[i];
  dst->n += src->n;
  dst->sum += src->sum;
  if (src->max > dst->max)
    dst->max = src->max;
}

uint64_t bench_hist_pct(const struct bench_hist *h, double p)
{
  if (h->n == 0)
    return 0;
  /* The rank of the sample at p, 1-based, rounded up so that p99 of 100
   * samples is the 99th. */
  double r = p / 100.0 * (double)h->n;
  uint64_t rank = (uint64_t)r;
  if ((double)rank < r)
    rank++;
  if (rank < 1)
    rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
    seen += h->b[i];
    if (seen >= rank) {
      uint64_t top = bucket_top(i);
      return top < h->max ? top : h->max;
    }
  }
  return h->max;
}
