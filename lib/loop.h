/* The event loop inside a context: file descriptors watched by a poll
 * backend (loop_epoll.c), a min-heap of timers, and a monotonic clock in
 * milliseconds that tests can replace. Internal to libcoapkit. */
#ifndef CK_LOOP_H
#define CK_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ck__io;
typedef void (*ck__io_cb)(struct ck__io *io, unsigned events);

/* A watched descriptor. Events are CK__READ / CK__WRITE; CK__ERROR is
 * only reported (with CK__READ): the descriptor has an error pending,
 * such as an ICMP error on a socket's error queue. */
struct ck__io {
  int fd;
  ck__io_cb cb;
};

enum { CK__READ = 1, CK__WRITE = 2, CK__ERROR = 4 };

struct ck__timer;
struct ck__gate;
typedef void (*ck__timer_cb)(struct ck__timer *t);

/* A one-shot timer; embed it and use container_of-style casts. Its heap
 * links live inside it, so arming it can never fail. A zeroed timer is
 * a valid, disarmed one. */
struct ck__timer {
  uint64_t due;
  uint64_t seq; /* arming order: ties on due fire first-armed first */
  struct ck__timer *child, *next, *prev;
  ck__timer_cb cb;
  bool armed;
};

struct ck__loop {
  int backend_fd;
  bool stop;
  unsigned depth; /* > 0 while the loop runs callbacks (ck_ctx_process) */
  uint64_t now;   /* cached at the start of each iteration */
  uint64_t (*clock)(void *user);
  void *clock_user;
  struct ck__timer *root;
  size_t ntimers;
  uint64_t seq;
  /* The context's lock when worker threads share it (gate.h), let go
   * of while the backend waits; NULL without workers. */
  struct ck__gate *gate;
};

int ck__loop_init(struct ck__loop *l);
void ck__loop_close(struct ck__loop *l);

/* Replaces the clock (NULL: the monotonic clock). */
void ck__loop_set_clock(struct ck__loop *l, uint64_t (*fn)(void *user),
                        void *user);

/* Refreshes and returns the cached time. */
uint64_t ck__loop_update(struct ck__loop *l);

static inline uint64_t ck__loop_now(const struct ck__loop *l)
{
  return l->now;
}

/* Arms t to fire delay_ms after the cached now (re-arms if armed). */
void ck__timer_start(struct ck__loop *l, struct ck__timer *t,
                     uint64_t delay_ms, ck__timer_cb cb);
void ck__timer_stop(struct ck__loop *l, struct ck__timer *t);

static inline bool ck__timer_active(const struct ck__timer *t)
{
  return t->armed;
}

/* Milliseconds until the earliest timer, 0 if due, -1 if none. */
int ck__loop_timeout(struct ck__loop *l);

/* Runs every timer that is due. Returns how many ran. */
int ck__loop_run_timers(struct ck__loop *l);

/* Poll backend (loop_epoll.c). */
int ck__backend_init(struct ck__loop *l);
void ck__backend_close(struct ck__loop *l);
int ck__backend_add(struct ck__loop *l, struct ck__io *io, unsigned events);
int ck__backend_mod(struct ck__loop *l, struct ck__io *io, unsigned events);
void ck__backend_del(struct ck__loop *l, struct ck__io *io);
/* Waits up to timeout_ms for events and calls their callbacks. Returns
 * the number handled or CK_ESYS. */
int ck__backend_poll(struct ck__loop *l, int timeout_ms);

#endif
