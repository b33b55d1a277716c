/* Timers and the clock of the event loop.
 *
 * Timers live in an intrusive pairing heap: the links are inside each
 * struct ck__timer, so arming a timer never allocates and cannot fail
 * (libuv's timers work the same way). Insertion is O(1), removing the
 * earliest or any armed timer is amortised O(log n), and the loop never
 * scans all timers. Timers due at the same millisecond fire in the order
 * they were armed, so runs are deterministic under a test clock.
 */
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
  l->root = NULL;
  l->ntimers = 0;
  l->seq = 0;
  l->depth = 0;
  l->now = mono_ms(NULL);
  return ck__backend_init(l);
}

void ck__loop_close(struct ck__loop *l)
{
  ck__backend_close(l);
  l->root = NULL;
  l->ntimers = 0;
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

static bool before(const struct ck__timer *a, const struct ck__timer *b)
{
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

/* Makes the later of two roots the first child of the earlier one. */
static struct ck__timer *meld(struct ck__timer *a, struct ck__timer *b)
{
  if (!a)
    return b;
  if (!b)
    return a;
  if (before(b, a)) {
    struct ck__timer *t = a;
    a = b;
    b = t;
  }
  b->next = a->child;
  if (a->child)
    a->child->prev = b;
  b->prev = a;
  a->child = b;
  a->next = a->prev = NULL;
  return a;
}

/* The two-pass merge of a removed node's children: pair them left to
 * right, then meld the pairs right to left. Iterative, so a long sibling
 * list cannot exhaust the stack. */
static struct ck__timer *merge_pairs(struct ck__timer *first)
{
  struct ck__timer *pairs = NULL; /* melded pairs, linked through next */
  while (first) {
    struct ck__timer *a = first, *b = a->next;
    first = b ? b->next : NULL;
    a->next = a->prev = NULL;
    if (b)
      b->next = b->prev = NULL;
    struct ck__timer *m = meld(a, b);
    m->next = pairs;
    pairs = m;
  }
  struct ck__timer *root = NULL;
  while (pairs) {
    struct ck__timer *m = pairs;
    pairs = m->next;
    m->next = NULL;
    root = meld(root, m);
  }
  return root;
}

void ck__timer_stop(struct ck__loop *l, struct ck__timer *t)
{
  if (!t->armed)
    return;
  t->armed = false;
  l->ntimers--;
  struct ck__timer *sub = merge_pairs(t->child);
  if (t == l->root) {
    l->root = sub;
  } else {
    /* Unlink t from its parent's child list (prev is the parent when t
     * is the first child, else the previous sibling). */
    if (t->prev->child == t)
      t->prev->child = t->next;
    else
      t->prev->next = t->next;
    if (t->next)
      t->next->prev = t->prev;
    l->root = meld(l->root, sub);
  }
  t->child = t->next = t->prev = NULL;
}

void ck__timer_start(struct ck__loop *l, struct ck__timer *t, uint64_t delay_ms,
                     ck__timer_cb cb)
{
  ck__timer_stop(l, t);
  t->due = l->now + delay_ms;
  t->seq = l->seq++;
  t->cb = cb;
  t->child = t->next = t->prev = NULL;
  t->armed = true;
  l->ntimers++;
  l->root = meld(l->root, t);
}

int ck__loop_timeout(struct ck__loop *l)
{
  if (!l->root)
    return -1;
  uint64_t now = ck__loop_update(l);
  uint64_t due = l->root->due;
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
  size_t budget = l->ntimers;
  while (l->root && l->root->due <= now && budget-- > 0) {
    struct ck__timer *t = l->root;
    ck__timer_stop(l, t);
    t->cb(t);
    n++;
  }
  return n;
}
