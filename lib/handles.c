/* The public timers and descriptor watches of include/coapkit/loop.h:
 * thin handles over the loop's own timers (loop.c) and poll backend
 * (loop_epoll.c), so that an application, and coapd, can put all of its
 * work on the library's loop instead of running a second one beside it.
 *
 * A watch freed during a callback may still be named by an event the
 * backend fetched in the same batch, so its memory is kept on the
 * context's list of dead watches until the iteration ends. */
#include <stdlib.h>

#include "coapkit/loop.h"
#include "ctx.h"

struct ck_timer {
  struct ck__timer t; /* first: the loop's callback casts back */
  struct ck_ctx *ctx;
  ck_timer_cb cb;
  void *user;
  uint64_t repeat;
};

struct ck_watch {
  struct ck__io io; /* first: the backend's callback casts back */
  struct ck_ctx *ctx;
  ck_watch_cb cb;
  void *user;
  unsigned events;
  struct ck_watch *next_dead;
};

static void timer_fire(struct ck__timer *lt)
{
  struct ck_timer *t = (struct ck_timer *)lt;
  /* Re-arm first: the callback may stop or free the timer, and then the
   * loop must not touch it again. */
  if (t->repeat)
    ck__timer_start(&t->ctx->loop, &t->t, t->repeat, timer_fire);
  t->cb(t, t->user);
}

int ck_timer_new(struct ck_ctx *ctx, ck_timer_cb cb, void *user,
                 struct ck_timer **out)
{
  if (!ctx || !cb || !out)
    return CK_EINVAL;
  struct ck_timer *t = calloc(1, sizeof *t);
  if (!t)
    return CK_ENOMEM;
  t->ctx = ctx;
  t->cb = cb;
  t->user = user;
  *out = t;
  return 0;
}

void ck_timer_start(struct ck_timer *t, uint64_t delay_ms, uint64_t repeat_ms)
{
  if (!t)
    return;
  /* Called from outside the loop, perhaps long after it last read the
   * clock: count the delay from now. */
  if (t->ctx->loop.depth == 0)
    ck__loop_update(&t->ctx->loop);
  t->repeat = repeat_ms;
  ck__timer_start(&t->ctx->loop, &t->t, delay_ms, timer_fire);
}

void ck_timer_stop(struct ck_timer *t)
{
  if (t)
    ck__timer_stop(&t->ctx->loop, &t->t);
}

bool ck_timer_active(const struct ck_timer *t)
{
  return t && ck__timer_active(&t->t);
}

void ck_timer_free(struct ck_timer *t)
{
  if (!t)
    return;
  ck__timer_stop(&t->ctx->loop, &t->t);
  free(t);
}

static void watch_ready(struct ck__io *io, unsigned events)
{
  struct ck_watch *w = (struct ck_watch *)io;
  unsigned ev = 0;
  if (events & CK__READ)
    ev |= CK_WATCH_READ;
  if (events & CK__WRITE)
    ev |= CK_WATCH_WRITE;
  w->cb(w, w->io.fd, ev, w->user);
}

static unsigned to_loop(unsigned events)
{
  return (events & CK_WATCH_READ ? CK__READ : 0u) |
         (events & CK_WATCH_WRITE ? CK__WRITE : 0u);
}

int ck_watch_new(struct ck_ctx *ctx, int fd, unsigned events, ck_watch_cb cb,
                 void *user, struct ck_watch **out)
{
  if (!ctx || fd < 0 || !cb || !out ||
      (events & ~(unsigned)(CK_WATCH_READ | CK_WATCH_WRITE)))
    return CK_EINVAL;
  struct ck_watch *w = calloc(1, sizeof *w);
  if (!w)
    return CK_ENOMEM;
  w->io.fd = fd;
  w->io.cb = watch_ready;
  w->ctx = ctx;
  w->cb = cb;
  w->user = user;
  w->events = events;
  /* A paused watch is not in the backend at all: epoll reports errors
   * and hang-ups even for an empty mask, which would spin the loop. */
  if (events) {
    int rc = ck__backend_add(&ctx->loop, &w->io, to_loop(events));
    if (rc < 0) {
      free(w);
      return rc;
    }
  }
  *out = w;
  return 0;
}

int ck_watch_set(struct ck_watch *w, unsigned events)
{
  if (!w || !w->io.cb || (events & ~(unsigned)(CK_WATCH_READ | CK_WATCH_WRITE)))
    return CK_EINVAL;
  struct ck__loop *l = &w->ctx->loop;
  int rc = 0;
  if (!events)
    ck__backend_del(l, &w->io);
  else if (!w->events)
    rc = ck__backend_add(l, &w->io, to_loop(events));
  else
    rc = ck__backend_mod(l, &w->io, to_loop(events));
  if (rc == 0)
    w->events = events;
  return rc;
}

void ck_watch_free(struct ck_watch *w)
{
  if (!w || !w->io.cb)
    return;
  if (w->events)
    ck__backend_del(&w->ctx->loop, &w->io);
  w->io.cb = NULL; /* the backend skips it from now on */
  if (w->ctx->loop.depth == 0) {
    free(w);
    return;
  }
  w->next_dead = w->ctx->dead_watches;
  w->ctx->dead_watches = w;
}

void ck__watches_reap(struct ck_ctx *ctx)
{
  while (ctx->dead_watches) {
    struct ck_watch *w = ctx->dead_watches;
    ctx->dead_watches = w->next_dead;
    free(w);
  }
}

uint64_t ck_ctx_now(struct ck_ctx *ctx)
{
  if (!ctx)
    return 0;
  return ctx->loop.depth ? ck__loop_now(&ctx->loop)
                         : ck__loop_update(&ctx->loop);
}
