/* Timers and the clock of the event loop. Timers live in a binary
 * min-heap of pointers, so arming, disarming and finding the next one are
 * O(log n) and the loop never scans all timers. */
#include <stdlib.h>
#include <time.h>

#include "coapkit/error.h"
#include "loop.h"

static uint64_t mono_ms(void *user)
{
  (void)user;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int ck__loop_init(struct ck__loop *l)
{
  l->stop = false;
  l->clock = mono_ms;
  l->clock_user = NULL;
  l->heap = NULL;
  l->nheap = 0;
  l->capheap = 0;
  l->now = mono_ms(NULL);
  return ck__backend_init(l);
}

void ck__loop_close(struct ck__loop *l)
{
  ck__backend_close(l);
  free(l->heap);
  l->heap = NULL;
  l->nheap = l->capheap = 0;
}

void ck__loop_set_clock(struct ck__loop *l, uint64_t (*fn)(void *user),
                        void *user)
{
  l->clock = fn ? fn : mono_ms;
  l->clock_user = fn ? user : NULL;
  /* Timers keep their due times; a test clock starts wherever it likes,
   * so take its reading as the new now. */
  l->now = l->clock(l->clock_user);
}

uint64_t ck__loop_update(struct ck__loop *l)
{
  uint64_t t = l->clock(l->clock_user);
  /* A replaced clock must not make time run backwards for timers. */
  if (t > l->now)
    l->now = t;
  return l->now;
}

static void place(struct ck__loop *l, uint32_t i, struct ck__timer *t)
{
  l->heap[i] = t;
  t->idx = i + 1;
}

static void sift_up(struct ck__loop *l, uint32_t i)
{
  struct ck__timer *t = l->heap[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (l->heap[parent]->due <= t->due)
      break;
    place(l, i, l->heap[parent]);
    i = parent;
  }
  place(l, i, t);
}

static void sift_down(struct ck__loop *l, uint32_t i)
{
  struct ck__timer *t = l->heap[i];
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= l->nheap)
      break;
    if (c + 1 < l->nheap && l->heap[c + 1]->due < l->heap[c]->due)
      c++;
    if (t->due <= l->heap[c]->due)
      break;
    place(l, i, l->heap[c]);
    i = c;
  }
  place(l, i, t);
}

void ck__timer_stop(struct ck__loop *l, struct ck__timer *t)
{
  if (t->idx == 0)
    return;
  uint32_t i = t->idx - 1;
  t->idx = 0;
  struct ck__timer *last = l->heap[--l->nheap];
  if (i == l->nheap)
    return;
  place(l, i, last);
  sift_down(l, i);
  sift_up(l, last->idx - 1);
}

int ck__timer_start(struct ck__loop *l, struct ck__timer *t, uint64_t delay_ms,
                    ck__timer_cb cb)
{
  ck__timer_stop(l, t);
  if (l->nheap == l->capheap) {
    uint32_t cap = l->capheap ? l->capheap * 2 : 64;
    struct ck__timer **h = realloc(l->heap, cap * sizeof *h);
    if (!h)
      return CK_ENOMEM;
    l->heap = h;
    l->capheap = cap;
  }
  t->due = l->now + delay_ms;
  t->cb = cb;
  l->heap[l->nheap] = t;
  t->idx = ++l->nheap;
  sift_up(l, l->nheap - 1);
  return 0;
}

int ck__loop_timeout(struct ck__loop *l)
{
  if (l->nheap == 0)
    return -1;
  uint64_t now = ck__loop_update(l);
  uint64_t due = l->heap[0]->due;
  if (due <= now)
    return 0;
  uint64_t d = due - now;
  return d > 86400000u ? 86400000 : (int)d;
}

int ck__loop_run_timers(struct ck__loop *l)
{
  int n = 0;
  uint64_t now = ck__loop_update(l);
  /* Bounded: a callback that re-arms with delay 0 runs in the next
   * iteration, not forever in this one. */
  uint32_t budget = l->nheap;
  while (l->nheap > 0 && l->heap[0]->due <= now && budget-- > 0) {
    struct ck__timer *t = l->heap[0];
    ck__timer_stop(l, t);
    t->cb(t);
    n++;
  }
  return n;
}
