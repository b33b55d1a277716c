/* The context's lock when it has worker threads (ck_ctx_config.workers >
 * 1): the protocol state machine stays single-threaded, so only one
 * thread at a time runs library or application code. The application's
 * thread holds the gate from ck_ctx_new() on and lets go of it only while
 * the loop waits in epoll_wait (timers and descriptor watches still run
 * there); a worker takes it after its recvmmsg and
 * gives it back before its sendmmsg (udp.c), so the kernel's datagram
 * work runs in parallel and the rest is serialized.
 *
 * It is a flag, not a bare mutex, because the thread that creates a
 * context need not be the one that runs it: a pthread mutex must be
 * unlocked by its owner. A thread that finds it taken spins a little
 * first (the protocol's share of a batch is a few microseconds, about a
 * sleep and a wake-up's cost; on the 2-core test machine, where the
 * load generator shares the cores, spinning or not measured the same),
 * then sleeps on the condition variable. Internal to libcoapkit. */
#ifndef CK_GATE_H
#define CK_GATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

struct ck_ctx;

struct ck__gate {
  atomic_bool held;
  atomic_uint sleepers; /* threads waiting on cv */
  pthread_mutex_t mu;   /* only for cv */
  pthread_cond_t cv;
  /* The time the loop's thread sleeps until (UINT64_MAX: no timer),
   * set before it lets go: a worker that arms an earlier timer, or asks
   * the loop to stop, wakes it through wake_fd (an eventfd on the loop). */
  uint64_t wait_due;
  bool woken;
  struct ck__io wake_io;
};

/* Creates the gate, held by the caller, and puts its wake descriptor on
 * the loop. Returns 0, CK_ENOMEM or CK_ESYS. */
int ck__gate_new(struct ck_ctx *ctx);

/* Removes the gate (workers already joined). */
void ck__gate_free(struct ck_ctx *ctx);

void ck__gate_acquire(struct ck__gate *g);
void ck__gate_release(struct ck__gate *g);

/* Called by the loop around its wait (loop_epoll.c). */
void ck__gate_wait_begin(struct ck__loop *l, int timeout_ms);
void ck__gate_wait_end(struct ck__loop *l);

/* Called by a worker holding the gate, before it lets go: wakes the loop
 * when a timer now falls due before the loop would wake, or when the
 * loop was told to stop. */
void ck__gate_kick(struct ck__loop *l);

#endif
