/* The context's gate for worker threads (gate.h): one lock around the
 * whole protocol state, held by the loop's thread except while it waits
 * for events, and by a worker while it hands a batch of datagrams to the
 * messaging layer. A context without workers has no gate and pays for
 * none of this (loop.gate is NULL). */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "coapkit/error.h"
#include "ctx.h"
#include "gate.h"

/* Tries before sleeping: about 2 µs of pause instructions. */
enum { SPINS = 200 };

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause(); /* frees the core for its hyperthread */
#endif
}

static void wake_read(struct ck__io *io, unsigned events)
{
  (void)events;
  uint64_t v;
  /* The descriptor only interrupts the wait; the timers and the stop
   * flag say what to do next. */
  while (read(io->fd, &v, sizeof v) > 0)
    ;
}

int ck__gate_new(struct ck_ctx *ctx)
{
  struct ck__gate *g = calloc(1, sizeof *g);
  if (!g)
    return CK_ENOMEM;
  g->wake_io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  g->wake_io.cb = wake_read;
  if (g->wake_io.fd < 0) {
    free(g);
    return CK_ESYS;
  }
  int rc = ck__backend_add(&ctx->loop, &g->wake_io, CK__READ);
  if (rc < 0) {
    close(g->wake_io.fd);
    free(g);
    return rc;
  }
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  atomic_init(&g->held, true); /* by the application's thread, from now
                                 * on */
  atomic_init(&g->sleepers, 0);
  g->wait_due = UINT64_MAX;
  ctx->loop.gate = g;
  return 0;
}

void ck__gate_free(struct ck_ctx *ctx)
{
  struct ck__gate *g = ctx->loop.gate;
  if (!g)
    return;
  ck__backend_del(&ctx->loop, &g->wake_io);
  close(g->wake_io.fd);
  pthread_cond_destroy(&g->cv);
  pthread_mutex_destroy(&g->mu);
  free(g);
  ctx->loop.gate = NULL;
}

static bool try_take(struct ck__gate *g)
{
  bool no = false;
  return !atomic_load_explicit(&g->held, memory_order_relaxed) &&
         atomic_compare_exchange_strong(&g->held, &no, true);
}

void ck__gate_acquire(struct ck__gate *g)
{
  for (int i = 0; i < SPINS; i++) {
    if (try_take(g))
      return;
    relax();
  }
  /* Sequentially consistent, with ck__gate_release(): either the
   * releaser sees this sleeper and signals, or this sleeper's try sees
   * the gate free. */
  pthread_mutex_lock(&g->mu);
  atomic_fetch_add(&g->sleepers, 1);
  while (!try_take(g))
    pthread_cond_wait(&g->cv, &g->mu);
  atomic_fetch_sub(&g->sleepers, 1);
  pthread_mutex_unlock(&g->mu);
}

void ck__gate_release(struct ck__gate *g)
{
  atomic_store(&g->held, false);
  if (atomic_load(&g->sleepers)) {
    pthread_mutex_lock(&g->mu);
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
  }
}

void ck__gate_wait_begin(struct ck__loop *l, int timeout_ms)
{
  struct ck__gate *g = l->gate;
  g->wait_due = timeout_ms < 0 ? UINT64_MAX : l->now + (uint64_t)timeout_ms;
  g->woken = false;
  ck__gate_release(g);
}

void ck__gate_wait_end(struct ck__loop *l)
{
  ck__gate_acquire(l->gate);
}

void ck__gate_kick(struct ck__loop *l)
{
  struct ck__gate *g = l->gate;
  if (g->woken)
    return;
  if (!l->stop && (!l->root || l->root->due >= g->wait_due))
    return;
  g->woken = true;
  uint64_t one = 1;
  /* A full counter (impossible at one write per wait) still wakes. */
  ssize_t n = write(g->wake_io.fd, &one, sizeof one);
  (void)n;
}
